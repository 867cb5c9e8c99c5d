//! TFLite's integer ops (`qplay.tfl.*`, the core's `ops::tflite`) on Flat8 and Flat16 tensors,
//! bit for bit as the CPU's (LiteRT's reference kernels): `TflConv` (CONV_2D,
//! DEPTHWISE_CONV_2D, FULLY_CONNECTED) in `tflconv.wgsl`, `TflBinary` (ADD, SUB, MUL, MAXIMUM,
//! MINIMUM) in `tflbinary.wgsl` (and there too `TflQuantize`'s integer → integer
//! requantization), `TflPool` (AVERAGE_POOL_2D, MAX_POOL_2D) in `tflpool.wgsl`, `TflMean` in
//! `tflmean.wgsl`, the resizes in `tflresize.wgsl` — on int8 and uint8 codes, and on 16x8
//! models' int16 codes (int64 biases: 64-bit sums); SOFTMAX on 8-bit codes. What stays on the
//! CPU: float QUANTIZE and DEQUANTIZE, a 16x8 FULLY_CONNECTED (LiteRT requantizes it in double
//! precision, which WGSL lacks), int16 SOFTMAX, uint8 bilinear resizes (LiteRT's are in
//! float), and a requantization between 8 and 16 bits.

use super::super::layout::Layout;
use super::elementwise::bcast_strides;
use super::{dims8, grid_1d, strides, window, Builder, Built, MAX_SERIAL};
use crate::uniforms::{
    TflbinaryUniform, TflconvUniform, TflmeanUniform, TflpoolUniform, TflresizeUniform, TflsoftmaxUniform,
};
use crate::GpuError;
use qplay_core::model::{DType, Data, StepInput};
use qplay_core::ops::nn::spatial;
use qplay_core::ops::tflite::binary::{Arith, TflBinary};
use qplay_core::ops::tflite::conv::{ConvKind, TflConv};
use qplay_core::ops::tflite::mean::TflMean;
use qplay_core::ops::tflite::pool::TflPool;
use qplay_core::ops::tflite::quantize::{Conversion, TflQuantize};
use qplay_core::ops::tflite::resize::TflResize;
use qplay_core::ops::tflite::softmax::TflSoftmax;

/// The range of codes of the kind the kernels' `signed` says (0 uint8, 1 int8, 2 int16).
fn code_range(codes: u32) -> (i32, i32) {
    match codes {
        0 => (0, 255),
        1 => (-128, 127),
        _ => (-32768, 32767),
    }
}

/// An integer operand: its buffer, shape and codes (0 uint8, 1 int8, 2 int16).
type Operand8 = (wgpu::Buffer, Vec<usize>, u32);

/// An integer operand: a Flat8 or Flat16 slot's buffer or an uploaded constant, with its shape
/// and codes.
fn operand8(b: &mut Builder<'_>, i: usize, inp: StepInput<'_>) -> Result<Option<Operand8>, GpuError> {
    match inp {
        StepInput::Slot(s) => {
            let Some(codes) = b.layout_of(s).and_then(Layout::flat_codes) else { return Ok(None) };
            let shape = b.plan.slot(s).2.to_vec();
            Ok(b.slot_buf(i, s)?.map(|buf| (buf, shape, codes)))
        }
        StepInput::Const(t) => match codes(&t.data) {
            Some((bytes, codes)) => Ok(Some((b.const_buf(i, "tflite constant", bytes)?, t.shape.clone(), codes))),
            None => Ok(None),
        },
        StepInput::Omitted => Ok(None),
    }
}

/// An integer tensor's codes as bytes (row-major, as Flat8 and Flat16 hold them), and their
/// kind (0 uint8, 1 int8, 2 int16).
fn codes(d: &Data) -> Option<(&[u8], u32)> {
    match d {
        Data::I8(v) => Some((bytemuck::cast_slice(v), 1)),
        Data::U8(v) => Some((v, 0)),
        Data::I16(v) => Some((bytemuck::cast_slice(v), 2)),
        _ => None,
    }
}

/// The dispatch of `len` output codes, four per invocation: (workgroups, invocations per row).
fn grid_codes(b: &Builder<'_>, len: usize) -> ([u32; 3], u32) {
    grid_1d(len.div_ceil(4), b.gpu.device.limits().max_compute_workgroups_per_dimension)
}

