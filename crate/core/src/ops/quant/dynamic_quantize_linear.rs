//! DynamicQuantizeLinear (opset 11): uint8 codes of a float tensor with a scale and zero point
//! computed from the tensor itself at run time, as onnxruntime's `quantize_dynamic` writes in
//! front of each ConvInteger and MatMulInteger.
//!
//! As onnxruntime's CPU kernel computes it (`GetQuantizationParameter`, then
//! `ParQuantizeLinearStd`): the range widened to include 0; `scale = (max − min) / 255` in
//! float32, or 1 when the range is empty; `zero_point = round_half_even(clamp(0 − min / scale,
//! 0, 255))`; then `y = clamp(round_half_even(x / scale) + zero_point, 0, 255)`.

use super::quantize_linear::codes;
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};
use crate::quant::{min_max, round_half_even, QParams, QType};

/// A built DynamicQuantizeLinear node (it has no attributes).
#[derive(Debug, Clone)]
pub struct DynamicQuantizeLinear;

/// Builds DynamicQuantizeLinear.
pub fn build(_: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(DynamicQuantizeLinear))
}

/// The scale and zero point onnxruntime computes for values in `[min, max]` (any range).
pub fn params(min: f32, max: f32) -> QParams {
    let (min, max) = (min.min(0.0), max.max(0.0));
    let scale = if max == min { 1.0 } else { (max - min) / 255.0 };
    let zero_point = round_half_even((0.0 - min / scale).clamp(0.0, 255.0));
    QParams { scale, zero_point }
}

impl Op for DynamicQuantizeLinear {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        if x.dtype != DType::F32 {
            return Err(OpError::mismatch(format!("input must be float32, got {:?}", x.dtype)));
        }
        Ok(vec![Fact::new(DType::U8, x.shape.clone()), Fact::new(DType::F32, vec![]), Fact::new(DType::U8, vec![])])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let data = x.as_f32().map_err(OpError::internal)?;
        let (min, max) = if data.is_empty() {
            (0.0, 0.0)
        } else {
            min_max(data).map_err(|_| {
                OpError::mismatch(
                    "its input holds NaN or infinite values, so it has no range to quantize; \
                     check the layers before it (or the model's input)",
                )
            })?
        };
        let p = params(min, max);
        let q = codes(data, (1, 1, data.len()), &[p], QType::UINT8);
        Ok(vec![
            Tensor { shape: x.shape.clone(), data: Data::U8(q.into_iter().map(|v| v as u8).collect()) },
            Tensor::scalar_f32(p.scale),
            Tensor { shape: vec![], data: Data::U8(vec![p.zero_point as u8]) },
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: Vec<f32>) -> (Vec<u8>, f32, u8) {
        let x = Tensor { shape: vec![v.len()], data: Data::F32(v) };
        let out = DynamicQuantizeLinear.eval(&[Some(&x)]).unwrap();
        let (Data::U8(y), Data::F32(s), Data::U8(z)) = (&out[0].data, &out[1].data, &out[2].data) else { panic!() };
        (y.clone(), s[0], z[0])
    }

    #[test]
    fn matches_the_onnx_reference_cases() {
        // onnx's test_dynamicquantizelinear{,_max_adjusted,_min_adjusted}.
        let (y, s, z) = run(vec![0.0, 2.0, -3.0, -2.5, 1.34, 0.5]);
        assert_eq!((y, s, z), (vec![153, 255, 0, 26, 221, 179], 0.019_607_844, 153));
        let (y, s, z) = run(vec![-1.0, -2.1, -1.3, -2.5, -3.34, -4.0]);
        assert_eq!((y, s, z), (vec![191, 121, 172, 96, 42, 0], 0.015_686_275, 255));
        let (y, s, z) = run(vec![1.0, 2.1, 1.3, 2.5, 3.34, 4.0, 1.5, 2.6, 3.9, 4.0, 3.0, 2.345]);
        assert_eq!((y.len(), s, z), (12, 0.015_686_275, 0));
        assert_eq!(y[..6], [64, 134, 83, 159, 213, 255]);
    }

    #[test]
    fn an_all_zero_or_empty_input_has_scale_one_and_non_finite_is_an_error() {
        assert_eq!(run(vec![0.0, 0.0]), (vec![0, 0], 1.0, 0));
        assert_eq!(run(vec![]), (vec![], 1.0, 0));
        let x = Tensor { shape: vec![2], data: Data::F32(vec![1.0, f32::INFINITY]) };
        let e = DynamicQuantizeLinear.eval(&[Some(&x)]).unwrap_err().to_string();
        assert!(e.contains("NaN or infinite"), "{e}");
    }
}
