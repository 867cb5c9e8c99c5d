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
            let t = super::entropy::threshold(h, qtype, min >= 0.0);
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
