// Σ of the four int8 products of two packed words, for adapters without the WGSL language
// feature packed_4x8_integer_dot_product: sign-extending bit extraction and four multiplies.
// Exact integer arithmetic, so the result equals dot4I8Packed's.
fn dot4(x: u32, y: u32) -> i32 {
    let xi = bitcast<i32>(x);
    let yi = bitcast<i32>(y);
    var s: i32 = 0;
    for (var i: u32 = 0u; i < 4u; i = i + 1u) {
        s = s + extractBits(xi, 8u * i, 8u) * extractBits(yi, 8u * i, 8u);
    }
    return s;
}

// The four int8 lanes of a packed word, sign-extended (byte 0 in .x); equals unpack4xI8.
fn unpack4(x: u32) -> vec4<i32> {
    let xi = bitcast<i32>(x);
    return vec4<i32>(extractBits(xi, 0u, 8u), extractBits(xi, 8u, 8u), extractBits(xi, 16u, 8u), extractBits(xi, 24u, 8u));
}
