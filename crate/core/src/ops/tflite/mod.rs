//! Op family `tflite`: TFLite's integer semantics, exactly — the int8 ops of a full-integer
//! `.tflite` model (and the int16 ones of a 16x8 model: [`Code`], [`int16`]) as LiteRT's
//! reference kernels compute them, bit for bit. The TFLite loader
//! ([`crate::model::tflite`]) writes these ops (qplay's own types, `qplay.tfl.*`, never in a
//! model file); they work in the file's NHWC layout and carry TFLite's quantization parameters
//! as attributes, from which each builder derives the fixed-point multipliers the way LiteRT's
//! `Prepare` does.
//!
//! - [`fixed`]: the fixed-point arithmetic (`QuantizeMultiplier`,
//!   `MultiplyByQuantizedMultiplier`, gemmlowp's rounding high multiply, exp and reciprocal).
//! - [`int16`]: what 16x8 models add (the 64-bit multiply, SOFTMAX's interpolated tables,
//!   LOGISTIC and TANH's fixed-point forms, 65 536-entry activation tables).
//! - [`conv`]: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED.
//! - [`binary`]: ADD and SUB (inputs rescaled with `left_shift = 20`), MUL, MAXIMUM, MINIMUM.
//! - [`pool`]: AVERAGE_POOL_2D (its rounding division) and MAX_POOL_2D.
//! - [`softmax`]: SOFTMAX (gemmlowp's fixed-point exp and reciprocal).
//! - [`mean`]: the int8 MEAN over any axes.
//! - [`resize`]: RESIZE_BILINEAR (10-bit fixed-point weights) and RESIZE_NEAREST_NEIGHBOR.
//! - [`quantize`]: QUANTIZE (float → int8, int8 → int8) and DEQUANTIZE.
//! - [`prelu`]: PRELU (two multipliers, alpha per channel).
//! - [`transpose_conv`]: TRANSPOSE_CONV (int32 sums scattered by the stride, per-channel
//!   requantization).
//! - [`tables`]: LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, RELU, RELU6, RELU_N1_TO_1 as 256-entry
//!   tables for
//!   `qplay.Lookup`.

pub mod binary;
pub mod conv;
pub mod fixed;
pub mod int16;
pub mod mean;
pub mod pool;
pub mod prelu;
pub mod quantize;
pub mod resize;
pub mod softmax;
pub mod tables;
pub mod transpose_conv;

use super::Registry;
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::{input, input_fact, Fact, OpError};

/// The op types' common prefix: a plan with any of them works on NHWC int8 tensors.
pub const PREFIX: &str = "qplay.tfl.";

/// Whether `op_type` is one of this family's.
pub fn is_tflite_op(op_type: &str) -> bool {
    op_type.starts_with(PREFIX)
}

/// Adds this family's ops to the registry.
pub fn register(r: &mut Registry) {
    r.register(conv::CONV, conv::build_conv);
    r.register(conv::DEPTHWISE, conv::build_depthwise);
    r.register(conv::FULLY_CONNECTED, conv::build_fully_connected);
    r.register(binary::ADD, binary::build_add);
    r.register(binary::SUB, binary::build_sub);
    r.register(binary::MUL, binary::build_mul);
    r.register(binary::MAXIMUM, binary::build_maximum);
    r.register(binary::MINIMUM, binary::build_minimum);
    r.register(pool::AVERAGE_POOL, pool::build_average);
    r.register(pool::MAX_POOL, pool::build_max);
    r.register(softmax::SOFTMAX, softmax::build);
    r.register(prelu::PRELU, prelu::build);
    r.register(transpose_conv::TRANSPOSE_CONV, transpose_conv::build);
    r.register(mean::MEAN, mean::build);
    r.register(resize::BILINEAR, resize::build_bilinear);
    r.register(resize::NEAREST, resize::build_nearest);
    r.register(quantize::QUANTIZE, quantize::build_quantize);
    r.register(quantize::REQUANTIZE, quantize::build_requantize);
    r.register(quantize::DEQUANTIZE, quantize::build_dequantize);
}

/// The code width an op was built for (attribute `bits`: 8, the default, or 16).
pub(crate) fn code_bits(node: &Node) -> Result<i32, OpError> {
    match node.attrs.int("bits", 8) {
        8 => Ok(8),
        16 => Ok(16),
        b => Err(OpError::malformed(format!("bits {b} must be 8 or 16"))),
    }
}

/// A float attribute that must be a positive finite scale.
pub(crate) fn attr_f32(node: &Node, name: &str) -> Result<f32, OpError> {
    match node.attrs.float_opt(name) {
        Some(v) if v.is_finite() && v > 0.0 => Ok(v),
        other => Err(OpError::malformed(format!("{name} must be a positive finite number, got {other:?}"))),
    }
}

