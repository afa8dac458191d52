//! RFA: random-feature attention, linear in `n`, as the official `favorp_projection` /
//! `fourier_projection` + `linear_attention` compute it.
//!
//! A feature map `φ` with `E[φ(q)·φ(k)] ∝ exp(s · q·k)` turns softmax attention into
//! `out_i = φ(q_i)·Σ_m φ(k_m) v_mᵀ / max(φ(q_i)·Σ_m φ(k_m), 1e-2)`, so the keys are summarised
//! once in an `S × d_v` state and every query costs `O(S · (d + d_v))`. [`FeatureMap`] picks
//! the map:
//!
//! * [`FeatureMap::Positive`]: Performer's positive features (FAVOR+), with the official
//!   stabilisers (a per query row maximum, one maximum over all keys and features) and the
//!   `+1e-4` floor. The keys are streamed once: the key-side maximum is tracked online and the
//!   running sums rescaled when it grows, which is exact because the floor enters linearly.
//! * [`FeatureMap::Trigonometric`]: random Fourier features `[sin, cos]` (Peng et al. 2021),
//!   `2·S` features.
//! * [`FeatureMap::PositiveLogSpace`]: the positive-feature estimator without the official floor
//!   and clamp, computed in log space (a running maximum per feature).
//!
//! `omega [h, S, d]` comes from the caller: draw it with [`random::gaussian_omega`] (iid, the
//! official training mode) or [`random::orthogonal_omega`] (the official eval buffer). With the
//! key padding mask of [`Qkv`], masked keys drop out of the key sums (the official code zeroes
//! their features) and out of the key-side stabiliser. The official code still takes that
//! maximum over every key, so there a masked key can shift the unmasked features through the
//! `+1e-4` floor; here masked keys have exactly zero influence.
//!
//! Cost: `O(h · (n_q + n_k) · F · (d + d_v))` time, `F = S` or `2·S` features, and scratch
//! independent of `n` ([`scratch_len`]).
//!
//! [`random::gaussian_omega`]: crate::random::gaussian_omega
//! [`random::orthogonal_omega`]: crate::random::orthogonal_omega

mod blocked;
mod scalar;

use crate::error::{Arg, Error};
use crate::inputs::Qkv;
use crate::lara::{self, Weighting};
use crate::math::{axpy, dot, exp, half_sq_norm, max, scale, sin_cos};
use crate::shape::{Shape, check_finite, checked_len, checked_scratch_len};
use crate::simd::{self, Available, Backend, Isa, Kernel};
use crate::slices::{copy, part, rows, rows_mut, take};
use core::marker::PhantomData;

/// The official `eps` added to every positive feature.
pub const FEATURE_FLOOR: f32 = 1e-4;
/// The official lower clamp of the denominator `φ(q_i)·Σ_m φ(k_m)`.
pub const DENOMINATOR_FLOOR: f32 = 1e-2;

