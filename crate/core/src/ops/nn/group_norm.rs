//! GroupNormalization (opsets 18 and 21): the channels of `[N, C, D…]` cut into `num_groups`
//! groups, each (image, group) normalised over its channels' elements (mean 0, variance 1,
//! `epsilon` added to the variance), then scaled and shifted — per channel (opset 21: `scale`
//! and `bias` of `[C]`) or per group (opset 18: `[num_groups]`). Statistics in float32, as
//! [`super::instance_norm`] (which PyTorch's exporters use for `nn.GroupNorm` up to opset 20).

use super::{f32_fact, f32_input, f32_output, input_shape};
use crate::model::{DType, Node, Tensor};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// A built GroupNormalization node.
#[derive(Debug, Clone)]
pub struct GroupNorm {
    epsilon: f32,
    groups: usize,
}

/// Builds GroupNormalization (`num_groups`, `epsilon` default 1e-5).
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let groups = node.attrs.int("num_groups", 0);
    if groups <= 0 || groups > 1 << 20 {
        return Err(OpError::malformed(format!("num_groups {groups} must be positive")));
    }
    Ok(Box::new(GroupNorm { epsilon: node.attrs.float("epsilon", 1e-5), groups: groups as usize }))
}

impl GroupNorm {
    /// `(N, C, elements per channel, per channel)`: whether the parameters are per channel.
    fn layout(&self, x: &[usize], scale: &[usize], bias: &[usize]) -> Result<(usize, usize, usize, bool), OpError> {
        if x.len() < 2 {
            return Err(OpError::mismatch(format!("input must be [N, C, D…], got shape {x:?}")));
        }
        let c = x[1];
        if !c.is_multiple_of(self.groups) {
            return Err(OpError::mismatch(format!("{c} channels do not split into {} groups", self.groups)));
        }
        let per_channel = scale == [c];
        for (what, s) in [("scale", scale), ("bias", bias)] {
            if s != [c] && s != [self.groups] {
                return Err(OpError::mismatch(format!(
                    "{what} must have shape [{c}] (per channel) or [{}] (per group), got {s:?}",
                    self.groups
                )));
            }
            if (s == [c]) != per_channel && c != self.groups {
                return Err(OpError::mismatch("scale and bias must both be per channel or both per group"));
            }
        }
        Ok((x[0], c, x[2..].iter().product(), per_channel))
    }
}

impl Op for GroupNorm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = f32_fact(inputs, 0, "X")?;
        let (s, b) = (f32_fact(inputs, 1, "scale")?, f32_fact(inputs, 2, "bias")?);
        self.layout(&x.shape, &s.shape, &b.shape)?;
        Ok(vec![Fact::new(DType::F32, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = f32_input(inputs, 0, "X")?;
        let (scale, bias) = (f32_input(inputs, 1, "scale")?, f32_input(inputs, 2, "bias")?);
        let shape = input_shape(inputs, 0).unwrap_or_default().to_vec();
        let (n, c, plane, per_channel) = self.layout(
            &shape,
            input_shape(inputs, 1).unwrap_or_default(),
            input_shape(inputs, 2).unwrap_or_default(),
        )?;
        let cg = c / self.groups;
        let block = cg * plane;
        let mut y = vec![0f32; x.len()];
        for b in 0..n * self.groups {
            let (src, dst) = (&x[b * block..][..block], &mut y[b * block..][..block]);
            let count = block.max(1) as f32;
            let mean = src.iter().sum::<f32>() / count;
            let var = src.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / count;
            let is = 1.0 / (var + self.epsilon).sqrt();
            let g = b % self.groups;
            for (k, (o, &v)) in dst.iter_mut().zip(src).enumerate() {
                let p = if per_channel { g * cg + k / plane.max(1) } else { g };
                *o = (v - mean) * is * scale[p] + bias[p];
            }
        }
        Ok(vec![f32_output(shape, y)?])
    }
}
