//! `e^x` in integer arithmetic, for cores without an FPU (Cortex-M0/M0+, M3, M23, M33 without
//! FPU), where every `f32` operation is a call into the soft-float library: the float form of
//! [`exp`](super::exp) costs about 1,600 instructions on a Cortex-M3 and 2,700 on ARMv6-M, and
//! `libm::expf` 1,360 and 2,300; this one about 60 and 130 (measured by the firmware example).
//!
//! `e^x = 2^y`, `y = x·log2 e`, in 32.32 fixed point: `y` from the 24-bit mantissa of `x` and a
//! 64-bit `log2 e` (exact to 2^-32 in `y`), `n = ⌊y⌋`, the fraction `f = y − n` split as
//! `f = j/16 + g` with `g < 1/16`; `2^f = 2^(j/16) · e^(g·ln 2)` from a 16-entry table (Q1.31)
//! and a degree-4 polynomial in `u = g·ln 2 < 0.0434` (Q0.32; truncation error `u^5/120 <
//! 2^-29`), each product the high word of a 32 × 32-bit multiplication; the 24-bit mantissa
//! rounded to nearest from the 32-bit result, and the exponent `n` added to its bits.
//! Relative error before the final rounding below `2^-28`: within 1 ulp of the correctly
//! rounded result ([`EXP_MAX_ULP`](super::EXP_MAX_ULP), checked over every `f32` in
//! `[-87.33, 0]` by the ignored test below). Results differ from the float form in the last bit
//! for some arguments. Out of range: as [`exp`](super::exp) (0 below
//! [`EXP_UNDERFLOW`](super::EXP_UNDERFLOW), `+inf` above
//! [`EXP_OVERFLOW`](super::EXP_OVERFLOW), NaN for NaN).

use super::{EXP_OVERFLOW, EXP_UNDERFLOW};

/// `log2 e · 2^63`, rounded: its high and low words.
const LOG2_E_HI: u32 = 0xb8aa_3b29;
const LOG2_E_LO: u32 = 0x5c17_f0bc;
/// `ln 2 · 2^32`, rounded (Q0.32).
const LN2: u32 = 2_977_044_472;
/// `1/6` and `1/24` in Q0.32, rounded.
const SIXTH: u32 = 715_827_883;
const TWENTY_FOURTH: u32 = 178_956_971;
/// `2^(j/16)` in Q1.31, rounded.
const POW2_SIXTEENTHS: [u32; 16] = [
    0x8000_0000,
    0x85aa_c368,
    0x8b95_c1e4,
    0x91c3_d374,
    0x9837_f052,
    0x9ef5_3261,
    0xa5fe_d6aa,
    0xad58_3eea,
    0xb504_f334,
    0xbd08_a39f,
    0xc567_2a11,
    0xce24_8c15,
    0xd744_fccb,
    0xe0cc_deec,
    0xeac0_c6e8,
    0xf525_7d15,
];

/// The high word of `a · b` (both unsigned 32-bit): one `umull` where the core has it.
#[cfg(not(all(target_arch = "arm", not(target_has_atomic = "32"))))]
#[inline(always)]
fn mul_hi(a: u32, b: u32) -> u32 {
    mul_wide(a, b).1
}

/// The high word of `a · b` without a 64-bit multiply (ARMv6-M: `muls` only; the last cross
/// term's carry is dropped, an error below 2 units of `2^-32`).
#[cfg(all(target_arch = "arm", not(target_has_atomic = "32")))]
#[inline(always)]
fn mul_hi(a: u32, b: u32) -> u32 {
    mul_hi_halves(a, b)
}

/// [`mul_hi`] from 16-bit halves.
#[cfg(any(test, all(target_arch = "arm", not(target_has_atomic = "32"))))]
#[inline(always)]
fn mul_hi_halves(a: u32, b: u32) -> u32 {
    let (a_hi, a_lo) = (a >> 16, a & 0xffff);
    let (b_hi, b_lo) = (b >> 16, b & 0xffff);
    let cross = ((a_hi * b_lo) >> 16) + ((a_lo * b_hi) >> 16);
    a_hi * b_hi + cross
}

