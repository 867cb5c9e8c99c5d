//! Weights below 8 bits: ONNX int4/uint4 tensors (packed two per byte) in and out of the
//! loader, DequantizeLinear of them, PTQ of the person detector at 4 bits (int4 storage at opset
//! 21, or int8 storage with the narrowed range), the integer kernels on 4-bit weights, and QAT
//! that trains and exports at the weights' own bit width.

use prost::Message;
use qplay_core::model::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto};
use qplay_core::model::tensor::{pack_nibbles, packed_len, unpack_nibbles};
use qplay_core::model::{load_onnx, npy::read_npy, save_onnx, Data, Graph, ModelError, Plan, PlanOptions, Tensor};
use qplay_core::ops::Registry;
use qplay_core::ptq::{quantize, PtqOptions, Quantized};
use qplay_core::train::qat::{narrow_bits, Role};
use qplay_core::train::Qat;

const INPUT: &str = "Preprocessor/sub:0";

fn repo(rel: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn photo(name: &str) -> Tensor {
    read_npy(&repo(&format!("tests/fixtures/person_ssdlite_{name}/input.npy"))).unwrap()
}

fn tensor(name: &str, dims: &[i64], data_type: i32, raw: Vec<u8>) -> TensorProto {
    TensorProto { name: name.into(), dims: dims.to_vec(), data_type, raw_data: raw, ..Default::default() }
}

/// A model `y = DequantizeLinear(w, s, z)` on initializers only.
fn dq_model(w: TensorProto, s: TensorProto, z: TensorProto, axis: Option<i64>) -> Vec<u8> {
    let mut n = NodeProto {
        op_type: "DequantizeLinear".into(),
        input: vec![w.name.clone(), s.name.clone(), z.name.clone()],
        output: vec!["y".into()],
        ..Default::default()
    };
    if let Some(a) = axis {
        n.attribute.push(qplay_core::model::proto::AttributeProto {
            name: "axis".into(),
            i: Some(a),
            r#type: qplay_core::model::proto::attribute_type::INT,
            ..Default::default()
        });
    }
    ModelProto {
        ir_version: 10,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 21 }],
        graph: Some(GraphProto {
            node: vec![n],
            initializer: vec![w, s, z],
            output: vec![qplay_core::model::proto::ValueInfoProto { name: "y".into(), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn err_of(bytes: &[u8]) -> ModelError {
    load_onnx(bytes).expect_err("should not load")
}

#[test]
fn nibbles_pack_low_first_and_round_trip_at_every_length() {
    assert_eq!(pack_nibbles([1u8, 2, 3].into_iter()), vec![0x21, 0x03], "low nibble first, odd tail zero");
    let signed: Vec<i8> = vec![-8, -1, 0, 7, 3];
    let packed = pack_nibbles(signed.iter().map(|&v| v as u8));
    assert_eq!(packed, vec![0xf8, 0x70, 0x03]);
    let back = unpack_nibbles(&packed, 5, true).unwrap();
    assert_eq!(back.iter().map(|&b| b as i8).collect::<Vec<_>>(), signed);
    for n in 0..9usize {
        let v: Vec<u8> = (0..n as u8).map(|k| (k * 7) % 16).collect();
        let p = pack_nibbles(v.iter().copied());
        assert_eq!(p.len(), packed_len(n));
        assert_eq!(unpack_nibbles(&p, n, false).unwrap(), v, "n = {n}");
    }
    let e = unpack_nibbles(&[0, 0], 5, true).unwrap_err();
    assert!(e.contains("5 4-bit values take 3 bytes") && e.contains("holds 2 bytes"), "{e}");
    assert!(unpack_nibbles(&[0, 0, 0], 4, true).is_err(), "one byte too many");
    assert!(Tensor::i4(vec![2], vec![8, 0]).is_err() && Tensor::u4(vec![1], vec![16]).is_err());
    assert!(Tensor::i4(vec![3], vec![1, 2]).is_err(), "shape and data disagree");
}

#[test]
fn int4_and_uint4_initializers_load_save_and_dequantize() {
    // Per-axis int4, 5 values per channel (odd: a byte holds the end of one channel and the
    // start of the next), with int4 zero points.
    let codes: Vec<i8> = vec![-8, -7, -1, 0, 1, 2, 3, 5, 6, 7];
    let w = tensor("w", &[2, 5], 22, pack_nibbles(codes.iter().map(|&v| v as u8)));
    let s = tensor("s", &[2], 1, [0.5f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect());
    let z = tensor("z", &[2], 22, pack_nibbles([0u8, 1].into_iter()));
    let g = load_onnx(&dq_model(w.clone(), s.clone(), z, Some(0))).unwrap();
    assert_eq!(g.initializers["w"].data, Data::I4(codes.clone()));
    let y = Plan::new(&g, &Registry::new(), &[]).unwrap().run(&[]).unwrap().remove(0);
    let want: Vec<f32> = codes
        .iter()
        .enumerate()
        .map(|(k, &q)| if k < 5 { f32::from(q) * 0.5 } else { f32::from(q - 1) * 2.0 })
        .collect();
    assert_eq!(y.as_f32().unwrap(), want.as_slice());
    // Written back packed, the same bytes; loaded again, the same values.
    let saved = save_onnx(&g, "test");
    let m = ModelProto::decode(saved.as_slice()).unwrap();
    let wt = m.graph.unwrap().initializer.into_iter().find(|t| t.name == "w").unwrap();
    assert_eq!((wt.data_type, wt.raw_data.len()), (22, 5));
    assert_eq!(wt.raw_data, w.raw_data);
    assert_eq!(load_onnx(&saved).unwrap().initializers["w"], g.initializers["w"]);

    // uint4, 3 values (2 bytes), through int32_data (two nibbles per entry) too.
    let u = tensor("u", &[3], 21, vec![0x3f, 0x08]);
    let zu = tensor("zu", &[], 21, vec![0x08]);
    drop(u);
    let one = tensor("s1", &[], 1, 0.25f32.to_le_bytes().to_vec());
    let u = tensor("u", &[3], 21, vec![0x3f, 0x08]);
    let g = load_onnx(&dq_model(u, one.clone(), zu.clone(), None)).unwrap();
    assert_eq!(g.initializers["u"].data, Data::U4(vec![15, 3, 8]));
    let y = Plan::new(&g, &Registry::new(), &[]).unwrap().run(&[]).unwrap().remove(0);
    assert_eq!(y.as_f32().unwrap(), &[7.0 * 0.25, -5.0 * 0.25, 0.0]);
    let typed = TensorProto {
        name: "u".into(),
        dims: vec![3],
        data_type: 21,
        int32_data: vec![0x3f, 0x08],
        ..Default::default()
    };
    let g = load_onnx(&dq_model(typed, one, zu, None)).unwrap();
    assert_eq!(g.initializers["u"].data, Data::U4(vec![15, 3, 8]));
}

#[test]
fn packed_int4_of_the_wrong_length_is_a_clear_error() {
    let s = tensor("s", &[], 1, 1.0f32.to_le_bytes().to_vec());
    let z = tensor("z", &[], 22, vec![0]);
    for (dims, bytes) in [(vec![5i64], 2usize), (vec![5], 4), (vec![4], 3), (vec![2, 3], 2)] {
        let w = tensor("w", &dims, 22, vec![0x11; bytes]);
        let e = err_of(&dq_model(w, s.clone(), z.clone(), None));
        assert!(matches!(e, ModelError::BadTensor { ref name, .. } if name == "w"), "{dims:?} {bytes}: {e}");
        assert!(e.to_string().contains("packed two per byte"), "{e}");
    }
    let w =
        TensorProto { name: "w".into(), dims: vec![5], data_type: 22, int32_data: vec![1, 2], ..Default::default() };
    assert!(matches!(err_of(&dq_model(w, s.clone(), z.clone(), None)), ModelError::BadTensor { .. }));
    // Other ops do not take 4-bit tensors: a message, not a panic.
    let mut g = load_onnx(&dq_model(tensor("w", &[2], 22, vec![0x21]), s, z, None)).unwrap();
    g.nodes[0].op_type = "Relu".into();
    g.nodes[0].inputs.truncate(1);
    let r = Plan::new(&g, &Registry::new(), &[]).and_then(|p| p.run(&[]));
    assert!(r.is_err(), "Relu of int4");
}

fn person(opts: &PtqOptions) -> (Graph, Quantized) {
    let g = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    let q = quantize(&g, INPUT, &[photo("horses"), photo("astronaut")], opts).unwrap();
    (g, q)
}

fn worst(q: &Quantized) -> f64 {
    q.report.output_sqnr_db.values().copied().fold(f64::INFINITY, f64::min)
}

fn sqnr(a: &[Tensor], b: &[Tensor]) -> f64 {
    let (mut s, mut n) = (0.0f64, 0.0f64);
    for (a, b) in a.iter().zip(b) {
        for (x, y) in a.as_f32().unwrap().iter().zip(b.as_f32().unwrap()) {
            s += f64::from(*x).powi(2);
            n += f64::from(x - y).powi(2);
        }
    }
    10.0 * (s / n.max(1e-30)).log10()
}

#[test]
fn person_detector_at_four_bit_weights() {
    let onnx_bytes = repo("www/models/person_ssdlite.onnx").len() as f64;
    let (fp32, w8) = person(&PtqOptions::default());
    let w4_opts = PtqOptions { weight: PtqOptions::weight_bits(4).unwrap(), ..PtqOptions::default() };
    let (_, w4) = person(&w4_opts);
    let r = &w4.report;
    assert_eq!(
        (r.weight_bits, r.weight_storage, w8.report.weight_bits, w8.report.weight_storage),
        (4, "int4", 8, "int8")
    );
    assert!(r.layers.iter().all(|l| l.weight_bits == 4), "the per-layer report says the bits");
    assert!(r.notes.iter().any(|n| n.contains("opset raised from 13 to 21")), "{:?}", r.notes);
    assert_eq!(w4.graph.opset, 21);
    // Every weight is int4 (−8..7), behind a DequantizeLinear.
    let int4: Vec<&Tensor> = w4.graph.initializers.values().filter(|t| matches!(t.data, Data::I4(_))).collect();
    assert_eq!(int4.len(), 88, "88 weights (their all-zero zero points left out: ONNX's default)");
    let codes: Vec<i64> = int4.iter().flat_map(|t| t.to_i64_vec().unwrap()).collect();
    assert_eq!((codes.iter().min(), codes.iter().max()), (Some(&-8), Some(&7)));
    // Quality: worse than 8 bits, but a working model (sane bounds, not a fixed number).
    let (d8, d4) = (worst(&w8), worst(&w4));
    println!("person detector output SQNR (calibration photos): W8A8 {d8:.2} dB, W4A8 {d4:.2} dB");
    println!("per output W4A8: {:?}", r.output_sqnr_db);
    assert!(d4.is_finite() && d4 > 3.0 && d4 < d8, "W4 {d4} dB vs W8 {d8} dB");
    assert!(r.layers.iter().all(|l| l.weight_sqnr_db > 5.0 && l.weight_sqnr_db < 40.0));
    // The file: int4 weights are half of int8's bytes, and the side tensors are not stored
    // twice (issue #15's bound: 0.17× the FP32 file).
    let (r8, r4) = (w8.onnx.len() as f64 / onnx_bytes, w4.onnx.len() as f64 / onnx_bytes);
    println!("file size vs FP32: W8 {r8:.3}×, W4 {r4:.3}×");
    assert!(r4 < r8 && r4 <= 0.17, "{r4:.3}× vs {r8:.3}×");

    // Held out: the person photo, in the float simulation and through the integer kernels (the
    // 4-bit weights widened to int8 for QLinearConv): the same model within rounding.
    let x = vec![(INPUT.to_string(), photo("person"))];
    let run = |g: &Graph, int8_kernels: bool| {
        let o = PlanOptions { int8_kernels, ..Default::default() };
        Plan::with_options(g, &Registry::new(), &[], o).unwrap().run(&x).unwrap()
    };
    let want = run(&fp32, false);
    let (sim, ints) = (run(&w4.graph, false), run(&w4.graph, true));
    let (held, agree) = (sqnr(&want, &sim), sqnr(&sim, &ints));
    println!("held-out person photo: W4A8 {held:.2} dB vs FP32; integer kernels vs simulation {agree:.1} dB");
    assert!(held > 3.0 && agree > 25.0, "{held} {agree}");
    let mut lowered = w4.graph.clone();
    assert_eq!(qplay_core::model::lower_qdq::lower_qdq(&mut lowered), 88, "every Conv runs as QLinearConv");

    // int8 storage: same values, opset kept, bigger file.
    let (_, w4i8) = person(&PtqOptions { pack_int4: false, ..w4_opts });
    assert_eq!((w4i8.report.weight_storage, w4i8.graph.opset), ("int8", 13));
    assert_eq!(worst(&w4i8), d4, "the same model, stored differently");
    assert!(w4i8.onnx.len() > w4.onnx.len());
    let narrow = w4i8.graph.initializers.values().filter(|t| narrow_bits(t, None) == Some(4)).count();
    assert_eq!(narrow, 88, "int8 codes on the 4-bit grid");
}

#[test]
fn weight_bits_two_to_seven_and_bad_types() {
    let g = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    let calib = [photo("horses")];
    let mut last = f64::INFINITY;
    for bits in [6u8, 3] {
        let opts = PtqOptions { weight: PtqOptions::weight_bits(bits).unwrap(), equalize: false, ..Default::default() };
        let q = quantize(&g, INPUT, &calib, &opts).unwrap();
        let top = (1i64 << (bits - 1)) - 1;
        let store = if bits <= 4 { "int4" } else { "int8" };
        assert_eq!((q.report.weight_bits, q.report.weight_storage), (bits, store));
        let wsq: f64 = q.report.layers.iter().map(|l| l.weight_sqnr_db).sum::<f64>() / 88.0;
        assert!(wsq < last, "fewer bits, lower weight SQNR: {bits} bits {wsq:.1} dB");
        last = wsq;
        let max = q
            .graph
            .initializers
            .values()
            .filter(|t| matches!(t.data, Data::I8(_) | Data::I4(_)))
            .flat_map(|t| t.to_i64_vec().unwrap())
            .map(|c| if c < 0 { -c - 1 } else { c })
            .max()
            .unwrap();
        assert_eq!(max, top, "{bits}-bit codes fill −{top}−1..={top} and go no further");
    }
    assert!(PtqOptions::weight_bits(1).is_err() && PtqOptions::weight_bits(9).is_err());
    let opts = PtqOptions { weight: qplay_core::quant::QType::UINT8, ..Default::default() };
    let e = quantize(&g, INPUT, &calib, &opts).unwrap_err().to_string();
    assert!(e.contains("signed 2 to 8 bits"), "{e}");
}

#[test]
fn qat_at_four_bits_starts_at_ptq_and_exports_int4() {
    let opts = PtqOptions { weight: PtqOptions::weight_bits(4).unwrap(), ..PtqOptions::default() };
    let (fp32, q) = person(&opts);
    let qdq = load_onnx(&q.onnx).unwrap();
    let mut qat = Qat::new(&qdq, &[]).unwrap();
    let weights: Vec<&Role> = qat.roles().iter().filter(|r| matches!(r, Role::Weight { .. })).collect();
    assert_eq!(weights.len(), 88);
    assert_eq!(qplay_core::train::qat::weight_bits(&qdq), 4, "int4 codes");
    assert_eq!(qplay_core::train::qat::weight_bits(&load_onnx(&person(&PtqOptions::default()).1.onnx).unwrap()), 8);
    assert_eq!(qplay_core::train::QatOptions::default_feature_weight(4), 0.0);
    // The step size: 1e-3 below 8 bits; at 8, 1e-4 from rounding to nearest, 3e-5 from GPTQ.
    let lr = qplay_core::train::QatOptions::default_lr;
    assert_eq!((lr(4, true), lr(4, false), lr(8, false), lr(8, true)), (1e-3, 1e-3, 1e-4, 3e-5));
    assert!(weights.iter().all(|r| matches!(r, Role::Weight { bits: None, .. })), "int4 storage gives the bits");
    let x = vec![(INPUT.to_string(), photo("person"))];
    let sim = |g: &Graph| {
        let o = PlanOptions { int8_kernels: false, ..Default::default() };
        Plan::with_options(g, &Registry::new(), &[], o).unwrap().run(&x).unwrap()
    };
    assert_eq!(qat.student.forward(&x).unwrap().outputs, sim(&qdq), "step 0 is the W4 PTQ model");
    let back = qat.export().unwrap();
    for (name, t) in &qdq.initializers {
        assert_eq!(back.initializers.get(name), Some(t), "`{name}` changed on a round trip");
    }
    // A few steps: the weights stay 4-bit (int4, −8..7) in the export, which saves and reloads.
    let teach = sim(&fp32);
    let mut adam = qplay_core::train::Adam::new(1e-4);
    for _ in 0..2 {
        qat.step(&mut adam, &x, &teach).unwrap();
    }
    let out = qat.export().unwrap();
    let codes: Vec<&Tensor> = out.initializers.values().filter(|t| matches!(t.data, Data::I4(_))).collect();
    assert_eq!(codes.len(), 88);
    let reloaded = load_onnx(&save_onnx(&out, "qat")).unwrap();
    assert_eq!(reloaded.initializers.values().filter(|t| matches!(t.data, Data::I4(_))).count(), 88);

    // 4-bit weights stored in int8: the bit width comes from the codes' range; training clamps
    // to it and so does the export.
    let (_, q8) = person(&PtqOptions { pack_int4: false, ..opts });
    let qdq8 = load_onnx(&q8.onnx).unwrap();
    assert_eq!(qplay_core::train::qat::weight_bits(&qdq8), 4, "int8 codes on the 4-bit grid");
    let mut qat8 = Qat::new(&qdq8, &[]).unwrap();
    assert!(qat8
        .roles()
        .iter()
        .filter(|r| matches!(r, Role::Weight { .. }))
        .all(|r| matches!(r, Role::Weight { bits: Some(4), .. })));
    assert_eq!(qat8.student.forward(&x).unwrap().outputs, sim(&qdq8), "step 0 is the PTQ model");
    let mut adam = qplay_core::train::Adam::new(1e-3);
    for _ in 0..2 {
        qat8.step(&mut adam, &x, &teach).unwrap();
    }
    let out8 = qat8.export().unwrap();
    for r in qat8.roles() {
        if let Role::Weight { q, .. } = r {
            let v = out8.initializers[q].to_i64_vec().unwrap();
            assert!(v.iter().all(|c| (-8..=7).contains(c)), "`{q}` left the 4-bit grid");
        }
    }
}

#[test]
fn the_compact_form_is_the_same_model_in_fewer_bytes() {
    use qplay_core::model::qdq_form::{compact_qdq, explicit_qdq, fold_scale_products, Compacted};
    let w4_opts = PtqOptions { weight: PtqOptions::weight_bits(4).unwrap(), ..PtqOptions::default() };
    let (_, w4) = person(&w4_opts);
    // What PTQ wrote: bias scales as products, no weight zero points.
    let muls = |g: &Graph| g.nodes.iter().filter(|n| n.op_type == "Mul").count();
    assert_eq!(muls(&w4.graph), 88);
    assert!(w4.report.notes.iter().any(|n| n.contains("88 bias scales written as `Mul(input scale, weight scale)`")));
    let mut explicit = w4.graph.clone();
    assert_eq!(explicit_qdq(&mut explicit), 88, "a zero point per weight");
    assert_eq!(muls(&explicit), 0, "the products folded");
    // The same values: the float simulation and the integer kernels, bit for bit.
    let x = vec![(INPUT.to_string(), photo("astronaut"))];
    let run = |g: &Graph, int8_kernels: bool| {
        let o = PlanOptions { int8_kernels, ..Default::default() };
        Plan::with_options(g, &Registry::new(), &[], o).unwrap().run(&x).unwrap()
    };
    for ints in [false, true] {
        assert_eq!(run(&w4.graph, ints), run(&explicit, ints), "int8 kernels: {ints}");
    }
    // And back: the explicit form compacts to the same file.
    let big = save_onnx(&explicit, "qplay").len();
    let mut again = explicit.clone();
    assert_eq!(compact_qdq(&mut again), Compacted { zero_points: 88, bias_scales: 88 });
    let small = save_onnx(&again, "qplay").len();
    println!("compact form: {small} bytes, explicit {big} bytes");
    assert!(big - small > 100_000, "{big} → {small}");
    assert_eq!(run(&again, true), run(&explicit, true));

    // A bias scale that is not exactly the product stays stored; a zero point that is not zero
    // stays; a Mul read by anything but a scale is not folded.
    let mut off = explicit.clone();
    let conv = off.nodes.iter().find(|n| n.op_type == "Conv").unwrap().clone();
    let bias_dq = off.nodes.iter().find(|n| n.outputs[0] == conv.inputs[2]).unwrap().clone();
    if let Data::F32(v) = &mut off.initializers.get_mut(&bias_dq.inputs[1]).unwrap().data {
        v[0] = f32::from_bits(v[0].to_bits() + 1);
    }
    let weight_dq = off.nodes.iter().find(|n| n.outputs[0] == conv.inputs[1]).unwrap().clone();
    if let Data::I4(v) = &mut off.initializers.get_mut(&weight_dq.inputs[2]).unwrap().data {
        v[0] = 1;
    }
    assert_eq!(compact_qdq(&mut off), Compacted { zero_points: 87, bias_scales: 87 });
    let mut g = Graph::default();
    g.initializers.insert("a".into(), Tensor::scalar_f32(2.0));
    g.initializers.insert("b".into(), Tensor::f32(vec![2], vec![3.0, 4.0]).unwrap());
    g.nodes.push(qplay_core::model::Node {
        name: "m".into(),
        op_type: "Mul".into(),
        inputs: vec!["a".into(), "b".into()],
        outputs: vec!["y".into()],
        attrs: Default::default(),
        fused: Default::default(),
    });
    g.outputs.push(qplay_core::model::ValueInfo { name: "y".into(), elem_type: 1, shape: vec![Some(2)] });
    assert_eq!(fold_scale_products(&mut g), 0, "a graph output is not a scale");
}

#[test]
fn gptq_rounding_keeps_the_scales_and_beats_nearest_on_a_held_out_photo() {
    let w4 = PtqOptions { weight: PtqOptions::weight_bits(4).unwrap(), ..PtqOptions::default() };
    let (fp32, near) = person(&w4);
    let (_, gptq) = person(&PtqOptions { gptq: true, ..w4.clone() });
    assert!(gptq.report.notes.iter().any(|n| n.contains("(GPTQ) in 88 layers")), "{:?}", gptq.report.notes);
    assert!(gptq.report.phase_ms.iter().any(|(p, _)| p.contains("GPTQ")));
    // The same scales per channel (only the codes move), so the same format and size.
    for (a, b) in near.report.layers.iter().zip(&gptq.report.layers) {
        assert_eq!((&a.node, &a.channel_scales), (&b.node, &b.channel_scales));
    }
    assert!(near.onnx.len().abs_diff(gptq.onnx.len()) < 2048, "{} vs {}", near.onnx.len(), gptq.onnx.len());
    let codes: Vec<i64> = gptq
        .graph
        .initializers
        .values()
        .filter(|t| matches!(t.data, Data::I4(_)))
        .flat_map(|t| t.to_i64_vec().unwrap())
        .collect();
    assert!(codes.iter().all(|c| (-8..=7).contains(c)));
    // On the photo neither saw, the outputs move towards FP32's.
    let x = vec![(INPUT.to_string(), photo("person"))];
    let run = |g: &Graph| Plan::new(g, &Registry::new(), &[]).unwrap().run(&x).unwrap();
    let want = run(&fp32);
    let (a, b) = (sqnr(&want, &run(&near.graph)), sqnr(&want, &run(&gptq.graph)));
    println!("held-out person photo, W4A8: nearest {a:.2} dB, GPTQ {b:.2} dB");
    assert!(b > a + 1.5, "GPTQ {b:.2} dB vs nearest {a:.2} dB");
    // Weight SQNR (the weights' own error) is a little worse: GPTQ trades it for the outputs.
    let mean = |q: &Quantized| q.report.layers.iter().map(|l| l.weight_sqnr_db).sum::<f64>() / 88.0;
    assert!(mean(&gptq) < mean(&near), "{} vs {}", mean(&gptq), mean(&near));
}

#[test]
fn per_layer_weight_bits_mix_int4_and_int8_in_one_file() {
    let first = "FeatureExtractor/MobilenetV2/Conv/Conv2D";
    let project = "FeatureExtractor/MobilenetV2/expanded_conv/project/Conv2D";
    let w4 = PtqOptions { weight: PtqOptions::weight_bits(4).unwrap(), ..PtqOptions::default() };
    let opts = PtqOptions { layer_weight_bits: vec![(first.into(), 8), (project.into(), 6)], ..w4.clone() };
    assert_eq!(opts.weight_of(first).bits, 8);
    assert_eq!(opts.weight_of("anything else").bits, 4);
    let (_, q) = person(&opts);
    let r = &q.report;
    let bits_of = |n: &str| r.layers.iter().find(|l| l.node == n).unwrap().weight_bits;
    assert_eq!((bits_of(first), bits_of(project), r.weight_bits, r.weight_storage), (8, 6, 4, "int4"));
    assert_eq!(r.layers.iter().filter(|l| l.weight_bits == 4).count(), 86);
    assert!(r.notes.iter().any(|n| n.contains("weight bits per layer (4 elsewhere)")), "{:?}", r.notes);
    // In the file: 86 int4 weights, and two int8 ones, on the 8-bit and the 6-bit grid.
    let g = load_onnx(&q.onnx).unwrap();
    assert_eq!(g.opset, 21);
    assert_eq!(g.initializers.values().filter(|t| matches!(t.data, Data::I4(_))).count(), 86);
    let i8s: Vec<&Tensor> = g
        .initializers
        .iter()
        .filter(|(n, t)| matches!(t.data, Data::I8(_)) && n.ends_with("_quantized"))
        .map(|(_, t)| t)
        .collect();
    let mut widths: Vec<Option<u8>> = i8s.iter().map(|t| narrow_bits(t, None)).collect();
    widths.sort();
    assert_eq!(widths, vec![None, Some(6)], "one 8-bit layer, one on the 6-bit grid");
    // A file between the all-4-bit and the all-8-bit ones.
    let (_, all4) = person(&w4);
    assert!(
        q.onnx.len() > all4.onnx.len() && q.onnx.len() < all4.onnx.len() + 40_000,
        "{} vs {}",
        q.onnx.len(),
        all4.onnx.len()
    );

    // QAT trains each layer at its own width and writes it back so.
    let mut qat = Qat::new(&g, &[]).unwrap();
    let mut own: Vec<Option<u8>> = qat
        .roles()
        .iter()
        .filter_map(|r| match r {
            Role::Weight { q, bits, .. } if matches!(g.initializers[q].data, Data::I8(_)) => Some(*bits),
            _ => None,
        })
        .collect();
    own.sort();
    assert_eq!(own, vec![None, Some(6)]);
    let x = vec![(INPUT.to_string(), photo("person"))];
    let teach = Plan::new(&load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap(), &Registry::new(), &[])
        .unwrap()
        .run(&x)
        .unwrap();
    let mut adam = qplay_core::train::Adam::new(1e-3);
    qat.step(&mut adam, &x, &teach).unwrap();
    let out = qat.export().unwrap();
    assert_eq!(out.initializers.values().filter(|t| matches!(t.data, Data::I4(_))).count(), 86);
    for r in qat.roles() {
        if let Role::Weight { q, bits: Some(6), .. } = r {
            assert!(
                out.initializers[q].to_i64_vec().unwrap().iter().all(|c| (-32..=31).contains(c)),
                "`{q}` left 6 bits"
            );
        }
    }

    // Bad per-layer widths: a name that is no layer, a width out of range.
    let g0 = load_onnx(&repo("www/models/person_ssdlite.onnx")).unwrap();
    for (layer, bits, want) in [("no_such_layer", 8, "not a quantizable layer"), (first, 9, "2 to 8 bits; got 9")] {
        let bad = PtqOptions { layer_weight_bits: vec![(layer.into(), bits)], ..w4.clone() };
        let e = quantize(&g0, INPUT, &[photo("horses")], &bad).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains(layer), "{e}");
    }
}
