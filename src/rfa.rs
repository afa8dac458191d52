//! RFA: random-feature attention, linear in `n`, as the official `favorp_projection` /
//! `fourier_projection` + `linear_attention` compute it.
//!
//! A feature map `φ` with `E[φ(q)·φ(k)] ∝ exp(s · q·k)` turns softmax attention into
//! `out_i = φ(q_i)·Σ_m φ(k_m) v_mᵀ / max(φ(q_i)·Σ_m φ(k_m), 1e-2)`, so the keys are summarised
//! once in an `S × d_v` state and every query costs `O(S · (d + d_v))`.
//!
//! * [`positive`]: Performer's positive features (FAVOR+), with the official stabilisers (a per
//!   query row maximum, one maximum over all keys and features) and the `+1e-4` floor. The keys
//!   are streamed once: the key-side maximum is tracked online and the running sums rescaled
//!   when it grows, which is exact because the floor enters linearly.
//! * [`trigonometric`]: random Fourier features `[sin, cos]` (Peng et al. 2021), `2·S` features.
//! * [`positive_log_space`]: the positive-feature estimator without the official floor and
//!   clamp, computed in log space (a running maximum per feature).
//! * [`positive_masked`], [`trigonometric_masked`]: with a key padding mask.
//!
//! `omega [S, d]` comes from the caller: draw it with [`random::gaussian_omega`] (iid, the
//! official training mode) or [`random::orthogonal_omega`] (the official eval buffer).
//!
//! [`random::gaussian_omega`]: crate::random::gaussian_omega
//! [`random::orthogonal_omega`]: crate::random::orthogonal_omega

use crate::backend::active_backend;
use crate::error::{Arg, Error};
use crate::math::{axpy, copy, dot, exp, half_sq_norm, max, rows, rows_mut, scale};
use crate::shape::{
    Shape, carve, check_finite, check_key_mask, check_len, checked_len, masked_keys, take_scratch,
};
use crate::simd::{blocked, dispatch};

/// The official `eps` added to every positive feature.
pub const FEATURE_FLOOR: f32 = 1e-4;
/// The official lower clamp of the denominator `φ(q_i)·Σ_m φ(k_m)`.
pub const DENOMINATOR_FLOOR: f32 = 1e-2;

/// Scratch (in `f32`s) that [`positive`] needs, independent of `n`: `S · (d_v + 2) + d_v` for
/// the scalar kernel, plus `S · (d + 32)` on targets with SIMD backends (the packed `ω` and a
/// tile of projections).
pub const fn positive_scratch_len(shape: Shape, features: usize) -> usize {
    features
        .saturating_mul(shape.value_dim.saturating_add(2))
        .saturating_add(shape.value_dim)
        .saturating_add(crate::simd::if_compiled(blocked::rfa_scratch_len(
            features, shape.dim,
        )))
}

/// Scratch (in `f32`s) that [`trigonometric`] needs, independent of `n`: `2·S · (d_v + 2)` for
/// the scalar kernel, plus `S · (d + 64)` on targets with SIMD backends.
pub const fn trigonometric_scratch_len(shape: Shape, features: usize) -> usize {
    features
        .saturating_mul(2)
        .saturating_mul(shape.value_dim.saturating_add(2))
        .saturating_add(crate::simd::if_compiled(
            blocked::trigonometric_scratch_len(features, shape.dim),
        ))
}

/// Performer / RFA attention with positive random features, `omega [S, d]`:
///
/// ```text
/// A[i,r] = d^-1/4 q_i·ω_r,   φq[i,r] = S^-1/2 exp(A[i,r] − s|q_i|²/2 − max_r' A[i,r']) + 1e-4
/// B[m,r] = d^-1/4 k_m·ω_r,   φk[m,r] = S^-1/2 exp(B[m,r] − s|k_m|²/2 − max_m',r' B) + 1e-4
/// out_i  = Σ_r φq[i,r] Σ_m φk[m,r] v_m / max(Σ_r φq[i,r] Σ_m φk[m,r], 1e-2)
/// ```
///
/// # Errors
/// A zero dimension or `features == 0`, a slice whose length does not match, scratch shorter
/// than [`positive_scratch_len`], or a non-finite input. Nothing is written on error.
///
/// # Example
/// ```
/// use lara_attn::{Shape, random, rfa};
/// const SHAPE: Shape = Shape::self_attention(10, 4);
/// const S: usize = 16;
/// let mut omega = [0.0; S * 4];
/// random::orthogonal_omega(&mut random::default_rng(1), S, 4, &mut omega)?;
/// let x: Vec<f32> = (0..40).map(|i| (i as f32 * 0.3).sin()).collect();
/// let mut out = [0.0; 40];
/// let mut scratch = [0.0; rfa::positive_scratch_len(SHAPE, S)];
/// rfa::positive(SHAPE, &omega, S, &x, &x, &x, &mut out, &mut scratch)?;
/// # Ok::<(), lara_attn::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn positive(
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    positive_with_mask(shape, omega, features, q, k, v, None, out, scratch)
}

