//! `com.microsoft::QLinearMul`: element-wise product of two 8-bit tensors with numpy
//! broadcasting, `C = saturate(round((sA·(A − zA)) · (sB·(B − zB)) / sC) + zC)`, every scale and
//! zero-point per tensor, uint8 or int8 throughout. ONNX Runtime's quantizer writes it for `Mul`
//! (SiLU's `x · sigmoid(x)` in YOLOv5/v8/11 exports) in its QOperator format.
//!
//! The float arithmetic is onnxruntime's CPU kernel (MLAS `qlmul.cpp`, the SSE2 form x86-64
//! runs), so the results equal its in every value: the exact integer product
//! `p = (a − zA)·(b − zB)` converted to f32, times the f32 ratio `sA·sB/sC` (computed in that
//! order), plus `zC`, each step rounded to f32 (no fused multiply-add), then rounded half to even
//! (`cvtps2dq`: a value outside the int32 range gives `i32::MIN`) and saturated to the type.
//! The product is symmetric, so which operand onnxruntime treats as the scalar one does not
//! matter.

use super::qlinear_add::{infer_binary, BinaryInputs};
use crate::model::{Node, Tensor};
use crate::ops::{BuildCtx, Fact, Op, OpError};
use crate::quant::{round_half_even, QType};

/// A built QLinearMul.
#[derive(Debug, Clone)]
pub struct QLinearMul;

/// Builds QLinearMul: 7 or 8 inputs (`C_zero_point` optional).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let n = node.inputs.len();
    if !(7..=8).contains(&n) {
        return Err(OpError::malformed(format!(
            "QLinearMul takes 7 or 8 inputs (A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale[, C_zero_point]), got {n}"
        )));
    }
    Ok(Box::new(QLinearMul))
}

/// The constants of one QLinearMul.
#[derive(Clone, Copy)]
struct Consts {
    za: i32,
    zb: i32,
    ratio: f32,
    zc: f32,
    qt: QType,
}

impl Consts {
    #[inline(always)]
    fn mul(&self, a: i32, b: i32) -> i32 {
        let v = ((a - self.za) * (b - self.zb)) as f32 * self.ratio + self.zc;
        // cvtps2dq: round half to even; NaN and values beyond int32 give i32::MIN.
        let r = if v.is_finite() && v.abs() < 2_147_483_648.0 { round_half_even(v) } else { i32::MIN };
        r.clamp(self.qt.qmin(), self.qt.qmax())
    }
}

impl Op for QLinearMul {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        infer_binary(inputs)
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = BinaryInputs::read(inputs)?;
        let c = Consts {
            za: x.pa.zero_point,
            zb: x.pb.zero_point,
            ratio: x.pa.scale * x.pb.scale / x.pc.scale,
            zc: x.pc.zero_point as f32,
            qt: x.qt,
        };
        Ok(vec![x.map(|p, q| c.mul(p, q))?])
    }
}
