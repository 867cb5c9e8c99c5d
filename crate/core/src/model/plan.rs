//! Planning: a [`Graph`] + the op [`Registry`] + concrete input shapes → a [`Plan`] that runs.
//!
//! Planning does all the work that does not depend on input values, once:
//! 1. folds batch norms into convolutions ([`super::passes::fold_batchnorm_into_conv`]) and
//!    fuses the `Relu`/`Clip` after a convolution into it
//!    ([`super::passes::fuse_activation_into_conv`]) on a copy of the graph, and drops nodes no
//!    graph output depends on;
//! 2. builds an op for every node, reporting *all* unsupported op types in one error;
//! 3. fixes the input shapes (dynamic dimensions must be given);
//! 4. propagates [`Fact`]s (dtype, static shape, value of constants) in topological order.
//!    A node whose inputs are all constants is evaluated right there, and a node whose
//!    inference already knows every output value (e.g. `Shape`) needs no evaluation at all:
//!    this is how the `Shape → Gather → Concat → Reshape` sub-graphs of exported models vanish;
//!    folding is charged to a budget of work and elements ([`super::fold`]), so a crafted
//!    constant sub-graph fails planning with a message instead of running for hours;
//! 5. lays out the remaining runtime steps over numbered slots, and computes liveness so that
//!    each intermediate tensor is freed right after its last reader.
//!
//! Running checks every computed tensor against the planned dtype and shape, so whatever reads
//! [`Plan::fact`] (quantizers, the wasm buffers) can rely on it.

use super::fold::{FoldBudget, DEFAULT_MAX_FOLD_ELEMENTS, DEFAULT_MAX_FOLD_WORK};
use super::load::DEFAULT_MAX_TENSOR_ELEMENTS;
use super::lower_lut::lower_lut;
use super::lower_qdq::lower_qdq;
use super::passes::{fold_batchnorm_into_conv, fuse_activation_into_conv, fuse_channel_min_into_conv};
use super::tensor::onnx_dtype_name;
use super::{numel, DType, Graph, ModelError, Node, OpKind, Tensor};
use crate::ops::{BuildCtx, Fact, Op, OpError, Registry};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

mod exec;
mod inline;
use exec::{check_against, output_count};
pub use exec::{Env, StepInput, StepView};

/// A model ready to run: ops built, shapes known, constants folded, memory reuse planned.
///
/// Immutable once built, and `Send + Sync`: one plan can serve many runs, from several threads.
pub struct Plan {
    /// Graph inputs in model order.
    inputs: Vec<PlanInput>,
    /// Graph outputs in model order.
    outputs: Vec<(String, Source)>,
    /// What is statically known about every tensor the planned graph mentions.
    facts: HashMap<String, Fact>,
    /// Runtime steps in execution order.
    steps: Vec<Step>,
    /// Per runtime slot: the tensor name, dtype and shape it holds.
    slots: Vec<SlotInfo>,
    /// [`PlanOptions::max_tensor_elements`], checked again at run time by dynamic steps.
    max_elements: usize,
}

/// Graph rewrites [`Plan::with_options`] applies besides batch-norm folding (which is always on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Fuse `Relu` / constant-bound `Clip` into the preceding `Conv` (default on). The fused
    /// plan's outputs are bit-identical; the pre-activation tensors just no longer exist.
    pub fuse_activations: bool,
    /// Run QDQ convolutions on the int8 kernels ([`lower_qdq`]) and 8-bit element-wise chains
    /// as lookup tables ([`lower_lut`]; default on). Off, a QDQ model is simulated in float
    /// exactly as its graph reads (the reference for the lowerings).
    pub int8_kernels: bool,
    /// Most elements in any one tensor the plan computes or folds (default
    /// [`DEFAULT_MAX_TENSOR_ELEMENTS`], the loader's default [`super::Limits`]); a larger one is a
    /// [`ModelError::Limit`]. Lower it together with [`super::Limits::max_tensor_elements`] to
    /// bound the memory a model may claim (the fuzz target does).
    pub max_tensor_elements: usize,
    /// Most elements constant folding may produce in all, over every folded node (default
    /// [`DEFAULT_MAX_FOLD_ELEMENTS`], 256 Mi); going over is a [`ModelError::Limit`] naming the
    /// node. `Constant` nodes are not counted (their values are in the file).
    pub max_fold_elements: u64,
    /// Most work constant folding may do in all: an estimate of the multiply-adds and the
    /// elements read and written by every folded node, charged before the node is evaluated
    /// (default [`DEFAULT_MAX_FOLD_WORK`], 1 Gi, about a second); going over is a
    /// [`ModelError::Limit`] naming the node. See [`super::fold`].
    pub max_fold_work: u64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            fuse_activations: true,
            int8_kernels: true,
            max_tensor_elements: DEFAULT_MAX_TENSOR_ELEMENTS,
            max_fold_elements: DEFAULT_MAX_FOLD_ELEMENTS,
            max_fold_work: DEFAULT_MAX_FOLD_WORK,
        }
    }
}

