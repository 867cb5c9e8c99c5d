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
    equalize_with(g, false)
}

/// [`equalize`]; `eager` writes every rescaling at once (what the deferred writes must equal).
fn equalize_with(g: &mut Graph, eager: bool) -> usize {
    let pairs = find_pairs(g);
    if pairs.is_empty() {
        return 0;
    }
    // Cumulative scale per pair (per channel of Conv1's output).
    let mut total: Vec<Vec<f64>> = Vec::with_capacity(pairs.len());
    for p in &pairs {
        total.push(vec![1.0; g.initializers[&g.nodes[p.conv1].inputs[1]].shape[0]]);
    }
    // Every paired weight's ranges, measured once here and then kept current as the passes
    // rescale it (the rescaling itself deferred where the ranges follow from the old ones).
    let mut weights: HashMap<String, Lazy> = HashMap::new();
    for p in &pairs {
        for conv in [p.conv1, p.conv2] {
            let w = g.nodes[conv].inputs[1].clone();
            if let std::collections::hash_map::Entry::Vacant(e) = weights.entry(w) {
                let lazy = Lazy::new(g, &pairs, e.key(), eager);
                e.insert(lazy);
            }
        }
    }
    for _ in 0..ITERATIONS {
        let mut worst: f64 = 0.0;
        for (k, p) in pairs.iter().enumerate() {
            let s = equalize_pair(g, p, &mut weights);
            for (t, si) in total[k].iter_mut().zip(&s) {
                *t *= si;
                worst = worst.max((si.ln()).abs());
            }
        }
        if worst < 1e-4 {
            break;
        }
    }
    for (name, lazy) in weights {
        lazy.flush(g.initializers.get_mut(&name).unwrap());
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

/// The largest |value| of a weight `[O, I, k…]` per output channel (`rows`, what the pair that
/// reads it as Conv1 needs) and per input channel as a convolution of `groups` groups reads it
/// (`cols`, channel `(o / (O/groups))·I + i`, what the pair that reads it as Conv2 needs).
struct Ranges {
    rows: Vec<f32>,
    cols: Vec<f32>,
}

/// A paired weight during the sweeps: its current [`Ranges`], and the rescalings not yet
/// written into it.
///
/// Rescaling a value is `(x as f64 · f) as f32`, which keeps the order of |values| (it is odd
/// and never decreasing in `x` for `f > 0`): where one factor applies to every value behind a
/// range, the new range is the old one rescaled, exactly what measuring the rescaled values
/// gives. Such a rescaling is only queued, and the queue is written at the end in one pass,
/// each value rescaled by the same factors in the same order as one pass per rescaling would.
/// A rescaling that would leave a range the pairs read unknown (rows rescaled by column, or
/// columns by row, of a weight both of whose ranges are read) is written at once, queue first,
/// and the ranges measured. The weights and scales are the same, bit for bit.
struct Lazy {
    ranges: Ranges,
    queued: Vec<Factors>,
    /// `group` of the Conv that reads it as a pair's Conv2 ([`scale_and_measure`]).
    groups: usize,
    /// Some pair reads its rows (it is a Conv1) / its columns (a Conv2).
    reads_rows: bool,
    reads_cols: bool,
    /// Each output channel's values all read one input channel (`I = 1`, depthwise), and each
    /// column holds one output channel's values (`O = groups`): a factor per row is one per
    /// column, and the other way round.
    one_col_per_row: bool,
    one_row_per_col: bool,
    /// Write every rescaling at once (the tests' reference).
    eager: bool,
}

/// One queued rescaling (owned [`Scale`]).
enum Factors {
    Rows(Vec<f64>),
    Cols(Vec<f64>),
}

impl Factors {
    fn scale(&self) -> Scale<'_> {
        match self {
            Factors::Rows(f) => Scale::Rows(f),
            Factors::Cols(f) => Scale::Cols(f),
        }
    }
}

impl Lazy {
    /// Weight `w` of `g`, measured.
    fn new(g: &mut Graph, pairs: &[Pair], w: &str, eager: bool) -> Lazy {
        let groups = groups_as_conv2(g, pairs, w);
        let reads = |conv1: bool| pairs.iter().any(|p| g.nodes[if conv1 { p.conv1 } else { p.conv2 }].inputs[1] == w);
        let (reads_rows, reads_cols) = (reads(true), reads(false));
        let t = g.initializers.get_mut(w).unwrap();
        let (o_n, i_n) = (t.shape[0], t.shape[1]);
        let ranges = scale_and_measure(t, groups, &[]);
        Lazy {
            ranges,
            queued: Vec::new(),
            groups,
            reads_rows,
            reads_cols,
            one_col_per_row: i_n == 1,
            one_row_per_col: o_n == groups,
            eager,
        }
    }

    /// Rescales the weight `t` by `f`: queued when its ranges follow, else written with the queue.
    fn rescale(&mut self, t: &mut Tensor, f: Factors) {
        let rescaled = |r: &mut [f32], f: &dyn Fn(usize) -> f64| {
            for (k, v) in r.iter_mut().enumerate() {
                *v = (*v as f64 * f(k)) as f32;
            }
        };
        let per_group = (t.shape[0] / self.groups).max(1);
        let i_n = t.shape[1];
        match &f {
            Factors::Rows(fr) if !self.eager && (!self.reads_cols || self.one_row_per_col) => {
                rescaled(&mut self.ranges.rows, &|o| fr[o]);
                if self.one_row_per_col {
                    // Column `o·I + i` holds values of row `o` alone.
                    rescaled(&mut self.ranges.cols, &|c| fr[c / i_n.max(1)]);
                }
            }
            Factors::Cols(fc) if !self.eager && (!self.reads_rows || self.one_col_per_row) => {
                rescaled(&mut self.ranges.cols, &|c| fc[c]);
                if self.one_col_per_row {
                    // Row `o` holds values of column `o / per_group` alone.
                    rescaled(&mut self.ranges.rows, &|o| fc[o / per_group]);
                }
            }
            _ => {
                self.queued.push(f);
                self.ranges = self.flush_into(t);
                return;
            }
        }
        self.queued.push(f);
    }

    /// Writes the queued rescalings into `t` and returns its ranges.
    fn flush_into(&mut self, t: &mut Tensor) -> Ranges {
        let scales: Vec<Scale<'_>> = self.queued.iter().map(Factors::scale).collect();
        let r = scale_and_measure(t, self.groups, &scales);
        self.queued.clear();
        r
    }

    /// Writes what is still queued into `t`.
    fn flush(mut self, t: &mut Tensor) {
        if !self.queued.is_empty() {
            self.flush_into(t);
        }
    }
}

/// The `group` of the Conv that reads weight `w` as a pair's Conv2 (1 when none does).
fn groups_as_conv2(g: &Graph, pairs: &[Pair], w: &str) -> usize {
    pairs
        .iter()
        .map(|p| &g.nodes[p.conv2])
        .find(|n| n.inputs[1] == w)
        .map_or(1, |n| n.attrs.int("group", 1).max(1) as usize)
}

/// How [`scale_and_measure`] rescales a weight `[O, I, k…]`: each output channel `o` by `f[o]`
/// (a pair's Conv1), or the run of output channel `o`, input channel `i` by
/// `f[(o / (O/groups))·I + i]`, the channel it reads (a pair's Conv2).
#[derive(Clone, Copy)]
enum Scale<'a> {
    Rows(&'a [f64]),
    Cols(&'a [f64]),
}

/// Rescales `t` (`None`: leaves it) by `(x as f64 · f) as f32` per value, and returns the
/// [`Ranges`] of the values it leaves, read as it writes them (`cols` as a convolution of
/// `groups` groups reads it). Runs of output channels are one task each; their column maxima
/// merge by max, exact in any order.
fn scale_and_measure(t: &mut Tensor, groups: usize, scales: &[Scale<'_>]) -> Ranges {
    let (o_n, i_n) = (t.shape[0], t.shape[1]);
    let k = (t.len() / (o_n * i_n).max(1)).max(1);
    let groups = groups.max(1);
    let per_group = (o_n / groups).max(1);
    let crate::model::Data::F32(v) = &mut t.data else { return Ranges { rows: vec![0.0; o_n], cols: Vec::new() } };
    let run = i_n * k;
    let parts = parallel::split(o_n, parallel::tasks(v.len(), o_n), 1);
    let mut pieces: Vec<_> = parts
        .iter()
        .cloned()
        .zip(parallel::split_parts(v, run, &parts))
        .map(|(os, piece)| (os, piece, Vec::new(), vec![0f32; groups * i_n]))
        .collect();
    parallel::for_each_mut(&mut pieces, |_, (os, piece, rows, cols)| {
        for (o, row) in os.clone().zip(piece.chunks_mut(run)) {
            let base = (o / per_group) * i_n;
            rows.push(scale_row(o, base, row, &mut cols[base..base + i_n], k, scales));
        }
    });
    let mut rows = Vec::with_capacity(o_n);
    let mut cols = vec![0f32; groups * i_n];
    for (_, _, r, c) in pieces {
        rows.extend(r);
        for (a, b) in cols.iter_mut().zip(c) {
            *a = a.max(b);
        }
    }
    Ranges { rows, cols }
}

/// One output channel `o` of [`scale_and_measure`]: rescales `row` and returns its largest
/// |value|, raising `c` (its input channels' column maxima) on the way; AVX2 where present (the
/// same IEEE steps on wider vectors).
fn scale_row(o: usize, base: usize, row: &mut [f32], c: &mut [f32], k: usize, scales: &[Scale<'_>]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if crate::ops::quant::simd::use_avx2() {
        #[target_feature(enable = "avx2")]
        unsafe fn wide(o: usize, base: usize, row: &mut [f32], c: &mut [f32], k: usize, scales: &[Scale<'_>]) -> f32 {
            scale_row_any(o, base, row, c, k, scales)
        }
        // SAFETY: the CPU has AVX2.
        return unsafe { wide(o, base, row, c, k, scales) };
    }
    scale_row_any(o, base, row, c, k, scales)
}

#[inline(always)]
fn scale_row_any(o: usize, base: usize, row: &mut [f32], c: &mut [f32], k: usize, scales: &[Scale<'_>]) -> f32 {
    for scale in scales {
        match *scale {
            Scale::Rows(f) => {
                let fr = f[o];
                row.iter_mut().for_each(|x| *x = (*x as f64 * fr) as f32);
            }
            Scale::Cols(f) if k == 1 => {
                row.iter_mut().zip(&f[base..base + c.len()]).for_each(|(x, &fr)| *x = (*x as f64 * fr) as f32);
            }
            Scale::Cols(f) => {
                for (r, &fr) in row.chunks_mut(k).zip(&f[base..base + c.len()]) {
                    r.iter_mut().for_each(|x| *x = (*x as f64 * fr) as f32);
                }
            }
        }
    }
    let mut rmax = 0f32;
    if k == 1 {
        for (cm, x) in c.iter_mut().zip(row.iter()) {
            let m = x.abs();
            *cm = cm.max(m);
            rmax = rmax.max(m);
        }
    } else {
        for (cm, r) in c.iter_mut().zip(row.chunks(k)) {
            let m = r.iter().fold(0f32, |m, x| m.max(x.abs()));
            *cm = cm.max(m);
            rmax = rmax.max(m);
        }
    }
    rmax
}

/// One equalization step of a pair; returns the scales `s_i` applied. The ranges come from
/// `weights`, which rescales the two weights.
fn equalize_pair(g: &mut Graph, p: &Pair, weights: &mut HashMap<String, Lazy>) -> Vec<f64> {
    let (n1, n2) = (&g.nodes[p.conv1], &g.nodes[p.conv2]);
    let (w1n, w2n) = (n1.inputs[1].clone(), n2.inputs[1].clone());
    let b1n = n1.inputs.get(2).filter(|s| !s.is_empty()).cloned();
    let (r1, r2) = (&weights[&w1n].ranges.rows, &weights[&w2n].ranges.cols);
    let s: Vec<f64> = r1
        .iter()
        .zip(r2)
        .map(|(&r1, &r2)| {
            let (r1, r2) = (r1 as f64, r2 as f64);
            if r1 > 0.0 && r2 > 0.0 && r1.is_finite() && r2.is_finite() {
                (r1 * r2).sqrt() / r2
            } else {
                1.0
            }
        })
        .collect();
    let inv: Vec<f64> = s.iter().map(|si| 1.0 / si).collect();
    if let Some(b) = b1n {
        if let crate::model::Data::F32(v) = &mut g.initializers.get_mut(&b).unwrap().data {
            for (x, f) in v.iter_mut().zip(&inv) {
                *x = (*x as f64 * f) as f32;
            }
        }
    }
    weights.get_mut(&w1n).unwrap().rescale(g.initializers.get_mut(&w1n).unwrap(), Factors::Rows(inv));
    // Input channel j of output channel n reads channel (n / out_per_group)·cin_g + j.
    weights.get_mut(&w2n).unwrap().rescale(g.initializers.get_mut(&w2n).unwrap(), Factors::Cols(s.clone()));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The deferred rescaling writes the same weights and biases, bit for bit, as writing each
    /// rescaling at once, on real exports: MobileNetV2 (depthwise, expand and project 1×1 convs,
    /// ReLU6), YOLOv6n, SCRFD and YuNet (dense and depthwise chains), BlazeFace, an SSDLite.
    #[test]
    fn deferred_rescaling_writes_what_eager_rescaling_writes() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        for model in [
            "www/models/person_ssdlite.onnx",
            "www/models/blazeface_short.onnx",
            "tests/fixtures/yolov67/yolov6n.onnx",
            "tests/fixtures/scrfd/scrfd.onnx",
            "tests/fixtures/yunet/yunet.onnx",
            "tests/fixtures/torchvision_ssd/ssdlite_tiny.onnx",
        ] {
            let mut g = crate::model::load_onnx(&std::fs::read(format!("{root}/{model}")).unwrap()).unwrap();
            crate::model::passes::fold_batchnorm_into_conv(&mut g);
            let (mut lazy, mut eager) = (g.clone(), g.clone());
            let pairs = equalize_with(&mut lazy, false);
            assert_eq!(pairs, equalize_with(&mut eager, true), "{model}");
            let mut changed = 0;
            for (name, t) in &eager.initializers {
                let bits = |t: &Tensor| t.as_f32().map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()).ok();
                assert_eq!(bits(t), bits(&lazy.initializers[name]), "{model}: {name}");
                changed += usize::from(bits(t) != g.initializers.get(name).and_then(bits));
            }
            assert!(pairs > 0 && changed >= pairs, "{model}: {pairs} pairs, {changed} tensors rescaled");
        }
    }
}
