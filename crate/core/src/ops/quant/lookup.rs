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