/// The random-feature map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeatureMap {
    /// Performer's positive features (FAVOR+, the official `favorp_projection`):
    ///
    /// ```text
    /// A[i,r] = d^-1/4 q_i·ω_r,   φq[i,r] = S^-1/2 exp(A[i,r] − s|q_i|²/2 − max_r' A[i,r']) + 1e-4
    /// B[m,r] = d^-1/4 k_m·ω_r,   φk[m,r] = S^-1/2 exp(B[m,r] − s|k_m|²/2 − max_m',r' B) + 1e-4
    /// out_i  = Σ_r φq[i,r] Σ_m φk[m,r] v_m / max(Σ_r φq[i,r] Σ_m φk[m,r], 1e-2)
    /// ```
    Positive,
    /// Random Fourier features (the official `fourier_projection`), `2·S` features:
    ///
    /// ```text
    /// A[i,r] = d^-1/4 x_i·ω_r,   h_i = s|x_i|²/2
    /// φ(x_i) = S^-1/2 exp(h_i − max_i' h_i') [sin A[i,·], cos A[i,·]]   (max over that input)
    /// out_i  = φ(q_i)·Σ_m φ(k_m) v_mᵀ / max(φ(q_i)·Σ_m φ(k_m), 1e-2)
    /// ```
    /// The features can be negative, so the `1e-2` clamp can bind; the queries'
    /// `exp(h − max h)` factor cancels except through it.
    Trigonometric,
    /// The estimator of [`Positive`](FeatureMap::Positive) without the official `+1e-4` floor
    /// and `1e-2` clamp, in log space, for models not trained with them:
    ///
    /// ```text
    /// LK[r,m] = d^-1/4 k_m·ω_r − s|k_m|²/2           (log φk up to a constant)
    /// lseK_r  = lse_m LK[r,m],   kv_r = Σ_m softmax_m(LK[r,m]) v_m
    /// out_i   = Σ_r softmax_r(d^-1/4 q_i·ω_r + lseK_r) kv_r
    /// ```
    /// Every stabiliser is exact (a running maximum per feature), no sum can overflow, and each
    /// output row is a convex combination of value rows. This is LARA's key and query passes
    /// with `S` samples `W_r = d^1/4 ω_r`, uniform weights and `log P = 0`, on the same kernels.
    PositiveLogSpace,
}

impl FeatureMap {
    /// The number of features `F` of `S` projections: `S`, or `2·S` for trigonometric ones.
    pub const fn feature_count(self, features: usize) -> usize {
        match self {
            FeatureMap::Positive | FeatureMap::PositiveLogSpace => features,
            FeatureMap::Trigonometric => features.saturating_mul(2),
        }
    }
}

/// The parameters of an RFA call: the feature map and the projection `omega [h, S, d]` (the
/// number of features `S` is `omega.len() / (h · d)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params<'a> {
    /// The feature map.
    pub map: FeatureMap,
    /// The random projection `ω [h, S, d]`, one `[S, d]` per head.
    pub omega: &'a [f32],
}

/// Scratch (in `f32`s) that [`attention`] needs on this target with `features` (`S`)
/// projections, independent of `n` and `h`: [`scratch_len_for`] the backends compiled here
/// (the largest of them).
pub const fn scratch_len(shape: Shape, map: FeatureMap, features: usize) -> usize {
    len(shape, map, features, simd::COMPILED)
}

/// Scratch (in `f32`s) that [`attention`] needs when it runs on `backend`. Scalar kernels
/// ([`Backend::Scalar`]: the fixed-size layer, and Cortex-M or RISC-V built for size):
/// `S·(d_v + 2) + d_v` for positive features, `2S·(d_v + 2)` for trigonometric ones,
/// `S·(d + d_v + 8)` in log space. The blocked backends (SIMD, and [`Backend::Blocked`] on
/// Cortex-M and RISC-V) add the packed `ω` and a tile of projections: `S·(d + 32)`,
/// `S·(d + 64)`, `S·(d + 32)`.
pub const fn scratch_len_for(
    backend: Backend,
    shape: Shape,
    map: FeatureMap,
    features: usize,
) -> usize {
    len(shape, map, features, backend.is_blocked())
}

#[inline(always)]
pub(crate) const fn len(shape: Shape, map: FeatureMap, features: usize, tiles: bool) -> usize {
    let (dim, value_dim) = (shape.dim, shape.value_dim);
    let (state, tile) = match map {
        FeatureMap::Positive => (
            features
                .saturating_mul(value_dim.saturating_add(2))
                .saturating_add(value_dim),
            blocked::positive_tiles_len(features, dim),
        ),
        FeatureMap::Trigonometric => (
            features
                .saturating_mul(2)
                .saturating_mul(value_dim.saturating_add(2)),
            blocked::trigonometric_tiles_len(features, dim),
        ),
        FeatureMap::PositiveLogSpace => {
            return lara::workspace_len(shape, 0, features, tiles);
        }
    };
    if tiles {
        state.saturating_add(tile)
    } else {
        state
    }
}

