//! Results do not depend on the number of threads (the `threads` feature): the person detector's
//! outputs, FP32 and INT8, and a whole quantization run (file and report) are bit-identical on
//! 1, 2 and 3 threads, and so are the kernels on shapes that exercise every way they split.
//!
//! Built only with the feature (`required-features`); the workspace test run has it through
//! the CLI. `cargo test -p qplay-core --features threads --test threads`.

use qplay_core::model::{load_onnx, load_tflite_integer_io, npy::read_npy, Data, Graph, OpKind, Plan, Tensor};
use qplay_core::ops::nn::sgemm::{sgemm_clamped, Clamp, Init, MatRef};
use qplay_core::ops::quant::qgemm::{qgemm, Bytes, Epilogue, Out, PackedA, PerIndex, QMat};
use qplay_core::ops::Registry;
use qplay_core::parallel::{on_pool, threads, with_threads};
use qplay_core::ptq::{quantize, PtqOptions, Quantized};
use std::path::PathBuf;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

const INPUT: &str = "Preprocessor/sub:0";

fn repo(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn photo(name: &str) -> Tensor {
    read_npy(&repo(&format!("tests/fixtures/person_ssdlite_{name}/input.npy"))).unwrap()
}

/// Every value's bits, so that -0.0 ≠ 0.0 and NaN payloads count.
fn bits(ts: &[Tensor]) -> Vec<Vec<u64>> {
    ts.iter()
        .map(|t| match &t.data {
            Data::F32(v) => v.iter().map(|x| x.to_bits() as u64).collect(),
            _ => t.to_i64_vec().unwrap().into_iter().map(|x| x as u64).collect(),
        })
        .collect()
}

/// The outputs of `g` on `x` with 1, 2 and 3 threads, as bits.
fn outputs_on(g: &Graph, x: &Tensor) -> Vec<Vec<Vec<u64>>> {
    let plan = Plan::new(g, &Registry::new(), &[(INPUT.to_string(), x.shape.clone())]).unwrap();
    let inputs = [(INPUT.to_string(), x.clone())];
    [1, 2, 3].iter().map(|&n| bits(&with_threads(n, || plan.run(&inputs)).unwrap().unwrap())).collect()
}

#[test]
fn person_detector_fp32_and_int8_are_bit_identical_on_1_2_and_3_threads() {
    let g = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    let x = photo("person");
    let fp32 = outputs_on(&g, &x);
    assert!(fp32[0].iter().map(Vec::len).sum::<usize>() > 1000);
    assert_eq!(fp32[0], fp32[1], "FP32: 2 threads differ from 1");
    assert_eq!(fp32[0], fp32[2], "FP32: 3 threads differ from 1");
    let calib = vec![photo("horses"), photo("astronaut")];
    let q = with_threads(1, || quantize(&g, INPUT, &calib, &PtqOptions::default())).unwrap().unwrap();
    let int8 = outputs_on(&q.graph, &x);
    assert_ne!(int8[0], fp32[0], "the quantized model runs on the int8 kernels");
    assert_eq!(int8[0], int8[1], "INT8: 2 threads differ from 1");
    assert_eq!(int8[0], int8[2], "INT8: 3 threads differ from 1");
}

/// Attention runs its (batch, head) pairs in parallel: transformers' YOLOS (opset 23, 3-D
/// Attention) and a DETR-style detector with `nn.MultiheadAttention` and masked
/// `scaled_dot_product_attention` give the same bits on 1, 2 and 3 threads.
#[test]
fn attention_models_are_bit_identical_on_1_2_and_3_threads() {
    for name in ["hf_yolos", "vit_detector"] {
        let g = load_onnx(&repo(&format!("tests/fixtures/torch_ops/{name}.onnx"))).unwrap();
        let x = read_npy(&repo(&format!("tests/fixtures/torch_ops/{name}/input.npy"))).unwrap();
        let input = g.inputs[0].name.clone();
        let plan = Plan::new(&g, &Registry::new(), &[(input.clone(), x.shape.clone())]).unwrap();
        assert!(plan.steps().iter().any(|&(_, op)| op == "Attention"), "{name} has an Attention node");
        let inputs = [(input, x)];
        let runs: Vec<_> =
            [1, 2, 3].iter().map(|&n| bits(&with_threads(n, || plan.run(&inputs)).unwrap().unwrap())).collect();
        assert_eq!(runs[0], runs[1], "{name}: 2 threads differ from 1");
        assert_eq!(runs[0], runs[2], "{name}: 3 threads differ from 1");
    }
}

/// TFLite's int8 convolutions split their output rows between threads: LiteRT's outputs on 1,
/// 2 and 3 threads.
#[test]
fn int8_tflite_detector_equals_litert_on_1_2_and_3_threads() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tflite");
    let read = |rel: &str| std::fs::read(dir.join(rel)).unwrap();
    let g = load_tflite_integer_io(&read("det_int8.tflite")).unwrap();
    let plan = Plan::new(&g, &Registry::new(), &[]).unwrap();
    let inputs = [(g.inputs[0].name.clone(), read_npy(&read("det_int8/input_q.npy")).unwrap())];
    let want: Vec<Tensor> = (0..2).map(|k| read_npy(&read(&format!("det_int8/output_{k}.npy"))).unwrap()).collect();
    for n in [1, 2, 3] {
        let got = with_threads(n, || plan.run(&inputs)).unwrap().unwrap();
        for (k, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!(a.data == b.data, "output {k} on {n} threads differs from LiteRT");
        }
    }
}

