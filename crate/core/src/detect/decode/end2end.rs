//! End-to-end outputs `[1, N, 6 (+ keypoints)]`: rows `x1, y1, x2, y2, score, class` in input
//! pixels, already selected by the model (YOLOv10's one-to-one head, Ultralytics `nms=True`
//! exports); padding rows score 0. No NMS follows ([`Decoder::needs_nms`]).
//!
//! [`Decoder::needs_nms`]: crate::detect::Decoder::needs_nms

use super::{output, read_keypoints, shape_error};
use crate::detect::nms::Candidate;
use crate::detect::profile::{End2End, Profile};
use crate::detect::DetectError;
use crate::model::Tensor;

/// Decodes end-to-end rows.
pub fn decode(cfg: &End2End, profile: &Profile, outputs: &[(String, Tensor)]) -> Result<Vec<Candidate>, DetectError> {
    let (shape, data) = output(outputs, &cfg.output, "end2end")?;
    let width = 6 + cfg.keypoints * cfg.keypoint_dims;
    let n = match shape {
        [1, n, w] if *w == width => *n,
        [n, w] if *w == width => *n,
        _ => {
            return Err(shape_error(
                "end2end",
                &cfg.output,
                shape,
                format!(
                    "[1, N, {width}]: rows x1, y1, x2, y2, score, class{}",
                    if cfg.keypoints > 0 { ", then the keypoints" } else { "" }
                ),
            ))
        }
    };
    let mut out = Vec::new();
    for row in data.chunks_exact(width).take(n) {
        let (score, class) = (row[4], row[5]);
        if score < profile.score_threshold || score <= 0.0 {
            continue;
        }
        if !(0.0..=1e6).contains(&class) {
            return Err(DetectError::Profile(format!(
                "end2end: output `{}` has class {class} in a row: the sixth value of each row must be a class index; \
                 check that the output is [x1, y1, x2, y2, score, class] rows",
                cfg.output
            )));
        }
        let (keypoints, keypoint_scores) = read_keypoints(cfg.keypoints, cfg.keypoint_dims, |k| row[6 + k]);
        out.push(Candidate {
            class: class as usize,
            score,
            bbox: [row[0], row[1], row[2], row[3]],
            keypoints,
            keypoint_scores,
        });
    }
    Ok(out)
}
