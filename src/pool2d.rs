//! 2-D landmarks for image-patch tokens: adaptive average pooling of `q` and `k` laid out on an
//! `H × W` grid to a `P_h × P_w` grid of landmarks (the paper's vision experiments pool to a
//! `√C × √C` grid), with PyTorch's `AdaptiveAvgPool2d` semantics.
//!
//! Token `t = y·W + x`, row `t` of the input `[H·W, d]` (row-major over the grid, features
//! last: PyTorch's channels-last layout), sits at grid row `y`, column `x`. Output cell
//! `(i, j)`, row `i·P_w + j` of `out [P_h·P_w, d]`, is the mean over the rectangle
//!
//! ```text
//! rows    [h0_i, h1_i) = [floor(i·H / P_h), ceil((i+1)·H / P_h))
//! columns [w0_j, w1_j) = [floor(j·W / P_w), ceil((j+1)·W / P_w))
//! out[i·P_w + j] = (Σ_{y ∈ [h0_i, h1_i)} Σ_{x ∈ [w0_j, w1_j)} token[y·W + x])
//!                  / ((h1_i − h0_i)·(w1_j − w0_j))
//! ```
//!
//! (PyTorch's `start_index` and `end_index`). When `P` does not divide the grid side, adjacent
//! cells overlap by one row or column: 3 rows pooled to 2 are `[0, 2)` and `[1, 3)`. The sum runs
//! row by row, left to right within a row, in `f32`, and is divided once by the cell's size: the
//! order of PyTorch's channels-last CPU kernel (other PyTorch kernels may sum or divide in
//! another order, which changes the last bits, not the cells).
//!
//! With `H = 1` this is `AdaptiveAvgPool1d`, which agrees with LARA's 1-D segment means
//! ([`lara::segment_means`]) exactly when `P_w` divides `W`: otherwise PyTorch's cells overlap
//! while the official LARA split partitions the sequence (the first segments one row shorter).
//!
//! Cost: `O(H·W·d)` time, no scratch: each token is added once per cell that holds it, at most
//! `(H + P_h − 1)·(W + P_w − 1)·d ≤ 4·H·W·d` additions (exactly `H·W·d` when the pool divides
//! the grid), and `P_h·P_w·d` divisions.

use crate::error::{Arg, Dim, Error};
use crate::lara;
use crate::math::axpy;
use crate::shape::{check_finite, check_len, checked_len};
use crate::slices::{rows, rows_mut};

/// The number of landmarks `P_h·P_w` of a pool to `pooled = (P_h, P_w)` (saturating; a
/// `const fn` so firmware can size its buffers at compile time).
pub const fn landmark_count(pooled: (usize, usize)) -> usize {
    pooled.0.saturating_mul(pooled.1)
}

/// The length `P_h·P_w·d` of one pooled output `[P_h·P_w, d]` (saturating).
pub const fn pooled_len(pooled: (usize, usize), dim: usize) -> usize {
    landmark_count(pooled).saturating_mul(dim)
}

