//! Full-integer TFLite models (int8; 16x8, with int16 activations; TF1's uint8) on the GPU
//! executor. TFLite's convolutions and fully-connected layers run in `tflconv.wgsl` (random
//! geometries, multipliers and ties against the CPU's op, bit for bit; int16 codes with int64
//! biases summed in 64 bits), its element-wise arithmetic, pools and MEAN in their kernels, on
//! 8-bit and int16 codes; a 16x8 FULLY_CONNECTED and int16 SOFTMAX stay on the CPU.
//! The whole models' outputs are LiteRT's, bit for bit, as on the CPU.

mod common;

use common::{assert_exact, cpu_and_gpu, gpu, graph, node, Rng};
use qplay_core::model::{load_tflite_integer_io, npy::read_npy, Attr, Data, Graph, Plan, Tensor};
use qplay_core::ops::Registry;
use qplay_gpu::{GpuPlan, Placement};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tflite").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn int8_tflite_models_equal_litert_on_the_gpu_executor() {
    let g = gpu();
    for name in [
        "cnn_int8",
        "det_int8",
        "ops_int8",
        "cnn_16x8",
        "det_16x8",
        "ops_16x8",
        "det_uint8",
        "concat_uint8",
        "layers_int8",
        "moves_int8",
    ] {
        let graph = load_tflite_integer_io(&fixture(&format!("{name}.tflite"))).unwrap();
        let plan = Arc::new(Plan::new(&graph, &Registry::new(), &[]).unwrap());
        let x = read_npy(&fixture(&format!("{name}/input_q.npy"))).unwrap();
        let mut gp = GpuPlan::new_blocking(&g, plan.clone()).unwrap();
        let summary = gp.summary();
        eprintln!("{name}: {summary}");
        // Every convolution and fully-connected layer on the GPU, but a 16x8 FULLY_CONNECTED
        // (LiteRT requantizes it in double precision); every ADD, SUB, MUL and pool too.
        for (k, p) in gp.placement().iter().enumerate() {
            let step = plan.step(k);
            let conv = step.op.downcast_ref::<qplay_core::ops::tflite::conv::TflConv>().is_some();
            let int16 = name.contains("16x8");
            let gpu_op = conv
                || step.op_type.starts_with("qplay.tfl.")
                    && ["Add", "Sub", "Mul", "AveragePool2D", "MaxPool2D"].iter().any(|o| step.op_type.ends_with(o));
            if gpu_op {
                let fc = step.op_type.ends_with("FullyConnected");
                assert_eq!(
                    *p == Placement::Gpu,
                    !(int16 && fc),
                    "{name}: step `{}` ({}) on the {p:?}",
                    step.name,
                    step.op_type
                );
            }
        }
        let outs = gp.run_blocking(&[(graph.inputs[0].name.clone(), x)]).unwrap();
        for (k, got) in outs.iter().enumerate() {
            let want = read_npy(&fixture(&format!("{name}/output_{k}.npy"))).unwrap();
            assert_eq!(got.shape, want.shape, "{name} output {k}");
            assert!(got.data == want.data, "{name} output {k} differs from LiteRT");
        }
    }
}

fn codes(rng: &mut Rng, n: usize, signed: bool) -> Data {
    if signed {
        Data::I8((0..n).map(|_| rng.range(-128, 127) as i8).collect())
    } else {
        Data::U8((0..n).map(|_| rng.range(0, 255) as u8).collect())
    }
}

/// The codes of a random case: uint8, int8, or int16 (16x8 models: zero points 0).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    U8,
    I8,
    I16,
}

impl Kind {
    fn of(int16: bool, signed: bool) -> Kind {
        match (int16, signed) {
            (true, _) => Kind::I16,
            (false, true) => Kind::I8,
            (false, false) => Kind::U8,
        }
    }

    /// The ONNX element type.
    fn elem(self) -> i32 {
        [2, 3, 5][self as usize]
    }

    /// The codes' range.
    fn range(self) -> (i64, i64) {
        [(0, 255), (-128, 127), (-32768, 32767)][self as usize]
    }

    /// A random zero point (0 for int16).
    fn zp(self, rng: &mut Rng) -> i64 {
        match self {
            Kind::I16 => 0,
            _ => rng.range(self.range().0, self.range().1),
        }
    }

