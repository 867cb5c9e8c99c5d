//! Data movement of float tensors as strided copies (`copy.wgsl`): `Split`, `Slice`,
//! `Transpose`, `Concat`; constant-mode `Pad` (`pad.wgsl`); and reshape-like ops as aliases.
//! `Concat`, `Slice`, `Transpose` and `Pad` of 8-bit codes in TFLite plans go to [`data8`].

use super::super::layout::Layout;
use super::super::SlotBuf;
use super::data8;
use super::{copy_dispatch, dims8, grid_1d, operand, strides, vec4x2, Builder, Built};
use crate::uniforms::PadUniform;
use crate::GpuError;
use qplay_core::model::{DType, Data, StepInput, Tensor};
use qplay_core::ops::nn::pad::Pad;
use qplay_core::ops::shape::concat::Concat;
use qplay_core::ops::shape::slice::Slice;
use qplay_core::ops::shape::split::Split;
use qplay_core::ops::shape::transpose::Transpose;
use qplay_core::ops::Fact;

/// `Split` of a float tensor: one strided copy per output, from its slice of the input.
pub(super) async fn split(b: &mut Builder<'_>, i: usize, op: &Split) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let r = x.1.len() as i64;
    let axis = op.axis();
    let axis = if axis < 0 { axis + r } else { axis };
    if !(0..r).contains(&axis) {
        return Ok(None);
    }
    let axis = axis as usize;
    let ist: Vec<i64> = strides(&x.1).iter().map(|&v| v as i64).collect();
    let mut off = 0;
    let mut ds = Vec::new();
    let outs: Vec<Option<usize>> = step.outputs.to_vec();
    for o in outs {
        let Some(ys) = o else { return Ok(None) };
        let (_, yd, oshape) = b.plan.slot(ys);
        if yd != DType::F32 || oshape.len() != x.1.len() {
            return Ok(None);
        }
        let oshape = oshape.to_vec();
        let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
        if oshape.iter().product::<usize>() > 0 {
            let base = off * ist[axis] as usize;
            match copy_dispatch(b, i, &x.0, &yb, &oshape, &ist, &strides(&oshape), (base, 0)).await? {
                Some(d) => ds.push(d),
                None => return Ok(None),
            }
        }
        off += oshape[axis];
    }
    Ok(Some(ds))
}

/// Facts for a step's inputs: input 0 of `shape` (float), the others constants (their values
/// known) or omitted. `None` when an input other than 0 is computed at run time.
fn const_facts(inputs: &[StepInput<'_>], shape: &[usize]) -> Option<Vec<Option<Fact>>> {
    let mut facts = vec![Some(Fact::new(DType::F32, shape.to_vec()))];
    for inp in inputs.iter().skip(1) {
        facts.push(match *inp {
            StepInput::Const(t) => Some(Fact::constant(t.clone())),
            StepInput::Omitted => None,
            StepInput::Slot(_) => return None,
        });
    }
    Some(facts)
}

/// `Slice` of a float tensor with constant starts, ends, axes and steps (any sign): one strided
/// copy, the ranges from the CPU's own `slice_axis`.
pub(super) async fn slice(b: &mut Builder<'_>, i: usize, op: &Slice) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    if let StepInput::Slot(xs) = step.inputs[0] {
        if data8::is_flat8(b, xs) {
            let shape = b.plan.slot(xs).2.to_vec();
            let Some((ss, base)) = slice_strides(b, i, op, &shape, ys) else { return Ok(None) };
            return data8::slice(b, i, ys, &ss, base).await;
        }
    }
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let Some((ss, base)) = slice_strides(b, i, op, &x.1, ys) else { return Ok(None) };
    if b.plan.slot(ys).1 != DType::F32 {
        return Ok(None);
    }
    let oshape = b.plan.slot(ys).2.to_vec();
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    if oshape.iter().product::<usize>() == 0 {
        return Ok(Some(Vec::new()));
    }
    let d = copy_dispatch(b, i, &x.0, &yb, &oshape, &ss, &strides(&oshape), (base, 0)).await?;
    Ok(d.map(|d| vec![d]))
}

