// Float32 Conv (NCHW): any kernel size, stride, padding, dilation and groups, one invocation
// per 4 output pixels × 4 output channels (each input value loaded feeds four channels when
// they share a group, each weight four pixels), then the bias, the fused clamp (a Relu/Clip folded into the Conv at
// plan time) and the fused per-channel max, in the CPU's order. The sum runs over input
// channels, then kernel rows, then columns, in f32: a different order from the CPU's blocked
// SGEMM, so results agree to rounding (tests bound the difference), not bit for bit.

// Binding 0 is the uniform `u`, generated from `FconvUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> cmax: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const PX: u32 = 4u;

fn finish(acc: f32, m: u32) -> f32 {
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
    return y;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p0 = gid.x * PX;
    let m0 = gid.y * 4u;
    if (p0 >= u.npix || m0 >= u.m) {
        return;
    }
    let ohw = u.win.oh * u.win.ow;
    let hw = u.win.ih * u.win.iw;
    let taps = u.win.kh * u.win.kw;
    let last = u.m - 1u;
    let ms = vec4<u32>(m0, min(m0 + 1u, last), min(m0 + 2u, last), min(m0 + 3u, last));
    var o: array<vec2<i32>, 4>;
    var nn: array<u32, 4>;
    for (var j: u32 = 0u; j < PX; j = j + 1u) {
        let p = min(p0 + j, u.npix - 1u);
        nn[j] = p / ohw;
        o[j] = window_origin(p % ohw);
    }
    var acc: array<vec4<f32>, 4>;
    let lanes = select(4u, 1u, u.fast == 1u);
    for (var l: u32 = 0u; l < lanes; l = l + 1u) {
        let c0 = (ms[l] / u.mg) * u.cg;
        for (var ci: u32 = 0u; ci < u.cg; ci = ci + 1u) {
            for (var ky: u32 = 0u; ky < u.win.kh; ky = ky + 1u) {
                for (var kx: u32 = 0u; kx < u.win.kw; kx = kx + 1u) {
                    let t = ci * taps + ky * u.win.kw + kx;
                    if (u.fast == 1u) {
                        let wv = vec4<f32>(w[ms.x * u.cg * taps + t], w[ms.y * u.cg * taps + t], w[ms.z * u.cg * taps + t], w[ms.w * u.cg * taps + t]);
                        for (var j: u32 = 0u; j < PX; j = j + 1u) {
                            let tap = window_tap(o[j], ky, kx);
                            if (window_inside(tap)) {
                                acc[j] = acc[j] + x[(nn[j] * u.c + c0 + ci) * hw + window_offset(tap)] * wv;
                            }
                        }
                    } else {
                        let wl = w[ms[l] * u.cg * taps + t];
                        for (var j: u32 = 0u; j < PX; j = j + 1u) {
                            let tap = window_tap(o[j], ky, kx);
                            if (window_inside(tap)) {
                                acc[j][l] = acc[j][l] + x[(nn[j] * u.c + c0 + ci) * hw + window_offset(tap)] * wl;
                            }
                        }
                    }
                }
            }
        }
    }
    for (var j: u32 = 0u; j < PX; j = j + 1u) {
        let p = p0 + j;
        if (p >= u.npix) {
            break;
        }
        let r = p % ohw;
        for (var l: u32 = 0u; l < 4u; l = l + 1u) {
            let m = m0 + l;
            if (m < u.m) {
                out[(nn[j] * u.m + m) * ohw + r] = finish(acc[j][l], m);
            }
        }
    }
}
