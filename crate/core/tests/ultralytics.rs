//! Real Ultralytics exports (YOLOv8 with 18 custom classes, YOLOv8-pose, YOLO11-seg, YOLOv10
//! end-to-end), written by `tests/fixtures/make_ultralytics_fixtures.py` with Ultralytics' own
//! export and post-processing: each decodes with zero configuration (the profile comes from the
//! file's metadata and shapes), qplay's outputs match onnxruntime's, and the detections equal
//! Ultralytics' `non_max_suppression` (or the end-to-end rows) on the same input tensor.

use qplay_core::detect::infer_profile_for;
use qplay_core::detect::*;
use qplay_core::model::npy::read_npy;
use qplay_core::model::{load_onnx, Plan, Tensor};
use qplay_core::ops::Registry;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ultralytics")
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run tests/fixtures/make_ultralytics_fixtures.py)", p.display()))
}

struct Case {
    profile: AutoProfile,
    output: Tensor,
    expected: Value,
}

/// Loads the export, infers its profile with no configuration, runs it on the fixture's input
/// and checks the raw output against onnxruntime's (≤ 1e-4 of the output's range).
fn run(name: &str) -> Case {
    let graph = load_onnx(&read(dir().join(format!("{name}.onnx")))).unwrap();
    let profile = infer_profile_for(&graph).unwrap_or_else(|e| panic!("{name}: {e}"));
    let x = read_npy(&read(dir().join(name).join("input.npy"))).unwrap();
    let plan = Plan::new(&graph, &Registry::new(), &[(profile.profile.input.clone(), x.shape.clone())]).unwrap();
    let out = plan.run(&[(profile.profile.input.clone(), x)]).unwrap().remove(0);
    let want = read_npy(&read(dir().join(name).join("output_0.npy"))).unwrap();
    assert_eq!(out.shape, want.shape, "{name}: output shape");
    let (g, w) = (out.as_f32().unwrap(), want.as_f32().unwrap());
    let range = w.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
    let worst = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    // A float16 export runs in float16 in onnxruntime and in float32 in qplay.
    let tol = if graph_is_half(&graph) { 1e-2 } else { 1e-4 };
    assert!(worst <= tol * range, "{name}: max |qplay − onnxruntime| = {worst} (range {range})");
    let expected: Value = serde_json::from_slice(&read(dir().join(name).join("expected.json"))).unwrap();
    Case { profile, output: out, expected }
}

fn graph_is_half(g: &qplay_core::model::Graph) -> bool {
    g.load_notes.iter().any(|n| n.contains("float16"))
}

/// qplay's decoder keeps exactly Ultralytics' candidates before NMS (best class above the
/// threshold, boxes as x1, y1, x2, y2), in anchor order.
fn check_candidates(name: &str, c: &Case) {
    let e = &c.expected;
    let p = Profile { score_threshold: e["conf"].as_f64().unwrap() as f32 + 1e-6, ..c.profile.profile.clone() };
    let got = decode::decode(&p, &[(p.decoder.output_names()[0].to_string(), c.output.clone())]).unwrap();
    let want = e["candidates"].as_array().unwrap();
    assert!(!want.is_empty(), "{name}: the fixture should have candidates");
    assert_eq!(got.len(), want.len(), "{name}: candidate count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.class as u64, w["class"].as_u64().unwrap(), "{name}: candidate {i} class");
        assert!((g.score - w["score"].as_f64().unwrap() as f32).abs() < 1e-4, "{name}: candidate {i} score");
        for k in 0..4 {
            assert!((g.bbox[k] - w["box"][k].as_f64().unwrap() as f32).abs() < 0.05, "{name}: candidate {i} box");
        }
    }
}

