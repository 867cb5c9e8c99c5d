//! Image inputs as the detector and calibration feed them: `[1, 3, H, W]` (or `[1, H, W, 3]`)
//! float32 pixels. [`float_image_inputs`] rewrites a graph whose image input is otherwise: no
//! batch axis (torchvision's detection exports take one `[3, H, W]` image), or uint8 pixels
//! (TensorFlow's detection exports).

use super::{Attr, Attrs, Graph, Node, OpKind, Tensor};

/// Gives rank-3 image inputs (`[3, H, W]` or `[H, W, 3]`, float32 or uint8) a leading batch
/// axis of 1, followed by a `Squeeze` of it inside the model, so that the model computes what it
/// did; said in the load notes. Returns the inputs changed.
fn batch_image_inputs(g: &mut Graph) -> Vec<String> {
    let images: Vec<String> = g
        .inputs
        .iter()
        .filter(|v| matches!(v.elem_type, 1 | 2) && matches!(v.shape.as_slice(), [Some(3), _, _] | [_, _, Some(3)]))
        .filter(|v| !g.initializers.contains_key(&v.name))
        .map(|v| v.name.clone())
        .collect();
    for name in &images {
        let inner = format!("{name}__qplay_unbatched");
        for n in g.nodes.iter_mut() {
            n.inputs.iter_mut().filter(|i| *i == name).for_each(|i| *i = inner.clone());
        }
        g.outputs.iter_mut().filter(|o| o.name == *name).for_each(|o| o.name = inner.clone());
        let mut node = Node {
            name: format!("{inner}__node"),
            op_type: OpKind::Squeeze.into(),
            inputs: vec![name.clone()],
            outputs: vec![inner.clone()],
            attrs: Attrs::default(),
            fused: Default::default(),
        };
        // Squeeze takes its axes as an input from opset 13, as an attribute before.
        if g.opset >= 13 {
            let axes = format!("{inner}__axes");
            g.initializers.insert(axes.clone(), Tensor::vec_i64(vec![0]));
            node.inputs.push(axes);
        } else {
            node.attrs.0.insert("axes".into(), Attr::Ints(vec![0]));
        }
        g.nodes.insert(0, node);
        if let Some(v) = g.inputs.iter_mut().find(|v| v.name == *name) {
            v.shape.insert(0, Some(1));
        }
        g.load_notes.push(format!(
            "input `{name}` takes one image without a batch axis (torchvision's detection exports): qplay feeds it a batch of \
             one, {}, squeezed inside the model (added when loading)",
            if matches!(g.inputs.iter().find(|v| v.name == *name).map(|v| v.shape.as_slice()), Some([_, Some(3), _, _])) {
                "[1, 3, H, W]"
            } else {
                "[1, H, W, 3]"
            }
        ));
    }
    images
}

/// Makes uint8 image inputs (`[N, 3, H, W]` or `[N, H, W, 3]`: TensorFlow detection exports take
/// raw pixels) float32 inputs followed by `Round` and `Cast` to uint8, so that pre-processing,
/// calibration and every executor feed images the same way (an image input without a batch
/// axis gets one first, squeezed inside the model); said in the load notes. The model
/// computes exactly what it did for the same pixel values. For image models only (the detector,
/// quantization from photos): a uint8 tensor of that shape may be data elsewhere.
pub fn float_image_inputs(g: &mut Graph) -> Vec<String> {
    batch_image_inputs(g);
    let images: Vec<String> = g
        .inputs
        .iter()
        .filter(|v| v.elem_type == 2 && matches!(v.shape.as_slice(), [_, Some(3), _, _] | [_, _, _, Some(3)]))
        .filter(|v| !g.initializers.contains_key(&v.name))
        .map(|v| v.name.clone())
        .collect();
    for name in &images {
        let (rounded, pixels) = (format!("{name}__qplay_rounded"), format!("{name}__qplay_uint8"));
        for n in g.nodes.iter_mut() {
            n.inputs.iter_mut().filter(|i| *i == name).for_each(|i| *i = pixels.clone());
        }
        g.outputs.iter_mut().filter(|o| o.name == *name).for_each(|o| o.name = pixels.clone());
        let node = |op: &str, input: &str, output: &str, attrs: Vec<(&str, Attr)>| Node {
            name: format!("{output}__node"),
            op_type: op.to_string(),
            inputs: vec![input.to_string()],
            outputs: vec![output.to_string()],
            attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
            fused: Default::default(),
        };
        g.nodes.insert(0, node("Cast", &rounded, &pixels, vec![("to", Attr::Int(2))]));
        g.nodes.insert(0, node("Round", name, &rounded, vec![]));
        if let Some(v) = g.inputs.iter_mut().find(|v| v.name == *name) {
            v.elem_type = 1;
        }
        g.load_notes.push(format!(
            "input `{name}` takes uint8 pixels: qplay feeds it float32 values 0..255, rounded and cast to uint8 inside the \
             model (added when loading), so it computes as on raw pixels"
        ));
    }
    images
}

