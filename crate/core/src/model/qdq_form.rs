//! Two spellings of one QDQ model: the compact one qplay writes to files, and the explicit one
//! its rewrites and training read.
//!
//! A QDQ file stores, per quantized layer, the weight codes with one scale and one zero-point
//! per output channel, and the int32 bias with its own per-channel scale, which is by
//! definition `s_x · s_w[c]`, the input's scale times the weight's. At 4 bits the codes are
//! half a byte per weight, so these side tensors weigh: on the person detector, the bias scales
//! alone are 100 kB of a 2.1 MB file. The compact form ([`compact_qdq`]) drops what the file can
//! say without storing:
//!
//! - an all-zero zero-point of a `DequantizeLinear` of constant codes (symmetric weights):
//!   ONNX's default when the input is omitted, and the codes carry the data type;
//! - a bias scale that is exactly (bit for bit) the float32 product of the layer's input and
//!   weight scales: written as `Mul(s_x, s_w)`, which onnxruntime and qplay fold at load, so
//!   the values the runtimes see are the same bits.
//!
//! [`fold_scale_products`] undoes the second (planning calls it before lowering to integer
//! kernels), [`explicit_qdq`] both (training reads every scale and zero-point as a tensor).

use super::{Data, Graph, Node, OpKind, Tensor};
use std::collections::HashMap;

/// What [`compact_qdq`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Zero-point inputs dropped from `DequantizeLinear` nodes of constant codes.
    pub zero_points: usize,
    /// Bias scales written as the product of the input and weight scales.
    pub bias_scales: usize,
}

/// Rewrites `g` into the compact form (see the module docs). Values are unchanged: every
/// dropped zero-point is all zeros, every bias scale written as a product is that product's
/// float32 value exactly.
pub fn compact_qdq(g: &mut Graph) -> Compacted {
    let mut done = Compacted::default();
    let producer: HashMap<String, usize> =
        g.nodes.iter().enumerate().flat_map(|(i, n)| n.outputs.iter().map(move |o| (o.clone(), i))).collect();
    let mut readers: HashMap<String, usize> = HashMap::new();
    for n in &g.nodes {
        for i in n.inputs.iter().filter(|i| !i.is_empty()) {
            *readers.entry(i.clone()).or_default() += 1;
        }
    }

    // Bias scales first: they look at the weights' DequantizeLinear as it is.
    let mut products: Vec<(usize, Node)> = Vec::new();
    for layer in &g.nodes {
        let Some(b) = layer.inputs.get(2).filter(|b| !b.is_empty()) else { continue };
        let Some(&bi) = producer.get(b) else { continue };
        let bdq = &g.nodes[bi];
        if !is_const_dq(g, bdq) || !matches!(g.initializers[&bdq.inputs[0]].data, Data::I32(_)) {
            continue;
        }
        let Some(sb_name) = bdq.inputs.get(1) else { continue };
        let Some(sb) = g.initializers.get(sb_name) else { continue };
        let scale_of = |input: &str| -> Option<(&String, &Tensor)> {
            let dq = &g.nodes[*producer.get(input)?];
            if !dq.is(OpKind::DequantizeLinear) {
                return None;
            }
            let name = dq.inputs.get(1)?;
            Some((name, g.initializers.get(name)?))
        };
        let (Some((sx_name, sx)), Some((sw_name, sw))) = (scale_of(&layer.inputs[0]), scale_of(&layer.inputs[1]))
        else {
            continue;
        };
        let (Ok(sbv), Ok(sxv), Ok(swv)) = (sb.as_f32(), sx.as_f32(), sw.as_f32()) else { continue };
        let exact = sxv.len() == 1
            && sw.shape == sb.shape
            && sx.shape.len() <= sb.shape.len()
            && sbv.iter().zip(swv).all(|(b, w)| (sxv[0] * w).to_bits() == b.to_bits());
        if !exact || readers.get(sb_name.as_str()) != Some(&1) || producer.contains_key(sb_name) {
            continue;
        }
        products.push((
            bi,
            Node {
                // Unnamed, as a few bytes more per layer would be (loading names it `Mul_<k>`).
                name: String::new(),
                op_type: OpKind::Mul.into(),
                inputs: vec![sx_name.clone(), sw_name.clone()],
                outputs: vec![sb_name.clone()],
                attrs: Default::default(),
                fused: Default::default(),
            },
        ));
    }
    // Insert each Mul just before its DequantizeLinear (its inputs are initializers).
    products.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
    for (i, mul) in products {
        g.initializers.remove(&mul.outputs[0]);
        g.nodes.insert(i, mul);
        done.bias_scales += 1;
    }

    // All-zero zero-points of constant codes.
    for k in 0..g.nodes.len() {
        let n = &g.nodes[k];
        if !is_const_dq(g, n) || n.inputs.len() < 3 || n.inputs[2].is_empty() {
            continue;
        }
        let Some(z) = g.initializers.get(&n.inputs[2]) else { continue };
        let zero = z.to_i64_vec().is_ok_and(|v| v.iter().all(|&v| v == 0));
        if !zero || z.dtype() != g.initializers[&n.inputs[0]].dtype() {
            continue;
        }
        let name = g.nodes[k].inputs.pop().unwrap_or_default();
        let left = readers.get_mut(&name).map(|r| {
            *r -= 1;
            *r
        });
        if left == Some(0) {
            g.initializers.remove(&name);
        }
        done.zero_points += 1;
    }
    done
}

