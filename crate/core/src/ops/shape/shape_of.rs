//! Shape: the input's dimensions as an int64 vector, optionally the `[start, end)` part of it
//! (opset 15; out-of-range bounds clamp). Known at plan time whenever the input's shape is, so
//! its fact carries the value and shape sub-graphs fold away.

use crate::model::{Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// Shape.
#[derive(Debug, Clone)]
pub struct Shape {
    start: i64,
    end: Option<i64>,
}

/// Builds Shape.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Shape { start: node.attrs.int("start", 0), end: node.attrs.int_opt("end") }))
}

impl Shape {
    fn of(&self, shape: &[usize]) -> Tensor {
        let r = shape.len() as i64;
        let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
        let (s, e) = (clamp(self.start), clamp(self.end.unwrap_or(r)));
        Tensor::vec_i64(shape[s..e.max(s)].iter().map(|&d| d as i64).collect())
    }
}

impl Op for Shape {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(vec![Fact::constant(self.of(&input_fact(inputs, 0)?.shape))])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        Ok(vec![self.of(&input(inputs, 0)?.shape)])
    }
}
