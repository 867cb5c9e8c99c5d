//! Elementary functions as [`Unary`] instances: Exp, Log, Sqrt, Neg, Abs, Sign, Floor, Ceil,
//! Round, Reciprocal, Erf, and the trigonometric and hyperbolic functions and their inverses.

use super::unary::{Unary, UnaryFn};
use crate::ops::Registry;

/// The error function, by Abramowitz & Stegun 7.1.26 evaluated in f64 (absolute error below
/// 1.5e-7, i.e. within f32 rounding of the exact value for the inputs GELU sees).
pub fn erf(x: f32) -> f32 {
    let x = x as f64;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    (if x < 0.0 { -y } else { y }) as f32
}

/// Adds the elementary functions to the registry.
pub fn register(r: &mut Registry) {
    r.register("Exp", |_, _| Unary::new(UnaryFn::Exp).boxed());
    r.register("Log", |_, _| Unary::new(UnaryFn::Log).boxed());
    r.register("Sqrt", |_, _| Unary::new(UnaryFn::Sqrt).boxed());
    r.register("Neg", |_, _| Unary::new(UnaryFn::Neg).boxed());
    r.register("Abs", |_, _| Unary::new(UnaryFn::Abs).boxed());
    r.register("Sign", |_, _| Unary::new(UnaryFn::Sign).boxed());
    r.register("Floor", |_, _| Unary::new(UnaryFn::Floor).boxed());
    r.register("Ceil", |_, _| Unary::new(UnaryFn::Ceil).boxed());
    r.register("Round", |_, _| Unary::new(UnaryFn::Round).boxed());
    r.register("Reciprocal", |_, _| Unary::new(UnaryFn::Reciprocal).boxed());
    r.register("Erf", |_, _| Unary::new(UnaryFn::Erf).boxed());
    r.register("Sin", |_, _| Unary::new(UnaryFn::Sin).boxed());
    r.register("Cos", |_, _| Unary::new(UnaryFn::Cos).boxed());
    r.register("Tan", |_, _| Unary::new(UnaryFn::Tan).boxed());
    r.register("Asin", |_, _| Unary::new(UnaryFn::Asin).boxed());
    r.register("Acos", |_, _| Unary::new(UnaryFn::Acos).boxed());
    r.register("Atan", |_, _| Unary::new(UnaryFn::Atan).boxed());
    r.register("Sinh", |_, _| Unary::new(UnaryFn::Sinh).boxed());
    r.register("Cosh", |_, _| Unary::new(UnaryFn::Cosh).boxed());
    r.register("Asinh", |_, _| Unary::new(UnaryFn::Asinh).boxed());
    r.register("Acosh", |_, _| Unary::new(UnaryFn::Acosh).boxed());
    r.register("Atanh", |_, _| Unary::new(UnaryFn::Atanh).boxed());
}

#[cfg(test)]
mod tests {
    #[test]
    fn erf_matches_reference_values() {
        // erf(0.5), erf(1), erf(2) from tables.
        for (x, want) in [(0.0, 0.0), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (2.0, 0.995_322_3), (-1.0, -0.842_700_8)]
        {
            assert!((super::erf(x) - want).abs() < 3e-7, "erf({x}) = {}", super::erf(x));
        }
    }
}
