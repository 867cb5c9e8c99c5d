//! Detection profiles: everything needed to turn pixels into a model input and model outputs into
//! boxes, as one JSON document per model (`www/models/<model>.json`).
//!
//! A profile is data, not code, so the UI can show it, let the user edit it, and [`super::auto`]
//! can propose one for an uploaded model. [`Profile::validate`] checks the parts that would
//! otherwise fail deep inside pre-processing or decoding, and says which field to fix.

use super::DetectError;
use serde::{Deserialize, Serialize};

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
            Decoder::End2end(d) => vec![&d.output],
            Decoder::Dfl(d) => vec![&d.output],
            Decoder::Grid(d) => d
                .score_outputs
                .iter()
                .chain(&d.objectness_outputs)
                .chain(&d.box_outputs)
                .chain(&d.landmark_outputs)
                .map(String::as_str)
                .collect(),
            Decoder::Detections(d) => {
                [Some(&d.boxes_output), Some(&d.scores_output), d.classes_output.as_ref(), d.count_output.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect()
            }
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

/// SSD with a TF Object Detection API `ssd_anchor_generator` (multiple grid anchors).
///
/// Anchors are generated per layer `i` with scale `s_i = min + (max − min)·i/(layers − 1)`
/// (`s_layers = 1`), one anchor per aspect ratio `a` of size `s_i/√a × s_i·√a` (h × w, relative
/// to the input), plus one of scale `√(s_i·s_{i+1})` and ratio `interpolated_scale_aspect_ratio`
/// when that is positive. With `reduce_boxes_in_lowest_layer`, layer 0 has only
/// `(0.1, 1), (s_0, 2), (s_0, 0.5)`. Centres are at `(j + 0.5)/map_size`, ordered by row, column,
/// then anchor. Boxes are decoded as Faster R-CNN codes `(ty, tx, th, tw)` divided by
/// `box_scales`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsdAnchors {
    /// Number of feature-map layers; must equal `feature_maps.len()`.
    pub num_layers: usize,
    /// Feature map sizes, `[height, width]` per layer, finest first (e.g. 19, 10, 5, 3, 2, 1).
    pub feature_maps: Vec<[usize; 2]>,
    /// Anchor scale of the first layer, relative to the input size.
    pub min_scale: f32,
    /// Anchor scale of the last layer.
    pub max_scale: f32,
    /// Aspect ratios (width/height) of the anchors in every layer.
    pub aspect_ratios: Vec<f32>,
    /// Layer 0 uses only the three anchors `(0.1, 1), (s_0, 2), (s_0, 0.5)`.
    pub reduce_boxes_in_lowest_layer: bool,
    /// Aspect ratio of the extra interpolated-scale anchor; 0 or less for none.
    pub interpolated_scale_aspect_ratio: f32,
    /// Box coder scales `(y, x, h, w)`; TF's default is `[10, 10, 5, 5]`.
    pub box_scales: [f32; 4],
    /// Output with box encodings, `[1, N, 1, 4]` or `[1, N, 4]`, `(ty, tx, th, tw)` per anchor.
    pub boxes_output: String,
    /// Output with class logits, `[1, N, K]`.
    pub logits_output: String,
    /// Index of the background class among the `K` logits; `null` if there is none.
    pub background_class: Option<usize>,
    /// Score function applied to the logits.
    pub score: ScoreFn,
}

/// YOLO single-output decoders. Boxes are `cx, cy, w, h` in input pixels; class scores (and
/// v5's objectness) are probabilities already (the exported graphs end in a sigmoid).
///
/// Per box, after the box (and v5's objectness): `classes` scores, then `keypoints × keypoint_dims`
/// keypoint values (Ultralytics `-pose`: `x, y` in input pixels and a visibility in 0..1); any
/// channels left after those (a `-seg` model's 32 mask coefficients) are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Yolo {
    /// Name of the output tensor.
    pub output: String,
    /// Number of class scores; `null`: every channel after the box (and objectness) that is not
    /// a keypoint value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    /// Keypoints per box (17 for COCO pose); 0 for none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub keypoints: usize,
    /// Values per keypoint: 2 (`x, y`) or 3 (`x, y, visibility`).
    #[serde(default = "three")]
    pub keypoint_dims: usize,
    /// Boxes are raw head outputs on grids of these strides (YOLOX exported without
    /// `decode_in_inference`): rows run over the grids finest first, each row-major with
    /// `⌊H/s⌋ × ⌊W/s⌋` cells, and a row's box is `((x + gx)·s, (y + gy)·s, e^w·s, e^h·s)`.
    /// Empty: boxes are in input pixels already.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grid_strides: Vec<usize>,
}

