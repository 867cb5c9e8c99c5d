//! `qplay.tfl.Conv2D`, `qplay.tfl.DepthwiseConv2D`, `qplay.tfl.FullyConnected`: TFLite's int8
//! convolutions and fully-connected layer in the file's layout (NHWC activations, OHWI / 1HWO /
//! OI weights), as LiteRT's reference kernels compute them (`reference_integer_ops::
//! ConvPerChannel`, `DepthwiseConvPerChannel`, `FullyConnected`): an int32 sum of
//! `w · (x − x_zp)` over the taps inside the image, plus the int32 bias, requantized by the
//! fixed-point multiplier and shift of `x_scale · w_scale / y_scale` ([`mbqm`]), plus `y_zp`,
//! clamped to the fused activation's range.
//!
//! The multipliers are computed as LiteRT computes them: per output channel in double
//! precision for convolutions (`PopulateConvolutionQuantizationParams`), and for a per-tensor
//! fully-connected layer from the *float* product `x_scale · w_scale`
//! (`GetQuantizedConvolutionMultipler`).
//!
//! Convolutions and fully-connected layers get their int32 sums from the shared int8 GEMM
//! ([`qgemm`](crate::ops::quant::qgemm::qgemm): exact integer sums, SIMD, threads), with the weights as `A` (packed once and
//! cached) and the NHWC input — as it is for 1×1 convolutions and fully-connected layers, else
//! its im2col with the input zero point in the padding, which adds nothing to `w · (x − x_zp)`
//! — as `Bᵀ`; the requantization runs on those sums exactly as the reference loop's. Integer
//! sums are the same in any order, so the outputs equal the reference's bit for bit
//! ([`TflConv::reference`], kept for depthwise convolutions and tested against the GEMM path).

use super::fixed::{mbqm, quantize_multiplier, Requant, RequantChannels};
use super::{attr_f32, attr_i32, check_multiplier, i8_data};
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::quant::qgemm::{PackedA, MAX_K};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};
use crate::parallel;
use std::sync::{Arc, Mutex};

mod gemm;
mod wide;

/// The op types.
pub const CONV: &str = "qplay.tfl.Conv2D";
/// Depthwise convolution.
pub const DEPTHWISE: &str = "qplay.tfl.DepthwiseConv2D";
/// Fully-connected layer.
pub const FULLY_CONNECTED: &str = "qplay.tfl.FullyConnected";

/// Which of the three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKind {
    /// OHWI weights.
    Conv,
    /// 1HWO weights, `O = C · multiplier`.
    Depthwise,
    /// OI weights on the input flattened to `[·, I]`.
    FullyConnected,
}

/// A built int8 convolution or fully-connected layer.
#[derive(Debug)]
pub struct TflConv {
    /// Which op.
    pub kind: ConvKind,
    /// `[stride_h, stride_w]`.
    pub strides: [usize; 2],
    /// `[dilation_h, dilation_w]`.
    pub dilations: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Input zero point.
    pub x_zp: i32,
    /// Output zero point.
    pub y_zp: i32,
    /// Per output channel (or one): `(multiplier, shift)`.
    pub requant: Vec<(i32, i32)>,
    /// The fused activation's range.
    pub act: (i32, i32),
    /// [`Self::requant`] with the zero point and range, per channel (or one), for the fast paths.
    rq: Vec<Requant>,
    /// `rq` channel by channel, when there are several.
    rq_channels: RequantChannels,
    /// The weights packed for the GEMM, with the address and length of the data they came from.
    packed: Mutex<Option<(usize, usize, Arc<PackedA>)>>,
    /// Per output channel (or one): `x_scale · w_scale / y_scale` in double, which LiteRT's
    /// int16 fully-connected kernels multiply their sums by (rounding half away from zero).
    real: Vec<f64>,
    /// The weights' zero point (uint8 models: uint8 weights with one zero point; else 0).
    pub w_zp: i32,
}

fn pair(node: &Node, name: &str, default: usize) -> Result<[usize; 2], OpError> {
    match node.attrs.ints(name) {
        None => Ok([default; 2]),
        Some([a, b]) if *a >= 0 && *b >= 0 => Ok([*a as usize, *b as usize]),
        Some(v) => Err(OpError::malformed(format!("{name} {v:?} must be two non-negative values"))),
    }
}