/// [`positive`] with a key padding mask `[n_k]` (`true` marks a padding key): masked keys drop
/// out of the key sums (the official code zeroes their features) and out of the key-side
/// stabiliser. The official code still takes that maximum over every key, so there a masked
/// key can shift the unmasked features through the `+1e-4` floor; here masked keys have
/// exactly zero influence.
///
/// # Errors
/// As [`positive`], plus a mask of the wrong length or one that masks every key.
#[allow(clippy::too_many_arguments)]
pub fn positive_masked(
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: &[bool],
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    positive_with_mask(
        shape,
        omega,
        features,
        q,
        k,
        v,
        Some(key_mask),
        out,
        scratch,
    )
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn positive_with_mask(
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    let needed = checked_len(features, shape.value_dim.saturating_add(2))?
        .checked_add(shape.value_dim)
        .and_then(|len| {
            len.checked_add(crate::simd::if_compiled(blocked::rfa_scratch_len(
                features, shape.dim,
            )))
        })
        .ok_or(Error::SizeOverflow)?;
    let mut rest = take_scratch(scratch, needed)?;
    let kv = carve(&mut rest, features * shape.value_dim)?;
    let k_sum = carve(&mut rest, features)?;
    let phi = carve(&mut rest, features)?;
    let v_sum = carve(&mut rest, shape.value_dim)?;
    let state = FeatureState {
        kv,
        k_sum,
        phi,
        v_sum,
    };
    positive_in(shape, omega, features, q, k, v, key_mask, out, state, rest)
}

/// [`positive`] on a state that is already split (`[S, d_v]`, `[S]`, `[S]`, `[d_v]`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn positive_in(
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    out: &mut [f32],
    mut state: FeatureState<'_>,
    extra: &mut [f32],
) -> Result<(), Error> {
    check_args(shape, omega, features, q, k, v, key_mask, out)?;
    if !extra.is_empty()
        && dispatch::rfa_positive(
            active_backend(),
            shape,
            omega,
            features,
            q,
            k,
            v,
            key_mask,
            out,
            &mut state,
            extra,
        )
    {
        return Ok(());
    }
    let scales = FeatureScales::new(shape, features);
    state.positive_key_pass(shape, scales, omega, k, v, key_mask);
    for (q_row, out_row) in rows(q, shape.dim).zip(rows_mut(out, shape.value_dim)) {
        positive_query_features(scales, q_row, omega, state.phi);
        linear_attention_row(state.phi, state.kv, state.k_sum, out_row);
    }
    Ok(())
}

/// Scratch (in `f32`s) that [`positive_log_space`] needs, independent of `n`:
/// `S · (d + d_v + 8)` for the scalar kernel, plus `S · (d + 32)` on targets with SIMD
/// backends.
pub const fn log_space_scratch_len(shape: Shape, features: usize) -> usize {
    // The LARA workspace of `S` samples and no landmarks.
    crate::lara::workspace_len(shape, 0, features)
}

