//! Problem dimensions and the argument checks every kernel runs once, before computing.

use crate::error::{Arg, Dim, Error};

/// The dimensions of an attention call: `h` heads, each with `q [n_q, d]`, `k [n_k, d]`,
/// `v [n_k, d_v]` and `out [n_q, d_v]`, row-major, the heads stacked (`q [h, n_q, d]`, ...).
///
/// Scratch sizes depend on one head only: the heads run one after the other in the same
/// scratch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Shape {
    /// Number of heads `h` (independent attention problems, stacked).
    pub heads: usize,
    /// Number of query rows `n_q` per head.
    pub queries: usize,
    /// Number of key (and value) rows `n_k` per head.
    pub keys: usize,
    /// Query/key feature dimension `d` (the softmax scale is `d^-1/2`).
    pub dim: usize,
    /// Value (and output) dimension `d_v`.
    pub value_dim: usize,
}

impl Shape {
    /// Self-attention of one head: `n` queries and keys, values of the same dimension `d`.
    pub const fn self_attention(n: usize, dim: usize) -> Self {
        Shape::cross(n, n, dim, dim)
    }

    /// Cross-attention of one head: `n_q` queries against `n_k` keys, values of dimension `d_v`.
    pub const fn cross(queries: usize, keys: usize, dim: usize, value_dim: usize) -> Self {
        Shape {
            heads: 1,
            queries,
            keys,
            dim,
            value_dim,
        }
    }

    /// This shape with `heads` heads (each of these dimensions).
    pub const fn with_heads(self, heads: usize) -> Self {
        Shape { heads, ..self }
    }

    /// One head of this shape.
    pub(crate) const fn head(self) -> Self {
        self.with_heads(1)
    }

    /// The softmax scale `s = d^-1/2`.
    pub(crate) fn scale(&self) -> f32 {
        1.0 / libm::sqrtf(self.dim as f32)
    }

    /// Checks that no dimension is zero.
    pub(crate) fn check_nonzero(&self) -> Result<(), Error> {
        let dims = [
            (self.heads, Dim::Heads),
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

    /// `h · rows · cols`, the length of a stacked `[h, rows, cols]` tensor, or
    /// [`Error::SizeOverflow`].
    pub(crate) fn stacked(&self, rows: usize, cols: usize) -> Result<usize, Error> {
        checked_len(checked_len(self.heads, rows)?, cols)
    }

    /// Checks that `data` is a stacked `[h, rows, cols]` tensor.
    pub(crate) fn check_stacked(
        &self,
        arg: Arg,
        data: &[f32],
        rows: usize,
        cols: usize,
    ) -> Result<(), Error> {
        expect_len(arg, data.len(), self.stacked(rows, cols)?)
    }
}

/// `rows * cols`, or [`Error::SizeOverflow`].
pub(crate) fn checked_len(rows: usize, cols: usize) -> Result<usize, Error> {
    rows.checked_mul(cols).ok_or(Error::SizeOverflow)
}

/// `Ok` if `actual == expected`, else [`Error::LengthMismatch`] for `arg`.
pub(crate) fn expect_len(arg: Arg, actual: usize, expected: usize) -> Result<(), Error> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            arg,
            expected,
            actual,
        })
    }
}

/// Checks that `data` holds exactly `rows * cols` elements.
pub(crate) fn check_len(arg: Arg, data: &[f32], rows: usize, cols: usize) -> Result<(), Error> {
    expect_len(arg, data.len(), checked_len(rows, cols)?)
}

/// Checks that every element of `data` is finite.
pub(crate) fn check_finite(arg: Arg, data: &[f32]) -> Result<(), Error> {
    // Exponent bits all ones = inf or NaN: adding one to the exponent field then carries into
    // the sign bit. A branch-free fold per chunk vectorises (a plain `all(is_finite)` stops
    // early and stays scalar, which costs ~10% of a LARA call) and takes three integer
    // operations per element on a single-issue core.
    const EXPONENT: u32 = 0x7f80_0000;
    const EXPONENT_ONE: u32 = 0x0080_0000;
    let finite = |chunk: &[f32]| {
        let carries = chunk.iter().fold(0u32, |bad, x| {
            bad | ((x.to_bits() & EXPONENT) + EXPONENT_ONE)
        });
        carries >> 31 == 0
    };
    if data.chunks(256).all(finite) {
        Ok(())
    } else {
        Err(Error::NonFinite(arg))
    }
}

/// A scratch length computed with saturating arithmetic, as a checked one: a saturated total
/// is an overflow (no scratch holds `usize::MAX` floats).
pub(crate) fn checked_scratch_len(len: usize) -> Result<usize, Error> {
    if len == usize::MAX {
        Err(Error::SizeOverflow)
    } else {
        Ok(len)
    }
}

/// Checks that the caller's scratch holds at least `needed` elements and returns exactly
/// that prefix.
pub(crate) fn take_scratch(scratch: &mut [f32], needed: usize) -> Result<&mut [f32], Error> {
    let actual = scratch.len();
    scratch
        .get_mut(..checked_scratch_len(needed)?)
        .ok_or(Error::ScratchTooSmall { needed, actual })
}

/// [`take_scratch`] for a scratch of any element type (the int8 kernels' `i32`s).
pub(crate) fn take_scratch_of<T>(scratch: &mut [T], needed: usize) -> Result<&mut [T], Error> {
    let actual = scratch.len();
    scratch
        .get_mut(..checked_scratch_len(needed)?)
        .ok_or(Error::ScratchTooSmall { needed, actual })
}
