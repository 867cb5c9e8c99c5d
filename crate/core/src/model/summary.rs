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
            ops,
            parameters: params().map(|t| t.len()).sum(),
            parameter_bytes: params().map(|t| t.byte_size()).sum(),
            unsupported,
            notes: graph.load_notes.clone(),
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
