//! `QuantizeLinear` / `DequantizeLinear` per tensor, and `qplay.Lookup` (an element-wise
//! function as a table: 256 entries on 8-bit tensors, 65 536 on 16x8 models' int16 codes).

use super::super::layout::{ncs, Layout};
use super::{grid_1d, Builder, Built};
use crate::uniforms::{DequantizeUniform, Lookup16Uniform, LookupUniform, QuantizeUniform};
use crate::GpuError;
use qplay_core::model::{DType, Data, StepInput, Tensor};
use qplay_core::ops::quant::dequantize_linear::DequantizeLinear;
use qplay_core::ops::quant::lookup::Lookup;
use qplay_core::ops::quant::quantize_linear::QuantizeLinear;

/// A constant scalar's single value.
fn scalar(t: &Tensor) -> Option<f64> {
    match &t.data {
        Data::F32(v) if v.len() == 1 => Some(v[0] as f64),
        _ if t.len() == 1 => t.to_i64_vec().ok().map(|v| v[0] as f64),
        _ => None,
    }
}

/// (x slot, scale, zero-point tensor) of a per-tensor Q/DQ step with constant parameters (the
/// core ops refuse blocked quantization when they are built).
fn qdq_params<'a>(b: &Builder<'a>, i: usize) -> Option<(usize, usize, f32, Option<&'a Tensor>)> {
    let step = b.plan.step(i);
    let (StepInput::Slot(xs), Some(Some(ys))) = (*step.inputs.first()?, step.outputs.first().copied()) else {
        return None;
    };
    let StepInput::Const(st) = *step.inputs.get(1)? else { return None };
    let Data::F32(sv) = &st.data else { return None };
    if sv.len() != 1 || !(sv[0].is_finite() && sv[0] > 0.0) {
        return None;
    }
    let zp = match step.inputs.get(2).copied() {
        None | Some(StepInput::Omitted) => None,
        Some(StepInput::Const(z)) if z.len() == 1 => Some(z),
        _ => return None,
    };
    Some((xs, ys, sv[0], zp))
}

/// `qplay.Lookup` (an int8 element-wise function as a 256-entry table) on 8-bit tensors.
pub(super) async fn lookup(b: &mut Builder<'_>, i: usize, _: &Lookup) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let (Some(StepInput::Slot(xs)), Some(StepInput::Const(t)), Some(Some(ys))) =
        (step.inputs.first().copied(), step.inputs.get(1).copied(), step.outputs.first().copied())
    else {
        return Ok(None);
    };
    let table: Vec<u8> = match &t.data {
        Data::U8(v) => v.clone(),
        Data::I8(v) => v.iter().map(|&c| c as u8).collect(),
        Data::I16(v) => return lookup16(b, i, (xs, ys), v).await,
        _ => return Ok(None),
    };
    let (_, xd, shape) = b.plan.slot(xs);
    if table.len() != 256 || !matches!(xd, DType::U8 | DType::I8) || shape.len() < 2 {
        return Ok(None);
    }
    let shape = shape.to_vec();
    // NHWC4: pixels of ⌈C/4⌉ words; Flat8: the bytes in order, as "pixels" of one word of four
    // (the last word's spare lanes map too, and no one reads them).
    let (npix, c4, c) = match (b.layout_of(xs), b.layout_of(ys)) {
        (Some(Layout::Packed8 { .. }), Some(Layout::Packed8 { .. })) => {
            let (n, c, s) = ncs(&shape);
            (n * s, c.div_ceil(4), c)
        }
        (Some(Layout::Flat8 { .. }), Some(Layout::Flat8 { .. })) => (shape.iter().product::<usize>().div_ceil(4), 1, 4),
        _ => return Ok(None),
    };
    let groups = [npix.div_ceil(64) as u32, c4 as u32, 1];
    if groups[0] > b.gpu.device.limits().max_compute_workgroups_per_dimension {
        return Ok(None);
    }
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let tb = b.const_buf(i, "lookup table", &table)?;
    let u = LookupUniform { npix: npix as u32, c4: c4 as u32, c: c as u32, _pad: 0 };
    Ok(Some(vec![b.dispatch(i, &u, &[&xb, &tb, &yb], groups).await?]))
}

