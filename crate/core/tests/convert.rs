//! `qplay convert` / the page's "Download as ONNX": TFLite fixtures written as ONNX and read back
//! by the ONNX loader give LiteRT's outputs as the `.tflite` does (within 1e-4 of each output's
//! range); the export gate runs both graphs and says what it checked; graphs it cannot run are
//! said to be only loaded back. Full-integer TFLite models are written in ONNX's QDQ form and
//! give LiteRT's int8 outputs within one quantization step; in ONNX's integer form
//! (`--form integer`) they give LiteRT's codes in every value.

use qplay_core::model::{
    convert_file_to_integer_onnx, convert_file_to_onnx, convert_to_onnx, load_model, load_onnx, npy::read_npy,
    output_quantization, Data, Graph, Plan, Tensor, ValueInfo,
};
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
    assert!(e.contains("qplay.tfl.") && e.contains("qplay convert model.tflite -o model.onnx"), "{e}");
    // The file itself is written in QDQ form (below); the SSD's op is still refused.
    let e = convert_file_to_onnx(&fixture("tflite_ssd/ssd_fast.tflite")).unwrap_err().to_string();
    assert!(e.contains("only qplay runs (TFLite_Detection_PostProcess)"), "{e}");
    // Quantizing it keeps the op; the report says the file is qplay's alone.
    let x = read_npy(&fixture("tflite_ssd/input.npy")).unwrap();
    let q = qplay_core::ptq::quantize(&g, &g.inputs[0].name, &[x], &qplay_core::ptq::PtqOptions::default()).unwrap();
    assert!(
        q.report.notes.iter().any(|n| n.contains("ops only qplay runs (TFLite_Detection_PostProcess)")),
        "{:?}",
        q.report.notes
    );
}

/// The codes of an 8-bit tensor as i64 (int8 or uint8 data).
fn codes(t: &Tensor) -> Vec<i64> {
    match &t.data {
        Data::I8(v) => v.iter().map(|&c| i64::from(c)).collect(),
        Data::U8(v) => v.iter().map(|&c| i64::from(c)).collect(),
        Data::I16(v) => v.iter().map(|&c| i64::from(c)).collect(),
        other => panic!("expected integer codes, got {other:?}"),
    }
}

/// A full-integer fixture written by `convert_file_to_onnx`, read back by the ONNX loader and run
/// on LiteRT's int8 input (fed as its float value): (values, equal to LiteRT's codes, one step
/// apart, the farthest in steps).
fn qdq_vs_litert(name: &str) -> (usize, usize, usize, i64) {
    let tflite = fixture(&format!("tflite/{name}.tflite"));
    let c = convert_file_to_onnx(&tflite).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(c.check.starts_with("written in QDQ form"), "{name}: {}", c.check);
    assert!(c.check.contains("equal the QDQ graph's bit for bit"), "{name}: {}", c.check);
    assert!(c.check.contains("% within one step"), "{name}: {}", c.check);
    // Each layer rounds as TFLite's does or one step off: the first one, fed the same codes.
    assert!(c.check.contains("is within one step on 100.000 % of its values"), "{name}: {}", c.check);
    eprintln!("{name}: {}", c.check);
    let back: Graph = load_onnx(&c.onnx).unwrap_or_else(|e| panic!("{name}: {e}"));
    // Only ONNX's own ops (and onnxruntime's 16-bit Q/DQ), and the weights as 8-bit integers.
    for n in &back.nodes {
        let ort16 = matches!(n.op_type.as_str(), "com.microsoft::QuantizeLinear" | "com.microsoft::DequantizeLinear");
        assert!(ort16 || (!n.op_type.contains('.') && !n.op_type.starts_with("TFLite")), "{name}: {}", n.op_type);
    }
    let int8_weights = back.initializers.values().filter(|t| matches!(t.data, Data::I8(_)) && t.len() > 1).count();
    let convs = back.nodes.iter().filter(|n| n.op_type == "Conv" || n.op_type == "Gemm").count();
    assert!(int8_weights >= convs, "{name}: {int8_weights} int8 weights for {convs} Conv/Gemm");
    // LiteRT's int8 input as the float it stands for: the file's QuantizeLinear gives it back.
    let int8 = qplay_core::model::load_tflite_integer_io(&tflite).unwrap();
    let xq = read_npy(&fixture(&format!("tflite/{name}/input_q.npy"))).unwrap();
    let quantize = back.nodes.iter().find(|n| {
        matches!(n.op_type.as_str(), "QuantizeLinear" | "com.microsoft::QuantizeLinear")
            && n.inputs[0] == back.inputs[0].name
    });
    let quantize = quantize.unwrap_or_else(|| panic!("{name}: no QuantizeLinear reads the input"));
    let s = back.initializers[&quantize.inputs[1]].as_f32().unwrap()[0];
    let z = back.initializers[&quantize.inputs[2]].to_i64_vec().unwrap()[0];
    assert_eq!(int8.inputs[0].shape, back.inputs[0].shape);
    let x =
        Tensor { shape: xq.shape.clone(), data: Data::F32(codes(&xq).iter().map(|&q| s * (q - z) as f32).collect()) };
    let plan = Plan::new(&back, &Registry::new(), &[]).unwrap();
    let outs = plan.run(&[(back.inputs[0].name.clone(), x)]).unwrap();
    let (mut total, mut equal, mut one, mut worst) = (0, 0, 0, 0);
    for (k, (got, info)) in outs.iter().zip(&back.outputs).enumerate() {
        let want = codes(&read_npy(&fixture(&format!("tflite/{name}/output_{k}.npy"))).unwrap());
        let (s, z) = output_quantization(&back, &info.name).unwrap_or_else(|| panic!("{name}: output {k}'s step"));
        let got = got.as_f32().unwrap();
        assert_eq!(got.len(), want.len(), "{name} output {k}");
        for (y, w) in got.iter().zip(&want) {
            let d = ((y / s).round() as i64 + z - w).abs();
            total += 1;
            equal += usize::from(d == 0);
            one += usize::from(d == 1);
            worst = worst.max(d);
        }
    }
    eprintln!(
        "{name} as QDQ ONNX, read back by qplay, vs LiteRT: {equal}/{total} equal, {one} one step apart, farthest {worst}"
    );
    (total, equal, one, worst)
}

