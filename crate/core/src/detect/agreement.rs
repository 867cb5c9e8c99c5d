//! Detection agreement between two models on the same images: mAP@0.5 of one model's detections
//! (e.g. INT8) with the other's (FP32) as ground truth — the standard way to report a quantized
//! detector's fidelity when there are no labels.

use super::nms::iou;
use super::{Detection, Profile, Transform};
use crate::model::Tensor;
use std::collections::BTreeSet;

/// Average precision at IoU ≥ 0.5 per class, averaged over the classes present in the reference.
/// `reference[i]` and `candidate[i]` are the detections on image `i`. Returns `None` when the
/// reference has no detections at all (mAP is undefined then).
///
/// Per class: candidates of all images sorted by score; each is a true positive if it matches an
/// unmatched reference box of that class in its image with IoU ≥ `iou_threshold`; AP is the area
/// under the precision envelope (all-point interpolation, as in VOC 2010+ and COCO).
pub fn map_at(reference: &[Vec<Detection>], candidate: &[Vec<Detection>], iou_threshold: f32) -> Option<f64> {
    let classes: BTreeSet<usize> = reference.iter().flatten().map(|d| d.class).collect();
    if classes.is_empty() {
        return None;
    }
    let aps: Vec<f64> = classes.iter().map(|&c| average_precision(reference, candidate, c, iou_threshold)).collect();
    Some(aps.iter().sum::<f64>() / aps.len() as f64)
}

fn average_precision(reference: &[Vec<Detection>], candidate: &[Vec<Detection>], class: usize, thr: f32) -> f64 {
    let n_ref = reference.iter().flatten().filter(|d| d.class == class).count();
    let mut cands: Vec<(usize, &Detection)> = candidate
        .iter()
        .enumerate()
        .flat_map(|(i, ds)| ds.iter().filter(|d| d.class == class).map(move |d| (i, d)))
        .collect();
    cands.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
    let mut used: Vec<Vec<bool>> = reference.iter().map(|r| vec![false; r.len()]).collect();
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut points = Vec::with_capacity(cands.len());
    for (img, d) in cands {
        let refs = reference.get(img).map(Vec::as_slice).unwrap_or(&[]);
        let best = refs
            .iter()
            .enumerate()
            .filter(|(j, r)| r.class == class && !used[img][*j])
            .map(|(j, r)| (j, iou(&r.bbox, &d.bbox)))
            .filter(|&(_, v)| v >= thr)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((j, _)) => {
                used[img][j] = true;
                tp += 1
            }
            None => fp += 1,
        }
        points.push((tp as f64 / n_ref as f64, tp as f64 / (tp + fp) as f64));
    }
    // All-point interpolation: precision envelope from the right, area under it.
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    for i in 0..points.len() {
        let p = points[i..].iter().map(|p| p.1).fold(0.0, f64::max);
        ap += (points[i].0 - prev_recall) * p;
        prev_recall = points[i].0;
    }
    ap
}

/// Per set of outputs (tensors in `output_names`' order): whether `profile` decodes at least one
/// detection from it — the inputs on which agreement is defined.
pub fn finds_objects(profile: &Profile, output_names: &[String], sets: &[Vec<Tensor>]) -> Vec<bool> {
    let [w, h] = profile.size;
    let Ok(transform) = Transform::new(profile, w, h) else { return vec![false; sets.len()] };
    sets.iter()
        .map(|outs| {
            let named: Vec<(String, Tensor)> = output_names.iter().cloned().zip(outs.iter().cloned()).collect();
            super::detect(profile, &named, &transform).is_ok_and(|d| !d.is_empty())
        })
        .collect()
}

/// Agreement of raw model outputs: decodes each set of `candidate` and `reference` outputs (one
/// set per input, tensors in `output_names`' order) with `profile` and returns [`map_at`] at
/// IoU 0.5 — for fine-tuning's held-out checks, where both are outputs on the same inputs. Boxes
/// stay in input pixels (the same transform on both sides changes no IoU). `None` when the
/// reference finds nothing or the outputs do not decode.
pub fn outputs_map(
    profile: &Profile,
    output_names: &[String],
    candidate: &[Vec<Tensor>],
    reference: &[Vec<Tensor>],
) -> Option<f64> {
    let [w, h] = profile.size;
    let transform = Transform::new(profile, w, h).ok()?;
    let decode = |sets: &[Vec<Tensor>]| -> Option<Vec<Vec<Detection>>> {
        sets.iter()
            .map(|outs| {
                let named: Vec<(String, Tensor)> = output_names.iter().cloned().zip(outs.iter().cloned()).collect();
                super::detect(profile, &named, &transform).ok()
            })
            .collect()
    };
    map_at(&decode(reference)?, &decode(candidate)?, 0.5)
}

