//! Model outputs → scored boxes in model-input pixels, one decoder per file.
//!
//! Every decoder checks the shapes it reads against what it expects and rejects non-finite
//! values, so a wrong profile or a broken (e.g. badly quantized) model gives an error that says
//! so instead of garbage boxes. Boxes are returned unclipped, in input pixels; [`super::detect`]
//! runs NMS and maps them to the image.

pub mod blazeface;
pub mod centernet;
pub mod detections;
pub mod dfl;
pub mod end2end;
pub mod grid;
pub mod ssd;
pub mod yolov5;
pub mod yolov8;

use super::nms::Candidate;
use super::profile::{Decoder, Profile, ScoreFn};
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
        Decoder::End2end(d) => end2end::decode(d, profile, outputs),
        Decoder::Detections(d) => detections::decode(d, profile, outputs),
        Decoder::Dfl(d) => dfl::decode(d, profile, outputs),
        Decoder::Grid(d) => grid::decode(d, profile, outputs),
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

/// A row of class values as scores, into `out` (as long as `row`): each through a sigmoid, or
/// a softmax over the row.
pub(crate) fn class_scores(f: ScoreFn, row: &[f32], out: &mut [f32]) {
    match f {
        ScoreFn::Sigmoid => out.iter_mut().zip(row).for_each(|(p, &x)| *p = sigmoid(x)),
        ScoreFn::Softmax => {
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for (p, &x) in out.iter_mut().zip(row) {
                *p = (x - m).exp();
                sum += *p;
            }
            out.iter_mut().for_each(|p| *p /= sum);
        }
    }
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

/// The factors that bring YOLO box values to input pixels: `[1, 1]` for pixels, the input's
/// `[width, height]` for fractions of it (Ultralytics' TFLite and TF exports normalize their
/// boxes). `normalized: None` decides by `max_center`, the largest |centre| over all rows: the
/// rows cover the whole input's grid, so pixel centres reach its size while fractions stay
/// within 0…1 — fractions when every centre lies within ±2.
pub(crate) fn yolo_box_scale(normalized: Option<bool>, [w, h]: [usize; 2], max_center: f32) -> [f32; 2] {
    let fractions = normalized.unwrap_or(max_center <= 2.0 && w.min(h) >= 32);
    if fractions {
        [w as f32, h as f32]
    } else {
        [1.0, 1.0]
    }
}

/// A box from its centre and size.
pub(crate) fn cxcywh(cx: f32, cy: f32, w: f32, h: f32) -> [f32; 4] {
    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
}

/// Where the class scores and keypoints sit in a YOLO box's values: `lead` values (box, and
/// v5's objectness) come first, then the classes, then the keypoints, then anything else.
/// Returns `(classes, keypoint offset)`; when they do not fit, the error `shape_error` makes of
/// the reason.
pub(crate) fn yolo_split(
    width: usize,
    lead: usize,
    classes: Option<usize>,
    keypoints: usize,
    dims: usize,
    shape_error: impl FnOnce(String) -> DetectError,
) -> Result<(usize, usize), DetectError> {
    let kp = keypoints * dims;
    let avail = width.checked_sub(lead + kp).filter(|&c| c > 0);
    let c = match (classes, avail) {
        (Some(c), Some(a)) if c >= 1 && c <= a => c,
        (None, Some(a)) => a,
        _ => {
            return Err(shape_error(format!(
            "{lead} box values + {} classes + {keypoints} keypoints × {dims} = more than the {width} values per box",
            classes.map_or("≥ 1".to_string(), |c| c.to_string())
        )))
        }
    };
    Ok((c, lead + c))
}

/// Keypoints `x, y` and (when `dims` is 3) their scores, read by `at(k)` for value `k` of the
/// keypoint block.
pub(crate) fn read_keypoints(keypoints: usize, dims: usize, at: impl Fn(usize) -> f32) -> (Vec<[f32; 2]>, Vec<f32>) {
    let pts = (0..keypoints).map(|k| [at(k * dims), at(k * dims + 1)]).collect();
    let scores = if dims == 3 { (0..keypoints).map(|k| at(k * dims + 2)).collect() } else { Vec::new() };
    (pts, scores)
}

/// Cells `(x, y, stride)` of the grids of `strides` over a `[w, h]` input, finest first, each
/// row-major with `⌊h/s⌋ × ⌊w/s⌋` cells (YOLOX's `demo_postprocess`); empty for no strides.
pub(crate) fn grid_cells(strides: &[usize], [w, h]: [usize; 2]) -> Vec<(f32, f32, f32)> {
    let mut out = Vec::new();
    for &s in strides.iter().filter(|&&s| s > 0) {
        for y in 0..h / s {
            for x in 0..w / s {
                out.push((x as f32, y as f32, s as f32));
            }
        }
    }
    out
}
