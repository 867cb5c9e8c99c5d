//! The first half of a quantization: the graph as calibration sees it ([`prepare`]) and the FP32
//! runs that measure it ([`calibrate`]).
//!
//! One calibration pass can feed several consumers ([`Sink`]s): the recipe search
//! ([`super::recipe`]) calibrates every candidate that shares a graph on the same FP32 runs, and
//! at the same time the recipe's final calibration on every input, so the model runs once per
//! input and graph however many recipes are tried. Each sink sees exactly the inputs it names,
//! in calibration order, so what it collects equals a pass of its own.

use super::bias_correction::{BiasCorrection, ShiftMeter};
use super::{equalize, run_keeping, tell, Phases, Progress, PtqOptions, OPSET13_CHANGED, QUANTIZABLE};
use crate::model::{passes::fold_batchnorm_into_conv, DType, Graph, ModelError, Node, Plan, Tensor, ValueInfo};
use crate::ops::Registry;
use crate::parallel;
use crate::quant::{Calibration, Observer, QuantError};
use crate::Error;
use std::collections::HashSet;

/// The graph as calibration sees it, and what of it is quantized.
#[derive(Clone)]
pub(super) struct Prepared {
    /// Inputs besides the calibrated one bound as constants, BatchNormalization folded,
    /// equalized when asked, the opset raised where the export needs it.
    pub(super) g: Graph,
    /// The bound inputs, restored before the export.
    pub(super) fixed: Vec<ValueInfo>,
    /// What was changed, for the report.
    pub(super) notes: Vec<String>,
    /// Weights stored as int4.
    pub(super) int4: bool,
    /// Weights per output channel.
    pub(super) per_channel: bool,
    /// Indices of the nodes to quantize.
    pub(super) targets: Vec<usize>,
    /// Quantizable nodes kept FP32 (asked for, or without constant weights).
    pub(super) kept: Vec<String>,
    /// The activations the targets read.
    pub(super) act_names: HashSet<String>,
    /// Time so far.
    pub(super) phases: Phases,
    /// Weight codes from error-compensating rounding ([`super::gptq`]); empty: round to nearest.
    pub(super) codes: super::gptq::WeightCodes,
    /// The mean output shifts of those codes on the quantized model's own inputs, measured
    /// with them; bias correction uses these for the layers they cover.
    pub(super) shifts: super::gptq::BiasShifts,
}

/// Checks that every calibration input is float32 of one shape; returns the shape.
pub(super) fn check_inputs(calib: &[Tensor]) -> Result<Vec<usize>, Error> {
    let Some(first) = calib.first() else { return Err(QuantError::NoCalibrationData.into()) };
    let shape = first.shape.clone();
    if let Some(bad) = calib.iter().find(|t| t.shape != shape || t.dtype() != DType::F32) {
        return Err(ModelError::Other(format!(
            "calibration inputs must all be float32 of shape {shape:?}; one is {:?} of shape {:?}",
            bad.dtype(),
            bad.shape
        ))
        .into());
    }
    Ok(shape)
}

/// Binds the other inputs, folds BatchNormalization, equalizes (`opts.equalize`), checks the
/// weight type, raises the opset where int4 or per-channel weights need it, and picks the nodes
/// to quantize.
/// A model that is integer already (a full-integer TFLite file: TFLite's integer kernels, no
/// float layers) has nothing to quantize: said, with what to do, rather than a "quantized" copy
/// with no int8 layer and an infinite SQNR.
pub fn refuse_integer_models(graph: &Graph) -> Result<(), Error> {
    let ops = op_types_where(graph, |n| crate::ops::tflite::is_tflite_op(&n.op_type));
    if ops.is_empty() {
        return Ok(());
    }
    Err(ModelError::Other(format!(
        "this model is integer already: it runs TFLite's integer kernels ({}), so it has no float layers to quantize. \
         Quantize its float model instead (the .tflite before full-integer conversion, or the original ONNX export), \
         and compare the two with `qplay compare FLOAT_MODEL THIS_MODEL --images DIR` (in the page: \"…or compare with \
         your own INT8 model\")",
        ops.iter().map(|o| o.trim_start_matches(crate::ops::tflite::PREFIX)).collect::<Vec<_>>().join(", ")
    ))
    .into())
}