    /// `n` random codes.
    fn random(self, rng: &mut Rng, n: usize) -> Data {
        match self {
            Kind::I16 => Data::I16((0..n).map(|_| rng.range(-32768, 32767) as i16).collect()),
            _ => codes(rng, n, self == Kind::I8),
        }
    }
}

/// `cases` random one-op models from `make`, on the CPU and the GPU: every step on the GPU (on
/// the CPU where `on_cpu(description)`), the outputs equal bit for bit.
fn check_random(
    seed: u64,
    cases: usize,
    make: fn(&mut Rng, usize) -> (Graph, Tensor, String),
    on_cpu: fn(&str) -> bool,
) {
    let g = gpu();
    let mut rng = Rng(seed);
    for case in 0..cases {
        let (graph, x, desc) = make(&mut rng, case);
        let (want, got, gp) = cpu_and_gpu(&g, &graph, &x);
        let place = if on_cpu(&desc) { Placement::Cpu } else { Placement::Gpu };
        assert!(gp.placement().iter().all(|&p| p == place), "{desc}: {}", gp.summary());
        assert_exact(&got, &want, &desc);
    }
}

/// A scale: a power of two half the time (multipliers of exactly 2^k · 0.5, so the rounding
/// multiply and shift meet ties), else random.
fn scale(rng: &mut Rng, lo: i64, hi: i64) -> f32 {
    let e = rng.range(lo, hi) as i32;
    if rng.range(0, 1) == 0 {
        2f32.powi(e)
    } else {
        2f32.powi(e) * (1.0 + rng.range(1, 999) as f32 / 1000.0)
    }
}

/// The random geometry of a one-node convolution of `kind` (0 conv, 1 depthwise, 2 depthwise
/// ×2, 3 fully-connected) from `c` to `o` channels: the taps per output (kh·kw), the input's
/// height and width (drawn from `hw`), the weight shape and the op.
fn conv_geometry(
    rng: &mut Rng,
    kind: usize,
    c: usize,
    o: usize,
    hw: (i64, i64),
) -> (usize, usize, usize, Vec<usize>, &'static str) {
    let (kh, kw) = if kind == 3 { (1, 1) } else { (rng.range(1, 3) as usize, rng.range(1, 3) as usize) };
    let (h, w) = (rng.range(hw.0, hw.1) as usize, rng.range(hw.0, hw.1) as usize);
    let wshape = match kind {
        1 | 2 => vec![1, kh, kw, o],
        3 => vec![o, c],
        _ => vec![o, kh, kw, c],
    };
    let op = ["qplay.tfl.Conv2D", "qplay.tfl.DepthwiseConv2D", "qplay.tfl.DepthwiseConv2D", "qplay.tfl.FullyConnected"]
        [kind];
    (kh * kw, h, w, wshape, op)
}

