//! RA: randomized attention (Zheng, Wang & Kong, ICML 2022, §3), as the official
//! `RandomizedAttention` computes it. Unbiased (with the paper's noise scale) but quadratic.
//!
//! ```text
//! π[i,j] = softmax_j(s · q_i·k_j),  s = d^-1/2
//! mu_i   = q_i + mean_j k_j            (Mean::KeyAverage,        num_samples = 0)
//!        = q_i + Σ_j π[i,j] k_j        (Mean::AttentionWeighted, num_samples = -1)
//!        = q_i + k_{J_i}, J_i ~ π[i,·] (Mean::SampledKey / GivenKeys, num_samples = 1)
//! W_i    = mu_i  (eval)   or  mu_i + f · eps_i  (sampled, eps [n_q, d])
//! out_i  = Σ_j softmax_j(s · W_i·k_j − s · |k_j|²/2) v_j
//! ```
//!
//! With the key padding mask of [`Qkv`], masked keys have exactly zero influence: they get the
//! logit `−∞` in `π` and in the output softmax, are never sampled (nor accepted as given key
//! indices), and the key average runs over the unmasked keys.
//!
//! Cost: `O(h · n_q · n_k · (d + d_v))` time (twice that for the attention-weighted and sampled
//! key means); [`scratch_len_for`] the scalar kernel is `n_k + 2·d + 32` floats (the key norms,
//! `k̄`, `W_i`, one logit block), the only estimator whose scratch grows with `n`.

mod blocked;
mod scalar;

use crate::error::{Arg, Error};
use crate::inputs::{Noise, Qkv, Sampling, with_noise};
use crate::math::{KEY_BLOCK, axpy, dot, exp, half_sq_norm, log_sum_exp_of, scale};
use crate::random::NoiseScale;
use crate::shape::{Shape, checked_scratch_len};
use crate::simd::{self, Available, Backend, Isa, Kernel};
use crate::slices::{part, part_mut, rows, take};

/// The proposal mean `mu_i` (the official `num_samples`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mean<'a> {
    /// `num_samples = 0`: `mu_i = q_i + (1/n_k) Σ_j k_j`.
    KeyAverage,
    /// `num_samples = -1`: `mu_i = q_i + Σ_j π[i,j] k_j`.
    AttentionWeighted,
    /// `num_samples = 1`: `mu_i = q_i + k_{J_i}`, `J_i ~ Categorical(π[i, ·])` drawn from the
    /// generator of [`Sampling::Draw`] (any other sampling is [`Error::GeneratorRequired`]).
    SampledKey,
    /// `num_samples = 1` with the sampled keys given: `mu_i = q_i + k_{J_i}`, `J [h, n_q]`,
    /// every index below `n_k` and none of a masked key.
    GivenKeys(&'a [u32]),
}

/// The parameters of an RA call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params<'a> {
    /// The proposal mean.
    pub mean: Mean<'a>,
    /// The scale of the proposal noise in sampled mode.
    pub noise_scale: NoiseScale,
}

impl<'a> Params<'a> {
    /// The given mean with the official noise.
    pub const fn new(mean: Mean<'a>) -> Self {
        Params {
            mean,
            noise_scale: NoiseScale::Official,
        }
    }

    /// These parameters with the noise scaled as `noise_scale` says.
    pub const fn with_noise_scale(self, noise_scale: NoiseScale) -> Self {
        Params {
            noise_scale,
            ..self
        }
    }
}

/// Scratch (in `f32`s) that [`attention`] needs on this target: [`scratch_len_for`] the
/// backends compiled here (the largest of them). Independent of `h`, not of `n_k`.
pub const fn scratch_len(shape: Shape) -> usize {
    len(shape, simd::COMPILED)
}

/// Scratch (in `f32`s) that [`attention`] needs when it runs on `backend`: `n_k + 2·d + 32`
/// for [`Backend::Scalar`], plus `32·(2·d + 36)` for the blocked backends (a block of proposals
/// and the flash tiles).
pub const fn scratch_len_for(backend: Backend, shape: Shape) -> usize {
    len(shape, backend.is_blocked())
}

pub(crate) const fn len(shape: Shape, tiles: bool) -> usize {
    let scalar = shape
        .keys
        .saturating_add(shape.dim.saturating_mul(2))
        .saturating_add(KEY_BLOCK);
    if tiles {
        scalar.saturating_add(blocked::tiles_len(shape.dim))
    } else {
        scalar
    }
}

