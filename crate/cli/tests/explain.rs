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
        (&["explain", "--min", "abc", "--max", "2", "--value", "1"], "invalid value 'abc' for '--min <A>'"),
        (&["explain", "--min", "-2", "--max", "inf", "--value", "1"], "not finite"),
        (&["explain", "--min", "-2", "--max", "2", "--value", "NaN"], "not a finite number"),
        (
            &["explain", "--min", "-2", "--max", "2", "--value", "1", "--bits", "9"],
            "[possible values: 2, 3, 4, 5, 6, 7, 8, 16]",
        ),
        (
            &["explain", "--min", "-2", "--max", "2", "--value", "1", "--bits", "300"],
            "invalid value '300' for '--bits <N>'",
        ),
        (&["explain", "--min", "1", "--max", "1", "--value", "1"], "min equals max"),
        (&["explain", "--max", "2", "--value", "1"], "required arguments were not provided:\n  --min <A>"),
        (&["explain", "--min", "-2", "--max", "2", "--value"], "a value is required for '--value <X>'"),
        (
            &["explain", "--min", "-2", "--max", "2", "--value", "1", "--frobnicate"],
            "unexpected argument '--frobnicate'",
        ),
        (
            &["explain", "--min", "-2", "--max", "2", "--value", "1", "--signed", "--unsigned"],
            "'--signed' cannot be used with '--unsigned'",
        ),
        (&["explain", "--min", "-2", "--max", "2", "--value", "1", "--scale-decimals", "40"], "0 to 12"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
    ];
    for (args, want) in cases {
        let (code, out, err) = qplay(args);
        assert_eq!(code, 2, "{args:?} should fail; stdout {out}");
        assert!(err.contains(want), "{args:?}: expected {want:?} in stderr:\n{err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
}

#[test]
fn a_runtime_error_names_the_command_and_prints_its_usage() {
    // Errors found while running (not while parsing) say which command failed, print the usage
    // line `--help` prints, point at --help, and exit with status 2.
    let (code, _, err) = qplay(&["explain", "--min", "2", "--max", "-2", "--value", "1"]);
    assert_eq!(code, 2);
    let (_, help, _) = qplay(&["explain", "--help"]);
    let usage = help.lines().find(|l| l.starts_with("Usage: ")).unwrap();
    assert!(err.starts_with("qplay explain: error: the range is inverted"), "{err}");
    assert!(err.contains(usage) && err.contains("qplay explain --help"), "{err}");
}
