//! From a QDQ model (PTQ's output) to a trainable one, and back.
//!
//! ```text
//! x ─Q(s,z)─DQ(s,z)─            ⇒  x ─FakeQuant(s,z)─           s trains (LSQ)
//! W_q(int8/int4) ─DQ(s_w,z_w)─ Conv ⇒ W(float) ─FakeQuant(s_w,z_w)─ Conv  W and s_w train
//! B_q(int32) ─DQ(s_in·s_w)─     ⇒  B(float)                      B trains
//! ```
//!
//! Weights train at their own bit width (int4 codes, or a narrower grid in int8: 4-bit PTQ
//! stored for opsets below 21) and are exported at it.
//!
//! Step 0 computes exactly what the QDQ graph computes (in float simulation): the float
//! weights are the dequantized codes, on the grid, so fake quantization gives them back bit for
//! bit. [`Qat::export`] writes the learned values back into the QDQ graph: activation and
//! weight scales, weights re-quantized with their scales, biases as int32 at `s_in·s_w`.

use super::{Student, TrainError};
use crate::model::{Data, Graph, ModelError, Node, OpKind, Tensor};
use crate::ops::quant::bias_quant::BIAS_QUANT;
use crate::ops::quant::fake_quant::FAKE_QUANT;
use crate::ops::{BuildCtx, Registry};
use std::collections::HashMap;

/// What a trained tensor is in the QDQ graph.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// An activation's Q→DQ pair: its scale trains.
    Activation {
        /// The scale initializer.
        scale: String,
        /// The float tensor it quantizes (the fake quantizer's input).
        input: String,
    },
    /// A weight: `param` (float) trains through a FakeQuant with `scale`; exported to `q`.
    Weight {
        /// The float parameter's name.
        param: String,
        /// The int8 (or int4) initializer it is written back to.
        q: String,
        /// Its (per-channel) scale initializer.
        scale: String,
        /// Its zero point initializer.
        zero_point: String,
        /// The DQ's axis.
        axis: i64,
        /// The weights' bit width when it is narrower than their storage type (e.g. 4-bit
        /// weights in int8, seen from the codes' range: [`narrow_bits`]); int4 storage gives
        /// it by its type.
        bits: Option<u8>,
    },
    /// A bias: float `param` (`<codes>_qat`, which a `qplay.BiasQuant` puts on the int32 grid
    /// of `s_in · s_w` in training), exported as int32 `q` at `scale`.
    Bias {
        /// The float parameter's name.
        param: String,
        /// The int32 initializer.
        q: String,
        /// Its scale initializer (`s_in · s_w`).
        scale: String,
        /// The scale of the layer's input activation.
        input_scale: String,
        /// The scale of the layer's weight.
        weight_scale: String,
    },
}

/// Evaluates one node on initializers (a DQ on its codes).
fn eval_node(n: &Node, g: &Graph) -> Result<Tensor, TrainError> {
    let build = Registry::new().get(&n.op_type).ok_or_else(|| TrainError::Setup(format!("no op {}", n.op_type)))?;
    let op = build(n, &BuildCtx { opset: g.opset }).map_err(|e| ModelError::at(n, e))?;
    let args: Vec<Option<&Tensor>> = n.inputs.iter().map(|i| g.initializers.get(i)).collect();
    let mut out = op.eval(&args).map_err(|e| ModelError::at(n, e))?;
    Ok(out.remove(0))
}

/// The narrowest weight width of a QDQ graph: 4 for int4/uint4 codes, [`narrow_bits`] for
/// int8 codes on a narrower grid, 8 otherwise (and for a graph without quantized weights).
pub fn weight_bits(qdq: &Graph) -> u8 {
    qdq.nodes
        .iter()
        .filter(|n| n.is_dequantize_linear())
        .filter_map(|n| {
            let codes = qdq.initializers.get(n.inputs.first()?)?;
            let zp = n.inputs.get(2).and_then(|z| qdq.initializers.get(z));
            match codes.data {
                Data::I4(_) | Data::U4(_) => Some(4),
                Data::I8(_) => Some(narrow_bits(codes, zp).unwrap_or(8)),
                Data::U8(_) => Some(8),
                _ => None,
            }
        })
        .min()
        .unwrap_or(8)
}

