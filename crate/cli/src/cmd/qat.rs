//! `qplay qat MODEL --calib DIR -o OUT.onnx`: post-training quantization, then
//! quantization-aware fine-tuning against the FP32 model on the same inputs (every fourth held
//! out to check on), keeping the best step.

use super::calib::{load_calibration, BitArgs, Calib, CalibArgs, MixArgs};
use super::common::read_model;
use qplay_core::detect::agreement::{finds_objects, outputs_map};
use qplay_core::model::{float_image_inputs, load_onnx, save_onnx_as_loaded, Plan, Tensor};
use qplay_core::ops::Registry;
use qplay_core::ptq::{recipe::quantize_auto, PtqOptions};
use qplay_core::train::fine_tune::{fine_tune, held_out_split, held_out_split_among, Evaluator, QatOptions};
use std::path::Path;

/// `qplay qat`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    io: CalibArgs,
    #[command(flatten)]
    bits: BitArgs,
    /// Layers kept FP32 or at 16-bit activations in the PTQ start (and so in training).
    #[command(flatten)]
    mixed: MixArgs,
    /// Optimizer steps.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Adam's step size (scales step this fraction of their size); default 1e-4 for 8-bit
    /// weights (3e-5 with --gptq), 1e-3 below.
    #[arg(long)]
    lr: Option<f32>,
    /// Inputs per step.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Held-out check every N steps.
    #[arg(long, value_name = "N", default_value_t = 10)]
    eval_every: usize,
    /// Train on the inputs as they are (default: a random flip, crop, shift and colour change each step).
    #[arg(long)]
    no_augment: bool,
    /// Seed of the augmentation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Weight of the per-layer feature term: the quantized activations pulled towards the FP32
    /// model's (0: the outputs only). Default: 1 at 8-bit weights, 0 below.
    #[arg(long, value_name = "W")]
    feature_weight: Option<f32>,
    /// Share of the augmented training copies blended with a copy of another photo (mixup of
    /// the inputs, λ in 0.3–0.7; the FP32 model sees the same blend), 0 to 1. Default: 1 below
    /// 8-bit weights, 0 at 8.
    #[arg(long, value_name = "P")]
    mix: Option<f32>,
    /// Each weight steps by its channel's quantization step (over the median one), so every
    /// channel moves by a like share of its grid. Default: on below 8-bit weights.
    #[arg(long, conflicts_with = "no_grid_steps")]
    grid_steps: bool,
    /// Every weight steps by the step size alone (the default at 8-bit weights).
    #[arg(long)]
    no_grid_steps: bool,
    /// The activations' quantization scales train too (LSQ). Default: at 8-bit weights; below, they keep their PTQ values.
    #[arg(long, conflicts_with = "no_activation_scales")]
    activation_scales: bool,
    /// The activations' scales keep their PTQ values (the weights, their scales and the biases
    /// still train).
    #[arg(long)]
    no_activation_scales: bool,
    /// Write the training curve (step, loss, held-out SQNR, seconds) as CSV.
    #[arg(long, value_name = "curve.csv")]
    curve: Option<String>,
    /// Also write the PTQ model fine-tuning started from (`qplay quantize`'s on the same inputs,
    /// byte for byte), to compare the two on other photos with `qplay compare`.
    #[arg(long, value_name = "PTQ.onnx")]
    ptq_out: Option<String>,
    /// Write the result (curve, best step, SQNRs, time per step) as JSON.
    #[arg(long, value_name = "r.json")]
    report: Option<String>,
    #[command(flatten)]
    pub threads: crate::threads::ThreadArgs,
}