/// Randomized attention of `x` into `out [h, n_q, d_v]`.
///
/// `sampling` is [`Sampling::Eval`] (`W = mu`), [`Sampling::Noise`] with `eps [h, n_q, d]`, or
/// [`Sampling::Draw`]: query by query, `J_i` first (for [`Mean::SampledKey`]), then `eps_i` in
/// row order, head by head. Sampled, `W = mu + f · eps` with `f` from `params.noise_scale`;
/// with [`NoiseScale::Paper`] the estimator is unbiased: the mean over draws converges to
/// exact softmax attention.
///
/// # Errors
/// A zero dimension, a slice whose length does not match, a key index `>= n_k` or of a masked
/// key, a key mask that masks every key, [`Mean::SampledKey`] without a generator, scratch shorter than
/// [`scratch_len_for`] the active backend, or a non-finite input. Nothing is written on error.
///
/// # Example
/// ```
/// use lara_attn::{Qkv, Sampling, Shape, ra};
/// const SHAPE: Shape = Shape::self_attention(8, 2);
/// let x: Vec<f32> = (0..16).map(|i| (i as f32).cos()).collect();
/// let mut out = [0.0; 16];
/// let mut scratch = [0.0; ra::scratch_len(SHAPE)];
/// let inputs = Qkv { shape: SHAPE, q: &x, k: &x, v: &x, key_mask: None };
/// let params = ra::Params::new(ra::Mean::AttentionWeighted);
/// ra::attention(&inputs, &params, Sampling::Eval, &mut out, &mut scratch)?;
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
    attention_on(Available::active(), x, params, sampling, out, scratch)
}

/// [`attention`] on `backend` (a caller that sized the scratch for one backend runs on it).
#[inline(always)]
pub(crate) fn attention_on(
    backend: Available,
    x: &Qkv<'_>,
    params: &Params<'_>,
    sampling: Sampling<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    // (Inlined: a call with a constant sampling links that sampling's code only.)
    with_noise!(sampling, |noise| run(
        backend, x, params, noise, out, scratch
    ))
}

/// [`attention`] with the noise `N`.
/// (Not inlined into the caller, whose frame would then hold its locals.)
#[inline(never)]
fn run<N: Noise>(
    backend: Available,
    x: &Qkv<'_>,
    params: &Params<'_>,
    noise: N,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    check_args(x, params, &noise, out)?;
    let (mut ws, tiles) = Workspace::split(scratch, x.shape, backend.backend().is_blocked())?;
    attention_in(backend, x, params, noise, out, &mut ws, tiles);
    Ok(())
}

/// [`attention`] on checked arguments and a workspace of the right size.
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
        let out = part_mut(out, heads, head);
        let mean = match params.mean {
            Mean::GivenKeys(indices) => Mean::GivenKeys(part(indices, heads, head)),
            mean => mean,
        };
        let mut draws = Draws {
            noise: &mut noise,
            head: (heads, head),
            mean,
            factor: params.noise_scale.factor(x.shape.dim),
            row: 0,
        };
        ws.prepare(&x, mean);
        let kernel = Ra {
            x: &x,
            mean: MeanKind::of(mean),
            out,
            ws: &mut *ws,
            tiles: &mut *tiles,
            draws: &mut draws,
        };
        simd::run(backend, kernel);
    }
}

/// Checks everything but the scratch.
pub(crate) fn check_args<N: Noise>(
    x: &Qkv<'_>,
    params: &Params<'_>,
    noise: &N,
    out: &[f32],
) -> Result<(), Error> {
    x.check(out)?;
    let shape = x.shape;
    noise.check(shape, shape.queries)?;
    match params.mean {
        Mean::GivenKeys(indices) => {
            let expected = shape.stacked(shape.queries, 1)?;
            crate::shape::expect_len(Arg::KeyIndices, indices.len(), expected)?;
            if let Some(row) = indices.iter().position(|&j| j as usize >= shape.keys) {
                let index = indices.get(row).copied().unwrap_or(0);
                return Err(Error::KeyIndexOutOfRange { row, index });
            }
            let masked = |j: u32| x.key_mask.and_then(|mask| mask.get(j as usize)) == Some(&true);
            match indices.iter().position(|&j| masked(j)) {
                Some(row) => {
                    let index = indices.get(row).copied().unwrap_or(0);
                    Err(Error::MaskedKeyIndex { row, index })
                }
                None => Ok(()),
            }
        }
        Mean::SampledKey if !N::DRAWN => Err(Error::GeneratorRequired),
        _ => Ok(()),
    }
}

