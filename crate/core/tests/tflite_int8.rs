//! TFLite's integer semantics, exactly: full-integer int8 `.tflite` fixtures (made by
//! tests/fixtures/make_tflite_fixtures.py, LiteRT's reference kernels) run on qplay's CPU
//! executor give LiteRT's int8 outputs in every value; the fixed-point helpers against hand
//! values; the float interface (QUANTIZE in, DEQUANTIZE out) against LiteRT's numbers.

use qplay_core::model::{
    load_tflite, load_tflite_as_qdq, load_tflite_integer_io, npy::read_npy, Data, ModelError, OpKind, Plan, Tensor,
};
use qplay_core::ops::tflite::fixed::{mbqm, quantize_multiplier, rdbpot, srdhm};
use qplay_core::ops::tflite::quantize::quantize_value;
use qplay_core::ops::Registry;
use std::path::PathBuf;

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tflite").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn npy(rel: &str) -> Tensor {
    read_npy(&fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn int8(t: &Tensor) -> &[i8] {
    match &t.data {
        Data::I8(v) => v,
        other => panic!("expected int8, got {other:?}"),
    }
}

/// Runs the integer fixture on LiteRT's int8 (or int16) input; returns how many output values there are
/// and how many differ from LiteRT's.
fn compare(name: &str) -> (usize, usize) {
    let g = load_tflite_integer_io(&fixture(&format!("{name}.tflite"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    let plan = Plan::new(&g, &Registry::new(), &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
    let x = npy(&format!("{name}/input_q.npy"));
    let outs = plan.run(&[(g.inputs[0].name.clone(), x)]).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(outs.len(), g.outputs.len());
    let (mut total, mut differ) = (0, 0);
    for (k, got) in outs.iter().enumerate() {
        let want = npy(&format!("{name}/output_{k}.npy"));
        assert_eq!(got.shape, want.shape, "{name} output {k}");
        assert_eq!(got.dtype(), want.dtype(), "{name} output {k}");
        let (got, want) = (got.to_i64_vec().unwrap(), want.to_i64_vec().unwrap());
        let d: Vec<(usize, i64, i64)> =
            got.iter().zip(&want).enumerate().filter(|(_, (a, b))| a != b).map(|(i, (a, b))| (i, *a, *b)).collect();
        eprintln!(
            "{name} output {k}: {} of {} values differ from LiteRT{}",
            d.len(),
            got.len(),
            if d.is_empty() {
                String::new()
            } else {
                format!(", first (index, qplay, LiteRT): {:?}", &d[..d.len().min(8)])
            }
        );
        total += got.len();
        differ += d.len();
    }
    (total, differ)
}

#[test]
fn int8_cnn_equals_litert_in_every_value() {
    let (total, differ) = compare("cnn_int8");
    assert!(total >= 10);
    assert_eq!(differ, 0);
}

/// TRANSPOSE_CONV (per-channel requantization, bias, SAME and VALID, an odd output size) and
/// PRELU in TFLite's integer arithmetic, and the ops that only move codes: SPLIT_V, SLICE,
/// SPACE_TO_DEPTH, MIRROR_PAD (REFLECT, SYMMETRIC); and DEPTH_TO_SPACE and TILE on int8 codes.
#[test]
fn int8_segmentation_layers_equal_litert_in_every_value() {
    let (total, differ) = compare("layers_int8");
    assert!(total >= 32 * 32 * 6);
    assert_eq!(differ, 0);
    let (total, differ) = compare("moves_int8");
    assert_eq!((total, differ), (2048 + 4096, 0));
}

#[test]
fn int8_detector_like_net_equals_litert_in_every_value() {
    let (total, differ) = compare("det_int8");
    assert!(total >= 640 * 7);
    assert_eq!(differ, 0);
}

/// Every int8 code of `a` against 64 codes of `b` through ADD, SUB and MUL (two scales, and a
/// MUL and ADD by broadcast constants in front of `b`), MAXIMUM and MINIMUM (behind the
/// converter's int8 → int8 QUANTIZEs), and every code through LOGISTIC, TANH, HARD_SWISH,
/// LEAKY_RELU, RELU and RELU6, plus an AVERAGE_POOL_2D with padding.
#[test]
fn int8_element_wise_ops_equal_litert_on_every_code() {
    let (total, differ) = compare("ops_int8");
    assert!(total >= 7 * 128 * 128);
    assert_eq!(differ, 0);
}

/// A model quantization-aware-trained with TF-MOT exactly as its guide (and the seed) does it —
/// `tfmot.quantization.keras.quantize_model`, fit, `TFLiteConverter` with `Optimize.DEFAULT` —
/// loaded as the page loads it (float in through its QUANTIZE, float out through its DEQUANTIZE):
/// LiteRT's float outputs exactly, on person.jpg.
#[test]
fn a_tf_mot_qat_model_equals_litert_in_every_value() {
    let g = load_tflite(&fixture("det_tfmot.tflite")).unwrap();
    assert!(g.nodes.iter().filter(|n| n.op_type == "qplay.tfl.Conv2D").count() >= 5, "the integer graph");
    // Ten weight channels of two layers came out of TF-MOT with NaN scales: said at load.
    assert!(
        g.load_notes.iter().any(|n| n.starts_with("10 weight channel(s) have no valid scale")),
        "{:?}",
        g.load_notes
    );
    let plan = Plan::new(&g, &Registry::new(), &[]).unwrap();
    let outs = plan.run(&[(g.inputs[0].name.clone(), npy("det_tfmot/input.npy"))]).unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&fixture("det_tfmot/meta.json")).unwrap();
    for (k, o) in meta["outputs"].as_array().unwrap().iter().enumerate() {
        let want = npy(&format!("det_tfmot/output_{k}.npy"));
        let at = g.outputs.iter().position(|v| v.name == o["name"].as_str().unwrap()).unwrap();
        assert_eq!(outs[at].shape, want.shape, "output {k}");
        let (got, want) = (outs[at].as_f32().unwrap(), want.as_f32().unwrap());
        let differ = got.iter().zip(want).filter(|(a, b)| a != b).count();
        eprintln!("det_tfmot output {k}: {differ} of {} values differ from LiteRT", got.len());
        assert_eq!(differ, 0, "output {k}");
        assert!(want.iter().any(|&v| v != want[0]), "output {k} is not constant");
    }
}

/// A TF1-style quantized model (the legacy uint8 conversion): uint8 activations and uint8
/// weights with zero point 128, per tensor — LiteRT's uint8 kernels (weight offsets, the float
/// product multiplier, the float RESIZE_BILINEAR, SOFTMAX to zero point 0) in every value.
#[test]
fn uint8_quantized_model_equals_litert_in_every_value() {
    let (total, differ) = compare("det_uint8");
    assert!(total >= 256 * 4 + 64 * 3 + 5);
    assert_eq!(differ, 0);
}

/// TF1-style uint8 CONCATENATIONs of inputs with other scales and zero points than the
/// output's (LiteRT's `ConcatenationWithScaling`, as TF1 quantized SSDs concatenate their
/// heads): along channels and along an anchor axis, every value equal to LiteRT's.
#[test]
fn uint8_concatenation_with_scaling_equals_litert_in_every_value() {
    let g = load_tflite_integer_io(&fixture("concat_uint8.tflite")).unwrap();
    let lookups = g.nodes.iter().filter(|n| n.is(OpKind::Lookup)).count();
    assert_eq!(lookups, 3, "the rescaled inputs: two of the first concatenation's three, one of the second's");
    let (total, differ) = compare("concat_uint8");
    assert_eq!(total, 16 * 16 * 12 + 320 * 4);
    assert_eq!(differ, 0);
}

/// A 16x8 model whose int16 tensor has a zero point other than 0 (TFLite's int16 kernels are
/// symmetric): refused, naming the tensor.
#[test]
fn a_16x8_model_with_an_int16_zero_point_is_refused() {
    let good = fixture("det_16x8.tflite");
    // Every int16 activation has zero point 0, stored as an int64 0 in a one-element vector
    // (length 1, then eight zero bytes); setting one to 5 must be refused, never run.
    let pat = [1u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let at: Vec<usize> = good.windows(12).enumerate().filter(|(_, w)| *w == pat).map(|(i, _)| i).collect();
    assert!(!at.is_empty());
    let mut refused = 0;
    for &i in &at {
        let mut b = good.clone();
        b[i + 4] = 5;
        if let Err(e) = load_tflite_integer_io(&b) {
            let e = e.to_string();
            if e.contains("has zero point 5; TFLite's int16 kernels need 0") {
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "no int16 zero point was refused");
}

/// 16x8 models (int16 activations, int8 weights, int64 biases): LiteRT's int16 kernels —
/// 64-bit sums requantized by the 16-bit reduced multiplier, the fully-connected layer's
/// double rescaling, ADD / SUB with `left_shift = 15`, the interpolated tables of SOFTMAX and
/// the fixed-point LOGISTIC and TANH — in every value.
#[test]
fn int16_detector_like_net_equals_litert_in_every_value() {
    let (total, differ) = compare("det_16x8");
    assert!(total >= 640 * 7);
    assert_eq!(differ, 0);
}

/// Every int16 code through ADD, SUB, MUL (against a spread of codes rescaled by constants),
/// LOGISTIC, TANH, LEAKY_RELU, RELU, RELU6, the pools, MEAN and SOFTMAX.
#[test]
fn int16_element_wise_ops_equal_litert_on_every_code() {
    let (total, differ) = compare("ops_16x8");
    assert!(total >= 7 * 65536);
    assert_eq!(differ, 0);
}

/// `cnn` in 16x8 with HARD_SWISH left in float by the converter (DEQUANTIZE → HARD_SWISH →
/// QUANTIZE inside the int16 graph): LiteRT's int16 output codes exactly; through the float
/// interface (TFLite's QUANTIZE in, DEQUANTIZE out), their dequantized values.
#[test]
fn int16_with_a_float_island_equals_litert() {
    let (total, differ) = compare("cnn_16x8");
    assert_eq!((total, differ), (10, 0));
    let g = load_tflite(&fixture("cnn_16x8.tflite")).unwrap();
    assert_eq!((g.inputs[0].elem_type, g.outputs[0].elem_type), (1, 1), "float in and out");
    let plan = Plan::new(&g, &Registry::new(), &[]).unwrap();
    let outs = plan.run(&[(g.inputs[0].name.clone(), npy("cnn_16x8/input.npy"))]).unwrap();
    let codes = npy("cnn_16x8/output_0.npy").to_i64_vec().unwrap();
    let scale = 3.0517578125e-05f64; // 2^-15, the softmax output's
    let want: Vec<f32> = codes.iter().map(|&q| (scale * q as f64) as f32).collect();
    assert_eq!(outs[0].as_f32().unwrap(), want.as_slice());
}

/// `cnn` converted with a uint8 interface (`inference_input_type = tf.uint8`): the file's
/// QUANTIZE ops take the uint8 input to the int8 graph and its int8 output back to uint8.
#[test]
fn a_uint8_interface_equals_litert() {
    let g = load_tflite_integer_io(&fixture("cnn_uint8.tflite")).unwrap();
    assert_eq!((g.inputs[0].elem_type, g.outputs[0].elem_type), (2, 2), "uint8 in and out");
    let plan = Plan::new(&g, &Registry::new(), &[]).unwrap();
    let outs = plan.run(&[(g.inputs[0].name.clone(), npy("cnn_uint8/input_q.npy"))]).unwrap();
    let want = npy("cnn_uint8/output_0.npy");
    assert_eq!(outs[0].shape, want.shape);
    assert!(matches!(want.data, Data::U8(_)) && outs[0].data == want.data, "{:?} vs {:?}", outs[0].data, want.data);
    // The float interface: a float input quantized to uint8 by TFLite's rounding.
    let g = load_tflite(&fixture("cnn_uint8.tflite")).unwrap();
    assert_eq!((g.inputs[0].elem_type, g.outputs[0].elem_type), (1, 1));
    Plan::new(&g, &Registry::new(), &[])
        .unwrap()
        .run(&[(g.inputs[0].name.clone(), Tensor::f32(vec![1, 32, 32, 3], vec![0.25; 3072]).unwrap())])
        .unwrap();
}

#[test]
fn int8_ops_qplay_does_not_map_are_listed_all_at_once() {
    let e = load_tflite(&fixture("unsupported_int8.tflite")).unwrap_err();
    let ModelError::UnsupportedTfliteOps(ops) = &e else { panic!("{e}") };
    let names: Vec<&str> = ops.iter().map(|(op, _)| op.as_str()).collect();
    assert!(names.contains(&"SQUARED_DIFFERENCE") && names.contains(&"REDUCE_MAX"), "{e}");
}

/// An input scale that is zero, negative or NaN is refused by every way of loading the file
/// (the float interface's QUANTIZE, the int8 interface's first layer, the QDQ export), naming
/// the tensor and the scale.
#[test]
fn a_bad_scale_is_refused_by_name() {
    let good = fixture("cnn_int8.tflite");
    let scale = 0.007_841_165f32.to_le_bytes();
    let at: Vec<usize> = good.windows(4).enumerate().filter(|(_, w)| *w == scale).map(|(i, _)| i).collect();
    assert_eq!(at.len(), 1, "the input's scale is stored once");
    for bad in [0.0f32, -0.5, f32::NAN] {
        let mut b = good.clone();
        b[at[0]..at[0] + 4].copy_from_slice(&bad.to_le_bytes());
        let errors = [
            load_tflite(&b).map(|_| ()).unwrap_err().to_string(),
            load_tflite_integer_io(&b).map(|_| ()).unwrap_err().to_string(),
            load_tflite_as_qdq(&b).map(|_| ()).unwrap_err().to_string(),
        ];
        for e in errors {
            assert!(e.contains(&format!("has scale {bad} and zero point -1")), "{bad}: {e}");
        }
    }
}

/// Flipped bytes of the int8 and 16x8 models (scales, zero points, shapes, options) give errors
/// or numbers, never a panic — planning and running included.
#[test]
fn corrupt_int8_models_never_panic() {
    for name in [
        "cnn_int8",
        "det_int8",
        "ops_int8",
        "cnn_uint8",
        "det_16x8",
        "cnn_16x8",
        "det_uint8",
        "concat_uint8",
        "layers_int8",
        "moves_int8",
    ] {
        let good = fixture(&format!("{name}.tflite"));
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..300 {
            let mut b = good.clone();
            for _ in 0..4 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let at = (s % b.len() as u64) as usize;
                b[at] = (s >> 32) as u8;
            }
            let Ok(g) = load_tflite_integer_io(&b) else { continue };
            let Ok(plan) = Plan::new(&g, &Registry::new(), &[]) else { continue };
            let Some(shape) = g.inputs[0].shape.iter().copied().collect::<Option<Vec<usize>>>() else { continue };
            if shape.iter().product::<usize>() > 1 << 20 {
                continue;
            }
            let n = shape.iter().product();
            let x = if g.inputs[0].elem_type == 5 {
                Tensor { shape: shape.clone(), data: Data::I16(vec![3; n]) }
            } else if g.inputs[0].elem_type == 2 {
                Tensor { shape: shape.clone(), data: Data::U8(vec![3; n]) }
            } else {
                Tensor::i8(shape.clone(), vec![3; n]).unwrap()
            };
            let _ = plan.run(&[(g.inputs[0].name.clone(), x)]);
        }
    }
}

/// The default interface of a full-integer model is float: TFLite's QUANTIZE of the float input,
/// the integer graph, and TFLite's DEQUANTIZE of its outputs — the int8 graph's outputs
/// dequantized, exactly; for `cnn_int8`, whose input has no rounding ties, LiteRT's.
#[test]
fn the_float_interface_quantizes_and_dequantizes_as_tflite() {
    // Input and output scales and zero points from meta.json.
    type Case = (&'static str, (f32, i32), &'static [(f32, i32)]);
    let cases: [Case; 2] = [
        ("cnn_int8", (0.007_841_165, -1), &[(0.00390625, -128)]),
        ("det_int8", (0.007_843_138, -1), &[(0.00390625, -128), (0.009_024_07, -5)]),
    ];
    for (name, (xs, xz), params) in cases {
        let bytes = fixture(&format!("{name}.tflite"));
        let (g, gi) = (load_tflite(&bytes).unwrap(), load_tflite_integer_io(&bytes).unwrap());
        assert_eq!((g.inputs[0].elem_type, gi.inputs[0].elem_type), (1, 3), "{name}: float and int8 inputs");
        assert_eq!(g.inputs[0].name, gi.inputs[0].name);
        let names = |g: &qplay_core::model::Graph| g.outputs.iter().map(|o| o.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&g), names(&gi));
        let x = npy(&format!("{name}/input.npy"));
        let xq = Tensor::i8(x.shape.clone(), x.as_f32().unwrap().iter().map(|&v| quantize_value(v, xs, xz)).collect())
            .unwrap();
        let outs = Plan::new(&g, &Registry::new(), &[]).unwrap().run(&[(g.inputs[0].name.clone(), x)]).unwrap();
        let outq = Plan::new(&gi, &Registry::new(), &[]).unwrap().run(&[(gi.inputs[0].name.clone(), xq)]).unwrap();
        for (k, ((got, q), &(scale, zp))) in outs.iter().zip(&outq).zip(params).enumerate() {
            let deq = |t: &Tensor| -> Vec<f32> {
                int8(t).iter().map(|&q| (scale as f64 * (q as i32 - zp) as f64) as f32).collect()
            };
            let got = got.as_f32().unwrap();
            assert!(got == deq(q).as_slice(), "{name} output {k}: the float output is not the int8 one dequantized");
            if name == "cnn_int8" {
                let want = npy(&format!("{name}/output_{k}.npy"));
                assert!(got == deq(&want).as_slice(), "{name} output {k} differs from LiteRT's");
            }
        }
    }
}

/// TFLite's QUANTIZE rounds half away from zero; the fixture script quantized the float input
/// with NumPy (`np.round`, half to even), so where `x / scale` is exactly half-way (the photo's
/// pixels, `k / 127.5 − 1`, on a 2/255 grid) LiteRT was fed the even code. Every other code
/// agrees.
#[test]
fn tflite_rounding_of_the_float_input_gives_litert_input_but_for_numpys_ties() {
    // meta.json's input quantization.
    for (name, scale, zp) in [("cnn_int8", 0.007_841_165f32, -1), ("det_int8", 0.007_843_138, -1)] {
        let (x, xq) = (npy(&format!("{name}/input.npy")), npy(&format!("{name}/input_q.npy")));
        let (mut ties, mut differ) = (0, 0);
        for (&v, &want) in x.as_f32().unwrap().iter().zip(int8(&xq)) {
            let mine = quantize_value(v, scale, zp);
            let r = v / scale;
            if r - r.floor() == 0.5 {
                ties += 1;
                let even = (r.round_ties_even() as i32 + zp).clamp(-128, 127) as i8;
                assert_eq!(want, even, "{name}: NumPy's rounding of {v}");
                continue;
            }
            differ += usize::from(mine != want);
        }
        eprintln!("{name}: {ties} ties of {} codes", xq.len());
        assert_eq!(differ, 0, "{name}");
    }
}

#[test]
fn quantize_rounds_half_away_from_zero() {
    assert_eq!((quantize_value(0.5, 1.0, 0), quantize_value(-0.5, 1.0, 0), quantize_value(2.5, 1.0, 0)), (1, -1, 3));
    assert_eq!(
        (quantize_value(-2.5, 1.0, 10), quantize_value(1e9, 0.1, 0), quantize_value(-1e9, 0.1, 5)),
        (7, 127, -128)
    );
}

#[test]
fn quantize_multiplier_matches_tflite_by_hand() {
    // 0.5 = 2^30 · 2^(0 − 31): frexp(0.5) = (0.5, 0).
    assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
    // 1.0 = 0.5 · 2^1.
    assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
    // 0.75 · 2^−3.
    assert_eq!(quantize_multiplier(0.09375), (3 << 29, -3));
    // A significand that rounds up to 2^31 is halved and the shift raised.
    assert_eq!(quantize_multiplier(1.0 - 1e-12), (1 << 30, 1));
    // Ties round half away from zero: q · 2^31 = 1610612736.5 → 1610612737.
    let m = (1_610_612_736.5f64) / 2f64.powi(31);
    assert_eq!(quantize_multiplier(m), (1_610_612_737, 0));
    // Below 2^−31: flushed to zero.
    assert_eq!(quantize_multiplier(1e-12), (0, 0));
    assert_eq!(quantize_multiplier(0.0), (0, 0));
    // Large: 300 = 0.5859375 · 2^9.
    assert_eq!(quantize_multiplier(300.0), (1_258_291_200, 9));
}

#[test]
fn multiply_by_quantized_multiplier_rounds_as_tflite() {
    // TFLite's default double rounding: the doubling high multiply rounds ties up (toward +∞,
    // gemmlowp's nudge), then the right shift rounds ties away from zero.
    // x · 0.5 (multiplier 2^30, shift 0): 1.5 → 2, −1.5 → −1 (the high multiply's tie rule).
    let (m, s) = quantize_multiplier(0.5);
    assert_eq!((m, s), (1 << 30, 0));
    assert_eq!((mbqm(3, m, s), mbqm(-3, m, s), mbqm(4, m, s), mbqm(-4, m, s)), (2, -1, 2, -2));
    // shift < 0 (0.25 = 2^30 · 2^(−1 − 31)): 10 · 0.25 = 2.5 → 3 and −2.5 → −3 (the shift's
    // ties go away from zero); 5 · 0.25 = 1.25 → 2: rounded twice (to 3 · 2^−1, then to 2),
    // where a single rounding gives 1.
    let (m, s) = quantize_multiplier(0.25);
    assert_eq!(s, -1);
    assert_eq!((mbqm(10, m, s), mbqm(-10, m, s), mbqm(6, m, s), mbqm(5, m, s), mbqm(-5, m, s)), (3, -3, 2, 2, -1));
    // shift > 0 (3.0 = 0.75 · 2^2): 7 · 3 = 21 exactly, −7 → −21.
    let (m, s) = quantize_multiplier(3.0);
    assert_eq!((m, s), (3 << 29, 2));
    assert_eq!((mbqm(7, m, s), mbqm(-7, m, s)), (21, -21));
    // 0.3's multiplier is just above 0.3: 5 · 0.3 → 2, −5 · 0.3 → −2.
    let (m, s) = quantize_multiplier(0.3);
    assert_eq!((m, s), (1_288_490_189, -1));
    assert_eq!((mbqm(5, m, s), mbqm(-5, m, s)), (2, -2));
    // The building blocks.
    assert_eq!(srdhm(i32::MIN, i32::MIN), i32::MAX);
    assert_eq!(srdhm(1 << 30, 1 << 30), 1 << 29);
    assert_eq!((srdhm(3, 1 << 30), srdhm(-3, 1 << 30)), (2, -1));
    assert_eq!((rdbpot(5, 1), rdbpot(-5, 1), rdbpot(-4, 1), rdbpot(-6, 2)), (3, -3, -2, -2));
}
