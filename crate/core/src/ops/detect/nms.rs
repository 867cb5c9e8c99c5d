//! `TFLite_Detection_PostProcess`'s arithmetic, step for step as LiteRT's
//! `detection_postprocess.cc`: centre-size decoding in double precision, the single-class greedy
//! NMS (scores at or above the threshold, stable-sorted, IoU strictly above the threshold
//! suppresses), and the fast and regular multi-class variants built on it.

use super::detection_postprocess::DetectionOptions;
use super::sort::{decreasing_partial, decreasing_stable};
use crate::ops::OpError;

/// A decoded box: ymin, xmin, ymax, xmax.
pub type Corners = [f32; 4];

/// One output row: the box, the class (background excluded) and the score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// ymin, xmin, ymax, xmax.
    pub bbox: Corners,
    /// 0-based class.
    pub class: usize,
    /// Score.
    pub score: f32,
}

/// The rows in output order (the fast path's rows placed at their offsets, gaps as zero rows)
/// and the count LiteRT reports in `num_detections`.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Output rows.
    pub rows: Vec<Row>,
    /// `num_detections`.
    pub count: usize,
}

const EMPTY: Row = Row { bbox: [0.0; 4], class: 0, score: 0.0 };

/// Decodes `enc` (`k` values per anchor, the first four y, x, h, w) against `anchors` (y, x, h,
/// w): `DecodeCenterSizeBoxes`, in double precision then rounded to float as LiteRT does.
pub fn decode(enc: &[f32], k: usize, anchors: &[f32], scale: [f32; 4]) -> Vec<Corners> {
    let s = scale.map(f64::from);
    enc.chunks_exact(k.max(4))
        .zip(anchors.chunks_exact(4))
        .map(|(e, a)| {
            let e = [f64::from(e[0]), f64::from(e[1]), f64::from(e[2]), f64::from(e[3])];
            let a = [f64::from(a[0]), f64::from(a[1]), f64::from(a[2]), f64::from(a[3])];
            let yc = (e[0] / s[0] * a[2] + a[0]) as f32;
            let xc = (e[1] / s[1] * a[3] + a[1]) as f32;
            let half_h = (0.5 * (e[2] / s[2]).exp() * a[2]) as f32;
            let half_w = (0.5 * (e[3] / s[3]).exp() * a[3]) as f32;
            [yc - half_h, xc - half_w, yc + half_h, xc + half_w]
        })
        .collect()
}

