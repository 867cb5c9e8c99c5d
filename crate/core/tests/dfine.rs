//! A real D-FINE export (`tests/fixtures/make_dfine_fixtures.py`: the repository's own model
//! code and export wrapper, scaled down, random weights): two inputs, `images` and
//! `orig_target_sizes` (`[w, h]`, by which the model's post-processor scales its boxes), and
//! outputs `labels`, `boxes`, `scores`. Recognised with zero configuration (the geometry input
//! fed the model input's own size, the outputs read by the `detections` decoder as x1, y1, x2,
//! y2 in input pixels); its boxes mapped to the photo equal D-FINE's own, computed with the
//! photo's size; quantized from photos, it still runs. A second input qplay does not know is a
//! clear error naming it and the profile field.

use qplay_core::detect::*;
use qplay_core::model::load_onnx;
use qplay_core::model::npy::read_npy;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (run tests/fixtures/make_dfine_fixtures.py)", p.display()))
}

/// The reference: D-FINE's rows above its threshold, boxes clipped to the photo as qplay's are.
/// One detection: class, score, box.
type Row = (usize, f32, [f32; 4]);

fn expected() -> (f32, [f32; 2], Vec<Row>) {
    let e: Value = serde_json::from_slice(&read(dir().join("dfine/dfine_n_tiny/expected.json"))).unwrap();
    let [w, h] = [e["image"][0].as_f64().unwrap() as f32, e["image"][1].as_f64().unwrap() as f32];
    let dets = e["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let b: Vec<f32> = d["box"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            let clip = |v: f32, hi: f32| v.clamp(0.0, hi);
            (
                d["class"].as_u64().unwrap() as usize,
                d["score"].as_f64().unwrap() as f32,
                [clip(b[0], w), clip(b[1], h), clip(b[2], w), clip(b[3], h)],
            )
        })
        .collect();
    (e["threshold"].as_f64().unwrap() as f32, [w, h], dets)
}

/// Each reference detection has a qplay detection of its class and score, box within `tol`
/// pixels; returns the largest coordinate difference.
fn compare(got: &[Detection], want: &[Row], score_tol: f32, tol: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "detections: {got:?}");
    let mut worst = 0f32;
    for (class, score, b) in want {
        let g = got
            .iter()
            .filter(|g| g.class == *class && (g.score - score).abs() <= score_tol)
            .min_by(|x, y| {
                let d = |g: &Detection| (0..4).map(|k| (g.bbox[k] - b[k]).abs()).fold(0f32, f32::max);
                d(x).total_cmp(&d(y))
            })
            .unwrap_or_else(|| panic!("no detection of class {class} scoring {score}: {got:?}"));
        let d = (0..4).map(|k| (g.bbox[k] - b[k]).abs()).fold(0f32, f32::max);
        assert!(d <= tol, "class {class} score {score}: box {:?} vs {b:?}", g.bbox);
        worst = worst.max(d);
    }
    worst
}

fn photo() -> (usize, usize, Vec<u8>) {
    let meta: Value = serde_json::from_slice(&read(dir().join("images.json"))).unwrap();
    let p = &meta["person"];
    let (w, h) = (p["width"].as_u64().unwrap() as usize, p["height"].as_u64().unwrap() as usize);
    (w, h, read(dir().join(p["file"].as_str().unwrap())))
}

