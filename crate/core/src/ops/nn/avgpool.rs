//! `AveragePool`: N-D average pooling with strides, pads or `auto_pad`, `ceil_mode`,
//! `count_include_pad` and (opset 19) dilations.

use super::spatial::{pool, pool_geometry, PoolKind, WindowAttrs};
use super::{f32_fact, f32_input, f32_output};
use crate::model::{DType, Node};
use crate::ops::{BuildCtx, Fact, Op, Tensor};

/// A built `AveragePool` node.
#[derive(Debug, Clone)]
pub struct AveragePool {
    window: WindowAttrs,
    kind: PoolKind,
}

/// Builds `AveragePool` (`kernel_shape` required; `strides`, `dilations`, `pads`, `auto_pad`,
/// `ceil_mode`, `count_include_pad` optional).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, String> {
    let window = WindowAttrs::from_node(node, true)?;
    if window.kernel.is_none() {
        return Err("kernel_shape is required".into());
    }
    let kind =
        if node.attrs.int("count_include_pad", 0) != 0 { PoolKind::MeanIncludePad } else { PoolKind::MeanExcludePad };
    Ok(Box::new(AveragePool { window, kind }))
}

impl Op for AveragePool {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, String> {
        let x = f32_fact(inputs, 0, "X")?;
        Ok(vec![Fact::new(DType::F32, pool_geometry(&self.window, &x.shape)?.1)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
        let x = f32_input(inputs, 0, "X")?;
        let shape = super::input_shape(inputs, 0).unwrap_or_default();
        let (w, out_shape) = pool_geometry(&self.window, shape)?;
        let out = pool(x, shape[0] * shape[1], &w, self.kind);
        Ok(vec![f32_output(out_shape, out)?])
    }
}
