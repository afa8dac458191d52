//! The fixed-size layer: every kernel on array types whose dimensions are const generics, for
//! firmware whose shapes are known at compile time.
//!
//! The inputs are a [`Qkv`] of arrays, `q: &[[f32; D]; NQ]`, `k: &[[f32; D]; NK]`,
//! `v: &[[f32; DV]; NK]`, and `out: &mut [[f32; DV]; NQ]`. Lengths cannot mismatch, zero
//! dimensions are rejected at compile time, and each scratch type is sized by the compiler
//! (`const fn new()`, so it can live in a `static`). The only runtime errors left are non-finite
//! inputs, bad noise, masks or key indices, and parameters the scratch type cannot hold. This
//! layer always runs the scalar kernels, single-head: its scratch types are the smallest the
//! kernels allow (exact attention: 32 floats, where the blocked kernels take `32·(d + 36)`),
//! and its results the same on every core with an FPU. For speed on Cortex-M, the slice API
//! runs the blocked kernels ([`Backend::Blocked`](crate::backend::Backend::Blocked), 2.3 to 3
//! times fewer instructions on a Cortex-M4F) in the scratch of its `scratch_len`.
//!
//! ```
//! use lara_attn::Sampling;
//! use lara_attn::fixed::{self, LaraScratch, Qkv};
//! use lara_attn::lara::{Params, Weighting};
//!
//! // A 64-token window of 16-dimensional features, 8 landmarks.
//! static mut SCRATCH: LaraScratch<8, 16, 16> = LaraScratch::new();
//! const PARAMS: Params = Params::segment_means(8, Weighting::Optimal { alpha_coeff: 1.0 });
//!
//! let x = [[0.1f32; 16]; 64];
//! let mut out = [[0.0f32; 16]; 64];
//! // SAFETY (of the doctest): single-threaded, the only reference to SCRATCH.
//! #[allow(static_mut_refs)]
//! let scratch = unsafe { &mut SCRATCH };
//! let inputs = Qkv { q: &x, k: &x, v: &x, key_mask: None };
//! fixed::lara(&inputs, &PARAMS, Sampling::Eval, &mut out, scratch)?;
//! # Ok::<(), lara_attn::Error>(())
//! ```

use crate::error::Error;
use crate::inputs::{Noise, Sampling, with_noise};
use crate::lara;
use crate::math::KEY_BLOCK;
use crate::rfa;
use crate::shape::Shape;
use crate::simd::{self, Available};
use crate::{exact as exact_kernel, ra as ra_kernel};
use core::marker::PhantomData;

/// The inputs of a fixed-size call: `q [NQ, D]`, `k [NK, D]`, `v [NK, DV]` and an optional key
/// padding mask `[NK]` (`true` = padding), as [`crate::Qkv`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Qkv<'a, const NQ: usize, const NK: usize, const D: usize, const DV: usize> {
    /// Queries.
    pub q: &'a [[f32; D]; NQ],
    /// Keys.
    pub k: &'a [[f32; D]; NK],
    /// Values.
    pub v: &'a [[f32; DV]; NK],
    /// Key padding mask, `true` for a padding key.
    pub key_mask: Option<&'a [bool; NK]>,
}

impl<'a, const NQ: usize, const NK: usize, const D: usize, const DV: usize> Qkv<'a, NQ, NK, D, DV> {
    /// The slice form, with every dimension checked non-zero at compile time.
    fn flat(&self) -> crate::Qkv<'a> {
        const {
            assert!(
                NQ > 0 && NK > 0 && D > 0 && DV > 0,
                "every dimension must be non-zero"
            )
        };
        crate::Qkv {
            shape: Shape::cross(NQ, NK, D, DV),
            q: self.q.as_flattened(),
            k: self.k.as_flattened(),
            v: self.v.as_flattened(),
            key_mask: self.key_mask.map(|mask| mask.as_slice()),
        }
    }
}

/// Number of per-landmark scalars of LARA's workspace.
const LARA_STATS: usize = 8;

