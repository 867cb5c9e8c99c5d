//! TFLite builtin operators → IR nodes: convolutions, pools, fully-connected layers, resizes
//! and element-wise ops here (computed in NCHW where qplay's ops need it, see [`super::layout`]);
//! shape and layout ops in [`super::shape_ops`].

use super::layout::{ints, permute, Builder};
use super::read::{builtin_name, fb, fb_err};
use super::shape_ops;
use crate::model::{Attr, ModelError, OpKind, Tensor};

/// No fused activation.
pub(super) const NONE: fb::ActivationFunctionType = fb::ActivationFunctionType::None;

/// The operator's builtin options of one kind, or `None` when it has none (TFLite's defaults).
macro_rules! options {
    ($op:expr, $variant:ident) => {
        match $op.builtin_options().map_err(fb_err("Operator.builtin_options"))? {
            Some(fb::BuiltinOptionsRef::$variant(o)) => Some(o),
            _ => None,
        }
    };
}
pub(super) use options;

/// Reads an options field, or the default when the operator has no options.
macro_rules! opt {
    ($o:expr, $field:ident, $default:expr) => {
        match &$o {
            Some(o) => o.$field().map_err(fb_err(concat!("options.", stringify!($field))))?,
            None => $default,
        }
    };
}
pub(super) use opt;

/// One operator's tensors: inputs (`None` for an omitted optional one) and outputs.
pub(super) struct Io<'o> {
    pub code: fb::BuiltinOperator,
    pub ins: &'o [Option<usize>],
    pub outs: &'o [Option<usize>],
}

impl Io<'_> {
    pub fn err(&self, what: impl std::fmt::Display) -> ModelError {
        ModelError::Other(format!("TFLite operator {}: {what}", builtin_name(self.code)))
    }
    /// Input `i` (required).
    pub fn input(&self, i: usize) -> Result<usize, ModelError> {
        self.ins.get(i).copied().flatten().ok_or_else(|| self.err(format!("input {i} is missing")))
    }
    /// Input `i` if given.
    pub fn optional(&self, i: usize) -> Option<usize> {
        self.ins.get(i).copied().flatten()
    }
    /// Output `i` (required).
    pub fn output(&self, i: usize) -> Result<usize, ModelError> {
        self.outs.get(i).copied().flatten().ok_or_else(|| self.err(format!("output {i} is missing")))
    }
    /// A constant input's values as integers.
    pub fn ints(&self, b: &Builder, i: usize) -> Result<Vec<i64>, ModelError> {
        let t = self.input(i)?;
        let v = b.constant(t).ok_or_else(|| self.err(format!("input {i} must be a constant")))?;
        v.to_i64_vec().map_err(|_| self.err(format!("input {i} must hold integers")))
    }
}

