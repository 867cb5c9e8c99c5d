//! Int8 execution: the QOperator ops against onnxruntime (exact), QDQ lowering against the
//! float simulation of the same graph, and bad quantized models.
//!
//! `cargo test -p qplay-core --test int8 -- --nocapture` prints the measured differences.

use qplay_core::model::{load_onnx, npy::read_npy, Data, Graph, Plan, PlanOptions, Tensor};
use qplay_core::ops::Registry;
use qplay_core::ptq::{quantize, PtqOptions};
use qplay_core::quant::error_metrics;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

fn sqnr_db(reference: &[f32], approx: &[f32]) -> f64 {
    error_metrics(reference, approx).unwrap().sqnr_db
}
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> Vec<u8> {
    let p = repo().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn run(g: &Graph, inputs: &[(String, Tensor)], options: PlanOptions) -> Vec<Tensor> {
    let shapes: Vec<(String, Vec<usize>)> = inputs.iter().map(|(n, t)| (n.clone(), t.shape.clone())).collect();
    let plan = Plan::with_options(g, &Registry::new(), &shapes, options).expect("plans");
    plan.run(inputs).expect("runs")
}

/// A `tests/fixtures/qops` case: its model and input.
fn load_case(case: &str) -> (Graph, Tensor) {
    let dir = repo().join("tests/fixtures/qops").join(case);
    let g = load_onnx(&std::fs::read(dir.join("model.onnx")).unwrap()).unwrap();
    (g, read_npy(&std::fs::read(dir.join("input_0.npy")).unwrap()).unwrap())
}

/// Plans and runs `g` on `x`: "ran", or the error's text.
fn try_run(g: &Graph, x: &Tensor) -> String {
    let shapes = [(g.inputs[0].name.clone(), x.shape.clone())];
    match Plan::new(g, &Registry::new(), &shapes) {
        Err(e) => e.to_string(),
        Ok(p) => {
            p.run(&[(g.inputs[0].name.clone(), x.clone())]).map(|_| "ran".into()).unwrap_or_else(|e| e.to_string())
        }
    }
}

/// Every case of `tests/fixtures/qops` (written by `make_qop_fixtures.py`): QLinearConv (3×3
/// padded and strided, 1×1 int8, depthwise, grouped + dilated with uint8 weights), ConvInteger,
/// QLinearMatMul (per-column and per-tensor), MatMulInteger, `com.microsoft` QLinearAdd (same
/// shape, broadcast, scalar B, uint8 and int8, scale ratios above and below 1) and QLinearConcat
/// (mixed parameters, one input with the output's own, negative axis) — all with non-zero
/// zero-points. QLinearAdd's exact result is onnxruntime's float formula (see `qlinear_add.rs`).
/// qplay's output equals the exact ONNX result (int64 numpy) in every value. onnxruntime's
/// output is compared too and the differences printed: its x86 uint8×int8 kernels saturate
/// pairwise sums to int16 (`pmaddubsw`) when both operands use their full range, so it is off
/// on some of these cases; where it is exact, so are we.
#[test]
fn qoperator_ops_are_exact() {
    let dir = repo().join("tests/fixtures/qops");
    let mut cases: Vec<_> = std::fs::read_dir(&dir).expect("fixtures").map(|e| e.unwrap().path()).collect();
    cases.sort();
    assert!(cases.len() >= 8, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let npy = |f: &str| read_npy(&std::fs::read(case.join(f)).unwrap()).unwrap();
        let g = load_onnx(&std::fs::read(case.join("model.onnx")).unwrap()).unwrap();
        let got = run(&g, &[(g.inputs[0].name.clone(), npy("input_0.npy"))], PlanOptions::default()).remove(0);
        let (want, ort) = (npy("expected.npy"), npy("ort.npy"));
        assert_eq!((&got.shape, got.dtype()), (&want.shape, want.dtype()), "{name}");
        // Codes as integers; a float output (QGemm without y_scale) by its bits.
        let as_i64 = |t: &Tensor| match t.as_f32() {
            Ok(v) => v.iter().map(|x| x.to_bits() as i64).collect(),
            Err(_) => t.to_i64_vec().unwrap(),
        };
        let g = as_i64(&got);
        let differ = |o: &Tensor| g.iter().zip(as_i64(o)).filter(|(a, b)| **a != *b).count();
        let (vs_exact, vs_ort) = (differ(&want), differ(&ort));
        println!("{name}: {} values; differ from exact: {vs_exact}, from onnxruntime: {vs_ort}", g.len());
        if vs_exact != 0 {
            failures.push(format!("{name}: {vs_exact} of {} values differ from the exact result", g.len()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The person detector quantized to QDQ runs on the int8 kernels: all 88 convolutions are
/// lowered, and the outputs stay within a quantization step of the float simulation of the
/// same QDQ graph (at most ~1 LSB of the last requantized tensor).
#[test]
fn person_qdq_lowered_to_int8_matches_simulation() {
    let g = load_onnx(&read("www/models/person_ssdlite.onnx")).unwrap();
    let x = read_npy(&read("tests/fixtures/person_ssdlite_person/input.npy")).unwrap();
    let calib = vec![read_npy(&read("tests/fixtures/person_ssdlite_horses/input.npy")).unwrap(), x.clone()];
    let q = quantize(&g, "Preprocessor/sub:0", &calib, &PtqOptions::default()).unwrap();
    let qg = load_onnx(&q.onnx).unwrap();
    let inputs = [("Preprocessor/sub:0".to_string(), x.clone())];
    let shapes = [("Preprocessor/sub:0".to_string(), x.shape.clone())];
    let plan = Plan::new(&qg, &Registry::new(), &shapes).unwrap();
    let kinds: Vec<&str> = plan.steps().iter().map(|(_, op)| *op).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "QLinearConv").count(), 88, "every conv lowered");
    assert!(!kinds.contains(&"Conv"), "{kinds:?}");
    let int8 = plan.run(&inputs).unwrap();
    let sim = run(&qg, &inputs, PlanOptions { int8_kernels: false, ..Default::default() });
    let fp32 = run(&g, &inputs, PlanOptions::default());
    for ((a, b), f) in int8.iter().zip(&sim).zip(&fp32) {
        let (a, b, f) = (a.as_f32().unwrap(), b.as_f32().unwrap(), f.as_f32().unwrap());
        let (s_int8, s_sim) = (sqnr_db(f, a), sqnr_db(f, b));
        let vs_sim = sqnr_db(b, a);
        println!("SQNR vs FP32: int8 kernels {s_int8:.2} dB, float simulation {s_sim:.2} dB; int8 vs simulation {vs_sim:.2} dB");
        assert!(s_int8 > s_sim - 1.0, "int8 kernels lose more than 1 dB against the simulation");
        assert!(vs_sim > 25.0, "int8 kernels far from the simulation: {vs_sim} dB");
    }
}

/// Bad quantized models give errors that name the problem, never a panic.
#[test]
fn bad_quantized_models_are_errors() {
    let (base, x) = load_case("qlinearconv_3x3_pad_stride");
    // A zero scale.
    let mut g = base.clone();
    g.initializers.insert("x_scale".into(), Tensor::scalar_f32(0.0));
    let e = try_run(&g, &x);
    assert!(e.contains("scale") && e.contains("positive"), "{e}");
    // Per-channel weight scales that do not match the output channels.
    let mut g = base.clone();
    g.initializers.insert("w_scale".into(), Tensor::f32(vec![3], vec![0.1, 0.1, 0.1]).unwrap());
    g.initializers.insert("w_zp".into(), Tensor { shape: vec![3], data: Data::I8(vec![0; 3]) });
    let e = try_run(&g, &x);
    assert!(e.contains("per-axis scale has 3 values"), "{e}");
    // A zero-point of the wrong type.
    let mut g = base.clone();
    g.initializers.insert("x_zp".into(), Tensor { shape: vec![], data: Data::I8(vec![0]) });
    let e = try_run(&g, &x);
    assert!(e.contains("x_zero_point"), "{e}");
    // Float data where 8-bit data is expected.
    let mut g = base.clone();
    let w = g.initializers["w"].clone();
    g.initializers.insert("w".into(), Tensor::f32(w.shape.clone(), vec![0.0; w.len()]).unwrap());
    let e = try_run(&g, &x);
    assert!(e.contains("uint8 or int8"), "{e}");
    // A reduction too long for the int32 accumulator is refused, not wrapped.
    let mut g = base.clone();
    g.initializers.insert("w".into(), Tensor { shape: vec![7, 5, 60, 60], data: Data::I8(vec![1; 7 * 5 * 3600]) });
    let e = try_run(&g, &x);
    assert!(!e.contains("panicked"), "{e}");
}

/// Bad `com.microsoft` QLinearAdd / QLinearConcat nodes give errors that name the problem.
#[test]
fn bad_qlinear_add_and_concat_are_errors() {
    use qplay_core::model::Attr;
    let (add, xa) = load_case("qlinearadd_u8_same_shape");
    let u8s = |shape: Vec<usize>, v: Vec<u8>| Tensor { shape, data: Data::U8(v) };
    let with = |name: &str, t: Tensor| {
        let mut g = add.clone();
        g.initializers.insert(name.into(), t);
        try_run(&g, &xa)
    };
    let e = with("a_zp", Tensor { shape: vec![], data: Data::I8(vec![0]) });
    assert!(e.contains("A_zero_point") && e.contains("I8"), "{e}");
    let e = with("b_scale", Tensor::f32(vec![2], vec![0.1, 0.2]).unwrap());
    assert!(e.contains("B_scale must be a scalar"), "{e}");
    for bad in [0.0, -0.5, f32::NAN, f32::INFINITY] {
        let e = with("c_scale", Tensor::scalar_f32(bad));
        assert!(e.contains("C_scale") && e.contains("positive"), "{bad}: {e}");
    }
    let e = with("b", u8s(vec![3], vec![1, 2, 3]));
    assert!(e.contains("cannot be broadcast"), "{e}");
    let e = with("b", Tensor::f32(vec![1], vec![1.0]).unwrap());
    assert!(e.contains("both must have one type"), "{e}");
    let mut g = add.clone();
    g.nodes[0].inputs.truncate(6);
    let e = try_run(&g, &xa);
    assert!(e.contains("7 or 8 inputs"), "{e}");

    let (cat, xc) = load_case("qlinearconcat_u8_mixed");
    let mut g = cat.clone();
    g.nodes[0].attrs.0.insert("axis".into(), Attr::Int(4));
    let e = try_run(&g, &xc);
    assert!(e.contains("axis 4 is out of range"), "{e}");
    let mut g = cat.clone();
    g.nodes[0].attrs.0.remove("axis");
    let e = try_run(&g, &xc);
    assert!(e.contains("axis"), "{e}");
    let mut g = cat.clone();
    g.initializers.insert("x1".into(), u8s(vec![1, 2, 5, 5], vec![0; 50]));
    let e = try_run(&g, &xc);
    assert!(e.contains("does not match"), "{e}");
    let mut g = cat.clone();
    g.initializers.insert("y_zp".into(), Tensor { shape: vec![], data: Data::I8(vec![0]) });
    let e = try_run(&g, &xc);
    assert!(e.contains("Y_zero_point"), "{e}");
    let mut g = cat.clone();
    g.initializers.insert("x2_scale".into(), Tensor::scalar_f32(0.0));
    let e = try_run(&g, &xc);
    assert!(e.contains("X_2_scale") && e.contains("positive"), "{e}");
    let mut g = cat.clone();
    g.nodes[0].inputs.pop();
    let e = try_run(&g, &xc);
    assert!(e.contains("2 + 3·k"), "{e}");
}

/// Bad `com.microsoft` QLinearMul / QLinearSigmoid / QLinearLeakyRelu / QLinearSoftmax /
/// QLinearGlobalAveragePool nodes
/// and 8-bit Resizes give errors that name the problem.
#[test]
fn bad_qlinear_activations_are_errors() {
    use qplay_core::model::Attr;
    let (mul, xm) = load_case("qlinearmul_u8_same_shape");
    let mut g = mul.clone();
    g.initializers.insert("c_scale".into(), Tensor::scalar_f32(0.0));
    let e = try_run(&g, &xm);
    assert!(e.contains("C_scale") && e.contains("positive"), "{e}");
    let mut g = mul.clone();
    g.initializers.insert("b".into(), Tensor::f32(vec![1], vec![1.0]).unwrap());
    let e = try_run(&g, &xm);
    assert!(e.contains("both must have one type"), "{e}");
    let mut g = mul.clone();
    g.nodes[0].inputs.truncate(5);
    let e = try_run(&g, &xm);
    assert!(e.contains("7 or 8 inputs"), "{e}");

    let (sig, xs) = load_case("qlinearsigmoid_u8_every_code");
    let mut g = sig.clone();
    g.initializers.insert("y_zp".into(), Tensor { shape: vec![], data: Data::I8(vec![0]) });
    let e = try_run(&g, &xs);
    assert!(e.contains("Y_zero_point"), "{e}");
    let mut g = sig.clone();
    g.initializers.insert("x_scale".into(), Tensor::f32(vec![2], vec![0.1, 0.2]).unwrap());
    let e = try_run(&g, &xs);
    assert!(e.contains("X_scale must be a scalar"), "{e}");
    let mut g = sig.clone();
    g.nodes[0].inputs.truncate(3);
    let e = try_run(&g, &xs);
    assert!(e.contains("4 or 5 inputs"), "{e}");
    let (lr, xl) = load_case("qlinearleakyrelu_i8_every_code");
    let mut g = lr.clone();
    g.nodes[0].attrs.0.insert("alpha".into(), Attr::Float(f32::NAN));
    let e = try_run(&g, &xl);
    assert!(e.contains("alpha"), "{e}");

    let (sm, xsm) = load_case("qlinearsoftmax_u8_opset13_axis1");
    let mut g = sm.clone();
    g.nodes[0].attrs.0.remove("opset");
    let e = try_run(&g, &xsm);
    assert!(e.contains("opset"), "{e}");
    let mut g = sm.clone();
    g.nodes[0].attrs.0.insert("axis".into(), Attr::Int(3));
    let e = try_run(&g, &xsm);
    assert!(e.contains("axis 3 is out of range"), "{e}");

    let (gap, xg) = load_case("qlinearglobalaveragepool_u8_nchw");
    let mut g = gap.clone();
    g.initializers.insert("y_scale".into(), Tensor::scalar_f32(1e-12));
    let e = try_run(&g, &xg);
    assert!(e.contains("outside the range onnxruntime computes"), "{e}");
    let mut g = gap.clone();
    g.nodes[0].inputs.truncate(2);
    let e = try_run(&g, &xg);
    assert!(e.contains("4 or 5 inputs"), "{e}");

    let (rs, xr) = load_case("resize_u8_nearest");
    let mut g = rs.clone();
    g.nodes[0].attrs.0.insert("mode".into(), Attr::String("linear".into()));
    let e = try_run(&g, &xr);
    assert!(e.contains("nearest only") && e.contains("linear"), "{e}");
}

/// A real Ultralytics YOLOv8 export quantized by onnxruntime's `quantize_static` in its
/// QOperator format (`make_qop_yolo_fixture.py`: QLinearConv, QLinearAdd, QLinearConcat,
/// QLinearMul and QLinearSigmoid for every SiLU, QLinearSoftmax in the DFL, Resize and MaxPool on
/// uint8): qplay's output equals onnxruntime's in every value.
#[test]
fn onnxruntime_qoperator_yolov8_equals_onnxruntime() {
    let dir = repo().join("tests/fixtures/ultralytics");
    let g = load_onnx(&std::fs::read(dir.join("yolov8_custom18_qop.onnx")).unwrap()).unwrap();
    let npy = |f: &str| read_npy(&std::fs::read(dir.join("yolov8_custom18_qop").join(f)).unwrap()).unwrap();
    let (x, want) = (npy("input.npy"), npy("ort.npy"));
    let got = run(&g, &[(g.inputs[0].name.clone(), x.clone())], PlanOptions::default()).remove(0);
    assert_eq!(got.shape, want.shape);
    let (g32, w32) = (got.as_f32().unwrap(), want.as_f32().unwrap());
    let differ = g32.iter().zip(w32).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    assert_eq!(differ, 0, "{differ} of {} outputs differ from onnxruntime's", g32.len());
}

/// Random QLinearConv geometries (groups incl. depthwise and channel multipliers, kernels 1–5,
/// strides 1–3, dilations 1–2, asymmetric pads, uint8/int8 data, per-channel weights with
/// non-zero zero-points for uint8 weights, bias, both output types) against a direct int64
/// convolution and the same requantization rule: every code equal.
#[test]
fn qlinear_conv_matches_a_direct_integer_reference_on_random_geometries() {
    let mut rng = Rng(0x2545f4914f6cdd1d);
    for case in 0..60 {
        check_random_qconv(&mut rng, case, None);
    }
}

/// The direct depthwise 3×3 kernel (stride 1 and 2, every padding, odd and even heights, rows
/// wider than its vector steps and with ragged ends, channel multipliers, uint8 weights with
/// zero-points) against the same int64 reference.
#[test]
fn depthwise_3x3_matches_a_direct_integer_reference() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for case in 0..48 {
        check_random_qconv(&mut rng, case, Some(1 + case % 2));
    }
}

/// One random QLinearConv case (or, with `dw3x3_stride`, a depthwise 3×3 one at that stride
/// on planes up to 40×40) checked code by code.
fn check_random_qconv(rng: &mut Rng, case: usize, dw3x3_stride: Option<usize>) {
    use qplay_core::model::{Attr, Attrs, Node, ValueInfo};
    use qplay_core::ops::quant::qgemm::requant;
    {
        let group = [1, 1, 2, 3][rng.range(0, 3) as usize];
        let depthwise = dw3x3_stride.is_some() || rng.range(0, 2) == 0;
        let (cin, mult) = if depthwise {
            (rng.range(1, 6) as usize, rng.range(1, 2) as usize)
        } else {
            (group * rng.range(1, 4) as usize, 1)
        };
        let group = if depthwise { cin } else { group };
        let cout = if depthwise { cin * mult } else { group * rng.range(1, 4) as usize };
        let (mut kh, mut kw) = (rng.range(1, 5) as usize, rng.range(1, 5) as usize);
        let (mut sh, mut sw) = (rng.range(1, 3) as usize, rng.range(1, 3) as usize);
        let (mut dh, mut dw) = (rng.range(1, 2) as usize, rng.range(1, 2) as usize);
        let pads: Vec<usize> = (0..4).map(|_| rng.range(0, 2) as usize).collect();
        let mut max_hw = 12;
        if let Some(s) = dw3x3_stride {
            (kh, kw, sh, sw, dh, dw, max_hw) = (3, 3, s, s, 1, 1, 40);
        }
        let (h, w) = (
            rng.range(((kh - 1) * dh + 1) as i64, max_hw) as usize,
            rng.range(((kw - 1) * dw + 1) as i64, max_hw) as usize,
        );
        let cg = cin / group;
        let x_u8 = rng.range(0, 1) == 0;
        let w_u8 = !x_u8 && rng.range(0, 3) == 0;
        let y_u8 = rng.range(0, 1) == 0;
        let xs: Vec<i64> =
            (0..cin * h * w).map(|_| if x_u8 { rng.range(0, 255) } else { rng.range(-128, 127) }).collect();
        let ws: Vec<i64> =
            (0..cout * cg * kh * kw).map(|_| if w_u8 { rng.range(0, 255) } else { rng.range(-127, 127) }).collect();
        let zx = if x_u8 { rng.range(0, 255) } else { rng.range(-128, 127) };
        let zw: Vec<i64> = (0..cout).map(|_| if w_u8 { rng.range(0, 255) } else { 0 }).collect();
        let mut bias: Vec<i64> = (0..cout).map(|_| rng.range(-3000, 3000)).collect();
        // Now and then a bias at the end of int32, as a channel whose weights quantized to
        // zero gets (the sum saturates before it is requantized).
        if !depthwise && case % 5 == 3 {
            bias[0] = if case.is_multiple_of(2) { i32::MIN as i64 } else { i32::MAX as i64 };
        }
        let sx = 0.02f32;
        let sw_: Vec<f32> = (0..cout).map(|_| 0.001 + rng.range(1, 100) as f32 * 1e-4).collect();
        let sy = 0.05 + rng.range(0, 20) as f32 * 0.01;
        let zy = if y_u8 { rng.range(0, 255) } else { rng.range(-128, 127) };
        let (tmin, tmax) = if y_u8 { (0i64, 255i64) } else { (-128, 127) };
        let t8 = |u: bool, v: &[i64], shape: Vec<usize>| Tensor {
            shape,
            data: if u {
                Data::U8(v.iter().map(|&x| x as u8).collect())
            } else {
                Data::I8(v.iter().map(|&x| x as i8).collect())
            },
        };
        let inits = [
            ("x_scale", Tensor::scalar_f32(sx)),
            ("x_zp", t8(x_u8, &[zx], vec![])),
            ("w", t8(w_u8, &ws, vec![cout, cg, kh, kw])),
            ("w_scale", Tensor::f32(vec![cout], sw_.clone()).unwrap()),
            ("w_zp", t8(w_u8, &zw, vec![cout])),
            ("y_scale", Tensor::scalar_f32(sy)),
            ("y_zp", t8(y_u8, &[zy], vec![])),
            ("b", Tensor { shape: vec![cout], data: Data::I32(bias.iter().map(|&b| b as i32).collect()) }),
        ];
        let ints = |v: &[usize]| Attr::Ints(v.iter().map(|&x| x as i64).collect());
        let attrs = Attrs(
            [
                ("group".to_string(), Attr::Int(group as i64)),
                ("strides".to_string(), ints(&[sh, sw])),
                ("dilations".to_string(), ints(&[dh, dw])),
                ("pads".to_string(), ints(&pads)),
                ("kernel_shape".to_string(), ints(&[kh, kw])),
            ]
            .into_iter()
            .collect(),
        );
        // Every fourth case a fused ReLU and a fused per-channel Min (bounds below the ReLU's
        // floor, between, and past the type's top), as the fusion passes leave them.
        let fused = if case % 4 == 1 {
            let caps = (0..cout).map(|_| rng.range(-6, 600) as f32 * sy * 0.5).collect();
            qplay_core::model::Fused { min: Some(0.0), max: None, channel_max: Some(caps) }
        } else {
            Default::default()
        };
        let code = |b: f32| (qplay_core::quant::round_half_even(b / sy) as i64 + zy).clamp(tmin, tmax);
        let lo = fused.min.map_or(tmin, code);
        let caps: Vec<i64> =
            fused.channel_max.as_ref().map_or(vec![tmax; cout], |m| m.iter().map(|&b| code(b)).collect());
        let g = Graph {
            nodes: vec![Node {
                name: "c".into(),
                op_type: "QLinearConv".into(),
                inputs: ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", "b"]
                    .map(String::from)
                    .to_vec(),
                outputs: vec!["y".into()],
                attrs,
                fused,
            }],
            initializers: inits.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            inputs: vec![ValueInfo {
                name: "x".into(),
                elem_type: if x_u8 { 2 } else { 3 },
                shape: vec![Some(1), Some(cin), Some(h), Some(w)],
            }],
            outputs: vec![ValueInfo { name: "y".into(), elem_type: if y_u8 { 2 } else { 3 }, shape: vec![] }],
            opset: 13,
            ..Default::default()
        };
        let got = run(&g, &[("x".into(), t8(x_u8, &xs, vec![1, cin, h, w]))], PlanOptions::default()).remove(0);
        // Direct reference.
        let oh = (h + pads[0] + pads[2] - (kh - 1) * dh - 1) / sh + 1;
        let ow = (w + pads[1] + pads[3] - (kw - 1) * dw - 1) / sw + 1;
        assert_eq!(got.shape, vec![1, cout, oh, ow], "case {case}");
        let mg = cout / group;
        let got = got.to_i64_vec().unwrap();
        for o in 0..cout {
            let gi = o / mg;
            let m = sx * sw_[o] / sy;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0i64;
                    for c in 0..cg {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * sh + ky * dh) as i64 - pads[0] as i64;
                                let ix = (ox * sw + kx * dw) as i64 - pads[1] as i64;
                                let xv = if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                    zx
                                } else {
                                    xs[((gi * cg + c) * h + iy as usize) * w + ix as usize]
                                };
                                acc += (xv - zx) * (ws[((o * cg + c) * kh + ky) * kw + kx] - zw[o]);
                            }
                        }
                    }
                    let want =
                        (requant(acc + bias[o], m, zy as i32, tmin as i32, tmax as i32) as i64).max(lo).min(caps[o]);
                    let at = (o * oh + oy) * ow + ox;
                    assert_eq!(
                        got[at], want,
                        "case {case}: group {group} cin {cin} cout {cout} k {kh}×{kw} s {sh}×{sw} d {dh}×{dw} pads {pads:?} x_u8 {x_u8} w_u8 {w_u8}: out[{o}][{oy}][{ox}]"
                    );
                }
            }
        }
    }
}
