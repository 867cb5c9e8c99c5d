//! Models and detection across the wasm boundary. A `WasmDetector` lives in the Web Worker; the
//! page sends RGBA frames and gets detections back. The three stages are separate calls so the
//! worker can time each with `performance.now()`.

use crate::{err, to_js, WasmGpu};
use qplay_core::detect::{Detector, Profile, Transform};
use qplay_core::model::{load_model, Summary, Tensor};
use qplay_core::ops::Registry;
use serde::Serialize;
use std::cell::RefCell;
use std::ops::ControlFlow;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The model summary (inputs, outputs, op histogram, parameters, unsupported ops) without
/// planning: works for models qplay cannot run, so the page can say why.
#[wasm_bindgen(js_name = inspectModel)]
pub fn inspect_model(onnx: &[u8]) -> Result<JsValue, JsValue> {
    let g = load_model(onnx).map_err(err)?;
    to_js(&Summary::of(&g, &Registry::new()))
}

/// A model (ONNX or TFLite; a full-integer TFLite model in QDQ form, or with `integer` in
/// ONNX's integer form) written as ONNX, checked by running it back
/// ([`qplay_core::model::convert_file_to_onnx`], [`qplay_core::model::convert_file_to_integer_onnx`]):
/// `{ onnx: Uint8Array, check: string }`.
#[wasm_bindgen(js_name = convertToOnnx)]
pub fn convert_to_onnx(model: &[u8], integer: bool) -> Result<JsValue, JsValue> {
    let c = if integer {
        qplay_core::model::convert_file_to_integer_onnx(model)
    } else {
        qplay_core::model::convert_file_to_onnx(model)
    }
    .map_err(err)?;
    let out = js_sys::Object::new();
    js_sys::Reflect::set(&out, &"onnx".into(), &js_sys::Uint8Array::from(&c.onnx[..]))?;
    js_sys::Reflect::set(&out, &"check".into(), &c.check.into())?;
    Ok(out.into())
}

type Outputs = (Vec<(String, Tensor)>, Transform);
type Detections = Vec<qplay_core::detect::Detection>;

/// A loaded, planned detector with a reusable frame state. Inference runs on the CPU
/// (`infer`) or, after `useGpu`, on the GPU (`inferGpu`, async); pre-processing and decoding
/// run on the CPU either way.
#[wasm_bindgen]
pub struct WasmDetector {
    inner: Detector,
    input: Option<(Tensor, Transform)>,
    /// Shared with a running `inferGpu` future, which stores its result here.
    output: Rc<RefCell<Option<Outputs>>>,
    /// The plan on the GPU; taken out by a running `inferGpu` and put back when it ends.
    gpu: crate::gpu::GpuCell,
    /// What was odd about the last decoded detections ([`Detector::score_warning`]).
    score_warning: Option<String>,
}

#[derive(Serialize)]
struct Info<'a> {
    summary: &'a Summary,
    profile: &'a Profile,
    assumed: &'a [String],
    alternatives: &'a [qplay_core::detect::auto::Alternative],
    supported_ops: Vec<&'static str>,
}

#[wasm_bindgen]
impl WasmDetector {
    /// Loads ONNX bytes with a profile (JSON text) or, with `undefined`, an inferred one.
    #[wasm_bindgen(constructor)]
    pub fn new(onnx: &[u8], profile_json: Option<String>) -> Result<WasmDetector, JsValue> {
        let profile = profile_json.map(|j| Profile::from_json(&j)).transpose().map_err(err)?;
        let inner = Detector::new(onnx, profile).map_err(err)?;
        Ok(WasmDetector { inner, input: None, output: Rc::default(), gpu: Rc::default(), score_warning: None })
    }

