//! The GPU int8 GEMM against the CPU reference, bit for bit, natively on Vulkan (lavapipe where
//! there is no GPU: `npm test` installs mesa-vulkan-drivers), both `dot4` variants; every WGSL
//! file validated by naga; every kernel's uniform checked against its Rust struct; bad input.

mod common;

use common::{gpu, Rng};
use qplay_core::ops::quant::qgemm::{qgemm, Bytes, Epilogue, Out, PackedA, PerIndex, QMat};
use qplay_gpu::uniforms::{Field, UniformLayout, WgslStruct, WgslType, LAYOUTS};
use qplay_gpu::{kernel_source, shader_files, GpuError, Kernel, QGemm};

#[test]
fn every_wgsl_file_validates_with_naga() {
    // Every kernel with each `dot4` prelude; together they cover every .wgsl file.
    let mut covered = std::collections::BTreeSet::new();
    let files = shader_files();
    for &kernel in Kernel::ALL {
        for packed in [true, false] {
            let src = kernel_source(kernel, packed);
            let module = naga::front::wgsl::parse_str(&src)
                .unwrap_or_else(|e| panic!("{kernel:?} (packed {packed}): {}", e.emit_to_string(&src)));
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
                .validate(&module)
                .unwrap_or_else(|e| panic!("{kernel:?} (packed {packed}): {e:?}"));
            for &(name, text) in &files {
                if src.contains(text) {
                    covered.insert(name);
                }
            }
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    for f in std::fs::read_dir(&dir).unwrap() {
        let name = f.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".wgsl") {
            let listed = files.iter().find(|(n, _)| *n == name).map(|(n, _)| *n);
            let listed =
                listed.unwrap_or_else(|| panic!("{name} is not listed in the kernel table (crate/gpu/src/kernels.rs)"));
            assert!(covered.contains(listed), "{name} is not validated by any kernel");
        }
    }
}

/// The Rust type a WGSL uniform member mirrors (`u32`, `[f32; 4]`, `[[i32; 4]; 2]`, or a
/// nested struct's Rust name).
fn rust_type_of(module: &naga::Module, ty: naga::Handle<naga::Type>) -> String {
    use naga::{ArraySize, Scalar, TypeInner};
    let scalar = |s: Scalar| match (s.kind, s.width) {
        (naga::ScalarKind::Uint, 4) => "u32".to_string(),
        (naga::ScalarKind::Sint, 4) => "i32".to_string(),
        (naga::ScalarKind::Float, 4) => "f32".to_string(),
        other => panic!("no Rust mirror for the WGSL scalar {other:?}"),
    };
    let t = &module.types[ty];
    match &t.inner {
        TypeInner::Scalar(s) => scalar(*s),
        TypeInner::Vector { size, scalar: s } => format!("[{}; {}]", scalar(*s), *size as u8),
        TypeInner::Array { base, size: ArraySize::Constant(n), .. } => {
            format!("[{}; {n}]", rust_type_of(module, *base))
        }
        TypeInner::Struct { .. } => {
            let name = t.name.as_deref().unwrap_or("?");
            let nested = LAYOUTS.iter().find(|l| l.kernel.is_none() && l.wgsl_name == name);
            nested.unwrap_or_else(|| panic!("WGSL struct {name} has no nested Rust struct in LAYOUTS")).rust_name.into()
        }
        other => panic!("no Rust mirror for the WGSL type {other:?}"),
    }
}

/// Checks the WGSL struct `ty` against the Rust layout `rust`: name, size (the span) and each
/// field's name, Rust type, offset and size (padding fields, absent from the WGSL, only through
/// the offsets after them and the size); nested structs too.
fn check_struct(
    module: &naga::Module,
    layouter: &naga::proc::Layouter,
    ty: naga::Handle<naga::Type>,
    rust: &UniformLayout,
    what: &str,
) -> Result<(), String> {
    let t = &module.types[ty];
    let naga::TypeInner::Struct { members, span } = &t.inner else { return Err(format!("{what}: not a struct")) };
    let wgsl_name = t.name.as_deref().unwrap_or("?");
    let r = rust.rust_name;
    if wgsl_name != rust.wgsl_name {
        return Err(format!("{what}: {r} says it is WGSL struct {}, the WGSL has {wgsl_name}", rust.wgsl_name));
    }
    if layouter[ty].size != *span {
        return Err(format!("{what}: naga's layout of {wgsl_name} disagrees with its span"));
    }
    let ours: Vec<(String, String, u32, u32)> = rust
        .fields
        .iter()
        .filter(|f| !f.is_padding())
        .map(|f| (f.name.to_string(), f.ty.replace(' ', ""), f.offset, f.size))
        .collect();
    let theirs: Vec<(String, String, u32, u32)> = members
        .iter()
        .map(|m| {
            let name = m.name.clone().unwrap_or_default();
            (name, rust_type_of(module, m.ty).replace(' ', ""), m.offset, layouter[m.ty].size)
        })
        .collect();
    if ours != theirs {
        return Err(format!(
            "{what}: {r} fields (name, type, offset, size)\n  {ours:?}\nWGSL {wgsl_name} members\n  {theirs:?}"
        ));
    }
    if rust.size != *span {
        return Err(format!("{what}: {r} is {} bytes, WGSL {wgsl_name} spans {span}", rust.size));
    }
    for m in members {
        if let naga::TypeInner::Struct { .. } = module.types[m.ty].inner {
            let name = module.types[m.ty].name.as_deref().unwrap_or("?");
            let nested = LAYOUTS.iter().find(|l| l.kernel.is_none() && l.wgsl_name == name);
            let nested = nested.ok_or_else(|| format!("{what}: WGSL struct {name} has no nested Rust struct"))?;
            check_struct(module, layouter, m.ty, nested, &format!("{what} → {name}"))?;
        }
    }
    Ok(())
}

/// Parses `src` with naga and checks its one uniform (group 0, binding 0) against `rust`.
fn check_uniform(src: &str, rust: &UniformLayout, what: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(src).map_err(|e| format!("{what}: {}", e.emit_to_string(src)))?;
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).map_err(|e| format!("{what}: {e}"))?;
    let uniforms: Vec<_> =
        module.global_variables.iter().filter(|(_, g)| g.space == naga::AddressSpace::Uniform).collect();
    if uniforms.len() != 1 {
        return Err(format!("{what}: one `var<uniform>` expected, found {}", uniforms.len()));
    }
    let g = uniforms[0].1;
    if g.binding != Some(naga::ResourceBinding { group: 0, binding: 0 }) {
        return Err(format!("{what}: the uniform must be at group 0, binding 0"));
    }
    check_struct(&module, &layouter, g.ty, rust, what)
}

