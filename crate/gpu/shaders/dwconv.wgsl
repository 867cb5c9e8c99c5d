// Direct depthwise QLinearConv (groups = input channels = output channels): any kernel size,
// stride, padding and dilation, four channels (one packed word) per invocation, exact i32 sums
// Σ (x − zx)(w − zw) over the taps inside the input (padded taps add 0), then the shared
// epilogue (requant.wgsl). Layout as qconv.wgsl: NHWC4 codes in, NHWC4 codes or NCHW float32
// out. Weights are (w − zw) as i32, four channels per vec4, rows [c/4][ky][kx].

// Binding 0 is the uniform `u`, generated from `DwconvUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<i32>>;
@group(0) @binding(3) var<storage, read> chan: array<Chan>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    let c4 = gid.y;
    if (p >= u.npix || c4 >= u.c4) {
        return;
    }
    let ohw = u.win.oh * u.win.ow;
    let n = p / ohw;
    let r = p % ohw;
    let oy = r / u.win.ow;
    let ox = r % u.win.ow;
    let in_base = n * u.win.ih * u.win.iw;
    let wrow = c4 * u.win.kh * u.win.kw;
    let a = vec4<i32>(u.a);
    var acc = vec4<i32>(0);
    for (var ky: u32 = 0u; ky < u.win.kh; ky = ky + 1u) {
        let iy = i32(oy * u.win.sh + ky * u.win.dh) - i32(u.win.ph);
        if (iy < 0 || iy >= i32(u.win.ih)) {
            continue;
        }
        for (var kx: u32 = 0u; kx < u.win.kw; kx = kx + 1u) {
            let ix = i32(ox * u.win.sw + kx * u.win.dw) - i32(u.win.pw);
            if (ix < 0 || ix >= i32(u.win.iw)) {
                continue;
            }
            let xv = unpack4(x[(in_base + u32(iy) * u.win.iw + u32(ix)) * u.c4 + c4] ^ u.x_xor) + a;
            acc = acc + xv * w[wrow + ky * u.win.kw + kx];
        }
    }
    var word = 0u;
    for (var j: u32 = 0u; j < 4u; j = j + 1u) {
        let ch = c4 * 4u + j;
        if (ch >= u.c) {
            break;
        }
        let cc = chan[ch];
        let v = acc[j] + cc.add;
        if (u.epi.float_out == 1u) {
            out[(n * u.c + ch) * ohw + r] = bitcast<u32>(requant_float(v, cc, u.epi));
        } else {
            word = word | ((bitcast<u32>(requant_code(v, cc, u.epi)) & 0xffu) << (8u * j));
        }
    }
    if (u.epi.float_out == 0u) {
        out[p * u.c4 + c4] = word;
    }
}
