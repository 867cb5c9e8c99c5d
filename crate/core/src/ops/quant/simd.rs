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

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
mod level;
mod requant;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) mod wasm128;
pub use level::{avx2_available, set_avx2, simd_name, use_avx2};
use requant::ROUND_MAGIC_BITS;
pub use requant::{dequant8, requant_store8};

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
    /// Every lane `v` (a [`pair`] of `i16`, for [`I32x4::dot_add_at`]).
    #[inline(always)]
    pub fn splat(v: i32) -> I32x4 {
        // SAFETY: SSE2 is part of the x86-64 baseline.
        I32x4(unsafe { arch::_mm_set1_epi32(v) })
    }
    /// `self + dot(w, b)` with `w` from [`I32x4::splat`] and `b` the eight `i16` at `b`.
    ///
    /// # Safety
    /// `b` must point to eight readable `i16`.
    #[inline(always)]
    pub unsafe fn dot_add_at(self, w: I32x4, b: *const i16) -> I32x4 {
        // SAFETY: the caller guarantees eight readable i16; the load is unaligned.
        unsafe { I32x4(arch::_mm_add_epi32(self.0, arch::_mm_madd_epi16(w.0, arch::_mm_loadu_si128(b.cast())))) }
    }
    /// Writes the lanes to the four `i32` at `p`.
    ///
    /// # Safety
    /// `p` must point to four writable `i32`.
    #[inline(always)]
    pub unsafe fn store_at(self, p: *mut i32) {
        // SAFETY: the caller guarantees four writable i32; the store is unaligned.
        unsafe { arch::_mm_storeu_si128(p.cast(), self.0) }
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
    /// Every lane `v` (a [`pair`] of `i16`, for [`I32x4::dot_add_at`]).
    #[inline(always)]
    pub fn splat(v: i32) -> I32x4 {
        I32x4(arch::i32x4_splat(v))
    }
    /// `self + dot(w, b)` with `w` from [`I32x4::splat`] and `b` the eight `i16` at `b`.
    ///
    /// # Safety
    /// `b` must point to eight readable `i16`.
    #[inline(always)]
    pub unsafe fn dot_add_at(self, w: I32x4, b: *const i16) -> I32x4 {
        // SAFETY: the caller guarantees eight readable i16; v128 loads need no alignment.
        let bv = unsafe { arch::v128_load(b.cast()) };
        I32x4(arch::i32x4_add(self.0, arch::i32x4_dot_i16x8(w.0, bv)))
    }
    /// Writes the lanes to the four `i32` at `p`.
    ///
    /// # Safety
    /// `p` must point to four writable `i32`.
    #[inline(always)]
    pub unsafe fn store_at(self, p: *mut i32) {
        // SAFETY: the caller guarantees four writable i32; v128 stores need no alignment.
        unsafe { arch::v128_store(p.cast(), self.0) }
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
    /// Every lane `v` (a [`pair`] of `i16`, for [`I32x4::dot_add_at`]).
    #[inline(always)]
    pub fn splat(v: i32) -> I32x4 {
        I32x4([v; 4])
    }
    /// `self + dot(w, b)` with `w` from [`I32x4::splat`] and `b` the eight `i16` at `b`.
    ///
    /// # Safety
    /// `b` must point to eight readable `i16`.
    #[inline(always)]
    pub unsafe fn dot_add_at(self, w: I32x4, b: *const i16) -> I32x4 {
        // SAFETY: the caller guarantees eight readable i16.
        self.dot_add(w.0[0], unsafe { std::slice::from_raw_parts(b, 8) })
    }
    /// Writes the lanes to the four `i32` at `p`.
    ///
    /// # Safety
    /// `p` must point to four writable `i32`.
    #[inline(always)]
    pub unsafe fn store_at(self, p: *mut i32) {
        // SAFETY: the caller guarantees four writable i32.
        unsafe { std::ptr::copy_nonoverlapping(self.0.as_ptr(), p, 4) }
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

/// One output row of the direct 3×3 depthwise kernel: for each group of four outputs `i <
/// n4`, `out[at + 4i..][..4] = Σ_kx dot(w[kx][0], qa[2(off[kx] + 4i)..]) + dot(w[kx][1],
/// qb[2(off[kx] + 4i)..])` (see [`I32x4::dot_add`]; `w` the filter pairs `w01`, `w2` of each
/// tap column, splatted), where `qa`/`qb` hold interleaved row pairs. Bounds are checked once
/// up front (panics if a read would leave `qa` or `qb` or a store `out`); the loop itself
/// reads unchecked.
#[inline(always)]
fn dw3_row(qa: &[i16], qb: &[i16], w: &[[I32x4; 2]; 3], off: [usize; 3], n4: usize, out: &mut [i32], at: usize) {
    let need = 2 * (off.iter().max().copied().unwrap_or(0) + 4 * n4);
    assert!(qa.len() >= need && qb.len() >= need && out.len() >= at + 4 * n4, "dw3_row reads past its rows");
    // The taps' reads as pointers and the stores through a pointer: a loop of loads, dot steps
    // and one store, with nothing for the engine to re-check.
    // SAFETY: the assert above: every read is at 2·(off[kx] + 4i) + 8 ≤ need i16 from the row
    // starts, and every store at at + 4i + 4 ≤ out.len().
    unsafe {
        let (a, b) = (off.map(|o| qa.as_ptr().add(2 * o)), off.map(|o| qb.as_ptr().add(2 * o)));
        let po = out.as_mut_ptr().add(at);
        for i in 0..n4 {
            let p = 8 * i;
            let mut s = I32x4::zero().dot_add_at(w[0][0], a[0].add(p));
            s = s.dot_add_at(w[0][1], b[0].add(p));
            s = s.dot_add_at(w[1][0], a[1].add(p));
            s = s.dot_add_at(w[1][1], b[1].add(p));
            s = s.dot_add_at(w[2][0], a[2].add(p));
            s = s.dot_add_at(w[2][1], b[2].add(p));
            s.store_at(po.add(4 * i));
        }
    }
}

/// Two output rows of the direct 3×3 depthwise kernel at stride 1 (taps at pair offsets 0, 1, 2)
/// from the same two interleaved row pairs: at `at0` as [`dw3_row`] with the filter pairs
/// `w[kx][0]`, `w[kx][1]`, at `at1` with `w[kx][2]`, `w[kx][3]` (splatted, see [`splat4`]), so
/// each vector read feeds two dot steps. With `at1 = at0 + width` and `width > 4·n4 − 4`, the
/// first row's last group, which spills past `width`, is stored before the second row's first
/// group overwrites the spill.
#[inline(always)]
fn dw3_rows2(qa: &[i16], qb: &[i16], w: &[[I32x4; 4]; 3], n4: usize, out: &mut [i32], at0: usize, at1: usize) {
    let need = 2 * (2 + 4 * n4);
    assert!(
        qa.len() >= need && qb.len() >= need && out.len() >= at0.max(at1) + 4 * n4,
        "dw3_rows2 reads past its rows"
    );
    if n4 == 0 {
        return;
    }
    // As in `dw3_row`: reads and stores through pointers, the taps at constant offsets from one
    // read pointer per row pair.
    // SAFETY: the assert above: group i reads 8i .. 8i + 4 + 8 ≤ need i16 from the row starts
    // and stores 4i .. 4i + 4 ≤ 4·n4 from each destination.
    unsafe {
        let (pa, pb) = (qa.as_ptr(), qb.as_ptr());
        let (o0, o1) = (out.as_mut_ptr().add(at0), out.as_mut_ptr().add(at1));
        let group = |i: usize| {
            let (a, b) = (pa.add(8 * i), pb.add(8 * i));
            let (mut s0, mut s1) = (I32x4::zero(), I32x4::zero());
            for (kx, wk) in w.iter().enumerate() {
                let (va, vb) = (a.add(2 * kx), b.add(2 * kx));
                s0 = s0.dot_add_at(wk[0], va).dot_add_at(wk[1], vb);
                s1 = s1.dot_add_at(wk[2], va).dot_add_at(wk[3], vb);
            }
            (s0, s1)
        };
        let (s0, s1) = group(n4 - 1);
        s0.store_at(o0.add(4 * (n4 - 1)));
        s1.store_at(o1.add(4 * (n4 - 1)));
        for i in 0..n4 - 1 {
            let (s0, s1) = group(i);
            s0.store_at(o0.add(4 * i));
            s1.store_at(o1.add(4 * i));
        }
    }
}

/// The four filter pairs of each tap column `kx`, splatted: `[kx][r] = w[r][kx]`.
#[inline(always)]
fn splat4(w: &[[i32; 3]; 4]) -> [[I32x4; 4]; 3] {
    std::array::from_fn(|kx| std::array::from_fn(|r| I32x4::splat(w[r][kx])))
}

/// One channel's whole plane of the direct 3×3 depthwise kernel, output row `oy` at `out[oy·ow..]`
/// (`n4` groups of four, spilling past `ow` into the next row as [`dw3_rows2`] allows): the
/// interleaved row pairs `q[y]` start `qs` apart, and row `oy` reads `q[stride·oy]` and
/// `q[stride·oy + 2]` at the tap offsets `off`. At stride 1 the rows go two at a time
/// ([`dw3_rows2`] with `w4`), an odd last one and every row at stride 2 alone ([`dw3_row`] with
/// `w4[0]`, `w4[1]`), in order. The filter pairs are splatted once for the plane, not per row
/// (the AVX2 kernels splat their own).
#[allow(clippy::too_many_arguments)]
pub fn dw3_plane(
    q: &[i16],
    qs: usize,
    stride: usize,
    off: [usize; 3],
    w4: &[[i32; 3]; 4],
    (oh, ow, n4): (usize, usize, usize),
    out: &mut [i32],
) {
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        return plane_rows(
            q,
            (qs, stride, oh, ow),
            out,
            // SAFETY: `use_avx2` is true only where the CPU has AVX2.
            |qa, qb, out, at0, at1| unsafe { avx2::dw3_rows2(qa, qb, w4, n4, out, at0, at1) },
            // SAFETY: as above.
            |qa, qb, out, at| unsafe { avx2::dw3_row(qa, qb, &w4[0], &w4[1], off, n4, out, at) },
        );
    }
    let w = splat4(w4);
    let w1: [[I32x4; 2]; 3] = std::array::from_fn(|kx| [w[kx][0], w[kx][1]]);
    plane_rows(
        q,
        (qs, stride, oh, ow),
        out,
        |qa, qb, out, at0, at1| dw3_rows2(qa, qb, &w, n4, out, at0, at1),
        |qa, qb, out, at| dw3_row(qa, qb, &w1, off, n4, out, at),
    );
}

/// The order [`dw3_plane`] takes its rows in, with the kernels for two rows and for one.
#[inline(always)]
fn plane_rows(
    q: &[i16],
    (qs, stride, oh, ow): (usize, usize, usize, usize),
    out: &mut [i32],
    mut two: impl FnMut(&[i16], &[i16], &mut [i32], usize, usize),
    mut one: impl FnMut(&[i16], &[i16], &mut [i32], usize),
) {
    let rows = |y: usize| (&q[y * qs..][..qs], &q[(y + 2) * qs..][..qs]);
    let mut oy = 0;
    while stride == 1 && oy + 2 <= oh {
        let (qa, qb) = rows(oy);
        two(qa, qb, out, oy * ow, (oy + 1) * ow);
        oy += 2;
    }
    for oy in oy..oh {
        let (qa, qb) = rows(oy * stride);
        one(qa, qb, out, oy * ow);
    }
}

/// `out = interleave(a, b)` widened to `i16` over `n` columns (both rows at least `n` long,
/// `out` at least `2n`, of which exactly the first `2n` are written): `[a0, b0, a1, b1, …]`,
/// the row pairs of the direct depthwise kernel at stride 1, built straight from the source
/// rows (the caller places them past the left padding).
#[inline]
pub fn interleave_rows<T: super::qgemm::Widen>(a: &[T], b: &[T], n: usize, out: &mut [i16]) {
    let (a, b, out) = (&a[..n], &b[..n], &mut out[..2 * n]);
    let n8 = n / 8 * 8;
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: `use_avx2` is true only where the CPU has AVX2.
        unsafe { avx2::interleave_rows(a, b, n8, out) };
    } else {
        interleave8s(a, b, n8, out);
    }
    #[cfg(not(target_arch = "x86_64"))]
    interleave8s(a, b, n8, out);
    if n8 < n && n >= 8 {
        // The last eight columns again, overlapping: the same values where they were written.
        let c = n - 8;
        interleave_widen8(a[c..].try_into().expect("8"), b[c..].try_into().expect("8"), &mut out[2 * c..]);
    } else {
        for c in n8..n {
            (out[2 * c], out[2 * c + 1]) = (a[c].widen(), b[c].widen());
        }
    }
}

#[inline(always)]
fn interleave8s<T: super::qgemm::Widen>(a: &[T], b: &[T], n8: usize, out: &mut [i16]) {
    for ((ra, rb), o) in a[..n8].chunks_exact(8).zip(b[..n8].chunks_exact(8)).zip(out.chunks_exact_mut(16)) {
        interleave_widen8(ra.try_into().expect("8"), rb.try_into().expect("8"), o);
    }
}

/// The stride-2 row pairs of the direct depthwise kernel over `n` columns, straight from the
/// source rows: `even = [a0, b0, a2, b2, …]` (`⌈n/2⌉` pairs), `odd = [a1, b1, a3, b3, …]`
/// (`⌊n/2⌋` pairs) widened to `i16`; nothing past those pairs is written.
#[inline]
pub fn interleave_rows_even_odd<T: super::qgemm::Widen>(a: &[T], b: &[T], n: usize, even: &mut [i16], odd: &mut [i16]) {
    let (a, b) = (&a[..n], &b[..n]);
    let (even, odd) = (&mut even[..2 * n.div_ceil(2)], &mut odd[..2 * (n / 2)]);
    let n16 = n / 16 * 16;
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: `use_avx2` is true only where the CPU has AVX2.
        unsafe { avx2::interleave_rows_even_odd(a, b, n16, even, odd) };
    } else {
        even_odd16s(a, b, n16, even, odd);
    }
    #[cfg(not(target_arch = "x86_64"))]
    even_odd16s(a, b, n16, even, odd);
    let mut rest = n16;
    if n16 < n && n >= 16 {
        // The last sixteen columns from an even one again, overlapping (same values); an odd
        // `n` leaves its last, even column to the scalar step.
        let c = (n - 16) & !1;
        even_odd16(
            a[c..c + 16].try_into().expect("16"),
            b[c..c + 16].try_into().expect("16"),
            &mut even[c..],
            &mut odd[c..],
        );
        rest = c + 16;
    }
    for c in rest..n {
        let d = if c % 2 == 0 { &mut even[..] } else { &mut odd[..] };
        (d[c / 2 * 2], d[c / 2 * 2 + 1]) = (a[c].widen(), b[c].widen());
    }
}

