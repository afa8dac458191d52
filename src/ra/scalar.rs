//! The scalar reference kernel of RA, one query at a time.

use super::{MeanKind, Ra, Workspace};
use crate::inputs::Noise;
use crate::inputs::Qkv;
use crate::math::{axpy, dot, softmax_weighted_sum};
use crate::slices::{copy, rows, rows_mut};

/// RA over the queries of one head.
pub(super) fn attention<N: Noise>(kernel: Ra<'_, '_, '_, '_, N>) {
    let Ra {
        x,
        mean,
        out,
        ws,
        draws,
        ..
    } = kernel;
    let (dim, scale) = (x.shape.dim, x.shape.scale());
    for (q_row, out_row) in rows(x.q, dim).zip(rows_mut(out, x.shape.value_dim)) {
        proposal_mean(ws, x, mean, q_row);
        // W_i = mu_i + f · eps_i (eps added first for the sampled key, whose k_J follows)
        let key_index = draws.perturb(x, ws.w, q_row);
        if mean == MeanKind::Key {
            // mu_i = q_i + k_{J_i}
            if let Some(k_row) = rows(x.k, dim).nth(key_index) {
                axpy(1.0, k_row, ws.w);
            }
        }
        // out_i = Σ_j softmax_j(s · W_i·k_j − s · |k_j|²/2) v_j  (−∞ for masked keys)
        let w = &*ws.w;
        let logits = rows(x.k, dim)
            .zip(ws.key_half_norms.iter())
            .map(|(k_row, &half_norm)| scale * dot(w, k_row) - half_norm);
        softmax_weighted_sum(logits, x.v, x.shape.value_dim, out_row, ws.block);
    }
}

/// `W = mu_i` for the key-average and attention-weighted means, `W = q_i` for the key mean
/// (whose `k_{J_i}` is added after the noise).
pub(super) fn proposal_mean(ws: &mut Workspace<'_>, x: &Qkv<'_>, mean: MeanKind, q_row: &[f32]) {
    match mean {
        MeanKind::KeyAverage => {
            // mu_i = q_i + k̄
            for ((w, q), k_mean) in ws.w.iter_mut().zip(q_row).zip(ws.key_mean.iter()) {
                *w = q + k_mean;
            }
        }
        MeanKind::AttentionWeighted => {
            // mu_i = q_i + Σ_j softmax_j(s · q_i·k_j) k_j  (−∞ for masked keys)
            let scale = x.shape.scale();
            let logits = rows(x.k, x.shape.dim)
                .zip(x.unmasked_keys())
                .map(|(k_row, unmasked)| {
                    if unmasked {
                        scale * dot(q_row, k_row)
                    } else {
                        f32::NEG_INFINITY
                    }
                });
            softmax_weighted_sum(logits, x.k, x.shape.dim, ws.w, ws.block);
            axpy(1.0, q_row, ws.w);
        }
        MeanKind::Key => copy(ws.w, q_row),
    }
}
