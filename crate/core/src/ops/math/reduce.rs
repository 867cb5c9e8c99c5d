//! Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
//! ReduceSumSquare, ReduceLogSum, ReduceLogSumExp — one [`Reduce`] op parameterised by a
//! [`Reducer`] (each element mapped, combined, the result finished: `ReduceL2` is `√Σx²`).
//!
//! Axes come from the `axes` attribute (before opset 18; before 13 for ReduceSum) or from the
//! optional input 1 (after). No axes means all axes, unless `noop_with_empty_axes` asks for the
//! identity. Floats accumulate in f64 (this is the numerical reference); integers in wrapping i64.

use super::broadcast::for_each_offset;
use crate::model::{strides, DType, Data, Node, Tensor};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::shape::args::{axes, known_ints, Inputs};
use crate::ops::shape::elem::{dispatch, dtype_name, typed, Elem};
use crate::ops::{input, BuildCtx, Fact, Op, OpError, Registry};

/// How a reduction combines elements.
#[derive(Debug, Clone, Copy)]
pub struct Reducer {
    init_f: f64,
    step_f: fn(f64, f64) -> f64,
    init_i: i64,
    step_i: fn(i64, i64) -> i64,
    /// Divide by the element count at the end.
    mean: bool,
    /// Also reduces bools (opset 20 ReduceMax = any, ReduceMin = all).
    boolean: bool,
    /// Applied to each float element before combining (`|x|`, `x²`, `eˣ`).
    map_f: fn(f64) -> f64,
    /// Applied to each float result (`√`, `ln`).
    finish_f: fn(f64) -> f64,
    /// Applied to each integer element; `None`: the reduction takes floats only.
    map_i: Option<fn(i64) -> i64>,
    /// Its backward, where it has one.
    grad: Option<Grad>,
}

/// How a reduction's gradient reaches each element `x` of its set, from the result `y`.
#[derive(Debug, Clone, Copy)]
enum Grad {
    /// `dy` (ReduceSum; ReduceMean divides by the count).
    Sum,
    /// `dy` to the first element equal to `y` (ReduceMax, ReduceMin), 0 to the others.
    Pick,
    /// `dy · f(x, y)`: `2x` (ReduceSumSquare), `x / y` (ReduceL2), `sign x` (ReduceL1),
    /// `eˣ⁻ʸ` (ReduceLogSumExp), `e⁻ʸ` (ReduceLogSum: `1 / Σx`).
    Local(fn(f64, f64) -> f64),
    /// `dy ·` the product of the set's other elements (ReduceProd), exact where some are 0:
    /// with one zero only that element has a gradient, with two or more none has.
    Prod,
}

const SUM: Reducer = Reducer {
    init_f: 0.0,
    step_f: |a, b| a + b,
    init_i: 0,
    step_i: i64::wrapping_add,
    mean: false,
    boolean: false,
    map_f: |x| x,
    finish_f: |x| x,
    map_i: Some(|x| x),
    grad: Some(Grad::Sum),
};
const L1: Reducer = Reducer {
    map_f: f64::abs,
    map_i: Some(i64::wrapping_abs),
    grad: Some(Grad::Local(|x, _| {
        if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            0.0
        }
    })),
    ..SUM
};
const SUM_SQUARE: Reducer =
    Reducer { map_f: |x| x * x, map_i: Some(|x| x.wrapping_mul(x)), grad: Some(Grad::Local(|x, _| 2.0 * x)), ..SUM };
const L2: Reducer = Reducer {
    finish_f: f64::sqrt,
    map_i: None,
    grad: Some(Grad::Local(|x, y| if y > 0.0 { x / y } else { 0.0 })),
    ..SUM_SQUARE
};
const LOG_SUM: Reducer = Reducer { finish_f: f64::ln, map_i: None, grad: Some(Grad::Local(|_, y| (-y).exp())), ..SUM };
const LOG_SUM_EXP: Reducer = Reducer { map_f: f64::exp, grad: Some(Grad::Local(|x, y| (x - y).exp())), ..LOG_SUM };
const MEAN: Reducer = Reducer { mean: true, ..SUM };
const PROD: Reducer =
    Reducer { init_f: 1.0, step_f: |a, b| a * b, init_i: 1, step_i: i64::wrapping_mul, grad: Some(Grad::Prod), ..SUM };
// Max/min over an empty set give the identity of the operation (the lowest/highest value).
const MAX: Reducer = Reducer {
    init_f: f64::NEG_INFINITY,
    step_f: f64::max,
    init_i: i64::MIN,
    step_i: i64::max,
    boolean: true,
    grad: Some(Grad::Pick),
    ..SUM
};
const MIN: Reducer = Reducer {
    init_f: f64::INFINITY,
    step_f: f64::min,
    init_i: i64::MAX,
    step_i: i64::min,
    boolean: true,
    grad: Some(Grad::Pick),
    ..SUM
};

