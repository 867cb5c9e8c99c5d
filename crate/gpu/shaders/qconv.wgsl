// QLinearConv as an implicit GEMM: im2col addressing in the shader, any kernel size, stride,
// padding, dilation and groups, on packed 4×int8 words with dot4 and exact i32 sums, then the
// per-channel requantization, the fused clamp and channel max (requant.wgsl), to 8-bit codes or
// float32. Shapes travel in the uniform; nothing is baked into the shader text.
//
// Layout (see src/exec/layout.rs): 8-bit activations are NHWC4 — word ((n·H + y)·W + x)·C4 + c/4
// holds channels 4·(c/4) .. +3, byte c%4 — float32 tensors are NCHW. Weights are packed on the
// host as w' = w − (128 for uint8 weights, else 0) in rows [m][ky][kx][cg4] of words (channel
// lanes past the group's cg are 0). Activations are read as x' = x − (128 for uint8, else 0)
// (x XOR 0x80 per byte); a padded tap reads x' = zx − shift, so (x' + a) = 0 there and
//   Σ(x − zx)(w − zw) = Σx'w' + zb·Σx' + add,   a = shift − zx, zb = wshift − zw,
// with add = bias + a·Σw' + K·a·zb computed on the host per channel.
//
// One invocation per 4 output pixels (PX) and 4 output channels (one packed word each).
// Fast path (`fast`): all four channels in one group whose input channels start on a word
// boundary (groups = 1, or cg and mg multiples of 4) — each input word feeds four dot4s.
// Otherwise each channel gathers its group's bytes into words (any groups).

// Binding 0 is the uniform `u`, generated from `QconvUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
// Bindings 3 and 4 (`chan`, `out`) are requant.wgsl's.

// Output pixels per invocation: each weight word loaded feeds this many pixels.
const PX: u32 = 4u;

// The epilogue of one pixel's output word (four channels): requantize and pack, or write floats.
fn store(p: u32, m4: u32, acc: vec4<i32>, xs: vec4<i32>) {
    requant_store(p, m4, acc, xs, u.m, u.m4, u.win.oh * u.win.ow);
}

// Σx'w' and Σx' of pixel p for output channel mj, gathering its group's input bytes into
// words (any groups).
fn gather(p: u32, mj: u32) -> vec2<i32> {
    let ohw = u.win.oh * u.win.ow;
    let base = (p / ohw) * u.win.ih * u.win.iw;
    let o = window_origin(p % ohw);
    let c0 = (mj / u.mg) * u.cg;
    let row = mj * u.win.kh * u.win.kw * u.cg4;
    var a: i32 = 0;
    var s: i32 = 0;
    for (var ky: u32 = 0u; ky < u.win.kh; ky = ky + 1u) {
        for (var kx: u32 = 0u; kx < u.win.kw; kx = kx + 1u) {
            let tap = window_tap(o, ky, kx);
            let inside = window_inside(tap);
            let t = (ky * u.win.kw + kx) * u.cg4;
            let pix = (base + window_offset(tap)) * u.c4_in;
            for (var cw: u32 = 0u; cw < u.cg4; cw = cw + 1u) {
                var xw = 0u;
                for (var l: u32 = 0u; l < 4u; l = l + 1u) {
                    let c = cw * 4u + l;
                    if (c < u.cg) {
                        var b = u.pad_word & 0xffu;
                        if (inside) {
                            let ch = c0 + c;
                            b = ((x[pix + ch / 4u] ^ u.x_xor) >> (8u * (ch % 4u))) & 0xffu;
                        }
                        xw = xw | (b << (8u * l));
                    }
                }
                a = a + dot4(xw, w[row + t + cw]);
                if (u.need_xsum == 1u) {
                    s = s + dot4(xw, 0x01010101u);
                }
            }
        }
    }
    return vec2<i32>(a, s);
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p0 = gid.x * PX;
    let m4 = gid.y;
    if (p0 >= u.npix || m4 >= u.m4) {
        return;
    }
    if (u.fast == 0u) {
        for (var j: u32 = 0u; j < PX; j = j + 1u) {
            let p = p0 + j;
            if (p >= u.npix) {
                break;
            }
            var acc = vec4<i32>(0);
            var xs = vec4<i32>(0);
            for (var l: u32 = 0u; l < 4u; l = l + 1u) {
                let mj = m4 * 4u + l;
                if (mj < u.m) {
                    let g = gather(p, mj);
                    acc[l] = g.x;
                    xs[l] = g.y;
                }
            }
            store(p, m4, acc, xs);
        }
        return;
    }
    // Fast path: the four channels share a group whose channels start on a word boundary.
    let ohw = u.win.oh * u.win.ow;
    let m0 = m4 * 4u;
    let last = u.m - 1u;
    let cw0 = (m0 / u.mg) * u.cg / 4u;
    let taps = u.win.kh * u.win.kw;
    let row = vec4<u32>(min(m0, last), min(m0 + 1u, last), min(m0 + 2u, last), min(m0 + 3u, last)) * (taps * u.cg4);
    var o: array<vec2<i32>, 4>;
    var base: array<u32, 4>;
    for (var j: u32 = 0u; j < PX; j = j + 1u) {
        let p = min(p0 + j, u.npix - 1u);
        o[j] = window_origin(p % ohw);
        base[j] = (p / ohw) * u.win.ih * u.win.iw;
    }
    var acc: array<vec4<i32>, 4>;
    var xs: array<i32, 4>;
    for (var ky: u32 = 0u; ky < u.win.kh; ky = ky + 1u) {
        for (var kx: u32 = 0u; kx < u.win.kw; kx = kx + 1u) {
            let t = (ky * u.win.kw + kx) * u.cg4;
            var xrow: array<u32, 4>;
            var inside: array<bool, 4>;
            for (var j: u32 = 0u; j < PX; j = j + 1u) {
                let tap = window_tap(o[j], ky, kx);
                inside[j] = window_inside(tap);
                xrow[j] = (base[j] + window_offset(tap)) * u.c4_in + cw0;
            }
            for (var cw: u32 = 0u; cw < u.cg4; cw = cw + 1u) {
                let w0 = w[row.x + t + cw];
                let w1 = w[row.y + t + cw];
                let w2 = w[row.z + t + cw];
                let w3 = w[row.w + t + cw];
                let ones = select(0x01010101u, u.last_mask, cw + 1u == u.cg4);
                for (var j: u32 = 0u; j < PX; j = j + 1u) {
                    var xw = u.pad_word;
                    if (inside[j]) {
                        xw = x[xrow[j] + cw] ^ u.x_xor;
                    }
                    acc[j] = acc[j] + vec4<i32>(dot4(xw, w0), dot4(xw, w1), dot4(xw, w2), dot4(xw, w3));
                    if (u.need_xsum == 1u) {
                        xs[j] = xs[j] + dot4(xw, ones);
                    }
                }
            }
        }
    }
    for (var j: u32 = 0u; j < PX; j = j + 1u) {
        if (p0 + j < u.npix) {
            store(p0 + j, m4, acc[j], vec4<i32>(xs[j]));
        }
    }
}
