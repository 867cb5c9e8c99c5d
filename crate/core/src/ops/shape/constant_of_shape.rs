//! ConstantOfShape: a tensor of the shape in input 0 filled with the one-element `value`
//! attribute (float32 0 by default). The shape must be a constant at plan time.

use super::args::{checked_numel, dim, known_ints, Inputs};
use super::elem::{dispatch, tensor, typed};
use crate::model::{Node, Tensor};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// ConstantOfShape.
#[derive(Debug, Clone)]
pub struct ConstantOfShape {
    value: Tensor,
}

/// Builds ConstantOfShape.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let value = node.attrs.tensor("value").cloned().unwrap_or_else(|| Tensor::scalar_f32(0.0));
    if value.len() != 1 {
        return Err(OpError::malformed(format!(
            "the `value` attribute must hold one element, got shape {:?}",
            value.shape
        )));
    }
    Ok(Box::new(ConstantOfShape { value }))
}

fn plan<I: Inputs + ?Sized>(x: &I) -> Result<Vec<usize>, OpError> {
    let spec = known_ints(x, 0, "shape")?
        .ok_or_else(|| OpError::malformed("ConstantOfShape needs its shape input (input 0)"))?;
    let shape = spec.iter().map(|&d| dim(d, "the shape")).collect::<Result<Vec<_>, _>>()?;
    checked_numel(&shape)?;
    Ok(shape)
}

impl Op for ConstantOfShape {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(vec![Fact::new(self.value.dtype(), plan(inputs)?)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let shape = plan(inputs)?;
        let n = shape.iter().product();
        Ok(vec![dispatch!(self.value.dtype(), T => tensor(shape, vec![typed::<T>(&self.value)?[0]; n]))])
    }
}
