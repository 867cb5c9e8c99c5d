//! Every op backward (`Op::backward`) against central finite differences, accumulated in f64,
//! on seeded random inputs and shapes: convolutions with random strides, pads, dilations and
//! groups (depthwise, 1-D), Gemm and MatMul (transposes, broadcast C, batches, vectors), max and
//! average pooling on random geometries (inputs with distinct values, so no window has a tie),
//! global pooling, Resize (nearest, linear and cubic, up and down), Pad, Slice, Split, Softmax, LogSoftmax,
//! broadcasting binary ops, the activations, Clip, Concat, Transpose and the reshape family,
//! Gather/GatherElements/GatherND, TopK, ScatterND, Cast, Pow, LayerNormalization and the
//! reductions. The
//! loss is `Σ r · y` (summed over the outputs) for a random cotangent `r`, so its gradient is
//! exactly what `backward` returns for `grads = [r]`.
use qplay_core::model::{Attr, Attrs, Data, Node, Tensor};
use qplay_core::ops::grad::{Backward, GradError};
use qplay_core::ops::{BuildCtx, Op, Registry};

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// A float32 tensor of uniform values in `[-scale, scale)`.
fn tensor(rng: &mut Rng, shape: &[usize], scale: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor { shape: shape.to_vec(), data: Data::F32((0..n).map(|_| rng.unit() * scale).collect()) }
}

fn op(op_type: &str, n_inputs: usize, attrs: Vec<(&str, Attr)>) -> Box<dyn Op> {
    op_with(op_type, n_inputs, 1, 17, attrs)
}

/// An op with `n_outputs` outputs, built at `opset`.
fn op_with(op_type: &str, n_inputs: usize, n_outputs: usize, opset: i64, attrs: Vec<(&str, Attr)>) -> Box<dyn Op> {
    let node = Node {
        name: "n".into(),
        op_type: op_type.into(),
        inputs: (0..n_inputs).map(|i| format!("i{i}")).collect(),
        outputs: (0..n_outputs).map(|i| format!("y{i}")).collect(),
        attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
        fused: Default::default(),
    };
    let build = Registry::new().get(op_type).unwrap_or_else(|| panic!("no op {op_type}"));
    build(&node, &BuildCtx { opset }).unwrap_or_else(|e| panic!("{op_type}: {e}"))
}

/// `Σ_k r_k · y_k` in f64, over the outputs `k` that have a cotangent.
fn loss(op: &dyn Op, inputs: &[Tensor], rs: &[Option<Vec<f32>>]) -> f64 {
    let refs: Vec<Option<&Tensor>> = inputs.iter().map(Some).collect();
    let ys = op.eval(&refs).unwrap();
    ys.iter()
        .zip(rs)
        .filter_map(|(y, r)| {
            let r = r.as_ref()?;
            Some(y.as_f32().unwrap().iter().zip(r).map(|(&y, &r)| y as f64 * r as f64))
        })
        .flatten()
        .sum()
}

/// Checks `op`'s backward on `inputs` for every float input it gives a gradient for. `h` is
/// the finite-difference step; elements within `kink` of a non-differentiable point of the op
/// (as `near_kink` says) are skipped.
fn check(name: &str, op: &dyn Op, inputs: &[Tensor], rng: &mut Rng, near_kink: &dyn Fn(usize, f32) -> bool) {
    check_outputs(name, op, inputs, rng, near_kink, &[]);
}

