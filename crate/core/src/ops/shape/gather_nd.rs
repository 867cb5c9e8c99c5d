//! GatherND: slices of `data` addressed by the last axis of `indices` (`k` coordinates each),
//! after `batch_dims` leading axes shared by both. Output shape:
//! `indices.shape[..-1] ++ data.shape[batch_dims + k..]`. Negative coordinates count from the
//! end; out-of-range ones are an error naming the coordinate.

use super::args::Inputs;
use super::elem::{dispatch, dtype_name, typed, Elem};
use crate::model::{strides, DType, Node, Tensor};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{input, BuildCtx, Fact, Op, OpError};

/// GatherND.
#[derive(Debug, Clone)]
pub struct GatherNd {
    batch_dims: usize,
}

/// Builds GatherND.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let b = node.attrs.int("batch_dims", 0);
    let batch_dims = usize::try_from(b).map_err(|_| OpError::malformed(format!("batch_dims is {b}: use 0 or more")))?;
    Ok(Box::new(GatherNd { batch_dims }))
}

/// Shapes shared by GatherND and ScatterND: `(k, output/update shape)`.
pub(crate) fn nd_plan(
    data: &[usize],
    idx: &[usize],
    batch_dims: usize,
    op: &str,
) -> Result<(usize, Vec<usize>), OpError> {
    let (r, q, b) = (data.len(), idx.len(), batch_dims);
    let k = *idx.last().ok_or_else(|| OpError::mismatch("indices must have rank 1 or more"))?;
    if q <= b || r <= b || k < 1 || k > r - b {
        return Err(OpError::mismatch(format!(
            "{op}: indices of shape {idx:?} do not address data of shape {data:?} (the last axis of indices holds 1 to {} coordinates after {b} batch axes)",
            r.saturating_sub(b)
        )));
    }
    if data[..b] != idx[..b] {
        return Err(OpError::mismatch(format!("{op}: the {b} batch axes differ: data {data:?}, indices {idx:?}")));
    }
    let out: Vec<usize> = idx[..q - 1].iter().chain(&data[b + k..]).copied().collect();
    Ok((k, out))
}

/// For each index tuple: the flat offset in `data` of the slice it addresses (with `batch_dims`
/// leading axes shared), and the slice length.
pub(crate) fn nd_offsets(data: &[usize], indices: &Tensor, batch_dims: usize) -> Result<(Vec<usize>, usize), OpError> {
    if matches!(indices.dtype(), DType::F32 | DType::Bool) {
        return Err(OpError::mismatch(format!("indices must be integers, got {}", dtype_name(indices.dtype()))));
    }
    let idx = indices.to_i64_vec().map_err(|e| OpError::mismatch(format!("indices: {e}")))?;
    let (b, k) = (batch_dims, *indices.shape.last().unwrap_or(&1));
    let st = strides(data);
    let slice: usize = data[b + k..].iter().product();
    let batch_block: usize = data[b..].iter().product();
    // Index tuples per batch entry.
    let per_batch: usize = indices.shape[b..indices.shape.len() - 1].iter().product();
    let mut out = Vec::with_capacity(idx.len() / k.max(1));
    for (t, coords) in idx.chunks(k).enumerate() {
        let mut off = t.checked_div(per_batch).unwrap_or(0) * batch_block;
        for (j, &c) in coords.iter().enumerate() {
            let dim = data[b + j] as i64;
            let c2 = if c < 0 { c + dim } else { c };
            if !(0..dim).contains(&c2) {
                return Err(OpError::mismatch(format!("index {c} is out of range for axis {} of size {dim}", b + j)));
            }
            off += c2 as usize * st[b + j];
        }
        out.push(off);
    }
    Ok((out, slice))
}

impl Op for GatherNd {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (_, out) = nd_plan(inputs.shape(0)?, inputs.shape(1)?, self.batch_dims, "GatherND")?;
        Ok(vec![Fact::new(inputs.dtype(0)?, out)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (x, idx) = (input(inputs, 0)?, input(inputs, 1)?);
        let (_, shape) = nd_plan(&x.shape, &idx.shape, self.batch_dims, "GatherND")?;
        let (offsets, slice) = nd_offsets(&x.shape, idx, self.batch_dims)?;
        let data = dispatch!(x.dtype(), T => {
            let src = typed::<T>(x)?;
            let mut out = Vec::with_capacity(offsets.len() * slice);
            for &o in &offsets {
                out.extend_from_slice(&src[o..o + slice]);
            }
            T::wrap(out)
        });
        Ok(vec![Tensor { shape, data }])
    }

    /// The data's gradient: each slice's gradient added back where it was read (a slice read
    /// twice gets both). The indices take none.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let mut out: Grads = vec![None; b.inputs.len()];
        let (x, idx) = (f32_in(b.inputs, 0)?, input(b.inputs, 1)?);
        let (offsets, slice) = nd_offsets(&x.shape, idx, self.batch_dims)?;
        let Some(g) = out_grad(b.grads, 0, offsets.len() * slice)? else { return Ok(out) };
        let mut dx = vec![0.0f32; x.len()];
        for (t, &o) in offsets.iter().enumerate() {
            dx[o..o + slice].iter_mut().zip(&g[t * slice..(t + 1) * slice]).for_each(|(d, &v)| *d += v);
        }
        out[0] = Some(f32_tensor(x.shape.clone(), dx));
        Ok(out)
    }
}
