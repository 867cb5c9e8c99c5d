//! Gather: picks slices of `data` along an axis at the given indices (negative indices count
//! from the end). Output shape: `data[..axis] ++ indices.shape ++ data[axis+1..]`.

use super::args::{axis, checked_numel, Inputs};
use super::elem::{dispatch, dtype_name, typed, Elem};
use crate::model::{DType, Node, Tensor};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{input, BuildCtx, Fact, Op, OpError};

/// Gather.
#[derive(Debug, Clone)]
pub struct Gather {
    axis: i64,
}

/// Builds Gather.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Gather { axis: node.attrs.int("axis", 0) }))
}

/// Indices normalised into `[0, dim)`, or an error naming the first one out of range.
pub fn normalize_indices(idx: &Tensor, dim: usize, axis: i64) -> Result<Vec<usize>, OpError> {
    let d = dim as i64;
    idx.to_i64_vec()
        .map_err(|e| OpError::mismatch(format!("indices: {e}")))?
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i + d } else { i };
            usize::try_from(j)
                .ok()
                .filter(|&j| j < dim)
                .ok_or_else(|| OpError::mismatch(format!("index {i} is out of range for axis {axis} of size {dim}")))
        })
        .collect()
}

/// Gather and GatherElements: `data` (input 0) read along an axis at `indices` (input 1).
pub(super) trait AlongAxis {
    /// The `axis` attribute.
    fn axis_attr(&self) -> i64;

    /// The axis in `[0, rank)` and the output shape.
    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<(usize, Vec<usize>), OpError>;

    /// [`Op::infer`]: the data's dtype in the planned shape.
    fn infer_facts(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(vec![Fact::new(inputs.dtype(0)?, self.plan(inputs)?.1)])
    }

    /// What [`Op::eval`] starts from: the data, the axis, the output shape and the indices
    /// normalised into `[0, dim)`.
    #[allow(clippy::type_complexity)]
    fn operands<'a>(
        &self,
        inputs: &[Option<&'a Tensor>],
    ) -> Result<(&'a Tensor, usize, Vec<usize>, Vec<usize>), OpError> {
        let (x, idx) = (input(inputs, 0)?, input(inputs, 1)?);
        let (a, shape) = self.plan(inputs)?;
        let indices = normalize_indices(idx, x.shape[a], self.axis_attr())?;
        Ok((x, a, shape, indices))
    }
}

impl AlongAxis for Gather {
    fn axis_attr(&self) -> i64 {
        self.axis
    }

    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<(usize, Vec<usize>), OpError> {
        let (data, idx) = (x.shape(0)?, x.shape(1)?);
        if matches!(x.dtype(1)?, DType::F32 | DType::Bool) {
            return Err(OpError::mismatch(format!("indices must be integers, got {}", dtype_name(x.dtype(1)?))));
        }
        let a = axis(self.axis, data.len())?;
        let out: Vec<usize> = data[..a].iter().chain(idx).chain(&data[a + 1..]).copied().collect();
        checked_numel(&out)?;
        Ok((a, out))
    }
}

impl Op for Gather {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        self.infer_facts(inputs)
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (x, a, shape, indices) = self.operands(inputs)?;
        let outer: usize = x.shape[..a].iter().product();
        let inner: usize = x.shape[a + 1..].iter().product();
        let row = x.shape[a] * inner;
        let data = dispatch!(x.dtype(), T => {
            let src = typed::<T>(x)?;
            let mut out = Vec::with_capacity(shape.iter().product());
            for o in 0..outer {
                for &i in &indices {
                    let at = o * row + i * inner;
                    out.extend_from_slice(&src[at..at + inner]);
                }
            }
            T::wrap(out)
        });
        Ok(vec![Tensor { shape, data }])
    }

    /// The data's gradient: each output element's gradient added back at the slice it was
    /// read from (an index given twice gets both). The indices take none.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let mut out: Grads = vec![None; b.inputs.len()];
        let x = f32_in(b.inputs, 0)?;
        let (_, a, shape, indices) = self.operands(b.inputs)?;
        let Some(g) = out_grad(b.grads, 0, shape.iter().product())? else { return Ok(out) };
        let outer: usize = x.shape[..a].iter().product();
        let inner: usize = x.shape[a + 1..].iter().product();
        let row = x.shape[a] * inner;
        let mut dx = vec![0.0f32; x.len()];
        let mut k = 0;
        for o in 0..outer {
            for &i in &indices {
                let at = o * row + i * inner;
                dx[at..at + inner].iter_mut().zip(&g[k..k + inner]).for_each(|(d, &v)| *d += v);
                k += inner;
            }
        }
        out[0] = Some(f32_tensor(x.shape.clone(), dx));
        Ok(out)
    }
}
