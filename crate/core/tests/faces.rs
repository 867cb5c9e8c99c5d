//! Real SCRFD and YuNet exports (`tests/fixtures/make_scrfd_fixtures.py`: InsightFace's SCRFD
//! model code and `scrfd2onnx.py`; `tests/fixtures/make_yunet_fixtures.py`: libfacedetection.train's
//! YuNet code and `yunet2onnx.py`; random weights): per-stride face heads with 5 landmarks are
//! recognised with zero configuration, qplay's outputs match onnxruntime's, and the faces and
//! landmarks before and after NMS equal the families' own post-processing (InsightFace's
//! `SCRFD.detect`, OpenCV's `FaceDetectorYN`).

use qplay_core::detect::nms::{nms, Candidate};
use qplay_core::detect::*;
use qplay_core::model::npy::read_npy;
use qplay_core::model::{load_onnx, Plan, Tensor};
use qplay_core::ops::Registry;
use serde_json::Value;
use std::path::PathBuf;

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (run tests/fixtures/make_*_fixtures.py)", p.display()))
}

fn same(got: &[Candidate], want: &[Value], what: &str) {
    assert!(!want.is_empty(), "{what}");
    assert_eq!(got.len(), want.len(), "{what}: count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g.score - w["score"].as_f64().unwrap() as f32).abs() < 1e-4, "{what} {i}: score");
        for k in 0..4 {
            let wk = w["box"][k].as_f64().unwrap() as f32;
            assert!((g.bbox[k] - wk).abs() < 2e-3, "{what} {i}: box {:?} vs {}", g.bbox, w["box"]);
        }
        assert_eq!(g.keypoints.len(), 5, "{what} {i}: landmarks");
        for (k, p) in g.keypoints.iter().enumerate() {
            for a in 0..2 {
                let wk = w["landmarks"][k][a].as_f64().unwrap() as f32;
                assert!((p[a] - wk).abs() < 2e-3, "{what} {i}: landmark {k} {p:?} vs {}", w["landmarks"][k]);
            }
        }
    }
}

/// Loads a fixture, checks the inferred profile, runs it against onnxruntime's outputs, and
/// returns the profile with onnxruntime's outputs (decoded below, so scores at the threshold
/// fall the same way).
fn run(family: &str, input: &str, files: &dyn Fn(&str, usize) -> String) -> (Profile, Vec<(String, Tensor)>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/fixtures/{family}"));
    let graph = load_onnx(&read(dir.join(format!("{family}.onnx")))).unwrap();
    let auto = infer_profile_for(&graph).unwrap();
    let x = read_npy(&read(dir.join(family).join("input.npy"))).unwrap();
    let plan = Plan::new(&graph, &Registry::new(), &[(input.into(), x.shape.clone())]).unwrap();
    let got = plan.run(&[(input.into(), x)]).unwrap();
    let mut ort = Vec::new();
    for (i, (name, g)) in plan.output_names().into_iter().zip(got).enumerate() {
        let want = read_npy(&read(dir.join(family).join(files(name, i)))).unwrap();
        let (g, w) = (g.as_f32().unwrap(), want.as_f32().unwrap());
        let worst = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-4 * w.iter().fold(1f32, |m, v| m.max(v.abs())), "{family} {name}: {worst}");
        ort.push((name.to_string(), want));
    }
    assert_eq!(auto.profile.labels, vec!["face".to_string()]);
    (auto.profile, ort)
}

#[test]
fn scrfd_decodes_like_insightface() {
    let (p, out) = run("scrfd", "input.1", &|name, i| format!("output_{i}_{name}.npy"));
    let Decoder::Grid(d) = &p.decoder else { panic!("{:?}", p.decoder) };
    assert_eq!((d.anchors, d.box_encoding, d.landmarks, d.objectness_outputs.len()), (2, GridBox::Ltrb, 5, 0));
    assert_eq!(d.score_outputs, ["score_8", "score_16", "score_32"]);
    assert_eq!(
        (p.resize, p.mean, p.color),
        (Resize::Letterbox { pad: 0.0, top_left: true }, [0.5; 3], ColorOrder::Rgb)
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/scrfd/scrfd");
    let e: Value = serde_json::from_slice(&read(dir.join("expected.json"))).unwrap();
    let p = Profile { score_threshold: e["det_thresh"].as_f64().unwrap() as f32, ..p };
    let cands = decode::decode(&p, &out).unwrap();
    same(&cands, e["candidates"].as_array().unwrap(), "scrfd candidate");
    let kept: Vec<_> =
        nms(&cands, e["nms_thresh"].as_f64().unwrap() as f32, 100).into_iter().map(|i| cands[i].clone()).collect();
    same(&kept, e["final"].as_array().unwrap(), "scrfd after NMS");
}

#[test]
fn yunet_decodes_like_opencv() {
    let (p, out) = run("yunet", "input", &|name, _| format!("output_{name}.npy"));
    let Decoder::Grid(d) = &p.decoder else { panic!("{:?}", p.decoder) };
    assert_eq!((d.anchors, d.box_encoding, d.landmarks), (1, GridBox::OffsetLogSize, 5));
    assert_eq!((d.score_outputs[0].as_str(), d.objectness_outputs[0].as_str()), ("cls_8", "obj_8"));
    assert_eq!((p.resize, p.color, p.score_threshold), (Resize::Stretch, ColorOrder::Bgr, 0.9));
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/yunet/yunet");
    let e: Value = serde_json::from_slice(&read(dir.join("expected.json"))).unwrap();
    let cands = decode::decode(&p, &out).unwrap();
    same(&cands, e["candidates"].as_array().unwrap(), "yunet candidate");
    let kept: Vec<_> =
        nms(&cands, e["nms_threshold"].as_f64().unwrap() as f32, 100).into_iter().map(|i| cands[i].clone()).collect();
    same(&kept, e["final"].as_array().unwrap(), "yunet after NMS");
}

#[test]
fn a_stride_list_that_does_not_fit_says_which_fields() {
    let (p, out) = run("yunet", "input", &|name, _| format!("output_{name}.npy"));
    let Decoder::Grid(d) = p.decoder.clone() else { unreachable!() };
    let bad = Profile { decoder: Decoder::Grid(Grid { anchors: 2, ..d.clone() }), ..p.clone() };
    let e = decode::decode(&bad, &out).unwrap_err().to_string();
    assert!(e.contains("check `strides`, `anchors`") && e.contains("[1, 3200, K]"), "{e}");
    let bad = Profile { decoder: Decoder::Grid(Grid { box_outputs: vec!["bbox_8".into()], ..d }), ..p };
    assert!(bad.validate().unwrap_err().to_string().contains("3 strides need 3"));
}