/// Random-feature attention of `x` into `out [h, n_q, d_v]`, with the map and `ω [h, S, d]` of
/// `params`.
///
/// # Errors
/// A zero dimension, an empty `ω` ([`Error::ZeroFeatures`]) or one that is not whole rows of
/// `h · d` ([`Error::PartialRow`]), a slice whose length does not match, a key mask that masks
/// every key, scratch shorter than [`scratch_len_for`] the active backend, or a non-finite
/// input. Nothing is written on error.
///
/// # Example
/// ```
/// use lara_attn::{Qkv, Shape, random, rfa};
/// use lara_attn::rfa::FeatureMap;
/// const SHAPE: Shape = Shape::self_attention(10, 4);
/// const S: usize = 16;
/// let mut omega = [0.0; S * 4];
/// random::orthogonal_omega(&mut random::default_rng(1), S, 4, &mut omega)?;
/// let x: Vec<f32> = (0..40).map(|i| (i as f32 * 0.3).sin()).collect();
/// let mut out = [0.0; 40];
/// let mut scratch = [0.0; rfa::scratch_len(SHAPE, FeatureMap::Positive, S)];
/// let inputs = Qkv { shape: SHAPE, q: &x, k: &x, v: &x, key_mask: None };
/// let params = rfa::Params { map: FeatureMap::Positive, omega: &omega };
/// rfa::attention(&inputs, &params, &mut out, &mut scratch)?;
/// # Ok::<(), lara_attn::Error>(())
/// ```
#[inline(always)]
pub fn attention(
    x: &Qkv<'_>,
    params: &Params<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    attention_on(Available::active(), x, params, out, scratch)
}

/// [`attention`] on `backend` (a caller that sized the scratch for one backend runs on it).
#[inline(always)]
pub(crate) fn attention_on(
    backend: Available,
    x: &Qkv<'_>,
    params: &Params<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    // (Inlined, so that a call with a constant map links that map's kernels only: firmware
    // that runs positive features carries no sine, cosine or log-space code.)
    match params.map {
        FeatureMap::Positive => linear::<Positive>(backend, x, params, out, scratch),
        FeatureMap::Trigonometric => linear::<Trigonometric>(backend, x, params, out, scratch),
        FeatureMap::PositiveLogSpace => log_space(backend, x, params, out, scratch),
    }
}

/// RFA with the linear-attention map `M` (positive or trigonometric features).
/// (Not inlined into the caller, whose frame would then hold its locals.)
#[inline(never)]
fn linear<M: Map>(
    backend: Available,
    x: &Qkv<'_>,
    params: &Params<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    let features = check_args(x, params, out)?;
    let tiles = backend.backend().is_blocked();
    let (mut state, tiles) = FeatureState::split(scratch, x.shape, M::MAP, features, tiles)?;
    for head in 0..x.shape.heads {
        let kernel = Features {
            x,
            head,
            omega: params.omega,
            features,
            out: &mut *out,
            state: &mut state,
            tiles: &mut *tiles,
        };
        simd::run(backend, MapKernel::<M>(kernel, PhantomData));
    }
    Ok(())
}

/// Checks everything but the scratch; returns the number of features `S`.
pub(crate) fn check_args(x: &Qkv<'_>, params: &Params<'_>, out: &[f32]) -> Result<usize, Error> {
    x.check(out)?;
    features_of(x.shape, params.omega)
}

/// The number of features `S` of `omega [h, S, d]`, checked: not empty, whole rows, finite.
pub(crate) fn features_of(shape: Shape, omega: &[f32]) -> Result<usize, Error> {
    let row_len = checked_len(shape.heads, shape.dim)?;
    if omega.is_empty() {
        return Err(Error::ZeroFeatures);
    }
    if !omega.len().is_multiple_of(row_len.max(1)) {
        return Err(Error::PartialRow {
            arg: Arg::Omega,
            row_len,
            actual: omega.len(),
        });
    }
    check_finite(Arg::Omega, omega)?;
    Ok(omega.len() / row_len.max(1))
}

