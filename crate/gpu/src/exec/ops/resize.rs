//! `Resize` / `Upsample` with the CPU op's own per-axis taps (`resample.wgsl`).

use super::{copy_dispatch, grid_1d, operand, strides, Builder, Built};
use crate::uniforms::ResampleUniform;
use crate::GpuError;
use qplay_core::model::{DType, StepInput, Tensor};
use qplay_core::ops::nn::resize::Resize;

/// `Resize`/`Upsample` of a float tensor with constant scales or sizes: one `resample.wgsl`
/// dispatch per resampled axis, through scratch buffers, with the CPU op's own taps. Nearest
/// is exact; linear only in plans without 8-bit tensors (a fused multiply-add may round
/// differently). Extrapolating (tf_crop_and_resize outside the roi) stays on the CPU.
pub(super) async fn resize(b: &mut Builder<'_>, i: usize, op: &Resize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let mut args: Vec<Option<&Tensor>> = vec![None];
    for inp in step.inputs.iter().skip(1) {
        match *inp {
            StepInput::Const(t) => args.push(Some(t)),
            StepInput::Omitted => args.push(None),
            StepInput::Slot(_) => return Ok(None),
        }
    }
    let Ok((axes, oshape)) = op.axis_taps(&x.1, &args) else { return Ok(None) };
    if oshape != b.plan.slot(ys).2 || b.plan.slot(ys).1 != DType::F32 || oshape.iter().product::<usize>() == 0 {
        return Ok(None);
    }
    // The axes that change anything (the CPU skips identities too).
    let work: Vec<_> = axes
        .iter()
        .filter(|(a, t)| {
            !(x.1[*a] == oshape[*a]
                && t.iter().enumerate().all(|(k, t)| matches!(t, Some([(j, w), _]) if *j == k && *w == 1.0)))
        })
        .collect();
    let linear = work.iter().any(|(_, t)| t.iter().any(|t| matches!(t, Some([_, (_, w)]) if *w != 0.0)));
    if work.iter().any(|(_, t)| t.iter().any(Option::is_none)) || (linear && b.exact_only) {
        return Ok(None);
    }
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    if work.is_empty() {
        let ss: Vec<i64> = strides(&x.1).iter().map(|&v| v as i64).collect();
        let d = copy_dispatch(b, i, &x.0, &yb, &x.1, &ss, &strides(&x.1), (0, 0)).await?;
        return Ok(d.map(|d| vec![d]));
    }
    let max = b.gpu.device.limits().max_compute_workgroups_per_dimension;
    let mut cur = x.1.clone();
    let mut src = x.0.clone();
    let mut ds = Vec::new();
    for (k, (a, taps)) in work.iter().enumerate() {
        let (a, n_out) = (*a, taps.len());
        let n_in = cur[a];
        let inner: usize = cur[a + 1..].iter().product();
        cur[a] = n_out;
        let n: usize = cur.iter().product();
        let dst = if k + 1 == work.len() { yb.clone() } else { b.scratch(i, (n * 4) as u64)? };
        let words: Vec<u32> = taps
            .iter()
            .flat_map(|t| {
                let [(i0, w0), (i1, w1)] = t.unwrap_or([(0, 0.0), (0, 0.0)]);
                [i0 as u32, i1 as u32, w0.to_bits(), w1.to_bits()]
            })
            .collect();
        let tb = b.const_buf(i, "resize taps", bytemuck::cast_slice(&words))?;
        let (groups, row) = grid_1d(n, max);
        let u = ResampleUniform {
            n: n as u32,
            row,
            n_in: n_in as u32,
            n_out: n_out as u32,
            inner: inner as u32,
            _pad: [0; 3],
        };
        ds.push(b.dispatch(i, &u, &[&src, &tb, &dst], groups).await?);
        src = dst;
    }
    Ok(Some(ds))
}
