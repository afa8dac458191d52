//! RA: randomized attention (Zheng, Wang & Kong, ICML 2022, §3), as the official
//! `RandomizedAttention` computes it. Unbiased (with the paper's noise scale) but quadratic.
//!
//! ```text
//! π[i,j] = softmax_j(s · q_i·k_j),  s = d^-1/2
//! mu_i   = q_i + mean_j k_j            (Mean::KeyAverage,       num_samples = 0)
//!        = q_i + Σ_j π[i,j] k_j        (Mean::AttentionWeighted, num_samples = -1)
//!        = q_i + k_{J_i}, J_i ~ π[i,·] (Mean::Keys / SampledMean::Key, num_samples = 1)
//! W_i    = mu_i  (eval)   or  mu_i + eps_i  (sampled, eps [n_q, d])
//! out_i  = Σ_j softmax_j(s · W_i·k_j − s · |k_j|²/2) v_j
//! ```
//!
//! Cost: `O(n_q · n_k · (d + d_v))` time (twice that for the attention-weighted and sampled-key
//! means), [`scratch_len`] = `n_k + 2·d + 32` floats (the key norms, `k̄`, `W_i`, one logit block).

use crate::backend::active_backend;
use crate::error::{Arg, Error};
use crate::exact::logit_block;
use crate::math::{
    KEY_BLOCK, axpy, copy, dot, exp, half_sq_norm, log_sum_exp_of, rows, rows_mut,
    softmax_weighted_sum,
};
use crate::random::{NoiseScale, add_scaled_normal, uniform};
use crate::shape::{Shape, carve, check_finite, check_len, checked_len, take_scratch};
use crate::simd::{blocked, dispatch};
use rand_core::RngCore;

/// The proposal mean `mu_i` (the official `num_samples`), with caller-given key indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mean<'a> {
    /// `num_samples = 0`: `mu_i = q_i + (1/n_k) Σ_j k_j`.
    KeyAverage,
    /// `num_samples = -1`: `mu_i = q_i + Σ_j π[i,j] k_j`.
    AttentionWeighted,
    /// `num_samples = 1` with the sampled key of each query given: `mu_i = q_i + k_{J_i}`,
    /// `J [n_q]`, every index below `n_k`.
    Keys(&'a [u32]),
}

/// The proposal mean of [`attention_sampled`]: as [`Mean`], but the key of each query is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampledMean {
    /// `num_samples = 0`.
    KeyAverage,
    /// `num_samples = -1`.
    AttentionWeighted,
    /// `num_samples = 1`: `J_i ~ Categorical(π[i, ·])` drawn from the generator.
    Key,
}

/// Scratch (in `f32`s) that [`attention`] and [`attention_sampled`] need: `n_k + 2·d + 32` for
/// the scalar kernel, plus `32·(2·d + 35)` on targets with SIMD backends (a block of proposals
/// and the flash tiles).
pub const fn scratch_len(shape: Shape) -> usize {
    shape
        .keys
        .saturating_add(shape.dim.saturating_mul(2))
        .saturating_add(KEY_BLOCK)
        .saturating_add(crate::simd::if_compiled(blocked::ra_scratch_len(shape.dim)))
}

/// The per-key statistics the blocked kernel reads: `s·|k_j|²/2` and the key mean.
pub(crate) struct KeyStats<'a> {
    pub(crate) key_half_norms: &'a [f32],
    pub(crate) key_mean: &'a [f32],
}

/// Randomized attention of `q [n_q, d]` over `k [n_k, d]`, `v [n_k, d_v]` into `out [n_q, d_v]`.
///
/// `noise = None` is eval mode (`W = mu`), `Some(eps)` with `eps [n_q, d]` sampled mode:
/// `W = mu + factor · eps`, the factor given by `noise_scale` (1 for [`NoiseScale::Official`],
/// `d^1/4` for [`NoiseScale::Paper`]).
///
/// # Errors
/// A zero dimension, a slice whose length does not match, a key index `>= n_k`, scratch
/// shorter than [`scratch_len`], or a non-finite input. Nothing is written on error.
///
/// # Example
/// ```
/// use lara_attn::{Shape, ra, random::NoiseScale};
/// const SHAPE: Shape = Shape::self_attention(8, 2);
/// let x: Vec<f32> = (0..16).map(|i| (i as f32).cos()).collect();
/// let mut out = [0.0; 16];
/// let mut scratch = [0.0; ra::scratch_len(SHAPE)];
/// let (mean, noise_scale) = (ra::Mean::AttentionWeighted, NoiseScale::Official);
/// ra::attention(SHAPE, mean, noise_scale, &x, &x, &x, None, &mut out, &mut scratch)?;
/// # Ok::<(), lara_attn::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn attention(
    shape: Shape,
    mean: Mean<'_>,
    noise_scale: NoiseScale,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    noise: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    let (ws, extra) = Workspace::split(scratch, shape)?;
    attention_in(shape, mean, noise_scale, q, k, v, noise, out, ws, extra)
}

