//! Regressions for the `load_plan` fuzz target (`fuzz/fuzz_targets/load_plan.rs`): every file in
//! `tests/fixtures/fuzz/` and a few hand-made hostile models go through the target's exact path
//! (load with small limits → summary → detector-profile guess → plan) and must give `Ok` or a
//! clean `Err` with the expected message — never a panic, and quickly.

use prost::Message;
use qplay_core::model::proto::{
    tensor_shape_proto::dimension, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    ValueInfoProto,
};
use qplay_core::model::{load_onnx_with_limits, Limits, ModelError, Plan, PlanOptions};
use qplay_core::ops::Registry;
use std::time::{Duration, Instant};

#[path = "../../../fuzz/common/load_plan.rs"]
mod fuzz_target;
#[path = "common/onnx.rs"]
mod onnx;

use fuzz_target::{load_plan, load_plan_with};
use onnx::{node, tensor_vi};

/// Bound for the linear-time tests on 50,000-node models (quadratic work takes minutes).
const LINEAR: Duration = Duration::from_secs(60);

/// Runs `f` and fails the test if it takes longer than `limit` (the fuzzer's time-out is 10 s).
fn timed<T>(what: &str, limit: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(start.elapsed() < limit, "{what} took {:?}, more than {limit:?}", start.elapsed());
    out
}

