//! `#![no_std]`, allocation-free attention kernels for microcontroller firmware and other
//! constrained targets: the estimators of *Linear Complexity Randomized Self-attention
//! Mechanism* (Zheng, Wang & Kong, ICML 2022) and the random-feature attention it improves on,
//! computing what the paper's official PyTorch code computes.
//!
//! | estimator | module | time per head | scratch |
//! |---|---|---|---|
//! | exact softmax attention (the reference) | [`exact`] | `n_q·n_k·(d + d_v)` | `32` floats |
//! | LARA, linear randomized attention | [`lara`] | `(n_q + n_k)·C·(d + d_v)` | `C·(3d + d_v + 8)` |
//! | RA, randomized attention (unbiased) | [`ra`] | `n_q·n_k·(d + d_v)` | `n_k + 2d + 32` |
//! | RFA, random features (Performer, trigonometric) | [`rfa`] | `(n_q + n_k)·S·(d + d_v)` | `S·(d_v + 2) + d_v` |
//!
//! (Scratch of the scalar kernels, which Cortex-M and RISC-V run in a build optimised for size;
//! the blocked kernels, SIMD or one-lane [`backend::Backend::Blocked`] (the default elsewhere),
//! add tiles of 32 rows, still independent of `n`: exact attention `32·(d + 36)`, LARA
//! `C·(3d + d_v + 8) + 2C·(d + 32)`, RFA `S·(d_v + 2) + d_v + S·(d + 32)`. Each module has a
//! `scratch_len` for this target and a `scratch_len_for` any [`backend::Backend`].)
//!
//! Whole layers of the official modules (`MultiheadAttention`, `LinearRA` with every proposal
//! generator, `RandomizedAttention`, `KernelizedAttention`) run with their trained weights, the
//! module's `state_dict` borrowed as slices: [`layer`].
//!
//! Every estimator takes the same arguments: the inputs [`Qkv`] (shape, `q`, `k`, `v`, an
//! optional key padding mask), its parameters, a [`Sampling`] for the randomized ones, the
//! output and the scratch, and returns `Result<(), Error>`; it checks everything before
//! writing anything.
//!
//! ```
//! use lara_attn::{Qkv, Sampling, Shape, lara};
//! use lara_attn::lara::{Params, Proposals, Weighting};
//!
//! const SHAPE: Shape = Shape::self_attention(64, 16); // 64 tokens, head dimension 16
//! const C: usize = 8; // landmarks
//! const PARAMS: Params = Params::segment_means(C, Weighting::Optimal { alpha_coeff: 1.0 });
//! let mut scratch = [0.0f32; lara::scratch_len(SHAPE, C, Proposals::Single)];
//!
//! let x = [0.25f32; 64 * 16];
//! let mut out = [0.0f32; 64 * 16];
//! let inputs = Qkv { shape: SHAPE, q: &x, k: &x, v: &x, key_mask: None };
//! lara::attention(&inputs, &PARAMS, Sampling::Eval, &mut out, &mut scratch)?;
//! assert!(out.iter().all(|&o| (o - 0.25).abs() < 1e-6)); // a convex combination of equal rows
//! # Ok::<(), lara_attn::Error>(())
//! ```
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

/// `core::arch::asm!` with every single-precision register `s0`–`s31` declared clobbered (the
/// Cortex-M4F's VFP bank, the Cortex-M55's `q0`–`q7`): for the register tiles and lane loops
/// that use them all. The arguments end with a comma.
#[cfg(target_arch = "arm")]
#[allow(unused_macros)]
macro_rules! asm_clobbering_s0_s31 {
    ($($args:tt)*) => {
        core::arch::asm!(
            $($args)*
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            out("s20") _, out("s21") _, out("s22") _, out("s23") _,
            out("s24") _, out("s25") _, out("s26") _, out("s27") _,
            out("s28") _, out("s29") _, out("s30") _, out("s31") _,
        )
    };
}

/// Helium: the loop that adds one block of eight keys' weighted values to the rows of one
/// group of four value columns, as an `asm!` template (label `2`): per row (`lr` rows) its
/// eight `i16` weights from `[r3]` (advanced), times the four columns' values in `q1`–`q4`
/// (`VMLADAVA`), added to its four sums at `[r1]` (advanced); clobbers `q0`, `r0`, `r2`,
/// `r10`, `r12`. Shared by every loop that accumulates values.
#[cfg(lara_attn_helium)]
macro_rules! accumulate_rows_loop {
    () => {
        concat!("2:\n", accumulate_row!(), "le lr, 2b\n")
    };
}

/// [`accumulate_rows_loop!`] four rows per turn (`lr` = rows / 4): one loop branch per four
/// rows.
#[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
macro_rules! accumulate_rows4_loop {
    () => {
        concat!(
            "2:\n",
            accumulate_row!(),
            accumulate_row!(),
            accumulate_row!(),
            accumulate_row!(),
            "le lr, 2b\n"
        )
    };
}

/// One row of [`accumulate_rows_loop!`]: its eight weights times the four columns, added to
/// its four sums.
#[cfg(lara_attn_helium)]
macro_rules! accumulate_row {
    () => {
        concat!(
            "vldrh.u16 q0, [r3], #16\n",
            "ldm r1, {{r0, r2, r10, r12}}\n",
            "vmladava.s16 r0, q0, q1\n",
            "vmladava.s16 r2, q0, q2\n",
            "vmladava.s16 r10, q0, q3\n",
            "vmladava.s16 r12, q0, q4\n",
            "stm r1!, {{r0, r2, r10, r12}}\n",
        )
    };
}

pub mod backend;
pub mod causal;
mod error;
pub mod exact;
pub mod fixed;
mod inputs;
pub mod int8;
pub mod lara;
pub mod layer;
mod math;
pub mod pool2d;
pub mod ra;
pub mod random;
pub mod rfa;
mod shape;
mod simd;
mod slices;

pub use error::{Arg, Dim, Error};
pub use inputs::{Qkv, Sampling};
pub use rand_core;
pub use shape::Shape;
pub use simd::{EXP_MAX_ULP, exp_f32};

#[cfg(test)]
mod test_support;

/// The README's examples, compiled and run as doctests (the crate itself never reads the
/// README: a vendored `Cargo.toml` and `src/` build without it).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
