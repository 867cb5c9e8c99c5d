//! Running a plan. One run's tensors live in an [`Env`] (one cell per slot), and every executor
//! goes through the same steps: [`Plan::bind`] checks and binds the graph inputs,
//! [`Plan::step_args`] gathers a step's arguments, [`Plan::store`] keeps its outputs,
//! [`Plan::free_after`] drops what no later step reads, [`Plan::take_outputs`] hands the graph
//! outputs back. The CPU loop ([`Plan::run`]) is those steps around [`Plan::eval_step`]; the GPU
//! backend's phases are the same steps around its dispatches, with [`Plan::step`] giving each
//! step's typed op.

use super::{check_size, Plan, Source, Step};
use crate::model::{numel, DType, ModelError, Tensor};
use crate::ops::{Fact, Op, OpError};
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::ControlFlow;

use super::StepEvent;

/// What [`Plan::run_keeping`] keeps (the names it accepts) and where.
type Keep<'a> = Option<(&'a dyn Fn(&str) -> bool, &'a mut HashMap<String, Tensor>)>;

/// The tensors of one run, by slot: graph inputs borrowed from the caller, computed tensors
/// owned.
#[derive(Debug)]
pub struct Env<'a> {
    cells: Vec<Option<Cow<'a, Tensor>>>,
}

impl<'a> Env<'a> {
    /// Slot `s`'s tensor, if it is bound and not yet freed.
    pub fn get(&self, s: usize) -> Option<&Tensor> {
        self.cells.get(s)?.as_deref()
    }

    /// Binds slot `s` to a computed tensor.
    pub fn set(&mut self, s: usize, t: Tensor) {
        self.cells[s] = Some(Cow::Owned(t));
    }

    /// Bytes of the computed tensors it holds (not the borrowed inputs).
    pub fn held_bytes(&self) -> usize {
        self.cells.iter().flatten().map(|c| if let Cow::Owned(t) = c { t.byte_size() } else { 0 }).sum()
    }
}

