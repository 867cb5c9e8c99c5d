//! One axis of a separable resize at a time (and every planned axis in turn, [`forward_axes`]): each output index along the axis reads a few input
//! indices with weights (2 for nearest and linear, 4 for cubic, a window that widens with the
//! downscale for antialiased filters), `None` where the resize extrapolates. The forward pass,
//! its adjoint (for training), and the extrapolation mask. A row of taps is anything that reads
//! as a slice of `(input index, weight)`: fixed-size arrays, or vectors for antialiased windows.

use super::checked_numel;
use crate::ops::grad::{out_grad, GradError};
use crate::ops::Tensor;

/// Per output index along an axis: `N` (input index, weight) taps, or `None` (extrapolated).
pub(crate) type Taps<const N: usize> = Vec<Option<[(usize, f32); N]>>;

/// One output index's taps: `(input index, weight)` pairs.
pub(crate) trait TapRow: AsRef<[(usize, f32)]> {}
impl<R: AsRef<[(usize, f32)]>> TapRow for R {}

/// Whether only the first tap counts (the others weigh nothing): the value is copied, so
/// infinities and NaNs at the other taps do not leak in.
#[inline(always)]
fn copy_only(t: &[(usize, f32)]) -> bool {
    t[1..].iter().all(|&(_, w)| w == 0.0)
}

/// `Σ x[i]·w` over the taps, the first product first (so two taps give `x0·w0 + x1·w1`).
#[inline(always)]
fn blend(t: &[(usize, f32)], at: impl Fn(usize) -> f32) -> f32 {
    t[1..].iter().fold(at(t[0].0) * t[0].1, |acc, &(i, w)| acc + at(i) * w)
}

/// Resamples axis `a` of `src` (shape `shape`) through per-output-index taps.
pub(crate) fn resample_axis<R: TapRow>(src: &[f32], shape: &[usize], a: usize, taps: &[Option<R>]) -> Vec<f32> {
    let inner: usize = shape[a + 1..].iter().product();
    let n_in = shape[a];
    let outer: usize = shape[..a].iter().product();
    let mut out = vec![0.0f32; outer * taps.len() * inner];
    if out.is_empty() {
        return out;
    }
    if inner == 1 {
        // The innermost axis: a plain gather per element.
        for (s, d) in src.chunks_exact(n_in).zip(out.chunks_exact_mut(taps.len())) {
            for (t, v) in taps.iter().zip(d.iter_mut()) {
                if let Some(t) = t.as_ref().map(|r| r.as_ref()) {
                    *v = if copy_only(t) { s[t[0].0] } else { blend(t, |i| s[i]) };
                }
            }
        }
        return out;
    }
    for (s, d) in src.chunks_exact(n_in * inner).zip(out.chunks_exact_mut(taps.len() * inner)) {
        for (t, row) in taps.iter().zip(d.chunks_exact_mut(inner)) {
            let Some(t) = t.as_ref().map(|r| r.as_ref()) else { continue };
            if copy_only(t) {
                row.copy_from_slice(&s[t[0].0 * inner..(t[0].0 + 1) * inner]);
            } else {
                for (j, o) in row.iter_mut().enumerate() {
                    *o = blend(t, |i| s[i * inner + j]);
                }
            }
        }
    }
    out
}

/// The adjoint of [`resample_axis`]: the gradient of its source (shape `shape`) from `g`, the
/// gradient of its output.
pub(crate) fn resample_axis_adjoint<R: TapRow>(g: &[f32], shape: &[usize], a: usize, taps: &[Option<R>]) -> Vec<f32> {
    let inner: usize = shape[a + 1..].iter().product();
    let n_in = shape[a];
    let outer: usize = shape[..a].iter().product();
    let mut src = vec![0.0f32; outer * n_in * inner];
    if src.is_empty() || taps.is_empty() {
        return src;
    }
    for (s, d) in src.chunks_exact_mut(n_in * inner).zip(g.chunks_exact(taps.len() * inner)) {
        for (t, row) in taps.iter().zip(d.chunks_exact(inner)) {
            let Some(t) = t.as_ref().map(|r| r.as_ref()) else { continue };
            // The forward copies the first tap alone when the others weigh nothing.
            let only = copy_only(t);
            for (k, &(i, w)) in t.iter().enumerate() {
                let w = if only {
                    if k == 0 {
                        1.0
                    } else {
                        0.0
                    }
                } else {
                    w
                };
                if k == 0 || w != 0.0 {
                    s[i * inner..(i + 1) * inner].iter_mut().zip(row).for_each(|(v, &g)| *v += g * w);
                }
            }
        }
    }
    src
}

