//! RFA with positive features (FAVOR+, the official stabilisers, `+1e-4` floor and `1e-2`
//! clamp) on int8 inputs, in the fixed-point formats of the [module docs](super):
//!
//! ```text
//! A[i,r] = d^-1/4 q_i·ω_r,  hq_i = s|q_i|²/2     B[m,r] = d^-1/4 k_m·ω_r,  hk_m = s|k_m|²/2   (L16)
//! φk[m,r] = S^-1/2 · 2^(B − hk − M) + 1e-4,  M = max_{m,r} B   (streamed: blocks of eight keys,
//!           per feature a reference ≥ its B − hk, i32 sums Σ 2^(B − hk − reference) v_m and
//!           Σ 2^(…), rescaled as the reference rises; at the end · 2^(reference − M))
//! KV_r = Σ_m φk[m,r] v_m,  K_r = Σ_m φk[m,r]     (i64 in 2^-24, then i16 with a shared exponent)
//! φq[i,r] = S^-1/2 · 2^(A − hq − max_r A) + 1e-4   (Q31, then ≤ 2^14 with a per-query exponent)
//! out_i  = Σ_r φq KV_r / max(Σ_r φq K_r, 1e-2)   (V16)
//! ```
//!
//! `ω [h, S, d]` is `i8` with its own scale (the plan's). Scratch: [`scratch_len`] `i32`s,
//! independent of `n`.

use super::fixed_point::{
    ABSENT, Scale32, bits64, exp2_neg, pow2_fraction_q30, shift_round, top_word,
};
// (the key pass's own loop at opt-level 3; built for size, the shared one)
#[cfg(not(lara_attn_compact))]
use super::fixed_point::EMPTY_REFERENCE;
#[cfg(not(lara_attn_compact))]
use crate::simd::int8::pack_value_blocks;
// (the portable per-element loops; Helium has its own, in `super::helium`, but when built for
// size)
#[cfg(any(not(lara_attn_helium), lara_attn_compact))]
use super::fixed_point::to_logit;
#[cfg(not(any(lara_attn_helium, lara_attn_compact)))]
use super::store_logit_column;
use super::{
    Out, Qkv, Requantize, Rows, Scales, check_logit_bound, check_scale, const_try, scale32,
    squared_norm,
};
use crate::error::{Arg, Error};
use crate::math::sqrt;
use crate::shape::{Shape, expect_len};
use crate::simd::int8::portable_squared_norm;
use crate::simd::int8::{
    KEY_BLOCK, Loops, ROWS, VALUE_BLOCK_WORDS, WEIGHT_WORDS, block_words, dot_blocks,
    pack_byte_block, padded, padded_bytes, pair_dot_blocks, pair_row_words, pair_slot, set_slot,
};
use crate::slices::{chunks_mut, nth_part, parts_len, rows, split_workspace};

/// The official `+1e-4` feature floor in units of `2^-24` and `2^-31`.
const FLOOR_Q24: i64 = 1678;
const FLOOR_Q31: u64 = 214_748;
/// The official `1e-2` denominator clamp in `Q30`.
const CLAMP_Q30: i64 = 10_737_418;
/// The largest number of features.
pub const MAX_FEATURES: usize = 4096;

/// The fixed-point constants of int8 RFA (positive features) for one head dimension, scales,
/// `ω` scale and number of features `S`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    dim: usize,
    features: usize,
    /// `d^-1/4 · scale_q · scale_ω` and `d^-1/4 · scale_k · scale_ω`, to `L16`.
    query_projection: Scale32,
    key_projection: Scale32,
    /// `s · scale_q² / 2` and `s · scale_k² / 2` per `|x|²`, to `L16`.
    query_norm: Scale32,
    key_norm: Scale32,
    /// `S^-1/2` in `Q16`.
    ratio: i64,
    requantize: Requantize,
}

