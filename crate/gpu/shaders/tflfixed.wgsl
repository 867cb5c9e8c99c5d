// TFLite's integer arithmetic on Flat8 and Flat16 codes, shared by its kernels (`tflconv.wgsl`,
// `tflbinary.wgsl`, `tflpool.wgsl`, …): a code from its byte or half-word (the kernel's uniform
// says which codes, `u.signed`: 0 uint8, 1 int8, 2 int16), the codes of one invocation written
// back (`store_codes`, into the kernel's `y`), and `MultiplyByQuantizedMultiplier` with LiteRT's
// double rounding, equal to the CPU's `Requant::apply` / `mbqm` for every input, and its 64-bit
// form for 16x8 convolutions (`mbqm64`, the CPU's `int16::mbqm64`). WGSL has no 64-bit
// integers: 64-bit values are (hi, lo) pairs of u32, and the products are made from 16-bit
// halves.

// The word of code `e`: four codes to a word, two for int16.
fn code_word(e: u32) -> u32 {
    return select(e / 4u, e / 2u, u.signed == 2u);
}

// Code `e` of `word` (its `code_word`): int8 and int16 sign-extended, uint8 as is.
fn code_at(word: u32, e: u32) -> i32 {
    if (u.signed == 2u) {
        return extractBits(bitcast<i32>(word), 16u * (e % 2u), 16u);
    }
    let k = 8u * (e % 4u);
    if (u.signed == 1u) {
        return extractBits(bitcast<i32>(word), k, 8u);
    }
    return i32(extractBits(word, k, 8u));
}

// Output codes 4t … 4t + 3 (already within the codes' range; 0 past the end) into `y`: one word
// of four bytes, or two words of two int16 codes when the output's codes are the input's int16.
fn store_codes(t: u32, c: vec4<i32>) {
    let b = bitcast<vec4<u32>>(c);
    if (u.signed == 2u) {
        y[2u * t] = (b.x & 0xffffu) | (b.y << 16u);
        y[2u * t + 1u] = (b.z & 0xffffu) | (b.w << 16u);
    } else {
        y[t] = (b.x & 0xffu) | ((b.y & 0xffu) << 8u) | ((b.z & 0xffu) << 16u) | (b.w << 24u);
    }
}

// The four codes of a word (byte 0 in .x).
fn codes4(word: u32) -> vec4<i32> {
    if (u.signed == 1u) {
        let s = bitcast<i32>(word);
        return vec4<i32>(extractBits(s, 0u, 8u), extractBits(s, 8u, 8u), extractBits(s, 16u, 8u), extractBits(s, 24u, 8u));
    }
    return vec4<i32>(vec4<u32>(word & 0xffu, (word >> 8u) & 0xffu, (word >> 16u) & 0xffu, word >> 24u));
}

// `lo + v` with the carry into `hi`, on (hi, lo) 64-bit pairs.
fn add64(p: vec2<u32>, v: u32) -> vec2<u32> {
    let lo = p.y + v;
    return vec2<u32>(p.x + select(0u, 1u, lo < v), lo);
}

// gemmlowp's `SaturatingRoundingDoublingHighMul`: round(a·b / 2^31), ties away from zero, on
// the magnitudes' 64-bit product (|a·b| + 2^30, less 1 for a negative product, then >> 31);
// the one overflowing case saturates.
fn srdhm(a: i32, b: i32) -> i32 {
    let min = bitcast<i32>(0x80000000u);
    if (a == min && b == min) {
        return 2147483647;
    }
    let negative = (a < 0) != (b < 0) && a != 0 && b != 0;
    let ua = select(bitcast<u32>(a), 0u - bitcast<u32>(a), a < 0);
    let ub = select(bitcast<u32>(b), 0u - bitcast<u32>(b), b < 0);
    let al = ua & 0xffffu;
    let ah = ua >> 16u;
    let bl = ub & 0xffffu;
    let bh = ub >> 16u;
    let mid1 = al * bh;
    let mid2 = ah * bl;
    var p = vec2<u32>(ah * bh + (mid1 >> 16u) + (mid2 >> 16u), al * bl);
    p = add64(p, mid1 << 16u);
    p = add64(p, mid2 << 16u);
    p = add64(p, 0x40000000u - select(0u, 1u, negative));
    let magnitude = bitcast<i32>((p.x << 1u) | (p.y >> 31u));
    return select(magnitude, -magnitude, negative);
}