impl Plan {
    /// Binds the graph inputs by name: each once, with the planned dtype and shape, and every
    /// one given — except `filled_elsewhere`, an input slot the executor makes itself (the GPU's
    /// pre-processing of a camera frame).
    pub fn bind<'a>(
        &self,
        inputs: &'a [(String, Tensor)],
        filled_elsewhere: Option<usize>,
    ) -> Result<Env<'a>, ModelError> {
        self.bind_parts(&[inputs], filled_elsewhere)
    }

    /// [`Plan::bind`] with the inputs given in several lists (training binds the caller's
    /// inputs and its own parameters).
    pub fn bind_parts<'a>(
        &self,
        parts: &[&'a [(String, Tensor)]],
        filled_elsewhere: Option<usize>,
    ) -> Result<Env<'a>, ModelError> {
        let mut cells: Vec<Option<Cow<'a, Tensor>>> = (0..self.slots.len()).map(|_| None).collect();
        for (name, t) in parts.iter().flat_map(|p| p.iter()) {
            let Some(inp) = self.inputs.iter().find(|i| i.name == *name) else {
                return Err(ModelError::UnknownInput {
                    name: name.clone(),
                    known: self.inputs.iter().map(|i| i.name.clone()).collect(),
                });
            };
            if t.dtype() != inp.dtype {
                return Err(ModelError::InputDType { name: name.clone(), expected: inp.dtype, got: t.dtype() });
            }
            if t.shape != inp.shape {
                return Err(ModelError::InputShape {
                    name: name.clone(),
                    expected: inp.shape.iter().copied().map(Some).collect(),
                    got: t.shape.clone(),
                });
            }
            if cells[inp.slot].replace(Cow::Borrowed(t)).is_some() {
                return Err(ModelError::Other(format!("input `{name}` is given more than once")));
            }
        }
        if let Some(missing) = self.inputs.iter().find(|i| cells[i.slot].is_none() && Some(i.slot) != filled_elsewhere)
        {
            return Err(ModelError::InputNotGiven(missing.name.clone()));
        }
        Ok(Env { cells })
    }

    /// Step `i`'s arguments, in node order: runtime tensors from `env`, constants, `None` for
    /// omitted inputs. An unbound runtime input is an internal error naming the step.
    pub fn step_args<'e>(&'e self, i: usize, env: &'e Env<'_>) -> Result<Vec<Option<&'e Tensor>>, ModelError> {
        let step = &self.steps[i];
        step.inputs
            .iter()
            .map(|src| match src {
                Source::Slot(s) => env.get(*s).map(Some).ok_or_else(|| ModelError::Op {
                    node: step.name.clone(),
                    op: step.op_type.clone(),
                    error: OpError::internal(format!("internal: input `{}` is not available", self.slots[*s].name)),
                }),
                Source::Const(t) => Ok(Some(&**t)),
                Source::Omitted => Ok(None),
            })
            .collect()
    }

    /// Keeps step `i`'s outputs in their slots (outputs the node leaves unnamed are dropped),
    /// calling `observer` with each.
    pub fn store(&self, i: usize, env: &mut Env<'_>, outs: Vec<Tensor>, observer: &mut dyn FnMut(&str, &Tensor)) {
        for (slot, t) in self.steps[i].outputs.iter().zip(outs) {
            let Some(slot) = *slot else { continue };
            observer(&self.slots[slot].name, &t);
            env.set(slot, t);
        }
    }

    /// Drops the tensors whose last reader is step `i` (never a graph output).
    pub fn free_after(&self, i: usize, env: &mut Env<'_>) {
        for &s in &self.steps[i].free {
            env.cells[s] = None;
        }
    }

    /// Moves the graph outputs out of `env`, in model order (an output listed twice is copied
    /// for the earlier one).
    pub fn take_outputs(&self, env: &mut Env<'_>) -> Result<Vec<Tensor>, ModelError> {
        let mut results = Vec::with_capacity(self.outputs.len());
        for (i, (name, src)) in self.outputs.iter().enumerate() {
            let t = match src {
                Source::Const(t) => (**t).clone(),
                Source::Slot(s) => {
                    let again = self.outputs[i + 1..].iter().any(|(_, o)| matches!(o, Source::Slot(x) if x == s));
                    let cell = if again { env.cells[*s].clone() } else { env.cells[*s].take() };
                    cell.ok_or_else(|| ModelError::MissingOutput(name.clone()))?.into_owned()
                }
                Source::Omitted => return Err(ModelError::MissingOutput(name.clone())),
            };
            results.push(t);
        }
        Ok(results)
    }

    /// Runs the model and returns the graph outputs in order.
    ///
    /// Every graph input must be given once, with the planned dtype and shape.
    pub fn run(&self, inputs: &[(String, Tensor)]) -> Result<Vec<Tensor>, ModelError> {
        self.run_with(inputs, &mut |_, _| {})
    }

    /// [`Plan::run`], calling `observer` with the name and value of every tensor a step computes
    /// (intermediates and graph outputs; not inputs, nor constants folded at plan time), right
    /// after it is computed. Calibration collects activation ranges this way.
    pub fn run_with(
        &self,
        inputs: &[(String, Tensor)],
        observer: &mut dyn FnMut(&str, &Tensor),
    ) -> Result<Vec<Tensor>, ModelError> {
        self.run_hooked(inputs, observer, &mut |_, _| ControlFlow::Continue(()))
    }

    /// [`Plan::run`], calling `hook(index, event)` right before and right after each step (an
    /// index into [`Plan::steps`]). Takes no clock itself, so it works on every target: a native
    /// profiler times the steps with `std::time::Instant`, e.g. the `profile_plan` example.
    pub fn run_profiled(
        &self,
        inputs: &[(String, Tensor)],
        hook: &mut dyn FnMut(usize, StepEvent),
    ) -> Result<Vec<Tensor>, ModelError> {
        self.run_hooked(inputs, &mut |_, _| {}, &mut |i, e| {
            hook(i, e);
            ControlFlow::Continue(())
        })
    }

    /// The run loop every other `run_*` is: `observer` sees each computed tensor
    /// ([`Plan::run_with`]) and `hook` each step's start and end ([`Plan::run_profiled`]). A
    /// hook that answers [`ControlFlow::Break`] stops the run before the next step: cooperative
    /// cancellation, e.g. a page's Cancel read from a shared flag. The run then ends with
    /// [`ModelError::Cancelled`] and nothing of it is kept.
    pub fn run_hooked(
        &self,
        inputs: &[(String, Tensor)],
        observer: &mut dyn FnMut(&str, &Tensor),
        hook: &mut dyn FnMut(usize, StepEvent) -> ControlFlow<()>,
    ) -> Result<Vec<Tensor>, ModelError> {
        self.run_loop(inputs, observer, hook, None)
    }

    /// [`Plan::run`], also returning every computed tensor (not the inputs) whose name `keep`
    /// accepts. They are kept instead of freed after their last reader — moved, not copied
    /// (only a kept graph output is copied) — so the run holds them all at its end.
    pub fn run_keeping(
        &self,
        inputs: &[(String, Tensor)],
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<Tensor>, HashMap<String, Tensor>), ModelError> {
        let mut kept = HashMap::new();
        let outputs =
            self.run_loop(inputs, &mut |_, _| {}, &mut |_, _| ControlFlow::Continue(()), Some((keep, &mut kept)))?;
        Ok((outputs, kept))
    }

    /// The run loop of [`Plan::run_hooked`] and [`Plan::run_keeping`].
    fn run_loop(
        &self,
        inputs: &[(String, Tensor)],
        observer: &mut dyn FnMut(&str, &Tensor),
        hook: &mut dyn FnMut(usize, StepEvent) -> ControlFlow<()>,
        mut keep: Keep<'_>,
    ) -> Result<Vec<Tensor>, ModelError> {
        let mut env = self.bind(inputs, None)?;
        for index in 0..self.steps.len() {
            if hook(index, StepEvent::Start).is_break() {
                return Err(ModelError::Cancelled);
            }
            // An op whose output is its input's data under a new shape (Reshape, …) takes over
            // the input's buffer when this step is its last reader and it is not borrowed (nor
            // kept).
            let step = &self.steps[index];
            let kept_input = matches!((&keep, step.inputs.first()), (Some((k, _)), Some(Source::Slot(s))) if k(&self.slots[*s].name));
            let moved = if kept_input { None } else { self.try_alias(step, &mut env) };
            let outs = match moved {
                Some(moved) => vec![moved],
                None => {
                    let args = self.step_args(index, &env)?;
                    self.eval_checked(step, &args)?
                }
            };
            self.store(index, &mut env, outs, observer);
            match keep.as_mut() {
                Some((k, kept)) => {
                    for &s in &step.free {
                        if let Some(Cow::Owned(t)) = env.cells[s].take() {
                            if k(&self.slots[s].name) {
                                kept.insert(self.slots[s].name.clone(), t);
                            }
                        }
                    }
                }
                None => self.free_after(index, &mut env),
            }
            if hook(index, StepEvent::End).is_break() {
                return Err(ModelError::Cancelled);
            }
        }
        // What is still held at the end (graph outputs) is copied.
        if let Some((k, kept)) = keep {
            for (s, cell) in env.cells.iter().enumerate() {
                let name = &self.slots[s].name;
                if let Some(Cow::Owned(t)) = cell {
                    if k(name) && !kept.contains_key(name) {
                        kept.insert(name.clone(), t.clone());
                    }
                }
            }
        }
        self.take_outputs(&mut env)
    }

    /// For a step whose op is a pure re-shaping of input 0 ([`Op::reshapes_input`]): when input
    /// 0 is an owned slot that this step frees, takes it out of `env` and returns it with the
    /// planned output shape. `None` leaves `env` untouched (the step then runs normally).
    fn try_alias(&self, step: &Step, env: &mut Env<'_>) -> Option<Tensor> {
        if step.dynamic || !step.op.reshapes_input() || step.outputs.len() != 1 {
            return None;
        }
        let out = step.outputs[0]?;
        let Some(Source::Slot(src)) = step.inputs.first() else { return None };
        let src = *src;
        if !step.free.contains(&src) || !matches!(env.cells[src], Some(Cow::Owned(_))) {
            return None;
        }
        let info = &self.slots[out];
        let Some(Cow::Owned(t)) = env.cells[src].take() else { return None };
        if t.dtype() != info.dtype || numel(&info.shape).ok() != Some(t.len()) {
            env.cells[src] = Some(Cow::Owned(t));
            return None;
        }
        Some(Tensor { shape: info.shape.clone(), data: t.data })
    }
}

