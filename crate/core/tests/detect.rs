//! Detection: pre-processing, decoders, NMS and profile inference against the numpy reference in
//! `tests/fixtures/make_fixtures.py` (real onnxruntime outputs of the vendored models, plus seeded
//! synthetic outputs for decoders without a vendored model), and the error paths.

use proptest::prelude::*;
use qplay_core::detect::decode::{blazeface, ssd};
use qplay_core::detect::nms::{iou, nms, Candidate};
use qplay_core::detect::*;
use qplay_core::model::npy::{read_npy, write_npy};
use qplay_core::model::{Data, Tensor, ValueInfo};
use serde_json::Value;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../www/models")
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run tests/fixtures/make_fixtures.py)", path.display()))
}

fn expected(case: &str) -> Value {
    serde_json::from_slice(&read(fixtures().join(case).join("expected.json"))).unwrap()
}

fn shipped(model: &str) -> Profile {
    Profile::from_json(&String::from_utf8(read(models().join(format!("{model}.json")))).unwrap()).unwrap()
}

/// The decoded sample image as RGBA: (width, height, bytes).
fn image(stem: &str) -> (usize, usize, Vec<u8>) {
    let meta: Value = serde_json::from_slice(&read(fixtures().join("images.json"))).unwrap();
    let m = &meta[stem];
    let (w, h) = (m["width"].as_u64().unwrap() as usize, m["height"].as_u64().unwrap() as usize);
    let bytes = read(fixtures().join(m["file"].as_str().unwrap()));
    assert_eq!(bytes.len(), w * h * 4, "{stem}.rgba size");
    (w, h, bytes)
}

fn outputs(case: &str, e: &Value) -> Vec<(String, Tensor)> {
    e["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let t = read_npy(&read(fixtures().join(case).join(o["file"].as_str().unwrap()))).unwrap();
            (o["name"].as_str().unwrap().to_string(), t)
        })
        .collect()
}

/// Our decoders + NMS reproduce the numpy detections: same count and order, boxes within
/// 0.5 px, scores within 1e-4, same classes, labels and keypoints.
fn check_decode(case: &str) -> Vec<Vec<Detection>> {
    let e = expected(case);
    let profile: Profile = serde_json::from_value(e["profile"].clone()).unwrap();
    profile.validate().unwrap();
    let transform: Transform = serde_json::from_value(e["transform"].clone()).unwrap();
    let outs = outputs(case, &e);
    let mut all = Vec::new();
    for check in e["checks"].as_array().unwrap() {
        let p = Profile {
            score_threshold: check["score_threshold"].as_f64().unwrap() as f32,
            iou_threshold: check["iou_threshold"].as_f64().unwrap() as f32,
            max_detections: check["max_detections"].as_u64().unwrap() as usize,
            ..profile.clone()
        };
        let got = detect(&p, &outs, &transform).unwrap();
        let want: Vec<Detection> = serde_json::from_value(check["detections"].clone()).unwrap();
        let ctx = format!("{case} at score threshold {}", p.score_threshold);
        assert_eq!(got.len(), want.len(), "{ctx}: detection count\n got {got:?}\nwant {want:?}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!((g.class, &g.label), (w.class, &w.label), "{ctx}: detection {i} class");
            assert!((g.score - w.score).abs() < 1e-4, "{ctx}: detection {i} score {} vs {}", g.score, w.score);
            for k in 0..4 {
                assert!((g.bbox[k] - w.bbox[k]).abs() < 0.5, "{ctx}: detection {i} box {:?} vs {:?}", g.bbox, w.bbox);
            }
            assert_eq!(g.keypoints.len(), w.keypoints.len(), "{ctx}: detection {i} keypoints");
            for (a, b) in g.keypoints.iter().zip(&w.keypoints) {
                assert!((a[0] - b[0]).abs() < 0.5 && (a[1] - b[1]).abs() < 0.5, "{ctx}: keypoint {a:?} vs {b:?}");
            }
        }
        all.push(got);
    }
    all
}

/// Our pre-processing of the RGBA dump matches the numpy `input.npy` within 1e-5, and the
/// transform matches the script's.
fn check_preprocess(case: &str) {
    let e = expected(case);
    let profile: Profile = serde_json::from_value(e["profile"].clone()).unwrap();
    let (w, h, rgba) = image(e["image"].as_str().unwrap());
    let (x, t) = preprocess(&profile, w, h, &rgba).unwrap();
    let want = read_npy(&read(fixtures().join(case).join("input.npy"))).unwrap();
    assert_eq!(x.shape, want.shape, "{case}: input shape");
    let (a, b) = (x.as_f32().unwrap(), want.as_f32().unwrap());
    let (i, d) =
        a.iter()
            .zip(b)
            .map(|(p, q)| (p - q).abs())
            .enumerate()
            .fold((0, 0f32), |m, (i, d)| if d > m.1 { (i, d) } else { m });
    assert!(d <= 1e-5, "{case}: input differs by {d} at element {i} ({} vs {})", a[i], b[i]);
    let want_t: Transform = serde_json::from_value(e["transform"].clone()).unwrap();
    assert_eq!((t.image_w, t.image_h, t.pad_x, t.pad_y), (want_t.image_w, want_t.image_h, want_t.pad_x, want_t.pad_y));
    assert!((t.scale_x - want_t.scale_x).abs() < 1e-6 && (t.scale_y - want_t.scale_y).abs() < 1e-6, "{case}: {t:?}");
}

