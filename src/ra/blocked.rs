//! RA blocked (the SIMD backends and the one-lane `Backend::Blocked`): per block of 32 queries, the proposals `W_i`, then
//! [`flash_block`] with the key bias `s·|k_j|²/2`.

use super::{MeanKind, Ra};
use crate::exact::{KeyTerms, flash_block, flash_scratch_len};
use crate::inputs::Noise;
use crate::simd::Isa;
use crate::simd::tile::{BLOCK, add_row};
use crate::slices::{copy, prefix, rows, rows_mut, take};

/// Scratch of the blocked kernel: a block of proposals `[BLOCK, d]` and the flash tiles.
pub(super) const fn tiles_len(dim: usize) -> usize {
    dim.saturating_mul(BLOCK)
        .saturating_add(flash_scratch_len(dim))
}

/// RA over the queries of one head, a block of queries at a time.
#[inline(always)]
pub(super) fn attention<I: Isa, N: Noise>(isa: I, kernel: Ra<'_, '_, '_, '_, N>) {
    let Ra {
        x,
        mean,
        out,
        ws,
        tiles,
        draws,
    } = kernel;
    let shape = x.shape;
    let (dim, value_dim, scale) = (shape.dim, shape.value_dim, shape.scale());
    let mut flash_scratch = tiles;
    let w_block = take(&mut flash_scratch, BLOCK * dim);
    for (q_block, out_block) in
        x.q.chunks(BLOCK.saturating_mul(dim).max(1))
            .zip(out.chunks_mut(BLOCK.saturating_mul(value_dim).max(1)))
    {
        let w_block = prefix(w_block, q_block.len());
        match mean {
            // mu_i = q_i + k̄
            MeanKind::KeyAverage => {
                for w_row in rows_mut(w_block, dim) {
                    copy(w_row, ws.key_mean);
                }
            }
            // mu_i = q_i + Σ_j softmax_j(s · q_i·k_j) k_j  (−∞ for masked keys)
            MeanKind::AttentionWeighted => {
                let terms = KeyTerms {
                    bias: None,
                    mask: x.key_mask,
                };
                flash_block(
                    isa,
                    (dim, dim),
                    scale,
                    (q_block, x.k, x.k),
                    terms,
                    w_block,
                    flash_scratch,
                );
            }
            // mu_i = q_i + k_{J_i}: the key is added once drawn
            MeanKind::Key => w_block.fill(0.0),
        }
        add_row(isa, w_block, q_block);
        for (w_row, q_row) in rows_mut(w_block, dim).zip(rows(q_block, dim)) {
            // W_i = mu_i + f · eps_i
            let key_index = draws.perturb(x, w_row, q_row);
            if mean == MeanKind::Key
                && let Some(k_row) = rows(x.k, dim).nth(key_index)
            {
                add_row(isa, w_row, k_row);
            }
        }
        // out_i = Σ_j softmax_j(s · W_i·k_j − s·|k_j|²/2) v_j  (−∞ for masked keys)
        let terms = KeyTerms {
            bias: Some(ws.key_half_norms),
            mask: x.key_mask,
        };
        flash_block(
            isa,
            (dim, value_dim),
            scale,
            (w_block, x.k, x.v),
            terms,
            out_block,
            flash_scratch,
        );
    }
}
