#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod backend;
pub mod causal;
mod error;
pub mod exact;
pub mod fixed;
pub mod lara;
mod math;
pub mod multihead;
pub mod pool2d;
pub mod ra;
pub mod random;
pub mod rfa;
mod shape;
mod simd;

pub use error::{Arg, Dim, Error};
pub use shape::Shape;
pub use simd::{EXP_MAX_ULP, exp_f32};

#[cfg(test)]
mod test_support;
