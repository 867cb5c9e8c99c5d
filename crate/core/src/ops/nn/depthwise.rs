//! Direct depthwise 2-D convolution: one input plane, one filter, one output plane.
//!
//! Depthwise convolutions (MobileNet's 3×3 per-channel filters) do 9 multiply-adds per output
//! and have no reduction over channels, so GEMM would be all overhead. Instead each input row
//! is copied once into a zero-padded scratch row, split into `stride` phases (phase `r` holds
//! padded columns `r, r + stride, r + 2·stride, …`). After that, kernel tap `kx` of every output
//! in a row reads one *contiguous* slice of one phase, whatever the stride, dilation or padding,
//! so the inner loops are branch-free and vectorise across the output width. 3×3 filters (the
//! common case) accumulate all nine taps in a single pass over the output row.

use super::spatial::Window;

/// Convolves one `H × W` plane with one `KH × KW` filter, writing the `OH × OW` output plane
/// with `bias` added. `scratch` is reused between calls to avoid reallocating. The window must
/// be 2-D and the slices sized by it (validated by the op; a mismatch panics on bounds).
pub fn depthwise_plane(input: &[f32], filter: &[f32], bias: f32, w: &Window, out: &mut [f32], scratch: &mut Vec<f32>) {
    let (h, wd) = (w.input[0], w.input[1]);
    let (kh, kw) = (w.kernel[0], w.kernel[1]);
    let (oh, ow) = (w.output[0], w.output[1]);
    let (sh, sw) = (w.strides[0], w.strides[1]);
    let (dh, dw) = (w.dilations[0], w.dilations[1]);
    let (pt, pl) = (w.pad_begin[0], w.pad_begin[1]);

    // Phase length: tap kx of output ox reads phase (kx·dw) % sw at index ox + (kx·dw) / sw.
    let phase_len = ow + (kw - 1) * dw / sw;
    let row_len = sw * phase_len;
    // Layout: `h` phase-split rows, one zero row (for taps above or below the input), and one
    // staging row. Every element is rewritten below, so the buffer is only grown, never cleared.
    scratch.resize((h + 2) * row_len, 0.0);
    let (rows, rest) = scratch.split_at_mut(h * row_len);
    let (zero_row, staging) = rest.split_at_mut(row_len);
    zero_row.fill(0.0);
    let zero_row: &[f32] = zero_row;
    // Padded column p is input column p − pl: inside the input for p in [lo, hi).
    let lo = pl.min(row_len);
    let hi = (pl + wd).min(row_len);
    for (iy, dst) in rows.chunks_exact_mut(row_len).enumerate() {
        let src = &input[iy * wd..(iy + 1) * wd];
        let padded = if sw == 1 { &mut *dst } else { &mut *staging };
        padded[..lo].fill(0.0);
        padded[lo..hi].copy_from_slice(&src[..hi - lo]);
        padded[hi..].fill(0.0);
        if sw == 2 {
            // The common strided case: a deinterleave that LLVM vectorises with shuffles.
            let (even, odd) = dst.split_at_mut(phase_len);
            for ((e, o), p) in even.iter_mut().zip(odd.iter_mut()).zip(staging.chunks_exact(2)) {
                *e = p[0];
                *o = p[1];
            }
        } else if sw > 2 {
            for (j, p) in staging.chunks_exact(sw).enumerate() {
                for (r, &v) in p.iter().enumerate() {
                    dst[r * phase_len + j] = v;
                }
            }
        }
    }
    let rows: &[f32] = rows;
    let tap = |kx: usize| -> std::ops::Range<usize> {
        let t = kx * dw;
        let start = (t % sw) * phase_len + t / sw;
        start..start + ow
    };
    let row_at = |oy: usize, ky: usize| -> Option<&[f32]> {
        let iy = (oy * sh + ky * dh).checked_sub(pt)?;
        (iy < h).then(|| &rows[iy * row_len..(iy + 1) * row_len])
    };

    for (oy, o) in out.chunks_exact_mut(ow).enumerate().take(oh) {
        if kh == 3 && kw == 3 {
            let r: [&[f32]; 3] = std::array::from_fn(|ky| row_at(oy, ky).unwrap_or(zero_row));
            let f = filter;
            // Every slice is re-cut to `n` so the loop below runs without bounds checks.
            let n = o.len();
            let s = |ky: usize, kx: usize| &r[ky][tap(kx)][..n];
            let (a0, a1, a2) = (s(0, 0), s(0, 1), s(0, 2));
            let (b0, b1, b2) = (s(1, 0), s(1, 1), s(1, 2));
            let (c0, c1, c2) = (s(2, 0), s(2, 1), s(2, 2));
            for x in 0..n {
                let top = a0[x] * f[0] + a1[x] * f[1] + a2[x] * f[2];
                let mid = b0[x] * f[3] + b1[x] * f[4] + b2[x] * f[5];
                let bot = c0[x] * f[6] + c1[x] * f[7] + c2[x] * f[8];
                o[x] = bias + top + mid + bot;
            }
        } else {
            o.fill(bias);
            for ky in 0..kh {
                let Some(row) = row_at(oy, ky) else { continue };
                for kx in 0..kw {
                    let wv = filter[ky * kw + kx];
                    for (v, x) in o.iter_mut().zip(&row[tap(kx)]) {
                        *v += wv * x;
                    }
                }
            }
        }
    }
}