// --- Real model outputs (onnxruntime) -----------------------------------------------------------

#[test]
fn ssd_person_jpg_has_a_confident_person() {
    let runs = check_decode("person_ssdlite_person");
    let top = &runs[0][0];
    assert_eq!(top.label, "person");
    assert!((top.score - 0.99).abs() < 0.01, "score {}", top.score);
    // The standing person is in the middle of the 640×424 photo, most of its height.
    let [x1, y1, x2, y2] = top.bbox;
    assert!(x1 > 150.0 && x2 < 300.0 && y1 < 150.0 && y2 > 350.0, "{:?}", top.bbox);
}

#[test]
fn ssd_decode_matches_numpy_horses() {
    let runs = check_decode("person_ssdlite_horses");
    assert!(runs.iter().all(|r| r.is_empty()), "no people among the horses: {runs:?}");
}

#[test]
fn ssd_decode_matches_numpy_astronaut() {
    let runs = check_decode("person_ssdlite_astronaut");
    assert_eq!(runs[0].len(), 1);
    assert!(runs[1].len() > 1, "the low threshold keeps more boxes through NMS");
}

#[test]
fn blazeface_decode_matches_numpy_astronaut() {
    let runs = check_decode("blazeface_short_astronaut");
    let face = &runs[0][0];
    assert_eq!((face.label.as_str(), face.keypoints.len()), ("face", 6));
    // Keypoints (eyes, nose, mouth, ears) lie around the face box.
    for k in &face.keypoints {
        assert!(k[0] > face.bbox[0] - 20.0 && k[0] < face.bbox[2] + 20.0, "{k:?} vs {:?}", face.bbox);
        assert!(k[1] > face.bbox[1] - 20.0 && k[1] < face.bbox[3] + 20.0, "{k:?} vs {:?}", face.bbox);
    }
}

#[test]
fn blazeface_decode_matches_numpy_person() {
    let runs = check_decode("blazeface_short_person");
    assert!(runs[1].len() > 1);
}

#[test]
fn preprocess_matches_numpy_stretch() {
    for case in ["person_ssdlite_person", "person_ssdlite_horses", "person_ssdlite_astronaut"] {
        check_preprocess(case);
    }
    for case in ["blazeface_short_astronaut", "blazeface_short_person"] {
        check_preprocess(case);
    }
}

#[test]
fn preprocess_matches_numpy_letterbox_bgr_nhwc() {
    check_preprocess("preprocess_letterbox");
}

// --- Synthetic outputs for decoders without a vendored model --------------------------------------

#[test]
fn yolov5_decode_matches_numpy() {
    assert!(!check_decode("synth_yolov5")[0].is_empty());
}

#[test]
fn yolov8_decode_matches_numpy() {
    let runs = check_decode("synth_yolov8");
    assert!(runs[0].iter().any(|d| d.label == "class 2"), "no labels → `class N`");
}

/// Ultralytics' TFLite exports give YOLO boxes as fractions of the input: the same outputs with
/// box values divided by the input size decode to the same detections (told apart by the box
/// centres' range); `normalized: false` in the profile forces pixels (boxes ~1/640 the size).
#[test]
fn yolo_boxes_as_fractions_of_the_input_decode_like_pixels() {
    for case in ["synth_yolov8", "synth_yolov5"] {
        let e = expected(case);
        let profile: Profile = serde_json::from_value(e["profile"].clone()).unwrap();
        let transform: Transform = serde_json::from_value(e["transform"].clone()).unwrap();
        let outs = outputs(case, &e);
        let [w, h] = profile.size;
        let normalized: Vec<(String, Tensor)> = outs
            .iter()
            .map(|(name, t)| {
                let mut t = t.clone();
                let (a, b) = (t.shape[1], t.shape[2]);
                let Data::F32(v) = &mut t.data else { panic!("{name}: float output") };
                let dim = |c: usize| [w as f32, h as f32][c % 2];
                if case.ends_with("v8") {
                    // [1, 4 + C, N]: the first four channels.
                    (0..4).for_each(|c| v[c * b..(c + 1) * b].iter_mut().for_each(|x| *x /= dim(c)));
                } else {
                    // [1, N, 5 + C]: the first four values of each row.
                    (0..a).for_each(|i| (0..4).for_each(|c| v[i * b + c] /= dim(c)));
                }
                (name.clone(), t)
            })
            .collect();
        let want = detect(&profile, &outs, &transform).unwrap();
        let got = detect(&profile, &normalized, &transform).unwrap();
        assert!(!want.is_empty(), "{case}");
        assert_eq!(got.len(), want.len(), "{case}");
        for (g, d) in got.iter().zip(&want) {
            assert_eq!(g.class, d.class);
            assert!(
                g.bbox.iter().zip(&d.bbox).all(|(a, b)| (a - b).abs() < 0.01),
                "{case}: {:?} vs {:?}",
                g.bbox,
                d.bbox
            );
        }
        let mut forced = profile.clone();
        match &mut forced.decoder {
            Decoder::Yolov8(d) | Decoder::Yolov5(d) => d.normalized = Some(false),
            other => panic!("{other:?}"),
        }
        let tiny = detect(&forced, &normalized, &transform).unwrap();
        assert!(tiny.iter().all(|d| d.bbox[2] - d.bbox[0] < 5.0), "{case}: pixels forced");
    }
}