impl Plan {
    /// The plan for head dimension `dim`, these scales, `ω` quantised with `omega_scale`, and
    /// `features` projections (`f32` arithmetic, once; a `const fn`, see the
    /// [module docs](super)).
    ///
    /// # Errors
    /// [`Error::InvalidScale`], [`Error::ZeroFeatures`], [`Error::FixedPointRange`] for
    /// `dim > 512`, more than 4096 features or scales whose projections can exceed `2^12`
    /// (base 2).
    pub const fn new(
        dim: usize,
        scales: &Scales,
        omega_scale: f32,
        features: usize,
    ) -> Result<Self, Error> {
        const_try!(scales.check());
        const_try!(check_scale(omega_scale, Arg::Omega));
        const_try!(super::check_dim(dim));
        if features == 0 {
            return Err(Error::ZeroFeatures);
        }
        if features > MAX_FEATURES {
            return Err(Error::FixedPointRange("more than 4096 features"));
        }
        let s = 1.0 / sqrt(dim as f32);
        let s4 = sqrt(s);
        let d = dim as f32;
        let max_omega = 128.0 * omega_scale;
        let max_x = 128.0 * scales.q.max(scales.k);
        const_try!(check_logit_bound(
            s4 * d * max_omega * max_x + s * d * max_x * max_x / 2.0,
            "RFA projections: d^-1/4 · d · max|x| · max|ω| + s · d · max|x|²/2 above 2839",
        ));
        let l16 = super::L16_PER_NAT;
        let limit = 16384 * dim as u32;
        let why = "a product of the RFA scales outside the range of the fixed-point logits";
        Ok(Plan {
            dim,
            features,
            query_projection: const_try!(scale32(s4 * scales.q * omega_scale * l16, limit, why)),
            key_projection: const_try!(scale32(s4 * scales.k * omega_scale * l16, limit, why)),
            query_norm: const_try!(scale32(s * scales.q * scales.q * 0.5 * l16, limit, why)),
            key_norm: const_try!(scale32(s * scales.k * scales.k * 0.5 * l16, limit, why)),
            ratio: (65536.0 / sqrt(features as f32) + 0.5) as i64,
            requantize: const_try!(Requantize::new(scales)),
        })
    }
}

/// The parts of the scratch with `S` features, in words, in the order of the parts of [`Workspace`].
const fn workspace_parts(shape: Shape, features: usize) -> [usize; 14] {
    let feature_rows = features.div_ceil(ROWS) * ROWS;
    let groups = shape.value_dim.div_ceil(ROWS);
    // the kv blocks hold one more column: K
    let kv_groups = (shape.value_dim + 1).div_ceil(ROWS);
    [
        feature_rows / ROWS * block_words(shape.dim),
        groups * ROWS,
        kv_groups * block_words(features),
        pair_row_words(features),
        feature_rows,
        kv_groups * ROWS,
        // the stream: accumulators, references, sums, logits, weights, values, dots, key row
        groups * feature_rows * ROWS,
        feature_rows,
        feature_rows,
        feature_rows * KEY_BLOCK,
        feature_rows * WEIGHT_WORDS,
        groups * VALUE_BLOCK_WORDS,
        feature_rows,
        padded(shape.dim) / 4,
    ]
}

/// Scratch (in `i32`s) of [`attention`] with `S` features: with `S₄ = ⌈S/4⌉`, blocks of four
/// rows of `P` words (`2·d` rounded up to whole chunks), `G = ⌈d_v/4⌉`, `G' = ⌈(d_v + 1)/4⌉`:
/// `S₄·P + 16·G·S₄ + 60·S₄ + 20·G + G'·block(S) + 4·G' + ⌈S/2⌉`, independent of `n`.
pub const fn scratch_len(shape: Shape, features: usize) -> usize {
    parts_len(&workspace_parts(shape, features))
}

/// RFA (positive features) of the int8 inputs `x` with `omega [h, S, d]` into `out`
/// (`[h, n_q, d_v]`).
///
/// # Errors
/// A zero dimension, a length that does not match (`omega` must be `[h, S, d]` with the plan's
/// `S`), a plan made for another `d` ([`Error::PlanMismatch`]), a mask that masks every key,
/// the limits of the [module docs](super), scratch shorter than [`scratch_len`]. Nothing is
/// written on error.
#[inline(always)]
pub fn attention(
    plan: &Plan,
    x: &Qkv<'_>,
    omega: &[i8],
    out: Out<'_>,
    scratch: &mut [i32],
) -> Result<(), Error> {
    match out {
        Out::I8(out) => attend(plan, x, omega, out, scratch),
        Out::F32(out) => attend(plan, x, omega, out, scratch),
    }
}

