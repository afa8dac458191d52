//! LARA blocked (the SIMD backends and the one-lane `Backend::Blocked`): each pass streams over blocks of 32 keys or queries, forms
//! the block's logits against every sample with one matrix product (the samples packed,
//! transposed and pre-scaled), reduces the tile column- or row-wise with vector code, and folds
//! it into the running sums with a second matrix product. Same formulas as `scalar.rs`,
//! another association of the sums.

use super::{Density, KeyPass, QueryPass, Weighting, density_terms};
use crate::math::ln;
use crate::simd::tile::{
    BLOCK, add_row, add_shift_max, column_exp_sum, column_max, exp_minus, key_blocks, mask_rows,
    pack_transposed, project_block, raise_running_max, scale_row, shift_row,
};
use crate::simd::{Isa, dot, exp_shifted_sum, gemm, max_of, scale_by_clamped_affine};
use crate::slices::{prefix, rows, rows_mut, take};

/// Scratch of the blocked passes beyond the workspace, for `columns = S + C'` (samples plus
/// landmarks): the packed `[d, columns]` matrix and a `[BLOCK, columns]` tile.
pub(super) const fn tiles_len(columns: usize, dim: usize) -> usize {
    columns.saturating_mul(dim.saturating_add(BLOCK))
}

/// Adds the unmasked keys of `pass.x` to the running key sums of a workspace whose samples `W`
/// are built: per sample, the online `lse_j LK[c, j]` and `Σ_j e^(LK[c, j] − max) v_j`.
#[inline(always)]
pub(super) fn push_keys<I: Isa>(isa: I, pass: KeyPass<'_, '_>) {
    let KeyPass { x, ws, tiles } = pass;
    let shape = x.shape;
    let (dim, value_dim, scale) = (shape.dim, shape.value_dim, shape.scale());
    let samples = ws.samples();
    let mut rest = tiles;
    let packed = take(&mut rest, dim * samples);
    let tile = take(&mut rest, BLOCK * samples);
    // s·Wᵀ [d, S]
    pack_transposed(ws.w, dim, scale, packed, samples, 0);
    for (k_block, v_block, mask) in key_blocks((x.k, x.v, x.key_mask), (dim, value_dim)) {
        // LK[c, j] = s · (W_c·k_j − |k_j|²/2), as a [keys, S] tile; −∞ for masked keys
        let (rows_k, tile) = project_block(isa, k_block, dim, (packed, samples), samples, tile);
        for (row, k_row) in rows_mut(tile, samples).zip(rows(k_block, dim)) {
            shift_row(row, scale * 0.5 * dot(isa, k_row, k_row));
        }
        if !mask_rows(tile, samples, mask) {
            continue;
        }
        column_max(isa, tile, samples, samples, ws.t_row);
        raise_running_max(isa, ws.key_lse, ws.t_row, ws.logits, ws.key_sum);
        // (a maximum the block did not raise leaves its row as it is: r = 1)
        for (kv_row, &r) in rows_mut(ws.kv, value_dim).zip(ws.logits.iter()) {
            if r != 1.0 {
                scale_row(isa, kv_row, r);
            }
        }
        // P = e^(LK − max);  Σ_j P;  kv += Pᵀ · V_block
        column_exp_sum(isa, tile, samples, samples, ws.key_lse, ws.key_sum);
        gemm(
            isa,
            (samples, value_dim, rows_k),
            (tile, 1, samples),
            (v_block, value_dim),
            (ws.kv, value_dim),
            true,
        );
    }
}

/// Adds the queries of `pass.x` to `mis-opt`'s running `lse_i (s · q̄_c·q_i)`, the normaliser
/// of `T` (column-wise over blocks of queries): running maximum in `t_lse`, sum in the first
/// `C'` entries of `key_sum` (free once the key pass is finished).
#[inline(always)]
pub(super) fn push_normaliser<I: Isa>(isa: I, pass: QueryPass<'_, '_>) {
    let QueryPass { x, ws, tiles, .. } = pass;
    let (q, dim, scale) = (x.q, x.shape.dim, x.shape.scale());
    let count = ws.components();
    let mut rest = tiles;
    let packed = take(&mut rest, dim * count);
    let tile = take(&mut rest, BLOCK * count);
    // s·q̄ᵀ [d, C']
    pack_transposed(ws.q_bar, dim, scale, packed, count, 0);
    let (running_max, running_sum) = (&mut *ws.t_lse, prefix(ws.key_sum, count));
    let (block_max, rescale) = (prefix(ws.t_row, count), prefix(ws.logits, count));
    for q_block in q.chunks(BLOCK.saturating_mul(dim).max(1)) {
        let (_, tile) = project_block(isa, q_block, dim, (packed, count), count, tile);
        column_max(isa, tile, count, count, block_max);
        raise_running_max(isa, running_max, block_max, rescale, running_sum);
        column_exp_sum(isa, tile, count, count, running_max, running_sum);
    }
}

