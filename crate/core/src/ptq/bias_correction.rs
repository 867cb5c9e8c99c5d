//! Empirical bias correction (Nagel et al. 2019, section 4.2, the empirical variant).
//!
//! Quantizing a layer's weights `W → W_q` shifts the mean of its output: per output channel,
//! `E[W_q x] − E[W x] = E[(W_q − W) x]`, which is not zero when the rounding errors of a
//! channel's weights line up with the mean of its inputs (ReLU activations have positive
//! means). The shift is measured on the calibration data: the FP32 model runs on each input, and
//! the activation each quantized Conv/Gemm reads goes through the same op with the weight
//! `W_q − W` (the same fake quantization the QDQ rewrite applies). The mean over the batch and
//! every spatial position of each output channel is subtracted from the bias before the bias is
//! quantized, so the quantized layer's output has the FP32 layer's mean again.
//!
//! A Conv without bias gets one; a Gemm is corrected only when it has a per-channel bias `C`
//! and `beta = 1`; MatMul has no bias and is left alone.

use crate::model::OpKind;
use crate::model::{Data, Graph, ModelError, Node, Plan, Tensor, ValueInfo};
use crate::ops::nn::spatial::WindowAttrs;
use crate::ops::{OpError, Registry};
use crate::quant::QType;
use crate::Error;
use std::collections::HashMap;

/// Whether bias correction can correct node `n` of `g`: a Conv, or a Gemm with a per-channel
/// bias `C` and `beta = 1`.
pub(super) fn correctable(g: &Graph, n: &Node) -> bool {
    match n.kind() {
        Some(OpKind::Conv) => true,
        Some(OpKind::Gemm) => {
            n.attrs.float("beta", 1.0) == 1.0
                && n.inputs.get(2).and_then(|b| g.initializers.get(b)).is_some_and(|b| b.shape.len() == 1)
        }
        _ => false,
    }
}

/// One layer being measured.
struct Layer {
    /// Node index in the graph.
    node: usize,
    /// `W_q − W` as an initializer of the one-node graph.
    diff: Tensor,
    /// A Conv's window attributes (the closed-form path); `None` for Gemm.
    window: Option<WindowAttrs>,
    /// A Conv's `group`.
    group: usize,
    /// The planned one-node graph (Gemm, or a Conv of rank other than 1-D/2-D), once the input
    /// shape is known.
    plan: Option<Plan>,
}

/// What one calibration input adds to one layer's sums: the per-channel sums in the order they
/// are added (one per batch item where the layer's output is summed item by item), and how many
/// values went into them. Added to several [`BiasCorrection`]s, it gives each exactly what its
/// own measurement would.
type Shift = (Vec<Vec<f64>>, usize);

impl Layer {
    /// The output shift of one value `x` of the tensor the layer reads.
    fn shift(&mut self, node: &Node, x: &Tensor, registry: &Registry) -> Result<Option<Shift>, Error> {
        if let Some(win) = &self.window {
            if x.shape.len() == 3 || x.shape.len() == 4 {
                let (mut sum, mut count) = (Vec::new(), 0);
                conv_shift_sums(node, x, &self.diff, win, self.group, &mut sum, &mut count)?;
                return Ok(Some((vec![sum], count)));
            }
        }
        if self.plan.is_none() {
            self.plan = Some(one_node_plan(node, &self.diff, &x.shape, registry)?);
        }
        let Some(plan) = &self.plan else { return Ok(None) };
        let out = plan.run(&[("x".to_string(), x.clone())])?;
        let Some(out) = out.first() else { return Ok(None) };
        let sh = out.shape.clone();
        let y = out.as_f32()?;
        if sh.is_empty() {
            return Ok(None);
        }
        let (n, c) = (sh[0], sh.get(1).copied().unwrap_or(1));
        let inner = sh.iter().skip(2).product::<usize>().max(1);
        let items = (0..n)
            .map(|b| (0..c).map(|ch| y[(b * c + ch) * inner..][..inner].iter().map(|&v| v as f64).sum()).collect())
            .collect();
        Ok(Some((items, n * inner)))
    }
}

