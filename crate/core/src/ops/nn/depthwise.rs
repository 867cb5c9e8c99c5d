//! Direct depthwise 2-D convolution: one input plane, one filter, one output plane.
//!
//! Depthwise convolutions (MobileNet's 3×3 per-channel filters) do 9 multiply-adds per output
//! and have no reduction over channels, so GEMM would be all overhead. Instead each input row
//! is copied once into a zero-padded scratch row, split into `stride` phases (phase `r` holds
//! padded columns `r, r + stride, r + 2·stride, …`). After that, kernel tap `kx` of every output
//! in a row reads one *contiguous* slice of one phase, whatever the stride, dilation or padding,
//! so the inner loops are branch-free and vectorise across the output width. 3×3 filters (the
//! common case) accumulate all nine taps in a single pass over the output row, and with
//! vertical stride 1 two output rows at a time, sharing the input rows they both read.

use super::sgemm::Clamp;
use super::spatial::Window;

/// Convolves one `H × W` plane with one `KH × KW` filter, writing the `OH × OW` output plane
/// with `bias` added and then, with `clamp`, the fused activation applied. `scratch` is reused
/// between calls to avoid reallocating. The window must be 2-D and the slices sized by it
/// (validated by the op; a mismatch panics on bounds).
pub fn depthwise_plane(
    input: &[f32],
    filter: &[f32],
    bias: f32,
    w: &Window,
    clamp: Option<Clamp>,
    out: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    depthwise_plane_linear(input, filter, bias, w, out, scratch);
    if let Some(c) = clamp {
        // The plane was just written, so it is still in cache.
        c.apply_slice(&mut out[..w.output[0] * w.output[1]]);
    }
}

