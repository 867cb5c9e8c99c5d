//! Inlining an `If` whose condition planning knows (a constant after shape inference and
//! folding: exporters test shapes, `numel == 0`, `size > k`): the taken branch's nodes replace
//! the node, so they are folded and planned like any other, and the untaken branch is gone.
//!
//! The branch's tensors are renamed `<node>/<name>` (unique in the plan), its inputs are wired to
//! the outer values the node reads ([`crate::model::subgraph`]), and one `Identity` per output
//! gives each branch output the node's output name.

use crate::model::{Attr, ModelError, Node, OpKind, Tensor};
use crate::ops::control::if_op::condition;
use crate::ops::OpError;
use std::collections::{HashMap, HashSet};

/// Every node inside `node`'s subgraphs, nested ones included.
pub(super) fn branch_nodes(node: &Node) -> Vec<&Node> {
    let (mut out, mut stack) = (Vec::new(), vec![node]);
    while let Some(n) = stack.pop() {
        for a in n.attrs.0.values() {
            if let Attr::Graph(g) = a {
                out.extend(g.nodes.iter());
                stack.extend(g.nodes.iter());
            }
        }
    }
    out
}

/// The nodes an inlined `If` becomes, and the branch constants they read (renamed).
pub(super) type Inlined = (Vec<Node>, Vec<(String, Tensor)>);

/// What replaces `node`, an `If` whose condition is `cond`: the nodes of the branch taken (those
/// its outputs depend on), then one `Identity` per node output; and the branch's constants they
/// read, renamed.
pub(super) fn inline_if(node: &Node, cond: &Tensor) -> Result<Inlined, ModelError> {
    let key = if condition(cond).map_err(|m| ModelError::at(node, m))? { "then_branch" } else { "else_branch" };
    let g = node.attrs.graph(key).ok_or_else(|| {
        ModelError::at(node, OpError::malformed(format!("the node has no `{key}` graph: an If needs both branches")))
    })?;
    let outer = &node.inputs[node.inputs.len().saturating_sub(node.captured())..];
    if outer.len() != g.inputs.len() || g.outputs.len() != node.outputs.len() {
        return Err(ModelError::at(
            node,
            OpError::malformed(format!(
                "`{key}` reads {} outer values and gives {} outputs; the node passes {} and has {} outputs",
                g.inputs.len(),
                g.outputs.len(),
                outer.len(),
                node.outputs.len()
            )),
        ));
    }
    let local = |name: &str| format!("{}/{name}", node.name);
    let mut rename: HashMap<&str, String> = HashMap::new();
    for (v, o) in g.inputs.iter().zip(outer) {
        rename.insert(&v.name, o.clone());
    }
    for k in g.initializers.keys() {
        rename.insert(k, local(k));
    }
    for o in g.nodes.iter().flat_map(|n| n.outputs.iter()).filter(|o| !o.is_empty()) {
        rename.insert(o, local(o));
    }
    let map = |name: &String| match name.as_str() {
        "" => String::new(),
        n => rename.get(n).cloned().unwrap_or_else(|| name.clone()),
    };

    // Only what the branch's outputs depend on.
    let mut needed: HashSet<&str> = g.outputs.iter().map(|o| o.name.as_str()).collect();
    let mut keep = vec![false; g.nodes.len()];
    for (i, n) in g.nodes.iter().enumerate().rev() {
        if n.outputs.iter().any(|o| needed.contains(o.as_str())) {
            keep[i] = true;
            needed.extend(n.inputs.iter().map(String::as_str));
        }
    }
    let mut nodes: Vec<Node> = g
        .nodes
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(n, _)| Node {
            inputs: n.inputs.iter().map(map).collect(),
            outputs: n.outputs.iter().map(map).collect(),
            ..n.clone()
        })
        .collect();
    for (i, (out, from)) in node.outputs.iter().zip(&g.outputs).enumerate().filter(|(_, (o, _))| !o.is_empty()) {
        nodes.push(Node {
            name: format!("{}/output{i}", node.name),
            op_type: OpKind::Identity.into(),
            inputs: vec![map(&from.name)],
            outputs: vec![out.clone()],
            attrs: Default::default(),
            fused: Default::default(),
        });
    }
    let consts = g
        .initializers
        .iter()
        .filter(|(k, _)| needed.contains(k.as_str()))
        .map(|(k, t)| (local(k), t.clone()))
        .collect();
    Ok((nodes, consts))
}
