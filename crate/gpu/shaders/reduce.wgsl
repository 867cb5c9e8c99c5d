// Row reductions of float32 tensors seen as [outer, len, inner], one invocation per
// (outer, inner) row of `len` elements `inner` apart: Softmax along an axis (the CPU's max,
// then exp(x − max), their sum, then a multiply by 1/sum), and the global pools
// (GlobalAveragePool: sum / len; GlobalMaxPool: max, exact). The sums run in the CPU's order;
// exp and division are the GPU's, so Softmax and the average agree with the CPU to rounding.

// Binding 0 is the uniform `u`, generated from `ReduceUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn run_element(r: u32) {
    let base = (r / u.inner) * u.len * u.inner + r % u.inner;
    var m = x[base];
    for (var k: u32 = 1u; k < u.len; k = k + 1u) {
        m = max(m, x[base + k * u.inner]);
    }
    if (u.op == REDUCE_MAX) {
        out[r] = m;
        return;
    }
    if (u.op == REDUCE_AVERAGE) {
        var s = 0.0;
        for (var k: u32 = 0u; k < u.len; k = k + 1u) {
            s = s + x[base + k * u.inner];
        }
        out[r] = s / f32(u.len);
        return;
    }
    var sum = 0.0;
    for (var k: u32 = 0u; k < u.len; k = k + 1u) {
        let e = exp(x[base + k * u.inner] - m);
        out[base + k * u.inner] = e;
        sum = sum + e;
    }
    let inv = 1.0 / sum;
    for (var k: u32 = 0u; k < u.len; k = k + 1u) {
        out[base + k * u.inner] = out[base + k * u.inner] * inv;
    }
}
