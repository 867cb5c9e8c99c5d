//! NonMaxSuppression: per batch and class, greedy selection of boxes by descending score,
//! dropping any box whose IoU with an already selected one exceeds `iou_threshold`.
//!
//! Inputs: `boxes` `[B, N, 4]` (corners `y1, x1, y2, x2` in either diagonal order, or with
//! `center_point_box = 1` centres and sizes `xc, yc, w, h`), `scores` `[B, C, N]`, then the
//! optional `max_output_boxes_per_class` (int64; missing or 0 selects nothing, as the spec
//! says), `iou_threshold` (float, default 0) and `score_threshold` (float; only scores strictly
//! above it are candidates). Output: `selected_indices` `[M, 3]` int64 rows `batch, class, box`,
//! batch-major, then class, then in selection order — onnxruntime's order. Equal scores are
//! taken in box order (lower index first). A box with zero area never suppresses or is
//! suppressed. The output's length depends on the values, so this op starts the plan's dynamic
//! tail unless its inputs are constants.

use crate::model::{DType, Data, Node, Tensor};
use crate::ops::shape::args::Inputs;
use crate::ops::{input, BuildCtx, Fact, Op, OpError};

/// NonMaxSuppression.
#[derive(Debug, Clone)]
pub struct NonMaxSuppression {
    center_point_box: bool,
}

/// Adds NonMaxSuppression to the registry.
pub fn register(r: &mut crate::ops::Registry) {
    r.register("NonMaxSuppression", build);
}

fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    match node.attrs.int("center_point_box", 0) {
        0 => Ok(Box::new(NonMaxSuppression { center_point_box: false })),
        1 => Ok(Box::new(NonMaxSuppression { center_point_box: true })),
        v => Err(OpError::malformed(format!("center_point_box is {v}: use 0 (corners) or 1 (centre and size)"))),
    }
}

/// `(batches, classes, boxes)` after checking the two shapes agree.
fn dims(boxes: &[usize], scores: &[usize]) -> Result<(usize, usize, usize), OpError> {
    match (boxes, scores) {
        ([b, n, 4], [b2, c, n2]) if b == b2 && n == n2 => Ok((*b, *c, *n)),
        _ => Err(OpError::mismatch(format!(
            "boxes {boxes:?} and scores {scores:?} do not fit: use boxes [B, N, 4] and scores [B, C, N]"
        ))),
    }
}

/// An optional scalar input as f32 / i64.
fn scalar(inputs: &[Option<&Tensor>], i: usize, what: &str) -> Result<Option<f64>, OpError> {
    let Some(t) = inputs.get(i).copied().flatten() else { return Ok(None) };
    if t.len() != 1 {
        return Err(OpError::malformed(format!("{what} must hold one value, got {}", t.len())));
    }
    Ok(Some(match &t.data {
        Data::F32(v) => v[0] as f64,
        _ => t.to_i64_vec().map_err(|e| OpError::mismatch(format!("{what}: {e}")))?[0] as f64,
    }))
}

impl NonMaxSuppression {
    /// Corners `(x1, y1, x2, y2)` with `x1 ≤ x2`, `y1 ≤ y2`.
    fn corners(&self, b: &[f32]) -> [f32; 4] {
        if self.center_point_box {
            let (cx, cy, w, h) = (b[0], b[1], b[2], b[3]);
            [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
        } else {
            let (y1, x1, y2, x2) = (b[0], b[1], b[2], b[3]);
            [x1.min(x2), y1.min(y2), x1.max(x2), y1.max(y2)]
        }
    }

    fn select(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<i64>, OpError> {
        let (bt, st) = (input(inputs, 0)?, input(inputs, 1)?);
        let (nb, nc, n) = dims(&bt.shape, &st.shape)?;
        let boxes = bt.as_f32().map_err(|_| OpError::mismatch("boxes must be float32"))?;
        let scores = st.as_f32().map_err(|_| OpError::mismatch("scores must be float32"))?;
        let max_out = scalar(inputs, 2, "max_output_boxes_per_class")?.unwrap_or(0.0);
        let iou_t = scalar(inputs, 3, "iou_threshold")?.unwrap_or(0.0) as f32;
        let score_t = scalar(inputs, 4, "score_threshold")?.map(|v| v as f32);
        if !(0.0..=1.0).contains(&iou_t) {
            return Err(OpError::malformed(format!("iou_threshold is {iou_t}: use a value from 0 to 1")));
        }
        let max_out = if max_out <= 0.0 { 0 } else { (max_out as usize).min(n) };
        let mut out = Vec::new();
        for b in 0..nb {
            let corners: Vec<[f32; 4]> = (0..n).map(|i| self.corners(&boxes[(b * n + i) * 4..][..4])).collect();
            for c in 0..nc {
                let s = &scores[(b * nc + c) * n..][..n];
                let mut order: Vec<usize> = (0..n).filter(|&i| score_t.is_none_or(|t| s[i] > t)).collect();
                order.sort_by(|&i, &j| s[j].total_cmp(&s[i]).then(i.cmp(&j)));
                let mut kept: Vec<usize> = Vec::new();
                for i in order {
                    if kept.len() >= max_out {
                        break;
                    }
                    if kept.iter().all(|&k| iou(&corners[k], &corners[i]) <= iou_t) {
                        kept.push(i);
                        out.extend_from_slice(&[b as i64, c as i64, i as i64]);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Intersection over union; 0 when either box has no area.
fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    let (aa, ab) = (area(a), area(b));
    if aa <= 0.0 || ab <= 0.0 {
        return 0.0;
    }
    let w = a[2].min(b[2]) - a[0].max(b[0]);
    let h = a[3].min(b[3]) - a[1].max(b[1]);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    inter / (aa + ab - inter)
}

impl Op for NonMaxSuppression {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        dims(inputs.shape(0)?, inputs.shape(1)?)?;
        // The count is known only from the values: run the selection when they are known.
        let values: Vec<Option<&Tensor>> = (0..inputs.len()).map(|i| inputs.value(i)).collect();
        if values.iter().zip(inputs).any(|(v, f)| f.is_some() && v.is_none()) {
            return Err(OpError::internal("the output's length depends on the input's values, known only at run time"));
        }
        Ok(vec![Fact::new(DType::I64, vec![self.select(&values)?.len() / 3, 3])])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let v = self.select(inputs)?;
        Ok(vec![Tensor { shape: vec![v.len() / 3, 3], data: Data::I64(v) }])
    }

    fn shape_depends_on_values(&self) -> bool {
        true
    }
}
