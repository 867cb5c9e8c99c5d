// TFLite's MEAN on int8 or uint8 codes over any axes (the core's `TflMean`), as LiteRT's
// reference kernel computes it, bit for bit: the int32 sum of the codes over the reduced
// axes, minus the input zero point times their count (wrapping, as the CPU's), times the
// multiplier with the division by the count folded in (`TflMean::multiplier`), plus the output
// zero point. Flat8 tensors; one invocation per output word, each code summing its own
// reduced elements.

// Binding 0 is the uniform `u`, generated from `TflmeanUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;

// Σ k[d]·istr[d] for the coordinates of element i of the index space `dims` (row-major).
fn offset_in(i: u32, dims: array<vec4<u32>, 2>) -> u32 {
    var rest = i;
    var o = 0u;
    for (var d: i32 = 7; d >= 0; d = d - 1) {
        let dim = dims[d / 4][d % 4];
        o = o + (rest % dim) * u.istr[d / 4][d % 4];
        rest = rest / dim;
    }
    return o;
}

fn code(e: u32) -> i32 {
    let base = offset_in(e, u.dims);
    var sum = 0;
    for (var r = 0u; r < u.count; r = r + 1u) {
        let i = base + offset_in(r, u.rdims);
        sum = sum + code_at(x[code_word(i)], i);
    }
    let shifted = sum - u.x_zp * i32(u.count);
    return clamp(mbqm(shifted, u.m, u.shift) + u.y_zp, u.code_lo, u.code_hi);
}