/// The bit width of symmetric int8 weight codes that use a narrower grid: the smallest `N` in
/// 2..=7 whose range `−2^(N−1) ..= 2^(N−1)−1` holds every code and whose edge
/// `2^(N−1)−1` is reached (symmetric quantization maps each channel's largest weight there), with
/// every zero point 0. `None` for 8-bit codes and anything else.
pub fn narrow_bits(codes: &Tensor, zero_point: Option<&Tensor>) -> Option<u8> {
    let Data::I8(v) = &codes.data else { return None };
    if zero_point.is_some_and(|z| z.to_i64_vec().map_or(true, |z| z.iter().any(|&z| z != 0))) {
        return None;
    }
    let lo = i32::from(*v.iter().min()?);
    let hi = i32::from(*v.iter().max()?);
    (2u8..=7).find(|&n| {
        let top = (1i32 << (n - 1)) - 1;
        lo >= -top - 1 && hi <= top && hi.max(-lo) >= top
    })
}

/// The trainable graph of a QDQ graph, and the role of each trained tensor. Weights train at
/// the bit width of their codes: int4 storage by its type, narrower grids in int8 by
/// [`narrow_bits`] (the FakeQuant's `bits`).
pub fn fake_quant_graph(qdq: &Graph) -> Result<(Graph, Vec<Role>), TrainError> {
    let mut g = qdq.clone();
    crate::model::qdq_form::explicit_qdq(&mut g);
    g.toposort()?;
    let producer: HashMap<String, usize> =
        g.nodes.iter().enumerate().flat_map(|(i, n)| n.outputs.iter().map(move |o| (o.clone(), i))).collect();
    let readers = |name: &str| g.nodes.iter().filter(|n| n.inputs.iter().any(|i| i == name)).count();
    let scale_of_dq = |name: &str| {
        producer
            .get(name)
            .map(|&i| &g.nodes[i])
            .filter(|n| n.is_dequantize_linear())
            .and_then(|n| n.inputs.get(1))
            .cloned()
    };
    let mut roles = Vec::new();
    let mut remove = vec![false; g.nodes.len()];
    let mut replace: Vec<(usize, Node)> = Vec::new();
    let mut new_inits: Vec<(String, Tensor)> = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if !n.is_dequantize_linear() || n.inputs.len() < 2 || n.outputs.len() != 1 {
            continue;
        }
        // int32 biases have no zero-point (ONNX's default 0); weights and activations have one
        // (the explicit form gives constant codes theirs).
        let (x, s) = (&n.inputs[0], &n.inputs[1]);
        let z = n.inputs.get(2).filter(|z| !z.is_empty());
        let out = &n.outputs[0];
        let fake = |input: &str, z: &String, axis: i64, bits: Option<u8>| Node {
            name: format!("{}_fake", n.name),
            op_type: FAKE_QUANT.into(),
            inputs: vec![input.to_string(), s.clone(), z.clone()],
            outputs: vec![out.clone()],
            attrs: crate::model::Attrs(
                [("axis".to_string(), crate::model::Attr::Int(axis))]
                    .into_iter()
                    .chain(bits.map(|b| ("bits".to_string(), crate::model::Attr::Int(i64::from(b)))))
                    .collect(),
            ),
            fused: Default::default(),
        };
        let axis = n.attrs.int("axis", 1);
        if let Some(codes) = g.initializers.get(x) {
            let value = eval_node(n, &g)?;
            match codes.data {
                Data::I8(_) | Data::U8(_) | Data::I4(_) | Data::U4(_) => {
                    let Some(z) = z else { continue };
                    let param = format!("{x}_qat");
                    let bits = narrow_bits(codes, g.initializers.get(z));
                    new_inits.push((param.clone(), value));
                    replace.push((i, fake(&param, z, axis, bits)));
                    roles.push(Role::Weight {
                        param,
                        q: x.clone(),
                        scale: s.clone(),
                        zero_point: z.clone(),
                        axis,
                        bits,
                    });
                }
                Data::I32(_) => {
                    // The layer reading the bias: its input and weight scales. The bias trains
                    // in float and runs on its int32 grid at their (learned) product, as the
                    // export writes it; a bias of no such layer stays as it is.
                    let layer = g.nodes.iter().find(|c| c.inputs.get(2) == Some(out));
                    let scales = layer.and_then(|c| Some((scale_of_dq(&c.inputs[0])?, scale_of_dq(&c.inputs[1])?)));
                    if let Some((input_scale, weight_scale)) = scales {
                        let param = format!("{x}_qat");
                        new_inits.push((param.clone(), value));
                        replace.push((
                            i,
                            Node {
                                name: format!("{}_qat", n.name),
                                op_type: BIAS_QUANT.into(),
                                inputs: vec![param.clone(), input_scale.clone(), weight_scale.clone()],
                                outputs: vec![out.clone()],
                                attrs: Default::default(),
                                fused: Default::default(),
                            },
                        ));
                        roles.push(Role::Bias { param, q: x.clone(), scale: s.clone(), input_scale, weight_scale });
                    }
                }
                _ => {}
            }
            continue;
        }
        let (Some(&qi), Some(z)) = (producer.get(x), z) else { continue };
        let q = &g.nodes[qi];
        let same_params = q.inputs.get(1) == Some(s) && q.inputs.get(2) == Some(z);
        if !q.is_quantize_linear() || !same_params || q.attrs.int("axis", 1) != axis {
            continue;
        }
        replace.push((i, fake(&q.inputs[0], z, axis, None)));
        if readers(x) == 1 {
            remove[qi] = true;
        }
        roles.push(Role::Activation { scale: s.clone(), input: q.inputs[0].clone() });
    }
    for (i, node) in replace {
        g.nodes[i] = node;
    }
    let mut k = 0;
    g.nodes.retain(|_| {
        k += 1;
        !remove[k - 1]
    });
    g.initializers.extend(new_inits);
    Ok((g, roles))
}

