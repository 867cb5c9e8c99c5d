//! Heads whose outputs are split by kind or by stride: TensorFlow's boxes/scores/classes/count,
//! per-stride face heads (SCRFD, YuNet) and per-stride GFL/DFL heads (NanoDet, PP-PicoDet).

use super::*;

/// Detections as separate tensors (TensorFlow Object Detection API and similar exports): boxes
/// `[1, M, 4]`, one or two `[1, M]` outputs (scores; class ids) and optionally a count `[1]`.
/// Names decide which is which (`score`, `class`/`label`, `num`/`count`); an integer output is
/// the classes; otherwise TensorFlow's signature order (boxes, classes, scores, count), with the
/// other order offered as an alternative.
///
/// Boxes are TensorFlow's y1, x1, y2, x2 fractions of the input, unless the model is a PyTorch
/// export — it takes an image-size input (`geometry`: D-FINE's and RT-DETR's `orig_target_sizes`,
/// by which their post-processor scales x1, y1, x2, y2 to pixels), or its class ids are integers
/// and no count comes with them (torchvision's `boxes`, `labels`, `scores`) — whose boxes are
/// x1, y1, x2, y2 in input pixels; the other convention is offered as an alternative.
pub(super) fn tf_detections(
    outputs: &[ValueInfo],
    shapes: &[(&str, &Dims)],
    geometry: bool,
    assumed: &mut Vec<String>,
) -> Option<Classified> {
    // `m` unknown (None) when the model selects a varying number of rows (torchvision).
    let (bname, m) = shapes.iter().find_map(|(n, s)| match s {
        [m, Some(4)] if *m != Some(4) => Some((*n, *m)),
        _ => None,
    })?;
    let rows: Vec<&str> =
        shapes.iter().filter(|(n, s)| *n != bname && matches!(s, [k] if *k == m)).map(|(n, _)| *n).collect();
    if rows.is_empty() || rows.len() > 2 {
        return None;
    }
    // The count: a one-value output ([1] or a scalar), not one of the rows.
    let count = outputs
        .iter()
        .filter(|o| o.name != bname && !rows.contains(&o.name.as_str()))
        .filter(|o| matches!(o.shape.as_slice(), [] | [Some(1)] | [Some(1), Some(1)]))
        .min_by_key(|o| !looks_like(&o.name, &["num", "count", "valid"]))
        .map(|o| o.name.clone());
    let is_int = |n: &str| outputs.iter().any(|o| o.name == n && matches!(o.elem_type, 6 | 7));
    let (scores, classes, by_order) = match rows.as_slice() {
        [s] => (*s, None, false),
        [a, b] => {
            let class_like = |n: &str| looks_like(n, &["class", "label"]) || is_int(n);
            let score_like = |n: &str| looks_like(n, &["score", "conf", "prob"]);
            if class_like(a) && !class_like(b) || score_like(b) && !score_like(a) {
                (*b, Some(*a), false)
            } else if class_like(b) && !class_like(a) || score_like(a) && !score_like(b) {
                (*a, Some(*b), false)
            } else {
                // TensorFlow signatures list outputs alphabetically: boxes, classes, scores, num.
                (*b, Some(*a), true)
            }
        }
        _ => return None,
    };
    let tf_od = classes.is_some_and(|c| looks_like(c, &["detection_classes"]));
    let torch = !tf_od && (geometry || (count.is_none() && classes.is_some_and(is_int)));
    let d = Detections {
        boxes_output: bname.to_string(),
        scores_output: scores.to_string(),
        classes_output: classes.map(str::to_string),
        count_output: count.clone(),
        box_format: if torch { BoxFormat::Xyxy } else { BoxFormat::Yxyx },
        normalized: !torch,
        first_class: usize::from(tf_od),
        keypoints_output: None,
    };
    let m = m.map_or("N".to_string(), |m| m.to_string());
    assumed.push(format!(
        "`{bname}` [{m}, 4] boxes ({}), `{scores}` scores{}{}: detections the model selected itself, no NMS applied",
        if torch {
            if geometry {
                "x1, y1, x2, y2 in input pixels: the model's post-processor scales them by its image-size input"
            } else {
                "x1, y1, x2, y2 in input pixels, PyTorch's convention: integer class ids and no count"
            }
        } else {
            "y1, x1, y2, x2 as fractions of the input, TensorFlow's convention"
        },
        classes.map_or(String::new(), |c| format!(
            ", `{c}` class ids{}",
            if tf_od { " (1-based label map ids)" } else { "" }
        )),
        count.as_ref().map_or(String::new(), |c| format!(", `{c}` the number of valid rows"))
    ));
    let mut alternatives = Vec::new();
    if let (true, Some(c)) = (by_order, classes) {
        assumed.push(format!(
            "`{c}` is taken as the class ids and `{scores}` as the scores (by TensorFlow's output order)"
        ));
        let swapped =
            Detections { scores_output: c.to_string(), classes_output: Some(scores.to_string()), ..d.clone() };
        alternatives
            .push((format!("`{c}` as the scores and `{scores}` as the class ids"), Decoder::Detections(swapped)));
    }
    alternatives.push(if torch {
        (
            "boxes as y1, x1, y2, x2 fractions of the input (TensorFlow)".to_string(),
            Decoder::Detections(Detections { box_format: BoxFormat::Yxyx, normalized: true, ..d.clone() }),
        )
    } else {
        (
            "boxes as x1, y1, x2, y2 in input pixels".to_string(),
            Decoder::Detections(Detections { box_format: BoxFormat::Xyxy, normalized: false, ..d.clone() }),
        )
    });
    Some(Classified {
        alternatives,
        kind: if torch { Kind::TorchDetections } else { Kind::TfDetections },
        decoder: Decoder::Detections(d),
        classes: None,
        grid_h: None,
    })
}

