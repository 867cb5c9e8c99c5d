//! `www/profile.html` (linked from the page's profile editor) documents every field of every
//! decoder: each key a profile can hold, and each decoder type, appears there as `<code>key</code>`.

use qplay_core::detect::*;
use serde_json::Value;

fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                keys(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[test]
fn every_profile_field_is_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../www/profile.html")).unwrap();
    let yolo = Yolo {
        classes: Some(3),
        keypoints: 17,
        keypoint_dims: 3,
        grid_strides: vec![8, 16, 32],
        normalized: Some(true),
        ..Yolo::new("o")
    };
    let centernet = CenterNet {
        heatmap_output: "hm".into(),
        wh_output: "wh".into(),
        offset_output: Some("reg".into()),
        stride: 4.0,
        heatmap_logits: true,
        channels_last: true,
        box_encoding: BoxEncoding::Ltrb,
        offset_order: AxisOrder::Yx,
        cell_center: 0.5,
        peaks_only: false,
        landmarks_output: Some("lm".into()),
        landmarks: 5,
        landmark_encoding: LandmarkEncoding::BoxYx,
    };
    let ssd: Profile = serde_json::from_str(include_str!("../../../www/models/person_ssdlite.json")).unwrap();
    let face: Profile = serde_json::from_str(include_str!("../../../www/models/blazeface_short.json")).unwrap();
    let decoders = [
        Decoder::Yolov8(yolo.clone()),
        Decoder::Yolov5(yolo),
        Decoder::End2end(End2End { class_first: true, ..End2End::new("o") }),
        Decoder::End2end(End2End {
            per_class_scores: true,
            box_format: BoxFormat::Cxcywh,
            normalized: true,
            keypoints: 17,
            ..End2End::new("o")
        }),
        Decoder::Dfl(Dfl {
            output: "o".into(),
            strides: vec![8, 16, 32, 64],
            reg_max: 7,
            cell_center: 0.5,
            multi_label: true,
        }),
        Decoder::Grid(Grid {
            strides: vec![8, 16, 32],
            score_outputs: vec!["s".into(); 3],
            objectness_outputs: vec!["o".into(); 3],
            box_outputs: vec!["b".into(); 3],
            landmark_outputs: vec!["k".into(); 3],
            landmarks: 5,
            anchors: 2,
            box_encoding: GridBox::Dfl,
            reg_max: 7,
            cell_center: 0.5,
        }),
        Decoder::Detections(Detections {
            boxes_output: "b".into(),
            scores_output: "s".into(),
            classes_output: Some("c".into()),
            count_output: Some("n".into()),
            box_format: BoxFormat::Yxyx,
            normalized: true,
            first_class: 1,
            keypoints_output: Some("k".into()),
        }),
        Decoder::Centernet(centernet),
        ssd.decoder.clone(),
        face.decoder.clone(),
        match face.decoder.clone() {
            Decoder::Blazeface(b) => {
                Decoder::Blazeface(BlazeFace { more_outputs: vec![["r2".into(), "c2".into()]], ..b })
            }
            d => d,
        },
    ];
    let mut all = Vec::new();
    for d in decoders {
        let p = Profile {
            decoder: d,
            resize: Resize::Letterbox { pad: 114.0, top_left: true },
            aux_inputs: [("orig_target_sizes".to_string(), AuxInput::Kind(AuxKind::InputWh))].into(),
            ..ssd.clone()
        };
        let v: Value = serde_json::to_value(&p).unwrap();
        keys(&v, &mut all);
        all.push(p.decoder.name().to_string());
    }
    all.sort();
    all.dedup();
    let missing: Vec<&String> = all.iter().filter(|k| !doc.contains(&format!("<code>{k}</code>"))).collect();
    assert!(missing.is_empty(), "www/profile.html does not document {missing:?}");
}