/// [`attention`] into one kind of output (see [`Rows`]).
fn attend<O: Rows>(
    plan: &Plan,
    x: &Qkv<'_>,
    omega: &[i8],
    mut out: O,
    scratch: &mut [i32],
) -> Result<(), Error> {
    x.check(out.len())?;
    let shape = x.shape;
    if plan.dim != shape.dim {
        return Err(Error::PlanMismatch);
    }
    let features = plan.features;
    expect_len(Arg::Omega, omega.len(), shape.stacked(features, shape.dim)?)?;
    split_workspace!(
        ws = scratch,
        workspace_parts(shape, features),
        Workspace {
            shape: shape,
            loops: Loops::active(),
            features: features,
        } => {
            omega,
            value_sum,
            kv,
            phi,
            projections,
            out_row,
        } stream {
            acc,
            reference,
            sum,
            logits,
            weights,
            values,
            dots,
            shared,
        }
    );
    let heads = shape.heads;
    let (dim, block) = (shape.dim, block_words(shape.dim));
    for head in 0..heads {
        let x = x.head(head);
        let omega = nth_part(omega, features * dim, head);
        for (b, packed) in chunks_mut(ws.omega, block).enumerate() {
            let valid = features.saturating_sub(b * ROWS);
            pack_byte_block(omega, (b * ROWS, valid), dim, packed);
        }
        let exponents = ws.key_pass(plan, &x);
        ws.query_pass(plan, &x, exponents, &mut out, head);
    }
    Ok(())
}

/// The scratch of one head.
struct Workspace<'a> {
    shape: Shape,
    /// The inner loops of this call (of its backend).
    loops: Loops,
    features: usize,
    /// `ω [S, d]` in byte blocks.
    omega: &'a mut [i32],
    /// The streaming pass's parts: `Σ_m 2^(B − hk − reference_r) v_m` `[⌈d_v/4⌉][S][4]`
    /// (`acc`), the `L16` references and `Q15` sums `Σ_m 2^(B − hk − reference_r)` `[S]`, a
    /// block of `B − hk` (`L16`) `[S][KEY_BLOCK]` and of `Q15` weights in pairs
    /// `[S][WEIGHT_WORDS]`, a block of values, the projections of one key `[S]` (`dots`) and
    /// a key or query row padded to whole chunks (`shared`).
    stream: super::KeyStream<'a>,
    /// `KV_r` (columns `0..d_v`) and `K_r` (column `d_v`), `i16` with shared exponents, pair
    /// blocks of four columns by `S`.
    kv: &'a mut [i32],
    /// `Σ_m v_m` over the counted keys, `[d_v]`.
    value_sum: &'a mut [i32],
    /// Per query: `φq` (`≤ 2^14`) in pairs, `[⌈S/2⌉]`.
    phi: &'a mut [i32],
    /// Per query: `A` (`L16`), `[S]`.
    projections: &'a mut [i32],
    /// One output row of sums, and `Σ φq K` after it.
    out_row: &'a mut [i32],
}

/// The exponents of the key summaries: `KV_r = kv · 2^(kv − 24)`, `K_r = k · 2^(k − 24)`.
#[derive(Clone, Copy)]
struct Exponents {
    kv: i32,
    k: i32,
}

