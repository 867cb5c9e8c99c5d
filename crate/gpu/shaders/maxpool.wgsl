// MaxPool of float32 NCHW tensors, 1-D or 2-D (1-D as a height of 1): one invocation per
// output element, the maximum over the window's taps that lie inside the input (padding never
// wins), any kernel, stride, dilation and padding; the output size (ceil_mode included) comes
// from the plan. Exact: the maximum is one of the inputs.

// Binding 0 is the uniform `u`, generated from `MaxpoolUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn run_element(i: u32) {
    let ohw = u.win.oh * u.win.ow;
    let base = (i / ohw) * u.win.ih * u.win.iw;
    let o = window_origin(i % ohw);
    // Starts from the first tap inside the input (every window has one): no -inf literal,
    // which WGSL cannot spell, and an all -inf window still gives -inf.
    var m = 0.0;
    var seen = false;
    for (var ky: u32 = 0u; ky < u.win.kh; ky = ky + 1u) {
        for (var kx: u32 = 0u; kx < u.win.kw; kx = kx + 1u) {
            let t = window_tap(o, ky, kx);
            if (window_inside(t)) {
                let v = x[base + window_offset(t)];
                m = select(max(m, v), v, !seen);
                seen = true;
            }
        }
    }
    out[i] = m;
}
