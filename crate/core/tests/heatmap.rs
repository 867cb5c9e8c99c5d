//! Heatmap detectors ("objects as points") exported from PyTorch by
//! `tests/fixtures/make_heatmap_fixtures.py`: a CenterFace head (opset 9, numbered outputs,
//! log-space sizes, y-first offsets, 5 landmarks) and a TensorFlow-style CenterNet (NHWC, 80
//! classes of logits, left/top/right/bottom distances, no offsets). Each decodes with zero
//! configuration, qplay's outputs match onnxruntime's, and the candidates equal the families'
//! own reference decoding (CenterFace's demo; CenterNet's `ctdet_decode` with ltrb boxes).

use qplay_core::detect::nms::Candidate;
use qplay_core::detect::*;
use qplay_core::model::npy::read_npy;
use qplay_core::model::{load_onnx, Plan, Tensor};
use qplay_core::ops::Registry;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/heatmap")
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (run tests/fixtures/make_heatmap_fixtures.py)", p.display()))
}

/// Infers the profile, runs the model on the fixture input, checks every output against
/// onnxruntime's and returns the profile, the named outputs and the reference.
fn run(name: &str) -> (AutoProfile, Vec<(String, Tensor)>, Value) {
    let graph = load_onnx(&read(dir().join(format!("{name}.onnx")))).unwrap();
    let auto = infer_profile_for(&graph).unwrap_or_else(|e| panic!("{name}: {e}"));
    let x = read_npy(&read(dir().join(name).join("input.npy"))).unwrap();
    let input = auto.profile.input.clone();
    let plan = Plan::new(&graph, &Registry::new(), &[(input.clone(), x.shape.clone())]).unwrap();
    let outs = plan.run(&[(input, x)]).unwrap();
    let mut named = Vec::new();
    for (i, (o, info)) in outs.into_iter().zip(&graph.outputs).enumerate() {
        let want = read_npy(&read(dir().join(name).join(format!("output_{i}.npy")))).unwrap();
        assert_eq!(o.shape, want.shape, "{name}: output {i} shape");
        let (g, w) = (o.as_f32().unwrap(), want.as_f32().unwrap());
        let range = w.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
        let worst = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-4 * range, "{name}: output {i}: max |qplay − onnxruntime| = {worst} (range {range})");
        named.push((info.name.clone(), o));
    }
    let expected: Value = serde_json::from_slice(&read(dir().join(name).join("expected.json"))).unwrap();
    (auto, named, expected)
}

fn f(v: &Value) -> f32 {
    v.as_f64().unwrap() as f32
}

/// Every reference candidate has one of qplay's with the same class, score within 1e-4 and box
/// within 0.05 px (after `adjust`), and the counts agree.
fn same_candidates(name: &str, got: &[Candidate], want: &[Value], adjust: impl Fn(&Candidate) -> Candidate) {
    assert!(!want.is_empty(), "{name}: the fixture should have candidates");
    assert_eq!(got.len(), want.len(), "{name}: candidate count");
    let got: Vec<Candidate> = got.iter().map(adjust).collect();
    for (i, w) in want.iter().enumerate() {
        let wb: Vec<f32> = w["box"].as_array().unwrap().iter().map(f).collect();
        let g = got
            .iter()
            .find(|g| {
                g.class as u64 == w["class"].as_u64().unwrap() && (0..4).all(|k| (g.bbox[k] - wb[k]).abs() < 0.05)
            })
            .unwrap_or_else(|| panic!("{name}: reference candidate {i} {w} has no match in qplay's"));
        assert!((g.score - f(&w["score"])).abs() < 1e-4, "{name}: candidate {i} score {} vs {}", g.score, w["score"]);
        if let Some(lms) = w.get("landmarks") {
            let lms = lms.as_array().unwrap();
            assert_eq!(g.keypoints.len(), lms.len(), "{name}: candidate {i} landmarks");
            for (k, p) in lms.iter().enumerate() {
                for d in 0..2 {
                    assert!((g.keypoints[k][d] - f(&p[d])).abs() < 0.05, "{name}: candidate {i} landmark {k}");
                }
            }
        }
    }
}

