//! RoiAlign (opsets 10, 16): for each region of interest `[x1, y1, x2, y2]` (times
//! `spatial_scale`) on image `batch_indices[r]` of `X` `[N, C, H, W]`, an `output_height ×
//! output_width` grid of bins, each the average (or maximum) of `sampling_ratio²` bilinear
//! samples (`⌈bin size⌉` per axis when `sampling_ratio` is 0). The second stage of two-stage
//! detectors (torchvision's Faster R-CNN, Mask R-CNN) pools its proposals with it.
//!
//! As onnxruntime's CPU kernel and the ONNX reference compute it, in float32: `half_pixel`
//! (opset 16's default) shifts the region by −0.5 pixel; `output_half_pixel` (opset 10's only
//! mode, torchvision's `aligned=False`) does not and makes regions at least 1×1; samples more than
//! one pixel outside the map count as 0; `max` takes, per sample, the largest of its four
//! weighted taps (onnxruntime's reading of the mode).

use super::{f32_fact, f32_input, f32_output, input_shape};
use crate::model::{DType, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// A built RoiAlign node.
#[derive(Debug, Clone)]
pub struct RoiAlign {
    half_pixel: bool,
    max: bool,
    out_h: usize,
    out_w: usize,
    sampling_ratio: usize,
    spatial_scale: f32,
}

/// Samples one region may take (bins × samples per bin), so a huge region with an adaptive
/// sampling ratio fails instead of running for hours.
const MAX_SAMPLES_PER_ROI: usize = 1 << 24;

/// Builds RoiAlign.
pub fn build(node: &Node, ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let default_mode = if ctx.opset >= 16 { "half_pixel" } else { "output_half_pixel" };
    let half_pixel = match node.attrs.string("coordinate_transformation_mode", default_mode) {
        "half_pixel" => true,
        "output_half_pixel" => false,
        m => {
            return Err(OpError::malformed(format!(
                "coordinate_transformation_mode `{m}` is not half_pixel or output_half_pixel"
            )))
        }
    };
    let max = match node.attrs.string("mode", "avg") {
        "avg" => false,
        "max" => true,
        m => return Err(OpError::malformed(format!("mode `{m}` is not avg or max"))),
    };
    let size = |name: &str| -> Result<usize, OpError> {
        match node.attrs.int(name, 1) {
            v @ 1..=4096 => Ok(v as usize),
            v => Err(OpError::malformed(format!("{name} {v} must be between 1 and 4096"))),
        }
    };
    let sampling_ratio = match node.attrs.int("sampling_ratio", 0) {
        v @ 0..=1024 => v as usize,
        v => return Err(OpError::malformed(format!("sampling_ratio {v} must be between 0 and 1024"))),
    };
    let spatial_scale = node.attrs.float("spatial_scale", 1.0);
    if !(spatial_scale.is_finite() && spatial_scale > 0.0) {
        return Err(OpError::malformed(format!("spatial_scale {spatial_scale} must be a positive number")));
    }
    Ok(Box::new(RoiAlign {
        half_pixel,
        max,
        out_h: size("output_height")?,
        out_w: size("output_width")?,
        sampling_ratio,
        spatial_scale,
    }))
}

/// One bilinear sample: four positions in the map and their weights (all 0 outside it).
#[derive(Clone, Copy, Default)]
struct Tap {
    pos: [usize; 4],
    w: [f32; 4],
}

/// The sample at `(y, x)` on an `h × w` map, as onnxruntime's `pre_calc_for_bilinear_interpolate`.
fn tap(y: f32, x: f32, h: usize, w: usize) -> Tap {
    if y < -1.0 || y > h as f32 || x < -1.0 || x > w as f32 {
        return Tap::default();
    }
    let (y, y0, y1) = axis(y, h);
    let (x, x0, x1) = axis(x, w);
    let (ly, lx) = (y - y0 as f32, x - x0 as f32);
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    Tap { pos: [y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1], w: [hy * hx, hy * lx, ly * hx, ly * lx] }
}

/// One axis of a sample inside a map of size `n` (as onnxruntime's pre-calculation): the
/// coordinate clamped at 0, its lower and upper neighbours, both the last index past the end
/// (where the coordinate becomes that index).
fn axis(v: f32, n: usize) -> (f32, usize, usize) {
    let v = v.max(0.0);
    let lo = v as usize;
    if lo >= n - 1 {
        ((n - 1) as f32, n - 1, n - 1)
    } else {
        (v, lo, lo + 1)
    }
}

impl RoiAlign {
    fn check(&self, x: &[usize], rois: &[usize], idx: &[usize]) -> Result<Vec<usize>, OpError> {
        let &[_, c, h, w] = x else {
            return Err(OpError::mismatch(format!("X must be 4-D [N, C, H, W], got shape {x:?}")));
        };
        if h == 0 || w == 0 {
            return Err(OpError::mismatch(format!("X has an empty feature map, shape {x:?}")));
        }
        let &[r, 4] = rois else {
            return Err(OpError::mismatch(format!("rois must be [num_rois, 4], got shape {rois:?}")));
        };
        if idx != [r] {
            return Err(OpError::mismatch(format!("batch_indices must be [{r}] (one per region), got shape {idx:?}")));
        }
        Ok(vec![r, c, self.out_h, self.out_w])
    }

    /// The taps of every sample of one region, bin by bin, and the samples per bin.
    fn taps(&self, roi: &[f32], h: usize, w: usize) -> Result<(Vec<Tap>, usize), OpError> {
        let offset = if self.half_pixel { 0.5 } else { 0.0 };
        let s = self.spatial_scale;
        let (x1, y1, x2, y2) = (roi[0] * s - offset, roi[1] * s - offset, roi[2] * s - offset, roi[3] * s - offset);
        let (mut rw, mut rh) = (x2 - x1, y2 - y1);
        if !self.half_pixel {
            rw = rw.max(1.0);
            rh = rh.max(1.0);
        }
        if !(rw.is_finite() && rh.is_finite()) {
            return Err(OpError::mismatch(format!("region {roi:?} is not finite")));
        }
        let (bin_h, bin_w) = (rh / self.out_h as f32, rw / self.out_w as f32);
        let grid =
            |size: f32| if self.sampling_ratio > 0 { self.sampling_ratio } else { size.ceil().max(0.0) as usize };
        let (gh, gw) = (grid(bin_h), grid(bin_w));
        let n = (gh.saturating_mul(gw)).saturating_mul(self.out_h * self.out_w);
        if n > MAX_SAMPLES_PER_ROI {
            return Err(OpError::limit(format!(
                "region {roi:?} needs {n} samples (over {MAX_SAMPLES_PER_ROI}): give sampling_ratio, or check the regions' scale"
            )));
        }
        let mut taps = Vec::with_capacity(n);
        for ph in 0..self.out_h {
            for pw in 0..self.out_w {
                for iy in 0..gh {
                    let y = y1 + ph as f32 * bin_h + (iy as f32 + 0.5) * bin_h / gh as f32;
                    for ix in 0..gw {
                        let x = x1 + pw as f32 * bin_w + (ix as f32 + 0.5) * bin_w / gw as f32;
                        taps.push(tap(y, x, h, w));
                    }
                }
            }
        }
        Ok((taps, gh * gw))
    }
}

impl Op for RoiAlign {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = f32_fact(inputs, 0, "X")?;
        let rois = f32_fact(inputs, 1, "rois")?;
        let idx = input_fact(inputs, 2)?;
        if !matches!(idx.dtype, DType::I64 | DType::I32) {
            return Err(OpError::mismatch(format!("batch_indices must be int64, got {:?}", idx.dtype)));
        }
        Ok(vec![Fact::new(DType::F32, self.check(&x.shape, &rois.shape, &idx.shape)?)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = f32_input(inputs, 0, "X")?;
        let rois = f32_input(inputs, 1, "rois")?;
        let idx = input(inputs, 2)?.to_i64_vec().map_err(|e| OpError::mismatch(format!("batch_indices: {e}")))?;
        let xs = input_shape(inputs, 0).unwrap_or_default();
        let out = self.check(xs, input_shape(inputs, 1).unwrap_or_default(), &[idx.len()])?;
        let (n, c, h, w) = (xs[0], xs[1], xs[2], xs[3]);
        let bins = self.out_h * self.out_w;
        let mut y = vec![0f32; out.iter().product()];
        for (r, (roi, &b)) in rois.chunks_exact(4).zip(&idx).enumerate() {
            let b = usize::try_from(b).ok().filter(|&b| b < n).ok_or_else(|| {
                OpError::mismatch(format!("batch_indices[{r}] = {b} is not an image of X (it has {n})"))
            })?;
            let (taps, per_bin) = self.taps(roi, h, w)?;
            for ch in 0..c {
                let plane = &x[(b * c + ch) * h * w..][..h * w];
                let dst = &mut y[(r * c + ch) * bins..][..bins];
                for (o, bin) in dst.iter_mut().zip(taps.chunks(per_bin.max(1))) {
                    let sample = |t: &Tap| -> [f32; 4] { std::array::from_fn(|k| t.w[k] * plane[t.pos[k]]) };
                    *o = if per_bin == 0 {
                        0.0
                    } else if self.max {
                        bin.iter()
                            .map(|t| sample(t).into_iter().fold(f32::NEG_INFINITY, f32::max))
                            .fold(f32::NEG_INFINITY, f32::max)
                    } else {
                        let mut acc = 0f32;
                        for t in bin {
                            let v = sample(t);
                            acc += v[0] + v[1] + v[2] + v[3];
                        }
                        acc / per_bin as f32
                    };
                }
            }
        }
        Ok(vec![f32_output(out, y)?])
    }
}
