//! A detector: a planned model plus its profile, from RGBA pixels to boxes in three steps
//! ([`Detector::preprocess`], [`Detector::infer`], [`Detector::decode`]) so that callers can time
//! each stage with their own clock (there is no `Instant` in wasm32-unknown-unknown).

use super::{
    auto::infer_profile_for, auto::Alternative, detect, preprocess_into, Detection, Layout, Profile, Transform,
};
use crate::model::{load_model, Graph, Plan, Summary, Tensor};
use crate::ops::Registry;
use crate::Error;
use std::sync::Arc;

/// A model ready to detect: loaded, profiled, planned for the profile's input size.
#[derive(Debug)]
pub struct Detector {
    graph: Graph,
    plan: Arc<Plan>,
    profile: Profile,
    assumed: Vec<String>,
    alternatives: Vec<Alternative>,
    summary: Summary,
    input: Vec<f32>,
    /// Nothing to probe: the family fixes its pixel scaling, or the input takes raw uint8 pixels.
    scaling_known: bool,
}

/// The ops every detector run uses.
fn registry() -> Registry {
    Registry::new()
}

impl Detector {
    /// Loads model bytes (ONNX or TFLite, [`crate::model::load_model`]). With `profile = None`, a profile is inferred from the model's input and
    /// output shapes and [`Detector::assumed`] says what was assumed.
    pub fn new(onnx: &[u8], profile: Option<Profile>) -> Result<Detector, Error> {
        let graph = load_model(onnx)?;
        Detector::from_graph(graph, profile)
    }

    /// Like [`Detector::new`] for an already loaded graph.
    pub fn from_graph(mut graph: Graph, profile: Option<Profile>) -> Result<Detector, Error> {
        let raw_pixels = !crate::model::float_image_inputs(&mut graph).is_empty();
        let registry = registry();
        let summary = Summary::of(&graph, &registry);
        let (profile, assumed, alternatives, known) = match profile {
            Some(p) => {
                p.validate()?;
                (p, vec![], vec![], true)
            }
            None => {
                let a = infer_profile_for(&graph)?;
                (a.profile, a.assumed, a.alternatives, a.scaling_known)
            }
        };
        // Inputs besides the image become constants (the values the profile gives them): the
        // plan, every executor of it and the probe take the image alone.
        super::aux::bind_aux_inputs(&mut graph, &profile)?;
        let plan = Plan::new(&graph, &registry, &[(profile.input.clone(), input_shape(&profile))])?;
        let scaling_known = known || raw_pixels;
        Ok(Detector {
            graph,
            plan: Arc::new(plan),
            profile,
            assumed,
            alternatives,
            summary,
            input: Vec::new(),
            scaling_known,
        })
    }

    /// The profile in use.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// What auto-detection assumed (empty when a profile was given).
    pub fn assumed(&self) -> &[String] {
        &self.assumed
    }

    /// Other readings the output shapes fit (empty when a profile was given).
    pub fn alternatives(&self) -> &[Alternative] {
        &self.alternatives
    }

    /// Detections under another profile of the same model (an [`Alternative`]'s), without
    /// switching to it: the plan is reused, so the profile must keep the input's name and shape.
    pub fn preview(
        &self,
        profile: &Profile,
        width: usize,
        height: usize,
        rgba: &[u8],
    ) -> Result<Vec<Detection>, Error> {
        profile.validate()?;
        if profile.input != self.profile.input
            || input_shape(profile) != input_shape(&self.profile)
            || profile.aux_inputs != self.profile.aux_inputs
        {
            return Err(Error::from(super::DetectError::Profile(
                "a preview keeps the model's input, size and `aux_inputs`: apply the profile to change them".into(),
            )));
        }
        let mut buf = Vec::new();
        let t = preprocess_into(profile, width, height, rgba, &mut buf)?;
        let x = Tensor::f32(input_shape(profile), buf)?;
        let out = self.plan.run(&[(profile.input.clone(), x)])?;
        let named: Vec<(String, Tensor)> = self.plan.output_names().into_iter().map(String::from).zip(out).collect();
        Ok(detect(profile, &named, &t)?)
    }

