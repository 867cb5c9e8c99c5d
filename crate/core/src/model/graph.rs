//! The graph IR: named tensors flowing between nodes, independent of ONNX's protobuf types.

use super::{ModelError, Tensor};
use std::collections::HashMap;

/// One attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    /// `i`
    Int(i64),
    /// `f`
    Float(f32),
    /// `s`
    String(String),
    /// `t`
    Tensor(Tensor),
    /// `ints`
    Ints(Vec<i64>),
    /// `floats`
    Floats(Vec<f32>),
    /// `strings`
    Strings(Vec<String>),
    /// `g`: a subgraph (an `If` node's `then_branch` / `else_branch`). Its `inputs` list the
    /// outer-scope values it reads, in the order the node lists them after its own inputs
    /// ([`Node::captured`]); ONNX leaves them implicit, qplay makes them explicit when loading so
    /// that sorting, dead-code elimination and every pass see the dependency.
    Graph(Box<Graph>),
}

/// A node's attributes, with typed getters that produce useful errors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attrs(pub HashMap<String, Attr>);

impl Attrs {
    /// An int attribute or a default.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        match self.0.get(name) {
            Some(Attr::Int(v)) => *v,
            _ => default,
        }
    }
    /// An int attribute, if present.
    pub fn int_opt(&self, name: &str) -> Option<i64> {
        match self.0.get(name) {
            Some(Attr::Int(v)) => Some(*v),
            _ => None,
        }
    }
    /// A float attribute or a default.
    pub fn float(&self, name: &str, default: f32) -> f32 {
        match self.0.get(name) {
            Some(Attr::Float(v)) => *v,
            Some(Attr::Int(v)) => *v as f32,
            _ => default,
        }
    }
    /// A float attribute, if present.
    pub fn float_opt(&self, name: &str) -> Option<f32> {
        match self.0.get(name) {
            Some(Attr::Float(v)) => Some(*v),
            _ => None,
        }
    }
    /// An ints attribute, if present.
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        match self.0.get(name) {
            Some(Attr::Ints(v)) => Some(v),
            _ => None,
        }
    }
    /// A floats attribute, if present.
    pub fn floats(&self, name: &str) -> Option<&[f32]> {
        match self.0.get(name) {
            Some(Attr::Floats(v)) => Some(v),
            _ => None,
        }
    }
    /// A string attribute or a default.
    pub fn string<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        match self.0.get(name) {
            Some(Attr::String(v)) => v,
            _ => default,
        }
    }
    /// A subgraph attribute, if present.
    pub fn graph(&self, name: &str) -> Option<&Graph> {
        match self.0.get(name) {
            Some(Attr::Graph(g)) => Some(g),
            _ => None,
        }
    }
    /// A tensor attribute, if present.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        match self.0.get(name) {
            Some(Attr::Tensor(t)) => Some(t),
            _ => None,
        }
    }
}

/// One operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Unique name (generated as `<op_type>_<index>` when the file has none).
    pub name: String,
    /// ONNX op type, e.g. `Conv`.
    pub op_type: String,
    /// Input tensor names; `""` marks an omitted optional input.
    pub inputs: Vec<String>,
    /// Output tensor names.
    pub outputs: Vec<String>,
    /// Attributes.
    pub attrs: Attrs,
    /// What plan-time fusion passes folded into this node ([`crate::model::passes`]); empty in
    /// a loaded graph. Not an ONNX attribute: a graph with fusions is plan-internal and is not
    /// saved.
    pub fused: Fused,
}

impl Node {
    /// How many of the node's inputs, at the end of its list, are outer-scope values its
    /// subgraphs read (captured when loading; see [`Attr::Graph`]); 0 for a node without
    /// subgraphs. Saving writes the node without them.
    pub fn captured(&self) -> usize {
        self.attrs
            .0
            .values()
            .find_map(
                |a| if let Attr::Graph(g) = a { Some(g.inputs.len().saturating_sub(g.formal_inputs)) } else { None },
            )
            .unwrap_or(0)
    }
}

/// An activation a fusion pass folded into the node that feeds it (today a `Conv`), applied
/// in that node's store. Typed fields, so nothing re-parses them from attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fused {
    /// Lower bound of a fused `Relu` (0) or `Clip`.
    pub min: Option<f32>,
    /// Upper bound of a fused `Clip`.
    pub max: Option<f32>,
    /// Per-output-channel (or one shared) upper bounds of a fused `Min` with a constant.
    pub channel_max: Option<Vec<f32>>,
}

impl Fused {
    /// Whether nothing is fused.
    pub fn is_empty(&self) -> bool {
        self.min.is_none() && self.max.is_none() && self.channel_max.is_none()
    }
}

/// A graph input or output: a name, an element type and a shape whose unknown (dynamic)
/// dimensions are `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueInfo {
    /// Tensor name.
    pub name: String,
    /// Element type code as ONNX gives it (1 = float32).
    pub elem_type: i32,
    /// Dimensions; `None` for a symbolic or missing one.
    pub shape: Vec<Option<usize>>,
}

