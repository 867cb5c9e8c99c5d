//! The functions of codes a full-integer TFLite model's operators become 256- or 65 536-entry
//! `qplay.Lookup` tables through: element-wise activations on uint8 and int16 codes (int8 ones
//! are in [`crate::ops::tflite::tables`]), and uint8 CONCATENATION's rescaling of inputs whose
//! quantization differs from the output's.

use super::int_ops::q;
use super::layout::Builder;
use super::ops::{opt, options, Io};
use super::read::{fb, fb_err};
use crate::model::{Attr, Data, ModelError, OpKind, Tensor};
use crate::ops::tflite::{int16, tables};

/// An element-wise activation on uint8 codes as a 256-entry table, by the same formulas as on
/// int8 (LiteRT's kernels are the same templates), clamped to 0…255.
pub(super) fn activation_u8(
    op: &fb::OperatorRef<'_>,
    io: &Io,
    (xs, xz): (f32, i32),
    (ys, yz): (f32, i32),
) -> Result<[u8; 256], ModelError> {
    use fb::BuiltinOperator as B;
    let range = (0, 255);
    Ok(match io.code {
        B::Logistic => tables::table_u8(tables::logistic_fn(xs, xz, ys, yz)),
        B::Tanh => tables::table_u8(tables::tanh_fn(xs, xz, ys, yz)),
        B::HardSwish => tables::table_u8(
            tables::hard_swish_fn(xs, xz, ys, yz)
                .ok_or_else(|| io.err("the scales give an output multiplier above one"))?,
        ),
        B::Relu => tables::table_u8(tables::relu_x_fn((xs, xz), (ys, yz), 0.0, None, range)),
        B::Relu6 => tables::table_u8(tables::relu_x_fn((xs, xz), (ys, yz), 0.0, Some(6.0), range)),
        B::ReluN1To1 => tables::table_u8(tables::relu_x_fn((xs, xz), (ys, yz), -1.0, Some(1.0), range)),
        _ => tables::table_u8(tables::leaky_relu_fn(xs, xz, ys, yz, opt!(options!(op, LeakyReluOptions), alpha, 0.0))),
    })
}

/// An element-wise activation on int16 codes as a 65 536-entry table: LOGISTIC and TANH by
/// their fixed-point kernels (output scale 2^−15, zero point 0, as LiteRT requires), RELU,
/// RELU6, RELU_N1_TO_1 and LEAKY_RELU by the same formulas as on int8.
pub(super) fn activation16(
    b: &Builder,
    op: &fb::OperatorRef<'_>,
    io: &Io,
    (xs, xz): (f32, i32),
    (ys, yz): (f32, i32),
) -> Result<Vec<i16>, ModelError> {
    use fb::BuiltinOperator as B;
    let _ = b;
    let range = (-32768, 32767);
    Ok(match io.code {
        B::Logistic | B::Tanh => {
            let (log2, pot) = int16::checked_log2(ys);
            if !pot || log2 != -15 {
                return Err(io.err(format!("an int16 LOGISTIC / TANH output must have scale 2^-15, got {ys}")));
            }
            let tanh = io.code == B::Tanh;
            let params = int16::sigmoid_tanh_params(xs, tanh);
            if tanh {
                int16::table16(|v| int16::tanh16(v, params))
            } else {
                int16::table16(|v| int16::logistic16(v, params))
            }
        }
        B::Relu => int16::table16(tables::relu_x_fn((xs, xz), (ys, yz), 0.0, None, range)),
        B::Relu6 => int16::table16(tables::relu_x_fn((xs, xz), (ys, yz), 0.0, Some(6.0), range)),
        B::ReluN1To1 => int16::table16(tables::relu_x_fn((xs, xz), (ys, yz), -1.0, Some(1.0), range)),
        B::LeakyRelu => {
            let alpha = opt!(options!(op, LeakyReluOptions), alpha, 0.0);
            int16::table16(tables::leaky_relu_fn(xs, xz, ys, yz, alpha))
        }
        other => return Err(io.err(format!("{other:?} on int16 codes is not supported"))),
    })
}

/// A uint8 CONCATENATION whose inputs' scales or zero points differ from the output's
/// (`ConcatenationWithScaling`, which TF1's quantized exports use: their concatenated heads keep
/// each layer's range): each such input's codes are rescaled to the output's — in float, as
/// LiteRT does: `round(q · s + b) + zp_out` with `s = s_in · (1 / s_out)` and `b = −zp_in · s`,
/// half away from zero, clamped to 0…255 — a function of the code alone, so a 256-entry
/// `qplay.Lookup` table in front of a plain Concat. (int8 and int16 kernels refuse differing
/// scales, and so does qplay.)
pub(super) fn concat_with_scaling(
    b: &mut Builder,
    op: &fb::OperatorRef<'_>,
    io: &Io,
    ins: &[usize],
    y: usize,
) -> Result<(), ModelError> {
    let (ys, yz) = q(b, io, y)?;
    let rank = b.rank(y) as i64;
    let axis = i64::from(opt!(options!(op, ConcatenationOptions), axis, 0));
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&axis) {
        return Err(io.err(format!("axis {axis} is out of range for rank {rank}")));
    }
    let mut names = Vec::with_capacity(ins.len());
    for &t in ins {
        let (xs, xz) = q(b, io, t)?;
        let name = b.nhwc(t);
        if (xs, xz) == (ys, yz) {
            names.push(name);
            continue;
        }
        let table = tables::table_u8(rescale_u8_fn(xs, xz, ys, yz));
        let table = b.init("rescale", Tensor { shape: vec![256], data: Data::U8(table.to_vec()) });
        let out = b.fresh(&format!("{name}__rescaled"));
        b.node(OpKind::Lookup.name(), vec![name, table], vec![out.clone()], vec![]);
        names.push(out);
    }
    let out = b.nhwc(y);
    b.node(OpKind::Concat.name(), names, vec![out], vec![("axis", Attr::Int(axis))]);
    Ok(())
}

/// `ConcatenationWithScaling`'s rescaling of one uint8 code (before the clamp to 0…255).
fn rescale_u8_fn(xs: f32, xz: i32, ys: f32, yz: i32) -> impl Fn(i32) -> i32 {
    let scale = xs * (1.0 / ys);
    let bias = -(xz as f32) * scale;
    move |v| (v as f32 * scale + bias).round() as i32 + yz
}
