//! Arithmetic as [`Binary`] instances: Add, Sub, Mul, Div, Pow, Min, Max, Sum.
//!
//! Integer Div truncates toward zero (C semantics, as ONNX Runtime computes it) and reports
//! division by zero; integer Add/Sub/Mul wrap at the type's width.

use super::binary::{Binary, Kernel};
use crate::ops::Registry;

fn int_div(a: i64, b: i64) -> Result<i64, &'static str> {
    if b == 0 {
        return Err("integer division by zero");
    }
    Ok(a.wrapping_div(b))
}

/// `a^b` on integers: wrapping for b ≥ 0; for b < 0 the truncated value of 1/aⁿ.
fn int_pow(a: i64, b: i64) -> Result<i64, &'static str> {
    if b >= 0 {
        return Ok(a.wrapping_pow(u32::try_from(b).unwrap_or(u32::MAX)));
    }
    match a {
        0 => Err("integer zero raised to a negative power"),
        1 => Ok(1),
        -1 => Ok(if b % 2 == 0 { 1 } else { -1 }),
        _ => Ok(0),
    }
}

/// Min/Max on floats propagate NaN (as numpy and ONNX Runtime do), unlike `f32::min`.
fn nan_or(a: f32, b: f32, pick_a: bool) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if pick_a {
        a
    } else {
        b
    }
}

/// Adds the arithmetic ops to the registry.
pub fn register(r: &mut Registry) {
    r.register("Add", |_, _| {
        Binary::new(Kernel::Arith { float: |a, b| a + b, int: Some(|a, b| Ok(a.wrapping_add(b))) }).boxed()
    });
    r.register("Sub", |_, _| {
        Binary::new(Kernel::Arith { float: |a, b| a - b, int: Some(|a, b| Ok(a.wrapping_sub(b))) }).boxed()
    });
    r.register("Mul", |_, _| {
        Binary::new(Kernel::Arith { float: |a, b| a * b, int: Some(|a, b| Ok(a.wrapping_mul(b))) }).boxed()
    });
    r.register("Div", |_, _| Binary::new(Kernel::Arith { float: |a, b| a / b, int: Some(int_div) }).boxed());
    // The exponent may have another numeric type than the base; it is converted to the base's.
    r.register("Pow", |_, _| Binary::new(Kernel::Arith { float: f32::powf, int: Some(int_pow) }).cast_rhs().boxed());
    r.register("Max", |_, _| {
        Binary::variadic(Kernel::Arith { float: |a, b| nan_or(a, b, a >= b), int: Some(|a, b| Ok(a.max(b))) }).boxed()
    });
    r.register("Min", |_, _| {
        Binary::variadic(Kernel::Arith { float: |a, b| nan_or(a, b, a <= b), int: Some(|a, b| Ok(a.min(b))) }).boxed()
    });
    r.register("Sum", |_, _| {
        Binary::variadic(Kernel::Arith { float: |a, b| a + b, int: Some(|a, b| Ok(a.wrapping_add(b))) }).boxed()
    });
}
