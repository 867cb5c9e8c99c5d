//! The graph rewrites behind the exported model: the QDQ rewrite of the quantizable nodes
//! (activations behind `QuantizeLinear → DequantizeLinear`, int8 (or int4) weights and int32 biases behind
//! `DequantizeLinear`), and the float16 write-back of the float initializers left.

use super::gptq::WeightCodes;
use super::report::{self, ActivationReport, LayerReport};
use super::PtqOptions;
use crate::model::OpKind;
use crate::model::{numel, Attr, Attrs, DType, Graph, ModelError, Node, Tensor};
use crate::ops::OpError;
use crate::quant::{error_metrics, per_channel_params, QParams, QType, Scheme};
use crate::Error;
use std::collections::{HashMap, HashSet};

/// Per activation: parameters, observed min/max, chosen clip range.
pub(super) type ActParams = (QParams, (f32, f32), (f32, f32));

/// The QDQ rewrite of `g` (already BatchNorm-folded) for the quantizable nodes `targets`.
#[allow(clippy::too_many_arguments)]
pub(super) fn rewrite(
    g: &Graph,
    targets: &[usize],
    act_params: &HashMap<String, ActParams>,
    act16_params: &HashMap<String, ActParams>,
    act16: &HashSet<String>,
    opts: &PtqOptions,
    per_channel: bool,
    int4: bool,
    codes: &WeightCodes,
) -> Result<(Graph, Vec<LayerReport>), Error> {
    let mut g = g.clone();
    // 16-bit QDQ is in the default domain from opset 21, in onnxruntime's `com.microsoft` before.
    let q16_domain = if g.opset >= 21 { "" } else { "com.microsoft::" };
    let zp_tensor = |qt: QType, v: Vec<i32>| -> Tensor {
        let n = v.len();
        let shape = if n == 1 { vec![] } else { vec![n] };
        if qt.bits == 16 {
            return if qt.signed {
                Tensor { shape, data: crate::model::Data::I16(v.into_iter().map(|z| z as i16).collect()) }
            } else {
                Tensor { shape, data: crate::model::Data::U16(v.into_iter().map(|z| z as u16).collect()) }
            };
        }
        if qt.signed {
            Tensor { shape, data: crate::model::Data::I8(v.into_iter().map(|z| z as i8).collect()) }
        } else {
            Tensor { shape, data: crate::model::Data::U8(v.into_iter().map(|z| z as u8).collect()) }
        }
    };
    let mut new_nodes: Vec<Node> = Vec::new();
    let mut layers = Vec::new();
    let mut qdq_done: HashMap<String, String> = HashMap::new();
    // A weight or bias initializer read by several nodes (exporters deduplicate equal constants)
    // is quantized once per reader, each under its own names: `b`, then `b_2`, `b_3`, …
    let mut readers: HashMap<String, usize> = HashMap::new();
    let mut stem = |name: &str| {
        let k = readers.entry(name.to_string()).or_insert(0);
        *k += 1;
        if *k == 1 {
            name.to_string()
        } else {
            format!("{name}_{k}")
        }
    };
    // Each target's weights quantized, a task each (the first error in graph order).
    let mut order: Vec<usize> = targets.to_vec();
    order.sort_unstable();
    order.dedup();
    let quantized = crate::parallel::try_map(order.len(), |j| {
        quantize_weights(&g, &g.nodes[order[j]], opts, per_channel, int4, codes)
    })?;
    let mut weights: Vec<Option<WeightQ>> = (0..g.nodes.len()).map(|_| None).collect();
    for (&t, q) in order.iter().zip(quantized) {
        weights[t] = Some(q);
    }
    let nodes = std::mem::take(&mut g.nodes);
    for (i, mut n) in nodes.into_iter().enumerate() {
        if weights[i].is_none() {
            new_nodes.push(n);
            continue;
        }
        // Activation Q/DQ (shared by every node that reads the same tensor).
        let a = n.inputs[0].clone();
        let wide = act16.contains(&a) || opts.activation.bits == 16;
        let (ap, observed, clip) = if wide { act16_params[&a] } else { act_params[&a] };
        let (aq, dom) = if wide {
            (QType { bits: 16, signed: opts.activation.signed, restricted: false }, q16_domain)
        } else {
            (opts.activation, "")
        };
        let a_dq = match qdq_done.get(&a) {
            Some(d) => d.clone(),
            None => {
                let (s, z, q, d) = (
                    format!("{a}_scale"),
                    format!("{a}_zero_point"),
                    format!("{a}_quantized"),
                    format!("{a}_dequantized"),
                );
                g.initializers.insert(s.clone(), Tensor::scalar_f32(ap.scale));
                g.initializers.insert(z.clone(), zp_tensor(aq, vec![ap.zero_point]));
                let (qop, dqop) = (format!("{dom}QuantizeLinear"), format!("{dom}DequantizeLinear"));
                new_nodes.push(qdq_node(&qop, &format!("{a}_QuantizeLinear"), [&a, &s, &z], &q, None));
                new_nodes.push(qdq_node(&dqop, &format!("{a}_DequantizeLinear"), [&q, &s, &z], &d, None));
                qdq_done.insert(a.clone(), d.clone());
                d
            }
        };
        n.inputs[0] = a_dq;

        let wname = n.inputs[1].clone();
        let Some(WeightQ { wt, int4, axis, scales, wq, sqnr_db, range: (wl, wh), histogram }) = weights[i].take()
        else {
            unreachable!("every target's weights are quantized above")
        };
        let w_shape = g.initializers[&wname].shape.clone();
        let ws = stem(&wname);
        let (wqn, wsn, wzn, wdq) =
            (format!("{ws}_quantized"), format!("{ws}_scale"), format!("{ws}_zero_point"), format!("{ws}_dequantized"));
        let shape_of = |n: usize| if n == 1 && !per_channel { vec![] } else { vec![n] };
        let (codes, zeros) = if int4 {
            (Tensor::i4(w_shape, wq)?, Tensor::i4(shape_of(scales.len()), vec![0; scales.len()])?)
        } else {
            (Tensor::i8(w_shape, wq)?, Tensor::i8(shape_of(scales.len()), vec![0; scales.len()])?)
        };
        g.initializers.insert(wqn.clone(), codes);
        g.initializers.insert(wsn.clone(), Tensor::f32(shape_of(scales.len()), scales.clone())?);
        g.initializers.insert(wzn.clone(), zeros);
        new_nodes.push(qdq_node(
            "DequantizeLinear",
            &format!("{ws}_DequantizeLinear"),
            [&wqn, &wsn, &wzn],
            &wdq,
            per_channel.then_some(axis as i64),
        ));
        n.inputs[1] = wdq;

        // Bias (Conv input 2 / Gemm C when it is one value per output channel): int32, s_in·s_w.
        if let Some(bname) = n.inputs.get(2).filter(|b| !b.is_empty()).cloned() {
            if let Some(bt) = g.initializers.get(&bname).cloned() {
                let bdata = bt.as_f32()?;
                let nb = bdata.len();
                if bt.shape.len() == 1 && (scales.len() == nb || scales.len() == 1) {
                    let bs: Vec<f32> =
                        (0..nb).map(|c| ap.scale * scales[if scales.len() == 1 { 0 } else { c }]).collect();
                    let bq: Vec<i32> = bdata
                        .iter()
                        .zip(&bs)
                        .map(|(&b, &s)| (b / s).round_ties_even().clamp(i32::MIN as f32, i32::MAX as f32) as i32)
                        .collect();
                    let bs_ = stem(&bname);
                    let (bqn, bsn, bdq) =
                        (format!("{bs_}_quantized"), format!("{bs_}_scale"), format!("{bs_}_dequantized"));
                    g.initializers.insert(bqn.clone(), Tensor::i32(vec![nb], bq)?);
                    g.initializers.insert(bsn.clone(), Tensor::f32(vec![nb], bs)?);
                    new_nodes.push(Node {
                        name: format!("{bs_}_DequantizeLinear"),
                        op_type: OpKind::DequantizeLinear.into(),
                        inputs: vec![bqn, bsn],
                        outputs: vec![bdq.clone()],
                        attrs: Attrs([("axis".to_string(), Attr::Int(0))].into_iter().collect()),
                        fused: Default::default(),
                    });
                    n.inputs[2] = bdq;
                }
            }
        }
        layers.push(LayerReport {
            node: n.name.clone(),
            op: n.op_type.clone(),
            activation: ActivationReport {
                tensor: a,
                observed,
                clip,
                scale: ap.scale,
                zero_point: ap.zero_point,
                ..Default::default()
            },
            weight_range: (wl, wh),
            weight_scales: scales.len(),
            weight_bits: wt.bits,
            weight_sqnr_db: sqnr_db,
            sensitivity_sqnr_db: None,
            weight_histogram: histogram,
            channel_scales: scales,
            output_sqnr_db: None,
        });
        new_nodes.push(n);
    }
    g.nodes = new_nodes;
    // Drop float weights nothing reads any more.
    let used: HashSet<String> = g.nodes.iter().flat_map(|n| n.inputs.iter().cloned()).collect();
    g.initializers.retain(|k, _| used.contains(k) || g.outputs.iter().any(|o| &o.name == k));
    Ok((g, layers))
}