/// Adaptive average pooling of `x [H·W, d]` on the grid `grid = (H, W)` (token `t = y·W + x`)
/// to `pooled = (P_h, P_w)`, written to `out [P_h·P_w, d]` (cell `(i, j)` is row `i·P_w + j`).
///
/// Cell `(i, j)` is the mean of the rows `[floor(i·H/P_h), ceil((i+1)·H/P_h))` ×
/// columns `[floor(j·W/P_w), ceil((j+1)·W/P_w))` of the grid: PyTorch's `AdaptiveAvgPool2d`,
/// including grids that the pool does not divide (adjacent cells then overlap). See the
/// [module documentation](self).
///
/// # Errors
/// Checked in this order, before anything is written (`out` is untouched on error):
/// - [`Error::ZeroDimension`]`(`[`Dim::Queries`]`)` if `H` or `W` is 0 (no tokens),
///   [`Error::ZeroDimension`]`(`[`Dim::Model`]`)` if `dim` is 0;
/// - [`Error::ZeroLandmarks`] if `P_h` or `P_w` is 0, [`Error::TooManyLandmarks`] if one is
///   larger than the grid side it pools (`P_h > H` or `P_w > W`: as
///   [`lara::segment_means`], a landmark per token at most);
/// - [`Error::SizeOverflow`] if `H·W·d` or `P_h·P_w·d` overflows `usize`;
/// - [`Error::LengthMismatch`] with [`Arg::Queries`] for `x`, [`Arg::QueryLandmarks`] for `out`;
/// - [`Error::NonFinite`]`(`[`Arg::Queries`]`)` if `x` holds a NaN or an infinity.
///
/// The sums are in `f32`: finite inputs whose cell sum exceeds `f32::MAX` (values near
/// `f32::MAX / cell size`) give an infinite mean, as in PyTorch.
///
/// # Example
/// ```
/// use lara_attn::pool2d;
/// // A 3 × 3 grid of 1-D tokens 0..9 pooled to 2 × 2: the cells overlap in the middle row and
/// // column ({0,1,3,4}, {1,2,4,5}, {3,4,6,7}, {4,5,7,8}).
/// let x: [f32; 9] = core::array::from_fn(|t| t as f32);
/// let mut out = [0.0; 4];
/// pool2d::adaptive_avg_pool_2d(&x, (3, 3), 1, (2, 2), &mut out)?;
/// assert_eq!(out, [2.0, 3.0, 5.0, 6.0]);
/// # Ok::<(), lara_attn::Error>(())
/// ```
pub fn adaptive_avg_pool_2d(
    x: &[f32],
    grid: (usize, usize),
    dim: usize,
    pooled: (usize, usize),
    out: &mut [f32],
) -> Result<(), Error> {
    check_pool(grid, dim, pooled)?;
    let tokens = checked_len(grid.0, grid.1)?;
    let cells = checked_len(pooled.0, pooled.1)?;
    check_len(Arg::Queries, x, tokens, dim)?;
    check_len(Arg::QueryLandmarks, out, cells, dim)?;
    check_finite(Arg::Queries, x)?;
    write_pool(x, grid, dim, pooled, out);
    Ok(())
}

