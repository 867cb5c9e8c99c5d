//! Profile inference for uploaded models, from input and output shapes alone.
//!
//! Shapes say a lot (which decoder, how many classes, layout, input size) but not everything
//! (normalisation, colour order, thresholds, class names). Every such guess is written into
//! [`AutoProfile::assumed`] in plain words so the UI can show it and let the user override it.
//!
//! Recognised output patterns (batch dimension 1):
//! - one `[1, 4 + C, N]` with `N > 4 + C` → `yolov8` (also YOLO11);
//! - one `[1, N, 5 + C]` with `N > 5 + C` → `yolov5`; when the graph ends in its head's
//!   convolutions (no arithmetic after them) and `N` is one row per cell of the stride 8/16/32
//!   (or …/64) grids → a raw YOLOX head (`grid_strides`);
//! - `[1, 896, 16]` + `[1, 896, 1]` → `blazeface`;
//! - `[1, N, 1, 4]` (or `[1, N, 4]`) + `[1, N, K]` → `ssd_anchors` (TF SSD, background class 0);
//! - `[1, C, H, W]` heatmap + `[1, 2, H, W]` sizes + `[1, 2, H, W]` offsets → `centernet`; the same
//!   channels last (`[1, H, W, C]`, TensorFlow), `[1, 4, H, W]` ltrb distances with or without
//!   offsets, and a one-class heatmap with a `[1, 2·L, H, W]` landmark map (CenterFace);
//! - one `[1, N, 6]` that is not a YOLOv5 anchor grid → `end2end` (boxes already selected);
//! - boxes `[1, M, 4]` with scores and class ids `[1, M]` (and a count) → `detections`; the same
//!   without a batch axis, `[N, 4]` + `[N]`, N known at run time (torchvision's exports);
//! - `[N, 6]` without a batch axis, from a PaddleDetection export (`multiclass_nms` in its name,
//!   or `im_shape` / `scale_factor` inputs) → `end2end` with `class_first` rows (class, score,
//!   x1, y1, x2, y2);
//! - one `[1, 56, N]` → a YOLOv8 pose output (1 class, 17 keypoints × 3), said as a guess.
//!
//! Before shapes, [`infer_profile_for`] reads the file's metadata ([`ModelMeta`]): class names,
//! the export size, and for Ultralytics files the task (`detect`, `pose` with its `kpt_shape`,
//! `segment` drawn as boxes; `classify` and `obb` are refused with the reason) and end-to-end
//! exports.

mod anchors;
mod graph;
mod heads;
mod heatmap;
mod labels;
mod rows;
mod sets;
mod ultralytics;

use super::meta::ModelMeta;
use super::profile::{
    coco80_labels, coco90_labels, AuxInput, AuxKind, AxisOrder, BlazeFace, BoxEncoding, BoxFormat, CenterNet,
    ColorOrder, Decoder, Detections, LandmarkEncoding, Layout, Profile, Resize, ScoreFn, SsdAnchors, Yolo,
};
use super::profile::{Dfl, End2End, Grid, GridBox};
use super::DetectError;
use crate::model::OpKind;
use crate::model::{Graph, ValueInfo};
use anchors::{dfl_points, grid_count, yolov5_anchor_counts};
use graph::{
    detection_postprocess, planned_outputs, raw_head_outputs, sigmoid_outputs, softmax_outputs, uint8_input,
    uint8_input_scaling,
};
use heads::{per_stride_dfl, per_stride_head, tf_detections};
use heatmap::heatmap;
use serde::{Deserialize, Serialize};
use ultralytics::ultralytics;

