//! Heatmap heads (CenterNet in its forms, CenterFace): a class heatmap with box, offset and
//! landmark maps on its grid, channels first or last.

use super::*;

/// Heatmap detectors: a `[C, H, W]` (or `[H, W, C]`) heatmap and, on the same grid, a box map
/// (2 channels: sizes; 4: ltrb distances), optionally a 2-channel offset map and a `2·L`-channel
/// landmark map. With landmarks and a one-class heatmap the CenterFace conventions apply
/// (log-space sizes, y-first offsets, cell centres, every cell above the threshold then NMS).
pub(super) fn heatmap(shapes: &[(&str, &Dims)], meta: &ModelMeta, assumed: &mut Vec<String>) -> Option<Classified> {
    for channels_last in [false, true] {
        // (name, channels, grid) of every rank-3 output read in this layout.
        let maps: Vec<(&str, usize, (usize, usize))> = shapes
            .iter()
            .filter_map(|&(n, s)| match (s, channels_last) {
                ([Some(k), Some(h), Some(w)], false) | ([Some(h), Some(w), Some(k)], true) => Some((n, *k, (*h, *w))),
                _ => None,
            })
            .collect();
        // Heatmap candidates: named like one first, then any map that is not a 2/4-channel one.
        let mut order: Vec<&(&str, usize, (usize, usize))> = maps.iter().collect();
        order.sort_by_key(|(n, k, _)| (!looks_like(n, &["hm", "heat", "score", "cls", "class"]), *k == 2 || *k == 4));
        for &&(hname, c, grid) in &order {
            let others: Vec<(&str, usize)> =
                maps.iter().filter(|(n, _, g)| *n != hname && *g == grid).map(|(n, k, _)| (*n, *k)).collect();
            let twos: Vec<&str> = others.iter().filter(|(_, k)| *k == 2).map(|(n, _)| *n).collect();
            let ltrb = others.iter().find(|(_, k)| *k == 4).map(|(n, _)| *n);
            let marks = others.iter().find(|(_, k)| *k >= 6 && k % 2 == 0).copied();
            let named = |n: &str, hints: &[&str]| looks_like(n, hints);
            let (wh, off, encoding) = match (ltrb, twos.as_slice()) {
                (Some(b), [o]) => (b, Some(*o), BoxEncoding::Ltrb),
                (Some(b), []) => (b, None, BoxEncoding::Ltrb),
                (None, [a, b]) => {
                    let (a, b) = if named(a, &["reg", "off"]) || named(b, &["wh", "size", "scale"]) {
                        (*b, *a)
                    } else {
                        (*a, *b)
                    };
                    (a, Some(b), BoxEncoding::Wh)
                }
                _ => continue,
            };
            if c == 2 && !named(hname, &["hm", "heat"]) && encoding == BoxEncoding::Wh {
                continue;
            }
            let face = marks.is_some() && c == 1 && encoding == BoxEncoding::Wh;
            let layout = |k: &str| {
                if channels_last {
                    format!("[1, {}, {}, {k}]", grid.0, grid.1)
                } else {
                    format!("[1, {k}, {}, {}]", grid.0, grid.1)
                }
            };
            let probs = meta.sigmoid_outputs.iter().any(|n| n == hname);
            let mut d = CenterNet {
                heatmap_output: hname.to_string(),
                wh_output: wh.to_string(),
                offset_output: off.map(str::to_string),
                stride: 4.0, // replaced by input_h / grid_h once the input size is settled
                heatmap_logits: !probs,
                channels_last,
                box_encoding: encoding,
                offset_order: AxisOrder::Xy,
                cell_center: 0.0,
                peaks_only: true,
                landmarks_output: None,
                landmarks: 0,
                landmark_encoding: LandmarkEncoding::BoxYx,
            };
            let kind = if face {
                let (m, k) = marks.unwrap_or_default();
                d.box_encoding = BoxEncoding::LogHw;
                d.offset_order = AxisOrder::Yx;
                d.cell_center = 0.5;
                d.peaks_only = false;
                d.landmarks_output = Some(m.to_string());
                d.landmarks = k / 2;
                assumed.push(format!(
                    "`{hname}` {} is a one-class heatmap with {} landmarks in `{m}` {}: read as CenterFace — `{wh}` log-space sizes \
                     (height, width), `{}` offsets (y, x) from cell centres, landmarks relative to the box; every cell above the \
                     threshold is a candidate and NMS selects",
                    layout("1"),
                    k / 2,
                    layout(&k.to_string()),
                    off.unwrap_or("-"),
                ));
                Kind::CenterFace
            } else {
                assumed.push(match (encoding, off) {
                    (BoxEncoding::Ltrb, o) => format!(
                        "`{hname}` {} is a CenterNet heatmap and `{wh}` {} distances to the left, top, right and bottom edges in grid cells{}",
                        layout(&c.to_string()),
                        layout("4"),
                        o.map_or(", with no offset output".to_string(), |o| format!(", `{o}` centre offsets (x, y)"))
                    ),
                    _ => format!(
                        "`{hname}` {} is a CenterNet heatmap, `{wh}` box sizes (width, height) and `{}` centre offsets (x, y) in grid cells",
                        layout(&c.to_string()),
                        off.unwrap_or("-")
                    ),
                });
                if twos.len() == 2 && !(twos.iter().any(|n| named(n, &["reg", "off", "wh", "size", "scale"]))) {
                    assumed.push(format!(
                        "`{wh}` is taken as box sizes and `{}` as centre offsets (by output order)",
                        off.unwrap_or("-")
                    ));
                }
                if channels_last {
                    Kind::CenterNetTf
                } else {
                    Kind::CenterNet
                }
            };
            assumed.push(if probs {
                format!("`{hname}` comes out of a Sigmoid in the graph: its values are scores already")
            } else {
                format!("`{hname}` holds logits (no Sigmoid at the end of the graph): a sigmoid is applied")
            });
            let mut alternatives = Vec::new();
            if encoding == BoxEncoding::Ltrb {
                let pixels = CenterNet { box_encoding: BoxEncoding::LtrbPixels, ..d.clone() };
                alternatives.push((
                    format!(
                        "`{wh}` distances in input pixels rather than grid cells (TensorFlow's CenterNet MobileNetV3)"
                    ),
                    Decoder::Centernet(pixels),
                ));
            }
            if kind == Kind::CenterNet
                && twos.len() == 2
                && !(twos.iter().any(|n| named(n, &["reg", "off", "wh", "size", "scale"])))
            {
                let swapped = CenterNet {
                    wh_output: off.unwrap_or_default().to_string(),
                    offset_output: Some(wh.to_string()),
                    ..d.clone()
                };
                alternatives.push((
                    format!("`{}` as box sizes and `{wh}` as centre offsets", off.unwrap_or_default()),
                    Decoder::Centernet(swapped),
                ));
            }
            return Some(Classified {
                alternatives,
                kind,
                decoder: Decoder::Centernet(d),
                classes: Some(c),
                grid_h: Some(grid.0),
            });
        }
    }
    None
}