/// Pools the queries and keys of self-attention over image-patch tokens into the landmarks of
/// [`lara::Landmarks::Given`]: `q̄ = pool(q)` into `q_bar`, `k̄ = pool(k)` into `k_bar` (both
/// `[P_h·P_w, d]`, sized by [`pooled_len`]), and returns the landmarks, `count = P_h·P_w`.
///
/// `q` and `k` are `[H·W, d]` on the same grid `grid = (H, W)`; the pool is
/// [`adaptive_avg_pool_2d`]. (For cross-attention between two grids, pool each with
/// [`adaptive_avg_pool_2d`] and build [`lara::Landmarks::Given`] directly.)
///
/// # Errors
/// Those of [`adaptive_avg_pool_2d`], with [`Arg::Queries`] / [`Arg::Keys`] for `q` / `k` and
/// [`Arg::QueryLandmarks`] / [`Arg::KeyLandmarks`] for `q_bar` / `k_bar`. Every argument is
/// checked before anything is written: on error neither `q_bar` nor `k_bar` is touched.
///
/// # Example
/// LARA over an 8 × 8 grid of patch tokens with a 3 × 3 grid of landmarks (`C = 9`, pooled
/// across a grid that 3 does not divide):
/// ```
/// use lara_attn::{Qkv, Sampling, Shape, lara, pool2d};
/// const GRID: (usize, usize) = (8, 8);
/// const D: usize = 4;
/// const POOLED: (usize, usize) = (3, 3);
/// const C: usize = pool2d::landmark_count(POOLED);
/// const SHAPE: Shape = Shape::self_attention(GRID.0 * GRID.1, D);
///
/// let x: Vec<f32> = (0..GRID.0 * GRID.1 * D).map(|i| (i as f32 * 0.37).sin()).collect();
/// let mut q_bar = [0.0; pool2d::pooled_len(POOLED, D)];
/// let mut k_bar = [0.0; pool2d::pooled_len(POOLED, D)];
/// let landmarks = pool2d::pooled_landmarks(&x, &x, GRID, D, POOLED, &mut q_bar, &mut k_bar)?;
/// let params = lara::Params::new(landmarks, lara::Weighting::Optimal { alpha_coeff: 1.0 });
/// let mut out = vec![0.0; GRID.0 * GRID.1 * D];
/// let mut scratch = [0.0; lara::scratch_len(SHAPE, C, lara::Proposals::Single)];
/// let inputs = Qkv { shape: SHAPE, q: &x, k: &x, v: &x, key_mask: None };
/// lara::attention(&inputs, &params, Sampling::Eval, &mut out, &mut scratch)?;
/// assert!(out.iter().all(|o| o.is_finite()));
/// # Ok::<(), lara_attn::Error>(())
/// ```
pub fn pooled_landmarks<'a>(
    q: &[f32],
    k: &[f32],
    grid: (usize, usize),
    dim: usize,
    pooled: (usize, usize),
    q_bar: &'a mut [f32],
    k_bar: &'a mut [f32],
) -> Result<lara::Landmarks<'a>, Error> {
    check_pool(grid, dim, pooled)?;
    let tokens = checked_len(grid.0, grid.1)?;
    let cells = checked_len(pooled.0, pooled.1)?;
    check_len(Arg::Queries, q, tokens, dim)?;
    check_len(Arg::Keys, k, tokens, dim)?;
    check_len(Arg::QueryLandmarks, q_bar, cells, dim)?;
    check_len(Arg::KeyLandmarks, k_bar, cells, dim)?;
    check_finite(Arg::Queries, q)?;
    check_finite(Arg::Keys, k)?;
    write_pool(q, grid, dim, pooled, q_bar);
    write_pool(k, grid, dim, pooled, k_bar);
    Ok(lara::Landmarks::Given {
        count: cells,
        queries: q_bar,
        keys: k_bar,
    })
}

/// The dimension checks shared by both entry points: no empty grid side or feature dimension,
/// and `1 <= P <= side` for both sides of the pool.
fn check_pool(grid: (usize, usize), dim: usize, pooled: (usize, usize)) -> Result<(), Error> {
    if grid.0 == 0 || grid.1 == 0 {
        return Err(Error::ZeroDimension(Dim::Queries));
    }
    if dim == 0 {
        return Err(Error::ZeroDimension(Dim::Model));
    }
    if pooled.0 == 0 || pooled.1 == 0 {
        return Err(Error::ZeroLandmarks);
    }
    for (landmarks, rows) in [(pooled.0, grid.0), (pooled.1, grid.1)] {
        if landmarks > rows {
            return Err(Error::TooManyLandmarks { landmarks, rows });
        }
    }
    checked_len(checked_len(grid.0, grid.1)?, dim)?;
    checked_len(checked_len(pooled.0, pooled.1)?, dim)?;
    Ok(())
}