/// What [`Plan::run_hooked`] (and [`Plan::run_profiled`]) report around each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepEvent {
    /// Step `index` is about to run.
    Start,
    /// Step `index` has run and its outputs are stored.
    End,
}

/// A graph input with its resolved shape.
#[derive(Debug)]
struct PlanInput {
    name: String,
    slot: usize,
    dtype: DType,
    shape: Vec<usize>,
}

/// A runtime tensor: the name it has in the graph and its planned type and shape (for a slot
/// written by a dynamic step, known only at run time: `dynamic` is set, dtype and shape are
/// placeholders).
#[derive(Debug)]
struct SlotInfo {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
    dynamic: bool,
}

/// Where a step reads an input from.
#[derive(Debug, Clone)]
enum Source {
    /// A tensor computed (or given) at run time.
    Slot(usize),
    /// A constant known at plan time.
    Const(Arc<Tensor>),
    /// An omitted optional input.
    Omitted,
}

/// One node left to run after constant folding.
#[derive(Debug)]
struct Step {
    name: String,
    op_type: String,
    op: Box<dyn Op>,
    inputs: Vec<Source>,
    /// The slot of each output; `None` for outputs the node leaves unnamed.
    outputs: Vec<Option<usize>>,
    /// Slots whose last reader is this step: freed right after it.
    free: Vec<usize>,
    /// Output shapes depend on run-time values (see [`Op::shape_depends_on_values`]): inferred
    /// again from the actual inputs on every run.
    dynamic: bool,
}

impl Step {
    /// A step for `node`, freeing nothing yet (liveness fills `free` once every step is known).
    fn new(node: &Node, op: Box<dyn Op>, inputs: Vec<Source>, outputs: Vec<Option<usize>>, dynamic: bool) -> Step {
        Step { name: node.name.clone(), op_type: node.op_type.clone(), op, inputs, outputs, free: Vec::new(), dynamic }
    }
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("inputs", &self.input_names())
            .field("outputs", &self.output_names())
            .field("steps", &self.steps.len())
            .field("constants", &self.facts.values().filter(|f| f.value.is_some()).count())
            .finish()
    }
}

impl Plan {
    /// Plans `graph` with the ops of `registry`.
    ///
    /// `input_shapes` gives concrete shapes for graph inputs by name; they override the model's
    /// shapes and must agree with its static dimensions. Inputs with dynamic dimensions must be
    /// given. Batch norms are folded into convolutions on a copy of the graph (the caller's graph
    /// is not changed), so the plan's steps and tensor names are those of the folded graph, and
    /// nodes no graph output depends on are dropped (they need no implementation).
    ///
    /// Errors: [`ModelError::UnsupportedOps`] listing each missing op type once (with the first
    /// node using it) before anything is evaluated; [`ModelError::DynamicInput`] /
    /// [`ModelError::InputShape`] for input shapes; [`ModelError::Limit`] for a tensor of more
    /// than [`PlanOptions::max_tensor_elements`] elements or constant folding over
    /// [`PlanOptions::max_fold_elements`] / [`PlanOptions::max_fold_work`]; [`ModelError::Op`] naming the node for
    /// anything an op rejects while being built, inferred or folded.
    pub fn new(graph: &Graph, registry: &Registry, input_shapes: &[(String, Vec<usize>)]) -> Result<Plan, ModelError> {
        Self::with_options(graph, registry, input_shapes, PlanOptions::default())
    }

