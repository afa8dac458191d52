//! LARA on int8 inputs: the estimator of [`crate::lara`] (every weighting, eval mode and
//! sampled mode with given noise, segment-mean or given landmarks, the key padding mask) in the
//! fixed-point formats of the [module docs](super), all logarithms in base 2:
//!
//! ```text
//! q̄_c, k̄_c   segment means (i16, units scale_q/128, scale_k/128) or given (i8, their scales)
//! mu_c       = q̄_c + k̄_c,  W_c = mu_c (eval) or mu_c + f·eps_c   (i16, units w_unit)
//! LK[c,j]    = s·(W_c·k_j − |k_j|²/2)·log2 e                    (L16)
//! kv_c, lseK_c  streaming softmax over the keys, blocks of four   (V8 as i16, L16)
//! LM[c,c']   = s·(W_c·mu_c' − |mu_c'|²/2)·log2 e                (L16, i64 dot products)
//! logiw[c,i] = log2 α[c,i] + s·W_c·q_i·log2 e + lseK_c − log2 P_c   (the |q_i|² term cancels)
//! out_i      = Σ_c sniw[c,i] kv_c,   sniw ∝ α · 2^(logiw − log2 α − max)  (weights ≤ 2^14)
//! ```
//!
//! `mis-opt`'s `T[c,i] = softmax_i(s·q̄_c·q_i)` is `Q27` from a streaming log-sum-exp over the
//! queries, `α = max(bh_c + alpha_coeff·(T − mean_c T), 2^-27)` in `Q27` and `bh_c` in `Q27`.
//!
//! Scratch: [`scratch_len`] `i32`s, independent of `n`.

use super::fixed_point::{
    L16_ONE, Multiplier, Running, clamp_operand, div_round, exp2_neg, log2_l16, shift_round,
    to_logit, weight_q15,
};
use super::{Out, Qkv, Requantize, Scales, check_logit_bound, check_scale, multiplier};
use crate::error::{Arg, Error};
use crate::lara::{Proposals, Weighting, effective_landmarks, segment_lens};
use crate::random::NoiseScale;
use crate::shape::{Shape, expect_len, take_scratch_of};
use crate::simd::int8::{
    accumulate_pairs, dot_packed_i8, dot_pairs, pack_row, packed_len, pair, unpacked,
};
use crate::slices::{part, prefix, rows, rows_mut, take};

/// The configuration a LARA plan is made for: the weighting, the proposals and noise scale of
/// sampled mode, and the quantisation scales of the noise and of given landmarks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// How proposals are weighted (the official `mis_type`).
    pub weighting: Weighting,
    /// Samples per landmark in sampled mode.
    pub proposals: Proposals,
    /// The factor `f` on the noise in sampled mode.
    pub noise_scale: NoiseScale,
    /// The scale of the `i8` noise `eps` of sampled mode; `None`: eval mode only.
    pub noise: Option<f32>,
    /// The scales of given `i8` landmarks `(q̄, k̄)`; `None`: segment means only.
    pub landmarks: Option<(f32, f32)>,
}

impl Config {
    /// Eval mode, segment means, the given weighting.
    pub const fn eval(weighting: Weighting) -> Self {
        Config {
            weighting,
            proposals: Proposals::Single,
            noise_scale: NoiseScale::Official,
            noise: None,
            landmarks: None,
        }
    }
}

/// Where the landmarks of a call come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Landmarks<'a> {
    /// `C` segment means of `q` and `k` (the official `no-param-pool`, `C' = min(C, n_q, n_k)`).
    SegmentMeans(usize),
    /// Landmarks quantised with the scales of [`Config::landmarks`]: `count` rows per head of
    /// `q̄ [h, count, d]` and `k̄ [h, count, d]`.
    Given {
        /// Landmarks per head.
        count: usize,
        /// Query landmarks.
        queries: &'a [i8],
        /// Key landmarks.
        keys: &'a [i8],
    },
}

/// Eval mode, or sampled mode with the caller's `i8` noise `eps [h, R, d]` (scale
/// [`Config::noise`], `R = `[`Proposals::noise_rows`]`(C')`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling<'a> {
    /// `W = mu`.
    Eval,
    /// `W = mu + f · eps`, laid out as [`Proposals`] says.
    Noise(&'a [i8]),
}

