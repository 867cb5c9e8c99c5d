//! MediaPipe BlazeFace (short range): `SsdAnchorsCalculator` anchors with `fixed_anchor_size`
//! and `TensorsToDetectionsCalculator` decoding (`reverse_output_order`: x before y).
//!
//! MediaPipe blends overlapping faces with weighted NMS; qplay uses the same greedy NMS for
//! every decoder, which keeps the best-scoring box unchanged instead of averaging.

use super::{output, shape_error, sigmoid};
use crate::detect::nms::Candidate;
use crate::detect::profile::{BlazeFace, Profile};
use crate::detect::DetectError;
use crate::model::Tensor;

/// Anchor centres `(cx, cy)`, relative to the input size (0..1), in output order: consecutive
/// layers with the same stride share one grid (`⌈size/stride⌉` cells per axis) with
/// `anchors_per_layer` anchors each; cells by row, column, then anchor. All anchors have size 1.
pub fn anchors(cfg: &BlazeFace, input_w: usize, input_h: usize) -> Vec<[f32; 2]> {
    let mut out = Vec::new();
    let mut layer = 0;
    while layer < cfg.strides.len() {
        let stride = cfg.strides[layer].max(1);
        let same = cfg.strides[layer..].iter().take_while(|&&s| s == cfg.strides[layer]).count();
        let (fw, fh) = (input_w.div_ceil(stride), input_h.div_ceil(stride));
        let per_cell = same * cfg.anchors_per_layer;
        for y in 0..fh {
            let cy = (y as f32 + 0.5) / fh as f32;
            for x in 0..fw {
                let cx = (x as f32 + 0.5) / fw as f32;
                out.extend(std::iter::repeat_n([cx, cy], per_cell));
            }
        }
        layer += same;
    }
    out
}

/// Decodes BlazeFace regressors and classificators; keypoints come with each box.
pub fn decode(cfg: &BlazeFace, profile: &Profile, outputs: &[(String, Tensor)]) -> Result<Vec<Candidate>, DetectError> {
    const NAME: &str = "blazeface";
    let [in_w, in_h] = profile.size;
    let anchors = anchors(cfg, in_w, in_h);
    let n = anchors.len();
    let coords = 4 + 2 * cfg.num_keypoints;
    let (mut rshape, reg) = output(outputs, &cfg.regressors_output, NAME)?;
    let (mut cshape, cls) = output(outputs, &cfg.classificators_output, NAME)?;
    // Exports that split the anchors (512 + 384) into several output pairs: rows in order.
    let (mut reg, mut cls) = (std::borrow::Cow::Borrowed(reg), std::borrow::Cow::Borrowed(cls));
    let (mut rs, mut cs) = (rshape.to_vec(), cshape.to_vec());
    for [r, c] in &cfg.more_outputs {
        let (r2, rd) = output(outputs, r, NAME)?;
        let (c2, cd) = output(outputs, c, NAME)?;
        let fits = |a: &[usize], b: &[usize]| a.len() == b.len() && a.len() >= 2 && a[0] == 1 && a[2..] == b[2..];
        if !fits(&rs, r2) || !fits(&cs, c2) {
            return Err(shape_error(
                NAME,
                r,
                r2,
                format!("[1, M, {coords}] rows that follow `{}`'s", cfg.regressors_output),
            ));
        }
        reg.to_mut().extend_from_slice(rd);
        cls.to_mut().extend_from_slice(cd);
        (rs[1], cs[1]) = (rs[1] + r2[1], cs[1] + c2[1]);
    }
    (rshape, cshape) = (&rs, &cs);
    if !matches!(rshape, [1, m, c] if *m == n && *c == coords) {
        return Err(shape_error(
            NAME,
            &cfg.regressors_output,
            rshape,
            format!("[1, {n}, {coords}]: {n} anchors from `strides` and a {in_w}×{in_h} input, 4 box values + 2 per keypoint"),
        ));
    }
    if !matches!(cshape, [1, m, 1] | [1, m] if *m == n) {
        return Err(shape_error(
            NAME,
            &cfg.classificators_output,
            cshape,
            format!("[1, {n}, 1], one logit per anchor"),
        ));
    }
    let (fw, fh) = (in_w as f32, in_h as f32);
    let unit = 1.0 / cfg.coord_scale;
    let mut out = Vec::new();
    for (i, &[ax, ay]) in anchors.iter().enumerate() {
        let score = sigmoid(cls[i].max(-cfg.score_clip).min(cfg.score_clip));
        if score < profile.score_threshold {
            continue;
        }
        let r = &reg[i * coords..(i + 1) * coords];
        let cx = (r[0] * unit + ax) * fw;
        let cy = (r[1] * unit + ay) * fh;
        let (w, h) = (r[2] * unit * fw, r[3] * unit * fh);
        let keypoints = (0..cfg.num_keypoints)
            .map(|k| [(r[4 + 2 * k] * unit + ax) * fw, (r[5 + 2 * k] * unit + ay) * fh])
            .collect();
        out.push(Candidate {
            class: 0,
            score,
            bbox: super::cxcywh(cx, cy, w, h),
            keypoints,
            keypoint_scores: Vec::new(),
        });
    }
    Ok(out)
}
