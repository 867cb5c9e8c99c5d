//! ONNX file → [`Graph`]: decode the protobuf, validate everything a hostile or broken file
//! could get wrong, and convert it to the IR.
//!
//! What loading guarantees about the returned graph:
//! - every initializer's data matches its declared dims (checked *before* anything is allocated
//!   for it, so a tiny file cannot claim a multi-gigabyte tensor and make us allocate it);
//! - `Constant` nodes are gone: their values are initializers;
//! - initializers that old exporters also list as graph inputs are constants, not inputs;
//! - every node has a unique name (`<op_type>_<index>` when the file has none);
//! - every tensor is produced once, and nodes are in topological order.
//!
//! Nodes of a domain other than the default one keep their op type prefixed with the domain
//! (`com.microsoft::FusedConv`), so that planning reports them as unsupported, naming the domain.
//! An `If` node's branches are loaded as subgraphs ([`Attr::Graph`], [`super::subgraph`]), the
//! outer values they read appended to the node's inputs. Other attributes qplay has no
//! representation for (the graphs of `Loop` and `Scan`, tensor lists, sparse tensors, type
//! protos) are dropped: the ops that use them are not supported anyway.

use super::proto::tensor_shape_proto::dimension::Value as Dim;
use super::proto::{
    attribute_type as at, type_proto, AttributeProto, ModelProto, NodeProto, TensorProto, ValueInfoProto,
};
use super::tensor::onnx_dtype_name;
use super::{Attr, Attrs, DType, Data, Graph, ModelError, Node, Tensor, ValueInfo};
use crate::model::OpKind;
use crate::ops::OpError;
use prost::Message;
use std::collections::{HashMap, HashSet};

/// Default-domain opsets qplay's op builders are written against. Opsets 22–28 (onnx 1.23.2)
/// change, for the ops qplay runs, only the types an op accepts (bfloat16, float8, 4-bit) and add
/// attributes that only matter for those types (Cast's `round_mode`, QuantizeLinear's `precision`,
/// DequantizeLinear's `output_dtype`, Range's `stash_type`); `tests/conformance` runs the cases
/// written at those opsets as they are.
pub const SUPPORTED_OPSETS: std::ops::RangeInclusive<i64> = 9..=28;

/// Default for [`Limits::max_tensor_elements`]; planning applies it to every tensor a plan
/// computes, too.
pub const DEFAULT_MAX_TENSOR_ELEMENTS: usize = 256 << 20;

/// Resource limits applied while loading, so that a malicious or corrupt file fails with a clear
/// message instead of exhausting memory (the wasm build has at most 4 GiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted file, in bytes (default 512 MiB).
    pub max_file_bytes: usize,
    /// Most elements in any one tensor (default 256 Mi, i.e. 1 GiB of float32).
    pub max_tensor_elements: usize,
    /// Most nodes in the graph (default 100 000).
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_file_bytes: 512 << 20, max_tensor_elements: DEFAULT_MAX_TENSOR_ELEMENTS, max_nodes: 100_000 }
    }
}

impl Limits {
    /// The file-size limit, checked before a loader reads anything (ONNX and TFLite alike).
    pub(crate) fn check_file_size(&self, len: usize) -> Result<(), ModelError> {
        if len > self.max_file_bytes {
            return Err(ModelError::Limit(format!(
                "the model file is {len} bytes, more than the limit of {} bytes: use a smaller model",
                self.max_file_bytes
            )));
        }
        Ok(())
    }
}

/// Loads an ONNX model from the bytes of a `.onnx` file, with the default [`Limits`].
///
/// Never panics: random bytes, truncated files and protobufs that are not models all give
/// [`ModelError::NotOnnx`]; other problems give the variant that says what to fix.
pub fn load_onnx(bytes: &[u8]) -> Result<Graph, ModelError> {
    load_onnx_with_limits(bytes, &Limits::default())
}

