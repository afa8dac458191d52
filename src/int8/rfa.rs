//! RFA with positive features (FAVOR+, the official stabilisers, `+1e-4` floor and `1e-2`
//! clamp) on int8 inputs, in the fixed-point formats of the [module docs](super):
//!
//! ```text
//! A[i,r] = d^-1/4 q_i·ω_r,  hq_i = s|q_i|²/2     B[m,r] = d^-1/4 k_m·ω_r,  hk_m = s|k_m|²/2   (L16)
//! φk[m,r] = S^-1/2 · 2^(B − hk − M) + 1e-4,  M = max_{m,r} B   (streamed: blocks of four keys,
//!           a reference ≥ M, i32 sums Σ 2^(B − hk − reference) v_m and Σ 2^(…), halved as needed)
//! KV_r = Σ_m φk[m,r] v_m,  K_r = Σ_m φk[m,r]     (i64 in 2^-24, then i16 with a shared exponent)
//! φq[i,r] = S^-1/2 · 2^(A − hq − max_r A) + 1e-4   (Q31, then ≤ 2^14 with a per-query exponent)
//! out_i  = Σ_r φq KV_r / max(Σ_r φq K_r, 1e-2)   (V16)
//! ```
//!
//! `ω [h, S, d]` is `i8` with its own scale (the plan's). Scratch: [`scratch_len`] `i32`s,
//! independent of `n`.

use super::fixed_point::{
    EMPTY_REFERENCE, L16_ONE, Multiplier, Reciprocal, SUM_LIMIT, exp2_neg, exp2_neg_parts,
    shift_round, to_logit, weight_q15,
};
use super::{Out, Qkv, Requantize, Scales, check_logit_bound, check_scale, multiplier};
use crate::error::{Arg, Error};
use crate::shape::{Shape, expect_len, take_scratch_of};
use crate::simd::int8::{
    accumulate_pairs, dot_packed_i8, dot_pairs, pack_i8_row, pack_row, packed_len, pair,
};
use crate::slices::{part, rows, rows_mut, take};

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
    query_projection: Multiplier,
    key_projection: Multiplier,
    /// `s · scale_q² / 2` and `s · scale_k² / 2` per `|x|²`, to `L16`.
    query_norm: Multiplier,
    key_norm: Multiplier,
    /// `S^-1/2` in `Q16`.
    ratio: i64,
    requantize: Requantize,
}

impl Plan {
    /// The plan for head dimension `dim`, these scales, `ω` quantised with `omega_scale`, and
    /// `features` projections (`f32` arithmetic, once).
    ///
    /// # Errors
    /// [`Error::InvalidScale`], [`Error::ZeroFeatures`], [`Error::FixedPointRange`] for
    /// `dim > 512`, more than 4096 features or scales whose projections can exceed `2^12`
    /// (base 2).
    pub fn new(
        dim: usize,
        scales: &Scales,
        omega_scale: f32,
        features: usize,
    ) -> Result<Self, Error> {
        scales.check()?;
        check_scale(omega_scale, Arg::Omega)?;
        super::check_dim(dim)?;
        if features == 0 {
            return Err(Error::ZeroFeatures);
        }
        if features > MAX_FEATURES {
            return Err(Error::FixedPointRange("more than 4096 features"));
        }
        let s = 1.0 / libm::sqrtf(dim as f32);
        let s4 = libm::sqrtf(s);
        let d = dim as f32;
        let max_omega = 128.0 * omega_scale;
        let (max_q, max_k) = (128.0 * scales.q, 128.0 * scales.k);
        check_logit_bound(
            s4 * d * max_omega * max_q.max(max_k)
                + s * d * max_q.max(max_k) * max_q.max(max_k) / 2.0,
            "RFA projections: d^-1/4 · d · max|x| · max|ω| + s · d · max|x|²/2 above 2839",
        )?;
        let l16 = super::L16_PER_NAT;
        let why = "a product of the RFA scales outside the f32 range";
        Ok(Plan {
            dim,
            features,
            query_projection: multiplier(s4 * scales.q * omega_scale * l16, why)?,
            key_projection: multiplier(s4 * scales.k * omega_scale * l16, why)?,
            query_norm: multiplier(s * scales.q * scales.q * 0.5 * l16, why)?,
            key_norm: multiplier(s * scales.k * scales.k * 0.5 * l16, why)?,
            ratio: (65536.0 / libm::sqrtf(features as f32) + 0.5) as i64,
            requantize: Requantize::new(scales)?,
        })
    }
}

