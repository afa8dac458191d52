//! LARA: linear randomized attention (Zheng, Wang & Kong, ICML 2022, §4), as the official
//! `LinearRA` computes it (1-D path; `proposal_gen = 'no-param-pool'` for segment-mean
//! landmarks, any other generator through [`Landmarks::Given`]).
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
//! axis). [`scratch_len_for`] the scalar kernels is `C · (3·d + d_v + 8)` floats: `q̄`, `mu`,
//! `W` (`3·C·d`), `kv` (`C·d_v`) and eight per-landmark scalars; the blocked backends add a packed
//! copy of the samples and a tile of 32 rows, `2·C · (d + 32)`.
//!
//! Cost: `O((n_q + n_k) · C · (d + d_v) + C² · d)` time per head.
//!
//! # Options ([`Params`])
//! * [`Proposals`]: the official `use_antithetics` (`W = mu ± eps`) and `use_multisample` (two
//!   draws per landmark) double the proposal samples in sampled mode, and the cost of the
//!   `W`-dependent passes with them.
//! * [`NoiseScale`]: the official unscaled noise, or the paper's `eps · d^1/4`.
//! * The key padding mask of [`Qkv`]: masked keys get `ℓ = −∞` (they drop out of every `kv_c`
//!   and `lseK_c`) and count as zero rows in the key landmarks, as the official code zeroes
//!   padded tokens before pooling. Masked keys have exactly zero influence on the output.
//!
//! # Where LARA fits
//! LARA is meant for models trained with it (the paper's setting). As a drop-in for a softmax
//! model that was not, its error is what it is; with `C ≥ n` every token is its own landmark
//! (the official `C' = n` case) and the estimator changes character: its error against exact
//! attention jumps rather than falling to zero.

mod blocked;
mod scalar;

use crate::error::{Arg, Error};
use crate::inputs::{Noise, Qkv, Sampling, with_noise};
use crate::math::{exp, half_sq_norm, ln, scale};
use crate::random::NoiseScale;
use crate::shape::{Shape, check_finite, check_len, checked_len, checked_scratch_len};
use crate::simd::{self, Available, Backend, Isa, Kernel};
use crate::slices::{copy, part, part_mut, prefix, rows, rows_mut, take};

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
    /// Landmarks computed by the caller (a model with its own proposal generator, or
    /// [`pool2d`](crate::pool2d)): `count` rows per head of query landmarks `q̄ [h, count, d]`
    /// and key landmarks `k̄ [h, count, d]`.
    Given {
        /// Number of landmarks `C` per head.
        count: usize,
        /// Query landmarks `q̄ [h, count, d]` (used by `mis-opt`'s `T` and in `mu = q̄ + k̄`).
        queries: &'a [f32],
        /// Key landmarks `k̄ [h, count, d]`.
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
    pub const fn samples(self, landmarks: usize) -> usize {
        match self {
            Proposals::Single => landmarks,
            Proposals::Antithetic | Proposals::TwoPerLandmark => landmarks.saturating_mul(2),
        }
    }

    /// The number of noise rows `eps` a sampled call takes per head: `2·C'` for two samples per
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
}

