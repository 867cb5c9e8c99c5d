//! `QLinearConv` and `ConvInteger`: convolution of 8-bit data with 8-bit weights, accumulated
//! exactly in `i32`.
//!
//! - `QLinearConv` (ONNX, opset 10): `y = saturate(round(Σ (x − zx)(w − zw) + B) · sx·sw/sy) + zy)`,
//!   weights per tensor or per output channel, int32 bias at scale `sx·sw`.
//! - `ConvInteger` (ONNX, opset 10): the exact `i32` sums, no bias, no scales.
//! - Planning's QDQ lowering ([`crate::model::lower_qdq`]) also emits `QLinearConv`
//!   with two internal attributes: [`FLOAT_OUTPUT_ATTR`] (write `Σ·sx·sw` as float32, for a
//!   convolution whose output is not re-quantized) and the fused activation bounds of
//!   [`Conv`], applied as a clamp in the output's domain.
//!
//! Kernels: a direct integer kernel for depthwise filters, and otherwise the packed int8 GEMM
//! ([`super::qgemm`]) on the input planes (1×1) or on an `im2col` unfolding padded with the
//! input zero-point. Packed weights are cached across runs while the weight tensor is the same.
//! The arithmetic itself, resolved once per input shape and type ([`QConv::spec`] →
//! [`QConvSpec`]), is in the `spec` submodule: the CPU kernels and other backends read the same.

use super::qgemm::{dw_dot4_mode, qgemm, qgemm_rows, Bytes, Epilogue, Out, PackedA, Params, PerIndex, QMat, Widen};
use super::simd::{codes_to_f32, dw3_plane, f32_to_i32_exact, interleave_rows, interleave_rows_even_odd, pair};
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::nn::conv::{apply_channel_max, Conv, Plan};
use crate::ops::nn::depthwise::depthwise_plane;
use crate::ops::nn::im2col::{chunk_cols, im2col_padded};
use crate::ops::nn::spatial::Window;
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};
use crate::parallel;
use std::sync::{Arc, Mutex};

mod dw_quads;
mod spec;
pub use spec::{ChannelMax, QConvOut, QConvSpec};

/// Internal attribute (not ONNX): the output is float32 `Σ · sx · sw` (no `y_scale`/`y_zero_point`).
pub const FLOAT_OUTPUT_ATTR: &str = "qplay.float_output";

/// Column-matrix bytes unfolded at once on the im2col path.
const IM2COL_CHUNK: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// ONNX QLinearConv: 8-bit output.
    QLinear,
    /// QLinearConv with [`FLOAT_OUTPUT_ATTR`]: float32 output.
    FloatOutput,
    /// ONNX ConvInteger: int32 output.
    Integer,
}

/// Packed weights of each group, with the identity of the tensor they came from.
type Packed = (usize, usize, Arc<Vec<PackedA>>);

/// A built `QLinearConv` or `ConvInteger` node.
#[derive(Debug)]
pub struct QConv {
    conv: Conv,
    kind: Kind,
    cache: Mutex<Option<Packed>>,
}

/// Builds `QLinearConv`.
pub fn build_qlinear(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let kind = if node.attrs.int(FLOAT_OUTPUT_ATTR, 0) != 0 { Kind::FloatOutput } else { Kind::QLinear };
    Ok(Box::new(QConv { conv: Conv::from_node(node)?, kind, cache: Mutex::new(None) }))
}

/// Builds `ConvInteger`.
pub fn build_integer(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(QConv { conv: Conv::from_node(node)?, kind: Kind::Integer, cache: Mutex::new(None) }))
}

/// Input positions of (x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias).
struct Slots {
    x: usize,
    sx: Option<usize>,
    zx: usize,
    w: usize,
    sw: Option<usize>,
    zw: usize,
    sy: Option<usize>,
    zy: Option<usize>,
    bias: Option<usize>,
}

impl Kind {
    fn slots(self) -> Slots {
        match self {
            Kind::Integer => Slots { x: 0, sx: None, zx: 2, w: 1, sw: None, zw: 3, sy: None, zy: None, bias: None },
            Kind::FloatOutput => {
                Slots { x: 0, sx: Some(1), zx: 2, w: 3, sw: Some(4), zw: 5, sy: None, zy: None, bias: Some(8) }
            }
            Kind::QLinear => {
                Slots { x: 0, sx: Some(1), zx: 2, w: 3, sw: Some(4), zw: 5, sy: Some(6), zy: Some(7), bias: Some(8) }
            }
        }
    }
}

