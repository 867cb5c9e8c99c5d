//! `com.microsoft::QLinearLeakyRelu`: `Y = quantize(leaky_relu(dequantize(X), alpha))` on 8-bit
//! codes, per-tensor parameters, as onnxruntime computes it: a 256-entry table
//! ([`ort_table`](super::lookup::ort_table)) of `v ≥ 0 ? v : alpha · v` in f32. ONNX Runtime's
//! quantizer writes it for `LeakyRelu` (YOLOv3/v4/v7-tiny and YOLOX-style exports) in its
//! QOperator format.

use super::lookup::{check_ort_lookup, eval_ort_lookup, infer_ort_lookup};
use crate::model::{Node, Tensor};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// A built QLinearLeakyRelu.
#[derive(Debug, Clone)]
pub struct QLinearLeakyRelu {
    alpha: f32,
}

/// Builds QLinearLeakyRelu: 4 or 5 inputs, `alpha` (default 0.01).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    check_ort_lookup(node, "QLinearLeakyRelu")?;
    let alpha = node.attrs.float("alpha", 0.01);
    if !alpha.is_finite() {
        return Err(OpError::malformed(format!("QLinearLeakyRelu's alpha {alpha} is not a finite number")));
    }
    Ok(Box::new(QLinearLeakyRelu { alpha }))
}

impl Op for QLinearLeakyRelu {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        infer_ort_lookup(inputs, "QLinearLeakyRelu")
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let alpha = self.alpha;
        eval_ort_lookup(inputs, |v| if v >= 0.0 { v } else { alpha * v })
    }
}
