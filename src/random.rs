//! Randomness without `std`: Gaussian draws over any [`RngCore`], and the random projections
//! `ω` of the random-feature estimators (iid Gaussian or orthogonal).
//!
//! Every draw consumes the generator in a fixed order and is computed in `f32` arithmetic only,
//! so the same seed gives bit-identical draws on every target. [`DefaultRng`] (xoshiro128++) is the documented default: 32-bit
//! state updates, fast on Cortex-M, and small (16 bytes).

use crate::error::{Arg, Error};
use crate::math::{axpy, dot, ln, scale, sin_cos};
use crate::shape::{check_len, checked_len};
use crate::slices::{rows, rows_mut};
use rand_core::{RngCore, SeedableRng};

/// The default generator, `rand_xoshiro::Xoshiro128PlusPlus`: 128-bit state, 32-bit operations.
pub type DefaultRng = rand_xoshiro::Xoshiro128PlusPlus;

/// A [`DefaultRng`] seeded from a `u64` (SplitMix64 expansion of the seed).
///
/// ```
/// use lara_attn::random::{default_rng, fill_standard_normal};
/// let (mut a, mut b) = ([0.0f32; 5], [0.0f32; 5]);
/// fill_standard_normal(&mut default_rng(7), &mut a);
/// fill_standard_normal(&mut default_rng(7), &mut b);
/// assert_eq!(a, b);
/// ```
pub fn default_rng(seed: u64) -> DefaultRng {
    DefaultRng::seed_from_u64(seed)
}

/// A uniform draw in `[0, 1)` with 24 random bits (every value exactly representable).
pub fn uniform<R: RngCore + ?Sized>(rng: &mut R) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}

/// Standard normal draws, one at a time, by the Box–Muller transform in `f32` arithmetic (no
/// `f64` routine: the same bits on every target, and cheap on single-precision FPUs): two
/// `u32` draws give two normals, the second is kept for the next call. `u1 ∈ [2^-32, 1]`, so the
/// radius `√(−2 ln u1)` reaches 6.66σ.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NormalStream {
    spare: Option<f32>,
}

impl NormalStream {
    pub(crate) fn next<R: RngCore + ?Sized>(&mut self, rng: &mut R) -> f32 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        // u1 ∈ [2^-32, 1] so that ln(u1) is finite; u2 ∈ [0, 1).
        let u1 = (rng.next_u32() | 1) as f32 * (1.0 / 4_294_967_296.0);
        let u2 = uniform(rng);
        // z0, z1 = √(−2 ln u1) · (cos, sin)(2π u2)
        let radius = libm::sqrtf(-2.0 * ln(u1));
        let (sin, cos) = sin_cos(core::f32::consts::TAU * u2);
        self.spare = Some(radius * sin);
        radius * cos
    }
}

/// Fills `out` with iid `N(0, 1)` draws.
pub fn fill_standard_normal<R: RngCore + ?Sized>(rng: &mut R, out: &mut [f32]) {
    let mut normals = NormalStream::default();
    for x in out {
        *x = normals.next(rng);
    }
}

/// Adds `factor · eps`, `eps` iid `N(0, 1)`, to every element of `out` (a proposal
/// `W = mu + factor · eps`).
pub(crate) fn add_scaled_normal<R: RngCore + ?Sized>(rng: &mut R, factor: f32, out: &mut [f32]) {
    let mut normals = NormalStream::default();
    for x in out {
        *x += factor * normals.next(rng);
    }
}

/// The scale of the proposal noise of RA and LARA, `W = mu + factor · eps` with
/// `eps ~ N(0, I)`.
///
/// The official code adds `eps` to the unscaled `mu`; in the paper's scaled variables
/// (`q' = d^-1/4 q`, `k' = d^-1/4 k`) that is noise of variance `d^-1/2`, not 1, and RA keeps a
/// bias. [`NoiseScale::Paper`] multiplies `eps` by `d^1/4`: unit variance in the scaled
/// variables, the paper's estimator, and RA becomes unbiased.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NoiseScale {
    /// `W = mu + eps`, as the official code (and the golden files): the default.
    #[default]
    Official,
    /// `W = mu + d^1/4 · eps`: unit variance in the paper's scaled variables.
    Paper,
}

impl NoiseScale {
    /// The factor on `eps` for model dimension `dim`: 1 or `dim^1/4`.
    pub fn factor(self, dim: usize) -> f32 {
        match self {
            NoiseScale::Official => 1.0,
            NoiseScale::Paper => libm::sqrtf(libm::sqrtf(dim as f32)),
        }
    }

