//! Anchor-free heads whose box edges are distributions over bins (Generalized Focal Loss's
//! Distribution Focal Loss: NanoDet-Plus, PP-PicoDet, GFL): one output `[1, N, C + 4·(reg_max + 1)]`
//! — per point C class scores (probabilities), then the bins of the left, top, right and bottom
//! distances. Points run over the grids of `strides`, finest first, each row-major with
//! `⌈H/s⌉ × ⌈W/s⌉` cells at `((x + cell_center)·s, (y + cell_center)·s)`. A distance is the
//! expectation `Σ softmax(bins)ᵢ · i`, times the stride (NanoDet's `distribution_project` and
//! `distance2bbox`); boxes are clipped to the input as NanoDet does.

use super::{output, shape_error};
use crate::detect::nms::Candidate;
use crate::detect::profile::{Dfl, Profile};
use crate::detect::DetectError;
use crate::model::Tensor;

/// Grid points `(x, y, stride)` of `strides` over a `[w, h]` input, finest first, row-major.
pub fn points(cfg: &Dfl, [w, h]: [usize; 2]) -> Vec<(f32, f32, f32)> {
    let mut out = Vec::new();
    for &s in cfg.strides.iter().filter(|&&s| s > 0) {
        for y in 0..h.div_ceil(s) {
            for x in 0..w.div_ceil(s) {
                out.push(((x as f32 + cfg.cell_center) * s as f32, (y as f32 + cfg.cell_center) * s as f32, s as f32));
            }
        }
    }
    out
}

/// Decodes a DFL head.
pub fn decode(cfg: &Dfl, profile: &Profile, outputs: &[(String, Tensor)]) -> Result<Vec<Candidate>, DetectError> {
    let (shape, data) = output(outputs, &cfg.output, "dfl")?;
    let bins = cfg.reg_max + 1;
    let grid = points(cfg, profile.size);
    let (n, width) = match shape {
        [1, n, w] | [n, w] => (*n, *w),
        _ => (0, 0),
    };
    if width <= 4 * bins || n != grid.len() {
        return Err(shape_error(
            "dfl",
            &cfg.output,
            shape,
            format!(
                "[1, {}, C + {}]: one row per point of the stride {:?} grids over {}×{}, C class scores then 4 × {bins} bins \
                 (check `strides`, `reg_max` and the input size)",
                grid.len(),
                4 * bins,
                cfg.strides,
                profile.size[0],
                profile.size[1]
            ),
        ));
    }
    let classes = width - 4 * bins;
    let (iw, ih) = (profile.size[0] as f32, profile.size[1] as f32);
    let mut out = Vec::new();
    let mut probs = vec![0f32; bins];
    for (row, &(cx, cy, s)) in data.chunks_exact(width).zip(&grid) {
        let scores = &row[..classes];
        let best = super::argmax(scores).map_or(0.0, |(_, v)| v);
        if best < profile.score_threshold {
            continue;
        }
        let mut d = [0f32; 4];
        for (e, dist) in d.iter_mut().enumerate() {
            let logits = &row[classes + e * bins..][..bins];
            let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let mut sum = 0.0;
            for (p, &l) in probs.iter_mut().zip(logits) {
                *p = (l - max).exp();
                sum += *p;
            }
            *dist = probs.iter().enumerate().map(|(i, p)| i as f32 * p).sum::<f32>() / sum * s;
        }
        let bbox = [
            (cx - d[0]).clamp(0.0, iw),
            (cy - d[1]).clamp(0.0, ih),
            (cx + d[2]).clamp(0.0, iw),
            (cy + d[3]).clamp(0.0, ih),
        ];
        let mut push = |class: usize, score: f32| {
            out.push(Candidate { class, score, bbox, keypoints: Vec::new(), keypoint_scores: Vec::new() })
        };
        if cfg.multi_label {
            for (c, &v) in scores.iter().enumerate().filter(|(_, &v)| v > profile.score_threshold) {
                push(c, v);
            }
        } else if let Some((c, v)) = super::argmax(scores) {
            push(c, v);
        }
    }
    Ok(out)
}
