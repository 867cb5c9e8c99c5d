//! IsNaN and IsInf: bool masks of a float tensor's NaNs and infinities (`detect_positive`,
//! `detect_negative`, both on by default). PyTorch exports `torch.isnan`, `torch.isinf`,
//! `torch.isfinite` and `nan_to_num` through them.

use crate::model::{DType, Node, Tensor};
use crate::ops::nn::{f32_fact, f32_input};
use crate::ops::{BuildCtx, Fact, Op, OpError, Registry};

/// IsNaN (`test = None`) or IsInf (the signs it detects).
#[derive(Debug, Clone)]
pub struct IsSpecial {
    /// For IsInf: (detect +∞, detect −∞); `None` for IsNaN.
    inf: Option<(bool, bool)>,
}

/// Adds IsNaN and IsInf.
pub fn register(r: &mut Registry) {
    r.register("IsNaN", |_: &Node, _: &BuildCtx| Ok(Box::new(IsSpecial { inf: None }) as Box<dyn Op>));
    r.register("IsInf", |n: &Node, _: &BuildCtx| {
        let inf = (n.attrs.int("detect_positive", 1) != 0, n.attrs.int("detect_negative", 1) != 0);
        Ok(Box::new(IsSpecial { inf: Some(inf) }) as Box<dyn Op>)
    });
}

impl Op for IsSpecial {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(vec![Fact::new(DType::Bool, f32_fact(inputs, 0, "X")?.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = f32_input(inputs, 0, "X")?;
        let shape = inputs[0].map(|t| t.shape.clone()).unwrap_or_default();
        let v = match self.inf {
            None => x.iter().map(|v| v.is_nan()).collect(),
            Some((pos, neg)) => {
                x.iter().map(|&v| (pos && v == f32::INFINITY) || (neg && v == f32::NEG_INFINITY)).collect()
            }
        };
        Ok(vec![Tensor::bool(shape, v).map_err(OpError::internal)?])
    }
}
