//! Fine-tuning real exports whose post-processing is inside the graph (Ultralytics' `nms=True`
//! and YOLOv10 end-to-end exports, torchvision's SSDLite): the distillation compares the raw
//! tensors the selection reads ([`qplay_core::train::distill_targets`]), every op between the
//! weights and those tensors has a backward, and the file keeps the model's own outputs.

use qplay_core::model::{load_onnx, Data, Graph, Plan, Tensor};
use qplay_core::ops::Registry;
use qplay_core::ptq::{quantize, PtqOptions};
use qplay_core::train::distill_targets;
use qplay_core::train::fine_tune::{held_out_split, FineTune, QatOptions};

fn load(rel: &str) -> Graph {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    load_onnx(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn targets(g: &Graph) -> qplay_core::train::Targets {
    let plan = Plan::new(g, &Registry::new(), &[]).unwrap();
    distill_targets(g, &|t| plan.fact(t).map(|f| f.dtype))
}

/// A seeded image-like input for the graph's first input (values in 0..1).
fn image(g: &Graph, seed: u32) -> Vec<(String, Tensor)> {
    let shape: Vec<usize> = g.inputs[0].shape.iter().map(|d| d.unwrap_or(1)).collect();
    let n: usize = shape.iter().product();
    let v = (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 977) % 1000) as f32 / 1000.0);
    vec![(g.inputs[0].name.clone(), Tensor { shape, data: Data::F32(v.collect()) })]
}

#[test]
fn post_processed_outputs_are_compared_on_the_tensors_they_select_from() {
    for (rel, outputs) in [
        ("tests/fixtures/ultralytics/yolo11_nms.onnx", vec!["output0"]),
        ("tests/fixtures/ultralytics/yolov10_e2e.onnx", vec!["output0"]),
        ("tests/fixtures/torchvision_ssd/ssdlite_tiny.onnx", vec!["boxes", "scores", "labels"]),
    ] {
        let g = load(rel);
        let t = targets(&g);
        assert_eq!(t.replaced, outputs, "{rel}");
        assert!(!t.extra.is_empty() && t.extra.iter().all(|e| !g.outputs.iter().any(|o| &o.name == e)), "{rel}: {t:?}");
        // The raw tensors are computed before any selection: each is a float the graph makes.
        assert!(t.extra.iter().all(|e| g.nodes.iter().any(|n| n.outputs.contains(e))), "{rel}: {t:?}");
    }
    // Raw heads, and a selection followed by trained layers (RT-DETR picks its queries with
    // TopK, then decodes them): the outputs stay as they are.
    for rel in [
        "www/models/person_ssdlite.onnx",
        "tests/fixtures/ultralytics/yolov8_custom18.onnx",
        "tests/fixtures/rtdetr/rtdetr_tiny.onnx",
    ] {
        assert_eq!(targets(&load(rel)), Default::default(), "{rel}");
    }
}

#[test]
fn an_end_to_end_export_fine_tunes_and_keeps_its_outputs() {
    let g = load("tests/fixtures/ultralytics/yolov10_e2e.onnx");
    let calib: Vec<Tensor> = (0..3).map(|s| image(&g, s).remove(0).1).collect();
    let q = quantize(&g, &g.inputs[0].name, &calib, &PtqOptions::default()).unwrap();
    let qdq = load_onnx(&q.onnx).unwrap();
    let inputs: Vec<_> = (0..4).map(|s| image(&g, s)).collect();
    let opts = QatOptions { steps: 2, batch: 2, eval_every: 1, augment: false, ..Default::default() };
    let split = |w: &[Vec<Tensor>]| {
        assert_eq!(w[0].len(), 1, "the held-out split sees the model's own outputs");
        held_out_split(w.len())
    };
    let mut ft = FineTune::new(&g, &qdq, inputs.clone(), &split, &opts, Box::new(|| 0.0), None).unwrap();
    assert_eq!(ft.targets().replaced, ["output0"]);
    let (p1, p2) = (ft.step().unwrap(), ft.step().unwrap());
    assert!(p1.loss.unwrap().is_finite() && p2.loss.unwrap() > 0.0);
    let r = ft.best().unwrap();
    assert!(r.qat_sqnr_db >= r.ptq_sqnr_db);
    assert_eq!(r.graph.outputs.len(), 1, "the file keeps the model's outputs only");
    assert_eq!(r.graph.outputs[0].name, "output0");
    let out = Plan::new(&r.graph, &Registry::new(), &[]).unwrap().run(&inputs[0]).unwrap();
    assert_eq!(out[0].shape, [1, 300, 6]);
}

#[test]
fn a_detr_export_with_a_dynamic_batch_and_deformable_attention_fine_tunes() {
    // D-FINE: `images` is [?, 3, 320, 320]; its decoder samples with GridSample (bilinear,
    // zeros), whose grid comes from trained layers, after a TopK that picks the queries.
    let g = load("tests/fixtures/dfine/dfine_n_tiny.onnx");
    assert_eq!(g.inputs[0].shape[0], None, "the fixture's batch is dynamic");
    // Its second input, the original image size, as qplay's pre-processing binds it.
    let sizes = ("orig_target_sizes".to_string(), Tensor { shape: vec![1, 2], data: Data::I64(vec![320, 320]) });
    let inputs: Vec<_> = (0..3).map(|s| [image(&g, s), vec![sizes.clone()]].concat()).collect();
    let calib: Vec<Tensor> = inputs.iter().map(|x| x[0].1.clone()).collect();
    let opts = PtqOptions { fixed_inputs: vec![sizes], ..PtqOptions::default() };
    let q = quantize(&g, &g.inputs[0].name, &calib, &opts).unwrap();
    let qdq = load_onnx(&q.onnx).unwrap();
    let opts = QatOptions { steps: 1, batch: 1, eval_every: 1, augment: false, ..Default::default() };
    let split = |w: &[Vec<Tensor>]| held_out_split(w.len());
    let mut ft = FineTune::new(&g, &qdq, inputs, &split, &opts, Box::new(|| 0.0), None).unwrap();
    assert_eq!(ft.targets(), &Default::default(), "decoded queries stay the outputs");
    assert!(ft.step().unwrap().loss.unwrap().is_finite());
}
