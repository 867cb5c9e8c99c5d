//! Op family `nn`: the compute-heavy float32 ops — convolution, pooling, normalisation, resize,
//! padding, matrix products and softmax. One op per file; `register` adds each to the registry.
//!
//! Shared kernels live beside the ops: [`sgemm`] (the packed, register-blocked matrix multiply
//! every convolution and matrix product ends in), [`im2col`] (unfolding windows into GEMM
//! operands), [`depthwise`] (the direct depthwise-convolution kernel), [`spatial`] (window
//! geometry: kernel, strides, dilations, pads, `auto_pad`, `ceil_mode`, and separable pooling)
//! and [`simd`] (a portable four-lane vector for the micro-kernels).
//!
//! Every op validates shapes in `infer` and again in `eval` (both go through the same checked
//! geometry code), so a malformed model yields an `Err` that says what is wrong, never a panic.

pub mod attention;
pub mod avgpool;
pub mod batchnorm;
pub mod conv;
pub mod conv_transpose;
pub mod depthwise;
pub mod einsum;
pub mod gemm;
pub mod global_pool;
pub mod grid_sample;
pub mod group_norm;
pub mod im2col;
pub mod instance_norm;
pub mod layer_norm;
pub mod log_softmax;
pub mod lp_norm;
pub mod matmul;
pub mod maxpool;
pub mod non_max_suppression;
pub mod pad;
pub(crate) mod resample;
pub mod resize;
pub mod rms_norm;
pub mod roi_align;
pub mod sgemm;
pub mod simd;
pub mod softmax;
pub mod spatial;

use super::{Fact, Registry};
use crate::model::{numel, DType, Tensor};
use crate::ops::OpError;

/// Adds this family's ops to the registry.
pub fn register(r: &mut Registry) {
    r.register("Conv", conv::build);
    r.register("ConvTranspose", conv_transpose::build);
    r.register("BatchNormalization", batchnorm::build);
    r.register("MaxPool", maxpool::build);
    r.register("AveragePool", avgpool::build);
    r.register("GlobalAveragePool", global_pool::build_average);
    r.register("GlobalMaxPool", global_pool::build_max);
    r.register("Resize", resize::build_resize);
    r.register("Upsample", resize::build_upsample);
    r.register("Pad", pad::build);
    r.register("MatMul", matmul::build);
    r.register("Gemm", gemm::build);
    r.register("Softmax", softmax::build);
    r.register("Einsum", einsum::build);
    r.register("Attention", attention::build);
    log_softmax::register(r);
    r.register("GridSample", grid_sample::build);
    r.register("LayerNormalization", layer_norm::build);
    r.register("RMSNormalization", rms_norm::build);
    r.register("InstanceNormalization", instance_norm::build);
    r.register("GroupNormalization", group_norm::build);
    lp_norm::register(r);
    r.register("RoiAlign", roi_align::build);
    non_max_suppression::register(r);
}

/// The float data of input `i`, checked to be float32 and to hold exactly as many elements as
/// its shape says (tensors are plain structs, so the two could disagree).
pub(crate) fn f32_input<'a>(inputs: &[Option<&'a Tensor>], i: usize, what: &str) -> Result<&'a [f32], OpError> {
    let t =
        inputs.get(i).copied().flatten().ok_or_else(|| OpError::malformed(format!("input {i} ({what}) is missing")))?;
    f32_data(t, what)
}

/// The shape of input `i` (`None` when omitted or out of range).
pub(crate) fn input_shape<'a>(inputs: &[Option<&'a Tensor>], i: usize) -> Option<&'a [usize]> {
    inputs.get(i).copied().flatten().map(|t| t.shape.as_slice())
}

/// The float data of an optional input `i`: `None` when omitted.
pub(crate) fn f32_input_opt<'a>(
    inputs: &[Option<&'a Tensor>],
    i: usize,
    what: &str,
) -> Result<Option<&'a [f32]>, OpError> {
    match inputs.get(i).copied().flatten() {
        None => Ok(None),
        Some(t) => f32_data(t, what).map(Some),
    }
}

/// A tensor's float data, checked against its shape.
pub(crate) fn f32_data<'a>(t: &'a Tensor, what: &str) -> Result<&'a [f32], OpError> {
    let data = t.as_f32().map_err(|e| OpError::mismatch(format!("{what}: {e}")))?;
    let n = numel(&t.shape).map_err(|e| OpError::limit(format!("{what}: {e}")))?;
    if n != data.len() {
        return Err(OpError::internal(format!(
            "{what}: shape {:?} needs {n} elements but the tensor holds {}",
            t.shape,
            data.len()
        )));
    }
    Ok(data)
}

/// The fact for input `i`, checked to be float32.
pub(crate) fn f32_fact<'a>(inputs: &[Option<&'a Fact>], i: usize, what: &str) -> Result<&'a Fact, OpError> {
    let f =
        inputs.get(i).copied().flatten().ok_or_else(|| OpError::malformed(format!("input {i} ({what}) is missing")))?;
    if f.dtype != DType::F32 {
        return Err(OpError::mismatch(format!("{what} must be float32, got {:?}", f.dtype)));
    }
    Ok(f)
}

/// The fact for an optional float32 input `i`.
pub(crate) fn f32_fact_opt<'a>(inputs: &[Option<&'a Fact>], i: usize, what: &str) -> Result<Option<&'a Fact>, OpError> {
    match inputs.get(i).copied().flatten() {
        None => Ok(None),
        Some(_) => f32_fact(inputs, i, what).map(Some),
    }
}

/// A float32 output tensor of `shape` (its size already checked by the op's geometry).
pub(crate) fn f32_output(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor, OpError> {
    Tensor::f32(shape, data).map_err(OpError::internal)
}

/// Product of dimensions, or an error naming what overflowed.
pub(crate) fn checked_numel(shape: &[usize]) -> Result<usize, OpError> {
    numel(shape).map_err(OpError::limit)
}

/// Normalises a possibly negative axis against `rank` (ONNX accepts `-rank..rank`).
pub(crate) fn normalize_axis(axis: i64, rank: usize, what: &str) -> Result<usize, OpError> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..r).contains(&a) {
        return Err(OpError::malformed(format!("{what} {axis} is out of range for a rank-{rank} tensor")));
    }
    Ok(a as usize)
}

/// Rejects nodes that ask for outputs beyond the first (e.g. MaxPool's indices): qplay computes
/// only output 0 of these ops, and silently leaving a consumer without its input would be worse.
pub(crate) fn only_first_output(node: &crate::model::Node, what: &str) -> Result<(), OpError> {
    if node.outputs.iter().skip(1).any(|o| !o.is_empty()) {
        return Err(OpError::unsupported(format!("only the first output of {} is supported ({what})", node.op_type)));
    }
    Ok(())
}
