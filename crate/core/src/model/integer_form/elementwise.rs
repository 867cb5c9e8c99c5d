//! ADD, SUB, MUL, MAXIMUM, MINIMUM, the conversions (QUANTIZE, requantization, DEQUANTIZE) and
//! the activation tables in integer ONNX.

use super::emit::{type_range, Emit};
use super::Ctx;
use crate::model::{Attr, DType, Data, Node, Tensor};
use crate::ops::tflite::binary::{Arith, TflBinary};
use crate::ops::tflite::prelu::TflPrelu;
use crate::ops::tflite::quantize::{Conversion, TflQuantize};

/// ADD and SUB (both inputs brought to twice the larger scale with `left_shift`, summed,
/// requantized), MUL (the product of the centred codes, requantized), MAXIMUM and MINIMUM (of
/// the codes).
pub(super) fn binary(e: &mut Emit, n: &Node, cx: &Ctx) -> Result<(), String> {
    let op = cx.built::<TflBinary>(n)?;
    let (a, b) = (cx.input(n, 0)?, cx.input(n, 1)?);
    let t = cx.code_type(a)?;
    let [za, zb, zc] = op.zps;
    let y = match op.arith {
        Arith::MaxMin(max) => {
            let (wa, wb) = (e.cast(a, DType::I64), e.cast(b, DType::I64));
            e.op(if max { "Max" } else { "Min" }, &[&wa, &wb], vec![])
        }
        Arith::Mul(m) => {
            let (ca, cb) = (e.centered(a, za), e.centered(b, zb));
            let p = e.op("Mul", &[&ca, &cb], vec![]);
            e.mbqm(&p, &[m])
        }
        Arith::AddSub { sign, a: ma, b: mb, out } => {
            let lift = e.i64s(vec![1i64 << op.left_shift]);
            let mut scaled = Vec::new();
            for (x, zp, m) in [(a, za, ma), (b, zb, mb)] {
                let c = e.centered(x, zp);
                let shifted = e.op("Mul", &[&c, &lift], vec![]);
                scaled.push(e.mbqm(&shifted, &[m]));
            }
            let sum = e.op(if sign > 0 { "Add" } else { "Sub" }, &[&scaled[0], &scaled[1]], vec![]);
            e.mbqm(&sum, &[out])
        }
    };
    let zp = if matches!(op.arith, Arith::MaxMin(_)) { 0 } else { zc };
    e.finish(&y, zp, op.act, t, &n.outputs[0]);
    Ok(())
}

/// QUANTIZE float → codes (`x / scale` rounded half away from zero: ONNX's `Round` rounds
/// half to even, so exact halves are rounded away from zero by hand), codes → codes (the
/// fixed-point multiplier), DEQUANTIZE (`DequantizeLinear`: `(q − zp) · scale` is exact in
/// float, as TFLite's double product rounded once).
pub(super) fn conversion(e: &mut Emit, n: &Node, cx: &Ctx) -> Result<(), String> {
    let op = cx.built::<TflQuantize>(n)?;
    let x = cx.input(n, 0)?;
    let out = &n.outputs[0];
    match op.conversion {
        Conversion::Quantize(scale, zp) => {
            let (lo, hi) = type_range(op.out);
            let s = e.constant(Tensor { shape: vec![], data: Data::F32(vec![scale]) });
            let v = e.op("Div", &[x, &s], vec![]);
            let magnitude = e.op("Abs", &[&v], vec![]);
            let floor = e.op("Floor", &[&magnitude], vec![]);
            let fraction = e.op("Sub", &[&magnitude, &floor], vec![]);
            let half = e.constant(Tensor { shape: vec![], data: Data::F32(vec![0.5]) });
            let tie = e.op("Equal", &[&fraction, &half], vec![]);
            let one = e.constant(Tensor { shape: vec![], data: Data::F32(vec![1.0]) });
            let up = e.op("Add", &[&floor, &one], vec![]);
            let sign = e.op("Sign", &[&v], vec![]);
            let away = e.op("Mul", &[&sign, &up], vec![]);
            let even = e.op("Round", &[&v], vec![]);
            let rounded = e.op("Where", &[&tie, &away, &even], vec![]);
            // Clamped in float first, so that the cast to int64 is defined for any input.
            let bound = |v: i32| Tensor { shape: vec![], data: Data::F32(vec![v as f32]) };
            let (l, h) = (e.constant(bound(lo - zp - 1)), e.constant(bound(hi - zp + 1)));
            let clamped = e.op("Clip", &[&rounded, &l, &h], vec![]);
            let wide = e.cast(&clamped, DType::I64);
            e.finish(&wide, zp, (lo, hi), op.out, out);
        }
        Conversion::Requantize(zin, m, zout) => {
            let c = e.centered(x, zin);
            let y = e.mbqm(&c, &[m]);
            e.finish(&y, zout, type_range(op.out), op.out, out);
        }
        Conversion::Dequantize(scale, zp) => {
            let t = cx.code_type(x)?;
            let s = e.constant(Tensor { shape: vec![], data: Data::F32(vec![scale]) });
            let z = e.constant(super::emit::scalar_of(t, zp));
            e.op_to("DequantizeLinear", &[x, &s, &z], out, vec![]);
        }
    }
    Ok(())
}

/// An activation as its 256-entry table (`qplay.Lookup`): `Gather` by the code, an int8 code's
/// negative index counting from the table's end as its two's-complement byte does.
pub(super) fn lookup(e: &mut Emit, n: &Node, cx: &Ctx) -> Result<(), String> {
    let (x, table) = (cx.input(n, 0)?, cx.input(n, 1)?);
    cx.code_type(x)?;
    let index = e.cast(x, DType::I32);
    e.op_to("Gather", &[table, &index], &n.outputs[0], vec![("axis", Attr::Int(0))]);
    Ok(())
}

/// PRELU: `x − x_zp` requantized by one multiplier where it is not negative, times its channel's
/// `alpha − alpha_zp` by the other where it is.
pub(super) fn prelu(e: &mut Emit, n: &Node, cx: &Ctx) -> Result<(), String> {
    let op = cx.built::<TflPrelu>(n)?;
    let (x, alpha) = (cx.input(n, 0)?, cx.input(n, 1)?);
    let t = cx.code_type(x)?;
    let v = e.centered(x, op.x_zp);
    let a = e.centered(alpha, op.alpha_zp);
    let positive = e.mbqm(&v, &[op.positive]);
    let scaled = e.op("Mul", &[&v, &a], vec![]);
    let negative = e.mbqm(&scaled, &[op.negative]);
    let zero = e.i64s(vec![0]);
    let below = e.op("Less", &[&v, &zero], vec![]);
    let y = e.op("Where", &[&below, &negative, &positive], vec![]);
    e.finish(&y, op.y_zp, type_range(t), t, &n.outputs[0]);
    Ok(())
}
