//! `Conv`: N-D convolution with groups, strides, dilations, explicit or automatic padding and an
//! optional bias (opsets 1–21 share these semantics).
//!
//! Three kernels, picked per group by shape:
//! - one input channel per group (depthwise, e.g. MobileNet's 3×3 filters) → the direct
//!   [`depthwise`](super::depthwise) kernel;
//! - 1×1 kernel, stride 1, no padding (pointwise) → one GEMM straight on the input planes, which
//!   already are the `C × H·W` matrix GEMM wants;
//! - anything else → [`im2col`](super::im2col) in cache-sized chunks of output rows, then GEMM.
//!
//! The bias is fused into the GEMM's store (or the depthwise kernel's), never a separate pass,
//! and so is a following `Relu`/`Clip` that planning folded into the node
//! ([`fuse_activation_into_conv`](crate::model::passes::fuse_activation_into_conv)), as a
//! [`Clamp`] on the finished sums.

use super::depthwise::{depthwise_plane, depthwise_plane_backward};
use super::im2col::{chunk_cols, col2im, im2col};
use super::sgemm::{sgemm, sgemm_clamped, sgemm_rows, Clamp, Init, MatRef};
use super::spatial::{Window, WindowAttrs};
use super::{checked_numel, f32_fact, f32_fact_opt, f32_input, f32_input_opt, f32_output};
use crate::model::{DType, Node};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{BuildCtx, Fact, Op, OpError, Tensor};
use crate::parallel;

/// Column-matrix floats unfolded at once by the im2col path (about 2 MiB): large enough that
/// GEMM sees wide operands, small enough to stay in cache.
const IM2COL_CHUNK: usize = 512 * 1024;

/// A built `Conv` node.
#[derive(Debug, Clone)]
pub struct Conv {
    window: WindowAttrs,
    pub(crate) group: usize,
    /// An activation fused into the store by [`crate::model::passes::fuse_activation_into_conv`].
    pub(crate) clamp: Option<Clamp>,
    /// Per-output-channel upper bounds fused by
    /// [`crate::model::passes::fuse_channel_min_into_conv`].
    pub(crate) channel_max: Option<Vec<f32>>,
}

/// Builds `Conv` from its attributes (`group`, `kernel_shape`, `strides`, `dilations`, `pads`,
/// `auto_pad`).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Conv::from_node(node)?))
}

/// A convolution resolved against concrete shapes (shared with the quantized convolutions).
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) batch: usize,
    pub(crate) in_channels: usize,
    pub(crate) out_channels: usize,
    pub(crate) window: Window,
    pub(crate) out_shape: Vec<usize>,
}

/// The float X, W and optional B of a Conv-like node (`Conv`, `ConvTranspose`) and the plan of
/// their shapes.
pub(crate) struct ConvArgs<'a> {
    pub(crate) x: &'a [f32],
    pub(crate) w: &'a [f32],
    pub(crate) b: Option<&'a [f32]>,
    pub(crate) plan: Plan,
}

/// The shapes of X, W and B → a [`Plan`] (each Conv-like op's own rule).
pub(crate) type Planner<'p> = &'p dyn Fn(&[usize], &[usize], Option<&[usize]>) -> Result<Plan, OpError>;

/// A Conv-like node's output fact: float, of the planned shape.
pub(crate) fn conv_like_infer(inputs: &[Option<&Fact>], plan: Planner<'_>) -> Result<Vec<Fact>, OpError> {
    let x = f32_fact(inputs, 0, "X")?;
    let w = f32_fact(inputs, 1, "W")?;
    let b = f32_fact_opt(inputs, 2, "B")?;
    Ok(vec![Fact::new(DType::F32, plan(&x.shape, &w.shape, b.map(|b| b.shape.as_slice()))?.out_shape)])
}

/// A Conv-like node's inputs, checked, with their plan.
pub(crate) fn conv_like_args<'a>(inputs: &[Option<&'a Tensor>], plan: Planner<'_>) -> Result<ConvArgs<'a>, OpError> {
    let x = f32_input(inputs, 0, "X")?;
    let w = f32_input(inputs, 1, "W")?;
    let b = f32_input_opt(inputs, 2, "B")?;
    let shape = |i: usize| super::input_shape(inputs, i);
    let plan = plan(shape(0).unwrap_or_default(), shape(1).unwrap_or_default(), shape(2))?;
    Ok(ConvArgs { x, w, b, plan })
}