/// The pool without checks (`1 <= P <= side` on both sides, `dim >= 1`, lengths match).
pub(crate) fn write_pool(
    x: &[f32],
    grid: (usize, usize),
    dim: usize,
    pooled: (usize, usize),
    out: &mut [f32],
) {
    let grid_row_len = grid.1.saturating_mul(dim);
    let out_row_len = pooled.1.saturating_mul(dim);
    // Pooled row i: grid rows [h0, h1), written to out rows [i·P_w, (i+1)·P_w).
    for ((h0, h1), out_row) in Cells::new(grid.0, pooled.0).zip(rows_mut(out, out_row_len)) {
        // Pooled column j: grid columns [w0, w1), cell (i, j) = out row i·P_w + j.
        for ((w0, w1), mean) in Cells::new(grid.1, pooled.1).zip(rows_mut(out_row, dim)) {
            // sum = Σ_{y ∈ [h0, h1)} Σ_{x ∈ [w0, w1)} x[y·W + x], row by row
            mean.fill(0.0);
            for grid_row in rows(x, grid_row_len).skip(h0).take(h1 - h0) {
                for token in rows(grid_row, dim).skip(w0).take(w1 - w0) {
                    axpy(1.0, token, mean); // 1.0·x is exact: this is mean += x
                }
            }
            // mean = sum / ((h1 − h0)·(w1 − w0)): one division, exactly rounded, as PyTorch
            // divides by its divide_factor = kh·kw.
            let size = ((h1 - h0) * (w1 - w0)) as f32;
            for m in mean.iter_mut() {
                *m /= size;
            }
        }
    }
}

/// The cells `[floor(i·n/p), ceil((i+1)·n/p))` for `i = 0, 1, …, p − 1` of one side of the
/// pool (PyTorch's `start_index(i, p, n)` and `end_index(i, p, n)`), without forming `i·n`
/// (which can overflow `usize` for long sides on 32-bit targets): `i·n = quot_i·p + rem_i` is
/// kept as a quotient and a remainder and advanced by `n = step_quot·p + step_rem` per cell.
struct Cells {
    /// Cells still to yield.
    left: usize,
    /// The pool size `p` (at least 1).
    parts: usize,
    /// `n div p` and `n mod p`.
    step_quot: usize,
    step_rem: usize,
    /// `i·n = quot·p + rem` with `rem < p` for the next cell `i`.
    quot: usize,
    rem: usize,
}

impl Cells {
    /// The `parts` cells over a side of length `len` (`1 <= parts <= len`).
    fn new(len: usize, parts: usize) -> Self {
        // (max(1) is a no-op for checked arguments; it lets the optimiser drop the
        // division-by-zero panic paths.)
        let divisor = parts.max(1);
        Cells {
            left: parts,
            parts: divisor,
            step_quot: len / divisor,
            step_rem: len % divisor,
            quot: 0,
            rem: 0,
        }
    }
}

impl Iterator for Cells {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // start = floor(i·n/p) = quot_i
        let start = self.quot;
        // (i+1)·n = i·n + n: quot += n div p, rem += n mod p, carrying when rem reaches p
        // (rem, step_rem < p, so rem + step_rem < 2p cannot overflow)
        self.quot = self.quot.saturating_add(self.step_quot);
        self.rem += self.step_rem;
        if self.rem >= self.parts {
            self.rem -= self.parts;
            self.quot = self.quot.saturating_add(1);
        }
        // end = ceil((i+1)·n/p) = quot_{i+1} + (rem_{i+1} ≠ 0)
        let end = self.quot.saturating_add(usize::from(self.rem != 0));
        Some((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::Cells;

    #[test]
    fn cells_follow_the_index_formulas() {
        for n in 1..40usize {
            for p in 1..=n {
                let expected: Vec<_> = (0..p)
                    .map(|i| (i * n / p, ((i + 1) * n).div_ceil(p)))
                    .collect();
                let got: Vec<_> = Cells::new(n, p).collect();
                assert_eq!(got, expected, "n={n} p={p}");
            }
        }
    }

    #[test]
    fn cells_do_not_overflow_on_long_sides() {
        // i·n overflows usize here; the quotient–remainder form does not.
        let n = usize::MAX - 4; // ≡ 2 (mod 3) for 32- and 64-bit usize
        let p = 3;
        let got: Vec<_> = Cells::new(n, p).collect();
        let third = n / 3; // n = 3·third + 2
        assert_eq!(got[0], (0, third + 1));
        assert_eq!(got[1], (third, 2 * third + 2));
        assert_eq!(got[2], (2 * third + 1, n));
    }
}
