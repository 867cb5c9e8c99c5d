//! The one element-wise binary op, with numpy broadcasting over every element type. Add, Mul,
//! Equal, And, … are instances built in [`arith`](super::arith) and
//! [`compare`](super::compare), differing only in their [`Kernel`].

use super::broadcast::{broadcast_all, broadcast_shapes, map2};
use crate::model::{DType, Data, Tensor};
use crate::ops::grad::{
    f32_in, f32_tensor, for_each_broadcast, for_each_broadcast_run, out_grad, unbroadcast, Backward, GradError, Grads,
};
use crate::ops::shape::args::all_present;
use crate::ops::shape::elem::{cast, dispatch, dtype_name, typed, Elem};
use crate::ops::{Fact, Op, OpError};
use std::borrow::Cow;

/// Integer arithmetic on i64; the error (e.g. division by zero) becomes the op's error.
pub type IntArith = fn(i64, i64) -> Result<i64, &'static str>;

/// What a binary op computes, per family of element types.
#[derive(Debug, Clone, Copy)]
pub enum Kernel {
    /// Output has the inputs' type. Integers are computed on i64 and wrapped back to their
    /// width; `None` for either family means the op does not accept it. An integer error
    /// (division by zero) is reported, never a panic.
    Arith {
        /// On float32.
        float: Option<fn(f32, f32) -> f32>,
        /// On integers widened to i64.
        int: Option<IntArith>,
    },
    /// A comparison: bool output. Integers compare as i64; `bools` says whether bool inputs
    /// are accepted (as 0/1).
    Compare {
        /// On float32.
        float: fn(f32, f32) -> bool,
        /// On integers (and bools) widened to i64.
        int: fn(i64, i64) -> bool,
        /// Whether bool inputs are allowed.
        bools: bool,
    },
    /// Logic on bool inputs.
    Logic(fn(bool, bool) -> bool),
}

/// Which binary op a [`Binary`] is, for executors that implement it themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    /// `Mod` with `fmod = 0` (the result takes the divisor's sign, as Python's `%`).
    Mod,
    /// `Mod` with `fmod = 1` (C's fmod).
    Fmod,
    Max,
    Min,
    Sum,
    Equal,
    Greater,
    Less,
    GreaterOrEqual,
    LessOrEqual,
    And,
    Or,
    Xor,
    /// `x < 0 ? slope·x : x`, the slope broadcast to `x`'s shape (one way only).
    PRelu,
}

/// An element-wise binary op. Variadic ops (Max, Min, Sum) fold their inputs left to right,
/// each step broadcasting. With `cast_rhs` (Pow) the right operand may have another numeric
/// type and is converted to the left one's.
#[derive(Debug, Clone)]
pub struct Binary {
    /// Which op.
    pub op: BinaryOp,
    kernel: Kernel,
    variadic: bool,
    cast_rhs: bool,
    same_shape_f32: Option<SliceF32>,
    /// The right operand broadcasts to the left one's shape, never the other way (PRelu).
    unidirectional: bool,
}

/// The float kernel over two equal-length slices, `out[i] = a[i] ∘ b[i]`: the same values as
/// the element function, in a loop the compiler can vectorise (the element function is called
/// through a pointer, once per element).
pub type SliceF32 = fn(&[f32], &[f32]) -> Vec<f32>;

impl Binary {
    /// Runs float32 inputs of one shape through `f` (which must give the element function's
    /// values).
    pub fn same_shape_f32(self, f: SliceF32) -> Binary {
        Binary { same_shape_f32: Some(f), ..self }
    }

    /// An op of exactly two inputs.
    pub fn new(op: BinaryOp, kernel: Kernel) -> Binary {
        Binary { op, kernel, variadic: false, cast_rhs: false, same_shape_f32: None, unidirectional: false }
    }

    /// An op of one or more inputs, folded pairwise.
    pub fn variadic(op: BinaryOp, kernel: Kernel) -> Binary {
        Binary { op, kernel, variadic: true, cast_rhs: false, same_shape_f32: None, unidirectional: false }
    }

    /// Broadcasts the right operand to the left one's shape only (PRelu's slope): an output
    /// of any other shape is an error.
    pub fn unidirectional(self) -> Binary {
        Binary { unidirectional: true, ..self }
    }

