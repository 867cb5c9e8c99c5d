//! `com.microsoft::QLinearAdd`: element-wise sum of two 8-bit tensors with numpy broadcasting,
//! `C = saturate(round((sA·(A − zA) + sB·(B − zB)) / sC) + zC)`, every scale and zero-point per
//! tensor, uint8 or int8 throughout.
//!
//! The float arithmetic is onnxruntime's CPU kernel (MLAS `qladd`, x86 AVX2), so the results
//! equal its in every value: with the ratios `rA = sA/sC`, `rB = sB/sC` and the constant
//! `k = zC − fma(rA, zA, rB·zB)` (all f32), each output is
//! `round_half_even(fma(a, rA, fma(b, rB, k)))` clamped to the type's range — or, where `A` is
//! the operand that stays constant along the innermost dimension (onnxruntime's "scalar A"
//! spans), `fma(b, rB, fma(a, rA, k))`. The fused multiply-adds are computed exactly in f64 (an
//! 8-bit value times an f32 is exact there) and rounded once to f32, which is fast on every
//! target, wasm included.

use super::qtype_of;
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::math::broadcast::{broadcast_shapes, broadcast_strides, for_each_offset};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};
use crate::quant::{round_half_even, QParams, QType};

/// A built QLinearAdd.
#[derive(Debug, Clone)]
pub struct QLinearAdd;

/// Builds QLinearAdd: 7 or 8 inputs (`C_zero_point` optional).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let n = node.inputs.len();
    if !(7..=8).contains(&n) {
        return Err(OpError::malformed(format!(
            "QLinearAdd takes 7 or 8 inputs (A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale[, C_zero_point]), got {n}"
        )));
    }
    Ok(Box::new(QLinearAdd))
}

/// Per-tensor parameters of an 8-bit tensor of type `dtype`: a one-value float `scale` that is
/// positive and finite, and an optional one-value `zero_point` of the same type as the data.
pub fn scalar_params(
    scale: &Tensor,
    zero_point: Option<&Tensor>,
    dtype: DType,
    what: &str,
) -> Result<QParams, OpError> {
    let qt = qtype_of(dtype).map_err(|e| e.context(what))?;
    let s = scale.as_f32().map_err(|e| OpError::mismatch(format!("{what}_scale: {e}")))?;
    if s.len() != 1 {
        return Err(OpError::malformed(format!(
            "{what}_scale must be a scalar (per-tensor quantization), got shape {:?}",
            scale.shape
        )));
    }
    let z = match zero_point {
        None => 0,
        Some(z) => {
            if z.dtype() != dtype {
                return Err(OpError::mismatch(format!("{what}_zero_point is {:?} but {what} is {dtype:?}", z.dtype())));
            }
            if z.len() != 1 {
                return Err(OpError::malformed(format!("{what}_zero_point must be a scalar, got shape {:?}", z.shape)));
            }
            z.to_i64_vec().map_err(OpError::mismatch)?[0] as i32
        }
    };
    if !(s[0].is_finite() && s[0] > 0.0) {
        return Err(OpError::malformed(format!("{what}_scale {} is not a positive finite number", s[0])));
    }
    QParams::checked(s[0], z, qt).map_err(|e| OpError::malformed(format!("{what}: {e}")))
}

/// `fma(x, r, c)` for an 8-bit integer `x`: exact in f64, rounded once to f32.
#[inline(always)]
fn fma8(x: i32, r: f64, c: f32) -> f32 {
    (x as f64 * r + c as f64) as f32
}

/// The constants of one QLinearAdd.
#[derive(Clone, Copy)]
struct Consts {
    ra: f64,
    rb: f64,
    k: f32,
    /// Whether A is constant along the innermost output dimension.
    a_scalar: bool,
    qt: QType,
}

impl Consts {
    #[inline(always)]
    fn add(&self, a: i32, b: i32) -> i32 {
        let v = if self.a_scalar {
            fma8(b, self.rb, fma8(a, self.ra, self.k))
        } else {
            fma8(a, self.ra, fma8(b, self.rb, self.k))
        };
        round_half_even(v).clamp(self.qt.qmin(), self.qt.qmax())
    }
}

/// `f(a, b)` over the broadcast shape `out` of two 8-bit tensors (shapes `sa`, `sb`), each
/// result turned back into the type by `wrap`: QLinearAdd's and QLinearMul's loop.
pub(super) fn broadcast_codes<T: Copy + Into<i32>>(
    (a, sa): (&[T], &[usize]),
    (b, sb): (&[T], &[usize]),
    out: &[usize],
    f: impl Fn(i32, i32) -> i32,
    wrap: impl Fn(i32) -> T,
) -> Result<Vec<T>, OpError> {
    if sa == sb {
        return Ok(a.iter().zip(b).map(|(&x, &y)| wrap(f(x.into(), y.into()))).collect());
    }
    let (ta, tb) = (broadcast_strides(sa, out), broadcast_strides(sb, out));
    let mut y = Vec::with_capacity(out.iter().product());
    for_each_offset(out, [&ta, &tb], [0, 0], |[i, j]| {
        y.push(wrap(f(a[i].into(), b[j].into())));
        Ok(())
    })?;
    Ok(y)
}

