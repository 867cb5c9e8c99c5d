//! Data movement of integer codes in TFLite plans (the Flat8 layout, and Flat16 for the int16
//! codes of 16x8 models): `Concat`, `Slice`, `Transpose` and constant-mode `Pad` as code
//! gathers (`copy8.wgsl`), one invocation per output word. The float builders in `data` hand
//! these steps here.

use super::super::layout::Layout;
use super::super::Dispatch;
use super::{dims8, grid_1d, strides, Builder, Built};
use crate::uniforms::Copy8Uniform;
use crate::GpuError;
use qplay_core::model::StepInput;

/// A Flat8 or Flat16 slot's buffer and shape (`None` for anything else).
fn flat8(b: &mut Builder<'_>, i: usize, inp: StepInput<'_>) -> Result<Option<(wgpu::Buffer, Vec<usize>)>, GpuError> {
    let StepInput::Slot(s) = inp else { return Ok(None) };
    if !is_flat8(b, s) {
        return Ok(None);
    }
    let shape = b.plan.slot(s).2.to_vec();
    Ok(b.slot_buf(i, s)?.map(|buf| (buf, shape)))
}

/// Whether slot `s` is an integer tensor of a TFLite plan (Flat8 or Flat16).
pub(super) fn is_flat8(b: &Builder<'_>, s: usize) -> bool {
    b.layout_of(s).and_then(Layout::flat_codes).is_some()
}

/// Whether slot `s` holds int16 codes (Flat16).
fn is_flat16(b: &Builder<'_>, s: usize) -> bool {
    b.layout_of(s) == Some(Layout::Flat16)
}

/// The box a gather writes: its first element and size in the output, the source strides along
/// its dims and the source offset of its first element.
struct Box8<'a> {
    base: &'a [usize],
    extent: &'a [usize],
    ss: &'a [i64],
    src_base: usize,
}

/// One `copy8.wgsl` dispatch into slot `ys`'s buffer `dst` of shape `oshape`; `fill`: the code
/// around the box (its low byte, or low half for int16; else those codes keep their value).
async fn gather(
    b: &mut Builder<'_>,
    (i, ys): (usize, usize),
    (src, dst): (&wgpu::Buffer, &wgpu::Buffer),
    oshape: &[usize],
    bx: Box8<'_>,
    fill: Option<u32>,
) -> Result<Option<Dispatch>, GpuError> {
    let fits = |v: i64| i32::try_from(v).is_ok();
    if oshape.len() > 8 || !bx.ss.iter().all(|&v| fits(v)) || u32::try_from(bx.src_base).is_err() {
        return Ok(None);
    }
    let bits16 = is_flat16(b, ys);
    let lanes = if bits16 { 2 } else { 4 };
    let len: usize = oshape.iter().product();
    let max = b.gpu.device.limits().max_compute_workgroups_per_dimension;
    let (groups, row) = grid_1d(len.div_ceil(lanes), max);
    let ss: Vec<usize> = bx.ss.iter().map(|&v| v as i32 as u32 as usize).collect();
    let u = Copy8Uniform {
        n: len.div_ceil(lanes) as u32,
        row,
        len: len as u32,
        fill: u32::from(fill.is_some()),
        value: fill.unwrap_or(0),
        src_base: bx.src_base as u32,
        bits16: u32::from(bits16),
        _pad: 0,
        dims: dims8(oshape, 1),
        base: dims8(bx.base, 0),
        extent: dims8(bx.extent, 1),
        ss: dims8(&ss, 0),
    };
    Ok(Some(b.dispatch(i, &u, &[src, dst], groups).await?))
}