/// The fake-quantized weights the QDQ rewrite will use for `n`'s weight `w` (int8, symmetric,
/// per output channel or per tensor).
pub(super) fn fake_quant_weight(
    n: &Node,
    w: &Tensor,
    per_channel: bool,
    wt: QType,
    codes: Option<&Vec<i32>>,
) -> Result<Vec<f32>, Error> {
    Ok(super::qdq::weight_codes(n, w, per_channel, wt, codes)?.fake)
}

/// Measures the output shifts: [`ShiftMeter::measure_run`] sees the tensors of an FP32 run (the
/// calibration run, so no extra pass over the data) and returns what they shift, which any
/// number of [`BiasCorrection`]s (one per set of calibration inputs) then add.
///
/// For a Conv the shift needs no convolution: summed over every output position, the output of
/// `conv(x, W_q − W)` for channel `o` is `Σ_{c, taps} (W_q − W)[o, c, tap] · S[c, tap]`, where
/// `S[c, tap]` sums the input values that tap reads over all output positions (taps in the padding
/// read 0). `S` takes a few passes over the input instead of a convolution's multiply-adds.
pub(super) struct ShiftMeter {
    layers: Vec<Layer>,
    /// Which layers read each activation.
    readers: HashMap<String, Vec<usize>>,
}

/// The output shifts measured so far, per layer; [`BiasCorrection::apply`] rewrites the biases.
pub(super) struct BiasCorrection {
    /// Per layer: node index, sum of the output shift per channel, and how many values.
    layers: Vec<(usize, Vec<f64>, usize)>,
}

/// What one run shifts, per layer of the [`ShiftMeter`] (`None` where the layer's input was not
/// in the run).
pub(super) struct RunShifts(Vec<Option<Shift>>);

impl ShiftMeter {
    /// Prepares the correction of the quantizable nodes `targets` of `g` (Conv, and Gemm with a
    /// per-channel bias and `beta = 1`; others are skipped, and so are those whose shift
    /// `known` already holds).
    pub(super) fn new(
        g: &Graph,
        targets: &[usize],
        per_channel: bool,
        opts: &super::PtqOptions,
        codes: &super::gptq::WeightCodes,
        known: &super::gptq::BiasShifts,
    ) -> Result<ShiftMeter, Error> {
        let mut layers: Vec<Layer> = Vec::new();
        for &t in targets {
            let n = &g.nodes[t];
            let ok = correctable(g, n) && !known.contains_key(&n.name);
            let Some(w) = n.inputs.get(1).and_then(|w| g.initializers.get(w)) else { continue };
            if !ok || w.as_f32().is_err() {
                continue;
            }
            let wq = fake_quant_weight(n, w, per_channel, opts.weight_of(&n.name), codes.get(&n.name))?;
            let diff: Vec<f32> = wq.iter().zip(w.as_f32()?).map(|(a, b)| a - b).collect();
            let window = if n.is(OpKind::Conv) {
                Some(WindowAttrs::from_node(n, false).map_err(|e| ModelError::at(n, e))?)
            } else {
                None
            };
            layers.push(Layer {
                node: t,
                diff: Tensor { shape: w.shape.clone(), data: Data::F32(diff) },
                window,
                group: n.attrs.int("group", 1).max(1) as usize,
                plan: None,
            });
        }
        let mut readers: HashMap<String, Vec<usize>> = HashMap::new();
        for (k, l) in layers.iter().enumerate() {
            readers.entry(g.nodes[l.node].inputs[0].clone()).or_default().push(k);
        }
        Ok(ShiftMeter { layers, readers })
    }

    /// The tensors the layers read (graph inputs or activations), each once.
    pub(super) fn reads(&self) -> impl Iterator<Item = &str> {
        self.readers.keys().map(String::as_str)
    }

    /// An empty correction for these layers.
    pub(super) fn correction(&self) -> BiasCorrection {
        BiasCorrection { layers: self.layers.iter().map(|l| (l.node, Vec::new(), 0)).collect() }
    }

