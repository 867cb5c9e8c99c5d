//! Activation functions as [`Unary`] instances: Relu, LeakyRelu, Sigmoid, HardSigmoid,
//! HardSwish, Tanh, Gelu, Elu, Softplus.

use super::unary::Unary;
use crate::ops::Registry;

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
    // `x < 0 ? 0 : x` rather than `max` so that NaN propagates as in ONNX Runtime.
    r.register("Relu", |_, _| Unary::float("Relu", |x| if x < 0.0 { 0.0 } else { x }).with_int(|x| x.max(0)).boxed());
    r.register("LeakyRelu", |n, _| {
        let alpha = n.attrs.float("alpha", 0.01);
        Unary::float("LeakyRelu", move |x| if x < 0.0 { alpha * x } else { x }).boxed()
    });
    r.register("Sigmoid", |_, _| Unary::float("Sigmoid", sigmoid).boxed());
    r.register("HardSigmoid", |n, _| {
        let (alpha, beta) = (n.attrs.float("alpha", 0.2), n.attrs.float("beta", 0.5));
        Unary::float("HardSigmoid", move |x| (alpha * x + beta).clamp(0.0, 1.0)).boxed()
    });
    // HardSwish is x · HardSigmoid(x) with alpha = 1/6, beta = 0.5 (opset 14).
    r.register("HardSwish", |_, _| Unary::float("HardSwish", |x| x * (x / 6.0 + 0.5).clamp(0.0, 1.0)).boxed());
    r.register("Tanh", |_, _| Unary::float("Tanh", f32::tanh).boxed());
    // Gelu (opset 20): x·Φ(x) exactly, or its tanh approximation.
    r.register("Gelu", |n, _| match n.attrs.string("approximate", "none") {
        "none" => {
            Unary::float("Gelu", |x| 0.5 * x * (1.0 + super::elementary::erf(x * std::f32::consts::FRAC_1_SQRT_2)))
                .boxed()
        }
        "tanh" => Unary::float("Gelu", |x| {
            0.5 * x * (1.0 + ((2.0 / std::f32::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
        })
        .boxed(),
        a => Err(format!("Gelu approximate `{a}` is not one of none, tanh")),
    });
    r.register("Elu", |n, _| {
        let alpha = n.attrs.float("alpha", 1.0);
        Unary::float("Elu", move |x| if x < 0.0 { alpha * x.exp_m1() } else { x }).boxed()
    });
    // ln(1 + eˣ), written so large x does not overflow.
    r.register("Softplus", |_, _| Unary::float("Softplus", |x| x.max(0.0) + (-x.abs()).exp().ln_1p()).boxed());
}
