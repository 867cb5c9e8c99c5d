// Strided gather of 8-bit codes in the Flat8 layout (row-major bytes, four to a word): Concat
// (one dispatch per input, each writing its box of the output and keeping the other bytes),
// Slice (source strides times the steps, negative for reversed axes: two's complement, the sum
// wraps), Transpose (permuted source strides) and constant-mode Pad (the box of the input, the
// pad code around it). One invocation
// per output word, so no two invocations write one word. Output element k (coordinates in
// `dims`, index8.wgsl) inside the box `base … base + extent` takes source element
// `src_base + Σ (k − base)·ss`; outside it, the fill code (`fill == 1`) or its old byte.
// Exact (no arithmetic on values).

// Binding 0 is the uniform `u`, generated from `Copy8Uniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

fn run_element(t: u32) {
    var word = select(out[t], 0u, u.fill == 1u);
    for (var j = 0u; j < 4u; j = j + 1u) {
        let e = 4u * t + j;
        if (e >= u.len) {
            break;
        }
        let k = unravel(e);
        var inside = true;
        var rel: array<u32, 8>;
        for (var d = 0u; d < 8u; d = d + 1u) {
            let b = u.base[d / 4u][d % 4u];
            inside = inside && k[d] >= b && k[d] - b < u.extent[d / 4u][d % 4u];
            rel[d] = k[d] - b;
        }
        var code = u.value & 0xffu;
        if (inside) {
            let s = u.src_base + strided(rel, u.ss);
            code = (x[s / 4u] >> (8u * (s % 4u))) & 0xffu;
        } else if (u.fill == 0u) {
            continue;
        }
        word = (word & ~(0xffu << (8u * j))) | (code << (8u * j));
    }
    out[t] = word;
}
