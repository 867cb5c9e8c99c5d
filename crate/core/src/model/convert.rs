//! A loaded model written as ONNX (`qplay convert`, the page's "Download as ONNX"): a TFLite
//! file becomes the ONNX graph qplay runs it as, an ONNX file is written back as qplay reads it.
//!
//! The export gate: the written bytes are loaded back and, where every input has a known shape
//! and is float32, both graphs run on one seeded input; the outputs must be equal bit for bit.

use super::{load_onnx, save_onnx, Data, Graph, ModelError, OpKind, Plan, Tensor};
use crate::ops::Registry;
use crate::Error;

/// The ONNX bytes and what the gate checked, in one sentence.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The ONNX file.
    pub onnx: Vec<u8>,
    /// "loaded back and run: …" or why it was only loaded back.
    pub check: String,
}

/// A seeded input in [-1, 1) of `shape` (a 32-bit LCG: the same numbers on every platform).
fn seeded(shape: &[usize], seed: u32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let data = (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect();
    Tensor { shape: shape.to_vec(), data: Data::F32(data) }
}

/// The op types of `g` that only qplay runs: its own (`qplay.` domain: TFLite's integer ops,
/// lookup tables) and TFLite's detection op, which ONNX has no op for; each once, in node order.
pub fn qplay_only_ops(g: &Graph) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for n in &g.nodes {
        let own = n.op_type.starts_with("qplay.") || n.is(OpKind::TfliteDetectionPostProcess);
        if own && !found.contains(&n.op_type) {
            found.push(n.op_type.clone());
        }
    }
    found
}

/// Writes `g` as ONNX and checks the file (module docs). A graph with ops only qplay runs
/// ([`qplay_only_ops`]) is refused: onnxruntime could not run the file.
pub fn convert_to_onnx(g: &Graph) -> Result<Converted, Error> {
    let own = qplay_only_ops(g);
    if !own.is_empty() {
        let int8 = own.iter().any(|o| o.starts_with("qplay.tfl."));
        let detection = g.nodes.iter().any(|n| n.is(OpKind::TfliteDetectionPostProcess));
        let mut why = format!(
            "cannot be written as ONNX that onnxruntime runs: {} only qplay runs ({})",
            if own.len() == 1 { "this op is one" } else { "these ops are ones" },
            own.join(", ")
        );
        if int8 {
            why.push_str(
                ". A full-integer TFLite model keeps TFLite's integer rounding in qplay's own ops, which ONNX's QLinear ops do not reproduce exactly: convert its float .tflite, then quantize the ONNX file with qplay",
            );
        }
        if detection {
            why.push_str(
                ". ONNX has no op for TFLite_Detection_PostProcess (box decoding and NMS): export the model without it (TF Object Detection API: the raw box and class outputs) and let qplay decode them",
            );
        }
        return Err(ModelError::Other(why).into());
    }
    let onnx = save_onnx(g, "qplay convert");
    let back = load_onnx(&onnx).map_err(|e| ModelError::Other(format!("the written ONNX does not load back: {e}")))?;
    let mut feeds = Vec::new();
    for (k, i) in g.inputs.iter().enumerate() {
        let Some(shape) = i.shape.iter().copied().collect::<Option<Vec<usize>>>() else {
            return Ok(Converted {
                onnx,
                check: format!("loaded back; not run: input `{}` has dimensions only known at run time", i.name),
            });
        };
        if i.elem_type != 1 {
            return Ok(Converted { onnx, check: format!("loaded back; not run: input `{}` is not float32", i.name) });
        }
        feeds.push((i.name.clone(), seeded(&shape, k as u32)));
    }
    let registry = Registry::new();
    let shapes: Vec<(String, Vec<usize>)> = feeds.iter().map(|(n, t)| (n.clone(), t.shape.clone())).collect();
    let run = |graph: &Graph| -> Result<Vec<Tensor>, Error> { Ok(Plan::new(graph, &registry, &shapes)?.run(&feeds)?) };
    let (want, got) = (run(g)?, run(&back)?);
    let same = want.len() == got.len()
        && want.iter().zip(&got).all(|(a, b)| {
            a.shape == b.shape
                && match (&a.data, &b.data) {
                    (Data::F32(x), Data::F32(y)) => x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
                    _ => a == b,
                }
        });
    if !same {
        return Err(ModelError::Other(
            "the written ONNX computes something else than the model it was written from; please report this model"
                .into(),
        )
        .into());
    }
    Ok(Converted {
        onnx,
        check: format!(
            "loaded back and run on a seeded input: its {} output(s) equal the source model's bit for bit",
            got.len()
        ),
    })
}
