//! ONNX out: a [`Graph`] back to `.onnx` bytes (every tensor inline, as `raw_data`). Used to
//! export quantized (QDQ) models that onnxruntime and other tools load.

use super::proto::{
    attribute_type as at, tensor_shape_proto::dimension, tensor_shape_proto::Dimension, type_proto, AttributeProto,
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};
use super::{Attr, Data, Graph, Tensor, ValueInfo};
use prost::Message;

/// ONNX IR version written (IR 8 = ONNX 1.13+, read by every onnxruntime of the last years).
pub const IR_VERSION: i64 = 8;

/// A tensor as a `TensorProto` with little-endian `raw_data`.
pub fn tensor_proto(name: &str, t: &Tensor) -> TensorProto {
    let raw: Vec<u8> = match &t.data {
        Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::U8(v) => v.clone(),
        Data::I8(v) => v.iter().map(|&x| x as u8).collect(),
        Data::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::Bool(v) => v.iter().map(|&x| x as u8).collect(),
        Data::U4(v) => super::tensor::pack_nibbles(v.iter().copied()),
        Data::I4(v) => super::tensor::pack_nibbles(v.iter().map(|&x| x as u8)),
    };
    TensorProto {
        dims: t.shape.iter().map(|&d| d as i64).collect(),
        data_type: t.dtype().onnx_code(),
        name: name.to_string(),
        raw_data: raw,
        ..Default::default()
    }
}

fn attr_proto(name: &str, a: &Attr, domains: &mut Vec<String>) -> AttributeProto {
    let mut p = AttributeProto { name: name.to_string(), ..Default::default() };
    match a {
        Attr::Int(v) => (p.i, p.r#type) = (Some(*v), at::INT),
        Attr::Float(v) => (p.f, p.r#type) = (Some(*v), at::FLOAT),
        Attr::String(s) => (p.s, p.r#type) = (Some(s.as_bytes().to_vec()), at::STRING),
        Attr::Tensor(t) => (p.t, p.r#type) = (Some(tensor_proto("", t)), at::TENSOR),
        Attr::Ints(v) => (p.ints, p.r#type) = (v.clone(), at::INTS),
        Attr::Floats(v) => (p.floats, p.r#type) = (v.clone(), at::FLOATS),
        Attr::Strings(v) => (p.strings, p.r#type) = (v.iter().map(|s| s.as_bytes().to_vec()).collect(), at::STRINGS),
        // A branch reads outer values by name, as ONNX has it: only its declared inputs.
        Attr::Graph(g) => {
            (p.g, p.r#type) = (Some(graph_proto(g, name, &Default::default(), domains, false)), at::GRAPH)
        }
    }
    p
}

fn value_info(v: &ValueInfo) -> ValueInfoProto {
    let dims = v
        .shape
        .iter()
        .enumerate()
        .map(|(i, d)| Dimension {
            value: Some(match d {
                Some(n) => dimension::Value::DimValue(*n as i64),
                None => dimension::Value::DimParam(format!("{}_d{i}", v.name)),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: v.name.clone(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: v.elem_type,
                shape: Some(TensorShapeProto { dim: dims }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// float32 → float16 bits, rounding to nearest even (overflow to ±infinity, NaN kept a NaN); the
/// inverse of the loader's widening for every value float16 can hold.
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 | (man >> 13) as u16 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    // Normal or subnormal in float16: the mantissa with its implicit bit, shifted into place.
    let (m, shift) = if e <= 0 { (man | 0x80_0000, (14 - e) as u32) } else { (man, 13) };
    if shift > 24 {
        return sign;
    }
    let half = 1u32 << (shift - 1);
    let rest = m & ((1u32 << shift) - 1);
    let mut h = (m >> shift) + if rest > half || (rest == half && (m >> shift) & 1 == 1) { 1 } else { 0 };
    if e > 0 {
        h += (e as u32) << 10; // a carry out of the mantissa moves into the exponent, as it should
    }
    sign | h as u16
}

/// Serialises a graph as an ONNX model (default domain at the graph's opset; nodes whose op type
/// carries a `domain::` prefix are written in that domain).
pub fn save_onnx(g: &Graph, producer: &str) -> Vec<u8> {
    save_onnx_with(g, producer, &Default::default())
}

/// [`save_onnx`], writing the float32 initializers named in `half` as float16 (rounded to
/// nearest even): for a model that came as float16, so that what quantization leaves in float
/// goes back in the source precision (the graph must read them through a `Cast` to float).
pub fn save_onnx_with(g: &Graph, producer: &str, half: &std::collections::HashSet<String>) -> Vec<u8> {
    let mut domains: Vec<String> = Vec::new();
    let graph = graph_proto(g, "qplay", half, &mut domains, true);
    let mut opset_import = vec![OperatorSetIdProto { domain: String::new(), version: g.opset }];
    opset_import.extend(domains.into_iter().map(|d| OperatorSetIdProto { domain: d, version: 1 }));
    let m = ModelProto {
        ir_version: IR_VERSION,
        producer_name: producer.to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        graph: Some(graph),
        opset_import,
        metadata_props: g
            .metadata
            .iter()
            .map(|(key, value)| StringStringEntryProto { key: key.clone(), value: value.clone() })
            .collect(),
        ..Default::default()
    };
    m.encode_to_vec()
}

/// A graph (the model's, or a subgraph: `inputs` false writes none, its `inputs` being the
/// outer values it reads) as a `GraphProto`; the domains its nodes use are added to `domains`.
fn graph_proto(
    g: &Graph,
    name: &str,
    half: &std::collections::HashSet<String>,
    domains: &mut Vec<String>,
    inputs: bool,
) -> GraphProto {
    let mut names: Vec<&String> = g.initializers.keys().collect();
    names.sort();
    let node = g
        .nodes
        .iter()
        .map(|n| {
            let (domain, op) = match n.op_type.split_once("::") {
                Some((d, o)) => (d.to_string(), o.to_string()),
                None => (String::new(), n.op_type.clone()),
            };
            if !domain.is_empty() && !domains.contains(&domain) {
                domains.push(domain.clone());
            }
            let mut attrs: Vec<(&String, &Attr)> = n.attrs.0.iter().collect();
            attrs.sort_by(|a, b| a.0.cmp(b.0));
            NodeProto {
                input: n.inputs[..n.inputs.len() - n.captured().min(n.inputs.len())].to_vec(),
                output: n.outputs.clone(),
                name: n.name.clone(),
                op_type: op,
                domain,
                attribute: attrs.into_iter().map(|(k, a)| attr_proto(k, a, domains)).collect(),
                ..Default::default()
            }
        })
        .collect();
    GraphProto {
        node,
        name: name.into(),
        initializer: names
            .into_iter()
            .map(|n| match (&g.initializers[n].data, half.contains(n)) {
                (Data::F32(v), true) => TensorProto {
                    dims: g.initializers[n].shape.iter().map(|&d| d as i64).collect(),
                    data_type: 10,
                    name: n.clone(),
                    raw_data: v.iter().flat_map(|&x| f32_to_f16(x).to_le_bytes()).collect(),
                    ..Default::default()
                },
                _ => tensor_proto(n, &g.initializers[n]),
            })
            .collect(),
        // A subgraph declares its own inputs only (a Loop body's), not the outer values it reads.
        input: g.inputs[..if inputs { g.inputs.len() } else { g.formal_inputs.min(g.inputs.len()) }]
            .iter()
            .map(value_info)
            .collect(),
        output: g.outputs.iter().map(value_info).collect(),
        ..Default::default()
    }
}
