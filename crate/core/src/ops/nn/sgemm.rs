//! Single-precision matrix multiply, `C (+)= alpha · A · B (+ bias)`: the kernel every
//! convolution and matrix product ends in.
//!
//! The structure is the classic Goto/BLIS one. `B` is packed into `KC × NR` column panels and
//! `A` into `MR × KC` row panels (both zero-padded to whole panels, `alpha` folded into `A`), so
//! the micro-kernel reads both operands contiguously and keeps an `MR × NR` tile of accumulators
//! in registers for the whole `KC` depth. The micro-kernel is written on the four-lane
//! [`F32x4`] (SSE on x86-64, SIMD128 on wasm32, arrays elsewhere) with separate multiply and
//! add (no FMA), so every target computes the same sums in the same order. Operands are strided views ([`MatRef`]), so
//! transposed inputs need no copies beyond the packing that happens anyway.
//!
//! With the `threads` feature C is cut into blocks ([`Grid`]: column bands, then row blocks),
//! one task each; every element is still summed over the same depth blocks in the same order,
//! so the result does not depend on the number of threads.

use super::simd::F32x4;
use crate::ops::OpError;
use crate::parallel::Grid;
use std::ops::Range;

/// Rows of the register tile.
const MR: usize = 4;
/// Columns of the register tile (two or four SIMD vectors).
const NR: usize = 8;
/// Depth of one packed block: an `MR × KC` A panel plus a `KC × NR` B panel stay in L1.
const KC: usize = 256;
/// Rows of A packed at once (a multiple of `MR`): the packed A block stays in L2.
const MC: usize = 64;
/// Columns of B packed at once (a multiple of `NR`).
const NC: usize = 1024;

/// A read-only strided matrix view: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A strided view; an error if `data` is too short for the last element.
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<MatRef<'a>, OpError> {
        if rows > 0 && cols > 0 {
            let last = (rows - 1)
                .checked_mul(row_stride)
                .and_then(|r| (cols - 1).checked_mul(col_stride).and_then(|c| r.checked_add(c)))
                .ok_or_else(|| OpError::internal(format!("a {rows}×{cols} matrix view overflows")))?;
            if last >= data.len() {
                return Err(OpError::internal(format!(
                    "a {rows}×{cols} matrix with strides ({row_stride}, {col_stride}) needs {} elements, got {}",
                    last + 1,
                    data.len()
                )));
            }
        }
        Ok(MatRef { data, rows, cols, row_stride, col_stride })
    }

    /// A dense row-major `rows × cols` view of the start of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<MatRef<'a>, OpError> {
        MatRef::new(data, rows, cols, cols, 1)
    }

    /// The transposed view (no data moves).
    pub fn t(self) -> MatRef<'a> {
        MatRef { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.row_stride + j * self.col_stride]
    }
}

/// A fused activation `v ↦ min(max(v, lo), hi)`, evaluated exactly as ONNX `Clip` (and `Relu`,
/// which is `lo = 0`, `hi = +∞`) are: `v < lo ? lo : v`, then `v > hi ? hi : v`. So NaN passes
/// through, −0 stays −0, and `lo > hi` makes every value `hi`, as the spec says. A missing
/// bound is ±∞, which no comparison ever takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clamp {
    /// Lower bound (`-∞` for none).
    pub lo: f32,
    /// Upper bound (`+∞` for none).
    pub hi: f32,
}

impl Clamp {
    /// `Relu`: `x < 0 ? 0 : x`.
    pub const RELU: Clamp = Clamp { lo: 0.0, hi: f32::INFINITY };

    /// One value.
    #[inline(always)]
    pub fn apply(self, v: f32) -> f32 {
        let v = if v < self.lo { self.lo } else { v };
        if v > self.hi {
            self.hi
        } else {
            v
        }
    }

    /// Every value of `xs`, in place: four lanes at a time ([`F32x4::clip`] follows the same
    /// rule bit for bit), the tail one by one.
    #[inline]
    pub fn apply_slice(self, xs: &mut [f32]) {
        let (lo, hi) = (F32x4::splat(self.lo), F32x4::splat(self.hi));
        let mut quads = xs.chunks_exact_mut(4);
        for q in &mut quads {
            F32x4::load(q).clip(lo, hi).store(q);
        }
        for x in quads.into_remainder() {
            *x = self.apply(*x);
        }
    }
}