/// Blocked LARA query pass on a workspace whose key pass and densities (`bias`, `balance`,
/// and for `mis-opt` the normaliser `t_lse`) are done: `out_i = Σ_c sniw[c, i] kv_c`. `S`
/// samples, `C'` landmarks; sample `c` belongs to component `c mod C'`.
#[inline(always)]
pub(super) fn queries<I: Isa>(isa: I, pass: QueryPass<'_, '_>) {
    let QueryPass {
        x,
        weighting,
        out,
        ws,
        tiles,
    } = pass;
    let (q, shape) = (x.q, x.shape);
    let (dim, value_dim, scale) = (shape.dim, shape.value_dim, shape.scale());
    let (count, samples) = (ws.components(), ws.samples());
    // [s·Wᵀ | s·q̄ᵀ or s·muᵀ] as one [d, S + C'] matrix: one product gives a block of queries
    // both its logits s·W_c·q_i and its α term.
    let ld = samples + count;
    let mut rest = tiles;
    let packed = take(&mut rest, dim * ld);
    let tile = take(&mut rest, BLOCK * ld);
    pack_transposed(ws.w, dim, scale, packed, ld, 0);
    match weighting {
        Weighting::Optimal { .. } => pack_transposed(ws.q_bar, dim, scale, packed, ld, samples),
        Weighting::Biased => pack_transposed(ws.mu, dim, scale, packed, ld, samples),
        Weighting::BalanceHeuristic => {}
    }

    // Query pass: the tile holds [logits | α term] per query (just logits for mis-bh).
    let width = if matches!(weighting, Weighting::BalanceHeuristic) {
        samples
    } else {
        ld
    };
    for (q_block, out_block) in q
        .chunks(BLOCK.saturating_mul(dim).max(1))
        .zip(out.chunks_mut(BLOCK.saturating_mul(value_dim).max(1)))
    {
        // s·W_c·q_i (and s·q̄_c·q_i or s·mu_c·q_i)
        let (rows_q, tile) = project_block(isa, q_block, dim, (packed, ld), width, tile);
        for (row, q_row) in rows_mut(tile, width).zip(rows(q_block, dim)) {
            let (row, alpha_row) = row.split_at_mut(samples.min(row.len()));
            // ℓ(q_i; W_c) + lseK_c − log P_c = s·W_c·q_i + bias_c − s|q_i|²/2, and its maximum
            let q_shift = scale * 0.5 * dot(isa, q_row, q_row);
            let m = add_shift_max(isa, row, ws.bias, q_shift);
            let sum = match weighting {
                Weighting::Optimal { alpha_coeff } => {
                    // T[c, i] = e^(s·q̄_c·q_i − lse_i'(…)), and mean_c T[c, i]
                    let t_mean = exp_minus(isa, alpha_row, ws.t_lse) / count.max(1) as f32;
                    // sniw ∝ α · e^(logit − max): the weight α multiplies instead of adding ln α
                    exp_shifted_sum(isa, row, m);
                    // (a loop, not a closure: the intrinsics must inline into the entry)
                    let mut sum = 0.0;
                    for (group, balance) in rows_mut(row, count).zip(rows(ws.balance, count)) {
                        // x_c *= α[c, i] = max(bh_c + alpha_coeff · (T[c, i] − mean T), 1e-8)
                        let affine = (alpha_coeff, -alpha_coeff * t_mean);
                        sum +=
                            scale_by_clamped_affine(isa, group, (alpha_row, balance), affine, 1e-8);
                    }
                    sum
                }
                Weighting::Biased => {
                    // log α = s · mu_c·q_i, for each group of C' samples
                    for group in rows_mut(row, count) {
                        add_row(isa, group, alpha_row);
                    }
                    let m = max_of(isa, row);
                    exp_shifted_sum(isa, row, m)
                }
                Weighting::BalanceHeuristic => exp_shifted_sum(isa, row, m),
            };
            scale_row(isa, row, 1.0 / sum);
        }
        // out_i = Σ_c sniw[c, i] kv_c
        gemm(
            isa,
            (rows_q, value_dim, samples),
            (tile, width, 1),
            (ws.kv, value_dim),
            (out_block, value_dim),
            false,
        );
    }
}

/// The proposal densities of one head: `LM [S, C'] = s·(W muᵀ − |mu|²/2)` in blocks of 32
/// samples (one matrix product each), then per sample its diagonal entry and row log-sum-exp.
#[inline(always)]
pub(super) fn density<I: Isa>(isa: I, pass: Density<'_, '_>) {
    let Density {
        shape,
        weighting,
        ws,
        tiles,
    } = pass;
    let (dim, scale) = (shape.dim, shape.scale());
    let (count, samples) = (ws.components(), ws.samples());
    let mut rest = tiles;
    let packed = take(&mut rest, dim * count);
    let tile = take(&mut rest, BLOCK * count);
    // s·muᵀ [d, C'] and −s|mu_c'|²/2 (in t_row, free between the passes)
    pack_transposed(ws.mu, dim, scale, packed, count, 0);
    let shift = prefix(ws.t_row, count);
    for (s, &half_norm) in shift.iter_mut().zip(ws.mu_half_norm.iter()) {
        *s = -scale * half_norm;
    }
    let mut per_sample = ws
        .key_lse
        .iter()
        .zip(ws.bias.iter_mut().zip(ws.balance.iter_mut()))
        .enumerate();
    for w_block in ws.w.chunks(BLOCK.saturating_mul(dim).max(1)) {
        // LM[c, c'] = s · (W_c·mu_c' − |mu_c'|²/2)
        let (_, tile) = project_block(isa, w_block, dim, (packed, count), count, tile);
        for (row, (c, (&key_lse, (bias, balance)))) in rows_mut(tile, count).zip(&mut per_sample) {
            // (+ −s|mu_c'|²/2, − 0)
            let max = add_shift_max(isa, row, shift, 0.0);
            let diagonal = row.get(c % count.max(1)).copied().unwrap_or(0.0);
            let lse_lm = max + ln(exp_shifted_sum(isa, row, max));
            let lm = (diagonal, lse_lm);
            (*bias, *balance) = density_terms(lm, key_lse, weighting, (samples, count.max(1)));
        }
    }
}
