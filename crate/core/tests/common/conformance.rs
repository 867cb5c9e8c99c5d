//! The ONNX backend node conformance harness shared by the CPU suite
//! (`crate/core/tests/conformance.rs`) and the GPU one (`crate/gpu/tests/conformance.rs`):
//! reading a case, the relaxed modes, and numpy-style comparison. Each executor supplies a
//! [`Runner`].
#![allow(dead_code)] // each suite uses its own part

use prost::Message;
use qplay_core::model::npy::read_npy;
use qplay_core::model::proto::ModelProto;
use qplay_core::model::{load_onnx, Data, Graph, Plan, Tensor};
use qplay_core::ops::Registry;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance")
}

pub fn bless() -> bool {
    std::env::var_os("QPLAY_BLESS").is_some_and(|v| v != "0")
}

pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Shortens an error message to one line for the report.
pub fn short(msg: impl std::fmt::Display) -> String {
    let s = msg.to_string().replace(['\n', '|'], " ");
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

/// numpy `allclose(got, want, rtol, atol, equal_nan=True)` for floats, equality otherwise.
/// `Err` carries the reason (dtype, shape, or the largest difference).
pub fn compare(got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> Result<(), String> {
    if got.dtype() != want.dtype() {
        return Err(format!("dtype {:?}, expected {:?}", got.dtype(), want.dtype()));
    }
    if got.shape != want.shape {
        return Err(format!("shape {:?}, expected {:?}", got.shape, want.shape));
    }
    match (&got.data, &want.data) {
        (Data::F32(a), Data::F32(b)) => {
            let (mut bad, mut worst) = (0usize, 0f64);
            for (&x, &y) in a.iter().zip(b) {
                let (x, y) = (f64::from(x), f64::from(y));
                let ok = if x.is_nan() || y.is_nan() {
                    x.is_nan() && y.is_nan()
                } else if x.is_infinite() || y.is_infinite() {
                    x == y
                } else {
                    (x - y).abs() <= atol + rtol * y.abs()
                };
                if !ok {
                    bad += 1;
                    let d = if (x - y).is_nan() { f64::INFINITY } else { (x - y).abs() };
                    worst = worst.max(d);
                }
            }
            if bad > 0 {
                return Err(format!("mismatch: {bad}/{} elements, max diff {worst:.3e}", a.len()));
            }
            Ok(())
        }
        _ => {
            if got.data != want.data {
                let (a, b) = (got.to_f32_vec(), want.to_f32_vec());
                let bad = a.iter().zip(&b).filter(|(x, y)| x != y).count();
                let first = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(0);
                return Err(format!(
                    "mismatch: {bad}/{} elements differ (first at {first}: {} vs {})",
                    a.len(),
                    a.get(first).copied().unwrap_or_default(),
                    b.get(first).copied().unwrap_or_default()
                ));
            }
            Ok(())
        }
    }
}

/// How strictly a case is run. `Relaxed` tests the ops' numbers past two of qplay's planning
/// policies, for failures that are only those policies: a default-domain opset outside 9..=28
/// is loaded as the nearest supported one, and every graph input after the first becomes a
/// constant (the backend cases feed axes, pads, scales… as inputs, which qplay needs at plan
/// time); `AllConstant` makes the first input constant too (ConstantOfShape's shape).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Mode {
    Strict,
    Relaxed,
    AllConstant,
}

pub fn load(case: &Path, mode: Mode) -> Result<Graph, String> {
    let mut bytes = read(&case.join("model.onnx"))?;
    if mode != Mode::Strict {
        let mut m = ModelProto::decode(bytes.as_slice()).map_err(short)?;
        for o in &mut m.opset_import {
            if o.domain.is_empty() || o.domain == "ai.onnx" {
                o.version = o.version.clamp(9, 21);
            }
        }
        bytes = m.encode_to_vec();
    }
    load_onnx(&bytes).map_err(|e| format!("load error: {}", short(e)))
}

/// Runs a planned graph on some executor: the outputs, or the short reason it failed.
pub type Runner<'a> =
    dyn FnMut(&Graph, &[(String, Vec<usize>)], &[(String, Tensor)]) -> Result<Vec<Tensor>, String> + 'a;

/// Plans `graph` for `shapes` with the CPU registry: the short reason on failure.
pub fn plan(graph: &Graph, shapes: &[(String, Vec<usize>)]) -> Result<Plan, String> {
    Plan::new(graph, &Registry::new(), shapes).map_err(|e| format!("plan error: {}", short(e)))
}

/// Runs one case (all its data sets) through `run`; `Err` is the short reason it fails.
pub fn run_case(case: &Path, meta: &Value, mode: Mode, run: &mut Runner<'_>) -> Result<(), String> {
    let mut graph = load(case, mode)?;
    let rtol = meta["rtol"].as_f64().unwrap_or(1e-3);
    let atol = meta["atol"].as_f64().unwrap_or(1e-7);
    let sets = meta["data_sets"].as_array().ok_or("meta.json has no data_sets")?;
    for (k, set) in sets.iter().enumerate() {
        let at = if sets.len() > 1 { format!("data set {k}: ") } else { String::new() };
        let mut inputs = Vec::new();
        for i in set["inputs"].as_array().ok_or("meta.json: inputs")? {
            let t = read_npy(&read(&case.join(i["file"].as_str().unwrap_or_default()))?).map_err(short)?;
            inputs.push((i["name"].as_str().unwrap_or_default().to_string(), t));
        }
        let keep = if mode == Mode::AllConstant { 0 } else { 1 };
        if mode != Mode::Strict && inputs.len() > keep {
            graph = load(case, mode)?;
            for (name, t) in inputs.drain(keep..) {
                graph.inputs.retain(|v| v.name != name);
                graph.initializers.insert(name, t);
            }
        }
        let shapes: Vec<(String, Vec<usize>)> = inputs.iter().map(|(n, t)| (n.clone(), t.shape.clone())).collect();
        let got = run(&graph, &shapes, &inputs).map_err(|e| format!("{at}{e}"))?;
        let outs = set["outputs"].as_array().ok_or("meta.json: outputs")?;
        if got.len() != outs.len() {
            return Err(format!("{at}{} outputs, expected {}", got.len(), outs.len()));
        }
        for (j, (o, g)) in outs.iter().zip(&got).enumerate() {
            let want = read_npy(&read(&case.join(o["file"].as_str().unwrap_or_default()))?).map_err(short)?;
            compare(g, &want, rtol, atol).map_err(|e| format!("{at}output {j}: {e}"))?;
        }
    }
    Ok(())
}

pub fn read_list(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}
