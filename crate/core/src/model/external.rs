//! Tensors kept outside the `.onnx` file (`data_location = EXTERNAL`): PyTorch's exporter
//! writes `model.onnx` and `model.onnx.data` by default, and `onnx.save(…,
//! save_as_external_data=True)` does so for any model. Each such tensor names a `location` (a
//! file path relative to the model's folder), an `offset` and a `length` in it.
//!
//! [`external_data_files`] lists the files a model needs; [`inline_external_data`] puts their
//! bytes inside the model (`raw_data`), so the result is an ordinary self-contained `.onnx`
//! that every loader and flow takes as it is. The CLI reads the files from the model's folder
//! ([`is_safe_location`]: no absolute paths, no `..`); the page takes them from the files the
//! user chose or dropped with the model.

use super::proto::{data_location, GraphProto, ModelProto, TensorProto};
use super::ModelError;
use prost::Message;
use std::collections::HashMap;

/// The external-data entry of `t` under `key`.
fn entry<'a>(t: &'a TensorProto, key: &str) -> Option<&'a str> {
    t.external_data.iter().find(|e| e.key == key).map(|e| e.value.as_str())
}

/// Whether `t` keeps its data in another file.
pub(super) fn is_external(t: &TensorProto) -> bool {
    t.data_location == data_location::EXTERNAL || !t.external_data.is_empty()
}

/// The file `t` keeps its data in (empty when it names none).
pub(super) fn location(t: &TensorProto) -> &str {
    entry(t, "location").unwrap_or("")
}

/// Every tensor of a graph, its subgraphs' included, mutably.
fn for_each_tensor(
    g: &mut GraphProto,
    f: &mut dyn FnMut(&mut TensorProto) -> Result<(), ModelError>,
) -> Result<(), ModelError> {
    for t in &mut g.initializer {
        f(t)?;
    }
    for n in &mut g.node {
        for a in &mut n.attribute {
            if let Some(t) = a.t.as_mut() {
                f(t)?;
            }
            for t in &mut a.tensors {
                f(t)?;
            }
            if let Some(sub) = a.g.as_mut() {
                for_each_tensor(sub, f)?;
            }
            for sub in &mut a.graphs {
                for_each_tensor(sub, f)?;
            }
        }
    }
    Ok(())
}

/// The files an ONNX model's tensors keep their data in (their `location`s, each once, in the
/// order the model first names them); empty for a self-contained model, a TFLite model or bytes
/// that are no ONNX model (the loader says what is wrong with those, and
/// [`inline_external_data`] with a tensor that names no file).
pub fn external_data_files(bytes: &[u8]) -> Vec<String> {
    // Every external tensor has a "location" key; without the word the decode can be skipped.
    if super::is_tflite(bytes) || !bytes.windows(8).any(|w| w == b"location") {
        return Vec::new();
    }
    let Ok(mut model) = ModelProto::decode(bytes) else { return Vec::new() };
    let mut files: Vec<String> = Vec::new();
    if let Some(g) = model.graph.as_mut() {
        let _ = for_each_tensor(g, &mut |t| {
            let loc = location(t);
            if is_external(t) && !loc.is_empty() && !files.iter().any(|f| f == loc) {
                files.push(loc.to_string());
            }
            Ok(())
        });
    }
    files
}

/// Whether a `location` stays inside the model's folder: relative, with no `..`, no root, no
/// drive, and no empty path (ONNX's rule; onnxruntime refuses the others too).
pub fn is_safe_location(location: &str) -> bool {
    let p = std::path::Path::new(location);
    !location.is_empty()
        && !location.contains('\\')
        && !location.contains(':')
        && p.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir))
}

/// The model with every external tensor's bytes put inside it: `files` maps each `location`
/// ([`external_data_files`]) to that file's bytes. Each tensor's `offset` and `length` must lie
/// within its file. The result is a self-contained `.onnx` (only the parts of the format qplay
/// reads are written back: doc strings, functions and training info are dropped).
pub fn inline_external_data(bytes: &[u8], files: &HashMap<String, Vec<u8>>) -> Result<Vec<u8>, ModelError> {
    let mut model = ModelProto::decode(bytes).map_err(|e| {
        ModelError::NotOnnx(format!(
            "the data does not decode as an ONNX protobuf ({e}); check that the file is a complete `.onnx` model"
        ))
    })?;
    let Some(g) = model.graph.as_mut() else { return Ok(bytes.to_vec()) };
    for_each_tensor(g, &mut |t| {
        if !is_external(t) {
            return Ok(());
        }
        let bad = |reason: String| ModelError::BadTensor { name: t.name.clone(), reason };
        let loc = location(t);
        if loc.is_empty() {
            return Err(bad("it keeps its data in an external file but names none (no `location`): the model is damaged; export it again".into()));
        }
        let Some(file) = files.get(loc) else {
            return Err(ModelError::ExternalData { tensor: t.name.clone(), location: loc.to_string() });
        };
        let number = |key: &str| -> Result<Option<usize>, ModelError> {
            entry(t, key)
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .map_err(|_| bad(format!("its external-data {key} `{v}` is not a byte count")))
                })
                .transpose()
        };
        let offset = number("offset")?.unwrap_or(0);
        let length = match number("length")? {
            Some(n) => n,
            None => file.len().saturating_sub(offset),
        };
        let end = offset.checked_add(length).filter(|&e| e <= file.len()).ok_or_else(|| {
            bad(format!(
                "its data lies at bytes {offset}…{} of `{loc}`, which has {} bytes: the file is truncated or not this model's",
                offset.saturating_add(length),
                file.len()
            ))
        })?;
        t.raw_data = file[offset..end].to_vec();
        t.external_data.clear();
        t.data_location = data_location::DEFAULT;
        Ok(())
    })?;
    Ok(model.encode_to_vec())
}