/// The graph ends in TFLite's `TFLite_Detection_PostProcess` op (TF Object Detection API and
/// MediaPipe SSD `.tflite` exports): its outputs are boxes (y1, x1, y2, x2 fractions of the
/// input), 0-based class ids, scores and the count, by the op's definition — no guessing from
/// names or order, and no other reading. The input is TF SSD's (−1..1, stretched: [`Kind::Ssd`]).
pub(super) fn tflite_postprocess(meta: &ModelMeta, assumed: &mut Vec<String>) -> Option<Classified> {
    let p = meta.detection_postprocess.as_ref()?;
    assumed.push(format!(
        "the model ends in TFLite's TFLite_Detection_PostProcess op (SSD box decoding and NMS, {} classes): `{}` boxes \
         (y1, x1, y2, x2 as fractions of the input), `{}` class ids (0-based, background excluded), `{}` scores, `{}` \
         the number of valid rows; no NMS applied after it",
        p.num_classes, p.boxes, p.classes, p.scores, p.count
    ));
    Some(Classified {
        kind: Kind::Ssd,
        decoder: Decoder::Detections(Detections {
            boxes_output: p.boxes.clone(),
            scores_output: p.scores.clone(),
            classes_output: Some(p.classes.clone()),
            count_output: Some(p.count.clone()),
            box_format: BoxFormat::Yxyx,
            normalized: true,
            first_class: 0,
            keypoints_output: None,
        }),
        alternatives: Vec::new(),
        classes: Some(p.num_classes),
        grid_h: None,
    })
}

