//! Post-training quantization of a whole model to the QDQ format.
//!
//! 1. BatchNormalization is folded into the preceding Conv; then (default on) cross-layer
//!    equalization evens out the per-channel weight ranges of Conv → act → Conv pairs
//!    ([`equalize`]).
//! 2. Calibration: the FP32 model runs on each calibration input; an [`Observer`] per activation
//!    tensor that feeds a Conv / MatMul / Gemm collects its range.
//! 3. Weights become int8 initializers, symmetric per output channel (or per tensor), each
//!    behind a `DequantizeLinear`; biases int32 with scale `s_in · s_w` and zero-point 0;
//!    before that (default on) each bias is corrected for the mean output shift the weight
//!    quantization causes, measured on the calibration data ([`bias_correction`]);
//!    activations get a `QuantizeLinear → DequantizeLinear` pair (uint8 or int8, asymmetric,
//!    per tensor) right before the node that reads them.
//! 4. The result is an ordinary ONNX graph that qplay and onnxruntime both run; the report
//!    measures what it cost.
//!
//! Everything the graph outputs stays FP32, so box and score outputs are never squeezed into one
//! per-tensor scale (the YOLOv8 int8 export failure). Nodes can be kept FP32 by name.

pub mod bias_correction;
pub mod equalize;
pub mod recipe;

use crate::model::{
    load_onnx, numel, passes::fold_batchnorm_into_conv, save_onnx_with, Attr, Attrs, DType, Graph, ModelError, Node,
    Plan, Tensor,
};
use crate::ops::Registry;
use crate::quant::{
    error_metrics, per_channel_params, Calibration, Histogram, Observer, QParams, QType, QuantError, Scheme,
};
use crate::Error;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

mod report;
pub use report::{coarsen, MethodClip, REPORT_BINS};

/// Settings of one quantization run.
#[derive(Debug, Clone)]
pub struct PtqOptions {
    /// Activation range observer. The default, MSE, was chosen by measurement together with
    /// `equalize` and `bias_correction`: on the person detector (held-out photos,
    /// `scripts/compare_ort_quant.py --matrix`, table in docs/measurements.md) MSE with both on had the
    /// best worst-output SQNR of the 32 observer × weights × CLE × bias-correction combinations.
    pub method: Calibration,
    /// Weights per output channel (true, the default) or per tensor.
    pub per_channel: bool,
    /// Activation type: uint8 (default) or int8, asymmetric.
    pub activation: QType,
    /// Node names to keep in FP32.
    pub keep_fp32: Vec<String>,
    /// Node names whose input activation is quantized to 16 bits (uint16, weights stay int8):
    /// a step between int8 and FP32 that onnxruntime runs (QDQ `com.microsoft` below opset 21).
    pub keep_16bit: Vec<String>,
    /// Keep this many of the most sensitive layers FP32, or with 16-bit activations when
    /// `mixed_16bit` (0: none). Sensitivity is the model output's SQNR when only that layer is
    /// quantized, on up to two calibration inputs.
    pub auto_mixed: usize,
    /// `auto_mixed` moves its layers to 16-bit activations rather than FP32.
    pub mixed_16bit: bool,
    /// Cross-layer equalization of Conv → act → Conv pairs after BN folding ([`equalize`]); on by
    /// default (+9 dB on the person detector with per-channel weights).
    pub equalize: bool,
    /// Empirical bias correction of each quantized layer ([`bias_correction`]); on by default
    /// (+3–5 dB on the person detector after equalization).
    pub bias_correction: bool,
    /// Values for the model's inputs besides `input` (a detector's geometry inputs, such as
    /// D-FINE's `orig_target_sizes`: [`crate::detect::aux::aux_tensors`]), the same in every run:
    /// calibration and measurements hold them constant; the export keeps them as inputs.
    pub fixed_inputs: Vec<(String, Tensor)>,
}

impl Default for PtqOptions {
    fn default() -> Self {
        PtqOptions {
            method: Calibration::Mse,
            per_channel: true,
            activation: QType::UINT8,
            keep_fp32: vec![],
            keep_16bit: vec![],
            auto_mixed: 0,
            mixed_16bit: false,
            equalize: true,
            bias_correction: true,
            fixed_inputs: Vec::new(),
        }
    }
}

