//! `Softmax`, numerically stable (the maximum is subtracted before `exp`).
//!
//! Opsets < 13 coerce the input to 2-D at `axis` (default 1) and normalise each row of the
//! flattened `[∏ dims[..axis], ∏ dims[axis..]]` matrix; opset 13+ normalises along the single
//! dim `axis` (default −1).

use super::{f32_fact, f32_input, f32_output, normalize_axis};
use crate::model::{DType, Node};
use crate::ops::grad::{f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{BuildCtx, Fact, Op, OpError, Tensor};

/// A built `Softmax` node.
#[derive(Debug, Clone)]
pub struct Softmax {
    axis: i64,
    /// Opset < 13: normalise over all dims from `axis` on.
    coerce_2d: bool,
}

/// Builds `Softmax` (`axis`, whose default and meaning depend on the opset).
pub fn build(node: &Node, ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let coerce_2d = ctx.opset < 13;
    let axis = node.attrs.int("axis", if coerce_2d { 1 } else { -1 });
    Ok(Box::new(Softmax { axis, coerce_2d }))
}

impl Softmax {
    /// A softmax over `axis` (with opset < 13's coercion to 2-D when `coerce_2d`).
    pub fn new(axis: i64, coerce_2d: bool) -> Softmax {
        Softmax { axis, coerce_2d }
    }

    /// `(outer, len, inner)`: softmax runs over `len` elements `inner` apart, `outer · inner` times.
    pub fn layout(&self, shape: &[usize]) -> Result<(usize, usize, usize), OpError> {
        if shape.is_empty() {
            // ONNX allows a scalar only through opset < 13's coercion; treat it as one element.
            return Ok((1, 1, 1));
        }
        let axis = normalize_axis(self.axis, shape.len(), "axis")?;
        let outer = shape[..axis].iter().product();
        if self.coerce_2d {
            Ok((outer, shape[axis..].iter().product(), 1))
        } else {
            Ok((outer, shape[axis], shape[axis + 1..].iter().product()))
        }
    }
}

impl Op for Softmax {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = f32_fact(inputs, 0, "input")?;
        self.layout(&x.shape)?;
        Ok(vec![Fact::new(DType::F32, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = f32_input(inputs, 0, "input")?;
        let shape = super::input_shape(inputs, 0).unwrap_or_default().to_vec();
        let (outer, len, inner) = self.layout(&shape)?;
        let mut out = x.to_vec();
        if len > 0 && inner > 0 {
            for block in out.chunks_exact_mut(len * inner) {
                if inner == 1 {
                    softmax_contiguous(block);
                } else {
                    softmax_strided(block, len, inner);
                }
            }
        }
        debug_assert!(outer * len * inner == out.len());
        Ok(vec![f32_output(shape, out)?])
    }

    /// `dx = y ⊙ (g − Σ g ⊙ y)`, the sum along the normalised dim(s), from the forward's output
    /// (computed again when it is not given).
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, outputs, grads, .. } = *b;
        let x = f32_input(inputs, 0, "input")?;
        let shape = super::input_shape(inputs, 0).unwrap_or_default().to_vec();
        let (_, len, inner) = self.layout(&shape)?;
        let mut out: Grads = vec![None; inputs.len()];
        let Some(g) = out_grad(grads, 0, x.len())? else { return Ok(out) };
        let fresh;
        let y = match outputs.first().copied().flatten().map(|y| y.as_f32()) {
            Some(Ok(y)) if y.len() == x.len() => y,
            _ => {
                fresh = self.eval(inputs)?;
                fresh[0].as_f32().map_err(OpError::internal)?
            }
        };
        let mut dx = vec![0.0f32; x.len()];
        if len > 0 && inner > 0 {
            let blocks =
                dx.chunks_exact_mut(len * inner).zip(y.chunks_exact(len * inner).zip(g.chunks_exact(len * inner)));
            for (d, (y, g)) in blocks {
                let mut dot = vec![0.0f32; inner];
                for (yr, gr) in y.chunks_exact(inner).zip(g.chunks_exact(inner)) {
                    dot.iter_mut().zip(yr.iter().zip(gr)).for_each(|(s, (&y, &g))| *s += y * g);
                }
                for (dr, (yr, gr)) in d.chunks_exact_mut(inner).zip(y.chunks_exact(inner).zip(g.chunks_exact(inner))) {
                    for (((d, &y), &g), &s) in dr.iter_mut().zip(yr).zip(gr).zip(&dot) {
                        *d = y * (g - s);
                    }
                }
            }
        }
        out[0] = Some(f32_tensor(shape, dx));
        Ok(out)
    }
}

/// Softmax of one contiguous row, in place.
fn softmax_contiguous(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// Softmax along the middle dim of a `[len, inner]` block, in place; every pass runs over a
/// contiguous `inner` row so the loops vectorise.
fn softmax_strided(block: &mut [f32], len: usize, inner: usize) {
    let mut max = vec![f32::NEG_INFINITY; inner];
    for row in block.chunks_exact(inner) {
        max.iter_mut().zip(row).for_each(|(m, &v)| *m = m.max(v));
    }
    let mut sum = vec![0.0f32; inner];
    for row in block.chunks_exact_mut(inner) {
        for ((v, m), s) in row.iter_mut().zip(&max).zip(sum.iter_mut()) {
            *v = (*v - m).exp();
            *s += *v;
        }
    }
    sum.iter_mut().for_each(|s| *s = 1.0 / *s);
    for row in block.chunks_exact_mut(inner) {
        row.iter_mut().zip(&sum).for_each(|(v, s)| *v *= s);
    }
    debug_assert!(block.len() == len * inner);
}
