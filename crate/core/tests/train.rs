//! Reverse mode over whole plans (`qplay_core::train`): the tape's parameter gradients against
//! finite differences of the distillation loss, Adam bringing a perturbed student back to its
//! teacher (deterministically), a real model (the built-in person detector: every op on its
//! path has a backward), and the error for an op without one.

use qplay_core::model::{load_onnx, Attr, Attrs, Data, Graph, Node, Tensor, ValueInfo};
use qplay_core::train::{distill_loss, Adam, Student};

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// A float32 tensor of uniform values in `[-scale, scale)`.
fn tensor(rng: &mut Rng, shape: &[usize], scale: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor { shape: shape.to_vec(), data: Data::F32((0..n).map(|_| rng.unit() * scale).collect()) }
}

fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<(&str, Attr)>) -> Node {
    Node {
        name: output.into(),
        op_type: op.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: vec![output.into()],
        attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
        fused: Default::default(),
    }
}

fn info(name: &str, shape: &[usize]) -> ValueInfo {
    ValueInfo { name: name.into(), elem_type: 1, shape: shape.iter().copied().map(Some).collect() }
}

/// Conv → Clip(0, 6) → {depthwise Conv stride 2, 1×1 Conv stride 2} → Add → Transpose → Reshape,
/// and a second output concatenating the two branches.
fn tiny(rng: &mut Rng) -> Graph {
    let mut g = Graph { opset: 17, ..Default::default() };
    for (name, shape) in
        [("w1", &[4, 2, 3, 3][..]), ("b1", &[4]), ("w2", &[4, 1, 3, 3]), ("b2", &[4]), ("w3", &[4, 4, 1, 1])]
    {
        g.initializers.insert(name.into(), tensor(rng, shape, 0.5));
    }
    g.initializers.insert("lo".into(), Tensor::scalar_f32(0.0));
    g.initializers.insert("hi".into(), Tensor::scalar_f32(6.0));
    g.initializers.insert("shape".into(), Tensor::vec_i64(vec![1, -1]));
    let pads = |p: i64| ("pads", Attr::Ints(vec![p; 4]));
    let strides = ("strides", Attr::Ints(vec![2, 2]));
    g.nodes = vec![
        node("Conv", &["x", "w1", "b1"], "c1", vec![pads(1)]),
        node("Clip", &["c1", "lo", "hi"], "a1", vec![]),
        node("Conv", &["a1", "w2", "b2"], "c2", vec![pads(1), strides.clone(), ("group", Attr::Int(4))]),
        node("Conv", &["a1", "w3"], "c3", vec![strides]),
        node("Add", &["c2", "c3"], "s", vec![]),
        node("Transpose", &["s"], "t", vec![("perm", Attr::Ints(vec![0, 2, 3, 1]))]),
        node("Reshape", &["t", "shape"], "y", vec![]),
        node("Concat", &["c2", "c3"], "y2", vec![("axis", Attr::Int(1))]),
    ];
    g.inputs = vec![info("x", &[1, 2, 6, 6])];
    g.outputs = vec![info("y", &[1, 36]), info("y2", &[1, 8, 3, 3])];
    g
}

fn perturbed(g: &Graph, rng: &mut Rng, scale: f32) -> Graph {
    let mut s = g.clone();
    for name in ["w1", "b1", "w2", "b2", "w3"] {
        if let Some(Tensor { data: Data::F32(v), .. }) = s.initializers.get_mut(name) {
            v.iter_mut().for_each(|v| *v += rng.unit() * scale);
        }
    }
    s
}

fn teacher_outputs(g: &Graph, x: &[(String, Tensor)]) -> Vec<Tensor> {
    let plan = qplay_core::model::Plan::new(g, &qplay_core::ops::Registry::new(), &[]).unwrap();
    plan.run(x).unwrap()
}