pub fn run(a: Args) -> Result<(), String> {
    if let Some(p) = a.mix.filter(|p| !(0.0..=1.0).contains(p)) {
        return Err(format!("--mix {p}: give a share between 0 (no blending) and 1 (every training copy blended)"));
    }
    let CalibArgs { model, calib: calib_dir, out, profile } = &a.io;
    if a.ptq_out.as_deref().is_some_and(|p| same_path(Path::new(p), Path::new(out))) {
        return Err(format!("--ptq-out {out} is the file -o writes the fine-tuned model to: give it another path"));
    }
    let bytes = read_model(Path::new(model))?;
    let Calib { graph, inputs, input, fixed, profile } =
        load_calibration(model, &bytes, calib_dir, profile.as_deref())?;
    // Said before the FP32 runs and the warnings about what they find.
    qplay_core::ptq::refuse_integer_models(&graph).map_err(|e| e.to_string())?;
    if inputs.len() < 2 {
        return Err(format!(
            "{} holds {} input(s): fine-tuning needs at least two (every fourth is held out to check on)",
            calib_dir,
            inputs.len()
        ));
    }
    let set = |t: &Tensor| {
        let mut v = vec![(input.clone(), t.clone())];
        v.extend(fixed.iter().cloned());
        v
    };
    let names: Vec<String> = graph.outputs.iter().map(|o| o.name.clone()).collect();
    // Held out: every fourth input the FP32 model finds objects on (so agreement is defined).
    let split = |want: &[Vec<Tensor>]| match &profile {
        Some(p) => held_out_split_among(&finds_objects(p, &names, want)),
        None => held_out_split(want.len()),
    };
    // Dynamic dims (a batch of `?`) take the inputs' own sizes.
    let shapes: Vec<(String, Vec<usize>)> = set(&inputs[0]).into_iter().map(|(n, t)| (n, t.shape)).collect();
    let teacher = Plan::new(&graph, &Registry::new(), &shapes).map_err(|e| format!("{model}: {e}"))?;
    let want: Vec<Vec<Tensor>> =
        inputs.iter().map(|t| teacher.run(&set(t))).collect::<Result<_, _>>().map_err(|e| format!("{model}: {e}"))?;
    drop(teacher);
    let held = split(&want);
    if let Some(p) = &profile {
        let useful = finds_objects(p, &names, &want);
        if !useful.iter().zip(&held).any(|(u, h)| *u && !*h) {
            eprintln!(
                "warning: the FP32 model finds no objects on the {} training input(s): fine-tuning then sees only background and may lose detections elsewhere; add images with the objects you detect",
                held.iter().filter(|h| !**h).count()
            );
        }
    }
    let n_held = held.iter().filter(|h| **h).count();
    let n_train = inputs.len() - n_held;
    let mut opts = PtqOptions { fixed_inputs: fixed.clone(), ..PtqOptions::default() };
    a.bits.apply(&mut opts, false)?;
    a.mixed.apply(&mut opts);
    let t0 = std::time::Instant::now();
    // The start is `qplay quantize` on every input, as in the page (fine-tuning starts from the
    // model Quantize made), so step 0 is exactly the PTQ the user would get: the held-out
    // inputs check the steps, and a start calibrated on fewer inputs is a worse PTQ.
    let q = qplay_core::parallel::on_pool(|| {
        quantize_auto(&graph, &input, &inputs, &opts, &mut |_| std::ops::ControlFlow::Continue(()))
    })
    .map_err(|e| e.to_string())?;
    let gptq = q.report.weight_rounding == "gptq";
    // Written before training: a bad path fails at once, and the start stays if training fails.
    if let Some(path) = &a.ptq_out {
        std::fs::write(path, &q.onnx).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    println!(
        "{}: PTQ ({} layers{}, {}-bit weights{} stored {} (rounded {}), {} activations, recipe chosen on held-out inputs) in {:.1} s; fine-tuning on {} input(s), checking on {}",
        model,
        q.report.layers.len(),
        match q.report.kept_fp32.len() {
            0 => String::new(),
            k => format!(", {k} kept FP32"),
        },
        q.report.weight_bits,
        match q.report.layers.iter().filter(|l| l.weight_bits != q.report.weight_bits).count() {
            0 => String::new(),
            k => format!(" ({k} of them at their own width)"),
        },
        q.report.weight_storage,
        if gptq { "by GPTQ" } else { "to nearest" },
        q.report.activation_type,
        t0.elapsed().as_secs_f64(),
        n_train,
        n_held
    );
    let qopts = QatOptions {
        steps: a.steps,
        lr: a.lr.unwrap_or_else(|| QatOptions::default_lr(a.bits.weight_bits, gptq)),
        batch: a.batch,
        eval_every: a.eval_every,
        augment: !a.no_augment,
        seed: a.seed,
        feature_weight: a.feature_weight.unwrap_or_else(|| QatOptions::default_feature_weight(a.bits.weight_bits)),
        mix: a.mix.unwrap_or_else(|| QatOptions::default_mix(a.bits.weight_bits)),
        grid_steps: a.grid_steps || (!a.no_grid_steps && QatOptions::default_grid_steps(a.bits.weight_bits)),
        activation_scales: a.activation_scales
            || (!a.no_activation_scales && QatOptions::default_activation_scales(a.bits.weight_bits)),
    };
    let mut progress = |p: &qplay_core::train::CurvePoint| {
        if let Some(db) = p.held_out_sqnr_db {
            let loss = p.loss.map_or(String::from("      —"), |l| format!("{l:.5}"));
            let agree = p.agreement.map_or(String::new(), |a| format!("  agreement mAP@0.5 {a:.3}"));
            println!("  step {:>4}  loss {loss}  held-out SQNR {db:.2} dB{agree}  ({:.1} s)", p.step, p.seconds);
        }
        true
    };
    // Detection agreement with the FP32 model on the held-out images, at each check.
    let evaluator: Option<Evaluator> = profile.clone().map(|p| {
        let names = names.clone();
        Box::new(move |got: &[Vec<Tensor>], want: &[Vec<Tensor>]| outputs_map(&p, &names, got, want)) as Evaluator
    });
    let first_held = inputs.iter().zip(&held).find(|(_, h)| **h).map(|(t, _)| set(t));
    let all: Vec<_> = inputs.iter().map(set).collect();
    let fixed_split = move |_: &[Vec<Tensor>]| held.clone();
    let ft =
        fine_tune(&graph, &q.graph, all, &fixed_split, &qopts, evaluator, &mut progress).map_err(|e| e.to_string())?;
    let onnx = save_onnx_as_loaded(&ft.graph, "qplay qat");
    // The export gate: the written model loads and runs (its image inputs fed as qplay feeds them).
    let mut check = load_onnx(&onnx).map_err(|e| format!("internal: the fine-tuned model does not load: {e}"))?;
    float_image_inputs(&mut check);
    Plan::new(&check, &Registry::new(), &shapes)
        .and_then(|p| p.run(first_held.as_deref().unwrap_or_default()))
        .map_err(|e| format!("internal: the fine-tuned model does not run: {e}"))?;
    std::fs::write(out, &onnx).map_err(|e| format!("cannot write {out}: {e}"))?;
    println!(
        "  → {}: held-out SQNR {:.2} dB (PTQ {:.2} dB, {:+.2} dB){} at step {} of {}; {:.2} s per step (batch {})",
        out,
        ft.qat_sqnr_db,
        ft.ptq_sqnr_db,
        ft.qat_sqnr_db - ft.ptq_sqnr_db,
        ft.curve
            .iter()
            .find(|p| p.step == ft.best_step)
            .and_then(|p| p.agreement)
            .map_or(String::new(), |a| format!(", agreement mAP@0.5 {a:.3}")),
        ft.best_step,
        ft.curve.len() - 1,
        ft.seconds_per_step,
        a.batch
    );
    let fell = ft.best_step == 0
        && ft.curve.iter().any(|p| p.step > 0 && p.held_out_sqnr_db.is_some_and(|db| db < ft.ptq_sqnr_db));
    if fell {
        println!("  {}", fell_hint(q.report.weight_bits, gptq, qopts.lr, qopts.feature_weight));
    }
    if !ft.layers.is_empty() && ft.best_step > 0 {
        // The median: a layer the PTQ model computes exactly (150 dB) would swamp a mean.
        let median = |f: fn(&qplay_core::train::fine_tune::LayerSqnr) -> f64| {
            let mut v: Vec<f64> = ft.layers.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0
        };
        let better = ft.layers.iter().filter(|l| l.qat_sqnr_db > l.ptq_sqnr_db).count();
        let worst = ft.layers.iter().min_by(|a, b| a.qat_sqnr_db.total_cmp(&b.qat_sqnr_db));
        println!(
            "  per layer ({} quantized activations against the FP32 model's, held out): median SQNR {:.2} → {:.2} dB, higher in {better}{}",
            ft.layers.len(),
            median(|l| l.ptq_sqnr_db),
            median(|l| l.qat_sqnr_db),
            worst.map_or(String::new(), |w| format!("; lowest {} ({:.2} → {:.2} dB)", w.tensor, w.ptq_sqnr_db, w.qat_sqnr_db)),
        );
    }
    if !ft.frozen_at.is_empty() {
        println!(
            "  the layers reached only through {} kept their quantized values: no backward there yet",
            ft.frozen_at.join(", ")
        );
    }
    if !ft.targets.replaced.is_empty() {
        println!(
            "  the loss compares {} raw tensor(s) ({}) in place of the post-processed output(s) {} (values selected inside the graph)",
            ft.targets.extra.len(),
            ft.targets.extra.join(", "),
            ft.targets.replaced.join(", ")
        );
    }
    if !qopts.activation_scales {
        println!("  trained: the weights, their scales and the biases; the activation scales kept their PTQ values (--activation-scales trains them too)");
    }
    if !ft.feature_tensors.is_empty() {
        println!(
            "  the loss: the outputs and {} quantized activations (feature weight {})",
            ft.feature_tensors.len(),
            qopts.feature_weight
        );
    }
    if let Some(path) = &a.curve {
        let mut csv = String::from("step,loss,held_out_sqnr_db,agreement,lr,seconds\n");
        for p in &ft.curve {
            let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
            let lr = p.lr.map_or(String::new(), |v| format!("{v}"));
            csv.push_str(&format!(
                "{},{},{},{},{lr},{:.3}\n",
                p.step,
                opt(p.loss),
                opt(p.held_out_sqnr_db),
                opt(p.agreement),
                p.seconds
            ));
        }
        std::fs::write(path, csv).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    if let Some(path) = &a.report {
        let text = serde_json::to_string_pretty(&ft).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}

/// Whether two output paths name one file: the same name in the same folder, the folders
/// resolved where they exist (`./x.onnx` and `x.onnx`, or through `..`).
fn same_path(a: &Path, b: &Path) -> bool {
    let folder = |p: &Path| {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
    };
    a.file_name() == b.file_name() && folder(a) == folder(b)
}

/// What to try when every held-out check fell (the page's `fellHint` says the same): a smaller
/// `--lr`, except from GPTQ's rounding below 8 bits at the default step or below, where a smaller
/// one fell too on the sample photos (docs/measurements.md).
fn fell_hint(bits: u8, gptq: bool, lr: f32, feature_weight: f32) -> String {
    let head = "the held-out SQNR fell as it trained, so the file is the PTQ model";
    if bits < 8 && gptq && lr <= QatOptions::default_lr(bits, gptq) {
        return format!(
            "{head}: GPTQ's {bits}-bit rounding leaves fine-tuning little to find (on the sample photos a --lr ten times smaller fell too), so the PTQ model is the one to use; more images with the objects may give fine-tuning more to learn from"
        );
    }
    format!(
        "{head}: try a smaller --lr (e.g. {:.0e}){}, or more images with the objects",
        lr / 3.0,
        if feature_weight > 0.0 { " or --feature-weight 0" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::fell_hint;

    #[test]
    fn a_smaller_step_is_advised_except_from_gptqs_narrow_codes_at_the_default() {
        assert!(fell_hint(4, true, 1e-3, 0.0).contains("GPTQ's 4-bit rounding leaves fine-tuning little to find"));
        assert!(fell_hint(4, true, 1e-2, 0.0).contains("try a smaller --lr (e.g. 3e-3), or more"));
        assert!(fell_hint(4, false, 1e-3, 0.0).contains("try a smaller --lr (e.g. 3e-4)"));
        assert!(fell_hint(8, true, 3e-5, 1.0).contains("try a smaller --lr (e.g. 1e-5) or --feature-weight 0"));
    }
}
