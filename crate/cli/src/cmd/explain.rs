//! `qplay explain`: one value through quantization and back, step by step.

use crate::args::Args;
use qplay_core::quant::{explain, ExplainRequest};

pub const USAGE: &str = "qplay explain --min A --max B [--bits 8] [--signed|--unsigned] --value X \
[--symmetric] [--restricted] [--scale-decimals N] [--json]";

pub fn run(argv: &[String]) -> Result<(), String> {
    let a = Args::parse(
        argv,
        &["min", "max", "bits", "value", "scale-decimals"],
        &["signed", "unsigned", "symmetric", "asymmetric", "restricted", "json"],
    )?;
    if let Some(p) = a.positional.first() {
        return Err(format!("unexpected argument {p:?}"));
    }
    if a.flag("signed") && a.flag("unsigned") {
        return Err("--signed and --unsigned exclude each other".into());
    }
    let req = ExplainRequest {
        min: a.req("min")?,
        max: a.req("max")?,
        bits: a.opt("bits")?.unwrap_or(8),
        signed: !a.flag("unsigned"),
        symmetric: a.flag("symmetric"),
        restricted: a.flag("restricted"),
        value: a.req("value")?,
        scale_decimals: a.opt("scale-decimals")?,
    };
    let e = explain(&req).map_err(|e| e.to_string())?;
    if a.flag("json") {
        let v = serde_json::json!({
            "scale": e.scale,
            "scale_exact": e.scale_exact,
            "zero_point": e.zero_point,
            "zero_point_real": e.zero_point_real,
            "q": e.q,
            "q_unclamped": e.q_unclamped,
            "clamped": e.clamped,
            "dequantized": e.dequantized,
            "error": e.error,
            "qmin": e.qmin,
            "qmax": e.qmax,
            "range": [e.range.0, e.range.1],
            "steps": e.steps,
        });
        println!("{}", serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?);
    } else {
        for s in &e.steps {
            println!("{s}");
        }
        println!();
        println!("Δ = {}  Z = {}  q = {}  x̂ = {}  error = {}", e.scale, e.zero_point, e.q, e.dequantized, e.error);
    }
    Ok(())
}
