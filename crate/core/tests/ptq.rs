//! Post-training quantization to QDQ on the real person detector, the Q/DQ ops, and bad input.

use qplay_core::detect::{detect, Detector, Profile, Transform};
use qplay_core::model::{
    load_onnx, npy::read_npy, Arithmetic, Attr, Attrs, DType, Data, Graph, Node, Plan, Tensor, ValueInfo,
};
use qplay_core::ops::Registry;
use qplay_core::ptq::{quantize, PtqOptions};
use qplay_core::quant::{Calibration, QuantError};
use qplay_core::Error;
use std::path::PathBuf;

fn repo(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let i = iw * ih;
    i / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i)
}

#[test]
fn person_detector_qdq_keeps_the_detections() {
    let onnx = repo("www/models/person_ssdlite.onnx");
    let g = load_onnx(&onnx).unwrap();
    // Calibrate on two photos, evaluate on a third that calibration did not see.
    let calib = person_inputs(&["horses", "astronaut"]);
    let q = quantize(&g, "Preprocessor/sub:0", &calib, &PtqOptions::default()).unwrap();
    let r = &q.report;
    assert_eq!(r.layers.len(), 88, "every Conv is quantized");
    assert!(r.per_channel);
    assert!(r.layers.iter().all(|l| l.weight_scales > 1 && l.weight_sqnr_db > 25.0), "per-channel weights");
    let ratio = r.int8_bytes as f64 / onnx.len() as f64;
    // ≤ 0.3 plus the per-channel ReLU6 bounds cross-layer equalization adds (≈ 80 kB).
    assert!(ratio <= 0.31, "QDQ file is {ratio:.3}× the FP32 file");
    // The exported file reloads; on person.jpg it finds the same person as FP32.
    let x = read_npy(&repo("tests/fixtures/person_ssdlite_person/input.npy")).unwrap();
    let profile = Profile::from_json(std::str::from_utf8(&repo("www/models/person_ssdlite.json")).unwrap()).unwrap();
    let tf = Transform::new(&profile, 640, 424).unwrap();
    let run = |bytes: &[u8]| {
        let g = load_onnx(bytes).unwrap();
        let plan = Plan::new(&g, &Registry::new(), &[("Preprocessor/sub:0".into(), x.shape.clone())]).unwrap();
        let out = plan.run(&[("Preprocessor/sub:0".into(), x.clone())]).unwrap();
        let named: Vec<(String, Tensor)> = plan.output_names().into_iter().map(String::from).zip(out).collect();
        detect(&profile, &named, &tf).unwrap()
    };
    let (fp, int8) = (run(&onnx), run(&q.onnx));
    assert_eq!(fp.len(), 1);
    assert_eq!(int8.len(), 1, "{int8:?}");
    assert!(int8[0].score > 0.9, "{int8:?}");
    assert!(iou(fp[0].bbox, int8[0].bbox) > 0.9, "{fp:?} vs {int8:?}");
    for (name, db) in &r.output_sqnr_db {
        assert!(*db > 10.0, "output {name}: SQNR {db} dB");
    }
    // The quantized model also works as a detector with the same profile.
    let mut d = Detector::new(&q.onnx, Some(profile)).unwrap();
    assert!(d.summary().ops.contains_key("DequantizeLinear"));
    let rgba = vec![128u8; 64 * 48 * 4];
    d.detect_rgba(64, 48, &rgba).unwrap();
}

#[test]
fn every_observer_and_per_tensor_work() {
    let g = load_onnx(&repo("www/models/blazeface_short.onnx")).unwrap();
    let x = read_npy(&repo("tests/fixtures/blazeface_short_astronaut/input.npy")).unwrap();
    for m in Calibration::ALL {
        let q =
            quantize(&g, "input", std::slice::from_ref(&x), &PtqOptions { method: m, ..Default::default() }).unwrap();
        assert!(!q.report.layers.is_empty());
        assert!(q.report.output_sqnr_db.values().all(|v| v.is_finite()), "{m:?}: {:?}", q.report.output_sqnr_db);
    }
    let q = quantize(&g, "input", std::slice::from_ref(&x), &PtqOptions { per_channel: false, ..Default::default() })
        .unwrap();
    assert!(q.report.layers.iter().all(|l| l.weight_scales == 1));
    // Keeping a node FP32 by name.
    let first = q.report.layers[0].node.clone();
    let k = quantize(&g, "input", &[x], &PtqOptions { keep_fp32: vec![first.clone()], ..Default::default() }).unwrap();
    assert!(k.report.kept_fp32.contains(&first));
    assert_eq!(k.report.layers.len(), q.report.layers.len() - 1);
}

