//! DequantizeLinear: `y = (x − zero_point) · scale`, per tensor or per axis, for int4, uint4,
//! int8, uint8, int16, uint16 and int32 (biases, zero-point 0) inputs.

use super::params;
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// DequantizeLinear with its `axis` (default 1).
#[derive(Debug, Clone)]
pub struct DequantizeLinear {
    axis: i64,
}

/// Builds DequantizeLinear; blocked quantization (opset 21 `block_size`) is rejected.
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    if node.attrs.int("block_size", 0) != 0 {
        return Err(OpError::unsupported("blocked quantization (block_size) is not supported"));
    }
    Ok(Box::new(DequantizeLinear { axis: node.attrs.int("axis", 1) }))
}

impl Op for DequantizeLinear {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        if !matches!(x.dtype, DType::U8 | DType::I8 | DType::U16 | DType::I16 | DType::I32 | DType::U4 | DType::I4) {
            return Err(OpError::mismatch(format!(
                "input must be int4, uint4, int8, uint8, int16, uint16 or int32, got {:?}",
                x.dtype
            )));
        }
        Ok(vec![Fact::new(DType::F32, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let qt = match x.dtype() {
            DType::I32 => None,
            d => Some(super::qdq_qtype_of(d)?),
        };
        let zp = inputs.get(2).copied().flatten();
        if let Some(z) = zp {
            if z.dtype() != x.dtype() {
                return Err(OpError::mismatch(format!(
                    "zero_point is {:?} but the input is {:?}",
                    z.dtype(),
                    x.dtype()
                )));
            }
        }
        let p = params(&x.shape, self.axis, input(inputs, 1)?, zp, qt)?;
        let (outer, ch, inner) = p.split;
        // 8-bit codes straight from their bytes: `(q − Z)` is a small integer, so converting it
        // from i32 rather than i64 gives the same float, without widening the whole tensor first.
        let y = match &x.data {
            Data::U8(v) => Some(dequantize8(v, p.split, &p.per_channel)),
            Data::I8(v) => Some(dequantize8(v, p.split, &p.per_channel)),
            _ => None,
        };
        if let Some(y) = y {
            return Ok(vec![Tensor::f32(x.shape.clone(), y).map_err(OpError::internal)?]);
        }
        let v = x.to_i64_vec().map_err(OpError::internal)?;
        let mut y = Vec::with_capacity(v.len());
        for o in 0..outer {
            for (c, pc) in p.per_channel.iter().enumerate().take(ch) {
                let base = (o * ch + c) * inner;
                y.extend(v[base..base + inner].iter().map(|&q| (q - pc.zero_point as i64) as f32 * pc.scale));
            }
        }
        Ok(vec![Tensor::f32(x.shape.clone(), y).map_err(OpError::internal)?])
    }
}

/// `(q − Z)·Δ` for 8-bit codes, channel run by channel run (`split` = outer, channels, inner).
fn dequantize8<T: super::qgemm::Widen>(
    v: &[T],
    split: (usize, usize, usize),
    per_channel: &[crate::quant::QParams],
) -> Vec<f32> {
    let (outer, ch, inner) = split;
    let mut y = Vec::with_capacity(v.len());
    for o in 0..outer {
        for (c, pc) in per_channel.iter().enumerate().take(ch) {
            let base = (o * ch + c) * inner;
            let (z, s) = (pc.zero_point, pc.scale);
            y.extend(v[base..base + inner].iter().map(|&q| (q.widen() as i32 - z) as f32 * s));
        }
    }
    y
}
