//! A loaded model written as ONNX (`qplay convert`, the page's "Download as ONNX"): a TFLite
//! file becomes the ONNX graph qplay runs it as, an ONNX file is written back as qplay reads it.
//!
//! The export gate: the written bytes are loaded back and, where every input has a known shape
//! and is float32, both graphs run on one seeded input; the outputs must be equal bit for bit.

use super::{
    is_tflite, load_model, load_onnx, load_tflite_as_qdq, save_onnx, Data, Graph, ModelError, OpKind, Plan, Tensor,
};
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

/// One seeded input per graph input, or why the graph cannot be run on them.
fn seeded_feeds(g: &Graph) -> Result<Vec<(String, Tensor)>, String> {
    let mut feeds = Vec::new();
    for (k, i) in g.inputs.iter().enumerate() {
        let Some(shape) = i.shape.iter().copied().collect::<Option<Vec<usize>>>() else {
            return Err(format!("input `{}` has dimensions only known at run time", i.name));
        };
        if i.elem_type != 1 {
            return Err(format!("input `{}` is not float32", i.name));
        }
        feeds.push((i.name.clone(), seeded(&shape, k as u32)));
    }
    Ok(feeds)
}

fn run(g: &Graph, feeds: &[(String, Tensor)]) -> Result<Vec<Tensor>, Error> {
    let shapes: Vec<(String, Vec<usize>)> = feeds.iter().map(|(n, t)| (n.clone(), t.shape.clone())).collect();
    Ok(Plan::new(g, &Registry::new(), &shapes)?.run(feeds)?)
}

/// Writes a model file as ONNX: [`convert_to_onnx`] of what [`load_model`] reads, except for
/// a full-integer TFLite model, which is written in ONNX's QDQ form
/// ([`super::load_tflite_as_qdq`]): the written file passes the same gate, and the check also
/// says how the QDQ graph's outputs compare with TFLite's integer arithmetic (qplay's
/// `qplay.tfl.*` ops, equal to LiteRT's) on the seeded input, in quantization steps.
pub fn convert_file_to_onnx(bytes: &[u8]) -> Result<Converted, Error> {
    let g = load_model(bytes)?;
    let integer = qplay_only_ops(&g).iter().any(|o| o.starts_with("qplay.tfl."));
    let detection = g.nodes.iter().any(|n| n.is(OpKind::TfliteDetectionPostProcess));
    if !(is_tflite(bytes) && integer) || detection {
        return convert_to_onnx(&g);
    }
    let qdq = load_tflite_as_qdq(bytes)?;
    let mut c = convert_to_onnx(&qdq)?;
    let agreement = match seeded_feeds(&g) {
        Ok(feeds) => {
            let mut s = steps_apart(&qdq, &run(&g, &feeds)?, &run(&qdq, &feeds)?);
            if let Some((op, within)) = first_layer(&g, &qdq, &feeds)? {
                s.push_str(&format!(
                    "; the first layer ({op}) is within one step on {within:.3} % of its values (a one-step difference \
                     in a layer changes the sums of the layers after it: differences grow with depth)"
                ));
            }
            s
        }
        Err(why) => format!("not compared with TFLite's integer arithmetic: {why}"),
    };
    c.check = format!(
        "written in QDQ form (int8 weights, QuantizeLinear / DequantizeLinear around float ops); {}; {agreement}",
        c.check.replace("the source model's", "the QDQ graph's")
    );
    Ok(c)
}

/// Writes a full-integer TFLite model in ONNX's integer form ([`super::integer_form`]): TFLite's
/// fixed-point arithmetic in standard integer ops, so onnxruntime gives LiteRT's codes in every
/// value. Besides the gate (the file loaded back computes what the written graph computes, bit
/// for bit), the integer graph's outputs must equal qplay's `qplay.tfl.*` ops' (equal to
/// LiteRT's) on the seeded input, bit for bit. Other models are refused with the reason.
pub fn convert_file_to_integer_onnx(bytes: &[u8]) -> Result<Converted, Error> {
    let g = load_model(bytes)?;
    let integer = qplay_only_ops(&g).iter().any(|o| o.starts_with("qplay.tfl."));
    if !(is_tflite(bytes) && integer) {
        return Err(ModelError::Other(
            "the integer form is for full-integer TFLite models (int8 or uint8 ops); this model is written as it is \
             (`qplay convert` without --form integer)"
                .into(),
        )
        .into());
    }
    let ig = super::integer_form::integer_form(&g)?;
    let mut c = convert_to_onnx(&ig)?;
    let equal = match seeded_feeds(&g) {
        Ok(feeds) => {
            let (want, got) = (run(&g, &feeds)?, run(&ig, &feeds)?);
            if !bit_equal(&want, &got) {
                return Err(ModelError::Other(
                    "the integer form computes something else than TFLite's integer arithmetic; please report this model"
                        .into(),
                )
                .into());
            }
            let n: usize = want.iter().map(|t| t.shape.iter().product::<usize>()).sum();
            format!("all {n} output values equal TFLite's integer arithmetic (qplay's TFLite kernels, equal to LiteRT's) on that input")
        }
        Err(why) => format!("not compared with TFLite's integer arithmetic: {why}"),
    };
    c.check = format!(
        "written in integer form (ConvInteger / MatMulInteger sums, TFLite's fixed-point requantization in int64 ops); {}; {equal}",
        c.check.replace("the source model's", "the integer graph's")
    );
    Ok(c)
}

/// Whether two runs' outputs are equal bit for bit.
fn bit_equal(want: &[Tensor], got: &[Tensor]) -> bool {
    want.len() == got.len()
        && want.iter().zip(got).all(|(a, b)| {
            a.shape == b.shape
                && match (&a.data, &b.data) {
                    (Data::F32(x), Data::F32(y)) => x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
                    _ => a == b,
                }
        })
}