/// Two models compared on the same images (a quantized model against its float original):
/// their detections and outputs accumulated image by image, then the detection agreement
/// ([`map_at`] at IoU 0.5, the reference's detections as ground truth) and each output's SQNR
/// over all the images. What `qplay compare` and the page's "your own INT8 model" report.
#[derive(Debug, Default, Clone)]
pub struct Comparison {
    reference: Vec<Vec<Detection>>,
    candidate: Vec<Vec<Detection>>,
    /// Per output: Σ x² of the reference and Σ (x − x̂)² of the candidate.
    energy: std::collections::BTreeMap<String, (f64, f64)>,
}

/// A [`Comparison`]'s figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComparisonSummary {
    /// Images compared.
    pub images: usize,
    /// Detection agreement, mAP@0.5 (`None`: the reference found nothing).
    pub map50: Option<f64>,
    /// Per output, 10·log10(Σ x² / Σ (x − x̂)²) in dB (infinite when equal).
    pub output_sqnr_db: std::collections::BTreeMap<String, f64>,
    /// Detections of the reference (the ground truth), over all images.
    pub reference_detections: usize,
    /// Detections of the candidate.
    pub candidate_detections: usize,
    /// When the candidate's scores are far coarser than the reference's ([`score_warning`]):
    /// what that means and what to do.
    pub score_warning: Option<String>,
}

/// Why a quantized detector's scores can be coarse or above 1, and what to do.
const SHARED_SCALE: &str = "its scores come out of a quantized tensor whose step is wider than a score's range. This happens when a detector's boxes (in pixels) and scores (0 to 1) share one per-tensor-quantized output (ultralytics issue 7371): keep that output in float (onnxruntime's quantize_static: nodes_to_exclude for the last Concat) or quantize the float model with qplay, which leaves the outputs in float";