/// [`check`] for an op with several outputs, every one in the loss except those in `unused`
/// (which get no gradient, as outputs that do not reach the loss).
fn check_outputs(
    name: &str,
    op: &dyn Op,
    inputs: &[Tensor],
    rng: &mut Rng,
    near_kink: &dyn Fn(usize, f32) -> bool,
    unused: &[usize],
) {
    let refs: Vec<Option<&Tensor>> = inputs.iter().map(Some).collect();
    let ys = op.eval(&refs).unwrap_or_else(|e| panic!("{name}: {e}"));
    let rt: Vec<Option<Tensor>> =
        ys.iter().enumerate().map(|(k, y)| (!unused.contains(&k)).then(|| tensor(rng, &y.shape, 1.0))).collect();
    let outs: Vec<Option<&Tensor>> = ys.iter().map(Some).collect();
    let gin: Vec<Option<&Tensor>> = rt.iter().map(Option::as_ref).collect();
    let grads = op
        .backward(&Backward { inputs: &refs, outputs: &outs, grads: &gin, needs: &[] })
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert_eq!(grads.len(), inputs.len(), "{name}: one gradient per input");
    let rs: Vec<Option<Vec<f32>>> = rt.iter().map(|r| r.as_ref().map(|r| r.as_f32().unwrap().to_vec())).collect();
    let h = 1e-2f32;
    let mut checked = 0;
    for (i, g) in grads.iter().enumerate() {
        let Some(g) = g else { continue };
        assert_eq!(g.shape, inputs[i].shape, "{name}: input {i}'s gradient shape");
        let g = g.as_f32().unwrap();
        let x = inputs[i].as_f32().unwrap();
        // Every element of small tensors, a spread of 48 of larger ones.
        let step = (x.len() / 48).max(1);
        for k in (0..x.len()).step_by(step) {
            if near_kink(i, x[k]) {
                continue;
            }
            let at = |d: f32| {
                let mut xs = inputs.to_vec();
                if let Data::F32(v) = &mut xs[i].data {
                    v[k] += d;
                }
                loss(op, &xs, &rs)
            };
            let fd = (at(h) - at(-h)) / (2.0 * h as f64);
            let an = g[k] as f64;
            assert!(
                (fd - an).abs() <= 5e-3 * (1.0 + an.abs().max(fd.abs())),
                "{name}: d loss / d input {i}[{k}]: backward {an}, finite differences {fd}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "{name}: nothing was checked");
}

fn never(_: usize, _: f32) -> bool {
    false
}

#[test]
fn activations_match_finite_differences() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    type Case<'a> = (&'a str, Vec<(&'a str, Attr)>, f32);
    let cases: Vec<Case> = vec![
        ("Relu", vec![], 0.0),
        ("LeakyRelu", vec![("alpha", Attr::Float(0.1))], 0.0),
        ("Sigmoid", vec![], f32::NAN),
        ("HardSigmoid", vec![], -2.5),
        ("HardSwish", vec![], -3.0),
        ("Tanh", vec![], f32::NAN),
        ("Gelu", vec![], f32::NAN),
        ("Gelu", vec![("approximate", Attr::String("tanh".into()))], f32::NAN),
        ("Elu", vec![("alpha", Attr::Float(0.7))], 0.0),
        ("Softplus", vec![], f32::NAN),
        ("Exp", vec![], f32::NAN),
        ("Neg", vec![], f32::NAN),
        ("Abs", vec![], 0.0),
        ("Erf", vec![], f32::NAN),
        ("Floor", vec![], f32::NAN),
        ("Mish", vec![], f32::NAN),
        ("Swish", vec![("alpha", Attr::Float(0.7))], f32::NAN),
        ("Selu", vec![], 0.0),
        ("Celu", vec![("alpha", Attr::Float(0.8))], 0.0),
        ("Softsign", vec![], 0.0),
        ("ThresholdedRelu", vec![("alpha", Attr::Float(1.0))], 1.0),
        ("Shrink", vec![("bias", Attr::Float(0.3)), ("lambd", Attr::Float(0.5))], 0.5),
        ("Sin", vec![], f32::NAN),
        ("Cos", vec![], f32::NAN),
        ("Atan", vec![], f32::NAN),
        ("Sinh", vec![], f32::NAN),
        ("Cosh", vec![], f32::NAN),
        ("Asinh", vec![], f32::NAN),
    ];
    for (name, attrs, kink) in cases {
        let op = op(name, 1, attrs);
        let x = tensor(&mut rng, &[2, 3, 5], 4.0);
        // Kinks: `kink` and its mirror (HardSigmoid/HardSwish have one at each end); Floor's at
        // every integer.
        let near = |_: usize, v: f32| {
            let k = (v - kink).abs().min((v + kink).abs()) < 0.05;
            let floor = name == "Floor" && (v - v.round()).abs() < 0.05;
            k || floor
        };
        check(name, &*op, &[x], &mut rng, &near);
    }
    for (name, lo) in [("Log", 0.2f32), ("Sqrt", 0.2), ("Reciprocal", 0.5), ("Acosh", 1.2)] {
        let op = op(name, 1, vec![]);
        let mut x = tensor(&mut rng, &[17], 1.0);
        if let Data::F32(v) = &mut x.data {
            v.iter_mut().for_each(|v| *v = v.abs() + lo);
        }
        check(name, &*op, &[x], &mut rng, &never);
    }
    // Functions defined (or smooth) only inside (−1, 1), or with poles at ±π/2.
    for name in ["Asin", "Acos", "Atanh", "Tan"] {
        let op = op(name, 1, vec![]);
        check(name, &*op, &[tensor(&mut rng, &[17], 0.8)], &mut rng, &never);
    }
}

#[test]
fn clip_passes_the_gradient_inside_its_bounds() {
    let mut rng = Rng(7);
    let op = op("Clip", 3, vec![]);
    let x = tensor(&mut rng, &[4, 6], 2.0);
    let (lo, hi) = (Tensor::scalar_f32(-0.5), Tensor::scalar_f32(0.8));
    let near = |i: usize, v: f32| i == 0 && ((v + 0.5).abs() < 0.05 || (v - 0.8).abs() < 0.05);
    check("Clip", &*op, &[x, lo, hi], &mut rng, &near);
}

#[test]
fn binary_ops_undo_broadcasting() {
    let mut rng = Rng(11);
    let shapes: [(&[usize], &[usize]); 4] =
        [(&[2, 3, 4], &[2, 3, 4]), (&[2, 3, 4], &[3, 1]), (&[1, 4], &[3, 1]), (&[5], &[])];
    for name in ["Add", "Sub", "Mul", "Div", "Min", "Max"] {
        for (a, b) in shapes {
            let op = op(name, 2, vec![]);
            let x = tensor(&mut rng, a, 2.0);
            let mut z = tensor(&mut rng, b, 2.0);
            let mut x = x;
            if let (Data::F32(p), Data::F32(q)) = (&mut x.data, &mut z.data) {
                if name == "Div" {
                    q.iter_mut().for_each(|v| *v = v.signum() * (v.abs() + 0.5));
                }
                // Min/Max switch where the operands tie: keep them apart by more than the step.
                if name == "Min" || name == "Max" {
                    p.iter_mut().for_each(|v| *v = (*v * 4.0).round() / 4.0 + 0.1);
                    q.iter_mut().for_each(|v| *v = (*v * 4.0).round() / 4.0);
                }
            }
            check(&format!("{name} {a:?} {b:?}"), &*op, &[x, z], &mut rng, &never);
        }
    }
    let sum = op("Sum", 3, vec![]);
    let xs = [tensor(&mut rng, &[2, 3], 1.0), tensor(&mut rng, &[3], 1.0), tensor(&mut rng, &[2, 1], 1.0)];
    check("Sum", &*sum, &xs, &mut rng, &never);
    // PRelu: the slope per channel, as PyTorch exports it, or one value; X's kink at 0.
    let prelu = op("PRelu", 2, vec![]);
    for slope in [&[3usize, 1, 1][..], &[1], &[3, 4, 5]] {
        let (x, s) = (tensor(&mut rng, &[2, 3, 4, 5], 2.0), tensor(&mut rng, slope, 0.5));
        check(&format!("PRelu {slope:?}"), &*prelu, &[x, s], &mut rng, &|i, v| i == 0 && v.abs() < 0.05);
    }
}

#[test]
fn layout_ops_route_the_gradient_back() {
    let mut rng = Rng(13);
    let t = op("Transpose", 1, vec![("perm", Attr::Ints(vec![2, 0, 1]))]);
    check("Transpose", &*t, &[tensor(&mut rng, &[2, 3, 4], 1.0)], &mut rng, &never);
    let c = op("Concat", 3, vec![("axis", Attr::Int(1))]);
    let xs = [tensor(&mut rng, &[2, 1, 3], 1.0), tensor(&mut rng, &[2, 4, 3], 1.0), tensor(&mut rng, &[2, 2, 3], 1.0)];
    check("Concat", &*c, &xs, &mut rng, &never);
    let r = op("Reshape", 2, vec![]);
    check("Reshape", &*r, &[tensor(&mut rng, &[2, 6], 1.0), Tensor::vec_i64(vec![3, -1])], &mut rng, &never);
    let f = op("Flatten", 1, vec![("axis", Attr::Int(2))]);
    check("Flatten", &*f, &[tensor(&mut rng, &[2, 3, 2, 2], 1.0)], &mut rng, &never);
    for (name, mode) in
        [("DepthToSpace", "DCR"), ("DepthToSpace", "CRD"), ("SpaceToDepth", "DCR"), ("SpaceToDepth", "CRD")]
    {
        let op = op(name, 1, vec![("blocksize", Attr::Int(2)), ("mode", Attr::String(mode.into()))]);
        check(&format!("{name} {mode}"), &*op, &[tensor(&mut rng, &[2, 8, 4, 6], 1.0)], &mut rng, &never);
    }
    let d = op_with("Dropout", 1, 2, 17, vec![]);
    check_outputs("Dropout", &*d, &[tensor(&mut rng, &[3, 4], 1.0)], &mut rng, &never, &[1]);
}

#[test]
fn instance_norm_matches_finite_differences() {
    let mut rng = Rng(17);
    let op = op("InstanceNormalization", 3, vec![("epsilon", Attr::Float(1e-3))]);
    for shape in [&[2usize, 3, 4, 5][..], &[1, 2, 7]] {
        let c = shape[1];
        let xs = [tensor(&mut rng, shape, 2.0), tensor(&mut rng, &[c], 1.5), tensor(&mut rng, &[c], 1.0)];
        check(&format!("InstanceNormalization {shape:?}"), &*op, &xs, &mut rng, &never);
    }
}

#[test]
fn conv_matches_finite_differences_on_random_geometries() {
    let mut rng = Rng(0x5eed);
    let mut done = 0;
    for case in 0..24 {
        let two_d = case % 6 != 5;
        let c_in = 1 + rng.below(4);
        let group = match rng.below(3) {
            0 => 1,
            1 if c_in.is_multiple_of(2) => 2,
            _ => c_in,
        };
        let m = group * (1 + rng.below(3));
        let k = 1 + rng.below(3);
        let (stride, dil) = (1 + rng.below(2), 1 + rng.below(2));
        let pads: Vec<i64> = (0..if two_d { 4 } else { 2 }).map(|_| rng.below(k.min(2) + 1) as i64).collect();
        let spatial: Vec<usize> = (0..if two_d { 2 } else { 1 }).map(|_| 4 + rng.below(5)).collect();
        if spatial.iter().any(|&s| s + 2 < (k - 1) * dil + 1) {
            continue;
        }
        let nd = spatial.len();
        let mut attrs = vec![
            ("group", Attr::Int(group as i64)),
            ("strides", Attr::Ints(vec![stride as i64; nd])),
            ("dilations", Attr::Ints(vec![dil as i64; nd])),
            ("pads", Attr::Ints(pads.clone())),
        ];
        if case % 2 == 0 {
            attrs.push(("kernel_shape", Attr::Ints(vec![k as i64; nd])));
        }
        let with_bias = case % 3 != 0;
        let op = op("Conv", if with_bias { 3 } else { 2 }, attrs);
        let mut xs = vec![tensor(&mut rng, &[[2, c_in].as_slice(), &spatial].concat(), 1.0)];
        xs.push(tensor(&mut rng, &[[m, c_in / group].as_slice(), &vec![k; nd]].concat(), 1.0));
        if with_bias {
            xs.push(tensor(&mut rng, &[m], 1.0));
        }
        let name = format!(
            "Conv #{case}: c_in {c_in} m {m} group {group} k {k} stride {stride} dil {dil} pads {pads:?} x {spatial:?}"
        );
        check(&name, &*op, &xs, &mut rng, &never);
        done += 1;
    }
    assert!(done >= 16, "only {done} geometries were valid");
}

#[test]
fn conv_transpose_matches_finite_differences_on_random_geometries() {
    let mut rng = Rng(0xdec0);
    let mut done = 0;
    for case in 0..24 {
        let two_d = case % 6 != 5;
        let c_in = 1 + rng.below(4);
        let group = match rng.below(3) {
            0 => 1,
            1 if c_in.is_multiple_of(2) => 2,
            _ => c_in,
        };
        let m_per_group = 1 + rng.below(3);
        let k = 1 + rng.below(3);
        let (stride, dil) = (1 + rng.below(2), 1 + rng.below(2));
        let nd = if two_d { 2 } else { 1 };
        let pads: Vec<i64> = (0..2 * nd).map(|_| rng.below(k.min(2)) as i64).collect();
        let out_pad = rng.below(stride.max(dil)) as i64;
        let spatial: Vec<usize> = (0..nd).map(|_| 2 + rng.below(4)).collect();
        let mut attrs = vec![
            ("group", Attr::Int(group as i64)),
            ("strides", Attr::Ints(vec![stride as i64; nd])),
            ("dilations", Attr::Ints(vec![dil as i64; nd])),
            ("pads", Attr::Ints(pads.clone())),
            ("output_padding", Attr::Ints(vec![out_pad; nd])),
        ];
        if case % 2 == 0 {
            attrs.push(("kernel_shape", Attr::Ints(vec![k as i64; nd])));
        }
        let with_bias = case % 3 != 0;
        let op = op("ConvTranspose", if with_bias { 3 } else { 2 }, attrs);
        let mut xs = vec![tensor(&mut rng, &[[2, c_in].as_slice(), &spatial].concat(), 1.0)];
        xs.push(tensor(&mut rng, &[[c_in, m_per_group].as_slice(), &vec![k; nd]].concat(), 1.0));
        if with_bias {
            xs.push(tensor(&mut rng, &[m_per_group * group], 1.0));
        }
        let refs: Vec<Option<&Tensor>> = xs.iter().map(Some).collect();
        if op.eval(&refs).is_err() {
            continue; // pads that remove the whole output
        }
        let name = format!(
            "ConvTranspose #{case}: c_in {c_in} m/g {m_per_group} group {group} k {k} stride {stride} dil {dil} \
             pads {pads:?} output_padding {out_pad} x {spatial:?}"
        );
        check(&name, &*op, &xs, &mut rng, &never);
        done += 1;
    }
    assert!(done >= 16, "only {done} geometries were valid");
}

/// The gradients of a 2-D depthwise convolution (one filter per channel) by their definition,
/// in f64, over every output and tap: `(dX, dW, dB)`.
#[allow(clippy::too_many_arguments)]
fn depthwise_reference(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    (n, c, h, wd): (usize, usize, usize, usize),
    (kh, kw): (usize, usize),
    (oh, ow): (usize, usize),
    s: [usize; 2],
    d: [usize; 2],
    p: [usize; 2],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; c]);
    for b in 0..n {
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let g = dy[((b * c + ch) * oh + oy) * ow + ox] as f64;
                    db[ch] += g;
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * s[0] + ky * d[0]) as isize - p[0] as isize;
                            let ix = (ox * s[1] + kx * d[1]) as isize - p[1] as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                continue;
                            }
                            let xi = ((b * c + ch) * h + iy as usize) * wd + ix as usize;
                            let wi = (ch * kh + ky) * kw + kx;
                            dw[wi] += g * x[xi] as f64;
                            dx[xi] += g * w[wi] as f64;
                        }
                    }
                }
            }
        }
    }
    (dx, dw, db)
}

