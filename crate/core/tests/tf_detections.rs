//! A real tf2onnx export with TensorFlow Object Detection API outputs
//! (`tests/fixtures/make_tf_detections_fixtures.py`: a Keras SSD-style detector with TF's box
//! coder and `combined_non_max_suppression`, converted from a SavedModel by tf2onnx): uint8 pixels
//! in, `detection_boxes`, `detection_classes`, `detection_scores`, `num_detections` out. It runs
//! (NonMaxSuppression, TopK, CumSum, EyeLike, GatherND, ScatterND inside) with zero configuration
//! and gives TensorFlow's own detections.

use qplay_core::detect::*;
use qplay_core::model::npy::read_npy;
use qplay_core::model::{load_onnx, Plan, Tensor};
use qplay_core::ops::Registry;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tf_detections")
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run tests/fixtures/make_tf_detections_fixtures.py)", p.display()))
}

#[test]
fn tf_detection_outputs_decode_like_tensorflow() {
    let mut graph = load_onnx(&read(dir().join("ssd_tf.onnx"))).unwrap();
    assert_eq!(graph.inputs[0].elem_type, 2, "loaded as it is: uint8 pixels");
    qplay_core::model::float_image_inputs(&mut graph);
    assert!(graph.load_notes.iter().any(|n| n.contains("uint8 pixels")), "{:?}", graph.load_notes);
    let auto = infer_profile_for(&graph).unwrap();
    let p = &auto.profile;
    let Decoder::Detections(d) = &p.decoder else { panic!("{:?}", p.decoder) };
    assert_eq!(
        (d.boxes_output.as_str(), d.scores_output.as_str(), d.classes_output.as_deref(), d.count_output.as_deref()),
        ("detection_boxes", "detection_scores", Some("detection_classes"), Some("num_detections"))
    );
    assert_eq!((d.box_format, d.normalized, d.first_class), (BoxFormat::Yxyx, true, 1));
    assert_eq!((p.layout, p.size, p.mean, p.std), (Layout::Nhwc, [256, 256], [0.0; 3], [1.0 / 255.0; 3]));
    assert_eq!((p.labels[0].as_str(), p.labels[61].as_str(), p.labels.len()), ("person", "chair", 90));

    // The photo as the fixture's uint8 pixels, fed as float32 0..255.
    let x = read_npy(&read(dir().join("ssd_tf/input.npy"))).unwrap();
    let x = Tensor::f32(x.shape.clone(), x.to_f32_vec()).unwrap();
    let plan = Plan::new(&graph, &Registry::new(), &[("input_tensor".into(), x.shape.clone())]).unwrap();
    let out: Vec<(String, Tensor)> = plan
        .output_names()
        .into_iter()
        .map(String::from)
        .zip(plan.run(&[("input_tensor".into(), x)]).unwrap())
        .collect();
    for (name, t) in &out {
        let want = read_npy(&read(dir().join(format!("ssd_tf/output_{name}.npy")))).unwrap();
        let worst = t.to_f32_vec().iter().zip(want.to_f32_vec()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-4, "{name}: max |qplay − onnxruntime| = {worst}");
    }

    let e: Value = serde_json::from_slice(&read(dir().join("ssd_tf/expected.json"))).unwrap();
    let p = Profile { score_threshold: 0.0, ..p.clone() };
    let got = decode::decode(&p, &out).unwrap();
    let want = e["detections"].as_array().unwrap();
    assert_eq!(got.len(), e["num"].as_u64().unwrap() as usize);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.class + 1, w["class"].as_f64().unwrap() as usize, "{i}: class");
        assert!((g.score - w["score"].as_f64().unwrap() as f32).abs() < 1e-5, "{i}: score");
        let b: Vec<f32> = (0..4).map(|k| w["box"][k].as_f64().unwrap() as f32 * 256.0).collect();
        let want_xyxy = [b[1], b[0], b[3], b[2]];
        for k in 0..4 {
            assert!((g.bbox[k] - want_xyxy[k]).abs() < 1e-3, "{i}: box {:?} vs {want_xyxy:?}", g.bbox);
        }
    }
}

#[test]
fn a_count_larger_than_the_rows_is_refused() {
    let graph = load_onnx(&read(dir().join("ssd_tf.onnx"))).unwrap();
    let p = infer_profile_for(&graph).unwrap().profile;
    let rows = |n: usize, v: f32| Tensor::f32(vec![1, n], vec![v; n]).unwrap();
    let out = vec![
        ("detection_boxes".to_string(), Tensor::f32(vec![1, 3, 4], vec![0.1; 12]).unwrap()),
        ("detection_scores".to_string(), rows(3, 0.9)),
        ("detection_classes".to_string(), rows(3, 1.0)),
        ("num_detections".to_string(), Tensor::f32(vec![1], vec![7.0]).unwrap()),
    ];
    let e = decode::decode(&p, &out).unwrap_err().to_string();
    assert!(e.contains("says 7 detections") && e.contains("holds 3 boxes"), "{e}");
}
