//! CumSum (opsets 11 and 14): running sums of `x` along the axis given as input 1 (a scalar or
//! one-element integer tensor), `exclusive` (each sum leaves out its own element) and `reverse`
//! (from the end) as attributes. float32, int32 and int64 (integers wrap as in C).

use crate::model::{Data, Node, Tensor};
use crate::ops::shape::args::axis;
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// CumSum.
#[derive(Debug, Clone)]
pub struct CumSum {
    exclusive: bool,
    reverse: bool,
}

/// Builds CumSum.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(CumSum { exclusive: node.attrs.int("exclusive", 0) != 0, reverse: node.attrs.int("reverse", 0) != 0 }))
}

/// Sums along `(outer, len, inner)` with the op's flags.
fn scan<T: Copy + Default>(
    v: &[T],
    (outer, len, inner): (usize, usize, usize),
    ex: bool,
    rev: bool,
    add: impl Fn(T, T) -> T,
) -> Vec<T> {
    let mut out = vec![T::default(); v.len()];
    for o in 0..outer {
        for i in 0..inner {
            let mut acc = T::default();
            for k in 0..len {
                let k = if rev { len - 1 - k } else { k };
                let at = (o * len + k) * inner + i;
                if ex {
                    out[at] = acc;
                    acc = add(acc, v[at]);
                } else {
                    acc = add(acc, v[at]);
                    out[at] = acc;
                }
            }
        }
    }
    out
}

impl Op for CumSum {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        if !matches!(x.dtype, crate::model::DType::F32 | crate::model::DType::I32 | crate::model::DType::I64) {
            return Err(OpError::unsupported(format!(
                "CumSum of {:?} is not supported: float32, int32 and int64 are",
                x.dtype
            )));
        }
        input_fact(inputs, 1)?;
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let a = input(inputs, 1)?.to_i64_vec().map_err(|e| OpError::mismatch(format!("CumSum axis: {e}")))?;
        let [a] = a[..] else {
            return Err(OpError::malformed(format!("CumSum axis must hold one value, got {}", a.len())));
        };
        let ax = axis(a, x.shape.len().max(1))?;
        let dims = if x.shape.is_empty() { vec![1] } else { x.shape.clone() };
        let layout = (dims[..ax].iter().product(), dims[ax], dims[ax + 1..].iter().product());
        let (ex, rev) = (self.exclusive, self.reverse);
        let data = match &x.data {
            Data::F32(v) => Data::F32(scan(v, layout, ex, rev, |a, b| a + b)),
            Data::I32(v) => Data::I32(scan(v, layout, ex, rev, i32::wrapping_add)),
            Data::I64(v) => Data::I64(scan(v, layout, ex, rev, i64::wrapping_add)),
            _ => {
                return Err(OpError::unsupported(format!(
                    "CumSum of {:?} is not supported: float32, int32 and int64 are",
                    x.dtype()
                )))
            }
        };
        Ok(vec![Tensor { shape: x.shape.clone(), data }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(exclusive: bool, reverse: bool, axis: i64) -> Vec<f32> {
        let x = Tensor::f32(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let a = Tensor::vec_i64(vec![axis]);
        let out = CumSum { exclusive, reverse }.eval(&[Some(&x), Some(&a)]).unwrap().remove(0);
        out.as_f32().unwrap().to_vec()
    }

    #[test]
    fn flags_as_onnx_defines_them() {
        assert_eq!(run(false, false, 1), [1.0, 3.0, 6.0, 4.0, 9.0, 15.0]);
        assert_eq!(run(true, false, 1), [0.0, 1.0, 3.0, 0.0, 4.0, 9.0]);
        assert_eq!(run(false, true, 1), [6.0, 5.0, 3.0, 15.0, 11.0, 6.0]);
        assert_eq!(run(true, true, -1), [5.0, 3.0, 0.0, 11.0, 6.0, 0.0]);
        assert_eq!(run(false, false, 0), [1.0, 2.0, 3.0, 5.0, 7.0, 9.0]);
    }
}
