// Σ of the four int8 products of two packed words: one DP4A where the GPU has it.
fn dot4(x: u32, y: u32) -> i32 {
    return dot4I8Packed(x, y);
}

// The four int8 lanes of a packed word, sign-extended (byte 0 in .x).
fn unpack4(x: u32) -> vec4<i32> {
    return unpack4xI8(x);
}
