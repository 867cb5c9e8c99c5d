//! A four-lane float vector with one implementation per target: SSE on x86-64 (always
//! present there), SIMD128 on wasm32 built with `+simd128` (the browser build), and plain
//! arrays elsewhere. All three do the same lane-wise IEEE multiply and add (no fused
//! multiply-add), so kernels written on top give bit-identical results on every target.
//!
//! Kernels use it where autovectorisation is not reliable enough: the SGEMM micro-kernel's
//! broadcast-multiply-accumulate pattern.

#[cfg(target_arch = "x86_64")]
use core::arch::x86_64 as arch;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use core::arch::wasm32 as arch;

/// Four `f32` lanes.
#[derive(Clone, Copy, Debug)]
pub struct F32x4(
    #[cfg(target_arch = "x86_64")] arch::__m128,
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))] arch::v128,
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))] [f32; 4],
);

#[cfg(target_arch = "x86_64")]
impl F32x4 {
    /// All lanes zero.
    #[inline(always)]
    pub fn zero() -> F32x4 {
        // SAFETY: SSE is part of the x86-64 baseline.
        F32x4(unsafe { arch::_mm_setzero_ps() })
    }
    /// All lanes `x`.
    #[inline(always)]
    pub fn splat(x: f32) -> F32x4 {
        // SAFETY: SSE is part of the x86-64 baseline.
        F32x4(unsafe { arch::_mm_set1_ps(x) })
    }
    /// The first four floats of `s` (panics if shorter).
    #[inline(always)]
    pub fn load(s: &[f32]) -> F32x4 {
        let s = &s[..4];
        // SAFETY: `s` has four readable floats; the load is unaligned.
        F32x4(unsafe { arch::_mm_loadu_ps(s.as_ptr()) })
    }
    /// Writes the lanes to the first four floats of `s` (panics if shorter).
    #[inline(always)]
    pub fn store(self, s: &mut [f32]) {
        let s = &mut s[..4];
        // SAFETY: `s` has four writable floats; the store is unaligned.
        unsafe { arch::_mm_storeu_ps(s.as_mut_ptr(), self.0) }
    }
    /// Lane-wise `v < lo ? lo : v`, then `v > hi ? hi : v` (ONNX Clip, NaN passes through).
    #[inline(always)]
    pub fn clip(self, lo: F32x4, hi: F32x4) -> F32x4 {
        // SAFETY: SSE is part of the x86-64 baseline. `maxps(a, b)` is `a > b ? a : b` and
        // `minps(a, b)` is `a < b ? a : b`, returning `b` for NaN: exactly the scalar rule.
        F32x4(unsafe { arch::_mm_min_ps(hi.0, arch::_mm_max_ps(lo.0, self.0)) })
    }
}

#[cfg(target_arch = "x86_64")]
impl std::ops::Add for F32x4 {
    type Output = F32x4;
    /// Lane-wise `self + o`.
    #[inline(always)]
    fn add(self, o: F32x4) -> F32x4 {
        // SAFETY: SSE is part of the x86-64 baseline.
        F32x4(unsafe { arch::_mm_add_ps(self.0, o.0) })
    }
}