#[test]
fn centernet_decode_matches_numpy() {
    assert!(!check_decode("synth_centernet")[0].is_empty());
}

#[test]
fn ssd_softmax_decode_matches_numpy() {
    assert!(!check_decode("synth_ssd_softmax")[0].is_empty());
}

// --- Profiles -------------------------------------------------------------------------------------

#[test]
fn shipped_profiles_match_their_models() {
    let p = shipped("person_ssdlite");
    let Decoder::SsdAnchors(d) = &p.decoder else { panic!("{p:?}") };
    let a = ssd::anchors(d);
    assert_eq!(a.len(), 1917);
    // Layer 0, cell (0, 0): the 0.1 square anchor first, centred at half a cell.
    assert!((a[0].cx - 0.5 / 19.0).abs() < 1e-6 && (a[0].h - 0.1).abs() < 1e-6 && (a[0].w - 0.1).abs() < 1e-6);
    // The last anchor: 1×1 grid, interpolated scale √(0.95·1).
    let last = a[1916];
    assert!((last.cx - 0.5).abs() < 1e-6 && (last.h - 0.95f32.sqrt()).abs() < 1e-6);

    let b = shipped("blazeface_short");
    let Decoder::Blazeface(d) = &b.decoder else { panic!("{b:?}") };
    let a = blazeface::anchors(d, 128, 128);
    assert_eq!(a.len(), 896);
    assert_eq!(a[0], [0.5 / 16.0, 0.5 / 16.0]);
    assert_eq!(a[1], a[0], "two anchors per 16×16 cell");
    assert_eq!(a[512], [0.5 / 8.0, 0.5 / 8.0], "then six per 8×8 cell");
    assert_eq!(a[517], a[512]);
    assert_ne!(a[518], a[512]);
}

#[test]
fn profile_json_round_trips_and_rejects_typos() {
    for m in ["person_ssdlite", "blazeface_short"] {
        let p = shipped(m);
        assert_eq!(Profile::from_json(&p.to_json()).unwrap(), p);
    }
    let json = String::from_utf8(read(models().join("person_ssdlite.json"))).unwrap();
    let typo = json.replace("\"score_threshold\"", "\"score_treshold\"");
    let e = Profile::from_json(&typo).unwrap_err().to_string();
    assert!(e.contains("score_treshold"), "{e}");
    let bad = json.replace("\"std\": [0.5, 0.5, 0.5]", "\"std\": [0.5, 0, 0.5]");
    let e = Profile::from_json(&bad).unwrap_err().to_string();
    assert!(e.contains("std[1]"), "{e}");
    let bad = json.replace("\"num_layers\": 6", "\"num_layers\": 5");
    assert!(Profile::from_json(&bad).unwrap_err().to_string().contains("feature_maps"));
}

// --- Pre-processing -------------------------------------------------------------------------------

fn tiny_profile(w: usize, h: usize, layout: Layout, color: ColorOrder, resize: Resize) -> Profile {
    Profile {
        input: "x".into(),
        size: [w, h],
        layout,
        color,
        mean: [0.0; 3],
        std: [1.0 / 255.0; 3],
        resize,
        decoder: Decoder::Yolov8(Yolo::new("y")),
        score_threshold: 0.25,
        iou_threshold: 0.45,
        max_detections: 100,
        labels: vec![],
        aux_inputs: Default::default(),
    }
}

#[test]
fn same_size_stretch_copies_pixels_in_each_layout_and_order() {
    // 3×2 image; std 1/255 keeps raw pixel values.
    let rgba: Vec<u8> = (0..6).flat_map(|i| [i * 10, i * 10 + 1, i * 10 + 2, 255]).collect();
    let (x, t) = preprocess(&tiny_profile(3, 2, Layout::Nchw, ColorOrder::Rgb, Resize::Stretch), 3, 2, &rgba).unwrap();
    assert_eq!(x.shape, [1, 3, 2, 3]);
    let v = x.as_f32().unwrap();
    assert!(
        (v[0] - 0.0).abs() < 1e-4
            && (v[5] - 50.0).abs() < 1e-4
            && (v[6] - 1.0).abs() < 1e-4
            && (v[17] - 52.0).abs() < 1e-3
    );
    assert_eq!((t.scale_x, t.scale_y, t.pad_x, t.pad_y), (1.0, 1.0, 0.0, 0.0));

    let (x, _) = preprocess(&tiny_profile(3, 2, Layout::Nhwc, ColorOrder::Bgr, Resize::Stretch), 3, 2, &rgba).unwrap();
    assert_eq!(x.shape, [1, 2, 3, 3]);
    let v = x.as_f32().unwrap();
    // Pixel 1 = (10, 11, 12) in BGR order.
    assert!((v[3] - 12.0).abs() < 1e-4 && (v[4] - 11.0).abs() < 1e-4 && (v[5] - 10.0).abs() < 1e-4, "{v:?}");
}