/// Undoes [`float_image_inputs`] before a graph is written to a file, so that an exported model
/// (a quantized or fine-tuned one) takes its inputs as the user's file did: the `Round` and
/// `Cast` behind a uint8 image input are dropped and the input is uint8 again; the `Squeeze`
/// behind an image input that had no batch axis is dropped and the input is rank 3 again. Both
/// computed the identity on what the file takes, so the model's values are unchanged. Returns
/// the inputs restored; loading the file again (or [`float_image_inputs`]) gives the graph that
/// qplay runs.
pub fn restore_image_inputs(g: &mut Graph) -> Vec<String> {
    let mut restored = Vec::new();
    let inputs: Vec<String> = g.inputs.iter().map(|v| v.name.clone()).collect();
    for name in &inputs {
        // uint8 pixels: input → Round → Cast(uint8) → the model.
        let (rounded, pixels) = (format!("{name}__qplay_rounded"), format!("{name}__qplay_uint8"));
        if take_helper(g, &format!("{pixels}__node"), &rounded, &pixels)
            && take_helper(g, &format!("{rounded}__node"), name, &rounded)
        {
            rename_uses(g, &pixels, name);
            if let Some(v) = g.inputs.iter_mut().find(|v| v.name == *name) {
                v.elem_type = 2;
            }
            restored.push(name.clone());
        }
        // No batch axis: input → Squeeze(0) → the model.
        let inner = format!("{name}__qplay_unbatched");
        if take_helper(g, &format!("{inner}__node"), name, &inner) {
            g.initializers.remove(&format!("{inner}__axes"));
            rename_uses(g, &inner, name);
            if let Some(v) = g.inputs.iter_mut().find(|v| v.name == *name) {
                if v.shape.first() == Some(&Some(1)) {
                    v.shape.remove(0);
                }
            }
            if !restored.contains(name) {
                restored.push(name.clone());
            }
        }
    }
    restored
}

/// Removes the node `node` if it reads `input` first and writes only `output`: whether it did.
fn take_helper(g: &mut Graph, node: &str, input: &str, output: &str) -> bool {
    let Some(i) = g.nodes.iter().position(|n| n.name == node) else { return false };
    let n = &g.nodes[i];
    if n.inputs.first().map(String::as_str) != Some(input) || n.outputs != [output] {
        return false;
    }
    g.nodes.remove(i);
    true
}

/// Every read of tensor `from` (node inputs, graph outputs) reads `to` instead.
fn rename_uses(g: &mut Graph, from: &str, to: &str) {
    for n in g.nodes.iter_mut() {
        n.inputs.iter_mut().filter(|i| *i == from).for_each(|i| *i = to.to_string());
    }
    g.outputs.iter_mut().filter(|o| o.name == from).for_each(|o| o.name = to.to_string());
}

/// [`super::save_onnx`] of `g` with its image inputs as the user's file had them
/// ([`restore_image_inputs`]).
pub fn save_onnx_as_loaded(g: &Graph, producer: &str) -> Vec<u8> {
    let mut g = g.clone();
    restore_image_inputs(&mut g);
    super::save_onnx(&g, producer)
}
