//! The GPU executor against the CPU reference, bit for bit, on lavapipe where there is no GPU:
//! random QLinearConv geometries (both kernels, both `dot4` variants), the whole int8 person
//! detector, and bad input (limits, broken shaders).

mod common;

use common::{assert_close, assert_exact, cpu_and_gpu, differ, gpu, graph, node, rel_diff, Rng};
use qplay_core::model::npy::read_npy;
use qplay_core::model::{load_onnx, Attr, Attrs, Data, Graph, Node, Plan, Tensor};
use qplay_core::ops::Registry;
use qplay_core::ptq::{quantize, PtqOptions};
use qplay_gpu::{GpuError, GpuPlan, Placement};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

fn repo(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn bytes(rng: &mut Rng, n: usize, signed: bool) -> Data {
    if signed {
        Data::I8((0..n).map(|_| rng.range(-128, 127) as i8).collect())
    } else {
        Data::U8((0..n).map(|_| rng.range(0, 255) as u8).collect())
    }
}

fn zp(v: i64, signed: bool) -> Tensor {
    let data = if signed { Data::I8(vec![v as i8]) } else { Data::U8(vec![v as u8]) };
    Tensor { shape: vec![], data }
}

/// A one-node QLinearConv model with random geometry and parameters; returns it with an input
/// and a description.
fn random_conv(rng: &mut Rng, case: usize) -> (Graph, Tensor, String) {
    // Group structure: plain, depthwise (direct kernel), depthwise ×2 (gather path), groups of
    // 2 in → 3 out (gather path), groups of 4 → 4 (fast path with groups).
    let kind = case % 5;
    let (c, m, group) = match kind {
        0 => {
            let c = rng.range(1, 13) as usize;
            (c, rng.range(1, 13) as usize, 1)
        }
        1 => {
            let c = rng.range(1, 11) as usize;
            (c, c, c)
        }
        2 => {
            let c = rng.range(1, 6) as usize;
            (c, 2 * c, c)
        }
        3 => {
            let g = rng.range(1, 3) as usize;
            (2 * g, 3 * g, g)
        }
        _ => {
            let g = rng.range(1, 3) as usize;
            (4 * g, 4 * g, g)
        }
    };
    let one_d = case % 7 == 6;
    let (kh, kw) =
        if one_d { (1, rng.range(1, 5) as usize) } else { (rng.range(1, 5) as usize, rng.range(1, 5) as usize) };
    let (sh, sw) = (rng.range(1, 3) as usize, rng.range(1, 3) as usize);
    let (dh, dw) = (rng.range(1, 2) as usize, rng.range(1, 2) as usize);
    let pads: Vec<usize> = (0..4).map(|_| rng.range(0, 2) as usize).collect();
    let n = rng.range(1, 2) as usize;
    let h = if one_d { 1 } else { ((kh - 1) * dh + 1).max(rng.range(3, 12) as usize) };
    let w = ((kw - 1) * dw + 1).max(rng.range(3, 12) as usize);
    let x_signed = rng.next() % 2 == 0;
    let w_signed = rng.next() % 3 != 0;
    let y_signed = rng.next() % 2 == 0;
    let float_out = case % 4 == 3;
    let cg = c / group;
    let k = cg * kh * kw;

    let xshape = if one_d { vec![n, c, w] } else { vec![n, c, h, w] };
    let wshape = if one_d { vec![m, cg, kw] } else { vec![m, cg, kh, kw] };
    let x = Tensor { shape: xshape.clone(), data: bytes(rng, xshape.iter().product(), x_signed) };
    let wt = Tensor { shape: wshape.clone(), data: bytes(rng, wshape.iter().product(), w_signed) };
    let zx = if x_signed { rng.range(-100, 100) } else { rng.range(1, 254) };
    // Weight zero-points: 0 (the common case) or not, per tensor or per channel.
    let per_channel = rng.next() % 2 == 0;
    let nz = if per_channel { m } else { 1 };
    let zw: Vec<i64> = (0..nz)
        .map(|_| match (w_signed, rng.next() % 3) {
            (true, 0) => rng.range(-20, 20),
            (true, _) => 0,
            (false, 0) => 128,
            (false, _) => rng.range(100, 150),
        })
        .collect();
    let zw_t = Tensor {
        shape: if per_channel { vec![m] } else { vec![] },
        data: if w_signed {
            Data::I8(zw.iter().map(|&v| v as i8).collect())
        } else {
            Data::U8(zw.iter().map(|&v| v as u8).collect())
        },
    };
    let sx = 0.02f32;
    let wsc: Vec<f32> = (0..nz).map(|_| 0.005 + rng.range(0, 100) as f32 * 1e-4).collect();
    let sw_t = Tensor { shape: if per_channel { vec![m] } else { vec![] }, data: Data::F32(wsc.clone()) };
    let spread = (k as f32).sqrt() * 80.0 * 60.0 * sx * wsc[0];
    let sy = spread / 50.0;
    let bias: Vec<i32> = (0..m).map(|_| rng.range(-3000, 3000) as i32).collect();

    let mut attrs = HashMap::new();
    attrs.insert("group".into(), Attr::Int(group as i64));
    let sp = if one_d {
        (vec![sw as i64], vec![dw as i64], vec![pads[1] as i64, pads[3] as i64])
    } else {
        (vec![sh as i64, sw as i64], vec![dh as i64, dw as i64], pads.iter().map(|&p| p as i64).collect())
    };
    attrs.insert("strides".into(), Attr::Ints(sp.0));
    attrs.insert("dilations".into(), Attr::Ints(sp.1));
    attrs.insert("pads".into(), Attr::Ints(sp.2));
    // A fused activation and per-channel bound now and then (internal attributes).
    if case % 3 == 1 {
        attrs.insert("qplay.fused_clip_min".into(), Attr::Float(0.0));
        attrs.insert("qplay.fused_clip_max".into(), Attr::Float(if float_out { 2.0 } else { 20.0 * sy }));
    }
    if case % 5 == 2 {
        let b: Vec<f32> = (0..m).map(|_| rng.range(1, 30) as f32 * if float_out { 0.1 } else { sy }).collect();
        attrs.insert("qplay.fused_channel_max".into(), Attr::Floats(b));
    }
    if float_out {
        attrs.insert("qplay.float_output".into(), Attr::Int(1));
    }
    let mut init = HashMap::new();
    init.insert("sx".to_string(), Tensor::scalar_f32(sx));
    init.insert("zx".to_string(), zp(zx, x_signed));
    init.insert("w".to_string(), wt);
    init.insert("sw".to_string(), sw_t);
    init.insert("zw".to_string(), zw_t);
    init.insert("sy".to_string(), Tensor::scalar_f32(sy));
    init.insert("zy".to_string(), zp(if y_signed { rng.range(-20, 20) } else { rng.range(0, 60) }, y_signed));
    init.insert("b".to_string(), Tensor { shape: vec![m], data: Data::I32(bias) });
    let (sy_in, zy_in) = if float_out { ("", "") } else { ("sy", "zy") };
    let conv = node("conv", "QLinearConv", &["x", "sx", "zx", "w", "sw", "zw", sy_in, zy_in, "b"], &["y"], &[]);
    let elem = if x_signed { 3 } else { 2 };
    let graph = graph(vec![Node { attrs: Attrs(attrs), ..conv }], init, ("x", elem, &xshape), &["y"]);
    let desc = format!(
        "case {case}: x {xshape:?} {} zx {zx}, w {wshape:?} {} zw {zw:?}, group {group}, k {kh}×{kw} s {sh}×{sw} d {dh}×{dw} pads {pads:?}, {}",
        if x_signed { "i8" } else { "u8" },
        if w_signed { "i8" } else { "u8" },
        if float_out { "float out".to_string() } else { format!("{} out", if y_signed { "i8" } else { "u8" }) }
    );
    (graph, x, desc)
}

#[test]
fn random_qlinearconv_geometries_match_the_cpu_bit_for_bit() {
    let mut g = gpu();
    eprintln!("adapter: {}; packed dot4: {}", g.adapter(), g.packed_dot());
    for variant in ["default", "unpacked"] {
        if variant == "unpacked" {
            g.force_unpacked_dot();
        }
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for case in 0..40 {
            let (graph, x, desc) = random_conv(&mut rng, case);
            let plan = Arc::new(Plan::new(&graph, &Registry::new(), &[("x".into(), x.shape.clone())]).unwrap());
            let want = plan.run(&[("x".into(), x.clone())]).unwrap_or_else(|e| panic!("{desc}: {e}"));
            let mut gp = GpuPlan::new_blocking(&g, plan.clone()).unwrap_or_else(|e| panic!("{desc}: {e}"));
            assert_eq!(gp.placement(), [Placement::Gpu], "{desc}: {}", gp.summary());
            let got = gp.run_blocking(&[("x".into(), x.clone())]).unwrap_or_else(|e| panic!("{desc}: {e}"));
            let d = differ(&got[0], &want[0]);
            assert_eq!(d, 0, "{variant} {desc}: {d} of {} values differ", want[0].len());
            // A second run reuses everything and gives the same result.
            let again = gp.run_blocking(&[("x".into(), x)]).unwrap();
            assert_eq!(differ(&again[0], &want[0]), 0, "{variant} {desc}: second run");
        }
    }
    assert!(g.cached_pipelines() >= 4, "{} pipelines cached", g.cached_pipelines());
}

#[test]
fn int8_person_detector_on_the_gpu_equals_the_cpu_bit_for_bit() {
    let fp32 = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    let input = "Preprocessor/sub:0";
    let calib = read_npy(&repo("tests/fixtures/person_ssdlite_horses/input.npy")).unwrap();
    let q = quantize(&fp32, input, &[calib], &PtqOptions::default()).unwrap();
    let x = read_npy(&repo("tests/fixtures/person_ssdlite_person/input.npy")).unwrap();
    let plan = Arc::new(Plan::new(&q.graph, &Registry::new(), &[(input.into(), x.shape.clone())]).unwrap());
    let inputs = [(input.to_string(), x)];
    let want = plan.run(&inputs).unwrap();
    let g = gpu();
    let mut gp = GpuPlan::new_blocking(&g, plan.clone()).unwrap();
    eprintln!("{}", gp.summary());
    assert!(gp.placement().iter().all(|&p| p == Placement::Gpu), "{}", gp.summary());
    // Tensors whose lifetimes do not overlap share buffers: 21.5 MiB one per tensor, 7.9 shared.
    assert!(gp.buffer_bytes() < 10 << 20, "{}", gp.summary());
    let made = g.buffers_created();
    for _ in 0..2 {
        let got = gp.run_blocking(&inputs).unwrap();
        assert_eq!(g.buffers_created(), made, "a run created GPU buffers");
        assert_exact(&got, &want, "int8 person detector");
    }
}

#[test]
fn float_conv_matches_the_cpu_to_rounding() {
    // Random geometries (groups, depthwise, dilations, asymmetric pads, fused clamp): the GPU
    // sums in another order than the CPU's SGEMM, so the outputs agree to a few ULP of the
    // output's range, not bit for bit.
    let g = gpu();
    let mut rng = Rng(0xf10a7);
    for case in 0..12 {
        let (c, m, group) = match case % 3 {
            0 => (rng.range(1, 9) as usize, rng.range(1, 9) as usize, 1),
            1 => {
                let c = rng.range(1, 8) as usize;
                (c, c, c)
            }
            _ => (4, 6, 2),
        };
        let (kh, kw) = (rng.range(1, 5) as usize, rng.range(1, 5) as usize);
        let (dh, dw) = (rng.range(1, 2) as usize, rng.range(1, 2) as usize);
        let (h, w) =
            (rng.range(((kh - 1) * dh + 1) as i64, 12) as usize, rng.range(((kw - 1) * dw + 1) as i64, 12) as usize);
        let xshape = vec![rng.range(1, 2) as usize, c, h, w];
        let wshape = vec![m, c / group, kh, kw];
        let f = |rng: &mut Rng, n: usize| (0..n).map(|_| rng.range(-1000, 1000) as f32 / 500.0).collect::<Vec<f32>>();
        let mut attrs = HashMap::new();
        attrs.insert("group".to_string(), Attr::Int(group as i64));
        attrs.insert("strides".to_string(), Attr::Ints(vec![rng.range(1, 3), rng.range(1, 3)]));
        attrs.insert("dilations".to_string(), Attr::Ints(vec![dh as i64, dw as i64]));
        attrs.insert("pads".to_string(), Attr::Ints((0..4).map(|_| rng.range(0, 2)).collect()));
        let conv = node("conv", "Conv", &["x", "w", "b"], &[if case % 2 == 0 { "y" } else { "c" }], &[]);
        let mut nodes = vec![Node { attrs: Attrs(attrs), ..conv }];
        if case % 2 == 1 {
            // A ReLU6 the plan fuses into the Conv (the fused-clamp path).
            nodes.push(node("relu6", "Clip", &["c", "lo", "hi"], &["y"], &[]));
        }
        let mut init = HashMap::new();
        init.insert("w".to_string(), Tensor::f32(wshape.clone(), f(&mut rng, wshape.iter().product())).unwrap());
        init.insert("b".to_string(), Tensor::f32(vec![m], f(&mut rng, m)).unwrap());
        init.insert("lo".to_string(), Tensor::scalar_f32(0.0));
        init.insert("hi".to_string(), Tensor::scalar_f32(6.0));
        let graph = graph(nodes, init, ("x", 1, &xshape), &["y"]);
        let x = Tensor::f32(xshape.clone(), f(&mut rng, xshape.iter().product())).unwrap();
        let (want, got, gp) = cpu_and_gpu(&g, &graph, &x);
        assert_eq!(gp.placement(), [Placement::Gpu], "case {case}: {}", gp.summary());
        let d = rel_diff(&got[0], &want[0]);
        assert!(d <= 1e-6, "case {case} x {xshape:?} w {wshape:?}: max |diff| {d} of the range");
    }
}

#[test]
fn fp32_person_detector_on_the_gpu_matches_the_cpu_to_rounding() {
    let g = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    let input = "Preprocessor/sub:0";
    let x = read_npy(&repo("tests/fixtures/person_ssdlite_person/input.npy")).unwrap();
    let plan = Arc::new(Plan::new(&g, &Registry::new(), &[(input.into(), x.shape.clone())]).unwrap());
    let inputs = [(input.to_string(), x)];
    let want = plan.run(&inputs).unwrap();
    let gpu = gpu();
    let mut gp = GpuPlan::new_blocking(&gpu, plan.clone()).unwrap();
    eprintln!("{}", gp.summary());
    let n = gp.plan().step_count();
    let convs = (0..n).filter(|&i| gp.plan().step(i).op_type == "Conv").count();
    let on_gpu = (0..n).filter(|&i| gp.plan().step(i).op_type == "Conv" && gp.placement()[i] == Placement::Gpu).count();
    assert_eq!(on_gpu, convs, "{}", gp.summary());
    let got = gp.run_blocking(&inputs).unwrap();
    // The tolerance against onnxruntime (docs/measurements.md): 1e-4 of the output's range.
    assert_close(&got, &want, 1e-4, "fp32 person detector");
}

#[test]
fn quantize_linear_near_ties_matches_the_cpu() {
    // x / scale within a few ULP of a half-integer, where an approximate GPU division would
    // round the other way: the kernel divides those exactly (and lavapipe divides exactly
    // anyway, so this checks the exact path against the CPU).
    let mut rng = Rng(99);
    let mut xs = Vec::new();
    let scales = [0.0123f32, 0.5, 3.0e-3, 7.77, 1.0 / 3.0, 0.1];
    let s = scales[rng.range(0, scales.len() as i64 - 1) as usize];
    for _ in 0..2000 {
        let k = rng.range(-140, 140) as f64;
        let x0 = ((k + 0.5) * s as f64) as f32;
        let d = rng.range(-3, 3) as i32;
        xs.push(f32::from_bits((x0.to_bits() as i32 + d) as u32));
    }
    xs.extend([0.0, -0.0, 1e-40, -1e-40, f32::NAN, 1e30, -1e30, s * 0.5, -s * 0.5, s * 2.5]);
    while xs.len() % 6 != 0 {
        xs.push(0.25);
    }
    let c = 6;
    let shape = vec![1, c, xs.len() / c];
    for (zp_v, signed) in [(0i64, true), (3, true), (128, false), (17, false)] {
        let mut init = HashMap::new();
        init.insert("s".to_string(), Tensor::scalar_f32(s));
        init.insert("z".to_string(), zp(zp_v, signed));
        let graph =
            graph(vec![node("q", "QuantizeLinear", &["x", "s", "z"], &["y"], &[])], init, ("x", 1, &shape), &["y"]);
        let x = Tensor::f32(shape.clone(), xs.clone()).unwrap();
        let (want, got, gp) = cpu_and_gpu(&gpu(), &graph, &x);
        assert_eq!(gp.placement(), [Placement::Gpu]);
        assert_eq!(differ(&got[0], &want[0]), 0, "scale {s}, zp {zp_v}");
    }
}

#[test]
fn hybrid_plans_run_unsupported_ops_on_the_cpu() {
    // QuantizeLinear (GPU) → Softmax-free chain: DequantizeLinear (GPU) → Sigmoid (CPU) →
    // Add (GPU): the CPU step sits between two GPU phases.
    let mut init = HashMap::new();
    init.insert("s".to_string(), Tensor::scalar_f32(0.05));
    init.insert("z".to_string(), zp(7, false));
    init.insert("one".to_string(), Tensor::scalar_f32(1.0));
    let nodes = vec![
        node("q", "QuantizeLinear", &["x", "s", "z"], &["xq"], &[]),
        node("dq", "DequantizeLinear", &["xq", "s", "z"], &["xd"], &[]),
        node("sig", "Sigmoid", &["xd"], &["xs"], &[]),
        node("add", "Add", &["xs", "one"], &["y"], &[]),
    ];
    let graph = graph(nodes, init, ("x", 1, &[2, 5, 3, 3]), &["y", "xq"]);
    let xs: Vec<f32> = (0..90).map(|i| (i as f32 * 0.37).sin() * 8.0).collect();
    let x = Tensor::f32(vec![2, 5, 3, 3], xs).unwrap();
    let (want, got, gp) = cpu_and_gpu(&gpu(), &graph, &x);
    use Placement::{Cpu, Gpu as G};
    assert_eq!(gp.placement(), [G, G, Cpu, G], "{}", gp.summary());
    assert_exact(&got, &want, "hybrid");
}

#[test]
fn a_layer_beyond_the_adapters_limits_is_a_clear_error() {
    // A 1×1 convolution over 8400×2100 pixels needs more than 65,535 workgroups (of 64
    // invocations, 4 pixels each) in one dimension: refused at plan time, before any buffer
    // is made, naming the step.
    let mut rng = Rng(7);
    let (mut graph, _, _) = random_conv(&mut rng, 0);
    let c = match &graph.initializers["w"].shape[..] {
        [_, c, ..] => *c,
        _ => unreachable!(),
    };
    let m = graph.initializers["w"].shape[0];
    let wt = graph.initializers["w"].clone();
    let n1: usize = m * c;
    let data = match wt.data {
        Data::U8(v) => Data::U8(v[..n1.min(v.len())].iter().cycle().take(n1).copied().collect()),
        Data::I8(v) => Data::I8(v[..n1.min(v.len())].iter().cycle().take(n1).copied().collect()),
        _ => unreachable!(),
    };
    graph.initializers.insert("w".into(), Tensor { shape: vec![m, c, 1, 1], data });
    let attrs = &mut graph.nodes[0].attrs.0;
    attrs.insert("strides".into(), Attr::Ints(vec![1, 1]));
    attrs.insert("dilations".into(), Attr::Ints(vec![1, 1]));
    attrs.insert("pads".into(), Attr::Ints(vec![0, 0, 0, 0]));
    let shape = vec![1, c, 8400, 2100];
    graph.inputs[0].shape = shape.iter().map(|&d| Some(d)).collect();
    let plan = Arc::new(Plan::new(&graph, &Registry::new(), &[("x".into(), shape)]).unwrap());
    let g = gpu();
    let e = GpuPlan::new_blocking(&g, plan).unwrap_err();
    assert!(matches!(e, GpuError::Limits(_)), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("conv") && msg.contains("workgroups") && msg.contains("split"), "{msg}");
}

#[test]
fn wrong_inputs_are_errors() {
    let mut rng = Rng(11);
    let (graph, x, _) = random_conv(&mut rng, 0);
    let plan = Arc::new(Plan::new(&graph, &Registry::new(), &[("x".into(), x.shape.clone())]).unwrap());
    let g = gpu();
    let mut gp = GpuPlan::new_blocking(&g, plan).unwrap();
    let e = gp.run_blocking(&[("nope".into(), x.clone())]).unwrap_err();
    assert!(e.to_string().contains("no input `nope`"), "{e}");
    let e = gp.run_blocking(&[]).unwrap_err();
    assert!(e.to_string().contains("not given"), "{e}");
    let wrong = Tensor::f32(x.shape.clone(), vec![0.0; x.len()]).unwrap();
    let e = gp.run_blocking(&[("x".into(), wrong)]).unwrap_err();
    assert!(e.to_string().contains("expected"), "{e}");
}

#[test]
fn a_lost_device_is_an_error_and_a_new_device_goes_on() {
    let mut rng = Rng(5);
    let (graph, x, _) = random_conv(&mut rng, 1);
    let plan = Arc::new(Plan::new(&graph, &Registry::new(), &[("x".into(), x.shape.clone())]).unwrap());
    let want = plan.run(&[("x".into(), x.clone())]).unwrap();
    let g = gpu();
    let mut gp = GpuPlan::new_blocking(&g, plan.clone()).unwrap();
    assert_eq!(g.lost(), None);
    g.destroy();
    // Either the run fails, or (a driver that finished the work first) it returns the right
    // codes; it never hangs or panics, and the device says it is lost.
    if let Ok(got) = gp.run_blocking(&[("x".into(), x.clone())]) {
        assert_eq!(differ(&got[0], &want[0]), 0);
    }
    let why = g.lost().expect("the device reports that it is lost");
    assert!(why.contains("Destroyed"), "{why}");
    // Recovery, as the page does it: a new device, the plan placed again.
    let g2 = gpu();
    let mut gp2 = GpuPlan::new_blocking(&g2, plan).unwrap();
    let got = gp2.run_blocking(&[("x".into(), x)]).unwrap();
    assert_eq!(differ(&got[0], &want[0]), 0);
}

#[test]
fn pad_relu_and_maxpool_match_the_cpu_bit_for_bit() {
    // Random geometries: constant pads (negative ones crop) with a non-zero value, then Relu,
    // then MaxPool with any kernel, stride, dilation, padding and ceil_mode, 1-D and 2-D.
    let g = gpu();
    let mut rng = Rng(0x9a17);
    for case in 0..16 {
        let two_d = case % 4 != 3;
        let c = rng.range(1, 5) as usize;
        let spatial: Vec<usize> = (0..if two_d { 2 } else { 1 }).map(|_| rng.range(4, 11) as usize).collect();
        let mut xshape = vec![rng.range(1, 2) as usize, c];
        xshape.extend(&spatial);
        let r = xshape.len();
        let mut pads: Vec<i64> = vec![0; 2 * r];
        for d in 2..r {
            pads[d] = rng.range(-1, 2);
            pads[d + r] = rng.range(-1, 2);
        }
        let padded: Vec<usize> = (0..r).map(|d| (xshape[d] as i64 + pads[d] + pads[d + r]) as usize).collect();
        let k: Vec<i64> = padded[2..].iter().map(|&n| rng.range(1, 3.min(n as i64))).collect();
        let dil: Vec<i64> = k
            .iter()
            .zip(&padded[2..])
            .map(|(&k, &n)| if (k - 1) * 2 < n as i64 { rng.range(1, 2) } else { 1 })
            .collect();
        let mut attrs = HashMap::new();
        attrs.insert("kernel_shape".to_string(), Attr::Ints(k.clone()));
        attrs.insert("strides".to_string(), Attr::Ints(k.iter().map(|_| rng.range(1, 3)).collect()));
        attrs.insert("dilations".to_string(), Attr::Ints(dil.clone()));
        let p: Vec<i64> = (0..2 * k.len())
            .map(|j| rng.range(0, (k[j % k.len()] - 1) * dil[j % k.len()]).min(k[j % k.len()] - 1))
            .collect();
        attrs.insert("pads".to_string(), Attr::Ints(p));
        attrs.insert("ceil_mode".to_string(), Attr::Int(rng.range(0, 1)));
        let mut init = HashMap::new();
        init.insert("pads".to_string(), Tensor { shape: vec![2 * r], data: Data::I64(pads.clone()) });
        init.insert("v".to_string(), Tensor::scalar_f32(0.25));
        let nodes = vec![
            node("pad", "Pad", &["x", "pads", "v"], &["xp"], &[]),
            node("relu", "Relu", &["xp"], &["xr"], &[]),
            Node { attrs: Attrs(attrs), ..node("pool", "MaxPool", &["xr"], &["y"], &[]) },
        ];
        let graph = graph(nodes, init, ("x", 1, &xshape), &["y", "xp"]);
        let n: usize = xshape.iter().product();
        let x = Tensor::f32(xshape.clone(), (0..n).map(|_| rng.range(-1000, 1000) as f32 / 300.0).collect()).unwrap();
        let (want, got, gp) = cpu_and_gpu(&g, &graph, &x);
        assert!(gp.placement().iter().all(|&p| p == Placement::Gpu), "case {case}: {}", gp.summary());
        assert_exact(&got, &want, &format!("case {case} x {xshape:?} pads {pads:?}"));
    }
}

#[test]
fn face_detector_runs_entirely_on_the_gpu() {
    // BlazeFace: Pad, Relu and MaxPool between the convolutions. FP32 to rounding; the int8
    // model (quantized from one photo) bit for bit.
    let fp32 = load_onnx(&repo("www/models/blazeface_short.onnx")).unwrap();
    let input = fp32.inputs[0].name.clone();
    let x = read_npy(&repo("tests/fixtures/blazeface_short_astronaut/input.npy")).unwrap();
    let calib = read_npy(&repo("tests/fixtures/blazeface_short_person/input.npy")).unwrap();
    let q = quantize(&fp32, &input, &[calib], &PtqOptions::default()).unwrap();
    let g = gpu();
    for (graph, exact) in [(&fp32, false), (&q.graph, true)] {
        let plan = Arc::new(Plan::new(graph, &Registry::new(), &[(input.clone(), x.shape.clone())]).unwrap());
        let inputs = [(input.clone(), x.clone())];
        let want = plan.run(&inputs).unwrap();
        let mut gp = GpuPlan::new_blocking(&g, plan).unwrap();
        eprintln!("{}", gp.summary());
        assert!(gp.placement().iter().all(|&p| p == Placement::Gpu), "{}", gp.summary());
        let got = gp.run_blocking(&inputs).unwrap();
        if exact {
            assert_exact(&got, &want, "int8");
        } else {
            assert_close(&got, &want, 1e-4, "fp32");
        }
    }
}

#[test]
fn preprocessing_on_the_gpu_matches_the_cpu() {
    // Real photos (3 sizes) × profiles (stretch and letterbox, RGB and BGR, NCHW and NHWC, two
    // input sizes): the frame kernel's input equals the CPU's pre-processing to rounding, read
    // back through a model that adds 0.
    use qplay_core::detect::{preprocess, resize_plan, Profile};
    let base = Profile::from_json(&String::from_utf8(repo("www/models/blazeface_short.json")).unwrap()).unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&repo("tests/fixtures/images.json")).unwrap();
    let g = gpu();
    for (k, json) in [
        r#"{"size": [128, 128]}"#,
        r#"{"size": [160, 96], "layout": "nhwc", "color": "bgr", "resize": {"mode": "letterbox", "pad": 114}}"#,
        r#"{"size": [96, 160], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "resize": {"mode": "letterbox", "pad": 0}}"#,
    ]
    .iter()
    .enumerate()
    {
        let mut v = serde_json::to_value(&base).unwrap();
        for (key, val) in serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json).unwrap() {
            v[key] = val;
        }
        let p: Profile = serde_json::from_value(v).unwrap();
        let [w, h] = p.size;
        let shape = if k == 1 { vec![1, h, w, 3] } else { vec![1, 3, h, w] };
        let mut init = HashMap::new();
        init.insert("zero".to_string(), Tensor::f32(vec![1], vec![0.0]).unwrap());
        let graph = graph(vec![node("add", "Add", &[&p.input, "zero"], &["y"], &[])], init, (&p.input, 1, &shape), &["y"]);
        let plan = Arc::new(Plan::new(&graph, &Registry::new(), &[(p.input.clone(), shape.clone())]).unwrap());
        let mut gp = GpuPlan::new_blocking(&g, plan).unwrap();
        for name in ["person", "astronaut", "horses"] {
            let m = &meta[name];
            let (iw, ih) = (m["width"].as_u64().unwrap() as usize, m["height"].as_u64().unwrap() as usize);
            let rgba = repo(&format!("tests/fixtures/{}", m["file"].as_str().unwrap()));
            let (want, t) = preprocess(&p, iw, ih, &rgba).unwrap();
            let rp = resize_plan(&p, iw, ih).unwrap();
            assert_eq!(rp.transform, t);
            gp.can_preprocess(&rp, iw, ih).unwrap();
            let got = pollster::block_on(gp.run_rgba(&rp, iw, ih, &rgba)).unwrap();
            // The next frame of the same size makes no buffer.
            let made = g.buffers_created();
            let again = pollster::block_on(gp.run_rgba(&rp, iw, ih, &rgba)).unwrap();
            assert_eq!(g.buffers_created(), made, "a second frame made GPU buffers");
            assert_eq!(differ(&again[0], &got[0]), 0);
            let (a, b) = (got[0].as_f32().unwrap(), want.as_f32().unwrap());
            assert_eq!(a.len(), b.len());
            let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            let exact = a.iter().zip(b).filter(|(x, y)| x.to_bits() == y.to_bits()).count();
            eprintln!("profile {k} {name}: max |diff| {worst:e}, {exact} of {} equal", a.len());
            assert!(worst <= 2e-6, "profile {k} {name}: max |diff| {worst}");
        }
        // Bad frames are errors, not panics.
        let rp = resize_plan(&p, 4, 4).unwrap();
        let e = pollster::block_on(gp.run_rgba(&rp, 4, 4, &[0; 12])).unwrap_err();
        assert!(e.to_string().contains("64 bytes"), "{e}");
        let other = resize_plan(&Profile { size: [w + 1, h], ..p.clone() }, 4, 4).unwrap();
        assert!(gp.can_preprocess(&other, 4, 4).is_err());
        assert!(matches!(gp.can_preprocess(&rp, 100_000, 100_000), Err(GpuError::Limits(_))));
    }
}

