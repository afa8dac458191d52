//! Scalar building blocks shared by every estimator: `exp`, `ln`, `sin`/`cos` in `f32`, dot
//! products, `y += a·x`, log-sum-exp and the streaming (online) softmax-weighted sum.
//!
//! Written for a single-issue FPU: independent accumulators keep the adder pipeline busy, and
//! no inner loop divides or indexes out of a `chunks_exact`/`zip` iterator.

use crate::slices::rows;

/// `e^x`: the crate's own exponential (the scalar form of the SIMD kernels' `exp`), at most
/// 1 ulp from the correctly rounded result on `[-87.33, 0]`, the range every kernel uses, and
/// cheaper than `libm::expf` (no table, no special-case branches on the fast path).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    crate::simd::exp_f32(x)
}

/// Natural logarithm.
#[inline(always)]
pub(crate) fn ln(x: f32) -> f32 {
    libm::logf(x)
}

/// `√x` correctly rounded, as `libm::sqrtf` (IEEE requires both to round correctly, so they
/// agree on every argument), usable in `const` items: the plan constructors are `const fn`,
/// so a firmware can build its plans at compile time and link no float code for them.
/// `x` negative or NaN gives NaN; `+∞` gives `+∞`.
pub(crate) const fn sqrt(x: f32) -> f32 {
    if x.is_nan() || x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 || x == f32::INFINITY {
        return x;
    }
    // x = m · 2^e with an integer m (24 bits, or fewer for a subnormal)
    let bits = x.to_bits();
    let biased = (bits >> 23) as i32;
    let (mut m, mut e) = if biased == 0 {
        ((bits & 0x7F_FFFF) as u64, -149)
    } else {
        (((bits & 0x7F_FFFF) | 0x80_0000) as u64, biased - 150)
    };
    // an odd exponent moves into m: √(m · 2^e) = √m · 2^(e/2)
    if e % 2 != 0 {
        m <<= 1;
        e -= 1;
    }
    // r = ⌊√(m · 2^(2k))⌋ with k chosen so that r has at least 26 bits (m ≥ 1, m < 2^25)
    let k = (62 - (64 - m.leading_zeros() as i32)) / 2;
    let n = m << (2 * k);
    let r = n.isqrt();
    // the low bit made sticky (round to odd) keeps the single rounding of `as f32` correct
    let r = r | (r * r != n) as u64;
    // · 2^(e/2 − k), a power of two in the normal range for every positive f32
    let scale = f32::from_bits(((e / 2 - k + 127) as u32) << 23);
    r as f32 * scale
}

/// `(sin x, cos x)` in `f32` arithmetic only (no `f64` routine is linked, which matters on
/// cores whose FPU is single precision). `x = j·π/2 + r` with `j = round(2x/π)` and `r` by a
/// three-part Cody–Waite reduction, then Cephes' minimax polynomials on `|r| ≤ π/4` and the
/// quadrant `j mod 4`. Absolute error against `f64` (the unit test below): at most
/// `1.6 · 2^-24` for `|x| ≤ 800`, `17 · 2^-24` for `|x| ≤ 10^5` (where consecutive `f32` are
/// `2^-7` apart); beyond `6.6 · 10^6` a bounded but meaningless value, as any `f32` argument
/// that large must give. NaN and infinities give NaN.
pub(crate) fn sin_cos(x: f32) -> (f32, f32) {
    // π/2 = PIO2_1 + PIO2_2 + PIO2_3, the first two with few significant bits
    const PIO2_1: f32 = 1.570_312_5;
    const PIO2_2: f32 = 4.837_513e-4;
    const PIO2_3: f32 = 7.549_79e-8;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer (|v| < 2^22).
    const ROUNDER: f32 = 12_582_912.0;
    const LIMIT: f32 = 4_194_304.0;
    // j = round(x · 2/π)
    let scaled = x * core::f32::consts::FRAC_2_PI;
    let (j, r) = if scaled.abs() < LIMIT {
        let j = (scaled + ROUNDER) - ROUNDER;
        // r = x − j·π/2
        (j, ((x - j * PIO2_1) - j * PIO2_2) - j * PIO2_3)
    } else {
        // |x| ≥ 6.6 · 10^6 (consecutive f32 at least 0.5 apart), an infinity or NaN: no f32
        // reduction means anything, and the three-part one would leave an |r| large enough
        // to overflow the polynomials (NaN from |x| ≈ 10^12 on). r = 0 (NaN for NaN and the
        // infinities): a bounded value, the quadrant's ±1 or 0.
        (scaled, x * 0.0)
    };
    let z = r * r;
    // sin r ≈ r + r·z·(s1 + z·(s2 + z·s3)),  cos r ≈ 1 − z/2 + z²·(c1 + z·(c2 + z·c3))
    let sin = r + r * z * (-1.666_665_5e-1 + z * (8.332_161e-3 + z * -1.951_529_6e-4));
    let cos = 1.0 - 0.5 * z + z * z * (4.166_664_6e-2 + z * (-1.388_731_6e-3 + z * 2.443_315_7e-5));
    // sin(r + jπ/2), cos(r + jπ/2) by the quadrant j mod 4 (j as i32 saturates: bounded)
    match (j as i32) & 3 {
        0 => (sin, cos),
        1 => (cos, -sin),
        2 => (-sin, -cos),
        _ => (-cos, sin),
    }
}

