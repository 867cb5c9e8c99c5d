//! Dense tensors: a shape and row-major data of one element type.

use super::ModelError;

/// Element types qplay computes with (ONNX `TensorProto.DataType` subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// float32 (ONNX 1).
    F32,
    /// uint8 (ONNX 2).
    U8,
    /// int8 (ONNX 3).
    I8,
    /// uint16 (ONNX 4): 16-bit quantized activations.
    U16,
    /// int16 (ONNX 5): 16-bit quantized activations.
    I16,
    /// int32 (ONNX 6).
    I32,
    /// int64 (ONNX 7).
    I64,
    /// bool (ONNX 9).
    Bool,
    /// uint4 (ONNX 21): held one value (0..=15) per byte, packed two per byte in files.
    U4,
    /// int4 (ONNX 22): held one value (−8..=7) per byte, packed two per byte in files.
    I4,
}

impl DType {
    /// From an ONNX `TensorProto.DataType` code; other types (float16, double, string…) are
    /// rejected with a message naming them.
    pub fn from_onnx(code: i32) -> Result<DType, ModelError> {
        Ok(match code {
            1 => DType::F32,
            2 => DType::U8,
            3 => DType::I8,
            4 => DType::U16,
            5 => DType::I16,
            6 => DType::I32,
            7 => DType::I64,
            9 => DType::Bool,
            21 => DType::U4,
            22 => DType::I4,
            other => return Err(ModelError::UnsupportedDType(onnx_dtype_name(other).to_string())),
        })
    }

    /// The ONNX `TensorProto.DataType` code.
    pub fn onnx_code(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::U8 => 2,
            DType::I8 => 3,
            DType::U16 => 4,
            DType::I16 => 5,
            DType::I32 => 6,
            DType::I64 => 7,
            DType::Bool => 9,
            DType::U4 => 21,
            DType::I4 => 22,
        }
    }

    /// Size of one element in bytes as qplay holds it (4-bit types: one byte per value; files
    /// pack them two per byte, see [`packed_len`]).
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::U8 | DType::I8 | DType::Bool | DType::U4 | DType::I4 => 1,
            DType::U16 | DType::I16 => 2,
            DType::I64 => 8,
        }
    }
}

/// Name of an ONNX data type code, for messages.
pub fn onnx_dtype_name(code: i32) -> &'static str {
    match code {
        0 => "undefined",
        1 => "float32",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "string",
        9 => "bool",
        10 => "float16",
        11 => "float64",
        12 => "uint32",
        13 => "uint64",
        14 => "complex64",
        15 => "complex128",
        16 => "bfloat16",
        21 => "uint4",
        22 => "int4",
        _ => "an unknown type",
    }
}

/// Row-major element storage.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// float32 values.
    F32(Vec<f32>),
    /// uint8 values.
    U8(Vec<u8>),
    /// int8 values.
    I8(Vec<i8>),
    /// uint16 values.
    U16(Vec<u16>),
    /// int16 values.
    I16(Vec<i16>),
    /// int32 values.
    I32(Vec<i32>),
    /// int64 values.
    I64(Vec<i64>),
    /// bool values.
    Bool(Vec<bool>),
    /// uint4 values, one per byte (0..=15).
    U4(Vec<u8>),
    /// int4 values, one per byte (−8..=7).
    I4(Vec<i8>),
}

/// A dense tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first. `[]` is a scalar.
    pub shape: Vec<usize>,
    /// Elements, row-major; `data.len() == shape.iter().product()`.
    pub data: Data,
}

macro_rules! ctor {
    ($name:ident, $t:ty, $v:ident) => {
        /// A tensor from a shape and data; an error if their sizes disagree.
        pub fn $name(shape: Vec<usize>, data: Vec<$t>) -> Result<Tensor, ModelError> {
            let n = numel(&shape)?;
            if n != data.len() {
                return Err(ModelError::ShapeData { shape, len: data.len() });
            }
            Ok(Tensor { shape, data: Data::$v(data) })
        }
    };
}

impl Tensor {
    ctor!(f32, f32, F32);
    ctor!(u8, u8, U8);
    ctor!(i8, i8, I8);
    ctor!(u16, u16, U16);
    ctor!(i16, i16, I16);
    ctor!(i32, i32, I32);
    ctor!(i64, i64, I64);
    ctor!(bool, bool, Bool);

    /// An int4 tensor (values held one per byte); an error if a value is outside −8..=7 or the
    /// sizes disagree.
    pub fn i4(shape: Vec<usize>, data: Vec<i8>) -> Result<Tensor, ModelError> {
        if let Some(v) = data.iter().find(|v| !(-8..=7).contains(*v)) {
            return Err(ModelError::Other(format!("int4 value {v} is outside -8..=7")));
        }
        if numel(&shape)? != data.len() {
            return Err(ModelError::ShapeData { shape, len: data.len() });
        }
        Ok(Tensor { shape, data: Data::I4(data) })
    }

