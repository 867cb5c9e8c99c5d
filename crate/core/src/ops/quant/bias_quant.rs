//! `qplay.BiasQuant`: a layer's bias on its int32 grid, for quantization-aware training.
//!
//! `y[c] = q[c] · s[c]` with `s[c] = s_x · s_w[c]` (the float32 product: the input's scale times
//! the weight's, one per output channel or one in all) and `q[c] = round_half_even(b[c] / s[c])`
//! clamped to int32 — bit for bit what the exported `DequantizeLinear` of the int32 bias at
//! that scale gives, so the trained model and the file compute the same thing. Inputs: the
//! float bias `b`, `s_x` (one value), `s_w`.
//!
//! Backward: the straight-through estimator for `b` (`dy/db = 1`); none for the scales (the
//! bias grid is far finer than the activations', so its pull on them is left out).

use crate::model::{DType, Node, Tensor};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{input_fact, BuildCtx, Fact, Op, OpError};

/// The op type (qplay's own domain; never written to a file).
pub const BIAS_QUANT: &str = "qplay.BiasQuant";

/// BiasQuant (no attributes).
#[derive(Debug, Clone, Default)]
pub struct BiasQuant;

/// Builds BiasQuant.
pub fn build(_node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(BiasQuant))
}

/// The bias scales `s_x · s_w[c]`, one per element of a bias of `n` values.
fn scales(inputs: &[Option<&Tensor>], n: usize) -> Result<Vec<f32>, OpError> {
    let sx = f32_in(inputs, 1)?.as_f32().map_err(OpError::internal)?;
    let sw = f32_in(inputs, 2)?.as_f32().map_err(OpError::internal)?;
    if sx.len() != 1 || (sw.len() != 1 && sw.len() != n) {
        return Err(OpError::mismatch(format!(
            "the input scale must be one value and the weight scales one or {n}, got {} and {}",
            sx.len(),
            sw.len()
        )));
    }
    Ok((0..n).map(|c| sx[0] * sw[if sw.len() == 1 { 0 } else { c }]).collect())
}

/// The int32 code of bias value `b` at scale `s` (what the export writes).
pub fn code(b: f32, s: f32) -> i32 {
    (b / s).round_ties_even().clamp(i32::MIN as f32, i32::MAX as f32) as i32
}

/// `b` on the int32 grid of step `s`, as `DequantizeLinear` reads its [`code`] back.
pub fn on_grid(b: f32, s: f32) -> f32 {
    i64::from(code(b, s)) as f32 * s
}

impl Op for BiasQuant {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let b = input_fact(inputs, 0)?;
        for i in 0..3 {
            if input_fact(inputs, i)?.dtype != DType::F32 {
                return Err(OpError::mismatch("the bias and its scales must be float32"));
            }
        }
        Ok(vec![Fact::new(DType::F32, b.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let b = f32_in(inputs, 0)?;
        let v = b.as_f32().map_err(OpError::internal)?;
        let s = scales(inputs, v.len())?;
        Ok(vec![f32_tensor(b.shape.clone(), v.iter().zip(&s).map(|(&b, &s)| on_grid(b, s)).collect())])
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let x = f32_in(inputs, 0)?;
        let mut out: Grads = vec![None; inputs.len()];
        if let Some(g) = out_grad(grads, 0, x.len())? {
            out[0] = Some(f32_tensor(x.shape.clone(), g.to_vec()));
        }
        Ok(out)
    }
}
