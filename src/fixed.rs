//! The fixed-size layer: every kernel on array types whose dimensions are const generics, for
//! firmware whose shapes are known at compile time.
//!
//! `q: &[[f32; D]; NQ]`, `k: &[[f32; D]; NK]`, `v: &[[f32; DV]; NK]`, `out: &mut [[f32; DV]; NQ]`.
//! Lengths cannot mismatch, zero dimensions are rejected at compile time, and each scratch type
//! is sized by the compiler (`const fn new()`, so it can live in a `static`). The only runtime
//! errors left are non-finite inputs and out-of-range key indices. This layer always runs the
//! scalar kernels (it is meant for firmware; its scratch types hold no SIMD tiles).
//!
//! ```
//! use lara_attn::fixed::{self, LaraScratch};
//! use lara_attn::lara::Weighting;
//!
//! // A 64-token window of 16-dimensional features, 8 landmarks.
//! static mut SCRATCH: LaraScratch<8, 16, 16> = LaraScratch::new();
//!
//! let q = [[0.1f32; 16]; 64];
//! let mut out = [[0.0f32; 16]; 64];
//! // SAFETY (of the doctest): single-threaded, the only reference to SCRATCH.
//! #[allow(static_mut_refs)]
//! let scratch = unsafe { &mut SCRATCH };
//! fixed::lara(Weighting::Optimal { alpha_coeff: 1.0 }, &q, &q, &q, None, &mut out, scratch)?;
//! # Ok::<(), lara_attn::Error>(())
//! ```