fn is_q8(d: DType) -> bool {
    matches!(d, DType::U8 | DType::I8)
}

impl Op for QConv {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let s = self.kind.slots();
        let x = input_fact(inputs, s.x)?;
        let w = input_fact(inputs, s.w)?;
        if !is_q8(x.dtype) || !is_q8(w.dtype) {
            return Err(OpError::mismatch(format!(
                "x and w must be uint8 or int8, got {:?} and {:?}",
                x.dtype, w.dtype
            )));
        }
        let b = s.bias.and_then(|i| inputs.get(i).copied().flatten());
        if let Some(b) = b {
            if b.dtype != DType::I32 {
                return Err(OpError::mismatch(format!("bias must be int32, got {:?}", b.dtype)));
            }
        }
        let plan = self.conv.plan(&x.shape, &w.shape, b.map(|b| b.shape.as_slice()))?;
        let dtype = match self.kind {
            Kind::Integer => DType::I32,
            Kind::FloatOutput => DType::F32,
            Kind::QLinear => s.zy.and_then(|i| inputs.get(i).copied().flatten()).map_or(DType::U8, |f| f.dtype),
        };
        if self.kind == Kind::QLinear && !is_q8(dtype) {
            return Err(OpError::mismatch(format!("y_zero_point must be uint8 or int8, got {dtype:?}")));
        }
        Ok(vec![Fact::new(dtype, plan.out_shape)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let s = self.kind.slots();
        let x = input(inputs, s.x)?;
        let w = input(inputs, s.w)?;
        let spec = self.spec(&x.shape, x.dtype(), inputs)?;
        let plan = &spec.plan;
        let n_out = crate::ops::nn::checked_numel(&plan.out_shape)?;
        let mut data = match spec.out {
            QConvOut::I32 => Data::I32(vec![0; n_out]),
            QConvOut::F32 { .. } => Data::F32(vec![0.0; n_out]),
            QConvOut::Codes { dtype: DType::U8, .. } => Data::U8(vec![0; n_out]),
            QConvOut::Codes { .. } => Data::I8(vec![0; n_out]),
        };
        let (lo, hi) = match spec.out {
            QConvOut::F32 { lo, hi } => (lo, hi),
            _ => (f32::NEG_INFINITY, f32::INFINITY),
        };
        let (zy, qlo, qhi) = match spec.out {
            QConvOut::Codes { zero_point, lo, hi, .. } => (zero_point, lo, hi),
            _ => (0, 0, 0),
        };
        let cfg = Cfg {
            plan,
            group: spec.group,
            zx: spec.zx,
            zw: &spec.zw,
            bias: spec.bias.as_deref(),
            scale: &spec.scale,
            lo,
            hi,
            zy,
            qlo,
            qhi,
            // 8-bit outputs take their channels' bounds in the store; float ones below.
            cap: match &spec.channel_max {
                Some(ChannelMax::Codes(m)) => Some(m),
                _ => None,
            },
        };
        let wb = bytes_of(w)?;
        match &x.data {
            Data::U8(xd) => self.run(&cfg, xd, wb, &mut data)?,
            Data::I8(xd) => self.run(&cfg, xd, wb, &mut data)?,
            _ => return Err(OpError::mismatch(format!("x must be uint8 or int8, got {:?}", x.dtype()))),
        }
        match (&mut data, &spec.channel_max) {
            (_, None) => {}
            (Data::F32(v), Some(ChannelMax::F32(m))) => apply_channel_max(v, m, plan)?,
            (Data::U8(_) | Data::I8(_), Some(ChannelMax::Codes(_))) => {}
            _ => return Err(OpError::internal("an integer-output convolution cannot carry fused channel bounds")),
        }
        Ok(vec![Tensor { shape: plan.out_shape.clone(), data }])
    }
}

/// The epilogue of one group's convolution GEMM: rows are output channels.
fn per_channel_epilogue<'a>(
    za: PerIndex<'a, i32>,
    zx: i32,
    bias: Option<&'a [i32]>,
    scale: &'a [f32],
    row_max: Option<&'a [i32]>,
    out: Out<'a>,
    ldc: usize,
) -> Epilogue<'a> {
    Epilogue { za, zb: PerIndex::All(zx), bias, scale, scale_per_row: true, row_max, out, ldc }
}

