//! Models: ONNX in (protobuf → graph IR), the graph IR itself, and planning (shape inference,
//! constant folding) and execution on the CPU reference kernels.
//!
//! - [`tensor`]: [`Tensor`], [`DType`].
//! - [`graph`]: [`Graph`], [`Node`], [`Attrs`] — the IR every other layer works on.
//! - [`proto`]: ONNX's protobuf messages; [`load`]: `.onnx` bytes → checked [`Graph`];
//!   [`external`]: tensors kept in files beside the `.onnx`, put inside it.
//! - [`passes`]: graph rewrites (batch-norm folding).
//! - [`plan`]: [`Plan`] — ops built, shapes inferred, constants folded, ready to run.
//! - [`fold`]: the budget of constant folding.
//! - [`qdq_form`]: the compact QDQ form written to files, and the explicit one rewrites read.

pub mod convert;
pub mod external;
pub mod fold;
pub mod graph;
pub mod image_inputs;
pub mod integer_form;
pub mod kind;
pub mod load;
pub mod lower_lut;
pub mod lower_qdq;
pub mod npy;
pub mod passes;
pub mod plan;
pub mod proto;
pub mod qdq_form;
pub mod save;
mod sniff;
pub mod subgraph;
pub mod summary;
pub mod tensor;
pub mod tflite;

pub use convert::{
    convert_file_to_integer_onnx, convert_file_to_onnx, convert_to_onnx, output_quantization, Converted,
};
pub use external::{external_data_files, inline_external_data, is_safe_location};
pub use graph::{Attr, Attrs, Fused, Graph, ModelFormat, Node, ValueInfo};
pub use image_inputs::{float_image_inputs, restore_image_inputs, save_onnx_as_loaded};
pub use kind::OpKind;
pub use load::{load_onnx, load_onnx_with_limits, Limits};
pub use plan::{Plan, PlanOptions, StepEvent, StepInput, StepView};
pub use save::{save_onnx, save_onnx_with};
pub use summary::{Arithmetic, Summary};
pub use tensor::{numel, strides, DType, Data, Tensor};
pub use tflite::{is_tflite, load_tflite, load_tflite_as_qdq, load_tflite_integer_io, load_tflite_with_limits};

/// Loads a model from a file's bytes, whatever its format: TFLite when the bytes carry TFLite's
/// file identifier (`TFL3` at bytes 4..8), ONNX otherwise. The single entry point of the CLI and
/// the page.
pub fn load_model(bytes: &[u8]) -> Result<Graph, ModelError> {
    load_model_with_limits(bytes, &Limits::default())
}

/// [`load_model`] with explicit resource limits.
pub fn load_model_with_limits(bytes: &[u8], limits: &Limits) -> Result<Graph, ModelError> {
    let loaded = if is_tflite(bytes) {
        load_tflite_with_limits(bytes, limits)
    } else if let Some(why) = sniff::other_format(bytes) {
        // An ONNX file's first bytes can look like text (long node names, their lengths printable
        // bytes): only what does not parse as ONNX is called what its head looks like.
        match load_onnx_with_limits(bytes, limits) {
            Err(ModelError::NotOnnx(_)) => return Err(ModelError::NotAModel(why)),
            other => other,
        }
    } else {
        load_onnx_with_limits(bytes, limits)
    };
    match loaded {
        Err(ModelError::NotOnnx(_) | ModelError::NotTflite(_)) if sniff::text_mangled(bytes) => {
            Err(ModelError::NotAModel(sniff::text_mangled_message()))
        }
        other => other,
    }
}

/// Everything that can go wrong loading, planning or running a model. Messages say what to do.
#[allow(missing_docs)] // the error messages document the variants
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("this is not an ONNX model: {0}")]
    NotOnnx(String),
    #[error("this is not a valid TFLite model: {0}")]
    NotTflite(String),
    /// A file that is no model (its message says what it is) or a model damaged beyond reading.
    #[error("{0}")]
    NotAModel(String),
    #[error("tensor `{name}`: {reason}")]
    BadTensor { name: String, reason: String },
    /// A tensor's data is in a file beside the model ([`external`]) that was not given.
    #[error("the model keeps its weights in a separate file, `{location}` (tensor `{tensor}`), which was not given: keep that file beside the model (the CLI reads it from the model's folder), or choose or drop both files together in the page")]
    ExternalData { tensor: String, location: String },
    #[error("data type {0} is not supported: convert the model to float32 (or int8/uint8 for quantized tensors)")]
    UnsupportedDType(String),
    /// A TFLite model's data qplay cannot take yet; the message says what to open instead.
    #[error("{0}")]
    TfliteUnsupported(String),
    #[error("expected a {expected} tensor, got {got:?}")]
    DType { expected: &'static str, got: DType },
    #[error("shape {shape:?} needs a different number of elements than the {len} given")]
    ShapeData { shape: Vec<usize>, len: usize },
    #[error("the shape {0:?} has more elements than can be addressed")]
    Overflow(Vec<usize>),
    #[error("{0}")]
    Limit(String),
    #[error("the model uses {} unsupported op{}: {}. qplay supports the ops listed by `qplay inspect`; export the model without them (e.g. without NMS) or with a lower opset",
        .0.len(), if .0.len() == 1 { "" } else { "s" },
        .0.iter().map(|(op, node)| format!("`{op}` (node `{node}`)")).collect::<Vec<_>>().join(", "))]
    UnsupportedOps(Vec<(String, String)>),
    /// [`ModelError::UnsupportedOps`] of a TFLite file: `(op, operator)` pairs, with advice for
    /// TFLite models.
    #[error("{}", tflite_unsupported(.0))]
    UnsupportedTfliteOps(Vec<(String, String)>),
    #[error("the graph has a cycle through node `{0}`: a valid ONNX graph is acyclic")]
    Cycle(String),
    #[error("node `{node}` reads `{input}`, which no node, input or initializer produces")]
    MissingInput { node: String, input: String },
    #[error("input `{0}` was not given a value")]
    InputNotGiven(String),
    #[error("input `{name}`: the model expects shape {}, got {got:?}; give an input of the expected shape (dynamic `?` dimensions may take any size)", fmt_dims(.expected))]
    InputShape { name: String, expected: Vec<Option<usize>>, got: Vec<usize> },
    #[error("node `{node}` ({op}): {error}")]
    Op { node: String, op: String, error: crate::ops::OpError },
    #[error("opset {0} of the default domain is not supported: export with an opset from 9 to 28")]
    Opset(i64),
    #[error("{0}")]
    Other(String),
    #[error("input `{name}` has the dynamic shape {}: give it a concrete shape (each `?` replaced by a size) when planning the model", fmt_dims(.shape))]
    DynamicInput { name: String, shape: Vec<Option<usize>> },
    #[error("the model has no input `{name}`; its inputs are: {}", .known.join(", "))]
    UnknownInput { name: String, known: Vec<String> },
    #[error("input `{name}`: expected {expected:?} data, got {got:?}")]
    InputDType { name: String, expected: DType, got: DType },
    #[error("graph output `{0}` is not produced by any node, input or initializer")]
    MissingOutput(String),
    #[error("cancelled: the work was stopped before it finished, and nothing of it was kept")]
    Cancelled,
}

