//! TFLite's `TFLite_Detection_PostProcess` custom op against LiteRT (tests/fixtures/tflite_ssd,
//! made by tests/fixtures/make_tflite_ssd_fixtures.py with TFLiteConverter and LiteRT's
//! reference kernels): a small SSD ending in the op, with the fast NMS (one and two classes per
//! detection) and the regular NMS, on a photo; the op alone on tied scores; the detector picks
//! the op's outputs up with no configuration; bad options are clear load errors.

use qplay_core::detect::{decode, infer_profile_for, BoxFormat, Decoder};
use qplay_core::model::{load_tflite, npy::read_npy, Graph, ModelError, OpKind, Plan, Tensor};
use qplay_core::ops::Registry;
use serde_json::Value;
use std::path::PathBuf;

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tflite_ssd").join(rel);
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run tests/fixtures/make_tflite_ssd_fixtures.py)", p.display()))
}

fn meta() -> Value {
    serde_json::from_slice(&fixture("meta.json")).unwrap()
}

const OUTPUTS: [&str; 4] = ["boxes", "classes", "scores", "num"];

/// Loads `<file>.tflite`, runs it on `feeds` (input-name part → npy file in `dir`), and returns
/// the outputs by the op's output order with LiteRT's.
fn run(file: &str, dir: &str, feeds: &[(&str, &str)]) -> (Graph, Vec<(String, Tensor)>, Vec<Tensor>) {
    let g = load_tflite(&fixture(&format!("{file}.tflite"))).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(g.nodes.iter().any(|n| n.is(OpKind::TfliteDetectionPostProcess)), "{file}");
    let inputs: Vec<(String, Tensor)> = g
        .inputs
        .iter()
        .map(|i| {
            let (_, f) = feeds.iter().find(|(k, _)| i.name.contains(k)).unwrap_or_else(|| panic!("input {}", i.name));
            (i.name.clone(), read_npy(&fixture(f)).unwrap())
        })
        .collect();
    let plan = Plan::new(&g, &Registry::new(), &[]).unwrap_or_else(|e| panic!("{file}: {e}"));
    let outs = plan.run(&inputs).unwrap_or_else(|e| panic!("{file}: {e}"));
    let by_name: Vec<(String, Tensor)> = plan.output_names().into_iter().map(String::from).zip(outs).collect();
    let m = meta();
    let mut ours = Vec::new();
    let mut litert = Vec::new();
    for what in OUTPUTS {
        let name = m[file.trim_start_matches("ssd_")]["outputs"][what].as_str().unwrap().to_string();
        let t = by_name.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("{file}: no output {name}"));
        ours.push(t.clone());
        litert.push(read_npy(&fixture(&format!("{dir}/{what}.npy"))).unwrap());
    }
    (g, ours, litert)
}

/// Compares the meaningful rows (LiteRT leaves the fast path's rows past the count unwritten):
/// the count and classes equal, boxes and scores within `tol`; returns the largest box and
/// score differences.
fn compare(
    name: &str,
    ours: &[(String, Tensor)],
    litert: &[Tensor],
    per: usize,
    regular: bool,
    tol: f32,
) -> (f32, f32) {
    for (k, (_, t)) in ours.iter().enumerate() {
        assert_eq!(t.shape, litert[k].shape, "{name} {}", OUTPUTS[k]);
    }
    let num = ours[3].1.as_f32().unwrap()[0];
    assert_eq!(num, litert[3].as_f32().unwrap()[0], "{name}: num_detections");
    assert!(num > 0.0, "{name}: the fixture detects something");
    let rows = if regular { ours[1].1.len() } else { num as usize * per };
    let (b, wb) = (ours[0].1.as_f32().unwrap(), litert[0].as_f32().unwrap());
    let (c, wc) = (ours[1].1.as_f32().unwrap(), litert[1].as_f32().unwrap());
    let (s, ws) = (ours[2].1.as_f32().unwrap(), litert[2].as_f32().unwrap());
    let box_diff = (0..rows * 4).map(|i| (b[i] - wb[i]).abs()).fold(0f32, f32::max);
    let score_diff = (0..rows).map(|i| (s[i] - ws[i]).abs()).fold(0f32, f32::max);
    assert_eq!(&c[..rows], &wc[..rows], "{name}: classes");
    assert!(box_diff <= tol && score_diff <= tol, "{name}: boxes differ by {box_diff}, scores by {score_diff}");
    eprintln!("{name}: {num} detections, {rows} rows: max |box − LiteRT| = {box_diff:.2e}, max |score − LiteRT| = {score_diff:.2e}");
    (box_diff, score_diff)
}

