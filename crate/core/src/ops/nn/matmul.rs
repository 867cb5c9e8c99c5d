//! `MatMul` with numpy semantics: batched over leading dims with broadcasting, and 1-D operands
//! promoted to matrices (a row vector on the left, a column vector on the right) whose unit dim
//! is dropped from the result.
//!
//! Each batch is one [`sgemm`] call. When `B` carries no batch (the common "activations ×
//! weights" case), all of `A`'s batches fold into the rows of a single large GEMM instead.

use super::sgemm::{sgemm, Init, MatRef};
use super::{checked_numel, f32_fact, f32_input, f32_output};
use crate::model::{DType, Node};
use crate::ops::grad::{f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{BuildCtx, Fact, Op, OpError, Tensor};

/// A built `MatMul` node.
#[derive(Debug, Clone)]
pub struct MatMul;

/// Builds `MatMul` (no attributes).
pub fn build(_node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(MatMul))
}

/// A product resolved against concrete shapes.
#[derive(Debug)]
struct Plan {
    m: usize,
    k: usize,
    n: usize,
    /// Broadcast batch shape.
    batch: Vec<usize>,
    /// A's and B's batch dims, left-padded with 1s to `batch.len()`.
    a_batch: Vec<usize>,
    b_batch: Vec<usize>,
    out_shape: Vec<usize>,
}

