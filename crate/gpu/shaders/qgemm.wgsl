// Int8 GEMM with requantization: out[m][n] = to_code(f32(acc + add[m]) * scale[m], zp, lo, hi)
// where acc = Σ_k a[m][k] · b'[n][k] over packed 4×int8 words (dot4I8Packed), b' = b − 128 for
// uint8 activations (the caller folds the shift into add[m]); to_code (codes.wgsl) clamps to
// ±2^22, rounds half to even, adds zp and clamps, as the CPU does. One invocation per output.
// `dot4` comes from dot4_packed.wgsl (DP4A) or dot4_unpacked.wgsl (no packed_4x8 feature).
// Shapes travel in the uniform; nothing is baked into the shader text.

// Binding 0 is the uniform `u`, generated from `QgemmUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> a: array<u32>;      // [m][k4] packed int8 weights
@group(0) @binding(2) var<storage, read> b: array<u32>;      // [n][k4] packed int8 activations
@group(0) @binding(3) var<storage, read> add: array<i32>;    // [m] bias and zero-point terms
@group(0) @binding(4) var<storage, read> scale: array<f32>;  // [m] requantization multipliers
@group(0) @binding(5) var<storage, read_write> out: array<i32>; // [m][n] codes

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    let m = gid.y;
    if (m >= u.m || n >= u.n) {
        return;
    }
    var acc: i32 = 0;
    let ra = m * u.k4;
    let rb = n * u.k4;
    for (var k: u32 = 0u; k < u.k4; k = k + 1u) {
        acc = acc + dot4(a[ra + k], b[rb + k]);
    }
    out[m * u.n + n] = to_code(f32(acc + add[m]) * scale[m], u.zp, u.lo, u.hi);
}