/// A whole model: nodes in topological order, constant tensors, inputs and outputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    /// Nodes, topologically sorted (every input is produced before it is read).
    pub nodes: Vec<Node>,
    /// Constant tensors (initializers and `Constant` nodes), by name.
    pub initializers: HashMap<String, Tensor>,
    /// Runtime inputs (initializers that old exporters also list as inputs are not here).
    pub inputs: Vec<ValueInfo>,
    /// Graph outputs, in order.
    pub outputs: Vec<ValueInfo>,
    /// Default-domain opset version (for a TFLite file, the opset of the ONNX ops it is mapped to).
    pub opset: i64,
    /// The file format the graph was loaded from, for display ([`ModelFormat::describe`]).
    pub format: ModelFormat,
    /// Producer name and version, for display.
    pub producer: String,
    /// The file's `metadata_props`, in file order (Ultralytics writes `names`, `imgsz`, `stride`,
    /// `task`, `kpt_shape` there; [`crate::detect::auto`] reads them).
    pub metadata: Vec<(String, String)>,
    /// Notes on what loading changed, in plain words (e.g. float16 tensors converted to float32).
    pub load_notes: Vec<String>,
    /// For a subgraph, how many of [`Graph::inputs`] it declares itself (a `Loop` body's
    /// iteration number, condition and loop-carried values), before the outer values it reads
    /// ([`crate::model::subgraph`]); 0 for a model's graph and for `If` branches.
    pub formal_inputs: usize,
}

/// The format of the file a [`Graph`] was loaded from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ModelFormat {
    /// ONNX (graphs built in code too); its version is the graph's `opset`.
    #[default]
    Onnx,
    /// TFLite (a `.tflite` FlatBuffer) of this schema version.
    Tflite {
        /// The schema version (`Model.version`, 3 for every TFLite model since 2017).
        version: u32,
    },
}

impl ModelFormat {
    /// The format and version in a few words: "ONNX opset 17", "TFLite v3".
    pub fn describe(self, opset: i64) -> String {
        match self {
            ModelFormat::Onnx => format!("ONNX opset {opset}"),
            ModelFormat::Tflite { version } => format!("TFLite v{version}"),
        }
    }
}

impl Graph {
    /// Makes the runtime inputs named in `values` constants holding those values (initializers),
    /// so that planning folds what depends only on them and runs need the other inputs only: a
    /// detector's geometry inputs (`orig_target_sizes`, `scale_factor`, …), fixed once the input
    /// size is. Returns the inputs removed, in their order, for [`Graph::unbind_inputs`]. An
    /// error when a name is not a runtime input or a value's type differs from the input's.
    pub fn bind_inputs(&mut self, values: &[(String, Tensor)]) -> Result<Vec<ValueInfo>, ModelError> {
        let mut removed = Vec::new();
        for (name, t) in values {
            let Some(k) = self.inputs.iter().position(|v| v.name == *name) else {
                return Err(ModelError::Other(format!("`{name}` is not an input of the model")));
            };
            if t.dtype().onnx_code() != self.inputs[k].elem_type {
                return Err(ModelError::Other(format!(
                    "input `{name}` is {} but the value given for it is {:?}",
                    super::tensor::onnx_dtype_name(self.inputs[k].elem_type),
                    t.dtype()
                )));
            }
            removed.push(self.inputs.remove(k));
            self.initializers.insert(name.clone(), t.clone());
        }
        Ok(removed)
    }

    /// Undoes [`Graph::bind_inputs`]: the constants of these names become runtime inputs again
    /// (appended after the others), e.g. before a quantized graph bound for calibration is saved.
    pub fn unbind_inputs(&mut self, inputs: &[ValueInfo]) {
        for v in inputs {
            self.initializers.remove(&v.name);
            if !self.inputs.iter().any(|i| i.name == v.name) {
                self.inputs.push(v.clone());
            }
        }
    }

    /// Sorts `nodes` topologically (stable: keeps file order where it can). Errors on cycles and
    /// on inputs nothing produces.
    pub fn toposort(&mut self) -> Result<(), ModelError> {
        let mut produced: HashMap<&str, usize> = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for o in &n.outputs {
                if !o.is_empty() {
                    produced.insert(o, i);
                }
            }
        }
        // A set, not a scan of `inputs` per edge: a model with many inputs must not make this
        // quadratic (100,000 inputs took minutes).
        let input_names: std::collections::HashSet<&str> = self.inputs.iter().map(|v| v.name.as_str()).collect();
        let available =
            |name: &str| name.is_empty() || self.initializers.contains_key(name) || input_names.contains(name);
        let n = self.nodes.len();
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut indeg = vec![0usize; n];
        for (i, node) in self.nodes.iter().enumerate() {
            for inp in &node.inputs {
                if available(inp) {
                    continue;
                }
                match produced.get(inp.as_str()) {
                    Some(&j) => {
                        deps[j].push(i);
                        indeg[i] += 1;
                    }
                    None => return Err(ModelError::MissingInput { node: node.name.clone(), input: inp.clone() }),
                }
            }
        }
        // Kahn's algorithm with a min-heap on the original index: stable order.
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> =
            (0..n).filter(|&i| indeg[i] == 0).map(std::cmp::Reverse).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(std::cmp::Reverse(i)) = ready.pop() {
            order.push(i);
            for &j in &deps[i] {
                indeg[j] -= 1;
                if indeg[j] == 0 {
                    ready.push(std::cmp::Reverse(j));
                }
            }
        }
        if order.len() != n {
            let stuck = (0..n).find(|&i| indeg[i] > 0).map(|i| self.nodes[i].name.clone()).unwrap_or_default();
            return Err(ModelError::Cycle(stuck));
        }
        let mut old: Vec<Option<Node>> = std::mem::take(&mut self.nodes).into_iter().map(Some).collect();
        self.nodes = order.into_iter().map(|i| old[i].take().expect("each index once")).collect();
        Ok(())
    }
}