/// Per trained weight: each value's quantization step over the median step of all weight
/// channels (the scales as they are in `params`), so that one Adam step size moves every channel
/// by a like share of its grid.
fn weight_step_sizes<'a>(roles: &'a [Role], params: &[(String, Tensor)]) -> HashMap<&'a str, Vec<f32>> {
    let get = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, t)| t);
    let mut per: Vec<(&str, Vec<f32>)> = Vec::new();
    let mut all: Vec<f32> = Vec::new();
    for r in roles {
        let Role::Weight { param, scale, axis, .. } = r else { continue };
        let (Some(w), Some(Ok(s))) = (get(param), get(scale).map(Tensor::as_f32)) else { continue };
        let rank = w.shape.len() as i64;
        let ax = if *axis < 0 { axis + rank } else { *axis };
        if s.is_empty() || !(0..rank.max(1)).contains(&ax) {
            continue;
        }
        let inner: usize = w.shape.get(ax as usize + 1..).map_or(1, |d| d.iter().product());
        let c = s.len();
        let n: usize = w.shape.iter().product();
        per.push((param.as_str(), (0..n).map(|i| s[(i / inner.max(1)) % c]).collect()));
        all.extend(s.iter().copied().filter(|v| v.is_finite() && *v > 0.0));
    }
    if all.is_empty() {
        return HashMap::new();
    }
    all.sort_by(f32::total_cmp);
    let median = all[all.len() / 2];
    per.into_iter()
        .map(|(p, mut s)| {
            s.iter_mut().for_each(|v| *v = if v.is_finite() && *v > 0.0 { *v / median } else { 1.0 });
            (p, s)
        })
        .collect()
}

/// The teacher's outputs for input `i` of a batch: borrowed (computed before) or computed on
/// the spot.
pub type TeacherFn<'a> = dyn Fn(usize) -> Result<std::borrow::Cow<'a, [Tensor]>, TrainError> + Sync + 'a;

/// One input's loss, its gradient per parameter, and the `(node, op)` of each op without a
/// backward that the gradient stopped at.
type StepGrads = (super::Loss, Vec<Tensor>, Vec<super::Stop>);

/// A QDQ model in training: the student and the roles of its parameters.
#[derive(Debug)]
pub struct Qat {
    /// The trainable model.
    pub student: Student,
    roles: Vec<Role>,
    qdq: Graph,
    /// Per parameter: how it steps (scales in log space; weights by their quantization step).
    kinds: Vec<super::StepKind>,
    /// The per-layer feature term, when on: the teacher's values then follow its outputs.
    features: Option<super::FeatureTerm>,
    /// Per graph output: whether the loss compares it (empty: all).
    loss_mask: Vec<bool>,
    /// The ops without a backward the gradients stopped at (`node (op)`, in the order met):
    /// the layers reached only through them stay as they are.
    frozen_at: Vec<String>,
}

