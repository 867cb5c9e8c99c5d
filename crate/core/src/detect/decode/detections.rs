//! Detections as separate tensors (TensorFlow Object Detection API exports, and many TF, TFLite
//! and ONNX detectors with post-processing inside): boxes `[1, M, 4]`, scores `[1, M]`, classes
//! `[1, M]` (float or integer ids), and a count `[1]` of valid rows; optionally keypoints
//! `[M, K, 2 | 3]` per box (torchvision's Keypoint R-CNN). The model has selected the boxes
//! already, so no NMS follows ([`Decoder::needs_nms`]).
//!
//! [`Decoder::needs_nms`]: crate::detect::Decoder::needs_nms

use super::{output, read_keypoints, shape_error};
use crate::detect::nms::Candidate;
use crate::detect::profile::{Detections, Profile};
use crate::detect::DetectError;
use crate::model::{Data, Tensor};

/// Decodes separate detection tensors.
pub fn decode(
    cfg: &Detections,
    profile: &Profile,
    outputs: &[(String, Tensor)],
) -> Result<Vec<Candidate>, DetectError> {
    let (bshape, boxes) = output(outputs, &cfg.boxes_output, "detections")?;
    let m = match bshape {
        [1, m, 4] | [m, 4] => *m,
        _ => return Err(shape_error("detections", &cfg.boxes_output, bshape, "[1, M, 4]: one box per detection")),
    };
    let (sshape, scores) = output(outputs, &cfg.scores_output, "detections")?;
    if sshape.iter().product::<usize>() != m || sshape.len() > 2 {
        return Err(shape_error("detections", &cfg.scores_output, sshape, format!("[1, {m}]: one score per box")));
    }
    let classes = match &cfg.classes_output {
        None => vec![0.0; m],
        Some(name) => {
            let t = tensor(outputs, name)?;
            let ids: Vec<f64> = match &t.data {
                Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
                Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
                Data::I32(v) => v.iter().map(|&x| x as f64).collect(),
                _ => return Err(DetectError::OutputDType { name: name.clone(), dtype: t.dtype() }),
            };
            if ids.len() != m || t.shape.len() > 2 {
                return Err(shape_error("detections", name, &t.shape, format!("[1, {m}]: one class id per box")));
            }
            ids
        }
    };
    let count = match &cfg.count_output {
        None => m,
        Some(name) => {
            let t = tensor(outputs, name)?;
            let n = match &t.data {
                Data::F32(v) if v.len() == 1 => v[0] as f64,
                Data::I64(v) if v.len() == 1 => v[0] as f64,
                Data::I32(v) if v.len() == 1 => v[0] as f64,
                _ => {
                    return Err(shape_error(
                        "detections",
                        name,
                        &t.shape,
                        "[1]: the number of valid detections (float or integer)",
                    ))
                }
            };
            if !(0.0..=m as f64).contains(&n) {
                return Err(DetectError::Profile(format!(
                    "detections: output `{name}` says {n} detections but `{}` holds {m} boxes: check that `count_output` is the count",
                    cfg.boxes_output
                )));
            }
            n as usize
        }
    };
    let scale = if cfg.normalized { [profile.size[0] as f32, profile.size[1] as f32] } else { [1.0, 1.0] };
    let keypoints = match &cfg.keypoints_output {
        None => None,
        Some(name) => {
            let (kshape, kp) = output(outputs, name, "detections")?;
            match kshape {
                [mm, k, d] | [1, mm, k, d] if *mm == m && (*d == 2 || *d == 3) => Some((kp, *k, *d)),
                _ => {
                    return Err(shape_error(
                        "detections",
                        name,
                        kshape,
                        format!("[{m}, K, 2 or 3]: K keypoints (x, y, visibility) per box"),
                    ))
                }
            }
        }
    };
    let mut out = Vec::new();
    for i in 0..count {
        let score = scores[i];
        if score < profile.score_threshold || score <= 0.0 {
            continue;
        }
        let id = classes[i];
        let first = cfg.first_class as f64;
        if !id.is_finite() || id < first || id > 1e6 || id.fract() != 0.0 {
            return Err(DetectError::Profile(format!(
                "detections: output `{}` has class id {id} at row {i}: ids must be whole numbers from `first_class` ({first}); \
                 check that `classes_output` holds class ids",
                cfg.classes_output.as_deref().unwrap_or("")
            )));
        }
        let b = &boxes[i * 4..i * 4 + 4];
        let (keypoints, keypoint_scores) = match keypoints {
            None => (Vec::new(), Vec::new()),
            Some((kp, k, d)) => {
                let (mut pts, vis) = read_keypoints(k, d, |j| kp[i * k * d + j]);
                pts.iter_mut().for_each(|p| *p = [p[0] * scale[0], p[1] * scale[1]]);
                (pts, vis)
            }
        };
        out.push(Candidate {
            class: (id - first) as usize,
            score,
            bbox: cfg.box_format.to_xyxy([b[0], b[1], b[2], b[3]], scale),
            keypoints,
            keypoint_scores,
        });
    }
    Ok(out)
}

/// An output of any type by name.
fn tensor<'a>(outputs: &'a [(String, Tensor)], name: &str) -> Result<&'a Tensor, DetectError> {
    outputs.iter().find(|(n, _)| n == name).map(|(_, t)| t).ok_or_else(|| DetectError::MissingOutput {
        decoder: "detections",
        name: name.to_string(),
        available: outputs.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", "),
    })
}