/// One target's quantized weights, and what the report says of them.
struct WeightQ {
    wt: QType,
    int4: bool,
    axis: usize,
    scales: Vec<f32>,
    wq: Vec<i8>,
    sqnr_db: f64,
    range: (f32, f32),
    histogram: Option<crate::quant::Histogram>,
}

/// The weights of target `n` of `g`, at the layer's width; int4 storage where the file has it
/// and the layer is 4 bits or fewer.
fn quantize_weights(
    g: &Graph,
    n: &Node,
    opts: &PtqOptions,
    per_channel: bool,
    int4: bool,
    codes: &WeightCodes,
) -> Result<WeightQ, Error> {
    let wt = opts.weight_of(&n.name);
    let int4 = int4 && wt.bits <= 4;
    let w = &g.initializers[&n.inputs[1]];
    let wdata = w.as_f32()?;
    // Codes chosen by error-compensating rounding (same scales), or round-to-nearest.
    let Codes { axis, params: wparams, q, fake: wfake } = weight_codes(n, w, per_channel, wt, codes.get(&n.name))?;
    let wq: Vec<i8> = q.into_iter().map(|q| q as i8).collect();
    Ok(WeightQ {
        wt,
        int4,
        axis,
        scales: wparams.iter().map(|p| p.scale).collect(),
        wq,
        sqnr_db: error_metrics(wdata, &wfake)?.sqnr_db,
        range: crate::quant::min_max(wdata)?,
        histogram: report::weight_histogram(wdata),
    })
}

