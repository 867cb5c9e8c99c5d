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

use super::fixed::{mbqm, quantize_multiplier};
use super::{attr_f32, attr_i32, check_multiplier, i8_data};
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};
use crate::parallel;

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
#[derive(Debug, Clone)]
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
    let (x_scale, y_scale) = (attr_f32(node, "x_scale")?, attr_f32(node, "y_scale")?);
    let w_scales = node.attrs.floats("w_scales").unwrap_or(&[]);
    if w_scales.is_empty() || w_scales.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(OpError::malformed(format!("w_scales {w_scales:?} must be positive")));
    }
    let requant = w_scales
        .iter()
        .map(|&ws| {
            let m = if kind == ConvKind::FullyConnected && w_scales.len() == 1 {
                (x_scale * ws) as f64 / y_scale as f64
            } else {
                x_scale as f64 * ws as f64 / y_scale as f64
            };
            check_multiplier(quantize_multiplier(m))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let act = (attr_i32(node, "act_min")?, attr_i32(node, "act_max")?);
    Ok(Box::new(TflConv {
        kind,
        strides,
        dilations,
        pads,
        x_zp: attr_i32(node, "x_zp")?,
        y_zp: attr_i32(node, "y_zp")?,
        requant,
        act,
    }))
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
            if b.dtype() != DType::I32 || b.len() != out_c {
                return Err(OpError::mismatch(format!(
                    "the bias must be {out_c} int32 values, got {:?} {:?}",
                    b.dtype(),
                    b.shape
                )));
            }
        }
        Ok(())
    }

    /// Output row `oy` of image `b` (`[OW, O]`), as `ConvPerChannel` / `DepthwiseConvPerChannel`
    /// / `FullyConnected` loop: only the taps inside the image.
    #[allow(clippy::too_many_arguments)]
    fn row(&self, g: &Geometry, xv: &[i8], wv: &[i8], bias: &[i32], b: usize, oy: usize, out: &mut [i8]) {
        let [_, h, wd, c] = g.x;
        let [_, kh, kw, wi] = g.w;
        let [_, _, ow, oc_n] = g.y;
        let x_off = -self.x_zp;
        let [sh, sw] = self.strides;
        let [dh, dw] = self.dilations;
        let multiplier = if self.kind == ConvKind::Depthwise { (oc_n / c.max(1)).max(1) } else { 1 };
        let y0 = (oy * sh) as isize - self.pads[0] as isize;
        for ox in 0..ow {
            let x0 = (ox * sw) as isize - self.pads[1] as isize;
            for oc in 0..oc_n {
                let mut acc = 0i32;
                for ky in 0..kh {
                    let iy = y0 + (ky * dh) as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..kw {
                        let ix = x0 + (kx * dw) as isize;
                        if ix < 0 || ix >= wd as isize {
                            continue;
                        }
                        let px = ((b * h + iy as usize) * wd + ix as usize) * c;
                        if self.kind == ConvKind::Depthwise {
                            let wt = wv[(ky * kw + kx) * wi + oc] as i32;
                            acc = acc.wrapping_add(wt * (xv[px + oc / multiplier] as i32 + x_off));
                        } else {
                            let wrow = ((oc * kh + ky) * kw + kx) * wi;
                            for (&wt, &xq) in wv[wrow..wrow + c].iter().zip(&xv[px..px + c]) {
                                acc = acc.wrapping_add(wt as i32 * (xq as i32 + x_off));
                            }
                        }
                    }
                }
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
        if x.dtype != DType::I8 || w.dtype != DType::I8 {
            return Err(OpError::mismatch(format!("x and w must be int8, got {:?} and {:?}", x.dtype, w.dtype)));
        }
        let (_, shape) = self.geometry(&x.shape, &w.shape)?;
        Ok(vec![Fact::new(DType::I8, shape)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (x, w) = (input(inputs, 0)?, input(inputs, 1)?);
        let bias = inputs.get(2).copied().flatten();
        let (g, shape) = self.geometry(&x.shape, &w.shape)?;
        self.check_channels(g.y[3], bias)?;
        let (xv, wv) = (i8_data(x, "x")?, i8_data(w, "w")?);
        let bias: Vec<i32> = match bias.map(|b| &b.data) {
            Some(Data::I32(v)) => v.clone(),
            _ => vec![0; g.y[3]],
        };
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
            for (r, out) in rows.clone().zip(dst.chunks_mut(row_len)) {
                self.row(&g, xv, wv, &bias, r / oh, r % oh, out);
            }
        });
        Ok(vec![Tensor { shape, data: Data::I8(y) }])
    }
}
