//! AVX-512F: 16 lanes, fused multiply-add, mask registers.

use super::Isa;
use core::arch::x86_64::*;

/// AVX-512F token: only constructed once AVX-512F is known to be available.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// # Safety
    /// The CPU must support AVX-512F.
    pub(crate) const unsafe fn new_unchecked() -> Self {
        Avx512(())
    }
}

impl Isa for Avx512 {
    const LANES: usize = 16;
    const TILE_ROWS: usize = 8;
    type V = __m512;
    type M = __mmask16;

    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: an `Avx512` token exists only where AVX-512F is available.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        // SAFETY: the caller guarantees 16 readable floats; unaligned load.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        // SAFETY: the caller guarantees 16 writable floats; unaligned store.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, len: usize) -> __m512 {
        // SAFETY: the caller guarantees len readable floats; masked-off lanes are not accessed.
        unsafe { _mm512_maskz_loadu_ps(tail_mask(len), p) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, len: usize, v: __m512) {
        // SAFETY: the caller guarantees len writable floats; masked-off lanes are not accessed.
        unsafe { _mm512_mask_storeu_ps(p, tail_mask(len), v) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: an `Avx512` token exists only where AVX-512F is available.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: an `Avx512` token exists only where AVX-512F is available.
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: an `Avx512` token exists only where AVX-512F is available.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: an `Avx512` token exists only where AVX-512F is available.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: an `Avx512` token exists only where AVX-512F is available.
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: an `Avx512` token exists only where AVX-512F is available.
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    fn lt(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: an `Avx512` token exists only where AVX-512F is available.
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn is_nan(self, a: __m512) -> __mmask16 {
        // SAFETY: an `Avx512` token exists only where AVX-512F is available.
        unsafe { _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, a) }
    }
    #[inline(always)]
    fn select(self, mask: __mmask16, if_true: __m512, if_false: __m512) -> __m512 {
        // SAFETY: an `Avx512` token exists only where AVX-512F is available.
        unsafe { _mm512_mask_blend_ps(mask, if_false, if_true) }
    }
    #[inline(always)]
    fn pow2i(self, n: __m512) -> __m512 {
        // SAFETY: an `Avx512` token exists only where AVX-512F is available.
        unsafe {
            let biased = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(biased))
        }
    }
    #[inline(always)]
    fn reduce_add(self, v: __m512) -> f32 {
        // SAFETY: an `Avx512` token exists only where AVX-512F is available.
        unsafe { _mm512_reduce_add_ps(v) }
    }
    #[inline(always)]
    fn reduce_max(self, v: __m512) -> f32 {
        // SAFETY: an `Avx512` token exists only where AVX-512F is available.
        unsafe { _mm512_reduce_max_ps(v) }
    }
}

/// The mask of the low `len` lanes (`len < 16`).
#[inline(always)]
fn tail_mask(len: usize) -> __mmask16 {
    ((1u32 << len.min(16)) - 1) as __mmask16
}
