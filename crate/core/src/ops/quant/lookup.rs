//! `qplay.Lookup`: an element-wise function of an 8-bit tensor as a 256-entry table,
//! `y[i] = table[x[i]]` (indexed by the code's bits: 0…255 for uint8, the two's-complement byte
//! for int8). Planning makes it from a `DequantizeLinear → element-wise float ops →
//! QuantizeLinear` chain ([`crate::model::lower_lut`]), the table computed by running that very
//! chain on all 256 codes, so the result equals the float chain's in every value. An int16
//! tensor takes a 65 536-entry int16 table, indexed by the code's bits (`x as u16`): the int16
//! activations of TFLite's 16x8 models ([`crate::ops::tflite::int16::table16`]).

use crate::model::{DType, Data, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// The op type planning writes (not an ONNX op: it never leaves the plan).
pub const LOOKUP: &str = "qplay.Lookup";

/// A built lookup.
#[derive(Debug, Clone)]
pub struct Lookup;

/// Builds `qplay.Lookup` (inputs: the 8-bit tensor and its 256-entry table).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    if node.inputs.len() != 2 {
        return Err(OpError::internal(format!("qplay.Lookup takes 2 inputs (x, table), got {}", node.inputs.len())));
    }
    Ok(Box::new(Lookup))
}

fn check(x: DType, table: DType, len: Option<usize>) -> Result<(), OpError> {
    if x == DType::I16 || table == DType::I16 {
        if x != table || len.is_some_and(|n| n != 1 << 16) {
            return Err(OpError::internal(format!(
                "an int16 lookup needs an int16 input and a 65536-entry int16 table, got {x:?} and {table:?} × {}",
                len.unwrap_or(0)
            )));
        }
        return Ok(());
    }
    if !matches!(x, DType::U8 | DType::I8) || !matches!(table, DType::U8 | DType::I8) {
        return Err(OpError::internal(format!("x and the table must be 8-bit, got {x:?} and {table:?}")));
    }
    if len.is_some_and(|n| n != 256) {
        return Err(OpError::internal(format!("the table must have 256 entries, got {}", len.unwrap_or(0))));
    }
    Ok(())
}

impl Op for Lookup {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (x, t) = (input_fact(inputs, 0)?, input_fact(inputs, 1)?);
        check(x.dtype, t.dtype, Some(t.shape.iter().product()))?;
        Ok(vec![Fact::new(t.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (x, t) = (input(inputs, 0)?, input(inputs, 1)?);
        check(x.dtype(), t.dtype(), Some(t.len()))?;
        if let (Data::I16(xv), Data::I16(tv)) = (&x.data, &t.data) {
            let y = xv.iter().map(|&v| tv[v as u16 as usize]).collect();
            return Ok(vec![Tensor { shape: x.shape.clone(), data: Data::I16(y) }]);
        }
        let table: [u8; 256] = match &t.data {
            Data::U8(v) => v.as_slice().try_into().map_err(|_| OpError::internal("table size"))?,
            Data::I8(v) => std::array::from_fn(|k| v[k] as u8),
            _ => unreachable!("checked"),
        };
        let out: Vec<u8> = match &x.data {
            Data::U8(v) => v.iter().map(|&b| table[b as usize]).collect(),
            Data::I8(v) => v.iter().map(|&b| table[b as u8 as usize]).collect(),
            _ => unreachable!("checked"),
        };
        let data = match t.dtype() {
            DType::U8 => Data::U8(out),
            _ => Data::I8(out.into_iter().map(|b| b as i8).collect()),
        };
        Ok(vec![Tensor { shape: x.shape.clone(), data }])
    }
}

/// onnxruntime's 256-entry table for a `com.microsoft` lookup activation (`QLinearSigmoid`,
/// `QLinearLeakyRelu`: `QlinearBuildLookupTable`): each code `x` dequantized in f32 as
/// `sx · (x − zx)`, mapped by `f`, and quantized by the crate's one quantize function
/// (onnxruntime's `MlasQuantizeLinear`: `y / sy` rounded half to even, plus `zy`, saturated).
/// Indexed by the code's bits, as [`Lookup`] reads it; typed like `x`.
pub fn ort_table(
    x: crate::quant::QParams,
    y: crate::quant::QParams,
    dtype: DType,
    f: impl Fn(f32) -> f32,
) -> Result<Tensor, OpError> {
    let qt = super::qtype_of(dtype)?;
    let code = |bits: usize| if qt.signed { bits as u8 as i8 as i32 } else { bits as i32 };
    let q: Vec<i32> = (0..256).map(|b| y.quantize(f(x.scale * (code(b) - x.zero_point) as f32), qt)).collect();
    Ok(match dtype {
        DType::I8 => Tensor { shape: vec![256], data: Data::I8(q.into_iter().map(|v| v as i8).collect()) },
        _ => Tensor { shape: vec![256], data: Data::U8(q.into_iter().map(|v| v as u8).collect()) },
    })
}

/// The element-wise `com.microsoft` activations onnxruntime runs as a table of the input code
/// (inputs `X, X_scale, X_zero_point, Y_scale, Y_zero_point`): the table from `f`, then
/// [`Lookup`].
pub(super) fn eval_ort_lookup(inputs: &[Option<&Tensor>], f: impl Fn(f32) -> f32) -> Result<Vec<Tensor>, OpError> {
    let opt = |i: usize| inputs.get(i).copied().flatten();
    let x = input(inputs, 0)?;
    let dtype = x.dtype();
    let px = super::qlinear_add::scalar_params(input(inputs, 1)?, opt(2), dtype, "X")?;
    let py = super::qlinear_add::scalar_params(input(inputs, 3)?, opt(4), dtype, "Y")?;
    let table = ort_table(px, py, dtype, f)?;
    Lookup.eval(&[Some(x), Some(&table)])
}

/// [`eval_ort_lookup`]'s shapes and types: `Y` is `X`'s, whose type is 8-bit.
pub(super) fn infer_ort_lookup(inputs: &[Option<&Fact>], op: &str) -> Result<Vec<Fact>, OpError> {
    let x = input_fact(inputs, 0)?;
    super::qtype_of(x.dtype).map_err(|e| e.context(op))?;
    for (i, what) in [(2, "X_zero_point"), (4, "Y_zero_point")] {
        if let Some(z) = inputs.get(i).copied().flatten() {
            if z.dtype != x.dtype {
                return Err(OpError::mismatch(format!("{op}: {what} is {:?} but X is {:?}", z.dtype, x.dtype)));
            }
        }
    }
    Ok(vec![Fact::new(x.dtype, x.shape.clone())])
}

/// Checks the input count of a one-input `com.microsoft` op laid out as `X, X_scale,
/// X_zero_point, Y_scale[, Y_zero_point]` (the lookup activations, QLinearSoftmax,
/// QLinearGlobalAveragePool).
pub(super) fn check_ort_lookup(node: &Node, op: &str) -> Result<(), OpError> {
    let n = node.inputs.len();
    if !(4..=5).contains(&n) {
        return Err(OpError::malformed(format!(
            "{op} takes 4 or 5 inputs (X, X_scale, X_zero_point, Y_scale[, Y_zero_point]), got {n}"
        )));
    }
    Ok(())
}
