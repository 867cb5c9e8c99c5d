//! `com.microsoft::QLinearConcat`: joins 8-bit tensors along `axis`, requantizing each to the
//! output's per-tensor parameters.
//!
//! Inputs: `Y_scale, Y_zero_point`, then one `(X_i, X_i_scale, X_i_zero_point)` triple per
//! tensor. An input whose scale and zero-point equal the output's is copied; any other goes
//! through a 256-entry table `q ↦ saturate(round_half_even(sx·(q − zx) / sy) + zy)` (as
//! onnxruntime builds it), with the crate's one quantize function ([`QParams::quantize`]).

use super::qlinear_add::scalar_params;
use super::qtype_of;
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::shape::args::{axis, checked_numel};
use crate::ops::{input, BuildCtx, Fact, Op, OpError};
use crate::quant::QParams;

/// A built QLinearConcat.
#[derive(Debug, Clone)]
pub struct QLinearConcat {
    axis: i64,
}

/// Builds QLinearConcat: the `axis` attribute is required, and the inputs are 2 + 3·k, k ≥ 1.
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let axis =
        node.attrs.int_opt("axis").ok_or_else(|| OpError::malformed("QLinearConcat needs the `axis` attribute"))?;
    let n = node.inputs.len();
    if n < 5 || !(n - 2).is_multiple_of(3) {
        return Err(OpError::malformed(format!(
            "QLinearConcat takes Y_scale, Y_zero_point and then (X, X_scale, X_zero_point) triples: 2 + 3·k inputs, got {n}"
        )));
    }
    Ok(Box::new(QLinearConcat { axis }))
}

impl QLinearConcat {
    /// The axis, the output type and the output shape from the inputs' types and shapes.
    fn plan(
        &self,
        n: usize,
        get: impl Fn(usize) -> Option<(DType, Vec<usize>)>,
    ) -> Result<(usize, DType, Vec<usize>), OpError> {
        if n < 5 || !(n - 2).is_multiple_of(3) {
            return Err(OpError::malformed(format!("QLinearConcat needs 2 + 3·k inputs, got {n}")));
        }
        let k = (n - 2) / 3;
        let x = |i: usize| get(2 + 3 * i).ok_or_else(|| OpError::malformed(format!("input X_{i} is missing")));
        let (dtype, first) = x(0)?;
        qtype_of(dtype).map_err(|e| e.context("X_0"))?;
        if let Some((zd, _)) = get(1) {
            if zd != dtype {
                return Err(OpError::mismatch(format!("Y_zero_point is {zd:?} but the inputs are {dtype:?}")));
            }
        }
        let a = axis(self.axis, first.len())?;
        let mut out = first.clone();
        for i in 1..k {
            let (d, s) = x(i)?;
            if d != dtype {
                return Err(OpError::mismatch(format!("X_{i} is {d:?}, X_0 is {dtype:?}")));
            }
            if s.len() != first.len() || (0..s.len()).any(|j| j != a && s[j] != first[j]) {
                return Err(OpError::mismatch(format!(
                    "X_{i} has shape {s:?}, which does not match X_0's {first:?} outside axis {}",
                    self.axis
                )));
            }
            out[a] = out[a].checked_add(s[a]).ok_or_else(|| OpError::limit("the concatenated dimension overflows"))?;
        }
        checked_numel(&out)?;
        Ok((a, dtype, out))
    }
}

/// Copies (or maps through `table`) each input's chunks into the output, as Concat does.
fn join<T: Copy + Default>(
    parts: &[(&[T], Option<[T; 256]>)],
    chunks: &[usize],
    outer: usize,
    idx: impl Fn(T) -> usize,
) -> Vec<T> {
    let mut out = Vec::with_capacity(outer * chunks.iter().sum::<usize>());
    for o in 0..outer {
        for ((p, table), &len) in parts.iter().zip(chunks) {
            let src = &p[o * len..(o + 1) * len];
            match table {
                None => out.extend_from_slice(src),
                Some(t) => out.extend(src.iter().map(|&q| t[idx(q)])),
            }
        }
    }
    out
}

impl Op for QLinearConcat {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let get = |i: usize| inputs.get(i).copied().flatten().map(|f| (f.dtype, f.shape.clone()));
        let (_, dtype, shape) = self.plan(inputs.len(), get)?;
        Ok(vec![Fact::new(dtype, shape)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let opt = |i: usize| inputs.get(i).copied().flatten();
        let (a, dtype, shape) = self.plan(inputs.len(), |i| opt(i).map(|t| (t.dtype(), t.shape.clone())))?;
        let qt = qtype_of(dtype)?;
        let py = scalar_params(input(inputs, 0)?, opt(1), dtype, "Y")?;
        let k = (inputs.len() - 2) / 3;
        let outer: usize = shape[..a].iter().product();
        let mut xs = Vec::with_capacity(k);
        let mut tables: Vec<Option<[i32; 256]>> = Vec::with_capacity(k);
        for i in 0..k {
            let x = input(inputs, 2 + 3 * i)?;
            let px = scalar_params(input(inputs, 3 + 3 * i)?, opt(4 + 3 * i), dtype, &format!("X_{i}"))?;
            tables.push(if px.scale == py.scale && px.zero_point == py.zero_point {
                None
            } else {
                // Index by the code's offset from the type's minimum.
                Some(std::array::from_fn(|j| py.quantize(QParams::dequantize(&px, j as i32 + qt.qmin()), qt)))
            });
            xs.push(x);
        }
        let chunks: Vec<usize> = xs.iter().map(|t| t.shape[a..].iter().product()).collect();
        let data = match dtype {
            DType::U8 => {
                let parts = xs
                    .iter()
                    .zip(&tables)
                    .map(|(x, t)| match &x.data {
                        Data::U8(v) => Ok((v.as_slice(), t.map(|t| t.map(|q| q as u8)))),
                        _ => Err(OpError::mismatch(format!("inputs must all be {dtype:?}"))),
                    })
                    .collect::<Result<Vec<_>, OpError>>()?;
                Data::U8(join(&parts, &chunks, outer, |q| q as usize))
            }
            DType::I8 => {
                let parts = xs
                    .iter()
                    .zip(&tables)
                    .map(|(x, t)| match &x.data {
                        Data::I8(v) => Ok((v.as_slice(), t.map(|t| t.map(|q| q as i8)))),
                        _ => Err(OpError::mismatch(format!("inputs must all be {dtype:?}"))),
                    })
                    .collect::<Result<Vec<_>, OpError>>()?;
                Data::I8(join(&parts, &chunks, outer, |q| (q as i32 + 128) as usize))
            }
            other => {
                return Err(OpError::mismatch(format!("QLinearConcat inputs must be uint8 or int8, got {other:?}")))
            }
        };
        Ok(vec![Tensor { shape, data }])
    }
}
