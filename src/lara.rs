//! LARA: linear randomized attention (Zheng, Wang & Kong, ICML 2022, §4), as the official
//! `LinearRA` computes it (1-D path, `proposal_gen = 'no-param-pool'`).
//!
//! Randomized attention draws one proposal per query; LARA instead shares `C` proposals
//! `N(mu_c, I)` centred on landmarks and combines them by self-normalised multiple importance
//! sampling with query-specific weights `α[c, i]`:
//!
//! ```text
//! mu_c       = q̄_c + k̄_c                     (segment means of q and k)
//! W_c        = mu_c  (eval)   or  mu_c + eps_c  (sampled)
//! ℓ(x; w)    = s · (w·x − |x|²/2),  s = d^-1/2
//! kv_c       = Σ_j softmax_j(ℓ(k_j; W_c)) v_j
//! logiw[c,i] = log α[c,i] + ℓ(q_i; W_c) + lse_j ℓ(k_j; W_c) − log P_c
//! out_i      = Σ_c softmax_c(logiw[·,i]) kv_c
//! ```
//!
//! # Memory does not grow with `n`
//! The kernel streams: landmarks are running segment sums, the key pass keeps one online
//! log-sum-exp and one running `kv` row per landmark, and the query pass needs `C` logits.
//! `mis-opt` makes one extra pass over the queries first (its `T` is a softmax over the query
//! axis). [`scratch_len`] is `C · (3·d + d_v + 8)` floats: `q̄`, `mu`, `W` (`3·C·d`), `kv`
//! (`C·d_v`) and eight per-landmark scalars.
//!
//! Cost: `O((n_q + n_k) · C · (d + d_v) + C² · d)` time.

use crate::backend::active_backend;
use crate::error::{Arg, Error};
use crate::math::{
    OnlineLse, axpy, copy, dot, exp, half_sq_norm, ln, prefix, rows, rows_mut, softmax_in_place,
};
use crate::random::add_standard_normal;
use crate::shape::{Shape, carve, check_finite, check_len, checked_len, take_scratch};
use rand_core::RngCore;

/// How the proposals are weighted against each other (the official `mis_type`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Weighting {
    /// `mis-opt`: the paper's query-specific weights
    /// `α[c,i] = bh_c + alpha_coeff · (T[c,i] − mean_c' T[c',i])`, `T` a softmax over queries
    /// of `s · q̄_c·q_i`, and `log P_c = ℓ(mu_c; W_c)`.
    Optimal {
        /// The official `alpha_coeff` (1.0 by default in the official code).
        alpha_coeff: f32,
    },
    /// `mis-bh`: the balance heuristic, `α = 1`, `log P_c = lse_c' ℓ(mu_c'; W_c)`.
    BalanceHeuristic,
    /// `mis-biased`: `log α[c,i] = s · mu_c·q_i`, `log P_c = lse_c' ℓ(mu_c'; W_c)`.
    Biased,
}

/// Where the landmarks (the centres `q̄`, `k̄` of the proposals) come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Landmarks<'a> {
    /// `C` segment means of `q` and of `k` (the official `no-param-pool`), with the official
    /// uneven split: the first segments are the shorter ones. When a sequence is not longer than
    /// `C`, every token is its own landmark; for cross-attention the count is
    /// `C' = min(C, n_q, n_k)` (see [`effective_landmarks`]).
    SegmentMeans(usize),
    /// Landmarks computed by the caller (a model with its own proposal generator): `count` rows
    /// of query landmarks `q̄ [count, d]` and key landmarks `k̄ [count, d]`.
    Given {
        /// Number of landmarks `C`.
        count: usize,
        /// Query landmarks `q̄ [count, d]` (used by `mis-opt`'s `T` and in `mu = q̄ + k̄`).
        queries: &'a [f32],
        /// Key landmarks `k̄ [count, d]`.
        keys: &'a [f32],
    },
}

/// The parameters of a LARA call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params<'a> {
    /// Where the landmarks come from.
    pub landmarks: Landmarks<'a>,
    /// How proposals are weighted.
    pub weighting: Weighting,
}

impl Params<'_> {
    /// Segment-mean landmarks with the given weighting.
    pub const fn segment_means(landmarks: usize, weighting: Weighting) -> Params<'static> {
        Params {
            landmarks: Landmarks::SegmentMeans(landmarks),
            weighting,
        }
    }
}