/// Converts one builtin operator; `false` when qplay does not map it.
pub(super) fn convert(
    b: &mut Builder,
    op: &fb::OperatorRef<'_>,
    code: fb::BuiltinOperator,
    ins: &[Option<usize>],
    outs: &[Option<usize>],
) -> Result<bool, ModelError> {
    use fb::BuiltinOperator as B;
    let io = Io { code, ins, outs };
    let io = &io;
    match code {
        B::Conv2d => conv(b, op, io, false)?,
        B::DepthwiseConv2d => conv(b, op, io, true)?,
        B::MaxPool2d | B::AveragePool2d => pool(b, op, io)?,
        B::FullyConnected => fully_connected(b, op, io)?,
        B::Add => binary(b, io, OpKind::Add.name(), opt!(options!(op, AddOptions), fused_activation_function, NONE))?,
        B::Sub => binary(b, io, OpKind::Sub.name(), opt!(options!(op, SubOptions), fused_activation_function, NONE))?,
        B::Mul => binary(b, io, OpKind::Mul.name(), opt!(options!(op, MulOptions), fused_activation_function, NONE))?,
        B::Div => binary(b, io, OpKind::Div.name(), opt!(options!(op, DivOptions), fused_activation_function, NONE))?,
        B::Maximum => binary(b, io, OpKind::Max.name(), NONE)?,
        B::Minimum => binary(b, io, OpKind::Min.name(), NONE)?,
        B::Prelu => binary(b, io, "PRelu", NONE)?,
        B::Logistic => unary(b, io, OpKind::Sigmoid.name(), vec![])?,
        B::Tanh => unary(b, io, OpKind::Tanh.name(), vec![])?,
        B::Relu => unary(b, io, OpKind::Relu.name(), vec![])?,
        B::HardSwish => unary(b, io, OpKind::HardSwish.name(), vec![])?,
        B::Exp => unary(b, io, OpKind::Exp.name(), vec![])?,
        B::Abs => unary(b, io, OpKind::Abs.name(), vec![])?,
        B::Neg => unary(b, io, OpKind::Neg.name(), vec![])?,
        B::Sqrt => unary(b, io, OpKind::Sqrt.name(), vec![])?,
        B::Elu => unary(b, io, OpKind::Elu.name(), vec![("alpha", Attr::Float(1.0))])?,
        B::LeakyRelu => {
            let alpha = opt!(options!(op, LeakyReluOptions), alpha, 0.0);
            unary(b, io, OpKind::LeakyRelu.name(), vec![("alpha", Attr::Float(alpha))])?
        }
        B::Relu6 | B::ReluN1To1 => {
            let (lo, hi) = if code == B::Relu6 { (0.0, 6.0) } else { (-1.0, 1.0) };
            let lo = b.init("min", Tensor::scalar_f32(lo));
            let hi = b.init("max", Tensor::scalar_f32(hi));
            unary_with(b, io, OpKind::Clip.name(), vec![lo, hi])?
        }
        B::ResizeBilinear | B::ResizeNearestNeighbor => resize(b, op, io)?,
        _ => return shape_ops::convert(b, op, io),
    }
    Ok(true)
}

/// The explicit (begin, end) padding TFLite computes for SAME (extra at the end) or VALID.
pub(super) fn pads(padding: fb::Padding, size: usize, k: usize, stride: usize, dilation: usize) -> (usize, usize) {
    if padding == fb::Padding::Valid {
        return (0, 0);
    }
    let out = size.div_ceil(stride.max(1));
    let effective = (k.max(1) - 1) * dilation + 1;
    let total = ((out.max(1) - 1) * stride + effective).saturating_sub(size);
    (total / 2, total - total / 2)
}

pub(super) fn positive(io: &Io, v: i32, what: &str) -> Result<usize, ModelError> {
    usize::try_from(v).ok().filter(|&v| v > 0).ok_or_else(|| io.err(format!("{what} {v} must be positive")))
}

/// The static `[N, H, W, C]` of an input.
pub(super) fn nhwc_dims(b: &Builder, io: &Io, t: usize) -> Result<[usize; 4], ModelError> {
    let d = b.info(t).dims()?;
    <[usize; 4]>::try_from(d.as_slice())
        .map_err(|_| io.err(format!("input `{}` must have rank 4, it has shape {d:?}", b.name(t))))
}

/// A CONV_2D's or DEPTHWISE_CONV_2D's options (defaults where the operator has none), strides
/// and dilations checked positive: what the float and the int8 loaders both read.
pub(super) struct ConvOptions {
    pub(super) padding: fb::Padding,
    /// (width, height).
    pub(super) stride: (usize, usize),
    /// (width, height).
    pub(super) dilation: (usize, usize),
    pub(super) act: fb::ActivationFunctionType,
}

/// Reads [`ConvOptions`].
pub(super) fn conv_options(op: &fb::OperatorRef<'_>, io: &Io, depthwise: bool) -> Result<ConvOptions, ModelError> {
    // The two option tables have the same fields.
    macro_rules! fields {
        ($o:expr) => {
            (
                opt!($o, padding, fb::Padding::Same),
                opt!($o, stride_w, 1),
                opt!($o, stride_h, 1),
                opt!($o, fused_activation_function, NONE),
                opt!($o, dilation_w_factor, 1),
                opt!($o, dilation_h_factor, 1),
            )
        };
    }
    let (padding, sw, sh, act, dw, dh) =
        if depthwise { fields!(options!(op, DepthwiseConv2DOptions)) } else { fields!(options!(op, Conv2DOptions)) };
    Ok(ConvOptions {
        padding,
        stride: (positive(io, sw, "stride")?, positive(io, sh, "stride")?),
        dilation: (positive(io, dw, "dilation")?, positive(io, dh, "dilation")?),
        act,
    })
}

