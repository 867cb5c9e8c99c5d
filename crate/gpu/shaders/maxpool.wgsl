// MaxPool of float32 NCHW tensors, 1-D or 2-D (1-D as a height of 1): one invocation per
// output element, the maximum over the window's taps that lie inside the input (padding never
// wins), any kernel, stride, dilation and padding; the output size (ceil_mode included) comes
// from the plan. Exact: the maximum is one of the inputs.

// Binding 0 is the uniform `u`, generated from `MaxpoolUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * u.row + gid.x;
    if (i >= u.n) {
        return;
    }
    let ohw = u.win.oh * u.win.ow;
    let plane = i / ohw;
    let r = i % ohw;
    let y0 = i32((r / u.win.ow) * u.win.sh) - i32(u.win.ph);
    let x0 = i32((r % u.win.ow) * u.win.sw) - i32(u.win.pw);
    let base = plane * u.win.ih * u.win.iw;
    // Starts from the first tap inside the input (every window has one): no -inf literal,
    // which WGSL cannot spell, and an all -inf window still gives -inf.
    var m = 0.0;
    var seen = false;
    for (var ky: u32 = 0u; ky < u.win.kh; ky = ky + 1u) {
        let iy = y0 + i32(ky * u.win.dh);
        if (iy < 0 || iy >= i32(u.win.ih)) {
            continue;
        }
        for (var kx: u32 = 0u; kx < u.win.kw; kx = kx + 1u) {
            let ix = x0 + i32(kx * u.win.dw);
            if (ix < 0 || ix >= i32(u.win.iw)) {
                continue;
            }
            let v = x[base + u32(iy) * u.win.iw + u32(ix)];
            m = select(max(m, v), v, !seen);
            seen = true;
        }
    }
    out[i] = m;
}