#[test]
fn float_functions_split_and_slice_match_the_cpu() {
    // One float plan: x → Split (uneven, axis 1) → each part through a function → Concat →
    // Slice (negative step, clamped ends) → Div. Neg, Abs, LeakyRelu, Split and Slice are exact;
    // exp, tanh, sqrt and division agree to rounding.
    let g = gpu();
    let funcs = [
        ("Sigmoid", vec![]),
        ("Tanh", vec![]),
        ("Exp", vec![]),
        ("HardSigmoid", vec![("alpha", Attr::Float(0.3)), ("beta", Attr::Float(0.4))]),
        ("HardSwish", vec![]),
        ("LeakyRelu", vec![("alpha", Attr::Float(0.07))]),
        ("Elu", vec![("alpha", Attr::Float(0.9))]),
        ("Neg", vec![]),
        ("Abs", vec![]),
        ("Sqrt", vec![]),
        ("Softplus", vec![]),
        ("Erf", vec![]),
    ];
    let mut nodes = Vec::new();
    let parts: Vec<String> = (0..funcs.len()).map(|k| format!("p{k}")).collect();
    let part_refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let sizes: Vec<i64> = (0..funcs.len() as i64).map(|k| 1 + k % 3).collect();
    nodes.push(node(
        "split",
        "Split",
        &["x"],
        &part_refs,
        &[("axis", Attr::Int(1)), ("split", Attr::Ints(sizes.clone()))],
    ));
    let mut fouts = Vec::new();
    for (k, (op, attrs)) in funcs.iter().enumerate() {
        // Sqrt of |x| (no NaN to compare).
        let src = if *op == "Sqrt" {
            nodes.push(node("abs_for_sqrt", "Abs", &[&parts[k]], &["pa"], &[]));
            "pa".to_string()
        } else {
            parts[k].clone()
        };
        let o = format!("f{k}");
        nodes.push(node(&format!("fn{k}"), op, &[&src], &[&o], attrs));
        fouts.push(o);
    }
    let frefs: Vec<&str> = fouts.iter().map(String::as_str).collect();
    nodes.push(node("cat", "Concat", &frefs, &["c"], &[("axis", Attr::Int(1))]));
    nodes.push(node("slice", "Slice", &["c", "st", "en", "ax", "steps"], &["s"], &[]));
    nodes.push(node("div", "Div", &["s", "d"], &["y"], &[]));
    let c: usize = sizes.iter().sum::<i64>() as usize;
    let mut init = HashMap::new();
    let i64s = |v: Vec<i64>| Tensor { shape: vec![v.len()], data: Data::I64(v) };
    init.insert("st".to_string(), i64s(vec![-1, 1]));
    init.insert("en".to_string(), i64s(vec![i64::MIN, 100]));
    init.insert("ax".to_string(), i64s(vec![1, 3]));
    init.insert("steps".to_string(), i64s(vec![-2, 2]));
    init.insert("d".to_string(), Tensor::f32(vec![1, 1, 5, 1], vec![3.0, -7.0, 0.1, 1e-3, 9.5]).unwrap());
    let xshape = vec![2, c, 5, 7];
    let graph = graph(nodes, init, ("x", 1, &xshape), &["y", "c"]);
    let mut rng = Rng(0x5eed);
    let n: usize = xshape.iter().product();
    let x = Tensor::f32(xshape.clone(), (0..n).map(|_| rng.range(-4000, 4000) as f32 / 1000.0).collect()).unwrap();
    let (want, got, gp) = cpu_and_gpu(&g, &graph, &x);
    assert!(gp.placement().iter().all(|&p| p == Placement::Gpu), "{}", gp.summary());
    // Exact functions give the CPU's values bit for bit: check those channels of `c`.
    let (gc, wc) = (got[1].as_f32().unwrap(), want[1].as_f32().unwrap());
    let plane = 5 * 7;
    let mut ch = 0;
    for (k, (op, _)) in funcs.iter().enumerate() {
        for _ in 0..sizes[k] {
            for b in 0..2 {
                let r = (b * c + ch) * plane..(b * c + ch + 1) * plane;
                let worst = gc[r.clone()]
                    .iter()
                    .zip(&wc[r.clone()])
                    .map(|(p, q)| ((p - q) / q.abs().max(1.0)).abs())
                    .fold(0f32, f32::max);
                if matches!(*op, "Neg" | "Abs" | "LeakyRelu") {
                    assert!(
                        gc[r.clone()].iter().zip(&wc[r]).all(|(p, q)| p.to_bits() == q.to_bits()),
                        "{op} not exact"
                    );
                } else {
                    assert!(worst <= 4e-6, "{op}: relative difference {worst}");
                }
            }
            ch += 1;
        }
    }
    let d = rel_diff(&got[0], &want[0]);
    assert_eq!(got[0].shape, want[0].shape);
    assert!(d <= 1e-5, "slice + div: {d}");
}

