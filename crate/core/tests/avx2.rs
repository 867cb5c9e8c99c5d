//! The kernels' AVX2 path gives the same bits as the SSE2 path: the int8 GEMM on random data of
//! awkward sizes (every output type, zero-points, per-row scales, a bias), the direct depthwise
//! 3×3 convolution on ragged widths at both strides, the whole int8 person detector, and on the
//! float side the SGEMM (16-column AVX tiles against 8-column SSE ones), FakeQuant, calibration
//! histograms and the FP32 person detector. Where the CPU has no AVX2 the tests say so and pass.
//!
//! Likewise the four-byte dot product path (the relaxed SIMD wasm module's: the GEMM's quads
//! and the depthwise 3×3 at stride 1), computed here in plain integers in each of its two exact
//! forms, against the `i16` pairs: the depthwise convolution and the whole int8 person detector.
//!
//! `cargo test -p qplay-core --test avx2`; `QPLAY_NO_AVX2=1` makes the other tests take the SSE2
//! path instead.

use qplay_core::model::{load_onnx, npy::read_npy, Attr, Attrs, Data, Graph, Node, Plan, Tensor, ValueInfo};
use qplay_core::ops::quant::qgemm::{qgemm, set_dot4, Bytes, Dot4, Epilogue, Out, PackedA, PerIndex, QMat};
use qplay_core::ops::quant::simd::{avx2_available, set_avx2};
use qplay_core::ops::Registry;
use qplay_core::ptq::{quantize, PtqOptions};
use std::path::PathBuf;
use std::sync::Mutex;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// The path switch is global: one test at a time flips it.
static SWITCH: Mutex<()> = Mutex::new(());

/// `f()` on the AVX2 path and on the SSE2 path, or `None` without AVX2.
fn both<R>(f: impl Fn() -> R) -> Option<(R, R)> {
    let _guard = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    if !avx2_available() {
        eprintln!("this CPU has no AVX2: nothing to compare");
        return None;
    }
    assert!(set_avx2(true));
    let fast = f();
    assert!(!set_avx2(false));
    let base = f();
    set_avx2(true);
    Some((fast, base))
}

/// `f()` with the four-byte dot product path off, then forced in its unsigned and its signed
/// form (plain integers on this target).
fn dot4_forms<R>(f: impl Fn() -> R) -> [R; 3] {
    let _guard = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    for setting in [None, Some(Dot4::Unsigned), Some(Dot4::Signed)] {
        set_dot4(Some(setting));
        out.push(f());
    }
    set_dot4(None);
    out.try_into().unwrap_or_else(|_| unreachable!())
}

