// The entry of TFLite's element-wise kernels on Flat8 codes (after elements.wgsl, whose
// `run_element(t)` runs once per output word): the word's four codes, each from the kernel's
// `code(e)` for output element e < `u.len`, packed (the spare lanes of the last word 0).

fn run_element(t: u32) {
    var word = 0u;
    for (var j = 0u; j < 4u; j = j + 1u) {
        let e = 4u * t + j;
        if (e < u.len) {
            word = put_code(word, j, code(e));
        }
    }
    y[t] = word;
}
