//! SSE2: 4 lanes, the baseline of every x86_64 CPU (no FMA: `mul_add` is a multiply and an add).

use super::Isa;
use core::arch::x86_64::*;

/// SSE2 token (always available on x86_64).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sse2(());

impl Sse2 {
    /// SSE2 is part of the x86_64 baseline.
    pub(crate) const fn new() -> Self {
        Sse2(())
    }
}

impl Isa for Sse2 {
    const LANES: usize = 4;
    type V = __m128;
    type M = __m128;

    #[inline(always)]
    fn splat(self, x: f32) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m128 {
        // SAFETY: the caller guarantees 4 readable floats; unaligned load.
        unsafe { _mm_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m128) {
        // SAFETY: the caller guarantees 4 writable floats; unaligned store.
        unsafe { _mm_storeu_ps(p, v) }
    }
    #[inline(always)]
    fn add(self, a: __m128, b: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m128, b: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m128, b: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_mul_ps(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: __m128, b: __m128, c: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_add_ps(_mm_mul_ps(a, b), c) }
    }
    #[inline(always)]
    fn max(self, a: __m128, b: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_max_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m128, b: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_min_ps(a, b) }
    }
    #[inline(always)]
    fn lt(self, a: __m128, b: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_cmplt_ps(a, b) }
    }
    #[inline(always)]
    fn is_nan(self, a: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_cmpunord_ps(a, a) }
    }
    #[inline(always)]
    fn select(self, mask: __m128, if_true: __m128, if_false: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_or_ps(_mm_and_ps(mask, if_true), _mm_andnot_ps(mask, if_false)) }
    }
    #[inline(always)]
    fn pow2i(self, n: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe {
            _mm_castsi128_ps(_mm_slli_epi32::<23>(_mm_add_epi32(
                _mm_cvtps_epi32(n),
                _mm_set1_epi32(127),
            )))
        }
    }
    #[inline(always)]
    fn reduce_add(self, v: __m128) -> f32 {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe {
            let pairs = _mm_add_ps(v, _mm_movehl_ps(v, v));
            _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps::<0b01>(pairs, pairs)))
        }
    }
    #[inline(always)]
    fn reduce_max(self, v: __m128) -> f32 {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe {
            let pairs = _mm_max_ps(v, _mm_movehl_ps(v, v));
            _mm_cvtss_f32(_mm_max_ss(pairs, _mm_shuffle_ps::<0b01>(pairs, pairs)))
        }
    }
}
