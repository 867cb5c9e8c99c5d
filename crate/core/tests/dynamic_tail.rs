//! The plan's dynamic tail: steps whose output shapes depend on run-time values (NonZero,
//! NonMaxSuppression) and everything downstream are inferred on each run from the actual
//! inputs, under the same size limit as the rest of the plan.

use qplay_core::model::{Attrs, Data, Graph, Node, Plan, PlanOptions, Tensor, ValueInfo};
use qplay_core::ops::Registry;
use std::collections::HashMap;

fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> Node {
    Node {
        name: format!("{op}_{}", outputs[0]),
        op_type: op.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        attrs: Attrs::default(),
        fused: Default::default(),
    }
}

/// `x` [6] float → NonZero → Shape → Mul by `k` → ConstantOfShape: an output whose length is
/// (number of non-zeros) × k, known only when `x` is.
fn graph(k: i64) -> Graph {
    let mut initializers = HashMap::new();
    initializers.insert("k".to_string(), Tensor { shape: vec![1], data: Data::I64(vec![k]) });
    initializers.insert("one".to_string(), Tensor { shape: vec![1], data: Data::I64(vec![1]) });
    initializers.insert("two".to_string(), Tensor { shape: vec![1], data: Data::I64(vec![2]) });
    Graph {
        nodes: vec![
            node("NonZero", &["x"], &["nz"]),
            node("Shape", &["nz"], &["s"]),
            node("Slice", &["s", "one", "two"], &["count"]),
            node("Mul", &["count", "k"], &["len"]),
            node("ConstantOfShape", &["len"], &["y"]),
        ],
        initializers,
        inputs: vec![ValueInfo { name: "x".into(), elem_type: 1, shape: vec![Some(6)] }],
        outputs: vec![
            ValueInfo { name: "nz".into(), elem_type: 7, shape: vec![Some(1), None] },
            ValueInfo { name: "y".into(), elem_type: 1, shape: vec![None] },
        ],
        opset: 17,
        ..Default::default()
    }
}

fn x(v: [f32; 6]) -> Vec<(String, Tensor)> {
    vec![("x".into(), Tensor { shape: vec![6], data: Data::F32(v.to_vec()) })]
}

#[test]
fn shapes_follow_the_values_on_every_run() {
    let plan = Plan::new(&graph(3), &Registry::new(), &[]).unwrap();
    for (v, n) in [([0., 1., 0., 2., 0., 3.], 3), ([0.; 6], 0), ([1.; 6], 6)] {
        let out = plan.run(&x(v)).unwrap();
        assert_eq!(out[0].shape, vec![1, n]);
        assert_eq!(out[1].shape, vec![n * 3]);
    }
    let out = plan.run(&x([0., 1., 0., 2., 0., 3.])).unwrap();
    assert_eq!(out[0].data, Data::I64(vec![1, 3, 5]));
}

#[test]
fn a_run_time_shape_over_the_limit_is_an_error_not_an_allocation() {
    let opts = PlanOptions { max_tensor_elements: 1000, ..PlanOptions::default() };
    let plan = Plan::with_options(&graph(2000), &Registry::new(), &[], opts).unwrap();
    // No non-zeros: an empty output, within the limit.
    assert_eq!(plan.run(&x([0.; 6])).unwrap()[1].shape, vec![0]);
    let e = plan.run(&x([0., 0., 0., 0., 0., 1.])).unwrap_err().to_string();
    assert!(e.contains("ConstantOfShape") && e.contains("limit"), "{e}");
}