    /// [`Plan::new`] with the graph rewrites chosen by `options` (e.g. to compare a fused plan
    /// with an unfused one).
    pub fn with_options(
        graph: &Graph,
        registry: &Registry,
        input_shapes: &[(String, Vec<usize>)],
        options: PlanOptions,
    ) -> Result<Plan, ModelError> {
        let mut g = graph.clone();
        g.toposort()?;
        fold_batchnorm_into_conv(&mut g);
        if options.fuse_activations {
            fuse_activation_into_conv(&mut g);
            fuse_channel_min_into_conv(&mut g);
        }
        if options.int8_kernels {
            lower_qdq(&mut g);
            lower_lut(&mut g, registry);
        }
        Self::from_graph(g, registry, input_shapes, &options)
    }

    fn from_graph(
        g: Graph,
        registry: &Registry,
        input_shapes: &[(String, Vec<usize>)],
        options: &PlanOptions,
    ) -> Result<Plan, ModelError> {
        let max_elements = options.max_tensor_elements;
        let mut budget = FoldBudget::new(options.max_fold_elements, options.max_fold_work);
        let Graph { nodes, mut initializers, inputs: graph_inputs, outputs: graph_outputs, opset, .. } = g;

        // Dead-code elimination: keep what some graph output depends on.
        let mut needed: HashSet<&str> = graph_outputs.iter().map(|o| o.name.as_str()).collect();
        let mut keep = vec![false; nodes.len()];
        for (i, n) in nodes.iter().enumerate().rev() {
            if n.outputs.iter().any(|o| needed.contains(o.as_str())) {
                keep[i] = true;
                needed.extend(n.inputs.iter().map(String::as_str));
            }
        }
        let nodes: Vec<Node> = nodes.into_iter().zip(keep).filter_map(|(n, k)| k.then_some(n)).collect();

        // Build every op first, so one error can list every unsupported op type.
        let ctx = BuildCtx { opset };
        let mut unsupported: Vec<(String, String)> = Vec::new();
        let mut unsupported_seen: HashSet<&str> = HashSet::new();
        let mut build_error: Option<ModelError> = None;
        let mut ops: Vec<Option<Box<dyn Op>>> = Vec::with_capacity(nodes.len());
        for n in &nodes {
            // The ops inside `If` branches must exist too, whichever branch runs.
            for m in inline::branch_nodes(n) {
                if registry.get(&m.op_type).is_none() && unsupported_seen.insert(m.op_type.as_str()) {
                    unsupported.push((m.op_type.clone(), m.name.clone()));
                }
            }
            match registry.get(&n.op_type) {
                None => {
                    if unsupported_seen.insert(n.op_type.as_str()) {
                        unsupported.push((n.op_type.clone(), n.name.clone()));
                    }
                    ops.push(None);
                }
                // An If (a Loop) plans its branches (its body) at run time under this plan's options.
                Some(_) if n.is_any(&[OpKind::If, OpKind::Loop]) => match build_control(n, &ctx, *options) {
                    Ok(op) => ops.push(Some(op)),
                    Err(msg) => {
                        build_error.get_or_insert_with(|| ModelError::at(n, msg));
                        ops.push(None);
                    }
                },
                Some(build) => match build(n, &ctx) {
                    Ok(op) => ops.push(Some(op)),
                    Err(msg) => {
                        build_error.get_or_insert_with(|| ModelError::at(n, msg));
                        ops.push(None);
                    }
                },
            }
        }
        if !unsupported.is_empty() {
            return Err(ModelError::UnsupportedOps(unsupported));
        }
        if let Some(e) = build_error {
            return Err(e);
        }

        // Input shapes.
        // Looked up by name through maps: scanning the lists for each input would make a model
        // with many inputs quadratic to plan.
        let known = || graph_inputs.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
        let input_names: HashSet<&str> = graph_inputs.iter().map(|v| v.name.as_str()).collect();
        let mut given: HashMap<&str, &Vec<usize>> = HashMap::with_capacity(input_shapes.len());
        for (name, shape) in input_shapes {
            if !input_names.contains(name.as_str()) {
                return Err(ModelError::UnknownInput { name: name.clone(), known: known() });
            }
            given.entry(name.as_str()).or_insert(shape);
        }
        let mut facts: HashMap<String, Fact> = HashMap::new();
        let mut slots: Vec<SlotInfo> = Vec::new();
        let mut slot_of: HashMap<String, usize> = HashMap::new();
        let mut inputs = Vec::with_capacity(graph_inputs.len());
        for v in &graph_inputs {
            let dtype = DType::from_onnx(v.elem_type).map_err(|_| {
                ModelError::UnsupportedDType(format!("{} (input `{}`)", onnx_dtype_name(v.elem_type), v.name))
            })?;
            let shape = match given.get(v.name.as_str()) {
                // A model input without shape information accepts any given shape.
                Some(&given) if v.shape.is_empty() => given.clone(),
                Some(&given) => {
                    let agrees = given.len() == v.shape.len()
                        && v.shape.iter().zip(given).all(|(d, g)| d.is_none_or(|d| d == *g));
                    if !agrees {
                        return Err(ModelError::InputShape {
                            name: v.name.clone(),
                            expected: v.shape.clone(),
                            got: given.clone(),
                        });
                    }
                    given.clone()
                }
                None => v
                    .shape
                    .iter()
                    .copied()
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| ModelError::DynamicInput { name: v.name.clone(), shape: v.shape.clone() })?,
            };
            check_size(&shape, max_elements, || format!("input `{}`", v.name))?;
            let slot = slots.len();
            slots.push(SlotInfo { name: v.name.clone(), dtype, shape: shape.clone(), dynamic: false });
            slot_of.insert(v.name.clone(), slot);
            facts.insert(v.name.clone(), Fact::new(dtype, shape.clone()));
            inputs.push(PlanInput { name: v.name.clone(), slot, dtype, shape });
        }

