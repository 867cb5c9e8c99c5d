//! YOLOv5/v7 output `[1, N, 5 + C (+ extra)]`: row-major, per box `cx, cy, w, h` (input pixels),
//! objectness, C class probabilities, then keypoints if the profile has them. Score =
//! objectness × best class probability.

use super::{argmax, cxcywh, output, read_keypoints, shape_error, yolo_split};
use crate::detect::nms::Candidate;
use crate::detect::profile::{Profile, Yolo};
use crate::detect::DetectError;
use crate::model::Tensor;

/// Decodes a YOLOv5-style output.
pub fn decode(cfg: &Yolo, profile: &Profile, outputs: &[(String, Tensor)]) -> Result<Vec<Candidate>, DetectError> {
    let (shape, data) = output(outputs, &cfg.output, "yolov5")?;
    let expected =
        "[1, N, 5 + C] (boxes as rows: cx, cy, w, h, objectness, C class scores); a [1, 4 + C, N] output is yolov8";
    let (n, width) = match shape {
        [1, n, w] if *w > 5 => (*n, *w),
        _ => return Err(shape_error("yolov5", &cfg.output, shape, expected)),
    };
    let (classes, kp_at) = yolo_split(width, 5, cfg.classes, cfg.keypoints, cfg.keypoint_dims)
        .map_err(|m| shape_error("yolov5", &cfg.output, shape, format!("{expected}: {m}")))?;
    let mut out = Vec::new();
    for row in data.chunks_exact(width).take(n) {
        let Some((class, p)) = argmax(&row[5..5 + classes]) else { continue };
        let score = row[4] * p;
        if score >= profile.score_threshold {
            let (keypoints, keypoint_scores) = read_keypoints(cfg.keypoints, cfg.keypoint_dims, |k| row[kp_at + k]);
            out.push(Candidate {
                class,
                score,
                bbox: cxcywh(row[0], row[1], row[2], row[3]),
                keypoints,
                keypoint_scores,
            });
        }
    }
    Ok(out)
}
