//! The AVX2 versions of the integer kernels' hot loops (x86-64 only), taken when
//! [`use_avx2`](super::use_avx2) says so: eight `i32` lanes per `vpmaddwd` instead of four.
//! Every lane computes what the SSE2 path computes for it — exact integer sums, and for the
//! requantization the same float steps in the same order — so both paths give the same bits.
//!
//! Each function is `unsafe` and compiled with `#[target_feature(enable = "avx2")]`: the caller
//! must have checked that the CPU has AVX2.

use crate::ops::quant::qgemm::{Widen, MR, NR};
use crate::quant::ROUND_MAGIC;
use core::arch::x86_64::*;

// One packed-B step (a pair of rows over NR columns) is sixteen i16: one 256-bit register.
const _: () = assert!(NR == 8 && MR == 4);

/// The integer sums of one packed `A` panel (`MR` rows, `kp` pairs) against `panels`
/// consecutive packed `B` panels (`2·NR·kp` `i16` each), stored at `sums[r·ld + jb·NR + c]`:
/// what the SSE2 micro-kernel computes, `MR × 2·NR` at a time (eight accumulators), the odd
/// last panel `MR × NR`. Panics if a read or a store would leave its slice.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn qgemm_panels(ap: &[i32], bp: &[i16], kp: usize, panels: usize, sums: &mut [i32], ld: usize) {
    let pw = kp * 2 * NR;
    let (ap, bp) = (&ap[..kp * MR], &bp[..panels * pw]);
    if panels == 0 {
        return;
    }
    assert!(sums.len() >= (MR - 1) * ld + panels * NR, "qgemm_panels stores past its sums");
    let (pa, pb, ps) = (ap.as_ptr(), bp.as_ptr(), sums.as_mut_ptr());
    let mut jb = 0;
    // SAFETY (all blocks below): reads stay within `ap` (p < kp, r < MR) and the two panels of
    // `bp`; stores within the asserted length of `sums`; loads and stores are unaligned.
    while jb + 2 <= panels {
        let (b0, b1) = (pb.add(jb * pw), pb.add((jb + 1) * pw));
        let mut acc = [_mm256_setzero_si256(); 2 * MR];
        for p in 0..kp {
            let v0 = _mm256_loadu_si256(b0.add(p * 2 * NR).cast());
            let v1 = _mm256_loadu_si256(b1.add(p * 2 * NR).cast());
            for r in 0..MR {
                let a = _mm256_set1_epi32(*pa.add(p * MR + r));
                acc[2 * r] = _mm256_add_epi32(acc[2 * r], _mm256_madd_epi16(a, v0));
                acc[2 * r + 1] = _mm256_add_epi32(acc[2 * r + 1], _mm256_madd_epi16(a, v1));
            }
        }
        for r in 0..MR {
            _mm256_storeu_si256(ps.add(r * ld + jb * NR).cast(), acc[2 * r]);
            _mm256_storeu_si256(ps.add(r * ld + jb * NR + NR).cast(), acc[2 * r + 1]);
        }
        jb += 2;
    }
    if jb < panels {
        let b0 = pb.add(jb * pw);
        let mut acc = [_mm256_setzero_si256(); MR];
        for p in 0..kp {
            let v0 = _mm256_loadu_si256(b0.add(p * 2 * NR).cast());
            for (r, a) in acc.iter_mut().enumerate() {
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(_mm256_set1_epi32(*pa.add(p * MR + r)), v0));
            }
        }
        for (r, a) in acc.iter().enumerate() {
            _mm256_storeu_si256(ps.add(r * ld + jb * NR).cast(), *a);
        }
    }
}

/// `Σ_kx dot(w[kx], q[p + 2·off[kx]..])` for four outputs (128 bits) starting at pair offset
/// `p / 2`.
#[inline(always)]
unsafe fn dot3_x4(q: *const i16, w: [i32; 3], off: [usize; 3], p: usize) -> __m128i {
    let mut acc = _mm_setzero_si128();
    for kx in 0..3 {
        let v = _mm_loadu_si128(q.add(2 * off[kx] + p).cast());
        acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_set1_epi32(w[kx]), v));
    }
    acc
}

