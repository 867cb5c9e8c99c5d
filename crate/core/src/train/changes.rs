//! What fine-tuning changed, against the PTQ model it started from: per weight the codes that
//! moved and its scale's change, per activation scale its change ([`changes`]), and per
//! quantized activation its SQNR against the FP32 model before and after ([`LayerSqnr`],
//! measured by [`FineTune::best`](super::fine_tune::FineTune::best)).

use crate::model::{Graph, Tensor};
use serde::Serialize;

/// What fine-tuning changed in one quantized tensor (the kept step against PTQ).
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The weight's float tensor, or the activation scale's name.
    pub tensor: String,
    /// `weight` or `activation`.
    pub kind: &'static str,
    /// Its scales' mean relative change, `mean |s_after / s_before − 1|`, in %.
    pub scale_change_pct: f64,
    /// Weights: the share of codes that moved (rounding decisions changed), in %.
    pub codes_changed_pct: Option<f64>,
    /// Weights: the largest move of one code.
    pub max_code_move: Option<f64>,
}

/// The learned scales and moved weight codes of `after` against `before` (same QDQ graph,
/// other values), one entry per trained tensor, in `roles`' order.
pub fn changes(before: &Graph, after: &Graph, roles: &[super::qat::Role]) -> Vec<Change> {
    use super::qat::Role;
    let vals = |g: &Graph, name: &str| g.initializers.get(name).map(Tensor::to_f32_vec);
    let scale_change = |name: &str| -> Option<f64> {
        let (a, b) = (vals(before, name)?, vals(after, name)?);
        let n = a.len().min(b.len()).max(1);
        Some(100.0 * a.iter().zip(&b).map(|(&x, &y)| f64::from((y / x - 1.0).abs())).sum::<f64>() / n as f64)
    };
    roles
        .iter()
        .filter_map(|r| match r {
            Role::Activation { scale, .. } => Some(Change {
                tensor: scale.clone(),
                kind: "activation",
                scale_change_pct: scale_change(scale)?,
                codes_changed_pct: None,
                max_code_move: None,
            }),
            Role::Weight { param, q, scale, .. } => {
                let (a, b) = (vals(before, q)?, vals(after, q)?);
                let moved = a.iter().zip(&b).filter(|(x, y)| x != y).count();
                let max = a.iter().zip(&b).map(|(x, y)| f64::from((x - y).abs())).fold(0.0, f64::max);
                Some(Change {
                    tensor: param.clone(),
                    kind: "weight",
                    scale_change_pct: scale_change(scale)?,
                    codes_changed_pct: Some(100.0 * moved as f64 / a.len().max(1) as f64),
                    max_code_move: Some(max),
                })
            }
            Role::Bias { .. } => None,
        })
        .collect()
}

/// One quantized activation's SQNR against the FP32 model's tensor of the same name (each
/// channel fitted by one factor, as the feature term does), on the held-out inputs.
#[derive(Debug, Clone, Serialize)]
pub struct LayerSqnr {
    /// The activation (the float tensor its fake quantizer reads).
    pub tensor: String,
    /// The PTQ model's SQNR, dB.
    pub ptq_sqnr_db: f64,
    /// The kept step's SQNR, dB.
    pub qat_sqnr_db: f64,
}
