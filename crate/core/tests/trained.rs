//! Trained detectors as other tools publish them (`tests/fixtures/trained/README.md`): MediaPipe's
//! BlazeFace re-exported with its anchors split over two output pairs, and MediaPipe's full-range
//! model (192×192, 2304 anchors) converted by tf2onnx. Both are recognised with zero
//! configuration (neither was before: the split one was read as a YOLOv5 grid with scores in the
//! millions), are not probed (MediaPipe fixes −1..1), and find the faces the built-in model finds.

use qplay_core::detect::*;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn astronaut() -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/astronaut.rgba")).unwrap()
}

fn detector(path: &str) -> Detector {
    Detector::new(&std::fs::read(root().join(path)).unwrap(), None).unwrap()
}

#[test]
fn split_blazeface_export_equals_the_built_in_model() {
    let mut d = detector("tests/fixtures/trained/blazeface_front_split.onnx");
    let Decoder::Blazeface(b) = &d.profile().decoder else { panic!("{:?}", d.profile().decoder) };
    assert_eq!((b.strides.clone(), b.more_outputs.len()), (vec![8, 16, 16, 16], 1));
    assert!(!d.scaling_is_a_guess(), "MediaPipe fixes the scaling");
    assert_eq!((d.profile().mean, d.profile().std), ([0.5; 3], [0.5; 3]));
    let got = d.detect_rgba(512, 512, &astronaut()).unwrap();
    let mut built_in = detector("www/models/blazeface_short.onnx");
    let want = built_in.detect_rgba(512, 512, &astronaut()).unwrap();
    assert!(!want.is_empty());
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!((g.score - w.score).abs() < 1e-3, "{g:?} vs {w:?}");
        for k in 0..4 {
            assert!((g.bbox[k] - w.bbox[k]).abs() < 0.5, "{g:?} vs {w:?}");
        }
    }
}

#[test]
fn full_range_blazeface_is_recognised_and_finds_the_face() {
    let mut d = detector("tests/fixtures/trained/blazeface_full_range.onnx");
    let Decoder::Blazeface(b) = &d.profile().decoder else { panic!("{:?}", d.profile().decoder) };
    assert_eq!((b.strides.clone(), b.anchors_per_layer, b.coord_scale), (vec![4], 1, 192.0));
    assert!(d.assumed().iter().any(|a| a.contains("full range")), "{:?}", d.assumed());
    let got = d.detect_rgba(512, 512, &astronaut()).unwrap();
    let mut built_in = detector("www/models/blazeface_short.onnx");
    let want = built_in.detect_rgba(512, 512, &astronaut()).unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    let iou = nms::iou(&got[0].bbox, &want[0].bbox);
    assert!(iou > 0.5, "the same face as the short-range model: IoU {iou}");
}

#[test]
fn a_profile_field_of_the_wrong_type_points_to_the_reference() {
    let d = detector("tests/fixtures/trained/blazeface_full_range.onnx");
    let json = d.profile().to_json().replace("\"anchors_per_layer\": 1", "\"anchors_per_layer\": [1, 1]");
    let e = Profile::from_json(&json).unwrap_err().to_string();
    assert!(e.contains("invalid type: sequence, expected usize") && e.contains("www/profile.html"), "{e}");
}
