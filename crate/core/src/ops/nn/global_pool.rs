//! `GlobalAveragePool` and `GlobalMaxPool`: one value per `(N, C)` plane, spatial dims kept as
//! size 1 (`[N, C, H, W] → [N, C, 1, 1]`).

use super::{f32_fact, f32_input, f32_output};
use crate::model::{DType, Node};
use crate::ops::grad::{f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{BuildCtx, Fact, Op, OpError, Tensor};

/// A built global pooling node.
#[derive(Debug, Clone)]
pub struct GlobalPool {
    max: bool,
}

/// Builds `GlobalAveragePool` (no attributes).
pub fn build_average(_node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(GlobalPool { max: false }))
}

impl GlobalPool {
    /// `GlobalMaxPool` rather than `GlobalAveragePool`.
    pub fn is_max(&self) -> bool {
        self.max
    }
}

/// Builds `GlobalMaxPool` (no attributes).
pub fn build_max(_node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(GlobalPool { max: true }))
}

fn out_shape(x: &[usize]) -> Result<Vec<usize>, OpError> {
    if x.len() < 3 {
        return Err(OpError::mismatch(format!("input X must be [N, C, spatial…] (rank ≥ 3), got shape {x:?}")));
    }
    if x[2..].contains(&0) {
        return Err(OpError::mismatch(format!("input X {x:?} has an empty spatial dimension")));
    }
    let mut s = x[..2].to_vec();
    s.resize(x.len(), 1);
    Ok(s)
}

impl Op for GlobalPool {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = f32_fact(inputs, 0, "X")?;
        Ok(vec![Fact::new(DType::F32, out_shape(&x.shape)?)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = f32_input(inputs, 0, "X")?;
        let shape = super::input_shape(inputs, 0).unwrap_or_default();
        let out_shape = out_shape(shape)?;
        let plane: usize = shape[2..].iter().product();
        let out = x
            .chunks_exact(plane)
            .map(|p| {
                if self.max {
                    p.iter().copied().fold(f32::NEG_INFINITY, f32::max)
                } else {
                    p.iter().sum::<f32>() / plane as f32
                }
            })
            .collect();
        Ok(vec![f32_output(out_shape, out)?])
    }

    /// Average: each plane's gradient spread evenly over it. Max: all of it to the plane's
    /// first largest non-NaN value (NaN never wins, as in the forward's `f32::max`).
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let x = f32_input(inputs, 0, "X")?;
        let shape = super::input_shape(inputs, 0).unwrap_or_default();
        let planes: usize = out_shape(shape)?.iter().product();
        let mut out: Grads = vec![None; inputs.len()];
        let Some(g) = out_grad(grads, 0, planes)? else { return Ok(out) };
        let plane: usize = shape[2..].iter().product();
        let mut dx = vec![0.0f32; x.len()];
        for ((xp, dp), &go) in x.chunks_exact(plane).zip(dx.chunks_exact_mut(plane)).zip(g) {
            if self.max {
                let mut best: Option<(f32, usize)> = None;
                for (i, &v) in xp.iter().enumerate() {
                    if !v.is_nan() && best.is_none_or(|(b, _)| v > b) {
                        best = Some((v, i));
                    }
                }
                if let Some((_, i)) = best {
                    dp[i] = go;
                }
            } else {
                let share = go / plane as f32;
                dp.iter_mut().for_each(|d| *d = share);
            }
        }
        out[0] = Some(f32_tensor(shape.to_vec(), dx));
        Ok(out)
    }
}
