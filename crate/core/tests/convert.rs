//! `qplay convert` / the page's "Download as ONNX": TFLite fixtures written as ONNX and read back
//! by the ONNX loader give LiteRT's outputs as the `.tflite` does (within 1e-4 of each output's
//! range); the export gate runs both graphs and says what it checked; graphs it cannot run are
//! said to be only loaded back.

use qplay_core::model::{convert_to_onnx, load_model, load_onnx, npy::read_npy, Graph, Plan, Tensor, ValueInfo};
use qplay_core::ops::Registry;
use std::path::PathBuf;

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Largest |ONNX − LiteRT| over the outputs, relative to each output's range.
fn onnx_error_vs_litert(name: &str) -> f32 {
    let g = load_model(&fixture(&format!("tflite/{name}.tflite"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    let c = convert_to_onnx(&g).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(c.check.contains("bit for bit"), "{name}: {}", c.check);
    assert_eq!(&c.onnx[..], &qplay_core::model::save_onnx(&g, "qplay convert")[..], "deterministic");
    let back: Graph = load_onnx(&c.onnx).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(back.inputs.len(), g.inputs.len());
    let x = read_npy(&fixture(&format!("tflite/{name}/input.npy"))).unwrap();
    let plan = Plan::new(&back, &Registry::new(), &[]).unwrap();
    let outs = plan.run(&[(back.inputs[0].name.clone(), x)]).unwrap();
    let mut worst = 0.0f32;
    for (k, got) in outs.iter().enumerate() {
        let want: Tensor = read_npy(&fixture(&format!("tflite/{name}/output_{k}.npy"))).unwrap();
        assert_eq!(got.shape, want.shape, "{name} output {k}");
        let (got, want) = (got.as_f32().unwrap(), want.as_f32().unwrap());
        let (lo, hi) = want.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let range = (hi - lo).max(f32::MIN_POSITIVE);
        let err = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max) / range;
        eprintln!("{name} as ONNX, output {k}: max |qplay − LiteRT| = {err:.3e} of the range");
        worst = worst.max(err);
    }
    worst
}

#[test]
fn float_tflite_models_written_as_onnx_compute_what_litert_does() {
    for name in ["cnn", "det", "cnn_f16", "shapes", "misc"] {
        assert!(onnx_error_vs_litert(name) <= 1e-4, "{name}");
    }
    // LiteRT's hybrid kernels quantize their inputs on the fly: the same bound as the direct
    // load's test (crate/core/tests/tflite.rs).
    assert!(onnx_error_vs_litert("hybrid") <= 5e-3);
}

#[test]
fn an_onnx_model_is_written_back_and_checked() {
    let g = load_model(&fixture("../../www/models/blazeface_short.onnx")).unwrap();
    let c = convert_to_onnx(&g).unwrap();
    assert!(c.check.starts_with("loaded back and run on a seeded input"), "{}", c.check);
    assert_eq!(load_onnx(&c.onnx).unwrap().nodes.len(), g.nodes.len());
}

#[test]
fn graphs_the_gate_cannot_run_are_said_to_be_only_loaded_back() {
    let mut g = load_model(&fixture("tflite/cnn.tflite")).unwrap();
    let ValueInfo { name, .. } = g.inputs[0].clone();
    g.inputs[0].shape[0] = None;
    let c = convert_to_onnx(&g).unwrap();
    assert_eq!(c.check, format!("loaded back; not run: input `{name}` has dimensions only known at run time"));
}

#[test]
fn models_with_ops_only_qplay_runs_are_refused_naming_them() {
    // The TFLite SSD ends in TFLite_Detection_PostProcess, which ONNX has no op for.
    let g = load_model(&fixture("tflite_ssd/ssd_fast.tflite")).unwrap();
    let e = convert_to_onnx(&g).unwrap_err().to_string();
    assert!(e.contains("only qplay runs (TFLite_Detection_PostProcess)"), "{e}");
    assert!(e.contains("export the model without it"), "{e}");
    // A full-integer model's ops keep TFLite's integer rounding: refused too, saying what to do.
    let g8 = load_model(&fixture("tflite/cnn_int8.tflite")).unwrap();
    let e = convert_to_onnx(&g8).unwrap_err().to_string();
    assert!(e.contains("qplay.tfl.") && e.contains("convert its float .tflite"), "{e}");
    // Quantizing it keeps the op; the report says the file is qplay's alone.
    let x = read_npy(&fixture("tflite_ssd/input.npy")).unwrap();
    let q = qplay_core::ptq::quantize(&g, &g.inputs[0].name, &[x], &qplay_core::ptq::PtqOptions::default()).unwrap();
    assert!(
        q.report.notes.iter().any(|n| n.contains("ops only qplay runs (TFLite_Detection_PostProcess)")),
        "{:?}",
        q.report.notes
    );
}