/// The fixed-point constants of int8 LARA for one head dimension, scales and [`Config`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    dim: usize,
    config: Config,
    /// `alpha_coeff` in `Q16` (mis-opt).
    alpha_coeff: i64,
    /// `q̄` (units `scale_q̄/128`) and `k̄` (`scale_k̄/128`) to `w_unit`; for segment means and
    /// for given landmarks.
    q_bar_to_w: Multiplier,
    k_bar_to_w: Multiplier,
    given_q_bar_to_w: Multiplier,
    given_k_bar_to_w: Multiplier,
    /// `f · scale_eps / w_unit`.
    noise_to_w: Multiplier,
    /// `s · w_unit · scale_k` and `s · scale_k² / 2` (per `|k|²`), to `L16`.
    key_dot: Multiplier,
    key_norm: Multiplier,
    /// `s · w_unit · scale_q`, to `L16`.
    query_dot: Multiplier,
    /// `s · scale_q̄/128 · scale_q` for segment means and for given landmarks, to `L16`.
    t_dot: Multiplier,
    given_t_dot: Multiplier,
    /// `s · w_unit² / 2` per unit of `2·W·mu − |mu|²`, to `L16`.
    density: Multiplier,
    requantize: Requantize,
}

impl Plan {
    /// The plan for head dimension `dim`, these scales and `config` (`f32` arithmetic, once).
    ///
    /// # Errors
    /// [`Error::InvalidScale`] for a scale (inputs, noise, landmarks) that is not finite and
    /// positive; [`Error::NonFinite`] for a non-finite `alpha_coeff`;
    /// [`Error::FixedPointRange`] for `dim > 512`, `|alpha_coeff| > 8`, or scales whose key or
    /// query logits can exceed `2^12` (base 2).
    pub fn new(dim: usize, scales: &Scales, config: &Config) -> Result<Self, Error> {
        scales.check()?;
        super::check_dim(dim)?;
        let alpha = match config.weighting {
            Weighting::Optimal { alpha_coeff } if !alpha_coeff.is_finite() => {
                return Err(Error::NonFinite(Arg::AlphaCoeff));
            }
            Weighting::Optimal { alpha_coeff } if alpha_coeff.abs() > 8.0 => {
                return Err(Error::FixedPointRange("|alpha_coeff| above 8"));
            }
            Weighting::Optimal { alpha_coeff } => alpha_coeff,
            _ => 0.0,
        };
        let (given_q, given_k) = config.landmarks.unwrap_or((scales.q, scales.k));
        check_scale(given_q, Arg::QueryLandmarks)?;
        check_scale(given_k, Arg::KeyLandmarks)?;
        let factor = config.noise_scale.factor(dim);
        let noise = match config.noise {
            Some(scale) => {
                check_scale(scale, Arg::Noise)?;
                factor * scale
            }
            None => 0.0,
        };
        // |W| ≤ 128·(scale_q̄ + scale_k̄) + f·128·scale_eps, over both kinds of landmarks
        let max_w = 128.0 * (scales.q.max(given_q) + scales.k.max(given_k)) + 128.0 * noise;
        let w_unit = max_w / 16384.0;
        let s = 1.0 / libm::sqrtf(dim as f32);
        let d = dim as f32;
        let (max_q, max_k) = (128.0 * scales.q, 128.0 * scales.k);
        check_logit_bound(
            s * d * (max_w * max_k + max_k * max_k / 2.0),
            "LARA key logits: s · d · (max|W| max|k| + max|k|²/2) above 2839",
        )?;
        check_logit_bound(
            2.0 * s * d * max_w * max_q,
            "LARA query logits: 2 s · d · max|W| · max|q| above 2839",
        )?;
        let l16 = super::L16_PER_NAT;
        let why = "a product of the LARA scales outside the f32 range";
        Ok(Plan {
            dim,
            config: *config,
            alpha_coeff: (alpha * 65536.0) as i64,
            q_bar_to_w: multiplier(scales.q / 128.0 / w_unit, why)?,
            k_bar_to_w: multiplier(scales.k / 128.0 / w_unit, why)?,
            given_q_bar_to_w: multiplier(given_q / 128.0 / w_unit, why)?,
            given_k_bar_to_w: multiplier(given_k / 128.0 / w_unit, why)?,
            noise_to_w: if noise > 0.0 {
                multiplier(noise / w_unit, why)?
            } else {
                multiplier(1.0, why)?
            },
            key_dot: multiplier(s * w_unit * scales.k * l16, why)?,
            key_norm: multiplier(s * scales.k * scales.k * 0.5 * l16, why)?,
            query_dot: multiplier(s * w_unit * scales.q * l16, why)?,
            t_dot: multiplier(s * scales.q / 128.0 * scales.q * l16, why)?,
            given_t_dot: multiplier(s * given_q / 128.0 * scales.q * l16, why)?,
            density: multiplier(s * w_unit * w_unit * 0.5 * l16, why)?,
            requantize: Requantize::new(scales)?,
        })
    }
}

