//! The one element-wise unary op, [`Unary`], computing a [`UnaryFn`]: every unary op (Relu,
//! Exp, Neg, …) is a variant registered in [`activation`](super::activation) or
//! [`elementary`](super::elementary); each function and its parameters are defined once here,
//! and the shape and dtype handling lives only here. Other executors read [`Unary::func`].

use crate::model::{DType, Tensor};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::shape::elem::{dispatch, dtype_name, typed, Elem};
use crate::ops::{input, input_fact, Fact, Op, OpError};

/// An element-wise function of one input, with its attributes resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryFn {
    /// `x < 0 ? 0 : x` (NaN propagates as in ONNX Runtime); also on integers.
    Relu,
    /// `x < 0 ? alpha·x : x`.
    LeakyRelu {
        /// Slope for negative inputs (ONNX default 0.01).
        alpha: f32,
    },
    /// The logistic function, without overflow for large |x|.
    Sigmoid,
    /// `clamp(alpha·x + beta, 0, 1)`.
    HardSigmoid {
        /// Slope (ONNX default 0.2).
        alpha: f32,
        /// Offset (ONNX default 0.5).
        beta: f32,
    },
    /// `x · HardSigmoid(x)` with alpha = 1/6, beta = 0.5 (opset 14).
    HardSwish,
    /// Hyperbolic tangent.
    Tanh,
    /// `x·Φ(x)` exactly (Gelu, `approximate = none`).
    Gelu,
    /// Gelu's tanh approximation (`approximate = tanh`).
    GeluTanh,
    /// `x < 0 ? alpha·(eˣ − 1) : x`.
    Elu {
        /// Scale of the negative part (ONNX default 1).
        alpha: f32,
    },
    /// `ln(1 + eˣ)`, written so large x does not overflow.
    Softplus,
    /// eˣ.
    Exp,
    /// Natural logarithm.
    Log,
    /// Square root.
    Sqrt,
    /// −x; also on integers (wrapping).
    Neg,
    /// |x|; also on integers (wrapping).
    Abs,
    /// −1, 0 or 1 (±0 and NaN unchanged); also on integers.
    Sign,
    /// Round down.
    Floor,
    /// Round up.
    Ceil,
    /// Round half to even, like numpy.
    Round,
    /// 1/x.
    Reciprocal,
    /// The error function.
    Erf,
    /// `x · tanh(softplus(x))` (YOLOv4's activation; opset 18).
    Mish,
    /// `x · sigmoid(alpha·x)` (opset 24; alpha 1 is SiLU).
    Swish {
        /// Scale inside the sigmoid (ONNX default 1).
        alpha: f32,
    },
    /// `x > 0 ? gamma·x : gamma·alpha·(eˣ − 1)`.
    Selu {
        /// ONNX default 1.67326…
        alpha: f32,
        /// ONNX default 1.05070…
        gamma: f32,
    },
    /// `max(0, x) + min(0, alpha·(e^(x/alpha) − 1))`.
    Celu {
        /// ONNX default 1.
        alpha: f32,
    },
    /// `x / (1 + |x|)`.
    Softsign,
    /// `x > alpha ? x : 0`.
    ThresholdedRelu {
        /// Threshold (ONNX default 1).
        alpha: f32,
    },
    /// `x < −lambd ? x + bias : x > lambd ? x − bias : 0`.
    Shrink {
        /// Shift (ONNX default 0).
        bias: f32,
        /// Threshold (ONNX default 0.5).
        lambd: f32,
    },
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Tangent.
    Tan,
    /// Arcsine.
    Asin,
    /// Arccosine.
    Acos,
    /// Arctangent.
    Atan,
    /// Hyperbolic sine.
    Sinh,
    /// Hyperbolic cosine.
    Cosh,
    /// Inverse hyperbolic sine.
    Asinh,
    /// Inverse hyperbolic cosine.
    Acosh,
    /// Inverse hyperbolic tangent.
    Atanh,
}

/// Maps a slice through `f`, one loop per call site with `f` inlined.
#[inline(always)]
fn map(x: &[f32], f: impl Fn(f32) -> f32) -> Vec<f32> {
    x.iter().map(|&v| f(v)).collect()
}

