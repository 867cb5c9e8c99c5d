//! qplay-core: the quantization playground's engine.
//!
//! The modules follow the data flow: [`quant`] (the math) → [`model`] (ONNX in, graph IR,
//! planning) → [`ops`] (CPU reference kernels, one op per file) → [`detect`] (pre/post-processing).
//! The wasm facade (`qplay-wasm`) and the CLI (`qplay-cli`) are thin layers over this crate.

#![warn(missing_docs)]

pub mod detect;
pub mod model;
pub mod ops;
pub mod quant;
