//! `qplay convert MODEL -o OUT.onnx`: a model qplay opens (ONNX or TFLite) written as ONNX.
//!
//! The written file passes the same gate as `quantize`'s: it is loaded back and run on one
//! seeded input, and its outputs must equal the source model's bit for bit, so a file that
//! would not load or compute the same is never left behind. A full-integer TFLite model is
//! written in ONNX's QDQ form, and the check says how its outputs compare with TFLite's
//! integer arithmetic, in quantization steps; `--form integer` writes it in ONNX's integer form
//! instead (ConvInteger / MatMulInteger and TFLite's fixed-point requantization in int64 ops),
//! which onnxruntime runs to LiteRT's codes in every value.

use super::common::read_model;
use qplay_core::model::{convert_file_to_integer_onnx, convert_file_to_onnx, load_model, load_onnx};
use std::path::Path;

/// `qplay convert`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model: ONNX or TFLite (.tflite).
    #[arg(value_name = "MODEL")]
    model: String,
    /// Where to write the ONNX file.
    #[arg(short, long, value_name = "OUT.onnx")]
    out: String,
    /// How a full-integer TFLite model is written: `qdq` (float ops between QuantizeLinear /
    /// DequantizeLinear; onnxruntime fuses them into its int8 kernels; within a step of
    /// TFLite's rounding per layer) or `integer` (TFLite's fixed-point arithmetic in integer
    /// ops: LiteRT's codes in every value, larger and slower).
    #[arg(long, value_enum, default_value_t = Form::Qdq)]
    form: Form,
}

/// `--form`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Qdq,
    Integer,
}

pub fn run(a: Args) -> Result<(), String> {
    let model = &a.model;
    let bytes = read_model(Path::new(model))?;
    let graph = load_model(&bytes).map_err(|e| format!("{model}: {e}"))?;
    let c = match a.form {
        Form::Qdq => convert_file_to_onnx(&bytes),
        Form::Integer => convert_file_to_integer_onnx(&bytes),
    }
    .map_err(|e| format!("{model}: {e}"))?;
    std::fs::write(&a.out, &c.onnx).map_err(|e| format!("cannot write {}: {e}", a.out))?;
    // What was written (a full-integer TFLite model's QDQ graph is not the graph qplay runs).
    let graph = load_onnx(&c.onnx).unwrap_or(graph);
    println!(
        "{model} → {}: {} nodes, opset {}, {:.2} MB → {:.2} MB",
        a.out,
        graph.nodes.len(),
        graph.opset,
        bytes.len() as f64 / 1e6,
        c.onnx.len() as f64 / 1e6
    );
    println!("  {}", c.check);
    for n in &graph.load_notes {
        println!("  note: {n}");
    }
    Ok(())
}