/// Per-landmark scalars kept in the scratch.
const STATS_PER_LANDMARK: usize = 8;

/// The number of landmarks `C'` that segment means with `landmarks` requested produce:
/// `min(C, n_q, n_k)` (the official rule `C' = n if n <= C else C` for self-attention).
pub const fn effective_landmarks(shape: Shape, landmarks: usize) -> usize {
    let n = if shape.queries < shape.keys {
        shape.queries
    } else {
        shape.keys
    };
    if landmarks < n { landmarks } else { n }
}

/// Scratch (in `f32`s) that [`attention`] needs for up to `landmarks` landmarks:
/// `landmarks · (3·d + d_v + 8)`, independent of `n_q` and `n_k`.
pub const fn scratch_len(shape: Shape, landmarks: usize) -> usize {
    scalar_scratch_len(shape, landmarks).saturating_add(crate::simd::if_compiled(
        crate::simd::blocked::lara_scratch_len(landmarks, shape.dim),
    ))
}

/// The scratch of the scalar kernel alone: `landmarks · (3·d + d_v + 8)`.
const fn scalar_scratch_len(shape: Shape, landmarks: usize) -> usize {
    landmarks.saturating_mul(
        shape
            .dim
            .saturating_mul(3)
            .saturating_add(shape.value_dim)
            .saturating_add(STATS_PER_LANDMARK),
    )
}

/// The length of the noise `eps [C', d]` that sampled mode takes for segment-mean landmarks.
pub const fn noise_len(shape: Shape, landmarks: usize) -> usize {
    effective_landmarks(shape, landmarks).saturating_mul(shape.dim)
}

/// LARA attention of `q [n_q, d]` over `k [n_k, d]`, `v [n_k, d_v]` into `out [n_q, d_v]`.
///
/// `noise = None` is eval mode (`W = mu`); `Some(eps)` with `eps [C', d]` is sampled mode
/// (`W = mu + eps`, the official code's unscaled `N(0, I)` noise).
///
/// # Errors
/// A zero dimension or zero landmarks, a slice whose length does not match (`noise`, given
/// landmarks), scratch shorter than the `C'` landmarks of the call need
/// (`scratch_len(shape, C)` always suffices), a non-finite input or `alpha_coeff`.
/// Nothing is written when an error is returned.
///
/// # Example
/// ```
/// use lara_attn::{Shape, lara};
/// const SHAPE: Shape = Shape::self_attention(16, 4);
/// const C: usize = 4;
/// let params = lara::Params::segment_means(C, lara::Weighting::Optimal { alpha_coeff: 1.0 });
/// let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
/// let mut out = [0.0; 64];
/// let mut scratch = [0.0; lara::scratch_len(SHAPE, C)];
/// lara::attention(SHAPE, &params, &x, &x, &x, None, &mut out, &mut scratch)?;
/// # Ok::<(), lara_attn::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn attention(
    shape: Shape,
    params: &Params<'_>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    noise: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    let (ws, extra) = Workspace::split(scratch, landmark_count(shape, params), shape)?;
    attention_in(shape, params, q, k, v, noise, out, ws, extra)
}

/// [`attention`] on a workspace that is already split.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_in(
    shape: Shape,
    params: &Params<'_>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    noise: Option<&[f32]>,
    out: &mut [f32],
    mut ws: Workspace<'_>,
    extra: &mut [f32],
) -> Result<(), Error> {
    let count = check_args(shape, params, q, k, v, out)?;
    if let Some(eps) = noise {
        check_len(Arg::Noise, eps, count, shape.dim)?;
        check_finite(Arg::Noise, eps)?;
    }
    ws.build_proposals(shape, params, q, k, |w| {
        if let Some(eps) = noise {
            // W = mu + eps
            axpy(1.0, eps, w);
        }
    });
    ws.finish(shape, params.weighting, q, k, v, out, extra);
    Ok(())
}

