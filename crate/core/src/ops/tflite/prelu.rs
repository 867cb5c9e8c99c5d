//! `qplay.tfl.Prelu`: TFLite's int8 PRELU (`reference_ops::BroadcastPrelu4DSlow`, quantized):
//! `v = x − x_zp`; where `v ≥ 0` the output is `v` requantized by `x_scale / y_scale`, else
//! `v · (alpha − alpha_zp)` requantized by `x_scale · alpha_scale / y_scale` (both multipliers
//! from the float quotients, as LiteRT's `Prepare` computes them), plus `y_zp`, clamped to int8.
//! The alpha constant broadcasts over the last axis (one value per channel) or is one value.

use super::fixed::{mbqm, quantize_multiplier};
use super::{attr_f32, attr_i32, check_multiplier, i8_data};
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// The op type.
pub const PRELU: &str = "qplay.tfl.Prelu";

/// A built int8 PRELU.
#[derive(Debug)]
pub struct TflPrelu {
    /// Input zero point.
    pub x_zp: i32,
    /// Alpha's zero point.
    pub alpha_zp: i32,
    /// Output zero point.
    pub y_zp: i32,
    /// `x_scale / y_scale` as a multiplier and shift.
    pub positive: (i32, i32),
    /// `x_scale · alpha_scale / y_scale`.
    pub negative: (i32, i32),
}

/// Builds `qplay.tfl.Prelu` (`x_scale`, `x_zp`, `alpha_scale`, `alpha_zp`, `y_scale`, `y_zp`);
/// inputs: int8 codes and the int8 alpha.
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let (xs, a_s, ys) = (attr_f32(node, "x_scale")?, attr_f32(node, "alpha_scale")?, attr_f32(node, "y_scale")?);
    Ok(Box::new(TflPrelu {
        x_zp: attr_i32(node, "x_zp")?,
        alpha_zp: attr_i32(node, "alpha_zp")?,
        y_zp: attr_i32(node, "y_zp")?,
        positive: check_multiplier(quantize_multiplier((xs / ys) as f64))?,
        negative: check_multiplier(quantize_multiplier((xs * a_s / ys) as f64))?,
    }))
}

/// How many alpha values there are (1, or the last axis of `x`), or an error.
fn alpha_width(x: &[usize], alpha: &[usize]) -> Result<usize, OpError> {
    let n: usize = alpha.iter().product();
    let c = x.last().copied().unwrap_or(1);
    let last_only = alpha.len() <= x.len() && alpha.iter().rev().skip(1).all(|&d| d == 1);
    if n == 1 || (last_only && n == c) {
        Ok(n)
    } else {
        Err(OpError::mismatch(format!("alpha {alpha:?} must be one value or one per channel of {x:?}")))
    }
}

impl Op for TflPrelu {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (x, a) = (input_fact(inputs, 0)?, input_fact(inputs, 1)?);
        if x.dtype != DType::I8 || a.dtype != DType::I8 {
            return Err(OpError::mismatch("PRELU takes int8 codes and an int8 alpha"));
        }
        alpha_width(&x.shape, &a.shape)?;
        Ok(vec![Fact::new(DType::I8, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (x, a) = (input(inputs, 0)?, input(inputs, 1)?);
        let c = alpha_width(&x.shape, &a.shape)?;
        let (xv, av) = (i8_data(x, "the input")?, i8_data(a, "alpha")?);
        let y: Vec<i8> = xv
            .iter()
            .enumerate()
            .map(|(i, &q)| {
                let v = q as i32 - self.x_zp;
                let out = if v >= 0 {
                    mbqm(v, self.positive.0, self.positive.1)
                } else {
                    let alpha = av[i % c] as i32 - self.alpha_zp;
                    mbqm(v * alpha, self.negative.0, self.negative.1)
                };
                out.saturating_add(self.y_zp).clamp(-128, 127) as i8
            })
            .collect();
        Ok(vec![Tensor { shape: x.shape.clone(), data: Data::I8(y) }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attr, Attrs};

    fn node() -> Node {
        let attrs = [
            ("x_scale", Attr::Float(0.25)),
            ("x_zp", Attr::Int(0)),
            ("alpha_scale", Attr::Float(0.5)),
            ("alpha_zp", Attr::Int(0)),
            ("y_scale", Attr::Float(0.25)),
            ("y_zp", Attr::Int(0)),
        ];
        Node {
            name: "p".into(),
            op_type: PRELU.into(),
            inputs: vec![],
            outputs: vec![],
            attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
            fused: Default::default(),
        }
    }

    /// Positive codes pass (multiplier 1); negative ones are scaled by their channel's alpha
    /// (`alpha · 0.5`: codes 1 and 2 are 0.5 and 1.0) with TFLite's fixed-point rounding: the
    /// rounding doubling high multiply takes −3.5 to −3.
    #[test]
    fn negative_codes_take_their_channels_slope() {
        let op = build(&node(), &BuildCtx { opset: 17 }).unwrap();
        let x = Tensor { shape: vec![1, 2, 2], data: Data::I8(vec![5, -5, -7, 8]) };
        let alpha = Tensor { shape: vec![1, 1, 2], data: Data::I8(vec![1, 2]) };
        let y = op.eval(&[Some(&x), Some(&alpha)]).unwrap().remove(0);
        assert_eq!(y.data, Data::I8(vec![5, -5, -3, 8]));
        let wrong = Tensor { shape: vec![3], data: Data::I8(vec![1, 2, 3]) };
        assert!(op.eval(&[Some(&x), Some(&wrong)]).is_err());
    }
}