/// TRANSPOSE_CONV's options (no dilation) and its output_shape input.
pub(super) struct TransposeConvArgs {
    pub(super) conv: ConvOptions,
    /// The output_shape input (input 0): `[N, H, W, C]`.
    pub(super) shape: [i64; 4],
    /// The output height and width, positive.
    pub(super) hw: (usize, usize),
}

/// Reads [`TransposeConvArgs`].
pub(super) fn transpose_conv_options(
    b: &Builder,
    op: &fb::OperatorRef<'_>,
    io: &Io,
) -> Result<TransposeConvArgs, ModelError> {
    let o = options!(op, TransposeConvOptions);
    let (sw, sh) = (positive(io, opt!(o, stride_w, 1), "stride")?, positive(io, opt!(o, stride_h, 1), "stride")?);
    let options = ConvOptions {
        padding: opt!(o, padding, fb::Padding::Same),
        stride: (sw, sh),
        dilation: (1, 1),
        act: opt!(o, fused_activation_function, NONE),
    };
    let out_shape = io.ints(b, 0)?;
    let shape = <[i64; 4]>::try_from(out_shape.as_slice())
        .map_err(|_| io.err(format!("output_shape {out_shape:?} must have 4 values")))?;
    let (oh, ow) = (usize::try_from(shape[1]).unwrap_or(0), usize::try_from(shape[2]).unwrap_or(0));
    if oh == 0 || ow == 0 {
        return Err(io.err(format!("output_shape {out_shape:?} must be positive")));
    }
    Ok(TransposeConvArgs { conv: options, shape, hw: (oh, ow) })
}

/// A FULLY_CONNECTED's fused activation; shuffled weights are refused.
pub(super) fn fc_options(op: &fb::OperatorRef<'_>, io: &Io) -> Result<fb::ActivationFunctionType, ModelError> {
    let o = options!(op, FullyConnectedOptions);
    if opt!(o, weights_format, fb::FullyConnectedOptionsWeightsFormat::Default)
        != fb::FullyConnectedOptionsWeightsFormat::Default
    {
        return Err(io.err("shuffled weights are not supported"));
    }
    Ok(opt!(o, fused_activation_function, NONE))
}

fn conv(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io, depthwise: bool) -> Result<(), ModelError> {
    let (x, w, y) = (io.input(0)?, io.input(1)?, io.output(0)?);
    let ConvOptions { padding, stride: (sw, sh), dilation: (dw, dh), act } = conv_options(op, io, depthwise)?;
    let [_, h, wid, c] = nhwc_dims(b, io, x)?;
    let weights = b.constant(w).ok_or_else(|| io.err("non-constant weights are not supported"))?;
    // Dynamic-range models give int8 weights to the op itself (a hybrid kernel): dequantized here.
    let weights = shape_ops::dequantized(weights, &b.info(w).quant).map_err(|e| io.err(e))?;
    let [o, kh, kw, i] = <[usize; 4]>::try_from(weights.shape.as_slice())
        .map_err(|_| io.err(format!("weights of shape {:?}, expected rank 4", weights.shape)))?;
    // OHWI → OIHW; depthwise 1HWO → O1HW with one group per input channel.
    let (perm, group) = if depthwise {
        // [1, kh, kw, C · multiplier]
        if o != 1 || c == 0 || i % c != 0 || i == 0 {
            return Err(io.err(format!("depthwise weights {:?} do not fit {c} input channels", weights.shape)));
        }
        ([3, 0, 1, 2], c)
    } else {
        if i == 0 || c % i != 0 {
            return Err(io.err(format!("weights {:?} do not fit {c} input channels", weights.shape)));
        }
        ([0, 3, 1, 2], c / i)
    };
    let (pt, pb) = pads(padding, h, kh, sh, dh);
    let (pl, pr) = pads(padding, wid, kw, sw, dw);
    let xin = b.nchw(x)?;
    let wname = match b.dequantize_linear(w, Some(&perm))? {
        Some(dq) => dq,
        None => b.init("weights_oihw", permute(&weights, &perm)?),
    };
    let mut inputs = vec![xin, wname];
    if let Some(bias) = io.optional(2) {
        inputs.push(bias_input(b, bias)?);
    }
    let out = b.out_nchw(y);
    let pre = b.fused(act, out)?;
    b.node(
        OpKind::Conv.name(),
        inputs,
        vec![pre],
        vec![
            ("kernel_shape", ints(&[kh, kw])),
            ("strides", ints(&[sh, sw])),
            ("dilations", ints(&[dh, dw])),
            ("pads", ints(&[pt, pl, pb, pr])),
            ("group", Attr::Int(group as i64)),
        ],
    );
    Ok(())
}