/// qplay's detections at the fixture's thresholds equal Ultralytics' (boxes clipped to the input,
/// as qplay reports them): same count, order, classes, scores within 1e-4, boxes within 0.05 px,
/// keypoints within 0.05 px and their visibility within 1e-4.
fn check(name: &str, c: &Case) -> Vec<Detection> {
    let e = &c.expected;
    let p = Profile {
        score_threshold: e["conf"].as_f64().unwrap() as f32,
        iou_threshold: e["iou"].as_f64().unwrap() as f32,
        max_detections: e["max_det"].as_u64().unwrap() as usize,
        ..c.profile.profile.clone()
    };
    let [iw, ih] = p.size;
    let t = Transform::new(&p, iw, ih).unwrap();
    let got = detect(&p, &[(c.profile.profile.decoder.output_names()[0].to_string(), c.output.clone())], &t).unwrap();
    let want = e["detections"].as_array().unwrap();
    assert!(!want.is_empty(), "{name}: the fixture should have detections");
    assert_eq!(got.len(), want.len(), "{name}: detection count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.class as u64, w["class"].as_u64().unwrap(), "{name}: detection {i} class");
        assert!((g.score - w["score"].as_f64().unwrap() as f32).abs() < 1e-4, "{name}: detection {i} score");
        let clip = [iw as f32, ih as f32, iw as f32, ih as f32];
        for k in 0..4 {
            let want = (w["box"][k].as_f64().unwrap() as f32).clamp(0.0, clip[k]);
            assert!((g.bbox[k] - want).abs() < 0.05, "{name}: detection {i} box {:?} vs {}", g.bbox, w["box"]);
        }
        let kps = w["keypoints"].as_array().unwrap();
        assert_eq!(g.keypoints.len(), kps.len(), "{name}: detection {i} keypoints");
        for (k, kp) in kps.iter().enumerate() {
            for d in 0..2 {
                assert!((g.keypoints[k][d] - kp[d].as_f64().unwrap() as f32).abs() < 0.05, "{name}: keypoint {k}");
            }
            assert!((g.keypoint_scores[k] - kp[2].as_f64().unwrap() as f32).abs() < 1e-4, "{name}: visibility {k}");
        }
    }
    got
}

#[test]
fn yolov8_custom_names_from_metadata() {
    let c = run("yolov8_custom18");
    let p = &c.profile.profile;
    assert_eq!(p.labels.len(), 18);
    assert_eq!(p.labels[9], "men's boots");
    assert!(matches!(&p.decoder, Decoder::Yolov8(y) if y.classes == Some(18) && y.keypoints == 0), "{:?}", p.decoder);
    assert!(
        c.profile.assumed.iter().any(|a| a.contains("18 class names from the model's metadata")),
        "{:?}",
        c.profile.assumed
    );
    check_candidates("yolov8_custom18", &c);
    // After NMS: the random trunk gives most anchors one of five scores (score_ties in the
    // fixture), and torchvision orders equal scores its own way, so the kept set is compared only
    // where the order is defined (the other models below, and the end-to-end rows).
    let p = Profile { score_threshold: 0.25, ..c.profile.profile.clone() };
    let t = Transform::new(&p, 256, 256).unwrap();
    let dets = detect(&p, &[("output0".to_string(), c.output.clone())], &t).unwrap();
    assert!(!dets.is_empty() && dets.iter().all(|d| !d.label.starts_with("class ")), "every label is a name");
}

#[test]
fn yolov8_pose_keypoints() {
    let c = run("yolov8_pose");
    let p = &c.profile.profile;
    assert!(
        matches!(&p.decoder, Decoder::Yolov8(y) if y.classes == Some(1) && y.keypoints == 17 && y.keypoint_dims == 3),
        "{:?}",
        p.decoder
    );
    check_candidates("yolov8_pose", &c);
    let dets = check("yolov8_pose", &c);
    assert!(dets.iter().all(|d| d.keypoints.len() == 17 && d.keypoint_scores.len() == 17));
}

#[test]
fn yolo11_seg_boxes_only() {
    let c = run("yolo11_seg");
    let p = &c.profile.profile;
    assert!(matches!(&p.decoder, Decoder::Yolov8(y) if y.classes == Some(80)), "{:?}", p.decoder);
    assert!(c.profile.assumed.iter().any(|a| a.contains("masks are not drawn")), "{:?}", c.profile.assumed);
    check_candidates("yolo11_seg", &c);
    check("yolo11_seg", &c);
}

#[test]
fn yolov10_end_to_end() {
    let c = run("yolov10_e2e");
    assert!(matches!(&c.profile.profile.decoder, Decoder::End2end(_)), "{:?}", c.profile.profile.decoder);
    check("yolov10_e2e", &c);
}

