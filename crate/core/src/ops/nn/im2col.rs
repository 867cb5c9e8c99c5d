//! Unfolding convolution windows into a GEMM operand (`im2col`) and folding them back
//! (`col2im`, for ConvTranspose).
//!
//! The column matrix has one row per (input channel, kernel tap) — the order of a weight
//! tensor's flattened `[C, k_0, k_1, …]` — and one column per output position, so a
//! convolution becomes `W[M × C·K] · cols[C·K × P]`. Rows are filled run by run along the
//! innermost spatial dim: each run splits into a zero head (left padding), a copy (contiguous
//! when the stride is 1) and a zero tail, so padding costs no per-element branches.
//!
//! Both directions work for any number of spatial dims ≥ 2 (callers lift 1-D to 2-D), and can
//! cover a sub-range of the outermost output dim so that large convolutions unfold in chunks
//! that stay in cache instead of materialising the whole column matrix.

use super::spatial::Window;
use std::ops::Range;

/// One run of a column-matrix row: `len` consecutive columns starting at `col`, reading input
/// elements `base, base + stride, …` (`src = Some((base, stride))`) or padding zeros (`None`).
struct Run {
    col: usize,
    len: usize,
    src: Option<(usize, usize)>,
}

/// Calls `f` for every run of the column-matrix row of kernel tap `taps` (one index per spatial
/// dim), over output positions whose outermost index lies in `o0`.
fn for_each_run(w: &Window, taps: &[usize], o0: Range<usize>, mut f: impl FnMut(Run)) {
    let nd = w.input.len();
    debug_assert!(nd >= 2 && taps.len() == nd);
    let last = nd - 1;
    // Row-major strides of the input plane.
    let mut in_strides = vec![1usize; nd];
    for d in (0..last).rev() {
        in_strides[d] = in_strides[d + 1] * w.input[d + 1];
    }
    // Input coordinate of output index o along dim d: o * stride + off(d).
    let off = |d: usize| (taps[d] * w.dilations[d]) as isize - w.pad_begin[d] as isize;
    let (s, n_out, n_in, off_last) = (w.strides[last], w.output[last], w.input[last] as isize, off(last));
    // Valid output range [lo, hi) along the innermost dim.
    let first_valid = |bound: isize| -> usize {
        // Smallest o >= 0 with o * s + off_last >= bound.
        let need = bound - off_last;
        if need <= 0 {
            0
        } else {
            (need as usize).div_ceil(s)
        }
    };
    let lo = first_valid(0).min(n_out);
    let hi = first_valid(n_in).min(n_out).max(lo);

    let mut idx: Vec<usize> = vec![0; last];
    idx[0] = o0.start;
    let mut col = 0;
    while idx[0] < o0.end {
        let mut base = 0usize;
        let mut inside = true;
        for d in 0..last {
            let coord = (idx[d] * w.strides[d]) as isize + off(d);
            if coord < 0 || coord >= w.input[d] as isize {
                inside = false;
                break;
            }
            base += coord as usize * in_strides[d];
        }
        if !inside || hi == lo {
            f(Run { col, len: n_out, src: None });
        } else {
            if lo > 0 {
                f(Run { col, len: lo, src: None });
            }
            let start = base + ((lo * s) as isize + off_last) as usize;
            f(Run { col: col + lo, len: hi - lo, src: Some((start, s)) });
            if hi < n_out {
                f(Run { col: col + hi, len: n_out - hi, src: None });
            }
        }
        col += n_out;
        // Advance the odometer over the outer output dims.
        let mut d = last - 1;
        loop {
            idx[d] += 1;
            if d == 0 || idx[d] < w.output[d] {
                break;
            }
            idx[d] = 0;
            d -= 1;
        }
    }
}

