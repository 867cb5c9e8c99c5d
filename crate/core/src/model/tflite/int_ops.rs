//! The operators of a full-integer (int8) TFLite model → qplay's `qplay.tfl.*` ops
//! ([`crate::ops::tflite`]), which compute in the file's NHWC layout with TFLite's integer
//! semantics, and carry each tensor's scale and zero point as attributes. Element-wise
//! activations become `qplay.Lookup` tables computed here by TFLite's own formulas
//! ([`crate::ops::tflite::tables`]); ops that only move codes (RESHAPE, CONCATENATION with
//! equal quantization, TRANSPOSE, …) reuse the float loader's nodes, which are type-agnostic.

use super::int_tables;
use super::layout::{ints, Builder};
use super::ops::{conv_options, fc_options, nhwc_dims, opt, options, pads, positive, ConvOptions, Io, NONE};
use super::read::{fb, fb_err};
use crate::model::{Attr, DType, Data, ModelError, OpKind, Tensor};
use crate::ops::tflite::{binary, conv, fixed, mean, pool, quantize, resize, softmax, tables};

/// Whether the operator works on integer activations (a non-constant int8, uint8 or int16
/// input or output; int16 in 16x8 models).
pub(super) fn is_integer(b: &Builder, io: &Io) -> bool {
    io.ins
        .iter()
        .chain(io.outs)
        .flatten()
        .any(|&t| !b.is_const(t) && matches!(b.info(t).dtype, DType::I8 | DType::U8 | DType::I16))
}

/// The codes of an integer activation type.
fn code_range(t: DType) -> (i32, i32) {
    match t {
        DType::U8 => (0, 255),
        DType::I16 => (-32768, 32767),
        _ => (-128, 127),
    }
}

/// The zero points a tensor of type `t` can have.
fn zp_range(t: DType) -> std::ops::RangeInclusive<i64> {
    let (lo, hi) = code_range(t);
    lo as i64..=hi as i64
}

/// ONNX's type code of an integer type, for `y_type`.
fn type_code(t: DType) -> Attr {
    Attr::Int(match t {
        DType::U8 => 2,
        DType::I16 => 5,
        _ => 3,
    })
}

/// The activation type of an operator: int16 when its first activation input (or output) is.
pub(super) fn act_type(b: &Builder, io: &Io) -> DType {
    let t = io.ins.iter().chain(io.outs).flatten().find(|&&t| !b.is_const(t)).map(|&t| b.info(t).dtype);
    t.unwrap_or(DType::I8)
}

/// The `bits` attribute of ops whose parameters differ for int16 codes (ADD, SUB, SOFTMAX).
fn bits(b: &Builder, io: &Io) -> (String, Attr) {
    ("bits".to_string(), Attr::Int(if act_type(b, io) == DType::I16 { 16 } else { 8 }))
}

/// TFLite's int16 kernels require symmetric activations: zero point 0 on every int16 tensor of
/// the operator (LiteRT refuses the model otherwise).
fn symmetric16(b: &Builder, io: &Io) -> Result<(), ModelError> {
    for &t in io.ins.iter().chain(io.outs).flatten() {
        let info = b.info(t);
        if b.is_const(t) || info.dtype != DType::I16 {
            continue;
        }
        if let Ok((_, zp)) = per_tensor(b, t) {
            if zp != 0 {
                return Err(
                    io.err(format!("int16 tensor `{}` has zero point {zp}; TFLite's int16 kernels need 0", info.name))
                );
            }
        }
    }
    Ok(())
}

/// A per-tensor scale and zero point.
pub(super) fn q(b: &Builder, io: &Io, t: usize) -> Result<(f32, i32), ModelError> {
    per_tensor(b, t).map_err(|e| io.err(e.say("int8 tensor", &b.info(t).name)))
}

/// Why an 8-bit tensor's quantization is not one valid scale and zero point.
pub(super) enum PerTensor {
    /// No quantization, or one per channel.
    NotOne,
    /// A scale that is not finite and positive, or a zero point outside the type's range.
    Invalid(f32, i64),
}

