//! Split: cuts a tensor along an axis into the node's outputs. Sizes come from the `split`
//! attribute (before opset 13) or input 1 (after); without them the parts are equal, and from
//! opset 18 (`num_outputs`) the last part may be smaller when the size does not divide evenly.

use super::args::{axis, dim, known_ints, Inputs};
use super::elem::{dispatch, typed, Elem};
use crate::model::{DType, Node, Tensor};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{input, BuildCtx, Fact, Op, OpError};

/// Split.
#[derive(Debug, Clone)]
pub struct Split {
    axis: i64,
    split_attr: Option<Vec<i64>>,
    outputs: usize,
    /// `num_outputs` was given (opset 18): an uneven last part is allowed.
    uneven: bool,
}

/// Builds Split; the number of parts is the node's output count.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let outputs = node.outputs.len();
    let num_outputs = node.attrs.int_opt("num_outputs");
    if let Some(n) = num_outputs.filter(|&n| n != outputs as i64) {
        return Err(OpError::malformed(format!("num_outputs is {n} but the node has {outputs} outputs")));
    }
    if outputs == 0 {
        return Err(OpError::malformed("Split needs at least one output"));
    }
    Ok(Box::new(Split {
        axis: node.attrs.int("axis", 0),
        split_attr: node.attrs.ints("split").map(<[i64]>::to_vec),
        outputs,
        uneven: num_outputs.is_some(),
    }))
}

impl Split {
    /// The axis, the part sizes along it, and the input's type and shape.
    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<(usize, Vec<usize>, DType, Vec<usize>), OpError> {
        let shape = x.shape(0)?.to_vec();
        let a = axis(self.axis, shape.len())?;
        let total = shape[a];
        let given = match &self.split_attr {
            Some(s) => Some(s.clone()),
            None => known_ints(x, 1, "split sizes")?,
        };
        let sizes = match given {
            Some(s) => {
                let sizes = s.iter().map(|&v| dim(v, "split")).collect::<Result<Vec<_>, _>>()?;
                if sizes.len() != self.outputs || sizes.iter().try_fold(0usize, |t, &v| t.checked_add(v)) != Some(total)
                {
                    return Err(OpError::mismatch(format!(
                        "split sizes {s:?} must be {} values summing to the axis size {total}",
                        self.outputs
                    )));
                }
                sizes
            }
            None if total % self.outputs == 0 => vec![total / self.outputs; self.outputs],
            None if self.uneven => {
                let chunk = total.div_ceil(self.outputs);
                let last = total.checked_sub(chunk * (self.outputs - 1)).filter(|&l| l > 0).ok_or_else(|| {
                    OpError::mismatch(format!(
                        "an axis of size {total} cannot be split into {} non-empty parts",
                        self.outputs
                    ))
                })?;
                let mut v = vec![chunk; self.outputs - 1];
                v.push(last);
                v
            }
            None => {
                return Err(OpError::mismatch(format!(
                    "an axis of size {total} cannot be split into {} equal parts",
                    self.outputs
                )))
            }
        };
        Ok((a, sizes, x.dtype(0)?, shape))
    }
}

impl Split {
    /// `axis` (may be negative).
    pub fn axis(&self) -> i64 {
        self.axis
    }
}

impl Op for Split {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (a, sizes, dtype, shape) = self.plan(inputs)?;
        Ok(sizes
            .into_iter()
            .map(|s| {
                let mut part = shape.clone();
                part[a] = s;
                Fact::new(dtype, part)
            })
            .collect())
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let (a, sizes, dtype, shape) = self.plan(inputs)?;
        let outer: usize = shape[..a].iter().product();
        let inner: usize = shape[a + 1..].iter().product();
        let row = shape[a] * inner;
        let mut start = 0;
        let mut parts = Vec::with_capacity(sizes.len());
        for s in sizes {
            let (from, len) = (start * inner, s * inner);
            let data = dispatch!(dtype, T => {
                let src = typed::<T>(x)?;
                T::wrap((0..outer).flat_map(|o| &src[o * row + from..o * row + from + len]).copied().collect())
            });
            let mut part = shape.clone();
            part[a] = s;
            parts.push(Tensor { shape: part, data });
            start += s;
        }
        Ok(parts)
    }

    /// The parts' gradients joined back along the axis; a part without one (not on the way to
    /// the loss) contributes zeros. The split sizes take none.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let x = f32_in(inputs, 0)?;
        crate::ops::nn::f32_data(x, "input")?;
        let (a, sizes, _, shape) = self.plan(inputs)?;
        let mut out: Grads = vec![None; inputs.len()];
        let outer: usize = shape[..a].iter().product();
        let inner: usize = shape[a + 1..].iter().product();
        let parts: Vec<Option<&[f32]>> =
            (0..sizes.len()).map(|i| out_grad(grads, i, outer * sizes[i] * inner)).collect::<Result<_, _>>()?;
        if parts.iter().all(Option::is_none) {
            return Ok(out);
        }
        let mut dx = Vec::with_capacity(x.len());
        for o in 0..outer {
            for (p, &s) in parts.iter().zip(&sizes) {
                let len = s * inner;
                match p {
                    Some(p) => dx.extend_from_slice(&p[o * len..(o + 1) * len]),
                    None => dx.resize(dx.len() + len, 0.0),
                }
            }
        }
        out[0] = Some(f32_tensor(shape, dx));
        Ok(out)
    }
}