impl<'a> Workspace<'a> {
    /// The key summaries `KV_r`, `K_r` of one head, one streaming pass over blocks of keys.
    #[inline(never)]
    fn key_pass(&mut self, plan: &Plan, x: &Qkv<'_>) -> Exponents {
        let features = self.features;
        let feature_rows = features.div_ceil(ROWS) * ROWS;
        crate::slices::fill(self.value_sum, 0);
        // M = max B over every key and feature (L16)
        let mut max = ABSENT;
        let mut key_count = 0i64;
        // (built for size: the shared streaming loop, B = d^-1/4 k_m·ω_r by its block_logits,
        // then B − hk, the largest B and Σ v_m per block; the same bits)
        #[cfg(lara_attn_compact)]
        {
            let value_sum = &mut *self.value_sum;
            let mut adjust = |logits: &mut [i32], first: usize, counted: [bool; KEY_BLOCK]| {
                let sums = (&mut *value_sum, &mut max, &mut key_count);
                adjust_key_block(plan, x, features, sums, (logits, first, counted));
            };
            let logit = (plan.key_projection, None);
            let rows = (features, feature_rows);
            super::stream_keys(
                self.loops,
                x,
                self.omega,
                logit,
                rows,
                &mut self.stream,
                Some(&mut adjust),
            );
        }
        #[cfg(not(lara_attn_compact))]
        {
            let value_dim = self.shape.value_dim;
            crate::slices::fill(self.stream.reference, EMPTY_REFERENCE);
            crate::slices::fill(self.stream.sum, 0);
            crate::slices::fill(self.stream.acc, 0);
            crate::slices::fill(self.stream.weights, 0);
            for first in (0..self.shape.keys).step_by(KEY_BLOCK) {
                let counted = x.block_keys(first);
                pack_value_blocks(x.v, value_dim, (first, counted), self.stream.values);
                let (block_max, counted_keys) = self.key_block_logits(plan, x, (first, counted));
                max = max.max(block_max);
                key_count += i64::from(counted_keys);
                super::admit_rows(
                    self.stream.logits,
                    self.stream.weights,
                    (self.stream.reference, self.stream.sum),
                    features,
                    self.stream.acc,
                    feature_rows,
                );
                // Σ_m 2^(B − hk − reference_r) v_m
                super::accumulate_groups(
                    self.loops,
                    self.stream.acc,
                    feature_rows * ROWS,
                    self.stream.weights,
                    self.stream.values,
                );
            }
        }
        self.finish_keys(plan, max, key_count)
    }

    /// `value_sum += v_j` and one more key in `key_count` if key `j` counts and its row is
    /// there.
    #[cfg(not(lara_attn_compact))]
    #[inline(always)]
    fn add_value_row(&mut self, x: &Qkv<'_>, (j, counts): (usize, bool), key_count: &mut u32) {
        let value_dim = self.shape.value_dim;
        let start = j * value_dim;
        if let Some(v_row) = x.v.get(start..start + value_dim).filter(|_| counts) {
            *key_count += 1;
            for (s, &v) in self.value_sum.iter_mut().zip(v_row) {
                *s += i32::from(v);
            }
        }
    }

    /// `B[m, r] − hk_m` (`L16`, `ABSENT` for masked and missing keys) of the keys
    /// `first..first + 8` into `logits`, and `Σ_m v_m` of those that count: their largest `B`
    /// and their number (built for size: see [`key_pass`](Self::key_pass)).
    #[cfg(not(lara_attn_compact))]
    #[inline(never)]
    fn key_block_logits(
        &mut self,
        plan: &Plan,
        x: &Qkv<'_>,
        (first, counted): (usize, [bool; KEY_BLOCK]),
    ) -> (i32, u32) {
        let (dim, features) = (self.shape.dim, self.features);
        let feature_rows = features.div_ceil(ROWS) * ROWS;
        let (mut max, mut key_count) = (ABSENT, 0u32);
        // (Helium: every key of the block counts and the features fill whole blocks, the
        // value sums here and the logits of all eight keys in one asm block)
        #[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
        if let Some(rows) =
            x.k.get(first * dim..(first + KEY_BLOCK) * dim)
                .filter(|_| features.is_multiple_of(ROWS) && counted.iter().all(|&c| c))
        {
            let half_norms: [i32; KEY_BLOCK] = core::array::from_fn(|jj| {
                let k_row = rows.get(jj * dim..(jj + 1) * dim).unwrap_or_default();
                plan.key_norm.apply(squared_norm(k_row))
            });
            let dots = self.stream.dots.get_mut(..feature_rows).unwrap_or_default();
            let scale = (plan.key_projection.parts(), &half_norms);
            let rows = (&*self.omega, rows, dim);
            let block = crate::simd::int8::dot_projection_block(
                self.loops,
                rows,
                dots,
                self.stream.logits,
                scale,
                max,
            );
            if let Some(block_max) = block {
                for jj in 0..KEY_BLOCK {
                    self.add_value_row(x, (first + jj, true), &mut key_count);
                }
                return (block_max, key_count);
            }
        }
        for (jj, &counts) in counted.iter().enumerate() {
            self.add_value_row(x, (first + jj, counts), &mut key_count);
            let start = (first + jj) * dim;
            let Some(k_row) = x.k.get(start..start + dim).filter(|_| counts) else {
                for r in 0..feature_rows {
                    if let Some(slot) = self.stream.logits.get_mut(r * KEY_BLOCK + jj) {
                        *slot = ABSENT;
                    }
                }
                continue;
            };
            // B[m, r] = d^-1/4 k_m·ω_r and hk = s|k_m|²/2 in L16; B − hk into the block
            let half_norm = plan.key_norm.apply(squared_norm(k_row));
            let dots = self.stream.dots.get_mut(..feature_rows).unwrap_or_default();
            dot_blocks(
                self.loops,
                self.omega,
                padded_bytes(k_row, self.stream.shared),
                dots,
            );
            // into column jj of feature r's block (Helium: 4 rows at a time, the features'
            // largest projection, then the padding rows)
            #[cfg(lara_attn_helium)]
            {
                let offset = (plan.key_projection, half_norm);
                let (real, padding) = dots.split_at(features.min(dots.len()));
                let block_max =
                    super::helium::projection_column(self.stream.logits, jj, real, offset);
                max = max.max(block_max);
                let rest = self
                    .stream
                    .logits
                    .get_mut(real.len() * KEY_BLOCK..)
                    .unwrap_or_default();
                super::helium::projection_column(rest, jj, padding, offset);
            }
            #[cfg(not(lara_attn_helium))]
            store_logit_column(self.stream.logits, jj, dots, |r, dot| {
                let projection = to_logit(plan.key_projection.apply(dot));
                if r < features {
                    max = max.max(projection);
                }
                to_logit(projection - half_norm)
            });
        }
        (max, key_count)
    }