#[test]
fn auto_mixed_keeps_the_most_sensitive_layers_fp32() {
    let g = load_onnx(&repo("www/models/blazeface_short.onnx")).unwrap();
    let x = read_npy(&repo("tests/fixtures/blazeface_short_astronaut/input.npy")).unwrap();
    let all = quantize(&g, "input", std::slice::from_ref(&x), &PtqOptions::default()).unwrap();
    let q =
        quantize(&g, "input", std::slice::from_ref(&x), &PtqOptions { auto_mixed: 3, ..Default::default() }).unwrap();
    assert_eq!(q.report.kept_fp32.len(), 3);
    assert_eq!(q.report.layers.len(), all.report.layers.len() - 3);
    // Every remaining layer was measured, and none is more sensitive than the ones kept.
    let kept_notes: Vec<&String> = q.report.notes.iter().filter(|n| n.contains("--auto-mixed")).collect();
    assert_eq!(kept_notes.len(), 3);
    assert!(q.report.layers.iter().all(|l| l.sensitivity_sqnr_db.is_some()));
    // Keeping the worst layers FP32 does not make the model worse.
    let worst = |r: &qplay_core::ptq::Report| r.output_sqnr_db.values().copied().fold(f64::INFINITY, f64::min);
    assert!(
        worst(&q.report) >= worst(&all.report) - 0.5,
        "{:?} vs {:?}",
        q.report.output_sqnr_db,
        all.report.output_sqnr_db
    );
}

#[test]
fn sixteen_bit_activations_sit_between_int8_and_fp32() {
    let g = load_onnx(&repo("www/models/blazeface_short.onnx")).unwrap();
    let x = read_npy(&repo("tests/fixtures/blazeface_short_astronaut/input.npy")).unwrap();
    let run = |o: PtqOptions| quantize(&g, "input", std::slice::from_ref(&x), &o).unwrap();
    let worst = |r: &qplay_core::ptq::Report| r.output_sqnr_db.values().copied().fold(f64::INFINITY, f64::min);
    let int8 = run(PtqOptions::default());
    // Every layer's input activation at 16 bits (weights stay int8).
    let names: Vec<String> = int8.report.layers.iter().map(|l| l.node.clone()).collect();
    let wide = run(PtqOptions { keep_16bit: names.clone(), ..Default::default() });
    assert_eq!(wide.report.act16.len(), names.len());
    assert_eq!(wide.report.layers.len(), names.len(), "16-bit layers are still quantized layers");
    assert!(
        worst(&wide.report) > worst(&int8.report) + 3.0,
        "{:?} vs {:?}",
        wide.report.output_sqnr_db,
        int8.report.output_sqnr_db
    );
    // The export: uint16 zero points in onnxruntime's QDQ ops (opset 11 < 21), loaded back and run.
    let q16: Vec<&Node> = wide.graph.nodes.iter().filter(|n| n.op_type == "com.microsoft::QuantizeLinear").collect();
    assert!(!q16.is_empty() && q16.len() <= names.len(), "one per activation tensor read by a 16-bit layer");
    assert!(q16.iter().all(|n| wide.graph.initializers[&n.inputs[2]].dtype() == DType::U16));
    // --auto-mixed with 16 bits: the most sensitive layers move to 16-bit activations, none to FP32.
    let mixed =
        run(PtqOptions { auto_mixed: 3, mixed_to: qplay_core::ptq::MixedTo::Activations16, ..Default::default() });
    assert_eq!((mixed.report.act16.len(), mixed.report.kept_fp32.len()), (3, int8.report.kept_fp32.len()));
    assert!(worst(&mixed.report) >= worst(&int8.report) - 0.5);
}