/// Scratch (in `i32`s) of [`attention`] with up to `landmarks` landmarks and these `proposals`:
/// with `C` landmarks, `S = proposals.samples(C)` samples, `P = ⌈d/2⌉`, `PS = ⌈S/2⌉`:
/// `2·C·P + S·P + S·d_v + d_v·PS + 14·S + 3·C + 2·d_v + PS + 2·d`.
pub const fn scratch_len(shape: Shape, landmarks: usize, proposals: Proposals) -> usize {
    let samples = proposals.samples(landmarks);
    workspace_len(shape, landmarks, samples)
}

const fn workspace_len(shape: Shape, count: usize, samples: usize) -> usize {
    let (p, ps, dv) = (packed_len(shape.dim), packed_len(samples), shape.value_dim);
    let parts = [
        count.saturating_mul(p).saturating_mul(2),
        samples.saturating_mul(p),
        samples.saturating_mul(dv),
        dv.saturating_mul(ps),
        samples.saturating_mul(14),
        count.saturating_mul(3),
        dv.saturating_mul(2),
        ps,
        shape.dim.saturating_mul(2),
    ];
    let mut total = 0usize;
    let mut i = 0;
    while i < parts.len() {
        total = total.saturating_add(parts[i]);
        i += 1;
    }
    total
}

/// The length of the noise of sampled mode with segment-mean landmarks: `[h, R, d]`.
pub const fn noise_len(shape: Shape, landmarks: usize, proposals: Proposals) -> usize {
    crate::lara::noise_len(shape, landmarks, proposals)
}

/// Keys per block of the key pass.
const BLOCK: usize = 4;

/// LARA of the int8 inputs `x` into `out` (`[h, n_q, d_v]`).
///
/// # Errors
/// A zero dimension or zero landmarks, a slice whose length does not match (noise, given
/// landmarks, mask, output), a mask that masks every key, a plan made for another `d` or
/// without the noise scale (sampled) or landmark scales (given landmarks)
/// ([`Error::PlanMismatch`]), the limits of the [module docs](super), scratch shorter than
/// [`scratch_len`]. Nothing is written on error.
pub fn attention(
    plan: &Plan,
    x: &Qkv<'_>,
    landmarks: Landmarks<'_>,
    sampling: Sampling<'_>,
    mut out: Out<'_>,
    scratch: &mut [i32],
) -> Result<(), Error> {
    x.check(out.len())?;
    let shape = x.shape;
    if plan.dim != shape.dim
        || (matches!(sampling, Sampling::Noise(_)) && plan.config.noise.is_none())
        || (matches!(landmarks, Landmarks::Given { .. }) && plan.config.landmarks.is_none())
    {
        return Err(Error::PlanMismatch);
    }
    let count = match landmarks {
        Landmarks::SegmentMeans(0) | Landmarks::Given { count: 0, .. } => {
            return Err(Error::ZeroLandmarks);
        }
        Landmarks::SegmentMeans(c) => effective_landmarks(shape, c),
        Landmarks::Given {
            count,
            queries,
            keys,
        } => {
            let len = shape.stacked(count, shape.dim)?;
            expect_len(Arg::QueryLandmarks, queries.len(), len)?;
            expect_len(Arg::KeyLandmarks, keys.len(), len)?;
            count
        }
    };
    let proposals = plan.config.proposals;
    let samples = match sampling {
        Sampling::Eval => count,
        Sampling::Noise(eps) => {
            let rows = proposals.noise_rows(count);
            expect_len(Arg::Noise, eps.len(), shape.stacked(rows, shape.dim)?)?;
            proposals.samples(count)
        }
    };
    let needed = workspace_len(shape, count, samples);
    let mut ws = Workspace::split(take_scratch_of(scratch, needed)?, shape, (count, samples));
    let heads = shape.heads;
    for head in 0..heads {
        let x = x.head(head);
        ws.build_proposals(plan, &x, landmarks, sampling, (heads, head));
        ws.key_pass(plan, &x);
        ws.densities(plan);
        if let Weighting::Optimal { .. } = plan.config.weighting {
            ws.normaliser(plan, &x, landmarks);
        }
        ws.query_pass(plan, &x, landmarks, &mut out, head);
    }
    Ok(())
}

