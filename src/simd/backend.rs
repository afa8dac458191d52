//! Which instruction set the kernels run on: the backends, their detection, the program-wide
//! override, and [`Available`], the token that proves a backend can run here.

use crate::error::Error;
use core::sync::atomic::{AtomicU8, Ordering};

/// A kernel implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Backend {
    /// The plain scalar reference kernels (every target).
    Scalar,
    /// The blocked kernels on plain `f32` arithmetic, one lane, their matrix products in
    /// register tiles of `4 × 4` (in assembly on ARM cores with a single-precision FPU): every
    /// target, the default where no SIMD backend is compiled (Cortex-M, RISC-V), unless the crate
    /// is built for size (opt-level `"s"` or `"z"`; `LARA_ATTN_BLOCKED=1` keeps it).
    Blocked,
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
    pub const ALL: [Backend; 7] = [
        Backend::Scalar,
        Backend::Blocked,
        Backend::Sse2,
        Backend::Avx2,
        Backend::Avx512,
        Backend::Neon,
        Backend::Simd128,
    ];

    /// The lower-case name (`scalar`, `blocked`, `sse2`, `avx2`, `avx512`, `neon`, `simd128`).
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Blocked => "blocked",
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

    /// Whether this backend has vector lanes (every backend but [`Backend::Scalar`] and
    /// [`Backend::Blocked`]).
    pub const fn is_simd(self) -> bool {
        !matches!(self, Backend::Scalar | Backend::Blocked)
    }

    /// Whether this backend runs the blocked kernels, whose scratch holds tiles besides the
    /// scalar kernels' buffers (every backend but [`Backend::Scalar`]).
    pub const fn is_blocked(self) -> bool {
        !matches!(self, Backend::Scalar)
    }

    /// Whether this backend is compiled for the target and supported by the CPU.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Scalar => true,
            Backend::Blocked => cfg!(not(lara_attn_compact)),
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

    /// The best available backend: the widest SIMD backend, else [`Backend::Blocked`], else
    /// [`Backend::Scalar`].
    pub fn best() -> Backend {
        let preference = [
            Backend::Avx512,
            Backend::Avx2,
            Backend::Sse2,
            Backend::Neon,
            Backend::Simd128,
            Backend::Blocked,
        ];
        preference
            .into_iter()
            .find(|b| b.is_available())
            .unwrap_or(Backend::Scalar)
    }
}

impl core::fmt::Display for Backend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a backend that runs the blocked kernels is compiled for this target (a SIMD backend,
/// or [`Backend::Blocked`] when the crate is not built for size): the default scratch sizes then
/// include their tiles.
pub(crate) const COMPILED: bool = cfg!(any(
    not(lara_attn_compact),
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon"),
    all(target_arch = "wasm32", target_feature = "simd128"),
));

/// A backend known to be available here: made only by [`Available::active`],
/// [`Available::SCALAR`] or the availability check of [`Available::new`]. Holding one is what
/// lets [`run`](super::run) enter a `#[target_feature]` function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Available(Backend);

impl Available {
    /// The scalar kernels, available everywhere.
    pub(crate) const SCALAR: Available = Available(Backend::Scalar);

    /// `backend`, if it can run here.
    pub(crate) fn new(backend: Backend) -> Option<Available> {
        backend.is_available().then_some(Available(backend))
    }

    /// The backend kernel calls use now: the override of [`set_backend`], else
    /// [`Backend::best`]. A call reads it once and runs every pass on it.
    pub(crate) fn active() -> Available {
        let forced = match OVERRIDE.load(Ordering::Relaxed) {
            0 => None,
            code => Backend::ALL.get(usize::from(code) - 1).copied(),
        };
        forced
            .and_then(Available::new)
            .unwrap_or_else(|| Available(Backend::best()))
    }

    /// The backend.
    pub(crate) fn backend(self) -> Backend {
        self.0
    }
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
        Some(b) => {
            let available = Available::new(b).ok_or(Error::UnsupportedBackend)?;
            let index = Backend::ALL.iter().position(|&x| x == available.0);
            1 + index.unwrap_or(0) as u8
        }
    };
    OVERRIDE.store(code, Ordering::Relaxed);
    Ok(())
}

/// The backend kernel calls use now: the override of [`set_backend`], else [`Backend::best`].
pub fn active_backend() -> Backend {
    Available::active().backend()
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