#[test]
fn letterbox_pads_and_round_trips() {
    // A 200×100 white image into 64×64: content 64×32, 16 rows of padding above and below.
    let rgba = vec![255u8; 200 * 100 * 4];
    let p = tiny_profile(64, 64, Layout::Nchw, ColorOrder::Rgb, Resize::Letterbox { pad: 114.0, top_left: false });
    let (x, t) = preprocess(&p, 200, 100, &rgba).unwrap();
    assert_eq!((t.pad_x, t.pad_y, t.scale_x, t.scale_y), (0.0, 16.0, 0.32, 0.32));
    let v = x.as_f32().unwrap();
    assert!((v[0] - 114.0).abs() < 1e-3, "padding row");
    assert!((v[16 * 64] - 255.0).abs() < 1e-3, "first content row");
    assert!((v[48 * 64 - 1] - 255.0).abs() < 1e-3, "last content row");
    assert!((v[48 * 64] - 114.0).abs() < 1e-3, "padding below");
    // Input ↔ image round trip, and the content rectangle maps to the whole image.
    for (ix, iy) in [(0.0, 0.0), (17.5, 123.25), (200.0, 100.0)] {
        let [a, b] = t.to_input(ix, iy);
        let [x2, y2] = t.to_image(a, b);
        assert!((x2 - ix).abs() < 1e-3 && (y2 - iy).abs() < 1e-3);
    }
    assert_eq!(t.box_to_image([0.0, 16.0, 64.0, 48.0]), [0.0, 0.0, 200.0, 100.0]);
    // Boxes reaching into the padding are clipped to the image.
    assert_eq!(t.box_to_image([-5.0, 0.0, 70.0, 64.0]), [0.0, 0.0, 200.0, 100.0]);
    assert_eq!(Transform::new(&p, 200, 100).unwrap(), t);
}

proptest! {
    #[test]
    fn letterbox_transform_inverts(w in 1usize..3000, h in 1usize..3000, iw in 1usize..1024, ih in 1usize..1024,
                                   fx in 0f32..1.0, fy in 0f32..1.0) {
        let p = tiny_profile(iw, ih, Layout::Nchw, ColorOrder::Rgb, Resize::Letterbox { pad: 0.0, top_left: false });
        let t = Transform::new(&p, w, h).unwrap();
        // Content fits the input and is centred.
        let (cw, ch) = (t.scale_x * w as f32, t.scale_y * h as f32);
        prop_assert!(cw <= iw as f32 + 1e-2 && ch <= ih as f32 + 1e-2);
        prop_assert!((t.pad_x * 2.0 + cw - iw as f32).abs() <= 1.01 && (t.pad_y * 2.0 + ch - ih as f32).abs() <= 1.01);
        let (x, y) = (fx * w as f32, fy * h as f32);
        let [a, b] = t.to_input(x, y);
        let [x2, y2] = t.to_image(a, b);
        prop_assert!((x2 - x).abs() <= 1e-3 * w as f32 && (y2 - y).abs() <= 1e-3 * h as f32);
    }
}

#[test]
fn preprocess_rejects_bad_images() {
    let p = shipped("person_ssdlite");
    assert_eq!(preprocess(&p, 0, 10, &[]).unwrap_err(), DetectError::EmptyImage { width: 0, height: 10 });
    assert_eq!(preprocess(&p, 10, 0, &[]).unwrap_err(), DetectError::EmptyImage { width: 10, height: 0 });
    let e = preprocess(&p, 4, 4, &[0; 63]).unwrap_err();
    assert_eq!(e, DetectError::RgbaLength { width: 4, height: 4, len: 63 });
    assert!(e.to_string().contains("RGBA"), "{e}");
    assert!(matches!(preprocess(&p, usize::MAX, 2, &[0; 8]), Err(DetectError::RgbaLength { .. })));
    assert!(matches!(Transform::new(&p, 0, 0), Err(DetectError::EmptyImage { .. })));
    // A 1×1 image still works (every tap clamps to the one pixel).
    let (x, _) = preprocess(&p, 1, 1, &[255, 0, 127, 255]).unwrap();
    let v = x.as_f32().unwrap();
    assert!((v[0] - 1.0).abs() < 1e-6 && (v[90_000] + 1.0).abs() < 1e-6);
}

#[test]
fn preprocess_into_reuses_the_buffer() {
    let p = shipped("blazeface_short");
    let (w, h, rgba) = image("astronaut");
    let mut buf = Vec::new();
    let t1 = preprocess_into(&p, w, h, &rgba, &mut buf).unwrap();
    let ptr = buf.as_ptr();
    let t2 = preprocess_into(&p, w, h, &rgba, &mut buf).unwrap();
    assert_eq!((t1, buf.as_ptr(), buf.len()), (t2, ptr, 3 * 128 * 128));
}

