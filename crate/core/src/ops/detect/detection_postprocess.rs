//! `TFLite_Detection_PostProcess`: the SSD post-processing at the end of TF Object Detection API
//! and MediaPipe SSD `.tflite` models, as LiteRT's `detection_postprocess.cc` computes it.
//!
//! Inputs: box encodings `[1, N, K ≥ 4]` (y-centre, x-centre, log height, log width offsets),
//! class predictions `[1, N, C]` or `[1, N, C + 1]` (a leading background column, skipped) with
//! `C = num_classes`, anchors `[N, 4]` (y-centre, x-centre, height, width). Outputs, all float32:
//! boxes `[1, M, 4]` (ymin, xmin, ymax, xmax in the anchors' units, fractions of the input for
//! SSD), classes `[1, M]` (0-based, background excluded), scores `[1, M]`, and the number of
//! valid rows `[1]`, with `M = max_detections · max_classes_per_detection`.
//!
//! Boxes are decoded in double precision as LiteRT does ([`super::nms`]). The fast NMS
//! (`use_regular_nms` false) suppresses anchors by their best class score and writes each kept
//! anchor's `max_classes_per_detection` best classes; the regular NMS suppresses per class (at
//! most `min(detections_per_class, max_detections)` each) and keeps the `max_detections` best
//! over all classes, merged class by class (LiteRT's single-threaded order: on equal scores the
//! lower class first). Rows LiteRT leaves unwritten (the fast path's rows past the count) are
//! zeros here.
//!
//! The options come from the custom op's FlexBuffer `custom_options`; the loader
//! ([`crate::model::tflite`]) writes them as attributes, which [`build`] reads and checks once.

use super::nms;
use crate::model::{DType, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// The op type, as TFLite names the custom op.
pub const TFLITE_DETECTION_POSTPROCESS: &str = "TFLite_Detection_PostProcess";

/// The most output rows (`max_detections · max_classes_per_detection`) qplay allocates, and the
/// most classes.
pub const MAX_ROWS: usize = 1 << 16;

/// LiteRT's `detections_per_class` when the options leave it out.
pub const DEFAULT_DETECTIONS_PER_CLASS: i64 = 100;

/// The op's options, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionOptions {
    /// Kept anchors (fast NMS) or rows (regular NMS).
    pub max_detections: usize,
    /// Classes written per kept anchor (fast NMS).
    pub max_classes_per_detection: usize,
    /// At most this many boxes kept per class (regular NMS).
    pub detections_per_class: usize,
    /// The regular (per-class) NMS instead of the fast one.
    pub use_regular_nms: bool,
    /// Scores below this are never selected.
    pub score_threshold: f32,
    /// A box overlapping a kept one by more than this IoU is dropped.
    pub iou_threshold: f32,
    /// Object classes, background excluded.
    pub num_classes: usize,
    /// Divisors of the encodings: y, x, h, w.
    pub scale: [f32; 4],
}

/// The options as the file gives them, before checking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawOptions {
    /// `max_detections`.
    pub max_detections: i64,
    /// `max_classes_per_detection`.
    pub max_classes_per_detection: i64,
    /// `detections_per_class` (LiteRT's default 100 when absent).
    pub detections_per_class: i64,
    /// `use_regular_nms` (false when absent).
    pub use_regular_nms: bool,
    /// `nms_score_threshold`.
    pub score_threshold: f32,
    /// `nms_iou_threshold`.
    pub iou_threshold: f32,
    /// `num_classes`.
    pub num_classes: i64,
    /// `y_scale`, `x_scale`, `h_scale`, `w_scale`.
    pub scale: [f32; 4],
}

/// The option keys LiteRT reads without a default, in its order.
pub const REQUIRED_KEYS: [&str; 9] = [
    "max_detections",
    "max_classes_per_detection",
    "nms_score_threshold",
    "nms_iou_threshold",
    "num_classes",
    "y_scale",
    "x_scale",
    "h_scale",
    "w_scale",
];

