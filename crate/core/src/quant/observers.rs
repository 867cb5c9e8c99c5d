//! Calibration observers: each watches the values a tensor takes over calibration batches and
//! chooses the float range `[lo, hi]` that the quantization grid will cover.
//!
//! | observer | chooses | minimises |
//! |---|---|---|
//! | MinMax | the extreme values seen | nothing: never clips, so outliers stretch Δ |
//! | MovingAverageMinMax | an exponential moving average of per-batch min/max | batch-to-batch noise in the extremes |
//! | Percentile | the p-th and (1−p)-th percentiles | clipping error on a fixed fraction of values |
//! | Entropy | the |x| threshold whose quantized distribution is closest in KL divergence (TensorRT) | information lost, as KL(P‖Q) |
//! | Mse | the clip range whose fake quantization has the least mean squared error | rounding + clipping MSE |

use super::{effective_range, metrics::Histogram, min_max, QParams, QType, QuantError, Scheme};
use serde::{Deserialize, Serialize};

/// Number of histogram bins the histogram-based observers keep.
pub const HIST_BINS: usize = 2048;

/// A calibration method and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Calibration {
    /// The extreme values seen.
    MinMax,
    /// EMA of per-batch min and max: `r ← r + momentum·(batch − r)`.
    MovingAverageMinMax {
        /// Weight of each new batch, in (0, 1].
        momentum: f32,
    },
    /// Percentile clipping: keep `percentile` % of the values inside the range on each side.
    Percentile {
        /// e.g. 99.99.
        percentile: f32,
    },
    /// KL-divergence threshold search over a histogram of |x| (TensorRT style).
    Entropy,
    /// Clip range with the least mean squared fake-quantization error over the histogram.
    Mse,
}

impl Calibration {
    /// The five methods with their default parameters, in display order.
    pub const ALL: [Calibration; 5] = [
        Calibration::MinMax,
        Calibration::MovingAverageMinMax { momentum: 0.01 },
        Calibration::Percentile { percentile: 99.99 },
        Calibration::Entropy,
        Calibration::Mse,
    ];

    /// Parses a method name (`minmax`, `ema`, `percentile`, `entropy`, `mse`).
    pub fn parse(name: &str) -> Result<Calibration, QuantError> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "minmax" | "min_max" => Calibration::MinMax,
            "ema" | "moving_average_min_max" | "moving-average" => Calibration::MovingAverageMinMax { momentum: 0.01 },
            "percentile" => Calibration::Percentile { percentile: 99.99 },
            "entropy" | "kl" => Calibration::Entropy,
            "mse" => Calibration::Mse,
            other => return Err(QuantError::UnknownMethod(other.to_string())),
        })
    }

    /// Short name as used on the CLI and in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Calibration::MinMax => "minmax",
            Calibration::MovingAverageMinMax { .. } => "ema",
            Calibration::Percentile { .. } => "percentile",
            Calibration::Entropy => "entropy",
            Calibration::Mse => "mse",
        }
    }

    /// A fresh observer for this method.
    pub fn observer(&self) -> Observer {
        Observer { method: *self, min: f32::INFINITY, max: f32::NEG_INFINITY, ema: None, hist: None, batches: 0 }
    }
}

/// Watches batches of one tensor's values; [`Observer::range`] gives the chosen clipping range.
///
/// ```
/// use qplay_core::quant::{Calibration, QType, Scheme};
/// let mut o = Calibration::Percentile { percentile: 99.0 }.observer();
/// let mut data: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
/// data.push(100.0); // one outlier
/// o.observe(&data).unwrap();
/// let (lo, hi) = o.range(QType::UINT8, Scheme::Asymmetric).unwrap();
/// assert!(lo <= 0.02 && hi < 2.0, "the outlier is clipped: {lo} {hi}");
/// ```
#[derive(Debug, Clone)]
pub struct Observer {
    method: Calibration,
    min: f32,
    max: f32,
    ema: Option<(f32, f32)>,
    hist: Option<Histogram>,
    batches: usize,
}

impl Observer {
    /// The method this observer implements.
    pub fn method(&self) -> Calibration {
        self.method
    }

    /// Number of batches seen.
    pub fn batches(&self) -> usize {
        self.batches
    }

    /// Min and max over everything seen.
    pub fn min_max(&self) -> Option<(f32, f32)> {
        (self.batches > 0).then_some((self.min, self.max))
    }

    /// The histogram kept so far (histogram-based methods only).
    pub fn histogram(&self) -> Option<&Histogram> {
        self.hist.as_ref()
    }

    /// Adds one batch. NaN/Inf values are an error (they would poison every range).
    pub fn observe(&mut self, data: &[f32]) -> Result<(), QuantError> {
        self.observe_in(data, min_max(data)?);
        Ok(())
    }