#[test]
fn tape_gradients_match_finite_differences() {
    let mut rng = Rng(21);
    let teacher = tiny(&mut rng);
    let student_graph = perturbed(&teacher, &mut rng, 0.2);
    let x = vec![("x".to_string(), tensor(&mut rng, &[1, 2, 6, 6], 2.0))];
    let want = teacher_outputs(&teacher, &x);
    let mut student = Student::new(&student_graph, &[]).unwrap();
    assert_eq!(student.params().len(), 5);
    let loss_at = |s: &Student| distill_loss(&s.forward(&x).unwrap().outputs, &want).unwrap();
    let tape = student.forward(&x).unwrap();
    let loss = distill_loss(&tape.outputs, &want).unwrap();
    let grads = student.backward(&tape, &loss.grads).unwrap();
    drop(tape);
    check_against_finite_differences(&mut student, &grads, 7, &|s| loss_at(s).value);
}

/// Every `stride`-th element of each parameter: the backward's gradient `grads` against central
/// finite differences of `value_at`; elements where a Clip kink falls within ±h (the one-sided
/// slopes disagree) are skipped, and there must be few of them.
fn check_against_finite_differences(
    student: &mut Student,
    grads: &[Tensor],
    stride: usize,
    value_at: &dyn Fn(&Student) -> f64,
) {
    // Small, so that few Clip kinks fall within ±h; f32 outputs summed in f64 keep the noise
    // near 1e-4 at this step.
    let h = 5e-4f32;
    let (mut checked, mut kinks) = (0, 0);
    for (p, g) in grads.iter().enumerate() {
        let g = g.as_f32().unwrap().to_vec();
        for k in (0..g.len()).step_by(stride) {
            let nudge = |s: &mut Student, d: f32| {
                if let Some(Data::F32(v)) = s.params_mut().nth(p).map(|t| &mut t.data) {
                    v[k] += d;
                }
            };
            let center = value_at(student);
            nudge(student, h);
            let up = value_at(student);
            nudge(student, -2.0 * h);
            let down = value_at(student);
            nudge(student, h);
            let (right, left) = ((up - center) / f64::from(h), (center - down) / f64::from(h));
            if (right - left).abs() > 0.05 * (1.0 + right.abs().max(left.abs())) {
                kinks += 1;
                continue;
            }
            let (fd, an) = ((up - down) / (2.0 * f64::from(h)), f64::from(g[k]));
            assert!(
                (fd - an).abs() <= 1e-2 * (1.0 + an.abs()),
                "parameter {} [{k}]: backward {an}, finite differences {fd}",
                student.params()[p].0
            );
            checked += 1;
        }
    }
    assert!(checked > 20 && kinks * 4 < checked, "{checked} checked, {kinks} skipped at kinks");
}

fn train(seed: u64, steps: usize) -> (Vec<f64>, Vec<Tensor>) {
    let mut rng = Rng(seed);
    let teacher = tiny(&mut rng);
    let mut student = Student::new(&perturbed(&teacher, &mut rng, 0.3), &[]).unwrap();
    let batches: Vec<Vec<(String, Tensor)>> =
        (0..4).map(|_| vec![("x".to_string(), tensor(&mut rng, &[1, 2, 6, 6], 2.0))]).collect();
    let wants: Vec<Vec<Tensor>> = batches.iter().map(|x| teacher_outputs(&teacher, x)).collect();
    let mut adam = Adam::new(0.02);
    let mut losses = Vec::new();
    for step in 0..steps {
        let (x, want) = (&batches[step % 4], &wants[step % 4]);
        let tape = student.forward(x).unwrap();
        let loss = distill_loss(&tape.outputs, want).unwrap();
        let grads = student.backward(&tape, &loss.grads).unwrap();
        drop(tape);
        adam.step(student.params_mut(), &grads).unwrap();
        losses.push(loss.value);
    }
    (losses, student.params().iter().map(|(_, t)| t.clone()).collect())
}

