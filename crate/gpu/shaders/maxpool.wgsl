// MaxPool of float32 NCHW tensors, 1-D or 2-D (1-D as a height of 1): one invocation per
// output element, the maximum over the window's taps that lie inside the input (padding never
// wins), any kernel, stride, dilation and padding; the output size (ceil_mode included) comes
// from the plan. Exact: the maximum is one of the inputs.

struct M {
    n: u32,        // output elements (planes · oh · ow)
    row: u32,      // invocations per dispatch row
    ih: u32,
    iw: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    dh: u32,
    dw: u32,
    ph: u32,
    pw: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> u: M;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * u.row + gid.x;
    if (i >= u.n) {
        return;
    }
    let ohw = u.oh * u.ow;
    let plane = i / ohw;
    let r = i % ohw;
    let y0 = i32((r / u.ow) * u.sh) - i32(u.ph);
    let x0 = i32((r % u.ow) * u.sw) - i32(u.pw);
    let base = plane * u.ih * u.iw;
    // Starts from the first tap inside the input (every window has one): no -inf literal,
    // which WGSL cannot spell, and an all -inf window still gives -inf.
    var m = 0.0;
    var seen = false;
    for (var ky: u32 = 0u; ky < u.kh; ky = ky + 1u) {
        let iy = y0 + i32(ky * u.dh);
        if (iy < 0 || iy >= i32(u.ih)) {
            continue;
        }
        for (var kx: u32 = 0u; kx < u.kw; kx = kx + 1u) {
            let ix = x0 + i32(kx * u.dw);
            if (ix < 0 || ix >= i32(u.iw)) {
                continue;
            }
            let v = x[base + u32(iy) * u.iw + u32(ix)];
            m = select(max(m, v), v, !seen);
            seen = true;
        }
    }
    out[i] = m;
}
