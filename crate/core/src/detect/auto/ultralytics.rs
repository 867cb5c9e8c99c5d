//! Ultralytics exports: the task, keypoint shape, class names and head in the file's metadata
//! say what the outputs are (YOLOv8/YOLO11 and their `-pose`/`-seg`, end-to-end rows, RT-DETR).

use super::*;

/// Ultralytics exports (metadata `task` = `detect` / `pose` / `segment`): the layout follows from
/// the task, the keypoint shape and the class names, so nothing is guessed from shapes.
pub(super) fn ultralytics(shapes: &[(&str, &Dims)], meta: &ModelMeta, assumed: &mut Vec<String>) -> Option<Classified> {
    let task = meta.task.as_deref()?;
    if !matches!(task, "detect" | "pose" | "segment") {
        return None;
    }
    let (k, dims) = match (task, meta.kpt_shape) {
        ("pose", Some([k, d])) => (k, d),
        ("pose", None) => {
            assumed.push("metadata says `task: pose` but has no `kpt_shape`: 17 keypoints × 3 assumed".into());
            (17, 3)
        }
        _ => (0, 3),
    };
    let classes = meta.names.as_ref().map(|n| n.len());
    // The box output: the first rank-2 (after the batch) output.
    let &(name, s) = shapes.iter().find(|(_, s)| s.len() == 2)?;
    let mut said = vec![format!("the model's metadata says it is an Ultralytics `{task}` model")];
    if k > 0 {
        said.push(format!("{k} keypoints × {dims} (`kpt_shape`), drawn on each box"));
    }
    if task == "segment" {
        said.push(
            "segmentation masks are not drawn: boxes only (the mask coefficients and prototypes are ignored)".into(),
        );
    }
    if meta.detr && k == 0 {
        // RT-DETR: one row per query, [cx, cy, w, h] in fractions of the input, then either the
        // class scores (Ultralytics ≤ 8.3) or the best `score, class` (8.4's top-k).
        let rows = s[0].filter(|&q| q <= 1000)?;
        let width = s[1]?;
        let per_class = width != 6;
        let c = if per_class { width.checked_sub(4).filter(|&c| c > 0)? } else { classes.unwrap_or(0) };
        said.push(format!(
            "`{name}` [1, {rows}, {width}] holds RT-DETR's {rows} query predictions: box (cx, cy, w, h as fractions of the input), {}; \
             the model selects its own boxes: no NMS applied",
            if per_class { format!("{c} class scores") } else { "score, class".to_string() }
        ));
        assumed.extend(said);
        let d = End2End {
            per_class_scores: per_class,
            box_format: BoxFormat::Cxcywh,
            normalized: true,
            ..End2End::new(name)
        };
        return Some(Classified {
            alternatives: Vec::new(),
            kind: Kind::RtDetr,
            decoder: Decoder::End2end(d),
            classes: if per_class { Some(c) } else { classes },
            grid_h: None,
        });
    }
    let d_e2e = End2End { keypoints: k, keypoint_dims: dims, ..End2End::new(name) };
    let e2e_width = 6 + k * dims;
    if s[1] == Some(e2e_width) && (meta.end2end || s[0].is_some_and(|n| n <= 1000)) {
        said.push(format!("`{name}` holds boxes the model already selected (end-to-end: x1, y1, x2, y2, score, class); no NMS applied"));
        assumed.extend(said);
        return Some(Classified {
            alternatives: Vec::new(),
            kind: Kind::Yolo,
            decoder: Decoder::End2end(d_e2e),
            classes,
            grid_h: None,
        });
    }
    let ch = s[0]?;
    // Segmentation: the prototypes output [nm, H, W] says how many mask coefficients follow.
    let masks = shapes.iter().find(|(n, p)| *n != name && p.len() == 3).and_then(|(_, p)| p[0]).unwrap_or(0);
    let classes = classes.filter(|&c| 4 + c + k * dims <= ch).or_else(|| ch.checked_sub(4 + k * dims + masks));
    let c = classes.filter(|&c| c > 0)?;
    said.push(format!(
        "`{name}` [1, {ch}, N]: box (cx, cy, w, h), {c} class scores{}",
        if k > 0 { ", keypoints" } else { "" }
    ));
    assumed.extend(said);
    let d = Yolo { classes: Some(c), keypoints: k, keypoint_dims: dims, ..Yolo::new(name) };
    Some(Classified {
        alternatives: Vec::new(),
        kind: Kind::Yolo,
        decoder: Decoder::Yolov8(d),
        classes: Some(c),
        grid_h: None,
    })
}