/// An inferred profile and the assumptions behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoProfile {
    /// The proposed profile (already validated).
    pub profile: Profile,
    /// One sentence per assumption, e.g. "pixels scaled to 0..1 (YOLO convention)".
    pub assumed: Vec<String>,
    /// Other readings the output shapes fit as well (a pose model or a 52-class detector;
    /// end-to-end rows or a one-class YOLOv5 grid; which of two maps holds the sizes), for the
    /// user to pick from; empty when the file's metadata or the shapes leave one reading.
    #[serde(default)]
    pub alternatives: Vec<Alternative>,
    /// The family fixes how pixels are scaled (MediaPipe's BlazeFace, OpenCV's YuNet,
    /// InsightFace's SCRFD take one convention only), so there is nothing to probe.
    #[serde(default)]
    pub scaling_known: bool,
}

/// Another reading of the same outputs: the profile it gives and what it means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    /// What this reading takes the outputs for, in a few words.
    pub reading: String,
    /// The full profile (the chosen one's input settings, this decoder and its labels).
    pub profile: Profile,
}

/// A shape with unknown (symbolic) dimensions as `None`.
type Dims = [Option<usize>];

fn fmt_shape(s: &Dims) -> String {
    let d: Vec<String> = s.iter().map(|d| d.map_or("?".to_string(), |v| v.to_string())).collect();
    format!("[{}]", d.join(", "))
}

/// Drops a leading batch dimension of 1 (or unknown, noted as an assumption).
fn unbatch<'a>(s: &'a Dims, assumed: &mut Vec<String>, name: &str) -> Option<&'a Dims> {
    match s.first()? {
        Some(1) => Some(&s[1..]),
        None => {
            assumed.push(format!("`{name}`: the unknown first dimension is a batch of 1"));
            Some(&s[1..])
        }
        Some(_) => None,
    }
}

/// Proposes a profile for a model with these graph inputs (initializers excluded) and outputs.
///
/// Errors when no input looks like an image (rank 4 with 3 channels first or last) or the
/// outputs match none of the patterns in the module docs; the message lists what was seen.
pub fn infer_profile(inputs: &[ValueInfo], outputs: &[ValueInfo]) -> Result<AutoProfile, DetectError> {
    infer_profile_with(inputs, outputs, &ModelMeta::default())
}

/// Proposes a profile for a loaded model, reading its metadata first ([`ModelMeta`]: class
/// names, export size, Ultralytics task and keypoint shape, end-to-end exports), then its shapes.
pub fn infer_profile_for(graph: &Graph) -> Result<AutoProfile, DetectError> {
    let mut meta = ModelMeta::parse(&graph.metadata);
    meta.sigmoid_outputs = sigmoid_outputs(graph);
    meta.softmax_outputs = softmax_outputs(graph);
    meta.raw_head_outputs = raw_head_outputs(graph);
    meta.detection_postprocess = detection_postprocess(graph);
    meta.uint8_input = uint8_input(graph);
    meta.detr |= graph.nodes.iter().any(|n| n.is(OpKind::GridSample));
    let outputs = planned_outputs(graph).unwrap_or_else(|| graph.outputs.clone());
    infer_profile_with(&graph.inputs, &outputs, &meta)
}

