// qplay.Lookup on 8-bit tensors in the NHWC4 layout: each code byte becomes table[code] (the
// 256-entry table planning computed from the CPU's own float chain), four channels per word;
// the bytes past the last channel stay 0, as every producer leaves them. Exact.

// Binding 0 is the uniform `u`, generated from `LookupUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32, 64>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    let w = gid.y;
    if (p >= u.npix || w >= u.c4) {
        return;
    }
    let v = x[p * u.c4 + w];
    var word = 0u;
    for (var j: u32 = 0u; j < 4u; j = j + 1u) {
        if (w * 4u + j >= u.c) {
            break;
        }
        let b = (v >> (8u * j)) & 0xffu;
        let t = (table[b / 4u] >> (8u * (b % 4u))) & 0xffu;
        word = word | (t << (8u * j));
    }
    out[p * u.c4 + w] = word;
}
