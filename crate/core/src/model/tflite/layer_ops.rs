//! TFLite operators of segmentation, face and pose models beyond the detector core → IR nodes:
//! TRANSPOSE_CONV (an NCHW `ConvTranspose`), DEPTH_TO_SPACE and SPACE_TO_DEPTH (NCHW, TF's order
//! is ONNX's DCR), MIRROR_PAD (REFLECT as `Pad`, SYMMETRIC as reversed slices concatenated),
//! SPLIT_V, SLICE, TILE, BROADCAST_TO, GATHER_ND, BATCH_MATMUL and L2_NORMALIZATION. The ops that
//! only move values take int8 codes as they take floats (full-integer models route them here).

use super::layout::{ints, permute, Builder};
use super::ops::{
    nhwc_dims, opt, options, pads, positive, transpose_conv_options, ConvOptions, Io, TransposeConvArgs, NONE,
};
use super::read::{fb, fb_err};
use crate::model::{Attr, DType, ModelError, OpKind, Tensor};

/// Converts one operator; `false` when it is not one of this module's.
pub(super) fn convert(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<bool, ModelError> {
    use fb::BuiltinOperator as B;
    match io.code {
        B::TransposeConv => transpose_conv(b, op, io)?,
        B::DepthToSpace | B::SpaceToDepth => depth_space(b, op, io)?,
        B::MirrorPad => mirror_pad(b, op, io)?,
        B::SplitV => split_v(b, io)?,
        B::Slice => slice(b, io)?,
        B::Tile | B::BroadcastTo => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let arg = int64_input(b, io, 1)?;
            let (xin, out) = (b.nhwc(x), b.nhwc(y));
            let kind = if io.code == B::Tile { "Tile" } else { "Expand" };
            b.node(kind, vec![xin, arg], vec![out], vec![]);
        }
        B::GatherNd => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let idx = int64_input(b, io, 1)?;
            let (xin, out) = (b.nhwc(x), b.nhwc(y));
            b.node("GatherND", vec![xin, idx], vec![out], vec![]);
        }
        B::BatchMatmul => batch_matmul(b, op, io)?,
        B::L2Normalization => l2_normalization(b, op, io)?,
        _ => return super::math_ops::convert(b, op, io),
    }
    Ok(true)
}

/// Integer input `i` as int64 (ONNX's index and shape type): a constant converted at load, else
/// a `Cast`.
pub(super) fn int64_input(b: &mut Builder, io: &Io, i: usize) -> Result<String, ModelError> {
    let t = io.input(i)?;
    if let Some(v) = b.constant(t) {
        let shape = v.shape.clone();
        let values = v.to_i64_vec().map_err(|_| io.err(format!("input {i} must hold integers")))?;
        return Ok(b.init("int64", Tensor { shape, data: crate::model::Data::I64(values) }));
    }
    if !matches!(b.info(t).dtype, DType::I32 | DType::I64) {
        return Err(io.err(format!("input {i} must be int32 or int64, it is {:?}", b.info(t).dtype)));
    }
    let from = b.nhwc(t);
    let out = b.fresh(&format!("{from}__int64"));
    b.node(OpKind::Cast.name(), vec![from], vec![out.clone()], vec![("to", Attr::Int(7))]);
    Ok(out)
}

