//! YOLOv5/v7 output `[1, N, 5 + C]`: per box `cx, cy, w, h` (input pixels), objectness, then C
//! class probabilities. Score = objectness × best class probability (one class per box, as the
//! reference NMS does without `multi_label`).

use super::{argmax, cxcywh, output, shape_error};
use crate::detect::nms::Candidate;
use crate::detect::profile::{Profile, Yolo};
use crate::detect::DetectError;
use crate::model::Tensor;

/// Decodes a YOLOv5-style output.
pub fn decode(cfg: &Yolo, profile: &Profile, outputs: &[(String, Tensor)]) -> Result<Vec<Candidate>, DetectError> {
    let (shape, data) = output(outputs, &cfg.output, "yolov5")?;
    let (n, width) = match shape {
        [1, n, w] if *w > 5 => (*n, *w),
        _ => return Err(shape_error(
            "yolov5",
            &cfg.output,
            shape,
            "[1, N, 5 + C] (boxes as rows: cx, cy, w, h, objectness, C class scores); a [1, 4 + C, N] output is yolov8",
        )),
    };
    let mut out = Vec::new();
    for row in data.chunks_exact(width).take(n) {
        let Some((class, p)) = argmax(&row[5..]) else { continue };
        let score = row[4] * p;
        if score >= profile.score_threshold {
            out.push(Candidate { class, score, bbox: cxcywh(row[0], row[1], row[2], row[3]), keypoints: Vec::new() });
        }
    }
    Ok(out)
}