impl Conv {
    /// Reads and validates the attributes.
    pub fn from_node(node: &Node) -> Result<Conv, OpError> {
        let group = node.attrs.int("group", 1);
        if group < 1 {
            return Err(OpError::malformed(format!("group must be at least 1, got {group}")));
        }
        let group = usize::try_from(group).map_err(|_| OpError::limit(format!("group {group} is too large")))?;
        let (lo, hi) = (node.fused.min, node.fused.max);
        let clamp = (lo.is_some() || hi.is_some())
            .then(|| Clamp { lo: lo.unwrap_or(f32::NEG_INFINITY), hi: hi.unwrap_or(f32::INFINITY) });
        let channel_max = node.fused.channel_max.clone();
        Ok(Conv { window: WindowAttrs::from_node(node, false)?, group, clamp, channel_max })
    }

    /// The window attributes (kernel from the weights, strides, dilations, pads, `auto_pad`).
    pub fn window(&self) -> &WindowAttrs {
        &self.window
    }

    /// `group`.
    pub fn group(&self) -> usize {
        self.group
    }

    /// The fused activation's bounds, applied in the store.
    pub fn clamp(&self) -> Option<Clamp> {
        self.clamp
    }

    /// Fused per-output-channel upper bounds (one value: every channel).
    pub fn channel_max(&self) -> Option<&[f32]> {
        self.channel_max.as_deref()
    }

    /// Checks the input `x`, weight `w` and bias shapes against each other and the attributes.
    pub(crate) fn plan(&self, x: &[usize], w: &[usize], bias: Option<&[usize]>) -> Result<Plan, OpError> {
        if x.len() < 3 {
            return Err(OpError::mismatch(format!("input X must be [N, C, spatial…] (rank ≥ 3), got shape {x:?}")));
        }
        if w.len() != x.len() {
            return Err(OpError::mismatch(format!(
                "weight W has shape {w:?}: its rank should equal the input's ({})",
                x.len()
            )));
        }
        let (batch, in_channels) = (x[0], x[1]);
        let (out_channels, per_group) = (w[0], w[1]);
        let g = self.group;
        if per_group.checked_mul(g) != Some(in_channels) {
            return Err(OpError::mismatch(format!(
                "the input has {in_channels} channels but W {w:?} expects {per_group} per group × {g} group(s)"
            )));
        }
        if out_channels % g != 0 {
            return Err(OpError::mismatch(format!(
                "W has {out_channels} output channels, not a multiple of group = {g}"
            )));
        }
        if let Some(b) = bias {
            if b != [out_channels] {
                return Err(OpError::mismatch(format!("bias B should have shape [{out_channels}], got {b:?}")));
            }
        }
        let window = self.window.resolve(&x[2..], &w[2..])?;
        let mut out_shape = vec![batch, out_channels];
        out_shape.extend_from_slice(&window.output);
        checked_numel(&out_shape)?;
        Ok(Plan { batch, in_channels, out_channels, window, out_shape })
    }
}

