//! TFLite's element-wise math, comparison and selection operators, and the index operators of
//! post-processing inside a graph → IR nodes. Where ONNX has no single op (SQUARE,
//! SQUARED_DIFFERENCE, RSQRT, FLOOR_DIV, FLOOR_MOD, LOG_SOFTMAX, GELU, NOT_EQUAL) the nodes
//! compute TFLite's formula step by step with ONNX's own ops, so a converted file stays ONNX.

use super::layout::Builder;
use super::ops::{opt, options, unary, Io};
use super::read::{fb, fb_err};
use crate::model::{Attr, DType, ModelError, OpKind, Tensor};

/// Converts one operator; `false` when it is not one of this module's.
pub(super) fn convert(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<bool, ModelError> {
    use fb::BuiltinOperator as B;
    let float = |b: &Builder, io: &Io| -> Result<bool, ModelError> { Ok(b.info(io.input(0)?).dtype == DType::F32) };
    match io.code {
        B::Log => unary(b, io, OpKind::Log.name(), vec![])?,
        B::Sin => unary(b, io, "Sin", vec![])?,
        B::Cos => unary(b, io, "Cos", vec![])?,
        B::Floor => unary(b, io, "Floor", vec![])?,
        B::Ceil => unary(b, io, "Ceil", vec![])?,
        // TFLite's ROUND is half to even, as ONNX's.
        B::Round => unary(b, io, "Round", vec![])?,
        B::Sign => unary(b, io, "Sign", vec![])?,
        B::LogicalNot => unary(b, io, "Not", vec![])?,
        B::Square => {
            let (x, y) = (b.nhwc(io.input(0)?), b.nhwc(io.output(0)?));
            b.node(OpKind::Mul.name(), vec![x.clone(), x], vec![y], vec![]);
        }
        B::Rsqrt => {
            let (x, y) = (b.nhwc(io.input(0)?), b.nhwc(io.output(0)?));
            let root = step(b, OpKind::Sqrt.name(), vec![x], "sqrt");
            b.node(OpKind::Reciprocal.name(), vec![root], vec![y], vec![]);
        }
        B::SquaredDifference => {
            let (x, z, y) = two(b, io)?;
            let d = step(b, OpKind::Sub.name(), vec![x, z], "difference");
            b.node(OpKind::Mul.name(), vec![d.clone(), d], vec![y], vec![]);
        }
        B::Pow => simple(b, io, OpKind::Pow.name())?,
        B::Greater => simple(b, io, "Greater")?,
        B::GreaterEqual => simple(b, io, "GreaterOrEqual")?,
        B::Less => simple(b, io, "Less")?,
        B::LessEqual => simple(b, io, "LessOrEqual")?,
        B::Equal => simple(b, io, "Equal")?,
        B::LogicalAnd => simple(b, io, "And")?,
        B::LogicalOr => simple(b, io, "Or")?,
        B::NotEqual => {
            let (x, z, y) = two(b, io)?;
            let eq = step(b, "Equal", vec![x, z], "equal");
            b.node("Not", vec![eq], vec![y], vec![]);
        }
        B::FloorDiv if float(b, io)? => {
            let (x, z, y) = two(b, io)?;
            let q = step(b, OpKind::Div.name(), vec![x, z], "quotient");
            b.node("Floor", vec![q], vec![y], vec![]);
        }
        B::FloorDiv => {
            // Integers: (x − floor_mod(x, z)) / z is exact.
            let (x, z, y) = two(b, io)?;
            let m = b.fresh("floor_mod");
            b.node("Mod", vec![x.clone(), z.clone()], vec![m.clone()], vec![("fmod", Attr::Int(0))]);
            let d = step(b, OpKind::Sub.name(), vec![x, m], "multiple");
            b.node(OpKind::Div.name(), vec![d, z], vec![y], vec![]);
        }
        B::FloorMod if float(b, io)? => float_floor_mod(b, io)?,
        B::FloorMod => {
            let (x, z, y) = two(b, io)?;
            b.node("Mod", vec![x, z], vec![y], vec![("fmod", Attr::Int(0))]);
        }
        B::SelectV2 | B::Select => {
            let (c, x, z, y) = (io.input(0)?, io.input(1)?, io.input(2)?, io.output(0)?);
            if io.code == B::Select && b.info(c).shape != b.info(x).shape {
                return Err(io.err("SELECT with a condition of another shape than its values is not supported"));
            }
            let ins = vec![b.nhwc(c), b.nhwc(x), b.nhwc(z)];
            let out = b.nhwc(y);
            b.node("Where", ins, vec![out], vec![]);
        }
        B::Cast => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let to = b.info(y).dtype.onnx_code();
            let (xin, out) = (b.nhwc(x), b.nhwc(y));
            b.node(OpKind::Cast.name(), vec![xin], vec![out], vec![("to", Attr::Int(to as i64))]);
        }
        B::ArgMax | B::ArgMin => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let axis = *io.ints(b, 1)?.first().ok_or_else(|| io.err("the axis is empty"))?;
            let xin = b.nhwc(x);
            let kind = if io.code == B::ArgMax { "ArgMax" } else { "ArgMin" };
            let idx = with_index_type(b, io, y)?;
            b.node(kind, vec![xin], vec![idx], vec![("axis", Attr::Int(axis)), ("keepdims", Attr::Int(0))]);
        }
        B::TopkV2 => {
            let (x, vals, idx) = (io.input(0)?, io.output(0)?, io.output(1)?);
            let k = super::layer_ops::int64_input(b, io, 1)?;
            let shape = b.init("k_shape", Tensor::vec_i64(vec![1]));
            let k1 = step(b, OpKind::Reshape.name(), vec![k, shape], "k");
            let xin = b.nhwc(x);
            let v = b.nhwc(vals);
            let i = with_index_type(b, io, idx)?;
            b.node("TopK", vec![xin, k1], vec![v, i], vec![("axis", Attr::Int(-1))]);
        }
        B::Shape => {
            let (x, y) = (io.input(0)?, io.output(0)?);
            let xin = b.nhwc(x);
            let out = with_index_type(b, io, y)?;
            b.node("Shape", vec![xin], vec![out], vec![]);
        }
        B::LogSoftmax => log_softmax(b, io)?,
        B::Gelu => gelu(b, op, io)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// A node of one output named from `what`; returns the output.
fn step(b: &mut Builder, op: &str, inputs: Vec<String>, what: &str) -> String {
    let out = b.fresh(&format!("{}__{what}", inputs.first().map_or("", String::as_str)));
    b.node(op, inputs, vec![out.clone()], vec![]);
    out
}

/// The two inputs and the output, in the file's layout.
fn two(b: &mut Builder, io: &Io) -> Result<(String, String, String), ModelError> {
    let (x, z, y) = (io.input(0)?, io.input(1)?, io.output(0)?);
    Ok((b.nhwc(x), b.nhwc(z), b.nhwc(y)))
}

/// A binary op that is one ONNX op (NumPy broadcasting, as TFLite's).
fn simple(b: &mut Builder, io: &Io, op: &str) -> Result<(), ModelError> {
    let (x, z, y) = two(b, io)?;
    b.node(op, vec![x, z], vec![y], vec![]);
    Ok(())
}

/// The name an int64-index op (ArgMax, TopK, Shape) writes to for output `y`: `y` itself when
/// the file wants int64, else a name whose `Cast` to the file's type gives `y`.
fn with_index_type(b: &mut Builder, io: &Io, y: usize) -> Result<String, ModelError> {
    let out = b.nhwc(y);
    match b.info(y).dtype {
        DType::I64 => Ok(out),
        DType::I32 => {
            let wide = b.fresh(&format!("{out}__int64"));
            b.node(OpKind::Cast.name(), vec![wide.clone()], vec![out], vec![("to", Attr::Int(6))]);
            Ok(wide)
        }
        other => Err(io.err(format!("an index output of type {other:?} is not supported"))),
    }
}

/// FLOOR_MOD on floats, TFLite's formula: `r = fmod(x, z)`, plus `z` where `r ≠ 0` and the
/// signs of `r` and `z` differ.
fn float_floor_mod(b: &mut Builder, io: &Io) -> Result<(), ModelError> {
    let (x, z, y) = two(b, io)?;
    let r = b.fresh(&format!("{x}__fmod"));
    b.node("Mod", vec![x, z.clone()], vec![r.clone()], vec![("fmod", Attr::Int(1))]);
    let zero = b.init("zero", Tensor::scalar_f32(0.0));
    let r_zero = step(b, "Equal", vec![r.clone(), zero.clone()], "is_zero");
    let r_nonzero = step(b, "Not", vec![r_zero], "nonzero");
    let r_neg = step(b, "Less", vec![r.clone(), zero.clone()], "negative");
    let z_neg = step(b, "Less", vec![z.clone(), zero], "divisor_negative");
    let differ = step(b, "Xor", vec![r_neg, z_neg], "signs_differ");
    let fix = step(b, "And", vec![r_nonzero, differ], "shift");
    let shifted = step(b, OpKind::Add.name(), vec![r.clone(), z], "shifted");
    b.node("Where", vec![fix, shifted, r], vec![y], vec![]);
    Ok(())
}

/// LOG_SOFTMAX over the last axis, as TFLite's kernel: `(x − max) − log Σ exp(x − max)`.
fn log_softmax(b: &mut Builder, io: &Io) -> Result<(), ModelError> {
    let (x, y) = (b.nhwc(io.input(0)?), b.nhwc(io.output(0)?));
    let m = b.fresh(&format!("{x}__max"));
    let keep = ("keepdims", Attr::Int(1));
    b.node(
        OpKind::ReduceMax.name(),
        vec![x.clone()],
        vec![m.clone()],
        vec![("axes", Attr::Ints(vec![-1])), keep.clone()],
    );
    let shifted = step(b, OpKind::Sub.name(), vec![x, m], "shifted");
    let e = step(b, OpKind::Exp.name(), vec![shifted.clone()], "exp");
    let axes = b.init("axes", Tensor::vec_i64(vec![-1]));
    let s = b.fresh(&format!("{e}__sum"));
    b.node(OpKind::ReduceSum.name(), vec![e, axes], vec![s.clone()], vec![keep]);
    let l = step(b, OpKind::Log.name(), vec![s], "log");
    b.node(OpKind::Sub.name(), vec![shifted, l], vec![y], vec![]);
    Ok(())
}

/// GELU, TFLite's formulas: `½x(1 + erf(x/√2))`, or with `approximate`
/// `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`.
fn gelu(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<(), ModelError> {
    let approximate = opt!(options!(op, GeluOptions), approximate, false);
    let (x, y) = (b.nhwc(io.input(0)?), b.nhwc(io.output(0)?));
    let c = |b: &mut Builder, v: f32| b.init("constant", Tensor::scalar_f32(v));
    let inner = if approximate {
        let k = c(b, 0.044715);
        let t = step(b, OpKind::Mul.name(), vec![k, x.clone()], "cubic");
        let t = step(b, OpKind::Mul.name(), vec![t, x.clone()], "cubic");
        let t = step(b, OpKind::Mul.name(), vec![t, x.clone()], "cubic");
        let t = step(b, OpKind::Add.name(), vec![x.clone(), t], "inner");
        let s = c(b, (2.0 / std::f64::consts::PI).sqrt() as f32);
        let t = step(b, OpKind::Mul.name(), vec![s, t], "scaled");
        step(b, OpKind::Tanh.name(), vec![t], "tanh")
    } else {
        let s = c(b, std::f32::consts::FRAC_1_SQRT_2);
        let t = step(b, OpKind::Mul.name(), vec![x.clone(), s], "scaled");
        step(b, OpKind::Erf.name(), vec![t], "erf")
    };
    let one = c(b, 1.0);
    let p = step(b, OpKind::Add.name(), vec![one, inner], "one_plus");
    let half = c(b, 0.5);
    let hx = step(b, OpKind::Mul.name(), vec![half, x], "half");
    b.node(OpKind::Mul.name(), vec![hx, p], vec![y], vec![]);
    Ok(())
}
