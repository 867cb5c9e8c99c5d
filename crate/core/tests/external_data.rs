//! Models that keep tensors in a file beside the `.onnx` (external data): PyTorch's exporter
//! does so by default (`tests/fixtures/torch_ops/external_data/`: `model.onnx` and
//! `model.onnx.data`, written by `torch.onnx.export(..., dynamo=True)` with its defaults, by
//! `make_torch_ops_fixtures.py`). Without the file the loader names it; with it, the model runs
//! as onnxruntime ran it; broken or hostile entries are clear errors, never panics.

use prost::Message;
use qplay_core::model::proto::{ModelProto, StringStringEntryProto};
use qplay_core::model::{
    external_data_files, inline_external_data, is_safe_location, load_model, npy::read_npy, ModelError, Plan,
};
use qplay_core::ops::Registry;
use std::collections::HashMap;
use std::path::PathBuf;

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/torch_ops").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn files(data: Vec<u8>) -> HashMap<String, Vec<u8>> {
    HashMap::from([("model.onnx.data".to_string(), data)])
}

#[test]
fn a_pytorch_export_with_external_data_runs_once_its_data_file_is_given() {
    let bytes = fixture("external_data/model.onnx");
    // Alone, the model names the file it needs.
    let e = load_model(&bytes).unwrap_err();
    assert!(matches!(&e, ModelError::ExternalData { location, .. } if location == "model.onnx.data"), "{e:?}");
    assert!(e.to_string().contains("`model.onnx.data`") && e.to_string().contains("beside the model"), "{e}");
    assert_eq!(e.code(), "bad-model");
    assert_eq!(external_data_files(&bytes), ["model.onnx.data"]);

    // With it: a self-contained model, equal to onnxruntime's outputs on the fixture's input.
    let inlined = inline_external_data(&bytes, &files(fixture("external_data/model.onnx.data"))).unwrap();
    assert!(external_data_files(&inlined).is_empty());
    let g = load_model(&inlined).unwrap();
    let x = read_npy(&fixture("external_data/input.npy")).unwrap();
    let input = g.inputs[0].name.clone();
    let plan = Plan::new(&g, &Registry::new(), &[(input.clone(), x.shape.clone())]).unwrap();
    let ys = plan.run(&[(input, x)]).unwrap();
    for (k, y) in ys.iter().enumerate() {
        let want = read_npy(&fixture(&format!("external_data/ort_{k}.npy"))).unwrap();
        assert_eq!(y.shape, want.shape);
        let d = y.as_f32().unwrap().iter().zip(want.as_f32().unwrap()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(d < 1e-5, "output {k}: max |qplay − onnxruntime| {d:e}");
    }
}

#[test]
fn self_contained_models_and_other_bytes_name_no_external_files() {
    assert!(external_data_files(&fixture("vit_detector.onnx")).is_empty());
    let tflite =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tflite/cnn.tflite"));
    assert!(external_data_files(&tflite.unwrap()).is_empty());
    assert!(external_data_files(b"location, location, location").is_empty());
    assert!(external_data_files(&[]).is_empty());
    // Inlining a self-contained model changes nothing a loader reads.
    let own = fixture("vit_detector.onnx");
    let again = inline_external_data(&own, &HashMap::new()).unwrap();
    assert_eq!(load_model(&again).unwrap().nodes.len(), load_model(&own).unwrap().nodes.len());
}

/// The fixture with its first external tensor's `key` entry set to `value` (added if absent).
fn with_entry(key: &str, value: &str) -> Vec<u8> {
    let mut m = ModelProto::decode(fixture("external_data/model.onnx").as_slice()).unwrap();
    let t = m.graph.as_mut().unwrap().initializer.iter_mut().find(|t| !t.external_data.is_empty()).unwrap();
    match t.external_data.iter_mut().find(|e| e.key == key) {
        Some(e) => e.value = value.into(),
        None => t.external_data.push(StringStringEntryProto { key: key.into(), value: value.into() }),
    }
    m.encode_to_vec()
}

#[test]
fn broken_external_data_is_a_clear_error() {
    let bytes = fixture("external_data/model.onnx");
    let data = fixture("external_data/model.onnx.data");
    let msg = |r: Result<Vec<u8>, ModelError>| r.map(|_| String::from("inlined")).unwrap_or_else(|e| e.to_string());
    // A truncated data file, or another model's: the tensors do not fit in it.
    let half = files(data[..data.len() / 2].to_vec());
    assert!(
        msg(inline_external_data(&bytes, &half)).contains("the file is truncated or not this model's"),
        "{}",
        msg(inline_external_data(&bytes, &half))
    );
    assert!(msg(inline_external_data(&bytes, &files(Vec::new()))).contains("truncated"));
    // No data file at all.
    assert!(matches!(inline_external_data(&bytes, &HashMap::new()), Err(ModelError::ExternalData { .. })));
    // Entries that are no byte counts, or point past the end (no overflow, no panic).
    let e = msg(inline_external_data(&with_entry("offset", "-8"), &files(data.clone())));
    assert!(e.contains("offset `-8` is not a byte count"), "{e}");
    let e = msg(inline_external_data(&with_entry("length", "lots"), &files(data.clone())));
    assert!(e.contains("length `lots` is not a byte count"), "{e}");
    let huge = usize::MAX.to_string();
    for key in ["offset", "length"] {
        let e = msg(inline_external_data(&with_entry(key, &huge), &files(data.clone())));
        assert!(e.contains("truncated"), "{key}: {e}");
    }
    // A length that disagrees with the tensor's dims: the loader's size check.
    let short = inline_external_data(&with_entry("length", "4"), &files(data.clone())).unwrap();
    let e = load_model(&short).unwrap_err();
    assert!(matches!(e, ModelError::BadTensor { .. }), "{e}");
    // A tensor that says its data is elsewhere but names no file.
    let mut m = ModelProto::decode(bytes.as_slice()).unwrap();
    let t = m.graph.as_mut().unwrap().initializer.iter_mut().find(|t| !t.external_data.is_empty()).unwrap();
    t.external_data.retain(|e| e.key != "location");
    let nameless = m.encode_to_vec();
    assert_eq!(external_data_files(&nameless), ["model.onnx.data"], "the other tensors still name theirs");
    let e = msg(inline_external_data(&nameless, &files(data.clone())));
    assert!(e.contains("names none (no `location`): the model is damaged"), "{e}");
    // Not an ONNX model at all.
    assert!(matches!(inline_external_data(b"\xff\xff\xff", &HashMap::new()), Err(ModelError::NotOnnx(_))));
}

#[test]
fn only_locations_inside_the_model_folder_are_safe() {
    for ok in ["model.onnx.data", "weights/w.bin", "./w.bin", "a/./b.bin"] {
        assert!(is_safe_location(ok), "{ok}");
    }
    for bad in ["", "../w.bin", "a/../../w.bin", "/etc/passwd", "C:\\w.bin", "c:w.bin", "a\\..\\b", ".."] {
        assert!(!is_safe_location(bad), "{bad}");
    }
}

/// Damaged copies of the model (bytes flipped, cut short) go through listing and inlining with
/// the real data file: `Ok` or a clean error, never a panic.
#[test]
fn damaged_models_with_external_data_never_panic() {
    let bytes = fixture("external_data/model.onnx");
    let data = files(fixture("external_data/model.onnx.data"));
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..300 {
        let mut b = bytes.clone();
        if round % 3 == 0 {
            b.truncate((next() as usize) % b.len());
        }
        for _ in 0..1 + round % 8 {
            let at = (next() as usize) % b.len().max(1);
            if let Some(x) = b.get_mut(at) {
                *x ^= (next() % 255 + 1) as u8;
            }
        }
        let _ = external_data_files(&b);
        if let Ok(inlined) = inline_external_data(&b, &data) {
            let _ = load_model(&inlined);
        }
    }
}