/// Scratch of [`exact()`]: one block of logits.
#[derive(Clone, Debug)]
pub struct ExactScratch {
    block: [f32; KEY_BLOCK],
}

/// Scratch of [`lara()`] with `C` landmarks: `q̄`, `mu`, `W` `[C, D]`, `kv [C, DV]` and 8 scalars
/// per landmark, `C · (3·D + DV + 8)` floats.
#[derive(Clone, Debug)]
pub struct LaraScratch<const C: usize, const D: usize, const DV: usize> {
    q_bar: [[f32; D]; C],
    mu: [[f32; D]; C],
    w: [[f32; D]; C],
    kv: [[f32; DV]; C],
    stats: [[f32; C]; LARA_STATS],
}

/// Scratch of [`ra()`] with `NK` keys: `NK + 2·D + 32` floats.
#[derive(Clone, Debug)]
pub struct RaScratch<const NK: usize, const D: usize> {
    key_half_norms: [f32; NK],
    key_mean: [f32; D],
    w: [f32; D],
    block: [f32; KEY_BLOCK],
}

/// Scratch of [`rfa_positive`] with `S` features: `S · (DV + 2) + DV` floats.
#[derive(Clone, Debug)]
pub struct PositiveScratch<const S: usize, const DV: usize> {
    kv: [[f32; DV]; S],
    k_sum: [f32; S],
    phi: [f32; S],
    v_sum: [f32; DV],
}

/// Scratch of [`rfa_trigonometric`] with `S` frequencies (`2·S` features): `2·S · (DV + 2)`
/// floats.
#[derive(Clone, Debug)]
pub struct TrigonometricScratch<const S: usize, const DV: usize> {
    kv: [[[f32; DV]; S]; 2],
    k_sum: [[f32; S]; 2],
    phi: [[f32; S]; 2],
}

impl ExactScratch {
    /// Zeroed scratch (its contents do not matter to the kernel).
    pub const fn new() -> Self {
        ExactScratch {
            block: [0.0; KEY_BLOCK],
        }
    }
}

impl<const C: usize, const D: usize, const DV: usize> LaraScratch<C, D, DV> {
    /// Zeroed scratch (its contents do not matter to the kernel).
    pub const fn new() -> Self {
        LaraScratch {
            q_bar: [[0.0; D]; C],
            mu: [[0.0; D]; C],
            w: [[0.0; D]; C],
            kv: [[0.0; DV]; C],
            stats: [[0.0; C]; LARA_STATS],
        }
    }

    /// The workspace of `count` landmarks and `samples` samples, both at most `C`.
    fn workspace(&mut self, count: usize, samples: usize, shape: Shape) -> lara::Workspace<'_> {
        lara::Workspace::from_parts(
            self.q_bar.as_flattened_mut(),
            self.mu.as_flattened_mut(),
            self.w.as_flattened_mut(),
            self.kv.as_flattened_mut(),
            self.stats.as_flattened_mut(),
            (count, samples),
            shape,
        )
    }
}

impl<const NK: usize, const D: usize> RaScratch<NK, D> {
    /// Zeroed scratch (its contents do not matter to the kernel).
    pub const fn new() -> Self {
        RaScratch {
            key_half_norms: [0.0; NK],
            key_mean: [0.0; D],
            w: [0.0; D],
            block: [0.0; KEY_BLOCK],
        }
    }

    fn workspace(&mut self) -> ra_kernel::Workspace<'_> {
        ra_kernel::Workspace {
            key_half_norms: &mut self.key_half_norms,
            key_mean: &mut self.key_mean,
            w: &mut self.w,
            block: &mut self.block,
        }
    }
}

impl<const S: usize, const DV: usize> PositiveScratch<S, DV> {
    /// Zeroed scratch (its contents do not matter to the kernel).
    pub const fn new() -> Self {
        PositiveScratch {
            kv: [[0.0; DV]; S],
            k_sum: [0.0; S],
            phi: [0.0; S],
            v_sum: [0.0; DV],
        }
    }
}

