//! Single-output row heads: YOLOv5/v6/v7/v8/YOLO11 grids, end-to-end rows, raw YOLOX and
//! NanoDet-Plus heads.

use super::*;

/// One `[A, B]` output of rows (the first that fits, if the model has several): end-to-end rows,
/// YOLOv8-style channels-first, a raw NanoDet-Plus or YOLOX head, YOLOv5/v6/v7-style rows.
pub(super) fn yolo_rows(
    shapes: &[(&str, &Dims)],
    in_w: Option<usize>,
    in_h: Option<usize>,
    meta: &ModelMeta,
    assumed: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Option<Classified> {
    // YOLO: a single [A, B] output (the first one that fits, if the model has several).
    for &(name, s) in shapes.iter().filter(|(_, s)| s.len() == 2) {
        let others = shapes.len() > 1;
        // [N, 6] rows that are not a YOLOv5 anchor grid: boxes the model already selected.
        if let (Some(n), Some(6)) = (s[0], s[1]) {
            if meta.end2end || (n <= 1000 && !yolov5_anchor_counts(in_w, in_h).contains(&n)) {
                assumed.append(notes);
                assumed.push(format!(
                    "`{name}` [1, {n}, 6] holds boxes the model already selected (end-to-end export: x1, y1, x2, y2, score, class; no NMS applied){}",
                    if meta.end2end { ", as its metadata says" } else { "" }
                ));
                let d = End2End::new(name);
                let alternatives = if meta.end2end {
                    Vec::new()
                } else {
                    vec![(
                        "YOLOv5-style rows of one class (box, objectness, score), NMS applied".into(),
                        Decoder::Yolov5(Yolo::new(name)),
                    )]
                };
                return Some(Classified {
                    alternatives,
                    kind: Kind::Yolo,
                    decoder: Decoder::End2end(d),
                    classes: None,
                    grid_h: None,
                });
            }
        }
        match (s[0], s[1]) {
            (Some(56), b) if b.is_none_or(|n| n > 56) => {
                assumed.append(notes);
                assumed.push(format!(
                    "`{name}` [1, 56, {}] is taken as a YOLOv8/YOLO11 pose output: 1 class (person) and 17 keypoints (x, y, visibility); \
                     a 52-class detector has the same shape: set `keypoints` to 0 in the profile if so",
                    b.map_or("?".into(), |n| n.to_string())
                ));
                let d = Yolo { classes: Some(1), keypoints: 17, keypoint_dims: 3, ..Yolo::new(name) };
                return Some(Classified {
                    alternatives: vec![(
                        "a YOLOv8/YOLO11 detector with 52 classes and no keypoints".into(),
                        Decoder::Yolov8(Yolo::new(name)),
                    )],
                    kind: Kind::Yolo,
                    decoder: Decoder::Yolov8(d),
                    classes: Some(1),
                    grid_h: None,
                });
            }
            (Some(a), b) if a > 4 && b.is_none_or(|n| n > a) => {
                assumed.append(notes);
                assumed.push(format!(
                    "`{name}` [1, {a}, {}] is a YOLOv8/YOLO11 output: {} classes, no objectness",
                    b.map_or("?".into(), |n| n.to_string()),
                    a - 4
                ));
                ignore_others(others, name, assumed);
                let d = Yolo::new(name);
                return Some(Classified {
                    alternatives: Vec::new(),
                    kind: Kind::Yolo,
                    decoder: Decoder::Yolov8(d),
                    classes: Some(a - 4),
                    grid_h: None,
                });
            }
            (Some(a), Some(b))
                if b > 32
                    && a > b
                    && meta.raw_head_outputs.iter().any(|o| o == name)
                    && (dfl_points(&[8, 16, 32, 64], in_w, in_h) == Some(a)
                        || (dfl_points(&[8, 16, 32], in_w, in_h) == Some(a)
                            && (b - 32 == 80 || meta.names.as_ref().is_some_and(|n| n.len() + 32 == b)))) =>
            {
                assumed.append(notes);
                let four = dfl_points(&[8, 16, 32, 64], in_w, in_h) == Some(a);
                let strides = if four { vec![8, 16, 32, 64] } else { vec![8, 16, 32] };
                assumed.push(format!(
                    "`{name}` [1, {a}, {b}] is a raw NanoDet-Plus / GFL head (one row per point of the stride {strides:?} grids): \
                     {} class scores, then 4 × 8 distance bins (reg_max 7)",
                    b - 32
                ));
                let d = Dfl { output: name.to_string(), strides, reg_max: 7, cell_center: 0.0, multi_label: true };
                let mut alternatives = Vec::new();
                if !four {
                    alternatives.push((
                        "a raw YOLOX head (grid offsets, log sizes, objectness, class scores)".to_string(),
                        Decoder::Yolov5(Yolo { grid_strides: vec![8, 16, 32], ..Yolo::new(name) }),
                    ));
                }
                return Some(Classified {
                    alternatives,
                    kind: Kind::NanoDet,
                    decoder: Decoder::Dfl(d),
                    classes: Some(b - 32),
                    grid_h: None,
                });
            }
            (a, Some(b)) if b > 5 && a.is_none_or(|n| n > b) => {
                assumed.append(notes);
                // Raw head outputs with one row per grid cell: YOLOX exported without its decode.
                let strides = [vec![8, 16, 32], vec![8, 16, 32, 64]]
                    .into_iter()
                    .find(|st| a.is_some() && a == grid_count(st, in_w, in_h))
                    .filter(|_| meta.raw_head_outputs.iter().any(|o| o == name));
                if let Some(grid_strides) = strides {
                    assumed.push(format!(
                        "`{name}` [1, {}, {b}] is a raw YOLOX head (outputs of the convolutions moved around only, one row per cell of \
                         the stride {grid_strides:?} grids): boxes are grid offsets and log sizes, then objectness and {} class scores",
                        a.unwrap_or(0),
                        b - 5
                    ));
                    let d = Yolo { grid_strides, ..Yolo::new(name) };
                    return Some(Classified {
                        alternatives: Vec::new(),
                        kind: Kind::Yolox,
                        decoder: Decoder::Yolov5(d),
                        classes: Some(b - 5),
                        grid_h: None,
                    });
                }
                assumed.push(format!(
                    "`{name}` [1, {}, {b}] is a YOLOv5-style output: objectness and {} classes (if this is a transposed YOLOv8 output, it has no objectness and the scores will be wrong)",
                    a.map_or("?".into(), |n| n.to_string()),
                    b - 5
                ));
                ignore_others(others, name, assumed);
                let d = Yolo::new(name);
                return Some(Classified {
                    alternatives: Vec::new(),
                    kind: Kind::Yolo,
                    decoder: Decoder::Yolov5(d),
                    classes: Some(b - 5),
                    grid_h: None,
                });
            }
            _ => {}
        }
    }

    None
}

/// PaddleDetection's NMS output (`multiclass_nms3`): `[N, 6]` rows of class, score, x1, y1, x2,
/// y2 in input pixels (with `scale_factor` fed 1), for all images of the batch, and a count per
/// image; `shapes` are the outputs' own (no batch axis to drop). Recognised by the name, or a
/// `[N, 6]` output of a model that takes PaddleDetection's `im_shape` / `scale_factor` (`paddle`).
pub(super) fn class_first_rows(
    shapes: &[(&str, &Dims)],
    paddle: bool,
    assumed: &mut Vec<String>,
) -> Option<Classified> {
    let (name, n) = shapes.iter().find_map(|(n, s)| match s {
        [r, Some(6)] if paddle || looks_like(n, &["multiclass_nms"]) => Some((*n, *r)),
        _ => None,
    })?;
    let count = shapes.iter().find(|(o, s)| *o != name && s.len() == 1).map(|(o, _)| *o);
    assumed.push(format!(
        "`{name}` [{}, 6] holds PaddleDetection's NMS rows (`multiclass_nms3`: class, score, x1, y1, x2, y2 in input pixels, \
         `scale_factor` fed 1){}: the model selected its boxes itself, no NMS applied",
        n.map_or("N".to_string(), |n| n.to_string()),
        count.map_or(String::new(), |c| format!("; `{c}` counts the rows per image and is not needed for one image"))
    ));
    let d = End2End { class_first: true, ..End2End::new(name) };
    Some(Classified {
        alternatives: vec![("rows of x1, y1, x2, y2, score, class".into(), Decoder::End2end(End2End::new(name)))],
        kind: Kind::Paddle,
        decoder: Decoder::End2end(d),
        classes: None,
        grid_h: None,
    })
}

/// Says that a model's other outputs play no part, when it has any.
fn ignore_others(others: bool, name: &str, assumed: &mut Vec<String>) {
    if others {
        assumed.push(format!("outputs other than `{name}` are ignored"));
    }
}
