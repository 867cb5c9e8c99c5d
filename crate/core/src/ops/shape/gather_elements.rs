//! GatherElements: `out[i…] = data[i… with i[axis] replaced by indices[i…]]`; the output has
//! the indices' shape, which must fit inside the data's on every other axis.

use super::args::{axis, Inputs};
use super::elem::{dispatch, typed, Elem};
use super::gather::AlongAxis;
use crate::model::{strides, Node, Tensor};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::math::broadcast::for_each_offset;
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// GatherElements.
#[derive(Debug, Clone)]
pub struct GatherElements {
    axis: i64,
}

/// Builds GatherElements.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(GatherElements { axis: node.attrs.int("axis", 0) }))
}

impl AlongAxis for GatherElements {
    fn axis_attr(&self) -> i64 {
        self.axis
    }

    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<(usize, Vec<usize>), OpError> {
        let (data, idx) = (x.shape(0)?, x.shape(1)?);
        let a = axis(self.axis, data.len())?;
        let fits = idx.len() == data.len() && (0..idx.len()).all(|d| d == a || idx[d] <= data[d]);
        if !fits {
            return Err(OpError::mismatch(format!(
                "indices of shape {idx:?} do not fit data of shape {data:?} outside axis {}",
                self.axis
            )));
        }
        Ok((a, idx.to_vec()))
    }
}

impl Op for GatherElements {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        self.infer_facts(inputs)
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (x, a, shape, indices) = self.operands(inputs)?;
        // Walk the indices' shape, reading data through its own strides with the axis zeroed;
        // the index itself supplies the position along the axis.
        let own = strides(&x.shape);
        let mut view: Vec<isize> = own.iter().map(|&s| s as isize).collect();
        view[a] = 0;
        let idx_strides: Vec<isize> = strides(&shape).iter().map(|&s| s as isize).collect();
        let data = dispatch!(x.dtype(), T => {
            let src = typed::<T>(x)?;
            let mut out = Vec::with_capacity(indices.len());
            for_each_offset(&shape, [&view, &idx_strides], [0, 0], |[d, i]| {
                out.push(src[d + indices[i] * own[a]]);
                Ok(())
            })?;
            T::wrap(out)
        });
        Ok(vec![Tensor { shape, data }])
    }

    /// The data's gradient: each output element's gradient added back where it was read
    /// (an element read twice gets both). The indices take none.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let mut out: Grads = vec![None; b.inputs.len()];
        let x = f32_in(b.inputs, 0)?;
        let (_, a, shape, indices) = self.operands(b.inputs)?;
        let Some(g) = out_grad(b.grads, 0, indices.len())? else { return Ok(out) };
        let own = strides(&x.shape);
        let mut view: Vec<isize> = own.iter().map(|&s| s as isize).collect();
        view[a] = 0;
        let idx_strides: Vec<isize> = strides(&shape).iter().map(|&s| s as isize).collect();
        let mut dx = vec![0.0f32; x.len()];
        for_each_offset(&shape, [&view, &idx_strides], [0, 0], |[d, i]| {
            dx[d + indices[i] * own[a]] += g[i];
            Ok(())
        })?;
        out[0] = Some(f32_tensor(x.shape.clone(), dx));
        Ok(out)
    }
}
