//! DETR-style set predictions in two tensors: boxes `[1, Q, 4]` (centre and size as fractions
//! of the input, through a sigmoid) and class values `[1, Q, C]` for the same Q queries —
//! Hugging Face exports of DETR, YOLOS, Conditional and Deformable DETR, RT-DETR and D-FINE
//! (`pred_boxes`, `logits`), and custom transformer detectors.

use super::*;

/// Boxes and class values of the same queries, when the boxes come out of a sigmoid (an SSD's
/// box codes never do) or are named `pred_boxes`. Raw class values are read as DETR's softmax
/// with a last "no object" class when there are 92 of them (COCO's 91 ids and "no object"),
/// otherwise as independent sigmoids (Deformable DETR, RT-DETR, D-FINE), the other reading
/// offered as an alternative; values out of a sigmoid or a softmax are scores already.
pub(super) fn detr(shapes: &[(&str, &Dims)], meta: &ModelMeta, assumed: &mut Vec<String>) -> Option<Classified> {
    let is = |list: &[String], n: &str| list.iter().any(|o| o == n);
    let (bname, q) = shapes.iter().find_map(|&(name, s)| match s {
        [q, Some(4)] if is(&meta.sigmoid_outputs, name) || looks_like(name, &["pred_boxes"]) => Some((name, *q)),
        _ => None,
    })?;
    let (sname, c) = shapes.iter().find_map(|&(name, s)| match s {
        [n, Some(c)] if name != bname && *n == q && *c >= 1 => Some((name, *c)),
        _ => None,
    })?;
    let sigmoids = || "class logits, a sigmoid per class (Deformable DETR, RT-DETR, D-FINE)".to_string();
    let softmax =
        || format!("class logits, a softmax over {c} classes of which the last is DETR's \"no object\" (DETR, YOLOS)");
    let raw = !is(&meta.sigmoid_outputs, sname) && !is(&meta.softmax_outputs, sname);
    let (score_fn, no_object_last, how) = if is(&meta.sigmoid_outputs, sname) {
        (None, false, "class probabilities (out of a sigmoid)".to_string())
    } else if is(&meta.softmax_outputs, sname) {
        let tail = if c == 92 { ", the last class DETR's \"no object\"" } else { "" };
        (None, c == 92, format!("class probabilities (out of a softmax{tail})"))
    } else if c == 92 {
        (Some(ScoreFn::Softmax), true, softmax())
    } else {
        (Some(ScoreFn::Sigmoid), false, sigmoids())
    };
    let queries = q.map_or("Q".to_string(), |q| q.to_string());
    assumed.push(format!(
        "`{bname}` [1, {queries}, 4] and `{sname}` [1, {queries}, {c}] are a DETR-style set prediction: one box per query \
         (cx, cy, w, h as fractions of the input) and its {how}; the model selects its own boxes: no NMS applied"
    ));
    let d = End2End {
        box_format: BoxFormat::Cxcywh,
        normalized: true,
        scores_output: Some(sname.to_string()),
        score_fn,
        no_object_last,
        ..End2End::new(bname)
    };
    // Raw logits: the other family's reading is offered too (a DETR fine-tuned on K classes has
    // K + 1 logits and a softmax; Deformable DETR, RT-DETR and D-FINE have K and sigmoids).
    let other = |score_fn, no_object_last, reading: String| {
        vec![(reading, Decoder::End2end(End2End { score_fn: Some(score_fn), no_object_last, ..d.clone() }))]
    };
    let alternatives = match (raw, no_object_last) {
        (false, _) => Vec::new(),
        (true, true) => other(ScoreFn::Sigmoid, false, sigmoids()),
        (true, false) if c >= 2 => other(ScoreFn::Softmax, true, softmax()),
        (true, false) => Vec::new(),
    };
    Some(Classified {
        alternatives,
        kind: Kind::Detr,
        decoder: Decoder::End2end(d),
        classes: Some(c - usize::from(no_object_last)),
        grid_h: None,
    })
}
