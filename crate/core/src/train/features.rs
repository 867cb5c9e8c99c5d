//! The per-layer feature term of distillation: besides the outputs, the student's quantized
//! activations are pulled towards the teacher's at the same tensors. Each layer then gets its
//! own signal instead of only what reaches it back from the outputs, which matters most when
//! the images are few and the weights coarse (4 bits).
//!
//! The tensors are the inputs of the student's activation fake quantizers that the FP32 model
//! computes under the same name and shape (graph outputs excluded: the output term has them).
//! Cross-layer equalization rescales the channels between two convolutions, so the student's
//! channel `c` is the teacher's times a constant; each channel's factor `k_c` is fitted once,
//! by least squares on the training inputs at step 0 (`k_c = Σ s·t / Σ t²`, 1 where the teacher's
//! channel is all zero), and the target is `k_c · t`. Without equalization the factors are ≈ 1.
//! A tensor whose fit leaves more error than signal (fit SQNR below 0 dB) is not the same
//! quantity in both models and is left out.
//!
//! Each tensor's term is its mean squared error divided by the variance of its target, and the
//! feature term is their mean times the weight: at weight 1 all the layers together weigh as
//! much as one output.

use super::{Student, Tape, TrainError};
use crate::model::{Plan, Tensor};
use crate::ops::grad::f32_tensor;
use std::collections::HashMap;

/// The tensors of the feature term and their per-channel factors.
#[derive(Debug, Clone)]
pub struct FeatureTerm {
    /// Tensor names, in the student's step order.
    names: Vec<String>,
    /// Each tensor's slot in the student's plan.
    slots: Vec<usize>,
    /// Each tensor's factor per channel (axis 1; one factor for tensors of rank below 2).
    gains: Vec<Vec<f32>>,
    /// The term's weight against the output term.
    weight: f64,
}

/// Channels of a tensor of `shape` along axis 1, and the run of one channel's values.
fn channel_layout(shape: &[usize]) -> (usize, usize) {
    if shape.len() < 2 {
        return (1, shape.iter().product::<usize>().max(1));
    }
    (shape[1].max(1), shape[2..].iter().product::<usize>().max(1))
}

/// The channel of element `i` in a tensor of `c` channels of `run` values each.
fn channel(i: usize, c: usize, run: usize) -> usize {
    (i / run) % c
}

impl FeatureTerm {
    /// Chooses the tensors and fits their factors: `candidates` are the student's activation
    /// tensors (fake quantizer inputs), `teacher` the FP32 plan, `inputs` the training inputs.
    /// `None` when no tensor qualifies.
    pub fn fit(
        student: &Student,
        candidates: &[String],
        teacher: &Plan,
        inputs: &[Vec<(String, Tensor)>],
        weight: f64,
    ) -> Result<Option<FeatureTerm>, TrainError> {
        let outputs: std::collections::HashSet<&str> = teacher.output_names().into_iter().collect();
        let mut names: Vec<String> = Vec::new();
        let mut slots = Vec::new();
        for name in candidates {
            if outputs.contains(name.as_str()) || names.contains(name) {
                continue;
            }
            if let Some(s) = student.slot_of(name) {
                names.push(name.clone());
                slots.push(s);
            }
        }
        if names.is_empty() || inputs.is_empty() {
            return Ok(None);
        }
        // Per tensor and channel: Σ s·t, Σ t², Σ s².
        let mut sums: Vec<Option<Vec<[f64; 3]>>> = vec![None; names.len()];
        let mut ok = vec![true; names.len()];
        for x in inputs {
            let (_, want) = teacher_features(teacher, x, &names)?;
            let tape = student.forward(x)?;
            for (k, (t, &slot)) in want.iter().zip(&slots).enumerate() {
                let (Some(t), Some(s)) = (t, tape.env.get(slot)) else {
                    ok[k] = false;
                    continue;
                };
                let (Ok(tv), Ok(sv)) = (t.as_f32(), s.as_f32()) else {
                    ok[k] = false;
                    continue;
                };
                if t.shape != s.shape {
                    ok[k] = false;
                    continue;
                }
                let (c, run) = channel_layout(&t.shape);
                let acc = sums[k].get_or_insert_with(|| vec![[0.0; 3]; c]);
                for (i, (&a, &b)) in sv.iter().zip(tv).enumerate() {
                    let e = &mut acc[channel(i, c, run)];
                    let (a, b) = (f64::from(a), f64::from(b));
                    e[0] += a * b;
                    e[1] += b * b;
                    e[2] += a * a;
                }
            }
        }
        let mut term = FeatureTerm { names: vec![], slots: vec![], gains: vec![], weight };
        for (k, acc) in sums.into_iter().enumerate() {
            let Some(acc) = acc.filter(|_| ok[k]) else { continue };
            let gains: Vec<f64> = acc.iter().map(|e| if e[1] > 0.0 { e[0] / e[1] } else { 1.0 }).collect();
            let signal: f64 = acc.iter().map(|e| e[2]).sum();
            // Σ (s − k t)² = Σ s² − 2k Σ st + k² Σ t².
            let error: f64 =
                acc.iter().zip(&gains).map(|(e, &g)| (e[2] - 2.0 * g * e[0] + g * g * e[1]).max(0.0)).sum();
            if !(signal > 0.0 && error < signal && gains.iter().all(|g| g.is_finite())) {
                continue;
            }
            term.names.push(names[k].clone());
            term.slots.push(slots[k]);
            term.gains.push(gains.iter().map(|&g| g as f32).collect());
        }
        Ok((!term.names.is_empty()).then_some(term))
    }