/// Says so when one model's detection scores exceed 1, which no probability does: for a model
/// that runs on quantized values (`arithmetic`), the shared-scale output of [`score_warning`];
/// for a float one, a reading of its outputs that is likely wrong (logits read as scores, or
/// another output read as the scores). `None` when every score is at most 1.
pub fn lone_score_warning(dets: &[Detection], arithmetic: crate::model::Arithmetic) -> Option<String> {
    let max = dets.iter().map(|d| d.score).fold(f32::NEG_INFINITY, f32::max);
    if max <= 1.0 + 1e-4 {
        return None;
    }
    let distinct = {
        let mut v: Vec<u32> = dets.iter().map(|d| d.score.to_bits()).collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    let what = format!(
        "scores above 1 (up to {max:.3}; {distinct} distinct value(s) over {} detections) are not probabilities",
        dets.len()
    );
    Some(match arithmetic {
        crate::model::Arithmetic::Float => format!(
            "{what}: this reading of the model's outputs is unlikely (logits read as scores, or another output read as the scores). \
             Pick another reading under \"also fits\" in the page, or give a profile (--profile p.json) that names the score output and its activation"
        ),
        _ => format!("{what}: this model runs on quantized values, and {SHARED_SCALE}"),
    })
}

/// Says so when a quantized model's detection scores (`candidate`) take only a few values where
/// the float model's (`reference`) take many, or exceed 1 where the float model's do not: the
/// scores then come out of a quantized tensor whose step is wider than a score's range, as when
/// an exporter or quantizer puts a detector's boxes (in pixels) and scores (0–1) in one
/// per-tensor-quantized output (onnxruntime's `quantize_static` on YOLOv8: steps of about 0.9).
pub fn score_warning(reference: &[Vec<Detection>], candidate: &[Vec<Detection>]) -> Option<String> {
    let distinct = |sets: &[Vec<Detection>]| {
        let mut v: Vec<u32> = sets.iter().flatten().map(|d| d.score.to_bits()).collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    let max = |sets: &[Vec<Detection>]| sets.iter().flatten().map(|d| d.score).fold(f32::NEG_INFINITY, f32::max);
    let n: usize = candidate.iter().map(Vec::len).sum();
    let (k, m) = (distinct(candidate), distinct(reference));
    let above_one = max(candidate) > 1.0 + 1e-4 && max(reference) <= 1.0 + 1e-4;
    let coarse = n >= 8 && k <= 3 && m >= 4 * k;
    (above_one || coarse).then(|| {
        format!(
            "the INT8 model's detection scores take {k} distinct value(s) over {n} detections (FP32: {m}){}: {SHARED_SCALE}",
            if above_one { format!(", up to {:.3}, above 1", max(candidate)) } else { String::new() }
        )
    })
}

impl Comparison {
    /// Adds one image: both models' outputs (by name) and detections.
    pub fn add(
        &mut self,
        (reference, ref_dets): (&[(String, Tensor)], Vec<Detection>),
        (candidate, cand_dets): (&[(String, Tensor)], Vec<Detection>),
    ) {
        for ((name, a), (_, b)) in reference.iter().zip(candidate) {
            let (a, b) = (a.to_f32_vec(), b.to_f32_vec());
            let e = self.energy.entry(name.clone()).or_default();
            for (x, y) in a.iter().zip(&b) {
                e.0 += f64::from(*x) * f64::from(*x);
                e.1 += f64::from(x - y) * f64::from(x - y);
            }
        }
        self.reference.push(ref_dets);
        self.candidate.push(cand_dets);
    }

    /// The figures so far.
    pub fn summary(&self) -> ComparisonSummary {
        let sqnr =
            |&(s, n): &(f64, f64)| if n == 0.0 { f64::INFINITY } else { 10.0 * (s.max(f64::MIN_POSITIVE) / n).log10() };
        ComparisonSummary {
            images: self.reference.len(),
            map50: map_at(&self.reference, &self.candidate, 0.5),
            output_sqnr_db: self.energy.iter().map(|(k, e)| (k.clone(), sqnr(e))).collect(),
            reference_detections: self.reference.iter().map(Vec::len).sum(),
            candidate_detections: self.candidate.iter().map(Vec::len).sum(),
            score_warning: score_warning(&self.reference, &self.candidate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(class: usize, score: f32, b: [f32; 4]) -> Detection {
        Detection { class, label: String::new(), score, bbox: b, keypoints: vec![], keypoint_scores: vec![] }
    }

    #[test]
    fn coarse_or_above_one_scores_are_flagged() {
        let b = [0.0, 0.0, 10.0, 10.0];
        let fine: Vec<Vec<Detection>> = vec![(0..10).map(|i| d(0, 0.5 + i as f32 * 0.04, b)).collect()];
        assert_eq!(score_warning(&fine, &fine), None);
        let coarse: Vec<Vec<Detection>> =
            vec![(0..10).map(|i| d(0, if i % 2 == 0 { 0.94 } else { 0.47 }, b)).collect()];
        let w = score_warning(&fine, &coarse).unwrap();
        assert!(w.contains("2 distinct value(s) over 10 detections (FP32: 10)") && !w.contains("above 1"), "{w}");
        let above = vec![vec![d(0, 1.88, b)]];
        let w = score_warning(&fine, &above).unwrap();
        assert!(w.contains("up to 1.880, above 1"), "{w}");
        // A float model whose own scores exceed 1 (logits, say) is not flagged for that.
        assert_eq!(score_warning(&above, &above), None);
    }

    #[test]
    fn one_model_scores_above_one_are_explained_by_its_arithmetic() {
        use crate::model::Arithmetic;
        let b = [0.0, 0.0, 10.0, 10.0];
        let probs = vec![d(0, 0.9, b), d(0, 1.0, b)];
        assert_eq!(lone_score_warning(&probs, Arithmetic::Quantized), None);
        assert_eq!(lone_score_warning(&[], Arithmetic::Float), None);
        let above = vec![d(0, 1.882, b), d(1, 1.882, b), d(2, 0.5, b)];
        let q = lone_score_warning(&above, Arithmetic::Quantized).unwrap();
        assert!(
            q.contains("up to 1.882; 2 distinct value(s) over 3 detections")
                && q.contains("share one per-tensor-quantized output"),
            "{q}"
        );
        let f = lone_score_warning(&above, Arithmetic::Float).unwrap();
        assert!(f.contains("logits read as scores") && !f.contains("quantized"), "{f}");
    }

    #[test]
    fn identical_is_one_and_missing_lowers_it() {
        let r = vec![vec![d(0, 0.9, [0.0, 0.0, 10.0, 10.0]), d(1, 0.8, [20.0, 20.0, 30.0, 30.0])], vec![]];
        assert_eq!(map_at(&r, &r, 0.5), Some(1.0));
        let half = vec![vec![d(0, 0.9, [0.0, 0.0, 10.0, 10.0])], vec![]];
        assert_eq!(map_at(&r, &half, 0.5), Some(0.5));
        // A shifted box below the IoU threshold is a false positive.
        let off = vec![vec![d(0, 0.9, [6.0, 6.0, 16.0, 16.0]), d(1, 0.8, [20.0, 20.0, 30.0, 30.0])], vec![]];
        assert_eq!(map_at(&r, &off, 0.5), Some(0.5));
        // An extra low-score false positive after the true one does not lower AP.
        let extra = vec![
            vec![
                d(0, 0.9, [0.0, 0.0, 10.0, 10.0]),
                d(0, 0.1, [50.0, 50.0, 60.0, 60.0]),
                d(1, 0.8, [20.0, 20.0, 30.0, 30.0]),
            ],
            vec![],
        ];
        assert_eq!(map_at(&r, &extra, 0.5), Some(1.0));
        assert_eq!(map_at(&[vec![]], &[vec![]], 0.5), None);
    }
}
