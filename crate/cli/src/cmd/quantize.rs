//! `qplay quantize MODEL --calib DIR -o OUT.onnx`: post-training quantization to a QDQ model.

use super::common::{profile_for, read, read_image};
use crate::choice;
use qplay_core::detect::{auto::infer_profile_for, aux::aux_tensors, pipeline::input_shape, preprocess, Profile};
use qplay_core::model::{load_onnx, npy, Tensor};
use qplay_core::ptq::{quantize, recipe::quantize_auto, PtqOptions};
use qplay_core::quant::{Calibration, QType};
use std::path::{Path, PathBuf};
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
    /// The FP32 ONNX model (one image input; others described by the profile's aux_inputs).
    #[arg(value_name = "MODEL.onnx")]
    model: String,
    /// Folder of calibration images (.png, .jpg) or .npy input tensors.
    #[arg(long, value_name = "DIR")]
    calib: String,
    /// The quantized QDQ model to write.
    #[arg(short = 'o', long = "out", value_name = "OUT.onnx")]
    out: String,
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
    /// Keep these nodes FP32 (comma-separated node names).
    #[arg(long, value_name = "NODE,NODE", value_delimiter = ',')]
    keep_fp32: Vec<String>,
    /// 16-bit input activations for these nodes (comma-separated node names).
    #[arg(long, value_name = "NODE,NODE", value_delimiter = ',')]
    keep_16bit: Vec<String>,
    /// Keep the K most sensitive layers FP32 (16-bit with --mixed-16bit).
    #[arg(long, value_name = "K", default_value_t = 0)]
    auto_mixed: usize,
    /// --auto-mixed moves its layers to 16-bit activations rather than FP32.
    #[arg(long, requires = "auto_mixed")]
    mixed_16bit: bool,
    /// Profile for calibration images (default: MODEL.json beside it, else inferred).
    #[arg(long, value_name = "p.json")]
    profile: Option<String>,
    /// Write the quality report (per layer, JSON).
    #[arg(long, value_name = "r.json")]
    report: Option<String>,
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
    let names = |v: &[String]| v.iter().map(|x| x.trim().to_string()).collect::<Vec<_>>();
    let (model, out, calib_dir) = (&a.model, &a.out, &a.calib);
    let mut opts = PtqOptions {
        method: a.method.unwrap_or(defaults.method),
        per_channel: !a.per_tensor,
        activation: if a.int8_activations { QType::INT8 } else { QType::UINT8 },
        keep_fp32: names(&a.keep_fp32),
        keep_16bit: names(&a.keep_16bit),
        auto_mixed: a.auto_mixed,
        mixed_16bit: a.mixed_16bit,
        equalize: switch(a.equalize, a.no_equalize, defaults.equalize),
        bias_correction: switch(a.bias_correction, a.no_bias_correction, defaults.bias_correction),
        fixed_inputs: Vec::new(),
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
    let bytes = read(Path::new(model))?;
    let mut graph = load_onnx(&bytes).map_err(|e| format!("{model}: {e}"))?;
    // The profile (given, or inferred): how images become inputs, and what a model's inputs
    // besides the image get (`aux_inputs`: D-FINE's `orig_target_sizes`, …).
    let get_profile = |graph: &qplay_core::model::Graph| -> Result<Profile, String> {
        match profile_for(Path::new(model), a.profile.as_deref())? {
            (Some(p), _) => Ok(p),
            (None, _) => Ok(infer_profile_for(graph)
                .map_err(|e| format!("{e}; give --profile, or calibrate with .npy input tensors"))?
                .profile),
        }
    };

    // Calibration inputs: .npy tensors as they are, or images through the model's profile.
    let mut files: Vec<PathBuf> = std::fs::read_dir(calib_dir)
        .map_err(|e| format!("cannot read --calib {calib_dir}: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let is_img = |p: &Path| {
        matches!(
            p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(),
            Some("png" | "jpg" | "jpeg")
        )
    };
    let npys: Vec<&PathBuf> = files.iter().filter(|p| p.extension().is_some_and(|e| e == "npy")).collect();
    let imgs: Vec<&PathBuf> = files.iter().filter(|p| is_img(p)).collect();
    let mut calib: Vec<Tensor> = Vec::new();
    let profile = if !npys.is_empty() {
        for p in &npys {
            calib.push(npy::read_npy(&read(p)?).map_err(|e| format!("{}: {e}", p.display()))?);
        }
        if graph.inputs.len() > 1 {
            Some(get_profile(&graph)?)
        } else {
            None
        }
    } else if !imgs.is_empty() {
        // Photos are fed as float32: a uint8 image input reads them through a Cast.
        qplay_core::model::float_image_inputs(&mut graph);
        let profile = get_profile(&graph)?;
        for p in &imgs {
            let (w, h, rgba) = read_image(p)?;
            let (t, _) = preprocess(&profile, w, h, &rgba).map_err(|e| format!("{}: {e}", p.display()))?;
            debug_assert_eq!(t.shape, input_shape(&profile));
            calib.push(t);
        }
        Some(profile)
    } else {
        return Err(format!(
            "{calib_dir} holds no calibration inputs: put images (.png, .jpg) or input tensors (.npy) there"
        ));
    };
    let input = match (&profile, graph.inputs.as_slice()) {
        (Some(p), _) => {
            // Inputs besides the image: constant in every run, kept as inputs in the export.
            opts.fixed_inputs = aux_tensors(p, &graph.inputs).map_err(|e| format!("{model}: {e}"))?;
            p.input.clone()
        }
        (None, [one]) => one.name.clone(),
        (None, other) => {
            return Err(format!("{model} has {} inputs; quantize needs a single-input model", other.len()))
        }
    };
    let t0 = Instant::now();
    let mut q = if auto {
        quantize_auto(&graph, &input, &calib, &opts, &mut |_| {})
    } else {
        quantize(&graph, &input, &calib, &opts)
    }
    .map_err(|e| e.to_string())?;
    let secs = t0.elapsed().as_secs_f64();
    q.report.fp32_bytes = Some(bytes.len());
    std::fs::write(out, &q.onnx).map_err(|e| format!("cannot write {out}: {e}"))?;
    let r = &q.report;
    println!(
        "{model} → {out}: {} layers int8 ({} kept FP32), {} calibration input(s), method {}, weights {}",
        r.layers.len(),
        r.kept_fp32.len(),
        r.calibration_inputs,
        r.method,
        if r.per_channel { "per channel" } else { "per tensor" }
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
