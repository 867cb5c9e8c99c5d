//! Graph rewrites that keep a model's function but make it cheaper and closer to what
//! deployment runtimes execute (and therefore quantize).

use super::{Attrs, Data, Graph, Node, Tensor};
use crate::model::OpKind;
use std::collections::{HashMap, HashSet};

/// Folds each foldable `BatchNormalization` into the `Conv` that feeds it, and returns how many
/// were folded.
///
/// A BN is folded when its input is a `Conv` output that nothing else reads (nor is a graph
/// output), the Conv's weight (and bias, if any) and the BN's scale γ, bias β, mean μ and
/// variance σ² are float32 initializers of one value per output channel, and the BN is in
/// inference mode. Then, per output channel `m` with `s = γ/√(σ²+ε)`:
/// `w'[m] = w[m]·s` and `b'[m] = (b[m] − μ)·s + β` (`b = 0` for a Conv without bias).
/// The BN node is removed and the Conv produces the BN's output name. Weights another node
/// also reads are not changed in place: the folded copy gets a new name. Initializers left
/// unreferenced by the rewrite are removed. Anything not matching is left as it is.
///
/// This is what deployment toolchains do before quantizing, so per-channel weight ranges seen
/// by the quantizer are those of the folded weights.
pub fn fold_batchnorm_into_conv(graph: &mut Graph) -> usize {
    let (uses, producer) = uses_and_producers(graph);

    let folds: Vec<Fold> = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.is(OpKind::BatchNormalization))
        .filter_map(|(bn, _)| plan_fold(graph, bn, &uses, &producer))
        .collect();
    if folds.is_empty() {
        return 0;
    }

    let mut taken: HashSet<String> = graph
        .nodes
        .iter()
        .flat_map(|n| n.inputs.iter().chain(&n.outputs).cloned())
        .chain(graph.initializers.keys().cloned())
        .chain(graph.inputs.iter().chain(&graph.outputs).map(|v| v.name.clone()))
        .collect();
    let mut fresh = |base: String| {
        let name =
            (0..).map(|k| if k == 0 { base.clone() } else { format!("{base}_{k}") }).find(|c| !taken.contains(c));
        let name = name.unwrap_or(base);
        taken.insert(name.clone());
        name
    };

    let mut touched: Vec<String> = Vec::new();
    let mut removed = vec![false; graph.nodes.len()];
    let count = folds.len();
    for f in folds {
        let bn_inputs = graph.nodes[f.bn].inputs.clone();
        let bn_out = graph.nodes[f.bn].outputs[0].clone();
        touched.extend(bn_inputs.into_iter().skip(1));
        let conv = &mut graph.nodes[f.conv];
        let w_name = conv.inputs[1].clone();
        let new_w = if f.weight_shared { fresh(format!("{}_bn_folded_weight", conv.name)) } else { w_name.clone() };
        let new_b = match conv.inputs.get(2).filter(|b| !b.is_empty()) {
            Some(b) if !f.bias_shared => b.clone(),
            Some(b) => {
                touched.push(b.clone());
                fresh(format!("{}_bn_folded_bias", conv.name))
            }
            None => fresh(format!("{}_bn_folded_bias", conv.name)),
        };
        touched.push(w_name);
        conv.inputs.truncate(2);
        conv.inputs[1] = new_w.clone();
        conv.inputs.push(new_b.clone());
        conv.outputs[0] = bn_out;
        graph.initializers.insert(new_w, f.weight);
        graph.initializers.insert(new_b, f.bias);
        removed[f.bn] = true;
    }
    remove_nodes(graph, &removed, touched);
    count
}

/// One planned fold: node indices and the folded tensors.
struct Fold {
    conv: usize,
    bn: usize,
    weight: Tensor,
    bias: Tensor,
    weight_shared: bool,
    bias_shared: bool,
}