#[test]
fn dfine_decodes_with_zero_configuration_like_its_own_postprocessor() {
    let graph = load_onnx(&read(dir().join("dfine/dfine_n_tiny.onnx"))).unwrap();
    let auto = infer_profile_for(&graph).unwrap();
    let p = auto.profile.clone();
    let Decoder::Detections(d) = &p.decoder else { panic!("{:?}", p.decoder) };
    assert_eq!(
        (d.boxes_output.as_str(), d.scores_output.as_str(), d.classes_output.as_deref(), d.count_output.as_deref()),
        ("boxes", "scores", Some("labels"), None)
    );
    assert_eq!((d.box_format, d.normalized, d.first_class), (BoxFormat::Xyxy, false, 0));
    assert_eq!(p.aux_inputs.get("orig_target_sizes"), Some(&AuxInput::Kind(AuxKind::InputWh)));
    assert_eq!(
        (p.size, p.resize, p.color, p.mean, p.std),
        ([320, 320], Resize::Stretch, ColorOrder::Rgb, [0.0; 3], [1.0; 3])
    );
    assert_eq!(p.labels.len(), 80);
    assert!(auto.scaling_known);
    assert!(
        auto.assumed.iter().any(|a| a.contains("orig_target_sizes") && a.contains("[320, 320]")),
        "{:?}",
        auto.assumed
    );
    // The profile round-trips through JSON with its `aux_inputs`.
    assert_eq!(Profile::from_json(&p.to_json()).unwrap(), p);

    let (thr, [w, h], want) = expected();
    let p = Profile { score_threshold: thr, ..p };
    let mut det = Detector::from_graph(graph, Some(p.clone())).unwrap();
    // The same input onnxruntime ran, through qplay's plan (orig_target_sizes bound to 320 × 320)
    // and the stretch's transform back to the photo.
    let x = read_npy(&read(dir().join("dfine/dfine_n_tiny/input.npy"))).unwrap();
    let out = det.infer(x).unwrap();
    let t = Transform::new(&p, w as usize, h as usize).unwrap();
    let got = det.decode(&out, &t).unwrap();
    let worst = compare(&got, &want, 2e-3, 0.05);
    eprintln!("input.npy: {} detections, max |box − D-FINE's| {worst:.4} px", got.len());

    // From the photo's pixels: qplay's bilinear stretch is OpenCV's INTER_LINEAR up to float
    // rounding, and the detections are D-FINE's.
    let (pw, ph, rgba) = photo();
    let (xq, t) = det.preprocess(pw, ph, &rgba).unwrap();
    let x = read_npy(&read(dir().join("dfine/dfine_n_tiny/input.npy"))).unwrap();
    let dx = xq.as_f32().unwrap().iter().zip(x.as_f32().unwrap()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("pre-processing: max |qplay − OpenCV| {dx:e}");
    let out = det.infer(xq).unwrap();
    let got = det.decode(&out, &t).unwrap();
    let worst = compare(&got, &want, 2e-3, 0.05);
    eprintln!("photo: {} detections, max |box − D-FINE's| {worst:.4} px", got.len());
}

#[test]
fn dfine_quantized_from_photos_keeps_its_geometry_input_and_runs() {
    use qplay_core::ptq::{quantize, PtqOptions};
    let graph = load_onnx(&read(dir().join("dfine/dfine_n_tiny.onnx"))).unwrap();
    let p = infer_profile_for(&graph).unwrap().profile;
    let meta: Value = serde_json::from_slice(&read(dir().join("images.json"))).unwrap();
    let calib: Vec<_> = ["horses", "astronaut"]
        .iter()
        .map(|k| {
            let m = &meta[*k];
            let rgba = read(dir().join(m["file"].as_str().unwrap()));
            let (w, h) = (m["width"].as_u64().unwrap() as usize, m["height"].as_u64().unwrap() as usize);
            preprocess(&p, w, h, &rgba).unwrap().0
        })
        .collect();
    let fixed = aux::aux_tensors(&p, &graph.inputs).unwrap();
    assert_eq!(fixed.len(), 1);
    assert_eq!(fixed[0].1.as_i64().unwrap(), &[320, 320]);
    let opts = PtqOptions { fixed_inputs: fixed, ..Default::default() };
    let q = quantize(&graph, &p.input, &calib, &opts).unwrap();
    // The export keeps the second input (users feed it as before), and qplay feeds it again.
    let names: Vec<&str> = q.graph.inputs.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["images", "orig_target_sizes"]);
    assert!(!q.graph.initializers.contains_key("orig_target_sizes"));
    assert!(q.report.layers.len() > 50, "{} layers", q.report.layers.len());
    let (w, h, rgba) = photo();
    let mut fp = Detector::from_graph(graph, Some(p.clone())).unwrap();
    let mut int8 = Detector::new(&q.onnx, Some(p)).unwrap();
    let (a, b) = (fp.detect_rgba(w, h, &rgba).unwrap(), int8.detect_rgba(w, h, &rgba).unwrap());
    assert!(b.iter().all(|d| d.score.is_finite() && d.bbox.iter().all(|v| v.is_finite())));
    let map = agreement::map_at(std::slice::from_ref(&a), std::slice::from_ref(&b), 0.5);
    eprintln!(
        "INT8 vs FP32 on the photo (random weights: says nothing about the family): {} vs {} detections, mAP@0.5 {map:?}; output SQNR {:?}",
        b.len(),
        a.len(),
        q.report.output_sqnr_db
    );
}