/// The scratch of one head, split into its named parts (`C'` landmarks, `S` samples, sample
/// `c` drawn around component `c mod C'`).
struct Workspace<'a> {
    shape: Shape,
    count: usize,
    samples: usize,
    /// `q̄ [C', d]`, packed rows (units `scale_q̄/128`).
    q_bar: &'a mut [i32],
    /// `mu [C', d]`, packed rows (`w_unit`).
    mu: &'a mut [i32],
    /// `W [S, d]`, packed rows (`w_unit`).
    w: &'a mut [i32],
    /// Key pass: `Σ_j 2^(LK − reference) v_j`, `[S, d_v]`; query pass: one output row.
    kv_acc: &'a mut [i32],
    /// `kv` as `V8`, transposed and packed: `[d_v, ⌈S/2⌉]`.
    kv_t: &'a mut [i32],
    /// Streaming states of the key pass (`L16` reference, `Q15` sum), `[S]` each.
    reference: &'a mut [i32],
    sum: &'a mut [i32],
    /// `lseK_c − log2 P_c` (`L16`), `[S]`.
    bias: &'a mut [i32],
    /// `bh_c` (`Q27`), `[S]`.
    balance: &'a mut [i32],
    /// Per block of keys: `LK [S, 4]`; per query: logits `[S]`, `α` (`Q27`) `[S]`.
    block: &'a mut [i32],
    /// Per block: the weights `(w_c0, w_c1), (w_c2, w_c3)`, `[S, 2]`.
    weight_pairs: &'a mut [i32],
    /// Per block: the values `(v_0t, v_1t), (v_2t, v_3t)`, `[d_v, 2]`.
    value_pairs: &'a mut [i32],
    /// `mis-opt`'s normaliser `lse_i(s·q̄_c·q_i)` (reference, then the result) and sum, `[C']`;
    /// per query `T[·, i]` (`Q27`) `[C']`.
    t_reference: &'a mut [i32],
    t_sum: &'a mut [i32],
    t_row: &'a mut [i32],
    /// Per query: the normalised weights, packed, `[⌈S/2⌉]`.
    weights_packed: &'a mut [i32],
    /// Segment sums of `q` and `k`, `[2, d]`.
    row: &'a mut [i32],
}

impl<'a> Workspace<'a> {
    /// Splits `scratch` (exactly [`workspace_len`] long).
    fn split(scratch: &'a mut [i32], shape: Shape, (count, samples): (usize, usize)) -> Self {
        let (p, dv) = (packed_len(shape.dim), shape.value_dim);
        let mut rest = scratch;
        Workspace {
            shape,
            count,
            samples,
            q_bar: take(&mut rest, count * p),
            mu: take(&mut rest, count * p),
            w: take(&mut rest, samples * p),
            kv_acc: take(&mut rest, samples * dv),
            kv_t: take(&mut rest, dv * packed_len(samples)),
            reference: take(&mut rest, samples),
            sum: take(&mut rest, samples),
            bias: take(&mut rest, samples),
            balance: take(&mut rest, samples),
            block: take(&mut rest, samples * BLOCK),
            weight_pairs: take(&mut rest, samples * 2),
            value_pairs: take(&mut rest, dv * 2),
            t_reference: take(&mut rest, count),
            t_sum: take(&mut rest, count),
            t_row: take(&mut rest, count),
            weights_packed: take(&mut rest, packed_len(samples)),
            row: take(&mut rest, 2 * shape.dim),
        }
    }

