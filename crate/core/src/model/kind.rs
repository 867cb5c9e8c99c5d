//! [`OpKind`]: the op types that graph passes reason about, as one typed enum.
//!
//! Loading keeps a node's ONNX op type as text ([`Node::op_type`]), because a file may hold any
//! op, and the [registry](crate::ops::Registry) maps that text to a builder. Everything after
//! loading that asks "is this node a Conv?" asks with an `OpKind` ([`Node::is`],
//! [`Node::kind`]), never with a string literal: each op name a pass depends on is written once,
//! here, and a misspelt kind does not compile. `crate/core/tests/layering.rs` enforces it, and a
//! test checks that every kind but `Constant` (folded while loading) and the ops PTQ's opset
//! check names without qplay running them has a builder, which catches a misspelt name.

use super::Node;

macro_rules! op_kinds {
    ($($(#[$doc:meta])* $v:ident $(= $name:literal)?),* $(,)?) => {
        /// An op type a graph pass matches on (see the [module docs](self)).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum OpKind {
            $($(#[$doc])* #[doc = concat!("`", stringify!($v), "`.")] $v),*
        }

        impl OpKind {
            /// Every kind.
            pub const ALL: &'static [OpKind] = &[$(OpKind::$v),*];

            /// The op type as a node spells it (`"Conv"`; internal ops carry their domain).
            pub const fn name(self) -> &'static str {
                match self {
                    $(OpKind::$v => op_kinds!(@name $v $($name)?)),*
                }
            }
        }
    };
    (@name $v:ident) => { stringify!($v) };
    (@name $v:ident $name:literal) => { $name };
}

op_kinds! {
    Abs, Add, AveragePool, BatchNormalization, Cast, Clip, Concat,
    /// Folded into initializers while loading.
    Constant,
    Conv, ConvInteger, ConvTranspose, DequantizeLinear, Div, Elu, Erf, Exp, Flatten, Gelu, Gemm,
    GridSample, HardSigmoid, HardSwish, Hardmax, Identity,
    /// Control flow: planning inlines the branch a constant condition takes.
    If,
    LeakyRelu, Log, LogSoftmax,
    /// Control flow: a body run while a condition holds, up to a trip count.
    Loop,
    MatMul,
    MatMulInteger, Max, MaxPool, Min, Mul, Neg, Pow, QLinearConv, QLinearMatMul, QuantizeLinear,
    Reciprocal, ReduceMax, ReduceMean, ReduceMin, ReduceProd, ReduceSum, Relu, Reshape, Shape, Sigmoid, Size, Slice,
    Softmax, Softplus, Split, Sqrt, Squeeze, Sub, Tanh, TopK, Transpose, Unsqueeze,
    /// qplay's 8-bit lookup table ([`crate::ops::quant::lookup`]), written by
    /// [`lower_lut`](super::lower_lut).
    Lookup = "qplay.Lookup",
    /// TFLite's SSD post-processing custom op ([`crate::ops::detect::detection_postprocess`]).
    TfliteDetectionPostProcess = "TFLite_Detection_PostProcess",
    /// qplay's fake quantizer for training ([`crate::ops::quant::fake_quant`]).
    FakeQuant = "qplay.FakeQuant",
}

impl OpKind {
    /// The kind of an op type, if passes know it.
    pub fn of(op_type: &str) -> Option<OpKind> {
        OpKind::ALL.iter().copied().find(|k| k.name() == op_type)
    }
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl From<OpKind> for String {
    fn from(k: OpKind) -> String {
        k.name().to_string()
    }
}

impl Node {
    /// The node's kind, when it is one that passes know.
    pub fn kind(&self) -> Option<OpKind> {
        OpKind::of(&self.op_type)
    }

    /// Whether the node is of kind `k`.
    pub fn is(&self, k: OpKind) -> bool {
        self.op_type == k.name()
    }

    /// The float → 8-bit conversion the TFLite loader puts behind a quantized graph input
    /// (`qplay.tfl.Quantize`): its output code type (ONNX's code: 2 uint8, 3 int8, 5 int16),
    /// scale and zero point.
    pub fn tflite_quantize(&self) -> Option<(i64, f32, i64)> {
        if self.op_type != crate::ops::tflite::quantize::QUANTIZE {
            return None;
        }
        Some((self.attrs.int("y_type", 3), self.attrs.float_opt("y_scale")?, self.attrs.int_opt("y_zp")?))
    }

    /// Whether the node is a `DequantizeLinear`, the default domain's or onnxruntime's
    /// `com.microsoft` one (16-bit QDQ before opset 21).
    pub fn is_dequantize_linear(&self) -> bool {
        self.is(OpKind::DequantizeLinear) || self.op_type == "com.microsoft::DequantizeLinear"
    }

    /// Whether the node is a `QuantizeLinear`, the default domain's or `com.microsoft`'s.
    pub fn is_quantize_linear(&self) -> bool {
        self.is(OpKind::QuantizeLinear) || self.op_type == "com.microsoft::QuantizeLinear"
    }

    /// Whether the node computes on quantized values: Q/DQ (either domain), the integer ops of
    /// ONNX's QOperator and dynamic forms, and onnxruntime's `com.microsoft` quantized ops
    /// (QLinearAdd, QGemm, …).
    pub fn is_quantized_op(&self) -> bool {
        self.is_quantize_linear()
            || self.is_dequantize_linear()
            || self.is_any(&[OpKind::QLinearConv, OpKind::QLinearMatMul, OpKind::ConvInteger, OpKind::MatMulInteger])
            || self.op_type == "DynamicQuantizeLinear"
            || self.op_type.starts_with("com.microsoft::Q")
    }

    /// Whether the node is of one of `kinds`.
    pub fn is_any(&self, kinds: &[OpKind]) -> bool {
        kinds.iter().any(|&k| self.is(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_but_load_time_ones_is_registered() {
        let registry = crate::ops::Registry::new();
        // Constant is folded while loading; PTQ's opset check names ops qplay does not run.
        let not_run = [OpKind::Constant, OpKind::Hardmax, OpKind::LogSoftmax];
        let mut missing = Vec::new();
        for &k in OpKind::ALL {
            assert_eq!(OpKind::of(k.name()), Some(k));
            if registry.get(k.name()).is_none() && !not_run.contains(&k) {
                missing.push(k.name());
            }
        }
        assert!(missing.is_empty(), "kinds without a builder (misspelt?): {missing:?}");
    }
}
