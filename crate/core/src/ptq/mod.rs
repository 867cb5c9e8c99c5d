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
pub mod gptq;
mod gptq_asym;
pub mod recipe;

mod calibrate;

mod options;
mod qdq;
mod report;

pub use calibrate::refuse_integer_models;
pub use options::{MixedTo, PtqOptions};
pub use report::{coarsen, ActivationReport, LayerReport, MethodClip, Report, REPORT_BINS};

use crate::model::OpKind;
use crate::model::{load_onnx, save_onnx_with, Graph, ModelError, Plan, Tensor};
use crate::ops::Registry;
use crate::parallel;
use crate::quant::{error_metrics, QType, QuantError, Scheme};
use crate::Error;
use qdq::{halve_float_initializers, rewrite, ActParams};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;

/// Wall-clock laps per phase; a no-op on wasm32, whose std has no clock.
#[derive(Clone)]
pub(crate) struct Phases {
    #[cfg(not(target_arch = "wasm32"))]
    last: std::time::Instant,
    laps: Vec<(&'static str, f64)>,
}

impl Phases {
    pub(crate) fn start() -> Phases {
        Phases {
            #[cfg(not(target_arch = "wasm32"))]
            last: std::time::Instant::now(),
            laps: Vec::new(),
        }
    }

    /// Ends the phase `name` (the time since the previous lap).
    pub(crate) fn lap(&mut self, name: &'static str) {
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
    quantize_inner(graph, input, calib, opts, progress)
}

/// The quantization run with one recipe, calibrated on every input, with the report.
fn quantize_inner(
    graph: &Graph,
    input: &str,
    calib: &[Tensor],
    opts: &PtqOptions,
    progress: &mut Progress<'_>,
) -> Result<Quantized, Error> {
    calibrate::check_inputs(calib)?;
    let mut p = calibrate::prepare(graph, opts)?;
    gptq::apply(&mut p, opts, input, calib, progress)?;
    let sink = calibrate::Sink {
        method: opts.method,
        bias_correction: opts.bias_correction,
        inputs: (0..calib.len()).collect(),
    };
    let c = calibrate::calibrate(&p, opts, input, calib, &[sink], progress)?.pop();
    let Some(c) = c else { return Err(QuantError::NoCalibrationData.into()) };
    p.phases.lap(if opts.bias_correction {
        "calibration (FP32 runs, observers, bias shifts)"
    } else {
        "calibration (FP32 runs, observers)"
    });
    finish(graph, p, c, input, calib, opts, progress, true)
}

/// The second half of a quantization, after [`calibrate::calibrate`]: activation ranges, the
/// sensitivity analysis, bias correction, the QDQ rewrite, the export and its reload, and (with
/// `measure`) the report's measurements over `calib`, the inputs `c` was calibrated on.
#[allow(clippy::too_many_arguments)]
fn finish(
    graph: &Graph,
    p: calibrate::Prepared,
    c: calibrate::Calibrated,
    input: &str,
    calib: &[Tensor],
    opts: &PtqOptions,
    progress: &mut Progress<'_>,
    measure: bool,
) -> Result<Quantized, Error> {
    let shape = calibrate::check_inputs(calib)?;
    let registry = Registry::new();
    let calibrate::Prepared {
        g,
        fixed,
        mut notes,
        int4,
        per_channel,
        mut targets,
        mut kept,
        act_names: _,
        mut phases,
        mut codes,
        shifts,
    } = p;
    let mut g = g;
    // The options the rewrite uses: `opts`, with the layers `--auto-mixed` moves to 8-bit
    // weights (which then get no bias correction: it was measured for their narrower weights).
    let mut widened = opts.clone();
    let mut uncorrected: Vec<usize> = Vec::new();
    let calibrate::Calibrated { observers, bc, fp32_outputs } = c;

    // Activation parameters (8- and 16-bit), each observer a task of its own.
    let act16_type = QType { bits: 16, signed: opts.activation.signed, restricted: false };
    // 16-bit ranges only where a layer can get 16-bit activations (the rewrite reads them for
    // those alone).
    let need16 = opts.activation.bits == 16
        || !opts.keep_16bit.is_empty()
        || (opts.auto_mixed > 0 && opts.mixed_to == MixedTo::Activations16);
    let ranges = parallel::try_map(observers.len(), |i| -> Result<_, Error> {
        let (name, o) = &observers[i];
        if o.batches() == 0 {
            return Ok((name.clone(), None));
        }
        let of = |qtype: QType| -> Result<ActParams, Error> {
            let (lo, hi) = o.range(qtype, Scheme::Asymmetric)?;
            let p = crate::quant::params_or_unit(lo as f64, hi as f64, qtype, Scheme::Asymmetric)?;
            Ok((p, o.min_max().unwrap_or((lo, hi)), (lo, hi)))
        };
        Ok((name.clone(), Some((of(opts.activation)?, if need16 { Some(of(act16_type)?) } else { None }))))
    })?;
    let mut act_params: HashMap<String, ActParams> = HashMap::new();
    let mut act16_params: HashMap<String, ActParams> = HashMap::new();
    let mut unobserved: HashSet<String> = HashSet::new();
    for (name, p) in ranges {
        match p {
            Some((p8, p16)) => {
                act_params.insert(name.clone(), p8);
                if let Some(p16) = p16 {
                    act16_params.insert(name, p16);
                }
            }
            None => {
                unobserved.insert(name);
            }
        }
    }
    // A layer whose input the calibration runs never computed (folded into a constant when the
    // graph was planned: it depends on the weights alone, e.g. a DETR decoder's first queries)
    // has no range to quantize it with: it stays FP32, and the report says so.
    targets.retain(|&t| {
        let n = &g.nodes[t];
        if !unobserved.contains(&n.inputs[0]) {
            return true;
        }
        notes.push(format!(
            "kept FP32: `{}` (its input `{}` never varies: computed from constants alone, it has no calibration range)",
            n.name, n.inputs[0]
        ));
        kept.push(n.name.clone());
        false
    });
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
                let (gi, _) =
                    rewrite(&g, &t, &act_params, &act16_params, &HashSet::new(), opts, per_channel, int4, &codes)?;
                let db = output_sqnr(&gi, input, probe, &fp32_outputs, &registry)?;
                Ok(db.into_values().fold(f64::INFINITY, f64::min))
            })?;
            for (&t, db) in chunk.iter().zip(dbs) {
                sensitivity.insert(g.nodes[t].name.clone(), db);
            }
        }
        let mut by: Vec<usize> = targets.clone();
        // 8-bit weights can only help the layers whose weights are narrower.
        if opts.mixed_to == MixedTo::Weights8 {
            by.retain(|&t| opts.weight_of(&g.nodes[t].name).bits < 8);
        }
        by.sort_by(|a, b| sensitivity[&g.nodes[*a].name].total_cmp(&sensitivity[&g.nodes[*b].name]));
        by.truncate(opts.auto_mixed);
        for &w in &by {
            let name = &g.nodes[w].name;
            match opts.mixed_to {
                MixedTo::Activations16 => act16.push(name.clone()),
                MixedTo::Fp32 => kept.push(name.clone()),
                MixedTo::Weights8 => {
                    widened.layer_weight_bits.push((name.clone(), 8));
                    codes.remove(name);
                }
            }
            notes.push(format!(
                "{} by --auto-mixed: `{name}` (output SQNR {:.1} dB when only it is quantized)",
                opts.mixed_to.label(),
                sensitivity[name]
            ));
        }
        if opts.mixed_to == MixedTo::Fp32 {
            targets.retain(|t| !by.contains(t));
        }
        if opts.mixed_to == MixedTo::Weights8 {
            if by.is_empty() {
                notes.push("--auto-mixed to 8-bit weights: every layer's weights are 8-bit already; nothing moved (choose fewer weight bits, or FP32 / 16-bit activations)".into());
            }
            uncorrected = by.clone();
        }
        phases.lap("sensitivity (--auto-mixed)");
    }
    let reference = if measure { Some(report::Reference::new(&g, &registry, input, &shape)?) } else { None };
    let corrected: Vec<usize> = targets.iter().copied().filter(|t| !uncorrected.contains(t)).collect();
    if let Some(bc) = bc {
        let k = bc.apply(&mut g, &corrected, &shifts);
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
        rewrite(&g, &targets, &act_params, &act16_params, &act16_tensors, &widened, per_channel, int4, &codes)?;
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
    let compact = crate::model::qdq_form::compact_qdq(&mut g);
    if compact.bias_scales > 0 {
        notes.push(format!(
            "{} bias scales written as `Mul(input scale, weight scale)`, the product they are, and {} all-zero weight zero-points left out (ONNX's default): a smaller file, the same values",
            compact.bias_scales, compact.zero_points
        ));
    }
    // The file takes its inputs as the user's did (uint8 pixels, no batch axis); qplay runs it
    // as it ran the model, with them fed as float images again.
    let restored = crate::model::restore_image_inputs(&mut g);
    let onnx = save_onnx_with(&g, "qplay", &half);
    let mut reloaded = load_onnx(&onnx)?;
    if !restored.is_empty() {
        crate::model::float_image_inputs(&mut reloaded);
    }
    let own = crate::model::convert::qplay_only_ops(&reloaded);
    if !own.is_empty() {
        notes.push(format!(
            "the file keeps ops only qplay runs ({}): qplay runs it, onnxruntime does not",
            own.join(", ")
        ));
    }
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
        weight_rounding: if codes.is_empty() { "nearest" } else { "gptq" },
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
    Ok(plan.run_keeping(&[(input.to_string(), x.clone())], keep)?)
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
    let mut compared = vec![false; names.len()];
    for (out, fp) in outs.iter().zip(fp32_outputs) {
        for (k, (a, b)) in fp.iter().zip(out).enumerate() {
            // An output whose shape depends on the values (rows kept by NMS) compares only
            // where both runs kept as many.
            if a.shape == b.shape {
                refs[k].extend(a.to_f32_vec());
                approx[k].extend(b.to_f32_vec());
                compared[k] = true;
            }
        }
    }
    let mut db = BTreeMap::new();
    for (k, n) in names.iter().enumerate().filter(|(k, _)| compared[*k]) {
        db.insert(n.clone(), error_metrics(&refs[k], &approx[k])?.sqnr_db);
    }
    Ok(db)
}