/// `qplay.tfl.Conv2D` / `DepthwiseConv2D` / `FullyConnected` with constant weights and bias.
pub(super) async fn conv(b: &mut Builder<'_>, i: usize, op: &TflConv) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let (Some(StepInput::Slot(xs)), Some(StepInput::Const(wt)), Some(Some(ys))) =
        (step.inputs.first().copied(), step.inputs.get(1).copied(), step.outputs.first().copied())
    else {
        return Ok(None);
    };
    let bias = match step.inputs.get(2).copied() {
        None | Some(StepInput::Omitted) => None,
        Some(StepInput::Const(t)) => Some(t),
        Some(StepInput::Slot(_)) => return Ok(None),
    };
    let (Some(codes_x), Some(codes_y)) =
        (b.layout_of(xs).and_then(Layout::flat_codes), b.layout_of(ys).and_then(Layout::flat_codes))
    else {
        return Ok(None);
    };
    let Some((wbytes, codes_w)) = codes(&wt.data) else { return Ok(None) };
    // 16x8: int16 codes, int8 weights; a 16x8 FULLY_CONNECTED requantizes in double (the CPU).
    let int16 = codes_x == 2;
    let weights_fit = if int16 { codes_w == 1 && op.kind != ConvKind::FullyConnected } else { codes_w == codes_x };
    if codes_x != codes_y || !weights_fit {
        return Ok(None);
    }
    let xshape = b.plan.slot(xs).2.to_vec();
    let Ok([gx, gw, gy]) = op.shapes(&xshape, &wt.shape) else { return Ok(None) };
    let o = gy[3];
    // The bias's bytes: int32, or int64 (16x8: then 64-bit sums, `wide`).
    let (bias, wide): (Vec<u8>, bool) = match bias.map(|t| &t.data) {
        None if int16 => (vec![0; 8 * o], true),
        None => (vec![0; 4 * o], false),
        Some(Data::I32(v)) if v.len() == o => (bytemuck::cast_slice(v).to_vec(), false),
        Some(Data::I64(v)) if v.len() == o && int16 => (bytemuck::cast_slice(v).to_vec(), true),
        _ => return Ok(None),
    };
    let per_channel = op.requant.len() > 1;
    if (per_channel && op.requant.len() != o) || op.requant.iter().any(|&(m, _)| m < 0) {
        return Ok(None);
    }
    let depthwise = op.kind == ConvKind::Depthwise;
    let c = gx[3];
    let mult = if depthwise { (o / c.max(1)).max(1) } else { 1 };
    let len: usize = gy.iter().product();
    let quad = o % 4 == 0 && c % 4 == 0 && mult == 1 && !int16;
    // An invocation's loops: four codes' taps times their channels (MAX_SERIAL).
    let taps = gw[1] * gw[2];
    if 4 * taps * if depthwise { 1 } else { c.max(1) } + 8 * taps > MAX_SERIAL {
        return Ok(None);
    }
    let win = spatial::Window {
        input: vec![gx[1], gx[2]],
        output: vec![gy[1], gy[2]],
        kernel: vec![gw[1], gw[2]],
        strides: op.strides.to_vec(),
        dilations: op.dilations.to_vec(),
        pad_begin: vec![op.pads[0], op.pads[1]],
        pad_end: vec![op.pads[2], op.pads[3]],
    };
    let (groups, row) = grid_codes(b, len);
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let wb = b.const_buf(i, "tflite weights", wbytes)?;
    let bb = b.const_buf(i, "tflite bias", &bias)?;
    let rq: Vec<i32> = op.requant.iter().flat_map(|&(m, s)| [m, s]).collect();
    let rb = b.const_buf(i, "tflite multipliers", bytemuck::cast_slice(&rq))?;
    let (code_lo, code_hi) = code_range(codes_x);
    let flag = |v: bool| u32::from(v);
    // 16x8 sums ignore the zero points (LiteRT's int16 kernels: both 0).
    let zps = if int16 { (0, 0) } else { (op.x_zp, op.w_zp) };
    let u = TflconvUniform {
        n: len.div_ceil(4) as u32,
        row,
        len: len as u32,
        c: c as u32,
        win: window(&win),
        o: o as u32,
        mult: mult as u32,
        depthwise: flag(depthwise),
        per_channel: flag(per_channel),
        x_zp: zps.0,
        w_zp: zps.1,
        y_zp: op.y_zp,
        signed: codes_x,
        act_lo: op.act.0,
        act_hi: op.act.1,
        code_lo,
        code_hi,
        quad: flag(quad),
        wide: flag(wide),
        _pad: [0; 2],
    };
    Ok(Some(vec![b.dispatch(i, &u, &[&xb, &wb, &bb, &rb, &yb], groups).await?]))
}

