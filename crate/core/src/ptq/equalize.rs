//! Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through Weight
//! Equalization and Bias Correction").
//!
//! For two consecutive convolutions `Conv1 → act → Conv2`, where `act` is nothing, `Relu` or a
//! `Clip` with lower bound 0, output channel `i` of Conv1 (its weights and bias) is divided by
//! `s_i` and input channel `i` of Conv2 multiplied by `s_i`, with
//! `s_i = √(r1_i · r2_i) / r2_i` (r1_i: max |w| of Conv1's output channel i; r2_i: max |w| of
//! Conv2's weights that read channel i). Afterwards both channels have the same range
//! `√(r1_i · r2_i)`, which is what per-tensor weight quantization needs: a depthwise conv whose
//! channels span several orders of magnitude loses its small channels to one shared scale.
//! Chains (expand → depthwise → project) are swept a few times until the scales settle.
//!
//! Exactness: `Relu` is positive-homogeneous (`relu(x/s) = relu(x)/s` for `s > 0`), so the
//! rescaled graph computes the same function. `Clip(0, M)` (ReLU6) is not: its upper bound
//! would have to become `M/s_i` per channel. Rather than skip these pairs (which would leave
//! every depthwise conv of a MobileNetV2 alone) the rewrite makes the bound per channel:
//! `Clip(0, M)` becomes `Relu → Min(·, M/s)` with `M/s` a constant of shape `[C, 1, …]`. The
//! FP32 function is unchanged (up to float rounding of the rescaled weights); the extra `Min`
//! runs in FP32 before the next Conv's activation Q/DQ. Clips with a negative lower bound and
//! any other op in between are left alone.
//!
//! A pair is equalized only when Conv1's output (and the activation's) has that single reader,
//! is not a graph output, and both weights (and Conv1's bias) are float32 initializers read
//! by no other node. Group convolutions, depthwise included, work in either position: input
//! channel `i` of Conv2 is channel `i mod (C/g)` of group `i / (C/g)`.

use crate::model::OpKind;
use crate::model::{Attrs, Graph, Node, Tensor};
use crate::parallel;
use std::collections::{HashMap, HashSet};

/// Sweeps over the whole chain of pairs.
const ITERATIONS: usize = 20;

/// One equalizable pair.
struct Pair {
    conv1: usize,
    conv2: usize,
    /// Index of the activation node between them, and its clip upper bound (if any).
    act: Option<(usize, Option<f32>)>,
}

/// Equalizes every matching Conv → (Relu | Clip(0, M))? → Conv pair of `g` in place and returns
/// how many pairs were equalized. Run after BatchNorm folding.
pub fn equalize(g: &mut Graph) -> usize {
    let pairs = find_pairs(g);
    if pairs.is_empty() {
        return 0;
    }
    // Cumulative scale per pair (per channel of Conv1's output).
    let mut total: Vec<Vec<f64>> = Vec::with_capacity(pairs.len());
    for p in &pairs {
        total.push(vec![1.0; g.initializers[&g.nodes[p.conv1].inputs[1]].shape[0]]);
    }
    for _ in 0..ITERATIONS {
        let mut worst: f64 = 0.0;
        for (k, p) in pairs.iter().enumerate() {
            let s = equalize_pair(g, p);
            for (t, si) in total[k].iter_mut().zip(&s) {
                *t *= si;
                worst = worst.max((si.ln()).abs());
            }
        }
        if worst < 1e-4 {
            break;
        }
    }
    // Per-channel clip bounds where a Clip(0, M) sat between the pair.
    let mut new_nodes: Vec<(usize, Node)> = Vec::new();
    for (k, p) in pairs.iter().enumerate() {
        let Some((ai, Some(hi))) = p.act else { continue };
        if total[k].iter().all(|&t| t == 1.0) {
            continue;
        }
        let rank = g.initializers[&g.nodes[p.conv1].inputs[1]].shape.len();
        let bound: Vec<f32> = total[k].iter().map(|&t| (hi as f64 / t) as f32).collect();
        let act = &g.nodes[ai];
        let (x, y) = (act.inputs[0].clone(), act.outputs[0].clone());
        let relu_out = fresh(g, &format!("{y}_cle_relu"));
        let bound_name = fresh(g, &format!("{y}_cle_max"));
        let mut shape = vec![bound.len()];
        shape.extend(std::iter::repeat_n(1, rank.saturating_sub(2)));
        let name = act.name.clone();
        g.initializers.insert(bound_name.clone(), Tensor { shape, data: crate::model::Data::F32(bound) });
        g.nodes[ai] = Node {
            name: format!("{name}_cle_relu"),
            op_type: OpKind::Relu.into(),
            inputs: vec![x],
            outputs: vec![relu_out.clone()],
            attrs: Attrs(HashMap::new()),
            fused: Default::default(),
        };
        new_nodes.push((
            ai,
            Node {
                name: format!("{name}_cle_min"),
                op_type: OpKind::Min.into(),
                inputs: vec![relu_out, bound_name],
                outputs: vec![y],
                attrs: Attrs(HashMap::new()),
                fused: Default::default(),
            },
        ));
    }
    // Insert each Min right after its Relu (from the back, so indices stay valid).
    new_nodes.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
    for (i, n) in new_nodes {
        g.nodes.insert(i + 1, n);
    }
    pairs.len()
}