    /// `{summary, profile, assumed, supported_ops}`.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        to_js(&Info {
            summary: self.inner.summary(),
            profile: self.inner.profile(),
            assumed: self.inner.assumed(),
            alternatives: self.inner.alternatives(),
            supported_ops: Registry::new().op_types(),
        })
    }

    /// When the profile was inferred and the file does not say how pixels are scaled: tries the
    /// common scalings on this photo and keeps the most confidently peaked (said in `assumed`).
    /// Returns the note, or `undefined` when nothing was probed.
    #[wasm_bindgen(js_name = probePixelScaling)]
    pub fn probe_pixel_scaling(&mut self, width: usize, height: usize, rgba: &[u8]) -> Result<Option<String>, JsValue> {
        self.inner.probe_pixel_scaling(width, height, rgba).map_err(err)
    }

    /// Detections under another profile (JSON) of this model, without switching to it (the
    /// page's "also fits" readings): `[{class, label, score, bbox, …}]`.
    pub fn preview(&self, profile_json: &str, width: usize, height: usize, rgba: &[u8]) -> Result<JsValue, JsValue> {
        let p = Profile::from_json(profile_json).map_err(err)?;
        to_js(&self.inner.preview(&p, width, height, rgba).map_err(err)?)
    }

    /// Sets the score and IoU thresholds.
    #[wasm_bindgen(js_name = setThresholds)]
    pub fn set_thresholds(&mut self, score: f32, iou: f32) {
        self.inner.set_thresholds(score, iou);
    }

    /// One image through pre-processing, CPU inference and decoding: the raw outputs and the
    /// detections (for [`crate::compare::WasmComparison`]).
    pub(crate) fn run_image(
        &mut self,
        width: usize,
        height: usize,
        rgba: &[u8],
    ) -> Result<(Vec<(String, Tensor)>, Detections), String> {
        let (x, t) = self.inner.preprocess(width, height, rgba).map_err(|e| e.to_string())?;
        let inner = &mut self.inner;
        let out = qplay_core::parallel::on_pool(move || inner.infer(x)).map_err(|e| e.to_string())?;
        let dets = self.inner.decode(&out, &t).map_err(|e| e.to_string())?;
        Ok((out, dets))
    }

    /// Stage 1: RGBA pixels → the model input.
    pub fn preprocess(&mut self, width: usize, height: usize, rgba: &[u8]) -> Result<(), JsValue> {
        self.input = Some(self.inner.preprocess(width, height, rgba).map_err(err)?);
        Ok(())
    }

    /// Stage 2: runs the model on the pre-processed input.
    pub fn infer(&mut self) -> Result<(), JsValue> {
        let (x, t) = self.input.take().ok_or_else(|| err("call preprocess() before infer()"))?;
        let inner = &mut self.inner;
        let out = qplay_core::parallel::on_pool(move || inner.infer(x)).map_err(err)?;
        *self.output.borrow_mut() = Some((out, t));
        Ok(())
    }

    /// Stage 3: decodes the outputs into `[{class, label, score, bbox, keypoints}]`.
    pub fn decode(&mut self) -> Result<JsValue, JsValue> {
        let out = self.output.borrow();
        let (out, t) = out.as_ref().ok_or_else(|| err("call infer() or inferGpu() before decode()"))?;
        let dets = self.inner.decode(out, t).map_err(err)?;
        self.score_warning = self.inner.score_warning(&dets);
        to_js(&dets)
    }

    /// What was odd about the detections the last `decode` returned (scores above 1, which no
    /// probability reaches), in words; `undefined` when nothing.
    #[wasm_bindgen(js_name = scoreWarning)]
    pub fn score_warning(&self) -> Option<String> {
        self.score_warning.clone()
    }

    /// Prepares the plan for `gpu`: places every step, allocates the GPU buffers and compiles
    /// the kernels. Resolves to a summary ("N of M steps on the GPU …"); rejects with the
    /// reason (a kernel that fails to compile, a tensor beyond the adapter's limits).
    #[wasm_bindgen(js_name = useGpu)]
    pub fn use_gpu(&mut self, gpu: &WasmGpu) -> js_sys::Promise {
        crate::gpu::place(gpu, self.inner.shared_plan(), &self.gpu)
    }

    /// Drops the GPU plan (and its buffers): inference goes back to the CPU.
    #[wasm_bindgen(js_name = useCpu)]
    pub fn use_cpu(&mut self) {
        self.gpu.borrow_mut().take();
    }

    /// Whether a GPU plan is ready (after `useGpu` resolved).
    #[wasm_bindgen(js_name = hasGpu)]
    pub fn has_gpu(&self) -> bool {
        self.gpu.borrow().is_some()
    }

    /// Stages 1 and 2 on the GPU: the RGBA frame is uploaded and pre-processed there (resize,
    /// letterbox, channel order, normalisation, in the model's command encoder), then the plan
    /// runs; resolves to where the pre-processing ran, `"gpu"`, or `"cpu"` when this frame or
    /// model cannot be pre-processed on the GPU (then it is done on the CPU and uploaded). Then
    /// call `decode`.
    #[wasm_bindgen(js_name = inferGpuFrame)]
    pub fn infer_gpu_frame(&mut self, width: usize, height: usize, rgba: Vec<u8>) -> Result<js_sys::Promise, JsValue> {
        let rp = qplay_core::detect::resize_plan(self.inner.profile(), width, height).map_err(err)?;
        let fits = self.gpu.borrow().as_ref().map(|p| p.can_preprocess(&rp, width, height).is_ok());
        match fits {
            None => Err(err("no GPU plan: call useGpu() first (or wait for the previous inferGpu())")),
            Some(false) => {
                self.preprocess(width, height, &rgba)?;
                let p = self.infer_gpu()?;
                Ok(wasm_bindgen_futures::future_to_promise(async move {
                    wasm_bindgen_futures::JsFuture::from(p).await?;
                    Ok(JsValue::from_str("cpu"))
                }))
            }
            Some(true) => {
                let plan = self.gpu.borrow_mut().take().ok_or_else(|| err("no GPU plan"))?;
                let names: Vec<String> = self.inner.plan().output_names().into_iter().map(String::from).collect();
                let (cell, output) = (self.gpu.clone(), self.output.clone());
                Ok(wasm_bindgen_futures::future_to_promise(async move {
                    let mut plan = plan;
                    let r = plan.run_rgba(&rp, width, height, &rgba).await;
                    *cell.borrow_mut() = Some(plan);
                    let outs = r.map_err(err)?;
                    *output.borrow_mut() = Some((names.into_iter().zip(outs).collect(), rp.transform));
                    Ok(JsValue::from_str("gpu"))
                }))
            }
        }
    }

    /// Stage 2 on the GPU: runs the plan on the pre-processed input; resolves when the outputs
    /// are back on the CPU (then call `decode`). One run at a time per detector.
    #[wasm_bindgen(js_name = inferGpu)]
    pub fn infer_gpu(&mut self) -> Result<js_sys::Promise, JsValue> {
        let plan = self
            .gpu
            .borrow_mut()
            .take()
            .ok_or_else(|| err("no GPU plan: call useGpu() first (or wait for the previous inferGpu())"))?;
        let (x, t) = match self.input.take() {
            Some(v) => v,
            None => {
                *self.gpu.borrow_mut() = Some(plan);
                return Err(err("call preprocess() before inferGpu()"));
            }
        };
        let input = self.inner.profile().input.clone();
        let names: Vec<String> = self.inner.plan().output_names().into_iter().map(String::from).collect();
        let cell = self.gpu.clone();
        let output = self.output.clone();
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let mut plan = plan;
            let r = plan.run(&[(input, x)]).await;
            *cell.borrow_mut() = Some(plan);
            let outs = r.map_err(err)?;
            *output.borrow_mut() = Some((names.into_iter().zip(outs).collect(), t));
            Ok(JsValue::UNDEFINED)
        }))
    }
}