impl Yolo {
    /// A plain box + class-scores decoder reading `output`.
    pub fn new(output: impl Into<String>) -> Yolo {
        Yolo { output: output.into(), classes: None, keypoints: 0, keypoint_dims: 3, grid_strides: Vec::new() }
    }
}

/// End-to-end outputs (NMS inside the graph, or a one-to-one head: YOLOv10, Ultralytics
/// `nms=True` exports, RT-DETR): one `[1, N, W]` tensor of rows, each a box (`box_format`, in
/// input pixels or, with `normalized`, in fractions of the input's width and height) then either
/// `score, class` or, with `per_class_scores`, one score per class (the best is the row's class),
/// then keypoints as in [`Yolo`]. Rows scoring below the threshold (padding rows are zeros) are
/// dropped; no NMS is applied (the model already selected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End2End {
    /// Name of the output tensor.
    pub output: String,
    /// Rows hold one score per class after the box (DETR-style `[1, Q, 4 + C]`, RT-DETR)
    /// instead of `score, class`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub per_class_scores: bool,
    /// How the four box values are written.
    #[serde(default, skip_serializing_if = "BoxFormat::is_xyxy")]
    pub box_format: BoxFormat,
    /// Box values are fractions of the input's width and height (0..1) rather than pixels.
    #[serde(default, skip_serializing_if = "is_false")]
    pub normalized: bool,
    /// Keypoints per row; 0 for none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub keypoints: usize,
    /// Values per keypoint: 2 or 3.
    #[serde(default = "three")]
    pub keypoint_dims: usize,
}

impl End2End {
    /// Rows `x1, y1, x2, y2, score, class` in input pixels, read from `output`.
    pub fn new(output: impl Into<String>) -> End2End {
        End2End {
            output: output.into(),
            per_class_scores: false,
            box_format: BoxFormat::Xyxy,
            normalized: false,
            keypoints: 0,
            keypoint_dims: 3,
        }
    }
}

/// How four box values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxFormat {
    /// Corners `x1, y1, x2, y2`.
    #[default]
    Xyxy,
    /// Centre and size `cx, cy, w, h` (DETR, RT-DETR).
    Cxcywh,
    /// Corners `y1, x1, y2, x2` (TensorFlow).
    Yxyx,
}

impl BoxFormat {
    /// The box as `x1, y1, x2, y2`, each coordinate scaled by `[sx, sy]`.
    pub fn to_xyxy(self, v: [f32; 4], [sx, sy]: [f32; 2]) -> [f32; 4] {
        let [x1, y1, x2, y2] = match self {
            BoxFormat::Xyxy => v,
            BoxFormat::Cxcywh => [v[0] - v[2] / 2.0, v[1] - v[3] / 2.0, v[0] + v[2] / 2.0, v[1] + v[3] / 2.0],
            BoxFormat::Yxyx => [v[1], v[0], v[3], v[2]],
        };
        [x1 * sx, y1 * sy, x2 * sx, y2 * sy]
    }

    fn is_xyxy(&self) -> bool {
        *self == BoxFormat::Xyxy
    }
}