    fn check_shape(&self, first: &[usize], out: &[usize]) -> Result<(), OpError> {
        if self.unidirectional && first != out {
            return Err(OpError::mismatch(format!(
                "input 1 must broadcast to input 0's shape {first:?}, but together they make {out:?}"
            )));
        }
        Ok(())
    }

    /// Converts the right operand to the left one's type first.
    pub fn cast_rhs(self) -> Binary {
        Binary { cast_rhs: true, ..self }
    }

    /// As a boxed op, the form builders return.
    pub fn boxed(self) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(self))
    }

    fn accepts(&self, d: DType) -> bool {
        match self.kernel {
            Kernel::Arith { float, int } => match d {
                DType::F32 => float.is_some(),
                DType::Bool => false,
                _ => int.is_some(),
            },
            Kernel::Compare { bools, .. } => d != DType::Bool || bools,
            Kernel::Logic(_) => d == DType::Bool,
        }
    }

    fn out_dtype(&self, input: DType) -> DType {
        match self.kernel {
            Kernel::Arith { .. } => input,
            Kernel::Compare { .. } | Kernel::Logic(_) => DType::Bool,
        }
    }

    /// Checks arity and types; returns the output type.
    fn check(&self, dtypes: &[DType]) -> Result<DType, OpError> {
        match (self.variadic, dtypes.len()) {
            (false, 2) | (true, 1..) => {}
            (false, n) => return Err(OpError::malformed(format!("expects 2 inputs, got {n}"))),
            (true, _) => return Err(OpError::malformed("expects at least one input")),
        }
        let first = dtypes[0];
        for (i, &d) in dtypes.iter().enumerate() {
            if !self.accepts(d) {
                return Err(OpError::mismatch(format!(
                    "input {i} has type {}, which this op does not accept",
                    dtype_name(d)
                )));
            }
            if d != first && !self.cast_rhs {
                return Err(OpError::mismatch(format!(
                    "inputs must have one type, got {} (input 0) and {} (input {i})",
                    dtype_name(first),
                    dtype_name(d)
                )));
            }
        }
        Ok(self.out_dtype(first))
    }

    /// The first step: `a ∘ b`, or `a` itself for a variadic op of one input.
    fn apply_first(&self, a: &Tensor, b: Option<&Tensor>) -> Result<Tensor, OpError> {
        match b {
            Some(b) => self.apply(a, b),
            None => Ok(a.clone()),
        }
    }

    /// One broadcasting step: `a ∘ b`.
    fn apply(&self, a: &Tensor, b: &Tensor) -> Result<Tensor, OpError> {
        if let (Some(f), Data::F32(x), Data::F32(y)) = (self.same_shape_f32, &a.data, &b.data) {
            if a.shape == b.shape && x.len() == y.len() {
                return Ok(Tensor { shape: a.shape.clone(), data: Data::F32(f(x, y)) });
            }
        }
        let out = broadcast_shapes(&a.shape, &b.shape)?;
        let b = if b.dtype() != a.dtype() { Cow::Owned(cast(b, a.dtype())?) } else { Cow::Borrowed(b) };
        let data = match self.kernel {
            Kernel::Arith { float, int } => dispatch!(a.dtype(), T => T::wrap(arith::<T>(a, &b, &out, float, int)?)),
            Kernel::Compare { float, int, .. } => {
                bool::wrap(dispatch!(a.dtype(), T => compare::<T>(a, &b, &out, float, int)?))
            }
            Kernel::Logic(f) => bool::wrap(map2((typed(a)?, &a.shape), (typed(&b)?, &b.shape), &out, f)?),
        };
        Ok(Tensor { shape: out, data })
    }
}

