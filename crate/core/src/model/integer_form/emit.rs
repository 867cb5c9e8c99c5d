//! Writing ONNX nodes for one rewritten op: fresh names, constants, and TFLite's fixed-point
//! requantization in standard integer ops.
//!
//! gemmlowp's arithmetic in int64 (every intermediate of a valid model fits, so nothing wraps):
//! `SaturatingRoundingDoublingHighMul(a, m)` is `(a·m + nudge) / 2^31` with C's truncating
//! division (ONNX `Div` on integers) and `nudge = 2^30` or `1 − 2^30` by the product's sign;
//! `RoundingDivideByPOT(x, e)` rounds half away from zero: `sign(x) · ((|x| + 2^(e−1)) / 2^e)`.

use crate::model::{Attr, Attrs, DType, Data, Fused, Node, Tensor};
use std::collections::HashMap;

/// ONNX's type code of an integer type.
pub(super) fn type_code(t: DType) -> i64 {
    t.onnx_code() as i64
}

/// The codes a type holds.
pub(super) fn type_range(t: DType) -> (i32, i32) {
    match t {
        DType::U8 => (0, 255),
        DType::I16 => (-32768, 32767),
        _ => (-128, 127),
    }
}

/// A scalar of an 8-bit type (a zero point).
pub(super) fn scalar_of(t: DType, v: i32) -> Tensor {
    let data = match t {
        DType::U8 => Data::U8(vec![v.clamp(0, 255) as u8]),
        _ => Data::I8(vec![v.clamp(-128, 127) as i8]),
    };
    Tensor { shape: vec![], data }
}

/// The nodes replacing one node, and the constants they add to the graph.
pub(super) struct Emit<'a> {
    /// The nodes written so far, in order.
    pub nodes: Vec<Node>,
    inits: &'a mut HashMap<String, Tensor>,
    prefix: String,
    count: usize,
}

impl<'a> Emit<'a> {
    /// Names start with `prefix` (short: TFLite's tensor names run to hundreds of characters,
    /// and a layer writes some thirty names).
    pub fn new(inits: &'a mut HashMap<String, Tensor>, prefix: &str) -> Emit<'a> {
        Emit { nodes: Vec::new(), inits, prefix: prefix.to_string(), count: 0 }
    }

    /// A new tensor name.
    pub fn fresh(&mut self) -> String {
        self.count += 1;
        format!("{}_{}", self.prefix, self.count)
    }

    /// A node with one output, named here.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let out = self.fresh();
        self.op_to(op, inputs, &out, attrs);
        out
    }

    /// A node writing `out`.
    pub fn op_to(&mut self, op: &str, inputs: &[&str], out: &str, attrs: Vec<(&str, Attr)>) {
        self.nodes.push(Node {
            name: format!("{}_{}n", self.prefix, self.nodes.len()),
            op_type: op.to_string(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![out.to_string()],
            attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
            fused: Fused::default(),
        });
    }

    /// A constant.
    pub fn constant(&mut self, t: Tensor) -> String {
        let name = self.fresh();
        self.inits.insert(name.clone(), t);
        name
    }

    /// int64 values: a scalar for one value, else a vector (per channel, on the last axis).
    pub fn i64s(&mut self, v: Vec<i64>) -> String {
        let shape = if v.len() == 1 { vec![] } else { vec![v.len()] };
        self.constant(Tensor { shape, data: Data::I64(v) })
    }

    /// int64 values with an explicit shape.
    pub fn i64s_shaped(&mut self, v: Vec<i64>, shape: Vec<usize>) -> String {
        self.constant(Tensor { shape, data: Data::I64(v) })
    }

    /// `Cast(x, to)`.
    pub fn cast(&mut self, x: &str, to: DType) -> String {
        self.op("Cast", &[x], vec![("to", Attr::Int(type_code(to)))])
    }

    /// `x − zp` in int64 (x: integer codes).
    pub fn centered(&mut self, x: &str, zp: i32) -> String {
        let wide = self.cast(x, DType::I64);
        if zp == 0 {
            return wide;
        }
        let z = self.i64s(vec![zp as i64]);
        self.op("Sub", &[&wide, &z], vec![])
    }

    /// `Transpose(x, perm)`.
    pub fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        self.op("Transpose", &[x], vec![("perm", Attr::Ints(perm.to_vec()))])
    }

