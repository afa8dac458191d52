//! RFA blocked (the SIMD backends and the one-lane `Backend::Blocked`): the projections of a block of 32 keys or queries onto
//! every feature as one matrix product against the packed, pre-scaled `ω`, the features by
//! vector code, and the key sums `Σ φ(k) vᵀ` as a second matrix product.

use super::{
    DENOMINATOR_FLOOR, FEATURE_FLOOR, FeatureScales, FeatureState, Features, max_scaled_half_norm,
};
use crate::math::{half_sq_norm, sin_cos};
use crate::simd::tile::{
    BLOCK, add_row, affine_row, key_blocks, mask_rows, pack_transposed, project_block, scale_row,
};
use crate::simd::{Isa, Scalar, dot, exp, exp_shifted_sum, gemm, max_of, scale_add};
use crate::slices::{prefix, rows, rows_mut, take};
use core::iter::repeat;

/// Scratch of the blocked positive-feature kernel: the packed projection `[d, S]` and a
/// `[BLOCK, S]` tile.
pub(super) const fn positive_tiles_len(features: usize, dim: usize) -> usize {
    features.saturating_mul(dim.saturating_add(BLOCK))
}

/// Scratch of the blocked trigonometric kernel: the packed projection `[d, S]` and a
/// `[BLOCK, 2S]` tile.
pub(super) const fn trigonometric_tiles_len(features: usize, dim: usize) -> usize {
    features.saturating_mul(dim.saturating_add(2 * BLOCK))
}

/// Blocked Performer / RFA positive features (the official `favorp_projection` +
/// `linear_attention`), with the key state in `state` and the tiles in `extra`.
#[inline(always)]
pub(super) fn positive<I: Isa>(isa: I, kernel: Features<'_, '_>) {
    let (x, out, omega, features, state, tiles) = kernel.head_parts();
    let shape = x.shape;
    let (dim, value_dim) = (shape.dim, shape.value_dim);
    let scales = FeatureScales::new(shape, features);
    let mut rest = tiles;
    let omega_packed = take(&mut rest, dim * features);
    let tile = take(&mut rest, BLOCK * features);
    // d^-1/4 · Ωᵀ [d, S]
    pack_transposed(omega, dim, scales.data, omega_packed, features, 0);

    // Key pass: kv_r = Σ_m e^(B[m,r] − s|k_m|²/2 − M) v_m, k_sum_r = Σ_m e^(…), relative to the
    // running maximum M of B.
    let FeatureState {
        kv, k_sum, v_sum, ..
    } = state;
    kv.fill(0.0);
    k_sum.fill(0.0);
    v_sum.fill(0.0);
    let mut running_max = f32::NEG_INFINITY;
    for (k_block, v_block, mask) in key_blocks((x.k, x.v, x.key_mask), (dim, value_dim)) {
        // B[m, r] = d^-1/4 k_m·ω_r; −∞ for masked keys (φk = 0)
        let (rows_k, tile) =
            project_block(isa, k_block, dim, (omega_packed, features), features, tile);
        if !mask_rows(tile, features, mask) {
            continue;
        }
        let block_max = max_of(isa, tile);
        if block_max > running_max {
            let rescale = exp(Scalar, running_max - block_max);
            scale_row(isa, kv, rescale);
            scale_row(isa, k_sum, rescale);
            running_max = block_max;
        }
        for (row, k_row) in rows_mut(tile, features).zip(rows(k_block, dim)) {
            // e^(B[m, r] − s|k_m|²/2 − M);  k_sum += that row
            exp_shifted_sum(
                isa,
                row,
                scales.half_norm * half_sq_norm(k_row) + running_max,
            );
            add_row(isa, k_sum, row);
        }
        let unmasked = mask.iter().map(|&masked| !masked).chain(repeat(true));
        for (v_row, _) in rows(v_block, value_dim).zip(unmasked).filter(|&(_, u)| u) {
            add_row(isa, v_sum, v_row);
        }
        // kv += Eᵀ · V_block
        gemm(
            isa,
            (features, value_dim, rows_k),
            (tile, 1, features),
            (v_block, value_dim),
            (kv, value_dim),
            true,
        );
    }
    // Σ_m φk[m,r] v_m = S^-1/2 kv_r + 1e-4 Σ_m v_m;  Σ_m φk[m,r] = S^-1/2 k_sum_r + 1e-4 n_k
    for kv_row in rows_mut(kv, value_dim) {
        scale_add(isa, kv_row, scales.ratio, FEATURE_FLOOR, v_sum);
    }
    let key_floor = FEATURE_FLOOR * x.unmasked_count() as f32;
    for s in k_sum.iter_mut() {
        *s = scales.ratio * *s + key_floor;
    }

    // Query pass.
    for (q_block, out_block) in
        x.q.chunks(BLOCK.saturating_mul(dim).max(1))
            .zip(out.chunks_mut(BLOCK.saturating_mul(value_dim).max(1)))
    {
        // A[i, r] = d^-1/4 q_i·ω_r
        let (_, tile) = project_block(isa, q_block, dim, (omega_packed, features), features, tile);
        for (row, q_row) in rows_mut(tile, features).zip(rows(q_block, dim)) {
            // φq[i, r] = S^-1/2 e^(A[i,r] − s|q_i|²/2 − max_r' A[i,r']) + 1e-4
            let stabiliser = max_of(isa, row) + scales.half_norm * half_sq_norm(q_row);
            exp_shifted_sum(isa, row, stabiliser);
            affine_row(isa, row, scales.ratio, FEATURE_FLOOR);
        }
        linear_attention_block(isa, (tile, features), (kv, k_sum), value_dim, out_block);
    }
}

