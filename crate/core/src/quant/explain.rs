//! A step-by-step walkthrough of quantizing one value: what `qplay explain` prints and what the
//! explorer shows. Both read the steps from here, so the page and the CLI cannot disagree.

use super::{check_range, effective_range, QParams, QType, QuantError, Scheme};
use serde::{Deserialize, Serialize};

/// What to explain.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExplainRequest {
    /// Low end of the float range.
    pub min: f64,
    /// High end of the float range.
    pub max: f64,
    /// Bit width (2..=8 or 16).
    pub bits: u8,
    /// Signed (int) or unsigned (uint) codes.
    pub signed: bool,
    /// Symmetric (±max|x|, Z = 0 for signed) or asymmetric.
    pub symmetric: bool,
    /// Symmetric restricted range (−127..127 for int8).
    #[serde(default)]
    pub restricted: bool,
    /// The value to send through q and back.
    pub value: f64,
    /// Round Δ to this many decimals before computing Z, q and x̂ — the "textbook" way many
    /// tutorials do it by hand. `None` keeps Δ exact.
    #[serde(default)]
    pub scale_decimals: Option<u32>,
}

impl ExplainRequest {
    /// The seed example: [−2, 2] to signed int8, asymmetric, x = 1.3.
    pub const SEED: ExplainRequest = ExplainRequest {
        min: -2.0,
        max: 2.0,
        bits: 8,
        signed: true,
        symmetric: false,
        restricted: false,
        value: 1.3,
        scale_decimals: None,
    };
}

/// The result, with every intermediate number and a human-readable step list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// Smallest code.
    pub qmin: i32,
    /// Largest code.
    pub qmax: i32,
    /// The range actually quantized (after widening to contain 0 or symmetrising).
    pub range: (f64, f64),
    /// Δ exactly, `(hi − lo)/(qmax − qmin)`.
    pub scale_exact: f64,
    /// Δ as used (as stored in `f32`, or rounded to `scale_decimals`).
    pub scale: f64,
    /// Z before rounding, `qmin − lo/Δ`.
    pub zero_point_real: f64,
    /// Z.
    pub zero_point: i32,
    /// x / Δ.
    pub x_over_scale: f64,
    /// round_half_even(x / Δ) + Z, before clamping.
    pub q_unclamped: i64,
    /// q, the stored code.
    pub q: i32,
    /// Whether q hit qmin or qmax.
    pub clamped: bool,
    /// x̂ = (q − Z)·Δ.
    pub dequantized: f64,
    /// x̂ − x.
    pub error: f64,
    /// Δ/2, the largest rounding error inside the range.
    pub half_step: f64,
    /// The steps, one line each.
    pub steps: Vec<String>,
}