/// Everything the kernels need besides the data.
struct Cfg<'a> {
    plan: &'a Plan,
    group: usize,
    zx: i32,
    zw: &'a [i32],
    bias: Option<&'a [i32]>,
    scale: &'a [f32],
    lo: f32,
    hi: f32,
    zy: i32,
    qlo: i32,
    qhi: i32,
    /// Per output channel, an upper bound on the 8-bit codes (a fused `Min`), or none.
    cap: Option<&'a [i32]>,
}

impl Cfg<'_> {
    /// The destination for output channels `c0..` of batch `n`, from element offset `at`.
    fn out<'d>(&self, data: &'d mut Data, at: usize) -> Out<'d> {
        match data {
            Data::I32(v) => Out::I32(&mut v[at..]),
            Data::F32(v) => Out::F32 { out: &mut v[at..], lo: self.lo, hi: self.hi },
            Data::U8(v) => Out::U8 { out: &mut v[at..], zero_point: self.zy, lo: self.qlo, hi: self.qhi },
            Data::I8(v) => Out::I8 { out: &mut v[at..], zero_point: self.zy, lo: self.qlo, hi: self.qhi },
            _ => unreachable!("output data is created by eval as one of the four types"),
        }
    }
}

fn bytes_of(t: &Tensor) -> Result<Bytes<'_>, OpError> {
    match &t.data {
        Data::U8(v) => Ok(Bytes::U8(v)),
        Data::I8(v) => Ok(Bytes::I8(v)),
        _ => Err(OpError::mismatch(format!("expected uint8 or int8 data, got {:?}", t.dtype()))),
    }
}

impl QConv {
    /// Weights of each group packed for the GEMM, cached by the weight tensor's address.
    fn packed(&self, w: Bytes<'_>, group: usize, mg: usize, kdim: usize) -> Result<Arc<Vec<PackedA>>, OpError> {
        let key = match w {
            Bytes::U8(v) => (v.as_ptr() as usize, v.len()),
            Bytes::I8(v) => (v.as_ptr() as usize, v.len()),
        };
        let mut cache = self.cache.lock().map_err(|_| OpError::internal("weight cache poisoned"))?;
        if let Some((p, l, packed)) = cache.as_ref() {
            if (*p, *l) == key {
                return Ok(packed.clone());
            }
        }
        let packed = (0..group)
            .map(|g| {
                let wg = match w {
                    Bytes::U8(v) => Bytes::U8(&v[g * mg * kdim..][..mg * kdim]),
                    Bytes::I8(v) => Bytes::I8(&v[g * mg * kdim..][..mg * kdim]),
                };
                PackedA::new(&QMat::row_major(wg, mg, kdim)?)
            })
            .collect::<Result<Vec<_>, OpError>>()?;
        let packed = Arc::new(packed);
        *cache = Some((key.0, key.1, packed.clone()));
        Ok(packed)
    }