    /// The model summary.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The loaded graph, its inputs besides the image made constants ([`super::aux`]).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The execution plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The execution plan, shared (another executor, such as the GPU's, runs the same plan).
    pub fn shared_plan(&self) -> Arc<Plan> {
        self.plan.clone()
    }

    /// Replaces the profile's thresholds (score, IoU) without re-planning.
    pub fn set_thresholds(&mut self, score: f32, iou: f32) {
        self.profile.score_threshold = score.clamp(0.0, 1.0);
        self.profile.iou_threshold = iou.clamp(0.0, 1.0);
    }

    /// Whether the input's pixel scaling is a guess: the profile was inferred, the file's
    /// metadata does not come from an exporter whose convention is known (Ultralytics: 0..1), the
    /// family does not fix it (MediaPipe, OpenCV's YuNet, InsightFace's SCRFD) and the input does
    /// not take raw uint8 pixels.
    pub fn scaling_is_a_guess(&self) -> bool {
        !self.scaling_known && !super::meta::ModelMeta::parse(&self.graph.metadata).ultralytics
    }

    /// When [`Detector::scaling_is_a_guess`]: tries the common pixel scalings on this photo
    /// ([`super::probe`]), switches the profile to the most confidently peaked one and says so
    /// in [`Detector::assumed`]. Returns the note, or `None` when nothing was probed.
    pub fn probe_pixel_scaling(&mut self, width: usize, height: usize, rgba: &[u8]) -> Result<Option<String>, Error> {
        if !self.scaling_is_a_guess() {
            return Ok(None);
        }
        let r = super::probe::probe_pixel_scaling(&self.plan, &self.profile, width, height, rgba)?;
        (self.profile.mean, self.profile.std) = r.mean_std;
        self.assumed.push(r.note.clone());
        Ok(Some(r.note))
    }

    /// Step 1: RGBA pixels → the input tensor (kept inside, buffer reused across frames).
    pub fn preprocess(&mut self, width: usize, height: usize, rgba: &[u8]) -> Result<(Tensor, Transform), Error> {
        let t = preprocess_into(&self.profile, width, height, rgba, &mut self.input)?;
        let x = Tensor::f32(input_shape(&self.profile), std::mem::take(&mut self.input))?;
        Ok((x, t))
    }

    /// Step 2: runs the model; returns named outputs.
    pub fn infer(&mut self, input: Tensor) -> Result<Vec<(String, Tensor)>, Error> {
        let out = self.plan.run(&[(self.profile.input.clone(), input)])?;
        Ok(self.plan.output_names().into_iter().map(String::from).zip(out).collect())
    }

    /// Step 3: outputs → detections in image pixels.
    pub fn decode(&self, outputs: &[(String, Tensor)], transform: &Transform) -> Result<Vec<Detection>, Error> {
        Ok(detect(&self.profile, outputs, transform)?)
    }

    /// What is odd about detections this model decoded, in words: scores above 1
    /// ([`super::agreement::lone_score_warning`]), or `None`.
    pub fn score_warning(&self, dets: &[Detection]) -> Option<String> {
        super::agreement::lone_score_warning(dets, self.summary.arithmetic)
    }

    /// All three steps.
    pub fn detect_rgba(&mut self, width: usize, height: usize, rgba: &[u8]) -> Result<Vec<Detection>, Error> {
        let (x, t) = self.preprocess(width, height, rgba)?;
        let out = self.infer(x)?;
        self.decode(&out, &t)
    }
}

/// The input tensor's shape for a profile: `[1, 3, h, w]` or `[1, h, w, 3]`.
pub fn input_shape(p: &Profile) -> Vec<usize> {
    let [w, h] = p.size;
    match p.layout {
        Layout::Nchw => vec![1, 3, h, w],
        Layout::Nhwc => vec![1, h, w, 3],
    }
}
