// Float32 Conv (NCHW): any kernel size, stride, padding, dilation and groups, one invocation
// per output element, then the bias, the fused clamp (a Relu/Clip folded into the Conv at
// plan time) and the fused per-channel max, in the CPU's order. The sum runs over input
// channels, then kernel rows, then columns, in f32: a different order from the CPU's blocked
// SGEMM, so results agree to rounding (tests bound the difference), not bit for bit.

struct F {
    ih: u32,
    iw: u32,
    c: u32,         // input channels
    oh: u32,
    ow: u32,
    m: u32,         // output channels
    npix: u32,      // batch · oh · ow
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    dh: u32,
    dw: u32,
    ph: u32,
    pw: u32,
    cg: u32,        // input channels per group
    mg: u32,        // output channels per group
    has_bias: u32,
    has_lo: u32,
    has_hi: u32,
    has_cmax: u32,
    lo: f32,
    hi: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> u: F;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> cmax: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    let m = gid.y;
    if (p >= u.npix || m >= u.m) {
        return;
    }
    let ohw = u.oh * u.ow;
    let n = p / ohw;
    let r = p % ohw;
    let oy = r / u.ow;
    let ox = r % u.ow;
    let c0 = (m / u.mg) * u.cg;
    let hw = u.ih * u.iw;
    var acc: f32 = 0.0;
    for (var ci: u32 = 0u; ci < u.cg; ci = ci + 1u) {
        let xplane = (n * u.c + c0 + ci) * hw;
        let wrow = (m * u.cg + ci) * u.kh * u.kw;
        for (var ky: u32 = 0u; ky < u.kh; ky = ky + 1u) {
            let iy = i32(oy * u.sh + ky * u.dh) - i32(u.ph);
            if (iy < 0 || iy >= i32(u.ih)) {
                continue;
            }
            for (var kx: u32 = 0u; kx < u.kw; kx = kx + 1u) {
                let ix = i32(ox * u.sw + kx * u.dw) - i32(u.pw);
                if (ix < 0 || ix >= i32(u.iw)) {
                    continue;
                }
                acc = acc + x[xplane + u32(iy) * u.iw + u32(ix)] * w[wrow + ky * u.kw + kx];
            }
        }
    }
    var y = acc;
    if (u.has_bias == 1u) {
        y = y + bias[m];
    }
    if (u.has_lo == 1u && y < u.lo) {
        y = u.lo;
    }
    if (u.has_hi == 1u && y > u.hi) {
        y = u.hi;
    }
    if (u.has_cmax == 1u) {
        let b = cmax[m];
        if (y > b) {
            y = b;
        }
    }
    out[(n * u.m + m) * ohw + r] = y;
}
