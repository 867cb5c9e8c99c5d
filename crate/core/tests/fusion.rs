//! Fusing `Relu` / `Clip` into the preceding `Conv` ([`fuse_activation_into_conv`]): which
//! patterns fuse, and that fused plans compute bit-identical outputs to unfused ones, on a small
//! random model and on the vendored person detector.

use qplay_core::model::passes::{fold_batchnorm_into_conv, fuse_activation_into_conv};
use qplay_core::model::{load_onnx, Attr, Attrs, Graph, Node, Plan, PlanOptions, Tensor, ValueInfo};
use qplay_core::ops::Registry;

fn rng(seed: &mut u64) -> f32 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn random(shape: &[usize], scale: f32, seed: &mut u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::f32(shape.to_vec(), (0..n).map(|_| rng(seed) * scale).collect()).expect("tensor")
}

fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<(&str, Attr)>) -> Node {
    Node {
        name: name.into(),
        op_type: op.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
        fused: Default::default(),
    }
}

fn value(name: &str, shape: &[usize]) -> ValueInfo {
    ValueInfo { name: name.into(), elem_type: 1, shape: shape.iter().map(|&d| Some(d)).collect() }
}

fn conv(name: &str, x: &str, out: &str, k: usize, pad: i64, stride: i64, group: i64) -> Node {
    let k = k as i64;
    node(
        name,
        "Conv",
        &[x, &format!("{name}_w"), &format!("{name}_b")],
        &[out],
        vec![
            ("kernel_shape", Attr::Ints(vec![k, k])),
            ("pads", Attr::Ints(vec![pad; 4])),
            ("strides", Attr::Ints(vec![stride, stride])),
            ("group", Attr::Int(group)),
        ],
    )
}

/// x [1,4,9,9] → Conv 3×3 → Clip(0,6) → depthwise 3×3/2 → Relu → Conv 1×1 to 300 channels →
/// Clip(−0.5, —) → Conv 1×1 from 300 channels (more than one GEMM depth block) → Clip(−1, 1) →
/// y; and a Conv read by two nodes (not fusable) → Relu → z, with Clip(2, 1) (min > max) on
/// another branch → u.
fn small_model(seed: &mut u64) -> Graph {
    let mut g = Graph { opset: 13, ..Graph::default() };
    let mut init = |name: &str, shape: &[usize], scale: f32| {
        g.initializers.insert(name.into(), random(shape, scale, seed));
    };
    init("c1_w", &[6, 4, 3, 3], 0.5);
    init("c1_b", &[6], 0.5);
    init("dw_w", &[6, 1, 3, 3], 0.5);
    init("dw_b", &[6], 0.5);
    init("pw_w", &[300, 6, 1, 1], 0.5);
    init("pw_b", &[300], 0.5);
    init("pj_w", &[5, 300, 1, 1], 0.1);
    init("pj_b", &[5], 0.1);
    init("sh_w", &[3, 4, 1, 1], 1.0);
    init("sh_b", &[3], 1.0);
    for (name, v) in [("zero", 0.0f32), ("six", 6.0), ("lo", -0.5), ("m1", -1.0), ("p1", 1.0), ("two", 2.0)] {
        g.initializers.insert(name.into(), Tensor::scalar_f32(v));
    }
    g.nodes = vec![
        conv("c1", "x", "c1_out", 3, 1, 1, 1),
        node("clip1", "Clip", &["c1_out", "zero", "six"], &["a1"], vec![]),
        conv("dw", "a1", "dw_out", 3, 1, 2, 6),
        node("relu", "Relu", &["dw_out"], &["a2"], vec![]),
        conv("pw", "a2", "pw_out", 1, 0, 1, 1),
        node("clip2", "Clip", &["pw_out", "lo", ""], &["a3"], vec![]),
        conv("pj", "a3", "pj_out", 1, 0, 1, 1),
        node("clip3", "Clip", &["pj_out", "m1", "p1"], &["y"], vec![]),
        conv("sh", "x", "shared", 1, 0, 1, 1),
        node("relu_sh", "Relu", &["shared"], &["z"], vec![]),
        node("clip_sh", "Clip", &["shared", "two", "p1"], &["u"], vec![]),
    ];
    g.inputs = vec![value("x", &[1, 4, 9, 9])];
    g.outputs = vec![value("y", &[1, 5, 5, 5]), value("z", &[1, 3, 9, 9]), value("u", &[1, 3, 9, 9])];
    g
}

fn bits(ts: &[Tensor]) -> Vec<Vec<u32>> {
    ts.iter().map(|t| t.as_f32().expect("f32").iter().map(|v| v.to_bits()).collect()).collect()
}

fn plans(g: &Graph, shape: &[usize]) -> (Plan, Plan) {
    let shapes = [(g.inputs[0].name.clone(), shape.to_vec())];
    let fused = Plan::new(g, &Registry::new(), &shapes).expect("fused plan");
    let unfused =
        Plan::with_options(g, &Registry::new(), &shapes, PlanOptions { fuse_activations: false, ..Default::default() })
            .expect("unfused plan");
    (fused, unfused)
}

