//! Class names for an inferred profile: the file's metadata, a family's label map (TF's COCO
//! ids 1..90, the DETR family's 0..90 with N/A, COCO's 80), or numbered classes, said in
//! [`AutoProfile::assumed`].

use super::*;

/// The labels of a classified model, with what was assumed about them pushed to `assumed`.
pub(super) fn labels(
    kind: Kind,
    decoder: &Classified,
    meta: &ModelMeta,
    geometry: bool,
    assumed: &mut Vec<String>,
) -> Vec<String> {
    match (kind, decoder.classes, &meta.names) {
        (Kind::BlazeFace | Kind::CenterFace | Kind::Scrfd | Kind::YuNet, _, None) => vec!["face".to_string()],
        (Kind::TfDetections | Kind::Ssd, c, None) if matches!(&decoder.decoder, Decoder::Detections(d) if d.first_class == 1 || c == Some(90)) =>
        {
            assumed.push(
                "class ids 1..90 of the TF Object Detection API's COCO label map (0 is background): the COCO names"
                    .into(),
            );
            coco90_labels()
        }
        (Kind::Paddle, _, None) => {
            assumed.push(
                "class ids 0..79 read as the 80 COCO names (PaddleDetection's COCO models; a model trained on other classes \
                 needs its own `labels`)"
                    .into(),
            );
            coco80_labels()
        }
        (Kind::Detr, Some(91), None) => {
            assumed.push(
                "class ids 0..90 read as COCO category ids (the DETR family's label map, 0 is N/A; a model trained on other \
                 classes needs its own `labels`)"
                    .into(),
            );
            std::iter::once("N/A".to_string()).chain(coco90_labels()).collect()
        }
        (Kind::TorchDetections, _, None) if geometry => {
            assumed.push(
                "class ids 0..79 read as the 80 COCO names (D-FINE's and RT-DETR's COCO models; a model trained on other \
                 classes needs its own `labels`)"
                    .into(),
            );
            coco80_labels()
        }
        (_, c, Some(names)) => {
            let key = meta.names_key.as_deref().unwrap_or("names");
            match c {
                Some(c) if c != names.len() => assumed.push(format!(
                    "class names from the model's metadata (`{key}`): it names {} classes but the output has {c}; \
                     classes without a name are shown as `class N`",
                    names.len()
                )),
                _ => assumed.push(format!("{} class names from the model's metadata (`{key}`)", names.len())),
            }
            names.clone()
        }
        (_, Some(80), None) => {
            assumed.push("80 classes: the COCO class names".into());
            coco80_labels()
        }
        (_, c, None) => {
            assumed.push(format!(
                "{} classes without names: shown as `class 0`, `class 1`, …; add `labels` to the profile",
                c.map_or("an unknown number of".to_string(), |c| c.to_string())
            ));
            Vec::new()
        }
    }
}
