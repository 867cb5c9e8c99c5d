//! The QAT loop: a PTQ model fine-tuned against its FP32 teacher on calibration inputs, with a
//! fresh augmentation each step, a held-out check every few steps and the best step kept — the result is never worse, on the
//! held-out inputs, than the PTQ model it started from (step 0).

use super::{Adam, Qat, TrainError};
use crate::model::{Graph, Plan, PlanOptions, Tensor};
use crate::ops::Registry;
use crate::quant::error_metrics;
use serde::Serialize;

/// How to fine-tune.
#[derive(Debug, Clone)]
pub struct QatOptions {
    /// Optimizer steps.
    pub steps: usize,
    /// Adam's step size (weights and biases; scales step this fraction of their size).
    pub lr: f32,
    /// Inputs per step (their gradients are averaged).
    pub batch: usize,
    /// Held-out check every this many steps (and after the last).
    pub eval_every: usize,
    /// Train on augmented copies of the inputs ([`augment`](super::augment)), a new draw each
    /// step, the teacher run on the same copy.
    pub augment: bool,
    /// Seed of the augmentation.
    pub seed: u64,
}

impl Default for QatOptions {
    fn default() -> Self {
        QatOptions { steps: 100, lr: 3e-5, batch: 4, eval_every: 10, augment: true, seed: 1 }
    }
}

/// One point of the training curve.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    /// Steps taken (0: the PTQ model).
    pub step: usize,
    /// The batch's mean distillation loss (before this step's update; `None` at step 0).
    pub loss: Option<f64>,
    /// Mean output SQNR against the teacher on the held-out inputs, in dB (when checked).
    pub held_out_sqnr_db: Option<f64>,
    /// Seconds since the start.
    pub seconds: f64,
}

/// What fine-tuning gives back.
#[derive(Debug, Clone, Serialize)]
pub struct FineTuned {
    /// The QDQ graph with the best step's values.
    #[serde(skip)]
    pub graph: Graph,
    /// Every step's loss, and the held-out checks.
    pub curve: Vec<CurvePoint>,
    /// The step kept (0: none improved on PTQ).
    pub best_step: usize,
    /// Held-out SQNR of the PTQ model and of the kept step, dB.
    pub ptq_sqnr_db: f64,
    /// See `ptq_sqnr_db`.
    pub qat_sqnr_db: f64,
    /// Mean seconds per step.
    pub seconds_per_step: f64,
}

fn mean_sqnr(got: &[Tensor], want: &[Tensor]) -> f64 {
    let dbs: Vec<f64> = got
        .iter()
        .zip(want)
        .filter_map(|(g, w)| Some(error_metrics(w.as_f32().ok()?, g.as_f32().ok()?).ok()?.sqnr_db))
        .map(|d| d.min(200.0))
        .collect();
    dbs.iter().sum::<f64>() / dbs.len().max(1) as f64
}

/// Fine-tunes the QDQ model `qdq` (PTQ's output for `fp32`) on `train` inputs, checking on
/// `held_out` ones. Each input is a full set of graph inputs. `progress` sees every curve
/// point and returns false to stop (the best step so far is kept).
pub fn fine_tune(
    fp32: &Graph,
    qdq: &Graph,
    train: &[Vec<(String, Tensor)>],
    held_out: &[Vec<(String, Tensor)>],
    opts: &QatOptions,
    progress: &mut dyn FnMut(&CurvePoint) -> bool,
) -> Result<FineTuned, TrainError> {
    if train.is_empty() || held_out.is_empty() {
        return Err(TrainError::Setup(
            "fine-tuning needs inputs to train on and held-out ones to check on: give at least two".into(),
        ));
    }
    if opts.steps == 0 || opts.batch == 0 || !(opts.lr.is_finite() && opts.lr > 0.0) {
        return Err(TrainError::Setup("steps and batch must be at least 1, and lr a positive number".into()));
    }
    let t0 = std::time::Instant::now();
    let teacher = Plan::with_options(fp32, &Registry::new(), &[], PlanOptions::default())?;
    let teach = |xs: &[Vec<(String, Tensor)>]| -> Result<Vec<Vec<Tensor>>, TrainError> {
        xs.iter().map(|x| Ok(teacher.run(x)?)).collect()
    };
    let train_want = if opts.augment { Vec::new() } else { teach(train)? };
    let held_want = teach(held_out)?;
    let mut qat = Qat::new(qdq, &[])?;
    let check = |qat: &Qat| -> Result<f64, TrainError> {
        let mut total = 0.0;
        for (x, want) in held_out.iter().zip(&held_want) {
            total += mean_sqnr(&qat.student.forward(x)?.outputs, want);
        }
        Ok(total / held_out.len() as f64)
    };
    let ptq_sqnr_db = check(&qat)?;
    let mut best = (0, ptq_sqnr_db, qat.snapshot());
    let mut curve = vec![CurvePoint { step: 0, loss: None, held_out_sqnr_db: Some(ptq_sqnr_db), seconds: 0.0 }];
    let mut go_on = progress(&curve[0]);
    let mut adam = Adam::new(opts.lr);
    let mut rng = super::augment::Rng::new(opts.seed);
    let mut step = 0;
    while go_on && step < opts.steps {
        let k0 = step * opts.batch;
        let batch: Vec<usize> = (k0..k0 + opts.batch).map(|k| k % train.len()).collect();
        let loss = if opts.augment {
            let mut xs = Vec::with_capacity(batch.len());
            let mut ws = Vec::with_capacity(batch.len());
            for &k in &batch {
                let x: Vec<(String, Tensor)> =
                    train[k].iter().map(|(n, t)| (n.clone(), super::augment::augment(t, &mut rng))).collect();
                ws.push(teacher.run(&x)?);
                xs.push(x);
            }
            let xs: Vec<&[(String, Tensor)]> = xs.iter().map(Vec::as_slice).collect();
            let ws: Vec<&[Tensor]> = ws.iter().map(Vec::as_slice).collect();
            qat.step_batch(&mut adam, &xs, &ws)?
        } else {
            let xs: Vec<&[(String, Tensor)]> = batch.iter().map(|&k| train[k].as_slice()).collect();
            let ws: Vec<&[Tensor]> = batch.iter().map(|&k| train_want[k].as_slice()).collect();
            qat.step_batch(&mut adam, &xs, &ws)?
        };
        step += 1;
        let held = if step % opts.eval_every.max(1) == 0 || step == opts.steps { Some(check(&qat)?) } else { None };
        if let Some(db) = held.filter(|&db| db > best.1) {
            best = (step, db, qat.snapshot());
        }
        let point = CurvePoint { step, loss: Some(loss), held_out_sqnr_db: held, seconds: t0.elapsed().as_secs_f64() };
        go_on = progress(&point);
        curve.push(point);
    }
    let seconds_per_step = t0.elapsed().as_secs_f64() / step.max(1) as f64;
    qat.restore(&best.2);
    Ok(FineTuned { graph: qat.export()?, curve, best_step: best.0, ptq_sqnr_db, qat_sqnr_db: best.1, seconds_per_step })
}
