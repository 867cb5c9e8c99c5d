//! Control flow: `If` nodes load with their branches as subgraphs (the outer values a branch
//! reads become explicit inputs of the node), planning inlines the branch a constant condition
//! takes, and a condition known only at run time runs the taken branch on the CPU. Hand-made
//! models check each path and the errors (a branch with the wrong number of outputs, an
//! unsupported op inside a branch, a condition of several values); saving keeps the branches.

#[path = "common/onnx.rs"]
mod onnx_protos;

use onnx_protos::{node, tensor_vi};
use prost::Message;
use qplay_core::model::proto::{
    attribute_type, tensor_shape_proto::dimension::Value as D, AttributeProto, GraphProto, ModelProto,
    OperatorSetIdProto, TensorProto, ValueInfoProto,
};
use qplay_core::model::{load_onnx, save_onnx, Attr, ModelError, OpKind, Plan, PlanOptions, Tensor};
use qplay_core::ops::Registry;

fn f32_init(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn i64_init(name: &str, v: i64) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![],
        data_type: 7,
        raw_data: v.to_le_bytes().to_vec(),
        ..Default::default()
    }
}

fn out(name: &str) -> ValueInfoProto {
    tensor_vi(name, 1, [D::DimValue(2), D::DimValue(3)])
}

/// A branch: its nodes, constants and output names (it reads `x` of the outer graph by name).
fn branch(nodes: Vec<qplay_core::model::proto::NodeProto>, init: Vec<TensorProto>, outs: &[&str]) -> GraphProto {
    GraphProto {
        node: nodes,
        name: "branch".into(),
        initializer: init,
        output: outs.iter().map(|o| out(o)).collect(),
        ..Default::default()
    }
}