/// LARA in sampled mode with the noise `eps [C', d] ~ N(0, I)` drawn from `rng` (row-major
/// order), otherwise as [`attention`].
///
/// # Errors
/// As [`attention`].
#[allow(clippy::too_many_arguments)]
pub fn attention_sampled<R: RngCore + ?Sized>(
    shape: Shape,
    params: &Params<'_>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    rng: &mut R,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    let (ws, extra) = Workspace::split(scratch, landmark_count(shape, params), shape)?;
    attention_sampled_in(shape, params, q, k, v, rng, out, ws, extra)
}

/// [`attention_sampled`] on a workspace that is already split.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_sampled_in<R: RngCore + ?Sized>(
    shape: Shape,
    params: &Params<'_>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    rng: &mut R,
    out: &mut [f32],
    mut ws: Workspace<'_>,
    extra: &mut [f32],
) -> Result<(), Error> {
    check_args(shape, params, q, k, v, out)?;
    // W = mu + eps, eps ~ N(0, I)
    ws.build_proposals(shape, params, q, k, |w| add_standard_normal(rng, w));
    ws.finish(shape, params.weighting, q, k, v, out, extra);
    Ok(())
}

/// The number of landmarks `C'` of a call (before its arguments are checked).
pub(crate) fn landmark_count(shape: Shape, params: &Params<'_>) -> usize {
    match params.landmarks {
        Landmarks::SegmentMeans(c) => effective_landmarks(shape, c),
        Landmarks::Given { count, .. } => count,
    }
}

/// Writes the `segments` segment means of `x [rows, dim]` into `out [segments, dim]`, with the
/// official uneven split: for `g = rows div segments` and `short = (g+1)·segments − rows`
/// (when `segments` does not divide `rows`), the first `short` segments average `g` rows and
/// the others `g + 1`. `segments` must not exceed `rows`.
///
/// # Errors
/// [`Error::ZeroLandmarks`] if `segments` is 0 or greater than `rows`,
/// [`Error::LengthMismatch`] for wrong slice lengths.
pub fn segment_means(
    x: &[f32],
    rows: usize,
    dim: usize,
    segments: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    if segments == 0 || segments > rows {
        return Err(Error::ZeroLandmarks);
    }
    if dim == 0 {
        return Err(Error::ZeroDimension(crate::error::Dim::Model));
    }
    check_len(Arg::Queries, x, rows, dim)?;
    check_len(Arg::QueryLandmarks, out, segments, dim)?;
    write_segment_means(x, dim, segments, out);
    Ok(())
}

/// Segment means without checks (`1 <= segments <= rows`, lengths match).
fn write_segment_means(x: &[f32], dim: usize, segments: usize, out: &mut [f32]) {
    // (The max(1)s are no-ops for checked arguments; they let the optimiser drop the
    // division-by-zero panic paths.)
    let (dim, segments) = (dim.max(1), segments.max(1));
    let row_count = x.len() / dim;
    let short_len = row_count / segments;
    // Segments [0, short_count) have short_len rows, the rest short_len + 1.
    let short_count = if row_count.is_multiple_of(segments) {
        segments
    } else {
        (short_len + 1) * segments - row_count
    };
    let mut x_rows = rows(x, dim);
    for (segment, mean) in rows_mut(out, dim).enumerate() {
        let len = if segment < short_count {
            short_len
        } else {
            short_len + 1
        };
        mean.fill(0.0);
        for row in (&mut x_rows).take(len) {
            axpy(1.0, row, mean);
        }
        // Divide (not multiply by 1/len): exactly rounded, and only C·d times.
        for m in mean.iter_mut() {
            *m /= len as f32;
        }
    }
}

/// Checks everything but the noise and scratch; returns the number of landmarks `C'`.
fn check_args(
    shape: Shape,
    params: &Params<'_>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &[f32],
) -> Result<usize, Error> {
    shape.check_qkv(q, k, v, out)?;
    if let Weighting::Optimal { alpha_coeff } = params.weighting
        && !alpha_coeff.is_finite()
    {
        return Err(Error::NonFinite(Arg::AlphaCoeff));
    }
    match params.landmarks {
        Landmarks::SegmentMeans(0) | Landmarks::Given { count: 0, .. } => Err(Error::ZeroLandmarks),
        Landmarks::SegmentMeans(c) => Ok(effective_landmarks(shape, c)),
        Landmarks::Given {
            count,
            queries,
            keys,
        } => {
            check_len(Arg::QueryLandmarks, queries, count, shape.dim)?;
            check_len(Arg::KeyLandmarks, keys, count, shape.dim)?;
            check_finite(Arg::QueryLandmarks, queries)?;
            check_finite(Arg::KeyLandmarks, keys)?;
            Ok(count)
        }
    }
}