/// Checks the pattern around BN node `bn` and computes the folded weight and bias.
fn plan_fold(graph: &Graph, bn: usize, uses: &HashMap<&str, usize>, producer: &HashMap<&str, usize>) -> Option<Fold> {
    let b = &graph.nodes[bn];
    if b.inputs.len() != 5 || b.inputs.iter().any(String::is_empty) || training(&b.attrs) {
        return None;
    }
    if b.outputs.first().is_none_or(String::is_empty) || b.outputs.iter().skip(1).any(|o| !o.is_empty()) {
        return None;
    }
    let x = b.inputs[0].as_str();
    if uses.get(x) != Some(&1) {
        return None;
    }
    let conv_idx = *producer.get(x)?;
    let conv = &graph.nodes[conv_idx];
    if !conv.is(OpKind::Conv) || conv.outputs.len() != 1 || conv.inputs.len() < 2 || conv.inputs.len() > 3 {
        return None;
    }
    let w = graph.initializers.get(&conv.inputs[1])?;
    let w_data = w.as_f32().ok()?;
    let m = *w.shape.first()?;
    if m == 0 {
        return None;
    }
    let per_channel = |name: &str| -> Option<&[f32]> {
        let t = graph.initializers.get(name)?.as_f32().ok()?;
        (t.len() == m).then_some(t)
    };
    let gamma = per_channel(&b.inputs[1])?;
    let beta = per_channel(&b.inputs[2])?;
    let mean = per_channel(&b.inputs[3])?;
    let var = per_channel(&b.inputs[4])?;
    let bias_name = conv.inputs.get(2).filter(|n| !n.is_empty());
    let bias = match bias_name {
        Some(n) => Some(per_channel(n)?),
        None => None,
    };
    let eps = f64::from(b.attrs.float("epsilon", 1e-5));
    let scale: Vec<f64> = var
        .iter()
        .zip(gamma)
        .map(|(&v, &g)| {
            let d = f64::from(v) + eps;
            (d > 0.0 && d.is_finite()).then(|| f64::from(g) / d.sqrt())
        })
        .collect::<Option<_>>()?;

    let per = w_data.len() / m;
    let weight: Vec<f32> =
        w_data.iter().enumerate().map(|(i, &v)| (f64::from(v) * scale[i / per.max(1)]) as f32).collect();
    let new_bias: Vec<f32> = (0..m)
        .map(|c| {
            let b0 = bias.map_or(0.0, |b| f64::from(b[c]));
            ((b0 - f64::from(mean[c])) * scale[c] + f64::from(beta[c])) as f32
        })
        .collect();
    Some(Fold {
        conv: conv_idx,
        bn,
        weight: Tensor { shape: w.shape.clone(), data: Data::F32(weight) },
        bias: Tensor { shape: vec![m], data: Data::F32(new_bias) },
        weight_shared: uses.get(conv.inputs[1].as_str()) != Some(&1),
        bias_shared: bias_name.is_some_and(|n| uses.get(n.as_str()) != Some(&1)),
    })
}

/// Whether a BN runs in training mode (opset 14+ `training_mode`), which folding must not touch.
fn training(attrs: &Attrs) -> bool {
    attrs.int("training_mode", 0) != 0
}

