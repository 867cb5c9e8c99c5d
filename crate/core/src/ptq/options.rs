//! The settings of a quantization run ([`PtqOptions`]) and their defaults.

use crate::model::Tensor;
use crate::quant::{Calibration, QType};

/// Where automatic mixed precision ([`PtqOptions::auto_mixed`]) moves the most sensitive layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MixedTo {
    /// Left in float.
    #[default]
    Fp32,
    /// Their input activations quantized to 16 bits (weights as chosen).
    Activations16,
    /// Their weights at 8 bits, where the model's are narrower (rounded to nearest and without
    /// bias correction: at 8 bits both change little); layers already at 8 bits are not chosen.
    Weights8,
}

impl MixedTo {
    /// What the layers become, as the notes say it.
    pub fn label(self) -> &'static str {
        match self {
            MixedTo::Fp32 => "kept FP32",
            MixedTo::Activations16 => "16-bit activations",
            MixedTo::Weights8 => "8-bit weights",
        }
    }
}

/// Settings of one quantization run.
#[derive(Debug, Clone)]
pub struct PtqOptions {
    /// Activation range observer. The default, MSE, was chosen by measurement together with
    /// `equalize` and `bias_correction`: on the person detector (held-out photos,
    /// `scripts/compare_ort_quant.py --matrix`, table in docs/measurements.md) MSE with both on had the
    /// best worst-output SQNR of the 32 observer × weights × CLE × bias-correction combinations.
    pub method: Calibration,
    /// Weights per output channel (true, the default) or per tensor.
    pub per_channel: bool,
    /// Activation type: uint8 (default) or int8, asymmetric (16 bits: uint16 / int16).
    pub activation: QType,
    /// Weight type: signed, symmetric (zero-point 0), 2 to 8 bits, full range (−128..127 at 8
    /// bits as onnxruntime writes it, −8..7 at 4 bits): [`PtqOptions::weight_bits`]. Default int8.
    pub weight: QType,
    /// Per-layer weight widths that override `weight` (node name, 2 to 8 bits): mixed precision,
    /// such as the most sensitive layers of a 4-bit model kept at 8 bits. Each layer's codes,
    /// scales, rounding, bias correction and storage (int4 at 4 bits and fewer) follow its own
    /// width; [`PtqOptions::weight_of`].
    pub layer_weight_bits: Vec<(String, u8)>,
    /// Store weights of 4 bits or fewer as ONNX int4 (packed two per byte; the opset is raised
    /// to 21, which DequantizeLinear of int4 needs), the default; `false` keeps them in int8
    /// with the narrowed range (for runtimes below opset 21). Weights of 5 to 7 bits are always
    /// stored in int8.
    pub pack_int4: bool,
    /// Node names to keep in FP32.
    pub keep_fp32: Vec<String>,
    /// Node names whose input activation is quantized to 16 bits (uint16, weights stay int8):
    /// a step between int8 and FP32 that onnxruntime runs (QDQ `com.microsoft` below opset 21).
    pub keep_16bit: Vec<String>,
    /// Move this many of the most sensitive layers to `mixed_to` (0: none). Sensitivity is the
    /// model output's SQNR when only that layer is quantized, on up to two calibration inputs.
    pub auto_mixed: usize,
    /// What `auto_mixed` moves its layers to: FP32, 16-bit activations, or 8-bit weights.
    pub mixed_to: MixedTo,
    /// Cross-layer equalization of Conv → act → Conv pairs after BN folding ([`equalize`]); on by
    /// default (+9 dB on the person detector with per-channel weights).
    ///
    /// [`equalize`]: super::equalize
    pub equalize: bool,
    /// Empirical bias correction of each quantized layer ([`bias_correction`]); on by default
    /// (+3–5 dB on the person detector after equalization).
    ///
    /// [`bias_correction`]: super::bias_correction
    pub bias_correction: bool,
    /// Error-compensating weight rounding ([`gptq`]): the weights' codes chosen for the layer
    /// outputs on the calibration data instead of rounded to nearest (same scales, same file
    /// size), layer after layer against the inputs the rounded layers before it give; below 8
    /// bits, with [`PtqOptions::bias_correction`], each layer's bias is corrected on those same
    /// runs. Two more runs over the calibration inputs (and their copies below 8 bits).
    ///
    /// [`gptq`]: super::gptq
    pub gptq: bool,
    /// Values for the model's inputs besides `input` (a detector's geometry inputs, such as
    /// D-FINE's `orig_target_sizes`: [`crate::detect::aux::aux_tensors`]), the same in every run:
    /// calibration and measurements hold them constant; the export keeps them as inputs.
    pub fixed_inputs: Vec<(String, Tensor)>,
}

