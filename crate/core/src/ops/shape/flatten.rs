//! Flatten: to 2-D `[∏ dims before axis, ∏ dims from axis]`; axis in `[-rank, rank]`.

use super::args::Inputs;
use crate::model::Node;
use crate::ops::{BuildCtx, Op, OpError};

/// Flatten.
#[derive(Debug, Clone)]
pub struct Flatten {
    axis: i64,
}

/// Builds Flatten.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Flatten { axis: node.attrs.int("axis", 1) }))
}

impl Flatten {
    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<Vec<usize>, OpError> {
        let shape = x.shape(0)?;
        let r = shape.len() as i64;
        // Unlike most axes, `rank` itself is valid here (everything goes to the first dim).
        if self.axis < -r || self.axis > r {
            return Err(OpError::malformed(format!(
                "axis {} is out of range for a tensor of rank {r} (valid: {} to {r})",
                self.axis, -r
            )));
        }
        let a = if self.axis < 0 { self.axis + r } else { self.axis } as usize;
        Ok(vec![shape[..a].iter().product(), shape[a..].iter().product()])
    }
}

super::reshape_like_op!(Flatten);