/// One quantized node in the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LayerReport {
    /// Node name.
    pub node: String,
    /// Op type.
    pub op: String,
    /// The activation the node reads: name, observed range, chosen clip range, Δ, Z.
    pub activation: ActivationReport,
    /// Weight range over all channels.
    pub weight_range: (f32, f32),
    /// Number of weight scales (1 per tensor, or one per output channel).
    pub weight_scales: usize,
    /// SQNR (dB) of the fake-quantized weights against the FP32 weights.
    pub weight_sqnr_db: f64,
    /// Sensitivity: the lowest output SQNR (dB) when only this layer is quantized (measured
    /// with `auto_mixed`; `None` otherwise).
    pub sensitivity_sqnr_db: Option<f64>,
    /// The weight scale of each output channel (one when per tensor); zero-points are all 0.
    pub channel_scales: Vec<f32>,
    /// Histogram of the weights over their range ([`REPORT_BINS`] bins).
    pub weight_histogram: Option<Histogram>,
    /// SQNR (dB) of this node's output in the quantized model against the FP32 model, over the
    /// calibration inputs (errors of the layers before it included).
    pub output_sqnr_db: Option<f64>,
}

/// Range and parameters of one quantized activation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ActivationReport {
    /// Tensor name.
    pub tensor: String,
    /// Min and max seen during calibration.
    pub observed: (f32, f32),
    /// The range the observer chose.
    pub clip: (f32, f32),
    /// Δ.
    pub scale: f32,
    /// Z.
    pub zero_point: i32,
    /// Histogram of the calibration values over the observed range ([`REPORT_BINS`] bins).
    pub histogram: Option<Histogram>,
    /// The clip range each calibration method would pick for these values, and what it clips.
    pub methods: Vec<MethodClip>,
    /// Percentage of the calibration values outside the chosen range.
    pub clipped_pct: Option<f64>,
}

/// What a quantization run produced and measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Observer used.
    pub method: &'static str,
    /// Per-channel weights?
    pub per_channel: bool,
    /// Activation type.
    pub activation_type: &'static str,
    /// Calibration inputs used.
    pub calibration_inputs: usize,
    /// Quantized layers, in graph order.
    pub layers: Vec<LayerReport>,
    /// Layers kept FP32 (by request or because their weights are not constant).
    pub kept_fp32: Vec<String>,
    /// Layers whose input activation is quantized to 16 bits (weights int8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub act16: Vec<String>,
    /// Size of the FP32 model file (bytes), when known.
    pub fp32_bytes: Option<usize>,
    /// Size of the QDQ model file (bytes).
    pub int8_bytes: usize,
    /// SQNR (dB) of each graph output of the QDQ model against FP32, over the calibration inputs.
    pub output_sqnr_db: BTreeMap<String, f64>,
    /// Notes (e.g. an opset raised to 13 for per-channel DequantizeLinear).
    pub notes: Vec<String>,
    /// Wall time of each phase in milliseconds, in order (native builds; empty in wasm, where
    /// the page times the whole run itself).
    pub phase_ms: Vec<(&'static str, f64)>,
    /// How the recipe was chosen, when it was chosen by measurement ([`recipe::quantize_auto`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipe: Option<recipe::RecipeChoice>,
}

/// Wall-clock laps per phase; a no-op on wasm32, whose std has no clock.
struct Phases {
    #[cfg(not(target_arch = "wasm32"))]
    last: std::time::Instant,
    laps: Vec<(&'static str, f64)>,
}

impl Phases {
    fn start() -> Phases {
        Phases {
            #[cfg(not(target_arch = "wasm32"))]
            last: std::time::Instant::now(),
            laps: Vec::new(),
        }
    }

    /// Ends the phase `name` (the time since the previous lap).
    fn lap(&mut self, name: &'static str) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let now = std::time::Instant::now();
            self.laps.push((name, (now - self.last).as_secs_f64() * 1e3));
            self.last = now;
        }
        #[cfg(target_arch = "wasm32")]
        let _ = name;
    }
}