#[test]
fn full_integer_tflite_models_are_written_as_qdq_onnx_within_one_step_of_litert() {
    let (mut total, mut within) = (0, 0);
    for name in ["cnn_int8", "cnn_uint8", "det_int8", "ops_int8"] {
        let (t, equal, one, _) = qdq_vs_litert(name);
        assert!((equal + one) as f64 >= 0.999 * t as f64, "{name}: {} of {t} within one step", equal + one);
        total += t;
        within += equal + one;
    }
    assert!(total >= 184_320 + 4_480 + 20);
    eprintln!("all: {within} of {total} within one step of LiteRT");
}

/// 16x8 models as QDQ ONNX (int16 activations through onnxruntime's `com.microsoft` Q/DQ): each
/// layer within a step of TFLite's int16 arithmetic; int16 steps are 256 times finer than int8
/// ones, so float rounding leaves more values one or two steps off.
#[test]
fn sixteen_by_eight_models_are_written_as_qdq_onnx_within_two_steps_of_litert() {
    for name in ["cnn_16x8", "det_16x8"] {
        let (t, equal, one, worst) = qdq_vs_litert(name);
        assert!(worst <= 2, "{name}: {worst} steps");
        assert!((equal + one) as f64 >= 0.95 * t as f64, "{name}: {} of {t} within one step", equal + one);
    }
}