#[test]
fn on_pool_runs_a_whole_model_inside_the_pool_from_a_thread_outside_it() {
    // The test's own thread is outside every rayon pool, as the page's worker is outside
    // wasm-bindgen-rayon's; on_pool hands the whole run to the global pool once.
    let g = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    let x = photo("person");
    let plan = Plan::new(&g, &Registry::new(), &[(INPUT.to_string(), x.shape.clone())]).unwrap();
    let inputs = [(INPUT.to_string(), x.clone())];
    let here = std::thread::current().id();
    let (ran_on, out) = on_pool(|| (std::thread::current().id(), plan.run(&inputs).unwrap()));
    if threads() > 1 {
        assert_ne!(ran_on, here, "with a pool of {} threads the run moves onto one of them", threads());
    } else {
        assert_eq!(ran_on, here, "on one thread the run stays here");
    }
    let (caller, inside) =
        with_threads(2, || (std::thread::current().id(), on_pool(|| std::thread::current().id()))).unwrap();
    assert_eq!(inside, caller, "called on a pool thread: runs right there");
    assert_eq!(bits(&out), outputs_on(&g, &x)[0], "the same bits as a run on one thread");
}

/// The report without its wall-clock times.
fn report(q: &Quantized) -> String {
    let mut r = q.report.clone();
    r.phase_ms.clear();
    serde_json::to_string(&r).unwrap()
}

#[test]
fn quantization_writes_the_same_file_and_report_on_1_and_2_threads() {
    let g = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    let calib = vec![photo("horses"), photo("astronaut"), photo("person")];
    let run = |n, opts: &PtqOptions| with_threads(n, || quantize(&g, INPUT, &calib, opts)).unwrap().unwrap();
    // The defaults: calibration, bias correction and the full report.
    let opts = PtqOptions::default();
    let (one, two) = (run(1, &opts), run(2, &opts));
    assert!(one.onnx == two.onnx, "the QDQ files differ");
    assert_eq!(report(&one), report(&two));
    assert!(one.report.layers.iter().all(|l| l.output_sqnr_db.is_some() && !l.activation.methods.is_empty()));
    // The sensitivity analysis (layers at once), on the last 12 layers (the rest kept FP32 so
    // that the test stays short).
    let convs: Vec<String> = g.nodes.iter().filter(|n| n.is(OpKind::Conv)).map(|n| n.name.clone()).collect();
    let keep_fp32 = convs[..convs.len() - 12].to_vec();
    let opts = PtqOptions { auto_mixed: 2, keep_fp32, ..PtqOptions::default() };
    let (one, two) = (run(1, &opts), run(2, &opts));
    assert!(one.onnx == two.onnx, "the QDQ files differ with --auto-mixed");
    assert_eq!(report(&one), report(&two));
    let sensitive = one.report.layers.iter().filter(|l| l.sensitivity_sqnr_db.is_some()).count();
    assert_eq!(sensitive, 10, "the 12 layers less the 2 kept FP32 by --auto-mixed");
}

