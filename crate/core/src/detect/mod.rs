//! Detection: model profiles, pre-processing (resize, letterbox, normalise), decoders and NMS.
//!
//! The flow for one frame:
//! 1. [`preprocess()`] turns RGBA pixels into the model's input tensor and a [`Transform`];
//! 2. the model runner (not this module) produces named output tensors;
//! 3. [`detect`] decodes them with the profile's [`Decoder`], runs class-aware greedy
//!    [`nms`](nms::nms) and maps the boxes back to image pixels.
//!
//! [`auto::infer_profile`] proposes a [`Profile`] for a model that has none, saying what it
//! assumed.

pub mod agreement;
pub mod auto;
pub mod aux;
pub mod decode;
pub mod meta;
pub mod nms;
pub mod pipeline;
pub mod preprocess;
pub mod probe;
pub mod profile;

pub use auto::{infer_profile, infer_profile_for, AutoProfile};
pub use pipeline::Detector;
pub use preprocess::{preprocess, preprocess_into, resize_plan, ResizePlan, Transform};
pub use profile::{
    coco80_labels, coco90_labels, AuxInput, AuxKind, AxisOrder, BlazeFace, BoxEncoding, BoxFormat, CenterNet,
    ColorOrder, Decoder, Detections, Dfl, End2End, Grid, GridBox, LandmarkEncoding, Layout, Profile, Resize, ScoreFn,
    SsdAnchors, Yolo, COCO80,
};

use crate::model::{DType, Tensor};
use serde::{Deserialize, Serialize};

/// One detected object, in original image pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Class index into [`Profile::labels`] (the background class, if any, is not counted).
    pub class: usize,
    /// Class name (`class N` when the profile has no label for it).
    pub label: String,
    /// Score in 0..1.
    pub score: f32,
    /// `x1, y1, x2, y2` in original image pixels, clipped to the image.
    pub bbox: [f32; 4],
    /// Landmarks `x, y` in original image pixels (BlazeFace: eyes, nose tip, mouth, ears);
    /// empty for decoders without them. Not clipped: a landmark may lie outside the frame.
    pub keypoints: Vec<[f32; 2]>,
    /// Per-keypoint visibility in 0..1 (pose models), same order as `keypoints`; empty when the
    /// model gives none. Drawers skip keypoints below 0.5, as Ultralytics does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keypoint_scores: Vec<f32>,
}

/// Everything that can go wrong between pixels and boxes. Messages say what to do.
#[allow(missing_docs)] // the error messages document the variants
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectError {
    #[error("the image is {width}×{height} pixels: give an image with at least one pixel")]
    EmptyImage { width: usize, height: usize },
    #[error("the RGBA data has {len} bytes but a {width}×{height} image needs width × height × 4: pass the pixels of that image as RGBA (4 bytes per pixel)")]
    RgbaLength { width: usize, height: usize, len: usize },
    #[error("the {decoder} decoder reads output `{name}`, which the model does not produce (its outputs: {available}): set the decoder's output names in the profile")]
    MissingOutput { decoder: &'static str, name: String, available: String },
    #[error("output `{name}` is {dtype:?}: detection decoders read float32 outputs; dequantize the model's outputs")]
    OutputDType { name: String, dtype: DType },
    #[error("output `{name}` has shape {got:?} but the {decoder} decoder expects {expected}; pick the decoder that matches the model, or fix the profile")]
    OutputShape { decoder: &'static str, name: String, got: Vec<usize>, expected: String },
    #[error("output `{name}` holds {value} at index {index}: the model produced invalid numbers (often a quantization range that is too narrow); check the model's outputs in float32")]
    NonFinite { name: String, index: usize, value: f32 },
    #[error("invalid profile: {0}")]
    Profile(String),
    #[error("cannot infer a detection profile: {0}")]
    Unrecognized(String),
    #[error("the model has an input `{name}` {shape} ({dtype}) besides the image `{image}`, and nothing says what to feed it: \
             add it to the profile's `aux_inputs` — a kind qplay computes from the input size (\"input_wh\": its [width, height]; \
             \"input_hw\": [height, width]; \"unit_scale\": [1, 1]) or constant values, e.g. {{\"{name}\": [1, 1]}}; \
             www/profile.html describes the field")]
    UnfedInput { name: String, shape: String, dtype: String, image: String },
}

impl DetectError {
    /// A stable name for the kind of error (see [`crate::model::ModelError::code`]):
    /// `bad-image`, `bad-output`, `profile` or `unrecognized-model`.
    pub fn code(&self) -> &'static str {
        match self {
            DetectError::EmptyImage { .. } | DetectError::RgbaLength { .. } => "bad-image",
            DetectError::MissingOutput { .. }
            | DetectError::OutputDType { .. }
            | DetectError::OutputShape { .. }
            | DetectError::NonFinite { .. } => "bad-output",
            DetectError::Profile(_) | DetectError::UnfedInput { .. } => "profile",
            DetectError::Unrecognized(_) => "unrecognized-model",
        }
    }
}

/// Decodes named model outputs into detections in original image pixels.
///
/// Candidates scoring at least `profile.score_threshold` go through class-aware greedy NMS
/// (`profile.iou_threshold`, at most `profile.max_detections`) in input pixels; the survivors,
/// best first, are mapped through `transform` (from [`preprocess()`]) and clipped to the image.
pub fn detect(
    profile: &Profile,
    outputs: &[(String, Tensor)],
    transform: &Transform,
) -> Result<Vec<Detection>, DetectError> {
    profile.validate()?;
    if transform.image_w == 0 || transform.image_h == 0 {
        return Err(DetectError::EmptyImage { width: transform.image_w, height: transform.image_h });
    }
    if !(transform.scale_x.is_finite()
        && transform.scale_y.is_finite()
        && transform.scale_x > 0.0
        && transform.scale_y > 0.0)
    {
        return Err(DetectError::Profile(format!(
            "the transform's scales ({}, {}) must be positive: build it with Transform::new or preprocess",
            transform.scale_x, transform.scale_y
        )));
    }
    let candidates = decode::decode(profile, outputs)?;
    let kept = if profile.decoder.needs_nms() {
        nms::nms(&candidates, profile.iou_threshold, profile.max_detections)
    } else {
        // Already selected by the model: best first (stable), at most max_detections.
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| candidates[b].score.total_cmp(&candidates[a].score).then(a.cmp(&b)));
        order.truncate(profile.max_detections);
        order
    };
    Ok(kept
        .into_iter()
        .map(|i| {
            let c = &candidates[i];
            Detection {
                class: c.class,
                label: profile.labels.get(c.class).cloned().unwrap_or_else(|| format!("class {}", c.class)),
                score: c.score,
                bbox: transform.box_to_image(c.bbox),
                keypoints: c.keypoints.iter().map(|k| transform.to_image(k[0], k[1])).collect(),
                keypoint_scores: c.keypoint_scores.clone(),
            }
        })
        .collect())
}
