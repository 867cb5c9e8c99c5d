//! `MaxPool`: N-D max pooling with strides, dilations, pads or `auto_pad`, and `ceil_mode`.
//! Only output 0 is computed; a node that asks for the `Indices` output is rejected at build
//! time rather than left with a missing tensor. float32, and since opset 12 int8 and uint8
//! (pooled through f32, which holds every 8-bit value exactly).

use super::spatial::{pool, pool_geometry, PoolKind, WindowAttrs};
use super::{f32_input, f32_output, only_first_output};
use crate::model::{DType, Data, Node};
use crate::ops::{input, input_fact};
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

impl MaxPool {
    /// The window attributes (`kernel_shape`, strides, dilations, pads, `auto_pad`, `ceil_mode`).
    pub fn window(&self) -> &WindowAttrs {
        &self.window
    }
}

impl Op for MaxPool {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, String> {
        let x = input_fact(inputs, 0)?;
        if !matches!(x.dtype, DType::F32 | DType::U8 | DType::I8) {
            return Err(format!("X must be float32, int8 or uint8, got {:?}", x.dtype));
        }
        Ok(vec![Fact::new(x.dtype, pool_geometry(&self.window, &x.shape)?.1)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
        let shape = super::input_shape(inputs, 0).unwrap_or_default();
        let (w, out_shape) = pool_geometry(&self.window, shape)?;
        let t = input(inputs, 0)?;
        let bytes: Option<Vec<f32>> = match &t.data {
            Data::U8(v) => Some(v.iter().map(|&b| f32::from(b)).collect()),
            Data::I8(v) => Some(v.iter().map(|&b| f32::from(b)).collect()),
            _ => None,
        };
        let x = match &bytes {
            Some(v) => v.as_slice(),
            None => f32_input(inputs, 0, "X")?,
        };
        let out = pool(x, shape[0] * shape[1], &w, PoolKind::Max);
        // Every window holds at least one element, so the maxima are input values.
        let data = match t.data {
            Data::U8(_) => Data::U8(out.iter().map(|&v| v as u8).collect()),
            Data::I8(_) => Data::I8(out.iter().map(|&v| v as i8).collect()),
            _ => return Ok(vec![f32_output(out_shape, out)?]),
        };
        Ok(vec![Tensor { shape: out_shape, data }])
    }
}