/// Runs the walkthrough.
///
/// ```
/// use qplay_core::quant::{explain, ExplainRequest};
/// let exact = explain(&ExplainRequest::SEED).unwrap();
/// assert_eq!((exact.zero_point, exact.q), (0, 83));
/// let textbook = explain(&ExplainRequest { scale_decimals: Some(4), ..ExplainRequest::SEED }).unwrap();
/// assert_eq!((textbook.zero_point, textbook.q), (-1, 82));
/// assert!((textbook.dequantized - 1.3031).abs() < 1e-9);
/// ```
pub fn explain(r: &ExplainRequest) -> Result<Explanation, QuantError> {
    let qtype = QType::new(r.bits, r.signed, r.restricted && r.signed)?;
    check_range(r.min, r.max)?;
    if !r.value.is_finite() {
        return Err(QuantError::NonFiniteValue(r.value));
    }
    let scheme = if r.symmetric { Scheme::Symmetric } else { Scheme::Asymmetric };
    let (qmin, qmax) = (qtype.qmin(), qtype.qmax());
    let (lo, hi) = effective_range(r.min, r.max, scheme);
    let steps_n = (qmax - qmin) as f64;
    let scale_exact = (hi - lo) / steps_n;
    let mut steps = Vec::new();
    let kind = format!("{}{}", if r.signed { "int" } else { "uint" }, r.bits);
    steps.push(format!(
        "1. Grid: {kind}{} has codes {qmin}..{qmax} ({} levels).",
        if qtype.restricted { " (restricted)" } else { "" },
        qtype.levels()
    ));
    steps.push(match scheme {
        Scheme::Asymmetric if (lo, hi) != (r.min, r.max) => format!(
            "2. Range [{}, {}] is widened to contain 0 so that 0.0 is exact: [{}, {}].",
            fmt(r.min),
            fmt(r.max),
            fmt(lo),
            fmt(hi)
        ),
        Scheme::Asymmetric => format!("2. Range [{}, {}] (asymmetric, already contains 0).", fmt(lo), fmt(hi)),
        Scheme::Symmetric => format!(
            "2. Symmetric: a = max(|{}|, |{}|) = {}, range [{}, {}].",
            fmt(r.min),
            fmt(r.max),
            fmt(hi),
            fmt(lo),
            fmt(hi)
        ),
    });

    let (scale, zp_real, zp, q_unclamped, q, deq) = match r.scale_decimals {
        None => {
            let p = QParams::from_range(r.min, r.max, qtype, scheme)?;
            steps.push(format!(
                "3. Δ = (hi − lo) / (qmax − qmin) = {} / {} = {} (stored as f32: {}).",
                fmt(hi - lo),
                qmax - qmin,
                fmt(scale_exact),
                p.scale
            ));
            let zp_real =
                if scheme == Scheme::Symmetric && r.signed { 0.0 } else { qmin as f64 - lo * steps_n / (hi - lo) };
            if scheme == Scheme::Symmetric && r.signed {
                steps.push("4. Z = 0 (symmetric, signed).".to_string());
            } else {
                steps.push(format!(
                    "4. Z = round_half_even(qmin − lo/Δ) = round_half_even({} − ({})/Δ) = round_half_even({}) = {}.",
                    qmin,
                    fmt(lo),
                    fmt(zp_real),
                    p.zero_point
                ));
            }
            let xs = (r.value as f32 / p.scale) as f64;
            let qu = xs.round_ties_even() as i64 + p.zero_point as i64;
            let q = p.quantize(r.value as f32, qtype);
            (p.scale as f64, zp_real, p.zero_point, qu, q, p.dequantize(q) as f64)
        }
        Some(d) => {
            if d > 12 {
                return Err(QuantError::Decimals(d));
            }
            let f = 10f64.powi(d as i32);
            let scale = (scale_exact * f).round() / f;
            if scale <= 0.0 {
                return Err(QuantError::ScaleOutOfRange(scale));
            }
            steps.push(format!(
                "3. Δ = (hi − lo) / (qmax − qmin) = {} / {} = {}, rounded to {d} decimals: Δ = {}.",
                fmt(hi - lo),
                qmax - qmin,
                fmt(scale_exact),
                fmt(scale)
            ));
            let zp_real = if scheme == Scheme::Symmetric && r.signed { 0.0 } else { qmin as f64 - lo / scale };
            let zp = (zp_real.round_ties_even() as i64).clamp(qmin as i64, qmax as i64) as i32;
            steps.push(format!(
                "4. Z = round_half_even(qmin − lo/Δ) = round_half_even({} − ({})/{}) = round_half_even({}) = {} (with the rounded Δ).",
                qmin,
                fmt(lo),
                fmt(scale),
                fmt(zp_real),
                zp
            ));
            let xs = r.value / scale;
            let qu = xs.round_ties_even() as i64 + zp as i64;
            let q = qu.clamp(qmin as i64, qmax as i64) as i32;
            (scale, zp_real, zp, qu, q, (q - zp) as f64 * scale)
        }
    };
    let xs = if r.scale_decimals.is_some() { r.value / scale } else { (r.value as f32 / scale as f32) as f64 };
    let clamped = q_unclamped != q as i64;
    steps.push(format!(
        "5. q = clamp(round_half_even(x/Δ) + Z, qmin, qmax) = clamp(round_half_even({}/{}) + {zp}) = clamp(round_half_even({}) + {zp}) = clamp({q_unclamped}) = {q}{}.",
        fmt(r.value),
        fmt(scale),
        fmt(xs),
        if clamped { "  — clamped: x lies outside the representable range" } else { "" }
    ));
    steps.push(format!("6. x̂ = (q − Z)·Δ = ({q} − {zp})·{} = {}.", fmt(scale), fmt(deq)));
    let err = deq - r.value;
    steps.push(format!("7. Error x̂ − x = {} (inside the range |error| ≤ Δ/2 = {}).", fmt(err), fmt(scale / 2.0)));
    Ok(Explanation {
        qmin,
        qmax,
        range: (lo, hi),
        scale_exact,
        scale,
        zero_point_real: zp_real,
        zero_point: zp,
        x_over_scale: xs,
        q_unclamped,
        q,
        clamped,
        dequantized: deq,
        error: err,
        half_step: scale / 2.0,
        steps,
    })
}

/// Formats a number with up to 10 significant digits, trimming trailing zeros.
pub fn fmt(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let s = format!("{:.*}", (9 - x.abs().log10().floor() as i32).clamp(0, 12) as usize, x);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}