/// `Concat` along `axis` of Flat8 tensors: one gather per input into its slice of the output.
pub(super) async fn concat(b: &mut Builder<'_>, i: usize, ys: usize, axis: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let oshape = b.plan.slot(ys).2.to_vec();
    let mut parts = Vec::new();
    for inp in step.inputs.clone() {
        let Some(x) = flat8(b, i, inp)? else { return Ok(None) };
        if x.1.len() != oshape.len() {
            return Ok(None);
        }
        parts.push(x);
    }
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let mut ds = Vec::new();
    let mut off = 0;
    for (buf, shape) in &parts {
        if shape.iter().product::<usize>() > 0 {
            let mut base = vec![0; shape.len()];
            base[axis] = off;
            let ss: Vec<i64> = strides(shape).iter().map(|&v| v as i64).collect();
            let bx = Box8 { base: &base, extent: shape, ss: &ss, src_base: 0 };
            match gather(b, (i, ys), (buf, &yb), &oshape, bx, None).await? {
                Some(d) => ds.push(d),
                None => return Ok(None),
            }
        }
        off += shape[axis];
    }
    Ok(Some(ds))
}

/// `Slice` of a Flat8 tensor: source strides `ss` (steps included) from element `src_base`.
pub(super) async fn slice(
    b: &mut Builder<'_>,
    i: usize,
    ys: usize,
    ss: &[i64],
    src_base: usize,
) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(x) = flat8(b, i, step.inputs[0])? else { return Ok(None) };
    let oshape = b.plan.slot(ys).2.to_vec();
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    if oshape.iter().product::<usize>() == 0 {
        return Ok(Some(Vec::new()));
    }
    let base = vec![0; oshape.len()];
    let bx = Box8 { base: &base, extent: &oshape, ss, src_base };
    Ok(gather(b, (i, ys), (&x.0, &yb), &oshape, bx, None).await?.map(|d| vec![d]))
}

/// `Transpose` of a Flat8 tensor by `perm`: output element k reads input element Σ k[d]·s[perm[d]].
pub(super) async fn transpose(b: &mut Builder<'_>, i: usize, ys: usize, perm: &[usize]) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(x) = flat8(b, i, step.inputs[0])? else { return Ok(None) };
    let oshape = b.plan.slot(ys).2.to_vec();
    if perm.len() != x.1.len() || oshape.len() != perm.len() {
        return Ok(None);
    }
    let ist = strides(&x.1);
    let ss: Vec<i64> = perm.iter().map(|&p| ist[p] as i64).collect();
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    if oshape.iter().product::<usize>() == 0 {
        return Ok(Some(Vec::new()));
    }
    let base = vec![0; oshape.len()];
    let bx = Box8 { base: &base, extent: &oshape, ss: &ss, src_base: 0 };
    Ok(gather(b, (i, ys), (&x.0, &yb), &oshape, bx, None).await?.map(|d| vec![d]))
}

/// Constant-mode `Pad` of a Flat8 or Flat16 tensor by `pads` (before, after) per dim, negative
/// crops; `value`: the pad code's bits (a byte, or an int16's low half).
pub(super) async fn pad(
    b: &mut Builder<'_>,
    i: usize,
    ys: usize,
    pads: &[(i64, i64)],
    value: u32,
) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(x) = flat8(b, i, step.inputs[0])? else { return Ok(None) };
    let oshape = b.plan.slot(ys).2.to_vec();
    if pads.len() != x.1.len() || oshape.len() != x.1.len() {
        return Ok(None);
    }
    let ist = strides(&x.1);
    let (mut base, mut extent, mut src_base) = (Vec::new(), Vec::new(), 0usize);
    for (d, &(before, _)) in pads.iter().enumerate() {
        // Output coordinate o reads input o − before; the box is where that lies in the input.
        let first_out = before.max(0) as usize;
        let first_in = (-before).max(0) as usize;
        base.push(first_out);
        extent.push(x.1[d].saturating_sub(first_in).min(oshape[d].saturating_sub(first_out)));
        src_base += first_in * ist[d];
    }
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    if oshape.iter().product::<usize>() == 0 {
        return Ok(Some(Vec::new()));
    }
    let ss: Vec<i64> = ist.iter().map(|&v| v as i64).collect();
    let bx = Box8 { base: &base, extent: &extent, ss: &ss, src_base };
    Ok(gather(b, (i, ys), (&x.0, &yb), &oshape, bx, Some(value)).await?.map(|d| vec![d]))
}
