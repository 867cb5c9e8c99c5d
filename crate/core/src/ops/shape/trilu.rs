//! Trilu: the upper (`upper = 1`, the default) or lower triangle of the last two axes, from
//! diagonal `k` (input 1, an int64 scalar; 0 is the main diagonal, positive above it); the rest
//! is zero. Transformers export causal masks through it (`torch.triu` / `torch.tril`).

use super::elem::{dispatch, typed, Elem};
use crate::model::{Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// Trilu.
#[derive(Debug, Clone)]
pub struct Trilu {
    upper: bool,
}

/// Builds Trilu.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Trilu { upper: node.attrs.int("upper", 1) != 0 }))
}

fn check(shape: &[usize]) -> Result<(), OpError> {
    if shape.len() < 2 {
        return Err(OpError::mismatch(format!("Trilu needs a tensor of rank 2 or more, got shape {shape:?}")));
    }
    Ok(())
}

impl Op for Trilu {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        check(&x.shape)?;
        if let Some(k) = inputs.get(1).copied().flatten() {
            if k.shape.iter().product::<usize>() != 1 {
                return Err(OpError::mismatch(format!("k must be one value, got shape {:?}", k.shape)));
            }
        }
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        check(&x.shape)?;
        let k = match inputs.get(1).copied().flatten() {
            None => 0,
            Some(t) => match t.to_i64_vec().map_err(|e| OpError::mismatch(format!("k: {e}")))?[..] {
                [k] => k,
                ref v => return Err(OpError::mismatch(format!("k must be one value, got {} values", v.len()))),
            },
        };
        let (rows, cols) = (x.shape[x.shape.len() - 2], x.shape[x.shape.len() - 1]);
        // Whether element (i, j) of each matrix is kept: j − i ≥ k above, ≤ k below.
        let keep = |i: usize, j: usize| {
            let d = j as i64 - i as i64;
            if self.upper {
                d >= k
            } else {
                d <= k
            }
        };
        let data = dispatch!(x.dtype(), T => {
            let mut v = typed::<T>(x)?.to_vec();
            if rows * cols > 0 {
                for m in v.chunks_exact_mut(rows * cols) {
                    for (i, row) in m.chunks_exact_mut(cols).enumerate() {
                        for (j, e) in row.iter_mut().enumerate() {
                            if !keep(i, j) {
                                *e = T::default();
                            }
                        }
                    }
                }
            }
            T::wrap(v)
        });
        Ok(vec![Tensor { shape: x.shape.clone(), data }])
    }
}