/// A fixture's full-integer model in integer form, read back by qplay's ONNX loader (its
/// ConvInteger, MatMulInteger and int64 kernels, not the `qplay.tfl.*` ones) and run on
/// LiteRT's input: (output values, equal to LiteRT's codes).
fn integer_form_vs_litert(name: &str) -> (usize, usize) {
    let tflite = fixture(&format!("tflite/{name}.tflite"));
    let c = convert_file_to_integer_onnx(&tflite).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(c.check.starts_with("written in integer form"), "{name}: {}", c.check);
    assert!(c.check.contains("output values equal TFLite's integer arithmetic"), "{name}: {}", c.check);
    // (load_model: the file's first bytes are names and look like text; it is still read as ONNX.)
    let back = load_model(&c.onnx).unwrap_or_else(|e| panic!("{name}: {e}"));
    for n in &back.nodes {
        assert!(!n.op_type.contains('.') && !n.op_type.starts_with("TFLite"), "{name}: {}", n.op_type);
    }
    let layers = back.nodes.iter().filter(|n| n.op_type == "ConvInteger" || n.op_type == "MatMulInteger").count();
    assert!(layers > 0 || name == "moves_int8", "{name}: no integer layers");
    // The input's quantization, from the TFLite graph's QUANTIZE behind it.
    let g = load_model(&tflite).unwrap();
    let q = g.nodes.iter().find(|n| n.inputs.first() == Some(&g.inputs[0].name)).unwrap();
    let (s, z) = (q.attrs.float("y_scale", 0.0), q.attrs.int("y_zp", 0));
    let xq = read_npy(&fixture(&format!("tflite/{name}/input_q.npy"))).unwrap();
    let x =
        Tensor { shape: xq.shape.clone(), data: Data::F32(codes(&xq).iter().map(|&q| s * (q - z) as f32).collect()) };
    let outs = Plan::new(&back, &Registry::new(), &[]).unwrap().run(&[(back.inputs[0].name.clone(), x)]).unwrap();
    let (mut total, mut equal) = (0, 0);
    for (k, (got, info)) in outs.iter().zip(&back.outputs).enumerate() {
        let want = codes(&read_npy(&fixture(&format!("tflite/{name}/output_{k}.npy"))).unwrap());
        let (s, z) = output_quantization(&back, &info.name).unwrap_or_else(|| panic!("{name}: output {k}'s step"));
        let got = got.as_f32().unwrap();
        assert_eq!(got.len(), want.len(), "{name} output {k}");
        total += got.len();
        equal += got.iter().zip(&want).filter(|&(y, w)| (y / s).round() as i64 + z == *w).count();
    }
    eprintln!("{name} in integer form, read back by qplay, vs LiteRT: {equal}/{total} equal");
    (total, equal)
}

#[test]
fn full_integer_tflite_models_in_integer_form_give_litert_codes_in_every_value() {
    let mut total = 0;
    // layers_int8: TRANSPOSE_CONV, PRELU, MIRROR_PAD, DEPTH_TO_SPACE, … of segmentation and pose models.
    for name in
        ["cnn_int8", "cnn_uint8", "det_int8", "det_uint8", "ops_int8", "moves_int8", "concat_uint8", "layers_int8"]
    {
        let (t, equal) = integer_form_vs_litert(name);
        assert_eq!(equal, t, "{name}");
        total += t;
    }
    assert!(total >= 184_320 + 26_077 + 4_480 + 1_221 + 20, "{total}");
}

#[test]
fn the_integer_form_refuses_what_it_cannot_write_naming_it() {
    let e = |name: &str| convert_file_to_integer_onnx(&fixture(name)).unwrap_err().to_string();
    let sixteen = e("tflite/det_16x8.tflite");
    assert!(sixteen.contains("QDQ form"), "{sixteen}");
    assert!(sixteen.contains("int16 codes (a 16x8 model;"), "{sixteen}");
    assert_eq!(sixteen.matches("int16 codes").count(), 1, "each reason once: {sixteen}");
    assert!(sixteen.contains("DepthwiseConv2D") && sixteen.contains("AveragePool2D"), "{sixteen}");
    let float = e("tflite/det.tflite");
    assert!(float.contains("for full-integer TFLite models"), "{float}");
    let onnx = e("../../www/models/blazeface_short.onnx");
    assert!(onnx.contains("for full-integer TFLite models"), "{onnx}");
    let ssd = e("tflite_ssd/ssd_fast_int8.tflite");
    assert!(ssd.contains("TFLite_Detection_PostProcess"), "{ssd}");
}

/// Damaged full-integer files: whatever loads, its integer form is written or refused with a
/// message, never a panic.
#[test]
fn the_integer_form_of_damaged_files_is_written_or_refused() {
    let good = fixture("tflite/det_int8.tflite");
    let (mut loaded, mut s) = (0, 99u32);
    for _ in 0..400 {
        let mut bytes = good.clone();
        for _ in 0..4 {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let at = 8 + (s as usize >> 4) % (bytes.len() - 8);
            bytes[at] = (s >> 24) as u8;
        }
        if let Ok(g) = load_model(&bytes) {
            loaded += 1;
            let _ = qplay_core::model::integer_form::integer_form(&g);
        }
    }
    assert!(loaded > 50, "{loaded} of 400 damaged files loaded: the test must reach the rewrite");
}
