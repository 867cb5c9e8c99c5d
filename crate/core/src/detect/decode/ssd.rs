//! TensorFlow Object Detection API SSD: multiple-grid anchors and the Faster R-CNN box coder.
//! See [`SsdAnchors`] for the anchor layout; this file follows
//! `anchor_generators/multiple_grid_anchor_generator.py` and `box_coders/faster_rcnn_box_coder.py`.

use super::{class_scores, output, shape_error};
use crate::detect::nms::Candidate;
use crate::detect::profile::{Profile, SsdAnchors};
use crate::detect::DetectError;
use crate::model::Tensor;

/// One anchor, relative to the input size (0..1): centre and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    /// Centre y.
    pub cy: f32,
    /// Centre x.
    pub cx: f32,
    /// Height.
    pub h: f32,
    /// Width.
    pub w: f32,
}

/// `(scale, aspect ratio)` of each anchor in one grid cell of layer `i`.
fn layer_specs(cfg: &SsdAnchors, scales: &[f32], i: usize) -> Vec<(f32, f32)> {
    if i == 0 && cfg.reduce_boxes_in_lowest_layer {
        // Fixed in TF's create_ssd_anchors: a small square anchor plus two of scale s_0.
        return vec![(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)];
    }
    let mut specs: Vec<(f32, f32)> = cfg.aspect_ratios.iter().map(|&a| (scales[i], a)).collect();
    if cfg.interpolated_scale_aspect_ratio > 0.0 {
        specs.push(((scales[i] * scales[i + 1]).sqrt(), cfg.interpolated_scale_aspect_ratio));
    }
    specs
}

/// All anchors in output order: layer by layer, then row, column, anchor within the cell.
/// Assumes a validated profile (non-empty layers).
pub fn anchors(cfg: &SsdAnchors) -> Vec<Anchor> {
    let n = cfg.num_layers;
    let mut scales: Vec<f32> = (0..n)
        .map(|i| {
            if n == 1 {
                cfg.min_scale
            } else {
                cfg.min_scale + (cfg.max_scale - cfg.min_scale) * i as f32 / (n - 1) as f32
            }
        })
        .collect();
    scales.push(1.0);
    let mut out = Vec::new();
    for (i, &[fh, fw]) in cfg.feature_maps.iter().enumerate().take(n) {
        let sizes: Vec<(f32, f32)> = layer_specs(cfg, &scales, i)
            .into_iter()
            .map(|(s, a)| {
                let r = a.sqrt();
                (s / r, s * r)
            })
            .collect();
        for y in 0..fh {
            let cy = (y as f32 + 0.5) / fh as f32;
            for x in 0..fw {
                let cx = (x as f32 + 0.5) / fw as f32;
                out.extend(sizes.iter().map(|&(h, w)| Anchor { cy, cx, h, w }));
            }
        }
    }
    out
}

/// Decodes SSD box encodings and class logits. Every non-background class of every anchor that
/// scores at least the threshold is a candidate (TF's multiclass NMS), so one box may appear
/// under several classes.
pub fn decode(
    cfg: &SsdAnchors,
    profile: &Profile,
    outputs: &[(String, Tensor)],
) -> Result<Vec<Candidate>, DetectError> {
    const NAME: &str = "ssd_anchors";
    let anchors = anchors(cfg);
    let (bshape, boxes) = output(outputs, &cfg.boxes_output, NAME)?;
    let (lshape, logits) = output(outputs, &cfg.logits_output, NAME)?;
    let n = anchors.len();
    let boxes_ok = matches!(bshape, [1, m, 1, 4] | [1, m, 4] if *m == n);
    if !boxes_ok {
        return Err(shape_error(
            NAME,
            &cfg.boxes_output,
            bshape,
            format!("[1, {n}, 1, 4] or [1, {n}, 4]: {n} anchors follow from `feature_maps` and the anchor settings; check them against the model"),
        ));
    }
    let k = match lshape {
        [1, m, k] if *m == n && *k >= 1 => *k,
        _ => {
            return Err(shape_error(
                NAME,
                &cfg.logits_output,
                lshape,
                format!("[1, {n}, K] class logits, one row per anchor"),
            ))
        }
    };
    if let Some(bg) = cfg.background_class {
        if bg >= k || k < 2 {
            return Err(DetectError::Profile(format!(
                "ssd_anchors: `background_class` is {bg} but `{}` has {k} classes: use null if the model has no background class",
                cfg.logits_output
            )));
        }
    }
    let [in_w, in_h] = profile.size.map(|v| v as f32);
    let [sy, sx, sh, sw] = cfg.box_scales;
    let mut probs = vec![0f32; k];
    let mut out = Vec::new();
    for (i, a) in anchors.iter().enumerate() {
        let row = &logits[i * k..(i + 1) * k];
        class_scores(cfg.score, row, &mut probs);
        let mut bbox = None;
        for (j, &score) in probs.iter().enumerate() {
            if Some(j) == cfg.background_class || score < profile.score_threshold {
                continue;
            }
            let class = match cfg.background_class {
                Some(bg) if j > bg => j - 1,
                _ => j,
            };
            let bbox = *bbox.get_or_insert_with(|| {
                let t = &boxes[i * 4..i * 4 + 4];
                let cy = t[0] / sy * a.h + a.cy;
                let cx = t[1] / sx * a.w + a.cx;
                let h = (t[2] / sh).exp() * a.h;
                let w = (t[3] / sw).exp() * a.w;
                [(cx - w / 2.0) * in_w, (cy - h / 2.0) * in_h, (cx + w / 2.0) * in_w, (cy + h / 2.0) * in_h]
            });
            out.push(Candidate { class, score, bbox, keypoints: Vec::new(), keypoint_scores: Vec::new() });
        }
    }
    Ok(out)
}
