//! The pixel-scaling probe: when neither a profile nor the file says how pixels are scaled, run
//! the model on a photo once per common convention (0..1, 0..255, −1..1, ImageNet mean/std, and
//! the family's default) and keep the one whose scores are most confidently peaked — a few
//! high scores over a low floor — rather than flat (too dark an input) or saturated (too bright).
//!
//! Peakedness = mean of the 5 best candidate scores − the median score of all candidates, times
//! the share of those 5 whose boxes have an area (at least a pixel each way: a saturated input
//! drives sizes to zero or to nonsense along with the scores). The family's default is kept unless another convention beats it by more than 0.1, and the
//! result is said in plain words.

use super::{decode, preprocess_into, Profile};
use crate::model::{Plan, Tensor};
use crate::Error;

/// One scaling convention: a name and `(mean, std)` in RGB order.
const CONVENTIONS: [(&str, [f32; 3], [f32; 3]); 4] = [
    ("0..1", [0.0; 3], [1.0; 3]),
    ("0..255", [0.0; 3], [1.0 / 255.0; 3]),
    ("−1..1", [0.5; 3], [0.5; 3]),
    ("ImageNet mean/std", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
];

/// What the probe measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    /// `(convention, peakedness)` for every convention tried, the profile's own first.
    pub scores: Vec<(String, f32)>,
    /// Index into `scores` of the one chosen.
    pub chosen: usize,
    /// The chosen `(mean, std)`, in the model's channel order.
    pub mean_std: ([f32; 3], [f32; 3]),
    /// One sentence for the user.
    pub note: String,
}

fn peakedness(mut c: Vec<super::nms::Candidate>) -> f32 {
    if c.is_empty() {
        return 0.0;
    }
    c.sort_by(|a, b| b.score.total_cmp(&a.score));
    let top = &c[..c.len().min(5)];
    let mean = top.iter().map(|c| c.score).sum::<f32>() / top.len() as f32;
    let real = top.iter().filter(|c| c.bbox[2] - c.bbox[0] >= 1.0 && c.bbox[3] - c.bbox[1] >= 1.0).count();
    (mean - c[c.len() / 2].score) * real as f32 / top.len() as f32
}

/// Runs `plan` on the photo under each convention and picks one (see the module docs).
pub fn probe_pixel_scaling(
    plan: &Plan,
    profile: &Profile,
    width: usize,
    height: usize,
    rgba: &[u8],
) -> Result<ProbeResult, Error> {
    let bgr = profile.color == super::ColorOrder::Bgr;
    let order = |v: [f32; 3]| if bgr { [v[2], v[1], v[0]] } else { v };
    let mut tried: Vec<(String, [f32; 3], [f32; 3])> = vec![("the family's default".into(), profile.mean, profile.std)];
    for (name, m, s) in CONVENTIONS {
        let (m, s) = (order(m), order(s));
        if (m, s) != (profile.mean, profile.std) {
            tried.push((name.to_string(), m, s));
        } else {
            tried[0].0 = format!("{name} (the family's default)");
        }
    }
    let mut scores = Vec::new();
    let mut top = Vec::new();
    let mut buf = Vec::new();
    for (name, mean, std) in &tried {
        let p = Profile { mean: *mean, std: *std, score_threshold: 0.0, ..profile.clone() };
        preprocess_into(&p, width, height, rgba, &mut buf)?;
        let x = Tensor::f32(super::pipeline::input_shape(&p), std::mem::take(&mut buf))?;
        let out = plan.run(&[(p.input.clone(), x)])?;
        let named: Vec<(String, Tensor)> = plan.output_names().into_iter().map(String::from).zip(out).collect();
        // A convention that makes the outputs non-finite is as bad as it gets.
        let (s, max) = match decode::decode(&p, &named) {
            Ok(c) => {
                let max = c.iter().map(|c| c.score).fold(0f32, f32::max);
                (peakedness(c), max)
            }
            Err(_) => (f32::NEG_INFINITY, 0.0),
        };
        scores.push((name.clone(), s));
        top.push(max);
    }
    let best = (0..scores.len()).max_by(|&a, &b| scores[a].1.total_cmp(&scores[b].1)).unwrap_or(0);
    let chosen = if scores[best].1 > scores[0].1 + 0.1 { best } else { 0 };
    let fmt = |(n, s): &(String, f32)| format!("{n} {s:.2}");
    let mut note = format!(
        "pixel scaling probed on the photo (peakedness of the scores: {}): {}",
        scores.iter().map(fmt).collect::<Vec<_>>().join(", "),
        if chosen == 0 { "kept the family's default".to_string() } else { format!("using {}", scores[chosen].0) }
    );
    if top[chosen] > 1.001 {
        note.push_str(&format!(
            "; but scores reach {:.4}, above 1: these outputs are not probabilities, so this reading of them is probably \
             wrong (try the other readings, or write a profile)",
            top[chosen]
        ));
    }
    Ok(ProbeResult { mean_std: (tried[chosen].1, tried[chosen].2), scores, chosen, note })
}
