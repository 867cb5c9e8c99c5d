//! The 3×3 depthwise kernel at stride 1 on four-byte dot products (the relaxed SIMD module where
//! the engine's dot product is exact: [`Dot4`]): four consecutive padded input rows are
//! interleaved byte by byte, so one quad holds a column's four rows, and one dot product applies
//! a filter column's three taps (and a zero) to it. Output row `y` takes the quad of rows
//! `y … y + 3` with taps `(w0, w1, w2, 0)`, row `y + 1` the same quad with `(0, w0, w1, w2)`:
//! three dot products per four outputs of each row, exact, against six `i16` pair steps.
//!
//! At stride 2 output row `y` takes rows `2y … 2y + 3` with `(w0, w1, w2, 0)`, one output row
//! per quad row, whose quads are stored as the even columns then the odd ones, so that the three
//! taps of four outputs (columns `2x`, `2x + 1`, `2x + 2`) are contiguous reads.
//!
//! Int8 weights without a zero-point only (each tap must be a byte); the input's bytes are
//! flipped into the form's type as the GEMM's are, which adds the same ±128 to every value and to
//! its zero-point.

#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
use crate::ops::quant::qgemm::column_quads;
use crate::ops::quant::qgemm::Dot4;

/// The filter columns for two output rows: `(a[kx], b[kx])` with `a` = `(w0, w1, w2, 0)` and
/// `b` = `(0, w0, w1, w2)` of column `kx`, as little-endian `i32` (`taps` row-major 3×3).
pub(super) fn filter_quads(taps: [i8; 9]) -> ([i32; 3], [i32; 3]) {
    let col = |kx: usize| [taps[kx] as u8, taps[3 + kx] as u8, taps[6 + kx] as u8];
    let a = std::array::from_fn(|kx| {
        let [w0, w1, w2] = col(kx);
        i32::from_le_bytes([w0, w1, w2, 0])
    });
    let b = std::array::from_fn(|kx| {
        let [w0, w1, w2] = col(kx);
        i32::from_le_bytes([0, w0, w1, w2])
    });
    (a, b)
}

