//! Integer matrix multiply: `C = (A − za)·(B − zb)` with 8-bit operands (uint8 or int8, each
//! with its own zero-points) and exact `i32` accumulation, then an epilogue that adds an int32
//! bias and writes int32, float32 (scaled and clamped) or 8-bit (requantized: scaled, rounded
//! half to even, offset by the output zero-point and clamped).
//!
//! Layout follows the f32 [`sgemm`](crate::ops::nn::sgemm): `A` is packed once into panels of
//! [`MR`] rows whose entries are pairs of consecutive `k` (two `i16` in one `i32`), `B` is packed
//! per call in cache-sized column chunks into panels of [`NR`] columns, and a register-blocked
//! `MR × NR` micro-kernel runs [`I32x4::dot_add`] — `pmaddwd` on x86-64, `i32x4.dot_i16x8_s` on
//! wasm — eight multiply-accumulates per instruction.
//!
//! Zero-points never enter the inner loop: `Σ (a − za)(b − zb) = Σ ab − za·Σb − zb·Σa + K·za·zb`,
//! with the row sums of `A` stored in the packing and the column sums of `B` computed while
//! packing it. Padding rows/columns are zero and drop out of every sum.
//!
//! Limits: `K ≤` [`MAX_K`] so that no sum can overflow `i32` (|a·b| ≤ 255², pairs ≤ 2·255²).
//!
//! With the `threads` feature C is cut into blocks ([`Grid`]: column bands, each packing its own
//! columns of `B`, then row blocks of whole `A` panels), one task each; every element's sum is
//! the same exact integer whatever the cut.

use super::simd::{interleave_widen8, pair, I32x4};
use crate::ops::OpError;
use crate::parallel::Grid;
pub use crate::quant::round_half_even;
use std::ops::Range;

mod out;
mod quads;
#[cfg(test)]
use out::clamp_f32;
pub use out::{requant, requant_i32, Out};
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
pub(crate) use quads::column_quads;
pub(crate) use quads::depthwise_mode as dw_dot4_mode;
#[cfg(target_arch = "x86_64")]
pub use quads::vnni;
pub use quads::{mode as dot4_mode, set_dot4, Dot4};

/// Rows per micro-tile (panels of packed `A`).
pub const MR: usize = 4;
/// Columns per micro-tile (panels of packed `B`): two `I32x4` accumulators per row.
pub const NR: usize = 8;
/// Longest reduction the `i32` accumulator is guaranteed to hold: 16384 · 2·255² < 2³¹ · 1.
pub const MAX_K: usize = 16384;
/// Packed `B` bytes per column chunk: small enough to stay in L2 while every `A` panel passes.
const B_CHUNK_BYTES: usize = 192 * 1024;

/// 8-bit matrix data: uint8 or int8.
#[derive(Clone, Copy, Debug)]
pub enum Bytes<'a> {
    /// Unsigned.
    U8(&'a [u8]),
    /// Signed.
    I8(&'a [i8]),
}

impl Bytes<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Bytes::U8(d) => d.len(),
            Bytes::I8(d) => d.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A strided `rows × cols` view of 8-bit data: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy, Debug)]