/// A name not yet used by any tensor of `g`.
fn fresh(g: &Graph, base: &str) -> String {
    let taken = |c: &str| {
        g.initializers.contains_key(c) || g.nodes.iter().any(|n| n.outputs.iter().chain(&n.inputs).any(|o| o == c))
    };
    (0..).map(|k| if k == 0 { base.to_string() } else { format!("{base}_{k}") }).find(|c| !taken(c)).unwrap()
}

/// Finds the pairs, each Conv at most once as Conv1 and once as Conv2.
fn find_pairs(g: &Graph) -> Vec<Pair> {
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for n in &g.nodes {
        for i in n.inputs.iter().filter(|i| !i.is_empty()) {
            *uses.entry(i).or_default() += 1;
        }
    }
    for o in &g.outputs {
        *uses.entry(&o.name).or_default() += 100;
    }
    let consumer: HashMap<&str, usize> = g
        .nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.inputs.iter().filter(|s| !s.is_empty()).map(move |s| (s.as_str(), i)))
        .collect();
    let single = |t: &str| uses.get(t) == Some(&1);
    let conv_ok = |n: &Node| {
        n.is(OpKind::Conv)
            && n.outputs.len() == 1
            && n.inputs.len() >= 2
            && g.initializers.get(&n.inputs[1]).is_some_and(|t| t.shape.len() >= 3)
            && n.inputs
                .iter()
                .skip(1)
                .filter(|s| !s.is_empty())
                .all(|s| single(s) && g.initializers.get(s).is_some_and(|t| t.as_f32().is_ok() && !t.is_empty()))
    };
    let mut pairs = Vec::new();
    let mut used_as_2: HashSet<usize> = HashSet::new();
    for (i1, c1) in g.nodes.iter().enumerate() {
        if !conv_ok(c1) || !single(&c1.outputs[0]) {
            continue;
        }
        let Some(&next) = consumer.get(c1.outputs[0].as_str()) else { continue };
        let (act, conv2_in) = match g.nodes[next].kind() {
            Some(OpKind::Conv) => (None, c1.outputs[0].as_str()),
            Some(OpKind::Relu) => (Some((next, None)), g.nodes[next].outputs[0].as_str()),
            Some(OpKind::Clip) => match clip_bounds(g, &g.nodes[next]) {
                Some((Some(lo), hi)) if lo == 0.0 && hi.is_none_or(|h| h > 0.0) => {
                    (Some((next, hi)), g.nodes[next].outputs[0].as_str())
                }
                _ => continue,
            },
            _ => continue,
        };
        if act.is_some() && (g.nodes[next].outputs.len() != 1 || !single(conv2_in)) {
            continue;
        }
        let Some(&i2) = consumer.get(conv2_in) else { continue };
        let c2 = &g.nodes[i2];
        if !conv_ok(c2) || c2.inputs[0] != conv2_in || !used_as_2.insert(i2) {
            continue;
        }
        let (w1, w2) = (&g.initializers[&c1.inputs[1]], &g.initializers[&c2.inputs[1]]);
        let groups2 = c2.attrs.int("group", 1).max(1) as usize;
        if w1.shape.len() != w2.shape.len() || w1.shape[0] != w2.shape[1] * groups2 || w2.shape[0] % groups2 != 0 {
            continue;
        }
        if let Some(b) = c1.inputs.get(2).filter(|s| !s.is_empty()) {
            if g.initializers[b].len() != w1.shape[0] {
                continue;
            }
        }
        pairs.push(Pair { conv1: i1, conv2: i2, act });
    }
    pairs
}

