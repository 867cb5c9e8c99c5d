//! The convolutions' reference forms for the wider codes: 16x8 models (int16 activations,
//! int8 weights, int64 biases) and TF1's uint8 models (uint8 activations and weights with a
//! zero point), one loop for both ([`TflConv::sums`]), as LiteRT's reference kernels compute them.

use super::{ConvKind, Geometry, TflConv};
use crate::model::{Data, Tensor};
use crate::ops::tflite::fixed::mbqm;
use crate::ops::tflite::int16::mbqm64;
use crate::parallel;

impl TflConv {
    /// The 16x8 form (int16 inputs and outputs, int8 weights, zero points 0), as LiteRT's
    /// reference kernels compute it: sums in int64 with an int64 bias (in int32 with an int32
    /// one: `AccumScalar`), requantized by [`mbqm64`] (by [`mbqm`] for int32 sums) for
    /// convolutions, or multiplied in double by `x_scale · w_scale / y_scale` and rounded half
    /// away from zero for fully-connected layers (`reference_integer_ops::FullyConnected`).
    pub(super) fn eval16(&self, g: &Geometry, xv: &[i16], wv: &[i8], bias: Option<&Tensor>) -> Vec<i16> {
        let oc_n = g.y[3];
        let (bias, wide): (Vec<i64>, bool) = match bias.map(|b| &b.data) {
            Some(Data::I32(v)) => (v.iter().map(|&b| b as i64).collect(), false),
            Some(Data::I64(v)) => (v.clone(), true),
            _ => (vec![0; oc_n], true),
        };
        self.sums(g, xv, wv, (0, 0), |acc, oc| {
            let ch = if self.requant.len() == 1 { 0 } else { oc };
            let v = if self.kind == ConvKind::FullyConnected {
                let acc = if wide { acc + bias[oc] } else { (acc as i32).wrapping_add(bias[oc] as i32) as i64 };
                (acc as f64 * self.real[ch]).round() as i32
            } else {
                let (m, s) = self.requant[ch];
                if wide {
                    mbqm64(acc + bias[oc], m, s)
                } else {
                    mbqm((acc as i32).wrapping_add(bias[oc] as i32), m, s)
                }
            };
            v.wrapping_add(self.y_zp).clamp(self.act.0, self.act.1).clamp(-32768, 32767) as i16
        })
    }

    /// The uint8 form (TF1's quantized models: `reference_ops::Conv`, `DepthwiseConv`,
    /// `FullyConnected` on uint8): int32 sums of `(w − w_zp) · (x − x_zp)`, plus the bias,
    /// requantized by [`mbqm`], plus `y_zp`, clamped to the activation's range within 0…255.
    pub(super) fn eval_u8(&self, g: &Geometry, xv: &[u8], wv: &[u8], bias: &[i32]) -> Vec<u8> {
        self.sums(g, xv, wv, (self.x_zp, self.w_zp), |acc, oc| {
            let (m, s) = self.requant[if self.requant.len() == 1 { 0 } else { oc }];
            let v = mbqm((acc as i32).wrapping_add(bias[oc]), m, s).wrapping_add(self.y_zp);
            v.clamp(self.act.0, self.act.1).clamp(0, 255) as u8
        })
    }

    /// The reference loop on any integer codes: for each output, the int64 sum of
    /// `(w − w_zp) · (x − x_zp)` over the taps inside the image (`zps = (x_zp, w_zp)`; an int32
    /// kernel's wrapping sum is this one's low 32 bits), turned into a code by `out(sum, channel)`;
    /// runs of output rows one task each.
    fn sums<X, W, Y>(
        &self,
        g: &Geometry,
        xv: &[X],
        wv: &[W],
        zps: (i32, i32),
        out: impl Fn(i64, usize) -> Y + Sync,
    ) -> Vec<Y>
    where
        X: Copy + Into<i32> + Sync,
        W: Copy + Into<i32> + Sync,
        Y: Copy + Default + Send,
    {
        let [n, _, _, c] = g.x;
        let [_, kh, kw, wi] = g.w;
        let [_, oh, ow, oc_n] = g.y;
        let taps = kh * kw;
        let (zx, zw) = zps;
        let multiplier = if self.kind == ConvKind::Depthwise { (oc_n / c.max(1)).max(1) } else { 1 };
        let row_len = ow * oc_n;
        let mut y = vec![Y::default(); n * oh * row_len];
        let work = taps * if self.kind == ConvKind::Depthwise { 1 } else { c };
        let parts = parallel::split(n * oh, parallel::tasks(y.len() * work, n * oh), 1);
        let mut blocks: Vec<_> = parts.iter().cloned().zip(parallel::split_parts(&mut y, row_len, &parts)).collect();
        // Σ (w − zw)(x − zx) over a run: int32 sums of 256 products at a time (each product is
        // within ±2^22 for int16 × int8 and ±2^16 for uint8, so 256 of them fit in int32 and the
        // loop vectorizes), added up in int64 — the exact sum, in any order.
        let dot = |ws: &[W], xs: &[X]| -> i64 {
            let mut total = 0i64;
            for (wc, xc) in ws.chunks(256).zip(xs.chunks(256)) {
                let mut part = 0i32;
                for (&w, &x) in wc.iter().zip(xc) {
                    part += (w.into() - zw) * (x.into() - zx);
                }
                total += i64::from(part);
            }
            total
        };
        parallel::for_each_mut(&mut blocks, |_, (rows, dst)| {
            let mut inside: Vec<(usize, usize)> = Vec::with_capacity(taps);
            for (r, row) in rows.clone().zip(dst.chunks_mut(row_len)) {
                let (b, oy) = (r / oh, r % oh);
                for ox in 0..ow {
                    inside.clear();
                    self.taps(g, b, (oy, ox), |tap, px| inside.push((tap, px)));
                    for oc in 0..oc_n {
                        let mut acc = 0i64;
                        for &(tap, px) in &inside {
                            if self.kind == ConvKind::Depthwise {
                                let (wt, xq): (i32, i32) = (wv[tap * wi + oc].into(), xv[px + oc / multiplier].into());
                                acc += i64::from((wt - zw) * (xq - zx));
                            } else {
                                let wrow = (oc * taps + tap) * wi;
                                acc += dot(&wv[wrow..wrow + c], &xv[px..px + c]);
                            }
                        }
                        row[ox * oc_n + oc] = out(acc, oc);
                    }
                }
            }
        });
        y
    }
}