#[test]
fn a_yolov8_style_model_runs_entirely_on_the_gpu() {
    // The synthetic YOLOv8 head (Conv, Sigmoid·Mul = SiLU, Split, Tanh, Exp, Clip, Concat, …),
    // FP32, planned at 320×320: every step on the GPU, within 1e-4 of the output range.
    let g = load_onnx(&repo("tests/fixtures/synthetic/yolov8_dynamic.onnx")).unwrap();
    let input = g.inputs[0].name.clone();
    let x = read_npy(&repo("tests/fixtures/synthetic/yolov8_dynamic_320x320/input.npy")).unwrap();
    let plan = Arc::new(Plan::new(&g, &Registry::new(), &[(input.clone(), x.shape.clone())]).unwrap());
    let inputs = [(input, x)];
    let want = plan.run(&inputs).unwrap();
    let gpu = gpu();
    let mut gp = GpuPlan::new_blocking(&gpu, plan).unwrap();
    eprintln!("{}", gp.summary());
    assert!(gp.placement().iter().all(|&p| p == Placement::Gpu), "{}", gp.summary());
    let got = gp.run_blocking(&inputs).unwrap();
    assert_close(&got, &want, 1e-4, "yolov8-style head");
}

#[test]
fn an_int8_hybrid_with_shared_buffers_equals_the_cpu_bit_for_bit() {
    // The synthetic YOLOv8 head quantized: its Sigmoid, Tanh and Exp stay on the CPU in an int8
    // plan, so GPU phases alternate with CPU ones, and tensors of different phases share
    // buffers. Every output equals the CPU's, on two runs.
    let fp32 = load_onnx(&repo("tests/fixtures/synthetic/yolov8_dynamic.onnx")).unwrap();
    let input = fp32.inputs[0].name.clone();
    let x = read_npy(&repo("tests/fixtures/synthetic/yolov8_dynamic_320x320/input.npy")).unwrap();
    let q = quantize(&fp32, &input, std::slice::from_ref(&x), &PtqOptions::default()).unwrap();
    let plan = Arc::new(Plan::new(&q.graph, &Registry::new(), &[(input.clone(), x.shape.clone())]).unwrap());
    let inputs = [(input, x)];
    let want = plan.run(&inputs).unwrap();
    let g = gpu();
    let mut gp = GpuPlan::new_blocking(&g, plan).unwrap();
    eprintln!("{}", gp.summary());
    let phases = gp.placement().windows(2).filter(|w| w[0] != w[1]).count() + 1;
    assert!(phases >= 3, "expected GPU and CPU phases to alternate: {}", gp.summary());
    assert!(gp.placement().contains(&Placement::Gpu));
    for _ in 0..2 {
        let got = gp.run_blocking(&inputs).unwrap();
        assert_exact(&got, &want, "int8 hybrid");
    }
}