/// Expands to a `match` with one arm per variant, each mapping the slice with that variant
/// written as a constant, so `apply`'s `match` folds away inside the loop.
macro_rules! map_each {
    ($f:expr, $x:expr; $($variant:ident $({ $($field:ident),* })?),* $(,)?) => {
        match $f {
            $( UnaryFn::$variant $({ $($field),* })? => map($x, |v| UnaryFn::$variant $({ $($field),* })?.apply(v)), )*
        }
    };
}

impl UnaryFn {
    /// The ONNX op type.
    pub fn name(self) -> &'static str {
        match self {
            UnaryFn::Relu => "Relu",
            UnaryFn::LeakyRelu { .. } => "LeakyRelu",
            UnaryFn::Sigmoid => "Sigmoid",
            UnaryFn::HardSigmoid { .. } => "HardSigmoid",
            UnaryFn::HardSwish => "HardSwish",
            UnaryFn::Tanh => "Tanh",
            UnaryFn::Gelu | UnaryFn::GeluTanh => "Gelu",
            UnaryFn::Elu { .. } => "Elu",
            UnaryFn::Softplus => "Softplus",
            UnaryFn::Exp => "Exp",
            UnaryFn::Log => "Log",
            UnaryFn::Sqrt => "Sqrt",
            UnaryFn::Neg => "Neg",
            UnaryFn::Abs => "Abs",
            UnaryFn::Sign => "Sign",
            UnaryFn::Floor => "Floor",
            UnaryFn::Ceil => "Ceil",
            UnaryFn::Round => "Round",
            UnaryFn::Reciprocal => "Reciprocal",
            UnaryFn::Erf => "Erf",
            UnaryFn::Mish => "Mish",
            UnaryFn::Swish { .. } => "Swish",
            UnaryFn::Selu { .. } => "Selu",
            UnaryFn::Celu { .. } => "Celu",
            UnaryFn::Softsign => "Softsign",
            UnaryFn::ThresholdedRelu { .. } => "ThresholdedRelu",
            UnaryFn::Shrink { .. } => "Shrink",
            UnaryFn::Sin => "Sin",
            UnaryFn::Cos => "Cos",
            UnaryFn::Tan => "Tan",
            UnaryFn::Asin => "Asin",
            UnaryFn::Acos => "Acos",
            UnaryFn::Atan => "Atan",
            UnaryFn::Sinh => "Sinh",
            UnaryFn::Cosh => "Cosh",
            UnaryFn::Asinh => "Asinh",
            UnaryFn::Acosh => "Acosh",
            UnaryFn::Atanh => "Atanh",
        }
    }

    /// The function of one float32 value.
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        use std::f32::consts::{FRAC_1_SQRT_2, PI};
        match self {
            UnaryFn::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            UnaryFn::LeakyRelu { alpha } => {
                if x < 0.0 {
                    alpha * x
                } else {
                    x
                }
            }
            UnaryFn::Sigmoid => super::activation::sigmoid(x),
            UnaryFn::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            UnaryFn::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            UnaryFn::Tanh => x.tanh(),
            UnaryFn::Gelu => 0.5 * x * (1.0 + super::elementary::erf(x * FRAC_1_SQRT_2)),
            UnaryFn::GeluTanh => 0.5 * x * (1.0 + ((2.0 / PI).sqrt() * (x + 0.044715 * x * x * x)).tanh()),
            UnaryFn::Elu { alpha } => {
                if x < 0.0 {
                    alpha * x.exp_m1()
                } else {
                    x
                }
            }
            UnaryFn::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            UnaryFn::Exp => x.exp(),
            UnaryFn::Log => x.ln(),
            UnaryFn::Sqrt => x.sqrt(),
            UnaryFn::Neg => -x,
            UnaryFn::Abs => x.abs(),
            UnaryFn::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x
                }
            }
            UnaryFn::Floor => x.floor(),
            UnaryFn::Ceil => x.ceil(),
            UnaryFn::Round => x.round_ties_even(),
            UnaryFn::Reciprocal => 1.0 / x,
            UnaryFn::Erf => super::elementary::erf(x),
            UnaryFn::Mish => x * UnaryFn::Softplus.apply(x).tanh(),
            UnaryFn::Swish { alpha } => x * super::activation::sigmoid(alpha * x),
            UnaryFn::Selu { alpha, gamma } => {
                if x > 0.0 {
                    gamma * x
                } else {
                    gamma * (alpha * x.exp() - alpha)
                }
            }
            UnaryFn::Celu { alpha } => x.max(0.0) + (alpha * ((x / alpha).exp() - 1.0)).min(0.0),
            UnaryFn::Softsign => x / (1.0 + x.abs()),
            UnaryFn::ThresholdedRelu { alpha } => {
                if x > alpha {
                    x
                } else {
                    0.0
                }
            }
            UnaryFn::Shrink { bias, lambd } => {
                if x < -lambd {
                    x + bias
                } else if x > lambd {
                    x - bias
                } else {
                    0.0
                }
            }
            UnaryFn::Sin => x.sin(),
            UnaryFn::Cos => x.cos(),
            UnaryFn::Tan => x.tan(),
            UnaryFn::Asin => x.asin(),
            UnaryFn::Acos => x.acos(),
            UnaryFn::Atan => x.atan(),
            UnaryFn::Sinh => x.sinh(),
            UnaryFn::Cosh => x.cosh(),
            UnaryFn::Asinh => x.asinh(),
            UnaryFn::Acosh => x.acosh(),
            UnaryFn::Atanh => x.atanh(),
        }
    }

    /// The function on a slice: one loop per function with [`apply`](Self::apply) inlined
    /// (and vectorised where it can be), not an indirect call per element.
    pub fn map_f32(self, x: &[f32]) -> Vec<f32> {
        map_each!(self, x;
            Relu, LeakyRelu { alpha }, Sigmoid, HardSigmoid { alpha, beta }, HardSwish, Tanh, Gelu, GeluTanh,
            Elu { alpha }, Softplus, Exp, Log, Sqrt, Neg, Abs, Sign, Floor, Ceil, Round, Reciprocal, Erf, Mish,
            Swish { alpha }, Selu { alpha, gamma }, Celu { alpha }, Softsign, ThresholdedRelu { alpha },
            Shrink { bias, lambd }, Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh)
    }

    /// `dy/dx` at `x`, given `y = f(x)` (for the backward of training). Piecewise-constant
    /// functions (Sign, Floor, Ceil, Round) have derivative 0; at a kink the right-hand side's
    /// (Relu at 0: 0, as PyTorch).
    #[inline(always)]
    pub fn derivative(self, x: f32, y: f32) -> f32 {
        use std::f32::consts::{FRAC_1_SQRT_2, PI};
        let gauss = |x: f32| (-0.5 * x * x).exp() / (2.0 * PI).sqrt();
        match self {
            UnaryFn::Relu => f32::from(x > 0.0),
            UnaryFn::LeakyRelu { alpha } => {
                if x < 0.0 {
                    alpha
                } else {
                    1.0
                }
            }
            UnaryFn::Sigmoid => y * (1.0 - y),
            UnaryFn::HardSigmoid { alpha, beta } => {
                let v = alpha * x + beta;
                if v > 0.0 && v < 1.0 {
                    alpha
                } else {
                    0.0
                }
            }
            UnaryFn::HardSwish => {
                if x < -3.0 {
                    0.0
                } else if x > 3.0 {
                    1.0
                } else {
                    x / 3.0 + 0.5
                }
            }
            UnaryFn::Tanh => 1.0 - y * y,
            UnaryFn::Gelu => 0.5 * (1.0 + super::elementary::erf(x * FRAC_1_SQRT_2)) + x * gauss(x),
            UnaryFn::GeluTanh => {
                let k = (2.0 / PI).sqrt();
                let t = (k * (x + 0.044715 * x * x * x)).tanh();
                0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x)
            }
            UnaryFn::Elu { alpha } => {
                if x < 0.0 {
                    y + alpha
                } else {
                    1.0
                }
            }
            UnaryFn::Softplus => super::activation::sigmoid(x),
            UnaryFn::Exp => y,
            UnaryFn::Log => 1.0 / x,
            UnaryFn::Sqrt => 0.5 / y,
            UnaryFn::Neg => -1.0,
            UnaryFn::Abs => x.signum() * f32::from(x != 0.0),
            UnaryFn::Sign | UnaryFn::Floor | UnaryFn::Ceil | UnaryFn::Round => 0.0,
            UnaryFn::Reciprocal => -y * y,
            UnaryFn::Erf => 2.0 / PI.sqrt() * (-x * x).exp(),
            UnaryFn::Mish => {
                let t = UnaryFn::Softplus.apply(x).tanh();
                t + x * (1.0 - t * t) * super::activation::sigmoid(x)
            }
            UnaryFn::Swish { alpha } => {
                let s = super::activation::sigmoid(alpha * x);
                s + alpha * x * s * (1.0 - s)
            }
            UnaryFn::Selu { alpha, gamma } => {
                if x > 0.0 {
                    gamma
                } else {
                    y + gamma * alpha
                }
            }
            UnaryFn::Celu { alpha } => {
                if x > 0.0 {
                    1.0
                } else {
                    (x / alpha).exp()
                }
            }
            UnaryFn::Softsign => 1.0 / ((1.0 + x.abs()) * (1.0 + x.abs())),
            UnaryFn::ThresholdedRelu { alpha } => f32::from(x > alpha),
            UnaryFn::Shrink { lambd, .. } => f32::from(x < -lambd || x > lambd),
            UnaryFn::Sin => x.cos(),
            UnaryFn::Cos => -x.sin(),
            UnaryFn::Tan => 1.0 + y * y,
            UnaryFn::Asin => 1.0 / (1.0 - x * x).sqrt(),
            UnaryFn::Acos => -1.0 / (1.0 - x * x).sqrt(),
            UnaryFn::Atan => 1.0 / (1.0 + x * x),
            UnaryFn::Sinh => x.cosh(),
            UnaryFn::Cosh => x.sinh(),
            UnaryFn::Asinh => 1.0 / (x * x + 1.0).sqrt(),
            UnaryFn::Acosh => 1.0 / (x * x - 1.0).sqrt(),
            UnaryFn::Atanh => 1.0 / (1.0 - x * x),
        }
    }

    /// The function on integers (computed on i64 and wrapped back to the input's width), for
    /// the functions ONNX defines on them.
    pub fn int(self) -> Option<fn(i64) -> i64> {
        match self {
            UnaryFn::Relu => Some(|x| x.max(0)),
            UnaryFn::Neg => Some(i64::wrapping_neg),
            UnaryFn::Abs => Some(i64::wrapping_abs),
            UnaryFn::Sign => Some(i64::signum),
            _ => None,
        }
    }
}