/// A one-node `qplay.tfl.Conv2D` / `DepthwiseConv2D` / `FullyConnected` model with random
/// geometry, zero points, scales (multipliers below and above 1) and fused activation.
fn random_tfl_conv(rng: &mut Rng, case: usize) -> (Graph, Tensor, String) {
    let kind = case % 4; // conv, depthwise, depthwise ×2, fully-connected
    let signed = case % 5 != 4;
    let c = [3, 4, 8, 5, 16][rng.range(0, 4) as usize];
    let o = match kind {
        1 => c,
        2 => 2 * c,
        _ => [4, 6, 8, 16, 3][rng.range(0, 4) as usize],
    };
    let (_, h, w, wshape, op) = conv_geometry(rng, kind, c, o, (5, 10));
    let xshape = if kind == 3 { vec![rng.range(1, 3) as usize, c] } else { vec![rng.range(1, 2) as usize, h, w, c] };
    let (x_zp, y_zp, w_zp) = if signed {
        (rng.range(-128, 127), rng.range(-128, 127), 0)
    } else {
        (rng.range(0, 255), rng.range(0, 255), rng.range(0, 255))
    };
    // uint8 weights have one scale (and zero point); int8 per channel half the time.
    let w_scales: Vec<f32> =
        if !signed || case % 3 == 0 { vec![scale(rng, -9, -5)] } else { (0..o).map(|_| scale(rng, -9, -5)).collect() };
    // Every seventh case: multipliers above 1 (a left shift) on small sums.
    let small = case % 7 == 0;
    let x_scale = scale(rng, -6, -2);
    let y_scale =
        if small { x_scale * w_scales[0] / (2.0 + rng.range(0, 60) as f32 / 10.0) } else { scale(rng, -8, -1) };
    let (lo, hi) = if signed { (-128, 127) } else { (0, 255) };
    let act = match rng.range(0, 2) {
        0 => (lo, hi),
        1 => (y_zp.max(lo), hi),
        _ => (y_zp.max(lo), (y_zp + 40).min(hi)),
    };
    let mut attrs = vec![
        ("x_scale", Attr::Float(x_scale)),
        ("y_scale", Attr::Float(y_scale)),
        ("w_scales", Attr::Floats(w_scales.clone())),
        ("x_zp", Attr::Int(x_zp)),
        ("y_zp", Attr::Int(y_zp)),
        ("act_min", Attr::Int(act.0)),
        ("act_max", Attr::Int(act.1)),
    ];
    if kind != 3 {
        attrs.push(("strides", Attr::Ints(vec![rng.range(1, 2), rng.range(1, 2)])));
        attrs.push(("dilations", Attr::Ints(vec![rng.range(1, 2), rng.range(1, 2)])));
        attrs.push(("pads", Attr::Ints((0..4).map(|_| rng.range(0, 1)).collect())));
    }
    if !signed {
        attrs.push(("uint8", Attr::Int(1)));
        attrs.push(("w_zp", Attr::Int(w_zp)));
    }
    let mut init = HashMap::new();
    let near = |rng: &mut Rng, n: usize, zp: i64| -> Data {
        let v = (0..n).map(|_| zp + rng.range(-2, 2));
        if signed {
            Data::I8(v.map(|c| c.clamp(-128, 127) as i8).collect())
        } else {
            Data::U8(v.map(|c| c.clamp(0, 255) as u8).collect())
        }
    };
    let wn: usize = wshape.iter().product();
    let wdata = if small { near(rng, wn, w_zp) } else { codes(rng, wn, signed) };
    init.insert("w".to_string(), Tensor { shape: wshape.clone(), data: wdata });
    let b = if small { 10 } else { 20_000 };
    let bias: Vec<i32> = (0..o).map(|_| rng.range(-b, b) as i32).collect();
    init.insert("b".to_string(), Tensor { shape: vec![o], data: Data::I32(bias) });
    let conv = node("conv", op, &["x", "w", "b"], &["y"], &attrs);
    let graph = graph(vec![conv], init, ("x", if signed { 3 } else { 2 }, &xshape), &["y"]);
    let xn: usize = xshape.iter().product();
    let x = Tensor { shape: xshape.clone(), data: if small { near(rng, xn, x_zp) } else { codes(rng, xn, signed) } };
    let desc = format!(
        "case {case}: {op} x {xshape:?} {} zp {x_zp}, w {wshape:?} zp {w_zp}, {} scales, y zp {y_zp}, act {act:?}",
        if signed { "i8" } else { "u8" },
        w_scales.len()
    );
    (graph, x, desc)
}

#[test]
fn random_tflite_convolutions_match_the_cpu_bit_for_bit() {
    check_random(0x9e37_79b9_7f4a_7c15, 80, random_tfl_conv, |_| false);
}

