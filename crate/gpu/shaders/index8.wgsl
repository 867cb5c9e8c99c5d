// Index spaces of up to 8 dims, right-aligned in a uniform's array<vec4<u32>, 2> (leading dims
// 1, as `dims8` in src/exec/ops/mod.rs writes them): the coordinates of an element of the
// uniform's `dims`, and its offset under strides.

// The coordinates of element i of `u.dims` (row-major), dim 0 first.
fn unravel(i: u32) -> array<u32, 8> {
    var k: array<u32, 8>;
    var rest = i;
    for (var d: i32 = 7; d >= 0; d = d - 1) {
        let dim = u.dims[d / 4][d % 4];
        k[d] = rest % dim;
        rest = rest / dim;
    }
    return k;
}

// Σ k[d]·s[d]. u32 arithmetic wraps, so negative strides written in two's complement work.
fn strided(k: array<u32, 8>, s: array<vec4<u32>, 2>) -> u32 {
    var kv = k;
    var sv = s;
    var o = 0u;
    for (var d: u32 = 0u; d < 8u; d = d + 1u) {
        o = o + kv[d] * sv[d / 4u][d % 4u];
    }
    return o;
}