impl Op for Conv {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        conv_like_infer(inputs, &|x, w, b| self.plan(x, w, b))
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let ConvArgs { x, w, b, plan } = conv_like_args(inputs, &|x, w, b| self.plan(x, w, b))?;
        let mut out = conv(&plan, self.group, self.clamp, x, w, b)?;
        if let Some(m) = &self.channel_max {
            apply_channel_max(&mut out, m, &plan)?;
        }
        Ok(vec![f32_output(plan.out_shape, out)?])
    }

    /// The gradients of X, W and B, through im2col: per image and group,
    /// `dW += dY · colsᵀ`, `dcols = Wᵀ · dY` folded back with `col2im`, `dB = Σ dY`. A fused
    /// clamp passes the gradient only where the output lies strictly inside its bounds.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, outputs, grads, .. } = *b;
        let x = f32_input(inputs, 0, "X")?;
        let w = f32_input(inputs, 1, "W")?;
        let shape = |i: usize| super::input_shape(inputs, i);
        let plan = self.plan(shape(0).unwrap_or_default(), shape(1).unwrap_or_default(), shape(2))?;
        let Some(g) = out_grad(grads, 0, checked_numel(&plan.out_shape)?)? else {
            return Ok(vec![None; inputs.len()]);
        };
        let mut dy = g.to_vec();
        if self.clamp.is_some() || self.channel_max.is_some() {
            let y = f32_in(outputs, 0)?.as_f32().map_err(OpError::internal)?;
            let mut top = y.to_vec();
            let c = self.clamp.unwrap_or(Clamp { lo: f32::NEG_INFINITY, hi: f32::INFINITY });
            top.iter_mut().for_each(|v| *v = c.hi);
            if let Some(m) = &self.channel_max {
                apply_channel_max(&mut top, m, &plan)?;
            }
            for ((d, &y), &hi) in dy.iter_mut().zip(y).zip(&top) {
                if y <= c.lo || y >= hi {
                    *d = 0.0;
                }
            }
        }
        let (dx, dw, db) = conv_backward(&plan, self.group, x, w, &dy, b.needs(0))?;
        let mut out: Grads = vec![
            dx.map(|dx| f32_tensor(plan_input_shape(&plan), dx)),
            Some(f32_tensor(shape(1).unwrap_or_default().to_vec(), dw)),
        ];
        out.push(inputs.get(2).copied().flatten().map(|b| f32_tensor(b.shape.clone(), db)));
        out.truncate(inputs.len());
        Ok(out)
    }
}

/// X's shape from a resolved plan.
fn plan_input_shape(plan: &Plan) -> Vec<usize> {
    let mut s = vec![plan.batch, plan.in_channels];
    s.extend_from_slice(&plan.window.input);
    s
}

/// `(dX, dW, dB)`, flat (`dX` only when asked for).
type ConvGrads = (Option<Vec<f32>>, Vec<f32>, Vec<f32>);

