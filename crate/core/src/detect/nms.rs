//! Class-aware greedy non-maximum suppression.

/// A scored box before suppression. Coordinates are `x1, y1, x2, y2` in any one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Class index (background excluded).
    pub class: usize,
    /// Score in 0..1.
    pub score: f32,
    /// `x1, y1, x2, y2`.
    pub bbox: [f32; 4],
    /// Optional landmarks `x, y` in the same frame as `bbox`.
    pub keypoints: Vec<[f32; 2]>,
    /// Per-keypoint visibility/confidence in 0..1 (pose models), same order as `keypoints`;
    /// empty when the model gives none.
    pub keypoint_scores: Vec<f32>,
}

/// Intersection over union of two `x1, y1, x2, y2` boxes; 0 when the union is empty (degenerate
/// boxes never suppress anything). Inverted boxes count as empty.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Greedy NMS per class: visit candidates by descending score (ties: lower index first, so the
/// result is deterministic), keep one unless its IoU with an already kept box **of the same
/// class** exceeds `iou_threshold`, stop after `max_detections`. Returns the kept candidates'
/// indices in visiting order.
///
/// Cost is `O(n log n + n·max_detections)`. Scores must not be NaN (decoders reject NaN
/// outputs); a NaN would sort last here rather than panic.
pub fn nms(candidates: &[Candidate], iou_threshold: f32, max_detections: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    // total_cmp puts NaN above +inf; map NaN to −inf so it sorts last.
    let key = |i: usize| {
        let s = candidates[i].score;
        if s.is_nan() {
            f32::NEG_INFINITY
        } else {
            s
        }
    };
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        if kept.len() >= max_detections {
            break;
        }
        let c = &candidates[i];
        let suppressed =
            kept.iter().any(|&k| candidates[k].class == c.class && iou(&candidates[k].bbox, &c.bbox) > iou_threshold);
        if !suppressed {
            kept.push(i);
        }
    }
    kept
}
