//! Float element-wise ops: `Binary` (Add, Sub, Mul, Div, PRelu with broadcasting), `Unary` (the
//! functions of `unary.wgsl`, and Relu as a clip), `Clip` with constant bounds, and
//! `BatchNormalization` as a multiply then an add.

use super::super::layout::Layout;
use super::super::Dispatch;
use super::{dims8, grid_1d, operand, strides, Builder, Built};
use crate::uniforms::{BinaryUniform, UnaryUniform};
use crate::{BinaryCode, GpuError, UnaryCode};
use qplay_core::model::{DType, Data, StepInput};
use qplay_core::ops::math::binary::{Binary, BinaryOp};
use qplay_core::ops::math::clip::Clip;
use qplay_core::ops::math::unary::{Unary, UnaryFn};
use qplay_core::ops::nn::batchnorm::BatchNorm;

/// Float `Add`, `Sub`, `Mul`, `PRelu` (and `Div` in plans without 8-bit tensors) with
/// broadcasting.
pub(super) async fn binary(b: &mut Builder<'_>, i: usize, op: &Binary) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let op = match op.op {
        BinaryOp::Add => BinaryCode::Add,
        BinaryOp::Sub => BinaryCode::Sub,
        BinaryOp::Mul => BinaryCode::Mul,
        BinaryOp::Div if !b.exact_only => BinaryCode::Div,
        BinaryOp::PRelu => BinaryCode::PRelu,
        _ => return Ok(None),
    };
    let (Some(Some(ys)), 2) = (step.outputs.first().copied(), step.inputs.len()) else { return Ok(None) };
    let (_, yd, oshape) = b.plan.slot(ys);
    if yd != DType::F32 {
        return Ok(None);
    }
    let oshape = oshape.to_vec();
    let (Some(a), Some(bb)) = (operand(b, i, step.inputs[0])?, operand(b, i, step.inputs[1])?) else {
        return Ok(None);
    };
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let d = binary_dispatch(b, i, op, (None, None), (&a.0, &a.1), (&bb.0, &bb.1), &yb, &oshape).await?;
    Ok(d.map(|d| vec![d]))
}

/// `Clip` of a float tensor with constant bounds.
pub(super) async fn clip(b: &mut Builder<'_>, i: usize, op: &Clip) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let bound = |k: usize| -> Result<Option<f32>, ()> {
        match step.inputs.get(k).copied() {
            None | Some(StepInput::Omitted) => Ok(None),
            Some(StepInput::Const(t)) => match &t.data {
                Data::F32(v) if v.len() == 1 => Ok(Some(v[0])),
                _ => Err(()),
            },
            Some(StepInput::Slot(_)) => Err(()),
        }
    };
    let (lo, hi) = if let Some(bounds) = op.attr_bounds() {
        bounds
    } else {
        match (bound(1), bound(2)) {
            (Ok(l), Ok(h)) => (l, h),
            _ => return Ok(None),
        }
    };
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let d = binary_dispatch(b, i, BinaryCode::Clip, (lo, hi), (&x.0, &x.1), (&x.0, &x.1), &yb, &x.1.clone()).await?;
    Ok(d.map(|d| vec![d]))
}

/// The float functions of `unary.wgsl`.
/// The functions of `unary.wgsl` on float tensors (those that only agree with the CPU to
/// rounding only in plans without 8-bit tensors), and `Relu` as a clip from below at 0.
pub(super) async fn unary(b: &mut Builder<'_>, i: usize, op: &Unary) -> Result<Built, GpuError> {
    let exact = |code: UnaryCode| Some((code, 0.0, 0.0));
    let rounded = |code: UnaryCode, alpha: f32, beta: f32| (!b.exact_only).then_some((code, alpha, beta));
    let code = match op.func {
        UnaryFn::Relu => return relu(b, i).await,
        UnaryFn::Neg => exact(UnaryCode::Neg),
        UnaryFn::Abs => exact(UnaryCode::Abs),
        UnaryFn::LeakyRelu { alpha } => Some((UnaryCode::LeakyRelu, alpha, 0.0)),
        UnaryFn::Sigmoid => rounded(UnaryCode::Sigmoid, 0.0, 0.0),
        UnaryFn::Tanh => rounded(UnaryCode::Tanh, 0.0, 0.0),
        UnaryFn::Exp => rounded(UnaryCode::Exp, 0.0, 0.0),
        UnaryFn::HardSigmoid { alpha, beta } => rounded(UnaryCode::HardSigmoid, alpha, beta),
        UnaryFn::HardSwish => rounded(UnaryCode::HardSwish, 0.0, 0.0),
        UnaryFn::Elu { alpha } => rounded(UnaryCode::Elu, alpha, 0.0),
        UnaryFn::Sqrt => rounded(UnaryCode::Sqrt, 0.0, 0.0),
        UnaryFn::Softplus => rounded(UnaryCode::Softplus, 0.0, 0.0),
        UnaryFn::Erf => rounded(UnaryCode::Erf, 0.0, 0.0),
        _ => None,
    };
    let Some((op, alpha, beta)) = code else { return Ok(None) };
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    if b.plan.slot(ys).1 != DType::F32 {
        return Ok(None);
    }
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let n: usize = x.1.iter().product();
    let max = b.gpu.device.limits().max_compute_workgroups_per_dimension;
    let (groups, row) = grid_1d(n, max);
    let u = UnaryUniform { n: n as u32, row, op: op as u32, alpha, beta, _pad: [0; 3] };
    Ok(Some(vec![b.dispatch(i, &u, &[&x.0, &yb], groups).await?]))
}

