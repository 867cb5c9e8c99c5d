//! The FlatBuffer side: a `.tflite` file's tables, read through the generated reader (every
//! offset checked against the buffer), into plain values — tensors' names, types and shapes,
//! constant data (sizes checked before anything is allocated), operator codes.

pub(super) use super::schema_generated::tflite as fb;
use crate::model::load::f16_to_f32;
use crate::model::{DType, Data, Limits, ModelError, Tensor};
use std::collections::HashMap;

/// A malformed file.
pub(super) fn bad(what: impl Into<String>) -> ModelError {
    ModelError::NotTflite(what.into())
}

/// Maps the reader's error (an offset or a length pointing outside the file, a bad UTF-8
/// string, an enum value the schema does not know) to [`ModelError::NotTflite`], naming where.
pub(super) fn fb_err(at: &'static str) -> impl Fn(planus::Error) -> ModelError {
    move |e| bad(format!("{at}: {e}"))
}

/// One tensor of the subgraph.
#[derive(Debug, Clone)]
pub(super) struct TensorInfo {
    pub name: String,
    /// qplay's element type (float16 constants are widened to float32 when read).
    pub dtype: DType,
    /// The file's type name, for errors.
    pub type_name: String,
    /// Static dims (from `shape`); `None` when the file gives a negative one.
    pub shape: Vec<Option<usize>>,
    /// `shape_signature` where present (`-1` → `None`), else `shape`.
    pub signature: Vec<Option<usize>>,
    pub buffer: u32,
    /// Quantization parameters (scales, zero points, quantized dimension), if any.
    pub quant: Option<(Vec<f32>, Vec<i64>, usize)>,
    pub is_variable: bool,
}

impl TensorInfo {
    /// The static shape, or an error naming the tensor when a dim is unknown.
    pub fn dims(&self) -> Result<Vec<usize>, ModelError> {
        self.shape.iter().copied().collect::<Option<Vec<_>>>().ok_or_else(|| ModelError::BadTensor {
            name: self.name.clone(),
            reason: "its shape has unknown dimensions".into(),
        })
    }
}

/// An operator code: a builtin, a custom op's name, or a builtin this schema does not know.
#[derive(Debug, Clone)]
pub(super) enum OpCode {
    Builtin(fb::BuiltinOperator),
    Custom(String),
    Unknown,
}

impl std::fmt::Display for OpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpCode::Builtin(c) => write!(f, "{}", builtin_name(*c)),
            OpCode::Custom(n) => write!(f, "custom op {n}"),
            OpCode::Unknown => write!(f, "a builtin op code newer than qplay's TFLite schema"),
        }
    }
}

/// TFLite's upper-case name of a builtin (`CONV_2D`), from the generated enum's name (`Conv2d`).
pub(super) fn builtin_name(c: fb::BuiltinOperator) -> String {
    let mut out = String::new();
    let mut prev: Option<char> = None;
    for ch in format!("{c:?}").chars() {
        if ch.is_ascii_uppercase() && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit()) {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
        prev = Some(ch);
    }
    for (from, to) in [("CONV2D", "CONV_2D"), ("POOL2D", "POOL_2D"), ("CONV3D", "CONV_3D"), ("_TO1", "_TO_1")] {
        out = out.replace(from, to);
    }
    out
}

/// Tensor indices of an operator's (or the subgraph's) input or output list, checked against
/// the number of tensors; `None` for `-1` (an omitted optional input).
pub(super) fn indices(
    list: Option<planus::Vector<'_, i32>>,
    n_tensors: usize,
    op: usize,
) -> Result<Vec<Option<usize>>, ModelError> {
    let Some(list) = list else { return Ok(Vec::new()) };
    list.iter()
        .map(|i| match i {
            -1 => Ok(None),
            i => usize::try_from(i).ok().filter(|&i| i < n_tensors).map(Some).ok_or_else(|| {
                bad(format!("operator {op} refers to tensor {i}, but the subgraph has {n_tensors} tensors"))
            }),
        })
        .collect()
}

fn dtype_of(t: fb::TensorType) -> Option<DType> {
    Some(match t {
        fb::TensorType::Float32 | fb::TensorType::Float16 => DType::F32,
        fb::TensorType::Int32 => DType::I32,
        fb::TensorType::Int64 => DType::I64,
        fb::TensorType::Int8 => DType::I8,
        fb::TensorType::Uint8 => DType::U8,
        fb::TensorType::Int16 => DType::I16,
        fb::TensorType::Bool => DType::Bool,
        _ => return None,
    })
}

