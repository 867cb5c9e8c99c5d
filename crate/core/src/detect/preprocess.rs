//! Pixels → model input: resize (stretch or letterbox), channel order, normalisation, layout.
//!
//! Sampling is **half-pixel-centre bilinear without antialiasing**: output pixel `d` samples the
//! source at `s = (d + 0.5)·(src/dst) − 0.5`, clamped to `[0, src − 1]`, blending the two
//! neighbours `⌊s⌋` and `min(⌊s⌋ + 1, src − 1)`. That is OpenCV's `INTER_LINEAR` and PyTorch's
//! `interpolate(mode="bilinear", align_corners=False, antialias=False)` (up to their rounding),
//! and exactly what `tests/fixtures/make_fixtures.py` implements in numpy. Downscaling by large
//! factors therefore aliases, as it does in those pipelines the models were trained with.
//!
//! Per frame the work is one pass over the output pixels; the only allocations are two small
//! per-axis tables (`O(width + height)`) and, with [`preprocess`], the output tensor itself.
//! [`preprocess_into`] reuses a caller's buffer for webcam loops.

use super::profile::{ColorOrder, Layout, Profile, Resize};
use super::DetectError;
use crate::model::Tensor;
use serde::{Deserialize, Serialize};

/// Maps coordinates in model-input pixels back to original-image pixels:
/// `x_image = (x_input − pad_x) / scale_x` (and likewise for y).
///
/// For a stretch resize `scale_x = input_w / image_w` and the pads are 0; for a letterbox the
/// scales are those of the resized content (`content_w / image_w`, which rounding can make
/// differ slightly between axes) and the pads its top-left offset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Transform {
    /// Original image width in pixels.
    pub image_w: usize,
    /// Original image height in pixels.
    pub image_h: usize,
    /// Input pixels per image pixel, horizontally.
    pub scale_x: f32,
    /// Input pixels per image pixel, vertically.
    pub scale_y: f32,
    /// Left padding in input pixels.
    pub pad_x: f32,
    /// Top padding in input pixels.
    pub pad_y: f32,
}

impl Transform {
    /// The transform [`preprocess`] uses to fit an `image_w × image_h` image to `profile`, or an
    /// error for an empty image.
    pub fn new(profile: &Profile, image_w: usize, image_h: usize) -> Result<Transform, DetectError> {
        let g = Geometry::new(profile, image_w, image_h)?;
        Ok(g.transform(image_w, image_h))
    }

    /// A point in input pixels → original image pixels.
    pub fn to_image(&self, x: f32, y: f32) -> [f32; 2] {
        [(x - self.pad_x) / self.scale_x, (y - self.pad_y) / self.scale_y]
    }

    /// A point in original image pixels → input pixels (the inverse of [`Transform::to_image`]).
    pub fn to_input(&self, x: f32, y: f32) -> [f32; 2] {
        [x * self.scale_x + self.pad_x, y * self.scale_y + self.pad_y]
    }

    /// A box `x1, y1, x2, y2` in input pixels → image pixels, clipped to the image.
    pub fn box_to_image(&self, b: [f32; 4]) -> [f32; 4] {
        let [x1, y1] = self.to_image(b[0], b[1]);
        let [x2, y2] = self.to_image(b[2], b[3]);
        let (w, h) = (self.image_w as f32, self.image_h as f32);
        [x1.clamp(0.0, w), y1.clamp(0.0, h), x2.clamp(0.0, w), y2.clamp(0.0, h)]
    }
}

/// Where the resized image lands in the input: content size and top-left offset.
struct Geometry {
    in_w: usize,
    in_h: usize,
    content_w: usize,
    content_h: usize,
    left: usize,
    top: usize,
    pad: f32,
}

impl Geometry {
    fn new(profile: &Profile, image_w: usize, image_h: usize) -> Result<Geometry, DetectError> {
        if image_w == 0 || image_h == 0 {
            return Err(DetectError::EmptyImage { width: image_w, height: image_h });
        }
        let [in_w, in_h] = profile.size;
        if in_w == 0 || in_h == 0 {
            return Err(DetectError::Profile(format!(
                "`size` is {in_w}×{in_h}: use the model input's width and height"
            )));
        }
        Ok(match profile.resize {
            Resize::Stretch => Geometry { in_w, in_h, content_w: in_w, content_h: in_h, left: 0, top: 0, pad: 0.0 },
            Resize::Letterbox { pad, top_left } => {
                // One scale for both axes; content rounded half up to whole pixels (at least 1) and
                // centred, with the odd pixel of padding, if any, on the right/bottom (or in the
                // top-left corner, all padding right and below).
                let s = (in_w as f64 / image_w as f64).min(in_h as f64 / image_h as f64);
                let content_w = ((image_w as f64 * s).round() as usize).clamp(1, in_w);
                let content_h = ((image_h as f64 * s).round() as usize).clamp(1, in_h);
                Geometry {
                    in_w,
                    in_h,
                    content_w,
                    content_h,
                    left: if top_left { 0 } else { (in_w - content_w) / 2 },
                    top: if top_left { 0 } else { (in_h - content_h) / 2 },
                    pad,
                }
            }
        })
    }

