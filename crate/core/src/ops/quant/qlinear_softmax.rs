//! `com.microsoft::QLinearSoftmax`: softmax of an 8-bit tensor, requantized, as onnxruntime's CPU
//! kernel computes it (`qlinear_softmax.cc`) — its own approximation, not a float softmax
//! quantized, so this follows it step by step to give its outputs in every value:
//!
//! - a 256-entry f32 table `exp((i − 255 + shift) · sX)`, computed in f64 and rounded to f32,
//!   where `shift = max(0, ln(f32::MAX / D) − 5) / sX` keeps the row sums finite (`D` the
//!   reduced length); int8 tables are indexed by `(i − 128)` as a byte;
//! - per row, the table shifted so the row's largest code meets its top entry, the entries of
//!   the row's codes summed in f32 in order (`vsum`), and each output
//!   `round_half_even(t · ⌊1 / sY⌋ / vsum) + zY` in f32 — uint8 saturated at 255, int8 wrapped as
//!   onnxruntime's cast wraps it (above 255: −1; a row whose sum is 0 is left at zero).
//!
//! `X_scale` is the only input parameter the table reads (the input zero point cancels in a
//! softmax). The reduced axis: `opset` < 13 (an attribute onnxruntime requires) flattens from
//! `axis` (default 1); 13 and later reduce `axis` alone (default −1). ONNX Runtime's quantizer
//! writes it for `Softmax` (the DFL box decoding of YOLOv8/11 exports) in its QOperator format.

use super::qlinear_add::scalar_params;
use super::qtype_of;
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// A built QLinearSoftmax.
#[derive(Debug, Clone)]
pub struct QLinearSoftmax {
    axis: i64,
    opset: i64,
}

/// Builds QLinearSoftmax: 4 or 5 inputs (`X, X_scale, X_zero_point, Y_scale[, Y_zero_point]`),
/// the `opset` attribute (required), `axis` (default by opset).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    super::lookup::check_ort_lookup(node, "QLinearSoftmax")?;
    let opset = node.attrs.int_opt("opset").ok_or_else(|| {
        OpError::malformed(
            "QLinearSoftmax needs its `opset` attribute (the Softmax opset it replaces), as onnxruntime does",
        )
    })?;
    let axis = node.attrs.int("axis", if opset < 13 { 1 } else { -1 });
    Ok(Box::new(QLinearSoftmax { axis, opset }))
}

impl QLinearSoftmax {
    /// `(outer, D, inner)`: rows of `D` values `inner` apart.
    fn split(&self, shape: &[usize]) -> Result<(usize, usize, usize), OpError> {
        let rank = shape.len() as i64;
        let a = if self.axis < 0 { self.axis + rank } else { self.axis };
        if !(0..rank.max(1)).contains(&a) {
            return Err(OpError::malformed(format!(
                "QLinearSoftmax axis {} is out of range for rank {rank}",
                self.axis
            )));
        }
        let a = a as usize;
        let outer: usize = shape[..a.min(shape.len())].iter().product();
        if self.opset < 13 {
            return Ok((outer, shape[a.min(shape.len())..].iter().product(), 1));
        }
        Ok((outer, shape.get(a).copied().unwrap_or(1), shape.get(a + 1..).map_or(1, |s| s.iter().product())))
    }
}

/// onnxruntime's exponential table (`QlinearBuildLookupTableUint32` with f32 entries).
fn table(x_scale: f32, d: usize, signed: bool) -> [f32; 256] {
    let bits = ((f32::MAX / d as f32) as f64).ln();
    let shift = (bits - 5.0).max(0.0) / x_scale as f64;
    let mut t = [0f32; 256];
    for i in 0..256i32 {
        let v = ((i as f64 - 255.0 + shift) * x_scale as f64).exp();
        let at = if signed { (i - 128) as u8 } else { i as u8 };
        t[at as usize] = v as f32;
    }
    t
}

impl Op for QLinearSoftmax {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        qtype_of(x.dtype).map_err(|e| e.context("QLinearSoftmax"))?;
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let opt = |i: usize| inputs.get(i).copied().flatten();
        let x = input(inputs, 0)?;
        let dtype = x.dtype();
        let px = scalar_params(input(inputs, 1)?, opt(2), dtype, "X")?;
        let py = scalar_params(input(inputs, 3)?, opt(4), dtype, "Y")?;
        let (outer, d, inner) = self.split(&x.shape)?;
        let mut y = Tensor { shape: x.shape.clone(), data: Data::U8(vec![0; x.len()]) };
        if x.is_empty() || d == 0 {
            if dtype == DType::I8 {
                y.data = Data::I8(vec![0; x.len()]);
            }
            return Ok(vec![y]);
        }
        let signed = dtype == DType::I8;
        let t = table(px.scale, d, signed);
        let y_scale = (1.0f32 / py.scale).floor();
        let codes: Vec<u8> = match &x.data {
            Data::U8(v) => v.clone(),
            Data::I8(v) => v.iter().map(|&c| c as u8).collect(),
            _ => return Err(OpError::mismatch(format!("X must be uint8 or int8, got {dtype:?}"))),
        };
        let mut out = vec![0u8; codes.len()];
        let mut row = vec![0f32; d];
        for o in 0..outer {
            for k in 0..inner {
                let at = |j: usize| (o * d + j) * inner + k;
                // Each code's entry, the table shifted so that the row's largest code meets
                // the top of the table.
                if signed {
                    let max = (0..d).map(|j| codes[at(j)] as i8).max().unwrap_or(0) as i32;
                    for (j, r) in row.iter_mut().enumerate() {
                        *r = t[(127 - max + codes[at(j)] as i8 as i32) as u8 as usize];
                    }
                } else {
                    let max = (0..d).map(|j| codes[at(j)]).max().unwrap_or(0) as usize;
                    for (j, r) in row.iter_mut().enumerate() {
                        *r = t[255 - max + codes[at(j)] as usize];
                    }
                }
                let mut sum = 0f32;
                for &r in &row {
                    sum += r;
                }
                if sum == 0.0 {
                    continue;
                }
                for (j, &r) in row.iter().enumerate() {
                    let q = crate::quant::round_half_even((r * y_scale) / sum);
                    out[at(j)] = if signed {
                        let v = q.wrapping_add(py.zero_point);
                        if v > 255 {
                            255
                        } else {
                            v as u8
                        }
                    } else {
                        (q as u32).wrapping_add(py.zero_point as u32).min(255) as u8
                    };
                }
            }
        }
        y.data = if signed { Data::I8(out.into_iter().map(|b| b as i8).collect()) } else { Data::U8(out) };
        Ok(vec![y])
    }
}
