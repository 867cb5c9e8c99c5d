// Float32 element-wise functions of one tensor: Sigmoid (the CPU's overflow-free form), Tanh,
// Exp, HardSigmoid, HardSwish, LeakyRelu, Elu, Neg, Abs, Sqrt. Neg, Abs and LeakyRelu are exact;
// the others use the GPU's exp/tanh/sqrt and division, so they agree with the CPU to a few ULP
// (the executor keeps those on the CPU in models with 8-bit tensors, where a code must not move).

struct U {
    n: u32,        // elements
    row: u32,      // invocations per dispatch row
    op: u32,       // 0 Sigmoid, 1 Tanh, 2 Exp, 3 HardSigmoid, 4 HardSwish, 5 LeakyRelu, 6 Elu, 7 Neg, 8 Abs, 9 Sqrt
    _pad: u32,
    alpha: f32,
    beta: f32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn sigmoid(v: f32) -> f32 {
    if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * u.row + gid.x;
    if (i >= u.n) {
        return;
    }
    let v = x[i];
    var y: f32;
    switch u.op {
        case 0u: {
            y = sigmoid(v);
        }
        case 1u: {
            y = tanh(v);
        }
        case 2u: {
            y = exp(v);
        }
        case 3u: {
            y = clamp(u.alpha * v + u.beta, 0.0, 1.0);
        }
        case 4u: {
            y = v * clamp(v / 6.0 + 0.5, 0.0, 1.0);
        }
        case 5u: {
            y = select(v, u.alpha * v, v < 0.0);
        }
        case 6u: {
            y = select(v, u.alpha * (exp(v) - 1.0), v < 0.0);
        }
        case 7u: {
            y = -v;
        }
        case 8u: {
            y = abs(v);
        }
        default: {
            y = sqrt(v);
        }
    }
    out[i] = y;
}