/// `(n / d, n % d)` for `d > 0`: built for size on a core without a division instruction
/// (`restoring_div_rem`: no division routine linked), else `/` and `%`.
#[inline(always)]
pub(crate) fn div_rem(n: usize, d: usize) -> (usize, usize) {
    #[cfg(all(lara_attn_compact, lara_attn_soft_division))]
    return restoring_div_rem(n, d);
    #[cfg(not(all(lara_attn_compact, lara_attn_soft_division)))]
    {
        let d = d.max(1);
        (n / d, n % d)
    }
}

/// `(n / d, n % d)` for `d > 0` by a restoring division, one quotient bit per step.
#[cfg(any(test, all(lara_attn_compact, lara_attn_soft_division)))]
#[inline(never)]
pub(crate) fn restoring_div_rem(n: usize, d: usize) -> (usize, usize) {
    // (rest < d throughout: the next bit of 2 · rest + bit, one bit more with `top`, takes
    // one subtraction at most)
    let (mut quotient, mut rest) = (0usize, 0usize);
    for bit in (0..usize::BITS).rev() {
        let top = rest >> (usize::BITS - 1);
        rest = (rest << 1) | ((n >> bit) & 1);
        if top != 0 || rest >= d {
            rest = rest.wrapping_sub(d);
            quotient |= 1 << bit;
        }
    }
    (quotient, rest)
}