#[test]
fn bad_calibration_input_is_an_error() {
    let g = load_onnx(&repo("www/models/blazeface_short.onnx")).unwrap();
    let e = quantize(&g, "input", &[], &PtqOptions::default()).unwrap_err();
    assert_eq!(e, Error::Quant(QuantError::NoCalibrationData));
    let wrong = Tensor::f32(vec![1, 3, 8, 8], vec![0.0; 192]).unwrap();
    let ok = Tensor::f32(vec![1, 3, 128, 128], vec![0.1; 3 * 128 * 128]).unwrap();
    assert!(quantize(&g, "input", &[ok.clone(), wrong], &PtqOptions::default())
        .unwrap_err()
        .to_string()
        .contains("shape"));
    let mut nan = ok.clone();
    if let Data::F32(v) = &mut nan.data {
        v[5] = f32::NAN;
    }
    let e = quantize(&g, "input", &[nan], &PtqOptions::default()).unwrap_err().to_string();
    assert!(e.contains("NaN"), "{e}");
    // A NaN weight in the model: an error naming the problem, not a panic or a NaN model.
    let mut bad = g.clone();
    let conv = bad.nodes.iter().find(|n| n.op_type == "Conv").unwrap().inputs[1].clone();
    if let Data::F32(v) = &mut bad.initializers.get_mut(&conv).unwrap().data {
        v[0] = f32::NAN;
    }
    let e = quantize(&bad, "input", std::slice::from_ref(&ok), &PtqOptions::default()).unwrap_err().to_string();
    assert!(e.to_lowercase().contains("nan") || e.contains("finite"), "{e}");
    // An all-constant input (min == max everywhere) falls back instead of failing.
    quantize(
        &g,
        "input",
        &[Tensor::f32(vec![1, 3, 128, 128], vec![0.0; 3 * 128 * 128]).unwrap()],
        &PtqOptions::default(),
    )
    .unwrap();
}

fn qdq_graph(op: &str, x: ValueInfo, inits: Vec<(&str, Tensor)>, axis: i64, out_type: i32) -> Graph {
    Graph {
        nodes: vec![Node {
            name: "q".into(),
            op_type: op.into(),
            inputs: vec![x.name.clone(), "s".into(), "z".into()],
            outputs: vec!["y".into()],
            attrs: Attrs([("axis".to_string(), Attr::Int(axis))].into_iter().collect()),
            fused: Default::default(),
        }],
        initializers: inits.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        inputs: vec![x],
        outputs: vec![ValueInfo { name: "y".into(), elem_type: out_type, shape: vec![] }],
        opset: 13,
        ..Default::default()
    }
}

