//! `Resize` (opsets 10–21) and `Upsample` (opset 9): nearest, (multi)linear and cubic
//! interpolation of any axes of a float tensor.
//!
//! - Opset 10 `Resize` and `Upsample` take `scales` as input 1 and use the legacy coordinates
//!   (`asymmetric`, nearest index truncated when enlarging and rounded up when shrinking, as
//!   onnxruntime does).
//! - Opset 11+ takes `roi`, `scales`, `sizes` (exactly one of the last two; opset 13+ lets the
//!   unused ones be omitted), `coordinate_transformation_mode`, `nearest_mode`,
//!   `extrapolation_value` and, from opset 18, `axes` and `keep_aspect_ratio_policy`.
//!
//! Every mode is separable, so the output is built one axis at a time ([`super::resample`]):
//! each resized axis gets a table of (input index, weight) taps per output index — two for
//! nearest and linear, four for cubic (Keys' kernel with `cubic_coeff_a`, the taps clamped to
//! the edge, or with `exclude_outside` dropped and the rest renormalised, as onnxruntime) — and
//! one pass per axis applies it. On `[N, C, H, W]` that is a pass over contiguous rows for `H`
//! and a short gather for `W`. With `antialias` (opset 18), linear and cubic filters stretch by
//! `1/scale` on the axes that shrink (a window of taps whose weights are normalised to sum to 1,
//! as ONNX's reference computes it), on the CPU.

use super::resample::{adjoint_axes, cubic_weights, forward_axes, Plan, Taps};
use super::{checked_numel, f32_fact, f32_input, f32_output};
use crate::model::{DType, Node};
use crate::ops::grad::{f32_tensor, Backward, GradError, Grads};
use crate::ops::{AxisTaps, BuildCtx, Fact, Op, OpError, Tensor};

/// Interpolation mode.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Nearest,
    Linear,
    /// Keys' cubic kernel with coefficient `a`; `exclude_outside` drops taps outside the input.
    Cubic {
        a: f32,
        exclude_outside: bool,
    },
}

/// How an output coordinate maps back to an input coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coord {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
    TfCropAndResize,
}

/// How a fractional input coordinate picks the nearest index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nearest {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
    /// Opset < 11: truncate when enlarging, round up when shrinking.
    Legacy,
}

/// How `sizes` constrains the output with `keep_aspect_ratio_policy` (opset 18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aspect {
    Stretch,
    NotLarger,
    NotSmaller,
}

/// A built `Resize` or `Upsample` node.
#[derive(Debug, Clone)]
pub struct Resize {
    mode: Mode,
    coord: Coord,
    nearest: Nearest,
    extrapolation: f32,
    axes: Option<Vec<i64>>,
    aspect: Aspect,
    /// Opset ≥ 11 input layout (X, roi, scales, sizes) rather than (X, scales).
    has_roi_and_sizes: bool,
    /// `Upsample`-7 style `scales` attribute.
    attr_scales: Option<Vec<f32>>,
    /// Linear and cubic filters stretch by `1/scale` where an axis shrinks.
    antialias: bool,
    /// `exclude_outside`, for the antialiased filters of either mode (cubic keeps it in `mode`).
    exclude_outside: bool,
}

fn parse_mode(node: &Node) -> Result<Mode, OpError> {
    let a = &node.attrs;
    match a.string("mode", "nearest") {
        "nearest" => Ok(Mode::Nearest),
        "linear" | "bilinear" => Ok(Mode::Linear),
        "cubic" | "bicubic" => {
            let coeff = a.float("cubic_coeff_a", -0.75);
            if !coeff.is_finite() {
                return Err(OpError::malformed(format!("cubic_coeff_a {coeff} must be finite")));
            }
            Ok(Mode::Cubic { a: coeff, exclude_outside: a.int("exclude_outside", 0) != 0 })
        }
        other => Err(OpError::malformed(format!("mode `{other}` is not one of nearest, linear, cubic"))),
    }
}