    /// `q̄`, `mu = q̄ + k̄` and `W` of one head.
    #[inline(never)]
    fn build_proposals(
        &mut self,
        plan: &Plan,
        x: &Qkv<'_>,
        landmarks: Landmarks<'_>,
        sampling: Sampling<'_>,
        (heads, head): (usize, usize),
    ) {
        let (dim, count) = (self.shape.dim, self.count);
        let p = packed_len(dim);
        match landmarks {
            Landmarks::SegmentMeans(_) => {
                // q̄_c = round(128 · Σ_segment q / len) (units scale_q/128), k̄_c likewise with
                // masked keys as zero rows; mu_c = q̄_c + k̄_c in w_unit
                let q_lens = segment_lens(x.shape.queries, count);
                let k_lens = segment_lens(x.shape.keys, count);
                let mut q_rows = rows(x.q, dim);
                let mut k_rows = rows(x.k, dim).zip(x.unmasked_keys());
                let landmark_rows = rows_mut(self.q_bar, p).zip(rows_mut(self.mu, p));
                let (q_sum, k_sum) = self.row.split_at_mut(dim.min(self.row.len()));
                let mean = |sum: &i32, len: usize| div_round(i64::from(*sum) * 128, len as i64);
                for ((q_len, k_len), (q_bar, mu)) in q_lens.zip(k_lens).zip(landmark_rows) {
                    q_sum.fill(0);
                    for q_row in (&mut q_rows).take(q_len) {
                        add_row(q_sum, q_row);
                    }
                    k_sum.fill(0);
                    for (k_row, counted) in (&mut k_rows).take(k_len) {
                        if counted {
                            add_row(k_sum, k_row);
                        }
                    }
                    pack_row(q_sum.iter().map(|s| mean(s, q_len) as i32), dim, q_bar);
                    let mu_values = q_sum.iter().zip(k_sum.iter()).map(|(q, k)| {
                        let q = plan.q_bar_to_w.apply(mean(q, q_len));
                        clamp_operand(q + plan.k_bar_to_w.apply(mean(k, k_len)))
                    });
                    pack_row(mu_values, dim, mu);
                }
            }
            Landmarks::Given { queries, keys, .. } => {
                // q̄ = 128 · q̄_int (units scale_q̄/128); mu = q̄ + k̄ in w_unit
                let (queries, keys) = (part(queries, heads, head), part(keys, heads, head));
                let landmark_rows = rows_mut(self.q_bar, p).zip(rows_mut(self.mu, p));
                for ((q_row, k_row), (q_bar, mu)) in
                    rows(queries, dim).zip(rows(keys, dim)).zip(landmark_rows)
                {
                    pack_row(q_row.iter().map(|&v| i32::from(v) * 128), dim, q_bar);
                    let to_w = |v: i8, m: Multiplier| m.apply(i64::from(v) * 128);
                    let mu_values = q_row.iter().zip(k_row).map(|(&q, &k)| {
                        clamp_operand(
                            to_w(q, plan.given_q_bar_to_w) + to_w(k, plan.given_k_bar_to_w),
                        )
                    });
                    pack_row(mu_values, dim, mu);
                }
            }
        }
        self.sample_proposals(plan, sampling, (heads, head));
    }

    /// `W = mu` (eval) or `mu + f · eps` laid out as the proposals say.
    fn sample_proposals(
        &mut self,
        plan: &Plan,
        sampling: Sampling<'_>,
        (heads, head): (usize, usize),
    ) {
        let (dim, count) = (self.shape.dim, self.count);
        let p = packed_len(dim);
        let eps = match sampling {
            Sampling::Eval => {
                copy_words(self.w, self.mu);
                return;
            }
            Sampling::Noise(eps) => part(eps, heads, head),
        };
        let noise = |e: &i8| plan.noise_to_w.apply(i64::from(*e));
        let mut eps_rows = rows(eps, dim);
        for (c, w_row) in rows_mut(self.w, p).enumerate() {
            let component = c % count.max(1);
            let mu_row = rows(self.mu, p).nth(component).unwrap_or_default();
            let mu_values = unpacked(mu_row, dim);
            let (eps_row, sign) = match plan.config.proposals {
                // W = [mu + eps; mu − eps] from eps [C', d]
                Proposals::Antithetic => {
                    let eps_row = rows(eps, dim).nth(component).unwrap_or_default();
                    (eps_row, if c < count { 1 } else { -1 })
                }
                // W = [mu] + eps or [mu; mu] + eps, eps row c
                Proposals::Single | Proposals::TwoPerLandmark => {
                    (eps_rows.next().unwrap_or_default(), 1)
                }
            };
            let values = mu_values
                .zip(eps_row)
                .map(|(m, e)| clamp_operand(i64::from(m) + sign * noise(e)));
            pack_row(values, dim, w_row);
        }
    }

