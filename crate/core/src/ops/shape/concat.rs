//! Concat: joins tensors of one type and rank along an axis (any element type).

use super::args::{all_present, axis, checked_numel, Inputs};
use super::elem::{dispatch, dtype_name, typed, Elem};
use crate::model::{DType, Node, Tensor};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// Concat.
#[derive(Debug, Clone)]
pub struct Concat {
    axis: i64,
}

/// Builds Concat (the `axis` attribute is required).
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let axis = node.attrs.int_opt("axis").ok_or_else(|| OpError::malformed("Concat needs the `axis` attribute"))?;
    Ok(Box::new(Concat { axis }))
}

impl Concat {
    /// `axis` (may be negative).
    pub fn axis(&self) -> i64 {
        self.axis
    }

    /// The axis, the output type and the output shape.
    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<(usize, DType, Vec<usize>), OpError> {
        if x.count() == 0 {
            return Err(OpError::malformed("Concat needs at least one input"));
        }
        let (first, dtype) = (x.shape(0)?, x.dtype(0)?);
        let a = axis(self.axis, first.len())?;
        let mut out = first.to_vec();
        for i in 1..x.count() {
            let (s, d) = (x.shape(i)?, x.dtype(i)?);
            if d != dtype {
                return Err(OpError::mismatch(format!(
                    "input {i} is {}, input 0 is {}",
                    dtype_name(d),
                    dtype_name(dtype)
                )));
            }
            let same_elsewhere = s.len() == first.len() && (0..s.len()).all(|k| k == a || s[k] == first[k]);
            if !same_elsewhere {
                return Err(OpError::mismatch(format!(
                    "input {i} has shape {s:?}, which does not match input 0's {first:?} outside axis {}",
                    self.axis
                )));
            }
            out[a] = out[a].checked_add(s[a]).ok_or_else(|| OpError::limit("the concatenated dimension overflows"))?;
        }
        checked_numel(&out)?;
        Ok((a, dtype, out))
    }
}

impl Op for Concat {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (_, dtype, shape) = self.plan(inputs)?;
        Ok(vec![Fact::new(dtype, shape)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (a, dtype, shape) = self.plan(inputs)?;
        let xs = all_present(inputs)?;
        let outer: usize = shape[..a].iter().product();
        // Each input contributes one contiguous chunk per outer index.
        let chunks: Vec<usize> = xs.iter().map(|t| t.shape[a..].iter().product()).collect();
        let data = dispatch!(dtype, T => {
            let parts = xs.iter().map(|t| typed::<T>(t)).collect::<Result<Vec<_>, _>>()?;
            let mut out = Vec::with_capacity(shape.iter().product());
            for o in 0..outer {
                for (p, &len) in parts.iter().zip(&chunks) {
                    out.extend_from_slice(&p[o * len..(o + 1) * len]);
                }
            }
            T::wrap(out)
        });
        Ok(vec![Tensor { shape, data }])
    }

    /// The gradient cut back into the inputs' parts along the axis.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let (a, _, shape) = self.plan(inputs)?;
        let xs: Vec<&Tensor> = (0..inputs.len()).map(|i| f32_in(inputs, i)).collect::<Result<_, _>>()?;
        let Some(g) = out_grad(grads, 0, shape.iter().product())? else { return Ok(vec![None; xs.len()]) };
        let outer: usize = shape[..a].iter().product();
        let chunks: Vec<usize> = xs.iter().map(|t| t.shape[a..].iter().product()).collect();
        let mut parts: Vec<Vec<f32>> = xs.iter().map(|t| Vec::with_capacity(t.len())).collect();
        let mut at = 0;
        for _ in 0..outer {
            for (p, &len) in parts.iter_mut().zip(&chunks) {
                p.extend_from_slice(&g[at..at + len]);
                at += len;
            }
        }
        Ok(xs.iter().zip(parts).map(|(x, p)| Some(f32_tensor(x.shape.clone(), p))).collect())
    }
}