    /// [`factor`](Self::factor) as a `const fn`, for the int8 plans: the same bits (both square
    /// roots are correctly rounded), while the `f32` kernels keep `libm::sqrtf` (their flash
    /// budget has no room for a second square root).
    pub(crate) const fn factor_const(self, dim: usize) -> f32 {
        match self {
            NoiseScale::Official => 1.0,
            NoiseScale::Paper => crate::math::sqrt(crate::math::sqrt(dim as f32)),
        }
    }
}

/// Fills `omega [features, dim]` with iid `N(0, 1)` entries: the projection the official code
/// draws afresh in training mode.
///
/// # Errors
/// [`Error::ZeroFeatures`] or [`Error::ZeroDimension`] for a zero size,
/// [`Error::LengthMismatch`] if `omega.len() != features · dim`.
pub fn gaussian_omega<R: RngCore + ?Sized>(
    rng: &mut R,
    features: usize,
    dim: usize,
    omega: &mut [f32],
) -> Result<(), Error> {
    check_omega_dims(features, dim, omega)?;
    fill_standard_normal(rng, omega);
    Ok(())
}

/// Attempts per row before an orthogonal block is declared impossible with this generator.
const MAX_REDRAWS: usize = 16;

/// Fills `omega [features, dim]` with orthogonal random features (Performer's
/// `gaussian_orthogonal_random_matrix`): blocks of `dim` mutually orthogonal unit rows, each
/// block an independent uniformly random orthonormal frame (Gram–Schmidt of iid Gaussian rows,
/// equal in distribution to the `Q` of a Gaussian QR), the last block keeping `features mod dim`
/// rows; then every row is rescaled by the norm of an independent `N(0, I_dim)` vector (a
/// chi-distributed length), so each row is marginally `N(0, I_dim)`.
///
/// # Errors
/// As [`gaussian_omega`] (checked before anything is written), plus
/// [`Error::DegenerateRandomness`] if the generator keeps producing (nearly) linearly dependent
/// rows (a stuck or constant generator: for a working one, 16 failed redraws of a row have a
/// probability far below `10^-40`). The rows are built in place, so that error is found only
/// after earlier rows were written, and their previous contents cannot be restored without a
/// second buffer: `omega` is then filled with NaN, so that no half-built projection is left
/// that a kernel would accept (every kernel refuses it with [`Error::NonFinite`]).
pub fn orthogonal_omega<R: RngCore + ?Sized>(
    rng: &mut R,
    features: usize,
    dim: usize,
    omega: &mut [f32],
) -> Result<(), Error> {
    check_omega_dims(features, dim, omega)?;
    let mut normals = NormalStream::default();
    if let Err(error) = orthonormal_frames(rng, &mut normals, dim, omega) {
        omega.fill(f32::NAN);
        return Err(error);
    }
    // Rescale every row by an independent chi(dim)-distributed length.
    for row in rows_mut(omega, dim) {
        let sum_sq: f32 = (0..dim)
            .map(|_| {
                let z = normals.next(rng);
                z * z
            })
            .sum();
        scale(row, libm::sqrtf(sum_sq));
    }
    Ok(())
}

/// One orthonormal frame per block of `dim` rows of `omega` (the last block may be partial).
fn orthonormal_frames<R: RngCore + ?Sized>(
    rng: &mut R,
    normals: &mut NormalStream,
    dim: usize,
    omega: &mut [f32],
) -> Result<(), Error> {
    for frame in omega.chunks_mut(dim.saturating_mul(dim).max(1)) {
        let mut done_len = 0;
        while let Some((done, rest)) = frame.split_at_mut_checked(done_len) {
            let Some(row) = rows_mut(rest, dim).next() else {
                break;
            };
            orthonormal_row(rng, normals, done, row)?;
            done_len += dim;
        }
    }
    Ok(())
}

/// Draws `row` as a Gaussian vector, projects out the orthonormal rows in `done` (twice, for
/// orthogonality to working precision) and normalises it.
fn orthonormal_row<R: RngCore + ?Sized>(
    rng: &mut R,
    normals: &mut NormalStream,
    done: &[f32],
    row: &mut [f32],
) -> Result<(), Error> {
    let dim = row.len();
    for _ in 0..MAX_REDRAWS {
        for x in row.iter_mut() {
            *x = normals.next(rng);
        }
        let drawn_norm = libm::sqrtf(dot(row, row));
        for _ in 0..2 {
            for previous in rows(done, dim) {
                // row ← row − (row·p) p
                let projection = dot(row, previous);
                axpy(-projection, previous, row);
            }
        }
        let norm = libm::sqrtf(dot(row, row));
        // Reject a draw that was (nearly) inside the span of the previous rows.
        if norm > 1e-3 * drawn_norm && norm.is_finite() {
            scale(row, 1.0 / norm);
            return Ok(());
        }
    }
    Err(Error::DegenerateRandomness)
}

