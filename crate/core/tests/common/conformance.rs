//! The ONNX backend node conformance harness shared by the CPU suite
//! (`crate/core/tests/conformance.rs`) and the GPU one (`crate/gpu/tests/conformance.rs`):
//! reading a case, the relaxed modes, numpy-style comparison, and the one report of both. Each
//! executor supplies a [`Runner`].
//!
//! One suite, every backend: each suite keeps its results in `tests/conformance/`
//! (`cpu_results.tsv`, `gpu_results.tsv`, committed) and then writes `REPORT.md` from both
//! files, so the report has a CPU and a GPU column whichever suite ran last, and running one
//! suite alone updates only its own column.
#![allow(dead_code)] // each suite uses its own part

use prost::Message;
use qplay_core::model::npy::read_npy;
use qplay_core::model::proto::ModelProto;
use qplay_core::model::{load_onnx, Data, Graph, Plan, Tensor};
use qplay_core::ops::Registry;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
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

/// Runs `f`, turning a panic into `Err("panic: …")`.
pub fn catch_panic(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("panic: {}", short(msg)))
    })
}

/// How a CPU failure's reason ends when the case passes relaxed.
pub const RELAXED_PASS: &str = " — relaxed: passes";

/// The CPU baseline, `expected_pass.txt`: per case 2 (passes) or 1 (passes relaxed only, listed
/// as `case (relaxed)`).
pub fn cpu_baseline() -> BTreeMap<String, u8> {
    read_list(&dir().join("expected_pass.txt"))
        .into_iter()
        .map(|l| match l.strip_suffix(" (relaxed)") {
            Some(n) => (n.to_string(), 1),
            None => (l, 2),
        })
        .collect()
}

/// A case's result on the CPU executor: `Err` is why it fails strictly, ending in
/// [`RELAXED_PASS`] when it passes relaxed.
pub struct CpuCase {
    pub op: String,
    pub result: Result<(), String>,
}

impl CpuCase {
    /// 2 passes, 1 passes relaxed only, 0 fails.
    pub fn level(&self) -> u8 {
        match &self.result {
            Ok(()) => 2,
            Err(e) if e.ends_with(RELAXED_PASS) => 1,
            Err(_) => 0,
        }
    }
}

/// A case's result on the GPU executor: how many steps it placed on the GPU (over all data
/// sets and attempts) of how many, and the outcome.
pub struct GpuCase {
    pub on_gpu: usize,
    pub steps: usize,
    pub result: Result<(), String>,
}

impl GpuCase {
    /// Whether at least one step ran on the GPU (else the case ran on CPU phases only).
    pub fn placed(&self) -> bool {
        self.on_gpu > 0
    }
}

const CPU_RESULTS: &str = "cpu_results.tsv";
const GPU_RESULTS: &str = "gpu_results.tsv";

/// Writes `text` to `tests/conformance/<name>` unless it already holds it.
fn write_if_changed(name: &str, text: &str) {
    let path = dir().join(name);
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// A `tests/conformance/` results file: a `#` header line, then one tab-separated row a case.
fn write_tsv(name: &str, header: &str, rows: impl Iterator<Item = Vec<String>>) {
    let mut text = format!("# {header}\n");
    for row in rows {
        let cells: Vec<String> = row.into_iter().map(|c| c.replace(['\t', '\n'], " ")).collect();
        text += &cells.join("\t");
        text.push('\n');
    }
    write_if_changed(name, &text);
}

/// The rows of a results file (none when it is missing).
fn read_tsv(name: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir().join(name))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').map(String::from).collect())
        .collect()
}

/// `pass`, or the word for a failure and its reason.
fn result_cells(r: &Result<(), String>, fail: &str) -> [String; 2] {
    match r {
        Ok(()) => ["pass".into(), String::new()],
        Err(e) => [fail.into(), e.clone()],
    }
}

fn cell_result(cells: &[String], at: usize) -> Result<(), String> {
    match cells.get(at).map(String::as_str) {
        Some("pass") => Ok(()),
        _ => Err(cells.get(at + 1).cloned().unwrap_or_default()),
    }
}

pub fn write_cpu_results(cases: &BTreeMap<String, CpuCase>) {
    let rows = cases.iter().map(|(name, c)| {
        let word = if c.level() == 1 { "relaxed" } else { "fail" };
        let [result, reason] = result_cells(&c.result, word);
        vec![name.clone(), c.op.clone(), result, reason]
    });
    write_tsv(CPU_RESULTS, "case\top\tpass | relaxed (passes relaxed only) | fail\treason", rows);
}

pub fn read_cpu_results() -> BTreeMap<String, CpuCase> {
    read_tsv(CPU_RESULTS)
        .into_iter()
        .filter(|c| c.len() >= 3)
        .map(|c| (c[0].clone(), CpuCase { op: c[1].clone(), result: cell_result(&c, 2) }))
        .collect()
}

