//! CenterNet ("Objects as Points"): a detection is a heatmap cell that is the maximum of its
//! 3×3 neighbourhood (what the reference's `max_pool2d(3, stride 1, pad 1) == heat` keeps, ties
//! included) and scores at least the threshold.

use super::{output, shape_error, sigmoid};
use crate::detect::nms::Candidate;
use crate::detect::profile::{CenterNet, Profile};
use crate::detect::DetectError;
use crate::model::Tensor;

/// Decodes CenterNet heatmap, size and offset outputs (see [`CenterNet`] for units).
pub fn decode(cfg: &CenterNet, profile: &Profile, outputs: &[(String, Tensor)]) -> Result<Vec<Candidate>, DetectError> {
    const NAME: &str = "centernet";
    let (hshape, heat) = output(outputs, &cfg.heatmap_output, NAME)?;
    let (c, h, w) = match hshape {
        [1, c, h, w] if *c > 0 && *h > 0 && *w > 0 => (*c, *h, *w),
        _ => return Err(shape_error(NAME, &cfg.heatmap_output, hshape, "[1, C, H, W] class heatmaps")),
    };
    let (wshape, wh) = output(outputs, &cfg.wh_output, NAME)?;
    let (oshape, off) = output(outputs, &cfg.offset_output, NAME)?;
    for (name, s) in [(&cfg.wh_output, wshape), (&cfg.offset_output, oshape)] {
        if s != [1, 2, h, w] {
            return Err(shape_error(NAME, name, s, format!("[1, 2, {h}, {w}], the heatmap's grid with 2 channels")));
        }
    }
    let plane = h * w;
    let act = |v: f32| if cfg.heatmap_logits { sigmoid(v) } else { v };
    let mut out = Vec::new();
    for class in 0..c {
        let hm = &heat[class * plane..(class + 1) * plane];
        for y in 0..h {
            for x in 0..w {
                let v = hm[y * w + x];
                // The sigmoid is monotonic: peaks are found on raw values, thresholds on scores.
                let score = act(v);
                if score < profile.score_threshold {
                    continue;
                }
                let is_peak = (y.saturating_sub(1)..(y + 2).min(h))
                    .all(|yy| (x.saturating_sub(1)..(x + 2).min(w)).all(|xx| hm[yy * w + xx] <= v));
                if !is_peak {
                    continue;
                }
                let i = y * w + x;
                let cx = (x as f32 + off[i]) * cfg.stride;
                let cy = (y as f32 + off[plane + i]) * cfg.stride;
                let (bw, bh) = (wh[i] * cfg.stride, wh[plane + i] * cfg.stride);
                out.push(Candidate {
                    class,
                    score,
                    bbox: super::cxcywh(cx, cy, bw, bh),
                    keypoints: Vec::new(),
                    keypoint_scores: Vec::new(),
                });
            }
        }
    }
    Ok(out)
}
