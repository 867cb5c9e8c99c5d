//! Clip: limits values to `[min, max]`. Before opset 11 the bounds are float attributes; from
//! opset 11 they are optional scalar inputs (so integer tensors can be clipped too, opset 12).
//! When min > max every value becomes max, as the spec says.

use crate::model::{DType, Node, Tensor};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::shape::elem::{dispatch, dtype_name, typed, Elem};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// Clip, with attribute bounds (opset < 11) or input bounds.
#[derive(Debug, Clone)]
pub struct Clip {
    /// `(min, max)` attributes before opset 11; `None` means the bounds are inputs 1 and 2.
    attr_bounds: Option<(Option<f32>, Option<f32>)>,
}

/// Builds Clip from its node.
pub fn build(node: &Node, ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let attr_bounds = (ctx.opset < 11).then(|| (node.attrs.float_opt("min"), node.attrs.float_opt("max")));
    Ok(Box::new(Clip { attr_bounds }))
}

impl Clip {
    /// The `(min, max)` attributes before opset 11; `None`: the bounds are inputs 1 and 2.
    pub fn attr_bounds(&self) -> Option<(Option<f32>, Option<f32>)> {
        self.attr_bounds
    }

    fn check(&self, dtype: DType, inputs: &[Option<DType>]) -> Result<(), OpError> {
        if dtype == DType::Bool || (self.attr_bounds.is_some() && dtype != DType::F32) {
            return Err(OpError::mismatch(format!("cannot clip a {} tensor", dtype_name(dtype))));
        }
        for (i, d) in inputs.iter().enumerate().skip(1) {
            if let Some(d) = d.filter(|&d| d != dtype) {
                return Err(OpError::mismatch(format!(
                    "bound (input {i}) is {}, the input is {}",
                    dtype_name(d),
                    dtype_name(dtype)
                )));
            }
        }
        Ok(())
    }

    fn bound<T: Elem>(&self, inputs: &[Option<&Tensor>], i: usize) -> Result<Option<T>, OpError> {
        if let Some((lo, hi)) = self.attr_bounds {
            return Ok(if i == 1 { lo } else { hi }.map(T::from_f32));
        }
        match inputs.get(i).copied().flatten() {
            None => Ok(None),
            Some(t) => match typed::<T>(t)? {
                [v] => Ok(Some(*v)),
                _ => {
                    Err(OpError::mismatch(format!("bound (input {i}) must be a single value, got shape {:?}", t.shape)))
                }
            },
        }
    }

    fn apply<T: Elem>(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<T>, OpError> {
        let x = typed::<T>(input(inputs, 0)?)?;
        // The bounds are matched once, outside the loop, so each loop is branch-free.
        let lower = |v: T, l: T| if v < l { l } else { v };
        let upper = |v: T, h: T| if v > h { h } else { v };
        Ok(match (self.bound::<T>(inputs, 1)?, self.bound::<T>(inputs, 2)?) {
            (Some(l), Some(h)) => x.iter().map(|&v| upper(lower(v, l), h)).collect(),
            (Some(l), None) => x.iter().map(|&v| lower(v, l)).collect(),
            (None, Some(h)) => x.iter().map(|&v| upper(v, h)).collect(),
            (None, None) => x.to_vec(),
        })
    }
}

impl Op for Clip {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        self.check(x.dtype, &inputs.iter().map(|f| f.map(|f| f.dtype)).collect::<Vec<_>>())?;
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        self.check(x.dtype(), &inputs.iter().map(|t| t.map(Tensor::dtype)).collect::<Vec<_>>())?;
        let data = dispatch!(x.dtype(), T => T::wrap(self.apply::<T>(inputs)?));
        Ok(vec![Tensor { shape: x.shape.clone(), data }])
    }

    /// The gradient passes where `min ≤ x ≤ max`; the bounds take none.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let x = f32_in(inputs, 0)?;
        let mut out: Grads = vec![None; inputs.len()];
        let Some(g) = out_grad(grads, 0, x.len())? else { return Ok(out) };
        let (lo, hi) = (self.bound::<f32>(inputs, 1)?, self.bound::<f32>(inputs, 2)?);
        let (lo, hi) = (lo.unwrap_or(f32::NEG_INFINITY), hi.unwrap_or(f32::INFINITY));
        let xv = x.as_f32().map_err(OpError::internal)?;
        let gx = g.iter().zip(xv).map(|(&g, &x)| if x >= lo && x <= hi { g } else { 0.0 }).collect();
        out[0] = Some(f32_tensor(x.shape.clone(), gx));
        Ok(out)
    }
}
