//! TFLite's int8 element-wise activations as 256-entry tables for [`qplay.Lookup`]
//! ([`crate::ops::quant::lookup`]): each is a function of one int8 code, so a table computed by
//! TFLite's own integer (or float) formula for every code gives its results exactly.
//!
//! - LOGISTIC and TANH: LiteRT's int8 kernels *are* tables (`LUTPopulate<int8_t>`: the code
//!   dequantized in float, `1 / (1 + exp(−x))` or `tanh(x)` in float, rescaled and rounded
//!   half away from zero).
//! - HARD_SWISH: the reference kernel's 16-bit fixed-point formula
//!   (`reference_ops::HardSwish`, parameters from `HardSwishPrepare`).
//! - LEAKY_RELU: `reference_ops::QuantizeLeakyRelu`, one multiplier for each sign.
//!
//! Tables are indexed by the code's byte (`table[x as u8]`), as `qplay.Lookup` reads them. The
//! `*_fn` forms give the formula on one code, for uint8 tables ([`table_u8`]) and int16 ones
//! ([`super::int16::table16`]).

use super::fixed::{mbqm, quantize_multiplier, rdbpot16, round_away, srdhm16};

/// One int8 table.
pub type Table = [i8; 256];

fn table(f: impl Fn(i32) -> i32) -> Table {
    let mut t = [0i8; 256];
    for v in -128i32..=127 {
        t[v as i8 as u8 as usize] = f(v).clamp(-128, 127) as i8;
    }
    t
}

/// The 256-entry table of a uint8 tensor (TF1's quantized models), indexed by the code:
/// `f(code)` clamped to 0…255.
pub fn table_u8(f: impl Fn(i32) -> i32) -> [u8; 256] {
    std::array::from_fn(|v| f(v as i32).clamp(0, 255) as u8)
}

/// `LUTPopulate<int8_t>` with a float transform.
pub fn float_lut(in_scale: f32, in_zp: i32, out_scale: f32, out_zp: i32, f: impl Fn(f32) -> f32) -> Table {
    table(float_lut_fn(in_scale, in_zp, out_scale, out_zp, f))
}

/// `LUTPopulate<int8_t>` / `<uint8_t>` on one code: dequantized in float, transformed, rescaled
/// and rounded half away from zero, plus the zero point (clamp to the type after).
pub fn float_lut_fn(
    in_scale: f32,
    in_zp: i32,
    out_scale: f32,
    out_zp: i32,
    f: impl Fn(f32) -> f32,
) -> impl Fn(i32) -> i32 {
    let inverse_scale = 1.0 / out_scale;
    move |v| {
        let dequantized = in_scale * (v - in_zp) as f32;
        let rescaled = round_away(f(dequantized) * inverse_scale);
        (rescaled + out_zp as f32) as i32
    }
}

/// LOGISTIC (int8).
pub fn logistic(in_scale: f32, in_zp: i32, out_scale: f32, out_zp: i32) -> Table {
    table(logistic_fn(in_scale, in_zp, out_scale, out_zp))
}

/// LOGISTIC on one code, any 8-bit type.
pub fn logistic_fn(in_scale: f32, in_zp: i32, out_scale: f32, out_zp: i32) -> impl Fn(i32) -> i32 {
    float_lut_fn(in_scale, in_zp, out_scale, out_zp, |x| 1.0 / (1.0 + (-x).exp()))
}

/// TANH (int8).
pub fn tanh(in_scale: f32, in_zp: i32, out_scale: f32, out_zp: i32) -> Table {
    table(tanh_fn(in_scale, in_zp, out_scale, out_zp))
}

/// TANH on one code, any 8-bit type.
pub fn tanh_fn(in_scale: f32, in_zp: i32, out_scale: f32, out_zp: i32) -> impl Fn(i32) -> i32 {
    float_lut_fn(in_scale, in_zp, out_scale, out_zp, f32::tanh)
}

/// `DownScaleInt32ToInt16Multiplier`.
fn to_int16_multiplier(m: i32) -> i16 {
    if m >= i32::MAX - (1 << 15) {
        return i16::MAX;
    }
    ((m + (1 << 15)) >> 16) as i16
}

fn saturating_left_shift16(v: i16, amount: i32) -> i16 {
    let r = v as i64 * (1i64 << amount.clamp(0, 62));
    r.clamp(i16::MIN as i64, i16::MAX as i64) as i16
}

/// TFLite's (non-rounding) `SaturatingDoublingHighMul` on int16 (hard_swish.h).
fn doubling_high_mul16(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    ((a as i32 * b as i32) / (1 << 15)) as i16
}

/// HARD_SWISH (int8); `None` when the scales give an output exponent above zero (LiteRT
/// refuses such a model when it is prepared).
pub fn hard_swish(in_scale: f32, in_zp: i32, out_scale: f32, out_zp: i32) -> Option<Table> {
    hard_swish_fn(in_scale, in_zp, out_scale, out_zp).map(table)
}