/// RFA with positive random features computed fully in log space, `omega [S, d]`: the
/// estimator `Σ_r φq[i,r] Σ_m φk[m,r] v_m / Σ_r φq[i,r] Σ_m φk[m,r]` of [`positive`] without the
/// official `+1e-4` floor and `1e-2` clamp, for models not trained with them:
///
/// ```text
/// LK[r,m] = d^-1/4 k_m·ω_r − s|k_m|²/2           (log φk up to a constant)
/// lseK_r  = lse_m LK[r,m],   kv_r = Σ_m softmax_m(LK[r,m]) v_m
/// out_i   = Σ_r softmax_r(d^-1/4 q_i·ω_r + lseK_r) kv_r
/// ```
/// Every stabiliser is exact (a running maximum per feature), no sum can overflow, and each
/// output row is a convex combination of value rows. This is LARA's key and query passes with
/// `S` samples `W_r = d^1/4 ω_r`, uniform weights and `log P = 0`, and it runs on the same
/// kernels. `key_mask` (`[n_k]`, `true` = padding) drops keys exactly.
///
/// # Errors
/// As [`positive`] with [`log_space_scratch_len`], plus a mask of the wrong length or one that
/// masks every key.
///
/// # Example
/// ```
/// use lara_attn::{Shape, random, rfa};
/// const SHAPE: Shape = Shape::self_attention(10, 4);
/// const S: usize = 16;
/// let mut omega = [0.0; S * 4];
/// random::orthogonal_omega(&mut random::default_rng(1), S, 4, &mut omega)?;
/// let x: Vec<f32> = (0..40).map(|i| (i as f32 * 0.3).sin()).collect();
/// let mut out = [0.0; 40];
/// let mut scratch = [0.0; rfa::log_space_scratch_len(SHAPE, S)];
/// rfa::positive_log_space(SHAPE, &omega, S, &x, &x, &x, None, &mut out, &mut scratch)?;
/// # Ok::<(), lara_attn::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn positive_log_space(
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    check_args(shape, omega, features, q, k, v, key_mask, out)?;
    // The LARA workspace with S samples and no landmarks.
    let (mut ws, rest) = crate::lara::Workspace::split(scratch, 0, features, shape)?;
    // W_r = d^1/4 ω_r, so that ℓ(x; W_r) = s · (W_r·x − |x|²/2) = d^-1/4 x·ω_r − s|x|²/2
    let data_scale = FeatureScales::new(shape, features).data;
    for (w, &o) in ws.w.iter_mut().zip(omega) {
        *w = o / data_scale;
    }
    // lseK_r and kv_r
    ws.key_pass(shape, k, v, key_mask, rest);
    // log P = 0, α = 1: the query logits are ℓ(q_i; W_r) + lseK_r
    copy(ws.bias, ws.key_lse);
    ws.query_pass(
        shape,
        crate::lara::Weighting::BalanceHeuristic,
        q,
        out,
        rest,
    );
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