/// The first layer of the integer graph `g` whose output the QDQ graph also computes (under
/// its name, or as its NCHW twin `NAME__nchw`): its op type and the percentage of its values
/// within one step of the integer op's, on `feeds`.
fn first_layer(g: &Graph, qdq: &Graph, feeds: &[(String, Tensor)]) -> Result<Option<(String, f64)>, Error> {
    let first = g.nodes.iter().find_map(|n| {
        let out = n.outputs.first()?;
        if !n.op_type.starts_with("qplay.tfl.") || crate::ops::tflite::quantize::is_conversion(&n.op_type) {
            return None;
        }
        [(out.clone(), false), (format!("{out}__nchw"), true)].into_iter().find_map(|(name, nchw)| {
            Some((n.op_type.clone(), out.clone(), name.clone(), nchw, output_quantization(qdq, &name)?))
        })
    });
    let Some((op, name, qdq_name, nchw, (step, zp))) = first else { return Ok(None) };
    let with_output = |graph: &Graph, name: &str, elem_type: i32| {
        let mut graph = graph.clone();
        graph.outputs = vec![super::ValueInfo { name: name.to_string(), elem_type, shape: vec![] }];
        graph
    };
    let (want, got) = (run(&with_output(g, &name, 3), feeds)?, run(&with_output(qdq, &qdq_name, 1), feeds)?);
    let (Some(want), Some(got)) = (want.first(), got.first()) else { return Ok(None) };
    let (Ok(codes), Ok(values)) = (want.to_i64_vec(), got.as_f32()) else { return Ok(None) };
    if codes.len() != values.len() {
        return Ok(None);
    }
    // NHWC index i of `want` → its index in the NCHW twin.
    let at = |i: usize| match (nchw, want.shape.as_slice()) {
        (true, &[_, h, w, c]) => {
            let (n, rest) = (i / (h * w * c), i % (h * w * c));
            let (y, x, ch) = (rest / (w * c), rest / c % w, rest % c);
            ((n * c + ch) * h + y) * w + x
        }
        _ => i,
    };
    let within =
        codes.iter().enumerate().filter(|&(i, &w)| ((values[at(i)] / step).round() as i64 + zp - w).abs() <= 1).count();
    Ok(Some((op, 100.0 * within as f64 / codes.len().max(1) as f64)))
}

/// The scale and zero point of a QDQ graph's output: those of the per-tensor
/// `DequantizeLinear` that writes it (through ops that only move values); `None` when another
/// op does.
pub fn output_quantization(g: &Graph, name: &str) -> Option<(f32, i64)> {
    let mut name = name.to_string();
    for _ in 0..g.nodes.len() {
        let n = g.nodes.iter().find(|n| n.outputs.contains(&name))?;
        if n.is_dequantize_linear() {
            let scale = match g.initializers.get(n.inputs.get(1)?)?.as_f32().ok()? {
                [s] => *s,
                _ => return None,
            };
            let zp = match n.inputs.get(2).filter(|z| !z.is_empty()) {
                Some(z) => match g.initializers.get(z)?.to_i64_vec().ok()?.as_slice() {
                    [z] => *z,
                    _ => return None,
                },
                None => 0,
            };
            return Some((scale, zp));
        }
        let moves = [OpKind::Identity, OpKind::Transpose, OpKind::Reshape, OpKind::Squeeze, OpKind::Unsqueeze];
        if !moves.iter().any(|&k| n.is(k)) {
            return None;
        }
        name = n.inputs.first()?.clone();
    }
    None
}

/// "on a seeded input, N of M output values equal …": the QDQ graph's outputs against the
/// integer graph's, in steps of each output's quantization.
fn steps_apart(qdq: &Graph, want: &[Tensor], got: &[Tensor]) -> String {
    let (mut total, mut equal, mut one, mut worst) = (0usize, 0usize, 0usize, 0.0f32);
    let mut unquantized = Vec::new();
    for ((w, g), info) in want.iter().zip(got).zip(&qdq.outputs) {
        let (Ok(w), Ok(g)) = (w.as_f32(), g.as_f32()) else { continue };
        let Some((step, _)) = output_quantization(qdq, &info.name) else {
            unquantized.push(info.name.clone());
            continue;
        };
        for (a, b) in w.iter().zip(g) {
            let d = ((a - b) / step).abs().round();
            total += 1;
            equal += usize::from(d == 0.0);
            one += usize::from(d == 1.0);
            worst = worst.max(if d.is_nan() { f32::INFINITY } else { d });
        }
    }
    let mut s = format!(
        "on that input {equal} of {total} output values equal TFLite's integer arithmetic and {one} differ by one \
         quantization step ({:.3} % within one step)",
        100.0 * (equal + one) as f64 / total.max(1) as f64
    );
    if worst > 1.0 {
        s.push_str(&format!(", the farthest {worst} steps"));
    }
    if !unquantized.is_empty() {
        s.push_str(&format!(" (not counted: {}, not quantized)", unquantized.join(", ")));
    }
    s
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
                ". A full-integer TFLite model keeps TFLite's integer rounding in qplay's own ops: convert the .tflite file itself (`qplay convert model.tflite -o model.onnx`, or the page's Download as ONNX), which writes it in ONNX's QDQ form",
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
    let feeds = match seeded_feeds(g) {
        Ok(f) => f,
        Err(why) => return Ok(Converted { onnx, check: format!("loaded back; not run: {why}") }),
    };
    let (want, got) = (run(g, &feeds)?, run(&back, &feeds)?);
    if !bit_equal(&want, &got) {
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