#[test]
fn pose_without_metadata_is_a_stated_guess() {
    let mut graph = load_onnx(&read(dir().join("yolov8_pose.onnx"))).unwrap();
    graph.metadata.clear();
    let a = infer_profile_for(&graph).unwrap();
    assert!(matches!(&a.profile.decoder, Decoder::Yolov8(y) if y.keypoints == 17));
    assert!(a.assumed.iter().any(|s| s.contains("taken as a YOLOv8/YOLO11 pose output")), "{:?}", a.assumed);
}

#[test]
fn classify_and_obb_are_refused_with_the_reason() {
    let mut graph = load_onnx(&read(dir().join("yolov8_custom18.onnx"))).unwrap();
    for (task, says) in [("classify", "classifier"), ("obb", "rotated boxes")] {
        graph.metadata.retain(|(k, _)| k != "task");
        graph.metadata.push(("task".into(), task.into()));
        let e = infer_profile_for(&graph).unwrap_err().to_string();
        assert!(e.contains(says), "{task}: {e}");
    }
}

#[test]
fn float16_export_loads_as_float32_and_says_so() {
    // Ultralytics `half=True`: float16 weights behind Cast nodes, float32 input and output.
    let c = run("yolov8_half");
    let graph = load_onnx(&read(dir().join("yolov8_half.onnx"))).unwrap();
    assert!(graph_is_half(&graph), "{:?}", graph.load_notes);
    assert!(graph.initializers.values().any(|t| t.dtype() == qplay_core::model::DType::F32));
    let s = qplay_core::model::Summary::of(&graph, &Registry::new());
    assert!(s.notes.iter().any(|n| n.contains("converted to float32")), "{:?}", s.notes);
    assert!(s.unsupported.is_empty(), "{:?}", s.unsupported);
    // The same decoded boxes as Ultralytics, within float16's rounding.
    let e = &c.expected;
    let p = Profile { score_threshold: 0.25, ..c.profile.profile.clone() };
    let got = decode::decode(&p, &[("output0".to_string(), c.output.clone())]).unwrap();
    let want = e["candidates"].as_array().unwrap();
    assert!(got.len().abs_diff(want.len()) <= want.len() / 100, "{} vs {}", got.len(), want.len());
}

#[test]
fn float16_bits_convert_exactly() {
    // Every float16 value: through the loader's conversion and back by the standard rounding.
    for (bits, want) in
        [(0x3c00u16, 1.0f32), (0xc000, -2.0), (0x7bff, 65504.0), (0x0001, 5.960_464_5e-8), (0x8000, -0.0)]
    {
        let t = half_tensor(&[bits]);
        assert_eq!(t[0].to_bits(), want.to_bits(), "{bits:#x}");
    }
    assert!(half_tensor(&[0x7e00])[0].is_nan());
    assert_eq!(half_tensor(&[0xfc00])[0], f32::NEG_INFINITY);
}

