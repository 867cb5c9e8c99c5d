//! `qplay.tfl.Add`, `qplay.tfl.Sub`, `qplay.tfl.Mul`: TFLite's int8 element-wise arithmetic
//! with NumPy broadcasting (`reference_integer_ops::Add` / `BroadcastAdd6DSlow`,
//! `reference_ops::BroadcastQuantSubSlow`, `reference_integer_ops::Mul`).
//!
//! ADD and SUB bring both inputs to a common scale first: each `(x − zp) · 2^20` is multiplied
//! by `s / (2 · max(sA, sB))` ([`mbqm_lt1`]), the sum or difference by
//! `2 · max(sA, sB) / (2^20 · sC)`, then `zC` is added and the fused activation's range
//! applied. MUL multiplies `(a − zA)(b − zB)` by `sA · sB / sC` (a float product and quotient,
//! as `mul.cc` computes it).

use super::fixed::{mbqm, mbqm_lt1, quantize_multiplier};
use super::{attr_f32, attr_i32, check_multiplier, code_bits, codes_of, is_activation_type, Code};
use crate::model::{DType, Node, Tensor};
use crate::ops::math::broadcast::{broadcast_shapes, broadcast_strides, for_each_offset};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// The op types.
pub const ADD: &str = "qplay.tfl.Add";
/// Subtraction.
pub const SUB: &str = "qplay.tfl.Sub";
/// Multiplication.
pub const MUL: &str = "qplay.tfl.Mul";
/// MAXIMUM: the larger code (TFLite compares the codes as they are).
pub const MAXIMUM: &str = "qplay.tfl.Maximum";
/// MINIMUM.
pub const MINIMUM: &str = "qplay.tfl.Minimum";

/// The arithmetic of one op.
#[derive(Debug, Clone, Copy)]
pub enum Arith {
    /// ADD (`sign = 1`) or SUB (`sign = −1`): the inputs' and the output's multipliers.
    AddSub {
        /// 1 for ADD, −1 for SUB.
        sign: i32,
        /// `(multiplier, shift)` of input A.
        a: (i32, i32),
        /// Of input B.
        b: (i32, i32),
        /// Of the output.
        out: (i32, i32),
    },
    /// MUL: the product's multiplier.
    Mul((i32, i32)),
    /// MAXIMUM (`true`) or MINIMUM of the codes.
    MaxMin(bool),
}

/// A built int8 ADD, SUB or MUL.
#[derive(Debug, Clone)]
pub struct TflBinary {
    /// The arithmetic.
    pub arith: Arith,
    /// Zero points of A, B and the output.
    pub zps: [i32; 3],
    /// The fused activation's range.
    pub act: (i32, i32),
    /// ADD and SUB's left shift: 20 for int8 codes, 15 for int16 (attribute `bits`, 8 or 16).
    pub left_shift: i32,
}

fn build(node: &Node, kind: i32) -> Result<Box<dyn Op>, OpError> {
    let (sa, sb, sc) = (attr_f32(node, "a_scale")?, attr_f32(node, "b_scale")?, attr_f32(node, "y_scale")?);
    let zps = [attr_i32(node, "a_zp")?, attr_i32(node, "b_zp")?, attr_i32(node, "y_zp")?];
    let act = (attr_i32(node, "act_min")?, attr_i32(node, "act_max")?);
    let left_shift = if code_bits(node)? == 16 { 15 } else { 20 };
    let arith = if kind == 0 {
        Arith::Mul(check_multiplier(quantize_multiplier((sa * sb / sc) as f64))?)
    } else {
        let twice_max = (2.0 * sa.max(sb)) as f64;
        let below_one = |m: f64| -> Result<(i32, i32), OpError> {
            if !(m > 0.0 && m < 1.0) {
                return Err(OpError::malformed(format!(
                    "the scales give a rescaling multiplier {m}, outside (0, 1) as TFLite's integer ADD / SUB need"
                )));
            }
            check_multiplier(quantize_multiplier(m))
        };
        Arith::AddSub {
            sign: kind,
            a: below_one(sa as f64 / twice_max)?,
            b: below_one(sb as f64 / twice_max)?,
            out: below_one(twice_max / ((1 << left_shift) as f32 * sc) as f64)?,
        }
    };
    Ok(Box::new(TflBinary { arith, zps, act, left_shift }))
}