/// [`load_onnx`] with explicit resource limits.
pub fn load_onnx_with_limits(bytes: &[u8], limits: &Limits) -> Result<Graph, ModelError> {
    limits.check_file_size(bytes.len())?;
    if bytes.is_empty() {
        return Err(ModelError::NotOnnx("the file is empty".into()));
    }
    let model = ModelProto::decode(bytes).map_err(|e| {
        ModelError::NotOnnx(format!(
            "the data does not decode as an ONNX protobuf ({e}); check that the file is a complete `.onnx` \
             model, not truncated and not another format (TFLite, TensorFlow, PyTorch)"
        ))
    })?;
    let ModelProto { ir_version, producer_name, producer_version, graph, opset_import, metadata_props, .. } = model;
    let Some(graph) = graph else {
        return Err(ModelError::NotOnnx(
            "it has no graph; the file may be truncated or a different protobuf message".into(),
        ));
    };
    if ir_version <= 0 {
        return Err(ModelError::NotOnnx("it declares no IR version; the file may be truncated or corrupt".into()));
    }
    let opset =
        opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map(|o| o.version).ok_or_else(
            || {
                ModelError::NotOnnx(
                    "it imports no opset of the default ONNX domain; the file may be truncated or corrupt".into(),
                )
            },
        )?;
    if !SUPPORTED_OPSETS.contains(&opset) {
        return Err(ModelError::Opset(opset));
    }
    if graph.node.len() > limits.max_nodes {
        return Err(ModelError::Limit(format!(
            "the graph has {} nodes, more than the limit of {}: use a smaller model",
            graph.node.len(),
            limits.max_nodes
        )));
    }
    if graph.output.is_empty() {
        return Err(ModelError::NotOnnx("its graph has no outputs".into()));
    }

    let mut codes: Vec<i32> = graph.initializer.iter().map(|t| t.data_type).collect();
    for n in &graph.node {
        codes.extend(n.attribute.iter().filter_map(|a| a.t.as_ref()).map(|t| t.data_type));
    }
    codes.sort_unstable();
    codes.dedup();
    let mut initializers: HashMap<String, Tensor> = HashMap::with_capacity(graph.initializer.len());
    // Consumed one by one, so each proto's data is freed as soon as it is converted.
    for t in graph.initializer {
        if t.name.is_empty() {
            return Err(ModelError::BadTensor { name: String::new(), reason: "an initializer has no name".into() });
        }
        let name = t.name.clone();
        let tensor = convert_tensor(t, &name, limits)?;
        if initializers.insert(name.clone(), tensor).is_some() {
            return Err(ModelError::BadTensor { name, reason: "is defined twice as an initializer".into() });
        }
    }

    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut names: HashSet<String> = HashSet::with_capacity(graph.node.len());
    for (index, n) in graph.node.into_iter().enumerate() {
        let node = convert_node(n, index, &mut names, limits, 0)?;
        if node.is(OpKind::Constant) {
            let (name, value) = constant_value(node)?;
            if initializers.contains_key(&name) {
                return Err(produced_twice(&name));
            }
            initializers.insert(name, value);
        } else {
            nodes.push(node);
        }
    }

    let inputs: Vec<ValueInfo> =
        graph.input.into_iter().filter(|v| !initializers.contains_key(&v.name)).map(convert_value_info).collect();
    let outputs: Vec<ValueInfo> = graph.output.into_iter().map(convert_value_info).collect();

    // SSA: each tensor has exactly one source (an input, an initializer or one node's output).
    let mut sources: HashSet<&str> = initializers.keys().map(String::as_str).collect();
    for v in &inputs {
        if !v.name.is_empty() && !sources.insert(&v.name) {
            return Err(produced_twice(&v.name));
        }
    }
    for n in &nodes {
        for o in n.outputs.iter().filter(|o| !o.is_empty()) {
            if !sources.insert(o) {
                return Err(produced_twice(o));
            }
        }
    }

    let producer = match (producer_name.is_empty(), producer_version.is_empty()) {
        (false, false) => format!("{producer_name} {producer_version}"),
        _ => format!("{producer_name}{producer_version}"),
    };
    let metadata = metadata_props.into_iter().map(|e| (e.key, e.value)).collect();
    let mut g = Graph { nodes, initializers, inputs, outputs, opset, producer, metadata, ..Default::default() };
    widen_float_types(&mut g, &codes);
    g.toposort()?;
    Ok(g)
}