/// A one-node 16x8 `qplay.tfl.Conv2D` / `DepthwiseConv2D` / `FullyConnected` model: int16
/// codes (full range or small), int8 weights, an int64 bias (up to ±2^40), an int32 one or
/// none, and up to 520 input channels over 3×3 taps, so the sums leave int32's range and cross
/// the kernel's runs of 256 products.
fn random_tfl_conv16(rng: &mut Rng, case: usize) -> (Graph, Tensor, String) {
    let kind = case % 4; // conv, depthwise, depthwise ×2, fully-connected
    let c = match kind {
        1 | 2 => [3, 8, 16][rng.range(0, 2) as usize],
        _ => [3, 8, 300, 520][rng.range(0, 3) as usize],
    };
    let o = match kind {
        1 => c,
        2 => 2 * c,
        _ => [4, 6, 3][rng.range(0, 2) as usize],
    };
    let (taps, h, w, wshape, op) = conv_geometry(rng, kind, c, o, (3, 7));
    let xshape = if kind == 3 { vec![2, c] } else { vec![1, h, w, c] };
    let w_scales: Vec<f32> = (0..o).map(|_| scale(rng, -9, -5)).collect();
    let x_scale = scale(rng, -12, -8);
    let k = (c * taps) as f32;
    // Outputs spread over the int16 range, some saturating; the multipliers below 1, down to
    // 2^-25 (rounding shifts past 32 bits).
    let y_scale = x_scale * w_scales[0] * k.sqrt() * 2f32.powi(rng.range(5, 14) as i32);
    let y_zp = 0;
    let act = match rng.range(0, 2) {
        0 => (-32768, 32767),
        1 => (0, 32767),
        _ => (-1000, 20000),
    };
    let mut attrs = vec![
        ("x_scale", Attr::Float(x_scale)),
        ("y_scale", Attr::Float(y_scale)),
        ("w_scales", Attr::Floats(w_scales.clone())),
        ("x_zp", Attr::Int(0)),
        ("y_zp", Attr::Int(y_zp)),
        ("act_min", Attr::Int(act.0)),
        ("act_max", Attr::Int(act.1)),
    ];
    if kind != 3 {
        attrs.push(("strides", Attr::Ints(vec![rng.range(1, 2), rng.range(1, 2)])));
        attrs.push(("dilations", Attr::Ints(vec![1, rng.range(1, 2)])));
        attrs.push(("pads", Attr::Ints((0..4).map(|_| rng.range(0, 1)).collect())));
    }
    let mut init = HashMap::new();
    let wn: usize = wshape.iter().product();
    // Every fifth case the extremes, one sign: a run of 256 products reaches −2^30, and 520
    // channels of them leave int32.
    let extreme = case % 5 == 4;
    let wdata = if extreme { Data::I8(vec![-128; wn]) } else { codes(rng, wn, true) };
    init.insert("w".to_string(), Tensor { shape: wshape.clone(), data: wdata });
    let bias = match case % 3 {
        0 => Some(Data::I64((0..o).map(|_| rng.range(-(1 << 40), 1 << 40)).collect())),
        1 => Some(Data::I32((0..o).map(|_| rng.range(-(1 << 24), 1 << 24) as i32).collect())),
        _ => None,
    };
    let bias_kind = bias.as_ref().map_or("no", |d| if matches!(d, Data::I64(_)) { "i64" } else { "i32" });
    let inputs: &[&str] = if let Some(d) = bias {
        init.insert("b".to_string(), Tensor { shape: vec![o], data: d });
        &["x", "w", "b"]
    } else {
        &["x", "w"]
    };
    let conv = node("conv", op, inputs, &["y"], &attrs);
    let graph = graph(vec![conv], init, ("x", 5, &xshape), &["y"]);
    let xn: usize = xshape.iter().product();
    let full = case % 2 == 0;
    let x = Tensor {
        shape: xshape.clone(),
        data: Data::I16(
            (0..xn)
                .map(|_| match (extreme, full) {
                    (true, _) => 32767,
                    (false, true) => rng.range(-32768, 32767),
                    (false, false) => rng.range(-300, 300),
                } as i16)
                .collect(),
        ),
    };
    let desc = format!(
        "case {case}: {op} x {xshape:?} i16{}, w {wshape:?}, {bias_kind} bias, act {act:?}",
        if extreme { " (extremes)" } else { "" }
    );
    (graph, x, desc)
}

#[test]
fn random_16x8_convolutions_match_the_cpu_bit_for_bit() {
    // A 16x8 FULLY_CONNECTED requantizes in double precision: the CPU's.
    check_random(0x51ed_2701_9a3c_4b8d, 48, random_tfl_conv16, |desc| desc.contains("FullyConnected"));
}