/// The four outputs of one random product `A (m×k) · B (k×n)`, as bits.
fn products(rng: &mut Rng, m: usize, k: usize, n: usize) -> impl Fn() -> Vec<Vec<i64>> {
    let a: Vec<i8> = (0..m * k).map(|_| rng.range(-127, 127) as i8).collect();
    let b: Vec<u8> = (0..k * n).map(|_| rng.range(0, 255) as u8).collect();
    let zw: Vec<i32> = (0..m).map(|_| rng.range(-3, 3) as i32).collect();
    let zx = rng.range(0, 255) as i32;
    let bias: Vec<i32> = (0..m).map(|_| rng.range(-40000, 40000) as i32).collect();
    let scales: Vec<f32> = (0..m).map(|_| 1e-4 + rng.range(1, 400) as f32 * 2.5e-5).collect();
    move || {
        let pa = PackedA::new(&QMat::row_major(Bytes::I8(&a), m, k).unwrap()).unwrap();
        let bm = QMat::row_major(Bytes::U8(&b), k, n).unwrap();
        let mut outs = Vec::new();
        for za in [PerIndex::All(0), PerIndex::Each(&zw[..])] {
            let ep = |out| Epilogue {
                za,
                zb: PerIndex::All(zx),
                bias: Some(&bias),
                scale: &scales,
                scale_per_row: true,
                row_max: None,
                out,
                ldc: n,
            };
            let mut i = vec![0i32; m * n];
            qgemm(&pa, &bm, ep(Out::I32(&mut i))).unwrap();
            let mut u = vec![0u8; m * n];
            qgemm(&pa, &bm, ep(Out::U8 { out: &mut u, zero_point: 131, lo: 0, hi: 255 })).unwrap();
            let mut q = vec![0i8; m * n];
            qgemm(&pa, &bm, ep(Out::I8 { out: &mut q, zero_point: -7, lo: -128, hi: 120 })).unwrap();
            let mut f = vec![0f32; m * n];
            qgemm(&pa, &bm, ep(Out::F32 { out: &mut f, lo: 0.0, hi: 6.0 })).unwrap();
            outs.push(i.iter().map(|&v| v as i64).collect());
            outs.push(u.iter().map(|&v| v as i64).collect());
            outs.push(q.iter().map(|&v| v as i64).collect());
            outs.push(f.iter().map(|&v| v.to_bits() as i64).collect());
        }
        // The exact sums, so that a path wrong in the same way as the other still fails.
        let exact: Vec<i64> = (0..m * n)
            .map(|t| {
                let (r, c) = (t / n, t % n);
                (0..k).map(|l| a[r * k + l] as i64 * (b[l * n + c] as i64 - zx as i64)).sum::<i64>() + bias[r] as i64
            })
            .collect();
        assert_eq!(outs[0], exact, "{m}×{k}×{n}: int32 sums");
        outs
    }
}

#[test]
fn qgemm_is_bit_identical_on_the_avx2_and_sse2_paths() {
    let mut rng = Rng(0x5851f42d4c957f2d);
    // Sizes that are not multiples of the vector widths, ones, an odd and a long reduction, a
    // row count below one panel, and more columns than one packed chunk.
    let sizes = [
        (1, 1, 1),
        (1, 3, 17),
        (3, 1, 9),
        (4, 16, 8),
        (4, 16, 16),
        (5, 7, 23),
        (7, 33, 70),
        (13, 65, 31),
        (9, 601, 40),
        (33, 144, 257),
        (64, 960, 100),
        (6, 24, 6203),
    ];
    for (m, k, n) in sizes {
        let f = products(&mut rng, m, k, n);
        let Some((fast, base)) = both(&f) else { return };
        for (t, (x, y)) in fast.iter().zip(&base).enumerate() {
            assert_eq!(x, y, "{m}×{k}×{n}: output {t} differs between AVX2 and SSE2");
        }
    }
}

/// A depthwise 3×3 `QLinearConv` on `c × h × w` int8 data at `stride`, padding 1.
fn depthwise_graph(rng: &mut Rng, c: usize, stride: usize) -> Graph {
    let t8 = |v: Vec<i8>, shape: Vec<usize>| Tensor { shape, data: Data::I8(v) };
    let w: Vec<i8> = (0..c * 9).map(|_| rng.range(-127, 127) as i8).collect();
    let scales: Vec<f32> = (0..c).map(|_| 0.001 + rng.range(1, 100) as f32 * 1e-4).collect();
    let bias: Vec<i32> = (0..c).map(|_| rng.range(-3000, 3000) as i32).collect();
    let inits = [
        ("x_scale", Tensor::scalar_f32(0.02)),
        ("x_zp", t8(vec![rng.range(-128, 127) as i8], vec![])),
        ("w", t8(w, vec![c, 1, 3, 3])),
        ("w_scale", Tensor::f32(vec![c], scales).unwrap()),
        ("w_zp", t8(vec![0; c], vec![c])),
        ("y_scale", Tensor::scalar_f32(0.07)),
        ("y_zp", t8(vec![rng.range(-128, 127) as i8], vec![])),
        ("b", Tensor { shape: vec![c], data: Data::I32(bias) }),
    ];
    let ints = |v: &[i64]| Attr::Ints(v.to_vec());
    let s = stride as i64;
    let attrs = [
        ("group", Attr::Int(c as i64)),
        ("strides", ints(&[s, s])),
        ("pads", ints(&[1, 1, 1, 1])),
        ("kernel_shape", ints(&[3, 3])),
    ];
    Graph {
        nodes: vec![Node {
            name: "c".into(),
            op_type: "QLinearConv".into(),
            inputs: ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", "b"].map(String::from).to_vec(),
            outputs: vec!["y".into()],
            attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
            fused: Default::default(),
        }],
        initializers: inits.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        inputs: vec![ValueInfo { name: "x".into(), elem_type: 3, shape: vec![Some(1), Some(c), None, None] }],
        outputs: vec![ValueInfo { name: "y".into(), elem_type: 3, shape: vec![] }],
        opset: 13,
        ..Default::default()
    }
}