/// `out[4c + t] = rows[t][c] ^ flip` for the first `n` columns (`n` a multiple of 16).
pub(super) fn interleave4(rows: [&[u8]; 4], n: usize, flip: u8, out: &mut [u8]) {
    let [r0, r1, r2, r3] = rows.map(|r| &r[..n]);
    let out = &mut out[..4 * n];
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::*;
        for c in (0..n).step_by(16) {
            // SAFETY: sixteen readable bytes at c of each row and 64 writable at 4c (n is a
            // multiple of 16); v128 loads and stores need no alignment.
            unsafe {
                let p = out.as_mut_ptr().add(4 * c);
                for (j, q) in column_quads([r0, r1, r2, r3], c, flip).into_iter().enumerate() {
                    v128_store(p.add(16 * j).cast(), q);
                }
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    for c in (0..n).step_by(16) {
        // SAFETY: SSE2 is part of x86-64; sixteen readable bytes at c of each row and 64
        // writable at 4c (n is a multiple of 16); unaligned loads and stores.
        unsafe {
            use std::arch::x86_64::*;
            let [p0, p1, p2, p3] = column_quads([r0, r1, r2, r3], c, flip);
            let p = out.as_mut_ptr().add(4 * c);
            _mm_storeu_si128(p.cast(), p0);
            _mm_storeu_si128(p.add(16).cast(), p1);
            _mm_storeu_si128(p.add(32).cast(), p2);
            _mm_storeu_si128(p.add(48).cast(), p3);
        }
    }
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    for c in 0..n {
        out[4 * c..4 * c + 4].copy_from_slice(&[r0[c] ^ flip, r1[c] ^ flip, r2[c] ^ flip, r3[c] ^ flip]);
    }
}

/// [`interleave4`] with the quads of even columns in `even`, those of odd columns in `odd`
/// (`n` a multiple of 16; `n / 2` quads each).
pub(super) fn interleave4_even_odd(rows: [&[u8]; 4], n: usize, flip: u8, even: &mut [u8], odd: &mut [u8]) {
    let [r0, r1, r2, r3] = rows.map(|r| &r[..n]);
    let (even, odd) = (&mut even[..2 * n], &mut odd[..2 * n]);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::*;
        for c in (0..n).step_by(16) {
            // SAFETY: sixteen readable bytes at c of each row and 32 writable at 2c of each half
            // (n is a multiple of 16); v128 loads and stores need no alignment.
            unsafe {
                let [p0, p1, p2, p3] = column_quads([r0, r1, r2, r3], c, flip);
                let (e, o) = (even.as_mut_ptr().add(2 * c), odd.as_mut_ptr().add(2 * c));
                v128_store(e.cast(), i32x4_shuffle::<0, 2, 4, 6>(p0, p1));
                v128_store(e.add(16).cast(), i32x4_shuffle::<0, 2, 4, 6>(p2, p3));
                v128_store(o.cast(), i32x4_shuffle::<1, 3, 5, 7>(p0, p1));
                v128_store(o.add(16).cast(), i32x4_shuffle::<1, 3, 5, 7>(p2, p3));
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    for c in (0..n).step_by(16) {
        // SAFETY: SSE2 is part of x86-64; sixteen readable bytes at c of each row and 32
        // writable at 2c of each half (n is a multiple of 16); unaligned loads and stores.
        unsafe {
            use std::arch::x86_64::*;
            let [p0, p1, p2, p3] = column_quads([r0, r1, r2, r3], c, flip);
            // Even and odd 32-bit lanes of each pair of registers.
            let pick = |x: __m128i, y: __m128i, odd: bool| {
                let (x, y) = (_mm_castsi128_ps(x), _mm_castsi128_ps(y));
                _mm_castps_si128(if odd {
                    _mm_shuffle_ps::<0b11_01_11_01>(x, y)
                } else {
                    _mm_shuffle_ps::<0b10_00_10_00>(x, y)
                })
            };
            let (e, o) = (even.as_mut_ptr().add(2 * c), odd.as_mut_ptr().add(2 * c));
            _mm_storeu_si128(e.cast(), pick(p0, p1, false));
            _mm_storeu_si128(e.add(16).cast(), pick(p2, p3, false));
            _mm_storeu_si128(o.cast(), pick(p0, p1, true));
            _mm_storeu_si128(o.add(16).cast(), pick(p2, p3, true));
        }
    }
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    for c in 0..n {
        let half = if c % 2 == 0 { &mut *even } else { &mut *odd };
        half[4 * (c / 2)..4 * (c / 2) + 4].copy_from_slice(&[r0[c] ^ flip, r1[c] ^ flip, r2[c] ^ flip, r3[c] ^ flip]);
    }
}

/// One output row at stride 2 from one quad row `q` whose odd columns' quads start at quad
/// `half`: for each group of four outputs `i < n4`, `out[at + 4i..][..4]` = Σ_kx dot(a[kx],
/// the quads at `off[kx] + 4i …`), with `off = [0, half, 1]`. Groups are stored last to first.
/// Panics if a read would leave `q` or a store `out`.
pub(super) fn row1(form: Dot4, q: &[u8], a: [i32; 3], half: usize, n4: usize, out: &mut [i32], at: usize) {
    let off = [0, half, 1];
    assert!(q.len() >= 4 * (half + 4 * n4) && out.len() >= at + 4 * n4, "dw_quads::row1 reads past its rows");
    assert!(half > 4 * n4, "dw_quads::row1: the even half is too short");
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        use core::arch::wasm32::*;
        let _ = form; // the engine's own form, which `Dot4::mode` checked
        let wa = a.map(|v| i32x4_splat(v));
        for i in (0..n4).rev() {
            let mut s = i32x4_splat(0);
            for kx in 0..3 {
                // SAFETY: the reads end at 4·(half + 4·n4) bytes at most (asserted).
                let v = unsafe { v128_load(q.as_ptr().add(4 * (off[kx] + 4 * i)).cast()) };
                s = i32x4_relaxed_dot_i8x16_i7x16_add(wa[kx], v, s);
            }
            // SAFETY: four writable i32 (asserted).
            unsafe { v128_store(out.as_mut_ptr().add(at + 4 * i).cast(), s) };
        }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
    {
        #[cfg(target_arch = "x86_64")]
        if form == Dot4::Unsigned && crate::ops::quant::qgemm::vnni() {
            // SAFETY: `vnni` is true only where the CPU has AVX2 and AVX-VNNI; bounds asserted.
            return unsafe { vnni::rows(q, [(a, at)], off, n4, out) };
        }
        for i in (0..n4).rev() {
            for l in 0..4 {
                out[at + 4 * i + l] = (0..3).map(|kx| form.dot(a[kx], &q[4 * (off[kx] + 4 * i + l)..][..4])).sum();
            }
        }
    }
}

/// Two output rows from one quad row `q` (see the module's note): for each group of four
/// outputs `i < n4`, `out[at0 + 4i..][..4]` = Σ_kx dot(a[kx], quads 4i + kx … 4i + kx + 3) and
/// `out[at1 + 4i..]` with `b`. Groups are stored last to first, so with `at1 = at0 + width` the
/// first row's spill past `width` is overwritten by the second row. Panics if a read would leave
/// `q` or a store `out`.
#[allow(clippy::too_many_arguments)]
pub(super) fn rows2(
    form: Dot4,
    q: &[u8],
    a: [i32; 3],
    b: [i32; 3],
    n4: usize,
    out: &mut [i32],
    at0: usize,
    at1: usize,
) {
    assert!(q.len() >= 16 * n4 + 8 && out.len() >= at0.max(at1) + 4 * n4, "dw_quads::rows2 reads past its rows");
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        use core::arch::wasm32::*;
        let _ = form; // the engine's own form, which `Dot4::mode` checked
        let (wa, wb) = (a.map(|v| i32x4_splat(v)), b.map(|v| i32x4_splat(v)));
        for i in (0..n4).rev() {
            let (mut s0, mut s1) = (i32x4_splat(0), i32x4_splat(0));
            for kx in 0..3 {
                // SAFETY: the read ends at 4·(4i + kx) + 16 ≤ 16·n4 + 8 bytes (asserted).
                let v = unsafe { v128_load(q.as_ptr().add(4 * (4 * i + kx)).cast()) };
                s0 = i32x4_relaxed_dot_i8x16_i7x16_add(wa[kx], v, s0);
                s1 = i32x4_relaxed_dot_i8x16_i7x16_add(wb[kx], v, s1);
            }
            // SAFETY: four writable i32 at each (asserted).
            unsafe {
                v128_store(out.as_mut_ptr().add(at0 + 4 * i).cast(), s0);
                v128_store(out.as_mut_ptr().add(at1 + 4 * i).cast(), s1);
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    if form == Dot4::Unsigned && crate::ops::quant::qgemm::vnni() {
        // SAFETY: `vnni` is true only where the CPU has AVX2 and AVX-VNNI; bounds asserted.
        return unsafe { vnni::rows(q, [(a, at0), (b, at1)], [0, 1, 2], n4, out) };
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
    for i in (0..n4).rev() {
        // Row 0's four, then row 1's (which may overwrite row 0's spill), as the lanes store.
        for (w, at) in [(a, at0), (b, at1)] {
            for l in 0..4 {
                out[at + 4 * i + l] = (0..3).map(|kx| form.dot(w[kx], &q[4 * (4 * i + kx + l)..][..4])).sum();
            }
        }
    }
}

/// The native kernels on `vpdpbusd` (AVX-VNNI: the unsigned form), eight outputs a register.
#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    /// For each `(w, at)` of `rows`: for each group of four outputs `i < n4`, `out[at + 4i..][..4]`
    /// = Σ_kx dot(w[kx], the quads at `off[kx] + 4i …`) — [`super::rows2`] (two rows, `off` =
    /// 0, 1, 2) and [`super::row1`] (one row, `off` = 0, half, 1). Two groups a step, last to
    /// first, each step's rows in order (the last group alone on 128 bits when `n4` is odd), so
    /// the stores land as the 128-bit kernels' do.
    ///
    /// # Safety
    /// The CPU must have AVX2 and AVX-VNNI; the caller checked that every read (up to quad
    /// `max(off) + 4·n4`) stays in `q` and every store in `out`.
    #[target_feature(enable = "avx2,avxvnni")]
    pub(super) unsafe fn rows<const R: usize>(
        q: &[u8],
        rows: [([i32; 3], usize); R],
        off: [usize; 3],
        n4: usize,
        out: &mut [i32],
    ) {
        let (pq, po) = (q.as_ptr(), out.as_mut_ptr());
        let w = rows.map(|(w, _)| w.map(|v| _mm256_set1_epi32(v)));
        let mut i = n4;
        while i >= 2 {
            let g = i - 2;
            let v = off.map(|o| _mm256_loadu_si256(pq.add(4 * (o + 4 * g)).cast()));
            for (r, &(_, at)) in rows.iter().enumerate() {
                let mut s = _mm256_setzero_si256();
                for kx in 0..3 {
                    s = _mm256_dpbusd_avx_epi32(s, v[kx], w[r][kx]);
                }
                _mm256_storeu_si256(po.add(at + 4 * g).cast(), s);
            }
            i -= 2;
        }
        if i == 1 {
            let v = off.map(|o| _mm_loadu_si128(pq.add(4 * o).cast()));
            for (r, &(_, at)) in rows.iter().enumerate() {
                let mut s = _mm_setzero_si128();
                for kx in 0..3 {
                    s = _mm_dpbusd_avx_epi32(s, v[kx], _mm256_castsi256_si128(w[r][kx]));
                }
                _mm_storeu_si128(po.add(at).cast(), s);
            }
        }
    }
}