/// What `C` holds before the product is added.
#[derive(Debug, Clone, Copy)]
pub enum Init<'a> {
    /// Overwrite: `C = alpha·A·B`.
    Zero,
    /// Accumulate into the existing contents: `C += alpha·A·B`.
    Accumulate,
    /// Overwrite with a per-row bias fused into the store: `C[i][j] = alpha·(A·B)[i][j] + bias[i]`
    /// (a convolution's bias per output channel).
    RowBias(&'a [f32]),
}

/// `C = alpha · A · B` combined with `init`, where `A` is `m × k`, `B` is `k × n` and `C` is
/// `m × n` row-major with row stride `ldc` (so it can be a block of a larger matrix).
///
/// Errors when the shapes disagree or `c` is too short; never panics on bad sizes.
pub fn sgemm(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    init: Init<'_>,
    c: &mut [f32],
    ldc: usize,
) -> Result<(), OpError> {
    sgemm_clamped(alpha, a, b, init, None, c, ldc)
}

/// [`sgemm`] followed by a fused activation: with `clamp = Some(c)` every stored value `v`
/// becomes `c.apply(v)`, in the store of the last depth block while the tile is still in cache.
/// The values are exactly those of a separate `Clip`/`Relu` pass over the output.
pub fn sgemm_clamped(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    init: Init<'_>,
    clamp: Option<Clamp>,
    c: &mut [f32],
    ldc: usize,
) -> Result<(), OpError> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k {
        return Err(OpError::internal(format!(
            "matrix product of {m}×{k} and {}×{n}: inner dimensions differ",
            b.rows
        )));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if ldc < n {
        return Err(OpError::internal(format!("output row stride {ldc} is shorter than a row of {n}")));
    }
    let needed = (m - 1)
        .checked_mul(ldc)
        .and_then(|x| x.checked_add(n))
        .ok_or_else(|| OpError::internal("output size overflows"))?;
    if c.len() < needed {
        return Err(OpError::internal(format!("the {m}×{n} output needs {needed} elements, got {}", c.len())));
    }
    if let Init::RowBias(bias) = init {
        if bias.len() < m {
            return Err(OpError::internal(format!("bias has {} values for {m} rows", bias.len())));
        }
    }
    if k == 0 {
        for i in 0..m {
            let row = &mut c[i * ldc..i * ldc + n];
            match init {
                Init::Zero => row.fill(0.0),
                Init::Accumulate => {}
                Init::RowBias(bias) => row.fill(bias[i]),
            }
            if let Some(cl) = clamp {
                cl.apply_slice(row);
            }
        }
        return Ok(());
    }

    // Each task computes a block of C (rows × columns) exactly as one thread would: every
    // element's sum runs over the same depth blocks in the same order, whatever the split.
    let grid = Grid::new(m, n, m * n * k, (MR, MIN_BLOCK_ROWS), (NR, MIN_BAND_COLS));
    let mut blocks = grid.blocks(c, ldc);
    crate::parallel::for_each_mut(&mut blocks, |_, blk| {
        let (rows, cols, c) = (blk.rows.clone(), blk.cols.clone(), &mut blk.rows_of_c);
        gemm_block(alpha, &a, &b, init, clamp, rows, cols, c)
    });
    Ok(())
}

/// [`sgemm_clamped`] on the calling thread into separate rows: `c[i]` is row `i` of C (at
/// least `n` long), so a task can own some columns of a larger matrix. Errors on mismatched
/// sizes.
pub(crate) fn sgemm_rows(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    init: Init<'_>,
    clamp: Option<Clamp>,
    c: &mut [&mut [f32]],
) -> Result<(), OpError> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k {
        return Err(OpError::internal(format!(
            "matrix product of {m}×{k} and {}×{n}: inner dimensions differ",
            b.rows
        )));
    }
    if c.len() < m || c.iter().take(m).any(|r| r.len() < n) {
        return Err(OpError::internal(format!("the {m}×{n} output has {} rows, or a row shorter than {n}", c.len())));
    }
    if let Init::RowBias(bias) = init {
        if bias.len() < m {
            return Err(OpError::internal(format!("bias has {} values for {m} rows", bias.len())));
        }
    }
    if k == 0 {
        for (i, row) in c.iter_mut().take(m).enumerate() {
            let row = &mut row[..n];
            match init {
                Init::Zero => row.fill(0.0),
                Init::Accumulate => {}
                Init::RowBias(bias) => row.fill(bias[i]),
            }
            if let Some(cl) = clamp {
                cl.apply_slice(row);
            }
        }
        return Ok(());
    }
    gemm_block(alpha, &a, &b, init, clamp, 0..m, 0..n, &mut c[..m]);
    Ok(())
}