    /// [`Observer::observe`] of a batch whose `min_max` is known already (`range` must be
    /// [`min_max`]`(data)`): several observers of one tensor share that pass over it.
    pub fn observe_in(&mut self, data: &[f32], range: (f32, f32)) {
        let (lo, hi) = range;
        self.batches += 1;
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        match self.method {
            Calibration::MovingAverageMinMax { momentum } => {
                let m = momentum.clamp(f32::MIN_POSITIVE, 1.0);
                self.ema = Some(match self.ema {
                    None => (lo, hi),
                    Some((a, b)) => (a + m * (lo - a), b + m * (hi - b)),
                });
            }
            Calibration::Percentile { .. } | Calibration::Entropy | Calibration::Mse => {
                let h = match self.hist.take() {
                    None => Histogram::new(lo, hi, HIST_BINS),
                    Some(h) if lo >= h.lo && hi <= h.hi => h,
                    Some(h) => rebin(&h, self.min, self.max),
                };
                let mut h = h;
                h.add(data);
                self.hist = Some(h);
            }
            Calibration::MinMax => {}
        }
    }

    /// The clipping range `[lo, hi]` (before the scheme's widening to contain 0).
    pub fn range(&self, qtype: QType, scheme: Scheme) -> Result<(f32, f32), QuantError> {
        if self.batches == 0 {
            return Err(QuantError::NoCalibrationData);
        }
        qtype.validate()?;
        Ok(match self.method {
            Calibration::MinMax => (self.min, self.max),
            Calibration::MovingAverageMinMax { .. } => self.ema.unwrap_or((self.min, self.max)),
            Calibration::Percentile { .. } | Calibration::Entropy | Calibration::Mse => {
                let h = self.hist.as_ref().ok_or(QuantError::NoCalibrationData)?;
                histogram_range(self.method, h, self.min, self.max, qtype, scheme)
                    .ok_or(QuantError::NoCalibrationData)?
            }
        })
    }

    /// Quantization parameters for the chosen range (a degenerate range falls back to Δ = 1).
    pub fn params(&self, qtype: QType, scheme: Scheme) -> Result<QParams, QuantError> {
        let (lo, hi) = self.range(qtype, scheme)?;
        super::params_or_unit(lo as f64, hi as f64, qtype, scheme)
    }
}

/// The range `method` chooses from a histogram of the values and their min/max, by the same
/// rules as [`Observer::range`]: lets a report compare every method on one histogram. MinMax
/// gives `(min, max)`; `None` for the moving average, which needs the batches one by one.
pub fn histogram_range(
    method: Calibration,
    h: &Histogram,
    min: f32,
    max: f32,
    qtype: QType,
    scheme: Scheme,
) -> Option<(f32, f32)> {
    Some(match method {
        Calibration::MinMax => (min, max),
        Calibration::MovingAverageMinMax { .. } => return None,
        Calibration::Percentile { percentile } => percentile_range(h, percentile as f64, min, max),
        Calibration::Entropy => {
            let t = entropy_threshold(h, qtype, min >= 0.0);
            (min.max(-t), max.min(t))
        }
        Calibration::Mse => mse_range(h, qtype, scheme, min, max),
    })
}

/// Re-bins a histogram onto a wider range `[lo, hi]`, moving each old bin's count to the new bin
/// that holds its centre.
fn rebin(h: &Histogram, lo: f32, hi: f32) -> Histogram {
    let mut n = Histogram::new(lo.min(h.lo), hi.max(h.hi), h.counts.len());
    for (i, &c) in h.counts.iter().enumerate() {
        if c > 0 {
            if let Some(j) = n.index(h.center(i)) {
                n.counts[j] += c;
            }
        }
    }
    n
}

/// Values at the `(100 − p)`-th and `p`-th percentiles, clamped to the data's min/max.
fn percentile_range(h: &Histogram, p: f64, min: f32, max: f32) -> (f32, f32) {
    let total = h.total() as f64;
    let tail = total * (1.0 - (p / 100.0).clamp(0.0, 1.0));
    let w = h.bin_width();
    // Lower edge: first bin where the cumulative count exceeds the tail.
    let mut acc = 0.0;
    let mut lo = min;
    for (i, &c) in h.counts.iter().enumerate() {
        acc += c as f64;
        if acc > tail {
            lo = h.lo + i as f32 * w;
            break;
        }
    }
    acc = 0.0;
    let mut hi = max;
    for (i, &c) in h.counts.iter().enumerate().rev() {
        acc += c as f64;
        if acc > tail {
            hi = h.lo + (i + 1) as f32 * w;
            break;
        }
    }
    (lo.max(min), hi.min(max))
}

