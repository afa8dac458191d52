//! Which instruction set the kernels run on.
//!
//! Selection order: the best backend the CPU supports, among those compiled for the target —
//! AVX-512F, then AVX2+FMA, then SSE2 on x86_64 (AVX2 and AVX-512 are found at run time by
//! CPUID with the default `runtime-dispatch` feature, else only when enabled at compile time,
//! e.g. `-C target-cpu=native`); NEON on aarch64; simd128 on wasm32 built with
//! `-C target-feature=+simd128`; everywhere else (Cortex-M, RISC-V) the blocked kernels on one
//! lane ([`Backend::Blocked`]: 4 × 4 register tiles, in assembly on ARM cores with a
//! single-precision FPU), or, in a build optimised for size (opt-level `"s"` or `"z"`, see
//! `src/build.rs`), the scalar reference kernels. [`Backend::Scalar`] is available everywhere.
//!
//! [`set_backend`] overrides the choice for the whole program: for tests and benchmarks that
//! compare backends. Each kernel call reads the choice once and runs all its passes on it.
//!
//! The scalar kernels give the same bits on every target; the other backends sum in another
//! order and differ from them by rounding, within the bound of `docs/reliability.md`.

pub use crate::simd::backend::{Backend, active_backend, set_backend};

/// `x ← e^x` for every element, with the vector `exp` of the active backend (the one every
/// kernel uses): at most [`EXP_MAX_ULP`](crate::EXP_MAX_ULP) ulp from the correctly rounded
/// result on `[-87.33, 0]`; 0 below `-87.3365`, `+inf` above `88.376`, NaN for NaN.
pub fn exp_in_place(values: &mut [f32]) {
    crate::simd::exp_in_place(crate::simd::Available::active(), values);
}