#[test]
fn depthwise_backward_equals_its_definition_on_every_element() {
    // The depthwise kernel (padded planes, one run per tap and row) against the definition, on
    // every value: strides 1–3, dilations 1–2, asymmetric pads, 1×1 to 5×5 and non-square
    // kernels, batch 2, enough channels to split across threads.
    let mut rng = Rng(0xd3);
    for case in 0..20 {
        let (n, c) = (1 + case % 2, [1, 3, 8, 40][case % 4]);
        let (kh, kw) = (1 + rng.below(5), 1 + rng.below(5));
        let s = [1 + rng.below(3), 1 + rng.below(3)];
        let d = [1 + rng.below(2), 1 + rng.below(2)];
        let pads: Vec<usize> = [kh, kw, kh, kw].iter().map(|&k| rng.below(k)).collect();
        let (h, wd) = (kh * d[0] + rng.below(9), kw * d[1] + rng.below(12));
        let oh = (h + pads[0] + pads[2] - (kh - 1) * d[0] - 1) / s[0] + 1;
        let ow = (wd + pads[1] + pads[3] - (kw - 1) * d[1] - 1) / s[1] + 1;
        let attrs = vec![
            ("group", Attr::Int(c as i64)),
            ("strides", Attr::Ints(s.iter().map(|&v| v as i64).collect())),
            ("dilations", Attr::Ints(d.iter().map(|&v| v as i64).collect())),
            ("pads", Attr::Ints(pads.iter().map(|&v| v as i64).collect())),
        ];
        let op = op("Conv", 3, attrs);
        let (x, w, b) = (
            tensor(&mut rng, &[n, c, h, wd], 1.0),
            tensor(&mut rng, &[c, 1, kh, kw], 1.0),
            tensor(&mut rng, &[c], 1.0),
        );
        let dy = tensor(&mut rng, &[n, c, oh, ow], 1.0);
        let inputs = [Some(&x), Some(&w), Some(&b)];
        let y = op.eval(&inputs).unwrap();
        assert_eq!(y[0].shape, dy.shape, "case {case}");
        let got = op
            .backward(&Backward { inputs: &inputs, outputs: &[Some(&y[0])], grads: &[Some(&dy)], needs: &[] })
            .unwrap();
        let want = depthwise_reference(
            x.as_f32().unwrap(),
            w.as_f32().unwrap(),
            dy.as_f32().unwrap(),
            (n, c, h, wd),
            (kh, kw),
            (oh, ow),
            s,
            d,
            [pads[0], pads[1]],
        );
        for (k, (g, want)) in got.iter().zip([want.0, want.1, want.2]).enumerate() {
            let g = g.as_ref().unwrap().as_f32().unwrap();
            assert_eq!(g.len(), want.len());
            for (i, (&a, &e)) in g.iter().zip(&want).enumerate() {
                assert!(
                    (a as f64 - e).abs() <= 1e-4 * (1.0 + e.abs()),
                    "case {case} ({kh}×{kw}, s {s:?}, d {d:?}, pads {pads:?}, x {h}×{wd}): input {k}[{i}]: {a} vs {e}"
                );
            }
        }
    }
}

#[test]
fn batch_norm_in_inference_mode() {
    let mut rng = Rng(17);
    let op = op("BatchNormalization", 5, vec![("epsilon", Attr::Float(1e-3))]);
    let mut var = tensor(&mut rng, &[3], 1.0);
    if let Data::F32(v) = &mut var.data {
        v.iter_mut().for_each(|v| *v = v.abs() + 0.1);
    }
    let xs = [
        tensor(&mut rng, &[2, 3, 4], 2.0),
        tensor(&mut rng, &[3], 1.0),
        tensor(&mut rng, &[3], 1.0),
        tensor(&mut rng, &[3], 1.0),
        var,
    ];
    check("BatchNormalization", &*op, &xs, &mut rng, &never);
}

