//! TFLite custom operators → IR nodes. One is mapped: `TFLite_Detection_PostProcess`, the SSD
//! post-processing of TF Object Detection API and MediaPipe models, whose options are read from
//! the operator's FlexBuffer `custom_options` ([`super::flexbuffer`]) and checked here, so a bad
//! option is an error at load time naming the op. Other custom ops are listed as unsupported.

use super::flexbuffer::{scalar_map, Scalar};
use super::layout::Builder;
use super::read::{fb, fb_err};
use crate::model::{Attr, DType, ModelError};
use crate::ops::detect::detection_postprocess::{
    RawOptions, DEFAULT_DETECTIONS_PER_CLASS, REQUIRED_KEYS, TFLITE_DETECTION_POSTPROCESS,
};
use crate::ops::tflite::quantize;
use crate::ops::OpError;
use std::collections::HashMap;

/// Converts one custom operator; `false` when qplay does not map it. `at` names the operator.
pub(super) fn convert(
    b: &mut Builder,
    op: &fb::OperatorRef<'_>,
    name: &str,
    (ins, outs): (&[Option<usize>], &[Option<usize>]),
    at: &str,
    shapes: &mut HashMap<usize, Vec<Option<usize>>>,
) -> Result<bool, ModelError> {
    if name != TFLITE_DETECTION_POSTPROCESS {
        return Ok(false);
    }
    let err =
        |what: String| ModelError::Other(format!("TFLite custom op {TFLITE_DETECTION_POSTPROCESS} ({at}): {what}"));
    let raw = options(op).map_err(err)?;
    let checked = raw.check().map_err(|e| match e {
        // Sizes past qplay's limits are limit errors (the page says so), the rest a bad model.
        OpError::Limit(m) => ModelError::Limit(format!("TFLite custom op {TFLITE_DETECTION_POSTPROCESS} ({at}): {m}")),
        e => err(e.to_string()),
    })?;
    let (ins, outs): (Vec<usize>, Vec<usize>) =
        (ins.iter().flatten().copied().collect(), outs.iter().flatten().copied().collect());
    if ins.len() != 3 || outs.len() != 4 {
        return Err(err(format!(
            "{} inputs and {} outputs: the op takes box encodings, class predictions and anchors, and gives boxes, \
             classes, scores and the count",
            ins.len(),
            outs.len()
        )));
    }
    // The converter leaves the outputs' shapes unknown (LiteRT sets them when it prepares the
    // op): they follow from the options.
    let m = Some(checked.max_detections * checked.max_classes_per_detection);
    let fixed = [vec![Some(1), m, Some(4)], vec![Some(1), m], vec![Some(1), m], vec![Some(1)]];
    for (&t, shape) in outs.iter().zip(fixed) {
        if b.info(t).signature.is_empty() {
            shapes.insert(t, shape);
        }
    }
    // Quantized inputs (a uint8 model's box encodings, class predictions and anchors) are
    // dequantized first, `(q − zp) · scale` in float, as the op's kernel does.
    let mut inputs = Vec::with_capacity(3);
    for &t in &ins {
        let name = b.nhwc(t);
        if !matches!(b.info(t).dtype, DType::U8 | DType::I8 | DType::I16) {
            inputs.push(name);
            continue;
        }
        let (scale, zp) =
            super::int_ops::per_tensor(b, t).map_err(|e| err(e.say("the quantized input", &b.info(t).name)))?;
        let float = b.fresh(&format!("{name}__float"));
        let attrs = vec![("x_scale", Attr::Float(scale)), ("x_zp", Attr::Int(zp as i64))];
        b.node(quantize::DEQUANTIZE, vec![name], vec![float.clone()], attrs);
        inputs.push(float);
    }
    let outputs = outs.iter().map(|&t| b.nhwc(t)).collect();
    let attrs = vec![
        ("max_detections", Attr::Int(raw.max_detections)),
        ("max_classes_per_detection", Attr::Int(raw.max_classes_per_detection)),
        ("detections_per_class", Attr::Int(raw.detections_per_class)),
        ("use_regular_nms", Attr::Int(i64::from(raw.use_regular_nms))),
        ("nms_score_threshold", Attr::Float(raw.score_threshold)),
        ("nms_iou_threshold", Attr::Float(raw.iou_threshold)),
        ("num_classes", Attr::Int(raw.num_classes)),
        ("y_scale", Attr::Float(raw.scale[0])),
        ("x_scale", Attr::Float(raw.scale[1])),
        ("h_scale", Attr::Float(raw.scale[2])),
        ("w_scale", Attr::Float(raw.scale[3])),
    ];
    b.node(TFLITE_DETECTION_POSTPROCESS, inputs, outputs, attrs);
    Ok(true)
}

/// The options from the FlexBuffer map, as LiteRT's `Init` reads them: `detections_per_class`
/// defaults to 100 and `use_regular_nms` to false; the other keys are required.
fn options(op: &fb::OperatorRef<'_>) -> Result<RawOptions, String> {
    let format = op.custom_options_format().map_err(|e| fb_err("Operator.custom_options_format")(e).to_string())?;
    if format != fb::CustomOptionsFormat::Flexbuffers {
        return Err(format!("custom_options_format {format:?}: expected FLEXBUFFERS"));
    }
    let bytes = op
        .custom_options()
        .map_err(|e| fb_err("Operator.custom_options")(e).to_string())?
        .filter(|b| !b.is_empty())
        .ok_or("it has no custom_options (the FlexBuffer map of max_detections, num_classes, …)")?;
    let map = scalar_map(bytes).map_err(|e| format!("custom_options is not a readable FlexBuffer map: {e}"))?;
    let get = |k: &str| map.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    if let Some(k) = REQUIRED_KEYS.iter().find(|k| get(k).is_none()) {
        return Err(format!("custom_options has no `{k}` (it needs {})", REQUIRED_KEYS.join(", ")));
    }
    let int = |k: &str| get(k).map_or(0, Scalar::as_i64);
    let float = |k: &str| get(k).map_or(0.0, Scalar::as_f64) as f32;
    Ok(RawOptions {
        max_detections: int("max_detections"),
        max_classes_per_detection: int("max_classes_per_detection"),
        detections_per_class: get("detections_per_class").map_or(DEFAULT_DETECTIONS_PER_CLASS, Scalar::as_i64),
        use_regular_nms: get("use_regular_nms").is_some_and(Scalar::as_bool),
        score_threshold: float("nms_score_threshold"),
        iou_threshold: float("nms_iou_threshold"),
        num_classes: int("num_classes"),
        scale: [float("y_scale"), float("x_scale"), float("h_scale"), float("w_scale")],
    })
}