use crate::error::Error;
use crate::lara::{self, Params, Weighting};
use crate::math::KEY_BLOCK;
use crate::random::NoiseScale;
use crate::shape::Shape;
use crate::{exact as exact_kernel, ra as ra_kernel, rfa};
use rand_core::RngCore;

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

    fn workspace(&mut self, count: usize, shape: Shape) -> lara::Workspace<'_> {
        lara::Workspace::from_parts(
            self.q_bar.as_flattened_mut(),
            self.mu.as_flattened_mut(),
            self.w.as_flattened_mut(),
            self.kv.as_flattened_mut(),
            self.stats.as_flattened_mut(),
            count,
            count,
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
        ra_kernel::Workspace::from_parts(
            &mut self.key_half_norms,
            &mut self.key_mean,
            &mut self.w,
            &mut self.block,
        )
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

/// The shape of the arrays, with every dimension checked non-zero at compile time.
const fn shape<const NQ: usize, const NK: usize, const D: usize, const DV: usize>() -> Shape {
    assert!(
        NQ > 0 && NK > 0 && D > 0 && DV > 0,
        "every dimension must be non-zero"
    );
    Shape::cross(NQ, NK, D, DV)
}

/// [`exact::attention`](crate::exact::attention) on arrays.
///
/// # Errors
/// [`Error::NonFinite`] for a non-finite input.
pub fn exact<const NQ: usize, const NK: usize, const D: usize, const DV: usize>(
    q: &[[f32; D]; NQ],
    k: &[[f32; D]; NK],
    v: &[[f32; DV]; NK],
    out: &mut [[f32; DV]; NQ],
    scratch: &mut ExactScratch,
) -> Result<(), Error> {
    let shape = const { shape::<NQ, NK, D, DV>() };
    let (q, k, v) = (q.as_flattened(), k.as_flattened(), v.as_flattened());
    shape.check_qkv(q, k, v, out.as_flattened())?;
    let out = out.as_flattened_mut();
    exact_kernel::attention_scalar(shape, q, k, v, None, out, &mut scratch.block);
    Ok(())
}

/// [`lara::attention`] with `C` segment-mean landmarks on arrays;
/// `noise` holds `C' = min(C, NQ, NK)` rows.
///
/// # Errors
/// [`Error::NonFinite`] for a non-finite input or `alpha_coeff`, [`Error::LengthMismatch`] for
/// a noise of the wrong number of rows.
pub fn lara<const NQ: usize, const NK: usize, const D: usize, const DV: usize, const C: usize>(
    weighting: Weighting,
    q: &[[f32; D]; NQ],
    k: &[[f32; D]; NK],
    v: &[[f32; DV]; NK],
    noise: Option<&[[f32; D]]>,
    out: &mut [[f32; DV]; NQ],
    scratch: &mut LaraScratch<C, D, DV>,
) -> Result<(), Error> {
    let shape = const { shape::<NQ, NK, D, DV>() };
    const { assert!(C > 0, "LARA needs at least one landmark") };
    let params = Params::segment_means(C, weighting);
    let ws = scratch.workspace(lara::effective_landmarks(shape, C), shape);
    let noise = noise.map(|eps| eps.as_flattened());
    lara::attention_in(
        shape,
        &params,
        q.as_flattened(),
        k.as_flattened(),
        v.as_flattened(),
        noise,
        out.as_flattened_mut(),
        ws,
        &mut [],
    )
}

/// [`lara::attention_sampled`] with `C` segment-mean landmarks
/// on arrays.
///
/// # Errors
/// As [`lara()`].
pub fn lara_sampled<
    const NQ: usize,
    const NK: usize,
    const D: usize,
    const DV: usize,
    const C: usize,
    R: RngCore + ?Sized,
>(
    weighting: Weighting,
    q: &[[f32; D]; NQ],
    k: &[[f32; D]; NK],
    v: &[[f32; DV]; NK],
    rng: &mut R,
    out: &mut [[f32; DV]; NQ],
    scratch: &mut LaraScratch<C, D, DV>,
) -> Result<(), Error> {
    let shape = const { shape::<NQ, NK, D, DV>() };
    const { assert!(C > 0, "LARA needs at least one landmark") };
    let params = Params::segment_means(C, weighting);
    let ws = scratch.workspace(lara::effective_landmarks(shape, C), shape);
    lara::attention_sampled_in(
        shape,
        &params,
        q.as_flattened(),
        k.as_flattened(),
        v.as_flattened(),
        rng,
        out.as_flattened_mut(),
        ws,
        &mut [],
    )
}

/// [`ra::attention`](crate::ra::attention) on arrays.
///
/// # Errors
/// [`Error::NonFinite`] for a non-finite input, [`Error::LengthMismatch`] or
/// [`Error::KeyIndexOutOfRange`] for bad key indices.
#[allow(clippy::too_many_arguments)]
pub fn ra<const NQ: usize, const NK: usize, const D: usize, const DV: usize>(
    mean: ra_kernel::Mean<'_>,
    noise_scale: NoiseScale,
    q: &[[f32; D]; NQ],
    k: &[[f32; D]; NK],
    v: &[[f32; DV]; NK],
    noise: Option<&[[f32; D]; NQ]>,
    out: &mut [[f32; DV]; NQ],
    scratch: &mut RaScratch<NK, D>,
) -> Result<(), Error> {
    let shape = const { shape::<NQ, NK, D, DV>() };
    let noise = noise.map(|eps| eps.as_flattened());
    ra_kernel::attention_in(
        shape,
        mean,
        noise_scale,
        q.as_flattened(),
        k.as_flattened(),
        v.as_flattened(),
        noise,
        out.as_flattened_mut(),
        scratch.workspace(),
        &mut [],
    )
}

/// [`ra::attention_sampled`](crate::ra::attention_sampled) on arrays.
///
/// # Errors
/// [`Error::NonFinite`] for a non-finite input.
#[allow(clippy::too_many_arguments)]
pub fn ra_sampled<
    const NQ: usize,
    const NK: usize,
    const D: usize,
    const DV: usize,
    R: RngCore + ?Sized,
>(
    mean: ra_kernel::SampledMean,
    noise_scale: NoiseScale,
    q: &[[f32; D]; NQ],
    k: &[[f32; D]; NK],
    v: &[[f32; DV]; NK],
    rng: &mut R,
    out: &mut [[f32; DV]; NQ],
    scratch: &mut RaScratch<NK, D>,
) -> Result<(), Error> {
    let shape = const { shape::<NQ, NK, D, DV>() };
    ra_kernel::attention_sampled_in(
        shape,
        mean,
        noise_scale,
        q.as_flattened(),
        k.as_flattened(),
        v.as_flattened(),
        rng,
        out.as_flattened_mut(),
        scratch.workspace(),
        &mut [],
    )
}

/// [`rfa::positive`] with `omega [S, D]` on arrays.
///
/// # Errors
/// [`Error::NonFinite`] for a non-finite input or `omega`.
pub fn rfa_positive<
    const NQ: usize,
    const NK: usize,
    const D: usize,
    const DV: usize,
    const S: usize,
>(
    omega: &[[f32; D]; S],
    q: &[[f32; D]; NQ],
    k: &[[f32; D]; NK],
    v: &[[f32; DV]; NK],
    out: &mut [[f32; DV]; NQ],
    scratch: &mut PositiveScratch<S, DV>,
) -> Result<(), Error> {
    let shape = const { shape::<NQ, NK, D, DV>() };
    const { assert!(S > 0, "RFA needs at least one feature") };
    let state = rfa::FeatureState {
        kv: scratch.kv.as_flattened_mut(),
        k_sum: &mut scratch.k_sum,
        phi: &mut scratch.phi,
        v_sum: &mut scratch.v_sum,
    };
    rfa::positive_in(
        shape,
        omega.as_flattened(),
        S,
        q.as_flattened(),
        k.as_flattened(),
        v.as_flattened(),
        None,
        out.as_flattened_mut(),
        state,
        &mut [],
    )
}

/// [`rfa::trigonometric`] with `omega [S, D]` on arrays.
///
/// # Errors
/// [`Error::NonFinite`] for a non-finite input or `omega`.
pub fn rfa_trigonometric<
    const NQ: usize,
    const NK: usize,
    const D: usize,
    const DV: usize,
    const S: usize,
>(
    omega: &[[f32; D]; S],
    q: &[[f32; D]; NQ],
    k: &[[f32; D]; NK],
    v: &[[f32; DV]; NK],
    out: &mut [[f32; DV]; NQ],
    scratch: &mut TrigonometricScratch<S, DV>,
) -> Result<(), Error> {
    let shape = const { shape::<NQ, NK, D, DV>() };
    const { assert!(S > 0, "RFA needs at least one feature") };
    let state = rfa::FeatureState {
        kv: scratch.kv.as_flattened_mut().as_flattened_mut(),
        k_sum: scratch.k_sum.as_flattened_mut(),
        phi: scratch.phi.as_flattened_mut(),
        v_sum: &mut [],
    };
    rfa::trigonometric_in(
        shape,
        omega.as_flattened(),
        S,
        q.as_flattened(),
        k.as_flattened(),
        v.as_flattened(),
        None,
        out.as_flattened_mut(),
        state,
        &mut [],
    )
}
