//! WebAssembly SIMD (simd128): 4 lanes (no FMA: relaxed-simd is not assumed).

use super::Isa;
use core::arch::wasm32::*;

/// simd128 token (compiled only where `target_feature = "simd128"` is enabled).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Simd128(());

impl Simd128 {
    /// simd128 is enabled at compile time for this target.
    pub(crate) const fn new() -> Self {
        Simd128(())
    }
}

impl Isa for Simd128 {
    const LANES: usize = 4;
    type V = v128;
    type M = v128;

    #[inline(always)]
    fn splat(self, x: f32) -> v128 {
        f32x4_splat(x)
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> v128 {
        // SAFETY: the caller guarantees 16 readable bytes; v128_load has no alignment requirement.
        unsafe { v128_load(p as *const v128) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: v128) {
        // SAFETY: the caller guarantees 16 writable bytes.
        unsafe { v128_store(p as *mut v128, v) }
    }
    #[inline(always)]
    fn add(self, a: v128, b: v128) -> v128 {
        f32x4_add(a, b)
    }
    #[inline(always)]
    fn sub(self, a: v128, b: v128) -> v128 {
        f32x4_sub(a, b)
    }
    #[inline(always)]
    fn mul(self, a: v128, b: v128) -> v128 {
        f32x4_mul(a, b)
    }
    #[inline(always)]
    fn mul_add(self, a: v128, b: v128, c: v128) -> v128 {
        f32x4_add(f32x4_mul(a, b), c)
    }
    #[inline(always)]
    fn max(self, a: v128, b: v128) -> v128 {
        f32x4_pmax(a, b)
    }
    #[inline(always)]
    fn min(self, a: v128, b: v128) -> v128 {
        f32x4_pmin(a, b)
    }
    #[inline(always)]
    fn lt(self, a: v128, b: v128) -> v128 {
        f32x4_lt(a, b)
    }
    #[inline(always)]
    fn is_nan(self, a: v128) -> v128 {
        f32x4_ne(a, a)
    }
    #[inline(always)]
    fn select(self, mask: v128, if_true: v128, if_false: v128) -> v128 {
        v128_bitselect(if_true, if_false, mask)
    }
    #[inline(always)]
    fn pow2i(self, n: v128) -> v128 {
        i32x4_shl(
            i32x4_add(i32x4_trunc_sat_f32x4(f32x4_nearest(n)), i32x4_splat(127)),
            23,
        )
    }
    #[inline(always)]
    fn reduce_add(self, v: v128) -> f32 {
        (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v))
            + (f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v))
    }
    #[inline(always)]
    fn reduce_max(self, v: v128) -> f32 {
        let a = f32x4_extract_lane::<0>(v).max(f32x4_extract_lane::<1>(v));
        let b = f32x4_extract_lane::<2>(v).max(f32x4_extract_lane::<3>(v));
        a.max(b)
    }
}
