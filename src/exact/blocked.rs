//! Exact attention blocked (the SIMD backends and the one-lane `Backend::Blocked`): flash attention, the `32 × 32` logit tile of
//! a block of queries and a block of keys in L1, one matrix product for the logits and one for
//! the value sums. RA's blocked kernel runs on the same [`flash_block`].

use super::Exact;
use crate::simd::tile::{
    BLOCK, column_exp_sum, column_max, key_blocks, mask_rows, pack_transposed, project_block,
    raise_running_max, scale_row, shift_row,
};
use crate::simd::{Isa, gemm};
use crate::slices::{rows_mut, take};

/// Scratch of [`flash_block`]: the packed queries `[d, BLOCK]`, the logit tile
/// `[BLOCK, BLOCK]` and the running maximum, sum, rescale factors and block maximum `[BLOCK]`
/// each.
pub(crate) const fn flash_scratch_len(dim: usize) -> usize {
    dim.saturating_mul(BLOCK)
        .saturating_add(BLOCK * BLOCK + 4 * BLOCK)
}

/// What [`flash_block`] adds to the logit `s · k_j·q_i` of each key.
#[derive(Clone, Copy, Default)]
pub(crate) struct KeyTerms<'a> {
    /// A per-key bias subtracted from the logit (RA's `s·|k_j|²/2`), `[n_k]`.
    pub(crate) bias: Option<&'a [f32]>,
    /// `−∞` for the keys a key padding mask marks, `[n_k]`.
    pub(crate) mask: Option<&'a [bool]>,
}

/// Flash attention for one block of at most [`BLOCK`] query rows:
/// `out_i = Σ_j softmax_j(scale · q_i·k_j + term_j) v_j`, streaming over blocks of keys
/// with an online softmax per query (the tile of logits stays in L1).
#[inline(always)]
pub(crate) fn flash_block<I: Isa>(
    isa: I,
    (dim, value_dim): (usize, usize),
    scale: f32,
    (q_block, k, v): (&[f32], &[f32], &[f32]),
    terms: KeyTerms<'_>,
    out_block: &mut [f32],
    scratch: &mut [f32],
) {
    let rows_q = q_block.len() / dim.max(1);
    let mut rest = scratch;
    let q_packed = take(&mut rest, dim * BLOCK);
    let tile = take(&mut rest, BLOCK * BLOCK);
    let running_max = take(&mut rest, BLOCK);
    let running_sum = take(&mut rest, BLOCK);
    let rescale = take(&mut rest, BLOCK);
    // (In the scratch, not on the stack: a kernel call stays under 1 KiB of stack on Cortex-M.)
    let block_max = take(&mut rest, BLOCK);
    // Qᵀ scaled by s: S_blockᵀ = K_block · (s·Qᵀ) needs no further scaling.
    q_packed.fill(0.0); // (columns past the block's last query stay defined)
    pack_transposed(q_block, dim, scale, q_packed, BLOCK, 0);
    running_max.fill(f32::NEG_INFINITY);
    running_sum.fill(0.0);
    out_block.fill(0.0);
    let blocks = key_blocks((k, v, terms.mask), (dim, value_dim)).enumerate();
    for (block, (k_block, v_block, mask)) in blocks {
        // Sᵀ[j, i] = s · k_j·q_i
        let (rows_k, tile) = project_block(isa, k_block, dim, (q_packed, BLOCK), BLOCK, tile);
        if let Some(bias) = terms.bias {
            // − s·|k_j|²/2 (RA)
            for (row, &b) in rows_mut(tile, BLOCK).zip(bias.iter().skip(block * BLOCK)) {
                shift_row(row, b);
            }
        }
        // −∞ for masked keys; a block of masked keys only is skipped
        if !mask_rows(tile, BLOCK, mask) {
            continue;
        }
        // Online softmax per query (column): new maximum, rescale what came before.
        column_max(isa, tile, BLOCK, rows_q, block_max);
        raise_running_max(isa, running_max, block_max, rescale, running_sum);
        // (a maximum the block did not raise leaves its row as it is: r = 1)
        for (out_row, &r) in rows_mut(out_block, value_dim).zip(rescale.iter()) {
            if r != 1.0 {
                scale_row(isa, out_row, r);
            }
        }
        // P = e^(Sᵀ − max), running_sum += Σ_j P
        column_exp_sum(isa, tile, BLOCK, rows_q, running_max, running_sum);
        // out += Pᵀ · V_block
        gemm(
            isa,
            (rows_q, value_dim, rows_k),
            (tile, 1, BLOCK),
            (v_block, value_dim),
            (out_block, value_dim),
            true,
        );
    }
    for (out_row, &sum) in rows_mut(out_block, value_dim).zip(running_sum.iter()) {
        scale_row(isa, out_row, 1.0 / sum);
    }
}

/// Blocked exact attention of one head: [`flash_block`] over every block of queries.
#[inline(always)]
pub(super) fn attention<I: Isa>(isa: I, kernel: Exact<'_>) {
    let Exact {
        x,
        head,
        out,
        scratch,
    } = kernel;
    let (x, out) = x.head_and_out(head, out);
    let shape = x.shape;
    let dims = (shape.dim, shape.value_dim);
    let terms = KeyTerms {
        bias: None,
        mask: x.key_mask,
    };
    for (q_block, out_block) in
        x.q.chunks(BLOCK.saturating_mul(shape.dim).max(1))
            .zip(out.chunks_mut(BLOCK.saturating_mul(shape.value_dim).max(1)))
    {
        flash_block(
            isa,
            dims,
            shape.scale(),
            (q_block, x.k, x.v),
            terms,
            out_block,
            scratch,
        );
    }
}