/// Loads a one-initializer model whose float16 tensor has these bits, and returns it as float32.
fn half_tensor(bits: &[u16]) -> Vec<f32> {
    use prost::Message;
    use qplay_core::model::proto::*;
    let raw: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
    let m = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
        graph: Some(GraphProto {
            initializer: vec![TensorProto {
                name: "w".into(),
                data_type: 10,
                dims: vec![bits.len() as i64],
                raw_data: raw,
                ..Default::default()
            }],
            output: vec![ValueInfoProto { name: "w".into(), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let g = load_onnx(&m.encode_to_vec()).unwrap();
    g.initializers["w"].as_f32().unwrap().to_vec()
}

#[test]
fn yolo11_nms_inside_runs_its_dynamic_tail() {
    // `nms=True`: NonZero → GatherND → NonMaxSuppression → ScatterND into [1, 300, 6]; the tail's
    // shapes depend on the scores, so it runs as the plan's dynamic tail. `run` checks the rows
    // against onnxruntime's; `check` the detections.
    let c = run("yolo11_nms");
    assert!(matches!(&c.profile.profile.decoder, Decoder::End2end(_)), "{:?}", c.profile.profile.decoder);
    let dets = check("yolo11_nms", &c);
    assert!(dets.len() > 10, "{}", dets.len());
}

#[test]
fn shared_weight_and_bias_initializers_quantize() {
    // onnxslim (Ultralytics' `simplify=True`) merges equal constants, so several Conv nodes read
    // one bias initializer; plain MinMax (no bias correction, which rewrites every bias) once
    // wrote one `<bias>_dequantized` per reader and the export failed to load.
    let graph = load_onnx(&read(dir().join("yolov8_custom18.onnx"))).unwrap();
    let x = read_npy(&read(dir().join("yolov8_custom18").join("input.npy"))).unwrap();
    let opts = qplay_core::ptq::PtqOptions {
        method: qplay_core::quant::Calibration::MinMax,
        equalize: false,
        bias_correction: false,
        ..Default::default()
    };
    let q = qplay_core::ptq::quantize(&graph, "images", &[x], &opts).unwrap();
    let worst = q.report.output_sqnr_db.values().copied().fold(f64::INFINITY, f64::min);
    assert!(worst > 20.0, "{worst}");
}

#[test]
fn without_metadata_the_other_reading_is_offered_and_previewed() {
    // The pose export with its metadata stripped: [1, 56, N] is read as a pose model, and a
    // 52-class detector is offered as the other reading; previewing it decodes with its profile.
    let bytes = read(dir().join("yolov8_pose_nometa.onnx"));
    let det = Detector::new(&bytes, None).unwrap();
    assert!(matches!(&det.profile().decoder, Decoder::Yolov8(y) if y.keypoints == 17));
    let alts = det.alternatives();
    assert_eq!(alts.len(), 1, "{alts:?}");
    assert!(alts[0].reading.contains("52 classes"), "{}", alts[0].reading);
    assert!(matches!(&alts[0].profile.decoder, Decoder::Yolov8(y) if y.keypoints == 0 && y.classes.is_none()));
    let (w, h) = (64usize, 48usize);
    let rgba: Vec<u8> = (0..w * h * 4).map(|i| (i * 37 % 251) as u8).collect();
    let p = Profile { score_threshold: 0.25, ..alts[0].profile.clone() };
    let dets = det.preview(&p, w, h, &rgba).unwrap();
    assert!(dets.iter().all(|d| d.keypoints.is_empty() && d.label.starts_with("class ")));
    // A preview keeps the model's input: another size is refused with the reason.
    let other = Profile { size: [128, 128], ..p };
    assert!(det.preview(&other, w, h, &rgba).unwrap_err().to_string().contains("apply the profile"));
    // With the metadata, there is one reading.
    assert!(Detector::new(&read(dir().join("yolov8_pose.onnx")), None).unwrap().alternatives().is_empty());
}

#[test]
fn float16_export_goes_back_as_float16_where_float_remains() {
    use prost::Message;
    // Every float16 value survives float32 → float16 exactly (the writer is the loader's inverse).
    let all: Vec<u16> = (0..=u16::MAX).collect();
    for (&h, x) in all.iter().zip(half_tensor(&all)) {
        if !x.is_nan() {
            assert_eq!(qplay_core::model::save::f32_to_f16(x), h, "{h:#06x}");
        }
    }
    // Rounding to nearest even between two float16 values, and overflow.
    assert_eq!(qplay_core::model::save::f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00, "a tie goes to even");
    assert_eq!(qplay_core::model::save::f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02, "a tie goes to even");
    assert_eq!(qplay_core::model::save::f32_to_f16(1e6), 0x7c00);
    // Quantizing the `half=True` export keeping one Conv in float: its weights go back as float16.
    let graph = load_onnx(&read(dir().join("yolov8_half.onnx"))).unwrap();
    let x = read_npy(&read(dir().join("yolov8_half").join("input.npy"))).unwrap();
    let first = graph.nodes.iter().find(|n| n.op_type == "Conv").unwrap().name.clone();
    let opts = qplay_core::ptq::PtqOptions {
        method: qplay_core::quant::Calibration::MinMax,
        equalize: false,
        bias_correction: false,
        keep_fp32: vec![first],
        ..Default::default()
    };
    let q = qplay_core::ptq::quantize(&graph, "images", &[x], &opts).unwrap();
    assert!(q.report.notes.iter().any(|n| n.contains("written back as float16")), "{:?}", q.report.notes);
    let m = qplay_core::model::proto::ModelProto::decode(q.onnx.as_slice()).unwrap();
    let halves = m.graph.unwrap().initializer.iter().filter(|t| t.data_type == 10).count();
    assert!(halves >= 1, "no float16 initializer in the export");
    let worst = q.report.output_sqnr_db.values().copied().fold(f64::INFINITY, f64::min);
    assert!(worst > 20.0, "{worst}");
}
