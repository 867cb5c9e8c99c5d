// Float32 element-wise ops with numpy broadcasting (Add, Sub, Mul, Div, PRelu; Clip and a per-channel
// affine step as two of them): out[i] = op(a[ia], b[ib]) over the output's index space, up to
// 8 dims, each operand's strides 0 along its broadcast dims. Add, Sub, Mul, PRelu and Clip are one
// correctly rounded IEEE operation per element, so the result equals the CPU's bit for bit (a
// multiply and an add are always two dispatches: a fused multiply-add would round once); WGSL
// allows division to be 2.5 ULP off, so Div agrees to rounding (and runs only in float plans).

// Binding 0 is the uniform `u`, generated from `BinaryUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn run_element(i: u32) {
    let k = unravel(i);
    let x = a[strided(k, u.sa)];
    let ib = strided(k, u.sb);
    var y: f32;
    switch u.op {
        case BINARY_ADD: {
            y = x + b[ib];
        }
        case BINARY_SUB: {
            y = x - b[ib];
        }
        case BINARY_MUL: {
            y = x * b[ib];
        }
        case BINARY_DIV: {
            y = x / b[ib];
        }
        case BINARY_PRELU: {
            y = select(x, x * b[ib], x < 0.0);
        }
        default: {
            y = x;
            if (u.has_lo == 1u && y < u.lo) {
                y = u.lo;
            }
            if (u.has_hi == 1u && y > u.hi) {
                y = u.hi;
            }
        }
    }
    out[i] = y;
}
