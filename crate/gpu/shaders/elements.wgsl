// The entry point of the kernels with one invocation per element (an output element, a row, an
// input pixel): workgroups of 64 on a 2-D grid of `u.row` invocations per grid row, so large
// tensors fit the adapter's per-dimension limit (`grid_1d` in src/exec/ops/mod.rs). Invocation
// i < `u.n` runs the kernel's `run_element(i)`. The kernel's uniform has `n` and `row`.
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * u.row + gid.x;
    if (i < u.n) {
        run_element(i);
    }
}
