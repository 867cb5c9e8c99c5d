//! YOLOv8/YOLO11 output `[1, 4 + C, N]`: channel-major, per box `cx, cy, w, h` (input pixels)
//! then C class probabilities, no objectness. Score = best class probability.

use super::{cxcywh, output, shape_error};
use crate::detect::nms::Candidate;
use crate::detect::profile::{Profile, Yolo};
use crate::detect::DetectError;
use crate::model::Tensor;

/// Decodes a YOLOv8-style output.
pub fn decode(cfg: &Yolo, profile: &Profile, outputs: &[(String, Tensor)]) -> Result<Vec<Candidate>, DetectError> {
    let (shape, data) = output(outputs, &cfg.output, "yolov8")?;
    let (ch, n) = match shape {
        [1, c, n] if *c > 4 => (*c, *n),
        _ => {
            return Err(shape_error(
                "yolov8",
                &cfg.output,
                shape,
                "[1, 4 + C, N] (channels first: cx, cy, w, h, C class scores); a [1, N, 5 + C] output is yolov5",
            ))
        }
    };
    let at = |c: usize, i: usize| data[c * n + i];
    let mut out = Vec::new();
    for i in 0..n {
        // First maximum over classes, read down the channel axis.
        let (mut class, mut score) = (0, at(4, i));
        for c in 5..ch {
            let v = at(c, i);
            if v > score {
                (class, score) = (c - 4, v);
            }
        }
        if score >= profile.score_threshold {
            let bbox = cxcywh(at(0, i), at(1, i), at(2, i), at(3, i));
            out.push(Candidate { class, score, bbox, keypoints: Vec::new() });
        }
    }
    Ok(out)
}
