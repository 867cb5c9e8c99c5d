//! The decoders' settings: one struct per output layout, tagged by `"type"` in [`super::Decoder`].

use super::ScoreFn;
use serde::{Deserialize, Serialize};

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
    /// Box (and keypoint) values are fractions of the input's width and height (`true`), as
    /// Ultralytics' TFLite and TensorFlow exports give them, or input pixels (`false`); unset:
    /// told apart on each output by the box centres' range (every row's centre within ±2:
    /// fractions — the rows cover the whole input, so pixel centres reach its size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized: Option<bool>,
}

impl Yolo {
    /// A plain box + class-scores decoder reading `output`.
    pub fn new(output: impl Into<String>) -> Yolo {
        Yolo {
            output: output.into(),
            classes: None,
            keypoints: 0,
            keypoint_dims: 3,
            grid_strides: Vec::new(),
            normalized: None,
        }
    }
}

/// End-to-end outputs (NMS inside the graph, or a one-to-one head: YOLOv10, Ultralytics
/// `nms=True` exports, RT-DETR): one `[1, N, W]` tensor of rows, each a box (`box_format`, in
/// input pixels or, with `normalized`, in fractions of the input's width and height) then either
/// `score, class` or, with `per_class_scores`, one score per class (the best is the row's class),
/// then keypoints as in [`Yolo`]. With `scores_output`, the set predictions of DETR-style models
/// come as two tensors: boxes `[1, Q, 4]` in `output` and class scores `[1, Q, C]` (Hugging Face
/// exports' `pred_boxes` and `logits`). Rows scoring below the threshold (padding rows are zeros)
/// are dropped; no NMS is applied (the model already selected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End2End {
    /// Name of the output tensor.
    pub output: String,
    /// Rows hold one score per class after the box (DETR-style `[1, Q, 4 + C]`, RT-DETR)
    /// instead of `score, class`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub per_class_scores: bool,
    /// Rows are `class, score` then the box (PaddleDetection's `multiclass_nms3`: `[N, 6]` rows
    /// of class, score, x1, y1, x2, y2) instead of the box then `score, class`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub class_first: bool,
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
    /// Class scores `[1, Q, C]` in their own tensor, one row per box of `output` (`[1, Q, 4]`);
    /// `null`: the scores are in `output`'s rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores_output: Option<String>,
    /// How class values become scores: `sigmoid` (each class), `softmax` (over a row's classes);
    /// `null`: they are scores already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_fn: Option<ScoreFn>,
    /// The last class is DETR's "no object": it takes part in the softmax and is never a detection.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_object_last: bool,
}

impl End2End {
    /// Rows `x1, y1, x2, y2, score, class` in input pixels, read from `output`.
    pub fn new(output: impl Into<String>) -> End2End {
        End2End {
            output: output.into(),
            per_class_scores: false,
            class_first: false,
            box_format: BoxFormat::Xyxy,
            normalized: false,
            keypoints: 0,
            keypoint_dims: 3,
            scores_output: None,
            score_fn: None,
            no_object_last: false,
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
    /// Keypoints per detection, `[M, K, 2 | 3]` or `[1, M, K, 2 | 3]`: x, y (and a visibility,
    /// drawn from 0.5) in the boxes' coordinates (torchvision's Keypoint R-CNN); `null`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keypoints_output: Option<String>,
}

pub(super) fn is_zero(v: &usize) -> bool {
    *v == 0
}

pub(super) fn three() -> usize {
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

pub(super) fn is_false(v: &bool) -> bool {
    !*v
}

pub(super) fn is_zero_f32(v: &f32) -> bool {
    *v == 0.0
}

pub(super) fn yes() -> bool {
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
