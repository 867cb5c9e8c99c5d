//! Fuzz target `load_tflite`: arbitrary bytes, stamped with TFLite's file identifier (`TFL3` at
//! bytes 4..8) so that every input takes the TFLite path → the `.tflite` loader (the planus
//! reader generated from TFLite's schema, buffers, layout, op mapping) → the same summary,
//! profile guess and planning as `load_plan`, and the integer form of what loads (`qplay convert
//! --form integer`'s rewrite). Every outcome must be `Ok` or a clean `Err`.
//!
//! Run with `cargo +nightly fuzz run load_tflite -- -rss_limit_mb=2048 -timeout=10`, seeded
//! with the models of `tests/fixtures/tflite/` and `tests/fixtures/tflite_ssd/` (the detection
//! op and its FlexBuffer options; see docs/fuzzing.md).

#![no_main]

#[path = "../common/load_plan.rs"]
mod load_plan;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if bytes.len() >= 8 {
        bytes[4..8].copy_from_slice(b"TFL3");
    }
    if let Ok(plan) = load_plan::load_plan(&bytes) {
        for name in plan.output_names() {
            let _ = plan.fact(name);
        }
        let _ = plan.steps();
    }
    if let Ok(g) = qplay_core::model::load_model(&bytes) {
        let _ = qplay_core::model::integer_form::integer_form(&g);
    }
});
