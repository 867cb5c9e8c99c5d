//! `qplay explain`: one value through quantization and back, step by step.

use crate::choice;
use qplay_core::quant::{explain, ExplainRequest};

/// `qplay explain`'s options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Low end of the float range.
    #[arg(long, value_name = "A", allow_hyphen_values = true)]
    min: f64,
    /// High end of the float range.
    #[arg(long, value_name = "B", allow_hyphen_values = true)]
    max: f64,
    /// Bit width of the codes.
    #[arg(long, value_name = "N", default_value = "8", value_parser = choice::bits())]
    bits: u8,
    /// Signed codes (int8: −128..127); the default.
    #[arg(long, conflicts_with = "unsigned")]
    signed: bool,
    /// Unsigned codes (uint8: 0..255).
    #[arg(long)]
    unsigned: bool,
    /// The value to send through q and back.
    #[arg(long, value_name = "X", allow_hyphen_values = true)]
    value: f64,
    /// Symmetric range: ±max|x|, Z = 0 for signed codes.
    #[arg(long, conflicts_with = "asymmetric")]
    symmetric: bool,
    /// Asymmetric range (the default): [min, max] as given.
    #[arg(long)]
    asymmetric: bool,
    /// Symmetric restricted range (−127..127 for int8).
    #[arg(long)]
    restricted: bool,
    /// Round Δ to N decimals (0 to 12) first, as done by hand.
    #[arg(long, value_name = "N")]
    scale_decimals: Option<u32>,
    /// Print JSON (scale, zero_point, q, dequantized, error, the steps).
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<(), String> {
    let req = ExplainRequest {
        min: a.min,
        max: a.max,
        bits: a.bits,
        signed: a.signed || !a.unsigned,
        symmetric: a.symmetric && !a.asymmetric,
        restricted: a.restricted,
        value: a.value,
        scale_decimals: a.scale_decimals,
    };
    let e = explain(&req).map_err(|e| e.to_string())?;
    if a.json {
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
