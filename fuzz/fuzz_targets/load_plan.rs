//! Fuzz target `load_plan`: arbitrary bytes → external data put inside (the input as every file
//! it names) and the ONNX loader → graph summary and detector-profile
//! guess → planning (graph rewrites, op building, shape inference, constant folding, liveness),
//! the way `qplay infer` / the wasm `WasmModel` and `Detector` prepare a model. Nothing is run on
//! runtime inputs. Every outcome must be `Ok` or a clean `Err`: a panic, an abort, a time-out or
//! an out-of-memory is a bug.
//!
//! The limits and the pipeline are in `fuzz/common/load_plan.rs`, which the regression tests
//! (`crate/core/tests/fuzz_regressions.rs`) share.
//!
//! Run with `cargo +nightly fuzz run load_plan -- -rss_limit_mb=2048 -timeout=10` (see
//! docs/fuzzing.md).

#![no_main]

#[path = "../common/load_plan.rs"]
mod load_plan;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // External data (`model.onnx.data`): the locations a model names, then the input itself as
    // every such file, put inside the model.
    let files = qplay_core::model::external_data_files(data);
    if !files.is_empty() {
        let map = files.into_iter().map(|f| (f, data.to_vec())).collect();
        let _ = qplay_core::model::inline_external_data(data, &map);
    }
    if let Ok(plan) = load_plan::load_plan(data) {
        for name in plan.output_names() {
            let _ = plan.fact(name);
        }
        let _ = plan.steps();
    }
});