/// Log-space positive features: per head, LARA's passes with `S` samples `W_r = d^1/4 ω_r`,
/// `log P = 0` and `α = 1`.
#[inline(never)]
fn log_space(
    backend: Available,
    x: &Qkv<'_>,
    params: &Params<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    let features = check_args(x, params, out)?;
    let tiles = backend.backend().is_blocked();
    let (mut ws, tiles) = lara::Workspace::split(scratch, 0, features, x.shape, tiles)?;
    let heads = x.shape.heads;
    for head in 0..heads {
        let (x, out) = x.head_and_out(head, out);
        // W_r = d^1/4 ω_r, so that ℓ(x; W_r) = s · (W_r·x − |x|²/2) = d^-1/4 x·ω_r − s|x|²/2
        let data_scale = FeatureScales::new(x.shape, 1).data;
        for (w, &o) in ws.w.iter_mut().zip(part(params.omega, heads, head)) {
            *w = o / data_scale;
        }
        // lseK_r and kv_r
        ws.key_pass(backend, &x, &mut *tiles);
        // log P = 0, α = 1: the query logits are ℓ(q_i; W_r) + lseK_r
        copy(ws.bias, ws.key_lse);
        ws.query_pass(backend, &x, Weighting::BalanceHeuristic, out, &mut *tiles);
    }
    Ok(())
}

/// The scale factors of the official projections.
#[derive(Clone, Copy)]
pub(crate) struct FeatureScales {
    /// `s = d^-1/2`, on `|x|²/2`.
    pub(crate) half_norm: f32,
    /// `d^-1/4`, on the data before `·ω`.
    pub(crate) data: f32,
    /// `S^-1/2`.
    pub(crate) ratio: f32,
}

impl FeatureScales {
    pub(crate) fn new(shape: Shape, features: usize) -> Self {
        let half_norm = shape.scale();
        FeatureScales {
            half_norm,
            data: libm::sqrtf(half_norm),
            ratio: 1.0 / libm::sqrtf(features as f32),
        }
    }
}

/// The key summary of random-feature attention (`F = S` positive or `2·S` trigonometric
/// features).
pub(crate) struct FeatureState<'a> {
    /// `Σ_m φ(k_m)_f v_m`, `[F, d_v]`.
    pub(crate) kv: &'a mut [f32],
    /// `Σ_m φ(k_m)_f`, `[F]`.
    pub(crate) k_sum: &'a mut [f32],
    /// One row of projections / features, `[F]`.
    pub(crate) phi: &'a mut [f32],
    /// `Σ_m v_m`, `[d_v]` (positive features only; empty for trigonometric ones).
    pub(crate) v_sum: &'a mut [f32],
}

impl<'a> FeatureState<'a> {
    /// Splits a flat scratch into the state of `map` with `features` projections and the
    /// blocked kernel's tiles (empty without `tiles`). (Inlined: the map is a constant of the
    /// caller, so only its own scratch formula is compiled.)
    #[inline(always)]
    fn split(
        scratch: &'a mut [f32],
        shape: Shape,
        map: FeatureMap,
        features: usize,
        tiles: bool,
    ) -> Result<(Self, &'a mut [f32]), Error> {
        let total = checked_len(features, map.feature_count(1))?;
        let kv_len = checked_len(total, shape.value_dim)?;
        let needed = checked_scratch_len(len(shape, map, features, tiles))?;
        let actual = scratch.len();
        let mut rest = scratch
            .get_mut(..needed)
            .ok_or(Error::ScratchTooSmall { needed, actual })?;
        let kv = take(&mut rest, kv_len);
        let k_sum = take(&mut rest, total);
        let phi = take(&mut rest, total);
        let v_sum_len = match map {
            FeatureMap::Positive => shape.value_dim,
            FeatureMap::Trigonometric | FeatureMap::PositiveLogSpace => 0,
        };
        let v_sum = take(&mut rest, v_sum_len);
        Ok((
            FeatureState {
                kv,
                k_sum,
                phi,
                v_sum,
            },
            rest,
        ))
    }

