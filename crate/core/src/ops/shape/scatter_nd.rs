//! ScatterND: a copy of `data` with the slices addressed by `indices` (as in GatherND, no batch
//! axes) replaced by `updates`, or combined with them by `reduction` (`add`, `mul`, `max`, `min`;
//! opset 16 and 18). Updates are applied in index order, so with `none` a repeated index keeps
//! the last update (the spec leaves that undefined; onnxruntime does the same).

use super::args::Inputs;
use super::elem::{dispatch, typed, Elem};
use super::gather_nd::{nd_offsets, nd_plan};
use crate::model::{Node, Tensor};
use crate::ops::grad::{out_grad, Backward, GradError, Grads};
use crate::ops::{input, BuildCtx, Fact, Op, OpError};

/// How an update combines with the value it lands on (ScatterND, ScatterElements).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Reduction {
    None,
    Add,
    Mul,
    Max,
    Min,
}

/// ScatterND.
#[derive(Debug, Clone)]
pub struct ScatterNd {
    reduction: Reduction,
}

/// The node's `reduction` attribute.
pub(super) fn reduction(node: &Node) -> Result<Reduction, OpError> {
    Ok(match node.attrs.string("reduction", "none") {
        "none" => Reduction::None,
        "add" => Reduction::Add,
        "mul" => Reduction::Mul,
        "max" => Reduction::Max,
        "min" => Reduction::Min,
        r => return Err(OpError::malformed(format!("reduction `{r}` is not one of none, add, mul, max, min"))),
    })
}

/// Builds ScatterND.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(ScatterNd { reduction: reduction(node)? }))
}

impl ScatterNd {
    fn check<I: Inputs + ?Sized>(x: &I) -> Result<(), OpError> {
        let (_, want) = nd_plan(x.shape(0)?, x.shape(1)?, 0, "ScatterND")?;
        if x.shape(2)? != want.as_slice() {
            return Err(OpError::mismatch(format!(
                "updates have shape {:?}; these indices and data need {want:?}",
                x.shape(2)?
            )));
        }
        if x.dtype(2)? != x.dtype(0)? {
            return Err(OpError::mismatch("updates and data must have the same type"));
        }
        Ok(())
    }
}

/// `a` combined with the update `b`.
pub(super) fn combine<T: Elem>(r: Reduction, a: T, b: T) -> T {
    let float = T::DTYPE == crate::model::DType::F32;
    match r {
        Reduction::None => b,
        Reduction::Max => {
            if b > a {
                b
            } else {
                a
            }
        }
        Reduction::Min => {
            if b < a {
                b
            } else {
                a
            }
        }
        Reduction::Add if float => T::from_f32(a.to_f32() + b.to_f32()),
        Reduction::Mul if float => T::from_f32(a.to_f32() * b.to_f32()),
        Reduction::Add => T::from_i64(a.to_i64().wrapping_add(b.to_i64())),
        Reduction::Mul => T::from_i64(a.to_i64().wrapping_mul(b.to_i64())),
    }
}

impl Op for ScatterNd {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Self::check(inputs)?;
        Ok(vec![Fact::new(inputs.dtype(0)?, inputs.shape(0)?.to_vec())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (x, idx, upd) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        Self::check(inputs)?;
        let (offsets, slice) = nd_offsets(&x.shape, idx, 0)?;
        let r = self.reduction;
        let data = dispatch!(x.dtype(), T => {
            let mut out = typed::<T>(x)?.to_vec();
            let u = typed::<T>(upd)?;
            for (k, &o) in offsets.iter().enumerate() {
                for j in 0..slice {
                    out[o + j] = combine(r, out[o + j], u[k * slice + j]);
                }
            }
            T::wrap(out)
        });
        Ok(vec![Tensor { shape: x.shape.clone(), data }])
    }

    /// With `reduction` none or add, of float data: the data's gradient is the output's, less
    /// (none) the places an update replaced; each update's gradient is the output's where it
    /// landed — with none only the last of a repeated index's updates, the one that stayed.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let mut out: Grads = vec![None; b.inputs.len()];
        if !matches!(self.reduction, Reduction::None | Reduction::Add) {
            return Err(GradError::NoBackward);
        }
        let (x, idx, upd) = (input(b.inputs, 0)?, input(b.inputs, 1)?, input(b.inputs, 2)?);
        if x.dtype() != crate::model::DType::F32 {
            return Ok(out);
        }
        Self::check(b.inputs)?;
        let Some(g) = out_grad(b.grads, 0, x.len())? else { return Ok(out) };
        let (offsets, slice) = nd_offsets(&x.shape, idx, 0)?;
        let mut dx = g.to_vec();
        let mut du = vec![0.0f32; upd.len()];
        let mut taken = vec![false; if self.reduction == Reduction::None { x.len() } else { 0 }];
        for (k, &o) in offsets.iter().enumerate().rev() {
            for j in 0..slice {
                if self.reduction == Reduction::Add {
                    du[k * slice + j] = g[o + j];
                } else if !taken[o + j] {
                    taken[o + j] = true;
                    du[k * slice + j] = g[o + j];
                    dx[o + j] = 0.0;
                }
            }
        }
        let f = |shape: &[usize], v: Vec<f32>| Some(Tensor { shape: shape.to_vec(), data: crate::model::Data::F32(v) });
        out[0] = f(&x.shape, dx);
        out[2] = f(&upd.shape, du);
        Ok(out)
    }
}