impl PerTensor {
    /// The message, for the tensor `what` `name` ("the 8-bit input `x` needs …").
    pub(super) fn say(&self, what: &str, name: &str) -> String {
        match self {
            PerTensor::NotOne => format!("{what} `{name}` needs one scale and zero point"),
            PerTensor::Invalid(s, z) => format!("{what} `{name}` has scale {s} and zero point {z}"),
        }
    }
}

/// The one scale and zero point of the 8-bit tensor `t`: the scale finite and positive, the
/// zero point within its type's range.
pub(super) fn per_tensor(b: &Builder, t: usize) -> Result<(f32, i32), PerTensor> {
    let info = b.info(t);
    match &info.quant {
        Some((s, z, _)) if s.len() == 1 && z.len() <= 1 => {
            let zp = z.first().copied().unwrap_or(0);
            if s[0].is_finite() && s[0] > 0.0 && zp_range(info.dtype).contains(&zp) {
                Ok((s[0], zp as i32))
            } else {
                Err(PerTensor::Invalid(s[0], zp))
            }
        }
        _ => Err(PerTensor::NotOne),
    }
}

/// The range a fused activation leaves the int8 output `y`.
pub(super) fn act_range(
    b: &Builder,
    io: &Io,
    act: fb::ActivationFunctionType,
    y: usize,
) -> Result<[(&'static str, Attr); 2], ModelError> {
    use fb::ActivationFunctionType as A;
    let (scale, zp) = q(b, io, y)?;
    let relu = match act {
        A::None => None,
        A::Relu => Some((0.0, None)),
        A::Relu6 => Some((0.0, Some(6.0))),
        A::ReluN1To1 => Some((-1.0, Some(1.0))),
        other => return Err(io.err(format!("the fused activation {other:?} on integer codes is not supported"))),
    };
    let (tmin, tmax) = code_range(b.info(y).dtype);
    let (lo, hi) = fixed::activation_range(relu, scale, zp, tmin, tmax);
    Ok([("act_min", Attr::Int(lo as i64)), ("act_max", Attr::Int(hi as i64))])
}

pub(super) fn qattrs(prefix: &str, (s, z): (f32, i32)) -> [(String, Attr); 2] {
    [(format!("{prefix}_scale"), Attr::Float(s)), (format!("{prefix}_zp"), Attr::Int(z as i64))]
}

/// Appends a node whose attributes are `attrs` plus named quantization parameters.
pub(super) fn node(b: &mut Builder, op: &str, inputs: Vec<String>, out: String, attrs: Vec<(String, Attr)>) {
    let attrs: Vec<(&str, Attr)> = attrs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    b.node(op, inputs, vec![out], attrs);
}

pub(super) fn with(
    mut v: Vec<(String, Attr)>,
    more: impl IntoIterator<Item = (&'static str, Attr)>,
) -> Vec<(String, Attr)> {
    v.extend(more.into_iter().map(|(k, a)| (k.to_string(), a)));
    v
}

/// Converts one operator of a full-integer model; `false` when qplay does not map it.
pub(super) fn convert(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<bool, ModelError> {
    use fb::BuiltinOperator as B;
    symmetric16(b, io)?;
    match io.code {
        B::Conv2d | B::DepthwiseConv2d => convolution(b, op, io)?,
        B::FullyConnected => fully_connected(b, op, io)?,
        B::Add | B::Sub | B::Mul => {
            let act = match io.code {
                B::Add => opt!(options!(op, AddOptions), fused_activation_function, NONE),
                B::Sub => opt!(options!(op, SubOptions), fused_activation_function, NONE),
                _ => opt!(options!(op, MulOptions), fused_activation_function, NONE),
            };
            let (a, c, y) = (io.input(0)?, io.input(1)?, io.output(0)?);
            let mut attrs: Vec<(String, Attr)> = Vec::new();
            attrs.extend(qattrs("a", q(b, io, a)?));
            attrs.extend(qattrs("b", q(b, io, c)?));
            attrs.extend(qattrs("y", q(b, io, y)?));
            attrs.push(bits(b, io));
            let attrs = with(attrs, act_range(b, io, act, y)?);
            let kind = match io.code {
                B::Add => binary::ADD,
                B::Sub => binary::SUB,
                _ => binary::MUL,
            };
            let (ia, ic, out) = (b.nhwc(a), b.nhwc(c), b.nhwc(y));
            node(b, kind, vec![ia, ic], out, attrs);
        }
        B::MaxPool2d | B::AveragePool2d => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let o = options!(op, Pool2DOptions);
            let padding = opt!(o, padding, fb::Padding::Same);
            let (sw, sh) =
                (positive(io, opt!(o, stride_w, 1), "stride")?, positive(io, opt!(o, stride_h, 1), "stride")?);
            let (kw, kh) = (
                positive(io, opt!(o, filter_width, 1), "filter size")?,
                positive(io, opt!(o, filter_height, 1), "filter size")?,
            );
            let act = opt!(o, fused_activation_function, NONE);
            let [_, h, w, _] = nhwc_dims(b, io, x)?;
            let (pt, pb) = pads(padding, h, kh, sh, 1);
            let (pl, pr) = pads(padding, w, kw, sw, 1);
            let attrs = with(
                vec![
                    ("kernel_shape".into(), ints(&[kh, kw])),
                    ("strides".into(), ints(&[sh, sw])),
                    ("pads".into(), ints(&[pt, pl, pb, pr])),
                ],
                act_range(b, io, act, y)?,
            );
            let kind = if io.code == B::MaxPool2d { pool::MAX_POOL } else { pool::AVERAGE_POOL };
            let (xin, out) = (b.nhwc(x), b.nhwc(y));
            node(b, kind, vec![xin], out, attrs);
        }
        B::Softmax => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let beta = opt!(options!(op, SoftmaxOptions), beta, 1.0);
            let (ys, yz) = q(b, io, y)?;
            if act_type(b, io) == DType::U8 {
                if yz != 0 || (ys - 1.0 / 256.0).abs() > 0.001 / 256.0 {
                    return Err(io.err(format!(
                        "a uint8 softmax output must have scale 1/256 and zero point 0, got {ys} and {yz}"
                    )));
                }
            } else if act_type(b, io) == DType::I16 {
                if yz != 0 || (ys - 1.0 / 32768.0).abs() > 0.001 / 32768.0 {
                    return Err(io.err(format!(
                        "an int16 softmax output must have scale 1/32768 and zero point 0, got {ys} and {yz}"
                    )));
                }
            } else if yz != -128 || (ys - 1.0 / 256.0).abs() > 0.001 / 256.0 {
                return Err(io.err(format!(
                    "an int8 softmax output must have scale 1/256 and zero point −128, got {ys} and {yz}"
                )));
            }
            let attrs = vec![
                ("beta".to_string(), Attr::Float(beta)),
                ("x_scale".to_string(), Attr::Float(q(b, io, x)?.0)),
                bits(b, io),
            ];
            let (xin, out) = (b.nhwc(x), b.nhwc(y));
            node(b, softmax::SOFTMAX, vec![xin], out, attrs);
        }
        B::Mean => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let rank = b.rank(x) as i64;
            let axes: Vec<i64> = io.ints(b, 1)?.into_iter().map(|a| if a < 0 { a + rank } else { a }).collect();
            if axes.iter().any(|a| !(0..rank).contains(a)) {
                return Err(io.err(format!("axes {axes:?} out of range for rank {rank}")));
            }
            let keep = opt!(options!(op, ReducerOptions), keep_dims, false);
            let mut attrs =
                vec![("axes".to_string(), Attr::Ints(axes)), ("keepdims".to_string(), Attr::Int(keep as i64))];
            attrs.extend(qattrs("x", q(b, io, x)?));
            attrs.extend(qattrs("y", q(b, io, y)?));
            let (xin, out) = (b.nhwc(x), b.nhwc(y));
            node(b, mean::MEAN, vec![xin], out, attrs);
        }
        B::ResizeBilinear | B::ResizeNearestNeighbor => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let size = io.ints(b, 1)?;
            let (align, half) = if io.code == B::ResizeBilinear {
                let o = options!(op, ResizeBilinearOptions);
                (opt!(o, align_corners, false), opt!(o, half_pixel_centers, false))
            } else {
                let o = options!(op, ResizeNearestNeighborOptions);
                (opt!(o, align_corners, false), opt!(o, half_pixel_centers, false))
            };
            same_quantization(b, io, &[x], y)?;
            let kind = if io.code == B::ResizeBilinear { resize::BILINEAR } else { resize::NEAREST };
            let attrs = vec![
                ("size".to_string(), Attr::Ints(size)),
                ("align_corners".to_string(), Attr::Int(align as i64)),
                ("half_pixel_centers".to_string(), Attr::Int(half as i64)),
            ];
            let (xin, out) = (b.nhwc(x), b.nhwc(y));
            node(b, kind, vec![xin], out, attrs);
        }
        B::Maximum | B::Minimum => {
            let (a, c, y) = (io.input(0)?, io.input(1)?, io.output(0)?);
            let kind = if io.code == B::Maximum { binary::MAXIMUM } else { binary::MINIMUM };
            let (ia, ic, out) = (b.nhwc(a), b.nhwc(c), b.nhwc(y));
            b.node(kind, vec![ia, ic], vec![out], vec![]);
        }
        B::Logistic | B::Tanh | B::HardSwish | B::LeakyRelu | B::Relu | B::Relu6 | B::ReluN1To1 => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let ((xs, xz), (ys, yz)) = (q(b, io, x)?, q(b, io, y)?);
            if act_type(b, io) == DType::I16 {
                let table = int_tables::activation16(b, op, io, (xs, xz), (ys, yz))?;
                let table = b.init("table", Tensor { shape: vec![1 << 16], data: Data::I16(table) });
                let (xin, out) = (b.nhwc(x), b.nhwc(y));
                b.node(OpKind::Lookup.name(), vec![xin, table], vec![out], vec![]);
                return Ok(true);
            }
            if act_type(b, io) == DType::U8 {
                let table = int_tables::activation_u8(op, io, (xs, xz), (ys, yz))?;
                let table = b.init("table", Tensor { shape: vec![256], data: Data::U8(table.to_vec()) });
                let (xin, out) = (b.nhwc(x), b.nhwc(y));
                b.node(OpKind::Lookup.name(), vec![xin, table], vec![out], vec![]);
                return Ok(true);
            }
            let table = match io.code {
                B::Logistic => tables::logistic(xs, xz, ys, yz),
                B::Tanh => tables::tanh(xs, xz, ys, yz),
                B::HardSwish => tables::hard_swish(xs, xz, ys, yz)
                    .ok_or_else(|| io.err("the scales give an output multiplier above one"))?,
                B::Relu => tables::relu_x(xs, xz, ys, yz, 0.0, None),
                B::Relu6 => tables::relu_x(xs, xz, ys, yz, 0.0, Some(6.0)),
                B::ReluN1To1 => tables::relu_x(xs, xz, ys, yz, -1.0, Some(1.0)),
                _ => tables::leaky_relu(xs, xz, ys, yz, opt!(options!(op, LeakyReluOptions), alpha, 0.0)),
            };
            let table = b.init("table", Tensor { shape: vec![256], data: Data::I8(table.to_vec()) });
            let (xin, out) = (b.nhwc(x), b.nhwc(y));
            b.node(OpKind::Lookup.name(), vec![xin, table], vec![out], vec![]);
        }
        B::Quantize => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let yq = q(b, io, y)?;
            let yt = b.info(y).dtype;
            if !matches!(yt, DType::I8 | DType::U8 | DType::I16) {
                return Err(io.err(format!("QUANTIZE to {yt:?} is not supported")));
            }
            let (xin, out) = (b.nhwc(x), b.nhwc(y));
            match b.info(x).dtype {
                DType::F32 => node(
                    b,
                    quantize::QUANTIZE,
                    vec![xin],
                    out,
                    with(qattrs("y", yq).into(), [("y_type", type_code(yt))]),
                ),
                DType::I8 | DType::U8 | DType::I16 => {
                    let mut attrs: Vec<(String, Attr)> = qattrs("x", q(b, io, x)?).into();
                    attrs.extend(qattrs("y", yq));
                    node(b, quantize::REQUANTIZE, vec![xin], out, with(attrs, [("y_type", type_code(yt))]))
                }
                other => return Err(io.err(format!("QUANTIZE from {other:?} is not supported"))),
            }
        }
        B::Dequantize => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let xq = q(b, io, x)?;
            let (xin, out) = (b.nhwc(x), b.nhwc(y));
            node(b, quantize::DEQUANTIZE, vec![xin], out, qattrs("x", xq).into());
        }
        B::Pad | B::Padv2 => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            same_quantization(b, io, &[x], y)?;
            let p = io.ints(b, 1)?;
            let rank = b.rank(x);
            if p.len() != 2 * rank {
                return Err(io.err(format!("paddings {p:?} do not fit rank {rank}")));
            }
            let value = match io.optional(2).and_then(|t| b.constant(t)) {
                Some(Tensor { data: Data::I8(v), .. }) if v.len() == 1 => Data::I8(vec![v[0]]),
                Some(Tensor { data: Data::I16(v), .. }) if v.len() == 1 => Data::I16(vec![v[0]]),
                Some(Tensor { data: Data::U8(v), .. }) if v.len() == 1 => Data::U8(vec![v[0]]),
                Some(_) => return Err(io.err("the padding value must be one integer constant of the input's type")),
                None if b.info(x).dtype == DType::I16 => Data::I16(vec![q(b, io, y)?.1 as i16]),
                None if b.info(x).dtype == DType::U8 => Data::U8(vec![q(b, io, y)?.1 as u8]),
                None => Data::I8(vec![q(b, io, y)?.1 as i8]),
            };
            let mut pads: Vec<i64> = (0..rank).map(|a| p[2 * a]).collect();
            pads.extend((0..rank).map(|a| p[2 * a + 1]));
            let pads = b.init("pads", Tensor::vec_i64(pads));
            let value = b.init("value", Tensor { shape: vec![], data: value });
            let (xin, out) = (b.nhwc(x), b.nhwc(y));
            b.node("Pad", vec![xin, pads, value], vec![out], vec![("mode", Attr::String("constant".into()))]);
        }
        B::Concatenation => {
            let y = io.output(0)?;
            let ins: Vec<usize> = (0..io.ins.len()).map(|i| io.input(i)).collect::<Result<_, _>>()?;
            if opt!(options!(op, ConcatenationOptions), fused_activation_function, NONE) != NONE {
                return Err(io.err("a fused activation on an integer concatenation is not supported"));
            }
            if act_type(b, io) == DType::U8 && same_quantization(b, io, &ins, y).is_err() {
                return int_tables::concat_with_scaling(b, op, io, &ins, y).map(|()| true);
            }
            same_quantization(b, io, &ins, y)?;
            return super::shape_ops::convert(b, op, io);
        }
        B::Reshape
        | B::Squeeze
        | B::ExpandDims
        | B::Transpose
        | B::Gather
        | B::Split
        | B::Pack
        | B::Unpack
        | B::StridedSlice => return super::shape_ops::convert(b, op, io),
        _ => return super::int_layers::convert(b, op, io),
    }
    Ok(true)
}

