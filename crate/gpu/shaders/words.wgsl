// The entry point of the kernels with one invocation per packed word of an NHWC4 8-bit tensor
// (codes.wgsl): x over the batch's pixels (< `u.npix`), y over a pixel's words (< `u.c4`, four
// channels each); runs the kernel's `run_word(p, w)`. The kernel's uniform has `npix` and `c4`.
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x < u.npix && gid.y < u.c4) {
        run_word(gid.x, gid.y);
    }
}
