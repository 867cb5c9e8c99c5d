//! What a model file says about itself: the `metadata_props` that exporters write.
//!
//! Ultralytics (YOLOv5u/v8/v9/v10/11/12 and their `-pose`/`-seg`/`-obb`/`-cls` variants) writes
//! Python literals: `names` = `{0: 'person', 1: 'bicycle'}`, `imgsz` = `[640, 640]`, `stride` =
//! `32`, `task` = `detect` | `pose` | `segment` | `obb` | `classify`, `kpt_shape` = `[17, 3]`,
//! and, for end-to-end exports, `end2end` / `nms` = `True`. Other exporters write `labels`,
//! `names` or `classes` as a JSON list, a JSON object, or one name per line / comma.
//!
//! Everything here is read leniently: a value that does not parse is ignored (and said so in
//! [`ModelMeta::notes`]), never an error — metadata is a hint, the shapes still decide.

use std::collections::BTreeMap;

/// The detection-relevant facts found in a model's metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelMeta {
    /// Class names, index = class id (gaps filled with `class N`).
    pub names: Option<Vec<String>>,
    /// Which metadata key the names came from.
    pub names_key: Option<String>,
    /// Input size `[height, width]` the model was exported at.
    pub imgsz: Option<[usize; 2]>,
    /// Largest stride of the detection head.
    pub stride: Option<usize>,
    /// Ultralytics task: `detect`, `pose`, `segment`, `obb`, `classify`.
    pub task: Option<String>,
    /// Keypoints per object and values per keypoint (2: x, y; 3: x, y, visibility).
    pub kpt_shape: Option<[usize; 2]>,
    /// The export ends in its own selection of boxes (NMS or a one-to-one head): no NMS needed.
    pub end2end: bool,
    /// A DETR-style set predictor (RT-DETR): its metadata says so (Ultralytics `head` =
    /// `RTDETRDecoder`, or an `rtdetr` description) or its graph samples features with
    /// GridSample (deformable attention). Its rows are `cx, cy, w, h` in fractions of the input.
    pub detr: bool,
    /// The file was written by Ultralytics (its `author` or `description` says so, or it has
    /// the keys only Ultralytics writes).
    pub ultralytics: bool,
    /// Values that did not parse, in plain words.
    pub notes: Vec<String>,
    /// Graph outputs that come out of a Sigmoid (read from the graph, not the metadata).
    pub sigmoid_outputs: Vec<String>,
    /// Graph outputs that come out of a Softmax (read from the graph, not the metadata).
    pub softmax_outputs: Vec<String>,
    /// Graph outputs made of convolution outputs moved around only (Reshape, Transpose, Concat,
    /// Sigmoid, …: no arithmetic after the head), so their boxes are not decoded yet.
    pub raw_head_outputs: Vec<String>,
    /// The graph ends in TFLite's `TFLite_Detection_PostProcess` op (read from the graph): its
    /// outputs and class count.
    pub detection_postprocess: Option<PostProcessOutputs>,
    /// A TFLite file whose image input is uint8 codes (read from the graph: the conversion the
    /// loader puts behind it): `(input, scale, zero point)`. Apps feed such a model the raw
    /// pixels, so the codes' float values are the pre-processing it was converted with.
    pub uint8_input: Option<(String, f32, i32)>,
}

/// The outputs of a `TFLite_Detection_PostProcess` op that are the graph's outputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PostProcessOutputs {
    /// Boxes `[1, M, 4]`: ymin, xmin, ymax, xmax as fractions of the input.
    pub boxes: String,
    /// Class ids `[1, M]`, 0-based (background excluded).
    pub classes: String,
    /// Scores `[1, M]`.
    pub scores: String,
    /// The number of valid rows `[1]`.
    pub count: String,
    /// The op's `num_classes`.
    pub num_classes: usize,
}

