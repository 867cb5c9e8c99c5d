// TFLite's RESIZE_NEAREST_NEIGHBOR, and RESIZE_BILINEAR on int8 codes (the core's `TflResize`),
// as LiteRT's reference kernels compute them, bit for bit: each output row and column reads
// its source taps from tables the CPU op made (`TflResize::axis_taps`: lower, upper, and the
// fraction in 1/1024); bilinear weighs the four taps in 20 bits and rounds the sum half away
// from zero (`ResizeBilinearInteger`; the sum fits in i32: |code| ≤ 128 and every weight
// within 1536). NHWC Flat8 tensors; one invocation per output word (four codes).

// Binding 0 is the uniform `u`, generated from `TflresizeUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
// Per output row, then per output column: (lower, upper, fraction, 0).
@group(0) @binding(2) var<storage, read> taps: array<vec4<i32>>;
@group(0) @binding(3) var<storage, read_write> y: array<u32>;

fn at(nb: u32, iy: i32, ix: i32, ch: u32) -> i32 {
    let i = ((nb * u.ih + u32(iy)) * u.iw + u32(ix)) * u.c + ch;
    return code_at(x[i / 4u], i);
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
    let sum = at(nb, ty.x, tx.x, ch) * (one - ty.z) * (one - tx.z)
        + at(nb, ty.y, tx.x, ch) * ty.z * (one - tx.z)
        + at(nb, ty.x, tx.y, ch) * (one - ty.z) * tx.z
        + at(nb, ty.y, tx.y, ch) * ty.z * tx.z;
    let round = select(-(1 << 19u), 1 << 19u, sum > 0);
    return (sum + round) / (1 << 20u);
}
