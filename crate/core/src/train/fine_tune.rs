//! The QAT loop: a PTQ model fine-tuned against its FP32 teacher on calibration inputs, with a
//! fresh augmentation each step, a held-out check every few steps and the best step kept — the
//! result is never worse, on the held-out inputs, than the PTQ model it started from (step 0):
//! a step is kept only when its output SQNR is higher and, where an evaluator scores detection
//! agreement, that agreement is no lower than step 0's.

pub use super::QatOptions;
use super::{Adam, Qat, TrainError};
use crate::model::{Graph, Plan, PlanOptions, Tensor};
use crate::ops::Registry;
use crate::quant::error_metrics;
use serde::Serialize;

pub use super::changes::{changes, Change, LayerSqnr};

/// One point of the training curve.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    /// Steps taken (0: the PTQ model).
    pub step: usize,
    /// The batch's mean distillation loss (before this step's update; `None` at step 0).
    pub loss: Option<f64>,
    /// Mean output SQNR against the teacher on the held-out inputs, in dB (when checked).
    pub held_out_sqnr_db: Option<f64>,
    /// The evaluator's score at a check (detection agreement mAP@0.5 with the teacher).
    pub agreement: Option<f64>,
    /// The step's learning rate (cosine schedule; `None` at step 0).
    pub lr: Option<f32>,
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
    /// The learned scales and moved weight codes of the kept step against PTQ.
    pub changes: Vec<Change>,
    /// The tensors of the per-layer feature term (empty: outputs only).
    pub feature_tensors: Vec<String>,
    /// The raw tensors the loss compared in place of outputs that post-processing inside the
    /// graph computes (both empty for a model without).
    pub targets: super::Targets,
    /// Ops without a backward the gradients stopped at (`node (op)`): the layers reached only
    /// through them kept their PTQ values.
    pub frozen_at: Vec<String>,
    /// Per quantized activation, in graph order: its SQNR on the held-out inputs for the PTQ
    /// model and the kept step (empty where no activation matches one of the FP32 model's).
    pub layers: Vec<LayerSqnr>,
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

/// The inputs of a calibration set split for fine-tuning: every fourth is held out to check on
/// (the last one when there are fewer than four). Returns `held[k]` per input.
pub fn held_out_split(n: usize) -> Vec<bool> {
    (0..n).map(|k| k % 4 == 3 || (n < 4 && k + 1 == n)).collect()
}

/// [`held_out_split`] among the inputs marked `useful` (for a detector: those the FP32 model
/// finds objects on, so that agreement is defined on the held-out ones), the others all
/// training; the plain split when fewer than two are useful.
pub fn held_out_split_among(useful: &[bool]) -> Vec<bool> {
    let idx: Vec<usize> = (0..useful.len()).filter(|&k| useful[k]).collect();
    if idx.len() < 2 {
        return held_out_split(useful.len());
    }
    let among = held_out_split(idx.len());
    let mut held = vec![false; useful.len()];
    for (j, &k) in idx.iter().enumerate() {
        held[k] = among[j];
    }
    held
}

/// Chooses the held-out inputs from the FP32 model's outputs on every input (`held[k]` per input).
pub type HoldOut<'a> = &'a dyn Fn(&[Vec<Tensor>]) -> Vec<bool>;

/// A score of the student's held-out outputs against the teacher's (one set of outputs per
/// held-out input, in graph output order) — detection agreement, for a detector — or `None`
/// when it is undefined. Runs at every held-out check.
pub type Evaluator = Box<dyn FnMut(&[Vec<Tensor>], &[Vec<Tensor>]) -> Option<f64>>;