#[test]
fn centerface_decodes_with_zero_configuration() {
    let (auto, outs, e) = run("centerface");
    let p = &auto.profile;
    let Decoder::Centernet(d) = &p.decoder else { panic!("{:?}", p.decoder) };
    assert_eq!(d.box_encoding, BoxEncoding::LogHw);
    assert_eq!(d.offset_order, AxisOrder::Yx);
    assert_eq!((d.cell_center, d.peaks_only, d.landmarks, d.heatmap_logits), (0.5, false, 5, false));
    assert_eq!(d.stride, 4.0);
    assert_eq!(p.labels, ["face"]);
    assert!(auto.assumed.iter().any(|a| a.contains("CenterFace")), "{:?}", auto.assumed);
    assert!(auto.assumed.iter().any(|a| a.contains("Sigmoid")), "{:?}", auto.assumed);
    // The demo keeps values strictly above its threshold.
    let p = Profile { score_threshold: f(&e["conf"]) + 1e-7, ..p.clone() };
    let got = decode::decode(&p, &outs).unwrap();
    let [w, h] = p.size.map(|v| v as f32);
    // The demo moves a box's top-left corner into the image keeping its size (then crops the far
    // side), and places the landmarks from the moved corner: do the same to qplay's boxes.
    let demo = |c: &Candidate| {
        let (bw, bh) = (c.bbox[2] - c.bbox[0], c.bbox[3] - c.bbox[1]);
        let (x1, y1) = (c.bbox[0].clamp(0.0, w), c.bbox[1].clamp(0.0, h));
        let (dx, dy) = (x1 - c.bbox[0], y1 - c.bbox[1]);
        Candidate {
            bbox: [x1, y1, (x1 + bw).min(w), (y1 + bh).min(h)],
            keypoints: c.keypoints.iter().map(|k| [k[0] + dx, k[1] + dy]).collect(),
            ..c.clone()
        }
    };
    same_candidates("centerface", &got, e["candidates"].as_array().unwrap(), demo);
    // End to end: NMS at the demo's 0.3 leaves faces with 5 landmarks each.
    let t = Transform::new(&p, 256, 256).unwrap();
    let dets = detect(&p, &outs, &t).unwrap();
    assert!(!dets.is_empty() && dets.len() < got.len());
    assert!(dets.iter().all(|d| d.keypoints.len() == 5 && d.label == "face"));
}

#[test]
fn tf_centernet_nhwc_ltrb_without_offsets() {
    let (auto, outs, e) = run("centernet_tf_ltrb");
    let p = &auto.profile;
    let Decoder::Centernet(d) = &p.decoder else { panic!("{:?}", p.decoder) };
    assert!(d.channels_last && d.heatmap_logits && d.peaks_only);
    assert_eq!((d.box_encoding, d.offset_output.as_deref(), d.stride), (BoxEncoding::Ltrb, None, 4.0));
    assert_eq!((p.layout, p.labels.len()), (Layout::Nhwc, 80));
    let p = Profile { score_threshold: f(&e["conf"]), ..p.clone() };
    let got = decode::decode(&p, &outs).unwrap();
    same_candidates("centernet_tf_ltrb", &got, e["candidates"].as_array().unwrap(), Candidate::clone);
}

#[test]
fn wrong_grid_or_channels_say_which_output_and_what_was_expected() {
    let (auto, mut outs, _) = run("centernet_tf_ltrb");
    // The box map read channels-first: its shape no longer fits the heatmap's grid.
    let Decoder::Centernet(mut d) = auto.profile.decoder.clone() else { unreachable!() };
    d.channels_last = false;
    let p = Profile { decoder: Decoder::Centernet(d.clone()), ..auto.profile.clone() };
    let e = decode::decode(&p, &outs).unwrap_err().to_string();
    assert!(e.contains("heatmap") || e.contains("[1, 4,"), "{e}");
    // A 2-channel size encoding on a 4-channel ltrb map.
    d.channels_last = true;
    d.box_encoding = BoxEncoding::Wh;
    let p = Profile { decoder: Decoder::Centernet(d), ..auto.profile.clone() };
    let e = decode::decode(&p, &outs).unwrap_err().to_string();
    assert!(e.contains("box_ltrb") && e.contains("2 channels"), "{e}");
    // A NaN in the box map is named, not drawn.
    let i = outs.iter().position(|(n, _)| n == "box_ltrb").unwrap();
    if let qplay_core::model::Data::F32(v) = &mut outs[i].1.data {
        v[0] = f32::NAN;
    }
    let e = decode::decode(&auto.profile, &outs).unwrap_err().to_string();
    assert!(e.contains("box_ltrb"), "{e}");
}

#[test]
fn landmarks_need_their_count_and_old_profiles_still_parse() {
    let (auto, _, _) = run("centerface");
    let Decoder::Centernet(mut d) = auto.profile.decoder.clone() else { unreachable!() };
    d.landmarks = 0;
    let p = Profile { decoder: Decoder::Centernet(d), ..auto.profile.clone() };
    assert!(p.validate().unwrap_err().to_string().contains("landmarks"));
    // A profile written before the parts existed (offsets required, NCHW, wh) reads the same.
    let old = r#"{"input":"x","size":[512,512],"layout":"nchw","color":"bgr","mean":[0,0,0],"std":[1,1,1],
        "resize":{"mode":"stretch"},"decoder":{"type":"centernet","heatmap_output":"hm","wh_output":"wh",
        "offset_output":"reg","stride":4,"heatmap_logits":true},"score_threshold":0.3,"iou_threshold":0.5}"#;
    let p = Profile::from_json(old).unwrap();
    let Decoder::Centernet(d) = p.decoder else { unreachable!() };
    assert!(d.peaks_only && !d.channels_last && d.box_encoding == BoxEncoding::Wh && d.cell_center == 0.0);
    assert_eq!(d.offset_output.as_deref(), Some("reg"));
}
