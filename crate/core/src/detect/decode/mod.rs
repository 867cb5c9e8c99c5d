//! Model outputs → scored boxes in model-input pixels, one decoder per file.
//!
//! Every decoder checks the shapes it reads against what it expects and rejects non-finite
//! values, so a wrong profile or a broken (e.g. badly quantized) model gives an error that says
//! so instead of garbage boxes. Boxes are returned unclipped, in input pixels; [`super::detect`]
//! runs NMS and maps them to the image.

pub mod blazeface;
pub mod centernet;
pub mod ssd;
pub mod yolov5;
pub mod yolov8;

use super::nms::Candidate;
use super::profile::{Decoder, Profile};
use super::DetectError;
use crate::model::Tensor;

/// Runs the profile's decoder on named outputs, keeping candidates scoring at least
/// `profile.score_threshold`. Validates the profile first.
pub fn decode(profile: &Profile, outputs: &[(String, Tensor)]) -> Result<Vec<Candidate>, DetectError> {
    profile.validate()?;
    match &profile.decoder {
        Decoder::SsdAnchors(d) => ssd::decode(d, profile, outputs),
        Decoder::Yolov5(d) => yolov5::decode(d, profile, outputs),
        Decoder::Yolov8(d) => yolov8::decode(d, profile, outputs),
        Decoder::Centernet(d) => centernet::decode(d, profile, outputs),
        Decoder::Blazeface(d) => blazeface::decode(d, profile, outputs),
    }
}

/// A float output by name, checked to be float32 and free of NaN/infinity, with its shape.
pub(crate) fn output<'a>(
    outputs: &'a [(String, Tensor)],
    name: &str,
    decoder: &'static str,
) -> Result<(&'a [usize], &'a [f32]), DetectError> {
    let Some((_, t)) = outputs.iter().find(|(n, _)| n == name) else {
        return Err(DetectError::MissingOutput {
            decoder,
            name: name.to_string(),
            available: outputs.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", "),
        });
    };
    let data = t.as_f32().map_err(|_| DetectError::OutputDType { name: name.to_string(), dtype: t.dtype() })?;
    // Tensor's fields are public, so shape and data may disagree (or the shape overflow).
    if crate::model::numel(&t.shape).ok() != Some(data.len()) {
        return Err(DetectError::OutputShape {
            decoder,
            name: name.to_string(),
            got: t.shape.clone(),
            expected: format!("a shape that matches its {} values", data.len()),
        });
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(DetectError::NonFinite { name: name.to_string(), index: i, value: data[i] });
    }
    Ok((&t.shape, data))
}

/// A shape error for `decoder` reading `name`.
pub(crate) fn shape_error(
    decoder: &'static str,
    name: &str,
    got: &[usize],
    expected: impl Into<String>,
) -> DetectError {
    DetectError::OutputShape { decoder, name: name.to_string(), got: got.to_vec(), expected: expected.into() }
}

/// `1 / (1 + e^−x)`.
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Index and value of the first maximum; `None` for an empty slice.
pub(crate) fn argmax(v: &[f32]) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &x) in v.iter().enumerate() {
        if best.is_none_or(|(_, b)| x > b) {
            best = Some((i, x));
        }
    }
    best
}

/// `cx, cy, w, h` → `x1, y1, x2, y2`.
pub(crate) fn cxcywh(cx: f32, cy: f32, w: f32, h: f32) -> [f32; 4] {
    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
}
