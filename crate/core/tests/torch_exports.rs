//! Real PyTorch exports of the layers detectors use beyond Conv/ReLU — PRelu (MTCNN,
//! RetinaFace), GroupNorm as InstanceNormalization (FCOS, ATSS), Mish (YOLOv4, the dynamo
//! exporter), PixelShuffle as DepthToSpace with Selu and Celu, torchvision's Faster R-CNN
//! (RoiAlign, ScatterElements) and Mask R-CNN (its masks pasted back in a Loop) — and a real
//! YOLOv8 export
//! quantized by onnxruntime's `quantize_dynamic` (DynamicQuantizeLinear + ConvInteger) and a
//! classifier quantized by its `quantize_static` (QLinearAveragePool, QGemm), each
//! against onnxruntime's outputs on a photo (`tests/fixtures/make_torch_ops_fixtures.py`); and
//! those ops' errors on bad nodes.

use qplay_core::model::{load_onnx, npy::read_npy, Attr, Attrs, DType, Data, Node, Plan, Tensor};
use qplay_core::ops::{BuildCtx, Fact, Op, Registry};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/torch_ops")
}

fn npy(path: PathBuf) -> Tensor {
    read_npy(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Runs `name.onnx` on its input; the largest difference from onnxruntime's outputs, as a
/// fraction of each output's range (and checks the shapes).
fn worst_difference(name: &str) -> f64 {
    let dir = fixtures();
    let g = load_onnx(&std::fs::read(dir.join(format!("{name}.onnx"))).unwrap()).unwrap();
    let x = npy(dir.join(name).join("input.npy"));
    let input = g.inputs[0].name.clone();
    let plan =
        Plan::new(&g, &Registry::new(), &[(input.clone(), x.shape.clone())]).unwrap_or_else(|e| panic!("{name}: {e}"));
    let ys = plan.run(&[(input, x)]).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut worst = 0f64;
    for (k, y) in ys.iter().enumerate() {
        let want = npy(dir.join(name).join(format!("ort_{k}.npy")));
        assert_eq!(y.shape, want.shape, "{name} output {k}");
        if y.dtype() != DType::F32 {
            // Class ids: exactly.
            assert_eq!(y.to_i64_vec().unwrap(), want.to_i64_vec().unwrap(), "{name} output {k}");
            continue;
        }
        let (a, b) = (y.as_f32().unwrap(), want.as_f32().unwrap());
        let range = b.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) - b.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        let d = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        println!("{name} output {k}: max |qplay − onnxruntime| {d:.3e} of range {range:.3}");
        worst = worst.max(d as f64 / range.max(1e-6) as f64);
    }
    assert!(!ys.is_empty());
    worst
}

#[test]
fn pytorch_exports_equal_onnxruntime() {
    for name in [
        "prelu_face",
        "gn_head",
        "mish_csp",
        "pixel_shuffle",
        "faster_rcnn",
        "mask_rcnn",
        "keypoint_rcnn",
        "contrastive_head",
        "vit_detector",
        "hf_yolos",
        "hf_detr",
        "antialias_resize",
    ] {
        let w = worst_difference(name);
        assert!(w <= 1e-4, "{name}: differs from onnxruntime by {w:.2e} of the output range");
    }
}

/// Every convolution of the YOLOv8 export quantizes its input at run time; the float ops
/// between them round as onnxruntime's do, so the codes agree and the boxes and scores equal
/// onnxruntime's to float rounding (a code off by one would move a box coordinate by whole
/// pixels).
#[test]
fn onnxruntime_dynamic_quantization_of_yolov8_equals_onnxruntime() {
    let w = worst_difference("dynamic_yolov8");
    assert!(w <= 1e-5, "differs from onnxruntime by {w:.2e} of the output range");
}

/// onnxruntime's QOperator export of a classifier with average pools and a linear layer:
/// QLinearConv, QLinearAveragePool (padded and not) and QGemm equal onnxruntime in every value.
#[test]
fn onnxruntime_qoperator_avgpool_and_gemm_equal_onnxruntime() {
    assert_eq!(worst_difference("qop_avgpool_gemm"), 0.0);
}

fn build(op_type: &str, n_inputs: usize, n_outputs: usize, attrs: Vec<(&str, Attr)>) -> Result<Box<dyn Op>, String> {
    let node = Node {
        name: "n".into(),
        op_type: op_type.into(),
        inputs: (0..n_inputs).map(|i| format!("i{i}")).collect(),
        outputs: (0..n_outputs).map(|i| format!("y{i}")).collect(),
        attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
        fused: Default::default(),
    };
    Registry::new().get(op_type).unwrap()(&node, &BuildCtx { opset: 17 }).map_err(|e| e.to_string())
}

fn infer_error(op: &dyn Op, facts: &[Fact]) -> String {
    let refs: Vec<Option<&Fact>> = facts.iter().map(Some).collect();
    op.infer(&refs).map(|f| format!("inferred {f:?}")).unwrap_or_else(|e| e.to_string())
}

#[test]
fn bad_nodes_of_the_new_ops_are_clear_errors() {
    let f = |shape: &[usize]| Fact::new(DType::F32, shape.to_vec());
    // A slope that X cannot take (PRelu broadcasts one way only).
    let prelu = build("PRelu", 2, 1, vec![]).unwrap();
    let e = infer_error(&*prelu, &[f(&[1, 16, 8, 8]), f(&[2, 16, 1, 1])]);
    assert!(e.contains("must broadcast to input 0's shape"), "{e}");
    let e = infer_error(&*prelu, &[f(&[1, 16, 8, 8]), f(&[5])]);
    assert!(e.contains("broadcast"), "{e}");
    // Channels that do not make whole blocks; a 3-D input; a bad mode and block size.
    let d2s = build("DepthToSpace", 1, 1, vec![("blocksize", Attr::Int(2))]).unwrap();
    let e = infer_error(&*d2s, &[f(&[1, 6, 4, 4])]);
    assert!(e.contains("6 channels do not divide into blocks of 2×2"), "{e}");
    let e = infer_error(&*d2s, &[f(&[6, 4, 4])]);
    assert!(e.contains("4-D NCHW"), "{e}");
    let e = build("DepthToSpace", 1, 1, vec![("blocksize", Attr::Int(2)), ("mode", Attr::String("XYZ".into()))]);
    assert!(e.unwrap_err().contains("mode `XYZ` is not DCR or CRD"));
    assert!(build("SpaceToDepth", 1, 1, vec![("blocksize", Attr::Int(0))]).unwrap_err().contains("blocksize 0"));
    assert!(build("SpaceToDepth", 1, 1, vec![]).unwrap_err().contains("blocksize attribute is missing"));
    let s2d = build("SpaceToDepth", 1, 1, vec![("blocksize", Attr::Int(4))]).unwrap();
    assert!(infer_error(&*s2d, &[f(&[1, 3, 8, 6])]).contains("multiples of 4"));
    // InstanceNormalization parameters that are not one per channel.
    let inorm = build("InstanceNormalization", 3, 1, vec![]).unwrap();
    let e = infer_error(&*inorm, &[f(&[1, 8, 4, 4]), f(&[4]), f(&[8])]);
    assert!(e.contains("scale must have shape [8]"), "{e}");
    // Dropout in training mode, as a constant or at run time.
    let drop = build("Dropout", 3, 1, vec![]).unwrap();
    let yes = Fact::constant(Tensor { shape: vec![], data: Data::Bool(vec![true]) });
    let e = infer_error(&*drop, &[f(&[2, 3]), Fact::constant(Tensor::scalar_f32(0.5)), yes]);
    assert!(e.contains("training mode") && e.contains("model.eval()"), "{e}");
    // DynamicQuantizeLinear on an integer tensor, and Celu's alpha of 0.
    let dq = build("DynamicQuantizeLinear", 1, 3, vec![]).unwrap();
    assert!(infer_error(&*dq, &[Fact::new(DType::I64, vec![3])]).contains("float32"));
    assert!(build("Celu", 1, 1, vec![("alpha", Attr::Float(0.0))]).unwrap_err().contains("alpha is 0"));
    // RoiAlign: regions that are not [R, 4]; a batch index past the images; a huge region with an
    // adaptive sampling ratio (bounded, not hours of work).
    let roi = build("RoiAlign", 3, 1, vec![("output_height", Attr::Int(7)), ("output_width", Attr::Int(7))]).unwrap();
    let idx = |n: usize| Fact::new(DType::I64, vec![n]);
    assert!(infer_error(&*roi, &[f(&[1, 8, 16, 16]), f(&[3, 5]), idx(3)]).contains("rois must be [num_rois, 4]"));
    assert!(infer_error(&*roi, &[f(&[1, 8, 16, 16]), f(&[3, 4]), idx(2)]).contains("batch_indices must be [3]"));
    let x = Tensor { shape: vec![1, 2, 4, 4], data: Data::F32(vec![1.0; 32]) };
    let run = |rois: Vec<f32>, b: i64| {
        let r = Tensor { shape: vec![1, 4], data: Data::F32(rois) };
        let i = Tensor { shape: vec![1], data: Data::I64(vec![b]) };
        roi.eval(&[Some(&x), Some(&r), Some(&i)]).map(|_| String::new()).unwrap_or_else(|e| e.to_string())
    };
    assert_eq!(run(vec![0.0, 0.0, 2.0, 2.0], 0), "");
    assert!(run(vec![0.0, 0.0, 2.0, 2.0], 1).contains("batch_indices[0] = 1 is not an image of X"));
    assert!(run(vec![0.0, 0.0, 1e9, 1e9], 0).contains("give sampling_ratio"));
    assert!(build("RoiAlign", 3, 1, vec![("mode", Attr::String("sum".into()))])
        .unwrap_err()
        .contains("not avg or max"));
    // ScatterElements: an index past the axis; indices and updates of different shapes.
    let sc = build("ScatterElements", 3, 1, vec![("axis", Attr::Int(1))]).unwrap();
    let data = Tensor { shape: vec![2, 3], data: Data::F32(vec![0.0; 6]) };
    let ix = Tensor { shape: vec![1, 1], data: Data::I64(vec![3]) };
    let up = Tensor { shape: vec![1, 1], data: Data::F32(vec![5.0]) };
    let e = sc.eval(&[Some(&data), Some(&ix), Some(&up)]).unwrap_err().to_string();
    assert!(e.contains("index 3 is out of range for axis 1 of size 3"), "{e}");
    assert!(infer_error(&*sc, &[f(&[2, 3]), Fact::new(DType::I64, vec![1, 2]), f(&[1, 1])]).contains("one shape"));
    // QGemm: too few inputs; inner dimensions that differ; a float A.
    assert!(build("com.microsoft::QGemm", 4, 1, vec![]).unwrap_err().contains("takes 6 to 9 inputs"));
    let qg = build("com.microsoft::QGemm", 6, 1, vec![("transB", Attr::Int(1))]).unwrap();
    let u8f = |shape: &[usize]| Fact::new(DType::U8, shape.to_vec());
    let e = infer_error(&*qg, &[u8f(&[2, 5]), f(&[]), u8f(&[]), u8f(&[3, 4]), f(&[]), u8f(&[])]);
    assert!(e.contains("inner dimensions 5 and 4 differ"), "{e}");
    assert!(infer_error(&*qg, &[f(&[2, 5]), f(&[]), u8f(&[]), u8f(&[3, 5]), f(&[]), u8f(&[])]).contains("A"));
    // QLinearAveragePool: dilations; four spatial axes.
    let e = build(
        "com.microsoft::QLinearAveragePool",
        5,
        1,
        vec![("kernel_shape", Attr::Ints(vec![2, 2])), ("dilations", Attr::Ints(vec![2, 2]))],
    );
    assert!(e.unwrap_err().contains("no dilations"));
    let ap =
        build("com.microsoft::QLinearAveragePool", 5, 1, vec![("kernel_shape", Attr::Ints(vec![2, 2, 2, 2]))]).unwrap();
    assert!(infer_error(&*ap, &[u8f(&[1, 2, 4, 4, 4, 4]), f(&[]), u8f(&[]), f(&[]), u8f(&[])])
        .contains("1 to 3 spatial axes"));
}

/// torchvision's Faster R-CNN, Mask R-CNN and Keypoint R-CNN decode with zero configuration,
/// as its SSDLite does: boxes in input pixels, labels and scores the model selected itself
/// (Mask R-CNN's masks, pasted back in a Loop, and Keypoint R-CNN's keypoints, read from
/// bicubically upsampled heatmaps, named and not drawn).
#[test]
fn torchvision_rcnn_exports_are_read_as_detections_the_model_selected() {
    use qplay_core::detect::{BoxFormat, Decoder, Detector};
    for (file, extra) in [
        ("faster_rcnn.onnx", None),
        ("mask_rcnn.onnx", Some("instance mask")),
        ("keypoint_rcnn.onnx", Some("Keypoint R-CNN")),
    ] {
        let g = load_onnx(&std::fs::read(fixtures().join(file)).unwrap()).unwrap();
        let names: Vec<String> = g.outputs.iter().map(|o| o.name.clone()).collect();
        let det = Detector::from_graph(g, None).unwrap();
        let Decoder::Detections(d) = &det.profile().decoder else { panic!("{file}: {:?}", det.profile().decoder) };
        assert_eq!(
            (&d.boxes_output, &d.scores_output, d.classes_output.as_ref(), d.count_output.as_ref()),
            (&names[0], &names[2], Some(&names[1]), None),
            "{file}"
        );
        assert_eq!((d.box_format, d.normalized), (BoxFormat::Xyxy, false), "{file}");
        assert!(det.assumed().iter().any(|a| a.contains("no batch axis")), "{file}: {:?}", det.assumed());
        for what in ["instance mask", "Keypoint R-CNN"] {
            let said = det.assumed().iter().any(|a| a.contains(what));
            assert_eq!(said, extra == Some(what), "{file}: {:?}", det.assumed());
        }
    }
}

/// Keypoint R-CNN's keypoints `[N, K, 3]` (x, y, visibility, in input pixels) come with each
/// detection: decoding onnxruntime's own outputs of the fixture gives every kept box its five
/// keypoints, at the values onnxruntime computed (the image is the input, so no scaling).
#[test]
fn keypoint_rcnn_keypoints_come_with_their_boxes() {
    use qplay_core::detect::preprocess::Transform;
    use qplay_core::detect::{Decoder, Detector};
    let dir = fixtures();
    let g = load_onnx(&std::fs::read(dir.join("keypoint_rcnn.onnx")).unwrap()).unwrap();
    let names: Vec<String> = g.outputs.iter().map(|o| o.name.clone()).collect();
    let mut det = Detector::from_graph(g, None).unwrap();
    let Decoder::Detections(d) = &det.profile().decoder else { panic!("{:?}", det.profile().decoder) };
    assert_eq!(d.keypoints_output.as_ref(), Some(&names[3]));
    // The fixture's random heads score every box near 0.001: keep them all.
    det.set_thresholds(1e-9, 0.5);
    let outs: Vec<(String, Tensor)> = names
        .iter()
        .enumerate()
        .map(|(k, n)| (n.clone(), npy(dir.join("keypoint_rcnn").join(format!("ort_{k}.npy")))))
        .collect();
    let transform = Transform::new(det.profile(), 160, 160).unwrap();
    let dets = det.decode(&outs, &transform).unwrap();
    let kp = outs[3].1.as_f32().unwrap();
    assert_eq!(dets.len(), outs[0].1.shape[0]);
    for (i, d) in dets.iter().enumerate() {
        assert_eq!((d.keypoints.len(), d.keypoint_scores.len()), (5, 5));
        for (k, p) in d.keypoints.iter().enumerate() {
            let want = &kp[(i * 5 + k) * 3..][..3];
            assert!((p[0] - want[0]).abs() < 1e-3 && (p[1] - want[1]).abs() < 1e-3, "{i}/{k}: {p:?} vs {want:?}");
            assert_eq!(d.keypoint_scores[k], want[2]);
        }
    }
    // A keypoints output of the wrong shape is a clear error.
    let mut bad = outs.clone();
    bad[3].1 = Tensor::f32(vec![outs[0].1.shape[0], 5, 4], vec![0.0; outs[0].1.shape[0] * 20]).unwrap();
    let e = det.decode(&bad, &transform).unwrap_err().to_string();
    assert!(e.contains("K keypoints"), "{e}");
}

/// Hugging Face's YOLOS (transformers' own model class, exported at opset 23 with Attention)
/// decodes with zero configuration as a DETR-style set prediction — `logits` through a softmax
/// whose last class is "no object", `pred_boxes` as centres and sizes in fractions of the input,
/// COCO's ids as labels — to the boxes, scores and labels of the image processor's own
/// `post_process_object_detection`. A custom transformer whose outputs come out of a sigmoid
/// and a softmax is read the same way, its scores as they are.
#[test]
fn detr_style_set_predictions_decode_as_the_image_processor_does() {
    use qplay_core::detect::preprocess::Transform;
    use qplay_core::detect::{BoxFormat, Decoder, Detector, End2End, ScoreFn};
    let dir = fixtures();
    let g = load_onnx(&std::fs::read(dir.join("hf_yolos.onnx")).unwrap()).unwrap();
    let mut det = Detector::from_graph(g, None).unwrap();
    let Decoder::End2end(d) = &det.profile().decoder else { panic!("{:?}", det.profile().decoder) };
    assert_eq!((d.output.as_str(), d.scores_output.as_deref()), ("pred_boxes", Some("logits")));
    assert_eq!(
        (d.score_fn, d.no_object_last, d.box_format, d.normalized),
        (Some(ScoreFn::Softmax), true, BoxFormat::Cxcywh, true)
    );
    assert_eq!((det.profile().labels.len(), det.profile().labels[1].as_str()), (91, "person"));
    assert!(!det.profile().decoder.needs_nms());
    // The sigmoid reading of the same logits is offered beside it.
    let alt: Vec<_> = det.alternatives().iter().map(|a| &a.profile.decoder).collect();
    assert!(
        matches!(alt[..], [Decoder::End2end(End2End { score_fn: Some(ScoreFn::Sigmoid), no_object_last: false, .. })]),
        "{alt:?}"
    );
    det.set_thresholds(0.0, 0.5);
    let outs: Vec<(String, Tensor)> = ["logits", "pred_boxes"]
        .iter()
        .enumerate()
        .map(|(k, n)| (n.to_string(), npy(dir.join("hf_yolos").join(format!("ort_{k}.npy")))))
        .collect();
    let transform = Transform::new(det.profile(), 96, 96).unwrap();
    let dets = det.decode(&outs, &transform).unwrap();
    let want = npy(dir.join("hf_yolos/torch_0.npy"));
    // Both in order of score (qplay sorts its detections; the processor keeps the queries').
    let mut want: Vec<&[f32]> = want.as_f32().unwrap().chunks_exact(6).collect();
    want.sort_by(|a, b| b[4].total_cmp(&a[4]));
    let mut dets = dets;
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    assert_eq!(dets.len(), want.len());
    for (d, w) in dets.iter().zip(want) {
        // qplay clips boxes to the image; the processor leaves them as they are.
        for (a, b) in d.bbox.iter().zip(&w[..4]) {
            assert!((a - b.clamp(0.0, 96.0)).abs() < 1e-3, "{:?} vs {w:?}", d.bbox);
        }
        assert!((d.score - w[4]).abs() < 1e-5 && d.class as f32 == w[5], "{d:?} vs {w:?}");
    }
    // A score output of another length than the boxes' is a clear error.
    let mut bad = outs.clone();
    bad[0].1 = Tensor::f32(vec![1, 9, 92], vec![0.0; 9 * 92]).unwrap();
    let e = det.decode(&bad, &transform).unwrap_err().to_string();
    assert!(e.contains("logits") && e.contains("[1, 10, C]"), "{e}");

    // transformers' DETR fine-tuned on two classes: three logits, "no object" among them. Any
    // count but COCO's is read as sigmoids first (Deformable DETR, RT-DETR, D-FINE), DETR's
    // softmax with "no object" offered as the other reading.
    let g = load_onnx(&std::fs::read(dir.join("hf_detr.onnx")).unwrap()).unwrap();
    let det = Detector::from_graph(g, None).unwrap();
    let Decoder::End2end(d) = &det.profile().decoder else { panic!("{:?}", det.profile().decoder) };
    assert_eq!((d.score_fn, d.no_object_last), (Some(ScoreFn::Sigmoid), false));
    let alt: Vec<_> = det.alternatives().iter().map(|a| &a.profile.decoder).collect();
    assert!(
        matches!(alt[..], [Decoder::End2end(End2End { score_fn: Some(ScoreFn::Softmax), no_object_last: true, .. })]),
        "{alt:?}"
    );
    assert!(det.alternatives()[0].reading.contains("no object"));

    let g = load_onnx(&std::fs::read(dir.join("vit_detector.onnx")).unwrap()).unwrap();
    let det = Detector::from_graph(g, None).unwrap();
    let Decoder::End2end(d) = &det.profile().decoder else { panic!("{:?}", det.profile().decoder) };
    assert_eq!((d.scores_output.is_some(), d.score_fn, d.no_object_last), (true, None, false));
    assert!(det.alternatives().is_empty(), "probabilities already: one reading");
    assert!(det.assumed().iter().any(|a| a.contains("DETR-style set prediction")), "{:?}", det.assumed());
}

/// A quantized export takes its inputs as the user's file did: torchvision's image without a
/// batch axis (qplay adds one when loading, squeezed inside), TensorFlow's uint8 pixels (qplay
/// feeds float pixels, rounded and cast inside). The export once kept qplay's `[1, 3, H, W]`
/// float input, so onnxruntime refused the user's own input.
#[test]
fn quantized_exports_keep_the_files_input_interface() {
    use qplay_core::model::float_image_inputs;
    use qplay_core::ptq::{quantize, PtqOptions};
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    for (file, want_shape, want_type) in [
        ("torch_ops/faster_rcnn.onnx", vec![Some(3), Some(320), Some(320)], 1),
        ("tf_detections/ssd_tf.onnx", vec![Some(1), Some(256), Some(256), Some(3)], 2),
    ] {
        let original = load_onnx(&std::fs::read(repo.join(file)).unwrap()).unwrap();
        assert_eq!((&original.inputs[0].shape, original.inputs[0].elem_type), (&want_shape, want_type), "{file}");
        let mut g = original.clone();
        float_image_inputs(&mut g);
        let name = g.inputs[0].name.clone();
        let shape: Vec<usize> = g.inputs[0].shape.iter().map(|d| d.unwrap()).collect();
        let n: usize = shape.iter().product();
        let x = Tensor { shape, data: Data::F32((0..n).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect()) };
        let q = quantize(&g, &name, &[x.clone(), x.clone(), x], &PtqOptions::default())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let exported = load_onnx(&q.onnx).unwrap();
        assert_eq!(
            (&exported.inputs[0].name, &exported.inputs[0].shape, exported.inputs[0].elem_type),
            (&name, &want_shape, want_type),
            "{file}: the quantized file's input"
        );
        assert!(!exported.nodes.iter().any(|n| n.name.contains("__qplay_")), "{file}: qplay's input helpers are gone");
    }
}