/// The f32 GEMM on shapes that split by columns, by rows, both, or not at all, with every
/// `Init` and a clamp, into a wider output (`ldc > n`).
#[test]
fn sgemm_blocks_do_not_change_any_value() {
    let mut rng = Rng(5);
    for &(m, n, k) in &[(96, 3000, 16), (512, 20, 300), (300, 700, 260), (7, 9000, 3), (33, 5, 2000), (1, 1, 1)] {
        let a: Vec<f32> = (0..m * k).map(|_| rng.unit()).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.unit()).collect();
        let bias: Vec<f32> = (0..m).map(|_| rng.unit()).collect();
        let ldc = n + 3;
        let base: Vec<f32> = (0..m * ldc).map(|_| rng.unit()).collect();
        let am = MatRef::row_major(&a, m, k).unwrap();
        let bm = MatRef::row_major(&b, k, n).unwrap();
        for (init, clamp) in [
            (Init::Zero, None),
            (Init::Accumulate, Some(Clamp { lo: -0.5, hi: 6.0 })),
            (Init::RowBias(&bias), Some(Clamp::RELU)),
        ] {
            let on = |threads| {
                let mut c = base.clone();
                with_threads(threads, || sgemm_clamped(0.7, am, bm, init, clamp, &mut c, ldc)).unwrap().unwrap();
                c.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            };
            let one = on(1);
            assert_eq!(one, on(2), "{m}×{n}×{k} on 2 threads");
            assert_eq!(one, on(3), "{m}×{n}×{k} on 3 threads");
        }
    }
}

/// The int8 GEMM likewise, on the fast epilogue and the general one (a non-zero zero-point of
/// A, per-column zero-points of B), for each output type.
#[test]
fn qgemm_blocks_do_not_change_any_value() {
    let mut rng = Rng(9);
    for &(m, n, k, za) in &[(96, 3000, 16, 0), (512, 40, 300, 0), (64, 2000, 70, 3), (5, 9000, 9, 0)] {
        let a: Vec<i8> = (0..m * k).map(|_| rng.range(-128, 127) as i8).collect();
        let b: Vec<u8> = (0..k * n).map(|_| rng.range(0, 255) as u8).collect();
        let bias: Vec<i32> = (0..m).map(|_| rng.range(-10000, 10000) as i32).collect();
        let scale: Vec<f32> = (0..m).map(|_| 0.006 + rng.unit() * 0.005).collect();
        let zb: Vec<i32> = (0..n).map(|_| rng.range(0, 255) as i32).collect();
        let pa = PackedA::new(&QMat::row_major(Bytes::I8(&a), m, k).unwrap()).unwrap();
        let bm = QMat::row_major(Bytes::U8(&b), k, n).unwrap();
        let zbs = if za == 0 { PerIndex::All(128) } else { PerIndex::Each(&zb) };
        fn ep<'a>(za: i32, zb: PerIndex<'a, i32>, bias: &'a [i32], scale: &'a [f32], out: Out<'a>) -> Epilogue<'a> {
            let ldc = out.len() / bias.len();
            Epilogue {
                za: PerIndex::All(za),
                zb,
                bias: Some(bias),
                scale,
                scale_per_row: true,
                row_max: None,
                out,
                ldc,
            }
        }
        let on = |threads| {
            let (mut q, mut f, mut i) = (vec![0u8; m * n], vec![0f32; m * n], vec![0i32; m * n]);
            with_threads(threads, || {
                let u8_out = Out::U8 { out: &mut q, zero_point: 7, lo: 0, hi: 255 };
                qgemm(&pa, &bm, ep(za, zbs, &bias, &scale, u8_out)).unwrap();
                let f32_out = Out::F32 { out: &mut f, lo: 0.0, hi: 6.0 };
                qgemm(&pa, &bm, ep(za, zbs, &bias, &scale, f32_out)).unwrap();
                qgemm(&pa, &bm, ep(za, zbs, &bias, &scale, Out::I32(&mut i))).unwrap();
            })
            .unwrap();
            (q, f.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), i)
        };
        let one = on(1);
        assert_eq!(one, on(2), "{m}×{n}×{k} on 2 threads");
        assert_eq!(one, on(3), "{m}×{n}×{k} on 3 threads");
    }
}