    /// The key summaries `KV_r`, `K_r` as `i16` with shared exponents, from the sums after the
    /// last key (`M` the largest `B`; out of line: its frame off the streaming loop's path).
    #[inline(never)]
    fn finish_keys(&mut self, plan: &Plan, max: i32, key_count: i64) -> Exponents {
        let features = self.features;
        // per feature, S^-1/2 · 2^(reference_r − M) as c_r · 2^(e_r − 16) (c_r in Q16): c_r
        // into `projections`, e_r into `dots`
        for r in 0..features
            .min(self.projections.len())
            .min(self.stream.dots.len())
        {
            let gap = self
                .stream
                .reference
                .get(r)
                .copied()
                .unwrap_or(0)
                .wrapping_sub(max);
            let (whole, fraction) = (gap >> 16, (gap & 0xFFFF) as u32);
            // 2^(fraction/65536) = mantissa · 2^-30, mantissa in [2^30, 2^31]
            let mantissa = if fraction == 0 {
                1u64 << 30
            } else {
                2 * u64::from(pow2_fraction_q30(65536 - fraction))
            };
            self.projections[r] = ((plan.ratio as u64 * mantissa) >> 30) as i32;
            self.stream.dots[r] = whole;
        }
        // shared exponents: the largest |KV| and K to 15 bits
        let (kv_max, k_max) = self.summaries(key_count, None);
        let exponent_of = |m: u64| bits64(m.max(1)) as i32 - 15;
        let exponents = Exponents {
            kv: exponent_of(kv_max),
            k: exponent_of(k_max),
        };
        crate::slices::fill(self.kv, 0);
        self.summaries(key_count, Some(exponents));
        exponents
    }