/// A one-node `qplay.tfl.Add` / `Sub` / `Mul` / `Maximum` / `Minimum` model with random shapes
/// (B broadcast along some dims, or a constant), scales and zero points.
fn random_tfl_binary(rng: &mut Rng, case: usize) -> (Graph, Tensor, String) {
    let op = ["qplay.tfl.Add", "qplay.tfl.Sub", "qplay.tfl.Mul", "qplay.tfl.Maximum", "qplay.tfl.Minimum"][case % 5];
    // Every seventh case int16 codes (16x8: zero points 0, ADD / SUB's left shift 15).
    let kind = Kind::of(case % 7 == 6, case % 3 != 2);
    let shape = vec![1, rng.range(1, 6) as usize, rng.range(1, 6) as usize, rng.range(1, 9) as usize];
    // B: the same shape, or broadcast along a random subset of dims.
    let bshape: Vec<usize> = if case % 2 == 0 {
        shape.clone()
    } else {
        shape.iter().map(|&d| if rng.range(0, 1) == 0 { 1 } else { d }).collect()
    };
    let (za, zb, zc) = (kind.zp(rng), kind.zp(rng), kind.zp(rng));
    let (sa, sb) = (scale(rng, -7, -2), scale(rng, -7, -2));
    let sc =
        if op.ends_with("Mul") { sa * sb * (0.5 + rng.range(0, 100) as f32 / 50.0) * 64.0 } else { scale(rng, -7, -1) };
    let (lo, hi) = kind.range();
    let act = if rng.range(0, 1) == 0 { (lo, hi) } else { (zc.max(lo), hi) };
    let mut attrs = vec![
        ("a_scale", Attr::Float(sa)),
        ("b_scale", Attr::Float(sb)),
        ("y_scale", Attr::Float(sc)),
        ("a_zp", Attr::Int(za)),
        ("b_zp", Attr::Int(zb)),
        ("y_zp", Attr::Int(zc)),
        ("act_min", Attr::Int(act.0)),
        ("act_max", Attr::Int(act.1)),
    ];
    if kind == Kind::I16 {
        attrs.push(("bits", Attr::Int(16)));
    }
    let mut init = HashMap::new();
    let constant = case % 4 == 3;
    let b_name = if constant { "bc" } else { "x" };
    if constant {
        init.insert(
            "bc".to_string(),
            Tensor { shape: bshape.clone(), data: kind.random(rng, bshape.iter().product()) },
        );
    }
    // A is the input; B the input again (same shape) or a constant.
    let bshape = if constant { bshape } else { shape.clone() };
    let n = node("op", op, &["x", b_name], &["y"], &attrs);
    let graph = graph(vec![n], init, ("x", kind.elem(), &shape), &["y"]);
    let x = Tensor { shape: shape.clone(), data: kind.random(rng, shape.iter().product()) };
    let desc = format!("case {case}: {op} {shape:?} {kind:?} with {bshape:?}, zps {za} {zb} {zc}, act {act:?}");
    (graph, x, desc)
}

#[test]
fn random_tflite_element_wise_ops_and_pools_match_the_cpu_bit_for_bit() {
    check_random(0x2545_f491_4f6c_dd1d, 60, random_tfl_binary, |_| false);
    check_random(0x94d0_49bb_1331_11eb, 40, random_tfl_pool, |_| false);
}

/// A one-node `qplay.tfl.AveragePool2D` / `MaxPool2D` model with random windows, strides,
/// pads (every window overlapping the image) and fused activation, on any codes.
fn random_tfl_pool(rng: &mut Rng, case: usize) -> (Graph, Tensor, String) {
    let average = case % 2 == 0;
    // Every fifth pool on int16 codes.
    let kind = Kind::of(case % 5 == 4, case % 3 != 2);
    let (kh, kw) = (rng.range(1, 4) as usize, rng.range(1, 4) as usize);
    let pads: Vec<i64> = vec![
        rng.range(0, kh as i64 - 1),
        rng.range(0, kw as i64 - 1),
        rng.range(0, kh as i64 - 1),
        rng.range(0, kw as i64 - 1),
    ];
    let shape =
        vec![rng.range(1, 2) as usize, rng.range(4, 9) as usize, rng.range(4, 9) as usize, rng.range(1, 9) as usize];
    let (lo, hi) = kind.range();
    let act = if rng.range(0, 1) == 0 { (lo, hi) } else { (lo + 60, hi - 30) };
    let attrs = vec![
        ("kernel_shape", Attr::Ints(vec![kh as i64, kw as i64])),
        ("strides", Attr::Ints(vec![rng.range(1, 3), rng.range(1, 3)])),
        ("pads", Attr::Ints(pads.clone())),
        ("act_min", Attr::Int(act.0)),
        ("act_max", Attr::Int(act.1)),
    ];
    let op = if average { "qplay.tfl.AveragePool2D" } else { "qplay.tfl.MaxPool2D" };
    let graph =
        graph(vec![node("pool", op, &["x"], &["y"], &attrs)], HashMap::new(), ("x", kind.elem(), &shape), &["y"]);
    let x = Tensor { shape: shape.clone(), data: kind.random(rng, shape.iter().product()) };
    let desc = format!("pool case {case}: {op} {shape:?} {kind:?} k {kh}×{kw} pads {pads:?} act {act:?}");
    (graph, x, desc)
}

