//! TFLite's int16 arithmetic for "16x8" models (int16 activations, int8 weights), as LiteRT's
//! reference kernels compute it: the 64-bit `MultiplyByQuantizedMultiplier` of the int64
//! convolution sums, the 513-entry interpolated tables of SOFTMAX (`LUTPopulate<int16_t>`,
//! `LUTLookup`), LOGISTIC and TANH's fixed-point forms on `sigmoid_table_uint16`, and the
//! parameters their `Prepare` functions derive (`CheckedLog2`, the input multipliers).
//!
//! Element-wise int16 activations become 65 536-entry tables for `qplay.Lookup`
//! ([`table16`]), each entry computed by the kernel's own formula, so they are exact for every
//! code.

use super::fixed::round_away;

/// `MultiplyByQuantizedMultiplier(int64_t x, …)` (common.cc): the multiplier reduced to 16
/// bits (`(m + 2^15) >> 16`, at most `0x7FFF`), `x · m16` rounded by `2^(15 − shift)`, half up,
/// truncated to int32 as the C++ does. `shift` within −31…7.
#[inline]
pub fn mbqm64(x: i64, m: i32, shift: i32) -> i32 {
    let reduced = if m < 0x7FFF_0000 { (m + (1 << 15)) >> 16 } else { 0x7FFF } as i64;
    let total_shift = (15 - shift).clamp(1, 62) as u32;
    let r = x.wrapping_mul(reduced).wrapping_add(1i64 << (total_shift - 1));
    (r >> total_shift) as i32
}

/// `CheckedLog2`: `log2(x)` rounded, and whether `x` is a power of two (to 1e−3 in float).
pub fn checked_log2(x: f32) -> (i32, bool) {
    let x_log2 = x.ln() * (1.0f32 / 2.0f32.ln());
    let rounded = round_away(x_log2);
    (rounded as i32, (x_log2 - rounded).abs() < 1e-3)
}

/// `sigmoid_table_uint16`: sigmoid(i / 24) in 0.16 fixed point.
pub const SIGMOID_TABLE: [u16; 256] = [
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
];

/// The input rescaling of LOGISTIC and TANH on int16 (`SigmoidPrepare` / `TanhPrepare`):
/// `(multiplier, left_shift)`, the multiplier 0 for a power-of-two scale the kernel handles
/// directly. `None` when the input zero point is not 0 (LiteRT refuses the model).
pub fn sigmoid_tanh_params(in_scale: f32, tanh: bool) -> (i32, i32) {
    const INPUT_INTEGER_BITS: i32 = 3;
    let (log2, mut pot) = checked_log2(in_scale);
    let mut left_shift = (15 - INPUT_INTEGER_BITS) + log2;
    pot &= left_shift == 0 || (tanh && left_shift == 1);
    if pot {
        return (0, left_shift);
    }
    let mut multiplier = in_scale as f64 * 4096.0 * 3.0;
    left_shift = 0;
    while multiplier <= 32767.0 / 2.0 && left_shift <= 30 {
        left_shift += 1;
        multiplier *= 2.0;
    }
    (multiplier as i32, left_shift)
}

/// The rescaled input of LOGISTIC and TANH (both kernels' first step).
#[inline]
fn rescaled(x: i32, (m, shift): (i32, i32)) -> i32 {
    let (m, shift) = if m == 0 { (3i32.wrapping_shl(shift as u32), 0) } else { (m, shift) };
    let round = if shift > 0 { 1i32 << (shift - 1) } else { 0 };
    x.wrapping_mul(m).wrapping_add(round) >> shift.clamp(0, 31)
}

/// `reference_integer_ops::Logistic` on one int16 code (output scale 2^−15, zero point 0).
pub fn logistic16(x: i32, params: (i32, i32)) -> i32 {
    let input = rescaled(x, params);
    let abs = input.unsigned_abs();
    let uh = abs >> 9;
    let mut result: u32 = if uh >= 255 {
        0x7FFF << 10
    } else {
        let ua = SIGMOID_TABLE[uh as usize] as u32;
        let ub = SIGMOID_TABLE[uh as usize + 1] as u32;
        let ut = abs & 0x1ff;
        (ua << 9).wrapping_add(ut.wrapping_mul(ub.wrapping_sub(ua)))
    };
    result = if input >= 0 {
        result.wrapping_add(1 << 9)
    } else {
        (1u32 << (16 + 9)).wrapping_sub(result).wrapping_add(1 << 9).wrapping_sub(1)
    };
    (result >> 10) as i16 as i32
}

/// `reference_integer_ops::Tanh` on one int16 code (output scale 2^−15, zero point 0).
pub fn tanh16(x: i32, params: (i32, i32)) -> i32 {
    let input = rescaled(x, params);
    let abs = input.unsigned_abs();
    let uh = abs >> 8;
    let mut result: i32 = if uh >= 255 {
        0xFFFF << 8
    } else {
        let ua = SIGMOID_TABLE[uh as usize] as u32;
        let ub = SIGMOID_TABLE[uh as usize + 1] as u32;
        let ut = abs & 0xFF;
        (ua << 8).wrapping_add(ut.wrapping_mul(ub.wrapping_sub(ua))) as i32
    };
    result = if input >= 0 {
        result.wrapping_sub(1 << (14 + 9)).wrapping_add(1 << (9 - 2))
    } else {
        result.wrapping_neg().wrapping_add(1 << (14 + 9)).wrapping_add(1 << (9 - 2)).wrapping_sub(1)
    };
    (result >> (9 - 1)) as i16 as i32
}

