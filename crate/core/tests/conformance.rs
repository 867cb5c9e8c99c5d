//! ONNX backend node conformance on the CPU executor: runs every case exported by
//! `tests/conformance/export_cases.py` (the `onnx.backend.test.case.node` cases whose ops and
//! dtypes qplay supports), compares with the reference outputs the way the ONNX backend tests do
//! (numpy `allclose` with the case's rtol/atol, NaN equal to NaN; integers and bools exactly),
//! keeps the results in `tests/conformance/cpu_results.tsv`, writes `tests/conformance/REPORT.md`
//! (its CPU column; the GPU column comes from the GPU suite's `gpu_results.tsv`, see
//! `crate/gpu/tests/conformance.rs`), and fails when a case listed in
//! `tests/conformance/expected_pass.txt` no longer passes.
//!
//! The baseline lists `case` for a pass and `case (relaxed)` for a case that passes only when run
//! relaxed (see [`Mode`]); falling below either is a failure. New passes are printed and
//! reported, not failures: add them to the baseline with
//! `QPLAY_BLESS=1 cargo test -p qplay-core --test conformance` (which rewrites
//! `expected_pass.txt` and `supported_ops.txt` from this run).

#[path = "common/conformance.rs"]
mod harness;

use harness::{
    bless, catch_panic, cpu_baseline, dir, plan, read, read_list, run_case, short, write_cpu_results, write_report,
    CpuCase, Mode, RELAXED_PASS,
};
use qplay_core::ops::Registry;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// `supported_ops.txt` (which the export script reads) lists exactly the registry's op types.
#[test]
fn supported_ops_list_is_current() {
    let path = dir().join("supported_ops.txt");
    let ops: BTreeSet<String> = Registry::new().op_types().into_iter().map(String::from).collect();
    if bless() {
        let text: String = ops.iter().map(|o| format!("{o}\n")).collect();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let listed = read_list(&path);
    assert_eq!(
        listed,
        ops,
        "tests/conformance/supported_ops.txt is out of date: regenerate it with QPLAY_BLESS=1 cargo test -p qplay-core \
         --test conformance, then re-run tests/conformance/export_cases.py"
    );
}

#[test]
fn onnx_node_conformance() {
    let cases_dir = dir().join("cases");
    let mut names: Vec<String> = std::fs::read_dir(&cases_dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run tests/conformance/export_cases.py)", cases_dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("meta.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no cases under {}", cases_dir.display());

    let mut cases: BTreeMap<String, CpuCase> = BTreeMap::new();
    for name in &names {
        let case = cases_dir.join(name);
        let meta: Value = serde_json::from_slice(&read(&case.join("meta.json")).unwrap()).unwrap();
        let op = meta["op"].as_str().unwrap_or("?").to_string();
        let attempt = |mode| {
            let mut cpu = |g: &_, shapes: &[_], inputs: &[_]| {
                plan(g, shapes)?.run(inputs).map_err(|e| format!("run error: {}", short(e)))
            };
            catch_panic(|| run_case(&case, &meta, mode, &mut cpu))
        };
        let result = attempt(Mode::Strict).map_err(|e| {
            let policy = e.contains("opset") || e.contains("at run time") || e.contains("must be a constant");
            if !policy {
                return e;
            }
            let constness = |e: &str| e.contains("at run time") || e.contains("must be a constant");
            match attempt(Mode::Relaxed).or_else(|r| if constness(&r) { attempt(Mode::AllConstant) } else { Err(r) }) {
                Ok(()) => format!("{e}{RELAXED_PASS}"),
                Err(r) => format!("{e} — relaxed: {r}"),
            }
        });
        cases.insert(name.clone(), CpuCase { op, result });
    }

    // The baseline lists `case` for level 2 and `case (relaxed)` for 1 (see [`CpuCase::level`]),
    // so the ops' numbers are guarded behind the policy failures too.
    let level: BTreeMap<&str, u8> = cases.iter().map(|(n, c)| (n.as_str(), c.level())).collect();
    let line = |n: &str, l: u8| if l == 2 { n.to_string() } else { format!("{n} (relaxed)") };
    let baseline = cpu_baseline();
    let regressions: Vec<&String> = baseline
        .iter()
        .filter(|(c, &need)| level.get(c.as_str()).copied().unwrap_or(0) < need)
        .map(|(c, _)| c)
        .collect();
    let new_passes: Vec<String> =
        level.iter().filter(|(c, &l)| l > baseline.get(**c).copied().unwrap_or(0)).map(|(c, &l)| line(c, l)).collect();

    write_cpu_results(&cases);
    if bless() {
        let text: String = level.iter().filter(|(_, &l)| l > 0).map(|(c, &l)| line(c, l) + "\n").collect();
        std::fs::write(dir().join("expected_pass.txt"), text).unwrap();
    }
    write_report();

    let passed = level.values().filter(|&&l| l == 2).count();
    eprintln!("conformance: {passed} / {} cases pass", cases.len());
    let mut by_op: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for c in cases.values() {
        let e = by_op.entry(c.op.as_str()).or_default();
        e.0 += usize::from(c.result.is_ok());
        e.1 += 1;
    }
    for (op, (ok, n)) in &by_op {
        eprintln!("  {op}: {ok}/{n}");
    }
    if bless() {
        return;
    }
    if !new_passes.is_empty() {
        eprintln!(
            "{} cases pass (or pass relaxed) beyond what expected_pass.txt lists (add them with QPLAY_BLESS=1):\n  {}",
            new_passes.len(),
            new_passes.join("\n  ")
        );
    }
    let reasons: BTreeMap<&str, &str> =
        cases.iter().filter_map(|(n, c)| c.result.as_ref().err().map(|e| (n.as_str(), e.as_str()))).collect();
    assert!(
        regressions.is_empty(),
        "{} cases of expected_pass.txt no longer pass (or no longer pass relaxed):\n{}",
        regressions.len(),
        regressions
            .iter()
            .map(|c| format!("  {c}: {}", reasons.get(c.as_str()).copied().unwrap_or("case missing")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
