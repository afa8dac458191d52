//! Problem dimensions and the argument checks every kernel runs once, before computing.

use crate::error::{Arg, Dim, Error};

/// The dimensions of one attention head: `q [n_q, d]`, `k [n_k, d]`, `v [n_k, d_v]`,
/// `out [n_q, d_v]`, all row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Number of query rows `n_q`.
    pub queries: usize,
    /// Number of key (and value) rows `n_k`.
    pub keys: usize,
    /// Query/key feature dimension `d` (the softmax scale is `d^-1/2`).
    pub dim: usize,
    /// Value (and output) dimension `d_v`.
    pub value_dim: usize,
}

impl Shape {
    /// Self-attention: `n` queries and keys, values of the same dimension `d`.
    pub const fn self_attention(n: usize, dim: usize) -> Self {
        Shape {
            queries: n,
            keys: n,
            dim,
            value_dim: dim,
        }
    }

    /// Cross-attention: `n_q` queries against `n_k` keys, values of dimension `d_v`.
    pub const fn cross(queries: usize, keys: usize, dim: usize, value_dim: usize) -> Self {
        Shape {
            queries,
            keys,
            dim,
            value_dim,
        }
    }

    /// The softmax scale `s = d^-1/2`.
    pub(crate) fn scale(&self) -> f32 {
        1.0 / libm::sqrtf(self.dim as f32)
    }

    /// Checks that no dimension is zero and that `q`, `k`, `v` and `out` have the lengths the
    /// shape implies and that the inputs are finite.
    pub(crate) fn check_qkv(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &[f32],
    ) -> Result<(), Error> {
        self.check_nonzero()?;
        check_len(Arg::Queries, q, self.queries, self.dim)?;
        check_len(Arg::Keys, k, self.keys, self.dim)?;
        check_len(Arg::Values, v, self.keys, self.value_dim)?;
        check_len(Arg::Output, out, self.queries, self.value_dim)?;
        check_finite(Arg::Queries, q)?;
        check_finite(Arg::Keys, k)?;
        check_finite(Arg::Values, v)
    }

    fn check_nonzero(&self) -> Result<(), Error> {
        let dims = [
            (self.queries, Dim::Queries),
            (self.keys, Dim::Keys),
            (self.dim, Dim::Model),
            (self.value_dim, Dim::Value),
        ];
        match dims.iter().find(|(len, _)| *len == 0) {
            Some(&(_, dim)) => Err(Error::ZeroDimension(dim)),
            None => Ok(()),
        }
    }
}

/// `rows * cols`, or [`Error::SizeOverflow`].
pub(crate) fn checked_len(rows: usize, cols: usize) -> Result<usize, Error> {
    rows.checked_mul(cols).ok_or(Error::SizeOverflow)
}

/// Checks that `data` holds exactly `rows * cols` elements.
pub(crate) fn check_len(arg: Arg, data: &[f32], rows: usize, cols: usize) -> Result<(), Error> {
    let expected = checked_len(rows, cols)?;
    if data.len() == expected {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            arg,
            expected,
            actual: data.len(),
        })
    }
}

/// Checks a key padding mask: `n_k` entries, at least one key not masked.
pub(crate) fn check_key_mask(shape: Shape, mask: &[bool]) -> Result<(), Error> {
    if mask.len() != shape.keys {
        return Err(Error::LengthMismatch {
            arg: Arg::KeyMask,
            expected: shape.keys,
            actual: mask.len(),
        });
    }
    if mask.iter().all(|&masked| masked) {
        return Err(Error::AllKeysMasked);
    }
    Ok(())
}

/// Whether each key is masked: the mask's entries, or `false` for every key without a mask.
pub(crate) fn masked_keys(mask: Option<&[bool]>) -> impl Iterator<Item = bool> + '_ {
    mask.unwrap_or(&[])
        .iter()
        .copied()
        .chain(core::iter::repeat(false))
}

/// Checks that every element of `data` is finite.
pub(crate) fn check_finite(arg: Arg, data: &[f32]) -> Result<(), Error> {
    // Exponent bits all ones = inf or NaN. A branch-free fold per chunk vectorises (a plain
    // `all(is_finite)` stops early and stays scalar, which costs ~10% of a LARA call).
    const EXPONENT: u32 = 0x7f80_0000;
    let finite = |chunk: &[f32]| {
        chunk.iter().fold(0u32, |bad, x| {
            bad | u32::from(x.to_bits() & EXPONENT == EXPONENT)
        }) == 0
    };
    if data.chunks(256).all(finite) {
        Ok(())
    } else {
        Err(Error::NonFinite(arg))
    }
}

/// Checks that the caller's scratch holds at least `needed` elements and returns exactly
/// that prefix.
pub(crate) fn take_scratch(scratch: &mut [f32], needed: usize) -> Result<&mut [f32], Error> {
    let actual = scratch.len();
    scratch
        .get_mut(..needed)
        .ok_or(Error::ScratchTooSmall { needed, actual })
}

/// Splits the next `len` floats off the front of `rest` (checked, so no panic path; the callers
/// have already checked the whole scratch length, which makes the error unreachable).
pub(crate) fn carve<'a>(rest: &mut &'a mut [f32], len: usize) -> Result<&'a mut [f32], Error> {
    let actual = rest.len();
    let (head, tail) =
        core::mem::take(rest)
            .split_at_mut_checked(len)
            .ok_or(Error::ScratchTooSmall {
                needed: len,
                actual,
            })?;
    *rest = tail;
    Ok(head)
}