/// Builds `Resize` (attributes per opset as described in the module docs).
pub fn build_resize(node: &Node, ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let a = &node.attrs;
    let mode = parse_mode(node)?;
    if ctx.opset < 11 {
        return Ok(Box::new(Resize::legacy(mode, None)));
    }
    let coord = match a.string("coordinate_transformation_mode", "half_pixel") {
        "half_pixel" => Coord::HalfPixel,
        "half_pixel_symmetric" => Coord::HalfPixelSymmetric,
        "pytorch_half_pixel" => Coord::PytorchHalfPixel,
        "align_corners" => Coord::AlignCorners,
        "asymmetric" => Coord::Asymmetric,
        "tf_half_pixel_for_nn" => Coord::TfHalfPixelForNn,
        "tf_crop_and_resize" => Coord::TfCropAndResize,
        other => {
            return Err(OpError::unsupported(format!("coordinate_transformation_mode `{other}` is not supported")))
        }
    };
    let nearest = match a.string("nearest_mode", "round_prefer_floor") {
        "round_prefer_floor" => Nearest::RoundPreferFloor,
        "round_prefer_ceil" => Nearest::RoundPreferCeil,
        "floor" => Nearest::Floor,
        "ceil" => Nearest::Ceil,
        other => return Err(OpError::unsupported(format!("nearest_mode `{other}` is not supported"))),
    };
    let aspect = match a.string("keep_aspect_ratio_policy", "stretch") {
        "stretch" => Aspect::Stretch,
        "not_larger" => Aspect::NotLarger,
        "not_smaller" => Aspect::NotSmaller,
        other => return Err(OpError::unsupported(format!("keep_aspect_ratio_policy `{other}` is not supported"))),
    };
    Ok(Box::new(Resize {
        mode,
        coord,
        nearest,
        extrapolation: a.float("extrapolation_value", 0.0),
        axes: a.ints("axes").map(<[i64]>::to_vec),
        aspect,
        has_roi_and_sizes: true,
        attr_scales: None,
        antialias: a.int("antialias", 0) != 0 && mode != Mode::Nearest,
        exclude_outside: a.int("exclude_outside", 0) != 0,
    }))
}

/// Builds `Upsample` (`mode`; `scales` as an input, or as an attribute in old exports).
pub fn build_upsample(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let mode = parse_mode(node)?;
    Ok(Box::new(Resize::legacy(mode, node.attrs.floats("scales").map(<[f32]>::to_vec))))
}

impl Resize {
    /// The axes in the order `eval` resamples them, each with its per-output-index taps (two
    /// `(input index, weight)` pairs; `None` where the op extrapolates), and the output shape —
    /// so that another executor (the GPU's) does the same arithmetic. `x` is input 0's shape,
    /// `inputs` every input's value (input 0's may be absent).
    /// Cubic and antialiased resizes have more taps and are not offered (an error).
    pub fn axis_taps(&self, x: &[usize], inputs: &[Option<&Tensor>]) -> Result<AxisTaps, OpError> {
        if matches!(self.mode, Mode::Cubic { .. }) {
            return Err(OpError::unsupported("cubic Resize has four taps per axis"));
        }
        if self.antialias {
            return Err(OpError::unsupported("antialiased Resize has a window of taps per axis"));
        }
        self.plan_axes(x, inputs, Self::taps)
    }
}

/// The output size and the scale used for coordinates, per axis.
type Target = (Vec<usize>, Vec<f32>);

impl Resize {
    fn legacy(mode: Mode, attr_scales: Option<Vec<f32>>) -> Resize {
        Resize {
            mode,
            coord: Coord::Asymmetric,
            nearest: Nearest::Legacy,
            extrapolation: 0.0,
            axes: None,
            aspect: Aspect::Stretch,
            has_roi_and_sizes: false,
            attr_scales,
            antialias: false,
            exclude_outside: false,
        }
    }

