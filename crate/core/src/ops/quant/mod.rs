//! Op family `quant`: ONNX QuantizeLinear and DequantizeLinear (QDQ models) and
//! DynamicQuantizeLinear (onnxruntime's `quantize_dynamic` models), on top of the
//! single quantize function in [`crate::quant`] so every path rounds the same way; the integer
//! ops of QOperator models — QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger — on the
//! int8 GEMM ([`qgemm`], with its SIMD step in [`simd`]); and onnxruntime's `com.microsoft`
//! QLinearAdd, QLinearConcat, QLinearMul, QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax,
//! QLinearGlobalAveragePool, QLinearAveragePool and QGemm
//! (each computed as onnxruntime's CPU kernel computes it); qplay's own [`fake_quant`] (a Q→DQ pair with a backward, for
//! training), [`bias_quant`] (an int32 bias on its grid, for training) and [`lookup`]. Planning lowers QDQ convolutions to QLinearConv
//! ([`crate::model::lower_qdq`]), so QDQ models run in int8 too.

pub mod bias_quant;
pub mod dequantize_linear;
pub mod dynamic_quantize_linear;
pub mod fake_quant;
pub mod lookup;
pub mod qgemm;
pub mod qlinear_add;
pub mod qlinear_average_pool;
pub mod qlinear_concat;
pub mod qlinear_conv;
pub mod qlinear_gemm;
pub mod qlinear_global_average_pool;
pub mod qlinear_leaky_relu;
pub mod qlinear_matmul;
pub mod qlinear_mul;
pub mod qlinear_sigmoid;
pub mod qlinear_softmax;
pub mod quantize_linear;
pub mod simd;

use super::Registry;
use crate::model::{DType, Data, Tensor};
use crate::ops::OpError;
use crate::quant::{split_axis, QParams, QType};

/// Adds this family's ops to the registry.
pub fn register(r: &mut Registry) {
    r.register("QuantizeLinear", quantize_linear::build);
    r.register("DequantizeLinear", dequantize_linear::build);
    r.register("DynamicQuantizeLinear", dynamic_quantize_linear::build);
    r.register(fake_quant::FAKE_QUANT, fake_quant::build);
    r.register(bias_quant::BIAS_QUANT, bias_quant::build);
    r.register("QLinearConv", qlinear_conv::build_qlinear);
    r.register("ConvInteger", qlinear_conv::build_integer);
    r.register("QLinearMatMul", qlinear_matmul::build_qlinear);
    r.register("MatMulInteger", qlinear_matmul::build_integer);
    r.register("com.microsoft::QLinearAdd", qlinear_add::build);
    // onnxruntime's QDQ ops, which take 16-bit codes at opsets below 21.
    r.register("com.microsoft::QuantizeLinear", quantize_linear::build);
    r.register("com.microsoft::DequantizeLinear", dequantize_linear::build);
    r.register("com.microsoft::QLinearConcat", qlinear_concat::build);
    r.register("com.microsoft::QLinearMul", qlinear_mul::build);
    r.register("com.microsoft::QLinearSigmoid", qlinear_sigmoid::build);
    r.register("com.microsoft::QLinearLeakyRelu", qlinear_leaky_relu::build);
    r.register("com.microsoft::QLinearSoftmax", qlinear_softmax::build);
    r.register("com.microsoft::QLinearGlobalAveragePool", qlinear_global_average_pool::build);
    r.register("com.microsoft::QLinearAveragePool", qlinear_average_pool::build);
    r.register("com.microsoft::QGemm", qlinear_gemm::build);
    r.register(lookup::LOOKUP, lookup::build);
}

/// An 8-bit tensor's codes as i32.
pub fn codes_i32(x: &Tensor) -> Result<Vec<i32>, OpError> {
    match &x.data {
        Data::U8(v) => Ok(v.iter().map(|&b| b as i32).collect()),
        Data::I8(v) => Ok(v.iter().map(|&b| b as i32).collect()),
        _ => Err(OpError::mismatch(format!("X must be uint8 or int8, got {:?}", x.dtype()))),
    }
}

