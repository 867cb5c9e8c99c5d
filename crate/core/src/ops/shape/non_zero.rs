//! NonZero: the coordinates of every non-zero element, `[rank, count]` int64, in row-major
//! order (numpy's `nonzero`; NaN counts as non-zero). The output's length depends on the
//! values, so a NonZero on run-time data starts the plan's dynamic tail.

use super::args::Inputs;
use super::elem::{dispatch, typed};
use crate::model::{strides, Data, Node, Tensor};
use crate::ops::{input, BuildCtx, Fact, Op, OpError};

/// NonZero.
#[derive(Debug, Clone)]
pub struct NonZero;

/// Builds NonZero.
pub fn build(_: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(NonZero))
}

/// Flat positions of the non-zero elements.
fn positions(x: &Tensor) -> Result<Vec<usize>, OpError> {
    Ok(dispatch!(x.dtype(), T => {
        typed::<T>(x)?.iter().enumerate().filter(|(_, v)| **v != T::default()).map(|(i, _)| i).collect()
    }))
}

impl Op for NonZero {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let rank = inputs.shape(0)?.len();
        let Some(x) = inputs.value(0) else {
            return Err(OpError::internal("the output's length depends on the input's values, known only at run time"));
        };
        Ok(vec![Fact::new(crate::model::DType::I64, vec![rank.max(1), positions(x)?.len()])])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let pos = positions(x)?;
        // A scalar is treated as shape [1], as onnxruntime does.
        let shape = if x.shape.is_empty() { vec![1] } else { x.shape.clone() };
        let st = strides(&shape);
        let n = pos.len();
        let mut out = vec![0i64; shape.len() * n];
        for (k, &p) in pos.iter().enumerate() {
            for (d, s) in st.iter().enumerate() {
                out[d * n + k] = ((p / s) % shape[d]) as i64;
            }
        }
        Ok(vec![Tensor { shape: vec![shape.len(), n], data: Data::I64(out) }])
    }

    fn shape_depends_on_values(&self) -> bool {
        true
    }
}
