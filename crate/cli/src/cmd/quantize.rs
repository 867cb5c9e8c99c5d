//! `qplay quantize MODEL --calib DIR -o OUT.onnx`: post-training quantization to a QDQ model.

use super::calib::{load_calibration, BitArgs, Calib, CalibArgs, MixArgs};
use super::common::read_model;
use crate::choice;
use qplay_core::ptq::{quantize, recipe::quantize_auto, PtqOptions};
use qplay_core::quant::{Calibration, QType};
use std::path::Path;
use std::time::Instant;

/// How the recipe (observer, equalization, bias correction) is set.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Recipe {
    /// Chosen by measurement on held-out calibration inputs (every third one).
    Auto,
    /// The defaults (MSE, equalization and bias correction on) with the options given.
    Fixed,
}

/// `qplay quantize`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    io: CalibArgs,
    #[command(flatten)]
    bits: BitArgs,
    /// Default auto, or fixed if --method or --[no-]equalize/bias-correction is given.
    #[arg(long, value_enum, value_name = "RECIPE")]
    recipe: Option<Recipe>,
    /// Activation observer (fixes the recipe; default mse).
    #[arg(long, value_name = "METHOD", value_parser = choice::method())]
    method: Option<Calibration>,
    /// Weights per tensor rather than per output channel.
    #[arg(long)]
    per_tensor: bool,
    /// Activations as int8 rather than uint8.
    #[arg(long)]
    int8_activations: bool,
    /// Cross-layer equalization on (the fixed recipe's default).
    #[arg(long, conflicts_with = "no_equalize")]
    equalize: bool,
    /// Cross-layer equalization off.
    #[arg(long)]
    no_equalize: bool,
    /// Empirical bias correction on (the fixed recipe's default).
    #[arg(long, conflicts_with = "no_bias_correction")]
    bias_correction: bool,
    /// Bias correction off.
    #[arg(long)]
    no_bias_correction: bool,
    #[command(flatten)]
    mix: MixArgs,
    /// Write the quality report (per layer, JSON).
    #[arg(long, value_name = "r.json")]
    report: Option<String>,
    #[command(flatten)]
    pub threads: crate::threads::ThreadArgs,
}

pub fn run(a: Args) -> Result<(), String> {
    let defaults = PtqOptions::default();
    let switch = |on: bool, off: bool, default: bool| {
        if on {
            true
        } else if off {
            false
        } else {
            default
        }
    };
    let (model, out, calib_dir) = (&a.io.model, &a.io.out, &a.io.calib);
    let mut opts = PtqOptions {
        method: a.method.unwrap_or(defaults.method),
        per_channel: !a.per_tensor,
        activation: if a.int8_activations { QType::INT8 } else { QType::UINT8 },
        equalize: switch(a.equalize, a.no_equalize, defaults.equalize),
        bias_correction: switch(a.bias_correction, a.no_bias_correction, defaults.bias_correction),
        gptq: defaults.gptq,
        ..PtqOptions::default()
    };
    // The recipe (observer, equalization, bias correction) is chosen by measurement unless the
    // user sets any part of it (or says --recipe fixed: the defaults as they are).
    let given = [
        ("method", a.method.is_some()),
        ("equalize", a.equalize),
        ("no-equalize", a.no_equalize),
        ("bias-correction", a.bias_correction),
        ("no-bias-correction", a.no_bias_correction),
    ];
    let set: Vec<&str> = given.iter().filter(|(_, on)| *on).map(|(f, _)| *f).collect();
    let auto = match a.recipe {
        None => set.is_empty(),
        Some(Recipe::Auto) if set.is_empty() => true,
        Some(Recipe::Auto) => {
            return Err(format!(
                "--recipe auto chooses the observer, equalization and bias correction itself: drop --{}, or use --recipe fixed",
                set.join(", --")
            ))
        }
        Some(Recipe::Fixed) => false,
    };
    let bytes = read_model(Path::new(model))?;
    let Calib { graph, inputs: calib, input, fixed, .. } =
        load_calibration(model, &bytes, calib_dir, a.io.profile.as_deref())?;
    opts.fixed_inputs = fixed;
    a.bits.apply(&mut opts, a.int8_activations)?;
    a.mix.apply(&mut opts);
    let t0 = Instant::now();
    let mut q = qplay_core::parallel::on_pool(|| {
        if auto {
            quantize_auto(&graph, &input, &calib, &opts, &mut |_| std::ops::ControlFlow::Continue(()))
        } else {
            quantize(&graph, &input, &calib, &opts)
        }
    })
    .map_err(|e| e.to_string())?;
    let secs = t0.elapsed().as_secs_f64();
    q.report.fp32_bytes = Some(bytes.len());
    std::fs::write(out, &q.onnx).map_err(|e| format!("cannot write {out}: {e}"))?;
    let r = &q.report;
    let own = r.layers.iter().filter(|l| l.weight_bits != r.weight_bits).count();
    println!(
        "{model} → {out}: {} layers {}{} ({} kept FP32), {} calibration input(s), method {}, weights {} (rounded {}), activations {}",
        r.layers.len(),
        match (r.weight_bits, r.weight_storage) {
            (8, _) => "int8".to_string(),
            (4, "int4") => "int4".to_string(),
            (b, s) => format!("{b}-bit weights ({s} storage)"),
        },
        if own > 0 { format!(", {own} at their own width") } else { String::new() },
        r.kept_fp32.len(),
        r.calibration_inputs,
        r.method,
        if r.per_channel { "per channel" } else { "per tensor" },
        if r.weight_rounding == "gptq" { "by GPTQ" } else { "to nearest" },
        r.activation_type
    );
    println!(
        "  size {:.2} MB → {:.2} MB ({:.2}×); quantized in {secs:.2} s",
        bytes.len() as f64 / 1e6,
        r.int8_bytes as f64 / 1e6,
        r.int8_bytes as f64 / bytes.len() as f64
    );
    for (name, db) in &r.output_sqnr_db {
        println!("  output {name}: SQNR {db:.1} dB vs FP32");
    }
    if let Some(c) = &r.recipe {
        for sc in &c.scores {
            let outs: Vec<String> = sc.held_out_sqnr_db.iter().map(|(n, d)| format!("{n} {d:.1}")).collect();
            println!(
                "  recipe {:<11} held-out SQNR dB: {}{}",
                sc.recipe,
                outs.join(", "),
                if sc.recipe == c.chosen { "  ← chosen" } else { "" }
            );
        }
    }
    for n in &r.notes {
        println!("  note: {n}");
    }
    let phases: Vec<String> = r.phase_ms.iter().map(|(p, ms)| format!("{p} {:.2} s", ms / 1e3)).collect();
    println!("  time: {}", phases.join(" · "));
    if let Some(rp) = &a.report {
        let mut v = serde_json::to_value(r).map_err(|e| e.to_string())?;
        v["quantize_seconds"] = serde_json::json!(secs);
        std::fs::write(rp, serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?)
            .map_err(|e| format!("cannot write {rp}: {e}"))?;
    }
    Ok(())
}