impl Qat {
    /// Prepares the QDQ graph `qdq` for training with the given input shapes: every weight,
    /// bias, weight scale and activation scale trains, and so do the float weights of layers
    /// kept in float.
    pub fn new(qdq: &Graph, input_shapes: &[(String, Vec<usize>)]) -> Result<Qat, TrainError> {
        Qat::with_activation_scales(qdq, input_shapes, true)
    }

    /// [`Qat::new`], with the activations' scales trained (`train_activation_scales`) or kept
    /// at their PTQ values (the weights, their scales and the biases still train).
    pub fn with_activation_scales(
        qdq: &Graph,
        input_shapes: &[(String, Vec<usize>)],
        train_activation_scales: bool,
    ) -> Result<Qat, TrainError> {
        let mut qdq = qdq.clone();
        crate::model::qdq_form::explicit_qdq(&mut qdq);
        let (g, roles) = fake_quant_graph(&qdq)?;
        let mut names = super::default_params(&g);
        for r in &roles {
            let name = match r {
                Role::Activation { .. } if !train_activation_scales => continue,
                Role::Activation { scale, .. } => scale,
                Role::Weight { param, .. } | Role::Bias { param, .. } => param,
            };
            names.push(name.clone());
            if let Role::Weight { scale, .. } = r {
                names.push(scale.clone());
            }
        }
        names.dedup();
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
        let student = Student::with_params(&g, input_shapes, &names)?;
        let scales: std::collections::HashSet<&str> = roles
            .iter()
            .flat_map(|r| match r {
                Role::Activation { scale, .. } | Role::Weight { scale, .. } => Some(scale.as_str()),
                Role::Bias { .. } => None,
            })
            .collect();
        let kinds = student
            .params()
            .iter()
            .map(
                |(name, _)| {
                    if scales.contains(name.as_str()) {
                        super::StepKind::Relative
                    } else {
                        super::StepKind::Plain
                    }
                },
            )
            .collect();
        Ok(Qat { student, roles, qdq, kinds, features: None, loss_mask: Vec::new(), frozen_at: Vec::new() })
    }

    /// With `on`, each quantized weight steps by its channel's quantization step over the
    /// median one (its scale now: call it before training): Adam moves every value by about the
    /// same number of its own grid's steps, where one step size in absolute terms moved the
    /// channels with a fine grid (small weights) a hundred times more than the coarse ones.
    /// Without, the weights step by the step size alone.
    pub fn set_grid_steps(&mut self, on: bool) {
        let sized = if on { weight_step_sizes(&self.roles, self.student.params()) } else { HashMap::new() };
        for ((name, _), kind) in self.student.params().iter().zip(&mut self.kinds) {
            if matches!(kind, super::StepKind::Relative) {
                continue;
            }
            *kind = match sized.get(name.as_str()) {
                Some(s) => super::StepKind::Sized(s.clone()),
                None => super::StepKind::Plain,
            };
        }
    }

    /// The float activations the student quantizes (its activation fake quantizers' inputs), in
    /// graph order: the candidates of a [`FeatureTerm`](super::FeatureTerm).
    pub fn activations(&self) -> Vec<String> {
        self.roles
            .iter()
            .filter_map(|r| match r {
                Role::Activation { input, .. } => Some(input.clone()),
                _ => None,
            })
            .collect()
    }

    /// Which graph outputs the loss compares (per output; empty: all), for a graph whose
    /// post-processed outputs are replaced by raw ones ([`super::Targets`]).
    pub fn set_loss_mask(&mut self, mask: Vec<bool>) {
        self.loss_mask = mask;
    }

    /// Adds a per-layer feature term to the loss (`None`: outputs only). The teacher's values
    /// given to the steps are then its outputs followed by the term's tensors.
    pub fn set_features(&mut self, term: Option<super::FeatureTerm>) {
        self.features = term;
    }