/// Per output batch (in order), the element offsets of the `A` and `B` matrices it multiplies
/// (a broadcast batch dim repeats the same matrix).
fn batch_offsets(p: &Plan) -> Vec<(usize, usize)> {
    let strides = |dims: &[usize]| -> Vec<usize> {
        // Element strides of each batch dim, 0 where the dim is broadcast.
        let mut s = vec![0; dims.len()];
        let mut acc = 1;
        for i in (0..dims.len()).rev() {
            s[i] = if dims[i] == 1 { 0 } else { acc };
            acc *= dims[i];
        }
        s
    };
    let (sa, sb) = (strides(&p.a_batch), strides(&p.b_batch));
    let batches: usize = p.batch.iter().product();
    let mut idx = vec![0usize; p.batch.len()];
    let mut offsets = Vec::with_capacity(batches);
    for _ in 0..batches {
        let a_off: usize = idx.iter().zip(&sa).map(|(i, s)| i * s).sum::<usize>() * p.m * p.k;
        let b_off: usize = idx.iter().zip(&sb).map(|(i, s)| i * s).sum::<usize>() * p.k * p.n;
        offsets.push((a_off, b_off));
        // Advance the batch odometer.
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < p.batch[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    offsets
}

fn plan(a: &[usize], b: &[usize]) -> Result<Plan, OpError> {
    if a.is_empty() || b.is_empty() {
        return Err(OpError::mismatch(format!("MatMul operands must have rank ≥ 1, got shapes {a:?} and {b:?}")));
    }
    // Promote 1-D operands: [k] → [1, k] on the left, [k] → [k, 1] on the right.
    let a2: Vec<usize> = if a.len() == 1 { vec![1, a[0]] } else { a.to_vec() };
    let b2: Vec<usize> = if b.len() == 1 { vec![b[0], 1] } else { b.to_vec() };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != k2 {
        return Err(OpError::mismatch(format!(
            "shapes {a:?} and {b:?} cannot be multiplied: inner dimensions {k} and {k2} differ"
        )));
    }
    let (ab, bb) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
    let rank = ab.len().max(bb.len());
    let pad = |v: &[usize]| -> Vec<usize> {
        let mut p = vec![1; rank - v.len()];
        p.extend_from_slice(v);
        p
    };
    let (a_batch, b_batch) = (pad(ab), pad(bb));
    let batch = a_batch
        .iter()
        .zip(&b_batch)
        .map(|(&x, &y)| match (x, y) {
            _ if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(OpError::mismatch(format!("batch dims of {a:?} and {b:?} cannot be broadcast together"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut out_shape = batch.clone();
    if a.len() > 1 {
        out_shape.push(m);
    }
    if b.len() > 1 {
        out_shape.push(n);
    }
    checked_numel(&out_shape)?;
    Ok(Plan { m, k, n, batch, a_batch, b_batch, out_shape })
}

impl Op for MatMul {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let a = f32_fact(inputs, 0, "A")?;
        let b = f32_fact(inputs, 1, "B")?;
        Ok(vec![Fact::new(DType::F32, plan(&a.shape, &b.shape)?.out_shape)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let a = f32_input(inputs, 0, "A")?;
        let b = f32_input(inputs, 1, "B")?;
        let shape = |i: usize| super::input_shape(inputs, i).unwrap_or_default();
        let p = plan(shape(0), shape(1))?;
        let (m, k, n) = (p.m, p.k, p.n);
        let mut out = vec![0.0f32; checked_numel(&p.out_shape)?];
        if out.is_empty() {
            return Ok(vec![f32_output(p.out_shape, out)?]);
        }
        let batches: usize = p.batch.iter().product();
        if p.b_batch.iter().all(|&d| d == 1) {
            // B is shared by every batch: one GEMM with all of A's rows.
            let rows = batches * m;
            sgemm(1.0, MatRef::row_major(a, rows, k)?, MatRef::row_major(b, k, n)?, Init::Zero, &mut out, n)?;
        } else {
            for (o, (a_off, b_off)) in out.chunks_exact_mut(m * n).zip(batch_offsets(&p)) {
                let am = MatRef::row_major(&a[a_off..], m, k)?;
                let bm = MatRef::row_major(&b[b_off..], k, n)?;
                sgemm(1.0, am, bm, Init::Zero, o, n)?;
            }
        }
        Ok(vec![f32_output(p.out_shape, out)?])
    }

    /// Per batch, `dA += dY · Bᵀ` and `dB += Aᵀ · dY`, summed over the batches a broadcast
    /// operand was repeated for; 1-D operands take their gradient in their own shape.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let a = f32_input(inputs, 0, "A")?;
        let b = f32_input(inputs, 1, "B")?;
        let shape = |i: usize| super::input_shape(inputs, i).unwrap_or_default();
        let p = plan(shape(0), shape(1))?;
        let mut out: Grads = vec![None; inputs.len()];
        let Some(g) = out_grad(grads, 0, checked_numel(&p.out_shape)?)? else { return Ok(out) };
        let (m, k, n) = (p.m, p.k, p.n);
        let (mut da, mut db) = (vec![0.0f32; a.len()], vec![0.0f32; b.len()]);
        if !g.is_empty() && p.b_batch.iter().all(|&d| d == 1) {
            // As in the forward: A's batches are the rows of one matrix.
            let rows = p.batch.iter().product::<usize>() * m;
            let (am, gm) = (MatRef::row_major(a, rows, k)?, MatRef::row_major(g, rows, n)?);
            sgemm(1.0, gm, MatRef::row_major(b, k, n)?.t(), Init::Zero, &mut da, k)?;
            sgemm(1.0, am.t(), gm, Init::Zero, &mut db, n)?;
        } else if !g.is_empty() {
            for (gb, (a_off, b_off)) in g.chunks_exact(m * n).zip(batch_offsets(&p)) {
                let gm = MatRef::row_major(gb, m, n)?;
                let am = MatRef::row_major(&a[a_off..], m, k)?;
                let bm = MatRef::row_major(&b[b_off..], k, n)?;
                sgemm(1.0, gm, bm.t(), Init::Accumulate, &mut da[a_off..], k)?;
                sgemm(1.0, am.t(), gm, Init::Accumulate, &mut db[b_off..], n)?;
            }
        }
        out[0] = Some(f32_tensor(shape(0).to_vec(), da));
        out[1] = Some(f32_tensor(shape(1).to_vec(), db));
        Ok(out)
    }
}
