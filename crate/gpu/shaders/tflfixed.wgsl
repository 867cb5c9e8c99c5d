// TFLite's integer arithmetic on Flat8 codes, shared by its kernels (`tflconv.wgsl`,
// `tflbinary.wgsl`, `tflpool.wgsl`): a code from its byte (the kernel's uniform says whether
// codes are int8, `u.signed`), and `MultiplyByQuantizedMultiplier` with LiteRT's double rounding,
// equal to the CPU's `Requant::apply` / `mbqm` for every input. WGSL has no 64-bit integers:
// the 32 × 32 → 64-bit product of the rounding high multiply is made from 16-bit halves.

// The code in byte `e % 4` of `word` (int8 sign-extended, uint8 as is).
fn code_at(word: u32, e: u32) -> i32 {
    let k = 8u * (e % 4u);
    if (u.signed == 1u) {
        return extractBits(bitcast<i32>(word), k, 8u);
    }
    return i32(extractBits(word, k, 8u));
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

// `word` with code q (its low byte) in lane j.
fn put_code(word: u32, j: u32, q: i32) -> u32 {
    return word | ((bitcast<u32>(q) & 0xffu) << (8u * j));
}
