//! End-to-end outputs, already selected by the model (YOLOv10's one-to-one head, Ultralytics
//! `nms=True` exports, RT-DETR): one `[1, N, W]` tensor of rows, each a box then `score, class`
//! (`[1, N, 6]`) or one score per class (`[1, Q, 4 + C]`, DETR-style), then keypoints; padding
//! rows score 0. With `class_first`, rows are `class, score` then the box (PaddleDetection's
//! `multiclass_nms3` `[N, 6]`; a row of class −1 is its "nothing found" filler and is skipped).
//! DETR-style set predictions come as boxes `[1, Q, 4]` and class values `[1, Q, C]` in two
//! tensors (`scores_output`), raw (`score_fn` sigmoid or softmax, DETR's last "no object" class
//! left out) or scores already.
//! No NMS follows ([`Decoder::needs_nms`]).
//!
//! [`Decoder::needs_nms`]: crate::detect::Decoder::needs_nms

use super::{argmax, class_scores, output, read_keypoints, shape_error};
use crate::detect::nms::Candidate;
use crate::detect::profile::{End2End, Profile};
use crate::detect::DetectError;
use crate::model::Tensor;

/// Decodes end-to-end rows.
pub fn decode(cfg: &End2End, profile: &Profile, outputs: &[(String, Tensor)]) -> Result<Vec<Candidate>, DetectError> {
    if let Some(scores) = &cfg.scores_output {
        return decode_sets(cfg, scores, profile, outputs);
    }
    let (shape, data) = output(outputs, &cfg.output, "end2end")?;
    let kp = cfg.keypoints * cfg.keypoint_dims;
    let (n, width) = match shape {
        [1, n, w] | [n, w] => (*n, *w),
        _ => (0, 0),
    };
    // Per-class rows: box, C ≥ 1 scores, keypoints. Otherwise: box, score, class, keypoints.
    let fits = if cfg.per_class_scores { width > 4 + kp && !cfg.class_first } else { width == 6 + kp };
    if !fits {
        let kps = if cfg.keypoints > 0 { ", then the keypoints" } else { "" };
        let expected = if cfg.per_class_scores {
            format!(
                "[1, N, 4 + C{}]: rows of a box then one score per class{kps}",
                if kp > 0 { format!(" + {kp}") } else { String::new() }
            )
        } else if cfg.class_first {
            format!("[N, {}]: rows of class, score, then a box{kps}", 6 + kp)
        } else {
            format!("[1, N, {}]: rows of a box, score, class{kps}", 6 + kp)
        };
        return Err(shape_error("end2end", &cfg.output, shape, expected));
    }
    let scale = if cfg.normalized { [profile.size[0] as f32, profile.size[1] as f32] } else { [1.0, 1.0] };
    let classes = width - 4 - kp;
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for row in data.chunks_exact(width).take(n) {
        let (class, score, kp_at, b) = if cfg.per_class_scores {
            let (c, s) = best_class(cfg, &row[4..4 + classes], &mut buf);
            (c as f32, s, 4 + classes, &row[..4])
        } else if cfg.class_first {
            (row[0], row[1], 6, &row[2..6])
        } else {
            (row[5], row[4], 6, &row[..4])
        };
        if score < profile.score_threshold || score <= 0.0 || (cfg.class_first && class < 0.0) {
            continue;
        }
        if !(0.0..=1e6).contains(&class) {
            return Err(DetectError::Profile(format!(
                "end2end: output `{}` has class {class} in a row: the {} value of each row must be a class index; \
                 check that the output is [x1, y1, x2, y2, score, class] rows (or set `per_class_scores` for [1, N, 4 + C], \
                 `class_first` for [class, score, x1, y1, x2, y2])",
                cfg.output,
                if cfg.class_first { "first" } else { "sixth" }
            )));
        }
        let (mut keypoints, keypoint_scores) = read_keypoints(cfg.keypoints, cfg.keypoint_dims, |k| row[kp_at + k]);
        keypoints.iter_mut().for_each(|p| *p = [p[0] * scale[0], p[1] * scale[1]]);
        out.push(Candidate {
            class: class as usize,
            score,
            bbox: cfg.box_format.to_xyxy([b[0], b[1], b[2], b[3]], scale),
            keypoints,
            keypoint_scores,
        });
    }
    Ok(out)
}

/// The best class of a row of class values and its score, after `score_fn` (the "no object"
/// class left out when `no_object_last`); `buf` is scratch.
fn best_class(cfg: &End2End, values: &[f32], buf: &mut Vec<f32>) -> (usize, f32) {
    buf.clear();
    buf.extend_from_slice(values);
    if let Some(f) = cfg.score_fn {
        class_scores(f, values, buf);
    }
    let n = if cfg.no_object_last { buf.len().saturating_sub(1) } else { buf.len() };
    argmax(&buf[..n]).unwrap_or((0, 0.0))
}

/// DETR-style set predictions: boxes `[1, Q, 4]` in `output`, class values `[1, Q, C]` in
/// `scores`; each box's best class.
fn decode_sets(
    cfg: &End2End,
    scores: &str,
    profile: &Profile,
    outputs: &[(String, Tensor)],
) -> Result<Vec<Candidate>, DetectError> {
    let (bshape, boxes) = output(outputs, &cfg.output, "end2end")?;
    let (sshape, values) = output(outputs, scores, "end2end")?;
    let q = match bshape {
        [1, q, 4] | [q, 4] => *q,
        _ => return Err(shape_error("end2end", &cfg.output, bshape, "[1, Q, 4]: one box per query")),
    };
    let c = match sshape {
        [1, n, c] | [n, c] if *n == q && *c > usize::from(cfg.no_object_last) => *c,
        _ => {
            return Err(shape_error(
                "end2end",
                scores,
                sshape,
                format!("[1, {q}, C]: the class values of each of `{}`'s {q} boxes", cfg.output),
            ))
        }
    };
    let scale = if cfg.normalized { [profile.size[0] as f32, profile.size[1] as f32] } else { [1.0, 1.0] };
    let mut buf = Vec::with_capacity(c);
    let mut out = Vec::new();
    for (b, row) in boxes.chunks_exact(4).zip(values.chunks_exact(c)) {
        let (class, score) = best_class(cfg, row, &mut buf);
        if score < profile.score_threshold || score <= 0.0 {
            continue;
        }
        out.push(Candidate {
            class,
            score,
            bbox: cfg.box_format.to_xyxy([b[0], b[1], b[2], b[3]], scale),
            keypoints: Vec::new(),
            keypoint_scores: Vec::new(),
        });
    }
    Ok(out)
}
