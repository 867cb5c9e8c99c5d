//! Every kernel's uniform (binding 0 of group 0) as a `#[repr(C)]` [`bytemuck::Pod`] struct,
//! the one definition of it: the WGSL struct the kernel reads is generated from the Rust one
//! ([`Uniform::wgsl`]: the structs it is made of, then `var<uniform> u` at group 0, binding 0)
//! and put in front of the kernel's source by [`crate::kernel_source`], so no `.wgsl` file
//! declares a uniform. The builders fill the structs by field name and [`Uniform::KERNEL`] ties
//! each to its [`Kernel`], so a dispatch cannot pair a kernel with another kernel's uniform.
//!
//! Each field's WGSL type comes from its Rust type ([`WgslType`]): `u32`, `i32`, `f32`;
//! `[T; 4]` of a scalar is `vec4<T>`; `[[T; 4]; N]` is `array<vec4<T>, N>`; a nested struct
//! (`Window`, `Epi`) is its WGSL name. In a uniform, `vec4`s, arrays and nested structs lie on
//! 16-byte boundaries, and every struct here is a multiple of 16 bytes. `Pod` wants no implicit
//! padding, so the Rust structs spell it out as `_pad` fields (a name starting with `_`); those
//! are no WGSL members: the member before one is `@size`d over it
//! ([`WgslStruct::wgsl_decl`]). The uniforms of the kernels with the `elements.wgsl` entry
//! point start `@elements`: the fields `n` and `row` it reads.
//!
//! The test `every_uniform_matches_its_wgsl_struct` (crate/gpu/tests/gpu.rs) parses each
//! kernel's full source with naga and checks the Rust layout against naga's: the same size,
//! and every other field's name, type, offset and size (into nested structs), so a missing or
//! misplaced `_pad` fails it (`the_uniform_check_catches_a_missing_pad`).

use crate::Kernel;
use std::fmt::Write as _;

/// A Rust type with a WGSL spelling in a uniform.
pub trait WgslType {
    /// A WGSL scalar (`u32`, `i32`, `f32`): an array of them is a vector.
    const SCALAR: bool = false;

    /// The WGSL type: `u32`, `vec4<f32>`, `array<vec4<i32>, 2>`, `Epi`.
    fn wgsl_type() -> String;

    /// Appends the WGSL declarations the type needs (the structs it is made of, each once).
    fn declare(_out: &mut String) {}
}

macro_rules! scalars {
    ($($t:ty),*) => {
        $(impl WgslType for $t {
            const SCALAR: bool = true;
            fn wgsl_type() -> String {
                stringify!($t).into()
            }
        })*
    };
}

scalars!(u32, i32, f32);

impl<T: WgslType, const N: usize> WgslType for [T; N] {
    fn wgsl_type() -> String {
        if T::SCALAR {
            format!("vec{N}<{}>", T::wgsl_type())
        } else {
            format!("array<{}, {N}>", T::wgsl_type())
        }
    }

    fn declare(out: &mut String) {
        T::declare(out);
    }
}

/// One field of a uniform struct: its name, Rust type, WGSL type, byte offset and byte size.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The field's name (the WGSL member's).
    pub name: &'static str,
    /// The field's Rust type as written (`u32`, `[[i32; 4]; 2]`, `Epi`).
    pub ty: &'static str,
    /// The field's WGSL type ([`WgslType::wgsl_type`]).
    pub wgsl: fn() -> String,
    /// Its doc comment (a comment in the WGSL).
    pub doc: &'static str,
    /// Byte offset in the struct.
    pub offset: u32,
    /// Byte size.
    pub size: u32,
}

impl Field {
    /// A field of type `T` at byte `offset`, its Rust type written `ty`.
    pub const fn of<T: WgslType>(name: &'static str, ty: &'static str, doc: &'static str, offset: usize) -> Field {
        Field { name, ty, wgsl: T::wgsl_type, doc, offset: offset as u32, size: core::mem::size_of::<T>() as u32 }
    }

    /// Padding (a name starting with `_`): in the Rust struct only, WGSL pads implicitly.
    pub fn is_padding(&self) -> bool {
        self.name.starts_with('_')
    }
}

/// A Rust struct with a WGSL twin generated from it.
pub trait WgslStruct: WgslType + bytemuck::Pod {
    /// The WGSL struct's name.
    const WGSL_NAME: &'static str;
    /// The fields in order.
    const FIELDS: &'static [Field];

