//! YOLOv5/v7 output `[1, N, 5 + C (+ extra)]`: row-major, per box `cx, cy, w, h` (input pixels,
//! or fractions of the input as YOLOv5's TFLite exports give them: [`super::yolo_box_scale`]),
//! objectness, C class probabilities, then keypoints if the profile has them. Score =
//! objectness × best class probability. With `grid_strides` (YOLOX exported without its decode)
//! the box values are grid offsets and log sizes, decoded here as YOLOX's `demo_postprocess` does.

use super::{argmax, cxcywh, grid_cells, output, read_keypoints, shape_error, yolo_box_scale, yolo_split};
use crate::detect::nms::Candidate;
use crate::detect::profile::{Profile, Yolo};
use crate::detect::DetectError;
use crate::model::Tensor;

/// Decodes a YOLOv5-style output.
pub fn decode(cfg: &Yolo, profile: &Profile, outputs: &[(String, Tensor)]) -> Result<Vec<Candidate>, DetectError> {
    let (shape, data) = output(outputs, &cfg.output, "yolov5")?;
    let expected =
        "[1, N, 5 + C] (boxes as rows: cx, cy, w, h, objectness, C class scores); a [1, 4 + C, N] output is yolov8";
    let (n, width) = match shape {
        [1, n, w] if *w > 5 => (*n, *w),
        _ => return Err(shape_error("yolov5", &cfg.output, shape, expected)),
    };
    let (classes, kp_at) = yolo_split(width, 5, cfg.classes, cfg.keypoints, cfg.keypoint_dims, |m| {
        shape_error("yolov5", &cfg.output, shape, format!("{expected}: {m}"))
    })?;
    let grid = grid_cells(&cfg.grid_strides, profile.size);
    if !grid.is_empty() && grid.len() != n {
        let [w, h] = profile.size;
        return Err(shape_error(
            "yolov5",
            &cfg.output,
            shape,
            format!(
                "{} rows: one per cell of the {w}×{h} input's grids of strides {:?} (`grid_strides`)",
                grid.len(),
                cfg.grid_strides
            ),
        ));
    }
    // Grid-relative values (YOLOX's raw heads) are never fractions of the input.
    let [sx, sy] = if grid.is_empty() {
        let max_center = data.chunks_exact(width).map(|r| r[0].abs().max(r[1].abs())).fold(0.0, f32::max);
        yolo_box_scale(cfg.normalized, profile.size, max_center)
    } else {
        [1.0, 1.0]
    };
    let mut out = Vec::new();
    for (i, row) in data.chunks_exact(width).take(n).enumerate() {
        let Some((class, p)) = argmax(&row[5..5 + classes]) else { continue };
        let score = row[4] * p;
        if score >= profile.score_threshold {
            let bbox = match grid.get(i) {
                Some(&(gx, gy, s)) => cxcywh((row[0] + gx) * s, (row[1] + gy) * s, row[2].exp() * s, row[3].exp() * s),
                None => cxcywh(row[0] * sx, row[1] * sy, row[2] * sx, row[3] * sy),
            };
            if !bbox.iter().all(|v| v.is_finite()) {
                return Err(DetectError::NonFinite { name: cfg.output.clone(), index: i * width + 2, value: row[2] });
            }
            let (mut keypoints, keypoint_scores) = read_keypoints(cfg.keypoints, cfg.keypoint_dims, |k| row[kp_at + k]);
            keypoints.iter_mut().for_each(|p| *p = [p[0] * sx, p[1] * sy]);
            out.push(Candidate { class, score, bbox, keypoints, keypoint_scores });
        }
    }
    Ok(out)
}