    /// Every summary ([`summary`](Self::summary)) once: without exponents the largest `|KV|`
    /// and `K` (`K` at least 1); with them, each into `kv` as `i16` (`KV_r` with the shared
    /// exponent `kv`, `K_r ≥ 0` with `k`). (One loop for both passes of
    /// [`finish_keys`](Self::finish_keys): built for size, out of line; elsewhere inlined into
    /// each, the code of two loops.)
    #[cfg_attr(not(lara_attn_compact), inline(always))]
    #[cfg_attr(lara_attn_compact, inline(never))]
    fn summaries(&mut self, key_count: i64, exponents: Option<Exponents>) -> (u64, u64) {
        let (value_dim, features) = (self.shape.value_dim, self.features);
        let kv_block = block_words(features);
        // (KV at 0 and K at 1; built for size one shift_round for both, with the column's
        // exponent and floor; at opt-level 3 a branch and one inlined shift_round each: 1 %
        // fewer instructions for RFA on the M4F)
        let compact = cfg!(lara_attn_compact);
        let mut maxima = [0u64, 1];
        for r in 0..features {
            let scale = self.summary_scale(r);
            for t in 0..=value_dim {
                let summary = self.summary(scale, r, t, key_count);
                let column = usize::from(t >= value_dim) & 1;
                let Some(exponents) = exponents else {
                    maxima[column] = maxima[column].max(summary.unsigned_abs());
                    continue;
                };
                // KV_r to i16 with the shared exponent, K_r likewise (K ≥ 0)
                let word = if compact {
                    let (exponent, low) = [(exponents.kv, -32767), (exponents.k, 0)][column];
                    shift_round(summary, exponent).clamp(low, 32767)
                } else if t < value_dim {
                    shift_round(summary, exponents.kv).clamp(-32767, 32767)
                } else {
                    shift_round(summary, exponents.k).clamp(0, 32767)
                };
                if let Some(kv) = self.kv.get_mut(t / ROWS * kv_block..) {
                    set_slot(kv, pair_slot(t % ROWS, r), word as i32);
                }
            }
        }
        (maxima[0], maxima[1])
    }