fn ints(v: Vec<i64>) -> Tensor {
    Tensor { shape: vec![v.len()], data: Data::I64(v) }
}

#[test]
fn random_tflite_data_movement_resizes_softmax_mean_and_requantization_match_the_cpu_bit_for_bit() {
    let g = gpu();
    let mut rng = Rng(0x6a09_e667_f3bc_c908);
    for case in 0..110 {
        // The last 30 cases on int16 codes (Flat16; 16x8 zero points 0): the data movement,
        // resizes, MEAN and requantization (int16 SOFTMAX stays on the CPU).
        let codes = Kind::of(case >= 80, case % 3 != 2);
        let (elem, signed) = (codes.elem(), codes != Kind::U8);
        let kind = if codes == Kind::I16 { [0, 1, 2, 3, 5, 6, 7][case % 7] } else { case % 8 };
        let depth = if kind == 4 { [1, 3, 10, 91, 300][rng.range(0, 4) as usize] } else { rng.range(1, 7) as usize };
        let shape = vec![rng.range(1, 2) as usize, rng.range(2, 7) as usize, rng.range(2, 7) as usize, depth];
        let mut init = HashMap::new();
        let (nodes, desc) = match kind {
            0 => {
                // Concat of the input with itself along a random axis (unaligned offsets).
                let axis = rng.range(0, 3);
                (
                    vec![node("cat", "Concat", &["x0", "x0"], &["y"], &[("axis", Attr::Int(axis))])],
                    format!("Concat axis {axis}"),
                )
            }
            1 => {
                // Slice with random starts, ends and steps of either sign.
                let (mut st, mut en, mut ax, mut sp) = (vec![], vec![], vec![], vec![]);
                for (d, &len) in shape.iter().enumerate() {
                    let step = [1i64, 2, -1, -2][rng.range(0, 3) as usize];
                    let (a, b) = (rng.range(0, len as i64 - 1), rng.range(0, len as i64 - 1));
                    let (s, e) =
                        if step > 0 { (a.min(b), a.max(b) + 1) } else { (a.max(b), a.min(b) - 1 - len as i64) };
                    st.push(s);
                    en.push(e);
                    ax.push(d as i64);
                    sp.push(step);
                }
                let d = format!("Slice starts {st:?} ends {en:?} steps {sp:?}");
                for (k, v) in [("st", st), ("en", en), ("ax", ax), ("sp", sp)] {
                    init.insert(k.to_string(), ints(v));
                }
                (vec![node("slice", "Slice", &["x0", "st", "en", "ax", "sp"], &["y"], &[])], d)
            }
            2 => {
                // Constant-mode Pad by a code, some pads negative (crops).
                let pads: Vec<i64> = (0..8).map(|k| if k % 4 == 0 { 0 } else { rng.range(-1, 2) }).collect();
                init.insert("pads".to_string(), ints(pads.clone()));
                let v = rng.range(-100, 100);
                let value = match codes {
                    Kind::I16 => Data::I16(vec![(v * 300) as i16]),
                    Kind::I8 => Data::I8(vec![v as i8]),
                    Kind::U8 => Data::U8(vec![(v + 100) as u8]),
                };
                init.insert("v".to_string(), Tensor { shape: vec![], data: value });
                (vec![node("pad", "Pad", &["x0", "pads", "v"], &["y"], &[])], format!("Pad {pads:?}"))
            }
            3 => {
                // TFLite's resizes (int8 and int16 bilinear, nearest of any codes).
                let bilinear = signed && rng.range(0, 1) == 0;
                let size = vec![rng.range(1, 12), rng.range(1, 12)];
                let (align, half) = match rng.range(0, 2) {
                    0 => (0, 0),
                    1 => (1, 0),
                    _ => (0, 1),
                };
                let op = if bilinear { "qplay.tfl.ResizeBilinear" } else { "qplay.tfl.ResizeNearest" };
                let attrs = [
                    ("size", Attr::Ints(size.clone())),
                    ("align_corners", Attr::Int(align)),
                    ("half_pixel_centers", Attr::Int(half)),
                ];
                (
                    vec![node("resize", op, &["x0"], &["y"], &attrs)],
                    format!("{op} to {size:?} align {align} half {half}"),
                )
            }
            4 => {
                // TFLite's softmax over the last axis (rows of 1 to 300 codes; steep scales put
                // codes beyond the exp's reach, which become the lowest code).
                let x_scale = scale(&mut rng, -5, 1);
                let beta = [1.0f32, 0.5, 2.0][rng.range(0, 2) as usize];
                let attrs = [("x_scale", Attr::Float(x_scale)), ("beta", Attr::Float(beta))];
                let nodes = vec![node("softmax", "qplay.tfl.Softmax", &["x0"], &["y"], &attrs)];
                (nodes, format!("Softmax x_scale {x_scale} beta {beta}"))
            }
            5 => {
                // TFLite's MEAN over a random non-empty set of axes, kept as 1s or dropped.
                let mut axes: Vec<i64> = (0..4).filter(|_| rng.range(0, 1) == 0).collect();
                if axes.is_empty() {
                    axes.push(rng.range(1, 2));
                }
                let attrs = [
                    ("axes", Attr::Ints(axes.clone())),
                    ("keepdims", Attr::Int(rng.range(0, 1))),
                    ("x_scale", Attr::Float(scale(&mut rng, -6, -2))),
                    ("x_zp", Attr::Int(codes.zp(&mut rng))),
                    ("y_scale", Attr::Float(scale(&mut rng, -7, -2))),
                    ("y_zp", Attr::Int(codes.zp(&mut rng))),
                ];
                (vec![node("mean", "qplay.tfl.Mean", &["x0"], &["y"], &attrs)], format!("Mean over {axes:?}"))
            }
            6 => {
                // A Transpose by a random permutation (NHWC ↔ NCHW among them).
                let mut perm: Vec<i64> = vec![0, 1, 2, 3];
                for k in (1..4).rev() {
                    perm.swap(k, rng.range(0, k as i64) as usize);
                }
                let nodes =
                    vec![node("transpose", "Transpose", &["x0"], &["y"], &[("perm", Attr::Ints(perm.clone()))])];
                (nodes, format!("Transpose {perm:?}"))
            }
            _ => {
                // TFLite's QUANTIZE between integer codes: 8-bit to 8-bit, to the other type half
                // the time; int16 to int16.
                let to = match codes {
                    Kind::I16 => Kind::I16,
                    _ if rng.range(0, 1) == 0 => codes,
                    Kind::I8 => Kind::U8,
                    _ => Kind::I8,
                };
                let y_type = to.elem();
                let attrs = [
                    ("x_scale", Attr::Float(scale(&mut rng, -6, -2))),
                    ("x_zp", Attr::Int(codes.zp(&mut rng))),
                    ("y_scale", Attr::Float(scale(&mut rng, -6, -2))),
                    ("y_zp", Attr::Int(to.zp(&mut rng))),
                    ("y_type", Attr::Int(y_type as i64)),
                ];
                (
                    vec![node("rq", "qplay.tfl.Requantize", &["x0"], &["y"], &attrs)],
                    format!("Requantize to type {y_type}"),
                )
            }
        };
        // First an identity requantization (scale ratio 1): a TFLite op, so the plan's 8-bit
        // tensors are NHWC (Flat8) as in a TFLite model.
        let identity = [
            ("x_scale", Attr::Float(0.5)),
            ("x_zp", Attr::Int(0)),
            ("y_scale", Attr::Float(0.5)),
            ("y_zp", Attr::Int(0)),
            ("y_type", Attr::Int(elem as i64)),
        ];
        let mut all = vec![node("pre", "qplay.tfl.Requantize", &["x"], &["x0"], &identity)];
        all.extend(nodes);
        let graph = graph(all, init, ("x", elem, &shape), &["y"]);
        let x = Tensor { shape: shape.clone(), data: codes.random(&mut rng, shape.iter().product()) };
        let desc = format!("case {case}: {desc} of {codes:?} {shape:?}");
        let (want, got, gp) = cpu_and_gpu(&g, &graph, &x);
        assert_eq!(gp.placement(), [Placement::Gpu; 2], "{desc}: {}", gp.summary());
        assert_exact(&got, &want, &desc);
    }
}

