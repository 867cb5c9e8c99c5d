//! Where: `condition ? x : y` element-wise, the three inputs broadcast together.

use super::broadcast::{broadcast_all, map3};
use crate::model::{DType, Node, Tensor};
use crate::ops::shape::args::Inputs;
use crate::ops::shape::elem::{dispatch, dtype_name, typed, Elem};
use crate::ops::{input, BuildCtx, Fact, Op, OpError};

/// Where (any element type for x and y).
#[derive(Debug, Clone)]
pub struct Where;

/// Builds Where.
pub fn build(_: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Where))
}

fn plan<I: Inputs + ?Sized>(x: &I) -> Result<(DType, Vec<usize>), OpError> {
    if x.dtype(0)? != DType::Bool {
        return Err(OpError::mismatch(format!("the condition must be bool, got {}", dtype_name(x.dtype(0)?))));
    }
    let (a, b) = (x.dtype(1)?, x.dtype(2)?);
    if a != b {
        return Err(OpError::mismatch(format!(
            "x and y must have one type, got {} and {}",
            dtype_name(a),
            dtype_name(b)
        )));
    }
    Ok((a, broadcast_all(&[x.shape(0)?, x.shape(1)?, x.shape(2)?])?))
}

fn select<T: Elem>(c: &Tensor, a: &Tensor, b: &Tensor, out: &[usize]) -> Result<Vec<T>, OpError> {
    map3((typed::<bool>(c)?, &c.shape), (typed::<T>(a)?, &a.shape), (typed::<T>(b)?, &b.shape), out, |c, a, b| {
        if c {
            a
        } else {
            b
        }
    })
}

impl Op for Where {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (dtype, shape) = plan(inputs)?;
        Ok(vec![Fact::new(dtype, shape)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (dtype, shape) = plan(inputs)?;
        let (c, a, b) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        let data = dispatch!(dtype, T => T::wrap(select::<T>(c, a, b, &shape)?));
        Ok(vec![Tensor { shape, data }])
    }
}