/// A planned model without detection: raw tensors in and out (benchmarks, checks against other
/// runtimes).
#[wasm_bindgen]
pub struct WasmModel {
    plan: std::sync::Arc<qplay_core::model::Plan>,
    input: String,
    shape: Vec<usize>,
    /// The plan on the GPU (after `useGpu`); taken out by a running `runGpu`.
    gpu: crate::gpu::GpuCell,
}

#[wasm_bindgen]
impl WasmModel {
    /// Loads and plans a single-input model for an input `shape` (e.g. `[1, 3, 300, 300]`).
    #[wasm_bindgen(constructor)]
    pub fn new(onnx: &[u8], shape: Vec<usize>) -> Result<WasmModel, JsValue> {
        let g = load_model(onnx).map_err(err)?;
        let input = match g.inputs.as_slice() {
            [one] => one.name.clone(),
            other => return Err(err(format!("expected a model with one input, this one has {}", other.len()))),
        };
        let plan =
            qplay_core::model::Plan::new(&g, &Registry::new(), &[(input.clone(), shape.clone())]).map_err(err)?;
        Ok(WasmModel { plan: std::sync::Arc::new(plan), input, shape, gpu: Rc::default() })
    }

    /// Prepares the plan for `gpu` (buffers, kernels); resolves to the placement summary.
    #[wasm_bindgen(js_name = useGpu)]
    pub fn use_gpu(&mut self, gpu: &WasmGpu) -> js_sys::Promise {
        crate::gpu::place(gpu, self.plan.clone(), &self.gpu)
    }

