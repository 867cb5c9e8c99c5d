//! Exports with their own post-processing, decoded with zero configuration:
//!
//! - torchvision's SSDLite (`tests/fixtures/make_torchvision_ssd_fixtures.py`: torchvision's own
//!   model code, scaled down, random weights): one image without a batch axis, `batched_nms`
//!   exported as an `If` around `NonMaxSuppression`, outputs `boxes` `[N, 4]`, `scores` and
//!   `labels` `[N]`. Its boxes equal torchvision's own forward.
//! - a SYNTHETIC model with PaddleDetection's exported interface
//!   (`tests/fixtures/make_paddle_nms_fixtures.py`: inputs `image`, `im_shape`, `scale_factor`;
//!   output `multiclass_nms3_0.tmp_0` `[N, 6]` rows of class, score, x1, y1, x2, y2 and a count):
//!   read as `end2end` rows with `class_first`, equal to onnxruntime's.

use qplay_core::detect::*;
use qplay_core::model::load_onnx;
use qplay_core::model::npy::read_npy;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run the tests/fixtures/make_*_fixtures.py named above)", p.display()))
}

fn photo() -> (usize, usize, Vec<u8>) {
    let meta: Value = serde_json::from_slice(&read(dir().join("images.json"))).unwrap();
    let p = &meta["person"];
    let (w, h) = (p["width"].as_u64().unwrap() as usize, p["height"].as_u64().unwrap() as usize);
    (w, h, read(dir().join(p["file"].as_str().unwrap())))
}

/// Largest coordinate difference between detections and reference rows (class, score, box in
/// photo pixels), matched in order after sorting both by score; panics on a class or score
/// mismatch.
fn worst(got: &[Detection], want: &[(usize, f32, [f32; 4])], score_tol: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "detections: {got:?}");
    let mut d = 0f32;
    for (class, score, b) in want {
        let g = got
            .iter()
            .filter(|g| g.class == *class && (g.score - score).abs() <= score_tol)
            .min_by(|x, y| {
                let e = |g: &Detection| (0..4).map(|k| (g.bbox[k] - b[k]).abs()).fold(0f32, f32::max);
                e(x).total_cmp(&e(y))
            })
            .unwrap_or_else(|| panic!("no detection of class {class} scoring {score}: {got:?}"));
        d = d.max((0..4).map(|k| (g.bbox[k] - b[k]).abs()).fold(0f32, f32::max));
    }
    d
}

