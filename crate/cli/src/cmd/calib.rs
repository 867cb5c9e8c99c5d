//! Calibration inputs for `quantize` and `qat`: a folder of images (pre-processed with the
//! model's profile) or `.npy` input tensors (used as they are).

use super::common::{profile_for, read, read_image};
use clap::builder::TypedValueParser as _;
use qplay_core::detect::{auto::infer_profile_for, aux::aux_tensors, pipeline::input_shape, preprocess, Profile};
use qplay_core::model::{load_model, npy, Graph, Tensor};
use std::path::{Path, PathBuf};

/// The arguments `quantize` and `qat` share.
#[derive(clap::Args, Debug)]
pub struct CalibArgs {
    /// The FP32 model, ONNX or TFLite (one image input; others described by the profile's aux_inputs).
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// Folder of calibration images (.png, .jpg) or .npy input tensors.
    #[arg(long, value_name = "DIR")]
    pub calib: String,
    /// The QDQ model to write.
    #[arg(short = 'o', long = "out", value_name = "OUT.onnx")]
    pub out: String,
    /// Profile for calibration images (default: MODEL.json beside it, else inferred).
    #[arg(long, value_name = "p.json")]
    pub profile: Option<String>,
}

/// The bit widths `quantize` and `qat` share.
#[derive(clap::Args, Debug)]
pub struct BitArgs {
    /// Weight bit width, 2 to 8: symmetric per channel; 4 bits and fewer are stored as int4
    /// (opset 21) unless --weights-in-int8.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u8).range(2..=8))]
    pub weight_bits: u8,
    /// Activation bit width: 8 or 16.
    #[arg(long, value_name = "8|16", default_value = "8",
          value_parser = clap::builder::PossibleValuesParser::new(["8", "16"]).map(|s| if s == "16" { 16u8 } else { 8 }))]
    pub activation_bits: u8,
    /// Weight widths per layer (mixed precision): comma-separated NODE=N, 2 to 8 bits each, for
    /// the layers that do not take --weight-bits (e.g. the most sensitive layers of a 4-bit model
    /// at 8; the report's `layers` name them).
    #[arg(long, value_name = "NODE=N,…", value_delimiter = ',', value_parser = parse_layer_bits)]
    pub layer_bits: Vec<(String, u8)>,
    /// Store weights of 4 bits or fewer in int8 with the narrowed range, keeping the model's
    /// opset (int4 needs opset 21).
    #[arg(long)]
    pub weights_in_int8: bool,
    /// Error-compensating weight rounding (GPTQ): each layer's weight codes chosen for its
    /// outputs on the calibration inputs rather than rounded to nearest (same scales and size;
    /// one more pass over the inputs). Default on below 8-bit weights.
    #[arg(long, conflicts_with = "no_gptq")]
    pub gptq: bool,
    /// Weights rounded to nearest (the default at 8 bits).
    #[arg(long)]
    pub no_gptq: bool,
}

impl BitArgs {
    /// Sets the weight and activation types of `opts` (`signed` activations: int8 / int16).
    pub fn apply(&self, opts: &mut qplay_core::ptq::PtqOptions, signed: bool) -> Result<(), String> {
        opts.weight = qplay_core::ptq::PtqOptions::weight_bits(self.weight_bits).map_err(|e| e.to_string())?;
        opts.layer_weight_bits = self.layer_bits.clone();
        opts.activation = qplay_core::quant::QType { bits: self.activation_bits, signed, restricted: false };
        opts.pack_int4 = !self.weights_in_int8;
        opts.gptq = self.gptq || (!self.no_gptq && qplay_core::ptq::PtqOptions::default_gptq(self.weight_bits));
        Ok(())
    }
}

/// The mixed-precision choices `quantize` and `qat` share: layers kept FP32 or at 16-bit
/// activations by name, and the most sensitive ones moved by measurement.
#[derive(clap::Args, Debug)]
pub struct MixArgs {
    /// Keep these nodes FP32 (comma-separated node names).
    #[arg(long, value_name = "NODE,NODE", value_delimiter = ',')]
    pub keep_fp32: Vec<String>,
    /// 16-bit input activations for these nodes (comma-separated node names).
    #[arg(long, value_name = "NODE,NODE", value_delimiter = ',')]
    pub keep_16bit: Vec<String>,
    /// Keep the K most sensitive layers FP32 (16-bit activations with --mixed-16bit, 8-bit
    /// weights with --mixed-8bit-weights).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub auto_mixed: usize,
    /// --auto-mixed moves its layers to 16-bit activations rather than FP32.
    #[arg(long, requires = "auto_mixed", conflicts_with = "mixed_8bit_weights")]
    pub mixed_16bit: bool,
    /// --auto-mixed moves its layers to 8-bit weights (of those below 8 bits: with --weight-bits
    /// under 8) rather than FP32; they stay integer.
    #[arg(long, requires = "auto_mixed")]
    pub mixed_8bit_weights: bool,
}