/// An integer attribute within i32 (zero points within −128…255, activation bounds).
pub(crate) fn attr_i32(node: &Node, name: &str) -> Result<i32, OpError> {
    match node.attrs.int_opt(name) {
        Some(v) if (-(1 << 16)..1 << 16).contains(&v) => Ok(v as i32),
        other => Err(OpError::malformed(format!("{name} must be a small integer, got {other:?}"))),
    }
}

/// A multiplier and shift the fixed-point kernels can apply (`shift` within −31…30).
pub(crate) fn check_multiplier((m, shift): (i32, i32)) -> Result<(i32, i32), OpError> {
    if m < 0 || !(-31..=30).contains(&shift) {
        return Err(OpError::malformed(format!(
            "the scales give a requantization multiplier {m} · 2^{shift} outside TFLite's range"
        )));
    }
    Ok((m, shift))
}

/// The int8 values of a tensor.
pub(crate) fn i8_data<'a>(t: &'a Tensor, what: &str) -> Result<&'a [i8], OpError> {
    match &t.data {
        Data::I8(v) => Ok(v),
        _ => Err(OpError::mismatch(format!("{what} must be int8, got {:?}", t.dtype()))),
    }
}

/// The integer types of TFLite's quantized activations: int8, uint8 (TF1's quantized models:
/// uint8 activations and weights, per tensor) and int16 in "16x8" models (int16 activations,
/// int8 weights). Kernels generic over it compute each type as LiteRT's
/// templated reference kernels do.
pub(crate) trait Code: Copy + Default + Send + Sync + 'static {
    /// The smallest code.
    const MIN: i32;
    /// The largest code.
    const MAX: i32;
    /// The tensor type.
    const DTYPE: DType;
    /// The code as i32.
    fn get(self) -> i32;
    /// A code from an i32 already within `MIN..=MAX` (wraps otherwise).
    fn put(v: i32) -> Self;
    /// The codes of a tensor of this type.
    fn slice(t: &Tensor) -> Option<&[Self]>;
    /// Tensor data of this type.
    fn data(v: Vec<Self>) -> Data;
}

macro_rules! code {
    ($t:ty, $dtype:ident) => {
        impl Code for $t {
            const MIN: i32 = <$t>::MIN as i32;
            const MAX: i32 = <$t>::MAX as i32;
            const DTYPE: DType = DType::$dtype;
            #[inline(always)]
            fn get(self) -> i32 {
                self as i32
            }
            #[inline(always)]
            fn put(v: i32) -> Self {
                v as $t
            }
            fn slice(t: &Tensor) -> Option<&[Self]> {
                match &t.data {
                    Data::$dtype(v) => Some(v),
                    _ => None,
                }
            }
            fn data(v: Vec<Self>) -> Data {
                Data::$dtype(v)
            }
        }
    };
}
code!(i8, I8);
code!(u8, U8);
code!(i16, I16);

/// The codes of a tensor of type `T`, or an error naming `what`.
pub(crate) fn codes_of<'a, T: Code>(t: &'a Tensor, what: &str) -> Result<&'a [T], OpError> {
    T::slice(t).ok_or_else(|| OpError::mismatch(format!("{what} must be {:?}, got {:?}", T::DTYPE, t.dtype())))
}

/// Whether a type is one of TFLite's integer activation types (int8, uint8, int16).
pub(crate) fn is_activation_type(t: DType) -> bool {
    matches!(t, DType::I8 | DType::U8 | DType::I16)
}

/// A one-input kernel written once for int8 and int16 codes.
pub(crate) trait PerCode {
    /// The output shape for input shape `x`.
    fn shape(&self, x: &[usize]) -> Result<Vec<usize>, OpError>;
    /// The kernel on codes of type `T`.
    fn run<T: Code>(&self, x: &Tensor) -> Result<Tensor, OpError>;
}

/// [`crate::ops::Op::infer`] of a [`PerCode`] kernel: an int8, uint8 or int16 input, the same
/// type out.
pub(crate) fn infer_codes(k: &impl PerCode, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
    let x = input_fact(inputs, 0)?;
    if !is_activation_type(x.dtype) {
        return Err(OpError::mismatch(format!("the input must be int8, uint8 or int16, got {:?}", x.dtype)));
    }
    Ok(vec![Fact::new(x.dtype, k.shape(&x.shape)?)])
}

/// [`crate::ops::Op::eval`] of a [`PerCode`] kernel: [`PerCode::run`] on the input's code type.
pub(crate) fn eval_codes(k: &impl PerCode, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
    let x = input(inputs, 0)?;
    Ok(vec![match x.dtype() {
        DType::I16 => k.run::<i16>(x)?,
        DType::U8 => k.run::<u8>(x)?,
        _ => k.run::<i8>(x)?,
    }])
}