fn build(node: &Node, kind: ConvKind) -> Result<Box<dyn Op>, OpError> {
    let strides = pair(node, "strides", 1)?;
    let dilations = pair(node, "dilations", 1)?;
    if strides.contains(&0) || dilations.contains(&0) {
        return Err(OpError::malformed("strides and dilations must be positive"));
    }
    let pads = match node.attrs.ints("pads") {
        None => [0; 4],
        Some(p) if p.len() == 4 && p.iter().all(|&v| (0..1 << 20).contains(&v)) => {
            [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
        }
        Some(p) => return Err(OpError::malformed(format!("pads {p:?} must be 4 small non-negative values"))),
    };
    let uint8 = node.attrs.int("uint8", 0) != 0;
    let ConvQuant { x_scale, y_scale, w_scales, requant, act } =
        conv_quant(node, kind == ConvKind::FullyConnected || uint8)?;
    let geometry = Window { strides, dilations, pads };
    let mut conv = TflConv::new(kind, geometry, (attr_i32(node, "x_zp")?, attr_i32(node, "y_zp")?), requant, act);
    conv.real = w_scales.iter().map(|&ws| x_scale as f64 * ws as f64 / y_scale as f64).collect();
    conv.w_zp = if uint8 { attr_i32(node, "w_zp")? } else { 0 };
    Ok(Box::new(conv))
}

/// An integer convolution's scales, its per-channel requantization and its activation range.
pub(super) struct ConvQuant<'n> {
    pub(super) x_scale: f32,
    pub(super) y_scale: f32,
    pub(super) w_scales: &'n [f32],
    /// Per channel (or one): TFLite's fixed-point multiplier and shift of `x_scale·w_scale/y_scale`.
    pub(super) requant: Vec<(i32, i32)>,
    /// `act_min ≤ act_max`.
    pub(super) act: (i32, i32),
}