/// The SSDs ending in `TFLite_Detection_PostProcess`: the converter's int8 twin and the TF1
/// export's uint8 model. Their integer layers run on the GPU, the post-processing op on the CPU;
/// every output equals the CPU's (which equals LiteRT's: `crate/core/tests/tflite_ssd.rs`).
#[test]
fn quantized_ssds_on_the_gpu_equal_the_cpu() {
    let g = gpu();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tflite_ssd");
    for name in ["ssd_fast_int8", "ssd_uint8"] {
        let graph =
            qplay_core::model::load_tflite(&std::fs::read(dir.join(format!("{name}.tflite"))).unwrap()).unwrap();
        let x = read_npy(&std::fs::read(dir.join("input.npy")).unwrap()).unwrap();
        let plan = Arc::new(Plan::new(&graph, &Registry::new(), &[]).unwrap());
        let inputs = [(graph.inputs[0].name.clone(), x)];
        let want = plan.run(&inputs).unwrap();
        let mut gp = GpuPlan::new_blocking(&g, plan.clone()).unwrap();
        let on_gpu = gp.placement().iter().filter(|&&p| p == Placement::Gpu).count();
        eprintln!("{name}: {}", gp.summary());
        assert!(on_gpu * 10 >= gp.placement().len() * 7, "{name}: {}", gp.summary());
        let got = gp.run_blocking(&inputs).unwrap();
        assert_exact(&got, &want, name);
    }
}

