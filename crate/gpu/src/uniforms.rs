//! Every kernel's uniform (binding 0 of group 0) as a `#[repr(C)]` [`bytemuck::Pod`] struct
//! that mirrors the WGSL struct field by field, with the same names. The builders fill them by
//! field name and [`Uniform::KERNEL`] ties each to its [`Kernel`], so a dispatch cannot pair a
//! kernel with another kernel's uniform. The test `every_uniform_matches_its_wgsl_struct`
//! (crate/gpu/tests/gpu.rs) checks each against naga's layout of its kernel's WGSL: the same
//! size, and every member's name, type, offset and size (into nested structs), one Rust struct
//! per kernel.
//!
//! WGSL's `vec4<T>` is `[T; 4]` here and `array<vec4<T>, N>` is `[[T; 4]; N]`; a struct is
//! 16-byte aligned in WGSL, so the Rust structs carry explicit `_pad` words up to a multiple of
//! 16 bytes (and before any `vec4`), making their size the WGSL struct's span.

use crate::Kernel;

/// One field of a uniform struct: its name, Rust type, byte offset and byte size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The field's name (the WGSL member's).
    pub name: &'static str,
    /// The field's Rust type as written (`u32`, `[[i32; 4]; 2]`, `Epi`).
    pub ty: &'static str,
    /// Byte offset in the struct.
    pub offset: u32,
    /// Byte size.
    pub size: u32,
}

/// A Rust struct that mirrors a WGSL struct.
pub trait WgslStruct: bytemuck::Pod {
    /// The WGSL struct's name.
    const WGSL_NAME: &'static str;
    /// The fields in order.
    const FIELDS: &'static [Field];
}

/// A kernel's uniform at group 0, binding 0.
pub trait Uniform: WgslStruct {
    /// The kernel that reads it.
    const KERNEL: Kernel;
}

/// The layout of one Rust uniform struct (for the layout test).
#[derive(Debug, Clone, Copy)]
pub struct UniformLayout {
    /// The Rust type's name.
    pub rust_name: &'static str,
    /// The kernel that reads it (`None`: a struct nested in uniforms).
    pub kernel: Option<Kernel>,
    /// The WGSL struct's name.
    pub wgsl_name: &'static str,
    /// The struct's size in bytes.
    pub size: u32,
    /// Its fields.
    pub fields: &'static [Field],
}

impl UniformLayout {
    const fn of<T: WgslStruct>(rust_name: &'static str, kernel: Option<Kernel>) -> UniformLayout {
        UniformLayout {
            rust_name,
            kernel,
            wgsl_name: T::WGSL_NAME,
            size: core::mem::size_of::<T>() as u32,
            fields: T::FIELDS,
        }
    }
}

/// Defines a struct mirroring a WGSL struct, with its field list.
macro_rules! wgsl_struct {
    ($(#[doc = $doc:literal])* $name:ident as $wgsl:literal {
        $($(#[doc = $fdoc:literal])* $f:ident: $ty:ty,)*
    }) => {
        $(#[doc = $doc])*
        #[repr(C)]
        #[derive(Debug, Default, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $($(#[doc = $fdoc])* pub $f: $ty,)*
        }

        impl WgslStruct for $name {
            const WGSL_NAME: &'static str = $wgsl;
            const FIELDS: &'static [Field] = &[$(Field {
                name: stringify!($f),
                ty: stringify!($ty),
                offset: core::mem::offset_of!($name, $f) as u32,
                size: core::mem::size_of::<$ty>() as u32,
            },)*];
        }
    };
}