    fn transform(&self, image_w: usize, image_h: usize) -> Transform {
        Transform {
            image_w,
            image_h,
            scale_x: self.content_w as f32 / image_w as f32,
            scale_y: self.content_h as f32 / image_h as f32,
            pad_x: self.left as f32,
            pad_y: self.top as f32,
        }
    }
}

/// One output coordinate's bilinear sample: the two source indices (pre-multiplied by `step`,
/// 4 bytes per pixel for columns, the row stride for rows) and their weights.
#[derive(Clone, Copy)]
struct Tap {
    o0: usize,
    o1: usize,
    w0: f32,
    w1: f32,
}

/// Half-pixel-centre taps for resizing `src` samples to `dst` (see the module docs).
fn taps(src: usize, dst: usize, step: usize, out: &mut Vec<Tap>) {
    out.clear();
    let scale = src as f64 / dst as f64;
    let last = src - 1;
    out.extend((0..dst).map(|d| {
        let s = ((d as f64 + 0.5) * scale - 0.5).clamp(0.0, last as f64);
        let i0 = (s.floor() as usize).min(last);
        let w1 = (s - i0 as f64) as f32;
        Tap { o0: i0 * step, o1: (i0 + 1).min(last) * step, w0: 1.0 - w1, w1 }
    }));
}

/// Colour reordering and normalisation, folded into one multiply-add per value.
struct Norm {
    /// Source (RGBA) channel of each model channel.
    src_ch: [usize; 3],
    /// `1 / (255·std[c])`.
    a: [f32; 3],
    /// `−mean[c] / std[c]`.
    b: [f32; 3],
}

impl Norm {
    /// The profile's colour order and normalisation: (v/255 − mean)/std = v·a + b.
    fn new(profile: &Profile) -> Norm {
        let src_ch = match profile.color {
            ColorOrder::Rgb => [0, 1, 2],
            ColorOrder::Bgr => [2, 1, 0],
        };
        let a = std::array::from_fn(|c| 1.0 / (255.0 * profile.std[c]));
        let b = std::array::from_fn(|c| -profile.mean[c] / profile.std[c]);
        Norm { src_ch, a, b }
    }

    /// A grey level `v` (0–255, the same in every channel) normalised per model channel.
    fn normalize(&self, v: f32) -> [f32; 3] {
        std::array::from_fn(|c| v * self.a[c] + self.b[c])
    }

    /// The three colour bytes of the pixel at byte offset `o`, in model channel order.
    #[inline(always)]
    fn rgb(&self, row: &[u8], o: usize) -> [f32; 3] {
        let p = &row[o..o + 4];
        self.src_ch.map(|s| p[s] as f32)
    }

    /// The normalised bilinear sample between source rows `row0`/`row1` and columns of `tx`.
    #[inline(always)]
    fn sample(&self, row0: &[u8], row1: &[u8], ty: &Tap, tx: &Tap) -> [f32; 3] {
        let (p00, p01) = (self.rgb(row0, tx.o0), self.rgb(row0, tx.o1));
        let (p10, p11) = (self.rgb(row1, tx.o0), self.rgb(row1, tx.o1));
        std::array::from_fn(|c| {
            let top = p00[c] * tx.w0 + p01[c] * tx.w1;
            let bottom = p10[c] * tx.w0 + p11[c] * tx.w1;
            (top * ty.w0 + bottom * ty.w1) * self.a[c] + self.b[c]
        })
    }
}

/// Everything [`preprocess_into`] computes before touching a pixel, for another executor (the
/// GPU's pre-processing kernel) to do the same arithmetic: the content rectangle, the bilinear
/// taps of every content column and row (source pixel indices and weights, from the same code),
/// the normalisation constants and the padding values.
#[derive(Debug, Clone, PartialEq)]
pub struct ResizePlan {
    /// Model input width and height.
    pub in_w: usize,
    /// Model input height.
    pub in_h: usize,
    /// The resized image's rectangle in the input: left, top, width, height.
    pub content: [usize; 4],
    /// Per content column: source column indices `x0`, `x1` and weights `w0`, `w1`.
    pub xs: Vec<(u32, u32, f32, f32)>,
    /// Per content row: source row indices and weights.
    pub ys: Vec<(u32, u32, f32, f32)>,
    /// Source (RGBA) channel of each model channel.
    pub src_ch: [usize; 3],
    /// Per model channel: `1 / (255·std)`.
    pub a: [f32; 3],
    /// Per model channel: `−mean / std`.
    pub b: [f32; 3],
    /// Per model channel: the normalised padding value.
    pub pad: [f32; 3],
    /// `true` for `[1, H, W, 3]`, else `[1, 3, H, W]`.
    pub nhwc: bool,
    /// Maps boxes back to the image.
    pub transform: Transform,
}

