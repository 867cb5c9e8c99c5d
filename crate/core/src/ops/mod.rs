//! Operators: one op per file, grouped by family, and one [`Registry`] mapping ONNX op types to
//! builders. The CPU implementations here are the numerical reference for every other backend.
//!
//! - [`nn`]: convolution, pooling, normalisation, resize, matmul — the compute-heavy ops.
//! - [`math`]: element-wise unary/binary ops with numpy broadcasting, reductions, softmax.
//! - [`shape`]: ops that move or reinterpret data (Reshape, Transpose, Concat, Slice, Gather, …).
//! - [`quant`]: QuantizeLinear / DequantizeLinear (QDQ models).
//! - [`detect`]: detection post-processing ops (TFLite's `TFLite_Detection_PostProcess`).
//! - [`tflite`]: TFLite's int8 ops with its integer semantics (full-integer `.tflite` models).

pub mod control;
pub mod detect;
pub mod error;
pub mod grad;
pub mod math;
pub mod nn;
pub mod quant;
pub mod shape;
pub mod tflite;

pub use error::OpError;

use crate::model::{DType, Node, Tensor};
use std::any::Any;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

/// What planning knows about a tensor before running: its type and static shape, and its value
/// when it is a constant (initializers, and anything computed only from constants — this is how
/// shape sub-graphs fold away).
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    /// Element type.
    pub dtype: DType,
    /// Static shape.
    pub shape: Vec<usize>,
    /// The value, when known at plan time.
    pub value: Option<Arc<Tensor>>,
}

impl Fact {
    /// A fact about a tensor whose value is not known until run time.
    pub fn new(dtype: DType, shape: Vec<usize>) -> Fact {
        Fact { dtype, shape, value: None }
    }

    /// A fact for a known constant.
    pub fn constant(t: Tensor) -> Fact {
        Fact { dtype: t.dtype(), shape: t.shape.clone(), value: Some(Arc::new(t)) }
    }
}

/// An operator, built once per node with its attributes resolved.
///
/// Ops are typed values: other executors (the GPU backend) ask a step's op for its concrete
/// type with [`downcast_ref`](trait.Op.html#method.downcast_ref) and read its normalised fields
/// (`Conv::window()`, `Unary::func`, …) — never the node's ONNX attributes, which only the
/// builders read.
pub trait Op: Any + Debug + Send + Sync {
    /// Output types and shapes from the inputs' facts (`None` for an omitted optional input).
    /// Must be cheap: never run the op's arithmetic here. Inputs that carry values (constants)
    /// may be read, e.g. Reshape's target shape.
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError>;

    /// Computes the outputs (`None` for an omitted optional input).
    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError>;

    /// Whether an output's shape depends on input *values* that are only known at run time
    /// (NonZero, NonMaxSuppression). Such a step, and every step downstream of it, is planned
    /// without static shapes and inferred again on each run from its actual inputs, under the
    /// same size limits ([`crate::model::Plan`]'s "dynamic tail").
    fn shape_depends_on_values(&self) -> bool {
        false
    }

    /// Whether the op's single output is always input 0's data unchanged under the inferred
    /// output shape (Reshape, Flatten, Squeeze, Unsqueeze, Identity). A plan then hands the
    /// input's buffer over instead of evaluating, when nothing else needs the input.
    fn reshapes_input(&self) -> bool {
        false
    }

    /// Reverse mode, for quantization-aware training ([`crate::train`]): from the forward's
    /// inputs and outputs and the loss gradient of each output ([`grad::Backward`]), the
    /// gradient of each input, in input order ([`grad::Grads`]; `None` for an input that takes
    /// none). [`grad::GradError::NoBackward`] when the op has none: training then names it.
    /// The default covers ops that only reshape their input ([`Op::reshapes_input`]).
    fn backward(&self, b: &grad::Backward<'_>) -> Result<grad::Grads, grad::GradError> {
        if !self.reshapes_input() {
            return Err(grad::GradError::NoBackward);
        }
        Ok(grad::reshape_back(b.inputs, b.grads)?)
    }
}

impl dyn Op {
    /// The op as its concrete type, when it is a `T`.
    pub fn downcast_ref<T: Op>(&self) -> Option<&T> {
        (self as &dyn Any).downcast_ref::<T>()
    }
}

/// What [`Resize::axis_taps`](nn::resize::Resize::axis_taps) returns: `(axis, taps)` per resampled axis in order, and the output
/// shape.
pub type AxisTaps = (Vec<(usize, Vec<Option<[(usize, f32); 2]>>)>, Vec<usize>);

/// Build context: what a builder may need besides the node.
#[derive(Debug, Clone, Copy)]
pub struct BuildCtx {
    /// Default-domain opset of the model (some ops changed attribute vs input forms).
    pub opset: i64,
}

/// Builds an op from a node; the error says what about the node is unsupported.
pub type Builder = fn(&Node, &BuildCtx) -> Result<Box<dyn Op>, OpError>;

/// ONNX op type → builder.
#[derive(Clone)]
pub struct Registry {
    map: HashMap<&'static str, Builder>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut r = Registry { map: HashMap::new() };
        nn::register(&mut r);
        control::register(&mut r);
        math::register(&mut r);
        shape::register(&mut r);
        quant::register(&mut r);
        detect::register(&mut r);
        tflite::register(&mut r);
        r
    }
}

impl Registry {
    /// The registry with every op qplay implements.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds (or replaces) an op.
    pub fn register(&mut self, op_type: &'static str, builder: Builder) {
        self.map.insert(op_type, builder);
    }

    /// The builder for an op type.
    pub fn get(&self, op_type: &str) -> Option<Builder> {
        self.map.get(op_type).copied()
    }

    /// Supported op types, sorted; planning's own internal ops (`qplay.*`, never in a model
    /// file) are left out.
    pub fn op_types(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.map.keys().copied().filter(|k| !k.starts_with("qplay.")).collect();
        v.sort_unstable();
        v
    }
}

/// Helper for ops: the `i`-th input, or an error naming it as missing.
pub fn input<'a>(inputs: &[Option<&'a Tensor>], i: usize) -> Result<&'a Tensor, OpError> {
    inputs.get(i).copied().flatten().ok_or_else(|| OpError::missing_input(i))
}

/// Helper for ops: the `i`-th input fact, or an error naming it as missing.
pub fn input_fact<'a>(inputs: &[Option<&'a Fact>], i: usize) -> Result<&'a Fact, OpError> {
    inputs.get(i).copied().flatten().ok_or_else(|| OpError::missing_input(i))
}
