//! The one error type of every checked entry point.

use core::fmt;

/// Which argument of a kernel an [`Error`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Arg {
    /// The queries `q`, `[n_q, d]`.
    Queries,
    /// The keys `k`, `[n_k, d]`.
    Keys,
    /// The values `v`, `[n_k, d_v]`.
    Values,
    /// The output `out`, `[n_q, d_v]`.
    Output,
    /// The Gaussian noise `eps` of a sampled proposal.
    Noise,
    /// The random projection `omega`, `[S, d]`.
    Omega,
    /// The sampled key indices of RA with one sample per query, `[n_q]`.
    KeyIndices,
    /// Caller-provided query landmarks `q̄`, `[C, d]`.
    QueryLandmarks,
    /// Caller-provided key landmarks `k̄`, `[C, d]`.
    KeyLandmarks,
    /// The `alpha_coeff` of the `mis-opt` weighting.
    AlphaCoeff,
    /// The recency gates of gated causal RFA (each in `[0, 1]`).
    Gates,
    /// The key padding mask, `[n_k]` (`true` marks a padding key).
    KeyMask,
}

/// Which dimension of a [`Shape`](crate::Shape) an [`Error::ZeroDimension`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dim {
    /// Number of queries `n_q`.
    Queries,
    /// Number of keys (and values) `n_k`.
    Keys,
    /// Query/key feature dimension `d`.
    Model,
    /// Value dimension `d_v`.
    Value,
    /// Number of heads of a multi-head call.
    Heads,
}

/// Why a kernel refused its arguments.
///
/// Every check runs before the kernel writes anything: when an error is returned, the output
/// and scratch slices are untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A dimension of the shape is zero.
    ZeroDimension(Dim),
    /// LARA was asked for zero landmarks.
    ZeroLandmarks,
    /// A random-feature kernel was asked for zero features (`S = 0`).
    ZeroFeatures,
    /// A slice does not have the length the shape implies.
    LengthMismatch {
        /// The argument with the wrong length.
        arg: Arg,
        /// The length the shape implies.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// The scratch slice is shorter than the kernel's `scratch_len`.
    ScratchTooSmall {
        /// The length the kernel needs (its `scratch_len`).
        needed: usize,
        /// The length given.
        actual: usize,
    },
    /// An input holds a NaN or an infinity (inputs are checked before anything is computed).
    NonFinite(Arg),
    /// A finite input outside its valid range (a gate not in `[0, 1]`).
    OutOfRange(Arg),
    /// A sampled key index is not below `n_k`.
    KeyIndexOutOfRange {
        /// The query row whose index is bad.
        row: usize,
        /// The index given.
        index: u32,
    },
    /// The key padding mask masks every key: attention over no key is undefined.
    AllKeysMasked,
    /// The product of the dimensions does not fit in `usize`.
    SizeOverflow,
    /// [`set_backend`](crate::backend::set_backend) was asked for a backend that is not
    /// compiled for this target or not supported by this CPU.
    UnsupportedBackend,
    /// The random number generator kept producing degenerate draws (for example a constant
    /// stream), so an orthogonal block could not be completed.
    DegenerateRandomness,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ZeroDimension(dim) => write!(f, "dimension {dim:?} is zero"),
            Error::ZeroLandmarks => f.write_str("zero landmarks requested"),
            Error::ZeroFeatures => f.write_str("zero random features requested"),
            Error::LengthMismatch {
                arg,
                expected,
                actual,
            } => write!(f, "{arg:?} has length {actual}, expected {expected}"),
            Error::ScratchTooSmall { needed, actual } => {
                write!(f, "scratch has length {actual}, needs {needed}")
            }
            Error::NonFinite(arg) => write!(f, "{arg:?} holds a NaN or an infinity"),
            Error::OutOfRange(arg) => write!(f, "{arg:?} holds a value outside its valid range"),
            Error::KeyIndexOutOfRange { row, index } => {
                write!(f, "key index {index} of query row {row} is out of range")
            }
            Error::AllKeysMasked => f.write_str("the key padding mask masks every key"),
            Error::SizeOverflow => f.write_str("dimensions overflow usize"),
            Error::UnsupportedBackend => {
                f.write_str("the backend is not available on this target or CPU")
            }
            Error::DegenerateRandomness => {
                f.write_str("the random number generator produced degenerate draws")
            }
        }
    }
}

impl core::error::Error for Error {}
