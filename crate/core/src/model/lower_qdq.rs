//! Lowering of QDQ patterns to integer kernels: the step that makes a quantized model run in
//! int8 instead of simulating it in float.
//!
//! A QDQ model (what `qplay quantize`, onnxruntime's `quantize_static` and QAT exports write)
//! keeps float ops between `DequantizeLinear` and `QuantizeLinear` nodes. Executed literally,
//! every quantized tensor is dequantized and the convolution runs in float32. This pass finds
//!
//! ```text
//! xq ─DQ(sx,zx)─┐
//! wq ─DQ(sw,zw)─┼─ Conv [+ fused Relu/Clip] ─ y ─[Q(sy,zy)]─ yq
//! bq ─DQ(sx·sw)─┘
//! ```
//!
//! with constant weights, scales and zero-points, and replaces it by one `QLinearConv` on the
//! 8-bit data: with the `Q` absorbed when it is the only reader of `y` (8-bit output, the
//! activation clamped in the integer domain), or else with float output
//! ([`FLOAT_OUTPUT_ATTR`]). The Conv's attributes, including a fused activation's bounds, carry over. The `DequantizeLinear` nodes become dead and planning drops them.
//!
//! Numerics: sums are exact in `i32`; the one rounding is the requantization (or the float
//! conversion), so results differ from the float simulation by at most one quantization step
//! of the output, where onnxruntime's integer kernels differ too.

use super::{Attr, Data, Graph, Node, Tensor};
use crate::model::OpKind;
use crate::ops::quant::qlinear_conv::FLOAT_OUTPUT_ATTR;
use std::collections::{HashMap, HashSet};

/// One lowering: the Conv's index, the absorbed Q's index, the new node, new initializers (a
/// re-quantized bias, 4-bit weights widened to 8 bits).
type Rewrite = (usize, Option<usize>, Node, Vec<(String, Tensor)>);

/// Rewrites every lowerable `Conv` (see the module docs) and returns how many were lowered.
/// Bias scales written as `Mul(input scale, weight scale)` (qplay's compact form,
/// [`super::qdq_form`]) are folded to constants first.
pub fn lower_qdq(graph: &mut Graph) -> usize {
    super::qdq_form::fold_scale_products(graph);
    let mut uses: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        for inp in n.inputs.iter().filter(|s| !s.is_empty()) {
            uses.entry(inp.clone()).or_default().push(i);
        }
    }
    let producer: HashMap<String, usize> =
        graph.nodes.iter().enumerate().flat_map(|(i, n)| n.outputs.iter().map(move |o| (o.clone(), i))).collect();
    let outputs: HashSet<&str> = graph.outputs.iter().map(|o| o.name.as_str()).collect();

    let mut rewrites: Vec<Rewrite> = Vec::new();
    for (ci, c) in graph.nodes.iter().enumerate() {
        if !c.is(OpKind::Conv) || c.outputs.len() != 1 || c.inputs.len() < 2 {
            continue;
        }
        let Some(m) = match_conv(graph, c, &producer) else { continue };
        let y = &c.outputs[0];
        // Absorb a QuantizeLinear that is the only reader of y.
        let q = match uses.get(y).map(Vec::as_slice) {
            Some([qi]) if !outputs.contains(&y.as_str()) => {
                let qn = &graph.nodes[*qi];
                (qn.is(OpKind::QuantizeLinear) && qn.inputs.first() == Some(y) && q_params_ok(graph, qn)).then_some(*qi)
            }
            _ => None,
        };
        let mut node = Node {
            name: c.name.clone(),
            op_type: OpKind::QLinearConv.into(),
            inputs: vec![
                m.xq,
                m.sx,
                m.zx,
                m.wq,
                m.sw,
                m.zw,
                String::new(),
                String::new(),
                m.bias.as_ref().map_or(String::new(), |(n, _)| n.clone()),
            ],
            outputs: vec![y.clone()],
            attrs: c.attrs.clone(),
            fused: c.fused.clone(),
        };
        match q {
            Some(qi) => {
                let qn = &graph.nodes[qi];
                node.inputs[6] = qn.inputs[1].clone();
                node.inputs[7] = qn.inputs[2].clone();
                node.outputs = vec![qn.outputs[0].clone()];
            }
            None => {
                node.attrs.0.insert(FLOAT_OUTPUT_ATTR.into(), Attr::Int(1));
            }
        }
        let mut extra = m.widened;
        extra.extend(m.bias.and_then(|(n, t)| t.map(|t| (n, t))));
        rewrites.push((ci, q, node, extra));
    }
    let count = rewrites.len();
    let mut removed = vec![false; graph.nodes.len()];
    for (ci, q, node, inits) in rewrites {
        graph.nodes[ci] = node;
        if let Some(qi) = q {
            removed[qi] = true;
        }
        for (name, t) in inits {
            graph.initializers.insert(name, t);
        }
    }
    let mut i = 0;
    graph.nodes.retain(|_| {
        i += 1;
        !removed[i - 1]
    });
    count
}

