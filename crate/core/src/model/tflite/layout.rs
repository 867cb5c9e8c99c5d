//! Building the IR from TFLite's NHWC tensors for qplay's NCHW ops.
//!
//! Every TFLite tensor keeps its name and its file layout (NHWC for images), so the graph's
//! inputs and outputs are the file's. An op that computes in NCHW (convolutions, pools, resizes)
//! reads the tensor's *NCHW twin* — a `Transpose` (perm 0,3,1,2) made once and shared by every
//! such reader, or, for constants, the data permuted at load — and writes its result as the
//! output's twin, with a `Transpose` back (perm 0,2,3,1) to the file's name. Layout-agnostic ops
//! (element-wise arithmetic, activations, concatenation along a remapped axis) whose inputs all
//! have twins stay in NCHW. When loading ends, the transposes nothing reads are dropped, so a
//! chain of NCHW ops has none between its ops. Transposes only move values: numbers are exact.

use super::read::{fb, TensorInfo};
use crate::model::{Attr, Attrs, Data, Graph, ModelError, Node, OpKind, Tensor, ValueInfo};
use std::collections::{HashMap, HashSet};

/// NHWC axis → NCHW axis.
pub(super) const NHWC_TO_NCHW_AXIS: [usize; 4] = [0, 2, 3, 1];
const TO_NCHW: [usize; 4] = [0, 3, 1, 2];
const TO_NHWC: [usize; 4] = [0, 2, 3, 1];

/// The graph being built.
pub(super) struct Builder<'a> {
    infos: &'a [TensorInfo],
    names: Vec<String>,
    consts: HashMap<usize, Tensor>,
    materialized: HashSet<usize>,
    /// NCHW twins by tensor.
    pub(super) nchw: HashMap<usize, String>,
    pub(super) nodes: Vec<Node>,
    /// QDQ form ([`super::qdq`]): the file's quantized constants as they are (int8 weights,
    /// int32 biases), for `DequantizeLinear`; `consts` holds their float values.
    quantized: HashMap<usize, Tensor>,
    inits: HashMap<String, Tensor>,
    used: HashSet<String>,
    prefix: String,
}