impl ModelMeta {
    /// Reads the metadata key/value pairs of a model file.
    pub fn parse(props: &[(String, String)]) -> ModelMeta {
        let mut m = ModelMeta::default();
        let get = |k: &str| props.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v.trim());
        m.ultralytics = get("author").is_some_and(|a| a.to_ascii_lowercase().contains("ultralytics"))
            || get("description").is_some_and(|d| d.to_ascii_lowercase().contains("ultralytics"))
            || (get("names").is_some() && get("stride").is_some() && get("task").is_some());
        for key in ["names", "labels", "classes", "class_names"] {
            if let Some(v) = get(key) {
                match parse_names(v) {
                    Some(n) if !n.is_empty() => {
                        m.names = Some(n);
                        m.names_key = Some(key.to_string());
                        break;
                    }
                    _ => m.notes.push(format!("metadata `{key}` is not a list of class names; ignored")),
                }
            }
        }
        if let Some(v) = get("imgsz") {
            match parse_ints(v).as_deref() {
                Some([s]) if *s > 0 => m.imgsz = Some([*s as usize; 2]),
                Some([h, w]) if *h > 0 && *w > 0 => m.imgsz = Some([*h as usize, *w as usize]),
                _ => m.notes.push(format!("metadata `imgsz` = `{v}` is not a size; ignored")),
            }
        }
        if let Some(v) = get("stride") {
            match parse_ints(v).as_deref() {
                Some([s]) if *s > 0 => m.stride = Some(*s as usize),
                Some(v) if !v.is_empty() && v.iter().all(|s| *s > 0) => {
                    m.stride = v.iter().max().map(|s| *s as usize);
                }
                _ => m.notes.push(format!("metadata `stride` = `{v}` is not a number; ignored")),
            }
        }
        if let Some(v) = get("task") {
            m.task = Some(v.trim_matches(|c| c == '\'' || c == '"').to_ascii_lowercase());
        }
        if let Some(v) = get("kpt_shape") {
            match parse_ints(v).as_deref() {
                Some([k, d]) if (1..=1000).contains(k) && (*d == 2 || *d == 3) => {
                    m.kpt_shape = Some([*k as usize, *d as usize]);
                }
                _ => m.notes.push(format!("metadata `kpt_shape` = `{v}` is not [keypoints, 2 or 3]; ignored")),
            }
        }
        m.detr = get("head").is_some_and(|h| h.to_ascii_lowercase().contains("detr"))
            || get("description").is_some_and(|d| {
                let d = d.to_ascii_lowercase();
                d.contains("rtdetr") || d.contains("rt-detr")
            });
        m.end2end = ["end2end", "nms"].iter().any(|k| get(k).is_some_and(|v| v.eq_ignore_ascii_case("true")));
        m
    }
}

/// Integers in `[640, 640]`, `(17, 3)`, `640` or `32.0`; `None` if anything else is there.
fn parse_ints(v: &str) -> Option<Vec<i64>> {
    let inner = v.trim().trim_start_matches(['[', '(']).trim_end_matches([']', ')']);
    if inner.trim().is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| s.parse::<f64>().ok().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        })
        .collect()
}

/// Class names from a Python dict literal `{0: 'a', 1: "b"}`, a JSON object `{"0": "a"}`, a list
/// `['a', 'b']` / `["a", "b"]`, or plain text (one name per line, or comma-separated).
pub fn parse_names(v: &str) -> Option<Vec<String>> {
    let v = v.trim();
    if v.starts_with('{') || v.starts_with('[') {
        return parse_literal(v);
    }
    let parts: Vec<String> = if v.contains('\n') { v.lines().collect::<Vec<_>>() } else { v.split(',').collect() }
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty() && parts.len() <= 100_000).then_some(parts)
}