    fn run<T: Widen>(&self, c: &Cfg<'_>, x: &[T], w: Bytes<'_>, out: &mut Data) -> Result<(), OpError> {
        let plan = c.plan;
        let win = plan.window.lifted_to_2d();
        let in_plane: usize = win.input.iter().product();
        let out_plane: usize = win.output.iter().product();
        let ksize: usize = win.kernel.iter().product();
        let (cg, mg) = (plan.in_channels / c.group, plan.out_channels / c.group);
        let kdim = cg * ksize;
        if out_plane == 0 || plan.out_channels == 0 {
            return Ok(());
        }
        if x.len() < plan.batch * plan.in_channels * in_plane {
            return Err(OpError::internal("x holds fewer elements than its shape says"));
        }
        if cg == 1 && win.input.len() == 2 && ksize <= EXACT_F32_TAPS {
            let direct_3x3 =
                win.kernel == [3, 3] && (win.strides == [1, 1] || win.strides == [2, 2]) && win.dilations == [1, 1];
            return if direct_3x3 { depthwise3x3(c, x, w, &win, out) } else { depthwise(c, x, w, &win, out) };
        }
        let packed = self.packed(w, c.group, mg, kdim)?;
        let pointwise = win.kernel.iter().all(|&k| k == 1) && win.strides.iter().all(|&s| s == 1) && !win.has_padding();
        let oh = win.output[0];
        let inner_cols = out_plane / oh;
        let rows_per_chunk = (IM2COL_CHUNK / kdim.saturating_mul(inner_cols).max(1)).clamp(1, oh);
        let pad = T::from_i32(c.zx);
        for n in 0..plan.batch {
            for g in 0..c.group {
                let xg = &x[(n * plan.in_channels + g * cg) * in_plane..][..cg * in_plane];
                let c0 = g * mg;
                let at = (n * plan.out_channels + c0) * out_plane;
                let zw = &c.zw[c0..c0 + mg];
                let bias = c.bias.map(|b| &b[c0..c0 + mg]);
                let scale = if c.scale.len() == 1 { c.scale } else { &c.scale[c0..c0 + mg] };
                let row_max = c.cap.map(|m| &m[c0..c0 + mg]);
                let za = if zw.iter().all(|&z| z == 0) { PerIndex::All(0) } else { PerIndex::Each(zw) };
                if pointwise {
                    let b = QMat::row_major(T::bytes(xg), cg, in_plane)?;
                    qgemm(
                        &packed[g],
                        &b,
                        per_channel_epilogue(za, c.zx, bias, scale, row_max, c.out(out, at), out_plane),
                    )?;
                } else {
                    // Runs of output rows, one task each: its own im2col chunks and its own
                    // columns of the output.
                    let p = Params { za, zb: PerIndex::All(c.zx), bias, scale, scale_per_row: true, row_max };
                    let parts = parallel::split(oh, parallel::tasks(mg * kdim * out_plane, oh), 1);
                    let bands: Vec<_> = parts.iter().map(|r| r.start * inner_cols..r.end * inner_cols).collect();
                    let dst = c.out(out, at).column_bands(mg, out_plane, &bands);
                    let mut blocks: Vec<_> = parts.iter().cloned().zip(dst).collect();
                    parallel::try_for_each_mut(&mut blocks, |_, (rows, dst)| {
                        let mut cols: Vec<T> = Vec::new();
                        for r0 in rows.clone().step_by(rows_per_chunk) {
                            let chunk = r0..(r0 + rows_per_chunk).min(rows.end);
                            let ncols = chunk_cols(&win, &chunk);
                            cols.resize(kdim * ncols, pad);
                            im2col_padded(xg, cg, &win, chunk, pad, &mut cols);
                            let b = QMat::row_major(T::bytes(&cols), kdim, ncols)?;
                            let at = (r0 - rows.start) * inner_cols;
                            let mut o: Vec<Out<'_>> = dst.iter_mut().map(|d| d.slice(at..at + ncols)).collect();
                            qgemm_rows(&packed[g], &b, &p, &mut o)?;
                        }
                        Ok::<(), OpError>(())
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// Largest kernel for which `depthwise` is exact: `taps · 255² < 2²⁴`, so every product and
/// partial sum of the float kernel is an integer f32 holds exactly.
pub const EXACT_F32_TAPS: usize = (1 << 24) / (255 * 255);

/// Depthwise kernel: per channel, `Σ (w − zw)(x − zx)` over the window. The offset integers are
/// exact in f32 and so are their sums over at most [`EXACT_F32_TAPS`] taps, so the float
/// depthwise kernel computes the integer sums exactly; the shared epilogue then adds the bias
/// and requantizes.
fn depthwise<T: Widen>(c: &Cfg<'_>, x: &[T], w: Bytes<'_>, win: &Window, out: &mut Data) -> Result<(), OpError> {
    let plan = c.plan;
    let ksize = win.kernel[0] * win.kernel[1];
    let (in_plane, out_plane) = (win.input[0] * win.input[1], win.output[0] * win.output[1]);
    let mg = plan.out_channels / c.group;
    // Runs of (image, group) units, one task each; a unit's mg output planes are contiguous.
    let units = plan.batch * c.group;
    let parts = parallel::split(units, parallel::tasks(units * mg * out_plane * ksize, units), 1);
    let mut pieces: Vec<_> = parts.iter().cloned().zip(c.out(out, 0).parts(mg * out_plane, &parts)).collect();
    parallel::for_each_mut(&mut pieces, |_, (range, dst)| {
        let mut xf = vec![0f32; in_plane];
        let mut filt = vec![0f32; ksize];
        let mut accf = vec![0f32; out_plane];
        let mut acc = vec![0i32; out_plane];
        let mut scratch = Vec::new();
        for t in range.clone() {
            let (n, g) = (t / c.group, t % c.group);
            let src = &x[(n * plan.in_channels + g) * in_plane..][..in_plane];
            codes_to_f32(src, c.zx, &mut xf);
            for j in 0..mg {
                let ch = g * mg + j;
                for (tap, d) in filt.iter_mut().enumerate() {
                    let v = match w {
                        Bytes::U8(v) => v[ch * ksize + tap] as i32,
                        Bytes::I8(v) => v[ch * ksize + tap] as i32,
                    };
                    *d = (v - c.zw[ch]) as f32;
                }
                depthwise_plane(&xf, &filt, 0.0, win, None, &mut accf, &mut scratch);
                f32_to_i32_exact(&accf, &mut acc);
                // |sums| < 2²⁴ here, so a bias within ±2³⁰ cannot overflow the lane arithmetic.
                let bias = c.bias.map_or(0, |b| b[ch]).clamp(-(1 << 30), 1 << 30);
                let scale = if c.scale.len() == 1 { c.scale[0] } else { c.scale[ch] };
                // |x − zx| ≤ 255, so |Σ (w − zw)(x − zx)| ≤ 255·Σ|w − zw|.
                let vmax = filt.iter().map(|w| w.abs() as u64).sum::<u64>() * 255;
                dst.capped(c.cap.map(|m| m[ch])).store_run_within(
                    ((t - range.start) * mg + j) * out_plane,
                    &acc,
                    bias,
                    scale,
                    vmax,
                );
            }
        }
    });
    Ok(())
}

/// Depthwise 3×3, stride 1 or 2, in integers: each channel's input is copied into a plane
/// padded with the zero-point (so `Σ w·(x − zx) = Σ w·x_padded − zx·Σw`), then each pair of
/// consecutive padded rows is widened to `i16` and interleaved, so one [`I32x4::dot_add`]
/// applies the taps of two filter rows to four outputs; the third filter row is paired with a
/// zero weight. For stride 2 each interleaved row is stored as its even columns then its odd
/// ones, so the three taps of four outputs are contiguous reads. Six dot steps per four outputs,
/// all exact; each channel's sums are requantized in one run.
fn depthwise3x3<T: Widen>(c: &Cfg<'_>, x: &[T], w: Bytes<'_>, win: &Window, out: &mut Data) -> Result<(), OpError> {
    let plan = c.plan;
    let stride = win.strides[0];
    let (h, wd) = (win.input[0], win.input[1]);
    let (oh, ow) = (win.output[0], win.output[1]);
    let (pt, pl) = (win.pad_begin[0], win.pad_begin[1]);
    let pw = wd + pl + win.pad_end[1];
    let ph = h + pt + win.pad_end[0];
    let ow4 = ow.div_ceil(4) * 4;
    // Pairs per interleaved row (`qw`, a multiple of 16 so the row builders run whole vectors)
    // and the pair offset of each tap kx for output 0: stride 1 reads ox + kx; stride 2 reads
    // even[ox], odd[ox], even[ox + 1] with the odd half at `half`.
    let (qw, offsets) = if stride == 1 {
        ((pw.max(ow4 + 2)).div_ceil(16) * 16, [0, 1, 2])
    } else {
        let half = pw.div_ceil(2).max(ow4 + 1).div_ceil(8) * 8;
        (2 * half, [0, half, 1])
    };
    let in_plane = h * wd;
    let mg = plan.out_channels / c.group;
    let n4 = ow4 / 4;
    // Interleaved rows the outputs read: y0 and y0 + 2 for y0 = stride·oy; at stride 1 two
    // output rows at a time (y0 even) read the same two, so only even rows are made.
    let last_q = stride * (oh - 1) + 2;
    // The four-byte dot product where the engine has an exact one (int8 weights without
    // zero-points: each tap a byte).
    let quads = match w {
        Bytes::I8(wv) if (0..plan.out_channels).all(|ch| c.zw[ch] == 0) => dw_dot4_mode().map(|f| (f, wv)),
        _ => None,
    };
    // Runs of (image, group) units, one task each; a unit's mg output planes are contiguous.
    let units = plan.batch * c.group;
    let parts = parallel::split(units, parallel::tasks(units * mg * oh * ow * 9, units), 1);
    let mut pieces: Vec<_> = parts.iter().cloned().zip(c.out(out, 0).parts(mg * oh * ow, &parts)).collect();
    parallel::for_each_mut(&mut pieces, |_, (range, dst)| {
        let zx = T::from_i32(c.zx);
        // The padded plane of the four-byte path (one extra row of padding for the last row
        // quad), `qw` columns; only its interior is rewritten, so the padding stays the
        // zero-point.
        let mut padded = vec![zx; if quads.is_some() { (ph + 1) * qw } else { 0 }];
        // q[y] = interleave(padded[y], padded[y + 1]), pairs of i16 (split even/odd for stride
        // 2), built straight from the source rows: only the columns of the source are
        // rewritten, so the padding pairs stay the zero-point.
        let mut q = vec![zx.widen(); if quads.is_some() { 0 } else { ph * qw * 2 }];
        // A padding row, as a source row.
        let zrow = vec![zx; wd];
        // One channel's sums, row after row (stride ow), with room for the last row's spill
        // (and, on the four-byte path, the row after an odd last one).
        let mut accp = vec![0i32; (oh + 1) * ow + ow4];
        // Quad rows: one per two output rows at stride 1, one per output row at stride 2.
        let quad_count = if stride == 1 { oh.div_ceil(2) } else { oh };
        let mut quad_rows = vec![0u8; if quads.is_some() { quad_count * 4 * qw } else { 0 }];
        for t in range.clone() {
            let (n, g) = (t / c.group, t % c.group);
            let src = &x[(n * plan.in_channels + g) * in_plane..][..in_plane];
            if let Some((form, wv)) = quads {
                for (y, srow) in src.chunks_exact(wd).enumerate() {
                    copy_bytes(srow, &mut padded[(pt + y) * qw + pl..][..wd]);
                }
                let (flip, shift) = (form.flip(T::SIGNED), form.shift(T::SIGNED));
                // SAFETY: `T` is one byte (u8 or i8: `copy_bytes` asserts it), so the plane
                // reads as bytes.
                let pb = unsafe { std::slice::from_raw_parts(padded.as_ptr().cast::<u8>(), padded.len()) };
                for (y2, qr) in quad_rows.chunks_exact_mut(4 * qw).enumerate() {
                    // Rows 2·y2 … 2·y2 + 3: output rows 2·y2 and 2·y2 + 1 at stride 1, y2 at 2.
                    let row = |t: usize| &pb[(2 * y2 + t) * qw..][..qw];
                    let rows = [row(0), row(1), row(2), row(3)];
                    if stride == 1 {
                        dw_quads::interleave4(rows, qw, flip, qr);
                    } else {
                        let (even, odd) = qr.split_at_mut(2 * qw);
                        dw_quads::interleave4_even_odd(rows, qw, flip, even, odd);
                    }
                }
                for j in 0..mg {
                    let ch = g * mg + j;
                    let taps: [i8; 9] = wv[ch * 9..ch * 9 + 9].try_into().expect("nine taps");
                    let (a, b) = dw_quads::filter_quads(taps);
                    let wsum: i32 = taps.iter().map(|&t| t as i32).sum();
                    for (y2, qr) in quad_rows.chunks_exact(4 * qw).enumerate() {
                        if stride == 1 {
                            dw_quads::rows2(form, qr, a, b, n4, &mut accp, 2 * y2 * ow, (2 * y2 + 1) * ow);
                        } else {
                            dw_quads::row1(form, qr, a, qw / 2, n4, &mut accp, y2 * ow);
                        }
                    }
                    let bias = c.bias.map_or(0, |b| b[ch]).clamp(-(1 << 30), 1 << 30);
                    let scale = if c.scale.len() == 1 { c.scale[0] } else { c.scale[ch] };
                    let at = ((t - range.start) * mg + j) * oh * ow;
                    // The sums are Σ w·x' over codes |x'| ≤ 255 (flipped where the form reads them so).
                    let vmax = taps.iter().map(|&t| (t as i32).unsigned_abs() as u64).sum::<u64>() * 255;
                    dst.capped(c.cap.map(|m| m[ch])).store_run_within(
                        at,
                        &accp[..oh * ow],
                        bias - (c.zx + shift) * wsum,
                        scale,
                        vmax,
                    );
                }
                continue;
            }
            // Padded row y: a source row, or the zero-point.
            let row = |y: usize| if (pt..pt + h).contains(&y) { &src[(y - pt) * wd..][..wd] } else { &zrow[..] };
            // Only the interleaved rows at even y are read.
            for y in (0..=last_q).step_by(2) {
                let (r0, r1) = (row(y), row(y + 1));
                let qrow = &mut q[y * qw * 2..][..qw * 2];
                if stride == 1 {
                    interleave_rows(r0, r1, wd, &mut qrow[2 * pl..]);
                } else {
                    // Padded column pl + x: source column x lands in the even half when
                    // pl + x is even, at pair (pl + x) / 2.
                    let (even, odd) = qrow.split_at_mut(qw);
                    let (xe, xo) = if pl % 2 == 0 {
                        (&mut even[pl..], &mut odd[pl..])
                    } else {
                        (&mut odd[pl - 1..], &mut even[pl + 1..])
                    };
                    interleave_rows_even_odd(r0, r1, wd, xe, xo);
                }
            }
            for j in 0..mg {
                let ch = g * mg + j;
                let tap = |t: usize| -> i16 {
                    let v = match w {
                        Bytes::U8(v) => v[ch * 9 + t] as i32,
                        Bytes::I8(v) => v[ch * 9 + t] as i32,
                    };
                    (v - c.zw[ch]) as i16
                };
                // Filter rows 0+1 as pairs, row 2 paired with 0; and Σw for the zx correction.
                let w01: [i32; 3] = std::array::from_fn(|kx| pair(tap(kx), tap(3 + kx)));
                let w2: [i32; 3] = std::array::from_fn(|kx| pair(tap(6 + kx), 0));
                let wsum: i32 = (0..9).map(|t| tap(t) as i32).sum();
                // |Σ| ≤ 9·255² < 2²³, so the bias within ±2³⁰ and the zx term cannot overflow.
                let bias = c.bias.map_or(0, |b| b[ch]).clamp(-(1 << 30), 1 << 30);
                let scale = if c.scale.len() == 1 { c.scale[0] } else { c.scale[ch] };
                let at = ((t - range.start) * mg + j) * oh * ow;
                let add = bias - c.zx * wsum;
                // Rows oy and oy + 1 at stride 1 from q[oy] (input rows oy, oy + 1) and q[oy + 2]
                // (oy + 2, oy + 3): the second output row pairs filter row 0 with input row
                // oy + 1 and filter rows 1, 2 with oy + 2, oy + 3. The filter pairs are built
                // once per channel and passed by reference: rebuilt for each call, they were
                // stored as words and read back as vectors, which stalls.
                let wz0: [i32; 3] = std::array::from_fn(|kx| pair(0, tap(kx)));
                let w12: [i32; 3] = std::array::from_fn(|kx| pair(tap(3 + kx), tap(6 + kx)));
                let w4 = [w01, w2, wz0, w12];
                dw3_plane(&q, qw * 2, stride, offsets, &w4, (oh, ow, n4), &mut accp);
                // The sums are Σ w·x over the padded codes, |x| ≤ 255.
                let vmax = (0..9).map(|t| (tap(t) as i32).unsigned_abs() as u64).sum::<u64>() * 255;
                dst.capped(c.cap.map(|m| m[ch])).store_run_within(at, &accp[..oh * ow], add, scale, vmax);
            }
        }
    });
    Ok(())
}

/// `dst.copy_from_slice(src)` for byte rows, in sixteen-byte moves (the last one overlapping)
/// rather than a `memcpy` call per row, which costs more than the copy for short rows.
fn copy_bytes<T: Widen>(src: &[T], dst: &mut [T]) {
    let n = src.len();
    assert!(n == dst.len() && std::mem::size_of::<T>() == 1, "copy_bytes copies byte rows of equal lengths");
    let (ps, pd) = (src.as_ptr().cast::<u8>(), dst.as_mut_ptr().cast::<u8>());
    // SAFETY: `T` is one byte (u8 or i8) and both slices hold n bytes: every move below reads
    // and writes within `0..n`; `src` and `dst` are distinct borrows, so they do not overlap.
    // Fixed-size copies compile to one (unaligned) vector or word load and store.
    unsafe {
        if n >= 16 {
            // The clamped offset (the last move overlapping) also keeps the loop from being
            // turned back into one `memcpy` call.
            let mut k = 0;
            while k < n {
                let at = k.min(n - 16);
                std::ptr::copy_nonoverlapping(ps.add(at), pd.add(at), 16);
                k += 16;
            }
        } else if n >= 8 {
            std::ptr::copy_nonoverlapping(ps, pd, 8);
            std::ptr::copy_nonoverlapping(ps.add(n - 8), pd.add(n - 8), 8);
        } else {
            for k in 0..n {
                *pd.add(k) = *ps.add(k);
            }
        }
    }
}