    /// `KV_r[t]` (`t < d_v`) or `K_r` (`t = d_v`) in units of `2^-24`:
    /// `c_r · sum · 2^(e_r − 16 − 15 + 24) + 1e-4 · Σ`, the sums `Σ_m 2^(B − hk − reference_r)
    /// v_m` (or without `v_m`) and `Σ v_m` (or the number of keys), `(c_r, shift)` of
    /// [`summary_scale`](Self::summary_scale). (Inlined into `finish_keys`' loops on the
    /// Helium and DSP cores: fewer instructions there; out of line elsewhere.)
    #[cfg_attr(
        all(any(lara_attn_helium, lara_attn_dsp), not(lara_attn_compact)),
        inline(always)
    )]
    #[cfg_attr(
        not(all(any(lara_attn_helium, lara_attn_dsp), not(lara_attn_compact))),
        inline(never)
    )]
    fn summary(&self, (c, shift): (i64, i32), r: usize, t: usize, key_count: i64) -> i64 {
        let value_dim = self.shape.value_dim;
        let feature_rows = self.features.div_ceil(ROWS) * ROWS;
        let (sum, floor_part) = if t < value_dim {
            let acc = self
                .stream
                .acc
                .get((t / ROWS) * feature_rows * ROWS + r * ROWS + t % ROWS);
            let value_sum = self.value_sum.get(t).copied().unwrap_or(0);
            (acc.copied().unwrap_or(0), i64::from(value_sum))
        } else {
            (self.stream.sum.get(r).copied().unwrap_or(0), key_count)
        };
        shift_round(c * i64::from(sum), shift) + FLOOR_Q24 * floor_part
    }

    /// `(c_r, 7 − e_r)` of feature `r` for [`summary`](Self::summary) (the shift clamped to
    /// `±62`), once per feature.
    #[inline(always)]
    fn summary_scale(&self, r: usize) -> (i64, i32) {
        let c = i64::from(self.projections.get(r).copied().unwrap_or(0));
        let whole = self.stream.dots.get(r).copied().unwrap_or(0);
        (c, (7 - whole).clamp(-62, 62))
    }

    /// `out_i = Σ_r φq KV_r / max(Σ_r φq K_r, 1e-2)` for every query of one head.
    #[inline(never)]
    fn query_pass(
        &mut self,
        plan: &Plan,
        x: &Qkv<'_>,
        exponents: Exponents,
        out: &mut impl Rows,
        head: usize,
    ) {
        let (dim, value_dim, features) = (self.shape.dim, self.shape.value_dim, self.features);
        let feature_rows = features.div_ceil(ROWS) * ROWS;
        let packed = pair_row_words(features);
        let base = head * self.shape.queries * value_dim;
        for (i, q_row) in rows(x.q, dim).enumerate() {
            // A[i, r] (L16), max_r A, hq
            let projections = self.projections.get_mut(..feature_rows).unwrap_or_default();
            dot_blocks(
                self.loops,
                self.omega,
                padded_bytes(q_row, self.stream.shared),
                projections,
            );
            let projections = projections.get_mut(..features).unwrap_or_default();
            // (Helium: 4 lanes at a time, the largest in the same loop)
            #[cfg(lara_attn_helium)]
            let max = match super::helium::projections(projections, plan.query_projection) {
                _ if projections.is_empty() => 0,
                max => max,
            };
            #[cfg(not(lara_attn_helium))]
            for a in projections.iter_mut() {
                *a = to_logit(plan.query_projection.apply(*a));
            }
            #[cfg(not(lara_attn_helium))]
            let max = projections.iter().copied().max().unwrap_or(0);
            // (the portable |q|²: the DSP one, inlined here, costs more than it saves on the M4F)
            let norm = plan.query_norm.apply(portable_squared_norm(q_row));
            // (Helium: φq 4 lanes at a time, once each, when norm ≥ 0 (always: a positive
            // factor of |q|²) and the ratio fits u32)
            #[cfg(lara_attn_helium)]
            if let (true, Ok(ratio)) = (norm >= 0, u32::try_from(plan.ratio)) {
                const _: () = assert!(FLOOR_Q31 < 1 << 32);
                let total =
                    super::helium::rfa_phi(projections, (max, norm), ratio, FLOOR_Q31 as u32);
                let q_exponent = bits64(total.max(1)) as i32 - 14;
                crate::slices::fill(self.phi, 0);
                super::helium::pack_rounded(projections, self.phi, q_exponent);
                self.finish_query(
                    plan,
                    (exponents, q_exponent),
                    packed,
                    (out, base + i * value_dim),
                );
                continue;
            }
            let shift = i64::from(max) + i64::from(norm);
            // φq[r] = S^-1/2 · 2^(A − max − hq) + 1e-4 in Q31
            let phi = |a: i32| -> u64 {
                let gap = (shift - i64::from(a)).clamp(0, i64::from(u32::MAX)) as u32;
                (plan.ratio as u64) * u64::from(exp2_neg(gap, 15)) + FLOOR_Q31
            };
            // each φq once, in place of its A (< 2^32: S^-1/2 ≤ 2^16 in Q16 and 2^(…) ≤ 2^15),
            // and their sum
            let total = asm_phi(projections, (max, norm), plan.ratio).unwrap_or_else(|| {
                let mut total = 0u64;
                for a in projections.iter_mut() {
                    let phi = phi(*a);
                    total += phi;
                    *a = phi as u32 as i32;
                }
                total
            });
            // φq scaled to a sum below 2^14: φq = φ' · 2^(q_exponent − 31)
            let q_exponent = bits64(total.max(1)) as i32 - 14;
            crate::slices::fill(self.phi, 0);
            let done = asm_pack(self.phi, projections, q_exponent);
            for (r, &phi) in projections.iter().enumerate().skip(done) {
                let phi = i64::from(phi as u32);
                set_slot(self.phi, r, shift_round(phi, q_exponent) as i32);
            }
            self.finish_query(
                plan,
                (exponents, q_exponent),
                packed,
                (out, base + i * value_dim),
            );
        }
    }

    /// The output row of one query from its packed `φq` (scaled by `2^(q_exponent − 31)`).
    #[inline(always)]
    fn finish_query(
        &mut self,
        plan: &Plan,
        (exponents, q_exponent): (Exponents, i32),
        packed: usize,
        (out, offset): (&mut impl Rows, usize),
    ) {
        let value_dim = self.shape.value_dim;
        {
            // Σ_r φq KV_r (columns 0..d_v) and Σ_r φq K_r (column d_v)
            let shared = self.phi.get(..packed).unwrap_or_default();
            pair_dot_blocks(self.loops, self.kv, shared, self.out_row);
            // den = Σ_r φq K_r, clamped at 1e-2 = CLAMP_Q30 · 2^-30 in the units of den
            let den = i64::from(self.out_row.get(value_dim).copied().unwrap_or(0));
            let floor = shift_round(CLAMP_Q30, -(25 - q_exponent - exponents.k).clamp(-62, 32));
            // (a clamped den can pass 2^32: keep its top 32 bits and the shift)
            let den = den.max(floor).max(1);
            let excess = bits64(den as u64).saturating_sub(32);
            let den = top_word(den as u64, excess);
            let excess = excess as i32;
            // out = Σ_r φq KV_r / den · 2^(kv − k − excess)
            let row = self.out_row.get(..value_dim).unwrap_or_default();
            let extra = exponents.kv - exponents.k - excess;
            plan.requantize.write_row(row, den, extra, out, offset);
        }
    }
}

