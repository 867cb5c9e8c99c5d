//! A four-lane `i32` accumulator fed by pairwise `i16` dot products, one implementation per
//! target: SSE2 `pmaddwd` on x86-64 (always present there), SIMD128 `i32x4.dot_i16x8_s` on
//! wasm32 built with `+simd128` (the browser build), and plain arrays elsewhere.
//!
//! `acc += dot(pair, b)` computes, per lane `i`, `pair.0 · b[2i] + pair.1 · b[2i+1]` in exact
//! integer arithmetic, so every target gives the same bits: this is the int8 GEMM's inner step
//! (eight multiply-accumulates per instruction, against four for the f32 kernel's two).

#[cfg(target_arch = "x86_64")]
use core::arch::x86_64 as arch;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use core::arch::wasm32 as arch;

/// Four `i32` lanes.
#[derive(Clone, Copy, Debug)]
pub struct I32x4(
    #[cfg(target_arch = "x86_64")] arch::__m128i,
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))] arch::v128,
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))] [i32; 4],
);

/// Two `i16` packed into one `i32` (low half first), as [`I32x4::dot_add`] takes them.
#[inline(always)]
pub fn pair(lo: i16, hi: i16) -> i32 {
    (lo as u16 as u32 | ((hi as u16 as u32) << 16)) as i32
}

