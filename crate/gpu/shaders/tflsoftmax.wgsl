// TFLite's SOFTMAX on int8 or uint8 codes along the last axis (the core's `TflSoftmax`), as
// LiteRT's reference kernel computes it, bit for bit: the row's largest code; the sum of the
// fixed-point exps of each code's difference from it (a table the CPU op made,
// `TflSoftmax::exp_table`: a row's differences are 0…255), each divided by 2^12 with rounding;
// its reciprocal by gemmlowp's Newton–Raphson (`GetReciprocal`); each exp times it, rounded
// down to 8 bits, plus the lowest code. Flat8 tensors; one invocation per output word, each
// code recomputing its row's maximum and sum (the builder takes rows shorter than 4096, so
// the sum stays below 2^31).

// Binding 0 is the uniform `u`, generated from `TflsoftmaxUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<i32, 256>;
@group(0) @binding(3) var<storage, read_write> y: array<u32>;

fn xcode(e: u32) -> i32 {
    return code_at(x[code_word(e)], e);
}

// gemmlowp's `SaturatingRoundingMultiplyByPOT<e>` for e > 0.
fn sat_mul_pot(v: i32, e: u32) -> i32 {
    let threshold = (1 << (31u - e)) - 1;
    if (v > threshold) {
        return 2147483647;
    }
    if (v < -threshold) {
        return bitcast<i32>(0x80000000u);
    }
    return v << e;
}

// gemmlowp's `one_over_one_plus_x_for_x_in_0_1` (Q0.31, a ≥ 0 here).
fn one_over_one_plus_x(a: i32) -> i32 {
    // RoundingHalfSum(a, i32::MAX) for a ≥ 0: (a + 2^31) / 2.
    let half_denominator = bitcast<i32>((bitcast<u32>(a) + 0x80000000u) / 2u);
    var v = 1515870810 + srdhm(half_denominator, -1010580540);
    for (var k = 0; k < 3; k = k + 1) {
        let one_minus = (1 << 29u) - srdhm(half_denominator, v);
        v = v + sat_mul_pot(srdhm(v, one_minus), 2u);
    }
    return sat_mul_pot(v, 1u);
}

fn code(e: u32) -> i32 {
    let start = (e / u.depth) * u.depth;
    var top = u.code_lo;
    for (var k = 0u; k < u.depth; k = k + 1u) {
        top = max(top, xcode(start + k));
    }
    var sum = 0;
    for (var k = 0u; k < u.depth; k = k + 1u) {
        sum = sum + rdbpot(table[top - xcode(start + k)], 12u);
    }
    // GetReciprocal(sum, 12): sum ≥ 2^19 (the largest code's exp is 1), so 0 < headroom ≤ 12.
    let headroom = countLeadingZeros(bitcast<u32>(sum));
    let bits_over_unit = 12 - i32(headroom);
    let shifted_scale = one_over_one_plus_x(bitcast<i32>((bitcast<u32>(sum) << headroom) - 0x80000000u));
    let exponent = u32(bits_over_unit + 31 - 8);
    let unsat = rdbpot(srdhm(shifted_scale, table[top - xcode(e)]), exponent);
    return clamp(unsat + u.code_lo, u.code_lo, u.code_hi);
}
