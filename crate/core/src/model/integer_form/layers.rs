//! CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV, the pools and MEAN in integer ONNX: exact
//! int32 sums (`ConvInteger`, `MatMulInteger`, `ReduceSum`), then TFLite's requantization
//! ([`super::emit::Emit::mbqm`]). The convolutions run in ONNX's NCHW between two transposes;
//! taps outside the image are padded with the input zero point, so they add nothing to
//! `w · (x − x_zp)`, as TFLite's loops skip them.

use super::emit::{scalar_of, Emit};
use super::Ctx;
use crate::model::{Attr, DType, Data, Node, Tensor};
use crate::ops::tflite::conv::{ConvKind, TflConv};
use crate::ops::tflite::mean::TflMean;
use crate::ops::tflite::pool::TflPool;
use crate::ops::tflite::transpose_conv::TflTransposeConv;
use crate::ops::{Fact, Op};
use std::sync::Arc;

const TO_NCHW: [i64; 4] = [0, 3, 1, 2];
const TO_NHWC: [i64; 4] = [0, 2, 3, 1];

fn ints(v: &[usize]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}

/// `x` (NCHW) padded by `[top, left, bottom, right]` with `value` of its type.
fn pad(e: &mut Emit, x: &str, pads: [usize; 4], value: Tensor) -> String {
    if pads == [0; 4] {
        return x.to_string();
    }
    let [t, l, b, r] = pads.map(|p| p as i64);
    let p = e.i64s(vec![0, 0, t, l, 0, 0, b, r]);
    let v = e.constant(value);
    e.op("Pad", &[x, &p, &v], vec![])
}

/// A layer with weights: its built op, input, code type, weights and their fact.
fn weighted<'n, 'c, T: Op>(n: &'n Node, cx: &'c Ctx) -> Result<(Arc<T>, &'n str, DType, &'n str, &'c Fact), String> {
    let op = cx.built::<T>(n)?;
    let x = cx.input(n, 0)?;
    let xt = cx.code_type(x)?;
    let w = cx.input(n, 1)?;
    Ok((op, x, xt, w, cx.fact(w)?))
}

/// int32 sums (NHWC, or channels last) plus the optional int32 bias, requantized per channel,
/// plus the zero point, clamped to the activation's range, as `out`.
fn requantize_sums(
    e: &mut Emit,
    bias: Option<&str>,
    sums: String,
    requant: &[(i32, i32)],
    (zp, act): (i32, (i32, i32)),
    t: DType,
    out: &str,
) {
    let mut sums = sums;
    if let Some(b) = bias {
        sums = e.op("Add", &[&sums, b], vec![]);
    }
    let wide = e.cast(&sums, DType::I64);
    let y = e.mbqm(&wide, requant);
    e.finish(&y, zp, act, t, out);
}

/// CONV_2D and DEPTHWISE_CONV_2D.
pub(super) fn conv(e: &mut Emit, n: &Node, cx: &Ctx) -> Result<(), String> {
    let (op, x, xt, w, wf) = weighted::<TflConv>(n, cx)?;
    if op.kind == ConvKind::FullyConnected {
        return fully_connected(e, n, cx);
    }
    if wf.value.is_none() || wf.shape.len() != 4 {
        return Err("its weights are not a constant 4-D tensor".into());
    }
    let channels = cx.fact(x)?.shape.get(3).copied().unwrap_or(1);
    // OHWI → OIHW; a depthwise 1HWO → O1HW with one group per input channel.
    let (wn, group) = match op.kind {
        ConvKind::Depthwise => (e.transpose(w, &[3, 0, 1, 2]), channels),
        _ => (e.transpose(w, &TO_NCHW), 1),
    };
    let xn = e.transpose(x, &TO_NCHW);
    let xn = pad(e, &xn, op.pads, scalar_of(xt, op.x_zp));
    let zx = e.constant(scalar_of(xt, op.x_zp));
    let zw = e.constant(scalar_of(wf.dtype, op.w_zp));
    let attrs =
        vec![("strides", ints(&op.strides)), ("dilations", ints(&op.dilations)), ("group", Attr::Int(group as i64))];
    let sums = e.op("ConvInteger", &[&xn, &wn, &zx, &zw], attrs);
    let sums = e.transpose(&sums, &TO_NHWC);
    requantize_sums(e, cx.optional_input(n, 2), sums, &op.requant, (op.y_zp, op.act), xt, &n.outputs[0]);
    Ok(())
}