#[test]
fn quantize_dequantize_linear_per_axis() {
    let x = ValueInfo { name: "x".into(), elem_type: 1, shape: vec![Some(2), Some(3)] };
    let g = qdq_graph(
        "QuantizeLinear",
        x.clone(),
        vec![
            ("s", Tensor::f32(vec![3], vec![0.5, 1.0, 2.0]).unwrap()),
            ("z", Tensor::u8(vec![3], vec![10, 0, 128]).unwrap()),
        ],
        1,
        2,
    );
    let plan = Plan::new(&g, &Registry::new(), &[("x".into(), vec![2, 3])]).unwrap();
    let y =
        plan.run(&[("x".into(), Tensor::f32(vec![2, 3], vec![1.25, 2.5, -3.0, -100.0, 300.0, 3.0]).unwrap())]).unwrap();
    // 1.25/0.5 = 2.5 → 2 (half to even) + 10; 2.5/1 → 2; −3/2 = −1.5 → −2 + 128; clamps at 0 and 255.
    assert_eq!(y[0].data, Data::U8(vec![12, 2, 126, 0, 255, 130]));
    // Bad parameters: a zero scale, a scale count that does not match the axis.
    for (s, axis) in
        [(Tensor::f32(vec![3], vec![0.5, 0.0, 2.0]).unwrap(), 1), (Tensor::f32(vec![3], vec![1.0; 3]).unwrap(), 0)]
    {
        let g = qdq_graph(
            "QuantizeLinear",
            x.clone(),
            vec![("s", s), ("z", Tensor::u8(vec![3], vec![0; 3]).unwrap())],
            axis,
            2,
        );
        let e = Plan::new(&g, &Registry::new(), &[("x".into(), vec![2, 3])])
            .and_then(|p| p.run(&[("x".into(), Tensor::f32(vec![2, 3], vec![0.0; 6]).unwrap())]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("scale"), "{e}");
    }
    let xi = ValueInfo { name: "x".into(), elem_type: 3, shape: vec![Some(3)] };
    let g = qdq_graph(
        "DequantizeLinear",
        xi,
        vec![("s", Tensor::f32(vec![], vec![0.25]).unwrap()), ("z", Tensor::i8(vec![], vec![-4]).unwrap())],
        1,
        1,
    );
    let plan = Plan::new(&g, &Registry::new(), &[("x".into(), vec![3])]).unwrap();
    let y = plan.run(&[("x".into(), Tensor::i8(vec![3], vec![-128, -4, 127]).unwrap())]).unwrap();
    assert_eq!(y[0].data, Data::F32(vec![-31.0, 0.0, 32.75]));
}

#[test]
fn report_has_histograms_clip_ranges_and_layer_sqnr() {
    let onnx = repo("www/models/person_ssdlite.onnx");
    let g = load_onnx(&onnx).unwrap();
    let calib = person_inputs(&["horses", "astronaut"]);
    let t0 = std::time::Instant::now();
    let r = quantize(&g, "Preprocessor/sub:0", &calib, &PtqOptions::default()).unwrap().report;
    eprintln!("quantize with report: {:.2} s", t0.elapsed().as_secs_f64());
    assert_eq!(r.layers.len(), 88);
    for l in &r.layers {
        let n = &l.node;
        // Weights: one scale per output channel, a histogram holding every weight.
        assert_eq!(l.channel_scales.len(), l.weight_scales, "{n}");
        assert!(l.channel_scales.iter().all(|s| s.is_finite() && *s > 0.0), "{n}");
        let node = g.nodes.iter().find(|x| &x.name == n).unwrap();
        let w = &g.initializers[&node.inputs[1]];
        let wh = l.weight_histogram.as_ref().unwrap();
        assert_eq!(wh.counts.len(), qplay_core::ptq::REPORT_BINS);
        assert_eq!(wh.total() as usize, w.len(), "{n}: weight histogram");
        assert_eq!((wh.lo, wh.hi), l.weight_range, "{n}");
        // Activations: a histogram of every calibration value over the observed range.
        let a = &l.activation;
        let ah = a.histogram.as_ref().unwrap();
        assert_eq!(ah.counts.len(), qplay_core::ptq::REPORT_BINS);
        assert_eq!(ah.total() % calib.len() as u64, 0, "{n}");
        assert!(ah.lo <= a.observed.0 && ah.hi >= a.observed.1, "{n}");
        // Each method's range lies inside the observed one; MinMax is the widest and clips nothing.
        let by = |m: &str| a.methods.iter().find(|c| c.method == m).unwrap_or_else(|| panic!("{n}: {m}"));
        let mm = by("minmax");
        assert_eq!((mm.lo, mm.hi), a.observed, "{n}");
        assert_eq!(mm.clipped_pct, 0.0, "{n}");
        for c in &a.methods {
            assert!(c.lo <= c.hi, "{n}: {c:?}");
            assert!(mm.lo <= c.lo && c.hi <= mm.hi, "{n}: {c:?} outside min/max");
            assert!((0.0..=100.0).contains(&c.clipped_pct), "{n}: {c:?}");
        }
        // Percentile 99.99 clips at most a little more than 2 × 0.01 % (bin edges).
        assert!(by("percentile").clipped_pct < 0.1, "{n}: {:?}", by("percentile"));
        let chosen: Vec<_> = a.methods.iter().filter(|c| c.chosen).collect();
        assert_eq!(chosen.len(), 1, "{n}");
        assert_eq!((chosen[0].method, chosen[0].lo, chosen[0].hi), (r.method, a.clip.0, a.clip.1), "{n}");
        assert_eq!(a.clipped_pct, Some(chosen[0].clipped_pct));
        // The layer's own output SQNR.
        let db = l.output_sqnr_db.unwrap();
        // Measured after the activation (what the next layer reads): no layer is near 0 dB.
        assert!(db.is_finite() && db > 8.0, "{n}: output SQNR {db}");
    }
    // The first layer reads the model input: 3 × 300 × 300 values per calibration image.
    assert_eq!(r.layers[0].activation.histogram.as_ref().unwrap().total(), 2 * 3 * 300 * 300);
    // The JSON stays small: bins, not raw values.
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.len() < 1_000_000, "report JSON is {} bytes", json.len());
    eprintln!("report JSON: {} bytes", json.len());
}