/// A reduction over some axes.
#[derive(Debug, Clone)]
pub struct Reduce {
    reducer: Reducer,
    /// Axes from the attribute form; `None` means input 1 (or all axes).
    axes_attr: Option<Vec<i64>>,
    keepdims: bool,
    noop_with_empty_axes: bool,
}

/// Adds the reductions to the registry.
pub fn register(r: &mut Registry) {
    r.register("ReduceSum", |n, c| build(n, c, SUM));
    r.register("ReduceMean", |n, c| build(n, c, MEAN));
    r.register("ReduceProd", |n, c| build(n, c, PROD));
    r.register("ReduceMax", |n, c| build(n, c, MAX));
    r.register("ReduceMin", |n, c| build(n, c, MIN));
    r.register("ReduceL1", |n, c| build(n, c, L1));
    r.register("ReduceL2", |n, c| build(n, c, L2));
    r.register("ReduceSumSquare", |n, c| build(n, c, SUM_SQUARE));
    r.register("ReduceLogSum", |n, c| build(n, c, LOG_SUM));
    r.register("ReduceLogSumExp", |n, c| build(n, c, LOG_SUM_EXP));
}

fn build(node: &Node, _: &BuildCtx, reducer: Reducer) -> Result<Box<dyn Op>, OpError> {
    // The attribute is only legal in the older opsets, so its presence decides the form.
    Ok(Box::new(Reduce {
        reducer,
        axes_attr: node.attrs.ints("axes").map(<[i64]>::to_vec),
        keepdims: node.attrs.int("keepdims", 1) != 0,
        noop_with_empty_axes: node.attrs.int("noop_with_empty_axes", 0) != 0,
    }))
}

/// What a reduction does to a shape.
struct Plan {
    /// Per input axis: reduced or kept.
    reduced: Vec<bool>,
    /// The output shape with reduced axes kept as 1 (the accumulator layout).
    kept: Vec<usize>,
    /// The output shape (`kept` without the reduced axes unless keepdims).
    out: Vec<usize>,
}

impl Reduce {
    fn plan<I: Inputs + ?Sized>(&self, x: &I) -> Result<Option<Plan>, OpError> {
        if x.dtype(0)? == DType::Bool && !self.reducer.boolean {
            return Err(OpError::mismatch("cannot reduce a bool tensor (only ReduceMax and ReduceMin take bools)"));
        }
        let shape = x.shape(0)?;
        let list = match &self.axes_attr {
            Some(a) => Some(a.clone()),
            None => known_ints(x, 1, "axes")?,
        };
        let list = list.unwrap_or_default();
        if list.is_empty() && self.noop_with_empty_axes {
            return Ok(None);
        }
        let reduced = if list.is_empty() {
            vec![true; shape.len()]
        } else {
            let ax = axes(&list, shape.len())?;
            (0..shape.len()).map(|d| ax.contains(&d)).collect()
        };
        let kept: Vec<usize> = shape.iter().zip(&reduced).map(|(&d, &r)| if r { 1 } else { d }).collect();
        let out = if self.keepdims {
            kept.clone()
        } else {
            shape.iter().zip(&reduced).filter(|(_, &r)| !r).map(|(&d, _)| d).collect()
        };
        Ok(Some(Plan { reduced, kept, out }))
    }

    fn reduce<T: Elem>(&self, x: &Tensor, plan: &Plan) -> Result<Vec<T>, OpError> {
        let src = typed::<T>(x)?;
        let n_out: usize = plan.kept.iter().product();
        let count = src.len().checked_div(n_out).unwrap_or(0);
        // Walk the input; each element lands in the accumulator at stride 0 along reduced axes.
        let kept_strides = strides(&plan.kept);
        let to_acc: Vec<isize> =
            plan.reduced.iter().zip(&kept_strides).map(|(&r, &s)| if r { 0 } else { s as isize }).collect();
        let in_strides: Vec<isize> = strides(&x.shape).iter().map(|&s| s as isize).collect();
        let r = self.reducer;
        if T::DTYPE == DType::F32 {
            let mut acc = vec![r.init_f; n_out];
            for_each_offset(&x.shape, [&in_strides, &to_acc], [0, 0], |[i, o]| {
                acc[o] = (r.step_f)(acc[o], (r.map_f)(src[i].to_f32() as f64));
                Ok(())
            })?;
            Ok(acc
                .into_iter()
                .map(|a| T::from_f32((r.finish_f)(if r.mean { a / count as f64 } else { a }) as f32))
                .collect())
        } else {
            let map_i = r.map_i.ok_or_else(|| {
                OpError::mismatch(format!("this reduction takes floats, not {}", dtype_name(T::DTYPE)))
            })?;
            let mut acc = vec![r.init_i; n_out];
            for_each_offset(&x.shape, [&in_strides, &to_acc], [0, 0], |[i, o]| {
                acc[o] = (r.step_i)(acc[o], map_i(src[i].to_i64()));
                Ok(())
            })?;
            if r.mean && count == 0 && n_out > 0 {
                return Err(OpError::mismatch(format!(
                    "the mean of an empty set of {} values is undefined",
                    dtype_name(T::DTYPE)
                )));
            }
            // Max/Min of an empty set is the type's lowest/highest value: the i64 identity
            // converted *saturating* (through f32, as float → int casts saturate), whereas
            // sums wrap like the integer arithmetic they are.
            Ok(acc
                .into_iter()
                .map(|a| match (r.mean, count) {
                    (true, _) => T::from_i64(a / count as i64),
                    (false, 0) => T::from_f32(a as f32),
                    (false, _) => T::from_i64(a),
                })
                .collect())
        }
    }
}

