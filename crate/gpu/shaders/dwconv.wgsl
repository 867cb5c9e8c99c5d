// Direct depthwise QLinearConv (groups = input channels = output channels): any kernel size,
// stride, padding and dilation, four channels (one packed word) per invocation, exact i32 sums
// Σ (x − zx)(w − zw) over the taps inside the input (padded taps add 0), then the shared
// epilogue (requant.wgsl). Layout as qconv.wgsl: NHWC4 codes in, NHWC4 codes or NCHW float32
// out. Weights are (w − zw) as i32, four channels per vec4, rows [c/4][ky][kx].

// Binding 0 is the uniform `u`, generated from `DwconvUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<i32>>;
// Bindings 3 and 4 (`chan`, `out`) are requant.wgsl's.

fn run_word(p: u32, c4: u32) {
    let ohw = u.win.oh * u.win.ow;
    let base = (p / ohw) * u.win.ih * u.win.iw;
    let o = window_origin(p % ohw);
    let wrow = c4 * u.win.kh * u.win.kw;
    let a = vec4<i32>(u.a);
    var acc = vec4<i32>(0);
    for (var ky: u32 = 0u; ky < u.win.kh; ky = ky + 1u) {
        for (var kx: u32 = 0u; kx < u.win.kw; kx = kx + 1u) {
            let t = window_tap(o, ky, kx);
            if (window_inside(t)) {
                let xv = unpack4(x[(base + window_offset(t)) * u.c4 + c4] ^ u.x_xor) + a;
                acc = acc + xv * w[wrow + ky * u.win.kw + kx];
            }
        }
    }
    // Depthwise weights carry no zero-point term (zb = 0): no Σx'.
    requant_store(p, c4, acc, vec4<i32>(0), u.c, u.c4, ohw);
}
