//! The pixel-scaling probe on real weights: the built-in person detector (trained on −1..1
//! input) and face detector are loaded with no profile, and the probe, run on a photo, keeps
//! −1..1 even when the profile's guess is moved elsewhere; a model whose convention the file
//! states (Ultralytics: 0..1) is not probed.

use qplay_core::detect::Detector;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn photo(stem: &str, w: usize, h: usize) -> Vec<u8> {
    let b = std::fs::read(root().join(format!("tests/fixtures/{stem}.rgba"))).unwrap();
    assert_eq!(b.len(), w * h * 4);
    b
}

fn detector(model: &str) -> Detector {
    Detector::new(&std::fs::read(root().join(model)).unwrap(), None).unwrap()
}

#[test]
fn person_detector_probe_finds_minus_one_to_one_from_a_wrong_guess() {
    let rgba = photo("person", 640, 424);
    let mut d = detector("www/models/person_ssdlite.onnx");
    assert!(d.scaling_is_a_guess());
    let before = d.detect_rgba(640, 424, &rgba).unwrap();
    assert!(!before.is_empty());
    // Start from a wrong guess (0..1): the probe must move to −1..1.
    let mut wrong = d.profile().clone();
    (wrong.mean, wrong.std) = ([0.0; 3], [1.0; 3]);
    let plan = d.plan();
    let r = qplay_core::detect::probe::probe_pixel_scaling(plan, &wrong, 640, 424, &rgba).unwrap();
    eprintln!("{}", r.note);
    assert_eq!(r.scores[r.chosen].0, "−1..1", "{}", r.note);
    // From the family's own default it stays.
    let note = d.probe_pixel_scaling(640, 424, &rgba).unwrap().unwrap();
    assert!(note.contains("kept the family's default"), "{note}");
    assert_eq!(d.detect_rgba(640, 424, &rgba).unwrap(), before);
}

#[test]
fn face_detector_probe_keeps_minus_one_to_one() {
    let rgba = photo("astronaut", 512, 512);
    let d = detector("www/models/blazeface_short.onnx");
    let mut wrong = d.profile().clone();
    (wrong.mean, wrong.std) = ([0.0; 3], [1.0 / 255.0; 3]);
    let r = qplay_core::detect::probe::probe_pixel_scaling(d.plan(), &wrong, 512, 512, &rgba).unwrap();
    eprintln!("{}", r.note);
    assert_eq!(r.scores[r.chosen].0, "−1..1", "{}", r.note);
}

#[test]
fn ultralytics_files_say_their_scaling_and_are_not_probed() {
    let mut d = detector("tests/fixtures/ultralytics/yolov8_custom18.onnx");
    assert!(!d.scaling_is_a_guess());
    assert_eq!(d.probe_pixel_scaling(640, 424, &photo("person", 640, 424)).unwrap(), None);
}