#[test]
fn fine_tuning_takes_the_same_steps_on_1_and_2_threads() {
    // The images of a batch train at once (one per thread: teacher, forward, backward) and
    // their gradients add up in batch order: the same loss, held-out SQNR and weights as one
    // image after the other.
    use qplay_core::train::fine_tune::{held_out_split, FineTune, QatOptions};
    let g = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    let calib = vec![photo("horses"), photo("person")];
    let q = with_threads(1, || quantize(&g, INPUT, &calib, &PtqOptions::default())).unwrap().unwrap();
    let qdq = load_onnx(&q.onnx).unwrap();
    let inputs: Vec<Vec<(String, Tensor)>> =
        ["horses", "person", "astronaut"].iter().map(|n| vec![(INPUT.to_string(), photo(n))]).collect();
    let run = |n| {
        with_threads(n, || {
            let opts = QatOptions { steps: 2, batch: 2, eval_every: 1, augment: true, mix: 1.0, ..Default::default() };
            let split = |w: &[Vec<Tensor>]| held_out_split(w.len());
            let mut ft = FineTune::new(&g, &qdq, inputs.clone(), &split, &opts, Box::new(|| 0.0), None).unwrap();
            let curve: Vec<(u64, u64)> = (0..2)
                .map(|_| {
                    let p = ft.step().unwrap();
                    (p.loss.unwrap().to_bits(), p.held_out_sqnr_db.unwrap().to_bits())
                })
                .collect();
            let trained = ft.current().unwrap();
            let mut names: Vec<&String> = trained.initializers.keys().collect();
            names.sort();
            let weights: Vec<(String, Vec<Vec<u64>>)> =
                names.into_iter().map(|k| (k.clone(), bits(&[trained.initializers[k].clone()]))).collect();
            (curve, weights)
        })
        .unwrap()
    };
    let (one, two) = (run(1), run(2));
    assert!(one.0.iter().all(|&(l, _)| f64::from_bits(l) > 0.0));
    assert_eq!(one.0, two.0, "loss and held-out SQNR per step");
    assert!(one.1 == two.1, "the trained weights differ");
    let ptq: Vec<Vec<Vec<u64>>> = one.1.iter().map(|(k, _)| bits(&[qdq.initializers[k].clone()])).collect();
    assert!(one.1.iter().zip(&ptq).any(|((_, a), b)| a != b), "the steps changed the weights");
}

/// The spinning team of `on_pool`: many small regions in a row, each of the helpers' kinds,
/// nested calls (serial inside a task), and a task's panic raised on the leader after every
/// task has finished, with the team still usable after.
#[test]
fn on_pool_team_runs_every_task_once_in_order_and_passes_panics_on() {
    use qplay_core::parallel::{for_each_mut, join, map};
    with_threads(3, || {
        on_pool(|| {
            assert_eq!(threads(), 3, "the leader splits its work for the whole pool");
            for round in 0..2000usize {
                let n = 1 + round % 9;
                let got = map(n, |i| {
                    // Inside a task, parallel calls run on the task's thread (one item needs
                    // no task: it runs on the leader, which may split it again).
                    assert_eq!(threads(), if n > 1 { 1 } else { 3 });
                    map(3, |j| i * 10 + j).iter().sum::<usize>()
                });
                assert_eq!(got, (0..n).map(|i| 30 * i + 3).collect::<Vec<_>>());
                let mut v = vec![0usize; n];
                for_each_mut(&mut v, |i, x| *x += i + round);
                assert!(v.iter().enumerate().all(|(i, &x)| x == i + round));
                assert_eq!(join(|| round, || "b"), (round, "b"));
            }
            let r = std::panic::catch_unwind(|| {
                let mut v = vec![0; 8];
                for_each_mut(&mut v, |i, x| {
                    if i == 5 {
                        panic!("task 5 fails");
                    }
                    *x = 1;
                });
            });
            assert!(r.is_err(), "the task's panic reaches the leader");
            assert_eq!(map(4, |i| i + 1), vec![1, 2, 3, 4], "the team still runs after a panic");
        })
    })
    .unwrap();
}