    /// Input positions of (roi, scales, sizes).
    fn slots(&self) -> (Option<usize>, usize, Option<usize>) {
        if self.has_roi_and_sizes {
            (Some(1), 2, Some(3))
        } else {
            (None, 1, None)
        }
    }

    /// Output shape and per-axis scales from `scales` or `sizes` (empty means not given).
    fn target(&self, shape: &[usize], scales: &[f32], sizes: &[i64]) -> Result<Target, OpError> {
        let rank = shape.len();
        let axes: Vec<usize> = match &self.axes {
            None => (0..rank).collect(),
            Some(a) => {
                let v: Vec<usize> =
                    a.iter().map(|&x| super::normalize_axis(x, rank, "axes value")).collect::<Result<_, _>>()?;
                if (1..v.len()).any(|i| v[..i].contains(&v[i])) {
                    return Err(OpError::malformed(format!("axes {a:?} repeats an axis")));
                }
                v
            }
        };
        let mut out = shape.to_vec();
        let mut scale = vec![1.0f32; rank];
        match (scales.is_empty(), sizes.is_empty()) {
            (false, true) => {
                if scales.len() != axes.len() {
                    return Err(OpError::malformed(format!("scales {scales:?} should have {} values", axes.len())));
                }
                for (&a, &s) in axes.iter().zip(scales) {
                    if !(s > 0.0 && s.is_finite()) {
                        return Err(OpError::malformed(format!("scales must be positive and finite, got {scales:?}")));
                    }
                    let n = (shape[a] as f32 * s).floor();
                    if n >= usize::MAX as f32 {
                        return Err(OpError::limit(format!("scale {s} makes axis {a} too large")));
                    }
                    (out[a], scale[a]) = (n as usize, s);
                }
            }
            (true, false) => {
                if sizes.len() != axes.len() {
                    return Err(OpError::malformed(format!("sizes {sizes:?} should have {} values", axes.len())));
                }
                let sizes: Vec<usize> = sizes
                    .iter()
                    .map(|&s| {
                        usize::try_from(s)
                            .map_err(|_| OpError::malformed(format!("sizes must be non-negative, got {sizes:?}")))
                    })
                    .collect::<Result<_, _>>()?;
                let ratio = |i: usize| sizes[i] as f32 / shape[axes[i]] as f32;
                match self.aspect {
                    Aspect::Stretch => {
                        for (i, &a) in axes.iter().enumerate() {
                            (out[a], scale[a]) = (sizes[i], ratio(i));
                        }
                    }
                    Aspect::NotLarger | Aspect::NotSmaller => {
                        let ratios = (0..axes.len()).map(ratio);
                        let s = if self.aspect == Aspect::NotLarger {
                            ratios.fold(f32::INFINITY, f32::min)
                        } else {
                            ratios.fold(0.0, f32::max)
                        };
                        for &a in &axes {
                            (out[a], scale[a]) = ((s * shape[a] as f32 + 0.5).floor() as usize, s);
                        }
                    }
                }
            }
            (false, false) => return Err(OpError::malformed("only one of scales and sizes may be given")),
            (true, true) => return Err(OpError::malformed("one of scales and sizes must be given")),
        }
        for (a, (&i, &o)) in shape.iter().zip(&out).enumerate() {
            if i == 0 && o > 0 {
                return Err(OpError::mismatch(format!("axis {a} is empty and cannot be resized to {o}")));
            }
        }
        checked_numel(&out)?;
        Ok((out, scale))
    }

