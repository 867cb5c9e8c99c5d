// The epilogue every int8 kernel shares (prepended to qconv.wgsl and dwconv.wgsl): the CPU
// reference's rules, in the same order (crate/core/src/ops/quant/qgemm.rs `requant_i32`,
// `Out::F32`, and the fused per-channel max). The output mode and its bounds are the uniform's
// `Epi` block (generated from `Epi` in src/uniforms.rs).

// Per output channel: the additive term (bias and zero-point corrections), the weight
// zero-point term's factor (multiplies Σx'), the requantization multiplier, and the fused
// channel max (bits of an i32 code or an f32, by mode).
struct Chan {
    add: i32,
    zb: i32,
    scale: f32,
    cmax: u32,
}

// Every kernel it serves binds its channels and its output here.
@group(0) @binding(3) var<storage, read> chan: array<Chan>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

// clamp(round_half_even(v · scale) + zp, lo, hi) (codes.wgsl `to_code`), then min with the
// channel max; f32(v) is exact for |v| < 2^24.
fn requant_code(v: i32, c: Chan, e: Epi) -> i32 {
    var q = to_code(f32(v) * c.scale, e.zp, e.lo, e.hi);
    if (e.has_cmax == 1u) {
        q = min(q, bitcast<i32>(c.cmax));
    }
    return q;
}

// v · scale clamped like the CPU's clamp_f32 (y < lo ? lo : y > hi ? hi : y), then the max.
fn requant_float(v: i32, c: Chan, e: Epi) -> f32 {
    var y = f32(v) * c.scale;
    if (y < e.flo) {
        y = e.flo;
    } else if (y > e.fhi) {
        y = e.fhi;
    }
    if (e.has_cmax == 1u) {
        let m = bitcast<f32>(c.cmax);
        if (y > m) {
            y = m;
        }
    }
    return y;
}

// Output word w4 (channels 4·w4 …) of pixel p, of m channels in m4 words per pixel and plane
// pixels per image: channel 4·w4 + j's sum acc[j] + zb·xs[j] + add, requantized and packed
// into the word (NHWC4), or written as float32 (NCHW), as the uniform's `epi` says.
fn requant_store(p: u32, w4: u32, acc: vec4<i32>, xs: vec4<i32>, m: u32, m4: u32, plane: u32) {
    var word = 0u;
    for (var j: u32 = 0u; j < lanes(w4, m); j = j + 1u) {
        let ch = w4 * 4u + j;
        let c = chan[ch];
        let v = acc[j] + c.zb * xs[j] + c.add;
        if (u.epi.float_out == 1u) {
            out[nchw(p, ch, m, plane)] = bitcast<u32>(requant_float(v, c, u.epi));
        } else {
            word = pack_lane(word, j, requant_code(v, c, u.epi));
        }
    }
    if (u.epi.float_out == 0u) {
        out[p * m4 + w4] = word;
    }
}