/// A `Clip`'s constant bounds (attributes before opset 11, scalar initializers after).
fn clip_bounds(g: &Graph, clip: &Node) -> Option<(Option<f32>, Option<f32>)> {
    if g.opset < 11 {
        return (clip.inputs.len() == 1).then(|| (clip.attrs.float_opt("min"), clip.attrs.float_opt("max")));
    }
    let bound = |i: usize| -> Option<Option<f32>> {
        match clip.inputs.get(i).filter(|n| !n.is_empty()) {
            None => Some(None),
            Some(name) => match g.initializers.get(name)?.as_f32().ok()? {
                [v] => Some(Some(*v)),
                _ => None,
            },
        }
    };
    Some((bound(1)?, bound(2)?))
}

/// One equalization step of a pair; returns the scales `s_i` applied.
fn equalize_pair(g: &mut Graph, p: &Pair) -> Vec<f64> {
    let (n1, n2) = (&g.nodes[p.conv1], &g.nodes[p.conv2]);
    let (w1n, w2n) = (n1.inputs[1].clone(), n2.inputs[1].clone());
    let b1n = n1.inputs.get(2).filter(|s| !s.is_empty()).cloned();
    let groups2 = n2.attrs.int("group", 1).max(1) as usize;
    let w1 = &g.initializers[&w1n];
    let w2 = &g.initializers[&w2n];
    let c = w1.shape[0];
    let per1 = w1.len() / c;
    let (n_out2, cin_g) = (w2.shape[0], w2.shape[1]);
    let k2 = w2.len() / (n_out2 * cin_g);
    let out_per_group = n_out2 / groups2;
    let d1 = w1.as_f32().unwrap();
    let d2 = w2.as_f32().unwrap();
    let amax = |s: &[f32]| s.iter().fold(0f32, |m, v| m.max(v.abs()));
    // r2 of every channel in one pass over W2 in memory order (channel i's weights are a column
    // of W2: gathered one by one they would touch a cache line each), runs of output channels
    // one task each, merged by max (exact in any order).
    let rows = parallel::split(n_out2, parallel::tasks(w2.len(), n_out2), 1);
    let r2: Vec<f32> = parallel::map(rows.len(), |t| {
        let mut r = vec![0f32; c];
        for n in rows[t].clone() {
            let base = (n / out_per_group) * cin_g;
            for j in 0..cin_g {
                let b = (n * cin_g + j) * k2;
                r[base + j] = r[base + j].max(amax(&d2[b..b + k2]));
            }
        }
        r
    })
    .into_iter()
    .reduce(|a, b| a.iter().zip(&b).map(|(x, y)| x.max(*y)).collect())
    .unwrap_or_else(|| vec![0.0; c]);
    let factor = |i: usize| {
        let (r1, r2) = (amax(&d1[i * per1..(i + 1) * per1]) as f64, r2[i] as f64);
        if r1 > 0.0 && r2 > 0.0 && r1.is_finite() && r2.is_finite() {
            (r1 * r2).sqrt() / r2
        } else {
            1.0
        }
    };
    // Runs of channels, one task each.
    let parts = parallel::split(c, parallel::tasks(w1.len(), c), 1);
    let s: Vec<f64> = parallel::map(parts.len(), |p| parts[p].clone().map(factor).collect::<Vec<_>>()).concat();
    // Each factor applies to a contiguous run of values: multiply run by run (no per-element
    // index arithmetic; the same `(x as f64 · f) as f32` per value), runs of runs one task each.
    let scale_runs = |t: &mut Tensor, run: usize, f: &(dyn Fn(usize) -> f64 + Sync)| {
        if let crate::model::Data::F32(v) = &mut t.data {
            let run = run.max(1);
            let runs = v.len().div_ceil(run);
            let parts = parallel::split(runs, parallel::tasks(v.len(), runs), 1);
            let mut pieces: Vec<_> = parts.iter().cloned().zip(parallel::split_parts(v, run, &parts)).collect();
            parallel::for_each_mut(&mut pieces, |_, (rs, piece)| {
                for (r, chunk) in rs.clone().zip(piece.chunks_mut(run)) {
                    let fr = f(r);
                    for x in chunk {
                        *x = (*x as f64 * fr) as f32;
                    }
                }
            });
        }
    };
    scale_runs(g.initializers.get_mut(&w1n).unwrap(), per1, &|i| 1.0 / s[i]);
    if let Some(b) = b1n {
        scale_runs(g.initializers.get_mut(&b).unwrap(), 1, &|i| 1.0 / s[i]);
    }
    // W2 runs of k2 values: run r is output channel n = r / cin_g, input channel j = r % cin_g.
    scale_runs(g.initializers.get_mut(&w2n).unwrap(), k2, &|r| {
        let (n, j) = (r / cin_g, r % cin_g);
        s[(n / out_per_group) * cin_g + j]
    });
    s
}
