//! Quantization-aware training's engine (issue #15), first part: reverse mode over a plan, a
//! label-free distillation loss and Adam.
//!
//! ```text
//! graph ─ fold BN, lift Conv/Gemm/MatMul weights into inputs ─ Student (a Plan, unfused)
//!   forward: every step's outputs kept (a Tape)
//!   backward: steps in reverse, each op's Op::backward, gradients summed per slot
//!   → one gradient per parameter → Adam
//! ```
//!
//! Weights become graph inputs so the plan cannot fold them into constants, and each step is
//! just a new binding: nothing is re-planned. Batch norms are folded into their convolutions
//! first and train as part of them. A step whose op has no backward is an error naming the
//! node and op ([`TrainError::NoBackward`]). Fake quantization (the QDQ nodes as learnable
//! quantizers) builds on this.

mod adam;
pub mod augment;
pub mod changes;
mod distill;
mod features;
pub mod fine_tune;
mod options;
pub mod qat;
pub mod targets;

pub use adam::{Adam, StepKind};
pub use distill::{distill_loss, Loss};
pub use features::FeatureTerm;
pub use fine_tune::{fine_tune, CurvePoint, FineTuned};
pub use options::QatOptions;
pub use qat::Qat;
pub use targets::{distill_targets, Targets};

use crate::model::passes::fold_batchnorm_into_conv;
use crate::model::plan::Env;
use crate::model::{DType, Graph, ModelError, OpKind, Plan, PlanOptions, StepInput, Tensor, ValueInfo};
use crate::ops::grad::{Backward, GradError};
use crate::ops::{OpError, Registry};

/// What can go wrong while training; each message says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// Loading, planning or running the forward.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An op on the path from the weights to the outputs has no backward.
    #[error("node `{node}` ({op}) has no backward yet, so fine-tuning cannot reach the layers before it (it needs one for every op between the weights and the outputs); the quantized model stays usable as it is")]
    NoBackward {
        /// Node name.
        node: String,
        /// Op type.
        op: String,
    },
    /// A backward failed.
    #[error("the backward of node `{node}` ({op}) failed: {error}")]
    Backward {
        /// Node name.
        node: String,
        /// Op type.
        op: String,
        /// What went wrong, with its kind.
        error: OpError,
    },
    /// A loss or gradient is NaN or infinite.
    #[error("{0} is not finite: lower the learning rate, or check the inputs for NaN")]
    NonFinite(String),
    /// Nothing to train.
    #[error("{0}")]
    Setup(String),
}

impl TrainError {
    /// A stable name for the kind of error (see [`crate::Error::code`]).
    pub fn code(&self) -> &'static str {
        match self {
            TrainError::Model(e) => e.code(),
            TrainError::NoBackward { .. } => "no-backward",
            TrainError::Backward { error, .. } => error.code(),
            TrainError::NonFinite(_) => "non-finite",
            TrainError::Setup(_) => "bad-input",
        }
    }
}

/// A model whose float weights train: the plan and its parameters.
#[derive(Debug)]
pub struct Student {
    plan: Plan,
    /// The parameters (initializers lifted into inputs): name and current value, in graph order.
    params: Vec<(String, Tensor)>,
    /// Each parameter's slot in the plan.
    slots: Vec<usize>,
    /// Per slot: whether a parameter reaches it, so its gradient is needed (the input image's
    /// and what is computed from it alone are not).
    needs: Vec<bool>,
}

/// An op without a backward that a gradient stopped at: its node's name and op type.
pub type Stop = (String, String);

/// A forward pass that kept every tensor, for [`Student::backward`].
#[derive(Debug)]
pub struct Tape<'a> {
    env: Env<'a>,
    /// The graph outputs, in model order.
    pub outputs: Vec<Tensor>,
}

impl Student {
    /// Prepares `graph` for training with the given input shapes: batch norms folded, and the
    /// float weights and biases of every Conv, Gemm and MatMul lifted into inputs.
    pub fn new(graph: &Graph, input_shapes: &[(String, Vec<usize>)]) -> Result<Student, TrainError> {
        let mut g = graph.clone();
        g.toposort()?;
        fold_batchnorm_into_conv(&mut g);
        let names = default_params(&g);
        Student::with_params(&g, input_shapes, &names)
    }