/// `qplay.tfl.Add` / `Sub` / `Mul` / `Maximum` / `Minimum` on integer codes, with broadcasting.
pub(super) async fn binary(b: &mut Builder<'_>, i: usize, op: &TflBinary) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let (Some(Some(ys)), 2) = (step.outputs.first().copied(), step.inputs.len()) else { return Ok(None) };
    let Some(signed) = b.layout_of(ys).and_then(Layout::flat_codes) else { return Ok(None) };
    let oshape = b.plan.slot(ys).2.to_vec();
    // ADD and SUB's left shift: 15 for int16 codes, 20 for 8-bit ones.
    let add_sub = matches!(op.arith, Arith::AddSub { .. });
    if oshape.len() > 8 || (add_sub && op.left_shift != if signed == 2 { 15 } else { 20 }) {
        return Ok(None);
    }
    let (Some(x), Some(z)) = (operand8(b, i, step.inputs[0])?, operand8(b, i, step.inputs[1])?) else {
        return Ok(None);
    };
    let (Some(sa), Some(sb)) = (bcast_strides(&x.1, &oshape), bcast_strides(&z.1, &oshape)) else { return Ok(None) };
    if x.2 != signed || z.2 != signed {
        return Ok(None);
    }
    let (code, sign, ma, mb, mo) = match op.arith {
        Arith::AddSub { sign, a, b, out } => (0, sign, a, b, out),
        Arith::Mul(m) => (1, 1, (0, 0), (0, 0), m),
        Arith::MaxMin(true) => (2, 1, (0, 0), (0, 0), (0, 0)),
        Arith::MaxMin(false) => (3, 1, (0, 0), (0, 0), (0, 0)),
    };
    let arith = Arith8 { code, sign, m: [ma, mb, mo], zps: op.zps, act: op.act, signed, left_shift: op.left_shift };
    binary_dispatch(b, i, ys, (&x, &z), (&sa, &sb), arith).await
}

/// What `tflbinary.wgsl` computes.
struct Arith8 {
    /// The uniform's `op`.
    code: u32,
    sign: i32,
    /// (multiplier, shift) of A, B and the output.
    m: [(i32, i32); 3],
    zps: [i32; 3],
    act: (i32, i32),
    /// The inputs' codes (0 uint8, 1 int8, 2 int16: then the output's too).
    signed: u32,
    /// ADD / SUB's left shift.
    left_shift: i32,
}

/// One `tflbinary.wgsl` dispatch into slot `ys` from A and B with broadcast strides.
async fn binary_dispatch(
    b: &mut Builder<'_>,
    i: usize,
    ys: usize,
    (x, z): (&Operand8, &Operand8),
    (sa, sb): (&[usize], &[usize]),
    a: Arith8,
) -> Result<Built, GpuError> {
    if a.m.iter().any(|&(m, _)| m < 0) {
        return Ok(None);
    }
    let Some(y_codes) = b.layout_of(ys).and_then(Layout::flat_codes) else { return Ok(None) };
    // The kernel writes the inputs' width: int16 in, int16 out.
    if (y_codes == 2) != (a.signed == 2) || (x.2 == 2) != (z.2 == 2) {
        return Ok(None);
    }
    let oshape = b.plan.slot(ys).2.to_vec();
    let len: usize = oshape.iter().product();
    let (groups, row) = grid_codes(b, len);
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let (code_lo, code_hi) = code_range(y_codes);
    let [za, zb, zc] = a.zps;
    let [ma, mb, mo] = a.m;
    let u = TflbinaryUniform {
        n: len.div_ceil(4) as u32,
        row,
        len: len as u32,
        op: a.code,
        sign: a.sign,
        left_shift: a.left_shift as u32,
        za,
        zb,
        zc,
        signed: a.signed,
        act_lo: a.act.0,
        act_hi: a.act.1,
        code_lo,
        code_hi,
        ma: [ma.0, ma.1],
        mb: [mb.0, mb.1],
        mo: [mo.0, mo.1],
        dims: dims8(&oshape, 1),
        sa: dims8(sa, 0),
        sb: dims8(sb, 0),
    };
    Ok(Some(vec![b.dispatch(i, &u, &[&x.0, &z.0, &yb], groups).await?]))
}

