//! A model at a glance: what `qplay inspect` prints and the page's model summary shows.

use super::{Graph, ValueInfo};
use crate::ops::Registry;
use serde::Serialize;
use std::collections::BTreeMap;

/// One graph input or output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IoSummary {
    /// Tensor name.
    pub name: String,
    /// Element type name (`float32`, …).
    pub dtype: &'static str,
    /// Dimensions; `null` for a dynamic one.
    pub shape: Vec<Option<usize>>,
}

impl From<&ValueInfo> for IoSummary {
    fn from(v: &ValueInfo) -> Self {
        IoSummary { name: v.name.clone(), dtype: super::tensor::onnx_dtype_name(v.elem_type), shape: v.shape.clone() }
    }
}

/// A quantized tensor an integer model's layer writes, with the file's own quantization: what a
/// full-integer TFLite model's `qplay.tfl.*` ops carry (TFLite's scales and zero points).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantizedTensor {
    /// The tensor.
    pub tensor: String,
    /// The op that writes it.
    pub op: String,
    /// Its scale Δ.
    pub scale: f32,
    /// Its zero point Z.
    pub zero_point: i64,
    /// The layer's weight scales (one per output channel, or one), when it has weights.
    pub weight_scales: usize,
    /// Their smallest and largest.
    pub weight_scale_range: Option<[f32; 2]>,
}

/// What a model's layers compute in, as loaded: float, quantized values (an ONNX INT8 export:
/// QDQ, QOperator or dynamic quantization) or TFLite's integer kernels (a full-integer file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arithmetic {
    /// No quantized op: a float model (FP32 or FP16 weights).
    Float,
    /// Some layers run on quantized values (Q/DQ pairs, QLinear*, *Integer ops).
    Quantized,
    /// TFLite's integer kernels (`qplay.tfl.*`): no float layer at all.
    FullInteger,
}

impl Arithmetic {
    /// Of a loaded graph.
    pub fn of(graph: &Graph) -> Arithmetic {
        if graph.nodes.iter().any(|n| crate::ops::tflite::is_tflite_op(&n.op_type)) {
            Arithmetic::FullInteger
        } else if graph.nodes.iter().any(super::Node::is_quantized_op) {
            Arithmetic::Quantized
        } else {
            Arithmetic::Float
        }
    }
}

/// Inputs, outputs, op histogram, parameters and unsupported ops of a graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Producer, as written in the file.
    pub producer: String,
    /// Default-domain opset.
    pub opset: i64,
    /// The file's format and version: "ONNX opset 17", "TFLite v3".
    pub format: String,
    /// Runtime inputs.
    pub inputs: Vec<IoSummary>,
    /// Graph outputs.
    pub outputs: Vec<IoSummary>,
    /// Number of nodes.
    pub nodes: usize,
    /// What its layers compute in.
    pub arithmetic: Arithmetic,
    /// Op type → node count, sorted by op type.
    pub ops: BTreeMap<String, usize>,
    /// Elements in all constant tensors (weights, biases, shape constants), but the tables
    /// qplay computes for `qplay.Lookup` (derived from other parameters, not the file's).
    pub parameters: usize,
    /// Bytes of all constant tensors.
    pub parameter_bytes: usize,
    /// Op types qplay cannot run, each with the first node that uses it.
    pub unsupported: Vec<(String, String)>,
    /// What loading changed (e.g. float16 weights converted to float32), in plain words.
    pub notes: Vec<String>,
    /// The quantization the file itself carries, layer by layer (full-integer TFLite models; empty
    /// for float and QDQ models, whose quantization is in their Q/DQ nodes).
    pub quantized: Vec<QuantizedTensor>,
    /// The file's metadata (`metadata_props`), in file order.
    pub metadata: Vec<(String, String)>,
}

impl Summary {
    /// Summarises a loaded graph against the ops a registry supports.
    pub fn of(graph: &Graph, registry: &Registry) -> Summary {
        let mut ops = BTreeMap::new();
        let mut unsupported: Vec<(String, String)> = Vec::new();
        for n in &graph.nodes {
            let count = ops.entry(n.op_type.clone()).or_insert(0);
            *count += 1;
            // First node of an op type (a set lookup, so many distinct op types stay linear).
            if *count == 1 && registry.get(&n.op_type).is_none() {
                unsupported.push((n.op_type.clone(), n.name.clone()));
            }
        }
        let tables: std::collections::HashSet<&str> = graph
            .nodes
            .iter()
            .filter(|n| n.is(super::OpKind::Lookup))
            .filter_map(|n| n.inputs.get(1).map(String::as_str))
            .collect();
        let params = || graph.initializers.iter().filter(|(k, _)| !tables.contains(k.as_str())).map(|(_, t)| t);
        Summary {
            producer: graph.producer.clone(),
            opset: graph.opset,
            format: graph.format.describe(graph.opset),
            inputs: graph.inputs.iter().map(IoSummary::from).collect(),
            outputs: graph.outputs.iter().map(IoSummary::from).collect(),
            nodes: graph.nodes.len(),
            arithmetic: Arithmetic::of(graph),
            ops,
            parameters: params().map(|t| t.len()).sum(),
            parameter_bytes: params().map(|t| t.byte_size()).sum(),
            unsupported,
            notes: graph.load_notes.clone(),
            quantized: graph.nodes.iter().filter_map(quantized_output).collect(),
            // Long values (Ultralytics' `args`) are cut for display.
            metadata: graph
                .metadata
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        if v.chars().count() > 300 {
                            v.chars().take(300).collect::<String>() + "…"
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The output quantization a node carries as attributes (`y_scale`, `y_zp`; weights `w_scales`).
fn quantized_output(n: &super::Node) -> Option<QuantizedTensor> {
    let scale = n.attrs.float_opt("y_scale")?;
    let zero_point = n.attrs.int_opt("y_zp")?;
    let w = n.attrs.floats("w_scales").unwrap_or(&[]);
    let range = w.iter().fold(None, |r: Option<[f32; 2]>, &v| Some(r.map_or([v, v], |[a, b]| [a.min(v), b.max(v)])));
    Some(QuantizedTensor {
        // (the loader renames an int8 graph input `NAME__q` behind its float twin `NAME`)
        tensor: n.outputs.first()?.trim_end_matches("__q").to_string(),
        op: n.op_type.clone(),
        scale,
        zero_point,
        weight_scales: w.len(),
        weight_scale_range: range,
    })
}