fn check_omega_dims(features: usize, dim: usize, omega: &[f32]) -> Result<(), Error> {
    if features == 0 {
        return Err(Error::ZeroFeatures);
    }
    if dim == 0 {
        return Err(Error::ZeroDimension(crate::error::Dim::Model));
    }
    checked_len(features, dim)?;
    check_len(Arg::Omega, omega, features, dim)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `const` noise factor of the int8 plans has the bits of the runtime one.
    #[test]
    fn const_noise_factor_matches() {
        for scale in [NoiseScale::Official, NoiseScale::Paper] {
            for dim in 1..=4096 {
                let (runtime, constant) = (scale.factor(dim), scale.factor_const(dim));
                assert_eq!(
                    runtime.to_bits(),
                    constant.to_bits(),
                    "{scale:?}, d = {dim}"
                );
            }
        }
    }

    #[test]
    fn normal_moments() {
        let mut rng = default_rng(1);
        let mut x = [0.0f32; 200_000];
        fill_standard_normal(&mut rng, &mut x);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let kurt = x.iter().map(|&v| (v as f64 - mean).powi(4)).sum::<f64>() / n / (var * var);
        // Standard errors: mean 0.0022, var 0.0032, kurtosis ~0.011.
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "var {var}");
        assert!((kurt - 3.0).abs() < 0.06, "kurtosis {kurt}");
    }

    #[test]
    fn orthogonal_blocks_are_orthogonal() {
        let (features, dim) = (11, 4);
        let mut omega = [0.0f32; 44];
        orthogonal_omega(&mut default_rng(3), features, dim, &mut omega).unwrap();
        let rows: Vec<&[f32]> = omega.chunks_exact(dim).collect();
        for block in rows.chunks(dim) {
            for (a, ra) in block.iter().enumerate() {
                for rb in &block[..a] {
                    let cos = dot(ra, rb) / libm::sqrtf(dot(ra, ra) * dot(rb, rb));
                    assert!(cos.abs() < 1e-5, "rows not orthogonal: cos {cos}");
                }
            }
        }
        // Norms are chi(dim)-distributed, not all equal to 1.
        let norms: Vec<f32> = rows.iter().map(|r| libm::sqrtf(dot(r, r))).collect();
        assert!(norms.iter().any(|&n| (n - 1.0).abs() > 0.05), "{norms:?}");
    }

    #[test]
    fn orthogonal_rows_have_gaussian_second_moment() {
        // E[ω ωᵀ] = I for rows of N(0, I): check the average of ω_r[0]² and ω_r[0] ω_r[1].
        let (features, dim) = (4000, 8);
        let mut omega = vec![0.0f32; features * dim];
        orthogonal_omega(&mut default_rng(9), features, dim, &mut omega).unwrap();
        let rows = omega.chunks_exact(dim);
        let (mut diag, mut off) = (0.0f64, 0.0f64);
        for row in rows {
            diag += (row[0] * row[0]) as f64;
            off += (row[0] * row[1]) as f64;
        }
        diag /= features as f64;
        off /= features as f64;
        assert!((diag - 1.0).abs() < 0.08, "E[w0^2] = {diag}");
        assert!(off.abs() < 0.06, "E[w0 w1] = {off}");
    }

    /// A generator stuck on one value cannot produce an orthogonal frame: an error, not a hang.
    #[test]
    fn constant_generator_is_an_error() {
        struct Stuck;
        impl RngCore for Stuck {
            fn next_u32(&mut self) -> u32 {
                0x8000_0000
            }
            fn next_u64(&mut self) -> u64 {
                0x8000_0000_0000_0000
            }
            fn fill_bytes(&mut self, dst: &mut [u8]) {
                dst.fill(0x80);
            }
        }
        let mut omega = [0.0f32; 8];
        assert_eq!(
            orthogonal_omega(&mut Stuck, 4, 2, &mut omega),
            Err(Error::DegenerateRandomness)
        );
        // No half-built projection is left (row 0 used to be a unit vector, the rest as
        // given): NaN everywhere, which every kernel refuses.
        assert!(omega.iter().all(|x| x.is_nan()), "{omega:?}");
    }
}
