//! SOFTMAX on int8 / uint8 codes in integer ONNX, as TFLite's reference kernel computes it
//! ([`crate::ops::tflite::softmax`]): per row, each code's difference from the row's maximum
//! picks its fixed-point exp from a 256-entry table (`Gather`); the sum of the exps in Q12.19,
//! its leading zeros (counted against the 32 powers of two), gemmlowp's Newton–Raphson
//! reciprocal in int64 ops, each exp times the reciprocal, divided by a power of two per row.

use super::emit::Emit;
use super::Ctx;
use crate::model::{Attr, DType, Node};
use crate::ops::tflite::fixed::rdbpot;
use crate::ops::tflite::softmax::TflSoftmax;

/// `ACCUMULATION_INTEGER_BITS` of TFLite's kernel: the sum is Q12.19.
const ACCUMULATION_INTEGER_BITS: i64 = 12;

pub(super) fn softmax(e: &mut Emit, n: &Node, cx: &Ctx) -> Result<(), String> {
    let x = cx.input(n, 0)?;
    let t = cx.code_type(x)?;
    let op = cx.built::<TflSoftmax>(n)?;
    let exp = op.exp_table();
    let table = |e: &mut Emit, v: Vec<i64>| {
        let len = v.len();
        e.i64s_shaped(v, vec![len])
    };
    let axis = vec![("axes", Attr::Ints(vec![-1])), ("keepdims", Attr::Int(1))];
    let wide = e.cast(x, DType::I64);
    let max = e.op("ReduceMax", &[&wide], axis);
    let diff = e.op("Sub", &[&max, &wide], vec![]);
    let exp_table = table(e, exp.iter().map(|&v| v as i64).collect());
    let acc_table = table(e, exp.iter().map(|&v| rdbpot(v, ACCUMULATION_INTEGER_BITS as i32) as i64).collect());
    let exps = e.op("Gather", &[&exp_table, &diff], vec![("axis", Attr::Int(0))]);
    let terms = e.op("Gather", &[&acc_table, &diff], vec![("axis", Attr::Int(0))]);
    let last = e.i64s_shaped(vec![-1], vec![1]);
    let sum = e.op("ReduceSum", &[&terms, &last], vec![("keepdims", Attr::Int(1))]);
    // GetReciprocal: headroom_plus_one = the sum's leading zeros as a u32 (the powers of two
    // above it), the sum shifted up to [2^31, 2^32) less 2^31.
    let pows = table(e, (0..32).map(|k| 1i64 << k).collect());
    let above = e.op("Less", &[&sum, &pows], vec![]);
    let above = e.cast(&above, DType::I64);
    let headroom = e.op("ReduceSum", &[&above, &last], vec![("keepdims", Attr::Int(1))]);
    let pow_table = table(e, (0..33).map(|k| 1i64 << k).collect());
    let lift = e.op("Gather", &[&pow_table, &headroom], vec![("axis", Attr::Int(0))]);
    let lifted = e.op("Mul", &[&sum, &lift], vec![]);
    let two31 = e.i64s(vec![1 << 31]);
    let shifted = e.op("Sub", &[&lifted, &two31], vec![]);
    // one_over_one_plus_x_for_x_in_0_1, by Newton–Raphson.
    let int_max = e.i64s(vec![i32::MAX as i64 + 1]);
    let two = e.i64s(vec![2]);
    let hd_sum = e.op("Add", &[&shifted, &int_max], vec![]);
    let half_denominator = e.op("Div", &[&hd_sum, &two], vec![]);
    let (c48, cneg32) = (e.i64s(vec![1_515_870_810]), e.i64s(vec![-1_010_580_540]));
    let start = e.srdhm(&half_denominator, &cneg32);
    let mut r = e.op("Add", &[&c48, &start], vec![]);
    let one = e.i64s(vec![1 << 29]);
    for _ in 0..3 {
        let hdx = e.srdhm(&half_denominator, &r);
        let one_minus = e.op("Sub", &[&one, &hdx], vec![]);
        let step = e.srdhm(&r, &one_minus);
        let step = e.saturating_shift_left(&step, 2);
        r = e.op("Add", &[&r, &step], vec![]);
    }
    let shifted_scale = e.saturating_shift_left(&r, 1);
    // exponent = bits_over_unit + 31 − 8 = 12 − headroom + 23, within 0…31 for any row.
    let base = e.i64s(vec![ACCUMULATION_INTEGER_BITS + 23]);
    let exponent = e.op("Sub", &[&base, &headroom], vec![]);
    let low = e.i64s(vec![0]);
    let high = e.i64s(vec![31]);
    let exponent = e.op("Clip", &[&exponent, &low, &high], vec![]);
    let halves = table(e, (0..32).map(|k| (1i64 << k) >> 1).collect());
    let half = e.op("Gather", &[&halves, &exponent], vec![("axis", Attr::Int(0))]);
    let pot = e.op("Gather", &[&pow_table, &exponent], vec![("axis", Attr::Int(0))]);
    let product = e.srdhm(&shifted_scale, &exps);
    let unsat = e.rounding_divide(&product, &half, &pot);
    let (lo, hi) = super::emit::type_range(t);
    e.finish(&unsat, lo, (lo, hi), t, &n.outputs[0]);
    Ok(())
}
