//! Elementary functions as [`Unary`] instances: Exp, Log, Sqrt, Neg, Abs, Sign, Floor, Ceil,
//! Round, Reciprocal, Erf.

use super::unary::Unary;
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
    r.register("Exp", |_, _| Unary::float("Exp", f32::exp).boxed());
    r.register("Log", |_, _| Unary::float("Log", f32::ln).boxed());
    r.register("Sqrt", |_, _| Unary::float("Sqrt", f32::sqrt).boxed());
    r.register("Neg", |_, _| Unary::float("Neg", |x| -x).with_int(i64::wrapping_neg).boxed());
    r.register("Abs", |_, _| Unary::float("Abs", f32::abs).with_int(i64::wrapping_abs).boxed());
    r.register("Sign", |_, _| {
        Unary::float("Sign", |x| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        })
        .with_int(i64::signum)
        .boxed()
    });
    r.register("Floor", |_, _| Unary::float("Floor", f32::floor).boxed());
    r.register("Ceil", |_, _| Unary::float("Ceil", f32::ceil).boxed());
    // ONNX Round rounds halves to even, like numpy.
    r.register("Round", |_, _| Unary::float("Round", f32::round_ties_even).boxed());
    r.register("Reciprocal", |_, _| Unary::float("Reciprocal", |x| 1.0 / x).boxed());
    r.register("Erf", |_, _| Unary::float("Erf", erf).boxed());
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