/// The names a lowered convolution reads, and a re-quantized bias when one had to be made.
struct ConvMatch {
    xq: String,
    sx: String,
    zx: String,
    wq: String,
    sw: String,
    zw: String,
    /// The int32 bias name, with a new initializer when the model's bias had another scale.
    bias: Option<(String, Option<Tensor>)>,
    /// 4-bit weights and their zero-point widened to 8 bits (same values), under new names.
    widened: Vec<(String, Tensor)>,
}

/// A 4-bit tensor's values as the 8-bit type of the same signedness (they fit unchanged);
/// `None` for other types.
fn widen_4bit(t: &Tensor) -> Option<Tensor> {
    match &t.data {
        Data::I4(v) => Some(Tensor { shape: t.shape.clone(), data: Data::I8(v.clone()) }),
        Data::U4(v) => Some(Tensor { shape: t.shape.clone(), data: Data::U8(v.clone()) }),
        _ => None,
    }
}

fn init<'g>(graph: &'g Graph, name: &str) -> Option<&'g Tensor> {
    graph.initializers.get(name)
}

/// A scalar positive float scale and a scalar 8-bit zero-point, both constants.
fn scalar_params(graph: &Graph, n: &Node) -> Option<(f32, i32)> {
    let s = init(graph, n.inputs.get(1)?)?.as_f32().ok()?;
    let z = init(graph, n.inputs.get(2)?)?;
    if s.len() != 1 || z.len() != 1 || !matches!(z.data, Data::U8(_) | Data::I8(_)) || !(s[0] > 0.0 && s[0].is_finite())
    {
        return None;
    }
    Some((s[0], z.to_i64_vec().ok()?[0] as i32))
}

fn q_params_ok(graph: &Graph, q: &Node) -> bool {
    q.outputs.len() == 1 && q.attrs.int("block_size", 0) == 0 && scalar_params(graph, q).is_some()
}

