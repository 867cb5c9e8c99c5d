//! Pooling and row reductions of float tensors: 1-D/2-D `MaxPool` (`maxpool.wgsl`), `Softmax`
//! and the global pools (`reduce.wgsl`, one invocation per row).

use super::{grid_1d, operand, window, Builder, Built, MAX_SERIAL};
use crate::uniforms::{MaxpoolUniform, ReduceUniform};
use crate::{GpuError, ReduceCode};
use qplay_core::model::DType;
use qplay_core::ops::nn::global_pool::GlobalPool;
use qplay_core::ops::nn::maxpool::MaxPool;
use qplay_core::ops::nn::softmax::Softmax;

/// 1-D and 2-D `MaxPool` of a float NCHW tensor (the values output only).
pub(super) async fn maxpool(b: &mut Builder<'_>, i: usize, op: &MaxPool) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    if step.outputs.iter().skip(1).any(|o| o.is_some()) {
        return Ok(None);
    }
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    if !(3..=4).contains(&x.1.len()) {
        return Ok(None);
    }
    let Ok((w, oshape)) = qplay_core::ops::nn::spatial::pool_geometry(op.window(), &x.1) else { return Ok(None) };
    // One invocation per output walks its window (MAX_SERIAL).
    if oshape != b.plan.slot(ys).2 || w.kernel.iter().product::<usize>() > MAX_SERIAL {
        return Ok(None);
    }
    // 1-D as a height of 1.
    let win = window(&w.lifted_to_2d());
    let n: usize = oshape.iter().product();
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let max = b.gpu.device.limits().max_compute_workgroups_per_dimension;
    let (groups, row) = grid_1d(n, max);
    let u = MaxpoolUniform { win, n: n as u32, row, _pad: [0; 2] };
    Ok(Some(vec![b.dispatch(i, &u, &[&x.0, &yb], groups).await?]))
}

/// `Softmax` of a float tensor, over the rows the CPU op's own layout gives (one axis, or from
/// the axis on before opset 13): one invocation per row.
pub(super) async fn softmax(b: &mut Builder<'_>, i: usize, op: &Softmax) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let Ok((outer, len, inner)) = op.layout(&x.1) else { return Ok(None) };
    if b.exact_only {
        return Ok(None);
    }
    reduce(b, i, x.0, ReduceCode::Softmax, (outer, len, inner)).await
}

/// `GlobalAveragePool` (in plans without 8-bit tensors) and `GlobalMaxPool` of a float tensor:
/// one invocation per (batch, channel) row.
pub(super) async fn global_pool(b: &mut Builder<'_>, i: usize, op: &GlobalPool) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    if !op.is_max() && b.exact_only {
        return Ok(None);
    }
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    if x.1.len() < 3 {
        return Ok(None);
    }
    let code = if op.is_max() { ReduceCode::Max } else { ReduceCode::Average };
    reduce(b, i, x.0, code, (x.1[0] * x.1[1], x.1[2..].iter().product(), 1)).await
}

/// One `reduce.wgsl` dispatch over the input seen as `[outer, len, inner]`: a row of `len`
/// elements `inner` apart per (outer, inner).
async fn reduce(
    b: &mut Builder<'_>,
    i: usize,
    x: wgpu::Buffer,
    op: ReduceCode,
    (outer, len, inner): (usize, usize, usize),
) -> Result<Built, GpuError> {
    let Some(Some(ys)) = b.plan.step(i).outputs.first().copied() else { return Ok(None) };
    // Softmax passes over its row three times.
    if len == 0 || 3 * len > MAX_SERIAL || b.plan.slot(ys).1 != DType::F32 {
        return Ok(None);
    }
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let rows = outer * inner;
    let max = b.gpu.device.limits().max_compute_workgroups_per_dimension;
    let (groups, row) = grid_1d(rows, max);
    let u = ReduceUniform { n: rows as u32, row, len: len as u32, inner: inner as u32, op: op as u32, _pad: [0; 3] };
    Ok(Some(vec![b.dispatch(i, &u, &[&x, &yb], groups).await?]))
}