pub struct QMat<'a> {
    data: Bytes<'a>,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> QMat<'a> {
    /// A row-major `rows × cols` view of the start of `data` (which must be long enough).
    pub fn row_major(data: Bytes<'a>, rows: usize, cols: usize) -> Result<QMat<'a>, OpError> {
        QMat::new(data, rows, cols, cols, 1)
    }

    /// A strided view, checked to stay inside `data`.
    pub fn new(data: Bytes<'a>, rows: usize, cols: usize, rs: usize, cs: usize) -> Result<QMat<'a>, OpError> {
        if rows > 0 && cols > 0 {
            let last = (rows - 1)
                .checked_mul(rs)
                .and_then(|r| (cols - 1).checked_mul(cs).and_then(|c| r.checked_add(c)))
                .ok_or_else(|| OpError::internal("matrix view overflows"))?;
            if last >= data.len() {
                return Err(OpError::internal(format!(
                    "a {rows}×{cols} matrix view needs {} elements, the data has {}",
                    last + 1,
                    data.len()
                )));
            }
        }
        Ok(QMat { data, rows, cols, rs, cs })
    }

    /// The transposed view (no copy).
    pub fn t(self) -> QMat<'a> {
        QMat { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// An 8-bit element type: widening to `i16`, and a slice of it as [`Bytes`].
pub trait Widen: Copy + Send + Sync + 'static {
    /// Whether the type is signed (sign- or zero-extension).
    const SIGNED: bool;
    /// The type's codes, lowest and highest.
    const RANGE: (i32, i32);
    /// The value as `i16`.
    fn widen(self) -> i16;
    /// The slice as [`Bytes`].
    fn bytes(s: &[Self]) -> Bytes<'_>;
    /// The element with value `v` (which must be in range; wraps otherwise).
    fn from_i32(v: i32) -> Self;
}
impl Widen for u8 {
    const SIGNED: bool = false;
    const RANGE: (i32, i32) = (0, 255);
    #[inline(always)]
    fn widen(self) -> i16 {
        self as i16
    }
    fn bytes(s: &[u8]) -> Bytes<'_> {
        Bytes::U8(s)
    }
    fn from_i32(v: i32) -> u8 {
        v as u8
    }
}
impl Widen for i8 {
    const SIGNED: bool = true;
    const RANGE: (i32, i32) = (-128, 127);
    #[inline(always)]
    fn widen(self) -> i16 {
        self as i16
    }
    fn bytes(s: &[i8]) -> Bytes<'_> {
        Bytes::I8(s)
    }
    fn from_i32(v: i32) -> i8 {
        v as i8
    }
}

/// `A` packed once (typically constant weights): `MR`-row panels, each `kp` entries of `MR`
/// pairs, plus the row sums for zero-point corrections.
#[derive(Debug, Clone)]
pub struct PackedA {
    m: usize,
    k: usize,
    data: Vec<i32>,
    row_sums: Vec<i32>,
    /// `Σ_k |a[i][k]|` per row: with `|b| ≤ 255`, a bound on the row's sums.
    row_abs: Vec<i32>,
    /// `Some`: `data` holds quads of int8 for the four-byte dot product of this form
    /// ([`quads`]), else pairs of `i16`.
    quads: Option<Dot4>,
}

impl PackedA {
    /// Packs `a` (`M × K`): for the four-byte dot product where this engine has an exact one
    /// ([`dot4_mode`]) and `a` is int8, else in `i16` pairs.
    pub fn new(a: &QMat<'_>) -> Result<PackedA, OpError> {
        Self::with_dot4(a, dot4_mode())
    }

    /// [`PackedA::new`] for the four-byte dot product of `form` (int8 `a` only; `None`, or
    /// uint8 `a`: `i16` pairs). Other targets than the relaxed SIMD wasm module compute the
    /// form's sums in plain integers: for tests.
    pub fn with_dot4(a: &QMat<'_>, form: Option<Dot4>) -> Result<PackedA, OpError> {
        match a.data {
            Bytes::U8(d) => Self::pack(d, a, None),
            Bytes::I8(d) => Self::pack(d, a, form),
        }
    }

    fn pack<T: Widen>(d: &[T], a: &QMat<'_>, quads: Option<Dot4>) -> Result<PackedA, OpError> {
        let (m, k) = (a.rows, a.cols);
        if k > MAX_K {
            return Err(OpError::limit(format!(
                "the reduction length {k} exceeds {MAX_K}, the most an int32 accumulator is guaranteed to hold"
            )));
        }
        let at = |i: usize, j: usize| d[i * a.rs + j * a.cs].widen();
        let row_sums: Vec<i32> = (0..m).map(|i| (0..k).map(|j| at(i, j) as i32).sum()).collect();
        let row_abs: Vec<i32> = (0..m).map(|i| (0..k).map(|j| (at(i, j) as i32).abs()).sum()).collect();
        if quads.is_some() {
            let data = quads::pack_a(m, k, |i, j| at(i, j) as i8);
            return Ok(PackedA { m, k, data, row_sums, row_abs, quads });
        }
        let kp = k.div_ceil(2);
        let panels = m.div_ceil(MR);
        let mut data = vec![0i32; panels * kp * MR];
        for i in 0..m {
            let (panel, r) = (i / MR, i % MR);
            let dst = &mut data[panel * kp * MR..][..kp * MR];
            for p in 0..kp {
                let lo = at(i, 2 * p);
                let hi = if 2 * p + 1 < k { at(i, 2 * p + 1) } else { 0 };
                dst[p * MR + r] = pair(lo, hi);
            }
        }
        Ok(PackedA { m, k, data, row_sums, row_abs, quads: None })
    }

    /// Rows (`M`).
    pub fn rows(&self) -> usize {
        self.m
    }

    /// Reduction length (`K`).
    pub fn depth(&self) -> usize {
        self.k
    }
}

/// One value for all, or one per row / column.
#[derive(Debug, Clone, Copy)]
pub enum PerIndex<'a, T> {
    /// The same for every index.
    All(T),
    /// One per index.
    Each(&'a [T]),
}

impl<T: Copy> PerIndex<'_, T> {
    #[inline(always)]
    fn at(&self, i: usize) -> T {
        match self {
            PerIndex::All(v) => *v,
            PerIndex::Each(v) => v[i],
        }
    }

    fn check(&self, n: usize, what: &str) -> Result<(), OpError> {
        match self {
            PerIndex::Each(v) if v.len() != n => {
                Err(OpError::internal(format!("{what} has {} values, expected 1 or {n}", v.len())))
            }
            _ => Ok(()),
        }
    }
}