/// `Relu` as a clip from below at 0.
async fn relu(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let d = binary_dispatch(b, i, BinaryCode::Clip, (Some(0.0), None), (&x.0, &x.1), (&x.0, &x.1), &yb, &x.1.clone())
        .await?;
    Ok(d.map(|d| vec![d]))
}

/// `BatchNormalization` of a float tensor with constant parameters.
pub(super) async fn batchnorm(b: &mut Builder<'_>, i: usize, op: &BatchNorm) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let mut p: Vec<&[f32]> = Vec::new();
    for k in 1..5 {
        match step.inputs.get(k) {
            Some(StepInput::Const(t)) => match &t.data {
                Data::F32(v) => p.push(v),
                _ => return Ok(None),
            },
            _ => return Ok(None),
        }
    }
    let eps = op.epsilon();
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    if x.1.len() < 2 || p.iter().any(|v| v.len() != x.1[1]) {
        return Ok(None);
    }
    // The CPU's per-channel a, b (same f32 expressions), then y = (x·a) + b in two dispatches,
    // so the product is rounded before the add exactly as on the CPU.
    let c = x.1[1];
    let (mut av, mut bv) = (Vec::with_capacity(c), Vec::with_capacity(c));
    for (((&scale, &bias), &mean), &var) in p[0].iter().zip(p[1]).zip(p[2]).zip(p[3]) {
        let a = scale / (var + eps).sqrt();
        av.push(a);
        bv.push(bias - mean * a);
    }
    let mut cshape = vec![1; x.1.len()];
    cshape[1] = c;
    let ab = b.const_buf(i, "batchnorm a", bytemuck::cast_slice(&av))?;
    let bb = b.const_buf(i, "batchnorm b", bytemuck::cast_slice(&bv))?;
    let tmp = b.scratch(i, Layout::F32.bytes(&x.1))?;
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let shape = x.1.clone();
    let d1 = binary_dispatch(b, i, BinaryCode::Mul, (None, None), (&x.0, &shape), (&ab, &cshape), &tmp, &shape).await?;
    let d2 = binary_dispatch(b, i, BinaryCode::Add, (None, None), (&tmp, &shape), (&bb, &cshape), &yb, &shape).await?;
    Ok(d1.zip(d2).map(|(a, b)| vec![a, b]))
}

/// Broadcast strides of an operand of `shape` read over `out` (0 along broadcast dims).
pub(super) fn bcast_strides(shape: &[usize], out: &[usize]) -> Option<Vec<usize>> {
    if shape.len() > out.len() {
        return None;
    }
    let st = strides(shape);
    let off = out.len() - shape.len();
    let mut r = vec![0; out.len()];
    for d in 0..shape.len() {
        if shape[d] == out[off + d] {
            r[off + d] = st[d];
        } else if shape[d] != 1 {
            return None;
        }
    }
    Some(r)
}

/// One binary.wgsl dispatch.
#[allow(clippy::too_many_arguments)]
async fn binary_dispatch(
    b: &mut Builder<'_>,
    i: usize,
    op: BinaryCode,
    clip: (Option<f32>, Option<f32>),
    a: (&wgpu::Buffer, &[usize]),
    bb: (&wgpu::Buffer, &[usize]),
    out: &wgpu::Buffer,
    oshape: &[usize],
) -> Result<Option<Dispatch>, GpuError> {
    if oshape.len() > 8 {
        return Ok(None);
    }
    let (Some(sa), Some(sb)) = (bcast_strides(a.1, oshape), bcast_strides(bb.1, oshape)) else { return Ok(None) };
    let n: usize = oshape.iter().product();
    let max = b.gpu.device.limits().max_compute_workgroups_per_dimension;
    let (groups, row) = grid_1d(n, max);
    let u = BinaryUniform {
        n: n as u32,
        op: op as u32,
        row,
        has_lo: clip.0.is_some() as u32,
        has_hi: clip.1.is_some() as u32,
        lo: clip.0.unwrap_or(0.0),
        hi: clip.1.unwrap_or(0.0),
        _pad: 0,
        dims: dims8(oshape, 1),
        sa: dims8(&sa, 0),
        sb: dims8(&sb, 0),
    };
    Ok(Some(b.dispatch(i, &u, &[a.0, bb.0, out], groups).await?))
}