/// TFLite's int8 kernels of ops that only move codes require one quantization throughout.
pub(super) fn same_quantization(b: &Builder, io: &Io, ins: &[usize], y: usize) -> Result<(), ModelError> {
    let want = q(b, io, y)?;
    for &t in ins {
        if q(b, io, t)? != want {
            return Err(io.err(format!(
                "input `{}` and output `{}` have different scales or zero points, which TFLite's int8 kernel refuses",
                b.info(t).name,
                b.info(y).name
            )));
        }
    }
    Ok(())
}

/// Weight scales (per tensor or along `axis`), with zero points all 0 — but for uint8 weights
/// (TF1's quantized models), one scale and one zero point, returned as attributes.
pub(super) fn weight_scales(
    b: &Builder,
    io: &Io,
    w: usize,
    channels: usize,
    axis: usize,
) -> Result<Vec<f32>, ModelError> {
    let info = b.info(w);
    let Some((s, z, dim)) = &info.quant else {
        return Err(io.err(format!("int8 weights `{}` have no scales", info.name)));
    };
    if info.dtype == DType::U8 {
        if s.len() != 1 || z.len() > 1 || !(s[0].is_finite() && s[0] > 0.0) {
            return Err(io.err(format!("uint8 weights `{}` need one positive scale and one zero point", info.name)));
        }
        return Ok(s.clone());
    }
    if z.iter().any(|&z| z != 0) {
        return Err(io.err(format!("int8 weights `{}` must be symmetric (zero points 0)", info.name)));
    }
    if s.len() != 1 && (s.len() != channels || *dim != axis) {
        return Err(io.err(format!("weights `{}` have {} scales for {channels} output channels", info.name, s.len())));
    }
    Ok(s.clone())
}

