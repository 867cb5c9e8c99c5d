//! The wasm SIMD128 versions of hot loops that have no portable [`I32x4`](super::I32x4) form
//! (wasm32 built with `+simd128`, the browser build). Every lane computes what the scalar code
//! computes for it, so the page gives the native build's bits.

use core::arch::wasm32::*;

/// `x << s` lane by lane, each lane's `s` in 0…31: SIMD128 shifts take one amount for all
/// lanes, so the five bits of `s` are applied one at a time where they are set.
#[inline(always)]
fn shl_var(mut x: v128, s: v128) -> v128 {
    for b in 0..5u32 {
        let set = i32x4_ne(v128_and(s, i32x4_splat(1 << b)), i32x4_splat(0));
        x = v128_bitselect(i32x4_shl(x, 1 << b), x, set);
    }
    x
}

/// `x >> s` (arithmetic) lane by lane, each lane's `s` in 0…31, as [`shl_var`].
#[inline(always)]
fn sra_var(mut x: v128, s: v128) -> v128 {
    for b in 0..5u32 {
        let set = i32x4_ne(v128_and(s, i32x4_splat(1 << b)), i32x4_splat(0));
        x = v128_bitselect(i32x4_shr(x, 1 << b), x, set);
    }
    x
}

/// TFLite's `MultiplyByQuantizedMultiplier` + zero point + clamp on four int32 lanes, each with
/// its own multiplier `m ≥ 0` and right shift (0…31), one left shift for all (0…31): what
/// [`Requant::apply`](crate::ops::tflite::fixed::Requant::apply) computes for each lane, in the
/// same unsigned 32 × 32 → 64-bit steps (`i64x2.extmul_*_u32x4`), returned as int32 codes in
/// `lo..=hi`. `uniform`: every lane has this right shift, which then takes the one-amount shift.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tfl_requant4(
    acc: v128,
    m: v128,
    left: u32,
    right: v128,
    uniform: Option<u32>,
    zp: v128,
    lo: v128,
    hi: v128,
) -> v128 {
    let a = i32x4_shl(acc, left);
    let ua = i32x4_abs(a); // |i32::MIN| reads as 2^31 unsigned
    let neg = i32x4_shr(a, 31);
    let half = i64x2_splat(1 << 30);
    // round(|a| · m / 2^31), ties away from zero, with a's sign: (|a|·m + 2^30 − [a < 0]) >> 31.
    let plo = i64x2_add(i64x2_add(u64x2_extmul_low_u32x4(ua, m), half), i64x2_extend_low_i32x4(neg));
    let phi = i64x2_add(i64x2_add(u64x2_extmul_high_u32x4(ua, m), half), i64x2_extend_high_i32x4(neg));
    let mag = i32x4_shuffle::<0, 2, 4, 6>(u64x2_shr(plo, 31), u64x2_shr(phi, 31));
    let q = i32x4_sub(v128_xor(mag, neg), neg);
    // Rounding divide by 2^right, ties away from zero.
    let ones = i32x4_splat(1);
    let (mask, shifted) = match uniform {
        Some(r) => (i32x4_sub(i32x4_shl(ones, r), ones), i32x4_shr(q, r)),
        None => (i32x4_sub(shl_var(ones, right), ones), sra_var(q, right)),
    };
    let threshold = i32x4_sub(i32x4_shr(mask, 1), i32x4_shr(q, 31));
    let up = i32x4_gt(v128_and(q, mask), threshold);
    let y = i32x4_sub(shifted, up);
    i32x4_max(i32x4_min(i32x4_add(y, zp), hi), lo)
}

