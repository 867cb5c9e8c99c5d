//! TFLite's shape, layout and reduction operators → IR nodes. Axes are NHWC axes: an op whose
//! input was computed in NCHW either remaps them (CONCATENATION, MEAN, PAD) or reads the input
//! in the file's layout (RESHAPE, SQUEEZE, TRANSPOSE, GATHER, …), so values land where TFLite
//! puts them.

use super::layout::{Builder, NHWC_TO_NCHW_AXIS};
use super::ops::{opt, options, Io, NONE};
use super::read::{fb, fb_err};
use crate::model::{Attr, Data, ModelError, OpKind, Tensor};

/// Converts one operator; `false` when qplay does not map it.
pub(super) fn convert(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<bool, ModelError> {
    use fb::BuiltinOperator as B;
    match io.code {
        B::Concatenation => concat(b, op, io)?,
        B::Reshape => reshape(b, io)?,
        B::Softmax => softmax(b, op, io)?,
        B::Mean | B::Sum | B::ReduceMax | B::ReduceMin | B::ReduceProd => reduce(b, op, io)?,
        B::Pad | B::Padv2 => pad(b, io)?,
        B::Transpose => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let perm = io.ints(b, 1)?;
            let xin = b.nhwc(x);
            let out = b.nhwc(y);
            b.node(OpKind::Transpose.name(), vec![xin], vec![out], vec![("perm", Attr::Ints(perm))]);
        }
        B::Squeeze => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let dims = opt!(options!(op, SqueezeOptions), squeeze_dims, None);
            let mut axes: Vec<i64> = dims.map(|v| v.iter().map(i64::from).collect()).unwrap_or_default();
            if axes.is_empty() {
                let shape = b.info(x).dims()?;
                axes = shape.iter().enumerate().filter(|(_, &d)| d == 1).map(|(i, _)| i as i64).collect();
            }
            let axes = b.init("axes", Tensor::vec_i64(axes));
            let (xin, out) = (b.nhwc(x), b.nhwc(y));
            b.node(OpKind::Squeeze.name(), vec![xin, axes], vec![out], vec![]);
        }
        B::ExpandDims => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let shape = b.init("shape", Tensor::vec_i64(b.info(y).dims()?.iter().map(|&d| d as i64).collect()));
            let (xin, out) = (b.nhwc(x), b.nhwc(y));
            b.node(OpKind::Reshape.name(), vec![xin, shape], vec![out], vec![]);
        }
        B::Gather => {
            let (x, idx, y) = (io.input(0)?, io.input(1)?, io.output(0)?);
            let o = options!(op, GatherOptions);
            if opt!(o, batch_dims, 0) != 0 {
                return Err(io.err("batch_dims other than 0 is not supported"));
            }
            let axis = opt!(o, axis, 0);
            let (xin, iin, out) = (b.nhwc(x), b.nhwc(idx), b.nhwc(y));
            b.node("Gather", vec![xin, iin], vec![out], vec![("axis", Attr::Int(i64::from(axis)))]);
        }
        B::Split => {
            let x = io.input(1)?;
            let axis = *io.ints(b, 0)?.first().ok_or_else(|| io.err("the axis is empty"))?;
            let xin = b.nhwc(x);
            let outs: Vec<String> =
                (0..io.outs.len()).map(|i| io.output(i).map(|t| b.nhwc(t))).collect::<Result<_, _>>()?;
            b.node(OpKind::Split.name(), vec![xin], outs, vec![("axis", Attr::Int(axis))]);
        }
        B::Pack => {
            let y = io.output(0)?;
            let axis = i64::from(opt!(options!(op, PackOptions), axis, 0));
            let mut parts = Vec::new();
            for i in 0..io.ins.len() {
                let x = io.input(i)?;
                let xin = b.nhwc(x);
                let axes = b.init("axes", Tensor::vec_i64(vec![axis]));
                let u = b.fresh(&format!("{xin}__unsqueezed"));
                b.node(OpKind::Unsqueeze.name(), vec![xin, axes], vec![u.clone()], vec![]);
                parts.push(u);
            }
            let out = b.nhwc(y);
            b.node(OpKind::Concat.name(), parts, vec![out], vec![("axis", Attr::Int(axis))]);
        }
        B::StridedSlice => strided_slice(b, op, io)?,
        B::Unpack => {
            let x = io.input(0)?;
            let axis = i64::from(opt!(options!(op, UnpackOptions), axis, 0));
            let xin = b.nhwc(x);
            let mut parts = Vec::new();
            for i in 0..io.outs.len() {
                let y = io.output(i)?;
                parts.push(b.fresh(&format!("{}__unsqueezed", b.name(y))));
            }
            b.node(OpKind::Split.name(), vec![xin], parts.clone(), vec![("axis", Attr::Int(axis))]);
            for (i, part) in parts.into_iter().enumerate() {
                let y = io.output(i)?;
                let axes = b.init("axes", Tensor::vec_i64(vec![axis]));
                let out = b.nhwc(y);
                b.node(OpKind::Squeeze.name(), vec![part, axes], vec![out], vec![]);
            }
        }
        B::Dequantize => return dequantize(b, io),
        _ => return super::layer_ops::convert(b, op, io),
    }
    Ok(true)
}

