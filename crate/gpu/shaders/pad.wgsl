// Constant-mode Pad of float32 tensors (negative pads crop): over the output's index space (up
// to 8 dims, right-aligned), out[i] = x[Σ (k − begin)·stride] when every k − begin lies inside
// the input, else the constant. Exact (no arithmetic on values).

// Binding 0 is the uniform `u`, generated from `PadUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * u.row + gid.x;
    if (i >= u.n) {
        return;
    }
    var rest = i;
    var src = 0u;
    var inside = true;
    for (var d: i32 = 7; d >= 0; d = d - 1) {
        let dim = u.dims[d / 4][d % 4];
        let k = i32(rest % dim) - u.begin[d / 4][d % 4];
        rest = rest / dim;
        if (k < 0 || k >= i32(u.idims[d / 4][d % 4])) {
            inside = false;
        } else {
            src = src + u32(k) * u.istr[d / 4][d % 4];
        }
    }
    out[i] = select(u.value, x[src], inside);
}
