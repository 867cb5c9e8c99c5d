//! `qplay qat` end to end on the built-in face detector and the sample photos, and its errors.

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

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qplay-qat-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn qat_fine_tunes_and_writes_a_model_that_loads() {
    let (out, curve, report) = (tmp("face_qat.onnx"), tmp("curve.csv"), tmp("qat.json"));
    let (code, text, err) = qplay(&[
        "qat",
        "www/models/blazeface_short.onnx",
        "--calib",
        "www/samples",
        "-o",
        out.to_str().unwrap(),
        "--steps",
        "3",
        "--batch",
        "2",
        "--eval-every",
        "1",
        "--curve",
        curve.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("fine-tuning on 6 input(s), checking on 1") && text.contains("s per step"), "{text}");
    let csv = std::fs::read_to_string(&curve).unwrap();
    assert_eq!(csv.lines().count(), 5, "header, step 0 and three steps:\n{csv}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    // The best step is kept: never worse on the held-out photo than PTQ (step 0).
    assert!(r["qat_sqnr_db"].as_f64().unwrap() >= r["ptq_sqnr_db"].as_f64().unwrap(), "{r}");
    let (code, info, err) = qplay(&["inspect", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(info.contains("producer qplay qat"), "{info}");
}

#[test]
fn qat_bad_input_says_what_to_do() {
    let one = tmp("one");
    std::fs::create_dir_all(&one).unwrap();
    std::fs::copy(root().join("www/samples/person.jpg"), one.join("person.jpg")).unwrap();
    let out = tmp("x.onnx");
    let base = ["qat", "www/models/blazeface_short.onnx", "-o", out.to_str().unwrap()];
    let cases: [(&[&str], &str); 3] = [
        (&["--calib", one.to_str().unwrap()], "needs at least two"),
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
}