/// FULLY_CONNECTED: the input as `[·, I]` rows times the `OI` weights, shaped back as TFLite
/// shapes the output.
pub(super) fn fully_connected(e: &mut Emit, n: &Node, cx: &Ctx) -> Result<(), String> {
    let (op, x, xt, w, wf) = weighted::<TflConv>(n, cx)?;
    let [_, depth] = wf.shape[..] else { return Err("its weights are not a 2-D tensor".into()) };
    let rows = e.i64s_shaped(vec![-1, depth as i64], vec![2]);
    let x2 = e.op("Reshape", &[x, &rows], vec![]);
    let wt = e.transpose(w, &[1, 0]);
    let (zx, zw) = (e.constant(scalar_of(xt, op.x_zp)), e.constant(scalar_of(wf.dtype, op.w_zp)));
    let sums = e.op("MatMulInteger", &[&x2, &wt, &zx, &zw], vec![]);
    let flat = e.fresh();
    requantize_sums(e, cx.optional_input(n, 2), sums, &op.requant, (op.y_zp, op.act), xt, &flat);
    let shape = cx.fact(&n.outputs[0])?.shape.iter().map(|&d| d as i64).collect::<Vec<_>>();
    let len = shape.len();
    let s = e.i64s_shaped(shape, vec![len]);
    e.op_to("Reshape", &[&flat, &s], &n.outputs[0], vec![]);
    Ok(())
}

/// MAX_POOL_2D (ONNX's MaxPool skips the padding as TFLite's loop does) and AVERAGE_POOL_2D
/// (the sum of the codes inside the image, divided by their count rounding half away from
/// zero).
pub(super) fn pool(e: &mut Emit, n: &Node, cx: &Ctx) -> Result<(), String> {
    let op = cx.built::<TflPool>(n)?;
    let x = cx.input(n, 0)?;
    let xt = cx.code_type(x)?;
    let &[_, h, w, c] = &cx.fact(x)?.shape[..] else { return Err("its input is not 4-D".into()) };
    let xn = e.transpose(x, &TO_NCHW);
    let [t, l, b, r] = op.pads;
    if !op.average {
        let attrs =
            vec![("kernel_shape", ints(&op.kernel)), ("strides", ints(&op.strides)), ("pads", ints(&[t, l, b, r]))];
        let y = e.op("MaxPool", &[&xn], attrs);
        let y = e.transpose(&y, &TO_NHWC);
        let wide = e.cast(&y, DType::I64);
        e.finish(&wide, 0, op.act, xt, &n.outputs[0]);
        return Ok(());
    }
    let xn = pad(e, &xn, op.pads, scalar_of(xt, 0));
    let [kh, kw] = op.kernel;
    let ones = e.constant(Tensor { shape: vec![c, 1, kh, kw], data: Data::I8(vec![1; c * kh * kw]) });
    let (zx, zw) = (e.constant(scalar_of(xt, 0)), e.constant(scalar_of(DType::I8, 0)));
    let attrs = vec![("strides", ints(&op.strides)), ("group", Attr::Int(c as i64))];
    let sums = e.op("ConvInteger", &[&xn, &ones, &zx, &zw], attrs);
    let sums = e.transpose(&sums, &TO_NHWC);
    let sums = e.cast(&sums, DType::I64);
    // The taps inside the image, per output position.
    let &[_, oh, ow, _] = &cx.fact(&n.outputs[0])?.shape[..] else { return Err("its output is not 4-D".into()) };
    let taps = |size: usize, k: usize, s: usize, before: usize, out: usize| -> Vec<i64> {
        (0..out)
            .map(|o| (0..k).filter(|&j| (o * s + j).checked_sub(before).is_some_and(|i| i < size)).count() as i64)
            .collect()
    };
    let (ty, tx) = (taps(h, kh, op.strides[0], t, oh), taps(w, kw, op.strides[1], l, ow));
    let counts: Vec<i64> = ty.iter().flat_map(|&a| tx.iter().map(move |&b| (a * b).max(1))).collect();
    let shape = vec![1, ty.len(), tx.len(), 1];
    let halves = e.i64s_shaped(counts.iter().map(|&c| c / 2).collect(), shape.clone());
    let neg_halves = e.i64s_shaped(counts.iter().map(|&c| -(c / 2)).collect(), shape.clone());
    let count = e.i64s_shaped(counts, shape);
    let zero = e.i64s(vec![0]);
    let positive = e.op("Greater", &[&sums, &zero], vec![]);
    let nudge = e.op("Where", &[&positive, &halves, &neg_halves], vec![]);
    let nudged = e.op("Add", &[&sums, &nudge], vec![]);
    let mean = e.op("Div", &[&nudged, &count], vec![]);
    e.finish(&mean, 0, op.act, xt, &n.outputs[0]);
    Ok(())
}