/// [`tfl_requant4`] over `acc` into `out`, eight at a time; the parameters of element `t` are
/// `m[t]`, `left[t]` (0), `right[t]` (`per_lane`) or `m[0]`, `left[0]`, `right[0]` for all, the
/// output range inside int8. Returns how many elements it wrote (a multiple of eight): the
/// caller finishes the rest. Writes nothing when the per-lane parameters are shorter than the
/// run or have a left shift. Shifts are in 0…31 ([`Requant::new`](crate::ops::tflite::fixed::Requant::new) clamps them; SIMD128 takes
/// shift amounts modulo 32 in any case).
pub fn tfl_requant_run(
    acc: &[i32],
    out: &mut [i8],
    (m, left, right): (&[i32], &[i32], &[i32]),
    per_lane: bool,
    (zp, lo, hi): (i32, i32, i32),
) -> usize {
    let n8 = acc.len().min(out.len()) / 8 * 8;
    let need = if per_lane { n8 } else { 1 };
    if n8 == 0 || m.len() < need || left.len() < need || right.len() < need {
        return 0;
    }
    // Per-lane left shifts (multipliers of 1 or more, rare) are left to the scalar code.
    if per_lane && left[..need].iter().any(|&l| l != 0) {
        return 0;
    }
    let (vzp, vlo, vhi) = (i32x4_splat(zp), i32x4_splat(lo), i32x4_splat(hi));
    let uniform = (!per_lane).then_some(right[0] as u32);
    let (um, ur) = (i32x4_splat(m[0]), i32x4_splat(right[0]));
    let load = |s: &[i32], t: usize| {
        let s = &s[t..t + 4];
        // SAFETY: `s` has four readable i32; v128 loads need no alignment.
        unsafe { v128_load(s.as_ptr().cast()) }
    };
    for t in (0..n8).step_by(8) {
        let mut codes = [i32x4_splat(0); 2];
        for (h, c) in codes.iter_mut().enumerate() {
            let u = t + 4 * h;
            let (vm, vr) = if per_lane { (load(m, u), load(right, u)) } else { (um, ur) };
            *c = tfl_requant4(load(acc, u), vm, left[0] as u32, vr, uniform, vzp, vlo, vhi);
        }
        // Codes in −128…127: the saturating narrows keep them.
        let w = i16x8_narrow_i32x4(codes[0], codes[1]);
        let b = i8x16_narrow_i16x8(w, w);
        let dst = &mut out[t..t + 8];
        // SAFETY: `dst` has eight writable bytes; the lane store needs no alignment.
        unsafe { v128_store64_lane::<0>(b, dst.as_mut_ptr().cast()) };
    }
    n8
}

/// QuantizeLinear's codes of `x` into `out` (the same length): `clamp(round_half_even(x /
/// scale) + zp, lo, hi)` with NaN as 0, as [`QParams::quantize`](crate::quant::QParams::quantize)
/// computes each, four lanes at a time. `clamp(rne(y) + zp, lo, hi) = rne(clamp(y, lo − zp, hi −
/// zp)) + zp` (rounding is monotone and keeps integers), and the clamped value is small, so
/// adding 1.5·2²³ rounds it half to even (the steps of the AVX2 path on x86-64).
pub fn quantize_run<T: crate::ops::quant::qgemm::Widen>(
    x: &[f32],
    scale: f32,
    zp: i32,
    lo: i32,
    hi: i32,
    out: &mut [T],
) {
    let n = x.len();
    let out = &mut out[..n];
    let (vs, va, vb) = (f32x4_splat(scale), f32x4_splat((lo - zp) as f32), f32x4_splat((hi - zp) as f32));
    let (magic, voff) = (f32x4_splat(crate::quant::ROUND_MAGIC), i32x4_splat(super::ROUND_MAGIC_BITS - zp));
    let lane = |v: v128| {
        let y = f32x4_div(v, vs);
        // NaN → 0 (its lanes compare unequal to themselves), ±inf clamps.
        let y = v128_and(y, f32x4_eq(y, y));
        let y = f32x4_pmin(vb, f32x4_pmax(va, y));
        i32x4_sub(f32x4_add(y, magic), voff)
    };
    let eight = |src: &[f32], dst: &mut [T]| {
        let (src, dst) = (&src[..8], &mut dst[..8]);
        // SAFETY: two 16-byte loads from the eight f32 of `src`, an 8-byte store into the eight
        // one-byte codes of `dst` (`T` is u8 or i8).
        unsafe {
            let w =
                i16x8_narrow_i32x4(lane(v128_load(src.as_ptr().cast())), lane(v128_load(src.as_ptr().add(4).cast())));
            let c = if T::SIGNED { i8x16_narrow_i16x8(w, w) } else { u8x16_narrow_i16x8(w, w) };
            v128_store64_lane::<0>(c, dst.as_mut_ptr().cast());
        }
    };
    let n8 = n / 8 * 8;
    for (src, dst) in x[..n8].chunks_exact(8).zip(out[..n8].chunks_exact_mut(8)) {
        eight(src, dst);
    }
    if n8 < n {
        let mut x8 = [0f32; 8];
        x8[..n - n8].copy_from_slice(&x[n8..]);
        let mut q8 = [T::from_i32(0); 8];
        eight(&x8, &mut q8);
        out[n8..].copy_from_slice(&q8[..n - n8]);
    }
}
