//! The wasm facade: thin `#[wasm_bindgen]` wrappers over `qplay-core`. Plain data in (numbers,
//! typed arrays, small objects), plain data out; every error becomes a JS `Error` whose message
//! says what to do.

use qplay_core::quant::{
    self, calibration_ranges, error_metrics, fake_quantize_slice, ExplainRequest, Histogram, QParams, QType,
    SampleKind, Scheme,
};
use serde::Serialize;
use wasm_bindgen::prelude::*;

mod compare;
mod detector;
mod files;
mod gpu;
mod qat;
pub use compare::WasmComparison;
pub use detector::{inspect_model, model_weight, WasmDetector, WasmModel, WasmQuantizer};
pub use files::{external_data_files, inline_external_data};
pub use gpu::WasmGpu;
pub use qat::WasmQat;

/// Installs the panic hook so an unexpected panic shows up in the console with a stack trace.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The crate version, to show in the page.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The threaded build (feature `threads`, www/pkg-threads/): `initThreadPool(n)` starts rayon's
/// global pool on `n` Web Workers sharing this module's memory; it resolves once they run. Call it
/// once, from a worker (the page's main thread may not block), before any other call.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// How many threads the CPU kernels use: the pool's size in the threaded build once
/// `initThreadPool` has resolved, 1 in the single-thread build.
#[wasm_bindgen(js_name = threadCount)]
pub fn thread_count() -> usize {
    qplay_core::parallel::threads()
}

/// The vector instructions the int8 kernels run on: `"relaxed-simd"` (the module built with
/// relaxed SIMD, www/pkg-relaxed/ or www/pkg-threads-relaxed/, on an engine whose four-byte dot
/// product is exact: sixteen multiply-adds per instruction) or `"simd128"`. Either gives the
/// same bits.
#[wasm_bindgen(js_name = simdName)]
pub fn simd_name() -> String {
    qplay_core::ops::quant::simd::simd_name().to_string()
}

pub(crate) fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(err)
}

/// An error with a kind: its `code` is what JS callers branch on, never the message text.
pub(crate) trait Coded: std::fmt::Display {
    /// A stable name for the kind (`error` when there is nothing more specific).
    fn code(&self) -> &'static str {
        "error"
    }
}

impl Coded for qplay_core::model::ModelError {
    fn code(&self) -> &'static str {
        qplay_core::model::ModelError::code(self)
    }
}

impl Coded for qplay_core::detect::DetectError {
    fn code(&self) -> &'static str {
        qplay_core::detect::DetectError::code(self)
    }
}

impl Coded for qplay_core::Error {
    fn code(&self) -> &'static str {
        qplay_core::Error::code(self)
    }
}

impl Coded for qplay_core::quant::QuantError {
    fn code(&self) -> &'static str {
        "quantization"
    }
}

impl Coded for qplay_core::train::TrainError {
    fn code(&self) -> &'static str {
        qplay_core::train::TrainError::code(self)
    }
}

impl Coded for qplay_gpu::GpuError {
    fn code(&self) -> &'static str {
        qplay_gpu::GpuError::code(self)
    }
}

impl Coded for String {}
impl Coded for &str {}
impl Coded for serde_wasm_bindgen::Error {}

/// A JS `Error` with the message (which says what to do) and a `code` property naming the
/// kind (`bad-model`, `unsupported-op`, `unsupported-feature`, `mismatch`, `gpu-lost`, …; see the
/// core's `code()` methods).
pub(crate) fn err(e: impl Coded) -> JsValue {
    coded(e.code(), e)
}

/// A JS `Error` with `message` and the `code` property.
pub(crate) fn coded(code: &'static str, message: impl std::fmt::Display) -> JsValue {
    let js = js_sys::Error::new(&message.to_string());
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&js, &JsValue::from_str("code"), &JsValue::from_str(code));
    js.into()
}

/// `explain({min, max, bits, signed, symmetric, restricted, value, scale_decimals})`: the
/// walkthrough behind `qplay explain`, with the grid of representable values when it has at
/// most 256 codes.
#[wasm_bindgen]
pub fn explain(request: JsValue) -> Result<JsValue, JsValue> {
    let req: ExplainRequest = serde_wasm_bindgen::from_value(request).map_err(|e| err(format!("bad request: {e}")))?;
    let e = quant::explain(&req).map_err(err)?;
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        e: &'a quant::Explanation,
        grid: Vec<f64>,
    }
    let levels = (e.qmax - e.qmin + 1) as usize;
    let grid =
        if levels <= 256 { (e.qmin..=e.qmax).map(|q| (q - e.zero_point) as f64 * e.scale).collect() } else { vec![] };
    to_js(&Out { e: &e, grid })
}

/// A deterministic sample tensor: `kind` is uniform, gaussian, outliers or relu.
#[wasm_bindgen(js_name = sampleTensor)]
pub fn sample_tensor(kind: &str, n: usize, seed: u32) -> Result<Vec<f32>, JsValue> {
    let k = SampleKind::parse(kind)
        .ok_or_else(|| err(format!("unknown sample `{kind}`: use uniform, gaussian, outliers or relu")))?;
    if n == 0 || n > 1 << 24 {
        return Err(err("sample size must be between 1 and 16,777,216"));
    }
    Ok(quant::sample_tensor(k, n, seed as u64))
}

#[derive(Serialize)]
struct MethodResult {
    method: &'static str,
    lo: f32,
    hi: f32,
    scale: f32,
    zero_point: i32,
    clipped_fraction: f64,
    metrics: quant::ErrorMetrics,
}

#[derive(Serialize)]
struct Analysis {
    count: usize,
    min: f32,
    max: f32,
    histogram: Histogram,
    methods: Vec<MethodResult>,
}

/// Analyses a tensor for a quantization type: its histogram (`bins` bins), and for every
/// calibration method the range it picks, Δ and Z, the fraction of values clipped and the error
/// metrics of the fake-quantized tensor.
#[wasm_bindgen(js_name = analyzeTensor)]
pub fn analyze_tensor(
    data: &[f32],
    bits: u8,
    signed: bool,
    symmetric: bool,
    restricted: bool,
    bins: usize,
) -> Result<JsValue, JsValue> {
    let qtype = QType::new(bits, signed, restricted && signed).map_err(err)?;
    let scheme = if symmetric { Scheme::Symmetric } else { Scheme::Asymmetric };
    let (min, max) = quant::min_max(data).map_err(err)?;
    let histogram = Histogram::of(data, bins.clamp(1, 4096)).map_err(err)?;
    let mut methods = Vec::new();
    for (m, lo, hi) in calibration_ranges(data, qtype, scheme).map_err(err)? {
        let p: QParams = quant::params_or_unit(lo as f64, hi as f64, qtype, scheme).map_err(err)?;
        let (rlo, rhi) = p.representable(qtype);
        let clipped = data.iter().filter(|&&v| v < rlo - p.scale / 2.0 || v > rhi + p.scale / 2.0).count();
        let fq = fake_quantize_slice(data, p, qtype);
        methods.push(MethodResult {
            method: m.name(),
            lo,
            hi,
            scale: p.scale,
            zero_point: p.zero_point,
            clipped_fraction: clipped as f64 / data.len() as f64,
            metrics: error_metrics(data, &fq).map_err(err)?,
        });
    }
    to_js(&Analysis { count: data.len(), min, max, histogram, methods })
}
