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

// `MultiplyByQuantizedMultiplier(acc, m, shift)` with m ≥ 0, as the CPU's `Requant::apply`:
// the rounding doubling high multiply round(|a|·m / 2^31) (ties away from zero) on the
// magnitude, then the rounding right shift (ties away from zero).
fn mbqm(acc: i32, m: i32, shift: i32) -> i32 {
    let left = u32(clamp(shift, 0, 31));
    let right = u32(clamp(-shift, 0, 31));
    let a = acc << left;
    let negative = a < 0;
    let ua = select(bitcast<u32>(a), 0u - bitcast<u32>(a), negative);
    let um = bitcast<u32>(m);
    let al = ua & 0xffffu;
    let ah = ua >> 16u;
    let ml = um & 0xffffu;
    let mh = um >> 16u;
    let mid1 = al * mh;
    let mid2 = ah * ml;
    var p = vec2<u32>(ah * mh + (mid1 >> 16u) + (mid2 >> 16u), al * ml);
    p = add64(p, mid1 << 16u);
    p = add64(p, mid2 << 16u);
    p = add64(p, 0x40000000u - select(0u, 1u, negative));
    let magnitude = bitcast<i32>((p.x << 1u) | (p.y >> 31u));
    let q = select(magnitude, -magnitude, negative);
    let mask = bitcast<i32>((1u << right) - 1u);
    let threshold = (mask >> 1u) + select(0, 1, q < 0);
    return (q >> right) + select(0, 1, (q & mask) > threshold);
}

// `word` with code q (its low byte) in lane j.
fn put_code(word: u32, j: u32, q: i32) -> u32 {
    return word | ((bitcast<u32>(q) & 0xffu) << (8u * j));
}
