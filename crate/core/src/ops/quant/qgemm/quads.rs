//! The int8 GEMM on four-byte dot products: relaxed SIMD's `i32x4.relaxed_dot_i8x16_i7x16_add_s`
//! (sixteen 8-bit multiply-accumulates per instruction, against eight for the `i16` pairs of
//! [`I32x4::dot_add`](super::super::simd::I32x4::dot_add)), in the wasm module built with
//! `+relaxed-simd` (`www/pkg-relaxed/`, `www/pkg-threads-relaxed/`).
//!
//! The instruction is exact only for a second operand in 0…127; beyond that the engine may
//! read it as unsigned or signed and may saturate the pairwise `i16` sums. Where the engine
//! lowers it to `vpdpbusd` (x86-64 with AVX-VNNI) it is exact for any unsigned byte, and where
//! it lowers it to `sdot` (arm64) for any signed byte. [`mode`] runs it once on inputs that tell
//! these apart and returns which exact form this engine has, or `None` (say, `pmaddubsw` on an
//! x86-64 without VNNI, which saturates): the GEMM then keeps its `i16` pairs. So the page's
//! results are the same bits on every engine; only the speed differs.
//!
//! `A` (the weights, int8) is the first operand, packed once as four consecutive `k` per `i32`.
//! `B` (the activations) is the second: its bytes are flipped by `0x80` where its type is not
//! the engine's (uint8 codes on a signed engine, int8 on an unsigned one), which adds ±128 to
//! every value and to its zero-point alike, so `Σ (a − za)(b − zb)` is unchanged.

use super::{at_least, store_rows, Params, PerIndex, Scratch, Widen, B_CHUNK_BYTES, MR, NR};
use super::{Out, PackedA, QMat};
use std::ops::Range;
use std::sync::atomic::{AtomicU8, Ordering};

/// Which exact four-byte dot product the engine computes: `Σ a·b` over four int8 `a` and four
/// bytes `b` read as uint8 (`Unsigned`) or int8 (`Signed`), without intermediate saturation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dot4 {
    /// `b` as uint8 (`vpdpbusd`).
    Unsigned,
    /// `b` as int8 (`sdot`).
    Signed,
}

impl Dot4 {
    /// The byte flip that turns `B`'s codes into this form's: none where they already are.
    pub(crate) fn flip(self, b_signed: bool) -> u8 {
        if b_signed == (self == Dot4::Signed) {
            0
        } else {
            0x80
        }
    }

    /// What the flip adds to every value of `B` (and to its zero-point).
    pub(crate) fn shift(self, b_signed: bool) -> i32 {
        match (self.flip(b_signed), self) {
            (0, _) => 0,
            (_, Dot4::Unsigned) => 128,
            (_, Dot4::Signed) => -128,
        }
    }

    /// One output lane: four int8 `a` against four bytes `b` in this form.
    #[cfg_attr(all(target_arch = "wasm32", target_feature = "relaxed-simd"), allow(dead_code))]
    fn lane(self, a: [u8; 4], b: &[u8]) -> i32 {
        (0..4)
            .map(|t| {
                let bv = if self == Dot4::Signed { b[t] as i8 as i32 } else { b[t] as i32 };
                a[t] as i8 as i32 * bv
            })
            .sum()
    }

    /// One lane of the instruction: the four int8 of `a` (little-endian) against `b`.
    #[cfg_attr(all(target_arch = "wasm32", target_feature = "relaxed-simd"), allow(dead_code))]
    pub(crate) fn dot(self, a: i32, b: &[u8]) -> i32 {
        self.lane(a.to_le_bytes(), b)
    }

    /// The form's result of the instruction on `a`, `b` (sixteen bytes each) plus `c`.
    #[cfg_attr(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")), allow(dead_code))]
    fn expect(self, a: &[u8; 16], b: &[u8; 16], c: [i32; 4]) -> [i32; 4] {
        std::array::from_fn(|l| c[l].wrapping_add(self.lane(a[4 * l..4 * l + 4].try_into().expect("4"), &b[4 * l..])))
    }
}

/// [`set_dot4`]'s setting: 0 none (the engine's), 1 off, 2 `Unsigned`, 3 `Signed`.
static FORCED: AtomicU8 = AtomicU8::new(0);