    /// The WGSL declaration `struct NAME { … }`, each field's doc as a comment. Padding is
    /// not a member: the member before it is `@size`d over it, so the WGSL struct has the Rust
    /// struct's size and pads where it does (where WGSL would pad anyway, to align a `vec4`,
    /// an array or the end, offsets that disagree show in the layout test).
    fn wgsl_decl() -> String {
        let mut s = format!("struct {} {{\n", Self::WGSL_NAME);
        let real: Vec<&Field> = Self::FIELDS.iter().filter(|f| !f.is_padding()).collect();
        for (k, f) in real.iter().enumerate() {
            let end = real.get(k + 1).map_or(core::mem::size_of::<Self>() as u32, |g| g.offset);
            let size = if end > f.offset + f.size { format!("@size({}) ", end - f.offset) } else { String::new() };
            let _ = write!(s, "    {size}{}: {},", f.name, (f.wgsl)());
            if !f.doc.is_empty() {
                let _ = write!(s, " //{}", f.doc);
            }
            s.push('\n');
        }
        s.push_str("}\n");
        s
    }
}

/// A kernel's uniform at group 0, binding 0.
pub trait Uniform: WgslStruct {
    /// The kernel that reads it.
    const KERNEL: Kernel;

    /// The WGSL a kernel's source starts with: the structs of the uniform, then
    /// `@group(0) @binding(0) var<uniform> u: NAME;`.
    fn wgsl() -> String {
        let mut s = String::new();
        Self::declare(&mut s);
        let _ = writeln!(s, "@group(0) @binding(0) var<uniform> u: {};", Self::WGSL_NAME);
        s
    }
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
    /// The layout of `T`, named `rust_name`, read by `kernel`.
    pub const fn of<T: WgslStruct>(rust_name: &'static str, kernel: Option<Kernel>) -> UniformLayout {
        UniformLayout {
            rust_name,
            kernel,
            wgsl_name: T::WGSL_NAME,
            size: core::mem::size_of::<T>() as u32,
            fields: T::FIELDS,
        }
    }
}

/// Defines a struct and its WGSL twin: the field list with WGSL types, and the declaration.
/// A body that starts with `@elements` starts with the two fields `elements.wgsl` reads.
macro_rules! wgsl_struct {
    ($(#[doc = $doc:literal])* $name:ident as $wgsl:literal { @elements $($rest:tt)* }) => {
        wgsl_struct! { $(#[doc = $doc])* $name as $wgsl {
            /// Elements: one invocation each (`elements.wgsl`).
            n: u32,
            /// Invocations per row of the 2-D dispatch grid.
            row: u32,
            $($rest)*
        } }
    };
    ($(#[doc = $doc:literal])* $name:ident as $wgsl:literal {
        $($(#[doc = $fdoc:literal])* $f:ident: $ty:ty,)*
    }) => {
        $(#[doc = $doc])*
        #[repr(C)]
        #[derive(Debug, Default, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $($(#[doc = $fdoc])* pub $f: $ty,)*
        }

        impl WgslType for $name {
            fn wgsl_type() -> String {
                $wgsl.into()
            }

            fn declare(out: &mut String) {
                $(<$ty as WgslType>::declare(out);)*
                let decl = <$name as WgslStruct>::wgsl_decl();
                if !out.contains(&decl) {
                    out.push_str(&decl);
                }
            }
        }

        impl WgslStruct for $name {
            const WGSL_NAME: &'static str = $wgsl;
            const FIELDS: &'static [Field] = &[$(Field::of::<$ty>(
                stringify!($f),
                stringify!($ty),
                concat!($($fdoc),*),
                core::mem::offset_of!($name, $f),
            ),)*];
        }
    };
}

/// Defines the uniform structs, each for one kernel, [`LAYOUTS`] and [`uniform_wgsl`].
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

        /// The generated WGSL of `kernel`'s uniform ([`Uniform::wgsl`]); every kernel has one.
        pub fn uniform_wgsl(kernel: Kernel) -> String {
            match kernel {
                $(Kernel::$kernel => <$name as Uniform>::wgsl(),)*
            }
        }
    };
}

mod kernels;
pub use kernels::*;