/// [`infer_profile`] with what the file's metadata says.
pub fn infer_profile_with(
    inputs: &[ValueInfo],
    outputs: &[ValueInfo],
    meta: &ModelMeta,
) -> Result<AutoProfile, DetectError> {
    let mut assumed = Vec::new();
    match meta.task.as_deref() {
        Some("classify") => {
            return Err(DetectError::Unrecognized(
                "the model's metadata says `task: classify`: it is an image classifier, not a detector; \
                 qplay's detector panel needs a detection model (e.g. a YOLO `-detect` or `-pose` export)"
                    .into(),
            ))
        }
        Some("obb") => {
            return Err(DetectError::Unrecognized(
                "the model's metadata says `task: obb` (oriented, rotated boxes): qplay draws axis-aligned boxes only \
                 and does not decode rotated boxes yet; export the `-detect` variant of the model"
                    .into(),
            ))
        }
        _ => {}
    }
    assumed.extend(meta.notes.iter().cloned());

    // The image input: rank 4, 3 channels in position 1 (NCHW) or 3 (NHWC); or one image without
    // a batch axis (torchvision's detection exports), to which loading for detection adds one
    // (crate::model::float_image_inputs).
    let image = inputs.iter().find_map(|v| match v.shape.as_slice() {
        [_, Some(3), h, w] | [Some(3), h, w] => Some((v, Layout::Nchw, *h, *w)),
        [_, h, w, Some(3)] | [h, w, Some(3)] => Some((v, Layout::Nhwc, *h, *w)),
        _ => None,
    });
    let Some((input, layout, in_h, in_w)) = image else {
        let seen: Vec<String> = inputs.iter().map(|v| format!("`{}` {}", v.name, fmt_shape(&v.shape))).collect();
        return Err(DetectError::Unrecognized(format!(
            "no input looks like an image (expected [1, 3, H, W] or [1, H, W, 3]); inputs: {}",
            if seen.is_empty() { "none".to_string() } else { seen.join(", ") }
        )));
    };
    // Inputs besides the image: geometry inputs recognised by name and shape (super::aux), fed
    // values that keep the outputs in input pixels; any other is an error naming it.
    let mut aux_inputs = std::collections::BTreeMap::new();
    let mut aux_notes = Vec::new();
    for v in inputs.iter().filter(|v| v.name != input.name) {
        let Some(kind) = super::aux::recognise(v) else { return Err(super::aux::unfed(v, &input.name)) };
        aux_notes.push((v.name.clone(), kind));
        aux_inputs.insert(v.name.clone(), AuxInput::Kind(kind));
    }
    let geometry = aux_notes.iter().any(|(_, k)| *k == AuxKind::InputWh);
    // PaddleDetection's exports take `im_shape` and `scale_factor`.
    let paddle = aux_notes.iter().any(|(_, k)| matches!(k, AuxKind::InputHw | AuxKind::UnitScale));
    assumed.push(match layout {
        Layout::Nchw => format!("`{}` is NCHW (3 channels in dimension 1)", input.name),
        Layout::Nhwc => format!("`{}` is NHWC (3 channels in the last dimension)", input.name),
    });

    // A size the metadata gives stands in for symbolic input dimensions.
    let (in_w, in_h, meta_size) = match meta.imgsz {
        Some([h, w]) if in_w.is_none() || in_h.is_none() => (in_w.or(Some(w)), in_h.or(Some(h)), true),
        _ => (in_w, in_h, false),
    };
    let decoder = classify(outputs, in_w, in_h, meta, (geometry, paddle), &mut assumed)?;
    let (kind, grid_h) = (decoder.kind, decoder.grid_h);
    let (def_w, def_h) = kind.default_size();
    let size = [in_w.unwrap_or(def_w), in_h.unwrap_or(def_h)];
    if meta_size {
        assumed.push(format!("input size {}×{} from the model's metadata (`imgsz`)", size[0], size[1]));
    } else if in_w.is_none() || in_h.is_none() {
        assumed.push(format!("the input size is not fixed in the model: using {}×{}", size[0], size[1]));
    }

    for (name, kind) in &aux_notes {
        let v = kind.values(size);
        assumed.push(format!(
            "`{name}` is an image-geometry input ({}): fed {} = [{}, {}], so the model's own post-processing leaves its boxes \
             in input pixels, mapped to the photo like any other model's (`aux_inputs` in the profile)",
            match kind {
                AuxKind::InputWh => "the original [width, height] by which the model scales its boxes: D-FINE, RT-DETR",
                AuxKind::InputHw => "an image [height, width]: PaddleDetection's `im_shape`",
                AuxKind::UnitScale => "a resize factor [sy, sx]: PaddleDetection's `scale_factor`",
            },
            kind.describe(),
            v[0],
            v[1]
        ));
    }

    let (mean, std, color, resize, score_threshold, iou_threshold) = match kind {
        Kind::Yolo => {
            assumed.push("RGB pixels scaled to 0..1, letterboxed with grey (114) padding (YOLO convention)".into());
            assumed.push("score threshold 0.25, IoU threshold 0.45 (Ultralytics defaults)".into());
            ([0.0; 3], [1.0; 3], ColorOrder::Rgb, Resize::Letterbox { pad: 114.0, top_left: false }, 0.25, 0.45)
        }
        Kind::Scrfd => {
            assumed.push(
                "RGB pixels normalised as (pixel − 127.5)/128, in the top-left corner with black padding (InsightFace's SCRFD)".into(),
            );
            assumed.push("score threshold 0.5, IoU threshold 0.4 (InsightFace's defaults)".into());
            ([0.5; 3], [128.0 / 255.0; 3], ColorOrder::Rgb, Resize::Letterbox { pad: 0.0, top_left: true }, 0.5, 0.4)
        }
        Kind::YuNet => {
            assumed
                .push("BGR pixels 0..255 (no normalisation) stretched to the input (OpenCV's FaceDetectorYN)".into());
            assumed.push("score threshold 0.9, IoU threshold 0.3 (OpenCV's FaceDetectorYN defaults)".into());
            ([0.0; 3], [1.0 / 255.0; 3], ColorOrder::Bgr, Resize::Stretch, 0.9, 0.3)
        }
        Kind::RtDetr => {
            assumed
                .push("RGB pixels scaled to 0..1 and stretched to the input (Ultralytics' RT-DETR predictor)".into());
            assumed.push("score threshold 0.25 (Ultralytics' default); no NMS".into());
            ([0.0; 3], [1.0; 3], ColorOrder::Rgb, Resize::Stretch, 0.25, 0.45)
        }
        Kind::Detr => {
            assumed.push(
                "RGB pixels normalised with ImageNet's mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), stretched to the input (Hugging Face's DETR image processors)"
                    .into(),
            );
            assumed.push("score threshold 0.5 (Hugging Face's `post_process_object_detection`); no NMS".into());
            ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], ColorOrder::Rgb, Resize::Stretch, 0.5, 0.5)
        }
        Kind::Yolox => {
            assumed.push(
                "BGR pixels 0..255 (no normalisation), in the top-left corner with grey (114) padding right and below (YOLOX's preproc)"
                    .into(),
            );
            assumed.push("score threshold 0.3, IoU threshold 0.45 (YOLOX's demo)".into());
            ([0.0; 3], [1.0 / 255.0; 3], ColorOrder::Bgr, Resize::Letterbox { pad: 114.0, top_left: true }, 0.3, 0.45)
        }
        Kind::Ssd => {
            assumed.push(
                "RGB pixels scaled to −1..1 (pixel/127.5 − 1) and stretched to the input (TF SSD convention)".into(),
            );
            assumed.push("score threshold 0.5, IoU threshold 0.6 (TF Object Detection API defaults)".into());
            ([0.5; 3], [0.5; 3], ColorOrder::Rgb, Resize::Stretch, 0.5, 0.6)
        }
        Kind::CenterNet => {
            assumed.push(
                "BGR pixels normalised with CenterNet's mean (0.408, 0.447, 0.470) and std (0.289, 0.274, 0.278), letterboxed with black padding"
                    .into(),
            );
            assumed.push("score threshold 0.3, IoU threshold 0.5".into());
            (
                [0.408, 0.447, 0.470],
                [0.289, 0.274, 0.278],
                ColorOrder::Bgr,
                Resize::Letterbox { pad: 0.0, top_left: false },
                0.3,
                0.5,
            )
        }
        Kind::CenterNetTf => {
            assumed.push(
                "RGB pixels 0..255, letterboxed with black padding (TensorFlow detection exports normalise inside the graph)"
                    .into(),
            );
            assumed.push("score threshold 0.3, IoU threshold 0.5".into());
            ([0.0; 3], [1.0 / 255.0; 3], ColorOrder::Rgb, Resize::Letterbox { pad: 0.0, top_left: false }, 0.3, 0.5)
        }
        Kind::CenterFace => {
            assumed.push("RGB pixels 0..255 (no normalisation) stretched to the input (CenterFace's demo)".into());
            assumed.push("score threshold 0.5, IoU threshold 0.3 (CenterFace's demo)".into());
            ([0.0; 3], [1.0 / 255.0; 3], ColorOrder::Rgb, Resize::Stretch, 0.5, 0.3)
        }
        Kind::NanoDet => {
            assumed.push(
                "BGR pixels normalised with NanoDet's mean (103.53, 116.28, 123.675) and std (57.375, 57.12, 58.395) and stretched to the input (NanoDet's pipeline)"
                    .into(),
            );
            assumed.push("score threshold 0.35, IoU threshold 0.6 (NanoDet's demo)".into());
            (
                [103.53 / 255.0, 116.28 / 255.0, 123.675 / 255.0],
                [57.375 / 255.0, 57.12 / 255.0, 58.395 / 255.0],
                ColorOrder::Bgr,
                Resize::Stretch,
                0.35,
                0.6,
            )
        }
        Kind::TorchDetections => {
            assumed.push(
                "RGB pixels scaled to 0..1 and stretched to the input (PyTorch exports: D-FINE's and RT-DETR's `ToTensor`; \
                 torchvision's detectors normalise inside)"
                    .into(),
            );
            assumed
                .push("score threshold 0.4 (D-FINE's demo); the model selected its detections itself: no NMS".into());
            ([0.0; 3], [1.0; 3], ColorOrder::Rgb, Resize::Stretch, 0.4, 0.5)
        }
        Kind::Paddle => {
            assumed.push(
                "RGB pixels normalised with ImageNet's mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) and stretched \
                 to the input (PaddleDetection's PP-YOLOE and PicoDet `NormalizeImage`, `Resize keep_ratio: false`)"
                    .into(),
            );
            assumed
                .push("score threshold 0.5 (PaddleDetection's `draw_threshold`); the model applied its own NMS".into());
            ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], ColorOrder::Rgb, Resize::Stretch, 0.5, 0.5)
        }
        Kind::TfDetections => {
            assumed.push(
                "RGB pixels 0..255 stretched to the input (TensorFlow detection exports normalise inside the graph)"
                    .into(),
            );
            assumed
                .push("score threshold 0.5 (TF Object Detection API's default); the model applied its own NMS".into());
            ([0.0; 3], [1.0 / 255.0; 3], ColorOrder::Rgb, Resize::Stretch, 0.5, 0.5)
        }
        Kind::BlazeFace => {
            assumed.push("RGB pixels scaled to −1..1 (pixel/127.5 − 1) and stretched to the input (MediaPipe)".into());
            assumed.push("score threshold 0.5, IoU threshold 0.3 (MediaPipe face detection)".into());
            ([0.5; 3], [0.5; 3], ColorOrder::Rgb, Resize::Stretch, 0.5, 0.3)
        }
    };

    let labels = labels::labels(kind, &decoder, meta, geometry, &mut assumed);

    let (mut mean, mut std) = (mean, std);
    let uint8_scaling = uint8_input_scaling(meta, &input.name, (&mut mean, &mut std), &mut assumed);

    let alternatives = decoder.alternatives;
    let mut decoder = decoder.decoder;
    if let (Decoder::Centernet(c), Some(grid_h)) = (&mut decoder, grid_h) {
        c.stride = size[1] as f32 / grid_h as f32;
        assumed.push(format!("heatmap stride {} input pixels per cell", c.stride));
    }

    let profile = Profile {
        input: input.name.clone(),
        size,
        layout,
        color,
        mean,
        std,
        resize,
        decoder,
        score_threshold,
        iou_threshold,
        max_detections: 100,
        labels,
        aux_inputs,
    };
    profile.validate()?;
    let alternatives = alternatives
        .into_iter()
        .map(|(reading, mut decoder)| {
            match (&mut decoder, &profile.decoder, grid_h) {
                (Decoder::Centernet(a), Decoder::Centernet(m), _) => a.stride = m.stride,
                (Decoder::Centernet(a), _, Some(gh)) => a.stride = size[1] as f32 / gh as f32,
                _ => {}
            }
            let labels = if decoder_classes(&decoder) == decoder_classes(&profile.decoder) {
                profile.labels.clone()
            } else {
                Vec::new()
            };
            Alternative { reading, profile: Profile { decoder, labels, ..profile.clone() } }
        })
        .filter(|a| a.profile.validate().is_ok())
        .collect();
    // D-FINE and RT-DETR (the geometry input says so) take 0..1 pixels, as torchvision's models.
    let scaling_known =
        uint8_scaling || matches!(kind, Kind::BlazeFace | Kind::YuNet | Kind::Scrfd | Kind::TorchDetections);
    Ok(AutoProfile { profile, assumed, alternatives, scaling_known })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Yolo,
    Ssd,
    CenterNet,
    /// CenterNet exported from TensorFlow (channels-last outputs).
    CenterNetTf,
    CenterFace,
    Yolox,
    BlazeFace,
    /// Separate boxes, scores, classes and count (TensorFlow detection exports).
    TfDetections,
    /// Separate boxes (x1, y1, x2, y2 in pixels), integer labels and scores (PyTorch exports:
    /// D-FINE, RT-DETR with `orig_target_sizes`, torchvision's detectors).
    TorchDetections,
    /// NanoDet-Plus (GFL/DFL head).
    NanoDet,
    /// PaddleDetection exports with their NMS (`multiclass_nms3` rows).
    Paddle,
    /// RT-DETR (Ultralytics): stretched, not letterboxed.
    RtDetr,
    /// DETR-style set predictions in two tensors, boxes and class values (Hugging Face exports
    /// of DETR, YOLOS, Deformable DETR, RT-DETR, D-FINE; custom transformers).
    Detr,
    /// SCRFD face detector (InsightFace).
    Scrfd,
    /// YuNet face detector (OpenCV).
    YuNet,
}