/// Everything besides the operands: zero-points, bias, scale and the destination.
#[derive(Debug)]
pub struct Epilogue<'a> {
    /// Zero-point of `A`, per tensor or per row.
    pub za: PerIndex<'a, i32>,
    /// Zero-point of `B`, per tensor or per column.
    pub zb: PerIndex<'a, i32>,
    /// Int32 bias added per row (a convolution's output channel).
    pub bias: Option<&'a [i32]>,
    /// Scale applied to the integer sum for F32/U8/I8 outputs: per row (`true`) or per column.
    pub scale: &'a [f32],
    /// Whether `scale` is indexed by row.
    pub scale_per_row: bool,
    /// An upper bound per row on 8-bit output codes (a fused per-channel `Min`), or none.
    pub row_max: Option<&'a [i32]>,
    /// Destination.
    pub out: Out<'a>,
    /// Row stride of the destination.
    pub ldc: usize,
}

/// `C = (A − za)(B − zb) [+ bias]`, written through the epilogue. Errors on mismatched sizes.
pub fn qgemm(a: &PackedA, b: &QMat<'_>, ep: Epilogue<'_>) -> Result<(), OpError> {
    match b.data {
        Bytes::U8(d) => qgemm_typed(a, d, b, ep),
        Bytes::I8(d) => qgemm_typed(a, d, b, ep),
    }
}

fn qgemm_typed<T: Widen>(a: &PackedA, d: &[T], b: &QMat<'_>, ep: Epilogue<'_>) -> Result<(), OpError> {
    let (m, n) = (a.m, b.cols);
    let Epilogue { za, zb, bias, scale, scale_per_row, row_max, out, ldc } = ep;
    let params = Params { za, zb, bias, scale, scale_per_row, row_max };
    params.check(a, b, !matches!(out, Out::I32(_)))?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if ldc < n || (m - 1).checked_mul(ldc).and_then(|v| v.checked_add(n)).is_none_or(|need| need > out.len()) {
        return Err(OpError::internal(format!("the output is too small for {m}×{n} with row stride {ldc}")));
    }
    let k = a.k;
    // Blocks of C, one task each; every element's sum is the same whatever the cut.
    let grid = Grid::new(m, n, m * n * k, (MR, MIN_BLOCK_ROWS), (NR, MIN_BAND_COLS));
    let mut blocks = out.blocks(&grid, ldc);
    crate::parallel::for_each_mut(&mut blocks, |_, blk| {
        qgemm_block(a, d, b, &params, blk.rows.clone(), blk.cols.clone(), &mut blk.out)
    });
    Ok(())
}

/// Fewest columns of C per task (each task packs its own columns of B).
const MIN_BAND_COLS: usize = 128;
/// Fewest rows of C per task when the rows are split (each task packs all of B).
const MIN_BLOCK_ROWS: usize = 16;

/// The epilogue without its destination ([`Epilogue`]'s other fields), shared read-only by
/// the tasks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params<'a> {
    pub(crate) za: PerIndex<'a, i32>,
    pub(crate) zb: PerIndex<'a, i32>,
    pub(crate) bias: Option<&'a [i32]>,
    pub(crate) scale: &'a [f32],
    pub(crate) scale_per_row: bool,
    pub(crate) row_max: Option<&'a [i32]>,
}

impl Params<'_> {
    /// Checks the sizes against `A` (`M × K`) and `B` (`K × N`); `scaled`: an output other
    /// than int32.
    fn check(&self, a: &PackedA, b: &QMat<'_>, scaled: bool) -> Result<(), OpError> {
        let (m, k, n) = (a.m, a.k, b.cols);
        if b.rows != k {
            return Err(OpError::internal(format!("inner dimensions differ: A is {m}×{k}, B is {}×{n}", b.rows)));
        }
        self.za.check(m, "the zero-point of A")?;
        self.zb.check(n, "the zero-point of B")?;
        if let Some(bias) = self.bias {
            if bias.len() != m {
                return Err(OpError::internal(format!("bias has {} values, expected {m}", bias.len())));
            }
        }
        if let Some(cap) = self.row_max {
            if cap.len() != m || !scaled {
                return Err(OpError::internal(format!("{} row bounds for {m} rows of 8-bit codes", cap.len())));
            }
        }
        if scaled {
            let want = if self.scale_per_row { m } else { n };
            if self.scale.len() != want && self.scale.len() != 1 {
                return Err(OpError::internal(format!("scale has {} values, expected 1 or {want}", self.scale.len())));
            }
        }
        Ok(())
    }
}

