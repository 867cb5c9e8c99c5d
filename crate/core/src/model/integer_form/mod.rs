//! A full-integer TFLite model as ONNX in *integer form*: every `qplay.tfl.*` op rewritten into
//! standard ONNX integer ops that compute TFLite's fixed-point arithmetic exactly —
//! `ConvInteger` / `MatMulInteger` / `ReduceSum` for the int32 sums, int64 `Mul`, `Add`, `Div`
//! (C's truncating division), `Where`, `Abs`, `Sign` for gemmlowp's rounding multiply and
//! rounding shift, `Clip` and `Cast` for the zero point and the fused activation, `Gather` for
//! the 256-entry activation tables. onnxruntime runs the file and gives LiteRT's codes in every
//! value, where the QDQ form ([`super::load_tflite_as_qdq`]: float ops between
//! QuantizeLinear / DequantizeLinear) rounds differently by a step here and there, and those
//! steps grow with depth. The price: larger graphs that run slower than QDQ's fused kernels.
//!
//! - [`emit`]: names, constants, the requantization in ONNX ops.
//! - [`layers`]: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV, AVERAGE_POOL_2D,
//!   MAX_POOL_2D, MEAN.
//! - [`elementwise`]: ADD, SUB, MUL, MAXIMUM, MINIMUM, PRELU, QUANTIZE, DEQUANTIZE, the tables.
//! - [`resize`]: RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR.
//! - [`softmax`]: SOFTMAX (its exp table, the Newton–Raphson reciprocal).
//!
//! Ops without an exact form here (int16 codes: 16x8 models) are refused, all named at once.

mod elementwise;
mod emit;
mod layers;
mod resize;
mod softmax;

use super::{DType, Graph, ModelError, Node};
use crate::ops::quant::lookup::LOOKUP;
use crate::ops::tflite::{binary, conv, mean, pool, quantize};
use crate::ops::{BuildCtx, Fact, Op, Registry};
use emit::Emit;
use std::collections::HashMap;
use std::sync::Arc;

type Rewrite = fn(&mut Emit, &Node, &Ctx) -> Result<(), String>;

/// The ops with an exact integer form, and how each is written.
const REWRITES: &[(&str, Rewrite)] = &[
    (conv::CONV, layers::conv),
    (conv::DEPTHWISE, layers::conv),
    (conv::FULLY_CONNECTED, layers::fully_connected),
    (crate::ops::tflite::transpose_conv::TRANSPOSE_CONV, layers::transpose_conv),
    (pool::AVERAGE_POOL, layers::pool),
    (pool::MAX_POOL, layers::pool),
    (mean::MEAN, layers::mean),
    (binary::ADD, elementwise::binary),
    (binary::SUB, elementwise::binary),
    (binary::MUL, elementwise::binary),
    (binary::MAXIMUM, elementwise::binary),
    (binary::MINIMUM, elementwise::binary),
    (quantize::QUANTIZE, elementwise::conversion),
    (quantize::REQUANTIZE, elementwise::conversion),
    (quantize::DEQUANTIZE, elementwise::conversion),
    (LOOKUP, elementwise::lookup),
    (crate::ops::tflite::prelu::PRELU, elementwise::prelu),
    (crate::ops::tflite::resize::BILINEAR, resize::resize),
    (crate::ops::tflite::resize::NEAREST, resize::resize),
    (crate::ops::tflite::softmax::SOFTMAX, softmax::softmax),
];

fn rewrite_of(op_type: &str) -> Option<Rewrite> {
    REWRITES.iter().find(|(t, _)| *t == op_type).map(|&(_, r)| r)
}

/// What the rewrites read: each tensor's type and shape, the registry to build ops with.
pub(super) struct Ctx {
    facts: HashMap<String, Fact>,
    registry: Registry,
    opset: i64,
}

impl Ctx {
    /// The fact of a tensor.
    fn fact(&self, name: &str) -> Result<&Fact, String> {
        self.facts.get(name).ok_or_else(|| format!("tensor `{name}` has no known type and shape"))
    }

    /// Input `i` of `n`.
    fn input<'n>(&self, n: &'n Node, i: usize) -> Result<&'n str, String> {
        n.inputs.get(i).map(String::as_str).filter(|s| !s.is_empty()).ok_or_else(|| format!("input {i} is missing"))
    }

    /// Input `i` of `n`, when given.
    fn optional_input<'n>(&self, n: &'n Node, i: usize) -> Option<&'n str> {
        n.inputs.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }

    /// The 8-bit code type of a tensor (int16 codes have no integer form here).
    fn code_type(&self, name: &str) -> Result<DType, String> {
        match self.fact(name)?.dtype {
            t @ (DType::I8 | DType::U8) => Ok(t),
            DType::I16 => Err("int16 codes (a 16x8 model; the integer form covers int8 and uint8 models)".into()),
            t => Err(format!("{t:?} values where it expects integer codes")),
        }
    }

    /// The op built from `n`, as its concrete type.
    fn built<T: Op>(&self, n: &Node) -> Result<Arc<T>, String> {
        let op = self.build(n)?;
        let any: Arc<dyn std::any::Any + Send + Sync> = Arc::<dyn Op>::from(op);
        any.downcast::<T>().map_err(|_| format!("{} is not the op the integer form expects", n.op_type))
    }

    fn build(&self, n: &Node) -> Result<Box<dyn Op>, String> {
        let builder = self.registry.get(&n.op_type).ok_or_else(|| format!("no op {}", n.op_type))?;
        builder(n, &BuildCtx { opset: self.opset }).map_err(|e| e.to_string())
    }
}