#[test]
fn the_pass_fuses_only_what_it_may() {
    let mut g = small_model(&mut 1);
    assert_eq!(fuse_activation_into_conv(&mut g), 4);
    let ops: Vec<(&str, &str)> = g.nodes.iter().map(|n| (n.name.as_str(), n.op_type.as_str())).collect();
    assert_eq!(
        ops,
        [
            ("c1", "Conv"),
            ("dw", "Conv"),
            ("pw", "Conv"),
            ("pj", "Conv"),
            ("sh", "Conv"),
            ("relu_sh", "Relu"),
            ("clip_sh", "Clip")
        ]
    );
    let outs: Vec<&str> = g.nodes.iter().take(4).map(|n| n.outputs[0].as_str()).collect();
    assert_eq!(outs, ["a1", "a2", "a3", "y"]);
    // Bounds nothing reads any more are gone; those still read are kept.
    for gone in ["zero", "six", "lo", "m1"] {
        assert!(!g.initializers.contains_key(gone), "{gone} kept");
    }
    for kept in ["p1", "two"] {
        assert!(g.initializers.contains_key(kept), "{kept} removed");
    }
    // Idempotent: nothing more to fuse.
    assert_eq!(fuse_activation_into_conv(&mut g), 0);

    // A Conv output that is a graph output keeps its activation separate.
    let mut g = small_model(&mut 1);
    g.outputs.push(value("c1_out", &[1, 6, 9, 9]));
    assert_eq!(fuse_activation_into_conv(&mut g), 3);
    assert!(g.nodes.iter().any(|n| n.name == "clip1"));

    // A runtime bound is not a constant: no fusion.
    let mut g = small_model(&mut 1);
    g.inputs.push(value("rt_max", &[]));
    g.nodes[1].inputs[2] = "rt_max".into();
    assert_eq!(fuse_activation_into_conv(&mut g), 3);
    assert!(g.nodes.iter().any(|n| n.name == "clip1"));

    // Before opset 11 the bounds are attributes.
    let mut g = small_model(&mut 1);
    g.opset = 10;
    for n in g.nodes.iter_mut().filter(|n| n.op_type == "Clip") {
        n.inputs.truncate(1);
        n.attrs.0.insert("min".into(), Attr::Float(-0.25));
    }
    assert_eq!(fuse_activation_into_conv(&mut g), 4);
}

#[test]
fn fused_plans_compute_the_same_bits_on_a_small_model() {
    let mut seed = 7;
    for variant in 0..2 {
        let mut g = small_model(&mut seed);
        if variant == 1 {
            g.opset = 10;
            for n in g.nodes.iter_mut().filter(|n| n.op_type == "Clip") {
                n.inputs.truncate(1);
                n.attrs.0.insert("min".into(), Attr::Float(-0.25));
                n.attrs.0.insert("max".into(), Attr::Float(0.75));
            }
        }
        let (fused, unfused) = plans(&g, &[1, 4, 9, 9]);
        assert_eq!(fused.steps().len() + 4, unfused.steps().len());
        assert!(!fused.steps().iter().any(|(name, _)| ["clip1", "relu", "clip2", "clip3"].contains(name)));
        for _ in 0..3 {
            let x = random(&[1, 4, 9, 9], 3.0, &mut seed);
            let inputs = [("x".to_string(), x)];
            let (a, b) = (fused.run(&inputs).expect("fused"), unfused.run(&inputs).expect("unfused"));
            assert_eq!(a.iter().map(|t| &t.shape).collect::<Vec<_>>(), b.iter().map(|t| &t.shape).collect::<Vec<_>>());
            assert_eq!(bits(&a), bits(&b));
            // The clamps did something: some outputs sit on the bounds.
            let y = a[0].as_f32().expect("f32");
            let (lo, hi) = if variant == 0 { (-1.0, 1.0) } else { (-0.25, 0.75) };
            assert!(y.iter().all(|&v| (lo..=hi).contains(&v)));
            if variant == 0 {
                assert!(a[2].as_f32().expect("f32").iter().all(|&v| v == 1.0));
            }
        }
    }
}

#[test]
fn fused_plans_compute_the_same_bits_on_the_person_model() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../www/models/person_ssdlite.onnx");
    let g = load_onnx(&std::fs::read(path).expect("model file")).expect("loads");
    let mut folded = g.clone();
    fold_batchnorm_into_conv(&mut folded);
    let fusable = fuse_activation_into_conv(&mut folded);
    assert!(fusable >= 50, "only {fusable} activations fused");

    let shape = [1, 3, 300, 300];
    let (fused, unfused) = plans(&g, &shape);
    assert_eq!(fused.steps().len() + fusable, unfused.steps().len());
    let x = random(&shape, 1.0, &mut 3);
    let inputs = [(g.inputs[0].name.clone(), x)];
    let (a, b) = (fused.run(&inputs).expect("fused"), unfused.run(&inputs).expect("unfused"));
    assert_eq!(a.len(), b.len());
    assert_eq!(bits(&a), bits(&b));
}