/// TRANSPOSE_CONV: inputs (output_shape, OHWI weights, input, bias?) → `ConvTranspose` with
/// IOHW weights, the begin padding TFLite computes (as a forward convolution from the output
/// size, extra at the end) and the end padding (or output padding) that gives the file's
/// output size.
fn transpose_conv(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let (x, w, y) = (io.input(2)?, io.input(1)?, io.output(0)?);
    let TransposeConvArgs { conv: ConvOptions { padding, stride: (sw, sh), act, .. }, hw: (oh, ow), .. } =
        transpose_conv_options(b, op, io)?;
    let [_, h, wid, _] = nhwc_dims(b, io, x)?;
    let weights = b.constant(w).ok_or_else(|| io.err("non-constant weights are not supported"))?;
    let weights = super::shape_ops::dequantized(weights, &b.info(w).quant).map_err(|e| io.err(e))?;
    let [_, kh, kw, _] = <[usize; 4]>::try_from(weights.shape.as_slice())
        .map_err(|_| io.err(format!("weights of shape {:?}, expected rank 4", weights.shape)))?;
    let perm = [3, 0, 1, 2];
    // Begin padding as TFLite's kernel computes it: a forward convolution from the output size.
    let (pt, _) = pads(padding, oh, kh, sh, 1);
    let (pl, _) = pads(padding, ow, kw, sw, 1);
    // ConvTranspose's size: (in − 1)·s + k − begin − end (+ output padding).
    let end = |n: usize, s: usize, k: usize, p: usize, out: usize| -> Result<(usize, usize), ModelError> {
        let full = ((n.max(1) - 1) * s + k)
            .checked_sub(p)
            .ok_or_else(|| io.err(format!("padding {p} exceeds the transposed convolution's size")))?;
        Ok(if full >= out { (full - out, 0) } else { (0, out - full) })
    };
    let (pb, opad_h) = end(h, sh, kh, pt, oh)?;
    let (pr, opad_w) = end(wid, sw, kw, pl, ow)?;
    let xin = b.nchw(x)?;
    let wname = match b.dequantize_linear(w, Some(&perm))? {
        Some(dq) => dq,
        None => b.init("weights_iohw", permute(&weights, &perm)?),
    };
    let mut inputs = vec![xin, wname];
    if let Some(bias) = io.optional(3) {
        inputs.push(match b.dequantize_linear(bias, None)? {
            Some(dq) => dq,
            None => b.nhwc(bias),
        });
    }
    let out = b.out_nchw(y);
    let pre = b.fused(act, out)?;
    let mut attrs =
        vec![("kernel_shape", ints(&[kh, kw])), ("strides", ints(&[sh, sw])), ("pads", ints(&[pt, pl, pb, pr]))];
    if opad_h > 0 || opad_w > 0 {
        attrs.push(("output_padding", ints(&[opad_h, opad_w])));
    }
    b.node(OpKind::ConvTranspose.name(), inputs, vec![pre], attrs);
    Ok(())
}

/// DEPTH_TO_SPACE / SPACE_TO_DEPTH: TF's channel order is ONNX's DCR, on the NCHW twin.
fn depth_space(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let (x, y) = (io.input(0)?, io.output(0)?);
    let to_space = io.code == fb::BuiltinOperator::DepthToSpace;
    let block = if to_space {
        opt!(options!(op, DepthToSpaceOptions), block_size, 0)
    } else {
        opt!(options!(op, SpaceToDepthOptions), block_size, 0)
    };
    let block = positive(io, block, "block size")?;
    nhwc_dims(b, io, x)?;
    let xin = b.nchw(x)?;
    let out = b.out_nchw(y);
    let mut attrs = vec![("blocksize", Attr::Int(block as i64))];
    if to_space {
        attrs.push(("mode", Attr::String("DCR".into())));
        b.node("DepthToSpace", vec![xin], vec![out], attrs);
    } else {
        b.node("SpaceToDepth", vec![xin], vec![out], attrs);
    }
    Ok(())
}

