//! `qplay.tfl.Quantize`, `qplay.tfl.Requantize`, `qplay.tfl.Dequantize`: TFLite's QUANTIZE and
//! DEQUANTIZE on int8 (`reference_ops::AffineQuantize`, `Requantize`, `Dequantize`).
//!
//! - float → int8: `round(x / scale)` in float, half away from zero, plus the zero point,
//!   clamped — TFLite's rounding, where ONNX's QuantizeLinear rounds half to even.
//! - int8 → int8 (a QUANTIZE between two scales): `(q − zp_in)` times the fixed-point
//!   multiplier of `scale_in / scale_out`, plus `zp_out`, clamped.
//! - int8 → float: `scale · (q − zp)` in double, rounded once to float.

use super::fixed::{mbqm, quantize_multiplier, round_away};
use super::{attr_f32, attr_i32, check_multiplier, i8_data};
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// The op types.
pub const QUANTIZE: &str = "qplay.tfl.Quantize";
/// int8 → int8.
pub const REQUANTIZE: &str = "qplay.tfl.Requantize";
/// int8 → float.
pub const DEQUANTIZE: &str = "qplay.tfl.Dequantize";

/// What the op converts.
#[derive(Debug, Clone, Copy)]
pub enum Conversion {
    /// float → int8 with `(scale, zero_point)`.
    Quantize(f32, i32),
    /// int8 → int8: input zero point, `(multiplier, shift)`, output zero point.
    Requantize(i32, (i32, i32), i32),
    /// int8 → float with `(scale, zero_point)`.
    Dequantize(f32, i32),
}

/// A built QUANTIZE or DEQUANTIZE.
#[derive(Debug, Clone)]
pub struct TflQuantize {
    /// The conversion.
    pub conversion: Conversion,
}

/// Builds `qplay.tfl.Quantize` (attributes `y_scale`, `y_zp`).
pub fn build_quantize(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let conversion = Conversion::Quantize(attr_f32(node, "y_scale")?, attr_i32(node, "y_zp")?);
    Ok(Box::new(TflQuantize { conversion }))
}

/// Builds `qplay.tfl.Requantize` (attributes `x_scale`, `x_zp`, `y_scale`, `y_zp`).
pub fn build_requantize(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let m = attr_f32(node, "x_scale")? as f64 / attr_f32(node, "y_scale")? as f64;
    let conversion = Conversion::Requantize(
        attr_i32(node, "x_zp")?,
        check_multiplier(quantize_multiplier(m))?,
        attr_i32(node, "y_zp")?,
    );
    Ok(Box::new(TflQuantize { conversion }))
}

/// Builds `qplay.tfl.Dequantize` (attributes `x_scale`, `x_zp`).
pub fn build_dequantize(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let conversion = Conversion::Dequantize(attr_f32(node, "x_scale")?, attr_i32(node, "x_zp")?);
    Ok(Box::new(TflQuantize { conversion }))
}

/// TFLite's float → int8 (`AffineQuantize`).
pub fn quantize_value(x: f32, scale: f32, zp: i32) -> i8 {
    (round_away(x / scale) as i32).saturating_add(zp).clamp(-128, 127) as i8
}

impl Op for TflQuantize {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        let (want, out) = match self.conversion {
            Conversion::Quantize(..) => (DType::F32, DType::I8),
            Conversion::Requantize(..) => (DType::I8, DType::I8),
            Conversion::Dequantize(..) => (DType::I8, DType::F32),
        };
        if x.dtype != want {
            return Err(OpError::mismatch(format!("the input must be {want:?}, got {:?}", x.dtype)));
        }
        Ok(vec![Fact::new(out, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let data = match self.conversion {
            Conversion::Quantize(scale, zp) => {
                let v = x.as_f32().map_err(OpError::mismatch)?;
                Data::I8(v.iter().map(|&f| quantize_value(f, scale, zp)).collect())
            }
            Conversion::Requantize(zin, (m, s), zout) => Data::I8(
                i8_data(x, "the input")?
                    .iter()
                    .map(|&q| mbqm(q as i32 - zin, m, s).wrapping_add(zout).clamp(-128, 127) as i8)
                    .collect(),
            ),
            Conversion::Dequantize(scale, zp) => Data::F32(
                i8_data(x, "the input")?.iter().map(|&q| (scale as f64 * (q as i32 - zp) as f64) as f32).collect(),
            ),
        };
        Ok(vec![Tensor { shape: x.shape.clone(), data }])
    }
}
