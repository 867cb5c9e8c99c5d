//! Fuzz target `load_plan`: arbitrary bytes → ONNX loader → graph summary and detector-profile
//! guess → planning (graph rewrites, op building, shape inference, constant folding, liveness),
//! the way `qplay infer` / the wasm `WasmModel` and `Detector` prepare a model. Nothing is run on
//! runtime inputs. Every outcome must be `Ok` or a clean `Err`: a panic, an abort, a time-out or
//! an out-of-memory is a bug.
//!
//! Run with `cargo +nightly fuzz run load_plan -- -rss_limit_mb=2048 -timeout=10` (see
//! docs/fuzzing.md).

#![no_main]

use libfuzzer_sys::fuzz_target;
use qplay_core::detect::infer_profile;
use qplay_core::model::{load_onnx_with_limits, Limits, Plan, PlanOptions, Summary};
use qplay_core::ops::Registry;

/// Tensors of at most 4 Mi elements (16 MiB of float32): legal models with huge tensors would
/// otherwise just exhaust the fuzzer's memory.
const MAX_ELEMENTS: usize = 4 << 20;

/// Constant folding's budget: 16 Mi elements and 256 Mi operations in all (the defaults, 256 Mi
/// and 1 Gi, would let one input run for seconds and hold gigabytes).
const MAX_FOLD_ELEMENTS: u64 = 16 << 20;
const MAX_FOLD_WORK: u64 = 256 << 20;

/// Size given to a dynamic (`?`) input dimension.
const DYNAMIC_DIM: usize = 2;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_file_bytes: 4 << 20, max_tensor_elements: MAX_ELEMENTS, max_nodes: 10_000 };
    let Ok(graph) = load_onnx_with_limits(data, &limits) else { return };
    let registry = Registry::new();
    let summary = Summary::of(&graph, &registry);
    let _ = format!("{summary:?}");
    let _ = infer_profile(&graph.inputs, &graph.outputs);
    // Every input gets a concrete shape: its static dims, dynamic ones fixed to DYNAMIC_DIM.
    let shapes: Vec<(String, Vec<usize>)> = graph
        .inputs
        .iter()
        .map(|v| (v.name.clone(), v.shape.iter().map(|d| d.unwrap_or(DYNAMIC_DIM)).collect()))
        .collect();
    let options = PlanOptions {
        max_tensor_elements: MAX_ELEMENTS,
        max_fold_elements: MAX_FOLD_ELEMENTS,
        max_fold_work: MAX_FOLD_WORK,
        ..PlanOptions::default()
    };
    if let Ok(plan) = Plan::with_options(&graph, &registry, &shapes, options) {
        let _ = format!("{plan:?}");
        for name in plan.output_names() {
            let _ = plan.fact(name);
        }
        let _ = plan.steps();
    }
});
