//! Affine quantization parameters with ONNX semantics.
//!
//! `q = clamp(round_half_even(x / Δ) + Z, qmin, qmax)` and `x̂ = (q − Z)·Δ`, exactly as
//! ONNX `QuantizeLinear` / `DequantizeLinear` define them (the division is done in `f32`,
//! never a multiplication by a reciprocal).

use super::QuantError;
use serde::{Deserialize, Serialize};

/// An integer type to quantize to: its bit width, signedness and whether the symmetric
/// "restricted" range (−127..127 for int8) is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QType {
    /// Bit width: 2..=8, or 16.
    pub bits: u8,
    /// Signed (`int8`: −128..127) or unsigned (`uint8`: 0..255).
    pub signed: bool,
    /// Drop the most negative code so that the range is symmetric (−127..127 for int8).
    /// Only meaningful for signed types.
    pub restricted: bool,
}

impl QType {
    /// Signed 8-bit, full range −128..127 (ONNX `int8`).
    pub const INT8: QType = QType { bits: 8, signed: true, restricted: false };
    /// Unsigned 8-bit, 0..255 (ONNX `uint8`).
    pub const UINT8: QType = QType { bits: 8, signed: false, restricted: false };

    /// A checked constructor.
    ///
    /// ```
    /// use qplay_core::quant::QType;
    /// let t = QType::new(4, true, false).unwrap();
    /// assert_eq!((t.qmin(), t.qmax()), (-8, 7));
    /// assert!(QType::new(9, true, false).is_err());
    /// ```
    pub fn new(bits: u8, signed: bool, restricted: bool) -> Result<QType, QuantError> {
        let t = QType { bits, signed, restricted };
        t.validate()?;
        Ok(t)
    }

    /// Checks the bit width (2..=8 or 16).
    pub fn validate(&self) -> Result<(), QuantError> {
        if (2..=8).contains(&self.bits) || self.bits == 16 {
            Ok(())
        } else {
            Err(QuantError::Bits(self.bits))
        }
    }

    /// Smallest code.
    pub fn qmin(&self) -> i32 {
        if self.signed {
            let m = -(1i32 << (self.bits - 1));
            if self.restricted {
                m + 1
            } else {
                m
            }
        } else {
            0
        }
    }

    /// Largest code.
    pub fn qmax(&self) -> i32 {
        if self.signed {
            (1i32 << (self.bits - 1)) - 1
        } else {
            (1i32 << self.bits) - 1
        }
    }

    /// Number of distinct codes, `qmax − qmin + 1`.
    pub fn levels(&self) -> u32 {
        (self.qmax() - self.qmin() + 1) as u32
    }
}

/// How a float range maps onto the integer grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Use the range as given (widened to contain 0 so that 0 is exactly representable).
    #[default]
    Asymmetric,
    /// Use ±max|x|: for signed types the zero-point is 0.
    Symmetric,
}

/// Where one set of parameters applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Granularity {
    /// One scale and zero-point for the whole tensor.
    PerTensor,
    /// One scale and zero-point per index along `axis` (e.g. output channels of a Conv weight).
    PerChannel {
        /// The axis that carries the channels.
        axis: usize,
    },
}

/// A scale Δ and zero-point Z.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QParams {
    /// Δ, the float value of one integer step. Always finite and > 0.
    pub scale: f32,
    /// Z, the integer code that represents 0.0.
    pub zero_point: i32,
}

/// Checks that a range is usable: finite ends, `min < max`.
pub fn check_range(min: f64, max: f64) -> Result<(), QuantError> {
    if !min.is_finite() || !max.is_finite() {
        return Err(QuantError::NonFinite { min, max });
    }
    if min > max {
        return Err(QuantError::Inverted { min, max });
    }
    if min == max {
        return Err(QuantError::EmptyRange(min));
    }
    Ok(())
}