/// A constant `Slice` of an input of `shape` into slot `ys` as source strides (steps included)
/// and the first element's offset, from the CPU's own `slice_axis` ranges.
fn slice_strides(b: &Builder<'_>, i: usize, op: &Slice, shape: &[usize], ys: usize) -> Option<(Vec<i64>, usize)> {
    let facts = const_facts(&b.plan.step(i).inputs, shape)?;
    let (ranges, oshape) = op.ranges(&facts.iter().map(Option::as_ref).collect::<Vec<_>>()).ok()?;
    let ist = strides(shape);
    // A step only matters between two elements (as on the CPU: huge steps must not overflow).
    let ss: Vec<i64> = ranges
        .iter()
        .zip(&ist)
        .map(|(r, &s)| if r.len > 1 { r.step.checked_mul(s as i64) } else { Some(0) })
        .collect::<Option<_>>()?;
    let base =
        ranges.iter().zip(&ist).try_fold(0i64, |acc, (r, &s)| acc.checked_add(r.start.checked_mul(s as i64)?))?;
    if oshape != b.plan.slot(ys).2 {
        return None;
    }
    Some((ss, usize::try_from(base).ok()?))
}

/// Constant-mode `Pad` of a float tensor with constant pads (and value, and axes).
pub(super) async fn pad(b: &mut Builder<'_>, i: usize, op: &Pad) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    if !op.is_constant_mode() {
        return Ok(None);
    }
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let flat8 = matches!(step.inputs[0], StepInput::Slot(xs) if data8::is_flat8(b, xs));
    let r = match step.inputs[0] {
        StepInput::Slot(xs) => b.plan.slot(xs).2.len(),
        StepInput::Const(t) => t.shape.len(),
        StepInput::Omitted => return Ok(None),
    };
    let konst = |k: usize| -> Option<Option<&Tensor>> {
        match step.inputs.get(k).copied() {
            None | Some(StepInput::Omitted) => Some(None),
            Some(StepInput::Const(t)) => Some(Some(t)),
            Some(StepInput::Slot(_)) => None,
        }
    };
    // `pads` and `axes` values (inputs 1 and 3 from opset 11); `Err` when one is not constant.
    let ints = |k: usize| -> Result<Option<Vec<i64>>, ()> {
        match konst(k) {
            None => Err(()),
            Some(None) => Ok(None),
            Some(Some(t)) => t.to_i64_vec().map(Some).map_err(|_| ()),
        }
    };
    let (Ok(p), Ok(a)) = (ints(1), ints(3)) else { return Ok(None) };
    let Ok(pads) = op.pads(r, p.as_deref(), a.as_deref()) else { return Ok(None) };
    if flat8 {
        // The pad value: a code of the tensor's type (input 2), 0 when omitted.
        let code = match (op.attr_value(), konst(2)) {
            (None, Some(None)) => 0u32,
            (None, Some(Some(t))) if t.len() == 1 => match &t.data {
                Data::I8(v) => u32::from(v[0] as u8),
                Data::U8(v) => u32::from(v[0]),
                Data::I16(v) => u32::from(v[0] as u16),
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        return data8::pad(b, i, ys, &pads, code).await;
    }
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let value = match op.attr_value() {
        Some(v) => v,
        None => match konst(2) {
            None => return Ok(None),
            Some(None) => 0.0,
            Some(Some(t)) => match &t.data {
                Data::F32(v) if v.len() == 1 => v[0],
                _ => return Ok(None),
            },
        },
    };
    if r > 8 {
        return Ok(None);
    }
    let mut begin = [0i32; 8];
    for (a, &(p, _)) in pads.iter().enumerate() {
        let Ok(v) = i32::try_from(p) else { return Ok(None) };
        begin[8 - r + a] = v;
    }
    let oshape = b.plan.slot(ys).2.to_vec();
    let n: usize = oshape.iter().product();
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let max = b.gpu.device.limits().max_compute_workgroups_per_dimension;
    let (groups, row) = grid_1d(n, max);
    let u = PadUniform {
        n: n as u32,
        row,
        value,
        _pad: 0,
        dims: dims8(&oshape, 1),
        begin: vec4x2(begin),
        idims: dims8(&x.1, 1),
        istr: dims8(&strides(&x.1), 0),
    };
    Ok(Some(vec![b.dispatch(i, &u, &[&x.0, &yb], groups).await?]))
}

/// Reshape-like steps on row-major tensors (float32; 8-bit in TFLite plans): the output is the
/// input's buffer.
pub(super) fn alias(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let (Some(StepInput::Slot(xs)), Some(Some(ys))) = (step.inputs.first().copied(), step.outputs.first().copied())
    else {
        return Ok(None);
    };
    // Its other inputs (a shape, Dropout's ratio) are read only by the CPU op: a computed one
    // keeps the step there.
    if step.inputs[1..].iter().any(|s| matches!(s, StepInput::Slot(_))) {
        return Ok(None);
    }
    // Row-major layouts only: float32, and the integer tensors of TFLite plans (Flat8, Flat16).
    let layout = match (b.layout_of(xs), b.layout_of(ys)) {
        (Some(l @ (Layout::F32 | Layout::Flat8 { .. } | Layout::Flat16)), Some(m)) if l == m => l,
        _ => return Ok(None),
    };
    if b.plan.slot(xs).1 != b.plan.slot(ys).1 || b.slots[ys].is_some() {
        return Ok(None);
    }
    let Some(buf) = b.slot_buf(i, xs)? else { return Ok(None) };
    b.slots[ys] = Some(SlotBuf { buf, layout, staging: None });
    Ok(Some(Vec::new()))
}

/// `Transpose` of a float tensor: one strided copy.
pub(super) async fn transpose(b: &mut Builder<'_>, i: usize, op: &Transpose) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    if let StepInput::Slot(xs) = step.inputs[0] {
        if data8::is_flat8(b, xs) {
            let Ok(perm) = op.perm(b.plan.slot(xs).2.len()) else { return Ok(None) };
            return data8::transpose(b, i, ys, &perm).await;
        }
    }
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let r = x.1.len();
    let Ok(perm) = op.perm(r) else { return Ok(None) };
    let oshape: Vec<usize> = perm.iter().map(|&p| x.1[p]).collect();
    let ist = strides(&x.1);
    let ss: Vec<i64> = perm.iter().map(|&p| ist[p] as i64).collect();
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let d = copy_dispatch(b, i, &x.0, &yb, &oshape, &ss, &strides(&oshape), (0, 0)).await?;
    Ok(d.map(|d| vec![d]))
}

