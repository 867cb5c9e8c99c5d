//! Transpose: permutes dimensions (`perm`, default reversed) — a strided view, copied out.

use super::args::Inputs;
use super::elem::strided_view;
use crate::model::{strides, Node, Tensor};
use crate::ops::grad::{f32_in, Backward, GradError, Grads};
use crate::ops::{input, BuildCtx, Fact, Op, OpError};

/// Transpose.
#[derive(Debug, Clone)]
pub struct Transpose {
    perm: Option<Vec<i64>>,
}

/// Builds Transpose.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Transpose { perm: node.attrs.ints("perm").map(<[i64]>::to_vec) }))
}

impl Transpose {
    /// The permutation for a tensor of `rank`, validated.
    pub fn perm(&self, rank: usize) -> Result<Vec<usize>, OpError> {
        let Some(p) = &self.perm else { return Ok((0..rank).rev().collect()) };
        let mut seen = vec![false; rank];
        if p.len() != rank {
            return Err(OpError::malformed(format!("perm {p:?} has {} entries for a tensor of rank {rank}", p.len())));
        }
        p.iter()
            .map(|&a| match usize::try_from(a).ok().filter(|&a| a < rank) {
                Some(a) if !std::mem::replace(&mut seen[a], true) => Ok(a),
                _ => Err(OpError::malformed(format!("perm {p:?} is not a permutation of 0..{rank}"))),
            })
            .collect()
    }

    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<(Vec<usize>, Vec<usize>), OpError> {
        let shape = x.shape(0)?;
        let perm = self.perm(shape.len())?;
        let out = perm.iter().map(|&a| shape[a]).collect();
        Ok((perm, out))
    }
}

impl Op for Transpose {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(vec![Fact::new(inputs.dtype(0)?, self.plan(inputs)?.1)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let (perm, out) = self.plan(inputs)?;
        let own = strides(&x.shape);
        let view: Vec<isize> = perm.iter().map(|&a| own[a] as isize).collect();
        Ok(vec![strided_view(x, out, &view, 0)?])
    }

    /// The gradient transposed back (by the inverse permutation).
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let x = f32_in(inputs, 0)?;
        let Some(g) = grads.first().copied().flatten() else { return Ok(vec![None]) };
        let perm = self.perm(x.shape.len())?;
        let mut inverse = vec![0i64; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i as i64;
        }
        let back = Transpose { perm: Some(inverse) }.eval(&[Some(g)])?;
        Ok(back.into_iter().map(Some).collect())
    }
}