    /// The output shifts of one calibration input: `seen` holds that run's tensors by name, and
    /// each layer, a task of its own, takes the one it reads.
    pub(super) fn measure_run(
        &mut self,
        g: &Graph,
        seen: &HashMap<String, Tensor>,
        registry: &Registry,
    ) -> Result<RunShifts, Error> {
        let mut out: Vec<(&mut Layer, Option<Shift>)> = self.layers.iter_mut().map(|l| (l, None)).collect();
        crate::parallel::try_for_each_mut(&mut out, |_, (l, shift)| {
            let node = &g.nodes[l.node];
            if let Some(x) = node.inputs.first().and_then(|x| seen.get(x)) {
                *shift = l.shift(node, x, registry)?;
            }
            Ok::<(), Error>(())
        })?;
        Ok(RunShifts(out.into_iter().map(|(_, s)| s).collect()))
    }
}

impl BiasCorrection {
    /// Adds one run's shifts (measured by the [`ShiftMeter`] this correction came from); called
    /// for the inputs in calibration order.
    pub(super) fn add(&mut self, run: &RunShifts) {
        for ((_, sum, count), shift) in self.layers.iter_mut().zip(&run.0) {
            let Some((items, n)) = shift else { continue };
            for item in items {
                if sum.is_empty() {
                    *sum = vec![0.0; item.len()];
                }
                for (s, v) in sum.iter_mut().zip(item) {
                    *s += v;
                }
            }
            *count += n;
        }
    }

    /// Subtracts the measured shift from the bias of each layer that is still in `targets`,
    /// and for the layers in `known` (which the meter left out) the shift measured there:
    /// GPTQ's, on the quantized model's own inputs. Returns how many layers were corrected.
    pub(super) fn apply(self, g: &mut Graph, targets: &[usize], known: &super::gptq::BiasShifts) -> usize {
        let mut shifts: Vec<(usize, Vec<f32>)> = Vec::new();
        for (node, sum, count) in self.layers {
            if count > 0 && targets.contains(&node) {
                shifts.push((node, sum.iter().map(|s| (s / count as f64) as f32).collect()));
            }
        }
        shifts.extend(targets.iter().filter_map(|&t| known.get(&g.nodes[t].name).map(|s| (t, s.clone()))));
        let mut corrected = 0;
        for (node, shift) in &shifts {
            let Some(new) = corrected_bias(g, &g.nodes[*node], shift) else { continue };
            let n = &mut g.nodes[*node];
            // A fresh name, so a bias another node shares is not changed under it.
            let mut name = format!("{}_bias_corrected", n.name);
            while g.initializers.contains_key(&name) {
                name.push('_');
            }
            n.inputs.resize(2, String::new());
            n.inputs.push(name.clone());
            g.initializers.insert(name, Tensor { shape: vec![new.len()], data: Data::F32(new) });
            corrected += 1;
        }
        // Drop biases nothing reads any more.
        let used: std::collections::HashSet<String> = g.nodes.iter().flat_map(|n| n.inputs.iter().cloned()).collect();
        g.initializers.retain(|k, _| used.contains(k) || g.outputs.iter().any(|o| &o.name == k));
        corrected
    }
}

/// The bias of `n` (a node of `g`) less `shift`: a Conv without one gets `−shift`. `None` where
/// the bias is not a float initializer of one value per output (computed, or broadcast from one
/// value), which bias correction leaves as it is.
pub(super) fn corrected_bias(g: &Graph, n: &Node, shift: &[f32]) -> Option<Vec<f32>> {
    let old = match n.inputs.get(2).filter(|b| !b.is_empty()) {
        None => vec![0.0; shift.len()],
        Some(b) => g.initializers.get(b)?.as_f32().ok()?.to_vec(),
    };
    (old.len() == shift.len()).then(|| old.iter().zip(shift).map(|(b, s)| b - s).collect())
}

