//! `BatchNormalization` in inference mode: `y = (x − mean) / √(var + ε) · scale + B` per channel
//! (axis 1), folded into one multiply-add per element. Training mode (and its running-stat
//! outputs) is rejected at build time.

use super::{f32_fact, f32_input, f32_output, only_first_output};
use crate::model::{DType, Node};
use crate::ops::grad::{f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{BuildCtx, Fact, Op, OpError, Tensor};

/// A built `BatchNormalization` node.
#[derive(Debug, Clone)]
pub struct BatchNorm {
    epsilon: f32,
}

/// Builds `BatchNormalization` (`epsilon`; `momentum` is ignored in inference).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    if node.attrs.int("training_mode", 0) != 0 {
        return Err(OpError::unsupported(
            "training_mode = 1 is not supported: export the model in inference (eval) mode",
        ));
    }
    only_first_output(node, "running mean/variance outputs exist only in training mode")?;
    let epsilon = node.attrs.float("epsilon", 1e-5);
    if !(epsilon >= 0.0 && epsilon.is_finite()) {
        return Err(OpError::malformed(format!("epsilon must be a finite non-negative number, got {epsilon}")));
    }
    Ok(Box::new(BatchNorm { epsilon }))
}

impl BatchNorm {
    /// `epsilon`, validated.
    pub fn epsilon(&self) -> f32 {
        self.epsilon
    }
}

const PARAMS: [&str; 4] = ["scale", "B", "input_mean", "input_var"];

fn check(x: &[usize], params: [&[usize]; 4]) -> Result<(), OpError> {
    if x.len() < 2 {
        return Err(OpError::mismatch(format!("input X must be [N, C, …] (rank ≥ 2), got shape {x:?}")));
    }
    for (name, shape) in PARAMS.iter().zip(params) {
        if shape != [x[1]] {
            return Err(OpError::mismatch(format!(
                "{name} should have shape [{}] (one value per channel), got {shape:?}",
                x[1]
            )));
        }
    }
    Ok(())
}

impl Op for BatchNorm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = f32_fact(inputs, 0, "X")?;
        let p: Vec<&Fact> = (0..4).map(|i| f32_fact(inputs, i + 1, PARAMS[i])).collect::<Result<_, _>>()?;
        check(&x.shape, [&p[0].shape, &p[1].shape, &p[2].shape, &p[3].shape])?;
        Ok(vec![Fact::new(DType::F32, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = f32_input(inputs, 0, "X")?;
        let p: Vec<&[f32]> = (0..4).map(|i| f32_input(inputs, i + 1, PARAMS[i])).collect::<Result<_, _>>()?;
        let shape = |i: usize| super::input_shape(inputs, i).unwrap_or_default();
        let x_shape = shape(0);
        check(x_shape, [shape(1), shape(2), shape(3), shape(4)])?;
        let (n, c) = (x_shape[0], x_shape[1]);
        let plane: usize = x_shape[2..].iter().product();
        let mut out = vec![0.0f32; x.len()];
        let params = p[0].iter().zip(p[1]).zip(p[2]).zip(p[3]).take(c);
        for (ch, (((&scale, &bias), &mean), &var)) in params.enumerate() {
            let a = scale / (var + self.epsilon).sqrt();
            let b = bias - mean * a;
            for img in 0..n {
                let at = (img * c + ch) * plane..(img * c + ch + 1) * plane;
                out[at.clone()].iter_mut().zip(&x[at]).for_each(|(o, &v)| *o = v * a + b);
            }
        }
        Ok(vec![f32_output(x_shape.to_vec(), out)?])
    }

    /// Inference-mode batch norm is `x · a + b` per channel: `dX = dY · a`. Its statistics and
    /// affine parameters are frozen (training folds the batch norms it can into the
    /// convolution before them; the rest keep their values).
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let x = f32_input(inputs, 0, "X")?;
        let mut out: Grads = vec![None; inputs.len()];
        let Some(g) = out_grad(grads, 0, x.len())? else { return Ok(out) };
        let scale = f32_input(inputs, 1, PARAMS[0])?;
        let var = f32_input(inputs, 4, PARAMS[3])?;
        let x_shape = super::input_shape(inputs, 0).unwrap_or_default();
        let c = x_shape.get(1).copied().unwrap_or(0);
        let plane: usize = x_shape.iter().skip(2).product();
        let gx = g
            .iter()
            .enumerate()
            .map(|(i, &g)| {
                let ch = (i / plane.max(1)) % c.max(1);
                g * scale[ch] / (var[ch] + self.epsilon).sqrt()
            })
            .collect();
        out[0] = Some(f32_tensor(x_shape.to_vec(), gx));
        Ok(out)
    }
}