/// Turns the four-byte path off (`Some(None)`), on in a given form (`Some(Some(form))`: off the
/// relaxed SIMD module its sums are computed in plain integers, slowly, for tests that compare
/// the paths; in that module a form other than the engine's is ignored), or back to the default
/// (`None`), for every thread from the next kernel on. Weights already packed keep their layout,
/// and the GEMM follows it.
pub fn set_dot4(setting: Option<Option<Dot4>>) {
    let v = match setting {
        None => 0,
        Some(None) => 1,
        Some(Some(Dot4::Unsigned)) => 2,
        Some(Some(Dot4::Signed)) => 3,
    };
    FORCED.store(v, Ordering::Relaxed);
}

/// The exact form of this engine's four-byte dot product, tried once (see the module's note):
/// `None` where the module was built without relaxed SIMD or the engine's result is neither
/// (or [`set_dot4`] says otherwise).
pub fn mode() -> Option<Dot4> {
    match FORCED.load(Ordering::Relaxed) {
        1 => return None,
        2 if !cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")) => return Some(Dot4::Unsigned),
        3 if !cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")) => return Some(Dot4::Signed),
        _ => {}
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        static MODE: std::sync::OnceLock<Option<Dot4>> = std::sync::OnceLock::new();
        *MODE.get_or_init(probe)
    }
    #[cfg(target_arch = "x86_64")]
    {
        // Natively: `vpdpbusd` (AVX-VNNI) is the unsigned form, exactly (GEMM only).
        vnni().then_some(Dot4::Unsigned)
    }
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "relaxed-simd"))))]
    {
        None
    }
}

/// Whether the native GEMM takes the four-byte path on its own: x86-64 with AVX-VNNI, the AVX2
/// path in use ([`use_avx2`](crate::ops::quant::simd::use_avx2): `QPLAY_NO_AVX2` turns both
/// off), and `QPLAY_NO_VNNI` unset (or `0`).
#[cfg(target_arch = "x86_64")]
pub fn vnni() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    crate::ops::quant::simd::use_avx2()
        && *ON.get_or_init(|| {
            let off = std::env::var("QPLAY_NO_VNNI").is_ok_and(|v| !v.is_empty() && v != "0");
            !off && std::arch::is_x86_feature_detected!("avxvnni")
        })
}

/// Whether the 3×3 depthwise kernel takes the four-byte path: as the GEMM ([`mode`]) in the
/// relaxed SIMD module and natively with AVX-VNNI; elsewhere only when [`set_dot4`] forces a form
/// (its sums then in plain integers, for tests).
pub(crate) fn depthwise_mode() -> Option<Dot4> {
    mode()
}

/// Runs the instruction on bytes that tell the forms apart: top bits set in `b` (unsigned or
/// signed), pairs whose `i16` sum would saturate (−128·255·2, 2·(−128)·(−128)), mixed signs.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
fn probe() -> Option<Dot4> {
    use core::arch::wasm32::*;
    const CASES: [([u8; 16], [u8; 16]); 3] = [
        ([0x80; 16], [0xff; 16]),
        ([0x80, 0x80, 0x80, 0x80, 0x7f, 0x7f, 0x7f, 0x7f, 0x80, 1, 0xff, 3, 5, 0x81, 0x7f, 0xfe], [0x80; 16]),
        (
            [3, 0xfd, 0x40, 0x7f, 0x80, 0x11, 0x22, 0xee, 0x01, 0x02, 0x03, 0x04, 0xf0, 0x0f, 0x99, 0x66],
            [0xc8, 0x07, 0xff, 0x81, 0x7f, 0x00, 0x90, 0x33, 0xfe, 0xaa, 0x55, 0x01, 0x80, 0x80, 0x10, 0xe0],
        ),
    ];
    let c = [7, -9, 1 << 20, -(1 << 20)];
    let got: Vec<[i32; 4]> = CASES
        .iter()
        .map(|(a, b)| {
            // black_box: the engine's result, not a constant the compiler folded.
            let (a, b, cv) = std::hint::black_box((*a, *b, c));
            // SAFETY: sixteen readable bytes each; v128 loads need no alignment.
            let r = unsafe {
                let av = v128_load(a.as_ptr().cast());
                let bv = v128_load(b.as_ptr().cast());
                let cv = v128_load(cv.as_ptr().cast());
                i32x4_relaxed_dot_i8x16_i7x16_add(av, bv, cv)
            };
            let mut out = [0i32; 4];
            // SAFETY: four writable i32.
            unsafe { v128_store(out.as_mut_ptr().cast(), r) };
            out
        })
        .collect();
    [Dot4::Unsigned, Dot4::Signed]
        .into_iter()
        .find(|m| CASES.iter().zip(&got).all(|((a, b), g)| m.expect(a, b, c) == *g))
}