    /// Input coordinate of output index `x` along an axis (`n_in → n_out`, scale `s`, roi
    /// `(start, end)` for tf_crop_and_resize).
    fn source_coord(&self, x: usize, n_in: usize, n_out: usize, s: f32, roi: (f32, f32)) -> f32 {
        let (x, n_in_f, n_out_f) = (x as f32, n_in as f32, n_out as f32);
        match self.coord {
            Coord::HalfPixel => (x + 0.5) / s - 0.5,
            Coord::HalfPixelSymmetric => {
                let adjustment = n_out_f / (s * n_in_f);
                let offset = n_in_f / 2.0 * (1.0 - adjustment);
                offset + (x + 0.5) / s - 0.5
            }
            Coord::PytorchHalfPixel if n_out > 1 => (x + 0.5) / s - 0.5,
            Coord::PytorchHalfPixel => 0.0,
            Coord::AlignCorners if n_out > 1 => x * (n_in_f - 1.0) / (n_out_f - 1.0),
            Coord::AlignCorners => 0.0,
            Coord::Asymmetric => x / s,
            Coord::TfHalfPixelForNn => (x + 0.5) / s,
            Coord::TfCropAndResize if n_out > 1 => {
                roi.0 * (n_in_f - 1.0) + x * (roi.1 - roi.0) * (n_in_f - 1.0) / (n_out_f - 1.0)
            }
            Coord::TfCropAndResize => 0.5 * (roi.0 + roi.1) * (n_in_f - 1.0),
        }
    }

    /// The nearest input index for a fractional coordinate (before clamping).
    fn nearest_index(&self, c: f32, downsampling: bool) -> f32 {
        match self.nearest {
            Nearest::RoundPreferFloor if c == c.trunc() + 0.5 => c.trunc(),
            Nearest::RoundPreferFloor | Nearest::RoundPreferCeil => c.round(),
            Nearest::Floor => c.floor(),
            Nearest::Ceil => c.ceil(),
            Nearest::Legacy if downsampling => c.ceil(),
            Nearest::Legacy => c.trunc(),
        }
    }

    /// Per output index along one axis: the taps `at` gives for its input coordinate, or `None`
    /// where tf_crop_and_resize extrapolates.
    fn taps_with<R>(
        &self,
        (n_in, n_out, s, roi): (usize, usize, f32, (f32, f32)),
        at: impl Fn(f32) -> R,
    ) -> Vec<Option<R>> {
        let last = (n_in - 1) as f32;
        (0..n_out)
            .map(|x| {
                let c = self.source_coord(x, n_in, n_out, s, roi);
                let outside = self.coord == Coord::TfCropAndResize && !(0.0..=last).contains(&c);
                (!outside).then(|| at(c))
            })
            .collect()
    }

    /// Four (input index, weight) taps of the cubic kernel per output index: clamped to the
    /// edge, or with `exclude_outside` dropped and the rest renormalised.
    fn cubic_taps(&self, n_in: usize, n_out: usize, s: f32, roi: (f32, f32)) -> Taps<4> {
        let Mode::Cubic { a, exclude_outside } = self.mode else { return vec![None; n_out] };
        self.taps_with((n_in, n_out, s, roi), |c| {
            let base = c.floor();
            let mut w = cubic_weights(c - base, a);
            let at = |k: usize| base as i64 - 1 + k as i64;
            if exclude_outside {
                let inside = |k: usize| (0..n_in as i64).contains(&at(k));
                let sum: f32 = (0..4).filter(|&k| inside(k)).map(|k| w[k]).sum();
                for (k, wk) in w.iter_mut().enumerate() {
                    *wk = if inside(k) && sum != 0.0 { *wk / sum } else { 0.0 };
                }
            }
            std::array::from_fn(|k| (at(k).clamp(0, n_in as i64 - 1) as usize, w[k]))
        })
    }

