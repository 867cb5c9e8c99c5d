// Σ of the four int8 products of two packed words: one DP4A where the GPU has it.
fn dot4(x: u32, y: u32) -> i32 {
    return dot4I8Packed(x, y);
}
