//! Squeeze: removes size-1 dimensions — the listed ones (`axes` attribute before opset 13,
//! input 1 after), or all of them when none (or an empty list) are given.

use super::args::{axes, known_ints, Inputs};
use crate::model::Node;
use crate::ops::{BuildCtx, Op, OpError};

/// Squeeze.
#[derive(Debug, Clone)]
pub struct Squeeze {
    axes_attr: Option<Vec<i64>>,
}

/// Builds Squeeze.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Squeeze { axes_attr: node.attrs.ints("axes").map(<[i64]>::to_vec) }))
}

impl Squeeze {
    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<Vec<usize>, OpError> {
        let shape = x.shape(0)?;
        let list = match &self.axes_attr {
            Some(a) => Some(a.clone()),
            None => known_ints(x, 1, "axes")?,
        };
        // An empty list means the same as none (as ONNX Runtime reads it).
        let Some(list) = list.filter(|l| !l.is_empty()) else {
            return Ok(shape.iter().copied().filter(|&d| d != 1).collect());
        };
        let ax = axes(&list, shape.len())?;
        if let Some(&a) = ax.iter().find(|&&a| shape[a] != 1) {
            return Err(OpError::mismatch(format!(
                "cannot squeeze axis {a} of shape {shape:?}: its size is {}, not 1",
                shape[a]
            )));
        }
        Ok(shape.iter().enumerate().filter(|(i, _)| !ax.contains(i)).map(|(_, &d)| d).collect())
    }
}

super::reshape_like_op!(Squeeze);