fn ssd(variant: &str) -> (Graph, Vec<(String, Tensor)>) {
    let (g, ours, litert) = run(&format!("ssd_{variant}"), variant, &[("image", "input.npy")]);
    let o = &meta()[variant]["options"];
    let per = o["max_classes_per_detection"].as_u64().unwrap() as usize;
    // The file leaves the op's output shapes unknown; the loader fills them in from the options.
    let m = Some(o["max_detections"].as_u64().unwrap() as usize * per);
    let boxes = meta()[variant]["outputs"]["boxes"].as_str().unwrap().to_string();
    let count = meta()[variant]["outputs"]["num"].as_str().unwrap().to_string();
    let shape = |n: &str| g.outputs.iter().find(|o| o.name == n).unwrap().shape.clone();
    assert_eq!((shape(&boxes), shape(&count)), (vec![Some(1), m, Some(4)], vec![Some(1)]), "{variant}");
    // The scores come through the float network (qplay's kernels, another summation order).
    compare(variant, &ours, &litert, per, o["use_regular_nms"].as_bool().unwrap(), 1e-4);
    (g, ours)
}

#[test]
fn fast_nms_matches_litert() {
    ssd("fast");
}

#[test]
fn fast_nms_with_two_classes_per_detection_matches_litert() {
    ssd("fast2");
}

#[test]
fn regular_nms_matches_litert() {
    ssd("regular");
}

/// `ssd_fast` post-training quantized by the converter (int8 before the op, float interface):
/// every output value equal to LiteRT's.
#[test]
fn an_int8_twin_with_the_op_matches_litert_in_every_value() {
    let (_, ours, litert) = run("ssd_fast_int8", "fast_int8", &[("image", "input.npy")]);
    compare("fast_int8", &ours, &litert, 1, false, 0.0);
}

/// The TF1 Object Detection API's quantized export (the form of the TFLite examples'
/// `detect.tflite` and Coral's CPU SSDs): uint8 activations and weights, the op reading uint8
/// box encodings, class predictions and anchors. Everything before the op is integer arithmetic
/// equal to LiteRT's, the op's dequantization is LiteRT's: every output value equal; and the
/// detector reads it with no configuration.
#[test]
fn a_uint8_ssd_with_the_op_matches_litert_in_every_value() {
    let (g, ours, litert) = run("ssd_uint8", "uint8", &[("normalized_input_image_tensor", "input.npy")]);
    compare("uint8", &ours, &litert, 1, false, 0.0);
    let auto = infer_profile_for(&g).unwrap();
    assert!(matches!(auto.profile.decoder, Decoder::Detections(_)), "{:?}", auto.profile.decoder);
    assert_eq!(auto.profile.size, [64, 64]);
    // Its input is uint8 codes, which apps fill with the raw pixels: the pixel scaling is the
    // codes' own, (pixel − zero point)·scale, said and not probed.
    let (_, s, z) = g.nodes.iter().find_map(|n| n.tflite_quantize()).unwrap();
    assert!((auto.profile.mean[0] - z as f32 / 255.0).abs() < 1e-6, "{:?}", auto.profile.mean);
    assert!((auto.profile.std[0] - 1.0 / (255.0 * s)).abs() < 1e-6, "{:?}", auto.profile.std);
    assert!(auto.scaling_known);
    let said = auto.assumed.join("\n");
    assert!(said.contains(&format!("(pixel − {z})·{s}")) && said.contains("as the file's uint8 input"), "{said}");
}

