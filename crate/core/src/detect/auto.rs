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
//! - one `[1, 56, N]` → a YOLOv8 pose output (1 class, 17 keypoints × 3), said as a guess.
//!
//! Before shapes, [`infer_profile_for`] reads the file's metadata ([`ModelMeta`]): class names,
//! the export size, and for Ultralytics files the task (`detect`, `pose` with its `kpt_shape`,
//! `segment` drawn as boxes; `classify` and `obb` are refused with the reason) and end-to-end
//! exports.

use super::meta::ModelMeta;
use super::profile::{
    coco80_labels, coco90_labels, AxisOrder, BlazeFace, BoxEncoding, BoxFormat, CenterNet, ColorOrder, Decoder,
    Detections, LandmarkEncoding, Layout, Profile, Resize, ScoreFn, SsdAnchors, Yolo,
};
use super::profile::{Dfl, End2End, Grid, GridBox};
use super::DetectError;
use crate::model::{Graph, ValueInfo};
use serde::{Deserialize, Serialize};

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
    meta.raw_head_outputs = raw_head_outputs(graph);
    meta.detr |= graph.nodes.iter().any(|n| n.op_type == "GridSample");
    let outputs = planned_outputs(graph).unwrap_or_else(|| graph.outputs.clone());
    infer_profile_with(&graph.inputs, &outputs, &meta)
}

/// Output shapes the file leaves unknown (TF.js and tf2onnx conversions often do), filled in by
/// planning the graph for its image input when that input's shape is fixed; `None` when nothing
/// is unknown or planning cannot tell.
fn planned_outputs(graph: &Graph) -> Option<Vec<ValueInfo>> {
    if graph.outputs.iter().all(|o| !o.shape.is_empty() && o.shape.iter().all(Option::is_some)) {
        return None;
    }
    let image = graph.inputs.iter().find(|v| {
        matches!(v.shape.as_slice(), [Some(1), Some(3), Some(_), Some(_)] | [Some(1), Some(_), Some(_), Some(3)])
    })?;
    if graph.inputs.len() != 1 {
        return None;
    }
    let shape: Vec<usize> = image.shape.iter().map(|d| d.unwrap_or(1)).collect();
    let plan = crate::model::Plan::new(graph, &crate::ops::Registry::new(), &[(image.name.clone(), shape)]).ok()?;
    Some(
        graph
            .outputs
            .iter()
            .map(|o| match plan.fact(&o.name) {
                Some(f) if !plan.output_names().is_empty() => {
                    ValueInfo { shape: f.shape.iter().map(|&d| Some(d)).collect(), ..o.clone() }
                }
                _ => o.clone(),
            })
            .collect(),
    )
}

