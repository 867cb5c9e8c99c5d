// TFLite's RESIZE_NEAREST_NEIGHBOR, and RESIZE_BILINEAR on int8 and int16 codes (the core's
// `TflResize`), as LiteRT's reference kernels compute them, bit for bit: each output row and
// column reads its source taps from tables the CPU op made (`TflResize::axis_taps`: lower,
// upper, and the fraction in 1/1024); bilinear weighs the four taps in 20 bits and rounds the
// sum half away from zero (`ResizeBilinearInteger`; on int8 the sum fits in i32: |code| ≤ 128
// and every weight within 1536; on int16 it takes 64 bits). NHWC Flat8 / Flat16 tensors; one
// invocation per four output codes.

// Binding 0 is the uniform `u`, generated from `TflresizeUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
// Per output row, then per output column: (lower, upper, fraction, 0).
@group(0) @binding(2) var<storage, read> taps: array<vec4<i32>>;
@group(0) @binding(3) var<storage, read_write> y: array<u32>;

fn at(nb: u32, iy: i32, ix: i32, ch: u32) -> i32 {
    let i = ((nb * u.ih + u32(iy)) * u.iw + u32(ix)) * u.c + ch;
    return code_at(x[code_word(i)], i);
}

fn code(e: u32) -> i32 {
    let ch = e % u.c;
    let pix = e / u.c;
    let ox = pix % u.ow;
    let oy = (pix / u.ow) % u.oh;
    let nb = pix / (u.ow * u.oh);
    let ty = taps[oy];
    let tx = taps[u.oh + ox];
    if (u.bilinear == 0u) {
        return at(nb, ty.x, tx.x, ch);
    }
    let one = 1024;
    if (u.signed == 2u) {
        return bilinear16(nb, ty, tx, ch);
    }
    let sum = at(nb, ty.x, tx.x, ch) * (one - ty.z) * (one - tx.z)
        + at(nb, ty.y, tx.x, ch) * ty.z * (one - tx.z)
        + at(nb, ty.x, tx.y, ch) * (one - ty.z) * tx.z
        + at(nb, ty.y, tx.y, ch) * ty.z * tx.z;
    let round = select(-(1 << 19u), 1 << 19u, sum > 0);
    return (sum + round) / (1 << 20u);
}

// Bilinear on int16 codes: the sum (up to 2^37) as a (hi, lo) pair — each row's two taps in
// i32 (within 2^26), times the row weight in 64 bits — then (sum ± 2^19) / 2^20 truncated
// toward zero, as the CPU's int64 arithmetic.
fn bilinear16(nb: u32, ty: vec4<i32>, tx: vec4<i32>, ch: u32) -> i32 {
    let one = 1024;
    let r0 = at(nb, ty.x, tx.x, ch) * (one - tx.z) + at(nb, ty.x, tx.y, ch) * tx.z;
    let r1 = at(nb, ty.y, tx.x, ch) * (one - tx.z) + at(nb, ty.y, tx.y, ch) * tx.z;
    let sum = add64w(mul64s(r0, one - ty.z), mul64s(r1, ty.z));
    let positive = bitcast<i32>(sum.x) > 0 || (sum.x == 0u && sum.y != 0u);
    let half = vec2<u32>(0u, 1u << 19u);
    let v = add64w(sum, select(neg64(half), half, positive));
    let negative = bitcast<i32>(v.x) < 0;
    let m = select(v, neg64(v), negative);
    let q = bitcast<i32>((m.x << 12u) | (m.y >> 20u));
    return select(q, -q, negative);
}