#[test]
fn adam_brings_the_student_back_to_its_teacher_deterministically() {
    let (losses, params) = train(5, 120);
    let first: f64 = losses[..4].iter().sum();
    let last: f64 = losses[losses.len() - 4..].iter().sum();
    assert!(last < 0.2 * first, "loss over the 4 inputs went from {first} to {last}");
    let (again, params2) = train(5, 120);
    assert_eq!(losses, again, "two runs with one seed differ");
    assert_eq!(params, params2);
}

#[test]
fn the_person_detector_trains_end_to_end() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../www/models/person_ssdlite.onnx");
    let g = load_onnx(&std::fs::read(path).expect("model file")).expect("loads");
    let mut rng = Rng(9);
    let x = vec![(g.inputs[0].name.clone(), tensor(&mut rng, &[1, 3, 300, 300], 1.0))];
    let want = teacher_outputs(&g, &x);
    // A student a little off its teacher: every weight scaled by 1.02.
    let mut off = g.clone();
    for t in off.initializers.values_mut() {
        if let Data::F32(v) = &mut t.data {
            v.iter_mut().for_each(|v| *v *= 1.02);
        }
    }
    let mut student = Student::new(&off, &[]).unwrap();
    assert!(student.params().len() > 100, "{} parameters", student.params().len());
    let mut adam = Adam::new(1e-4);
    let mut losses = Vec::new();
    for _ in 0..3 {
        let tape = student.forward(&x).unwrap();
        let loss = distill_loss(&tape.outputs, &want).unwrap();
        let grads = student.backward(&tape, &loss.grads).unwrap();
        drop(tape);
        adam.step(student.params_mut(), &grads).unwrap();
        losses.push(loss.value);
    }
    assert!(losses[0] > 0.0 && losses[2] < losses[0], "losses {losses:?}");
}

#[test]
fn an_op_without_a_backward_is_named() {
    let mut rng = Rng(3);
    let mut g = tiny(&mut rng);
    g.nodes.push(node("Hardmax", &["y"], "p", vec![("axis", Attr::Int(1))]));
    g.outputs = vec![info("p", &[1, 36])];
    let student = Student::new(&g, &[]).unwrap();
    let x = vec![("x".to_string(), tensor(&mut rng, &[1, 2, 6, 6], 1.0))];
    let tape = student.forward(&x).unwrap();
    let r = tensor(&mut rng, &[1, 36], 1.0);
    let err = student.backward(&tape, &[Some(r)]).unwrap_err();
    assert_eq!(err.code(), "no-backward");
    assert!(err.to_string().contains("node `p` (Hardmax) has no backward"), "{err}");
}

#[test]
fn an_op_without_a_backward_in_the_middle_freezes_the_layers_before_it() {
    // Conv → Hardmax (no backward) → the two branches: the branches train, the first Conv gets
    // no gradient and is named as frozen; the strict backward still refuses.
    let mut rng = Rng(5);
    let mut g = tiny(&mut rng);
    g.nodes[1] = node("Hardmax", &["c1"], "a1", vec![("axis", Attr::Int(1))]);
    let student = Student::new(&g, &[]).unwrap();
    let x = vec![("x".to_string(), tensor(&mut rng, &[1, 2, 6, 6], 1.0))];
    let tape = student.forward(&x).unwrap();
    let rs = [Some(tensor(&mut rng, &[1, 36], 1.0)), Some(tensor(&mut rng, &[1, 8, 3, 3], 1.0))];
    assert_eq!(student.backward(&tape, &rs).unwrap_err().code(), "no-backward");
    let (grads, stopped) = student.backward_freezing(&tape, &rs, Vec::new()).unwrap();
    assert_eq!(stopped, [("a1".to_string(), "Hardmax".to_string())]);
    let names: Vec<&str> = student.params().iter().map(|(n, _)| n.as_str()).collect();
    for (name, g) in names.iter().zip(&grads) {
        let moved = g.as_f32().unwrap().iter().any(|&v| v != 0.0);
        assert_eq!(moved, !["w1", "b1"].contains(name), "{name}");
    }
}

