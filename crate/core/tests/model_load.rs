//! Loading ONNX (hand-built models, the vendored real models, and hostile inputs), planning with
//! test ops (constant folding, liveness, input checks) and batch-norm folding.

use prost::Message;
use qplay_core::model::proto::{
    self, tensor_shape_proto::dimension, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, ValueInfoProto,
};
use qplay_core::model::{
    load_onnx, load_onnx_with_limits, passes::fold_batchnorm_into_conv, Attr, Data, Graph, Limits, ModelError, Node,
    Plan, Tensor,
};
use qplay_core::ops::{input, input_fact, BuildCtx, Fact, Op, OpError, Registry};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[path = "common/onnx.rs"]
mod onnx;

use onnx::{node, tensor_vi};

// ---------------------------------------------------------------------------------------------
// Building models
// ---------------------------------------------------------------------------------------------

fn f32_raw(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn i64_typed(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 7,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

/// A dim: `> 0` a size, `0` a symbolic `N`.
fn vi(name: &str, elem_type: i32, dims: &[i64]) -> ValueInfoProto {
    let dim = |d: i64| if d > 0 { dimension::Value::DimValue(d) } else { dimension::Value::DimParam("N".into()) };
    tensor_vi(name, elem_type, dims.iter().map(|&d| dim(d)))
}

fn named(mut n: NodeProto, name: &str) -> NodeProto {
    n.name = name.into();
    n
}

fn with_attr(mut n: NodeProto, a: AttributeProto) -> NodeProto {
    n.attribute.push(a);
    n
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), i: Some(v), r#type: proto::attribute_type::INT, ..Default::default() }
}

fn model(graph: GraphProto, opset: i64) -> ModelProto {
    ModelProto {
        ir_version: 8,
        producer_name: "qplay-tests".into(),
        producer_version: "1".into(),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: opset }],
        ..Default::default()
    }
}

fn graph(nodes: Vec<NodeProto>, inits: Vec<TensorProto>, inputs: Vec<ValueInfoProto>, outputs: &[&str]) -> GraphProto {
    GraphProto {
        node: nodes,
        initializer: inits,
        input: inputs,
        output: outputs.iter().map(|o| vi(o, 1, &[])).collect(),
        name: "g".into(),
        ..Default::default()
    }
}

/// x[1,4] → Add(x, b) → Relu → y, with extras: a typed int64 initializer listed as an input,
/// a Constant node, unnamed nodes, attributes of each kind.
fn small_model() -> ModelProto {
    let mut relu = node("Relu", &["s"], &["y"]);
    relu.attribute = vec![
        attr_int("k", 3),
        AttributeProto { name: "f".into(), f: Some(0.5), r#type: 1, ..Default::default() },
        AttributeProto { name: "s".into(), s: Some(b"hello".to_vec()), r#type: 3, ..Default::default() },
        AttributeProto { name: "fs".into(), floats: vec![1.0, 2.0], r#type: 6, ..Default::default() },
        AttributeProto { name: "is".into(), ints: vec![4, 5], r#type: 7, ..Default::default() },
        // Old files leave `type` unset: inferred from the field present.
        AttributeProto { name: "old".into(), i: Some(9), ..Default::default() },
    ];
    let constant = with_attr(
        node("Constant", &[], &["c"]),
        AttributeProto { name: "value_ints".into(), ints: vec![7, 8], r#type: 7, ..Default::default() },
    );
    model(
        graph(
            vec![node("Add", &["x", "b"], &["s"]), relu, constant, named(node("Relu", &["c"], &["unused"]), "named")],
            vec![f32_raw("b", &[1, 4], &[1.0, -2.0, 3.0, -4.0]), i64_typed("shape", &[2], &[1, 4])],
            vec![vi("x", 1, &[0, 4]), vi("shape", 7, &[2])],
            &["y"],
        ),
        13,
    )
}

fn err_of(bytes: &[u8]) -> ModelError {
    match load_onnx(bytes) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn repo_file(rel: &str) -> Vec<u8> {
    let path = format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn histogram(g: &Graph) -> BTreeMap<&str, usize> {
    let mut h = BTreeMap::new();
    for n in &g.nodes {
        *h.entry(n.op_type.as_str()).or_default() += 1;
    }
    h
}

/// Deterministic xorshift64* bytes.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Test ops (the real families are registered elsewhere; these override any same-named ones)
// ---------------------------------------------------------------------------------------------

/// Element-wise binary op on equal shapes.
#[derive(Debug)]
struct Binary(fn(f32, f32) -> f32);
impl Op for Binary {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (a, b) = (input_fact(inputs, 0)?, input_fact(inputs, 1)?);
        if a.shape != b.shape {
            return Err(OpError::mismatch(format!("shapes {:?} and {:?} differ", a.shape, b.shape)));
        }
        Ok(vec![Fact::new(a.dtype, a.shape.clone())])
    }
    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        let (x, y) = (a.as_f32().map_err(OpError::mismatch)?, b.as_f32().map_err(OpError::mismatch)?);
        let v = x.iter().zip(y).map(|(&p, &q)| (self.0)(p, q)).collect();
        Ok(vec![Tensor::f32(a.shape.clone(), v).map_err(OpError::mismatch)?])
    }
}

#[derive(Debug)]
struct Relu;
impl Op for Relu {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let a = input_fact(inputs, 0)?;
        Ok(vec![Fact::new(a.dtype, a.shape.clone())])
    }
    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let a = input(inputs, 0)?;
        let v = a.to_f32_vec().into_iter().map(|v| v.max(0.0)).collect();
        Ok(vec![Tensor::f32(a.shape.clone(), v).map_err(OpError::mismatch)?])
    }
}

/// `Shape`: its value follows from the static shape, so inference returns it as a constant.
#[derive(Debug)]
struct ShapeOp;
impl Op for ShapeOp {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let a = input_fact(inputs, 0)?;
        Ok(vec![Fact::constant(Tensor::vec_i64(a.shape.iter().map(|&d| d as i64).collect()))])
    }
    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        Ok(vec![Tensor::vec_i64(input(inputs, 0)?.shape.iter().map(|&d| d as i64).collect())])
    }
}

/// `Gather` of one scalar index from a 1-D int64 tensor (all a shape sub-graph needs).
#[derive(Debug)]
struct GatherScalar;
impl Op for GatherScalar {
    fn infer(&self, _inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(vec![Fact::new(qplay_core::model::DType::I64, vec![1])])
    }
    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let data = input(inputs, 0)?.to_i64_vec().map_err(OpError::mismatch)?;
        let i = *input(inputs, 1)?
            .to_i64_vec()
            .map_err(OpError::mismatch)?
            .first()
            .ok_or_else(|| OpError::malformed("no index"))?;
        let v = *data
            .get(usize::try_from(i).map_err(OpError::mismatch)?)
            .ok_or_else(|| OpError::mismatch("index out of range"))?;
        Ok(vec![Tensor::vec_i64(vec![v])])
    }
}