/// The effective float range a scheme quantizes: asymmetric widens `[min, max]` to contain 0,
/// symmetric uses `[−a, a]` with `a = max(|min|, |max|)`.
pub fn effective_range(min: f64, max: f64, scheme: Scheme) -> (f64, f64) {
    match scheme {
        Scheme::Asymmetric => (min.min(0.0), max.max(0.0)),
        Scheme::Symmetric => {
            let a = min.abs().max(max.abs());
            (-a, a)
        }
    }
}

impl QParams {
    /// Computes Δ and Z for a float range, in exact (`f64`) arithmetic.
    ///
    /// `Δ = (max' − min') / (qmax − qmin)` and `Z = clamp(round_half_even(qmin − min'/Δ))` where
    /// `[min', max']` is [`effective_range`]. `Z` is computed as
    /// `qmin − min'·(qmax − qmin)/(max' − min')`, so a rounded `Δ` never shifts it.
    ///
    /// ```
    /// use qplay_core::quant::{QParams, QType, Scheme};
    /// // The seed example: [−2, 2] → int8.
    /// let p = QParams::from_range(-2.0, 2.0, QType::INT8, Scheme::Asymmetric).unwrap();
    /// assert_eq!(p.zero_point, 0);
    /// assert!((p.scale - 4.0 / 255.0).abs() < 1e-9);
    /// assert_eq!(p.quantize(1.3, QType::INT8), 83);
    /// // Inverted ranges are an error, not a panic.
    /// assert!(QParams::from_range(2.0, -2.0, QType::INT8, Scheme::Asymmetric).is_err());
    /// ```
    pub fn from_range(min: f64, max: f64, qtype: QType, scheme: Scheme) -> Result<QParams, QuantError> {
        qtype.validate()?;
        check_range(min, max)?;
        let (lo, hi) = effective_range(min, max, scheme);
        let steps = (qtype.qmax() - qtype.qmin()) as f64;
        let scale = (hi - lo) / steps;
        let scale32 = scale as f32;
        if !(scale32.is_finite() && scale32 > 0.0) {
            return Err(QuantError::ScaleOutOfRange(scale));
        }
        let zp = if scheme == Scheme::Symmetric && qtype.signed {
            0
        } else {
            let z = qtype.qmin() as f64 - lo * steps / (hi - lo);
            (z.round_ties_even() as i64).clamp(qtype.qmin() as i64, qtype.qmax() as i64) as i32
        };
        Ok(QParams { scale: scale32, zero_point: zp })
    }

    /// Validates parameters that came from outside (a model file, a user).
    pub fn checked(scale: f32, zero_point: i32, qtype: QType) -> Result<QParams, QuantError> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(QuantError::ScaleOutOfRange(scale as f64));
        }
        if zero_point < qtype.qmin() || zero_point > qtype.qmax() {
            return Err(QuantError::ZeroPoint { zero_point, qmin: qtype.qmin(), qmax: qtype.qmax() });
        }
        Ok(QParams { scale, zero_point })
    }

    /// `clamp(round_half_even(x / Δ) + Z, qmin, qmax)`. NaN maps to Z (as 0.0 would).
    #[inline]
    pub fn quantize(&self, x: f32, qtype: QType) -> i32 {
        round_half_even(x / self.scale).saturating_add(self.zero_point).clamp(qtype.qmin(), qtype.qmax())
    }

    /// `(q − Z)·Δ`.
    #[inline]
    pub fn dequantize(&self, q: i32) -> f32 {
        (q - self.zero_point) as f32 * self.scale
    }

    /// Quantize then dequantize ("fake quantization").
    #[inline]
    pub fn fake(&self, x: f32, qtype: QType) -> f32 {
        self.dequantize(self.quantize(x, qtype))
    }

    /// [`QParams::fake`] of each of `xs` into `ys` (the same length), bit for bit, in float
    /// arithmetic that vectorises: `round_half_even(x/Δ)` and the zero point are integers well
    /// inside f32's exact range, so adding, clamping and subtracting them in float is exact.
    #[inline(always)]
    pub fn fake_into(&self, xs: &[f32], ys: &mut [f32], qtype: QType) {
        let (s, z) = (self.scale, self.zero_point as f32);
        let (lo, hi) = (qtype.qmin() as f32, qtype.qmax() as f32);
        for (y, &x) in ys.iter_mut().zip(xs) {
            let u = x / s;
            // NaN → 0, as `round_half_even` maps it.
            let u = if u.is_nan() { 0.0 } else { u.clamp(-ROUND_LIM, ROUND_LIM) };
            let r = (u + ROUND_MAGIC) - ROUND_MAGIC;
            let q = (r + z).max(lo).min(hi);
            *y = (q - z) * s;
        }
    }

    /// The float interval the grid covers, `[(qmin − Z)·Δ, (qmax − Z)·Δ]`; values outside clamp.
    pub fn representable(&self, qtype: QType) -> (f32, f32) {
        (self.dequantize(qtype.qmin()), self.dequantize(qtype.qmax()))
    }
}

