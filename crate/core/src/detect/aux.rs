//! Inputs besides the image: exports with their post-processing inside often take the image's
//! geometry as a second input — D-FINE and RT-DETR (`tools/export_onnx.py`) `orig_target_sizes`
//! `[N, 2]` (`[w, h]`, by which the post-processor scales its normalised boxes to pixels),
//! PaddleDetection `im_shape` (`[h, w]`) and `scale_factor` (`[sy, sx]`).
//!
//! qplay feeds them values that make the outputs come out in model-input pixels (the input's
//! own `[W, H]`; a scale of 1), so the one [`Transform`](super::Transform) of the pre-processing
//! maps boxes to the photo as for any other model. The profile says what each gets
//! ([`Profile::aux_inputs`]); [`recognise`] proposes it from the name and shape; [`aux_tensors`]
//! builds the values in the input's shape and element type, and [`bind_aux_inputs`] makes them
//! constants of the graph, so every executor, the pixel-scaling probe and calibration run the
//! model with the image as its one input.

use super::profile::{AuxInput, AuxKind, Profile};
use super::DetectError;
use crate::model::{Graph, Tensor, ValueInfo};

/// The kind of a geometry input, from its name (case-insensitive) and shape (two values, with
/// an optional leading batch dimension); `None` when it is not one qplay knows.
pub fn recognise(v: &ValueInfo) -> Option<AuxKind> {
    let two = matches!(v.shape.as_slice(), [Some(2)] | [_, Some(2)] | [_, None] | [None]);
    if !two || !matches!(v.elem_type, 1 | 6 | 7) {
        return None;
    }
    let n = v.name.to_ascii_lowercase();
    let has = |hints: &[&str]| hints.iter().any(|h| n.contains(h));
    if has(&["orig_target_size", "orig_size", "target_size", "orig_image_size"]) {
        Some(AuxKind::InputWh)
    } else if has(&["im_shape", "image_shape", "img_shape"]) {
        Some(AuxKind::InputHw)
    } else if has(&["scale_factor"]) {
        Some(AuxKind::UnitScale)
    } else {
        None
    }
}

fn fmt_shape(s: &[Option<usize>]) -> String {
    let d: Vec<String> = s.iter().map(|d| d.map_or("?".to_string(), |v| v.to_string())).collect();
    format!("[{}]", d.join(", "))
}

/// The error for an input besides the image that nothing says how to fill.
pub fn unfed(v: &ValueInfo, image: &str) -> DetectError {
    DetectError::UnfedInput {
        name: v.name.clone(),
        shape: fmt_shape(&v.shape),
        dtype: crate::model::tensor::onnx_dtype_name(v.elem_type).to_string(),
        image: image.to_string(),
    }
}

/// The values the profile gives each input besides the image, as tensors of the input's shape
/// (an unknown dimension is 1, or what the number of values makes it) and element type. An
/// error names an input the profile does not cover, an `aux_inputs` entry that is no input of
/// the model, or values that do not fit.
pub fn aux_tensors(profile: &Profile, inputs: &[ValueInfo]) -> Result<Vec<(String, Tensor)>, DetectError> {
    let mut out = Vec::new();
    for v in inputs.iter().filter(|v| v.name != profile.input) {
        let Some(a) = profile.aux_inputs.get(&v.name) else { return Err(unfed(v, &profile.input)) };
        out.push((v.name.clone(), aux_tensor(v, a, profile.size)?));
    }
    if let Some(name) = profile.aux_inputs.keys().find(|k| !inputs.iter().any(|v| v.name == **k)) {
        let names: Vec<String> = inputs.iter().map(|v| format!("`{}`", v.name)).collect();
        return Err(DetectError::Profile(format!(
            "`aux_inputs` names `{name}`, which is not an input of the model (its inputs: {}): remove it",
            names.join(", ")
        )));
    }
    Ok(out)
}

/// Makes the graph's inputs besides the image constants holding the values the profile gives
/// them ([`aux_tensors`]); returns the inputs removed ([`Graph::unbind_inputs`] restores them).
pub fn bind_aux_inputs(graph: &mut Graph, profile: &Profile) -> Result<Vec<ValueInfo>, crate::Error> {
    let values = aux_tensors(profile, &graph.inputs)?;
    Ok(graph.bind_inputs(&values)?)
}

/// The value for one input `v` of a model whose image input is `size` (`[w, h]`), in the
/// input's shape and element type.
pub fn aux_tensor(v: &ValueInfo, a: &AuxInput, size: [usize; 2]) -> Result<Tensor, DetectError> {
    let values = match a {
        AuxInput::Kind(k) => k.values(size),
        AuxInput::Values(x) => x.clone(),
    };
    let bad = |why: String| DetectError::Profile(format!("`aux_inputs.{}`: {why}", v.name));
    // Unknown dimensions: a leading one is the batch (1); one other takes what is left.
    let mut shape: Vec<Option<usize>> = v.shape.clone();
    if shape.len() > 1 && shape[0].is_none() {
        shape[0] = Some(1);
    }
    let known: usize = shape.iter().flatten().product();
    let unknown = shape.iter().filter(|d| d.is_none()).count();
    let shape: Vec<usize> = match unknown {
        0 => shape.into_iter().flatten().collect(),
        1 if known > 0 && values.len() % known == 0 => {
            shape.into_iter().map(|d| d.unwrap_or(values.len() / known)).collect()
        }
        _ => {
            return Err(bad(format!(
                "the input's shape {} is not fixed enough to hold the values",
                fmt_shape(&v.shape)
            )))
        }
    };
    let n: usize = shape.iter().product();
    if n != values.len() {
        return Err(bad(format!("{} values given but the input is {:?} ({n} values)", values.len(), shape)));
    }
    let t = match v.elem_type {
        1 => Tensor::f32(shape, values.iter().map(|&x| x as f32).collect()),
        7 => Tensor::i64(shape, values.iter().map(|&x| x.round() as i64).collect()),
        6 => Tensor::i32(shape, values.iter().map(|&x| x.round() as i32).collect()),
        t => {
            return Err(bad(format!(
                "the input is {}: qplay feeds float32, int64 or int32 inputs",
                crate::model::tensor::onnx_dtype_name(t)
            )))
        }
    }
    .map_err(|e| bad(e.to_string()))?;
    Ok(t)
}