/// Fine-tuning one step at a time, for a caller that interleaves other work (the page: frames,
/// pause, cancel) — [`fine_tune`] is the loop over it. The state after an error is the state
/// before the failed step: nothing is lost, and [`FineTune::best`] stays usable.
pub struct FineTune {
    teacher: Plan,
    ptq: Graph,
    qat: Qat,
    adam: Adam,
    rng: super::augment::Rng,
    train: Vec<Vec<(String, Tensor)>>,
    train_want: Vec<Vec<Tensor>>,
    held_out: Vec<Vec<(String, Tensor)>>,
    held_want: Vec<Vec<Tensor>>,
    opts: QatOptions,
    step: usize,
    best: (usize, f64, Vec<Tensor>),
    ptq_sqnr_db: f64,
    /// The evaluator's score of step 0 (the PTQ model).
    ptq_agreement: Option<f64>,
    curve: Vec<CurvePoint>,
    evaluator: Option<Evaluator>,
    clock: Box<dyn Fn() -> f64>,
    features: Option<super::FeatureTerm>,
    /// Every activation that matches one of the FP32 model's, its channels fitted on the
    /// held-out inputs at step 0: the per-layer SQNRs of [`FineTune::best`].
    probe: Option<super::FeatureTerm>,
    /// The parameters at step 0 (the PTQ model).
    ptq_params: Vec<Tensor>,
    /// The model's own outputs; the raw tensors the loss compares follow them.
    n_outputs: usize,
    /// Per output (the model's, then the raw ones): whether the loss and the held-out SQNR
    /// compare it.
    loss_mask: Vec<bool>,
    targets: super::Targets,
}

impl std::fmt::Debug for FineTune {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FineTune").field("step", &self.step).field("best_step", &self.best.0).finish()
    }
}

