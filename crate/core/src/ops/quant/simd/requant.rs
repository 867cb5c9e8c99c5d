//! Requantizing and dequantizing eight `i32` sums in the vector lanes: the epilogue steps every
//! int8 kernel's [`Out::store_run`](crate::ops::quant::qgemm::Out::store_run) goes through (SSE2
//! on x86-64, SIMD128 in wasm, plain arrays elsewhere; the AVX2 path in `avx2.rs` takes the same
//! steps on eight lanes per register).

#[cfg(target_arch = "x86_64")]
use core::arch::x86_64 as arch;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use core::arch::wasm32 as arch;

use crate::quant::ROUND_MAGIC;

/// Bits of [`ROUND_MAGIC`] (1.5·2²³): `bits(ROUND_MAGIC + k) = ROUND_MAGIC_BITS + k` for
/// integers `|k| < 2²²`.
pub(crate) const ROUND_MAGIC_BITS: i32 = 0x4B40_0000;

/// Requantizes eight sums (the first eight of `acc`) and stores them as `T` in the first eight
/// of `out`: the codes of [`requant_i32`](crate::ops::quant::qgemm::requant_i32) for a finite
/// `s`. With `x = (v + add)·s`, `clamp(rne(x) + zp, lo, hi) = rne(clamp(x, lo − zp, hi − zp)) +
/// zp` (rounding is monotone and keeps integers), the clamped value is within ±510, so adding
/// 1.5·2²³ rounds it half to even and its bits minus `bits(1.5·2²³) − zp` are the code.
///
/// `NEAR`: the caller guarantees `|x| < 2²¹` for the eight sums, and the float clamp is left
/// out. Below 2²² adding 1.5·2²³ still rounds half to even, so the lanes hold `rne(x) + zp`
/// unclamped; narrowing to `i16` saturates (monotone, and the identity on `lo ..= hi`), and
/// clamping the `i16` lanes to `lo ..= hi` gives the same codes. `lo ≤ hi` must lie in `T`'s
/// range.
///
/// `FULL`: `lo ..= hi` is `T`'s whole range, which the saturating narrows keep by themselves
/// (the vector paths leave the clamp out).
#[inline(always)]
pub fn requant_store8<T: crate::ops::quant::qgemm::Widen, const NEAR: bool, const FULL: bool>(
    acc: &[i32],
    add: i32,
    s: f32,
    zp: i32,
    lo: i32,
    hi: i32,
    out: &mut [T],
) {
    let (acc, out) = (&acc[..8], &mut out[..8]);
    debug_assert!(!FULL || (lo, hi) == T::RANGE);
    let (a, b) = ((lo - zp) as f32, (hi - zp) as f32);
    let off = ROUND_MAGIC_BITS - zp;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is baseline; 32-byte load from `acc`, 8-byte store into `out`.
    unsafe {
        let (vs, va, vb, magic) =
            (arch::_mm_set1_ps(s), arch::_mm_set1_ps(a), arch::_mm_set1_ps(b), arch::_mm_set1_ps(ROUND_MAGIC));
        let (vadd, voff) = (arch::_mm_set1_epi32(add), arch::_mm_set1_epi32(off));
        let lane = |p: *const i32| {
            let v = arch::_mm_add_epi32(arch::_mm_loadu_si128(p.cast()), vadd);
            let x = arch::_mm_mul_ps(arch::_mm_cvtepi32_ps(v), vs);
            let x = if NEAR { x } else { arch::_mm_min_ps(arch::_mm_max_ps(x, va), vb) };
            arch::_mm_sub_epi32(arch::_mm_castps_si128(arch::_mm_add_ps(x, magic)), voff)
        };
        let w = arch::_mm_packs_epi32(lane(acc.as_ptr()), lane(acc.as_ptr().add(4)));
        let w = if NEAR && !FULL {
            let (vlo, vhi) = (arch::_mm_set1_epi16(lo as i16), arch::_mm_set1_epi16(hi as i16));
            arch::_mm_min_epi16(arch::_mm_max_epi16(w, vlo), vhi)
        } else {
            w
        };
        let q = if T::SIGNED { arch::_mm_packs_epi16(w, w) } else { arch::_mm_packus_epi16(w, w) };
        arch::_mm_storel_epi64(out.as_mut_ptr().cast(), q);
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    // SAFETY: 32-byte load from `acc`, 8-byte store into `out`.
    unsafe {
        // Unsigned codes are made as signed ones 128 lower and flipped back with their top bit:
        // LLVM clamps the input of `i8x16.narrow_i16x8_u` to 0…255 first (two more steps per
        // eight codes), the signed narrow it leaves as it is.
        let shift = if T::SIGNED { 0 } else { 128 };
        let (vs, va, vb, magic) =
            (arch::f32x4_splat(s), arch::f32x4_splat(a), arch::f32x4_splat(b), arch::f32x4_splat(ROUND_MAGIC));
        let (vadd, voff) = (arch::i32x4_splat(add), arch::i32x4_splat(off + shift));
        let lane = |p: *const i32| {
            let v = arch::i32x4_add(arch::v128_load(p.cast()), vadd);
            let x = arch::f32x4_mul(arch::f32x4_convert_i32x4(v), vs);
            let x = if NEAR { x } else { arch::f32x4_pmin(vb, arch::f32x4_pmax(va, x)) };
            arch::i32x4_sub(arch::f32x4_add(x, magic), voff)
        };
        let w = arch::i16x8_narrow_i32x4(lane(acc.as_ptr()), lane(acc.as_ptr().add(4)));
        let w = if NEAR && !FULL {
            let (vlo, vhi) = (arch::i16x8_splat((lo - shift) as i16), arch::i16x8_splat((hi - shift) as i16));
            arch::i16x8_min(arch::i16x8_max(w, vlo), vhi)
        } else {
            w
        };
        let q = arch::i8x16_narrow_i16x8(w, w);
        let q = if T::SIGNED { q } else { arch::v128_xor(q, arch::i8x16_splat(-128)) };
        arch::v128_store64_lane::<0>(q, out.as_mut_ptr().cast());
    }
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    for (o, &v) in out.iter_mut().zip(acc) {
        let x = v.wrapping_add(add) as f32 * s;
        let x = if NEAR {
            x
        } else {
            let x = if x > a { x } else { a };
            if x < b {
                x
            } else {
                b
            }
        };
        let y = ((x + ROUND_MAGIC).to_bits() as i32).wrapping_sub(off);
        *o = T::from_i32(if NEAR { y.clamp(lo, hi) } else { y });
    }
}

/// Dequantizes eight sums: `clamp((v + add) as f32 · s, lo, hi)`.
#[inline(always)]
pub fn dequant8(acc: &[i32; 8], add: i32, s: f32, lo: f32, hi: f32) -> [f32; 8] {
    let mut out = [0f32; 8];
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of the x86-64 baseline; loads/stores are unaligned, within the arrays.
    unsafe {
        let (vs, vlo, vhi, vadd) =
            (arch::_mm_set1_ps(s), arch::_mm_set1_ps(lo), arch::_mm_set1_ps(hi), arch::_mm_set1_epi32(add));
        for h in 0..2 {
            let v = arch::_mm_add_epi32(arch::_mm_loadu_si128(acc.as_ptr().add(4 * h).cast()), vadd);
            let y = arch::_mm_mul_ps(arch::_mm_cvtepi32_ps(v), vs);
            arch::_mm_storeu_ps(out.as_mut_ptr().add(4 * h), arch::_mm_min_ps(vhi, arch::_mm_max_ps(vlo, y)));
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    // SAFETY: v128 loads/stores need no alignment and stay within the arrays.
    unsafe {
        let (vs, vlo, vhi, vadd) =
            (arch::f32x4_splat(s), arch::f32x4_splat(lo), arch::f32x4_splat(hi), arch::i32x4_splat(add));
        for h in 0..2 {
            let v = arch::i32x4_add(arch::v128_load(acc.as_ptr().add(4 * h).cast()), vadd);
            let y = arch::f32x4_mul(arch::f32x4_convert_i32x4(v), vs);
            arch::v128_store(out.as_mut_ptr().add(4 * h).cast(), arch::f32x4_pmin(arch::f32x4_pmax(y, vlo), vhi));
        }
    }
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    for (o, &v) in out.iter_mut().zip(acc) {
        let y = v.wrapping_add(add) as f32 * s;
        *o = if y < lo {
            lo
        } else if y > hi {
            hi
        } else {
            y
        };
    }
    out
}
