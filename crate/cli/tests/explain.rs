//! `qplay explain` end to end: the real binary, its JSON, its errors and exit codes.

use std::process::Command;

fn qplay(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qplay")).args(args).output().expect("run qplay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn seed_example_json() {
    let (code, out, _) =
        qplay(&["explain", "--min", "-2", "--max", "2", "--bits", "8", "--signed", "--value", "1.3", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["zero_point"], 0);
    assert_eq!(v["q"], 83);
    assert!((v["scale"].as_f64().unwrap() - 4.0 / 255.0).abs() < 1e-8);
    assert!((v["dequantized"].as_f64().unwrap() - 1.30196).abs() < 1e-5);
    assert!(v["error"].as_f64().unwrap().abs() < v["scale"].as_f64().unwrap() / 2.0);
}

#[test]
fn textbook_rounding() {
    let (code, out, _) =
        qplay(&["explain", "--min=-2", "--max", "2", "--value", "1.3", "--scale-decimals", "4", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["zero_point"].as_i64(), v["q"].as_i64()), (Some(-1), Some(82)));
    assert!((v["dequantized"].as_f64().unwrap() - 1.3031).abs() < 1e-12);
}

#[test]
fn text_output_has_every_step() {
    let (code, out, _) = qplay(&["explain", "--min", "0", "--max", "6", "--unsigned", "--bits", "4", "--value", "7"]);
    assert_eq!(code, 0);
    for k in ["1. Grid: uint4", "3. Δ", "4. Z", "5. q", "clamped", "6. x̂", "7. Error"] {
        assert!(out.contains(k), "missing {k:?} in\n{out}");
    }
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["explain", "--min", "2", "--max", "-2", "--value", "1"], "swap min and max"),
        (&["explain", "--min", "abc", "--max", "2", "--value", "1"], "--min \"abc\""),
        (&["explain", "--min", "-2", "--max", "inf", "--value", "1"], "not finite"),
        (&["explain", "--min", "-2", "--max", "2", "--value", "NaN"], "not a finite number"),
        (&["explain", "--min", "-2", "--max", "2", "--value", "1", "--bits", "9"], "use 2 to 8, or 16"),
        (&["explain", "--min", "-2", "--max", "2", "--value", "1", "--bits", "300"], "--bits"),
        (&["explain", "--min", "1", "--max", "1", "--value", "1"], "min equals max"),
        (&["explain", "--max", "2", "--value", "1"], "--min is required"),
        (&["explain", "--min", "-2", "--max", "2", "--value"], "--value needs a value"),
        (&["explain", "--min", "-2", "--max", "2", "--value", "1", "--frobnicate"], "unknown option --frobnicate"),
        (&["explain", "--min", "-2", "--max", "2", "--value", "1", "--signed", "--unsigned"], "exclude each other"),
        (&["explain", "--min", "-2", "--max", "2", "--value", "1", "--scale-decimals", "40"], "0 to 12"),
        (&["frobnicate"], "unknown command"),
    ];
    for (args, want) in cases {
        let (code, out, err) = qplay(args);
        assert_eq!(code, 2, "{args:?} should fail; stdout {out}");
        assert!(err.contains(want), "{args:?}: expected {want:?} in stderr:\n{err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
}

#[test]
fn every_command_answers_help_with_its_usage() {
    let (code, all, _) = qplay(&["help"]);
    assert_eq!(code, 0);
    for cmd in ["explain", "inspect", "infer", "detect", "quantize", "compare", "bench"] {
        for flag in ["--help", "-h"] {
            let (code, out, err) = qplay(&[cmd, flag]);
            assert_eq!(code, 0, "{cmd} {flag}: {err}");
            let usage = out.lines().next().unwrap().strip_prefix("usage: ").unwrap().to_string();
            assert!(usage.starts_with(&format!("qplay {cmd} ")), "{out}");
            // `qplay help` lists the same usage line the command's errors print.
            assert!(all.contains(&usage), "qplay help lacks {usage}");
        }
    }
    // The usage printed with an error is the same line, and points at --help.
    let (code, _, err) = qplay(&["quantize", "--bogus"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown option --bogus")
            && err.contains("--recipe auto|fixed")
            && err.contains("quantize --help"),
        "{err}"
    );
}
