//! `qplay.tfl.Softmax`: TFLite's int8 softmax over the last axis, as its reference kernel
//! computes it (`reference_ops::Softmax` on int8, parameters from `SoftmaxPrepare` with
//! `kernel_type == kReference`): each input's difference from its row's maximum, scaled by
//! `beta · x_scale` into a Q5.26 fixed-point value, gemmlowp's `exp_on_negative_values`
//! summed in Q12.19, the sum's reciprocal, each exp times that reciprocal, rounded to the
//! output's fixed scale 1/256 and zero point −128. Differences below `diff_min` give −128.

use super::fixed::{exp_on_negative_values, mbqm, mbqm_gt1, quantize_multiplier, rdbpot, reciprocal, srdhm};
use super::int16::{lut_lookup, lut_populate};
use super::{attr_f32, code_bits, codes_of, Code};
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

/// A built int16 softmax (`reference_ops::SoftmaxInt16`): output scale 2^−15, zero point 0.
#[derive(Debug, Clone)]
pub struct TflSoftmax16 {
    /// `x_scale · beta / (10 / 65535)` as multiplier and shift: differences from the row's
    /// maximum onto the exp table's input range [−10, 0].
    pub multiplier: (i32, i32),
    /// `exp(x)` for x in [−10, 0] (513 entries).
    exp_lut: Vec<i16>,
    /// `1 / (1 + x)` for x in [0, 1].
    one_over_one_plus_x_lut: Vec<i16>,
}

/// Builds `qplay.tfl.Softmax` (attributes `beta`, `x_scale`, `bits`: 8, the default, or 16).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let beta = node.attrs.float("beta", 1.0);
    let x_scale = attr_f32(node, "x_scale")?;
    if code_bits(node)? == 16 {
        // SoftmaxPrepare for int16.
        let range = 65535.0f64;
        let rescale = (x_scale * beta) as f64 / (10.0 / 65535.0);
        let multiplier = quantize_multiplier(rescale);
        if !rescale.is_finite() || rescale <= 0.0 || !(-31..=30).contains(&multiplier.1) {
            return Err(OpError::malformed(format!(
                "beta {beta} · input scale {x_scale} is out of range for TFLite's int16 softmax"
            )));
        }
        return Ok(Box::new(TflSoftmax16 {
            multiplier,
            exp_lut: lut_populate(10.0 / range, 32767, 2.0 / range, 0, f64::exp),
            one_over_one_plus_x_lut: lut_populate(1.0 / range, -32768, 2.0 / range, 0, |v| 1.0 / (1.0 + v)),
        }));
    }
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
    /// The fixed-point exp of every code difference an 8-bit row can have: entry `d` is
    /// `exp(−d · scale · β)` in Q0.31 as [`Self::row`] computes it, 0 where the difference lies
    /// beyond `diff_min` (such a code adds nothing to the sum and becomes the lowest code, as a
    /// 0 there does). The GPU kernel reads it.
    pub fn exp_table(&self) -> Vec<i32> {
        (0..256)
            .map(|d: i32| {
                let diff = -d;
                if diff >= self.diff_min {
                    exp_on_negative_values(mbqm_gt1(diff, self.multiplier, self.left_shift), SCALED_DIFF_INTEGER_BITS)
                } else {
                    0
                }
            })
            .collect()
    }

    /// One row; the output is `unsat + T::MIN`, clamped (int8: zero point −128; uint8: 0).
    fn row<T: Code>(&self, x: &[T], y: &mut [T]) -> Result<(), OpError> {
        let max = x.iter().map(|v| v.get()).max().unwrap_or(T::MIN);
        let scaled = |v: T| {
            let diff = v.get() - max;
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
            *o = T::put(match scaled(v) {
                Some(d) => {
                    let e = exp_on_negative_values(d, SCALED_DIFF_INTEGER_BITS);
                    let unsat = rdbpot(srdhm(shifted_scale, e), exponent);
                    (unsat + T::MIN).clamp(T::MIN, T::MAX)
                }
                None => T::MIN,
            });
        }
        Ok(())
    }

    fn run<T: Code>(&self, x: &Tensor) -> Result<Tensor, OpError> {
        let xv = codes_of::<T>(x, "the input")?;
        let depth = x.shape.last().copied().unwrap_or(1).max(1);
        let mut y = vec![T::default(); xv.len()];
        for (xr, yr) in xv.chunks(depth).zip(y.chunks_mut(depth)) {
            self.row(xr, yr)?;
        }
        Ok(Tensor { shape: x.shape.clone(), data: T::data(y) })
    }
}

impl Op for TflSoftmax {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        if !matches!(x.dtype, DType::I8 | DType::U8) || x.shape.is_empty() {
            return Err(OpError::mismatch(format!("the input must be int8 or uint8 of rank ≥ 1, got {:?}", x.dtype)));
        }
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        Ok(vec![if x.dtype() == DType::U8 { self.run::<u8>(x)? } else { self.run::<i8>(x)? }])
    }
}

impl TflSoftmax16 {
    fn row(&self, x: &[i16], y: &mut [i16]) {
        let max = x.iter().copied().max().unwrap_or(i16::MIN) as i32;
        let mut sum = 0i32;
        for (o, &v) in y.iter_mut().zip(x) {
            let scaled = mbqm(v as i32 - max, self.multiplier.0, self.multiplier.1);
            let sym = scaled.wrapping_add(32767).clamp(-32768, 32767) as i16;
            *o = lut_lookup(sym, &self.exp_lut);
            sum = sum.wrapping_add(*o as i32);
        }
        let headroom_plus_one = (sum as u32).leading_zeros().clamp(1, 31);
        let shifted_sum = (((sum as i64) << (headroom_plus_one - 1)) + (1 << 13)) >> 14;
        let sym_shifted_sum = (shifted_sum - ((1 << 15) + (1 << 16))).clamp(-32768, 32767) as i16;
        let reciprocal = lut_lookup(sym_shifted_sum, &self.one_over_one_plus_x_lut) as i64;
        let right_shift = 31 - headroom_plus_one;
        let round = if right_shift > 0 { 1i64 << (right_shift - 1) } else { 0 };
        for o in y.iter_mut() {
            let result = ((*o as i64 * reciprocal + round) >> right_shift) as i32;
            *o = result.clamp(0, 32767) as i16;
        }
    }
}

impl Op for TflSoftmax16 {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        if x.dtype != DType::I16 || x.shape.is_empty() {
            return Err(OpError::mismatch(format!("the input must be int16 of rank ≥ 1, got {:?}", x.dtype)));
        }
        Ok(vec![Fact::new(DType::I16, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let xv = codes_of::<i16>(x, "the input")?;
        let depth = x.shape.last().copied().unwrap_or(1).max(1);
        let mut y = vec![0i16; xv.len()];
        for (xr, yr) in xv.chunks(depth).zip(y.chunks_mut(depth)) {
            self.row(xr, yr);
        }
        Ok(vec![Tensor { shape: x.shape.clone(), data: Data::I16(y) }])
    }
}