    /// `run` on the GPU: resolves to the first output's data (a `Float32Array`).
    #[wasm_bindgen(js_name = runGpu)]
    pub fn run_gpu(&self, data: Vec<f32>) -> Result<js_sys::Promise, JsValue> {
        let x = Tensor::f32(self.shape.clone(), data).map_err(err)?;
        let plan = self
            .gpu
            .borrow_mut()
            .take()
            .ok_or_else(|| err("no GPU plan: call useGpu() first (or wait for the previous runGpu())"))?;
        let (cell, input) = (self.gpu.clone(), self.input.clone());
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let mut plan = plan;
            let r = plan.run(&[(input, x)]).await;
            *cell.borrow_mut() = Some(plan);
            let out = r.map_err(err)?;
            let first = out.first().map(|t| t.to_f32_vec()).unwrap_or_default();
            Ok(js_sys::Float32Array::from(first.as_slice()).into())
        }))
    }

    /// Runs the model on float32 data of the planned shape; returns the first output's data.
    pub fn run(&self, data: Vec<f32>) -> Result<Vec<f32>, JsValue> {
        let x = Tensor::f32(self.shape.clone(), data).map_err(err)?;
        let (plan, input) = (&self.plan, self.input.clone());
        let out = qplay_core::parallel::on_pool(|| plan.run(&[(input, x)])).map_err(err)?;
        Ok(out.first().map(|t| t.to_f32_vec()).unwrap_or_default())
    }

    /// Runs once with a clock around every step: `[{name, op, ms}]` in execution order (the
    /// page's `performance.now()`, so the resolution is what the browser grants).
    pub fn profile(&self, data: Vec<f32>) -> Result<JsValue, JsValue> {
        #[derive(serde::Serialize)]
        struct Step {
            name: String,
            op: String,
            ms: f64,
        }
        let now = now_fn();
        let x = Tensor::f32(self.shape.clone(), data).map_err(err)?;
        let steps = self.plan.steps();
        let mut out: Vec<Step> = Vec::with_capacity(steps.len());
        let mut t0 = 0.0;
        self.plan
            .run_profiled(&[(self.input.clone(), x)], &mut |i, e| match e {
                qplay_core::model::StepEvent::Start => t0 = now(),
                qplay_core::model::StepEvent::End => {
                    out.push(Step { name: steps[i].0.to_string(), op: steps[i].1.to_string(), ms: now() - t0 })
                }
            })
            .map_err(err)?;
        to_js(&out)
    }
}

/// `performance.now` of the global scope (window or worker), or `Date.now` without one.
pub(crate) fn now_fn() -> impl Fn() -> f64 {
    let perf =
        js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance")).ok().filter(|p| p.is_object());
    let f = perf
        .as_ref()
        .and_then(|p| js_sys::Reflect::get(p, &JsValue::from_str("now")).ok())
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    move || match (&perf, &f) {
        (Some(p), Some(f)) => f.call0(p).ok().and_then(|v| v.as_f64()).unwrap_or(0.0),
        _ => js_sys::Date::now(),
    }
}

/// Post-training quantization in the browser: collect calibration images, then quantize to a
/// QDQ model whose bytes the page can run and download.
#[wasm_bindgen]
pub struct WasmQuantizer {
    graph: qplay_core::model::Graph,
    profile: Profile,
    calib: Vec<Tensor>,
    onnx: Vec<u8>,
}

/// [`WasmQuantizer::run`]'s options, as the worker sends them.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuantizeArgs {
    /// `auto` (the recipe chosen by measurement on held-out images, `ptq::recipe`) or an
    /// observer (minmax, ema, percentile, entropy, mse) with equalization and bias correction.
    method: String,
    /// Weights per output channel (default) or per tensor.
    #[serde(default = "yes")]
    per_channel: bool,
    /// The FP32 file's size, for the report.
    #[serde(default)]
    original_bytes: Option<usize>,
    /// Nodes to leave in float.
    #[serde(default)]
    keep_fp32: Vec<String>,
    /// How many of the most sensitive layers move to `mixed_to` besides (0: none).
    #[serde(default)]
    auto_mixed: usize,
    /// `fp32`, `16` (16-bit activations) or `w8` (8-bit weights, of the layers below 8 bits).
    #[serde(default)]
    mixed_to: String,
    /// Weight bits, 2..=8 (default 8; int4 storage at 4 and fewer).
    #[serde(default)]
    weight_bits: Option<u8>,
    /// GPTQ rounding (default: below 8 bits) or to nearest.
    #[serde(default)]
    gptq: Option<bool>,
    /// `[layer, bits]` pairs: layers with their own weight width.
    #[serde(default)]
    layer_bits: Vec<(String, u8)>,
}

fn yes() -> bool {
    true
}

