// Constant-mode Pad of float32 tensors (negative pads crop): over the output's index space (up
// to 8 dims, right-aligned), out[i] = x[Σ (k − begin)·stride] when every k − begin lies inside
// the input, else the constant. Exact (no arithmetic on values).

// Binding 0 is the uniform `u`, generated from `PadUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn run_element(i: u32) {
    var k = unravel(i);
    var src = 0u;
    var inside = true;
    for (var d: u32 = 0u; d < 8u; d = d + 1u) {
        let kd = i32(k[d]) - u.begin[d / 4u][d % 4u];
        if (kd < 0 || kd >= i32(u.idims[d / 4u][d % 4u])) {
            inside = false;
        } else {
            src = src + u32(kd) * u.istr[d / 4u][d % 4u];
        }
    }
    out[i] = select(u.value, x[src], inside);
}
