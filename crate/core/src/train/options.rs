//! How to fine-tune ([`QatOptions`]), and the defaults per weight width, each chosen by
//! measurement on the person detector's folds (`docs/measurements.md`).

/// How to fine-tune.
#[derive(Debug, Clone)]
pub struct QatOptions {
    /// Optimizer steps.
    pub steps: usize,
    /// Adam's step size (weights and biases; scales step this fraction of their size):
    /// [`QatOptions::default_lr`] for the weights' bit width.
    pub lr: f32,
    /// Inputs per step (their gradients are averaged).
    pub batch: usize,
    /// Held-out check every this many steps (and after the last).
    pub eval_every: usize,
    /// Train on augmented copies of the inputs ([`augment`](super::augment)), a new draw each
    /// step, the teacher run on the same copy.
    pub augment: bool,
    /// Seed of the augmentation.
    pub seed: u64,
    /// Weight of the per-layer feature term ([`FeatureTerm`](super::FeatureTerm)) against
    /// the outputs' (0: outputs only).
    pub feature_weight: f32,
    /// With augmentation, the share of training copies blended with a copy of another
    /// training input (mixup of the inputs, [`blend`](super::augment::blend): `λ·a + (1 − λ)·b`,
    /// λ in 0.3–0.7; the teacher sees the same blend): 0…1, [`QatOptions::default_mix`].
    pub mix: f32,
    /// Each weight steps by its channel's quantization step over the median one
    /// ([`Qat::set_grid_steps`](super::Qat::set_grid_steps)): [`QatOptions::default_grid_steps`].
    pub grid_steps: bool,
    /// The activations' quantization scales train (LSQ) besides the weights, their scales and
    /// the biases; else they keep their PTQ values: [`QatOptions::default_activation_scales`].
    pub activation_scales: bool,
}

impl Default for QatOptions {
    fn default() -> Self {
        QatOptions {
            steps: 100,
            lr: 1e-4,
            batch: 4,
            eval_every: 10,
            augment: true,
            seed: 1,
            feature_weight: 1.0,
            mix: 0.0,
            grid_steps: false,
            activation_scales: true,
        }
    }
}

impl QatOptions {
    /// The step size for weights of `bits` bits, rounded by GPTQ (`gptq`) or to nearest: 1e-3
    /// below 8 bits (a coarser grid needs larger moves for a code to change); at 8 bits 1e-4 from
    /// rounding to nearest and 3e-5 from GPTQ's better start. Measured on the person detector's
    /// unseen photos (`docs/measurements.md`): from rounding to nearest 1e-4 gained 0.5–1.3 dB
    /// more than 3e-5; from GPTQ's codes 1e-4 kept step 0 on every fold, 3e-5 gained +0.8 / +2.2
    /// dB (boxes / scores).
    pub fn default_lr(bits: u8, gptq: bool) -> f32 {
        match (bits < 8, gptq) {
            (true, _) => 1e-3,
            (false, false) => 1e-4,
            (false, true) => 3e-5,
        }
    }

    /// The feature term's weight for weights of `bits` bits: 1 at 8 bits, 0 (outputs only)
    /// below. Measured on the person detector's folds (`docs/measurements.md`): at 8 bits the
    /// term helped; at 4 bits it cost 0.3–0.7 dB and the person on one unseen photo.
    pub fn default_feature_weight(bits: u8) -> f32 {
        if bits < 8 {
            0.0
        } else {
            1.0
        }
    }

    /// The mixup share for weights of `bits` bits: 1 below 8 bits, 0 at 8. Measured on the
    /// person detector's folds (`docs/measurements.md`): at 4 bits every copy blended gained
    /// 0.3 / 0.2 dB on unseen photos with one seed and −0.17 / +0.39 dB over three (a wash, kept
    /// every detection); at 8 bits it cost 0.4 / 1.1 dB.
    pub fn default_mix(bits: u8) -> f32 {
        if bits < 8 {
            1.0
        } else {
            0.0
        }
    }

    /// Whether the weights step by their grid ([`Qat::set_grid_steps`](super::Qat::set_grid_steps)) for weights of `bits`
    /// bits: below 8. Measured on the person detector's folds (`docs/measurements.md`): at 4
    /// bits +0.45 / +0.61 dB on unseen photos with one seed, +0.27 / +0.96 over three (every
    /// detection kept); at 8 bits from GPTQ's start it cost 0.1 / 2.8 dB.
    pub fn default_grid_steps(bits: u8) -> bool {
        bits < 8
    }

    /// Whether the activations' scales train, for weights of `bits` bits: at 8, not below.
    /// Measured on the person detector's folds (`docs/measurements.md`): at 4 bits, kept or
    /// trained, the same within the augmentation seeds' spread (+0.14 / −0.11 dB on unseen
    /// photos over three seeds); kept trains fewer values (the weights' error is the one to fix,
    /// and five photos are few to move 76 clipping ranges on).
    pub fn default_activation_scales(bits: u8) -> bool {
        bits >= 8
    }
}