    /// One streaming pass over the unmasked keys: `kv_r = Σ_m φk[m,r] v_m`,
    /// `k_sum_r = Σ_m φk[m,r]`. (Not inlined: on Cortex-M its frame and the query loop's are
    /// not stacked.)
    #[inline(never)]
    pub(crate) fn positive_key_pass(&mut self, x: &Qkv<'_>, scales: FeatureScales, omega: &[f32]) {
        let shape = x.shape;
        let FeatureState {
            kv,
            k_sum,
            phi,
            v_sum,
        } = self;
        // Accumulate Σ_m exp(B[m,r] − s|k_m|²/2 − M) v_m and Σ_m exp(…) relative to the running
        // maximum M of B over the keys seen so far, rescaling when it grows.
        kv.fill(0.0);
        k_sum.fill(0.0);
        v_sum.fill(0.0);
        let mut running_max = f32::NEG_INFINITY;
        let keys = rows(x.k, shape.dim).zip(rows(x.v, shape.value_dim));
        for ((k_row, v_row), unmasked) in keys.zip(x.unmasked_keys()) {
            if !unmasked {
                // φk[m, ·] = 0
                continue;
            }
            // B[m,r] = d^-1/4 k_m·ω_r
            project(scales.data, k_row, omega, phi);
            let row_max = max(phi);
            if row_max > running_max {
                let rescale = exp(running_max - row_max);
                scale(kv, rescale);
                scale(k_sum, rescale);
                running_max = row_max;
            }
            let k_half_norm = scales.half_norm * half_sq_norm(k_row);
            for ((&b, kv_row), k_sum) in phi
                .iter()
                .zip(rows_mut(kv, shape.value_dim))
                .zip(k_sum.iter_mut())
            {
                let e = exp(b - k_half_norm - running_max);
                axpy(e, v_row, kv_row);
                *k_sum += e;
            }
            axpy(1.0, v_row, v_sum);
        }
        // Σ_m φk[m,r] v_m = S^-1/2 kv_r + 1e-4 Σ_m v_m;  Σ_m φk[m,r] = S^-1/2 k_sum_r + 1e-4 n_k
        let key_count = x.unmasked_count() as f32;
        for (kv_row, k_sum) in rows_mut(kv, shape.value_dim).zip(k_sum.iter_mut()) {
            scale(kv_row, scales.ratio);
            axpy(FEATURE_FLOOR, v_sum, kv_row);
            *k_sum = scales.ratio * *k_sum + FEATURE_FLOOR * key_count;
        }
    }
}

/// RFA over head `head` of `x`, into its part of `out`: the arguments of the kernels of every
/// [`Map`].
pub(crate) struct Features<'a, 's> {
    pub(crate) x: &'a Qkv<'a>,
    pub(crate) head: usize,
    /// `ω [h, S, d]`.
    pub(crate) omega: &'a [f32],
    pub(crate) features: usize,
    pub(crate) out: &'a mut [f32],
    pub(crate) state: &'a mut FeatureState<'s>,
    pub(crate) tiles: &'a mut [f32],
}

/// One head's part of [`Features`]: inputs, output, `ω [S, d]`, `S`, state and tiles.
pub(crate) type HeadFeatures<'a, 's> = (
    Qkv<'a>,
    &'a mut [f32],
    &'a [f32],
    usize,
    &'a mut FeatureState<'s>,
    &'a mut [f32],
);

impl<'a, 's> Features<'a, 's> {
    /// This head's parts.
    #[inline(always)]
    pub(super) fn head_parts(self) -> HeadFeatures<'a, 's> {
        let (x, out) = self.x.head_and_out(self.head, self.out);
        let omega = part(self.omega, self.x.shape.heads, self.head);
        (x, out, omega, self.features, self.state, self.tiles)
    }
}