/// Detections as separate tensors, as TensorFlow's Object Detection API and many TF/TFLite
/// exports give them: boxes `[1, M, 4]`, scores `[1, M]`, optionally classes `[1, M]` (float or
/// integer ids) and a count `[1]` of valid rows. Already selected by the model: no NMS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detections {
    /// Boxes, `[1, M, 4]` (or `[M, 4]`).
    pub boxes_output: String,
    /// Scores, `[1, M]`.
    pub scores_output: String,
    /// Class ids, `[1, M]`; `null`: every detection is class 0.
    #[serde(default)]
    pub classes_output: Option<String>,
    /// Number of valid rows, `[1]`; `null`: every row (the score threshold drops padding).
    #[serde(default)]
    pub count_output: Option<String>,
    /// How the four box values are written (TensorFlow: `yxyx`).
    pub box_format: BoxFormat,
    /// Box values are fractions of the input's width and height (TensorFlow) rather than pixels.
    pub normalized: bool,
    /// The class id of the first label: 1 for TF Object Detection API label maps (0 is
    /// background), 0 otherwise. `class − first_class` indexes `labels`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first_class: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

fn three() -> usize {
    3
}

/// Anchor-free heads whose box edges are distributions over bins (Generalized Focal Loss's DFL:
/// NanoDet-Plus, PP-PicoDet): one output `[1, N, C + 4·(reg_max + 1)]`, per point C class
/// probabilities then the bins of the left, top, right and bottom distances. Points run over the
/// grids of `strides`, finest first, row-major with `⌈H/s⌉ × ⌈W/s⌉` cells at
/// `((x + cell_center)·s, (y + cell_center)·s)`; a distance is `Σ softmax(bins)ᵢ·i` times the
/// stride.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dfl {
    /// Name of the output tensor.
    pub output: String,
    /// Grid strides in input pixels, finest first (NanoDet-Plus: `[8, 16, 32, 64]`).
    pub strides: Vec<usize>,
    /// Largest bin index (`reg_max`): each distance has `reg_max + 1` bins (7 for NanoDet-Plus).
    pub reg_max: usize,
    /// Added to the cell index: 0 (NanoDet) or 0.5 (PicoDet).
    #[serde(default, skip_serializing_if = "is_zero_f32")]
    pub cell_center: f32,
    /// Every class scoring above the threshold at a point is a candidate (NanoDet's multi-class
    /// NMS); `false`: the best class per point only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub multi_label: bool,
}

/// Per-stride anchor-free heads with separate outputs (SCRFD, YuNet): for each of `strides`, a
/// score output, optionally an objectness output, a box output and a landmark output, each
/// `[1, N_s, K]` with `N_s = ⌈H/s⌉·⌈W/s⌉·anchors` rows (cells row-major, `anchors` rows per
/// cell). A row of cell `(c, r)` scores its best class (`√(class·objectness)` with objectness);
/// its box follows `box_encoding`; landmark `k` is `((c + kx)·s, (r + ky)·s)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// Strides in input pixels, finest first (`[8, 16, 32]`).
    pub strides: Vec<usize>,
    /// One class-score output per stride (probabilities), `[1, N_s, C]`.
    pub score_outputs: Vec<String>,
    /// One objectness output per stride, `[1, N_s, 1]` (YuNet); empty for none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objectness_outputs: Vec<String>,
    /// One box output per stride, `[1, N_s, 4]`.
    pub box_outputs: Vec<String>,
    /// One landmark output per stride, `[1, N_s, 2·landmarks]`; empty for none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub landmark_outputs: Vec<String>,
    /// Landmarks per detection (5 for faces).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub landmarks: usize,
    /// Rows per grid cell (SCRFD: 2, YuNet: 1).
    pub anchors: usize,
    /// What the box values mean.
    pub box_encoding: GridBox,
    /// Largest bin index of a `dfl` box encoding (NanoDet 7 or 10, PicoDet 7); 0 otherwise.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reg_max: usize,
    /// Added to the cell index: 0 for SCRFD and YuNet.
    #[serde(default, skip_serializing_if = "is_zero_f32")]
    pub cell_center: f32,
}

/// Box values of a [`Grid`] head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GridBox {
    /// Distances from the cell to the left, top, right and bottom edges, in strides (SCRFD).
    Ltrb,
    /// Centre offset in cells and log size in strides: `((c + dx)·s, (r + dy)·s, e^dw·s, e^dh·s)` (YuNet).
    OffsetLogSize,
    /// Distances to the four edges as distributions over `reg_max + 1` bins (GFL/DFL: NanoDet,
    /// PP-PicoDet), each `Σ softmax(bins)ᵢ·i` strides; the box output has `4·(reg_max + 1)` values.
    Dfl,
}

