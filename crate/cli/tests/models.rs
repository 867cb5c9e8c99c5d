//! The model subcommands end to end on the real built-in models, and on bad files.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn qplay(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qplay")).current_dir(root()).args(args).output().expect("run qplay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// [`qplay`] with the arguments as one line, split at spaces (the test paths have none).
fn qplay_line(line: &str) -> (i32, String, String) {
    qplay(&line.split_whitespace().collect::<Vec<_>>())
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qplay-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// A fresh folder `name` holding copies of the sample photos `photos`.
fn samples_in(name: &str, photos: &[&str]) -> PathBuf {
    let dir = tmp(name);
    std::fs::create_dir_all(&dir).unwrap();
    for p in photos {
        std::fs::copy(root().join("www/samples").join(p), dir.join(p)).unwrap();
    }
    dir
}

#[test]
fn inspect_person_detector() {
    let (code, out, err) = qplay(&["inspect", "www/models/person_ssdlite.onnx", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["opset"].as_i64(), v["format"].as_str()), (Some(13), Some("ONNX opset 13")));
    assert_eq!(v["inputs"][0]["name"], "Preprocessor/sub:0");
    assert_eq!(v["inputs"][0]["shape"], serde_json::json!([1, 3, 300, 300]));
    assert_eq!(v["ops"]["Conv"], 88);
    assert!(v["parameters"].as_u64().unwrap() > 3_000_000);
    assert_eq!(v["unsupported"], serde_json::json!([]));
    let (code, text, _) = qplay(&["inspect", "www/models/blazeface_short.onnx"]);
    assert_eq!(code, 0);
    assert!(text.contains("every op is supported") && text.contains("regressors"), "{text}");
}

#[test]
fn tflite_models_inspect_infer_and_quantize() {
    let (code, out, err) = qplay(&["inspect", "tests/fixtures/tflite/det.tflite", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["inputs"][0]["shape"], serde_json::json!([1, 64, 64, 3]));
    assert_eq!(v["ops"]["Conv"], 10);
    assert_eq!(v["unsupported"], serde_json::json!([]));
    assert_eq!(v["format"], "TFLite v3");
    let (code, text, err) = qplay(&["inspect", "tests/fixtures/tflite_ssd/ssd_regular.tflite"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("TFLite v3") && !text.contains("opset"), "{text}");
    assert!(text.contains("TFLite_Detection_PostProcess") && text.contains("every op is supported"), "{text}");
    let dir = tmp("tflite-out");
    let (code, _, err) = qplay_line(&format!(
        "infer tests/fixtures/tflite/cnn.tflite --input tests/fixtures/tflite/cnn/input.npy --out {}",
        dir.display()
    ));
    assert_eq!(code, 0, "{err}");
    assert!(dir.join("0.npy").exists());
    let calib = tmp("tflite-calib");
    std::fs::create_dir_all(&calib).unwrap();
    for k in ["a", "b"] {
        std::fs::copy(root().join("tests/fixtures/tflite/cnn/input.npy"), calib.join(format!("{k}.npy"))).unwrap();
    }
    let q = tmp("cnn_qdq.onnx");
    let (code, _, err) = qplay_line(&format!(
        "quantize tests/fixtures/tflite/cnn.tflite --calib {} -o {}",
        calib.display(),
        q.display()
    ));
    assert_eq!(code, 0, "{err}");
    // A float SSD and its int8 twin made by the converter: compared on the sample photos.
    let (code, text, err) = qplay_line("compare tests/fixtures/tflite_ssd/ssd_fast.tflite tests/fixtures/tflite_ssd/ssd_fast_int8.tflite --images www/samples --json");
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["images"], 7);
    assert!(v["map50"].as_f64().is_some_and(|m| (0.0..=1.0).contains(&m)), "{v}");
    assert!(v["candidate_detections"].as_u64().unwrap() > 0 && v["size_ratio"].as_f64().unwrap() < 0.5, "{v}");
    // A 16x8 model (int16 activations): inspected with a note, run, written as QDQ ONNX.
    let (code, text, err) = qplay(&["inspect", "tests/fixtures/tflite/det_16x8.tflite"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("A 16x8 model") && text.contains("qplay.tfl.Conv2D"), "{text}");
    assert!(text.contains("the file's quantization") && text.contains("weights: 8 scales"), "{text}");
    let dir16 = tmp("tflite16-out");
    let (code, _, err) = qplay_line(&format!(
        "infer tests/fixtures/tflite/det_16x8.tflite --input tests/fixtures/tflite/det_16x8/input.npy --out {}",
        dir16.display()
    ));
    assert_eq!(code, 0, "{err}");
    assert!(dir16.join("0.npy").exists() && dir16.join("1.npy").exists());
    let out16 = tmp("det_16x8.onnx");
    let (code, text, err) = qplay(&["convert", "tests/fixtures/tflite/det_16x8.tflite", "-o", out16.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("written in QDQ form") && text.contains("% within one step") && out16.exists(), "{text}");
    let (code, text, err) = qplay(&["inspect", out16.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["ops"]["com.microsoft::QuantizeLinear"].as_u64().unwrap() > 5, "{v}");
    let (code, _, err) = qplay(&["inspect", "tests/fixtures/tflite/unsupported.tflite"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`CUMSUM`") && err.contains("`REVERSE_V2`"), "{err}");
}

#[test]
fn convert_writes_tflite_files_as_onnx_and_refuses_what_onnx_cannot_hold() {
    // A full-integer model: QDQ form, and how far it is from TFLite's integer ops.
    let out = tmp("det_int8.onnx");
    let (code, text, err) = qplay(&["convert", "tests/fixtures/tflite/det_int8.tflite", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("written in QDQ form") && text.contains("% within one step"), "{text}");
    let (code, text, err) = qplay(&["inspect", out.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["unsupported"], serde_json::json!([]));
    assert!(v["ops"]["QuantizeLinear"].as_u64().unwrap() > 10 && v["ops"].get("qplay.tfl.Conv2D").is_none(), "{v}");
    // The same in integer form: only ONNX's integer ops, LiteRT's codes in every value.
    let out = tmp("det_int8.integer.onnx");
    let (code, text, err) =
        qplay(&["convert", "tests/fixtures/tflite/det_int8.tflite", "-o", out.to_str().unwrap(), "--form", "integer"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("written in integer form") && text.contains("all 4480 output values equal"), "{text}");
    let (code, text, err) = qplay(&["inspect", out.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["ops"]["ConvInteger"].as_u64().unwrap() > 5 && v["ops"].get("QuantizeLinear").is_none(), "{v}");
    // A model it has no integer form for (int16 codes): refused, saying why, nothing written.
    let out = tmp("det_16x8.integer.onnx");
    let (code, _, err) =
        qplay(&["convert", "tests/fixtures/tflite/det_16x8.tflite", "-o", out.to_str().unwrap(), "--form", "integer"]);
    assert_ne!(code, 0);
    assert!(err.contains("int16 codes") && err.contains("QDQ form") && !out.exists(), "{err}");
    // A float one: the graph qplay runs it as.
    let out = tmp("det.onnx");
    let (code, text, err) = qplay(&["convert", "tests/fixtures/tflite/det.tflite", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("bit for bit") && !text.contains("QDQ"), "{text}");
    // The detection op has no ONNX twin: refused, nothing written.
    let out = tmp("ssd.onnx");
    let (code, _, err) = qplay(&["convert", "tests/fixtures/tflite_ssd/ssd_fast.tflite", "-o", out.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("TFLite_Detection_PostProcess") && !out.exists(), "{err}");
    // Not a model.
    let junk = tmp("junk.tflite");
    std::fs::write(&junk, b"1234TFL3 not a flatbuffer at all").unwrap();
    let (code, _, err) = qplay(&["convert", junk.to_str().unwrap(), "-o", tmp("junk.onnx").to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("junk.tflite") && !err.contains("panicked"), "{err}");
}

#[test]
fn detect_person_json_and_draw() {
    let png = tmp("drawn.png");
    let (code, out, err) = qplay_line(&format!(
        "detect www/models/person_ssdlite.onnx www/samples/person.jpg --json --draw {}",
        png.display()
    ));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let d = &v["detections"][0];
    assert_eq!(d["label"], "person");
    assert_eq!(d["class"], 0);
    assert!(d["score"].as_f64().unwrap() > 0.99);
    let b: Vec<f64> = d["box"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    for (got, want) in b.iter().zip([183.2, 100.5, 274.8, 383.1]) {
        assert!((got - want).abs() < 1.0, "box {b:?}");
    }
    assert!(std::fs::metadata(&png).unwrap().len() > 10_000);
}

#[test]
fn detect_face_with_auto_profile() {
    // Copy the face model somewhere without its JSON: the profile is inferred and explained.
    let m = tmp("face.onnx");
    std::fs::copy(root().join("www/models/blazeface_short.onnx"), &m).unwrap();
    let (code, out, err) = qplay(&["detect", m.to_str().unwrap(), "www/samples/astronaut.png", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["profile"], "auto-detected from the output shapes");
    assert!(!v["assumed"].as_array().unwrap().is_empty());
    assert!(v["detections"].as_array().unwrap().iter().any(|d| d["score"].as_f64().unwrap() > 0.8), "{out}");
}

/// `qplay infer` writes the raw outputs; they match onnxruntime's (committed fixtures) within
/// 1e-4 × each output's range.
#[test]
fn infer_matches_onnxruntime() {
    let out = tmp("infer-out");
    let (code, _, err) = qplay_line(&format!(
        "infer www/models/person_ssdlite.onnx --input tests/fixtures/person_ssdlite_person/input.npy --out {}",
        out.display()
    ));
    assert_eq!(code, 0, "{err}");
    let names: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("outputs.json")).unwrap()).unwrap();
    assert_eq!(names["0"], "concat:0");
    for k in 0..2 {
        let ours = qplay_core::model::npy::read_npy(&std::fs::read(out.join(format!("{k}.npy"))).unwrap()).unwrap();
        let ort = qplay_core::model::npy::read_npy(
            &std::fs::read(root().join(format!("tests/fixtures/person_ssdlite_person/output_{k}.npy"))).unwrap(),
        )
        .unwrap();
        assert_eq!(ours.shape, ort.shape);
        let (a, b) = (ours.as_f32().unwrap(), ort.as_f32().unwrap());
        let range = b.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) - b.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(diff <= 1e-4 * range, "output {k}: max diff {diff} vs range {range}");
    }
}

#[test]
fn bench_runs() {
    let (code, out, err) =
        qplay(&["bench", "www/models/blazeface_short.onnx", "--iters", "2", "--warmup", "1", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["median_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_gpu_times_the_gpu_executor_beside_the_cpu() {
    // Needs a Vulkan driver (lavapipe where there is no GPU, as `npm test` installs).
    std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    let (code, out, err) =
        qplay(&["bench", "www/models/blazeface_short.onnx", "--iters", "1", "--warmup", "0", "--gpu", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let g = &v["gpu"];
    assert!(g["median_ms"].as_f64().unwrap() > 0.0, "{v}");
    assert!(g["placement"].as_str().unwrap().contains("steps on the GPU"), "{v}");
    // FP32 convolutions sum in another order on the GPU: equal to rounding, reported as such.
    assert!(
        g["vs_cpu"].as_str().unwrap().contains("identical") || g["vs_cpu"].as_str().unwrap().contains("max |diff|")
    );
}

#[test]
fn detect_gpu_preprocesses_and_runs_on_the_gpu_with_the_cpus_boxes() {
    std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    let args = ["detect", "www/models/blazeface_short.onnx", "www/samples/astronaut.png", "--json"];
    let (code, cpu, err) = qplay(&args);
    assert_eq!(code, 0, "{err}");
    let (code, gpu, err) = qplay(&[&args[..], &["--gpu"]].concat());
    assert_eq!(code, 0, "{err}");
    let (c, g): (serde_json::Value, serde_json::Value) =
        (serde_json::from_str(&cpu).unwrap(), serde_json::from_str(&gpu).unwrap());
    assert!(g["backend"].as_str().unwrap().contains("93 of 93 steps on the GPU"), "{g}");
    let (cd, gd) = (c["detections"].as_array().unwrap(), g["detections"].as_array().unwrap());
    assert!(!cd.is_empty() && cd.len() == gd.len(), "{cpu}\n{gpu}");
    for (a, b) in cd.iter().zip(gd) {
        assert_eq!(a["label"], b["label"]);
        assert!((a["score"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs() < 1e-4);
        for k in 0..4 {
            assert!((a["box"][k].as_f64().unwrap() - b["box"][k].as_f64().unwrap()).abs() < 0.05, "{a} vs {b}");
        }
    }
}

/// PyTorch's exporter keeps weights in `model.onnx.data` beside `model.onnx` by default: every
/// command reads it from the model's folder; without it, or with a location outside the folder,
/// the error says what to do.
#[test]
fn models_with_external_data_read_it_from_their_folder() {
    let model = "tests/fixtures/torch_ops/external_data/model.onnx";
    let (code, out, err) = qplay(&["inspect", model]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("19629 parameters"), "{out}");
    let (code, out, err) = qplay(&["detect", model, "www/samples/person.jpg", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"detections\""), "{out}");
    let q = tmp("external_q.onnx");
    let (code, _, err) = qplay(&["quantize", model, "--calib", "www/samples", "-o", q.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // The written model is self-contained.
    let (code, _, err) = qplay(&["inspect", q.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");

    // The model without its data file.
    let alone = tmp("alone");
    std::fs::create_dir_all(&alone).unwrap();
    std::fs::copy(root().join(model), alone.join("model.onnx")).unwrap();
    let (code, _, err) = qplay(&["inspect", alone.join("model.onnx").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("keeps its weights in `model.onnx.data` beside it")
            && err.contains("keep that file with the model"),
        "{err}"
    );

    // A location that leaves the folder is refused, whatever is there.
    let bytes = std::fs::read(root().join(model)).unwrap();
    let at = bytes.windows(15).position(|w| w == b"model.onnx.data").unwrap();
    let mut evil = bytes.clone();
    evil[at..at + 15].copy_from_slice(b"../model.o.data");
    let evil_path = alone.join("evil.onnx");
    std::fs::write(&evil_path, &evil).unwrap();
    let (code, _, err) = qplay(&["inspect", evil_path.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("outside the model's folder: refused"), "{err}");
}

#[test]
fn bad_files_fail_with_a_message() {
    let junk = tmp("junk.onnx");
    std::fs::write(&junk, (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect::<Vec<u8>>()).unwrap();
    let truncated = tmp("truncated.onnx");
    let full = std::fs::read(root().join("www/models/blazeface_short.onnx")).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 3]).unwrap();
    let text = tmp("note.png");
    std::fs::write(&text, b"not an image").unwrap();
    let bad_profile = tmp("bad.json");
    std::fs::write(&bad_profile, b"{\"input\": 3}").unwrap();
    let npy = tmp("x.npy");
    std::fs::write(&npy, b"\x93NUMPY\x01\x00garbage").unwrap();
    // What GitHub serves for a model kept in Git LFS when the repository is cloned without it.
    let lfs = tmp("lfs_model.tflite");
    std::fs::write(&lfs, b"version https://git-lfs.github.com/spec/v1\noid sha256:4d5e6f\nsize 4013541\n").unwrap();
    let lfs = lfs.to_str().unwrap().to_string();
    let (j, t, x, p, n) = (
        junk.to_str().unwrap(),
        truncated.to_str().unwrap(),
        text.to_str().unwrap(),
        bad_profile.to_str().unwrap(),
        npy.to_str().unwrap(),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["inspect", j], "not an ONNX model"),
        (vec!["inspect", &lfs], "Git LFS pointer"),
        (vec!["inspect", t], "not an ONNX model"),
        (vec!["inspect", "/nonexistent/model.onnx"], "cannot read /nonexistent/model.onnx"),
        (vec!["inspect"], "required arguments were not provided:\n  <MODEL>"),
        (vec!["detect", "www/models/person_ssdlite.onnx", x], "cannot decode"),
        (vec!["detect", "www/models/person_ssdlite.onnx", "www/samples/person.jpg", "--profile", p], "bad.json"),
        (vec!["detect", j, "www/samples/person.jpg"], "not an ONNX model"),
        (vec!["infer", "www/models/person_ssdlite.onnx", "--input", n, "--out", "/tmp"], "x.npy"),
        (
            vec!["infer", "www/models/person_ssdlite.onnx", "--out", "/tmp"],
            "required arguments were not provided:\n  --input <x.npy>",
        ),
        (vec!["bench", "www/models/person_ssdlite.onnx", "--iters", "0"], "at least 1"),
    ];
    for (args, want) in cases {
        let (code, out, err) = qplay(&args);
        assert_eq!(code, 2, "{args:?} should fail; stdout {out}");
        assert!(err.contains(want), "{args:?}: expected {want:?} in:\n{err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
    // A wrong input shape is a clear error from planning/running.
    let small = tmp("small.npy");
    let t = qplay_core::model::Tensor::f32(vec![1, 3, 8, 8], vec![0.0; 192]).unwrap();
    std::fs::write(&small, qplay_core::model::npy::write_npy(&t)).unwrap();
    let (code, _, err) =
        qplay(&["infer", "www/models/person_ssdlite.onnx", "--input", small.to_str().unwrap(), "--out", "/tmp/x"]);
    assert_eq!(code, 2);
    assert!(!err.contains("panicked") && err.contains("error"), "{err}");
}

#[test]
fn quantize_and_compare() {
    let out = tmp("face_int8.onnx");
    let report = tmp("face_report.json");
    let (code, text, err) = qplay_line(&format!(
        "quantize www/models/blazeface_short.onnx --calib www/samples -o {} --report {}",
        out.display(),
        report.display()
    ));
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("layers int8"), "{text}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["calibration_inputs"], 7);
    // By default the recipe is chosen by measurement on held-out photos (every third one), and
    // the output and the report say which won and what the others scored.
    assert!(text.contains("chosen by measurement") && text.contains("← chosen"), "{text}");
    let rc = &r["recipe"];
    assert_eq!((rc["calibration_inputs"].as_u64(), rc["held_out_inputs"].as_u64()), (Some(5), Some(2)));
    let scores = rc["scores"].as_array().unwrap();
    let worst = |name: &str| scores.iter().find(|s| s["recipe"] == name).unwrap()["worst_db"].as_f64().unwrap();
    assert!(worst(rc["chosen"].as_str().unwrap()) >= worst("minmax"), "{rc}");
    // --recipe fixed: the defaults as they are (MSE, equalization and bias correction on); each
    // can be turned off, and setting any part of the recipe fixes it too.
    let (code, fixed, err) = qplay_line(&format!(
        "quantize www/models/blazeface_short.onnx --calib www/samples --recipe fixed -o {}",
        tmp("face_fixed.onnx").display()
    ));
    assert_eq!(code, 0, "{err}");
    assert!(fixed.contains("method mse") && !fixed.contains("chosen by measurement"), "{fixed}");
    assert!(fixed.contains("note: cross-layer equalization") && fixed.contains("note: bias correction"), "{fixed}");
    for (args, want) in [
        (&["--recipe", "auto", "--method", "mse"][..], "drop --method"),
        (&["--recipe", "best"][..], "[possible values: auto, fixed]"),
    ] {
        let mut argv =
            vec!["quantize", "www/models/blazeface_short.onnx", "--calib", "www/samples", "-o", "/tmp/x.onnx"];
        argv.extend_from_slice(args);
        let (code, _, err) = qplay(&argv);
        assert_eq!(code, 2);
        assert!(err.contains(want), "{err}");
    }
    let (code, plain, err) = qplay_line(&format!(
        "quantize www/models/blazeface_short.onnx --calib www/samples --no-equalize --no-bias-correction -o {}",
        tmp("face_plain.onnx").display()
    ));
    assert_eq!(code, 0, "{err}");
    assert!(!plain.contains("equalization") && !plain.contains("bias correction"), "{plain}");
    let (code, _, err) = qplay_line(
        "quantize www/models/blazeface_short.onnx --calib www/samples --equalize --no-equalize -o /tmp/x.onnx",
    );
    assert_eq!(code, 2);
    assert!(err.contains("'--equalize' cannot be used with '--no-equalize'"), "{err}");
    assert!(r["layers"].as_array().unwrap().len() > 30);
    // The quality report's fields: histograms, per-channel scales, method clip ranges, layer SQNR.
    let l = &r["layers"][0];
    assert_eq!(l["weight_histogram"]["counts"].as_array().unwrap().len(), 64);
    assert_eq!(l["channel_scales"].as_array().unwrap().len(), l["weight_scales"].as_u64().unwrap() as usize);
    assert_eq!(l["activation"]["histogram"]["counts"].as_array().unwrap().len(), 64);
    let methods: Vec<&str> =
        l["activation"]["methods"].as_array().unwrap().iter().map(|m| m["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["minmax", "percentile", "entropy", "mse"]);
    assert!(l["activation"]["clipped_pct"].as_f64().is_some());
    assert!(l["output_sqnr_db"].as_f64().unwrap().is_finite());
    // The exported file is a model qplay loads, and compare measures it against FP32.
    let (code, text, err) =
        qplay_line(&format!("compare www/models/blazeface_short.onnx {} --images www/samples --json", out.display()));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["size_ratio"].as_f64().unwrap() < 0.5);
    assert_eq!(v["images"], 7);
    // Bad calibration folders.
    let empty = tmp("empty-calib");
    std::fs::create_dir_all(&empty).unwrap();
    for (dir, want) in [(empty.to_str().unwrap(), "no calibration inputs"), ("/nonexistent/dir", "cannot read --calib")]
    {
        let (code, _, err) =
            qplay(&["quantize", "www/models/blazeface_short.onnx", "--calib", dir, "-o", "/tmp/x.onnx"]);
        assert_eq!(code, 2);
        assert!(err.contains(want), "{err}");
    }
    let (code, _, err) =
        qplay_line("quantize www/models/blazeface_short.onnx --calib www/samples --method magic -o /tmp/x.onnx");
    assert_eq!(code, 2);
    assert!(err.contains("[possible values: minmax, ema, percentile, entropy, mse]"), "{err}");
}

#[test]
fn qat_fine_tunes_and_writes_a_model_that_loads() {
    let (out, curve, report) = (tmp("face_qat.onnx"), tmp("qat-curve.csv"), tmp("qat-report.json"));
    let (code, text, err) = qplay_line(&format!("qat www/models/blazeface_short.onnx --calib www/samples -o {} --steps 3 --batch 2 --eval-every 1 --curve {} --report {}", out.display(), curve.display(), report.display()));
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("fine-tuning on 6 input(s), checking on 1") && text.contains("s per step"), "{text}");
    assert!(!err.contains("finds no objects"), "the face model finds faces on the samples: {err}");
    assert!(!text.contains("activation scales kept"), "they train at 8 bits: {text}");
    assert!(
        text.contains("the loss: the outputs and ") && text.contains("quantized activations (feature weight 1)"),
        "{text}"
    );
    let csv = std::fs::read_to_string(&curve).unwrap();
    assert_eq!(csv.lines().count(), 5, "header, step 0 and three steps:\n{csv}");
    assert!(csv.starts_with("step,loss,held_out_sqnr_db,agreement,lr,seconds\n"), "{csv}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    // The best step is kept: never worse on the held-out photo than PTQ (step 0).
    assert!(r["qat_sqnr_db"].as_f64().unwrap() >= r["ptq_sqnr_db"].as_f64().unwrap(), "{r}");
    let (code, info, err) = qplay(&["inspect", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(info.contains("producer qplay qat"), "{info}");
}

#[test]
fn qat_on_images_without_objects_says_so() {
    // The face detector finds no face on the dog or the coffee cup: the heads would learn only
    // the background, and qplay says what to add.
    let dir = samples_in("qat-no-objects", &["dog.jpg", "coffee.png"]);
    let out = tmp("qat-no-objects.onnx");
    let (code, _, err) = qplay_line(&format!(
        "qat www/models/blazeface_short.onnx --calib {} --steps 1 --batch 1 -o {}",
        dir.display(),
        out.display()
    ));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: the FP32 model finds no objects on the 1 training input(s)"), "{err}");
    assert!(err.contains("add images with the objects you detect"), "{err}");
}

#[test]
fn qat_that_only_gets_worse_keeps_ptq_and_says_what_to_try() {
    // A learning rate far too large for this model: every check is worse than PTQ, the file is
    // the PTQ model, and qplay names the settings to change.
    let dir = samples_in("qat-fell", &["person.jpg", "astronaut.png", "camera.png"]);
    let (out, start) = (tmp("qat-fell.onnx"), tmp("qat-fell-start.onnx"));
    let (code, stdout, err) = qplay_line(&format!(
        "qat www/models/blazeface_short.onnx --calib {} --steps 2 --batch 1 --eval-every 1 --lr 1e-2 -o {} --ptq-out {}",
        dir.display(),
        out.display(),
        start.display()
    ));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("at step 0 of 2"), "{stdout}");
    // The start is `qplay quantize` on the same images, byte for byte (the held-out one too, as
    // the page's fine-tuning starts from the model its Quantize made).
    let ptq = tmp("qat-fell-ptq.onnx");
    let (code, _, err) =
        qplay_line(&format!("quantize www/models/blazeface_short.onnx --calib {} -o {}", dir.display(), ptq.display()));
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read(&ptq).unwrap() == std::fs::read(&start).unwrap(),
        "the start is not `qplay quantize`'s model"
    );
    // Step 0 kept: the written model computes what the PTQ start (--ptq-out) computes.
    let (code, json, err) =
        qplay_line(&format!("compare {} {} --images {} --json", start.display(), out.display(), dir.display()));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for (name, db) in v["output_sqnr_db"].as_object().unwrap() {
        assert!(db.as_f64().is_none_or(|d| d > 100.0), "{name}: {db} dB between the start and step 0");
    }
    assert!(
        stdout.contains("the held-out SQNR fell as it trained, so the file is the PTQ model: try a smaller --lr (e.g. 3e-3) or --feature-weight 0"),
        "{stdout}"
    );
}

#[test]
fn qat_trains_through_conv_transpose() {
    // YOLOv6's neck up-samples with ConvTranspose (kept in float by PTQ): its backward carries
    // the gradient to the layers before it, and its float weights train.
    let dir = samples_in("qat-yolov6", &["person.jpg", "astronaut.png", "camera.png"]);
    let out = tmp("qat-yolov6.onnx");
    let (code, stdout, err) = qplay_line(&format!(
        "qat tests/fixtures/yolov67/yolov6n.onnx --calib {} --steps 2 --batch 1 --eval-every 1 -o {}",
        dir.display(),
        out.display()
    ));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("step    2  loss"), "{stdout}");
    assert!(!err.contains("no backward"), "{err}");
    let g = qplay_core::model::load_onnx(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(g.nodes.iter().filter(|n| n.op_type == "ConvTranspose").count(), 2);
}

/// `qplay qat MODEL --calib www/samples ARGS -o <tmp>/OUT` must succeed: its output and the
/// written model.
fn qat_fixture(model: &str, args: &str, out: &str) -> (String, qplay_core::model::Graph) {
    let out = tmp(out);
    let (code, stdout, err) = qplay_line(&format!("qat {model} --calib www/samples {args} -o {}", out.display()));
    assert_eq!(code, 0, "{err}");
    (stdout, qplay_core::model::load_onnx(&std::fs::read(&out).unwrap()).unwrap())
}

#[test]
fn qat_trains_an_export_with_its_nms_inside_on_the_raw_heads() {
    // Ultralytics' `nms=True` export: TopK, GatherND, ScatterND and ReduceMax after the head.
    let (stdout, g) = qat_fixture(
        "tests/fixtures/ultralytics/yolo11_nms.onnx",
        "--steps 2 --batch 1 --eval-every 1",
        "qat-yolo11-nms.onnx",
    );
    assert!(stdout.contains("step    2  loss"), "{stdout}");
    assert!(stdout.contains("in place of the post-processed output(s) output0"), "{stdout}");
    let names: Vec<&str> = g.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["output0"], "the file keeps the model's own outputs");
    // PaddleDetection's NMS rows: how many depends on the values, so the plan's facts stop at
    // NonMaxSuppression (the selection is found from a run's element types) and the FP32 and
    // INT8 runs keep different row counts (compared only where they keep as many). It once
    // failed with "the two tensors have different lengths (360 and 348)".
    let (stdout, g) = qat_fixture(
        "tests/fixtures/paddle_nms/paddle_nms_synthetic.onnx",
        "--steps 2 --batch 1 --eval-every 1",
        "qat-paddle-nms.onnx",
    );
    assert!(stdout.contains("in place of the post-processed output(s) multiclass_nms3_0.tmp_0"), "{stdout}");
    assert_eq!(g.outputs.len(), 2, "the file keeps the model's own outputs");
}

#[test]
fn qat_trains_a_dynamic_batch_detr_export() {
    // D-FINE: `images` [?, 3, 320, 320] (planned at the inputs' own size), deformable attention
    // through GridSample.
    let (stdout, g) = qat_fixture("tests/fixtures/dfine/dfine_n_tiny.onnx", "--steps 1 --batch 1", "qat-dfine.onnx");
    assert!(stdout.contains("step    1  loss"), "{stdout}");
    assert_eq!(g.inputs[0].shape[0], None, "the file keeps its dynamic batch");
}

#[test]
fn qat_bad_input_says_what_to_do() {
    let one = tmp("qat-one");
    std::fs::create_dir_all(&one).unwrap();
    std::fs::copy(root().join("www/samples/person.jpg"), one.join("person.jpg")).unwrap();
    let out = tmp("qat-x.onnx");
    let base = ["qat", "www/models/blazeface_short.onnx", "-o", out.to_str().unwrap()];
    let cases: [(&[&str], &str); 6] = [
        (&["--calib", one.to_str().unwrap()], "needs at least two"),
        (
            &["--calib", "www/samples", "--ptq-out", out.to_str().unwrap()],
            "is the file -o writes the fine-tuned model to",
        ),
        (&["--calib", "www/samples", "--mix", "1.5"], "--mix 1.5: give a share between 0"),
        (&["--calib", "www/samples", "--feature-weight=-1"], "feature weight must be 0 (off) or a positive number"),
        (&["--calib", "www/samples", "--lr", "0"], "lr a positive number"),
        (&["--calib", "www/samples", "--steps", "0"], "steps and batch must be at least 1"),
    ];
    for (args, want) in cases {
        let mut argv = base.to_vec();
        argv.extend_from_slice(args);
        let (code, _, err) = qplay(&argv);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(want) && !err.contains("panicked"), "{err}");
    }
    assert!(!out.exists(), "nothing is written after an error");
    // A full-integer model: said first, with no warning about what its "FP32" runs find.
    let (code, _, err) =
        qplay(&["qat", "tests/fixtures/tflite/det_int8.tflite", "--calib", "www/samples", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("integer already") && !err.contains("warning") && !err.contains("panicked"), "{err}");
    assert!(!out.exists(), "nothing is written after an error");
}

#[test]
fn per_layer_weight_bits_in_quantize_and_qat() {
    let (out, report) = (tmp("face_mixed.onnx"), tmp("face_mixed.json"));
    let base = ["www/models/blazeface_short.onnx", "--calib", "www/samples", "--weight-bits", "4"];
    let mut argv = vec!["quantize"];
    argv.extend_from_slice(&base);
    argv.extend_from_slice(&["--layer-bits", "conv2d=8,regressor_16=6", "-o", out.to_str().unwrap()]);
    argv.extend_from_slice(&["--report", report.to_str().unwrap()]);
    let (code, text, err) = qplay(&argv);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("37 layers int4, 2 at their own width"), "{text}");
    assert!(text.contains("weight bits per layer (4 elsewhere): `conv2d` 8, `regressor_16` 6"), "{text}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let layers = r["layers"].as_array().unwrap();
    let bits = |n: &str| layers.iter().find(|l| l["node"] == n).unwrap()["weight_bits"].as_u64();
    assert_eq!((bits("conv2d"), bits("regressor_16"), bits("conv2d_1")), (Some(8), Some(6), Some(4)));
    // QAT takes the same flag and trains each layer at its width.
    let qat = tmp("face_mixed_qat.onnx");
    let mut argv = vec!["qat"];
    argv.extend_from_slice(&base);
    argv.extend_from_slice(&["--layer-bits", "conv2d=8", "--keep-fp32", "regressor_16"]);
    argv.extend_from_slice(&["--auto-mixed", "1", "--mixed-8bit-weights"]);
    argv.extend_from_slice(&["--steps", "2", "--batch", "1", "-o", qat.to_str().unwrap()]);
    let (code, text, err) = qplay(&argv);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("36 layers, 1 kept FP32, 4-bit weights (2 of them at their own width)"), "{text}");
    assert!(text.contains("held-out SQNR"), "{text}");
    // Bad entries: what is wrong and what to give.
    for (value, want) in [
        ("conv2d", "give NODE=N"),
        ("conv2d=9", "N from 2 to 8"),
        ("conv2d=eight", "a number of bits, 2 to 8"),
        ("no_such_layer=8", "`no_such_layer`, which is not a quantizable layer"),
    ] {
        let mut argv = vec!["quantize"];
        argv.extend_from_slice(&base);
        argv.extend_from_slice(&["--layer-bits", value, "-o", "/tmp/x.onnx"]);
        let (code, _, err) = qplay(&argv);
        assert_ne!(code, 0, "{value}");
        assert!(err.contains(want) && !err.contains("panicked"), "{value}: {err}");
    }
    // Automatic mixed precision to 8-bit weights: the two most sensitive 4-bit layers, chosen by
    // measurement, get 8-bit weights (rounded to nearest, without bias correction).
    let mut argv = vec!["quantize"];
    argv.extend_from_slice(&base);
    argv.extend_from_slice(&["--auto-mixed", "2", "--mixed-8bit-weights", "-o", out.to_str().unwrap()]);
    argv.extend_from_slice(&["--report", report.to_str().unwrap()]);
    let (code, text, err) = qplay(&argv);
    assert_eq!(code, 0, "{err}");
    assert_eq!(text.matches("8-bit weights by --auto-mixed").count(), 2, "{text}");
    assert!(
        text.contains("37 layers int4, 2 at their own width (0 kept FP32)")
            && text.contains("bias correction: 35 layers"),
        "{text}"
    );
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let eight: Vec<&serde_json::Value> =
        r["layers"].as_array().unwrap().iter().filter(|l| l["weight_bits"] == 8).collect();
    assert_eq!(eight.len(), 2);
    // The two least sensitive layers are not the ones moved.
    let sens = |l: &serde_json::Value| l["sensitivity_sqnr_db"].as_f64().unwrap();
    let lowest4 = r["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["weight_bits"] == 4)
        .map(sens)
        .fold(f64::INFINITY, f64::min);
    assert!(eight.iter().all(|l| sens(l) <= lowest4), "the most sensitive layers move");
    // At 8-bit weights there is nothing to move: said, not failed.
    let (code, text, err) = qplay_line(&format!(
        "quantize www/models/blazeface_short.onnx --calib www/samples --auto-mixed 1 --mixed-8bit-weights -o {}",
        out.display()
    ));
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("every layer's weights are 8-bit already"), "{text}");
    // A layer to keep FP32 (or at 16-bit activations) that the model does not have is named too.
    for flag in ["--keep-fp32", "--keep-16bit"] {
        let mut argv = vec!["quantize"];
        argv.extend_from_slice(&base);
        argv.extend_from_slice(&[flag, "conv2d,no_such_layer", "-o", "/tmp/x.onnx"]);
        let (code, _, err) = qplay(&argv);
        assert_ne!(code, 0, "{flag}");
        assert!(err.contains("`no_such_layer`, which is not a quantizable layer"), "{flag}: {err}");
    }
}

#[test]
fn quantize_and_qat_at_four_bit_weights() {
    let fp32 = std::fs::metadata(root().join("www/models/person_ssdlite.onnx")).unwrap().len() as f64;
    let (out, report) = (tmp("person_w4.onnx"), tmp("person_w4.json"));
    let (code, text, err) = qplay_line(&format!(
        "quantize www/models/person_ssdlite.onnx --calib www/samples --recipe fixed --weight-bits 4 -o {} --report {}",
        out.display(),
        report.display()
    ));
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("88 layers int4") && text.contains("opset raised from 13 to 21"), "{text}");
    // Below 8 bits the weights are rounded by GPTQ unless --no-gptq.
    assert!(text.contains("(rounded by GPTQ)") && text.contains("(GPTQ) in 88 layers"), "{text}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!((r["weight_bits"].as_u64(), r["weight_storage"].as_str()), (Some(4), Some("int4")));
    assert_eq!(r["weight_rounding"], "gptq");
    assert!(r["layers"].as_array().unwrap().iter().all(|l| l["weight_bits"] == 4));
    let ratio = std::fs::metadata(&out).unwrap().len() as f64 / fp32;
    assert!(ratio < 0.2, "int4 file is {ratio:.3}× the FP32 file");
    let (code, info, err) = qplay(&["inspect", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(info.contains("opset 21"), "{info}");
    // int8 storage of the same weights, 16-bit activations: the opset stays, the file is larger.
    let out8 = tmp("face_w5a16.onnx");
    let (code, text, err) = qplay_line(&format!(
        "quantize www/models/blazeface_short.onnx --calib www/samples --weight-bits 5 --activation-bits 16 -o {}",
        out8.display()
    ));
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("5-bit weights (int8 storage)") && text.contains("activations uint16"), "{text}");
    assert!(text.contains("(rounded by GPTQ)"), "{text}");
    for (flags, want) in
        [(&["--weight-bits", "4", "--no-gptq"][..], "(rounded to nearest)"), (&["--gptq"], "(rounded by GPTQ)")]
    {
        let mut argv = vec!["quantize", "www/models/blazeface_short.onnx", "--calib", "www/samples", "-o"];
        argv.push(out8.to_str().unwrap());
        argv.extend_from_slice(flags);
        let (code, text, err) = qplay(&argv);
        assert_eq!(code, 0, "{err}");
        assert!(text.contains(want), "{flags:?}: {text}");
    }
    // QAT picks the bit width up from the PTQ model and writes int4 weights back.
    let qat = tmp("face_w4_qat.onnx");
    let (code, text, err) = qplay_line(&format!(
        "qat www/models/blazeface_short.onnx --calib www/samples --weight-bits 4 --steps 2 --batch 1 -o {}",
        qat.display()
    ));
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("4-bit weights stored int4"), "{text}");
    assert!(!text.contains("the loss: the outputs and"), "outputs only by default at 4 bits: {text}");
    assert!(text.contains("the activation scales kept their PTQ values"), "{text}");
    let (code, info, err) = qplay(&["inspect", qat.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(info.contains("opset 21"), "{info}");
    // And 16-bit activations (com.microsoft Q/DQ before opset 21) fine-tune too.
    let a16 = tmp("face_a16_qat.onnx");
    let (code, text, err) = qplay_line(&format!(
        "qat www/models/blazeface_short.onnx --calib www/samples --activation-bits 16 --steps 2 --batch 1 -o {}",
        a16.display()
    ));
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("uint16 activations") && text.contains("held-out SQNR"), "{text}");
    // Bad bit widths: exit 2 and what is allowed.
    for (cmd, flag, value, want) in [
        ("quantize", "--weight-bits", "1", "1 is not in 2..=8"),
        ("quantize", "--weight-bits", "9", "9 is not in 2..=8"),
        ("quantize", "--weight-bits", "four", "invalid digit"),
        ("quantize", "--activation-bits", "4", "[possible values: 8, 16]"),
        ("qat", "--weight-bits", "16", "16 is not in 2..=8"),
        ("quantize", "--gptq", "--no-gptq", "cannot be used with"),
        ("qat", "--grid-steps", "--no-grid-steps", "cannot be used with"),
        ("qat", "--activation-scales", "--no-activation-scales", "cannot be used with"),
    ] {
        let (code, _, err) = qplay_line(&format!(
            "{cmd} www/models/blazeface_short.onnx --calib www/samples {flag} {value} -o /tmp/x.onnx"
        ));
        assert_eq!(code, 2, "{cmd} {flag} {value}: {err}");
        assert!(err.contains(want) && !err.contains("panicked"), "{err}");
    }
}

/// `--threads`: the same files and outputs on 1 and 2 threads (a whole `quantize` run with the
/// defaults and its report; `detect`; `infer`), `bench` says how many ran, and counts that
/// cannot be used are usage errors that say what to give.
#[test]
fn threads_change_nothing_but_the_time() {
    let model = "www/models/blazeface_short.onnx";
    let quantized = |threads: &str| {
        let (out, report) = (tmp(&format!("face_t{threads}.onnx")), tmp(&format!("face_t{threads}.json")));
        let (code, _, err) = qplay_line(&format!(
            "quantize {model} --calib www/samples --threads {threads} -o {} --report {}",
            out.display(),
            report.display()
        ));
        assert_eq!(code, 0, "{err}");
        let mut r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        for timing in ["phase_ms", "quantize_seconds"] {
            r.as_object_mut().unwrap().remove(timing);
        }
        (std::fs::read(&out).unwrap(), r, out)
    };
    let (one, two) = (quantized("1"), quantized("2"));
    assert!(one.0 == two.0, "the quantized files differ between --threads 1 and 2");
    assert_eq!(one.1, two.1, "the reports differ");
    let int8 = one.2.to_str().unwrap();
    for m in [model, int8] {
        let detect = |t: &str| {
            qplay_line(&format!(
                "detect {m} www/samples/astronaut.png --json --threads {t} --profile www/models/blazeface_short.json"
            ))
        };
        let ((c1, d1, e1), (c3, d3, _)) = (detect("1"), detect("3"));
        assert_eq!((c1, c3), (0, 0), "{e1}");
        let boxes = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["detections"].clone();
        assert_eq!(boxes(&d1), boxes(&d3), "{m}");
    }
    let (code, out, err) = qplay(&["bench", model, "--iters", "2", "--warmup", "0", "--threads", "2", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["threads"], 2);
    let (code, out, err) = qplay(&["bench", model, "--iters", "1", "--warmup", "0", "--threads", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(native CPU, 1 thread)"), "{out}");
    for bad in ["0", "1025", "99999999999999999999", "-2", "many"] {
        for cmd in ["bench", "infer", "detect"] {
            let (code, _, err) = qplay(&[cmd, model, "--threads", bad]);
            assert_eq!(code, 2, "{cmd} --threads {bad}: {err}");
            assert!(err.contains("from 1 to 1024") && err.contains("every core") && !err.contains("panicked"), "{err}");
        }
    }
}

/// GPTQ on models exported by other tools: YOLOX-Nano (Megvii's export) gains on a photo it was
/// not calibrated on; RT-DETR's 30 Gemm and 11 MatMul layers get codes too (91 layers in all).
#[test]
fn gptq_on_real_exports() {
    let train =
        samples_in("gptq_train", &["horses.jpg", "kite.jpg", "dog.jpg", "coffee.png", "astronaut.png", "camera.png"]);
    let test = samples_in("gptq_test", &["person.jpg"]);
    let sqnr = |model: &str, rounding: &str| -> (f64, String) {
        let out = tmp(&format!("gptq_{}{rounding}.onnx", model.len()));
        let (code, text, err) = qplay_line(&format!(
            "quantize {model} --calib {} --weight-bits 4 {rounding} -o {}",
            train.display(),
            out.display()
        ));
        assert_eq!(code, 0, "{err}");
        let (code, json, err) =
            qplay(&["compare", model, out.to_str().unwrap(), "--images", test.to_str().unwrap(), "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let db = v["output_sqnr_db"]
            .as_object()
            .unwrap()
            .values()
            .map(|d| d.as_f64().unwrap())
            .fold(f64::INFINITY, f64::min);
        (db, text)
    };
    let yolox = "tests/fixtures/yolox/yolox_nano.onnx";
    let ((near, _), (gptq, text)) = (sqnr(yolox, "--no-gptq"), sqnr(yolox, "--gptq"));
    println!("yolox_nano W4A8 on person.jpg: nearest {near:.2} dB, GPTQ {gptq:.2} dB");
    assert!(text.contains("(GPTQ) in 113 layers"), "{text}");
    assert!(gptq > near + 1.0, "GPTQ {gptq:.2} dB vs nearest {near:.2} dB");
    let (db, text) = sqnr("tests/fixtures/rtdetr/rtdetr_tiny.onnx", "--gptq");
    assert!(text.contains("(GPTQ) in 91 layers") && db.is_finite(), "{db} {text}");
}

/// A YOLOv8 export quantized by onnxruntime's `quantize_static` in its QOperator format (the
/// `com.microsoft` QLinearMul / QLinearSigmoid / QLinearSoftmax, Resize on uint8: see
/// `tests/fixtures/make_qop_yolo_fixture.py`) is a model the commands take: inspect lists every
/// op as supported, detect runs it, and compare measures it against its FP32 export.
#[test]
fn onnxruntime_qoperator_yolov8_runs_in_every_command() {
    let (fp32, q) =
        ("tests/fixtures/ultralytics/yolov8_custom18.onnx", "tests/fixtures/ultralytics/yolov8_custom18_qop.onnx");
    let (code, out, err) = qplay(&["inspect", q]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("com.microsoft::QLinearSigmoid") && out.contains("every op is supported"), "{out}");
    assert!(out.contains("quantized layers (an INT8 export)"), "{out}");
    let (code, out, err) = qplay(&["detect", q, "www/samples/person.jpg"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("detection(s)"), "{out}");
    // Alone, with no FP32 model beside it, its scores above 1 are said too, with the cause.
    assert!(out.contains("warning: scores above 1 (up to 1.882") && out.contains("nodes_to_exclude"), "{out}");
    let (code, text, err) = qplay(&["detect", q, "www/samples/person.jpg", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["score_warning"].as_str().unwrap_or_default().contains("runs on quantized values"), "{text}");
    let (code, text, err) = qplay(&["detect", fp32, "www/samples/person.jpg", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["score_warning"].is_null() && !v["detections"].as_array().unwrap().is_empty(), "{text}");
    let (code, text, err) = qplay(&["compare", fp32, q, "--images", "www/samples", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["images"], 7);
    assert!(v["size_ratio"].as_f64().unwrap() < 0.4, "{text}");
    let sq = v["output_sqnr_db"].to_string();
    assert!(v["map50"].as_f64().unwrap() > 0.9, "{text}");
    assert!(!sq.contains("null"), "{sq}");
    // onnxruntime quantized the boxes and scores as one tensor: the scores step by ~0.94, said.
    let w = v["score_warning"].as_str().unwrap_or_default();
    assert!(w.contains("above 1") && w.contains("nodes_to_exclude"), "{text}");
    // qplay's own quantization of the same export leaves the outputs in float: no warning.
    let out = tmp("yolov8_custom18_qplay.onnx");
    let (code, _, err) = qplay(&["quantize", fp32, "--calib", "www/samples", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, text, err) = qplay(&["compare", fp32, out.to_str().unwrap(), "--images", "www/samples", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["score_warning"].is_null(), "{text}");
}
