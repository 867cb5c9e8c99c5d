//! Error metrics between a reference tensor and its quantized approximation, and histograms.

use super::QuantError;
use serde::Serialize;

/// How far `approx` is from `reference`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorMetrics {
    /// Mean squared error, `Σ(x − x̂)² / n`.
    pub mse: f64,
    /// Largest absolute error, `max |x − x̂|`.
    pub max_abs: f64,
    /// Signal-to-quantization-noise ratio in dB, `10·log10(Σx² / Σ(x − x̂)²)`; `+∞` when the
    /// approximation is exact, `−∞`-free (a zero signal with noise gives a very negative number).
    pub sqnr_db: f64,
    /// Cosine similarity `x·x̂ / (|x|·|x̂|)`; 1.0 when both are zero.
    pub cosine: f64,
}

/// Computes [`ErrorMetrics`]. Both slices must have the same length.
///
/// ```
/// use qplay_core::quant::error_metrics;
/// let m = error_metrics(&[1.0, 2.0], &[1.0, 2.5]).unwrap();
/// assert!((m.mse - 0.125).abs() < 1e-12);
/// assert!((m.max_abs - 0.5).abs() < 1e-12);
/// assert!((m.sqnr_db - 10.0 * (5.0f64 / 0.25).log10()).abs() < 1e-9);
/// ```
pub fn error_metrics(reference: &[f32], approx: &[f32]) -> Result<ErrorMetrics, QuantError> {
    if reference.len() != approx.len() {
        return Err(QuantError::LengthMismatch(reference.len(), approx.len()));
    }
    if reference.is_empty() {
        return Err(QuantError::EmptyTensor);
    }
    let (mut sig, mut noise, mut max_abs, mut dot, mut na) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in reference.iter().zip(approx) {
        let (x, y) = (x as f64, y as f64);
        let e = x - y;
        sig += x * x;
        noise += e * e;
        max_abs = max_abs.max(e.abs());
        dot += x * y;
        na += y * y;
    }
    let n = reference.len() as f64;
    let sqnr_db = if noise == 0.0 { f64::INFINITY } else { 10.0 * (sig.max(f64::MIN_POSITIVE) / noise).log10() };
    let cosine = if sig == 0.0 && na == 0.0 {
        1.0
    } else if sig == 0.0 || na == 0.0 {
        0.0
    } else {
        dot / (sig.sqrt() * na.sqrt())
    };
    Ok(ErrorMetrics { mse: noise / n, max_abs, sqnr_db, cosine })
}

/// A fixed-range histogram with equal-width bins.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub lo: f32,
    /// Right edge of the last bin.
    pub hi: f32,
    /// Counts per bin.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// An empty histogram over `[lo, hi]` (if `lo == hi`, the range is widened by one unit so that
    /// every bin has a width).
    pub fn new(lo: f32, hi: f32, bins: usize) -> Histogram {
        let bins = bins.max(1);
        let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, lo + 0.5) };
        Histogram { lo, hi, counts: vec![0; bins] }
    }

    /// Builds a histogram over the data's own min/max.
    pub fn of(data: &[f32], bins: usize) -> Result<Histogram, QuantError> {
        let (lo, hi) = super::min_max(data)?;
        let mut h = Histogram::new(lo, hi, bins);
        h.add(data);
        Ok(h)
    }

    /// Width of one bin.
    pub fn bin_width(&self) -> f32 {
        (self.hi - self.lo) / self.counts.len() as f32
    }

    /// Centre of bin `i`.
    pub fn center(&self, i: usize) -> f32 {
        self.lo + (i as f32 + 0.5) * self.bin_width()
    }

    /// Bin index for a value, clamped to the end bins. Non-finite values return `None`.
    pub fn index(&self, v: f32) -> Option<usize> {
        if !v.is_finite() {
            return None;
        }
        let n = self.counts.len();
        // Truncation is floor for t ≥ 0, and t < 0 clamps to bin 0 either way (no `floor` call:
        // a libm function on x86-64 without SSE4.1, and this runs for every calibration value).
        let t = (v - self.lo) / (self.hi - self.lo) * n as f32;
        Some((t.max(0.0) as usize).min(n - 1))
    }

    /// Adds values (non-finite ones are skipped).
    pub fn add(&mut self, data: &[f32]) {
        // The same loop compiled for AVX2 where the integer kernels use it (the same IEEE
        // steps on wider vectors: the same bins).
        #[cfg(target_arch = "x86_64")]
        if crate::ops::quant::simd::use_avx2() {
            #[target_feature(enable = "avx2")]
            unsafe fn wide(h: &mut Histogram, data: &[f32]) {
                h.add_any(data)
            }
            // SAFETY: the CPU has AVX2.
            return unsafe { wide(self, data) };
        }
        self.add_any(data)
    }

    #[inline(always)]
    fn add_any(&mut self, data: &[f32]) {
        // The same bin as `index` for every value, computed a block at a time (the arithmetic
        // vectorises) and counted into four interleaved tables: ReLU outputs put most values
        // into one bin, and one table would chain every increment on the one before.
        const BLOCK: usize = 64;
        let n = self.counts.len();
        if n > 1 << 30 {
            // (No such histogram fits in memory with its tables; kept sound all the same.)
            for &v in data {
                if let Some(i) = self.index(v) {
                    self.counts[i] += 1;
                }
            }
            return;
        }
        let (lo, range, nf, last) = (self.lo, self.hi - self.lo, n as f32, (n - 1) as f32);
        let mut tables = vec![0u32; 4 * n];
        let mut since_flush = 0usize;
        let mut idx = [0u32; BLOCK];
        for chunk in data.chunks(BLOCK) {
            let mut finite = true;
            for (slot, &v) in idx.iter_mut().zip(chunk) {
                finite &= v.is_finite();
                // Clamped in float first (NaN → 0 by `max`), so the conversion vectorises;
                // the same bin as flooring and then clamping to the last bin.
                let t = ((v - lo) / range * nf).max(0.0).min(last);
                // SAFETY: `t` is finite and within [0, n − 1] after the two clamps (and a bin
                // count fits i32: one vector conversion, where u32 needs several).
                *slot = unsafe { t.to_int_unchecked::<i32>() } as u32;
            }
            if finite {
                for (k, &i) in idx[..chunk.len()].iter().enumerate() {
                    tables[(k & 3) * n + i as usize] += 1;
                }
            } else {
                for (k, (&i, &v)) in idx.iter().zip(chunk).enumerate() {
                    if v.is_finite() {
                        tables[(k & 3) * n + i as usize] += 1;
                    }
                }
            }
            since_flush += chunk.len();
            // u32 counts: flush long before a table could overflow.
            if since_flush >= 1 << 30 {
                self.flush(&mut tables);
                since_flush = 0;
            }
        }
        self.flush(&mut tables);
    }

    fn flush(&mut self, tables: &mut [u32]) {
        let n = self.counts.len();
        for (j, c) in self.counts.iter_mut().enumerate() {
            *c += (0..4).map(|t| std::mem::take(&mut tables[t * n + j]) as u64).sum::<u64>();
        }
    }

    /// Total count.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}
