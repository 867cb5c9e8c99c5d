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

use crate::model::{Data, Graph, Node, Plan, Tensor, ValueInfo};
use crate::ops::Registry;
use crate::quant::{per_channel_params, QType, Scheme};
use crate::Error;
use std::collections::HashMap;

/// One layer being corrected.
struct Layer {
    /// Node index in the graph.
    node: usize,
    /// `W_q − W` as an initializer of the one-node graph.
    diff: Tensor,
    /// The planned one-node graph, once the input shape is known.
    plan: Option<Plan>,
    /// Sum of the output per channel, and how many values went into each.
    sum: Vec<f64>,
    count: usize,
}

/// The fake-quantized weights the QDQ rewrite will use for `n`'s weight `w` (int8, symmetric,
/// per output channel or per tensor).
pub(super) fn fake_quant_weight(n: &Node, w: &Tensor, per_channel: bool) -> Result<Vec<f32>, Error> {
    let data = w.as_f32()?;
    let axis = super::weight_axis(n, w)?;
    let params = if per_channel {
        per_channel_params(data, &w.shape, axis, QType::INT8, Scheme::Symmetric)?
    } else {
        let (lo, hi) = crate::quant::min_max(data)?;
        vec![crate::quant::params_or_unit(lo as f64, hi as f64, QType::INT8, Scheme::Symmetric)?]
    };
    let (outer, ch, inner) =
        if per_channel { crate::quant::split_axis(data.len(), &w.shape, axis)? } else { (1, 1, data.len()) };
    let mut out = vec![0f32; data.len()];
    for o in 0..outer {
        for (c, p) in params.iter().enumerate().take(ch) {
            let b = (o * ch + c) * inner;
            for k in b..b + inner {
                out[k] = p.dequantize(p.quantize(data[k], QType::INT8));
            }
        }
    }
    Ok(out)
}

/// Corrects the biases of the quantizable nodes `targets` of `g` in place, measuring on `calib`
/// (inputs of graph input `input`); returns how many layers were corrected.
pub fn correct_biases(
    g: &mut Graph,
    targets: &[usize],
    per_channel: bool,
    input: &str,
    calib: &[Tensor],
    registry: &Registry,
) -> Result<usize, Error> {
    let mut layers: Vec<Layer> = Vec::new();
    for &t in targets {
        let n = &g.nodes[t];
        let ok = match n.op_type.as_str() {
            "Conv" => true,
            "Gemm" => {
                n.attrs.float("beta", 1.0) == 1.0
                    && n.inputs.get(2).and_then(|b| g.initializers.get(b)).is_some_and(|b| b.shape.len() == 1)
            }
            _ => false,
        };
        let Some(w) = n.inputs.get(1).and_then(|w| g.initializers.get(w)) else { continue };
        if !ok || w.as_f32().is_err() {
            continue;
        }
        let wq = fake_quant_weight(n, w, per_channel)?;
        let diff: Vec<f32> = wq.iter().zip(w.as_f32()?).map(|(a, b)| a - b).collect();
        layers.push(Layer {
            node: t,
            diff: Tensor { shape: w.shape.clone(), data: Data::F32(diff) },
            plan: None,
            sum: Vec::new(),
            count: 0,
        });
    }
    if layers.is_empty() {
        return Ok(0);
    }
    // Which layers read each activation.
    let mut readers: HashMap<String, Vec<usize>> = HashMap::new();
    for (k, l) in layers.iter().enumerate() {
        readers.entry(g.nodes[l.node].inputs[0].clone()).or_default().push(k);
    }
    let shape = calib[0].shape.clone();
    let plan = Plan::new(g, registry, &[(input.to_string(), shape)])?;
    let mut err: Option<Error> = None;
    let feed = |layers: &mut [Layer], name: &str, x: &Tensor| -> Result<(), Error> {
        let Some(ks) = readers.get(name) else { return Ok(()) };
        for &k in ks {
            let l = &mut layers[k];
            if l.plan.is_none() {
                l.plan = Some(one_node_plan(&g.nodes[l.node], &l.diff, &x.shape, registry)?);
            }
            let out = l.plan.as_ref().unwrap().run(&[("x".to_string(), x.clone())])?;
            let sh = out[0].shape.clone();
            let y = out[0].as_f32()?;
            if sh.is_empty() {
                continue;
            }
            let (n, c) = (sh[0], sh.get(1).copied().unwrap_or(1));
            let inner = sh.iter().skip(2).product::<usize>().max(1);
            if l.sum.is_empty() {
                l.sum = vec![0.0; c];
            }
            for b in 0..n {
                for (ch, s) in l.sum.iter_mut().enumerate() {
                    let base = (b * c + ch) * inner;
                    *s += y[base..base + inner].iter().map(|&v| v as f64).sum::<f64>();
                }
            }
            l.count += n * inner;
        }
        Ok(())
    };
    for x in calib {
        feed(&mut layers, input, x)?;
        plan.run_with(&[(input.to_string(), x.clone())], &mut |name, t| {
            if err.is_none() {
                if let Err(e) = feed(&mut layers, name, t) {
                    err = Some(e);
                }
            }
        })?;
        if let Some(e) = err.take() {
            return Err(e);
        }
    }
    // Subtract the measured shift from each bias.
    let mut corrected = 0;
    for l in layers {
        if l.count == 0 {
            continue;
        }
        let shift: Vec<f32> = l.sum.iter().map(|s| (s / l.count as f64) as f32).collect();
        let node_name = g.nodes[l.node].name.clone();
        let n = &mut g.nodes[l.node];
        let bias = match n.inputs.get(2).filter(|b| !b.is_empty()) {
            Some(b) => g.initializers.get(b).and_then(|t| t.as_f32().ok()).map(<[f32]>::to_vec),
            None => Some(vec![0.0; shift.len()]),
        };
        let Some(bias) = bias.filter(|b| b.len() == shift.len()) else { continue };
        let new: Vec<f32> = bias.iter().zip(&shift).map(|(b, s)| b - s).collect();
        // A fresh name, so a bias another node shares is not changed under it.
        let mut name = format!("{node_name}_bias_corrected");
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
    Ok(corrected)
}

/// A plan of `node` alone, reading `x` with weight `diff` and no bias.
fn one_node_plan(node: &Node, diff: &Tensor, x_shape: &[usize], registry: &Registry) -> Result<Plan, Error> {
    let n = Node {
        name: node.name.clone(),
        op_type: node.op_type.clone(),
        inputs: vec!["x".into(), "w".into()],
        outputs: vec!["y".into()],
        attrs: node.attrs.clone(),
    };
    let g = Graph {
        nodes: vec![n],
        initializers: [("w".to_string(), diff.clone())].into_iter().collect(),
        inputs: vec![ValueInfo { name: "x".into(), elem_type: 1, shape: x_shape.iter().map(|&d| Some(d)).collect() }],
        outputs: vec![ValueInfo { name: "y".into(), elem_type: 1, shape: vec![] }],
        opset: 13,
        producer: String::new(),
    };
    Ok(Plan::new(&g, registry, &[("x".to_string(), x_shape.to_vec())])?)
}