#[test]
fn resize_matches_the_cpu() {
    // Nearest (every nearest_mode and coordinate mode) bit for bit, linear to rounding; scales
    // and sizes, up and down, 1–2 axes; in an int8 plan nearest runs on the GPU and linear on
    // the CPU.
    let g = gpu();
    let mut rng = Rng(0x2e51);
    let coords = ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel", "tf_half_pixel_for_nn"];
    let nearests = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"];
    for case in 0..20 {
        let linear = case % 3 == 2;
        let xshape = vec![1, rng.range(1, 4) as usize, rng.range(2, 9) as usize, rng.range(2, 9) as usize];
        let mut attrs = HashMap::new();
        attrs.insert("mode".to_string(), Attr::String(if linear { "linear" } else { "nearest" }.into()));
        let coord = coords[case % coords.len()];
        if !(linear && coord == "tf_half_pixel_for_nn") {
            attrs.insert("coordinate_transformation_mode".to_string(), Attr::String(coord.into()));
        }
        attrs.insert("nearest_mode".to_string(), Attr::String(nearests[case % 4].into()));
        let mut init = HashMap::new();
        let use_sizes = case % 2 == 1;
        if use_sizes {
            let sizes = vec![1, xshape[1] as i64, rng.range(1, 17), rng.range(1, 17)];
            init.insert("sizes".to_string(), Tensor { shape: vec![4], data: Data::I64(sizes) });
        } else {
            let f = [0.5f32, 1.0, 1.5, 2.0, 3.0];
            let sc = vec![1.0, 1.0, f[rng.range(0, 4) as usize], f[rng.range(0, 4) as usize]];
            init.insert("scales".to_string(), Tensor::f32(vec![4], sc).unwrap());
        }
        let inputs: &[&str] = if use_sizes { &["x", "", "", "sizes"] } else { &["x", "", "scales"] };
        let resize = Node { attrs: Attrs(attrs), ..node("resize", "Resize", inputs, &["y"], &[]) };
        let graph = graph(vec![resize], init, ("x", 1, &xshape), &["y"]);
        let n: usize = xshape.iter().product();
        let x = Tensor::f32(xshape.clone(), (0..n).map(|_| rng.range(-1000, 1000) as f32 / 300.0).collect()).unwrap();
        let (want, got, gp) = cpu_and_gpu(&g, &graph, &x);
        assert_eq!(gp.placement(), [Placement::Gpu], "case {case}: {}", gp.summary());
        assert_eq!(got[0].shape, want[0].shape);
        if linear {
            let d = rel_diff(&got[0], &want[0]);
            assert!(d <= 1e-6, "case {case} ({coord}, linear): {d}");
        } else {
            assert_eq!(differ(&got[0], &want[0]), 0, "case {case} ({coord}, {})", nearests[case % 4]);
        }
    }
    // In an int8 plan (a QuantizeLinear before it), linear Resize stays on the CPU.
    let mut init = HashMap::new();
    init.insert("s".to_string(), Tensor::scalar_f32(0.05));
    init.insert("z".to_string(), zp(3, false));
    init.insert("scales".to_string(), Tensor::f32(vec![4], vec![1.0, 1.0, 2.0, 2.0]).unwrap());
    for (mode, place) in [("nearest", Placement::Gpu), ("linear", Placement::Cpu)] {
        let nodes = vec![
            node("q", "QuantizeLinear", &["x", "s", "z"], &["xq"], &[]),
            node("dq", "DequantizeLinear", &["xq", "s", "z"], &["xd"], &[]),
            node("up", "Resize", &["xd", "", "scales"], &["y"], &[("mode", Attr::String(mode.into()))]),
        ];
        let graph = graph(nodes, init.clone(), ("x", 1, &[1, 2, 3, 3]), &["y"]);
        let x = Tensor::f32(vec![1, 2, 3, 3], (0..18).map(|i| i as f32 * 0.37 - 3.0).collect()).unwrap();
        let (want, got, gp) = cpu_and_gpu(&g, &graph, &x);
        assert_eq!(gp.placement()[2], place, "{mode}: {}", gp.summary());
        assert_eq!(differ(&got[0], &want[0]), 0);
    }
}