/// The subgraph's tensors.
pub(super) fn tensors(sub: &fb::SubGraphRef<'_>) -> Result<Vec<TensorInfo>, ModelError> {
    let Some(list) = sub.tensors().map_err(fb_err("SubGraph.tensors"))? else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let t = t.map_err(fb_err("SubGraph.tensors"))?;
        let name = t.name().map_err(fb_err("Tensor.name"))?.unwrap_or("").to_string();
        let ty = t.type_().map_err(fb_err("Tensor.type"))?;
        let type_name = format!("{ty:?}").to_uppercase();
        let name = if name.is_empty() { format!("tensor_{i}") } else { name };
        let dtype = dtype_of(ty).ok_or_else(|| {
            ModelError::UnsupportedDType(format!("{type_name} (tensor `{name}`); qplay reads float32/float16 models"))
        })?;
        let dims = |v: Option<planus::Vector<'_, i32>>| -> Vec<Option<usize>> {
            v.map(|v| v.iter().map(|d| usize::try_from(d).ok()).collect()).unwrap_or_default()
        };
        let shape = dims(t.shape().map_err(fb_err("Tensor.shape"))?);
        let sig = dims(t.shape_signature().map_err(fb_err("Tensor.shape_signature"))?);
        let signature = if sig.len() == shape.len() { sig } else { shape.clone() };
        let quant = match t.quantization().map_err(fb_err("Tensor.quantization"))? {
            Some(q) => {
                let scale: Vec<f32> = q
                    .scale()
                    .map_err(fb_err("QuantizationParameters.scale"))?
                    .map(|v| v.iter().collect())
                    .unwrap_or_default();
                let zp: Vec<i64> = q
                    .zero_point()
                    .map_err(fb_err("QuantizationParameters.zero_point"))?
                    .map(|v| v.iter().collect())
                    .unwrap_or_default();
                let dim = q.quantized_dimension().map_err(fb_err("QuantizationParameters.quantized_dimension"))?;
                (!scale.is_empty()).then(|| (scale, zp, usize::try_from(dim).unwrap_or(usize::MAX)))
            }
            None => None,
        };
        if t.sparsity().map_err(fb_err("Tensor.sparsity"))?.is_some() {
            return Err(ModelError::UnsupportedDType(format!("sparse tensor `{name}` (TFLite sparsity)")));
        }
        out.push(TensorInfo {
            name,
            dtype,
            type_name,
            shape,
            signature,
            buffer: t.buffer().map_err(fb_err("Tensor.buffer"))?,
            quant,
            is_variable: t.is_variable().map_err(fb_err("Tensor.is_variable"))?,
        });
        if ty == fb::TensorType::Float16 {
            out.last_mut().into_iter().for_each(|t| t.type_name = "FLOAT16".into());
        }
    }
    Ok(out)
}

/// The model's operator codes, in order (an operator refers to one by index).
pub(super) fn op_codes(model: &fb::ModelRef<'_>) -> Result<Vec<OpCode>, ModelError> {
    let Some(list) = model.operator_codes().map_err(fb_err("Model.operator_codes"))? else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(list.len());
    for c in list.iter() {
        let c = c.map_err(fb_err("Model.operator_codes"))?;
        let deprecated = c.deprecated_builtin_code().map_err(fb_err("OperatorCode.deprecated_builtin_code"))?;
        // The real code is the larger of the two fields (schema 3a moved it to an int32 field).
        let code = match c.builtin_code() {
            Ok(b) if (b as i32) >= i32::from(deprecated) => OpCode::Builtin(b),
            Ok(_) => match fb::BuiltinOperator::try_from(i32::from(deprecated)) {
                Ok(b) => OpCode::Builtin(b),
                Err(_) => OpCode::Unknown,
            },
            Err(_) => OpCode::Unknown,
        };
        let code = if matches!(code, OpCode::Builtin(fb::BuiltinOperator::Custom)) {
            OpCode::Custom(c.custom_code().map_err(fb_err("OperatorCode.custom_code"))?.unwrap_or("?").to_string())
        } else {
            code
        };
        out.push(code);
    }
    Ok(out)
}