fn match_conv(graph: &Graph, c: &Node, producer: &HashMap<String, usize>) -> Option<ConvMatch> {
    let dq = |name: &str| -> Option<&Node> {
        let n = &graph.nodes[*producer.get(name)?];
        (n.is(OpKind::DequantizeLinear) && n.attrs.int("block_size", 0) == 0).then_some(n)
    };
    // Activation: per-tensor DQ with an explicit 8-bit zero-point (it gives the data type).
    let dx = dq(&c.inputs[0])?;
    let (sx, _) = scalar_params(graph, dx)?;
    // Weights: constant 8-bit data (4-bit data is widened to 8 bits: the same values run through
    // the same kernels), scale per tensor or per output channel (axis 0).
    let dw = dq(&c.inputs[1])?;
    let wq = init(graph, &dw.inputs[0])?;
    let mut widened = Vec::new();
    let (mut wq_name, mut zw_name) = (dw.inputs[0].clone(), dw.inputs.get(2).cloned().unwrap_or_default());
    if let Some(w8) = widen_4bit(wq) {
        wq_name = format!("{wq_name}_qplay_8bit");
        widened.push((wq_name.clone(), w8));
        if !zw_name.is_empty() {
            let z8 = widen_4bit(init(graph, &zw_name)?)?;
            zw_name = format!("{zw_name}_qplay_8bit");
            widened.push((zw_name.clone(), z8));
        }
    }
    if !matches!(wq.data, Data::U8(_) | Data::I8(_) | Data::U4(_) | Data::I4(_)) || wq.shape.len() < 3 {
        return None;
    }
    let sw = init(graph, dw.inputs.get(1)?)?.as_f32().ok()?;
    let m = wq.shape[0];
    if sw.len() != 1 {
        let axis = dw.attrs.int("axis", 1);
        if sw.len() != m || !(axis == 0 || axis == -(wq.shape.len() as i64)) {
            return None;
        }
    }
    if let Some(z) = dw.inputs.get(2).filter(|s| !s.is_empty()) {
        let z = init(graph, z)?;
        if z.dtype() != wq.dtype() || z.len() != sw.len() {
            return None;
        }
    }
    let sw_c = |ch: usize| if sw.len() == 1 { sw[0] } else { sw[ch] };
    // Bias: int32 at scale sx·sw used as is; anything else (another scale, float) re-quantized.
    let bias = match c.inputs.get(2).filter(|s| !s.is_empty()) {
        None => None,
        Some(b) => {
            let expect: Vec<f32> = (0..m).map(|ch| sx * sw_c(ch)).collect();
            let direct = dq(b).and_then(|db| {
                let bt = init(graph, &db.inputs[0])?;
                let sb = init(graph, db.inputs.get(1)?)?.as_f32().ok()?;
                let zero_zp = db.inputs.get(2).filter(|s| !s.is_empty()).is_none_or(|z| {
                    init(graph, z).and_then(|z| z.to_i64_vec().ok()).is_some_and(|v| v.iter().all(|&v| v == 0))
                });
                let same =
                    (sb.len() == m && sb == expect.as_slice()) || (sb.len() == 1 && expect.iter().all(|&e| e == sb[0]));
                (matches!(bt.data, Data::I32(_)) && bt.len() == m && zero_zp && same).then(|| db.inputs[0].clone())
            });
            match direct {
                Some(name) => Some((name, None)),
                None => {
                    // The float bias: a constant, or a constant behind a DequantizeLinear.
                    let fb: Vec<f32> = match init(graph, b) {
                        Some(t) => t.as_f32().ok()?.to_vec(),
                        None => {
                            let db = dq(b)?;
                            let bt = init(graph, &db.inputs[0])?.to_i64_vec().ok()?;
                            let sb = init(graph, db.inputs.get(1)?)?.as_f32().ok()?;
                            let zb = match db.inputs.get(2).filter(|s| !s.is_empty()) {
                                Some(z) => init(graph, z)?.to_i64_vec().ok()?,
                                None => vec![0; sb.len()],
                            };
                            if (zb.len() != 1 && zb.len() != bt.len()) || (sb.len() != 1 && sb.len() != bt.len()) {
                                return None;
                            }
                            let zat = |i: usize| if zb.len() == 1 { zb[0] } else { zb[i] };
                            let sat = |i: usize| if sb.len() == 1 { sb[0] } else { sb[i] };
                            (0..bt.len()).map(|i| (bt[i] - zat(i)) as f32 * sat(i)).collect()
                        }
                    };
                    if fb.len() != m {
                        return None;
                    }
                    let q: Vec<i32> = fb
                        .iter()
                        .zip(&expect)
                        .map(|(&v, &s)| (v / s).round_ties_even().clamp(i32::MIN as f32, i32::MAX as f32) as i32)
                        .collect();
                    let name = format!("{}_qplay_bias_i32", c.name);
                    Some((name, Some(Tensor { shape: vec![m], data: Data::I32(q) })))
                }
            }
        }
    };
    Some(ConvMatch {
        xq: dx.inputs[0].clone(),
        sx: dx.inputs[1].clone(),
        zx: dx.inputs[2].clone(),
        wq: wq_name,
        sw: dw.inputs[1].clone(),
        zw: zw_name,
        bias,
        widened,
    })
}