/// Every tensor's type and shape, node by node (values where all inputs are constants, so that
/// shapes computed from shapes resolve).
fn facts(g: &Graph, registry: &Registry) -> Result<HashMap<String, Fact>, String> {
    let mut facts: HashMap<String, Fact> =
        g.initializers.iter().map(|(k, t)| (k.clone(), Fact::constant(t.clone()))).collect();
    for i in &g.inputs {
        let Some(shape) = i.shape.iter().copied().collect::<Option<Vec<usize>>>() else {
            return Err(format!("input `{}` has dimensions only known at run time", i.name));
        };
        let dtype = DType::from_onnx(i.elem_type).map_err(|e| format!("input `{}`: {e}", i.name))?;
        facts.insert(i.name.clone(), Fact::new(dtype, shape));
    }
    for n in &g.nodes {
        let builder = registry.get(&n.op_type).ok_or_else(|| format!("no op {}", n.op_type))?;
        let op = builder(n, &BuildCtx { opset: g.opset }).map_err(|e| format!("{} `{}`: {e}", n.op_type, n.name))?;
        let ins: Vec<Option<&Fact>> = n.inputs.iter().map(|s| if s.is_empty() { None } else { facts.get(s) }).collect();
        let mut outs = op.infer(&ins).map_err(|e| format!("{} `{}`: {e}", n.op_type, n.name))?;
        if ins.iter().all(|f| f.is_none_or(|f| f.value.is_some())) {
            let values: Vec<Option<&crate::model::Tensor>> =
                ins.iter().map(|f| f.and_then(|f| f.value.as_deref())).collect();
            if let Ok(v) = op.eval(&values) {
                outs = v.into_iter().map(Fact::constant).collect();
            }
        }
        for (name, f) in n.outputs.iter().zip(outs) {
            facts.insert(name.clone(), f);
        }
    }
    Ok(facts)
}

/// `g` (a full-integer TFLite model as qplay loads it) with every `qplay.tfl.*` op and
/// activation table in exact integer ONNX (module docs). Refuses, naming them all, the ops
/// without an integer form.
pub fn integer_form(g: &Graph) -> Result<Graph, ModelError> {
    let registry = Registry::new();
    let refuse = |why: String| ModelError::Other(format!("cannot be written in ONNX's integer form: {why}"));
    let facts = facts(g, &registry).map_err(refuse)?;
    let cx = Ctx { facts, registry, opset: g.opset };
    let mut out = g.clone();
    out.nodes.clear();
    // Ops without a rewrite; and per reason, the ops whose rewrite refused them.
    let mut missing: Vec<String> = Vec::new();
    let mut refused: Vec<(String, Vec<String>)> = Vec::new();
    // A prefix for the new names that no name of the graph starts with.
    let mut base = String::from("iq");
    let names = || {
        g.nodes
            .iter()
            .flat_map(|n| n.outputs.iter())
            .chain(g.initializers.keys())
            .chain(g.inputs.iter().map(|i| &i.name))
    };
    while names().any(|n| n.starts_with(&base)) {
        base.push('_');
    }
    for (index, n) in g.nodes.iter().enumerate() {
        let own = n.op_type.starts_with("qplay.") || n.is(super::OpKind::TfliteDetectionPostProcess);
        if !own {
            out.nodes.push(n.clone());
            continue;
        }
        let short = n.op_type.trim_start_matches("qplay.tfl.").to_string();
        let Some(rewrite) = rewrite_of(&n.op_type) else {
            if !missing.contains(&short) {
                missing.push(short);
            }
            continue;
        };
        let mut e = Emit::new(&mut out.initializers, &format!("{base}{index}"));
        match rewrite(&mut e, n, &cx) {
            Ok(()) => {
                let nodes = e.nodes;
                out.nodes.extend(nodes);
            }
            Err(why) => match refused.iter_mut().find(|(w, _)| *w == why) {
                Some((_, ops)) if !ops.contains(&short) => ops.push(short),
                Some(_) => {}
                None => refused.push((why, vec![short])),
            },
        }
    }
    let mut whys: Vec<String> = Vec::new();
    if !missing.is_empty() {
        whys.push(format!("no exact integer form for {}", missing.join(", ")));
    }
    whys.extend(refused.iter().map(|(why, ops)| format!("{why} in {}", ops.join(", "))));
    if !whys.is_empty() {
        return Err(refuse(format!("{} — write the QDQ form instead (the default)", whys.join("; "))));
    }
    out.producer = "qplay convert --form integer".into();
    Ok(out)
}