#[cfg(target_arch = "x86_64")]
impl std::ops::Mul for F32x4 {
    type Output = F32x4;
    /// Lane-wise `self * o`.
    #[inline(always)]
    fn mul(self, o: F32x4) -> F32x4 {
        // SAFETY: SSE is part of the x86-64 baseline.
        F32x4(unsafe { arch::_mm_mul_ps(self.0, o.0) })
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl F32x4 {
    /// All lanes zero.
    #[inline(always)]
    pub fn zero() -> F32x4 {
        F32x4(arch::f32x4_splat(0.0))
    }
    /// All lanes `x`.
    #[inline(always)]
    pub fn splat(x: f32) -> F32x4 {
        F32x4(arch::f32x4_splat(x))
    }
    /// The first four floats of `s` (panics if shorter).
    #[inline(always)]
    pub fn load(s: &[f32]) -> F32x4 {
        let s = &s[..4];
        // SAFETY: `s` has four readable floats; v128 loads need no alignment.
        F32x4(unsafe { arch::v128_load(s.as_ptr().cast()) })
    }
    /// Writes the lanes to the first four floats of `s` (panics if shorter).
    #[inline(always)]
    pub fn store(self, s: &mut [f32]) {
        let s = &mut s[..4];
        // SAFETY: `s` has four writable floats; v128 stores need no alignment.
        unsafe { arch::v128_store(s.as_mut_ptr().cast(), self.0) }
    }
    /// Lane-wise `v < lo ? lo : v`, then `v > hi ? hi : v` (ONNX Clip, NaN passes through).
    #[inline(always)]
    pub fn clip(self, lo: F32x4, hi: F32x4) -> F32x4 {
        // `pmax(a, b)` is `a < b ? b : a` and `pmin(a, b)` is `b < a ? b : a`.
        F32x4(arch::f32x4_pmin(arch::f32x4_pmax(self.0, lo.0), hi.0))
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl std::ops::Add for F32x4 {
    type Output = F32x4;
    /// Lane-wise `self + o`.
    #[inline(always)]
    fn add(self, o: F32x4) -> F32x4 {
        F32x4(arch::f32x4_add(self.0, o.0))
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl std::ops::Mul for F32x4 {
    type Output = F32x4;
    /// Lane-wise `self * o`.
    #[inline(always)]
    fn mul(self, o: F32x4) -> F32x4 {
        F32x4(arch::f32x4_mul(self.0, o.0))
    }
}

#[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
impl F32x4 {
    /// All lanes zero.
    #[inline(always)]
    pub fn zero() -> F32x4 {
        F32x4([0.0; 4])
    }
    /// All lanes `x`.
    #[inline(always)]
    pub fn splat(x: f32) -> F32x4 {
        F32x4([x; 4])
    }
    /// The first four floats of `s` (panics if shorter).
    #[inline(always)]
    pub fn load(s: &[f32]) -> F32x4 {
        F32x4([s[0], s[1], s[2], s[3]])
    }
    /// Writes the lanes to the first four floats of `s` (panics if shorter).
    #[inline(always)]
    pub fn store(self, s: &mut [f32]) {
        s[..4].copy_from_slice(&self.0);
    }
    /// Lane-wise `v < lo ? lo : v`, then `v > hi ? hi : v` (ONNX Clip, NaN passes through).
    #[inline(always)]
    pub fn clip(self, lo: F32x4, hi: F32x4) -> F32x4 {
        F32x4(std::array::from_fn(|i| {
            let v = if self.0[i] < lo.0[i] { lo.0[i] } else { self.0[i] };
            if v > hi.0[i] {
                hi.0[i]
            } else {
                v
            }
        }))
    }
}

#[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
impl std::ops::Add for F32x4 {
    type Output = F32x4;
    /// Lane-wise `self + o`.
    #[inline(always)]
    fn add(self, o: F32x4) -> F32x4 {
        F32x4(std::array::from_fn(|i| self.0[i] + o.0[i]))
    }
}

#[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
impl std::ops::Mul for F32x4 {
    type Output = F32x4;
    /// Lane-wise `self * o`.
    #[inline(always)]
    fn mul(self, o: F32x4) -> F32x4 {
        F32x4(std::array::from_fn(|i| self.0[i] * o.0[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::F32x4;

    #[test]
    fn lanes() {
        let a = F32x4::load(&[1.0, 2.0, 3.0, 4.0]);
        let b = F32x4::splat(0.5) * a + F32x4::zero() + a;
        let mut out = [0.0; 5];
        b.store(&mut out);
        assert_eq!(out, [1.5, 3.0, 4.5, 6.0, 0.0]);
    }

    #[test]
    fn clip_is_the_scalar_rule() {
        let scalar = |v: f32, lo: f32, hi: f32| {
            let v = if v < lo { lo } else { v };
            if v > hi {
                hi
            } else {
                v
            }
        };
        let vals = [f32::NAN, -0.0, 0.0, -1.0, 7.0, 3.0, f32::INFINITY, f32::NEG_INFINITY];
        let bounds = [(0.0, 6.0), (-0.0, f32::INFINITY), (2.0, 1.0), (f32::NEG_INFINITY, 0.5), (0.0, -0.0)];
        for (lo, hi) in bounds {
            for v in vals.chunks_exact(4) {
                let mut out = [0.0; 4];
                F32x4::load(v).clip(F32x4::splat(lo), F32x4::splat(hi)).store(&mut out);
                for (o, &x) in out.iter().zip(v) {
                    assert_eq!(o.to_bits(), scalar(x, lo, hi).to_bits(), "{x} in [{lo}, {hi}]");
                }
            }
        }
    }
}
