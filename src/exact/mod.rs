//! Exact softmax attention, the reference every estimator is measured against.
//!
//! `out_i = Σ_j softmax_j(s · q_i·k_j) v_j` with `s = d^-1/2`, computed with a streaming
//! (online) softmax over blocks of keys: no `[n_q, n_k]` score matrix is formed, and the scratch
//! is one block of logits (one tile of them for the blocked backends), whatever the sequence
//! lengths. Masked keys get the logit `−∞`, as the official `masked_fill`.
//!
//! Cost: `O(h · n_q · n_k · (d + d_v))` time, [`scratch_len`] floats of scratch.

mod blocked;
mod scalar;

pub(crate) use blocked::{KeyTerms, flash_block, flash_scratch_len};

use crate::Shape;
use crate::error::Error;
use crate::inputs::Qkv;
use crate::math::KEY_BLOCK;
use crate::shape::take_scratch;
use crate::simd::{self, Available, Backend, Isa, Kernel};

/// Scratch (in `f32`s) that [`attention`] needs on this target, independent of `n` and `h`:
/// [`scratch_len_for`] the backends compiled here (the largest of them).
pub const fn scratch_len(shape: Shape) -> usize {
    len(shape, simd::COMPILED)
}

/// Scratch (in `f32`s) that [`attention`] needs when it runs on `backend`: one block of 32
/// logits for [`Backend::Scalar`] (the fixed-size layer, and Cortex-M or RISC-V built for
/// size), the flash tiles `32·(d + 36)` for the blocked backends (SIMD, and
/// [`Backend::Blocked`] on Cortex-M and RISC-V). A host tool can size a firmware's buffer with
/// `scratch_len_for(Backend::Blocked, shape)` (or `Backend::Scalar` for a build for size).
pub const fn scratch_len_for(backend: Backend, shape: Shape) -> usize {
    len(shape, backend.is_blocked())
}

pub(crate) const fn len(shape: Shape, tiles: bool) -> usize {
    let flash = flash_scratch_len(shape.dim);
    if tiles && flash > KEY_BLOCK {
        flash
    } else {
        KEY_BLOCK
    }
}

/// Exact softmax attention of `x` into `out [h, n_q, d_v]`.
///
/// # Errors
/// A zero dimension, a slice whose length does not match `x.shape`, a key mask that masks
/// every key, scratch shorter than [`scratch_len_for`] the active backend (`scratch_len`
/// always suffices), or a non-finite input. Nothing is written when an error is returned.
///
/// # Example
/// ```
/// use lara_attn::{Qkv, Shape, exact};
/// const SHAPE: Shape = Shape::self_attention(3, 2);
/// let x = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5];
/// let padding = [false, false, true];
/// let mut out = [0.0; 6];
/// let mut scratch = [0.0; exact::scratch_len(SHAPE)];
/// let inputs = Qkv { shape: SHAPE, q: &x, k: &x, v: &x, key_mask: Some(&padding) };
/// exact::attention(&inputs, &mut out, &mut scratch)?;
/// # Ok::<(), lara_attn::Error>(())
/// ```
pub fn attention(x: &Qkv<'_>, out: &mut [f32], scratch: &mut [f32]) -> Result<(), Error> {
    attention_on(Available::active(), x, out, scratch)
}

/// [`attention`] on `backend` (a caller that sized the scratch for one backend runs on it).
pub(crate) fn attention_on(
    backend: Available,
    x: &Qkv<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    x.check(out)?;
    let scratch = take_scratch(scratch, len(x.shape, backend.backend().is_blocked()))?;
    for head in 0..x.shape.heads {
        let kernel = Exact {
            x,
            head,
            out: &mut *out,
            scratch: &mut *scratch,
        };
        simd::run(backend, kernel);
    }
    Ok(())
}

/// Exact attention of head `head` of `x` into its part of `out`, on checked arguments and
/// scratch of [`scratch_len_for`] the backend it runs on.
pub(crate) struct Exact<'a> {
    pub(crate) x: &'a Qkv<'a>,
    pub(crate) head: usize,
    pub(crate) out: &'a mut [f32],
    pub(crate) scratch: &'a mut [f32],
}

impl Kernel for Exact<'_> {
    type Output = ();
    fn scalar(self) {
        let (x, out) = self.x.head_and_out(self.head, self.out);
        if let Some(block) = self.scratch.first_chunk_mut() {
            scalar::attention(&x, out, block);
        }
    }
    #[inline(always)]
    fn blocked<I: Isa>(self, isa: I) {
        blocked::attention(isa, self);
    }
}
