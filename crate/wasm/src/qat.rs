//! Quantization-aware fine-tuning in the worker, one step per call so the worker can run frames,
//! pause and cancel between steps: `new` with the FP32 model, its QDQ (PTQ) model and the
//! profile; `addImage` per calibration image; `start`; then `step` until `done`; `currentOnnx`
//! for the newest weights (the INT8 pane), `result` and `bestOnnx` for the step kept.

use crate::{err, to_js};
use qplay_core::detect::agreement::{finds_objects, outputs_map};
use qplay_core::detect::{aux::aux_tensors, preprocess, Profile};
use qplay_core::model::{float_image_inputs, load_model, load_onnx, save_onnx_as_loaded, Graph, Tensor};
use qplay_core::train::fine_tune::{held_out_split_among, Evaluator, FineTune, QatOptions};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

/// Fine-tuning a quantized detector against its FP32 model.
#[wasm_bindgen]
pub struct WasmQat {
    fp32: Graph,
    qdq: Graph,
    profile: Profile,
    images: Vec<Tensor>,
    run: Option<FineTune>,
}

/// `start`'s options (the page's names).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    steps: usize,
    lr: f32,
    batch: usize,
    eval_every: usize,
    #[serde(default = "yes")]
    augment: bool,
    #[serde(default = "one")]
    seed: u64,
    /// The per-layer feature term's weight (default: the core's for the model's weight width).
    #[serde(default)]
    feature_weight: Option<f32>,
    /// The mixup share (default: the core's for the model's weight width).
    #[serde(default)]
    mix: Option<f32>,
    /// Weights step by their grid (default: the core's for the model's weight width).
    #[serde(default)]
    grid_steps: Option<bool>,
    /// The activations' scales train (default: the core's for the model's weight width).
    #[serde(default)]
    activation_scales: Option<bool>,
}

fn yes() -> bool {
    true
}

fn one() -> u64 {
    1
}

#[wasm_bindgen]
impl WasmQat {
    /// Fine-tuning of `qdq` (the PTQ model's bytes) against `fp32` (the model's bytes), images
    /// pre-processed with the profile (JSON text; inferred from `fp32` when `undefined`).
    #[wasm_bindgen(constructor)]
    pub fn new(fp32: &[u8], qdq: &[u8], profile_json: Option<String>) -> Result<WasmQat, JsValue> {
        let mut fp32 = load_model(fp32).map_err(err)?;
        float_image_inputs(&mut fp32);
        let qdq = load_onnx(qdq).map_err(err)?;
        let profile = match profile_json {
            Some(j) => Profile::from_json(&j).map_err(err)?,
            None => qplay_core::detect::infer_profile_for(&fp32).map_err(err)?.profile,
        };
        Ok(WasmQat { fp32, qdq, profile, images: Vec::new(), run: None })
    }

    /// Adds one image (RGBA) to train or check on; returns how many there are.
    #[wasm_bindgen(js_name = addImage)]
    pub fn add_image(&mut self, width: usize, height: usize, rgba: &[u8]) -> Result<usize, JsValue> {
        let (t, _) = preprocess(&self.profile, width, height, rgba).map_err(err)?;
        self.images.push(t);
        Ok(self.images.len())
    }