fn concat(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let y = io.output(0)?;
    let o = options!(op, ConcatenationOptions);
    let act = opt!(o, fused_activation_function, NONE);
    let rank = b.rank(y) as i64;
    let axis = i64::from(opt!(o, axis, 0));
    let axis = if axis < 0 { axis + rank } else { axis };
    let ins: Vec<usize> = (0..io.ins.len()).map(|i| io.input(i)).collect::<Result<_, _>>()?;
    let computed = |b: &Builder, t: usize| !b.is_const(t) && b.has_nchw(t);
    let nchw = rank == 4
        && (0..4).contains(&axis)
        && ins.iter().any(|&t| computed(b, t))
        && ins.iter().all(|&t| computed(b, t) || (b.is_const(t) && b.rank(t) == 4));
    let (inputs, out, axis) = if nchw {
        let v = ins.iter().map(|&t| b.nchw(t)).collect::<Result<Vec<_>, _>>()?;
        (v, b.out_nchw(y), NHWC_TO_NCHW_AXIS[axis as usize] as i64)
    } else {
        (ins.iter().map(|&t| b.nhwc(t)).collect(), b.nhwc(y), axis)
    };
    let pre = b.fused(act, out)?;
    b.node(OpKind::Concat.name(), inputs, vec![pre], vec![("axis", Attr::Int(axis))]);
    Ok(())
}

fn reshape(b: &mut Builder, io: &Io) -> Result<(), ModelError> {
    let (x, y) = (io.input(0)?, io.output(0)?);
    // The output's declared shape, else the shape input (the one dim TFLite leaves unknown is -1).
    let shape: Vec<i64> = match b.info(y).dims() {
        Ok(d) => d.iter().map(|&d| d as i64).collect(),
        Err(_) => io.ints(b, 1)?,
    };
    let shape = b.init("shape", Tensor::vec_i64(shape));
    let (xin, out) = (b.nhwc(x), b.nhwc(y));
    b.node(OpKind::Reshape.name(), vec![xin, shape], vec![out], vec![]);
    Ok(())
}

fn softmax(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let (x, y) = (io.input(0)?, io.output(0)?);
    let beta = opt!(options!(op, SoftmaxOptions), beta, 1.0);
    let mut xin = b.nhwc(x);
    if beta != 1.0 {
        let k = b.init("beta", Tensor::scalar_f32(beta));
        let scaled = b.fresh(&format!("{xin}__beta"));
        b.node(OpKind::Mul.name(), vec![xin, k], vec![scaled.clone()], vec![]);
        xin = scaled;
    }
    let out = b.nhwc(y);
    b.node(OpKind::Softmax.name(), vec![xin], vec![out], vec![("axis", Attr::Int(-1))]);
    Ok(())
}