#[cfg(target_arch = "x86_64")]
impl I32x4 {
    /// All lanes zero.
    #[inline(always)]
    pub fn zero() -> I32x4 {
        // SAFETY: SSE2 is part of the x86-64 baseline.
        I32x4(unsafe { arch::_mm_setzero_si128() })
    }
    /// `self + dot(splat(pair), b)`, with `b` the first eight `i16` of the slice.
    #[inline(always)]
    pub fn dot_add(self, pair: i32, b: &[i16]) -> I32x4 {
        let b = &b[..8];
        // SAFETY: SSE2 is baseline; `b` has eight readable i16, the load is unaligned.
        unsafe {
            let bv = arch::_mm_loadu_si128(b.as_ptr().cast());
            I32x4(arch::_mm_add_epi32(self.0, arch::_mm_madd_epi16(arch::_mm_set1_epi32(pair), bv)))
        }
    }
    /// The lanes.
    #[inline(always)]
    pub fn to_array(self) -> [i32; 4] {
        let mut out = [0i32; 4];
        // SAFETY: `out` has room for four i32; the store is unaligned.
        unsafe { arch::_mm_storeu_si128(out.as_mut_ptr().cast(), self.0) };
        out
    }
    /// Writes the lanes to the first four values of `s`.
    #[inline(always)]
    pub fn store(self, s: &mut [i32]) {
        let s = &mut s[..4];
        // SAFETY: `s` has four writable i32; the store is unaligned.
        unsafe { arch::_mm_storeu_si128(s.as_mut_ptr().cast(), self.0) }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl I32x4 {
    /// All lanes zero.
    #[inline(always)]
    pub fn zero() -> I32x4 {
        I32x4(arch::i32x4_splat(0))
    }
    /// `self + dot(splat(pair), b)`, with `b` the first eight `i16` of the slice.
    #[inline(always)]
    pub fn dot_add(self, pair: i32, b: &[i16]) -> I32x4 {
        let b = &b[..8];
        // SAFETY: `b` has eight readable i16; v128 loads need no alignment.
        let bv = unsafe { arch::v128_load(b.as_ptr().cast()) };
        I32x4(arch::i32x4_add(self.0, arch::i32x4_dot_i16x8(arch::i32x4_splat(pair), bv)))
    }
    /// Writes the lanes to the first four values of `s`.
    #[inline(always)]
    pub fn store(self, s: &mut [i32]) {
        let s = &mut s[..4];
        // SAFETY: `s` has four writable i32; v128 stores need no alignment.
        unsafe { arch::v128_store(s.as_mut_ptr().cast(), self.0) }
    }
    /// The lanes.
    #[inline(always)]
    pub fn to_array(self) -> [i32; 4] {
        [
            arch::i32x4_extract_lane::<0>(self.0),
            arch::i32x4_extract_lane::<1>(self.0),
            arch::i32x4_extract_lane::<2>(self.0),
            arch::i32x4_extract_lane::<3>(self.0),
        ]
    }
}

#[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
impl I32x4 {
    /// All lanes zero.
    #[inline(always)]
    pub fn zero() -> I32x4 {
        I32x4([0; 4])
    }
    /// `self + dot(splat(pair), b)`, with `b` the first eight `i16` of the slice.
    #[inline(always)]
    pub fn dot_add(self, pair: i32, b: &[i16]) -> I32x4 {
        let (lo, hi) = (pair as i16 as i32, (pair >> 16) as i16 as i32);
        let mut o = self.0;
        for (i, v) in o.iter_mut().enumerate() {
            *v = v.wrapping_add(lo * b[2 * i] as i32 + hi * b[2 * i + 1] as i32);
        }
        I32x4(o)
    }
    /// Writes the lanes to the first four values of `s`.
    #[inline(always)]
    pub fn store(self, s: &mut [i32]) {
        s[..4].copy_from_slice(&self.0);
    }
    /// The lanes.
    #[inline(always)]
    pub fn to_array(self) -> [i32; 4] {
        self.0
    }
}

use crate::quant::{ROUND_LIM, ROUND_MAGIC};

/// Requantizes eight sums: `clamp(round_half_even(clamp((v + add) · s, ±2²²)) + zp, lo, hi)`,
/// all in f32 (every value after rounding is a small exact integer), then to `i32`. The
/// scalar [`requant_i32`](super::qgemm::requant_i32) gives the same result for each lane.
#[inline(always)]
pub fn requant8(acc: &[i32; 8], add: i32, s: f32, zp: f32, lo: f32, hi: f32) -> [i32; 8] {
    let mut out = [0i32; 8];
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of the x86-64 baseline; loads/stores are unaligned, within the arrays.
    unsafe {
        let (vs, vzp, vlo, vhi) =
            (arch::_mm_set1_ps(s), arch::_mm_set1_ps(zp), arch::_mm_set1_ps(lo), arch::_mm_set1_ps(hi));
        let (magic, lim, nlim) =
            (arch::_mm_set1_ps(ROUND_MAGIC), arch::_mm_set1_ps(ROUND_LIM), arch::_mm_set1_ps(-ROUND_LIM));
        let vadd = arch::_mm_set1_epi32(add);
        for h in 0..2 {
            let v = arch::_mm_add_epi32(arch::_mm_loadu_si128(acc.as_ptr().add(4 * h).cast()), vadd);
            let x = arch::_mm_mul_ps(arch::_mm_cvtepi32_ps(v), vs);
            let x = arch::_mm_min_ps(lim, arch::_mm_max_ps(nlim, x));
            let x = arch::_mm_sub_ps(arch::_mm_add_ps(x, magic), magic);
            let y = arch::_mm_min_ps(vhi, arch::_mm_max_ps(vlo, arch::_mm_add_ps(x, vzp)));
            arch::_mm_storeu_si128(out.as_mut_ptr().add(4 * h).cast(), arch::_mm_cvttps_epi32(y));
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    // SAFETY: v128 loads/stores need no alignment and stay within the arrays.
    unsafe {
        let (vs, vzp, vlo, vhi) =
            (arch::f32x4_splat(s), arch::f32x4_splat(zp), arch::f32x4_splat(lo), arch::f32x4_splat(hi));
        let (magic, lim, nlim) =
            (arch::f32x4_splat(ROUND_MAGIC), arch::f32x4_splat(ROUND_LIM), arch::f32x4_splat(-ROUND_LIM));
        let vadd = arch::i32x4_splat(add);
        for h in 0..2 {
            let v = arch::i32x4_add(arch::v128_load(acc.as_ptr().add(4 * h).cast()), vadd);
            let x = arch::f32x4_mul(arch::f32x4_convert_i32x4(v), vs);
            let x = arch::f32x4_pmin(arch::f32x4_pmax(x, nlim), lim);
            let x = arch::f32x4_sub(arch::f32x4_add(x, magic), magic);
            let y = arch::f32x4_pmin(arch::f32x4_pmax(arch::f32x4_add(x, vzp), vlo), vhi);
            arch::v128_store(out.as_mut_ptr().add(4 * h).cast(), arch::i32x4_trunc_sat_f32x4(y));
        }
    }
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    for (o, &v) in out.iter_mut().zip(acc) {
        let x = (v.wrapping_add(add) as f32 * s).clamp(-ROUND_LIM, ROUND_LIM);
        *o = (((x + ROUND_MAGIC) - ROUND_MAGIC) + zp).clamp(lo, hi) as i32;
    }
    out
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

/// `dst[i] = src[i] as i32` for floats that hold exact integers well inside `i32` (the
/// depthwise kernel's integer sums): a plain truncating conversion, four lanes at a time
/// (`cvttps2dq` / `i32x4.trunc_sat_f32x4`; the scalar `as` needs NaN/overflow checks that stop
/// the compiler from vectorising).
#[inline]
pub fn f32_to_i32_exact(src: &[f32], dst: &mut [i32]) {
    let n = src.len().min(dst.len());
    let (src, dst) = (&src[..n], &mut dst[..n]);
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    while i + 4 <= n {
        // SAFETY: SSE2 is baseline; i + 4 ≤ n keeps the unaligned load/store inside the slices.
        unsafe {
            let v = arch::_mm_cvttps_epi32(arch::_mm_loadu_ps(src.as_ptr().add(i)));
            arch::_mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), v);
        }
        i += 4;
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    while i + 4 <= n {
        // SAFETY: i + 4 ≤ n keeps the v128 load/store inside the slices.
        unsafe {
            let v = arch::i32x4_trunc_sat_f32x4(arch::v128_load(src.as_ptr().add(i).cast()));
            arch::v128_store(dst.as_mut_ptr().add(i).cast(), v);
        }
        i += 4;
    }
    for (d, s) in dst[i..].iter_mut().zip(&src[i..]) {
        *d = *s as i32;
    }
}

/// `dst[i] = (src[i] − z) as f32` for 8-bit codes (exact).
#[inline]
pub fn codes_to_f32<T: super::qgemm::Widen>(src: &[T], z: i32, dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = (s.widen() as i32 - z) as f32;
    }
}

/// `out = [r0[0], r1[0], r0[1], r1[1], …, r0[7], r1[7]]` widened to `i16` (sign- or
/// zero-extended by `T`): one packed-B step, two rows of eight 8-bit values at a time.
#[inline(always)]
pub fn interleave_widen8<T: super::qgemm::Widen>(r0: &[T; 8], r1: &[T; 8], out: &mut [i16]) {
    let out = &mut out[..16];
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is baseline; 8-byte loads from the two arrays, 16-byte stores into `out`.
    unsafe {
        let a = arch::_mm_loadl_epi64(r0.as_ptr().cast());
        let b = arch::_mm_loadl_epi64(r1.as_ptr().cast());
        let il = arch::_mm_unpacklo_epi8(a, b);
        let ext =
            if T::SIGNED { arch::_mm_cmpgt_epi8(arch::_mm_setzero_si128(), il) } else { arch::_mm_setzero_si128() };
        arch::_mm_storeu_si128(out.as_mut_ptr().cast(), arch::_mm_unpacklo_epi8(il, ext));
        arch::_mm_storeu_si128(out.as_mut_ptr().add(8).cast(), arch::_mm_unpackhi_epi8(il, ext));
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    // SAFETY: 8-byte loads from the two arrays, 16-byte stores into `out`.
    unsafe {
        let a = arch::v128_load64_zero(r0.as_ptr().cast());
        let b = arch::v128_load64_zero(r1.as_ptr().cast());
        let il = arch::i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(a, b);
        let (lo, hi) = if T::SIGNED {
            (arch::i16x8_extend_low_i8x16(il), arch::i16x8_extend_high_i8x16(il))
        } else {
            (arch::u16x8_extend_low_u8x16(il), arch::u16x8_extend_high_u8x16(il))
        };
        arch::v128_store(out.as_mut_ptr().cast(), lo);
        arch::v128_store(out.as_mut_ptr().add(8).cast(), hi);
    }
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    for c in 0..8 {
        out[2 * c] = r0[c].widen();
        out[2 * c + 1] = r1[c].widen();
    }
}

/// Stores eight lanes already clamped to `T`'s range as `T` (saturating narrows, exact here).
#[inline(always)]
pub fn store8<T: super::qgemm::Widen>(q: &[i32; 8], out: &mut [T]) {
    let out = &mut out[..8];
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is baseline; 32-byte load from `q`, 8-byte store into `out`.
    unsafe {
        let lo = arch::_mm_loadu_si128(q.as_ptr().cast());
        let hi = arch::_mm_loadu_si128(q.as_ptr().add(4).cast());
        let w = arch::_mm_packs_epi32(lo, hi);
        let b = if T::SIGNED { arch::_mm_packs_epi16(w, w) } else { arch::_mm_packus_epi16(w, w) };
        arch::_mm_storel_epi64(out.as_mut_ptr().cast(), b);
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    // SAFETY: 32-byte load from `q`, 8-byte store into `out`.
    unsafe {
        let lo = arch::v128_load(q.as_ptr().cast());
        let hi = arch::v128_load(q.as_ptr().add(4).cast());
        let w = arch::i16x8_narrow_i32x4(lo, hi);
        let b = if T::SIGNED { arch::i8x16_narrow_i16x8(w, w) } else { arch::u8x16_narrow_i16x8(w, w) };
        arch::v128_store64_lane::<0>(b, out.as_mut_ptr().cast());
    }
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    for (o, &v) in out.iter_mut().zip(q) {
        *o = T::from_i32(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_to_int_conversion_is_exact_for_integers() {
        let src: Vec<f32> = (-9..9).map(|v| (v * 65025) as f32).collect();
        let mut dst = vec![0; src.len()];
        f32_to_i32_exact(&src, &mut dst);
        assert_eq!(dst, (-9..9).map(|v| v * 65025).collect::<Vec<i32>>());
    }

    #[test]
    fn interleave_and_narrow() {
        let (a, b): ([i8; 8], [i8; 8]) = ([-128, -1, 0, 1, 127, 5, -5, 9], [3, -3, 100, -100, 0, 7, 8, -9]);
        let mut o = [0i16; 16];
        interleave_widen8(&a, &b, &mut o);
        assert_eq!(o, [-128, 3, -1, -3, 0, 100, 1, -100, 127, 0, 5, 7, -5, 8, 9, -9]);
        let (a, b): ([u8; 8], [u8; 8]) = ([255, 0, 1, 128, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11, 12, 200]);
        interleave_widen8(&a, &b, &mut o);
        assert_eq!(o, [255, 6, 0, 7, 1, 8, 128, 9, 2, 10, 3, 11, 4, 12, 5, 200]);
        let mut u = [0u8; 8];
        store8(&[0, 255, 128, 1, 2, 3, 4, 5], &mut u);
        assert_eq!(u, [0, 255, 128, 1, 2, 3, 4, 5]);
        let mut i = [0i8; 8];
        store8(&[-128, 127, -1, 0, 1, 2, 3, 4], &mut i);
        assert_eq!(i, [-128, 127, -1, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn lane_requant_matches_scalar() {
        let acc = [-1000, -3, -1, 0, 1, 5, 7, 1 << 29];
        for &(s, zp, lo, hi) in
            &[(0.5f32, 0.0f32, -128.0f32, 127.0f32), (0.013, 128.0, 0.0, 255.0), (3.0, -5.0, -100.0, 6.0)]
        {
            let got = requant8(&acc, 2, s, zp, lo, hi);
            for (g, &v) in got.iter().zip(&acc) {
                let want = crate::ops::quant::qgemm::requant_i32(v + 2, s, zp as i32, lo as i32, hi as i32);
                assert_eq!(*g, want, "v {v} s {s}");
            }
            let d = dequant8(&acc, 2, s, -1.0, 1e9);
            for (g, &v) in d.iter().zip(&acc) {
                assert_eq!(*g, ((v + 2) as f32 * s).clamp(-1.0, 1e9));
            }
        }
    }

    #[test]
    fn dot_add_is_pairwise_products() {
        let b: Vec<i16> = vec![255, -128, 127, 0, -1, 1, 100, -100];
        let p = pair(-128, 127);
        let got = I32x4::zero().dot_add(p, &b).dot_add(p, &b).to_array();
        for (i, g) in got.iter().enumerate() {
            let want = 2 * (-128 * b[2 * i] as i32 + 127 * b[2 * i + 1] as i32);
            assert_eq!(*g, want, "lane {i}");
        }
    }
}