/// Fewest columns of C per task (packing A again costs about one column's worth per row).
const MIN_BAND_COLS: usize = 128;
/// Fewest rows of C per task when the rows are split (each task packs all of B).
const MIN_BLOCK_ROWS: usize = 16;

/// `C[rows, cols] = alpha · A[rows, :] · B[:, cols]` combined with `init` (and `clamp`) on one
/// thread; `c[i]` is row `rows.start + i` of C over `cols`. On x86-64 with AVX (where the
/// integer kernels take AVX2, [`use_avx2`](crate::ops::quant::simd::use_avx2)) the tile is
/// `MR × 16` in eight 8-lane registers, else `MR × NR` in four-lane ones; either way each
/// element's products are added one depth step after another in the same order, with separate
/// multiply and add, so both give the same bits.
#[allow(clippy::too_many_arguments)]
fn gemm_block(
    alpha: f32,
    a: &MatRef<'_>,
    b: &MatRef<'_>,
    init: Init<'_>,
    clamp: Option<Clamp>,
    rows: Range<usize>,
    cols: Range<usize>,
    c: &mut [&mut [f32]],
) {
    #[cfg(target_arch = "x86_64")]
    if crate::ops::quant::simd::use_avx2() {
        // SAFETY: `use_avx2` is true only where the CPU has AVX2, hence AVX.
        let kernel = |kc: usize, ap: &[f32], bp: &[f32]| unsafe { micro_kernel_avx(kc, ap, bp) };
        return blocked::<16>(alpha, a, b, init, clamp, rows, cols, c, kernel);
    }
    blocked::<NR>(alpha, a, b, init, clamp, rows, cols, c, micro_kernel)
}

/// [`gemm_block`] with `N`-column tiles computed by `kernel`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn blocked<const N: usize>(
    alpha: f32,
    a: &MatRef<'_>,
    b: &MatRef<'_>,
    init: Init<'_>,
    clamp: Option<Clamp>,
    rows: Range<usize>,
    cols: Range<usize>,
    c: &mut [&mut [f32]],
    kernel: impl Fn(usize, &[f32], &[f32]) -> [[f32; N]; MR],
) {
    let k = a.cols;
    let (m, n) = (rows.len(), cols.len());
    if m == 0 || n == 0 {
        return;
    }
    let kc_max = KC.min(k);
    let mut bpack = vec![0.0f32; kc_max * NC.min(n.next_multiple_of(N))];
    let mut apack = vec![0.0f32; kc_max * MC.min(m.next_multiple_of(MR))];
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            pack_b::<N>(b, pc, kc, cols.start + jc, nc, &mut bpack);
            // The first depth block applies `init`; later ones add to what it stored.
            let store = if pc == 0 { init } else { Init::Accumulate };
            // The activation applies to the finished sums only.
            let clamp = if pc + kc == k { clamp } else { None };
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack_a(a, alpha, rows.start + ic, mc, pc, kc, &mut apack);
                for jr in (0..nc).step_by(N) {
                    let nr = N.min(nc - jr);
                    let bp = &bpack[jr * kc..(jr + N) * kc];
                    for ir in (0..mc).step_by(MR) {
                        let mr = MR.min(mc - ir);
                        let ap = &apack[ir * kc..(ir + MR) * kc];
                        let acc = kernel(kc, ap, bp);
                        let tile = &mut c[ic + ir..ic + ir + mr];
                        store_tile(&acc, nr, tile, jc + jr, store, clamp, rows.start + ic + ir);
                    }
                }
            }
        }
    }
}