/// The report's float simulation of a QDQ graph ([`fake_quant_qdq_pairs`]): each activation's
/// Q→DQ pair becomes one FakeQuant, and the plan computes the same bits as the graph as written,
/// on 8- and 16-bit activations.
#[test]
fn fake_quant_pairs_compute_the_same_bits_as_the_qdq_graph() {
    use qplay_core::model::passes::fake_quant_qdq_pairs;
    use qplay_core::ptq::{quantize, PtqOptions};
    use qplay_core::quant::QType;
    let g = small_model(&mut 5);
    let shape = [1, 4, 9, 9];
    let calib: Vec<Tensor> = (0..3).map(|k| random(&shape, 1.0, &mut (11 + k))).collect();
    for activation in [QType::UINT8, QType::INT8, QType { bits: 16, signed: false, restricted: false }] {
        let q = quantize(&g, "x", &calib, &PtqOptions { activation, ..Default::default() }).expect("quantized");
        let qdq = q.graph;
        let count = |g: &Graph, op: &str| {
            g.nodes.iter().filter(|n| n.op_type.trim_start_matches("com.microsoft::") == op).count()
        };
        let mut fake = qdq.clone();
        let pairs = fake_quant_qdq_pairs(&mut fake);
        assert_eq!(pairs, count(&qdq, "QuantizeLinear"), "{activation:?}: every activation pair");
        assert!(pairs > 0);
        assert_eq!(count(&fake, "QuantizeLinear"), 0);
        assert_eq!(count(&fake, "qplay.FakeQuant"), pairs);
        let sim = PlanOptions { int8_kernels: false, ..Default::default() };
        let shapes = [("x".to_string(), shape.to_vec())];
        let a = Plan::with_options(&qdq, &Registry::new(), &shapes, sim).expect("plan");
        let b = Plan::with_options(&fake, &Registry::new(), &shapes, sim).expect("plan");
        for x in &calib {
            let inputs = [("x".to_string(), x.clone())];
            assert_eq!(bits(&a.run(&inputs).expect("qdq")), bits(&b.run(&inputs).expect("fake")), "{activation:?}");
        }
    }
    // A code tensor read twice (by a DequantizeLinear and by the graph) keeps its pair.
    let mut two = Graph { opset: 13, ..Graph::default() };
    two.initializers.insert("s".into(), Tensor::f32(vec![], vec![0.1]).unwrap());
    two.initializers.insert("z".into(), Tensor { shape: vec![], data: qplay_core::model::Data::U8(vec![3]) });
    two.nodes.push(node("q", "QuantizeLinear", &["x", "s", "z"], &["c"], vec![]));
    two.nodes.push(node("d", "DequantizeLinear", &["c", "s", "z"], &["y"], vec![]));
    two.inputs = vec![value("x", &[4])];
    two.outputs = vec![value("y", &[4]), ValueInfo { elem_type: 2, ..value("c", &[4]) }];
    assert_eq!(fake_quant_qdq_pairs(&mut two), 0);
}

/// [`Plan::run_keeping`] keeps (moves, not copies) exactly the computed tensors that a
/// [`Plan::run_with`] observer sees, with their values, and the same outputs: on the person
/// detector, whose Reshapes take over their input's buffer when nothing keeps it.
#[test]
fn run_keeping_keeps_what_the_observer_sees() {
    use std::collections::HashMap;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../www/models/person_ssdlite.onnx");
    let g = load_onnx(&std::fs::read(path).expect("model file")).expect("loads");
    let shape = [1, 3, 300, 300];
    let (plan, _) = plans(&g, &shape);
    let inputs = [(g.inputs[0].name.clone(), random(&shape, 1.0, &mut 9))];
    let mut seen: HashMap<String, Vec<u32>> = HashMap::new();
    let outs = plan
        .run_with(&inputs, &mut |n, t| {
            seen.insert(n.to_string(), t.to_f32_vec().iter().map(|v| v.to_bits()).collect());
        })
        .expect("run");
    // Every other tensor (so some Reshape inputs are kept and some are not), and the outputs.
    let mut names: Vec<&String> = seen.keys().collect();
    names.sort();
    let wanted: std::collections::HashSet<String> = names.iter().step_by(2).map(|n| n.to_string()).collect();
    let outputs: Vec<String> = g.outputs.iter().map(|o| o.name.clone()).collect();
    let keep = |n: &str| wanted.contains(n) || outputs.iter().any(|o| o == n) || n == inputs[0].0;
    let (outs2, kept) = plan.run_keeping(&inputs, &keep).expect("run_keeping");
    assert_eq!(bits(&outs), bits(&outs2));
    let expected: Vec<&String> = seen.keys().filter(|n| keep(n)).collect();
    assert_eq!(kept.len(), expected.len(), "kept {} of {} wanted", kept.len(), expected.len());
    assert!(!kept.contains_key(&inputs[0].0), "inputs are not kept");
    for n in expected {
        let got: Vec<u32> = kept[n].to_f32_vec().iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, seen[n], "{n}");
    }
}
