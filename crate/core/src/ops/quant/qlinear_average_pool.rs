//! `com.microsoft::QLinearAveragePool`: average pooling of an 8-bit tensor, requantized, as
//! onnxruntime's CPU kernel computes it (`qlinear_pool.cc`): the codes dequantized to float32
//! (`sX · f32(x − zX)`), each window's values summed in float32 in row-major order and divided by
//! its count (the whole kernel with `count_include_pad`, else the taps inside the input), then
//! `clamp(round_half_even(v / sY + f32(zY)))`. A window that is the whole map with no padding
//! takes onnxruntime's global-average path instead (MLAS's integer sums, as
//! [`QLinearGlobalAveragePool`](super::qlinear_global_average_pool)). Inputs `X, X_scale,
//! X_zero_point, Y_scale, Y_zero_point` (per tensor); attributes as AveragePool's (no dilations)
//! plus `channels_last`. onnxruntime's quantizer writes it for AveragePool in its QOperator format.

use super::qlinear_add::scalar_params;
use super::qlinear_global_average_pool::global_average;
use super::qtype_of;
use super::{codes_data, codes_i32};
use crate::model::{Node, Tensor};
use crate::ops::nn::spatial::{pool_geometry, Window, WindowAttrs};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// A built QLinearAveragePool.
#[derive(Debug, Clone)]
pub struct QLinearAveragePool {
    window: WindowAttrs,
    count_include_pad: bool,
    channels_last: bool,
}

/// Builds QLinearAveragePool.
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    super::lookup::check_ort_lookup(node, "QLinearAveragePool")?;
    let window = WindowAttrs::from_node(node, true)?;
    if window.dilations.as_ref().is_some_and(|d| d.iter().any(|&v| v != 1)) {
        return Err(OpError::unsupported(
            "QLinearAveragePool has no dilations (onnxruntime ignores them); remove them",
        ));
    }
    if window.kernel.is_none() {
        return Err(OpError::malformed("QLinearAveragePool needs kernel_shape"));
    }
    Ok(Box::new(QLinearAveragePool {
        window,
        count_include_pad: node.attrs.int("count_include_pad", 0) != 0,
        channels_last: node.attrs.int("channels_last", 0) != 0,
    }))
}

/// `[N, C, spatial…]` from the tensor's own layout, and back.
fn to_nchw(shape: &[usize], channels_last: bool) -> Vec<usize> {
    let mut s = shape.to_vec();
    if channels_last && s.len() >= 3 {
        let c = s.pop().unwrap_or(1);
        s.insert(1, c);
    }
    s
}

fn from_nchw(shape: &[usize], channels_last: bool) -> Vec<usize> {
    let mut s = shape.to_vec();
    if channels_last && s.len() >= 3 {
        let c = s.remove(1);
        s.push(c);
    }
    s
}

impl QLinearAveragePool {
    /// The window over the NCHW view and the output shape in the tensor's own layout.
    fn geometry(&self, shape: &[usize]) -> Result<(Window, Vec<usize>), OpError> {
        if shape.len() < 3 || shape.len() > 5 {
            return Err(OpError::unsupported(format!(
                "QLinearAveragePool takes 1 to 3 spatial axes (as onnxruntime), got shape {shape:?}"
            )));
        }
        let (w, out) = pool_geometry(&self.window, &to_nchw(shape, self.channels_last))?;
        Ok((w, from_nchw(&out, self.channels_last)))
    }

    /// Whether onnxruntime takes its global path: the kernel is the map and nothing is padded.
    fn is_global(w: &Window) -> bool {
        w.kernel == w.input && w.pad_begin.iter().chain(&w.pad_end).all(|&p| p == 0)
    }
}

impl Op for QLinearAveragePool {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        qtype_of(x.dtype).map_err(|e| e.context("QLinearAveragePool"))?;
        Ok(vec![Fact::new(x.dtype, self.geometry(&x.shape)?.1)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let opt = |i: usize| inputs.get(i).copied().flatten();
        let x = input(inputs, 0)?;
        let dtype = x.dtype();
        let qt = qtype_of(dtype)?;
        let px = scalar_params(input(inputs, 1)?, opt(2), dtype, "X")?;
        let py = scalar_params(input(inputs, 3)?, opt(4), dtype, "Y")?;
        let (w, out_shape) = self.geometry(&x.shape)?;
        let nchw = to_nchw(&x.shape, self.channels_last);
        let (n, c) = (nchw[0], nchw[1]);
        let size: usize = w.input.iter().product();
        let codes = codes_i32(x)?;
        if Self::is_global(&w) {
            let y = global_average(&codes, (n, c, size), self.channels_last, (px, py), qt)?;
            return Ok(vec![Tensor { shape: out_shape, data: codes_data(y, dtype) }]);
        }
        // Dequantized, as onnxruntime's `dequantize_value` (scale × the code's offset).
        let deq = |q: i32| px.scale * (q - px.zero_point) as f32;
        // Element (plane p, spatial offset s) of the input in its own layout.
        let at = |p: usize, s: usize| {
            let (b, ch) = (p / c, p % c);
            if self.channels_last {
                codes[(b * size + s) * c + ch]
            } else {
                codes[p * size + s]
            }
        };
        let nd = w.input.len();
        let in_strides = crate::model::strides(&w.input);
        let out_size: usize = w.output.iter().product();
        let kernel_size: usize = w.kernel.iter().product();
        let (qlo, qhi) = (qt.qmin(), qt.qmax());
        let mut y = vec![0i32; n * c * out_size];
        let mut o = vec![0usize; nd];
        for os in 0..out_size {
            // This output's window per axis: [start, end) clipped to the input, as onnxruntime.
            let mut rem = os;
            for d in (0..nd).rev() {
                o[d] = rem % w.output[d];
                rem /= w.output[d];
            }
            let ranges: Vec<(usize, usize)> = (0..nd)
                .map(|d| {
                    let start = (o[d] * w.strides[d]) as isize - w.pad_begin[d] as isize;
                    let end = (start + w.kernel[d] as isize).min(w.input[d] as isize);
                    (start.max(0) as usize, end.max(0) as usize)
                })
                .collect();
            let taps: usize = ranges.iter().map(|&(a, b)| b.saturating_sub(a)).product();
            let count = if self.count_include_pad { kernel_size } else { taps };
            for p in 0..n * c {
                let mut sum = 0f32;
                if taps > 0 {
                    let mut idx: Vec<usize> = ranges.iter().map(|r| r.0).collect();
                    'window: loop {
                        let s: usize = idx.iter().zip(&in_strides).map(|(i, st)| i * st).sum();
                        sum += deq(at(p, s));
                        for d in (0..nd).rev() {
                            idx[d] += 1;
                            if idx[d] < ranges[d].1 {
                                continue 'window;
                            }
                            idx[d] = ranges[d].0;
                        }
                        break;
                    }
                }
                let v = sum / count as f32;
                let q = (v / py.scale + py.zero_point as f32).round_ties_even();
                let q = if q.is_nan() { 0 } else { (q as i64).clamp(qlo as i64, qhi as i64) as i32 };
                let (b, ch) = (p / c, p % c);
                let dst = if self.channels_last { (b * out_size + os) * c + ch } else { p * out_size + os };
                y[dst] = q;
            }
        }
        Ok(vec![Tensor { shape: out_shape, data: codes_data(y, dtype) }])
    }
}