impl<'a> Builder<'a> {
    pub fn new(infos: &'a [TensorInfo], consts: HashMap<usize, Tensor>) -> Self {
        let mut used = HashSet::new();
        let names = infos
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let name = if used.contains(&t.name) { format!("{}_{i}", t.name) } else { t.name.clone() };
                used.insert(name.clone());
                name
            })
            .collect();
        Builder {
            infos,
            names,
            consts,
            materialized: HashSet::new(),
            nchw: HashMap::new(),
            nodes: Vec::new(),
            quantized: HashMap::new(),
            inits: HashMap::new(),
            used,
            prefix: String::new(),
        }
    }

    /// Gives tensor `t` a fresh name from `base` before any op reads or writes it (a
    /// full-integer model's int8 inputs and outputs, behind a QUANTIZE / DEQUANTIZE that keep
    /// the file's names).
    pub fn rename(&mut self, t: usize, base: &str) {
        let name = self.fresh(base);
        self.names[t] = name;
    }

    /// The file's quantized constants, kept for [`Self::dequantize_linear`] (QDQ form).
    pub fn set_quantized_constants(&mut self, quantized: HashMap<usize, Tensor>) {
        self.quantized = quantized;
    }

    /// QDQ form: the quantized constant `t` (axes permuted by `perm`, if given) as an
    /// initializer of the file's integers behind a `DequantizeLinear` with its scales and zero
    /// points (per channel along the quantized dimension where the file has several); `None`
    /// when `t` is not one.
    pub fn dequantize_linear(&mut self, t: usize, perm: Option<&[usize]>) -> Result<Option<String>, ModelError> {
        let (Some(v), Some((scales, zps, dim))) = (self.quantized.get(&t).cloned(), self.infos[t].quant.clone()) else {
            return Ok(None);
        };
        let v = match perm {
            Some(p) => permute(&v, p)?,
            None => v,
        };
        let axis = perm.map_or(dim, |p| p.iter().position(|&a| a == dim).unwrap_or(dim));
        let n = scales.len();
        let per_channel = n > 1;
        let zps: Vec<i64> = (0..n).map(|c| zps.get(c).or(zps.first()).copied().unwrap_or(0)).collect();
        let zp_data = match &v.data {
            Data::I8(_) => Data::I8(zps.iter().map(|&z| z as i8).collect()),
            Data::U8(_) => Data::U8(zps.iter().map(|&z| z as u8).collect()),
            Data::I32(_) => Data::I32(zps.iter().map(|&z| z as i32).collect()),
            _ => return Ok(None),
        };
        let shape = if per_channel { vec![n] } else { vec![] };
        let base = self.names[t].clone();
        let q = self.init(&format!("{base}__quantized"), v);
        let s = self.init("scale", Tensor { shape: shape.clone(), data: Data::F32(scales) });
        let z = self.init("zero_point", Tensor { shape, data: zp_data });
        let out = self.fresh(&format!("{base}__dequantized"));
        let attrs = if per_channel { vec![("axis", Attr::Int(axis as i64))] } else { vec![] };
        self.node(OpKind::DequantizeLinear.name(), vec![q, s, z], vec![out.clone()], attrs);
        Ok(Some(out))
    }

    /// Names the nodes of the operator about to be converted.
    pub fn set_prefix(&mut self, code: &impl std::fmt::Display, index: usize) {
        self.prefix = format!("{code}_{index}");
    }

    /// The tensor's name (file layout).
    pub fn name(&self, t: usize) -> &str {
        &self.names[t]
    }

    /// How many tensors the subgraph has.
    pub fn tensor_count(&self) -> usize {
        self.infos.len()
    }

    pub fn info(&self, t: usize) -> &TensorInfo {
        &self.infos[t]
    }

    pub fn rank(&self, t: usize) -> usize {
        self.infos[t].shape.len()
    }

    pub fn is_const(&self, t: usize) -> bool {
        self.consts.contains_key(&t)
    }

    pub fn constant(&self, t: usize) -> Option<&Tensor> {
        self.consts.get(&t)
    }

    /// Makes tensor `t` a constant (a folded DEQUANTIZE's output).
    pub fn set_constant(&mut self, t: usize, v: Tensor) {
        self.consts.insert(t, v);
    }

    /// Whether `t` has an NCHW twin (a rank-4 tensor computed in NCHW, or a rank-4 constant).
    pub fn has_nchw(&self, t: usize) -> bool {
        self.nchw.contains_key(&t) || (self.is_const(t) && self.rank(t) == 4)
    }

    /// A fresh tensor or node name from `base`.
    pub fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while self.used.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.used.insert(name.clone());
        name
    }

    /// A new initializer.
    pub fn init(&mut self, base: &str, t: Tensor) -> String {
        let name = self.fresh(&format!("{}__{base}", self.prefix));
        self.inits.insert(name.clone(), t);
        name
    }

    /// Appends a node.
    pub fn node(&mut self, op: &str, inputs: Vec<String>, outputs: Vec<String>, attrs: Vec<(&str, Attr)>) {
        let name = self.fresh(&self.prefix.clone());
        let attrs = Attrs(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        self.nodes.push(Node { name, op_type: op.to_string(), inputs, outputs, attrs, fused: Default::default() });
    }

    /// The tensor in the file's layout (a constant becomes an initializer on first use).
    pub fn nhwc(&mut self, t: usize) -> String {
        if let Some(v) = self.consts.get(&t) {
            if self.materialized.insert(t) {
                self.inits.insert(self.names[t].clone(), v.clone());
            }
        }
        self.names[t].clone()
    }

    /// The tensor's NCHW twin (rank 4).
    pub fn nchw(&mut self, t: usize) -> Result<String, ModelError> {
        if let Some(n) = self.nchw.get(&t) {
            return Ok(n.clone());
        }
        let name = self.fresh(&format!("{}__nchw", self.names[t]));
        if let Some(v) = self.consts.get(&t) {
            let v = permute(v, &TO_NCHW)?;
            self.inits.insert(name.clone(), v);
        } else {
            let from = self.nhwc(t);
            let prefix = std::mem::replace(&mut self.prefix, format!("{}__to_nchw", self.names[t]));
            self.node(OpKind::Transpose.name(), vec![from], vec![name.clone()], vec![("perm", ints(&TO_NCHW))]);
            self.prefix = prefix;
        }
        self.nchw.insert(t, name.clone());
        Ok(name)
    }

    /// The name an NCHW op writes output `t` to; a `Transpose` gives the file's name from it.
    pub fn out_nchw(&mut self, t: usize) -> String {
        let name = self.fresh(&format!("{}__nchw", self.names[t]));
        let back = self.names[t].clone();
        let prefix = std::mem::replace(&mut self.prefix, format!("{back}__to_nhwc"));
        self.node(OpKind::Transpose.name(), vec![name.clone()], vec![back], vec![("perm", ints(&TO_NHWC))]);
        self.prefix = prefix;
        self.nchw.insert(t, name.clone());
        name
    }

    /// A constant operand of an NCHW element-wise op: right-aligned to rank 4 (NumPy
    /// broadcasting, as TFLite's), then permuted to NCHW.
    pub fn const_nchw_broadcast(&mut self, t: usize) -> Result<String, ModelError> {
        let v = self.consts.get(&t).cloned().ok_or_else(|| ModelError::Other("internal: not a constant".into()))?;
        if v.shape.len() > 4 {
            return Err(ModelError::Other("internal: rank over 4".into()));
        }
        let mut shape = vec![1; 4 - v.shape.len()];
        shape.extend_from_slice(&v.shape);
        let v = permute(&Tensor { shape, data: v.data }, &TO_NCHW)?;
        Ok(self.init("nchw_const", v))
    }

    /// Applies a fused activation: returns the name the op must write to (`out` itself when
    /// there is none).
    pub fn fused(&mut self, act: fb::ActivationFunctionType, out: String) -> Result<String, ModelError> {
        use fb::ActivationFunctionType as A;
        let (lo, hi) = match act {
            A::None => return Ok(out),
            A::Relu => (Some(0.0), None),
            A::Relu6 => (Some(0.0), Some(6.0)),
            A::ReluN1To1 => (Some(-1.0), Some(1.0)),
            A::Tanh => (None, None),
            A::SignBit => {
                return Err(ModelError::Other(format!(
                    "{}: the fused activation SIGN_BIT is not supported",
                    self.prefix
                )))
            }
        };
        let pre = self.fresh(&format!("{out}__pre_activation"));
        match (act, lo, hi) {
            (A::Tanh, ..) => self.node(OpKind::Tanh.name(), vec![pre.clone()], vec![out], vec![]),
            (_, Some(_), None) => self.node(OpKind::Relu.name(), vec![pre.clone()], vec![out], vec![]),
            (_, lo, hi) => {
                let lo = self.init("min", Tensor::scalar_f32(lo.unwrap_or(f32::MIN)));
                let hi = self.init("max", Tensor::scalar_f32(hi.unwrap_or(f32::MAX)));
                self.node(OpKind::Clip.name(), vec![pre.clone(), lo, hi], vec![out], vec![])
            }
        }
        Ok(pre)
    }

    /// The graph: nodes nothing reads (twins no op used) dropped; inputs and outputs are
    /// filled in by the caller.
    pub fn finish(self, outputs: &[ValueInfo]) -> Graph {
        let Builder { mut nodes, mut inits, .. } = self;
        loop {
            let mut read: HashSet<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
            for n in &nodes {
                read.extend(n.inputs.iter().map(String::as_str));
            }
            let keep: Vec<bool> = nodes.iter().map(|n| n.outputs.iter().any(|o| read.contains(o.as_str()))).collect();
            if keep.iter().all(|&k| k) {
                let read: HashSet<String> = read.into_iter().map(str::to_string).collect();
                inits.retain(|k, _| read.contains(k));
                break;
            }
            let mut it = keep.into_iter();
            nodes.retain(|_| it.next().unwrap_or(true));
        }
        Graph { nodes, initializers: inits, opset: OPSET, ..Default::default() }
    }
}

