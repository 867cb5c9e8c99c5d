// Strided copy of 32-bit words (float32 tensors): Transpose (permuted source strides), Concat
// (one copy per input into its slice of the output), Split (one copy per output from its slice)
// and Slice (source strides times the steps, negative for reversed axes: two's complement, the
// sum wraps). Over the index space `dims` (up to 8, right-aligned; index8.wgsl):
// out[dst_base + Σ k·sd] = x[src_base + Σ k·ss]. Exact (no arithmetic on values).

// Binding 0 is the uniform `u`, generated from `CopyUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

fn run_element(i: u32) {
    let k = unravel(i);
    out[u.dst_base + strided(k, u.sd)] = x[u.src_base + strided(k, u.ss)];
}