#[test]
fn every_uniform_matches_its_wgsl_struct() {
    // Each kernel's uniform (group 0, binding 0) against its one Rust struct in
    // crate/gpu/src/uniforms.rs, by naga's layout of the kernel's full source: the WGSL
    // generated from the Rust struct must parse, validate and lay out as the Rust struct does.
    for l in LAYOUTS {
        assert_eq!(l.size % 16, 0, "{} is {} bytes, not a multiple of 16", l.rust_name, l.size);
        for f in l.fields {
            assert!(f.offset + f.size <= l.size, "{}.{} lies outside the struct", l.rust_name, f.name);
        }
    }
    for &kernel in Kernel::ALL {
        let ours: Vec<_> = LAYOUTS.iter().filter(|l| l.kernel == Some(kernel)).collect();
        let names: Vec<_> = ours.iter().map(|l| l.rust_name).collect();
        assert_eq!(
            ours.len(),
            1,
            "{kernel:?} needs exactly one uniform struct in crate/gpu/src/uniforms.rs, has {names:?}"
        );
        for packed in [true, false] {
            let src = kernel_source(kernel, packed);
            check_uniform(&src, ours[0], &format!("{kernel:?} (packed {packed})")).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// A uniform with its padding in the wrong place: the right size (32 bytes), but `v` (a
/// `vec4`) lies at byte 4 in Rust and 16 in WGSL.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Unpadded {
    n: u32,
    v: [u32; 4],
    _pad: [u32; 3],
}

impl WgslType for Unpadded {
    fn wgsl_type() -> String {
        "Unpadded".into()
    }
}

impl WgslStruct for Unpadded {
    const WGSL_NAME: &'static str = "Unpadded";
    const FIELDS: &'static [Field] = &[
        Field::of::<u32>("n", "u32", "", 0),
        Field::of::<[u32; 4]>("v", "[u32; 4]", "", std::mem::offset_of!(Unpadded, v)),
        Field::of::<[u32; 3]>("_pad", "[u32; 3]", "", std::mem::offset_of!(Unpadded, _pad)),
    ];
}

#[test]
fn the_uniform_check_catches_a_missing_pad() {
    // The generated WGSL is right by construction; what can be wrong is the Rust struct's
    // padding, and the check must see it.
    let src = format!(
        "{}@group(0) @binding(0) var<uniform> u: Unpadded;\n@compute @workgroup_size(1) fn main() {{ _ = u.n; }}",
        Unpadded::wgsl_decl()
    );
    let e = check_uniform(&src, &UniformLayout::of::<Unpadded>("Unpadded", None), "Unpadded").unwrap_err();
    assert!(e.contains("(\"v\", \"[u32;4]\", 4, 16)") && e.contains("(\"v\", \"[u32;4]\", 16, 16)"), "{e}");
}

/// CPU reference codes for the same product.
fn cpu(q: &QGemm<'_>) -> Vec<i32> {
    let a = PackedA::new(&QMat::row_major(Bytes::I8(q.w), q.m, q.k).unwrap()).unwrap();
    let b = QMat::row_major(q.x, q.k, q.n).unwrap();
    let mut out = vec![0u8; q.m * q.n];
    let mut outi = vec![0i8; q.m * q.n];
    let signed_out = q.lo < 0;
    let ep = Epilogue {
        za: PerIndex::All(0),
        zb: PerIndex::All(q.zx),
        bias: q.bias,
        scale: q.scale,
        scale_per_row: true,
        row_max: None,
        out: if signed_out {
            Out::I8 { out: &mut outi, zero_point: q.zp, lo: q.lo, hi: q.hi }
        } else {
            Out::U8 { out: &mut out, zero_point: q.zp, lo: q.lo, hi: q.hi }
        },
        ldc: q.n,
    };
    qgemm(&a, &b, ep).unwrap();
    if signed_out {
        outi.iter().map(|&v| v as i32).collect()
    } else {
        out.iter().map(|&v| v as i32).collect()
    }
}

#[test]
fn int8_gemm_matches_the_cpu_bit_for_bit() {
    let mut g = gpu();
    eprintln!("adapter: {}; packed dot4: {}", g.adapter(), g.packed_dot());
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let shapes = [(1, 1, 1), (5, 7, 9), (16, 32, 100), (13, 27, 64), (96, 16, 300), (7, 200, 33)];
    for variant in ["default", "unpacked"] {
        if variant == "unpacked" {
            g.force_unpacked_dot();
        }
        for (case, &(m, k, n)) in shapes.iter().enumerate() {
            let w: Vec<i8> = (0..m * k).map(|_| rng.range(-127, 127) as i8).collect();
            let unsigned = case % 2 == 0;
            let xu: Vec<u8> = (0..k * n).map(|_| rng.range(0, 255) as u8).collect();
            let xi: Vec<i8> = (0..k * n).map(|_| rng.range(-128, 127) as i8).collect();
            let x = if unsigned { Bytes::U8(&xu) } else { Bytes::I8(&xi) };
            let zx = if unsigned { rng.range(0, 255) as i32 } else { rng.range(-128, 127) as i32 };
            let bias: Vec<i32> = (0..m).map(|_| rng.range(-20000, 20000) as i32).collect();
            let scale: Vec<f32> = (0..m).map(|_| 1e-4 + (rng.range(1, 1000) as f32) * 1e-5).collect();
            let (zp, lo, hi) = if case % 3 == 0 { (-5, -128, 127) } else { (100, 100, 230) }; // the latter: a fused ReLU-like clamp
            let q = QGemm { m, k, n, w: &w, x, zx, bias: Some(&bias), scale: &scale, zp, lo, hi };
            let got = pollster::block_on(g.qgemm(&q)).unwrap();
            let want = cpu(&q);
            let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(differ, 0, "{variant} {m}×{k}×{n}: {differ} of {} codes differ", want.len());
            let spread = want.iter().copied().collect::<std::collections::BTreeSet<_>>().len();
            assert!(spread > 1 || m * n < 4, "{m}×{k}×{n}: degenerate test data ({spread} distinct codes)");
        }
    }
}

#[test]
fn bad_input_and_broken_shaders_are_errors() {
    let g = gpu();
    let w = [1i8; 6];
    let x = [1u8; 5];
    let q = QGemm {
        m: 2,
        k: 3,
        n: 2,
        w: &w,
        x: Bytes::U8(&x),
        zx: 0,
        bias: None,
        scale: &[1.0, 1.0],
        zp: 0,
        lo: 0,
        hi: 255,
    };
    let e = pollster::block_on(g.qgemm(&q)).unwrap_err();
    assert!(matches!(e, GpuError::Input(_)), "{e}");
    let e = pollster::block_on(g.compile("broken.wgsl", "@compute @workgroup_size(1) fn main() { let x: i32 = 1.5; }"))
        .unwrap_err();
    assert!(matches!(&e, GpuError::Shader { kernel: "broken.wgsl", .. }), "{e}");
    assert!(e.to_string().contains("broken.wgsl"), "{e}");
}