/// [`dot3_x4`] for eight outputs (256 bits).
#[inline(always)]
unsafe fn dot3_x8(q: *const i16, w: [i32; 3], off: [usize; 3], p: usize) -> __m256i {
    let mut acc = _mm256_setzero_si256();
    for kx in 0..3 {
        let v = _mm256_loadu_si256(q.add(2 * off[kx] + p).cast());
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_set1_epi32(w[kx]), v));
    }
    acc
}

/// The SSE2 `dw3_row` (one output row of [`super::dw3_plane`]), eight outputs at a time: groups of four are stored last to first (an
/// odd last group alone, then pairs of groups), so rows written in order overwrite each
/// other's spill as on the SSE2 path.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn dw3_row(
    qa: &[i16],
    qb: &[i16],
    w01: &[i32; 3],
    w2: &[i32; 3],
    off: [usize; 3],
    n4: usize,
    out: &mut [i32],
    at: usize,
) {
    let need = 2 * (off.iter().max().copied().unwrap_or(0) + 4 * n4);
    assert!(qa.len() >= need && qb.len() >= need && out.len() >= at + 4 * n4, "dw3_row reads past its rows");
    let (w01, w2) = (*w01, *w2);
    let (pa, pb, po) = (qa.as_ptr(), qb.as_ptr(), out.as_mut_ptr().add(at));
    let mut i = n4;
    // SAFETY (both blocks): group g reads 2·off[kx] + 8g .. + 8 (+ 16 for a pair g, g + 1 <
    // n4) ≤ need i16 from the row starts and stores outputs 4g .. 4g + 4 (+ 8) ≤ 4·n4 from `at`.
    if i % 2 == 1 {
        i -= 1;
        let s = _mm_add_epi32(dot3_x4(pa, w01, off, 8 * i), dot3_x4(pb, w2, off, 8 * i));
        _mm_storeu_si128(po.add(4 * i).cast(), s);
    }
    while i >= 2 {
        i -= 2;
        let s = _mm256_add_epi32(dot3_x8(pa, w01, off, 8 * i), dot3_x8(pb, w2, off, 8 * i));
        _mm256_storeu_si256(po.add(4 * i).cast(), s);
    }
}

/// The SSE2 `dw3_rows2` (two output rows of [`super::dw3_plane`]), eight outputs at a time, storing in the same order as [`dw3_row`]
/// (the first row's group before the second's at each step, so the first row's spill past
/// `width` is overwritten by the second row).
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn dw3_rows2(qa: &[i16], qb: &[i16], w: &[[i32; 3]; 4], n4: usize, out: &mut [i32], at0: usize, at1: usize) {
    // Stride 1: the taps at pair offsets 0, 1, 2.
    let off = [0, 1, 2];
    let need = 2 * (off.iter().max().copied().unwrap_or(0) + 4 * n4);
    assert!(
        qa.len() >= need && qb.len() >= need && out.len() >= at0.max(at1) + 4 * n4,
        "dw3_rows2 reads past its rows"
    );
    let (pa, pb) = (qa.as_ptr(), qb.as_ptr());
    let (o0, o1) = (out.as_mut_ptr().add(at0), out.as_mut_ptr().add(at1));
    let mut i = n4;
    // SAFETY: as in `dw3_row`, for each of the two destinations.
    if i % 2 == 1 {
        i -= 1;
        let p = 8 * i;
        let s0 = _mm_add_epi32(dot3_x4(pa, w[0], off, p), dot3_x4(pb, w[1], off, p));
        let s1 = _mm_add_epi32(dot3_x4(pa, w[2], off, p), dot3_x4(pb, w[3], off, p));
        _mm_storeu_si128(o0.add(4 * i).cast(), s0);
        _mm_storeu_si128(o1.add(4 * i).cast(), s1);
    }
    while i >= 2 {
        i -= 2;
        let p = 8 * i;
        let s0 = _mm256_add_epi32(dot3_x8(pa, w[0], off, p), dot3_x8(pb, w[1], off, p));
        let s1 = _mm256_add_epi32(dot3_x8(pa, w[2], off, p), dot3_x8(pb, w[3], off, p));
        _mm256_storeu_si256(o0.add(4 * i).cast(), s0);
        _mm256_storeu_si256(o1.add(4 * i).cast(), s1);
    }
}

