// QuantizeLinear, per tensor: float32 NCHW in, 8-bit codes NHWC4 out (one packed word, four
// channels, per invocation): q = clamp(round_half_even(x / scale) + zp, qmin, qmax), the CPU
// rule (crate/core/src/quant/params.rs `quantize`): x / scale divided (never a multiplied
// reciprocal), clamped to ±2^22 before rounding, NaN → 0.

const ROUND_LIM: f32 = 4194304.0;

struct Q {
    c: u32,     // channels
    c4: u32,    // words per pixel
    s: u32,     // pixels per image (product of the spatial dims; 1 for rank 2)
    npix: u32,  // batch · s
    scale: f32,
    zp: i32,
    qmin: i32,
    qmax: i32,
}

@group(0) @binding(0) var<uniform> u: Q;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    let c4 = gid.y;
    if (p >= u.npix || c4 >= u.c4) {
        return;
    }
    let n = p / u.s;
    let i = p % u.s;
    var word = 0u;
    for (var j: u32 = 0u; j < 4u; j = j + 1u) {
        let c = c4 * 4u + j;
        if (c >= u.c) {
            break;
        }
        var v = x[(n * u.c + c) * u.s + i] / u.scale;
        if (!(v == v)) {
            v = 0.0;
        }
        let q = clamp(i32(round(clamp(v, -ROUND_LIM, ROUND_LIM))) + u.zp, u.qmin, u.qmax);
        word = word | ((bitcast<u32>(q) & 0xffu) << (8u * j));
    }
    out[p * u.c4 + c4] = word;
}
