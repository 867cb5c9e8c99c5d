//! Where [`qgemm`](super::qgemm)'s epilogue writes: the four destination types ([`Out`]), their
//! eight-lane runs, the requantization rule they share, and how a destination is cut into
//! disjoint pieces so that each task of a threaded product owns its own (by blocks of rows and
//! columns, by column bands, by runs of planes).

use super::{Widen, NR};
use crate::ops::quant::simd::{dequant8, requant_store8};
use crate::parallel::Grid;
use crate::quant::round_half_even;
use std::ops::Range;

/// Where the epilogue writes element `(i, j)`: `out[i·ldc + j]`, as one of four types.
#[derive(Debug)]
pub enum Out<'a> {
    /// The exact integer result (ConvInteger, MatMulInteger).
    I32(&'a mut [i32]),
    /// `clamp(v · scale, lo, hi)` (a dequantized output with a fused activation).
    F32 {
        /// Destination.
        out: &'a mut [f32],
        /// Lower clamp (`-inf` for none).
        lo: f32,
        /// Upper clamp (`inf` for none).
        hi: f32,
    },
    /// `clamp(round_half_even(v · scale) + zero_point, lo, hi)` as uint8.
    U8 {
        /// Destination.
        out: &'a mut [u8],
        /// Output zero-point.
        zero_point: i32,
        /// Lower clamp (at least 0).
        lo: i32,
        /// Upper clamp (at most 255).
        hi: i32,
    },
    /// `clamp(round_half_even(v · scale) + zero_point, lo, hi)` as int8.
    I8 {
        /// Destination.
        out: &'a mut [i8],
        /// Output zero-point.
        zero_point: i32,
        /// Lower clamp (at least −128).
        lo: i32,
        /// Upper clamp (at most 127).
        hi: i32,
    },
}

impl Out<'_> {
    /// Writes the integer result `v` of element `idx`, scaled by `scale` for the non-integer
    /// types (the one rule every int8 kernel's store goes through).
    #[inline(always)]
    pub fn put(&mut self, idx: usize, v: i64, scale: f32) {
        match self {
            Out::I32(o) => o[idx] = v.clamp(i32::MIN as i64, i32::MAX as i64) as i32,
            Out::F32 { out, lo, hi } => out[idx] = clamp_f32(v as f32 * scale, *lo, *hi),
            Out::U8 { out, zero_point, lo, hi } => out[idx] = requant(v, scale, *zero_point, *lo, *hi) as u8,
            Out::I8 { out, zero_point, lo, hi } => out[idx] = requant(v, scale, *zero_point, *lo, *hi) as i8,
        }
    }

    /// The 8-bit code [`Out::put`] writes for the integer `v` (a finite `scale`), or `None`
    /// for the other types.
    pub fn code_of(&self, v: i64, scale: f32) -> Option<i32> {
        match self {
            Out::U8 { zero_point, lo, hi, .. } | Out::I8 { zero_point, lo, hi, .. } if scale.is_finite() => {
                Some(requant(v, scale, *zero_point, *lo, *hi))
            }
            _ => None,
        }
    }

    /// Writes the result of the integer `v` to elements `at .. at + n`, as [`Out::put`] would
    /// to each.
    pub fn fill_run(&mut self, at: usize, n: usize, v: i64, scale: f32) {
        if n == 0 {
            return;
        }
        self.put(at, v, scale);
        fn spread<T: Copy>(o: &mut [T], at: usize, n: usize) {
            let x = o[at];
            o[at + 1..at + n].fill(x);
        }
        match self {
            Out::I32(o) => spread(o, at, n),
            Out::F32 { out, .. } => spread(out, at, n),
            Out::U8 { out, .. } => spread(out, at, n),
            Out::I8 { out, .. } => spread(out, at, n),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the exact sums `vals[t] + add` (the caller guarantees they do not overflow) to
    /// elements `at + t`, scaled by `scale`: the same result as [`Out::put`] for each, eight at
    /// a time through the vector lanes, with the per-run constants hoisted out of the loop.
    pub fn store_run(&mut self, at: usize, vals: &[i32], add: i32, scale: f32) {
        self.store_run_within(at, vals, add, scale, u64::MAX)
    }

    /// [`Out::store_run`] where the caller guarantees `|vals[t]| ≤ vmax` for every `t` (a
    /// layer's sums are bounded by its weights: `Σ|w|·255`). Where that bound keeps every
    /// scaled value below 2²¹, 8-bit outputs skip the float clamp
    /// ([`requant_store8`](crate::ops::quant::simd::requant_store8) with `NEAR`): the same codes.
    pub fn store_run_within(&mut self, at: usize, vals: &[i32], add: i32, scale: f32, vmax: u64) {
        let n8 = vals.len() / NR * NR;
        let (body, rest) = vals.split_at(n8);
        match self {
            Out::I32(out) => {
                for (o, &v) in out[at..at + vals.len()].iter_mut().zip(vals) {
                    *o = v.wrapping_add(add);
                }
            }
            Out::F32 { out, lo, hi } => {
                let (lo, hi) = (*lo, *hi);
                for (o, ch) in out[at..at + n8].chunks_exact_mut(NR).zip(body.chunks_exact(NR)) {
                    o.copy_from_slice(&dequant8(ch.try_into().expect("NR values"), add, scale, lo, hi));
                }
                for (o, &v) in out[at + n8..at + vals.len()].iter_mut().zip(rest) {
                    *o = clamp_f32(v.wrapping_add(add) as f32 * scale, lo, hi);
                }
            }
            Out::U8 { out, zero_point, lo, hi } => {
                requant_run(&mut out[at..at + vals.len()], vals, add, scale, *zero_point, *lo, *hi, vmax)
            }
            Out::I8 { out, zero_point, lo, hi } => {
                requant_run(&mut out[at..at + vals.len()], vals, add, scale, *zero_point, *lo, *hi, vmax)
            }
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Out::I32(o) => o.len(),
            Out::F32 { out, .. } => out.len(),
            Out::U8 { out, .. } => out.len(),
            Out::I8 { out, .. } => out.len(),
        }
    }
}

/// One block of C for one task: `out[i]` is row `rows.start + i` over `cols`.
pub(super) struct OutBlock<'a> {
    pub(super) rows: Range<usize>,
    pub(super) cols: Range<usize>,
    pub(super) out: Vec<Out<'a>>,
}