/// [`attention`] on a workspace that is already split.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_in(
    shape: Shape,
    mean: Mean<'_>,
    noise_scale: NoiseScale,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    noise: Option<&[f32]>,
    out: &mut [f32],
    mut ws: Workspace<'_>,
    extra: &mut [f32],
) -> Result<(), Error> {
    shape.check_qkv(q, k, v, out)?;
    if let Some(eps) = noise {
        check_len(Arg::Noise, eps, shape.queries, shape.dim)?;
        check_finite(Arg::Noise, eps)?;
    }
    if let Mean::Keys(indices) = mean {
        check_key_indices(shape, indices)?;
    }
    let mut noise_rows = noise.map(|eps| rows(eps, shape.dim));
    let factor = noise_scale.factor(shape.dim);
    let mut key_indices = match mean {
        Mean::Keys(indices) => indices.iter(),
        _ => [].iter(),
    };
    let kind = match mean {
        Mean::KeyAverage => SampledMean::KeyAverage,
        Mean::AttentionWeighted => SampledMean::AttentionWeighted,
        Mean::Keys(_) => SampledMean::Key,
    };
    ws.run(shape, kind, q, k, v, out, extra, |w, _| {
        if let Some(eps) = noise_rows.as_mut().and_then(|rows| rows.next()) {
            // W_i = mu_i + factor · eps_i
            axpy(factor, eps, w);
        }
        key_indices.next().map_or(0, |&j| j as usize)
    });
    Ok(())
}

/// Randomized attention in sampled mode: `eps_i ~ N(0, I)` (and, for [`SampledMean::Key`],
/// `J_i ~ π[i, ·]`) drawn from `rng`, query by query (`J_i` first, then `eps_i` in row order),
/// and `W_i = mu_i + factor · eps_i` with the factor of `noise_scale`.
///
/// With [`NoiseScale::Paper`] the estimator is unbiased: the mean over draws converges to exact
/// softmax attention (the test `scaled_noise_ra_converges_to_exact_attention` checks it).
///
/// # Errors
/// As [`attention`].
#[allow(clippy::too_many_arguments)]
pub fn attention_sampled<R: RngCore + ?Sized>(
    shape: Shape,
    mean: SampledMean,
    noise_scale: NoiseScale,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    rng: &mut R,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    let (ws, extra) = Workspace::split(scratch, shape)?;
    attention_sampled_in(shape, mean, noise_scale, q, k, v, rng, out, ws, extra)
}

/// [`attention_sampled`] on a workspace that is already split.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_sampled_in<R: RngCore + ?Sized>(
    shape: Shape,
    mean: SampledMean,
    noise_scale: NoiseScale,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    rng: &mut R,
    out: &mut [f32],
    mut ws: Workspace<'_>,
    extra: &mut [f32],
) -> Result<(), Error> {
    shape.check_qkv(q, k, v, out)?;
    let (scale, factor) = (shape.scale(), noise_scale.factor(shape.dim));
    ws.run(shape, mean, q, k, v, out, extra, |w, q_row| {
        let index = match mean {
            SampledMean::Key => draw_key(scale, q_row, k, shape.dim, uniform(rng)),
            _ => 0,
        };
        // W_i = mu_i + factor · eps_i
        add_scaled_normal(rng, factor, w);
        index
    });
    Ok(())
}

/// Inverse-CDF draw of `J ~ softmax_j(s · q·k_j)` from one uniform `u ∈ [0, 1)`, in two
/// streaming passes over the keys (normaliser, then the cumulative sum).
fn draw_key(scale: f32, q_row: &[f32], k: &[f32], dim: usize, u: f32) -> usize {
    let logits = || rows(k, dim).map(|k_row| scale * dot(q_row, k_row));
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

fn check_key_indices(shape: Shape, indices: &[u32]) -> Result<(), Error> {
    if indices.len() != shape.queries {
        return Err(Error::LengthMismatch {
            arg: Arg::KeyIndices,
            expected: shape.queries,
            actual: indices.len(),
        });
    }
    match indices.iter().position(|&j| j as usize >= shape.keys) {
        Some(row) => Err(Error::KeyIndexOutOfRange {
            row,
            index: indices.get(row).copied().unwrap_or(0),
        }),
        None => Ok(()),
    }
}

/// The scratch of one RA call, split into its named parts.
pub(crate) struct Workspace<'a> {
    /// `s · |k_j|² / 2` for every key, `[n_k]`.
    key_half_norms: &'a mut [f32],
    /// `(1/n_k) Σ_j k_j` (key-average mean), `[d]`.
    key_mean: &'a mut [f32],
    /// `mu_i`, then `W_i`, `[d]`.
    w: &'a mut [f32],
    block: &'a mut [f32; KEY_BLOCK],
}