/// [`depthwise_plane`] without the activation.
fn depthwise_plane_linear(
    input: &[f32],
    filter: &[f32],
    bias: f32,
    w: &Window,
    out: &mut [f32],
    scratch: &mut Vec<f32>,
) {
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

    let out = &mut out[..oh * ow];
    if kh == 3 && kw == 3 {
        let f: [f32; 9] = std::array::from_fn(|i| filter[i]);
        let taps: [std::ops::Range<usize>; 3] = std::array::from_fn(tap);
        let row = |oy: usize, ky: usize| row_at(oy, ky).unwrap_or(zero_row);
        let mut oy = 0;
        while oy < oh {
            if sh == 1 && dh == 1 && oy + 1 < oh {
                // Rows oy and oy + 1 read input rows oy − pt … oy − pt + 3: share the loads.
                let (o0, o1) = out[oy * ow..(oy + 2) * ow].split_at_mut(ow);
                let r = [row(oy, 0), row(oy, 1), row(oy, 2), row(oy + 1, 2)];
                rows_3x3_pair(o0, o1, r, &taps, &f, bias);
                oy += 2;
            } else {
                let r = [row(oy, 0), row(oy, 1), row(oy, 2)];
                row_3x3(&mut out[oy * ow..(oy + 1) * ow], r, &taps, &f, bias);
                oy += 1;
            }
        }
        return;
    }
    for (oy, o) in out.chunks_exact_mut(ow).enumerate() {
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

/// One output row of a 3×3 filter `f` from its three input rows; `taps[kx]` is the range of a
/// row that tap `kx` reads. Every slice is cut to the row length so the loop has no bounds checks.
#[inline(always)]
fn row_3x3(o: &mut [f32], r: [&[f32]; 3], taps: &[std::ops::Range<usize>; 3], f: &[f32; 9], bias: f32) {
    let n = o.len();
    let s = |ky: usize, kx: usize| &r[ky][taps[kx].clone()][..n];
    let (a0, a1, a2) = (s(0, 0), s(0, 1), s(0, 2));
    let (b0, b1, b2) = (s(1, 0), s(1, 1), s(1, 2));
    let (c0, c1, c2) = (s(2, 0), s(2, 1), s(2, 2));
    for x in 0..n {
        let top = a0[x] * f[0] + a1[x] * f[1] + a2[x] * f[2];
        let mid = b0[x] * f[3] + b1[x] * f[4] + b2[x] * f[5];
        let bot = c0[x] * f[6] + c1[x] * f[7] + c2[x] * f[8];
        o[x] = bias + top + mid + bot;
    }
}

/// Two consecutive output rows of a 3×3 filter with vertical stride and dilation 1, from the
/// four input rows they span: each loaded input value feeds both rows (6 loads per output
/// instead of 9). Sums in the same order as [`row_3x3`], so results do not depend on pairing.
#[inline(always)]
fn rows_3x3_pair(
    o0: &mut [f32],
    o1: &mut [f32],
    r: [&[f32]; 4],
    taps: &[std::ops::Range<usize>; 3],
    f: &[f32; 9],
    bias: f32,
) {
    let n = o0.len();
    let o1 = &mut o1[..n];
    let s = |ky: usize, kx: usize| &r[ky][taps[kx].clone()][..n];
    let (a0, a1, a2) = (s(0, 0), s(0, 1), s(0, 2));
    let (b0, b1, b2) = (s(1, 0), s(1, 1), s(1, 2));
    let (c0, c1, c2) = (s(2, 0), s(2, 1), s(2, 2));
    let (d0, d1, d2) = (s(3, 0), s(3, 1), s(3, 2));
    for x in 0..n {
        let (ra, rb, rc, rd) =
            ([a0[x], a1[x], a2[x]], [b0[x], b1[x], b2[x]], [c0[x], c1[x], c2[x]], [d0[x], d1[x], d2[x]]);
        let dot = |v: [f32; 3], k: usize| v[0] * f[k] + v[1] * f[k + 1] + v[2] * f[k + 2];
        o0[x] = bias + dot(ra, 0) + dot(rb, 3) + dot(rc, 6);
        o1[x] = bias + dot(rb, 0) + dot(rc, 3) + dot(rd, 6);
    }
}

/// The backward of [`depthwise_plane`] (without its activation) for the output gradient `dy`
/// (`OH × OW`): adds each tap's `Σ dy · x` to `dw` (`KH × KW`) and, with `dx`, the input
/// gradient `Σ w · dy` to `dx` (`H × W`).
///
/// The input is copied once into a zero-padded plane, so every tap of every output row reads
/// (and, for `dx`, writes) one run of that plane with no bounds checks: contiguous at width
/// stride 1, which vectorises. Padding contributes zeros to `dw` and its `dx` is dropped.
/// `scratch` is reused between calls.
pub fn depthwise_plane_backward(
    x: &[f32],
    filter: &[f32],
    dy: &[f32],
    w: &Window,
    dw: &mut [f32],
    dx: Option<&mut [f32]>,
    scratch: &mut Vec<f32>,
) {
    let (h, wd) = (w.input[0], w.input[1]);
    let (kh, kw) = (w.kernel[0], w.kernel[1]);
    let (oh, ow) = (w.output[0], w.output[1]);
    let (sh, sw) = (w.strides[0], w.strides[1]);
    let (dil_h, dil_w) = (w.dilations[0], w.dilations[1]);
    let (pt, pl) = (w.pad_begin[0], w.pad_begin[1]);
    if oh == 0 || ow == 0 || kh == 0 || kw == 0 {
        return;
    }
    // The padded plane: every position a tap reads, and the whole input.
    let ph = (pt + h).max((oh - 1) * sh + (kh - 1) * dil_h + 1);
    let pw = (pl + wd).max((ow - 1) * sw + (kw - 1) * dil_w + 1);
    let planes = if dx.is_some() { 2 } else { 1 };
    scratch.clear();
    scratch.resize(planes * ph * pw, 0.0);
    let (xp, dxp) = scratch.split_at_mut(ph * pw);
    for y in 0..h {
        xp[(y + pt) * pw + pl..][..wd].copy_from_slice(&x[y * wd..][..wd]);
    }
    let want_dx = dx.is_some();
    for ky in 0..kh {
        for kx in 0..kw {
            let k = ky * kw + kx;
            let wk = filter[k];
            let mut acc = 0.0f32;
            for oy in 0..oh {
                let at = (oy * sh + ky * dil_h) * pw + kx * dil_w;
                let g = &dy[oy * ow..][..ow];
                if sw == 1 {
                    acc += dot(g, &xp[at..][..ow]);
                    if want_dx {
                        for (d, &gv) in dxp[at..][..ow].iter_mut().zip(g) {
                            *d += wk * gv;
                        }
                    }
                } else {
                    for (i, &gv) in g.iter().enumerate() {
                        acc += gv * xp[at + i * sw];
                    }
                    if want_dx {
                        for (i, &gv) in g.iter().enumerate() {
                            dxp[at + i * sw] += wk * gv;
                        }
                    }
                }
            }
            dw[k] += acc;
        }
    }
    if let Some(dx) = dx {
        for y in 0..h {
            let src = &dxp[(y + pt) * pw + pl..][..wd];
            for (d, &v) in dx[y * wd..][..wd].iter_mut().zip(src) {
                *d += v;
            }
        }
    }
}

/// `Σ a·b` in eight interleaved partial sums (so it vectorises; the order is fixed).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut s = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            s[i] += x[i] * y[i];
        }
    }
    ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])) + tail
}
