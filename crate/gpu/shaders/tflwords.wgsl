// The entry of TFLite's element-wise kernels on Flat8 and Flat16 codes (after elements.wgsl,
// whose `run_element(t)` runs once per four output codes: one word, two for int16): each code
// from the kernel's `code(e)` for output element e < `u.len` (the spare lanes of the last
// word 0), written by `store_codes` (tflfixed.wgsl).

fn run_element(t: u32) {
    var c = vec4<i32>(0);
    for (var j = 0u; j < 4u; j = j + 1u) {
        let e = 4u * t + j;
        if (e < u.len) {
            c[j] = code(e);
        }
    }
    store_codes(t, c);
}