impl<'a> Workspace<'a> {
    /// Splits a flat scratch of at least [`scratch_len`] floats into the scalar workspace and
    /// the blocked kernel's extra scratch (empty where no SIMD is compiled).
    fn split(scratch: &'a mut [f32], shape: Shape) -> Result<(Self, &'a mut [f32]), Error> {
        let needed = checked_len(shape.dim, 2)?
            .checked_add(shape.keys)
            .and_then(|len| len.checked_add(KEY_BLOCK))
            .and_then(|len| {
                len.checked_add(crate::simd::if_compiled(blocked::ra_scratch_len(shape.dim)))
            })
            .ok_or(Error::SizeOverflow)?;
        let mut rest = take_scratch(scratch, needed)?;
        let key_half_norms = carve(&mut rest, shape.keys)?;
        let key_mean = carve(&mut rest, shape.dim)?;
        let w = carve(&mut rest, shape.dim)?;
        let block = logit_block(carve(&mut rest, KEY_BLOCK)?)?;
        Ok((
            Workspace::from_parts(key_half_norms, key_mean, w, block),
            rest,
        ))
    }

    /// Builds the workspace from buffers of exactly `n_k`, `d` and `d` floats.
    pub(crate) fn from_parts(
        key_half_norms: &'a mut [f32],
        key_mean: &'a mut [f32],
        w: &'a mut [f32],
        block: &'a mut [f32; KEY_BLOCK],
    ) -> Self {
        Workspace {
            key_half_norms,
            key_mean,
            w,
            block,
        }
    }

    /// `W = mu_i` for the key-average and attention-weighted means, `W = q_i` for the sampled
    /// key (whose `k_{J_i}` is added after the noise).
    pub(crate) fn proposal_mean(
        &mut self,
        shape: Shape,
        mean: SampledMean,
        q_row: &[f32],
        k: &[f32],
    ) {
        match mean {
            SampledMean::KeyAverage => {
                // mu_i = q_i + k̄
                for ((w, q), k_mean) in self.w.iter_mut().zip(q_row).zip(self.key_mean.iter()) {
                    *w = q + k_mean;
                }
            }
            SampledMean::AttentionWeighted => {
                // mu_i = q_i + Σ_j softmax_j(s · q_i·k_j) k_j
                let scale = shape.scale();
                let logits = rows(k, shape.dim).map(|k_row| scale * dot(q_row, k_row));
                softmax_weighted_sum(logits, k, shape.dim, self.w, self.block);
                axpy(1.0, q_row, self.w);
            }
            SampledMean::Key => copy(self.w, q_row),
        }
    }

    /// The query loop. `perturb(W, q_i)` adds the noise `eps_i` to `W` and returns `J_i` (used
    /// by the sampled-key mean only, whose `k_{J_i}` is added to `W = q_i + eps_i` afterwards).
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        shape: Shape,
        mean: SampledMean,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
        extra: &mut [f32],
        mut perturb: impl FnMut(&mut [f32], &[f32]) -> usize,
    ) {
        let (dim, scale) = (shape.dim, shape.scale());
        for (half_norm, k_row) in self.key_half_norms.iter_mut().zip(rows(k, dim)) {
            // s · |k_j|²/2
            *half_norm = scale * half_sq_norm(k_row);
        }
        if mean == SampledMean::KeyAverage {
            // k̄ = (1/n_k) Σ_j k_j
            self.key_mean.fill(0.0);
            for k_row in rows(k, dim) {
                axpy(1.0, k_row, self.key_mean);
            }
            crate::math::scale(self.key_mean, 1.0 / shape.keys as f32);
        }
        if !extra.is_empty() {
            let ws = KeyStats {
                key_half_norms: self.key_half_norms,
                key_mean: self.key_mean,
            };
            if dispatch::ra(
                active_backend(),
                shape,
                mean,
                q,
                k,
                v,
                out,
                &ws,
                extra,
                &mut perturb,
            ) {
                return;
            }
        }
        for (q_row, out_row) in rows(q, dim).zip(rows_mut(out, shape.value_dim)) {
            self.proposal_mean(shape, mean, q_row, k);
            // W_i = mu_i + eps_i (eps added first for the sampled key, whose k_J follows)
            let key_index = perturb(self.w, q_row);
            if mean == SampledMean::Key {
                // mu_i = q_i + k_{J_i}
                if let Some(k_row) = rows(k, dim).nth(key_index) {
                    axpy(1.0, k_row, self.w);
                }
            }
            // out_i = Σ_j softmax_j(s · W_i·k_j − s · |k_j|²/2) v_j
            let w = &*self.w;
            let logits = rows(k, dim)
                .zip(self.key_half_norms.iter())
                .map(|(k_row, &half_norm)| scale * dot(w, k_row) - half_norm);
            softmax_weighted_sum(logits, v, shape.value_dim, out_row, self.block);
        }
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
            let mut scratch = vec![f32::NAN; scratch_len(shape)];
            let (mut ws, _) = Workspace::split(&mut scratch, shape).unwrap();
            let mut mu = vec![0.0; case.n * case.d];
            for (q_row, mu_row) in case.q.chunks_exact(case.d).zip(mu.chunks_exact_mut(case.d)) {
                ws.proposal_mean(shape, SampledMean::AttentionWeighted, q_row, &case.k);
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
}
