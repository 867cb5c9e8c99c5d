//! Range: `start, start + delta, …` up to (excluding) `limit`, for float32 and integer scalars.
//! The element count `max(0, ⌈(limit − start) / delta⌉)` decides the shape, so the three inputs
//! must be constants at plan time; counts above the element limit are an error.

use super::args::{known, Inputs, MAX_ELEMENTS};
use super::elem::{dispatch, dtype_name, tensor, typed, Elem};
use crate::model::{DType, Node, Tensor};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// Range.
#[derive(Debug, Clone)]
pub struct Range;

/// Builds Range.
pub fn build(_: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Range))
}

/// The single value of a scalar argument.
fn scalar<T: Elem>(t: &Tensor, what: &str) -> Result<T, OpError> {
    match typed::<T>(t)? {
        [v] => Ok(*v),
        _ => Err(OpError::mismatch(format!("{what} must be a scalar, got shape {:?}", t.shape))),
    }
}

fn count<T: Elem>(start: T, limit: T, delta: T) -> Result<usize, OpError> {
    let n = if T::DTYPE == DType::F32 {
        let (s, l, d) = (start.to_f32() as f64, limit.to_f32() as f64, delta.to_f32() as f64);
        if d == 0.0 {
            return Err(OpError::malformed("delta cannot be 0"));
        }
        let n = ((l - s) / d).ceil();
        if !n.is_finite() {
            return Err(OpError::malformed(format!("the range from {s} to {l} by {d} has no finite length")));
        }
        n.clamp(0.0, u64::MAX as f64) as u128
    } else {
        let (s, l, d) = (start.to_i64() as i128, limit.to_i64() as i128, delta.to_i64() as i128);
        if d == 0 {
            return Err(OpError::malformed("delta cannot be 0"));
        }
        // Ceiling division, exact for any sign combination.
        let span = l - s;
        let q = span / d + i128::from(span % d != 0 && (span > 0) == (d > 0));
        q.max(0) as u128
    };
    if n > MAX_ELEMENTS as u128 {
        return Err(OpError::limit(format!(
            "the range would have {n} elements, more than the {MAX_ELEMENTS} one tensor may have"
        )));
    }
    Ok(n as usize)
}

fn values<T: Elem>(start: T, delta: T, n: usize) -> Vec<T> {
    if T::DTYPE == DType::F32 {
        let (s, d) = (start.to_f32(), delta.to_f32());
        (0..n).map(|i| T::from_f32(s + i as f32 * d)).collect()
    } else {
        let (s, d) = (start.to_i64(), delta.to_i64());
        (0..n).map(|i| T::from_i64(s.wrapping_add((i as i64).wrapping_mul(d)))).collect()
    }
}

/// The element type and the length, after checking the three inputs agree in type.
fn plan<I: Inputs + ?Sized>(x: &I) -> Result<(DType, usize), OpError> {
    let dtype = x.dtype(0)?;
    if dtype == DType::Bool {
        return Err(OpError::mismatch("Range needs numeric inputs, got bool"));
    }
    let names = ["start", "limit", "delta"];
    let mut vals = Vec::with_capacity(3);
    for (i, name) in names.iter().enumerate() {
        if x.dtype(i)? != dtype {
            return Err(OpError::mismatch(format!(
                "{name} is {}, start is {}",
                dtype_name(x.dtype(i)?),
                dtype_name(dtype)
            )));
        }
        vals.push(known(x, i, name)?.ok_or_else(|| OpError::malformed(format!("Range needs {name} (input {i})")))?);
    }
    let n = dispatch!(dtype, T => count::<T>(scalar(vals[0], "start")?, scalar(vals[1], "limit")?, scalar(vals[2], "delta")?)?);
    Ok((dtype, n))
}

impl Op for Range {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (dtype, n) = plan(inputs)?;
        Ok(vec![Fact::new(dtype, vec![n])])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (dtype, n) = plan(inputs)?;
        let (start, delta) = (crate::ops::input(inputs, 0)?, crate::ops::input(inputs, 2)?);
        Ok(vec![
            dispatch!(dtype, T => tensor(vec![n], values::<T>(scalar(start, "start")?, scalar(delta, "delta")?, n))),
        ])
    }
}