/// Requantizes `vals[t] + add` into `out[t]` (the first `vals.len()` of it) for a finite
/// scale `s`: [`super::requant_store8`]'s lane steps on eight lanes per register, the ragged
/// end through an eight-value scratch, so every code equals the SSE2 path's.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn requant_run<T: Widen>(out: &mut [T], vals: &[i32], add: i32, s: f32, zp: i32, lo: i32, hi: i32) {
    let n = vals.len();
    let out = &mut out[..n];
    let (a, b) = ((lo - zp) as f32, (hi - zp) as f32);
    let off = super::ROUND_MAGIC_BITS - zp;
    let (vs, va, vb, magic) = (_mm256_set1_ps(s), _mm256_set1_ps(a), _mm256_set1_ps(b), _mm256_set1_ps(ROUND_MAGIC));
    let (vadd, voff) = (_mm256_set1_epi32(add), _mm256_set1_epi32(off));
    // SAFETY: 32-byte loads from eight readable i32, 8-byte stores into eight writable codes.
    let eight = |src: *const i32, dst: *mut T| {
        let v = _mm256_add_epi32(_mm256_loadu_si256(src.cast()), vadd);
        let x = _mm256_mul_ps(_mm256_cvtepi32_ps(v), vs);
        let x = _mm256_min_ps(_mm256_max_ps(x, va), vb);
        let q = _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(x, magic)), voff);
        let w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q));
        let c = if T::SIGNED { _mm_packs_epi16(w, w) } else { _mm_packus_epi16(w, w) };
        _mm_storel_epi64(dst.cast(), c);
    };
    let n8 = n / 8 * 8;
    for t in (0..n8).step_by(8) {
        eight(vals.as_ptr().add(t), out.as_mut_ptr().add(t));
    }
    if n8 < n {
        let mut v8 = [0i32; 8];
        v8[..n - n8].copy_from_slice(&vals[n8..]);
        let mut q8 = [T::from_i32(0); 8];
        eight(v8.as_ptr(), q8.as_mut_ptr());
        out[n8..].copy_from_slice(&q8[..n - n8]);
    }
}

/// QuantizeLinear's codes for one run of values sharing `scale` and zero-point `zp`:
/// `out[t] = clamp(round_half_even(x[t] / scale) + zp, lo, hi)` (NaN → `zp`), the same codes as
/// [`QParams::quantize`](crate::quant::QParams::quantize): the quotient is the same IEEE
/// division, NaN lanes are zeroed, and clamping to `lo − zp ..= hi − zp` before rounding with
/// 1.5·2²³ gives the same integer as rounding first (see [`super::requant_store8`]). `lo ≤ hi`
/// and `zp` must lie in `T`'s range; `out` at least as long as `x`.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn quantize_run<T: Widen>(x: &[f32], scale: f32, zp: i32, lo: i32, hi: i32, out: &mut [T]) {
    let n = x.len();
    let out = &mut out[..n];
    let (vs, va, vb) = (_mm256_set1_ps(scale), _mm256_set1_ps((lo - zp) as f32), _mm256_set1_ps((hi - zp) as f32));
    let (magic, voff) = (_mm256_set1_ps(ROUND_MAGIC), _mm256_set1_epi32(super::ROUND_MAGIC_BITS - zp));
    // SAFETY: 32-byte loads from eight readable f32, 8-byte stores into eight writable codes.
    let eight = |src: *const f32, dst: *mut T| {
        let y = _mm256_div_ps(_mm256_loadu_ps(src), vs);
        let y = _mm256_and_ps(y, _mm256_cmp_ps::<_CMP_ORD_Q>(y, y));
        let y = _mm256_min_ps(_mm256_max_ps(y, va), vb);
        let q = _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(y, magic)), voff);
        let w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q));
        let c = if T::SIGNED { _mm_packs_epi16(w, w) } else { _mm_packus_epi16(w, w) };
        _mm_storel_epi64(dst.cast(), c);
    };
    let n8 = n / 8 * 8;
    for t in (0..n8).step_by(8) {
        eight(x.as_ptr().add(t), out.as_mut_ptr().add(t));
    }
    if n8 < n {
        let mut x8 = [0f32; 8];
        x8[..n - n8].copy_from_slice(&x[n8..]);
        let mut q8 = [T::from_i32(0); 8];
        eight(x8.as_ptr(), q8.as_mut_ptr());
        out[n8..].copy_from_slice(&q8[..n - n8]);
    }
}

