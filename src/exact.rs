//! Exact softmax attention, the reference every estimator is measured against.
//!
//! `out_i = Σ_j softmax_j(s · q_i·k_j) v_j` with `s = d^-1/2`, computed with a streaming
//! (online) softmax over blocks of keys: no `[n_q, n_k]` score matrix is formed, and the scratch
//! is one block of logits, whatever the sequence lengths.
//!
//! Cost: `O(n_q · n_k · (d + d_v))` time, [`scratch_len`] = 32 floats (plus the flash tiles
//! where a SIMD backend is compiled). [`attention_masked`] takes a key padding mask.

use crate::backend::active_backend;
use crate::error::Error;
use crate::math::{KEY_BLOCK, dot, rows, rows_mut, softmax_weighted_sum};
use crate::shape::{Shape, check_key_mask, masked_keys, take_scratch};
use crate::simd::{blocked, dispatch};

/// Scratch (in `f32`s) that [`attention`] needs, independent of `n`: one block of 32 logits for
/// the scalar kernel; on targets with SIMD backends, the flash tiles, `32·(d + 35)`.
pub const fn scratch_len(shape: Shape) -> usize {
    let simd = crate::simd::if_compiled(blocked::flash_scratch_len(shape.dim));
    if simd > KEY_BLOCK { simd } else { KEY_BLOCK }
}

/// Exact softmax attention of `q [n_q, d]` over `k [n_k, d]`, `v [n_k, d_v]` into
/// `out [n_q, d_v]`.
///
/// # Errors
/// A zero dimension, a slice whose length does not match `shape`, scratch shorter than
/// [`scratch_len`], or a non-finite input. Nothing is written when an error is returned.
///
/// # Example
/// ```
/// use lara_attn::{Shape, exact};
/// const SHAPE: Shape = Shape::self_attention(3, 2);
/// let q = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5];
/// let mut out = [0.0; 6];
/// let mut scratch = [0.0; exact::scratch_len(SHAPE)];
/// exact::attention(SHAPE, &q, &q, &q, &mut out, &mut scratch)?;
/// # Ok::<(), lara_attn::Error>(())
/// ```
pub fn attention(
    shape: Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    attention_with_mask(shape, q, k, v, None, out, scratch)
}

/// [`attention`] with a key padding mask `[n_k]` (`true` marks a padding key): masked keys get
/// the logit `−∞`, as the official code's `masked_fill`, and have exactly zero influence.
///
/// # Errors
/// As [`attention`], plus a mask of the wrong length or one that masks every key.
///
/// # Example
/// ```
/// use lara_attn::{Shape, exact};
/// const SHAPE: Shape = Shape::self_attention(3, 2);
/// let q = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5];
/// let padding = [false, false, true];
/// let mut out = [0.0; 6];
/// let mut scratch = [0.0; exact::scratch_len(SHAPE)];
/// exact::attention_masked(SHAPE, &q, &q, &q, &padding, &mut out, &mut scratch)?;
/// # Ok::<(), lara_attn::Error>(())
/// ```
pub fn attention_masked(
    shape: Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: &[bool],
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    attention_with_mask(shape, q, k, v, Some(key_mask), out, scratch)
}

#[inline(always)]
fn attention_with_mask(
    shape: Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    shape.check_qkv(q, k, v, out)?;
    if let Some(mask) = key_mask {
        check_key_mask(shape, mask)?;
    }
    let scratch = take_scratch(scratch, scratch_len(shape))?;
    if !dispatch::exact(active_backend(), shape, q, k, v, key_mask, out, scratch) {
        attention_scalar(shape, q, k, v, key_mask, out, logit_block(scratch)?);
    }
    Ok(())
}

/// The scalar reference kernel, on checked arguments.
pub(crate) fn attention_scalar(
    shape: Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    out: &mut [f32],
    block: &mut [f32; KEY_BLOCK],
) {
    let scale = shape.scale();
    for (q_row, out_row) in rows(q, shape.dim).zip(rows_mut(out, shape.value_dim)) {
        // out_i = Σ_j softmax_j(s · q_i·k_j) v_j, logit −∞ for masked keys
        let logits = rows(k, shape.dim)
            .zip(masked_keys(key_mask))
            .map(|(k_row, masked)| {
                if masked {
                    f32::NEG_INFINITY
                } else {
                    scale * dot(q_row, k_row)
                }
            });
        softmax_weighted_sum(logits, v, shape.value_dim, out_row, block);
    }
}

/// The first [`KEY_BLOCK`] floats of the scratch, as the logit block of the streaming softmax.
pub(crate) fn logit_block(scratch: &mut [f32]) -> Result<&mut [f32; KEY_BLOCK], Error> {
    let actual = scratch.len();
    scratch
        .first_chunk_mut::<KEY_BLOCK>()
        .ok_or(Error::ScratchTooSmall {
            needed: KEY_BLOCK,
            actual,
        })
}
