//! `com.microsoft::QLinearGlobalAveragePool`: the mean over the spatial axes of an 8-bit tensor,
//! requantized, as onnxruntime's CPU kernel computes it (MLAS `qlgavgpool.cpp`): per channel
//! the exact int32 sum `Σ (x − zX)`, converted to f32, times the f32 scale
//! `sX / (sY · f32(N))` (N the spatial size), clamped to the output's range less `zY`, rounded
//! half to even, plus `zY`. Inputs `X, X_scale, X_zero_point, Y_scale, Y_zero_point`, per-tensor;
//! `channels_last` (0: NCHW, 1: NHWC). onnxruntime refuses a spatial size of 2^24 or more and a
//! scale outside [2^−32, 256), and so does this. ONNX Runtime's quantizer writes it for
//! `GlobalAveragePool` (the squeeze-and-excitation blocks of MobileNetV3 / EfficientNet
//! backbones, classifier heads) in its QOperator format.

use super::qlinear_add::scalar_params;
use super::qtype_of;
use super::{codes_data, codes_i32};
use crate::model::{Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};
use crate::quant::{round_half_even, QParams, QType};

/// A built QLinearGlobalAveragePool.
#[derive(Debug, Clone)]
pub struct QLinearGlobalAveragePool {
    channels_last: bool,
}

/// Builds QLinearGlobalAveragePool: 5 inputs (4 without `Y_zero_point`), `channels_last`.
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    super::lookup::check_ort_lookup(node, "QLinearGlobalAveragePool")?;
    Ok(Box::new(QLinearGlobalAveragePool { channels_last: node.attrs.int("channels_last", 0) != 0 }))
}

/// `(batch, channels, spatial size)` and the output shape.
type Geometry = ((usize, usize, usize), Vec<usize>);

impl QLinearGlobalAveragePool {
    /// The input's geometry (see [`Geometry`]).
    fn geometry(&self, shape: &[usize]) -> Result<Geometry, OpError> {
        if shape.len() < 3 {
            return Err(OpError::malformed(format!(
                "QLinearGlobalAveragePool needs a batch, channel and at least one spatial axis, got shape {shape:?}"
            )));
        }
        let spatial = if self.channels_last { 1..shape.len() - 1 } else { 2..shape.len() };
        let c = if self.channels_last { shape[shape.len() - 1] } else { shape[1] };
        let size: usize = shape[spatial.clone()].iter().product();
        let mut out = shape.to_vec();
        out[spatial].iter_mut().for_each(|d| *d = 1);
        Ok(((shape[0], c, size), out))
    }
}

impl Op for QLinearGlobalAveragePool {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        qtype_of(x.dtype).map_err(|e| e.context("QLinearGlobalAveragePool"))?;
        Ok(vec![Fact::new(x.dtype, self.geometry(&x.shape)?.1)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let opt = |i: usize| inputs.get(i).copied().flatten();
        let x = input(inputs, 0)?;
        let dtype = x.dtype();
        let px = scalar_params(input(inputs, 1)?, opt(2), dtype, "X")?;
        let py = scalar_params(input(inputs, 3)?, opt(4), dtype, "Y")?;
        let ((n, c, size), out_shape) = self.geometry(&x.shape)?;
        let codes = codes_i32(x)?;
        let y = global_average(&codes, (n, c, size), self.channels_last, (px, py), qtype_of(dtype)?)?;
        // NHWC and NCHW outputs are both batch-major with one value per channel.
        Ok(vec![Tensor { shape: out_shape, data: codes_data(y, dtype) }])
    }
}

/// MLAS's global average of `(batch, channels, size)` codes (NCHW, or NHWC with
/// `channels_last`), one code per image and channel; `(px, py)` the input's and output's
/// parameters. onnxruntime's `QLinearAveragePool` falls back to it when the window is the
/// whole map.
pub(super) fn global_average(
    codes: &[i32],
    (n, c, size): (usize, usize, usize),
    channels_last: bool,
    (px, py): (QParams, QParams),
    qt: QType,
) -> Result<Vec<i32>, OpError> {
    let scale = px.scale / (py.scale * size as f32);
    if size >= 1 << 24 || !(scale >= f32::powi(2.0, -32) && scale < 256.0) {
        return Err(OpError::unsupported(format!(
                "global average pooling: a spatial size of {size} with scales {} → {} is outside the range onnxruntime computes (size below 2^24, X_scale / (Y_scale · size) in [2^-32, 256))",
                px.scale, py.scale
            )));
    }
    let (lo, hi) = ((qt.qmin() - py.zero_point) as f32, (qt.qmax() - py.zero_point) as f32);
    let bias = -px.zero_point * size as i32;
    let mut y = Vec::with_capacity(n * c);
    for b in 0..n {
        for ch in 0..c {
            let sum: i32 = if channels_last {
                (0..size).map(|k| codes[(b * size + k) * c + ch]).sum()
            } else {
                codes[(b * c + ch) * size..(b * c + ch + 1) * size].iter().sum()
            };
            let v = ((sum.wrapping_add(bias)) as f32 * scale).clamp(lo, hi);
            y.push(round_half_even(v) + py.zero_point);
        }
    }
    Ok(y)
}