/// The scratch of one LARA call, split into its named parts.
pub(crate) struct Workspace<'a> {
    /// Query landmarks `q̄ [C', d]`.
    pub(crate) q_bar: &'a mut [f32],
    /// Proposal means `mu [C', d]`.
    pub(crate) mu: &'a mut [f32],
    /// Proposal samples `W [C', d]` (also holds `k̄` while the landmarks are built).
    pub(crate) w: &'a mut [f32],
    /// `kv [C', d_v]`.
    pub(crate) kv: &'a mut [f32],
    /// `lse_j ℓ(k_j; W_c)` (the running maximum during the key pass).
    pub(crate) key_lse: &'a mut [f32],
    /// The running `Σ_j exp(ℓ(k_j; W_c) − max)` of the key pass.
    pub(crate) key_sum: &'a mut [f32],
    /// `|mu_c|² / 2`.
    pub(crate) mu_half_norm: &'a mut [f32],
    /// `lse_j ℓ(k_j; W_c) − log P_c`: the query-independent part of `logiw`.
    pub(crate) bias: &'a mut [f32],
    /// `bh_c = exp(LM[c,c] − lse_c' LM[c,c'])` (mis-opt).
    pub(crate) balance: &'a mut [f32],
    /// `lse_i (s · q̄_c·q_i)`, the normaliser of `T` over queries (mis-opt).
    pub(crate) t_lse: &'a mut [f32],
    /// Per query: the log importance weights, then the self-normalised weights.
    pub(crate) logits: &'a mut [f32],
    /// Per query: `T[·, i]` (mis-opt).
    pub(crate) t_row: &'a mut [f32],
}

impl<'a> Workspace<'a> {
    /// Splits a flat scratch of at least `count · (3·d + d_v + 8)` floats.
    /// Splits a flat scratch of at least [`scratch_len`]`(shape, count)` floats into the scalar
    /// workspace and the blocked kernels' extra scratch (empty where no SIMD is compiled).
    pub(crate) fn split(
        scratch: &'a mut [f32],
        count: usize,
        shape: Shape,
    ) -> Result<(Self, &'a mut [f32]), Error> {
        let rows = checked_len(count, shape.dim)?;
        let kv_len = checked_len(count, shape.value_dim)?;
        let stats_len = checked_len(count, STATS_PER_LANDMARK)?;
        let extra_len =
            crate::simd::if_compiled(crate::simd::blocked::lara_scratch_len(count, shape.dim));
        let needed = [checked_len(rows, 3)?, kv_len, stats_len, extra_len]
            .iter()
            .try_fold(0usize, |sum, &len| sum.checked_add(len))
            .ok_or(Error::SizeOverflow)?;
        let mut rest = take_scratch(scratch, needed)?;
        let q_bar = carve(&mut rest, rows)?;
        let mu = carve(&mut rest, rows)?;
        let w = carve(&mut rest, rows)?;
        let kv = carve(&mut rest, kv_len)?;
        let stats = carve(&mut rest, stats_len)?;
        Ok((
            Self::from_parts(q_bar, mu, w, kv, stats, count, shape),
            rest,
        ))
    }

    /// Builds the workspace of `count` landmarks from buffers of at least `count` rows (`q̄`,
    /// `mu`, `W`, `kv`) and `8 · count` per-landmark scalars, using exactly `count` rows of each.
    pub(crate) fn from_parts(
        q_bar: &'a mut [f32],
        mu: &'a mut [f32],
        w: &'a mut [f32],
        kv: &'a mut [f32],
        stats: &'a mut [f32],
        count: usize,
        shape: Shape,
    ) -> Self {
        let rows = count.saturating_mul(shape.dim);
        let mut parts = rows_mut(stats, count.max(1));
        let mut next = || parts.next().unwrap_or_default();
        Workspace {
            q_bar: prefix(q_bar, rows),
            mu: prefix(mu, rows),
            w: prefix(w, rows),
            kv: prefix(kv, count.saturating_mul(shape.value_dim)),
            key_lse: next(),
            key_sum: next(),
            mu_half_norm: next(),
            bias: next(),
            balance: next(),
            t_lse: next(),
            logits: next(),
            t_row: next(),
        }
    }