/// `Concat` of 1-D int64 tensors.
#[derive(Debug)]
struct Concat1d;
impl Op for Concat1d {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let n = inputs.iter().flatten().map(|f| f.shape.first().copied().unwrap_or(1)).sum();
        Ok(vec![Fact::new(qplay_core::model::DType::I64, vec![n])])
    }
    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let mut v = Vec::new();
        for t in inputs.iter().flatten() {
            v.extend(t.to_i64_vec().map_err(OpError::mismatch)?);
        }
        Ok(vec![Tensor::vec_i64(v)])
    }
}

/// `Reshape` whose target (input 1) must be a constant; `-1` infers one dim.
#[derive(Debug)]
struct Reshape;
fn reshape_target(len: usize, spec: &[i64]) -> Result<Vec<usize>, OpError> {
    let known: usize = spec.iter().filter(|&&d| d >= 0).map(|&d| d as usize).product();
    spec.iter()
        .map(|&d| {
            if d >= 0 {
                Ok(d as usize)
            } else {
                len.checked_div(known).ok_or_else(|| OpError::mismatch("bad reshape"))
            }
        })
        .collect()
}
impl Op for Reshape {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        let spec = input_fact(inputs, 1)?
            .value
            .as_ref()
            .ok_or_else(|| OpError::unsupported("the target shape must be a constant"))?;
        let shape = reshape_target(x.shape.iter().product(), &spec.to_i64_vec().map_err(OpError::mismatch)?)?;
        Ok(vec![Fact::new(x.dtype, shape)])
    }
    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let shape = reshape_target(x.len(), &input(inputs, 1)?.to_i64_vec().map_err(OpError::mismatch)?)?;
        Ok(vec![Tensor { shape, data: x.data.clone() }])
    }
}

/// 1×1 `Conv` (NCHW, group 1) with optional bias.
#[derive(Debug)]
struct Conv1x1;
impl Op for Conv1x1 {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (x, w) = (input_fact(inputs, 0)?, input_fact(inputs, 1)?);
        Ok(vec![Fact::new(x.dtype, vec![x.shape[0], w.shape[0], x.shape[2], x.shape[3]])])
    }
    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (x, w) = (input(inputs, 0)?, input(inputs, 1)?);
        let bias = inputs.get(2).copied().flatten().map(|b| b.to_f32_vec());
        let (n, c, hw, m) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3], w.shape[0]);
        let (xv, wv) = (x.to_f32_vec(), w.to_f32_vec());
        let mut out = vec![0f32; n * m * hw];
        for b in 0..n {
            for o in 0..m {
                for p in 0..hw {
                    let mut acc = bias.as_ref().map_or(0.0, |bv| bv[o]);
                    for i in 0..c {
                        acc += wv[o * c + i] * xv[(b * c + i) * hw + p];
                    }
                    out[(b * m + o) * hw + p] = acc;
                }
            }
        }
        Ok(vec![Tensor::f32(vec![n, m, x.shape[2], x.shape[3]], out).map_err(OpError::mismatch)?])
    }
}

/// Inference-mode `BatchNormalization` (NCHW).
#[derive(Debug)]
struct BatchNorm(f32);
impl Op for BatchNorm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }
    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let p: Vec<Vec<f32>> = (1..5).map(|i| input(inputs, i).map(Tensor::to_f32_vec)).collect::<Result<_, _>>()?;
        let (c, hw) = (x.shape[1], x.shape[2] * x.shape[3]);
        let v = x
            .to_f32_vec()
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let ch = (i / hw) % c;
                (v - p[2][ch]) / (p[3][ch] + self.0).sqrt() * p[0][ch] + p[1][ch]
            })
            .collect();
        Ok(vec![Tensor::f32(x.shape.clone(), v).map_err(OpError::mismatch)?])
    }
}

/// A builder that rejects its node, as a real op does for an unsupported attribute value.
fn reject(n: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Err(OpError::unsupported(format!("mode `{}` is not supported", n.attrs.string("mode", "?"))))
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.register("Add", |_, _| Ok(Box::new(Binary(|a, b| a + b))));
    r.register("Mul", |_, _| Ok(Box::new(Binary(|a, b| a * b))));
    r.register("Relu", |_, _| Ok(Box::new(Relu)));
    r.register("Shape", |_, _| Ok(Box::new(ShapeOp)));
    r.register("Gather", |_, _| Ok(Box::new(GatherScalar)));
    r.register("Concat", |_, _| Ok(Box::new(Concat1d)));
    r.register("Reshape", |_, _| Ok(Box::new(Reshape)));
    r.register("Conv", |_, _| Ok(Box::new(Conv1x1)));
    r.register("BatchNormalization", |n, _| Ok(Box::new(BatchNorm(n.attrs.float("epsilon", 1e-5)))));
    r.register("Resize", reject);
    r
}

fn t_f32(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::f32(shape.to_vec(), v.to_vec()).expect("test tensor")
}

fn load(m: &ModelProto) -> Graph {
    load_onnx(&m.encode_to_vec()).expect("test model loads")
}

// ---------------------------------------------------------------------------------------------
// Loading good models
// ---------------------------------------------------------------------------------------------

#[test]
fn loads_a_small_model() {
    let g = load(&small_model());
    assert_eq!(g.opset, 13);
    assert_eq!(g.producer, "qplay-tests 1");
    // `shape` is an initializer also listed as an input: a constant, not an input.
    assert_eq!(g.inputs.len(), 1);
    assert_eq!(g.inputs[0].name, "x");
    assert_eq!(g.inputs[0].shape, vec![None, Some(4)]);
    assert_eq!(g.outputs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["y"]);
    // The Constant node became an initializer.
    assert_eq!(g.initializers["c"], Tensor::vec_i64(vec![7, 8]));
    assert_eq!(g.initializers["b"], t_f32(&[1, 4], &[1.0, -2.0, 3.0, -4.0]));
    assert_eq!(g.initializers["shape"], Tensor::vec_i64(vec![1, 4]));
    let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["Add_0", "Relu_1", "named"]);
    let a = &g.nodes[1].attrs;
    assert_eq!(a.int("k", 0), 3);
    assert_eq!(a.float("f", 0.0), 0.5);
    assert_eq!(a.string("s", ""), "hello");
    assert_eq!(a.floats("fs"), Some(&[1.0, 2.0][..]));
    assert_eq!(a.ints("is"), Some(&[4, 5][..]));
    assert_eq!(a.int("old", 0), 9);
}

