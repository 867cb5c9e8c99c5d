// TFLite's ADD, SUB, MUL, MAXIMUM and MINIMUM on int8 or uint8 codes (the core's `TflBinary`)
// with numpy broadcasting, and its 8-bit → 8-bit QUANTIZE (`TflQuantize`'s requantization,
// op 4: A only, whose type may differ from the output's), as LiteRT's reference kernels compute them, bit for bit: ADD and SUB
// bring (a − zA)·2^20 and (b − zB)·2^20 to a common scale by their multipliers, add or
// subtract, and rescale the result; MUL rescales (a − zA)(b − zB); then the output zero point
// and the fused activation's range. MAXIMUM / MINIMUM compare the codes. Tensors are Flat8;
// one invocation per output word (four codes), each code from its own broadcast offsets.

// Binding 0 is the uniform `u`, generated from `TflbinaryUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<u32>;

fn code(e: u32) -> i32 {
    let k = unravel(e);
    let ia = strided(k, u.sa);
    let ib = strided(k, u.sb);
    let x = code_at(a[code_word(ia)], ia);
    let z = code_at(b[code_word(ib)], ib);
    if (u.op == 2u) {
        return max(x, z);
    }
    if (u.op == 3u) {
        return min(x, z);
    }
    let da = x - u.za;
    let db = z - u.zb;
    var raw: i32;
    if (u.op == 4u) {
        raw = mbqm(da, u.mo.x, u.mo.y);
    } else if (u.op == 0u) {
        let sa = mbqm(da << u.left_shift, u.ma.x, u.ma.y);
        let sb = mbqm(db << u.left_shift, u.mb.x, u.mb.y);
        raw = mbqm(select(sa - sb, sa + sb, u.sign > 0), u.mo.x, u.mo.y);
    } else {
        raw = mbqm(da * db, u.mo.x, u.mo.y);
    }
    return clamp(clamp(raw + u.zc, u.act_lo, u.act_hi), u.code_lo, u.code_hi);
}