pub(super) fn produced_twice(name: &str) -> ModelError {
    ModelError::Other(format!(
        "tensor `{name}` is assigned more than once (by several nodes, initializers or inputs): \
         the model is invalid; check it with onnx.checker.check_model"
    ))
}

/// Converts one node; `names` keeps node names unique (over subgraphs too); `depth` is how
/// many `If` branches the node is nested in.
pub(super) fn convert_node(
    n: NodeProto,
    index: usize,
    names: &mut HashSet<String>,
    limits: &Limits,
    depth: usize,
) -> Result<Node, ModelError> {
    let NodeProto { input, output, name, op_type, attribute, domain, .. } = n;
    let mut name = if name.is_empty() { format!("{op_type}_{index}") } else { name };
    if names.contains(&name) {
        let base = name;
        name = (0..).map(|k| format!("{base}_{index}_{k}")).find(|c| !names.contains(c)).unwrap_or(base);
    }
    names.insert(name.clone());
    let op_type = if domain.is_empty() || domain == "ai.onnx" { op_type } else { format!("{domain}::{op_type}") };
    let branches = matches!(OpKind::of(&op_type), Some(OpKind::If | OpKind::Loop));
    let mut attrs = Attrs::default();
    for mut a in attribute {
        let attr_name = a.name.clone();
        if let (true, Some(g)) = (branches, a.g.take()) {
            let sub = super::subgraph::convert_subgraph(g, &name, names, limits, depth + 1)?;
            attrs.0.insert(attr_name, Attr::Graph(Box::new(sub)));
        } else if let Some(v) = convert_attr(a, &name, limits)? {
            attrs.0.insert(attr_name, v);
        }
    }
    let mut node = Node { name, op_type, inputs: input, outputs: output, attrs, fused: Default::default() };
    if branches {
        super::subgraph::capture_outer_values(&mut node)?;
    }
    Ok(node)
}

/// Converts an attribute; `None` for kinds qplay has no representation for.
fn convert_attr(a: AttributeProto, node: &str, limits: &Limits) -> Result<Option<Attr>, ModelError> {
    let kind = if a.r#type != at::UNDEFINED {
        a.r#type
    } else if a.f.is_some() {
        at::FLOAT
    } else if a.i.is_some() {
        at::INT
    } else if a.s.is_some() {
        at::STRING
    } else if a.t.is_some() {
        at::TENSOR
    } else if !a.floats.is_empty() {
        at::FLOATS
    } else if !a.ints.is_empty() {
        at::INTS
    } else if !a.strings.is_empty() {
        at::STRINGS
    } else {
        at::UNDEFINED
    };
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Ok(Some(match kind {
        at::FLOAT => Attr::Float(a.f.unwrap_or_default()),
        at::INT => Attr::Int(a.i.unwrap_or_default()),
        at::STRING => Attr::String(text(a.s.unwrap_or_default())),
        at::FLOATS => Attr::Floats(a.floats),
        at::INTS => Attr::Ints(a.ints),
        at::STRINGS => Attr::Strings(a.strings.into_iter().map(text).collect()),
        at::TENSOR => match a.t {
            Some(t) => {
                let label = if t.name.is_empty() { format!("{node}.{}", a.name) } else { t.name.clone() };
                Attr::Tensor(convert_tensor(t, &label, limits)?)
            }
            None => {
                return Err(ModelError::BadTensor {
                    name: format!("{node}.{}", a.name),
                    reason: "the tensor attribute has no value".into(),
                })
            }
        },
        _ => return Ok(None),
    }))
}

