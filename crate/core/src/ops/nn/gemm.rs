//! `Gemm`: `Y = alpha · A' · B' + beta · C`, where `A'`/`B'` are `A`/`B` optionally transposed
//! (`transA`, `transB`) and `C` (optional from opset 11) broadcasts unidirectionally to
//! `[M, N]`. Transposition costs nothing: the GEMM reads operands through strided views and
//! packs them anyway; `alpha` is folded into that packing.

use super::sgemm::{sgemm, Init, MatRef};
use super::{checked_numel, f32_fact, f32_fact_opt, f32_input, f32_input_opt, f32_output};
use crate::model::{DType, Node};
use crate::ops::grad::{f32_tensor, out_grad, unbroadcast, Backward, GradError, Grads};
use crate::ops::{BuildCtx, Fact, Op, OpError, Tensor};

/// A built `Gemm` node.
#[derive(Debug, Clone)]
pub struct Gemm {
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
}

/// Builds `Gemm` (`alpha`, `beta`, `transA`, `transB`).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Gemm {
        alpha: node.attrs.float("alpha", 1.0),
        beta: node.attrs.float("beta", 1.0),
        trans_a: node.attrs.int("transA", 0) != 0,
        trans_b: node.attrs.int("transB", 0) != 0,
    }))
}

impl Gemm {
    /// `(M, K, N)` after transposition, with C's shape checked to broadcast to `[M, N]`.
    fn plan(&self, a: &[usize], b: &[usize], c: Option<&[usize]>) -> Result<(usize, usize, usize), OpError> {
        if a.len() != 2 || b.len() != 2 {
            return Err(OpError::mismatch(format!("A and B must be 2-D, got shapes {a:?} and {b:?}")));
        }
        let (m, k) = if self.trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
        let (k2, n) = if self.trans_b { (b[1], b[0]) } else { (b[0], b[1]) };
        if k != k2 {
            return Err(OpError::mismatch(format!(
                "A' is {m}×{k} but B' is {k2}×{n} (transA = {}, transB = {}): inner dimensions differ",
                self.trans_a as u8, self.trans_b as u8
            )));
        }
        if let Some(c) = c {
            let target = [m, n];
            let ok = c.len() <= 2 && c.iter().rev().zip(target.iter().rev()).all(|(&cd, &t)| cd == t || cd == 1);
            if !ok {
                return Err(OpError::mismatch(format!("C with shape {c:?} does not broadcast to [{m}, {n}]")));
            }
        }
        checked_numel(&[m, n])?;
        Ok((m, k, n))
    }
}

impl Op for Gemm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let a = f32_fact(inputs, 0, "A")?;
        let b = f32_fact(inputs, 1, "B")?;
        let c = f32_fact_opt(inputs, 2, "C")?;
        let (m, _, n) = self.plan(&a.shape, &b.shape, c.map(|c| c.shape.as_slice()))?;
        Ok(vec![Fact::new(DType::F32, vec![m, n])])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let a = f32_input(inputs, 0, "A")?;
        let b = f32_input(inputs, 1, "B")?;
        let c = f32_input_opt(inputs, 2, "C")?;
        let shape = |i: usize| super::input_shape(inputs, i);
        let c_shape = shape(2);
        let (m, k, n) = self.plan(shape(0).unwrap_or_default(), shape(1).unwrap_or_default(), c_shape)?;
        let mut out = vec![0.0f32; m * n];
        let init = match (c, c_shape) {
            (Some(c), Some(cs)) if self.beta != 0.0 => {
                // Broadcast C: its (right-aligned) dims are either full or 1.
                let (cm, cn) = match cs {
                    [] => (1, 1),
                    [x] => (1, *x),
                    [x, y] => (*x, *y),
                    _ => unreachable!("plan checked C's rank"),
                };
                for (i, row) in out.chunks_exact_mut(n).enumerate() {
                    let crow = &c[if cm == 1 { 0 } else { i * cn }..][..cn];
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = self.beta * crow[if cn == 1 { 0 } else { j }];
                    }
                }
                Init::Accumulate
            }
            _ => Init::Zero,
        };
        let (ar, ac) = if self.trans_a { (k, m) } else { (m, k) };
        let (br, bc) = if self.trans_b { (n, k) } else { (k, n) };
        let mut av = MatRef::row_major(a, ar, ac)?;
        let mut bv = MatRef::row_major(b, br, bc)?;
        if self.trans_a {
            av = av.t();
        }
        if self.trans_b {
            bv = bv.t();
        }
        sgemm(self.alpha, av, bv, init, &mut out, n)?;
        Ok(vec![f32_output(vec![m, n], out)?])
    }

    /// `dA' = alpha · dY · B'ᵀ`, `dB' = alpha · A'ᵀ · dY` (transposed back when `transA`/
    /// `transB`), and `dC = beta · dY` summed over the dims C was broadcast along.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let a = f32_input(inputs, 0, "A")?;
        let b = f32_input(inputs, 1, "B")?;
        let c = f32_input_opt(inputs, 2, "C")?;
        let shape = |i: usize| super::input_shape(inputs, i);
        let (a_shape, b_shape) = (shape(0).unwrap_or_default(), shape(1).unwrap_or_default());
        let (m, k, n) = self.plan(a_shape, b_shape, shape(2))?;
        let mut out: Grads = vec![None; inputs.len()];
        let Some(g) = out_grad(grads, 0, m * n)? else { return Ok(out) };
        let gm = MatRef::row_major(g, m, n)?;
        let av = if self.trans_a { MatRef::row_major(a, k, m)?.t() } else { MatRef::row_major(a, m, k)? };
        let bv = if self.trans_b { MatRef::row_major(b, n, k)?.t() } else { MatRef::row_major(b, k, n)? };
        let (mut da, mut db) = (vec![0.0f32; a.len()], vec![0.0f32; b.len()]);
        if self.trans_a {
            sgemm(self.alpha, bv, gm.t(), Init::Zero, &mut da, m)?;
        } else {
            sgemm(self.alpha, gm, bv.t(), Init::Zero, &mut da, k)?;
        }
        if self.trans_b {
            sgemm(self.alpha, gm.t(), av, Init::Zero, &mut db, k)?;
        } else {
            sgemm(self.alpha, av.t(), gm, Init::Zero, &mut db, n)?;
        }
        out[0] = Some(f32_tensor(a_shape.to_vec(), da));
        if out.len() > 1 {
            out[1] = Some(f32_tensor(b_shape.to_vec(), db));
        }
        if let (Some(c), Some(cs)) = (c, shape(2)) {
            // The forward reads no C at all when beta is 0.
            let dc = if self.beta == 0.0 {
                vec![0.0; c.len()]
            } else {
                let mut dc = unbroadcast(g, &[m, n], cs);
                dc.iter_mut().for_each(|v| *v *= self.beta);
                dc
            };
            out[2] = Some(f32_tensor(cs.to_vec(), dc));
        }
        Ok(out)
    }
}