/// Sixteen 8-bit values at `p` widened to sixteen `i16` (sign- or zero-extended by `T`).
#[inline(always)]
unsafe fn widen16<T: Widen>(v: __m128i) -> __m256i {
    if T::SIGNED {
        _mm256_cvtepi8_epi16(v)
    } else {
        _mm256_cvtepu8_epi16(v)
    }
}

/// [`super::interleave_rows`], sixteen columns per step (the last eight through the SSE2
/// step when `n` is an odd multiple of 8).
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn interleave_rows<T: Widen>(a: &[T], b: &[T], n: usize, out: &mut [i16]) {
    let (a, b, out) = (&a[..n], &b[..n], &mut out[..2 * n]);
    let n16 = n / 16 * 16;
    // SAFETY: column c < n16 reads a[c..c + 16], b[c..c + 16] and writes out[2c..2c + 32].
    for c in (0..n16).step_by(16) {
        let va = _mm_loadu_si128(a.as_ptr().add(c).cast());
        let vb = _mm_loadu_si128(b.as_ptr().add(c).cast());
        let o = out.as_mut_ptr().add(2 * c);
        _mm256_storeu_si256(o.cast(), widen16::<T>(_mm_unpacklo_epi8(va, vb)));
        _mm256_storeu_si256(o.add(16).cast(), widen16::<T>(_mm_unpackhi_epi8(va, vb)));
    }
    let (ra, rb, o) = (&a[n16..], &b[n16..], &mut out[2 * n16..]);
    for ((ra, rb), o) in ra.chunks_exact(8).zip(rb.chunks_exact(8)).zip(o.chunks_exact_mut(16)) {
        super::interleave_widen8(ra.try_into().expect("8"), rb.try_into().expect("8"), o);
    }
}

/// [`super::interleave_rows_even_odd`] (`n` a multiple of 16): the byte pairs `(a_j, b_j)`
/// interleaved, the even and the odd pairs gathered with one byte shuffle, then widened.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn interleave_rows_even_odd<T: Widen>(a: &[T], b: &[T], n: usize, even: &mut [i16], odd: &mut [i16]) {
    let (a, b, even, odd) = (&a[..n], &b[..n], &mut even[..n], &mut odd[..n]);
    // Within 16 bytes of pairs u0..u7: u0 u2 u4 u6 then u1 u3 u5 u7.
    let gather = _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    // SAFETY: column c < n (a multiple of 16) reads a[c..c + 16], b[c..c + 16] and writes
    // even[c..c + 16], odd[c..c + 16].
    for c in (0..n / 16 * 16).step_by(16) {
        let va = _mm_loadu_si128(a.as_ptr().add(c).cast());
        let vb = _mm_loadu_si128(b.as_ptr().add(c).cast());
        let lo = _mm_shuffle_epi8(_mm_unpacklo_epi8(va, vb), gather);
        let hi = _mm_shuffle_epi8(_mm_unpackhi_epi8(va, vb), gather);
        _mm256_storeu_si256(even.as_mut_ptr().add(c).cast(), widen16::<T>(_mm_unpacklo_epi64(lo, hi)));
        _mm256_storeu_si256(odd.as_mut_ptr().add(c).cast(), widen16::<T>(_mm_unpackhi_epi64(lo, hi)));
    }
}

