// Int8 GEMM with requantization: out[m][n] = clamp(round(f32(acc + add[m]) * scale[m]) + zp, lo, hi)
// where acc = Σ_k a[m][k] · b'[n][k] over packed 4×int8 words (dot4I8Packed), b' = b − 128 for
// uint8 activations (the caller folds the shift into add[m]). One invocation per output element.
// `dot4` comes from dot4_packed.wgsl (DP4A) or dot4_unpacked.wgsl (no packed_4x8 feature).
// Shapes travel in the uniform; nothing is baked into the shader text.

struct Dims {
    m: u32,
    n: u32,
    k4: u32,     // K / 4, rounded up (zero-padded words)
    zp: i32,     // output zero-point
    lo: i32,     // clamp bounds in the output's integer domain
    hi: i32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<u32>;      // [m][k4] packed int8 weights
@group(0) @binding(2) var<storage, read> b: array<u32>;      // [n][k4] packed int8 activations
@group(0) @binding(3) var<storage, read> add: array<i32>;    // [m] bias and zero-point terms
@group(0) @binding(4) var<storage, read> scale: array<f32>;  // [m] requantization multipliers
@group(0) @binding(5) var<storage, read_write> out: array<i32>; // [m][n] codes

const ROUND_LIM: f32 = 4194304.0; // 2^22, as the CPU reference clamps before rounding

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    let m = gid.y;
    if (m >= dims.m || n >= dims.n) {
        return;
    }
    var acc: i32 = 0;
    let ra = m * dims.k4;
    let rb = n * dims.k4;
    for (var k: u32 = 0u; k < dims.k4; k = k + 1u) {
        acc = acc + dot4(a[ra + k], b[rb + k]);
    }
    let v = acc + add[m];
    let x = clamp(f32(v) * scale[m], -ROUND_LIM, ROUND_LIM);
    let q = i32(round(x)) + dims.zp; // WGSL round() is round-half-to-even
    out[m * dims.n + n] = clamp(q, dims.lo, dims.hi);
}
