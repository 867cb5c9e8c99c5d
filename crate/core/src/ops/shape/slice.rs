//! Slice: a strided sub-tensor. Before opset 10 `starts`, `ends` and `axes` are attributes;
//! from opset 10 they are inputs 1–3 with optional `steps` (input 4), which may be negative.
//! Out-of-range starts and ends clamp (exporters write INT64_MAX for "to the end").

use super::args::{axes, checked_numel, known_ints, Inputs};
use super::elem::strided_view;
use crate::model::{strides, Node, Tensor};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::math::broadcast::for_each_offset;
use crate::ops::{input, BuildCtx, Fact, Op, OpError};

/// Slice.
#[derive(Debug, Clone)]
pub struct Slice {
    /// The attributes before opset 10; `None` means inputs.
    attrs: Option<SliceAttrs>,
}

/// Slice's arguments in attribute form (opset < 10, no steps).
#[derive(Debug, Clone)]
struct SliceAttrs {
    starts: Vec<i64>,
    ends: Vec<i64>,
    axes: Option<Vec<i64>>,
}

/// Builds Slice.
pub fn build(node: &Node, ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let attrs = if ctx.opset < 10 {
        let get = |n: &str| node.attrs.ints(n).map(<[i64]>::to_vec);
        let starts =
            get("starts").ok_or_else(|| OpError::malformed("Slice (opset < 10) needs the `starts` attribute"))?;
        let ends = get("ends").ok_or_else(|| OpError::malformed("Slice (opset < 10) needs the `ends` attribute"))?;
        Some(SliceAttrs { starts, ends, axes: get("axes") })
    } else {
        None
    };
    Ok(Box::new(Slice { attrs }))
}

/// One sliced axis: first index and step along it, and the resulting length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range1 {
    /// First index read.
    pub start: i64,
    /// Step between indices (non-zero).
    pub step: i64,
    /// Number of indices.
    pub len: usize,
}

/// The ONNX slice of an axis of size `dim`: negative start/end count from the end, then both
/// clamp to the valid range for the step's direction.
pub fn slice_axis(dim: usize, start: i64, end: i64, step: i64) -> Result<Range1, OpError> {
    if step == 0 {
        return Err(OpError::malformed("a slice step cannot be 0"));
    }
    let d = dim as i64;
    let wrap = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (s, e) = (wrap(start), wrap(end));
    // Work in i128 so that steps and ends near the i64 limits cannot overflow.
    let (s, e, st) = if step > 0 {
        (s.clamp(0, d) as i128, e.clamp(0, d) as i128, step as i128)
    } else {
        (s.max(0).min(d - 1) as i128, e.max(-1).min(d - 1) as i128, step as i128)
    };
    let span = if step > 0 { e - s } else { s - e };
    let len = if span > 0 { ((span - 1) / st.abs() + 1) as usize } else { 0 };
    Ok(Range1 { start: s as i64, step, len })
}

impl Slice {
    /// Per input axis its range, and the output shape, for input 0's fact and the other
    /// inputs' constant facts: what another executor needs to copy exactly this slice.
    pub fn ranges(&self, inputs: &[Option<&Fact>]) -> Result<(Vec<Range1>, Vec<usize>), OpError> {
        self.plan(inputs)
    }

    /// Per input axis its range, and the output shape.
    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<(Vec<Range1>, Vec<usize>), OpError> {
        let shape = x.shape(0)?;
        let (starts, ends, axes_list, steps) = match &self.attrs {
            Some(a) => (a.starts.clone(), a.ends.clone(), a.axes.clone(), None),
            None => (
                known_ints(x, 1, "starts")?.ok_or_else(|| OpError::malformed("Slice needs starts (input 1)"))?,
                known_ints(x, 2, "ends")?.ok_or_else(|| OpError::malformed("Slice needs ends (input 2)"))?,
                known_ints(x, 3, "axes")?,
                known_ints(x, 4, "steps")?,
            ),
        };
        let n = starts.len();
        let axes_list = axes_list.unwrap_or_else(|| (0..n as i64).collect());
        let steps = steps.unwrap_or_else(|| vec![1; n]);
        if ends.len() != n || axes_list.len() != n || steps.len() != n {
            return Err(OpError::malformed(format!(
                "starts, ends, axes and steps must have one length, got {n}, {}, {}, {}",
                ends.len(),
                axes_list.len(),
                steps.len()
            )));
        }
        let ax = axes(&axes_list, shape.len())?;
        let mut ranges: Vec<Range1> = shape.iter().map(|&d| Range1 { start: 0, step: 1, len: d }).collect();
        for (k, &a) in ax.iter().enumerate() {
            ranges[a] = slice_axis(shape[a], starts[k], ends[k], steps[k])?;
        }
        let out = ranges.iter().map(|r| r.len).collect();
        Ok((ranges, out))
    }
}

impl Op for Slice {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(vec![Fact::new(inputs.dtype(0)?, self.plan(inputs)?.1)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let (ranges, out) = self.plan(inputs)?;
        let (view, base) = view(&x.shape, &ranges);
        Ok(vec![strided_view(x, out, &view, base)?])
    }

    /// The gradient placed back where the slice read it from; zeros elsewhere. The starts,
    /// ends, axes and steps take none.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let x = f32_in(inputs, 0)?;
        crate::ops::nn::f32_data(x, "data")?;
        let (ranges, out) = self.plan(inputs)?;
        let mut res: Grads = vec![None; inputs.len()];
        let Some(g) = out_grad(grads, 0, checked_numel(&out)?)? else { return Ok(res) };
        let mut dx = vec![0.0f32; x.len()];
        let (view, base) = view(&x.shape, &ranges);
        let own: Vec<isize> = strides(&out).iter().map(|&s| s as isize).collect();
        for_each_offset(&out, [&view, &own], [base, 0], |[i, o]| {
            // Steps never revisit an element, so each is written once.
            *dx.get_mut(i).ok_or_else(|| OpError::internal("the slice reads past its input"))? = g[o];
            Ok(())
        })?;
        res[0] = Some(f32_tensor(x.shape.clone(), dx));
        Ok(res)
    }
}

/// The strides (per output axis, into the input) and the offset of the slice's first element.
fn view(shape: &[usize], ranges: &[Range1]) -> (Vec<isize>, isize) {
    let own = strides(shape);
    let base = ranges.iter().zip(&own).map(|(r, &s)| r.start as isize * s as isize).sum();
    // A step only matters between two elements; skipping it for length ≤ 1 keeps huge steps
    // (INT64_MIN) from overflowing.
    let view =
        ranges.iter().zip(&own).map(|(r, &s)| if r.len > 1 { r.step as isize * s as isize } else { 0 }).collect();
    (view, base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_and_reverses() {
        assert_eq!(slice_axis(5, 1, i64::MAX, 1).unwrap(), Range1 { start: 1, step: 1, len: 4 });
        assert_eq!(slice_axis(5, -1, i64::MIN, -1).unwrap(), Range1 { start: 4, step: -1, len: 5 });
        assert_eq!(slice_axis(5, 10, -10, -2).unwrap(), Range1 { start: 4, step: -2, len: 3 });
        assert_eq!(slice_axis(5, 0, 5, i64::MAX).unwrap().len, 1);
        assert_eq!(slice_axis(0, -1, i64::MIN, -1).unwrap().len, 0);
        assert_eq!(slice_axis(5, 3, 1, 1).unwrap().len, 0);
        assert!(slice_axis(5, 0, 5, 0).is_err());
    }
}