// --- NMS --------------------------------------------------------------------------------------------

fn cand(class: usize, score: f32, bbox: [f32; 4]) -> Candidate {
    Candidate { class, score, bbox, keypoints: vec![], keypoint_scores: vec![] }
}

#[test]
fn nms_suppresses_overlaps_within_a_class_only() {
    let c = vec![
        cand(0, 0.8, [0.0, 0.0, 10.0, 10.0]),
        cand(0, 0.9, [1.0, 0.0, 11.0, 10.0]), // IoU 9/11 with the first
        cand(1, 0.7, [0.0, 0.0, 10.0, 10.0]), // same place, other class
        cand(0, 0.6, [20.0, 20.0, 30.0, 30.0]),
    ];
    assert_eq!(nms(&c, 0.5, 100), vec![1, 2, 3]);
    assert_eq!(nms(&c, 0.9, 100), vec![1, 0, 2, 3], "IoU 0.82 is not above 0.9");
    assert_eq!(nms(&c, 0.5, 2), vec![1, 2], "max_detections");
    assert_eq!(nms(&c, 0.5, 0), Vec::<usize>::new());
    assert_eq!(nms(&[], 0.5, 10), Vec::<usize>::new());
}

#[test]
fn nms_breaks_score_ties_by_index() {
    let b = [0.0, 0.0, 10.0, 10.0];
    let c = vec![cand(0, 0.5, [50.0, 50.0, 60.0, 60.0]), cand(0, 0.7, b), cand(0, 0.7, b), cand(0, 0.5, b)];
    assert_eq!(nms(&c, 0.5, 10), vec![1, 0]);
    let far: Vec<Candidate> =
        (0..5).map(|i| cand(0, 0.5, [i as f32 * 20.0, 0.0, i as f32 * 20.0 + 10.0, 10.0])).collect();
    assert_eq!(nms(&far, 0.5, 10), vec![0, 1, 2, 3, 4]);
}

#[test]
fn iou_handles_degenerate_boxes() {
    assert_eq!(iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 1.0, 3.0, 3.0]), 1.0 / 7.0);
    assert_eq!(iou(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]), 0.0);
    assert_eq!(iou(&[5.0, 5.0, 1.0, 1.0], &[0.0, 0.0, 10.0, 10.0]), 0.0, "inverted box is empty");
    assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 3.0, 3.0]), 0.0);
    // NaN scores never panic and sort last.
    let c = vec![cand(0, f32::NAN, [0.0, 0.0, 1.0, 1.0]), cand(0, 0.1, [0.0, 0.0, 1.0, 1.0])];
    assert_eq!(nms(&c, 0.5, 10), vec![1]);
}

proptest! {
    #[test]
    fn nms_output_is_sorted_and_non_overlapping(
        boxes in prop::collection::vec((0usize..3, 0f32..1.0, 0f32..50.0, 0f32..50.0, 1f32..30.0, 1f32..30.0), 0..60),
        thr in 0.1f32..0.9,
    ) {
        let c: Vec<Candidate> = boxes.iter().map(|&(k, s, x, y, w, h)| cand(k, s, [x, y, x + w, y + h])).collect();
        let kept = nms(&c, thr, 1000);
        for w in kept.windows(2) {
            prop_assert!(c[w[0]].score > c[w[1]].score || (c[w[0]].score == c[w[1]].score && w[0] < w[1]));
        }
        for (i, &a) in kept.iter().enumerate() {
            for &b in &kept[..i] {
                prop_assert!(c[a].class != c[b].class || iou(&c[a].bbox, &c[b].bbox) <= thr);
            }
        }
        // Every dropped candidate overlaps a kept, better one of its class.
        for (i, d) in c.iter().enumerate().filter(|(i, _)| !kept.contains(i)) {
            prop_assert!(kept.iter().any(|&k| c[k].class == d.class && iou(&c[k].bbox, &d.bbox) > thr
                && (c[k].score > d.score || (c[k].score == d.score && k < i))));
        }
    }
}

// --- Bad outputs --------------------------------------------------------------------------------------

fn ssd_outputs(n: usize, k: usize) -> Vec<(String, Tensor)> {
    vec![
        ("concat:0".into(), Tensor::f32(vec![1, n, 1, 4], vec![0.0; n * 4]).unwrap()),
        ("concat_1:0".into(), Tensor::f32(vec![1, n, k], vec![-10.0; n * k]).unwrap()),
    ]
}