/// Fuses each `Relu`, and each `Clip` with constant float bounds, that follows a `Conv` into
/// that Conv, and returns how many were fused.
///
/// An activation is fused when its input is the single output of a `Conv` that nothing else
/// reads (nor is a graph output), and the Conv has no fused activation yet. The Conv then
/// produces the activation's output name and carries the bounds in its
/// [`Fused`](crate::model::Fused) fields `min`/`max`, which its kernels apply in their store (see
/// [`Clamp`](crate::ops::nn::sgemm::Clamp)): the results are bit-identical to the unfused
/// graph's. The activation node is removed, and so are bound initializers nothing else reads.
/// Run after [`fold_batchnorm_into_conv`], so that `Conv → BN → Clip` fuses too.
pub fn fuse_activation_into_conv(graph: &mut Graph) -> usize {
    let (uses, producer) = uses_and_producers(graph);

    // (conv, activation, lo, hi)
    let mut fusions: Vec<(usize, usize, Option<f32>, Option<f32>)> = Vec::new();
    let mut fused_conv: HashSet<usize> = HashSet::new();
    for (ai, a) in graph.nodes.iter().enumerate() {
        let bounds = match a.kind() {
            Some(OpKind::Relu) if a.inputs.len() == 1 => Some((Some(0.0), None)),
            Some(OpKind::Clip) => clip_bounds(graph, a),
            _ => None,
        };
        let Some((lo, hi)) = bounds else { continue };
        if a.outputs.len() != 1 || a.outputs[0].is_empty() {
            continue;
        }
        let x = a.inputs[0].as_str();
        if x.is_empty() || uses.get(x) != Some(&1) {
            continue;
        }
        let Some(&ci) = producer.get(x) else { continue };
        let c = &graph.nodes[ci];
        let already = c.fused.min.is_some() || c.fused.max.is_some();
        if !c.is(OpKind::Conv) || c.outputs.len() != 1 || already || !fused_conv.insert(ci) {
            continue;
        }
        fusions.push((ci, ai, lo, hi));
    }
    if fusions.is_empty() {
        return 0;
    }

    let mut touched: Vec<String> = Vec::new();
    let mut removed = vec![false; graph.nodes.len()];
    for &(ci, ai, lo, hi) in &fusions {
        let out = graph.nodes[ai].outputs[0].clone();
        touched.extend(graph.nodes[ai].inputs.iter().skip(1).filter(|i| !i.is_empty()).cloned());
        let conv = &mut graph.nodes[ci];
        conv.outputs[0] = out;
        (conv.fused.min, conv.fused.max) = (lo, hi);
        removed[ai] = true;
    }
    remove_nodes(graph, &removed, touched);
    fusions.len()
}

/// Fuses each `Min(conv_output, bound)` with a constant per-channel (`[C, 1, …]` or
/// `[1, C, 1, …]`) or scalar float bound into the `Conv` producing `conv_output`, when nothing
/// else reads that output: the Conv carries the bounds in [`Fused::channel_max`](crate::model::Fused) and clamps
/// each output channel in its store. Cross-layer equalization writes such a `Min` for each
/// ReLU6 it rescales. Returns how many were fused; the results are bit-identical.
pub fn fuse_channel_min_into_conv(graph: &mut Graph) -> usize {
    let (uses, producer) = uses_and_producers(graph);
    let mut fusions: Vec<(usize, usize, Vec<f32>)> = Vec::new();
    let mut fused_conv: HashSet<usize> = HashSet::new();
    for (mi, m) in graph.nodes.iter().enumerate() {
        if !m.is(OpKind::Min) || m.inputs.len() != 2 || m.outputs.len() != 1 {
            continue;
        }
        for (xi, bi) in [(0, 1), (1, 0)] {
            let (x, b) = (m.inputs[xi].as_str(), m.inputs[bi].as_str());
            let Some(bound) = graph.initializers.get(b) else { continue };
            let Ok(bv) = bound.as_f32() else { continue };
            if uses.get(x) != Some(&1) {
                continue;
            }
            let Some(&ci) = producer.get(x) else { continue };
            let c = &graph.nodes[ci];
            // One bound per channel ([C, 1, …] or [1, C, 1, …] against NCHW), or one for all.
            let sh = &bound.shape;
            let ones_after = |from: usize| sh[from..].iter().all(|&d| d == 1);
            let per_channel = (sh.len() >= 2 && ones_after(1)) || (sh.len() >= 3 && sh[0] == 1 && ones_after(2));
            if !(bv.len() == 1 && ones_after(0) || per_channel) {
                continue;
            }
            let values = bv.to_vec();
            if !c.is(OpKind::Conv)
                || c.outputs.len() != 1
                || c.fused.channel_max.is_some()
                || values.iter().any(|v| v.is_nan())
                || !fused_conv.insert(ci)
            {
                continue;
            }
            fusions.push((ci, mi, values));
            break;
        }
    }
    let mut touched = Vec::new();
    let mut removed = vec![false; graph.nodes.len()];
    for (ci, mi, values) in &fusions {
        let out = graph.nodes[*mi].outputs[0].clone();
        touched.extend(graph.nodes[*mi].inputs.iter().cloned());
        let conv = &mut graph.nodes[*ci];
        conv.outputs[0] = out;
        conv.fused.channel_max = Some(values.clone());
        removed[*mi] = true;
    }
    remove_nodes(graph, &removed, touched);
    fusions.len()
}

