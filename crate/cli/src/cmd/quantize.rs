//! `qplay quantize MODEL --calib DIR -o OUT.onnx`: post-training quantization to a QDQ model.

use super::common::{profile_for, read, read_image};
use crate::args::Args;
use qplay_core::detect::{auto::infer_profile_for, aux::aux_tensors, pipeline::input_shape, preprocess, Profile};
use qplay_core::model::{load_onnx, npy, Tensor};
use qplay_core::ptq::{quantize, recipe::quantize_auto, PtqOptions};
use qplay_core::quant::{Calibration, QType};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const USAGE: &str = "qplay quantize MODEL.onnx --calib DIR [--recipe auto|fixed] [--method percentile|minmax|ema|entropy|mse] \
[--per-tensor] [--int8-activations] [--equalize|--no-equalize] [--bias-correction|--no-bias-correction] [--keep-fp32 NODE,NODE] [--keep-16bit NODE,NODE] [--auto-mixed K [--mixed-16bit]] [--profile p.json] -o OUT.onnx [--report r.json]";

pub fn run(argv: &[String]) -> Result<(), String> {
    let a = Args::parse(
        argv,
        &["calib", "recipe", "method", "keep-fp32", "keep-16bit", "auto-mixed", "profile", "o", "out", "report"],
        &[
            "per-tensor",
            "int8-activations",
            "equalize",
            "no-equalize",
            "bias-correction",
            "no-bias-correction",
            "mixed-16bit",
        ],
    )?;
    let defaults = PtqOptions::default();
    let switch = |on: &str, off: &str, default: bool| -> Result<bool, String> {
        match (a.flag(on), a.flag(off)) {
            (true, true) => Err(format!("give --{on} or --{off}, not both")),
            (true, false) => Ok(true),
            (false, true) => Ok(false),
            (false, false) => Ok(default),
        }
    };
    let [model] = a.positional.as_slice() else { return Err("give exactly one model file".into()) };
    let out = a.get("o").or(a.get("out")).ok_or("-o OUT.onnx is required")?.to_string();
    let calib_dir: String = a.req("calib")?;
    let mut opts = PtqOptions {
        method: a
            .get("method")
            .map(Calibration::parse)
            .transpose()
            .map_err(|e| e.to_string())?
            .unwrap_or(defaults.method),
        per_channel: !a.flag("per-tensor"),
        activation: if a.flag("int8-activations") { QType::INT8 } else { QType::UINT8 },
        keep_fp32: a.get("keep-fp32").map(|s| s.split(',').map(|x| x.trim().to_string()).collect()).unwrap_or_default(),
        keep_16bit: a
            .get("keep-16bit")
            .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
            .unwrap_or_default(),
        auto_mixed: a.opt("auto-mixed")?.unwrap_or(0),
        mixed_16bit: a.flag("mixed-16bit"),
        equalize: switch("equalize", "no-equalize", defaults.equalize)?,
        bias_correction: switch("bias-correction", "no-bias-correction", defaults.bias_correction)?,
        fixed_inputs: Vec::new(),
    };
    // The recipe (observer, equalization, bias correction) is chosen by measurement unless the
    // user sets any part of it (or says --recipe fixed: the defaults as they are).
    let recipe_flags = ["method", "equalize", "no-equalize", "bias-correction", "no-bias-correction"];
    let set: Vec<&str> = recipe_flags.iter().copied().filter(|f| a.get(f).is_some() || a.flag(f)).collect();
    let auto = match a.get("recipe") {
        None => set.is_empty(),
        Some("auto") if set.is_empty() => true,
        Some("auto") => {
            return Err(format!(
                "--recipe auto chooses the observer, equalization and bias correction itself: drop --{}, or use --recipe fixed",
                set.join(", --")
            ))
        }
        Some("fixed") => false,
        Some(other) => return Err(format!("--recipe {other}: use auto (chosen by measurement) or fixed")),
    };
    let bytes = read(Path::new(model))?;
    let mut graph = load_onnx(&bytes).map_err(|e| format!("{model}: {e}"))?;
    // The profile (given, or inferred): how images become inputs, and what a model's inputs
    // besides the image get (`aux_inputs`: D-FINE's `orig_target_sizes`, …).
    let get_profile = |graph: &qplay_core::model::Graph| -> Result<Profile, String> {
        match profile_for(Path::new(model), a.get("profile"))? {
            (Some(p), _) => Ok(p),
            (None, _) => Ok(infer_profile_for(graph)
                .map_err(|e| format!("{e}; give --profile, or calibrate with .npy input tensors"))?
                .profile),
        }
    };

    // Calibration inputs: .npy tensors as they are, or images through the model's profile.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&calib_dir)
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
    std::fs::write(&out, &q.onnx).map_err(|e| format!("cannot write {out}: {e}"))?;
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
    if let Some(rp) = a.get("report") {
        let mut v = serde_json::to_value(r).map_err(|e| e.to_string())?;
        v["quantize_seconds"] = serde_json::json!(secs);
        std::fs::write(rp, serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?)
            .map_err(|e| format!("cannot write {rp}: {e}"))?;
    }
    Ok(())
}
