//! Lowering of 8-bit element-wise functions to lookup tables: the int8 path for `Sigmoid`,
//! `HardSwish`, `Tanh`, `Exp`, SiLU (`x · Sigmoid(x)`) and friends in QDQ models.
//!
//! ```text
//! xq ─DQ(sx,zx)─ x ─ f(x) (element-wise float ops) ─ y ─Q(sy,zy)─ yq    ⇒    yq = table[xq]
//! ```
//!
//! A `QuantizeLinear` (per-tensor, constant parameters) whose input is computed from exactly
//! one per-tensor `DequantizeLinear` output through element-wise float ops — one-input ops, and
//! `Add`/`Sub`/`Mul`/`Div` whose other operand is the same cone or a one-value constant — is a
//! function of one 8-bit code: 256 possible inputs. The pass runs the chain itself (the CPU ops,
//! planned on a 256-element tensor holding every code) and replaces it by one
//! [`qplay.Lookup`](crate::ops::quant::lookup) node with that table, so the lowered plan gives
//! the float chain's codes in every value, in one byte load per element (and on the GPU, where
//! the float functions would only agree to rounding, exactly). The chain's intermediate tensors
//! must have no reader outside it and must not be graph outputs; the `DequantizeLinear` stays
//! when something else reads it (planning drops it otherwise).

use super::{Data, Graph, Node, Plan, PlanOptions, Tensor, ValueInfo};
use crate::model::OpKind;
use crate::ops::Registry;
use std::collections::{HashMap, HashSet};

/// One-input element-wise float ops a table may absorb (attributes allowed).
const UNARY: &[OpKind] = &[
    OpKind::Relu,
    OpKind::LeakyRelu,
    OpKind::Sigmoid,
    OpKind::HardSigmoid,
    OpKind::HardSwish,
    OpKind::Tanh,
    OpKind::Elu,
    OpKind::Softplus,
    OpKind::Exp,
    OpKind::Log,
    OpKind::Neg,
    OpKind::Abs,
    OpKind::Sqrt,
    OpKind::Reciprocal,
    OpKind::Erf,
    OpKind::Gelu,
    OpKind::Identity,
];
/// Two-input element-wise ops (the other operand the same cone or a one-value constant).
const BINARY: &[OpKind] = &[OpKind::Add, OpKind::Sub, OpKind::Mul, OpKind::Div, OpKind::Min, OpKind::Max, OpKind::Pow];
/// One lowering: the Q's index, the cone's node indices, the lookup node, its table.
type Rewrite = (usize, Vec<usize>, Node, (String, Tensor));

/// The most float ops one table absorbs.
const MAX_CONE: usize = 16;

/// Rewrites every such chain; returns how many tables were made.
pub fn lower_lut(graph: &mut Graph, registry: &Registry) -> usize {
    let producer: HashMap<String, usize> =
        graph.nodes.iter().enumerate().flat_map(|(i, n)| n.outputs.iter().map(move |o| (o.clone(), i))).collect();
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        for inp in n.inputs.iter().filter(|s| !s.is_empty()) {
            readers.entry(inp.as_str()).or_default().push(i);
        }
    }
    let outputs: HashSet<&str> = graph.outputs.iter().map(|o| o.name.as_str()).collect();

    let mut rewrites: Vec<Rewrite> = Vec::new();
    let mut used: HashSet<usize> = HashSet::new();
    for (qi, q) in graph.nodes.iter().enumerate() {
        if !q.is(OpKind::QuantizeLinear) || q.outputs.len() != 1 || !per_tensor(graph, q) {
            continue;
        }
        let Some(m) = match_cone(graph, q, &producer) else { continue };
        // Exclusive: every tensor of the cone is read only inside it (or by the Q), and none
        // is a graph output.
        let inside: HashSet<usize> = m.cone.iter().copied().chain([qi]).collect();
        let exclusive = m.cone.iter().all(|&ci| {
            graph.nodes[ci].outputs.iter().all(|o| {
                !outputs.contains(o.as_str())
                    && readers.get(o.as_str()).is_none_or(|r| r.iter().all(|k| inside.contains(k)))
            })
        });
        if !exclusive || m.cone.iter().any(|c| used.contains(c)) {
            continue;
        }
        let Some(table) = compute_table(graph, registry, &m, q) else { continue };
        let name = format!("{}::lookup_table", q.name);
        let node = Node {
            name: q.name.clone(),
            op_type: OpKind::Lookup.into(),
            inputs: vec![m.code.clone(), name.clone()],
            outputs: q.outputs.clone(),
            attrs: Default::default(),
            fused: Default::default(),
        };
        used.extend(m.cone.iter().copied());
        rewrites.push((qi, m.cone, node, (name, table)));
    }
    let count = rewrites.len();
    let mut remove: HashSet<usize> = HashSet::new();
    for (qi, cone, node, (name, table)) in rewrites {
        graph.nodes[qi] = node;
        remove.extend(cone);
        graph.initializers.insert(name, table);
    }
    let mut k = 0;
    graph.nodes.retain(|_| {
        k += 1;
        !remove.contains(&(k - 1))
    });
    count
}

