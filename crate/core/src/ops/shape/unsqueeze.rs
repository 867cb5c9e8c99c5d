//! Unsqueeze: inserts size-1 dimensions at the listed output positions (`axes` attribute before
//! opset 13, input 1 after); negative axes count from the end of the *output*.

use super::args::{axes, known_ints, Inputs};
use crate::model::Node;
use crate::ops::{BuildCtx, Op, OpError};

/// Unsqueeze.
#[derive(Debug, Clone)]
pub struct Unsqueeze {
    axes_attr: Option<Vec<i64>>,
}

/// Builds Unsqueeze.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Unsqueeze { axes_attr: node.attrs.ints("axes").map(<[i64]>::to_vec) }))
}

impl Unsqueeze {
    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<Vec<usize>, OpError> {
        let shape = x.shape(0)?;
        let list = match &self.axes_attr {
            Some(a) => a.clone(),
            None => known_ints(x, 1, "axes")?
                .ok_or_else(|| OpError::malformed("Unsqueeze needs axes (input 1 or the `axes` attribute)"))?,
        };
        let ax = axes(&list, shape.len() + list.len())?;
        let mut rest = shape.iter();
        Ok((0..shape.len() + ax.len()).map(|i| if ax.contains(&i) { 1 } else { *rest.next().unwrap_or(&1) }).collect())
    }
}

super::reshape_like_op!(Unsqueeze);