fn graph_attr(name: &str, g: GraphProto) -> AttributeProto {
    AttributeProto { name: name.into(), g: Some(g), r#type: attribute_type::GRAPH, ..Default::default() }
}

/// x [2, 3] → cond (from `cond_nodes`, ending in `c`) → If: then −x, else x + 1 (a constant of
/// the branch) → y.
fn model(cond_nodes: Vec<qplay_core::model::proto::NodeProto>, then_outs: &[&str]) -> Vec<u8> {
    let then_branch = branch(vec![node("Neg", &["x"], &["t"])], vec![], then_outs);
    let else_branch = branch(vec![node("Add", &["x", "one"], &["e"])], vec![f32_init("one", &[], &[1.0])], &["e"]);
    let mut if_node = node("If", &["c"], &["y"]);
    if_node.name = "the_if".into();
    if_node.attribute = vec![graph_attr("then_branch", then_branch), graph_attr("else_branch", else_branch)];
    let mut nodes = cond_nodes;
    nodes.push(if_node);
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            initializer: vec![i64_init("zero_i", 0), f32_init("zero_f", &[], &[0.0])],
            input: vec![out("x")],
            output: vec![out("y")],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// cond = (Size(x) == 0): known once the shape is.
fn shape_cond() -> Vec<qplay_core::model::proto::NodeProto> {
    vec![node("Size", &["x"], &["n"]), node("Equal", &["n", "zero_i"], &["c"])]
}

/// cond = (ReduceSum(x) > 0): known at run time only.
fn data_cond() -> Vec<qplay_core::model::proto::NodeProto> {
    let mut sum = node("ReduceSum", &["x"], &["s"]);
    sum.attribute =
        vec![AttributeProto { name: "keepdims".into(), i: Some(0), r#type: attribute_type::INT, ..Default::default() }];
    vec![sum, node("Greater", &["s", "zero_f"], &["c"])]
}

fn x(v: [f32; 6]) -> Vec<(String, Tensor)> {
    vec![("x".into(), Tensor::f32(vec![2, 3], v.to_vec()).unwrap())]
}

fn plan(bytes: &[u8]) -> Result<Plan, ModelError> {
    Plan::new(&load_onnx(bytes)?, &Registry::new(), &[])
}

#[test]
fn branches_load_with_the_outer_values_they_read_as_inputs() {
    let g = load_onnx(&model(shape_cond(), &["t"])).unwrap();
    let n = g.nodes.iter().find(|n| n.is(OpKind::If)).unwrap();
    assert_eq!(n.inputs, ["c", "x"], "the condition, then the captured `x`");
    assert_eq!(n.captured(), 1);
    let Some(Attr::Graph(e)) = n.attrs.0.get("else_branch") else { panic!("{:?}", n.attrs) };
    assert_eq!(e.inputs.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["x"]);
    assert!(e.initializers.contains_key("one"));
}

#[test]
fn a_constant_condition_inlines_the_branch_taken() {
    let p = plan(&model(shape_cond(), &["t"])).unwrap();
    let steps = p.steps();
    assert!(steps.iter().all(|(_, op)| *op != "If"), "inlined: {steps:?}");
    assert!(steps.iter().any(|(_, op)| *op == "Add"), "the else branch (x is not empty): {steps:?}");
    let y = p.run(&x([1.0, -2.0, 3.0, 0.0, 5.0, -6.0])).unwrap();
    assert_eq!(y[0].as_f32().unwrap(), [2.0, -1.0, 4.0, 1.0, 6.0, -5.0]);
}

#[test]
fn a_data_dependent_condition_runs_the_branch_at_run_time() {
    let p = plan(&model(data_cond(), &["t"])).unwrap();
    assert!(p.steps().iter().any(|(n, op)| *op == "If" && *n == "the_if"), "{:?}", p.steps());
    let pos = p.run(&x([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])).unwrap();
    assert_eq!(pos[0].as_f32().unwrap(), [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0], "then: −x");
    let neg = p.run(&x([-1.0, -2.0, -3.0, -4.0, -5.0, -6.0])).unwrap();
    assert_eq!(neg[0].as_f32().unwrap(), [0.0, -1.0, -2.0, -3.0, -4.0, -5.0], "else: x + 1");
}

#[test]
fn a_branch_with_the_wrong_number_of_outputs_is_refused_naming_it() {
    let bytes = model(shape_cond(), &["t", "t"]);
    let e = plan(&bytes).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("the_if") && msg.contains("then_branch") && msg.contains("2 outputs"), "{msg}");
    assert_eq!(e.code(), "bad-model");
}

#[test]
fn an_unsupported_op_inside_a_branch_is_listed_at_plan_time() {
    let mut bytes_model = ModelProto::decode(&model(data_cond(), &["t"])[..]).unwrap();
    let g = bytes_model.graph.as_mut().unwrap();
    let if_node = g.node.iter_mut().find(|n| n.op_type == "If").unwrap();
    let then = if_node.attribute[0].g.as_mut().unwrap();
    then.node[0].op_type = "Unique".into();
    let e = plan(&bytes_model.encode_to_vec()).unwrap_err();
    assert!(matches!(&e, ModelError::UnsupportedOps(ops) if ops[0].0 == "Unique"), "{e}");
}

#[test]
fn a_condition_of_several_values_is_an_error_at_run_time() {
    // cond = x > 0 elementwise: six values.
    let p = plan(&model(vec![node("Greater", &["x", "zero_f"], &["c"])], &["t"])).unwrap();
    let e = p.run(&x([1.0; 6])).unwrap_err().to_string();
    assert!(e.contains("the_if") && e.contains("exactly one value"), "{e}");
}

#[test]
fn saving_keeps_the_branches_and_reads_back_the_same() {
    let g = load_onnx(&model(data_cond(), &["t"])).unwrap();
    let bytes = save_onnx(&g, "test");
    let saved = ModelProto::decode(&bytes[..]).unwrap();
    let n = saved.graph.as_ref().unwrap().node.iter().find(|n| n.op_type == "If").unwrap();
    assert_eq!(n.input, ["c"], "ONNX's form: outer values implicit");
    assert!(n.attribute.iter().all(|a| a.g.as_ref().is_some_and(|g| g.input.is_empty())));
    let back = load_onnx(&bytes).unwrap();
    let a = Plan::new(&g, &Registry::new(), &[]).unwrap().run(&x([-1.0; 6])).unwrap();
    let b = Plan::new(&back, &Registry::new(), &[]).unwrap().run(&x([-1.0; 6])).unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_branch_run_at_run_time_keeps_the_plans_size_limit() {
    // then: Concat(x, x, x) → 18 values, over a limit of 10 that x (6 values) is under.
    let mut m = ModelProto::decode(&model(data_cond(), &["t"])[..]).unwrap();
    let g = m.graph.as_mut().unwrap();
    let if_node = g.node.iter_mut().find(|n| n.op_type == "If").unwrap();
    let then = if_node.attribute[0].g.as_mut().unwrap();
    then.node[0] = node("Concat", &["x", "x", "x"], &["t"]);
    then.node[0].attribute =
        vec![AttributeProto { name: "axis".into(), i: Some(0), r#type: attribute_type::INT, ..Default::default() }];
    let graph = load_onnx(&m.encode_to_vec()).unwrap();
    let options = PlanOptions { max_tensor_elements: 10, ..PlanOptions::default() };
    let p = Plan::with_options(&graph, &Registry::new(), &[], options).unwrap();
    assert_eq!(p.run(&x([-1.0; 6])).unwrap()[0].len(), 6, "else: x + 1, within the limit");
    let e = p.run(&x([1.0; 6])).unwrap_err().to_string();
    assert!(e.contains("the_if") && e.contains("limit of 10"), "{e}");
    // Unlimited, the same branch runs.
    let p = Plan::new(&graph, &Registry::new(), &[]).unwrap();
    assert_eq!(p.run(&x([1.0; 6])).unwrap()[0].shape, [6, 3]);
}
