//! Subgraphs: an `If` node's `then_branch` and `else_branch` and a `Loop` node's `body`, loaded
//! as [`Graph`]s ([`Attr::Graph`]). A `Loop` body declares inputs of its own (the iteration
//! number, the condition, the loop-carried values): they stay first in [`Graph::inputs`]
//! ([`Graph::formal_inputs`] of them), before the outer values it reads.
//!
//! A branch reads values of the scopes around it by name, without declaring them (ONNX's
//! implicit inputs). Loading makes that explicit: the names a branch reads but does not produce
//! become its [`Graph::inputs`] and are appended to the node's inputs, in the same order for both
//! branches ([`Node::captured`]). Sorting, dead-code elimination and every pass then see the
//! dependency like any other input, and planning maps a branch's inputs to the node's by
//! position — so a pass that renames a node input keeps the branch wired.
//!
//! Planning inlines the branch an `If` takes when its condition is a constant
//! ([`super::plan`]); otherwise the `If` op runs the branch at run time
//! ([`crate::ops::control::if_op`]).

use super::load::{constant_value, convert_node, convert_tensor, convert_value_info, produced_twice, Limits};
use super::proto::GraphProto;
use super::{Attr, Graph, ModelError, Node, OpKind, ValueInfo};
use std::collections::{HashMap, HashSet};

/// Most `If` branches nested inside each other (a crafted file must not exhaust the stack).
pub const MAX_NESTING: usize = 16;

/// Converts a branch of node `owner`, `depth` levels deep. Its inputs are the ones it declares
/// (none for an `If` branch): [`capture_outer_values`] appends the outer values it reads once
/// every subgraph of the node is loaded.
pub(super) fn convert_subgraph(
    g: GraphProto,
    owner: &str,
    names: &mut HashSet<String>,
    limits: &Limits,
    depth: usize,
) -> Result<Graph, ModelError> {
    if depth > MAX_NESTING {
        return Err(ModelError::Limit(format!(
            "node `{owner}`: `If` branches are nested more than {MAX_NESTING} deep: qplay does not load such a model"
        )));
    }
    if g.node.len() > limits.max_nodes {
        return Err(ModelError::Limit(format!(
            "a branch of node `{owner}` has {} nodes, more than the limit of {}: use a smaller model",
            g.node.len(),
            limits.max_nodes
        )));
    }
    let mut initializers = HashMap::with_capacity(g.initializer.len());
    for t in g.initializer {
        let name = t.name.clone();
        if name.is_empty() {
            return Err(ModelError::BadTensor {
                name: format!("{owner} (branch)"),
                reason: "an initializer of the branch has no name".into(),
            });
        }
        let tensor = convert_tensor(t, &name, limits)?;
        if initializers.insert(name.clone(), tensor).is_some() {
            return Err(produced_twice(&name));
        }
    }
    let mut nodes = Vec::with_capacity(g.node.len());
    for (index, n) in g.node.into_iter().enumerate() {
        let node = convert_node(n, index, names, limits, depth)?;
        if node.is(OpKind::Constant) {
            let (name, value) = constant_value(node)?;
            if initializers.insert(name.clone(), value).is_some() {
                return Err(produced_twice(&name));
            }
        } else {
            nodes.push(node);
        }
    }
    let outputs: Vec<ValueInfo> = g.output.into_iter().map(convert_value_info).collect();
    if outputs.is_empty() {
        return Err(ModelError::Other(format!(
            "a branch of node `{owner}` has no outputs: the model is invalid; check it with onnx.checker.check_model"
        )));
    }
    let inputs: Vec<ValueInfo> = g.input.into_iter().map(convert_value_info).collect();
    let formal_inputs = inputs.len();
    Ok(Graph { nodes, initializers, outputs, inputs, formal_inputs, ..Default::default() })
}

/// The names `g` reads (node inputs, its outputs) that it neither produces nor declares as its
/// own inputs, in first-read order.
fn free_names(g: &Graph) -> Vec<String> {
    let produced: HashSet<&str> = g
        .initializers
        .keys()
        .map(String::as_str)
        .chain(g.inputs[..g.formal_inputs.min(g.inputs.len())].iter().map(|v| v.name.as_str()))
        .chain(g.nodes.iter().flat_map(|n| n.outputs.iter().map(String::as_str)))
        .collect();
    let mut seen = HashSet::new();
    g.nodes
        .iter()
        .flat_map(|n| n.inputs.iter())
        .chain(g.outputs.iter().map(|o| &o.name))
        .filter(|i| !i.is_empty() && !produced.contains(i.as_str()) && seen.insert(i.as_str()))
        .cloned()
        .collect()
}

/// Makes the outer values `node`'s branches read explicit: each branch's inputs and the node's
/// trailing inputs, the same names in the same order (see the module docs). Sorts the branches.
pub(super) fn capture_outer_values(node: &mut Node) -> Result<(), ModelError> {
    let mut keys: Vec<String> =
        node.attrs.0.iter().filter(|(_, a)| matches!(a, Attr::Graph(_))).map(|(k, _)| k.clone()).collect();
    keys.sort();
    let mut captured: Vec<String> = Vec::new();
    for k in &keys {
        if let Some(Attr::Graph(g)) = node.attrs.0.get(k) {
            for name in free_names(g) {
                if !captured.contains(&name) {
                    captured.push(name);
                }
            }
        }
    }
    for k in &keys {
        if let Some(Attr::Graph(g)) = node.attrs.0.get_mut(k) {
            g.inputs.truncate(g.formal_inputs);
            g.inputs.extend(captured.iter().map(|n| ValueInfo { name: n.clone(), elem_type: 0, shape: Vec::new() }));
            g.toposort().map_err(|e| ModelError::Other(format!("branch `{k}` of node `{}`: {e}", node.name)))?;
        }
    }
    node.inputs.extend(captured);
    Ok(())
}
