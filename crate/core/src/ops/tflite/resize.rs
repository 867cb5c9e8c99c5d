//! `qplay.tfl.ResizeBilinear` and `qplay.tfl.ResizeNearest`: TFLite's int8 resizes on NHWC
//! (input and output share their quantization).
//!
//! - Bilinear on uint8: `reference_ops::ResizeBilinear<uint8_t>`, in float (weights from the
//!   float source position, the sum plus 0.5 truncated).
//! - Bilinear on int8 and int16: `reference_ops::ResizeBilinearInteger` — source positions in 10-bit fixed
//!   point (`scale_10 = round(2^10 · in / out)`), the four taps weighted in 20 bits and the sum
//!   rounded half away from zero (`(v ± 2^19) / 2^20`).
//! - Nearest: `reference_ops::ResizeNearestNeighbor` — the source index from a float scale,
//!   floored (or rounded with aligned corners).

use super::{codes_of, eval_codes, infer_codes, Code, PerCode};
use crate::model::{DType, Node, Tensor};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// The op types.
pub const BILINEAR: &str = "qplay.tfl.ResizeBilinear";
/// Nearest neighbour.
pub const NEAREST: &str = "qplay.tfl.ResizeNearest";

/// A built int8 resize.
#[derive(Debug, Clone)]
pub struct TflResize {
    /// Bilinear (`false`: nearest).
    pub bilinear: bool,
    /// `[height, width]` of the output.
    pub size: [usize; 2],
    /// `align_corners`.
    pub align_corners: bool,
    /// `half_pixel_centers`.
    pub half_pixel: bool,
}

fn build(node: &Node, bilinear: bool) -> Result<Box<dyn Op>, OpError> {
    let size = match node.attrs.ints("size") {
        Some([h, w]) if (1..1 << 16).contains(h) && (1..1 << 16).contains(w) => [*h as usize, *w as usize],
        v => return Err(OpError::malformed(format!("size {v:?} must be two positive values"))),
    };
    Ok(Box::new(TflResize {
        bilinear,
        size,
        align_corners: node.attrs.int("align_corners", 0) != 0,
        half_pixel: node.attrs.int("half_pixel_centers", 0) != 0,
    }))
}

/// Builds `qplay.tfl.ResizeBilinear` (`size`, `align_corners`, `half_pixel_centers`).
pub fn build_bilinear(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    build(node, true)
}

/// Builds `qplay.tfl.ResizeNearest`.
pub fn build_nearest(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    build(node, false)
}

impl TflResize {
    /// `scale_10` of an axis of `len` resized to `out` (`ResizeBilinearInteger`).
    fn scale10(&self, len: usize, out: usize) -> i32 {
        let (len, out) = (len as i32, out as i32);
        if self.align_corners && out > 1 {
            ((1 << 10) * (len - 1) + (out - 1) / 2) / (out - 1)
        } else {
            ((1 << 10) * len + out / 2) / out
        }
    }

    /// The source taps of each output index along an axis of `len` resized to `out`, for the
    /// resizes the integer kernels compute (nearest, and bilinear on int8 / int16 codes):
    /// `(lower, upper, fraction)` with the fraction in 1/1024 (`ResizeBilinearInteger`'s), or
    /// `(index, index, 0)` for nearest. `None` for a bilinear resize of uint8 codes, which
    /// LiteRT computes in float.
    pub fn axis_taps(&self, len: usize, out: usize, codes: DType) -> Option<Vec<(usize, usize, i32)>> {
        if !self.bilinear {
            return Some(
                (0..out)
                    .map(|v| {
                        let i = nearest(v, len, out, self.align_corners, self.half_pixel);
                        (i, i, 0)
                    })
                    .collect(),
            );
        }
        if codes == DType::U8 || len == 0 {
            return None;
        }
        let scale = self.scale10(len, out);
        Some(
            (0..out)
                .map(|v| {
                    let (s, lo, hi) = taps10(v as i32, scale, self.half_pixel, len as i32);
                    (lo, hi, s - (1 << 10) * lo as i32)
                })
                .collect(),
        )
    }
}

/// `ComputeInterpolationValuesInteger`: the 10-bit source position and its two neighbours.
fn taps10(v: i32, scale_10: i32, half_pixel: bool, len: i32) -> (i32, usize, usize) {
    let scaled = if half_pixel { v * scale_10 + scale_10 / 2 - (1 << 9) } else { v * scale_10 };
    let lower = (scaled / (1 << 10)).max(0);
    let upper = ((scaled + (1 << 10) - 1) / (1 << 10)).min(len - 1);
    (scaled, lower as usize, upper.max(0) as usize)
}

/// `ComputeInterpolationValues` (float): the source position and its two neighbours.
pub(crate) fn taps_f32(v: usize, scale: f32, half_pixel: bool, len: usize) -> (f32, usize, usize) {
    let scaled = if half_pixel { (v as f32 + 0.5) * scale - 0.5 } else { v as f32 * scale };
    let lower = (scaled.floor() as i32).max(0) as usize;
    let upper = (scaled.ceil() as i32).min(len as i32 - 1).max(0) as usize;
    (scaled, lower, upper)
}