/// Scratch (in `i32`s) of [`attention`] with `S` features: with `P = ⌈d/2⌉`, `PS = ⌈S/2⌉`,
/// `S·P + S·d_v + 8·S + d_v·PS + 3·d_v + 2·PS`.
pub const fn scratch_len(shape: Shape, features: usize) -> usize {
    let (p, ps, dv) = (packed_len(shape.dim), packed_len(features), shape.value_dim);
    features
        .saturating_mul(p)
        .saturating_add(features.saturating_mul(dv))
        .saturating_add(features.saturating_mul(8))
        .saturating_add(dv.saturating_mul(ps))
        .saturating_add(dv.saturating_mul(3))
        .saturating_add(ps.saturating_mul(2))
}

/// Keys per block of the key pass.
const BLOCK: usize = 4;

/// RFA (positive features) of the int8 inputs `x` with `omega [h, S, d]` into `out`
/// (`[h, n_q, d_v]`).
///
/// # Errors
/// A zero dimension, a length that does not match (`omega` must be `[h, S, d]` with the plan's
/// `S`), a plan made for another `d` ([`Error::PlanMismatch`]), a mask that masks every key,
/// the limits of the [module docs](super), scratch shorter than [`scratch_len`]. Nothing is
/// written on error.
pub fn attention(
    plan: &Plan,
    x: &Qkv<'_>,
    omega: &[i8],
    mut out: Out<'_>,
    scratch: &mut [i32],
) -> Result<(), Error> {
    x.check(out.len())?;
    let shape = x.shape;
    if plan.dim != shape.dim {
        return Err(Error::PlanMismatch);
    }
    let features = plan.features;
    expect_len(Arg::Omega, omega.len(), shape.stacked(features, shape.dim)?)?;
    let mut ws = Workspace::split(
        take_scratch_of(scratch, scratch_len(shape, features))?,
        shape,
        features,
    );
    let heads = shape.heads;
    for head in 0..heads {
        let x = x.head(head);
        for (packed, omega_row) in
            rows_mut(ws.omega, packed_len(shape.dim)).zip(rows(part(omega, heads, head), shape.dim))
        {
            pack_i8_row(omega_row, packed);
        }
        let exponents = ws.key_pass(plan, &x);
        ws.query_pass(plan, &x, exponents, &mut out, head);
    }
    Ok(())
}

/// The scratch of one head.
struct Workspace<'a> {
    shape: Shape,
    features: usize,
    /// `ω [S, d]`, packed rows.
    omega: &'a mut [i32],
    /// `Σ_m 2^(B − hk − reference) v_m`, `[S, d_v]`; in the query pass, one output row.
    acc: &'a mut [i32],
    /// `Σ_m 2^(B − hk − reference)` (`Q15`), `[S]`.
    key_sum: &'a mut [i32],
    /// Per block: `B − hk` `[S, 4]`; per query: `A` `[S]`.
    block: &'a mut [i32],
    /// Per block: `(w_r0, w_r1), (w_r2, w_r3)` `[S, 2]`.
    weight_pairs: &'a mut [i32],
    /// `(v_0t, v_1t), (v_2t, v_3t)` `[d_v, 2]`.
    value_pairs: &'a mut [i32],
    /// `Σ_m v_m`, `[d_v]`.
    value_sum: &'a mut [i32],
    /// `KV_r` (`i16`, shared exponent), transposed and packed, `[d_v, ⌈S/2⌉]`.
    kv_t: &'a mut [i32],
    /// `K_r` (`i16`, shared exponent), packed, `[⌈S/2⌉]`.
    k_packed: &'a mut [i32],
    /// Per query: `φq` (`≤ 2^14`), packed, `[⌈S/2⌉]`.
    phi_packed: &'a mut [i32],
}

/// The exponents of the key summaries: `KV_r = kv_t · 2^(kv − 24)`, `K_r = k · 2^(k − 24)`.
#[derive(Clone, Copy)]
struct Exponents {
    kv: i32,
    k: i32,
}

impl<'a> Workspace<'a> {
    fn split(scratch: &'a mut [i32], shape: Shape, features: usize) -> Self {
        let (p, ps, dv) = (packed_len(shape.dim), packed_len(features), shape.value_dim);
        let mut rest = scratch;
        Workspace {
            shape,
            features,
            omega: take(&mut rest, features * p),
            acc: take(&mut rest, features * dv),
            key_sum: take(&mut rest, features),
            block: take(&mut rest, features * BLOCK),
            weight_pairs: take(&mut rest, features * 2),
            value_pairs: take(&mut rest, dv * 2),
            value_sum: take(&mut rest, dv),
            kv_t: take(&mut rest, dv * ps),
            k_packed: take(&mut rest, ps),
            phi_packed: take(&mut rest, ps),
        }
    }