/// The proposal mean without its data: what the kernels branch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MeanKind {
    KeyAverage,
    AttentionWeighted,
    /// `mu_i = q_i + k_{J_i}`, the key drawn or given.
    Key,
}

impl MeanKind {
    fn of(mean: Mean<'_>) -> Self {
        match mean {
            Mean::KeyAverage => MeanKind::KeyAverage,
            Mean::AttentionWeighted => MeanKind::AttentionWeighted,
            Mean::SampledKey | Mean::GivenKeys(_) => MeanKind::Key,
        }
    }
}

/// The random part of each query's proposal, query after query: the noise `eps_i` and the key
/// `J_i` of the sampled-key mean.
pub(crate) struct Draws<'a, 'n, N> {
    noise: &'n mut N,
    /// The number of heads and this head.
    head: (usize, usize),
    mean: Mean<'a>,
    factor: f32,
    /// The next query row.
    row: usize,
}

impl<N: Noise> Draws<'_, '_, N> {
    /// `W_i += f · eps_i` for the next query `q_i`; returns `J_i` (0 unless the mean is a key).
    pub(crate) fn perturb(&mut self, x: &Qkv<'_>, w: &mut [f32], q_row: &[f32]) -> usize {
        let key = match self.mean {
            Mean::GivenKeys(indices) => indices.get(self.row).map_or(0, |&j| j as usize),
            Mean::SampledKey if N::DRAWN => draw_key(x, q_row, self.noise.uniform()),
            _ => 0,
        };
        let offset = self.row.saturating_mul(x.shape.dim);
        self.noise.add(self.head, offset, self.factor, w);
        self.row += 1;
        key
    }
}

/// Inverse-CDF draw of `J ~ softmax_j(s · q·k_j)` over the unmasked keys from one uniform
/// `u ∈ [0, 1)`, in two streaming passes over the keys (normaliser, then the cumulative sum).
fn draw_key(x: &Qkv<'_>, q_row: &[f32], u: f32) -> usize {
    let scale = x.shape.scale();
    let logits = || {
        rows(x.k, x.shape.dim)
            .zip(x.unmasked_keys())
            .map(|(k_row, unmasked)| {
                if unmasked {
                    scale * dot(q_row, k_row)
                } else {
                    f32::NEG_INFINITY
                }
            })
    };
    let lse = log_sum_exp_of(logits());
    let mut cumulative = 0.0;
    let mut last_positive = 0;
    for (j, logit) in logits().enumerate() {
        let p = exp(logit - lse);
        if p > 0.0 {
            last_positive = j;
        }
        cumulative += p;
        if u < cumulative {
            return j;
        }
    }
    // Rounding left the cumulative sum just below u: the draw belongs to the last key.
    last_positive
}

/// The scratch of one RA head, split into its named parts.
pub(crate) struct Workspace<'a> {
    /// `s · |k_j|² / 2` for every key, `+∞` for masked keys (logit `−∞`), `[n_k]`.
    pub(crate) key_half_norms: &'a mut [f32],
    /// The mean of the unmasked keys (key-average mean), `[d]`.
    pub(crate) key_mean: &'a mut [f32],
    /// `mu_i`, then `W_i`, `[d]`.
    pub(crate) w: &'a mut [f32],
    /// One block of logits of the streaming softmax.
    pub(crate) block: &'a mut [f32; KEY_BLOCK],
}

impl<'a> Workspace<'a> {
    /// Splits a flat scratch of at least `len(shape, tiles)` floats into the workspace and the
    /// blocked kernel's tiles (empty without `tiles`).
    pub(crate) fn split(
        scratch: &'a mut [f32],
        shape: Shape,
        tiles: bool,
    ) -> Result<(Self, &'a mut [f32]), Error> {
        let needed = checked_scratch_len(len(shape, tiles))?;
        let actual = scratch.len();
        let mut rest = scratch
            .get_mut(..needed)
            .ok_or(Error::ScratchTooSmall { needed, actual })?;
        let key_half_norms = take(&mut rest, shape.keys);
        let key_mean = take(&mut rest, shape.dim);
        let w = take(&mut rest, shape.dim);
        let block = take(&mut rest, KEY_BLOCK)
            .first_chunk_mut()
            .ok_or(Error::ScratchTooSmall { needed, actual })?;
        Ok((
            Workspace {
                key_half_norms,
                key_mean,
                w,
                block,
            },
            rest,
        ))
    }