/// `qplay.Lookup` on int16 codes (Flat16 → Flat16) by its 65 536-entry table.
async fn lookup16(b: &mut Builder<'_>, i: usize, (xs, ys): (usize, usize), table: &[i16]) -> Result<Built, GpuError> {
    if table.len() != 65536 || b.layout_of(xs) != Some(Layout::Flat16) || b.layout_of(ys) != Some(Layout::Flat16) {
        return Ok(None);
    }
    let len: usize = b.plan.slot(xs).2.iter().product();
    let words = len.div_ceil(2);
    let (groups, row) = grid_1d(words, b.gpu.device.limits().max_compute_workgroups_per_dimension);
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let tb = b.const_buf(i, "int16 lookup table", bytemuck::cast_slice(table))?;
    let u = Lookup16Uniform { n: words as u32, row, len: len as u32, _pad: 0 };
    Ok(Some(vec![b.dispatch(i, &u, &[&xb, &tb, &yb], groups).await?]))
}

/// `QuantizeLinear` per tensor, float to packed 8-bit.
pub(super) async fn quantize(b: &mut Builder<'_>, i: usize, _: &QuantizeLinear) -> Result<Built, GpuError> {
    if b.flat8 {
        return Ok(None); // NHWC4 kernels.
    }
    let Some((xs, ys, scale, zp)) = qdq_params(b, i) else { return Ok(None) };
    let (_, xd, shape) = b.plan.slot(xs);
    let (_, yd, _) = b.plan.slot(ys);
    let (qmin, qmax) = match yd {
        DType::U8 => (0, 255),
        DType::I8 => (-128, 127),
        _ => return Ok(None),
    };
    let z = zp.map_or(Some(0.0), scalar).unwrap_or(f64::NAN);
    if xd != DType::F32 || shape.len() < 2 || !(qmin as f64..=qmax as f64).contains(&z) {
        return Ok(None);
    }
    let shape = shape.to_vec();
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let (n, c, s) = ncs(&shape);
    let c4 = c.div_ceil(4);
    let u = QuantizeUniform {
        c: c as u32,
        c4: c4 as u32,
        s: s as u32,
        npix: (n * s) as u32,
        scale,
        zp: z as i32,
        qmin,
        qmax,
    };
    let groups = [(n * s).div_ceil(64) as u32, c4 as u32, 1];
    Ok(Some(vec![b.dispatch(i, &u, &[&xb, &yb], groups).await?]))
}

/// `DequantizeLinear` per tensor, packed 8-bit to float.
pub(super) async fn dequantize(b: &mut Builder<'_>, i: usize, _: &DequantizeLinear) -> Result<Built, GpuError> {
    if b.flat8 {
        return Ok(None); // NHWC4 kernels.
    }
    let Some((xs, ys, scale, zp)) = qdq_params(b, i) else { return Ok(None) };
    let (_, xd, shape) = b.plan.slot(xs);
    let shift = match xd {
        DType::U8 => 128,
        DType::I8 => 0,
        _ => return Ok(None),
    };
    if shape.len() < 2 || zp.is_some_and(|z| z.dtype() != xd) {
        return Ok(None);
    }
    let z = zp.map_or(Some(0.0), scalar).unwrap_or(0.0) as i32;
    let shape = shape.to_vec();
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let (n, c, s) = ncs(&shape);
    let c4 = c.div_ceil(4);
    let x_xor = if shift == 128 { 0x8080_8080u32 } else { 0 };
    let u =
        DequantizeUniform { c: c as u32, c4: c4 as u32, s: s as u32, npix: (n * s) as u32, scale, zp: z, x_xor, shift };
    let groups = [(n * s).div_ceil(64) as u32, c4 as u32, 1];
    Ok(Some(vec![b.dispatch(i, &u, &[&xb, &yb], groups).await?]))
}