/// HARD_SWISH on one code, any 8-bit type (`reference_ops::HardSwish`, clamp to the type
/// after); `None` as for [`hard_swish`].
pub fn hard_swish_fn(in_scale: f32, in_zp: i32, out_scale: f32, out_zp: i32) -> Option<impl Fn(i32) -> i32> {
    let hires_input_scale = (1.0f32 / 128.0) * in_scale;
    let reluish_scale = 3.0f32 / 32768.0;
    let (out_m, out_exp) = quantize_multiplier((hires_input_scale / out_scale) as f64);
    let (relu_m, relu_exp) = quantize_multiplier((hires_input_scale / reluish_scale) as f64);
    if out_exp > 0 || !(-15..=16).contains(&relu_exp) || out_exp < -15 {
        return None;
    }
    let (out_m, relu_m) = (to_int16_multiplier(out_m), to_int16_multiplier(relu_m));
    Some(move |v: i32| {
        let input_value = (v - in_zp) as i16;
        let hires = (input_value as i32 * (1 << 7)) as i16;
        let preshift_output = srdhm16(hires, out_m);
        let mut reluish = hires;
        if relu_exp > 0 {
            reluish = saturating_left_shift16(reluish, relu_exp - 1);
        }
        reluish = srdhm16(reluish, relu_m);
        if relu_exp > 0 {
            reluish = saturating_left_shift16(reluish, 1);
        }
        if relu_exp < 0 {
            reluish = rdbpot16(reluish, -relu_exp);
        }
        reluish = ((reluish as i32 + (1 << 15)) >> 1) as i16;
        let preshift = doubling_high_mul16(reluish, preshift_output);
        let out = rdbpot16(preshift, -out_exp).wrapping_add(out_zp as i16);
        out as i32
    })
}

/// LEAKY_RELU (int8): the multipliers from float products, as `LeakyReluPrepare` computes them.
pub fn leaky_relu(in_scale: f32, in_zp: i32, out_scale: f32, out_zp: i32, alpha: f32) -> Table {
    table(leaky_relu_fn(in_scale, in_zp, out_scale, out_zp, alpha))
}

/// `reference_ops::QuantizeLeakyRelu` on one code, any integer type (clamp to the type after).
pub fn leaky_relu_fn(in_scale: f32, in_zp: i32, out_scale: f32, out_zp: i32, alpha: f32) -> impl Fn(i32) -> i32 {
    let (alpha_m, alpha_shift) = quantize_multiplier((in_scale * alpha / out_scale) as f64);
    let (id_m, id_shift) = quantize_multiplier((in_scale / out_scale) as f64);
    let negative = alpha_m < 0;
    let safe_alpha = alpha_m.wrapping_abs();
    move |v| {
        let x = v - in_zp;
        if x >= 0 {
            out_zp.wrapping_add(mbqm(x, id_m, id_shift))
        } else {
            let a = mbqm(x, safe_alpha, alpha_shift);
            out_zp.wrapping_add(if negative { a.wrapping_neg() } else { a })
        }
    }
}

/// RELU, RELU6, RELU_N1_TO_1 (int8, not fused): `QuantizedReluX` — the code requantized by the
/// multiplier of `in_scale / out_scale`, clamped to the bounds quantized with the output's
/// scale (`lo`, and `hi` unless unbounded).
pub fn relu_x(in_scale: f32, in_zp: i32, out_scale: f32, out_zp: i32, lo: f32, hi: Option<f32>) -> Table {
    table(relu_x_fn((in_scale, in_zp), (out_scale, out_zp), lo, hi, (-128, 127)))
}

/// [`relu_x`] on one code of a type with range `(tmin, tmax)`.
pub fn relu_x_fn(
    (in_scale, in_zp): (f32, i32),
    (out_scale, out_zp): (f32, i32),
    lo: f32,
    hi: Option<f32>,
    (tmin, tmax): (i32, i32),
) -> impl Fn(i32) -> i32 {
    let (m, shift) = quantize_multiplier((in_scale / out_scale) as f64);
    let q = |f: f32| out_zp.saturating_add(round_away(f / out_scale) as i32);
    let act_min = q(lo).max(tmin);
    let act_max = hi.map_or(tmax, |h| q(h).min(tmax));
    move |v| out_zp.wrapping_add(mbqm(v - in_zp, m, shift)).max(act_min).min(act_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_tables_round_ties_away_from_zero() {
        let t = float_lut(1.0, 0, 1.0, 0, |x| x * 0.5);
        assert_eq!((t[5], t[(-5i8) as u8 as usize], t[4]), (3, -3, 2));
        // The zero point is added after rounding, in float, then truncated.
        let t = float_lut(1.0, 0, 1.0, -3, |x| x * 0.5);
        assert_eq!(t[1], -2);
    }

    #[test]
    fn tables_are_indexed_by_the_code_byte() {
        // Identity-like: tanh near zero with equal scales keeps small codes.
        let t = tanh(1.0 / 128.0, 0, 1.0 / 128.0, 0);
        assert_eq!(t[0], 0);
        assert_eq!(t[1], 1);
        assert_eq!(t[255], -1);
        // Saturates at the ends.
        let l = logistic(0.1, 0, 1.0 / 256.0, -128);
        assert_eq!(l[127], 127);
        assert_eq!(l[128], -128); // logistic(−12.8) · 256 rounds to 0
        assert_eq!(l[0], 0); // logistic(0) = 0.5 → 128 − 128
    }
}
