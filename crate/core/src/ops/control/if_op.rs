//! If: runs `then_branch` or `else_branch` by a one-element boolean condition.
//!
//! The branches are subgraphs ([`crate::model::Attr::Graph`]) whose inputs are the outer values
//! they read, given to the node after the condition ([`crate::model::subgraph`]). When the
//! condition is a constant at plan time, planning inlines the taken branch and this op never
//! runs. Otherwise it is a dynamic step ([`Op::shape_depends_on_values`]: the branches may
//! produce different shapes): on each run it plans the taken branch for the actual input shapes
//! and runs it on the CPU, under the options (the size limits, the folding budget) of the plan
//! the node is in.

use crate::model::{Data, Graph, Node, Plan, PlanOptions, Tensor};
use crate::ops::{input, BuildCtx, Fact, Op, OpError, Registry};
use std::sync::Arc;

/// If.
#[derive(Debug, Clone)]
pub struct If {
    /// The branch taken when the condition is true (inputs: the captured outer values).
    pub then_branch: Arc<Graph>,
    /// The branch taken when it is false.
    pub else_branch: Arc<Graph>,
    /// The options a branch is planned with at run time: the enclosing plan's.
    pub options: PlanOptions,
}

/// Builds If: both branches must be present and give one output per node output. A branch run
/// at run time is planned with the default [`PlanOptions`]; planning builds its `If` nodes with
/// its own ([`build_with`]).
pub fn build(node: &Node, ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    build_with(node, ctx, PlanOptions::default())
}

/// [`build`], planning the branches with `options` (the limits and budget of the enclosing plan).
pub fn build_with(node: &Node, ctx: &BuildCtx, options: PlanOptions) -> Result<Box<dyn Op>, OpError> {
    let captured = node.captured();
    let branch = |key: &str| -> Result<Arc<Graph>, OpError> {
        let g = node.attrs.graph(key).ok_or_else(|| {
            OpError::malformed(format!("the node has no `{key}` graph: an If needs then_branch and else_branch; check the model with onnx.checker.check_model"))
        })?;
        if g.outputs.len() != node.outputs.len() {
            return Err(OpError::malformed(format!(
                "`{key}` has {} output{} but the node has {}: both branches must give one value per output of the If; \
                 the model is invalid (check it with onnx.checker.check_model)",
                g.outputs.len(),
                if g.outputs.len() == 1 { "" } else { "s" },
                node.outputs.len()
            )));
        }
        if g.inputs.len() != captured || node.inputs.len() != captured + 1 {
            return Err(OpError::malformed(format!(
                "the node takes {} inputs and its branches read {captured} outer values: an If takes the condition alone \
                 besides the values its branches read",
                node.inputs.len()
            )));
        }
        let mut g = g.clone();
        g.opset = ctx.opset;
        Ok(Arc::new(g))
    };
    Ok(Box::new(If { then_branch: branch("then_branch")?, else_branch: branch("else_branch")?, options }))
}

/// The value of an If's condition: a tensor of one element, true when non-zero.
pub fn condition(t: &Tensor) -> Result<bool, OpError> {
    if t.len() != 1 {
        return Err(OpError::mismatch(format!(
            "the condition has shape {:?}: it must hold exactly one value (a boolean scalar)",
            t.shape
        )));
    }
    Ok(match &t.data {
        Data::Bool(v) => v[0],
        Data::F32(v) => v[0] != 0.0,
        _ => t.to_i64_vec().map_err(OpError::mismatch)?[0] != 0,
    })
}

impl If {
    /// The branch the condition `cond` selects.
    pub fn branch(&self, cond: &Tensor) -> Result<&Arc<Graph>, OpError> {
        Ok(if condition(cond)? { &self.then_branch } else { &self.else_branch })
    }
}

/// Plans `graph` (a branch or a loop body) for `values` (its inputs, in order) and runs it with
/// `options`. Small values (at most [`FOLDED_INPUT_ELEMENTS`]: the shapes, axes, indices and
/// iteration numbers subgraphs compute with) are bound as constants, so that the shape
/// arithmetic inside folds as it would outside; larger ones are the plan's inputs.
pub fn run_subgraph(graph: &Graph, values: &[Option<&Tensor>], options: PlanOptions) -> Result<Vec<Tensor>, OpError> {
    let mut g = graph.clone();
    // Planned as a graph of its own: every input is given.
    g.formal_inputs = 0;
    let (mut given, mut small) = (Vec::with_capacity(values.len()), Vec::new());
    for (v, t) in g.inputs.iter_mut().zip(values) {
        let t = t.ok_or_else(|| OpError::malformed(format!("the value `{}` a subgraph reads is missing", v.name)))?;
        v.elem_type = t.dtype().onnx_code();
        v.shape = t.shape.iter().map(|&d| Some(d)).collect();
        if t.len() <= FOLDED_INPUT_ELEMENTS {
            small.push((v.name.clone(), t.clone()));
        } else {
            given.push((v.name.clone(), t.clone()));
        }
    }
    g.bind_inputs(&small).map_err(OpError::internal)?;
    let shapes: Vec<(String, Vec<usize>)> = given.iter().map(|(n, t)| (n.clone(), t.shape.clone())).collect();
    let plan = Plan::with_options(&g, &Registry::new(), &shapes, options).map_err(|e| OpError::Branch(Box::new(e)))?;
    plan.run(&given).map_err(|e| OpError::Branch(Box::new(e)))
}

/// The values of a dynamic step's inputs (a dynamic step has them all; `None` for an omitted
/// one), for an `If` or a `Loop`, whose output shapes are known only by running it.
pub fn known_values<'a>(inputs: &[Option<&'a Fact>]) -> Result<Vec<Option<&'a Tensor>>, OpError> {
    inputs
        .iter()
        .map(|f| match f.map(|f| f.value.as_deref()) {
            None => Ok(None),
            Some(Some(v)) => Ok(Some(v)),
            Some(None) => Err(OpError::internal("a value the subgraph reads is known only at run time")),
        })
        .collect()
}

/// Inputs of a branch run at run time with at most this many elements are constants of its plan.
pub const FOLDED_INPUT_ELEMENTS: usize = 4096;

impl Op for If {
    /// The branches may give different shapes: known once the condition is.
    fn shape_depends_on_values(&self) -> bool {
        true
    }

    /// Needs every input's value (a dynamic step has them): the shapes come from running the
    /// taken branch, which a data-dependent branch (NMS, NonZero) leaves no other way to know.
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(self.eval(&known_values(inputs)?)?.into_iter().map(Fact::constant).collect())
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let branch = self.branch(input(inputs, 0)?)?;
        run_subgraph(branch, &inputs[1..], self.options)
    }
}
