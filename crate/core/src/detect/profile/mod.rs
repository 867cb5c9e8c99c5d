//! Detection profiles: everything needed to turn pixels into a model input and model outputs into
//! boxes, as one JSON document per model (`www/models/<model>.json`).
//!
//! A profile is data, not code, so the UI can show it, let the user edit it, and [`super::auto`]
//! can propose one for an uploaded model. [`Profile::validate`] checks the parts that would
//! otherwise fail deep inside pre-processing or decoding, and says which field to fix.

mod aux;
mod decoders;
mod labels;

pub use aux::*;
pub use decoders::*;
pub use labels::*;

use super::DetectError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How to feed a model and read its answer.
///
/// Example (the built-in person detector):
/// ```json
/// { "input": "Preprocessor/sub:0", "size": [300, 300], "layout": "nchw", "color": "rgb",
///   "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "resize": { "mode": "stretch" },
///   "decoder": { "type": "ssd_anchors", ... },
///   "score_threshold": 0.5, "iou_threshold": 0.6, "max_detections": 100, "labels": ["person"] }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Name of the model's image input.
    pub input: String,
    /// Model input size in pixels, `[width, height]`.
    pub size: [usize; 2],
    /// Memory layout of the input tensor.
    pub layout: Layout,
    /// Channel order the model expects.
    pub color: ColorOrder,
    /// Per-channel mean, in the model's channel order: `value = (pixel/255 − mean[c]) / std[c]`.
    /// `pixel/127.5 − 1` is mean 0.5, std 0.5; `0..1` is mean 0, std 1; raw `0..255` is mean 0,
    /// std 1/255.
    pub mean: [f32; 3],
    /// Per-channel standard deviation, in the model's channel order; must not be zero.
    pub std: [f32; 3],
    /// How the image is fitted to the input size.
    pub resize: Resize,
    /// How outputs become boxes.
    pub decoder: Decoder,
    /// Candidates scoring below this (after the decoder's score function) are dropped.
    pub score_threshold: f32,
    /// Greedy NMS suppresses a box whose IoU with a kept box of the same class exceeds this.
    pub iou_threshold: f32,
    /// At most this many detections are returned (best first).
    #[serde(default = "default_max_detections")]
    pub max_detections: usize,
    /// Class names, indexed by [`super::Detection::class`] (background excluded). Classes past
    /// the end are shown as `class N`.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The model's inputs besides the image, by name, and what to feed each (geometry inputs of
    /// exports with their post-processing inside: `orig_target_sizes` of D-FINE and RT-DETR,
    /// `im_shape` and `scale_factor` of PaddleDetection), chosen so the outputs come out in
    /// model-input pixels. Empty for single-input models.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_inputs: BTreeMap<String, AuxInput>,
}

fn default_max_detections() -> usize {
    100
}

/// Input tensor layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[1, 3, H, W]` (PyTorch, most ONNX exports).
    Nchw,
    /// `[1, H, W, 3]` (TensorFlow, TFLite).
    Nhwc,
}

/// Channel order of the input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (OpenCV/Caffe-trained models).
    Bgr,
}

/// How the image is fitted to the model's input size. Both use the same bilinear sampling
/// (see [`super::preprocess`](mod@super::preprocess)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Resize {
    /// Scale each axis independently to fill the input (aspect ratio not kept). What SSD and
    /// MediaPipe models were trained with.
    Stretch,
    /// Scale by one factor so the whole image fits, centre it, and fill the rest with `pad`
    /// (a pixel value 0..255 applied to every channel before normalisation; YOLO uses 114).
    Letterbox {
        /// Pixel value of the padding, 0..255.
        pad: f32,
        /// The image sits in the top-left corner, all padding right and below (YOLOX's `preproc`);
        /// centred otherwise (Ultralytics' `LetterBox`).
        #[serde(default, skip_serializing_if = "is_false")]
        top_left: bool,
    },
}

/// Score function applied to raw class outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreFn {
    /// Each class independently: `1 / (1 + e^−x)`.
    Sigmoid,
    /// Over all classes of a box, background included.
    Softmax,
}

