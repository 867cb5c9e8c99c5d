//! The resolved arithmetic of a [`QConv`]: [`QConvSpec`] (zero-points, bias, per-channel
//! multipliers, output type and clamps, fused channel bounds) from the input's shape and type
//! and the constant parameters, read by the CPU kernels and by other backends alike.

use super::{Kind, QConv, EXACT_F32_TAPS};
use crate::model::{DType, Data, Tensor};
use crate::ops::nn::conv::Plan;
use crate::ops::nn::spatial::Window;
use crate::ops::quant::qgemm::round_half_even;
use crate::ops::quant::{params, qtype_of};
use crate::ops::{input, OpError};

/// What one `QLinearConv` / `ConvInteger` computes, resolved against its input's shape and type
/// and its constant parameters: everything a kernel needs besides the data. The CPU kernels run
/// from it, and so do other backends (the GPU's), so both read the same numbers.
#[derive(Debug, Clone)]
pub struct QConvSpec {
    pub(super) plan: Plan,
    /// Groups.
    pub group: usize,
    /// Input data type (uint8 or int8).
    pub x_dtype: DType,
    /// Weight data type (uint8 or int8).
    pub w_dtype: DType,
    /// Input zero-point.
    pub zx: i32,
    /// Weight zero-point per output channel.
    pub zw: Vec<i32>,
    /// The int32 bias per output channel, as the kernels add it: on the direct depthwise path
    /// ([`QConvSpec::depthwise_path`]) clamped to ±2³⁰ (no real bias comes near).
    pub bias: Option<Vec<i32>>,
    /// Multiplier per output channel: `sx·sw/sy` (8-bit output), `sx·sw` (float output), or
    /// one `1.0` (ConvInteger).
    pub scale: Vec<f32>,
    /// What the output is.
    pub out: QConvOut,
    /// Fused per-output-channel upper bounds (one value or one per channel), in the output's
    /// domain (codes for 8-bit output).
    pub channel_max: Option<ChannelMax>,
}

/// The output of a quantized convolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QConvOut {
    /// 8-bit codes: `clamp(round_half_even(Σ·scale) + zero_point, lo, hi)`, `lo..=hi` the fused
    /// activation's bounds as codes (the type's range without one).
    Codes {
        /// `U8` or `I8`.
        dtype: DType,
        /// Output zero-point.
        zero_point: i32,
        /// Lower clamp (code).
        lo: i32,
        /// Upper clamp (code).
        hi: i32,
    },
    /// float32 `Σ·scale`, clamped to the fused activation's bounds (infinite without one).
    F32 {
        /// Lower clamp.
        lo: f32,
        /// Upper clamp.
        hi: f32,
    },
    /// The exact int32 sums (ConvInteger).
    I32,
}

/// Fused per-channel upper bounds in the output's domain.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelMax {
    /// Codes (8-bit output).
    Codes(Vec<i32>),
    /// Floats (float output).
    F32(Vec<f32>),
}

impl QConvSpec {
    /// Batch size.
    pub fn batch(&self) -> usize {
        self.plan.batch
    }
    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.plan.in_channels
    }
    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.plan.out_channels
    }
    /// The output's shape.
    pub fn out_shape(&self) -> &[usize] {
        &self.plan.out_shape
    }
    /// The window geometry (1-D lifted to 2-D).
    pub fn window(&self) -> Window {
        self.plan.window.lifted_to_2d()
    }
    /// Whether the CPU runs this convolution on its direct depthwise kernels (one input
    /// channel per group, 2-D, at most [`EXACT_F32_TAPS`] taps) rather than the GEMM.
    pub fn depthwise_path(&self) -> bool {
        let win = self.window();
        self.plan.in_channels / self.group == 1
            && win.input.len() == 2
            && win.kernel.iter().product::<usize>() <= EXACT_F32_TAPS
    }
}