/// Heatmap detectors ("objects as points": CenterNet, CenterFace, CenterTrack-style ltrb heads,
/// TF CenterNet exports), built from parts.
///
/// A detection is a heatmap cell `(x, y)` of class `c` whose score reaches the threshold and,
/// with `peaks_only`, is the maximum of its 3×3 neighbourhood (the reference's
/// `max_pool2d(3, stride 1, pad 1) == heat`, ties kept). Its centre is
/// `((x + cell_center + offset_x)·stride, (y + cell_center + offset_y)·stride)` (offsets 0 without
/// an offset output); its box comes from the box output by `box_encoding`, in grid cells times
/// `stride` (or `exp` of the value times `stride` for log-space sizes). Every output is
/// `[1, K, H, W]` on the heatmap's grid, or `[1, H, W, K]` with `channels_last` (TensorFlow).
///
/// Presets: CenterNet (`wh`, offsets `xy`, `cell_center` 0, peaks), CenterFace (`log_hw`,
/// offsets `yx`, `cell_center` 0.5, every cell above the threshold then NMS, 5 landmarks
/// `box_yx`), TF CenterNet with ltrb distances (`ltrb`, no offsets, `channels_last`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CenterNet {
    /// Heatmap output, `[1, C, H, W]` (or `[1, H, W, C]`): one channel per class.
    pub heatmap_output: String,
    /// Box output on the same grid: 2 channels (sizes) or 4 (`ltrb` distances).
    pub wh_output: String,
    /// Centre offset output on the same grid (2 channels); `null` for a model without one.
    #[serde(default)]
    pub offset_output: Option<String>,
    /// Input pixels per heatmap cell (4 in the reference models).
    pub stride: f32,
    /// The heatmap holds logits (apply a sigmoid) rather than probabilities.
    pub heatmap_logits: bool,
    /// Outputs are `[1, H, W, K]` (TensorFlow exports) rather than `[1, K, H, W]`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub channels_last: bool,
    /// What the box output's channels mean.
    #[serde(default)]
    pub box_encoding: BoxEncoding,
    /// Channel order of the offset output.
    #[serde(default)]
    pub offset_order: AxisOrder,
    /// Added to the cell index before the offset: 0 (CenterNet) or 0.5 (CenterFace).
    #[serde(default, skip_serializing_if = "is_zero_f32")]
    pub cell_center: f32,
    /// Keep only 3×3 heatmap peaks (CenterNet); `false` keeps every cell above the threshold and
    /// relies on NMS (CenterFace).
    #[serde(default = "yes")]
    pub peaks_only: bool,
    /// Landmark output on the same grid, `2 × landmarks` channels; `null` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmarks_output: Option<String>,
    /// Landmarks per detection (5 for face models: eyes, nose, mouth corners).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub landmarks: usize,
    /// How landmark values become points.
    #[serde(default)]
    pub landmark_encoding: LandmarkEncoding,
}

/// Meaning of a heatmap detector's box channels (all in grid cells, times `stride`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxEncoding {
    /// Width, height (CenterNet).
    #[default]
    Wh,
    /// Height, width.
    Hw,
    /// `ln(height)`, `ln(width)`: size = `exp(v)·stride` (CenterFace).
    LogHw,
    /// `ln(width)`, `ln(height)`.
    LogWh,
    /// Distances from the centre to the left, top, right and bottom edges (4 channels), in grid
    /// cells (CenterTrack).
    Ltrb,
    /// The same distances in input pixels (TensorFlow's CenterNet MobileNetV3).
    LtrbPixels,
}

/// Order of a two-channel `(x, y)` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AxisOrder {
    /// x first.
    #[default]
    Xy,
    /// y first (CenterFace).
    Yx,
}