/// `qplay.tfl.Requantize` (TFLite's QUANTIZE from integer codes to integer codes of the same
/// width: 8-bit to 8-bit, int16 to int16).
pub(super) async fn quantize(b: &mut Builder<'_>, i: usize, op: &TflQuantize) -> Result<Built, GpuError> {
    let Conversion::Requantize(zin, m, zout) = op.conversion else { return Ok(None) };
    let step = b.plan.step(i);
    let (Some(inp), Some(Some(ys))) = (step.inputs.first().copied(), step.outputs.first().copied()) else {
        return Ok(None);
    };
    let Some(x) = operand8(b, i, inp)? else { return Ok(None) };
    let Some(y_codes) = b.layout_of(ys).and_then(Layout::flat_codes) else { return Ok(None) };
    let oshape = b.plan.slot(ys).2.to_vec();
    if x.1 != oshape || oshape.len() > 8 {
        return Ok(None);
    }
    let st = strides(&oshape);
    let arith = Arith8 {
        code: 4,
        sign: 1,
        m: [(0, 0), (0, 0), m],
        zps: [zin, 0, zout],
        act: code_range(y_codes),
        signed: x.2,
        left_shift: 0,
    };
    binary_dispatch(b, i, ys, (&x, &x), (&st, &st), arith).await
}

/// A one-input step from one NHWC Flat8 (or Flat16) tensor to another.
struct Nhwc8 {
    xs: usize,
    ys: usize,
    /// The input's codes (0 uint8, 1 int8, 2 int16).
    signed: u32,
    x: [usize; 4],
    y: [usize; 4],
}

/// A step's input 0 and output 0 when both are 8-bit codes (or both int16 ones, with `int16`),
/// and the input's codes (0 uint8, 1 int8, 2 int16).
fn flat8_io(b: &Builder<'_>, i: usize, int16: bool) -> Option<(usize, usize, u32)> {
    let step = b.plan.step(i);
    let (Some(StepInput::Slot(xs)), Some(Some(ys))) = (step.inputs.first().copied(), step.outputs.first().copied())
    else {
        return None;
    };
    let (x, y) = (b.layout_of(xs)?.flat_codes()?, b.layout_of(ys)?.flat_codes()?);
    ((x == 2) == (y == 2) && (x != 2 || int16)).then_some((xs, ys, x))
}

fn nhwc8(b: &Builder<'_>, i: usize, int16: bool) -> Option<Nhwc8> {
    let (xs, ys, signed) = flat8_io(b, i, int16)?;
    let x = <[usize; 4]>::try_from(b.plan.slot(xs).2).ok()?;
    let y = <[usize; 4]>::try_from(b.plan.slot(ys).2).ok()?;
    Some(Nhwc8 { xs, ys, signed, x, y })
}

/// `qplay.tfl.AveragePool2D` / `MaxPool2D` on integer codes whose every window overlaps the
/// image (else the CPU, which refuses an empty window).
pub(super) async fn pool(b: &mut Builder<'_>, i: usize, op: &TflPool) -> Result<Built, GpuError> {
    let Some(Nhwc8 { xs, ys, signed, x: [n, ih, iw, c], y: yshape }) = nhwc8(b, i, true) else { return Ok(None) };
    let [_, oh, ow, _] = yshape;
    let [kh, kw] = op.kernel;
    let p = op.pads;
    if p[0] >= kh || p[2] >= kh || p[1] >= kw || p[3] >= kw || n == 0 || 4 * kh * kw > MAX_SERIAL {
        return Ok(None);
    }
    let len: usize = yshape.iter().product();
    let (groups, row) = grid_codes(b, len);
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let (code_lo, code_hi) = code_range(signed);
    let v = |x: usize| x as u32;
    let u = TflpoolUniform {
        n: len.div_ceil(4) as u32,
        row,
        len: len as u32,
        c: v(c),
        ih: v(ih),
        iw: v(iw),
        oh: v(oh),
        ow: v(ow),
        kh: v(kh),
        kw: v(kw),
        sh: v(op.strides[0]),
        sw: v(op.strides[1]),
        pt: v(p[0]),
        pl: v(p[1]),
        average: u32::from(op.average),
        signed,
        act_lo: op.act.0,
        act_hi: op.act.1,
        code_lo,
        code_hi,
    };
    Ok(Some(vec![b.dispatch(i, &u, &[&xb, &yb], groups).await?]))
}

