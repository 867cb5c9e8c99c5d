//! A user's own INT8 model compared with the FP32 model in use, on the page's images: both
//! detectors run each image on the CPU and the core's [`Comparison`] accumulates their
//! detections and outputs (what `qplay compare` measures).

use crate::detector::WasmDetector;
use crate::{err, to_js};
use qplay_core::detect::agreement::Comparison;
use wasm_bindgen::prelude::*;

/// The comparison of two loaded detectors, image by image.
#[wasm_bindgen]
#[derive(Default)]
pub struct WasmComparison {
    inner: Comparison,
}

#[wasm_bindgen]
impl WasmComparison {
    /// An empty comparison.
    #[wasm_bindgen(constructor)]
    pub fn new() -> WasmComparison {
        WasmComparison::default()
    }

    /// Runs `reference` (the FP32 model) and `candidate` (the INT8 one) on one RGBA image and
    /// adds their outputs and detections.
    pub fn add(
        &mut self,
        reference: &mut WasmDetector,
        candidate: &mut WasmDetector,
        width: usize,
        height: usize,
        rgba: &[u8],
    ) -> Result<(), JsValue> {
        let a = reference.run_image(width, height, rgba).map_err(err)?;
        let b = candidate.run_image(width, height, rgba).map_err(|e| err(format!("the INT8 model: {e}")))?;
        self.inner.add((&a.0, a.1), (&b.0, b.1));
        Ok(())
    }

    /// `{images, map50, output_sqnr_db, reference_detections, candidate_detections}`.
    pub fn summary(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.summary())
    }
}