/// The constant tensors (those whose buffer holds data), by tensor index, in the file's layout;
/// float16 data widened to float32. Each buffer's size is checked against its tensor's shape
/// and the limits before anything is allocated.
pub(super) fn constants(
    model: &fb::ModelRef<'_>,
    bytes: &[u8],
    tensors: &[TensorInfo],
    limits: &Limits,
) -> Result<HashMap<usize, Tensor>, ModelError> {
    let buffers = model.buffers().map_err(fb_err("Model.buffers"))?;
    let mut out = HashMap::new();
    for (i, t) in tensors.iter().enumerate() {
        if t.buffer == 0 {
            continue;
        }
        let b = buffers
            .as_ref()
            .and_then(|v| v.get(t.buffer as usize))
            .ok_or_else(|| bad(format!("tensor `{}` refers to buffer {}, which does not exist", t.name, t.buffer)))?
            .map_err(fb_err("Model.buffers"))?;
        let data: &[u8] = match b.data().map_err(fb_err("Buffer.data"))? {
            Some(d) if !d.is_empty() => d,
            _ => {
                let (offset, size) =
                    (b.offset().map_err(fb_err("Buffer.offset"))?, b.size().map_err(fb_err("Buffer.size"))?);
                if offset <= 1 {
                    continue;
                }
                let range =
                    usize::try_from(offset).ok().and_then(|o| Some(o..o.checked_add(usize::try_from(size).ok()?)?));
                match range.and_then(|r| bytes.get(r)) {
                    Some(d) => d,
                    None => {
                        return Err(bad(format!(
                            "buffer {} of tensor `{}` claims {size} bytes at offset {offset}, outside the {}-byte file",
                            t.buffer,
                            t.name,
                            bytes.len()
                        )))
                    }
                }
            }
        };
        out.insert(i, constant(t, data, limits)?);
    }
    Ok(out)
}

/// A constant's data as a tensor.
fn constant(t: &TensorInfo, data: &[u8], limits: &Limits) -> Result<Tensor, ModelError> {
    let badt = |reason: String| ModelError::BadTensor { name: t.name.clone(), reason };
    let shape = t.dims()?;
    let mut n: usize = 1;
    for &d in &shape {
        n = n
            .checked_mul(d)
            .ok_or_else(|| badt(format!("its shape {shape:?} has more elements than fit in memory")))?;
    }
    if n > limits.max_tensor_elements {
        return Err(ModelError::Limit(format!(
            "tensor `{}` has {n} elements, more than the limit of {}: use a smaller model",
            t.name, limits.max_tensor_elements
        )));
    }
    let f16 = t.type_name == "FLOAT16";
    let size = if f16 { 2 } else { t.dtype.size() };
    if Some(data.len()) != n.checked_mul(size) {
        return Err(badt(format!(
            "its shape {shape:?} needs {n} {} values, but its buffer holds {} bytes",
            t.type_name,
            data.len()
        )));
    }
    fn words<const N: usize, T>(raw: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        raw.chunks_exact(N).map(|c| f(c.try_into().unwrap_or([0; N]))).collect()
    }
    let data = match t.dtype {
        DType::F32 if f16 => Data::F32(words(data, u16::from_le_bytes).into_iter().map(f16_to_f32).collect()),
        DType::F32 => Data::F32(words(data, f32::from_le_bytes)),
        DType::I32 => Data::I32(words(data, i32::from_le_bytes)),
        DType::I64 => Data::I64(words(data, i64::from_le_bytes)),
        DType::I16 => Data::I16(words(data, i16::from_le_bytes)),
        DType::I8 => Data::I8(data.iter().map(|&b| b as i8).collect()),
        DType::U8 => Data::U8(data.to_vec()),
        DType::Bool => Data::Bool(data.iter().map(|&b| b != 0).collect()),
        other => return Err(ModelError::UnsupportedDType(format!("{other:?} (tensor `{}`)", t.name))),
    };
    Ok(Tensor { shape, data })
}

/// Refuses variables. int8 and int16 (16x8) activations are TFLite's integer semantics
/// ([`crate::ops::tflite`]); uint8 ones are accepted where a QUANTIZE converts them (a model's
/// uint8 interface).
pub(super) fn refuse_unsupported_activations(
    tensors: &[TensorInfo],
    _constants: &HashMap<usize, Tensor>,
) -> Result<(), ModelError> {
    for t in tensors {
        if t.is_variable {
            return Err(ModelError::TfliteUnsupported(format!(
                "tensor `{}` is a resource variable, which qplay does not support: convert the model without \
                 variables (a plain inference graph)",
                t.name
            )));
        }
    }
    Ok(())
}