impl Op for Reduce {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let shape = match self.plan(inputs)? {
            Some(p) => p.out,
            None => inputs.shape(0)?.to_vec(),
        };
        Ok(vec![Fact::new(inputs.dtype(0)?, shape)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let Some(plan) = self.plan(inputs)? else {
            return Ok(vec![x.clone()]);
        };
        if let Data::Bool(b) = &x.data {
            // As uint8: max is any, min is all, and the empty set gives false / true (0 / 255).
            let as_u8 = Tensor { shape: x.shape.clone(), data: Data::U8(b.iter().map(|&v| u8::from(v)).collect()) };
            let r = self.reduce::<u8>(&as_u8, &plan)?;
            return Ok(vec![Tensor { shape: plan.out, data: Data::Bool(r.into_iter().map(|v| v != 0).collect()) }]);
        }
        let data = dispatch!(x.dtype(), T => T::wrap(self.reduce::<T>(x, &plan)?));
        Ok(vec![Tensor { shape: plan.out, data }])
    }

    /// Every reduction of float inputs (Max and Min: the gradient to the first element equal
    /// to the result); the axes take none.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let mut out: Grads = vec![None; b.inputs.len()];
        let grad = self.reducer.grad.ok_or(GradError::NoBackward)?;
        let x = f32_in(b.inputs, 0)?;
        let Some(plan) = self.plan(b.inputs)? else {
            if let Some(g) = out_grad(b.grads, 0, x.len())? {
                out[0] = Some(f32_tensor(x.shape.clone(), g.to_vec()));
            }
            return Ok(out);
        };
        let n_out: usize = plan.kept.iter().product();
        let Some(g) = out_grad(b.grads, 0, n_out)? else { return Ok(out) };
        let y: Vec<f32> = match b.outputs.first().copied().flatten() {
            Some(t) if t.len() == n_out => t.as_f32().map_err(OpError::internal)?.to_vec(),
            _ => self.reduce::<f32>(x, &plan)?,
        };
        let src = x.as_f32().map_err(OpError::internal)?;
        let count = src.len().checked_div(n_out).unwrap_or(0).max(1);
        let kept_strides = strides(&plan.kept);
        let to_acc: Vec<isize> =
            plan.reduced.iter().zip(&kept_strides).map(|(&r, &s)| if r { 0 } else { s as isize }).collect();
        let in_strides: Vec<isize> = strides(&x.shape).iter().map(|&s| s as isize).collect();
        let mut dx = vec![0.0f32; x.len()];
        let mut taken = vec![false; if matches!(grad, Grad::Pick) { n_out } else { 0 }];
        let mean = if self.reducer.mean { 1.0 / count as f32 } else { 1.0 };
        // ReduceProd: each set's product of its nonzero elements and its count of zeros.
        let (mut nonzero, mut zeros) = (Vec::new(), Vec::new());
        if matches!(grad, Grad::Prod) {
            (nonzero, zeros) = (vec![1.0f64; n_out], vec![0u32; n_out]);
            for_each_offset(&x.shape, [&in_strides, &to_acc], [0, 0], |[i, o]| {
                match src[i] {
                    0.0 => zeros[o] += 1,
                    v => nonzero[o] *= f64::from(v),
                }
                Ok(())
            })?;
        }
        for_each_offset(&x.shape, [&in_strides, &to_acc], [0, 0], |[i, o]| {
            dx[i] = match grad {
                Grad::Sum => g[o] * mean,
                Grad::Pick if !taken[o] && src[i] == y[o] => {
                    taken[o] = true;
                    g[o]
                }
                Grad::Pick => 0.0,
                Grad::Local(f) => g[o] * f(f64::from(src[i]), f64::from(y[o])) as f32,
                Grad::Prod => match (zeros[o], src[i]) {
                    (0, v) => g[o] * (nonzero[o] / f64::from(v)) as f32,
                    (1, 0.0) => g[o] * nonzero[o] as f32,
                    _ => 0.0,
                },
            };
            Ok(())
        })?;
        out[0] = Some(f32_tensor(x.shape.clone(), dx));
        Ok(out)
    }
}
