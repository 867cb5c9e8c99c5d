//! `qplay.tfl.Quantize`, `qplay.tfl.Requantize`, `qplay.tfl.Dequantize`: TFLite's QUANTIZE and
//! DEQUANTIZE on integer codes, int8, uint8 or int16 (`reference_ops::AffineQuantize`,
//! `Requantize`, `Dequantize`).
//!
//! - float → codes: `round(x / scale)` in float, half away from zero, plus the zero point,
//!   clamped — TFLite's rounding, where ONNX's QuantizeLinear rounds half to even.
//! - codes → codes (a QUANTIZE between two scales or types, e.g. a uint8 model input to its
//!   int8 graph): `(q − zp_in)` times the fixed-point multiplier of `scale_in / scale_out`, plus
//!   `zp_out`, clamped to the output type.
//! - codes → float: `scale · (q − zp)` in double, rounded once to float.

use super::fixed::{mbqm, quantize_multiplier, round_away};
use super::{attr_f32, attr_i32, check_multiplier};
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// The op types.
pub const QUANTIZE: &str = "qplay.tfl.Quantize";
/// int8 → int8.
pub const REQUANTIZE: &str = "qplay.tfl.Requantize";
/// int8 → float.
pub const DEQUANTIZE: &str = "qplay.tfl.Dequantize";

/// Whether an op type is one of the three conversions (no layer's arithmetic).
pub fn is_conversion(op_type: &str) -> bool {
    [QUANTIZE, REQUANTIZE, DEQUANTIZE].contains(&op_type)
}

/// What the op converts.
#[derive(Debug, Clone, Copy)]
pub enum Conversion {
    /// float → 8 bits with `(scale, zero_point)`.
    Quantize(f32, i32),
    /// 8 bits → 8 bits: input zero point, `(multiplier, shift)`, output zero point.
    Requantize(i32, (i32, i32), i32),
    /// 8 bits → float with `(scale, zero_point)`.
    Dequantize(f32, i32),
}

/// A built QUANTIZE or DEQUANTIZE.
#[derive(Debug, Clone)]
pub struct TflQuantize {
    /// The conversion.
    pub conversion: Conversion,
    /// The output's type (QUANTIZE: int8 or uint8; DEQUANTIZE: float).
    pub out: DType,
}

/// The output type of a QUANTIZE: attribute `y_type`, ONNX's code (3 int8, the default; 2
/// uint8; 5 int16).
fn out_type(node: &Node) -> Result<DType, OpError> {
    match node.attrs.int("y_type", 3) {
        2 => Ok(DType::U8),
        3 => Ok(DType::I8),
        5 => Ok(DType::I16),
        t => Err(OpError::malformed(format!("y_type {t} must be 2 (uint8), 3 (int8) or 5 (int16)"))),
    }
}

fn range(t: DType) -> (i32, i32) {
    match t {
        DType::U8 => (0, 255),
        DType::I16 => (-32768, 32767),
        _ => (-128, 127),
    }
}

fn zp_in_range(zp: i32, t: DType) -> Result<i32, OpError> {
    let (lo, hi) = range(t);
    if !(lo..=hi).contains(&zp) {
        return Err(OpError::malformed(format!("zero point {zp} outside the {t:?} range")));
    }
    Ok(zp)
}

/// Builds `qplay.tfl.Quantize` (attributes `y_scale`, `y_zp`, `y_type`).
pub fn build_quantize(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let out = out_type(node)?;
    let conversion = Conversion::Quantize(attr_f32(node, "y_scale")?, zp_in_range(attr_i32(node, "y_zp")?, out)?);
    Ok(Box::new(TflQuantize { conversion, out }))
}

/// Builds `qplay.tfl.Requantize` (attributes `x_scale`, `x_zp`, `y_scale`, `y_zp`, `y_type`).
pub fn build_requantize(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let out = out_type(node)?;
    let m = attr_f32(node, "x_scale")? as f64 / attr_f32(node, "y_scale")? as f64;
    let conversion = Conversion::Requantize(
        attr_i32(node, "x_zp")?,
        check_multiplier(quantize_multiplier(m))?,
        zp_in_range(attr_i32(node, "y_zp")?, out)?,
    );
    Ok(Box::new(TflQuantize { conversion, out }))
}

/// Builds `qplay.tfl.Dequantize` (attributes `x_scale`, `x_zp`).
pub fn build_dequantize(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let conversion = Conversion::Dequantize(attr_f32(node, "x_scale")?, attr_i32(node, "x_zp")?);
    Ok(Box::new(TflQuantize { conversion, out: DType::F32 }))
}

/// TFLite's float → int8 (`AffineQuantize`).
pub fn quantize_value(x: f32, scale: f32, zp: i32) -> i8 {
    quantize_code(x, scale, zp, (-128, 127)) as i8
}

fn quantize_code(x: f32, scale: f32, zp: i32, (lo, hi): (i32, i32)) -> i32 {
    (round_away(x / scale) as i32).saturating_add(zp).clamp(lo, hi)
}

/// Integer codes (int8, uint8, int16) as i32, whichever the type.
fn codes(t: &Tensor) -> Result<Vec<i32>, OpError> {
    match &t.data {
        Data::I8(v) => Ok(v.iter().map(|&q| q as i32).collect()),
        Data::U8(v) => Ok(v.iter().map(|&q| q as i32).collect()),
        Data::I16(v) => Ok(v.iter().map(|&q| q as i32).collect()),
        _ => Err(OpError::mismatch(format!("the input must be int8, uint8 or int16, got {:?}", t.dtype()))),
    }
}

fn wrap(v: Vec<i32>, t: DType) -> Data {
    match t {
        DType::U8 => Data::U8(v.into_iter().map(|q| q as u8).collect()),
        DType::I16 => Data::I16(v.into_iter().map(|q| q as i16).collect()),
        _ => Data::I8(v.into_iter().map(|q| q as i8).collect()),
    }
}

impl Op for TflQuantize {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        let ok = match self.conversion {
            Conversion::Quantize(..) => x.dtype == DType::F32,
            _ => matches!(x.dtype, DType::I8 | DType::U8 | DType::I16),
        };
        if !ok {
            return Err(OpError::mismatch(format!("the input's type {:?} does not fit this conversion", x.dtype)));
        }
        Ok(vec![Fact::new(self.out, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let data = match self.conversion {
            Conversion::Quantize(scale, zp) => {
                let v = x.as_f32().map_err(OpError::mismatch)?;
                wrap(v.iter().map(|&f| quantize_code(f, scale, zp, range(self.out))).collect(), self.out)
            }
            Conversion::Requantize(zin, (m, s), zout) => {
                let (lo, hi) = range(self.out);
                wrap(
                    codes(x)?.iter().map(|&q| mbqm(q - zin, m, s).wrapping_add(zout).clamp(lo, hi)).collect(),
                    self.out,
                )
            }
            Conversion::Dequantize(scale, zp) => {
                Data::F32(codes(x)?.iter().map(|&q| (scale as f64 * (q - zp) as f64) as f32).collect())
            }
        };
        Ok(vec![Tensor { shape: x.shape.clone(), data }])
    }
}