/// [`qgemm`] on the calling thread with one destination per row of C: `rows[i]` receives row
/// `i` (its element 0 is column 0), so a task can own some columns of a larger matrix. Errors
/// on mismatched sizes.
pub(crate) fn qgemm_rows(a: &PackedA, b: &QMat<'_>, p: &Params<'_>, rows: &mut [Out<'_>]) -> Result<(), OpError> {
    let (m, n) = (a.m, b.cols);
    p.check(a, b, rows.first().is_some_and(|o| !matches!(o, Out::I32(_))))?;
    if rows.len() < m || rows.iter().take(m).any(|r| r.len() < n) {
        return Err(OpError::internal(format!(
            "the {m}×{n} output has {} rows, or a row shorter than {n}",
            rows.len()
        )));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    match b.data {
        Bytes::U8(d) => qgemm_block(a, d, b, p, 0..m, 0..n, &mut rows[..m]),
        Bytes::I8(d) => qgemm_block(a, d, b, p, 0..m, 0..n, &mut rows[..m]),
    }
    Ok(())
}

/// The rows `rows` and columns `cols` of `C = (A − za)(B − zb) [+ bias]` on one thread,
/// written through `out` (one destination per row, indexed from `cols.start`).
fn qgemm_block<T: Widen>(
    a: &PackedA,
    d: &[T],
    b: &QMat<'_>,
    p: &Params<'_>,
    rows: Range<usize>,
    cols: Range<usize>,
    out: &mut [Out<'_>],
) {
    if let Some(form) = a.quads {
        return quads::block(form, a, d, b, p, rows, cols, out);
    }
    let k = a.k;
    let n = cols.len();
    if rows.is_empty() || n == 0 {
        return;
    }
    let kp = k.div_ceil(2);
    let need_col_sums = !matches!(p.za, PerIndex::All(0));
    // Column chunk: a multiple of NR whose packed panel set fits B_CHUNK_BYTES.
    let nc = ((B_CHUNK_BYTES / (kp.max(1) * 2 * 2 * NR)).max(1) * NR).min(n.div_ceil(NR) * NR);
    Scratch::with(|s| {
        let bp = at_least(&mut s.b16, nc * kp * 2);
        let col_sums = at_least(&mut s.col_sums, nc);
        // The sums of one A panel over the chunk's columns: the epilogue then runs along whole
        // rows, with its per-row constants loaded once per row instead of once per tile.
        let sums = at_least(&mut s.sums, MR * nc);
        // Row blocks start on panel boundaries (the grid aligns them to MR).
        let panels = rows.start / MR..rows.end.div_ceil(MR);
        for j0 in cols.clone().step_by(nc) {
            let ncols = nc.min(cols.end - j0);
            pack_b(d, b, j0, ncols, kp, bp, need_col_sums.then_some(&mut col_sums[..]));
            for panel in panels.clone() {
                let ap = &a.data[panel * kp * MR..][..kp * MR];
                panel_sums(ap, bp, kp, ncols.div_ceil(NR), sums, nc);
                let i0 = panel * MR;
                let dst = &mut out[i0 - rows.start..];
                store_rows(sums, nc, a, p, dst, i0, j0, j0 - cols.start, col_sums, ncols);
            }
        }
    })
}

/// Buffers a GEMM block reuses from call to call on its thread: packed `B` (pairs or quads),
/// its column sums and one `A` panel's sums. A block writes every element it reads (the
/// packing writes whole panels, the micro-kernel whole tiles), so the buffers are grown but
/// never cleared: allocating them zeroed cost a `memset` of up to 200 KB per call.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) b16: Vec<i16>,
    pub(super) b8: Vec<u8>,
    pub(super) col_sums: Vec<i32>,
    pub(super) sums: Vec<i32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = const {
        std::cell::RefCell::new(Scratch { b16: Vec::new(), b8: Vec::new(), col_sums: Vec::new(), sums: Vec::new() })
    };
}

impl Scratch {
    /// Runs `f` with this thread's buffers, taken out for the call (a nested call would get
    /// empty ones, never the same).
    pub(super) fn with<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
        let mut s = SCRATCH.with(|c| std::mem::take(&mut *c.borrow_mut()));
        let r = f(&mut s);
        SCRATCH.with(|c| *c.borrow_mut() = s);
        r
    }
}

/// The first `n` elements of `v`, grown with zeros where it is shorter (its other elements
/// are whatever an earlier call left).
pub(super) fn at_least<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::default());
    }
    &mut v[..n]
}

