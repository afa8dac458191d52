//! LARA: linear randomized attention (Zheng, Wang & Kong, ICML 2022, §4), as the official
//! `LinearRA` computes it (1-D path, `proposal_gen = 'no-param-pool'`).
//!
//! Randomized attention draws one proposal per query; LARA instead shares `C` proposals
//! `N(mu_c, I)` centred on landmarks and combines them by self-normalised multiple importance
//! sampling with query-specific weights `α[c, i]`:
//!
//! ```text
//! mu_c       = q̄_c + k̄_c                     (segment means of q and k)
//! W_c        = mu_c  (eval)   or  mu_c + f · eps_c  (sampled; f = 1 official, d^1/4 paper)
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
//!
//! # Options ([`Params`])
//! * [`Proposals`]: the official `use_antithetics` (`W = mu ± eps`) and `use_multisample` (two
//!   draws per landmark) double the proposal samples in sampled mode, and the cost of the
//!   `W`-dependent passes with them.
//! * [`NoiseScale`]: the official unscaled noise, or the paper's `eps · d^1/4`.
//! * A key padding mask: masked keys get `ℓ = −∞` (they drop out of every `kv_c` and `lseK_c`)
//!   and count as zero rows in the key landmarks, as the official code zeroes padded tokens
//!   before pooling. Masked keys have exactly zero influence on the output.

use crate::backend::active_backend;
use crate::error::{Arg, Error};
use crate::math::{
    OnlineLse, axpy, copy, dot, exp, half_sq_norm, ln, prefix, rows, rows_mut, softmax_in_place,
};
use crate::random::{NoiseScale, add_scaled_normal};
use crate::shape::{
    Shape, carve, check_finite, check_key_mask, check_len, checked_len, masked_keys, take_scratch,
};
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

/// How many proposal samples each landmark gets in sampled mode. Eval mode (`W = mu`) always
/// has one per landmark, as in the official code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Proposals {
    /// One sample per landmark, `W_c = mu_c + eps_c`, `eps [C', d]` (the official default).
    #[default]
    Single,
    /// Antithetic pairs (the official `use_antithetics`): `W = [mu + eps; mu − eps]`, `2·C'`
    /// samples from `eps [C', d]`.
    Antithetic,
    /// Two independent samples per landmark (the official `use_multisample`):
    /// `W = [mu; mu] + eps`, `eps [2·C', d]`.
    TwoPerLandmark,
}

impl Proposals {
    /// The number of proposal samples in sampled mode for `landmarks` landmarks: `C'` or `2·C'`.
    /// `scratch_len(shape, proposals.samples(C))` is enough scratch for any proposals.
    pub const fn samples(self, landmarks: usize) -> usize {
        match self {
            Proposals::Single => landmarks,
            Proposals::Antithetic | Proposals::TwoPerLandmark => landmarks.saturating_mul(2),
        }
    }

    /// The number of noise rows `eps` a sampled call takes: `2·C'` for two samples per
    /// landmark, else `C'`.
    pub const fn noise_rows(self, landmarks: usize) -> usize {
        match self {
            Proposals::Single | Proposals::Antithetic => landmarks,
            Proposals::TwoPerLandmark => landmarks.saturating_mul(2),
        }
    }
}

/// The parameters of a LARA call. [`Params::segment_means`] gives the official defaults for
/// everything but the landmarks and weighting; the `with_*` methods change one option.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params<'a> {
    /// Where the landmarks come from.
    pub landmarks: Landmarks<'a>,
    /// How proposals are weighted.
    pub weighting: Weighting,
    /// How many proposal samples each landmark gets in sampled mode.
    pub proposals: Proposals,
    /// The scale of the proposal noise in sampled mode.
    pub noise_scale: NoiseScale,
    /// Key padding mask `[n_k]`, `true` for a padding key (PyTorch's `key_padding_mask`).
    pub key_mask: Option<&'a [bool]>,
}