/// Per-stride heads with separate outputs (SCRFD, YuNet): `[1, N_s, K]` outputs whose row counts
/// are the cells (times 1 or 2 anchors) of the stride 8/16/32 grids, per stride a 4-value box
/// output, one or two 1-value score outputs (class; objectness, named `obj` or second) and
/// optionally a landmark output (`2·L` values). With objectness the YuNet box encoding (offsets and
/// log sizes) is assumed, without it SCRFD's (ltrb distances); the other is offered.
pub(super) fn per_stride_head(
    shapes: &[(&str, &Dims)],
    in_w: Option<usize>,
    in_h: Option<usize>,
    assumed: &mut Vec<String>,
) -> Option<Classified> {
    let (w, h) = (in_w?, in_h?);
    let strides = [8usize, 16, 32];
    for anchors in [1usize, 2] {
        let rows = |s: usize| w.div_ceil(s) * h.div_ceil(s) * anchors;
        // Outputs per stride, in graph order: (name, values per row).
        let per: Vec<Vec<(&str, usize)>> = strides
            .iter()
            .map(|&s| {
                shapes
                    .iter()
                    .filter_map(|(n, d)| match d {
                        [Some(r), Some(k)] if *r == rows(s) => Some((*n, *k)),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        let pick = |v: &[(&str, usize)], k: usize| {
            v.iter().filter(|(_, kk)| *kk == k).map(|(n, _)| n.to_string()).collect::<Vec<_>>()
        };
        let mut d = Grid {
            strides: strides.to_vec(),
            score_outputs: Vec::new(),
            objectness_outputs: Vec::new(),
            box_outputs: Vec::new(),
            landmark_outputs: Vec::new(),
            landmarks: 0,
            anchors,
            box_encoding: GridBox::Ltrb,
            reg_max: 0,
            cell_center: 0.0,
        };
        let mut ok = true;
        for v in &per {
            let (boxes, ones) = (pick(v, 4), pick(v, 1));
            let marks: Vec<(&str, usize)> = v.iter().filter(|(_, k)| *k >= 6 && k % 2 == 0).copied().collect();
            if boxes.len() != 1
                || ones.is_empty()
                || ones.len() > 2
                || marks.len() > 1
                || v.len() != 1 + ones.len() + marks.len()
            {
                ok = false;
                break;
            }
            d.box_outputs.push(boxes[0].clone());
            let (cls, obj) = match ones.as_slice() {
                [a, b] if looks_like(a, &["obj"]) && !looks_like(b, &["obj"]) => (b.clone(), Some(a.clone())),
                [a, b] => (a.clone(), Some(b.clone())),
                [a] => (a.clone(), None),
                _ => unreachable!(),
            };
            d.score_outputs.push(cls);
            d.objectness_outputs.extend(obj);
            if let Some((m, k)) = marks.first() {
                d.landmark_outputs.push(m.to_string());
                d.landmarks = k / 2;
            }
        }
        let uniform = [d.objectness_outputs.len(), d.landmark_outputs.len()].iter().all(|&c| c == 0 || c == 3);
        if !ok || !uniform {
            continue;
        }
        let yunet = !d.objectness_outputs.is_empty();
        if yunet {
            d.box_encoding = GridBox::OffsetLogSize;
        }
        let marks = if d.landmarks > 0 {
            format!(", {} landmarks each (`{}`, …)", d.landmarks, d.landmark_outputs[0])
        } else {
            String::new()
        };
        assumed.push(if yunet {
            format!(
                "outputs per stride 8/16/32 (`{}`, `{}`, `{}`, …) are a YuNet-style face head: class and objectness scores (score √(class·objectness)), \
                 boxes as cell offsets and log sizes{marks}",
                d.score_outputs[0], d.objectness_outputs[0], d.box_outputs[0]
            )
        } else {
            format!(
                "outputs per stride 8/16/32 (`{}`, `{}`, …), {anchors} anchor(s) per cell, are an SCRFD-style face head: scores, \
                 boxes as distances to the four edges in strides{marks}",
                d.score_outputs[0], d.box_outputs[0]
            )
        });
        let other = Grid { box_encoding: if yunet { GridBox::Ltrb } else { GridBox::OffsetLogSize }, ..d.clone() };
        let reading = if yunet {
            "boxes as distances to the four edges (SCRFD)"
        } else {
            "boxes as cell offsets and log sizes (YuNet)"
        };
        return Some(Classified {
            alternatives: vec![(reading.to_string(), Decoder::Grid(other))],
            kind: if yunet { Kind::YuNet } else { Kind::Scrfd },
            decoder: Decoder::Grid(d),
            classes: Some(1),
            grid_h: None,
        });
    }
    None
}

/// Per-stride GFL/DFL heads (NanoDet, PP-PicoDet exported without post-processing): per stride
/// of 8/16/32 (/64) one class-score output `[1, N_s, C]` and one bins output
/// `[1, N_s, 4·(reg_max + 1)]`, `N_s` the stride's cells. The scores are the output that comes
/// out of a Sigmoid (else the one that is not a common bin count: 32, 44, 68).
pub(super) fn per_stride_dfl(
    shapes: &[(&str, &Dims)],
    meta: &ModelMeta,
    in_w: Option<usize>,
    in_h: Option<usize>,
    assumed: &mut Vec<String>,
) -> Option<Classified> {
    let (w, h) = (in_w?, in_h?);
    for strides in [vec![8usize, 16, 32, 64], vec![8, 16, 32]] {
        let mut d = Grid {
            strides: strides.clone(),
            score_outputs: Vec::new(),
            objectness_outputs: Vec::new(),
            box_outputs: Vec::new(),
            landmark_outputs: Vec::new(),
            landmarks: 0,
            anchors: 1,
            box_encoding: GridBox::Dfl,
            reg_max: 0,
            cell_center: 0.5,
        };
        let mut classes = 0;
        for &s in &strides {
            let rows = w.div_ceil(s) * h.div_ceil(s);
            let v: Vec<(&str, usize)> = shapes
                .iter()
                .filter_map(|(n, dd)| match dd {
                    [Some(r), Some(k)] if *r == rows => Some((*n, *k)),
                    _ => None,
                })
                .collect();
            let [a, b] = v[..] else { break };
            let sig = |n: &str| meta.sigmoid_outputs.iter().any(|o| o == n);
            let bins_like = |k: usize| [32, 44, 68].contains(&k);
            let (scores, bins) = if sig(a.0) != sig(b.0) {
                if sig(a.0) {
                    (a, b)
                } else {
                    (b, a)
                }
            } else if bins_like(b.1) && !bins_like(a.1) {
                (a, b)
            } else if bins_like(a.1) && !bins_like(b.1) {
                (b, a)
            } else {
                break;
            };
            if bins.1 % 4 != 0 || bins.1 < 8 || (d.reg_max != 0 && d.reg_max != bins.1 / 4 - 1) {
                break;
            }
            d.reg_max = bins.1 / 4 - 1;
            classes = scores.1;
            d.score_outputs.push(scores.0.to_string());
            d.box_outputs.push(bins.0.to_string());
        }
        if d.score_outputs.len() != strides.len() {
            continue;
        }
        assumed.push(format!(
            "outputs per stride {strides:?} (`{}` scores, `{}` bins, …) are a NanoDet / PicoDet GFL head: {classes} class scores, \
             box edges as distributions over {} bins (reg_max {}) from cell centres",
            d.score_outputs[0],
            d.box_outputs[0],
            d.reg_max + 1,
            d.reg_max
        ));
        let corner = Grid { cell_center: 0.0, ..d.clone() };
        return Some(Classified {
            alternatives: vec![("distances from the cells' corners (NanoDet-Plus)".to_string(), Decoder::Grid(corner))],
            kind: Kind::NanoDet,
            decoder: Decoder::Grid(d),
            classes: Some(classes),
            grid_h: None,
        });
    }
    None
}

/// One image, no batch axis (torchvision's detection exports): boxes `[N, 4]`, scores and
/// labels `[N]`, N known at run time only; beside them Mask R-CNN's masks `[N, 1, H, W]` (named,
/// not drawn), or Keypoint R-CNN's keypoints `[N, K, 3]` (read with the boxes) and their scores.
pub(super) fn torchvision(
    outputs: &[ValueInfo],
    paddle: bool,
    geometry: bool,
    assumed: &mut Vec<String>,
) -> Option<Classified> {
    // One image, no batch axis (torchvision's detection exports): boxes [N, 4], scores and
    // labels [N], N known at run time only; beside them Mask R-CNN's masks [N, 1, H, W], or
    // Keypoint R-CNN's keypoints [N, K, 3] with their scores [N, K].
    let masks: Vec<&ValueInfo> = outputs.iter().filter(|o| o.shape.len() == 4).collect();
    let keypoints: Vec<&ValueInfo> = outputs.iter().filter(|o| o.shape.len() == 3).collect();
    let keypoint_scores: Vec<&ValueInfo> = match keypoints.as_slice() {
        [_] => outputs.iter().filter(|o| o.shape.len() == 2 && o.shape[1] != Some(4)).collect(),
        _ => Vec::new(),
    };
    let beside = |o: &ValueInfo| o.shape.len() >= 3 || keypoint_scores.iter().any(|k| k.name == o.name);
    let whole: Vec<(&str, &Dims)> =
        outputs.iter().filter(|o| !beside(o)).map(|o| (o.name.as_str(), o.shape.as_slice())).collect();
    if masks.len() + keypoints.len() <= 1
        && keypoint_scores.len() <= 1
        && whole.iter().all(|(_, s)| s.len() <= 2)
        && whole.iter().any(|(_, s)| s.len() == 1)
    {
        let plain = masks.is_empty() && keypoints.is_empty();
        if let Some(c) = rows::class_first_rows(&whole, paddle, assumed).filter(|_| plain) {
            return Some(c);
        }
        if let Some(mut c) = tf_detections(outputs, &whole, geometry, assumed) {
            assumed.push("the outputs have no batch axis: one image's detections (torchvision's exports)".into());
            if let Some(m) = masks.first() {
                assumed.push(format!(
                    "`{}` {}: one instance mask per detection (Mask R-CNN): not drawn, qplay shows the boxes",
                    m.name,
                    fmt_shape(&m.shape)
                ));
            }
            if let (Some(k), Decoder::Detections(d)) = (keypoints.first(), &mut c.decoder) {
                d.keypoints_output = Some(k.name.clone());
                let scores = keypoint_scores
                    .first()
                    .map(|s| format!("; `{}`, the heatmap scores beside them, is not used", s.name))
                    .unwrap_or_default();
                assumed.push(format!(
                    "`{}` {}: keypoints (x, y, visibility) per detection (Keypoint R-CNN), drawn{scores}",
                    k.name,
                    fmt_shape(&k.shape)
                ));
            }
            return Some(c);
        }
    }
    None
}