/// The quantized model and its report.
#[derive(Debug, Clone)]
pub struct Quantized {
    /// The QDQ graph.
    pub graph: Graph,
    /// The same graph as ONNX bytes.
    pub onnx: Vec<u8>,
    /// What was done and what it cost.
    pub report: Report,
}

/// Op types whose weights (input 1) and data input (input 0) are quantized.
const QUANTIZABLE: [&str; 3] = ["Conv", "MatMul", "Gemm"];

/// Ops whose attribute/input forms changed between opsets 11 and 13; a graph using them is not
/// raised to opset 13, and its weights are quantized per tensor instead.
const OPSET13_CHANGED: [&str; 7] = ["Split", "Squeeze", "Unsqueeze", "ReduceSum", "Softmax", "LogSoftmax", "Hardmax"];

/// Quantizes `graph` with calibration inputs for its single input `input`.
pub fn quantize(graph: &Graph, input: &str, calib: &[Tensor], opts: &PtqOptions) -> Result<Quantized, Error> {
    quantize_with_progress(graph, input, calib, opts, &mut |_| {})
}

/// [`quantize`], telling `progress` what it is doing: each calibration input, each layer of the
/// sensitivity analysis, the rewrite, the export and each input of the report's measurements.
pub fn quantize_with_progress(
    graph: &Graph,
    input: &str,
    calib: &[Tensor],
    opts: &PtqOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Quantized, Error> {
    quantize_inner(graph, input, calib, opts, progress, true)
}

/// Float32 initializers of 16 values or more that are not quantization parameters: each is
/// renamed `<name>_fp16` (to be written as float16) and read through a new `Cast` to float32
/// under its old name. Returns the renamed set and how many values they hold.
fn halve_float_initializers(g: &mut Graph) -> (HashSet<String>, usize) {
    let qdq_params: HashSet<&str> = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op_type.as_str(), "QuantizeLinear" | "DequantizeLinear"))
        .flat_map(|n| n.inputs.iter().skip(1).map(String::as_str))
        .collect();
    let mut names: Vec<String> = g
        .initializers
        .iter()
        .filter(|(n, t)| t.dtype() == DType::F32 && t.len() >= 16 && !qdq_params.contains(n.as_str()))
        .map(|(n, _)| n.clone())
        .collect();
    names.sort();
    let (mut half, mut values, mut casts) = (HashSet::new(), 0, Vec::new());
    for n in names {
        let Some(t) = g.initializers.remove(&n) else { continue };
        let h = format!("{n}_fp16");
        values += t.len();
        g.initializers.insert(h.clone(), t);
        casts.push(Node {
            name: format!("{n}_Cast"),
            op_type: "Cast".into(),
            inputs: vec![h.clone()],
            outputs: vec![n],
            attrs: Attrs([("to".to_string(), Attr::Int(1))].into_iter().collect()),
        });
        half.insert(h);
    }
    casts.append(&mut g.nodes);
    g.nodes = casts;
    (half, values)
}