/// Codes (already in the type's range) as a tensor's data of `dtype` (uint8 or int8).
pub fn codes_data(y: Vec<i32>, dtype: DType) -> Data {
    match dtype {
        DType::U8 => Data::U8(y.into_iter().map(|v| v as u8).collect()),
        _ => Data::I8(y.into_iter().map(|v| v as i8).collect()),
    }
}

/// The integer type of a quantized tensor's element type.
pub fn qtype_of(d: DType) -> Result<QType, OpError> {
    match d {
        DType::U8 => Ok(QType::UINT8),
        DType::I8 => Ok(QType::INT8),
        other => Err(OpError::mismatch(format!("quantized tensors must be int8 or uint8, got {other:?}"))),
    }
}

/// [`qtype_of`] for QuantizeLinear and DequantizeLinear, which also take 16-bit integers
/// (QDQ int16/uint16 activations, opset 21; onnxruntime runs them) and 4-bit ones (int4/uint4
/// weights, opset 21).
pub fn qdq_qtype_of(d: DType) -> Result<QType, OpError> {
    match d {
        DType::U16 => Ok(QType { bits: 16, signed: false, restricted: false }),
        DType::I16 => Ok(QType { bits: 16, signed: true, restricted: false }),
        DType::U4 => Ok(QType { bits: 4, signed: false, restricted: false }),
        DType::I4 => Ok(QType { bits: 4, signed: true, restricted: false }),
        _ => qtype_of(d).map_err(|_| {
            OpError::mismatch(format!("quantized tensors must be int4, uint4, int8, uint8, int16 or uint16, got {d:?}"))
        }),
    }
}

/// Scales and zero-points of a Q/DQ node, checked against the data's shape: one pair
/// (per-tensor) or one per index along `axis` (per-axis).
pub struct Params {
    /// `(outer, channels, inner)` around the axis (channels = 1 for per-tensor).
    pub split: (usize, usize, usize),
    /// One set of parameters per channel.
    pub per_channel: Vec<QParams>,
}

/// Reads `scale` and optional `zero_point` (with `zp_type` as its range) for data of `shape`.
pub fn params(
    shape: &[usize],
    axis: i64,
    scale: &Tensor,
    zero_point: Option<&Tensor>,
    zp_type: Option<QType>,
) -> Result<Params, OpError> {
    let s = scale.as_f32().map_err(|e| OpError::mismatch(format!("scale: {e}")))?;
    let zp: Vec<i64> = match zero_point {
        Some(z) => z.to_i64_vec().map_err(|e| OpError::mismatch(format!("zero_point: {e}")))?,
        None => vec![0; s.len()],
    };
    if zp.len() != s.len() {
        return Err(OpError::malformed(format!("scale has {} values but zero_point has {}", s.len(), zp.len())));
    }
    if s.is_empty() {
        return Err(OpError::malformed("scale is empty"));
    }
    let split = if s.len() == 1 && scale.shape.len() <= 1 {
        (1, 1, shape.iter().product())
    } else {
        let rank = shape.len() as i64;
        let a = if axis < 0 { axis + rank } else { axis };
        if !(0..rank).contains(&a) {
            return Err(OpError::malformed(format!("axis {axis} is out of range for rank {rank}")));
        }
        let sp = split_axis(shape.iter().product(), shape, a as usize).map_err(OpError::internal)?;
        if sp.1 != s.len() {
            return Err(OpError::mismatch(format!(
                "per-axis scale has {} values but axis {a} of the data has {} (shape {shape:?}): the scale must have one value per channel",
                s.len(),
                sp.1
            )));
        }
        sp
    };
    let per_channel = s
        .iter()
        .zip(&zp)
        .map(|(&sc, &z)| {
            if !(sc.is_finite() && sc > 0.0) {
                return Err(OpError::malformed(format!(
                    "scale {sc} is not a positive finite number: a zero or negative scale cannot be used"
                )));
            }
            let z = i32::try_from(z).map_err(|_| OpError::malformed(format!("zero_point {z} is out of range")))?;
            if let Some(t) = zp_type {
                QParams::checked(sc, z, t).map_err(OpError::malformed)
            } else {
                Ok(QParams { scale: sc, zero_point: z })
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(Params { split, per_channel })
}