/// `Concat` of float tensors: one strided copy per input into its part of the output.
pub(super) async fn concat(b: &mut Builder<'_>, i: usize, op: &Concat) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let (_, yd, oshape) = b.plan.slot(ys);
    let oshape = oshape.to_vec();
    let r = oshape.len() as i64;
    let axis = op.axis();
    let axis = if axis < 0 { axis + r } else { axis };
    if !(0..r).contains(&axis) {
        return Ok(None);
    }
    let axis = axis as usize;
    if data8::is_flat8(b, ys) {
        return data8::concat(b, i, ys, axis).await;
    }
    if yd != DType::F32 {
        return Ok(None);
    }
    let mut ops = Vec::new();
    for inp in step.inputs.clone() {
        let Some(x) = operand(b, i, inp)? else { return Ok(None) };
        ops.push(x);
    }
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let ost = strides(&oshape);
    let mut off = 0;
    let mut ds = Vec::new();
    for (buf, shape) in &ops {
        if shape.len() != oshape.len() {
            return Ok(None);
        }
        if shape.iter().product::<usize>() > 0 {
            let ss: Vec<i64> = strides(shape).iter().map(|&v| v as i64).collect();
            match copy_dispatch(b, i, buf, &yb, shape, &ss, &ost, (0, off * ost[axis])).await? {
                Some(d) => ds.push(d),
                None => return Ok(None),
            }
        }
        off += shape[axis];
    }
    Ok(Some(ds))
}