/// Where both forms of the entropy search start: `amax`, and the counts of the histogram of |x|
/// on [0, amax] (as many bins as `h`, the zero spike evened out) with the number of groups Q
/// merges them into — `None` when there are no more bins than groups (the threshold is `amax`).
fn entropy_search(h: &Histogram, qtype: QType, unsigned: bool) -> (f32, Option<(Vec<f64>, usize)>) {
    // Histogram of |x| on [0, amax].
    let amax = h.lo.abs().max(h.hi.abs());
    let nb = h.counts.len();
    let mut abs = Histogram::new(0.0, amax, nb);
    for (i, &c) in h.counts.iter().enumerate() {
        if c > 0 {
            if let Some(j) = abs.index(h.center(i).abs()) {
                abs.counts[j] += c;
            }
        }
    }
    // The first bin holds the exact zeros of ReLU-like tensors: a spike that the zero point
    // represents exactly, but that dominates P and Q once merged with its neighbours and drives
    // the search to ever smaller thresholds (on ReLU6 networks it clipped [0, 6] to about
    // [0, 1.3]). As in pytorch-quantization's TensorRT-style calibrator, it gets the count of
    // its neighbour instead.
    if nb > 1 {
        abs.counts[0] = abs.counts[1];
    }
    let target = if unsigned { qtype.levels() as usize } else { (qtype.levels() / 2) as usize }.max(2);
    if target >= nb {
        return (amax, None);
    }
    (amax, Some((abs.counts.iter().map(|&c| c as f64).collect(), target)))
}

/// TensorRT's entropy calibration: over a histogram of |x|, find the threshold `t` whose
/// quantization into `levels` bins loses the least information, `KL(P‖Q)`.
fn entropy_threshold(h: &Histogram, qtype: QType, unsigned: bool) -> f32 {
    let (amax, search) = entropy_search(h, qtype, unsigned);
    let Some((hist, target)) = search else { return amax };
    let nb = hist.len();
    // Prefix sums of the counts, of c·ln c and of the non-empty bins: within one group of Q,
    // every non-empty bin has the same q, so the group's share of KL(P‖Q) is
    // (Σc·ln c − Σc·ln sp)/sp − (Σc/sp)·ln(q/sq), O(1) per group instead of O(bins).
    let mut cum = vec![0.0f64; nb + 1];
    let mut cum_clnc = vec![0.0f64; nb + 1];
    let mut cum_nz = vec![0usize; nb + 1];
    for (k, &c) in hist.iter().enumerate() {
        cum[k + 1] = cum[k] + c;
        cum_clnc[k + 1] = cum_clnc[k] + if c > 0.0 { c * c.ln() } else { 0.0 };
        cum_nz[k + 1] = cum_nz[k] + usize::from(c > 0.0);
    }
    let sp = cum[nb];
    let eps = 1e-10;
    let mut best = (f64::INFINITY, nb);
    for i in target..=nb {
        // P: the first i bins, with everything beyond folded into the last one (sum: sp).
        // Q: the first i bins merged into `target` groups, spread back over the non-empty bins
        // (sum: the first i bins' count).
        let sq = cum[i];
        if sp == 0.0 || sq == 0.0 {
            continue;
        }
        let ln_sp = sp.ln();
        let mut kl = 0.0;
        let mut q_last = 0.0;
        // Group g covers bins g·i/target .. (g+1)·i/target (never empty: i ≥ target), the
        // boundaries stepped without a division per group.
        let (step, frac) = (i / target, i % target);
        let (mut b, mut rem) = (0usize, 0usize);
        for _ in 0..target {
            let a = b;
            b += step;
            rem += frac;
            if rem >= target {
                rem -= target;
                b += 1;
            }
            // Bins a..min(b, i − 1); the last bin, i − 1, is in the last group (b == i).
            let e = b.min(i - 1);
            let c = cum[e] - cum[a];
            let last = b == i && hist[i - 1] > 0.0;
            if c <= 0.0 && !last {
                continue;
            }
            let nz = cum_nz[b] - cum_nz[a];
            if nz == 0 {
                continue;
            }
            let q = (cum[b] - cum[a]) / nz as f64;
            if c > 0.0 {
                let ln_q = (q / sq).max(eps).ln();
                kl += (cum_clnc[e] - cum_clnc[a] - c * ln_sp) / sp - c / sp * ln_q;
            }
            if last {
                q_last = q;
            }
        }
        let p_last = (hist[i - 1] + (sp - cum[i])) / sp;
        if p_last > 0.0 {
            kl += p_last * (p_last / (q_last / sq).max(eps)).ln();
        }
        if kl < best.0 {
            best = (kl, i);
        }
    }
    amax * best.1 as f32 / nb as f32
}