/// Packs `A` (`m × k` int8 at `at(i, j)`) as `MR`-row panels of `k.div_ceil(4)` entries, each
/// `MR` little-endian `i32` of four consecutive `k` (zero past `k`).
pub(super) fn pack_a(m: usize, k: usize, at: impl Fn(usize, usize) -> i8) -> Vec<i32> {
    let kq = k.div_ceil(4);
    let mut data = vec![0i32; m.div_ceil(MR) * kq * MR];
    for i in 0..m {
        let (panel, r) = (i / MR, i % MR);
        let dst = &mut data[panel * kq * MR..][..kq * MR];
        for q in 0..kq {
            let b = std::array::from_fn(|t| if 4 * q + t < k { at(i, 4 * q + t) as u8 } else { 0 });
            dst[q * MR + r] = i32::from_le_bytes(b);
        }
    }
    data
}

/// [`qgemm_block`](super::qgemm_block) on four-byte dot products in `form` (`a` packed by
/// [`pack_a`]): the same sums, written through the same epilogue.
#[allow(clippy::too_many_arguments)]
pub(super) fn block<T: Widen>(
    form: Dot4,
    a: &PackedA,
    d: &[T],
    b: &QMat<'_>,
    p: &Params<'_>,
    rows: Range<usize>,
    cols: Range<usize>,
    out: &mut [Out<'_>],
) {
    let (k, n) = (a.k, cols.len());
    if rows.is_empty() || n == 0 {
        return;
    }
    let kq = k.div_ceil(4);
    let (flip, shift) = (form.flip(T::SIGNED), form.shift(T::SIGNED));
    // B's zero-point in the flipped codes.
    let zb_each: Vec<i32>;
    let zb = match p.zb {
        PerIndex::All(z) => PerIndex::All(z + shift),
        PerIndex::Each(v) => {
            zb_each = v.iter().map(|z| z + shift).collect();
            PerIndex::Each(&zb_each[..])
        }
    };
    let p = Params { zb, ..*p };
    let need_col_sums = !matches!(p.za, PerIndex::All(0));
    let nc = ((B_CHUNK_BYTES / (kq.max(1) * 4 * NR)).max(1) * NR).min(n.div_ceil(NR) * NR);
    // Reused buffers, written before they are read (see `Scratch`).
    Scratch::with(|s| {
        let bp = at_least(&mut s.b8, nc * kq * 4);
        let col_sums = at_least(&mut s.col_sums, nc);
        let sums = at_least(&mut s.sums, MR * nc);
        let panels = rows.start / MR..rows.end.div_ceil(MR);
        for j0 in cols.clone().step_by(nc) {
            let ncols = nc.min(cols.end - j0);
            pack_b(d, b, j0, ncols, kq, flip, bp);
            if need_col_sums {
                for (c, s) in col_sums.iter_mut().enumerate().take(ncols) {
                    *s = (0..k).map(|i| d[i * b.rs + (j0 + c) * b.cs].widen() as i32 + shift).sum();
                }
            }
            for panel in panels.clone() {
                let ap = &a.data[panel * kq * MR..][..kq * MR];
                panel_sums(form, ap, bp, kq, ncols.div_ceil(NR), sums, nc);
                let i0 = panel * MR;
                store_rows(sums, nc, a, &p, &mut out[i0 - rows.start..], i0, j0, j0 - cols.start, col_sums, ncols);
            }
        }
    })
}

/// Packs columns `j0 .. j0 + ncols` of `B` into `NR`-column panels: for each quad `q` of rows,
/// `4·NR` bytes, column `c`'s `b[4q..4q+4][c]` at `4c` (flipped by `flip`; zero past `k`).
fn pack_b<T: Widen>(d: &[T], b: &QMat<'_>, j0: usize, ncols: usize, kq: usize, flip: u8, out: &mut [u8]) {
    let k = b.rows;
    let panels = ncols.div_ceil(NR);
    let out = &mut out[..panels * kq * 4 * NR];
    let byte = |v: T| (v.widen() as u8) ^ flip;
    let pstride = kq * 4 * NR;
    // Contiguous rows: pairs of full panels (sixteen columns) four rows at a time, each row
    // read front to back (a few streams the prefetcher follows, where a panel at a time would
    // touch every row of B per panel), transposed into quads in registers.
    let pairs = if b.cs == 1 { ncols / 16 } else { 0 };
    if pairs > 0 {
        // SAFETY: `T` is one byte (u8 or i8: `Widen` is implemented for those only), so `d`
        // reads as bytes.
        let db = unsafe { std::slice::from_raw_parts(d.as_ptr().cast::<u8>(), d.len()) };
        // Rows past k: zero after the flip.
        let pad = vec![flip; 16 * pairs];
        for q in 0..kq {
            let rows: [&[u8]; 4] = std::array::from_fn(|t| {
                let i = 4 * q + t;
                if i < k {
                    &db[i * b.rs + j0..][..16 * pairs]
                } else {
                    &pad[..]
                }
            });
            for p in 0..pairs {
                let r = rows.map(|row| &row[16 * p..][..16]);
                let (lo, hi) = out[2 * p * pstride..].split_at_mut(pstride);
                quads16_into(r, flip, &mut lo[q * 4 * NR..][..4 * NR], &mut hi[q * 4 * NR..][..4 * NR]);
            }
        }
    }
    for (panel, dst) in out.chunks_exact_mut(pstride).enumerate().skip(2 * pairs) {
        let col0 = j0 + panel * NR;
        let jn = NR.min(ncols - panel * NR);
        if jn == NR && b.cs == 1 {
            // Contiguous rows, full panel: four rows of eight at a time (rows past k are zero).
            for (q, o) in dst.chunks_exact_mut(4 * NR).enumerate() {
                for t in 0..4 {
                    let i = 4 * q + t;
                    if i < k {
                        let row: &[T; NR] = d[i * b.rs + col0..][..NR].try_into().expect("NR elements");
                        for c in 0..NR {
                            o[4 * c + t] = byte(row[c]);
                        }
                    } else {
                        for c in 0..NR {
                            o[4 * c + t] = 0;
                        }
                    }
                }
            }
            continue;
        }
        dst.fill(0);
        for c in 0..jn {
            let base = (col0 + c) * b.cs;
            if b.rs == 1 {
                // A contiguous column (a transposed B): four bytes per quad.
                let col = &d[base..base + k];
                for (q, four) in col.chunks(4).enumerate() {
                    for (t, &v) in four.iter().enumerate() {
                        dst[q * 4 * NR + 4 * c + t] = byte(v);
                    }
                }
                continue;
            }
            for i in 0..k {
                dst[(i / 4) * 4 * NR + 4 * c + i % 4] = byte(d[i * b.rs + base]);
            }
        }
    }
}

/// Sixteen columns of four rows as sixteen quads, four to a register (SIMD128).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn quads16(
    a: core::arch::wasm32::v128,
    b: core::arch::wasm32::v128,
    c: core::arch::wasm32::v128,
    d: core::arch::wasm32::v128,
) -> [core::arch::wasm32::v128; 4] {
    use core::arch::wasm32::*;
    let ab_lo = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(a, b);
    let ab_hi = i8x16_shuffle::<8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31>(a, b);
    let cd_lo = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(c, d);
    let cd_hi = i8x16_shuffle::<8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31>(c, d);
    [
        i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(ab_lo, cd_lo),
        i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(ab_lo, cd_lo),
        i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(ab_hi, cd_hi),
        i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(ab_hi, cd_hi),
    ]
}