/// A model with no float layer left to quantize whose layers run on quantized values (QDQ,
/// QOperator or dynamic quantization: an INT8 export): said, with what to do, rather than a
/// copy with no layer quantized and an infinite SQNR.
fn refuse_quantized_models(graph: &Graph) -> Result<(), Error> {
    let ops = op_types_where(graph, Node::is_quantized_op);
    if ops.is_empty() {
        return Ok(());
    }
    Err(ModelError::Other(format!(
        "this model is quantized already: its layers run on quantized values ({}), so it has no float layers to quantize. \
         Quantize its float model instead (the original export, before quantization), and compare the two with \
         `qplay compare FLOAT_MODEL THIS_MODEL --images DIR` (in the page: \"…or compare with your own INT8 model\")",
        ops.join(", ")
    ))
    .into())
}

/// The distinct op types of the nodes `pick` marks, sorted.
fn op_types_where(graph: &Graph, pick: impl Fn(&Node) -> bool) -> Vec<&str> {
    let mut ops: Vec<&str> = graph.nodes.iter().filter(|n| pick(n)).map(|n| n.op_type.as_str()).collect();
    ops.sort_unstable();
    ops.dedup();
    ops
}

pub(super) fn prepare(graph: &Graph, opts: &PtqOptions) -> Result<Prepared, Error> {
    refuse_integer_models(graph)?;
    let mut phases = Phases::start();
    let mut g = graph.clone();
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
    if targets.is_empty() {
        refuse_quantized_models(&g)?;
    }
    let layers: Vec<&str> = g.nodes.iter().filter(|n| n.is_any(&QUANTIZABLE)).map(|n| n.name.as_str()).collect();
    opts.check_layer_names(&layers).map_err(ModelError::Other)?;
    let own: Vec<String> = targets
        .iter()
        .map(|&t| g.nodes[t].name.as_str())
        .filter(|n| opts.weight_of(n) != opts.weight)
        .map(|n| format!("`{n}` {}", opts.weight_of(n).bits))
        .collect();
    if !own.is_empty() {
        notes.push(format!("weight bits per layer ({} elsewhere): {}", opts.weight.bits, own.join(", ")));
    }
    // 4-bit weights go into the file as int4, which DequantizeLinear reads from opset 21.
    let lowest = opts.lowest_weight_bits(targets.iter().map(|&t| g.nodes[t].name.as_str()));
    let mut int4 = lowest <= 4 && opts.pack_int4;
    if int4 && g.opset < 21 {
        match super::opset21_blocker(&g) {
            None => {
                notes.push(format!("opset raised from {} to 21 for int4 weights (DequantizeLinear of int4)", g.opset));
                g.opset = 21;
            }
            Some(why) => {
                int4 = false;
                notes.push(format!(
                    "{}-bit weights stored in int8: int4 needs opset 21, and raising opset {} to 21 would change {why}",
                    lowest, g.opset
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

    let act_names: HashSet<String> = targets.iter().map(|&i| g.nodes[i].inputs[0].clone()).collect();
    Ok(Prepared {
        g,
        fixed,
        notes,
        int4,
        per_channel,
        targets,
        kept,
        act_names,
        phases,
        codes: Default::default(),
        shifts: Default::default(),
    })
}

/// One consumer of a calibration pass: an observer method, bias correction or not, over the
/// inputs it names.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sink {
    /// The activation observer.
    pub(super) method: Calibration,
    /// Measure the bias shifts too.
    pub(super) bias_correction: bool,
    /// Indices of the calibration inputs it sees, in calibration order.
    pub(super) inputs: Vec<usize>,
}

/// What a [`Sink`] collected.
pub(super) struct Calibrated {
    /// One observer per activation, in name order.
    pub(super) observers: Vec<(String, Observer)>,
    /// The bias shifts, when the sink measures them.
    pub(super) bc: Option<BiasCorrection>,
    /// The FP32 outputs of the sink's inputs, in its order.
    pub(super) fp32_outputs: Vec<Vec<Tensor>>,
}

/// Runs the FP32 graph of `p` once on each calibration input any sink names and feeds every
/// sink that names it; `stage` is told each input ("calibration: input 3 of 7").
pub(super) fn calibrate(
    p: &Prepared,
    opts: &PtqOptions,
    input: &str,
    calib: &[Tensor],
    sinks: &[Sink],
    progress: &mut Progress<'_>,
) -> Result<Vec<Calibrated>, Error> {
    let shape = check_inputs(calib)?;
    let registry = Registry::new();
    let plan = Plan::new(&p.g, &registry, &[(input.to_string(), shape)])?;
    let mut names: Vec<&String> = p.act_names.iter().collect();
    // In name order, so that the first error is the same on any number of threads.
    names.sort();
    // Bias correction measures on the same FP32 runs (the weights are final once equalized),
    // each input once for every sink that corrects biases.
    let mut meter = if sinks.iter().any(|s| s.bias_correction) {
        Some(ShiftMeter::new(&p.g, &p.targets, p.per_channel, opts, &p.codes, &p.shifts)?)
    } else {
        None
    };
    let mut out: Vec<Calibrated> = Vec::new();
    for s in sinks {
        if s.inputs.is_empty() {
            return Err(QuantError::NoCalibrationData.into());
        }
        out.push(Calibrated {
            observers: names.iter().map(|&n| (n.clone(), s.method.observer())).collect(),
            bc: meter.as_ref().filter(|_| s.bias_correction).map(ShiftMeter::correction),
            fp32_outputs: Vec::new(),
        });
    }
    let mut wanted: HashSet<String> = p.act_names.clone();
    wanted.extend(meter.iter().flat_map(|m| m.reads()).map(String::from));
    let used: Vec<usize> = (0..calib.len()).filter(|k| sinks.iter().any(|s| s.inputs.contains(k))).collect();
    for (i, &k) in used.iter().enumerate() {
        tell(progress, &format!("calibration: input {} of {}", i + 1, used.len()))?;
        let (outputs, mut seen) = run_keeping(&plan, input, &calib[k], &|name| wanted.contains(name))?;
        if wanted.contains(input) {
            seen.insert(input.to_string(), calib[k].clone());
        }
        // Each tensor's min and max once for every sink's observers (a task each, in name
        // order: the first non-finite tensor is the error whatever the number of threads).
        let ranges: Vec<Option<(f32, f32)>> =
            parallel::try_map(names.len(), |i| match seen.get(names[i].as_str()).map(Tensor::as_f32) {
                Some(Ok(d)) => crate::quant::min_max(d).map(Some),
                _ => Ok(None),
            })?;
        let shifts = match meter.as_mut() {
            Some(m) if sinks.iter().any(|s| s.bias_correction && s.inputs.contains(&k)) => {
                Some(m.measure_run(&p.g, &seen, &registry)?)
            }
            _ => None,
        };
        for (s, c) in sinks.iter().zip(&mut out) {
            if !s.inputs.contains(&k) {
                continue;
            }
            c.fp32_outputs.push(outputs.clone());
            // Each observer is a task of its own over its tensor; each sees the inputs in
            // calibration order.
            parallel::for_each_mut(&mut c.observers, |i, (name, o)| {
                if let (Some(Ok(d)), Some(range)) = (seen.get(name.as_str()).map(Tensor::as_f32), ranges[i]) {
                    o.observe_in(d, range);
                }
            });
            if let (Some(bc), Some(shifts)) = (c.bc.as_mut(), shifts.as_ref()) {
                bc.add(shifts);
            }
        }
    }
    Ok(out)
}