/// C++'s `std::max<float>` / `std::min<float>` (NaN handling included).
fn cmax(a: f32, b: f32) -> f32 {
    if a < b {
        b
    } else {
        a
    }
}
fn cmin(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

/// `ComputeIntersectionOverUnion`: 0 when either box has no area.
fn iou(a: &Corners, b: &Corners) -> f32 {
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    if area_a <= 0.0 || area_b <= 0.0 {
        return 0.0;
    }
    let ymin = cmax(a[0], b[0]);
    let xmin = cmax(a[1], b[1]);
    let ymax = cmin(a[2], b[2]);
    let xmax = cmin(a[3], b[3]);
    let inter = cmax(ymax - ymin, 0.0) * cmax(xmax - xmin, 0.0);
    inter / (area_a + area_b - inter)
}

/// `NonMaxSuppressionSingleClassHelper`: the anchors kept, best first, at most `max`.
fn single_class(o: &DetectionOptions, boxes: &[Corners], scores: &[f32], max: usize) -> Result<Vec<usize>, OpError> {
    if let Some(i) = boxes.iter().position(|b| b[0] > b[2] || b[1] > b[3]) {
        return Err(OpError::malformed(format!(
            "decoded box {i} {:?} has ymin > ymax or xmin > xmax (LiteRT refuses such boxes: check the anchors' sizes)",
            boxes[i]
        )));
    }
    let keep: Vec<usize> = (0..scores.len()).filter(|&i| scores[i] >= o.score_threshold).collect();
    let kept: Vec<f32> = keep.iter().map(|&i| scores[i]).collect();
    let order = decreasing_stable(&kept);
    let out_size = keep.len().min(max);
    let mut active = vec![true; keep.len()];
    let mut n_active = keep.len();
    let mut selected = Vec::with_capacity(out_size);
    for i in 0..keep.len() {
        if n_active == 0 || selected.len() >= out_size {
            break;
        }
        if !active[i] {
            continue;
        }
        let bi = keep[order[i]];
        selected.push(bi);
        active[i] = false;
        n_active -= 1;
        for j in i + 1..keep.len() {
            if active[j] && iou(&boxes[bi], &boxes[keep[order[j]]]) > o.iou_threshold {
                active[j] = false;
                n_active -= 1;
            }
        }
    }
    Ok(selected)
}

/// `NonMaxSuppressionMultiClassFastHelper`: each anchor scored by its best class, one NMS over
/// anchors, then the kept anchors' best `min(max_classes_per_detection, num_classes)` classes at
/// rows `max_classes_per_detection · k + col`.
pub fn fast(o: &DetectionOptions, boxes: &[Corners], scores: &[f32], cols: usize) -> Result<Selection, OpError> {
    let c = o.num_classes;
    let offset = cols - c;
    let per = o.max_classes_per_detection;
    let take = per.min(c);
    let mut best = Vec::with_capacity(boxes.len());
    let mut max_scores = Vec::with_capacity(boxes.len());
    for row in scores.chunks_exact(cols) {
        let s = &row[offset..];
        let order = decreasing_partial(s, take);
        max_scores.push(s[order[0]]);
        best.push(order[..take].to_vec());
    }
    let selected = single_class(o, boxes, &max_scores, o.max_detections)?;
    let mut rows = vec![EMPTY; o.max_detections * per];
    for (k, &a) in selected.iter().enumerate() {
        let s = &scores[a * cols + offset..(a + 1) * cols];
        for (col, &class) in best[a].iter().enumerate() {
            rows[per * k + col] = Row { bbox: boxes[a], class, score: s[class] };
        }
    }
    Ok(Selection { rows, count: selected.len() })
}

/// `NonMaxSuppressionMultiClassRegularHelper` (single-threaded, as LiteRT runs it by default):
/// NMS per class in class order (at most `min(detections_per_class, max_detections)` each), each
/// class's selections — best first — merged into the best so far as `std::inplace_merge` does
/// (stable: on equal scores the earlier classes' rows come first), cut to `max_detections`.
pub fn regular(o: &DetectionOptions, boxes: &[Corners], scores: &[f32], cols: usize) -> Result<Selection, OpError> {
    let c = o.num_classes;
    let offset = cols - c;
    let n = boxes.len();
    let per_class = o.detections_per_class.min(o.max_detections);
    if per_class == 0 {
        return Err(OpError::malformed("the regular NMS needs max_detections and detections_per_class of 1 or more"));
    }
    // The best so far: (anchor, class) and score, in decreasing order.
    let mut best: Vec<((usize, usize), f32)> = Vec::new();
    let mut class_scores = vec![0f32; n];
    for class in 0..c {
        for (row, s) in class_scores.iter_mut().enumerate() {
            *s = scores[row * cols + class + offset];
        }
        let selected = single_class(o, boxes, &class_scores, per_class)?;
        if selected.is_empty() {
            continue;
        }
        let mut merged = Vec::with_capacity(best.len() + selected.len());
        let (mut i, mut j) = (0, 0);
        while i < best.len() || j < selected.len() {
            // The new row goes first only when its score is strictly greater.
            let take_new = j < selected.len() && (i >= best.len() || class_scores[selected[j]] > best[i].1);
            if take_new {
                merged.push(((selected[j], class), class_scores[selected[j]]));
                j += 1;
            } else {
                merged.push(best[i]);
                i += 1;
            }
        }
        merged.truncate(o.max_detections);
        best = merged;
    }
    let mut rows = vec![EMPTY; o.max_detections * o.max_classes_per_detection];
    for (row, &((a, class), score)) in best.iter().enumerate() {
        rows[row] = Row { bbox: boxes[a], class, score };
    }
    Ok(Selection { rows, count: best.len() })
}