/// Sixteen columns of four rows as sixteen quads, four to a register (SSE2).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn quads16(
    a: std::arch::x86_64::__m128i,
    b: std::arch::x86_64::__m128i,
    c: std::arch::x86_64::__m128i,
    d: std::arch::x86_64::__m128i,
) -> [std::arch::x86_64::__m128i; 4] {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86-64; register operations only.
    unsafe {
        let (ab_lo, ab_hi) = (_mm_unpacklo_epi8(a, b), _mm_unpackhi_epi8(a, b));
        let (cd_lo, cd_hi) = (_mm_unpacklo_epi8(c, d), _mm_unpackhi_epi8(c, d));
        [
            _mm_unpacklo_epi16(ab_lo, cd_lo),
            _mm_unpackhi_epi16(ab_lo, cd_lo),
            _mm_unpacklo_epi16(ab_hi, cd_hi),
            _mm_unpackhi_epi16(ab_hi, cd_hi),
        ]
    }
}

/// The quads of columns `c … c + 15` of four rows, each byte XOR `flip` (SIMD128).
///
/// # Safety
/// Each row has sixteen readable bytes at `c`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub(crate) unsafe fn column_quads(rows: [&[u8]; 4], c: usize, flip: u8) -> [core::arch::wasm32::v128; 4] {
    use core::arch::wasm32::*;
    let f = u8x16_splat(flip);
    // SAFETY: the caller's sixteen bytes at c of each row; v128 loads need no alignment.
    let ld = |r: &[u8]| unsafe { v128_xor(v128_load(r.as_ptr().add(c).cast()), f) };
    quads16(ld(rows[0]), ld(rows[1]), ld(rows[2]), ld(rows[3]))
}