/// Graph outputs computed from Conv outputs by data movement and Sigmoid only (see
/// [`ModelMeta::raw_head_outputs`]).
fn raw_head_outputs(graph: &Graph) -> Vec<String> {
    const MOVE: [&str; 10] =
        ["Reshape", "Transpose", "Identity", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Sigmoid"];
    let producer: std::collections::HashMap<&str, &crate::model::Node> =
        graph.nodes.iter().flat_map(|n| n.outputs.iter().map(move |o| (o.as_str(), n))).collect();
    let raw = |out: &str| {
        let (mut stack, mut seen, mut convs) = (vec![out], std::collections::HashSet::new(), 0);
        while let Some(t) = stack.pop() {
            if !seen.insert(t) || seen.len() > 10_000 {
                continue;
            }
            match producer.get(t) {
                Some(n) if n.op_type == "Conv" => convs += 1,
                Some(n) if MOVE.contains(&n.op_type.as_str()) => {
                    // Data inputs only: a Reshape's shape or an Unsqueeze's axes are constants.
                    let data = if n.op_type == "Concat" { &n.inputs[..] } else { &n.inputs[..n.inputs.len().min(1)] };
                    stack.extend(data.iter().map(String::as_str).filter(|i| !graph.initializers.contains_key(*i)));
                }
                _ => return false,
            }
        }
        convs > 0
    };
    graph.outputs.iter().filter(|o| raw(&o.name)).map(|o| o.name.clone()).collect()
}

/// Graph outputs computed by a Sigmoid (through layout-only ops: Reshape, Transpose, …), whose
/// values are probabilities already.
fn sigmoid_outputs(graph: &Graph) -> Vec<String> {
    const LAYOUT: [&str; 6] = ["Reshape", "Transpose", "Identity", "Flatten", "Squeeze", "Unsqueeze"];
    let producer = |name: &str| graph.nodes.iter().find(|n| n.outputs.iter().any(|o| o == name));
    graph
        .outputs
        .iter()
        .filter(|o| {
            let mut name = o.name.as_str();
            for _ in 0..8 {
                match producer(name) {
                    Some(n) if n.op_type == "Sigmoid" => return true,
                    Some(n) if LAYOUT.contains(&n.op_type.as_str()) && !n.inputs.is_empty() => name = &n.inputs[0],
                    _ => return false,
                }
            }
            false
        })
        .map(|o| o.name.clone())
        .collect()
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

    // The image input: rank 4, 3 channels in position 1 (NCHW) or 3 (NHWC).
    let image = inputs.iter().find_map(|v| match v.shape.as_slice() {
        [_, Some(3), h, w] => Some((v, Layout::Nchw, *h, *w)),
        [_, h, w, Some(3)] => Some((v, Layout::Nhwc, *h, *w)),
        _ => None,
    });
    let Some((input, layout, in_h, in_w)) = image else {
        let seen: Vec<String> = inputs.iter().map(|v| format!("`{}` {}", v.name, fmt_shape(&v.shape))).collect();
        return Err(DetectError::Unrecognized(format!(
            "no input looks like an image (expected [1, 3, H, W] or [1, H, W, 3]); inputs: {}",
            if seen.is_empty() { "none".to_string() } else { seen.join(", ") }
        )));
    };
    if inputs.len() > 1 {
        assumed.push(format!("`{}` is the image input; the other inputs are left to their defaults", input.name));
    }
    assumed.push(match layout {
        Layout::Nchw => format!("`{}` is NCHW (3 channels in dimension 1)", input.name),
        Layout::Nhwc => format!("`{}` is NHWC (3 channels in the last dimension)", input.name),
    });

    // A size the metadata gives stands in for symbolic input dimensions.
    let (in_w, in_h, meta_size) = match meta.imgsz {
        Some([h, w]) if in_w.is_none() || in_h.is_none() => (in_w.or(Some(w)), in_h.or(Some(h)), true),
        _ => (in_w, in_h, false),
    };
    let decoder = classify(outputs, in_w, in_h, meta, &mut assumed)?;
    let (kind, grid_h) = (decoder.kind, decoder.grid_h);
    let (def_w, def_h) = kind.default_size();
    let size = [in_w.unwrap_or(def_w), in_h.unwrap_or(def_h)];
    if meta_size {
        assumed.push(format!("input size {}×{} from the model's metadata (`imgsz`)", size[0], size[1]));
    } else if in_w.is_none() || in_h.is_none() {
        assumed.push(format!("the input size is not fixed in the model: using {}×{}", size[0], size[1]));
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

    let labels = match (kind, decoder.classes, &meta.names) {
        (Kind::BlazeFace | Kind::CenterFace | Kind::Scrfd | Kind::YuNet, _, None) => vec!["face".to_string()],
        (Kind::TfDetections, _, None) if matches!(&decoder.decoder, Decoder::Detections(d) if d.first_class == 1) => {
            assumed.push(
                "class ids 1..90 of the TF Object Detection API's COCO label map (0 is background): the COCO names"
                    .into(),
            );
            coco90_labels()
        }
        (_, c, Some(names)) => {
            let key = meta.names_key.as_deref().unwrap_or("names");
            match c {
                Some(c) if c != names.len() => assumed.push(format!(
                    "class names from the model's metadata (`{key}`): it names {} classes but the output has {c}; \
                     classes without a name are shown as `class N`",
                    names.len()
                )),
                _ => assumed.push(format!("{} class names from the model's metadata (`{key}`)", names.len())),
            }
            names.clone()
        }
        (_, Some(80), None) => {
            assumed.push("80 classes: the COCO class names".into());
            coco80_labels()
        }
        (_, c, None) => {
            assumed.push(format!(
                "{} classes without names: shown as `class 0`, `class 1`, …; add `labels` to the profile",
                c.map_or("an unknown number of".to_string(), |c| c.to_string())
            ));
            Vec::new()
        }
    };

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
    let scaling_known = matches!(kind, Kind::BlazeFace | Kind::YuNet | Kind::Scrfd);
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
    /// NanoDet-Plus (GFL/DFL head).
    NanoDet,
    /// RT-DETR (Ultralytics): stretched, not letterboxed.
    RtDetr,
    /// SCRFD face detector (InsightFace).
    Scrfd,
    /// YuNet face detector (OpenCV).
    YuNet,
}

impl Kind {
    /// Input size used when the model leaves it symbolic.
    fn default_size(self) -> (usize, usize) {
        match self {
            Kind::Yolo | Kind::RtDetr => (640, 640),
            Kind::Ssd => (300, 300),
            Kind::CenterNet | Kind::CenterNetTf => (512, 512),
            Kind::CenterFace | Kind::Yolox => (640, 640),
            Kind::BlazeFace => (128, 128),
            Kind::TfDetections | Kind::NanoDet | Kind::Scrfd | Kind::YuNet => (320, 320),
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
    assumed: &mut Vec<String>,
) -> Result<Classified, DetectError> {
    let mut notes = Vec::new();
    let shapes: Vec<(&str, &Dims)> =
        outputs.iter().filter_map(|o| Some((o.name.as_str(), unbatch(&o.shape, &mut notes, &o.name)?))).collect();
    let rank = |r: usize| shapes.iter().filter(move |(_, s)| s.len() == r).copied();

    // Ultralytics exports say what they are: read the task before guessing from shapes.
    if let Some(c) = ultralytics(&shapes, meta, assumed) {
        assumed.extend(notes);
        return Ok(c);
    }

    // BlazeFace (MediaPipe face detection): [N, 16] regressors + [N, 1] scores, N the anchors of
    // one of MediaPipe's anchor layouts for this input size: short range (128: strides 8, 16, 16,
    // 16; 2 anchors each), back camera (256: strides 16, 32, 32, 32), full range (192: stride 4,
    // 1 anchor).
    // Exports may split the anchors over several pairs (512 + 384): finest (most rows) first.
    let mut pairs: Vec<(&str, &str, usize)> = rank(2)
        .filter(|(_, s)| s[1] == Some(16))
        .filter_map(|(r, s)| {
            let cls = rank(2).find(|(c, cs)| *c != r && cs[0] == s[0] && cs[1] == Some(1))?;
            Some((r, cls.0, s[0]?))
        })
        .collect();
    pairs.sort_by_key(|p| std::cmp::Reverse(p.2));
    let reg = pairs.first().map(|&(r, c, _)| (r, c, pairs.iter().map(|p| p.2).sum::<usize>()));
    if let (Some((r, c, n)), Some(w), Some(h)) = (reg, in_w, in_h) {
        let layouts: [(&[usize], usize, &str); 3] =
            [(&[8, 16, 16, 16], 2, "short range"), (&[16, 32, 32, 32], 2, "back camera"), (&[4], 1, "full range")];
        let fit = layouts.iter().find(|(strides, per, _)| {
            let d = BlazeFace {
                regressors_output: String::new(),
                classificators_output: String::new(),
                strides: strides.to_vec(),
                anchors_per_layer: *per,
                coord_scale: w as f32,
                num_keypoints: 6,
                score_clip: 100.0,
                more_outputs: Vec::new(),
            };
            super::decode::blazeface::anchors(&d, w, h).len() == n
        });
        if let Some((strides, per, layout)) = fit {
            assumed.extend(notes);
            let split = if pairs.len() > 1 {
                format!(
                    " (the anchors split over {} output pairs: {})",
                    pairs.len(),
                    pairs.iter().map(|p| format!("`{}` + `{}` {} rows", p.0, p.1, p.2)).collect::<Vec<_>>().join(", ")
                )
            } else {
                String::new()
            };
            assumed.push(format!(
                "`{r}` and `{c}` are MediaPipe BlazeFace ({layout}) regressors [1, N, 16] and scores [1, N, 1], {n} anchors \
                 on strides {strides:?}, 6 keypoints{split}"
            ));
            let d = BlazeFace {
                regressors_output: r.to_string(),
                classificators_output: c.to_string(),
                strides: strides.to_vec(),
                anchors_per_layer: *per,
                coord_scale: w as f32,
                num_keypoints: 6,
                score_clip: 100.0,
                more_outputs: pairs[1..].iter().map(|p| [p.0.to_string(), p.1.to_string()]).collect(),
            };
            return Ok(Classified {
                alternatives: Vec::new(),
                kind: Kind::BlazeFace,
                decoder: Decoder::Blazeface(d),
                classes: Some(1),
                grid_h: None,
            });
        }
    }

    if let Some(c) = tf_detections(outputs, &shapes, assumed) {
        assumed.extend(notes);
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

    // SSD: [N, 1, 4] or [N, 4] box codes + [N, K] logits with the same N.
    let boxes = shapes.iter().find(|(_, s)| matches!(s, [Some(_), Some(1), Some(4)] | [Some(_), Some(4)]));
    if let Some(&(bname, bs)) = boxes {
        let n = bs[0];
        let logits = rank(2).find(|(name, s)| *name != bname && s[0] == n && s[1].is_some_and(|k| k >= 2));
        if let Some((lname, ls)) = logits {
            let (n, k) = (n.unwrap_or(0), ls[1].unwrap_or(0));
            assumed.extend(notes);
            assumed.push(format!(
                "`{bname}` holds SSD box codes (ty, tx, th, tw; scales 10, 10, 5, 5) and `{lname}` class logits (sigmoid), class 0 is background"
            ));
            let (w, h) = (in_w.unwrap_or(300), in_h.unwrap_or(300));
            let feature_maps = ssd_feature_maps(w, h);
            let d = SsdAnchors {
                num_layers: 6,
                feature_maps,
                min_scale: 0.2,
                max_scale: 0.95,
                aspect_ratios: vec![1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
                reduce_boxes_in_lowest_layer: true,
                interpolated_scale_aspect_ratio: 1.0,
                box_scales: [10.0, 10.0, 5.0, 5.0],
                boxes_output: bname.to_string(),
                logits_output: lname.to_string(),
                background_class: Some(0),
                score: ScoreFn::Sigmoid,
            };
            let count = super::decode::ssd::anchors(&d).len();
            if count == n {
                assumed.push(format!(
                    "TF SSD MobileNet anchors: 6 layers ({}), scales 0.2..0.95, aspect ratios 1, 2, 0.5, 3, 1/3 — {n} anchors as the model has",
                    d.feature_maps.iter().map(|m| format!("{}×{}", m[0], m[1])).collect::<Vec<_>>().join(", ")
                ));
            } else {
                assumed.push(format!(
                    "the model has {n} anchors but the standard TF SSD anchors give {count}: edit `feature_maps` and the anchor settings from the model's pipeline.config"
                ));
            }
            return Ok(Classified {
                alternatives: Vec::new(),
                kind: Kind::Ssd,
                decoder: Decoder::SsdAnchors(d),
                classes: Some(k - 1),
                grid_h: None,
            });
        }
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

    // YOLO: a single [A, B] output (the first one that fits, if the model has several).
    for &(name, s) in shapes.iter().filter(|(_, s)| s.len() == 2) {
        let others = shapes.len() > 1;
        // [N, 6] rows that are not a YOLOv5 anchor grid: boxes the model already selected.
        if let (Some(n), Some(6)) = (s[0], s[1]) {
            if meta.end2end || (n <= 1000 && !yolov5_anchor_counts(in_w, in_h).contains(&n)) {
                assumed.extend(notes);
                assumed.push(format!(
                    "`{name}` [1, {n}, 6] holds boxes the model already selected (end-to-end export: x1, y1, x2, y2, score, class; no NMS applied){}",
                    if meta.end2end { ", as its metadata says" } else { "" }
                ));
                let d = End2End::new(name);
                let alternatives = if meta.end2end {
                    Vec::new()
                } else {
                    vec![(
                        "YOLOv5-style rows of one class (box, objectness, score), NMS applied".into(),
                        Decoder::Yolov5(Yolo::new(name)),
                    )]
                };
                return Ok(Classified {
                    alternatives,
                    kind: Kind::Yolo,
                    decoder: Decoder::End2end(d),
                    classes: None,
                    grid_h: None,
                });
            }
        }
        match (s[0], s[1]) {
            (Some(56), b) if b.is_none_or(|n| n > 56) => {
                assumed.extend(notes);
                assumed.push(format!(
                    "`{name}` [1, 56, {}] is taken as a YOLOv8/YOLO11 pose output: 1 class (person) and 17 keypoints (x, y, visibility); \
                     a 52-class detector has the same shape: set `keypoints` to 0 in the profile if so",
                    b.map_or("?".into(), |n| n.to_string())
                ));
                let d = Yolo { classes: Some(1), keypoints: 17, keypoint_dims: 3, ..Yolo::new(name) };
                return Ok(Classified {
                    alternatives: vec![(
                        "a YOLOv8/YOLO11 detector with 52 classes and no keypoints".into(),
                        Decoder::Yolov8(Yolo::new(name)),
                    )],
                    kind: Kind::Yolo,
                    decoder: Decoder::Yolov8(d),
                    classes: Some(1),
                    grid_h: None,
                });
            }
            (Some(a), b) if a > 4 && b.is_none_or(|n| n > a) => {
                assumed.extend(notes);
                assumed.push(format!(
                    "`{name}` [1, {a}, {}] is a YOLOv8/YOLO11 output: {} classes, no objectness",
                    b.map_or("?".into(), |n| n.to_string()),
                    a - 4
                ));
                if others {
                    assumed.push(format!("outputs other than `{name}` are ignored"));
                }
                let d = Yolo::new(name);
                return Ok(Classified {
                    alternatives: Vec::new(),
                    kind: Kind::Yolo,
                    decoder: Decoder::Yolov8(d),
                    classes: Some(a - 4),
                    grid_h: None,
                });
            }
            (Some(a), Some(b))
                if b > 32
                    && a > b
                    && meta.raw_head_outputs.iter().any(|o| o == name)
                    && (dfl_points(&[8, 16, 32, 64], in_w, in_h) == Some(a)
                        || (dfl_points(&[8, 16, 32], in_w, in_h) == Some(a)
                            && (b - 32 == 80 || meta.names.as_ref().is_some_and(|n| n.len() + 32 == b)))) =>
            {
                assumed.extend(notes);
                let four = dfl_points(&[8, 16, 32, 64], in_w, in_h) == Some(a);
                let strides = if four { vec![8, 16, 32, 64] } else { vec![8, 16, 32] };
                assumed.push(format!(
                    "`{name}` [1, {a}, {b}] is a raw NanoDet-Plus / GFL head (one row per point of the stride {strides:?} grids): \
                     {} class scores, then 4 × 8 distance bins (reg_max 7)",
                    b - 32
                ));
                let d = Dfl { output: name.to_string(), strides, reg_max: 7, cell_center: 0.0, multi_label: true };
                let mut alternatives = Vec::new();
                if !four {
                    alternatives.push((
                        "a raw YOLOX head (grid offsets, log sizes, objectness, class scores)".to_string(),
                        Decoder::Yolov5(Yolo { grid_strides: vec![8, 16, 32], ..Yolo::new(name) }),
                    ));
                }
                return Ok(Classified {
                    alternatives,
                    kind: Kind::NanoDet,
                    decoder: Decoder::Dfl(d),
                    classes: Some(b - 32),
                    grid_h: None,
                });
            }
            (a, Some(b)) if b > 5 && a.is_none_or(|n| n > b) => {
                assumed.extend(notes);
                // Raw head outputs with one row per grid cell: YOLOX exported without its decode.
                let strides = [vec![8, 16, 32], vec![8, 16, 32, 64]]
                    .into_iter()
                    .find(|st| a.is_some() && a == grid_count(st, in_w, in_h))
                    .filter(|_| meta.raw_head_outputs.iter().any(|o| o == name));
                if let Some(grid_strides) = strides {
                    assumed.push(format!(
                        "`{name}` [1, {}, {b}] is a raw YOLOX head (outputs of the convolutions moved around only, one row per cell of \
                         the stride {grid_strides:?} grids): boxes are grid offsets and log sizes, then objectness and {} class scores",
                        a.unwrap_or(0),
                        b - 5
                    ));
                    let d = Yolo { grid_strides, ..Yolo::new(name) };
                    return Ok(Classified {
                        alternatives: Vec::new(),
                        kind: Kind::Yolox,
                        decoder: Decoder::Yolov5(d),
                        classes: Some(b - 5),
                        grid_h: None,
                    });
                }
                assumed.push(format!(
                    "`{name}` [1, {}, {b}] is a YOLOv5-style output: objectness and {} classes (if this is a transposed YOLOv8 output, it has no objectness and the scores will be wrong)",
                    a.map_or("?".into(), |n| n.to_string()),
                    b - 5
                ));
                if others {
                    assumed.push(format!("outputs other than `{name}` are ignored"));
                }
                let d = Yolo::new(name);
                return Ok(Classified {
                    alternatives: Vec::new(),
                    kind: Kind::Yolo,
                    decoder: Decoder::Yolov5(d),
                    classes: Some(b - 5),
                    grid_h: None,
                });
            }
            _ => {}
        }
    }

    let seen: Vec<String> = outputs.iter().map(|o| format!("`{}` {}", o.name, fmt_shape(&o.shape))).collect();
    Err(DetectError::Unrecognized(format!(
        "the outputs {} match no supported detector ([1, 4+C, N] YOLOv8, [1, N, 5+C] YOLOv5, [1, N, 1, 4] + [1, N, K] SSD, \
         a heatmap with a size or ltrb map on its grid, channels first or last (CenterNet, CenterFace with landmarks), \
         [1, 896, 16] + [1, 896, 1] BlazeFace, [1, N, 6] end-to-end rows); export the model without built-in NMS, or write a profile",
        if seen.is_empty() { "(none)".to_string() } else { seen.join(", ") }
    )))
}

/// Detections as separate tensors (TensorFlow Object Detection API and similar exports): boxes
/// `[1, M, 4]`, one or two `[1, M]` outputs (scores; class ids) and optionally a count `[1]`.
/// Names decide which is which (`score`, `class`/`label`, `num`/`count`); an integer output is
/// the classes; otherwise TensorFlow's signature order (boxes, classes, scores, count), with the
/// other order offered as an alternative.
fn tf_detections(outputs: &[ValueInfo], shapes: &[(&str, &Dims)], assumed: &mut Vec<String>) -> Option<Classified> {
    let (bname, m) = shapes.iter().find_map(|(n, s)| match s {
        [Some(m), Some(4)] if *m != 4 => Some((*n, *m)),
        _ => None,
    })?;
    let rows: Vec<&str> =
        shapes.iter().filter(|(n, s)| *n != bname && matches!(s, [Some(k)] if *k == m)).map(|(n, _)| *n).collect();
    if rows.is_empty() || rows.len() > 2 {
        return None;
    }
    // The count: a one-value output ([1] or a scalar), not one of the rows.
    let count = outputs
        .iter()
        .filter(|o| o.name != bname && !rows.contains(&o.name.as_str()))
        .filter(|o| matches!(o.shape.as_slice(), [] | [Some(1)] | [Some(1), Some(1)]))
        .min_by_key(|o| !looks_like(&o.name, &["num", "count", "valid"]))
        .map(|o| o.name.clone());
    let is_int = |n: &str| outputs.iter().any(|o| o.name == n && matches!(o.elem_type, 6 | 7));
    let (scores, classes, by_order) = match rows.as_slice() {
        [s] => (*s, None, false),
        [a, b] => {
            let class_like = |n: &str| looks_like(n, &["class", "label"]) || is_int(n);
            let score_like = |n: &str| looks_like(n, &["score", "conf", "prob"]);
            if class_like(a) && !class_like(b) || score_like(b) && !score_like(a) {
                (*b, Some(*a), false)
            } else if class_like(b) && !class_like(a) || score_like(a) && !score_like(b) {
                (*a, Some(*b), false)
            } else {
                // TensorFlow signatures list outputs alphabetically: boxes, classes, scores, num.
                (*b, Some(*a), true)
            }
        }
        _ => return None,
    };
    let tf_od = classes.is_some_and(|c| looks_like(c, &["detection_classes"]));
    let d = Detections {
        boxes_output: bname.to_string(),
        scores_output: scores.to_string(),
        classes_output: classes.map(str::to_string),
        count_output: count.clone(),
        box_format: BoxFormat::Yxyx,
        normalized: true,
        first_class: usize::from(tf_od),
    };
    assumed.push(format!(
        "`{bname}` [1, {m}, 4] boxes (y1, x1, y2, x2 as fractions of the input, TensorFlow's convention), `{scores}` scores{}{}: \
         detections the model selected itself, no NMS applied",
        classes.map_or(String::new(), |c| format!(", `{c}` class ids{}", if tf_od { " (1-based label map ids)" } else { "" })),
        count.as_ref().map_or(String::new(), |c| format!(", `{c}` the number of valid rows"))
    ));
    let mut alternatives = Vec::new();
    if let (true, Some(c)) = (by_order, classes) {
        assumed.push(format!(
            "`{c}` is taken as the class ids and `{scores}` as the scores (by TensorFlow's output order)"
        ));
        let swapped =
            Detections { scores_output: c.to_string(), classes_output: Some(scores.to_string()), ..d.clone() };
        alternatives
            .push((format!("`{c}` as the scores and `{scores}` as the class ids"), Decoder::Detections(swapped)));
    }
    alternatives.push((
        "boxes as x1, y1, x2, y2 in input pixels".to_string(),
        Decoder::Detections(Detections { box_format: BoxFormat::Xyxy, normalized: false, ..d.clone() }),
    ));
    Some(Classified {
        alternatives,
        kind: Kind::TfDetections,
        decoder: Decoder::Detections(d),
        classes: None,
        grid_h: None,
    })
}

/// Per-stride heads with separate outputs (SCRFD, YuNet): `[1, N_s, K]` outputs whose row counts
/// are the cells (times 1 or 2 anchors) of the stride 8/16/32 grids, per stride a 4-value box
/// output, one or two 1-value score outputs (class; objectness, named `obj` or second) and
/// optionally a landmark output (`2·L` values). With objectness the YuNet box encoding (offsets and
/// log sizes) is assumed, without it SCRFD's (ltrb distances); the other is offered.
fn per_stride_head(
    shapes: &[(&str, &Dims)],
    in_w: Option<usize>,
    in_h: Option<usize>,
    assumed: &mut Vec<String>,
) -> Option<Classified> {
    let (w, h) = (in_w?, in_h?);
    let strides = [8usize, 16, 32];
    for anchors in [1usize, 2] {
        let rows = |s: usize| w.div_ceil(s) * h.div_ceil(s) * anchors;
        // Outputs per stride, in graph order: (name, values per row).
        let per: Vec<Vec<(&str, usize)>> = strides
            .iter()
            .map(|&s| {
                shapes
                    .iter()
                    .filter_map(|(n, d)| match d {
                        [Some(r), Some(k)] if *r == rows(s) => Some((*n, *k)),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        let pick = |v: &[(&str, usize)], k: usize| {
            v.iter().filter(|(_, kk)| *kk == k).map(|(n, _)| n.to_string()).collect::<Vec<_>>()
        };
        let mut d = Grid {
            strides: strides.to_vec(),
            score_outputs: Vec::new(),
            objectness_outputs: Vec::new(),
            box_outputs: Vec::new(),
            landmark_outputs: Vec::new(),
            landmarks: 0,
            anchors,
            box_encoding: GridBox::Ltrb,
            reg_max: 0,
            cell_center: 0.0,
        };
        let mut ok = true;
        for v in &per {
            let (boxes, ones) = (pick(v, 4), pick(v, 1));
            let marks: Vec<(&str, usize)> = v.iter().filter(|(_, k)| *k >= 6 && k % 2 == 0).copied().collect();
            if boxes.len() != 1
                || ones.is_empty()
                || ones.len() > 2
                || marks.len() > 1
                || v.len() != 1 + ones.len() + marks.len()
            {
                ok = false;
                break;
            }
            d.box_outputs.push(boxes[0].clone());
            let (cls, obj) = match ones.as_slice() {
                [a, b] if looks_like(a, &["obj"]) && !looks_like(b, &["obj"]) => (b.clone(), Some(a.clone())),
                [a, b] => (a.clone(), Some(b.clone())),
                [a] => (a.clone(), None),
                _ => unreachable!(),
            };
            d.score_outputs.push(cls);
            d.objectness_outputs.extend(obj);
            if let Some((m, k)) = marks.first() {
                d.landmark_outputs.push(m.to_string());
                d.landmarks = k / 2;
            }
        }
        let uniform = [d.objectness_outputs.len(), d.landmark_outputs.len()].iter().all(|&c| c == 0 || c == 3);
        if !ok || !uniform {
            continue;
        }
        let yunet = !d.objectness_outputs.is_empty();
        if yunet {
            d.box_encoding = GridBox::OffsetLogSize;
        }
        let marks = if d.landmarks > 0 {
            format!(", {} landmarks each (`{}`, …)", d.landmarks, d.landmark_outputs[0])
        } else {
            String::new()
        };
        assumed.push(if yunet {
            format!(
                "outputs per stride 8/16/32 (`{}`, `{}`, `{}`, …) are a YuNet-style face head: class and objectness scores (score √(class·objectness)), \
                 boxes as cell offsets and log sizes{marks}",
                d.score_outputs[0], d.objectness_outputs[0], d.box_outputs[0]
            )
        } else {
            format!(
                "outputs per stride 8/16/32 (`{}`, `{}`, …), {anchors} anchor(s) per cell, are an SCRFD-style face head: scores, \
                 boxes as distances to the four edges in strides{marks}",
                d.score_outputs[0], d.box_outputs[0]
            )
        });
        let other = Grid { box_encoding: if yunet { GridBox::Ltrb } else { GridBox::OffsetLogSize }, ..d.clone() };
        let reading = if yunet {
            "boxes as distances to the four edges (SCRFD)"
        } else {
            "boxes as cell offsets and log sizes (YuNet)"
        };
        return Some(Classified {
            alternatives: vec![(reading.to_string(), Decoder::Grid(other))],
            kind: if yunet { Kind::YuNet } else { Kind::Scrfd },
            decoder: Decoder::Grid(d),
            classes: Some(1),
            grid_h: None,
        });
    }
    None
}

/// Per-stride GFL/DFL heads (NanoDet, PP-PicoDet exported without post-processing): per stride
/// of 8/16/32 (/64) one class-score output `[1, N_s, C]` and one bins output
/// `[1, N_s, 4·(reg_max + 1)]`, `N_s` the stride's cells. The scores are the output that comes
/// out of a Sigmoid (else the one that is not a common bin count: 32, 44, 68).
fn per_stride_dfl(
    shapes: &[(&str, &Dims)],
    meta: &ModelMeta,
    in_w: Option<usize>,
    in_h: Option<usize>,
    assumed: &mut Vec<String>,
) -> Option<Classified> {
    let (w, h) = (in_w?, in_h?);
    for strides in [vec![8usize, 16, 32, 64], vec![8, 16, 32]] {
        let mut d = Grid {
            strides: strides.clone(),
            score_outputs: Vec::new(),
            objectness_outputs: Vec::new(),
            box_outputs: Vec::new(),
            landmark_outputs: Vec::new(),
            landmarks: 0,
            anchors: 1,
            box_encoding: GridBox::Dfl,
            reg_max: 0,
            cell_center: 0.5,
        };
        let mut classes = 0;
        for &s in &strides {
            let rows = w.div_ceil(s) * h.div_ceil(s);
            let v: Vec<(&str, usize)> = shapes
                .iter()
                .filter_map(|(n, dd)| match dd {
                    [Some(r), Some(k)] if *r == rows => Some((*n, *k)),
                    _ => None,
                })
                .collect();
            let [a, b] = v[..] else { break };
            let sig = |n: &str| meta.sigmoid_outputs.iter().any(|o| o == n);
            let bins_like = |k: usize| [32, 44, 68].contains(&k);
            let (scores, bins) = if sig(a.0) != sig(b.0) {
                if sig(a.0) {
                    (a, b)
                } else {
                    (b, a)
                }
            } else if bins_like(b.1) && !bins_like(a.1) {
                (a, b)
            } else if bins_like(a.1) && !bins_like(b.1) {
                (b, a)
            } else {
                break;
            };
            if bins.1 % 4 != 0 || bins.1 < 8 || (d.reg_max != 0 && d.reg_max != bins.1 / 4 - 1) {
                break;
            }
            d.reg_max = bins.1 / 4 - 1;
            classes = scores.1;
            d.score_outputs.push(scores.0.to_string());
            d.box_outputs.push(bins.0.to_string());
        }
        if d.score_outputs.len() != strides.len() {
            continue;
        }
        assumed.push(format!(
            "outputs per stride {strides:?} (`{}` scores, `{}` bins, …) are a NanoDet / PicoDet GFL head: {classes} class scores, \
             box edges as distributions over {} bins (reg_max {}) from cell centres",
            d.score_outputs[0],
            d.box_outputs[0],
            d.reg_max + 1,
            d.reg_max
        ));
        let corner = Grid { cell_center: 0.0, ..d.clone() };
        return Some(Classified {
            alternatives: vec![("distances from the cells' corners (NanoDet-Plus)".to_string(), Decoder::Grid(corner))],
            kind: Kind::NanoDet,
            decoder: Decoder::Grid(d),
            classes: Some(classes),
            grid_h: None,
        });
    }
    None
}

/// Heatmap detectors: a `[C, H, W]` (or `[H, W, C]`) heatmap and, on the same grid, a box map
/// (2 channels: sizes; 4: ltrb distances), optionally a 2-channel offset map and a `2·L`-channel
/// landmark map. With landmarks and a one-class heatmap the CenterFace conventions apply
/// (log-space sizes, y-first offsets, cell centres, every cell above the threshold then NMS).
fn heatmap(shapes: &[(&str, &Dims)], meta: &ModelMeta, assumed: &mut Vec<String>) -> Option<Classified> {
    for channels_last in [false, true] {
        // (name, channels, grid) of every rank-3 output read in this layout.
        let maps: Vec<(&str, usize, (usize, usize))> = shapes
            .iter()
            .filter_map(|&(n, s)| match (s, channels_last) {
                ([Some(k), Some(h), Some(w)], false) | ([Some(h), Some(w), Some(k)], true) => Some((n, *k, (*h, *w))),
                _ => None,
            })
            .collect();
        // Heatmap candidates: named like one first, then any map that is not a 2/4-channel one.
        let mut order: Vec<&(&str, usize, (usize, usize))> = maps.iter().collect();
        order.sort_by_key(|(n, k, _)| (!looks_like(n, &["hm", "heat", "score", "cls", "class"]), *k == 2 || *k == 4));
        for &&(hname, c, grid) in &order {
            let others: Vec<(&str, usize)> =
                maps.iter().filter(|(n, _, g)| *n != hname && *g == grid).map(|(n, k, _)| (*n, *k)).collect();
            let twos: Vec<&str> = others.iter().filter(|(_, k)| *k == 2).map(|(n, _)| *n).collect();
            let ltrb = others.iter().find(|(_, k)| *k == 4).map(|(n, _)| *n);
            let marks = others.iter().find(|(_, k)| *k >= 6 && k % 2 == 0).copied();
            let named = |n: &str, hints: &[&str]| looks_like(n, hints);
            let (wh, off, encoding) = match (ltrb, twos.as_slice()) {
                (Some(b), [o]) => (b, Some(*o), BoxEncoding::Ltrb),
                (Some(b), []) => (b, None, BoxEncoding::Ltrb),
                (None, [a, b]) => {
                    let (a, b) = if named(a, &["reg", "off"]) || named(b, &["wh", "size", "scale"]) {
                        (*b, *a)
                    } else {
                        (*a, *b)
                    };
                    (a, Some(b), BoxEncoding::Wh)
                }
                _ => continue,
            };
            if c == 2 && !named(hname, &["hm", "heat"]) && encoding == BoxEncoding::Wh {
                continue;
            }
            let face = marks.is_some() && c == 1 && encoding == BoxEncoding::Wh;
            let layout = |k: &str| {
                if channels_last {
                    format!("[1, {}, {}, {k}]", grid.0, grid.1)
                } else {
                    format!("[1, {k}, {}, {}]", grid.0, grid.1)
                }
            };
            let probs = meta.sigmoid_outputs.iter().any(|n| n == hname);
            let mut d = CenterNet {
                heatmap_output: hname.to_string(),
                wh_output: wh.to_string(),
                offset_output: off.map(str::to_string),
                stride: 4.0, // replaced by input_h / grid_h once the input size is settled
                heatmap_logits: !probs,
                channels_last,
                box_encoding: encoding,
                offset_order: AxisOrder::Xy,
                cell_center: 0.0,
                peaks_only: true,
                landmarks_output: None,
                landmarks: 0,
                landmark_encoding: LandmarkEncoding::BoxYx,
            };
            let kind = if face {
                let (m, k) = marks.unwrap_or_default();
                d.box_encoding = BoxEncoding::LogHw;
                d.offset_order = AxisOrder::Yx;
                d.cell_center = 0.5;
                d.peaks_only = false;
                d.landmarks_output = Some(m.to_string());
                d.landmarks = k / 2;
                assumed.push(format!(
                    "`{hname}` {} is a one-class heatmap with {} landmarks in `{m}` {}: read as CenterFace — `{wh}` log-space sizes \
                     (height, width), `{}` offsets (y, x) from cell centres, landmarks relative to the box; every cell above the \
                     threshold is a candidate and NMS selects",
                    layout("1"),
                    k / 2,
                    layout(&k.to_string()),
                    off.unwrap_or("-"),
                ));
                Kind::CenterFace
            } else {
                assumed.push(match (encoding, off) {
                    (BoxEncoding::Ltrb, o) => format!(
                        "`{hname}` {} is a CenterNet heatmap and `{wh}` {} distances to the left, top, right and bottom edges in grid cells{}",
                        layout(&c.to_string()),
                        layout("4"),
                        o.map_or(", with no offset output".to_string(), |o| format!(", `{o}` centre offsets (x, y)"))
                    ),
                    _ => format!(
                        "`{hname}` {} is a CenterNet heatmap, `{wh}` box sizes (width, height) and `{}` centre offsets (x, y) in grid cells",
                        layout(&c.to_string()),
                        off.unwrap_or("-")
                    ),
                });
                if twos.len() == 2 && !(twos.iter().any(|n| named(n, &["reg", "off", "wh", "size", "scale"]))) {
                    assumed.push(format!(
                        "`{wh}` is taken as box sizes and `{}` as centre offsets (by output order)",
                        off.unwrap_or("-")
                    ));
                }
                if channels_last {
                    Kind::CenterNetTf
                } else {
                    Kind::CenterNet
                }
            };
            assumed.push(if probs {
                format!("`{hname}` comes out of a Sigmoid in the graph: its values are scores already")
            } else {
                format!("`{hname}` holds logits (no Sigmoid at the end of the graph): a sigmoid is applied")
            });
            let mut alternatives = Vec::new();
            if encoding == BoxEncoding::Ltrb {
                let pixels = CenterNet { box_encoding: BoxEncoding::LtrbPixels, ..d.clone() };
                alternatives.push((
                    format!(
                        "`{wh}` distances in input pixels rather than grid cells (TensorFlow's CenterNet MobileNetV3)"
                    ),
                    Decoder::Centernet(pixels),
                ));
            }
            if kind == Kind::CenterNet
                && twos.len() == 2
                && !(twos.iter().any(|n| named(n, &["reg", "off", "wh", "size", "scale"])))
            {
                let swapped = CenterNet {
                    wh_output: off.unwrap_or_default().to_string(),
                    offset_output: Some(wh.to_string()),
                    ..d.clone()
                };
                alternatives.push((
                    format!("`{}` as box sizes and `{wh}` as centre offsets", off.unwrap_or_default()),
                    Decoder::Centernet(swapped),
                ));
            }
            return Some(Classified {
                alternatives,
                kind,
                decoder: Decoder::Centernet(d),
                classes: Some(c),
                grid_h: Some(grid.0),
            });
        }
    }
    None
}

/// The class count a YOLO decoder is fixed to, for comparing readings (`None` otherwise).
fn decoder_classes(d: &Decoder) -> Option<usize> {
    match d {
        Decoder::Yolov5(y) | Decoder::Yolov8(y) => y.classes,
        _ => None,
    }
}

/// Cells in the grids of `strides` over the input (`⌊h/s⌋ × ⌊w/s⌋` each), when its size is known.
fn grid_count(strides: &[usize], in_w: Option<usize>, in_h: Option<usize>) -> Option<usize> {
    let (w, h) = (in_w?, in_h?);
    Some(strides.iter().map(|s| (w / s) * (h / s)).sum())
}

/// Points in the grids of `strides` with partial cells counted (`⌈h/s⌉ × ⌈w/s⌉` each: NanoDet's
/// feature maps), when the input size is known.
fn dfl_points(strides: &[usize], in_w: Option<usize>, in_h: Option<usize>) -> Option<usize> {
    let (w, h) = (in_w?, in_h?);
    Some(strides.iter().map(|s| w.div_ceil(*s) * h.div_ceil(*s)).sum())
}

/// Box counts of YOLOv5-style anchor grids for this input (3 anchors per cell; strides 8–32,
/// or 8–64 for the P6 models); empty when the size is unknown.
fn yolov5_anchor_counts(in_w: Option<usize>, in_h: Option<usize>) -> Vec<usize> {
    let (Some(w), Some(h)) = (in_w, in_h) else { return Vec::new() };
    let cells = |s: usize| w.div_ceil(s) * h.div_ceil(s);
    vec![3 * (cells(8) + cells(16) + cells(32)), 3 * (cells(8) + cells(16) + cells(32) + cells(64))]
}

/// Ultralytics exports (metadata `task` = `detect` / `pose` / `segment`): the layout follows from
/// the task, the keypoint shape and the class names, so nothing is guessed from shapes.
fn ultralytics(shapes: &[(&str, &Dims)], meta: &ModelMeta, assumed: &mut Vec<String>) -> Option<Classified> {
    let task = meta.task.as_deref()?;
    if !matches!(task, "detect" | "pose" | "segment") {
        return None;
    }
    let (k, dims) = match (task, meta.kpt_shape) {
        ("pose", Some([k, d])) => (k, d),
        ("pose", None) => {
            assumed.push("metadata says `task: pose` but has no `kpt_shape`: 17 keypoints × 3 assumed".into());
            (17, 3)
        }
        _ => (0, 3),
    };
    let classes = meta.names.as_ref().map(|n| n.len());
    // The box output: the first rank-2 (after the batch) output.
    let &(name, s) = shapes.iter().find(|(_, s)| s.len() == 2)?;
    let mut said = vec![format!("the model's metadata says it is an Ultralytics `{task}` model")];
    if k > 0 {
        said.push(format!("{k} keypoints × {dims} (`kpt_shape`), drawn on each box"));
    }
    if task == "segment" {
        said.push(
            "segmentation masks are not drawn: boxes only (the mask coefficients and prototypes are ignored)".into(),
        );
    }
    if meta.detr && k == 0 {
        // RT-DETR: one row per query, [cx, cy, w, h] in fractions of the input, then either the
        // class scores (Ultralytics ≤ 8.3) or the best `score, class` (8.4's top-k).
        let rows = s[0].filter(|&q| q <= 1000)?;
        let width = s[1]?;
        let per_class = width != 6;
        let c = if per_class { width.checked_sub(4).filter(|&c| c > 0)? } else { classes.unwrap_or(0) };
        said.push(format!(
            "`{name}` [1, {rows}, {width}] holds RT-DETR's {rows} query predictions: box (cx, cy, w, h as fractions of the input), {}; \
             the model selects its own boxes: no NMS applied",
            if per_class { format!("{c} class scores") } else { "score, class".to_string() }
        ));
        assumed.extend(said);
        let d = End2End {
            per_class_scores: per_class,
            box_format: BoxFormat::Cxcywh,
            normalized: true,
            ..End2End::new(name)
        };
        return Some(Classified {
            alternatives: Vec::new(),
            kind: Kind::RtDetr,
            decoder: Decoder::End2end(d),
            classes: if per_class { Some(c) } else { classes },
            grid_h: None,
        });
    }
    let d_e2e = End2End { keypoints: k, keypoint_dims: dims, ..End2End::new(name) };
    let e2e_width = 6 + k * dims;
    if s[1] == Some(e2e_width) && (meta.end2end || s[0].is_some_and(|n| n <= 1000)) {
        said.push(format!("`{name}` holds boxes the model already selected (end-to-end: x1, y1, x2, y2, score, class); no NMS applied"));
        assumed.extend(said);
        return Some(Classified {
            alternatives: Vec::new(),
            kind: Kind::Yolo,
            decoder: Decoder::End2end(d_e2e),
            classes,
            grid_h: None,
        });
    }
    let ch = s[0]?;
    // Segmentation: the prototypes output [nm, H, W] says how many mask coefficients follow.
    let masks = shapes.iter().find(|(n, p)| *n != name && p.len() == 3).and_then(|(_, p)| p[0]).unwrap_or(0);
    let classes = classes.filter(|&c| 4 + c + k * dims <= ch).or_else(|| ch.checked_sub(4 + k * dims + masks));
    let c = classes.filter(|&c| c > 0)?;
    said.push(format!(
        "`{name}` [1, {ch}, N]: box (cx, cy, w, h), {c} class scores{}",
        if k > 0 { ", keypoints" } else { "" }
    ));
    assumed.extend(said);
    let d = Yolo { classes: Some(c), keypoints: k, keypoint_dims: dims, ..Yolo::new(name) };
    Some(Classified {
        alternatives: Vec::new(),
        kind: Kind::Yolo,
        decoder: Decoder::Yolov8(d),
        classes: Some(c),
        grid_h: None,
    })
}

/// Whether an output name contains one of the hints (case-insensitive).
fn looks_like(name: &str, hints: &[&str]) -> bool {
    let n = name.to_ascii_lowercase();
    hints.iter().any(|h| n.contains(h))
}

/// Feature map sizes `[h, w]` of TF's SSD MobileNet: stride 16, then halving (rounding up) for
/// five more layers — 19, 10, 5, 3, 2, 1 for a 300 input.
fn ssd_feature_maps(w: usize, h: usize) -> Vec<[usize; 2]> {
    let (mut fh, mut fw) = (h.div_ceil(16).max(1), w.div_ceil(16).max(1));
    let mut maps = Vec::with_capacity(6);
    for _ in 0..6 {
        maps.push([fh, fw]);
        (fh, fw) = (fh.div_ceil(2), fw.div_ceil(2));
    }
    maps
}
