//! AArch64 NEON: 4 lanes, fused multiply-add (baseline on aarch64).

use super::Isa;
use core::arch::aarch64::*;

/// NEON token (compiled only where `target_feature = "neon"` is enabled).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon(());

impl Neon {
    /// NEON is enabled at compile time for this target.
    pub(crate) const fn new() -> Self {
        Neon(())
    }
}

impl Isa for Neon {
    const LANES: usize = 4;
    const TILE_ROWS: usize = 8;
    type V = float32x4_t;
    type M = uint32x4_t;

    #[inline(always)]
    fn splat(self, x: f32) -> float32x4_t {
        // SAFETY: this module is compiled only with NEON enabled.
        unsafe { vdupq_n_f32(x) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> float32x4_t {
        // SAFETY: the caller guarantees 4 readable floats.
        unsafe { vld1q_f32(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: float32x4_t) {
        // SAFETY: the caller guarantees 4 writable floats.
        unsafe { vst1q_f32(p, v) }
    }
    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: this module is compiled only with NEON enabled.
        unsafe { vaddq_f32(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: this module is compiled only with NEON enabled.
        unsafe { vsubq_f32(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: this module is compiled only with NEON enabled.
        unsafe { vmulq_f32(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        // SAFETY: this module is compiled only with NEON enabled.
        unsafe { vfmaq_f32(c, a, b) }
    }
    #[inline(always)]
    fn max(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: this module is compiled only with NEON enabled.
        unsafe { vmaxq_f32(a, b) }
    }
    #[inline(always)]
    fn min(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: this module is compiled only with NEON enabled.
        unsafe { vminq_f32(a, b) }
    }
    #[inline(always)]
    fn lt(self, a: float32x4_t, b: float32x4_t) -> uint32x4_t {
        // SAFETY: this module is compiled only with NEON enabled.
        unsafe { vcltq_f32(a, b) }
    }
    #[inline(always)]
    fn is_nan(self, a: float32x4_t) -> uint32x4_t {
        // SAFETY: this module is compiled only with NEON enabled.
        unsafe { vmvnq_u32(vceqq_f32(a, a)) }
    }
    #[inline(always)]
    fn select(self, mask: uint32x4_t, if_true: float32x4_t, if_false: float32x4_t) -> float32x4_t {
        // SAFETY: this module is compiled only with NEON enabled.
        unsafe { vbslq_f32(mask, if_true, if_false) }
    }
    #[inline(always)]
    fn pow2i(self, n: float32x4_t) -> float32x4_t {
        // SAFETY: this module is compiled only with NEON enabled.
        unsafe {
            let biased = vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127));
            vreinterpretq_f32_s32(vshlq_n_s32::<23>(biased))
        }
    }
    #[inline(always)]
    fn reduce_add(self, v: float32x4_t) -> f32 {
        // SAFETY: this module is compiled only with NEON enabled.
        unsafe { vaddvq_f32(v) }
    }
    #[inline(always)]
    fn reduce_max(self, v: float32x4_t) -> f32 {
        // SAFETY: this module is compiled only with NEON enabled.
        unsafe { vmaxvq_f32(v) }
    }
}