/// Packs `B[pc..pc+kc, jc..jc+nc]` into consecutive `kc × N` panels (row `p` of a panel is
/// `N` consecutive floats), zero-filling columns past `nc`.
fn pack_b<const N: usize>(b: &MatRef<'_>, pc: usize, kc: usize, jc: usize, nc: usize, out: &mut [f32]) {
    for (panel, jr) in (0..nc).step_by(N).enumerate() {
        let nr = N.min(nc - jr);
        let dst = &mut out[panel * N * kc..(panel + 1) * N * kc];
        if b.col_stride == 1 && nr == N {
            for (p, d) in dst.chunks_exact_mut(N).enumerate() {
                let start = (pc + p) * b.row_stride + jc + jr;
                d.copy_from_slice(&b.data[start..start + N]);
            }
        } else {
            for (p, d) in dst.chunks_exact_mut(N).enumerate() {
                for (j, v) in d.iter_mut().enumerate() {
                    *v = if j < nr { b.at(pc + p, jc + jr + j) } else { 0.0 };
                }
            }
        }
    }
}

/// Packs `alpha · A[ic..ic+mc, pc..pc+kc]` into consecutive `MR × kc` panels stored column by
/// column (`MR` floats per depth step), zero-filling rows past `mc`.
fn pack_a(a: &MatRef<'_>, alpha: f32, ic: usize, mc: usize, pc: usize, kc: usize, out: &mut [f32]) {
    for (panel, ir) in (0..mc).step_by(MR).enumerate() {
        let mr = MR.min(mc - ir);
        let dst = &mut out[panel * MR * kc..(panel + 1) * MR * kc];
        for i in 0..MR {
            if i < mr {
                let row = ic + ir + i;
                for p in 0..kc {
                    dst[p * MR + i] = alpha * a.at(row, pc + p);
                }
            } else {
                for p in 0..kc {
                    dst[p * MR + i] = 0.0;
                }
            }
        }
    }
}

/// The register tile: `acc = Σ_p ap[p] ⊗ bp[p]` over `kc` depth steps, `MR × NR` floats held
/// in `MR · NR / 4` vector registers (8 of the 16 that SSE and V8's wasm SIMD have, leaving
/// room for the B row and the A broadcast without spills).
#[inline(always)]
fn micro_kernel(kc: usize, ap: &[f32], bp: &[f32]) -> [[f32; NR]; MR] {
    const V: usize = NR / 4;
    let mut acc = [[F32x4::zero(); V]; MR];
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(NR)).take(kc) {
        let b: [F32x4; V] = std::array::from_fn(|v| F32x4::load(&b[4 * v..]));
        for (i, acc_row) in acc.iter_mut().enumerate() {
            let ai = F32x4::splat(a[i]);
            for (acc_v, b_v) in acc_row.iter_mut().zip(&b) {
                *acc_v = *acc_v + ai * *b_v;
            }
        }
    }
    let mut out = [[0.0f32; NR]; MR];
    for (o, a) in out.iter_mut().zip(&acc) {
        for (v, a_v) in a.iter().enumerate() {
            a_v.store(&mut o[4 * v..]);
        }
    }
    out
}

/// [`micro_kernel`] on sixteen columns in two 8-lane AVX registers per row: the same products
/// and sums for every element, eight at a time.
///
/// # Safety
/// The CPU must have AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn micro_kernel_avx(kc: usize, ap: &[f32], bp: &[f32]) -> [[f32; 16]; MR] {
    use std::arch::x86_64::*;
    let (ap, bp) = (&ap[..kc * MR], &bp[..kc * 16]);
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(16)) {
        // SAFETY: `b` holds sixteen readable floats; unaligned loads.
        let (b0, b1) = unsafe { (_mm256_loadu_ps(b.as_ptr()), _mm256_loadu_ps(b.as_ptr().add(8))) };
        for (acc_row, ai) in acc.iter_mut().zip(a) {
            let av = _mm256_broadcast_ss(ai);
            acc_row[0] = _mm256_add_ps(acc_row[0], _mm256_mul_ps(av, b0));
            acc_row[1] = _mm256_add_ps(acc_row[1], _mm256_mul_ps(av, b1));
        }
    }
    let mut out = [[0.0f32; 16]; MR];
    for (o, a) in out.iter_mut().zip(&acc) {
        // SAFETY: `o` holds sixteen writable floats; unaligned stores.
        unsafe {
            _mm256_storeu_ps(o.as_mut_ptr(), a[0]);
            _mm256_storeu_ps(o.as_mut_ptr().add(8), a[1]);
        }
    }
    out
}

