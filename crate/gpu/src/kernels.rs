//! The WGSL kernels, from one table: each [`Kernel`] with its file and the preludes put in
//! front of it. Pipeline creation, the naga validation test and the list of shader files are
//! all made from this table, so adding a kernel is one line here plus its `.wgsl` and its
//! uniform struct in [`crate::uniforms`], whose WGSL is generated from the Rust struct and put
//! first in the kernel's source ([`kernel_source`]); no `.wgsl` file declares a uniform. The op
//! codes a kernel switches on ([`UnaryCode`], [`BinaryCode`], [`ReduceCode`]) are Rust enums
//! written into its WGSL as constants (`const UNARY_SIGMOID: u32 = 0u;`), so each number
//! exists once.

use std::borrow::Cow;

macro_rules! codes {
    ($(#[doc = $doc:literal])* $name:ident, $prefix:literal { $($(#[doc = $vdoc:literal])* $v:ident = $n:literal,)* }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u32)]
        pub enum $name {
            $($(#[doc = $vdoc])* $v = $n,)*
        }

        impl $name {
            /// Every code.
            pub const ALL: &'static [$name] = &[$($name::$v),*];

            /// The codes as WGSL constants, `PREFIX_NAME` in capitals.
            pub fn wgsl() -> String {
                let mut s = String::new();
                $(s.push_str(&format!("const {}_{}: u32 = {}u;\n", $prefix, stringify!($v).to_uppercase(), $n));)*
                s
            }
        }
    };
}

codes! {
    /// `unary.wgsl`'s float functions.
    UnaryCode, "UNARY" {
        Sigmoid = 0,
        Tanh = 1,
        Exp = 2,
        HardSigmoid = 3,
        HardSwish = 4,
        LeakyRelu = 5,
        Elu = 6,
        Neg = 7,
        Abs = 8,
        Sqrt = 9,
        Softplus = 10,
        Erf = 11,
    }
}

codes! {
    /// `binary.wgsl`'s operations.
    BinaryCode, "BINARY" {
        Add = 0,
        Sub = 1,
        Mul = 2,
        /// Input `a` clamped to the uniform's optional bounds.
        Clip = 3,
        Div = 4,
    }
}

codes! {
    /// `reduce.wgsl`'s row reductions.
    ReduceCode, "REDUCE" {
        /// Softmax of each row (the output has the input's shape).
        Softmax = 0,
        /// The mean of each row (one value per row).
        Average = 1,
        /// The maximum of each row.
        Max = 2,
    }
}

/// Shared WGSL put in front of kernels that need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prelude {
    /// `dot4`/`unpack4` on packed int8 words: `dot4I8Packed`, or an unpacking variant on
    /// adapters without the WGSL language feature `packed_4x8_integer_dot_product`.
    Dot4,
    /// The requantization epilogue shared by the quantized convolutions.
    Requant,
    /// [`UnaryCode`] as constants.
    UnaryCodes,
    /// [`BinaryCode`] as constants.
    BinaryCodes,
    /// [`ReduceCode`] as constants.
    ReduceCodes,
}

impl Prelude {
    /// The prelude's WGSL (`packed`: the `dot4I8Packed` variant of [`Prelude::Dot4`]).
    pub fn source(self, packed: bool) -> Cow<'static, str> {
        match (self, packed) {
            (Prelude::Dot4, true) => include_str!("../shaders/dot4_packed.wgsl").into(),
            (Prelude::Dot4, false) => include_str!("../shaders/dot4_unpacked.wgsl").into(),
            (Prelude::Requant, _) => include_str!("../shaders/requant.wgsl").into(),
            (Prelude::UnaryCodes, _) => UnaryCode::wgsl().into(),
            (Prelude::BinaryCodes, _) => BinaryCode::wgsl().into(),
            (Prelude::ReduceCodes, _) => ReduceCode::wgsl().into(),
        }
    }

    /// Every prelude file: (file name, WGSL).
    pub const FILES: [(&'static str, &'static str); 3] = [
        ("dot4_packed.wgsl", include_str!("../shaders/dot4_packed.wgsl")),
        ("dot4_unpacked.wgsl", include_str!("../shaders/dot4_unpacked.wgsl")),
        ("requant.wgsl", include_str!("../shaders/requant.wgsl")),
    ];
}

macro_rules! kernels {
    ($($(#[doc = $doc:literal])* $v:ident => $file:literal $(+ $pre:ident)*,)*) => {
        /// A compute kernel: a WGSL file with an entry point `main`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kernel {
            $($(#[doc = $doc])* $v,)*
        }

        impl Kernel {
            /// Every kernel.
            pub const ALL: &'static [Kernel] = &[$(Kernel::$v),*];

            /// The WGSL file name (also the pipeline's label and the name errors use).
            pub fn file(self) -> &'static str {
                match self {
                    $(Kernel::$v => $file,)*
                }
            }

            /// The kernel's own WGSL, without preludes.
            pub fn body(self) -> &'static str {
                match self {
                    $(Kernel::$v => include_str!(concat!("../shaders/", $file)),)*
                }
            }

            /// The preludes put in front of it, in order.
            pub fn preludes(self) -> &'static [Prelude] {
                match self {
                    $(Kernel::$v => &[$(Prelude::$pre),*],)*
                }
            }
        }
    };
}

kernels! {
    /// Int8 GEMM with requantization ([`crate::QGemm`]).
    Qgemm => "qgemm.wgsl" + Dot4,
    /// `QLinearConv` as an implicit GEMM.
    Qconv => "qconv.wgsl" + Dot4 + Requant,
    /// Depthwise `QLinearConv`.
    Dwconv => "dwconv.wgsl" + Dot4 + Requant,
    /// Float `Conv`.
    Fconv => "fconv.wgsl",
    /// `QuantizeLinear`, per tensor, to packed 8-bit.
    Quantize => "quantize.wgsl",
    /// `DequantizeLinear`, per tensor, from packed 8-bit.
    Dequantize => "dequantize.wgsl" + Dot4,
    /// Broadcasting binary arithmetic and clip.
    Binary => "binary.wgsl" + BinaryCodes,
    /// Strided copies (transpose, slice, split, concat).
    Copy => "copy.wgsl",
    /// Constant-mode pad.
    Pad => "pad.wgsl",
    /// 1-D/2-D max pooling.
    Maxpool => "maxpool.wgsl",
    /// RGBA pixels to the model's input tensor.
    Preprocess => "preprocess.wgsl",
    /// Float functions of one tensor.
    Unary => "unary.wgsl" + UnaryCodes,
    /// Resampling of one axis by taps.
    Resample => "resample.wgsl",
    /// Softmax and the global pools, per row.
    Reduce => "reduce.wgsl" + ReduceCodes,
    /// 256-entry lookup tables on packed 8-bit tensors.
    Lookup => "lookup.wgsl",
}

/// The full WGSL text of `kernel`: its uniform's WGSL, generated from the Rust struct
/// ([`crate::uniforms::uniform_wgsl`]), its preludes (`packed`: the `dot4I8Packed` variant of
/// [`Prelude::Dot4`]), then its own file.
pub fn kernel_source(kernel: Kernel, packed: bool) -> String {
    let mut s = crate::uniforms::uniform_wgsl(kernel);
    s.push('\n');
    for p in kernel.preludes() {
        s.push_str(&p.source(packed));
        s.push('\n');
    }
    s.push_str(kernel.body());
    s
}

/// Every WGSL file: the kernels, then the preludes, as (file name, WGSL).
pub fn shader_files() -> Vec<(&'static str, &'static str)> {
    Kernel::ALL.iter().map(|k| (k.file(), k.body())).chain(Prelude::FILES).collect()
}