/// How a heatmap detector's landmark channels become points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LandmarkEncoding {
    /// Pairs `(y, x)` relative to the box's top-left corner in units of the box's height and
    /// width (CenterFace).
    #[default]
    BoxYx,
    /// Pairs `(x, y)` relative to the box's top-left corner in units of its width and height.
    BoxXy,
    /// Pairs `(x, y)` in grid cells from the detection's centre, times `stride` (CenterNet pose).
    CenterXy,
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn is_zero_f32(v: &f32) -> bool {
    *v == 0.0
}

fn yes() -> bool {
    true
}

/// MediaPipe BlazeFace short-range: SSD-style anchors of size 1 (relative units) centred on
/// grid cells, one grid per distinct stride, layers with the same stride merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlazeFace {
    /// Regressor output, `[1, N, 4 + 2·num_keypoints]`: box `cx, cy, w, h` then keypoints `x, y`.
    pub regressors_output: String,
    /// Score output, `[1, N, 1]` (logits).
    pub classificators_output: String,
    /// Stride of each anchor layer in input pixels (`[8, 16, 16, 16]`).
    pub strides: Vec<usize>,
    /// Anchors per grid cell contributed by each layer (2: ratio 1 and the interpolated one).
    pub anchors_per_layer: usize,
    /// Regressor units per input size (128: values are in 128-pixel units for a 128 input).
    pub coord_scale: f32,
    /// Keypoints per detection (6: eyes, nose, mouth, ears).
    pub num_keypoints: usize,
    /// Logits are clipped to `±score_clip` before the sigmoid (MediaPipe uses 100).
    pub score_clip: f32,
    /// Further `[regressors, classificators]` output pairs whose rows follow the first pair's,
    /// for exports that split the anchors (e.g. 512 + 384); empty for one pair.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_outputs: Vec<[String; 2]>,
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
                if d.strides.is_empty() || d.strides.iter().any(|&s| s == 0 || s > w.max(h)) {
                    return bad(format!(
                        "dfl: `strides` {:?}: give the grid strides, each 1 to the input size (NanoDet-Plus: [8, 16, 32, 64])",
                        d.strides
                    ));
                }
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
                let n = d.strides.len();
                if n == 0 || d.strides.iter().any(|&s| s == 0 || s > w.max(h)) {
                    return bad(format!(
                        "grid: `strides` {:?}: give the strides, each 1 to the input size (e.g. [8, 16, 32])",
                        d.strides
                    ));
                }
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

fn check_keypoints(k: usize, dims: usize) -> Result<(), DetectError> {
    if k > 1000 {
        return Err(DetectError::Profile(format!("`keypoints` is {k}: use at most 1000 (17 for COCO pose)")));
    }
    if k > 0 && !(dims == 2 || dims == 3) {
        return Err(DetectError::Profile(format!("`keypoint_dims` is {dims}: use 2 (x, y) or 3 (x, y, visibility)")));
    }
    Ok(())
}

/// The 80 COCO class names in the order YOLO and CenterNet models use (contiguous ids 0..80).
pub const COCO80: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// The TF Object Detection API's COCO label map as [`Profile::labels`] for ids 1..=90
/// (`first_class` 1): the 80 [`COCO80`] names at their original COCO ids, and the ten ids the
/// 2014 paper defined but never annotated under their paper names.
pub fn coco90_labels() -> Vec<String> {
    const UNUSED: [(usize, &str); 10] = [
        (12, "street sign"),
        (26, "hat"),
        (29, "shoe"),
        (30, "eye glasses"),
        (45, "plate"),
        (66, "mirror"),
        (68, "window"),
        (69, "desk"),
        (71, "door"),
        (83, "blender"),
    ];
    let mut names = COCO80.iter();
    (1..=90)
        .map(|id| match UNUSED.iter().find(|(u, _)| *u == id) {
            Some((_, n)) => n.to_string(),
            None => names.next().map_or_else(|| format!("class {id}"), |s| s.to_string()),
        })
        .collect()
}

/// [`COCO80`] as owned strings, for [`Profile::labels`].
pub fn coco80_labels() -> Vec<String> {
    COCO80.iter().map(|s| s.to_string()).collect()
}
