//! Adam (Kingma & Ba, 2015) over a list of float tensors, with global-norm gradient clipping.
//! Deterministic: the same gradients in the same order give the same parameters, bit for bit.

use super::TrainError;
use crate::model::{Data, Tensor};

/// Adam's state: the first and second moment of every parameter, and the step count.
#[derive(Debug, Clone)]
pub struct Adam {
    /// Step size.
    pub lr: f32,
    /// First-moment decay (0.9).
    pub beta1: f32,
    /// Second-moment decay (0.999).
    pub beta2: f32,
    /// Added to the second moment's root (1e-8).
    pub eps: f32,
    /// Gradients whose global L2 norm exceeds this are scaled down to it (`None`: no clipping).
    pub clip_norm: Option<f32>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: i32,
}

impl Adam {
    /// Adam with step size `lr` and the usual constants.
    pub fn new(lr: f32) -> Adam {
        Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, clip_norm: Some(1.0), m: Vec::new(), v: Vec::new(), t: 0 }
    }

    /// Steps taken.
    pub fn steps(&self) -> i32 {
        self.t
    }

    /// One update of `params` by `grads` (same order and shapes). Returns the gradients'
    /// global norm before clipping.
    pub fn step<'p>(
        &mut self,
        params: impl Iterator<Item = &'p mut Tensor>,
        grads: &[Tensor],
    ) -> Result<f32, TrainError> {
        self.step_scaled(params, grads, &[])
    }

    /// [`Adam::step`] where the parameters marked in `relative` (false where the list is
    /// short) step in log space, `p ← p · exp(−lr · u)` for Adam's update `u`: quantization
    /// scales, which span orders of magnitude across channels, move by the same fraction of
    /// their size and stay positive.
    pub fn step_scaled<'p>(
        &mut self,
        params: impl Iterator<Item = &'p mut Tensor>,
        grads: &[Tensor],
        relative: &[bool],
    ) -> Result<f32, TrainError> {
        let gs: Vec<&[f32]> =
            grads.iter().map(|g| g.as_f32().map_err(|e| TrainError::Setup(e.to_string()))).collect::<Result<_, _>>()?;
        let norm = gs.iter().flat_map(|g| g.iter()).map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt() as f32;
        if !norm.is_finite() {
            return Err(TrainError::NonFinite("the gradient".into()));
        }
        let scale = match self.clip_norm {
            Some(c) if norm > c => c / norm,
            _ => 1.0,
        };
        if self.m.is_empty() {
            self.m = gs.iter().map(|g| vec![0.0; g.len()]).collect();
            self.v = self.m.clone();
        }
        self.t += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        let mut n = 0;
        for (k, p) in params.enumerate() {
            let (Some(g), Some(m), Some(v)) = (gs.get(k), self.m.get_mut(k), self.v.get_mut(k)) else {
                return Err(TrainError::Setup("more parameters than gradients".into()));
            };
            let Data::F32(p) = &mut p.data else { return Err(TrainError::Setup("a parameter is not float32".into())) };
            if p.len() != g.len() {
                return Err(TrainError::Setup(format!(
                    "parameter {k} has {} values, its gradient {}",
                    p.len(),
                    g.len()
                )));
            }
            let log_space = relative.get(k).copied().unwrap_or(false);
            for i in 0..p.len() {
                // In log space the gradient is d/d(ln p) = p · d/dp.
                let g = g[i] * scale * if log_space { p[i] } else { 1.0 };
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                let u = self.lr * (m[i] / c1) / ((v[i] / c2).sqrt() + self.eps);
                if log_space {
                    p[i] *= (-u).exp();
                } else {
                    p[i] -= u;
                }
            }
            n += 1;
        }
        if n != gs.len() {
            return Err(TrainError::Setup(format!("{n} parameters for {} gradients", gs.len())));
        }
        Ok(norm)
    }
}