/// Packs columns `j0 .. j0 + ncols` of `B` into `NR`-column panels: for each pair `p` of rows,
/// 2·`NR` `i16` laid out as `(b[2p][j], b[2p+1][j])` for each column `j` of the panel.
fn pack_b<T: Widen>(
    d: &[T],
    b: &QMat<'_>,
    j0: usize,
    ncols: usize,
    kp: usize,
    out: &mut [i16],
    col_sums: Option<&mut [i32]>,
) {
    let k = b.rows;
    let panels = ncols.div_ceil(NR);
    let out = &mut out[..panels * kp * 2 * NR];
    for (panel, dst) in out.chunks_exact_mut(kp * 2 * NR).enumerate() {
        let jn = NR.min(ncols - panel * NR);
        if jn == NR && b.cs == 1 {
            // Contiguous rows, full panel: interleave two rows at a time (vectorises). Every
            // entry is written (an odd K's last pair with a zero), so nothing is cleared first.
            let col0 = j0 + panel * NR;
            for (p, o) in dst.chunks_exact_mut(2 * NR).enumerate() {
                let r0: &[T; NR] = d[2 * p * b.rs + col0..][..NR].try_into().expect("NR elements");
                if 2 * p + 1 < k {
                    let r1: &[T; NR] = d[(2 * p + 1) * b.rs + col0..][..NR].try_into().expect("NR elements");
                    interleave_widen8(r0, r1, o);
                } else {
                    for c in 0..NR {
                        o[2 * c] = r0[c].widen();
                        o[2 * c + 1] = 0;
                    }
                }
            }
            continue;
        }
        // Partial or strided panels: the missing columns (and an odd K's last row) stay zero.
        dst.fill(0);
        for i in 0..k {
            let row = i * b.rs;
            let (p, half) = (i / 2, i % 2);
            let o = &mut dst[p * 2 * NR + half..];
            let base = row + (j0 + panel * NR) * b.cs;
            for c in 0..jn {
                o[2 * c] = d[base + c * b.cs].widen();
            }
        }
    }
    if let Some(sums) = col_sums {
        for (c, s) in sums.iter_mut().enumerate().take(ncols) {
            *s = (0..k).map(|i| d[i * b.rs + (j0 + c) * b.cs].widen() as i32).sum();
        }
    }
}

/// The integer sums of one `A` panel against the first `panels` packed `B` panels, stored at
/// `sums[r·ld + c]`: the AVX2 kernel where [`use_avx2`](super::simd::use_avx2) says so, else one SSE2 micro-kernel
/// per `B` panel (the same exact sums).
fn panel_sums(ap: &[i32], bp: &[i16], kp: usize, panels: usize, sums: &mut [i32], ld: usize) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::use_avx2() {
        // SAFETY: `use_avx2` is true only where the CPU has AVX2.
        return unsafe { super::simd::avx2::qgemm_panels(ap, bp, kp, panels, sums, ld) };
    }
    for (jb, bpanel) in bp.chunks_exact(kp * 2 * NR).take(panels).enumerate() {
        micro_kernel(ap, bpanel, &mut sums[jb * NR..], ld);
    }
}

/// The `MR × NR` integer tile for one `A` panel and one `B` panel, stored at `out[r·ld + c]`.
#[inline(always)]
fn micro_kernel(ap: &[i32], bp: &[i16], out: &mut [i32], ld: usize) {
    let mut acc = [[I32x4::zero(); 2]; MR];
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(2 * NR)) {
        let (b0, b1) = b.split_at(NR);
        for r in 0..MR {
            acc[r][0] = acc[r][0].dot_add(a[r], b0);
            acc[r][1] = acc[r][1].dot_add(a[r], b1);
        }
    }
    // `rows` has NR columns of room past every panel start (the chunk is a multiple of NR).
    for (r, a) in acc.iter().enumerate() {
        let o = &mut out[r * ld..r * ld + NR];
        a[0].store(&mut o[..4]);
        a[1].store(&mut o[4..]);
    }
}