pub fn write_gpu_results(cases: &BTreeMap<String, GpuCase>) {
    let rows = cases.iter().map(|(name, c)| {
        let [result, reason] = result_cells(&c.result, "fail");
        vec![name.clone(), c.on_gpu.to_string(), c.steps.to_string(), result, reason]
    });
    write_tsv(GPU_RESULTS, "case\tsteps on the GPU\tsteps\tpass | fail\treason", rows);
}

pub fn read_gpu_results() -> BTreeMap<String, GpuCase> {
    read_tsv(GPU_RESULTS)
        .into_iter()
        .filter(|c| c.len() >= 4)
        .map(|c| {
            let n = |i: usize| c[i].parse().unwrap_or(0);
            (c[0].clone(), GpuCase { on_gpu: n(1), steps: n(2), result: cell_result(&c, 3) })
        })
        .collect()
}

/// The CPU column of a case in the report.
fn cpu_cell(c: &CpuCase) -> String {
    match &c.result {
        Ok(()) => "pass".into(),
        Err(e) => match e.strip_suffix(RELAXED_PASS) {
            Some(strict) => format!("passes relaxed — strict: {strict}"),
            None => format!("**fail**: {e}"),
        },
    }
}

/// Why the GPU suite did not run a case: the CPU fails it, or passes it but its baseline
/// (which the GPU suite runs) does not list it yet; `None` if it does (the GPU results predate
/// the baseline).
fn not_run_reason(cpu: &CpuCase, baseline: &BTreeMap<String, u8>, name: &str) -> Option<&'static str> {
    if cpu.level() == 0 {
        Some("fails on the CPU")
    } else if !baseline.contains_key(name) {
        Some("not in `expected_pass.txt`")
    } else {
        None
    }
}

/// The GPU column of a case in the report.
fn gpu_cell(gpu: Option<&GpuCase>, not_run: Option<&str>) -> String {
    let Some(g) = gpu else {
        return not_run.map_or("not run".into(), |why| format!("not run ({why})"));
    };
    let steps = format!("{}/{} steps on the GPU", g.on_gpu, g.steps);
    match (&g.result, g.placed()) {
        (Ok(()), true) => format!("pass ({steps})"),
        (Err(e), true) => format!("**fail** ({steps}): {e}"),
        (Ok(()), false) => "not placed on the GPU (runs on CPU phases)".into(),
        (Err(e), false) => format!("not placed on the GPU; **fails**: {e}"),
    }
}

/// A case in the report: its name, CPU result and GPU result (if the GPU suite ran it).
type ReportRow<'a> = (&'a String, &'a CpuCase, Option<&'a GpuCase>);

