// qplay.Lookup on 8-bit tensors in the NHWC4 layout: each code byte becomes table[code] (the
// 256-entry table planning computed from the CPU's own float chain), four channels per word;
// the bytes past the last channel stay 0, as every producer leaves them. Exact.

// Binding 0 is the uniform `u`, generated from `LookupUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32, 64>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

fn run_word(p: u32, w: u32) {
    let v = x[p * u.c4 + w];
    var word = 0u;
    for (var j: u32 = 0u; j < lanes(w, u.c); j = j + 1u) {
        let b = (v >> (8u * j)) & 0xffu;
        let t = (table[b / 4u] >> (8u * (b % 4u))) & 0xffu;
        word = pack_lane(word, j, i32(t));
    }
    out[p * u.c4 + w] = word;
}