    /// Splits the images (every fourth the FP32 model finds objects on held out to check on), runs the FP32 model on the
    /// held-out ones and checks the PTQ model: returns `{point, train, heldOut}`, the curve's
    /// step 0. `options`: `{steps, lr, batch, evalEvery, augment?, seed?}`.
    pub fn start(&mut self, options: JsValue) -> Result<JsValue, JsValue> {
        let o: Options =
            serde_wasm_bindgen::from_value(options).map_err(|e| err(format!("bad fine-tuning options: {e}")))?;
        if self.images.len() < 2 {
            return Err(crate::coded(
                "bad-input",
                format!(
                    "fine-tuning needs at least two images (one is held out to check on); it has {}: add calibration images",
                    self.images.len()
                ),
            ));
        }
        let fixed = aux_tensors(&self.profile, &self.fp32.inputs).map_err(err)?;
        let set = |t: &Tensor| {
            let mut v = vec![(self.profile.input.clone(), t.clone())];
            v.extend(fixed.iter().cloned());
            v
        };
        let inputs: Vec<_> = self.images.iter().map(set).collect();
        let names: Vec<String> = self.fp32.outputs.iter().map(|v| v.name.clone()).collect();
        // Held out: every fourth image the FP32 model finds objects on (so agreement is defined).
        let profile = &self.profile;
        // And how many of the training images have detections (none: the heads learn only the
        // background, and the page says so).
        let train_with_objects = std::cell::Cell::new(0);
        let hold_out = |want: &[Vec<Tensor>]| {
            let useful = finds_objects(profile, &names, want);
            let held = held_out_split_among(&useful);
            train_with_objects.set(useful.iter().zip(&held).filter(|(u, h)| **u && !**h).count());
            held
        };
        let bits = qplay_core::train::qat::weight_bits(&self.qdq);
        let opts = QatOptions {
            steps: o.steps,
            lr: o.lr,
            batch: o.batch,
            eval_every: o.eval_every,
            augment: o.augment,
            seed: o.seed,
            feature_weight: o.feature_weight.unwrap_or_else(|| QatOptions::default_feature_weight(bits)),
            mix: o.mix.unwrap_or_else(|| QatOptions::default_mix(bits)),
            grid_steps: o.grid_steps.unwrap_or_else(|| QatOptions::default_grid_steps(bits)),
            activation_scales: o.activation_scales.unwrap_or_else(|| QatOptions::default_activation_scales(bits)),
        };
        let (p, n) = (self.profile.clone(), names.clone());
        let evaluator: Evaluator = Box::new(move |got, want| outputs_map(&p, &n, got, want));
        let clock = crate::detector::now_fn();
        let run = FineTune::new(
            &self.fp32,
            &self.qdq,
            inputs,
            &hold_out,
            &opts,
            Box::new(move || clock() / 1000.0),
            Some(evaluator),
        )
        .map_err(err)?;
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Started<'a> {
            point: &'a qplay_core::train::CurvePoint,
            train: usize,
            held_out: usize,
            train_with_objects: usize,
        }
        let (train, held_out) = run.split();
        let out =
            to_js(&Started { point: &run.curve()[0], train, held_out, train_with_objects: train_with_objects.get() });
        self.run = Some(run);
        out
    }

    fn running(&mut self) -> Result<&mut FineTune, JsValue> {
        self.run.as_mut().ok_or_else(|| err("fine-tuning has not started: call start first"))
    }

    /// One optimizer step; returns its curve point `{step, loss, held_out_sqnr_db, agreement,
    /// lr, seconds}` (the last three only at held-out checks). After an error the weights are
    /// those before the step.
    pub fn step(&mut self) -> Result<JsValue, JsValue> {
        let p = self.running()?.step().map_err(err)?;
        to_js(&p)
    }

    /// Whether every step has been taken.
    pub fn done(&self) -> bool {
        self.run.as_ref().is_some_and(FineTune::done)
    }

    /// The QDQ model with the newest weights, as ONNX bytes.
    #[wasm_bindgen(js_name = currentOnnx)]
    pub fn current_onnx(&mut self) -> Result<Vec<u8>, JsValue> {
        let g = self.running()?.current().map_err(err)?;
        Ok(save_onnx_as_loaded(&g, "qplay qat"))
    }

    /// The step kept so far: `{best_step, ptq_sqnr_db, qat_sqnr_db, seconds_per_step, curve}`.
    pub fn result(&mut self) -> Result<JsValue, JsValue> {
        let r = self.running()?.best().map_err(err)?;
        to_js(&r)
    }

    /// The step kept so far and its held-out SQNR, `[step, dB]` (cheap: no figures computed).
    #[wasm_bindgen(js_name = bestStep)]
    pub fn best_step(&mut self) -> Result<Vec<f64>, JsValue> {
        let (step, db) = self.running()?.best_step();
        Ok(vec![step as f64, db])
    }

    /// The kept step's QDQ model, as ONNX bytes (the download).
    #[wasm_bindgen(js_name = bestOnnx)]
    pub fn best_onnx(&mut self) -> Result<Vec<u8>, JsValue> {
        let g = self.running()?.best_graph().map_err(err)?;
        Ok(save_onnx_as_loaded(&g, "qplay qat"))
    }
}
