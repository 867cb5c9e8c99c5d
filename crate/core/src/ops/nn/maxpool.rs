//! `MaxPool`: N-D max pooling with strides, dilations, pads or `auto_pad`, and `ceil_mode`.
//! Only output 0 is computed; a node that asks for the `Indices` output is rejected at build
//! time rather than left with a missing tensor.

use super::spatial::{pool, pool_geometry, PoolKind, WindowAttrs};
use super::{f32_fact, f32_input, f32_output, only_first_output};
use crate::model::{DType, Node};
use crate::ops::{BuildCtx, Fact, Op, Tensor};

/// A built `MaxPool` node.
#[derive(Debug, Clone)]
pub struct MaxPool {
    window: WindowAttrs,
}

/// Builds `MaxPool` (`kernel_shape` required; `strides`, `dilations`, `pads`, `auto_pad`,
/// `ceil_mode` optional).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, String> {
    only_first_output(node, "the Indices output is not computed")?;
    let window = WindowAttrs::from_node(node, true)?;
    if window.kernel.is_none() {
        return Err("kernel_shape is required".into());
    }
    Ok(Box::new(MaxPool { window }))
}

impl Op for MaxPool {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, String> {
        let x = f32_fact(inputs, 0, "X")?;
        Ok(vec![Fact::new(DType::F32, pool_geometry(&self.window, &x.shape)?.1)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
        let x = f32_input(inputs, 0, "X")?;
        let shape = super::input_shape(inputs, 0).unwrap_or_default();
        let (w, out_shape) = pool_geometry(&self.window, shape)?;
        let out = pool(x, shape[0] * shape[1], &w, PoolKind::Max);
        Ok(vec![f32_output(out_shape, out)?])
    }
}