    /// Per sample over the unmasked keys, blocks of four: `lseK_c` and `kv_c` (transposed,
    /// packed, `V8`).
    #[inline(never)]
    fn key_pass(&mut self, plan: &Plan, x: &Qkv<'_>) {
        let (dim, value_dim, samples) = (self.shape.dim, self.shape.value_dim, self.samples);
        let p = packed_len(dim);
        self.reference.fill(super::fixed_point::EMPTY_REFERENCE);
        self.sum.fill(0);
        self.kv_acc.fill(0);
        let mut keys = rows(x.k, dim)
            .zip(rows(x.v, value_dim))
            .zip(x.unmasked_keys());
        let empty: &[i8] = &[];
        loop {
            let mut block_keys = [None; BLOCK];
            let mut block_values = [empty; BLOCK];
            let mut seen = 0;
            for (key_slot, value_slot) in block_keys.iter_mut().zip(block_values.iter_mut()) {
                let Some(((k_row, v_row), unmasked)) = keys.next() else {
                    break;
                };
                seen += 1;
                if unmasked {
                    *key_slot = Some(k_row);
                    *value_slot = v_row;
                }
            }
            if seen == 0 {
                break;
            }
            if block_keys.iter().all(Option::is_none) {
                continue;
            }
            // |k_j|² of the block
            let norms = block_keys.map(|k| {
                k.map_or(0, |k| {
                    k.iter().map(|&v| i32::from(v) * i32::from(v)).sum::<i32>()
                })
            });
            // (v_0t, v_1t), (v_2t, v_3t) for every column t (0 for absent keys)
            for (t, pair_words) in self.value_pairs.chunks_exact_mut(2).enumerate() {
                let v = block_values.map(|row| row.get(t).map_or(0, |&v| i32::from(v)));
                pair_words[0] = pair(v[0], v[1]);
                pair_words[1] = pair(v[2], v[3]);
            }
            let per_sample = rows(self.w, p)
                .zip(rows_mut(self.kv_acc, value_dim))
                .zip(self.reference.iter_mut().zip(self.sum.iter_mut()))
                .zip(self.weight_pairs.chunks_exact_mut(2));
            for (((w_row, acc), (reference, sum)), weight_words) in per_sample {
                // LK[c, j] = s · (W_c·k_j − |k_j|²/2) in L16
                let mut logits = [None; BLOCK];
                for ((logit, key), &norm) in logits.iter_mut().zip(&block_keys).zip(&norms) {
                    if let Some(k_row) = key {
                        let dot = i64::from(dot_packed_i8(w_row, k_row));
                        let value = plan.key_dot.apply(dot) - plan.key_norm.apply(i64::from(norm));
                        *logit = Some(to_logit(value));
                    }
                }
                let mut state = Running {
                    reference: *reference,
                    sum: *sum as u32,
                };
                let block_max = logits.iter().flatten().copied().max().unwrap_or(0);
                state.raise(block_max, acc);
                let weights_of =
                    |state: &Running| logits.map(|l| l.map_or(0, |l| state.weight(l) as i32));
                let mut weights = weights_of(&state);
                if state.make_room(weights.iter().sum::<i32>() as u32, acc) {
                    weights = weights_of(&state);
                }
                state.sum += weights.iter().sum::<i32>() as u32;
                (*reference, *sum) = (state.reference, state.sum as i32);
                weight_words[0] = pair(weights[0], weights[1]);
                weight_words[1] = pair(weights[2], weights[3]);
            }
            // kv_c += Σ_j w_cj v_j
            accumulate_pairs(self.kv_acc, value_dim, self.weight_pairs, self.value_pairs);
        }
        // lseK_c = reference + log2(sum) − 15 (parked in bias); kv_c = acc / sum as V8
        for ((acc, bias), (&reference, &sum)) in rows_mut(self.kv_acc, value_dim)
            .zip(self.bias.iter_mut())
            .zip(self.reference.iter().zip(self.sum.iter()))
        {
            let state = Running {
                reference,
                sum: sum as u32,
            };
            *bias = state.log_sum();
            super::normalise(acc, state.sum, 8);
        }
        // kv transposed, each column packed as a row of S values (as the query weights)
        let ps = packed_len(samples);
        for (t, kv_t_row) in rows_mut(self.kv_t, ps).enumerate() {
            let column = rows(self.kv_acc, value_dim).map(|row| row.get(t).copied().unwrap_or(0));
            pack_row(column, samples, kv_t_row);
        }
    }

