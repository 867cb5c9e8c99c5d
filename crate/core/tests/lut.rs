//! Lookup-table lowering of 8-bit element-wise chains (`DequantizeLinear → float ops →
//! QuantizeLinear`): the lowered plan equals the float simulation in every value, and chains
//! that are not functions of one code are left alone.

use qplay_core::model::{Attr, Attrs, Data, Graph, Node, Plan, PlanOptions, Tensor, ValueInfo};
use qplay_core::ops::Registry;
use std::collections::HashMap;

fn node(name: &str, op: &str, i: &[&str], o: &str, a: &[(&str, Attr)]) -> Node {
    Node {
        name: name.into(),
        op_type: op.into(),
        inputs: i.iter().map(|s| s.to_string()).collect(),
        outputs: vec![o.into()],
        attrs: Attrs(a.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()),
        fused: Default::default(),
    }
}

fn zp(v: i64, signed: bool) -> Tensor {
    let data = if signed { Data::I8(vec![v as i8]) } else { Data::U8(vec![v as u8]) };
    Tensor { shape: vec![], data }
}

/// x (8-bit codes) → DQ → `body` → Q; `extra_outputs` are graph outputs too.
fn chain(
    signed_in: bool,
    signed_out: bool,
    body: Vec<Node>,
    last: &str,
    consts: &[(&str, Tensor)],
    extra_outputs: &[&str],
) -> Graph {
    let mut init = HashMap::new();
    init.insert("sx".to_string(), Tensor::scalar_f32(0.0731));
    init.insert("zx".to_string(), zp(if signed_in { -7 } else { 121 }, signed_in));
    init.insert("sy".to_string(), Tensor::scalar_f32(0.0193));
    init.insert("zy".to_string(), zp(if signed_out { 3 } else { 40 }, signed_out));
    for (k, v) in consts {
        init.insert(k.to_string(), v.clone());
    }
    let mut nodes = vec![node("dq", "DequantizeLinear", &["x", "sx", "zx"], "xf", &[])];
    nodes.extend(body);
    nodes.push(node("q", "QuantizeLinear", &[last, "sy", "zy"], "y", &[]));
    let mut outputs = vec![ValueInfo { name: "y".into(), elem_type: 0, shape: vec![] }];
    outputs.extend(extra_outputs.iter().map(|n| ValueInfo { name: n.to_string(), elem_type: 0, shape: vec![] }));
    Graph {
        nodes,
        initializers: init,
        inputs: vec![ValueInfo {
            name: "x".into(),
            elem_type: if signed_in { 3 } else { 2 },
            shape: vec![Some(2), Some(3), Some(7), Some(11)],
        }],
        outputs,
        opset: 13,
        ..Default::default()
    }
}

/// Every code, and then some, in a [2, 3, 7, 11] tensor.
fn codes(signed: bool) -> Tensor {
    let v: Vec<u8> = (0..462u32).map(|i| (i * 97 % 256) as u8).collect();
    let data = if signed { Data::I8(v.into_iter().map(|b| b as i8).collect()) } else { Data::U8(v) };
    Tensor { shape: vec![2, 3, 7, 11], data }
}

/// (lowered to a lookup?, the lowered and reference outputs equal?)
fn check(g: &Graph, signed_in: bool) -> (bool, bool) {
    let r = Registry::new();
    let shape = vec![2, 3, 7, 11];
    let lowered = Plan::new(g, &r, &[("x".into(), shape.clone())]).unwrap();
    let opts = PlanOptions { int8_kernels: false, ..Default::default() };
    let reference = Plan::with_options(g, &r, &[("x".into(), shape)], opts).unwrap();
    let x = codes(signed_in);
    let (a, b) = (lowered.run(&[("x".into(), x.clone())]).unwrap(), reference.run(&[("x".into(), x)]).unwrap());
    let has = lowered.steps().iter().any(|s| s.1 == "qplay.Lookup");
    (has, a == b)
}

#[test]
fn element_wise_chains_become_exact_lookups() {
    let silu = || vec![node("sig", "Sigmoid", &["xf"], "s", &[]), node("mul", "Mul", &["xf", "s"], "m", &[])];
    type Case = (&'static str, Vec<Node>, &'static str, Vec<(&'static str, Tensor)>);
    let cases: Vec<Case> = vec![
        ("sigmoid", vec![node("sig", "Sigmoid", &["xf"], "s", &[])], "s", vec![]),
        ("silu", silu(), "m", vec![]),
        ("hardswish", vec![node("hs", "HardSwish", &["xf"], "h", &[])], "h", vec![]),
        (
            "tanh·2+1",
            vec![
                node("t", "Tanh", &["xf"], "t", &[]),
                node("m2", "Mul", &["t", "two"], "u", &[]),
                node("a1", "Add", &["u", "one"], "v", &[]),
            ],
            "v",
            vec![("two", Tensor::scalar_f32(2.0)), ("one", Tensor::scalar_f32(1.0))],
        ),
        (
            "leaky+clip",
            vec![
                node("lr", "LeakyRelu", &["xf"], "l", &[("alpha", Attr::Float(0.1))]),
                node("c", "Clip", &["l", "lo", "hi"], "c", &[]),
            ],
            "c",
            vec![("lo", Tensor::scalar_f32(-0.5)), ("hi", Tensor::scalar_f32(3.0))],
        ),
        ("exp", vec![node("e", "Exp", &["xf"], "e", &[])], "e", vec![]),
    ];
    for (name, body, last, consts) in cases {
        for (si, so) in [(false, false), (true, true), (false, true)] {
            let g = chain(si, so, body.clone(), last, &consts, &[]);
            let (lowered, equal) = check(&g, si);
            assert!(lowered, "{name} ({si}, {so}) was not lowered");
            assert!(equal, "{name} ({si}, {so}): the lookup differs from the float chain");
        }
    }
}

#[test]
fn chains_that_are_not_one_code_functions_are_left_alone() {
    // An intermediate that is also a graph output.
    let g = chain(
        false,
        false,
        vec![node("sig", "Sigmoid", &["xf"], "s", &[]), node("mul", "Mul", &["xf", "s"], "m", &[])],
        "m",
        &[],
        &["s"],
    );
    assert_eq!(check(&g, false), (false, true));
    // A per-channel constant (not one value).
    let c = Tensor::f32(vec![1, 3, 1, 1], vec![1.0, 2.0, 3.0]).unwrap();
    let g = chain(false, false, vec![node("mul", "Mul", &["xf", "c"], "m", &[])], "m", &[("c", c)], &[]);
    assert_eq!(check(&g, false), (false, true));
    // A graph input read directly (two leaves: the DQ and a float input) cannot be a table.
    let mut g = chain(false, false, vec![node("add", "Add", &["xf", "z"], "m", &[])], "m", &[], &[]);
    g.inputs.push(ValueInfo { name: "z".into(), elem_type: 1, shape: vec![Some(2), Some(3), Some(7), Some(11)] });
    let r = Registry::new();
    let shape = vec![2, 3, 7, 11];
    let p = Plan::new(&g, &r, &[("x".into(), shape.clone()), ("z".into(), shape)]).unwrap();
    assert!(!p.steps().iter().any(|s| s.1 == "qplay.Lookup"));
}