/// Builds `qplay.tfl.Add` (attributes `a_scale`, `a_zp`, `b_scale`, `b_zp`, `y_scale`, `y_zp`,
/// `act_min`, `act_max`).
pub fn build_add(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    build(node, 1)
}

/// Builds `qplay.tfl.Sub`.
pub fn build_sub(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    build(node, -1)
}

/// Builds `qplay.tfl.Mul`.
pub fn build_mul(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    build(node, 0)
}

/// Builds `qplay.tfl.Maximum` (no attributes).
pub fn build_maximum(_node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(TflBinary { arith: Arith::MaxMin(true), zps: [0; 3], act: (i32::MIN, i32::MAX), left_shift: 20 }))
}

/// Builds `qplay.tfl.Minimum`.
pub fn build_minimum(_node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(TflBinary { arith: Arith::MaxMin(false), zps: [0; 3], act: (i32::MIN, i32::MAX), left_shift: 20 }))
}

impl TflBinary {
    #[inline]
    fn apply<T: Code>(&self, x: T, y: T) -> T {
        let [za, zb, zc] = self.zps;
        let (a, b) = (x.get() - za, y.get() - zb);
        let raw = match self.arith {
            Arith::AddSub { sign, a: ma, b: mb, out } => {
                let sa = mbqm_lt1(a.wrapping_mul(1 << self.left_shift), ma.0, ma.1);
                let sb = mbqm_lt1(b.wrapping_mul(1 << self.left_shift), mb.0, mb.1);
                let sum = if sign > 0 { sa.wrapping_add(sb) } else { sa.wrapping_sub(sb) };
                mbqm_lt1(sum, out.0, out.1)
            }
            Arith::Mul((m, s)) => mbqm(a.wrapping_mul(b), m, s),
            Arith::MaxMin(max) => return if max { T::put(x.get().max(y.get())) } else { T::put(x.get().min(y.get())) },
        };
        T::put(raw.wrapping_add(zc).clamp(self.act.0, self.act.1).clamp(T::MIN, T::MAX))
    }

    fn run<T: Code>(&self, a: &Tensor, b: &Tensor) -> Result<Tensor, OpError> {
        let (av, bv) = (codes_of::<T>(a, "A")?, codes_of::<T>(b, "B")?);
        let out = broadcast_shapes(&a.shape, &b.shape)?;
        let y: Vec<T> = if a.shape == b.shape {
            av.iter().zip(bv).map(|(&x, &z)| self.apply(x, z)).collect()
        } else {
            let (ta, tb) = (broadcast_strides(&a.shape, &out), broadcast_strides(&b.shape, &out));
            let mut y = Vec::with_capacity(out.iter().product());
            for_each_offset(&out, [&ta, &tb], [0, 0], |[i, j]| {
                y.push(self.apply(av[i], bv[j]));
                Ok(())
            })?;
            y
        };
        Ok(Tensor { shape: out, data: T::data(y) })
    }
}

impl Op for TflBinary {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (a, b) = (input_fact(inputs, 0)?, input_fact(inputs, 1)?);
        if a.dtype != b.dtype || !is_activation_type(a.dtype) {
            return Err(OpError::mismatch(format!(
                "A and B must have one type, int8, uint8 or int16, got {:?} and {:?}",
                a.dtype, b.dtype
            )));
        }
        let bits16 = a.dtype == DType::I16;
        if matches!(self.arith, Arith::AddSub { .. }) && bits16 != (self.left_shift == 15) {
            return Err(OpError::mismatch(format!("this ADD / SUB was built for other codes than {:?}", a.dtype)));
        }
        Ok(vec![Fact::new(a.dtype, broadcast_shapes(&a.shape, &b.shape)?)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        Ok(vec![match a.dtype() {
            DType::I16 => self.run::<i16>(a, b)?,
            DType::U8 => self.run::<u8>(a, b)?,
            _ => self.run::<i8>(a, b)?,
        }])
    }
}
