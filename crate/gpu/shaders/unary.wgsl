// Float32 element-wise functions of one tensor: Sigmoid (the CPU's overflow-free form), Tanh,
// Exp, HardSigmoid, HardSwish, LeakyRelu, Elu, Neg, Abs, Sqrt, Softplus, Erf (the CPU's
// Abramowitz & Stegun 7.1.26, here in f32). Neg, Abs and LeakyRelu are exact; the others use the
// GPU's exp/tanh/sqrt/log and division, so they agree with the CPU to a few ULP
// (the executor keeps those on the CPU in models with 8-bit tensors, where a code must not move).

// Binding 0 is the uniform `u`, generated from `UnaryUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn sigmoid(v: f32) -> f32 {
    if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

// tanh without the cancellation of (e²ˣ − 1)/(e²ˣ + 1) near 0 (a Taylor polynomial there, to
// f32 precision), and without overflow for large |x|: within a few ULP of the CPU's libm.
fn tanh_acc(v: f32) -> f32 {
    let a = abs(v);
    if (a < 0.125) {
        let s = v * v;
        return v * (1.0 + s * (-1.0 / 3.0 + s * (2.0 / 15.0 + s * (-17.0 / 315.0 + s * (62.0 / 2835.0)))));
    }
    let t = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
    return select(t, -t, v < 0.0);
}

// ln(1 + e), accurate when e is small (Goldberg: log(u)·e / (u − 1) with u = 1 + e rounded).
fn log1p(e: f32) -> f32 {
    let u = 1.0 + e;
    if (u == 1.0) {
        return e;
    }
    return log(u) * e / (u - 1.0);
}

fn erf(v: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * abs(v));
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * exp(-v * v);
    return select(y, -y, v < 0.0);
}

fn run_element(i: u32) {
    let v = x[i];
    var y: f32;
    switch u.op {
        case UNARY_SIGMOID: {
            y = sigmoid(v);
        }
        case UNARY_TANH: {
            y = tanh_acc(v);
        }
        case UNARY_EXP: {
            y = exp(v);
        }
        case UNARY_HARDSIGMOID: {
            y = clamp(u.alpha * v + u.beta, 0.0, 1.0);
        }
        case UNARY_HARDSWISH: {
            y = v * clamp(v / 6.0 + 0.5, 0.0, 1.0);
        }
        case UNARY_LEAKYRELU: {
            y = select(v, u.alpha * v, v < 0.0);
        }
        case UNARY_ELU: {
            y = select(v, u.alpha * (exp(v) - 1.0), v < 0.0);
        }
        case UNARY_NEG: {
            y = -v;
        }
        case UNARY_ABS: {
            y = abs(v);
        }
        case UNARY_SQRT: {
            y = sqrt(v);
        }
        case UNARY_SOFTPLUS: {
            // ln(1 + eˣ) without overflow, as on the CPU (log1p as ln_1p: accurate for small e).
            y = max(v, 0.0) + log1p(exp(-abs(v)));
        }
        case UNARY_ERF: {
            y = erf(v);
        }
        default: {
            y = v;
        }
    }
    out[i] = y;
}
