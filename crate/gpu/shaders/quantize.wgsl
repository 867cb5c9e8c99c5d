// QuantizeLinear, per tensor: float32 NCHW in, 8-bit codes NHWC4 out (one packed word, four
// channels, per invocation): q = clamp(round_half_even(x / scale) + zp, qmin, qmax), the CPU
// rule (crate/core/src/quant/params.rs `quantize`, codes.wgsl `to_code`): x / scale divided
// (never a multiplied reciprocal), clamped to ±2^22 before rounding, NaN → 0.
//
// WGSL lets f32 division be off by 2.5 ULP (GPUs divide approximately), which only matters
// where x / scale lies within a few ULP of a half-integer: there the rounded code depends on
// the last bit of the correctly rounded quotient. Those rare elements are divided again
// exactly, in integers (div_rne), so every adapter gives the CPU's codes.

// x / s correctly rounded (IEEE round to nearest, ties to even) by long division of the
// 24-bit significands; x and s normal, the quotient normal.
fn div_rne(x: f32, s: f32) -> f32 {
    let bx = bitcast<u32>(x);
    let bs = bitcast<u32>(s);
    let mx = (bx & 0x7fffffu) | 0x800000u;
    let ms = (bs & 0x7fffffu) | 0x800000u;
    var e = i32((bx >> 23u) & 0xffu) - i32((bs >> 23u) & 0xffu);
    var r = mx;
    if (r < ms) {
        r = r << 1u;
        e = e - 1;
    }
    // 26 quotient bits (1 ≤ r/ms < 2): 24 significand bits, 2 more, then the remainder.
    var q = 0u;
    for (var i: u32 = 0u; i < 26u; i = i + 1u) {
        q = q << 1u;
        if (r >= ms) {
            r = r - ms;
            q = q | 1u;
        }
        r = r << 1u;
    }
    var m = q >> 2u;
    let g = q & 3u;
    if (g > 2u || (g == 2u && (r != 0u || (m & 1u) == 1u))) {
        m = m + 1u;
    }
    let v = ldexp(f32(m), e - 23);
    return select(v, -v, ((bx ^ bs) >> 31u) == 1u);
}

// Binding 0 is the uniform `u`, generated from `QuantizeUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

fn run_word(p: u32, c4: u32) {
    var word = 0u;
    for (var j: u32 = 0u; j < lanes(c4, u.c); j = j + 1u) {
        let xv = x[nchw(p, c4 * 4u + j, u.c, u.s)];
        var v = xv / u.scale;
        let h = floor(v) + 0.5;
        if (abs(v - h) <= abs(v) * 1e-6 && ((bitcast<u32>(xv) >> 23u) & 0xffu) != 0u) {
            v = div_rne(xv, u.scale);
        }
        if (!(v == v)) {
            v = 0.0;
        }
        word = pack_lane(word, j, to_code(v, u.zp, u.qmin, u.qmax));
    }
    out[p * u.c4 + c4] = word;
}
