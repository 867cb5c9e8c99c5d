// TFLite's AVERAGE_POOL_2D and MAX_POOL_2D on int8 or uint8 codes (the core's `TflPool`), as
// LiteRT's reference kernels compute them, bit for bit: over the taps inside the image only,
// the maximum, or the sum divided by their count rounding half away from zero; then the fused
// activation's range. NHWC Flat8 tensors; one invocation per output word (four codes).

// Binding 0 is the uniform `u`, generated from `TflpoolUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;

fn code(e: u32) -> i32 {
    let ch = e % u.c;
    let pix = e / u.c;
    let ox = pix % u.ow;
    let oy = (pix / u.ow) % u.oh;
    let nb = pix / (u.ow * u.oh);
    let y0 = i32(oy * u.sh) - i32(u.pt);
    let x0 = i32(ox * u.sw) - i32(u.pl);
    let ys = u32(max(y0, 0));
    let ye = u32(clamp(y0 + i32(u.kh), 0, i32(u.ih)));
    let xs = u32(max(x0, 0));
    let xe = u32(clamp(x0 + i32(u.kw), 0, i32(u.iw)));
    var acc = select(u.code_lo, 0, u.average == 1u);
    for (var iy = ys; iy < ye; iy = iy + 1u) {
        for (var ix = xs; ix < xe; ix = ix + 1u) {
            let i = ((nb * u.ih + iy) * u.iw + ix) * u.c + ch;
            let v = code_at(x[code_word(i)], i);
            acc = select(max(acc, v), acc + v, u.average == 1u);
        }
    }
    if (u.average == 1u) {
        // The builder keeps every window overlapping the image: count ≥ 1.
        let count = i32((ye - ys) * (xe - xs));
        acc = select((acc - count / 2) / count, (acc + count / 2) / count, acc > 0);
    }
    return clamp(clamp(acc, u.act_lo, u.act_hi), u.code_lo, u.code_hi);
}