    /// One training step on `inputs` against the teacher's outputs `teacher`: forward,
    /// distillation loss, backward, Adam (scales in log space: relative steps, always positive).
    pub fn step(
        &mut self,
        adam: &mut super::Adam,
        inputs: &[(String, Tensor)],
        teacher: &[Tensor],
    ) -> Result<super::Loss, TrainError> {
        let (loss, grads, stopped) = self.loss_and_grads(inputs, teacher)?;
        self.note_frozen(stopped);
        adam.step_kinds(self.student.params_mut(), &grads, &self.kinds)?;
        Ok(loss)
    }

    /// The ops without a backward that training stopped at so far (`node (op)`): the layers
    /// reached only through them keep their PTQ values.
    pub fn frozen_at(&self) -> &[String] {
        &self.frozen_at
    }

    fn note_frozen(&mut self, stopped: Vec<super::Stop>) {
        for (node, op) in stopped {
            let s = format!("{node} ({op})");
            if !self.frozen_at.contains(&s) {
                self.frozen_at.push(s);
            }
        }
    }

    /// One step on a batch: the gradients of every input averaged; returns the mean loss.
    pub fn step_batch(
        &mut self,
        adam: &mut super::Adam,
        inputs: &[&[(String, Tensor)]],
        teacher: &[&[Tensor]],
    ) -> Result<f64, TrainError> {
        self.step_batch_by(adam, inputs, &|i| Ok(std::borrow::Cow::Borrowed(teacher[i])))
    }

    /// [`Qat::step_batch`] with each input's teacher outputs from `teacher(i)` (the teacher run
    /// on a fresh augmented copy, in the same task as the student's forward and backward).
    ///
    /// The inputs run in parallel, up to one per thread at a time (each holds a whole forward's
    /// tensors until its backward is done), and their gradients are summed in input order: the
    /// same numbers as one input after the other on one thread.
    pub fn step_batch_by(
        &mut self,
        adam: &mut super::Adam,
        inputs: &[&[(String, Tensor)]],
        teacher: &TeacherFn<'_>,
    ) -> Result<f64, TrainError> {
        let this = &*self;
        let mut sum: Option<Vec<Tensor>> = None;
        let mut loss = 0.0;
        let mut frozen = Vec::new();
        // Each image's gradients are added as soon as its group is done, in input order.
        let each = |i: usize| {
            let want = teacher(i)?;
            this.loss_and_grads(inputs[i], &want)
        };
        crate::parallel::try_for_each_few(inputs.len(), each, |(l, grads, stopped)| {
            loss += l.value;
            frozen.extend(stopped);
            match &mut sum {
                None => sum = Some(grads),
                Some(acc) => {
                    for (a, g) in acc.iter_mut().zip(&grads) {
                        if let (Data::F32(a), Ok(g)) = (&mut a.data, g.as_f32()) {
                            a.iter_mut().zip(g).for_each(|(a, g)| *a += g);
                        }
                    }
                }
            }
            Ok(())
        })?;
        let n = inputs.len().max(1) as f32;
        let mut grads = sum.ok_or_else(|| TrainError::Setup("an empty batch".into()))?;
        for g in &mut grads {
            if let Data::F32(v) = &mut g.data {
                v.iter_mut().for_each(|x| *x /= n);
            }
        }
        self.note_frozen(frozen);
        adam.step_kinds(self.student.params_mut(), &grads, &self.kinds)?;
        Ok(loss / f64::from(n))
    }

    fn loss_and_grads(&self, inputs: &[(String, Tensor)], teacher: &[Tensor]) -> Result<StepGrads, TrainError> {
        let tape = self.student.forward(inputs)?;
        let (outputs, features) = teacher.split_at(tape.outputs.len().min(teacher.len()));
        let mut loss = super::distill::distill_loss_of(&tape.outputs, outputs, &self.loss_mask)?;
        let seeds = match &self.features {
            Some(term) if !features.is_empty() => {
                let (value, seeds) = term.loss(&tape, features)?;
                loss.value += value;
                seeds
            }
            _ => Vec::new(),
        };
        let (grads, stopped) = self.student.backward_freezing(&tape, &loss.grads, seeds)?;
        Ok((loss, grads, stopped))
    }

    /// The parameters' current values (to come back to with [`Qat::restore`]).
    pub fn snapshot(&self) -> Vec<Tensor> {
        self.student.params().iter().map(|(_, t)| t.clone()).collect()
    }