impl RawOptions {
    /// Checks the values: counts positive and bounded (the outputs' size is fixed by them), the
    /// IoU threshold in (0, 1] as LiteRT requires, scales finite and non-zero.
    pub fn check(self) -> Result<DetectionOptions, OpError> {
        let count = |name: &str, v: i64, min: i64| -> Result<usize, OpError> {
            if v < min {
                return Err(OpError::malformed(format!("`{name}` is {v}: use {min} or more")));
            }
            usize::try_from(v).map_err(|_| OpError::limit(format!("`{name}` is {v}: too large")))
        };
        let max_detections = count("max_detections", self.max_detections, 0)?;
        let per = count("max_classes_per_detection", self.max_classes_per_detection, 1)?;
        let rows = max_detections.checked_mul(per).filter(|&r| r <= MAX_ROWS).ok_or_else(|| {
            OpError::limit(format!(
                "`max_detections` {} × `max_classes_per_detection` {} output rows: more than qplay's limit of {MAX_ROWS}",
                self.max_detections, self.max_classes_per_detection
            ))
        })?;
        if rows == 0 && self.use_regular_nms {
            return Err(OpError::malformed("`max_detections` is 0: the regular NMS needs 1 or more"));
        }
        let detections_per_class = count("detections_per_class", self.detections_per_class, 1)?;
        let num_classes = count("num_classes", self.num_classes, 1)?;
        if num_classes > MAX_ROWS {
            return Err(OpError::limit(format!(
                "`num_classes` is {num_classes}: more than qplay's limit of {MAX_ROWS}"
            )));
        }
        if !(self.iou_threshold > 0.0 && self.iou_threshold <= 1.0) {
            return Err(OpError::malformed(format!(
                "`nms_iou_threshold` is {}: LiteRT needs a value in (0, 1]",
                self.iou_threshold
            )));
        }
        if self.score_threshold.is_nan() {
            return Err(OpError::malformed("`nms_score_threshold` is NaN"));
        }
        for (name, s) in ["y_scale", "x_scale", "h_scale", "w_scale"].iter().zip(self.scale) {
            if !s.is_finite() || s == 0.0 {
                return Err(OpError::malformed(format!(
                    "`{name}` is {s}: the box encodings are divided by it; use a finite non-zero value"
                )));
            }
        }
        Ok(DetectionOptions {
            max_detections,
            max_classes_per_detection: per,
            detections_per_class,
            use_regular_nms: self.use_regular_nms,
            score_threshold: self.score_threshold,
            iou_threshold: self.iou_threshold,
            num_classes,
            scale: self.scale,
        })
    }
}

/// The op, built from a node whose attributes hold the options.
#[derive(Debug, Clone)]
pub struct DetectionPostProcess {
    /// The checked options.
    pub options: DetectionOptions,
}

/// Builds the op from the node's attributes (written by the TFLite loader from the FlexBuffer).
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let a = &node.attrs;
    let missing = REQUIRED_KEYS.iter().find(|k| !a.0.contains_key(**k));
    if let Some(k) = missing {
        return Err(OpError::malformed(format!("{TFLITE_DETECTION_POSTPROCESS}: the option `{k}` is missing")));
    }
    let raw = RawOptions {
        max_detections: a.int("max_detections", 0),
        max_classes_per_detection: a.int("max_classes_per_detection", 0),
        detections_per_class: a.int("detections_per_class", DEFAULT_DETECTIONS_PER_CLASS),
        use_regular_nms: a.int("use_regular_nms", 0) != 0,
        score_threshold: a.float("nms_score_threshold", 0.0),
        iou_threshold: a.float("nms_iou_threshold", 0.0),
        num_classes: a.int("num_classes", 0),
        scale: [a.float("y_scale", 0.0), a.float("x_scale", 0.0), a.float("h_scale", 0.0), a.float("w_scale", 0.0)],
    };
    let options = raw.check().map_err(|e| e.map_message(|m| format!("{TFLITE_DETECTION_POSTPROCESS}: {m}")))?;
    Ok(Box::new(DetectionPostProcess { options }))
}

impl DetectionPostProcess {
    /// Output rows `M`.
    pub fn rows(&self) -> usize {
        self.options.max_detections * self.options.max_classes_per_detection
    }