/// Reads [`ConvQuant`] from `x_scale`, `y_scale`, `w_scales`, `act_min` and `act_max`.
/// `float_product`: a per-tensor multiplier comes from the float product `x_scale · w_scale`
/// (`GetQuantizedConvolutionMultipler`, for uint8 models and fully-connected layers).
pub(super) fn conv_quant(node: &Node, float_product: bool) -> Result<ConvQuant<'_>, OpError> {
    let (x_scale, y_scale) = (attr_f32(node, "x_scale")?, attr_f32(node, "y_scale")?);
    let w_scales = node.attrs.floats("w_scales").unwrap_or(&[]);
    // A channel whose scale is NaN or 0 (TF-MOT leaves NaN where its quantization-aware training
    // lost a channel's range) gets multiplier 0, as LiteRT's `QuantizeMultiplier` gives it on
    // x86: the channel's outputs are the zero point (clamped). Negative or infinite scales are
    // malformed.
    if w_scales.is_empty() || w_scales.iter().any(|s| s.is_infinite() || *s < 0.0) {
        return Err(OpError::malformed(format!("w_scales {w_scales:?} must be positive")));
    }
    let requant = w_scales
        .iter()
        .map(|&ws| {
            let m = if float_product && w_scales.len() == 1 {
                (x_scale * ws) as f64 / y_scale as f64
            } else {
                x_scale as f64 * ws as f64 / y_scale as f64
            };
            check_multiplier(quantize_multiplier(m))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let act = (attr_i32(node, "act_min")?, attr_i32(node, "act_max")?);
    if act.0 > act.1 {
        return Err(OpError::malformed(format!("act_min {} is above act_max {}", act.0, act.1)));
    }
    Ok(ConvQuant { x_scale, y_scale, w_scales, requant, act })
}

/// A convolution's strides, dilations and padding.
struct Window {
    strides: [usize; 2],
    dilations: [usize; 2],
    pads: [usize; 4],
}

impl TflConv {
    /// `zps`: the input's and the output's zero points; `act` (`act.0 ≤ act.1`).
    fn new(kind: ConvKind, w: Window, (x_zp, y_zp): (i32, i32), requant: Vec<(i32, i32)>, act: (i32, i32)) -> TflConv {
        let range = (act.0.max(-128), act.1.min(127));
        let rq: Vec<Requant> = requant.iter().map(|&r| Requant::new(r, y_zp, range)).collect();
        let rq_channels = if rq.len() > 1 { RequantChannels::new(rq.clone()) } else { RequantChannels::default() };
        TflConv {
            kind,
            strides: w.strides,
            dilations: w.dilations,
            pads: w.pads,
            x_zp,
            y_zp,
            requant,
            act,
            rq,
            rq_channels,
            packed: Mutex::new(None),
            real: Vec::new(),
            w_zp: 0,
        }
    }

    /// The requantization of output channel `oc`.
    #[inline(always)]
    fn rq(&self, oc: usize) -> &Requant {
        &self.rq[if self.rq.len() == 1 { 0 } else { oc }]
    }
}

/// Builds `qplay.tfl.Conv2D` (inputs x, w, optional bias).
pub fn build_conv(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    build(node, ConvKind::Conv)
}

/// Builds `qplay.tfl.DepthwiseConv2D`.
pub fn build_depthwise(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    build(node, ConvKind::Depthwise)
}

/// Builds `qplay.tfl.FullyConnected`.
pub fn build_fully_connected(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    build(node, ConvKind::FullyConnected)
}

/// The geometry of one call.
struct Geometry {
    /// `[N, H, W, C]` (fully-connected: `[rows, 1, 1, K]`).
    x: [usize; 4],
    /// `[O, kh, kw, I]` as stored (depthwise: `[1, kh, kw, O]`).
    w: [usize; 4],
    /// `[N, OH, OW, O]` (fully-connected: `[rows, O]` as the output shape).
    y: [usize; 4],
}

impl TflConv {
    /// `[x, w, y]` of one call with input shape `x` and weight shape `w`, as the kernels see
    /// them: NHWC input, weights as stored (depthwise `[1, kh, kw, O]`), NHWC output; a
    /// fully-connected layer as `[rows, 1, 1, K]`, `[O, 1, 1, K]`, `[rows, 1, 1, O]`.
    pub fn shapes(&self, x: &[usize], w: &[usize]) -> Result<[[usize; 4]; 3], OpError> {
        let (g, _) = self.geometry(x, w)?;
        Ok([g.x, g.w, g.y])
    }

    fn geometry(&self, x: &[usize], w: &[usize]) -> Result<(Geometry, Vec<usize>), OpError> {
        let bad = |m: String| OpError::mismatch(m);
        if self.kind == ConvKind::FullyConnected {
            let [o, k] = <[usize; 2]>::try_from(w).map_err(|_| bad(format!("weights {w:?} must have rank 2")))?;
            let n: usize = x.iter().product();
            if k == 0 || !n.is_multiple_of(k) {
                return Err(bad(format!("input {x:?} does not split into rows of {k}")));
            }
            let rows = n / k;
            let g = Geometry { x: [rows, 1, 1, k], w: [o, 1, 1, k], y: [rows, 1, 1, o] };
            return Ok((g, vec![rows, o]));
        }
        let x4 = <[usize; 4]>::try_from(x).map_err(|_| bad(format!("input {x:?} must be NHWC")))?;
        let w4 = <[usize; 4]>::try_from(w).map_err(|_| bad(format!("weights {w:?} must have rank 4")))?;
        let [n, h, wd, c] = x4;
        let [o, kh, kw, i] = w4;
        let out_c = match self.kind {
            ConvKind::Depthwise if o == 1 && c > 0 && i % c == 0 => i,
            ConvKind::Conv if i == c => o,
            _ => return Err(bad(format!("weights {w:?} do not fit {c} input channels"))),
        };
        let size = |len: usize, k: usize, s: usize, d: usize, p0: usize, p1: usize| -> Result<usize, OpError> {
            let eff = (k.max(1) - 1) * d + 1;
            let padded = len + p0 + p1;
            if padded < eff {
                return Err(OpError::mismatch(format!("a {eff}-tap window does not fit {padded}")));
            }
            Ok((padded - eff) / s + 1)
        };
        let oh = size(h, kh, self.strides[0], self.dilations[0], self.pads[0], self.pads[2])?;
        let ow = size(wd, kw, self.strides[1], self.dilations[1], self.pads[1], self.pads[3])?;
        Ok((Geometry { x: x4, w: w4, y: [n, oh, ow, out_c] }, vec![n, oh, ow, out_c]))
    }

    fn check_channels(&self, out_c: usize, bias: Option<&Tensor>) -> Result<(), OpError> {
        if self.requant.len() != 1 && self.requant.len() != out_c {
            return Err(OpError::mismatch(format!("{} weight scales for {out_c} output channels", self.requant.len())));
        }
        if let Some(b) = bias {
            if !matches!(b.dtype(), DType::I32 | DType::I64) || b.len() != out_c {
                return Err(OpError::mismatch(format!(
                    "the bias must be {out_c} int32 (or, with int16 inputs, int64) values, got {:?} {:?}",
                    b.dtype(),
                    b.shape
                )));
            }
        }
        Ok(())
    }

    /// Calls `f(tap, px)` for each tap of output pixel `(oy, ox)` of image `b` that falls inside
    /// the image: `tap = ky · kw + kx`, `px` the NHWC offset of the input pixel it reads.
    #[inline(always)]
    fn taps(&self, g: &Geometry, b: usize, (oy, ox): (usize, usize), mut f: impl FnMut(usize, usize)) {
        let [_, h, wd, c] = g.x;
        let [_, kh, kw, _] = g.w;
        let y0 = (oy * self.strides[0]) as isize - self.pads[0] as isize;
        let x0 = (ox * self.strides[1]) as isize - self.pads[1] as isize;
        for ky in 0..kh {
            let iy = y0 + (ky * self.dilations[0]) as isize;
            if iy < 0 || iy >= h as isize {
                continue;
            }
            for kx in 0..kw {
                let ix = x0 + (kx * self.dilations[1]) as isize;
                if ix < 0 || ix >= wd as isize {
                    continue;
                }
                f(ky * kw + kx, ((b * h + iy as usize) * wd + ix as usize) * c);
            }
        }
    }

    /// Output row `oy` of image `b` (`[OW, O]`), as `ConvPerChannel` / `DepthwiseConvPerChannel`
    /// / `FullyConnected` loop: only the taps inside the image.
    #[allow(clippy::too_many_arguments)]
    fn row(&self, g: &Geometry, xv: &[i8], wv: &[i8], bias: &[i32], b: usize, oy: usize, out: &mut [i8]) {
        let [_, _, _, c] = g.x;
        let [_, _, _, wi] = g.w;
        let [_, _, ow, oc_n] = g.y;
        let taps = g.w[1] * g.w[2];
        let x_off = -self.x_zp;
        let multiplier = if self.kind == ConvKind::Depthwise { (oc_n / c.max(1)).max(1) } else { 1 };
        for ox in 0..ow {
            for oc in 0..oc_n {
                let mut acc = 0i32;
                self.taps(g, b, (oy, ox), |tap, px| {
                    if self.kind == ConvKind::Depthwise {
                        let wt = wv[tap * wi + oc] as i32;
                        acc = acc.wrapping_add(wt * (xv[px + oc / multiplier] as i32 + x_off));
                    } else {
                        let wrow = (oc * taps + tap) * wi;
                        for (&wt, &xq) in wv[wrow..wrow + c].iter().zip(&xv[px..px + c]) {
                            acc = acc.wrapping_add(wt as i32 * (xq as i32 + x_off));
                        }
                    }
                });
                out[ox * oc_n + oc] = self.out(acc.wrapping_add(bias[oc]), oc);
            }
        }
    }

    /// Requantizes one accumulator of output channel `oc`.
    #[inline]
    fn out(&self, acc: i32, oc: usize) -> i8 {
        let (m, s) = self.requant[if self.requant.len() == 1 { 0 } else { oc }];
        mbqm(acc, m, s).wrapping_add(self.y_zp).clamp(self.act.0, self.act.1).clamp(-128, 127) as i8
    }
}

impl Op for TflConv {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (x, w) = (input_fact(inputs, 0)?, input_fact(inputs, 1)?);
        let ok = matches!((x.dtype, w.dtype), (DType::I8 | DType::I16, DType::I8) | (DType::U8, DType::U8));
        if !ok {
            return Err(OpError::mismatch(format!(
                "x and w must be int8 and int8, int16 and int8, or uint8 and uint8, got {:?} and {:?}",
                x.dtype, w.dtype
            )));
        }
        let (_, shape) = self.geometry(&x.shape, &w.shape)?;
        Ok(vec![Fact::new(x.dtype, shape)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (x, w) = (input(inputs, 0)?, input(inputs, 1)?);
        let bias = inputs.get(2).copied().flatten();
        let (g, shape) = self.geometry(&x.shape, &w.shape)?;
        self.check_channels(g.y[3], bias)?;
        if let Data::I16(xv) = &x.data {
            let y = self.eval16(&g, xv, i8_data(w, "w")?, bias);
            return Ok(vec![Tensor { shape, data: Data::I16(y) }]);
        }
        if let (Data::U8(xv), Data::U8(wv)) = (&x.data, &w.data) {
            let bias: Vec<i32> = match bias.map(|b| &b.data) {
                Some(Data::I32(v)) => v.clone(),
                _ => vec![0; g.y[3]],
            };
            return Ok(vec![Tensor { shape, data: Data::U8(self.eval_u8(&g, xv, wv, &bias)) }]);
        }
        if bias.is_some_and(|b| b.dtype() == DType::I64) {
            return Err(OpError::mismatch("an int64 bias needs int16 inputs (a 16x8 model)"));
        }
        let (xv, wv) = (i8_data(x, "x")?, i8_data(w, "w")?);
        let bias: Vec<i32> = match bias.map(|b| &b.data) {
            Some(Data::I32(v)) => v.clone(),
            _ => vec![0; g.y[3]],
        };
        let gemm =
            self.kind != ConvKind::Depthwise && (-128..=127).contains(&self.x_zp) && g.w[1] * g.w[2] * g.w[3] <= MAX_K;
        let y = if gemm { self.gemm(&g, xv, wv, &bias)? } else { self.by_rows(&g, xv, wv, &bias, true) };
        Ok(vec![Tensor { shape, data: Data::I8(y) }])
    }
}

impl TflConv {
    /// Output rows, runs of them one task each: the reference loop ([`Self::row`]), or for a
    /// depthwise convolution with `fast`, [`Self::depthwise_row`].
    fn by_rows(&self, g: &Geometry, xv: &[i8], wv: &[i8], bias: &[i32], fast: bool) -> Vec<i8> {
        let [n, _, _, c] = g.x;
        let [_, kh, kw, _] = g.w;
        let [_, oh, ow, oc_n] = g.y;
        let row_len = ow * oc_n;
        let mut y = vec![0i8; n * oh * row_len];
        // Runs of output rows, one task each (integer sums: the same on any number of threads).
        let taps = kh * kw * if self.kind == ConvKind::Depthwise { 1 } else { c };
        let parts = parallel::split(n * oh, parallel::tasks(y.len() * taps, n * oh), 1);
        let mut blocks: Vec<(std::ops::Range<usize>, &mut [i8])> = Vec::with_capacity(parts.len());
        let mut rest = y.as_mut_slice();
        for r in parts {
            let (dst, tail) = rest.split_at_mut(r.len() * row_len);
            rest = tail;
            blocks.push((r, dst));
        }
        parallel::for_each_mut(&mut blocks, |_, (rows, dst)| {
            let mut acc = vec![0i32; oc_n];
            for (r, out) in rows.clone().zip(dst.chunks_mut(row_len)) {
                if fast && self.kind == ConvKind::Depthwise {
                    self.depthwise_row(g, xv, wv, bias, (r / oh, r % oh), &mut acc, out);
                } else {
                    self.row(g, xv, wv, bias, r / oh, r % oh, out);
                }
            }
        });
        y
    }

    /// [`Self::row`] for a depthwise convolution, channels innermost (contiguous in the input,
    /// the weights and `acc`, so the loop vectorizes): the same integer sums, the bias added
    /// first instead of last (wrapping integer addition: the same result).
    #[allow(clippy::too_many_arguments)]
    fn depthwise_row(
        &self,
        g: &Geometry,
        xv: &[i8],
        wv: &[i8],
        bias: &[i32],
        (b, oy): (usize, usize),
        acc: &mut [i32],
        out: &mut [i8],
    ) {
        let [_, _, _, c] = g.x;
        let [_, _, _, wi] = g.w;
        let [_, _, ow, oc_n] = g.y;
        let zp = self.x_zp;
        let multiplier = (oc_n / c.max(1)).max(1);
        // With an int8 zero point, `x − zp` is in −255…255 and `w · (x − zp)` in −32640…32640:
        // the products are exact in i16 (twice as many to a vector multiply). Natively this and
        // the channel blocks below made the 4 MB MobileNetV2 1.14× faster; in the browser's wasm
        // they were 3 % slower (and an explicit SIMD128 version no faster): the plain loop there.
        let zp16 = i16::try_from(zp)
            .ok()
            .filter(|z| (-128..=127).contains(z) && !cfg!(all(target_arch = "wasm32", target_feature = "simd128")));
        let mut taps: Vec<(usize, usize)> = Vec::with_capacity(g.w[1] * g.w[2]);
        for ox in 0..ow {
            taps.clear();
            self.taps(g, b, (oy, ox), |tap, px| taps.push((tap, px)));
            if let (1, Some(zp16)) = (multiplier, zp16) {
                // Blocks of channels whose sums stay in registers across the taps.
                const B: usize = 16;
                let blocks = c / B * B;
                for cb in (0..blocks).step_by(B) {
                    let mut a = [0i32; B];
                    a.copy_from_slice(&bias[cb..cb + B]);
                    for &(tap, px) in &taps {
                        let (xs, ws) = (&xv[px + cb..][..B], &wv[tap * wi + cb..][..B]);
                        for j in 0..B {
                            let p = (ws[j] as i16).wrapping_mul(xs[j] as i16 - zp16);
                            a[j] = a[j].wrapping_add(p as i32);
                        }
                    }
                    acc[cb..cb + B].copy_from_slice(&a);
                }
                acc[blocks..oc_n].copy_from_slice(&bias[blocks..oc_n]);
                for &(tap, px) in &taps {
                    let (xs, ws) = (&xv[px + blocks..px + c], &wv[tap * wi + blocks..][..oc_n - blocks]);
                    for ((a, &w), &x) in acc[blocks..].iter_mut().zip(ws).zip(xs) {
                        *a = a.wrapping_add((w as i32).wrapping_mul(x as i32 - zp));
                    }
                }
            } else {
                acc.copy_from_slice(&bias[..oc_n]);
                for &(tap, px) in &taps {
                    let (xs, ws) = (&xv[px..px + c], &wv[tap * wi..][..oc_n]);
                    if multiplier == 1 {
                        for ((a, &w), &x) in acc.iter_mut().zip(ws).zip(xs) {
                            *a = a.wrapping_add((w as i32).wrapping_mul(x as i32 - zp));
                        }
                    } else {
                        for (oc, (a, &w)) in acc.iter_mut().zip(ws).enumerate() {
                            *a = a.wrapping_add((w as i32).wrapping_mul(xs[oc / multiplier] as i32 - zp));
                        }
                    }
                }
            }
            let out = &mut out[ox * oc_n..][..oc_n];
            if self.rq.len() == 1 {
                self.rq[0].run(acc, out);
            } else {
                self.rq_channels.run(acc, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 32-bit LCG's bytes.
    fn bytes(n: usize, seed: u32) -> Vec<i8> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(7);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 24) as u8 as i8
            })
            .collect()
    }

    fn op(
        kind: ConvKind,
        strides: [usize; 2],
        dilations: [usize; 2],
        pads: [usize; 4],
        x_zp: i32,
        o: usize,
    ) -> TflConv {
        let requant = (0..o).map(|c| quantize_multiplier(0.0007 * (1.0 + c as f64 / 3.0))).collect();
        TflConv::new(kind, Window { strides, dilations, pads }, (x_zp, 3), requant, (-100, 127))
    }

    /// The GEMM path (convolutions, fully-connected) and the channel-innermost depthwise loop
    /// give the reference loop's codes on every output, over strides, dilations, asymmetric
    /// padding, extreme zero points, depth multipliers and a batch of two.
    #[test]
    fn fast_paths_equal_the_reference_loop() {
        type Case = (ConvKind, [usize; 4], [usize; 4], [usize; 2], [usize; 2], [usize; 4], i32);
        let cases: &[Case] = &[
            // kind, x NHWC, w, strides, dilations, pads, x_zp
            (ConvKind::Conv, [1, 9, 7, 5], [6, 3, 3, 5], [1, 1], [1, 1], [1, 1, 1, 1], -128),
            (ConvKind::Conv, [2, 11, 8, 3], [17, 3, 2, 3], [2, 2], [1, 1], [0, 0, 1, 1], 127),
            (ConvKind::Conv, [1, 10, 10, 4], [5, 3, 3, 4], [1, 2], [2, 1], [2, 1, 0, 3], 5),
            (ConvKind::Conv, [1, 6, 5, 33], [9, 1, 1, 33], [1, 1], [1, 1], [0; 4], -7),
            (ConvKind::Conv, [1, 6, 5, 8], [4, 1, 1, 8], [2, 2], [1, 1], [0; 4], 0),
            (ConvKind::FullyConnected, [3, 1, 1, 37], [10, 1, 1, 37], [1, 1], [1, 1], [0; 4], -128),
            (ConvKind::Depthwise, [1, 9, 8, 7], [1, 3, 3, 7], [1, 1], [1, 1], [1, 1, 1, 1], -128),
            (ConvKind::Depthwise, [2, 12, 7, 5], [1, 3, 3, 10], [2, 2], [1, 1], [0, 0, 1, 1], 127),
            (ConvKind::Depthwise, [1, 8, 8, 3], [1, 5, 3, 3], [1, 2], [2, 1], [3, 1, 2, 0], 9),
            // Blocks of 16 channels in registers, then a tail; the zero point's extremes.
            (ConvKind::Depthwise, [1, 7, 6, 37], [1, 3, 3, 37], [1, 1], [1, 1], [1, 1, 1, 1], -128),
            (ConvKind::Depthwise, [2, 9, 9, 32], [1, 3, 3, 32], [2, 2], [1, 1], [0, 0, 1, 1], 127),
            (ConvKind::Depthwise, [1, 6, 6, 20], [1, 3, 3, 40], [1, 1], [1, 1], [1, 1, 1, 1], -3),
        ];
        for (i, &(kind, x, w, strides, dilations, pads, x_zp)) in cases.iter().enumerate() {
            let o = if kind == ConvKind::Depthwise { w[3] } else { w[0] };
            let t = op(kind, strides, dilations, pads, x_zp, o);
            let (xs, ws): (Vec<usize>, Vec<usize>) = if kind == ConvKind::FullyConnected {
                (vec![x[0], x[3]], vec![w[0], w[3]])
            } else {
                (x.to_vec(), w.to_vec())
            };
            let (g, _) = t.geometry(&xs, &ws).unwrap();
            let xv = bytes(xs.iter().product(), 2 * i as u32);
            let wv = bytes(ws.iter().product(), 2 * i as u32 + 1);
            let bias: Vec<i32> = (0..o).map(|c| (c as i32 - 3) * 1500).collect();
            let want = t.by_rows(&g, &xv, &wv, &bias, false);
            let got = if kind == ConvKind::Depthwise {
                t.by_rows(&g, &xv, &wv, &bias, true)
            } else {
                t.gemm(&g, &xv, &wv, &bias).unwrap()
            };
            assert_eq!(got, want, "case {i}: {kind:?} x {x:?} w {w:?}");
            // Not all clamped: the case checks real sums.
            assert!(want.iter().collect::<std::collections::HashSet<_>>().len() > 10, "case {i}");
            // The cached packing is reused while the weights are the same data.
            if kind != ConvKind::Depthwise {
                assert_eq!(t.gemm(&g, &xv, &wv, &bias).unwrap(), want);
            }
        }
    }
}
