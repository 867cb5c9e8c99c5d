//! Shared by the model subcommands: reading files with messages that say which file failed.

use qplay_core::detect::{Detector, Profile};
use std::path::{Path, PathBuf};

/// Reads a whole file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A model file's bytes, self-contained: an ONNX model that keeps tensors in files beside it
/// (PyTorch's exporter writes `model.onnx.data` by default) gets them put inside, read from the
/// model's folder. A location outside that folder (absolute, or with `..`) is refused, as
/// onnxruntime refuses it.
pub fn read_model(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = read(path)?;
    let locations = qplay_core::model::external_data_files(&bytes);
    if locations.is_empty() {
        return Ok(bytes);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut files = std::collections::HashMap::new();
    for loc in locations {
        if !qplay_core::model::is_safe_location(&loc) {
            return Err(format!(
                "{}: a tensor keeps its data in `{loc}`, outside the model's folder: refused (re-save the model with its data beside it)",
                path.display()
            ));
        }
        let data = std::fs::read(dir.join(&loc)).map_err(|e| {
            format!(
                "{}: the model keeps its weights in `{loc}` beside it, which cannot be read ({e}): keep that file with the model",
                path.display()
            )
        })?;
        files.insert(loc, data);
    }
    qplay_core::model::inline_external_data(&bytes, &files).map_err(|e| format!("{}: {e}", path.display()))
}

/// The profile for a model: `--profile FILE` if given, else `MODEL.json` beside the model if it
/// exists (the built-in models ship that way), else `None` (auto-detect).
pub fn profile_for(model: &Path, explicit: Option<&str>) -> Result<(Option<Profile>, String), String> {
    let path = match explicit {
        Some(p) => Some(PathBuf::from(p)),
        None => Some(model.with_extension("json")).filter(|p| p.is_file()),
    };
    match path {
        Some(p) => {
            let text = String::from_utf8(read(&p)?).map_err(|_| format!("{} is not UTF-8 text", p.display()))?;
            let prof = Profile::from_json(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok((Some(prof), p.display().to_string()))
        }
        None => Ok((None, "auto-detected from the output shapes".into())),
    }
}

/// Loads a model as a detector with its profile.
pub fn detector(model: &Path, profile: Option<&str>) -> Result<(Detector, String), String> {
    let bytes = read_model(model)?;
    let (prof, source) = profile_for(model, profile)?;
    let det = Detector::new(&bytes, prof).map_err(|e| format!("{}: {e}", model.display()))?;
    Ok((det, source))
}

/// Decodes a PNG or JPEG into RGBA pixels.
pub fn read_image(path: &Path) -> Result<(usize, usize, Vec<u8>), String> {
    let bytes = read(path)?;
    let img = image::load_from_memory(&bytes)
        .map_err(|e| format!("cannot decode {} as PNG or JPEG: {e}", path.display()))?
        .to_rgba8();
    Ok((img.width() as usize, img.height() as usize, img.into_raw()))
}

/// Median of a list of durations in milliseconds.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}
