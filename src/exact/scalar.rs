//! The scalar reference kernel of exact attention.

use crate::inputs::Qkv;
use crate::math::{KEY_BLOCK, dot, softmax_weighted_sum};
use crate::slices::{rows, rows_mut};

/// `out_i = Σ_j softmax_j(s · q_i·k_j) v_j` for one head, the logit `−∞` for masked keys.
pub(super) fn attention(x: &Qkv<'_>, out: &mut [f32], block: &mut [f32; KEY_BLOCK]) {
    let shape = x.shape;
    let scale = shape.scale();
    for (q_row, out_row) in rows(x.q, shape.dim).zip(rows_mut(out, shape.value_dim)) {
        let logits = rows(x.k, shape.dim)
            .zip(x.unmasked_keys())
            .map(|(k_row, unmasked)| {
                if unmasked {
                    scale * dot(q_row, k_row)
                } else {
                    f32::NEG_INFINITY
                }
            });
        softmax_weighted_sum(logits, x.v, shape.value_dim, out_row, block);
    }
}