impl FeatureState<'_> {
    /// One streaming pass over the unmasked keys: `kv_r = Σ_m φk[m,r] v_m`,
    /// `k_sum_r = Σ_m φk[m,r]`.
    pub(crate) fn positive_key_pass(
        &mut self,
        shape: Shape,
        scales: FeatureScales,
        omega: &[f32],
        k: &[f32],
        v: &[f32],
        key_mask: Option<&[bool]>,
    ) {
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
        let keys = rows(k, shape.dim).zip(rows(v, shape.value_dim));
        for ((k_row, v_row), masked) in keys.zip(masked_keys(key_mask)) {
            if masked {
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
        let key_count = unmasked_count(shape, key_mask) as f32;
        for (kv_row, k_sum) in rows_mut(kv, shape.value_dim).zip(k_sum.iter_mut()) {
            scale(kv_row, scales.ratio);
            axpy(FEATURE_FLOOR, v_sum, kv_row);
            *k_sum = scales.ratio * *k_sum + FEATURE_FLOOR * key_count;
        }
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

/// RFA with trigonometric random features (random Fourier features), `omega [S, d]`, `2·S`
/// features, as the official `fourier_projection`:
///
/// ```text
/// A[i,r] = d^-1/4 x_i·ω_r,   h_i = s|x_i|²/2
/// φ(x_i) = S^-1/2 exp(h_i − max_i' h_i') [sin A[i,·], cos A[i,·]]   (max over that input's rows)
/// out_i  = φ(q_i)·Σ_m φ(k_m) v_mᵀ / max(φ(q_i)·Σ_m φ(k_m), 1e-2)
/// ```
/// The features can be negative, so the `1e-2` clamp can bind; the queries' `exp(h − max h)`
/// factor cancels except through it.
///
/// # Errors
/// As [`positive`], with [`trigonometric_scratch_len`].
#[allow(clippy::too_many_arguments)]
pub fn trigonometric(
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    trigonometric_with_mask(shape, omega, features, q, k, v, None, out, scratch)
}

/// [`trigonometric`] with a key padding mask `[n_k]` (`true` marks a padding key): masked
/// keys drop out of the key sums and of the keys' `max h`, so they have exactly zero influence.
///
/// # Errors
/// As [`trigonometric`], plus a mask of the wrong length or one that masks every key.
#[allow(clippy::too_many_arguments)]
pub fn trigonometric_masked(
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: &[bool],
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    trigonometric_with_mask(
        shape,
        omega,
        features,
        q,
        k,
        v,
        Some(key_mask),
        out,
        scratch,
    )
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn trigonometric_with_mask(
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    let total = checked_len(features, 2)?;
    let needed = checked_len(total, shape.value_dim.saturating_add(2))?
        .checked_add(crate::simd::if_compiled(
            blocked::trigonometric_scratch_len(features, shape.dim),
        ))
        .ok_or(Error::SizeOverflow)?;
    let mut rest = take_scratch(scratch, needed)?;
    let kv = carve(&mut rest, total * shape.value_dim)?;
    let k_sum = carve(&mut rest, total)?;
    let phi = carve(&mut rest, total)?;
    let state = FeatureState {
        kv,
        k_sum,
        phi,
        v_sum: &mut [],
    };
    trigonometric_in(shape, omega, features, q, k, v, key_mask, out, state, rest)
}

/// [`trigonometric`] on a state that is already split (`[2S, d_v]`, `[2S]`, `[2S]`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn trigonometric_in(
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    out: &mut [f32],
    mut state: FeatureState<'_>,
    extra: &mut [f32],
) -> Result<(), Error> {
    check_args(shape, omega, features, q, k, v, key_mask, out)?;
    if !extra.is_empty()
        && dispatch::rfa_trigonometric(
            active_backend(),
            shape,
            omega,
            features,
            q,
            k,
            v,
            key_mask,
            out,
            &mut state,
            extra,
        )
    {
        return Ok(());
    }
    let FeatureState { kv, k_sum, phi, .. } = state;
    let (dim, value_dim) = (shape.dim, shape.value_dim);
    let scales = FeatureScales::new(shape, features);

    // Key pass over the unmasked keys: kv = Σ_m φ(k_m) v_mᵀ, k_sum = Σ_m φ(k_m).
    kv.fill(0.0);
    k_sum.fill(0.0);
    let key_max = max_scaled_half_norm(scales, k, dim, key_mask);
    let keys = rows(k, dim).zip(rows(v, value_dim));
    for ((k_row, v_row), masked) in keys.zip(masked_keys(key_mask)) {
        if masked {
            continue;
        }
        fourier_features(scales, key_max, k_row, omega, phi);
        for ((&f, kv_row), k_sum) in phi
            .iter()
            .zip(rows_mut(kv, value_dim))
            .zip(k_sum.iter_mut())
        {
            axpy(f, v_row, kv_row);
            *k_sum += f;
        }
    }
    let query_max = max_scaled_half_norm(scales, q, dim, None);
    for (q_row, out_row) in rows(q, dim).zip(rows_mut(out, value_dim)) {
        fourier_features(scales, query_max, q_row, omega, phi);
        linear_attention_row(phi, kv, k_sum, out_row);
    }
    Ok(())
}

/// `max_i s|x_i|²/2` over the rows of one input that `mask` does not mark.
pub(crate) fn max_scaled_half_norm(
    scales: FeatureScales,
    x: &[f32],
    dim: usize,
    mask: Option<&[bool]>,
) -> f32 {
    rows(x, dim.max(1))
        .zip(masked_keys(mask))
        .filter(|&(_, masked)| !masked)
        .map(|(row, _)| scales.half_norm * half_sq_norm(row))
        .fold(f32::NEG_INFINITY, f32::max)
}

/// The number of keys a mask leaves: `n_k` without one.
pub(crate) fn unmasked_count(shape: Shape, key_mask: Option<&[bool]>) -> usize {
    key_mask.map_or(shape.keys, |mask| mask.iter().filter(|&&m| !m).count())
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
        let (sin, cos) = libm::sincosf(data_scale * dot(x, omega_row));
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

#[allow(clippy::too_many_arguments)]
fn check_args(
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    out: &[f32],
) -> Result<(), Error> {
    shape.check_qkv(q, k, v, out)?;
    if let Some(mask) = key_mask {
        check_key_mask(shape, mask)?;
    }
    if features == 0 {
        return Err(Error::ZeroFeatures);
    }
    check_len(Arg::Omega, omega, features, shape.dim)?;
    check_finite(Arg::Omega, omega)
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
                state.positive_key_pass(shape, scales, &omega, &case.k, &case.v, None);
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
