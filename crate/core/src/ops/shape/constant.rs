//! Constant: outputs the tensor in its attributes (`value`, `value_float(s)`, `value_int(s)`).
//! Its fact carries the value, so everything computed from it folds at plan time.

use crate::model::{Node, Tensor};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// Constant.
#[derive(Debug, Clone)]
pub struct Constant {
    value: Tensor,
}

/// Builds Constant from whichever value attribute the node has.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let a = &node.attrs;
    let value = if let Some(t) = a.tensor("value") {
        t.clone()
    } else if let Some(v) = a.float_opt("value_float") {
        Tensor::scalar_f32(v)
    } else if let Some(v) = a.floats("value_floats") {
        Tensor { shape: vec![v.len()], data: crate::model::Data::F32(v.to_vec()) }
    } else if let Some(v) = a.int_opt("value_int") {
        Tensor { shape: vec![], data: crate::model::Data::I64(vec![v]) }
    } else if let Some(v) = a.ints("value_ints") {
        Tensor::vec_i64(v.to_vec())
    } else {
        return Err(
            OpError::unsupported("Constant needs a `value`, `value_float(s)` or `value_int(s)` attribute (sparse and string constants are not supported)"),
        );
    };
    Ok(Box::new(Constant { value }))
}

impl Op for Constant {
    fn infer(&self, _: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(vec![Fact::constant(self.value.clone())])
    }

    fn eval(&self, _: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        Ok(vec![self.value.clone()])
    }
}