    /// `MultiplyByQuantizedMultiplier(x, m, shift)` of an int64 tensor, one `(m, shift)` or one
    /// per channel of the last axis, in one division: for `a = x · 2^left` (`m ≥ 0`),
    /// gemmlowp's `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(a, m), right)` is
    /// `sign(a) · ⌊(|a|·m + 2^30 − [a < 0] + half · 2^31) / (2^31 · 2^right)⌋` with
    /// `half = 2^right / 2` (nested floor divisions of non-negative integers combine), every
    /// term below 2^63 for int32 `a`.
    pub fn mbqm(&mut self, x: &str, mults: &[(i32, i32)]) -> String {
        let m: Vec<i64> = mults.iter().map(|&(m, s)| (m.max(0) as i64) << s.clamp(0, 31)).collect();
        let right: Vec<u32> = mults.iter().map(|&(_, s)| (-s).clamp(0, 31) as u32).collect();
        let offset: Vec<i64> = right.iter().map(|&r| (1i64 << 30) + (((1i64 << r) >> 1) << 31)).collect();
        let divisor: Vec<i64> = right.iter().map(|&r| (1i64 << 31) << r).collect();
        let (m, offset, divisor) = (self.i64s(m), self.i64s(offset), self.i64s(divisor));
        let sign = self.op("Sign", &[x], vec![]);
        let magnitude = self.op("Abs", &[x], vec![]);
        let zero = self.i64s(vec![0]);
        let negative = self.op("Min", &[&sign, &zero], vec![]);
        let product = self.op("Mul", &[&magnitude, &m], vec![]);
        let nudged = self.op("Add", &[&product, &offset], vec![]);
        let nudged = self.op("Add", &[&nudged, &negative], vec![]);
        let quotient = self.op("Div", &[&nudged, &divisor], vec![]);
        self.op("Mul", &[&quotient, &sign], vec![])
    }

    /// gemmlowp's `SaturatingRoundingDoublingHighMul` of two int64 tensors holding int32
    /// values (its one saturating case, both `i32::MIN`, does not occur in what is written here).
    pub fn srdhm(&mut self, a: &str, b: &str) -> String {
        let ab = self.op("Mul", &[a, b], vec![]);
        let zero = self.i64s(vec![0]);
        let non_negative = self.op("GreaterOrEqual", &[&ab, &zero], vec![]);
        let (up, down) = (self.i64s(vec![1 << 30]), self.i64s(vec![1 - (1 << 30)]));
        let nudge = self.op("Where", &[&non_negative, &up, &down], vec![]);
        let nudged = self.op("Add", &[&ab, &nudge], vec![]);
        let two31 = self.i64s(vec![1 << 31]);
        self.op("Div", &[&nudged, &two31], vec![])
    }

    /// gemmlowp's `RoundingDivideByPOT`: `x / pot` rounded half away from zero, `half` being
    /// `pot / 2` (0 for `pot = 1`).
    pub fn rounding_divide(&mut self, x: &str, half: &str, pot: &str) -> String {
        let magnitude = self.op("Abs", &[x], vec![]);
        let rounded = self.op("Add", &[&magnitude, half], vec![]);
        let quotient = self.op("Div", &[&rounded, pot], vec![]);
        let sign = self.op("Sign", &[x], vec![]);
        self.op("Mul", &[&sign, &quotient], vec![])
    }