// gemmlowp's `RoundingDivideByPOT`: x / 2^e, ties away from zero (e within 0…31).
fn rdbpot(x: i32, e: u32) -> i32 {
    let mask = bitcast<i32>((1u << e) - 1u);
    let threshold = (mask >> 1u) + select(0, 1, x < 0);
    return (x >> e) + select(0, 1, (x & mask) > threshold);
}

// `MultiplyByQuantizedMultiplier(acc, m, shift)` with LiteRT's double rounding, as the CPU's
// `mbqm`: the left shift (wrapping), the rounding high multiply, the rounding right shift.
fn mbqm(acc: i32, m: i32, shift: i32) -> i32 {
    return rdbpot(srdhm(acc << u32(clamp(shift, 0, 31)), m), u32(clamp(-shift, 0, 31)));
}

// The 64-bit pair (hi, lo) of an i32, sign-extended.
fn wide(v: i32) -> vec2<u32> {
    return vec2<u32>(select(0u, 0xffffffffu, v < 0), bitcast<u32>(v));
}

// p + q on (hi, lo) pairs, wrapping.
fn add64w(p: vec2<u32>, q: vec2<u32>) -> vec2<u32> {
    let lo = p.y + q.y;
    return vec2<u32>(p.x + q.x + select(0u, 1u, lo < q.y), lo);
}

// The two's complement of a (hi, lo) pair.
fn neg64(p: vec2<u32>) -> vec2<u32> {
    return add64w(vec2<u32>(~p.x, ~p.y), vec2<u32>(0u, 1u));
}

// a · b as a (hi, lo) pair, for |b| < 2^15 (each half-product below 2^31).
fn mul64s(a: i32, b: i32) -> vec2<u32> {
    let ua = select(bitcast<u32>(a), 0u - bitcast<u32>(a), a < 0);
    let ub = u32(abs(b));
    let lo = (ua & 0xffffu) * ub;
    let hi = (ua >> 16u) * ub;
    let p = add64w(vec2<u32>(hi >> 16u, hi << 16u), vec2<u32>(0u, lo));
    return select(p, neg64(p), (a < 0) != (b < 0));
}

// `MultiplyByQuantizedMultiplier(int64_t x, m, shift)` (the CPU's `int16::mbqm64`): the
// multiplier reduced to 16 bits (`(m + 2^15) >> 16`, at most 0x7FFF), x · m16 plus
// 2^(ts − 1), arithmetic shift right by ts = 15 − shift (within 1…62), the low 32 bits.
// x is a (hi, lo) pair; the product wraps at 64 bits as the C++'s does for these ranges.
fn mbqm64(x: vec2<u32>, m: i32, shift: i32) -> i32 {
    let r = select(0x7fffu, u32((m + 32768) >> 16u), m < 0x7fff0000);
    let ts = u32(clamp(15 - shift, 1, 62));
    // x · r: the low word's halves times r (each below 2^31), the high word times r wrapping.
    let l0 = (x.y & 0xffffu) * r;
    let l1 = (x.y >> 16u) * r;
    var p = vec2<u32>(x.x * r, l0);
    p = add64w(p, vec2<u32>(l1 >> 16u, l1 << 16u));
    // + 2^(ts − 1).
    let half = select(vec2<u32>(0u, 1u << (ts - 1u)), vec2<u32>(1u << (ts - 33u), 0u), ts > 32u);
    p = add64w(p, half);
    // Arithmetic shift right by ts, the low 32 bits.
    if (ts >= 32u) {
        return bitcast<i32>(p.x) >> min(ts - 32u, 31u);
    }
    return bitcast<i32>((p.y >> ts) | (p.x << (32u - ts)));
}