/// Folds every `Mul` of two float constants that only `DequantizeLinear` nodes read as their
/// scale (the compact form's bias scales) into a constant; returns how many.
pub fn fold_scale_products(g: &mut Graph) -> usize {
    let mut folded = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if !n.is(OpKind::Mul) || n.inputs.len() != 2 || n.outputs.len() != 1 {
            continue;
        }
        let (Some(a), Some(b)) = (g.initializers.get(&n.inputs[0]), g.initializers.get(&n.inputs[1])) else {
            continue;
        };
        let (Ok(av), Ok(bv)) = (a.as_f32(), b.as_f32()) else { continue };
        let out = &n.outputs[0];
        let only_scales = g
            .nodes
            .iter()
            .filter(|m| m.inputs.iter().any(|i| i == out))
            .all(|m| m.is(OpKind::DequantizeLinear) && m.inputs.iter().position(|i| i == out) == Some(1))
            && !g.outputs.iter().any(|o| &o.name == out);
        // Scalar times tensor (either way round): the compact form's only spelling.
        let product = match (av.len(), bv.len()) {
            (1, _) if a.shape.len() <= b.shape.len() => Some((b.shape.clone(), bv.iter().map(|w| av[0] * w).collect())),
            (_, 1) if b.shape.len() <= a.shape.len() => Some((a.shape.clone(), av.iter().map(|x| x * bv[0]).collect())),
            _ => None,
        };
        if let (true, Some((shape, v))) = (only_scales, product) {
            folded.push((i, out.clone(), Tensor { shape, data: Data::F32(v) }));
        }
    }
    let count = folded.len();
    for (i, name, t) in folded.into_iter().rev() {
        g.nodes.remove(i);
        g.initializers.insert(name, t);
    }
    count
}

/// The explicit form: scale products folded ([`fold_scale_products`]) and a zero zero-point
/// added to every `DequantizeLinear` of constant 4-, 8- or 16-bit codes that has none (of the
/// codes' type, one per scale; int32 biases keep none, as written). Returns how many
/// zero-points were added.
pub fn explicit_qdq(g: &mut Graph) -> usize {
    fold_scale_products(g);
    let mut added = 0;
    for k in 0..g.nodes.len() {
        let n = &g.nodes[k];
        if !is_const_dq(g, n) || n.inputs.get(2).is_some_and(|z| !z.is_empty()) {
            continue;
        }
        let Some(scale) = n.inputs.get(1).and_then(|s| g.initializers.get(s)) else { continue };
        let shape = scale.shape.clone();
        let len = scale.len();
        let zeros = match g.initializers[&n.inputs[0]].data {
            Data::I8(_) => Tensor { shape, data: Data::I8(vec![0; len]) },
            Data::U8(_) => Tensor { shape, data: Data::U8(vec![0; len]) },
            Data::I4(_) => Tensor { shape, data: Data::I4(vec![0; len]) },
            Data::U4(_) => Tensor { shape, data: Data::U4(vec![0; len]) },
            Data::I16(_) => Tensor { shape, data: Data::I16(vec![0; len]) },
            Data::U16(_) => Tensor { shape, data: Data::U16(vec![0; len]) },
            _ => continue,
        };
        let mut name = format!("{}_zero_point", n.inputs[0]);
        while g.initializers.contains_key(&name) {
            name.push('_');
        }
        g.initializers.insert(name.clone(), zeros);
        let n = &mut g.nodes[k];
        n.inputs.resize(2, String::new());
        n.inputs.push(name);
        added += 1;
    }
    added
}

/// A `DequantizeLinear` whose codes are a constant.
fn is_const_dq(g: &Graph, n: &Node) -> bool {
    n.is(OpKind::DequantizeLinear) && n.inputs.first().is_some_and(|x| g.initializers.contains_key(x))
}
