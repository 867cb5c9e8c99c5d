//! The TFLite loader against LiteRT: float `.tflite` fixtures (tests/fixtures/tflite, made by
//! tests/fixtures/make_tflite_fixtures.py) planned and run on the CPU reference kernels equal
//! LiteRT's reference-kernel outputs within 1e-4 of each output's range; bad files give clear
//! errors and never panic.

use qplay_core::model::{
    load_model, load_tflite, load_tflite_with_limits, npy::read_npy, Limits, ModelError, OpKind, Plan, Tensor,
};
use qplay_core::ops::Registry;
use std::path::PathBuf;

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tflite").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runs the fixture on its committed input; returns the largest error relative to each
/// output's range, over the outputs.
fn max_error(name: &str) -> f32 {
    let g = load_tflite(&fixture(&format!("{name}.tflite"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    let plan = Plan::new(&g, &Registry::new(), &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
    let x = read_npy(&fixture(&format!("{name}/input.npy"))).unwrap();
    let outs = plan.run(&[(g.inputs[0].name.clone(), x)]).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(outs.len(), g.outputs.len());
    let mut worst = 0.0f32;
    for (k, got) in outs.iter().enumerate() {
        let want: Tensor = read_npy(&fixture(&format!("{name}/output_{k}.npy"))).unwrap();
        assert_eq!(got.shape, want.shape, "{name} output {k}");
        assert_eq!(got.dtype(), want.dtype(), "{name} output {k}");
        if got.as_f32().is_err() {
            // Indices, shapes and casts: every value equal.
            let (got, want) = (got.to_i64_vec().unwrap(), want.to_i64_vec().unwrap());
            let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            eprintln!("{name} output {k}: {differ} of {} integer values differ from LiteRT", got.len());
            assert_eq!(differ, 0, "{name} output {k}: {got:?} vs {want:?}");
            continue;
        }
        let (got, want) = (got.as_f32().unwrap(), want.as_f32().unwrap());
        let (lo, hi) = want.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let range = (hi - lo).max(f32::MIN_POSITIVE);
        let err = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max) / range;
        eprintln!("{name} output {k}: max |qplay − LiteRT| = {:.3e} of the range {range:.3}", err);
        worst = worst.max(err);
    }
    worst
}

#[test]
fn float_cnn_matches_litert() {
    assert!(max_error("cnn") <= 1e-4);
}

#[test]
fn float_detector_like_net_matches_litert() {
    assert!(max_error("det") <= 1e-4);
}

#[test]
fn float16_weights_match_litert() {
    assert!(max_error("cnn_f16") <= 1e-4);
}

/// Dynamic-range weights are dequantized at load; LiteRT's hybrid kernels also quantize the
/// input activations to int8 on the fly, which the float graph does not: the outputs differ by
/// that rounding, not by the loader.
#[test]
fn dynamic_range_weights_are_dequantized() {
    let err = max_error("hybrid");
    assert!(err <= 5e-3, "{err}");
}

#[test]
fn layout_sensitive_ops_after_nchw_convolutions_match_litert() {
    assert!(max_error("shapes") <= 1e-4);
}

#[test]
fn element_wise_and_reduction_ops_match_litert() {
    assert!(max_error("misc") <= 1e-4);
}

/// PRELU, TRANSPOSE_CONV (SAME with bias, VALID, SAME to an odd size), DEPTH_TO_SPACE,
/// SPACE_TO_DEPTH, MIRROR_PAD (REFLECT, SYMMETRIC), SPLIT_V, SLICE, L2_NORMALIZATION, a layer
/// norm (SQUARED_DIFFERENCE, RSQRT), GELU and BATCH_MATMUL.
#[test]
fn segmentation_and_face_layers_match_litert() {
    assert!(max_error("layers") <= 1e-4);
}

/// LOG, SIN, COS, FLOOR, CEIL, ROUND, SQUARE, SIGN, POW, FLOOR_DIV, FLOOR_MOD, RSQRT,
/// SQUARED_DIFFERENCE, LOG_SOFTMAX.
#[test]
fn math_ops_match_litert() {
    assert!(max_error("math") <= 1e-4);
}

/// Post-processing inside the graph: ARG_MAX / ARG_MIN (int64 and int32), comparisons and
/// logical ops, SELECT_V2, TOPK_V2, GATHER, GATHER_ND, TILE, BROADCAST_TO, CAST — indices equal.
#[test]
fn in_graph_post_processing_ops_match_litert() {
    assert!(max_error("post") <= 1e-4);
}

#[test]
fn the_graph_keeps_the_nhwc_interface_and_drops_unused_transposes() {
    let g = load_model(&fixture("det.tflite")).unwrap();
    assert_eq!(g.inputs.len(), 1);
    assert_eq!(g.inputs[0].shape, [Some(1), Some(64), Some(64), Some(3)]);
    // In the file's order (LiteRT's): scores, then boxes.
    assert_eq!(
        g.outputs.iter().map(|o| o.shape.clone()).collect::<Vec<_>>(),
        [vec![Some(1), Some(640), Some(3)], vec![Some(1), Some(640), Some(4)]]
    );
    let transposes = g.nodes.iter().filter(|n| n.is(OpKind::Transpose)).count();
    let convs = g.nodes.iter().filter(|n| n.is(OpKind::Conv)).count();
    // One into NCHW at the input, one back before each head's RESHAPE.
    assert!(transposes <= 6, "{transposes} transposes for {convs} convolutions");
    eprintln!("det: {} nodes, {transposes} transposes, {convs} convolutions", g.nodes.len());
}

#[test]
fn load_model_dispatches_on_the_file_identifier() {
    assert!(qplay_core::model::is_tflite(&fixture("cnn.tflite")));
    assert!(load_model(&fixture("cnn.tflite")).is_ok());
    // Not TFLite, and not any other format its first bytes show: the ONNX loader's error.
    let binary: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(151)).collect();
    assert!(matches!(load_model(&binary), Err(ModelError::NotOnnx(_))));
    // A text file is named as one.
    let e = load_model(b"not a model at all, just a line of text").unwrap_err();
    assert!(matches!(e, ModelError::NotAModel(_)) && e.to_string().contains("text file"), "{e}");
}

#[test]
fn unsupported_ops_are_listed_all_at_once() {
    let e = load_tflite(&fixture("unsupported.tflite")).unwrap_err();
    let ModelError::UnsupportedTfliteOps(ops) = &e else { panic!("{e}") };
    let names: Vec<&str> = ops.iter().map(|(op, _)| op.as_str()).collect();
    assert!(names.contains(&"CUMSUM") && names.contains(&"REVERSE_V2"), "{e}");
    assert_eq!(e.code(), "unsupported-op");
}

#[test]
fn several_subgraphs_are_refused_clearly() {
    let e = load_tflite(&fixture("cond.tflite")).unwrap_err();
    assert!(e.to_string().contains("3 subgraphs"), "{e}");
}

/// Full-integer int8 models load (their numbers: `tflite_int8.rs`), with a float interface.
#[test]
fn full_integer_int8_models_load_with_float_inputs_and_outputs() {
    let g = load_tflite(&fixture("cnn_int8.tflite")).unwrap();
    assert_eq!((g.inputs[0].elem_type, g.outputs[0].elem_type), (1, 1));
    assert_eq!(g.inputs[0].shape, [Some(1), Some(32), Some(32), Some(3)]);
}

#[test]
fn truncated_files_give_errors() {
    let bytes = fixture("det.tflite");
    for n in (0..bytes.len()).step_by(97).chain([8, 12, 16, 100, bytes.len() - 1]) {
        let r = load_tflite(&bytes[..n]);
        assert!(r.is_err(), "{n} bytes loaded");
    }
    let e = load_tflite(&bytes[..bytes.len() / 2]).unwrap_err();
    assert_eq!(e.code(), "bad-model", "{e}");
}

/// A tiny xorshift, so that the test needs no crate.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed.max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

#[test]
fn random_bytes_and_corrupt_offsets_give_errors_not_panics() {
    for seed in 1..200u64 {
        let mut b = noise(seed, 64 + (seed as usize * 37) % 2000);
        b[4..8].copy_from_slice(b"TFL3");
        assert!(load_tflite(&b).is_err());
    }
    // Flip bytes of real models: offsets, lengths, shapes, op codes, quantization parameters
    // now hold anything (a 300,000-mutation run of this found a zero point that overflowed).
    for name in
        ["cnn", "det", "shapes", "hybrid", "cnn_f16", "cnn_int8", "unsupported", "cond", "layers", "math", "post"]
    {
        let good = fixture(&format!("{name}.tflite"));
        for seed in 1..500u64 {
            let mut b = good.clone();
            for (k, r) in noise(seed, 8).chunks(2).enumerate() {
                let at = (seed as usize * 7919 + k * 104_729 + r[0] as usize * 31) % b.len();
                b[at] = r[1];
            }
            let _ = load_model(&b).and_then(|g| Plan::new(&g, &Registry::new(), &[]).map(|_| ()));
        }
    }
}

#[test]
fn offsets_pointing_outside_the_file_are_errors() {
    let mut b = fixture("cnn.tflite");
    // The root table offset (bytes 0..4) past the end.
    b[0..4].copy_from_slice(&(u32::MAX - 3).to_le_bytes());
    let e = load_tflite(&b).unwrap_err();
    assert_eq!(e.code(), "bad-model", "{e}");
}

#[test]
fn the_onnx_loaders_limits_apply() {
    let bytes = fixture("det.tflite");
    let small = |l: Limits| load_tflite_with_limits(&bytes, &l).unwrap_err();
    let e = small(Limits { max_tensor_elements: 100, ..Limits::default() });
    assert!(matches!(e, ModelError::Limit(_)) && e.to_string().contains("more than the limit"), "{e}");
    let e = small(Limits { max_nodes: 3, ..Limits::default() });
    assert!(matches!(e, ModelError::Limit(_)) && e.to_string().contains("operators"), "{e}");
    let e = small(Limits { max_file_bytes: 1000, ..Limits::default() });
    assert!(matches!(e, ModelError::Limit(_)), "{e}");
}

#[test]
fn a_tensor_claiming_more_data_than_its_buffer_is_an_error() {
    // Grow the first dimension of every [8]-shaped int32 shape vector (the tensors' `shape`
    // fields, not their data) found by its length prefix 4 and value: the weights no longer fit.
    let good = fixture("cnn.tflite");
    let mut hits = 0;
    for i in (0..good.len() - 20).step_by(4) {
        // A shape vector [8, 3, 3, 3] (the first convolution's OHWI weights): length 4, then dims.
        let words: Vec<u32> =
            (0..5).map(|k| u32::from_le_bytes(good[i + 4 * k..i + 4 * k + 4].try_into().unwrap())).collect();
        if words == [4, 8, 3, 3, 3] {
            let mut b = good.clone();
            b[i + 4..i + 8].copy_from_slice(&1_000_000u32.to_le_bytes());
            let e = load_tflite(&b).unwrap_err();
            assert!(e.to_string().contains("buffer holds"), "{e}");
            hits += 1;
        }
    }
    assert!(hits >= 1, "the weights' shape vector was not found");
}