#[test]
fn constant_node_forms_and_typed_initializers() {
    let cst = |out: &str, a: AttributeProto| with_attr(node("Constant", &[], &[out]), a);
    let nodes = vec![
        cst("vf", AttributeProto { name: "value_float".into(), f: Some(2.5), r#type: 1, ..Default::default() }),
        cst(
            "vfs",
            AttributeProto { name: "value_floats".into(), floats: vec![1.0, 2.0], r#type: 6, ..Default::default() },
        ),
        cst("vi", attr_int("value_int", -3)),
        cst(
            "vt",
            AttributeProto {
                name: "value".into(),
                t: Some(f32_raw("", &[2], &[4.0, 5.0])),
                r#type: 4,
                ..Default::default()
            },
        ),
        node("Add", &["vt", "vfs"], &["y"]),
    ];
    let inits = vec![
        TensorProto {
            name: "i8".into(),
            dims: vec![3],
            data_type: 3,
            int32_data: vec![-128, 0, 127],
            ..Default::default()
        },
        TensorProto { name: "u8".into(), dims: vec![2], data_type: 2, int32_data: vec![0, 255], ..Default::default() },
        TensorProto { name: "bool".into(), dims: vec![2], data_type: 9, int32_data: vec![0, 1], ..Default::default() },
        TensorProto {
            name: "i32".into(),
            dims: vec![1],
            data_type: 6,
            raw_data: (-7i32).to_le_bytes().to_vec(),
            ..Default::default()
        },
        TensorProto { name: "f".into(), dims: vec![], data_type: 1, float_data: vec![1.5], ..Default::default() },
        TensorProto { name: "empty".into(), dims: vec![0, 3], data_type: 1, ..Default::default() },
    ];
    let g = load(&model(graph(nodes, inits, vec![], &["y"]), 17));
    let i = &g.initializers;
    assert_eq!(i["vf"], Tensor::scalar_f32(2.5));
    assert_eq!(i["vfs"], t_f32(&[2], &[1.0, 2.0]));
    assert_eq!(i["vi"], Tensor::i64(vec![], vec![-3]).unwrap());
    assert_eq!(i["vt"], t_f32(&[2], &[4.0, 5.0]));
    assert_eq!(i["i8"].data, Data::I8(vec![-128, 0, 127]));
    assert_eq!(i["u8"].data, Data::U8(vec![0, 255]));
    assert_eq!(i["bool"].data, Data::Bool(vec![false, true]));
    assert_eq!(i["i32"].data, Data::I32(vec![-7]));
    assert_eq!(i["f"], Tensor::scalar_f32(1.5));
    assert_eq!(i["empty"].shape, vec![0, 3]);
    assert_eq!(g.nodes.len(), 1);

    // Out-of-range typed values are an error, not a wrap-around.
    let bad =
        TensorProto { name: "w".into(), dims: vec![1], data_type: 3, int32_data: vec![300], ..Default::default() };
    let e = err_of(&model(graph(vec![], vec![bad], vec![], &["w"]), 13).encode_to_vec());
    assert!(matches!(e, ModelError::BadTensor { ref name, .. } if name == "w"), "{e}");
}

#[test]
fn loads_person_ssdlite() {
    let g = load_onnx(&repo_file("www/models/person_ssdlite.onnx")).expect("person_ssdlite loads");
    let expected: BTreeMap<&str, usize> = [
        ("Add", 10),
        ("BatchNormalization", 4),
        ("Clip", 59),
        ("Concat", 2),
        ("Conv", 88),
        ("Reshape", 20),
        ("Transpose", 10),
    ]
    .into_iter()
    .collect();
    assert_eq!(histogram(&g), expected);
    assert_eq!(g.opset, 13);
    assert!(g.producer.starts_with("tf2onnx"), "{}", g.producer);
    assert_eq!(g.inputs.len(), 1);
    assert_eq!(g.inputs[0].name, "Preprocessor/sub:0");
    assert_eq!(g.inputs[0].elem_type, 1);
    assert_eq!(g.inputs[0].shape, vec![Some(1), Some(3), Some(300), Some(300)]);
    assert_eq!(g.outputs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["concat:0", "concat_1:0"]);
    assert_eq!(g.initializers.len(), 194);
    assert_eq!(g.initializers.values().filter(|t| matches!(t.data, Data::I64(_))).count(), 4);
    // Its batch norms follow Reshapes (a tf2onnx artefact), so none is foldable.
    let mut folded = g.clone();
    assert_eq!(fold_batchnorm_into_conv(&mut folded), 0);
    assert_eq!(folded, g);
}

#[test]
fn loads_blazeface() {
    let g = load_onnx(&repo_file("www/models/blazeface_short.onnx")).expect("blazeface loads");
    let expected: BTreeMap<&str, usize> = [
        ("Add", 16),
        ("Concat", 2),
        ("Conv", 37),
        ("MaxPool", 3),
        ("Pad", 11),
        ("Relu", 17),
        ("Reshape", 4),
        ("Transpose", 4),
    ]
    .into_iter()
    .collect();
    assert_eq!(histogram(&g), expected);
    assert_eq!(g.opset, 11);
    assert_eq!(g.inputs.len(), 1);
    assert_eq!(g.inputs[0].name, "input");
    assert_eq!(g.inputs[0].shape, vec![Some(1), Some(3), Some(128), Some(128)]);
    assert_eq!(g.outputs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["regressors", "classificators"]);
    assert_eq!(g.initializers.len(), 87);
}

#[test]
fn unsupported_ops_of_a_real_model_are_all_listed() {
    // With only the test ops, the SSD model lacks Clip and Transpose: one error names both.
    let g = load_onnx(&repo_file("www/models/person_ssdlite.onnx")).expect("loads");
    let mut r = Registry::new();
    r.register("Conv", |_, _| Ok(Box::new(Relu)));
    r.register("Add", |_, _| Ok(Box::new(Relu)));
    r.register("Reshape", |_, _| Ok(Box::new(Relu)));
    r.register("Concat", |_, _| Ok(Box::new(Relu)));
    r.register("BatchNormalization", |_, _| Ok(Box::new(Relu)));
    if r.get("Clip").is_some() || r.get("Transpose").is_some() {
        return; // the real op families are merged in: nothing to check here
    }
    match Plan::new(&g, &r, &[]) {
        Err(ModelError::UnsupportedOps(list)) => {
            let ops: Vec<&str> = list.iter().map(|(op, _)| op.as_str()).collect();
            assert_eq!(ops, ["Clip", "Transpose"]);
        }
        other => panic!("expected UnsupportedOps, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile and broken files
// ---------------------------------------------------------------------------------------------

#[test]
fn every_truncation_of_a_small_model_is_an_error() {
    let bytes = small_model().encode_to_vec();
    for len in 0..bytes.len() {
        let e = err_of(&bytes[..len]);
        assert!(matches!(e, ModelError::NotOnnx(_)), "prefix {len}: {e}");
    }
    assert!(load_onnx(&bytes).is_ok());
}

#[test]
fn truncations_of_the_real_model_are_errors() {
    let bytes = repo_file("www/models/person_ssdlite.onnx");
    let n = bytes.len();
    for len in [0, 1, 2, 7, 100, 4096, n / 3, n / 2, n - 1000, n - 10, n - 1] {
        let e = err_of(&bytes[..len]);
        assert!(matches!(e, ModelError::NotOnnx(_)), "prefix {len}: {e}");
    }
}

#[test]
fn random_bytes_are_not_onnx() {
    for seed in 0..500u64 {
        let len = (seed as usize * 37) % 3000;
        match load_onnx(&random_bytes(seed, len)) {
            Ok(g) => panic!("seed {seed}: random bytes loaded as {g:?}"),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

#[test]
fn corrupted_models_never_panic() {
    // Single-byte corruptions of a valid model: any result is fine, a panic is not.
    let bytes = small_model().encode_to_vec();
    for seed in 0..2000u64 {
        let r = random_bytes(seed, 3);
        let mut b = bytes.clone();
        let at = (usize::from(r[0]) << 8 | usize::from(r[1])) % b.len();
        b[at] = r[2];
        let _ = load_onnx(&b);
    }
}

#[test]
fn a_protobuf_that_is_not_a_model() {
    // A lone OperatorSetIdProto decodes as a ModelProto without a graph.
    let other = OperatorSetIdProto { domain: "x".into(), version: 3 }.encode_to_vec();
    assert!(matches!(err_of(&other), ModelError::NotOnnx(_)));
    let no_graph = ModelProto { ir_version: 8, ..Default::default() }.encode_to_vec();
    let e = err_of(&no_graph);
    assert!(matches!(e, ModelError::NotOnnx(ref m) if m.contains("no graph")), "{e}");
    let mut no_opset = small_model();
    no_opset.opset_import.clear();
    assert!(matches!(err_of(&no_opset.encode_to_vec()), ModelError::NotOnnx(_)));
    assert!(matches!(err_of(&[]), ModelError::NotOnnx(_)));
}

fn with_init(t: TensorProto) -> Vec<u8> {
    model(graph(vec![node("Relu", &["w"], &["y"])], vec![t], vec![], &["y"]), 13).encode_to_vec()
}

#[test]
fn dims_that_disagree_with_the_data() {
    let e = err_of(&with_init(f32_raw("w", &[2, 2], &[1.0, 2.0, 3.0])));
    assert!(matches!(e, ModelError::BadTensor { ref name, .. } if name == "w"), "{e}");
    let typed =
        TensorProto { name: "w".into(), dims: vec![3], data_type: 1, float_data: vec![1.0], ..Default::default() };
    assert!(matches!(err_of(&with_init(typed)), ModelError::BadTensor { .. }));
    let mut odd = f32_raw("w", &[1], &[1.0]);
    odd.raw_data.push(0);
    assert!(matches!(err_of(&with_init(odd)), ModelError::BadTensor { .. }));
    let neg = f32_raw("w", &[-1], &[]);
    assert!(matches!(err_of(&with_init(neg)), ModelError::BadTensor { .. }));
}

#[test]
fn dims_whose_product_overflows() {
    let no_limits = Limits { max_tensor_elements: usize::MAX, ..Limits::default() };
    for dims in [vec![i64::MAX, 4], vec![1 << 40, 1 << 40], vec![1 << 62, 2, 2, 2]] {
        let bytes = with_init(f32_raw("w", &dims, &[1.0]));
        let e = load_onnx_with_limits(&bytes, &no_limits).expect_err("overflow");
        assert!(matches!(e, ModelError::BadTensor { ref name, .. } if name == "w"), "{dims:?}: {e}");
    }
}

#[test]
fn a_huge_tensor_claimed_by_a_tiny_file_fails_fast() {
    // 2^29 float32 elements = 2 GiB claimed by a file of a few dozen bytes.
    let bytes = with_init(f32_raw("big", &[1 << 29], &[1.0, 2.0]));
    assert!(bytes.len() < 100);
    let start = Instant::now();
    let e = err_of(&bytes);
    assert!(matches!(e, ModelError::Limit(ref m) if m.contains("big")), "{e}");
    // Past the element limit, the data-length check catches it before any allocation.
    let no_limits = Limits { max_tensor_elements: usize::MAX, ..Limits::default() };
    let e = load_onnx_with_limits(&bytes, &no_limits).expect_err("huge tensor");
    assert!(matches!(e, ModelError::BadTensor { ref name, .. } if name == "big"), "{e}");
    let typed = TensorProto { name: "big".into(), dims: vec![1 << 29], data_type: 7, ..Default::default() };
    let e = load_onnx_with_limits(&with_init(typed), &no_limits).expect_err("huge tensor");
    assert!(matches!(e, ModelError::BadTensor { .. }), "{e}");
    assert!(start.elapsed() < Duration::from_millis(500), "took {:?}", start.elapsed());
}

#[test]
fn other_limits() {
    let bytes = small_model().encode_to_vec();
    let e = load_onnx_with_limits(&bytes, &Limits { max_file_bytes: 10, ..Limits::default() }).expect_err("file");
    assert!(matches!(e, ModelError::Limit(_)), "{e}");
    let e = load_onnx_with_limits(&bytes, &Limits { max_nodes: 2, ..Limits::default() }).expect_err("nodes");
    assert!(matches!(e, ModelError::Limit(ref m) if m.contains("nodes")), "{e}");
}

#[test]
fn graph_cycle() {
    let nodes = vec![named(node("Relu", &["b"], &["a"]), "first"), named(node("Relu", &["a"], &["b"]), "second")];
    let e = err_of(&model(graph(nodes, vec![], vec![], &["a"]), 13).encode_to_vec());
    assert!(matches!(e, ModelError::Cycle(_)), "{e}");
}

#[test]
fn missing_input() {
    let nodes = vec![named(node("Add", &["x", "nowhere"], &["y"]), "adder")];
    let e = err_of(&model(graph(nodes, vec![], vec![vi("x", 1, &[1])], &["y"]), 13).encode_to_vec());
    assert_eq!(e, ModelError::MissingInput { node: "adder".into(), input: "nowhere".into() });
}

#[test]
fn tensor_assigned_twice() {
    let nodes = vec![node("Relu", &["x"], &["y"]), node("Relu", &["x"], &["y"])];
    let e = err_of(&model(graph(nodes, vec![], vec![vi("x", 1, &[1])], &["y"]), 13).encode_to_vec());
    assert!(matches!(e, ModelError::Other(ref m) if m.contains("`y`")), "{e}");
}

#[test]
fn external_data() {
    let mut t = TensorProto { name: "w".into(), dims: vec![4], data_type: 1, data_location: 1, ..Default::default() };
    let missing = |location: &str| ModelError::ExternalData { tensor: "w".into(), location: location.into() };
    assert_eq!(err_of(&with_init(t.clone())), missing(""));
    t.data_location = 0;
    t.external_data = vec![StringStringEntryProto { key: "location".into(), value: "w.bin".into() }];
    assert_eq!(err_of(&with_init(t)), missing("w.bin"));
}

#[test]
fn unsupported_dtype_names_the_tensor() {
    let f8 = TensorProto { name: "w8".into(), dims: vec![1], data_type: 17, raw_data: vec![0], ..Default::default() };
    let e = err_of(&with_init(f8));
    assert!(matches!(e, ModelError::UnsupportedDType(ref m) if m.contains("w8")), "{e}");
}

#[test]
fn float16_bfloat16_float64_widen_to_float32() {
    let load = |t: TensorProto| {
        let g = load_onnx(&with_init(t)).unwrap();
        (g.initializers["w"].as_f32().unwrap().to_vec(), g.load_notes)
    };
    let t = |data_type, raw_data: Vec<u8>| TensorProto {
        name: "w".into(),
        dims: vec![2],
        data_type,
        raw_data,
        ..Default::default()
    };
    let (v, notes) = load(t(10, vec![0, 0x3c, 0x00, 0xc0]));
    assert_eq!(v, [1.0, -2.0]);
    assert!(notes.iter().any(|n| n.contains("float16") && n.contains("float32")), "{notes:?}");
    let (v, notes) = load(t(16, vec![0x80, 0x3f, 0x40, 0xc0]));
    assert_eq!(v, [1.0, -3.0]);
    assert!(notes.iter().any(|n| n.contains("bfloat16")), "{notes:?}");
    let (v, _) = load(TensorProto {
        name: "w".into(),
        dims: vec![2],
        data_type: 11,
        double_data: vec![0.5, 1e40],
        ..Default::default()
    });
    assert_eq!(v, [0.5, f32::INFINITY]);
    // float16 bits in int32_data (the typed field), and a size mismatch still caught first.
    let (v, _) = load(TensorProto {
        name: "w".into(),
        dims: vec![2],
        data_type: 10,
        int32_data: vec![0x3c00, 0x7c00],
        ..Default::default()
    });
    assert_eq!(v, [1.0, f32::INFINITY]);
    let e = err_of(&with_init(t(10, vec![0, 0x3c, 0])));
    assert!(matches!(e, ModelError::BadTensor { .. }), "{e}");
}

#[test]
fn opsets() {
    let mut m = small_model();
    for (v, ok) in [(7, false), (8, false), (9, true), (21, true), (22, true), (28, true), (29, false)] {
        m.opset_import = vec![OperatorSetIdProto { domain: String::new(), version: v }];
        match load_onnx(&m.encode_to_vec()) {
            Ok(g) => assert!(ok && g.opset == v, "opset {v} loaded"),
            Err(e) => assert!(!ok && e == ModelError::Opset(v), "opset {v}: {e}"),
        }
    }
    // "ai.onnx" is the default domain too, and other domains' imports are ignored.
    m.opset_import = vec![
        OperatorSetIdProto { domain: "ai.onnx.ml".into(), version: 2 },
        OperatorSetIdProto { domain: "ai.onnx".into(), version: 13 },
    ];
    assert_eq!(load_onnx(&m.encode_to_vec()).expect("ai.onnx").opset, 13);
}

// ---------------------------------------------------------------------------------------------
// Planning and running
// ---------------------------------------------------------------------------------------------

#[test]
fn unsupported_ops_are_all_listed_before_running() {
    let mut foreign = node("FusedConv", &["a"], &["b"]);
    foreign.domain = "com.microsoft".into();
    let nodes = vec![
        named(node("NoSuchOpA", &["x"], &["a"]), "first_a"),
        foreign,
        named(node("NoSuchOpB", &["b"], &["c"]), "the_b"),
        named(node("NoSuchOpA", &["c"], &["y"]), "second_a"),
    ];
    let g = load(&model(graph(nodes, vec![], vec![vi("x", 1, &[1])], &["y"]), 13));
    let e = Plan::new(&g, &registry(), &[]).expect_err("unsupported");
    assert_eq!(
        e,
        ModelError::UnsupportedOps(vec![
            ("NoSuchOpA".into(), "first_a".into()),
            ("com.microsoft::FusedConv".into(), "FusedConv_1".into()),
            ("NoSuchOpB".into(), "the_b".into()),
        ])
    );
    let msg = e.to_string();
    assert!(msg.contains("3 unsupported ops") && msg.contains("com.microsoft::FusedConv"), "{msg}");
}

#[test]
fn a_builder_error_names_the_node() {
    let n = with_attr(
        named(node("Resize", &["x"], &["y"]), "up"),
        AttributeProto { name: "mode".into(), s: Some(b"cubic".to_vec()), r#type: 3, ..Default::default() },
    );
    let g = load(&model(graph(vec![n], vec![], vec![vi("x", 1, &[1])], &["y"]), 13));
    let e = Plan::new(&g, &registry(), &[]).expect_err("rejected");
    assert!(
        matches!(e, ModelError::Op { ref node, ref error, .. } if node == "up" && error.to_string().contains("cubic")),
        "{e}"
    );
    assert_eq!(e.code(), "unsupported-feature");
}

/// x[1,1,2,2] → Resize (the real op, scales 2× on H and W, `mode` as given) → y.
fn resize_model(mode: &str) -> Graph {
    let n = with_attr(
        named(node("Resize", &["x", "", "scales"], &["y"]), "up"),
        AttributeProto { name: "mode".into(), s: Some(mode.as_bytes().to_vec()), r#type: 3, ..Default::default() },
    );
    let scales = f32_raw("scales", &[4], &[1.0, 1.0, 2.0, 2.0]);
    load(&model(graph(vec![n], vec![scales], vec![vi("x", 1, &[1, 1, 2, 2])], &["y"]), 13))
}

/// x[1,1,2,2] → Conv (the real op, weight `w_shape` of ones, `attrs` added) → y.
fn conv_model(w_shape: &[i64], attrs: Vec<AttributeProto>) -> Graph {
    let mut n = named(node("Conv", &["x", "w"], &["y"]), "conv");
    n.attribute = attrs;
    let w = f32_raw("w", w_shape, &vec![1.0; w_shape.iter().product::<i64>() as usize]);
    load(&model(graph(vec![n], vec![w], vec![vi("x", 1, &[1, 1, 2, 2])], &["y"]), 13))
}

#[test]
fn an_unsupported_attribute_value_is_its_own_kind_through_load_and_plan() {
    // Valid ONNX (a layer norm computed in float64, stash_type 0) that qplay does not
    // implement: the message says what, the code says which kind of problem it is.
    let n = with_attr(named(node("LayerNormalization", &["x", "scale"], &["y"]), "ln"), attr_int("stash_type", 0));
    let scale = f32_raw("scale", &[2], &[1.0, 1.0]);
    let g = load(&model(graph(vec![n], vec![scale], vec![vi("x", 1, &[1, 1, 2, 2])], &["y"]), 17));
    let e = Plan::new(&g, &Registry::new(), &[]).expect_err("stash_type 0 is refused");
    assert_eq!(e.code(), "unsupported-feature", "{e}");
    assert!(
        matches!(&e, ModelError::Op { node, op, error: OpError::Unsupported(_) } if node == "ln" && op == "LayerNormalization"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "node `ln` (LayerNormalization): LayerNormalization with stash_type other than 1 (float32) is not supported"
    );
    // Antialiased and bicubic resizing plan (they once did not).
    let mut g = resize_model("linear");
    g.nodes[0].attrs.0.insert("antialias".into(), qplay_core::model::Attr::Int(1));
    Plan::new(&g, &Registry::new(), &[]).expect("antialias plans");
    // Bicubic resizing plans (it once did not).
    Plan::new(&resize_model("cubic"), &Registry::new(), &[]).expect("cubic plans");
    // The same node with a mode qplay has plans.
    Plan::new(&resize_model("linear"), &Registry::new(), &[]).expect("linear plans");
}

#[test]
fn a_malformed_node_is_a_bad_model() {
    // A mode ONNX does not have: the model is broken, not merely beyond qplay.
    let e = Plan::new(&resize_model("bogus"), &Registry::new(), &[]).expect_err("bogus mode");
    assert_eq!(e.code(), "bad-model", "{e}");
    assert!(matches!(&e, ModelError::Op { error: OpError::Malformed(m), .. } if m.contains("bogus")), "{e:?}");
    let e =
        Plan::new(&conv_model(&[1, 1, 1, 1], vec![attr_int("group", 0)]), &Registry::new(), &[]).expect_err("group 0");
    assert_eq!(e.code(), "bad-model", "{e}");
    assert_eq!(e.to_string(), "node `conv` (Conv): group must be at least 1, got 0");
}

#[test]
fn input_shapes_a_node_cannot_take_are_a_mismatch() {
    // The weight wants 3 input channels; the input has 1.
    let e = Plan::new(&conv_model(&[1, 3, 1, 1], vec![]), &Registry::new(), &[]).expect_err("channels");
    assert_eq!(e.code(), "mismatch", "{e}");
    assert!(matches!(&e, ModelError::Op { node, error: OpError::Mismatch(_), .. } if node == "conv"), "{e:?}");
    Plan::new(&conv_model(&[1, 1, 1, 1], vec![]), &Registry::new(), &[]).expect("one channel plans");
}

/// x[N,2,3] → Reshape(x, Concat(Gather(Shape(x), 0), [-1])) → Relu → y: the shape sub-graph
/// folds away once N is known.
fn shape_subgraph_model() -> ModelProto {
    let nodes = vec![
        node("Shape", &["x"], &["s"]),
        node("Gather", &["s", "zero"], &["n"]),
        node("Concat", &["n", "minus_one"], &["target"]),
        named(node("Reshape", &["x", "target"], &["flat"]), "flatten"),
        named(node("Relu", &["flat"], &["y"]), "relu"),
    ];
    let inits = vec![i64_typed("zero", &[], &[0]), i64_typed("minus_one", &[1], &[-1])];
    model(graph(nodes, inits, vec![vi("x", 1, &[0, 2, 3])], &["y"]), 13)
}

#[test]
fn shape_subgraphs_fold_into_constants() {
    let g = load(&shape_subgraph_model());
    let r = registry();
    let e = Plan::new(&g, &r, &[]).expect_err("dynamic batch");
    assert!(matches!(e, ModelError::DynamicInput { ref name, .. } if name == "x"), "{e}");
    assert!(e.to_string().contains("[?, 2, 3]"), "{e}");

    let plan = Plan::new(&g, &r, &[("x".into(), vec![2, 2, 3])]).expect("plans");
    assert_eq!(plan.steps(), [("flatten", "Reshape"), ("relu", "Relu")]);
    assert_eq!(plan.fact("target").and_then(|f| f.value.as_deref()), Some(&Tensor::vec_i64(vec![2, -1])));
    assert_eq!(plan.fact("y").map(|f| f.shape.clone()), Some(vec![2, 6]));
    assert!(plan.fact("y").is_some_and(|f| f.value.is_none()));
    assert_eq!(plan.input_names(), ["x"]);
    assert_eq!(plan.output_names(), ["y"]);

    let x: Vec<f32> = (0..12).map(|i| i as f32 - 6.0).collect();
    let out = plan.run(&[("x".into(), t_f32(&[2, 2, 3], &x))]).expect("runs");
    let want: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
    assert_eq!(out, [t_f32(&[2, 6], &want)]);

    // Given shapes must agree with the model's static dims.
    let e = Plan::new(&g, &r, &[("x".into(), vec![2, 5, 3])]).expect_err("bad shape");
    assert!(matches!(e, ModelError::InputShape { .. }), "{e}");
    let e = Plan::new(&g, &r, &[("nope".into(), vec![1])]).expect_err("unknown");
    assert!(matches!(e, ModelError::UnknownInput { .. }), "{e}");
}

#[test]
fn run_checks_its_inputs() {
    let g = load(&shape_subgraph_model());
    let plan = Plan::new(&g, &registry(), &[("x".into(), vec![1, 2, 3])]).expect("plans");
    let good = t_f32(&[1, 2, 3], &[0.0; 6]);
    assert!(plan.run(&[("x".into(), good.clone())]).is_ok());
    assert_eq!(plan.run(&[]), Err(ModelError::InputNotGiven("x".into())));
    let e = plan.run(&[("x".into(), t_f32(&[2, 2, 3], &[0.0; 12]))]).expect_err("shape");
    assert!(matches!(e, ModelError::InputShape { .. }), "{e}");
    let e = plan.run(&[("x".into(), Tensor::i64(vec![1, 2, 3], vec![0; 6]).unwrap())]).expect_err("dtype");
    assert!(matches!(e, ModelError::InputDType { .. }), "{e}");
    let e = plan.run(&[("x".into(), good.clone()), ("z".into(), good.clone())]).expect_err("unknown");
    assert!(matches!(e, ModelError::UnknownInput { .. }), "{e}");
    let e = plan.run(&[("x".into(), good.clone()), ("x".into(), good)]).expect_err("twice");
    assert!(matches!(e, ModelError::Other(_)), "{e}");
}

#[test]
fn liveness_keeps_outputs_and_observer_sees_intermediates() {
    // a = x+x, b = a*a, c = relu(b), d = a+c; outputs: b (also read later), d, b again, the
    // constant k, and the input x itself. Dead node `dead` is not planned.
    let nodes = vec![
        named(node("Add", &["x", "x"], &["a"]), "add1"),
        named(node("Mul", &["a", "a"], &["b"]), "mul"),
        named(node("Relu", &["b"], &["c"]), "relu"),
        named(node("Add", &["a", "c"], &["d"]), "add2"),
        named(node("NoSuchOp", &["x"], &["e"]), "dead"),
    ];
    let g = load(&model(
        graph(nodes, vec![f32_raw("k", &[2], &[9.0, 8.0])], vec![vi("x", 1, &[2])], &["b", "d", "b", "k", "x"]),
        13,
    ));
    let plan = Plan::new(&g, &registry(), &[]).expect("plans");
    assert_eq!(plan.steps().len(), 4);
    let mut seen = Vec::new();
    let x = t_f32(&[2], &[1.0, -2.0]);
    let out = plan
        .run_with(&[("x".into(), x.clone())], &mut |name, t| seen.push((name.to_string(), t.clone())))
        .expect("runs");
    let b = t_f32(&[2], &[4.0, 16.0]);
    assert_eq!(out, [b.clone(), t_f32(&[2], &[6.0, 12.0]), b, t_f32(&[2], &[9.0, 8.0]), x]);
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    assert_eq!(seen[0].1, t_f32(&[2], &[2.0, -4.0]));
    // A plan runs many times.
    assert_eq!(plan.run(&[("x".into(), t_f32(&[2], &[0.0, 0.0]))]).expect("again")[1], t_f32(&[2], &[0.0, 0.0]));
}

#[test]
fn constant_only_graph_folds_completely() {
    let nodes = vec![node("Add", &["p", "q"], &["s"]), node("Relu", &["s"], &["y"])];
    let inits = vec![f32_raw("p", &[2], &[1.0, -5.0]), f32_raw("q", &[2], &[1.0, 1.0])];
    let plan = Plan::new(&load(&model(graph(nodes, inits, vec![], &["y"]), 13)), &registry(), &[]).expect("plans");
    assert!(plan.steps().is_empty());
    assert_eq!(plan.run(&[]).expect("runs"), [t_f32(&[2], &[2.0, 0.0])]);
}

#[test]
fn an_op_whose_output_contradicts_inference_is_reported() {
    #[derive(Debug)]
    struct Liar;
    impl Op for Liar {
        fn infer(&self, _: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
            Ok(vec![Fact::new(qplay_core::model::DType::F32, vec![3])])
        }
        fn eval(&self, _: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
            Ok(vec![Tensor::scalar_f32(0.0)])
        }
    }
    let mut r = registry();
    r.register("Liar", |_, _| Ok(Box::new(Liar)));
    let g = load(&model(
        graph(vec![named(node("Liar", &["x"], &["y"]), "liar")], vec![], vec![vi("x", 1, &[1])], &["y"]),
        13,
    ));
    let plan = Plan::new(&g, &r, &[]).expect("plans");
    let e = plan.run(&[("x".into(), t_f32(&[1], &[0.0]))]).expect_err("liar");
    assert!(matches!(e, ModelError::Op { ref node, .. } if node == "liar"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Batch-norm folding
// ---------------------------------------------------------------------------------------------

/// x[1,2,2,2] → Conv1x1(w[3,2,1,1], bias?) → BN → y.
fn conv_bn_model(with_bias: bool) -> ModelProto {
    let mut conv_inputs = vec!["x", "w"];
    if with_bias {
        conv_inputs.push("cb");
    }
    let bn = with_attr(
        named(node("BatchNormalization", &["conv_out", "gamma", "beta", "mean", "var"], &["y"]), "bn"),
        AttributeProto { name: "epsilon".into(), f: Some(1e-3), r#type: 1, ..Default::default() },
    );
    let mut inits = vec![
        f32_raw("w", &[3, 2, 1, 1], &[0.5, -1.0, 2.0, 0.25, -0.75, 1.5]),
        f32_raw("gamma", &[3], &[1.5, 0.5, -2.0]),
        f32_raw("beta", &[3], &[0.1, 0.2, -0.3]),
        f32_raw("mean", &[3], &[0.4, -0.5, 0.6]),
        f32_raw("var", &[3], &[0.9, 2.0, 0.04]),
    ];
    if with_bias {
        inits.push(f32_raw("cb", &[3], &[0.1, -0.2, 0.3]));
    }
    model(
        graph(
            vec![named(node("Conv", &conv_inputs, &["conv_out"]), "conv"), bn],
            inits,
            vec![vi("x", 1, &[1, 2, 2, 2])],
            &["y"],
        ),
        13,
    )
}

fn reference_conv_bn(g: &Graph, x: &Tensor) -> Tensor {
    let i = &g.initializers;
    let conv = Conv1x1.eval(&[Some(x), Some(&i["w"]), i.get("cb")]).expect("conv").remove(0);
    BatchNorm(1e-3)
        .eval(&[Some(&conv), Some(&i["gamma"]), Some(&i["beta"]), Some(&i["mean"]), Some(&i["var"])])
        .expect("bn")
        .remove(0)
}

#[test]
fn batchnorm_folds_into_conv() {
    for with_bias in [true, false] {
        let g = load(&conv_bn_model(with_bias));
        let mut folded = g.clone();
        assert_eq!(fold_batchnorm_into_conv(&mut folded), 1);
        assert_eq!(folded.nodes.len(), 1);
        let conv = &folded.nodes[0];
        assert_eq!(conv.outputs, ["y"]);
        assert_eq!(conv.inputs.len(), 3);
        for gone in ["gamma", "beta", "mean", "var"] {
            assert!(!folded.initializers.contains_key(gone), "{gone} kept");
        }
        // Folded weights, channel by channel.
        let w = folded.initializers[&conv.inputs[1]].as_f32().expect("f32").to_vec();
        let b = folded.initializers[&conv.inputs[2]].as_f32().expect("f32").to_vec();
        let (gamma, beta, mean, var) =
            ([1.5f32, 0.5, -2.0], [0.1f32, 0.2, -0.3], [0.4f32, -0.5, 0.6], [0.9f32, 2.0, 0.04]);
        let w0 = [0.5f32, -1.0, 2.0, 0.25, -0.75, 1.5];
        let b0 = if with_bias { [0.1f32, -0.2, 0.3] } else { [0.0; 3] };
        for m in 0..3 {
            let s = gamma[m] / (var[m] + 1e-3).sqrt();
            for k in 0..2 {
                assert!((w[m * 2 + k] - w0[m * 2 + k] * s).abs() < 1e-6);
            }
            assert!((b[m] - ((b0[m] - mean[m]) * s + beta[m])).abs() < 1e-6);
        }
        // The plan folds too, and computes what Conv then BN compute.
        let plan = Plan::new(&g, &registry(), &[]).expect("plans");
        assert_eq!(plan.steps(), [("conv", "Conv")]);
        let x = t_f32(&[1, 2, 2, 2], &[1.0, -2.0, 0.5, 3.0, -1.5, 2.5, 0.0, -0.25]);
        let got = plan.run(&[("x".into(), x.clone())]).expect("runs").remove(0);
        let want = reference_conv_bn(&g, &x);
        assert_eq!(got.shape, want.shape);
        for (a, b) in got.as_f32().expect("f32").iter().zip(want.as_f32().expect("f32")) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        // The caller's graph is untouched.
        assert_eq!(g.nodes.len(), 2);
    }
}

#[test]
fn batchnorm_is_not_folded_when_it_would_change_the_graph() {
    // The Conv output is also read by another node.
    let mut m = conv_bn_model(true);
    let gp = m.graph.as_mut().expect("graph");
    gp.node.push(node("Relu", &["conv_out"], &["z"]));
    gp.output.push(vi("z", 1, &[]));
    let mut g = load(&m);
    assert_eq!(fold_batchnorm_into_conv(&mut g), 0);

    // A runtime (non-constant) BN parameter.
    let mut m = conv_bn_model(true);
    let gp = m.graph.as_mut().expect("graph");
    gp.initializer.retain(|t| t.name != "var");
    gp.input.push(vi("var", 1, &[3]));
    let mut g = load(&m);
    assert_eq!(fold_batchnorm_into_conv(&mut g), 0);

    // Training mode.
    let mut m = conv_bn_model(true);
    m.graph.as_mut().expect("graph").node[1].attribute.push(attr_int("training_mode", 1));
    let mut g = load(&m);
    assert_eq!(fold_batchnorm_into_conv(&mut g), 0);
}

#[test]
fn shared_conv_weights_are_copied_not_changed() {
    // Two convs share `w`; only the first is followed by a BN.
    let mut m = conv_bn_model(false);
    let gp = m.graph.as_mut().expect("graph");
    gp.node.push(named(node("Conv", &["x", "w"], &["other"]), "conv2"));
    gp.output.push(vi("other", 1, &[]));
    let g = load(&m);
    let mut folded = g.clone();
    assert_eq!(fold_batchnorm_into_conv(&mut folded), 1);
    assert_eq!(folded.initializers["w"], g.initializers["w"]);
    let conv = folded.nodes.iter().find(|n| n.name == "conv").expect("conv");
    assert_ne!(conv.inputs[1], "w");
    let plan = Plan::new(&g, &registry(), &[]).expect("plans");
    let x = t_f32(&[1, 2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let out = plan.run(&[("x".into(), x.clone())]).expect("runs");
    let want = reference_conv_bn(&g, &x);
    for (a, b) in out[0].as_f32().expect("f32").iter().zip(want.as_f32().expect("f32")) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    let plain = Conv1x1.eval(&[Some(&x), Some(&g.initializers["w"]), None]).expect("conv").remove(0);
    assert_eq!(out[1], plain);
}

#[test]
fn attributes_keep_their_types() {
    let g = load(&small_model());
    assert_eq!(g.nodes[1].attrs.0.get("s"), Some(&Attr::String("hello".into())));
    assert_eq!(g.nodes[1].attrs.0.get("fs"), Some(&Attr::Floats(vec![1.0, 2.0])));
}

#[test]
fn deeply_nested_subgraphs_are_refused_without_overflowing_the_stack() {
    let wrap = |inner: GraphProto| GraphProto {
        node: vec![with_attr(
            node("If", &["cond"], &["y"]),
            AttributeProto { name: "then_branch".into(), g: Some(inner), r#type: 5, ..Default::default() },
        )],
        output: vec![vi("y", 1, &[])],
        ..Default::default()
    };
    let mut g = GraphProto::default();
    for _ in 0..200 {
        g = wrap(g);
    }
    let e = err_of(&model(g, 13).encode_to_vec());
    assert!(matches!(e, ModelError::NotOnnx(_)), "{e}");

    // One level loads: the branch is a subgraph. One without outputs is refused when loading;
    // an If without its `else_branch` when planning, naming what is missing.
    let mut g = wrap(GraphProto::default());
    g.input.push(vi("cond", 9, &[1]));
    let e = err_of(&model(g, 13).encode_to_vec());
    assert!(e.to_string().contains("no outputs"), "{e}");
    let mut inner = GraphProto::default();
    inner.node.push(node("Identity", &["cond"], &["c2"]));
    inner.output.push(vi("c2", 9, &[1]));
    let mut g = wrap(inner);
    g.input.push(vi("cond", 9, &[1]));
    g.output = vec![vi("y", 9, &[1])];
    let g = load(&model(g, 13));
    assert!(matches!(g.nodes[0].attrs.0.get("then_branch"), Some(Attr::Graph(_))));
    let e = Plan::new(&g, &registry(), &[]).expect_err("If without else_branch");
    assert!(e.to_string().contains("else_branch"), "{e}");
}

#[test]
fn planning_refuses_huge_tensors() {
    let nodes = vec![named(node("Reshape", &["x", "target"], &["y"]), "blowup")];
    let inits = vec![i64_typed("target", &[2], &[1 << 20, 1 << 20])];
    let g = load(&model(graph(nodes, inits, vec![vi("x", 1, &[0])], &["y"]), 13));
    let r = registry();
    let e = Plan::new(&g, &r, &[("x".into(), vec![1])]).expect_err("huge output");
    assert!(matches!(e, ModelError::Limit(ref m) if m.contains("blowup")), "{e}");
    let e = Plan::new(&g, &r, &[("x".into(), vec![1 << 30])]).expect_err("huge input");
    assert!(matches!(e, ModelError::Limit(ref m) if m.contains("`x`")), "{e}");
}

#[test]
fn plans_are_shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Plan>();
    send_sync::<Graph>();
}

/// Real models (an ONNX file and an int8 TFLite file) sent through a text conversion — read
/// as UTF-8 with invalid bytes replaced, then written back, as an editor or a form field does
/// (MediaPipe's `blaze_face_short_range.tflite` was found on GitHub in that state) — are named
/// as damaged, with what to do, not as a wrong schema version or protobuf field.
#[test]
fn models_damaged_by_a_text_conversion_say_so() {
    for rel in ["www/models/blazeface_short.onnx", "tests/fixtures/tflite/det_int8.tflite"] {
        let good = repo_file(rel);
        assert!(qplay_core::model::load_model(&good).is_ok(), "{rel}");
        let mangled = String::from_utf8_lossy(&good).into_owned().into_bytes();
        let e = qplay_core::model::load_model(&mangled).unwrap_err();
        assert!(matches!(e, ModelError::NotAModel(_)), "{rel}: {e:?}");
        assert!(e.to_string().contains("damaged by a text conversion"), "{rel}: {e}");
        assert_eq!(e.code(), "bad-model");
    }
}
