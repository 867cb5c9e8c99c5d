//! Identity: its input, unchanged.

use crate::model::{Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// Identity.
#[derive(Debug, Clone)]
pub struct Identity;

/// Builds Identity.
pub fn build(_: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Identity))
}

impl Op for Identity {
    fn reshapes_input(&self) -> bool {
        true
    }

    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(vec![input_fact(inputs, 0)?.clone()])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        Ok(vec![input(inputs, 0)?.clone()])
    }
}
