//! The ONNX backend node conformance suite on the GPU executor (lavapipe where there is no GPU),
//! with the same cases, modes and tolerances as the CPU suite (`crate/core/tests/conformance.rs`,
//! whose harness this shares). A case counts for the GPU when the executor places at least one
//! of its steps there; the rest of its steps run on CPU phases. Keeps the results in
//! `tests/conformance/gpu_results.tsv`, writes `tests/conformance/REPORT.md` (its GPU column; the
//! CPU column comes from the CPU suite's `cpu_results.tsv`), and fails when a case listed in
//! `tests/conformance/expected_gpu_pass.txt` no longer passes (`QPLAY_BLESS=1` rewrites it).

#[path = "../../core/tests/common/conformance.rs"]
mod harness;

use harness::{
    bless, catch_panic, cpu_baseline, dir, plan, read, read_list, run_case, short, write_gpu_results, write_report,
    GpuCase, Mode,
};
use qplay_gpu::{Gpu, GpuPlan, Placement};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[test]
fn onnx_node_conformance_on_the_gpu() {
    std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    let gpu = Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}"));
    let cases_dir = dir().join("cases");
    let mut cases: BTreeMap<String, GpuCase> = BTreeMap::new();
    // The cases the CPU passes (its baseline), in the mode it passes them: the GPU runs the same.
    let cpu = cpu_baseline();
    for (name, &level) in &cpu {
        let case = cases_dir.join(name);
        let Ok(bytes) = read(&case.join("meta.json")) else { continue };
        let meta: Value = serde_json::from_slice(&bytes).unwrap();
        let (mut on_gpu, mut steps) = (0, 0);
        let mut attempt = |mode| {
            let mut run = |g: &_, shapes: &[_], inputs: &[_]| {
                let p = Arc::new(plan(g, shapes)?);
                let mut gp = GpuPlan::new_blocking(&gpu, p).map_err(|e| format!("GPU plan error: {}", short(e)))?;
                on_gpu += gp.placement().iter().filter(|&&p| p == Placement::Gpu).count();
                steps += gp.placement().len();
                gp.run_blocking(inputs).map_err(|e| format!("GPU run error: {}", short(e)))
            };
            catch_panic(|| run_case(&case, &meta, mode, &mut run))
        };
        // As on the CPU: a relaxed case may need every input constant.
        let result = match level {
            2 => attempt(Mode::Strict),
            _ => attempt(Mode::Relaxed).or_else(|_| attempt(Mode::AllConstant)),
        };
        cases.insert(name.clone(), GpuCase { on_gpu, steps, result });
    }

    let passed: Vec<&String> = cases.iter().filter(|(_, c)| c.placed() && c.result.is_ok()).map(|(n, _)| n).collect();
    let n_placed = cases.values().filter(|c| c.placed()).count();
    eprintln!("GPU conformance: {} / {n_placed} placed cases pass", passed.len());

    write_gpu_results(&cases);
    let baseline_path = dir().join("expected_gpu_pass.txt");
    if bless() {
        let text: String = passed.iter().map(|n| format!("{n}\n")).collect();
        std::fs::write(&baseline_path, text).unwrap();
    }
    write_report();
    if bless() {
        return;
    }
    let ok: BTreeSet<&str> = passed.iter().map(|s| s.as_str()).collect();
    let reasons: BTreeMap<&str, String> = cases
        .iter()
        .map(|(n, c)| {
            let why = match &c.result {
                Ok(()) if !c.placed() => "no longer placed on the GPU".to_string(),
                Ok(()) => String::new(),
                Err(e) => e.clone(),
            };
            (n.as_str(), why)
        })
        .collect();
    let regressions: Vec<String> = read_list(&baseline_path)
        .into_iter()
        .filter(|c| !ok.contains(c.as_str()))
        .map(|c| format!("  {c}: {}", reasons.get(c.as_str()).map_or("case missing", |s| s.as_str())))
        .collect();
    assert!(
        regressions.is_empty(),
        "{} cases of expected_gpu_pass.txt no longer pass on the GPU:\n{}",
        regressions.len(),
        regressions.join("\n")
    );
}