/// Sets every element whose index along some axis is flagged in `outside` to `value`.
pub(crate) fn mark_outside(data: &mut [f32], shape: &[usize], outside: &[Vec<bool>], value: f32) {
    let rank = shape.len();
    let mut idx = vec![0usize; rank];
    for v in data.iter_mut() {
        if idx.iter().zip(outside).any(|(&i, o)| o[i]) {
            *v = value;
        }
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Keys' cubic convolution weights of the four taps `⌊c⌋ − 1 … ⌊c⌋ + 2` at fraction `t`
/// (ONNX `Resize`'s `cubic_coeff_a` = `a`; −0.75 by default, as PyTorch; −0.5 for TensorFlow).
pub(crate) fn cubic_weights(t: f32, a: f32) -> [f32; 4] {
    let near = |d: f32| ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0;
    let far = |d: f32| ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// Every resampled axis with its taps, innermost first, and the output shape.
pub(crate) type Plan<R> = (Vec<(usize, Vec<Option<R>>)>, Vec<usize>);

/// The forward passes over planned axes: the output values and shape. `crop`: the value
/// tf_crop_and_resize writes where it extrapolates (`None` for the other coordinate modes).
pub(crate) fn forward_axes<R: TapRow>(
    x: &[f32],
    shape: &[usize],
    plan: Plan<R>,
    crop: Option<f32>,
) -> (Vec<f32>, Vec<usize>) {
    let (axes, out_shape) = plan;
    let mut data = x.to_vec();
    let mut cur = shape.to_vec();
    let mut outside: Vec<Vec<bool>> = Vec::new();
    for (a, taps) in &axes {
        if out_shape[*a] == 0 || shape[*a] == 0 {
            cur[*a] = out_shape[*a];
            data.clear();
            continue;
        }
        let identity = shape[*a] == out_shape[*a] && is_identity(taps);
        if !identity {
            data = resample_axis(&data, &cur, *a, taps);
            cur[*a] = out_shape[*a];
        }
        if crop.is_some() {
            outside.push(taps.iter().map(Option::is_none).collect());
        }
    }
    if outside.iter().any(|o| o.contains(&true)) {
        outside.reverse(); // now in axis order
        mark_outside(&mut data, &out_shape, &outside, crop.unwrap_or(0.0));
    }
    (data, out_shape)
}

/// The adjoint of [`forward_axes`]: the input's gradient, `None` when the output has none;
/// `crop`: tf_crop_and_resize (its extrapolated elements take no gradient).
pub(crate) fn adjoint_axes<R: TapRow>(
    x: &[f32],
    grads: &[Option<&Tensor>],
    shape: &[usize],
    plan: Plan<R>,
    crop: bool,
) -> Result<Option<Vec<f32>>, GradError> {
    let (axes, out_shape) = plan;
    let Some(g) = out_grad(grads, 0, checked_numel(&out_shape)?)? else { return Ok(None) };
    if x.is_empty() || g.is_empty() {
        return Ok(Some(vec![0.0; x.len()]));
    }
    let mut g = g.to_vec();
    if crop {
        let mut outside: Vec<Vec<bool>> =
            axes.iter().map(|(_, taps)| taps.iter().map(Option::is_none).collect()).collect();
        outside.reverse(); // now in axis order
        mark_outside(&mut g, &out_shape, &outside, 0.0);
    }
    // The passes the forward made, each with the shape it read.
    let mut passes = Vec::new();
    let mut cur = shape.to_vec();
    for (a, taps) in &axes {
        let identity = shape[*a] == out_shape[*a] && is_identity(taps);
        if !identity {
            passes.push((*a, taps, cur.clone()));
            cur[*a] = out_shape[*a];
        }
    }
    for (a, taps, src_shape) in passes.into_iter().rev() {
        g = resample_axis_adjoint(&g, &src_shape, a, taps);
    }
    Ok(Some(g))
}

/// Whether an axis's taps copy each input index to the same output index.
pub(crate) fn is_identity<R: TapRow>(taps: &[Option<R>]) -> bool {
    taps.iter().enumerate().all(|(i, t)| {
        matches!(t.as_ref().map(|t| t.as_ref()), Some(t) if t[0] == (i, 1.0) && t[1..].iter().all(|&(_, w)| w == 0.0))
    })
}