#[test]
fn wrong_outputs_are_errors_that_say_what_to_fix() {
    let p = shipped("person_ssdlite");
    let t = Transform::new(&p, 640, 480).unwrap();
    assert_eq!(detect(&p, &ssd_outputs(1917, 2), &t).unwrap(), vec![]);

    let e = detect(&p, &ssd_outputs(1000, 2), &t).unwrap_err();
    assert!(
        matches!(&e, DetectError::OutputShape { name, got, .. } if name == "concat:0" && got == &[1, 1000, 1, 4]),
        "{e}"
    );
    assert!(e.to_string().contains("1917 anchors"), "{e}");

    let mut outs = ssd_outputs(1917, 2);
    outs[1].1 = Tensor::f32(vec![1, 1917], vec![0.0; 1917]).unwrap();
    assert!(matches!(detect(&p, &outs, &t), Err(DetectError::OutputShape { .. })));

    let e = detect(&p, &ssd_outputs(1917, 2)[..1], &t).unwrap_err();
    assert!(matches!(&e, DetectError::MissingOutput { name, .. } if name == "concat_1:0"), "{e}");
    assert!(e.to_string().contains("`concat:0`"), "lists the outputs there are: {e}");

    let mut outs = ssd_outputs(1917, 2);
    outs[1].1 = Tensor::i64(vec![1, 1917, 2], vec![0; 3834]).unwrap();
    assert!(matches!(detect(&p, &outs, &t), Err(DetectError::OutputDType { .. })));

    let mut outs = ssd_outputs(1917, 1);
    outs[1].1 = Tensor::f32(vec![1, 1917, 1], vec![0.0; 1917]).unwrap();
    let e = detect(&p, &outs, &t).unwrap_err();
    assert!(e.to_string().contains("background_class"), "{e}");

    // Other decoders given SSD outputs.
    let b = shipped("blazeface_short");
    let e = detect(&b, &ssd_outputs(1917, 2), &t).unwrap_err();
    assert!(matches!(e, DetectError::MissingOutput { .. }));
    let y = tiny_profile(640, 640, Layout::Nchw, ColorOrder::Rgb, Resize::Stretch);
    let outs = vec![("y".to_string(), Tensor::f32(vec![1, 3, 5], vec![0.0; 15]).unwrap())];
    let e = detect(&y, &outs, &t).unwrap_err();
    assert!(e.to_string().contains("[1, 4 + C, N]"), "{e}");
    let outs = vec![("y".to_string(), Tensor::f32(vec![8400, 84], vec![0.0; 8400 * 84]).unwrap())];
    assert!(matches!(detect(&y, &outs, &t), Err(DetectError::OutputShape { .. })));
}

#[test]
fn nan_and_infinite_outputs_are_errors() {
    let p = shipped("person_ssdlite");
    let t = Transform::new(&p, 300, 300).unwrap();
    let mut outs = ssd_outputs(1917, 2);
    let mut logits = vec![0.0f32; 1917 * 2];
    logits[101] = f32::NAN;
    outs[1].1 = Tensor::f32(vec![1, 1917, 2], logits).unwrap();
    let e = detect(&p, &outs, &t).unwrap_err();
    assert!(matches!(&e, DetectError::NonFinite { index: 101, .. }), "{e}");
    assert!(e.to_string().contains("concat_1:0"));

    let mut outs = ssd_outputs(1917, 2);
    let mut codes = vec![0.0f32; 1917 * 4];
    codes[7] = f32::INFINITY;
    outs[0].1 = Tensor::f32(vec![1, 1917, 1, 4], codes).unwrap();
    assert!(matches!(detect(&p, &outs, &t), Err(DetectError::NonFinite { index: 7, .. })));
}

#[test]
fn bad_profiles_and_transforms_are_errors() {
    let p = shipped("person_ssdlite");
    let outs = ssd_outputs(1917, 2);
    let t = Transform::new(&p, 300, 300).unwrap();
    let empty = Transform { image_w: 0, ..t };
    assert!(matches!(detect(&p, &outs, &empty), Err(DetectError::EmptyImage { .. })));
    let zero = Transform { scale_x: 0.0, ..t };
    assert!(matches!(detect(&p, &outs, &zero), Err(DetectError::Profile(_))));
    for bad in [
        Profile { size: [0, 300], ..p.clone() },
        Profile { score_threshold: f32::NAN, ..p.clone() },
        Profile { iou_threshold: 1.5, ..p.clone() },
        Profile { resize: Resize::Letterbox { pad: 300.0, top_left: false }, ..p.clone() },
        Profile { mean: [f32::INFINITY, 0.0, 0.0], ..p.clone() },
    ] {
        assert!(matches!(detect(&bad, &outs, &t), Err(DetectError::Profile(_))), "{bad:?}");
        assert!(matches!(preprocess(&bad, 2, 2, &[0; 16]), Err(DetectError::Profile(_))), "{bad:?}");
    }
    // The public decode() validates too: a negative clip would otherwise make clamp() panic.
    let mut b = shipped("blazeface_short");
    if let Decoder::Blazeface(d) = &mut b.decoder {
        d.score_clip = -1.0;
    }
    let outs = vec![
        ("regressors".to_string(), Tensor::f32(vec![1, 896, 16], vec![0.0; 896 * 16]).unwrap()),
        ("classificators".to_string(), Tensor::f32(vec![1, 896, 1], vec![0.0; 896]).unwrap()),
    ];
    assert!(matches!(qplay_core::detect::decode::decode(&b, &outs), Err(DetectError::Profile(_))));
    // A tensor whose shape and data disagree (the fields are public) is a shape error.
    let bad = vec![
        (
            "regressors".to_string(),
            Tensor { shape: vec![1, 896, 16], data: qplay_core::model::Data::F32(vec![0.0; 3]) },
        ),
        outs[1].clone(),
    ];
    let e = detect(&shipped("blazeface_short"), &bad, &t).unwrap_err();
    assert!(matches!(e, DetectError::OutputShape { .. }), "{e}");
}

