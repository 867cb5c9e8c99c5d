//! Not: logical negation of a bool tensor.

use crate::model::{DType, Node, Tensor};
use crate::ops::shape::elem::{dtype_name, typed};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// Not.
#[derive(Debug, Clone)]
pub struct Not;

/// Builds Not.
pub fn build(_: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Not))
}

fn check(d: DType) -> Result<(), OpError> {
    if d == DType::Bool {
        Ok(())
    } else {
        Err(OpError::mismatch(format!("expects a bool input, got {}", dtype_name(d))))
    }
}

impl Op for Not {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        check(x.dtype)?;
        Ok(vec![Fact::new(DType::Bool, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        check(x.dtype())?;
        Ok(vec![
            Tensor::bool(x.shape.clone(), typed::<bool>(x)?.iter().map(|v| !v).collect()).map_err(OpError::internal)?
        ])
    }
}
