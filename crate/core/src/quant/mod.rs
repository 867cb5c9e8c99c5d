//! Quantization math: the single source of truth for every number qplay shows.
//!
//! - [`params`]: [`QType`], [`Scheme`], [`QParams`] — ranges to scale and zero-point, quantize and
//!   dequantize with ONNX semantics, per-tensor and per-channel.
//! - [`metrics`]: MSE, max abs error, SQNR, cosine similarity, histograms.
//! - [`observers`]: calibration (MinMax, moving-average MinMax, Percentile, Entropy, MSE).
//! - [`explain`](mod@explain): the step-by-step walkthrough behind `qplay explain` and the explorer.
//! - [`samples`]: deterministic sample tensors.

mod entropy;
pub mod explain;
pub mod metrics;
pub mod observers;
pub mod params;
pub mod samples;

pub use explain::{explain, ExplainRequest, Explanation};
pub use metrics::{error_metrics, ErrorMetrics, Histogram};
pub use observers::{calibration_ranges, histogram_range, Calibration, Observer};
pub use params::*;
pub use samples::{sample_tensor, Rng, SampleKind};

/// Everything that can go wrong in the quantization math. Each message says what to change.
#[allow(missing_docs)] // the error messages document the variants
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantError {
    #[error("bit width {0} is not supported: use 2 to 8, or 16")]
    Bits(u8),
    #[error("the range [{min}, {max}] is not finite: give finite numbers for min and max")]
    NonFinite { min: f64, max: f64 },
    #[error("the range is inverted (min {min} > max {max}): swap min and max")]
    Inverted { min: f64, max: f64 },
    #[error("min equals max ({0}): a range needs two different ends")]
    EmptyRange(f64),
    #[error("the scale {0} is not a positive finite number: the range is too small or too large for this type")]
    ScaleOutOfRange(f64),
    #[error("zero-point {zero_point} is outside the type's codes {qmin}..{qmax}")]
    ZeroPoint { zero_point: i32, qmin: i32, qmax: i32 },
    #[error("the value {0} is not a finite number")]
    NonFiniteValue(f64),
    #[error("the tensor holds NaN or infinite values: fix the data (or the model that produced it) first")]
    NonFiniteData,
    #[error("the tensor is empty")]
    EmptyTensor,
    #[error("the two tensors have different lengths ({0} and {1})")]
    LengthMismatch(usize, usize),
    #[error("axis {axis} is out of range for a tensor of rank {rank}")]
    Axis { axis: usize, rank: usize },
    #[error("the shape holds {numel} elements but the data has {len}")]
    ShapeData { len: usize, numel: usize },
    #[error("{params} per-channel parameters given for {channels} channels along axis {axis}")]
    ChannelMismatch { params: usize, channels: usize, axis: usize },
    #[error("no calibration data was observed: give at least one calibration input")]
    NoCalibrationData,
    #[error("unknown calibration method `{0}`: use minmax, ema, percentile, entropy or mse")]
    UnknownMethod(String),
    #[error("--scale-decimals {0} is out of range: use 0 to 12")]
    Decimals(u32),
}