/// The quads of columns `c … c + 15` of four rows, each byte XOR `flip` (SSE2).
///
/// # Safety
/// Each row has sixteen readable bytes at `c`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn column_quads(rows: [&[u8]; 4], c: usize, flip: u8) -> [std::arch::x86_64::__m128i; 4] {
    use std::arch::x86_64::*;
    let f = _mm_set1_epi8(flip as i8);
    // SAFETY: the caller's sixteen bytes at c of each row; unaligned loads.
    let ld = |r: &[u8]| unsafe { _mm_xor_si128(_mm_loadu_si128(r.as_ptr().add(c).cast()), f) };
    quads16(ld(rows[0]), ld(rows[1]), ld(rows[2]), ld(rows[3]))
}

/// The quads of sixteen columns of four rows (each byte XOR `flip`): columns 0–7 into `lo`,
/// 8–15 into `hi` (32 bytes each).
#[inline(always)]
fn quads16_into(rows: [&[u8]; 4], flip: u8, lo: &mut [u8], hi: &mut [u8]) {
    let (lo, hi) = (&mut lo[..32], &mut hi[..32]);
    let rows = rows.map(|r| &r[..16]);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of x86-64; sixteen readable bytes in each row (sliced above) and
    // 32 writable bytes in `lo` and `hi`; unaligned loads and stores.
    unsafe {
        use std::arch::x86_64::*;
        let [p0, p1, p2, p3] = column_quads(rows, 0, flip);
        _mm_storeu_si128(lo.as_mut_ptr().cast(), p0);
        _mm_storeu_si128(lo.as_mut_ptr().add(16).cast(), p1);
        _mm_storeu_si128(hi.as_mut_ptr().cast(), p2);
        _mm_storeu_si128(hi.as_mut_ptr().add(16).cast(), p3);
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    // SAFETY: as above; v128 loads and stores need no alignment.
    unsafe {
        use core::arch::wasm32::*;
        let [p0, p1, p2, p3] = column_quads(rows, 0, flip);
        v128_store(lo.as_mut_ptr().cast(), p0);
        v128_store(lo.as_mut_ptr().add(16).cast(), p1);
        v128_store(hi.as_mut_ptr().cast(), p2);
        v128_store(hi.as_mut_ptr().add(16).cast(), p3);
    }
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    for c in 0..16 {
        let o = if c < 8 { &mut lo[4 * c..][..4] } else { &mut hi[4 * (c - 8)..][..4] };
        o.copy_from_slice(&[rows[0][c] ^ flip, rows[1][c] ^ flip, rows[2][c] ^ flip, rows[3][c] ^ flip]);
    }
}

/// The integer sums of one `A` panel against the first `panels` packed `B` panels, stored at
/// `sums[r·ld + c]`.
fn panel_sums(form: Dot4, ap: &[i32], bp: &[u8], kq: usize, panels: usize, sums: &mut [i32], ld: usize) {
    #[cfg(target_arch = "x86_64")]
    if form == Dot4::Unsigned && vnni() {
        // SAFETY: `vnni` is true only where the CPU has AVX2 and AVX-VNNI.
        return unsafe { panel_sums_vnni(ap, bp, kq, panels, sums, ld) };
    }
    for (jb, bpanel) in bp.chunks_exact(kq * 4 * NR).take(panels).enumerate() {
        micro_kernel(form, ap, bpanel, &mut sums[jb * NR..], ld);
    }
}

/// [`panel_sums`] on `vpdpbusd` (AVX-VNNI, 256 bits: one `B` panel's eight columns of a quad in
/// one register), two `B` panels at a time so that each broadcast quad of `A` feeds two
/// instructions; the same sums as the unsigned form's.
///
/// # Safety
/// The CPU must have AVX2 and AVX-VNNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn panel_sums_vnni(ap: &[i32], bp: &[u8], kq: usize, panels: usize, sums: &mut [i32], ld: usize) {
    use std::arch::x86_64::*;
    let pstride = kq * 4 * NR;
    assert!(ap.len() >= kq * MR && bp.len() >= panels * pstride, "panel_sums_vnni reads past its panels");
    assert!(panels == 0 || sums.len() >= (MR - 1) * ld + panels * NR, "panel_sums_vnni writes past its sums");
    let (pa, pb, ps) = (ap.as_ptr(), bp.as_ptr(), sums.as_mut_ptr());
    let mut jb = 0;
    while jb < panels {
        let two = jb + 1 < panels;
        let (b0, b1) = (pb.add(jb * pstride), pb.add((jb + usize::from(two)) * pstride));
        let mut acc = [[_mm256_setzero_si256(); 2]; MR];
        for q in 0..kq {
            // SAFETY (the whole loop): reads within the asserted panel lengths.
            let v0 = _mm256_loadu_si256(b0.add(32 * q).cast());
            let v1 = _mm256_loadu_si256(b1.add(32 * q).cast());
            for (r, a) in acc.iter_mut().enumerate() {
                let w = _mm256_set1_epi32(*pa.add(q * MR + r));
                a[0] = _mm256_dpbusd_avx_epi32(a[0], v0, w);
                a[1] = _mm256_dpbusd_avx_epi32(a[1], v1, w);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            _mm256_storeu_si256(ps.add(r * ld + jb * NR).cast(), a[0]);
            if two {
                _mm256_storeu_si256(ps.add(r * ld + (jb + 1) * NR).cast(), a[1]);
            }
        }
        jb += if two { 2 } else { 1 };
    }
}

/// The `MR × NR` tile for one `A` panel and one `B` panel, on the relaxed SIMD instruction
/// (whose form [`mode`] checked).
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
#[inline(always)]
fn micro_kernel(_form: Dot4, ap: &[i32], bp: &[u8], out: &mut [i32], ld: usize) {
    use core::arch::wasm32::*;
    let mut acc = [[i32x4_splat(0); 2]; MR];
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(4 * NR)) {
        // SAFETY: `b` has 4·NR = 32 readable bytes; v128 loads need no alignment.
        let (b0, b1) = unsafe { (v128_load(b.as_ptr().cast()), v128_load(b.as_ptr().add(16).cast())) };
        for r in 0..MR {
            let av = i32x4_splat(a[r]);
            acc[r][0] = i32x4_relaxed_dot_i8x16_i7x16_add(av, b0, acc[r][0]);
            acc[r][1] = i32x4_relaxed_dot_i8x16_i7x16_add(av, b1, acc[r][1]);
        }
    }
    for (r, a) in acc.iter().enumerate() {
        let o = &mut out[r * ld..r * ld + NR];
        // SAFETY: eight writable i32.
        unsafe {
            v128_store(o.as_mut_ptr().cast(), a[0]);
            v128_store(o.as_mut_ptr().add(4).cast(), a[1]);
        }
    }
}

/// The same tile in plain integers, `form`'s arithmetic lane by lane (other targets: the
/// tests of the packing and the zero-point flips).
#[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
fn micro_kernel(form: Dot4, ap: &[i32], bp: &[u8], out: &mut [i32], ld: usize) {
    let mut acc = [[0i32; NR]; MR];
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(4 * NR)) {
        for r in 0..MR {
            let ab = a[r].to_le_bytes();
            for (c, s) in acc[r].iter_mut().enumerate() {
                *s = s.wrapping_add(form.lane(ab, &b[4 * c..]));
            }
        }
    }
    for (r, a) in acc.iter().enumerate() {
        out[r * ld..r * ld + NR].copy_from_slice(a);
    }
}
