//! The vendored models give onnxruntime's numbers: every raw output of `person_ssdlite` and
//! `blazeface_short` on the fixture inputs (`tests/fixtures/<model>_<image>/`, written by
//! `tests/fixtures/make_fixtures.py`) matches ORT's within 1e-4 of the output's value range:
//! `max |ours − ort| ≤ 1e-4 × (max − min of ort's output)`.
//!
//! `cargo test -p qplay-core --test ort_match -- --nocapture` prints the measured ratios.

use qplay_core::model::npy::read_npy;
use qplay_core::model::{load_onnx, Plan, Tensor};
use qplay_core::ops::Registry;
use serde_json::Value;
use std::path::PathBuf;

const TOLERANCE: f32 = 1e-4;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run tests/fixtures/make_fixtures.py)", path.display()))
}

/// Runs `model` on each case's `input.npy` and compares every output with ORT's.
fn check(model: &str, images: &[&str]) {
    let graph = load_onnx(&read(repo().join(format!("www/models/{model}.onnx")))).expect("model loads");
    let registry = Registry::new();
    let mut failures = Vec::new();
    for image in images {
        let case = format!("{model}_{image}");
        let dir = repo().join("tests/fixtures").join(&case);
        let input = read_npy(&read(dir.join("input.npy"))).expect("input.npy");
        let expected: Value = serde_json::from_slice(&read(dir.join("expected.json"))).expect("expected.json");
        let input_name = graph.inputs[0].name.clone();
        let plan = Plan::new(&graph, &registry, &[(input_name.clone(), input.shape.clone())]).expect("plan");
        let got = plan.run(&[(input_name, input)]).expect("run");
        let outs = expected["outputs"].as_array().expect("outputs");
        assert_eq!(got.len(), outs.len(), "{case}: output count");
        for (k, o) in outs.iter().enumerate() {
            let name = o["name"].as_str().unwrap();
            // The fixture's outputs are in ORT's session order; find ours by name.
            let at = plan
                .output_names()
                .iter()
                .position(|n| *n == name)
                .unwrap_or_else(|| panic!("{case}: no output {name}"));
            let ort: Tensor = read_npy(&read(dir.join(o["file"].as_str().unwrap()))).unwrap();
            let ours = &got[at];
            assert_eq!(ours.shape, ort.shape, "{case} output {k} `{name}`: shape");
            let (a, b) = (ours.as_f32().unwrap(), ort.as_f32().unwrap());
            let (lo, hi) = b.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
            let range = hi - lo;
            let (mut diff, mut at_max) = (0f32, 0);
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let d = (x - y).abs();
                if d > diff || d.is_nan() {
                    (diff, at_max) = (if d.is_nan() { f32::INFINITY } else { d }, i);
                }
            }
            let ratio = diff / range;
            eprintln!(
                "{case} output_{k} `{name}` {:?}: max |diff| {diff:.3e} (at {at_max}: ours {} ort {}), range {range:.4}, diff/range {ratio:.2e}",
                ours.shape, a[at_max], b[at_max]
            );
            if diff > TOLERANCE * range || range.is_nan() {
                failures.push(format!("{case} output_{k} `{name}`: max diff {diff:e} > {TOLERANCE} × range {range}"));
            }
        }
    }
    assert!(failures.is_empty(), "outputs differ from onnxruntime:\n{}", failures.join("\n"));
}

#[test]
fn person_ssdlite_matches_onnxruntime() {
    check("person_ssdlite", &["person", "horses", "astronaut"]);
}

#[test]
fn blazeface_short_matches_onnxruntime() {
    check("blazeface_short", &["astronaut", "person"]);
}
