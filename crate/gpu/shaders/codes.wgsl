// 8-bit codes: the CPU's float-to-code rule, and the NHWC4 layout of 8-bit tensors (channels
// packed four to a u32 word, channel c of a pixel in byte c % 4 of its word c / 4; see
// src/exec/layout.rs) next to the NCHW layout of float32 tensors.

const ROUND_LIM: f32 = 4194304.0; // 2^22: the CPU clamps here before rounding

// clamp(round_half_even(x) + zp, lo, hi), x first clamped to ±2^22: the CPU's rule
// (crate/core/src/quant/params.rs `quantize`, ops/quant/qgemm.rs `requant_i32`). WGSL round()
// rounds half to even.
fn to_code(x: f32, zp: i32, lo: i32, hi: i32) -> i32 {
    return clamp(i32(round(clamp(x, -ROUND_LIM, ROUND_LIM))) + zp, lo, hi);
}

// How many of word w's four lanes hold one of c channels.
fn lanes(w: u32, c: u32) -> u32 {
    return min(4u, c - 4u * w);
}

// `word` with code q (its low byte) in lane j.
fn pack_lane(word: u32, j: u32, q: i32) -> u32 {
    return word | ((bitcast<u32>(q) & 0xffu) << (8u * j));
}

// The float32 NCHW index of channel ch of pixel p (p over batch · plane pixels, c channels).
fn nchw(p: u32, ch: u32, c: u32, plane: u32) -> u32 {
    return ((p / plane) * c + ch) * plane + p % plane;
}
