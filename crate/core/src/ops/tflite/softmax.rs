//! `qplay.tfl.Softmax`: TFLite's int8 softmax over the last axis, as its reference kernel
//! computes it (`reference_ops::Softmax` on int8, parameters from `SoftmaxPrepare` with
//! `kernel_type == kReference`): each input's difference from its row's maximum, scaled by
//! `beta · x_scale` into a Q5.26 fixed-point value, gemmlowp's `exp_on_negative_values`
//! summed in Q12.19, the sum's reciprocal, each exp times that reciprocal, rounded to the
//! output's fixed scale 1/256 and zero point −128. Differences below `diff_min` give −128.

use super::fixed::{exp_on_negative_values, mbqm_gt1, quantize_multiplier, rdbpot, reciprocal, srdhm};
use super::{attr_f32, i8_data};
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// The op type.
pub const SOFTMAX: &str = "qplay.tfl.Softmax";

const SCALED_DIFF_INTEGER_BITS: i32 = 5;
const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// A built int8 softmax.
#[derive(Debug, Clone)]
pub struct TflSoftmax {
    /// `beta · x_scale · 2^26` as a multiplier (`PreprocessSoftmaxScaling`).
    pub multiplier: i32,
    /// Its left shift.
    pub left_shift: i32,
    /// The smallest difference from the row's maximum that is not flushed to −128.
    pub diff_min: i32,
}

/// Builds `qplay.tfl.Softmax` (attributes `beta`, `x_scale`).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let beta = node.attrs.float("beta", 1.0);
    let x_scale = attr_f32(node, "x_scale")?;
    let max_real = ((1u64 << 31) - 1) as f64;
    let real = (beta as f64 * x_scale as f64 * (1u64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64).min(max_real);
    if real.is_nan() || real <= 1.0 {
        return Err(OpError::malformed(format!(
            "beta {beta} · input scale {x_scale} is too small for TFLite's int8 softmax"
        )));
    }
    let (multiplier, left_shift) = quantize_multiplier(real);
    if !(0..=31).contains(&left_shift) {
        return Err(OpError::malformed(format!("softmax shift {left_shift} out of range")));
    }
    // CalculateInputRadius(5, left_shift, 31).
    let radius = (((1i64 << SCALED_DIFF_INTEGER_BITS) - 1) as f64 * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64
        / (1i64 << left_shift) as f64)
        .floor();
    Ok(Box::new(TflSoftmax { multiplier, left_shift, diff_min: -(radius as i32) }))
}

impl TflSoftmax {
    fn row(&self, x: &[i8], y: &mut [i8]) -> Result<(), OpError> {
        let max = x.iter().copied().max().unwrap_or(i8::MIN) as i32;
        let scaled = |v: i8| {
            let diff = v as i32 - max;
            (diff >= self.diff_min).then(|| mbqm_gt1(diff, self.multiplier, self.left_shift))
        };
        let mut sum = 0i32;
        for &v in x {
            if let Some(d) = scaled(v) {
                sum = sum.wrapping_add(rdbpot(
                    exp_on_negative_values(d, SCALED_DIFF_INTEGER_BITS),
                    ACCUMULATION_INTEGER_BITS,
                ));
            }
        }
        let (shifted_scale, bits_over_unit) = reciprocal(sum, ACCUMULATION_INTEGER_BITS);
        let exponent = bits_over_unit + 31 - 8;
        if !(0..=31).contains(&exponent) {
            return Err(OpError::internal(format!("softmax exponent {exponent} out of range")));
        }
        for (o, &v) in y.iter_mut().zip(x) {
            *o = match scaled(v) {
                Some(d) => {
                    let e = exp_on_negative_values(d, SCALED_DIFF_INTEGER_BITS);
                    let unsat = rdbpot(srdhm(shifted_scale, e), exponent);
                    (unsat - 128).clamp(-128, 127) as i8
                }
                None => i8::MIN,
            };
        }
        Ok(())
    }
}

impl Op for TflSoftmax {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        if x.dtype != DType::I8 || x.shape.is_empty() {
            return Err(OpError::mismatch(format!("the input must be int8 of rank ≥ 1, got {:?}", x.dtype)));
        }
        Ok(vec![Fact::new(DType::I8, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let xv = i8_data(x, "the input")?;
        let depth = x.shape.last().copied().unwrap_or(1).max(1);
        let mut y = vec![0i8; xv.len()];
        for (xr, yr) in xv.chunks(depth).zip(y.chunks_mut(depth)) {
            self.row(xr, yr)?;
        }
        Ok(vec![Tensor { shape: x.shape.clone(), data: Data::I8(y) }])
    }
}
