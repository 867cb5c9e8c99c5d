//! Element types as Rust types. [`Elem`] ties each [`DType`] to its Rust type so that ops which
//! move, compare or convert elements are written once, generically, and `dispatch!` picks the
//! instantiation for a run-time dtype.
//!
//! Integer arithmetic goes through [`Elem::to_i64`] / [`Elem::from_i64`]: widening to i64 and
//! wrapping back (`as`) gives exactly the C-like wrapping semantics ONNX runtimes have for int64,
//! int32, int8 and uint8, so one i64 kernel serves every integer type.

use super::super::math::broadcast::for_each_offset;
use crate::model::tensor::onnx_dtype_name;
use crate::model::{DType, Data, Tensor};
use crate::ops::OpError;
use std::fmt::Debug;

/// A Rust type that stores one of qplay's element types.
pub trait Elem: Copy + PartialEq + PartialOrd + Default + Debug + Send + Sync + 'static {
    /// The matching element type.
    const DTYPE: DType;
    /// The data as `&[Self]`, if it has this type.
    fn slice(data: &Data) -> Option<&[Self]>;
    /// Wraps elements of this type as [`Data`].
    fn wrap(v: Vec<Self>) -> Data;
    /// As f32 (ints round to nearest, bools are 0/1).
    fn to_f32(self) -> f32;
    /// From f32 as a C cast does: ints truncate toward zero (saturating, NaN → 0), bool is `!= 0`.
    fn from_f32(v: f32) -> Self;
    /// As i64 (floats truncate toward zero, bools are 0/1).
    fn to_i64(self) -> i64;
    /// From i64, wrapping to the type's width as a C cast does; bool is `!= 0`.
    fn from_i64(v: i64) -> Self;
}

macro_rules! impl_int_elem {
    ($($t:ty => $v:ident),*) => {$(
        impl Elem for $t {
            const DTYPE: DType = DType::$v;
            fn slice(data: &Data) -> Option<&[Self]> {
                match data {
                    Data::$v(v) => Some(v),
                    _ => None,
                }
            }
            fn wrap(v: Vec<Self>) -> Data {
                Data::$v(v)
            }
            fn to_f32(self) -> f32 {
                self as f32
            }
            fn from_f32(v: f32) -> Self {
                v as $t
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn from_i64(v: i64) -> Self {
                v as $t
            }
        }
    )*};
}
impl_int_elem!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, i32 => I32, i64 => I64);

impl Elem for f32 {
    const DTYPE: DType = DType::F32;
    fn slice(data: &Data) -> Option<&[Self]> {
        match data {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }
    fn wrap(v: Vec<Self>) -> Data {
        Data::F32(v)
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(v: f32) -> Self {
        v
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn from_i64(v: i64) -> Self {
        v as f32
    }
}

impl Elem for bool {
    const DTYPE: DType = DType::Bool;
    fn slice(data: &Data) -> Option<&[Self]> {
        match data {
            Data::Bool(v) => Some(v),
            _ => None,
        }
    }
    fn wrap(v: Vec<Self>) -> Data {
        Data::Bool(v)
    }
    fn to_f32(self) -> f32 {
        self as u8 as f32
    }
    fn from_f32(v: f32) -> Self {
        v != 0.0
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn from_i64(v: i64) -> Self {
        v != 0
    }
}

/// Runs `$body` with the type alias `$T` bound to the Rust type of the run-time dtype `$dtype`:
/// `dispatch!(t.dtype(), T => T::wrap(f::<T>(typed(t)?)))`.
macro_rules! dispatch {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::model::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::model::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::model::DType::I8 => {
                type $T = i8;
                $body
            }
            $crate::model::DType::U16 => {
                type $T = u16;
                $body
            }
            $crate::model::DType::I16 => {
                type $T = i16;
                $body
            }
            $crate::model::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::model::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::model::DType::Bool => {
                type $T = bool;
                $body
            }
            $crate::model::DType::U4 | $crate::model::DType::I4 => {
                return Err($crate::ops::OpError::unsupported(format!(
                    "{} tensors are only read by DequantizeLinear",
                    $crate::ops::shape::elem::dtype_name($dtype)
                )))
            }
        }
    };
}
pub(crate) use dispatch;

/// The ONNX name of an element type, for messages (`float32`, `int64`, …).
pub fn dtype_name(d: DType) -> &'static str {
    onnx_dtype_name(d.onnx_code())
}

/// The tensor's elements as `T`, or an error naming the expected and actual types.
pub fn typed<T: Elem>(t: &Tensor) -> Result<&[T], OpError> {
    T::slice(&t.data).ok_or_else(|| {
        OpError::mismatch(format!("expected a {} tensor, got {}", dtype_name(T::DTYPE), dtype_name(t.dtype())))
    })
}

/// A tensor from a shape and elements whose count the caller has already made agree.
pub fn tensor<T: Elem>(shape: Vec<usize>, v: Vec<T>) -> Tensor {
    debug_assert_eq!(shape.iter().product::<usize>(), v.len(), "shape {shape:?}");
    Tensor { shape, data: T::wrap(v) }
}

/// The elements of `t` read through a strided view: output element at multi-index `i` is
/// `t[base + Σ i[d]·strides[d]]`. Strides may be 0 (broadcast) or negative (reversed slices);
/// the caller guarantees every offset is in bounds. Transpose, Slice and Expand are this.
pub fn strided_view(t: &Tensor, out_shape: Vec<usize>, strides: &[isize], base: isize) -> Result<Tensor, OpError> {
    fn go<T: Elem>(src: &[T], out_shape: &[usize], strides: &[isize], base: isize) -> Vec<T> {
        let mut out = Vec::with_capacity(out_shape.iter().product());
        // The walker's callback cannot fail here; its Result only serves fallible callers.
        let _ = for_each_offset(out_shape, [strides], [base], |[o]| {
            out.push(src[o]);
            Ok(())
        });
        out
    }
    let data = dispatch!(t.dtype(), T => T::wrap(go::<T>(typed::<T>(t)?, &out_shape, strides, base)));
    Ok(Tensor { shape: out_shape, data })
}

/// Converts a tensor to another element type with ONNX `Cast` semantics: float → int truncates
/// toward zero, int → narrower int wraps, anything → bool is `!= 0`, bool → number is 0/1.
pub fn cast(t: &Tensor, to: DType) -> Result<Tensor, OpError> {
    fn convert<S: Elem, U: Elem>(src: &[S]) -> Vec<U> {
        if S::DTYPE == DType::F32 {
            src.iter().map(|&v| U::from_f32(v.to_f32())).collect()
        } else {
            src.iter().map(|&v| U::from_i64(v.to_i64())).collect()
        }
    }
    if t.dtype() == to {
        return Ok(t.clone());
    }
    let data = dispatch!(t.dtype(), S => {
        let src = typed::<S>(t)?;
        dispatch!(to, U => U::wrap(convert::<S, U>(src)))
    });
    Ok(Tensor { shape: t.shape.clone(), data })
}