fn person_inputs(names: &[&str]) -> Vec<Tensor> {
    names.iter().map(|c| read_npy(&repo(&format!("tests/fixtures/person_ssdlite_{c}/input.npy"))).unwrap()).collect()
}

#[test]
fn cross_layer_equalization_keeps_fp32_outputs_and_helps_per_tensor_weights() {
    use qplay_core::model::passes::fold_batchnorm_into_conv;
    let mut g = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    fold_batchnorm_into_conv(&mut g);
    let mut e = g.clone();
    let pairs = qplay_core::ptq::equalize::equalize(&mut e);
    assert!(pairs >= 40, "{pairs} pairs equalized");
    // The FP32 function is unchanged (ReLU6 bounds became per-channel Min bounds).
    let x = person_inputs(&["person"]).remove(0);
    let run = |g: &Graph| {
        let plan = Plan::new(g, &Registry::new(), &[("Preprocessor/sub:0".into(), x.shape.clone())]).unwrap();
        plan.run(&[("Preprocessor/sub:0".into(), x.clone())]).unwrap()
    };
    for (a, b) in run(&g).iter().zip(run(&e)) {
        let (a, b) = (a.as_f32().unwrap(), b.as_f32().unwrap());
        let range = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-4 * range, "max |diff| {worst} of range {range}");
    }
    // Per-tensor weights: equalization recovers most of what per-tensor quantization loses.
    let calib = person_inputs(&["horses", "astronaut"]);
    let worst = |r: &qplay_core::ptq::Report| r.output_sqnr_db.values().copied().fold(f64::INFINITY, f64::min);
    let opts = PtqOptions { per_channel: false, equalize: false, bias_correction: false, ..Default::default() };
    let plain = quantize(&g, "Preprocessor/sub:0", &calib, &opts).unwrap();
    let cle = quantize(&g, "Preprocessor/sub:0", &calib, &PtqOptions { equalize: true, ..opts.clone() }).unwrap();
    assert!(
        worst(&cle.report) > worst(&plain.report) + 3.0,
        "per-tensor: CLE {:?} vs none {:?}",
        cle.report.output_sqnr_db,
        plain.report.output_sqnr_db
    );
    assert!(cle.report.notes.iter().any(|n| n.contains("cross-layer equalization")));
}

#[test]
fn bias_correction_moves_the_quantized_layer_means_back() {
    let g = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    let calib = person_inputs(&["horses", "astronaut"]);
    let worst = |r: &qplay_core::ptq::Report| r.output_sqnr_db.values().copied().fold(f64::INFINITY, f64::min);
    let opts = PtqOptions { per_channel: false, equalize: false, bias_correction: false, ..Default::default() };
    let plain = quantize(&g, "Preprocessor/sub:0", &calib, &opts).unwrap();
    let bc = quantize(&g, "Preprocessor/sub:0", &calib, &PtqOptions { bias_correction: true, ..opts.clone() }).unwrap();
    assert!(bc.report.notes.iter().any(|n| n == "bias correction: 88 layers"), "{:?}", bc.report.notes);
    assert!(
        worst(&bc.report) > worst(&plain.report),
        "per-tensor: bias correction {:?} vs none {:?}",
        bc.report.output_sqnr_db,
        plain.report.output_sqnr_db
    );
}