        // Fact propagation and constant folding, in topological order.
        let mut steps: Vec<Step> = Vec::new();
        let mut dynamic: HashSet<String> = HashSet::new();
        let mut work: std::collections::VecDeque<(Node, Option<Box<dyn Op>>)> = nodes.into_iter().zip(ops).collect();
        while let Some((node, op)) = work.pop_front() {
            let Some(op) = op else { continue };
            for i in &node.inputs {
                if !i.is_empty() && !facts.contains_key(i) {
                    if let Some(t) = initializers.remove(i) {
                        facts.insert(i.clone(), Fact::constant(t));
                    }
                }
            }
            // An `If` whose condition is known: the branch it takes, in its place.
            let cond = node.inputs.first().and_then(|c| facts.get(c)).and_then(|f| f.value.clone());
            if let (true, Some(cond)) = (node.is(OpKind::If), cond) {
                let (inlined, consts) = inline::inline_if(&node, &cond)?;
                initializers.extend(consts);
                for n in inlined.into_iter().rev() {
                    let build = registry
                        .get(&n.op_type)
                        .ok_or_else(|| ModelError::UnsupportedOps(vec![(n.op_type.clone(), n.name.clone())]))?;
                    let op = if n.is_any(&[OpKind::If, OpKind::Loop]) {
                        build_control(&n, &ctx, *options)
                    } else {
                        build(&n, &ctx)
                    }
                    .map_err(|m| ModelError::at(&n, m))?;
                    work.push_front((n, Some(op)));
                }
                continue;
            }
            // The dynamic tail: a step whose output shapes depend on run-time values, and every
            // step reading such an output, is inferred on each run (under the same size limit).
            let reads_dynamic = node.inputs.iter().any(|i| dynamic.contains(i.as_str()));
            let all_known = node.inputs.iter().all(|i| i.is_empty() || facts.get(i).is_some_and(|f| f.value.is_some()));
            if reads_dynamic || (op.shape_depends_on_values() && !all_known) {
                let sources = node
                    .inputs
                    .iter()
                    .map(|name| match (name.as_str(), facts.get(name)) {
                        ("", _) => Ok(Source::Omitted),
                        (_, Some(Fact { value: Some(v), .. })) => Ok(Source::Const(v.clone())),
                        _ => slot_of
                            .get(name)
                            .map(|&s| Source::Slot(s))
                            .ok_or_else(|| ModelError::MissingInput { node: node.name.clone(), input: name.clone() }),
                    })
                    .collect::<Result<_, _>>()?;
                let outputs = node
                    .outputs
                    .iter()
                    .map(|name| {
                        (!name.is_empty()).then(|| {
                            slots.push(SlotInfo {
                                name: name.clone(),
                                dtype: DType::F32,
                                shape: Vec::new(),
                                dynamic: true,
                            });
                            slot_of.insert(name.clone(), slots.len() - 1);
                            dynamic.insert(name.clone());
                            slots.len() - 1
                        })
                    })
                    .collect();
                steps.push(Step::new(&node, op, sources, outputs, true));
                continue;
            }
            let in_facts: Vec<Option<&Fact>> = node
                .inputs
                .iter()
                .map(|i| match i.as_str() {
                    "" => Ok(None),
                    name => facts
                        .get(name)
                        .map(Some)
                        .ok_or_else(|| ModelError::MissingInput { node: node.name.clone(), input: i.clone() }),
                })
                .collect::<Result<_, _>>()?;
            let inferred = op.infer(&in_facts).map_err(|e| ModelError::at(&node, e))?;
            if inferred.len() < node.outputs.len() {
                return Err(ModelError::at(
                    &node,
                    OpError::internal(format!(
                        "the op describes {} outputs, the node has {}",
                        inferred.len(),
                        node.outputs.len()
                    )),
                ));
            }
            for f in &inferred {
                check_size(&f.shape, max_elements, || format!("node `{}` ({})", node.name, node.op_type))?;
            }
            let all_const_inputs = in_facts.iter().all(|f| f.is_none_or(|f| f.value.is_some()));
            let out_facts: Vec<Fact> = if all_const_inputs {
                budget.charge(&node, &in_facts, &inferred)?;
                let values: Vec<Option<&Tensor>> =
                    in_facts.iter().map(|f| f.and_then(|f| f.value.as_deref())).collect();
                let computed = op.eval(&values).map_err(|e| ModelError::at(&node, e))?;
                if computed.len() < node.outputs.len() {
                    return Err(ModelError::at(
                        &node,
                        OpError::internal(output_count(computed.len(), node.outputs.len())),
                    ));
                }
                computed
                    .into_iter()
                    .zip(&inferred)
                    .map(|(t, f)| {
                        check_against(&t, f.dtype, &f.shape)
                            .map_err(|m| ModelError::at(&node, OpError::internal(m)))?;
                        Ok(Fact::constant(t))
                    })
                    .collect::<Result<_, ModelError>>()?
            } else if node.outputs.iter().zip(&inferred).all(|(o, f)| o.is_empty() || f.value.is_some()) {
                inferred
            } else {
                let sources =
                    node.inputs
                        .iter()
                        .zip(&in_facts)
                        .map(|(name, f)| match f {
                            None => Ok(Source::Omitted),
                            Some(Fact { value: Some(v), .. }) => Ok(Source::Const(v.clone())),
                            // Known and not constant: an input or an earlier step's output.
                            Some(_) => slot_of.get(name).map(|&s| Source::Slot(s)).ok_or_else(|| {
                                ModelError::MissingInput { node: node.name.clone(), input: name.clone() }
                            }),
                        })
                        .collect::<Result<_, _>>()?;
                let outputs = node
                    .outputs
                    .iter()
                    .zip(&inferred)
                    .map(|(name, f)| {
                        (!name.is_empty()).then(|| {
                            slots.push(SlotInfo {
                                name: name.clone(),
                                dtype: f.dtype,
                                shape: f.shape.clone(),
                                dynamic: false,
                            });
                            slot_of.insert(name.clone(), slots.len() - 1);
                            slots.len() - 1
                        })
                    })
                    .collect();
                steps.push(Step::new(&node, op, sources, outputs, false));
                inferred.into_iter().map(|f| Fact::new(f.dtype, f.shape)).collect()
            };
            drop(in_facts);
            for (name, f) in node.outputs.iter().zip(out_facts) {
                if !name.is_empty() {
                    facts.insert(name.clone(), f);
                }
            }
        }