fn pool(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let (x, y) = (io.input(0)?, io.output(0)?);
    let o = options!(op, Pool2DOptions);
    let padding = opt!(o, padding, fb::Padding::Same);
    let (sw, sh) = (positive(io, opt!(o, stride_w, 1), "stride")?, positive(io, opt!(o, stride_h, 1), "stride")?);
    let (kw, kh) = (
        positive(io, opt!(o, filter_width, 1), "filter size")?,
        positive(io, opt!(o, filter_height, 1), "filter size")?,
    );
    let act = opt!(o, fused_activation_function, NONE);
    let [_, h, w, _] = nhwc_dims(b, io, x)?;
    let (pt, pb) = pads(padding, h, kh, sh, 1);
    let (pl, pr) = pads(padding, w, kw, sw, 1);
    let xin = b.nchw(x)?;
    let out = b.out_nchw(y);
    let pre = b.fused(act, out)?;
    let kind = if io.code == fb::BuiltinOperator::MaxPool2d { OpKind::MaxPool } else { OpKind::AveragePool };
    // AveragePool's default count_include_pad = 0 divides by the valid taps, as TFLite does.
    b.node(
        kind.name(),
        vec![xin],
        vec![pre],
        vec![("kernel_shape", ints(&[kh, kw])), ("strides", ints(&[sh, sw])), ("pads", ints(&[pt, pl, pb, pr]))],
    );
    Ok(())
}

fn fully_connected(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let (x, w, y) = (io.input(0)?, io.input(1)?, io.output(0)?);
    let act = fc_options(op, io)?;
    let wd = b.info(w).dims()?;
    let [_, k] = <[usize; 2]>::try_from(wd.as_slice())
        .map_err(|_| io.err(format!("weights of shape {wd:?}, expected rank 2")))?;
    let mut xin = b.nhwc(x);
    if b.rank(x) != 2 {
        let shape = b.init("flat_shape", Tensor::vec_i64(vec![-1, k as i64]));
        let flat = b.fresh(&format!("{xin}__flat"));
        b.node(OpKind::Reshape.name(), vec![xin, shape], vec![flat.clone()], vec![]);
        xin = flat;
    }
    let wname = match (b.dequantize_linear(w, None)?, b.constant(w)) {
        (Some(dq), _) => dq,
        (None, Some(v)) if !matches!(v.data, crate::model::Data::F32(_)) => {
            let v = shape_ops::dequantized(v, &b.info(w).quant).map_err(|e| io.err(e))?;
            b.init("weights", v)
        }
        _ => b.nhwc(w),
    };
    let mut inputs = vec![xin, wname];
    if let Some(bias) = io.optional(2) {
        inputs.push(bias_input(b, bias)?);
    }
    let out = b.nhwc(y);
    let yd: Vec<i64> = b.info(y).signature.iter().map(|d| d.map_or(-1, |d| d as i64)).collect();
    let pre = b.fused(act, out)?;
    if yd.len() == 2 {
        b.node(OpKind::Gemm.name(), inputs, vec![pre], vec![("transB", Attr::Int(1))]);
    } else {
        let gemm = b.fresh(&format!("{pre}__2d"));
        b.node(OpKind::Gemm.name(), inputs, vec![gemm.clone()], vec![("transB", Attr::Int(1))]);
        let shape = b.init("out_shape", Tensor::vec_i64(yd));
        b.node(OpKind::Reshape.name(), vec![gemm, shape], vec![pre], vec![]);
    }
    Ok(())
}

/// A bias: the file's int32 data behind `DequantizeLinear` in QDQ form, else as it is.
fn bias_input(b: &mut Builder, bias: usize) -> Result<String, ModelError> {
    Ok(match b.dequantize_linear(bias, None)? {
        Some(dq) => dq,
        None => b.nhwc(bias),
    })
}

/// Whether `t` was computed in NCHW (a non-constant with a twin).
fn computed_nchw(b: &Builder, t: usize) -> bool {
    !b.is_const(t) && b.has_nchw(t)
}