/// A float `Clip`'s `(min, max)` when they are known constants: attributes before opset 11,
/// else optional scalar float32 initializers. `None` when the bounds are not constants.
fn clip_bounds(graph: &Graph, clip: &Node) -> Option<(Option<f32>, Option<f32>)> {
    if graph.opset < 11 {
        return (clip.inputs.len() == 1).then(|| (clip.attrs.float_opt("min"), clip.attrs.float_opt("max")));
    }
    if clip.inputs.is_empty() || clip.inputs.len() > 3 {
        return None;
    }
    let bound = |i: usize| -> Option<Option<f32>> {
        match clip.inputs.get(i).filter(|n| !n.is_empty()) {
            None => Some(None),
            Some(name) => match graph.initializers.get(name)?.as_f32().ok()? {
                [v] => Some(Some(*v)),
                _ => None,
            },
        }
    };
    Some((bound(1)?, bound(2)?))
}

/// Drops the nodes marked in `removed`, then the initializers in `touched` that nothing reads
/// any more (parameters of folded or fused nodes).
fn remove_nodes(graph: &mut Graph, removed: &[bool], touched: Vec<String>) {
    let mut i = 0;
    graph.nodes.retain(|_| {
        i += 1;
        !removed[i - 1]
    });
    let referenced: HashSet<&str> = graph
        .nodes
        .iter()
        .flat_map(|n| n.inputs.iter())
        .chain(graph.outputs.iter().map(|o| &o.name))
        .map(String::as_str)
        .collect();
    let dead: Vec<String> = touched.into_iter().filter(|t| !referenced.contains(t.as_str())).collect();
    for t in dead {
        graph.initializers.remove(&t);
    }
}

/// How many readers each tensor has (a graph output counts as one), and which node produces it.
fn uses_and_producers(graph: &Graph) -> (HashMap<&str, usize>, HashMap<&str, usize>) {
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for n in &graph.nodes {
        for i in n.inputs.iter().filter(|i| !i.is_empty()) {
            *uses.entry(i).or_default() += 1;
        }
    }
    for o in &graph.outputs {
        *uses.entry(&o.name).or_default() += 1;
    }
    let producer =
        graph.nodes.iter().enumerate().flat_map(|(i, n)| n.outputs.iter().map(move |o| (o.as_str(), i))).collect();
    (uses, producer)
}

/// Replaces each `QuantizeLinear → DequantizeLinear` pair that quantizes and restores one
/// activation (same scale, zero point and axis; the codes read by nothing else) with one
/// `qplay.FakeQuant` producing the DequantizeLinear's output, and returns how many: one pass
/// over the tensor instead of two, bit for bit the pair's result. Only for plans that simulate
/// a QDQ graph in float (the report's, the recipe search's); pairs without an explicit zero
/// point, or with blocked or other forms, stay.
pub fn fake_quant_qdq_pairs(graph: &mut Graph) -> usize {
    use crate::ops::quant::fake_quant::FAKE_QUANT;
    let (uses, producer) = uses_and_producers(graph);
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (di, d) in graph.nodes.iter().enumerate() {
        if !d.is_dequantize_linear() || d.inputs.len() != 3 || d.outputs.len() != 1 || d.inputs[2].is_empty() {
            continue;
        }
        let codes = d.inputs[0].as_str();
        let Some(&qi) = producer.get(codes) else { continue };
        let q = &graph.nodes[qi];
        let plain = |n: &Node| n.attrs.0.keys().all(|k| k == "axis");
        if !q.is_quantize_linear()
            || uses.get(codes) != Some(&1)
            || q.inputs.len() != 3
            || q.inputs[1..] != d.inputs[1..]
            || q.attrs.int("axis", 1) != d.attrs.int("axis", 1)
            || !plain(q)
            || !plain(d)
        {
            continue;
        }
        pairs.push((qi, di));
    }
    let mut removed = vec![false; graph.nodes.len()];
    for &(qi, di) in &pairs {
        let x = graph.nodes[qi].inputs[0].clone();
        let d = &mut graph.nodes[di];
        d.op_type = FAKE_QUANT.into();
        d.inputs[0] = x;
        removed[qi] = true;
    }
    remove_nodes(graph, &removed, Vec::new());
    pairs.len()
}
