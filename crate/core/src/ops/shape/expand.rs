//! Expand: broadcasts the input to a shape (input 1) with numpy rules in both directions — a
//! 1 in the target keeps the input's dimension. Read through zero strides, copied out once.

use super::args::{dim, known_ints, Inputs};
use super::elem::strided_view;
use crate::model::{Node, Tensor};
use crate::ops::math::broadcast::{broadcast_shapes, broadcast_strides};
use crate::ops::{input, BuildCtx, Fact, Op, OpError};

/// Expand.
#[derive(Debug, Clone)]
pub struct Expand;

/// Builds Expand.
pub fn build(_: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Expand))
}

fn plan<I: Inputs + ?Sized>(x: &I) -> Result<Vec<usize>, OpError> {
    let spec = known_ints(x, 1, "target shape")?
        .ok_or_else(|| OpError::malformed("Expand needs its shape input (input 1)"))?;
    let target = spec.iter().map(|&d| dim(d, "the target shape")).collect::<Result<Vec<_>, _>>()?;
    broadcast_shapes(x.shape(0)?, &target)
}

impl Op for Expand {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(vec![Fact::new(inputs.dtype(0)?, plan(inputs)?)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let out = plan(inputs)?;
        let view = broadcast_strides(&x.shape, &out);
        Ok(vec![strided_view(x, out, &view, 0)?])
    }
}