/// Where a step reads an input from, as seen by another executor ([`Plan::step`]).
#[derive(Debug, Clone, Copy)]
pub enum StepInput<'a> {
    /// A runtime tensor: the slot index ([`Plan::slot`]).
    Slot(usize),
    /// A constant known at plan time.
    Const(&'a Tensor),
    /// An omitted optional input.
    Omitted,
}

/// A read-only view of one runtime step, for executors other than [`Plan::run`] (the GPU
/// backend walks these in order and runs each step itself or through [`Plan::eval_step`]).
#[derive(Debug, Clone)]
pub struct StepView<'a> {
    /// Node name.
    pub name: &'a str,
    /// ONNX op type (after planning's rewrites, e.g. `QLinearConv` for a lowered QDQ Conv).
    pub op_type: &'a str,
    /// The built op: executors ask it for its concrete type
    /// (`downcast_ref`) and read its normalised fields.
    pub op: &'a dyn Op,
    /// The inputs, in node order.
    pub inputs: Vec<StepInput<'a>>,
    /// The slot of each output (`None`: an output the node leaves unnamed).
    pub outputs: &'a [Option<usize>],
    /// Slots whose last reader is this step.
    pub free: &'a [usize],
    /// Output shapes are known only at run time: the step runs on the CPU through
    /// [`Plan::eval_step`].
    pub dynamic: bool,
}