#[test]
fn depthwise_3x3_is_bit_identical_on_the_avx2_and_sse2_paths() {
    let mut rng = Rng(0x2545f4914f6cdd1d);
    for stride in [1, 2] {
        let c = 3;
        let g = depthwise_graph(&mut rng, c, stride);
        // Widths and heights of 1, odd, and around the vector steps (4 and 8 outputs a row).
        for (h, w) in [(1, 1), (2, 3), (5, 7), (3, 8), (9, 15), (4, 16), (7, 17), (6, 33), (11, 40), (3, 63)] {
            let x: Vec<i8> = (0..c * h * w).map(|_| rng.range(-128, 127) as i8).collect();
            let x = Tensor { shape: vec![1, c, h, w], data: Data::I8(x) };
            let plan = Plan::new(&g, &Registry::new(), &[("x".to_string(), x.shape.clone())]).unwrap();
            let inputs = [("x".to_string(), x)];
            let Some((fast, base)) = both(|| plan.run(&inputs).unwrap().remove(0).to_i64_vec().unwrap()) else {
                return;
            };
            assert_eq!(fast, base, "stride {stride}, {h}×{w}: AVX2 and SSE2 differ");
        }
    }
}

#[test]
fn depthwise_3x3_is_bit_identical_on_four_byte_dot_products() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for stride in [1, 2] {
        let c = 3;
        let g = depthwise_graph(&mut rng, c, stride);
        for (h, w) in [(1, 1), (2, 3), (5, 7), (3, 8), (9, 15), (4, 16), (7, 17), (6, 33), (11, 40), (3, 63)] {
            let x: Vec<i8> = (0..c * h * w).map(|_| rng.range(-128, 127) as i8).collect();
            let x = Tensor { shape: vec![1, c, h, w], data: Data::I8(x) };
            let inputs = [("x".to_string(), x.clone())];
            let [off, unsigned, signed] = dot4_forms(|| {
                let plan = Plan::new(&g, &Registry::new(), &[("x".to_string(), x.shape.clone())]).unwrap();
                plan.run(&inputs).unwrap().remove(0).to_i64_vec().unwrap()
            });
            assert_eq!(unsigned, off, "stride {stride}, {h}×{w}: the unsigned form differs");
            assert_eq!(signed, off, "stride {stride}, {h}×{w}: the signed form differs");
        }
    }
}