// --- Auto-detection ---------------------------------------------------------------------------------

fn vi(name: &str, shape: &[Option<usize>]) -> ValueInfo {
    ValueInfo { name: name.into(), elem_type: 1, shape: shape.to_vec() }
}

fn fixed(name: &str, shape: &[usize]) -> ValueInfo {
    vi(name, &shape.iter().map(|&d| Some(d)).collect::<Vec<_>>())
}

#[test]
fn auto_yolov8() {
    let a = infer_profile(&[fixed("images", &[1, 3, 640, 640])], &[fixed("output0", &[1, 84, 8400])]).unwrap();
    let p = &a.profile;
    assert_eq!(p.decoder, Decoder::Yolov8(Yolo::new("output0")));
    assert_eq!((p.input.as_str(), p.size, p.layout), ("images", [640, 640], Layout::Nchw));
    assert_eq!(p.resize, Resize::Letterbox { pad: 114.0, top_left: false });
    assert_eq!((p.mean, p.std), ([0.0; 3], [1.0; 3]));
    assert_eq!(p.labels.len(), 80);
    assert_eq!(p.labels[0], "person");
    let text = a.assumed.join("\n");
    assert!(text.contains("YOLOv8") && text.contains("80 classes") && text.contains("0..1"), "{text}");

    // Dynamic N and image size: still YOLOv8, with the size assumption spelled out.
    let a =
        infer_profile(&[vi("images", &[None, Some(3), None, None])], &[vi("output0", &[None, Some(7), None])]).unwrap();
    assert!(matches!(a.profile.decoder, Decoder::Yolov8(_)));
    assert_eq!(a.profile.size, [640, 640]);
    assert!(a.profile.labels.is_empty());
    assert!(a.assumed.iter().any(|s| s.contains("not fixed")), "{:?}", a.assumed);
    assert!(a.assumed.iter().any(|s| s.contains("3 classes without names")), "{:?}", a.assumed);
}

#[test]
fn auto_yolov5() {
    let a = infer_profile(&[fixed("images", &[1, 3, 640, 640])], &[fixed("output", &[1, 25200, 85])]).unwrap();
    assert_eq!(a.profile.decoder, Decoder::Yolov5(Yolo::new("output")));
    assert_eq!(a.profile.labels.len(), 80);
    // Extra outputs (per-scale heads) are ignored, and that is said.
    let a = infer_profile(
        &[fixed("images", &[1, 3, 320, 320])],
        &[fixed("output", &[1, 6300, 25]), fixed("onnx::Sigmoid_1", &[1, 3, 40, 40, 25])],
    )
    .unwrap();
    assert!(matches!(a.profile.decoder, Decoder::Yolov5(_)));
    assert_eq!(a.profile.size, [320, 320]);
    assert!(a.assumed.iter().any(|s| s.contains("ignored")));
}

#[test]
fn auto_ssd_reproduces_the_shipped_profile() {
    let a = infer_profile(
        &[fixed("Preprocessor/sub:0", &[1, 3, 300, 300])],
        &[fixed("concat:0", &[1, 1917, 1, 4]), fixed("concat_1:0", &[1, 1917, 2])],
    )
    .unwrap();
    let shipped = shipped("person_ssdlite");
    let (Decoder::SsdAnchors(got), Decoder::SsdAnchors(want)) = (&a.profile.decoder, &shipped.decoder) else {
        panic!()
    };
    assert_eq!(got.feature_maps, want.feature_maps);
    assert_eq!(ssd::anchors(got).len(), 1917);
    assert_eq!((got.background_class, got.score), (Some(0), ScoreFn::Sigmoid));
    assert_eq!((a.profile.mean, a.profile.std, a.profile.resize), (shipped.mean, shipped.std, shipped.resize));
    assert!(a.assumed.iter().any(|s| s.contains("1917 anchors as the model has")), "{:?}", a.assumed);

    // NHWC input, an anchor count the standard layout does not give: a profile with a warning.
    let a = infer_profile(&[fixed("x", &[1, 320, 320, 3])], &[fixed("b", &[1, 100, 4]), fixed("s", &[1, 100, 91])])
        .unwrap();
    assert_eq!(a.profile.layout, Layout::Nhwc);
    assert!(a.assumed.iter().any(|s| s.contains("edit `feature_maps`")), "{:?}", a.assumed);
}