fn arith<T: Elem>(
    a: &Tensor,
    b: &Tensor,
    out: &[usize],
    float: Option<fn(f32, f32) -> f32>,
    int: Option<IntArith>,
) -> Result<Vec<T>, OpError> {
    let (x, y) = ((typed::<T>(a)?, a.shape.as_slice()), (typed::<T>(b)?, b.shape.as_slice()));
    if T::DTYPE == DType::F32 {
        let float = float.ok_or_else(|| OpError::mismatch("expects integer inputs, got float32"))?;
        return map2(x, y, out, |p, q| T::from_f32(float(p.to_f32(), q.to_f32())));
    }
    let int = int.ok_or_else(|| OpError::mismatch(format!("expects float32 inputs, got {}", dtype_name(T::DTYPE))))?;
    let mut failure = None;
    let res = map2(x, y, out, |p, q| {
        int(p.to_i64(), q.to_i64()).map(T::from_i64).unwrap_or_else(|e| {
            failure.get_or_insert(e);
            T::default()
        })
    })?;
    match failure {
        Some(e) => Err(OpError::mismatch(e)),
        None => Ok(res),
    }
}

fn compare<T: Elem>(
    a: &Tensor,
    b: &Tensor,
    out: &[usize],
    float: fn(f32, f32) -> bool,
    int: fn(i64, i64) -> bool,
) -> Result<Vec<bool>, OpError> {
    let (x, y) = ((typed::<T>(a)?, a.shape.as_slice()), (typed::<T>(b)?, b.shape.as_slice()));
    if T::DTYPE == DType::F32 {
        map2(x, y, out, |p, q| float(p.to_f32(), q.to_f32()))
    } else {
        map2(x, y, out, |p, q| int(p.to_i64(), q.to_i64()))
    }
}

impl Op for Binary {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let xs = all_present(inputs)?;
        let dtype = self.check(&xs.iter().map(|f| f.dtype).collect::<Vec<_>>())?;
        let shape = broadcast_all(&xs.iter().map(|f| f.shape.as_slice()).collect::<Vec<_>>())?;
        self.check_shape(&xs[0].shape, &shape)?;
        Ok(vec![Fact::new(dtype, shape)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let xs = all_present(inputs)?;
        self.check(&xs.iter().map(|t| t.dtype()).collect::<Vec<_>>())?;
        let mut acc = self.apply_first(xs[0], xs.get(1).copied())?;
        for b in xs.iter().skip(2) {
            acc = self.apply(&acc, b)?;
        }
        self.check_shape(&xs[0].shape, &acc.shape)?;
        Ok(vec![acc])
    }

    /// Float Add, Sub, Mul, Div, Min, Max and PRelu of two inputs, and Sum of any number, with
    /// broadcasting undone (a repeated operand's gradient is summed over its repeats). At a
    /// Min/Max tie the gradient goes to the first input.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        // Which gradients are wanted (an input nobody needs gets none).
        let want = (b.needs(0), b.needs(1));
        let Backward { inputs, outputs, grads, .. } = *b;
        use BinaryOp::*;
        if self.op == Pow && inputs.len() == 2 {
            return pow_backward(b);
        }
        let two = inputs.len() == 2 && matches!(self.op, Add | Sub | Mul | Div | Min | Max | PRelu);
        if !two && self.op != Sum {
            return Err(GradError::NoBackward);
        }
        let xs: Vec<&Tensor> = (0..inputs.len()).map(|i| f32_in(inputs, i)).collect::<Result<_, _>>()?;
        let y = f32_in(outputs, 0)?;
        let Some(g) = out_grad(grads, 0, y.len())? else { return Ok(vec![None; xs.len()]) };
        let f = |t: &Tensor| t.as_f32().map(<[f32]>::to_vec).map_err(OpError::internal);
        if self.op == Sum {
            return Ok(xs
                .iter()
                .map(|x| Some(f32_tensor(x.shape.clone(), unbroadcast(g, &y.shape, &x.shape))))
                .collect());
        }
        let (a, b) = (xs[0], xs[1]);
        let (av, bv) = (f(a)?, f(b)?);
        // One loop per op, its rule inlined.
        let args = (&y.shape[..], &a.shape[..], &b.shape[..], &av[..], &bv[..], g, want);
        let (ga, gb) = match self.op {
            Add => binary_grads(args, |_, _, g| (g, g)),
            Sub => binary_grads(args, |_, _, g| (g, -g)),
            Mul => binary_grads(args, |x, z, g| (g * z, g * x)),
            Div => binary_grads(args, |x, z, g| (g / z, -g * x / (z * z))),
            Max => binary_grads(args, |x, z, g| if x >= z { (g, 0.0) } else { (0.0, g) }),
            PRelu => binary_grads(args, |x, s, g| if x < 0.0 { (g * s, g * x) } else { (g, 0.0) }),
            _ => binary_grads(args, |x, z, g| if x <= z { (g, 0.0) } else { (0.0, g) }),
        };
        Ok(vec![want.0.then(|| f32_tensor(a.shape.clone(), ga)), want.1.then(|| f32_tensor(b.shape.clone(), gb))])
    }
}

