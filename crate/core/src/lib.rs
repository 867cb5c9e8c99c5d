//! qplay-core: the quantization playground's engine.
//!
//! The modules follow the data flow: [`quant`] (the math) → [`model`] (ONNX in, graph IR,
//! planning) → [`ops`] (CPU reference kernels, one op per file) → [`ptq`] (post-training
//! quantization to QDQ) → [`train`] (reverse mode for quantization-aware training) →
//! [`detect`] (pre/post-processing).
//! The wasm facade (`qplay-wasm`) and the CLI (`qplay-cli`) are thin layers over this crate.

#![warn(missing_docs)]

pub mod detect;
pub mod model;
pub mod ops;
pub mod parallel;
pub mod ptq;
pub mod quant;
pub mod train;

/// Any error from loading a model to drawing boxes; each message says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Loading, planning or running the model.
    #[error(transparent)]
    Model(#[from] model::ModelError),
    /// Pre-processing or decoding.
    #[error(transparent)]
    Detect(#[from] detect::DetectError),
    /// Quantization math.
    #[error(transparent)]
    Quant(#[from] quant::QuantError),
}

impl Error {
    /// A stable name for the kind of error, for callers that branch on it instead of reading
    /// the message (the page gets it as the JS error's `code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Model(e) => e.code(),
            Error::Detect(e) => e.code(),
            Error::Quant(_) => "quantization",
        }
    }
}