impl MixArgs {
    /// Sets the mixed-precision fields of `opts`.
    pub fn apply(&self, opts: &mut qplay_core::ptq::PtqOptions) {
        use qplay_core::ptq::MixedTo;
        let names = |v: &[String]| v.iter().map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect();
        opts.keep_fp32 = names(&self.keep_fp32);
        opts.keep_16bit = names(&self.keep_16bit);
        opts.auto_mixed = self.auto_mixed;
        opts.mixed_to = if self.mixed_16bit {
            MixedTo::Activations16
        } else if self.mixed_8bit_weights {
            MixedTo::Weights8
        } else {
            MixedTo::Fp32
        };
    }
}

/// One `--layer-bits` entry: `NODE=N`, N in 2..=8 (the node name may itself hold `=`: the
/// last one splits).
fn parse_layer_bits(s: &str) -> Result<(String, u8), String> {
    let (name, bits) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("`{s}`: give NODE=N, e.g. conv1=8 (the report's layers name the nodes)"))?;
    let bits: u8 =
        bits.trim().parse().map_err(|_| format!("`{s}`: the width after `=` is a number of bits, 2 to 8"))?;
    if name.is_empty() || !(2..=8).contains(&bits) {
        return Err(format!("`{s}`: give NODE=N with N from 2 to 8"));
    }
    Ok((name.to_string(), bits))
}

/// The model ready for calibration, and its inputs.
pub struct Calib {
    /// The model (a uint8 image input made float32 when calibrating with photos).
    pub graph: Graph,
    /// One tensor per calibration input, for the image input.
    pub inputs: Vec<Tensor>,
    /// The image input's name.
    pub input: String,
    /// Inputs besides the image, constant in every run (the profile's `aux_inputs`).
    pub fixed: Vec<(String, Tensor)>,
    /// The detection profile, when the inputs are images or the model needs one for its
    /// other inputs.
    pub profile: Option<Profile>,
}

/// Loads `bytes` (the file `model`) and the calibration inputs in `calib_dir`.
pub fn load_calibration(model: &str, bytes: &[u8], calib_dir: &str, profile: Option<&str>) -> Result<Calib, String> {
    let mut graph = load_model(bytes).map_err(|e| format!("{model}: {e}"))?;
    // The profile (given, or inferred): how images become inputs, and what a model's inputs
    // besides the image get (`aux_inputs`: D-FINE's `orig_target_sizes`, …).
    let get_profile = |graph: &Graph| -> Result<Profile, String> {
        match profile_for(Path::new(model), profile)? {
            (Some(p), _) => Ok(p),
            (None, _) => Ok(infer_profile_for(graph)
                .map_err(|e| format!("{e}; give --profile, or calibrate with .npy input tensors"))?
                .profile),
        }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(calib_dir)
        .map_err(|e| format!("cannot read --calib {calib_dir}: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let is_img = |p: &Path| {
        matches!(
            p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(),
            Some("png" | "jpg" | "jpeg")
        )
    };
    let npys: Vec<&PathBuf> = files.iter().filter(|p| p.extension().is_some_and(|e| e == "npy")).collect();
    let imgs: Vec<&PathBuf> = files.iter().filter(|p| is_img(p)).collect();
    let mut inputs: Vec<Tensor> = Vec::new();
    let profile = if !npys.is_empty() {
        for p in &npys {
            inputs.push(npy::read_npy(&read(p)?).map_err(|e| format!("{}: {e}", p.display()))?);
        }
        if graph.inputs.len() > 1 {
            Some(get_profile(&graph)?)
        } else {
            None
        }
    } else if !imgs.is_empty() {
        // Photos are fed as float32: a uint8 image input reads them through a Cast.
        qplay_core::model::float_image_inputs(&mut graph);
        let profile = get_profile(&graph)?;
        // Decoded a photo per task (the first bad one, in file order, is the error).
        inputs = qplay_core::parallel::try_map(imgs.len(), |i| {
            let p = imgs[i];
            let (w, h, rgba) = read_image(p)?;
            let (t, _) = preprocess(&profile, w, h, &rgba).map_err(|e| format!("{}: {e}", p.display()))?;
            debug_assert_eq!(t.shape, input_shape(&profile));
            Ok::<Tensor, String>(t)
        })?;
        Some(profile)
    } else {
        return Err(format!(
            "{calib_dir} holds no calibration inputs: put images (.png, .jpg) or input tensors (.npy) there"
        ));
    };
    let (input, fixed) = match (&profile, graph.inputs.as_slice()) {
        // Inputs besides the image: constant in every run, kept as inputs in the export.
        (Some(p), _) => (p.input.clone(), aux_tensors(p, &graph.inputs).map_err(|e| format!("{model}: {e}"))?),
        (None, [one]) => (one.name.clone(), Vec::new()),
        (None, other) => return Err(format!("{model} has {} inputs; give a single-input model", other.len())),
    };
    Ok(Calib { graph, inputs, input, fixed, profile })
}