    /// `(N, K, columns)` after checking the three input shapes agree.
    fn dims(&self, boxes: &[usize], classes: &[usize], anchors: &[usize]) -> Result<(usize, usize, usize), OpError> {
        let err = |what: String| OpError::mismatch(format!("{TFLITE_DETECTION_POSTPROCESS}: {what}"));
        let (n, k) = match boxes {
            [1, n, k] if *k >= 4 => (*n, *k),
            _ => return Err(err(format!("box encodings {boxes:?}: use [1, N, 4] (y, x, h, w per anchor)"))),
        };
        let c = self.options.num_classes;
        let cols = match classes {
            [1, m, cols] if *m == n && (*cols == c || *cols == c + 1) => *cols,
            _ => {
                return Err(err(format!(
                    "class predictions {classes:?} do not fit box encodings {boxes:?} and num_classes {c}: use [1, {n}, {c}] \
                     or [1, {n}, {}] (with a background column)",
                    c + 1
                )))
            }
        };
        if anchors != [n, 4] {
            return Err(err(format!("anchors {anchors:?}: use [{n}, 4] (y, x, h, w per anchor)")));
        }
        Ok((n, k, cols))
    }
}

/// A float32 input's data.
fn f32s<'a>(t: &'a Tensor, what: &str) -> Result<&'a [f32], OpError> {
    t.as_f32().map_err(|_| OpError::mismatch(format!("{TFLITE_DETECTION_POSTPROCESS}: {what} must be float32")))
}

impl Op for DetectionPostProcess {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (b, c, a) = (input_fact(inputs, 0)?, input_fact(inputs, 1)?, input_fact(inputs, 2)?);
        for (f, what) in [(b, "box encodings"), (c, "class predictions"), (a, "anchors")] {
            if f.dtype != DType::F32 {
                return Err(OpError::unsupported(format!(
                    "{TFLITE_DETECTION_POSTPROCESS}: {what} are {:?}; qplay runs the float op (float32 inputs)",
                    f.dtype
                )));
            }
        }
        self.dims(&b.shape, &c.shape, &a.shape)?;
        let m = self.rows();
        Ok(vec![
            Fact::new(DType::F32, vec![1, m, 4]),
            Fact::new(DType::F32, vec![1, m]),
            Fact::new(DType::F32, vec![1, m]),
            Fact::new(DType::F32, vec![1]),
        ])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (bt, ct, at) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        let (n, k, cols) = self.dims(&bt.shape, &ct.shape, &at.shape)?;
        let (enc, scores, anchors) = (f32s(bt, "box encodings")?, f32s(ct, "class predictions")?, f32s(at, "anchors")?);
        if enc.len() != n * k || scores.len() != n * cols || anchors.len() != n * 4 {
            return Err(OpError::malformed(format!(
                "{TFLITE_DETECTION_POSTPROCESS}: an input's data does not fill its shape"
            )));
        }
        let decoded = nms::decode(enc, k, anchors, self.options.scale);
        let o = &self.options;
        let out = if o.use_regular_nms {
            nms::regular(o, &decoded, scores, cols)
        } else {
            nms::fast(o, &decoded, scores, cols)
        }
        .map_err(|e| e.map_message(|m| format!("{TFLITE_DETECTION_POSTPROCESS}: {m}")))?;
        let m = self.rows();
        let mut boxes = vec![0f32; m * 4];
        let mut classes = vec![0f32; m];
        let mut score = vec![0f32; m];
        for (row, d) in out.rows.iter().enumerate().take(m) {
            boxes[row * 4..row * 4 + 4].copy_from_slice(&d.bbox);
            classes[row] = d.class as f32;
            score[row] = d.score;
        }
        let t = |shape: Vec<usize>, v: Vec<f32>| Tensor::f32(shape, v).map_err(|e| OpError::internal(e.to_string()));
        Ok(vec![
            t(vec![1, m, 4], boxes)?,
            t(vec![1, m], classes)?,
            t(vec![1, m], score)?,
            t(vec![1], vec![out.count as f32])?,
        ])
    }
}