impl QConv {
    /// The resolved arithmetic for an input of `x_shape` and `x_dtype` and the other inputs'
    /// constant values (`inputs[0]` may be absent): what another executor needs to compute
    /// exactly this op.
    pub fn spec(&self, x_shape: &[usize], x_dtype: DType, inputs: &[Option<&Tensor>]) -> Result<QConvSpec, OpError> {
        let s = self.kind.slots();
        let w = input(inputs, s.w)?;
        let opt = |i: Option<usize>| i.and_then(|i| inputs.get(i).copied().flatten());
        let bias_t = opt(s.bias);
        let plan = self.conv.plan(x_shape, &w.shape, bias_t.map(|b| b.shape.as_slice()))?;
        let m = plan.out_channels;

        // Zero-points and scales, validated like QuantizeLinear's.
        let xq = qtype_of(x_dtype)?;
        let wq = qtype_of(w.dtype())?;
        let one = Tensor::scalar_f32(1.0);
        let scale_or_one = |i: Option<usize>| -> Result<&Tensor, OpError> {
            match i {
                Some(i) => input(inputs, i),
                None => Ok(&one),
            }
        };
        let zp_typed = |i: usize, want: DType, what: &str| -> Result<Option<&Tensor>, OpError> {
            let z = inputs.get(i).copied().flatten();
            match z {
                Some(z) if z.dtype() != want => {
                    Err(OpError::mismatch(format!("{what} is {:?} but its data is {want:?}", z.dtype())))
                }
                _ => Ok(z),
            }
        };
        let px = params(x_shape, 1, scale_or_one(s.sx)?, zp_typed(s.zx, x_dtype, "x_zero_point")?, Some(xq))?;
        if px.per_channel.len() != 1 {
            return Err(OpError::malformed("x_scale and x_zero_point must be scalars (per-tensor)"));
        }
        let zw_t = zp_typed(s.zw, w.dtype(), "w_zero_point")?;
        // ConvInteger has no scales: one unit scale per weight zero-point (per output channel).
        let ones = match (s.sw, zw_t) {
            (None, Some(z)) if z.len() > 1 => Tensor { shape: vec![z.len()], data: Data::F32(vec![1.0; z.len()]) },
            _ => one.clone(),
        };
        let sw = if s.sw.is_some() { scale_or_one(s.sw)? } else { &ones };
        let pw = params(&w.shape, 0, sw, zw_t, Some(wq))?;
        let (sx, zx) = (px.per_channel[0].scale, px.per_channel[0].zero_point);
        let wp = |c: usize| if pw.per_channel.len() == 1 { pw.per_channel[0] } else { pw.per_channel[c] };
        let zw: Vec<i32> = (0..m).map(|c| wp(c).zero_point).collect();
        let bias: Option<Vec<i32>> = match bias_t {
            Some(b) => match &b.data {
                Data::I32(v) => Some(v.clone()),
                _ => return Err(OpError::mismatch(format!("bias must be int32, got {:?}", b.dtype()))),
            },
            None => None,
        };

        // Output type, per-channel scale, clamp.
        let (lo, hi) = self.conv.clamp.map_or((f32::NEG_INFINITY, f32::INFINITY), |c| (c.lo, c.hi));
        let (mut out, scale): (QConvOut, Vec<f32>) = match self.kind {
            Kind::Integer => (QConvOut::I32, vec![1.0]),
            Kind::FloatOutput => (QConvOut::F32 { lo, hi }, (0..m).map(|c| sx * wp(c).scale).collect()),
            Kind::QLinear => {
                let zy_t = opt(s.zy);
                let dy = zy_t.map_or(DType::U8, |z| z.dtype());
                let py = params(&[1], 0, input(inputs, s.sy.unwrap_or(6))?, zy_t, Some(qtype_of(dy)?))?;
                if py.per_channel.len() != 1 {
                    return Err(OpError::malformed("y_scale and y_zero_point must be scalars (per-tensor)"));
                }
                let sy = py.per_channel[0].scale;
                let dtype = if dy == DType::U8 { DType::U8 } else { DType::I8 };
                (
                    QConvOut::Codes { dtype, zero_point: 0, lo: 0, hi: 0 },
                    (0..m).map(|c| sx * wp(c).scale / sy).collect(),
                )
            }
        };
        // The fused activation's bounds in the output's integer domain (rounding commutes with
        // clamping, so clamping the codes equals quantizing the clamped value).
        let to_code = match out {
            QConvOut::Codes { dtype, .. } => {
                let sy = input(inputs, s.sy.unwrap_or(6))?.as_f32().map_err(OpError::internal)?[0];
                let zy = opt(s.zy).map_or(Ok(0), |z| z.to_i64_vec().map(|v| v[0] as i32)).map_err(OpError::internal)?;
                let (tmin, tmax) = if dtype == DType::U8 { (0, 255) } else { (-128, 127) };
                let c = Code { sy, zy, tmin, tmax };
                out = QConvOut::Codes { dtype, zero_point: c.zy, lo: c.of(lo, c.tmin), hi: c.of(hi, c.tmax) };
                Some(c)
            }
            _ => None,
        };
        let channel_max = match (&self.conv.channel_max, out, to_code) {
            (None, ..) => None,
            (Some(m), QConvOut::F32 { .. }, _) => Some(ChannelMax::F32(m.clone())),
            (Some(m), QConvOut::Codes { .. }, Some(c)) => {
                Some(ChannelMax::Codes(m.iter().map(|&b| c.of(b, c.tmax)).collect()))
            }
            _ => return Err(OpError::internal("an integer-output convolution cannot carry fused channel bounds")),
        };
        let mut spec = QConvSpec {
            plan,
            group: self.conv.group,
            x_dtype,
            w_dtype: w.dtype(),
            zx,
            zw,
            bias,
            scale,
            out,
            channel_max,
        };
        if spec.depthwise_path() {
            if let Some(b) = &mut spec.bias {
                b.iter_mut().for_each(|v| *v = (*v).clamp(-(1 << 30), 1 << 30));
            }
        }
        Ok(spec)
    }
}

/// The output's quantization: a float bound `v` → its code, clamped to the type's range
/// (rounding commutes with clamping, so clamping codes equals quantizing the clamped value).
#[derive(Clone, Copy)]
struct Code {
    sy: f32,
    zy: i32,
    tmin: i32,
    tmax: i32,
}

impl Code {
    /// The code of bound `v`, or `dflt` for an infinite bound.
    fn of(&self, v: f32, dflt: i32) -> i32 {
        if v.is_finite() {
            (round_half_even(v / self.sy).saturating_add(self.zy)).clamp(self.tmin, self.tmax)
        } else {
            dflt
        }
    }
}