/// Pow's gradients: `d(xᶻ)/dx = z·xᶻ⁻¹` and, for a float exponent, `d(xᶻ)/dz = xᶻ·ln x`
/// where `x > 0` (0 elsewhere: the power of a negative base is defined for integer exponents
/// only). An integer exponent (Pow converts it) takes none.
fn pow_backward(b: &Backward<'_>) -> Result<Grads, GradError> {
    let (a, e) = (f32_in(b.inputs, 0)?, crate::ops::input(b.inputs, 1)?);
    let float_exp = e.dtype() == DType::F32;
    let e = if float_exp { Cow::Borrowed(e) } else { Cow::Owned(cast(e, DType::F32)?) };
    let shape = broadcast_shapes(&a.shape, &e.shape)?;
    let Some(g) = out_grad(b.grads, 0, shape.iter().product())? else { return Ok(vec![None, None]) };
    let want = (b.needs(0), b.needs(1) && float_exp);
    let (av, ev) = (a.as_f32().map_err(OpError::internal)?, e.as_f32().map_err(OpError::internal)?);
    let args = (&shape[..], &a.shape[..], &e.shape[..], av, ev, g, want);
    let (ga, ge) = binary_grads(args, |x, z, g| {
        let dz = if x > 0.0 { g * x.powf(z) * x.ln() } else { 0.0 };
        (g * z * x.powf(z - 1.0), dz)
    });
    Ok(vec![want.0.then(|| f32_tensor(a.shape.clone(), ga)), want.1.then(|| f32_tensor(e.shape.clone(), ge))])
}

/// What [`binary_grads`] reads: the output's, A's and B's shapes, A's and B's values, the
/// output gradient, and whether A's and B's gradients are wanted.
type BinaryArgs<'a> = (&'a [usize], &'a [usize], &'a [usize], &'a [f32], &'a [f32], &'a [f32], (bool, bool));

/// The gradients of A and B of a broadcasting binary op whose local rule is
/// `rule(a, b, dy) = (da, db)`, summed over each operand's repeats (empty when not wanted).
fn binary_grads(
    (y, a, b, av, bv, g, want): BinaryArgs<'_>,
    rule: impl Fn(f32, f32, f32) -> (f32, f32),
) -> (Vec<f32>, Vec<f32>) {
    let (mut ga, mut gb) =
        (vec![0.0f32; if want.0 { av.len() } else { 0 }], vec![0.0f32; if want.1 { bv.len() } else { 0 }]);
    match want {
        (true, true) => for_each_broadcast(y, a, b, |o, i, j| {
            let (da, db) = rule(av[i], bv[j], g[o]);
            ga[i] += da;
            gb[j] += db;
        }),
        // A's gradient alone (B a constant, as a per-channel bound): runs where A is whole and
        // B one value are a plain loop that vectorises.
        (true, false) => for_each_broadcast_run(y, a, b, |o, (ia, ra), (ib, rb), len| {
            if ra == 1 && rb == 0 {
                let z = bv[ib];
                for ((d, &x), &g) in ga[ia..ia + len].iter_mut().zip(&av[ia..ia + len]).zip(&g[o..o + len]) {
                    *d += rule(x, z, g).0;
                }
            } else {
                for k in 0..len {
                    ga[ia + k * ra] += rule(av[ia + k * ra], bv[ib + k * rb], g[o + k]).0;
                }
            }
        }),
        (false, true) => for_each_broadcast(y, a, b, |o, i, j| gb[j] += rule(av[i], bv[j], g[o]).1),
        (false, false) => {}
    }
    (ga, gb)
}