impl<const S: usize, const DV: usize> TrigonometricScratch<S, DV> {
    /// Zeroed scratch (its contents do not matter to the kernel).
    pub const fn new() -> Self {
        TrigonometricScratch {
            kv: [[[0.0; DV]; S]; 2],
            k_sum: [[0.0; S]; 2],
            phi: [[0.0; S]; 2],
        }
    }
}

macro_rules! impl_default {
    ($($ty:ident < $(const $p:ident),* >),*) => {$(
        impl<$(const $p: usize),*> Default for $ty<$($p),*> {
            fn default() -> Self {
                Self::new()
            }
        }
    )*};
}
impl_default!(LaraScratch<const C, const D, const DV>, RaScratch<const NK, const D>,
    PositiveScratch<const S, const DV>, TrigonometricScratch<const S, const DV>);

impl Default for ExactScratch {
    fn default() -> Self {
        Self::new()
    }
}

/// [`exact::attention`](crate::exact::attention) on arrays.
///
/// # Errors
/// [`Error::NonFinite`] for a non-finite input, [`Error::AllKeysMasked`].
pub fn exact<const NQ: usize, const NK: usize, const D: usize, const DV: usize>(
    x: &Qkv<'_, NQ, NK, D, DV>,
    out: &mut [[f32; DV]; NQ],
    scratch: &mut ExactScratch,
) -> Result<(), Error> {
    let x = x.flat();
    let out = out.as_flattened_mut();
    x.check(out)?;
    let kernel = exact_kernel::Exact {
        x: &x,
        head: 0,
        out,
        scratch: &mut scratch.block,
    };
    simd::run(Available::SCALAR, kernel);
    Ok(())
}

/// [`lara::attention`] on arrays, with at most `C` landmarks and `C` proposal samples (so
/// antithetic or two-sample proposals in sampled mode need `C ≥ 2·C'`).
///
/// # Errors
/// As [`lara::attention`]; [`Error::ScratchTooSmall`] if the parameters need more than `C`
/// landmarks or samples (`needed` and `actual` in floats, as [`lara::scratch_len_for`] counts
/// them for the scalar kernels).
#[inline(always)]
pub fn lara<const NQ: usize, const NK: usize, const D: usize, const DV: usize, const C: usize>(
    x: &Qkv<'_, NQ, NK, D, DV>,
    params: &lara::Params<'_>,
    sampling: Sampling<'_>,
    out: &mut [[f32; DV]; NQ],
    scratch: &mut LaraScratch<C, D, DV>,
) -> Result<(), Error> {
    with_noise!(sampling, |noise| lara_with(x, params, noise, out, scratch))
}

/// [`lara()`] with the noise `N`.
fn lara_with<
    const NQ: usize,
    const NK: usize,
    const D: usize,
    const DV: usize,
    const C: usize,
    N: Noise,
>(
    x: &Qkv<'_, NQ, NK, D, DV>,
    params: &lara::Params<'_>,
    noise: N,
    out: &mut [[f32; DV]; NQ],
    scratch: &mut LaraScratch<C, D, DV>,
) -> Result<(), Error> {
    let x = x.flat();
    let out = out.as_flattened_mut();
    let count = lara::check_args(&x, params, &noise, out)?;
    let samples = lara::sample_count(params, count, N::SAMPLED);
    if count > C || samples > C {
        // in floats, as the slice API's scratch: the workspace needed, the one the type holds
        return Err(Error::ScratchTooSmall {
            needed: lara::workspace_len(x.shape, count, samples, false),
            actual: lara::workspace_len(x.shape, C, C, false),
        });
    }
    let mut ws = scratch.workspace(count, samples, x.shape);
    let (backend, tiles) = (Available::SCALAR, &mut []);
    lara::attention_in(backend, &x, params, noise, out, &mut ws, tiles);
    Ok(())
}

/// [`ra::attention`](crate::ra::attention) on arrays.
///
/// # Errors
/// As [`ra::attention`](crate::ra::attention).
#[inline(always)]
pub fn ra<const NQ: usize, const NK: usize, const D: usize, const DV: usize>(
    x: &Qkv<'_, NQ, NK, D, DV>,
    params: &ra_kernel::Params<'_>,
    sampling: Sampling<'_>,
    out: &mut [[f32; DV]; NQ],
    scratch: &mut RaScratch<NK, D>,
) -> Result<(), Error> {
    with_noise!(sampling, |noise| ra_with(x, params, noise, out, scratch))
}