/// MEAN, SUM, REDUCE_MAX / MIN / PROD over constant axes.
fn reduce(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    use fb::BuiltinOperator as B;
    let (x, y) = (io.input(0)?, io.output(0)?);
    let keep = opt!(options!(op, ReducerOptions), keep_dims, false);
    let rank = b.rank(x) as i64;
    let mut axes: Vec<i64> = io.ints(b, 1)?.into_iter().map(|a| if a < 0 { a + rank } else { a }).collect();
    axes.sort_unstable();
    axes.dedup();
    if axes.iter().any(|&a| !(0..rank).contains(&a)) {
        return Err(io.err(format!("axes {axes:?} out of range for rank {rank}")));
    }
    // In NCHW when the input was computed so and the kept axes come out in the same order.
    let kept_nhwc: Vec<usize> = (0..4).filter(|a| !axes.contains(&(*a as i64))).collect();
    let kept_from_nchw: Vec<usize> = [0usize, 3, 1, 2].into_iter().filter(|a| !axes.contains(&(*a as i64))).collect();
    let nchw =
        rank == 4 && !axes.is_empty() && !b.is_const(x) && b.has_nchw(x) && (keep || kept_nhwc == kept_from_nchw);
    let (xin, out, axes) = if nchw {
        let xin = b.nchw(x)?;
        let out = if keep { b.out_nchw(y) } else { b.nhwc(y) };
        (xin, out, axes.iter().map(|&a| NHWC_TO_NCHW_AXIS[a as usize] as i64).collect())
    } else {
        (b.nhwc(x), b.nhwc(y), axes)
    };
    let kind = match io.code {
        B::Mean => OpKind::ReduceMean,
        B::Sum => OpKind::ReduceSum,
        B::ReduceMax => OpKind::ReduceMax,
        B::ReduceMin => OpKind::ReduceMin,
        _ => OpKind::ReduceProd,
    };
    let keepdims = ("keepdims", Attr::Int(i64::from(keep)));
    if kind == OpKind::ReduceSum {
        // ReduceSum takes its axes as an input from opset 13, the others from opset 18.
        let axes = b.init("axes", Tensor::vec_i64(axes));
        b.node(kind.name(), vec![xin, axes], vec![out], vec![keepdims]);
    } else {
        b.node(kind.name(), vec![xin], vec![out], vec![("axes", Attr::Ints(axes)), keepdims]);
    }
    Ok(())
}

/// PAD / PADV2: constant paddings `[rank, 2]` (and value).
fn pad(b: &mut Builder, io: &Io) -> Result<(), ModelError> {
    let (x, y) = (io.input(0)?, io.output(0)?);
    let p = io.ints(b, 1)?;
    let rank = b.rank(x);
    if p.len() != 2 * rank {
        return Err(io.err(format!("paddings {p:?} do not fit rank {rank}")));
    }
    let value = match io.optional(2).and_then(|t| b.constant(t)) {
        Some(Tensor { data: Data::F32(v), .. }) if v.len() == 1 => v[0],
        Some(_) => return Err(io.err("the padding value must be one float constant")),
        None => 0.0,
    };
    let computed = !b.is_const(x) && b.has_nchw(x) && rank == 4;
    let order: Vec<usize> = if computed { vec![0, 3, 1, 2] } else { (0..rank).collect() };
    let mut pads: Vec<i64> = order.iter().map(|&a| p[2 * a]).collect();
    pads.extend(order.iter().map(|&a| p[2 * a + 1]));
    let pads = b.init("pads", Tensor::vec_i64(pads));
    let value = b.init("value", Tensor::scalar_f32(value));
    let (xin, out) = if computed { (b.nchw(x)?, b.out_nchw(y)) } else { (b.nhwc(x), b.nhwc(y)) };
    b.node("Pad", vec![xin, pads, value], vec![out], vec![("mode", Attr::String("constant".into()))]);
    Ok(())
}