fn weights_and_bias(b: &mut Builder, io: &Io, w: usize) -> Result<Vec<String>, ModelError> {
    let want = if act_type(b, io) == DType::U8 { DType::U8 } else { DType::I8 };
    match b.constant(w) {
        Some(v) if v.dtype() == want => {}
        _ => {
            return Err(
                io.err(format!("the weights must be an {} constant", if want == DType::U8 { "uint8" } else { "int8" }))
            )
        }
    }
    let int16 = act_type(b, io) == DType::I16;
    let mut inputs = vec![b.nhwc(w)];
    if let Some(bias) = io.optional(2) {
        match b.constant(bias).map(|v| v.dtype()) {
            Some(DType::I32) => inputs.push(b.nhwc(bias)),
            Some(DType::I64) if int16 => inputs.push(b.nhwc(bias)),
            _ if int16 => return Err(io.err("the bias of a 16x8 layer must be an int64 or int32 constant")),
            _ => return Err(io.err("the bias must be an int32 constant")),
        }
    }
    Ok(inputs)
}

/// The attributes of uint8 weights (`uint8`, `w_zp`); none for int8 ones.
fn uint8_weights(b: &Builder, io: &Io, w: usize) -> Result<Vec<(String, Attr)>, ModelError> {
    let info = b.info(w);
    if info.dtype != DType::U8 {
        return Ok(Vec::new());
    }
    let zp = info.quant.as_ref().and_then(|(_, z, _)| z.first().copied()).unwrap_or(0);
    if !(0..=255).contains(&zp) {
        return Err(io.err(format!("uint8 weights `{}` have zero point {zp}", info.name)));
    }
    Ok(vec![("uint8".into(), Attr::Int(1)), ("w_zp".into(), Attr::Int(zp))])
}