    /// The per-key statistics of one head: `s·|k_j|²/2` (`+∞` for masked keys) and, for the
    /// key-average mean, `k̄`.
    fn prepare(&mut self, x: &Qkv<'_>, mean: Mean<'_>) {
        let (dim, scale_factor) = (x.shape.dim, x.shape.scale());
        let keys = self.key_half_norms.iter_mut().zip(rows(x.k, dim));
        for ((half_norm, k_row), unmasked) in keys.zip(x.unmasked_keys()) {
            // s · |k_j|²/2, or +∞: the logit s·W·k_j − ∞ of a masked key is −∞
            *half_norm = if unmasked {
                scale_factor * half_sq_norm(k_row)
            } else {
                f32::INFINITY
            };
        }
        if mean == Mean::KeyAverage {
            // k̄ = (1/n) Σ_j k_j over the n unmasked keys
            self.key_mean.fill(0.0);
            for (k_row, unmasked) in rows(x.k, dim).zip(x.unmasked_keys()) {
                if unmasked {
                    axpy(1.0, k_row, self.key_mean);
                }
            }
            scale(self.key_mean, 1.0 / x.unmasked_count() as f32);
        }
    }
}

/// RA over the queries of one head, on prepared key statistics.
pub(crate) struct Ra<'a, 'w, 'd, 'n, N> {
    x: &'a Qkv<'a>,
    mean: MeanKind,
    out: &'a mut [f32],
    ws: &'a mut Workspace<'w>,
    tiles: &'a mut [f32],
    draws: &'a mut Draws<'d, 'n, N>,
}

impl<N: Noise> Kernel for Ra<'_, '_, '_, '_, N> {
    type Output = ();
    fn scalar(self) {
        scalar::attention(self);
    }
    #[inline(always)]
    fn blocked<I: Isa>(self, isa: I) {
        blocked::attention(isa, self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{assert_close, single_head_cases};

    /// `mu_i = q_i + Σ_j π[i,j] k_j` (num_samples = -1) against the official intermediate.
    #[test]
    fn attention_weighted_mean_matches_the_official_code() {
        for case in single_head_cases() {
            let shape = Shape::self_attention(case.n, case.d);
            let x = case.qkv();
            let mut scratch = vec![f32::NAN; scratch_len(shape)];
            let (mut ws, _) = Workspace::split(&mut scratch, shape, false).unwrap();
            let mut mu = vec![0.0; case.n * case.d];
            for (q_row, mu_row) in case.q.chunks_exact(case.d).zip(mu.chunks_exact_mut(case.d)) {
                scalar::proposal_mean(&mut ws, &x, MeanKind::AttentionWeighted, q_row);
                mu_row.copy_from_slice(ws.w);
            }
            assert_close(
                &mu,
                &case.intermediate("ra_nsm1_mu").data,
                1e-5,
                &format!("{} mu", case.id),
            );
        }
    }

    /// A masked key is never drawn, the first one included (an empty log-sum-exp once turned
    /// a first logit of −∞ into NaN, and the draw fell back to key 0), and is refused as a
    /// given key.
    #[test]
    fn masked_keys_are_never_the_proposal_key() {
        let shape = Shape::cross(3, 4, 2, 1);
        let q = [0.1, 0.2, -0.3, 0.4, 0.5, -0.6];
        let v = [0.0, 1.0, -1.0, 0.5];
        let mask = [true, false, false, true];
        let params = Params::new(Mean::SampledKey);
        let mut scratch = vec![0.0; scratch_len(shape)];
        let mut outputs = Vec::new();
        // Any values in the masked rows give the same bits.
        for garbage in [0.0, 7.0] {
            let k = [garbage, garbage, 0.5, -0.5, -0.5, 0.5, garbage, -garbage];
            let x = Qkv {
                shape,
                q: &q,
                k: &k,
                v: &v,
                key_mask: Some(&mask),
            };
            let mut out = [0.0; 3];
            let mut rng = crate::random::default_rng(1);
            attention(
                &x,
                &params,
                Sampling::Draw(&mut rng),
                &mut out,
                &mut scratch,
            )
            .unwrap();
            outputs.push(out.map(f32::to_bits));
        }
        assert_eq!(outputs[0], outputs[1]);
        let k = [0.0; 8];
        let x = Qkv {
            shape,
            q: &q,
            k: &k,
            v: &v,
            key_mask: Some(&mask),
        };
        let given = Params::new(Mean::GivenKeys(&[1, 2, 3]));
        let result = attention(&x, &given, Sampling::Eval, &mut [0.0; 3], &mut scratch);
        assert_eq!(result, Err(Error::MaskedKeyIndex { row: 2, index: 3 }));
    }
}
