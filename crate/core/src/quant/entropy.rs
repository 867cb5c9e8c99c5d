//! TensorRT's entropy calibration: over a histogram of |x|, the threshold `t` whose
//! quantization into the grid's levels loses the least information, `KL(P‖Q)`.
//!
//! Every threshold from the level count to the histogram's bin count is tried (as TensorRT and
//! pytorch-quantization do): some 1,900 thresholds of 128 or 256 groups each, a logarithm per
//! group. The logarithm is [`ln`] here, written out so that the groups' logarithms run four to a
//! vector (two in WebAssembly) and give the same bits on every target, where the platform's
//! `ln` differs between libm builds.

use super::{metrics::Histogram, QType};

/// Where the search starts: `amax`, and the counts of the histogram of |x| on [0, amax] (as many
/// bins as `h`, the zero spike evened out) with the number of groups Q merges them into — `None`
/// when there are no more bins than groups (the threshold is `amax`).
fn search(h: &Histogram, qtype: QType, unsigned: bool) -> (f32, Option<(Vec<f64>, usize)>) {
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

/// The entropy threshold of the values `h` holds, for the grid of `qtype` (`unsigned`: the
/// values are ≥ 0 and the whole grid covers [0, t]).
pub(super) fn threshold(h: &Histogram, qtype: QType, unsigned: bool) -> f32 {
    let (amax, search) = search(h, qtype, unsigned);
    let Some((hist, target)) = search else { return amax };
    amax * best_bins(&hist, target) as f32 / hist.len() as f32
}

/// The number of bins `i` (from `target` to all of them) whose P and Q are closest; AVX2 where
/// present (the same IEEE steps on wider vectors).
fn best_bins(hist: &[f64], target: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    if crate::ops::quant::simd::use_avx2() {
        #[target_feature(enable = "avx2")]
        unsafe fn wide(hist: &[f64], target: usize) -> usize {
            best_bins_any(hist, target)
        }
        // SAFETY: the CPU has AVX2.
        return unsafe { wide(hist, target) };
    }
    best_bins_any(hist, target)
}

#[inline(always)]
fn best_bins_any(hist: &[f64], target: usize) -> usize {
    let nb = hist.len();
    // Prefix sums of the counts, of c·ln c and of the non-empty bins: within one group of Q,
    // every non-empty bin has the same q, so the group's share of KL(P‖Q) is
    // (Σc·ln c − Σc·ln sp)/sp − (Σc/sp)·ln(q/sq), O(1) per group instead of O(bins).
    let mut cum = vec![0.0f64; nb + 1];
    let mut cum_clnc = vec![0.0f64; nb + 1];
    let mut cum_nz = vec![0.0f64; nb + 1];
    for (k, &c) in hist.iter().enumerate() {
        cum[k + 1] = cum[k] + c;
        cum_clnc[k + 1] = cum_clnc[k] + if c > 0.0 { c * ln(c) } else { 0.0 };
        cum_nz[k + 1] = cum_nz[k] + if c > 0.0 { 1.0 } else { 0.0 };
    }
    let sp = cum[nb];
    if sp == 0.0 {
        return nb;
    }
    let (ln_sp, ln_eps) = (ln(sp), ln(1e-10));
    // Per group but the last: its count, its Σc·ln c, its non-empty bins; then its term.
    let groups = target - 1;
    let (mut count, mut clnc, mut nz, mut term) =
        (vec![0.0f64; groups], vec![0.0f64; groups], vec![0.0f64; groups], vec![0.0f64; groups]);
    let mut best = (f64::INFINITY, nb);
    for i in target..=nb {
        // P: the first i bins, with everything beyond folded into the last one (sum: sp).
        // Q: the first i bins merged into `target` groups, spread back over the non-empty bins
        // (sum: the first i bins' count).
        let sq = cum[i];
        if sq == 0.0 {
            continue;
        }
        let ln_sq = ln(sq);
        // Group g covers bins ⌊g·i/target⌋ .. ⌊(g+1)·i/target⌋ (never empty: i ≥ target), the
        // boundaries stepped without a division per group.
        let (step, frac) = (i / target, i % target);
        let (mut a, mut b, mut rem) = (0usize, step, frac);
        for g in 0..groups {
            if rem >= target {
                rem -= target;
                b += 1;
            }
            (count[g], clnc[g], nz[g]) = (cum[b] - cum[a], cum_clnc[b] - cum_clnc[a], cum_nz[b] - cum_nz[a]);
            a = b;
            b += step;
            rem += frac;
        }
        // Each group's share times sp, a vector of groups at a time: q = count / nz (an empty
        // group's count is 0 and adds nothing; `max(1)` keeps its logarithm finite).
        for (((t, &c), &cl), &z) in term.iter_mut().zip(&count).zip(&clnc).zip(&nz) {
            let ln_q = (ln(c.max(1.0) / z.max(1.0)) - ln_sq).max(ln_eps);
            *t = cl - c * ln_sp - c * ln_q;
        }
        let mut kl = sum_in_lanes(&term) / sp;
        // The last group, bins a..i: its P leaves out bin i − 1, which takes the folded tail.
        let (c, last) = (cum[i - 1] - cum[a], hist[i - 1] > 0.0);
        let groups_nz = cum_nz[i] - cum_nz[a];
        let mut ln_q_last = ln_eps;
        if (c > 0.0 || last) && groups_nz > 0.0 {
            let ln_q = (ln((cum[i] - cum[a]) / groups_nz) - ln_sq).max(ln_eps);
            if c > 0.0 {
                kl += (cum_clnc[i - 1] - cum_clnc[a] - c * ln_sp - c * ln_q) / sp;
            }
            if last {
                ln_q_last = ln_q;
            }
        }
        let p_last = (hist[i - 1] + (sp - cum[i])) / sp;
        if p_last > 0.0 {
            kl += p_last * (ln(p_last) - ln_q_last);
        }
        if kl < best.0 {
            best = (kl, i);
        }
    }
    best.1
}

/// Σ of `v`, value `k` into lane `k mod 4` and the lanes added in order.
#[inline(always)]
fn sum_in_lanes(v: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 4];
    let chunks = v.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        for j in 0..4 {
            lanes[j] += c[j];
        }
    }
    for (l, &t) in lanes.iter_mut().zip(tail) {
        *l += t;
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

/// The natural logarithm of a positive, finite, normal `x`, within one unit in the last place:
/// fdlibm's `__ieee754_log` (as in musl and FreeBSD) without its branches for zero, negative,
/// subnormal and non-finite inputs, so that a loop of them vectorises.
#[inline(always)]
// fdlibm's constants as published (each digit string parses to the same f64 as a shorter one).
#[allow(clippy::excessive_precision)]
fn ln(x: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    const LG1: f64 = 6.666_666_666_666_735_130e-1;
    const LG2: f64 = 3.999_999_999_940_941_908e-1;
    const LG3: f64 = 2.857_142_874_366_239_149e-1;
    const LG4: f64 = 2.222_219_843_214_978_396e-1;
    const LG5: f64 = 1.818_357_216_161_805_012e-1;
    const LG6: f64 = 1.531_383_769_920_937_332e-1;
    const LG7: f64 = 1.479_819_860_511_658_591e-1;
    let bits = x.to_bits();
    // x = 2^k · (1 + f) with 1 + f in [√2/2, √2).
    let hx = (bits >> 32) + (0x3ff0_0000 - 0x3fe6_a09e);
    let k = hx >> 20;
    // k − 1023 as a float without an integer conversion (none is a vector instruction in AVX2).
    let dk = f64::from_bits(0x4330_0000_0000_0000 | k) - (4_503_599_627_370_496.0 + 1023.0);
    let m = f64::from_bits((((hx & 0x000f_ffff) + 0x3fe6_a09e) << 32) | (bits & 0xffff_ffff));
    let f = m - 1.0;
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{observers::HIST_BINS, sample_tensor, Rng, SampleKind};

    #[test]
    fn ln_is_within_an_ulp_of_the_platform_ln() {
        let mut rng = Rng::new(7);
        let mut xs: Vec<f64> = (0..200_000).map(|_| (rng.uniform() * 80.0 - 40.0).exp()).collect();
        xs.extend([
            1.0,
            2.0,
            0.5,
            std::f64::consts::E,
            1e-10,
            1e15,
            4_503_599_627_370_496.0,
            f64::MIN_POSITIVE,
            f64::MAX,
        ]);
        xs.extend((1..5000).map(|n| n as f64));
        for x in xs {
            let (a, b) = (ln(x), x.ln());
            let ulp = f64::from_bits(b.abs().to_bits() + 1) - b.abs();
            assert!((a - b).abs() <= ulp, "ln({x:e}) = {a:e}, platform {b:e}");
        }
    }

    /// The direct O(bins²) form of [`threshold`]: P and Q built bin by bin.
    fn threshold_direct(h: &Histogram, qtype: QType, unsigned: bool) -> f32 {
        // The same histogram of |x|, zero-spike rule and level count as the fast form.
        let (amax, search) = search(h, qtype, unsigned);
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
    fn threshold_matches_the_direct_form() {
        for (k, kind) in
            [SampleKind::Gaussian, SampleKind::Outliers, SampleKind::Relu, SampleKind::Uniform].into_iter().enumerate()
        {
            let data = sample_tensor(kind, 20_000, k as u64 + 1);
            let h = Histogram::of(&data, HIST_BINS).unwrap();
            for (qt, unsigned) in [(QType::UINT8, true), (QType::INT8, false)] {
                let (a, b) = (threshold(&h, qt, unsigned), threshold_direct(&h, qt, unsigned));
                let bin = h.lo.abs().max(h.hi.abs()) / HIST_BINS as f32;
                assert!((a - b).abs() <= bin * 1.01, "{kind:?}: {a} vs {b}");
            }
        }
    }
}