/// 1.5 · 2²³: adding and subtracting it rounds an f32 of magnitude ≤ 2²² half to even.
pub const ROUND_MAGIC: f32 = 12_582_912.0;
/// 2²²: the magnitude up to which [`ROUND_MAGIC`] rounds exactly.
pub const ROUND_LIM: f32 = 4_194_304.0;

/// Round half to even of `x` as an `i32`, with `x` first clamped to ±2²² (NaN → 0). Adding and
/// subtracting 1.5·2²³ rounds in IEEE round-to-nearest-even arithmetic, which every target
/// (x86-64 without SSE4.1, wasm, WGSL) has, so this is one cheap rule everywhere; every
/// caller clamps to at most 16 bits afterwards, so the ±2²² clamp changes no result.
#[inline(always)]
pub fn round_half_even(x: f32) -> i32 {
    let x = x.clamp(-ROUND_LIM, ROUND_LIM); // NaN stays NaN, and NaN as i32 is 0
    ((x + ROUND_MAGIC) - ROUND_MAGIC) as i32
}

/// Quantizes a whole tensor with one set of parameters.
pub fn quantize_slice(x: &[f32], p: QParams, qtype: QType) -> Vec<i32> {
    x.iter().map(|&v| p.quantize(v, qtype)).collect()
}

/// Fake-quantizes a whole tensor with one set of parameters.
pub fn fake_quantize_slice(x: &[f32], p: QParams, qtype: QType) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    p.fake_into(x, &mut y, qtype);
    y
}

/// Finite min and max of a slice; an error if it is empty or holds a NaN/Inf.
pub fn min_max(x: &[f32]) -> Result<(f32, f32), QuantError> {
    if x.is_empty() {
        return Err(QuantError::EmptyTensor);
    }
    // Eight lanes of compares, a block at a time (they vectorise; an early return per value
    // does not), then one check of the block for non-finite values.
    const LANES: usize = 8;
    let (mut lo, mut hi) = ([f32::INFINITY; LANES], [f32::NEG_INFINITY; LANES]);
    for block in x.chunks(256) {
        let mut finite = true;
        let mut lanes = block.chunks_exact(LANES);
        for c in &mut lanes {
            for j in 0..LANES {
                let v = c[j];
                finite &= v.abs() < f32::INFINITY;
                lo[j] = if v < lo[j] { v } else { lo[j] };
                hi[j] = if v > hi[j] { v } else { hi[j] };
            }
        }
        for &v in lanes.remainder() {
            finite &= v.abs() < f32::INFINITY;
            lo[0] = if v < lo[0] { v } else { lo[0] };
            hi[0] = if v > hi[0] { v } else { hi[0] };
        }
        if !finite {
            return Err(QuantError::NonFiniteData);
        }
    }
    Ok((lo.iter().fold(f32::INFINITY, |a, &b| a.min(b)), hi.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b))))
}