/// Adds, per output channel, the sum over every output position of `conv(x, diff)` (no bias) to
/// `sum`, and the number of positions to `count`; 1-D and 2-D convolutions (`x` of rank 3 or 4).
fn conv_shift_sums(
    node: &Node,
    x: &Tensor,
    diff: &Tensor,
    attrs: &WindowAttrs,
    group: usize,
    sum: &mut Vec<f64>,
    count: &mut usize,
) -> Result<(), Error> {
    let bad = |e: OpError| -> Error { ModelError::at(node, e).into() };
    let xs = &x.shape;
    let ws = &diff.shape;
    if ws.len() != xs.len() {
        return Err(bad(OpError::mismatch(format!("weight {ws:?} and input {xs:?} have different ranks"))));
    }
    let win = attrs.resolve(&xs[2..], &ws[2..]).map_err(bad)?.lifted_to_2d();
    let (n, c) = (xs[0], xs[1]);
    let (oc, icg) = (ws[0], ws[1]);
    if group == 0 || c != icg * group || oc % group != 0 {
        return Err(bad(OpError::mismatch(format!(
            "input channels {c} do not match the weight {ws:?} with group {group}"
        ))));
    }
    let (h, w) = (win.input[0], win.input[1]);
    let (kh, kw) = (win.kernel[0], win.kernel[1]);
    // mask[d][tap][i]: 1 when input coordinate i of spatial dim d is read by `tap` at some output.
    let mask = |d: usize, taps: usize, len: usize| -> Vec<Vec<f64>> {
        (0..taps)
            .map(|t| {
                let mut m = vec![0.0; len];
                for o in 0..win.output[d] {
                    let i = (o * win.strides[d]) as isize - win.pad_begin[d] as isize + (t * win.dilations[d]) as isize;
                    if (0..len as isize).contains(&i) {
                        m[i as usize] = 1.0;
                    }
                }
                m
            })
            .collect()
    };
    let (rows, cols) = (mask(0, kh, h), mask(1, kw, w));
    let data = x.as_f32()?;
    let d = diff.as_f32()?;
    // s[c][th][tw]: the sum of what tap (th, tw) of channel c reads, over the batch and positions.
    let mut s = vec![0.0f64; c * kh * kw];
    let mut acc = vec![0.0f64; w];
    for b in 0..n {
        for ch in 0..c {
            let plane = &data[(b * c + ch) * h * w..][..h * w];
            for (th, rm) in rows.iter().enumerate() {
                acc.iter_mut().for_each(|a| *a = 0.0);
                for (i, &r) in rm.iter().enumerate() {
                    if r != 0.0 {
                        for (a, &v) in acc.iter_mut().zip(&plane[i * w..(i + 1) * w]) {
                            *a += v as f64;
                        }
                    }
                }
                for (tw, cm) in cols.iter().enumerate() {
                    s[(ch * kh + th) * kw + tw] += acc.iter().zip(cm).map(|(a, m)| a * m).sum::<f64>();
                }
            }
        }
    }
    if sum.is_empty() {
        *sum = vec![0.0; oc];
    }
    let per_group = oc / group;
    for (o, so) in sum.iter_mut().enumerate() {
        let c0 = (o / per_group) * icg;
        let wo = &d[o * icg * kh * kw..][..icg * kh * kw];
        let sc = &s[c0 * kh * kw..][..icg * kh * kw];
        *so += wo.iter().zip(sc).map(|(&a, &b)| a as f64 * b).sum::<f64>();
    }
    *count += n * win.output[0] * win.output[1];
    Ok(())
}

