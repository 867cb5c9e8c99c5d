//! `qplay.tfl.Mean`: TFLite's int8 MEAN (`reference_ops::QuantizedMeanOrSum`, the kernel
//! LiteRT's reference resolver runs): the int32 sum of the codes over the axes, minus
//! `zp · count`, times the multiplier of `x_scale / y_scale` with the division by the count
//! folded into it (`(m << s) / count`, its shift lowered by `s`), plus `y_zp`.

use super::fixed::{mbqm, quantize_multiplier};
use super::{attr_f32, attr_i32, codes_of, eval_codes, infer_codes, Code, PerCode};
use crate::model::{Node, Tensor};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// The op type.
pub const MEAN: &str = "qplay.tfl.Mean";

/// A built int8 mean.
#[derive(Debug, Clone)]
pub struct TflMean {
    /// The reduced axes (non-negative, sorted, distinct).
    pub axes: Vec<usize>,
    /// Whether reduced axes stay as 1s.
    pub keep_dims: bool,
    /// Zero points of the input and the output.
    pub zps: (i32, i32),
    /// `x_scale / y_scale` as multiplier and shift.
    pub requant: (i32, i32),
}

/// Builds `qplay.tfl.Mean` (attributes `axes` (non-negative), `keepdims`, `x_scale`, `x_zp`,
/// `y_scale`, `y_zp`).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let mut axes: Vec<usize> = node
        .attrs
        .ints("axes")
        .unwrap_or(&[])
        .iter()
        .map(|&a| usize::try_from(a).map_err(|_| OpError::malformed(format!("axis {a} must be non-negative"))))
        .collect::<Result<_, _>>()?;
    axes.sort_unstable();
    axes.dedup();
    let requant = quantize_multiplier(attr_f32(node, "x_scale")? as f64 / attr_f32(node, "y_scale")? as f64);
    if !(-31..=30).contains(&requant.1) {
        return Err(OpError::malformed("the scales give a MEAN multiplier outside TFLite's range"));
    }
    Ok(Box::new(TflMean {
        axes,
        keep_dims: node.attrs.int("keepdims", 0) != 0,
        zps: (attr_i32(node, "x_zp")?, attr_i32(node, "y_zp")?),
        requant,
    }))
}

impl TflMean {
    /// The multiplier and shift of a mean over `count` codes: `x_scale / y_scale` with the
    /// division by the count folded in (`(m << s) / count`, the shift lowered by `s`).
    pub fn multiplier(&self, count: usize) -> Result<(i32, i32), OpError> {
        let (m, shift) = self.requant;
        let s = (63 - (count.max(1) as u64).leading_zeros() as i32).min(32).min(31 + shift);
        if s < 0 {
            return Err(OpError::malformed("the scales give a MEAN multiplier outside TFLite's range"));
        }
        Ok(((((m as i64) << s) / count.max(1) as i64) as i32, shift - s))
    }

    fn out_shape(&self, x: &[usize]) -> Result<Vec<usize>, OpError> {
        if self.axes.iter().any(|&a| a >= x.len()) {
            return Err(OpError::mismatch(format!("axes {:?} out of range for shape {x:?}", self.axes)));
        }
        Ok(x.iter()
            .enumerate()
            .filter_map(|(i, &d)| match (self.axes.contains(&i), self.keep_dims) {
                (false, _) => Some(d),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect())
    }
}

impl Op for TflMean {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        infer_codes(self, inputs)
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        eval_codes(self, inputs)
    }
}

impl PerCode for TflMean {
    fn shape(&self, x: &[usize]) -> Result<Vec<usize>, OpError> {
        self.out_shape(x)
    }

    fn run<T: Code>(&self, x: &Tensor) -> Result<Tensor, OpError> {
        let xv = codes_of::<T>(x, "the input")?;
        let shape = self.out_shape(&x.shape)?;
        // The sums, indexed by the kept axes in order.
        let kept: Vec<usize> = (0..x.shape.len()).filter(|a| !self.axes.contains(a)).collect();
        let n_out: usize = kept.iter().map(|&a| x.shape[a]).product();
        let count: usize = self.axes.iter().map(|&a| x.shape[a]).product();
        let mut sums = vec![0i32; n_out];
        let strides = crate::model::strides(&x.shape);
        for (i, &v) in xv.iter().enumerate() {
            let mut o = 0usize;
            for &a in &kept {
                o = o * x.shape[a] + (i / strides[a]) % x.shape[a];
            }
            sums[o] = sums[o].wrapping_add(v.get());
        }
        if count == 0 {
            return Ok(Tensor { shape, data: T::data(vec![T::default(); n_out]) });
        }
        let (m, shift) = self.multiplier(count)?;
        let count = count as i64;
        let y = sums
            .iter()
            .map(|&sum| {
                let shifted = (sum as i64 - self.zps.0 as i64 * count) as i32;
                T::put(mbqm(shifted, m, shift).wrapping_add(self.zps.1).clamp(T::MIN, T::MAX))
            })
            .collect();
        Ok(Tensor { shape, data: T::data(y) })
    }
}