/// `a · b` as (low, high) words: one `umull` where the core has it.
#[cfg(not(all(target_arch = "arm", not(target_has_atomic = "32"))))]
#[inline(always)]
fn mul_wide(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    (p as u32, (p >> 32) as u32)
}

/// `a · b` as (low, high) words from 16-bit halves (ARMv6-M, exact).
#[cfg(all(target_arch = "arm", not(target_has_atomic = "32")))]
#[inline(always)]
fn mul_wide(a: u32, b: u32) -> (u32, u32) {
    mul_wide_halves(a, b)
}

/// [`mul_wide`] from 16-bit halves: four 32-bit products.
#[cfg(any(test, all(target_arch = "arm", not(target_has_atomic = "32"))))]
#[inline(always)]
fn mul_wide_halves(a: u32, b: u32) -> (u32, u32) {
    let (a_hi, a_lo) = (a >> 16, a & 0xffff);
    let (b_hi, b_lo) = (b >> 16, b & 0xffff);
    let (low, cross_a, cross_b) = (a_lo * b_lo, a_lo * b_hi, a_hi * b_lo);
    let middle = (low >> 16) + (cross_a & 0xffff) + (cross_b & 0xffff);
    let lo = (low & 0xffff) | (middle << 16);
    let hi = a_hi * b_hi + (cross_a >> 16) + (cross_b >> 16) + (middle >> 16);
    (lo, hi)
}

/// `e^x`, see the module documentation.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    exp_with(x, mul_hi)
}

/// `e^x` with the given high-word product (so that the host tests both).
#[inline(always)]
fn exp_with(x: f32, mul_hi: impl Fn(u32, u32) -> u32) -> f32 {
    let bits = x.to_bits();
    // |x| <= 87.3365 (= −EXP_UNDERFLOW): one integer comparison; NaN and infinities fail it
    if bits & 0x7fff_ffff > (-EXP_UNDERFLOW).to_bits() {
        return if x < EXP_UNDERFLOW {
            0.0
        } else if x <= EXP_OVERFLOW {
            in_range(bits, &mul_hi)
        } else {
            // +inf above the range, NaN stays NaN
            x + f32::INFINITY
        };
    }
    in_range(bits, &mul_hi)
}

/// `e^x` for `|x| <= 88.377` given as its bits (`x` finite).
#[inline(always)]
fn in_range(bits: u32, mul_hi: &impl Fn(u32, u32) -> u32) -> f32 {
    let biased = (bits >> 23) & 0xff;
    // |x| = m · 2^(biased − 150), m the 24-bit mantissa (0 for ±0)
    let m = if biased == 0 {
        0
    } else {
        (bits & 0x7f_ffff) | 0x80_0000
    };
    // P = m · log2 e · 2^31 (64-bit log2 e: two products), as two words
    let (lo, hi) = mul_wide(m, LOG2_E_HI);
    let (lo, carry) = lo.overflowing_add(mul_hi(m, LOG2_E_LO));
    let hi = hi + u32::from(carry);
    // |y| · 2^32 = P · 2^(biased − 149), y = x · log2 e, as two words (in 32-bit operations:
    // ARMv6-M has no 64-bit shift; |x| < 2^-24 shifts everything out, e^x rounds to 1)
    let shift = 149u32.saturating_sub(biased);
    let (y_lo, y_hi) = match shift {
        0..32 => (
            (lo >> shift) | hi.checked_shl(32 - shift).unwrap_or(0),
            hi >> shift,
        ),
        32..64 => (hi >> (shift - 32), 0),
        _ => (0, 0),
    };
    // n = ⌊y⌋, f = y − n in Q0.32 (the two's complement of |y| for negative x)
    let (n, f) = if bits >> 31 == 1 {
        (
            (!y_hi).wrapping_add(u32::from(y_lo == 0)),
            y_lo.wrapping_neg(),
        )
    } else {
        (y_hi, y_lo)
    };
    let n = n as i32;
    // f = j/16 + g:  u = g · ln 2,  e^u − 1 = u + u²·(1/2 + u·(1/6 + u/24))
    let (j, g) = ((f >> 28) as usize, f & 0x0fff_ffff);
    let u = mul_hi(g, LN2);
    let poly = 0x8000_0000 + mul_hi(u, SIXTH + mul_hi(u, TWENTY_FOURTH));
    let e_u = u + mul_hi(mul_hi(u, u), poly);
    // 2^f = 2^(j/16) · e^u in Q1.31, in [2^31, 2^32)
    let t = POW2_SIXTEENTHS[j & 15];
    let r = t + mul_hi(t, e_u);
    // e^x = r · 2^(n − 31): 24 mantissa bits rounded to nearest, the exponent added to the bits
    // (a mantissa rounded up to 2^24 carries into the exponent, as it should)
    let result = if n >= -126 {
        (((n + 126) as u32) << 23) + (r >> 8) + ((r >> 7) & 1)
    } else if n == -127 {
        // subnormal: r · 2^-158 in units of 2^-149
        (r >> 9) + ((r >> 8) & 1)
    } else {
        0
    };
    f32::from_bits(result)
}