/// The quantization run; `measure: false` skips the report's measurements (the FP32 and QDQ
/// runs for per-layer and output SQNR, histograms): what a candidate of the recipe search needs.
pub(crate) fn quantize_inner(
    graph: &Graph,
    input: &str,
    calib: &[Tensor],
    opts: &PtqOptions,
    progress: &mut dyn FnMut(&str),
    measure: bool,
) -> Result<Quantized, Error> {
    if calib.is_empty() {
        return Err(QuantError::NoCalibrationData.into());
    }
    let shape = calib[0].shape.clone();
    if let Some(bad) = calib.iter().find(|t| t.shape != shape || t.dtype() != DType::F32) {
        return Err(ModelError::Other(format!(
            "calibration inputs must all be float32 of shape {shape:?}; one is {:?} of shape {:?}",
            bad.dtype(),
            bad.shape
        ))
        .into());
    }
    let mut phases = Phases::start();
    let registry = Registry::new();
    let mut g = graph.clone();
    // Inputs besides `input` become constants for calibration; restored before the export.
    let fixed = g.bind_inputs(&opts.fixed_inputs)?;
    g.toposort()?;
    fold_batchnorm_into_conv(&mut g);
    let mut notes = Vec::new();
    if opts.equalize {
        notes.push(format!("cross-layer equalization: {} Conv pairs", equalize::equalize(&mut g)));
    }
    phases.lap(if opts.equalize { "batchnorm folding, equalization" } else { "batchnorm folding" });
    let mut per_channel = opts.per_channel;
    if per_channel && g.opset < 13 {
        if g.nodes.iter().any(|n| OPSET13_CHANGED.contains(&n.op_type.as_str())) {
            per_channel = false;
            notes.push(format!(
                "opset {} has no per-axis DequantizeLinear and the graph uses ops that changed at opset 13: weights are quantized per tensor",
                g.opset
            ));
        } else {
            notes.push(format!("opset raised from {} to 13 for per-channel DequantizeLinear", g.opset));
            g.opset = 13;
        }
    }

    // Which nodes to quantize, and which activations they read.
    let keep: HashSet<&str> = opts.keep_fp32.iter().map(String::as_str).collect();
    let mut targets = Vec::new();
    let mut kept = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if !QUANTIZABLE.contains(&n.op_type.as_str()) {
            continue;
        }
        let weight_const = n.inputs.get(1).is_some_and(|w| g.initializers.contains_key(w));
        if keep.contains(n.name.as_str()) || !weight_const || g.initializers.contains_key(&n.inputs[0]) {
            kept.push(n.name.clone());
        } else {
            targets.push(i);
        }
    }
    let act_names: HashSet<String> = targets.iter().map(|&i| g.nodes[i].inputs[0].clone()).collect();

    // Calibration.
    let plan = Plan::new(&g, &registry, &[(input.to_string(), shape.clone())])?;
    let mut observers: HashMap<String, Observer> =
        act_names.iter().map(|n| (n.clone(), opts.method.observer())).collect();
    let mut fp32_outputs = Vec::new();
    let mut err: Option<Error> = None;
    // Bias correction measures on the same FP32 runs (the weights are final once equalized).
    let mut bc = if opts.bias_correction {
        Some(bias_correction::BiasCorrection::new(&g, &targets, per_channel)?)
    } else {
        None
    };
    for (k, x) in calib.iter().enumerate() {
        progress(&format!("calibration: input {} of {}", k + 1, calib.len()));
        if let Some(o) = observers.get_mut(input) {
            o.observe(x.as_f32()?)?;
        }
        if let Some(bc) = bc.as_mut() {
            bc.observe(&g, input, x, &registry)?;
        }
        let out = plan.run_with(&[(input.to_string(), x.clone())], &mut |name, t| {
            if let (Some(o), Ok(d)) = (observers.get_mut(name), t.as_f32()) {
                if let Err(e) = o.observe(d) {
                    err.get_or_insert(e.into());
                }
            }
            if let Some(bc) = bc.as_mut() {
                if let Err(e) = bc.observe(&g, name, t, &registry) {
                    err.get_or_insert(e);
                }
            }
        })?;
        fp32_outputs.push(out);
    }
    if let Some(e) = err {
        return Err(e);
    }
    phases.lap(if opts.bias_correction {
        "calibration (FP32 runs, observers, bias shifts)"
    } else {
        "calibration (FP32 runs, observers)"
    });

    // Activation parameters.
    let mut act_params: HashMap<String, ActParams> = HashMap::new();
    for (name, o) in &observers {
        let (lo, hi) = o.range(opts.activation, Scheme::Asymmetric)?;
        let p = crate::quant::params_or_unit(lo as f64, hi as f64, opts.activation, Scheme::Asymmetric)?;
        act_params.insert(name.clone(), (p, o.min_max().unwrap_or((lo, hi)), (lo, hi)));
    }
    let act16_type = QType { bits: 16, signed: opts.activation.signed, restricted: false };
    let mut act16_params: HashMap<String, ActParams> = HashMap::new();
    for (name, o) in &observers {
        let (lo, hi) = o.range(act16_type, Scheme::Asymmetric)?;
        let p = crate::quant::params_or_unit(lo as f64, hi as f64, act16_type, Scheme::Asymmetric)?;
        act16_params.insert(name.clone(), (p, o.min_max().unwrap_or((lo, hi)), (lo, hi)));
    }
    let mut act16: Vec<String> =
        targets.iter().map(|&t| g.nodes[t].name.clone()).filter(|n| opts.keep_16bit.contains(n)).collect();
    phases.lap("activation ranges");
    // Per-layer sensitivity: output SQNR when only that layer is quantized; the worst
    // `auto_mixed` layers stay FP32.
    let mut sensitivity: HashMap<String, f64> = HashMap::new();
    if opts.auto_mixed > 0 {
        let probe = &calib[..calib.len().min(2)];
        for (k, &t) in targets.iter().enumerate() {
            progress(&format!("sensitivity: layer {} of {} ({})", k + 1, targets.len(), g.nodes[t].name));
            let (gi, _) = rewrite(&g, &[t], &act_params, &act16_params, &HashSet::new(), opts, per_channel)?;
            let db =
                output_sqnr(&gi, input, probe, &fp32_outputs, &registry)?.into_values().fold(f64::INFINITY, f64::min);
            sensitivity.insert(g.nodes[t].name.clone(), db);
        }
        let mut by: Vec<usize> = targets.clone();
        by.sort_by(|a, b| sensitivity[&g.nodes[*a].name].total_cmp(&sensitivity[&g.nodes[*b].name]));
        by.truncate(opts.auto_mixed);
        for &w in &by {
            let name = &g.nodes[w].name;
            if opts.mixed_16bit {
                act16.push(name.clone());
            } else {
                kept.push(name.clone());
            }
            notes.push(format!(
                "{} by --auto-mixed: `{name}` (output SQNR {:.1} dB when only it is quantized)",
                if opts.mixed_16bit { "16-bit activations" } else { "kept FP32" },
                sensitivity[name]
            ));
        }
        if !opts.mixed_16bit {
            targets.retain(|t| !by.contains(t));
        }
        phases.lap("sensitivity (--auto-mixed)");
    }
    let reference = if measure { Some(report::Reference::new(&g, &registry, input, &shape)?) } else { None };
    if let Some(bc) = bc {
        let k = bc.apply(&mut g, &targets);
        notes.push(format!("bias correction: {k} layers"));
    }
    progress(&format!("rewriting {} layers to QDQ", targets.len()));
    // A tensor read by a 16-bit layer is quantized to 16 bits for every reader.
    let act16_tensors: HashSet<String> =
        targets.iter().filter(|&&t| act16.contains(&g.nodes[t].name)).map(|&t| g.nodes[t].inputs[0].clone()).collect();
    if !act16.is_empty() {
        notes.push(format!(
            "16-bit activations (uint16, weights int8) for {} layer(s): {}",
            act16.len(),
            act16.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    let (mut g, mut layers) = rewrite(&g, &targets, &act_params, &act16_params, &act16_tensors, opts, per_channel)?;
    for l in &mut layers {
        l.sensitivity_sqnr_db = sensitivity.get(&l.node).copied();
    }
    g.toposort()?;

    // Serialise, reload (the export gate: what we write must load and run), and measure.
    phases.lap("QDQ rewrite");
    progress("exporting the QDQ file and loading it back");
    // A float16 model goes back as float16 where quantization leaves float weights.
    // (The loader's note names the widened types: "float16 and float64 tensors (weights, …".)
    g.unbind_inputs(&fixed);
    let from_half = graph.load_notes.iter().any(|n| {
        n.split_once(" tensors (weights").is_some_and(|(types, _)| types.split(" and ").any(|t| t == "float16"))
    });
    let half = if from_half {
        let (half, values) = halve_float_initializers(&mut g);
        if !half.is_empty() {
            notes.push(format!(
                "{} float tensors ({values} values) written back as float16, the model's source precision (read through a Cast to float32)",
                half.len()
            ));
        }
        half
    } else {
        HashSet::new()
    };
    let onnx = save_onnx_with(&g, "qplay", &half);
    let reloaded = load_onnx(&onnx)?;
    phases.lap("export and reload");
    let output_sqnr_db = match &reference {
        Some(reference) => {
            let measured = bound(&reloaded, &opts.fixed_inputs)?;
            let db = report::measure(reference, &measured, calib, opts.method, opts.activation, &mut layers, progress)?;
            phases.lap("report (FP32 and QDQ runs, per-layer SQNR, histograms)");
            db
        }
        None => BTreeMap::new(),
    };
    let report = Report {
        method: opts.method.name(),
        per_channel,
        activation_type: if opts.activation.signed { "int8" } else { "uint8" },
        calibration_inputs: calib.len(),
        layers,
        kept_fp32: kept,
        act16,
        fp32_bytes: None,
        int8_bytes: onnx.len(),
        output_sqnr_db,
        notes,
        phase_ms: phases.laps,
        recipe: None,
    };
    Ok(Quantized { graph: reloaded, onnx, report })
}

/// `g` with `values` bound to its inputs of those names ([`Graph::bind_inputs`]); borrowed
/// as it is when there are none.
pub(crate) fn bound<'a>(g: &'a Graph, values: &[(String, Tensor)]) -> Result<std::borrow::Cow<'a, Graph>, Error> {
    if values.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(g));
    }
    let mut b = g.clone();
    b.bind_inputs(values)?;
    Ok(std::borrow::Cow::Owned(b))
}

