//! More operators of full-integer (int8) models: TRANSPOSE_CONV and PRELU as `qplay.tfl.*` ops
//! with TFLite's integer semantics, and the ops that only move codes (SPLIT_V, SLICE, TILE,
//! BROADCAST_TO, GATHER_ND, DEPTH_TO_SPACE, SPACE_TO_DEPTH, MIRROR_PAD) through the float
//! loader's type-agnostic nodes ([`super::layer_ops`]), where input and outputs share one
//! quantization as TFLite's kernels require.

use super::int_ops::{act_range, act_type, node, q, qattrs, same_quantization, weight_scales, with};
use super::layout::{ints, Builder};
use super::ops::{nhwc_dims, pads, transpose_conv_options, ConvOptions, Io, TransposeConvArgs};
use super::read::fb;
use crate::model::{Attr, DType, ModelError};
use crate::ops::tflite::{prelu, transpose_conv};

/// Converts one operator of a full-integer model; `false` when qplay does not map it.
pub(super) fn convert(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<bool, ModelError> {
    use fb::BuiltinOperator as B;
    let int8_only = |b: &Builder| {
        if act_type(b, io) == DType::I8 {
            Ok(())
        } else {
            Err(io.err(format!("{:?} codes are not supported (int8 only)", act_type(b, io))))
        }
    };
    match io.code {
        B::SplitV
        | B::Slice
        | B::Tile
        | B::BroadcastTo
        | B::GatherNd
        | B::DepthToSpace
        | B::SpaceToDepth
        | B::MirrorPad => {
            let x = io.input(0)?;
            for k in 0..io.outs.len() {
                same_quantization(b, io, &[x], io.output(k)?)?;
            }
            super::layer_ops::convert(b, op, io)
        }
        B::TransposeConv => {
            int8_only(b)?;
            transpose_conv_int8(b, op, io)?;
            Ok(true)
        }
        B::Prelu => {
            int8_only(b)?;
            let (x, alpha, y) = (io.input(0)?, io.input(1)?, io.output(0)?);
            if b.constant(alpha).is_none() || b.info(alpha).dtype != DType::I8 {
                return Err(io.err("alpha must be an int8 constant"));
            }
            let mut attrs: Vec<(String, Attr)> = qattrs("x", q(b, io, x)?).into();
            attrs.extend(qattrs("alpha", q(b, io, alpha)?));
            attrs.extend(qattrs("y", q(b, io, y)?));
            let ins = vec![b.nhwc(x), b.nhwc(alpha)];
            let out = b.nhwc(y);
            node(b, prelu::PRELU, ins, out, attrs);
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// TRANSPOSE_CONV: (output_shape, OHWI int8 weights, input, int32 bias?) → `qplay.tfl.TransposeConv`.
fn transpose_conv_int8(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let (x, w, y) = (io.input(2)?, io.input(1)?, io.output(0)?);
    let TransposeConvArgs { conv: ConvOptions { padding, stride: (sw, sh), act, .. }, shape, hw: (oh, ow) } =
        transpose_conv_options(b, op, io)?;
    nhwc_dims(b, io, x)?;
    let dims: Vec<usize> = shape.iter().filter_map(|&d| usize::try_from(d).ok()).filter(|&d| d > 0).collect();
    let [_, _, _, oc] = <[usize; 4]>::try_from(dims.as_slice())
        .map_err(|_| io.err(format!("output_shape {shape:?} must be 4 positive values")))?;
    let wd = b.info(w).dims()?;
    let [_, kh, kw, _] = <[usize; 4]>::try_from(wd.as_slice())
        .map_err(|_| io.err(format!("weights of shape {wd:?}, expected rank 4")))?;
    if b.constant(w).map(|v| v.dtype()) != Some(DType::I8) {
        return Err(io.err("the weights must be an int8 constant"));
    }
    let scales = weight_scales(b, io, w, oc, 0)?;
    let (pt, _) = pads(padding, oh, kh, sh, 1);
    let (pl, _) = pads(padding, ow, kw, sw, 1);
    let mut attrs: Vec<(String, Attr)> = vec![
        ("output_shape".into(), ints(&dims)),
        ("strides".into(), ints(&[sh, sw])),
        ("pads".into(), ints(&[pt, pl])),
        ("w_scales".into(), Attr::Floats(scales)),
    ];
    attrs.extend(qattrs("x", q(b, io, x)?));
    attrs.extend(qattrs("y", q(b, io, y)?));
    let attrs = with(attrs, act_range(b, io, act, y)?);
    let mut inputs = vec![b.nhwc(x), b.nhwc(w)];
    if let Some(bias) = io.optional(3) {
        if b.constant(bias).map(|v| v.dtype()) != Some(DType::I32) {
            return Err(io.err("the bias must be an int32 constant"));
        }
        inputs.push(b.nhwc(bias));
    }
    let out = b.nhwc(y);
    node(b, transpose_conv::TRANSPOSE_CONV, inputs, out, attrs);
    Ok(())
}
