//! `com.microsoft::QLinearSigmoid`: `Y = quantize(sigmoid(dequantize(X)))` on 8-bit codes,
//! per-tensor parameters, as onnxruntime computes it: a 256-entry table
//! ([`ort_table`](super::lookup::ort_table)) whose sigmoid is MLAS's (`MlasComputeLogistic`: the
//! input clamped to ±18, Eigen's rational polynomial, degree 9 over degree 10, in f32). On x86-64
//! onnxruntime runs it with fused multiply-adds (`MlasLogisticKernelFma3`), and so does this
//! ([`f32::mul_add`], fused on every target), so the tables are the same; ONNX Runtime's quantizer
//! writes the op for `Sigmoid` (SiLU's half in YOLOv5/v8/11 exports) in its QOperator format.

use super::lookup::{check_ort_lookup, eval_ort_lookup, infer_ort_lookup};
use crate::model::{Node, Tensor};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// A built QLinearSigmoid.
#[derive(Debug, Clone)]
pub struct QLinearSigmoid;

/// Builds QLinearSigmoid: 4 or 5 inputs.
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    check_ort_lookup(node, "QLinearSigmoid")?;
    Ok(Box::new(QLinearSigmoid))
}

/// MLAS's logistic function in its fused multiply-add form (`MlasLogisticKernelFma3`), with
/// MLAS's constants as written there (parsed straight to f32, as a C++ compiler does).
#[allow(clippy::excessive_precision)]
pub fn mlas_logistic(x: f32) -> f32 {
    const A9: f32 = 4.37031012579801e-11;
    const A7: f32 = 1.15627324459942e-07;
    const A5: f32 = 6.08574864600143e-05;
    const A3: f32 = 8.51377133304701e-03;
    const A1: f32 = 2.48287947061529e-01;
    const B10: f32 = 6.10247389755681e-13;
    const B8: f32 = 5.76102136993427e-09;
    const B6: f32 = 6.29106785017040e-06;
    const B4: f32 = 1.70198817374094e-03;
    const B2: f32 = 1.16817656904453e-01;
    const B0: f32 = 9.93151921023180e-01;
    if x.is_nan() {
        return x;
    }
    let v = x.clamp(-18.0, 18.0);
    let v2 = v * v;
    let p = v2.mul_add(A9, A7).mul_add(v2, A5).mul_add(v2, A3).mul_add(v2, A1);
    let q = v2.mul_add(B10, B8).mul_add(v2, B6).mul_add(v2, B4).mul_add(v2, B2).mul_add(v2, B0);
    ((v * p) / q + 0.5).max(0.0)
}

impl Op for QLinearSigmoid {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        infer_ort_lookup(inputs, "QLinearSigmoid")
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        eval_ort_lookup(inputs, mlas_logistic)
    }
}

#[cfg(test)]
mod tests {
    use super::mlas_logistic;

    #[test]
    fn mlas_logistic_is_a_sigmoid() {
        for x in [-30.0f32, -18.0, -3.0, -0.5, 0.0, 0.5, 3.0, 18.0, 30.0] {
            let want = 1.0 / (1.0 + (-x as f64).exp());
            assert!((mlas_logistic(x) as f64 - want).abs() < 1e-6, "{x}");
        }
        assert_eq!(mlas_logistic(0.0), 0.5);
        assert!(mlas_logistic(f32::NAN).is_nan());
    }
}
