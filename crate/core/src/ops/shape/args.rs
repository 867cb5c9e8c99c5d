//! Reading op arguments the same way at plan time and at run time.
//!
//! Ops compute their output shapes once, in a `plan` function generic over [`Inputs`], and call
//! it from both [`Op::infer`](crate::ops::Op::infer) (facts) and [`Op::eval`](crate::ops::Op::eval)
//! (tensors): the shapes `infer` promises are by construction the shapes `eval` produces.
//! Argument inputs that decide a shape (Reshape's shape, Slice's starts…) are read with
//! [`known_ints`]; at plan time they must be constants, otherwise the shape is data-dependent.

use crate::model::{numel, DType, Tensor};
use crate::ops::{Fact, OpError};

/// The most elements one op output may have (256 Mi, 1 GiB of float32). Shapes computed from
/// data — Expand, ConstantOfShape, Range, Tile, broadcasting — are checked against it so that a
/// hostile or broken model produces an error instead of an allocation failure.
pub const MAX_ELEMENTS: usize = 1 << 28;

/// The element count of an output shape, refusing overflow and shapes above [`MAX_ELEMENTS`].
pub fn checked_numel(shape: &[usize]) -> Result<usize, OpError> {
    let n = numel(shape).map_err(OpError::limit)?;
    if n > MAX_ELEMENTS {
        return Err(OpError::limit(format!(
            "the output shape {shape:?} has {n} elements, more than the {MAX_ELEMENTS} one tensor may have"
        )));
    }
    Ok(n)
}

/// The inputs of an op as planning or running sees them: facts or tensors.
pub trait Inputs {
    /// Number of input slots (including omitted ones).
    fn count(&self) -> usize;
    /// Whether input `i` was given.
    fn present(&self, i: usize) -> bool;
    /// Input `i`'s shape; an error if it is missing.
    fn shape(&self, i: usize) -> Result<&[usize], OpError>;
    /// Input `i`'s element type; an error if it is missing.
    fn dtype(&self, i: usize) -> Result<DType, OpError>;
    /// Input `i`'s value: always known at run time, known at plan time only for constants.
    fn value(&self, i: usize) -> Option<&Tensor>;
}

fn missing(i: usize) -> OpError {
    OpError::missing_input(i)
}

impl Inputs for [Option<&Fact>] {
    fn count(&self) -> usize {
        self.len()
    }
    fn present(&self, i: usize) -> bool {
        matches!(self.get(i), Some(Some(_)))
    }
    fn shape(&self, i: usize) -> Result<&[usize], OpError> {
        self.get(i).copied().flatten().map(|f| f.shape.as_slice()).ok_or_else(|| missing(i))
    }
    fn dtype(&self, i: usize) -> Result<DType, OpError> {
        self.get(i).copied().flatten().map(|f| f.dtype).ok_or_else(|| missing(i))
    }
    fn value(&self, i: usize) -> Option<&Tensor> {
        self.get(i).copied().flatten().and_then(|f| f.value.as_deref())
    }
}

impl Inputs for [Option<&Tensor>] {
    fn count(&self) -> usize {
        self.len()
    }
    fn present(&self, i: usize) -> bool {
        matches!(self.get(i), Some(Some(_)))
    }
    fn shape(&self, i: usize) -> Result<&[usize], OpError> {
        self.get(i).copied().flatten().map(|t| t.shape.as_slice()).ok_or_else(|| missing(i))
    }
    fn dtype(&self, i: usize) -> Result<DType, OpError> {
        self.get(i).copied().flatten().map(|t| t.dtype()).ok_or_else(|| missing(i))
    }
    fn value(&self, i: usize) -> Option<&Tensor> {
        self.get(i).copied().flatten()
    }
}

/// The value of argument input `i` (`what` names it for messages): `None` when omitted, an
/// error when it is only known at run time and the output shape therefore data-dependent.
pub fn known<'a, I: Inputs + ?Sized>(x: &'a I, i: usize, what: &str) -> Result<Option<&'a Tensor>, OpError> {
    if !x.present(i) {
        return Ok(None);
    }
    x.value(i).map(Some).ok_or_else(|| {
        OpError::unsupported(format!("the {what} (input {i}) is computed at run time, so the output shape is data-dependent: qplay needs it to be a constant"))
    })
}

/// [`known`] for an integer argument (shape, axes, starts…), as i64 values.
pub fn known_ints<I: Inputs + ?Sized>(x: &I, i: usize, what: &str) -> Result<Option<Vec<i64>>, OpError> {
    match known(x, i, what)? {
        None => Ok(None),
        Some(t) => t.to_i64_vec().map(Some).map_err(|e| OpError::mismatch(format!("the {what} (input {i}): {e}"))),
    }
}

/// An axis in `[-rank, rank)` as an index.
pub fn axis(a: i64, rank: usize) -> Result<usize, OpError> {
    let r = rank as i64;
    if a < -r || a >= r {
        return Err(OpError::malformed(format!(
            "axis {a} is out of range for a tensor of rank {rank} (valid: {} to {})",
            -r,
            r - 1
        )));
    }
    Ok(if a < 0 { (a + r) as usize } else { a as usize })
}

/// A list of distinct axes in `[-rank, rank)` as indices, in the given order.
pub fn axes(list: &[i64], rank: usize) -> Result<Vec<usize>, OpError> {
    let mut out = Vec::with_capacity(list.len());
    for &a in list {
        let i = axis(a, rank)?;
        if out.contains(&i) {
            return Err(OpError::malformed(format!("axis {a} appears more than once in {list:?}")));
        }
        out.push(i);
    }
    Ok(out)
}

/// A dimension given as i64 (a shape argument); negative values are an error.
pub fn dim(v: i64, what: &str) -> Result<usize, OpError> {
    usize::try_from(v).map_err(|_| OpError::malformed(format!("{what} has a negative dimension {v}")))
}

/// All inputs of a variadic op (Concat, Max…), each required.
pub fn all_present<'a, T>(inputs: &[Option<&'a T>]) -> Result<Vec<&'a T>, OpError> {
    if inputs.is_empty() {
        return Err(OpError::malformed("the op needs at least one input"));
    }
    inputs.iter().enumerate().map(|(i, x)| x.ok_or_else(|| missing(i))).collect()
}
