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
    ($(#[doc = $doc:literal])* $name:ident, $prefix:literal { $($(#[doc = $vdoc:literal])* $v:ident,)* }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u32)]
        pub enum $name {
            $($(#[doc = $vdoc])* $v,)*
        }

        impl $name {
            /// Every code, in order (each one's number is its index).
            pub const ALL: &'static [$name] = &[$($name::$v),*];

            /// The codes as WGSL constants, `PREFIX_NAME` in capitals.
            pub fn wgsl() -> String {
                let mut s = String::new();
                $(
                    let name = stringify!($v).to_uppercase();
                    s.push_str(&format!("const {}_{name}: u32 = {}u;\n", $prefix, $name::$v as u32));
                )*
                s
            }
        }
    };
}

codes! {
    /// `unary.wgsl`'s float functions.
    UnaryCode, "UNARY" {
        Sigmoid, Tanh, Exp, HardSigmoid, HardSwish, LeakyRelu, Elu, Neg, Abs, Sqrt, Softplus, Erf,
    }
}

codes! {
    /// `binary.wgsl`'s operations.
    BinaryCode, "BINARY" {
        Add, Sub, Mul,
        /// Input `a` clamped to the uniform's optional bounds.
        Clip,
        Div,
        /// `a < 0 ? a·b : a` (PRelu, `b` the slope).
        PRelu,
    }
}

codes! {
    /// `reduce.wgsl`'s row reductions.
    ReduceCode, "REDUCE" {
        /// Softmax of each row (the output has the input's shape).
        Softmax,
        /// The mean of each row (one value per row).
        Average,
        /// The maximum of each row.
        Max,
    }
}

/// Shared WGSL put in front of kernels that need it, each piece written once. Preludes read
/// the kernel's uniform `u` by field name (a kernel whose uniform lacks a field fails to parse,
/// in the naga tests); the entry-point preludes define `main` and call the kernel's function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prelude {
    /// `dot4`/`unpack4` on packed int8 words: `dot4I8Packed`, or an unpacking variant on
    /// adapters without the WGSL language feature `packed_4x8_integer_dot_product`.
    Dot4,
    /// 8-bit codes (`codes.wgsl`): the CPU's float-to-code rounding, and the NHWC4 layout's
    /// lanes, packing and NCHW index.
    Codes,
    /// The requantization epilogue shared by the quantized convolutions (`requant.wgsl`; needs
    /// [`Prelude::Codes`]).
    Requant,
    /// Convolution and pooling window geometry (`window.wgsl`, from the uniform's `win`).
    Window,
    /// Index spaces of up to 8 dims (`index8.wgsl`): unravelling, strided offsets.
    Index8,
    /// The entry point of one invocation per element (`elements.wgsl`: `run_element(i)`).
    Elements,
    /// The entry point of one invocation per packed word (`words.wgsl`: `run_word(p, w)`).
    Words,
    /// TFLite's integer arithmetic on Flat8 codes (`tflfixed.wgsl`: codes from bytes, the
    /// fixed-point `MultiplyByQuantizedMultiplier`; reads the uniform's `signed`).
    Tfl,
    /// The per-word entry of TFLite's element-wise kernels (`tflwords.wgsl`: four codes from
    /// the kernel's `code(e)`, written to its `y`; needs [`Prelude::Tfl`]).
    TflWords,
    /// [`UnaryCode`] as constants.
    UnaryCodes,
    /// [`BinaryCode`] as constants.
    BinaryCodes,
    /// [`ReduceCode`] as constants.
    ReduceCodes,
}

/// `[(file name, WGSL)]` of files in `shaders/`, as `build.rs` writes them (no comments).
macro_rules! shader_files {
    ($($file:literal),* $(,)?) => {
        [$(($file, include_str!(concat!(env!("OUT_DIR"), "/shaders/", $file)))),*]
    };
}

impl Prelude {
    /// The prelude's file in `shaders/` (`packed`: the `dot4I8Packed` variant of
    /// [`Prelude::Dot4`]); `None` for the op codes, generated from the Rust enums.
    pub fn file(self, packed: bool) -> Option<&'static str> {
        Some(match self {
            Prelude::Dot4 if packed => "dot4_packed.wgsl",
            Prelude::Dot4 => "dot4_unpacked.wgsl",
            Prelude::Codes => "codes.wgsl",
            Prelude::Requant => "requant.wgsl",
            Prelude::Window => "window.wgsl",
            Prelude::Index8 => "index8.wgsl",
            Prelude::Elements => "elements.wgsl",
            Prelude::Words => "words.wgsl",
            Prelude::Tfl => "tflfixed.wgsl",
            Prelude::TflWords => "tflwords.wgsl",
            Prelude::UnaryCodes | Prelude::BinaryCodes | Prelude::ReduceCodes => return None,
        })
    }

    /// The prelude's WGSL.
    pub fn source(self, packed: bool) -> Cow<'static, str> {
        match self {
            Prelude::UnaryCodes => UnaryCode::wgsl().into(),
            Prelude::BinaryCodes => BinaryCode::wgsl().into(),
            Prelude::ReduceCodes => ReduceCode::wgsl().into(),
            _ => {
                let file = self.file(packed);
                Self::FILES.iter().find(|(f, _)| Some(*f) == file).map_or("", |(_, text)| *text).into()
            }
        }
    }

    /// Every prelude file: (file name, WGSL).
    pub const FILES: [(&'static str, &'static str); 10] = shader_files![
        "dot4_packed.wgsl",
        "dot4_unpacked.wgsl",
        "codes.wgsl",
        "requant.wgsl",
        "window.wgsl",
        "index8.wgsl",
        "elements.wgsl",
        "words.wgsl",
        "tflfixed.wgsl",
        "tflwords.wgsl",
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
                    $(Kernel::$v => include_str!(concat!(env!("OUT_DIR"), "/shaders/", $file)),)*
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
    Qgemm => "qgemm.wgsl" + Dot4 + Codes,
    /// `QLinearConv` as an implicit GEMM.
    Qconv => "qconv.wgsl" + Dot4 + Codes + Requant + Window,
    /// Depthwise `QLinearConv`.
    Dwconv => "dwconv.wgsl" + Words + Dot4 + Codes + Requant + Window,
    /// Float `Conv`.
    Fconv => "fconv.wgsl" + Window,
    /// `QuantizeLinear`, per tensor, to packed 8-bit.
    Quantize => "quantize.wgsl" + Words + Codes,
    /// `DequantizeLinear`, per tensor, from packed 8-bit.
    Dequantize => "dequantize.wgsl" + Words + Dot4 + Codes,
    /// Broadcasting binary arithmetic and clip.
    Binary => "binary.wgsl" + Elements + Index8 + BinaryCodes,
    /// Strided copies (transpose, slice, split, concat).
    Copy => "copy.wgsl" + Elements + Index8,
    /// Constant-mode pad.
    Pad => "pad.wgsl" + Elements + Index8,
    /// Strided gathers of Flat8 codes (concat, slice, pad in TFLite plans).
    Copy8 => "copy8.wgsl" + Elements + Index8,
    /// 1-D/2-D max pooling.
    Maxpool => "maxpool.wgsl" + Elements + Window,
    /// RGBA pixels to the model's input tensor.
    Preprocess => "preprocess.wgsl" + Elements,
    /// Float functions of one tensor.
    Unary => "unary.wgsl" + Elements + UnaryCodes,
    /// Resampling of one axis by taps.
    Resample => "resample.wgsl" + Elements,
    /// Softmax and the global pools, per row.
    Reduce => "reduce.wgsl" + Elements + ReduceCodes,
    /// 256-entry lookup tables on packed 8-bit tensors.
    Lookup => "lookup.wgsl" + Words + Codes,
    /// 65 536-entry lookup tables on int16 codes (Flat16 tensors of 16x8 models).
    Lookup16 => "lookup16.wgsl" + Elements,
    /// TFLite's int8/uint8 convolutions and fully-connected layer (Flat8 tensors).
    Tflconv => "tflconv.wgsl" + Elements + Window + Tfl,
    /// TFLite's int8/uint8 ADD, SUB, MUL, MAXIMUM, MINIMUM with broadcasting (Flat8 tensors).
    Tflbinary => "tflbinary.wgsl" + Elements + Index8 + Tfl + TflWords,
    /// TFLite's int8/uint8 AVERAGE_POOL_2D and MAX_POOL_2D (Flat8 tensors).
    Tflpool => "tflpool.wgsl" + Elements + Tfl + TflWords,
    /// TFLite's nearest and int8 bilinear resizes (Flat8 tensors).
    Tflresize => "tflresize.wgsl" + Elements + Tfl + TflWords,
    /// TFLite's 8-bit softmax (Flat8 tensors).
    Tflsoftmax => "tflsoftmax.wgsl" + Elements + Tfl + TflWords,
    /// TFLite's 8-bit MEAN (Flat8 tensors).
    Tflmean => "tflmean.wgsl" + Elements + Tfl + TflWords,
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