/// Output decoder, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Decoder {
    /// TensorFlow Object Detection API SSD: anchor grid + Faster R-CNN box coder.
    SsdAnchors(SsdAnchors),
    /// YOLOv5/v7-style `[1, N, 5 + C]`.
    Yolov5(Yolo),
    /// YOLOv8/YOLO11-style `[1, 4 + C, N]`.
    Yolov8(Yolo),
    /// End-to-end `[1, N, 6]` rows (boxes already selected: YOLOv10, `nms=True` exports) or
    /// `[1, Q, 4 + C]` (RT-DETR).
    End2end(End2End),
    /// Separate boxes, scores, classes and count tensors (TensorFlow detection exports).
    Detections(Detections),
    /// Box edges as distributions over bins (GFL/DFL: NanoDet-Plus, PP-PicoDet).
    Dfl(Dfl),
    /// Per-stride heads with separate score, objectness, box and landmark outputs (SCRFD, YuNet).
    Grid(Grid),
    /// CenterNet: class heatmaps, box sizes and centre offsets on a grid.
    Centernet(CenterNet),
    /// MediaPipe BlazeFace (short range).
    Blazeface(BlazeFace),
}

impl Decoder {
    /// Short name for messages (`"ssd_anchors"`, `"yolov8"`, …), as in the JSON tag.
    pub fn name(&self) -> &'static str {
        match self {
            Decoder::SsdAnchors(_) => "ssd_anchors",
            Decoder::Yolov5(_) => "yolov5",
            Decoder::Yolov8(_) => "yolov8",
            Decoder::End2end(_) => "end2end",
            Decoder::Detections(_) => "detections",
            Decoder::Dfl(_) => "dfl",
            Decoder::Grid(_) => "grid",
            Decoder::Centernet(_) => "centernet",
            Decoder::Blazeface(_) => "blazeface",
        }
    }

    /// Whether detections go through NMS (false for outputs the model has already selected).
    pub fn needs_nms(&self) -> bool {
        !matches!(self, Decoder::End2end(_) | Decoder::Detections(_))
    }

    /// Names of the model outputs this decoder reads.
    pub fn output_names(&self) -> Vec<&str> {
        match self {
            Decoder::SsdAnchors(d) => vec![&d.boxes_output, &d.logits_output],
            Decoder::Yolov5(d) | Decoder::Yolov8(d) => vec![&d.output],
            Decoder::End2end(d) => {
                [Some(&d.output), d.scores_output.as_ref()].into_iter().flatten().map(String::as_str).collect()
            }
            Decoder::Dfl(d) => vec![&d.output],
            Decoder::Grid(d) => d
                .score_outputs
                .iter()
                .chain(&d.objectness_outputs)
                .chain(&d.box_outputs)
                .chain(&d.landmark_outputs)
                .map(String::as_str)
                .collect(),
            Decoder::Detections(d) => [
                Some(&d.boxes_output),
                Some(&d.scores_output),
                d.classes_output.as_ref(),
                d.count_output.as_ref(),
                d.keypoints_output.as_ref(),
            ]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect(),
            Decoder::Centernet(d) => {
                [Some(&d.heatmap_output), Some(&d.wh_output), d.offset_output.as_ref(), d.landmarks_output.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect()
            }
            Decoder::Blazeface(d) => [&d.regressors_output, &d.classificators_output]
                .into_iter()
                .chain(d.more_outputs.iter().flatten())
                .map(String::as_str)
                .collect(),
        }
    }
}

impl Profile {
    /// Parses a profile from JSON and validates it.
    pub fn from_json(json: &str) -> Result<Profile, DetectError> {
        // (serde cannot name the field inside the decoder: its tag is read first, so the error's
        // position is the decoder's end; the reference page lists every field with its type.)
        let p: Profile = serde_json::from_str(json).map_err(|e| {
            DetectError::Profile(format!(
                "not a valid profile: {e} (www/profile.html describes every field and its type)"
            ))
        })?;
        p.validate()?;
        Ok(p)
    }