    /// Two (input index, weight) taps per output index: the nearest index (the second tap
    /// weighs nothing), or the two neighbours of linear interpolation.
    fn taps(&self, n_in: usize, n_out: usize, s: f32, roi: (f32, f32)) -> Taps<2> {
        let last = (n_in - 1) as f32;
        let nearest = self.mode == Mode::Nearest;
        self.taps_with((n_in, n_out, s, roi), |c| {
            if nearest {
                let i = self.nearest_index(c, s < 1.0).clamp(0.0, last) as usize;
                return [(i, 1.0), (i, 0.0)];
            }
            let c = c.clamp(0.0, last);
            let i0 = c as usize;
            let i1 = (i0 + 1).min(n_in - 1);
            let w1 = c - i0 as f32;
            [(i0, 1.0 - w1), (i1, w1)]
        })
    }

    /// Antialiased linear or cubic taps: where the axis shrinks (`s < 1`) the filter stretches
    /// by `1/s` over the `n` indices nearest the coordinate (`n = 2 − 2·(⌊−r/s⌋ + 1)`, `r` the
    /// filter's radius: 1 linear, 2 cubic), weighed by the filter at `(index − coordinate)·s`
    /// and normalised to sum to 1; indices clamp to the edge, or with `exclude_outside` drop out
    /// (the rest renormalised). Computed in f64 as ONNX's reference does. Axes that grow keep
    /// the plain filter.
    fn antialias_taps(&self, n_in: usize, n_out: usize, s: f32, roi: (f32, f32)) -> Vec<Option<Vec<(usize, f32)>>> {
        let widen = |t: Option<&[(usize, f32)]>| t.map(<[(usize, f32)]>::to_vec);
        if s >= 1.0 {
            return match self.mode {
                Mode::Cubic { .. } => {
                    self.cubic_taps(n_in, n_out, s, roi).iter().map(|t| widen(t.as_ref().map(|t| &t[..]))).collect()
                }
                _ => self.taps(n_in, n_out, s, roi).iter().map(|t| widen(t.as_ref().map(|t| &t[..]))).collect(),
            };
        }
        let (radius, keys) = match self.mode {
            Mode::Cubic { a, .. } => (2.0, Some(f64::from(a))),
            _ => (1.0, None),
        };
        let exclude = self.exclude_outside;
        let scale = f64::from(s);
        let start = (-radius / scale).floor() as i64 + 1;
        let n = (2 - 2 * start) as usize;
        let filter = |x: f64| {
            let x = x.abs();
            match keys {
                None => (1.0 - x).clamp(0.0, 1.0),
                Some(a) if x <= 1.0 => (a + 2.0) * x * x * x - (a + 3.0) * x * x + 1.0,
                Some(a) if x < 2.0 => a * x * x * x - 5.0 * a * x * x + 8.0 * a * x - 4.0 * a,
                Some(_) => 0.0,
            }
        };
        let last = n_in as i64 - 1;
        self.taps_with((n_in, n_out, s, roi), |c| {
            let x = f64::from(c);
            let fl = x.floor();
            // The coordinate's left neighbour is the one below it, itself when it is whole.
            let (ratio, first) =
                if x == fl { (1.0, fl as i64 - (n / 2) as i64) } else { (x - fl, fl as i64 - (n / 2) as i64 + 1) };
            let mut w: Vec<f64> = (0..n).map(|k| filter(((start + k as i64) as f64 - ratio) * scale)).collect();
            let sum: f64 = w.iter().sum();
            w.iter_mut().for_each(|v| *v /= sum);
            if exclude {
                let inside = |k: usize| (0..=last).contains(&(first + k as i64));
                w.iter_mut().enumerate().filter(|&(k, _)| !inside(k)).for_each(|(_, v)| *v = 0.0);
                let sum: f64 = w.iter().sum();
                let sum = if sum == 0.0 { 1.0 } else { sum };
                w.iter_mut().for_each(|v| *v /= sum);
            }
            w.iter().enumerate().map(|(k, &v)| ((first + k as i64).clamp(0, last) as usize, v as f32)).collect()
        })
    }

