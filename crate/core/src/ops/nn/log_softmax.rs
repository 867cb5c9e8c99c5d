//! `LogSoftmax` and `Hardmax`, normalised over the same elements as [`Softmax`] (opsets < 13:
//! the input coerced to 2-D at `axis`, default 1; 13+: the one dim `axis`, default −1).
//!
//! - LogSoftmax: `(x − max) − ln Σ exp(x − max)`, the maximum subtracted first as onnxruntime
//!   does, so large inputs do not overflow. Its gradient is `g − softmax(x) · Σ g`.
//! - Hardmax: 1 at the first maximum of each row, 0 elsewhere (no gradient: it is flat).

use super::softmax::Softmax;
use super::{f32_fact, f32_input, f32_output};
use crate::model::{DType, Node};
use crate::ops::grad::{f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{BuildCtx, Fact, Op, OpError, Registry, Tensor};

/// Which normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    LogSoftmax,
    Hardmax,
}

/// A built `LogSoftmax` or `Hardmax`.
#[derive(Debug, Clone)]
pub struct Normalize {
    kind: Kind,
    rows: Softmax,
}

/// Adds `LogSoftmax` and `Hardmax`.
pub fn register(r: &mut Registry) {
    r.register("LogSoftmax", |n, c| build(n, c, Kind::LogSoftmax));
    r.register("Hardmax", |n, c| build(n, c, Kind::Hardmax));
}

fn build(node: &Node, ctx: &BuildCtx, kind: Kind) -> Result<Box<dyn Op>, OpError> {
    let coerce_2d = ctx.opset < 13;
    let axis = node.attrs.int("axis", if coerce_2d { 1 } else { -1 });
    Ok(Box::new(Normalize { kind, rows: Softmax::new(axis, coerce_2d) }))
}

/// Calls `f` with the element offsets of each row: `len` elements `inner` apart.
fn for_each_row(n: usize, (_, len, inner): (usize, usize, usize), mut f: impl FnMut(&mut dyn Iterator<Item = usize>)) {
    if len == 0 || inner == 0 {
        return;
    }
    for block in (0..n).step_by(len * inner) {
        for j in 0..inner {
            f(&mut (0..len).map(|i| block + i * inner + j));
        }
    }
}

impl Op for Normalize {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = f32_fact(inputs, 0, "input")?;
        self.rows.layout(&x.shape)?;
        Ok(vec![Fact::new(DType::F32, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = f32_input(inputs, 0, "input")?;
        let shape = super::input_shape(inputs, 0).unwrap_or_default().to_vec();
        let layout = self.rows.layout(&shape)?;
        let mut y = vec![0.0f32; x.len()];
        for_each_row(x.len(), layout, |row| {
            let idx: Vec<usize> = row.collect();
            let max = idx.iter().map(|&i| x[i]).fold(f32::NEG_INFINITY, f32::max);
            match self.kind {
                Kind::LogSoftmax => {
                    let sum: f32 = idx.iter().map(|&i| (x[i] - max).exp()).sum();
                    let log_sum = sum.ln();
                    idx.iter().for_each(|&i| y[i] = (x[i] - max) - log_sum);
                }
                Kind::Hardmax => {
                    if let Some(&first) = idx.iter().find(|&&i| x[i] == max) {
                        y[first] = 1.0;
                    }
                }
            }
        });
        Ok(vec![f32_output(shape, y)?])
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        if self.kind == Kind::Hardmax {
            return Err(GradError::NoBackward);
        }
        let x = f32_input(inputs, 0, "input")?;
        let shape = super::input_shape(inputs, 0).unwrap_or_default().to_vec();
        let layout = self.rows.layout(&shape)?;
        let mut out: Grads = vec![None; inputs.len()];
        let Some(g) = out_grad(grads, 0, x.len())? else { return Ok(out) };
        let y = self.eval(inputs)?.remove(0);
        let y = y.as_f32().map_err(OpError::internal)?;
        let mut dx = vec![0.0f32; x.len()];
        for_each_row(x.len(), layout, |row| {
            let idx: Vec<usize> = row.collect();
            let total: f32 = idx.iter().map(|&i| g[i]).sum();
            idx.iter().for_each(|&i| dx[i] = g[i] - y[i].exp() * total);
        });
        out[0] = Some(f32_tensor(shape, dx));
        Ok(out)
    }
}