/// Element-wise binary op (NumPy broadcasting), in NCHW when its non-constant inputs are.
fn binary(b: &mut Builder, io: &Io, op: &str, act: fb::ActivationFunctionType) -> Result<(), ModelError> {
    let (a, c, y) = (io.input(0)?, io.input(1)?, io.output(0)?);
    let nchw = b.rank(y) == 4
        && [a, c].iter().any(|&t| computed_nchw(b, t))
        && [a, c].iter().all(|&t| computed_nchw(b, t) || (b.is_const(t) && b.rank(t) <= 4));
    let (inputs, out) = if nchw {
        let mut v = Vec::new();
        for t in [a, c] {
            v.push(if b.is_const(t) { b.const_nchw_broadcast(t)? } else { b.nchw(t)? });
        }
        (v, b.out_nchw(y))
    } else {
        (vec![b.nhwc(a), b.nhwc(c)], b.nhwc(y))
    };
    let pre = b.fused(act, out)?;
    b.node(op, inputs, vec![pre], vec![]);
    Ok(())
}

pub(super) fn unary(b: &mut Builder, io: &Io, op: &str, attrs: Vec<(&str, Attr)>) -> Result<(), ModelError> {
    let (x, y) = (io.input(0)?, io.output(0)?);
    let (xin, out) = if computed_nchw(b, x) { (b.nchw(x)?, b.out_nchw(y)) } else { (b.nhwc(x), b.nhwc(y)) };
    b.node(op, vec![xin], vec![out], attrs);
    Ok(())
}

/// A unary op with extra constant inputs (Clip's bounds).
fn unary_with(b: &mut Builder, io: &Io, op: &str, extra: Vec<String>) -> Result<(), ModelError> {
    let (x, y) = (io.input(0)?, io.output(0)?);
    let (xin, out) = if computed_nchw(b, x) { (b.nchw(x)?, b.out_nchw(y)) } else { (b.nhwc(x), b.nhwc(y)) };
    let mut inputs = vec![xin];
    inputs.extend(extra);
    b.node(op, inputs, vec![out], vec![]);
    Ok(())
}

/// RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR → `Resize` with the coordinate mapping TFLite's
/// kernels use.
fn resize(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let (x, y) = (io.input(0)?, io.output(0)?);
    let size = io.ints(b, 1)?;
    let [nh, nw] =
        <[i64; 2]>::try_from(size.as_slice()).map_err(|_| io.err(format!("size {size:?} must have 2 values")))?;
    let [n, _, _, c] = nhwc_dims(b, io, x)?;
    let bilinear = io.code == fb::BuiltinOperator::ResizeBilinear;
    let (align, half) = if bilinear {
        let o = options!(op, ResizeBilinearOptions);
        (opt!(o, align_corners, false), opt!(o, half_pixel_centers, false))
    } else {
        let o = options!(op, ResizeNearestNeighborOptions);
        (opt!(o, align_corners, false), opt!(o, half_pixel_centers, false))
    };
    let (mode, coord, nearest) = match (bilinear, align, half) {
        (true, true, _) => ("linear", "align_corners", "floor"),
        (true, false, true) => ("linear", "half_pixel", "floor"),
        (true, false, false) => ("linear", "asymmetric", "floor"),
        // TFLite's nearest: floor((out + 0.5) · in / out) with half-pixel centres, round() of
        // out · (in − 1) / (out − 1) with aligned corners (ties away from zero: up).
        (false, true, _) => ("nearest", "align_corners", "round_prefer_ceil"),
        (false, false, true) => ("nearest", "half_pixel", "round_prefer_ceil"),
        (false, false, false) => ("nearest", "asymmetric", "floor"),
    };
    let sizes = b.init("sizes", Tensor::vec_i64(vec![n as i64, c as i64, nh, nw]));
    let xin = b.nchw(x)?;
    let out = b.out_nchw(y);
    b.node(
        "Resize",
        vec![xin, String::new(), String::new(), sizes],
        vec![out],
        vec![
            ("mode", Attr::String(mode.into())),
            ("coordinate_transformation_mode", Attr::String(coord.into())),
            ("nearest_mode", Attr::String(nearest.into())),
        ],
    );
    Ok(())
}
