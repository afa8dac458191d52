//! Which instruction set the kernels run on.
//!
//! Selection order: the best backend the CPU supports, among those compiled for the target —
//! AVX-512F, then AVX2+FMA, then SSE2 on x86_64 (AVX2 and AVX-512 are found at run time by
//! CPUID with the default `runtime-dispatch` feature, else only when enabled at compile time,
//! e.g. `-C target-cpu=native`); NEON on aarch64; simd128 on wasm32 built with
//! `-C target-feature=+simd128`; the scalar reference kernels everywhere else (Cortex-M, RISC-V).
//!
//! [`set_backend`] overrides the choice for the whole program: for tests and benchmarks that
//! compare backends.

use crate::error::Error;
use core::sync::atomic::{AtomicU8, Ordering};

/// A kernel implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// The plain scalar reference kernels (every target).
    Scalar,
    /// x86_64 SSE2, 4 lanes.
    Sse2,
    /// x86_64 AVX2 with FMA, 8 lanes.
    Avx2,
    /// x86_64 AVX-512F, 16 lanes.
    Avx512,
    /// AArch64 NEON, 4 lanes.
    Neon,
    /// WebAssembly simd128, 4 lanes.
    Simd128,
}

impl Backend {
    /// Every backend, scalar first, in order of preference after it.
    pub const ALL: [Backend; 6] = [
        Backend::Scalar,
        Backend::Sse2,
        Backend::Avx2,
        Backend::Avx512,
        Backend::Neon,
        Backend::Simd128,
    ];

    /// The lower-case name (`scalar`, `sse2`, `avx2`, `avx512`, `neon`, `simd128`).
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Sse2 => "sse2",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
            Backend::Neon => "neon",
            Backend::Simd128 => "simd128",
        }
    }

    /// The backend with this [`name`](Backend::name).
    pub fn from_name(name: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Whether this backend is compiled for the target and supported by the CPU.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Sse2 => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => x86::has_avx2_fma(),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => x86::has_avx512f(),
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Backend::Neon => true,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Backend::Simd128 => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The best available backend.
    pub fn best() -> Backend {
        let preference = [
            Backend::Avx512,
            Backend::Avx2,
            Backend::Sse2,
            Backend::Neon,
            Backend::Simd128,
        ];
        preference
            .into_iter()
            .find(|b| b.is_available())
            .unwrap_or(Backend::Scalar)
    }
}

/// `x ← e^x` for every element, with the vector `exp` of the active backend (the one every
/// kernel uses): at most [`EXP_MAX_ULP`](crate::EXP_MAX_ULP) ulp from the correctly rounded
/// result on `[-87.33, 0]`; 0 below `-87.3365`, `+inf` above `88.376`, NaN for NaN.
pub fn exp_in_place(values: &mut [f32]) {
    crate::simd::dispatch::exp_in_place(active_backend(), values);
}

/// 0: no override; otherwise 1 + the index of the backend in [`Backend::ALL`].
static OVERRIDE: AtomicU8 = AtomicU8::new(0);

/// Forces every kernel call to use `backend` (or, with `None`, returns to [`Backend::best`]).
///
/// # Errors
/// [`Error::UnsupportedBackend`] if the backend is not available here; the setting is then
/// unchanged.
pub fn set_backend(backend: Option<Backend>) -> Result<(), Error> {
    let code = match backend {
        None => 0,
        Some(b) if b.is_available() => {
            1 + Backend::ALL.iter().position(|&x| x == b).unwrap_or(0) as u8
        }
        Some(_) => return Err(Error::UnsupportedBackend),
    };
    OVERRIDE.store(code, Ordering::Relaxed);
    Ok(())
}

/// The backend kernel calls use now: the override of [`set_backend`], else [`Backend::best`].
pub fn active_backend() -> Backend {
    match OVERRIDE.load(Ordering::Relaxed) {
        0 => Backend::best(),
        code => Backend::ALL
            .get(usize::from(code) - 1)
            .copied()
            .unwrap_or(Backend::Scalar),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    #[cfg(feature = "runtime-dispatch")]
    cpufeatures::new!(avx2_fma, "avx2", "fma");
    #[cfg(feature = "runtime-dispatch")]
    cpufeatures::new!(avx512f, "avx512f");

    pub(super) fn has_avx2_fma() -> bool {
        #[cfg(feature = "runtime-dispatch")]
        return avx2_fma::get();
        #[cfg(not(feature = "runtime-dispatch"))]
        return cfg!(all(target_feature = "avx2", target_feature = "fma"));
    }

    pub(super) fn has_avx512f() -> bool {
        #[cfg(feature = "runtime-dispatch")]
        return avx512f::get();
        #[cfg(not(feature = "runtime-dispatch"))]
        return cfg!(target_feature = "avx512f");
    }
}