fn convolution(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let (x, w, y) = (io.input(0)?, io.input(1)?, io.output(0)?);
    let depthwise = io.code == fb::BuiltinOperator::DepthwiseConv2d;
    let ConvOptions { padding, stride: (sw, sh), dilation: (dw, dh), act } = conv_options(op, io, depthwise)?;
    let [_, h, wid, _] = nhwc_dims(b, io, x)?;
    let wd = b.info(w).dims()?;
    let [o, kh, kw, i] = <[usize; 4]>::try_from(wd.as_slice())
        .map_err(|_| io.err(format!("weights of shape {wd:?}, expected rank 4")))?;
    let (channels, axis) = if depthwise { (i, 3) } else { (o, 0) };
    let scales = weight_scales(b, io, w, channels, axis)?;
    let uint8 = uint8_weights(b, io, w)?;
    let (pt, pb) = pads(padding, h, kh, sh, dh);
    let (pl, pr) = pads(padding, wid, kw, sw, dw);
    let mut attrs: Vec<(String, Attr)> = vec![
        ("strides".into(), ints(&[sh, sw])),
        ("dilations".into(), ints(&[dh, dw])),
        ("pads".into(), ints(&[pt, pl, pb, pr])),
        ("w_scales".into(), Attr::Floats(scales)),
    ];
    attrs.extend(uint8);
    attrs.extend(qattrs("x", q(b, io, x)?));
    attrs.extend(qattrs("y", q(b, io, y)?));
    let attrs = with(attrs, act_range(b, io, act, y)?);
    let mut inputs = vec![b.nhwc(x)];
    inputs.extend(weights_and_bias(b, io, w)?);
    let out = b.nhwc(y);
    node(b, if depthwise { conv::DEPTHWISE } else { conv::CONV }, inputs, out, attrs);
    Ok(())
}