    /// A uint4 tensor (values held one per byte); an error if a value is above 15 or the sizes
    /// disagree.
    pub fn u4(shape: Vec<usize>, data: Vec<u8>) -> Result<Tensor, ModelError> {
        if let Some(v) = data.iter().find(|v| **v > 15) {
            return Err(ModelError::Other(format!("uint4 value {v} is outside 0..=15")));
        }
        if numel(&shape)? != data.len() {
            return Err(ModelError::ShapeData { shape, len: data.len() });
        }
        Ok(Tensor { shape, data: Data::U4(data) })
    }

    /// A scalar float.
    pub fn scalar_f32(v: f32) -> Tensor {
        Tensor { shape: vec![], data: Data::F32(vec![v]) }
    }

    /// A 1-D int64 tensor (shapes, axes, indices).
    pub fn vec_i64(v: Vec<i64>) -> Tensor {
        Tensor { shape: vec![v.len()], data: Data::I64(v) }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match &self.data {
            Data::F32(_) => DType::F32,
            Data::U8(_) => DType::U8,
            Data::I8(_) => DType::I8,
            Data::U16(_) => DType::U16,
            Data::I16(_) => DType::I16,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
            Data::Bool(_) => DType::Bool,
            Data::U4(_) => DType::U4,
            Data::I4(_) => DType::I4,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::U16(v) => v.len(),
            Data::I16(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::Bool(v) => v.len(),
            Data::U4(v) => v.len(),
            Data::I4(v) => v.len(),
        }
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of element data.
    pub fn byte_size(&self) -> usize {
        self.len() * self.dtype().size()
    }

    /// The float data, or an error naming the actual type.
    pub fn as_f32(&self) -> Result<&[f32], ModelError> {
        match &self.data {
            Data::F32(v) => Ok(v),
            _ => Err(ModelError::DType { expected: "float32", got: self.dtype() }),
        }
    }

    /// The int64 data, or an error naming the actual type.
    pub fn as_i64(&self) -> Result<&[i64], ModelError> {
        match &self.data {
            Data::I64(v) => Ok(v),
            _ => Err(ModelError::DType { expected: "int64", got: self.dtype() }),
        }
    }

    /// Any integer tensor's values as i64 (shape arguments come as int64 or int32).
    pub fn to_i64_vec(&self) -> Result<Vec<i64>, ModelError> {
        Ok(match &self.data {
            Data::I64(v) => v.clone(),
            Data::I32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U16(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I16(v) => v.iter().map(|&x| x as i64).collect(),
            Data::Bool(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U4(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I4(v) => v.iter().map(|&x| x as i64).collect(),
            Data::F32(_) => return Err(ModelError::DType { expected: "an integer type", got: DType::F32 }),
        })
    }

    /// Values as f32 whatever the type (for comparisons and reports).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::U8(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I8(v) => v.iter().map(|&x| x as f32).collect(),
            Data::U16(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I16(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
            Data::Bool(v) => v.iter().map(|&x| x as u8 as f32).collect(),
            Data::U4(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I4(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
}

/// Bytes that `n` 4-bit values take packed two per byte (ONNX int4/uint4 `raw_data`).
pub fn packed_len(n: usize) -> usize {
    n.div_ceil(2)
}

/// Packs 4-bit values two per byte, the first in the low nibble (the ONNX int4/uint4 layout);
/// an odd count leaves the last high nibble 0. Only the low 4 bits of each value are kept.
pub fn pack_nibbles(v: impl ExactSizeIterator<Item = u8>) -> Vec<u8> {
    let mut out = vec![0u8; packed_len(v.len())];
    for (k, x) in v.enumerate() {
        out[k / 2] |= (x & 0x0f) << (4 * (k % 2));
    }
    out
}

/// Unpacks `n` 4-bit values from `raw` (low nibble first), sign-extending them when `signed`;
/// an error when `raw` is not exactly [`packed_len`]`(n)` bytes.
pub fn unpack_nibbles(raw: &[u8], n: usize, signed: bool) -> Result<Vec<u8>, String> {
    if raw.len() != packed_len(n) {
        return Err(format!(
            "{n} 4-bit values take {} bytes packed two per byte, but it holds {} bytes",
            packed_len(n),
            raw.len()
        ));
    }
    Ok((0..n)
        .map(|k| {
            let q = (raw[k / 2] >> (4 * (k % 2))) & 0x0f;
            if signed && q >= 8 {
                q | 0xf0
            } else {
                q
            }
        })
        .collect())
}

/// Product of dimensions, with overflow reported instead of wrapped.
pub fn numel(shape: &[usize]) -> Result<usize, ModelError> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| ModelError::Overflow(shape.to_vec()))
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}
