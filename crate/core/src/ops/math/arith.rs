//! Arithmetic as [`Binary`] instances: Add, Sub, Mul, Div, Pow, Mod, Min, Max, Sum, PRelu.
//!
//! Integer Div truncates toward zero (C semantics, as ONNX Runtime computes it) and reports
//! division by zero; integer Add/Sub/Mul wrap at the type's width.

use super::binary::{Binary, BinaryOp, Kernel};
use crate::model::Node;
use crate::ops::{BuildCtx, Op, OpError, Registry};

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

/// Integer Mod with `fmod = 0`: the remainder takes the divisor's sign (Python's `%`).
fn int_mod(a: i64, b: i64) -> Result<i64, &'static str> {
    let r = int_fmod(a, b)?;
    Ok(if r != 0 && (r < 0) != (b < 0) { r + b } else { r })
}

/// Integer Mod with `fmod = 1`: the remainder takes the dividend's sign (C's `%`).
fn int_fmod(a: i64, b: i64) -> Result<i64, &'static str> {
    if b == 0 {
        return Err("integer modulo by zero");
    }
    Ok(a.wrapping_rem(b))
}

/// Mod: `fmod = 1` is C's fmod for floats and ints; `fmod = 0` (the default) is only defined
/// for integers.
fn build_mod(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    if node.attrs.int("fmod", 0) != 0 {
        Binary::new(BinaryOp::Fmod, Kernel::Arith { float: Some(|a, b| a % b), int: Some(int_fmod) }).boxed()
    } else {
        Binary::new(BinaryOp::Mod, Kernel::Arith { float: Some(float_mod), int: Some(int_mod) }).boxed()
    }
}

/// `Mod` with `fmod = 0` on floats: numpy's `mod`, the result taking the divisor's sign (a zero
/// result too), as ONNX's reference computes it (`torch.remainder`, Python's `%`).
fn float_mod(a: f32, b: f32) -> f32 {
    let m = a % b;
    if m == 0.0 {
        0.0f32.copysign(b)
    } else if (b < 0.0) != (m < 0.0) {
        m + b
    } else {
        m
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
        Binary::new(BinaryOp::Add, Kernel::Arith { float: Some(|a, b| a + b), int: Some(|a, b| Ok(a.wrapping_add(b))) })
            .same_shape_f32(|a, b| a.iter().zip(b).map(|(x, y)| x + y).collect())
            .boxed()
    });
    r.register("Sub", |_, _| {
        Binary::new(BinaryOp::Sub, Kernel::Arith { float: Some(|a, b| a - b), int: Some(|a, b| Ok(a.wrapping_sub(b))) })
            .same_shape_f32(|a, b| a.iter().zip(b).map(|(x, y)| x - y).collect())
            .boxed()
    });
    r.register("Mul", |_, _| {
        Binary::new(BinaryOp::Mul, Kernel::Arith { float: Some(|a, b| a * b), int: Some(|a, b| Ok(a.wrapping_mul(b))) })
            .same_shape_f32(|a, b| a.iter().zip(b).map(|(x, y)| x * y).collect())
            .boxed()
    });
    r.register("Div", |_, _| {
        Binary::new(BinaryOp::Div, Kernel::Arith { float: Some(|a, b| a / b), int: Some(int_div) })
            .same_shape_f32(|a, b| a.iter().zip(b).map(|(x, y)| x / y).collect())
            .boxed()
    });
    // The exponent may have another numeric type than the base; it is converted to the base's.
    r.register("Pow", |_, _| {
        Binary::new(BinaryOp::Pow, Kernel::Arith { float: Some(f32::powf), int: Some(int_pow) }).cast_rhs().boxed()
    });
    r.register("Mod", build_mod);
    r.register("Max", |_, _| {
        Binary::variadic(
            BinaryOp::Max,
            Kernel::Arith { float: Some(|a, b| nan_or(a, b, a >= b)), int: Some(|a, b| Ok(a.max(b))) },
        )
        .boxed()
    });
    r.register("Min", |_, _| {
        Binary::variadic(
            BinaryOp::Min,
            Kernel::Arith { float: Some(|a, b| nan_or(a, b, a <= b)), int: Some(|a, b| Ok(a.min(b))) },
        )
        .boxed()
    });
    // The slope broadcasts to X's shape (one way): per channel as `[C, 1, 1]` in PyTorch exports.
    r.register("PRelu", |_, _| {
        Binary::new(
            BinaryOp::PRelu,
            Kernel::Arith {
                float: Some(|x, s| if x < 0.0 { x * s } else { x }),
                int: Some(|x, s| Ok(if x < 0 { x.wrapping_mul(s) } else { x })),
            },
        )
        .unidirectional()
        .boxed()
    });
    r.register("Sum", |_, _| {
        Binary::variadic(
            BinaryOp::Sum,
            Kernel::Arith { float: Some(|a, b| a + b), int: Some(|a, b| Ok(a.wrapping_add(b))) },
        )
        .boxed()
    });
}