    /// gemmlowp's `SaturatingRoundingMultiplyByPOT<e>` for `e > 0`: `x · 2^e` saturated to int32.
    pub fn saturating_shift_left(&mut self, x: &str, e: u32) -> String {
        let p = self.i64s(vec![1i64 << e]);
        let y = self.op("Mul", &[x, &p], vec![]);
        let (lo, hi) = (self.i64s(vec![i32::MIN as i64]), self.i64s(vec![i32::MAX as i64]));
        self.op("Clip", &[&y, &lo, &hi], vec![])
    }

    /// An int64 tensor plus `zp`, clamped to `lo..=hi` and to the type's codes, cast to `to` as
    /// `out`.
    pub fn finish(&mut self, x: &str, zp: i32, (lo, hi): (i32, i32), to: DType, out: &str) {
        let mut y = x.to_string();
        if zp != 0 {
            let z = self.i64s(vec![zp as i64]);
            y = self.op("Add", &[&y, &z], vec![]);
        }
        let (tlo, thi) = type_range(to);
        let (lo, hi) = (lo.clamp(tlo, thi), hi.clamp(tlo, thi));
        let (l, h) = (self.i64s(vec![lo as i64]), self.i64s(vec![hi.max(lo) as i64]));
        let clipped = self.op("Clip", &[&y, &l, &h], vec![]);
        self.op_to("Cast", &[&clipped], out, vec![("to", Attr::Int(type_code(to)))]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Graph, Plan, ValueInfo};
    use crate::ops::tflite::fixed::mbqm;
    use crate::ops::Registry;

    /// The written `mbqm` run by qplay's ONNX kernels equals TFLite's on the extremes and on
    /// pseudo-random int32 sums, for every shift and per-channel multipliers.
    #[test]
    fn written_mbqm_equals_tflites() {
        let mut s = 7u32;
        let mut next = || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            s
        };
        let mut accs: Vec<i64> =
            vec![0, 1, -1, 2, -2, 3, -3, i32::MAX as i64, i32::MIN as i64 + 1, 1 << 20, -(1 << 20)];
        accs.extend((0..3000).map(|_| {
            let v = next();
            ((v as i32) >> (v % 31)) as i64
        }));
        for shift in -31..=8 {
            let mults: Vec<(i32, i32)> = vec![
                (0, shift),
                (1 << 30, shift),
                ((1 << 30) + 12_345, shift),
                (i32::MAX, shift),
                (next() as i32 & i32::MAX, shift),
            ];
            let channels = mults.len();
            let rows: Vec<i64> = accs.iter().flat_map(|&a| std::iter::repeat_n(a, channels)).collect();
            let mut inits = HashMap::new();
            let mut e = Emit::new(&mut inits, "t");
            let y = e.mbqm("x", &mults);
            e.op_to("Identity", &[&y], "y", vec![]);
            let g = Graph {
                nodes: e.nodes,
                initializers: inits,
                inputs: vec![ValueInfo {
                    name: "x".into(),
                    elem_type: 7,
                    shape: vec![Some(accs.len()), Some(channels)],
                }],
                outputs: vec![ValueInfo { name: "y".into(), elem_type: 7, shape: vec![] }],
                opset: 17,
                ..Default::default()
            };
            let x = Tensor { shape: vec![accs.len(), channels], data: Data::I64(rows.clone()) };
            let out = Plan::new(&g, &Registry::new(), &[]).unwrap().run(&[("x".into(), x)]).unwrap();
            let got = out[0].to_i64_vec().unwrap();
            for (i, (&a, &y)) in rows.iter().zip(&got).enumerate() {
                // TFLite's mbqm takes int32 sums whose shifted value fits (a valid model's).
                let (m, sh) = mults[i % channels];
                let shifted = a.checked_mul(1i64 << sh.clamp(0, 31));
                if shifted.is_none_or(|v| i32::try_from(v).is_err()) {
                    continue;
                }
                assert_eq!(y, mbqm(a as i32, m, sh) as i64, "a {a}, m {m}, shift {sh}");
            }
        }
    }
}