/// Defines the uniform structs, each for one kernel, and [`LAYOUTS`].
macro_rules! uniforms {
    (
        nested { $($(#[doc = $ndoc:literal])* $nname:ident as $nwgsl:literal { $($nbody:tt)* })* }
        $($(#[doc = $doc:literal])* $name:ident for $kernel:ident as $wgsl:literal { $($body:tt)* })*
    ) => {
        $(wgsl_struct! { $(#[doc = $ndoc])* $nname as $nwgsl { $($nbody)* } })*
        $(
            wgsl_struct! { $(#[doc = $doc])* $name as $wgsl { $($body)* } }
            impl Uniform for $name {
                const KERNEL: Kernel = Kernel::$kernel;
            }
        )*

        /// Every uniform struct (with its kernel), then the structs nested in them.
        pub const LAYOUTS: &[UniformLayout] = &[
            $(UniformLayout::of::<$name>(stringify!($name), Some(Kernel::$kernel)),)*
            $(UniformLayout::of::<$nname>(stringify!($nname), None),)*
        ];
    };
}

uniforms! {
    nested {
        /// The requantization epilogue shared by the quantized convolutions (`Epi` in
        /// `requant.wgsl`).
        Epi as "Epi" {
            /// 0: 8-bit codes, packed 4 per word; 1: float32 NCHW.
            float_out: u32,
            /// 1: per-channel upper bounds apply.
            has_cmax: u32,
            /// Output zero-point.
            zp: i32,
            /// Code clamp (the fused activation, or the type's range).
            lo: i32,
            /// Upper code clamp.
            hi: i32,
            /// Float clamp (±f32 max when unbounded).
            flo: f32,
            /// Upper float clamp.
            fhi: f32,
            _pad: u32,
        }
    }

    /// `qgemm.wgsl`: the int8 GEMM's dimensions and output clamp ([`crate::QGemm`]).
    QgemmUniform for Qgemm as "Dims" {
        m: u32,
        n: u32,
        /// K / 4, rounded up (zero-padded words).
        k4: u32,
        /// Output zero-point.
        zp: i32,
        /// Clamp bounds in the output's integer domain.
        lo: i32,
        hi: i32,
        _pad0: u32,
        _pad1: u32,
    }

    /// `qconv.wgsl`: `QLinearConv` as an implicit GEMM.
    QconvUniform for Qconv as "Conv" {
        ih: u32,
        iw: u32,
        /// Input words per pixel.
        c4_in: u32,
        oh: u32,
        ow: u32,
        /// Output channels.
        m: u32,
        /// Output words per pixel.
        m4: u32,
        /// Batch · oh · ow.
        npix: u32,
        kh: u32,
        kw: u32,
        sh: u32,
        sw: u32,
        dh: u32,
        dw: u32,
        /// Padding before (top, left).
        ph: u32,
        pw: u32,
        /// Input channels per group.
        cg: u32,
        /// Output channels per group.
        mg: u32,
        /// Words per tap in a weight row.
        cg4: u32,
        /// 1: the fast path applies.
        fast: u32,
        /// 0x80808080 for uint8 activations, else 0.
        x_xor: u32,
        /// x' of a padded tap, in all four lanes.
        pad_word: u32,
        /// 0x01 in the lanes of the last word of a tap that hold real channels.
        last_mask: u32,
        /// 1: some channel has zb ≠ 0 (Σx' is needed).
        need_xsum: u32,
        epi: Epi,
    }

    /// `dwconv.wgsl`: depthwise `QLinearConv`.
    DwconvUniform for Dwconv as "Dw" {
        ih: u32,
        iw: u32,
        /// Words per pixel (input and output).
        c4: u32,
        /// Channels.
        c: u32,
        oh: u32,
        ow: u32,
        /// Batch · oh · ow.
        npix: u32,
        kh: u32,
        kw: u32,
        sh: u32,
        sw: u32,
        dh: u32,
        dw: u32,
        ph: u32,
        pw: u32,
        /// 0x80808080 for uint8 activations, else 0.
        x_xor: u32,
        /// shift − zx: x' + a = x − zx.
        a: i32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
        epi: Epi,
    }

    /// `fconv.wgsl`: float `Conv`.
    FconvUniform for Fconv as "F" {
        ih: u32,
        iw: u32,
        /// Input channels.
        c: u32,
        oh: u32,
        ow: u32,
        /// Output channels.
        m: u32,
        /// Batch · oh · ow.
        npix: u32,
        kh: u32,
        kw: u32,
        sh: u32,
        sw: u32,
        dh: u32,
        dw: u32,
        ph: u32,
        pw: u32,
        /// Input channels per group.
        cg: u32,
        /// Output channels per group.
        mg: u32,
        has_bias: u32,
        has_lo: u32,
        has_hi: u32,
        has_cmax: u32,
        lo: f32,
        hi: f32,
        /// 1: the four channels of an invocation are in one group.
        fast: u32,
    }

    /// `quantize.wgsl`: `QuantizeLinear` per tensor.
    QuantizeUniform for Quantize as "Q" {
        /// Channels.
        c: u32,
        /// Words per pixel.
        c4: u32,
        /// Pixels per image (product of the spatial dims; 1 for rank 2).
        s: u32,
        /// Batch · s.
        npix: u32,
        scale: f32,
        zp: i32,
        qmin: i32,
        qmax: i32,
    }

    /// `dequantize.wgsl`: `DequantizeLinear` per tensor.
    DequantizeUniform for Dequantize as "D" {
        c: u32,
        c4: u32,
        s: u32,
        npix: u32,
        scale: f32,
        zp: i32,
        /// 0x80808080 for uint8, else 0.
        x_xor: u32,
        /// 128 for uint8, else 0.
        shift: i32,
    }

    /// `binary.wgsl`: broadcasting binary arithmetic and clip.
    BinaryUniform for Binary as "B" {
        /// Output elements.
        n: u32,
        /// A [`crate::BinaryCode`].
        op: u32,
        /// Invocations per dispatch row.
        row: u32,
        has_lo: u32,
        has_hi: u32,
        lo: f32,
        hi: f32,
        _pad: u32,
        /// Output shape, right-aligned to 8 dims (leading 1s).
        dims: [[u32; 4]; 2],
        /// `a`'s strides (0 where broadcast).
        sa: [[u32; 4]; 2],
        /// `b`'s strides.
        sb: [[u32; 4]; 2],
    }

    /// `copy.wgsl`: a strided copy.
    CopyUniform for Copy as "C" {
        n: u32,
        row: u32,
        dst_base: u32,
        src_base: u32,
        dims: [[u32; 4]; 2],
        /// Source strides (signed, for reversed slices).
        ss: [[i32; 4]; 2],
        /// Destination strides.
        sd: [[u32; 4]; 2],
    }

    /// `pad.wgsl`: constant-mode pad.
    PadUniform for Pad as "P" {
        /// Output elements.
        n: u32,
        /// Invocations per dispatch row.
        row: u32,
        /// The constant.
        value: f32,
        _pad: u32,
        /// Output shape.
        dims: [[u32; 4]; 2],
        /// Pads before each dim (negative: crop).
        begin: [[i32; 4]; 2],
        /// Input shape.
        idims: [[u32; 4]; 2],
        /// Input strides.
        istr: [[u32; 4]; 2],
    }

    /// `maxpool.wgsl`: 1-D/2-D max pooling.
    MaxpoolUniform for Maxpool as "M" {
        /// Output elements (planes · oh · ow).
        n: u32,
        /// Invocations per dispatch row.
        row: u32,
        ih: u32,
        iw: u32,
        oh: u32,
        ow: u32,
        kh: u32,
        kw: u32,
        sh: u32,
        sw: u32,
        dh: u32,
        dw: u32,
        ph: u32,
        pw: u32,
        _pad0: u32,
        _pad1: u32,
    }

    /// `preprocess.wgsl`: RGBA pixels to the model's input tensor.
    PreprocessUniform for Preprocess as "P" {
        /// Input pixels (in_w · in_h).
        n: u32,
        /// Invocations per dispatch row.
        row: u32,
        /// Frame width in pixels.
        src_w: u32,
        in_w: u32,
        /// Content rectangle in the input.
        left: u32,
        top: u32,
        cw: u32,
        ch: u32,
        /// 1: `[1, H, W, 3]`, else `[1, 3, H, W]`.
        nhwc: u32,
        _p0: u32,
        _p1: u32,
        _p2: u32,
        /// RGBA byte of each model channel.
        src_ch: [u32; 4],
        /// 1 / (255·std).
        a: [f32; 4],
        /// −mean / std.
        b: [f32; 4],
        /// Normalised padding value.
        pad: [f32; 4],
    }

    /// `unary.wgsl`: float functions of one tensor.
    UnaryUniform for Unary as "U" {
        /// Elements.
        n: u32,
        /// Invocations per dispatch row.
        row: u32,
        /// A [`crate::UnaryCode`].
        op: u32,
        _pad: u32,
        alpha: f32,
        beta: f32,
        _pad1: u32,
        _pad2: u32,
    }

    /// `resample.wgsl`: resampling of one axis by taps.
    ResampleUniform for Resample as "R" {
        /// Output elements.
        n: u32,
        /// Invocations per dispatch row.
        row: u32,
        n_in: u32,
        n_out: u32,
        inner: u32,
        _p0: u32,
        _p1: u32,
        _p2: u32,
    }

    /// `reduce.wgsl`: softmax and the global pools, per row.
    ReduceUniform for Reduce as "S" {
        /// Outer · inner.
        rows: u32,
        /// Invocations per dispatch row.
        row: u32,
        len: u32,
        inner: u32,
        /// A [`crate::ReduceCode`].
        op: u32,
        _p0: u32,
        _p1: u32,
        _p2: u32,
    }

    /// `lookup.wgsl`: 256-entry lookup tables on packed 8-bit tensors.
    LookupUniform for Lookup as "L" {
        /// Batch · pixels.
        npix: u32,
        /// Words per pixel (⌈channels / 4⌉).
        c4: u32,
        /// Channels.
        c: u32,
        _pad: u32,
    }
}