/// [`ra()`] with the noise `N`.
fn ra_with<const NQ: usize, const NK: usize, const D: usize, const DV: usize, N: Noise>(
    x: &Qkv<'_, NQ, NK, D, DV>,
    params: &ra_kernel::Params<'_>,
    noise: N,
    out: &mut [[f32; DV]; NQ],
    scratch: &mut RaScratch<NK, D>,
) -> Result<(), Error> {
    let x = x.flat();
    let out = out.as_flattened_mut();
    ra_kernel::check_args(&x, params, &noise, out)?;
    let mut ws = scratch.workspace();
    let (backend, tiles) = (Available::SCALAR, &mut []);
    ra_kernel::attention_in(backend, &x, params, noise, out, &mut ws, tiles);
    Ok(())
}

/// [`rfa::attention`] with positive features and `omega [S, D]` on arrays.
///
/// # Errors
/// [`Error::NonFinite`] for a non-finite input or `omega`, [`Error::AllKeysMasked`].
pub fn rfa_positive<
    const NQ: usize,
    const NK: usize,
    const D: usize,
    const DV: usize,
    const S: usize,
>(
    x: &Qkv<'_, NQ, NK, D, DV>,
    omega: &[[f32; D]; S],
    out: &mut [[f32; DV]; NQ],
    scratch: &mut PositiveScratch<S, DV>,
) -> Result<(), Error> {
    let mut state = rfa::FeatureState {
        kv: scratch.kv.as_flattened_mut(),
        k_sum: &mut scratch.k_sum,
        phi: &mut scratch.phi,
        v_sum: &mut scratch.v_sum,
    };
    features::<_, _, _, _, _, rfa::Positive>(x, omega, out, &mut state)
}

/// [`rfa::attention`] with trigonometric features and `omega [S, D]` on arrays.
///
/// # Errors
/// [`Error::NonFinite`] for a non-finite input or `omega`, [`Error::AllKeysMasked`].
pub fn rfa_trigonometric<
    const NQ: usize,
    const NK: usize,
    const D: usize,
    const DV: usize,
    const S: usize,
>(
    x: &Qkv<'_, NQ, NK, D, DV>,
    omega: &[[f32; D]; S],
    out: &mut [[f32; DV]; NQ],
    scratch: &mut TrigonometricScratch<S, DV>,
) -> Result<(), Error> {
    let mut state = rfa::FeatureState {
        kv: scratch.kv.as_flattened_mut().as_flattened_mut(),
        k_sum: scratch.k_sum.as_flattened_mut(),
        phi: scratch.phi.as_flattened_mut(),
        v_sum: &mut [],
    };
    features::<_, _, _, _, _, rfa::Trigonometric>(x, omega, out, &mut state)
}

/// RFA with the map `M` on arrays, in the scalar state `state`.
fn features<
    const NQ: usize,
    const NK: usize,
    const D: usize,
    const DV: usize,
    const S: usize,
    M: rfa::Map,
>(
    x: &Qkv<'_, NQ, NK, D, DV>,
    omega: &[[f32; D]; S],
    out: &mut [[f32; DV]; NQ],
    state: &mut rfa::FeatureState<'_>,
) -> Result<(), Error> {
    const { assert!(S > 0, "RFA needs at least one feature") };
    let x = x.flat();
    let out = out.as_flattened_mut();
    let params = rfa::Params {
        map: M::MAP,
        omega: omega.as_flattened(),
    };
    let features = rfa::check_args(&x, &params, out)?;
    let kernel = rfa::Features {
        x: &x,
        head: 0,
        omega: params.omega,
        features,
        out,
        state,
        tiles: &mut [],
    };
    simd::run(Available::SCALAR, rfa::MapKernel::<M>(kernel, PhantomData));
    Ok(())
}