fn repo(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn int8_person_detector_is_bit_identical_on_the_avx2_and_sse2_paths() {
    const INPUT: &str = "Preprocessor/sub:0";
    let photo = |name: &str| read_npy(&repo(&format!("tests/fixtures/person_ssdlite_{name}/input.npy"))).unwrap();
    let g = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    let calib = vec![photo("horses"), photo("astronaut")];
    let q = quantize(&g, INPUT, &calib, &PtqOptions::default()).unwrap();
    let x = photo("person");
    let inputs = [(INPUT.to_string(), x.clone())];
    // A plan per path: its weights are packed for the path in use when it first runs (AVX-VNNI's
    // quads on the AVX2 path where the CPU has it, i16 pairs on SSE2).
    let bits = || -> Vec<Vec<u32>> {
        let plan = Plan::new(&q.graph, &Registry::new(), &[(INPUT.to_string(), x.shape.clone())]).unwrap();
        plan.run(&inputs).unwrap().iter().map(|t| t.to_f32_vec().iter().map(|v| v.to_bits()).collect()).collect()
    };
    let Some((fast, base)) = both(bits) else { return };
    assert!(fast.iter().map(Vec::len).sum::<usize>() > 1000);
    assert_eq!(fast, base, "the int8 person detector's outputs differ between AVX2 and SSE2");
}

#[test]
fn int8_person_detector_is_bit_identical_on_four_byte_dot_products() {
    const INPUT: &str = "Preprocessor/sub:0";
    let photo = |name: &str| read_npy(&repo(&format!("tests/fixtures/person_ssdlite_{name}/input.npy"))).unwrap();
    let g = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    let q = quantize(&g, INPUT, &[photo("horses")], &PtqOptions::default()).unwrap();
    let x = photo("person");
    let inputs = [(INPUT.to_string(), x.clone())];
    // A plan per form: its weights are packed for the path in use when it first runs.
    let [off, unsigned, signed] = dot4_forms(|| {
        let plan = Plan::new(&q.graph, &Registry::new(), &[(INPUT.to_string(), x.shape.clone())]).unwrap();
        let out = plan.run(&inputs).unwrap();
        out.iter().map(|t| t.to_f32_vec().iter().map(|v| v.to_bits()).collect::<Vec<u32>>()).collect::<Vec<_>>()
    });
    assert!(off.iter().map(Vec::len).sum::<usize>() > 1000);
    assert_eq!(unsigned, off, "the int8 person detector's outputs differ on the unsigned four-byte form");
    assert_eq!(signed, off, "the int8 person detector's outputs differ on the signed four-byte form");
}

#[test]
fn quantize_linear_is_bit_identical_on_the_avx2_and_sse2_paths() {
    use qplay_core::ops::quant::quantize_linear;
    use qplay_core::ops::BuildCtx;
    let mut rng = Rng(0x9e3779b97f4a7c15);
    // Halves (ties), NaN, infinities, signed zeros, huge values, then random ones; 2·3·n values
    // for n of 1, odd, and around the lane count.
    let special = [0.5f32, 1.5, 2.5, -0.5, -2.5, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 3e38, -3e38];
    for n in [1usize, 3, 7, 8, 9, 17, 100] {
        let len = 6 * n;
        let x: Vec<f32> =
            (0..len).map(|i| if i < special.len() && n > 1 { special[i] } else { rng.unit() * 300.0 }).collect();
        let x = Tensor::f32(vec![2, 3, n], x).unwrap();
        for (axis, scale) in [(1, Tensor::f32(vec![3], vec![0.5, 1.7, 0.013]).unwrap()), (0, Tensor::scalar_f32(1.0))] {
            let scale = if axis == 0 { Tensor::f32(vec![2], vec![1.0, 0.25]).unwrap() } else { scale };
            let zps = [
                Tensor { shape: scale.shape.clone(), data: Data::U8(vec![0, 131, 255][..scale.shape[0]].to_vec()) },
                Tensor { shape: scale.shape.clone(), data: Data::I8(vec![-128, 5, 127][..scale.shape[0]].to_vec()) },
            ];
            for zp in zps {
                let node = Node {
                    name: "q".into(),
                    op_type: "QuantizeLinear".into(),
                    inputs: vec![],
                    outputs: vec![],
                    attrs: Attrs([("axis".to_string(), Attr::Int(axis))].into_iter().collect()),
                    fused: Default::default(),
                };
                let op = quantize_linear::build(&node, &BuildCtx { opset: 21 }).unwrap();
                let run = || op.eval(&[Some(&x), Some(&scale), Some(&zp)]).unwrap().remove(0).to_i64_vec().unwrap();
                let Some((fast, base)) = both(run) else { return };
                assert_eq!(fast, base, "n {n}, axis {axis}, zero-point {:?}", zp.data);
            }
        }
    }
}

#[test]
fn sgemm_is_bit_identical_on_the_avx_and_sse_paths() {
    use qplay_core::ops::nn::sgemm::{sgemm_clamped, Clamp, Init, MatRef};
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut floats = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.range(-100_000, 100_000) as f32 * 1.37e-5).collect() };
    // Ragged sizes around the tile widths (8 and 16 columns, 4 rows), a reduction longer than one
    // depth block (256), more columns than one packed chunk (1024), and transposed operands.
    for (m, k, n) in [(1, 1, 1), (3, 5, 7), (4, 8, 16), (5, 17, 33), (9, 300, 47), (17, 64, 1100), (64, 513, 129)] {
        let (a, b, bias, c0) = (floats(m * k), floats(k * n), floats(m), floats(m * n));
        let run = |transposed: bool, init: usize, clamp: Option<Clamp>| -> Vec<u32> {
            let av = if transposed {
                MatRef::new(&a, k, m, m, 1).unwrap().t()
            } else {
                MatRef::row_major(&a, m, k).unwrap()
            };
            let bv = if transposed {
                MatRef::new(&b, n, k, k, 1).unwrap().t()
            } else {
                MatRef::row_major(&b, k, n).unwrap()
            };
            let init = [Init::Zero, Init::Accumulate, Init::RowBias(&bias)][init];
            let mut c = c0.clone();
            sgemm_clamped(0.75, av, bv, init, clamp, &mut c, n).unwrap();
            c.iter().map(|v| v.to_bits()).collect()
        };
        for transposed in [false, true] {
            for init in 0..3 {
                for clamp in [None, Some(Clamp { lo: 0.0, hi: 6.0 })] {
                    let Some((fast, base)) = both(|| run(transposed, init, clamp)) else { return };
                    assert_eq!(fast, base, "{m}×{k}×{n}, transposed {transposed}, init {init}, clamp {clamp:?}");
                }
            }
        }
    }
}