#[test]
fn an_op_without_a_backward_says_so() {
    // Forward-only ops answer `NoBackward`, which training turns into an error naming them.
    let op = op("NonMaxSuppression", 2, vec![]);
    assert_eq!(
        op.backward(&Backward { inputs: &[], outputs: &[], grads: &[], needs: &[] }),
        Err(GradError::NoBackward)
    );
}

#[test]
fn gemm_matches_finite_differences() {
    let mut rng = Rng(19);
    // (C's shape as a function of M and N, or None for no C)
    type CShape = fn(usize, usize) -> Option<Vec<usize>>;
    let cs: [CShape; 7] = [
        |_, _| None,
        |m, n| Some(vec![m, n]),
        |_, n| Some(vec![n]),
        |m, _| Some(vec![m, 1]),
        |_, n| Some(vec![1, n]),
        |_, _| Some(vec![]),
        |_, _| Some(vec![1]),
    ];
    for case in 0..28 {
        let (ta, tb) = (case % 2 == 1, case / 2 % 2 == 1);
        let (m, k, n) = (1 + rng.below(4), 1 + rng.below(5), 1 + rng.below(4));
        let (alpha, beta) = [(1.0, 1.0), (0.7, -1.3), (-2.0, 0.0), (1.0, 0.5)][case % 4];
        let c = cs[case % 7](m, n);
        let attrs = vec![
            ("transA", Attr::Int(ta as i64)),
            ("transB", Attr::Int(tb as i64)),
            ("alpha", Attr::Float(alpha)),
            ("beta", Attr::Float(beta)),
        ];
        let op = op("Gemm", if c.is_some() { 3 } else { 2 }, attrs);
        let mut xs = vec![
            tensor(&mut rng, &if ta { [k, m] } else { [m, k] }, 1.0),
            tensor(&mut rng, &if tb { [n, k] } else { [k, n] }, 1.0),
        ];
        if let Some(c) = &c {
            xs.push(tensor(&mut rng, c, 1.0));
        }
        let name = format!("Gemm #{case}: m {m} k {k} n {n} transA {ta} transB {tb} alpha {alpha} beta {beta} C {c:?}");
        check(&name, &*op, &xs, &mut rng, &never);
    }
}

#[test]
fn matmul_matches_finite_differences_with_batches_and_vectors() {
    let mut rng = Rng(23);
    let shapes: [(&[usize], &[usize]); 12] = [
        (&[3, 4], &[4, 5]),
        (&[2, 3, 4], &[4, 5]),
        (&[2, 3, 4], &[2, 4, 5]),
        (&[2, 1, 3, 4], &[3, 4, 2]),
        (&[1, 3, 4], &[2, 4, 5]),
        (&[3, 4], &[2, 2, 4, 3]),
        (&[4], &[4, 5]),
        (&[2, 3, 4], &[4]),
        (&[4], &[4]),
        (&[5], &[2, 5, 3]),
        (&[2, 1, 4], &[2, 4, 1]),
        (&[2, 2, 1, 3], &[1, 3, 2]),
    ];
    for (a, b) in shapes {
        let op = op("MatMul", 2, vec![]);
        let xs = [tensor(&mut rng, a, 1.0), tensor(&mut rng, b, 1.0)];
        check(&format!("MatMul {a:?} × {b:?}"), &*op, &xs, &mut rng, &never);
    }
}

/// A float tensor of `shape` holding distinct values `0.1` apart, shuffled: no window ever has
/// a tie, nor two values closer than the finite-difference step.
fn distinct(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 0.1).collect();
    for i in (1..n).rev() {
        v.swap(i, rng.below(i + 1));
    }
    Tensor { shape: shape.to_vec(), data: Data::F32(v) }
}