/// MIRROR_PAD: REFLECT (the edge not repeated) is `Pad`'s `reflect`; SYMMETRIC (the edge
/// repeated) has no ONNX mode, so each padded axis concatenates reversed slices of its ends.
fn mirror_pad(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let (x, y) = (io.input(0)?, io.output(0)?);
    let mode = opt!(options!(op, MirrorPadOptions), mode, fb::MirrorPadMode::Reflect);
    let p = io.ints(b, 1)?;
    let dims = b.info(x).dims()?;
    let rank = dims.len();
    if p.len() != 2 * rank || p.iter().any(|&v| v < 0) {
        return Err(io.err(format!("paddings {p:?} do not fit rank {rank}")));
    }
    let symmetric = mode == fb::MirrorPadMode::Symmetric;
    for (a, &d) in dims.iter().enumerate() {
        let limit = if symmetric { d as i64 } else { d as i64 - 1 };
        if p[2 * a] > limit || p[2 * a + 1] > limit {
            return Err(io.err(format!(
                "padding {:?} on axis {a} exceeds what its {d} values can mirror",
                &p[2 * a..2 * a + 2]
            )));
        }
    }
    let xin = b.nhwc(x);
    let out = b.nhwc(y);
    if !symmetric {
        let mut pads: Vec<i64> = (0..rank).map(|a| p[2 * a]).collect();
        pads.extend((0..rank).map(|a| p[2 * a + 1]));
        let pads = b.init("pads", Tensor::vec_i64(pads));
        b.node("Pad", vec![xin, pads], vec![out], vec![("mode", Attr::String("reflect".into()))]);
        return Ok(());
    }
    let padded: Vec<usize> = (0..rank).filter(|&a| p[2 * a] > 0 || p[2 * a + 1] > 0).collect();
    if padded.is_empty() {
        b.node(OpKind::Identity.name(), vec![xin], vec![out], vec![]);
        return Ok(());
    }
    let mut cur = xin;
    for (i, &a) in padded.iter().enumerate() {
        let (before, after, d) = (p[2 * a], p[2 * a + 1], dims[a] as i64);
        let mut parts = Vec::new();
        // [before−1, …, 0] and [d−1, …, d−after]: slices with step −1.
        for (start, end, n) in [(before - 1, i64::MIN, before), (d - 1, d - 1 - after, after)] {
            if n == 0 {
                continue;
            }
            let s = b.init("starts", Tensor::vec_i64(vec![start]));
            let e = b.init("ends", Tensor::vec_i64(vec![end]));
            let ax = b.init("axes", Tensor::vec_i64(vec![a as i64]));
            let st = b.init("steps", Tensor::vec_i64(vec![-1]));
            let part = b.fresh(&format!("{cur}__mirror"));
            b.node(OpKind::Slice.name(), vec![cur.clone(), s, e, ax, st], vec![part.clone()], vec![]);
            parts.push(part);
        }
        let mid = if before > 0 { 1 } else { 0 };
        parts.insert(mid, cur.clone());
        let next = if i + 1 == padded.len() { out.clone() } else { b.fresh(&format!("{cur}__padded")) };
        b.node(OpKind::Concat.name(), parts, vec![next.clone()], vec![("axis", Attr::Int(a as i64))]);
        cur = next;
    }
    Ok(())
}

/// SPLIT_V: sizes (one may be −1, the rest of the axis) and the axis are constants.
fn split_v(b: &mut Builder, io: &Io) -> Result<(), ModelError> {
    let x = io.input(0)?;
    let sizes = io.ints(b, 1)?;
    let axis = *io.ints(b, 2)?.first().ok_or_else(|| io.err("the axis is empty"))?;
    let dims = b.info(x).dims()?;
    let rank = dims.len() as i64;
    let a = if axis < 0 { axis + rank } else { axis };
    let d = *usize::try_from(a)
        .ok()
        .and_then(|a| dims.get(a))
        .ok_or_else(|| io.err(format!("axis {axis} is outside rank {rank}")))? as i64;
    let known: i64 = sizes.iter().filter(|&&s| s >= 0).sum();
    let unknown = sizes.iter().filter(|&&s| s < 0).count();
    let sizes: Vec<i64> = sizes.iter().map(|&s| if s < 0 { d - known } else { s }).collect();
    if unknown > 1 || sizes.iter().any(|&s| s < 0) || sizes.iter().sum::<i64>() != d || sizes.len() != io.outs.len() {
        return Err(io.err(format!(
            "sizes {sizes:?} do not split the {d} values of axis {axis} into {} outputs",
            io.outs.len()
        )));
    }
    let split = b.init("split", Tensor::vec_i64(sizes));
    let xin = b.nhwc(x);
    let outs: Vec<String> = (0..io.outs.len()).map(|i| io.output(i).map(|t| b.nhwc(t))).collect::<Result<_, _>>()?;
    b.node(OpKind::Split.name(), vec![xin, split], outs, vec![("axis", Attr::Int(a))]);
    Ok(())
}