    /// Per-axis `(start, end)` from the roi input: `[starts…, ends…]` over all axes, or over
    /// `axes` when given (other axes keep the whole `(0, 1)` range).
    fn roi(&self, r: &[f32], rank: usize) -> Result<Vec<(f32, f32)>, OpError> {
        let axes: Vec<usize> = match &self.axes {
            None => (0..rank).collect(),
            Some(a) => a.iter().map(|&x| super::normalize_axis(x, rank, "axes value")).collect::<Result<_, _>>()?,
        };
        if r.len() != 2 * axes.len() {
            return Err(OpError::malformed(format!(
                "roi should have {} values (start and end per axis), got {}",
                2 * axes.len(),
                r.len()
            )));
        }
        let mut out = vec![(0.0, 1.0); rank];
        for (i, &a) in axes.iter().enumerate() {
            out[a] = (r[i], r[axes.len() + i]);
        }
        Ok(out)
    }

    /// Reads the scales/sizes/roi values of either facts (constants) or tensors.
    fn resolve(
        &self,
        shape: &[usize],
        get: &dyn Fn(usize) -> Option<Result<Tensor, OpError>>,
    ) -> Result<Target, OpError> {
        let (roi_at, scales_at, sizes_at) = self.slots();
        if self.coord == Coord::TfCropAndResize && roi_at.and_then(get).is_none() {
            return Err(OpError::malformed("tf_crop_and_resize needs the roi input"));
        }
        let scales = match (&self.attr_scales, get(scales_at)) {
            (Some(s), _) => s.clone(),
            (None, None) => vec![],
            (None, Some(t)) => {
                let t = t?;
                super::f32_data(&t, "scales")?.to_vec()
            }
        };
        let sizes = match sizes_at.and_then(get) {
            None => vec![],
            Some(t) => t?.to_i64_vec().map_err(|e| OpError::mismatch(format!("sizes: {e}")))?,
        };
        self.target(shape, &scales, &sizes)
    }
}

impl Resize {
    /// Every axis, innermost first (when enlarging, the cheap gathers run on the smaller
    /// tensor), with its taps (empty for an empty axis), and the output shape.
    #[allow(clippy::type_complexity)]
    fn plan_axes<R>(
        &self,
        shape: &[usize],
        inputs: &[Option<&Tensor>],
        taps: fn(&Self, usize, usize, f32, (f32, f32)) -> Vec<Option<R>>,
    ) -> Result<Plan<R>, OpError> {
        let get = |i: usize| inputs.get(i).copied().flatten().map(|t| Ok(t.clone()));
        let (out_shape, scales) = self.resolve(shape, &get)?;
        let rank = shape.len();
        // Per-axis (start, end) of the crop, for tf_crop_and_resize only.
        let roi: Vec<(f32, f32)> = match (self.coord, self.slots().0.and_then(|i| inputs.get(i).copied().flatten())) {
            (Coord::TfCropAndResize, Some(r)) => self.roi(super::f32_data(r, "roi")?, rank)?,
            (Coord::TfCropAndResize, None) => return Err(OpError::malformed("tf_crop_and_resize needs the roi input")),
            _ => vec![(0.0, 1.0); rank],
        };
        let axes = (0..rank)
            .rev()
            .map(|a| {
                let (n_in, n_out) = (shape[a], out_shape[a]);
                let taps =
                    if n_in == 0 || n_out == 0 { Vec::new() } else { taps(self, n_in, n_out, scales[a], roi[a]) };
                (a, taps)
            })
            .collect();
        Ok((axes, out_shape))
    }
}

impl Resize {
    /// 8-bit inputs resize by `nearest` only (linear blends values, and the 8-bit
    /// rounding of a blend is each runtime's own).
    fn check_8bit(&self, dtype: DType) -> Result<(), OpError> {
        if self.mode != Mode::Nearest {
            let t = if dtype == DType::U8 { "uint8" } else { "int8" };
            return Err(OpError::unsupported(format!(
                "Resize of {t} codes with mode `linear`: qplay resizes 8-bit tensors by nearest only (quantize the model in QDQ form, where the resize runs in float)"
            )));
        }
        Ok(())
    }
}