#[test]
fn softmax_and_global_pools_match_the_cpu() {
    let g = gpu();
    let mut rng = Rng(0x50f7);
    for case in 0..6 {
        let xshape = vec![
            rng.range(1, 2) as usize,
            rng.range(1, 9) as usize,
            rng.range(1, 7) as usize,
            rng.range(1, 30) as usize,
        ];
        let nodes = vec![
            node("sm", "Softmax", &["x"], &["s"], &[("axis", Attr::Int(-1))]),
            // Another axis: rows of `len` elements `inner` apart.
            node("sm1", "Softmax", &["x"], &["s1"], &[("axis", Attr::Int(1))]),
            node("gap", "GlobalAveragePool", &["x"], &["a"], &[]),
            node("gmp", "GlobalMaxPool", &["x"], &["m"], &[]),
        ];
        let graph = graph(nodes, HashMap::new(), ("x", 1, &xshape), &["s", "a", "m", "s1"]);
        let n: usize = xshape.iter().product();
        let x = Tensor::f32(xshape.clone(), (0..n).map(|_| rng.range(-3000, 3000) as f32 / 400.0).collect()).unwrap();
        let (want, got, gp) = cpu_and_gpu(&g, &graph, &x);
        assert!(gp.placement().iter().all(|&p| p == Placement::Gpu), "{}", gp.summary());
        assert!(rel_diff(&got[0], &want[0]) <= 1e-6, "case {case} softmax: {}", rel_diff(&got[0], &want[0]));
        assert!(rel_diff(&got[1], &want[1]) <= 1e-5, "case {case} average: {}", rel_diff(&got[1], &want[1]));
        assert_eq!(differ(&got[2], &want[2]), 0, "case {case} max");
        assert!(rel_diff(&got[3], &want[3]) <= 1e-6, "case {case} softmax axis 1: {}", rel_diff(&got[3], &want[3]));
    }
}

