//! Which x86-64 vector path the integer kernels take: AVX2 where the CPU has it (detected once
//! at run time), else the SSE2 baseline. `QPLAY_NO_AVX2=1` in the environment, or
//! [`set_avx2`]`(false)`, forces SSE2. Both paths give the same bits (exact integer sums, the
//! same float steps lane for lane), so the choice changes speed only. Other targets have one
//! path and report `false`.

use std::sync::atomic::{AtomicU8, Ordering};

/// 0: not decided yet; 1: SSE2; 2: AVX2.
static LEVEL: AtomicU8 = AtomicU8::new(0);

/// Whether the CPU has AVX2 (false off x86-64).
pub fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the integer kernels take their AVX2 path: the CPU has AVX2 and neither
/// `QPLAY_NO_AVX2` (set, non-empty, not `0`) nor [`set_avx2`] turned it off. Decided on the
/// first call, then one relaxed load.
#[inline]
pub fn use_avx2() -> bool {
    match LEVEL.load(Ordering::Relaxed) {
        2 => true,
        1 => false,
        _ => {
            let off = std::env::var("QPLAY_NO_AVX2").is_ok_and(|v| !v.is_empty() && v != "0");
            let on = !off && avx2_available();
            // A concurrent `set_avx2` wins over the default.
            let _ = LEVEL.compare_exchange(0, if on { 2 } else { 1 }, Ordering::Relaxed, Ordering::Relaxed);
            LEVEL.load(Ordering::Relaxed) == 2
        }
    }
}

/// Turns the AVX2 path on (where the CPU has it) or off, for every thread from the next kernel
/// on; returns whether it is now on. For benchmarks and tests that compare the two paths.
pub fn set_avx2(on: bool) -> bool {
    let on = on && avx2_available();
    LEVEL.store(if on { 2 } else { 1 }, Ordering::Relaxed);
    on
}

/// The path in use, as a name: `"avx2+vnni"` (the int8 GEMM on AVX-VNNI's `vpdpbusd`), `"avx2"`,
/// `"sse2"` (x86-64), `"relaxed-simd"` (the wasm module
/// built with relaxed SIMD, on an engine whose four-byte dot product is exact: see
/// [`dot4_mode`](crate::ops::quant::qgemm::dot4_mode)), `"simd128"` or `"scalar"`.
pub fn simd_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if crate::ops::quant::qgemm::vnni() {
        return "avx2+vnni";
    }
    if use_avx2() {
        "avx2"
    } else if cfg!(target_arch = "x86_64") {
        "sse2"
    } else if crate::ops::quant::qgemm::dot4_mode().is_some() {
        "relaxed-simd"
    } else if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        "simd128"
    } else {
        "scalar"
    }
}
