//! ArgMax and ArgMin: the int64 index of the extreme value along one axis. Ties go to the first
//! index, or the last with `select_last_index`.

use crate::model::{DType, Node, Tensor};
use crate::ops::shape::args::{axis, Inputs};
use crate::ops::shape::elem::{dispatch, typed, Elem};
use crate::ops::{input, BuildCtx, Fact, Op, OpError, Registry};

/// ArgMax (`max`) or ArgMin.
#[derive(Debug, Clone)]
pub struct ArgExtreme {
    max: bool,
    axis: i64,
    keepdims: bool,
    select_last: bool,
}

/// Adds ArgMax and ArgMin to the registry.
pub fn register(r: &mut Registry) {
    r.register("ArgMax", |n, c| build(n, c, true));
    r.register("ArgMin", |n, c| build(n, c, false));
}

fn build(node: &Node, _: &BuildCtx, max: bool) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(ArgExtreme {
        max,
        axis: node.attrs.int("axis", 0),
        keepdims: node.attrs.int("keepdims", 1) != 0,
        select_last: node.attrs.int("select_last_index", 0) != 0,
    }))
}

impl ArgExtreme {
    /// The reduced axis and the output shape.
    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<(usize, Vec<usize>), OpError> {
        if x.dtype(0)? == DType::Bool {
            return Err(OpError::mismatch("expects a numeric input, got bool"));
        }
        let shape = x.shape(0)?;
        let a = axis(self.axis, shape.len())?;
        if shape[a] == 0 {
            return Err(OpError::mismatch(format!("axis {} has no elements to choose from", self.axis)));
        }
        let mut out = shape.to_vec();
        if self.keepdims {
            out[a] = 1;
        } else {
            out.remove(a);
        }
        Ok((a, out))
    }

    fn indices<T: Elem>(&self, x: &Tensor, a: usize) -> Result<Vec<i64>, OpError> {
        let src = typed::<T>(x)?;
        let (n, inner) = (x.shape[a], x.shape[a + 1..].iter().product::<usize>());
        let outer = x.shape[..a].iter().product::<usize>();
        let better = |v: T, best: T| match (self.max, self.select_last) {
            (true, false) => v > best,
            (true, true) => v >= best,
            (false, false) => v < best,
            (false, true) => v <= best,
        };
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| src[(o * n + k) * inner + i];
                let (mut best, mut arg) = (at(0), 0);
                for k in 1..n {
                    if better(at(k), best) {
                        (best, arg) = (at(k), k);
                    }
                }
                out.push(arg as i64);
            }
        }
        Ok(out)
    }
}

impl Op for ArgExtreme {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(vec![Fact::new(DType::I64, self.plan(inputs)?.1)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let (a, shape) = self.plan(inputs)?;
        let v = dispatch!(x.dtype(), T => self.indices::<T>(x, a)?);
        Ok(vec![Tensor { shape, data: crate::model::Data::I64(v) }])
    }
}
