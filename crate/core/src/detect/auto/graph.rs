//! What the graph says beyond its declared outputs, for recognising a detector: output shapes
//! the file leaves unknown (by planning), the outputs a raw head ends in, those that end in a
//! sigmoid, and a TFLite file's uint8 image input (whose codes say the pixel scaling).

use crate::detect::aux;
use crate::detect::meta::{ModelMeta, PostProcessOutputs};
use crate::detect::profile::AuxInput;
use crate::model::OpKind;
use crate::model::{Graph, ValueInfo};

/// Output shapes the file leaves unknown (TF.js and tf2onnx conversions often do), filled in by
/// planning the graph for its image input when that input's shape is fixed; `None` when nothing
/// is unknown or planning cannot tell.
pub(super) fn planned_outputs(graph: &Graph) -> Option<Vec<ValueInfo>> {
    if graph.outputs.iter().all(|o| !o.shape.is_empty() && o.shape.iter().all(Option::is_some)) {
        return None;
    }
    let image = graph.inputs.iter().find(|v| {
        matches!(v.shape.as_slice(), [Some(1), Some(3), Some(_), Some(_)] | [Some(1), Some(_), Some(_), Some(3)])
    })?;
    let shape: Vec<usize> = image.shape.iter().map(|d| d.unwrap_or(1)).collect();
    // Geometry inputs besides the image (detect::aux) are bound to their values for this size.
    let mut bound;
    let mut graph = graph;
    if graph.inputs.len() > 1 {
        let size = if shape[1] == 3 { [shape[3], shape[2]] } else { [shape[2], shape[1]] };
        let values: Vec<(String, crate::model::Tensor)> = graph
            .inputs
            .iter()
            .filter(|v| v.name != image.name)
            .map(|v| {
                let kind = AuxInput::Kind(aux::recognise(v)?);
                Some((v.name.clone(), aux::aux_tensor(v, &kind, size).ok()?))
            })
            .collect::<Option<_>>()?;
        bound = graph.clone();
        bound.bind_inputs(&values).ok()?;
        graph = &bound;
    }
    let plan = crate::model::Plan::new(graph, &crate::ops::Registry::new(), &[(image.name.clone(), shape)]).ok()?;
    Some(
        graph
            .outputs
            .iter()
            .map(|o| match plan.fact(&o.name) {
                Some(f) if !plan.output_names().is_empty() => {
                    ValueInfo { shape: f.shape.iter().map(|&d| Some(d)).collect(), ..o.clone() }
                }
                _ => o.clone(),
            })
            .collect(),
    )
}

/// Graph outputs computed from Conv outputs by data movement and Sigmoid only (see
/// [`ModelMeta::raw_head_outputs`]).
pub(super) fn raw_head_outputs(graph: &Graph) -> Vec<String> {
    use OpKind::*;
    const MOVE: [OpKind; 10] =
        [Reshape, Transpose, Identity, Flatten, Squeeze, Unsqueeze, Concat, Split, Slice, Sigmoid];
    let producer: std::collections::HashMap<&str, &crate::model::Node> =
        graph.nodes.iter().flat_map(|n| n.outputs.iter().map(move |o| (o.as_str(), n))).collect();
    let raw = |out: &str| {
        let (mut stack, mut seen, mut convs) = (vec![out], std::collections::HashSet::new(), 0);
        while let Some(t) = stack.pop() {
            if !seen.insert(t) || seen.len() > 10_000 {
                continue;
            }
            match producer.get(t) {
                Some(n) if n.is(OpKind::Conv) => convs += 1,
                Some(n) if n.is_any(&MOVE) => {
                    // Data inputs only: a Reshape's shape or an Unsqueeze's axes are constants.
                    let data = if n.is(OpKind::Concat) { &n.inputs[..] } else { &n.inputs[..n.inputs.len().min(1)] };
                    stack.extend(data.iter().map(String::as_str).filter(|i| !graph.initializers.contains_key(*i)));
                }
                _ => return false,
            }
        }
        convs > 0
    };
    graph.outputs.iter().filter(|o| raw(&o.name)).map(|o| o.name.clone()).collect()
}