/// Writes the sums of rows `i0 .. i0 + MR` (held in `rows`, stride `nc`), columns
/// `j0 .. j0 + ncols`, through the epilogue: `out[r]` is row `i0 + r`'s destination, where
/// column `j0` is element `at`. The exact sum `Σ (a − za)(b − zb)` fits `i32` (see
/// [`MAX_K`]), so wrapping arithmetic on the partial terms gives it exactly; the bias is then
/// added with saturation.
#[allow(clippy::too_many_arguments)]
fn store_rows(
    rows: &[i32],
    nc: usize,
    a: &PackedA,
    ep: &Params<'_>,
    out: &mut [Out<'_>],
    i0: usize,
    j0: usize,
    at: usize,
    col_sums: &[i32],
    ncols: usize,
) {
    let k = a.k as i32;
    let za_zero = matches!(ep.za, PerIndex::All(0));
    for (r, dst) in out.iter_mut().enumerate().take(MR.min(a.m - i0)) {
        let i = i0 + r;
        let mut dst = dst.capped(ep.row_max.map(|m| m[i]));
        let vals = &rows[r * nc..r * nc + ncols];
        let b = ep.bias.map_or(0, |b| b[i]);
        // Fast path (weights' zero-point 0, activation zero-point per tensor, a bias far from
        // overflow, one scale per row): e + b = acc + (b − zb·Σa) exactly in wrapping i32.
        if let (true, PerIndex::All(zb), true) = (za_zero, ep.zb, ep.scale_per_row || ep.scale.len() == 1) {
            let s = if ep.scale.len() == 1 { ep.scale[0] } else { ep.scale[i] };
            // The sums are Σ a·b with |b| ≤ 255 (flipped codes on the four-byte path too), and
            // so is e = Σ a·(b − zb).
            let bound = a.row_abs[i] as u64 * 255;
            if b.unsigned_abs() < 1 << 30 {
                let add = b.wrapping_sub(zb.wrapping_mul(a.row_sums[i]));
                dst.store_run_within(at, vals, add, s, bound);
                continue;
            }
            // A bias far out (a channel whose weights all quantized to zero gets one near
            // ±2³¹): requantization is monotone in e + b, so where both ends of the row's range
            // give one code, every element has it.
            let r = bound.min(1 << 32) as i64;
            let ends = [b as i64 - r, b as i64 + r].map(|t| t.clamp(i32::MIN as i64, i32::MAX as i64));
            if let (Some(q0), Some(q1)) = (dst.code_of(ends[0], s), dst.code_of(ends[1], s)) {
                if q0 == q1 {
                    dst.fill_run(at, vals.len(), ends[0], s);
                    continue;
                }
            }
        }
        let zai = ep.za.at(i);
        let rs = a.row_sums[i];
        for (c, &v) in vals.iter().enumerate() {
            let j = j0 + c;
            let zbj = ep.zb.at(j);
            let mut e = v.wrapping_sub(zbj.wrapping_mul(rs)).wrapping_add(k.wrapping_mul(zai).wrapping_mul(zbj));
            if !za_zero {
                e = e.wrapping_sub(zai.wrapping_mul(col_sums[c]));
            }
            let s = if ep.scale.len() == 1 {
                ep.scale[0]
            } else if ep.scale_per_row {
                ep.scale[i]
            } else {
                ep.scale[j]
            };
            dst.put(at + c, e.saturating_add(b) as i64, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[u8], za: i32, b: &[i8], zb: i32, m: usize, k: usize, n: usize) -> Vec<i32> {
        let mut c = vec![0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|l| (a[i * k + l] as i32 - za) * (b[l * n + j] as i32 - zb)).sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_across_panel_edges_and_zero_points() {
        let mut seed = 7u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            (seed >> 24) as u8
        };
        for &(m, k, n) in &[(1, 1, 1), (5, 7, 9), (4, 16, 8), (13, 33, 70), (9, 600, 17)] {
            let a: Vec<u8> = (0..m * k).map(|_| rnd()).collect();
            let b: Vec<i8> = (0..k * n).map(|_| rnd() as i8).collect();
            for &(za, zb) in &[(0, 0), (131, -7), (255, 127)] {
                let pa = PackedA::new(&QMat::row_major(Bytes::U8(&a), m, k).unwrap()).unwrap();
                let bm = QMat::row_major(Bytes::I8(&b), k, n).unwrap();
                let mut out = vec![0i32; m * n];
                let ep = Epilogue {
                    za: PerIndex::All(za),
                    zb: PerIndex::All(zb),
                    bias: None,
                    scale: &[1.0],
                    scale_per_row: true,
                    row_max: None,
                    out: Out::I32(&mut out),
                    ldc: n,
                };
                qgemm(&pa, &bm, ep).unwrap();
                assert_eq!(out, naive(&a, za, &b, zb, m, k, n), "{m}×{k}×{n} za {za} zb {zb}");
            }
        }
    }

    #[test]
    fn four_byte_dot_products_give_the_pairs_sums_in_either_form() {
        // Both exact forms of relaxed SIMD's dot product (computed in plain integers here),
        // uint8 and int8 B (flipped where the form reads the other), zero-points of A and B,
        // per-column zero-points, k not a multiple of 4, a transposed (strided) B, ragged tiles
        // (B packed sixteen columns at a time, then a lone full panel, then a partial one),
        // and u8/i8 requantized outputs against the i16-pair path.
        let mut seed = 5u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            (seed >> 24) as u8
        };
        for &(m, k, n) in &[(1, 1, 1), (5, 7, 9), (4, 16, 8), (6, 10, 25), (13, 33, 70), (9, 600, 17), (8, 12, 6200)] {
            let a: Vec<i8> = (0..m * k).map(|_| rnd() as i8).collect();
            let bu: Vec<u8> = (0..k * n).map(|_| rnd()).collect();
            let bi: Vec<i8> = bu.iter().map(|&v| v as i8).collect();
            let zcols: Vec<i32> = (0..n as i32).map(|j| j % 7 - 3).collect();
            for form in [Dot4::Unsigned, Dot4::Signed] {
                let am = QMat::row_major(Bytes::I8(&a), m, k).unwrap();
                let (pq, pp) = (PackedA::with_dot4(&am, Some(form)).unwrap(), PackedA::with_dot4(&am, None).unwrap());
                assert_eq!(pq.quads, Some(form));
                for (za, zb) in [
                    (PerIndex::All(0), PerIndex::All(0)),
                    (PerIndex::All(-5), PerIndex::All(131)),
                    (PerIndex::All(0), PerIndex::Each(&zcols[..])),
                ] {
                    for bytes in [Bytes::U8(&bu), Bytes::I8(&bi)] {
                        let run = |pa: &PackedA, bm: QMat<'_>| {
                            let mut out = vec![0i32; m * n];
                            let ep = Epilogue {
                                za,
                                zb,
                                bias: None,
                                scale: &[1.0],
                                scale_per_row: true,
                                row_max: None,
                                out: Out::I32(&mut out),
                                ldc: n,
                            };
                            qgemm(pa, &bm, ep).unwrap();
                            out
                        };
                        let bm = QMat::row_major(bytes, k, n).unwrap();
                        let want = run(&pp, bm);
                        assert_eq!(run(&pq, bm), want, "{form:?} {m}×{k}×{n}");
                        // The same B stored transposed (column j contiguous).
                        let bt: Vec<u8> = (0..n * k).map(|t| bu[(t % k) * n + t / k]).collect();
                        let btm = match bytes {
                            Bytes::U8(_) => QMat::row_major(Bytes::U8(&bt), n, k).unwrap().t(),
                            Bytes::I8(_) => QMat::row_major(Bytes::I8(bytemuck_i8(&bt)), n, k).unwrap().t(),
                        };
                        assert_eq!(run(&pq, btm), want, "{form:?} {m}×{k}×{n} transposed");
                    }
                }
                let bm = QMat::row_major(Bytes::U8(&bu), k, n).unwrap();
                let scales: Vec<f32> = (0..m).map(|i| 0.0009 + i as f32 * 0.0007).collect();
                let q8 = |pa: &PackedA| {
                    let mut q = vec![0u8; m * n];
                    let out = Out::U8 { out: &mut q, zero_point: 9, lo: 0, hi: 255 };
                    let ep = Epilogue {
                        za: PerIndex::All(0),
                        zb: PerIndex::All(128),
                        bias: None,
                        scale: &scales,
                        scale_per_row: true,
                        row_max: None,
                        out,
                        ldc: n,
                    };
                    qgemm(pa, &bm, ep).unwrap();
                    q
                };
                assert_eq!(q8(&pq), q8(&pp), "{form:?} requantized");
            }
        }
    }

    fn bytemuck_i8(v: &[u8]) -> &[i8] {
        // SAFETY: u8 and i8 have the same size and alignment.
        unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), v.len()) }
    }

    #[test]
    fn scaled_outputs_match_the_scalar_rule_on_every_path() {
        // Whole tiles, ragged rows and columns, per-row and single scales, a bias beyond the
        // fast path's limit, a non-zero A zero-point (the general path), and a B wider than
        // one column chunk.
        let mut seed = 11u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            (seed >> 24) as u8
        };
        for &(m, k, n, za) in &[(8, 16, 64, 0), (7, 33, 70, 0), (5, 9, 13, 3), (4, 24, 6200, 0)] {
            let a: Vec<i8> = (0..m * k).map(|_| rnd() as i8).collect();
            let b: Vec<u8> = (0..k * n).map(|_| rnd()).collect();
            let bias: Vec<i32> = (0..m).map(|i| if i == 1 { (1 << 30) + 5 } else { (i as i32 - 3) * 997 }).collect();
            let scales: Vec<f32> = (0..m).map(|i| 0.0007 + i as f32 * 0.0011).collect();
            let pa = PackedA::new(&QMat::row_major(Bytes::I8(&a), m, k).unwrap()).unwrap();
            let bm = QMat::row_major(Bytes::U8(&b), k, n).unwrap();
            let zb = 131;
            let exact = |i: usize, j: usize| -> i64 {
                (0..k).map(|l| (a[i * k + l] as i64 - za as i64) * (b[l * n + j] as i64 - zb as i64)).sum::<i64>()
                    + bias[i] as i64
            };
            for single in [false, true] {
                let sc: &[f32] = if single { &scales[..1] } else { &scales };
                let s_of = |i: usize| if single { scales[0] } else { scales[i] };
                let ep = |out| Epilogue {
                    za: PerIndex::All(za),
                    zb: PerIndex::All(zb),
                    bias: Some(&bias),
                    scale: sc,
                    scale_per_row: true,
                    row_max: None,
                    out,
                    ldc: n,
                };
                let mut u = vec![0u8; m * n];
                qgemm(&pa, &bm, ep(Out::U8 { out: &mut u, zero_point: 7, lo: 3, hi: 250 })).unwrap();
                let mut q = vec![0i8; m * n];
                qgemm(&pa, &bm, ep(Out::I8 { out: &mut q, zero_point: -9, lo: -128, hi: 100 })).unwrap();
                let mut f = vec![0f32; m * n];
                qgemm(&pa, &bm, ep(Out::F32 { out: &mut f, lo: -50.0, hi: f32::INFINITY })).unwrap();
                for i in 0..m {
                    for j in 0..n {
                        let (e, s, at) = (exact(i, j), s_of(i), i * n + j);
                        assert_eq!(u[at] as i32, requant(e, s, 7, 3, 250), "u8 {m}×{k}×{n} ({i}, {j})");
                        assert_eq!(q[at] as i32, requant(e, s, -9, -128, 100), "i8 {m}×{k}×{n} ({i}, {j})");
                        assert_eq!(f[at], clamp_f32(e as i32 as f32 * s, -50.0, f32::INFINITY), "f32 ({i}, {j})");
                    }
                }
            }
        }
    }

    #[test]
    fn requantizes_half_to_even_and_clamps() {
        assert_eq!(requant(5, 0.5, 0, -128, 127), 2); // 2.5 → 2
        assert_eq!(requant(7, 0.5, 0, -128, 127), 4); // 3.5 → 4
        assert_eq!(requant(1000, 1.0, 10, 0, 255), 255);
        assert_eq!(requant(-1000, 1.0, 10, 0, 255), 0);
        assert_eq!(requant(i64::MAX / 2, 1e30, 100, -128, 127), 127);
        for x in [-3.5f32, -2.5, -0.5, 0.5, 1.5, 2.49, 1e7, -1e7, 123456.5] {
            assert_eq!(round_half_even(x), x.clamp(-4194304.0, 4194304.0).round_ties_even() as i32, "{x}");
        }
    }

    #[test]
    fn bad_sizes_are_errors() {
        let a = [1u8; 6];
        let pa = PackedA::new(&QMat::row_major(Bytes::U8(&a), 2, 3).unwrap()).unwrap();
        let b = [1i8; 8];
        let bm = QMat::row_major(Bytes::I8(&b), 4, 2).unwrap();
        let mut out = [0i32; 4];
        let ep = Epilogue {
            za: PerIndex::All(0),
            zb: PerIndex::All(0),
            bias: None,
            scale: &[1.0],
            scale_per_row: true,
            row_max: None,
            out: Out::I32(&mut out),
            ldc: 2,
        };
        assert!(qgemm(&pa, &bm, ep).unwrap_err().to_string().contains("inner dimensions"));
        assert!(QMat::row_major(Bytes::U8(&a), 3, 3).is_err());
    }
}
