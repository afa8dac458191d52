//! The arguments every estimator shares: the inputs [`Qkv`] (with the key padding mask) and,
//! for the randomized estimators, how the proposals are drawn ([`Sampling`]).

use crate::error::{Arg, Error};
use crate::math::axpy;
use crate::random::{add_scaled_normal, uniform};
use crate::shape::{Shape, check_finite, expect_len};
use crate::slices::{part, part_mut};
use rand_core::RngCore;

/// The inputs of an attention call: the shape, `q [h, n_q, d]`, `k [h, n_k, d]`,
/// `v [h, n_k, d_v]` (row-major, heads stacked) and an optional key padding mask.
///
/// Named fields, so a call site says which slice is which:
///
/// ```
/// use lara_attn::{Qkv, Shape};
/// let (q, k, v) = ([0.5f32; 8], [0.25f32; 8], [1.0f32; 8]);
/// let x = Qkv { shape: Shape::self_attention(4, 2), q: &q, k: &k, v: &v, key_mask: None };
/// # let _ = x;
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Qkv<'a> {
    /// The dimensions.
    pub shape: Shape,
    /// Queries `[h, n_q, d]`.
    pub q: &'a [f32],
    /// Keys `[h, n_k, d]`.
    pub k: &'a [f32],
    /// Values `[h, n_k, d_v]`.
    pub v: &'a [f32],
    /// Key padding mask `[n_k]`, shared by the heads, `true` for a padding key (PyTorch's
    /// `key_padding_mask`): masked keys have exactly zero influence on the output. `None`:
    /// every key counts.
    pub key_mask: Option<&'a [bool]>,
}

impl<'a> Qkv<'a> {
    /// Checks every dimension, the lengths of `q`, `k`, `v`, the mask and `out`, and that the
    /// inputs are finite.
    pub(crate) fn check(&self, out: &[f32]) -> Result<(), Error> {
        let shape = self.shape;
        shape.check_nonzero()?;
        shape.check_stacked(Arg::Queries, self.q, shape.queries, shape.dim)?;
        shape.check_stacked(Arg::Keys, self.k, shape.keys, shape.dim)?;
        shape.check_stacked(Arg::Values, self.v, shape.keys, shape.value_dim)?;
        shape.check_stacked(Arg::Output, out, shape.queries, shape.value_dim)?;
        if let Some(mask) = self.key_mask {
            expect_len(Arg::KeyMask, mask.len(), shape.keys)?;
            if mask.iter().all(|&masked| masked) {
                return Err(Error::AllKeysMasked);
            }
        }
        check_finite(Arg::Queries, self.q)?;
        check_finite(Arg::Keys, self.k)?;
        check_finite(Arg::Values, self.v)
    }

    /// Head `head` of these inputs, with the shape of one head (call on checked inputs).
    pub(crate) fn head(&self, head: usize) -> Qkv<'a> {
        let heads = self.shape.heads;
        Qkv {
            shape: self.shape.head(),
            q: part(self.q, heads, head),
            k: part(self.k, heads, head),
            v: part(self.v, heads, head),
            key_mask: self.key_mask,
        }
    }

    /// Head `head` of these inputs and its part of `out [h, n_q, d_v]`. The kernels call this
    /// themselves, so that on Cortex-M the per-head slices live in the kernel's frame only.
    #[inline(always)]
    pub(crate) fn head_and_out<'o>(
        &self,
        head: usize,
        out: &'o mut [f32],
    ) -> (Qkv<'a>, &'o mut [f32]) {
        (self.head(head), part_mut(out, self.shape.heads, head))
    }

    /// Whether key `j` counts: `false` for the keys the mask marks.
    #[inline(always)]
    pub(crate) fn unmasked_keys(&self) -> impl Iterator<Item = bool> + use<'a> {
        self.key_mask
            .unwrap_or(&[])
            .iter()
            .map(|&masked| !masked)
            .chain(core::iter::repeat(true))
    }

    /// The number of keys the mask leaves: `n_k` without one.
    pub(crate) fn unmasked_count(&self) -> usize {
        self.key_mask.map_or(self.shape.keys, |mask| {
            mask.iter().filter(|&&masked| !masked).count()
        })
    }
}

