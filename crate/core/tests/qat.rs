//! Quantization-aware training from a QDQ model (`qplay_core::train::Qat`): step 0 computes
//! exactly what the QDQ graph computes, exporting untrained values gives the QDQ graph back,
//! LSQ's scale gradient follows its formula, and training lowers the distillation loss of the
//! built-in person detector's PTQ model on photos.

use qplay_core::model::npy::read_npy;
use qplay_core::model::{load_onnx, Data, Graph, Plan, PlanOptions, Tensor};
use qplay_core::ops::grad::Backward;
use qplay_core::ops::quant::fake_quant::FakeQuant;
use qplay_core::ops::{Op, Registry};
use qplay_core::ptq::{quantize, PtqOptions};
use qplay_core::train::{Adam, Qat};

fn read(rel: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const INPUT: &str = "Preprocessor/sub:0";

fn photo(name: &str) -> Vec<(String, Tensor)> {
    vec![(INPUT.to_string(), read_npy(&read(&format!("tests/fixtures/person_ssdlite_{name}/input.npy"))).unwrap())]
}

fn simulate(g: &Graph, x: &[(String, Tensor)]) -> Vec<Tensor> {
    let options = PlanOptions { int8_kernels: false, ..Default::default() };
    Plan::with_options(g, &Registry::new(), &[], options).unwrap().run(x).unwrap()
}

fn person_ptq() -> (Graph, Graph) {
    let g = load_onnx(&read("www/models/person_ssdlite.onnx")).unwrap();
    let calib: Vec<Tensor> = ["horses", "person"].iter().map(|n| photo(n).remove(0).1).collect();
    let q = quantize(&g, INPUT, &calib, &PtqOptions::default()).unwrap();
    (g, load_onnx(&q.onnx).unwrap())
}

#[test]
fn step_zero_is_the_ptq_model_and_exports_back_to_it() {
    let (_, qdq) = person_ptq();
    let qat = Qat::new(&qdq, &[]).unwrap();
    let weights = qat.roles().iter().filter(|r| matches!(r, qplay_core::train::qat::Role::Weight { .. })).count();
    assert_eq!(weights, 88, "every conv's weight trains");
    let biases = qat.roles().iter().filter(|r| matches!(r, qplay_core::train::qat::Role::Bias { .. })).count();
    assert_eq!(biases, 88, "every conv's bias trains (int32, no zero point)");
    let x = photo("astronaut");
    let want = simulate(&qdq, &x);
    let got = qat.student.forward(&x).unwrap().outputs;
    assert_eq!(got, want, "step 0 differs from the QDQ model");
    let back = qat.export().unwrap();
    for (name, t) in &qdq.initializers {
        assert_eq!(back.initializers.get(name), Some(t), "`{name}` changed on a round trip");
    }
}

#[test]
fn lsq_scale_gradient_follows_its_formula() {
    // int8, z = 0, s = 0.5: x = 0.3 → u = 0.6, round 1 (inside): r − u = 0.4;
    // x = 100 → clamps at 127: 127 − 0; x = −0.2 → u = −0.4, round −0 : 0.4; x = −100 → −128.
    let op = FakeQuant::new(1, None);
    let x = Tensor { shape: vec![4], data: Data::F32(vec![0.3, 100.0, -0.2, -100.0]) };
    let s = Tensor::scalar_f32(0.5);
    let z = Tensor { shape: vec![], data: Data::I8(vec![0]) };
    let y = op.eval(&[Some(&x), Some(&s), Some(&z)]).unwrap();
    assert_eq!(y[0].as_f32().unwrap(), &[0.5, 63.5, -0.0, -64.0]);
    let g = Tensor { shape: vec![4], data: Data::F32(vec![1.0, 1.0, 1.0, 1.0]) };
    let grads = op
        .backward(&Backward {
            inputs: &[Some(&x), Some(&s), Some(&z)],
            outputs: &[Some(&y[0])],
            grads: &[Some(&g)],
            needs: &[],
        })
        .unwrap();
    assert_eq!(grads[0].as_ref().unwrap().as_f32().unwrap(), &[1.0, 0.0, 1.0, 0.0], "straight through inside");
    let ds = grads[1].as_ref().unwrap().as_f32().unwrap()[0];
    let want = (1.0 - 0.6) + 127.0 + (0.0 - -0.4) + -128.0;
    assert!((ds - want).abs() < 1e-5, "LSQ: {ds} vs {want}");
    assert!(grads[2].is_none(), "the zero point is fixed");
}

#[test]
fn qat_lowers_the_person_detectors_distillation_loss() {
    let (fp32, qdq) = person_ptq();
    let train: Vec<_> = ["horses", "person"].iter().map(|n| photo(n)).collect();
    let teach: Vec<Vec<Tensor>> = train.iter().map(|x| simulate(&fp32, x)).collect();
    let mut qat = Qat::new(&qdq, &[]).unwrap();
    let xs: Vec<&[(String, Tensor)]> = train.iter().map(Vec::as_slice).collect();
    let ts: Vec<&[Tensor]> = teach.iter().map(Vec::as_slice).collect();
    // The loss on both photos where the weights are now (a step taken and undone).
    let loss_now = |qat: &mut Qat| {
        let before = qat.snapshot();
        let loss = qat.step_batch(&mut Adam::new(1e-4), &xs, &ts).unwrap();
        qat.restore(&before);
        loss
    };
    let mut adam = Adam::new(1e-4);
    let mut losses = vec![loss_now(&mut qat)];
    for _ in 0..3 {
        qat.step_batch(&mut adam, &xs, &ts).unwrap();
        losses.push(loss_now(&mut qat));
    }
    println!("distillation loss on both photos, steps 0 to 3: {losses:?}");
    assert!(losses[3] < losses[0] && losses[2] < losses[0], "{losses:?}");
    // The export runs, and computes what the trained student computes; every bias is
    // requantized to the learned input and weight scales (each bias scale is exactly their
    // product, so the compact form writes all 88 as `Mul`: what integer runtimes assume).
    let exported = qat.export().unwrap();
    assert_eq!(exported.nodes.iter().filter(|n| n.op_type == "Mul").count(), 88);
    // Bit for bit: the weights' FakeQuant is QuantizeLinear → DequantizeLinear, the biases'
    // BiasQuant is the int32 DequantizeLinear at the same scale.
    for x in &train {
        assert_eq!(simulate(&exported, x), qat.student.forward(x).unwrap().outputs, "export vs student");
    }
}

#[test]
fn held_out_split_prefers_inputs_with_objects_and_keeps_both_sides() {
    use qplay_core::train::fine_tune::{held_out_split, held_out_split_among};
    assert_eq!(held_out_split(7), [false, false, false, true, false, false, false]);
    assert_eq!(held_out_split(2), [false, true]);
    // Objects on 0, 2, 5 and 6: the fourth of those (6) is held out; fewer than four: the last.
    assert_eq!(
        held_out_split_among(&[true, false, true, false, false, true, true]),
        [false, false, false, false, false, false, true]
    );
    assert_eq!(held_out_split_among(&[true, false, true, false]), [false, false, true, false]);
    // Fewer than two with objects: the plain split.
    assert_eq!(held_out_split_among(&[false, true, false, false]), held_out_split(4));
}

#[test]
fn fine_tuning_steps_one_at_a_time_and_keeps_the_best_step() {
    use qplay_core::train::fine_tune::{held_out_split, FineTune, QatOptions};
    let (fp32, qdq) = person_ptq();
    let inputs: Vec<_> = ["horses", "person", "astronaut"].iter().map(|n| photo(n)).collect();
    let opts = QatOptions { steps: 2, batch: 1, eval_every: 1, augment: false, ..Default::default() };
    let split = |w: &[Vec<Tensor>]| held_out_split(w.len());
    let scores = std::rc::Rc::new(std::cell::Cell::new(0));
    let counter = scores.clone();
    let evaluator: qplay_core::train::fine_tune::Evaluator = Box::new(move |got, want| {
        assert_eq!(got.len(), want.len());
        counter.set(counter.get() + 1);
        Some(0.5)
    });
    let mut ft = FineTune::new(&fp32, &qdq, inputs, &split, &opts, Box::new(|| 0.0), Some(evaluator)).unwrap();
    assert_eq!(ft.split(), (2, 1));
    assert_eq!(ft.curve().len(), 1, "step 0 is checked at the start");
    assert_eq!(ft.curve()[0].agreement, Some(0.5));
    let ptq = ft.curve()[0].held_out_sqnr_db.unwrap();
    let p1 = ft.step().unwrap();
    assert_eq!((p1.step, p1.agreement, p1.lr), (1, Some(0.5), Some(1e-4)), "cosine schedule starts at lr");
    let p2 = ft.step().unwrap();
    assert!(p2.lr.unwrap() < p1.lr.unwrap(), "and decays");
    assert!(ft.done());
    assert!(ft.step().unwrap_err().to_string().contains("all 2 steps are taken"));
    assert_eq!(scores.get(), 3);
    // The result keeps the best held-out step, never worse than PTQ; asking for it leaves the
    // newest weights in place.
    let newest = simulate(&ft.current().unwrap(), &photo("astronaut"));
    let r = ft.best().unwrap();
    assert!(r.qat_sqnr_db >= ptq && r.ptq_sqnr_db == ptq, "{} vs {ptq}", r.qat_sqnr_db);
    // What changed: every weight and activation scale, nothing when PTQ was kept.
    assert!(r.changes.iter().any(|c| c.kind == "weight") && r.changes.iter().any(|c| c.kind == "activation"));
    let moved = |c: &qplay_core::train::fine_tune::Change| c.scale_change_pct > 0.0 || c.codes_changed_pct > Some(0.0);
    assert_eq!(r.changes.iter().any(moved), r.best_step > 0, "best step {}", r.best_step);
    // Per layer on the held-out photo: each quantized activation against the FP32 model's, the
    // same before and after when PTQ was kept; the graph alone is the result's graph.
    assert!(r.layers.len() >= 50, "{} layers", r.layers.len());
    assert!(r.layers.iter().all(|l| l.ptq_sqnr_db.is_finite() && l.ptq_sqnr_db > 5.0), "{:?}", &r.layers[..3]);
    assert_eq!(r.layers.iter().any(|l| l.qat_sqnr_db != l.ptq_sqnr_db), r.best_step > 0);
    assert_eq!(ft.best_graph().unwrap().initializers, r.graph.initializers);
    assert_eq!(simulate(&ft.current().unwrap(), &photo("astronaut")), newest);
    // One input is not enough to train and check.
    let one = vec![photo("horses")];
    let e = FineTune::new(&fp32, &qdq, one, &split, &opts, Box::new(|| 0.0), None).unwrap_err();
    assert!(e.to_string().contains("give at least two (got 1)"), "{e}");
}

#[test]
fn the_feature_term_matches_the_person_detectors_activations_and_trains() {
    use qplay_core::train::fine_tune::{held_out_split, FineTune, QatOptions};
    let (fp32, qdq) = person_ptq();
    let inputs: Vec<_> = ["horses", "person", "astronaut"].iter().map(|n| photo(n)).collect();
    let split = |w: &[Vec<Tensor>]| held_out_split(w.len());
    let opts = QatOptions { steps: 1, batch: 1, eval_every: 1, feature_weight: 1.0, ..Default::default() };
    let mut ft = FineTune::new(&fp32, &qdq, inputs.clone(), &split, &opts, Box::new(|| 0.0), None).unwrap();
    // Every quantized activation the FP32 model computes under its name (not the input, not
    // the outputs): the person detector's equalized channels are fitted, not dropped.
    let n = ft.feature_tensors().len();
    assert!(n > 60, "{n} tensors in the feature term");
    assert!(!ft.feature_tensors().iter().any(|t| t == INPUT || fp32.outputs.iter().any(|o| &o.name == t)));
    let p = ft.step().unwrap();
    assert!(p.loss.is_some_and(f64::is_finite));
    assert_eq!(ft.best().unwrap().feature_tensors.len(), n);
    // A negative weight is refused with what to give instead.
    let bad = QatOptions { feature_weight: -1.0, ..opts };
    let e = FineTune::new(&fp32, &qdq, inputs.clone(), &split, &bad, Box::new(|| 0.0), None).unwrap_err();
    assert!(e.to_string().contains("feature weight must be 0 (off) or a positive number"), "{e}");
    for mix in [-0.5, 1.5, f32::NAN] {
        let bad = QatOptions { mix, ..opts };
        let e = FineTune::new(&fp32, &qdq, inputs.clone(), &split, &bad, Box::new(|| 0.0), None).unwrap_err();
        assert!(e.to_string().contains("mixup share must be between 0 (off) and 1"), "{e}");
    }
}

#[test]
fn bias_quant_puts_the_bias_on_the_int32_grid_of_the_scale_product() {
    use qplay_core::ops::quant::bias_quant::{on_grid, BiasQuant};
    // s = 0.5 · [0.25, 0.125] = [0.125, 0.0625]: 0.3 → 2.4 → 2 → 0.25; −0.1 → −1.6 → −2 → −0.125.
    let b = Tensor::f32(vec![2], vec![0.3, -0.1]).unwrap();
    let (sx, sw) = (Tensor::scalar_f32(0.5), Tensor::f32(vec![2], vec![0.25, 0.125]).unwrap());
    let y = BiasQuant.eval(&[Some(&b), Some(&sx), Some(&sw)]).unwrap();
    assert_eq!(y[0].as_f32().unwrap(), &[0.25, -0.125]);
    assert_eq!(on_grid(0.1875, 0.125), 0.25, "1.5 rounds half to even: 2");
    let g = Tensor::f32(vec![2], vec![1.5, -2.0]).unwrap();
    let grads = BiasQuant
        .backward(&Backward {
            inputs: &[Some(&b), Some(&sx), Some(&sw)],
            outputs: &[Some(&y[0])],
            grads: &[Some(&g)],
            needs: &[],
        })
        .unwrap();
    assert_eq!(grads[0].as_ref().unwrap().as_f32().unwrap(), &[1.5, -2.0], "straight through");
    assert!(grads[1].is_none() && grads[2].is_none(), "the scales get nothing from the bias");
    let e = BiasQuant.eval(&[Some(&b), Some(&sx), Some(&Tensor::f32(vec![3], vec![1.0; 3]).unwrap())]);
    assert!(e.unwrap_err().to_string().contains("one or 2"));
}

#[test]
fn grid_steps_move_every_weight_by_a_like_share_of_its_grid() {
    use qplay_core::train::qat::Role;
    let (fp32, qdq) = person_ptq();
    let x = photo("person");
    let want = simulate(&fp32, &x);
    // Each channel's largest move in one Adam step (which moves a value by the step size
    // whatever its gradient's size, unless the gradient is as small as Adam's ε), in steps of
    // its grid: percentiles over the channels.
    let moves = |grid: bool| {
        let mut qat = Qat::new(&qdq, &[]).unwrap();
        qat.set_grid_steps(grid);
        let before = qat.snapshot();
        let mut adam = Adam::new(1e-3);
        adam.clip_norm = None;
        qat.step_batch(&mut adam, &[x.as_slice()], &[want.as_slice()]).unwrap();
        let names: Vec<String> = qat.student.params().iter().map(|(n, _)| n.clone()).collect();
        let value = |name: &str, of: &[Tensor]| of[names.iter().position(|n| n == name).unwrap()].clone();
        let after = qat.snapshot();
        let mut r = Vec::new();
        for role in qat.roles() {
            let Role::Weight { param, scale, .. } = role else { continue };
            let (w0, w1, s) = (value(param, &before), value(param, &after), value(scale, &before));
            let (w0, w1, s) =
                (w0.as_f32().unwrap().to_vec(), w1.as_f32().unwrap().to_vec(), s.as_f32().unwrap().to_vec());
            let per = w0.len() / s.len();
            for (c, sc) in s.iter().enumerate() {
                let most = (c * per..(c + 1) * per).map(|i| (w1[i] - w0[i]).abs()).fold(0f32, f32::max);
                if most > 0.0 {
                    r.push(most / sc);
                }
            }
        }
        r.sort_by(f32::total_cmp);
        let at = |p: f64| r[((r.len() - 1) as f64 * p) as usize];
        (at(0.01), at(0.5), at(0.99))
    };
    let (lo, mid, hi) = moves(true);
    assert!(hi / lo < 1.05, "grid steps: {lo} {mid} {hi} steps of the grid");
    let (lo, mid, hi) = moves(false);
    assert!(hi / lo > 10.0, "plain steps: {lo} {mid} {hi} steps of the grid");
}

#[test]
fn sixteen_bit_activations_train_and_export_what_the_student_computes() {
    // 16-bit activations are written as com.microsoft Q/DQ before opset 21: their scales train
    // like the 8-bit ones, step 0 is the QDQ model and the export computes what the student does.
    let g = load_onnx(&read("www/models/blazeface_short.onnx")).unwrap();
    let x = read_npy(&read("tests/fixtures/blazeface_short_astronaut/input.npy")).unwrap();
    let opts = PtqOptions {
        activation: qplay_core::quant::QType { bits: 16, signed: false, restricted: false },
        ..Default::default()
    };
    let qdq = load_onnx(&quantize(&g, "input", std::slice::from_ref(&x), &opts).unwrap().onnx).unwrap();
    assert!(qdq.nodes.iter().any(|n| n.op_type == "com.microsoft::DequantizeLinear"));
    let mut qat = Qat::new(&qdq, &[]).unwrap();
    let acts = qat.roles().iter().filter(|r| matches!(r, qplay_core::train::qat::Role::Activation { .. })).count();
    assert!(acts >= 30, "{acts} activation scales train");
    let input = vec![("input".to_string(), x)];
    assert_eq!(qat.student.forward(&input).unwrap().outputs, simulate(&qdq, &input), "step 0");
    let want = simulate(&g, &input);
    qat.step_batch(&mut Adam::new(1e-4), &[input.as_slice()], &[want.as_slice()]).unwrap();
    let exported = qat.export().unwrap();
    assert_eq!(simulate(&exported, &input), qat.student.forward(&input).unwrap().outputs, "export vs student");
}

#[test]
fn activation_scales_kept_at_ptq_values_do_not_train_and_export_as_they_were() {
    use qplay_core::train::qat::Role;
    let (fp32, qdq) = person_ptq();
    let x = photo("person");
    let teach = simulate(&fp32, &x);
    let mut qat = Qat::with_activation_scales(&qdq, &[], false).unwrap();
    let act_scales: Vec<String> = qat
        .roles()
        .iter()
        .filter_map(|r| if let Role::Activation { scale, .. } = r { Some(scale.clone()) } else { None })
        .collect();
    assert!(act_scales.len() > 50, "{}", act_scales.len());
    let params: Vec<&str> = qat.student.params().iter().map(|(n, _)| n.as_str()).collect();
    assert!(act_scales.iter().all(|s| !params.contains(&s.as_str())), "an activation scale is trained");
    let all = Qat::new(&qdq, &[]).unwrap();
    assert_eq!(all.student.params().len(), params.len() + act_scales.len());
    qat.step_batch(&mut Adam::new(1e-3), &[x.as_slice()], &[teach.as_slice()]).unwrap();
    let exported = qat.export().unwrap();
    let explicit = {
        let mut g = qdq.clone();
        qplay_core::model::qdq_form::explicit_qdq(&mut g);
        g
    };
    for s in &act_scales {
        assert_eq!(exported.initializers.get(s), explicit.initializers.get(s), "`{s}` moved");
    }
    let moved = qat.roles().iter().any(|r| match r {
        Role::Weight { q, .. } => exported.initializers.get(q) != explicit.initializers.get(q),
        _ => false,
    });
    assert!(moved, "no weight code changed after a step at 1e-3");
    assert_eq!(simulate(&exported, &x), qat.student.forward(&x).unwrap().outputs, "export vs student");
}
