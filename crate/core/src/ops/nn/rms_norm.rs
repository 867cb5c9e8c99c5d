//! RMSNormalization (opset 23): `X / √(mean(X²) + epsilon) · scale` over the axes from `axis`
//! (default −1) to the last, `scale` broadcast to those axes. PyTorch's dynamo exporter writes
//! it for `nn.RMSNorm` from opset 23. Computed in float32 (`stash_type` 1, the default).

use super::layer_norm::param_index;
use super::{f32_fact, f32_input, f32_output, input_shape, normalize_axis};
use crate::model::{DType, Node, Tensor};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// RMSNormalization.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    axis: i64,
    epsilon: f32,
}

/// Builds RMSNormalization.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    if node.attrs.int("stash_type", 1) != 1 {
        return Err(OpError::unsupported("RMSNormalization with stash_type other than 1 (float32) is not supported"));
    }
    Ok(Box::new(RmsNorm { axis: node.attrs.int("axis", -1), epsilon: node.attrs.float("epsilon", 1e-5) }))
}

impl Op for RmsNorm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = f32_fact(inputs, 0, "RMSNormalization X")?;
        let a = normalize_axis(self.axis, x.shape.len(), "axis")?;
        param_index(&f32_fact(inputs, 1, "RMSNormalization scale")?.shape, &x.shape[a..], "RMSNormalization scale")?;
        Ok(vec![Fact::new(DType::F32, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = f32_input(inputs, 0, "RMSNormalization X")?;
        let shape = input_shape(inputs, 0).unwrap_or_default().to_vec();
        let a = normalize_axis(self.axis, shape.len(), "axis")?;
        let block = &shape[a..];
        let scale = f32_input(inputs, 1, "RMSNormalization scale")?;
        let si = param_index(input_shape(inputs, 1).unwrap_or_default(), block, "RMSNormalization scale")?;
        let n: usize = block.iter().product();
        let mut y = vec![0f32; x.len()];
        if n > 0 {
            for (row, out) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
                let ms = row.iter().map(|v| v * v).sum::<f32>() / n as f32;
                let inv = 1.0 / (ms + self.epsilon).sqrt();
                for (e, (o, &v)) in out.iter_mut().zip(row).enumerate() {
                    *o = v * inv * scale[si[e]];
                }
            }
        }
        Ok(vec![f32_output(shape, y)?])
    }
}