    /// `bias_c = lseK_c − log2 P_c` and `bh_c` from `LM[c, c'] = ℓ(mu_c'; W_c)`.
    #[inline(never)]
    fn densities(&mut self, plan: &Plan) {
        let (dim, count, samples) = (self.shape.dim, self.count.max(1), self.samples);
        let p = packed_len(dim);
        // repeats: each component listed S / C' times in the mis-opt mixture
        let repeats = if samples > count { L16_ONE } else { 0 };
        for (c, ((w_row, bias), balance)) in rows(self.w, p)
            .zip(self.bias.iter_mut())
            .zip(self.balance.iter_mut())
            .enumerate()
        {
            // LM[c, c'] = s · (W_c·mu_c' − |mu_c'|²/2) in L16, its diagonal, max and lse
            let lm_of = |mu_row: &[i32]| {
                let (mut dot, mut norm) = (0i64, 0i64);
                for (w, m) in unpacked(w_row, dim).zip(unpacked(mu_row, dim)) {
                    dot += i64::from(w) * i64::from(m);
                    norm += i64::from(m) * i64::from(m);
                }
                to_logit(plan.density.apply_wide(2 * dot - norm))
            };
            let own = c % count;
            let (mut diagonal, mut max) = (0, i32::MIN);
            for (c2, mu_row) in rows(self.mu, p).enumerate() {
                let lm = lm_of(mu_row);
                max = max.max(lm);
                if c2 == own {
                    diagonal = lm;
                }
            }
            let total: u32 = rows(self.mu, p)
                .map(|mu_row| weight_q15(max.wrapping_sub(lm_of(mu_row)).max(0) as u32))
                .sum();
            // lse_c' LM[c, c'] = max + log2 Σ 2^(LM − max)
            let lse = max + log2_l16(total) - 15 * L16_ONE;
            // bh_c = 2^(LM[c,c] − lse − log2 repeats) in Q27
            let gap = (lse + repeats - diagonal).max(0) as u32;
            *balance = exp2_neg(gap, 27) as i32;
            // log2 P_c: the own component (mis-opt) or the mixture
            let log_p = match plan.config.weighting {
                Weighting::Optimal { .. } => diagonal,
                Weighting::BalanceHeuristic | Weighting::Biased => lse,
            };
            *bias = bias.saturating_sub(log_p);
        }
    }

    /// `mis-opt`'s `lse_i(s · q̄_c·q_i)` over the queries, one query at a time.
    #[inline(never)]
    fn normaliser(&mut self, plan: &Plan, x: &Qkv<'_>, landmarks: Landmarks<'_>) {
        let (dim, p) = (self.shape.dim, packed_len(self.shape.dim));
        let t_dot = t_multiplier(plan, landmarks);
        self.t_reference.fill(super::fixed_point::EMPTY_REFERENCE);
        self.t_sum.fill(0);
        for q_row in rows(x.q, dim) {
            for ((q_bar_row, reference), sum) in rows(self.q_bar, p)
                .zip(self.t_reference.iter_mut())
                .zip(self.t_sum.iter_mut())
            {
                // s · q̄_c·q_i in L16
                let logit = to_logit(t_dot.apply(i64::from(dot_packed_i8(q_bar_row, q_row))));
                let mut state = Running {
                    reference: *reference,
                    sum: *sum as u32,
                };
                state.raise(logit, &mut []);
                let mut weight = state.weight(logit);
                if state.make_room(weight, &mut []) {
                    weight = state.weight(logit);
                }
                state.sum += weight;
                (*reference, *sum) = (state.reference, state.sum as i32);
            }
        }
        for (reference, &sum) in self.t_reference.iter_mut().zip(self.t_sum.iter()) {
            *reference = Running {
                reference: *reference,
                sum: sum as u32,
            }
            .log_sum();
        }
    }