#[test]
fn an_unknown_second_input_is_a_clear_error_naming_it_and_the_profile_field() {
    let mut graph = load_onnx(&read(dir().join("dfine/dfine_n_tiny.onnx"))).unwrap();
    let p = infer_profile_for(&graph).unwrap().profile;
    // The same model with its second input renamed to something qplay cannot read.
    for n in graph.nodes.iter_mut() {
        n.inputs.iter_mut().filter(|i| *i == "orig_target_sizes").for_each(|i| *i = "mystery".into());
    }
    graph.inputs[1].name = "mystery".into();
    let e = infer_profile_for(&graph).unwrap_err().to_string();
    assert!(e.contains("`mystery` [?, 2]") && e.contains("`aux_inputs`") && e.contains("input_wh"), "{e}");
    let e = Detector::from_graph(graph.clone(), Some(Profile { aux_inputs: Default::default(), ..p.clone() }))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`mystery`") && e.contains("`aux_inputs`"), "{e}");
    // The old name, which the model no longer has.
    let e = Detector::from_graph(graph.clone(), Some(p.clone())).unwrap_err().to_string();
    assert!(e.contains("`mystery`") && e.contains("`aux_inputs`"), "{e}");
    // Described in the profile, it runs: as a kind, or as constant values.
    for a in [r#""input_wh""#, "[320, 320]"] {
        let json = p.to_json().replace(r#""orig_target_sizes": "input_wh""#, &format!(r#""mystery": {a}"#));
        let p2 = Profile::from_json(&json).unwrap();
        assert!(p2.aux_inputs.contains_key("mystery"), "{json}");
        let mut det = Detector::from_graph(graph.clone(), Some(p2)).unwrap();
        let (w, h, rgba) = photo();
        assert!(!det.detect_rgba(w, h, &rgba).unwrap().is_empty());
    }
    // Values that do not fit the input's shape, and an `aux_inputs` entry naming no input.
    let bad = Profile { aux_inputs: [("mystery".to_string(), AuxInput::Values(vec![1.0; 3]))].into(), ..p.clone() };
    let e = Detector::from_graph(graph.clone(), Some(bad)).unwrap_err().to_string();
    assert!(e.contains("`aux_inputs.mystery`") && e.contains("3 values"), "{e}");
    let graph = load_onnx(&read(dir().join("dfine/dfine_n_tiny.onnx"))).unwrap();
    let extra = Profile {
        aux_inputs: [
            ("orig_target_sizes".to_string(), AuxInput::Kind(AuxKind::InputWh)),
            ("nothing".to_string(), AuxInput::Kind(AuxKind::UnitScale)),
        ]
        .into(),
        ..p
    };
    let e = Detector::from_graph(graph, Some(extra)).unwrap_err().to_string();
    assert!(e.contains("`nothing`, which is not an input"), "{e}");
}
