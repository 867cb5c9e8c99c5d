// Strided copy of 32-bit words (float32 tensors): Transpose (permuted source strides), Concat
// (one copy per input into its slice of the output), Split (one copy per output from its slice)
// and Slice (source strides times the steps, negative for reversed axes). Over the index space
// `dims` (up to 8, right-aligned): out[dst_base + Σ k·sd] = x[src_base + Σ k·ss]. Exact (no
// arithmetic on values).

// Binding 0 is the uniform `u`, generated from `CopyUniform` (src/uniforms.rs).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * u.row + gid.x;
    if (i >= u.n) {
        return;
    }
    var rest = i;
    var isrc = i32(u.src_base);
    var idst = u.dst_base;
    for (var d: i32 = 7; d >= 0; d = d - 1) {
        let dim = u.dims[d / 4][d % 4];
        let k = rest % dim;
        rest = rest / dim;
        isrc = isrc + i32(k) * u.ss[d / 4][d % 4];
        idst = idst + k * u.sd[d / 4][d % 4];
    }
    out[idst] = x[u32(isrc)];
}
