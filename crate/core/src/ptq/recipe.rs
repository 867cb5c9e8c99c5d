//! Choosing the quantization recipe per model, by measurement.
//!
//! No single recipe is best for every model: cross-layer equalization gains 9 dB on the person
//! detector and costs 6 dB on a MediaPipe SSD (issue #12), and so a fixed default can make a
//! model worse than plain per-channel MinMax. [`quantize_auto`] holds out part of the
//! calibration set, quantizes with each [`CANDIDATES`] recipe on the rest (without the report's
//! measurements), scores each by the **worst** output SQNR against FP32 on the held-out inputs,
//! and quantizes with the winner on every input. The plain recipe is a candidate, so the choice
//! is never worse than it on the held-out inputs; on a tie (within 0.05 dB) the earlier, simpler
//! candidate wins.
//!
//! Held out: every third input (inputs 3, 6, …); with two inputs, the second; with one, the
//! candidates are scored on the input they were calibrated on (said in the note).

use super::{output_sqnr, quantize_inner, tell, Progress, PtqOptions, Quantized};
use crate::model::{Graph, Plan, Tensor};
use crate::ops::Registry;
use crate::quant::Calibration;
use crate::Error;
use serde::Serialize;
use std::collections::BTreeMap;

/// One recipe: the observer and the two graph-level corrections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recipe {
    /// Short name for reports (`minmax`, `mse+cle+bc`, …).
    pub name: &'static str,
    /// Activation observer.
    pub method: Calibration,
    /// Cross-layer equalization.
    pub equalize: bool,
    /// Empirical bias correction.
    pub bias_correction: bool,
}

/// The recipes tried, simplest first: plain per-channel MinMax (what onnxruntime's
/// `quantize_static` does), then MSE ranges with bias correction, with and without
/// equalization.
pub const CANDIDATES: [Recipe; 3] = [
    Recipe { name: "minmax", method: Calibration::MinMax, equalize: false, bias_correction: false },
    Recipe { name: "mse+bc", method: Calibration::Mse, equalize: false, bias_correction: true },
    Recipe { name: "mse+cle+bc", method: Calibration::Mse, equalize: true, bias_correction: true },
];

/// A candidate's score.
#[derive(Debug, Clone, Serialize)]
pub struct RecipeScore {
    /// [`Recipe::name`].
    pub recipe: &'static str,
    /// Observer name.
    pub method: &'static str,
    /// Cross-layer equalization on?
    pub equalize: bool,
    /// Bias correction on?
    pub bias_correction: bool,
    /// SQNR (dB) of each graph output against FP32 on the held-out inputs.
    pub held_out_sqnr_db: BTreeMap<String, f64>,
    /// The lowest of those: the score.
    pub worst_db: f64,
}

/// What the search tried and chose.
#[derive(Debug, Clone, Serialize)]
pub struct RecipeChoice {
    /// The winning recipe's name.
    pub chosen: &'static str,
    /// Inputs the candidates were calibrated on.
    pub calibration_inputs: usize,
    /// Inputs they were scored on.
    pub held_out_inputs: usize,
    /// Every candidate, in [`CANDIDATES`] order.
    pub scores: Vec<RecipeScore>,
    /// One sentence for the user.
    pub note: String,
}

/// Splits the calibration inputs into (calibrate, held out).
fn split(calib: &[Tensor]) -> (Vec<Tensor>, Vec<Tensor>, bool) {
    match calib.len() {
        0 | 1 => (calib.to_vec(), calib.to_vec(), false),
        2 => (vec![calib[0].clone()], vec![calib[1].clone()], true),
        _ => {
            let (mut fit, mut held) = (Vec::new(), Vec::new());
            for (k, x) in calib.iter().enumerate() {
                if k % 3 == 2 { &mut held } else { &mut fit }.push(x.clone());
            }
            (fit, held, true)
        }
    }
}

/// Scores every candidate on held-out inputs and returns the options of the best one (the
/// fields of `base` other than method, equalization and bias correction are kept).
pub fn choose(
    graph: &Graph,
    input: &str,
    calib: &[Tensor],
    base: &PtqOptions,
    progress: &mut Progress<'_>,
) -> Result<(PtqOptions, RecipeChoice), Error> {
    let (fit, held, separate) = split(calib);
    if fit.is_empty() {
        return Err(crate::quant::QuantError::NoCalibrationData.into());
    }
    let registry = Registry::new();
    let plan = Plan::new(
        &*super::bound(graph, &base.fixed_inputs)?,
        &registry,
        &[(input.to_string(), held[0].shape.clone())],
    )?;
    let fp32: Vec<Vec<Tensor>> =
        crate::parallel::try_map(held.len(), |i| plan.run(&[(input.to_string(), held[i].clone())]))?;
    let mut scores = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    for (k, r) in CANDIDATES.iter().enumerate() {
        let stage = format!("choosing the recipe: {} ({} of {})", r.name, k + 1, CANDIDATES.len());
        tell(progress, &stage)?;
        let opts =
            PtqOptions { method: r.method, equalize: r.equalize, bias_correction: r.bias_correction, ..base.clone() };
        // The candidate's own stages, under this one's name (a Cancel stops it there too).
        let q: Quantized =
            quantize_inner(graph, input, &fit, &opts, &mut |s| progress(&format!("{stage}: {s}")), false)?;
        let db = output_sqnr(&*super::bound(&q.graph, &base.fixed_inputs)?, input, &held, &fp32, &registry)?;
        let worst = db.values().copied().fold(f64::INFINITY, f64::min);
        if best.is_none_or(|(_, b)| worst > b + 0.05) {
            best = Some((k, worst));
        }
        scores.push(RecipeScore {
            recipe: r.name,
            method: r.method.name(),
            equalize: r.equalize,
            bias_correction: r.bias_correction,
            held_out_sqnr_db: db,
            worst_db: worst,
        });
    }
    let (k, worst) = best.unwrap_or((0, f64::NAN));
    let r = CANDIDATES[k];
    let note = format!(
        "recipe `{}` chosen by measurement: worst output SQNR {:.1} dB on {} held-out input(s) ({}), against {}",
        r.name,
        worst,
        held.len(),
        if separate { "not used to calibrate the candidates" } else { "the only input, also used to calibrate" },
        scores
            .iter()
            .filter(|s| s.recipe != r.name)
            .map(|s| format!("{} {:.1} dB", s.recipe, s.worst_db))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let opts =
        PtqOptions { method: r.method, equalize: r.equalize, bias_correction: r.bias_correction, ..base.clone() };
    Ok((
        opts,
        RecipeChoice { chosen: r.name, calibration_inputs: fit.len(), held_out_inputs: held.len(), scores, note },
    ))
}

/// Quantizes with the recipe [`choose`] picks, calibrated on every input, with the full report;
/// `report.recipe` says what was tried.
pub fn quantize_auto(
    graph: &Graph,
    input: &str,
    calib: &[Tensor],
    base: &PtqOptions,
    progress: &mut Progress<'_>,
) -> Result<Quantized, Error> {
    let (opts, choice) = choose(graph, input, calib, base, progress)?;
    let mut q = quantize_inner(graph, input, calib, &opts, progress, true)?;
    q.report.notes.insert(0, choice.note.clone());
    q.report.recipe = Some(choice);
    Ok(q)
}