    /// Puts back values from [`Qat::snapshot`].
    pub fn restore(&mut self, values: &[Tensor]) {
        for (p, v) in self.student.params_mut().zip(values) {
            *p = v.clone();
        }
    }

    /// The roles of the trained tensors.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The roles whose values train: all, less the activations' when their scales are kept
    /// ([`Qat::with_activation_scales`]).
    pub fn trained_roles(&self) -> Vec<Role> {
        let params: std::collections::HashSet<&str> = self.student.params().iter().map(|(n, _)| n.as_str()).collect();
        self.roles
            .iter()
            .filter(|r| !matches!(r, Role::Activation { scale, .. } if !params.contains(scale.as_str())))
            .cloned()
            .collect()
    }

    /// The QDQ graph with the learned values written back, in the compact form files get
    /// ([`crate::model::qdq_form`]).
    pub fn export(&self) -> Result<Graph, TrainError> {
        let mut g = self.qdq.clone();
        let learned: HashMap<&str, &Tensor> = self.student.params().iter().map(|(n, t)| (n.as_str(), t)).collect();
        let get = |name: &str| {
            // What did not train (the activations' scales, when kept) keeps its PTQ value.
            learned
                .get(name)
                .copied()
                .or_else(|| self.qdq.initializers.get(name))
                .ok_or_else(|| TrainError::Setup(format!("internal: `{name}` is neither trained nor in the model")))
        };
        for r in &self.roles {
            match r {
                Role::Activation { scale, .. } => {
                    g.initializers.insert(scale.clone(), get(scale)?.clone());
                }
                Role::Weight { param, q, scale, zero_point, axis, bits } => {
                    let quantize = Node {
                        name: format!("{q}_export"),
                        op_type: OpKind::QuantizeLinear.into(),
                        inputs: vec![param.clone(), scale.clone(), zero_point.clone()],
                        outputs: vec![q.clone()],
                        attrs: crate::model::Attrs(
                            [("axis".to_string(), crate::model::Attr::Int(*axis))].into_iter().collect(),
                        ),
                        fused: Default::default(),
                    };
                    let mut tmp = Graph { opset: g.opset, ..Default::default() };
                    tmp.initializers.insert(param.clone(), get(param)?.clone());
                    tmp.initializers.insert(scale.clone(), get(scale)?.clone());
                    let zp = g
                        .initializers
                        .get(zero_point)
                        .cloned()
                        .ok_or_else(|| TrainError::Setup(format!("no zero point `{zero_point}`")))?;
                    tmp.initializers.insert(zero_point.clone(), zp);
                    let mut codes = eval_node(&quantize, &tmp)?;
                    // Narrow weights in int8 stay on their grid (the FakeQuant's clamp).
                    if let (Some(b), Data::I8(v)) = (bits, &mut codes.data) {
                        let top = (1i8 << (b - 1)) - 1;
                        v.iter_mut().for_each(|c| *c = (*c).clamp(-top - 1, top));
                    }
                    g.initializers.insert(q.clone(), codes);
                    g.initializers.insert(scale.clone(), get(scale)?.clone());
                }
                Role::Bias { param, q, scale, input_scale, weight_scale } => {
                    let s_in = get(input_scale)?.as_f32().map_err(|e| TrainError::Setup(e.to_string()))?[0];
                    let s_w = get(weight_scale)?.as_f32().map_err(|e| TrainError::Setup(e.to_string()))?;
                    let b = get(param)?.as_f32().map_err(|e| TrainError::Setup(e.to_string()))?;
                    let s_b: Vec<f32> = (0..b.len()).map(|i| s_in * s_w[if s_w.len() == 1 { 0 } else { i }]).collect();
                    let codes: Vec<i32> =
                        b.iter().zip(&s_b).map(|(&v, &s)| crate::ops::quant::bias_quant::code(v, s)).collect();
                    let shape = g.initializers.get(q).map_or(vec![b.len()], |t| t.shape.clone());
                    let scale_shape = g.initializers.get(scale).map_or(vec![s_b.len()], |t| t.shape.clone());
                    g.initializers.insert(q.clone(), Tensor { shape, data: Data::I32(codes) });
                    g.initializers.insert(scale.clone(), Tensor { shape: scale_shape, data: Data::F32(s_b) });
                }
            }
        }
        crate::model::qdq_form::compact_qdq(&mut g);
        Ok(g)
    }
}