#[wasm_bindgen]
impl WasmQuantizer {
    /// A quantizer for ONNX bytes with a profile (JSON text; inferred when `undefined`).
    #[wasm_bindgen(constructor)]
    pub fn new(onnx: &[u8], profile_json: Option<String>) -> Result<WasmQuantizer, JsValue> {
        let mut graph = load_model(onnx).map_err(err)?;
        qplay_core::model::float_image_inputs(&mut graph);
        let profile = match profile_json {
            Some(j) => Profile::from_json(&j).map_err(err)?,
            None => qplay_core::detect::infer_profile_for(&graph).map_err(err)?.profile,
        };
        Ok(WasmQuantizer { graph, profile, calib: Vec::new(), onnx: Vec::new() })
    }

    /// Adds one calibration image (RGBA); returns how many there are.
    #[wasm_bindgen(js_name = addImage)]
    pub fn add_image(&mut self, width: usize, height: usize, rgba: &[u8]) -> Result<usize, JsValue> {
        let (t, _) = qplay_core::detect::preprocess(&self.profile, width, height, rgba).map_err(err)?;
        self.calib.push(t);
        Ok(self.calib.len())
    }

    /// Quantizes with the options `options` ([`QuantizeArgs`], a plain object: `{method,
    /// perChannel, originalBytes, keepFp32, autoMixed, mixedTo, weightBits, gptq, layerBits}`,
    /// every field but `method` optional); returns the report. `progress`, when given, is called
    /// with a description of each step (calibration input k of n, sensitivity layer k of n, …);
    /// when it throws, the run stops at that step and fails with the code `cancelled`.
    pub fn run(&mut self, options: JsValue, progress: Option<js_sys::Function>) -> Result<JsValue, JsValue> {
        let a: QuantizeArgs =
            serde_wasm_bindgen::from_value(options).map_err(|e| err(format!("bad quantization options: {e}")))?;
        let auto = a.method == "auto";
        let bits = a.weight_bits.unwrap_or(8);
        let opts = qplay_core::ptq::PtqOptions {
            weight: qplay_core::ptq::PtqOptions::weight_bits(bits).map_err(err)?,
            gptq: a.gptq.unwrap_or_else(|| qplay_core::ptq::PtqOptions::default_gptq(bits)),
            layer_weight_bits: a.layer_bits,
            method: if auto {
                qplay_core::ptq::PtqOptions::default().method
            } else {
                qplay_core::quant::Calibration::parse(&a.method).map_err(err)?
            },
            per_channel: a.per_channel,
            keep_fp32: a.keep_fp32,
            auto_mixed: a.auto_mixed,
            mixed_to: match a.mixed_to.as_str() {
                "16" => qplay_core::ptq::MixedTo::Activations16,
                "w8" => qplay_core::ptq::MixedTo::Weights8,
                "fp32" | "" => qplay_core::ptq::MixedTo::Fp32,
                other => return Err(err(format!("mixed precision to `{other}`: give fp32, 16 or w8"))),
            },
            // Inputs besides the image (D-FINE's `orig_target_sizes`, …): the profile's values.
            fixed_inputs: qplay_core::detect::aux::aux_tensors(&self.profile, &self.graph.inputs).map_err(err)?,
            ..Default::default()
        };
        // A callback that throws stops the run there (the page's Cancel, read from a flag it
        // shares with the worker): the call then fails with the code `cancelled`.
        let mut tell = |stage: &str| match &progress {
            Some(f) if f.call1(&JsValue::NULL, &JsValue::from_str(stage)).is_err() => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        };
        let (graph, input, calib) = (&self.graph, &self.profile.input, &self.calib);
        let mut q = if auto {
            qplay_core::ptq::recipe::quantize_auto(graph, input, calib, &opts, &mut tell)
        } else {
            qplay_core::ptq::quantize_with_progress(graph, input, calib, &opts, &mut tell)
        }
        .map_err(err)?;
        q.report.fp32_bytes = Some(a.original_bytes.unwrap_or(0));
        self.onnx = q.onnx;
        to_js(&q.report)
    }

    /// The quantized model's ONNX bytes (after `run`).
    #[wasm_bindgen(js_name = onnxBytes)]
    pub fn onnx_bytes(&self) -> Vec<u8> {
        self.onnx.clone()
    }
}

/// The float data of one constant tensor (a weight) of a model, for the explorer.
#[wasm_bindgen(js_name = modelWeight)]
pub fn model_weight(onnx: &[u8], name: &str) -> Result<Vec<f32>, JsValue> {
    let g = load_model(onnx).map_err(err)?;
    let t = g.initializers.get(name).ok_or_else(|| err(format!("the model has no constant tensor `{name}`")))?;
    Ok(t.as_f32().map_err(err)?.to_vec())
}
