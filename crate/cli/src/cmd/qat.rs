//! `qplay qat MODEL --calib DIR -o OUT.onnx`: post-training quantization, then
//! quantization-aware fine-tuning against the FP32 model on the same inputs (every fourth held
//! out to check on), keeping the best step.

use super::calib::{load_calibration, BitArgs, Calib, CalibArgs};
use super::common::read;
use qplay_core::model::{load_onnx, save_onnx, Plan, Tensor};
use qplay_core::ops::Registry;
use qplay_core::ptq::{recipe::quantize_auto, PtqOptions};
use qplay_core::train::{fine_tune, QatOptions};
use std::path::Path;

/// `qplay qat`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    io: CalibArgs,
    #[command(flatten)]
    bits: BitArgs,
    /// Optimizer steps.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Adam's step size (scales step this fraction of their size).
    #[arg(long, default_value_t = 3e-5)]
    lr: f32,
    /// Inputs per step.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Held-out check every N steps.
    #[arg(long, value_name = "N", default_value_t = 10)]
    eval_every: usize,
    /// Train on the inputs as they are (default: a random flip, shift and contrast each step).
    #[arg(long)]
    no_augment: bool,
    /// Seed of the augmentation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the training curve (step, loss, held-out SQNR, seconds) as CSV.
    #[arg(long, value_name = "curve.csv")]
    curve: Option<String>,
    /// Write the result (curve, best step, SQNRs, time per step) as JSON.
    #[arg(long, value_name = "r.json")]
    report: Option<String>,
}

pub fn run(a: Args) -> Result<(), String> {
    let CalibArgs { model, calib: calib_dir, out, profile } = &a.io;
    let bytes = read(Path::new(model))?;
    let Calib { graph, inputs, input, fixed } = load_calibration(model, &bytes, calib_dir, profile.as_deref())?;
    if inputs.len() < 2 {
        return Err(format!(
            "{} holds {} input(s): fine-tuning needs at least two (every fourth is held out to check on)",
            calib_dir,
            inputs.len()
        ));
    }
    let held: Vec<bool> =
        (0..inputs.len()).map(|k| k % 4 == 3 || (inputs.len() < 4 && k == inputs.len() - 1)).collect();
    let set = |t: &Tensor| {
        let mut v = vec![(input.clone(), t.clone())];
        v.extend(fixed.iter().cloned());
        v
    };
    let train: Vec<_> = inputs.iter().zip(&held).filter(|(_, h)| !**h).map(|(t, _)| set(t)).collect();
    let held_out: Vec<_> = inputs.iter().zip(&held).filter(|(_, h)| **h).map(|(t, _)| set(t)).collect();
    let calib: Vec<Tensor> = inputs.iter().zip(&held).filter(|(_, h)| !**h).map(|(t, _)| t.clone()).collect();
    let mut opts = PtqOptions { fixed_inputs: fixed.clone(), ..PtqOptions::default() };
    a.bits.apply(&mut opts, false)?;
    let t0 = std::time::Instant::now();
    let q = quantize_auto(&graph, &input, &calib, &opts, &mut |_| {}).map_err(|e| e.to_string())?;
    println!(
        "{}: PTQ ({} layers, {}-bit weights stored {}, {} activations, recipe chosen on held-out inputs) in {:.1} s; fine-tuning on {} input(s), checking on {}",
        model,
        q.report.layers.len(),
        q.report.weight_bits,
        q.report.weight_storage,
        q.report.activation_type,
        t0.elapsed().as_secs_f64(),
        train.len(),
        held_out.len()
    );
    let qopts = QatOptions {
        steps: a.steps,
        lr: a.lr,
        batch: a.batch,
        eval_every: a.eval_every,
        augment: !a.no_augment,
        seed: a.seed,
    };
    let mut progress = |p: &qplay_core::train::CurvePoint| {
        if let Some(db) = p.held_out_sqnr_db {
            let loss = p.loss.map_or(String::from("      —"), |l| format!("{l:.5}"));
            println!("  step {:>4}  loss {loss}  held-out SQNR {db:.2} dB  ({:.1} s)", p.step, p.seconds);
        }
        true
    };
    let ft = fine_tune(&graph, &q.graph, &train, &held_out, &qopts, &mut progress).map_err(|e| e.to_string())?;
    let onnx = save_onnx(&ft.graph, "qplay qat");
    // The export gate: the written model loads and runs.
    let check = load_onnx(&onnx).map_err(|e| format!("internal: the fine-tuned model does not load: {e}"))?;
    Plan::new(&check, &Registry::new(), &[])
        .and_then(|p| p.run(&held_out[0]))
        .map_err(|e| format!("internal: the fine-tuned model does not run: {e}"))?;
    std::fs::write(out, &onnx).map_err(|e| format!("cannot write {out}: {e}"))?;
    println!(
        "  → {}: held-out SQNR {:.2} dB (PTQ {:.2} dB, {:+.2} dB) at step {} of {}; {:.2} s per step (batch {})",
        out,
        ft.qat_sqnr_db,
        ft.ptq_sqnr_db,
        ft.qat_sqnr_db - ft.ptq_sqnr_db,
        ft.best_step,
        ft.curve.len() - 1,
        ft.seconds_per_step,
        a.batch
    );
    if let Some(path) = &a.curve {
        let mut csv = String::from("step,loss,held_out_sqnr_db,seconds\n");
        for p in &ft.curve {
            let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
            csv.push_str(&format!("{},{},{},{:.3}\n", p.step, opt(p.loss), opt(p.held_out_sqnr_db), p.seconds));
        }
        std::fs::write(path, csv).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    if let Some(path) = &a.report {
        let text = serde_json::to_string_pretty(&ft).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}