#[test]
fn torchvision_ssd_decodes_with_zero_configuration_like_torchvision() {
    let base = dir().join("torchvision_ssd");
    let graph = load_onnx(&read(base.join("ssdlite_tiny.onnx"))).unwrap();
    assert_eq!(graph.inputs[0].shape, [Some(3), Some(320), Some(320)], "no batch axis");
    let mut det = Detector::from_graph(graph, None).unwrap();
    let p = det.profile().clone();
    let Decoder::Detections(d) = &p.decoder else { panic!("{:?}", p.decoder) };
    assert_eq!(
        (d.boxes_output.as_str(), d.scores_output.as_str(), d.classes_output.as_deref(), d.count_output.as_deref()),
        ("boxes", "scores", Some("labels"), None)
    );
    assert_eq!((d.box_format, d.normalized, d.first_class), (BoxFormat::Xyxy, false, 0));
    assert_eq!((p.size, p.resize, p.mean, p.std), ([320, 320], Resize::Stretch, [0.0; 3], [1.0; 3]));
    assert!(det.assumed().iter().any(|a| a.contains("no batch axis")), "{:?}", det.assumed());
    assert!(det.graph().load_notes.iter().any(|n| n.contains("without a batch axis")), "{:?}", det.graph().load_notes);

    // The raw outputs on the input torchvision ran: its boxes, scores and labels.
    let e: Value = serde_json::from_slice(&read(base.join("ssdlite_tiny/expected.json"))).unwrap();
    let rows = e["detections"].as_array().unwrap();
    let x = read_npy(&read(base.join("ssdlite_tiny/input.npy"))).unwrap();
    let out = det.infer(x).unwrap();
    let boxes = out.iter().find(|(n, _)| n == "boxes").unwrap().1.as_f32().unwrap().to_vec();
    assert_eq!(boxes.len(), rows.len() * 4);
    let mut d_box = 0f32;
    for (r, b) in rows.iter().zip(boxes.chunks(4)) {
        for k in 0..4 {
            d_box = d_box.max((r["box"][k].as_f64().unwrap() as f32 - b[k]).abs());
        }
    }
    eprintln!("torchvision SSDLite: {} boxes, max |qplay − torchvision| {d_box:.5} px", rows.len());
    assert!(d_box < 0.01, "{d_box}");

    // Decoded from the photo: the same boxes, mapped from 320 × 320 to the photo.
    let (w, h, rgba) = photo();
    let got = det.detect_rgba(w, h, &rgba).unwrap();
    let (sx, sy) = (w as f32 / 320.0, h as f32 / 320.0);
    let want: Vec<(usize, f32, [f32; 4])> = rows
        .iter()
        .filter(|r| r["score"].as_f64().unwrap() as f32 >= p.score_threshold)
        .map(|r| {
            let b: Vec<f32> = r["box"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            let clip = |v: f32, hi: f32| v.clamp(0.0, hi);
            (
                r["label"].as_u64().unwrap() as usize,
                r["score"].as_f64().unwrap() as f32,
                [
                    clip(b[0] * sx, w as f32),
                    clip(b[1] * sy, h as f32),
                    clip(b[2] * sx, w as f32),
                    clip(b[3] * sy, h as f32),
                ],
            )
        })
        .collect();
    let d = worst(&got, &want, 2e-3);
    eprintln!("from the photo: {} detections, max |qplay − torchvision| {d:.3} photo px", got.len());
    assert!(d < 0.5, "{d}");
}

#[test]
fn paddle_nms_rows_decode_with_zero_configuration() {
    let base = dir().join("paddle_nms");
    let graph = load_onnx(&read(base.join("paddle_nms_synthetic.onnx"))).unwrap();
    let auto = infer_profile_for(&graph).unwrap();
    let p = auto.profile.clone();
    let Decoder::End2end(d) = &p.decoder else { panic!("{:?}", p.decoder) };
    assert_eq!((d.output.as_str(), d.class_first, d.per_class_scores), ("multiclass_nms3_0.tmp_0", true, false));
    assert_eq!(p.aux_inputs.get("im_shape"), Some(&AuxInput::Kind(AuxKind::InputHw)));
    assert_eq!(p.aux_inputs.get("scale_factor"), Some(&AuxInput::Kind(AuxKind::UnitScale)));
    assert_eq!((p.mean, p.std, p.resize), ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], Resize::Stretch));
    assert_eq!(p.labels.len(), 80);
    assert!(auto.alternatives.iter().any(|a| matches!(&a.profile.decoder, Decoder::End2end(e) if !e.class_first)));
    assert!(auto.assumed.iter().any(|a| a.contains("multiclass_nms3")), "{:?}", auto.assumed);
    assert_eq!(Profile::from_json(&p.to_json()).unwrap(), p);

    let e: Value = serde_json::from_slice(&read(base.join("paddle_nms_synthetic/expected.json"))).unwrap();
    let rows: Vec<Vec<f32>> = e["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect())
        .collect();
    let p = Profile { score_threshold: 0.3, ..p };
    let mut det = Detector::from_graph(graph, Some(p.clone())).unwrap();
    let x = read_npy(&read(base.join("paddle_nms_synthetic/input.npy"))).unwrap();
    let out = det.infer(x).unwrap();
    let (w, h, _) = photo();
    let t = Transform::new(&p, w, h).unwrap();
    let got = det.decode(&out, &t).unwrap();
    let (sx, sy) = (w as f32 / 320.0, h as f32 / 320.0);
    let want: Vec<(usize, f32, [f32; 4])> = rows
        .iter()
        .map(|r| {
            let clip = |v: f32, hi: f32| v.clamp(0.0, hi);
            (
                r[0] as usize,
                r[1],
                [
                    clip(r[2] * sx, w as f32),
                    clip(r[3] * sy, h as f32),
                    clip(r[4] * sx, w as f32),
                    clip(r[5] * sy, h as f32),
                ],
            )
        })
        .collect();
    let d = worst(&got, &want, 1e-4);
    eprintln!("PaddleDetection-style rows: {} detections, max |qplay − onnxruntime| {d:.4} photo px", got.len());
    assert!(d < 0.01, "{d}");
}
