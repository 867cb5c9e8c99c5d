//! Post-training quantization of a whole model to the QDQ format.
//!
//! 1. BatchNormalization is folded into the preceding Conv; then (default on) cross-layer
//!    equalization evens out the per-channel weight ranges of Conv → act → Conv pairs
//!    ([`equalize`]).
//! 2. Calibration: the FP32 model runs on each calibration input; an [`Observer`] per activation
//!    tensor that feeds a Conv / MatMul / Gemm collects its range.
//! 3. Weights become int8 initializers (or narrower: 2 to 7 bits, stored as int4 at 4 bits and
//!    below), symmetric per output channel (or per tensor), each behind a `DequantizeLinear`; biases int32 with scale `s_in · s_w` and zero-point 0;
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

mod options;
mod qdq;
mod report;

pub use options::PtqOptions;
pub use report::{coarsen, ActivationReport, LayerReport, MethodClip, Report, REPORT_BINS};

use crate::model::OpKind;
use crate::model::{
    load_onnx, passes::fold_batchnorm_into_conv, save_onnx_with, DType, Graph, ModelError, Plan, Tensor,
};
use crate::ops::Registry;
use crate::parallel;
use crate::quant::{error_metrics, Observer, QType, QuantError, Scheme};
use crate::Error;
use qdq::{halve_float_initializers, rewrite, ActParams};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;

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
const QUANTIZABLE: [OpKind; 3] = [OpKind::Conv, OpKind::MatMul, OpKind::Gemm];

/// Ops whose attribute/input forms changed between opsets 11 and 13; a graph using them is not
/// raised to opset 13, and its weights are quantized per tensor instead.
const OPSET13_CHANGED: [OpKind; 7] = [
    OpKind::Split,
    OpKind::Squeeze,
    OpKind::Unsqueeze,
    OpKind::ReduceSum,
    OpKind::Softmax,
    OpKind::LogSoftmax,
    OpKind::Hardmax,
];

/// Why the graph cannot be raised to opset 21 as it is: an op whose form changed on the way
/// (the axes attribute of reductions became an input at 18, Split without sizes needs
/// `num_outputs` from 18, GridSample's mode names changed at 20, and the opset-13 changes).
fn opset21_blocker(g: &Graph) -> Option<String> {
    const REDUCE: [OpKind; 5] =
        [OpKind::ReduceSum, OpKind::ReduceMean, OpKind::ReduceMax, OpKind::ReduceMin, OpKind::ReduceProd];
    g.nodes.iter().find_map(|n| {
        let changed = (g.opset < 13 && n.is_any(&OPSET13_CHANGED))
            || (g.opset < 18 && n.is_any(&REDUCE) && n.attrs.ints("axes").is_some())
            || (g.opset < 18 && n.is(OpKind::Split) && n.inputs.len() < 2 && n.attrs.int_opt("num_outputs").is_none())
            || (g.opset < 20
                && n.is(OpKind::GridSample)
                && matches!(n.attrs.string("mode", "linear"), "bilinear" | "bicubic"));
        changed.then(|| format!("`{}` ({})", n.name, n.op_type))
    })
}

/// Quantizes `graph` with calibration inputs for its single input `input`.
pub fn quantize(graph: &Graph, input: &str, calib: &[Tensor], opts: &PtqOptions) -> Result<Quantized, Error> {
    quantize_with_progress(graph, input, calib, opts, &mut |_| ControlFlow::Continue(()))
}

/// What a long run tells about itself: called with each stage ("calibration: input 3 of 7", …),
/// it answers whether to go on. [`ControlFlow::Break`] stops the run at that point with
/// [`ModelError::Cancelled`](crate::model::ModelError::Cancelled) (a page's Cancel).
pub type Progress<'a> = dyn FnMut(&str) -> ControlFlow<()> + 'a;

/// Tells `progress` the stage; an error when it asks to stop.
pub(crate) fn tell(progress: &mut Progress<'_>, stage: &str) -> Result<(), Error> {
    match progress(stage) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(ModelError::Cancelled.into()),
    }
}