impl Kind {
    /// Input size used when the model leaves it symbolic.
    fn default_size(self) -> (usize, usize) {
        match self {
            Kind::Yolo | Kind::RtDetr | Kind::Detr => (640, 640),
            Kind::Ssd => (300, 300),
            Kind::CenterNet | Kind::CenterNetTf => (512, 512),
            Kind::CenterFace | Kind::Yolox => (640, 640),
            Kind::BlazeFace => (128, 128),
            Kind::TfDetections | Kind::NanoDet | Kind::Scrfd | Kind::YuNet => (320, 320),
            Kind::Paddle => (640, 640),
            Kind::TorchDetections => (640, 640),
        }
    }
}

struct Classified {
    kind: Kind,
    decoder: Decoder,
    /// Other decoders the shapes fit, with what each reads the outputs as.
    alternatives: Vec<(String, Decoder)>,
    /// Number of object classes (background excluded), when known.
    classes: Option<usize>,
    /// CenterNet: heatmap rows, from which the stride follows once the input size is known.
    grid_h: Option<usize>,
}

/// Picks the decoder from output shapes.
fn classify(
    outputs: &[ValueInfo],
    in_w: Option<usize>,
    in_h: Option<usize>,
    meta: &ModelMeta,
    (geometry, paddle): (bool, bool),
    assumed: &mut Vec<String>,
) -> Result<Classified, DetectError> {
    let mut notes = Vec::new();
    let shapes: Vec<(&str, &Dims)> =
        outputs.iter().filter_map(|o| Some((o.name.as_str(), unbatch(&o.shape, &mut notes, &o.name)?))).collect();
    let seen = anchors::Outputs { shapes: &shapes, in_w, in_h };

    if let Some(c) = heads::tflite_postprocess(meta, assumed) {
        return Ok(c);
    }
    // Ultralytics exports say what they are: read the task before guessing from shapes.
    if let Some(c) = ultralytics(&shapes, meta, assumed) {
        assumed.extend(notes);
        return Ok(c);
    }

    if let Some(c) = anchors::blazeface(seen, assumed, &mut notes) {
        return Ok(c);
    }
    if let Some(c) = tf_detections(outputs, &shapes, geometry, assumed) {
        assumed.extend(notes);
        return Ok(c);
    }
    if let Some(c) = heads::torchvision(outputs, paddle, geometry, assumed) {
        return Ok(c);
    }
    if let Some(c) = per_stride_head(&shapes, in_w, in_h, assumed) {
        assumed.extend(notes);
        return Ok(c);
    }
    if let Some(c) = per_stride_dfl(&shapes, meta, in_w, in_h, assumed) {
        assumed.extend(notes);
        return Ok(c);
    }
    if let Some(c) = sets::detr(&shapes, meta, assumed) {
        assumed.extend(notes);
        return Ok(c);
    }
    if let Some(c) = anchors::ssd(seen, assumed, &mut notes) {
        return Ok(c);
    }

    if let Some(mut c) = heatmap(&shapes, meta, assumed) {
        assumed.extend(notes);
        // A heatmap model that decodes itself too (TF CenterNet's `detections` [1, N, 6]): its own
        // rows first, the maps decoded by qplay as the other reading.
        let rows = shapes.iter().find(|(_, s)| matches!(s, [Some(n), Some(6)] if *n <= 1000));
        if let Some(&(name, s)) = rows {
            assumed.push(format!(
                "`{name}` [1, {}, 6] holds the boxes the model decoded and selected itself (x1, y1, x2, y2, score, class in input \
                 pixels): used as they are; the maps decoded by qplay are offered as another reading",
                s[0].unwrap_or(0)
            ));
            let mut alternatives = vec![("the heatmap and box maps, decoded by qplay".to_string(), c.decoder)];
            alternatives.append(&mut c.alternatives);
            c = Classified { decoder: Decoder::End2end(End2End::new(name)), alternatives, ..c };
        }
        return Ok(c);
    }

    if let Some(c) = rows::yolo_rows(&shapes, in_w, in_h, meta, assumed, &mut notes) {
        return Ok(c);
    }
    let seen: Vec<String> = outputs.iter().map(|o| format!("`{}` {}", o.name, fmt_shape(&o.shape))).collect();
    Err(DetectError::Unrecognized(format!(
        "the outputs {} match no supported detector ([1, 4+C, N] YOLOv8/YOLO11, [1, N, 5+C] YOLOv5/v6/v7 or a raw YOLOX head, \
         [1, N, C+32] NanoDet-Plus, [1, N, 6] end-to-end rows or [1, Q, 4+C] RT-DETR, [1, N, 1, 4] + [1, N, K] SSD, boxes/scores/classes/count \
         (TensorFlow), a heatmap with a size or ltrb map on its grid (CenterNet, CenterFace), per-stride score/box(/landmark) outputs \
         (SCRFD, YuNet, NanoDet/PicoDet bins), [1, N, 16] + [1, N, 1] BlazeFace); write a profile (the decoders and their fields: \
         www/profile.html), e.g. `grid` for per-stride heads or `end2end` for rows the model selected itself",
        if seen.is_empty() { "(none)".to_string() } else { seen.join(", ") }
    )))
}

/// The class count a YOLO decoder is fixed to, for comparing readings (`None` otherwise).
fn decoder_classes(d: &Decoder) -> Option<usize> {
    match d {
        Decoder::Yolov5(y) | Decoder::Yolov8(y) => y.classes,
        _ => None,
    }
}

/// Whether an output name contains one of the hints (case-insensitive).
fn looks_like(name: &str, hints: &[&str]) -> bool {
    let n = name.to_ascii_lowercase();
    hints.iter().any(|h| n.contains(h))
}