/// An element-wise op of one input. Float inputs go through [`UnaryFn::map_f32`]; integer
/// inputs through [`UnaryFn::int`] (computed on i64 and wrapped back to the input's width), or
/// are rejected without it.
#[derive(Debug, Clone, Copy)]
pub struct Unary {
    /// The function, with its parameters.
    pub func: UnaryFn,
}

impl Unary {
    /// The op computing `func`.
    pub fn new(func: UnaryFn) -> Unary {
        Unary { func }
    }

    /// As a boxed op, the form builders return.
    pub fn boxed(self) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(self))
    }

    fn check(&self, dtype: DType) -> Result<(), OpError> {
        match dtype {
            DType::F32 => Ok(()),
            DType::Bool => Err(OpError::mismatch("expects a numeric input, got bool")),
            _ if self.func.int().is_some() => Ok(()),
            other => Err(OpError::mismatch(format!("expects a float32 input, got {}", dtype_name(other)))),
        }
    }

    fn apply<T: Elem>(&self, x: &[T]) -> Result<Vec<T>, OpError> {
        let int = self
            .func
            .int()
            .ok_or_else(|| OpError::mismatch(format!("expects a float32 input, got {}", dtype_name(T::DTYPE))))?;
        Ok(x.iter().map(|&v| T::from_i64(int(v.to_i64()))).collect())
    }
}

impl Op for Unary {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        self.check(x.dtype)?;
        Ok(vec![Fact::new(x.dtype, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        self.check(x.dtype())?;
        if let Ok(v) = x.as_f32() {
            return Ok(vec![Tensor { shape: x.shape.clone(), data: crate::model::Data::F32(self.func.map_f32(v)) }]);
        }
        let data = dispatch!(x.dtype(), T => T::wrap(self.apply::<T>(typed::<T>(x)?)?));
        Ok(vec![Tensor { shape: x.shape.clone(), data }])
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, outputs, grads, .. } = *b;
        let x = f32_in(inputs, 0)?;
        let Some(g) = out_grad(grads, 0, x.len())? else { return Ok(vec![None]) };
        let y = f32_in(outputs, 0)?.as_f32().map_err(OpError::internal)?;
        let xv = x.as_f32().map_err(OpError::internal)?;
        let f = self.func;
        let gx = g.iter().zip(xv).zip(y).map(|((&g, &x), &y)| g * f.derivative(x, y)).collect();
        Ok(vec![Some(f32_tensor(x.shape.clone(), gx))])
    }
}