/// How a randomized estimator (RA, LARA) draws its proposals `W = mu + f · eps`.
pub enum Sampling<'a> {
    /// Eval mode, `W = mu`: no noise (the official module in `eval()`).
    Eval,
    /// Sampled mode with the caller's standard normal noise `eps`, stacked over the heads
    /// (the estimator's docs give its shape).
    Noise(&'a [f32]),
    /// Sampled mode, every random number drawn from this generator in a documented order.
    ///
    /// Any [`rand_core`] 0.9 `RngCore` works: [`random::default_rng`](crate::random::default_rng),
    /// or a hardware generator. A HAL whose RNG implements another version of `rand_core` needs
    /// a three-method wrapper:
    ///
    /// ```
    /// use lara_attn::rand_core::RngCore;
    /// # struct HalRng;
    /// # impl HalRng { fn read(&mut self) -> u32 { 4 } }
    /// struct Rng(HalRng);
    /// impl RngCore for Rng {
    ///     fn next_u32(&mut self) -> u32 {
    ///         self.0.read()
    ///     }
    ///     fn next_u64(&mut self) -> u64 {
    ///         lara_attn::rand_core::impls::next_u64_via_u32(self)
    ///     }
    ///     fn fill_bytes(&mut self, dst: &mut [u8]) {
    ///         lara_attn::rand_core::impls::fill_bytes_via_next(self, dst)
    ///     }
    /// }
    /// ```
    Draw(&'a mut dyn RngCore),
}

/// A [`Sampling`] resolved to its variant: the estimators match the sampling once, in an
/// inlined entry point, and run code generic over this trait, so that a call whose sampling is
/// a constant links that variant's code only (firmware in eval mode carries no random-number
/// code).
pub(crate) trait Noise {
    /// Whether the proposals are perturbed (sampled mode).
    const SAMPLED: bool;
    /// Whether the noise comes from a generator (which also draws RA's sampled keys).
    const DRAWN: bool;
    /// Checks the given noise: `[h, rows, d]` and finite.
    fn check(&self, shape: Shape, rows: usize) -> Result<(), Error>;
    /// `w += factor · eps`: `eps` the elements `offset ..` of head `head`'s part of the given
    /// noise, or fresh standard normal draws (row-major).
    fn add(&mut self, head: (usize, usize), offset: usize, factor: f32, w: &mut [f32]);
    /// A uniform draw in `[0, 1)` from the generator (0 without one).
    fn uniform(&mut self) -> f32;
}

/// Eval mode: no noise.
pub(crate) struct NoNoise;

/// The caller's noise.
pub(crate) struct GivenNoise<'a>(pub(crate) &'a [f32]);

/// Noise drawn from a generator.
pub(crate) struct DrawnNoise<'a>(pub(crate) &'a mut dyn RngCore);

impl Noise for NoNoise {
    const SAMPLED: bool = false;
    const DRAWN: bool = false;
    fn check(&self, _: Shape, _: usize) -> Result<(), Error> {
        Ok(())
    }
    fn add(&mut self, _: (usize, usize), _: usize, _: f32, _: &mut [f32]) {}
    fn uniform(&mut self) -> f32 {
        0.0
    }
}

impl Noise for GivenNoise<'_> {
    const SAMPLED: bool = true;
    const DRAWN: bool = false;
    fn check(&self, shape: Shape, rows: usize) -> Result<(), Error> {
        shape.check_stacked(Arg::Noise, self.0, rows, shape.dim)?;
        check_finite(Arg::Noise, self.0)
    }
    fn add(&mut self, (heads, head): (usize, usize), offset: usize, factor: f32, w: &mut [f32]) {
        let eps = part(self.0, heads, head).get(offset..).unwrap_or_default();
        axpy(factor, eps, w);
    }
    fn uniform(&mut self) -> f32 {
        0.0
    }
}

impl Noise for DrawnNoise<'_> {
    const SAMPLED: bool = true;
    const DRAWN: bool = true;
    fn check(&self, _: Shape, _: usize) -> Result<(), Error> {
        Ok(())
    }
    fn add(&mut self, _: (usize, usize), _: usize, factor: f32, w: &mut [f32]) {
        add_scaled_normal(&mut *self.0, factor, w);
    }
    fn uniform(&mut self) -> f32 {
        uniform(&mut *self.0)
    }
}

/// Runs `$run(noise)` with the [`Noise`] of `$sampling` (a macro, not a function: the body is
/// generic over the noise type).
macro_rules! with_noise {
    ($sampling:expr, |$noise:ident| $run:expr) => {
        match $sampling {
            $crate::inputs::Sampling::Eval => {
                let $noise = $crate::inputs::NoNoise;
                $run
            }
            $crate::inputs::Sampling::Noise(eps) => {
                let $noise = $crate::inputs::GivenNoise(eps);
                $run
            }
            $crate::inputs::Sampling::Draw(rng) => {
                let $noise = $crate::inputs::DrawnNoise(rng);
                $run
            }
        }
    };
}
pub(crate) use with_noise;

impl core::fmt::Debug for Sampling<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Sampling::Eval => f.write_str("Eval"),
            Sampling::Noise(eps) => f.debug_tuple("Noise").field(eps).finish(),
            Sampling::Draw(_) => f.write_str("Draw(..)"),
        }
    }
}
