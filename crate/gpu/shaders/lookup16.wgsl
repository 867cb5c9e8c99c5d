// qplay.Lookup on int16 codes in the Flat16 layout (16x8 models' element-wise activations:
// LOGISTIC, TANH, … as the 65 536-entry tables planning computed, each entry the CPU kernel's
// own result for that code): code q becomes the entry at its 16 bits (q as u16, as the CPU
// indexes). The table holds its int16
// entries two to a word, as Flat16 does; one invocation per output word (two codes). Exact.

// Binding 0 is the uniform `u`, generated from `Lookup16Uniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32, 32768>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

// Entry k of the table (its 16 bits).
fn entry(k: u32) -> u32 {
    return (table[k / 2u] >> (16u * (k % 2u))) & 0xffffu;
}

fn run_element(t: u32) {
    let v = x[t];
    let lo = entry(v & 0xffffu);
    var hi = 0u;
    if (2u * t + 1u < u.len) {
        hi = entry(v >> 16u);
    }
    out[t] = lo | (hi << 16u);
}