/// Per-dim kernel tap indices of flat tap `k` (row-major over the kernel shape).
fn unflatten(mut k: usize, kernel: &[usize], taps: &mut [usize]) {
    for d in (0..kernel.len()).rev() {
        taps[d] = k % kernel[d];
        k /= kernel[d];
    }
}

/// Number of columns a chunk covering outermost output indices `o0` has.
pub fn chunk_cols(w: &Window, o0: &Range<usize>) -> usize {
    o0.len() * w.output[1..].iter().product::<usize>()
}

/// Fills `cols` (`channels·K × chunk_cols` row-major) from `input`, which holds `channels`
/// consecutive planes of spatial shape `w.input`. Sizes must have been validated by the caller
/// (the op's geometry); a mismatch is a bug and panics on slice bounds.
pub fn im2col(input: &[f32], channels: usize, w: &Window, o0: Range<usize>, cols: &mut [f32]) {
    im2col_padded(input, channels, w, o0, 0.0, cols)
}

/// [`im2col`] for any element type, with `pad` written where a window reads padding (a
/// quantized convolution pads with its input zero-point, the code of 0.0).
pub fn im2col_padded<T: Copy>(input: &[T], channels: usize, w: &Window, o0: Range<usize>, pad: T, cols: &mut [T]) {
    let plane: usize = w.input.iter().product();
    let ksize: usize = w.kernel.iter().product();
    let ncols = chunk_cols(w, &o0);
    let mut taps = vec![0; w.kernel.len()];
    for c in 0..channels {
        let src = &input[c * plane..(c + 1) * plane];
        for k in 0..ksize {
            unflatten(k, &w.kernel, &mut taps);
            let row = &mut cols[(c * ksize + k) * ncols..(c * ksize + k + 1) * ncols];
            for_each_run(w, &taps, o0.clone(), |r| {
                let dst = &mut row[r.col..r.col + r.len];
                match r.src {
                    None => dst.fill(pad),
                    Some((base, 1)) => dst.copy_from_slice(&src[base..base + r.len]),
                    Some((base, 2)) => gather_stride2(&src[base..base + 2 * r.len - 1], dst),
                    Some((base, s)) => {
                        for (t, v) in dst.iter_mut().enumerate() {
                            *v = src[base + t * s];
                        }
                    }
                }
            });
        }
    }
}

/// `dst[t] = src[2t]` (`src` holds `2·dst.len() − 1` elements): the even elements in pairs,
/// which the compiler turns into vector loads and shuffles (a stride-2 first convolution reads
/// all its taps this way).
#[inline]
fn gather_stride2<T: Copy>(src: &[T], dst: &mut [T]) {
    let Some((last, body)) = dst.split_last_mut() else { return };
    for (v, pair) in body.iter_mut().zip(src.chunks_exact(2)) {
        *v = pair[0];
    }
    *last = src[src.len() - 1];
}

/// The adjoint of [`im2col`]: adds every column-matrix entry into the image position it was
/// read from. `w.input` is the image's spatial shape and `w.output` the column grid; `image`
/// holds `channels` planes. Used by ConvTranspose, whose output is such an image.
pub fn col2im(cols: &[f32], channels: usize, w: &Window, image: &mut [f32]) {
    let plane: usize = w.input.iter().product();
    let ksize: usize = w.kernel.iter().product();
    let o0 = 0..w.output[0];
    let ncols = chunk_cols(w, &o0);
    let mut taps = vec![0; w.kernel.len()];
    for c in 0..channels {
        let dst = &mut image[c * plane..(c + 1) * plane];
        for k in 0..ksize {
            unflatten(k, &w.kernel, &mut taps);
            let row = &cols[(c * ksize + k) * ncols..(c * ksize + k + 1) * ncols];
            for_each_run(w, &taps, o0.clone(), |r| {
                if let Some((base, s)) = r.src {
                    for (t, v) in row[r.col..r.col + r.len].iter().enumerate() {
                        dst[base + t * s] += v;
                    }
                }
            });
        }
    }
}
