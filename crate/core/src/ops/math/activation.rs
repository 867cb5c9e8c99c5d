//! Activation functions as [`Unary`] instances: Relu, LeakyRelu, Sigmoid, HardSigmoid,
//! HardSwish, Tanh, Gelu, Elu, Softplus, Mish, Swish, Selu, Celu, Softsign, ThresholdedRelu,
//! Shrink.

use super::unary::{Unary, UnaryFn};
use crate::ops::{OpError, Registry};

/// The logistic function, evaluated without overflow for large |x|.
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Adds the activations to the registry.
pub fn register(r: &mut Registry) {
    r.register("Relu", |_, _| Unary::new(UnaryFn::Relu).boxed());
    r.register("LeakyRelu", |n, _| Unary::new(UnaryFn::LeakyRelu { alpha: n.attrs.float("alpha", 0.01) }).boxed());
    r.register("Sigmoid", |_, _| Unary::new(UnaryFn::Sigmoid).boxed());
    r.register("HardSigmoid", |n, _| {
        let (alpha, beta) = (n.attrs.float("alpha", 0.2), n.attrs.float("beta", 0.5));
        Unary::new(UnaryFn::HardSigmoid { alpha, beta }).boxed()
    });
    r.register("HardSwish", |_, _| Unary::new(UnaryFn::HardSwish).boxed());
    r.register("Tanh", |_, _| Unary::new(UnaryFn::Tanh).boxed());
    // Gelu (opset 20): x·Φ(x) exactly, or its tanh approximation.
    r.register("Gelu", |n, _| match n.attrs.string("approximate", "none") {
        "none" => Unary::new(UnaryFn::Gelu).boxed(),
        "tanh" => Unary::new(UnaryFn::GeluTanh).boxed(),
        a => Err(OpError::malformed(format!("Gelu approximate `{a}` is not one of none, tanh"))),
    });
    r.register("Elu", |n, _| Unary::new(UnaryFn::Elu { alpha: n.attrs.float("alpha", 1.0) }).boxed());
    r.register("Softplus", |_, _| Unary::new(UnaryFn::Softplus).boxed());
    r.register("Mish", |_, _| Unary::new(UnaryFn::Mish).boxed());
    r.register("Swish", |n, _| Unary::new(UnaryFn::Swish { alpha: n.attrs.float("alpha", 1.0) }).boxed());
    r.register("Selu", |n, _| {
        let (alpha, gamma) = (n.attrs.float("alpha", 1.673_263_2), n.attrs.float("gamma", 1.050_701));
        Unary::new(UnaryFn::Selu { alpha, gamma }).boxed()
    });
    r.register("Celu", |n, _| match n.attrs.float("alpha", 1.0) {
        0.0 => Err(OpError::malformed("Celu alpha is 0; it must not be (the op divides by it)")),
        alpha => Unary::new(UnaryFn::Celu { alpha }).boxed(),
    });
    r.register("Softsign", |_, _| Unary::new(UnaryFn::Softsign).boxed());
    r.register("ThresholdedRelu", |n, _| {
        Unary::new(UnaryFn::ThresholdedRelu { alpha: n.attrs.float("alpha", 1.0) }).boxed()
    });
    r.register("Shrink", |n, _| {
        let (bias, lambd) = (n.attrs.float("bias", 0.0), n.attrs.float("lambd", 0.5));
        Unary::new(UnaryFn::Shrink { bias, lambd }).boxed()
    });
}