/// The [`ResizePlan`] of a `width × height` image for `profile` (errors as [`preprocess`]).
pub fn resize_plan(profile: &Profile, width: usize, height: usize) -> Result<ResizePlan, DetectError> {
    profile.validate()?;
    let g = Geometry::new(profile, width, height)?;
    let norm = Norm::new(profile);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    taps(width, g.content_w, 1, &mut xs);
    taps(height, g.content_h, 1, &mut ys);
    let t = |v: Vec<Tap>| v.into_iter().map(|t| (t.o0 as u32, t.o1 as u32, t.w0, t.w1)).collect();
    Ok(ResizePlan {
        in_w: g.in_w,
        in_h: g.in_h,
        content: [g.left, g.top, g.content_w, g.content_h],
        xs: t(xs),
        ys: t(ys),
        src_ch: norm.src_ch,
        a: norm.a,
        b: norm.b,
        pad: norm.normalize(g.pad),
        nhwc: profile.layout == Layout::Nhwc,
        transform: g.transform(width, height),
    })
}

/// RGBA pixels (`width × height × 4` bytes, row-major, alpha ignored) → the model input tensor
/// described by `profile` (`[1, 3, H, W]` or `[1, H, W, 3]`, float32), and the [`Transform`]
/// that maps boxes back to the image.
pub fn preprocess(
    profile: &Profile,
    width: usize,
    height: usize,
    rgba: &[u8],
) -> Result<(Tensor, Transform), DetectError> {
    let mut data = Vec::new();
    let t = preprocess_into(profile, width, height, rgba, &mut data)?;
    let [w, h] = profile.size;
    let shape = match profile.layout {
        Layout::Nchw => vec![1, 3, h, w],
        Layout::Nhwc => vec![1, h, w, 3],
    };
    let tensor = Tensor::f32(shape, data).map_err(|e| DetectError::Profile(e.to_string()))?;
    Ok((tensor, t))
}

/// As [`preprocess`], writing the tensor's elements into `out` (resized to fit; its allocation is
/// reused across calls), in the profile's layout.
pub fn preprocess_into(
    profile: &Profile,
    width: usize,
    height: usize,
    rgba: &[u8],
    out: &mut Vec<f32>,
) -> Result<Transform, DetectError> {
    profile.validate()?;
    let g = Geometry::new(profile, width, height)?;
    let need = width.checked_mul(height).and_then(|n| n.checked_mul(4));
    if need != Some(rgba.len()) {
        return Err(DetectError::RgbaLength { width, height, len: rgba.len() });
    }
    let (in_w, in_h) = (g.in_w, g.in_h);
    let plane = in_w * in_h;

    let norm = Norm::new(profile);
    let pad = norm.normalize(g.pad);

    out.clear();
    out.resize(3 * plane, 0.0);
    // Fill everything with the padding value, then overwrite the content rectangle. For a
    // stretch resize the content is the whole input and the fill is skipped.
    if g.content_w != in_w || g.content_h != in_h {
        match profile.layout {
            Layout::Nchw => {
                for c in 0..3 {
                    out[c * plane..(c + 1) * plane].fill(pad[c]);
                }
            }
            Layout::Nhwc => {
                for px in out.chunks_exact_mut(3) {
                    px.copy_from_slice(&pad);
                }
            }
        }
    }

    let stride = width * 4;
    let mut xs = Vec::with_capacity(g.content_w);
    let mut ys = Vec::with_capacity(g.content_h);
    taps(width, g.content_w, 4, &mut xs);
    taps(height, g.content_h, stride, &mut ys);

    // One output row at a time: the two source rows it blends, then every output column.
    let rows = |ty: &Tap| (&rgba[ty.o0..ty.o0 + stride], &rgba[ty.o1..ty.o1 + stride]);
    match profile.layout {
        Layout::Nchw => {
            let (p01, p2) = out.split_at_mut(2 * plane);
            let (p0, p1) = p01.split_at_mut(plane);
            for (cy, ty) in ys.iter().enumerate() {
                let (row0, row1) = rows(ty);
                let start = (g.top + cy) * in_w + g.left;
                let span = start..start + g.content_w;
                let dst = p0[span.clone()].iter_mut().zip(&mut p1[span.clone()]).zip(&mut p2[span]);
                for (((v0, v1), v2), tx) in dst.zip(&xs) {
                    [*v0, *v1, *v2] = norm.sample(row0, row1, ty, tx);
                }
            }
        }
        Layout::Nhwc => {
            for (cy, ty) in ys.iter().enumerate() {
                let (row0, row1) = rows(ty);
                let start = ((g.top + cy) * in_w + g.left) * 3;
                for (px, tx) in out[start..start + 3 * g.content_w].chunks_exact_mut(3).zip(&xs) {
                    px.copy_from_slice(&norm.sample(row0, row1, ty, tx));
                }
            }
        }
    }
    Ok(g.transform(width, height))
}