/// Blocked RFA with trigonometric features (the official `fourier_projection` +
/// `linear_attention`): projections and sums as matrix products, `sin`/`cos` per element.
#[inline(always)]
pub(super) fn trigonometric<I: Isa>(isa: I, kernel: Features<'_, '_>) {
    let (x, out, omega, features, state, tiles) = kernel.head_parts();
    let shape = x.shape;
    let (dim, value_dim, total) = (shape.dim, shape.value_dim, 2 * features);
    let scales = FeatureScales::new(shape, features);
    let mut rest = tiles;
    let omega_packed = take(&mut rest, dim * features);
    let tile = take(&mut rest, BLOCK * total);
    // d^-1/4 · Ωᵀ [d, S]
    pack_transposed(omega, dim, scales.data, omega_packed, features, 0);
    let FeatureState { kv, k_sum, .. } = state;
    kv.fill(0.0);
    k_sum.fill(0.0);
    let key_max = max_scaled_half_norm(scales, x.k, dim, x.key_mask);
    for (k_block, v_block, mask) in key_blocks((x.k, x.v, x.key_mask), (dim, value_dim)) {
        let rows_k = k_block.len() / dim.max(1);
        let tile = prefix(tile, rows_k * total);
        fourier_block(
            isa,
            (dim, features),
            scales,
            omega_packed,
            k_block,
            key_max,
            tile,
        );
        // φ(k_m) = 0 for masked keys
        for (row, _) in rows_mut(tile, total)
            .zip(mask)
            .filter(|&(_, &masked)| masked)
        {
            row.fill(0.0);
        }
        for row in rows(tile, total) {
            add_row(isa, k_sum, row);
        }
        // kv += Φ_kᵀ · V_block
        gemm(
            isa,
            (total, value_dim, rows_k),
            (tile, 1, total),
            (v_block, value_dim),
            (kv, value_dim),
            true,
        );
    }
    let query_max = max_scaled_half_norm(scales, x.q, dim, None);
    for (q_block, out_block) in
        x.q.chunks(BLOCK.saturating_mul(dim).max(1))
            .zip(out.chunks_mut(BLOCK.saturating_mul(value_dim).max(1)))
    {
        let rows_q = q_block.len() / dim.max(1);
        let tile = prefix(tile, rows_q * total);
        fourier_block(
            isa,
            (dim, features),
            scales,
            omega_packed,
            q_block,
            query_max,
            tile,
        );
        linear_attention_block(isa, (tile, total), (kv, k_sum), value_dim, out_block);
    }
}

/// `φ(x_i) = S^-1/2 e^(s|x_i|²/2 − max_h) [sin A[i, ·], cos A[i, ·]]` for a block of rows, into
/// `tile [rows, 2S]` (a function, not a closure: everything under a `#[target_feature]` entry
/// must be inlined into it, and closures are not reliably).
#[inline(always)]
fn fourier_block<I: Isa>(
    isa: I,
    (dim, features): (usize, usize),
    scales: FeatureScales,
    omega_packed: &[f32],
    block: &[f32],
    max_h: f32,
    tile: &mut [f32],
) {
    let total = 2 * features;
    // A[i, r] = d^-1/4 x_i·ω_r, into the first S columns of each row
    gemm(
        isa,
        (block.len() / dim.max(1), features, dim),
        (block, dim, 1),
        (omega_packed, features),
        (tile, total),
        false,
    );
    for (row, x) in rows_mut(tile, total).zip(rows(block, dim)) {
        let magnitude = scales.ratio * exp(Scalar, scales.half_norm * half_sq_norm(x) - max_h);
        let (sines, cosines) = row.split_at_mut(features.min(row.len()));
        for (sine, cosine) in sines.iter_mut().zip(cosines.iter_mut()) {
            let (sin, cos) = sin_cos(*sine);
            *sine = magnitude * sin;
            *cosine = magnitude * cos;
        }
    }
}

/// The linear-attention output of a block of queries from their features `phi [rows, F]`:
/// `out_i = φ_i · kv / max(φ_i · k_sum, 1e-2)` (the official `linear_attention`).
#[inline(always)]
fn linear_attention_block<I: Isa>(
    isa: I,
    (phi, features): (&[f32], usize),
    (kv, k_sum): (&[f32], &[f32]),
    value_dim: usize,
    out_block: &mut [f32],
) {
    let rows_q = phi.len() / features.max(1);
    // num_i = φ_i · kv
    gemm(
        isa,
        (rows_q, value_dim, features),
        (phi, features, 1),
        (kv, value_dim),
        (&mut *out_block, value_dim),
        false,
    );
    for (out_row, phi_row) in rows_mut(out_block, value_dim).zip(rows(phi, features)) {
        // out_i = num_i / max(φ_i · k_sum, 1e-2)
        let denominator = dot(isa, phi_row, k_sum);
        scale_row(isa, out_row, 1.0 / denominator.max(DENOMINATOR_FLOOR));
    }
}