/// The output fact of a two-input `com.microsoft` op laid out as `A, A_scale, A_zero_point, B,
/// B_scale, B_zero_point, C_scale[, C_zero_point]` (QLinearAdd, QLinearMul): one 8-bit type
/// throughout, the broadcast shape.
pub(super) fn infer_binary(inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
    let a = input_fact(inputs, 0)?;
    let b = input_fact(inputs, 3)?;
    qtype_of(a.dtype).map_err(|e| e.context("A"))?;
    if b.dtype != a.dtype {
        return Err(OpError::mismatch(format!("A is {:?} but B is {:?}: both must have one type", a.dtype, b.dtype)));
    }
    for (i, what) in [(2, "A_zero_point"), (5, "B_zero_point"), (7, "C_zero_point")] {
        if let Some(z) = inputs.get(i).copied().flatten() {
            if z.dtype != a.dtype {
                return Err(OpError::mismatch(format!("{what} is {:?} but the data is {:?}", z.dtype, a.dtype)));
            }
        }
    }
    Ok(vec![Fact::new(a.dtype, broadcast_shapes(&a.shape, &b.shape)?)])
}

impl Op for QLinearAdd {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        infer_binary(inputs)
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = BinaryInputs::read(inputs)?;
        let (ra, rb) = (x.pa.scale / x.pc.scale, x.pb.scale / x.pc.scale);
        let k = x.pc.zero_point as f32 - fma8(x.pa.zero_point, ra as f64, rb * x.pb.zero_point as f32);
        // onnxruntime walks the output in spans along the innermost dimension; where A is the
        // operand that is constant along it, A's term is folded into the constant first.
        let a_scalar = match x.out.iter().rposition(|&d| d > 1) {
            None => true,
            Some(d) => broadcast_strides(&x.a.shape, &x.out)[d] == 0,
        };
        let c = Consts { ra: ra as f64, rb: rb as f64, k, a_scalar, qt: x.qt };
        Ok(vec![x.map(|p, q| c.add(p, q))?])
    }
}

/// The inputs of QLinearAdd and QLinearMul, read and checked: A and B's codes, the three
/// per-tensor parameters and the broadcast output shape.
pub(super) struct BinaryInputs<'t> {
    pub a: &'t Tensor,
    pub b: &'t Tensor,
    pub qt: QType,
    pub pa: QParams,
    pub pb: QParams,
    pub pc: QParams,
    pub out: Vec<usize>,
}

impl<'t> BinaryInputs<'t> {
    /// Inputs 0–7: A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale[, C_zero_point].
    pub fn read(inputs: &[Option<&'t Tensor>]) -> Result<BinaryInputs<'t>, OpError> {
        let opt = |i: usize| inputs.get(i).copied().flatten();
        let (a, b) = (input(inputs, 0)?, input(inputs, 3)?);
        let dtype = a.dtype();
        if b.dtype() != dtype {
            return Err(OpError::mismatch(format!("A is {dtype:?} but B is {:?}: both must have one type", b.dtype())));
        }
        let pa = scalar_params(input(inputs, 1)?, opt(2), dtype, "A")?;
        let pb = scalar_params(input(inputs, 4)?, opt(5), dtype, "B")?;
        let pc = scalar_params(input(inputs, 6)?, opt(7), dtype, "C")?;
        let out = broadcast_shapes(&a.shape, &b.shape)?;
        Ok(BinaryInputs { a, b, qt: qtype_of(dtype)?, pa, pb, pc, out })
    }

    /// The output: `f` of every broadcast pair of codes, saturated by `f`, in A's type.
    pub fn map(&self, f: impl Fn(i32, i32) -> i32) -> Result<Tensor, OpError> {
        let (a, b, out) = (self.a, self.b, &self.out);
        let data = match (&a.data, &b.data) {
            (Data::U8(x), Data::U8(y)) => Data::U8(broadcast_codes((x, &a.shape), (y, &b.shape), out, f, |v| v as u8)?),
            (Data::I8(x), Data::I8(y)) => Data::I8(broadcast_codes((x, &a.shape), (y, &b.shape), out, f, |v| v as i8)?),
            _ => return Err(OpError::mismatch(format!("A and B must be uint8 or int8, got {:?}", a.dtype()))),
        };
        Ok(Tensor { shape: out.clone(), data })
    }
}
