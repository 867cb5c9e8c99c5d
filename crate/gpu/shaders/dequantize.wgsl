// DequantizeLinear, per tensor: 8-bit codes NHWC4 in, float32 NCHW out (four channels per
// invocation): y = f32(q − zp) · scale, the CPU rule.

// Binding 0 is the uniform `u`, generated from `DequantizeUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    let c4 = gid.y;
    if (p >= u.npix || c4 >= u.c4) {
        return;
    }
    let n = p / u.s;
    let i = p % u.s;
    let q = unpack4(x[p * u.c4 + c4] ^ u.x_xor) + vec4<i32>(u.shift - u.zp);
    for (var j: u32 = 0u; j < 4u; j = j + 1u) {
        let c = c4 * 4u + j;
        if (c >= u.c) {
            break;
        }
        out[(n * u.c + c) * u.s + i] = f32(q[j]) * u.scale;
    }
}