#[test]
fn fp32_person_detector_and_fake_quant_are_bit_identical_on_the_avx2_and_sse2_paths() {
    const INPUT: &str = "Preprocessor/sub:0";
    let x = read_npy(&repo("tests/fixtures/person_ssdlite_person/input.npy")).unwrap();
    let g = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    let plan = Plan::new(&g, &Registry::new(), &[(INPUT.to_string(), x.shape.clone())]).unwrap();
    let inputs = [(INPUT.to_string(), x.clone())];
    let bits = || -> Vec<Vec<u32>> {
        plan.run(&inputs).unwrap().iter().map(|t| t.to_f32_vec().iter().map(|v| v.to_bits()).collect()).collect()
    };
    let Some((fast, base)) = both(bits) else { return };
    assert_eq!(fast, base, "the FP32 person detector's outputs differ between AVX2 and SSE2");

    use qplay_core::ops::quant::fake_quant::fake_run;
    use qplay_core::quant::{QParams, QType};
    let data = x.as_f32().unwrap();
    for (qt, p) in [
        (QType::UINT8, QParams { scale: 0.0123, zero_point: 117 }),
        (QType::INT8, QParams { scale: 0.007, zero_point: -3 }),
    ] {
        let Some((fast, base)) = both(|| {
            let mut y = vec![0.0f32; data.len()];
            fake_run(p, data, &mut y, qt);
            y.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        }) else {
            return;
        };
        assert_eq!(fast, base, "FakeQuant differs between AVX2 and SSE2 ({qt:?})");
    }
    // Calibration histograms: the same bins on both paths, with values on the bin edges too.
    let mut edges: Vec<f32> = (0..=4096).map(|i| -1.0 + i as f32 / 2048.0).collect();
    edges.extend_from_slice(data);
    let Some((fast, base)) = both(|| qplay_core::quant::Histogram::of(&edges, 2048).unwrap().counts) else { return };
    assert_eq!(fast, base, "histogram bins differ between AVX2 and SSE2");
}
