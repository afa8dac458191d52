//! One `#[target_feature]` entry point per estimator and backend, around the whole loop nest.

use super::blocked;
use crate::backend::Backend;

/// Runs `$kernel(isa, args...)` on `backend` if it is a SIMD backend compiled for this target,
/// inside a function compiled for that instruction set; evaluates to `false` (nothing run) for
/// the scalar backend, whose reference kernels the caller runs itself.
macro_rules! run_on {
    ($backend:expr, $kernel:path, ($($arg:ident: $ty:ty),* $(,)?)) => {{
        match $backend {
            #[cfg(target_arch = "x86_64")]
            Backend::Sse2 => {
                // SSE2 is the x86_64 baseline: no target_feature needed.
                $kernel(super::Sse2::new(), $($arg),*);
                true
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => {
                #[target_feature(enable = "avx2,fma")]
                fn entry($($arg: $ty),*) {
                    // SAFETY: this function only runs where AVX2 and FMA are enabled.
                    $kernel(unsafe { super::Avx2::new_unchecked() }, $($arg),*)
                }
                // SAFETY: `active_backend` only returns available backends: AVX2 and FMA are.
                unsafe { entry($($arg),*) };
                true
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => {
                #[target_feature(enable = "avx512f")]
                fn entry($($arg: $ty),*) {
                    // SAFETY: this function only runs where AVX-512F is enabled.
                    $kernel(unsafe { super::Avx512::new_unchecked() }, $($arg),*)
                }
                // SAFETY: `active_backend` only returns available backends: AVX-512F is.
                unsafe { entry($($arg),*) };
                true
            }
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Backend::Neon => {
                $kernel(super::Neon::new(), $($arg),*);
                true
            }
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Backend::Simd128 => {
                $kernel(super::Simd128::new(), $($arg),*);
                true
            }
            _ => false,
        }
    }};
}

use crate::lara::{Weighting, Workspace};
use crate::ra::{KeyStats, SampledMean};
use crate::rfa::FeatureState;
use crate::shape::Shape;

/// Blocked exact attention on `backend`; `false` if the caller must run the scalar kernel.
#[allow(clippy::too_many_arguments)]
pub(crate) fn exact(
    backend: Backend,
    shape: Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> bool {
    run_on!(backend, blocked::exact, (shape: Shape, q: &[f32], k: &[f32], v: &[f32], key_mask: Option<&[bool]>, out: &mut [f32], scratch: &mut [f32]))
}

/// Blocked LARA key pass (proposals built); `false` if the caller must run the scalar kernel.
pub(crate) fn lara_keys(
    backend: Backend,
    shape: Shape,
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    ws: &mut Workspace<'_>,
    extra: &mut [f32],
) -> bool {
    run_on!(backend, blocked::lara_keys, (shape: Shape, k: &[f32], v: &[f32], key_mask: Option<&[bool]>, ws: &mut Workspace<'_>, extra: &mut [f32]))
}

/// Blocked LARA query pass (densities computed); `false` if the caller must run the scalar
/// kernel.
pub(crate) fn lara_queries(
    backend: Backend,
    shape: Shape,
    weighting: Weighting,
    q: &[f32],
    out: &mut [f32],
    ws: &mut Workspace<'_>,
    extra: &mut [f32],
) -> bool {
    run_on!(backend, blocked::lara_queries, (shape: Shape, weighting: Weighting, q: &[f32], out: &mut [f32], ws: &mut Workspace<'_>, extra: &mut [f32]))
}

/// Blocked RFA with positive features; `false` if the caller must run the scalar kernel.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rfa_positive(
    backend: Backend,
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    out: &mut [f32],
    state: &mut FeatureState<'_>,
    extra: &mut [f32],
) -> bool {
    run_on!(backend, blocked::rfa_positive, (shape: Shape, omega: &[f32], features: usize, q: &[f32], k: &[f32], v: &[f32], key_mask: Option<&[bool]>, out: &mut [f32], state: &mut FeatureState<'_>, extra: &mut [f32]))
}

/// Blocked RA (key statistics prepared); `false` if the caller must run the scalar kernel.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ra(
    backend: Backend,
    shape: Shape,
    mean: SampledMean,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    stats: &KeyStats<'_>,
    extra: &mut [f32],
    perturb: &mut dyn FnMut(&mut [f32], &[f32]) -> usize,
) -> bool {
    run_on!(backend, blocked::ra, (shape: Shape, mean: SampledMean, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], stats: &KeyStats<'_>, extra: &mut [f32], perturb: &mut dyn FnMut(&mut [f32], &[f32]) -> usize))
}

/// Blocked RFA with trigonometric features; `false` if the caller must run the scalar kernel.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rfa_trigonometric(
    backend: Backend,
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    out: &mut [f32],
    state: &mut FeatureState<'_>,
    extra: &mut [f32],
) -> bool {
    run_on!(backend, blocked::rfa_trigonometric, (shape: Shape, omega: &[f32], features: usize, q: &[f32], k: &[f32], v: &[f32], key_mask: Option<&[bool]>, out: &mut [f32], state: &mut FeatureState<'_>, extra: &mut [f32]))
}

/// `x ← e^x` on `backend` (the scalar backend uses the same algorithm, one lane at a time).
pub(crate) fn exp_in_place(backend: Backend, values: &mut [f32]) {
    if !run_on!(backend, blocked::exp_in_place, (values: &mut [f32])) {
        blocked::exp_in_place(super::Scalar, values);
    }
}
