//! `qplay.FakeQuant`: `QuantizeLinear` then `DequantizeLinear` as one float op,
//! `y = (clamp(round_half_even(x / s) + z, qmin, qmax) − z) · s`, per tensor or per `axis` —
//! bit for bit the pair's output — with a backward for quantization-aware training:
//!
//! - `x`: the straight-through estimator, `dy/dx = 1` where `x` falls inside the grid's range,
//!   0 where it clamps;
//! - `s`: LSQ (Esser et al., 2020), `dy/ds = round(x/s) − x/s` inside the range and
//!   `q_bound − z` where it clamps, summed per scale (the gradient scaling LSQ adds,
//!   `1/√(n·Q_P)`, is the trainer's: [`lsq_grad_scale`]);
//! - the zero point: none (fixed).
//!
//! The training engine ([`crate::train`]) puts one in place of each Q→DQ pair and each weight
//! DQ; the zero point's type gives the grid, and the `bits` attribute narrows it (4-bit weights
//! stored in int8).

use super::{params, qdq_qtype_of};
use crate::model::{DType, Node, Tensor};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};
use crate::quant::params::{ROUND_LIM, ROUND_MAGIC};
use crate::quant::QType;

/// The op type (qplay's own domain; never written to a file).
pub const FAKE_QUANT: &str = "qplay.FakeQuant";

/// FakeQuant with its `axis` (default 1) and optional narrower bit width.
#[derive(Debug, Clone)]
pub struct FakeQuant {
    axis: i64,
    bits: Option<u8>,
}

/// Builds FakeQuant from `axis` and `bits` (2..=8, or 16).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let bits = match node.attrs.int_opt("bits") {
        None => None,
        Some(b @ (2..=8 | 16)) => Some(b as u8),
        Some(b) => return Err(OpError::internal(format!("bits must be 2 to 8 or 16, got {b}"))),
    };
    Ok(Box::new(FakeQuant { axis: node.attrs.int("axis", 1), bits }))
}

impl FakeQuant {
    /// A fake quantizer along `axis` (per tensor when the scale has one value).
    pub fn new(axis: i64, bits: Option<u8>) -> FakeQuant {
        FakeQuant { axis, bits }
    }

    fn qtype(&self, zp: &Tensor) -> Result<QType, OpError> {
        let qt = qdq_qtype_of(zp.dtype())?;
        Ok(match self.bits {
            Some(bits) if bits <= qt.bits => QType { bits, ..qt },
            Some(bits) => {
                return Err(OpError::internal(format!("bits = {bits} is wider than the zero point's {}", qt.bits)))
            }
            None => qt,
        })
    }

    /// Calls `f(start, channel, x, params, qtype)` for every run of elements that share one
    /// scale (`x` is the run, starting at element `start`): whole tensors, or one channel of one
    /// outer index. The per-element loops inside `f` are plain and vectorise.
    fn blocks(
        &self,
        inputs: &[Option<&Tensor>],
        mut f: impl FnMut(usize, usize, &[f32], crate::quant::QParams, QType),
    ) -> Result<(), OpError> {
        let x = f32_in(inputs, 0)?;
        let zp = input(inputs, 2)?;
        let qt = self.qtype(zp)?;
        let p = params(&x.shape, self.axis, input(inputs, 1)?, Some(zp), Some(qt))?;
        let data = x.as_f32().map_err(OpError::internal)?;
        let (outer, ch, inner) = p.split;
        for o in 0..outer {
            for (c, &pc) in p.per_channel.iter().enumerate().take(ch) {
                let base = (o * ch + c) * inner;
                f(base, c, &data[base..base + inner], pc, qt);
            }
        }
        Ok(())
    }
}

/// [`crate::quant::QParams::fake_into`], compiled for AVX2 where the CPU has it: the same loop
/// and the same IEEE operations on wider vectors, so the same values.
pub fn fake_run(p: crate::quant::QParams, xs: &[f32], ys: &mut [f32], qt: QType) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::use_avx2() {
        #[target_feature(enable = "avx2")]
        unsafe fn wide(p: crate::quant::QParams, xs: &[f32], ys: &mut [f32], qt: QType) {
            p.fake_into(xs, ys, qt)
        }
        // SAFETY: the CPU has AVX2.
        return unsafe { wide(p, xs, ys, qt) };
    }
    p.fake_into(xs, ys, qt)
}

/// LSQ's gradient scale for a scale shared by `n` elements on a grid whose top is `q_p` steps
/// above the zero point: `1/√(n·q_p)`.
pub fn lsq_grad_scale(n: usize, q_p: i32) -> f32 {
    1.0 / ((n.max(1) as f32) * (q_p.max(1) as f32)).sqrt()
}

impl Op for FakeQuant {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        if x.dtype != DType::F32 || input_fact(inputs, 1)?.dtype != DType::F32 {
            return Err(OpError::mismatch("the input and the scale must be float32"));
        }
        qdq_qtype_of(input_fact(inputs, 2)?.dtype)?;
        Ok(vec![Fact::new(DType::F32, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = f32_in(inputs, 0)?;
        let mut y = crate::parallel::filled(x.len(), 0.0f32);
        self.blocks(inputs, |at, _, xs, p, qt| fake_run(p, xs, &mut y[at..at + xs.len()], qt))?;
        Ok(vec![f32_tensor(x.shape.clone(), y)])
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let x = f32_in(inputs, 0)?;
        let scale = f32_in(inputs, 1)?;
        let mut out: Grads = vec![None; inputs.len()];
        let Some(g) = out_grad(grads, 0, x.len())? else { return Ok(out) };
        let mut dx = vec![0.0f32; x.len()];
        let mut ds = vec![0.0f64; scale.len()];
        self.blocks(inputs, |at, c, xs, p, qt| {
            // q = round(u) + z clamps exactly where round(u) leaves [qmin − z, qmax − z] (all
            // small integers, exact in f32); beyond ±2²² it clamps whatever the rounding.
            let (lo, hi) = ((qt.qmin() - p.zero_point) as f32, (qt.qmax() - p.zero_point) as f32);
            let g = &g[at..at + xs.len()];
            // The scale's gradient in four interleaved f64 sums (a fixed order).
            let mut acc = [0.0f64; 4];
            for (k, ((d, &v), &gv)) in dx[at..at + xs.len()].iter_mut().zip(xs).zip(g).enumerate() {
                let u = v / p.scale;
                let cu = u.clamp(-ROUND_LIM, ROUND_LIM);
                let r = (cu + ROUND_MAGIC) - ROUND_MAGIC;
                let (slope, dscale) = if r < lo {
                    (0.0, lo)
                } else if r > hi {
                    (0.0, hi)
                } else {
                    (1.0, r - u)
                };
                *d = gv * slope;
                acc[k % 4] += f64::from(gv * dscale);
            }
            ds[c] += (acc[0] + acc[2]) + (acc[1] + acc[3]);
        })?;
        out[0] = Some(f32_tensor(x.shape.clone(), dx));
        out[1] = Some(f32_tensor(scale.shape.clone(), ds.into_iter().map(|v| v as f32).collect()));
        Ok(out)
    }
}