impl<'a> StepInput<'a> {
    fn of(src: &'a Source) -> StepInput<'a> {
        match src {
            Source::Slot(s) => StepInput::Slot(*s),
            Source::Const(t) => StepInput::Const(t),
            Source::Omitted => StepInput::Omitted,
        }
    }
}

impl Plan {
    /// Number of runtime steps.
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// Step `i` (in execution order), read-only. Panics when `i ≥ step_count()`.
    pub fn step(&self, i: usize) -> StepView<'_> {
        let s = &self.steps[i];
        StepView {
            name: &s.name,
            op_type: &s.op_type,
            op: s.op.as_ref(),
            inputs: s.inputs.iter().map(StepInput::of).collect(),
            outputs: &s.outputs,
            free: &s.free,
            dynamic: s.dynamic,
        }
    }

    /// Number of runtime slots (graph inputs and step outputs).
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Slot `i`: tensor name, dtype and static shape. Panics when `i ≥ slot_count()`.
    pub fn slot(&self, i: usize) -> (&str, DType, &[usize]) {
        let s = &self.slots[i];
        (&s.name, s.dtype, &s.shape)
    }

    /// The slot of each graph input, in model order.
    pub fn input_slots(&self) -> Vec<usize> {
        self.inputs.iter().map(|i| i.slot).collect()
    }

    /// Where each graph output comes from, in model order.
    pub fn output_sources(&self) -> Vec<StepInput<'_>> {
        self.outputs.iter().map(|(_, s)| StepInput::of(s)).collect()
    }

    /// Runs step `i`'s CPU op on `args` (one per [`StepView::inputs`], constants included) and
    /// checks each output against its planned dtype and shape.
    pub fn eval_step(&self, i: usize, args: &[Option<&Tensor>]) -> Result<Vec<Tensor>, ModelError> {
        self.eval_checked(&self.steps[i], args)
    }

    /// Runs a step's op and checks its outputs: against the planned dtype and shape, or for a
    /// dynamic step against what its `infer` says for these actual inputs — inferred, and held
    /// to [`PlanOptions::max_tensor_elements`], before anything is allocated.
    fn eval_checked(&self, step: &Step, args: &[Option<&Tensor>]) -> Result<Vec<Tensor>, ModelError> {
        let err = |error: OpError| ModelError::Op { node: step.name.clone(), op: step.op_type.clone(), error };
        let inferred = if step.dynamic {
            let facts: Vec<Option<Fact>> = args.iter().map(|a| a.map(|t| Fact::constant(t.clone()))).collect();
            let refs: Vec<Option<&Fact>> = facts.iter().map(Option::as_ref).collect();
            let inferred = step.op.infer(&refs).map_err(err)?;
            for f in &inferred {
                check_size(&f.shape, self.max_elements, || {
                    format!("node `{}` ({}) at run time", step.name, step.op_type)
                })?;
            }
            Some(inferred)
        } else {
            None
        };
        let computed = step.op.eval(args).map_err(err)?;
        if computed.len() < step.outputs.len() {
            return Err(err(OpError::internal(output_count(computed.len(), step.outputs.len()))));
        }
        for (k, (slot, t)) in step.outputs.iter().zip(&computed).enumerate() {
            let Some(slot) = *slot else { continue };
            let info = &self.slots[slot];
            let (dtype, shape) = match &inferred {
                Some(f) => f
                    .get(k)
                    .map(|f| (f.dtype, f.shape.as_slice()))
                    .ok_or_else(|| err(OpError::internal(output_count(f.len(), step.outputs.len()))))?,
                None => (info.dtype, info.shape.as_slice()),
            };
            check_against(t, dtype, shape)
                .map_err(|m| err(OpError::internal(format!("output `{}`: {m}", info.name))))?;
        }
        Ok(computed)
    }

    /// Whether slot `i` is written by a dynamic step (its dtype and shape are known only at run
    /// time; [`Plan::slot`] then gives placeholders).
    pub fn slot_is_dynamic(&self, i: usize) -> bool {
        self.slots[i].dynamic
    }
}

pub(super) fn output_count(got: usize, want: usize) -> String {
    format!("the op returned {got} outputs, the node has {want}")
}

/// Checks a computed tensor against what planning inferred for it: a mismatch is a bug in the
/// op's `infer` or `eval`, and would break everything that trusts the plan's shapes.
pub(super) fn check_against(t: &Tensor, dtype: DType, shape: &[usize]) -> Result<(), String> {
    if t.dtype() != dtype || t.shape != shape {
        return Err(format!(
            "computed a {:?} tensor of shape {:?}, but shape inference said {dtype:?} {shape:?}",
            t.dtype(),
            t.shape
        ));
    }
    if super::numel(&t.shape).ok() != Some(t.len()) {
        return Err(format!("computed a tensor of shape {:?} with {} elements", t.shape, t.len()));
    }
    Ok(())
}