/// `qplay.tfl.ResizeNearest` on any codes and `qplay.tfl.ResizeBilinear` on int8 and int16
/// codes (uint8 bilinear, which LiteRT computes in float, stays on the CPU).
pub(super) async fn resize(b: &mut Builder<'_>, i: usize, op: &TflResize) -> Result<Built, GpuError> {
    let Some(Nhwc8 { xs, ys, signed, x: [_, ih, iw, c], y: yshape }) = nhwc8(b, i, true) else { return Ok(None) };
    let [_, oh, ow, _] = yshape;
    let codes = [DType::U8, DType::I8, DType::I16][signed as usize];
    let (Some(ty), Some(tx)) = (op.axis_taps(ih, oh, codes), op.axis_taps(iw, ow, codes)) else { return Ok(None) };
    let taps: Vec<i32> = ty.iter().chain(&tx).flat_map(|&(lo, hi, f)| [lo as i32, hi as i32, f, 0]).collect();
    let len: usize = yshape.iter().product();
    let (groups, row) = grid_codes(b, len);
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let tb = b.const_buf(i, "tflite resize taps", bytemuck::cast_slice(&taps))?;
    let v = |x: usize| x as u32;
    let u = TflresizeUniform {
        n: len.div_ceil(4) as u32,
        row,
        len: len as u32,
        c: v(c),
        ih: v(ih),
        iw: v(iw),
        oh: v(oh),
        ow: v(ow),
        bilinear: u32::from(op.bilinear),
        signed,
        _pad: [0; 2],
    };
    Ok(Some(vec![b.dispatch(i, &u, &[&xb, &tb, &yb], groups).await?]))
}

/// `qplay.tfl.Softmax` on 8-bit codes, rows shorter than 4096 (int16 softmax stays on the CPU).
pub(super) async fn softmax(b: &mut Builder<'_>, i: usize, op: &TflSoftmax) -> Result<Built, GpuError> {
    let Some((xs, ys, signed)) = flat8_io(b, i, false) else { return Ok(None) };
    let shape = b.plan.slot(xs).2.to_vec();
    let depth = shape.last().copied().unwrap_or(1).max(1);
    if depth >= 4096 {
        return Ok(None);
    }
    let len: usize = shape.iter().product();
    let (groups, row) = grid_codes(b, len);
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let tb = b.const_buf(i, "tflite softmax exp table", bytemuck::cast_slice(&op.exp_table()))?;
    let (code_lo, code_hi) = code_range(signed);
    let u = TflsoftmaxUniform {
        n: len.div_ceil(4) as u32,
        row,
        len: len as u32,
        depth: depth as u32,
        signed,
        code_lo,
        code_hi,
        _pad: 0,
    };
    Ok(Some(vec![b.dispatch(i, &u, &[&xb, &tb, &yb], groups).await?]))
}

/// `qplay.tfl.Mean` on integer codes over any axes (rank ≤ 8).
pub(super) async fn mean(b: &mut Builder<'_>, i: usize, op: &TflMean) -> Result<Built, GpuError> {
    let Some((xs, ys, signed)) = flat8_io(b, i, true) else { return Ok(None) };
    let shape = b.plan.slot(xs).2.to_vec();
    if shape.len() > 8 || op.axes.iter().any(|&a| a >= shape.len()) {
        return Ok(None);
    }
    let count: usize = op.axes.iter().map(|&a| shape[a]).product();
    let Ok((m, shift)) = op.multiplier(count) else { return Ok(None) };
    // An invocation sums four codes' `count` codes (MAX_SERIAL).
    if count == 0 || m < 0 || 4 * count > MAX_SERIAL {
        return Ok(None);
    }
    let kept: Vec<usize> = shape.iter().enumerate().map(|(d, &n)| if op.axes.contains(&d) { 1 } else { n }).collect();
    let reduced: Vec<usize> =
        shape.iter().enumerate().map(|(d, &n)| if op.axes.contains(&d) { n } else { 1 }).collect();
    let len: usize = kept.iter().product();
    let (groups, row) = grid_codes(b, len);
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let (code_lo, code_hi) = code_range(signed);
    let u = TflmeanUniform {
        n: len.div_ceil(4) as u32,
        row,
        len: len as u32,
        count: count as u32,
        signed,
        x_zp: op.zps.0,
        y_zp: op.zps.1,
        m,
        shift,
        code_lo,
        code_hi,
        _pad: [0; 5],
        dims: dims8(&kept, 1),
        rdims: dims8(&reduced, 1),
        istr: dims8(&strides(&shape), 0),
    };
    Ok(Some(vec![b.dispatch(i, &u, &[&xb, &yb], groups).await?]))
}