/// The op alone on LiteRT's own inputs: scores in multiples of 1/8 with many ties, so the order
/// of equal scores (stable sort, first arg-max, libstdc++'s partial sort) is tested; every
/// value equal.
#[test]
fn tied_scores_come_out_in_litert_order() {
    for (variant, regular) in [("fast2", false), ("regular", true)] {
        let name = format!("ops_{variant}");
        let feeds = [
            ("box_encodings", format!("{name}/box_encodings.npy")),
            ("class_predictions", format!("{name}/class_predictions.npy")),
        ];
        let feeds: Vec<(&str, &str)> = feeds.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (_, ours, litert) = run(&name, &name, &feeds);
        compare(&name, &ours, &litert, 2, regular, 0.0);
    }
}

/// The graph ends in the op: the detector reads its four outputs as boxes (y1, x1, y2, x2
/// fractions), classes (0-based), scores and count with no configuration, and its boxes are
/// LiteRT's in pixels.
#[test]
fn the_detector_reads_the_ops_outputs_with_no_configuration() {
    for variant in ["fast", "regular"] {
        let (g, ours) = ssd(variant);
        let auto = infer_profile_for(&g).unwrap();
        let p = &auto.profile;
        let Decoder::Detections(d) = &p.decoder else { panic!("{:?}", p.decoder) };
        let names = &meta()[variant]["outputs"];
        let name = |k: &str| names[k].as_str().unwrap().to_string();
        assert_eq!(
            (&d.boxes_output, &d.scores_output, &d.classes_output, &d.count_output),
            (&name("boxes"), &name("scores"), &Some(name("classes")), &Some(name("num")))
        );
        assert_eq!((d.box_format, d.normalized, d.first_class), (BoxFormat::Yxyx, true, 0));
        assert_eq!(p.size, [64, 64]);
        assert!(auto.alternatives.is_empty(), "the op says which output is which: {:?}", auto.alternatives);
        assert!(auto.assumed.iter().any(|a| a.contains("TFLite_Detection_PostProcess")), "{:?}", auto.assumed);

        let litert: Vec<Tensor> =
            OUTPUTS.iter().map(|w| read_npy(&fixture(&format!("{variant}/{w}.npy"))).unwrap()).collect();
        let p = qplay_core::detect::Profile { score_threshold: 0.0, ..p.clone() };
        let got = decode::decode(&p, &ours).unwrap();
        let num = litert[3].as_f32().unwrap()[0] as usize;
        assert_eq!(got.len(), num, "{variant}");
        let (wb, wc, ws) = (litert[0].as_f32().unwrap(), litert[1].as_f32().unwrap(), litert[2].as_f32().unwrap());
        let mut worst = 0f32;
        for (i, det) in got.iter().enumerate() {
            assert_eq!(det.class, wc[i] as usize, "{variant} {i}: class");
            assert!((det.score - ws[i]).abs() <= 1e-4, "{variant} {i}: score");
            let want = [wb[i * 4 + 1] * 64.0, wb[i * 4] * 64.0, wb[i * 4 + 3] * 64.0, wb[i * 4 + 2] * 64.0];
            worst = det.bbox.iter().zip(want).fold(worst, |w, (a, b)| w.max((a - b).abs()));
        }
        eprintln!("{variant}: {} detections, max |pixel box − LiteRT's × 64| = {worst:.2e}", got.len());
        assert!(worst <= 1e-2, "{variant}: {worst}");
    }
}

/// The regular-NMS op's FlexBuffer `custom_options` inside the file: its byte range.
fn options_range(file: &[u8]) -> std::ops::Range<usize> {
    let start = file.windows(15).position(|w| w == b"max_detections\0").expect("the options' first key");
    let len = u32::from_le_bytes(file[start - 4..start].try_into().unwrap()) as usize;
    start..start + len
}

