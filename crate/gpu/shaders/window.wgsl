// Convolution and pooling window geometry, from the uniform's `win` block (`Window` in
// src/uniforms.rs; 2-D, 1-D as a height of 1): where an output pixel's window starts, where
// its taps fall, whether a tap lies inside the input (else it reads padding), and its offset
// in the input plane. Positions are (row, column), signed: padding lies below 0.

// The first tap of output pixel r (r < oh · ow, within one image).
fn window_origin(r: u32) -> vec2<i32> {
    return vec2<i32>(i32((r / u.win.ow) * u.win.sh) - i32(u.win.ph), i32((r % u.win.ow) * u.win.sw) - i32(u.win.pw));
}

// Tap (ky, kx) of the window that starts at o.
fn window_tap(o: vec2<i32>, ky: u32, kx: u32) -> vec2<i32> {
    return o + vec2<i32>(i32(ky * u.win.dh), i32(kx * u.win.dw));
}

// Whether tap t lies inside the input image.
fn window_inside(t: vec2<i32>) -> bool {
    return t.x >= 0 && t.x < i32(u.win.ih) && t.y >= 0 && t.y < i32(u.win.iw);
}

// The index of tap t in its input plane (row-major, ih × iw).
fn window_offset(t: vec2<i32>) -> u32 {
    return u32(t.x) * u.win.iw + u32(t.y);
}