impl<'a> Out<'a> {
    /// The blocks of `grid` over this destination (row stride `ld`).
    pub(super) fn blocks(self, grid: &Grid, ld: usize) -> Vec<OutBlock<'a>> {
        fn wrap<'a, T>(g: &Grid, c: &'a mut [T], ld: usize, f: impl Fn(&'a mut [T]) -> Out<'a>) -> Vec<OutBlock<'a>> {
            let blocks = g.blocks(c, ld).into_iter();
            blocks
                .map(|b| OutBlock { rows: b.rows, cols: b.cols, out: b.rows_of_c.into_iter().map(&f).collect() })
                .collect()
        }
        match self {
            Out::I32(o) => wrap(grid, o, ld, Out::I32),
            Out::F32 { out, lo, hi } => wrap(grid, out, ld, |out| Out::F32 { out, lo, hi }),
            Out::U8 { out, zero_point, lo, hi } => wrap(grid, out, ld, |out| Out::U8 { out, zero_point, lo, hi }),
            Out::I8 { out, zero_point, lo, hi } => wrap(grid, out, ld, |out| Out::I8 { out, zero_point, lo, hi }),
        }
    }

    /// Row `i < rows` (stride `ld`) of this destination cut at the column ranges `bands`:
    /// `out[b][i]` is row `i`'s columns `bands[b]`, as destinations of their own.
    pub(crate) fn column_bands(self, rows: usize, ld: usize, bands: &[Range<usize>]) -> Vec<Vec<Out<'a>>> {
        let grid = Grid { rows: std::iter::once(0..rows).collect(), cols: bands.to_vec() };
        self.blocks(&grid, ld).into_iter().map(|b| b.out).collect()
    }

    /// Elements `r` as a destination of their own (a reborrow).
    pub(crate) fn slice(&mut self, r: Range<usize>) -> Out<'_> {
        match self {
            Out::I32(o) => Out::I32(&mut o[r]),
            Out::F32 { out, lo, hi } => Out::F32 { out: &mut out[r], lo: *lo, hi: *hi },
            Out::U8 { out, zero_point, lo, hi } => {
                Out::U8 { out: &mut out[r], zero_point: *zero_point, lo: *lo, hi: *hi }
            }
            Out::I8 { out, zero_point, lo, hi } => {
                Out::I8 { out: &mut out[r], zero_point: *zero_point, lo: *lo, hi: *hi }
            }
        }
    }

    /// This destination as a reborrow whose codes are also capped at `max`, where there is one:
    /// `min(clamp(q, lo, hi), max) = clamp(q, min(lo, hi′), hi′)` with `hi′ = min(hi, max)`
    /// (a convolution's fused per-channel `Min`, applied in its store). Only 8-bit
    /// destinations take a cap: the others are returned as they are.
    pub(crate) fn capped(&mut self, max: Option<i32>) -> Out<'_> {
        let Some(max) = max else { return self.slice(0..self.len()) };
        match self {
            Out::U8 { out, zero_point, lo, hi } => {
                let hi = (*hi).min(max);
                Out::U8 { out: &mut out[..], zero_point: *zero_point, lo: (*lo).min(hi), hi }
            }
            Out::I8 { out, zero_point, lo, hi } => {
                let hi = (*hi).min(max);
                Out::I8 { out: &mut out[..], zero_point: *zero_point, lo: (*lo).min(hi), hi }
            }
            other => other.slice(0..other.len()),
        }
    }

    /// Consecutive pieces of this destination: piece `p` holds elements
    /// `parts[p].start · unit .. parts[p].end · unit` (say, the output planes of some
    /// channels), as destinations of their own whose indices start at 0.
    pub fn parts(self, unit: usize, parts: &[Range<usize>]) -> Vec<Out<'a>> {
        fn wrap<'a, T>(
            c: &'a mut [T],
            unit: usize,
            parts: &[Range<usize>],
            f: impl Fn(&'a mut [T]) -> Out<'a>,
        ) -> Vec<Out<'a>> {
            crate::parallel::split_parts(c, unit, parts).into_iter().map(f).collect()
        }
        match self {
            Out::I32(o) => wrap(o, unit, parts, Out::I32),
            Out::F32 { out, lo, hi } => wrap(out, unit, parts, |out| Out::F32 { out, lo, hi }),
            Out::U8 { out, zero_point, lo, hi } => wrap(out, unit, parts, |out| Out::U8 { out, zero_point, lo, hi }),
            Out::I8 { out, zero_point, lo, hi } => wrap(out, unit, parts, |out| Out::I8 { out, zero_point, lo, hi }),
        }
    }
}