    /// The profile as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of numbers and strings cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks values that would make pre-processing or decoding meaningless, naming the field.
    pub fn validate(&self) -> Result<(), DetectError> {
        let bad = |msg: String| Err(DetectError::Profile(msg));
        let [w, h] = self.size;
        if w == 0 || h == 0 || w > 8192 || h > 8192 {
            return bad(format!("`size` is {w}×{h}: use the model input's width and height (1 to 8192)"));
        }
        for c in 0..3 {
            if !self.mean[c].is_finite() {
                return bad(format!("`mean[{c}]` is not a finite number"));
            }
            if !self.std[c].is_finite() || self.std[c] == 0.0 {
                return bad(format!("`std[{c}]` is {}: use a non-zero number (1 for no scaling)", self.std[c]));
            }
        }
        if let Resize::Letterbox { pad, .. } = self.resize {
            if !(0.0..=255.0).contains(&pad) {
                return bad(format!("letterbox `pad` is {pad}: use a pixel value from 0 to 255 (114 for YOLO)"));
            }
        }
        if !(0.0..=1.0).contains(&self.score_threshold) {
            return bad(format!("`score_threshold` is {}: use a value from 0 to 1", self.score_threshold));
        }
        if !(0.0..=1.0).contains(&self.iou_threshold) {
            return bad(format!("`iou_threshold` is {}: use a value from 0 to 1", self.iou_threshold));
        }
        for (name, a) in &self.aux_inputs {
            if *name == self.input {
                return bad(format!(
                    "`aux_inputs` names `{name}`, the image input: list only the model's other inputs"
                ));
            }
            if let AuxInput::Values(v) = a {
                if v.is_empty() || v.len() > 4096 || v.iter().any(|x| !x.is_finite()) {
                    return bad(format!(
                        "`aux_inputs.{name}`: give a kind (\"input_wh\", \"input_hw\", \"unit_scale\") or 1 to 4096 finite numbers"
                    ));
                }
            }
        }
        match &self.decoder {
            Decoder::SsdAnchors(d) => {
                if d.num_layers == 0 || d.num_layers != d.feature_maps.len() {
                    return bad(format!(
                        "ssd_anchors: `num_layers` is {} but `feature_maps` lists {} layers: give one [height, width] per layer",
                        d.num_layers,
                        d.feature_maps.len()
                    ));
                }
                if d.feature_maps.iter().any(|m| m[0] == 0 || m[1] == 0 || m[0] > 4096 || m[1] > 4096) {
                    return bad("ssd_anchors: every feature map size must be 1 to 4096".into());
                }
                if d.aspect_ratios.is_empty() || d.aspect_ratios.iter().any(|a| !a.is_finite() || *a <= 0.0) {
                    return bad(
                        "ssd_anchors: `aspect_ratios` must be positive numbers (e.g. [1, 2, 0.5, 3, 0.3333])".into()
                    );
                }
                if !(d.min_scale.is_finite()
                    && d.max_scale.is_finite()
                    && d.min_scale > 0.0
                    && d.max_scale >= d.min_scale)
                {
                    return bad(format!(
                        "ssd_anchors: scales {}..{} are invalid: use 0 < min_scale ≤ max_scale (e.g. 0.2 and 0.95)",
                        d.min_scale, d.max_scale
                    ));
                }
                if !d.interpolated_scale_aspect_ratio.is_finite() {
                    return bad("ssd_anchors: `interpolated_scale_aspect_ratio` must be a number (0 for none)".into());
                }
                if d.box_scales.iter().any(|s| !s.is_finite() || *s == 0.0) {
                    return bad("ssd_anchors: `box_scales` must be non-zero (TF default [10, 10, 5, 5])".into());
                }
            }
            Decoder::Yolov5(d) | Decoder::Yolov8(d) => {
                check_keypoints(d.keypoints, d.keypoint_dims)?;
                if d.grid_strides.iter().any(|&s| s == 0 || s > w.min(h)) {
                    return bad(format!(
                        "`grid_strides` {:?}: each stride must be 1 to the input size (YOLOX: [8, 16, 32])",
                        d.grid_strides
                    ));
                }
            }
            Decoder::End2end(d) => check_keypoints(d.keypoints, d.keypoint_dims)?,
            Decoder::Dfl(d) => {
                check_strides(
                    "dfl",
                    &d.strides,
                    w.max(h),
                    "give the grid strides, each 1 to the input size (NanoDet-Plus: [8, 16, 32, 64])",
                )?;
                if d.reg_max == 0 || d.reg_max > 64 {
                    return bad(format!(
                        "dfl: `reg_max` is {}: use 1 to 64 (7 for NanoDet-Plus and PicoDet)",
                        d.reg_max
                    ));
                }
                if !(0.0..=1.0).contains(&d.cell_center) {
                    return bad(format!("dfl: `cell_center` is {}: use 0 (NanoDet) or 0.5 (PicoDet)", d.cell_center));
                }
            }
            Decoder::Grid(d) => {
                check_strides(
                    "grid",
                    &d.strides,
                    w.max(h),
                    "give the strides, each 1 to the input size (e.g. [8, 16, 32])",
                )?;
                let n = d.strides.len();
                let counts = [d.score_outputs.len(), d.box_outputs.len()];
                let optional = [d.objectness_outputs.len(), d.landmark_outputs.len()];
                if counts.iter().any(|&c| c != n) || optional.iter().any(|&c| c != 0 && c != n) {
                    return bad(format!(
                        "grid: {n} strides need {n} `score_outputs` and `box_outputs` (and {n} or no `objectness_outputs` / `landmark_outputs`); got {}, {}, {}, {}",
                        counts[0], counts[1], optional[0], optional[1]
                    ));
                }
                if (d.box_encoding == GridBox::Dfl) != (d.reg_max > 0) || d.reg_max > 64 {
                    return bad(format!(
                        "grid: `reg_max` is {}: give 1 to 64 with the `dfl` box encoding (NanoDet 7 or 10), 0 otherwise",
                        d.reg_max
                    ));
                }
                if d.anchors == 0 || d.anchors > 64 {
                    return bad(format!(
                        "grid: `anchors` is {}: rows per grid cell, 1 to 64 (SCRFD 2, YuNet 1)",
                        d.anchors
                    ));
                }
                if (d.landmarks > 0) == d.landmark_outputs.is_empty() || d.landmarks > 1000 {
                    return bad(
                        "grid: give both `landmark_outputs` and `landmarks` (e.g. 5 for faces), or neither".into()
                    );
                }
                if !(0.0..=1.0).contains(&d.cell_center) {
                    return bad(format!("grid: `cell_center` is {}: use 0 or 0.5", d.cell_center));
                }
            }
            Decoder::Detections(d) => {
                if d.first_class > 1000 {
                    return bad(format!(
                        "detections: `first_class` is {}: use 1 for TF Object Detection API models (0 is background), else 0",
                        d.first_class
                    ));
                }
            }
            Decoder::Centernet(d) => {
                if !d.stride.is_finite() || d.stride <= 0.0 {
                    return bad(format!(
                        "centernet: `stride` is {}: use input pixels per heatmap cell (e.g. 4)",
                        d.stride
                    ));
                }
                if !(0.0..=1.0).contains(&d.cell_center) {
                    return bad(format!(
                        "centernet: `cell_center` is {}: use 0 (CenterNet) or 0.5 (CenterFace)",
                        d.cell_center
                    ));
                }
                if d.landmarks > 1000 || (d.landmarks > 0) != d.landmarks_output.is_some() {
                    return bad(
                        "centernet: give both `landmarks_output` and `landmarks` (e.g. 5 for faces), or neither".into(),
                    );
                }
            }
            Decoder::Blazeface(d) => {
                if d.strides.is_empty() || d.strides.iter().any(|&s| s == 0 || s > w.max(h)) {
                    return bad(
                        "blazeface: `strides` must be non-zero and at most the input size (e.g. [8, 16, 16, 16])"
                            .into(),
                    );
                }
                if d.anchors_per_layer == 0 || d.anchors_per_layer > 64 {
                    return bad("blazeface: `anchors_per_layer` must be 1 to 64 (2 for BlazeFace)".into());
                }
                if !d.coord_scale.is_finite() || d.coord_scale <= 0.0 {
                    return bad("blazeface: `coord_scale` must be positive (128 for the short-range model)".into());
                }
                if d.num_keypoints > 64 {
                    return bad("blazeface: `num_keypoints` must be at most 64 (6 for BlazeFace)".into());
                }
                if !d.score_clip.is_finite() || d.score_clip <= 0.0 {
                    return bad("blazeface: `score_clip` must be positive (MediaPipe uses 100)".into());
                }
            }
        }
        Ok(())
    }
}

/// `Err` unless `decoder`'s `strides` lists at least one stride, each 1 to `max`; the message
/// ends in `hint`.
fn check_strides(decoder: &str, strides: &[usize], max: usize, hint: &str) -> Result<(), DetectError> {
    if strides.is_empty() || strides.iter().any(|&s| s == 0 || s > max) {
        return Err(DetectError::Profile(format!("{decoder}: `strides` {strides:?}: {hint}")));
    }
    Ok(())
}

fn check_keypoints(k: usize, dims: usize) -> Result<(), DetectError> {
    if k > 1000 {
        return Err(DetectError::Profile(format!("`keypoints` is {k}: use at most 1000 (17 for COCO pose)")));
    }
    if k > 0 && !(dims == 2 || dims == 3) {
        return Err(DetectError::Profile(format!("`keypoint_dims` is {dims}: use 2 (x, y) or 3 (x, y, visibility)")));
    }
    Ok(())
}