#[test]
fn auto_centernet() {
    let a = infer_profile(
        &[fixed("input.1", &[1, 3, 512, 512])],
        &[fixed("reg", &[1, 2, 128, 128]), fixed("hm", &[1, 80, 128, 128]), fixed("wh", &[1, 2, 128, 128])],
    )
    .unwrap();
    let Decoder::Centernet(d) = &a.profile.decoder else { panic!("{:?}", a.profile.decoder) };
    assert_eq!(
        (d.heatmap_output.as_str(), d.wh_output.as_str(), d.offset_output.as_deref().unwrap()),
        ("hm", "wh", "reg")
    );
    assert_eq!(d.stride, 4.0);
    assert!(d.heatmap_logits);
    assert_eq!(a.profile.labels.len(), 80);
}

#[test]
fn auto_blazeface() {
    let a = infer_profile(
        &[fixed("input", &[1, 3, 128, 128])],
        &[fixed("regressors", &[1, 896, 16]), fixed("classificators", &[1, 896, 1])],
    )
    .unwrap();
    assert_eq!(a.profile.decoder, shipped("blazeface_short").decoder);
    assert_eq!(a.profile.labels, ["face"]);
}

#[test]
fn auto_rejects_what_it_cannot_recognise() {
    let e = infer_profile(&[fixed("x", &[1, 3, 224, 224])], &[fixed("logits", &[1, 1000])]).unwrap_err();
    assert!(matches!(e, DetectError::Unrecognized(_)));
    let msg = e.to_string();
    assert!(msg.contains("`logits` [1, 1000]") && msg.contains("YOLOv8"), "{msg}");
    let e = infer_profile(&[fixed("x", &[1, 1, 28, 28])], &[fixed("y", &[1, 84, 8400])]).unwrap_err();
    assert!(e.to_string().contains("no input looks like an image"), "{e}");
    assert!(infer_profile(&[], &[]).is_err());
    // A batch of 2 is not unbatched.
    assert!(infer_profile(&[fixed("x", &[1, 3, 640, 640])], &[fixed("y", &[2, 84, 8400])]).is_err());
}

// --- .npy ---------------------------------------------------------------------------------------------

#[test]
fn npy_reads_numpy_files_and_writes_them_back_bit_for_bit() {
    for f in
        ["person_ssdlite_person/input.npy", "person_ssdlite_person/output_0.npy", "blazeface_short_person/output_1.npy"]
    {
        let bytes = read(fixtures().join(f));
        let t = read_npy(&bytes).unwrap();
        assert_eq!(write_npy(&t), bytes, "{f}");
    }
}

#[test]
fn npy_round_trips_every_dtype() {
    let tensors = [
        Tensor::f32(vec![2, 3], vec![1.5, -2.0, 0.0, f32::MAX, f32::MIN_POSITIVE, -0.0]).unwrap(),
        Tensor::i64(vec![3], vec![i64::MIN, 0, i64::MAX]).unwrap(),
        Tensor::i32(vec![1, 2], vec![-7, 7]).unwrap(),
        Tensor::u8(vec![2, 2], vec![0, 1, 254, 255]).unwrap(),
        Tensor::i8(vec![2], vec![-128, 127]).unwrap(),
        Tensor::bool(vec![3], vec![true, false, true]).unwrap(),
        Tensor::scalar_f32(3.25),
        Tensor::f32(vec![0, 4], vec![]).unwrap(),
    ];
    for t in tensors {
        let bytes = write_npy(&t);
        assert_eq!(bytes.len() % 64, t.byte_size() % 64, "header is 64-byte aligned");
        assert_eq!(read_npy(&bytes).unwrap(), t);
    }
}

fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

#[test]
fn npy_rejects_what_it_cannot_read() {
    let err = |b: &[u8]| read_npy(b).unwrap_err().to_string();
    assert!(err(b"PK\x03\x04").contains("not a .npy"));
    assert!(err(&npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", &[0; 16])).contains("Fortran"));
    assert!(err(&npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", &[0; 16])).contains("'<f8'"));
    assert!(err(&npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", &[0; 8])).contains("'>f4'"));
    assert!(err(&npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", &[0; 8])).contains("truncated"));
    assert!(err(&npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", &[0; 8])).contains("follow"));
    assert!(err(&npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", &[0, 2])).contains("0 or 1"));
    assert!(err(&npy("{'descr': '<f4', 'shape': (1,), }", &[0; 4])).contains("lacks"));
    assert!(err(&npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,) ", &[0; 4])).contains("malformed"));
    // A huge shape with no data is refused before allocating (and overflow is caught).
    assert!(
        err(&npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", &[])).contains("truncated")
    );
    let e = err(&npy("{'descr': '<i8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", &[]));
    assert!(e.contains("more elements") || e.contains("truncated"), "{e}");
    // Header length past the end of the file.
    let mut b = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", &[0; 4]);
    b[8] = 0xff;
    b[9] = 0xff;
    assert!(err(&b).contains("header claims"));
    assert!(err(b"\x93NUMPY\x09\x00\x00\x00").contains("version"));
    // Version 2 headers (4-byte length) read too.
    let h = "{'shape': (2,), 'fortran_order': False, 'descr': '<i4'}";
    let mut b = b"\x93NUMPY\x02\x00".to_vec();
    b.extend_from_slice(&(h.len() as u32).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(read_npy(&b).unwrap(), Tensor::i32(vec![2], vec![1, 2]).unwrap());
}
