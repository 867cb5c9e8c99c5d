// Pre-processing on the GPU: an RGBA frame (one u32 per pixel, R in the low byte) becomes the
// model's float32 input — the resized (stretched or letterboxed) content, the padding around it,
// the model's channel order and normalisation, NCHW or NHWC. One invocation per input pixel.
// The bilinear taps (source indices and weights) come from the CPU's own code (`resize_plan`),
// and the arithmetic is the CPU's expression by expression: (top·wy0 + bottom·wy1)·a + b with
// top = p00·wx0 + p01·wx1. A GPU may fuse a multiply and an add, so values agree with the CPU's
// to rounding.

// Binding 0 is the uniform `u`, generated from `PreprocessUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> rgba: array<u32>;
@group(0) @binding(2) var<storage, read> xs: array<vec4<u32>>; // x0, x1, w0 bits, w1 bits
@group(0) @binding(3) var<storage, read> ys: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn px(i: u32) -> vec3<f32> {
    let w = rgba[i];
    return vec3<f32>(
        f32(extractBits(w, 8u * u.src_ch.x, 8u)),
        f32(extractBits(w, 8u * u.src_ch.y, 8u)),
        f32(extractBits(w, 8u * u.src_ch.z, 8u)),
    );
}

fn run_element(i: u32) {
    let y = i / u.in_w;
    let x = i % u.in_w;
    var v = u.pad.xyz;
    if (x >= u.left && x < u.left + u.cw && y >= u.top && y < u.top + u.ch) {
        let tx = xs[x - u.left];
        let ty = ys[y - u.top];
        let wx0 = bitcast<f32>(tx.z);
        let wx1 = bitcast<f32>(tx.w);
        let wy0 = bitcast<f32>(ty.z);
        let wy1 = bitcast<f32>(ty.w);
        let p00 = px(ty.x * u.src_w + tx.x);
        let p01 = px(ty.x * u.src_w + tx.y);
        let p10 = px(ty.y * u.src_w + tx.x);
        let p11 = px(ty.y * u.src_w + tx.y);
        let top = p00 * wx0 + p01 * wx1;
        let bottom = p10 * wx0 + p11 * wx1;
        v = (top * wy0 + bottom * wy1) * u.a.xyz + u.b.xyz;
    }
    if (u.nhwc == 1u) {
        out[i * 3u] = v.x;
        out[i * 3u + 1u] = v.y;
        out[i * 3u + 2u] = v.z;
    } else {
        out[i] = v.x;
        out[u.n + i] = v.y;
        out[2u * u.n + i] = v.z;
    }
}