#[test]
fn recipe_chosen_by_held_out_measurement_is_never_worse_than_plain_minmax() {
    use qplay_core::ptq::recipe::{quantize_auto, CANDIDATES};
    let g = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    // Calibrated on horses and astronaut, scored on person (every third input is held out).
    let calib = person_inputs(&["horses", "astronaut", "person"]);
    let q = quantize_auto(&g, "Preprocessor/sub:0", &calib, &PtqOptions::default(), &mut |_| {
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    let c = q.report.recipe.as_ref().expect("the report says how the recipe was chosen");
    assert_eq!((c.calibration_inputs, c.held_out_inputs), (2, 1));
    assert_eq!(c.scores.len(), CANDIDATES.len());
    let plain = c.scores.iter().find(|s| s.recipe == "minmax").unwrap();
    let chosen = c.scores.iter().find(|s| s.recipe == c.chosen).unwrap();
    for s in &c.scores {
        assert!(s.worst_db.is_finite() && s.held_out_sqnr_db.len() == 2, "{s:?}");
        assert!(
            chosen.worst_db + 0.05 >= s.worst_db,
            "{} {:.2} dB beats the chosen {:.2}",
            s.recipe,
            s.worst_db,
            chosen.worst_db
        );
    }
    assert!(chosen.worst_db >= plain.worst_db, "never worse than plain MinMax on held-out inputs");
    // The final model is calibrated on all three inputs with the winner, and fully reported.
    assert_eq!(q.report.calibration_inputs, 3);
    assert_eq!(q.report.method, CANDIDATES.iter().find(|r| r.name == c.chosen).unwrap().method.name());
    assert_eq!(q.report.output_sqnr_db.len(), 2);
    assert!(q.report.notes[0].contains("chosen by measurement"), "{:?}", q.report.notes);
    // On this model equalization is worth it (docs/measurements.md: +9 dB), so the search keeps it.
    assert_eq!(c.chosen, "mse+cle+bc", "{c:?}");
}

#[test]
fn cancel_stops_a_run_between_steps_and_a_quantization_between_stages() {
    use qplay_core::model::{ModelError, StepEvent};
    use qplay_core::ptq::quantize_with_progress;
    use std::ops::ControlFlow;
    let g = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    let x = person_inputs(&["person"]).remove(0);
    let feed = [("Preprocessor/sub:0".to_string(), x.clone())];
    let plan = Plan::new(&g, &Registry::new(), &[(feed[0].0.clone(), x.shape.clone())]).unwrap();
    // The run loop stops before the step after the one the hook breaks at: no later step starts.
    let mut started = Vec::new();
    let r = plan.run_hooked(&feed, &mut |_, _| {}, &mut |i, e| {
        if e == StepEvent::Start {
            started.push(i);
        }
        if i == 5 && e == StepEvent::End {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    assert_eq!(r, Err(ModelError::Cancelled));
    assert_eq!(started, (0..=5).collect::<Vec<_>>());
    assert_eq!(ModelError::Cancelled.code(), "cancelled");
    // The plan is untouched: the next run computes what an uninterrupted one does.
    assert_eq!(plan.run(&feed).unwrap(), plan.run_with(&feed, &mut |_, _| {}).unwrap());

    // A quantization told to stop at its second calibration input stops there.
    let calib = person_inputs(&["horses", "astronaut", "person"]);
    let mut stages = Vec::new();
    let r = quantize_with_progress(&g, "Preprocessor/sub:0", &calib, &PtqOptions::default(), &mut |s| {
        stages.push(s.to_string());
        if s.starts_with("calibration: input 2") {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let Err(e) = r else { panic!("a stopped quantization is an error") };
    assert_eq!(e.code(), "cancelled");
    assert!(e.to_string().starts_with("cancelled"), "{e}");
    assert_eq!(stages, ["calibration: input 1 of 3", "calibration: input 2 of 3"]);
}

/// A full-integer TFLite model has no float layers: quantizing it is refused with what to do
/// (quantize its float model, compare the two), not answered with a copy that has no int8
/// layer and an infinite SQNR.
#[test]
fn an_integer_model_is_not_quantized_again() {
    let g = qplay_core::model::load_model(&repo("tests/fixtures/tflite/det_int8.tflite")).unwrap();
    let input = g.inputs[0].name.clone();
    let shape: Vec<usize> = g.inputs[0].shape.iter().map(|d| d.unwrap_or(1)).collect();
    let x = Tensor::f32(shape.clone(), vec![0.1; shape.iter().product()]).unwrap();
    let e = quantize(&g, &input, &[x], &PtqOptions::default()).unwrap_err();
    let m = e.to_string();
    assert!(m.contains("integer already") && m.contains("qplay compare") && m.contains("Conv2D"), "{m}");
}

/// An ONNX INT8 export (QDQ, QOperator or dynamic quantization) has no float layer left:
/// quantizing it again is refused with what to do, naming the quantized ops it runs.
#[test]
fn an_onnx_int8_model_is_not_quantized_again() {
    let g = load_onnx(&repo("www/models/blazeface_short.onnx")).unwrap();
    let x = read_npy(&repo("tests/fixtures/blazeface_short_astronaut/input.npy")).unwrap();
    let qdq = quantize(&g, "input", std::slice::from_ref(&x), &PtqOptions::default()).unwrap();
    let e = quantize(&load_onnx(&qdq.onnx).unwrap(), "input", std::slice::from_ref(&x), &PtqOptions::default());
    let m = e.unwrap_err().to_string();
    assert!(m.contains("quantized already") && m.contains("DequantizeLinear") && m.contains("qplay compare"), "{m}");
    for (file, op) in [
        ("tests/fixtures/torch_ops/dynamic_yolov8.onnx", "ConvInteger"),
        ("tests/fixtures/ultralytics/yolov8_custom18_qop.onnx", "QLinearConv"),
    ] {
        let g = load_onnx(&repo(file)).unwrap();
        assert_eq!(Arithmetic::of(&g), Arithmetic::Quantized, "{file}");
        let input = g.inputs[0].name.clone();
        let x = Tensor::f32(vec![1, 3, 256, 256], vec![0.5; 3 * 256 * 256]).unwrap();
        let m = quantize(&g, &input, &[x], &PtqOptions::default()).unwrap_err().to_string();
        assert!(m.contains("quantized already") && m.contains(op), "{file}: {m}");
    }
    // What the page labels the model by ("Your quantized model") is the core's verdict.
    assert_eq!(Arithmetic::of(&g), Arithmetic::Float);
    assert_eq!(Arithmetic::of(&load_onnx(&qdq.onnx).unwrap()), Arithmetic::Quantized);
    let tfl = qplay_core::model::load_model(&repo("tests/fixtures/tflite/cnn_int8.tflite")).unwrap();
    assert_eq!(Arithmetic::of(&tfl), Arithmetic::FullInteger);
    // A layer the user keeps in FP32 is not a quantized model: keeping every layer still works.
    let all: Vec<String> = qdq.report.layers.iter().map(|l| l.node.clone()).collect();
    let kept = quantize(&g, "input", &[x], &PtqOptions { keep_fp32: all, ..Default::default() }).unwrap();
    assert!(kept.report.layers.is_empty());
}

/// A layer whose input depends on the weights alone (transformers' DETR: the decoder's first
/// self-attention reads the query embeddings, which planning folds into a constant) has no
/// calibration range: it stays FP32, said in a note, and the rest quantizes. It once failed
/// with "no calibration data was observed".
#[test]
fn a_layer_fed_by_constants_alone_stays_fp32() {
    let g = load_onnx(&repo("tests/fixtures/torch_ops/hf_detr.onnx")).unwrap();
    let input = g.inputs[0].name.clone();
    let x: Vec<Tensor> = (0..2)
        .map(|s| {
            Tensor::f32(
                vec![1, 3, 128, 128],
                (0..3 * 128 * 128).map(|i| ((i * 7 + s * 13) % 255) as f32 / 255.0).collect(),
            )
            .unwrap()
        })
        .collect();
    let q = quantize(&g, &input, &x, &PtqOptions::default()).unwrap();
    let q_proj = "/m/model/decoder/layers.0/self_attn/q_proj/MatMul";
    assert!(q.report.kept_fp32.iter().any(|k| k == q_proj), "{:?}", q.report.kept_fp32);
    assert!(q.report.notes.iter().any(|n| n.contains(q_proj) && n.contains("never varies")), "{:?}", q.report.notes);
    assert!(q.report.layers.len() > 20, "the rest is quantized: {}", q.report.layers.len());
}
