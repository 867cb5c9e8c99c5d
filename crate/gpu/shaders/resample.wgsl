// One axis of Resize (float32): the tensor seen as [outer, n_in, inner] becomes
// [outer, n_out, inner]; output index o reads the two taps (i0, w0), (i1, w1) the CPU's Resize
// computed for it: x[i0] when w1 = 0 (nearest: an exact copy), else x[i0]·w0 + x[i1]·w1 (linear;
// a GPU may fuse it, so it agrees to rounding). Resize runs one dispatch per resampled axis, in
// the CPU's order.

// Binding 0 is the uniform `u`, generated from `ResampleUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> taps: array<vec4<u32>>; // i0, i1, w0 bits, w1 bits
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn run_element(i: u32) {
    let k = i % u.inner;
    let o = (i / u.inner) % u.n_out;
    let outer = i / (u.inner * u.n_out);
    let t = taps[o];
    let base = outer * u.n_in * u.inner + k;
    let w1 = bitcast<f32>(t.w);
    let v0 = x[base + t.x * u.inner];
    if (w1 == 0.0) {
        out[i] = v0;
    } else {
        out[i] = v0 * bitcast<f32>(t.z) + x[base + t.y * u.inner] * w1;
    }
}
