// The epilogue every int8 kernel shares (prepended to qconv.wgsl and dwconv.wgsl): the CPU
// reference's rules, in the same order (crate/core/src/ops/quant/qgemm.rs `requant_i32`,
// `Out::F32`, and the fused per-channel max). The output mode and its bounds are the uniform's
// `Epi` block (generated from `Epi` in src/uniforms.rs).

const ROUND_LIM: f32 = 4194304.0; // 2^22: the CPU clamps here before rounding

// Per output channel: the additive term (bias and zero-point corrections), the weight
// zero-point term's factor (multiplies Σx'), the requantization multiplier, and the fused
// channel max (bits of an i32 code or an f32, by mode).
struct Chan {
    add: i32,
    zb: i32,
    scale: f32,
    cmax: u32,
}

// clamp(round_half_even(v · scale) + zp, lo, hi), then min with the channel max. WGSL round()
// rounds half to even; f32(v) is exact for |v| < 2^24.
fn requant_code(v: i32, c: Chan, e: Epi) -> i32 {
    let x = clamp(f32(v) * c.scale, -ROUND_LIM, ROUND_LIM);
    var q = clamp(i32(round(x)) + e.zp, e.lo, e.hi);
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