/// SLICE: constant begin and size (−1: to the end of the axis).
fn slice(b: &mut Builder, io: &Io) -> Result<(), ModelError> {
    let (x, y) = (io.input(0)?, io.output(0)?);
    let (begin, size) = (io.ints(b, 1)?, io.ints(b, 2)?);
    let rank = b.rank(x);
    if begin.len() != rank || size.len() != rank || begin.iter().any(|&v| v < 0) {
        return Err(io.err(format!("begin {begin:?} and size {size:?} do not fit rank {rank}")));
    }
    let ends: Vec<i64> = begin.iter().zip(&size).map(|(&s, &n)| if n < 0 { i64::MAX } else { s + n }).collect();
    let starts = b.init("starts", Tensor::vec_i64(begin));
    let ends = b.init("ends", Tensor::vec_i64(ends));
    let axes = b.init("axes", Tensor::vec_i64((0..rank as i64).collect()));
    let (xin, out) = (b.nhwc(x), b.nhwc(y));
    b.node(OpKind::Slice.name(), vec![xin, starts, ends, axes], vec![out], vec![]);
    Ok(())
}

/// The last two axes of `name` (rank `rank`) swapped.
fn swap_last(b: &mut Builder, name: String, rank: usize) -> String {
    let mut perm: Vec<usize> = (0..rank).collect();
    perm.swap(rank - 2, rank - 1);
    let out = b.fresh(&format!("{name}__adjoint"));
    b.node(OpKind::Transpose.name(), vec![name], vec![out.clone()], vec![("perm", ints(&perm))]);
    out
}

/// BATCH_MATMUL: `MatMul` with `adj_x` / `adj_y` as transposes of the last two axes.
fn batch_matmul(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let (x, w, y) = (io.input(0)?, io.input(1)?, io.output(0)?);
    let o = options!(op, BatchMatMulOptions);
    let (adj_x, adj_y) = (opt!(o, adj_x, false), opt!(o, adj_y, false));
    let mut ins = Vec::new();
    for (t, adj) in [(x, adj_x), (w, adj_y)] {
        let rank = b.rank(t);
        if rank < 2 {
            return Err(io.err(format!("input `{}` has rank {rank}; BATCH_MATMUL needs 2 or more", b.name(t))));
        }
        let name = b.nhwc(t);
        ins.push(if adj { swap_last(b, name, rank) } else { name });
    }
    let out = b.nhwc(y);
    b.node(OpKind::MatMul.name(), ins, vec![out], vec![]);
    Ok(())
}

/// L2_NORMALIZATION over the last axis, as TFLite computes it: `x / max(√Σx², 1e-6)`.
fn l2_normalization(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let (x, y) = (io.input(0)?, io.output(0)?);
    let act = opt!(options!(op, L2NormOptions), fused_activation_function, NONE);
    let xin = b.nhwc(x);
    let sq = b.fresh(&format!("{xin}__squared"));
    b.node(OpKind::Mul.name(), vec![xin.clone(), xin.clone()], vec![sq.clone()], vec![]);
    let axes = b.init("axes", Tensor::vec_i64(vec![-1]));
    let sum = b.fresh(&format!("{xin}__sum_of_squares"));
    b.node(OpKind::ReduceSum.name(), vec![sq, axes], vec![sum.clone()], vec![("keepdims", Attr::Int(1))]);
    let norm = b.fresh(&format!("{xin}__norm"));
    b.node(OpKind::Sqrt.name(), vec![sum], vec![norm.clone()], vec![]);
    let eps = b.init("epsilon", Tensor::scalar_f32(1e-6));
    let safe = b.fresh(&format!("{xin}__norm_at_least_epsilon"));
    b.node(OpKind::Max.name(), vec![norm, eps], vec![safe.clone()], vec![]);
    let out = b.nhwc(y);
    let pre = b.fused(act, out)?;
    b.node(OpKind::Div.name(), vec![xin, safe], vec![pre], vec![]);
    Ok(())
}