impl<'a> Params<'a> {
    /// Segment-mean landmarks with the given weighting, single proposals and the official
    /// noise.
    pub const fn segment_means(landmarks: usize, weighting: Weighting) -> Params<'static> {
        Params::new(Landmarks::SegmentMeans(landmarks), weighting)
    }

    /// The given landmarks and weighting, single proposals and the official noise.
    pub const fn new(landmarks: Landmarks<'a>, weighting: Weighting) -> Self {
        Params {
            landmarks,
            weighting,
            proposals: Proposals::Single,
            noise_scale: NoiseScale::Official,
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

/// Scratch (in `f32`s) that [`attention`] needs on this target for up to `landmarks`
/// landmarks and these `proposals`, independent of `n` and `h`: [`scratch_len_for`] the
/// backends compiled here (the largest of them).
pub const fn scratch_len(shape: Shape, landmarks: usize, proposals: Proposals) -> usize {
    let samples = proposals.samples(landmarks);
    workspace_len(shape, landmarks, samples, simd::COMPILED)
}

/// Scratch (in `f32`s) that [`attention`] needs when it runs on `backend`:
/// `C · (2·d) + S · (d + d_v + 8)` for the scalar kernels ([`Backend::Scalar`]: the fixed-size
/// layer, and Cortex-M or RISC-V built for size), with `S = proposals.samples(C)` samples, plus
/// `(S + C) · (d + 32)` of tiles for the blocked backends (SIMD, and [`Backend::Blocked`] on
/// Cortex-M and RISC-V).
pub const fn scratch_len_for(
    backend: Backend,
    shape: Shape,
    landmarks: usize,
    proposals: Proposals,
) -> usize {
    let samples = proposals.samples(landmarks);
    workspace_len(shape, landmarks, samples, backend.is_blocked())
}

/// The scratch that [`Workspace::split`] takes for `count` landmarks and `samples` samples:
/// `q̄`, `mu` (`2·count·d`), `W` and `kv` (`samples·(d + d_v)`), 8 scalars per sample, and the
/// blocked kernels' tiles with `tiles`.
pub(crate) const fn workspace_len(
    shape: Shape,
    count: usize,
    samples: usize,
    tiles: bool,
) -> usize {
    let scalar = count
        .saturating_mul(shape.dim)
        .saturating_mul(2)
        .saturating_add(
            samples.saturating_mul(
                shape
                    .dim
                    .saturating_add(shape.value_dim)
                    .saturating_add(STATS_PER_SAMPLE),
            ),
        );
    if tiles {
        scalar.saturating_add(blocked::tiles_len(samples.saturating_add(count), shape.dim))
    } else {
        scalar
    }
}

/// The length of the noise `eps` that sampled mode takes for segment-mean landmarks:
/// `[h, C', d]`, or `[h, 2·C', d]` for two samples per landmark.
pub const fn noise_len(shape: Shape, landmarks: usize, proposals: Proposals) -> usize {
    proposals
        .noise_rows(effective_landmarks(shape, landmarks))
        .saturating_mul(shape.dim)
        .saturating_mul(shape.heads)
}

/// LARA attention of `x` into `out [h, n_q, d_v]`.
///
/// `sampling` is [`Sampling::Eval`] (`W = mu`), [`Sampling::Noise`] with `eps` of
/// [`noise_len`] (`[h, R, d]`, `R = `[`Proposals::noise_rows`]`(C')`), or [`Sampling::Draw`]
/// (`eps` drawn head by head, row-major); sampled, `W = mu + f · eps` with `f` from
/// `params.noise_scale`.
///
/// # Errors
/// A zero dimension or zero landmarks, a slice whose length does not match (`noise`, given
/// landmarks, the key mask), a mask that masks every key, scratch shorter than the call needs
/// ([`scratch_len`]`(shape, C, params.proposals)` always suffices), a non-finite input or
/// `alpha_coeff`. Nothing is written when an error is returned.
///
/// # Example
/// ```
/// use lara_attn::{Qkv, Sampling, Shape, lara};
/// use lara_attn::lara::{Params, Proposals, Weighting};
/// const SHAPE: Shape = Shape::self_attention(16, 4);
/// const C: usize = 4;
/// let params = Params::segment_means(C, Weighting::Optimal { alpha_coeff: 1.0 });
/// let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
/// let mut out = [0.0; 64];
/// let mut scratch = [0.0; lara::scratch_len(SHAPE, C, Proposals::Single)];
/// let inputs = Qkv { shape: SHAPE, q: &x, k: &x, v: &x, key_mask: None };
/// lara::attention(&inputs, &params, Sampling::Eval, &mut out, &mut scratch)?;
/// # Ok::<(), lara_attn::Error>(())
/// ```
#[inline(always)]
pub fn attention(
    x: &Qkv<'_>,
    params: &Params<'_>,
    sampling: Sampling<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    // (Inlined: a call with a constant sampling links that sampling's code only.)
    with_noise!(sampling, |noise| run(x, params, noise, out, scratch))
}

/// [`attention`] with the noise `N`.
/// (Not inlined into the caller, whose frame would then hold its locals.)
#[inline(never)]
fn run<N: Noise>(
    x: &Qkv<'_>,
    params: &Params<'_>,
    noise: N,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    let count = check_args(x, params, &noise, out)?;
    let backend = Available::active();
    let samples = sample_count(params, count, N::SAMPLED);
    let tiles = backend.backend().is_blocked();
    let (mut ws, tiles) = Workspace::split(scratch, count, samples, x.shape, tiles)?;
    attention_in(backend, x, params, noise, out, &mut ws, tiles);
    Ok(())
}

/// [`attention`] on checked arguments and a workspace of the right size. (Inlined, and the
/// passes it calls are not: on Cortex-M the stack peak is then this frame plus the deepest
/// pass.)
#[inline(always)]
pub(crate) fn attention_in<N: Noise>(
    backend: Available,
    x: &Qkv<'_>,
    params: &Params<'_>,
    mut noise: N,
    out: &mut [f32],
    ws: &mut Workspace<'_>,
    tiles: &mut [f32],
) {
    let heads = x.shape.heads;
    for head in 0..heads {
        let x = x.head(head);
        ws.build_proposals(&x, params, (&mut noise, heads, head));
        ws.key_pass(backend, &x, &mut *tiles);
        ws.proposal_log_density(backend, x.shape, params.weighting, &mut *tiles);
        let out = part_mut(out, heads, head);
        ws.query_pass(backend, &x, params.weighting, out, &mut *tiles);
    }
}

/// The number of proposal samples of a call with `count` landmarks.
pub(crate) fn sample_count(params: &Params<'_>, count: usize, sampled: bool) -> usize {
    if sampled {
        params.proposals.samples(count)
    } else {
        count
    }
}

/// Writes the `segments` segment means of `x [rows, dim]` into `out [segments, dim]`, with the
/// official uneven split: for `g = rows div segments` and `short = (g+1)·segments − rows`
/// (when `segments` does not divide `rows`), the first `short` segments average `g` rows and
/// the others `g + 1`.
///
/// # Errors
/// [`Error::ZeroLandmarks`] if `segments` is 0, [`Error::TooManyLandmarks`] if it exceeds
/// `rows`, [`Error::ZeroDimension`] for a zero `rows` or `dim`, [`Error::LengthMismatch`] for
/// wrong slice lengths, [`Error::NonFinite`] for a NaN or an infinity in `x`.
pub fn segment_means(
    x: &[f32],
    rows: usize,
    dim: usize,
    segments: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    if rows == 0 {
        return Err(Error::ZeroDimension(crate::error::Dim::Queries));
    }
    if dim == 0 {
        return Err(Error::ZeroDimension(crate::error::Dim::Model));
    }
    if segments == 0 {
        return Err(Error::ZeroLandmarks);
    }
    if segments > rows {
        return Err(Error::TooManyLandmarks {
            landmarks: segments,
            rows,
        });
    }
    check_len(Arg::Queries, x, rows, dim)?;
    check_len(Arg::QueryLandmarks, out, segments, dim)?;
    check_finite(Arg::Queries, x)?;
    write_segment_means(x, None, dim, segments, out);
    Ok(())
}

/// Segment means without checks (`1 <= segments <= rows`, lengths match); rows that `key_mask`
/// marks (padding keys) count as zero rows, as the official code zeroes padded tokens before
/// pooling.
pub(crate) fn write_segment_means(
    x: &[f32],
    key_mask: Option<&[bool]>,
    dim: usize,
    segments: usize,
    out: &mut [f32],
) {
    let dim = dim.max(1); // (a no-op for checked arguments: no division-by-zero panic path)
    let lens = segment_lens(x.len() / dim, segments);
    let mut start = 0;
    for (len, mean) in lens.zip(rows_mut(out, dim)) {
        let end = start + len;
        let segment = x.get(start * dim..end * dim).unwrap_or(&[]);
        let masked = key_mask.and_then(|mask| mask.get(start..end));
        sum_unmasked_rows(segment, dim, masked, mean);
        // Divide (not multiply by 1/len): exactly rounded, and only C·d times.
        for m in mean.iter_mut() {
            *m /= len as f32;
        }
        start = end;
    }
}

/// `sum = Σ_j rows[j]` over the rows of `rows [.., dim]` that `masked` does not mark, in row
/// order (the sums of a running `sum += row`), eight columns at a time in registers: one load
/// and one add per element.
fn sum_unmasked_rows(rows_x: &[f32], dim: usize, masked: Option<&[bool]>, sum: &mut [f32]) {
    const WIDTH: usize = 8;
    let counted = |j: usize| !masked.and_then(|m| m.get(j)).copied().unwrap_or(false);
    let (chunks, tail) = sum.as_chunks_mut::<WIDTH>();
    for (c, out) in chunks.iter_mut().enumerate() {
        let mut acc = [0.0f32; WIDTH];
        for (j, row) in rows(rows_x, dim).enumerate() {
            let columns = row.get(c * WIDTH..).and_then(|r| r.first_chunk::<WIDTH>());
            if let (true, Some(columns)) = (counted(j), columns) {
                for (a, &x) in acc.iter_mut().zip(columns) {
                    *a += x;
                }
            }
        }
        *out = acc;
    }
    let first = chunks.len() * WIDTH;
    for (c, out) in tail.iter_mut().enumerate() {
        *out = 0.0;
        for (j, row) in rows(rows_x, dim).enumerate() {
            if let (true, Some(&x)) = (counted(j), row.get(first + c)) {
                *out += x;
            }
        }
    }
}

/// The lengths of the `segments` consecutive segments of `rows` rows in the official uneven
/// split: for `g = rows div segments` and `short = (g+1)·segments − rows` (when `segments` does
/// not divide `rows`), the first `short` segments have `g` rows and the others `g + 1`.
pub(crate) fn segment_lens(rows: usize, segments: usize) -> impl Iterator<Item = usize> {
    // (max(1): a no-op for checked arguments, no division-by-zero panic path)
    let segments = segments.max(1);
    // (rows = short_len · segments + rest: segments − rest short segments, the others one
    // longer)
    let (short_len, rest) = crate::math::div_rem(rows, segments);
    let short_count = segments - rest;
    (0..segments).map(move |s| short_len + usize::from(s >= short_count))
}

/// Checks everything but the scratch; returns the number of landmarks `C'`.
pub(crate) fn check_args(
    x: &Qkv<'_>,
    params: &Params<'_>,
    noise: &impl Noise,
    out: &[f32],
) -> Result<usize, Error> {
    x.check(out)?;
    let shape = x.shape;
    if let Weighting::Optimal { alpha_coeff } = params.weighting
        && !alpha_coeff.is_finite()
    {
        return Err(Error::NonFinite(Arg::AlphaCoeff));
    }
    let count = match params.landmarks {
        Landmarks::SegmentMeans(0) | Landmarks::Given { count: 0, .. } => {
            return Err(Error::ZeroLandmarks);
        }
        Landmarks::SegmentMeans(c) => effective_landmarks(shape, c),
        Landmarks::Given {
            count,
            queries,
            keys,
        } => {
            shape.check_stacked(Arg::QueryLandmarks, queries, count, shape.dim)?;
            shape.check_stacked(Arg::KeyLandmarks, keys, count, shape.dim)?;
            check_finite(Arg::QueryLandmarks, queries)?;
            check_finite(Arg::KeyLandmarks, keys)?;
            count
        }
    };
    noise.check(shape, params.proposals.noise_rows(count))?;
    Ok(count)
}

/// The scratch of one LARA head, split into its named parts: `C'` landmarks (mixture
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
    /// Splits a flat scratch into the workspace of one head with `count` landmarks and
    /// `samples` proposal samples, and the blocked kernels' tiles (empty without `tiles`).
    /// (Inlined: the workspace is then built in its caller's frame, not copied there, 96 bytes
    /// of stack less on Cortex-M.)
    #[inline(always)]
    pub(crate) fn split(
        scratch: &'a mut [f32],
        count: usize,
        samples: usize,
        shape: Shape,
        tiles: bool,
    ) -> Result<(Self, &'a mut [f32]), Error> {
        let landmark_rows = checked_len(count, shape.dim)?;
        let sample_rows = checked_len(samples, shape.dim)?;
        let kv_len = checked_len(samples, shape.value_dim)?;
        let stats_len = checked_len(samples, STATS_PER_SAMPLE)?;
        let needed = checked_scratch_len(workspace_len(shape, count, samples, tiles))?;
        let actual = scratch.len();
        let mut rest = scratch
            .get_mut(..needed)
            .ok_or(Error::ScratchTooSmall { needed, actual })?;
        let q_bar = take(&mut rest, landmark_rows);
        let mu = take(&mut rest, landmark_rows);
        let w = take(&mut rest, sample_rows);
        let kv = take(&mut rest, kv_len);
        let stats = take(&mut rest, stats_len);
        Ok((
            Self::from_parts(q_bar, mu, w, kv, stats, (count, samples), shape),
            rest,
        ))
    }

    /// Builds the workspace of `count` landmarks and `samples` samples from buffers of at least
    /// `count` rows (`q̄`, `mu`), `samples` rows (`W`, `kv`) and `8 · samples` scalars, using
    /// exactly that many of each. (Inlined, like [`split`](Self::split).)
    #[inline(always)]
    pub(crate) fn from_parts(
        q_bar: &'a mut [f32],
        mu: &'a mut [f32],
        w: &'a mut [f32],
        kv: &'a mut [f32],
        stats: &'a mut [f32],
        (count, samples): (usize, usize),
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

    /// Landmarks and proposals of one head: `q̄`, `mu = q̄ + k̄` and `W`. In eval mode `W = mu`;
    /// sampled, `W = mu + f · eps` laid out as [`Proposals`] says.
    #[inline(never)]
    fn build_proposals<N: Noise>(
        &mut self,
        x: &Qkv<'_>,
        params: &Params<'_>,
        (noise, heads, head): (&mut N, usize, usize),
    ) {
        let shape = x.shape;
        let count = self.components();
        match params.landmarks {
            Landmarks::SegmentMeans(_) => {
                // q̄, k̄ = segment means (k̄ parked in W; masked keys count as zero rows)
                write_segment_means(x.q, None, shape.dim, count, self.q_bar);
                write_segment_means(x.k, x.key_mask, shape.dim, count, self.w);
            }
            Landmarks::Given { queries, keys, .. } => {
                copy(self.q_bar, part(queries, heads, head));
                copy(self.w, part(keys, heads, head));
            }
        }
        self.sample_proposals(shape.dim, params, (noise, heads, head));
    }

    /// The proposals of one head whose landmarks are in place (`q̄` in `q_bar`, `k̄` parked in
    /// the first `C'` rows of `W`): `mu = q̄ + k̄`, then `W = mu` in eval mode or
    /// `W = mu + f · eps` laid out as [`Proposals`] says.
    pub(crate) fn sample_proposals<N: Noise>(
        &mut self,
        dim: usize,
        params: &Params<'_>,
        (noise, heads, head): (&mut N, usize, usize),
    ) {
        // mu = q̄ + k̄
        for ((mu, q_bar), k_bar) in self.mu.iter_mut().zip(self.q_bar.iter()).zip(self.w.iter()) {
            *mu = q_bar + k_bar;
        }
        let factor = params.noise_scale.factor(dim);
        match (N::SAMPLED, params.proposals) {
            // W = mu (eval)
            (false, _) => copy(self.w, self.mu),
            (true, Proposals::Single | Proposals::TwoPerLandmark) => {
                // W = [mu] or [mu; mu], then W += f · eps
                for w_rows in rows_mut(self.w, self.mu.len().max(1)) {
                    copy(w_rows, self.mu);
                }
                noise.add((heads, head), 0, factor, self.w);
            }
            (true, Proposals::Antithetic) => {
                // noise = f · eps in the second half;  W = [mu + noise; mu − noise]
                let (plus, minus) = self.w.split_at_mut(self.mu.len().min(self.w.len()));
                minus.fill(0.0);
                noise.add((heads, head), 0, factor, minus);
                for ((p, m), &mu) in plus.iter_mut().zip(minus.iter_mut()).zip(self.mu.iter()) {
                    let noise = *m;
                    (*p, *m) = (mu + noise, mu - noise);
                }
            }
        }
    }

    /// Per sample over the unmasked keys of one head: `lseK_c = lse_j ℓ(k_j; W_c)` and
    /// `kv_c = Σ_j softmax_j(ℓ(k_j; W_c)) v_j`: [`begin_keys`](Self::begin_keys), one
    /// [`push_keys`](Self::push_keys) of every key, [`finish_keys`](Self::finish_keys).
    pub(crate) fn key_pass(&mut self, backend: Available, x: &Qkv<'_>, tiles: &mut [f32]) {
        self.begin_keys();
        self.push_keys(backend, x, tiles);
        self.finish_keys(x.shape.value_dim);
    }

    /// Starts a key pass: no key seen yet.
    pub(crate) fn begin_keys(&mut self) {
        self.kv.fill(0.0);
        self.key_lse.fill(f32::NEG_INFINITY);
        self.key_sum.fill(0.0);
    }

    /// Adds the keys (and values, mask) of `x` to the key pass: the keys may come in blocks.
    pub(crate) fn push_keys(&mut self, backend: Available, x: &Qkv<'_>, tiles: &mut [f32]) {
        simd::run(backend, KeyPass { x, ws: self, tiles });
    }

    /// Ends a key pass: `kv_c = Σ_j e^(LK − max) v_j / Σ_j e^(LK − max)` and
    /// `lseK_c = max + ln Σ_j e^(LK − max)`.
    pub(crate) fn finish_keys(&mut self, value_dim: usize) {
        for ((kv_row, lse), &sum) in rows_mut(self.kv, value_dim)
            .zip(self.key_lse.iter_mut())
            .zip(self.key_sum.iter())
        {
            scale(kv_row, 1.0 / sum);
            *lse += ln(sum);
        }
    }

    /// `mis-opt`'s normaliser of `T`, then `out_i = Σ_c sniw[c, i] kv_c` for one head.
    pub(crate) fn query_pass(
        &mut self,
        backend: Available,
        x: &Qkv<'_>,
        weighting: Weighting,
        out: &mut [f32],
        tiles: &mut [f32],
    ) {
        if let Weighting::Optimal { .. } = weighting {
            self.begin_normaliser();
            self.push_normaliser(backend, x, &mut *tiles);
            self.finish_normaliser();
        }
        self.push_queries(backend, x, weighting, out, tiles);
    }

    /// Starts `mis-opt`'s normaliser of `T`, `lse_i (s · q̄_c·q_i)`: no query seen yet (after
    /// the key pass, whose running sums it reuses).
    pub(crate) fn begin_normaliser(&mut self) {
        let count = self.components();
        self.t_lse.fill(f32::NEG_INFINITY);
        prefix(self.key_sum, count).fill(0.0);
    }

    /// Adds the queries of `x` to the normaliser: the queries may come in blocks.
    pub(crate) fn push_normaliser(&mut self, backend: Available, x: &Qkv<'_>, tiles: &mut [f32]) {
        let pass = QueryPass {
            x,
            weighting: Weighting::BalanceHeuristic,
            out: &mut [],
            ws: self,
            tiles,
        };
        simd::run(backend, Normaliser(pass));
    }

    /// Ends the normaliser: `t_lse_c = max + ln Σ`.
    pub(crate) fn finish_normaliser(&mut self) {
        let count = self.components();
        for (t_lse, &sum) in self
            .t_lse
            .iter_mut()
            .zip(prefix(self.key_sum, count).iter())
        {
            *t_lse += ln(sum);
        }
    }

    /// `out_i = Σ_c sniw[c, i] kv_c` for the queries of `x` (a block or all of them), on a
    /// workspace whose densities and (`mis-opt`) normaliser are done.
    pub(crate) fn push_queries(
        &mut self,
        backend: Available,
        x: &Qkv<'_>,
        weighting: Weighting,
        out: &mut [f32],
        tiles: &mut [f32],
    ) {
        let pass = QueryPass {
            x,
            weighting,
            out,
            ws: self,
            tiles,
        };
        simd::run(backend, pass);
    }

    /// `log P_c` from `LM[c, c'] = ℓ(mu_c'; W_c)`, folded into `bias_c = lseK_c − log P_c`; for
    /// `mis-opt` also `bh_c = exp(LM[c,c] − lse_c' LM[c,c'])`, where (as in the official code)
    /// the mixture of `mis-opt` lists each component once per sample drawn around it.
    pub(crate) fn proposal_log_density(
        &mut self,
        backend: Available,
        shape: Shape,
        weighting: Weighting,
        tiles: &mut [f32],
    ) {
        for (half_norm, mu_row) in self.mu_half_norm.iter_mut().zip(rows(self.mu, shape.dim)) {
            *half_norm = half_sq_norm(mu_row);
        }
        let density = Density {
            shape,
            weighting,
            ws: self,
            tiles,
        };
        simd::run(backend, density);
    }
}

/// What `LM[c, ·]`'s diagonal and log-sum-exp give sample `c`: `(bias_c, bh_c)` with
/// `bias_c = lseK_c − log P_c` and `bh_c = exp(LM[c,c] − lse_c' LM[c,c'] − ln(S / C'))` (each
/// component is listed `S / C'` times in the mis-opt mixture).
fn density_terms(
    (diagonal, lse_lm): (f32, f32),
    key_lse: f32,
    weighting: Weighting,
    (samples, count): (usize, usize),
) -> (f32, f32) {
    let repeats_ln = if samples > count {
        core::f32::consts::LN_2
    } else {
        0.0
    };
    // bh_c = exp(LM[c,c] − lse_c' LM[c,c'])
    let balance = exp(diagonal - lse_lm - repeats_ln);
    // log P_c: the own component for mis-opt, the mixture for mis-bh / mis-biased
    let log_p = match weighting {
        Weighting::Optimal { .. } => diagonal,
        Weighting::BalanceHeuristic | Weighting::Biased => lse_lm,
    };
    (key_lse - log_p, balance)
}

/// The proposal densities of one head, on a workspace whose key pass is done and whose
/// `|mu_c|²/2` are computed.
pub(crate) struct Density<'a, 'w> {
    shape: Shape,
    weighting: Weighting,
    ws: &'a mut Workspace<'w>,
    tiles: &'a mut [f32],
}

impl Kernel for Density<'_, '_> {
    type Output = ();
    fn scalar(self) {
        self.ws.density_scalar(self.shape, self.weighting);
    }
    #[inline(always)]
    fn blocked<I: Isa>(self, isa: I) {
        blocked::density(isa, self);
    }
}

/// Keys (a block or all) added to the key pass of one head, on a workspace whose samples `W`
/// are built.
pub(crate) struct KeyPass<'a, 'w> {
    x: &'a Qkv<'a>,
    ws: &'a mut Workspace<'w>,
    tiles: &'a mut [f32],
}

impl Kernel for KeyPass<'_, '_> {
    type Output = ();
    fn scalar(self) {
        self.ws.push_keys_scalar(self.x);
    }
    #[inline(always)]
    fn blocked<I: Isa>(self, isa: I) {
        blocked::push_keys(isa, self);
    }
}

/// Queries (a block or all) of one head through the query pass, on a workspace whose key pass
/// and densities are done.
pub(crate) struct QueryPass<'a, 'w> {
    x: &'a Qkv<'a>,
    weighting: Weighting,
    out: &'a mut [f32],
    ws: &'a mut Workspace<'w>,
    tiles: &'a mut [f32],
}

impl Kernel for QueryPass<'_, '_> {
    type Output = ();
    fn scalar(self) {
        let shape = self.x.shape;
        self.ws
            .queries_scalar(shape, self.weighting, self.x.q, self.out);
    }
    #[inline(always)]
    fn blocked<I: Isa>(self, isa: I) {
        blocked::queries(isa, self);
    }
}

/// Queries added to `mis-opt`'s normaliser of `T`.
pub(crate) struct Normaliser<'a, 'w>(QueryPass<'a, 'w>);

impl Kernel for Normaliser<'_, '_> {
    type Output = ();
    fn scalar(self) {
        let QueryPass { x, ws, .. } = self.0;
        ws.push_normaliser_scalar(x.shape, x.q);
    }
    #[inline(always)]
    fn blocked<I: Isa>(self, isa: I) {
        blocked::push_normaliser(isa, self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::NoNoise;
    use crate::math::softmax_in_place;
    use crate::test_support::{assert_close, single_head_cases};

    /// `kv`, `logiw` and `sniw` of mis-opt (α = 1, eval) against the official intermediates.
    #[test]
    fn intermediates_match_the_official_code() {
        for case in single_head_cases() {
            let shape = Shape::self_attention(case.n, case.d);
            let x = case.qkv();
            for c in [4, 8] {
                let weighting = Weighting::Optimal { alpha_coeff: 1.0 };
                let params = Params::segment_means(c, weighting);
                let count = effective_landmarks(shape, c);
                let mut scratch = vec![f32::NAN; scratch_len(shape, c, Proposals::Single)];
                let (mut ws, _) =
                    Workspace::split(&mut scratch, count, count, shape, false).unwrap();
                ws.build_proposals(&x, &params, (&mut NoNoise, 1, 0));
                ws.begin_keys();
                ws.push_keys_scalar(&x);
                ws.finish_keys(shape.value_dim);
                ws.proposal_log_density(Available::SCALAR, shape, weighting, &mut []);
                ws.begin_normaliser();
                ws.push_normaliser_scalar(shape, &case.q);
                ws.finish_normaliser();
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