/// `GetNearestNeighbor`.
fn nearest(v: usize, len: usize, out: usize, align: bool, half: bool) -> usize {
    let scale = if align && out > 1 { (len - 1) as f32 / (out - 1) as f32 } else { len as f32 / out as f32 };
    let offset = if half { 0.5f32 } else { 0.0 };
    let pos = (v as f32 + offset) * scale;
    let i = if align { pos.round() as i64 } else { pos.floor() as i64 };
    i.min(len as i64 - 1).max(0) as usize
}

impl Op for TflResize {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        infer_codes(self, inputs)
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        eval_codes(self, inputs)
    }
}

impl PerCode for TflResize {
    fn shape(&self, x: &[usize]) -> Result<Vec<usize>, OpError> {
        match x {
            [n, _, _, c] => Ok(vec![*n, self.size[0], self.size[1], *c]),
            _ => Err(OpError::mismatch(format!("the input {x:?} must be NHWC"))),
        }
    }

    fn run<T: Code>(&self, x: &Tensor) -> Result<Tensor, OpError> {
        let xv = codes_of::<T>(x, "the input")?;
        let [n, h, w, c] = <[usize; 4]>::try_from(x.shape.as_slice())
            .map_err(|_| OpError::mismatch(format!("the input {:?} must be NHWC", x.shape)))?;
        let [oh, ow] = self.size;
        let mut y = Vec::with_capacity(n * oh * ow * c);
        let at = |b: usize, iy: usize, ix: usize| ((b * h + iy) * w + ix) * c;
        if h == 0 || w == 0 {
            return Err(OpError::mismatch("the input is empty"));
        }
        if !self.bilinear {
            for b in 0..n {
                for oy in 0..oh {
                    let iy = nearest(oy, h, oh, self.align_corners, self.half_pixel);
                    for ox in 0..ow {
                        let ix = nearest(ox, w, ow, self.align_corners, self.half_pixel);
                        y.extend_from_slice(&xv[at(b, iy, ix)..at(b, iy, ix) + c]);
                    }
                }
            }
        } else if T::DTYPE == DType::U8 {
            // uint8: LiteRT's reference kernel is the float template (`ResizeBilinear<uint8_t>`):
            // float weights, + 0.5, truncated.
            let scale = |len: usize, out: usize| -> f32 {
                if self.align_corners && out > 1 {
                    (len - 1) as f32 / (out - 1) as f32
                } else {
                    len as f32 / out as f32
                }
            };
            let (hs, ws) = (scale(h, oh), scale(w, ow));
            for b in 0..n {
                for oy in 0..oh {
                    let (fy, y0, y1) = taps_f32(oy, hs, self.half_pixel, h);
                    for ox in 0..ow {
                        let (fx, x0, x1) = taps_f32(ox, ws, self.half_pixel, w);
                        let (dy, dx) = (fy - y0 as f32, fx - x0 as f32);
                        for ch in 0..c {
                            let v = |iy: usize, ix: usize| xv[at(b, iy, ix) + ch].get() as f32;
                            let sum = v(y0, x0) * (1.0 - dy) * (1.0 - dx)
                                + v(y1, x0) * dy * (1.0 - dx)
                                + v(y0, x1) * (1.0 - dy) * dx
                                + v(y1, x1) * dy * dx
                                + 0.5;
                            y.push(T::put((sum as i32).clamp(T::MIN, T::MAX)));
                        }
                    }
                }
            }
        } else {
            let (hs, ws) = (self.scale10(h, oh), self.scale10(w, ow));
            for b in 0..n {
                for oy in 0..oh {
                    let (sy, y0, y1) = taps10(oy as i32, hs, self.half_pixel, h as i32);
                    let fy = (sy - (1 << 10) * y0 as i32) as i64;
                    for ox in 0..ow {
                        let (sx, x0, x1) = taps10(ox as i32, ws, self.half_pixel, w as i32);
                        let fx = (sx - (1 << 10) * x0 as i32) as i64;
                        for ch in 0..c {
                            let v = |iy: usize, ix: usize| xv[at(b, iy, ix) + ch].get() as i64;
                            let sum = v(y0, x0) * ((1 << 10) - fy) * ((1 << 10) - fx)
                                + v(y1, x0) * fy * ((1 << 10) - fx)
                                + v(y0, x1) * ((1 << 10) - fy) * fx
                                + v(y1, x1) * fy * fx;
                            let round = if sum > 0 { 1i64 << 19 } else { -(1i64 << 19) };
                            y.push(T::put(((sum + round) / (1 << 20)) as i32));
                        }
                    }
                }
            }
        }
        Ok(Tensor { shape: vec![n, oh, ow, c], data: T::data(y) })
    }
}
