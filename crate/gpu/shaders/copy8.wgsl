// Strided gather of codes in the Flat8 layout (row-major bytes, four to a word) or, with
// `u.bits16`, the Flat16 layout (int16 codes, two to a word): Concat
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
    let lanes = select(4u, 2u, u.bits16 == 1u);
    let width = 32u / lanes;
    let mask = select(0xffu, 0xffffu, u.bits16 == 1u);
    for (var j = 0u; j < lanes; j = j + 1u) {
        let e = lanes * t + j;
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
        var code = u.value & mask;
        if (inside) {
            let s = u.src_base + strided(rel, u.ss);
            code = (x[s / lanes] >> (width * (s % lanes))) & mask;
        } else if (u.fill == 0u) {
            continue;
        }
        word = (word & ~(mask << (width * j))) | (code << (width * j));
    }
    out[t] = word;
}
