//! The files a model comes with: an ONNX model's tensors kept in files beside it (PyTorch's
//! exporter writes `model.onnx.data` by default), put inside it
//! ([`qplay_core::model::external`]) before the page loads it.

use crate::err;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;

/// The files an ONNX model keeps tensors in (their locations, relative to the model); empty for
/// a self-contained model.
#[wasm_bindgen(js_name = externalDataFiles)]
pub fn external_data_files(model: &[u8]) -> Vec<String> {
    qplay_core::model::external_data_files(model)
}

/// The model with those files' bytes put inside it: `files[i]` (a `Uint8Array`) is the file at
/// location `names[i]`. A file that is missing, truncated or another model's is an error that
/// names it.
#[wasm_bindgen(js_name = inlineExternalData)]
pub fn inline_external_data(model: &[u8], names: js_sys::Array, files: js_sys::Array) -> Result<Vec<u8>, JsValue> {
    let mut map = HashMap::new();
    for (name, file) in names.iter().zip(files.iter()) {
        let name = name.as_string().ok_or_else(|| err("a file name is not a string"))?;
        map.insert(name, js_sys::Uint8Array::new(&file).to_vec());
    }
    qplay_core::model::inline_external_data(model, &map).map_err(err)
}