/// [`quantize`], telling `progress` what it is doing: each calibration input, each layer of the
/// sensitivity analysis, the rewrite, the export and each input of the report's measurements;
/// it may stop the run at any of them ([`Progress`]).
pub fn quantize_with_progress(
    graph: &Graph,
    input: &str,
    calib: &[Tensor],
    opts: &PtqOptions,
    progress: &mut Progress<'_>,
) -> Result<Quantized, Error> {
    quantize_inner(graph, input, calib, opts, progress, true)
}

/// The quantization run; `measure: false` skips the report's measurements (the FP32 and QDQ
/// runs for per-layer and output SQNR, histograms): what a candidate of the recipe search needs.
pub(crate) fn quantize_inner(
    graph: &Graph,
    input: &str,
    calib: &[Tensor],
    opts: &PtqOptions,
    progress: &mut Progress<'_>,
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
    if !opts.weight.signed || !(2..=8).contains(&opts.weight.bits) {
        return Err(ModelError::Other(format!(
            "weights are quantized to signed 2 to 8 bits; got {} {} bits",
            if opts.weight.signed { "signed" } else { "unsigned" },
            opts.weight.bits
        ))
        .into());
    }
    // 4-bit weights go into the file as int4, which DequantizeLinear reads from opset 21.
    let mut int4 = opts.weight.bits <= 4 && opts.pack_int4;
    if int4 && g.opset < 21 {
        match opset21_blocker(&g) {
            None => {
                notes.push(format!("opset raised from {} to 21 for int4 weights (DequantizeLinear of int4)", g.opset));
                g.opset = 21;
            }
            Some(why) => {
                int4 = false;
                notes.push(format!(
                    "{}-bit weights stored in int8: int4 needs opset 21, and raising opset {} to 21 would change {why}",
                    opts.weight.bits, g.opset
                ));
            }
        }
    }
    let mut per_channel = opts.per_channel;
    if per_channel && g.opset < 13 {
        if g.nodes.iter().any(|n| n.is_any(&OPSET13_CHANGED)) {
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
        if !n.is_any(&QUANTIZABLE) {
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
    // One observer per activation, in name order (so that the first error is the same on any
    // number of threads).
    let mut observers: Vec<(String, Observer)> =
        act_names.iter().map(|n| (n.clone(), opts.method.observer())).collect();
    observers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut fp32_outputs = Vec::new();
    // Bias correction measures on the same FP32 runs (the weights are final once equalized).
    let mut bc = if opts.bias_correction {
        Some(bias_correction::BiasCorrection::new(&g, &targets, per_channel, opts.weight)?)
    } else {
        None
    };
    let mut wanted: HashSet<String> = act_names.clone();
    wanted.extend(bc.iter().flat_map(|bc| bc.reads()).map(String::from));
    for (k, x) in calib.iter().enumerate() {
        tell(progress, &format!("calibration: input {} of {}", k + 1, calib.len()))?;
        let (out, mut seen) = run_keeping(&plan, input, x, &|name| wanted.contains(name))?;
        if wanted.contains(input) {
            seen.insert(input.to_string(), x.clone());
        }
        fp32_outputs.push(out);
        // Each observer, and each layer's bias shift, is a task of its own over its tensor; each
        // sees the inputs in calibration order.
        parallel::try_for_each_mut(&mut observers, |_, (name, o)| match seen.get(name.as_str()).map(Tensor::as_f32) {
            Some(Ok(d)) => o.observe(d),
            _ => Ok(()),
        })?;
        if let Some(bc) = bc.as_mut() {
            bc.observe_run(&g, &seen, &registry)?;
        }
    }
    phases.lap(if opts.bias_correction {
        "calibration (FP32 runs, observers, bias shifts)"
    } else {
        "calibration (FP32 runs, observers)"
    });

    // Activation parameters (8- and 16-bit), each observer a task of its own.
    let act16_type = QType { bits: 16, signed: opts.activation.signed, restricted: false };
    let ranges = parallel::try_map(observers.len(), |i| -> Result<_, Error> {
        let (name, o) = &observers[i];
        let of = |qtype: QType| -> Result<ActParams, Error> {
            let (lo, hi) = o.range(qtype, Scheme::Asymmetric)?;
            let p = crate::quant::params_or_unit(lo as f64, hi as f64, qtype, Scheme::Asymmetric)?;
            Ok((p, o.min_max().unwrap_or((lo, hi)), (lo, hi)))
        };
        Ok((name.clone(), of(opts.activation)?, of(act16_type)?))
    })?;
    let mut act_params: HashMap<String, ActParams> = HashMap::new();
    let mut act16_params: HashMap<String, ActParams> = HashMap::new();
    for (name, p8, p16) in ranges {
        act_params.insert(name.clone(), p8);
        act16_params.insert(name, p16);
    }
    let mut act16: Vec<String> =
        targets.iter().map(|&t| g.nodes[t].name.clone()).filter(|n| opts.keep_16bit.contains(n)).collect();
    phases.lap("activation ranges");
    // Per-layer sensitivity: output SQNR when only that layer is quantized; the worst
    // `auto_mixed` layers stay FP32.
    let mut sensitivity: HashMap<String, f64> = HashMap::new();
    if opts.auto_mixed > 0 {
        let probe = &calib[..calib.len().min(2)];
        // As many layers at once as there are threads, each a task of its own; progress is
        // told here, before each batch.
        let batch = parallel::threads();
        for (b, chunk) in targets.chunks(batch).enumerate() {
            for (i, &t) in chunk.iter().enumerate() {
                tell(
                    progress,
                    &format!("sensitivity: layer {} of {} ({})", b * batch + i + 1, targets.len(), g.nodes[t].name),
                )?;
            }
            let dbs = parallel::try_map(chunk.len(), |i| -> Result<f64, Error> {
                let t = [chunk[i]];
                let (gi, _) = rewrite(&g, &t, &act_params, &act16_params, &HashSet::new(), opts, per_channel, int4)?;
                let db = output_sqnr(&gi, input, probe, &fp32_outputs, &registry)?;
                Ok(db.into_values().fold(f64::INFINITY, f64::min))
            })?;
            for (&t, db) in chunk.iter().zip(dbs) {
                sensitivity.insert(g.nodes[t].name.clone(), db);
            }
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
    tell(progress, &format!("rewriting {} layers to QDQ", targets.len()))?;
    // A tensor read by a 16-bit layer is quantized to 16 bits for every reader.
    let act16_tensors: HashSet<String> =
        targets.iter().filter(|&&t| act16.contains(&g.nodes[t].name)).map(|&t| g.nodes[t].inputs[0].clone()).collect();
    if !act16.is_empty() {
        notes.push(format!(
            "16-bit activations (uint16, weights {}) for {} layer(s): {}",
            if opts.weight.bits == 8 { "int8".to_string() } else { format!("{}-bit", opts.weight.bits) },
            act16.len(),
            act16.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    let (mut g, mut layers) =
        rewrite(&g, &targets, &act_params, &act16_params, &act16_tensors, opts, per_channel, int4)?;
    for l in &mut layers {
        l.sensitivity_sqnr_db = sensitivity.get(&l.node).copied();
    }
    g.toposort()?;

    // Serialise, reload (the export gate: what we write must load and run), and measure.
    phases.lap("QDQ rewrite");
    tell(progress, "exporting the QDQ file and loading it back")?;
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
        activation_type: match (opts.activation.bits, opts.activation.signed) {
            (16, true) => "int16",
            (16, false) => "uint16",
            (_, true) => "int8",
            (_, false) => "uint8",
        },
        weight_bits: opts.weight.bits,
        weight_storage: if int4 { "int4" } else { "int8" },
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

/// Runs `plan` on `x` (its input `input`), keeping a copy of each computed tensor whose name
/// `keep` accepts: the outputs, and the kept tensors by name.
pub(crate) fn run_keeping(
    plan: &Plan,
    input: &str,
    x: &Tensor,
    keep: &(dyn Fn(&str) -> bool + Sync),
) -> Result<(Vec<Tensor>, HashMap<String, Tensor>), Error> {
    let mut seen = HashMap::new();
    let out = plan.run_with(&[(input.to_string(), x.clone())], &mut |name, t| {
        if keep(name) {
            seen.insert(name.to_string(), t.clone());
        }
    })?;
    Ok((out, seen))
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
    // The inputs at once; their outputs appended in input order.
    let outs = parallel::try_map(inputs.len().min(fp32_outputs.len()), |i| {
        plan.run(&[(input.to_string(), inputs[i].clone())])
    })?;
    for (out, fp) in outs.iter().zip(fp32_outputs) {
        for (k, (a, b)) in fp.iter().zip(out).enumerate() {
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