/// A linear-attention feature map as the kernels run it: positive or trigonometric features.
pub(crate) trait Map {
    /// The map.
    const MAP: FeatureMap;
    /// The scalar kernel.
    fn scalar(kernel: Features<'_, '_>);
    /// The blocked kernel.
    fn blocked<I: Isa>(isa: I, kernel: Features<'_, '_>);
}

/// Positive features (FAVOR+).
pub(crate) struct Positive;

/// Trigonometric features.
pub(crate) struct Trigonometric;

impl Map for Positive {
    const MAP: FeatureMap = FeatureMap::Positive;
    #[inline(always)]
    fn scalar(kernel: Features<'_, '_>) {
        scalar::positive(kernel);
    }
    #[inline(always)]
    fn blocked<I: Isa>(isa: I, kernel: Features<'_, '_>) {
        blocked::positive(isa, kernel);
    }
}

impl Map for Trigonometric {
    const MAP: FeatureMap = FeatureMap::Trigonometric;
    #[inline(always)]
    fn scalar(kernel: Features<'_, '_>) {
        scalar::trigonometric(kernel);
    }
    #[inline(always)]
    fn blocked<I: Isa>(isa: I, kernel: Features<'_, '_>) {
        blocked::trigonometric(isa, kernel);
    }
}

/// The kernel of map `M` over [`Features`].
pub(crate) struct MapKernel<'a, 's, M>(pub(crate) Features<'a, 's>, pub(crate) PhantomData<M>);

impl<M: Map> Kernel for MapKernel<'_, '_, M> {
    type Output = ();
    #[inline(always)]
    fn scalar(self) {
        M::scalar(self.0);
    }
    #[inline(always)]
    fn blocked<I: Isa>(self, isa: I) {
        M::blocked(isa, self.0);
    }
}

/// `φq[r] = S^-1/2 exp(A_r − s|q|²/2 − max_r' A_r') + 1e-4`, `A_r = d^-1/4 q·ω_r`.
pub(crate) fn positive_query_features(
    scales: FeatureScales,
    q_row: &[f32],
    omega: &[f32],
    phi: &mut [f32],
) {
    project(scales.data, q_row, omega, phi);
    let stabiliser = max(phi) + scales.half_norm * half_sq_norm(q_row);
    for a in phi.iter_mut() {
        *a = scales.ratio * exp(*a - stabiliser) + FEATURE_FLOOR;
    }
}

/// `max_i s|x_i|²/2` over the rows of one input that `mask` does not mark.
pub(crate) fn max_scaled_half_norm(
    scales: FeatureScales,
    x: &[f32],
    dim: usize,
    mask: Option<&[bool]>,
) -> f32 {
    let counted = mask
        .unwrap_or(&[])
        .iter()
        .map(|&masked| !masked)
        .chain(core::iter::repeat(true));
    rows(x, dim.max(1))
        .zip(counted)
        .filter(|&(_, counted)| counted)
        .map(|(row, _)| scales.half_norm * half_sq_norm(row))
        .fold(f32::NEG_INFINITY, f32::max)
}

/// `phi[r] = data_scale · x·ω_r` for every row `ω_r` of `omega`.
pub(crate) fn project(data_scale: f32, x: &[f32], omega: &[f32], phi: &mut [f32]) {
    for (p, omega_row) in phi.iter_mut().zip(rows(omega, x.len())) {
        *p = data_scale * dot(x, omega_row);
    }
}

/// `φ(x) = S^-1/2 exp(s|x|²/2 − max_h) [sin A, cos A]`, `A_r = d^-1/4 x·ω_r`, into `phi [2S]`.
fn fourier_features(scales: FeatureScales, max_h: f32, x: &[f32], omega: &[f32], phi: &mut [f32]) {
    let magnitude = scales.ratio * exp(scales.half_norm * half_sq_norm(x) - max_h);
    scaled_fourier_features(scales.data, magnitude, x, omega, phi);
}

