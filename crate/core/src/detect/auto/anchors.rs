//! Anchor-based heads with separate box and score outputs (MediaPipe BlazeFace, TF SSD).

use super::*;

/// What the anchor-head recognisers read: the outputs' names and unbatched shapes, and the
/// model input's width and height where known.
#[derive(Clone, Copy)]
pub(super) struct Outputs<'a> {
    pub shapes: &'a [(&'a str, &'a Dims)],
    pub in_w: Option<usize>,
    pub in_h: Option<usize>,
}

impl<'a> Outputs<'a> {
    /// The outputs of rank `r`.
    fn rank(self, r: usize) -> impl Iterator<Item = (&'a str, &'a Dims)> {
        self.shapes.iter().filter(move |(_, s)| s.len() == r).copied()
    }
}

/// MediaPipe BlazeFace: regressors `[N, 16]` + scores `[N, 1]` in every anchor layout, the anchors
/// possibly split over output pairs.
pub(super) fn blazeface(o: Outputs, assumed: &mut Vec<String>, notes: &mut Vec<String>) -> Option<Classified> {
    // BlazeFace (MediaPipe face detection): [N, 16] regressors + [N, 1] scores, N the anchors of
    // one of MediaPipe's anchor layouts for this input size: short range (128: strides 8, 16, 16,
    // 16; 2 anchors each), back camera (256: strides 16, 32, 32, 32), full range (192: stride 4,
    // 1 anchor).
    // Exports may split the anchors over several pairs (512 + 384): finest (most rows) first.
    let mut pairs: Vec<(&str, &str, usize)> = o
        .rank(2)
        .filter(|(_, s)| s[1] == Some(16))
        .filter_map(|(r, s)| {
            let cls = o.rank(2).find(|(c, cs)| *c != r && cs[0] == s[0] && cs[1] == Some(1))?;
            Some((r, cls.0, s[0]?))
        })
        .collect();
    pairs.sort_by_key(|p| std::cmp::Reverse(p.2));
    let reg = pairs.first().map(|&(r, c, _)| (r, c, pairs.iter().map(|p| p.2).sum::<usize>()));
    if let (Some((r, c, n)), Some(w), Some(h)) = (reg, o.in_w, o.in_h) {
        let layouts: [(&[usize], usize, &str); 3] =
            [(&[8, 16, 16, 16], 2, "short range"), (&[16, 32, 32, 32], 2, "back camera"), (&[4], 1, "full range")];
        // Each layout's decoder, kept when its anchor count is the model's.
        let fit = layouts.iter().find_map(|&(strides, per, layout)| {
            let d = BlazeFace {
                regressors_output: r.to_string(),
                classificators_output: c.to_string(),
                strides: strides.to_vec(),
                anchors_per_layer: per,
                coord_scale: w as f32,
                num_keypoints: 6,
                score_clip: 100.0,
                more_outputs: pairs[1..].iter().map(|p| [p.0.to_string(), p.1.to_string()]).collect(),
            };
            (crate::detect::decode::blazeface::anchors(&d, w, h).len() == n).then_some((d, layout))
        });
        if let Some((d, layout)) = fit {
            assumed.append(notes);
            let split = if pairs.len() > 1 {
                format!(
                    " (the anchors split over {} output pairs: {})",
                    pairs.len(),
                    pairs.iter().map(|p| format!("`{}` + `{}` {} rows", p.0, p.1, p.2)).collect::<Vec<_>>().join(", ")
                )
            } else {
                String::new()
            };
            assumed.push(format!(
                "`{r}` and `{c}` are MediaPipe BlazeFace ({layout}) regressors [1, N, 16] and scores [1, N, 1], {n} anchors \
                 on strides {:?}, 6 keypoints{split}",
                d.strides
            ));
            return Some(Classified {
                alternatives: Vec::new(),
                kind: Kind::BlazeFace,
                decoder: Decoder::Blazeface(d),
                classes: Some(1),
                grid_h: None,
            });
        }
    }

    None
}