#[test]
fn a_model_without_weights_is_refused() {
    let mut g = Graph { opset: 17, ..Default::default() };
    g.nodes = vec![node("Relu", &["x"], "y", vec![])];
    g.inputs = vec![info("x", &[4])];
    g.outputs = vec![info("y", &[4])];
    let err = Student::new(&g, &[]).unwrap_err();
    assert!(err.to_string().contains("no float Conv, Gemm or MatMul weights"), "{err}");
}

#[test]
fn the_feature_term_fits_equalized_channels_and_its_gradients_match_finite_differences() {
    use qplay_core::model::{Plan, PlanOptions};
    use qplay_core::ops::Registry;
    use qplay_core::train::FeatureTerm;
    let mut rng = Rng(33);
    let teacher = tiny(&mut rng);
    let unfused = PlanOptions { fuse_activations: false, ..PlanOptions::default() };
    let plan = Plan::with_options(&teacher, &Registry::new(), &[], unfused).unwrap();
    let xs: Vec<Vec<(String, Tensor)>> =
        (0..2).map(|_| vec![("x".to_string(), tensor(&mut rng, &[1, 2, 6, 6], 2.0))]).collect();
    let names: Vec<String> = ["c1", "a1", "c2", "c3", "y", "nowhere"].iter().map(|s| s.to_string()).collect();
    // Equalization's kind of change: channel c of the first conv scaled by 2^c (weights and
    // bias), so the student's `c1` is the teacher's times 2^c in each channel.
    let mut scaled = teacher.clone();
    for name in ["w1", "b1"] {
        let t = scaled.initializers.get_mut(name).unwrap();
        let per = t.len() / 4;
        if let Data::F32(v) = &mut t.data {
            v.iter_mut().enumerate().for_each(|(i, v)| *v *= (1 << (i / per)) as f32);
        }
    }
    let student = Student::new(&scaled, &[]).unwrap();
    let term = FeatureTerm::fit(&student, &names, &plan, &xs, 1.0).unwrap().unwrap();
    // `y` is an output (the output term has it) and `nowhere` no tensor; `a1` (the clipped
    // `c1`) is no longer a scaled copy everywhere but still mostly one.
    assert!(term.names().iter().any(|n| n == "c1") && !term.names().iter().any(|n| n == "y" || n == "nowhere"));
    let want = term.teacher_run(&plan, &xs[0]).unwrap();
    assert_eq!(want.len(), 2 + term.names().len(), "outputs, then the term's tensors");
    let tape = student.forward(&xs[0]).unwrap();
    let (_, seeds) = term.loss(&tape, &want[2..]).unwrap();
    let at_c1 = student.slot_of("c1").unwrap();
    let g = seeds.iter().find(|(s, _)| *s == at_c1).unwrap().1.as_f32().unwrap().to_vec();
    assert!(g.iter().all(|v| v.abs() < 1e-6), "the fitted factors make c1 match: {:?}", &g[..4]);
    drop(tape);

    // The term's parameter gradients (seeded at the tensors) against finite differences.
    let mut student = Student::new(&perturbed(&teacher, &mut rng, 0.2), &[]).unwrap();
    let term = FeatureTerm::fit(&student, &names, &plan, &xs, 1.0).unwrap().unwrap();
    let want = term.teacher_run(&plan, &xs[1]).unwrap();
    let x = &xs[1];
    let value_at = |s: &Student| term.loss(&s.forward(x).unwrap(), &want[2..]).unwrap().0;
    let tape = student.forward(x).unwrap();
    let (value, seeds) = term.loss(&tape, &want[2..]).unwrap();
    assert!(value > 0.0);
    let grads = student.backward_seeded(&tape, &[None, None], seeds).unwrap();
    drop(tape);
    check_against_finite_differences(&mut student, &grads, 5, &value_at);
}