/// `(dX, dW, dB)` of a convolution for the output gradient `dy`; `dX` when `want_dx`.
fn conv_backward(
    plan: &Plan,
    group: usize,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    want_dx: bool,
) -> Result<ConvGrads, OpError> {
    let win = plan.window.lifted_to_2d();
    let in_plane: usize = win.input.iter().product();
    let out_plane: usize = win.output.iter().product();
    let ksize: usize = win.kernel.iter().product();
    let (cg, mg) = (plan.in_channels / group, plan.out_channels / group);
    let kdim = cg * ksize;
    let (mut dx, mut dw) = (vec![0.0f32; if want_dx { x.len() } else { 0 }], vec![0.0f32; w.len()]);
    let mut db = vec![0.0f32; plan.out_channels];
    if cg == 1 && mg == 1 && win.input.len() == 2 {
        // Depthwise: one filter per channel, no reduction over channels (GEMM would be all
        // overhead). Per image, runs of channels, one task each: each channel's dW, dB and dX
        // plane belong to one task, and the images add up in order.
        let c = plan.out_channels;
        let parts = parallel::split(c, parallel::tasks(c * ksize * out_plane * 2, c), 1);
        for n in 0..plan.batch {
            let xn = &x[n * c * in_plane..][..c * in_plane];
            let dyn_ = &dy[n * c * out_plane..][..c * out_plane];
            let dws = parallel::split_parts(&mut dw, ksize, &parts);
            let dbs = parallel::split_parts(&mut db, 1, &parts);
            let mut dxs: Vec<Option<&mut [f32]>> = if want_dx {
                parallel::split_parts(&mut dx[n * c * in_plane..][..c * in_plane], in_plane, &parts)
                    .into_iter()
                    .map(Some)
                    .collect()
            } else {
                parts.iter().map(|_| None).collect()
            };
            let mut pieces: Vec<_> = parts.iter().cloned().zip(dws).zip(dbs).zip(dxs.drain(..)).collect();
            parallel::for_each_mut(&mut pieces, |_, (((range, dw), db), dx)| {
                let mut scratch = Vec::new();
                for (i, ch) in range.clone().enumerate() {
                    let g = &dyn_[ch * out_plane..][..out_plane];
                    let dxp = dx.as_deref_mut().map(|d| &mut d[i * in_plane..][..in_plane]);
                    let (xp, f) = (&xn[ch * in_plane..][..in_plane], &w[ch * ksize..][..ksize]);
                    depthwise_plane_backward(xp, f, g, &win, &mut dw[i * ksize..][..ksize], dxp, &mut scratch);
                    db[i] += g.iter().sum::<f32>();
                }
            });
        }
        return Ok((want_dx.then_some(dx), dw, db));
    }
    // A 1×1 convolution with stride 1 and no padding reads X as its column matrix and writes
    // dX as its column gradient: no im2col, no col2im.
    let pointwise = win.kernel.iter().all(|&k| k == 1) && win.strides.iter().all(|&s| s == 1) && !win.has_padding();
    let scratch = if pointwise { 0 } else { kdim * out_plane };
    let mut cols = vec![0.0f32; scratch];
    let mut dcols = vec![0.0f32; if want_dx { scratch } else { 0 }];
    for n in 0..plan.batch {
        for g in 0..group {
            let xg = &x[(n * plan.in_channels + g * cg) * in_plane..][..cg * in_plane];
            let wg = MatRef::row_major(&w[g * mg * kdim..][..mg * kdim], mg, kdim)?;
            let dyg = &dy[(n * plan.out_channels + g * mg) * out_plane..][..mg * out_plane];
            let dyg_m = MatRef::row_major(dyg, mg, out_plane)?;
            let cols_m = if pointwise {
                MatRef::row_major(xg, kdim, out_plane)?
            } else {
                im2col(xg, cg, &win, 0..win.output[0], &mut cols);
                MatRef::row_major(&cols, kdim, out_plane)?
            };
            sgemm(1.0, dyg_m, cols_m.t(), Init::Accumulate, &mut dw[g * mg * kdim..][..mg * kdim], kdim)?;
            if want_dx {
                let dxg = &mut dx[(n * plan.in_channels + g * cg) * in_plane..][..cg * in_plane];
                if pointwise {
                    sgemm(1.0, wg.t(), dyg_m, Init::Zero, dxg, out_plane)?;
                } else {
                    sgemm(1.0, wg.t(), dyg_m, Init::Zero, &mut dcols, out_plane)?;
                    col2im(&dcols, cg, &win, dxg);
                }
            }
            for (m, row) in dyg.chunks_exact(out_plane).enumerate() {
                db[g * mg + m] += row.iter().sum::<f32>();
            }
        }
    }
    Ok((want_dx.then_some(dx), dw, db))
}

/// `y = min(y, max[c])` on each output channel `c` (NaN stays NaN, as in ONNX `Min`).
pub(crate) fn apply_channel_max<T: Copy + PartialOrd + Send + Sync>(
    out: &mut [T],
    max: &[T],
    plan: &Plan,
) -> Result<(), OpError> {
    if max.len() != plan.out_channels && max.len() != 1 {
        return Err(OpError::internal(format!(
            "{} fused channel bounds for {} output channels",
            max.len(),
            plan.out_channels
        )));
    }
    let plane = plan.out_shape[2..].iter().product::<usize>();
    if plane == 0 {
        return Ok(());
    }
    // Runs of planes, one task each (plane p is channel p % out_channels).
    let planes = out.len() / plane;
    let parts = parallel::split(planes, parallel::tasks(out.len(), planes), 1);
    let mut pieces: Vec<_> = parts.iter().cloned().zip(parallel::split_parts(out, plane, &parts)).collect();
    parallel::for_each_mut(&mut pieces, |_, (range, o)| {
        for (i, ch) in range.clone().zip(o.chunks_exact_mut(plane)) {
            let m = if max.len() == 1 { max[0] } else { max[i % plan.out_channels] };
            for v in ch {
                // A select, not a branch, so the loop vectorises (pminub for codes).
                *v = if *v > m { m } else { *v };
            }
        }
    });
    Ok(())
}