/// Writes `tests/conformance/REPORT.md` from both results files (the one the calling suite has
/// just written and the other suite's last).
pub fn write_report() {
    let cpu = read_cpu_results();
    let gpu = read_gpu_results();
    let cases_dir = dir().join("cases");
    // op → (case, its CPU result, its GPU result)
    let mut by_op: BTreeMap<&str, Vec<ReportRow>> = BTreeMap::new();
    for (name, c) in &cpu {
        by_op.entry(c.op.as_str()).or_default().push((name, c, gpu.get(name)));
    }
    let total = cpu.len();
    let count =
        |f: &dyn Fn(&CpuCase, Option<&GpuCase>) -> bool| by_op.values().flatten().filter(|(_, c, g)| f(c, *g)).count();
    let cpu_pass = count(&|c, _| c.level() == 2);
    let cpu_relaxed = count(&|c, _| c.level() >= 1);
    let gpu_run = count(&|_, g| g.is_some());
    let gpu_placed = count(&|_, g| g.is_some_and(GpuCase::placed));
    let gpu_pass = count(&|_, g| g.is_some_and(|g| g.placed() && g.result.is_ok()));
    let gpu_listed = read_list(&dir().join("expected_gpu_pass.txt")).len();
    let baseline = cpu_baseline();
    let not_run = |name: &str, c: &CpuCase| not_run_reason(c, &baseline, name);
    let unlisted =
        by_op.values().flatten().filter(|(n, c, g)| g.is_none() && c.level() > 0 && !baseline.contains_key(*n));

    let mut md = String::new();
    let _ = writeln!(md, "# ONNX backend node conformance\n");
    let _ = writeln!(
        md,
        "One suite, every backend: the cases that `tests/conformance/export_cases.py` exported \
         (`onnx.backend.test.case.node`, onnx {}) run on the CPU executor (`cargo test -p qplay-core --test \
         conformance`, the CPU column) and on the GPU executor (`cargo test -p qplay-gpu --test conformance`, \
         on lavapipe where there is no GPU: the GPU column). Each suite keeps its results in \
         `cpu_results.tsv` / `gpu_results.tsv` and writes this report from both. A case passes when every data \
         set loads, plans, runs and matches the ONNX reference outputs by numpy-style `allclose(rtol, atol)` \
         of the case (integers and bools exactly).\n",
        std::fs::read_to_string(cases_dir.join("onnx_version.txt")).unwrap_or_default().trim()
    );
    let _ = writeln!(md, "| backend | result |\n|---|---|");
    let _ = writeln!(
        md,
        "| CPU | **{cpu_pass} / {total} exported cases pass** ({} ops); **{cpu_relaxed} / {total} pass relaxed** |",
        by_op.len()
    );
    let _ = writeln!(
        md,
        "| GPU | **{gpu_pass} / {gpu_placed} cases the GPU places pass**, {} fail ({gpu_listed} listed in \
         `expected_gpu_pass.txt`); {} run entirely on CPU phases; {} not run ({} fail on the CPU, {} pass there \
         but are not in `expected_pass.txt`) |\n",
        gpu_placed - gpu_pass,
        gpu_run - gpu_placed,
        total - gpu_run,
        count(&|c, g| g.is_none() && c.level() == 0),
        unlisted.count(),
    );
    let _ = writeln!(
        md,
        "**CPU.** Failures that are only planning policy (an opset outside 9..=28; axes, pads, scales… given as \
         graph inputs rather than constants) are run again relaxed — the opset loaded as the nearest \
         supported one, the inputs after the first (if need be, all inputs) made constants — to test the \
         op's numbers anyway; `passed relaxed` counts the passes plus those. Refused by design: \
         `test_training_dropout*` (training-mode Dropout is random). Known divergences that are not \
         qplay bugs: `test_resize_downsample_scales_linear_align_corners` and `…_cubic_align_corners` follow the \
         ONNX reference, which computes align_corners from the unrounded scaled length, whereas qplay matches \
         onnxruntime (1 and 4 rather than 1 and 3.14; onnxruntime 1.32 differs from the cubic case's \
         expected output by the same 1.048).\n"
    );
    let _ = writeln!(
        md,
        "**GPU.** The GPU suite runs the cases of the CPU baseline (`expected_pass.txt`: a new CPU pass runs on the \
         GPU once blessed into it), in the mode the CPU passes them, with the same tolerances. A case counts as placed when the GPU executor puts at least one of its steps on the \
         GPU; its other steps, and every step of a case not placed, run on CPU phases (ops the GPU does not \
         implement, or tensors it does not take). Float functions that agree with the CPU only to rounding \
         (exp, tanh, division, …) go to the GPU only in plans without 8-bit tensors.\n"
    );
    let _ = writeln!(md, "## Per op\n");
    let _ = writeln!(
        md,
        "| op | cases | CPU passed | CPU passed relaxed | GPU placed | GPU passed |\n|---|---:|---:|---:|---:|---:|"
    );
    for (op, cases) in &by_op {
        let n = |f: &dyn Fn(&CpuCase, Option<&GpuCase>) -> bool| cases.iter().filter(|(_, c, g)| f(c, *g)).count();
        let _ = writeln!(
            md,
            "| {op} | {} | {} | {} | {} | {} |",
            cases.len(),
            n(&|c, _| c.level() == 2),
            n(&|c, _| c.level() >= 1),
            n(&|_, g| g.is_some_and(GpuCase::placed)),
            n(&|_, g| g.is_some_and(|g| g.placed() && g.result.is_ok())),
        );
    }
    let _ = writeln!(md, "\n## Per case\n");
    let _ = writeln!(md, "| op | case | CPU | GPU |\n|---|---|---|---|");
    for (op, cases) in &by_op {
        for (name, c, g) in cases {
            let _ = writeln!(md, "| {op} | `{name}` | {} | {} |", cpu_cell(c), gpu_cell(*g, not_run(name, c)));
        }
    }

    let skipped: BTreeMap<String, String> = std::fs::read(dir().join("skipped.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let (unsupported, other): (Vec<_>, Vec<_>) = skipped.iter().partition(|(_, r)| r.starts_with("unsupported op"));
    let _ = writeln!(
        md,
        "\n## Skipped cases\n\n{} cases were not exported ({} need ops qplay does not implement; the \
         others are listed below). Every skipped case and its reason is in `skipped.json`.\n",
        skipped.len(),
        unsupported.len()
    );
    let mut missing: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, r) in &unsupported {
        for op in r.trim_start_matches("unsupported op: ").split(", ") {
            *missing.entry(op).or_default() += 1;
        }
    }
    let _ = writeln!(
        md,
        "Unsupported ops (cases needing each): {}\n",
        missing.iter().map(|(op, n)| format!("{op} ({n})")).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(md, "| case | reason |\n|---|---|");
    for (case, reason) in &other {
        let _ = writeln!(md, "| `{case}` | {} |", short(reason));
    }
    write_if_changed("REPORT.md", &md);
}