impl PtqOptions {
    /// The weight type for `bits` (2..=8): signed, full range `−2^(bits−1) ..= 2^(bits−1)−1`,
    /// as the 8-bit path. The full range beat the restricted one (−7..7) at 4 bits on the person
    /// detector: held-out score output 16.1 dB against 12.9 dB (box output 8.8 dB in both): a
    /// finer step for every weight outweighs clipping each channel's largest one by half a step.
    pub fn weight_bits(bits: u8) -> Result<QType, crate::quant::QuantError> {
        if !(2..=8).contains(&bits) {
            return Err(crate::quant::QuantError::Bits(bits));
        }
        QType::new(bits, true, false)
    }

    /// The weight type of the node `node`: its entry in [`PtqOptions::layer_weight_bits`] (the
    /// last one, when named twice), else `weight`. Widths outside 2..=8 are refused when the
    /// quantization starts ([`PtqOptions::check_layer_bits`]).
    pub fn weight_of(&self, node: &str) -> QType {
        self.layer_weight_bits
            .iter()
            .rev()
            .find(|(n, _)| n == node)
            .and_then(|&(_, b)| Self::weight_bits(b).ok())
            .unwrap_or(self.weight)
    }

    /// Refuses a per-layer width outside 2..=8, or a name in [`PtqOptions::layer_weight_bits`],
    /// `keep_fp32` or `keep_16bit` that is not one of `layers` (the model's quantizable nodes),
    /// naming it and where to find the names.
    pub fn check_layer_names(&self, layers: &[&str]) -> Result<(), String> {
        let unknown = |what: &str, name: &str| {
            let some: Vec<&str> = layers.iter().take(4).copied().collect();
            format!(
                "{what} name `{name}`, which is not a quantizable layer (Conv, Gemm or MatMul with constant weights) of this model; the report lists them (e.g. {})",
                some.join(", ")
            )
        };
        for (name, bits) in &self.layer_weight_bits {
            if !(2..=8).contains(bits) {
                return Err(format!("layer `{name}`: weights are quantized to 2 to 8 bits; got {bits}"));
            }
            if !layers.contains(&name.as_str()) {
                return Err(unknown("per-layer weight bits", name));
            }
        }
        for (what, names) in [("the layers kept FP32", &self.keep_fp32), ("the 16-bit layers", &self.keep_16bit)] {
            if let Some(name) = names.iter().find(|n| !layers.contains(&n.as_str())) {
                return Err(unknown(what, name));
            }
        }
        Ok(())
    }

    /// The narrowest weight width of any of `layers`: `weight`'s bits when none is named.
    pub fn lowest_weight_bits<'a>(&self, layers: impl IntoIterator<Item = &'a str>) -> u8 {
        layers.into_iter().map(|n| self.weight_of(n).bits).min().unwrap_or(self.weight.bits)
    }

    /// Whether error-compensating rounding ([`PtqOptions::gptq`]) is on by default for `bits`-bit
    /// weights: below 8, where it gained 6.3 / 7.3 dB of output SQNR (boxes / scores) over
    /// rounding to nearest on the person detector's held-out photos at 4 bits
    /// (docs/measurements.md). At 8 bits it gains too, but costs two more passes and the
    /// factorisations, so it is asked for (`--gptq`).
    pub fn default_gptq(bits: u8) -> bool {
        bits < 8
    }
}

impl Default for PtqOptions {
    fn default() -> Self {
        PtqOptions {
            method: Calibration::Mse,
            per_channel: true,
            activation: QType::UINT8,
            weight: QType::INT8,
            layer_weight_bits: vec![],
            pack_int4: true,
            keep_fp32: vec![],
            keep_16bit: vec![],
            auto_mixed: 0,
            mixed_to: MixedTo::Fp32,
            equalize: true,
            bias_correction: true,
            gptq: false,
            fixed_inputs: Vec::new(),
        }
    }
}
