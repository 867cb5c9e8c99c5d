//! Adam (Kingma & Ba, 2015) over a list of float tensors, with global-norm gradient clipping.
//! Deterministic: the same gradients in the same order give the same parameters, bit for bit.

use super::TrainError;
use crate::model::{Data, Tensor};

/// How a parameter steps.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// `p ← p − lr · u`.
    Plain,
    /// In log space, `p ← p · exp(−lr · u)`: a fraction of its size, always positive.
    Relative,
    /// `p ← p − lr · sᵢ · uᵢ` with a size `sᵢ` per value (e.g. each weight's quantization step
    /// relative to the typical one, so every channel moves by a like share of its grid).
    Sized(Vec<f32>),
}

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
        let kinds: Vec<StepKind> =
            relative.iter().map(|&r| if r { StepKind::Relative } else { StepKind::Plain }).collect();
        self.step_kinds(params, grads, &kinds)
    }

    /// [`Adam::step`] with each parameter's [`StepKind`] (`Plain` where the list is short).
    pub fn step_kinds<'p>(
        &mut self,
        params: impl Iterator<Item = &'p mut Tensor>,
        grads: &[Tensor],
        kinds: &[StepKind],
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
            let kind = kinds.get(k).unwrap_or(&StepKind::Plain);
            let log_space = matches!(kind, StepKind::Relative);
            let sizes = match kind {
                StepKind::Sized(s) if s.len() == p.len() => Some(s.as_slice()),
                StepKind::Sized(s) => {
                    return Err(TrainError::Setup(format!(
                        "parameter {k} has {} values and {} step sizes",
                        p.len(),
                        s.len()
                    )))
                }
                _ => None,
            };
            for i in 0..p.len() {
                // In log space the gradient is d/d(ln p) = p · d/dp.
                let g = g[i] * scale * if log_space { p[i] } else { 1.0 };
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                let mut u = self.lr * (m[i] / c1) / ((v[i] / c2).sqrt() + self.eps);
                if let Some(s) = sizes {
                    u *= s[i];
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: Vec<f32>) -> Tensor {
        Tensor { shape: vec![v.len()], data: Data::F32(v) }
    }

    #[test]
    fn sized_steps_scale_each_value_and_relative_steps_stay_positive() {
        // Adam's first step moves every value by lr whatever its gradient's size.
        let mut p = [t(vec![1.0, 1.0, 1.0]), t(vec![0.5, 0.5])];
        let g = [t(vec![0.3, 0.3, -0.3]), t(vec![1.0, -1.0])];
        let mut adam = Adam::new(0.1);
        adam.clip_norm = None;
        let kinds = [StepKind::Sized(vec![1.0, 2.0, 0.5]), StepKind::Relative];
        adam.step_kinds(p.iter_mut(), &g, &kinds).unwrap();
        let a = p[0].as_f32().unwrap();
        for (v, want) in a.iter().zip([0.9, 0.8, 1.05]) {
            assert!((v - want).abs() < 1e-5, "{a:?}");
        }
        let b = p[1].as_f32().unwrap();
        assert!((b[0] - 0.5 * (-0.1f32).exp()).abs() < 1e-6 && (b[1] - 0.5 * 0.1f32.exp()).abs() < 1e-6, "{b:?}");
        // A size list of the wrong length is refused, not read out of bounds.
        let bad = [StepKind::Sized(vec![1.0]), StepKind::Plain];
        assert!(adam.step_kinds(p.iter_mut(), &g, &bad).is_err());
    }
}