    /// Landmarks and proposals: `q̄`, `mu = q̄ + k̄` and `W = mu`, then `perturb(W)` adds the noise.
    fn build_proposals(
        &mut self,
        shape: Shape,
        params: &Params<'_>,
        q: &[f32],
        k: &[f32],
        perturb: impl FnOnce(&mut [f32]),
    ) {
        let count = self.logits.len();
        match params.landmarks {
            Landmarks::SegmentMeans(_) => {
                // q̄, k̄ = segment means (k̄ parked in W)
                write_segment_means(q, shape.dim, count, self.q_bar);
                write_segment_means(k, shape.dim, count, self.w);
            }
            Landmarks::Given { queries, keys, .. } => {
                copy(self.q_bar, queries);
                copy(self.w, keys);
            }
        }
        // mu = q̄ + k̄
        for ((mu, q_bar), k_bar) in self.mu.iter_mut().zip(self.q_bar.iter()).zip(self.w.iter()) {
            *mu = q_bar + k_bar;
        }
        // W = mu (+ eps)
        copy(self.w, self.mu);
        perturb(self.w);
    }

    /// Everything after the proposals: on the active SIMD backend when there is one (and the
    /// blocked kernel's `extra` scratch), else the scalar reference.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        shape: Shape,
        weighting: Weighting,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
        extra: &mut [f32],
    ) {
        let on_simd = !extra.is_empty()
            && crate::simd::dispatch::lara(
                active_backend(),
                shape,
                weighting,
                q,
                k,
                v,
                out,
                self,
                extra,
            );
        if !on_simd {
            self.run(shape, weighting, q, k, v, out);
        }
    }

    /// Key pass, proposal densities, the `T` normaliser and the query pass.
    fn run(
        &mut self,
        shape: Shape,
        weighting: Weighting,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
    ) {
        self.key_pass(shape, k, v);
        self.proposal_log_density(shape, weighting);
        if let Weighting::Optimal { .. } = weighting {
            self.query_softmax_normaliser(shape, q);
        }
        for (q_row, out_row) in rows(q, shape.dim).zip(rows_mut(out, shape.value_dim)) {
            self.log_importance_weights(shape, weighting, q_row);
            // sniw[·, i] = softmax_c(logiw[·, i])
            softmax_in_place(self.logits);
            // out_i = Σ_c sniw[c, i] kv_c
            out_row.fill(0.0);
            for (&weight, kv_row) in self.logits.iter().zip(rows(self.kv, shape.value_dim)) {
                axpy(weight, kv_row, out_row);
            }
        }
    }

    /// One streaming pass over the keys: per landmark, `lse_j ℓ(k_j; W_c)` and
    /// `kv_c = Σ_j softmax_j(ℓ(k_j; W_c)) v_j`.
    fn key_pass(&mut self, shape: Shape, k: &[f32], v: &[f32]) {
        let scale = shape.scale();
        self.kv.fill(0.0);
        self.key_lse.fill(f32::NEG_INFINITY);
        self.key_sum.fill(0.0);
        for (k_row, v_row) in rows(k, shape.dim).zip(rows(v, shape.value_dim)) {
            let k_half_norm = half_sq_norm(k_row);
            let landmarks = rows(self.w, shape.dim).zip(rows_mut(self.kv, shape.value_dim));
            for ((w_row, kv_row), (max, sum)) in
                landmarks.zip(self.key_lse.iter_mut().zip(self.key_sum.iter_mut()))
            {
                // LK[c, j] = s · (W_c·k_j − |k_j|²/2)
                let log_feature = scale * (dot(w_row, k_row) - k_half_norm);
                let mut state = OnlineLse {
                    max: *max,
                    sum: *sum,
                };
                state.push(log_feature, v_row, kv_row);
                (*max, *sum) = (state.max, state.sum);
            }
        }
        for ((kv_row, lse), &sum) in rows_mut(self.kv, shape.value_dim)
            .zip(self.key_lse.iter_mut())
            .zip(self.key_sum.iter())
        {
            // kv_c = Σ_j exp(LK − max) v_j / Σ_j exp(LK − max);  lseK_c = max + ln Σ
            crate::math::scale(kv_row, 1.0 / sum);
            *lse += ln(sum);
        }
    }

    /// `log P_c` from `LM[c, c'] = ℓ(mu_c'; W_c)`, folded into `bias_c = lseK_c − log P_c`; for
    /// `mis-opt` also `bh_c = exp(LM[c,c] − lse_c' LM[c,c'])`.
    pub(crate) fn proposal_log_density(&mut self, shape: Shape, weighting: Weighting) {
        let scale = shape.scale();
        for (half_norm, mu_row) in self.mu_half_norm.iter_mut().zip(rows(self.mu, shape.dim)) {
            *half_norm = half_sq_norm(mu_row);
        }
        let per_landmark = rows(self.w, shape.dim)
            .zip(self.key_lse.iter())
            .zip(self.bias.iter_mut().zip(self.balance.iter_mut()));
        for (c, ((w_row, &key_lse), (bias, balance))) in per_landmark.enumerate() {
            let mut lse = OnlineLse::EMPTY;
            let mut diagonal = 0.0;
            for (c2, (mu_row, &mu_half_norm)) in rows(self.mu, shape.dim)
                .zip(self.mu_half_norm.iter())
                .enumerate()
            {
                // LM[c, c'] = s · (W_c·mu_c' − |mu_c'|²/2)
                let lm = scale * (dot(w_row, mu_row) - mu_half_norm);
                lse.push_scalar(lm);
                if c2 == c {
                    diagonal = lm;
                }
            }
            let lse_lm = lse.log_sum_exp();
            // bh_c = exp(LM[c,c] − lse_c' LM[c,c'])
            *balance = exp(diagonal - lse_lm);
            // log P_c: the own component for mis-opt, the mixture for mis-bh / mis-biased
            let log_p = match weighting {
                Weighting::Optimal { .. } => diagonal,
                Weighting::BalanceHeuristic | Weighting::Biased => lse_lm,
            };
            *bias = key_lse - log_p;
        }
    }

    /// First pass over the queries for `mis-opt`: `lse_i (s · q̄_c·q_i)`, the normaliser of
    /// `T[c, ·]` (a softmax over the query axis).
    fn query_softmax_normaliser(&mut self, shape: Shape, q: &[f32]) {
        let scale = shape.scale();
        // The per-query buffers hold the running (max, sum) of each landmark.
        let (max, sum) = (&mut *self.logits, &mut *self.t_row);
        max.fill(f32::NEG_INFINITY);
        sum.fill(0.0);
        for q_row in rows(q, shape.dim) {
            for ((q_bar_row, max), sum) in rows(self.q_bar, shape.dim)
                .zip(max.iter_mut())
                .zip(sum.iter_mut())
            {
                let mut state = OnlineLse {
                    max: *max,
                    sum: *sum,
                };
                state.push_scalar(scale * dot(q_bar_row, q_row));
                (*max, *sum) = (state.max, state.sum);
            }
        }
        for ((t_lse, &max), &sum) in self.t_lse.iter_mut().zip(max.iter()).zip(sum.iter()) {
            *t_lse = OnlineLse { max, sum }.log_sum_exp();
        }
    }

    /// `logits[c] = logiw[c, i] = log α[c,i] + ℓ(q_i; W_c) + lseK_c − log P_c` for one query.
    pub(crate) fn log_importance_weights(
        &mut self,
        shape: Shape,
        weighting: Weighting,
        q_row: &[f32],
    ) {
        let scale = shape.scale();
        let q_half_norm = half_sq_norm(q_row);
        for ((logit, w_row), &bias) in self
            .logits
            .iter_mut()
            .zip(rows(self.w, shape.dim))
            .zip(self.bias.iter())
        {
            // ℓ(q_i; W_c) + lseK_c − log P_c
            *logit = scale * (dot(w_row, q_row) - q_half_norm) + bias;
        }
        match weighting {
            Weighting::Optimal { alpha_coeff } => {
                // T[c, i] = exp(s · q̄_c·q_i − lse_i'(s · q̄_c·q_i'))
                let mut t_sum = 0.0;
                for ((t, q_bar_row), &t_lse) in self
                    .t_row
                    .iter_mut()
                    .zip(rows(self.q_bar, shape.dim))
                    .zip(self.t_lse.iter())
                {
                    *t = exp(scale * dot(q_bar_row, q_row) - t_lse);
                    t_sum += *t;
                }
                let t_mean = t_sum / self.t_row.len() as f32;
                for ((logit, &t), &balance) in self
                    .logits
                    .iter_mut()
                    .zip(self.t_row.iter())
                    .zip(self.balance.iter())
                {
                    // log α = log max(bh_c + alpha_coeff · (T[c,i] − mean_c' T[c',i]), 1e-8)
                    let alpha = balance + alpha_coeff * (t - t_mean);
                    *logit += ln(alpha.max(1e-8));
                }
            }
            Weighting::BalanceHeuristic => {}
            Weighting::Biased => {
                for (logit, mu_row) in self.logits.iter_mut().zip(rows(self.mu, shape.dim)) {
                    // log α[c, i] = s · mu_c·q_i
                    *logit += scale * dot(mu_row, q_row);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{assert_close, single_head_cases};

    /// `kv`, `logiw` and `sniw` of mis-opt (α = 1, eval) against the official intermediates.
    #[test]
    fn intermediates_match_the_official_code() {
        for case in single_head_cases() {
            let shape = Shape::self_attention(case.n, case.d);
            for c in [4, 8] {
                let weighting = Weighting::Optimal { alpha_coeff: 1.0 };
                let params = Params::segment_means(c, weighting);
                let count = effective_landmarks(shape, c);
                let mut scratch = vec![f32::NAN; scratch_len(shape, c)];
                let (mut ws, _) = Workspace::split(&mut scratch, count, shape).unwrap();
                ws.build_proposals(shape, &params, &case.q, &case.k, |_| {});
                ws.key_pass(shape, &case.k, &case.v);
                ws.proposal_log_density(shape, weighting);
                ws.query_softmax_normaliser(shape, &case.q);
                let what = |name: &str| format!("{} C={c} {name}", case.id);
                let kv = case.intermediate(&format!("lara_C{c}_misopt_a1_eval_kv_stats"));
                assert_close(ws.kv, &kv.data, 1e-5, &what("kv"));

                // logiw and sniw are [C', n]: gather ours column by column.
                let (mut log_iw, mut sniw) = (vec![0.0; count * case.n], vec![0.0; count * case.n]);
                for (i, q_row) in case.q.chunks_exact(case.d).enumerate() {
                    ws.log_importance_weights(shape, weighting, q_row);
                    for (c_index, &l) in ws.logits.iter().enumerate() {
                        log_iw[c_index * case.n + i] = l;
                    }
                    softmax_in_place(ws.logits);
                    for (c_index, &w) in ws.logits.iter().enumerate() {
                        sniw[c_index * case.n + i] = w;
                    }
                }
                let golden_log_iw = case.intermediate(&format!("lara_C{c}_misopt_a1_eval_log_iw"));
                assert_close(&log_iw, &golden_log_iw.data, 1e-5, &what("log_iw"));
                let golden_sniw = case.intermediate(&format!("lara_C{c}_misopt_a1_eval_sniw"));
                assert_close(&sniw, &golden_sniw.data, 1e-5, &what("sniw"));
            }
        }
    }

    #[test]
    fn uneven_split_follows_the_official_rule() {
        // n = 7, C = 4: rows {0}, {1,2}, {3,4}, {5,6}; n = 100, C = 8: 4 × 12 rows then 4 × 13.
        let x: Vec<f32> = (0..7).map(|i| i as f32).collect();
        let mut means = [0.0; 4];
        segment_means(&x, 7, 1, 4, &mut means).unwrap();
        assert_eq!(means, [0.0, 1.5, 3.5, 5.5]);
        let x: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let mut means = [0.0; 8];
        segment_means(&x, 100, 1, 8, &mut means).unwrap();
        let starts = [0, 12, 24, 36, 48, 61, 74, 87];
        let lens = [12, 12, 12, 12, 13, 13, 13, 13];
        for ((&m, &s), &l) in means.iter().zip(&starts).zip(&lens) {
            assert_eq!(m, (s as f32) + (l as f32 - 1.0) / 2.0);
        }
    }
}