/// A pool's attributes, X's spatial shape and a description.
type PoolCase = (Vec<(&'static str, Attr)>, Vec<usize>, String);

/// Random pooling geometries: 1-D to 3-D, kernels 1–3, strides and dilations 1–2, pads below the
/// dilated kernel, ceil_mode either way. `None` when the window does not fit.
fn pool_attrs(rng: &mut Rng, case: usize, dilate: bool) -> Option<PoolCase> {
    let nd = [2, 2, 1, 3][case % 4];
    let k: Vec<usize> = (0..nd).map(|_| 1 + rng.below(3)).collect();
    let s: Vec<usize> = (0..nd).map(|_| 1 + rng.below(2)).collect();
    let d: Vec<usize> = (0..nd).map(|_| if dilate { 1 + rng.below(2) } else { 1 }).collect();
    let eff: Vec<usize> = (0..nd).map(|i| (k[i] - 1) * d[i] + 1).collect();
    let pads: Vec<usize> = (0..2 * nd).map(|i| rng.below(eff[i % nd].min(3))).collect();
    let spatial: Vec<usize> = (0..nd).map(|_| if nd == 3 { 3 + rng.below(3) } else { 3 + rng.below(5) }).collect();
    if (0..nd).any(|i| spatial[i] + pads[i] + pads[i + nd] < eff[i]) {
        return None;
    }
    let ceil = case % 3 == 1;
    let desc = format!("k {k:?} s {s:?} d {d:?} pads {pads:?} x {spatial:?} ceil {ceil}");
    let ints = |v: &[usize]| Attr::Ints(v.iter().map(|&x| x as i64).collect());
    let mut attrs = vec![
        ("kernel_shape", ints(&k)),
        ("strides", ints(&s)),
        ("pads", ints(&pads)),
        ("ceil_mode", Attr::Int(ceil as i64)),
    ];
    if dilate {
        attrs.push(("dilations", ints(&d)));
    }
    Some((attrs, spatial, desc))
}

#[test]
fn max_pool_routes_the_gradient_to_each_window_maximum() {
    let mut rng = Rng(29);
    let mut done = 0;
    for case in 0..32 {
        let Some((attrs, spatial, desc)) = pool_attrs(&mut rng, case, true) else { continue };
        let op = op("MaxPool", 1, attrs);
        let x = distinct(&mut rng, &[[2, 2].as_slice(), &spatial].concat());
        check(&format!("MaxPool #{case}: {desc}"), &*op, &[x], &mut rng, &never);
        done += 1;
    }
    assert!(done >= 24, "only {done} geometries were valid");
    // 8-bit inputs pool too, but take no gradient.
    let op = op("MaxPool", 1, vec![("kernel_shape", Attr::Ints(vec![2, 2]))]);
    let x = Tensor { shape: vec![1, 1, 2, 2], data: Data::U8(vec![1, 2, 3, 4]) };
    let r = tensor(&mut rng, &[1, 1, 1, 1], 1.0);
    let g = op.backward(&Backward { inputs: &[Some(&x)], outputs: &[None], grads: &[Some(&r)], needs: &[] }).unwrap();
    assert!(g[0].is_none());
}

#[test]
fn max_pool_ties_go_to_the_first_maximum() {
    // One window over [[1, 3], [3, 2]]: the first 3 in row-major order takes the gradient.
    let op = op("MaxPool", 1, vec![("kernel_shape", Attr::Ints(vec![2, 2]))]);
    let x = Tensor { shape: vec![1, 1, 2, 2], data: Data::F32(vec![1.0, 3.0, 3.0, 2.0]) };
    let r = Tensor { shape: vec![1, 1, 1, 1], data: Data::F32(vec![5.0]) };
    let g = op.backward(&Backward { inputs: &[Some(&x)], outputs: &[None], grads: &[Some(&r)], needs: &[] }).unwrap();
    assert_eq!(g[0].as_ref().unwrap().as_f32().unwrap(), [0.0, 5.0, 0.0, 0.0]);
    // NaN never wins, as in the forward.
    let x = Tensor { shape: vec![1, 1, 2, 2], data: Data::F32(vec![f32::NAN, 1.0, 0.5, 1.0]) };
    let g = op.backward(&Backward { inputs: &[Some(&x)], outputs: &[None], grads: &[Some(&r)], needs: &[] }).unwrap();
    assert_eq!(g[0].as_ref().unwrap().as_f32().unwrap()[1..], [5.0, 0.0, 0.0]);
}

#[test]
fn average_pool_matches_finite_differences() {
    let mut rng = Rng(31);
    let mut done = 0;
    for case in 0..32 {
        let Some((mut attrs, spatial, desc)) = pool_attrs(&mut rng, case, case % 5 == 4) else { continue };
        let include = case % 2 == 0;
        attrs.push(("count_include_pad", Attr::Int(include as i64)));
        let op = op("AveragePool", 1, attrs);
        let x = tensor(&mut rng, &[[2, 3].as_slice(), &spatial].concat(), 1.0);
        check(&format!("AveragePool #{case}: {desc} count_include_pad {include}"), &*op, &[x], &mut rng, &never);
        done += 1;
    }
    assert!(done >= 24, "only {done} geometries were valid");
}

#[test]
fn global_pools_match_finite_differences() {
    let mut rng = Rng(37);
    for shape in [&[2, 3, 4, 5][..], &[1, 2, 7], &[2, 1, 2, 3, 2]] {
        let avg = op("GlobalAveragePool", 1, vec![]);
        check(&format!("GlobalAveragePool {shape:?}"), &*avg, &[tensor(&mut rng, shape, 1.0)], &mut rng, &never);
        let max = op("GlobalMaxPool", 1, vec![]);
        check(&format!("GlobalMaxPool {shape:?}"), &*max, &[distinct(&mut rng, shape)], &mut rng, &never);
    }
}

fn f32s(v: &[f32]) -> Tensor {
    Tensor { shape: vec![v.len()], data: Data::F32(v.to_vec()) }
}

#[test]
fn resize_scatters_the_gradient_back_to_its_taps() {
    let mut rng = Rng(41);
    let none = f32s(&[]);
    // (mode, coordinate_transformation_mode, nearest_mode, X's shape, scales, sizes)
    type Case<'a> = (&'a str, &'a str, &'a str, &'a [usize], &'a [f32], &'a [i64]);
    let cases: [Case; 16] = [
        ("cubic", "half_pixel", "", &[1, 2, 3, 4], &[1.0, 1.0, 2.0, 2.0], &[]),
        ("cubic", "align_corners", "", &[1, 1, 4, 4], &[], &[1, 1, 3, 6]),
        ("cubic", "asymmetric", "", &[1, 2, 5, 3], &[1.0, 1.0, 0.6, 1.5], &[]),
        ("nearest", "asymmetric", "floor", &[1, 2, 3, 4], &[1.0, 1.0, 2.0, 2.0], &[]),
        ("nearest", "half_pixel", "round_prefer_floor", &[1, 2, 6, 5], &[1.0, 1.0, 0.5, 0.5], &[]),
        ("nearest", "half_pixel", "round_prefer_ceil", &[1, 2, 4, 5], &[], &[1, 2, 7, 3]),
        ("nearest", "align_corners", "ceil", &[2, 1, 3, 3], &[], &[2, 1, 5, 2]),
        ("nearest", "tf_half_pixel_for_nn", "round_prefer_floor", &[1, 2, 3, 3], &[1.0, 1.0, 1.5, 2.5], &[]),
        ("linear", "half_pixel", "", &[1, 2, 3, 4], &[1.0, 1.0, 2.0, 2.0], &[]),
        ("linear", "align_corners", "", &[1, 2, 3, 4], &[], &[1, 2, 5, 7]),
        ("linear", "asymmetric", "", &[1, 2, 6, 5], &[1.0, 1.0, 0.5, 0.6], &[]),
        ("linear", "pytorch_half_pixel", "", &[1, 1, 3, 4], &[], &[1, 1, 1, 5]),
        ("linear", "half_pixel_symmetric", "", &[1, 2, 4, 3], &[1.0, 1.0, 1.5, 0.7], &[]),
        ("linear", "half_pixel", "", &[2, 3, 5], &[1.0, 1.0, 1.7], &[]),
        ("linear", "half_pixel", "", &[2, 2, 3, 4], &[1.0, 2.0, 1.0, 1.0], &[]),
        ("nearest", "asymmetric", "floor", &[1, 1, 4, 4], &[1.0, 1.0, 1.0, 1.0], &[]),
    ];
    for (mode, coord, nearest, shape, scales, sizes) in cases {
        let mut attrs =
            vec![("mode", Attr::String(mode.into())), ("coordinate_transformation_mode", Attr::String(coord.into()))];
        if !nearest.is_empty() {
            attrs.push(("nearest_mode", Attr::String(nearest.into())));
        }
        let mut xs = vec![tensor(&mut rng, shape, 1.0), none.clone(), f32s(scales)];
        if !sizes.is_empty() {
            xs.push(Tensor::vec_i64(sizes.to_vec()));
        }
        let op = op("Resize", xs.len(), attrs);
        let name = format!("Resize {mode} {coord} {nearest} {shape:?} scales {scales:?} sizes {sizes:?}");
        check(&name, &*op, &xs, &mut rng, &never);
    }
    // Resampling only the axes given (opset 18's `axes`).
    let some_axes = op("Resize", 3, vec![("mode", Attr::String("linear".into())), ("axes", Attr::Ints(vec![-1, 2]))]);
    let xs = [tensor(&mut rng, &[1, 2, 4, 3], 1.0), none.clone(), f32s(&[2.5, 0.5])];
    check("Resize linear axes [-1, 2]", &*some_axes, &xs, &mut rng, &never);
    // tf_crop_and_resize: elements it extrapolates take no gradient.
    let attrs = vec![
        ("mode", Attr::String("linear".into())),
        ("coordinate_transformation_mode", Attr::String("tf_crop_and_resize".into())),
        ("extrapolation_value", Attr::Float(0.5)),
    ];
    let op = op("Resize", 4, attrs);
    let roi = f32s(&[0.0, 0.0, 0.2, -0.1, 1.0, 1.0, 0.9, 1.3]);
    let xs = [tensor(&mut rng, &[1, 2, 4, 5], 1.0), roi, none.clone(), Tensor::vec_i64(vec![1, 2, 3, 6])];
    check("Resize tf_crop_and_resize", &*op, &xs, &mut rng, &never);
    // The legacy forms: Resize-10 and Upsample take (X, scales).
    for (ty, opset, mode) in [("Resize", 10, "linear"), ("Resize", 10, "nearest"), ("Upsample", 9, "nearest")] {
        let op = op_with(ty, 2, 1, opset, vec![("mode", Attr::String(mode.into()))]);
        let xs = [tensor(&mut rng, &[1, 2, 3, 4], 1.0), f32s(&[1.0, 1.0, 2.0, 1.5])];
        check(&format!("{ty}-{opset} {mode}"), &*op, &xs, &mut rng, &never);
    }
}

#[test]
fn pad_sums_the_gradient_of_every_copy() {
    let mut rng = Rng(43);
    // (mode, X's shape, pads, axes)
    type Case<'a> = (&'a str, &'a [usize], &'a [i64], Option<&'a [i64]>);
    let cases: [Case; 9] = [
        ("constant", &[2, 3, 4], &[0, 1, 2, 0, 2, 1], None),
        ("constant", &[2, 3, 4], &[0, -1, 2, 1, 1, -2], None),
        ("reflect", &[1, 2, 4, 5], &[0, 0, 2, 3, 0, 0, 3, 4], None),
        ("reflect", &[3, 4], &[1, -1, 2, 2], None),
        ("edge", &[1, 2, 3, 4], &[0, 0, 4, 1, 0, 0, 2, 5], None),
        ("edge", &[2, 3, 1], &[1, 0, 2, 0, 3, 1], None),
        ("wrap", &[1, 2, 3, 4], &[0, 0, 2, 5, 0, 0, 4, 3], None),
        ("reflect", &[2, 4, 5], &[3, 2, 1, 4], Some(&[-1, 1])),
        ("constant", &[5], &[3, 2], None),
    ];
    for (mode, shape, pads, axes) in cases {
        let op = op("Pad", if axes.is_some() { 4 } else { 3 }, vec![("mode", Attr::String(mode.into()))]);
        let mut xs = vec![tensor(&mut rng, shape, 1.0), Tensor::vec_i64(pads.to_vec()), Tensor::scalar_f32(0.25)];
        if let Some(a) = axes {
            xs.push(Tensor::vec_i64(a.to_vec()));
        }
        check(&format!("Pad {mode} {shape:?} pads {pads:?} axes {axes:?}"), &*op, &xs, &mut rng, &never);
    }
    // Opset < 11: pads and value are attributes.
    let op = op_with(
        "Pad",
        1,
        1,
        10,
        vec![("mode", Attr::String("reflect".into())), ("pads", Attr::Ints(vec![0, 2, 1, 3]))],
    );
    check("Pad-10 reflect", &*op, &[tensor(&mut rng, &[2, 4], 1.0)], &mut rng, &never);
}

#[test]
fn slice_places_the_gradient_back() {
    let mut rng = Rng(47);
    // (X's shape, starts, ends, axes, steps)
    type Case<'a> = (&'a [usize], &'a [i64], &'a [i64], &'a [i64], &'a [i64]);
    let cases: [Case; 7] = [
        (&[4, 5], &[1, 0], &[3, 5], &[0, 1], &[1, 2]),
        (&[4, 5], &[-1, 4], &[i64::MIN, 0], &[0, 1], &[-1, -2]),
        (&[2, 3, 6], &[1], &[i64::MAX], &[-1], &[3]),
        (&[2, 3, 6], &[5, 2], &[-7, 0], &[2, 1], &[-2, -1]),
        (&[3, 4, 5], &[0, 1, -3], &[2, 10, -1], &[0, 1, 2], &[1, 1, 1]),
        (&[6], &[-2], &[1], &[0], &[-3]),
        (&[2, 3, 4, 2], &[0, 1], &[9, 3], &[-2, 1], &[2, 1]),
    ];
    for (shape, starts, ends, axes, steps) in cases {
        let op = op("Slice", 5, vec![]);
        let xs = [
            tensor(&mut rng, shape, 1.0),
            Tensor::vec_i64(starts.to_vec()),
            Tensor::vec_i64(ends.to_vec()),
            Tensor::vec_i64(axes.to_vec()),
            Tensor::vec_i64(steps.to_vec()),
        ];
        let name = format!("Slice {shape:?} starts {starts:?} ends {ends:?} axes {axes:?} steps {steps:?}");
        check(&name, &*op, &xs, &mut rng, &never);
    }
    // Opset < 10: attributes, no steps.
    let attrs =
        vec![("starts", Attr::Ints(vec![1, -3])), ("ends", Attr::Ints(vec![3, 100])), ("axes", Attr::Ints(vec![0, 1]))];
    let op = op_with("Slice", 1, 1, 9, attrs);
    check("Slice-9", &*op, &[tensor(&mut rng, &[4, 5], 1.0)], &mut rng, &never);
}

#[test]
fn split_joins_the_parts_gradients() {
    let mut rng = Rng(53);
    let op = op_with("Split", 2, 3, 17, vec![("axis", Attr::Int(1))]);
    let xs = [tensor(&mut rng, &[2, 6, 3], 1.0), Tensor::vec_i64(vec![1, 3, 2])];
    check_outputs("Split sizes [1, 3, 2]", &*op, &xs, &mut rng, &never, &[]);
    // An output that does not reach the loss contributes zeros.
    check_outputs("Split, part 1 unused", &*op, &xs, &mut rng, &never, &[1]);
    let op = op_with("Split", 1, 2, 17, vec![("axis", Attr::Int(-1))]);
    check_outputs("Split equal parts", &*op, &[tensor(&mut rng, &[3, 4], 1.0)], &mut rng, &never, &[0]);
    let op = op_with("Split", 1, 3, 18, vec![("axis", Attr::Int(0)), ("num_outputs", Attr::Int(3))]);
    check_outputs("Split num_outputs uneven", &*op, &[tensor(&mut rng, &[7, 2], 1.0)], &mut rng, &never, &[]);
}

#[test]
fn softmax_matches_finite_differences_along_any_axis() {
    let mut rng = Rng(59);
    for axis in [-1, 0, 1, 2] {
        let op = op("Softmax", 1, vec![("axis", Attr::Int(axis))]);
        check(&format!("Softmax axis {axis}"), &*op, &[tensor(&mut rng, &[2, 3, 4], 2.0)], &mut rng, &never);
    }
    // Opset < 13 normalises over every dim from `axis` on.
    let old = op_with("Softmax", 1, 1, 11, vec![("axis", Attr::Int(1))]);
    check("Softmax-11 axis 1", &*old, &[tensor(&mut rng, &[2, 3, 4], 2.0)], &mut rng, &never);
    for axis in [-1, 1] {
        let op = op("LogSoftmax", 1, vec![("axis", Attr::Int(axis))]);
        check(&format!("LogSoftmax axis {axis}"), &*op, &[tensor(&mut rng, &[2, 3, 4], 2.0)], &mut rng, &never);
    }
    let old = op_with("LogSoftmax", 1, 1, 11, vec![("axis", Attr::Int(1))]);
    check("LogSoftmax-11 axis 1", &*old, &[tensor(&mut rng, &[2, 3, 4], 2.0)], &mut rng, &never);
    // Without the forward's output, the backward computes it again.
    let op = op("Softmax", 1, vec![]);
    let x = tensor(&mut rng, &[2, 5], 1.0);
    let r = tensor(&mut rng, &[2, 5], 1.0);
    let y = op.eval(&[Some(&x)]).unwrap();
    let with = op
        .backward(&Backward { inputs: &[Some(&x)], outputs: &[Some(&y[0])], grads: &[Some(&r)], needs: &[] })
        .unwrap();
    let without =
        op.backward(&Backward { inputs: &[Some(&x)], outputs: &[None], grads: &[Some(&r)], needs: &[] }).unwrap();
    assert_eq!(with, without);
}

#[test]
fn backwards_reject_gradients_of_the_wrong_size() {
    let mut rng = Rng(61);
    let wrong = tensor(&mut rng, &[7], 1.0);
    let x4 = tensor(&mut rng, &[1, 2, 4, 4], 1.0);
    let none = f32s(&[]);
    type Case = (Box<dyn Op>, Vec<Tensor>);
    let cases: Vec<Case> = vec![
        (op("Gemm", 2, vec![]), vec![tensor(&mut rng, &[2, 3], 1.0), tensor(&mut rng, &[3, 2], 1.0)]),
        (op("MatMul", 2, vec![]), vec![tensor(&mut rng, &[2, 3], 1.0), tensor(&mut rng, &[3, 2], 1.0)]),
        (op("MaxPool", 1, vec![("kernel_shape", Attr::Ints(vec![2, 2]))]), vec![x4.clone()]),
        (op("AveragePool", 1, vec![("kernel_shape", Attr::Ints(vec![2, 2]))]), vec![x4.clone()]),
        (op("GlobalAveragePool", 1, vec![]), vec![x4.clone()]),
        (op("GlobalMaxPool", 1, vec![]), vec![x4.clone()]),
        (op("Resize", 3, vec![]), vec![x4.clone(), none.clone(), f32s(&[1.0, 1.0, 2.0, 2.0])]),
        (op("Pad", 2, vec![]), vec![x4.clone(), Tensor::vec_i64(vec![0, 0, 1, 1, 0, 0, 1, 1])]),
        (op("Slice", 3, vec![]), vec![x4.clone(), Tensor::vec_i64(vec![1]), Tensor::vec_i64(vec![3])]),
        (op_with("Split", 1, 2, 17, vec![]), vec![tensor(&mut rng, &[4, 2], 1.0)]),
        (op("Softmax", 1, vec![]), vec![x4.clone()]),
    ];
    for (op, xs) in cases {
        let refs: Vec<Option<&Tensor>> = xs.iter().map(Some).collect();
        let err = op
            .backward(&Backward {
                inputs: &refs,
                outputs: &[None, None],
                grads: &[Some(&wrong), Some(&wrong)],
                needs: &[],
            })
            .unwrap_err();
        assert!(err.to_string().contains("gradient of output"), "{op:?}: {err}");
        // Data that disagrees with its shape is an error too, never a panic.
        let mut short = xs[0].clone();
        if let Data::F32(v) = &mut short.data {
            v.pop();
        }
        let bad: Vec<Option<&Tensor>> = [Some(&short)].into_iter().chain(refs[1..].iter().copied()).collect();
        let y = op.eval(&refs).unwrap();
        let r: Vec<Tensor> = y.iter().map(|y| tensor(&mut rng, &y.shape, 1.0)).collect();
        let rr: Vec<Option<&Tensor>> = r.iter().map(Some).collect();
        assert!(
            op.backward(&Backward { inputs: &bad, outputs: &[None, None], grads: &rr, needs: &[] }).is_err(),
            "{op:?}"
        );
    }
}

#[test]
fn conv_skips_the_input_gradient_nobody_needs() {
    // Training never needs the image's gradient: the first convolution leaves out dX (its
    // col2im), and dW and dB are the same as with it.
    let mut rng = Rng(7);
    let op = op("Conv", 3, vec![("pads", Attr::Ints(vec![1, 1, 1, 1]))]);
    let (x, w, bias) =
        (tensor(&mut rng, &[1, 3, 6, 6], 1.0), tensor(&mut rng, &[4, 3, 3, 3], 1.0), tensor(&mut rng, &[4], 1.0));
    let r = tensor(&mut rng, &[1, 4, 6, 6], 1.0);
    let inputs = [Some(&x), Some(&w), Some(&bias)];
    let all = op.backward(&Backward { inputs: &inputs, outputs: &[None], grads: &[Some(&r)], needs: &[] }).unwrap();
    let some = op
        .backward(&Backward { inputs: &inputs, outputs: &[None], grads: &[Some(&r)], needs: &[false, true, true] })
        .unwrap();
    assert!(all[0].is_some() && some[0].is_none());
    assert_eq!(all[1..], some[1..]);
}

#[test]
fn pointwise_conv_matches_finite_differences() {
    // 1×1, stride 1, no padding: X is the column matrix and dX the column gradient (no
    // im2col/col2im); groups 1 and 2, batch 2, with and without a bias.
    let mut rng = Rng(0x11);
    for (group, with_bias) in [(1, true), (2, false), (2, true)] {
        let (c_in, m) = (4, 6);
        let op = op("Conv", if with_bias { 3 } else { 2 }, vec![("group", Attr::Int(group))]);
        let mut xs =
            vec![tensor(&mut rng, &[2, c_in, 5, 7], 1.0), tensor(&mut rng, &[m, c_in / group as usize, 1, 1], 1.0)];
        if with_bias {
            xs.push(tensor(&mut rng, &[m], 1.0));
        }
        check(&format!("pointwise Conv group {group}"), &*op, &xs, &mut rng, &never);
    }
}

/// `x` with every value moved into `[lo, lo + width)`.
fn within(x: Tensor, lo: f32, width: f32) -> Tensor {
    let Data::F32(v) = x.data else { unreachable!() };
    Tensor { shape: x.shape, data: Data::F32(v.into_iter().map(|a| lo + (a + 1.0) * 0.5 * width).collect()) }
}

#[test]
fn gathers_add_the_gradient_back_where_they_read() {
    let mut rng = Rng(67);
    // Gather along each axis, indices repeated and negative.
    for (axis, idx, shape) in
        [(0, vec![2i64, 0, 2, -1], vec![2, 2]), (1, vec![1, -3, 1], vec![3]), (-1, vec![0], vec![1])]
    {
        let op = op("Gather", 2, vec![("axis", Attr::Int(axis))]);
        let xs = [tensor(&mut rng, &[3, 4, 2], 1.0), Tensor { shape, data: Data::I64(idx) }];
        check(&format!("Gather axis {axis}"), &*op, &xs, &mut rng, &never);
    }
    // GatherElements: every element of the indices' shape reads one data element.
    let op = op("GatherElements", 2, vec![("axis", Attr::Int(1))]);
    let idx = Tensor { shape: vec![2, 5, 2], data: Data::I64((0..20).map(|i| (i * 7 % 4) - 1).collect()) };
    check("GatherElements axis 1", &*op, &[tensor(&mut rng, &[2, 4, 3], 1.0), idx], &mut rng, &never);
    // GatherND, with and without a batch axis.
    let op = op_with("GatherND", 2, 1, 13, vec![]);
    let idx = Tensor { shape: vec![3, 2], data: Data::I64(vec![0, 1, 1, -1, 0, 1]) };
    check("GatherND", &*op, &[tensor(&mut rng, &[2, 3, 4], 1.0), idx], &mut rng, &never);
    let op = op_with("GatherND", 2, 1, 13, vec![("batch_dims", Attr::Int(1))]);
    let idx = Tensor { shape: vec![2, 2, 1], data: Data::I64(vec![2, 0, 1, 1]) };
    check("GatherND batch_dims 1", &*op, &[tensor(&mut rng, &[2, 3, 4], 1.0), idx], &mut rng, &never);
}

#[test]
fn topk_routes_the_gradient_to_the_values_it_took() {
    let mut rng = Rng(71);
    for (axis, largest) in [(-1, 1), (1, 0), (0, 1)] {
        let op = op_with("TopK", 2, 2, 11, vec![("axis", Attr::Int(axis)), ("largest", Attr::Int(largest))]);
        // Distinct values: no tie, and no swap within the finite-difference step.
        let xs = [distinct(&mut rng, &[3, 5, 2]), Tensor::vec_i64(vec![2])];
        check_outputs(&format!("TopK axis {axis} largest {largest}"), &*op, &xs, &mut rng, &never, &[1]);
    }
}

#[test]
fn scatter_nd_passes_what_stays_and_what_lands() {
    let mut rng = Rng(73);
    // Row 1 updated twice: with `none` only the last update stays (and takes the gradient).
    let idx = Tensor { shape: vec![3, 1], data: Data::I64(vec![1, 3, 1]) };
    for reduction in ["none", "add"] {
        let op = op_with("ScatterND", 3, 1, 16, vec![("reduction", Attr::String(reduction.into()))]);
        let xs = [tensor(&mut rng, &[4, 3], 1.0), idx.clone(), tensor(&mut rng, &[3, 3], 1.0)];
        check(&format!("ScatterND {reduction}"), &*op, &xs, &mut rng, &never);
    }
    let op = op_with("ScatterND", 3, 1, 16, vec![("reduction", Attr::String("max".into()))]);
    let xs = [tensor(&mut rng, &[4, 3], 1.0), idx, tensor(&mut rng, &[3, 3], 1.0)];
    let refs: Vec<Option<&Tensor>> = xs.iter().map(Some).collect();
    let y = op.eval(&refs).unwrap();
    let b = Backward { inputs: &refs, outputs: &[Some(&y[0])], grads: &[Some(&y[0])], needs: &[] };
    assert_eq!(op.backward(&b).unwrap_err(), GradError::NoBackward, "max has none");
}

#[test]
fn casts_pass_float_gradients_and_stop_at_integers() {
    let mut rng = Rng(79);
    let x = tensor(&mut rng, &[2, 3], 1.0);
    check("Cast to float", &*op("Cast", 1, vec![("to", Attr::Int(1))]), std::slice::from_ref(&x), &mut rng, &never);
    let to_int = op("Cast", 1, vec![("to", Attr::Int(7))]);
    let y = to_int.eval(&[Some(&x)]).unwrap();
    let g = tensor(&mut rng, &[2, 3], 1.0);
    let b = Backward { inputs: &[Some(&x)], outputs: &[Some(&y[0])], grads: &[Some(&g)], needs: &[] };
    assert_eq!(to_int.backward(&b).unwrap(), vec![None], "an integer carries no gradient");
}

#[test]
fn pow_matches_finite_differences() {
    let mut rng = Rng(83);
    let op = op("Pow", 2, vec![]);
    // A positive base (the exponent's gradient needs ln x), the exponent broadcast.
    let xs = [within(tensor(&mut rng, &[2, 3], 1.0), 0.5, 1.5), tensor(&mut rng, &[3], 1.5)];
    check("Pow float exponent", &*op, &xs, &mut rng, &never);
    // An integer exponent (Pow converts it) takes none; the base may be negative.
    let xs = [tensor(&mut rng, &[2, 3], 1.0), Tensor { shape: vec![1], data: Data::I64(vec![3]) }];
    check("Pow integer exponent", &*op, &xs, &mut rng, &never);
}

#[test]
fn layer_norm_matches_finite_differences() {
    let mut rng = Rng(89);
    for (axis, scale_shape) in [(-1, vec![4]), (1, vec![3, 4]), (2, vec![1, 4])] {
        let op = op("LayerNormalization", 3, vec![("axis", Attr::Int(axis))]);
        let xs = [
            tensor(&mut rng, &[2, 3, 4], 2.0),
            tensor(&mut rng, &scale_shape, 1.5),
            tensor(&mut rng, &scale_shape, 1.0),
        ];
        check_outputs(&format!("LayerNormalization axis {axis}"), &*op, &xs, &mut rng, &never, &[1, 2]);
    }
    let op = op("LayerNormalization", 2, vec![]);
    let xs = [tensor(&mut rng, &[3, 5], 2.0), tensor(&mut rng, &[5], 1.5)];
    check_outputs("LayerNormalization without B", &*op, &xs, &mut rng, &never, &[1, 2]);
}

#[test]
fn reductions_match_finite_differences() {
    let mut rng = Rng(97);
    for name in [
        "ReduceSum",
        "ReduceMean",
        "ReduceMax",
        "ReduceMin",
        "ReduceL1",
        "ReduceL2",
        "ReduceSumSquare",
        "ReduceLogSumExp",
        "ReduceLogSum",
        "ReduceProd",
    ] {
        for (axes, keep) in [(vec![1], 1), (vec![0, 2], 0), (vec![], 1)] {
            let mut attrs = vec![("keepdims", Attr::Int(keep))];
            if !axes.is_empty() {
                attrs.push(("axes", Attr::Ints(axes.clone())));
            }
            let op = op_with(name, 1, 1, 11, attrs);
            // Distinct values away from 0 (L1's kink; Max/Min with no tie within the step).
            let mut x = distinct(&mut rng, &[3, 4, 2]);
            if name == "ReduceLogSum" {
                // Its sets' sums must be positive.
                if let Data::F32(v) = &mut x.data {
                    v.iter_mut().for_each(|v| *v = v.abs() + 0.1);
                }
            }
            let near = |_: usize, v: f32| name == "ReduceL1" && v.abs() < 0.02;
            check(&format!("{name} axes {axes:?} keepdims {keep}"), &*op, &[x], &mut rng, &near);
        }
    }
    // ReduceProd where a set holds zeros: with one, only that element has a gradient (the
    // product of the others); with two, none has.
    let prod = op_with("ReduceProd", 1, 1, 11, vec![("axes", Attr::Ints(vec![1]))]);
    let x = Tensor { shape: vec![3, 3], data: Data::F32(vec![2.0, 3.0, 4.0, 2.0, 0.0, 5.0, 0.0, 3.0, 0.0]) };
    let y = prod.eval(&[Some(&x)]).unwrap();
    let dy = Tensor { shape: vec![3, 1], data: Data::F32(vec![1.0, 10.0, 100.0]) };
    let b = Backward { inputs: &[Some(&x)], outputs: &[Some(&y[0])], grads: &[Some(&dy)], needs: &[] };
    let dx = prod.backward(&b).unwrap()[0].clone().unwrap();
    assert_eq!(dx.as_f32().unwrap(), [12.0, 8.0, 6.0, 0.0, 100.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn grid_sample_matches_finite_differences() {
    let mut rng = Rng(101);
    // Deformable attention's form (bilinear, zeros, no align_corners) and the others the grid's
    // gradient covers; points kept off the taps' edges (|n| < 0.9 and away from pixel centres
    // by more than the step is not guaranteed, so the kinks are skipped by position).
    for (padding, align) in [("zeros", 0), ("border", 0), ("zeros", 1), ("border", 1)] {
        let attrs = vec![
            ("mode", Attr::String("bilinear".into())),
            ("padding_mode", Attr::String(padding.into())),
            ("align_corners", Attr::Int(align)),
        ];
        let op = op_with("GridSample", 2, 1, 16, attrs);
        let (h, w) = (4usize, 5usize);
        let x = tensor(&mut rng, &[2, 3, h, w], 1.0);
        let grid = tensor(&mut rng, &[2, 3, 2, 2], 1.2);
        // A grid value whose pixel coordinate lies within the step of an integer is a kink.
        let near = |i: usize, v: f32| {
            if i != 1 {
                return false;
            }
            [h, w].iter().any(|&d| {
                let d = d as f32;
                let p = if align == 1 { (v + 1.0) / 2.0 * (d - 1.0) } else { ((v + 1.0) * d - 1.0) / 2.0 };
                let q = if align == 1 { 0.01 / 2.0 * (d - 1.0) } else { 0.01 * d / 2.0 };
                (p - p.round()).abs() <= q + 1e-4 || (p - (-0.5)).abs() <= q || (p - (d - 0.5)).abs() <= q
            })
        };
        check(&format!("GridSample bilinear {padding} align_corners {align}"), &*op, &[x, grid], &mut rng, &near);
    }
    // Nearest: X's gradient to the tap each point reads; the grid's is 0.
    let op = op_with("GridSample", 2, 1, 16, vec![("mode", Attr::String("nearest".into()))]);
    let xs = [tensor(&mut rng, &[1, 2, 3, 3], 1.0), tensor(&mut rng, &[1, 2, 2, 2], 0.9)];
    let refs: Vec<Option<&Tensor>> = xs.iter().map(Some).collect();
    let y = op.eval(&refs).unwrap();
    let g = tensor(&mut rng, &y[0].shape, 1.0);
    let grads =
        op.backward(&Backward { inputs: &refs, outputs: &[Some(&y[0])], grads: &[Some(&g)], needs: &[] }).unwrap();
    assert!(grads[1].as_ref().unwrap().as_f32().unwrap().iter().all(|&v| v == 0.0));
    let total = |t: &Tensor| t.as_f32().unwrap().iter().sum::<f32>();
    assert!((total(grads[0].as_ref().unwrap()) - total(&g)).abs() < 1e-4, "every point reads one tap inside");
    // Bicubic has no backward for the grid.
    let op = op_with("GridSample", 2, 1, 16, vec![("mode", Attr::String("bicubic".into()))]);
    let y = op.eval(&refs).unwrap();
    let b = Backward { inputs: &refs, outputs: &[Some(&y[0])], grads: &[Some(&g)], needs: &[] };
    assert_eq!(op.backward(&b).unwrap_err(), GradError::NoBackward);
}