/// Parameters per channel along `axis` of a tensor of `shape` (row-major), from each channel's
/// min/max. A channel whose values are all equal gets its range widened to include 0
/// (asymmetric) or ±|v|; an all-zero channel gets `Δ = 1, Z = 0`-like parameters
/// (Δ = smallest positive normal scale is useless, so 1.0 is used: every value is exactly 0).
///
/// ```
/// use qplay_core::quant::{per_channel_params, QType, Scheme};
/// let w = [1.0, -1.0, 0.5, 2.0, 0.0, -4.0];
/// let p = per_channel_params(&w, &[2, 3], 0, QType::INT8, Scheme::Symmetric).unwrap();
/// assert_eq!(p.len(), 2);
/// assert!(p[1].scale > p[0].scale);
/// ```
pub fn per_channel_params(
    data: &[f32],
    shape: &[usize],
    axis: usize,
    qtype: QType,
    scheme: Scheme,
) -> Result<Vec<QParams>, QuantError> {
    let ranges = per_channel_min_max(data, shape, axis)?;
    ranges.into_iter().map(|(lo, hi)| params_or_unit(lo as f64, hi as f64, qtype, scheme)).collect()
}

/// Like [`QParams::from_range`], but a degenerate range (an all-zero tensor, say) gets
/// `Δ = 1.0` and the zero-point for 0, so that it still round-trips exactly. This is the
/// documented fallback calibration uses; user-facing range input uses `from_range` and errors.
pub fn params_or_unit(min: f64, max: f64, qtype: QType, scheme: Scheme) -> Result<QParams, QuantError> {
    let (lo, hi) = effective_range(min, max, scheme);
    if lo == hi && lo == 0.0 {
        qtype.validate()?;
        let zp = if qtype.signed {
            0
        } else if scheme == Scheme::Symmetric {
            (qtype.qmax() + 1) / 2
        } else {
            0
        };
        return Ok(QParams { scale: 1.0, zero_point: zp });
    }
    QParams::from_range(lo, hi, qtype, scheme)
}

/// Min and max of each slice along `axis`.
pub fn per_channel_min_max(data: &[f32], shape: &[usize], axis: usize) -> Result<Vec<(f32, f32)>, QuantError> {
    let (outer, channels, inner) = split_axis(data.len(), shape, axis)?;
    if inner == 0 || outer == 0 {
        return Err(QuantError::EmptyTensor);
    }
    let mut out = vec![(f32::INFINITY, f32::NEG_INFINITY); channels];
    for o in 0..outer {
        for (c, r) in out.iter_mut().enumerate() {
            let base = (o * channels + c) * inner;
            // Each run through the vectorised `min_max` (a non-finite value is its error).
            let (lo, hi) = min_max(&data[base..base + inner])?;
            r.0 = r.0.min(lo);
            r.1 = r.1.max(hi);
        }
    }
    Ok(out)
}

/// Fake-quantizes a tensor per channel along `axis`.
pub fn fake_quantize_per_channel(
    data: &[f32],
    shape: &[usize],
    axis: usize,
    params: &[QParams],
    qtype: QType,
) -> Result<Vec<f32>, QuantError> {
    let (outer, channels, inner) = split_axis(data.len(), shape, axis)?;
    if params.len() != channels {
        return Err(QuantError::ChannelMismatch { params: params.len(), channels, axis });
    }
    let mut out = vec![0.0; data.len()];
    for o in 0..outer {
        for (c, p) in params.iter().enumerate() {
            let base = (o * channels + c) * inner;
            p.fake_into(&data[base..base + inner], &mut out[base..base + inner], qtype);
        }
    }
    Ok(out)
}

/// `(outer, channels, inner)` sizes around `axis` of a row-major tensor.
pub fn split_axis(len: usize, shape: &[usize], axis: usize) -> Result<(usize, usize, usize), QuantError> {
    if axis >= shape.len() {
        return Err(QuantError::Axis { axis, rank: shape.len() });
    }
    let numel = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or(QuantError::ShapeData { len, numel: usize::MAX })?;
    if numel != len {
        return Err(QuantError::ShapeData { len, numel });
    }
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    Ok((outer, shape[axis], inner))
}