/// Built for size, the step of [`Workspace::key_pass`] on each block of logits `B` (see
/// there): `B − hk` in place, the largest `B` of the features into `max`, `Σ v_m` and the
/// number of the keys that count (out of line: its frame off the streaming loop's path).
#[cfg(lara_attn_compact)]
#[inline(never)]
fn adjust_key_block(
    plan: &Plan,
    x: &Qkv<'_>,
    features: usize,
    (value_sum, max, key_count): (&mut [i32], &mut i32, &mut i64),
    (logits, first, counted): (&mut [i32], usize, [bool; KEY_BLOCK]),
) {
    let (dim, value_dim) = (x.shape.dim, x.shape.value_dim);
    let feature_rows = features.div_ceil(ROWS) * ROWS;
    for (jj, &counts) in counted.iter().enumerate() {
        let j = first + jj;
        // Σ v_m and the count of the keys that count (add_value_row's steps)
        let v_row = x.v.get(j * value_dim..(j + 1) * value_dim);
        if let Some(v_row) = v_row.filter(|_| counts) {
            *key_count += 1;
            for (s, &v) in value_sum.iter_mut().zip(v_row) {
                *s += i32::from(v);
            }
        }
        let Some(k_row) = x.k.get(j * dim..(j + 1) * dim).filter(|_| counts) else {
            continue;
        };
        // B − hk, hk = s|k_m|²/2 in L16
        let half_norm = plan.key_norm.apply(squared_norm(k_row));
        let rows = chunks_mut(logits, KEY_BLOCK).take(feature_rows);
        for (r, row) in rows.enumerate() {
            if let Some(slot) = row.get_mut(jj) {
                if r < features {
                    *max = (*max).max(*slot);
                }
                *slot = to_logit(*slot - half_norm);
            }
        }
    }
}

/// RFA's `φq` and their sum in asm on the DSP cores without Helium when `max + hq` fits an
/// `i32` (`hq ≥ 0`, a positive factor of `|q|²`) and the ratio a `u32` (the same gaps, the same
/// bits as the portable loop); `None` there otherwise and elsewhere.
#[inline(always)]
fn asm_phi(projections: &mut [i32], (max, norm): (i32, i32), ratio: i64) -> Option<u64> {
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
    if let (true, Some(top), Ok(ratio)) = (norm >= 0, max.checked_add(norm), u32::try_from(ratio)) {
        const _: () = assert!(FLOOR_Q31 < 1 << 32);
        return super::dsp::rfa_phi(projections, top, ratio, FLOOR_Q31 as u32);
    }
    #[cfg(not(all(lara_attn_dsp, not(lara_attn_helium))))]
    let _ = (projections, max, norm, ratio);
    None
}

/// The first `φq` in pairs, `round(φ / 2^q_exponent)` (half up, `φ` as `u32`) as [`set_slot`]
/// puts them, in asm on the DSP cores without Helium for `q_exponent` in `1..=32`; returns how
/// many (even; 0 otherwise and elsewhere: the portable loop does the rest).
#[inline(always)]
fn asm_pack(words: &mut [i32], phi: &[i32], q_exponent: i32) -> usize {
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
    if let Some(pairs) = phi.as_chunks::<2>().0.get(..words.len().min(phi.len() / 2)) {
        let shift = u32::try_from(q_exponent).unwrap_or(0);
        if super::dsp::pack_rounded(words, pairs, shift).is_some() {
            return 2 * pairs.len();
        }
    }
    #[cfg(not(all(lara_attn_dsp, not(lara_attn_helium))))]
    let _ = (words, phi, q_exponent);
    0
}
