//! A YOLOv8-style export with dynamic axes (tests/fixtures/make_synthetic_models.py): its
//! shape sub-graphs fold once a size is chosen, it matches onnxruntime at two sizes, the
//! detector profile is inferred as yolov8, and the decoder runs on it.

use qplay_core::detect::{Decoder, Detector};
use qplay_core::model::{load_onnx, npy::read_npy, Plan, Tensor};
use qplay_core::ops::Registry;
use std::path::PathBuf;

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/synthetic").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn max_diff_vs_range(a: &Tensor, b: &Tensor) -> (f32, f32) {
    let (a, b) = (a.as_f32().unwrap(), b.as_f32().unwrap());
    let lo = b.iter().fold(f32::INFINITY, |m, &v| m.min(v));
    let hi = b.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    (a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max), hi - lo)
}

#[test]
fn yolov8_dynamic_matches_onnxruntime_at_two_sizes() {
    let g = load_onnx(&fixture("yolov8_dynamic.onnx")).unwrap();
    assert_eq!(g.inputs[0].shape, vec![Some(1), Some(3), None, None]);
    for (w, h) in [(320usize, 320usize), (256, 192)] {
        let x = read_npy(&fixture(&format!("yolov8_dynamic_{w}x{h}/input.npy"))).unwrap();
        let want = read_npy(&fixture(&format!("yolov8_dynamic_{w}x{h}/output_0.npy"))).unwrap();
        let plan = Plan::new(&g, &Registry::new(), &[("images".into(), vec![1, 3, h, w])]).unwrap();
        // Every Shape/Gather/Range/Expand/Concat of the anchor grids folded into constants.
        for (name, op) in plan.steps() {
            assert!(
                !["Shape", "Gather", "Range", "Cast", "Unsqueeze", "Expand"].contains(&op),
                "{op} node `{name}` was not folded"
            );
        }
        let got = plan.run(&[("images".into(), x)]).unwrap();
        assert_eq!(got[0].shape, want.shape);
        let (d, r) = max_diff_vs_range(&got[0], &want);
        eprintln!("yolov8_dynamic {w}x{h}: max |diff| {d:e}, range {r}");
        assert!(d <= 1e-4 * r, "max diff {d} vs range {r}");
    }
    // Without a size, planning says which input needs one.
    let e = Plan::new(&g, &Registry::new(), &[]).unwrap_err().to_string();
    assert!(e.contains("images") && e.contains('?'), "{e}");
}

#[test]
fn yolov8_dynamic_profile_is_inferred_and_decodes() {
    let mut det = Detector::new(&fixture("yolov8_dynamic.onnx"), None).unwrap();
    match &det.profile().decoder {
        Decoder::Yolov8(_) => {}
        other => panic!("expected yolov8, got {other:?}"),
    }
    assert!(det.assumed().iter().any(|a| a.contains("3 classes")), "{:?}", det.assumed());
    let (w, h) = (97usize, 61usize);
    let rgba: Vec<u8> = (0..w * h * 4).map(|i| (i * 31 % 251) as u8).collect();
    det.set_thresholds(0.3, 0.5);
    let dets = det.detect_rgba(w, h, &rgba).unwrap();
    for d in &dets {
        let [x1, y1, x2, y2] = d.bbox;
        assert!(x1 >= 0.0 && y1 >= 0.0 && x2 <= w as f32 && y2 <= h as f32 && x1 <= x2 && y1 <= y2, "{d:?}");
        assert!(d.class < 3 && d.score >= 0.3);
    }
}