impl<'a> Params<'a> {
    /// Segment-mean landmarks with the given weighting, single proposals, the official noise
    /// and no mask.
    pub const fn segment_means(landmarks: usize, weighting: Weighting) -> Params<'static> {
        Params::new(Landmarks::SegmentMeans(landmarks), weighting)
    }

    /// The given landmarks and weighting, single proposals, the official noise and no mask.
    pub const fn new(landmarks: Landmarks<'a>, weighting: Weighting) -> Self {
        Params {
            landmarks,
            weighting,
            proposals: Proposals::Single,
            noise_scale: NoiseScale::Official,
            key_mask: None,
        }
    }

    /// These parameters with `proposals` samples per landmark.
    pub const fn with_proposals(self, proposals: Proposals) -> Self {
        Params { proposals, ..self }
    }

    /// These parameters with the noise scaled as `noise_scale` says.
    pub const fn with_noise_scale(self, noise_scale: NoiseScale) -> Self {
        Params {
            noise_scale,
            ..self
        }
    }

    /// These parameters with a key padding mask `[n_k]` (`true` = padding).
    pub const fn with_key_mask(self, key_mask: &'a [bool]) -> Self {
        Params {
            key_mask: Some(key_mask),
            ..self
        }
    }
}

/// The official defaults: 49 segment-mean landmarks, `mis-opt` with `alpha_coeff = 1`.
impl Default for Params<'_> {
    fn default() -> Self {
        Params::segment_means(49, Weighting::Optimal { alpha_coeff: 1.0 })
    }
}

/// Per-sample scalars kept in the scratch.
const STATS_PER_SAMPLE: usize = 8;

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

/// Scratch (in `f32`s) that [`attention`] needs for up to `landmarks` landmarks with single
/// proposals: `landmarks · (3·d + d_v + 8)`, plus `2·landmarks · (d + 32)` on targets with SIMD
/// backends; independent of `n_q` and `n_k`. For antithetic or two-sample proposals pass
/// [`Proposals::samples`]`(C)`.
pub const fn scratch_len(shape: Shape, landmarks: usize) -> usize {
    workspace_len(shape, landmarks, landmarks)
}

/// The scratch that [`Workspace::split`] takes for `count` landmarks and `samples` samples:
/// `q̄`, `mu` (`2·count·d`), `W` and `kv` (`samples·(d + d_v)`), 8 scalars per sample, and the
/// blocked kernels' tiles where a SIMD backend is compiled.
pub(crate) const fn workspace_len(shape: Shape, count: usize, samples: usize) -> usize {
    count
        .saturating_mul(shape.dim)
        .saturating_mul(2)
        .saturating_add(
            samples.saturating_mul(
                shape
                    .dim
                    .saturating_add(shape.value_dim)
                    .saturating_add(STATS_PER_SAMPLE),
            ),
        )
        .saturating_add(crate::simd::if_compiled(
            crate::simd::blocked::lara_scratch_len(samples.saturating_add(count), shape.dim),
        ))
}

/// The length of the noise `eps` that sampled mode takes for segment-mean landmarks:
/// `[C', d]`, or `[2·C', d]` for two samples per landmark.
pub const fn noise_len(shape: Shape, landmarks: usize, proposals: Proposals) -> usize {
    proposals
        .noise_rows(effective_landmarks(shape, landmarks))
        .saturating_mul(shape.dim)
}

/// LARA attention of `q [n_q, d]` over `k [n_k, d]`, `v [n_k, d_v]` into `out [n_q, d_v]`.
///
/// `noise = None` is eval mode (`W = mu`); `Some(eps)` is sampled mode, `W = mu + f · eps`
/// with `f` from `params.noise_scale` and `eps` of [`Proposals::noise_rows`]`(C')` rows
/// ([`noise_len`]).
///
/// # Errors
/// A zero dimension or zero landmarks, a slice whose length does not match (`noise`, given
/// landmarks, the key mask), a mask that masks every key, scratch shorter than the call needs
/// (`scratch_len(shape, params.proposals.samples(C))` always suffices), a non-finite input or
/// `alpha_coeff`. Nothing is written when an error is returned.
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
    let count = landmark_count(shape, params);
    let samples = sample_count(params, count, noise.is_some());
    let (ws, extra) = Workspace::split(scratch, count, samples, shape)?;
    attention_in(shape, params, q, k, v, noise, out, ws, extra)
}

