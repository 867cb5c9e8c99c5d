//! A full-integer model in ONNX's QDQ form ([`super::load_tflite_as_qdq`]): the float loader's
//! mapping of every operator ([`super::ops`]), with
//!
//! - each int8 / uint8 tensor an operator writes passed through `QuantizeLinear` then
//!   `DequantizeLinear` (an int16 one of a 16x8 model through onnxruntime's `com.microsoft` pair)
//!   `DequantizeLinear` with the file's scale and zero point, so every tensor holds the values
//!   its codes stand for (TFLite's QUANTIZE, requantizing QUANTIZE and DEQUANTIZE become
//!   `Identity`: the pair after them does their work);
//! - convolution and fully-connected weights and biases kept as the file's int8 / int32 data
//!   behind `DequantizeLinear` ([`Builder::dequantize_linear`]); other quantized constants
//!   (an ADD's constant operand, a PADV2 value) as their float values;
//! - the model's int8 inputs fed as float under the file's names, through a
//!   `QuantizeLinear` / `DequantizeLinear` pair ([`input`]).
//!
//! Where this differs from TFLite's integer kernels is rounding only: `QuantizeLinear` rounds
//! ties to even after a float product, TFLite's kernels multiply by a fixed-point multiplier
//! and round ties away from zero; LOGISTIC's and TANH's tables, softmax's fixed-point
//! exponentials and AVERAGE_POOL's integer division round their own ways. Results differ by a
//! step here and there, which `qplay convert` measures and reports.

use super::layout::Builder;
use super::ops::{self, Io};
use super::read::{fb, TensorInfo};
use super::shape_ops::dequantized;
use crate::model::{DType, Data, ModelError, OpKind, Tensor};
use std::collections::HashMap;

/// Moves the quantized constants (integer data with scales) out of `constants`, leaving their
/// float values there; returns the integer data by tensor.
pub(super) fn take_quantized(
    tensors: &[TensorInfo],
    constants: &mut HashMap<usize, Tensor>,
) -> Result<HashMap<usize, Tensor>, ModelError> {
    let mut raw = HashMap::new();
    for (&t, v) in constants.iter_mut() {
        let info = &tensors[t];
        if matches!(v.data, Data::F32(_)) || info.quant.is_none() {
            continue;
        }
        let f = dequantized(v, &info.quant)
            .map_err(|e| ModelError::Other(format!("TFLite constant `{}`: {e}", info.name)))?;
        raw.insert(t, std::mem::replace(v, f));
    }
    Ok(raw)
}

/// The `QuantizeLinear` / `DequantizeLinear` pair for an activation of type `t`: the default
/// domain's for 8 bits; onnxruntime's `com.microsoft` ones for int16 (the default domain has
/// 16-bit QDQ only from opset 21, and the graph's ops follow opset 17).
fn qdq_ops(t: DType) -> (&'static str, &'static str) {
    if t == DType::I16 {
        ("com.microsoft::QuantizeLinear", "com.microsoft::DequantizeLinear")
    } else {
        (OpKind::QuantizeLinear.name(), OpKind::DequantizeLinear.name())
    }
}

/// One scale and zero point of an integer activation (8-bit, or int16 in a 16x8 model), as
/// initializers (`None`: not one).
fn activation_params(b: &mut Builder, t: usize) -> Result<Option<(String, String)>, ModelError> {
    let dtype = b.info(t).dtype;
    if !matches!(dtype, DType::I8 | DType::U8 | DType::I16) {
        return Ok(None);
    }
    let (scale, zp) = super::int_ops::per_tensor(b, t)
        .map_err(|e| ModelError::Other(e.say("the integer tensor", &b.info(t).name)))?;
    let zp = match dtype {
        DType::U8 => Data::U8(vec![zp as u8]),
        DType::I16 => Data::I16(vec![zp as i16]),
        _ => Data::I8(vec![zp as i8]),
    };
    let s = b.init("scale", Tensor::scalar_f32(scale));
    let z = b.init("zero_point", Tensor { shape: vec![], data: zp });
    Ok(Some((s, z)))
}

/// The int8 graph input `t` (renamed by the loader) fed from the float input `name`.
pub(super) fn input(b: &mut Builder, t: usize, name: &str) -> Result<(), ModelError> {
    b.set_prefix(&"QuantizeLinear_input", t);
    let Some((s, z)) = activation_params(b, t)? else { return Ok(()) };
    let dq = b.name(t).to_string();
    let q = b.fresh(&format!("{name}__quantized"));
    let (qop, dqop) = qdq_ops(b.info(t).dtype);
    b.node(qop, vec![name.to_string(), s.clone(), z.clone()], vec![q.clone()], vec![]);
    b.node(dqop, vec![q, s, z], vec![dq], vec![]);
    Ok(())
}

/// Converts one builtin operator; `false` when qplay does not map it.
pub(super) fn convert(b: &mut Builder, op: &fb::OperatorRef<'_>, io: &Io) -> Result<bool, ModelError> {
    use fb::BuiltinOperator as B;
    let (Some(x), Some(y)) = (io.optional(0), io.outs.first().copied().flatten()) else {
        return ops::convert(b, op, io.code, io.ins, io.outs);
    };
    match io.code {
        // Values pass; the Quantize/Dequantize pair on `y` (if 8-bit) does the rounding.
        B::Quantize | B::Dequantize if !b.is_const(x) => {
            let (xin, out) = (b.nhwc(x), b.nhwc(y));
            b.node(OpKind::Identity.name(), vec![xin], vec![out], vec![]);
            Ok(true)
        }
        _ => ops::convert(b, op, io.code, io.ins, io.outs),
    }
}

/// Puts a `QuantizeLinear` → `DequantizeLinear` pair behind the node that computes each 8-bit
/// tensor: the node that writes it, or, for a tensor computed in NCHW, the node that writes
/// its NCHW twin (the `Transpose` back to the file's layout then moves quantized values).
pub(super) fn quantize_activations(b: &mut Builder) -> Result<(), ModelError> {
    let mut producer: HashMap<String, usize> = HashMap::new();
    for (i, n) in b.nodes.iter().enumerate() {
        for o in &n.outputs {
            producer.insert(o.clone(), i);
        }
    }
    for t in 0..b.tensor_count() {
        if b.is_const(t) || !matches!(b.info(t).dtype, DType::I8 | DType::U8 | DType::I16) {
            continue;
        }
        let name = b.name(t).to_string();
        let Some(&mut_i) = producer.get(&name) else { continue };
        let mut target = (mut_i, name.clone());
        if let Some(twin) = b.nchw.get(&t) {
            let n = &b.nodes[mut_i];
            if n.is(OpKind::Transpose) && n.inputs.first() == Some(twin) {
                if let Some(&j) = producer.get(twin) {
                    target = (j, twin.clone());
                }
            }
        }
        let (i, value) = target;
        b.set_prefix(&"QuantizeLinear", t);
        let Some((s, z)) = activation_params(b, t)? else { continue };
        let float = b.fresh(&format!("{value}__float"));
        let q = b.fresh(&format!("{value}__quantized"));
        for o in b.nodes[i].outputs.iter_mut().filter(|o| **o == value) {
            *o = float.clone();
        }
        let (qop, dqop) = qdq_ops(b.info(t).dtype);
        b.node(qop, vec![float, s.clone(), z.clone()], vec![q.clone()], vec![]);
        b.node(dqop, vec![q, s, z], vec![value], vec![]);
    }
    Ok(())
}