/// A matched chain: the DequantizeLinear's node, its 8-bit input, and the float ops between.
struct Cone {
    dq: usize,
    code: String,
    /// Node indices, in graph (topological) order.
    cone: Vec<usize>,
}

fn init<'g>(graph: &'g Graph, name: &str) -> Option<&'g Tensor> {
    graph.initializers.get(name)
}

/// Constant one-value scale and (optional) zero-point, no block quantization.
fn per_tensor(graph: &Graph, n: &Node) -> bool {
    let one = |k: usize| n.inputs.get(k).filter(|s| !s.is_empty()).map(|s| init(graph, s).map(|t| t.len() == 1));
    n.attrs.int("block_size", 0) == 0
        && one(1) == Some(Some(true))
        && matches!(one(2), None | Some(Some(true)))
        && n.inputs
            .get(2)
            .filter(|s| !s.is_empty())
            .is_none_or(|z| init(graph, z).is_some_and(|t| matches!(t.data, Data::U8(_) | Data::I8(_))))
}

fn match_cone(graph: &Graph, q: &Node, producer: &HashMap<String, usize>) -> Option<Cone> {
    let mut cone: Vec<usize> = Vec::new();
    let mut dq: Option<usize> = None;
    let mut stack = vec![q.inputs.first()?.clone()];
    let mut seen: HashSet<String> = HashSet::new();
    while let Some(t) = stack.pop() {
        if !seen.insert(t.clone()) {
            continue;
        }
        if let Some(c) = init(graph, &t) {
            // A constant operand: one value (an element-wise function of the code alone).
            if c.len() != 1 {
                return None;
            }
            continue;
        }
        let &p = producer.get(&t)?;
        let n = &graph.nodes[p];
        if n.is(OpKind::DequantizeLinear) {
            let code = n.inputs.first()?;
            // A constant code (weights) would be folded instead.
            if !per_tensor(graph, n) || init(graph, code).is_some() || dq.is_some_and(|d| d != p) {
                return None;
            }
            dq = Some(p);
            continue;
        }
        let ok = (n.is_any(UNARY) && n.inputs.len() == 1)
            || (n.is(OpKind::Clip) && n.inputs.iter().skip(1).all(|s| s.is_empty() || init(graph, s).is_some()))
            || (n.is_any(BINARY) && n.inputs.len() == 2);
        if !ok || n.outputs.len() != 1 {
            return None;
        }
        if !cone.contains(&p) {
            cone.push(p);
            if cone.len() > MAX_CONE {
                return None;
            }
        }
        stack.extend(n.inputs.iter().filter(|s| !s.is_empty()).cloned());
    }
    let dq = dq?;
    if cone.is_empty() {
        return None;
    }
    cone.sort_unstable();
    Some(Cone { dq, code: graph.nodes[dq].inputs[0].clone(), cone })
}

/// Runs DQ → cone → Q on the 256 codes (by their bits) with the CPU ops: the table.
fn compute_table(graph: &Graph, registry: &Registry, m: &Cone, q: &Node) -> Option<Tensor> {
    let dq = &graph.nodes[m.dq];
    // The code's type: the DQ zero-point's, uint8 without one (ONNX's default).
    let signed = dq
        .inputs
        .get(2)
        .filter(|s| !s.is_empty())
        .and_then(|z| init(graph, z))
        .is_some_and(|t| matches!(t.data, Data::I8(_)));
    let codes = if signed {
        Tensor { shape: vec![256], data: Data::I8((0..=255u8).map(|b| b as i8).collect()) }
    } else {
        Tensor { shape: vec![256], data: Data::U8((0..=255u8).collect()) }
    };
    let mut nodes = vec![dq.clone()];
    nodes.extend(m.cone.iter().map(|&c| graph.nodes[c].clone()));
    nodes.push(q.clone());
    let mut initializers = HashMap::new();
    for n in &nodes {
        for i in n.inputs.iter().filter(|s| !s.is_empty()) {
            if let Some(t) = init(graph, i) {
                initializers.insert(i.clone(), t.clone());
            }
        }
    }
    let out = q.outputs[0].clone();
    let small = Graph {
        nodes,
        initializers,
        inputs: vec![ValueInfo { name: m.code.clone(), elem_type: if signed { 3 } else { 2 }, shape: vec![Some(256)] }],
        outputs: vec![ValueInfo { name: out, elem_type: 0, shape: vec![] }],
        opset: graph.opset,
        ..Default::default()
    };
    // No lowering inside (this is the reference) and no fusion: the ops exactly as written.
    let opts = PlanOptions { fuse_activations: false, int8_kernels: false, ..Default::default() };
    let plan = Plan::with_options(&small, registry, &[(m.code.clone(), vec![256])], opts).ok()?;
    let y = plan.run(&[(m.code.clone(), codes)]).ok()?.into_iter().next()?;
    matches!(y.data, Data::U8(_) | Data::I8(_)).then_some(y)
}