/// llvmpipe (lavapipe) ends an invocation's loops once 65,535 iterations have run in all
/// (`MAX_SERIAL` in src/exec/ops/mod.rs): a MEAN over 256×256 codes per output gave wrong sums
/// there. Such long reductions — TFLite's MEAN on int8 and int16 codes, float global and max pools —
/// stay on the CPU, shorter ones run on the GPU; all equal the CPU.
#[test]
fn reductions_too_long_for_one_invocation_stay_on_the_cpu() {
    let g = gpu();
    let mut rng = Rng(0x3c6e_f372_fe94_f82b);
    for (hw, place) in [(64, Placement::Gpu), (256, Placement::Cpu)] {
        for elem in [3, 5] {
            let attrs = [
                ("axes", Attr::Ints(vec![1, 2])),
                ("keepdims", Attr::Int(0)),
                ("x_scale", Attr::Float(0.01)),
                ("x_zp", Attr::Int(0)),
                ("y_scale", Attr::Float(0.001)),
                ("y_zp", Attr::Int(0)),
            ];
            let shape = [1, hw, hw, 2];
            let n = hw * hw * 2;
            let gr = graph(
                vec![node("m", "qplay.tfl.Mean", &["x"], &["y"], &attrs)],
                HashMap::new(),
                ("x", elem, &shape),
                &["y"],
            );
            let data = if elem == 5 {
                Data::I16((0..n).map(|_| rng.range(-300, 300) as i16).collect())
            } else {
                Data::I8((0..n).map(|_| rng.range(-100, 100) as i8).collect())
            };
            let (want, got, gp) = cpu_and_gpu(&g, &gr, &Tensor { shape: shape.to_vec(), data });
            let desc = format!("MEAN of {shape:?}, type {elem}");
            assert_eq!(gp.placement(), [place], "{desc}: {}", gp.summary());
            assert_exact(&got, &want, &desc);
        }
        let shape = [1, 2, hw, hw];
        let gr =
            graph(vec![node("p", "GlobalAveragePool", &["x"], &["y"], &[])], HashMap::new(), ("x", 1, &shape), &["y"]);
        let x = Tensor { shape: shape.to_vec(), data: Data::F32((0..2 * hw * hw).map(|k| (k % 7) as f32).collect()) };
        let (want, got, gp) = cpu_and_gpu(&g, &gr, &x);
        assert_eq!(gp.placement(), [place], "GlobalAveragePool of {shape:?}: {}", gp.summary());
        common::assert_close(&got, &want, 1e-6, "GlobalAveragePool");
        // A max pool whose one window is the whole image.
        let k = Attr::Ints(vec![hw as i64, hw as i64]);
        let gr = graph(
            vec![node("p", "MaxPool", &["x"], &["y"], &[("kernel_shape", k)])],
            HashMap::new(),
            ("x", 1, &shape),
            &["y"],
        );
        let (want, got, gp) = cpu_and_gpu(&g, &gr, &x);
        assert_eq!(gp.placement(), [place], "MaxPool of {shape:?}: {}", gp.summary());
        assert_exact(&got, &want, "MaxPool");
    }
}
