//! Size: the input's element count as an int64 scalar (known at plan time, like Shape).

use crate::model::{Data, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// Size.
#[derive(Debug, Clone)]
pub struct Size;

/// Builds Size.
pub fn build(_: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Size))
}

fn size_of(shape: &[usize]) -> Tensor {
    Tensor { shape: vec![], data: Data::I64(vec![shape.iter().product::<usize>() as i64]) }
}

impl Op for Size {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(vec![Fact::constant(size_of(&input_fact(inputs, 0)?.shape))])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        Ok(vec![size_of(&input(inputs, 0)?.shape)])
    }
}