fn expect_err(what: &str, r: Result<Plan, ModelError>, contains: &str) -> ModelError {
    match r {
        Ok(p) => panic!("{what}: expected an error mentioning {contains:?}, got a plan {p:?}"),
        Err(e) => {
            assert!(e.to_string().contains(contains), "{what}: expected an error mentioning {contains:?}, got: {e}");
            e
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs the fuzzer found: tests/fixtures/fuzz/*.onnx
// ---------------------------------------------------------------------------------------------

/// Each file of `tests/fixtures/fuzz/` with a piece of the message its clean error must carry
/// (`None`: the model is fine and plans). `tests/fixtures/fuzz/README.md` says what each was.
const FOUND: &[(&str, Option<&str>)] = &[];

fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/fuzz")
}

#[test]
fn fuzzer_findings_fail_cleanly() {
    for (file, expected) in FOUND {
        let path = fixture_dir().join(file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let r = timed(file, Duration::from_secs(5), || load_plan(&bytes));
        match expected {
            Some(msg) => {
                expect_err(file, r, msg);
            }
            None => {
                r.unwrap_or_else(|e| panic!("{file}: expected a plan, got: {e}"));
            }
        }
    }
}

#[test]
fn every_fixture_is_listed() {
    let mut listed: Vec<&str> = FOUND.iter().map(|(f, _)| *f).collect();
    listed.sort_unstable();
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture_dir())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".onnx"))
                .collect()
        })
        .unwrap_or_default();
    on_disk.sort_unstable();
    assert_eq!(on_disk, listed, "tests/fixtures/fuzz/*.onnx and FOUND disagree");
}

// ---------------------------------------------------------------------------------------------
// Hand-made hostile models
// ---------------------------------------------------------------------------------------------

/// A float tensor input with these dims, taken as they are (negative ones too).
fn dims_vi(name: &str, dims: &[i64]) -> ValueInfoProto {
    tensor_vi(name, 1, dims.iter().map(|&d| dimension::Value::DimValue(d)))
}

fn i64_init(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: 7,
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

fn model(node: Vec<NodeProto>, initializer: Vec<TensorProto>, input: Vec<ValueInfoProto>, outputs: &[&str]) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        graph: Some(GraphProto {
            node,
            initializer,
            input,
            output: outputs.iter().map(|o| ValueInfoProto { name: o.to_string(), ..Default::default() }).collect(),
            ..Default::default()
        }),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
        ..Default::default()
    }
    .encode_to_vec()
}

fn relu_model() -> Vec<u8> {
    model(vec![node("Relu", &["x"], &["y"])], vec![], vec![dims_vi("x", &[1, 3, 4, 4])], &["y"])
}

#[test]
fn a_valid_model_plans() {
    load_plan(&relu_model()).expect("plans");
}

#[test]
fn every_truncation_fails_cleanly() {
    let bytes = relu_model();
    for n in 0..bytes.len() {
        let _ = load_plan(&bytes[..n]);
    }
    expect_err("empty", load_plan(&[]), "empty");
}

#[test]
fn huge_initializer_dims() {
    for dims in [vec![1 << 40], vec![i64::MAX, 2], vec![1 << 31, 1 << 31, 4]] {
        let t = TensorProto { name: "w".into(), dims, data_type: 1, raw_data: vec![0; 4], ..Default::default() };
        let bytes = model(vec![node("Relu", &["w"], &["y"])], vec![t], vec![], &["y"]);
        let e = timed("huge dims", Duration::from_millis(500), || load_plan(&bytes));
        assert!(matches!(e, Err(ModelError::Limit(_) | ModelError::BadTensor { .. })), "{e:?}");
    }
}

#[test]
fn negative_dims() {
    let t =
        TensorProto { name: "w".into(), dims: vec![2, -2], data_type: 1, raw_data: vec![0; 16], ..Default::default() };
    let bytes = model(vec![node("Relu", &["w"], &["y"])], vec![t], vec![], &["y"]);
    expect_err("negative initializer dims", load_plan(&bytes), "negative");
    // A negative input dimension is read as unknown; the target then gives it a size.
    let bytes = model(vec![node("Relu", &["x"], &["y"])], vec![], vec![dims_vi("x", &[1, -3])], &["y"]);
    load_plan(&bytes).expect("plans with the dynamic size");
    let plan = Plan::new(&load_onnx_with_limits(&bytes, &Limits::default()).expect("loads"), &Registry::new(), &[]);
    assert!(matches!(plan, Err(ModelError::DynamicInput { .. })), "{plan:?}");
}

#[test]
fn huge_input_dims() {
    let bytes = model(vec![node("Relu", &["x"], &["y"])], vec![], vec![dims_vi("x", &[1 << 20, 1 << 20])], &["y"]);
    expect_err("huge input", load_plan(&bytes), "more than the limit");
    let bytes = model(vec![node("Relu", &["x"], &["y"])], vec![], vec![dims_vi("x", &[i64::MAX, i64::MAX])], &["y"]);
    expect_err("overflowing input", load_plan(&bytes), "more elements than can be addressed");
}

#[test]
fn cycles() {
    let two = model(vec![node("Relu", &["b"], &["a"]), node("Relu", &["a"], &["b"])], vec![], vec![], &["a"]);
    expect_err("two-node cycle", load_plan(&two), "cycle");
    let own = model(vec![node("Add", &["x", "y"], &["y"])], vec![], vec![dims_vi("x", &[1])], &["y"]);
    expect_err("node reading its own output", load_plan(&own), "cycle");
}

#[test]
fn constant_folding_is_bounded_by_the_element_limit() {
    // ConstantOfShape of [65536, 65536]: 16 GiB of float32 from a 60-byte file.
    let bytes =
        model(vec![node("ConstantOfShape", &["s"], &["y"])], vec![i64_init("s", &[1 << 16, 1 << 16])], vec![], &["y"]);
    let e = timed("ConstantOfShape", Duration::from_millis(500), || load_plan(&bytes));
    expect_err("ConstantOfShape", e, "4294967296 elements, more than the");
    // Under the op's own limit but over the planning limit (fuzz_target::MAX_ELEMENTS).
    let bytes =
        model(vec![node("ConstantOfShape", &["s"], &["y"])], vec![i64_init("s", &[4096, 4096])], vec![], &["y"]);
    expect_err("ConstantOfShape", load_plan(&bytes), "more than the limit of 4194304");
    // Expand of a scalar the same way.
    let one = TensorProto { name: "one".into(), data_type: 1, float_data: vec![1.0], ..Default::default() };
    let bytes = model(
        vec![node("Expand", &["one", "s"], &["y"])],
        vec![one, i64_init("s", &[1 << 16, 1 << 16])],
        vec![],
        &["y"],
    );
    expect_err("Expand", load_plan(&bytes), "more than the");
}

#[test]
fn a_deep_chain_plans_without_recursion() {
    // 10,000 nodes (the target's node limit), each reading the previous one's output.
    let n = 10_000;
    let names: Vec<String> = (0..=n).map(|i| format!("t{i}")).collect();
    let nodes: Vec<NodeProto> = (0..n).map(|i| node("Relu", &[&names[i]], &[&names[i + 1]])).collect();
    let bytes = model(nodes, vec![], vec![dims_vi("t0", &[1, 4])], &[&names[n]]);
    let plan = timed("deep chain", Duration::from_secs(5), || load_plan(&bytes)).expect("plans");
    assert_eq!(plan.steps().len(), n);
    // The same chain in reverse file order: the topological sort must reorder it.
    let nodes: Vec<NodeProto> = (0..n).rev().map(|i| node("Relu", &[&names[i]], &[&names[i + 1]])).collect();
    let bytes = model(nodes, vec![], vec![dims_vi("t0", &[1, 4])], &[&names[n]]);
    timed("reversed deep chain", Duration::from_secs(5), || load_plan(&bytes)).expect("plans");
}

#[test]
fn many_inputs_and_nodes_plan_in_linear_time() {
    // 50,000 graph inputs each read by one node: looking inputs up by scanning the input list
    // (as the topological sort and planning once did) took minutes; linear, it is a few seconds
    // even on a busy machine, so the generous bound below catches quadratic time, not noise.
    let n = 50_000;
    let inputs: Vec<ValueInfoProto> = (0..n).map(|i| dims_vi(&format!("x{i}"), &[1])).collect();
    let nodes: Vec<NodeProto> = (0..n).map(|i| node("Relu", &[&format!("x{i}")], &[&format!("y{i}")])).collect();
    let outputs: Vec<String> = (0..n).map(|i| format!("y{i}")).collect();
    let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let bytes = model(nodes, vec![], inputs, &outputs);
    let plan = timed("many inputs", LINEAR, || load_plan_with(&bytes, &Limits::default())).expect("plans");
    assert_eq!(plan.steps().len(), n);
    // As many nodes of distinct unsupported op types: each is listed once, in linear time.
    let nodes: Vec<NodeProto> = (0..n).map(|i| node(&format!("Op{i}"), &["x0"], &[&format!("y{i}")])).collect();
    let bytes = model(nodes, vec![], vec![dims_vi("x0", &[1])], &outputs);
    let e = timed("many unsupported ops", LINEAR, || load_plan_with(&bytes, &Limits::default()));
    assert!(matches!(e, Err(ModelError::UnsupportedOps(ref ops)) if ops.len() == n), "{:?}", e.map(|_| ()));
}

#[test]
fn unsupported_and_malformed_attributes_are_errors() {
    // A tensor attribute without a tensor.
    let mut c = node("Constant", &[], &["y"]);
    c.attribute.push(AttributeProto { name: "value".into(), r#type: 4, ..Default::default() });
    expect_err("empty tensor attribute", load_plan(&model(vec![c], vec![], vec![], &["y"])), "no value");
    // Scan is reported as unsupported, not followed; a Loop without its body is malformed.
    let bytes = model(vec![node("Scan", &["x"], &["y"])], vec![], vec![dims_vi("x", &[1])], &["y"]);
    expect_err("Scan", load_plan(&bytes), "unsupported op");
    let bytes = model(vec![node("Loop", &["x"], &["y"])], vec![], vec![dims_vi("x", &[1])], &["y"]);
    expect_err("Loop", load_plan(&bytes), "no `body` graph");
}

// ---------------------------------------------------------------------------------------------
// Constant folding's budget (PlanOptions::max_fold_elements, max_fold_work)
// ---------------------------------------------------------------------------------------------

/// Loads and plans `bytes` with the default limits and planning options, as `qplay infer` and
/// the page do.
fn plan_default(bytes: &[u8]) -> Result<Plan, ModelError> {
    let graph = load_onnx_with_limits(bytes, &Limits::default())?;
    Plan::new(&graph, &Registry::new(), &[])
}

fn named(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto { name: name.into(), ..node(op, inputs, outputs) }
}

fn i64_scalar(name: &str, v: i64) -> TensorProto {
    TensorProto { name: name.into(), data_type: 7, int64_data: vec![v], ..Default::default() }
}

fn f32_scalar(name: &str, v: f32) -> TensorProto {
    TensorProto { name: name.into(), data_type: 1, float_data: vec![v], ..Default::default() }
}

/// The message of a folding-budget error, checked to name `node` and the option to raise.
fn fold_err(what: &str, r: Result<Plan, ModelError>, node: &str, option: &str) -> String {
    let e = expect_err(what, r, &format!("constant folding: node `{node}`"));
    assert!(matches!(e, ModelError::Limit(_)), "{what}: {e:?}");
    let msg = e.to_string();
    assert!(msg.contains(option) && msg.contains("onnxsim"), "{what}: {msg}");
    msg
}

#[test]
fn a_constant_matmul_of_a_huge_expand_is_refused_before_it_runs() {
    // Expand a scalar to 4096 × 4096 (16 Mi elements, under every per-tensor limit), then
    // multiply it by itself: 6.9 · 10¹⁰ multiply-adds at load time (tens of seconds to minutes
    // before the budget; 16384 × 16384 would be 4.4 · 10¹² and hours). Refused before it runs.
    let bytes = model(
        vec![named("big", "Expand", &["one", "s"], &["e"]), named("mm", "MatMul", &["e", "e"], &["y"])],
        vec![f32_scalar("one", 1.0), i64_init("s", &[4096, 4096])],
        vec![],
        &["y"],
    );
    let msg = fold_err("Expand → MatMul", plan_default(&bytes), "mm", "max_fold_work");
    assert!(msg.contains("(MatMul) would take about 68769808384 operations"), "{msg}");
    // Raising the budget is the way to fold it anyway: planning then gets to the MatMul.
    let graph = load_onnx_with_limits(&bytes, &Limits::default()).expect("loads");
    let options = PlanOptions { max_fold_work: 1 << 40, max_fold_elements: 1 << 20, ..PlanOptions::default() };
    let e = Plan::with_options(&graph, &Registry::new(), &[], options);
    fold_err("Expand → MatMul, few elements allowed", e, "big", "max_fold_elements");
}

#[test]
fn a_chain_of_constant_matmuls_stops_at_the_budget() {
    // 1,000 chained 512 × 512 constant MatMuls: 1.3 · 10¹¹ multiply-adds in all. Each node is
    // small; the budget is what they add up to: 7 fold (1.35 · 10⁸ operations each, 1 Gi in all),
    // the eighth is refused.
    let n = 1000;
    let mut nodes = vec![named("c", "ConstantOfShape", &["s"], &["m0"])];
    let names: Vec<String> = (0..=n).map(|i| format!("m{i}")).collect();
    for i in 0..n {
        nodes.push(named(&format!("mm{i}"), "MatMul", &[&names[i], "m0"], &[&names[i + 1]]));
    }
    let bytes = model(nodes, vec![i64_init("s", &[512, 512])], vec![], &[&names[n]]);
    let msg = fold_err("MatMul chain", plan_default(&bytes), "mm7", "max_fold_work");
    assert!(msg.contains("more than the limit of 1073741824"), "{msg}");
    // The same chain under the fuzz target's smaller budget (256 Mi operations), 256 × 256.
    let mut nodes = vec![named("c", "ConstantOfShape", &["s"], &["m0"])];
    for i in 0..n {
        nodes.push(named(&format!("mm{i}"), "MatMul", &[&names[i], "m0"], &[&names[i + 1]]));
    }
    let bytes = model(nodes, vec![i64_init("s", &[256, 256])], vec![], &[&names[n]]);
    fold_err("small MatMul chain", load_plan(&bytes), "mm15", "max_fold_work");
}

#[test]
fn huge_range_constant_of_shape_tile_and_expand_outputs_stop_at_the_budget() {
    // Each node makes 4 Mi elements (the fuzz target's per-tensor limit, so each is allowed on
    // its own); 1,000 of them would hold 16 GiB of folded constants. The budget of 16 Mi
    // elements lets four through and names the fifth.
    let big = 4 << 20;
    let kinds = |i: usize| -> NodeProto {
        let out = format!("y{i}");
        match i % 4 {
            0 => named(&format!("n{i}"), "Range", &["zero", "limit", "step"], &[&out]),
            1 => named(&format!("n{i}"), "ConstantOfShape", &["s"], &[&out]),
            2 => named(&format!("n{i}"), "Tile", &["one11", "s"], &[&out]),
            _ => named(&format!("n{i}"), "Expand", &["one", "s"], &[&out]),
        }
    };
    let n = 1000;
    let outputs: Vec<String> = (0..n).map(|i| format!("y{i}")).collect();
    let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let one11 = TensorProto {
        name: "one11".into(),
        dims: vec![1, 1],
        data_type: 1,
        float_data: vec![1.0],
        ..Default::default()
    };
    let inits = vec![
        i64_scalar("zero", 0),
        i64_scalar("limit", big),
        i64_scalar("step", 1),
        i64_init("s", &[2048, 2048]),
        one11,
        f32_scalar("one", 1.0),
    ];
    let bytes = model((0..n).map(kinds).collect(), inits, vec![], &outputs);
    let msg = fold_err("many huge constants", load_plan(&bytes), "n4", "max_fold_elements");
    assert!(msg.contains("(Range) would compute 4194304 elements") && msg.contains("20971520 in all"), "{msg}");
}

#[test]
fn reading_a_huge_constant_many_times_stops_at_the_budget() {
    // 1,000 ReduceSums of one 4 Mi-element constant: one element out each, but 4 · 10⁹ elements
    // read in all. Reads count, so the budget (256 Mi operations) stops it.
    let n = 1000;
    let mut nodes = vec![named("c", "ConstantOfShape", &["s"], &["c"])];
    nodes.extend((0..n).map(|i| named(&format!("r{i}"), "ReduceSum", &["c"], &[&format!("y{i}")])));
    let outputs: Vec<String> = (0..n).map(|i| format!("y{i}")).collect();
    let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let bytes = model(nodes, vec![i64_init("s", &[2048, 2048])], vec![], &outputs);
    // ConstantOfShape: 4 Mi + 2; each ReduceSum 4 Mi + 1: the 63rd ReduceSum (r62) goes over.
    fold_err("ReduceSum of one constant", load_plan(&bytes), "r62", "max_fold_work");
}

#[test]
fn the_folding_budget_leaves_real_models_alone() {
    // The shipped detectors plan with the defaults (their Shape/Gather/Concat sub-graphs and
    // weight transforms fold well within the budget).
    for model in ["person_ssdlite.onnx", "blazeface_short.onnx"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/models").join(model);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let graph = load_onnx_with_limits(&bytes, &Limits::default()).expect("loads");
        let shapes: Vec<(String, Vec<usize>)> =
            graph.inputs.iter().map(|v| (v.name.clone(), v.shape.iter().map(|d| d.unwrap_or(1)).collect())).collect();
        Plan::new(&graph, &Registry::new(), &shapes).unwrap_or_else(|e| panic!("{model}: {e}"));
    }
}
