//! Math and shape ops against hand-computed values and the examples in the ONNX operator docs,
//! property tests for broadcasting and Transpose, and bad inputs that must be errors (never a
//! panic, never a huge allocation). Every run also checks that `infer` promises exactly the
//! shapes and types `eval` produces.

use proptest::prelude::*;
use qplay_core::model::{Attr, Attrs, DType, Node, Tensor};
use qplay_core::ops::{BuildCtx, Fact, Registry};

const OPSET: i64 = 17;

fn attrs(list: &[(&str, Attr)]) -> Attrs {
    Attrs(list.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

fn f32t(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::f32(shape.to_vec(), v.to_vec()).unwrap()
}

fn i64t(shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::i64(shape.to_vec(), v.to_vec()).unwrap()
}

fn i32t(shape: &[usize], v: &[i32]) -> Tensor {
    Tensor::i32(shape.to_vec(), v.to_vec()).unwrap()
}

fn boolt(shape: &[usize], v: &[bool]) -> Tensor {
    Tensor::bool(shape.to_vec(), v.to_vec()).unwrap()
}

fn ints(v: &[i64]) -> Tensor {
    Tensor::vec_i64(v.to_vec())
}

fn scalar_i64(v: i64) -> Tensor {
    i64t(&[], &[v])
}

/// Builds `op` at `opset`, evaluates it, and checks `infer` against the result: with every input
/// constant, and again with input 0's value unknown (then infer may refuse, but if it answers it
/// must agree). Infer may accept what eval rejects (index values, division by zero) but not the
/// other way round.
fn run_full(
    op: &str,
    opset: i64,
    a: &[(&str, Attr)],
    inputs: &[Option<Tensor>],
    outputs: usize,
) -> Result<Vec<Tensor>, String> {
    let node = Node {
        name: format!("{op}_test"),
        op_type: op.into(),
        inputs: inputs
            .iter()
            .enumerate()
            .map(|(i, t)| if t.is_some() { format!("in{i}") } else { String::new() })
            .collect(),
        outputs: (0..outputs).map(|i| format!("out{i}")).collect(),
        attrs: attrs(a),
        fused: Default::default(),
    };
    let builder = Registry::new().get(op).unwrap_or_else(|| panic!("{op} is not registered"));
    let kernel = builder(&node, &BuildCtx { opset }).map_err(|e| e.to_string())?;
    let refs: Vec<Option<&Tensor>> = inputs.iter().map(Option::as_ref).collect();
    let out = kernel.eval(&refs);

    let consts: Vec<Option<Fact>> = inputs.iter().map(|t| t.clone().map(Fact::constant)).collect();
    let mut dynamic = consts.clone();
    if let Some(Some(f)) = dynamic.get_mut(0) {
        f.value = None;
    }
    for (facts, must_answer) in [(consts, true), (dynamic, false)] {
        let refs: Vec<Option<&Fact>> = facts.iter().map(Option::as_ref).collect();
        match (kernel.infer(&refs), &out) {
            (Ok(inferred), Ok(got)) => {
                let promised: Vec<_> = inferred.iter().map(|f| (f.dtype, f.shape.clone())).collect();
                let actual: Vec<_> = got.iter().map(|t| (t.dtype(), t.shape.clone())).collect();
                assert_eq!(promised, actual, "{op}: infer and eval disagree");
                for (f, t) in inferred.iter().zip(got) {
                    if let Some(v) = &f.value {
                        assert_eq!(**v, *t, "{op}: the inferred value differs from eval's");
                    }
                }
            }
            (Err(e), Ok(_)) if must_answer => panic!("{op}: eval succeeded but infer failed: {e}"),
            _ => {}
        }
    }
    out.map_err(|e| e.to_string())
}

fn run(op: &str, a: &[(&str, Attr)], inputs: &[Tensor]) -> Result<Tensor, String> {
    run_at(op, OPSET, a, inputs)
}

fn run_at(op: &str, opset: i64, a: &[(&str, Attr)], inputs: &[Tensor]) -> Result<Tensor, String> {
    let ins: Vec<Option<Tensor>> = inputs.iter().cloned().map(Some).collect();
    Ok(run_full(op, opset, a, &ins, 1)?.remove(0))
}

fn err(op: &str, a: &[(&str, Attr)], inputs: &[Tensor]) -> String {
    match run(op, a, inputs) {
        Ok(t) => panic!("{op} should have failed, gave {t:?}"),
        Err(e) => e,
    }
}

fn close(t: &Tensor, want: &[f32]) {
    let got = t.as_f32().unwrap();
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{got:?} vs {want:?}");
    }
}

// ---- element-wise -----------------------------------------------------------------------

#[test]
fn add_broadcasts_2x1x3_with_4x1() {
    let a = f32t(&[2, 1, 3], &[0., 1., 2., 10., 11., 12.]);
    let b = f32t(&[4, 1], &[100., 200., 300., 400.]);
    let y = run("Add", &[], &[a, b]).unwrap();
    assert_eq!(y.shape, vec![2, 4, 3]);
    let mut want = Vec::new();
    for i in [0., 10.] {
        for j in [100., 200., 300., 400.] {
            for k in [0., 1., 2.] {
                want.push(i + j + k);
            }
        }
    }
    close(&y, &want);
    assert!(err("Add", &[], &[f32t(&[2, 3], &[0.; 6]), f32t(&[4], &[0.; 4])]).contains("cannot be broadcast"));
}

#[test]
fn arithmetic_on_floats() {
    let a = f32t(&[4], &[1., -2., 3., 4.]);
    let b = f32t(&[], &[2.]);
    close(&run("Sub", &[], &[a.clone(), b.clone()]).unwrap(), &[-1., -4., 1., 2.]);
    close(&run("Mul", &[], &[a.clone(), b.clone()]).unwrap(), &[2., -4., 6., 8.]);
    close(&run("Div", &[], &[b.clone(), a.clone()]).unwrap(), &[2., -1., 2. / 3., 0.5]);
    close(&run("Pow", &[], &[a.clone(), b]).unwrap(), &[1., 4., 9., 16.]);
    // Pow with an integer exponent: the exponent converts to the base's type.
    close(&run("Pow", &[], &[a.clone(), i64t(&[], &[3])]).unwrap(), &[1., -8., 27., 64.]);
    assert!(err("Add", &[], &[a, i64t(&[], &[1])]).contains("one type"));
}

#[test]
fn integer_division_truncates_toward_zero() {
    let a = i64t(&[4], &[7, -7, 7, -7]);
    let b = i64t(&[4], &[2, 2, -2, -2]);
    assert_eq!(run("Div", &[], &[a, b]).unwrap(), i64t(&[4], &[3, -3, -3, 3]));
    let a32 = i32t(&[3], &[9, -9, i32::MIN]);
    assert_eq!(run("Div", &[], &[a32, i32t(&[3], &[4, 4, -1])]).unwrap(), i32t(&[3], &[2, -2, i32::MIN]));
    assert!(err("Div", &[], &[i64t(&[2], &[1, 2]), i64t(&[], &[0])]).contains("division by zero"));
}

#[test]
fn mod_follows_the_divisor_or_the_dividend() {
    let a = i64t(&[4], &[7, -7, 7, -7]);
    let b = i64t(&[4], &[3, 3, -3, -3]);
    assert_eq!(run("Mod", &[], &[a.clone(), b.clone()]).unwrap(), i64t(&[4], &[1, 2, -2, -1]));
    assert_eq!(run("Mod", &[("fmod", Attr::Int(1))], &[a.clone(), b]).unwrap(), i64t(&[4], &[1, -1, 1, -1]));
    let f = f32t(&[2], &[5.5, -5.5]);
    close(&run("Mod", &[("fmod", Attr::Int(1))], &[f.clone(), f32t(&[], &[2.])]).unwrap(), &[1.5, -1.5]);
    // fmod = 0 on floats: the divisor's sign, as Python's `%` (a zero keeps it too).
    let d = f32t(&[4], &[2., 2., -2., -2.]);
    let four = f32t(&[4], &[5.5, -5.5, 5.5, 4.0]);
    let m = run("Mod", &[], &[four, d]).unwrap();
    close(&m, &[1.5, 0.5, -0.5, -0.0]);
    assert!(m.as_f32().unwrap()[3].is_sign_negative());
    assert!(err("Mod", &[], &[f, i64t(&[1], &[2])]).contains("int64"));
    assert!(err("Mod", &[], &[a, scalar_i64(0)]).contains("by zero"));
}

#[test]
fn integer_arithmetic_for_shape_subgraphs() {
    let shape = i64t(&[4], &[1, 3, 640, 640]);
    assert_eq!(run("Mul", &[], &[shape.clone(), scalar_i64(2)]).unwrap(), i64t(&[4], &[2, 6, 1280, 1280]));
    assert_eq!(run("Sub", &[], &[shape.clone(), scalar_i64(1)]).unwrap(), i64t(&[4], &[0, 2, 639, 639]));
    assert_eq!(run("Add", &[], &[i32t(&[2], &[i32::MAX, 1]), i32t(&[], &[1])]).unwrap(), i32t(&[2], &[i32::MIN, 2]));
    assert_eq!(
        run("Pow", &[], &[i64t(&[3], &[2, 3, -2]), i64t(&[3], &[10, 0, 3])]).unwrap(),
        i64t(&[3], &[1024, 1, -8])
    );
    let u = Tensor::u8(vec![2], vec![3, 250]).unwrap();
    assert_eq!(
        run("Sub", &[], &[u.clone(), Tensor::u8(vec![], vec![5]).unwrap()]).unwrap().to_i64_vec().unwrap(),
        [254, 245]
    );
    assert!(err("Add", &[], &[boolt(&[1], &[true]), boolt(&[1], &[true])]).contains("does not accept"));
}

#[test]
fn min_max_sum_are_variadic() {
    let a = f32t(&[3], &[1., 5., 3.]);
    let b = f32t(&[2, 1], &[2., 4.]);
    let c = f32t(&[], &[0.]);
    let y = run("Max", &[], &[a.clone(), b.clone(), c.clone()]).unwrap();
    assert_eq!(y.shape, vec![2, 3]);
    close(&y, &[2., 5., 3., 4., 5., 4.]);
    close(&run("Min", &[], &[a.clone(), b.clone()]).unwrap(), &[1., 2., 2., 1., 4., 3.]);
    close(&run("Sum", &[], &[a.clone(), b, c]).unwrap(), &[3., 7., 5., 5., 9., 7.]);
    close(&run("Max", &[], &[a]).unwrap(), &[1., 5., 3.]);
    assert_eq!(run("Max", &[], &[i64t(&[2], &[-1, 9]), scalar_i64(0)]).unwrap(), i64t(&[2], &[0, 9]));
    assert!(run("Max", &[], &[f32t(&[1], &[f32::NAN]), f32t(&[1], &[1.])]).unwrap().as_f32().unwrap()[0].is_nan());
}

#[test]
fn comparisons_and_logic() {
    let a = f32t(&[3], &[1., 2., 3.]);
    let b = f32t(&[], &[2.]);
    assert_eq!(run("Equal", &[], &[a.clone(), b.clone()]).unwrap(), boolt(&[3], &[false, true, false]));
    assert_eq!(run("Greater", &[], &[a.clone(), b.clone()]).unwrap(), boolt(&[3], &[false, false, true]));
    assert_eq!(run("Less", &[], &[a.clone(), b.clone()]).unwrap(), boolt(&[3], &[true, false, false]));
    assert_eq!(run("GreaterOrEqual", &[], &[a.clone(), b.clone()]).unwrap(), boolt(&[3], &[false, true, true]));
    assert_eq!(run("LessOrEqual", &[], &[a, b]).unwrap(), boolt(&[3], &[true, true, false]));
    assert_eq!(run("Equal", &[], &[i64t(&[2], &[5, -1]), scalar_i64(-1)]).unwrap(), boolt(&[2], &[false, true]));
    let t = boolt(&[2], &[true, false]);
    assert_eq!(run("Equal", &[], &[t.clone(), boolt(&[], &[false])]).unwrap(), boolt(&[2], &[false, true]));
    assert_eq!(run("Not", &[], std::slice::from_ref(&t)).unwrap(), boolt(&[2], &[false, true]));
    assert_eq!(run("And", &[], &[t.clone(), boolt(&[], &[true])]).unwrap(), t);
    assert!(err("Greater", &[], &[t.clone(), t.clone()]).contains("does not accept"));
    assert!(err("Not", &[], &[f32t(&[1], &[1.])]).contains("bool"));
}

#[test]
fn where_broadcasts_three_ways() {
    let c = boolt(&[2, 1], &[true, false]);
    let x = f32t(&[3], &[1., 2., 3.]);
    let y = f32t(&[], &[-1.]);
    let out = run("Where", &[], &[c.clone(), x, y]).unwrap();
    assert_eq!(out.shape, vec![2, 3]);
    close(&out, &[1., 2., 3., -1., -1., -1.]);
    assert_eq!(run("Where", &[], &[c.clone(), scalar_i64(7), i64t(&[1], &[0])]).unwrap(), i64t(&[2, 1], &[7, 0]));
    assert!(err("Where", &[], &[f32t(&[1], &[1.]), scalar_i64(1), scalar_i64(0)]).contains("bool"));
    assert!(err("Where", &[], &[c, scalar_i64(1), f32t(&[], &[0.])]).contains("one type"));
}

#[test]
fn unary_functions() {
    let x = f32t(&[5], &[-2., -0.5, 0., 0.5, 3.]);
    let u = |op: &str, a: &[(&str, Attr)]| run(op, a, std::slice::from_ref(&x)).unwrap();
    close(&u("Relu", &[]), &[0., 0., 0., 0.5, 3.]);
    close(&u("LeakyRelu", &[("alpha", Attr::Float(0.1))]), &[-0.2, -0.05, 0., 0.5, 3.]);
    close(&u("Sigmoid", &[]), &[0.119_202_92, 0.377_540_67, 0.5, 0.622_459_3, 0.952_574_13]);
    close(&u("HardSigmoid", &[]), &[0.1, 0.4, 0.5, 0.6, 1.0]);
    close(&u("HardSigmoid", &[("alpha", Attr::Float(0.5)), ("beta", Attr::Float(0.6))]), &[0., 0.35, 0.6, 0.85, 1.]);
    close(&u("HardSwish", &[]), &[-2. * (1. / 6.), -0.5 * (5. / 12.), 0., 0.5 * (7. / 12.), 3.]);
    close(&u("Tanh", &[]), &[(-2f32).tanh(), (-0.5f32).tanh(), 0., 0.5f32.tanh(), 3f32.tanh()]);
    close(&u("Exp", &[]), &[(-2f32).exp(), (-0.5f32).exp(), 1., 0.5f32.exp(), 3f32.exp()]);
    close(&u("Neg", &[]), &[2., 0.5, 0., -0.5, -3.]);
    close(&u("Abs", &[]), &[2., 0.5, 0., 0.5, 3.]);
    close(&u("Floor", &[]), &[-2., -1., 0., 0., 3.]);
    close(&u("Ceil", &[]), &[-2., -0., 0., 1., 3.]);
    close(&u("Erf", &[]), &[-0.995_322_3, -0.520_499_9, 0., 0.520_499_9, 0.999_977_9]);
    close(&run("Sqrt", &[], &[f32t(&[2], &[4., 2.25])]).unwrap(), &[2., 1.5]);
    close(&run("Reciprocal", &[], &[f32t(&[2], &[4., -0.5])]).unwrap(), &[0.25, -2.]);
    // Integers where the spec allows them.
    assert_eq!(run("Neg", &[], &[i64t(&[2], &[3, -4])]).unwrap(), i64t(&[2], &[-3, 4]));
    assert_eq!(run("Abs", &[], &[i32t(&[2], &[3, -4])]).unwrap(), i32t(&[2], &[3, 4]));
    assert_eq!(run("Relu", &[], &[i64t(&[2], &[3, -4])]).unwrap(), i64t(&[2], &[3, 0]));
    assert!(err("Sqrt", &[], &[i64t(&[1], &[4])]).contains("float32"));
    assert!(err("Relu", &[], &[boolt(&[1], &[true])]).contains("bool"));
}

#[test]
fn more_unary_and_logic() {
    let x = f32t(&[4], &[-1., -0.5, 0.5, 2.5]);
    let u = |op: &str| run(op, &[], std::slice::from_ref(&x)).unwrap();
    close(&u("Elu"), &[(-1f32).exp_m1(), (-0.5f32).exp_m1(), 0.5, 2.5]);
    close(
        &u("Softplus"),
        &[(-1f32).exp().ln_1p(), (-0.5f32).exp().ln_1p(), 0.5f32.exp().ln_1p(), 2.5f32.exp().ln_1p()],
    );
    close(&u("Sign"), &[-1., -1., 1., 1.]);
    // Halves round to even.
    close(&u("Round"), &[-1., -0., 0., 2.]);
    close(&run("Log", &[], &[f32t(&[2], &[1., std::f32::consts::E])]).unwrap(), &[0., 1.]);
    assert_eq!(run("Sign", &[], &[i64t(&[3], &[-7, 0, 3])]).unwrap(), i64t(&[3], &[-1, 0, 1]));
    let (a, b) = (boolt(&[4], &[false, false, true, true]), boolt(&[4], &[false, true, false, true]));
    assert_eq!(run("Or", &[], &[a.clone(), b.clone()]).unwrap(), boolt(&[4], &[false, true, true, true]));
    assert_eq!(run("Xor", &[], &[a.clone(), b.clone()]).unwrap(), boolt(&[4], &[false, true, true, false]));
    assert_eq!(run("And", &[], &[a, b]).unwrap(), boolt(&[4], &[false, false, false, true]));
}

#[test]
fn every_math_and_shape_op_is_registered() {
    let ops = Registry::new().op_types();
    let mine = [
        "Abs",
        "Add",
        "And",
        "ArgMax",
        "ArgMin",
        "Cast",
        "CastLike",
        "Ceil",
        "Clip",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "Div",
        "Elu",
        "Equal",
        "Erf",
        "Exp",
        "Expand",
        "Flatten",
        "Floor",
        "Gather",
        "GatherElements",
        "Greater",
        "GreaterOrEqual",
        "HardSigmoid",
        "HardSwish",
        "Identity",
        "LeakyRelu",
        "Less",
        "LessOrEqual",
        "Log",
        "Max",
        "Min",
        "Mod",
        "Mul",
        "Neg",
        "Not",
        "Or",
        "Pow",
        "Range",
        "Reciprocal",
        "ReduceMax",
        "ReduceMean",
        "ReduceMin",
        "ReduceProd",
        "ReduceSum",
        "Relu",
        "Reshape",
        "Round",
        "Shape",
        "Sigmoid",
        "Sign",
        "Size",
        "Slice",
        "Softplus",
        "Split",
        "Sqrt",
        "Squeeze",
        "Sub",
        "Sum",
        "Tanh",
        "Tile",
        "Transpose",
        "Unsqueeze",
        "Where",
        "Xor",
    ];
    for op in mine {
        assert!(ops.contains(&op), "{op} is not registered");
    }
}

#[test]
fn clip_attribute_and_input_forms() {
    let x = f32t(&[4], &[-3., -1., 1., 3.]);
    let old = [("min", Attr::Float(-2.)), ("max", Attr::Float(2.))];
    close(&run_at("Clip", 6, &old, std::slice::from_ref(&x)).unwrap(), &[-2., -1., 1., 2.]);
    close(&run_at("Clip", 6, &[("max", Attr::Float(0.))], std::slice::from_ref(&x)).unwrap(), &[-3., -1., 0., 0.]);
    let lo = f32t(&[], &[0.]);
    let hi = f32t(&[], &[6.]);
    close(&run_at("Clip", 13, &[], &[x.clone(), lo.clone(), hi.clone()]).unwrap(), &[0., 0., 1., 3.]);
    // Omitted min (an empty input name) but a max.
    let only_max = run_full("Clip", 13, &[], &[Some(x.clone()), None, Some(f32t(&[], &[0.]))], 1).unwrap();
    close(&only_max[0], &[-3., -1., 0., 0.]);
    // min > max: everything becomes max.
    close(&run_at("Clip", 13, &[], &[x.clone(), hi, lo]).unwrap(), &[0., 0., 0., 0.]);
    let xi = i64t(&[3], &[-5, 5, 50]);
    assert_eq!(run_at("Clip", 13, &[], &[xi, scalar_i64(0), scalar_i64(10)]).unwrap(), i64t(&[3], &[0, 5, 10]));
    assert!(run_at("Clip", 13, &[], &[x.clone(), f32t(&[2], &[0., 1.])]).unwrap_err().contains("single value"));
    assert!(run_at("Clip", 13, &[], &[x, scalar_i64(0)]).unwrap_err().contains("bound"));
}

// ---- reductions, ArgMax, Cast ---------------------------------------------------------

fn x234() -> Tensor {
    f32t(&[2, 3, 4], &(0..24).map(|v| v as f32).collect::<Vec<_>>())
}

#[test]
fn reductions_attribute_form() {
    let keep0 = [("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(0))];
    let y = run_at("ReduceSum", 11, &keep0, &[x234()]).unwrap();
    assert_eq!(y.shape, vec![2, 4]);
    close(&y, &[12., 15., 18., 21., 48., 51., 54., 57.]);
    let y = run_at("ReduceMean", 11, &[("axes", Attr::Ints(vec![0, -1]))], &[x234()]).unwrap();
    assert_eq!(y.shape, vec![1, 3, 1]);
    close(&y, &[7.5, 11.5, 15.5]);
    let y = run_at("ReduceMax", 11, &[], &[x234()]).unwrap();
    assert_eq!(y.shape, vec![1, 1, 1]);
    close(&y, &[23.]);
    let y = run_at("ReduceMin", 11, &[("axes", Attr::Ints(vec![2])), ("keepdims", Attr::Int(0))], &[x234()]).unwrap();
    close(&y, &[0., 4., 8., 12., 16., 20.]);
    assert!(run_at("ReduceSum", 11, &[("axes", Attr::Ints(vec![3]))], &[x234()]).unwrap_err().contains("out of range"));
}

#[test]
fn reductions_input_form() {
    let y = run_at("ReduceSum", 13, &[("keepdims", Attr::Int(0))], &[x234(), ints(&[0, 2])]).unwrap();
    close(&y, &[60., 92., 124.]);
    let y = run_at("ReduceMax", 18, &[], &[x234(), ints(&[-2])]).unwrap();
    assert_eq!(y.shape, vec![2, 1, 4]);
    close(&y, &[8., 9., 10., 11., 20., 21., 22., 23.]);
    // No axes: all of them, unless noop_with_empty_axes.
    let all = run_full("ReduceSum", 13, &[("keepdims", Attr::Int(0))], &[Some(x234()), None], 1).unwrap();
    assert_eq!(all[0].shape, Vec::<usize>::new());
    close(&all[0], &[276.]);
    let noop = run_at("ReduceMean", 18, &[("noop_with_empty_axes", Attr::Int(1))], &[x234(), ints(&[])]).unwrap();
    assert_eq!(noop, x234());
    let yi = run_at("ReduceSum", 13, &[], &[i64t(&[2, 2], &[1, 2, 3, 4]), ints(&[1])]).unwrap();
    assert_eq!(yi, i64t(&[2, 1], &[3, 7]));
    let ym = run_at("ReduceMean", 18, &[], &[i64t(&[3], &[1, 2, 4]), ints(&[0])]).unwrap();
    assert_eq!(ym, i64t(&[1], &[2]));
    // Max of an empty set is the type's lowest value; the sum is 0.
    let none = i32t(&[2, 0], &[]);
    assert_eq!(run_at("ReduceMax", 18, &[], &[none.clone(), ints(&[1])]).unwrap(), i32t(&[2, 1], &[i32::MIN; 2]));
    assert_eq!(run_at("ReduceSum", 18, &[], &[none, ints(&[1])]).unwrap(), i32t(&[2, 1], &[0; 2]));
    let prod = run_at("ReduceProd", 18, &[("keepdims", Attr::Int(0))], &[i64t(&[3], &[2, 3, 4]), ints(&[0])]).unwrap();
    assert_eq!(prod, scalar_i64(24));
    // Opset 20: ReduceMax of bools is any, ReduceMin all; over an empty set false and true.
    let b = boolt(&[2, 2], &[true, false, false, false]);
    assert_eq!(run_at("ReduceMax", 20, &[], &[b.clone(), ints(&[1])]).unwrap(), boolt(&[2, 1], &[true, false]));
    assert_eq!(run_at("ReduceMin", 20, &[], &[b.clone(), ints(&[0])]).unwrap(), boolt(&[1, 2], &[false, false]));
    let empty = boolt(&[2, 0], &[]);
    assert_eq!(run_at("ReduceMax", 20, &[], &[empty.clone(), ints(&[1])]).unwrap(), boolt(&[2, 1], &[false; 2]));
    assert_eq!(run_at("ReduceMin", 20, &[], &[empty, ints(&[1])]).unwrap(), boolt(&[2, 1], &[true; 2]));
    assert!(run_at("ReduceSum", 20, &[], &[b, ints(&[1])]).unwrap_err().contains("bool"));
}

#[test]
fn argmax_and_argmin() {
    let x = f32t(&[2, 3], &[1., 5., 5., 7., 0., 7.]);
    assert_eq!(run("ArgMax", &[("axis", Attr::Int(1))], std::slice::from_ref(&x)).unwrap(), i64t(&[2, 1], &[1, 0]));
    let last = [("axis", Attr::Int(-1)), ("keepdims", Attr::Int(0)), ("select_last_index", Attr::Int(1))];
    assert_eq!(run("ArgMax", &last, std::slice::from_ref(&x)).unwrap(), i64t(&[2], &[2, 2]));
    assert_eq!(run("ArgMin", &[], std::slice::from_ref(&x)).unwrap(), i64t(&[1, 3], &[0, 1, 0]));
    assert!(err("ArgMax", &[("axis", Attr::Int(2))], std::slice::from_ref(&x)).contains("out of range"));
    assert!(err("ArgMax", &[("axis", Attr::Int(1))], &[f32t(&[2, 0], &[])]).contains("no elements"));
}

#[test]
fn cast_follows_c_conversions() {
    let x = f32t(&[5], &[-1.7, 1.7, 2.5, 0., 300.9]);
    let to = |d: DType| [("to", Attr::Int(d.onnx_code() as i64))];
    assert_eq!(run("Cast", &to(DType::I64), std::slice::from_ref(&x)).unwrap(), i64t(&[5], &[-1, 1, 2, 0, 300]));
    assert_eq!(
        run("Cast", &to(DType::Bool), std::slice::from_ref(&x)).unwrap(),
        boolt(&[5], &[true, true, true, false, true])
    );
    let u = run("Cast", &to(DType::U8), &[f32t(&[2], &[3.9, 200.2])]).unwrap();
    assert_eq!(u, Tensor::u8(vec![2], vec![3, 200]).unwrap());
    assert_eq!(run("Cast", &to(DType::I32), &[i64t(&[1], &[1 << 32 | 5])]).unwrap(), i32t(&[1], &[5]));
    close(&run("Cast", &to(DType::F32), &[boolt(&[2], &[true, false])]).unwrap(), &[1., 0.]);
    close(&run("Cast", &to(DType::F32), &[i64t(&[2], &[-3, 640])]).unwrap(), &[-3., 640.]);
    assert_eq!(run("CastLike", &[], &[x.clone(), scalar_i64(0)]).unwrap().dtype(), DType::I64);
    assert!(err("Cast", &[("to", Attr::Int(10))], std::slice::from_ref(&x)).contains("float16"));
}

// ---- shape ops ------------------------------------------------------------------------

#[test]
fn reshape_onnx_examples() {
    let x = x234();
    let cases: [(&[i64], &[usize]); 9] = [
        (&[4, 2, 3], &[4, 2, 3]),
        (&[2, 4, 3], &[2, 4, 3]),
        (&[2, 12], &[2, 12]),
        (&[2, 3, 2, 2], &[2, 3, 2, 2]),
        (&[24], &[24]),
        (&[2, -1, 2], &[2, 6, 2]),
        (&[-1, 2, 3, 4], &[1, 2, 3, 4]),
        (&[2, 0, 4, 1], &[2, 3, 4, 1]),
        (&[2, 0, 1, -1], &[2, 3, 1, 4]),
    ];
    for (spec, want) in cases {
        let y = run("Reshape", &[], &[x.clone(), ints(spec)]).unwrap();
        assert_eq!(y.shape, want, "{spec:?}");
        assert_eq!(y.data, x.data);
    }
    // allowzero: 0 is a real zero-sized dimension.
    let empty = f32t(&[0, 3, 4], &[]);
    let y = run("Reshape", &[("allowzero", Attr::Int(1))], &[empty, ints(&[3, 4, 0])]).unwrap();
    assert_eq!(y.shape, vec![3, 4, 0]);
    assert!(err("Reshape", &[], &[x.clone(), ints(&[5, -1])]).contains("no integer value"));
    assert!(err("Reshape", &[], &[x.clone(), ints(&[5, 5])]).contains("cannot reshape"));
    assert!(err("Reshape", &[], &[x.clone(), ints(&[-1, -1])]).contains("more than one -1"));
    assert!(err("Reshape", &[], &[x.clone(), ints(&[2, -3, 4])]).contains("invalid dimension"));
    assert!(err("Reshape", &[], &[x, ints(&[0, 0, 0, 0])]).contains("only 3 dimensions"));
}

#[test]
fn shape_arguments_must_be_constant_at_plan_time() {
    let node = Node {
        name: "r".into(),
        op_type: "Reshape".into(),
        inputs: vec!["x".into(), "s".into()],
        outputs: vec!["y".into()],
        attrs: Attrs::default(),
        fused: Default::default(),
    };
    let op = Registry::new().get("Reshape").unwrap()(&node, &BuildCtx { opset: OPSET }).unwrap();
    let x = Fact::new(DType::F32, vec![2, 3]);
    let s = Fact::new(DType::I64, vec![2]);
    let e = op.infer(&[Some(&x), Some(&s)]).unwrap_err();
    assert!(e.to_string().contains("data-dependent"), "{e}");
    assert_eq!(e.code(), "unsupported-feature", "a shape computed at run time is beyond qplay, not a broken model");
    // Shape's output is known from the static shape alone, so shape sub-graphs fold.
    let shape = Registry::new().get("Shape").unwrap()(&node, &BuildCtx { opset: OPSET }).unwrap();
    let f = shape.infer(&[Some(&x)]).unwrap();
    assert_eq!(f[0].value.as_deref(), Some(&ints(&[2, 3])));
}

#[test]
fn transpose_and_flatten() {
    let x = f32t(&[2, 3], &[0., 1., 2., 3., 4., 5.]);
    close(&run("Transpose", &[], std::slice::from_ref(&x)).unwrap(), &[0., 3., 1., 4., 2., 5.]);
    let y = run("Transpose", &[("perm", Attr::Ints(vec![1, 0, 2]))], &[x234()]).unwrap();
    assert_eq!(y.shape, vec![3, 2, 4]);
    close(
        &y.clone(),
        &[0., 1., 2., 3., 12., 13., 14., 15., 4., 5., 6., 7., 16., 17., 18., 19., 8., 9., 10., 11., 20., 21., 22., 23.],
    );
    assert!(err("Transpose", &[("perm", Attr::Ints(vec![0, 0]))], std::slice::from_ref(&x)).contains("permutation"));
    assert!(err("Transpose", &[("perm", Attr::Ints(vec![0]))], std::slice::from_ref(&x)).contains("rank"));
    for (axis, want) in [(0, [1, 24]), (1, [2, 12]), (2, [6, 4]), (3, [24, 1]), (-1, [6, 4])] {
        assert_eq!(run("Flatten", &[("axis", Attr::Int(axis))], &[x234()]).unwrap().shape, want);
    }
    assert!(err("Flatten", &[("axis", Attr::Int(4))], &[x234()]).contains("out of range"));
}

#[test]
fn squeeze_and_unsqueeze_both_forms() {
    let x = f32t(&[1, 3, 1, 2], &[0.; 6]);
    assert_eq!(run_at("Squeeze", 11, &[], std::slice::from_ref(&x)).unwrap().shape, vec![3, 2]);
    assert_eq!(
        run_at("Squeeze", 11, &[("axes", Attr::Ints(vec![-2]))], std::slice::from_ref(&x)).unwrap().shape,
        vec![1, 3, 2]
    );
    assert_eq!(run_at("Squeeze", 13, &[], &[x.clone(), ints(&[0])]).unwrap().shape, vec![3, 1, 2]);
    assert_eq!(run_at("Squeeze", 13, &[], &[x.clone(), ints(&[])]).unwrap().shape, vec![3, 2]);
    assert!(run_at("Squeeze", 13, &[], &[x, ints(&[1])]).unwrap_err().contains("not 1"));
    let y = f32t(&[3, 4, 5], &[0.; 60]);
    assert_eq!(
        run_at("Unsqueeze", 11, &[("axes", Attr::Ints(vec![1, 4]))], std::slice::from_ref(&y)).unwrap().shape,
        vec![3, 1, 4, 5, 1]
    );
    assert_eq!(run_at("Unsqueeze", 13, &[], &[y.clone(), ints(&[-1, 0])]).unwrap().shape, vec![1, 3, 4, 5, 1]);
    assert_eq!(run_at("Unsqueeze", 13, &[], &[scalar_i64(7), ints(&[0])]).unwrap(), ints(&[7]));
    assert!(run_at("Unsqueeze", 13, &[], &[y.clone(), ints(&[5])]).unwrap_err().contains("out of range"));
    assert!(run_at("Unsqueeze", 13, &[], &[y, ints(&[1, 1])]).unwrap_err().contains("more than once"));
}

#[test]
fn concat_any_dtype() {
    let a = i64t(&[2, 1], &[1, 2]);
    let b = i64t(&[2, 2], &[3, 4, 5, 6]);
    assert_eq!(
        run("Concat", &[("axis", Attr::Int(-1))], &[a.clone(), b.clone()]).unwrap(),
        i64t(&[2, 3], &[1, 3, 4, 2, 5, 6])
    );
    let dims = run("Concat", &[("axis", Attr::Int(0))], &[ints(&[1]), ints(&[]), ints(&[-1, 4])]).unwrap();
    assert_eq!(dims, ints(&[1, -1, 4]));
    let t = boolt(&[1], &[true]);
    assert_eq!(run("Concat", &[("axis", Attr::Int(0))], &[t.clone(), t]).unwrap(), boolt(&[2], &[true, true]));
    assert!(err("Concat", &[("axis", Attr::Int(0))], &[a.clone(), ints(&[1])]).contains("does not match"));
    assert!(err("Concat", &[("axis", Attr::Int(0))], &[a.clone(), b.clone()]).contains("does not match"));
    assert!(err("Concat", &[("axis", Attr::Int(2))], &[a.clone(), b]).contains("out of range"));
    assert!(err("Concat", &[("axis", Attr::Int(0))], &[a.clone(), f32t(&[2, 1], &[0., 0.])]).contains("int64"));
}

#[test]
fn split_all_forms() {
    let x = f32t(&[6], &[1., 2., 3., 4., 5., 6.]);
    let part = |r: &[Tensor], i: usize| r[i].as_f32().unwrap().to_vec();
    let eq = run_full("Split", 11, &[], &[Some(x.clone())], 3).unwrap();
    assert_eq!((part(&eq, 0), part(&eq, 2)), (vec![1., 2.], vec![5., 6.]));
    let r = run_full("Split", 11, &[("split", Attr::Ints(vec![2, 4]))], &[Some(x.clone())], 2).unwrap();
    assert_eq!((part(&r, 0), part(&r, 1)), (vec![1., 2.], vec![3., 4., 5., 6.]));
    let r = run_full("Split", 13, &[], &[Some(x.clone()), Some(ints(&[2, 4]))], 2).unwrap();
    assert_eq!(part(&r, 1), vec![3., 4., 5., 6.]);
    // Opset 18: num_outputs, uneven last chunk (ONNX split_1d_uneven_split_opset18).
    let seven = f32t(&[7], &[1., 2., 3., 4., 5., 6., 7.]);
    let r = run_full("Split", 18, &[("num_outputs", Attr::Int(4))], &[Some(seven.clone())], 4).unwrap();
    assert_eq!(r.iter().map(|t| t.shape[0]).collect::<Vec<_>>(), [2, 2, 2, 1]);
    assert_eq!(part(&r, 3), vec![7.]);
    // 2-D along axis 1.
    let m = i64t(&[2, 4], &[1, 2, 3, 4, 5, 6, 7, 8]);
    let r = run_full("Split", 13, &[("axis", Attr::Int(-1))], &[Some(m)], 2).unwrap();
    assert_eq!(r, vec![i64t(&[2, 2], &[1, 2, 5, 6]), i64t(&[2, 2], &[3, 4, 7, 8])]);
    assert!(run_full("Split", 13, &[], &[Some(seven.clone())], 2).unwrap_err().contains("equal parts"));
    assert!(run_full("Split", 13, &[], &[Some(x.clone()), Some(ints(&[2, 3]))], 2).unwrap_err().contains("summing"));
    assert!(run_full("Split", 13, &[("axis", Attr::Int(1))], &[Some(x)], 2).unwrap_err().contains("out of range"));
    assert!(run_full("Split", 18, &[("num_outputs", Attr::Int(3))], &[Some(seven)], 2)
        .unwrap_err()
        .contains("num_outputs"));
}

fn arange(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    f32t(shape, &(0..n).map(|v| v as f32).collect::<Vec<_>>())
}

#[test]
fn slice_onnx_examples() {
    let x = arange(&[20, 10, 5]);
    let v = |i: usize, j: usize, k: usize| (i * 50 + j * 5 + k) as f32;
    // slice_neg_steps: x[20:0:-1, 10:0:-3, 4:1:-2]
    let y =
        run("Slice", &[], &[x.clone(), ints(&[20, 10, 4]), ints(&[0, 0, 1]), ints(&[0, 1, 2]), ints(&[-1, -3, -2])])
            .unwrap();
    assert_eq!(y.shape, vec![19, 3, 2]);
    let mut want = Vec::new();
    for i in (1..20).rev() {
        for j in [9, 6, 3] {
            for k in [4, 2] {
                want.push(v(i, j, k));
            }
        }
    }
    close(&y, &want);
    // slice_end_out_of_bounds with INT64_MAX, and a start out of bounds giving an empty axis.
    let y = run("Slice", &[], &[x.clone(), ints(&[1]), ints(&[i64::MAX]), ints(&[1]), ints(&[1])]).unwrap();
    assert_eq!(y.shape, vec![20, 9, 5]);
    assert_eq!(y.as_f32().unwrap()[0], v(0, 1, 0));
    let y = run("Slice", &[], &[x.clone(), ints(&[1000]), ints(&[1000]), ints(&[1]), ints(&[1])]).unwrap();
    assert_eq!(y.shape, vec![20, 0, 5]);
    // Default axes and steps; negative starts.
    let y = run("Slice", &[], &[x.clone(), ints(&[0, 0, 3]), ints(&[20, 10, 4])]).unwrap();
    assert_eq!(y.shape, vec![20, 10, 1]);
    let y = run("Slice", &[], &[x.clone(), ints(&[-1]), ints(&[i64::MAX]), ints(&[-1])]).unwrap();
    assert_eq!(y.shape, vec![20, 10, 1]);
    // Reversing a whole axis with INT64_MIN as the end.
    let r = run("Slice", &[], &[arange(&[10]), ints(&[-1]), ints(&[i64::MIN]), ints(&[0]), ints(&[-3])]).unwrap();
    close(&r, &[9., 6., 3., 0.]);
    // Opset 9: attributes.
    let old = [("starts", Attr::Ints(vec![2])), ("ends", Attr::Ints(vec![4])), ("axes", Attr::Ints(vec![0]))];
    close(&run_at("Slice", 9, &old, &[arange(&[6])]).unwrap(), &[2., 3.]);
    // int64 data (shape sub-graphs: Slice(Shape(x), -2, MAX)).
    assert_eq!(
        run("Slice", &[], &[ints(&[1, 3, 640, 480]), ints(&[-2]), ints(&[i64::MAX])]).unwrap(),
        ints(&[640, 480])
    );
    assert!(
        err("Slice", &[], &[x.clone(), ints(&[0]), ints(&[1]), ints(&[0]), ints(&[0])]).contains("step cannot be 0")
    );
    assert!(err("Slice", &[], &[x.clone(), ints(&[0]), ints(&[1]), ints(&[3])]).contains("out of range"));
    assert!(err("Slice", &[], &[x.clone(), ints(&[0, 0]), ints(&[1])]).contains("one length"));
    assert!(err("Slice", &[], &[x, ints(&[0, 0]), ints(&[1, 1]), ints(&[1, -2])]).contains("more than once"));
}

#[test]
fn gather_onnx_examples() {
    let data = f32t(&[3, 2], &[1., 1.2, 2.3, 3.4, 4.5, 5.7]);
    let y = run("Gather", &[], &[data, i64t(&[2, 2], &[0, 1, 1, 2])]).unwrap();
    assert_eq!(y.shape, vec![2, 2, 2]);
    close(&y, &[1., 1.2, 2.3, 3.4, 2.3, 3.4, 4.5, 5.7]);
    let data = f32t(&[3, 3], &[1., 1.2, 1.9, 2.3, 3.4, 3.9, 4.5, 5.7, 5.9]);
    let y = run("Gather", &[("axis", Attr::Int(1))], &[data, i64t(&[1, 2], &[0, 2])]).unwrap();
    assert_eq!(y.shape, vec![3, 1, 2]);
    close(&y, &[1., 1.9, 2.3, 3.9, 4.5, 5.9]);
    // gather_negative_indices
    close(&run("Gather", &[], &[arange(&[10]), ints(&[0, -9, -10])]).unwrap(), &[0., 1., 0.]);
    // Shape sub-graphs: a scalar index into a shape vector gives a scalar; int32 indices work.
    assert_eq!(run("Gather", &[], &[ints(&[1, 3, 640, 480]), scalar_i64(2)]).unwrap(), scalar_i64(640));
    assert_eq!(run("Gather", &[], &[ints(&[5, 6]), i32t(&[1], &[-1])]).unwrap(), ints(&[6]));
    assert!(err("Gather", &[], &[arange(&[10]), ints(&[10])]).contains("out of range"));
    assert!(err("Gather", &[], &[arange(&[10]), ints(&[-11])]).contains("out of range"));
    assert!(err("Gather", &[("axis", Attr::Int(1))], &[arange(&[10]), ints(&[0])]).contains("out of range"));
    assert!(err("Gather", &[], &[arange(&[10]), f32t(&[1], &[0.])]).contains("integers"));
}

#[test]
fn gather_elements_onnx_examples() {
    let d = f32t(&[2, 2], &[1., 2., 3., 4.]);
    close(
        &run("GatherElements", &[("axis", Attr::Int(1))], &[d, i64t(&[2, 2], &[0, 0, 1, 0])]).unwrap(),
        &[1., 1., 4., 3.],
    );
    let d = f32t(&[3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    close(
        &run("GatherElements", &[], &[d.clone(), i64t(&[2, 3], &[1, 2, 0, 2, 0, 0])]).unwrap(),
        &[4., 8., 3., 7., 2., 3.],
    );
    close(
        &run("GatherElements", &[], &[d.clone(), i64t(&[2, 3], &[-1, -2, 0, -2, 0, 0])]).unwrap(),
        &[7., 5., 3., 4., 2., 3.],
    );
    assert!(err("GatherElements", &[], &[d.clone(), i64t(&[1, 1], &[3])]).contains("out of range"));
    assert!(err("GatherElements", &[], &[d, i64t(&[1, 4], &[0; 4])]).contains("do not fit"));
}

#[test]
fn shape_size_identity_constant() {
    let x = f32t(&[2, 3, 4, 5], &[0.; 120]);
    assert_eq!(run("Shape", &[], std::slice::from_ref(&x)).unwrap(), ints(&[2, 3, 4, 5]));
    assert_eq!(
        run("Shape", &[("start", Attr::Int(1)), ("end", Attr::Int(-1))], std::slice::from_ref(&x)).unwrap(),
        ints(&[3, 4])
    );
    assert_eq!(
        run("Shape", &[("start", Attr::Int(-10)), ("end", Attr::Int(10))], std::slice::from_ref(&x)).unwrap(),
        ints(&[2, 3, 4, 5])
    );
    assert_eq!(
        run("Shape", &[("start", Attr::Int(3)), ("end", Attr::Int(1))], std::slice::from_ref(&x)).unwrap(),
        ints(&[])
    );
    assert_eq!(run("Size", &[], std::slice::from_ref(&x)).unwrap(), scalar_i64(120));
    assert_eq!(run("Identity", &[], std::slice::from_ref(&x)).unwrap(), x);
    assert_eq!(run("Constant", &[("value_ints", Attr::Ints(vec![1, 2]))], &[]).unwrap(), ints(&[1, 2]));
    assert_eq!(run("Constant", &[("value_int", Attr::Int(4))], &[]).unwrap(), scalar_i64(4));
    assert_eq!(run("Constant", &[("value_float", Attr::Float(0.5))], &[]).unwrap(), f32t(&[], &[0.5]));
    assert_eq!(run("Constant", &[("value_floats", Attr::Floats(vec![0.5]))], &[]).unwrap(), f32t(&[1], &[0.5]));
    let t = boolt(&[2], &[true, false]);
    assert_eq!(run("Constant", &[("value", Attr::Tensor(t.clone()))], &[]).unwrap(), t);
    assert!(err("Constant", &[("value_string", Attr::String("a".into()))], &[]).contains("not supported"));
}

#[test]
fn range_int_and_float() {
    assert_eq!(run("Range", &[], &[scalar_i64(3), scalar_i64(9), scalar_i64(3)]).unwrap(), ints(&[3, 6]));
    assert_eq!(run("Range", &[], &[scalar_i64(10), scalar_i64(4), scalar_i64(-2)]).unwrap(), ints(&[10, 8, 6]));
    assert_eq!(run("Range", &[], &[scalar_i64(0), scalar_i64(-1), scalar_i64(1)]).unwrap(), ints(&[]));
    assert_eq!(
        run("Range", &[], &[i32t(&[], &[0]), i32t(&[], &[5]), i32t(&[], &[2])]).unwrap(),
        i32t(&[3], &[0, 2, 4])
    );
    let f = |v: f32| f32t(&[], &[v]);
    close(&run("Range", &[], &[f(1.), f(2.), f(0.3)]).unwrap(), &[1., 1.3, 1.6, 1.9]);
    close(&run("Range", &[], &[f(0.), f(-1.), f(-0.5)]).unwrap(), &[0., -0.5]);
    assert!(err("Range", &[], &[scalar_i64(0), scalar_i64(5), scalar_i64(0)]).contains("delta cannot be 0"));
    assert!(err("Range", &[], &[f(0.), f(5.), f(0.)]).contains("delta cannot be 0"));
    assert!(err("Range", &[], &[scalar_i64(0), scalar_i64(i64::MAX), scalar_i64(1)]).contains("more than"));
    assert!(err("Range", &[], &[scalar_i64(i64::MIN), scalar_i64(i64::MAX), scalar_i64(1)]).contains("more than"));
    assert!(err("Range", &[], &[f(0.), f(f32::INFINITY), f(1.)]).contains("finite"));
    assert!(err("Range", &[], &[scalar_i64(0), f(5.), scalar_i64(1)]).contains("limit"));
}

#[test]
fn expand_onnx_examples() {
    let x = f32t(&[3, 1], &[1., 2., 3.]);
    let y = run("Expand", &[], &[x.clone(), ints(&[2, 1, 6])]).unwrap();
    assert_eq!(y.shape, vec![2, 3, 6]);
    let row: Vec<f32> = [1., 2., 3.].iter().flat_map(|&v| [v; 6]).collect();
    close(&y, &[row.clone(), row].concat());
    let y = run("Expand", &[], &[x.clone(), ints(&[3, 4])]).unwrap();
    close(&y, &[1., 1., 1., 1., 2., 2., 2., 2., 3., 3., 3., 3.]);
    // A 1 in the target keeps the input's dimension.
    assert_eq!(run("Expand", &[], &[x.clone(), ints(&[1])]).unwrap().shape, vec![3, 1]);
    assert_eq!(run("Expand", &[], &[scalar_i64(7), ints(&[2])]).unwrap(), ints(&[7, 7]));
    assert!(err("Expand", &[], &[x.clone(), ints(&[2, 2])]).contains("cannot be broadcast"));
    assert!(err("Expand", &[], &[x.clone(), ints(&[-1, 1])]).contains("negative"));
    assert!(err("Expand", &[], &[x, ints(&[1 << 20, 3, 1 << 20])]).contains("more than"));
}

#[test]
fn constant_of_shape() {
    assert_eq!(run("ConstantOfShape", &[], &[ints(&[2, 3])]).unwrap(), f32t(&[2, 3], &[0.; 6]));
    let v = [("value", Attr::Tensor(i64t(&[1], &[-1])))];
    assert_eq!(run("ConstantOfShape", &v, &[ints(&[2])]).unwrap(), ints(&[-1, -1]));
    assert_eq!(run("ConstantOfShape", &v, &[ints(&[])]).unwrap(), scalar_i64(-1));
    assert_eq!(run("ConstantOfShape", &v, &[ints(&[0, 5])]).unwrap().shape, vec![0, 5]);
    assert!(err("ConstantOfShape", &[], &[ints(&[1 << 30, 1 << 30])]).contains("more than"));
    assert!(err("ConstantOfShape", &[], &[ints(&[i64::MAX, i64::MAX, 2])]).contains("elements"));
    assert!(err("ConstantOfShape", &[], &[ints(&[2, -3])]).contains("negative"));
    assert!(err("ConstantOfShape", &[("value", Attr::Tensor(ints(&[1, 2])))], &[ints(&[2])]).contains("one element"));
}

#[test]
fn tile() {
    let x = f32t(&[2, 2], &[1., 2., 3., 4.]);
    let y = run("Tile", &[], &[x.clone(), ints(&[2, 2])]).unwrap();
    assert_eq!(y.shape, vec![4, 4]);
    close(&y, &[1., 2., 1., 2., 3., 4., 3., 4., 1., 2., 1., 2., 3., 4., 3., 4.]);
    let y = run("Tile", &[], &[i64t(&[2, 3], &[1, 2, 3, 4, 5, 6]), ints(&[1, 2])]).unwrap();
    assert_eq!(y, i64t(&[2, 6], &[1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]));
    assert_eq!(run("Tile", &[], &[x.clone(), ints(&[0, 3])]).unwrap().shape, vec![0, 6]);
    assert!(err("Tile", &[], &[x.clone(), ints(&[2])]).contains("one entry per dimension"));
    assert!(err("Tile", &[], &[x.clone(), ints(&[1, -1])]).contains("negative"));
    assert!(err("Tile", &[], &[x, ints(&[1 << 40, 1 << 40])]).contains("elements"));
}

#[test]
fn missing_and_unknown_arguments_are_errors() {
    assert!(run_full("Add", OPSET, &[], &[Some(arange(&[2])), None], 1).unwrap_err().contains("missing"));
    assert!(run_full("Reshape", OPSET, &[], &[Some(arange(&[2])), None], 1).unwrap_err().contains("shape input"));
    assert!(run("Concat", &[], &[arange(&[2])]).unwrap_err().contains("axis"));
    assert!(run("Cast", &[], &[arange(&[2])]).unwrap_err().contains("`to`"));
}

// ---- properties -------------------------------------------------------------------------

/// Two shapes that broadcast: a random shape of rank ≤ 4, and two copies with random dims
/// replaced by 1 and random leading dims dropped.
fn broadcast_case() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop::collection::vec(1usize..4, 0..5).prop_flat_map(|full| {
        let r = full.len();
        (Just(full), prop::collection::vec(any::<bool>(), r), prop::collection::vec(any::<bool>(), r), 0..=r, 0..=r)
            .prop_map(|(full, ma, mb, da, db)| {
                let pick =
                    |m: &[bool], drop: usize| (drop..full.len()).map(|i| if m[i] { 1 } else { full[i] }).collect();
                (pick(&ma, da), pick(&mb, db))
            })
    })
}

/// The broadcast shape computed the obvious way: right-aligned, the larger of each pair.
fn naive_broadcast(a: &[usize], b: &[usize]) -> Vec<usize> {
    let r = a.len().max(b.len());
    let at = |s: &[usize], i: usize| if i + s.len() >= r { s[i + s.len() - r] } else { 1 };
    (0..r).map(|i| at(a, i).max(at(b, i))).collect()
}

/// Row-major index of `idx` (aligned right, broadcast dims read at 0) into `shape`.
fn offset(shape: &[usize], idx: &[usize]) -> usize {
    let lead = idx.len() - shape.len();
    shape.iter().enumerate().fold(0, |acc, (d, &n)| acc * n + if n == 1 { 0 } else { idx[lead + d] })
}

proptest! {
    #[test]
    fn broadcasting_matches_index_arithmetic((sa, sb) in broadcast_case()) {
        let out = naive_broadcast(&sa, &sb);
        let na: usize = sa.iter().product();
        let nb: usize = sb.iter().product();
        let a = f32t(&sa, &(0..na).map(|v| v as f32).collect::<Vec<_>>());
        let b = f32t(&sb, &(0..nb).map(|v| 1000.0 * v as f32).collect::<Vec<_>>());
        let y = run("Add", &[], &[a.clone(), b.clone()]).unwrap();
        prop_assert_eq!(&y.shape, &out);
        let yv = y.as_f32().unwrap();
        let mut idx = vec![0usize; out.len()];
        for &got in yv {
            let want = offset(&sa, &idx) as f32 + 1000.0 * offset(&sb, &idx) as f32;
            prop_assert_eq!(got, want);
            for d in (0..out.len()).rev() {
                idx[d] += 1;
                if idx[d] < out[d] { break; }
                idx[d] = 0;
            }
        }
        // Broadcasting is symmetric in shape, and integer kernels see the same layout.
        prop_assert_eq!(run("Add", &[], &[b, a]).unwrap().shape, out);
    }

    #[test]
    fn transpose_then_inverse_is_identity(
        (shape, perm) in prop::collection::vec(1usize..4, 1..6)
            .prop_flat_map(|s| { let r = s.len(); (Just(s), Just((0..r).collect::<Vec<_>>()).prop_shuffle()) })
    ) {
        let x = arange(&shape);
        let mut inv = vec![0i64; perm.len()];
        for (i, &p) in perm.iter().enumerate() { inv[p] = i as i64; }
        let p: Vec<i64> = perm.iter().map(|&v| v as i64).collect();
        let y = run("Transpose", &[("perm", Attr::Ints(p))], std::slice::from_ref(&x)).unwrap();
        prop_assert_eq!(y.shape.clone(), perm.iter().map(|&a| shape[a]).collect::<Vec<_>>());
        let z = run("Transpose", &[("perm", Attr::Ints(inv))], &[y]).unwrap();
        prop_assert_eq!(z, x);
    }

    #[test]
    fn slice_matches_a_naive_walk(start in any::<i64>(), end in any::<i64>(), step in any::<i64>(), n in 0usize..8) {
        // Bias towards small values as well as the extremes `any` produces.
        let small = |v: i64| if v % 3 == 0 { v } else { v % 10 };
        let (start, end, step) = (small(start), small(end), small(step));
        let got = run("Slice", &[], &[arange(&[n]), ints(&[start]), ints(&[end]), ints(&[0]), ints(&[step])]);
        if step == 0 {
            prop_assert!(got.is_err());
        } else {
            // The spec's rules (negative values count from the end, then clamp to the range
            // valid for the step's direction), walked one index at a time.
            let d = n as i128;
            let norm = |v: i64| { let v = v as i128; if v < 0 { v + d } else { v } };
            let (i0, e0, st) = (norm(start), norm(end), step as i128);
            let mut want = Vec::new();
            if d > 0 {
                let (mut i, e) = if st > 0 { (i0.clamp(0, d), e0.clamp(0, d)) } else { (i0.clamp(0, d - 1), e0.clamp(-1, d - 1)) };
                while (st > 0 && i < e) || (st < 0 && i > e) {
                    want.push(i as f32);
                    i += st;
                }
            }
            let got = got.unwrap();
            prop_assert_eq!(got.as_f32().unwrap(), &want[..]);
        }
    }

    #[test]
    fn reshape_never_panics(spec in prop::collection::vec(-2i64..30, 0..5)) {
        if let Ok(y) = run("Reshape", &[], &[x234(), ints(&spec)]) {
            prop_assert_eq!(y.shape.iter().product::<usize>(), 24);
        }
    }
}

/// A planner in miniature: infer each node; where every input is a known constant, evaluate it
/// so its output is a constant too. This is how a dynamic-axes export's shape sub-graph (as
/// Ultralytics writes them: Shape → Gather → Div → Unsqueeze → Concat → Reshape) folds away.
#[test]
fn shape_subgraph_folds_from_static_shapes() {
    use std::collections::HashMap;
    let reg = Registry::new();
    let mut facts: HashMap<String, Fact> = HashMap::new();
    facts.insert("x".into(), Fact::new(DType::F32, vec![1, 3, 64, 32]));
    for (name, t) in [
        ("two", scalar_i64(2)),
        ("three", scalar_i64(3)),
        ("eight", scalar_i64(8)),
        ("zero", ints(&[0])),
        ("m1", ints(&[-1])),
    ] {
        facts.insert(name.into(), Fact::constant(t));
    }
    /// Op type, inputs, output, attributes.
    type Step<'a> = (&'a str, &'a [&'a str], &'a str, Vec<(&'a str, Attr)>);
    let nodes: &[Step] = &[
        ("Shape", &["x"], "s", vec![]),
        ("Gather", &["s", "two"], "h", vec![("axis", Attr::Int(0))]),
        ("Gather", &["s", "three"], "w", vec![("axis", Attr::Int(0))]),
        ("Div", &["h", "eight"], "h8", vec![]),
        ("Div", &["w", "eight"], "w8", vec![]),
        ("Mul", &["h8", "w8"], "cells", vec![]),
        ("Unsqueeze", &["cells", "zero"], "cells1", vec![]),
        ("Concat", &["m1", "cells1"], "target", vec![("axis", Attr::Int(0))]),
        ("Reshape", &["x", "target"], "y", vec![]),
    ];
    for (op, inputs, output, a) in nodes {
        let node = Node {
            name: output.to_string(),
            op_type: op.to_string(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![output.to_string()],
            attrs: attrs(a),
            fused: Default::default(),
        };
        let kernel = reg.get(op).unwrap()(&node, &BuildCtx { opset: OPSET }).unwrap();
        let ins: Vec<Option<&Fact>> = inputs.iter().map(|i| facts.get(*i)).collect();
        let fact = match ins.iter().map(|f| f.and_then(|f| f.value.as_deref())).collect::<Option<Vec<_>>>() {
            Some(values) => {
                let values: Vec<Option<&Tensor>> = values.into_iter().map(Some).collect();
                Fact::constant(kernel.eval(&values).unwrap().remove(0))
            }
            None => kernel.infer(&ins).unwrap().remove(0),
        };
        facts.insert(output.to_string(), fact);
    }
    assert_eq!(facts["target"].value.as_deref(), Some(&ints(&[-1, 32])));
    assert_eq!(facts["y"].shape, vec![192, 32]);
    assert!(facts["y"].value.is_none());
}
