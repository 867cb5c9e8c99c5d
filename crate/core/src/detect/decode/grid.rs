//! Per-stride anchor-free heads with separate outputs (SCRFD, YuNet): for each stride `s` a score
//! map, optionally an objectness map, a box map and a landmark map, each `[1, N_s, K]` (or
//! `[N_s, K]`) with `N_s = ⌈H/s⌉·⌈W/s⌉·anchors` rows: cells row-major, `anchors` rows per cell.
//!
//! A row of cell `(c, r)` scores its best class (times objectness as `√(class·objectness)` when
//! there is an objectness map: OpenCV's YuNet decode). Its box, in input pixels:
//! - `ltrb` (SCRFD): distances from the cell corner `(c·s, r·s)` to the four edges, times `s`;
//! - `offset_log_size` (YuNet): centre `((c + dx)·s, (r + dy)·s)`, size `(e^dw·s, e^dh·s)`;
//! - `dfl` (NanoDet, PP-PicoDet): ltrb distances as distributions over `reg_max + 1` bins.
//!
//! Landmark `k` is `((c + kx)·s, (r + ky)·s)` in both (pairs `x, y`).

use super::{output, shape_error};
use crate::detect::nms::Candidate;
use crate::detect::profile::{Grid, GridBox, Profile};
use crate::detect::DetectError;
use crate::model::Tensor;

/// One output of a stride, read and checked: its data and values per row.
type Map<'a> = (&'a [f32], usize);

fn map<'a>(
    outputs: &'a [(String, Tensor)],
    name: &str,
    rows: usize,
    width: Option<usize>,
    what: &str,
) -> Result<Map<'a>, DetectError> {
    let (shape, data) = output(outputs, name, "grid")?;
    let k = match shape {
        [1, n, k] | [n, k] if *n == rows && width.is_none_or(|w| w == *k) => *k,
        _ => {
            return Err(shape_error(
                "grid",
                name,
                shape,
                format!(
                    "[1, {rows}, {}]: {what}, one row per cell and anchor of its stride's grid (check `strides`, `anchors` and the input size)",
                    width.map_or("K".to_string(), |w| w.to_string())
                ),
            ))
        }
    };
    Ok((data, k))
}

/// `Σ softmax(logits)ᵢ · i`: a distance from its bins.
fn expectation(logits: &[f32]) -> f32 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let (mut sum, mut dot) = (0f32, 0f32);
    for (i, &l) in logits.iter().enumerate() {
        let e = (l - max).exp();
        sum += e;
        dot += e * i as f32;
    }
    dot / sum
}

/// Decodes a per-stride head.
pub fn decode(cfg: &Grid, profile: &Profile, outputs: &[(String, Tensor)]) -> Result<Vec<Candidate>, DetectError> {
    let [w, h] = profile.size;
    let mut out = Vec::new();
    for (i, &s) in cfg.strides.iter().enumerate() {
        let (cols, rows_) = (w.div_ceil(s), h.div_ceil(s));
        let rows = cols * rows_ * cfg.anchors;
        let (scores, classes) = map(outputs, &cfg.score_outputs[i], rows, None, "class scores")?;
        let obj = match cfg.objectness_outputs.get(i) {
            Some(n) => Some(map(outputs, n, rows, Some(1), "objectness")?.0),
            None => None,
        };
        let bins = cfg.reg_max + 1;
        let width = if cfg.box_encoding == GridBox::Dfl { 4 * bins } else { 4 };
        let (boxes, _) = map(outputs, &cfg.box_outputs[i], rows, Some(width), "box values")?;
        let marks = match cfg.landmark_outputs.get(i) {
            Some(n) => Some(map(outputs, n, rows, Some(2 * cfg.landmarks), "landmark x, y pairs")?.0),
            None => None,
        };
        let sf = s as f32;
        for row in 0..rows {
            let cell = row / cfg.anchors;
            let (c, r) = ((cell % cols) as f32 + cfg.cell_center, (cell / cols) as f32 + cfg.cell_center);
            let Some((class, p)) = super::argmax(&scores[row * classes..][..classes]) else { continue };
            let score = match obj {
                Some(o) => (p.clamp(0.0, 1.0) * o[row].clamp(0.0, 1.0)).sqrt(),
                None => p,
            };
            if score < profile.score_threshold {
                continue;
            }
            let b = &boxes[row * width..][..width];
            let bbox = match cfg.box_encoding {
                GridBox::Dfl => {
                    let d: Vec<f32> = b.chunks_exact(bins).map(expectation).collect();
                    [(c - d[0]) * sf, (r - d[1]) * sf, (c + d[2]) * sf, (r + d[3]) * sf]
                }
                GridBox::Ltrb => [(c - b[0]) * sf, (r - b[1]) * sf, (c + b[2]) * sf, (r + b[3]) * sf],
                GridBox::OffsetLogSize => {
                    let (cx, cy, bw, bh) = ((c + b[0]) * sf, (r + b[1]) * sf, b[2].exp() * sf, b[3].exp() * sf);
                    [cx - bw / 2.0, cy - bh / 2.0, cx + bw / 2.0, cy + bh / 2.0]
                }
            };
            let keypoints = marks.map_or_else(Vec::new, |m| {
                let m = &m[row * 2 * cfg.landmarks..][..2 * cfg.landmarks];
                m.chunks_exact(2).map(|p| [(c + p[0]) * sf, (r + p[1]) * sf]).collect()
            });
            out.push(Candidate { class, score, bbox, keypoints, keypoint_scores: Vec::new() });
        }
    }
    Ok(out)
}
