//! The one error type of every checked entry point.

use core::fmt;

/// Which argument of a kernel an [`Error`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Arg {
    /// The queries `q`, `[h, n_q, d]`.
    Queries,
    /// The keys `k`, `[h, n_k, d]`.
    Keys,
    /// The values `v`, `[h, n_k, d_v]`.
    Values,
    /// The output `out`, `[h, n_q, d_v]`.
    Output,
    /// The Gaussian noise `eps` of a sampled proposal.
    Noise,
    /// The random projection `ω`, `[h, S, d]`.
    Omega,
    /// The given key indices of RA's sampled-key mean, `[h, n_q]`.
    KeyIndices,
    /// Caller-provided query landmarks `q̄`, `[h, C, d]`.
    QueryLandmarks,
    /// Caller-provided key landmarks `k̄`, `[h, C, d]`.
    KeyLandmarks,
    /// The `alpha_coeff` of the `mis-opt` weighting.
    AlphaCoeff,
    /// The recency gates of gated causal RFA (each in `[0, 1]`).
    Gates,
    /// The key padding mask, `[n_k]` (`true` marks a padding key).
    KeyMask,
    /// The tokens `x` of a layer, `[n, dim]`.
    Tokens,
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arg::Queries => "the queries q",
            Arg::Keys => "the keys k",
            Arg::Values => "the values v",
            Arg::Output => "the output",
            Arg::Noise => "the noise eps",
            Arg::Omega => "the projection omega",
            Arg::KeyIndices => "the key indices",
            Arg::QueryLandmarks => "the query landmarks",
            Arg::KeyLandmarks => "the key landmarks",
            Arg::AlphaCoeff => "alpha_coeff",
            Arg::Gates => "the gates",
            Arg::KeyMask => "the key padding mask",
            Arg::Tokens => "the tokens x",
        })
    }
}

/// Which dimension an [`Error::ZeroDimension`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
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
    /// Number of heads `h`.
    Heads,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dim::Queries => "the number of queries",
            Dim::Keys => "the number of keys",
            Dim::Model => "the query/key dimension",
            Dim::Value => "the value dimension",
            Dim::Heads => "the number of heads",
        })
    }
}

