// TFLite's CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED on int8 or uint8 codes (the core's
// `qplay.tfl.*` ops, `TflConv`), as LiteRT's reference kernels compute them, bit for bit: per
// output, the int32 sum of (w − w_zp)·(x − x_zp) over the taps inside the image, plus the int32
// bias, times the channel's fixed-point multiplier (`MultiplyByQuantizedMultiplier`, double
// rounding), plus the output zero point, clamped to the fused activation, then to the codes.
// 16x8 models' convolutions (int16 codes, `u.signed == 2`, int8 weights, zero points 0) with
// an int64 bias (`u.wide`) sum in 64 bits — int32 runs of at most 256 products (each within
// ±2^22) added up as (hi, lo) pairs, the exact sum as the CPU's — and requantize by `mbqm64`;
// with an int32 bias, in int32 as the 8-bit ones.
//
// Tensors are Flat8 or Flat16 (row-major codes, four or two to a word; src/exec/layout.rs):
// input NHWC, weights as stored (OHWI; depthwise 1HWO; fully-connected OI, as `[O, 1, 1, K]`
// over rows of K), output NHWC. One invocation per four consecutive output codes. When
// channels are a multiple of 4 (`u.quad`, 8-bit codes only), those four are channels oc…oc+3
// of one pixel and each tap's channels are whole words; else each code is summed on its own.
// Integer arithmetic only (the fixed-point multiplies of `tflfixed.wgsl`), so the result is the
// CPU's exactly.

// Binding 0 is the uniform `u`, generated from `TflconvUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
// int32, or int64 as (lo, hi) pairs when `u.wide == 1`.
@group(0) @binding(3) var<storage, read> bias: array<i32>;
// Per output channel (or one): (multiplier ≥ 0, shift).
@group(0) @binding(4) var<storage, read> rq: array<vec2<i32>>;
@group(0) @binding(5) var<storage, read_write> y: array<u32>;

fn xcode(e: u32) -> i32 {
    return code_at(x[code_word(e)], e);
}

// A weight: uint8 with uint8 codes, else int8.
fn wcode(e: u32) -> i32 {
    let k = 8u * (e % 4u);
    if (u.signed == 0u) {
        return i32(extractBits(w[e / 4u], k, 8u));
    }
    return extractBits(bitcast<i32>(w[e / 4u]), k, 8u);
}

// The code of sum `acc` of output channel `oc`.
fn out_code(acc: i32, oc: u32) -> i32 {
    let r = rq[select(0u, oc, u.per_channel == 1u)];
    let v = mbqm(acc + bias[oc], r.x, r.y) + u.y_zp;
    return clamp(clamp(v, u.act_lo, u.act_hi), u.code_lo, u.code_hi);
}

// The code of the 64-bit sum `acc` of output channel `oc` (16x8, an int64 bias).
fn out_code_wide(acc: vec2<u32>, oc: u32) -> i32 {
    let r = rq[select(0u, oc, u.per_channel == 1u)];
    let b = vec2<u32>(bitcast<u32>(bias[2u * oc + 1u]), bitcast<u32>(bias[2u * oc]));
    let v = mbqm64(add64w(acc, b), r.x, r.y) + u.y_zp;
    return clamp(clamp(v, u.act_lo, u.act_hi), u.code_lo, u.code_hi);
}

// The input offset (in codes) of tap t of an image, or -1 outside it.
fn tap_offset(nb: u32, t: vec2<i32>) -> i32 {
    if (!window_inside(t)) {
        return -1;
    }
    return i32((nb * u.win.ih * u.win.iw + window_offset(t)) * u.c);
}

// One output code's sum, code by code, exact in 64 bits: int32 runs of at most 256 products
// (8-bit: each within ±2^16; 16x8: ±2^22, zero points 0), each added up as a (hi, lo) pair. An
// 8-bit kernel's wrapping int32 sum is its low word.
fn sum1(pix: u32, oc: u32) -> vec2<u32> {
    let plane = u.win.oh * u.win.ow;
    let nb = pix / plane;
    let o = window_origin(pix % plane);
    let taps = u.win.kh * u.win.kw;
    var total = vec2<u32>(0u, 0u);
    for (var ky = 0u; ky < u.win.kh; ky = ky + 1u) {
        for (var kx = 0u; kx < u.win.kw; kx = kx + 1u) {
            let px = tap_offset(nb, window_tap(o, ky, kx));
            if (px < 0) {
                continue;
            }
            let tap = ky * u.win.kw + kx;
            if (u.depthwise == 1u) {
                let p = (wcode(tap * u.o + oc) - u.w_zp) * (xcode(u32(px) + oc / u.mult) - u.x_zp);
                total = add64w(total, wide(p));
            } else {
                let row = (oc * taps + tap) * u.c;
                var part = 0;
                for (var ic = 0u; ic < u.c; ic = ic + 1u) {
                    part = part + (wcode(row + ic) - u.w_zp) * (xcode(u32(px) + ic) - u.x_zp);
                    if ((ic & 255u) == 255u) {
                        total = add64w(total, wide(part));
                        part = 0;
                    }
                }
                total = add64w(total, wide(part));
            }
        }
    }
    return total;
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
    var c = vec4<i32>(0);
    if (u.quad == 1u) {
        let oc = e0 % u.o;
        let acc = sum4(e0 / u.o, oc);
        for (var j = 0u; j < 4u; j = j + 1u) {
            c[j] = out_code(acc[j], oc + j);
        }
    } else {
        for (var j = 0u; j < 4u; j = j + 1u) {
            let e = e0 + j;
            if (e < u.len) {
                let oc = e % u.o;
                let acc = sum1(e / u.o, oc);
                if (u.wide == 1u) {
                    c[j] = out_code_wide(acc, oc);
                } else {
                    c[j] = out_code(bitcast<i32>(acc.y), oc);
                }
            }
        }
    }
    store_codes(t, c);
}