fn load_err(bytes: &[u8]) -> String {
    match load_tflite(bytes) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_options_are_clear_errors_naming_the_op() {
    let file = fixture("ops_regular.tflite");
    let r = options_range(&file);
    assert!(load_tflite(&file).is_ok());

    // Truncated: the options vector's length cut (the FlexBuffer ends in the middle of its keys).
    for cut in [1, 20, 100, 200] {
        let mut f = file.clone();
        f[r.start - 4..r.start].copy_from_slice(&(cut as u32).to_le_bytes());
        let e = load_err(&f);
        assert!(e.contains("TFLite_Detection_PostProcess") && e.contains("custom_options"), "{cut}: {e}");
    }
    // A key renamed: missing.
    let mut f = file.clone();
    let k = r.start + f[r.clone()].windows(11).position(|w| w == b"num_classes").unwrap();
    f[k + 4] = b'k';
    let e = load_err(&f);
    assert!(e.contains("TFLite_Detection_PostProcess") && e.contains("`num_classes`"), "{e}");
    // max_detections 1e9: refused before anything is allocated.
    let mut f = file.clone();
    let blob = &f[r.clone()];
    let root = blob.len() - 3;
    let values = root - blob[root] as usize;
    let at = r.start + values + 2 * 4; // keys sorted: h_scale, max_classes_per_detection, max_detections, …
    assert_eq!(u32::from_le_bytes(f[at..at + 4].try_into().unwrap()), 12);
    f[at..at + 4].copy_from_slice(&1_000_000_000u32.to_le_bytes());
    assert_eq!(load_tflite(&f).unwrap_err().code(), "limit");
    let e = load_err(&f);
    assert!(e.contains("TFLite_Detection_PostProcess") && e.contains("max_detections") && e.contains("limit"), "{e}");
    // A negative count and an IoU threshold out of (0, 1].
    let mut f = file.clone();
    f[at..at + 4].copy_from_slice(&(-3i32).to_le_bytes());
    assert!(load_err(&f).contains("`max_detections` is -3"));
    // Every byte of the options corrupted: an error or a model, never a panic.
    for i in r.clone() {
        for v in [0u8, 1, 0x80, 0xff] {
            let mut f = file.clone();
            f[i] = v;
            let _ = load_tflite(&f);
        }
    }
}

#[test]
fn another_custom_op_is_listed_as_unsupported() {
    let mut f = fixture("ops_regular.tflite");
    let at = f.windows(28).position(|w| w == b"TFLite_Detection_PostProcess").unwrap();
    f[at..at + 28].copy_from_slice(b"TFLite_Detection_PostProcesZ");
    let e = load_tflite(&f).unwrap_err();
    let ModelError::UnsupportedTfliteOps(list) = &e else { panic!("{e:?}") };
    assert_eq!(list.len(), 1);
    assert!(list[0].0.contains("custom op TFLite_Detection_PostProcesZ"), "{list:?}");
    assert_eq!(e.code(), "unsupported-op");
    // The advice is for a TFLite file, not an ONNX one.
    let text = e.to_string();
    assert!(text.contains("TFLiteConverter") && text.contains("tf2onnx") && !text.contains("opset"), "{text}");

    // A model compiled for the Coral Edge TPU (its layers in `edgetpu-custom-op`): told to open
    // the CPU model it came from, not to re-convert.
    let mut f = fixture("ops_regular.tflite");
    let name = b"edgetpu-custom-op";
    f[at - 4..at].copy_from_slice(&(name.len() as u32).to_le_bytes());
    f[at..at + name.len()].copy_from_slice(name);
    f[at + name.len()] = 0;
    let e = load_tflite(&f).unwrap_err();
    assert_eq!(e.code(), "unsupported-op");
    let text = e.to_string();
    assert!(text.contains("custom op `edgetpu-custom-op`") && text.contains("Coral Edge TPU"), "{text}");
    assert!(text.contains("edgetpu_compiler") && !text.contains("tf2onnx"), "{text}");
}