/// Runs a validated convolution plan.
fn conv(
    plan: &Plan,
    group: usize,
    clamp: Option<Clamp>,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
) -> Result<Vec<f32>, OpError> {
    let win = plan.window.lifted_to_2d();
    let in_plane: usize = win.input.iter().product();
    let out_plane: usize = win.output.iter().product();
    let ksize: usize = win.kernel.iter().product();
    let (cg, mg) = (plan.in_channels / group, plan.out_channels / group);
    let kdim = cg * ksize; // ≤ W's element count, which is known to fit
    let mut out = parallel::filled(checked_numel(&plan.out_shape)?, 0.0f32);
    if out.is_empty() {
        return Ok(out);
    }

    let depthwise = cg == 1 && win.input.len() == 2;
    let pointwise = win.kernel.iter().all(|&k| k == 1) && win.strides.iter().all(|&s| s == 1) && !win.has_padding();
    if depthwise {
        // Runs of whole output planes, one task each: plane p is image p / out_channels,
        // channel p % out_channels (whose filter, with one input channel per group, is the
        // p % out_channels-th of W and reads input channel (p % out_channels) / mg).
        let planes = plan.batch * plan.out_channels;
        let parts = parallel::split(planes, parallel::tasks(out.len() * ksize, planes), 1);
        let mut pieces: Vec<_> =
            parts.iter().cloned().zip(parallel::split_parts(&mut out, out_plane, &parts)).collect();
        parallel::for_each_mut(&mut pieces, |_, (range, o)| {
            let mut scratch = Vec::new();
            for (p, o) in range.clone().zip(o.chunks_exact_mut(out_plane)) {
                let (n, oc) = (p / plan.out_channels, p % plan.out_channels);
                let xg = &x[(n * plan.in_channels + oc / mg) * in_plane..][..in_plane];
                let filter = &w[oc * ksize..(oc + 1) * ksize];
                depthwise_plane(xg, filter, bias.map_or(0.0, |b| b[oc]), &win, clamp, o, &mut scratch);
            }
        });
        return Ok(out);
    }
    // Outermost output rows per im2col chunk.
    let oh = win.output[0];
    let inner_cols = out_plane / oh;
    let rows_per_chunk = (IM2COL_CHUNK / kdim.saturating_mul(inner_cols).max(1)).clamp(1, oh);

    for n in 0..plan.batch {
        for g in 0..group {
            let xg = &x[(n * plan.in_channels + g * cg) * in_plane..][..cg * in_plane];
            let wg = &w[g * mg * kdim..][..mg * kdim];
            let og = &mut out[(n * plan.out_channels + g * mg) * out_plane..][..mg * out_plane];
            let bg = bias.map(|b| &b[g * mg..][..mg]);
            let init = bg.map_or(Init::Zero, Init::RowBias);
            if pointwise {
                let a = MatRef::row_major(wg, mg, cg)?;
                let b = MatRef::row_major(xg, cg, in_plane)?;
                sgemm_clamped(1.0, a, b, init, clamp, og, out_plane)?;
            } else {
                // Runs of output rows, one task each: its own im2col chunks and its own
                // columns of the output.
                let a = MatRef::row_major(wg, mg, kdim)?;
                let parts = parallel::split(oh, parallel::tasks(mg * kdim * out_plane, oh), 1);
                let bands: Vec<_> = parts.iter().map(|r| r.start * inner_cols..r.end * inner_cols).collect();
                let mut blocks: Vec<_> =
                    parts.iter().cloned().zip(parallel::column_bands(og, mg, out_plane, &bands)).collect();
                parallel::try_for_each_mut(&mut blocks, |_, (rows, c)| {
                    let mut cols = Vec::new();
                    for r0 in rows.clone().step_by(rows_per_chunk) {
                        let chunk = r0..(r0 + rows_per_chunk).min(rows.end);
                        let ncols = chunk_cols(&win, &chunk);
                        cols.resize(kdim * ncols, 0.0);
                        im2col(xg, cg, &win, chunk, &mut cols);
                        let b = MatRef::row_major(&cols, kdim, ncols)?;
                        let at = (r0 - rows.start) * inner_cols;
                        let mut dst: Vec<&mut [f32]> = c.iter_mut().map(|r| &mut r[at..at + ncols]).collect();
                        sgemm_rows(1.0, a, b, init, clamp, &mut dst)?;
                    }
                    Ok::<(), OpError>(())
                })?;
            }
        }
    }
    Ok(out)
}