/// TFLite's `MultiplyByQuantizedMultiplier` + zero point + clamp on eight int32 lanes, each with
/// its own multiplier `m ≥ 0`, left shift and right shift (0…31): what
/// [`Requant::apply`](crate::ops::tflite::fixed::Requant::apply) computes for each lane, in the
/// same unsigned 32 × 32 → 64-bit steps (`vpmuludq` on the even and the odd lanes), returned as
/// int32 codes in `lo..=hi`.
#[inline]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn tfl_requant8(
    acc: __m256i,
    m: __m256i,
    left: __m256i,
    right: __m256i,
    zp: __m256i,
    lo: __m256i,
    hi: __m256i,
) -> __m256i {
    let a = _mm256_sllv_epi32(acc, left);
    let ua = _mm256_abs_epi32(a); // |i32::MIN| reads as 2^31 unsigned
    let neg = _mm256_srai_epi32::<31>(a);
    let one64 = _mm256_set1_epi64x(1);
    let half = _mm256_set1_epi64x(1 << 30);
    // Even lanes in the low halves of the 64-bit products, odd lanes shifted down.
    let pe = _mm256_mul_epu32(ua, m);
    let po = _mm256_mul_epu32(_mm256_srli_epi64::<32>(ua), _mm256_srli_epi64::<32>(m));
    let pe = _mm256_sub_epi64(_mm256_add_epi64(pe, half), _mm256_and_si256(neg, one64));
    let po = _mm256_sub_epi64(_mm256_add_epi64(po, half), _mm256_and_si256(_mm256_srli_epi64::<32>(neg), one64));
    let me = _mm256_srli_epi64::<31>(pe);
    let mo = _mm256_slli_epi64::<32>(_mm256_srli_epi64::<31>(po));
    let q = _mm256_sign_epi32(_mm256_blend_epi32::<0b1010_1010>(me, mo), a);
    // Rounding divide by 2^right, ties away from zero.
    let ones = _mm256_set1_epi32(1);
    let mask = _mm256_sub_epi32(_mm256_sllv_epi32(ones, right), ones);
    let threshold = _mm256_sub_epi32(_mm256_srli_epi32::<1>(mask), _mm256_srai_epi32::<31>(q));
    let up = _mm256_cmpgt_epi32(_mm256_and_si256(q, mask), threshold);
    let y = _mm256_sub_epi32(_mm256_srav_epi32(q, right), up);
    _mm256_max_epi32(_mm256_min_epi32(_mm256_add_epi32(y, zp), hi), lo)
}

/// Eight int32 codes in `lo..=hi ⊂ −128..=127` stored as int8.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store8_i8(codes: __m256i, dst: *mut i8) {
    let w = _mm_packs_epi32(_mm256_castsi256_si128(codes), _mm256_extracti128_si256::<1>(codes));
    _mm_storel_epi64(dst.cast(), _mm_packs_epi16(w, w));
}

/// [`tfl_requant8`] over `acc` into `out` (`out.len() == acc.len()`), eight at a time; the
/// parameters of element `t` are `m[t]`, `left[t]`, `right[t]` (`per_lane`) or `m[0]`,
/// `left[0]`, `right[0]` for all. Returns how many elements it wrote (a multiple of eight): the
/// caller finishes the rest.
///
/// # Safety
/// The CPU must have AVX2; with `per_lane`, `m`, `left` and `right` at least as long as `acc`.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn tfl_requant_run(
    acc: &[i32],
    out: &mut [i8],
    (m, left, right): (&[i32], &[i32], &[i32]),
    per_lane: bool,
    (zp, lo, hi): (i32, i32, i32),
) -> usize {
    let n8 = acc.len().min(out.len()) / 8 * 8;
    if per_lane && (m.len() < n8 || left.len() < n8 || right.len() < n8) {
        return 0;
    }
    let (vzp, vlo, vhi) = (_mm256_set1_epi32(zp), _mm256_set1_epi32(lo), _mm256_set1_epi32(hi));
    let (um, ul, ur) = (_mm256_set1_epi32(m[0]), _mm256_set1_epi32(left[0]), _mm256_set1_epi32(right[0]));
    for t in (0..n8).step_by(8) {
        // SAFETY: t + 8 ≤ n8 ≤ every slice's length (checked above for the parameters).
        let load = |s: &[i32]| _mm256_loadu_si256(s.as_ptr().add(t).cast());
        let (vm, vl, vr) = if per_lane { (load(m), load(left), load(right)) } else { (um, ul, ur) };
        let codes = tfl_requant8(load(acc), vm, vl, vr, vzp, vlo, vhi);
        store8_i8(codes, out.as_mut_ptr().add(t));
    }
    n8
}
