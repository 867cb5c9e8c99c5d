//! Int8 execution: the QOperator ops against onnxruntime (exact), QDQ lowering against the
//! float simulation of the same graph, and bad quantized models.
//!
//! `cargo test -p qplay-core --test int8 -- --nocapture` prints the measured differences.

use qplay_core::model::{load_onnx, npy::read_npy, Data, Graph, Plan, PlanOptions, Tensor};
use qplay_core::ops::Registry;
use qplay_core::ptq::{quantize, PtqOptions};
use qplay_core::quant::error_metrics;

fn sqnr_db(reference: &[f32], approx: &[f32]) -> f64 {
    error_metrics(reference, approx).unwrap().sqnr_db
}
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> Vec<u8> {
    let p = repo().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn run(g: &Graph, inputs: &[(String, Tensor)], options: PlanOptions) -> Vec<Tensor> {
    let shapes: Vec<(String, Vec<usize>)> = inputs.iter().map(|(n, t)| (n.clone(), t.shape.clone())).collect();
    let plan = Plan::with_options(g, &Registry::new(), &shapes, options).expect("plans");
    plan.run(inputs).expect("runs")
}

/// Every case of `tests/fixtures/qops` (written by `make_qop_fixtures.py`): QLinearConv (3×3
/// padded and strided, 1×1 int8, depthwise, grouped + dilated with uint8 weights), ConvInteger,
/// QLinearMatMul (per-column and per-tensor), MatMulInteger — all with non-zero zero-points.
/// qplay's output equals the exact ONNX result (int64 numpy) in every value. onnxruntime's
/// output is compared too and the differences printed: its x86 uint8×int8 kernels saturate
/// pairwise sums to int16 (`pmaddubsw`) when both operands use their full range, so it is off
/// on some of these cases; where it is exact, so are we.
#[test]
fn qoperator_ops_are_exact() {
    let dir = repo().join("tests/fixtures/qops");
    let mut cases: Vec<_> = std::fs::read_dir(&dir).expect("fixtures").map(|e| e.unwrap().path()).collect();
    cases.sort();
    assert!(cases.len() >= 8, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let npy = |f: &str| read_npy(&std::fs::read(case.join(f)).unwrap()).unwrap();
        let g = load_onnx(&std::fs::read(case.join("model.onnx")).unwrap()).unwrap();
        let got = run(&g, &[(g.inputs[0].name.clone(), npy("input_0.npy"))], PlanOptions::default()).remove(0);
        let (want, ort) = (npy("expected.npy"), npy("ort.npy"));
        assert_eq!((&got.shape, got.dtype()), (&want.shape, want.dtype()), "{name}");
        let g = got.to_i64_vec().unwrap();
        let differ = |o: &Tensor| g.iter().zip(o.to_i64_vec().unwrap()).filter(|(a, b)| **a != *b).count();
        let (vs_exact, vs_ort) = (differ(&want), differ(&ort));
        println!("{name}: {} values; differ from exact: {vs_exact}, from onnxruntime: {vs_ort}", g.len());
        if vs_exact != 0 {
            failures.push(format!("{name}: {vs_exact} of {} values differ from the exact result", g.len()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The person detector quantized to QDQ runs on the int8 kernels: all 88 convolutions are
/// lowered, and the outputs stay within a quantization step of the float simulation of the
/// same QDQ graph (at most ~1 LSB of the last requantized tensor).
#[test]
fn person_qdq_lowered_to_int8_matches_simulation() {
    let g = load_onnx(&read("www/models/person_ssdlite.onnx")).unwrap();
    let x = read_npy(&read("tests/fixtures/person_ssdlite_person/input.npy")).unwrap();
    let calib = vec![read_npy(&read("tests/fixtures/person_ssdlite_horses/input.npy")).unwrap(), x.clone()];
    let q = quantize(&g, "Preprocessor/sub:0", &calib, &PtqOptions::default()).unwrap();
    let qg = load_onnx(&q.onnx).unwrap();
    let inputs = [("Preprocessor/sub:0".to_string(), x.clone())];
    let shapes = [("Preprocessor/sub:0".to_string(), x.shape.clone())];
    let plan = Plan::new(&qg, &Registry::new(), &shapes).unwrap();
    let kinds: Vec<&str> = plan.steps().iter().map(|(_, op)| *op).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "QLinearConv").count(), 88, "every conv lowered");
    assert!(!kinds.contains(&"Conv"), "{kinds:?}");
    let int8 = plan.run(&inputs).unwrap();
    let sim = run(&qg, &inputs, PlanOptions { int8_kernels: false, ..Default::default() });
    let fp32 = run(&g, &inputs, PlanOptions::default());
    for ((a, b), f) in int8.iter().zip(&sim).zip(&fp32) {
        let (a, b, f) = (a.as_f32().unwrap(), b.as_f32().unwrap(), f.as_f32().unwrap());
        let (s_int8, s_sim) = (sqnr_db(f, a), sqnr_db(f, b));
        let vs_sim = sqnr_db(b, a);
        println!("SQNR vs FP32: int8 kernels {s_int8:.2} dB, float simulation {s_sim:.2} dB; int8 vs simulation {vs_sim:.2} dB");
        assert!(s_int8 > s_sim - 1.0, "int8 kernels lose more than 1 dB against the simulation");
        assert!(vs_sim > 25.0, "int8 kernels far from the simulation: {vs_sim} dB");
    }
}

/// Bad quantized models give errors that name the problem, never a panic.
#[test]
fn bad_quantized_models_are_errors() {
    let case = repo().join("tests/fixtures/qops/qlinearconv_3x3_pad_stride");
    let base = load_onnx(&std::fs::read(case.join("model.onnx")).unwrap()).unwrap();
    let x = read_npy(&std::fs::read(case.join("input_0.npy")).unwrap()).unwrap();
    let try_run = |g: &Graph| -> String {
        let shapes = [(g.inputs[0].name.clone(), x.shape.clone())];
        match Plan::new(g, &Registry::new(), &shapes) {
            Err(e) => e.to_string(),
            Ok(p) => {
                p.run(&[(g.inputs[0].name.clone(), x.clone())]).map(|_| "ran".into()).unwrap_or_else(|e| e.to_string())
            }
        }
    };
    // A zero scale.
    let mut g = base.clone();
    g.initializers.insert("x_scale".into(), Tensor::scalar_f32(0.0));
    let e = try_run(&g);
    assert!(e.contains("scale") && e.contains("positive"), "{e}");
    // Per-channel weight scales that do not match the output channels.
    let mut g = base.clone();
    g.initializers.insert("w_scale".into(), Tensor::f32(vec![3], vec![0.1, 0.1, 0.1]).unwrap());
    g.initializers.insert("w_zp".into(), Tensor { shape: vec![3], data: Data::I8(vec![0; 3]) });
    let e = try_run(&g);
    assert!(e.contains("per-axis scale has 3 values"), "{e}");
    // A zero-point of the wrong type.
    let mut g = base.clone();
    g.initializers.insert("x_zp".into(), Tensor { shape: vec![], data: Data::I8(vec![0]) });
    let e = try_run(&g);
    assert!(e.contains("x_zero_point"), "{e}");
    // Float data where 8-bit data is expected.
    let mut g = base.clone();
    let w = g.initializers["w"].clone();
    g.initializers.insert("w".into(), Tensor::f32(w.shape.clone(), vec![0.0; w.len()]).unwrap());
    let e = try_run(&g);
    assert!(e.contains("uint8 or int8"), "{e}");
    // A reduction too long for the int32 accumulator is refused, not wrapped.
    let mut g = base.clone();
    g.initializers.insert("w".into(), Tensor { shape: vec![7, 5, 60, 60], data: Data::I8(vec![1; 7 * 5 * 3600]) });
    let e = try_run(&g);
    assert!(!e.contains("panicked"), "{e}");
}
