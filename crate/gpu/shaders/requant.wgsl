// The epilogue every int8 kernel shares (prepended to qconv.wgsl and dwconv.wgsl): the CPU
// reference's rules, in the same order (crate/core/src/ops/quant/qgemm.rs `requant_i32`,
// `Out::F32`, and the fused per-channel max).

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

// The output mode and its bounds, shared by the kernels' uniforms.
struct Epi {
    float_out: u32, // 0: 8-bit codes, packed 4 per word; 1: float32 NCHW
    has_cmax: u32,
    zp: i32,        // output zero-point
    lo: i32,        // code clamp (the fused activation, or the type's range)
    hi: i32,
    flo: f32,       // float clamp (±f32 max when unbounded)
    fhi: f32,
    _pad: u32,
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