/// The codes of `n`'s weight `w` at width `wt` (symmetric, per output channel or per tensor)
/// and their dequantized values, as the QDQ rewrite writes them: `codes` where given (GPTQ's,
/// on the same scales), else rounded to nearest. Returns the channel axis and the parameters too.
pub(super) fn weight_codes(
    n: &Node,
    w: &Tensor,
    per_channel: bool,
    wt: QType,
    codes: Option<&Vec<i32>>,
) -> Result<Codes, Error> {
    let data = w.as_f32()?;
    let axis = weight_axis(n, w)?;
    let params = if per_channel {
        per_channel_params(data, &w.shape, axis, wt, Scheme::Symmetric)?
    } else {
        let (lo, hi) = crate::quant::min_max(data)?;
        vec![crate::quant::params_or_unit(lo as f64, hi as f64, wt, Scheme::Symmetric)?]
    };
    let (outer, ch, inner) =
        if per_channel { crate::quant::split_axis(data.len(), &w.shape, axis)? } else { (1, 1, data.len()) };
    let chosen = codes.filter(|c| c.len() == data.len());
    let (mut q, mut fake) = (vec![0i32; data.len()], vec![0f32; data.len()]);
    for o in 0..outer {
        for (c, p) in params.iter().enumerate().take(ch) {
            let b = (o * ch + c) * inner;
            for k in b..b + inner {
                q[k] = chosen.map_or_else(|| p.quantize(data[k], wt), |c| c[k]);
                fake[k] = p.dequantize(q[k]);
            }
        }
    }
    Ok(Codes { axis, params, q, fake })
}

/// What [`weight_codes`] gives: the channel axis, the parameters, the codes and their values.
pub(super) struct Codes {
    pub(super) axis: usize,
    pub(super) params: Vec<QParams>,
    pub(super) q: Vec<i32>,
    pub(super) fake: Vec<f32>,
}

fn qdq_node(op: &str, name: &str, inputs: [&String; 3], output: &str, axis: Option<i64>) -> Node {
    Node {
        name: name.to_string(),
        op_type: op.to_string(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: vec![output.to_string()],
        attrs: Attrs(axis.map(|a| ("axis".to_string(), Attr::Int(a))).into_iter().collect()),
        fused: Default::default(),
    }
}

/// The output-channel axis of a weight: 0 for Conv and for Gemm with transB, else the last.
pub(super) fn weight_axis(n: &Node, w: &Tensor) -> Result<usize, Error> {
    let rank = w.shape.len();
    if rank == 0 || numel(&w.shape)? == 0 {
        return Err(ModelError::at(n, OpError::malformed("its weight is empty")).into());
    }
    Ok(match n.kind() {
        Some(OpKind::Conv) => 0,
        Some(OpKind::Gemm) if n.attrs.int("transB", 0) != 0 => 0,
        _ => rank - 1,
    })
}

/// Float32 initializers of 16 values or more that are not quantization parameters: each is
/// renamed `<name>_fp16` (to be written as float16) and read through a new `Cast` to float32
/// under its old name. Returns the renamed set and how many values they hold.
pub(super) fn halve_float_initializers(g: &mut Graph) -> (HashSet<String>, usize) {
    let qdq_params: HashSet<&str> = g
        .nodes
        .iter()
        .filter(|n| n.is_any(&[OpKind::QuantizeLinear, OpKind::DequantizeLinear]))
        .flat_map(|n| n.inputs.iter().skip(1).map(String::as_str))
        .collect();
    let mut names: Vec<String> = g
        .initializers
        .iter()
        .filter(|(n, t)| t.dtype() == DType::F32 && t.len() >= 16 && !qdq_params.contains(n.as_str()))
        .map(|(n, _)| n.clone())
        .collect();
    names.sort();
    let (mut half, mut values, mut casts) = (HashSet::new(), 0, Vec::new());
    for n in names {
        let Some(t) = g.initializers.remove(&n) else { continue };
        let h = format!("{n}_fp16");
        values += t.len();
        g.initializers.insert(h.clone(), t);
        casts.push(Node {
            name: format!("{n}_Cast"),
            op_type: OpKind::Cast.into(),
            inputs: vec![h.clone()],
            outputs: vec![n],
            attrs: Attrs([("to".to_string(), Attr::Int(1))].into_iter().collect()),
            fused: Default::default(),
        });
        half.insert(h);
    }
    casts.append(&mut g.nodes);
    g.nodes = casts;
    (half, values)
}