/// Searches shrink factors `α ∈ (0, 1]` of the data range for the clip range with the least
/// histogram-weighted fake-quantization MSE.
fn mse_range(h: &Histogram, qtype: QType, scheme: Scheme, min: f32, max: f32) -> (f32, f32) {
    let (elo, ehi) = effective_range(min as f64, max as f64, scheme);
    let mut best = (f64::INFINITY, (min, max));
    // The occupied bins' centres and counts, once for every candidate range.
    let (xs, counts): (Vec<f32>, Vec<f64>) =
        h.counts.iter().enumerate().filter(|(_, &c)| c > 0).map(|(i, &c)| (h.center(i), c as f64)).unzip();
    let mut fake = vec![0.0f32; xs.len()];
    const STEPS: usize = 100;
    for k in (1..=STEPS).rev() {
        let a = k as f64 / STEPS as f64;
        let (lo, hi) = (elo * a, ehi * a);
        let Ok(p) = QParams::from_range(lo, hi, qtype, scheme) else { continue };
        // The grid's values in one vectorised pass, then the error summed bin by bin in order.
        p.fake_into(&xs, &mut fake, qtype);
        let err: f64 = xs
            .iter()
            .zip(&fake)
            .zip(&counts)
            .map(|((&x, &y), &c)| {
                let e = (x - y) as f64;
                c * e * e
            })
            .sum();
        if err < best.0 {
            best = (err, ((lo as f32).max(min), (hi as f32).min(max)));
        }
    }
    best.1
}

/// The range each of [`Calibration::ALL`] chooses for one tensor seen as a single batch.
pub fn calibration_ranges(
    data: &[f32],
    qtype: QType,
    scheme: Scheme,
) -> Result<Vec<(Calibration, f32, f32)>, QuantError> {
    Calibration::ALL
        .iter()
        .map(|m| {
            let mut o = m.observer();
            o.observe(data)?;
            let (lo, hi) = o.range(qtype, scheme)?;
            Ok((*m, lo, hi))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{sample_tensor, SampleKind};

    /// The direct O(bins²) form of [`entropy_threshold`]: P and Q built bin by bin.
    fn entropy_threshold_direct(h: &Histogram, qtype: QType, unsigned: bool) -> f32 {
        // The same histogram of |x|, zero-spike rule and level count as the fast form.
        let (amax, search) = entropy_search(h, qtype, unsigned);
        let Some((hist, target)) = search else { return amax };
        let nb = hist.len();
        let mut best = (f64::INFINITY, nb);
        let mut p = vec![0.0f64; nb];
        let mut q = vec![0.0f64; nb];
        for i in target..=nb {
            p[..i].copy_from_slice(&hist[..i]);
            p[i - 1] += hist[i..].iter().sum::<f64>();
            for g in 0..target {
                let (a, b) = (g * i / target, ((g + 1) * i / target).max(g * i / target + 1));
                let sum: f64 = hist[a..b].iter().sum();
                let nz = hist[a..b].iter().filter(|&&v| v > 0.0).count();
                for k in a..b {
                    q[k] = if hist[k] > 0.0 && nz > 0 { sum / nz as f64 } else { 0.0 };
                }
            }
            let kl = kl_divergence(&p[..i], &q[..i]);
            if kl < best.0 {
                best = (kl, i);
            }
        }
        amax * best.1 as f32 / nb as f32
    }

    /// `KL(P‖Q)` of two unnormalised distributions; a bin where P > 0 and Q = 0 gets a small ε.
    fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
        let sp: f64 = p.iter().sum();
        let sq: f64 = q.iter().sum();
        if sp == 0.0 || sq == 0.0 {
            return f64::INFINITY;
        }
        let eps = 1e-10;
        p.iter()
            .zip(q)
            .filter(|(&a, _)| a > 0.0)
            .map(|(&a, &b)| {
                let pa = a / sp;
                let qb = (b / sq).max(eps);
                pa * (pa / qb).ln()
            })
            .sum()
    }

    #[test]
    fn entropy_threshold_matches_the_direct_form() {
        for (k, kind) in
            [SampleKind::Gaussian, SampleKind::Outliers, SampleKind::Relu, SampleKind::Uniform].into_iter().enumerate()
        {
            let data = sample_tensor(kind, 20_000, k as u64 + 1);
            let h = Histogram::of(&data, HIST_BINS).unwrap();
            for (qt, unsigned) in [(QType::UINT8, true), (QType::INT8, false)] {
                let (a, b) = (entropy_threshold(&h, qt, unsigned), entropy_threshold_direct(&h, qt, unsigned));
                let bin = h.lo.abs().max(h.hi.abs()) / HIST_BINS as f32;
                assert!((a - b).abs() <= bin * 1.01, "{kind:?}: {a} vs {b}");
            }
        }
    }
}