/// The initializer a `Constant` node stands for: its output name and value.
pub(super) fn constant_value(node: Node) -> Result<(String, Tensor), ModelError> {
    let out = node
        .outputs
        .first()
        .filter(|o| !o.is_empty())
        .cloned()
        .ok_or_else(|| ModelError::at(&node, OpError::malformed("a Constant node must have one output")))?;
    let mut attrs = node.attrs.0;
    let value = if let Some(Attr::Tensor(t)) = attrs.remove("value") {
        t
    } else if let Some(Attr::Float(v)) = attrs.remove("value_float") {
        Tensor::scalar_f32(v)
    } else if let Some(Attr::Floats(v)) = attrs.remove("value_floats") {
        Tensor { shape: vec![v.len()], data: Data::F32(v) }
    } else if let Some(Attr::Int(v)) = attrs.remove("value_int") {
        Tensor { shape: vec![], data: Data::I64(vec![v]) }
    } else if let Some(Attr::Ints(v)) = attrs.remove("value_ints") {
        Tensor::vec_i64(v)
    } else {
        return Err(ModelError::BadTensor {
            name: out,
            reason: format!(
                "Constant node `{}` has none of the attributes value, value_float(s), value_int(s) \
                 (string and sparse constants are not supported)",
                node.name
            ),
        });
    };
    Ok((out, value))
}

