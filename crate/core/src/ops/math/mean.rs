//! Mean: the element-wise mean of one or more float tensors with broadcasting, as onnxruntime
//! computes it: the inputs summed left to right (Sum), then divided by their count.

use super::binary::{Binary, BinaryOp, Kernel};
use crate::model::{Node, Tensor};
use crate::ops::grad::{Backward, GradError, Grads};
use crate::ops::nn::{f32_data, f32_output};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// Mean: a float [`Binary`] Sum, divided by the input count.
#[derive(Debug, Clone)]
pub struct Mean {
    sum: Binary,
}

/// Builds Mean.
pub fn build(_: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Mean { sum: Binary::variadic(BinaryOp::Sum, Kernel::Arith { float: Some(|a, b| a + b), int: None }) }))
}

impl Op for Mean {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        self.sum.infer(inputs)
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let n = inputs.iter().flatten().count() as f32;
        let sum = self.sum.eval(inputs)?.remove(0);
        let v = f32_data(&sum, "sum")?.iter().map(|x| x / n).collect();
        Ok(vec![f32_output(sum.shape, v)?])
    }

    /// Sum's gradients, each divided by the input count.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let n = b.inputs.iter().flatten().count() as f32;
        let grads = self.sum.backward(b)?;
        grads
            .into_iter()
            .map(|g| {
                g.map(|t| -> Result<Tensor, GradError> {
                    let v = f32_data(&t, "gradient")?.iter().map(|x| x / n).collect();
                    Ok(f32_output(t.shape, v)?)
                })
                .transpose()
            })
            .collect()
    }
}
