//! The quality report: what a run produced and measured ([`Report`], one [`LayerReport`] per
//! quantized node), and its measurements, taken after the QDQ model is written: each activation's
//! histogram and the clip range every calibration method would pick for it (with the share of
//! values each one clips), and each quantized layer's output SQNR against FP32.
//!
//! The FP32 reference is the graph that was calibrated (BatchNorm folded); the quantized side is
//! the reloaded QDQ graph, simulated in float (each activation's Q→DQ pair one FakeQuant, bit
//! for bit the pair). Both are planned with activations fused into their Conv (bit-identical;
//! a layer's output is compared after its activation, which is the tensor such a fused Conv
//! produces) and run once more over the calibration inputs, one input at a time, so memory
//! holds one input's layer outputs, not all of them.
//! Histograms leave the crate as [`REPORT_BINS`] bins: the report stays small.

use super::{recipe, tell, Progress};
use crate::model::OpKind;
use crate::model::{Graph, Plan, PlanOptions, Tensor};
use crate::ops::Registry;
use crate::quant::observers::HIST_BINS;
use crate::quant::{effective_range, histogram_range, Calibration, Histogram, QType, Scheme};
use crate::Error;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Bins of the histograms in the report.
pub const REPORT_BINS: usize = 64;

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
    /// Bit width of the weights (8, or 2..=7 for narrow weights).
    pub weight_bits: u8,
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
    /// Weight bit width (2..=8).
    pub weight_bits: u8,
    /// How the weights are stored in the file: `int8`, or `int4` (packed, opset 21).
    pub weight_storage: &'static str,
    /// How the weights were rounded: `nearest`, or `gptq` (error-compensating, [`super::gptq`]).
    pub weight_rounding: &'static str,
    /// Calibration inputs used.
    pub calibration_inputs: usize,
    /// Quantized layers, in graph order.
    pub layers: Vec<LayerReport>,
    /// Layers kept FP32 (by request or because their weights are not constant).
    pub kept_fp32: Vec<String>,
    /// Layers whose input activation is quantized to 16 bits (weights at `weight_bits`).
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

/// The methods whose clip ranges the report compares (with their default parameters).
const COMPARED: [Calibration; 4] =
    [Calibration::MinMax, Calibration::Percentile { percentile: 99.99 }, Calibration::Entropy, Calibration::Mse];

/// The clip range one calibration method picks for an activation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodClip {
    /// Method name (`minmax`, `percentile`, `entropy`, `mse`, or `ema` when that one was used).
    pub method: &'static str,
    /// Lower end of the range (before it is widened to contain 0).
    pub lo: f32,
    /// Upper end of the range.
    pub hi: f32,
    /// Percentage of the calibration values outside the range once widened to contain 0,
    /// estimated from a 2,048-bin histogram (values spread evenly within a bin).
    pub clipped_pct: f64,
    /// The method this run used.
    pub chosen: bool,
}

/// The FP32 side of the measurements: the calibrated graph, planned unfused.
pub(super) struct Reference {
    plan: Plan,
    input: String,
}

impl Reference {
    /// Plans `g` (the graph that was calibrated) for `input` of `shape`.
    pub(super) fn new(g: &Graph, registry: &Registry, input: &str, shape: &[usize]) -> Result<Reference, Error> {
        Ok(Reference { plan: simulated(g, registry, input, shape)?, input: input.to_string() })
    }
}

/// `g` planned to run in float: activations fused into their Conv, QDQ pairs as FakeQuant, no
/// int8 kernels (the report measures the graph as it reads).
fn simulated(g: &Graph, registry: &Registry, input: &str, shape: &[usize]) -> Result<Plan, Error> {
    let mut g = g.clone();
    crate::model::passes::fake_quant_qdq_pairs(&mut g);
    let opts = PlanOptions { fuse_activations: true, int8_kernels: false, ..Default::default() };
    Ok(Plan::with_options(&g, registry, &[(input.to_string(), shape.to_vec())], opts)?)
}

/// Σx² and Σ(x − x̂)² so far.
#[derive(Default, Clone, Copy)]
struct Sqnr {
    signal: f64,
    noise: f64,
}

/// Lanes of [`Sqnr::add`]'s sums.
const LANES: usize = 8;

impl Sqnr {
    /// Adds the pairs' sums: pair `i` into lane `i mod 8`, the lanes added in order at the end,
    /// so that the additions do not wait on each other. The same sums on every target and
    /// thread count; AVX2 where present (the same IEEE steps on wider vectors).
    fn add(&mut self, reference: &[f32], approx: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if crate::ops::quant::simd::use_avx2() {
            #[target_feature(enable = "avx2")]
            unsafe fn wide(s: &mut Sqnr, reference: &[f32], approx: &[f32]) {
                s.add_any(reference, approx)
            }
            // SAFETY: the CPU has AVX2.
            return unsafe { wide(self, reference, approx) };
        }
        self.add_any(reference, approx)
    }

