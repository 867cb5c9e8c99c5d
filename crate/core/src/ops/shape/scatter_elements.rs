//! ScatterElements: a copy of `data` where, for every position `i…` of `indices`, the element
//! at `i…` with `i[axis]` replaced by `indices[i…]` takes `updates[i…]`, or is combined with it by
//! `reduction` (`add`, `mul`, `max`, `min`; opsets 16 and 18). Updates apply in index order, so
//! with `none` a repeated index keeps the last one, as onnxruntime does. torchvision's
//! multi-scale RoI pooling (Faster R-CNN) merges its levels with it.

use super::args::{axis, Inputs};
use super::elem::{dispatch, typed, Elem};
use super::gather::AlongAxis;
use super::scatter_nd::{combine, reduction, Reduction};
use crate::model::{strides, Node, Tensor};
use crate::ops::math::broadcast::for_each_offset;
use crate::ops::{input, BuildCtx, Fact, Op, OpError};

/// ScatterElements (and its deprecated alias Scatter).
#[derive(Debug, Clone)]
pub struct ScatterElements {
    axis: i64,
    reduction: Reduction,
}

/// Builds ScatterElements.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(ScatterElements { axis: node.attrs.int("axis", 0), reduction: reduction(node)? }))
}

impl AlongAxis for ScatterElements {
    fn axis_attr(&self) -> i64 {
        self.axis
    }

    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<(usize, Vec<usize>), OpError> {
        let (data, idx, upd) = (x.shape(0)?, x.shape(1)?, x.shape(2)?);
        let a = axis(self.axis, data.len())?;
        if idx != upd {
            return Err(OpError::mismatch(format!("indices {idx:?} and updates {upd:?} must have one shape")));
        }
        let fits = idx.len() == data.len() && (0..idx.len()).all(|d| d == a || idx[d] <= data[d]);
        if !fits {
            return Err(OpError::mismatch(format!(
                "indices of shape {idx:?} do not fit data of shape {data:?} outside axis {}",
                self.axis
            )));
        }
        if x.dtype(2)? != x.dtype(0)? {
            return Err(OpError::mismatch("updates and data must have the same type"));
        }
        Ok((a, data.to_vec()))
    }
}

impl Op for ScatterElements {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        self.infer_facts(inputs)
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (x, a, _, indices) = self.operands(inputs)?;
        let upd = input(inputs, 2)?;
        let shape = upd.shape.clone();
        // Walk the indices' shape: the target is the data's offset with the axis zeroed, plus
        // the index along the axis.
        let own = strides(&x.shape);
        let mut view: Vec<isize> = own.iter().map(|&s| s as isize).collect();
        view[a] = 0;
        let idx_strides: Vec<isize> = strides(&shape).iter().map(|&s| s as isize).collect();
        let r = self.reduction;
        let data = dispatch!(x.dtype(), T => {
            let mut out = typed::<T>(x)?.to_vec();
            let u = typed::<T>(upd)?;
            for_each_offset(&shape, [&view, &idx_strides], [0, 0], |[d, i]| {
                let at = d + indices[i] * own[a];
                out[at] = combine(r, out[at], u[i]);
                Ok(())
            })?;
            T::wrap(out)
        });
        Ok(vec![Tensor { shape: x.shape.clone(), data }])
    }
}
