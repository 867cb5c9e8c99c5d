//! Heatmap detectors ("objects as points"), decoded from parts (see [`CenterNet`] for every
//! field): a detection is a heatmap cell that scores at least the threshold and, with
//! `peaks_only`, is the maximum of its 3×3 neighbourhood (what the reference's
//! `max_pool2d(3, stride 1, pad 1) == heat` keeps, ties included).

use super::{output, shape_error, sigmoid};
use crate::detect::nms::Candidate;
use crate::detect::profile::{AxisOrder, BoxEncoding, CenterNet, LandmarkEncoding, Profile};
use crate::detect::DetectError;
use crate::model::Tensor;

const NAME: &str = "centernet";

/// One output on the heatmap's grid: `k` channels, read by channel and cell.
struct Grid<'a> {
    data: &'a [f32],
    k: usize,
    plane: usize,
    channels_last: bool,
}

impl Grid<'_> {
    fn at(&self, ch: usize, cell: usize) -> f32 {
        if self.channels_last {
            self.data[cell * self.k + ch]
        } else {
            self.data[ch * self.plane + cell]
        }
    }
}

/// `(channels, height, width)` of a grid output in the configured layout.
fn dims(shape: &[usize], channels_last: bool) -> Option<(usize, usize, usize)> {
    match (shape, channels_last) {
        ([1, k, h, w], false) | ([1, h, w, k], true) if *k > 0 && *h > 0 && *w > 0 => Some((*k, *h, *w)),
        _ => None,
    }
}

fn layout_name(channels_last: bool, k: &str, h: usize, w: usize) -> String {
    if channels_last {
        format!("[1, {h}, {w}, {k}]")
    } else {
        format!("[1, {k}, {h}, {w}]")
    }
}

/// Reads output `name`, checked to lie on the `h × w` grid with `k` channels.
fn grid<'a>(
    outputs: &'a [(String, Tensor)],
    name: &str,
    k: usize,
    (h, w): (usize, usize),
    channels_last: bool,
    what: &str,
) -> Result<Grid<'a>, DetectError> {
    let (shape, data) = output(outputs, name, NAME)?;
    if dims(shape, channels_last) != Some((k, h, w)) {
        return Err(shape_error(
            NAME,
            name,
            shape,
            format!(
                "{}, the heatmap's grid with {k} channels ({what})",
                layout_name(channels_last, &k.to_string(), h, w)
            ),
        ));
    }
    Ok(Grid { data, k, plane: h * w, channels_last })
}

/// Decodes a heatmap detector's outputs into candidates in input pixels.
pub fn decode(cfg: &CenterNet, profile: &Profile, outputs: &[(String, Tensor)]) -> Result<Vec<Candidate>, DetectError> {
    let cl = cfg.channels_last;
    let (hshape, heat) = output(outputs, &cfg.heatmap_output, NAME)?;
    let Some((c, h, w)) = dims(hshape, cl) else {
        let expected = if cl { "[1, H, W, C] class heatmaps (channels_last)" } else { "[1, C, H, W] class heatmaps" };
        return Err(shape_error(NAME, &cfg.heatmap_output, hshape, expected));
    };
    let heat = Grid { data: heat, k: c, plane: h * w, channels_last: cl };
    let box_k = if matches!(cfg.box_encoding, BoxEncoding::Ltrb | BoxEncoding::LtrbPixels) { 4 } else { 2 };
    let boxes = grid(outputs, &cfg.wh_output, box_k, (h, w), cl, "box")?;
    let offsets =
        cfg.offset_output.as_deref().map(|n| grid(outputs, n, 2, (h, w), cl, "centre offsets")).transpose()?;
    let marks = match &cfg.landmarks_output {
        Some(n) if cfg.landmarks > 0 => Some(grid(outputs, n, 2 * cfg.landmarks, (h, w), cl, "landmarks")?),
        _ => None,
    };
    let s = cfg.stride;
    let act = |v: f32| if cfg.heatmap_logits { sigmoid(v) } else { v };
    let (ox, oy) = match cfg.offset_order {
        AxisOrder::Xy => (0, 1),
        AxisOrder::Yx => (1, 0),
    };
    let mut out = Vec::new();
    for class in 0..c {
        for y in 0..h {
            for x in 0..w {
                let cell = y * w + x;
                let v = heat.at(class, cell);
                // The sigmoid is monotonic: peaks are found on raw values, thresholds on scores.
                let score = act(v);
                if score < profile.score_threshold {
                    continue;
                }
                if cfg.peaks_only
                    && !(y.saturating_sub(1)..(y + 2).min(h))
                        .all(|yy| (x.saturating_sub(1)..(x + 2).min(w)).all(|xx| heat.at(class, yy * w + xx) <= v))
                {
                    continue;
                }
                let (dx, dy) = offsets.as_ref().map_or((0.0, 0.0), |o| (o.at(ox, cell), o.at(oy, cell)));
                let cx = (x as f32 + cfg.cell_center + dx) * s;
                let cy = (y as f32 + cfg.cell_center + dy) * s;
                let b = |k: usize| boxes.at(k, cell);
                let bbox = match cfg.box_encoding {
                    BoxEncoding::Wh => super::cxcywh(cx, cy, b(0) * s, b(1) * s),
                    BoxEncoding::Hw => super::cxcywh(cx, cy, b(1) * s, b(0) * s),
                    BoxEncoding::LogHw => super::cxcywh(cx, cy, b(1).exp() * s, b(0).exp() * s),
                    BoxEncoding::LogWh => super::cxcywh(cx, cy, b(0).exp() * s, b(1).exp() * s),
                    BoxEncoding::Ltrb => [cx - b(0) * s, cy - b(1) * s, cx + b(2) * s, cy + b(3) * s],
                    BoxEncoding::LtrbPixels => [cx - b(0), cy - b(1), cx + b(2), cy + b(3)],
                };
                if !bbox.iter().all(|v| v.is_finite()) {
                    return Err(DetectError::NonFinite { name: cfg.wh_output.clone(), index: cell, value: b(0) });
                }
                let keypoints = marks.as_ref().map_or_else(Vec::new, |m| {
                    let (bw, bh) = (bbox[2] - bbox[0], bbox[3] - bbox[1]);
                    (0..cfg.landmarks)
                        .map(|j| {
                            let (a, b) = (m.at(2 * j, cell), m.at(2 * j + 1, cell));
                            match cfg.landmark_encoding {
                                LandmarkEncoding::BoxYx => [bbox[0] + b * bw, bbox[1] + a * bh],
                                LandmarkEncoding::BoxXy => [bbox[0] + a * bw, bbox[1] + b * bh],
                                LandmarkEncoding::CenterXy => {
                                    [(x as f32 + cfg.cell_center + a) * s, (y as f32 + cfg.cell_center + b) * s]
                                }
                            }
                        })
                        .collect()
                });
                out.push(Candidate { class, score, bbox, keypoints, keypoint_scores: Vec::new() });
            }
        }
    }
    Ok(out)
}