/// [`attention`] on a workspace that is already split.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
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
        check_len(
            Arg::Noise,
            eps,
            params.proposals.noise_rows(count),
            shape.dim,
        )?;
        check_finite(Arg::Noise, eps)?;
    }
    ws.check_capacity(count, sample_count(params, count, noise.is_some()))?;
    let factor = params.noise_scale.factor(shape.dim);
    // W = mu + f · eps (sampled mode)
    let perturb = noise.map(|eps| move |w: &mut [f32]| axpy(factor, eps, w));
    ws.build_proposals(shape, params, q, k, perturb);
    ws.finish(shape, params, q, k, v, out, extra);
    Ok(())
}

/// LARA in sampled mode with the noise `eps ~ N(0, I)` (of [`Proposals::noise_rows`]`(C')`
/// rows) drawn from `rng` in row-major order, otherwise as [`attention`].
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
    let count = landmark_count(shape, params);
    let (ws, extra) = Workspace::split(scratch, count, sample_count(params, count, true), shape)?;
    attention_sampled_in(shape, params, q, k, v, rng, out, ws, extra)
}

/// [`attention_sampled`] on a workspace that is already split.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
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
    let count = check_args(shape, params, q, k, v, out)?;
    ws.check_capacity(count, sample_count(params, count, true))?;
    let factor = params.noise_scale.factor(shape.dim);
    // W = mu + f · eps, eps ~ N(0, I)
    let perturb = |w: &mut [f32]| add_scaled_normal(rng, factor, w);
    ws.build_proposals(shape, params, q, k, Some(perturb));
    ws.finish(shape, params, q, k, v, out, extra);
    Ok(())
}

/// The number of landmarks `C'` of a call (before its arguments are checked).
pub(crate) fn landmark_count(shape: Shape, params: &Params<'_>) -> usize {
    match params.landmarks {
        Landmarks::SegmentMeans(c) => effective_landmarks(shape, c),
        Landmarks::Given { count, .. } => count,
    }
}