/// Why a kernel refused its arguments.
///
/// Every check runs before the kernel writes anything: when an error is returned, the output
/// and scratch slices are untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// A dimension of the shape is zero.
    ZeroDimension(Dim),
    /// LARA (or a pooling) was asked for zero landmarks.
    ZeroLandmarks,
    /// More landmarks than rows to average: a landmark is the mean of at least one row.
    TooManyLandmarks {
        /// The landmarks requested.
        landmarks: usize,
        /// The rows (or grid side) they would average.
        rows: usize,
    },
    /// A random-feature kernel was given no features (`S = 0`, an empty `ω`).
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
    /// A slice that holds whole rows (`ω`: rows of `h · d`) has a length that is not a
    /// multiple of the row length.
    PartialRow {
        /// The argument with the partial row.
        arg: Arg,
        /// The length of one row.
        row_len: usize,
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
    /// A given key index is not below `n_k`.
    KeyIndexOutOfRange {
        /// The query row (over all heads) whose index is bad.
        row: usize,
        /// The index given.
        index: u32,
    },
    /// A given key index names a key that the key padding mask masks (masked keys have no
    /// influence, so none can be a proposal's key).
    MaskedKeyIndex {
        /// The query row (over all heads) whose index names a masked key.
        row: usize,
        /// The index given.
        index: u32,
    },
    /// The key padding mask masks every key: attention over no key is undefined.
    AllKeysMasked,
    /// The call draws random numbers (RA's sampled key) but was given no generator:
    /// pass [`Sampling::Draw`](crate::Sampling::Draw).
    GeneratorRequired,
    /// A layer's weights lack a tensor its configuration needs.
    MissingWeight(&'static str),
    /// A layer's weight tensor has another number of elements than its configuration implies.
    WeightShape {
        /// The tensor's `state_dict` key.
        key: &'static str,
        /// The number of elements the configuration implies.
        expected: usize,
        /// The number of elements given.
        actual: usize,
    },
    /// A weight tensor holds a NaN or an infinity.
    NonFiniteWeight(&'static str),
    /// A layer configuration the official module does not support, or these inputs cannot take.
    InvalidConfig(&'static str),
    /// The product of the dimensions does not fit in `usize`.
    SizeOverflow,
    /// [`set_backend`](crate::backend::set_backend) was asked for a backend that is not
    /// compiled for this target or not supported by this CPU.
    UnsupportedBackend,
    /// The random number generator kept producing degenerate draws (for example a constant
    /// stream), so an orthogonal block could not be completed.
    DegenerateRandomness,
    /// A quantisation scale of an [`int8`](crate::int8) call that is not finite and positive.
    InvalidScale(Arg),
    /// Quantisation scales or dimensions outside the limits of the [`int8`](crate::int8)
    /// kernels' fixed-point formats (the reason names the limit; the module docs list them).
    FixedPointRange(&'static str),
    /// An [`int8`](crate::int8) call with a plan made for another head dimension, weighting,
    /// number of features or sampling.
    PlanMismatch,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ZeroDimension(dim) => write!(f, "{dim} is zero"),
            Error::ZeroLandmarks => f.write_str("zero landmarks were requested"),
            Error::TooManyLandmarks { landmarks, rows } => write!(
                f,
                "{landmarks} landmarks were requested from {rows} rows (at most one per row)"
            ),
            Error::ZeroFeatures => f.write_str("zero random features were given"),
            Error::LengthMismatch {
                arg,
                expected,
                actual,
            } => write!(
                f,
                "{arg} has {actual} elements where the shape implies {expected}"
            ),
            Error::PartialRow {
                arg,
                row_len,
                actual,
            } => write!(
                f,
                "{arg} has {actual} elements, not a whole number of rows of {row_len}"
            ),
            Error::ScratchTooSmall { needed, actual } => write!(
                f,
                "the scratch holds {actual} floats where the call needs {needed}"
            ),
            Error::NonFinite(arg) => write!(f, "{arg} holds a NaN or an infinity"),
            Error::OutOfRange(arg) => write!(f, "{arg} holds a value outside its valid range"),
            Error::KeyIndexOutOfRange { row, index } => write!(
                f,
                "key index {index} of query row {row} is not below the number of keys"
            ),
            Error::MaskedKeyIndex { row, index } => write!(
                f,
                "key index {index} of query row {row} names a key the key padding mask masks"
            ),
            Error::AllKeysMasked => f.write_str("the key padding mask masks every key"),
            Error::GeneratorRequired => {
                f.write_str("the call samples keys but was given no random number generator")
            }
            Error::MissingWeight(key) => write!(f, "the weights have no tensor {key}"),
            Error::WeightShape {
                key,
                expected,
                actual,
            } => write!(
                f,
                "the weight {key} has {actual} elements where the configuration implies {expected}"
            ),
            Error::NonFiniteWeight(key) => write!(f, "the weight {key} holds a NaN or an infinity"),
            Error::InvalidConfig(why) => write!(f, "invalid layer configuration: {why}"),
            Error::SizeOverflow => f.write_str("the dimensions multiply beyond usize::MAX"),
            Error::UnsupportedBackend => {
                f.write_str("the backend is not available on this target or CPU")
            }
            Error::DegenerateRandomness => {
                f.write_str("the random number generator produced degenerate draws")
            }
            Error::InvalidScale(arg) => {
                write!(
                    f,
                    "the quantisation scale of {arg} is not finite and positive"
                )
            }
            Error::FixedPointRange(why) => {
                write!(f, "outside the int8 kernels' fixed-point range: {why}")
            }
            Error::PlanMismatch => {
                f.write_str("the int8 plan was made for another dimension, weighting or sampling")
            }
        }
    }
}

impl core::error::Error for Error {}
