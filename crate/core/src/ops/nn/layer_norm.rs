//! LayerNormalization (opset 17): normalises `X` over the axes from `axis` to the last (mean 0,
//! variance 1, `epsilon` added to the variance), then `· Scale + B` (both broadcast to those
//! axes). Optional outputs: `Mean` and `InvStdDev`, shaped like `X` with the normalised axes
//! set to 1. Computed in float32 (`stash_type` 1, the default and what exporters write).
//! Transformer blocks in detectors (RT-DETR's encoder and decoder, DETR, ViT backbones) use it.

use super::{f32_fact, f32_input, f32_input_opt, f32_output, input_shape, normalize_axis};
use crate::model::{strides, Node, Tensor};
use crate::ops::grad::{out_grad, Backward, GradError, Grads};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// LayerNormalization.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    axis: i64,
    epsilon: f32,
}

/// Builds LayerNormalization.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    if node.attrs.int("stash_type", 1) != 1 {
        return Err(OpError::unsupported("LayerNormalization with stash_type other than 1 (float32) is not supported"));
    }
    Ok(Box::new(LayerNorm { axis: node.attrs.int("axis", -1), epsilon: node.attrs.float("epsilon", 1e-5) }))
}

/// Where each element of the normalised block reads a parameter of `shape` broadcast to `block`
/// (right-aligned; leading 1s beyond the block allowed). `what` names it in errors.
pub(super) fn param_index(shape: &[usize], block: &[usize], what: &str) -> Result<Vec<usize>, OpError> {
    let extra = shape.len().saturating_sub(block.len());
    if shape[..extra].iter().any(|&d| d != 1) {
        return Err(OpError::mismatch(format!(
            "{what} of shape {shape:?} does not broadcast to the normalised axes {block:?}"
        )));
    }
    let shape = &shape[extra..];
    let off = block.len() - shape.len();
    let own = strides(shape);
    for (i, &d) in shape.iter().enumerate() {
        if d != 1 && d != block[off + i] {
            return Err(OpError::mismatch(format!(
                "{what} of shape {shape:?} does not broadcast to the normalised axes {block:?}"
            )));
        }
    }
    let n: usize = block.iter().product();
    let bstr = strides(block);
    Ok((0..n)
        .map(|e| {
            (0..shape.len())
                .map(|i| if shape[i] == 1 { 0 } else { (e / bstr[off + i]) % block[off + i] * own[i] })
                .sum()
        })
        .collect())
}

impl LayerNorm {
    fn stats_shape(&self, x: &[usize]) -> Result<(usize, Vec<usize>), OpError> {
        let a = normalize_axis(self.axis, x.len(), "axis")?;
        let mut s = x.to_vec();
        s[a..].iter_mut().for_each(|d| *d = 1);
        Ok((a, s))
    }
}

