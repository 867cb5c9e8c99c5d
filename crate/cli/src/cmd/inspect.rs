//! `qplay inspect MODEL [--json]`: inputs, outputs, ops, parameters, unsupported ops.

use super::common::read_model;
use qplay_core::model::{load_model, Summary};
use qplay_core::ops::Registry;
use std::path::Path;

/// `qplay inspect`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model: ONNX or TFLite (.tflite).
    #[arg(value_name = "MODEL")]
    model: String,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn dims(s: &[Option<usize>]) -> String {
    let d: Vec<String> = s.iter().map(|d| d.map_or("?".into(), |v| v.to_string())).collect();
    format!("[{}]", d.join(", "))
}

pub fn run(a: Args) -> Result<(), String> {
    let model = &a.model;
    let path = Path::new(model);
    let graph = load_model(&read_model(path)?).map_err(|e| format!("{model}: {e}"))?;
    let s = Summary::of(&graph, &Registry::new());
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?);
        return Ok(());
    }
    let arithmetic = match s.arithmetic {
        qplay_core::model::Arithmetic::Float => "float layers",
        qplay_core::model::Arithmetic::Quantized => "quantized layers (an INT8 export)",
        qplay_core::model::Arithmetic::FullInteger => "full-integer (TFLite's integer kernels)",
    };
    println!(
        "{model}  (producer {}, {}, {arithmetic})",
        if s.producer.is_empty() { "?" } else { &s.producer },
        s.format
    );
    for i in &s.inputs {
        println!("  input   {:<28} {:<8} {}", i.name, i.dtype, dims(&i.shape));
    }
    for o in &s.outputs {
        println!("  output  {:<28} {:<8} {}", o.name, o.dtype, dims(&o.shape));
    }
    println!("  {} nodes, {} parameters ({:.2} MB)", s.nodes, s.parameters, s.parameter_bytes as f64 / 1e6);
    for n in &s.notes {
        println!("  note: {n}");
    }
    for (k, v) in
        s.metadata.iter().filter(|(k, _)| matches!(k.as_str(), "task" | "names" | "imgsz" | "kpt_shape" | "end2end"))
    {
        println!(
            "  metadata {k}: {}",
            if v.chars().count() > 100 { v.chars().take(100).collect::<String>() + "…" } else { v.clone() }
        );
    }
    println!("  ops:");
    for (op, n) in &s.ops {
        println!("    {op:<24} {n}");
    }
    if !s.quantized.is_empty() {
        println!("  the file's quantization (scale Δ, zero point Z of each layer's output; weight scales):");
        for q in &s.quantized {
            let w = match q.weight_scale_range {
                Some([lo, hi]) if q.weight_scales > 1 => {
                    format!("  weights: {} scales {lo:.3e}…{hi:.3e}", q.weight_scales)
                }
                Some([v, _]) => format!("  weights: one scale {v:.3e}"),
                None => String::new(),
            };
            println!("    {:<40} Δ {:<12.6e} Z {:<6}{w}", short(&q.tensor, 40), q.scale, q.zero_point);
        }
    }
    if s.unsupported.is_empty() {
        println!("  every op is supported");
    } else {
        println!("  unsupported ops:");
        for (op, node) in &s.unsupported {
            println!("    {op} (first in node `{node}`)");
        }
    }
    Ok(())
}

/// A long name cut to `n` characters (its end kept, where TFLite names say what they are).
fn short(name: &str, n: usize) -> String {
    let c = name.chars().count();
    if c <= n {
        name.to_string()
    } else {
        "…".to_string() + &name.chars().skip(c - (n - 1)).collect::<String>()
    }
}
