// TFLite's CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED on int8 or uint8 codes (the core's
// `qplay.tfl.*` ops, `TflConv`), as LiteRT's reference kernels compute them, bit for bit: per
// output, the int32 sum of (w − w_zp)·(x − x_zp) over the taps inside the image, plus the int32
// bias, times the channel's fixed-point multiplier (`MultiplyByQuantizedMultiplier`, double
// rounding), plus the output zero point, clamped to the fused activation, then to the codes.
//
// Tensors are Flat8 (row-major bytes, four to a word; src/exec/layout.rs): input NHWC, weights
// as stored (OHWI; depthwise 1HWO; fully-connected OI, as `[O, 1, 1, K]` over rows of K),
// output NHWC. One invocation per output word: four consecutive output codes. When channels
// are a multiple of 4 (`u.quad`), those four are channels oc…oc+3 of one pixel and each tap's
// channels are whole words; else each code is summed on its own, byte by byte.
// Integer arithmetic only (the fixed-point multiply of `tflfixed.wgsl`), so the result is the
// CPU's exactly.

// Binding 0 is the uniform `u`, generated from `TflconvUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<i32>;
// Per output channel (or one): (multiplier ≥ 0, shift).
@group(0) @binding(4) var<storage, read> rq: array<vec2<i32>>;
@group(0) @binding(5) var<storage, read_write> y: array<u32>;

fn xcode(e: u32) -> i32 {
    return code_at(x[e / 4u], e);
}

fn wcode(e: u32) -> i32 {
    return code_at(w[e / 4u], e);
}

// The code of sum `acc` of output channel `oc`.
fn out_code(acc: i32, oc: u32) -> i32 {
    let r = rq[select(0u, oc, u.per_channel == 1u)];
    let v = mbqm(acc + bias[oc], r.x, r.y) + u.y_zp;
    return clamp(clamp(v, u.act_lo, u.act_hi), u.code_lo, u.code_hi);
}

// The input offset (in codes) of tap t of an image, or -1 outside it.
fn tap_offset(nb: u32, t: vec2<i32>) -> i32 {
    if (!window_inside(t)) {
        return -1;
    }
    return i32((nb * u.win.ih * u.win.iw + window_offset(t)) * u.c);
}

// One output code's sum, byte by byte.
fn sum1(pix: u32, oc: u32) -> i32 {
    let plane = u.win.oh * u.win.ow;
    let nb = pix / plane;
    let o = window_origin(pix % plane);
    let taps = u.win.kh * u.win.kw;
    var acc = 0;
    for (var ky = 0u; ky < u.win.kh; ky = ky + 1u) {
        for (var kx = 0u; kx < u.win.kw; kx = kx + 1u) {
            let px = tap_offset(nb, window_tap(o, ky, kx));
            if (px < 0) {
                continue;
            }
            let tap = ky * u.win.kw + kx;
            if (u.depthwise == 1u) {
                acc = acc + (wcode(tap * u.o + oc) - u.w_zp) * (xcode(u32(px) + oc / u.mult) - u.x_zp);
            } else {
                let row = (oc * taps + tap) * u.c;
                for (var ic = 0u; ic < u.c; ic = ic + 1u) {
                    acc = acc + (wcode(row + ic) - u.w_zp) * (xcode(u32(px) + ic) - u.x_zp);
                }
            }
        }
    }
    return acc;
}

// The sums of channels oc…oc+3 of one output pixel, a word at a time (channels % 4 = 0).
fn sum4(pix: u32, oc: u32) -> vec4<i32> {
    let plane = u.win.oh * u.win.ow;
    let nb = pix / plane;
    let o = window_origin(pix % plane);
    let taps = u.win.kh * u.win.kw;
    let c4 = u.c / 4u;
    let xz = vec4<i32>(u.x_zp);
    let wz = vec4<i32>(u.w_zp);
    var acc = vec4<i32>(0);
    for (var ky = 0u; ky < u.win.kh; ky = ky + 1u) {
        for (var kx = 0u; kx < u.win.kw; kx = kx + 1u) {
            let px = tap_offset(nb, window_tap(o, ky, kx));
            if (px < 0) {
                continue;
            }
            let tap = ky * u.win.kw + kx;
            let xw = u32(px) / 4u;
            if (u.depthwise == 1u) {
                acc = acc + (codes4(w[(tap * u.o + oc) / 4u]) - wz) * (codes4(x[xw + oc / 4u]) - xz);
            } else {
                for (var k = 0u; k < c4; k = k + 1u) {
                    let xv = codes4(x[xw + k]) - xz;
                    for (var j = 0u; j < 4u; j = j + 1u) {
                        acc[j] = acc[j] + dot(codes4(w[((oc + j) * taps + tap) * c4 + k]) - wz, xv);
                    }
                }
            }
        }
    }
    return acc;
}

fn run_element(t: u32) {
    let e0 = 4u * t;
    var word = 0u;
    if (u.quad == 1u) {
        let oc = e0 % u.o;
        let acc = sum4(e0 / u.o, oc);
        for (var j = 0u; j < 4u; j = j + 1u) {
            word = put_code(word, j, out_code(acc[j], oc + j));
        }
    } else {
        for (var j = 0u; j < 4u; j = j + 1u) {
            let e = e0 + j;
            if (e < u.len) {
                let oc = e % u.o;
                word = put_code(word, j, out_code(sum1(e / u.o, oc), oc));
            }
        }
    }
    y[t] = word;
}