impl Op for LayerNorm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = f32_fact(inputs, 0, "LayerNormalization X")?;
        let (a, stats) = self.stats_shape(&x.shape)?;
        let scale = f32_fact(inputs, 1, "LayerNormalization Scale")?;
        param_index(&scale.shape, &x.shape[a..], "LayerNormalization Scale")?;
        if let Some(b) = super::f32_fact_opt(inputs, 2, "LayerNormalization B")? {
            param_index(&b.shape, &x.shape[a..], "LayerNormalization B")?;
        }
        Ok(vec![Fact::new(x.dtype, x.shape.clone()), Fact::new(x.dtype, stats.clone()), Fact::new(x.dtype, stats)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = f32_input(inputs, 0, "LayerNormalization X")?;
        let shape = input_shape(inputs, 0).unwrap_or_default().to_vec();
        let (a, stats) = self.stats_shape(&shape)?;
        let block = &shape[a..];
        let scale = f32_input(inputs, 1, "LayerNormalization Scale")?;
        let si = param_index(input_shape(inputs, 1).unwrap_or_default(), block, "LayerNormalization Scale")?;
        let bias = f32_input_opt(inputs, 2, "LayerNormalization B")?;
        let bi = match bias {
            Some(_) => Some(param_index(input_shape(inputs, 2).unwrap_or_default(), block, "LayerNormalization B")?),
            None => None,
        };
        let n: usize = block.iter().product();
        let rows = x.len().checked_div(n).unwrap_or(0);
        let (mut y, mut means, mut inv) = (vec![0f32; x.len()], vec![0f32; rows], vec![0f32; rows]);
        for r in 0..rows {
            let row = &x[r * n..][..n];
            let mean = row.iter().sum::<f32>() / n as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
            let is = 1.0 / (var + self.epsilon).sqrt();
            for (e, (o, &v)) in y[r * n..][..n].iter_mut().zip(row).enumerate() {
                *o = (v - mean) * is * scale[si[e]]
                    + match (bias, &bi) {
                        (Some(b), Some(bi)) => b[bi[e]],
                        _ => 0.0,
                    };
            }
            (means[r], inv[r]) = (mean, is);
        }
        Ok(vec![f32_output(shape, y)?, f32_output(stats.clone(), means)?, f32_output(stats, inv)?])
    }

    /// `Y`'s gradient to `X`, `Scale` and `B` (per row, with `x̂` the normalised input and
    /// `d = dY · Scale`: `dX = (d − mean(d) − x̂ · mean(d · x̂)) / σ`; `dScale = Σ dY · x̂`,
    /// `dB = Σ dY`). Gradients arriving at `Mean` or `InvStdDev` have no backward.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        if b.grads.iter().skip(1).any(Option::is_some) {
            return Err(GradError::NoBackward);
        }
        let inputs = b.inputs;
        let mut out: Grads = vec![None; inputs.len()];
        let x = f32_input(inputs, 0, "LayerNormalization X")?;
        let shape = input_shape(inputs, 0).unwrap_or_default().to_vec();
        let Some(g) = out_grad(b.grads, 0, x.len())? else { return Ok(out) };
        let (a, _) = self.stats_shape(&shape)?;
        let block = &shape[a..];
        let scale = f32_input(inputs, 1, "LayerNormalization Scale")?;
        let scale_shape = input_shape(inputs, 1).unwrap_or_default().to_vec();
        let si = param_index(&scale_shape, block, "LayerNormalization Scale")?;
        let bias_shape = input_shape(inputs, 2).map(<[usize]>::to_vec);
        let bi = match &bias_shape {
            Some(s) if f32_input_opt(inputs, 2, "LayerNormalization B")?.is_some() => {
                Some(param_index(s, block, "LayerNormalization B")?)
            }
            _ => None,
        };
        let n: usize = block.iter().product();
        let rows = x.len().checked_div(n).unwrap_or(0);
        let (mut dx, mut ds) = (vec![0f32; x.len()], vec![0f32; scale.len()]);
        let mut db = vec![0f32; bias_shape.as_ref().map_or(0, |s| s.iter().product())];
        let mut xhat = vec![0f32; n];
        let mut d = vec![0f32; n];
        for r in 0..rows {
            let (row, gr) = (&x[r * n..][..n], &g[r * n..][..n]);
            let mean = row.iter().sum::<f32>() / n as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
            let is = 1.0 / (var + self.epsilon).sqrt();
            let (mut md, mut mdx) = (0f64, 0f64);
            for e in 0..n {
                xhat[e] = (row[e] - mean) * is;
                d[e] = gr[e] * scale[si[e]];
                md += f64::from(d[e]);
                mdx += f64::from(d[e] * xhat[e]);
                ds[si[e]] += gr[e] * xhat[e];
                if let Some(bi) = &bi {
                    db[bi[e]] += gr[e];
                }
            }
            let (md, mdx) = ((md / n as f64) as f32, (mdx / n as f64) as f32);
            for (e, o) in dx[r * n..][..n].iter_mut().enumerate() {
                *o = (d[e] - md - xhat[e] * mdx) * is;
            }
        }
        let t = |shape: Vec<usize>, v: Vec<f32>| Some(Tensor { shape, data: crate::model::Data::F32(v) });
        out[0] = t(shape, dx);
        out[1] = t(scale_shape, ds);
        if let (Some(s), Some(_)) = (bias_shape, &bi) {
            out[2] = t(s, db);
        }
        Ok(out)
    }
}