#[cfg(test)]
mod tests {
    use super::{exp_with, mul_hi_halves, mul_wide, mul_wide_halves};
    use crate::EXP_MAX_ULP;

    /// The smallest argument whose result is normal: ln(2^-126).
    const UNDERFLOW: f32 = -87.336_54;

    /// The worst ulp error of both product forms on the arguments with these bit patterns.
    fn worst(bits: impl Iterator<Item = u32>) -> (u32, f32) {
        let mut worst = (0, 0.0);
        for b in bits {
            let x = f32::from_bits(b);
            let reference = (x as f64).exp() as f32;
            for y in [
                exp_with(x, |a, b| mul_wide(a, b).1),
                exp_with(x, mul_hi_halves),
            ] {
                let e = y.to_bits().abs_diff(reference.to_bits());
                if e > worst.0 {
                    worst = (e, x);
                }
            }
        }
        worst
    }

    #[test]
    fn products_from_halves() {
        for (a, b) in [
            (0, 0),
            (1, 1),
            (u32::MAX, u32::MAX),
            (0x8000_0000, 3),
            (0xdead_beef, 0x1234_5678),
        ] {
            let exact = u64::from(a) * u64::from(b);
            assert_eq!(mul_wide_halves(a, b), (exact as u32, (exact >> 32) as u32));
            assert!((exact >> 32) as u32 - mul_hi_halves(a, b) <= 2);
        }
    }

    #[test]
    fn sample_and_special_values() {
        // every 997th negative float down to the underflow, and every 997th positive one up
        // to 88.37
        let negative = ((-0.0f32).to_bits()..=UNDERFLOW.to_bits()).step_by(997);
        let positive = (0..=88.37f32.to_bits()).step_by(997);
        let (ulps, at) = worst(negative.chain(positive));
        assert!(ulps <= EXP_MAX_ULP, "{ulps} ulp at {at:e}");
        for (x, expected) in [
            (f32::NEG_INFINITY, 0.0),
            (-104.0, 0.0),
            (-87.5, 0.0),
            (0.0, 1.0),
            (-0.0, 1.0),
            (1e-30, 1.0),
            (89.0, f32::INFINITY),
            (f32::INFINITY, f32::INFINITY),
        ] {
            assert_eq!(exp_with(x, mul_hi_halves), expected, "exp({x})");
            assert_eq!(exp_with(x, |a, b| mul_wide(a, b).1), expected, "exp({x})");
        }
        assert!(exp_with(f32::NAN, mul_hi_halves).is_nan());
    }

    #[test]
    #[ignore = "exhaustive (1.1e9 arguments, both product forms); run with --release -- --ignored"]
    fn every_f32_in_the_kernels_range() {
        let (ulps, at) = worst((-0.0f32).to_bits()..=UNDERFLOW.to_bits());
        println!(
            "integer exp: max error {ulps} ulp (at {at:e}) over every f32 in [{UNDERFLOW}, 0]"
        );
        assert!(ulps <= EXP_MAX_ULP, "{ulps} ulp at {at:e}");
    }
}