/// MEAN: the int64 sum over the axes minus `zp · count`, times the multiplier with the count
/// folded in, as TFLite's `QuantizedMeanOrSum`.
pub(super) fn mean(e: &mut Emit, n: &Node, cx: &Ctx) -> Result<(), String> {
    let op = cx.built::<TflMean>(n)?;
    let x = cx.input(n, 0)?;
    let xt = cx.code_type(x)?;
    let shape = &cx.fact(x)?.shape;
    if op.axes.iter().any(|&a| a >= shape.len()) {
        return Err("its axes are outside the input".into());
    }
    let count: usize = op.axes.iter().map(|&a| shape[a]).product();
    if count == 0 {
        return Err("it averages an empty tensor".into());
    }
    let mult = op.multiplier(count).map_err(|e| e.to_string())?;
    let wide = e.cast(x, DType::I64);
    let axes = e.i64s_shaped(op.axes.iter().map(|&a| a as i64).collect(), vec![op.axes.len()]);
    let sums = e.op("ReduceSum", &[&wide, &axes], vec![("keepdims", Attr::Int(i64::from(op.keep_dims)))]);
    let offset = e.i64s(vec![op.zps.0 as i64 * count as i64]);
    let shifted = e.op("Sub", &[&sums, &offset], vec![]);
    let y = e.mbqm(&shifted, &[mult]);
    e.finish(&y, op.zps.1, (i32::MIN, i32::MAX), xt, &n.outputs[0]);
    Ok(())
}

/// TRANSPOSE_CONV as a convolution: the input with `stride − 1` codes equal to its zero point
/// after each row and column (they add nothing to `w · (x − x_zp)`), padded with the zero point
/// by `k − 1 − pad` before and to the output's size after (or cut), under the weights flipped in
/// both spatial axes — every output's sum over the same products as TFLite's scatter.
pub(super) fn transpose_conv(e: &mut Emit, n: &Node, cx: &Ctx) -> Result<(), String> {
    let (op, x, xt, _, wf) = weighted::<TflTransposeConv>(n, cx)?;
    let &[batch, h, wd, c] = &cx.fact(x)?.shape[..] else { return Err("its input is not 4-D".into()) };
    let Some(Data::I8(wv)) = wf.value.as_deref().map(|t| &t.data) else {
        return Err("its weights are not constant int8 values".into());
    };
    let &[o, kh, kw, i] = &wf.shape[..] else { return Err("its weights are not OHWI".into()) };
    if i != c {
        return Err("its weights do not fit its input".into());
    }
    // OHWI → OIHW, flipped in both spatial axes.
    let mut flipped = vec![0i8; wv.len()];
    for (oc, ky, kx, ic) in
        (0..o).flat_map(|a| (0..kh).flat_map(move |b| (0..kw).flat_map(move |d| (0..i).map(move |f| (a, b, d, f)))))
    {
        flipped[((oc * i + ic) * kh + (kh - 1 - ky)) * kw + (kw - 1 - kx)] = wv[((oc * kh + ky) * kw + kx) * i + ic];
    }
    let weights = e.constant(Tensor { shape: vec![o, i, kh, kw], data: Data::I8(flipped) });
    let [sh, sw] = op.strides;
    let [oh, ow] = [op.out_shape[1], op.out_shape[2]];
    let mut u = e.transpose(x, &TO_NCHW);
    if sh > 1 || sw > 1 {
        let axes = e.i64s_shaped(vec![3, 5], vec![2]);
        let spread = e.op("Unsqueeze", &[&u, &axes], vec![]);
        let p = e.i64s(vec![0, 0, 0, 0, 0, 0, 0, 0, 0, sh as i64 - 1, 0, sw as i64 - 1]);
        let zp = e.constant(scalar_of(xt, op.x_zp));
        let spread = e.op("Pad", &[&spread, &p, &zp], vec![]);
        let shape = e.i64s(vec![batch as i64, c as i64, (h * sh) as i64, (wd * sw) as i64]);
        u = e.op("Reshape", &[&spread, &shape], vec![]);
    }
    // Padded index j + before holds u[j]; the convolution needs oh + kh − 1 rows from there.
    let before = |k: usize, pad: usize| k as i64 - 1 - pad as i64;
    let (bt, bl) = (before(kh, op.pads[0]), before(kw, op.pads[1]));
    let (need_h, need_w) = ((oh + kh - 1) as i64, (ow + kw - 1) as i64);
    let (have_h, have_w) = ((h * sh) as i64, (wd * sw) as i64);
    let pads = [0, 0, bt.max(0), bl.max(0), 0, 0, (need_h - bt - have_h).max(0), (need_w - bl - have_w).max(0)];
    let p = e.i64s(pads.to_vec());
    let zp = e.constant(scalar_of(xt, op.x_zp));
    let padded = e.op("Pad", &[&u, &p, &zp], vec![]);
    let starts = e.i64s(vec![(-bt).max(0), (-bl).max(0)]);
    let ends = e.i64s(vec![(-bt).max(0) + need_h, (-bl).max(0) + need_w]);
    let axes = e.i64s(vec![2, 3]);
    let window = e.op("Slice", &[&padded, &starts, &ends, &axes], vec![]);
    let zx = e.constant(scalar_of(xt, op.x_zp));
    let zw = e.constant(scalar_of(DType::I8, 0));
    let sums = e.op("ConvInteger", &[&window, &weights, &zx, &zw], vec![]);
    let sums = e.transpose(&sums, &TO_NHWC);
    requantize_sums(e, cx.optional_input(n, 2), sums, &op.requant, (op.y_zp, op.act), xt, &n.outputs[0]);
    Ok(())
}
