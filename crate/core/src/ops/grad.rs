//! Shared pieces of the ops' reverse mode ([`Op::backward`](super::Op::backward)), used by
//! quantization-aware training ([`crate::train`]): reading the incoming gradient, undoing
//! numpy broadcasting (a broadcast input's gradient is the sum over the dims it was repeated
//! along), and the backward every reshape-like op shares.

use crate::model::{Data, Tensor};
use crate::ops::OpError;

/// What [`Op::backward`](super::Op::backward) returns: one gradient per input, in input order
/// (`None` for an input that takes none: integer tensors, shapes, bounds, omitted inputs).
pub type Grads = Vec<Option<Tensor>>;

/// What [`Op::backward`](super::Op::backward) gets: the forward's inputs and outputs (an
/// output may be `None`: the backward computes it again if it needs it), and the loss gradient
/// of each output (`None`: that output does not reach the loss).
#[derive(Debug, Clone, Copy)]
pub struct Backward<'a> {
    /// The forward's inputs.
    pub inputs: &'a [Option<&'a Tensor>],
    /// The forward's outputs, where kept.
    pub outputs: &'a [Option<&'a Tensor>],
    /// The loss gradient of each output.
    pub grads: &'a [Option<&'a Tensor>],
    /// Per input: whether its gradient is wanted (an op may skip the others; missing: wanted).
    pub needs: &'a [bool],
}

impl Backward<'_> {
    /// Whether input `i`'s gradient is wanted.
    pub fn needs(&self, i: usize) -> bool {
        self.needs.get(i).copied().unwrap_or(true)
    }
}

/// Why [`Op::backward`](super::Op::backward) gave no gradients.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GradError {
    /// The op (or this use of it) has no backward.
    #[error("the op has no backward")]
    NoBackward,
    /// The backward failed: what went wrong, with its kind.
    #[error("{0}")]
    Failed(OpError),
}

impl From<OpError> for GradError {
    fn from(e: OpError) -> GradError {
        GradError::Failed(e)
    }
}

/// A float32 tensor (the shapes here are always consistent with the data).
pub fn f32_tensor(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
    debug_assert_eq!(shape.iter().product::<usize>(), data.len());
    Tensor { shape, data: Data::F32(data) }
}

/// The gradient of output `i` as float32 data of the output's size, or `None` when that
/// output does not reach the loss.
pub fn out_grad<'a>(grads: &[Option<&'a Tensor>], i: usize, len: usize) -> Result<Option<&'a [f32]>, OpError> {
    let Some(g) = grads.get(i).copied().flatten() else { return Ok(None) };
    let v = g.as_f32().map_err(|e| OpError::internal(format!("the gradient of output {i}: {e}")))?;
    if v.len() != len {
        return Err(OpError::internal(format!("the gradient of output {i} has {} values, the output {len}", v.len())));
    }
    Ok(Some(v))
}

/// Input `i`'s float32 data, for a backward that needs it.
pub fn f32_in<'a>(inputs: &[Option<&'a Tensor>], i: usize) -> Result<&'a Tensor, OpError> {
    let t = super::input(inputs, i)?;
    t.as_f32().map_err(|e| OpError::mismatch(format!("input {i}: {e} (only float32 tensors have gradients)")))?;
    Ok(t)
}

/// Per-dim strides of `shape` read under the broadcast output shape `out` (right-aligned; a
/// broadcast dim has stride 0).
fn broadcast_strides(out: &[usize], shape: &[usize]) -> Vec<usize> {
    let lead = out.len() - shape.len();
    let mut strides = vec![0; out.len()];
    let mut s = 1;
    for d in (0..shape.len()).rev() {
        if shape[d] != 1 {
            strides[lead + d] = s;
        }
        s *= shape[d];
    }
    strides
}

/// Calls `f(o, ia, ib)` for every element `o` of the broadcast output shape `out`, with the
/// flat indices of the `a` and `b` elements it was computed from.
pub fn for_each_broadcast(out: &[usize], a: &[usize], b: &[usize], mut f: impl FnMut(usize, usize, usize)) {
    for_each_broadcast_run(out, a, b, |o, (ia, ra), (ib, rb), len| {
        for k in 0..len {
            f(o + k, ia + k * ra, ib + k * rb);
        }
    });
}

/// [`for_each_broadcast`] a run at a time: `f(o, (ia, ra), (ib, rb), len)` for `len`
/// consecutive output elements from `o`, whose elements of `a` are `ia, ia + ra, …` and of `b`
/// `ib, ib + rb, …` (a stride 0 repeats one element). Runs follow the last dimension.
pub fn for_each_broadcast_run(
    out: &[usize],
    a: &[usize],
    b: &[usize],
    mut f: impl FnMut(usize, (usize, usize), (usize, usize), usize),
) {
    let (sa, sb) = (broadcast_strides(out, a), broadcast_strides(out, b));
    let n: usize = out.iter().product();
    if n == 0 {
        return;
    }
    let Some(last) = out.len().checked_sub(1) else {
        f(0, (0, 0), (0, 0), 1);
        return;
    };
    let (len, ra, rb) = (out[last], sa[last], sb[last]);
    let mut idx = vec![0usize; last];
    let (mut ia, mut ib) = (0usize, 0usize);
    let mut o = 0;
    while o < n {
        f(o, (ia, ra), (ib, rb), len);
        o += len;
        // Advance the outer multi-index, keeping ia and ib in step.
        for d in (0..last).rev() {
            idx[d] += 1;
            ia += sa[d];
            ib += sb[d];
            if idx[d] < out[d] {
                break;
            }
            ia -= sa[d] * out[d];
            ib -= sb[d] * out[d];
            idx[d] = 0;
        }
    }
}

/// Sums `g` (shaped `out`) down to `shape`, which broadcast to `out`.
pub fn unbroadcast(g: &[f32], out: &[usize], shape: &[usize]) -> Vec<f32> {
    if out == shape {
        return g.to_vec();
    }
    let mut r = vec![0.0f32; shape.iter().product()];
    for_each_broadcast(out, shape, shape, |o, i, _| r[i] += g[o]);
    r
}

/// The backward of an op whose output is input 0's data under another shape (Reshape,
/// Flatten, Squeeze, Unsqueeze, Identity): the gradient, reshaped back.
pub fn reshape_back(inputs: &[Option<&Tensor>], grads: &[Option<&Tensor>]) -> Result<Grads, OpError> {
    let x = f32_in(inputs, 0)?;
    let mut out: Grads = vec![None; inputs.len()];
    if let Some(g) = out_grad(grads, 0, x.len())? {
        out[0] = Some(f32_tensor(x.shape.clone(), g.to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbroadcast_sums_over_repeated_dims() {
        // [2, 3] from [3] and from [2, 1].
        let g = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(unbroadcast(&g, &[2, 3], &[3]), vec![5.0, 7.0, 9.0]);
        assert_eq!(unbroadcast(&g, &[2, 3], &[2, 1]), vec![6.0, 15.0]);
        assert_eq!(unbroadcast(&g, &[2, 3], &[]), vec![21.0]);
        let mut seen = Vec::new();
        for_each_broadcast(&[2, 3], &[2, 1], &[3], |o, a, b| seen.push((o, a, b)));
        assert_eq!(seen, [(0, 0, 0), (1, 0, 1), (2, 0, 2), (3, 1, 0), (4, 1, 1), (5, 1, 2)]);
    }
}