/// Largest `|(v + add)·s|` (before rounding) for which the lanes may skip the float clamp:
/// below 2²² adding 1.5·2²³ still rounds exactly, and 2²¹ leaves room for the conversion's and
/// the product's rounding.
const NEAR_LIMIT: f64 = (1u64 << 21) as f64;

/// [`Out::store_run_within`] for 8-bit outputs.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn requant_run<T: Widen>(out: &mut [T], vals: &[i32], add: i32, s: f32, zp: i32, lo: i32, hi: i32, vmax: u64) {
    #[cfg(target_arch = "x86_64")]
    if s.is_finite() && crate::ops::quant::simd::use_avx2() {
        // SAFETY: `use_avx2` is true only where the CPU has AVX2.
        return unsafe { crate::ops::quant::simd::avx2::requant_run(out, vals, add, s, zp, lo, hi) };
    }
    // The lanes need a finite scale (an infinite one can make NaN); the scalar rule covers it.
    let n8 = if s.is_finite() { vals.len() / NR * NR } else { 0 };
    fn lanes<T: Widen, const NEAR: bool, const FULL: bool>(
        out: &mut [T],
        vals: &[i32],
        add: i32,
        s: f32,
        zp: i32,
        lo: i32,
        hi: i32,
    ) {
        for (o, ch) in out.chunks_exact_mut(NR).zip(vals.chunks_exact(NR)) {
            requant_store8::<T, NEAR, FULL>(ch, add, s, zp, lo, hi, o);
        }
    }
    let (out8, vals8) = (&mut out[..n8], &vals[..n8]);
    // |v + add| ≤ vmax + |add| (or, wrapped, below 2³¹ ≤ that), so |x| stays under the limit.
    // Without a fused activation the codes span the type, and the narrows clamp by themselves.
    let full = (lo, hi) == T::RANGE;
    match ((vmax as f64 + (add as f64).abs()) * (s as f64).abs() < NEAR_LIMIT, full) {
        (true, true) => lanes::<T, true, true>(out8, vals8, add, s, zp, lo, hi),
        (true, false) => lanes::<T, true, false>(out8, vals8, add, s, zp, lo, hi),
        (false, _) => lanes::<T, false, false>(out8, vals8, add, s, zp, lo, hi),
    }
    let rest = &vals[n8..];
    if s.is_finite() && !rest.is_empty() {
        // The ragged end through the lanes too, via an eight-value scratch.
        let mut v8 = [0i32; NR];
        v8[..rest.len()].copy_from_slice(rest);
        let mut q8 = [T::from_i32(0); NR];
        requant_store8::<T, false, false>(&v8, add, s, zp, lo, hi, &mut q8);
        out[n8..vals.len()].copy_from_slice(&q8[..rest.len()]);
        return;
    }
    for (o, &v) in out[n8..].iter_mut().zip(rest) {
        *o = T::from_i32(requant_i32(v.wrapping_add(add), s, zp, lo, hi));
    }
}

/// `y < lo ? lo : y > hi ? hi : y` (NaN passes through, like the f32 kernels' clamp).
#[inline(always)]
pub(super) fn clamp_f32(y: f32, lo: f32, hi: f32) -> f32 {
    if y < lo {
        lo
    } else if y > hi {
        hi
    } else {
        y
    }
}

/// `clamp(round_half_even(v · m) + zp, lo, hi)` — ONNX QLinearConv/QLinearMatMul requantization
/// with a float multiplier, as onnxruntime computes it.
#[inline(always)]
pub fn requant_i32(v: i32, m: f32, zp: i32, lo: i32, hi: i32) -> i32 {
    (round_half_even(v as f32 * m) + zp).clamp(lo, hi)
}

/// [`requant_i32`] for a sum held in `i64` (saturated to `i32` first).
#[inline(always)]
pub fn requant(v: i64, m: f32, zp: i32, lo: i32, hi: i32) -> i32 {
    requant_i32(v.clamp(i32::MIN as i64, i32::MAX as i64) as i32, m, zp, lo, hi)
}