/// `a·b` over the common length, with four independent accumulators.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let (a4, a_tail) = a[..len].as_chunks::<4>();
    let (b4, b_tail) = b[..len].as_chunks::<4>();
    let mut acc = [0.0f32; 4];
    for (x, y) in a4.iter().zip(b4) {
        for ((s, xi), yi) in acc.iter_mut().zip(x).zip(y) {
            *s += xi * yi;
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// `|x|² / 2`.
#[inline]
pub(crate) fn half_sq_norm(x: &[f32]) -> f32 {
    0.5 * dot(x, x)
}

/// `y += a·x`.
#[inline]
pub(crate) fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// `y *= a`.
#[inline]
pub(crate) fn scale(y: &mut [f32], a: f32) {
    for yi in y {
        *yi *= a;
    }
}

/// `max_i x_i` (`-inf` for an empty slice).
#[inline]
pub(crate) fn max(x: &[f32]) -> f32 {
    x.iter().fold(f32::NEG_INFINITY, |m, &xi| m.max(xi))
}

/// `log Σ_i exp(x_i)` in one streaming pass.
pub(crate) fn log_sum_exp_of(x: impl Iterator<Item = f32>) -> f32 {
    let mut state = OnlineLse::EMPTY;
    for xi in x {
        state.push_scalar(xi);
    }
    state.log_sum_exp()
}

/// `x ← softmax(x)` in place, stabilised by the maximum.
pub(crate) fn softmax_in_place(x: &mut [f32]) {
    let m = max(x);
    let mut sum = 0.0;
    for xi in x.iter_mut() {
        *xi = exp(*xi - m);
        sum += *xi;
    }
    scale(x, 1.0 / sum);
}

/// Keys per block of the streaming softmax: the logits of one block live in scratch, and the
/// running maximum is updated (and the accumulator rescaled) at most once per block.
pub(crate) const KEY_BLOCK: usize = 32;

/// `acc = Σ_j softmax_j(logit_j) · value_j` over all rows `j`, streaming over blocks of
/// [`KEY_BLOCK`] rows so no O(n) buffer is needed (the online softmax of Milakov & Gimelshein).
///
/// `logits` yields one logit per value row; `values` holds the rows `[n, d_v]` (`d_v > 0`);
/// `acc` is `[d_v]` and is overwritten. Returns `log Σ_j exp(logit_j)`.
pub(crate) fn softmax_weighted_sum(
    mut logits: impl Iterator<Item = f32>,
    values: &[f32],
    value_dim: usize,
    acc: &mut [f32],
    block: &mut [f32; KEY_BLOCK],
) -> f32 {
    acc.fill(0.0);
    let mut running_max = f32::NEG_INFINITY;
    let mut running_sum = 0.0f32;
    for value_block in values.chunks(KEY_BLOCK.saturating_mul(value_dim).max(1)) {
        let mut block_max = f32::NEG_INFINITY;
        for ((l, logit), _) in block
            .iter_mut()
            .zip(&mut logits)
            .zip(rows(value_block, value_dim))
        {
            *l = logit;
            block_max = block_max.max(logit);
        }
        if block_max == f32::NEG_INFINITY {
            // Every key of the block is masked (logit −∞): no contribution.
            continue;
        }
        // Rescale what was accumulated so far when the block raises the maximum.
        if block_max > running_max {
            let rescale = exp(running_max - block_max);
            scale(acc, rescale);
            running_sum *= rescale;
            running_max = block_max;
        }
        // acc += exp(l_j − max) · v_j; the block's weights summed on their own first (the
        // running sum then carries n / KEY_BLOCK roundings, not n)
        let mut block_sum = 0.0;
        for (&l, value) in block.iter().zip(rows(value_block, value_dim)) {
            let w = exp(l - running_max);
            block_sum += w;
            axpy(w, value, acc);
        }
        running_sum += block_sum;
    }
    scale(acc, 1.0 / running_sum);
    running_max + ln(running_sum)
}

/// Running `log Σ exp(x)` together with a running `Σ exp(x) · value`, one element at a time:
/// the state of one landmark (or one feature) while keys stream past.
#[derive(Clone, Copy)]
pub(crate) struct OnlineLse {
    pub max: f32,
    pub sum: f32,
}

impl OnlineLse {
    pub const EMPTY: OnlineLse = OnlineLse {
        max: f32::NEG_INFINITY,
        sum: 0.0,
    };

    /// Adds `exp(x)·value` to `acc` and `exp(x)` to the running sum, both kept relative to the
    /// running maximum. `x = −∞` adds nothing (even to an empty state, whose maximum is `−∞`).
    #[inline]
    pub fn push(&mut self, x: f32, value: &[f32], acc: &mut [f32]) {
        // (one block holding every term: nothing before it)
        let mut sum = self.sum;
        let mut state = OnlineLse {
            max: self.max,
            sum: 0.0,
        };
        state.push_in_block(&mut sum, x, value, acc);
        (self.max, self.sum) = (state.max, sum);
    }

    /// [`push`](Self::push) into the running sum of a block of terms: `block` sums the
    /// block's `exp(x)`, `self.sum` the blocks before it (both relative to the running maximum;
    /// the caller adds `block` to `self.sum` at the end of each block). Summing each block on
    /// its own, a sum over `n` terms carries the rounding of `n / block` additions rather than
    /// of `n` (at n = 65,536 and peaked softmaxes, 2e-6 relative instead of 3e-5).
    #[inline]
    pub fn push_in_block(&mut self, block: &mut f32, x: f32, value: &[f32], acc: &mut [f32]) {
        if x == f32::NEG_INFINITY {
            return;
        }
        if x > self.max {
            // New maximum: rescale the old terms by exp(old_max − x); the new term weighs 1.
            let rescale = exp(self.max - x);
            self.sum *= rescale;
            *block = *block * rescale + 1.0;
            for (a, v) in acc.iter_mut().zip(value) {
                *a = *a * rescale + v;
            }
            self.max = x;
        } else {
            let w = exp(x - self.max);
            *block += w;
            axpy(w, value, acc);
        }
    }

    /// Adds `exp(x)` to the running sum.
    #[inline]
    pub fn push_scalar(&mut self, x: f32) {
        self.push(x, &[], &mut []);
    }

    /// `log Σ exp(x)` over everything pushed.
    pub fn log_sum_exp(&self) -> f32 {
        self.max + ln(self.sum)
    }
}

#[cfg(test)]
mod tests {
    use super::{div_rem, restoring_div_rem, sin_cos, sqrt};

    /// [`div_rem`] and [`restoring_div_rem`] against `/` and `%`: small and large operands,
    /// divisors of one bit to the top bit.
    #[test]
    fn div_rem_matches_the_division() {
        let mut seed = 0x9E37_79B9u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize
        };
        let edges = [
            0,
            1,
            2,
            3,
            7,
            8,
            255,
            256,
            1 << 31,
            usize::MAX - 1,
            usize::MAX,
        ];
        for n in (0..2000).chain(edges) {
            for d in (1..70).chain(edges.into_iter().filter(|&d| d > 0)) {
                assert_eq!(div_rem(n, d), (n / d, n % d), "{n} / {d}");
                assert_eq!(restoring_div_rem(n, d), (n / d, n % d), "{n} / {d}");
            }
        }
        for _ in 0..100_000 {
            let (n, d) = (next() << (next() % 32), (next() >> (next() % 32)).max(1));
            assert_eq!(div_rem(n, d), (n / d, n % d), "{n} / {d}");
            assert_eq!(restoring_div_rem(n, d), (n / d, n % d), "{n} / {d}");
        }
    }

    /// The `const` square root has `libm::sqrtf`'s bits: every 251st positive `f32` (zero,
    /// subnormals, normals up to `f32::MAX`), every integer up to 2^16, and the special values.
    #[test]
    fn sqrt_matches_libm() {
        let sweep = (0..0x7F80_0000u32).step_by(251).map(f32::from_bits);
        for x in sweep.chain((0..=1u32 << 16).map(|i| i as f32)) {
            assert_eq!(sqrt(x).to_bits(), libm::sqrtf(x).to_bits(), "sqrt({x:e})");
        }
        assert_eq!(sqrt(f32::INFINITY), f32::INFINITY);
        assert!(sqrt(-1.0).is_nan() && sqrt(f32::NAN).is_nan());
        assert_eq!(sqrt(-0.0).to_bits(), (-0.0f32).to_bits());
    }

    /// The worst error of `sin_cos` against `f64` over `n` points spread over `[-limit, limit]`,
    /// in units of `2^-24` (absolute, for results of magnitude up to 1).
    fn worst_error(limit: f32, n: usize) -> f64 {
        let mut worst = 0.0f64;
        for i in 0..=n {
            let x = -limit + 2.0 * limit * (i as f32 / n as f32);
            let (s, c) = sin_cos(x);
            let (rs, rc) = (f64::from(x).sin(), f64::from(x).cos());
            let e = (f64::from(s) - rs).abs().max((f64::from(c) - rc).abs());
            worst = worst.max(e * f64::from(1u32 << 24));
        }
        worst
    }

    /// Measured: 1.54 · 2^-24 up to |x| = 800, 16.1 · 2^-24 up to 10^5.
    #[test]
    fn sin_cos_against_f64() {
        for (limit, bound) in [(4.0, 2.0), (800.0, 2.0), (1e5, 32.0)] {
            let worst = worst_error(limit, 2_000_000);
            assert!(worst <= bound, "|x| <= {limit}: {worst} x 2^-24 > {bound}");
        }
        assert!(sin_cos(f32::NAN).0.is_nan() && sin_cos(f32::INFINITY).1.is_nan());
    }

    /// Beyond `6.6 · 10^6` the value is meaningless but bounded: it once overflowed the
    /// polynomials into NaN from `|x| ≈ 10^12` on (found by the fuzz target `causal`).
    #[test]
    fn sin_cos_of_huge_arguments_is_bounded() {
        let mut x = 6.0e6f32;
        while x < f32::MAX / 2.0 {
            for x in [x, -x, x * 1.37, -x * 1.37] {
                let (s, c) = sin_cos(x);
                assert!(
                    s.abs() <= 1.0 && c.abs() <= 1.0,
                    "sin_cos({x:e}) = ({s}, {c})"
                );
            }
            x *= 2.0;
        }
        assert!(sin_cos(f32::NEG_INFINITY).0.is_nan());
    }
}