/// Writes the valid `rows.len() × nr` corner of a tile: `rows[i]` is the C row of tile row
/// `i`, the tile starting at its column `col0`; `row0` is the first row's index in C.
#[inline(always)]
fn store_tile<const N: usize>(
    acc: &[[f32; N]; MR],
    nr: usize,
    rows: &mut [&mut [f32]],
    col0: usize,
    init: Init<'_>,
    clamp: Option<Clamp>,
    row0: usize,
) {
    for (i, (acc_row, c_row)) in acc.iter().zip(rows.iter_mut()).enumerate() {
        let row = &mut c_row[col0..col0 + nr];
        match init {
            Init::Zero => row.copy_from_slice(&acc_row[..nr]),
            Init::Accumulate => row.iter_mut().zip(acc_row).for_each(|(c, a)| *c += a),
            Init::RowBias(bias) => {
                let b = bias[row0 + i];
                row.iter_mut().zip(acc_row).for_each(|(c, a)| *c = a + b);
            }
        }
        if let Some(cl) = clamp {
            cl.apply_slice(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_across_block_edges() {
        for &(m, n, k) in &[(1, 1, 1), (5, 9, 3), (67, 1030, 260), (4, 8, 256), (13, 17, 513)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0).collect();
            let want = naive(m, n, k, &a, &b);
            let mut c = vec![f32::NAN; m * n];
            let am = MatRef::row_major(&a, m, k).unwrap();
            let bm = MatRef::row_major(&b, k, n).unwrap();
            sgemm(1.0, am, bm, Init::Zero, &mut c, n).unwrap();
            let tol = 1e-4 * k as f32;
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() <= tol, "{m}×{n}×{k}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn strided_views_alpha_and_init_modes() {
        let (m, n, k) = (7, 11, 5);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 - 2.0).collect();
        let want = naive(m, n, k, &a, &b);
        // Aᵀ and Bᵀ stored densely, read back through transposed views.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let av = MatRef::row_major(&at, k, m).unwrap().t();
        let bv = MatRef::row_major(&bt, n, k).unwrap().t();
        let bias: Vec<f32> = (0..m).map(|i| i as f32).collect();
        // Written into a wider buffer (ldc > n) whose extra columns must stay untouched.
        let ldc = n + 3;
        let mut c = vec![-7.0; m * ldc];
        sgemm(0.5, av, bv, Init::RowBias(&bias), &mut c, ldc).unwrap();
        for i in 0..m {
            for j in 0..ldc {
                let expect = if j < n { 0.5 * want[i * n + j] + bias[i] } else { -7.0 };
                assert_eq!(c[i * ldc + j], expect, "({i}, {j})");
            }
        }
        sgemm(2.0, av, bv, Init::Accumulate, &mut c, ldc).unwrap();
        assert_eq!(c[ldc + 2], 2.5 * want[n + 2] + bias[1]);
        // k = 0: the product is empty, only the initial value remains.
        let empty = MatRef::row_major(&[], m, 0).unwrap();
        let empty_b = MatRef::row_major(&[], 0, n).unwrap();
        sgemm(1.0, empty, empty_b, Init::RowBias(&bias), &mut c, ldc).unwrap();
        assert_eq!(c[2 * ldc + 4], 2.0);
    }

    #[test]
    fn bad_sizes_are_errors() {
        let a = [0.0f32; 6];
        assert!(MatRef::row_major(&a, 2, 4).is_err());
        let am = MatRef::row_major(&a, 2, 3).unwrap();
        let bm = MatRef::row_major(&a, 2, 3).unwrap();
        let mut c = [0.0; 9];
        assert!(sgemm(1.0, am, bm, Init::Zero, &mut c, 3).unwrap_err().to_string().contains("inner"));
        let bm = MatRef::row_major(&a, 3, 2).unwrap();
        assert!(sgemm(1.0, am, bm, Init::Zero, &mut c[..2], 2).is_err());
    }
}