    /// The tensors in the term.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The teacher's run on `inputs`: its outputs, followed by the term's tensors in
    /// [`FeatureTerm::names`] order (what [`Qat`](super::Qat)'s steps take with the term on).
    pub fn teacher_run(&self, teacher: &Plan, inputs: &[(String, Tensor)]) -> Result<Vec<Tensor>, TrainError> {
        let (mut outputs, got) = teacher_features(teacher, inputs, &self.names)?;
        for (t, n) in got.into_iter().zip(&self.names) {
            outputs
                .push(t.ok_or_else(|| TrainError::Setup(format!("internal: the FP32 model did not compute `{n}`")))?);
        }
        Ok(outputs)
    }

    /// Per tensor (in [`FeatureTerm::names`] order), the energy of the target `k·t` and of the
    /// student's error `s − k·t` on `tape` against the teacher's `want`: what a per-layer
    /// SQNR adds up over inputs.
    pub fn energies(&self, tape: &Tape<'_>, want: &[Tensor]) -> Vec<(f64, f64)> {
        want.iter()
            .enumerate()
            .map(|(k, t)| {
                let Some(s) = tape.env.get(self.slots[k]) else { return (0.0, 0.0) };
                let (Ok(sv), Ok(tv)) = (s.as_f32(), t.as_f32()) else { return (0.0, 0.0) };
                if s.shape != t.shape {
                    return (0.0, 0.0);
                }
                let (c, run) = channel_layout(&s.shape);
                let gains = &self.gains[k];
                sv.iter().zip(tv).enumerate().fold((0.0, 0.0), |(sig, err), (i, (&a, &b))| {
                    let target = f64::from(b) * f64::from(gains[channel(i, c, run) % gains.len()]);
                    (sig + target * target, err + (f64::from(a) - target).powi(2))
                })
            })
            .collect()
    }

    /// The term's value on the student's `tape` against the teacher's `want` (in
    /// [`FeatureTerm::names`] order), and the gradient seeds: `(slot, d term / d tensor)`.
    pub fn loss(&self, tape: &Tape<'_>, want: &[Tensor]) -> Result<(f64, Vec<(usize, Tensor)>), TrainError> {
        let m = self.names.len() as f64;
        let mut value = 0.0;
        let mut seeds = Vec::with_capacity(self.names.len());
        for (k, t) in want.iter().enumerate() {
            let s = tape
                .env
                .get(self.slots[k])
                .ok_or_else(|| TrainError::Setup(format!("internal: `{}` is not on the tape", self.names[k])))?;
            let (Ok(sv), Ok(tv)) = (s.as_f32(), t.as_f32()) else { continue };
            if s.shape != t.shape {
                return Err(TrainError::Setup(format!(
                    "`{}`: student {:?}, teacher {:?}",
                    self.names[k], s.shape, t.shape
                )));
            }
            let (c, run) = channel_layout(&s.shape);
            let gains = &self.gains[k];
            let target = |i: usize, b: f32| f64::from(b) * f64::from(gains[channel(i, c, run) % gains.len()]);
            let n = sv.len().max(1) as f64;
            let mean = tv.iter().enumerate().map(|(i, &b)| target(i, b)).sum::<f64>() / n;
            let var = (tv.iter().enumerate().map(|(i, &b)| (target(i, b) - mean).powi(2)).sum::<f64>() / n).max(1e-8);
            let mse =
                sv.iter().zip(tv).enumerate().map(|(i, (&a, &b))| (f64::from(a) - target(i, b)).powi(2)).sum::<f64>()
                    / n;
            let w = self.weight / m;
            let term = w * mse / var;
            if !term.is_finite() {
                return Err(TrainError::NonFinite(format!("the feature loss at `{}`", self.names[k])));
            }
            value += term;
            let g = 2.0 * w / (n * var);
            let grad =
                sv.iter().zip(tv).enumerate().map(|(i, (&a, &b))| ((f64::from(a) - target(i, b)) * g) as f32).collect();
            seeds.push((self.slots[k], f32_tensor(s.shape.clone(), grad)));
        }
        Ok((value, seeds))
    }
}

/// The teacher's outputs on `inputs`, and its tensors `names` (`None` where it did not compute
/// one).
type Run = (Vec<Tensor>, Vec<Option<Tensor>>);
fn teacher_features(teacher: &Plan, inputs: &[(String, Tensor)], names: &[String]) -> Result<Run, TrainError> {
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let mut got: Vec<Option<Tensor>> = vec![None; names.len()];
    let outputs = teacher.run_with(inputs, &mut |name, t| {
        if let Some(&i) = index.get(name) {
            got[i] = Some(t.clone());
        }
    })?;
    Ok((outputs, got))
}