        // Graph outputs: a runtime slot or a constant (an output may be an initializer).
        let mut outputs = Vec::with_capacity(graph_outputs.len());
        for o in &graph_outputs {
            if !facts.contains_key(&o.name) {
                if let Some(t) = initializers.remove(&o.name) {
                    facts.insert(o.name.clone(), Fact::constant(t));
                }
            }
            let source = match (facts.get(&o.name), slot_of.get(&o.name)) {
                (Some(Fact { value: Some(v), .. }), _) => Source::Const(v.clone()),
                (_, Some(&s)) => Source::Slot(s),
                _ => return Err(ModelError::MissingOutput(o.name.clone())),
            };
            outputs.push((o.name.clone(), source));
        }

        // Liveness: free each slot after its last reader (or right after its producer when no
        // step reads it). Inputs are borrowed and outputs are kept, so neither is freed.
        let mut last: Vec<Option<usize>> = vec![None; slots.len()];
        for (i, s) in steps.iter().enumerate() {
            for &o in s.outputs.iter().flatten() {
                last[o] = Some(i);
            }
            for src in &s.inputs {
                if let Source::Slot(slot) = src {
                    last[*slot] = Some(i);
                }
            }
        }
        for inp in &inputs {
            last[inp.slot] = None;
        }
        for (_, src) in &outputs {
            if let Source::Slot(s) = src {
                last[*s] = None;
            }
        }
        for (slot, at) in last.into_iter().enumerate() {
            if let Some(step) = at.and_then(|i| steps.get_mut(i)) {
                step.free.push(slot);
            }
        }