    /// `out_i = Σ_c sniw[c, i] kv_c` for every query of one head.
    #[inline(never)]
    fn query_pass(
        &mut self,
        plan: &Plan,
        x: &Qkv<'_>,
        landmarks: Landmarks<'_>,
        out: &mut Out<'_>,
        head: usize,
    ) {
        let (dim, value_dim) = (self.shape.dim, self.shape.value_dim);
        let (count, samples) = (self.count.max(1), self.samples);
        let (p, ps) = (packed_len(dim), packed_len(samples));
        let t_dot = t_multiplier(plan, landmarks);
        let base = head * self.shape.queries * value_dim;
        let (logits, alphas) = self.block.split_at_mut(samples.min(self.block.len()));
        let out_row = prefix(self.kv_acc, value_dim);
        for (i, q_row) in rows(x.q, dim).enumerate() {
            // logiw − log2 α = s · W_c·q_i + bias_c (the −s|q_i|²/2 term cancels over c)
            for ((logit, w_row), &bias) in
                logits.iter_mut().zip(rows(self.w, p)).zip(self.bias.iter())
            {
                let dot = i64::from(dot_packed_i8(w_row, q_row));
                *logit = to_logit(plan.query_dot.apply(dot) + i64::from(bias));
            }
            match plan.config.weighting {
                Weighting::Biased => {
                    // log2 α[c, i] = s · mu_c·q_i, for each group of C' samples
                    for (c, mu_row) in rows(self.mu, p).enumerate() {
                        let dot = i64::from(dot_packed_i8(mu_row, q_row));
                        let log_alpha = plan.query_dot.apply(dot);
                        for logit in logits.iter_mut().skip(c).step_by(count) {
                            *logit = to_logit(i64::from(*logit) + log_alpha);
                        }
                    }
                }
                Weighting::Optimal { .. } => {
                    // T[c, i] = 2^(s · q̄_c·q_i − lse_i') in Q27, and its mean over c
                    let mut t_total = 0i64;
                    for ((t, q_bar_row), &t_lse) in self
                        .t_row
                        .iter_mut()
                        .zip(rows(self.q_bar, p))
                        .zip(self.t_reference.iter())
                    {
                        let logit =
                            to_logit(t_dot.apply(i64::from(dot_packed_i8(q_bar_row, q_row))));
                        *t = exp2_neg(t_lse.wrapping_sub(logit).max(0) as u32, 27) as i32;
                        t_total += i64::from(*t);
                    }
                    let t_mean = div_round(t_total, count as i64);
                    // α[c, i] = max(bh_c + alpha_coeff · (T[c, i] − mean T), 2^-27) in Q27
                    for (c, (alpha, &balance)) in
                        alphas.iter_mut().zip(self.balance.iter()).enumerate()
                    {
                        let t = self.t_row.get(c % count).copied().unwrap_or(0);
                        let spread = shift_round(plan.alpha_coeff * (i64::from(t) - t_mean), 16);
                        *alpha = (i64::from(balance) + spread).clamp(1, i64::from(i32::MAX)) as i32;
                    }
                }
                Weighting::BalanceHeuristic => {}
            }
            // e_c = 2^(logit_c − max) (Q15); w_c = α_c · e_c (mis-opt) or e_c
            let max = logits.iter().copied().max().unwrap_or(0);
            let optimal = matches!(plan.config.weighting, Weighting::Optimal { .. });
            let weight_of = |c: usize, logit: i32| -> i64 {
                let e = i64::from(exp2_neg(max.wrapping_sub(logit).max(0) as u32, 15));
                if optimal {
                    e * i64::from(alphas.get(c).copied().unwrap_or(1))
                } else {
                    e
                }
            };
            let total: i64 = logits
                .iter()
                .enumerate()
                .map(|(c, &l)| weight_of(c, l))
                .sum();
            // sniw_c ∝ w_c, scaled so that Σ_c < 2^14 (each ≤ 2^14, an i16 operand)
            let bits = 64 - total.max(1).leading_zeros() as i32;
            let shift = bits - 14;
            let normalised = logits
                .iter()
                .enumerate()
                .map(|(c, &l)| shift_round(weight_of(c, l), shift) as i32);
            pack_row(normalised, samples, self.weights_packed);
            let weight_sum: i32 = unpacked(self.weights_packed, samples).sum();
            // out_i = Σ_c sniw_c kv_c = (Σ_c w_c kv_c) / Σ_c w_c, from V8 to V16
            for (o, kv_t_row) in out_row.iter_mut().zip(rows(self.kv_t, ps)) {
                *o = dot_pairs(self.weights_packed, kv_t_row);
            }
            super::normalise(out_row, weight_sum.max(1) as u32, 8);
            plan.requantize.write(out_row, out, base + i * value_dim);
        }
    }
}

/// The multiplier of `s · q̄_c·q_i` for these landmarks.
fn t_multiplier(plan: &Plan, landmarks: Landmarks<'_>) -> Multiplier {
    match landmarks {
        Landmarks::SegmentMeans(_) => plan.t_dot,
        Landmarks::Given { .. } => plan.given_t_dot,
    }
}

/// `sum[t] += row[t]`.
#[inline]
fn add_row(sum: &mut [i32], row: &[i8]) {
    for (s, &v) in sum.iter_mut().zip(row) {
        *s += i32::from(v);
    }
}

/// `dst = src` over the common length.
#[inline]
fn copy_words(dst: &mut [i32], src: &[i32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s;
    }
}
