// DequantizeLinear, per tensor: 8-bit codes NHWC4 in, float32 NCHW out (four channels per
// invocation): y = f32(q − zp) · scale, the CPU rule.

// Binding 0 is the uniform `u`, generated from `DequantizeUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn run_word(p: u32, c4: u32) {
    let q = unpack4(x[p * u.c4 + c4] ^ u.x_xor) + vec4<i32>(u.shift - u.zp);
    for (var j: u32 = 0u; j < lanes(c4, u.c); j = j + 1u) {
        out[nchw(p, c4 * 4u + j, u.c, u.s)] = f32(q[j]) * u.scale;
    }
}