impl FineTune {
    /// Prepares fine-tuning the QDQ model `qdq` (PTQ's output for `fp32`) on `inputs` (each a
    /// full set of graph inputs): runs the FP32 model on all of them, lets `hold_out` pick the
    /// ones to check on from those outputs, the rest train; then checks the PTQ model: the
    /// curve's step 0. `clock` gives seconds from any origin (the curve's `seconds` count
    /// from this call); `evaluator` adds a score to each check (see [`Evaluator`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        fp32: &Graph,
        qdq: &Graph,
        inputs: Vec<Vec<(String, Tensor)>>,
        hold_out: HoldOut<'_>,
        opts: &QatOptions,
        clock: Box<dyn Fn() -> f64>,
        evaluator: Option<Evaluator>,
    ) -> Result<FineTune, TrainError> {
        if inputs.len() < 2 {
            return Err(TrainError::Setup(format!(
                "fine-tuning needs inputs to train on and held-out ones to check on: give at least two (got {})",
                inputs.len()
            )));
        }
        if opts.steps == 0 || opts.batch == 0 || !(opts.lr.is_finite() && opts.lr > 0.0) {
            return Err(TrainError::Setup("steps and batch must be at least 1, and lr a positive number".into()));
        }
        if !(opts.feature_weight.is_finite() && opts.feature_weight >= 0.0) {
            return Err(TrainError::Setup("the feature weight must be 0 (off) or a positive number".into()));
        }
        if !(0.0..=1.0).contains(&opts.mix) {
            return Err(TrainError::Setup(format!(
                "the mixup share must be between 0 (off) and 1 (every training copy blended), not {}",
                opts.mix
            )));
        }
        let t0 = clock();
        let clock: Box<dyn Fn() -> f64> = Box::new(move || clock() - t0);
        // Post-processed outputs are compared on the raw tensors they select from.
        // Dynamic dims (a batch of `?`) take the inputs' own sizes.
        let shapes: Vec<(String, Vec<usize>)> = inputs[0].iter().map(|(n, t)| (n.clone(), t.shape.clone())).collect();
        let first = Plan::with_options(fp32, &Registry::new(), &shapes, PlanOptions::default())?;
        // Element types from the plan's facts, and where shapes depend on the values (after an
        // NMS) and facts stop, from a run on the first input (only then).
        let mut run_types: std::collections::HashMap<String, crate::model::DType> = Default::default();
        let unknown = |name: &str| !name.is_empty() && first.fact(name).is_none();
        if fp32.nodes.iter().flat_map(|n| &n.outputs).any(|o| unknown(o)) {
            first.run_with(&inputs[0], &mut |name, t| {
                if unknown(name) {
                    run_types.insert(name.to_string(), t.dtype());
                }
            })?;
        }
        let targets =
            super::distill_targets(fp32, &|t| first.fact(t).map(|f| f.dtype).or_else(|| run_types.get(t).copied()));
        let in_qdq = |t: &String| qdq.nodes.iter().any(|n| n.outputs.contains(t));
        let targets = if targets.extra.iter().all(in_qdq) { targets } else { super::Targets::default() };
        let n_outputs = fp32.outputs.len();
        let widen = |g: &Graph| targets.widen(g);
        let teacher = if targets.extra.is_empty() {
            first
        } else {
            Plan::with_options(&widen(fp32), &Registry::new(), &shapes, PlanOptions::default())?
        };
        let loss_mask = targets.loss_mask(&fp32.outputs.iter().map(|v| v.name.clone()).collect::<Vec<_>>());
        let want: Vec<Vec<Tensor>> = crate::parallel::try_map_few(inputs.len(), |i| teacher.run(&inputs[i]))?;
        let own: Vec<Vec<Tensor>> = want.iter().map(|w| w[..n_outputs.min(w.len())].to_vec()).collect();
        let held = hold_out(&own);
        if !held.iter().any(|&h| h) || held.iter().all(|&h| h) || held.len() != inputs.len() {
            return Err(TrainError::Setup("internal: the held-out split must keep some inputs for each side".into()));
        }
        let (mut train, mut held_out, mut train_want, mut held_want) = (vec![], vec![], vec![], vec![]);
        for ((x, w), h) in inputs.into_iter().zip(want).zip(held) {
            if h {
                held_out.push(x);
                held_want.push(w);
            } else {
                train.push(x);
                train_want.push(w);
            }
        }
        let mut qat = Qat::with_activation_scales(&widen(qdq), &shapes, opts.activation_scales)?;
        qat.set_grid_steps(opts.grid_steps);
        qat.set_loss_mask(loss_mask.clone());
        let features = if opts.feature_weight > 0.0 {
            let candidates = qat.activations();
            super::FeatureTerm::fit(&qat.student, &candidates, &teacher, &train, f64::from(opts.feature_weight))?
        } else {
            None
        };
        if let (Some(term), false) = (&features, opts.augment) {
            // The teacher's values on the plain training inputs now carry the term's tensors
            // (with augmentation the teacher runs on each step's copies instead).
            train_want = crate::parallel::try_map_few(train.len(), |i| term.teacher_run(&teacher, &train[i]))?;
        }
        qat.set_features(features.clone());
        let probe = super::FeatureTerm::fit(&qat.student, &qat.activations(), &teacher, &held_out, 1.0)?;
        let snapshot = qat.snapshot();
        let mut ft = FineTune {
            teacher,
            ptq: qdq.clone(),
            qat,
            adam: Adam::new(opts.lr),
            rng: super::augment::Rng::new(opts.seed),
            train,
            train_want,
            held_out,
            held_want,
            opts: opts.clone(),
            step: 0,
            best: (0, f64::NEG_INFINITY, snapshot.clone()),
            ptq_params: snapshot,
            probe,
            ptq_sqnr_db: 0.0,
            ptq_agreement: None,
            curve: Vec::new(),
            evaluator,
            clock,
            features,
            n_outputs,
            loss_mask,
            targets,
        };
        let (sqnr, agreement) = ft.check()?;
        ft.ptq_sqnr_db = sqnr;
        ft.ptq_agreement = agreement;
        ft.best.1 = sqnr;
        ft.curve.push(CurvePoint {
            step: 0,
            loss: None,
            held_out_sqnr_db: Some(sqnr),
            agreement,
            lr: None,
            seconds: (ft.clock)(),
        });
        Ok(ft)
    }

    /// Mean held-out SQNR of the current weights, and the evaluator's score.
    fn check(&mut self) -> Result<(f64, Option<f64>), TrainError> {
        let (student, held) = (&self.qat.student, &self.held_out);
        let got = crate::parallel::try_map_few(held.len(), |i| student.run(&held[i]))?;
        let pick = |v: &[Tensor]| super::targets::masked(v, &self.loss_mask);
        let total: f64 = got.iter().zip(&self.held_want).map(|(out, want)| mean_sqnr(&pick(out), &pick(want))).sum();
        let n = self.n_outputs;
        let own = |v: &[Vec<Tensor>]| -> Vec<Vec<Tensor>> { v.iter().map(|o| o[..n.min(o.len())].to_vec()).collect() };
        let score = self.evaluator.as_mut().and_then(|e| e(&own(&got), &own(&self.held_want)));
        Ok((total / self.held_out.len() as f64, score))
    }

    /// The learning rate of step `step` (0-based) of `steps`: cosine decay from `lr` to zero.
    fn lr_at(&self, step: usize) -> f32 {
        let t = step as f64 / self.opts.steps.max(1) as f64;
        (f64::from(self.opts.lr) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
    }

    /// The tensors of the per-layer feature term (empty when it is off or none qualified).
    pub fn feature_tensors(&self) -> &[String] {
        self.features.as_ref().map_or(&[], |f| f.names())
    }

    /// How many inputs train and how many are held out.
    pub fn split(&self) -> (usize, usize) {
        (self.train.len(), self.held_out.len())
    }

    /// Steps taken.
    pub fn steps_taken(&self) -> usize {
        self.step
    }

    /// Whether every step of the options has been taken.
    pub fn done(&self) -> bool {
        self.step >= self.opts.steps
    }

    /// The curve so far (step 0 is the PTQ model).
    pub fn curve(&self) -> &[CurvePoint] {
        &self.curve
    }

    /// One optimizer step on the next batch (a held-out check after it every `eval_every`
    /// steps and after the last); returns its curve point. After an error (a non-finite loss,
    /// say) the weights are those before the step.
    pub fn step(&mut self) -> Result<CurvePoint, TrainError> {
        if self.done() {
            return Err(TrainError::Setup(format!("all {} steps are taken", self.opts.steps)));
        }
        let before = self.qat.snapshot();
        match self.try_step() {
            Ok(p) => Ok(p),
            Err(e) => {
                self.qat.restore(&before);
                Err(e)
            }
        }
    }

    fn try_step(&mut self) -> Result<CurvePoint, TrainError> {
        let (n, b) = (self.train.len(), self.opts.batch);
        let batch: Vec<usize> = (self.step * b..(self.step + 1) * b).map(|k| k % n).collect();
        self.adam.lr = self.lr_at(self.step);
        let loss = if self.opts.augment {
            // The copies in batch order from the one generator; the teacher runs on each in the
            // task that trains on it.
            let mut xs = Vec::with_capacity(batch.len());
            for &k in &batch {
                let mut x: Vec<(String, Tensor)> =
                    self.train[k].iter().map(|(n, t)| (n.clone(), super::augment::augment(t, &mut self.rng))).collect();
                // Mixup of inputs: blended with an augmented copy of another training input.
                if self.opts.mix > 0.0 && n > 1 && self.rng.unit() < self.opts.mix {
                    let j = (k + 1 + ((self.rng.unit() * (n - 1) as f32) as usize).min(n - 2)) % n;
                    let lam = 0.3 + 0.4 * self.rng.unit();
                    for ((_, a), (_, t)) in x.iter_mut().zip(&self.train[j]) {
                        super::augment::blend(a, &super::augment::augment(t, &mut self.rng), lam);
                    }
                }
                xs.push(x);
            }
            let xs: Vec<&[(String, Tensor)]> = xs.iter().map(Vec::as_slice).collect();
            let (teacher, features) = (&self.teacher, &self.features);
            self.qat.step_batch_by(&mut self.adam, &xs, &|i| {
                Ok(std::borrow::Cow::Owned(match features {
                    Some(term) => term.teacher_run(teacher, xs[i])?,
                    None => teacher.run(xs[i])?,
                }))
            })?
        } else {
            let xs: Vec<&[(String, Tensor)]> = batch.iter().map(|&k| self.train[k].as_slice()).collect();
            let ws: Vec<&[Tensor]> = batch.iter().map(|&k| self.train_want[k].as_slice()).collect();
            self.qat.step_batch(&mut self.adam, &xs, &ws)?
        };
        if !loss.is_finite() {
            return Err(TrainError::NonFinite("the distillation loss".into()));
        }
        let lr = self.adam.lr;
        self.step += 1;
        let (held, agreement) = if self.step.is_multiple_of(self.opts.eval_every.max(1)) || self.done() {
            let (db, a) = self.check()?;
            (Some(db), a)
        } else {
            (None, None)
        };
        // Kept: a better held-out SQNR that finds what the PTQ model found (agreement no lower
        // than step 0's, where there is an evaluator).
        let agrees = match (agreement, self.ptq_agreement) {
            (Some(a), Some(p)) => a >= p - 1e-9,
            _ => true,
        };
        if let Some(db) = held.filter(|&db| db > self.best.1 && agrees) {
            self.best = (self.step, db, self.qat.snapshot());
        }
        let point = CurvePoint {
            step: self.step,
            loss: Some(loss),
            held_out_sqnr_db: held,
            agreement,
            lr: Some(lr),
            seconds: (self.clock)(),
        };
        self.curve.push(point.clone());
        Ok(point)
    }

    /// The QDQ graph with the current weights (the newest step, kept or not).
    pub fn current(&self) -> Result<Graph, TrainError> {
        let mut g = self.qat.export()?;
        g.outputs.truncate(self.n_outputs);
        Ok(g)
    }

    /// The raw tensors compared in place of post-processed outputs, and those outputs.
    pub fn targets(&self) -> &super::Targets {
        &self.targets
    }

    /// The step kept so far (0: the PTQ model) and its held-out SQNR.
    pub fn best_step(&self) -> (usize, f64) {
        (self.best.0, self.best.1)
    }

    /// The result: the best step's QDQ graph, the curve and the summary figures. Fine-tuning
    /// may stop here at any step (a cancelled run keeps its best step).
    pub fn best(&mut self) -> Result<FineTuned, TrainError> {
        let graph = self.best_graph()?;
        let layers = self.layer_sqnrs()?;
        let seconds = self.curve.last().map_or(0.0, |p| p.seconds);
        Ok(FineTuned {
            curve: self.curve.clone(),
            best_step: self.best.0,
            ptq_sqnr_db: self.ptq_sqnr_db,
            qat_sqnr_db: self.best.1,
            seconds_per_step: seconds / self.step.max(1) as f64,
            changes: changes(&self.ptq, &graph, &self.qat.trained_roles()),
            feature_tensors: self.feature_tensors().to_vec(),
            targets: self.targets.clone(),
            frozen_at: self.qat.frozen_at().to_vec(),
            layers,
            graph,
        })
    }

    /// The kept step's QDQ graph alone (what [`FineTune::best`] gives without its figures).
    pub fn best_graph(&mut self) -> Result<Graph, TrainError> {
        let now = self.qat.snapshot();
        self.qat.restore(&self.best.2);
        let graph = self.qat.export();
        self.qat.restore(&now);
        let mut graph = graph?;
        graph.outputs.truncate(self.n_outputs);
        Ok(graph)
    }

    /// Per-layer SQNRs of the PTQ model and the kept step on the held-out inputs.
    fn layer_sqnrs(&mut self) -> Result<Vec<LayerSqnr>, TrainError> {
        let Some(probe) = &self.probe else { return Ok(Vec::new()) };
        let names = probe.names();
        let now = self.qat.snapshot();
        let mut sums = [vec![(0.0, 0.0); names.len()], vec![(0.0, 0.0); names.len()]];
        let mut result = Ok(());
        for (which, params) in [&self.ptq_params, &self.best.2].into_iter().enumerate() {
            self.qat.restore(params);
            for x in &self.held_out {
                let energies = probe.teacher_run(&self.teacher, x).and_then(|want| {
                    let want = &want[want.len() - names.len()..];
                    Ok(probe.energies(&self.qat.student.forward(x)?, want))
                });
                match energies {
                    Ok(e) => sums[which].iter_mut().zip(e).for_each(|(a, b)| *a = (a.0 + b.0, a.1 + b.1)),
                    Err(e) => result = Err(e),
                }
            }
        }
        self.qat.restore(&now);
        result?;
        let db = |(signal, error): (f64, f64)| {
            if error <= 0.0 {
                200.0
            } else {
                (10.0 * (signal / error).log10()).min(200.0)
            }
        };
        Ok(names
            .iter()
            .enumerate()
            .map(|(k, n)| LayerSqnr { tensor: n.clone(), ptq_sqnr_db: db(sums[0][k]), qat_sqnr_db: db(sums[1][k]) })
            .collect())
    }
}

/// Fine-tunes the QDQ model `qdq` (PTQ's output for `fp32`) on `inputs`, the ones `hold_out`
/// picks held out to check on: [`FineTune`] stepped to the end. `progress` sees every curve
/// point and returns false to stop (the best step so far is kept).
pub fn fine_tune(
    fp32: &Graph,
    qdq: &Graph,
    inputs: Vec<Vec<(String, Tensor)>>,
    hold_out: HoldOut<'_>,
    opts: &QatOptions,
    evaluator: Option<Evaluator>,
    progress: &mut dyn FnMut(&CurvePoint) -> bool,
) -> Result<FineTuned, TrainError> {
    let t0 = std::time::Instant::now();
    let clock = Box::new(move || t0.elapsed().as_secs_f64());
    let mut ft = FineTune::new(fp32, qdq, inputs, hold_out, opts, clock, evaluator)?;
    let mut go_on = progress(&ft.curve()[0]);
    while go_on && !ft.done() {
        let p = ft.step()?;
        go_on = progress(&p);
    }
    ft.best()
}
