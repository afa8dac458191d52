//! The scalar reference kernels of LARA's key and query passes, one key or query at a time.

use super::{Weighting, Workspace, density_terms};
use crate::Shape;
use crate::inputs::Qkv;
use crate::math::{KEY_BLOCK, OnlineLse, axpy, dot, exp, half_sq_norm, ln, softmax_in_place};
use crate::slices::{prefix, rows, rows_mut};

impl Workspace<'_> {
    /// `out_i = Σ_c sniw[c, i] kv_c` query by query, on a workspace whose densities (and, for
    /// `mis-opt`, the normaliser of `T`) are done. (None of the scalar passes is inlined into
    /// its caller: on Cortex-M the frames would add up, kept apart the stack peak is the
    /// largest of them.)
    #[inline(never)]
    pub(super) fn queries_scalar(
        &mut self,
        shape: Shape,
        weighting: Weighting,
        q: &[f32],
        out: &mut [f32],
    ) {
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

    /// Adds the unmasked keys of `x` to the running key sums: per sample, the online
    /// `lse_j ℓ(k_j; W_c)` (running maximum `key_lse`, sum `key_sum`) and `kv_c`. Each block of
    /// [`KEY_BLOCK`] keys is summed on its own in `logits` (free until the query pass) before
    /// it joins `key_sum`.
    #[inline(never)]
    pub(super) fn push_keys_scalar(&mut self, x: &Qkv<'_>) {
        let shape = x.shape;
        let scale = shape.scale();
        let keys = rows(x.k, shape.dim).zip(rows(x.v, shape.value_dim));
        let block_sums = prefix(self.logits, self.key_sum.len());
        block_sums.fill(0.0);
        for (j, ((k_row, v_row), unmasked)) in keys.zip(x.unmasked_keys()).enumerate() {
            if unmasked {
                let k_half_norm = half_sq_norm(k_row);
                let samples = rows(self.w, shape.dim).zip(rows_mut(self.kv, shape.value_dim));
                let sums = self.key_lse.iter_mut().zip(self.key_sum.iter_mut());
                for ((w_row, kv_row), ((max, sum), block)) in
                    samples.zip(sums.zip(block_sums.iter_mut()))
                {
                    // LK[c, j] = s · (W_c·k_j − |k_j|²/2)
                    let log_feature = scale * (dot(w_row, k_row) - k_half_norm);
                    let mut state = OnlineLse {
                        max: *max,
                        sum: *sum,
                    };
                    state.push_in_block(block, log_feature, v_row, kv_row);
                    (*max, *sum) = (state.max, state.sum);
                }
            }
            if (j + 1) % KEY_BLOCK == 0 {
                join_blocks(self.key_sum, block_sums);
            }
        }
        join_blocks(self.key_sum, block_sums);
    }

    /// Adds the queries `q` to `mis-opt`'s running `lse_i (s · q̄_c·q_i)`, the normaliser of
    /// `T[c, ·]` (a softmax over the query axis): running maximum in `t_lse`, sum in the first
    /// `C'` entries of `key_sum` (free once the key pass is finished), blocks of [`KEY_BLOCK`]
    /// queries summed on their own in `t_row` (free until the query pass).
    #[inline(never)]
    pub(super) fn push_normaliser_scalar(&mut self, shape: Shape, q: &[f32]) {
        let scale = shape.scale();
        let count = self.components();
        let (max, sum) = (&mut *self.t_lse, prefix(self.key_sum, count));
        let block_sums = prefix(self.t_row, count);
        block_sums.fill(0.0);
        for (i, q_row) in rows(q, shape.dim).enumerate() {
            let components = rows(self.q_bar, shape.dim).zip(max.iter_mut());
            for ((q_bar_row, max), (sum, block)) in
                components.zip(sum.iter_mut().zip(block_sums.iter_mut()))
            {
                let mut state = OnlineLse {
                    max: *max,
                    sum: *sum,
                };
                state.push_in_block(block, scale * dot(q_bar_row, q_row), &[], &mut []);
                (*max, *sum) = (state.max, state.sum);
            }
            if (i + 1) % KEY_BLOCK == 0 {
                join_blocks(sum, block_sums);
            }
        }
        join_blocks(sum, block_sums);
    }

    /// `bias_c` and `bh_c` of every sample from `LM[c, c'] = ℓ(mu_c'; W_c)`, one dot product at
    /// a time.
    #[inline(never)]
    pub(super) fn density_scalar(&mut self, shape: Shape, weighting: Weighting) {
        let scale = shape.scale();
        let (samples, count) = (self.samples(), self.components().max(1));
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
            let lm = (diagonal, lse.log_sum_exp());
            (*bias, *balance) = density_terms(lm, key_lse, weighting, (samples, count));
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

/// `sum += block` and `block = 0`, per entry: the end of a block of terms.
fn join_blocks(sum: &mut [f32], block: &mut [f32]) {
    for (sum, block) in sum.iter_mut().zip(block) {
        *sum += *block;
        *block = 0.0;
    }
}