    #[inline(always)]
    fn add_any(&mut self, reference: &[f32], approx: &[f32]) {
        let n = reference.len().min(approx.len());
        let (mut signal, mut noise) = ([0f64; LANES], [0f64; LANES]);
        let (rc, ac) = (reference[..n].chunks_exact(LANES), approx[..n].chunks_exact(LANES));
        let (rt, at) = (rc.remainder(), ac.remainder());
        for (r, a) in rc.zip(ac) {
            for j in 0..LANES {
                let (x, y) = (r[j] as f64, a[j] as f64);
                signal[j] += x * x;
                noise[j] += (x - y) * (x - y);
            }
        }
        for (j, (&x, &y)) in rt.iter().zip(at).enumerate() {
            let (x, y) = (x as f64, y as f64);
            signal[j] += x * x;
            noise[j] += (x - y) * (x - y);
        }
        self.signal += signal.iter().sum::<f64>();
        self.noise += noise.iter().sum::<f64>();
    }

    /// dB, as [`crate::quant::error_metrics`] computes it.
    fn db(&self) -> f64 {
        if self.noise == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (self.signal.max(f64::MIN_POSITIVE) / self.noise).log10()
        }
    }
}

/// Runs the FP32 reference and the quantized graph `qdq` over `calib`, fills each layer's
/// activation histogram, method clip ranges, % clipped and output SQNR, and returns the SQNR
/// (dB) of each graph output.
pub(super) fn measure(
    reference: &Reference,
    qdq: &Graph,
    calib: &[Tensor],
    method: Calibration,
    qtype: QType,
    layers: &mut [LayerReport],
    progress: &mut Progress<'_>,
) -> Result<BTreeMap<String, f64>, Error> {
    let registry = &Registry::new();
    let input = reference.input.as_str();
    let shape = calib.first().map(|t| t.shape.clone()).unwrap_or_default();
    let qplan = simulated(qdq, registry, input, &shape)?;
    // Each layer's output tensor (the same name in both graphs), taken after the activation
    // that follows it (Relu, Clip, and the per-channel Min of equalization): what the next layer
    // reads. Before it, channels the activation zeroes (say, dead channels whose bias
    // equalization scaled up) would dominate the comparison without mattering downstream.
    let mut readers: HashMap<&str, Vec<&crate::model::Node>> = HashMap::new();
    for n in &qdq.nodes {
        for i in n.inputs.iter().filter(|i| !i.is_empty()) {
            readers.entry(i.as_str()).or_default().push(n);
        }
    }
    let graph_outputs: Vec<&str> = qdq.outputs.iter().map(|o| o.name.as_str()).collect();
    let after_activation = |start: &str| -> String {
        let mut t = start.to_string();
        loop {
            match readers.get(t.as_str()).map(Vec::as_slice) {
                Some([r])
                    if r.is_any(&[OpKind::Relu, OpKind::Clip, OpKind::Min])
                        // (a Min is fused into its Conv with the bound on either side)
                        && (r.inputs.first() == Some(&t) || r.is(OpKind::Min))
                        && !graph_outputs.contains(&t.as_str()) =>
                {
                    t = r.outputs[0].clone();
                }
                _ => return t,
            }
        }
    };
    let outputs: HashMap<&str, String> = qdq
        .nodes
        .iter()
        .filter_map(|n| Some((n.name.as_str(), after_activation(n.outputs.first()?.as_str()))))
        .collect();
    // Each layer's output SQNR, in name order.
    let mut layer_out: Vec<(String, Sqnr)> = layers
        .iter()
        .filter_map(|l| outputs.get(l.node.as_str()).map(|o| (o.to_string(), Sqnr::default())))
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect();
    // A fine histogram per activation over the range calibration observed.
    let mut hists: Vec<(String, Histogram)> = layers
        .iter()
        .map(|l| {
            let (lo, hi) = l.activation.observed;
            (l.activation.tensor.clone(), Histogram::new(lo, hi, HIST_BINS))
        })
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let in_q: HashSet<String> = layer_out.iter().map(|(n, _)| n.clone()).collect();
    let in_fp: HashSet<String> = hists.iter().map(|(n, _)| n.clone()).chain(in_q.iter().cloned()).collect();

    let names: Vec<String> = qplan.output_names().into_iter().map(String::from).collect();
    let mut graph_out = vec![Sqnr::default(); names.len()];
    let mut compared = vec![false; names.len()];
    for (k, x) in calib.iter().enumerate() {
        tell(progress, &format!("report: FP32 and INT8 runs on input {} of {}", k + 1, calib.len()))?;
        // The two runs at once, each keeping what the measurements read.
        let (fp, q) = crate::parallel::join(
            || super::run_keeping(&reference.plan, input, x, &|n| in_fp.contains(n)),
            || super::run_keeping(&qplan, input, x, &|n| in_q.contains(n)),
        );
        let ((fp, mut fp_seen), (q, q_seen)) = (fp?, q?);
        fp_seen.insert(input.to_string(), x.clone());
        // Each histogram and each layer's SQNR a task of its own; a layer's sums see the inputs
        // in calibration order.
        crate::parallel::for_each_mut(&mut hists, |_, (name, h)| {
            if let Some(Ok(d)) = fp_seen.get(name.as_str()).map(Tensor::as_f32) {
                h.add(d);
            }
        });
        crate::parallel::for_each_mut(&mut layer_out, |_, (name, s)| {
            let (r, a) =
                (fp_seen.get(name.as_str()).map(Tensor::as_f32), q_seen.get(name.as_str()).map(Tensor::as_f32));
            if let (Some(Ok(r)), Some(Ok(a))) = (r, a) {
                s.add(r, a);
            }
        });
        // An output whose shape depends on the values (rows kept by NMS) compares only where
        // both runs kept as many.
        for (k, (a, b)) in fp.iter().zip(&q).enumerate() {
            if a.shape == b.shape {
                graph_out[k].add(&a.to_f32_vec(), &b.to_f32_vec());
                compared[k] = true;
            }
        }
    }
    let layer_out: HashMap<String, Sqnr> = layer_out.into_iter().collect();
    let hists: HashMap<String, Histogram> = hists.into_iter().collect();

    // Each layer's clip ranges by every method, a task of its own.
    crate::parallel::for_each_mut(layers, |_, l| {
        l.output_sqnr_db = outputs.get(l.node.as_str()).and_then(|o| layer_out.get(o.as_str())).map(Sqnr::db);
        let Some(h) = hists.get(&l.activation.tensor) else { return };
        let (min, max) = l.activation.observed;
        let mut clips: Vec<MethodClip> = Vec::new();
        for m in COMPARED {
            let chosen = m.name() == method.name();
            let range = if chosen {
                Some(l.activation.clip)
            } else {
                histogram_range(m, h, min, max, qtype, Scheme::Asymmetric)
            };
            if let Some((lo, hi)) = range {
                clips.push(MethodClip { method: m.name(), lo, hi, clipped_pct: clipped_pct(h, lo, hi), chosen });
            }
        }
        if !clips.iter().any(|c| c.chosen) {
            let (lo, hi) = l.activation.clip;
            clips.push(MethodClip { method: method.name(), lo, hi, clipped_pct: clipped_pct(h, lo, hi), chosen: true });
        }
        l.activation.clipped_pct = clips.iter().find(|c| c.chosen).map(|c| c.clipped_pct);
        l.activation.methods = clips;
        l.activation.histogram = Some(coarsen(h, REPORT_BINS));
    });
    // Outputs never comparable (a different row count on every input) have no SQNR.
    Ok(names
        .into_iter()
        .zip(graph_out.iter().map(Sqnr::db))
        .zip(compared)
        .filter(|(_, c)| *c)
        .map(|(o, _)| o)
        .collect())
}