    /// The key summaries `KV_r`, `K_r` of one head, one streaming pass over blocks of four keys.
    #[inline(never)]
    fn key_pass(&mut self, plan: &Plan, x: &Qkv<'_>) -> Exponents {
        let (dim, value_dim, features) = (self.shape.dim, self.shape.value_dim, self.features);
        let p = packed_len(dim);
        self.acc.fill(0);
        self.key_sum.fill(0);
        self.value_sum.fill(0);
        // M = max B so far, reference ≥ M (L16)
        let (mut max, mut reference) = (EMPTY_REFERENCE, EMPTY_REFERENCE);
        let mut key_count = 0i64;
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
            // B[m, r] in L16, the block's max of B, and B − hk into the block tile
            let mut block_max = i32::MIN;
            for (j, key) in block_keys.iter().enumerate() {
                let Some(k_row) = key else { continue };
                key_count += 1;
                let norm: i32 = k_row.iter().map(|&v| i32::from(v) * i32::from(v)).sum();
                let half_norm = plan.key_norm.apply(i64::from(norm));
                for (omega_row, tile_row) in rows(self.omega, p).zip(rows_mut(self.block, BLOCK)) {
                    let b = to_logit(
                        plan.key_projection
                            .apply(i64::from(dot_packed_i8(omega_row, k_row))),
                    );
                    block_max = block_max.max(b);
                    if let Some(slot) = tile_row.get_mut(j) {
                        *slot = to_logit(i64::from(b) - half_norm);
                    }
                }
            }
            if reference == EMPTY_REFERENCE {
                (max, reference) = (block_max, block_max);
            } else if block_max > max {
                max = block_max;
                if max > reference {
                    // rescale every sum by 2^(reference − M) (Q15)
                    let factor = i64::from(exp2_neg(max.wrapping_sub(reference) as u32, 15));
                    for a in self.acc.iter_mut().chain(self.key_sum.iter_mut()) {
                        *a = shift_round(i64::from(*a) * factor, 15) as i32;
                    }
                    reference = max;
                }
            }
            // w[r, j] = 2^(B − hk − reference) (Q15); halve while a sum would pass 2^23
            let weight = |reference: i32, logit: i32| {
                weight_q15(reference.wrapping_sub(logit).max(0) as u32) as i32
            };
            loop {
                let fits =
                    rows(self.block, BLOCK)
                        .zip(self.key_sum.iter())
                        .all(|(tile_row, &sum)| {
                            let block_sum: i32 = tile_row
                                .iter()
                                .zip(&block_keys)
                                .filter(|(_, k)| k.is_some())
                                .map(|(&l, _)| weight(reference, l))
                                .sum();
                            (sum as u32).saturating_add(block_sum as u32) <= SUM_LIMIT
                        });
                if fits {
                    break;
                }
                for a in self.acc.iter_mut().chain(self.key_sum.iter_mut()) {
                    *a = (*a >> 1) + (*a & 1);
                }
                reference = reference.saturating_add(L16_ONE);
            }
            for ((tile_row, sum), words) in rows(self.block, BLOCK)
                .zip(self.key_sum.iter_mut())
                .zip(self.weight_pairs.chunks_exact_mut(2))
            {
                let mut w = [0i32; BLOCK];
                for ((wj, &l), key) in w.iter_mut().zip(tile_row).zip(&block_keys) {
                    if key.is_some() {
                        *wj = weight(reference, l);
                    }
                }
                *sum += w.iter().sum::<i32>();
                words[0] = pair(w[0], w[1]);
                words[1] = pair(w[2], w[3]);
            }
            for ((t, words), value_sum) in self
                .value_pairs
                .chunks_exact_mut(2)
                .enumerate()
                .zip(self.value_sum.iter_mut())
            {
                let v = block_values.map(|row| row.get(t).map_or(0, |&v| i32::from(v)));
                words[0] = pair(v[0], v[1]);
                words[1] = pair(v[2], v[3]);
                *value_sum += v.iter().sum::<i32>();
            }
            // Σ_m 2^(B − hk − reference) v_m
            accumulate_pairs(self.acc, value_dim, self.weight_pairs, self.value_pairs);
        }
        // 2^(reference − M) · S^-1/2 / 2^15 as c · 2^shift: reference − M = X = 65536·Xi + Xf,
        // 2^X = 2^(Xi + 1) · 2^-(65536 − Xf)/65536 = mantissa · 2^(Xi + 1 − 24 − k)
        let gap = reference.wrapping_sub(max).max(0);
        let (whole, fraction) = (gap >> 16, gap & 0xFFFF);
        let (mantissa, k) = exp2_neg_parts((L16_ONE - fraction) as u32);
        let c = (plan.ratio * i64::from(mantissa)) >> 24; // Q16
        // KV_r[t], K_r in units of 2^-24: c · sum · 2^(Xi + 1 − k − 15 − 16 + 24)
        let up = whole + 1 - k as i32 - 7;
        let kv_of = |acc: i32, floor_part: i64| {
            shift_round(c * i64::from(acc), -up) + FLOOR_Q24 * floor_part
        };
        // shared exponents: the largest |KV| and K to 15 bits
        let mut kv_max = 0u64;
        for (acc_row, _) in rows(self.acc, value_dim).zip(0..features) {
            for (&a, &vs) in acc_row.iter().zip(self.value_sum.iter()) {
                kv_max = kv_max.max(kv_of(a, i64::from(vs)).unsigned_abs());
            }
        }
        let k_max = self
            .key_sum
            .iter()
            .map(|&s| kv_of(s, key_count).unsigned_abs())
            .max()
            .unwrap_or(1);
        let exponent_of = |m: u64| 64 - m.max(1).leading_zeros() as i32 - 15;
        let exponents = Exponents {
            kv: exponent_of(kv_max),
            k: exponent_of(k_max),
        };
        let ps = packed_len(features);
        for (t, kv_t_row) in rows_mut(self.kv_t, ps).enumerate() {
            let value_sum = i64::from(self.value_sum.get(t).copied().unwrap_or(0));
            let column = rows(self.acc, value_dim).map(|row| {
                let kv = kv_of(row.get(t).copied().unwrap_or(0), value_sum);
                shift_round(kv, exponents.kv).clamp(-32767, 32767) as i32
            });
            pack_row(column, features, kv_t_row);
        }
        let k_values = self
            .key_sum
            .iter()
            .map(|&s| shift_round(kv_of(s, key_count), exponents.k).clamp(0, 32767) as i32);
        pack_row(k_values, features, self.k_packed);
        exponents
    }

    /// `out_i = Σ_r φq KV_r / max(Σ_r φq K_r, 1e-2)` for every query of one head.
    #[inline(never)]
    fn query_pass(
        &mut self,
        plan: &Plan,
        x: &Qkv<'_>,
        exponents: Exponents,
        out: &mut Out<'_>,
        head: usize,
    ) {
        let (dim, value_dim, features) = (self.shape.dim, self.shape.value_dim, self.features);
        let (p, ps) = (packed_len(dim), packed_len(features));
        let base = head * self.shape.queries * value_dim;
        let projections = crate::slices::prefix(self.block, features);
        let out_row = crate::slices::prefix(self.acc, value_dim);
        for (i, q_row) in rows(x.q, dim).enumerate() {
            // A[i, r] (L16), max_r A, hq
            for (a, omega_row) in projections.iter_mut().zip(rows(self.omega, p)) {
                *a = to_logit(
                    plan.query_projection
                        .apply(i64::from(dot_packed_i8(omega_row, q_row))),
                );
            }
            let max = projections.iter().copied().max().unwrap_or(0);
            let norm: i32 = q_row.iter().map(|&v| i32::from(v) * i32::from(v)).sum();
            let shift = i64::from(max) + plan.query_norm.apply(i64::from(norm));
            // φq[r] = S^-1/2 · 2^(A − max − hq) + 1e-4 in Q31
            let phi = |a: i32| -> u64 {
                let gap = (shift - i64::from(a)).clamp(0, i64::from(u32::MAX)) as u32;
                (plan.ratio as u64) * u64::from(exp2_neg(gap, 15)) + FLOOR_Q31
            };
            let total: u64 = projections.iter().map(|&a| phi(a)).sum();
            // φq scaled to a sum below 2^14: φq = φ' · 2^(q_exponent − 31)
            let q_exponent = 64 - total.max(1).leading_zeros() as i32 - 14;
            pack_row(
                projections
                    .iter()
                    .map(|&a| shift_round(phi(a) as i64, q_exponent) as i32),
                features,
                self.phi_packed,
            );
            // den = Σ_r φq K_r, clamped at 1e-2 = CLAMP_Q30 · 2^-30 in the units of den
            let den = i64::from(dot_pairs(self.phi_packed, self.k_packed));
            let floor = shift_round(CLAMP_Q30, -(25 - q_exponent - exponents.k).clamp(-62, 32));
            // (a clamped den can pass 2^32: keep its top 32 bits and the shift)
            let den = den.max(floor).max(1);
            let excess = 32 - den.leading_zeros().min(32) as i32;
            let den = (den >> excess) as u32;
            let reciprocal = Reciprocal::new(den);
            // out = Σ_r φq KV_r / den · 2^(kv − k), as V16
            let extra = exponents.kv - exponents.k + 16 - excess;
            for (o, kv_t_row) in out_row.iter_mut().zip(rows(self.kv_t, ps)) {
                let num = dot_pairs(self.phi_packed, kv_t_row);
                *o = super::fixed_point::saturate_i32(reciprocal.divide(num, extra));
            }
            plan.requantize.write(out_row, out, base + i * value_dim);
        }
    }
}
