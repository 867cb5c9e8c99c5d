//! LpNormalization and LRN: two per-position normalisations of older networks.
//!
//! - LpNormalization (`axis`, default −1; `p` 1 or 2): each vector along `axis` divided by its
//!   L1 or L2 norm (Caffe SSD's `conv4_3_norm` converts to it, then a per-channel scale). A
//!   zero vector stays zero, as onnxruntime leaves it.
//! - LRN (`size`, `alpha`, `beta`, `bias`): across channels of `[N, C, D…]`,
//!   `x / (bias + alpha / size · Σ x²)^beta` over the `size` channels around each
//!   (`⌊(size − 1) / 2⌋` before, `⌈(size − 1) / 2⌉` after).

use super::{f32_fact, f32_input, f32_output, input_shape, normalize_axis};
use crate::model::{DType, Node, Tensor};
use crate::ops::{BuildCtx, Fact, Op, OpError, Registry};

/// A built LpNormalization.
#[derive(Debug, Clone)]
pub struct LpNorm {
    axis: i64,
    p: i64,
}

/// A built LRN.
#[derive(Debug, Clone)]
pub struct Lrn {
    size: usize,
    alpha: f32,
    beta: f32,
    bias: f32,
}

/// Adds LpNormalization and LRN.
pub fn register(r: &mut Registry) {
    r.register("LpNormalization", |n: &Node, _: &BuildCtx| {
        let p = n.attrs.int("p", 2);
        if p != 1 && p != 2 {
            return Err(OpError::unsupported(format!("LpNormalization p = {p}: only 1 and 2 are defined")));
        }
        Ok(Box::new(LpNorm { axis: n.attrs.int("axis", -1), p }) as Box<dyn Op>)
    });
    r.register("LRN", |n: &Node, _: &BuildCtx| {
        let size = n.attrs.int("size", 0);
        if size <= 0 || size > 1 << 16 {
            return Err(OpError::malformed(format!("LRN size {size} must be positive")));
        }
        let (alpha, beta, bias) =
            (n.attrs.float("alpha", 1e-4), n.attrs.float("beta", 0.75), n.attrs.float("bias", 1.0));
        Ok(Box::new(Lrn { size: size as usize, alpha, beta, bias }) as Box<dyn Op>)
    });
}

/// `(outer, len, inner)` of `axis`.
fn around(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (shape[..axis].iter().product(), shape[axis], shape[axis + 1..].iter().product())
}

impl Op for LpNorm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = f32_fact(inputs, 0, "input")?;
        normalize_axis(self.axis, x.shape.len(), "axis")?;
        Ok(vec![Fact::new(DType::F32, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = f32_input(inputs, 0, "input")?;
        let shape = input_shape(inputs, 0).unwrap_or_default().to_vec();
        let (outer, len, inner) = around(&shape, normalize_axis(self.axis, shape.len(), "axis")?);
        let mut y = x.to_vec();
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| (o * len + k) * inner + i;
                let norm = if self.p == 1 {
                    (0..len).map(|k| x[at(k)].abs()).sum::<f32>()
                } else {
                    (0..len).map(|k| x[at(k)] * x[at(k)]).sum::<f32>().sqrt()
                };
                if norm != 0.0 {
                    (0..len).for_each(|k| y[at(k)] = x[at(k)] / norm);
                }
            }
        }
        Ok(vec![f32_output(shape, y)?])
    }
}

impl Op for Lrn {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = f32_fact(inputs, 0, "X")?;
        if x.shape.len() < 2 {
            return Err(OpError::mismatch(format!("X must be [N, C, …], got {:?}", x.shape)));
        }
        Ok(vec![Fact::new(DType::F32, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = f32_input(inputs, 0, "X")?;
        let shape = input_shape(inputs, 0).unwrap_or_default().to_vec();
        if shape.len() < 2 {
            return Err(OpError::mismatch(format!("X must be [N, C, …], got {shape:?}")));
        }
        let (outer, c, inner) = around(&shape, 1);
        let (before, after) = ((self.size - 1) / 2, (self.size - 1).div_ceil(2));
        let k = self.alpha / self.size as f32;
        let mut y = vec![0f32; x.len()];
        for o in 0..outer {
            for ch in 0..c {
                let (lo, hi) = (ch.saturating_sub(before), (ch + after).min(c - 1));
                for i in 0..inner {
                    let sq: f32 = (lo..=hi).map(|j| x[(o * c + j) * inner + i].powi(2)).sum();
                    let at = (o * c + ch) * inner + i;
                    y[at] = x[at] / (self.bias + k * sq).powf(self.beta);
                }
            }
        }
        Ok(vec![f32_output(shape, y)?])
    }
}