/// The default-domain opset the built nodes follow (ReduceMean's axes an attribute, Squeeze's
/// an input, HardSwish present).
pub(super) const OPSET: i64 = 17;

pub(super) fn ints(v: &[usize]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}

/// A constant's axes permuted (`out.shape[i] = in.shape[perm[i]]`).
pub(super) fn permute(t: &Tensor, perm: &[usize]) -> Result<Tensor, ModelError> {
    let rank = t.shape.len();
    if perm.len() != rank {
        return Err(ModelError::Other(format!("internal: permuting a rank-{rank} constant by {perm:?}")));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| t.shape[p]).collect();
    let in_strides = crate::model::strides(&t.shape);
    let n = t.len();
    let mut src = Vec::with_capacity(n);
    let mut idx = vec![0usize; rank];
    for _ in 0..n {
        src.push(idx.iter().zip(perm).map(|(&i, &p)| i * in_strides[p]).sum::<usize>());
        for a in (0..rank).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    fn gather<T: Copy>(v: &[T], src: &[usize]) -> Vec<T> {
        src.iter().map(|&i| v[i]).collect()
    }
    let data = match &t.data {
        Data::F32(v) => Data::F32(gather(v, &src)),
        Data::I32(v) => Data::I32(gather(v, &src)),
        Data::I64(v) => Data::I64(gather(v, &src)),
        Data::I8(v) => Data::I8(gather(v, &src)),
        Data::U8(v) => Data::U8(gather(v, &src)),
        other => return Err(ModelError::Other(format!("internal: permuting a {:?} constant", other_dtype(other)))),
    };
    Ok(Tensor { shape, data })
}

fn other_dtype(d: &Data) -> &'static str {
    match d {
        Data::Bool(_) => "bool",
        _ => "non-float",
    }
}