/// [`ModelError::UnsupportedTfliteOps`]'s message: the operators, then what to do — for a
/// model compiled for the Coral Edge TPU (its layers inside `edgetpu-custom-op`, a format only
/// the TPU runs), open the CPU model it was compiled from; else re-convert with builtin ops or
/// go through ONNX.
fn tflite_unsupported(ops: &[(String, String)]) -> String {
    let list = ops
        .iter()
        .map(|(op, at)| match op.strip_prefix("custom op ") {
            Some(name) => format!("custom op `{name}` ({at})"),
            None => format!("`{op}` ({at})"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let n = ops.len();
    let head =
        format!("the TFLite model uses {n} operator{} qplay does not map: {list}.", if n == 1 { "" } else { "s" });
    if ops.iter().any(|(op, _)| op == "custom op edgetpu-custom-op") {
        return format!(
            "{head} This model was compiled for the Coral Edge TPU: `edgetpu-custom-op` holds its layers in the TPU's own \
             format, which only an Edge TPU runs. Open the CPU model it was compiled from (the .tflite given to \
             `edgetpu_compiler`; Coral publishes both, e.g. `…_quant.tflite` beside `…_quant_edgetpu.tflite`)"
        );
    }
    format!(
        "{head} Re-convert it with TFLiteConverter using builtin ops only \
         (`converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]`: no SELECT_TF_OPS, no custom ops but \
         TFLite_Detection_PostProcess), or convert it to ONNX with tf2onnx (`python -m tf2onnx.convert --tflite model.tflite \
         --output model.onnx`) and open the .onnx"
    )
}

impl ModelError {
    /// A stable name for the kind of error, for callers that branch on it (the page, scripts)
    /// instead of reading the message: `bad-model`, `unsupported-op` (an op type qplay does not
    /// have), `unsupported-type`, `unsupported-opset`, `limit`, `bad-input`, `cancelled` or
    /// `error`. An op's error ([`ModelError::Op`]) gives its kind's code
    /// ([`OpError::code`](crate::ops::OpError::code)): `unsupported-feature` (the node asks for something valid in ONNX that qplay does not do:
    /// an attribute value, a mode, a data type), `bad-model`, `mismatch` (input shapes or types
    /// the node cannot take), `limit` or `internal`.
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::NotOnnx(_)
            | ModelError::NotTflite(_)
            | ModelError::NotAModel(_)
            | ModelError::BadTensor { .. }
            | ModelError::ExternalData { .. }
            | ModelError::ShapeData { .. }
            | ModelError::Overflow(_)
            | ModelError::Cycle(_)
            | ModelError::MissingInput { .. }
            | ModelError::MissingOutput(_) => "bad-model",
            ModelError::UnsupportedOps(_) | ModelError::UnsupportedTfliteOps(_) => "unsupported-op",
            ModelError::UnsupportedDType(_) | ModelError::TfliteUnsupported(_) => "unsupported-type",
            ModelError::Opset(_) => "unsupported-opset",
            ModelError::Limit(_) => "limit",
            ModelError::DType { .. }
            | ModelError::InputNotGiven(_)
            | ModelError::InputShape { .. }
            | ModelError::DynamicInput { .. }
            | ModelError::UnknownInput { .. }
            | ModelError::InputDType { .. } => "bad-input",
            ModelError::Op { error, .. } => error.code(),
            ModelError::Cancelled => "cancelled",
            ModelError::Other(_) => "error",
        }
    }
}

/// Formats a partially known shape as `[?, 3, 640, 640]`.
pub fn fmt_dims(shape: &[Option<usize>]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.map_or_else(|| "?".to_string(), |d| d.to_string())).collect();
    format!("[{}]", dims.join(", "))
}

impl ModelError {
    /// Wraps an op's error with the node it happened in.
    pub fn at(node: &Node, error: crate::ops::OpError) -> ModelError {
        ModelError::Op { node: node.name.clone(), op: node.op_type.clone(), error }
    }
}