#[test]
fn int8_lookup_tables_run_on_the_gpu_bit_for_bit() {
    // x → Q → DQ → SiLU (Sigmoid, Mul) → Q → DQ: planning makes the SiLU a 256-entry table
    // (qplay.Lookup); the GPU applies it to the packed codes (6 channels: a padded word).
    let g = gpu();
    for (signed, zx, zy) in [(false, 117, 9), (true, -5, -100)] {
        let mut init = HashMap::new();
        init.insert("sx".to_string(), Tensor::scalar_f32(0.043));
        init.insert("zx".to_string(), zp(zx, signed));
        init.insert("sy".to_string(), Tensor::scalar_f32(0.021));
        init.insert("zy".to_string(), zp(zy, signed));
        let nodes = vec![
            node("q0", "QuantizeLinear", &["x", "sx", "zx"], &["xq"], &[]),
            node("dq0", "DequantizeLinear", &["xq", "sx", "zx"], &["xf"], &[]),
            node("sig", "Sigmoid", &["xf"], &["s"], &[]),
            node("mul", "Mul", &["xf", "s"], &["m"], &[]),
            node("q1", "QuantizeLinear", &["m", "sy", "zy"], &["yq"], &[]),
            node("dq1", "DequantizeLinear", &["yq", "sy", "zy"], &["y"], &[]),
        ];
        let graph = graph(nodes, init, ("x", 1, &[1, 6, 5, 5]), &["y", "yq"]);
        let x = Tensor::f32(vec![1, 6, 5, 5], (0..150).map(|i| (i as f32 * 0.61).sin() * 6.0).collect()).unwrap();
        let (want, got, gp) = cpu_and_gpu(&g, &graph, &x);
        assert!(gp.plan().steps().iter().any(|s| s.1 == "qplay.Lookup"), "{:?}", gp.plan().steps());
        assert!(gp.placement().iter().all(|&p| p == Placement::Gpu), "{}", gp.summary());
        assert_exact(&got, &want, &format!("signed {signed}"));
    }
}