fn fully_connected(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let (x, w, y) = (io.input(0)?, io.input(1)?, io.output(0)?);
    let act = fc_options(op, io)?;
    let wd = b.info(w).dims()?;
    let [units, _] = <[usize; 2]>::try_from(wd.as_slice())
        .map_err(|_| io.err(format!("weights of shape {wd:?}, expected rank 2")))?;
    let scales = weight_scales(b, io, w, units, 0)?;
    let mut attrs: Vec<(String, Attr)> = vec![("w_scales".into(), Attr::Floats(scales))];
    attrs.extend(uint8_weights(b, io, w)?);
    attrs.extend(qattrs("x", q(b, io, x)?));
    attrs.extend(qattrs("y", q(b, io, y)?));
    let attrs = with(attrs, act_range(b, io, act, y)?);
    let mut inputs = vec![b.nhwc(x)];
    inputs.extend(weights_and_bias(b, io, w)?);
    let out = b.nhwc(y);
    let yd: Vec<i64> = b.info(y).signature.iter().map(|d| d.map_or(-1, |d| d as i64)).collect();
    if yd.len() == 2 {
        node(b, conv::FULLY_CONNECTED, inputs, out, attrs);
    } else {
        let flat = b.fresh(&format!("{out}__2d"));
        node(b, conv::FULLY_CONNECTED, inputs, flat.clone(), attrs);
        let shape = b.init("out_shape", Tensor::vec_i64(yd));
        b.node(OpKind::Reshape.name(), vec![flat, shape], vec![out], vec![]);
    }
    Ok(())
}

/// Feeds the int8 graph input `t` from the float input `name` through TFLite's QUANTIZE, or
/// reads the int8 graph output `t` as the float output `name` through its DEQUANTIZE.
pub(super) fn boundary(b: &mut Builder, t: usize, name: &str, is_input: bool) -> Result<(), ModelError> {
    let what = if is_input { "input" } else { "output" };
    let dtype = b.info(t).dtype;
    let qp = per_tensor(b, t).map_err(|e| ModelError::Other(e.say(&format!("the 8-bit {what}"), name)))?;
    let int8 = b.name(t).to_string();
    if is_input {
        b.set_prefix(&"QUANTIZE_input", t);
        let attrs = with(qattrs("y", qp).into(), [("y_type", type_code(dtype))]);
        node(b, quantize::QUANTIZE, vec![name.to_string()], int8, attrs);
    } else {
        b.set_prefix(&"DEQUANTIZE_output", t);
        node(b, quantize::DEQUANTIZE, vec![int8], name.to_string(), qattrs("x", qp).into());
    }
    Ok(())
}
