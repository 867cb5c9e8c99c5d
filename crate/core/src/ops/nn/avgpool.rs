//! `AveragePool`: N-D average pooling with strides, pads or `auto_pad`, `ceil_mode`,
//! `count_include_pad` and (opset 19) dilations.

use super::spatial::{pool, pool_geometry, PoolKind, Window, WindowAttrs};
use super::{f32_fact, f32_input, f32_output};
use crate::model::{DType, Node};
use crate::ops::grad::{f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{BuildCtx, Fact, Op, OpError, Tensor};

/// A built `AveragePool` node.
#[derive(Debug, Clone)]
pub struct AveragePool {
    window: WindowAttrs,
    kind: PoolKind,
}

/// Builds `AveragePool` (`kernel_shape` required; `strides`, `dilations`, `pads`, `auto_pad`,
/// `ceil_mode`, `count_include_pad` optional).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let window = WindowAttrs::from_node(node, true)?;
    if window.kernel.is_none() {
        return Err(OpError::malformed("kernel_shape is required"));
    }
    let kind =
        if node.attrs.int("count_include_pad", 0) != 0 { PoolKind::MeanIncludePad } else { PoolKind::MeanExcludePad };
    Ok(Box::new(AveragePool { window, kind }))
}

impl Op for AveragePool {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = f32_fact(inputs, 0, "X")?;
        Ok(vec![Fact::new(DType::F32, pool_geometry(&self.window, &x.shape)?.1)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = f32_input(inputs, 0, "X")?;
        let shape = super::input_shape(inputs, 0).unwrap_or_default();
        let (w, out_shape) = pool_geometry(&self.window, shape)?;
        let out = pool(x, shape[0] * shape[1], &w, self.kind);
        Ok(vec![f32_output(out_shape, out)?])
    }

    /// The adjoint of the forward's separable passes, in reverse order: each output's gradient,
    /// divided by that pass's count, added to every input tap of its window.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let x = f32_input(inputs, 0, "X")?;
        let shape = super::input_shape(inputs, 0).unwrap_or_default();
        let (w, out_shape) = pool_geometry(&self.window, shape)?;
        let mut out: Grads = vec![None; inputs.len()];
        if let Some(g) = out_grad(grads, 0, out_shape.iter().product())? {
            let dx = pool_mean_backward(g, shape[0] * shape[1], &w, self.kind);
            debug_assert_eq!(dx.len(), x.len());
            out[0] = Some(f32_tensor(shape.to_vec(), dx));
        }
        Ok(out)
    }
}

/// The adjoint of [`pool`] for the mean kinds: `g` holds `planes` planes of shape `w.output`,
/// the result as many planes of shape `w.input`.
fn pool_mean_backward(g: &[f32], planes: usize, w: &Window, kind: PoolKind) -> Vec<f32> {
    let mut cur = g.to_vec();
    // Pass `d` of the forward read dims `..d` at their output sizes and `d..` at their input sizes.
    for d in (0..w.input.len()).rev() {
        let outer = planes * w.output[..d].iter().product::<usize>();
        let inner: usize = w.input[d + 1..].iter().product();
        let (len_in, len_out) = (w.input[d], w.output[d]);
        let mut prev = vec![0.0f32; outer * len_in * inner];
        if prev.is_empty() || cur.is_empty() {
            cur = prev;
            continue;
        }
        let dil = w.dilations[d];
        for (src, block) in prev.chunks_exact_mut(len_in * inner).zip(cur.chunks_exact(len_out * inner)) {
            for (o, grow) in block.chunks_exact(inner).enumerate() {
                let (taps, start) = w.valid_taps(d, o);
                let count = w.pool_count(d, o, kind);
                let inv = if count > 0 { 1.0 / count as f32 } else { 1.0 };
                for j in taps {
                    let row = (start + (j * dil) as isize) as usize;
                    let s = &mut src[row * inner..(row + 1) * inner];
                    s.iter_mut().zip(grow).for_each(|(a, &b)| *a += b * inv);
                }
            }
        }
        cur = prev;
    }
    cur
}
