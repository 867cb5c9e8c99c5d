//! `MaxPool`: N-D max pooling with strides, dilations, pads or `auto_pad`, and `ceil_mode`.
//! Only output 0 is computed; a node that asks for the `Indices` output is rejected at build
//! time rather than left with a missing tensor. float32, and since opset 12 int8 and uint8
//! (pooled through f32, which holds every 8-bit value exactly).

use super::spatial::{pool, pool_geometry, PoolKind, Window, WindowAttrs};
use super::{f32_input, f32_output, only_first_output};
use crate::model::{DType, Data, Node};
use crate::ops::grad::{f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{input, input_fact, OpError};
use crate::ops::{BuildCtx, Fact, Op, Tensor};

/// A built `MaxPool` node.
#[derive(Debug, Clone)]
pub struct MaxPool {
    window: WindowAttrs,
}

/// Builds `MaxPool` (`kernel_shape` required; `strides`, `dilations`, `pads`, `auto_pad`,
/// `ceil_mode` optional).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    only_first_output(node, "the Indices output is not computed")?;
    let window = WindowAttrs::from_node(node, true)?;
    if window.kernel.is_none() {
        return Err(OpError::malformed("kernel_shape is required"));
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
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        if !matches!(x.dtype, DType::F32 | DType::U8 | DType::I8) {
            return Err(OpError::mismatch(format!("X must be float32, int8 or uint8, got {:?}", x.dtype)));
        }
        Ok(vec![Fact::new(x.dtype, pool_geometry(&self.window, &x.shape)?.1)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
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

    /// Each output's gradient goes to its window's maximum: the first one in row-major window
    /// order on ties (as ONNX's `Indices` output and onnxruntime pick it), NaN never, as in the
    /// forward. Taps in the padding take nothing; 8-bit inputs take no gradient.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let mut out: Grads = vec![None; inputs.len()];
        if !matches!(input(inputs, 0)?.data, Data::F32(_)) {
            return Ok(out);
        }
        let x = f32_input(inputs, 0, "X")?;
        let shape = super::input_shape(inputs, 0).unwrap_or_default();
        let (w, out_shape) = pool_geometry(&self.window, shape)?;
        let Some(g) = out_grad(grads, 0, out_shape.iter().product())? else { return Ok(out) };
        out[0] = Some(f32_tensor(shape.to_vec(), max_pool_backward(x, g, &w)));
        Ok(out)
    }
}

/// The gradient of a max pool over the planes of `x` (each of shape `w.input`), for `g` (planes
/// of shape `w.output`).
fn max_pool_backward(x: &[f32], g: &[f32], w: &Window) -> Vec<f32> {
    let nd = w.input.len();
    let (in_plane, out_plane) = (w.input.iter().product::<usize>(), w.output.iter().product::<usize>());
    let mut strides = vec![1usize; nd];
    for d in (0..nd.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * w.input[d + 1];
    }
    let mut dx = vec![0.0f32; x.len()];
    if in_plane == 0 || out_plane == 0 {
        return dx;
    }
    let (mut o_idx, mut j, mut taps) = (vec![0usize; nd], vec![0usize; nd], Vec::with_capacity(nd));
    for (xp, (dp, gp)) in x.chunks_exact(in_plane).zip(dx.chunks_exact_mut(in_plane).zip(g.chunks_exact(out_plane))) {
        for &go in gp {
            // The window of this output: per dim its taps inside the input and tap 0's coordinate.
            taps.clear();
            taps.extend((0..nd).map(|d| w.valid_taps(d, o_idx[d])));
            if let Some(at) = window_argmax(xp, w, &strides, &taps, &mut j) {
                dp[at] += go;
            }
            for d in (0..nd).rev() {
                o_idx[d] += 1;
                if o_idx[d] < w.output[d] {
                    break;
                }
                o_idx[d] = 0;
            }
        }
    }
    dx
}

/// The offset in plane `xp` of the first (row-major) largest non-NaN value among the window's
/// `taps`; `None` when the window holds none.
fn window_argmax(
    xp: &[f32],
    w: &Window,
    strides: &[usize],
    taps: &[(std::ops::Range<usize>, isize)],
    j: &mut [usize],
) -> Option<usize> {
    if taps.iter().any(|(r, _)| r.is_empty()) {
        return None;
    }
    j.iter_mut().zip(taps).for_each(|(j, (r, _))| *j = r.start);
    let mut best: Option<(f32, usize)> = None;
    loop {
        let at: usize =
            (0..taps.len()).map(|d| (taps[d].1 + (j[d] * w.dilations[d]) as isize) as usize * strides[d]).sum();
        let v = xp[at];
        if !v.is_nan() && best.is_none_or(|(b, _)| v > b) {
            best = Some((v, at));
        }
        // Next tap, last dim fastest.
        let mut d = taps.len();
        loop {
            if d == 0 {
                return best.map(|(_, at)| at);
            }
            d -= 1;
            j[d] += 1;
            if j[d] < taps[d].0.end {
                break;
            }
            j[d] = taps[d].0.start;
        }
    }
}