    /// [`Student::new`] training the float initializers `names` (batch norms are not folded
    /// here).
    pub fn with_params(
        graph: &Graph,
        input_shapes: &[(String, Vec<usize>)],
        names: &[String],
    ) -> Result<Student, TrainError> {
        let mut g = graph.clone();
        let mut lifted: Vec<(String, Tensor)> = Vec::new();
        for name in names {
            match g.initializers.remove(name) {
                Some(t) if t.as_f32().is_ok() => lifted.push((name.clone(), t)),
                _ => return Err(TrainError::Setup(format!("`{name}` is not a float initializer of the model"))),
            }
        }
        if lifted.is_empty() {
            return Err(TrainError::Setup("the model has no float Conv, Gemm or MatMul weights to train".into()));
        }
        for (name, t) in &lifted {
            g.inputs.push(ValueInfo {
                name: name.clone(),
                elem_type: 1,
                shape: t.shape.iter().copied().map(Some).collect(),
            });
        }
        let options = PlanOptions { fuse_activations: false, int8_kernels: false, ..PlanOptions::default() };
        let plan = Plan::with_options(&g, &Registry::new(), input_shapes, options)?;
        let slot_of = |name: &str| (0..plan.slot_count()).find(|&s| plan.slot(s).0 == name);
        let slots = lifted
            .iter()
            .map(|(name, _)| slot_of(name).ok_or_else(|| TrainError::Setup(format!("internal: no slot for `{name}`"))))
            .collect::<Result<_, _>>()?;
        let mut needs = vec![false; plan.slot_count()];
        for &s in &slots {
            needs[s] = true;
        }
        // Only float tensors carry gradients: integer and bool outputs (indices, shapes, casts
        // to integers, comparisons) stop them, so the ops that make and read them need no
        // backward.
        for i in 0..plan.step_count() {
            let step = plan.step(i);
            if step.inputs.iter().any(|x| matches!(x, StepInput::Slot(s) if needs[*s])) {
                step.outputs.iter().flatten().filter(|&&o| plan.slot(o).1 == DType::F32).for_each(|&o| needs[o] = true);
            }
        }
        Ok(Student { plan, params: lifted, slots, needs })
    }

    /// The parameters: name and current value, in graph order.
    pub fn params(&self) -> &[(String, Tensor)] {
        &self.params
    }

    /// The parameters' values, to update in place (same shapes).
    pub fn params_mut(&mut self) -> impl Iterator<Item = &mut Tensor> {
        self.params.iter_mut().map(|(_, t)| t)
    }

    /// The plan slot of tensor `name`, if the plan computes or takes it.
    pub fn slot_of(&self, name: &str) -> Option<usize> {
        (0..self.plan.slot_count()).find(|&s| self.plan.slot(s).0 == name)
    }