/// A plan of `node` alone, reading `x` with weight `diff` and no bias.
pub(super) fn one_node_plan(node: &Node, diff: &Tensor, x_shape: &[usize], registry: &Registry) -> Result<Plan, Error> {
    let n = Node {
        name: node.name.clone(),
        op_type: node.op_type.clone(),
        inputs: vec!["x".into(), "w".into()],
        outputs: vec!["y".into()],
        attrs: node.attrs.clone(),
        fused: Default::default(),
    };
    let g = Graph {
        nodes: vec![n],
        initializers: [("w".to_string(), diff.clone())].into_iter().collect(),
        inputs: vec![ValueInfo { name: "x".into(), elem_type: 1, shape: x_shape.iter().map(|&d| Some(d)).collect() }],
        outputs: vec![ValueInfo { name: "y".into(), elem_type: 1, shape: vec![] }],
        opset: 13,
        ..Default::default()
    };
    Ok(Plan::new(&g, registry, &[("x".to_string(), x_shape.to_vec())])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Attr;
    use crate::quant::{sample_tensor, SampleKind};

    /// x shape, w shape, group, strides, pads, dilations, auto_pad.
    type Case =
        (&'static [usize], &'static [usize], usize, &'static [i64], &'static [i64], &'static [i64], &'static str);

    /// The closed form against the convolution it replaces: `conv(x, diff)` run by the Conv op
    /// and summed per channel, over strides, pads, dilations, groups, 1-D and auto_pad.
    #[test]
    fn closed_form_shift_equals_the_convolution_summed() {
        let registry = Registry::new();
        #[rustfmt::skip]
        let cases: [Case; 8] = [
            (&[2, 3, 9, 11], &[4, 3, 3, 3], 1, &[1, 1], &[1, 1, 1, 1], &[1, 1], ""),
            (&[1, 4, 10, 7], &[6, 2, 3, 2], 2, &[2, 3], &[0, 1, 2, 0], &[1, 2], ""),
            (&[1, 6, 8, 8], &[6, 1, 3, 3], 6, &[2, 2], &[1, 1, 1, 1], &[1, 1], ""),
            (&[1, 6, 7, 9], &[12, 1, 5, 5], 6, &[1, 2], &[2, 2, 2, 2], &[2, 1], ""),
            (&[3, 5, 6, 6], &[2, 5, 1, 1], 1, &[1, 1], &[0, 0, 0, 0], &[1, 1], ""),
            (&[1, 3, 13], &[5, 3, 4], 1, &[3], &[2, 1], &[2], ""),
            (&[1, 2, 9, 10], &[3, 2, 3, 3], 1, &[2, 2], &[], &[1, 1], "SAME_UPPER"),
            (&[1, 2, 5, 5], &[3, 2, 7, 7], 1, &[1, 1], &[3, 3, 3, 3], &[1, 1], ""),
        ];
        for (k, (xs, ws, group, strides, pads, dil, auto_pad)) in cases.into_iter().enumerate() {
            let x = Tensor {
                shape: xs.to_vec(),
                data: Data::F32(sample_tensor(SampleKind::Relu, xs.iter().product(), k as u64 + 1)),
            };
            let diff = Tensor {
                shape: ws.to_vec(),
                data: Data::F32(sample_tensor(SampleKind::Gaussian, ws.iter().product(), k as u64 + 100)),
            };
            let mut attrs = vec![("group".to_string(), Attr::Int(group as i64))];
            attrs.push(("strides".into(), Attr::Ints(strides.to_vec())));
            attrs.push(("dilations".into(), Attr::Ints(dil.to_vec())));
            if !pads.is_empty() {
                attrs.push(("pads".into(), Attr::Ints(pads.to_vec())));
            }
            if !auto_pad.is_empty() {
                attrs.push(("auto_pad".into(), Attr::String(auto_pad.into())));
            }
            let node = Node {
                name: format!("conv{k}"),
                op_type: OpKind::Conv.into(),
                inputs: vec!["x".into(), "w".into()],
                outputs: vec!["y".into()],
                attrs: crate::model::Attrs(attrs.into_iter().collect()),
                fused: Default::default(),
            };
            let y = one_node_plan(&node, &diff, xs, &registry).unwrap().run(&[("x".to_string(), x.clone())]).unwrap();
            let (ys, yd) = (&y[0].shape, y[0].as_f32().unwrap());
            let inner: usize = ys[2..].iter().product();
            let mut want = vec![0.0f64; ws[0]];
            for b in 0..ys[0] {
                for (o, w) in want.iter_mut().enumerate() {
                    *w += yd[(b * ys[1] + o) * inner..][..inner].iter().map(|&v| v as f64).sum::<f64>();
                }
            }
            let (mut got, mut count) = (Vec::new(), 0);
            let win = WindowAttrs::from_node(&node, false).unwrap();
            conv_shift_sums(&node, &x, &diff, &win, group, &mut got, &mut count).unwrap();
            assert_eq!(count, ys[0] * inner, "case {k}");
            for (o, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "case {k} channel {o}: {a} vs {b}");
            }
        }
    }
}