/// Graph outputs computed by a Sigmoid (through layout-only ops: Reshape, Transpose, …), whose
/// values are probabilities already.
pub(super) fn sigmoid_outputs(graph: &Graph) -> Vec<String> {
    outputs_made_by(graph, OpKind::Sigmoid)
}

/// Graph outputs computed by a Softmax (through layout-only ops), probabilities already.
pub(super) fn softmax_outputs(graph: &Graph) -> Vec<String> {
    outputs_made_by(graph, OpKind::Softmax)
}

/// Graph outputs computed by an op of `kind`, through layout-only ops.
fn outputs_made_by(graph: &Graph, kind: OpKind) -> Vec<String> {
    use OpKind::*;
    const LAYOUT: [OpKind; 6] = [Reshape, Transpose, Identity, Flatten, Squeeze, Unsqueeze];
    let producer = |name: &str| graph.nodes.iter().find(|n| n.outputs.iter().any(|o| o == name));
    graph
        .outputs
        .iter()
        .filter(|o| {
            let mut name = o.name.as_str();
            for _ in 0..8 {
                match producer(name) {
                    Some(n) if n.is(kind) => return true,
                    Some(n) if n.is_any(&LAYOUT) && !n.inputs.is_empty() => name = &n.inputs[0],
                    _ => return false,
                }
            }
            false
        })
        .map(|o| o.name.clone())
        .collect()
}

/// The outputs of a `TFLite_Detection_PostProcess` op when all four are graph outputs (TF
/// Object Detection API and MediaPipe SSD `.tflite` models end in it).
pub(super) fn detection_postprocess(graph: &Graph) -> Option<PostProcessOutputs> {
    let n = graph.nodes.iter().find(|n| n.is(OpKind::TfliteDetectionPostProcess))?;
    let [boxes, classes, scores, count] = <[String; 4]>::try_from(n.outputs.clone()).ok()?;
    let is_output = |name: &str| graph.outputs.iter().any(|o| o.name == name);
    if ![&boxes, &classes, &scores, &count].iter().all(|o| is_output(o)) {
        return None;
    }
    let num_classes = usize::try_from(n.attrs.int("num_classes", 0)).ok()?;
    Some(PostProcessOutputs { boxes, classes, scores, count, num_classes })
}

/// A TFLite file's uint8 graph input, read from the conversion the loader puts behind it:
/// `(input, scale, zero point)`.
pub(super) fn uint8_input(graph: &Graph) -> Option<(String, f32, i32)> {
    graph.inputs.iter().find_map(|v| {
        graph.nodes.iter().find_map(|n| match n.tflite_quantize() {
            Some((2, s, z)) if n.inputs.first() == Some(&v.name) && s.is_finite() && s > 0.0 => {
                Some((v.name.clone(), s, z as i32))
            }
            _ => None,
        })
    })
}

/// A uint8 TFLite input: apps feed it the raw pixels, so its codes' float values — (pixel −
/// zero point)·scale — are the pre-processing the model was converted with, whatever the
/// family's convention. Sets `mean` and `std` so, says so in the assumption about pixels, and
/// returns whether it did (the scaling is then known: no probe).
pub(super) fn uint8_input_scaling(
    meta: &ModelMeta,
    input: &str,
    (mean, std): (&mut [f32; 3], &mut [f32; 3]),
    assumed: &mut Vec<String>,
) -> bool {
    let Some((name, s, z)) = meta.uint8_input.as_ref().filter(|(n, ..)| n == input) else { return false };
    let (s, z) = (*s, *z);
    let (lo, hi) = ((0 - z) as f32 * s, (255 - z) as f32 * s);
    *mean = [z as f32 / 255.0; 3];
    *std = [1.0 / (255.0 * s); 3];
    let note = format!(
        "the scaling: (pixel − {z})·{s}, {lo}..{hi}, as the file's uint8 input `{name}` takes it (apps fill its codes with \
         the raw pixels; the converter was calibrated on that range)"
    );
    match assumed.iter().position(|a| a.starts_with("RGB pixels scaled to") || a.starts_with("BGR pixels")) {
        Some(i) => assumed[i] = format!("{}, except {note}", assumed[i]),
        None => assumed.push(format!("pixels as they are but {note}")),
    }
    true
}
