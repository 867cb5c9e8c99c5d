//! What the `load_plan` and `load_tflite` fuzz targets do with one input — load (ONNX or
//! TFLite, picked by the file identifier) with small limits, summarise, guess a detector profile,
//! plan — shared by the targets (`fuzz/fuzz_targets/`) and their regression tests
//! (`crate/core/tests/fuzz_regressions.rs`), which include this file with `#[path]`.
#![allow(dead_code)] // each includer uses its own part

use qplay_core::detect::infer_profile;
use qplay_core::model::{load_model_with_limits, Limits, ModelError, Plan, PlanOptions, Summary};
use qplay_core::ops::Registry;

/// Tensors of at most 4 Mi elements (16 MiB of float32): legal models with huge tensors would
/// otherwise just exhaust the fuzzer's memory.
pub const MAX_ELEMENTS: usize = 4 << 20;

/// Constant folding's budget: 16 Mi elements and 256 Mi operations in all (the defaults, 256 Mi
/// and 1 Gi, would let one input run for seconds and hold gigabytes).
pub const MAX_FOLD_ELEMENTS: u64 = 16 << 20;
pub const MAX_FOLD_WORK: u64 = 256 << 20;

/// Size given to a dynamic (`?`) input dimension.
pub const DYNAMIC_DIM: usize = 2;

/// The target's loading limits: 4 MiB files, [`MAX_ELEMENTS`] per tensor, 10,000 nodes.
pub const LIMITS: Limits = Limits { max_file_bytes: 4 << 20, max_tensor_elements: MAX_ELEMENTS, max_nodes: 10_000 };

/// Loads `bytes` with [`LIMITS`] and plans them (see [`load_plan_with`]).
pub fn load_plan(bytes: &[u8]) -> Result<Plan, ModelError> {
    load_plan_with(bytes, &LIMITS)
}

/// Loads `bytes` with `limits`, summarises the graph, guesses its detector profile and plans it,
/// every input at its static dims with dynamic ones fixed to [`DYNAMIC_DIM`], planning held to
/// the same element limit and constant folding to the budget above.
pub fn load_plan_with(bytes: &[u8], limits: &Limits) -> Result<Plan, ModelError> {
    let graph = load_model_with_limits(bytes, limits)?;
    let registry = Registry::new();
    let summary = Summary::of(&graph, &registry);
    let _ = format!("{summary:?}");
    let _ = infer_profile(&graph.inputs, &graph.outputs);
    let shapes: Vec<(String, Vec<usize>)> = graph
        .inputs
        .iter()
        .map(|v| (v.name.clone(), v.shape.iter().map(|d| d.unwrap_or(DYNAMIC_DIM)).collect()))
        .collect();
    let options = PlanOptions {
        max_tensor_elements: limits.max_tensor_elements,
        max_fold_elements: MAX_FOLD_ELEMENTS,
        max_fold_work: MAX_FOLD_WORK,
        ..PlanOptions::default()
    };
    let plan = Plan::with_options(&graph, &registry, &shapes, options)?;
    let _ = format!("{plan:?}");
    Ok(plan)
}