/// `phi = magnitude · [sin A, cos A]`, `A_r = data_scale · x·ω_r`, into `phi [2S]`.
pub(crate) fn scaled_fourier_features(
    data_scale: f32,
    magnitude: f32,
    x: &[f32],
    omega: &[f32],
    phi: &mut [f32],
) {
    let (sines, cosines) = phi.split_at_mut(phi.len() / 2);
    for ((sine, cosine), omega_row) in sines
        .iter_mut()
        .zip(cosines.iter_mut())
        .zip(rows(omega, x.len()))
    {
        let (sin, cos) = sin_cos(data_scale * dot(x, omega_row));
        *sine = magnitude * sin;
        *cosine = magnitude * cos;
    }
}

/// `out = Σ_r φ_r kv_r / max(Σ_r φ_r k_sum_r, 1e-2)`.
fn linear_attention_row(phi: &[f32], kv: &[f32], k_sum: &[f32], out_row: &mut [f32]) {
    out_row.fill(0.0);
    let mut denominator = 0.0;
    for ((&p, kv_row), &k_sum) in phi.iter().zip(rows(kv, out_row.len())).zip(k_sum) {
        axpy(p, kv_row, out_row);
        denominator += p * k_sum;
    }
    scale(out_row, 1.0 / denominator.max(DENOMINATOR_FLOOR));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{assert_close, single_head_cases};

    /// `φq` row by row, and the key summaries `Σ_m φk v_m`, `Σ_m φk` against the official `φk`.
    #[test]
    fn features_match_the_official_code() {
        for case in single_head_cases() {
            let shape = Shape::self_attention(case.n, case.d);
            for features in [16, 64] {
                let what = |name: &str| format!("{} S={features} {name}", case.id);
                let omega = crate::test_support::npy::read_f32(
                    &case.dir.join(format!("omega_S{features}.npy")),
                )
                .unwrap()
                .data;
                let scales = FeatureScales::new(shape, features);
                let golden_phi_q = case.intermediate(&format!("performer_S{features}_phi_q"));
                let mut phi_q = vec![0.0; case.n * features];
                for (q_row, phi) in case
                    .q
                    .chunks_exact(case.d)
                    .zip(phi_q.chunks_exact_mut(features))
                {
                    positive_query_features(scales, q_row, &omega, phi);
                }
                assert_close(&phi_q, &golden_phi_q.data, 1e-5, &what("phi_q"));

                let (mut kv, mut k_sum, mut phi, mut v_sum) = (
                    vec![0.0; features * case.d],
                    vec![0.0; features],
                    vec![0.0; features],
                    vec![0.0; case.d],
                );
                let mut state = FeatureState {
                    kv: &mut kv,
                    k_sum: &mut k_sum,
                    phi: &mut phi,
                    v_sum: &mut v_sum,
                };
                let x = case.qkv();
                state.positive_key_pass(&x, scales, &omega);
                // Reference summaries from the official φk [n, S] (f64 sums).
                let phi_k = case
                    .intermediate(&format!("performer_S{features}_phi_k"))
                    .data;
                let mut ref_kv = vec![0.0f32; features * case.d];
                let mut ref_k_sum = vec![0.0f32; features];
                for r in 0..features {
                    let column = || phi_k.iter().skip(r).step_by(features).map(|&p| p as f64);
                    ref_k_sum[r] = column().sum::<f64>() as f32;
                    for c in 0..case.d {
                        let values = case.v.iter().skip(c).step_by(case.d).map(|&x| x as f64);
                        ref_kv[r * case.d + c] =
                            column().zip(values).map(|(p, x)| p * x).sum::<f64>() as f32;
                    }
                }
                assert_close(state.kv, &ref_kv, 1e-5, &what("sum phi_k v"));
                assert_close(state.k_sum, &ref_k_sum, 1e-5, &what("sum phi_k"));
            }
        }
    }
}
