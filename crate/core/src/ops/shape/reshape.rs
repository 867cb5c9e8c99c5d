//! Reshape: the same elements under a new shape. In the target shape, `-1` (at most once) is
//! inferred from the element count and `0` copies the input's dimension at that index — unless
//! `allowzero` (opset 14) makes 0 a real zero-sized dimension.

use super::args::{known_ints, Inputs};
use crate::model::{numel, Node};
use crate::ops::{BuildCtx, Op, OpError};

/// Reshape.
#[derive(Debug, Clone)]
pub struct Reshape {
    allowzero: bool,
}

/// Builds Reshape.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Reshape { allowzero: node.attrs.int("allowzero", 0) != 0 }))
}

/// The output shape for `input` reshaped to `spec` (ONNX rules for 0 and −1).
pub fn reshaped(input: &[usize], spec: &[i64], allowzero: bool) -> Result<Vec<usize>, OpError> {
    let n = numel(input).map_err(OpError::limit)?;
    let mut out = Vec::with_capacity(spec.len());
    let mut inferred = None;
    for (i, &d) in spec.iter().enumerate() {
        out.push(match d {
            -1 if inferred.is_some() => {
                return Err(OpError::malformed(format!("the shape {spec:?} has more than one -1")))
            }
            -1 => {
                inferred = Some(i);
                1
            }
            0 if !allowzero => *input.get(i).ok_or_else(|| {
                OpError::mismatch(format!(
                    "the shape {spec:?} copies dimension {i} (0), but the input {input:?} has only {} dimensions",
                    input.len()
                ))
            })?,
            d => usize::try_from(d)
                .map_err(|_| OpError::malformed(format!("the shape {spec:?} has an invalid dimension {d}")))?,
        });
    }
    if let Some(i) = inferred {
        if allowzero && spec.contains(&0) {
            return Err(OpError::malformed(format!(
                "the shape {spec:?} has both -1 and 0 with allowzero set, so -1 is ambiguous"
            )));
        }
        let known = numel(&out).map_err(OpError::limit)?;
        if known == 0 || n % known != 0 {
            return Err(OpError::mismatch(format!(
                "cannot reshape {input:?} ({n} elements) into {spec:?}: -1 has no integer value"
            )));
        }
        out[i] = n / known;
    }
    if numel(&out).ok() != Some(n) {
        return Err(OpError::mismatch(format!("cannot reshape {input:?} ({n} elements) into {spec:?} ({out:?})")));
    }
    Ok(out)
}

impl Reshape {
    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<Vec<usize>, OpError> {
        let spec = known_ints(x, 1, "target shape")?
            .ok_or_else(|| OpError::malformed("Reshape needs its shape input (input 1)"))?;
        reshaped(x.shape(0)?, &spec, self.allowzero)
    }
}

super::reshape_like_op!(Reshape);