fn qdq_node(op: &str, name: &str, inputs: [&String; 3], output: &str, axis: Option<i64>) -> Node {
    Node {
        name: name.to_string(),
        op_type: op.to_string(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: vec![output.to_string()],
        attrs: Attrs(axis.map(|a| ("axis".to_string(), Attr::Int(a))).into_iter().collect()),
    }
}

/// The output-channel axis of a weight: 0 for Conv and for Gemm with transB, else the last.
fn weight_axis(n: &Node, w: &Tensor) -> Result<usize, Error> {
    let rank = w.shape.len();
    if rank == 0 || numel(&w.shape)? == 0 {
        return Err(ModelError::at(n, "its weight is empty").into());
    }
    Ok(match n.op_type.as_str() {
        "Conv" => 0,
        "Gemm" if n.attrs.int("transB", 0) != 0 => 0,
        _ => rank - 1,
    })
}

/// SQNR (dB) of each graph output of `g` against the FP32 outputs, over `inputs`.
pub(crate) fn output_sqnr(
    g: &Graph,
    input: &str,
    inputs: &[Tensor],
    fp32_outputs: &[Vec<Tensor>],
    registry: &Registry,
) -> Result<BTreeMap<String, f64>, Error> {
    let shape = inputs.first().map(|t| t.shape.clone()).unwrap_or_default();
    let plan = Plan::new(g, registry, &[(input.to_string(), shape)])?;
    let names = plan.output_names().into_iter().map(String::from).collect::<Vec<_>>();
    let mut refs: Vec<Vec<f32>> = vec![Vec::new(); names.len()];
    let mut approx: Vec<Vec<f32>> = vec![Vec::new(); names.len()];
    for (x, fp) in inputs.iter().zip(fp32_outputs) {
        let out = plan.run(&[(input.to_string(), x.clone())])?;
        for (k, (a, b)) in fp.iter().zip(&out).enumerate() {
            refs[k].extend(a.to_f32_vec());
            approx[k].extend(b.to_f32_vec());
        }
    }
    let mut db = BTreeMap::new();
    for (k, n) in names.iter().enumerate() {
        db.insert(n.clone(), error_metrics(&refs[k], &approx[k])?.sqnr_db);
    }
    Ok(db)
}

/// Per activation: parameters, observed min/max, chosen clip range.
type ActParams = (QParams, (f32, f32), (f32, f32));

/// The QDQ rewrite of `g` (already BatchNorm-folded) for the quantizable nodes `targets`.
#[allow(clippy::too_many_arguments)]
fn rewrite(
    g: &Graph,
    targets: &[usize],
    act_params: &HashMap<String, ActParams>,
    act16_params: &HashMap<String, ActParams>,
    act16: &HashSet<String>,
    opts: &PtqOptions,
    per_channel: bool,
) -> Result<(Graph, Vec<LayerReport>), Error> {
    let mut g = g.clone();
    // 16-bit QDQ is in the default domain from opset 21, in onnxruntime's `com.microsoft` before.
    let q16_domain = if g.opset >= 21 { "" } else { "com.microsoft::" };
    let zp_tensor = |qt: QType, v: Vec<i32>| -> Tensor {
        let n = v.len();
        let shape = if n == 1 { vec![] } else { vec![n] };
        if qt.bits == 16 {
            return if qt.signed {
                Tensor { shape, data: crate::model::Data::I16(v.into_iter().map(|z| z as i16).collect()) }
            } else {
                Tensor { shape, data: crate::model::Data::U16(v.into_iter().map(|z| z as u16).collect()) }
            };
        }
        if qt.signed {
            Tensor { shape, data: crate::model::Data::I8(v.into_iter().map(|z| z as i8).collect()) }
        } else {
            Tensor { shape, data: crate::model::Data::U8(v.into_iter().map(|z| z as u8).collect()) }
        }
    };
    let mut new_nodes: Vec<Node> = Vec::new();
    let mut layers = Vec::new();
    let mut qdq_done: HashMap<String, String> = HashMap::new();
    // A weight or bias initializer read by several nodes (exporters deduplicate equal constants)
    // is quantized once per reader, each under its own names: `b`, then `b_2`, `b_3`, …
    let mut readers: HashMap<String, usize> = HashMap::new();
    let mut stem = |name: &str| {
        let k = readers.entry(name.to_string()).or_insert(0);
        *k += 1;
        if *k == 1 {
            name.to_string()
        } else {
            format!("{name}_{k}")
        }
    };
    let nodes = std::mem::take(&mut g.nodes);
    let target_set: HashSet<usize> = targets.iter().copied().collect();
    for (i, mut n) in nodes.into_iter().enumerate() {
        if !target_set.contains(&i) {
            new_nodes.push(n);
            continue;
        }
        // Activation Q/DQ (shared by every node that reads the same tensor).
        let a = n.inputs[0].clone();
        let wide = act16.contains(&a);
        let (ap, observed, clip) = if wide { act16_params[&a] } else { act_params[&a] };
        let (aq, dom) = if wide {
            (QType { bits: 16, signed: opts.activation.signed, restricted: false }, q16_domain)
        } else {
            (opts.activation, "")
        };
        let a_dq = match qdq_done.get(&a) {
            Some(d) => d.clone(),
            None => {
                let (s, z, q, d) = (
                    format!("{a}_scale"),
                    format!("{a}_zero_point"),
                    format!("{a}_quantized"),
                    format!("{a}_dequantized"),
                );
                g.initializers.insert(s.clone(), Tensor::scalar_f32(ap.scale));
                g.initializers.insert(z.clone(), zp_tensor(aq, vec![ap.zero_point]));
                let (qop, dqop) = (format!("{dom}QuantizeLinear"), format!("{dom}DequantizeLinear"));
                new_nodes.push(qdq_node(&qop, &format!("{a}_QuantizeLinear"), [&a, &s, &z], &q, None));
                new_nodes.push(qdq_node(&dqop, &format!("{a}_DequantizeLinear"), [&q, &s, &z], &d, None));
                qdq_done.insert(a.clone(), d.clone());
                d
            }
        };
        n.inputs[0] = a_dq;

        // Weights.
        let wname = n.inputs[1].clone();
        let w = g.initializers[&wname].clone();
        let wdata = w.as_f32()?.to_vec();
        let axis = weight_axis(&n, &w)?;
        let wparams = if per_channel {
            per_channel_params(&wdata, &w.shape, axis, QType::INT8, Scheme::Symmetric)?
        } else {
            let (lo, hi) = crate::quant::min_max(&wdata)?;
            vec![crate::quant::params_or_unit(lo as f64, hi as f64, QType::INT8, Scheme::Symmetric)?]
        };
        let (outer, ch, inner) =
            if per_channel { crate::quant::split_axis(wdata.len(), &w.shape, axis)? } else { (1, 1, wdata.len()) };
        let mut wq = vec![0i8; wdata.len()];
        let mut wfake = vec![0f32; wdata.len()];
        for o in 0..outer {
            for (c, p) in wparams.iter().enumerate().take(ch) {
                let b = (o * ch + c) * inner;
                for k in b..b + inner {
                    let q = p.quantize(wdata[k], QType::INT8);
                    wq[k] = q as i8;
                    wfake[k] = p.dequantize(q);
                }
            }
        }
        let wm = error_metrics(&wdata, &wfake)?;
        let (wl, wh) = crate::quant::min_max(&wdata)?;
        let ws = stem(&wname);
        let (wqn, wsn, wzn, wdq) =
            (format!("{ws}_quantized"), format!("{ws}_scale"), format!("{ws}_zero_point"), format!("{ws}_dequantized"));
        let scales: Vec<f32> = wparams.iter().map(|p| p.scale).collect();
        let shape_of = |n: usize| if n == 1 && !per_channel { vec![] } else { vec![n] };
        g.initializers.insert(wqn.clone(), Tensor::i8(w.shape.clone(), wq)?);
        g.initializers.insert(wsn.clone(), Tensor::f32(shape_of(scales.len()), scales.clone())?);
        g.initializers.insert(
            wzn.clone(),
            Tensor { shape: shape_of(scales.len()), data: crate::model::Data::I8(vec![0; scales.len()]) },
        );
        new_nodes.push(qdq_node(
            "DequantizeLinear",
            &format!("{ws}_DequantizeLinear"),
            [&wqn, &wsn, &wzn],
            &wdq,
            per_channel.then_some(axis as i64),
        ));
        n.inputs[1] = wdq;

        // Bias (Conv input 2 / Gemm C when it is one value per output channel): int32, s_in·s_w.
        if let Some(bname) = n.inputs.get(2).filter(|b| !b.is_empty()).cloned() {
            if let Some(bt) = g.initializers.get(&bname).cloned() {
                let bdata = bt.as_f32()?;
                let nb = bdata.len();
                if bt.shape.len() == 1 && (scales.len() == nb || scales.len() == 1) {
                    let bs: Vec<f32> =
                        (0..nb).map(|c| ap.scale * scales[if scales.len() == 1 { 0 } else { c }]).collect();
                    let bq: Vec<i32> = bdata
                        .iter()
                        .zip(&bs)
                        .map(|(&b, &s)| (b / s).round_ties_even().clamp(i32::MIN as f32, i32::MAX as f32) as i32)
                        .collect();
                    let bs_ = stem(&bname);
                    let (bqn, bsn, bdq) =
                        (format!("{bs_}_quantized"), format!("{bs_}_scale"), format!("{bs_}_dequantized"));
                    g.initializers.insert(bqn.clone(), Tensor::i32(vec![nb], bq)?);
                    g.initializers.insert(bsn.clone(), Tensor::f32(vec![nb], bs)?);
                    new_nodes.push(Node {
                        name: format!("{bs_}_DequantizeLinear"),
                        op_type: "DequantizeLinear".into(),
                        inputs: vec![bqn, bsn],
                        outputs: vec![bdq.clone()],
                        attrs: Attrs([("axis".to_string(), Attr::Int(0))].into_iter().collect()),
                    });
                    n.inputs[2] = bdq;
                }
            }
        }
        layers.push(LayerReport {
            node: n.name.clone(),
            op: n.op_type.clone(),
            activation: ActivationReport {
                tensor: a,
                observed,
                clip,
                scale: ap.scale,
                zero_point: ap.zero_point,
                ..Default::default()
            },
            weight_range: (wl, wh),
            weight_scales: scales.len(),
            weight_sqnr_db: wm.sqnr_db,
            sensitivity_sqnr_db: None,
            weight_histogram: report::weight_histogram(&wdata),
            channel_scales: scales,
            output_sqnr_db: None,
        });
        new_nodes.push(n);
    }
    g.nodes = new_nodes;
    // Drop float weights nothing reads any more.
    let used: HashSet<String> = g.nodes.iter().flat_map(|n| n.inputs.iter().cloned()).collect();
    g.initializers.retain(|k, _| used.contains(k) || g.outputs.iter().any(|o| &o.name == k));
    Ok((g, layers))
}