impl Op for Resize {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = match inputs.first().copied().flatten() {
            Some(f) if matches!(f.dtype, DType::U8 | DType::I8) => {
                self.check_8bit(f.dtype)?;
                f
            }
            _ => f32_fact(inputs, 0, "X")?,
        };
        let get = |i: usize| -> Option<Result<Tensor, OpError>> {
            let f = inputs.get(i).copied().flatten()?;
            Some(match &f.value {
                Some(v) => Ok((**v).clone()),
                None if f.shape.contains(&0) => Tensor::f32(f.shape.clone(), vec![]).map_err(OpError::internal),
                None => Err(OpError::unsupported(format!(
                    "input {i} (scales/sizes) must be a constant to plan the output shape"
                ))),
            })
        };
        let (out, _) = self.resolve(&x.shape, &get)?;
        Ok(vec![Fact::new(x.dtype, out)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        // 8-bit codes (onnxruntime's QOperator models resize them directly): nearest picks
        // whole values, so going through f32 and back is exact.
        if let Some(x8) = inputs.first().copied().flatten().filter(|t| matches!(t.dtype(), DType::U8 | DType::I8)) {
            self.check_8bit(x8.dtype())?;
            let wide = Tensor { shape: x8.shape.clone(), data: crate::model::Data::F32(x8.to_f32_vec()) };
            let mut rest: Vec<Option<&Tensor>> = inputs.to_vec();
            rest[0] = Some(&wide);
            let y = self.eval(&rest)?.remove(0);
            let v = y.as_f32().map_err(OpError::internal)?;
            let data = match x8.dtype() {
                DType::U8 => crate::model::Data::U8(v.iter().map(|&c| c as u8).collect()),
                _ => crate::model::Data::I8(v.iter().map(|&c| c as i8).collect()),
            };
            return Ok(vec![Tensor { shape: y.shape, data }]);
        }
        let x = f32_input(inputs, 0, "X")?;
        let shape = super::input_shape(inputs, 0).unwrap_or_default().to_vec();
        let crop = (self.coord == Coord::TfCropAndResize).then_some(self.extrapolation);
        let (data, out_shape) = match self.mode {
            _ if self.antialias => forward_axes(x, &shape, self.plan_axes(&shape, inputs, Self::antialias_taps)?, crop),
            Mode::Cubic { .. } => forward_axes(x, &shape, self.plan_axes(&shape, inputs, Self::cubic_taps)?, crop),
            _ => forward_axes(x, &shape, self.plan_axes(&shape, inputs, Self::taps)?, crop),
        };
        Ok(vec![f32_output(out_shape, data)?])
    }

    /// The adjoint of the forward's per-axis passes, in reverse order: each output's gradient
    /// scattered back to its (one or two) input taps with their weights. Elements that
    /// tf_crop_and_resize extrapolates take nothing; roi, scales and sizes take no gradient.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let x = f32_input(inputs, 0, "X")?;
        let shape = super::input_shape(inputs, 0).unwrap_or_default().to_vec();
        let mut out: Grads = vec![None; inputs.len()];
        let crop = (self.coord == Coord::TfCropAndResize).then_some(self.extrapolation);
        let gx = match self.mode {
            _ if self.antialias => {
                adjoint_axes(x, grads, &shape, self.plan_axes(&shape, inputs, Self::antialias_taps)?, crop.is_some())?
            }
            Mode::Cubic { .. } => {
                adjoint_axes(x, grads, &shape, self.plan_axes(&shape, inputs, Self::cubic_taps)?, crop.is_some())?
            }
            _ => adjoint_axes(x, grads, &shape, self.plan_axes(&shape, inputs, Self::taps)?, crop.is_some())?,
        };
        out[0] = gx.map(|g| f32_tensor(shape, g));
        Ok(out)
    }
}
