//! A real YOLOX-Nano export (`tests/fixtures/make_yolox_fixtures.py`: the `yolox` package's own
//! model code, exported as its `export_onnx.py` does by default, without the decode): the raw
//! head is recognised with zero configuration, qplay's output matches onnxruntime's, and the
//! candidates equal YOLOX's `demo_postprocess` + score selection.

use qplay_core::detect::*;
use qplay_core::model::npy::read_npy;
use qplay_core::model::{load_onnx, Plan};
use qplay_core::ops::Registry;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/yolox")
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (run tests/fixtures/make_yolox_fixtures.py)", p.display()))
}

#[test]
fn yolox_raw_head_decodes_like_yolox() {
    let graph = load_onnx(&read(dir().join("yolox_nano.onnx"))).unwrap();
    let auto = infer_profile_for(&graph).unwrap();
    let p = &auto.profile;
    let Decoder::Yolov5(d) = &p.decoder else { panic!("{:?}", p.decoder) };
    assert_eq!(d.grid_strides, vec![8, 16, 32]);
    assert_eq!((p.color, p.resize), (ColorOrder::Bgr, Resize::Letterbox { pad: 114.0, top_left: true }));
    assert!(auto.assumed.iter().any(|a| a.contains("raw YOLOX head")), "{:?}", auto.assumed);
    let x = read_npy(&read(dir().join("yolox_nano/input.npy"))).unwrap();
    let plan = Plan::new(&graph, &Registry::new(), &[("images".into(), x.shape.clone())]).unwrap();
    let out = plan.run(&[("images".into(), x)]).unwrap().remove(0);
    let want = read_npy(&read(dir().join("yolox_nano/output_0.npy"))).unwrap();
    let (g, w) = (out.as_f32().unwrap(), want.as_f32().unwrap());
    let range = w.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
    let worst = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-4 * range, "max |qplay − onnxruntime| = {worst} (range {range})");

    let e: Value = serde_json::from_slice(&read(dir().join("yolox_nano/expected.json"))).unwrap();
    // YOLOX keeps scores strictly above its threshold; the fixture's threshold is no score.
    let p = Profile { score_threshold: e["conf"].as_f64().unwrap() as f32, ..p.clone() };
    let got = decode::decode(&p, &[("output".into(), out)]).unwrap();
    let want = e["candidates"].as_array().unwrap();
    assert!(!want.is_empty());
    assert_eq!(got.len(), want.len(), "candidate count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.class as u64, w["class"].as_u64().unwrap(), "candidate {i} class");
        assert!((g.score - w["score"].as_f64().unwrap() as f32).abs() < 1e-4, "candidate {i} score");
        for k in 0..4 {
            let wk = w["box"][k].as_f64().unwrap() as f32;
            assert!((g.bbox[k] - wk).abs() < 0.05 + 1e-4 * wk.abs(), "candidate {i} box {:?} vs {}", g.bbox, w["box"]);
        }
    }
}

#[test]
fn grid_strides_that_do_not_fit_the_rows_say_so() {
    let graph = load_onnx(&read(dir().join("yolox_nano.onnx"))).unwrap();
    let auto = infer_profile_for(&graph).unwrap();
    let x = read_npy(&read(dir().join("yolox_nano/input.npy"))).unwrap();
    let plan = Plan::new(&graph, &Registry::new(), &[("images".into(), x.shape.clone())]).unwrap();
    let out = plan.run(&[("images".into(), x)]).unwrap().remove(0);
    let Decoder::Yolov5(mut d) = auto.profile.decoder.clone() else { unreachable!() };
    d.grid_strides = vec![8, 16];
    let p = Profile { decoder: Decoder::Yolov5(d), ..auto.profile.clone() };
    let e = decode::decode(&p, &[("output".into(), out)]).unwrap_err().to_string();
    assert!(e.contains("grid_strides") && e.contains("1280 rows"), "{e}");
}