/// Percentage of the histogram's values outside `[lo, hi]` widened to contain 0.
fn clipped_pct(h: &Histogram, lo: f32, hi: f32) -> f64 {
    let total = h.total();
    if total == 0 {
        return 0.0;
    }
    let (lo, hi) = effective_range(lo as f64, hi as f64, Scheme::Asymmetric);
    let (n, hlo, hhi) = (h.counts.len() as f64, h.lo as f64, h.hi as f64);
    let w = (hhi - hlo) / n;
    let mut out = 0.0;
    for (i, &c) in h.counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        // Bin edges interpolated between the exact ends, so that the ends themselves clip nothing.
        let a = hlo + (hhi - hlo) * (i as f64 / n);
        let b = hlo + (hhi - hlo) * ((i + 1) as f64 / n);
        // Share of the bin below lo plus share above hi.
        let below = ((lo - a) / w).clamp(0.0, 1.0);
        let above = ((b - hi) / w).clamp(0.0, 1.0);
        out += c as f64 * (below + above).min(1.0);
    }
    100.0 * out / total as f64
}

/// The same histogram with `bins` bins (adjacent bins merged; a bin count that does not divide
/// evenly sends each fine bin to the coarse bin holding its centre).
pub fn coarsen(h: &Histogram, bins: usize) -> Histogram {
    let bins = bins.max(1);
    let mut c = Histogram { lo: h.lo, hi: h.hi, counts: vec![0; bins] };
    let n = h.counts.len();
    for (i, &v) in h.counts.iter().enumerate() {
        c.counts[(i * bins + bins / 2) / n.max(1)] += v;
    }
    c
}

/// The weight histogram for the report: [`REPORT_BINS`] bins over the weights' range.
pub(super) fn weight_histogram(w: &[f32]) -> Option<Histogram> {
    Histogram::of(w, REPORT_BINS).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarsen_keeps_counts_and_clipped_share() {
        let data: Vec<f32> = (0..1000).map(|i| i as f32 / 10.0).collect();
        let h = Histogram::of(&data, HIST_BINS).unwrap();
        let c = coarsen(&h, REPORT_BINS);
        assert_eq!(c.counts.len(), REPORT_BINS);
        assert_eq!(c.total(), 1000);
        assert_eq!((c.lo, c.hi), (h.lo, h.hi));
        assert_eq!(clipped_pct(&h, 0.0, 99.9), 0.0);
        let p = clipped_pct(&h, 0.0, 50.0);
        assert!((p - 50.0).abs() < 0.5, "{p}");
    }
}
