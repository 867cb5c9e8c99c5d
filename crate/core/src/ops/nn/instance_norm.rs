//! InstanceNormalization: each (image, channel) plane of `[N, C, D…]` normalised over its own
//! elements (mean 0, variance 1, `epsilon` added to the variance), then `· scale[c] + B[c]`.
//! PyTorch exports `nn.GroupNorm` (FCOS's and ATSS's heads, mmdet's GN necks) and
//! `nn.InstanceNorm2d` with it. Statistics in float32, as onnxruntime computes them.

use super::{f32_fact, f32_input, f32_output, input_shape};
use crate::model::{DType, Node, Tensor};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// A built InstanceNormalization node.
#[derive(Debug, Clone)]
pub struct InstanceNorm {
    epsilon: f32,
}

/// Builds InstanceNormalization (`epsilon`, default 1e-5).
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(InstanceNorm { epsilon: node.attrs.float("epsilon", 1e-5) }))
}

/// `(planes, channels, plane size)` of an input shape, checked against the parameters' lengths.
fn layout(x: &[usize], scale: &[usize], bias: &[usize]) -> Result<(usize, usize, usize), OpError> {
    if x.len() < 3 {
        return Err(OpError::mismatch(format!("input must be [N, C, D…] with at least one D, got shape {x:?}")));
    }
    let c = x[1];
    for (what, s) in [("scale", scale), ("B", bias)] {
        if s != [c] {
            return Err(OpError::mismatch(format!("{what} must have shape [{c}] (one per channel), got {s:?}")));
        }
    }
    Ok((x[0] * c, c, x[2..].iter().product()))
}

/// Mean and 1/√(variance + ε) of one plane.
fn stats(plane: &[f32], epsilon: f32) -> (f32, f32) {
    let n = plane.len().max(1) as f32;
    let mean = plane.iter().sum::<f32>() / n;
    let var = plane.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + epsilon).sqrt())
}

impl Op for InstanceNorm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = f32_fact(inputs, 0, "input")?;
        let (s, b) = (f32_fact(inputs, 1, "scale")?, f32_fact(inputs, 2, "B")?);
        layout(&x.shape, &s.shape, &b.shape)?;
        Ok(vec![Fact::new(DType::F32, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = f32_input(inputs, 0, "input")?;
        let (scale, bias) = (f32_input(inputs, 1, "scale")?, f32_input(inputs, 2, "B")?);
        let shape = input_shape(inputs, 0).unwrap_or_default().to_vec();
        let (planes, c, n) =
            layout(&shape, input_shape(inputs, 1).unwrap_or_default(), input_shape(inputs, 2).unwrap_or_default())?;
        let mut y = vec![0f32; x.len()];
        for p in 0..planes {
            let (src, dst) = (&x[p * n..][..n], &mut y[p * n..][..n]);
            let (mean, is) = stats(src, self.epsilon);
            let (s, b) = (scale[p % c], bias[p % c]);
            for (o, &v) in dst.iter_mut().zip(src) {
                *o = (v - mean) * is * s + b;
            }
        }
        Ok(vec![f32_output(shape, y)?])
    }

    /// The normalisation's gradient per plane: with `x̂` the normalised input and `ĝ = g·scale`,
    /// `dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) / σ`; `dscale = Σ g·x̂`, `dB = Σ g`.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let x = f32_in(b.inputs, 0)?;
        let (st, bt) = (f32_in(b.inputs, 1)?, f32_in(b.inputs, 2)?);
        let Some(g) = out_grad(b.grads, 0, x.len())? else { return Ok(vec![None; 3]) };
        let (planes, c, n) = layout(&x.shape, &st.shape, &bt.shape)?;
        let xv = x.as_f32().map_err(OpError::internal)?;
        let scale = st.as_f32().map_err(OpError::internal)?;
        let (mut gx, mut gs, mut gb) = (vec![0f32; x.len()], vec![0f32; c], vec![0f32; c]);
        for p in 0..planes {
            let (src, gp) = (&xv[p * n..][..n], &g[p * n..][..n]);
            let (mean, is) = stats(src, self.epsilon);
            let (mut sum_g, mut sum_gx) = (0f64, 0f64);
            for (&v, &d) in src.iter().zip(gp) {
                let xh = (v - mean) * is;
                sum_g += d as f64;
                sum_gx += (d * xh) as f64;
            }
            gs[p % c] += sum_gx as f32;
            gb[p % c] += sum_g as f32;
            let s = scale[p % c];
            let (mg, mgx) = ((sum_g / n as f64) as f32 * s, (sum_gx / n as f64) as f32 * s);
            for ((o, &v), &d) in gx[p * n..][..n].iter_mut().zip(src).zip(gp) {
                let xh = (v - mean) * is;
                *o = (d * s - mg - xh * mgx) * is;
            }
        }
        Ok(vec![Some(f32_tensor(x.shape.clone(), gx)), Some(f32_tensor(vec![c], gs)), Some(f32_tensor(vec![c], gb))])
    }
}
