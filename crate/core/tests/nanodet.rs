//! A real NanoDet-Plus export (`tests/fixtures/make_nanodet_fixtures.py`: NanoDet's own model
//! code and export path, random weights): the GFL/DFL head is recognised with zero
//! configuration, qplay's output matches onnxruntime's, and the candidates and the result after
//! NMS equal NanoDet's own `get_bboxes` (center priors, `distribution_project`, `distance2bbox`,
//! `multiclass_nms`).

use qplay_core::detect::nms::nms;
use qplay_core::detect::*;
use qplay_core::model::npy::read_npy;
use qplay_core::model::{load_onnx, Plan, Tensor, ValueInfo};
use qplay_core::ops::Registry;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/nanodet")
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (run tests/fixtures/make_nanodet_fixtures.py)", p.display()))
}

fn run() -> (AutoProfile, Tensor) {
    let graph = load_onnx(&read(dir().join("nanodet_plus_m.onnx"))).unwrap();
    let auto = infer_profile_for(&graph).unwrap();
    let x = read_npy(&read(dir().join("nanodet_plus_m/input.npy"))).unwrap();
    let plan = Plan::new(&graph, &Registry::new(), &[("data".into(), x.shape.clone())]).unwrap();
    (auto, plan.run(&[("data".into(), x)]).unwrap().remove(0))
}

fn same(got: &[qplay_core::detect::nms::Candidate], want: &[Value], what: &str) {
    assert!(!want.is_empty());
    assert_eq!(got.len(), want.len(), "{what}: count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.class as u64, w["class"].as_u64().unwrap(), "{what} {i}: class");
        assert!((g.score - w["score"].as_f64().unwrap() as f32).abs() < 2e-4, "{what} {i}: score");
        for k in 0..4 {
            let wk = w["box"][k].as_f64().unwrap() as f32;
            assert!((g.bbox[k] - wk).abs() < 0.02, "{what} {i}: box {:?} vs {}", g.bbox, w["box"]);
        }
    }
}

#[test]
fn nanodet_plus_decodes_like_nanodet() {
    let (auto, out) = run();
    let p = &auto.profile;
    let Decoder::Dfl(d) = &p.decoder else { panic!("{:?}", p.decoder) };
    assert_eq!((d.strides.clone(), d.reg_max, d.cell_center, d.multi_label), (vec![8, 16, 32, 64], 7, 0.0, true));
    assert_eq!((p.color, p.resize, p.size), (ColorOrder::Bgr, Resize::Stretch, [320, 320]));
    assert_eq!(p.labels.len(), 80);
    assert!(auto.assumed.iter().any(|a| a.contains("NanoDet-Plus")), "{:?}", auto.assumed);

    let want = read_npy(&read(dir().join("nanodet_plus_m/output_0.npy"))).unwrap();
    let (g, w) = (out.as_f32().unwrap(), want.as_f32().unwrap());
    let range = w.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
    let worst = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-4 * range, "max |qplay − onnxruntime| = {worst} (range {range})");

    let e: Value = serde_json::from_slice(&read(dir().join("nanodet_plus_m/expected.json"))).unwrap();
    let p = Profile { score_threshold: e["conf"].as_f64().unwrap() as f32, ..p.clone() };
    // Decode onnxruntime's output, so that scores at the threshold fall the same way.
    let cands = decode::decode(&p, &[("output".into(), want)]).unwrap();
    same(&cands, e["candidates"].as_array().unwrap(), "candidate");
    let kept: Vec<_> =
        nms(&cands, e["iou"].as_f64().unwrap() as f32, 100).into_iter().map(|i| cands[i].clone()).collect();
    same(&kept, e["final"].as_array().unwrap(), "after NMS");
}

#[test]
fn wrong_strides_or_bins_say_which_field() {
    let (auto, out) = run();
    let Decoder::Dfl(d) = auto.profile.decoder.clone() else { unreachable!() };
    let p = Profile { decoder: Decoder::Dfl(Dfl { strides: vec![8, 16, 32], ..d.clone() }), ..auto.profile.clone() };
    let e = decode::decode(&p, &[("output".into(), out)]).unwrap_err().to_string();
    assert!(e.contains("`strides`, `reg_max`") && e.contains("[1, 2100, C + 32]"), "{e}");
    let p = Profile { decoder: Decoder::Dfl(Dfl { reg_max: 0, ..d }), ..auto.profile.clone() };
    assert!(p.validate().unwrap_err().to_string().contains("reg_max"));
}

/// The same head exported per stride (NanoDet, PicoDet without post-processing: scores and bins
/// as separate outputs): the `grid` decoder with `dfl` boxes gives exactly the candidates the
/// single-output decoder gives (which equal NanoDet's own), and the outputs are recognised.
#[test]
fn per_stride_outputs_decode_like_the_single_output() {
    let (auto, out) = run();
    let p = Profile { score_threshold: 0.05, ..auto.profile.clone() };
    let want = decode::decode(&p, &[("output".into(), out.clone())]).unwrap();
    let data = out.as_f32().unwrap();
    let (mut outs, mut start) = (Vec::new(), 0);
    let inputs = [ValueInfo { name: "data".into(), elem_type: 1, shape: vec![Some(1), Some(3), Some(320), Some(320)] }];
    let mut infos = Vec::new();
    for s in [8usize, 16, 32, 64] {
        let n = 320usize.div_ceil(s).pow(2);
        let rows = &data[start * 112..(start + n) * 112];
        let scores: Vec<f32> = rows.chunks(112).flat_map(|r| r[..80].to_vec()).collect();
        let bins: Vec<f32> = rows.chunks(112).flat_map(|r| r[80..].to_vec()).collect();
        outs.push((format!("cls_{s}"), Tensor::f32(vec![1, n, 80], scores).unwrap()));
        outs.push((format!("reg_{s}"), Tensor::f32(vec![1, n, 32], bins).unwrap()));
        infos.push(ValueInfo { name: format!("cls_{s}"), elem_type: 1, shape: vec![Some(1), Some(n), Some(80)] });
        infos.push(ValueInfo { name: format!("reg_{s}"), elem_type: 1, shape: vec![Some(1), Some(n), Some(32)] });
        start += n;
    }
    let a = infer_profile(&inputs, &infos).unwrap();
    let Decoder::Grid(g) = &a.profile.decoder else { panic!("{:?}", a.profile.decoder) };
    assert_eq!((g.box_encoding, g.reg_max, g.strides.len(), g.cell_center), (GridBox::Dfl, 7, 4, 0.5));
    // NanoDet-Plus counts from the cells' corners: the other reading offered.
    let Decoder::Grid(corner) = &a.alternatives[0].profile.decoder else { panic!() };
    assert_eq!(corner.cell_center, 0.0);
    let p = Profile { decoder: Decoder::Grid(corner.clone()), ..p };
    let got = decode::decode(&p, &outs).unwrap();
    // One candidate per point (best class) here, every class above the threshold there.
    let best: Vec<_> = want.iter().filter(|c| !want.iter().any(|o| o.bbox == c.bbox && o.score > c.score)).collect();
    assert_eq!(got.len(), best.len());
    for (g, w) in got.iter().zip(best) {
        assert_eq!((g.class, g.score), (w.class, w.score));
        for k in 0..4 {
            // The single-output decoder clips to the input as NanoDet does; this one does not.
            assert!((g.bbox[k].clamp(0.0, 320.0) - w.bbox[k]).abs() < 1e-3, "{g:?} vs {w:?}");
        }
    }
}
