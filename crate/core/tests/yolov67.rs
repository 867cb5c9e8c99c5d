//! Real YOLOv7 and YOLOv6 exports (`tests/fixtures/make_yolov67_fixtures.py`: each repository's
//! own model code and ONNX export, scaled down, random weights): both read as `[1, N, 5 + C]`
//! rows with zero configuration (YOLOv6's objectness column is a constant 1), qplay's output
//! matches onnxruntime's, and the candidates and the NMS result equal each repository's own
//! `non_max_suppression`.

use qplay_core::detect::nms::{nms, Candidate};
use qplay_core::detect::*;
use qplay_core::model::npy::read_npy;
use qplay_core::model::{load_onnx, Plan};
use qplay_core::ops::Registry;
use serde_json::Value;
use std::path::PathBuf;

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (run tests/fixtures/make_yolov67_fixtures.py)", p.display()))
}

fn same(got: &[Candidate], want: &[Value], what: &str) {
    assert!(!want.is_empty(), "{what}");
    assert_eq!(got.len(), want.len(), "{what}: count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.class as u64, w["class"].as_u64().unwrap(), "{what} {i}: class");
        assert!((g.score - w["score"].as_f64().unwrap() as f32).abs() < 1e-4, "{what} {i}: score");
        for k in 0..4 {
            let wk = w["box"][k].as_f64().unwrap() as f32;
            assert!((g.bbox[k] - wk).abs() < 0.01 + 1e-5 * wk.abs(), "{what} {i}: box {:?} vs {}", g.bbox, w["box"]);
        }
    }
}

fn check(name: &str, output: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/yolov67");
    let graph = load_onnx(&read(dir.join(format!("{name}.onnx")))).unwrap();
    let auto = infer_profile_for(&graph).unwrap();
    let p = &auto.profile;
    let Decoder::Yolov5(d) = &p.decoder else { panic!("{name}: {:?}", p.decoder) };
    assert!(d.grid_strides.is_empty(), "{name}: decoded boxes, not a raw head");
    assert_eq!(p.resize, Resize::Letterbox { pad: 114.0, top_left: false });
    assert_eq!(p.labels.len(), 80);

    let x = read_npy(&read(dir.join(name).join("input.npy"))).unwrap();
    let plan = Plan::new(&graph, &Registry::new(), &[("images".into(), x.shape.clone())]).unwrap();
    let out = plan.run(&[("images".into(), x)]).unwrap().remove(0);
    let want = read_npy(&read(dir.join(name).join("output_0.npy"))).unwrap();
    let (g, w) = (out.as_f32().unwrap(), want.as_f32().unwrap());
    let range = w.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
    let worst = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-4 * range, "{name}: max |qplay − onnxruntime| = {worst} (range {range})");

    let e: Value = serde_json::from_slice(&read(dir.join(name).join("expected.json"))).unwrap();
    let p = Profile { score_threshold: e["conf"].as_f64().unwrap() as f32, ..p.clone() };
    let cands = decode::decode(&p, &[(output.into(), want)]).unwrap();
    same(&cands, e["candidates"].as_array().unwrap(), &format!("{name} candidate"));
    let kept: Vec<_> =
        nms(&cands, e["iou"].as_f64().unwrap() as f32, 300).into_iter().map(|i| cands[i].clone()).collect();
    same(&kept, e["final"].as_array().unwrap(), &format!("{name} after NMS"));
}

#[test]
fn yolov7_decodes_like_yolov7() {
    check("yolov7_tiny", "output");
}

#[test]
fn yolov6_decodes_like_yolov6() {
    check("yolov6n", "outputs");
}