#[inline(always)]
fn even_odd16s<T: super::qgemm::Widen>(a: &[T], b: &[T], n16: usize, even: &mut [i16], odd: &mut [i16]) {
    for (((ra, rb), e), o) in a[..n16]
        .chunks_exact(16)
        .zip(b[..n16].chunks_exact(16))
        .zip(even.chunks_exact_mut(16))
        .zip(odd.chunks_exact_mut(16))
    {
        even_odd16(ra.try_into().expect("16"), rb.try_into().expect("16"), e, o);
    }
}

#[inline(always)]
fn even_odd16<T: super::qgemm::Widen>(a: &[T; 16], b: &[T; 16], even: &mut [i16], odd: &mut [i16]) {
    let (even, odd) = (&mut even[..16], &mut odd[..16]);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is baseline; 16-byte loads from the arrays, 16-byte stores into the slices.
    unsafe {
        let va = arch::_mm_loadu_si128(a.as_ptr().cast());
        let vb = arch::_mm_loadu_si128(b.as_ptr().cast());
        // Each u16 lane holds (even byte, odd byte): split them, sign- or zero-extended.
        let (ae, ao, be, bo) = if T::SIGNED {
            (
                arch::_mm_srai_epi16(arch::_mm_slli_epi16(va, 8), 8),
                arch::_mm_srai_epi16(va, 8),
                arch::_mm_srai_epi16(arch::_mm_slli_epi16(vb, 8), 8),
                arch::_mm_srai_epi16(vb, 8),
            )
        } else {
            let m = arch::_mm_set1_epi16(0xff);
            (
                arch::_mm_and_si128(va, m),
                arch::_mm_srli_epi16(va, 8),
                arch::_mm_and_si128(vb, m),
                arch::_mm_srli_epi16(vb, 8),
            )
        };
        arch::_mm_storeu_si128(even.as_mut_ptr().cast(), arch::_mm_unpacklo_epi16(ae, be));
        arch::_mm_storeu_si128(even.as_mut_ptr().add(8).cast(), arch::_mm_unpackhi_epi16(ae, be));
        arch::_mm_storeu_si128(odd.as_mut_ptr().cast(), arch::_mm_unpacklo_epi16(ao, bo));
        arch::_mm_storeu_si128(odd.as_mut_ptr().add(8).cast(), arch::_mm_unpackhi_epi16(ao, bo));
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    // SAFETY: 16-byte loads from the arrays, 16-byte stores into the slices.
    unsafe {
        let va = arch::v128_load(a.as_ptr().cast());
        let vb = arch::v128_load(b.as_ptr().cast());
        let (ae, ao, be, bo) = if T::SIGNED {
            (
                arch::i16x8_shr(arch::i16x8_shl(va, 8), 8),
                arch::i16x8_shr(va, 8),
                arch::i16x8_shr(arch::i16x8_shl(vb, 8), 8),
                arch::i16x8_shr(vb, 8),
            )
        } else {
            let m = arch::i16x8_splat(0xff);
            (arch::v128_and(va, m), arch::u16x8_shr(va, 8), arch::v128_and(vb, m), arch::u16x8_shr(vb, 8))
        };
        arch::v128_store(even.as_mut_ptr().cast(), arch::i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(ae, be));
        arch::v128_store(even.as_mut_ptr().add(8).cast(), arch::i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(ae, be));
        arch::v128_store(odd.as_mut_ptr().cast(), arch::i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(ao, bo));
        arch::v128_store(odd.as_mut_ptr().add(8).cast(), arch::i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(ao, bo));
    }
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    for j in 0..8 {
        even[2 * j] = a[2 * j].widen();
        even[2 * j + 1] = b[2 * j].widen();
        odd[2 * j] = a[2 * j + 1].widen();
        odd[2 * j + 1] = b[2 * j + 1].widen();
    }
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
    fn interleave_widens() {
        let (a, b): ([i8; 8], [i8; 8]) = ([-128, -1, 0, 1, 127, 5, -5, 9], [3, -3, 100, -100, 0, 7, 8, -9]);
        let mut o = [0i16; 16];
        interleave_widen8(&a, &b, &mut o);
        assert_eq!(o, [-128, 3, -1, -3, 0, 100, 1, -100, 127, 0, 5, 7, -5, 8, 9, -9]);
        let (a, b): ([u8; 8], [u8; 8]) = ([255, 0, 1, 128, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11, 12, 200]);
        interleave_widen8(&a, &b, &mut o);
        assert_eq!(o, [255, 6, 0, 7, 1, 8, 128, 9, 2, 10, 3, 11, 4, 12, 5, 200]);
    }

    #[test]
    fn even_odd_split_of_row_pairs() {
        let a: Vec<u8> = (0..32).map(|i| (i * 37 % 256) as u8).chain([255, 128]).collect();
        let b: Vec<u8> = (0..32).map(|i| (255 - i * 11 % 256) as u8).chain([0, 1]).collect();
        let (mut e, mut o) = (vec![0i16; 32], vec![0i16; 32]);
        interleave_rows_even_odd(&a, &b, 32, &mut e, &mut o);
        for j in 0..16 {
            assert_eq!((e[2 * j], e[2 * j + 1]), (a[2 * j] as i16, b[2 * j] as i16), "even {j}");
            assert_eq!((o[2 * j], o[2 * j + 1]), (a[2 * j + 1] as i16, b[2 * j + 1] as i16), "odd {j}");
        }
        let ai: Vec<i8> = a.iter().map(|&v| v as i8).collect();
        let bi: Vec<i8> = b.iter().map(|&v| v as i8).collect();
        interleave_rows_even_odd(&ai, &bi, 32, &mut e, &mut o);
        for j in 0..16 {
            assert_eq!((e[2 * j], e[2 * j + 1]), (ai[2 * j] as i16, bi[2 * j] as i16), "even {j}");
            assert_eq!((o[2 * j], o[2 * j + 1]), (ai[2 * j + 1] as i16, bi[2 * j + 1] as i16), "odd {j}");
        }
        let mut q = vec![0i16; 64];
        interleave_rows(&ai, &bi, 32, &mut q);
        for j in 0..32 {
            assert_eq!((q[2 * j], q[2 * j + 1]), (ai[j] as i16, bi[j] as i16), "pair {j}");
        }
    }

    #[test]
    fn row_pairs_from_source_rows_write_exactly_their_columns() {
        // Every width from 1 to 40 (the vector steps, their overlapping last step, the scalar
        // ends): each pair lands where it belongs and nothing past it is touched.
        let a: Vec<i8> = (0..40).map(|i| (i * 37 % 256) as u8 as i8).collect();
        let b: Vec<i8> = (0..40).map(|i| (255 - i * 11 % 256) as u8 as i8).collect();
        for n in 1..=40 {
            let mut q = vec![i16::MIN; 2 * n + 8];
            interleave_rows(&a, &b, n, &mut q);
            for j in 0..n {
                assert_eq!((q[2 * j], q[2 * j + 1]), (a[j] as i16, b[j] as i16), "n {n} pair {j}");
            }
            assert!(q[2 * n..].iter().all(|&v| v == i16::MIN), "n {n}: wrote past its pairs");
            let (mut e, mut o) = (vec![i16::MIN; 2 * n.div_ceil(2) + 8], vec![i16::MIN; 2 * (n / 2) + 8]);
            interleave_rows_even_odd(&a, &b, n, &mut e, &mut o);
            for j in 0..n {
                let (d, p) = if j % 2 == 0 { (&e, j / 2) } else { (&o, j / 2) };
                assert_eq!((d[2 * p], d[2 * p + 1]), (a[j] as i16, b[j] as i16), "n {n} column {j}");
            }
            assert!(e[2 * n.div_ceil(2)..].iter().all(|&v| v == i16::MIN), "n {n}: wrote past the even pairs");
            assert!(o[2 * (n / 2)..].iter().all(|&v| v == i16::MIN), "n {n}: wrote past the odd pairs");
        }
    }

    #[test]
    fn depthwise_row_is_the_dot_of_its_taps() {
        let qa: Vec<i16> = (0..80).map(|i| (i * 97 % 511) as i16 - 255).collect();
        let qb: Vec<i16> = (0..80).map(|i| (i * 53 % 511) as i16 - 255).collect();
        let w01 = [pair(-255, 255), pair(7, -128), pair(127, 1)];
        let w2 = [pair(-3, 0), pair(255, 0), pair(-255, 0)];
        for n in [4, 8, 12, 20] {
            let off = [0, 1, 2];
            let mut acc = vec![0; n];
            let w = std::array::from_fn(|kx| [I32x4::splat(w01[kx]), I32x4::splat(w2[kx])]);
            dw3_row(&qa, &qb, &w, off, n / 4, &mut acc, 0);
            for (i, &got) in acc.iter().enumerate() {
                let d = |w: i32, q: &[i16], at: usize| {
                    (w as i16 as i32) * q[at] as i32 + ((w >> 16) as i16 as i32) * q[at + 1] as i32
                };
                let want: i32 =
                    (0..3).map(|kx| d(w01[kx], &qa, 2 * (off[kx] + i)) + d(w2[kx], &qb, 2 * (off[kx] + i))).sum();
                assert_eq!(got, want, "n {n} output {i}");
            }
        }
    }

    #[test]
    fn near_requant_matches_the_clamped_lanes_within_its_bound() {
        // Sums up to the bound `Out::store_run_within` allows (|(v + add)·s| < 2²¹), ties, both
        // signs of the scale, clamps inside and at the ends of each type's range.
        let mut seed = 11u32;
        let mut rnd = move || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            seed
        };
        for &(s, zp, lo, hi) in &[
            (0.5f32, 0, -128, 127),
            (0.013, 128, 0, 255),
            (3.0, -5, -100, 6),
            (1e-6, 17, 17, 200),
            (0.0017, -128, -128, 127),
            (-0.02, 3, 0, 255),
            (0.25, 255, 255, 255),
        ] {
            let add = 7_000;
            let limit = ((1u64 << 21) as f64 / (s as f64).abs()) as i64 - add as i64 - 1;
            let limit = limit.min(i32::MAX as i64 - add as i64) as i32;
            let mut acc: Vec<i32> = vec![limit, -limit, limit - 1, 1 - limit, 0, -add, 1 - add, -1 - add];
            acc.extend((-40..40).map(|v| v * 2 + 1 - add));
            let span = 2 * limit as i64 + 1;
            acc.extend((0..400).map(|_| (rnd() as i64 % span - limit as i64) as i32));
            for chunk in acc.windows(8) {
                let (ulo, uhi, uzp) = (lo.max(0), hi.max(0), zp.clamp(0, 255));
                let (ilo, ihi, izp) = (lo.min(127), hi.min(127), zp.clamp(-128, 127));
                let (mut u, mut un) = ([0u8; 8], [0u8; 8]);
                let (mut i, mut inear) = ([0i8; 8], [0i8; 8]);
                requant_store8::<_, false, false>(chunk, add, s, uzp, ulo, uhi, &mut u);
                requant_store8::<_, true, false>(chunk, add, s, uzp, ulo, uhi, &mut un);
                requant_store8::<_, false, false>(chunk, add, s, izp, ilo, ihi, &mut i);
                requant_store8::<_, true, false>(chunk, add, s, izp, ilo, ihi, &mut inear);
                assert_eq!(u, un, "u8: {chunk:?} s {s} zp {uzp} [{ulo}, {uhi}]");
                assert_eq!(i, inear, "i8: {chunk:?} s {s} zp {izp} [{ilo}, {ihi}]");
                // Over the type's whole range, the lanes without the clamp.
                if (ulo, uhi) == (0, 255) {
                    let mut uf = [0u8; 8];
                    requant_store8::<_, true, true>(chunk, add, s, uzp, ulo, uhi, &mut uf);
                    assert_eq!(u, uf, "u8 full range: {chunk:?} s {s} zp {uzp}");
                }
                if (ilo, ihi) == (-128, 127) {
                    let mut f = [0i8; 8];
                    requant_store8::<_, true, true>(chunk, add, s, izp, ilo, ihi, &mut f);
                    assert_eq!(i, f, "i8 full range: {chunk:?} s {s} zp {izp}");
                }
                for (k, &v) in chunk.iter().enumerate() {
                    let r = crate::ops::quant::qgemm::requant_i32(v + add, s, uzp, ulo, uhi);
                    assert_eq!(un[k] as i32, r, "u8 against the scalar rule: v {v} s {s}");
                }
            }
        }
    }

    #[test]
    fn lane_requant_matches_scalar() {
        let mut acc: Vec<i32> = vec![-1000, -3, -1, 0, 1, 5, 7, 1 << 29, i32::MAX - 2, i32::MIN + 2, 2_000_001];
        // Values whose product lands exactly on a half (ties go to even).
        acc.extend((-40..40).map(|v| v * 2 + 1));
        for &(s, zp, lo, hi) in &[
            (0.5f32, 0, -128, 127),
            (0.013, 128, 0, 255),
            (3.0, -5, -100, 6),
            (0.25, 255, 255, 255),
            (1e-9, -128, -128, 127),
            (1e30, 3, 0, 200),
            (f32::MAX, 0, -128, 127),
        ] {
            for chunk in acc.windows(8) {
                let mut u = [0u8; 8];
                let mut i = [0i8; 8];
                let (ulo, uhi, uzp) = (lo.max(0), hi.max(0), zp.clamp(0, 255));
                requant_store8::<_, false, false>(chunk, 2, s, uzp, ulo, uhi, &mut u);
                let (ilo, ihi, izp) = (lo.min(127), hi.min(127), zp.clamp(-128, 127));
                requant_store8::<_, false, false>(chunk, 2, s, izp, ilo, ihi, &mut i);
                for (k, &v) in chunk.iter().enumerate() {
                    let r = |zp, lo, hi| crate::ops::quant::qgemm::requant_i32(v.wrapping_add(2), s, zp, lo, hi);
                    assert_eq!(u[k] as i32, r(uzp, ulo, uhi), "u8: v {v} s {s} zp {uzp}");
                    assert_eq!(i[k] as i32, r(izp, ilo, ihi), "i8: v {v} s {s} zp {izp}");
                }
            }
            let d = dequant8(acc[..8].try_into().unwrap(), 2, s, -1.0, 1e9);
            for (g, &v) in d.iter().zip(&acc) {
                assert_eq!(*g, (v.wrapping_add(2) as f32 * s).clamp(-1.0, 1e9));
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
