//! Inputs besides the image (a profile's `aux_inputs`): what to feed each, so that the model's
//! outputs come out in model-input pixels and the profile's [`super::Transform`] maps them to
//! the photo.
//!
//! [`super::Transform`]: crate::detect::Transform

use serde::{Deserialize, Serialize};

/// What to feed one input besides the image: a kind qplay computes from the input size, or
/// constant values.
///
/// JSON: a kind's name (`"input_wh"`) or a list of numbers (`[1, 1]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AuxInput {
    /// A value that depends on the model input's size.
    Kind(AuxKind),
    /// These values, in the input's shape (a leading unknown dimension is 1) and element type.
    Values(Vec<f64>),
}

/// Values computed from the model input's size `W × H`, such that a post-processor inside the
/// model scales its boxes to model-input pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuxKind {
    /// `[W, H]`: the "original" size a DETR post-processor multiplies its normalised boxes by
    /// (`orig_target_sizes` of D-FINE and RT-DETR exports, `orig_size`, `target_sizes`).
    InputWh,
    /// `[H, W]`: an image shape in height-first order (PaddleDetection's `im_shape`,
    /// `image_shape`).
    InputHw,
    /// `[1, 1]`: a resize factor of one (PaddleDetection's `scale_factor`, `[sy, sx]`): boxes stay
    /// in input pixels.
    UnitScale,
}

impl AuxKind {
    /// The two values for an input `[w, h]` pixels in size.
    pub fn values(self, [w, h]: [usize; 2]) -> Vec<f64> {
        match self {
            AuxKind::InputWh => vec![w as f64, h as f64],
            AuxKind::InputHw => vec![h as f64, w as f64],
            AuxKind::UnitScale => vec![1.0, 1.0],
        }
    }

    /// What the kind feeds, in words.
    pub fn describe(self) -> &'static str {
        match self {
            AuxKind::InputWh => "the model input's own [width, height]",
            AuxKind::InputHw => "the model input's own [height, width]",
            AuxKind::UnitScale => "a scale of [1, 1]",
        }
    }
}