/// A small tokenizer for `{int-or-string: string, …}` and `[string, …]` in Python or JSON syntax.
fn parse_literal(v: &str) -> Option<Vec<String>> {
    let mut t = Tokens { s: v.as_bytes(), i: 0 };
    let dict = match t.next_char()? {
        b'{' => true,
        b'[' => false,
        _ => return None,
    };
    let close = if dict { b'}' } else { b']' };
    let mut by_id: BTreeMap<usize, String> = BTreeMap::new();
    let mut k = 0usize;
    loop {
        if t.peek()? == close {
            break;
        }
        let id = if dict {
            let key = t.scalar()?;
            let id = key.trim().parse::<usize>().ok()?;
            if t.next_char()? != b':' {
                return None;
            }
            id
        } else {
            k
        };
        let name = t.string()?;
        if id > 100_000 {
            return None;
        }
        by_id.insert(id, name);
        k += 1;
        match t.next_char()? {
            b',' => continue,
            c if c == close => break,
            _ => return None,
        }
    }
    let len = by_id.keys().next_back().map_or(0, |m| m + 1);
    Some((0..len).map(|i| by_id.remove(&i).unwrap_or_else(|| format!("class {i}"))).collect())
}

struct Tokens<'a> {
    s: &'a [u8],
    i: usize,
}

impl Tokens<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }
    fn next_char(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }
    /// A quoted string, or a bare number (a dict key).
    fn scalar(&mut self) -> Option<String> {
        match self.peek()? {
            b'\'' | b'"' => self.string(),
            _ => {
                let start = self.i;
                while self.i < self.s.len() && !matches!(self.s[self.i], b':' | b',' | b'}' | b']') {
                    self.i += 1;
                }
                std::str::from_utf8(&self.s[start..self.i]).ok().map(|s| s.trim().to_string())
            }
        }
    }
    /// A single- or double-quoted string with backslash escapes.
    fn string(&mut self) -> Option<String> {
        let q = self.next_char()?;
        if q != b'\'' && q != b'"' {
            return None;
        }
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            match c {
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                }
                c if c == q => return String::from_utf8(out).ok(),
                c => out.push(c),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn ultralytics_pose() {
        let m = ModelMeta::parse(&props(&[
            ("author", "Ultralytics"),
            ("task", "pose"),
            ("stride", "32"),
            ("imgsz", "[320, 256]"),
            ("names", "{0: 'person', 1: \"men's shoe\", 3: 'a, b'}"),
            ("kpt_shape", "[17, 3]"),
        ]));
        assert!(m.ultralytics);
        assert_eq!(m.task.as_deref(), Some("pose"));
        assert_eq!(m.imgsz, Some([320, 256]));
        assert_eq!(m.stride, Some(32));
        assert_eq!(m.kpt_shape, Some([17, 3]));
        assert_eq!(m.names.unwrap(), ["person", "men's shoe", "class 2", "a, b"]);
        assert!(!m.end2end);
    }

    #[test]
    fn other_forms() {
        assert_eq!(parse_names("[\"cat\", \"dog\"]").unwrap(), ["cat", "dog"]);
        assert_eq!(parse_names("{\"0\": \"cat\", \"1\": \"dog\"}").unwrap(), ["cat", "dog"]);
        assert_eq!(parse_names("cat, dog").unwrap(), ["cat", "dog"]);
        assert_eq!(parse_names("cat\ndog\n").unwrap(), ["cat", "dog"]);
        let m = ModelMeta::parse(&props(&[("labels", "[1, 2"), ("imgsz", "640"), ("end2end", "True")]));
        assert_eq!(m.names, None);
        assert_eq!(m.imgsz, Some([640, 640]));
        assert!(m.end2end);
        assert_eq!(m.notes.len(), 1);
    }

    #[test]
    fn garbage_is_ignored_not_fatal() {
        for bad in ["{", "{0: 'a'", "{0 'a'}", "{x: 'a'}", "['a' 'b']", "{99999999999: 'a'}", r#"["\"]"#] {
            assert_eq!(parse_literal(bad), None, "{bad}");
        }
        let m = ModelMeta::parse(&props(&[("kpt_shape", "[17]"), ("stride", "x"), ("imgsz", "[0, 3]")]));
        assert_eq!((m.kpt_shape, m.stride, m.imgsz), (None, None, None));
        assert_eq!(m.notes.len(), 3);
    }
}