/// A 65 536-entry int16 table for `qplay.Lookup`, indexed by the code's bits (`x as u16`):
/// `f(code)` clamped to int16.
pub fn table16(f: impl Fn(i32) -> i32) -> Vec<i16> {
    let mut t = vec![0i16; 1 << 16];
    for v in -32768i32..=32767 {
        t[v as i16 as u16 as usize] = f(v).clamp(-32768, 32767) as i16;
    }
    t
}

/// `LUTPopulateInt16<double>`: 513 samples of `f` on the input range of int16 codes with
/// `(in_scale, in_zp)`, each biased by half the interpolation error at its midpoint.
pub fn lut_populate(in_scale: f64, in_zp: i32, out_scale: f64, out_zp: i32, f: impl Fn(f64) -> f64) -> Vec<i16> {
    let round = |v: f64| v.round();
    let input_min = in_scale * (-32768 - in_zp) as f64;
    let input_max = in_scale * (32767 - in_zp) as f64;
    let output_min = out_scale * (-32768 - out_zp) as f64;
    let output_max = out_scale * (32767 - out_zp) as f64;
    const STEPS: usize = 512;
    let step = (input_max - input_min) / STEPS as f64;
    let half_step = step / 2.0;
    let output_scaling_inv = 65536.0 / (output_max - output_min);
    let (table_min, table_max) = (-32768.0, 32767.0);
    let mut lut = vec![0i16; STEPS + 1];
    for (i, slot) in lut.iter_mut().take(STEPS).enumerate() {
        let val = f(input_min + i as f64 * step);
        let val_midpoint = f(input_min + i as f64 * step + half_step);
        let val_next = f(input_min + (i + 1) as f64 * step);
        let sample_val = round(val * output_scaling_inv);
        let midpoint_interp_val = round((val_next * output_scaling_inv + round(val * output_scaling_inv)) / 2.0);
        let midpoint_val = round(val_midpoint * output_scaling_inv);
        let midpoint_err = midpoint_interp_val - midpoint_val;
        let bias = round(midpoint_err / 2.0);
        *slot = (sample_val - bias).clamp(table_min, table_max) as i16;
    }
    lut[STEPS] = round(f(input_max) * output_scaling_inv).clamp(table_min, table_max) as i16;
    lut
}

/// `LUTLookup(int16_t, …)`: the table's value at the code's top 9 bits, interpolated by its
/// low 7 bits.
#[inline]
pub fn lut_lookup(value: i16, lut: &[i16]) -> i16 {
    let index = (256 + (value >> 7) as i32) as usize;
    let offset = (value & 0x7f) as i32;
    let base = lut[index] as i32;
    let slope = lut[index + 1] as i32 - base;
    let delta = (slope * offset + 64) >> 7;
    (base + delta) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbqm64_rounds_half_up_with_a_16_bit_multiplier() {
        // m = 2^30 (0.5 in Q31) reduces to 2^14; shift 0: x · 2^14 / 2^15.
        assert_eq!(mbqm64(3, 1 << 30, 0), 2); // 1.5 → 2
        assert_eq!(mbqm64(-3, 1 << 30, 0), -1); // −1.5 → −1 (half up)
        assert_eq!(mbqm64(1 << 40, 1 << 30, -10), 1 << 29);
        // The largest multipliers saturate at 0x7FFF.
        assert_eq!(mbqm64(1 << 15, i32::MAX, 0), 0x7FFF);
    }

    #[test]
    fn checked_log2_of_powers_of_two() {
        assert_eq!(checked_log2(1.0 / 32768.0), (-15, true));
        assert_eq!(checked_log2(0.25), (-2, true));
        assert!(!checked_log2(0.3).1);
    }

    #[test]
    fn logistic_and_tanh_at_zero_and_the_ends() {
        // Input scale 2^−12: the power-of-two case.
        let p = sigmoid_tanh_params(1.0 / 4096.0, false);
        assert_eq!(p, (0, 0));
        assert_eq!(logistic16(0, p), 16384); // 0.5 in Q15
                                             // Within 2 codes of sigmoid(x / 4096) · 2^15 everywhere.
        for x in (-32768..=32767).step_by(97) {
            let want = 32768.0 / (1.0 + (-(x as f64) / 4096.0).exp());
            assert!((logistic16(x, p) as f64 - want).abs() <= 2.0, "{x}");
        }
        let t = sigmoid_tanh_params(1.0 / 4096.0, true);
        assert_eq!(tanh16(0, t), 0);
        for x in (-32768..=32767).step_by(97) {
            let want = (x as f64 / 4096.0).tanh() * 32768.0;
            assert!((tanh16(x, t) as f64 - want).abs() <= 3.0, "{x}");
        }
        // A general scale: the multiplier is brought into 16 bits.
        let (m, s) = sigmoid_tanh_params(0.000_123, false);
        assert!(m > 32767 / 2 && m <= 32767 && s > 0, "{m} {s}");
    }

    #[test]
    fn tables_are_indexed_by_the_code_bits() {
        let t = table16(|v| v / 2);
        assert_eq!(t[3], 1);
        assert_eq!(t[(-4i16) as u16 as usize], -2);
        assert_eq!(t.len(), 65536);
    }

    #[test]
    fn the_exp_table_interpolates_exp() {
        let range = 65535.0;
        let lut = lut_populate(10.0 / range, 32767, 2.0 / range, 0, f64::exp);
        // exp(0) = 1 at the top code, exp(−10) ≈ 0 at the bottom.
        assert!((lut_lookup(32767, &lut) - 32767).abs() <= 8);
        assert!(lut_lookup(-32768, &lut).abs() <= 2);
        // exp(−5) · 32767.5 ≈ 220.8 at the middle code.
        let mid = lut_lookup(0, &lut);
        assert!((mid - 221).abs() <= 1, "{mid}");
    }
}
