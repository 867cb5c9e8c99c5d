//! YOLOv8/YOLO11 output `[1, 4 + C (+ extra), N]`: channel-major, per box `cx, cy, w, h` (input
//! pixels, or fractions of the input as Ultralytics' TFLite exports give them:
//! [`super::yolo_box_scale`]), C class probabilities (no objectness), then keypoints (`-pose`) or
//! mask coefficients (`-seg`, ignored). Score = best class probability.

use super::{cxcywh, output, read_keypoints, shape_error, yolo_box_scale, yolo_split};
use crate::detect::nms::Candidate;
use crate::detect::profile::{Profile, Yolo};
use crate::detect::DetectError;
use crate::model::Tensor;

/// Decodes a YOLOv8-style output.
pub fn decode(cfg: &Yolo, profile: &Profile, outputs: &[(String, Tensor)]) -> Result<Vec<Candidate>, DetectError> {
    let (shape, data) = output(outputs, &cfg.output, "yolov8")?;
    let expected = "[1, 4 + C, N] (channels first: cx, cy, w, h, C class scores, then keypoints); a [1, N, 5 + C] output is yolov5";
    let (ch, n) = match shape {
        [1, c, n] if *c > 4 => (*c, *n),
        _ => return Err(shape_error("yolov8", &cfg.output, shape, expected)),
    };
    let (classes, kp_at) = yolo_split(ch, 4, cfg.classes, cfg.keypoints, cfg.keypoint_dims, |m| {
        shape_error("yolov8", &cfg.output, shape, format!("{expected}: {m}"))
    })?;
    let at = |c: usize, i: usize| data[c * n + i];
    let max_center = (0..n).map(|i| at(0, i).abs().max(at(1, i).abs())).fold(0.0, f32::max);
    let [sx, sy] = yolo_box_scale(cfg.normalized, profile.size, max_center);
    let mut out = Vec::new();
    for i in 0..n {
        // First maximum over classes, read down the channel axis.
        let (mut class, mut score) = (0, at(4, i));
        for c in 5..4 + classes {
            let v = at(c, i);
            if v > score {
                (class, score) = (c - 4, v);
            }
        }
        if score >= profile.score_threshold {
            let bbox = cxcywh(at(0, i) * sx, at(1, i) * sy, at(2, i) * sx, at(3, i) * sy);
            let (mut keypoints, keypoint_scores) =
                read_keypoints(cfg.keypoints, cfg.keypoint_dims, |k| at(kp_at + k, i));
            keypoints.iter_mut().for_each(|p| *p = [p[0] * sx, p[1] * sy]);
            out.push(Candidate { class, score, bbox, keypoints, keypoint_scores });
        }
    }
    Ok(out)
}
