//! TFLite's fixed-point arithmetic, as its reference kernels compute it (LiteRT
//! `tflite/kernels/internal/common.h`, `quantization_util.cc`, and gemmlowp's
//! `fixedpoint/fixedpoint.h`, with LiteRT's default `TFLITE_SINGLE_ROUNDING=0`: the
//! "double rounding" of a rounding doubling high multiply followed by a rounding right shift).
//!
//! Every function is total: where C++ would overflow (undefined behaviour, only for values a
//! valid model never produces), these wrap, so malformed models give wrong numbers, never a
//! panic; the ops check multipliers and shifts when they are built.

/// `TfLiteRound` on a float: half away from zero (`std::round`).
#[inline]
pub fn round_away(x: f32) -> f32 {
    x.round()
}

/// `std::frexp`: `x = q · 2^e` with `0.5 ≤ |q| < 1` (`(0, 0)` for 0 and non-finite values).
pub fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (0.0, 0);
    }
    let (x, bias) = if x.abs() < f64::MIN_POSITIVE { (x * 2f64.powi(64), -64) } else { (x, 0) };
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let q = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (q, exp - 1022 + bias)
}

/// `QuantizeMultiplier`: a real multiplier as a Q0.31 significand and a power-of-two exponent
/// (`m ≈ significand · 2^(shift − 31)`; `shift > 0` is a left shift). Multipliers below 2^−31
/// flush to zero, as TFLite's do.
pub fn quantize_multiplier(m: f64) -> (i32, i32) {
    if m == 0.0 || !m.is_finite() {
        return (0, 0);
    }
    let (q, mut shift) = frexp(m);
    // TfLiteRound on a double: half away from zero.
    let mut q_fixed = (q * (1u64 << 31) as f64).round() as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    (q_fixed.clamp(i32::MIN as i64, i32::MAX as i64) as i32, shift)
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul` on int32: `round(a · b / 2^31)`, ties away
/// from zero, saturating the one overflowing case.
#[inline]
pub fn srdhm(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge = if ab >= 0 { 1i64 << 30 } else { 1 - (1i64 << 30) };
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT` on int32: `x / 2^e`, ties away from zero (`e` clamped to
/// 0…31).
#[inline]
pub fn rdbpot(x: i32, e: i32) -> i32 {
    let e = e.clamp(0, 31) as u32;
    let mask = ((1i64 << e) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> e) + i32::from(remainder > threshold)
}

/// `MultiplyByQuantizedMultiplier` (int32, double rounding): `x · m · 2^(shift − 31)`.
#[inline]
pub fn mbqm(x: i32, m: i32, shift: i32) -> i32 {
    let left = shift.clamp(0, 31) as u32;
    let right = (-shift).max(0);
    rdbpot(srdhm(x.wrapping_mul(1i32.wrapping_shl(left)), m), right)
}

/// An int32 sum → an int8 code: [`mbqm`] by one multiplier and shift, plus the output zero
/// point, clamped; precomputed per output channel and branch-free, so a run of sums vectorizes.
/// Equal to `mbqm(acc, m, shift) + zp` clamped to `lo..=hi` for every `acc` (tested), given
/// `m ≥ 0` (every multiplier [`quantize_multiplier`] gives for a positive scale ratio), so that
/// [`srdhm`]'s one saturating case cannot occur.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    m: i64,
    left: u32,
    right: u32,
    mask: i32,
    zp: i32,
    lo: i32,
    hi: i32,
}

impl Requant {
    /// `(m, shift)` from [`quantize_multiplier`] (`m ≥ 0`), the output zero point and the
    /// output range (`lo ≤ hi`).
    pub fn new((m, shift): (i32, i32), zp: i32, (lo, hi): (i32, i32)) -> Requant {
        let right = (-shift).clamp(0, 31) as u32;
        Requant {
            m: m.max(0) as i64,
            left: shift.clamp(0, 31) as u32,
            right,
            mask: ((1i64 << right) - 1) as i32,
            zp,
            lo,
            hi: hi.max(lo),
        }
    }

    /// The code of one sum.
    #[inline(always)]
    pub fn apply(&self, acc: i32) -> i8 {
        // srdhm in unsigned 32 × 32 → 64-bit arithmetic (`pmuludq`, `i64x2.mul`: it
        // vectorizes): round(|a| · m / 2^31) with ties away from zero, then a's sign.
        // (`(|a|·m + 2^30 − 1) >> 31` for negative a is −trunc((a·m + 1 − 2^30) / 2^31).)
        let a = acc.wrapping_shl(self.left);
        let negative = a < 0;
        let p = u64::from(a.unsigned_abs()) * self.m as u64 + (1 << 30) - u64::from(negative);
        let magnitude = (p >> 31) as i32;
        let q = if negative { magnitude.wrapping_neg() } else { magnitude };
        // rdbpot: ties away from zero.
        let threshold = (self.mask >> 1) + i32::from(q < 0);
        let y = (q >> self.right) + i32::from((q & self.mask) > threshold);
        y.wrapping_add(self.zp).clamp(self.lo, self.hi) as i8
    }

    /// [`Self::apply`] over a run of sums (eight lanes at a time with AVX2 or wasm SIMD128).
    #[inline]
    pub fn run(&self, acc: &[i32], out: &mut [i8]) {
        let done = if self.lo >= -128 && self.hi <= 127 {
            let (m, l, r) = self.lanes();
            vector_run(acc, out, (&[m], &[l], &[r]), false, self.out_range())
        } else {
            0
        };
        for (o, &a) in out.iter_mut().zip(acc).skip(done) {
            *o = self.apply(a);
        }
    }

    /// The multiplier, left shift and right shift as int32 lanes.
    fn lanes(&self) -> (i32, i32, i32) {
        (self.m as i32, self.left as i32, self.right as i32)
    }

    /// The zero point and the output range.
    fn out_range(&self) -> (i32, i32, i32) {
        (self.zp, self.lo, self.hi)
    }
}

/// The vector path of [`Requant::run`] and [`RequantChannels::run`]: how many of the sums it
/// requantized (a multiple of eight with AVX2 natively and with SIMD128 in the browser's wasm;
/// none where there is no such path).
#[allow(unused_variables)]
fn vector_run(
    acc: &[i32],
    out: &mut [i8],
    lanes: (&[i32], &[i32], &[i32]),
    per_lane: bool,
    range: (i32, i32, i32),
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if crate::ops::quant::simd::use_avx2() {
        // SAFETY: the CPU has AVX2 (use_avx2); with per-lane parameters tfl_requant_run checks
        // that they cover the sums and does nothing otherwise.
        return unsafe { crate::ops::quant::simd::avx2::tfl_requant_run(acc, out, lanes, per_lane, range) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return crate::ops::quant::simd::wasm128::tfl_requant_run(acc, out, lanes, per_lane, range);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    0
}

/// [`Requant`]s of consecutive channels, their multipliers and shifts side by side, for a run of
/// sums one per channel (a depthwise convolution's output pixel). The zero point and the range
/// are the first channel's (one per op).
#[derive(Debug, Clone, Default)]
pub struct RequantChannels {
    all: Vec<Requant>,
    m: Vec<i32>,
    left: Vec<i32>,
    right: Vec<i32>,
    /// The zero point and range every channel shares, inside int8 (`None`: scalar only).
    range: Option<(i32, i32, i32)>,
}

impl RequantChannels {
    /// From one [`Requant`] per channel, all with the same zero point and range.
    pub fn new(all: Vec<Requant>) -> RequantChannels {
        let m = all.iter().map(|r| r.lanes().0).collect();
        let left = all.iter().map(|r| r.lanes().1).collect();
        let right = all.iter().map(|r| r.lanes().2).collect();
        let range = all.first().map(|f| f.out_range()).filter(|&(_, lo, hi)| lo >= -128 && hi <= 127);
        let range = range.filter(|&r| all.iter().all(|c| c.out_range() == r));
        RequantChannels { all, m, left, right, range }
    }

    /// `out[c] = self[c].apply(acc[c])` (eight channels at a time with AVX2 or wasm SIMD128).
    #[inline]
    pub fn run(&self, acc: &[i32], out: &mut [i8]) {
        let n = acc.len().min(out.len()).min(self.all.len());
        let done = match self.range {
            Some(range) => {
                vector_run(&acc[..n], &mut out[..n], (&self.m[..n], &self.left[..n], &self.right[..n]), true, range)
            }
            None => 0,
        };
        for ((o, &a), r) in out[..n].iter_mut().zip(&acc[..n]).zip(&self.all).skip(done) {
            *o = r.apply(a);
        }
    }
}

/// `MultiplyByQuantizedMultiplierSmallerThanOneExp`: `shift ≤ 0`.
#[inline]
pub fn mbqm_lt1(x: i32, m: i32, shift: i32) -> i32 {
    rdbpot(srdhm(x, m), -shift)
}

/// `MultiplyByQuantizedMultiplierGreaterThanOne`: `shift ≥ 0`.
#[inline]
pub fn mbqm_gt1(x: i32, m: i32, shift: i32) -> i32 {
    srdhm(x.wrapping_mul(1i32.wrapping_shl(shift.clamp(0, 31) as u32)), m)
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul` on int16.
#[inline]
pub fn srdhm16(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    let ab = a as i32 * b as i32;
    let nudge = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    ((ab + nudge) / (1 << 15)) as i16
}

/// gemmlowp's `RoundingDivideByPOT` on int16 (`e` clamped to 0…15).
#[inline]
pub fn rdbpot16(x: i16, e: i32) -> i16 {
    let e = e.clamp(0, 15) as u32;
    let mask = ((1i32 << e) - 1) as i16;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i16::from(x < 0);
    (x >> e) + i16::from(remainder > threshold)
}

/// gemmlowp's `SaturatingRoundingMultiplyByPOT<e>` on int32 (Rescale between formats).
#[inline]
fn sat_mul_pot(x: i32, e: i32) -> i32 {
    if e > 0 {
        let threshold = (1i32 << (31 - e.min(31))) - 1;
        if x > threshold {
            i32::MAX
        } else if x < -threshold {
            i32::MIN
        } else {
            x.wrapping_shl(e as u32)
        }
    } else {
        rdbpot(x, -e)
    }
}

/// gemmlowp's `exp_on_interval_between_negative_one_quarter_and_0_excl` (Q0.31 in and out).
fn exp_on_interval(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1_895_147_668; // exp(−1/8)
    const ONE_THIRD: i32 = 715_827_883;
    let x = a.wrapping_add(1 << 28);
    let x2 = srdhm(x, x);
    let x3 = srdhm(x2, x);
    let x4 = srdhm(x2, x2);
    let x4_over_4 = rdbpot(x4, 2);
    let poly = rdbpot(srdhm(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2), 1);
    CONSTANT_TERM.wrapping_add(srdhm(CONSTANT_TERM, x.wrapping_add(poly)))
}

/// gemmlowp's `exp_on_negative_values` for a fixed-point input with `integer_bits` integer
/// bits (1…30); the result is Q0.31.
pub fn exp_on_negative_values(a: i32, integer_bits: i32) -> i32 {
    let frac = 31 - integer_bits;
    let one_quarter = 1i32 << (frac - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval(sat_mul_pot(a_mod_quarter_minus_one_quarter, integer_bits));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    for (exponent, multiplier) in BARREL {
        if integer_bits > exponent {
            let shift = (frac + exponent) as u32;
            if remainder & 1i32.wrapping_shl(shift) != 0 {
                result = srdhm(result, multiplier);
            }
        }
    }
    if integer_bits > 5 {
        let clamp = -(1i32 << (36 - integer_bits));
        if a < clamp {
            result = 0;
        }
    }
    if a == 0 {
        result = i32::MAX;
    }
    result
}

/// gemmlowp's `RoundingHalfSum` on int32.
fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// gemmlowp's `one_over_one_plus_x_for_x_in_0_1` (Q0.31 in and out), by Newton–Raphson.
fn one_over_one_plus_x(a: i32) -> i32 {
    let half_denominator = rounding_half_sum(a, i32::MAX);
    const C48_17: i32 = 1_515_870_810; // 48/17 in Q2.29
    const CNEG32_17: i32 = -1_010_580_540; // −32/17 in Q2.29
    let mut x = C48_17.wrapping_add(srdhm(half_denominator, CNEG32_17));
    for _ in 0..3 {
        let hdx = srdhm(half_denominator, x);
        let one_minus = (1i32 << 29).wrapping_sub(hdx);
        x = x.wrapping_add(sat_mul_pot(srdhm(x, one_minus), 2));
    }
    sat_mul_pot(x, 1)
}

/// TFLite's `GetReciprocal`: `1 / x` for a positive fixed-point `x` with `integer_digits`
/// integer bits, as a Q0.31 value and the number of bits `x` has above one.
pub fn reciprocal(x: i32, integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros();
    let bits_over_unit = integer_digits - headroom_plus_one as i32;
    let shifted = (x as u32).checked_shl(headroom_plus_one).unwrap_or(0).wrapping_sub(1u32 << 31) as i32;
    (one_over_one_plus_x(shifted), bits_over_unit)
}

/// The activation range a fused activation leaves an 8-bit output with scale `scale` and zero
/// point `zp` (`CalculateActivationRangeQuantized`): bounds quantized with float division and
/// rounding half away from zero, within the type's range `lo..=hi`.
pub fn activation_range(relu: Option<(f32, Option<f32>)>, scale: f32, zp: i32, lo: i32, hi: i32) -> (i32, i32) {
    let q = |f: f32| zp.saturating_add(round_away(f / scale) as i32);
    match relu {
        None => (lo, hi),
        Some((min, None)) => (lo.max(q(min)), hi),
        Some((min, Some(max))) => (lo.max(q(min)), hi.min(q(max))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frexp_matches_the_c_library() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(0.75), (0.75, 0));
        assert_eq!(frexp(-3.0), (-0.75, 2));
        assert_eq!(frexp(1e-310).1, -1029);
        assert!((frexp(1e-310).0 - 0.575_261_803_155_939_3).abs() < 1e-15);
    }

    /// [`Requant::apply`] against `mbqm` + zero point + clamp, on the extremes of every
    /// argument and pseudo-random sums, for every shift.
    #[test]
    fn requant_equals_mbqm_then_zero_point_and_clamp() {
        let mut s = 12345u32;
        let mut accs = vec![0, 1, -1, i32::MAX, i32::MIN, i32::MIN + 1, 1 << 30, -(1 << 30), 12345, -12345];
        for _ in 0..2000 {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            accs.push((s as i32) >> (s % 31));
        }
        for shift in -31..=30 {
            for m in [0, 1, 1 << 30, (1 << 30) + 12345, i32::MAX - 1, i32::MAX] {
                for (zp, lo, hi) in [(0, -128, 127), (-128, -128, 127), (5, 0, 127), (-3, -20, 30)] {
                    let r = Requant::new((m, shift), zp, (lo, hi));
                    for &a in &accs {
                        let want = mbqm(a, m, shift).wrapping_add(zp).clamp(lo, hi) as i8;
                        assert_eq!(r.apply(a), want, "acc {a}, m {m}, shift {shift}, zp {zp}");
                    }
                    // The run (eight lanes at a time with AVX2, the ragged end one by one).
                    let mut out = vec![0i8; accs.len()];
                    r.run(&accs, &mut out);
                    for (&a, &o) in accs.iter().zip(&out) {
                        assert_eq!(o, r.apply(a), "run: acc {a}, m {m}, shift {shift}, zp {zp}");
                    }
                }
            }
        }
    }

    /// [`RequantChannels::run`]: each sum through its own channel's multiplier and shifts.
    #[test]
    fn requant_channels_apply_each_channels_parameters() {
        let mut s = 99u32;
        let mut next = || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            s
        };
        for n in [1, 7, 8, 9, 31, 64, 100] {
            let all: Vec<Requant> = (0..n)
                .map(|_| {
                    let m = (next() >> 1) as i32;
                    let shift = (next() % 62) as i32 - 31;
                    Requant::new((m, shift), -7, (-128, 120))
                })
                .collect();
            let acc: Vec<i32> = (0..n).map(|_| (next() as i32) >> (next() % 32)).collect();
            let mut out = vec![0i8; n];
            RequantChannels::new(all.clone()).run(&acc, &mut out);
            for c in 0..n {
                assert_eq!(out[c], all[c].apply(acc[c]), "n {n}, channel {c}");
            }
        }
    }

    #[test]
    fn rounding_divide_ties_away_from_zero() {
        assert_eq!(rdbpot(5, 1), 3);
        assert_eq!(rdbpot(-5, 1), -3);
        assert_eq!(rdbpot(4, 1), 2);
        assert_eq!(rdbpot(-6, 2), -2);
        assert_eq!(rdbpot16(-6, 2), -2);
        assert_eq!(rdbpot16(6, 2), 2);
    }
}