    /// The plan (for its outputs' names and shapes).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Runs the model on `inputs` (the graph's own inputs; the parameters are bound here),
    /// keeping every intermediate tensor.
    pub fn forward<'a>(&'a self, inputs: &'a [(String, Tensor)]) -> Result<Tape<'a>, TrainError> {
        let env = self.run_steps(inputs, true)?;
        let outputs = self
            .plan
            .output_sources()
            .iter()
            .map(|src| match src {
                StepInput::Slot(s) => {
                    env.get(*s).cloned().ok_or_else(|| ModelError::MissingOutput(self.plan.slot(*s).0.into()))
                }
                StepInput::Const(t) => Ok((*t).clone()),
                StepInput::Omitted => Err(ModelError::MissingOutput("(omitted)".into())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Tape { env, outputs })
    }

    /// Runs the model on `inputs` and returns its outputs, dropping each tensor after its last
    /// reader (a check: no backward follows).
    pub fn run(&self, inputs: &[(String, Tensor)]) -> Result<Vec<Tensor>, TrainError> {
        let mut env = self.run_steps(inputs, false)?;
        Ok(self.plan.take_outputs(&mut env)?)
    }

    /// Every step on `inputs` with the parameters bound; with `keep` every tensor stays (a
    /// tape), else each is dropped after its last reader.
    fn run_steps<'a>(&'a self, inputs: &'a [(String, Tensor)], keep: bool) -> Result<Env<'a>, TrainError> {
        let mut env = self.plan.bind_parts(&[inputs, &self.params], None)?;
        for i in 0..self.plan.step_count() {
            let outs = {
                let args = self.plan.step_args(i, &env)?;
                self.plan.eval_step(i, &args)?
            };
            self.plan.store(i, &mut env, outs, &mut |_, _| {});
            if !keep {
                self.plan.free_after(i, &mut env);
            }
        }
        Ok(env)
    }

    /// The gradient of the loss with respect to every parameter (in [`Student::params`] order),
    /// from the loss gradient of each graph output (`None`: that output is not in the loss).
    pub fn backward(&self, tape: &Tape<'_>, output_grads: &[Option<Tensor>]) -> Result<Vec<Tensor>, TrainError> {
        self.backward_seeded(tape, output_grads, Vec::new())
    }

    /// [`Student::backward`] with loss gradients at intermediate tensors too: `(slot, gradient)`
    /// (a per-layer feature term, [`FeatureTerm`]).
    pub fn backward_seeded(
        &self,
        tape: &Tape<'_>,
        output_grads: &[Option<Tensor>],
        seeds: Vec<(usize, Tensor)>,
    ) -> Result<Vec<Tensor>, TrainError> {
        let (grads, stopped) = self.backward_freezing(tape, output_grads, seeds)?;
        match stopped.into_iter().next() {
            Some((node, op)) => Err(TrainError::NoBackward { node, op }),
            None => Ok(grads),
        }
    }

    /// [`Student::backward_seeded`] that stops at an op without a backward instead of failing:
    /// the layers reached only through it get no gradient (they stay as they are). Returns the
    /// gradients and the `(node, op)` of each op it stopped at; it fails when no parameter gets
    /// a gradient at all (the op then stands between every weight and the loss).
    pub fn backward_freezing(
        &self,
        tape: &Tape<'_>,
        output_grads: &[Option<Tensor>],
        seeds: Vec<(usize, Tensor)>,
    ) -> Result<(Vec<Tensor>, Vec<Stop>), TrainError> {
        let mut stopped: Vec<Stop> = Vec::new();
        let mut grads: Vec<Option<Tensor>> = vec![None; self.plan.slot_count()];
        for (s, g) in seeds {
            if s < grads.len() {
                accumulate(&mut grads[s], g)?;
            }
        }
        for (src, g) in self.plan.output_sources().iter().zip(output_grads) {
            if let (StepInput::Slot(s), Some(g)) = (src, g) {
                accumulate(&mut grads[*s], g.clone())?;
            }
        }
        for i in (0..self.plan.step_count()).rev() {
            let step = self.plan.step(i);
            let gouts: Vec<Option<Tensor>> = step.outputs.iter().map(|s| s.and_then(|s| grads[s].take())).collect();
            let needs: Vec<bool> =
                step.inputs.iter().map(|x| matches!(x, StepInput::Slot(s) if self.needs[*s])).collect();
            if gouts.iter().all(Option::is_none) || !needs.contains(&true) {
                continue;
            }
            let args = self.plan.step_args(i, &tape.env)?;
            let outs: Vec<Option<&Tensor>> = step.outputs.iter().map(|s| s.and_then(|s| tape.env.get(s))).collect();
            let grefs: Vec<Option<&Tensor>> = gouts.iter().map(Option::as_ref).collect();
            let named = || (step.name.to_string(), step.op_type.to_string());
            let b = Backward { inputs: &args, outputs: &outs, grads: &grefs, needs: &needs };
            let back = match step.op.backward(&b) {
                Ok(back) => back,
                Err(GradError::NoBackward) => {
                    stopped.push(named());
                    continue;
                }
                Err(GradError::Failed(error)) => {
                    let (node, op) = named();
                    return Err(TrainError::Backward { node, op, error });
                }
            };
            for (input, g) in step.inputs.iter().zip(back) {
                if let (StepInput::Slot(s), Some(g)) = (input, g) {
                    accumulate(&mut grads[*s], g)?;
                }
            }
        }
        if !stopped.is_empty() && self.slots.iter().all(|&s| grads[s].is_none()) {
            let (node, op) = stopped.swap_remove(0);
            return Err(TrainError::NoBackward { node, op });
        }
        let grads = self
            .params
            .iter()
            .zip(&self.slots)
            .map(|((name, value), &s)| {
                let g = grads[s].take().unwrap_or_else(|| zeros_like(value));
                match g.as_f32() {
                    Ok(v) if v.iter().all(|x| x.is_finite()) => Ok(g),
                    _ => Err(TrainError::NonFinite(format!("the gradient of `{name}`"))),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok((grads, stopped))
    }
}

/// The float weights and biases of every Conv, ConvTranspose, Gemm and MatMul, each once, in
/// graph order.
pub(crate) fn default_params(g: &Graph) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for n in g.nodes.iter().filter(|n| n.is_any(&[OpKind::Conv, OpKind::ConvTranspose, OpKind::Gemm, OpKind::MatMul])) {
        for name in n.inputs.iter().skip(1).take(2) {
            let float = g.initializers.get(name).is_some_and(|t| t.as_f32().is_ok());
            if float && !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

fn zeros_like(t: &Tensor) -> Tensor {
    crate::ops::grad::f32_tensor(t.shape.clone(), vec![0.0; t.len()])
}

/// `acc += g` (or `acc = g` when empty).
fn accumulate(acc: &mut Option<Tensor>, g: Tensor) -> Result<(), TrainError> {
    match acc {
        None => *acc = Some(g),
        Some(a) => {
            let shapes = (a.shape.clone(), g.shape.clone());
            match (&mut a.data, &g.data) {
                (crate::model::Data::F32(a), crate::model::Data::F32(g)) if a.len() == g.len() => {
                    a.iter_mut().zip(g).for_each(|(a, g)| *a += g);
                }
                _ => {
                    return Err(TrainError::Setup(format!(
                        "internal: gradients of shapes {:?} and {:?} meet",
                        shapes.0, shapes.1
                    )))
                }
            }
        }
    }
    Ok(())
}
