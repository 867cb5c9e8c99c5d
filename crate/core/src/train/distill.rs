//! Label-free distillation: the student's raw outputs against the frozen teacher's on the same
//! input. Each output's mean squared error is divided by the variance of the teacher's values,
//! so a box head in pixels and a score head in logits weigh alike; a loss of 1 is as far off as
//! predicting each output's mean.

use super::TrainError;
use crate::model::Tensor;
use crate::ops::grad::f32_tensor;

/// The loss and its gradient for each student output.
#[derive(Debug, Clone)]
pub struct Loss {
    /// `Σ_o mse_o / var_o`.
    pub value: f64,
    /// Each output's term, in output order.
    pub per_output: Vec<f64>,
    /// `d loss / d student_o`, in output order.
    pub grads: Vec<Option<Tensor>>,
}

/// The distillation loss of `student` outputs against `teacher` outputs (same order, shapes).
pub fn distill_loss(student: &[Tensor], teacher: &[Tensor]) -> Result<Loss, TrainError> {
    distill_loss_of(student, teacher, &[])
}

/// [`distill_loss`] of the outputs `mask` marks (an empty mask: all; an output it leaves out
/// has no term and no gradient).
pub fn distill_loss_of(student: &[Tensor], teacher: &[Tensor], mask: &[bool]) -> Result<Loss, TrainError> {
    if student.len() != teacher.len() {
        return Err(TrainError::Setup(format!("{} student outputs, {} teacher outputs", student.len(), teacher.len())));
    }
    let (mut value, mut per_output, mut grads) = (0.0, Vec::new(), Vec::new());
    for (k, (s, t)) in student.iter().zip(teacher).enumerate() {
        if !mask.get(k).copied().unwrap_or(true) {
            per_output.push(0.0);
            grads.push(None);
            continue;
        }
        let (Ok(sv), Ok(tv)) = (s.as_f32(), t.as_f32()) else {
            // Integer outputs (indices, counts) carry no gradient.
            per_output.push(0.0);
            grads.push(None);
            continue;
        };
        if s.shape != t.shape {
            return Err(TrainError::Setup(format!("output {k}: student {:?}, teacher {:?}", s.shape, t.shape)));
        }
        let n = sv.len().max(1) as f64;
        let mean = tv.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = (tv.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n).max(1e-8);
        let mse = sv.iter().zip(tv).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum::<f64>() / n;
        let term = mse / var;
        if !term.is_finite() {
            return Err(TrainError::NonFinite(format!("the loss of output {k}")));
        }
        let c = 2.0 / (n * var);
        let g = sv.iter().zip(tv).map(|(&a, &b)| ((f64::from(a) - f64::from(b)) * c) as f32).collect();
        value += term;
        per_output.push(term);
        grads.push(Some(f32_tensor(s.shape.clone(), g)));
    }
    Ok(Loss { value, per_output, grads })
}