/// The number of proposal samples of a call with `count` landmarks.
fn sample_count(params: &Params<'_>, count: usize, sampled: bool) -> usize {
    if sampled {
        params.proposals.samples(count)
    } else {
        count
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
    write_segment_means(x, None, dim, segments, out);
    Ok(())
}

/// Segment means without checks (`1 <= segments <= rows`, lengths match); rows marked in
/// `mask` count as zero rows (the official code zeroes padded tokens before pooling).
fn write_segment_means(
    x: &[f32],
    mask: Option<&[bool]>,
    dim: usize,
    segments: usize,
    out: &mut [f32],
) {
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
    let mut x_rows = rows(x, dim).zip(masked_keys(mask));
    for (segment, mean) in rows_mut(out, dim).enumerate() {
        let len = if segment < short_count {
            short_len
        } else {
            short_len + 1
        };
        mean.fill(0.0);
        for (row, masked) in (&mut x_rows).take(len) {
            if !masked {
                axpy(1.0, row, mean);
            }
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
    if let Some(mask) = params.key_mask {
        check_key_mask(shape, mask)?;
    }
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

/// The scratch of one LARA call, split into its named parts: `C'` landmarks (mixture
/// components) and `S` proposal samples, `S = C'` or `2·C'`; sample `c` is drawn around
/// component `c mod C'`.
pub(crate) struct Workspace<'a> {
    /// Query landmarks `q̄ [C', d]`.
    pub(crate) q_bar: &'a mut [f32],
    /// Proposal means `mu [C', d]`.
    pub(crate) mu: &'a mut [f32],
    /// Proposal samples `W [S, d]` (also holds `k̄` while the landmarks are built).
    pub(crate) w: &'a mut [f32],
    /// `kv [S, d_v]`.
    pub(crate) kv: &'a mut [f32],
    /// `lse_j ℓ(k_j; W_c)` (the running maximum during the key pass), `[S]`.
    pub(crate) key_lse: &'a mut [f32],
    /// The running `Σ_j exp(ℓ(k_j; W_c) − max)` of the key pass, `[S]`.
    pub(crate) key_sum: &'a mut [f32],
    /// `|mu_c|² / 2`, `[C']`.
    pub(crate) mu_half_norm: &'a mut [f32],
    /// `lse_j ℓ(k_j; W_c) − log P_c`: the query-independent part of `logiw`, `[S]`.
    pub(crate) bias: &'a mut [f32],
    /// `bh_c = exp(LM[c,c] − lse_c' LM[c,c'])` (mis-opt), `[S]`.
    pub(crate) balance: &'a mut [f32],
    /// `lse_i (s · q̄_c·q_i)`, the normaliser of `T` over queries (mis-opt), `[C']`.
    pub(crate) t_lse: &'a mut [f32],
    /// Per query: the log importance weights, then the self-normalised weights, `[S]`.
    pub(crate) logits: &'a mut [f32],
    /// Per query: `T[·, i]` (mis-opt) or `log α[·, i]` (mis-biased) in its first `C'` entries,
    /// `[S]`.
    pub(crate) t_row: &'a mut [f32],
}

impl<'a> Workspace<'a> {
    /// Splits a flat scratch into the scalar workspace of `count` landmarks and `samples`
    /// proposal samples and the blocked kernels' extra scratch (empty where no SIMD is
    /// compiled). [`scratch_len`]`(shape, samples)` is always enough.
    pub(crate) fn split(
        scratch: &'a mut [f32],
        count: usize,
        samples: usize,
        shape: Shape,
    ) -> Result<(Self, &'a mut [f32]), Error> {
        let landmark_rows = checked_len(count, shape.dim)?;
        let sample_rows = checked_len(samples, shape.dim)?;
        let kv_len = checked_len(samples, shape.value_dim)?;
        let stats_len = checked_len(samples, STATS_PER_SAMPLE)?;
        // (A saturated total is an overflow: no scratch holds usize::MAX floats.)
        let needed = workspace_len(shape, count, samples);
        if needed == usize::MAX {
            return Err(Error::SizeOverflow);
        }
        let mut rest = take_scratch(scratch, needed)?;
        let q_bar = carve(&mut rest, landmark_rows)?;
        let mu = carve(&mut rest, landmark_rows)?;
        let w = carve(&mut rest, sample_rows)?;
        let kv = carve(&mut rest, kv_len)?;
        let stats = carve(&mut rest, stats_len)?;
        Ok((
            Self::from_parts(q_bar, mu, w, kv, stats, count, samples, shape),
            rest,
        ))
    }

    /// Builds the workspace of `count` landmarks and `samples` samples from buffers of at least
    /// `count` rows (`q̄`, `mu`), `samples` rows (`W`, `kv`) and `8 · samples` scalars, using
    /// exactly that many of each.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        q_bar: &'a mut [f32],
        mu: &'a mut [f32],
        w: &'a mut [f32],
        kv: &'a mut [f32],
        stats: &'a mut [f32],
        count: usize,
        samples: usize,
        shape: Shape,
    ) -> Self {
        let landmark_rows = count.saturating_mul(shape.dim);
        let mut parts = rows_mut(stats, samples.max(1));
        let mut next = || parts.next().unwrap_or_default();
        Workspace {
            q_bar: prefix(q_bar, landmark_rows),
            mu: prefix(mu, landmark_rows),
            w: prefix(w, samples.saturating_mul(shape.dim)),
            kv: prefix(kv, samples.saturating_mul(shape.value_dim)),
            key_lse: next(),
            key_sum: next(),
            mu_half_norm: prefix(next(), count),
            bias: next(),
            balance: next(),
            t_lse: prefix(next(), count),
            logits: next(),
            t_row: next(),
        }
    }

    /// The number of landmarks `C'`.
    pub(crate) fn components(&self) -> usize {
        self.t_lse.len()
    }

    /// The number of proposal samples `S`.
    pub(crate) fn samples(&self) -> usize {
        self.logits.len()
    }

    /// Refuses a workspace that does not hold exactly `count` landmarks and `samples` samples
    /// (the public entry points split it for the call; the fixed-size layer's arrays hold `C`
    /// rows, enough for single proposals only).
    fn check_capacity(&self, count: usize, samples: usize) -> Result<(), Error> {
        if self.components() == count && self.samples() == samples {
            Ok(())
        } else {
            Err(Error::ScratchTooSmall {
                needed: samples.saturating_mul(self.w.len() / self.samples().max(1)),
                actual: self.w.len(),
            })
        }
    }

    /// Landmarks and proposals: `q̄`, `mu = q̄ + k̄` and `W`. In eval mode (`perturb = None`)
    /// `W = mu`; in sampled mode `perturb` adds the scaled noise to the rows it is given, as
    /// [`Proposals`] lays them out.
    fn build_proposals(
        &mut self,
        shape: Shape,
        params: &Params<'_>,
        q: &[f32],
        k: &[f32],
        perturb: Option<impl FnOnce(&mut [f32])>,
    ) {
        let count = self.components();
        match params.landmarks {
            Landmarks::SegmentMeans(_) => {
                // q̄, k̄ = segment means (k̄ parked in W; masked keys count as zero rows)
                write_segment_means(q, None, shape.dim, count, self.q_bar);
                write_segment_means(k, params.key_mask, shape.dim, count, self.w);
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
        let Some(perturb) = perturb else {
            // W = mu (eval)
            copy(self.w, self.mu);
            return;
        };
        match params.proposals {
            Proposals::Single | Proposals::TwoPerLandmark => {
                // W = [mu] or [mu; mu], then W += f · eps
                for w_rows in rows_mut(self.w, self.mu.len().max(1)) {
                    copy(w_rows, self.mu);
                }
                perturb(self.w);
            }
            Proposals::Antithetic => {
                // noise = f · eps in the second half;  W = [mu + noise; mu − noise]
                let (plus, minus) = self.w.split_at_mut(self.mu.len().min(self.w.len()));
                minus.fill(0.0);
                perturb(minus);
                for ((p, m), &mu) in plus.iter_mut().zip(minus.iter_mut()).zip(self.mu.iter()) {
                    let noise = *m;
                    (*p, *m) = (mu + noise, mu - noise);
                }
            }
        }
    }

    /// Everything after the proposals: the key pass, the proposal densities and the query pass.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn finish(
        &mut self,
        shape: Shape,
        params: &Params<'_>,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
        extra: &mut [f32],
    ) {
        self.key_pass(shape, k, v, params.key_mask, extra);
        self.proposal_log_density(shape, params.weighting);
        self.query_pass(shape, params.weighting, q, out, extra);
    }

    /// One streaming pass over the unmasked keys: per sample, `lseK_c = lse_j ℓ(k_j; W_c)` and
    /// `kv_c = Σ_j softmax_j(ℓ(k_j; W_c)) v_j`. On the active SIMD backend when there is one
    /// (and the blocked kernels' `extra` scratch), else the scalar reference.
    pub(crate) fn key_pass(
        &mut self,
        shape: Shape,
        k: &[f32],
        v: &[f32],
        key_mask: Option<&[bool]>,
        extra: &mut [f32],
    ) {
        let on_simd = !extra.is_empty()
            && crate::simd::dispatch::lara_keys(
                active_backend(),
                shape,
                k,
                v,
                key_mask,
                self,
                extra,
            );
        if !on_simd {
            self.key_pass_scalar(shape, k, v, key_mask);
        }
    }

    /// `mis-opt`'s normaliser of `T` and the query pass: `out_i = Σ_c sniw[c, i] kv_c`, on the
    /// active SIMD backend when there is one, else the scalar reference.
    pub(crate) fn query_pass(
        &mut self,
        shape: Shape,
        weighting: Weighting,
        q: &[f32],
        out: &mut [f32],
        extra: &mut [f32],
    ) {
        let on_simd = !extra.is_empty()
            && crate::simd::dispatch::lara_queries(
                active_backend(),
                shape,
                weighting,
                q,
                out,
                self,
                extra,
            );
        if !on_simd {
            self.query_pass_scalar(shape, weighting, q, out);
        }
    }

    /// The scalar query pass. (Neither scalar pass is inlined into its caller: on Cortex-M the
    /// frames would add up, kept apart the stack peak is the larger of the two.)
    #[inline(never)]
    fn query_pass_scalar(
        &mut self,
        shape: Shape,
        weighting: Weighting,
        q: &[f32],
        out: &mut [f32],
    ) {
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

    /// The scalar key pass.
    #[inline(never)]
    fn key_pass_scalar(&mut self, shape: Shape, k: &[f32], v: &[f32], key_mask: Option<&[bool]>) {
        let scale = shape.scale();
        self.kv.fill(0.0);
        self.key_lse.fill(f32::NEG_INFINITY);
        self.key_sum.fill(0.0);
        let keys = rows(k, shape.dim).zip(rows(v, shape.value_dim));
        for ((k_row, v_row), masked) in keys.zip(masked_keys(key_mask)) {
            if masked {
                // LK[c, j] = −∞: no contribution
                continue;
            }
            let k_half_norm = half_sq_norm(k_row);
            let samples = rows(self.w, shape.dim).zip(rows_mut(self.kv, shape.value_dim));
            for ((w_row, kv_row), (max, sum)) in
                samples.zip(self.key_lse.iter_mut().zip(self.key_sum.iter_mut()))
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
    /// `mis-opt` also `bh_c = exp(LM[c,c] − lse_c' LM[c,c'])`, where (as in the official code)
    /// the mixture of `mis-opt` lists each component once per sample drawn around it.
    pub(crate) fn proposal_log_density(&mut self, shape: Shape, weighting: Weighting) {
        let scale = shape.scale();
        let count = self.components().max(1);
        for (half_norm, mu_row) in self.mu_half_norm.iter_mut().zip(rows(self.mu, shape.dim)) {
            *half_norm = half_sq_norm(mu_row);
        }
        // ln(S / C'): each component repeated S / C' times in the mis-opt mixture
        let repeats_ln = if self.samples() > count {
            core::f32::consts::LN_2
        } else {
            0.0
        };
        let per_sample = rows(self.w, shape.dim)
            .zip(self.key_lse.iter())
            .zip(self.bias.iter_mut().zip(self.balance.iter_mut()));
        for (c, ((w_row, &key_lse), (bias, balance))) in per_sample.enumerate() {
            let own = c % count;
            let mut lse = OnlineLse::EMPTY;
            let mut diagonal = 0.0;
            for (c2, (mu_row, &mu_half_norm)) in rows(self.mu, shape.dim)
                .zip(self.mu_half_norm.iter())
                .enumerate()
            {
                // LM[c, c'] = s · (W_c·mu_c' − |mu_c'|²/2)
                let lm = scale * (dot(w_row, mu_row) - mu_half_norm);
                lse.push_scalar(lm);
                if c2 == own {
                    diagonal = lm;
                }
            }
            let lse_lm = lse.log_sum_exp();
            // bh_c = exp(LM[c,c] − lse_c' LM[c,c'])
            *balance = exp(diagonal - lse_lm - repeats_ln);
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
        let count = self.components();
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
        // Sample c belongs to component c mod C': the samples come in groups of C'.
        let sample_groups = rows_mut(self.logits, count.max(1));
        match weighting {
            Weighting::Optimal { alpha_coeff } => {
                // T[c, i] = exp(s · q̄_c·q_i − lse_i'(s · q̄_c·q_i'))
                let t_row = prefix(self.t_row, count);
                let mut t_sum = 0.0;
                for ((t, q_bar_row), &t_lse) in t_row
                    .iter_mut()
                    .zip(rows(self.q_bar, shape.dim))
                    .zip(self.t_lse.iter())
                {
                    *t = exp(scale * dot(q_bar_row, q_row) - t_lse);
                    t_sum += *t;
                }
                let t_mean = t_sum / count as f32;
                for (logits, balance) in sample_groups.zip(rows(self.balance, count.max(1))) {
                    for ((logit, &t), &balance) in logits.iter_mut().zip(t_row.iter()).zip(balance)
                    {
                        // log α = log max(bh_c + alpha_coeff · (T[c,i] − mean_c' T[c',i]), 1e-8)
                        let alpha = balance + alpha_coeff * (t - t_mean);
                        *logit += ln(alpha.max(1e-8));
                    }
                }
            }
            Weighting::BalanceHeuristic => {}
            Weighting::Biased => {
                // log α[c, i] = s · mu_c·q_i, once per component
                let log_alpha = prefix(self.t_row, count);
                for (a, mu_row) in log_alpha.iter_mut().zip(rows(self.mu, shape.dim)) {
                    *a = scale * dot(mu_row, q_row);
                }
                for logits in sample_groups {
                    for (logit, &a) in logits.iter_mut().zip(log_alpha.iter()) {
                        *logit += a;
                    }
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
                let (mut ws, _) = Workspace::split(&mut scratch, count, count, shape).unwrap();
                ws.build_proposals(shape, &params, &case.q, &case.k, None::<fn(&mut [f32])>);
                ws.key_pass_scalar(shape, &case.k, &case.v, None);
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
