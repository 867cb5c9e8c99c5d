//! TopK: the `k` largest (or smallest) values along one axis and their int64 indices, sorted
//! best first. Equal values keep their input order (lower index first), as ONNX specifies; NaN
//! counts as larger than every number. `k` is an input from opset 10 (an attribute before) and
//! must be known at plan time (it sets the output shape); end-to-end detector exports (YOLOv10,
//! `nms=False` Ultralytics exports) compute it from constants, so it folds.

use crate::model::{DType, Data, Node, Tensor};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::shape::args::{axis, known_ints, Inputs};
use crate::ops::shape::elem::{dispatch, tensor, typed, Elem};
use crate::ops::{input, BuildCtx, Fact, Op, OpError, Registry};
use std::cmp::Ordering;

/// TopK with its attributes resolved.
#[derive(Debug, Clone)]
pub struct TopK {
    axis: i64,
    largest: bool,
    /// `k` from the attribute (opset < 10); from input 1 otherwise.
    k_attr: Option<i64>,
}

/// Adds TopK to the registry.
pub fn register(r: &mut Registry) {
    r.register("TopK", build);
}

fn build(node: &Node, c: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(TopK {
        axis: node.attrs.int("axis", -1),
        largest: node.attrs.int("largest", 1) != 0,
        k_attr: (c.opset < 10).then(|| node.attrs.int("k", -1)),
    }))
}

impl TopK {
    /// The axis, `k` and the output shape.
    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<(usize, usize, Vec<usize>), OpError> {
        if x.dtype(0)? == DType::Bool {
            return Err(OpError::mismatch("expects a numeric input, got bool"));
        }
        let shape = x.shape(0)?;
        let a = axis(self.axis, shape.len())?;
        let k = match self.k_attr {
            Some(k) => k,
            None => match known_ints(x, 1, "k")?.as_deref() {
                Some([k]) => *k,
                Some(v) => return Err(OpError::malformed(format!("k must hold one value, got {} values", v.len()))),
                None => return Err(OpError::malformed("input 1 (k) is missing")),
            },
        };
        if k < 0 || k as usize > shape[a] {
            return Err(OpError::mismatch(format!(
                "k is {k}, but axis {a} has {} elements: use 0 ≤ k ≤ {}",
                shape[a], shape[a]
            )));
        }
        let mut out = shape.to_vec();
        out[a] = k as usize;
        Ok((a, k as usize, out))
    }

    fn select<T: Elem>(&self, x: &Tensor, a: usize, k: usize) -> Result<(Vec<T>, Vec<i64>), OpError> {
        let src = typed::<T>(x)?;
        let (n, inner) = (x.shape[a], x.shape[a + 1..].iter().product::<usize>());
        let outer = x.shape[..a].iter().product::<usize>();
        // NaN (the one value not equal to itself) is the largest: first for `largest`, else last.
        let nan = |v: T| v.partial_cmp(&v).is_none();
        let cmp = |p: T, q: T| -> Ordering {
            match (nan(p), nan(q)) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => p.partial_cmp(&q).unwrap_or(Ordering::Equal),
            }
        };
        let (mut vals, mut idx) = (Vec::with_capacity(outer * k * inner), vec![0i64; outer * k * inner]);
        vals.resize(outer * k * inner, T::default());
        let mut order: Vec<usize> = Vec::with_capacity(n);
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| src[(o * n + j) * inner + i];
                order.clear();
                order.extend(0..n);
                // Stable: ties keep the lower index first.
                if self.largest {
                    order.sort_by(|&p, &q| cmp(at(q), at(p)));
                } else {
                    order.sort_by(|&p, &q| cmp(at(p), at(q)));
                }
                for (r, &j) in order.iter().take(k).enumerate() {
                    let dst = (o * k + r) * inner + i;
                    vals[dst] = at(j);
                    idx[dst] = j as i64;
                }
            }
        }
        Ok((vals, idx))
    }
}

impl Op for TopK {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (_, _, shape) = self.plan(inputs)?;
        Ok(vec![Fact::new(inputs.dtype(0)?, shape.clone()), Fact::new(DType::I64, shape)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let (a, k, shape) = self.plan(inputs)?;
        let values = dispatch!(x.dtype(), T => {
            let (v, i) = self.select::<T>(x, a, k)?;
            (tensor(shape.clone(), v), i)
        });
        Ok(vec![values.0, Tensor { shape, data: Data::I64(values.1) }])
    }

    /// The values' gradient goes back to the elements they were taken from; the rest of the
    /// input gets none (0), and the indices carry none.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let mut out: Grads = vec![None; b.inputs.len()];
        let x = f32_in(b.inputs, 0)?;
        let (a, k, shape) = self.plan(b.inputs)?;
        let Some(g) = out_grad(b.grads, 0, shape.iter().product())? else { return Ok(out) };
        let idx = match b.outputs.get(1).copied().flatten() {
            Some(t) => t.to_i64_vec().map_err(OpError::internal)?,
            None => self.select::<f32>(x, a, k)?.1,
        };
        let (n, inner) = (x.shape[a], x.shape[a + 1..].iter().product::<usize>());
        let mut dx = vec![0.0f32; x.len()];
        for (dst, (&j, &gv)) in idx.iter().zip(g).enumerate() {
            let (o, i) = (dst / (k * inner), dst % inner);
            dx[(o * n + j as usize) * inner + i] += gv;
        }
        out[0] = Some(f32_tensor(x.shape.clone(), dx));
        Ok(out)
    }
}
