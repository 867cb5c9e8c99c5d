//! The one element-wise unary op: a float function, and optionally an integer one. Every
//! unary op (Relu, Exp, Neg, …) is an instance built in [`activation`](super::activation) or
//! [`elementary`](super::elementary); the shape and dtype handling lives only here.

use crate::model::{DType, Tensor};
use crate::ops::shape::elem::{dispatch, dtype_name, typed, Elem};
use crate::ops::{input, input_fact, Fact, Op};
use std::fmt;

/// An element-wise op of one input. Float inputs go through `float`; integer inputs through
/// `int` (computed on i64 and wrapped back to the input's width), or are rejected without it.
///
/// Generic over the float function's type, so each op gets its own loop with the function
/// inlined (and vectorised where it can be) instead of an indirect call per element.
#[derive(Clone)]
pub struct Unary<F> {
    name: &'static str,
    float: F,
    int: Option<fn(i64) -> i64>,
}

impl<F> fmt::Debug for Unary<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Unary({}, int: {})", self.name, self.int.is_some())
    }
}

impl<F: Fn(f32) -> f32 + Send + Sync + 'static> Unary<F> {
    /// A float-only op; `name` is for debugging output.
    pub fn float(name: &'static str, f: F) -> Unary<F> {
        Unary { name, float: f, int: None }
    }

    /// Also accepts integer inputs (int64, int32, int8, uint8), computed with `f`.
    pub fn with_int(self, f: fn(i64) -> i64) -> Unary<F> {
        Unary { int: Some(f), ..self }
    }

    /// As a boxed op, the form builders return.
    pub fn boxed(self) -> Result<Box<dyn Op>, String> {
        Ok(Box::new(self))
    }

    fn check(&self, dtype: DType) -> Result<(), String> {
        match dtype {
            DType::F32 => Ok(()),
            DType::Bool => Err("expects a numeric input, got bool".into()),
            _ if self.int.is_some() => Ok(()),
            other => Err(format!("expects a float32 input, got {}", dtype_name(other))),
        }
    }

    fn apply<T: Elem>(&self, x: &[T]) -> Result<Vec<T>, String> {
        if T::DTYPE == DType::F32 {
            let f = &self.float;
            return Ok(x.iter().map(|&v| T::from_f32(f(v.to_f32()))).collect());
        }
        let int = self.int.ok_or_else(|| format!("expects a float32 input, got {}", dtype_name(T::DTYPE)))?;
        Ok(x.iter().map(|&v| T::from_i64(int(v.to_i64()))).collect())
    }
}

impl<F: Fn(f32) -> f32 + Send + Sync + 'static> Op for Unary<F> {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, String> {
        let x = input_fact(inputs, 0)?;
        self.check(x.dtype)?;
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
        let x = input(inputs, 0)?;
        self.check(x.dtype())?;
        let data = dispatch!(x.dtype(), T => T::wrap(self.apply::<T>(typed::<T>(x)?)?));
        Ok(vec![Tensor { shape: x.shape.clone(), data }])
    }
}