/// Graph input/output type: element type code and dims (`None` for symbolic or unknown ones).
/// A value without a tensor type gets element type 0 and no dims.
pub(super) fn convert_value_info(v: ValueInfoProto) -> ValueInfo {
    let (elem_type, shape) = match v.r#type.and_then(|t| t.value) {
        Some(type_proto::Value::TensorType(t)) => {
            let shape = t
                .shape
                .map(|s| {
                    s.dim
                        .iter()
                        .map(|d| match d.value {
                            Some(Dim::DimValue(n)) if n > 0 => usize::try_from(n).ok(),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            (t.elem_type, shape)
        }
        None => (0, Vec::new()),
    };
    ValueInfo { name: v.name, elem_type, shape }
}

/// Converts a tensor, checking its dims against its data before allocating anything for it.
/// `label` names it in errors (initializer name, or `node.attribute` for unnamed attribute tensors).
pub(super) fn convert_tensor(t: TensorProto, label: &str, limits: &Limits) -> Result<Tensor, ModelError> {
    let bad = |reason: String| ModelError::BadTensor { name: label.to_string(), reason };
    if super::external::is_external(&t) {
        let location = super::external::location(&t).to_string();
        return Err(ModelError::ExternalData { tensor: label.to_string(), location });
    }
    // float16, bfloat16 and float64 become float32 here (qplay computes in float32).
    let wide = Wide::of(t.data_type);
    let dtype = match wide {
        Some(_) => DType::F32,
        None => DType::from_onnx(t.data_type).map_err(|_| {
            ModelError::UnsupportedDType(format!("{} (tensor `{label}`)", onnx_dtype_name(t.data_type)))
        })?,
    };
    let mut shape = Vec::with_capacity(t.dims.len());
    let mut count: u64 = 1;
    for &d in &t.dims {
        let d = u64::try_from(d).map_err(|_| bad(format!("dims {:?} contain a negative size", t.dims)))?;
        count = count
            .checked_mul(d)
            .ok_or_else(|| bad(format!("dims {:?} describe more elements than fit in 64 bits", t.dims)))?;
        shape.push(usize::try_from(d).map_err(|_| bad(format!("dims {:?} are too large for this platform", t.dims)))?);
    }
    let n = usize::try_from(count)
        .map_err(|_| bad(format!("dims {:?} describe more elements than this platform can address", t.dims)))?;
    if n > limits.max_tensor_elements {
        return Err(ModelError::Limit(format!(
            "tensor `{label}` has {n} elements, more than the limit of {}: use a smaller model",
            limits.max_tensor_elements
        )));
    }
    let TensorProto { raw_data, float_data, int32_data, int64_data, double_data, .. } = t;
    let mismatch = |held: usize, unit: &str| {
        bad(format!("its dims {shape:?} declare {n} elements, but it holds {held} {unit} of {dtype:?} data"))
    };
    if let Some(w) = wide {
        let data = if !raw_data.is_empty() {
            if Some(raw_data.len()) != n.checked_mul(w.size()) {
                return Err(mismatch(raw_data.len(), "bytes"));
            }
            w.decode_raw(&raw_data)
        } else {
            let held = if w == Wide::F64 { double_data.len() } else { int32_data.len() };
            if held != n {
                return Err(mismatch(held, "values"));
            }
            match w {
                Wide::F64 => double_data.iter().map(|&v| v as f32).collect(),
                // float16 / bfloat16 values are stored as their bits in int32_data.
                _ => int32_data.iter().map(|&b| w.bits_to_f32(b as u16)).collect(),
            }
        };
        return Ok(Tensor { shape, data: Data::F32(data) });
    }
    let data = if let (DType::U4 | DType::I4, false) = (dtype, raw_data.is_empty()) {
        // Packed two per byte, low nibble first; an odd count leaves the last high nibble unused.
        let signed = dtype == DType::I4;
        let v = crate::model::tensor::unpack_nibbles(&raw_data, n, signed).map_err(bad)?;
        if signed {
            Data::I4(v.into_iter().map(|b| b as i8).collect())
        } else {
            Data::U4(v)
        }
    } else if !raw_data.is_empty() {
        let expected = n.checked_mul(dtype.size()).ok_or_else(|| mismatch(raw_data.len(), "bytes"))?;
        if raw_data.len() != expected {
            return Err(mismatch(raw_data.len(), "bytes"));
        }
        decode_raw(dtype, raw_data)
    } else {
        let held = match dtype {
            DType::F32 => float_data.len(),
            DType::I64 => int64_data.len(),
            DType::U8 | DType::I8 | DType::U16 | DType::I16 | DType::I32 | DType::Bool => int32_data.len(),
            // int32_data holds 4-bit values packed two per entry, low nibble first.
            DType::U4 | DType::I4 => int32_data.len() * 2 - usize::from(n % 2 == 1 && !int32_data.is_empty()),
        };
        if held != n {
            return Err(mismatch(held, "values"));
        }
        let range = |v: i32| bad(format!("value {v} is out of range for {dtype:?}"));
        match dtype {
            DType::F32 => Data::F32(float_data),
            DType::I64 => Data::I64(int64_data),
            DType::I32 => Data::I32(int32_data),
            DType::U8 => {
                Data::U8(int32_data.iter().map(|&v| u8::try_from(v).map_err(|_| range(v))).collect::<Result<_, _>>()?)
            }
            DType::I8 => {
                Data::I8(int32_data.iter().map(|&v| i8::try_from(v).map_err(|_| range(v))).collect::<Result<_, _>>()?)
            }
            DType::U16 => {
                Data::U16(int32_data.iter().map(|&v| u16::try_from(v).map_err(|_| range(v))).collect::<Result<_, _>>()?)
            }
            DType::I16 => {
                Data::I16(int32_data.iter().map(|&v| i16::try_from(v).map_err(|_| range(v))).collect::<Result<_, _>>()?)
            }
            DType::Bool => Data::Bool(int32_data.iter().map(|&v| v != 0).collect()),
            DType::U4 | DType::I4 => {
                let bytes =
                    int32_data.iter().map(|&v| u8::try_from(v).map_err(|_| range(v))).collect::<Result<Vec<_>, _>>()?;
                let v = crate::model::tensor::unpack_nibbles(&bytes, n, dtype == DType::I4).map_err(bad)?;
                if dtype == DType::I4 {
                    Data::I4(v.into_iter().map(|b| b as i8).collect())
                } else {
                    Data::U4(v)
                }
            }
        }
    };
    Ok(Tensor { shape, data })
}

/// Float types widened to float32 at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wide {
    F16,
    Bf16,
    F64,
}

impl Wide {
    /// For an ONNX element type code: 10 float16, 16 bfloat16, 11 double.
    pub(crate) fn of(code: i32) -> Option<Wide> {
        match code {
            10 => Some(Wide::F16),
            16 => Some(Wide::Bf16),
            11 => Some(Wide::F64),
            _ => None,
        }
    }

    fn size(self) -> usize {
        match self {
            Wide::F16 | Wide::Bf16 => 2,
            Wide::F64 => 8,
        }
    }

    fn decode_raw(self, raw: &[u8]) -> Vec<f32> {
        match self {
            Wide::F64 => {
                raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32).collect()
            }
            _ => raw.chunks_exact(2).map(|c| self.bits_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
        }
    }

    /// Exact: every float16 and bfloat16 value is a float32 value.
    fn bits_to_f32(self, b: u16) -> f32 {
        match self {
            Wide::Bf16 => f32::from_bits((b as u32) << 16),
            _ => f16_to_f32(b),
        }
    }
}

/// IEEE 754 half → single, exactly (subnormals, infinities and NaN included).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: m · 2^−24, exact in float32.
            let v = m as f32 * f32::from_bits(0x3380_0000); // 2^-24
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Widens float16/bfloat16/float64 graph inputs, outputs and `Cast` targets to float32, and says
/// so in the graph's load notes. Initializers and constants were widened as they were read.
fn widen_float_types(g: &mut Graph, initializer_codes: &[i32]) {
    let mut seen: Vec<&'static str> = Vec::new();
    let mut note = |code: i32| {
        let name = match Wide::of(code) {
            Some(Wide::F16) => "float16",
            Some(Wide::Bf16) => "bfloat16",
            Some(Wide::F64) => "float64",
            None => return false,
        };
        if !seen.contains(&name) {
            seen.push(name);
        }
        true
    };
    for &c in initializer_codes {
        note(c);
    }
    for v in g.inputs.iter_mut().chain(g.outputs.iter_mut()) {
        if note(v.elem_type) {
            v.elem_type = 1;
        }
    }
    for n in g.nodes.iter_mut().filter(|n| n.is(OpKind::Cast)) {
        if let Some(Attr::Int(to)) = n.attrs.0.get_mut("to") {
            if i32::try_from(*to).is_ok_and(&mut note) {
                *to = 1;
            }
        }
    }
    if !seen.is_empty() {
        if g.toposort().is_err() {
            return;
        }
        g.load_notes.push(format!(
            "{} tensors (weights, inputs, outputs, casts) were converted to float32 when loading: qplay computes in \
             float32, so results can differ from a {} runtime by that type's rounding; a quantized export writes the float tensors it keeps back as float16 when the model came as float16",
            seen.join(" and "),
            seen.join("/")
        ));
    }
}

/// Little-endian bytes → elements. The caller has checked that the length is a multiple of the
/// element size.
fn decode_raw(dtype: DType, raw: Vec<u8>) -> Data {
    fn words<const N: usize, T>(raw: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        raw.chunks_exact(N).map(|c| f(c.try_into().unwrap_or([0; N]))).collect()
    }
    match dtype {
        DType::F32 => Data::F32(words(&raw, f32::from_le_bytes)),
        DType::I32 => Data::I32(words(&raw, i32::from_le_bytes)),
        DType::I64 => Data::I64(words(&raw, i64::from_le_bytes)),
        DType::I8 => Data::I8(raw.into_iter().map(|b| b as i8).collect()),
        DType::U8 => Data::U8(raw),
        DType::U16 => Data::U16(words(&raw, u16::from_le_bytes)),
        DType::I16 => Data::I16(words(&raw, i16::from_le_bytes)),
        DType::Bool => Data::Bool(raw.into_iter().map(|b| b != 0).collect()),
        // Unpacked by the caller; not reached with packed data.
        DType::U4 => Data::U4(raw),
        DType::I4 => Data::I4(raw.into_iter().map(|b| b as i8).collect()),
    }
}