/// TF Object Detection API SSD: box codes `[N, 1, 4]` or `[N, 4]` + logits `[N, K]` with the
/// same N (after the per-stride heads, whose landmark maps have the same row counts).
pub(super) fn ssd(o: Outputs, assumed: &mut Vec<String>, notes: &mut Vec<String>) -> Option<Classified> {
    // SSD: [N, 1, 4] or [N, 4] box codes + [N, K] logits with the same N.
    let boxes = o.shapes.iter().find(|(_, s)| matches!(s, [Some(_), Some(1), Some(4)] | [Some(_), Some(4)]));
    if let Some(&(bname, bs)) = boxes {
        let n = bs[0];
        let logits = o.rank(2).find(|(name, s)| *name != bname && s[0] == n && s[1].is_some_and(|k| k >= 2));
        if let Some((lname, ls)) = logits {
            let (n, k) = (n.unwrap_or(0), ls[1].unwrap_or(0));
            assumed.append(notes);
            assumed.push(format!(
                "`{bname}` holds SSD box codes (ty, tx, th, tw; scales 10, 10, 5, 5) and `{lname}` class logits (sigmoid), class 0 is background"
            ));
            let (w, h) = (o.in_w.unwrap_or(300), o.in_h.unwrap_or(300));
            let feature_maps = ssd_feature_maps(w, h);
            let d = SsdAnchors {
                num_layers: 6,
                feature_maps,
                min_scale: 0.2,
                max_scale: 0.95,
                aspect_ratios: vec![1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
                reduce_boxes_in_lowest_layer: true,
                interpolated_scale_aspect_ratio: 1.0,
                box_scales: [10.0, 10.0, 5.0, 5.0],
                boxes_output: bname.to_string(),
                logits_output: lname.to_string(),
                background_class: Some(0),
                score: ScoreFn::Sigmoid,
            };
            let count = crate::detect::decode::ssd::anchors(&d).len();
            if count == n {
                assumed.push(format!(
                    "TF SSD MobileNet anchors: 6 layers ({}), scales 0.2..0.95, aspect ratios 1, 2, 0.5, 3, 1/3 — {n} anchors as the model has",
                    d.feature_maps.iter().map(|m| format!("{}×{}", m[0], m[1])).collect::<Vec<_>>().join(", ")
                ));
            } else {
                assumed.push(format!(
                    "the model has {n} anchors but the standard TF SSD anchors give {count}: edit `feature_maps` and the anchor settings from the model's pipeline.config"
                ));
            }
            return Some(Classified {
                alternatives: Vec::new(),
                kind: Kind::Ssd,
                decoder: Decoder::SsdAnchors(d),
                classes: Some(k - 1),
                grid_h: None,
            });
        }
    }

    None
}

/// Feature map sizes `[h, w]` of TF's SSD MobileNet: stride 16, then halving (rounding up) for
/// five more layers — 19, 10, 5, 3, 2, 1 for a 300 input.
fn ssd_feature_maps(w: usize, h: usize) -> Vec<[usize; 2]> {
    let (mut fh, mut fw) = (h.div_ceil(16).max(1), w.div_ceil(16).max(1));
    let mut maps = Vec::with_capacity(6);
    for _ in 0..6 {
        maps.push([fh, fw]);
        (fh, fw) = (fh.div_ceil(2), fw.div_ceil(2));
    }
    maps
}

/// Cells in the grids of `strides` over the input (`⌊h/s⌋ × ⌊w/s⌋` each), when its size is known.
pub(super) fn grid_count(strides: &[usize], in_w: Option<usize>, in_h: Option<usize>) -> Option<usize> {
    let (w, h) = (in_w?, in_h?);
    Some(strides.iter().map(|s| (w / s) * (h / s)).sum())
}

/// Points in the grids of `strides` with partial cells counted (`⌈h/s⌉ × ⌈w/s⌉` each: NanoDet's
/// feature maps), when the input size is known.
pub(super) fn dfl_points(strides: &[usize], in_w: Option<usize>, in_h: Option<usize>) -> Option<usize> {
    let (w, h) = (in_w?, in_h?);
    Some(strides.iter().map(|s| w.div_ceil(*s) * h.div_ceil(*s)).sum())
}

/// Box counts of YOLOv5-style anchor grids for this input (3 anchors per cell; strides 8–32,
/// or 8–64 for the P6 models); empty when the size is unknown.
pub(super) fn yolov5_anchor_counts(in_w: Option<usize>, in_h: Option<usize>) -> Vec<usize> {
    let (Some(w), Some(h)) = (in_w, in_h) else { return Vec::new() };
    let cells = |s: usize| w.div_ceil(s) * h.div_ceil(s);
    vec![3 * (cells(8) + cells(16) + cells(32)), 3 * (cells(8) + cells(16) + cells(32) + cells(64))]
}