/// STRIDED_SLICE with constant begin / end / strides → `Slice` (masks resolved to open ends),
/// then `Squeeze` of the shrunk axes.
fn strided_slice(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let (x, y) = (io.input(0)?, io.output(0)?);
    let (begin, end, strides) = (io.ints(b, 1)?, io.ints(b, 2)?, io.ints(b, 3)?);
    let o = options!(op, StridedSliceOptions);
    let (bm, em, shrink) = (opt!(o, begin_mask, 0), opt!(o, end_mask, 0), opt!(o, shrink_axis_mask, 0));
    if opt!(o, ellipsis_mask, 0) != 0 || opt!(o, new_axis_mask, 0) != 0 {
        return Err(io.err("ellipsis_mask and new_axis_mask are not supported"));
    }
    let n = begin.len();
    if end.len() != n || strides.len() != n || n > b.rank(x) || n > 31 {
        return Err(io.err(format!("begin {begin:?}, end {end:?}, strides {strides:?} do not fit the input")));
    }
    let (mut starts, mut ends, mut steps, mut squeezed) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let bit = |m: i32| m >> i & 1 == 1;
        let mut s = strides[i];
        if s == 0 {
            return Err(io.err("a stride of 0"));
        }
        let mut start = if bit(bm) {
            if s > 0 {
                0
            } else {
                i64::MAX
            }
        } else {
            begin[i]
        };
        let mut stop = if bit(em) {
            if s > 0 {
                i64::MAX
            } else {
                i64::MIN
            }
        } else {
            end[i]
        };
        if bit(shrink) {
            start = begin[i];
            stop = if start == -1 { i64::MAX } else { start.saturating_add(1) };
            s = 1;
            squeezed.push(i as i64);
        }
        starts.push(start);
        ends.push(stop);
        steps.push(s);
    }
    let inputs = vec![
        b.nhwc(x),
        b.init("starts", Tensor::vec_i64(starts)),
        b.init("ends", Tensor::vec_i64(ends)),
        b.init("axes", Tensor::vec_i64((0..n as i64).collect())),
        b.init("steps", Tensor::vec_i64(steps)),
    ];
    let out = b.nhwc(y);
    if squeezed.is_empty() {
        b.node(OpKind::Slice.name(), inputs, vec![out], vec![]);
    } else {
        let sliced = b.fresh(&format!("{out}__sliced"));
        b.node(OpKind::Slice.name(), inputs, vec![sliced.clone()], vec![]);
        let axes = b.init("squeezed", Tensor::vec_i64(squeezed));
        b.node(OpKind::Squeeze.name(), vec![sliced, axes], vec![out], vec![]);
    }
    Ok(())
}

/// DEQUANTIZE of a constant (float16 weights, already widened; int8 weights of dynamic-range
/// models, per tensor or per channel) folds to a float32 constant. Of a computed tensor it is
/// not supported (full-integer models, refused earlier).
fn dequantize(b: &mut Builder, io: &Io) -> Result<bool, ModelError> {
    let (x, y) = (io.input(0)?, io.output(0)?);
    let Some(v) = b.constant(x) else { return Ok(false) };
    let out = dequantized(v, &b.info(x).quant).map_err(|e| io.err(e))?;
    b.set_constant(y, out);
    Ok(true)
}

/// A constant as float32: float data as it is, integer data with its quantization parameters
/// (`scale · (q − zero_point)`, per tensor or along the quantized dimension).
pub(super) fn dequantized(v: &Tensor, quant: &Option<(Vec<f32>, Vec<i64>, usize)>) -> Result<Tensor, String> {
    if let Data::F32(_) = v.data {
        return Ok(v.clone());
    }
    let Some((scale, zp, dim)) = quant else { return Err("a quantized constant without scales".into()) };
    let q = v.to_i64_vec().map_err(|_| "the quantized constant must hold integers".to_string())?;
    let (n, inner) = if scale.len() == 1 {
        (1, q.len())
    } else {
        let d = *v.shape.get(*dim).ok_or("quantized_dimension out of range")?;
        if d != scale.len() {
            return Err(format!("{} scales for a dimension of {d}", scale.len()));
        }
        (d, v.shape[dim + 1..].iter().product::<usize>())
    };
    let f: Vec<f32> = q
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let c = if n == 1 { 0 } else { (i / inner.max(1)) % n };
            let z = zp.get(c).or(zp.first()).copied().unwrap_or(0);
            scale[c] * q.saturating_sub(z) as f32
        })
        .collect();
    Ok(Tensor { shape: v.shape.clone(), data: Data::F32(f) })
}