        Ok(Plan { inputs, outputs, facts, steps, slots, max_elements })
    }

    /// Graph input names, in model order.
    pub fn input_names(&self) -> Vec<&str> {
        self.inputs.iter().map(|i| i.name.as_str()).collect()
    }

    /// Graph output names, in model order.
    pub fn output_names(&self) -> Vec<&str> {
        self.outputs.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The runtime steps, as (node name, op type), in execution order. Folded nodes are absent.
    pub fn steps(&self) -> Vec<(&str, &str)> {
        self.steps.iter().map(|s| (s.name.as_str(), s.op_type.as_str())).collect()
    }

    /// What planning knows about a tensor of the planned graph: dtype, static shape and, for
    /// constants, the value. `None` for names the planned graph does not use.
    pub fn fact(&self, name: &str) -> Option<&Fact> {
        self.facts.get(name)
    }
}

/// Refuses tensors larger than `max` elements ([`PlanOptions::max_tensor_elements`]): a crafted
/// model or input shape must fail planning with a message rather than abort the process
/// allocating at run time.
fn check_size(shape: &[usize], max: usize, what: impl Fn() -> String) -> Result<(), ModelError> {
    match numel(shape) {
        Ok(n) if n <= max => Ok(()),
        Ok(n) => Err(ModelError::Limit(format!(
            "{} would make a tensor of shape {shape:?} ({n} elements), more than the limit of {}",
            what(),
            max
        ))),
        Err(_) => Err(ModelError::Limit(format!(
            "{} would make a tensor of shape {shape:?}, which has more elements than can be addressed",
            what()
        ))),
    }
}

/// Builds an `If` or a `Loop`, whose subgraphs are planned at run time under `options` (the
/// enclosing plan's limits and budget).
fn build_control(
    n: &Node,
    ctx: &crate::ops::BuildCtx,
    options: PlanOptions,
) -> Result<Box<dyn crate::ops::Op>, crate::ops::OpError> {
    if n.is(OpKind::Loop) {
        crate::ops::control::loop_op::build_with(n, ctx, options)
    } else {
        crate::ops::control::if_op::build_with(n, ctx, options)
    }
}
