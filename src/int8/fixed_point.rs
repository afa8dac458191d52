//! The fixed-point arithmetic of the int8 kernels: `2^x` and `log2` in `L16`, scale multipliers,
//! rounding divisions and the streaming softmax state. Integer operations only, no `f32` (but in
//! [`Multiplier::from_f32`], which the checked plan constructors call once).
//!
//! Formats (see the module docs of [`int8`](crate::int8) for where each is used):
//! * `L16`: a base-2 logarithm in `i32` with 16 fractional bits (`x` means `2^(x / 65536)`).
//! * `Q15`: an `i32`/`u32` weight in `[0, 1]` with 15 fractional bits (`32768` = 1).
//! * A [`Multiplier`]: a positive real `m · 2^-shift`, `m` a 24-bit integer (an `f32`'s
//!   significand, so exact).

/// One unit (`2^1`) in `L16`.
pub(crate) const L16_ONE: i32 = 1 << 16;

/// `Q15` weights: `32768` is 1.
pub(crate) const Q15_ONE: u32 = 1 << 15;

/// The running sums of a [`Running`] state stay at most this (so `|Σ w·v| ≤ 128 · 2^23 = 2^30`
/// for int8 values `v`).
pub(crate) const SUM_LIMIT: u32 = 1 << 23;

#[cfg(not(any(lara_attn_helium, lara_attn_compact)))]
use crate::simd::int8::KEY_BLOCK;

/// `round(2^30 · log2(1 + j/16))`, `j = 0..16` (32-bit words: half the flash of 64-bit ones).
pub(crate) const LOG2_TABLE: [u32; 16] = [
    0, 93912511, 182455581, 266210141, 345667660, 421247625, 493310944, 562170370, 628098702,
    691335320, 752091421, 810554283, 866890747, 921250079, 973766362, 1024560487,
];
/// `round(2^30 / (1 + j/16))`, `j = 0..16`.
pub(crate) const INVERSE_TABLE: [u32; 16] = [
    1073741824, 1010580540, 954437177, 904203641, 858993459, 818089009, 780903145, 746950834,
    715827883, 687194767, 660764199, 636291451, 613566757, 592409282, 572662306, 554189329,
];
/// `round(2^30 · 2^(-j/64))`, `j = 0..64`, from which [`POW2_MIDPOINTS`] is built (built for
/// size on the cores without DSP or Helium loops: [`pow2_q30`], a quarter of the flash).
const POW2_Q30: [u32; 64] = [
    1073741824, 1062175491, 1050733751, 1039415261, 1028218693, 1017142735, 1006186087, 995347464,
    984625594, 974019220, 963527098, 953147997, 942880699, 932724001, 922676710, 912737649,
    902905651, 893179563, 883558244, 874040567, 864625413, 855311680, 846098274, 836984114,
    827968132, 819049271, 810226483, 801498734, 792865000, 784324269, 775875538, 767517817,
    759250125, 751071493, 742980960, 734977579, 727060411, 719228525, 711481005, 703816941,
    696235434, 688735596, 681316545, 673977412, 666717336, 659535466, 652430958, 645402981,
    638450708, 631573326, 624770026, 618040012, 611382493, 604796689, 598281827, 591837143,
    585461881, 579155293, 572916640, 566745190, 560640218, 554601009, 548626854, 542717053,
];
/// `round(2^31 · 2^(-a/8))`, `a = 0..8`.
#[cfg(any(
    test,
    all(lara_attn_compact, not(any(lara_attn_dsp, lara_attn_helium)))
))]
const POW2_EIGHTHS: [u32; 8] = [
    2147483648, 1969251188, 1805811301, 1655936265, 1518500250, 1392470869, 1276901417, 1170923762,
];
/// `round(2^31 · 2^(-b/64))`, `b = 0..8`.
#[cfg(any(
    test,
    all(lara_attn_compact, not(any(lara_attn_dsp, lara_attn_helium)))
))]
const POW2_SIXTY_FOURTHS: [u32; 8] = [
    2147483648, 2124350982, 2101467502, 2078830522, 2056437387, 2034285470, 2012372174, 1990694927,
];
/// `⌊POW2_EIGHTHS[j / 8] · POW2_SIXTY_FOURTHS[j mod 8] / 2^32⌋`: `POW2_Q30[j]` or one less.
#[cfg(any(
    test,
    all(lara_attn_compact, not(any(lara_attn_dsp, lara_attn_helium)))
))]
const fn pow2_product(j: usize) -> u32 {
    ((POW2_EIGHTHS[j / 8] as u64 * POW2_SIXTY_FOURTHS[j % 8] as u64) >> 32) as u32
}
/// Bit `j mod 32` of word `j / 32`: `POW2_Q30[j] − pow2_product(j)` (computed and checked to be
/// 0 or 1 by the compiler).
#[cfg(any(
    test,
    all(lara_attn_compact, not(any(lara_attn_dsp, lara_attn_helium)))
))]
const POW2_CARRIES: [u32; 2] = {
    let mut carries = [0u32; 2];
    let mut j = 0;
    while j < 64 {
        let carry = POW2_Q30[j] - pow2_product(j);
        assert!(carry <= 1);
        carries[j / 32] |= carry << (j % 32);
        j += 1;
    }
    carries
};

/// `POW2_Q30[j]` for `j < 64`, built for size on the cores without DSP or Helium loops:
/// `2^(-j/64)` as `2^(-a/8) · 2^(-b/64)` from two tables of eight, plus the carry bit of
/// [`POW2_CARRIES`] (72 B of tables, not 256 B).
#[cfg(any(
    test,
    all(lara_attn_compact, not(any(lara_attn_dsp, lara_attn_helium)))
))]
#[inline(always)]
fn pow2_q30(j: usize) -> u32 {
    let j = j & 63;
    let product = u64::from(POW2_EIGHTHS[j >> 3]) * u64::from(POW2_SIXTY_FOURTHS[j & 7]);
    ((product >> 32) as u32) + ((POW2_CARRIES[j >> 5] >> (j & 31)) & 1)
}

/// `round(2^16 · ln 2)`.
const LN2_Q16: u32 = 45426;
/// `round(2^30 / ln 2)`.
pub(crate) const INV_LN2_Q30: i64 = 1549082005;

/// `1 − e^-z ≈ z − z²/2` in `Q32` for `z < 2^26`: `(z / 2^10)² / 2^13 = z² / 2^33`.
#[inline(always)]
const fn deficit(z: u32) -> u32 {
    z - (((z >> 10) * (z >> 10)) >> 13)
}

/// `2^(-m / 65536)` in `Q30` at the midpoint `m = 64·j + 32` of bucket `j` of the fraction
/// (`0 < j < 1024`): a table of `2^(-j/64)` on the top six bits of `m`, then `e^-z ≈ 1 − z +
/// z²/2` on the other ten (`z < ln 2 / 64`), in `u32` arithmetic (one high word of a `32 ×
/// 32`-bit product, truncated): within `2.4e-7` relative of `2^(-m/65536)`. The first bucket
/// gives `2^0` exactly, so that a reference that stays scales its sums by exactly 1.
const fn pow2_midpoint_q30(j: u32, table: u32) -> u32 {
    if j == 0 {
        return 1 << 30;
    }
    // z = y · ln 2 / 2^16 in Q32 (< 2^26), y = the low ten bits of m
    let z = (((j & 15) << 6) | 32) * LN2_Q16;
    // 2^(-j/64) · e^-z = T_j − T_j · (1 − e^-z)
    table - ((table as u64 * deficit(z) as u64) >> 32) as u32
}

/// [`pow2_midpoint_q30`] of every bucket `j < 1024` (computed by the compiler; 4 KiB of flash):
/// [`pow2_fraction_q30`] is one load, and the `asm!` `2^-t` loops read it at its address.
#[cfg(any(not(lara_attn_compact), lara_attn_dsp, lara_attn_helium, test))]
pub(crate) static POW2_MIDPOINTS: [u32; 1024] = {
    let mut table = [0u32; 1024];
    let mut j = 0;
    while j < 1024 {
        table[j] = pow2_midpoint_q30(j as u32, POW2_Q30[j >> 4]);
        j += 1;
    }
    table
};

/// `2^(-f / 65536)` in `Q30` for a fraction `f < 2^16`, in `(2^29, 2^30]`, with `f` rounded to
/// the midpoint of its bucket of 64 (`2^-10` in `L16`; 0 in the first): [`pow2_midpoint_q30`]
/// of `f >> 6`, within `3.4e-4` relative of `2^(-f/65536)` (`ln 2 · 2^-11`, plus `2.4e-7`), and
/// `6.7e-4` in the first bucket.
#[cfg_attr(not(lara_attn_compact), inline(always))]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn pow2_fraction_q30(f: u32) -> u32 {
    let j = (f >> 6) & 1023;
    #[cfg(not(all(lara_attn_compact, not(any(lara_attn_dsp, lara_attn_helium)))))]
    return POW2_MIDPOINTS[j as usize];
    // (built for size on the cores without DSP or Helium loops: computed, the same bits)
    #[cfg(all(lara_attn_compact, not(any(lara_attn_dsp, lara_attn_helium))))]
    pow2_midpoint_q30(j, pow2_q30((j >> 4) as usize))
}

/// `round(2^bits · 2^(-t/65536))` (half up) for `t ≥ 0` and `bits ≤ 27`: 0 once the shift
/// passes 31.
#[cfg_attr(not(lara_attn_compact), inline(always))]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn exp2_neg(t: u32, bits: u32) -> u32 {
    let (whole, fraction) = (t >> 16, t & 0xFFFF);
    // 2^(-fraction) in Q30, then · 2^(bits − 30 − whole): (x / 2^(shift − 1) + 1) / 2
    let shift = 30 - bits.min(27) + whole;
    if shift > 31 {
        0
    } else {
        ((pow2_fraction_q30(fraction) >> (shift - 1)) + 1) >> 1
    }
}

/// [`exp2_neg`] without a branch (the same bits: a shift above 31 leaves 0 of the fraction,
/// which is at most `2^30`, and `(0 + 1) / 2 = 0`); fewer instructions in some loops, more in
/// others (where the compiler keeps the branch's early exit). Built for size, [`exp2_neg`]
/// itself: one function less.
#[inline(always)]
pub(crate) fn exp2_neg_branchless(t: u32, bits: u32) -> u32 {
    if cfg!(lara_attn_compact) {
        return exp2_neg(t, bits);
    }
    let (whole, fraction) = (t >> 16, t & 0xFFFF);
    let shift = 30 - bits.min(27) + whole;
    ((pow2_fraction_q30(fraction) >> (shift - 1).min(31)) + 1) >> 1
}

/// `exp2_neg(t, 15)`: the streaming softmax's rescaling factor (on the DSP cores without
/// Helium at opt-level 3 by `dsp::exp2_neg_q15`, the same bits).
#[inline(always)]
fn factor_q15(t: u32) -> u32 {
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
    return super::dsp::exp2_neg_q15(t);
    #[cfg(not(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact))))]
    exp2_neg(t, 15)
}

/// A softmax weight: `2^(-t/65536)` in `Q15`, capped at `32767` (so that it fits an `i16`; only
/// the first bucket, `t < 64`, gives `32768`).
#[inline]
pub(crate) fn weight_q15(t: u32) -> u32 {
    exp2_neg(t, 15).min(Q15_ONE - 1)
}

/// `log2 x` in `L16` for `x > 0` (0 gives the `log2` of 1: callers never pass 0). A table of
/// `log2(1 + j/16)` on the top four mantissa bits, then `ln(1 + z) ≈ z − z²/2 + z³/3 − z⁴/4` on
/// the rest (`|z| < 1/16`), in `Q30` with `i64` products (called per row, not per element).
#[cfg_attr(not(lara_attn_compact), inline)]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn log2_l16(x: u32) -> i32 {
    let x = x.max(1);
    let zeros = leading_zeros(x);
    let exponent = 31 - zeros as i64;
    let normalized = u64::from(x << zeros); // [2^31, 2^32): 1.f in Q31
    let j = ((normalized >> 27) & 15) as usize;
    let (inverse, table) = match (INVERSE_TABLE.get(j), LOG2_TABLE.get(j)) {
        (Some(&inverse), Some(&table)) => (u64::from(inverse), i64::from(table)),
        _ => (1 << 30, 0),
    };
    // z = 1.f / (1 + j/16) − 1 in Q30, in (-2^-28, 1/16): |z| < 2^26, so the powers fit
    // i32 (|z²| < 2^22, |z³| < 2^18) and only the products need i64 (the same values as
    // i64 arithmetic throughout, without a 64-bit division for z³/3)
    let z = ((normalized * inverse) >> 31) as i32 - (1 << 30);
    let power = |a: i32, b: i32| ((i64::from(a) * i64::from(b)) >> 30) as i32;
    let z2 = power(z, z);
    let z3 = power(z2, z);
    let z4 = power(z3, z);
    // ln(1 + z) = z − z²/2 + z³/3 − z⁴/4 (Q30), then / ln 2
    let ln1p = i64::from(z - z2 / 2 + third(z3) - z4 / 4);
    let log2_q30 = (exponent << 30) + table + ((ln1p * INV_LN2_Q30) >> 30);
    ((log2_q30 + (1 << 13)) >> 14) as i32
}

/// `x / 3` (rounded towards zero). Built for size the high word of `x · ⌈2^32 / 3⌉` plus one
/// for a negative `x` (Hacker's Delight 10-3, exact for every `i32`): no signed division
/// routine on ARMv6-M.
#[inline(always)]
fn third(x: i32) -> i32 {
    if cfg!(lara_attn_compact) {
        ((i64::from(x) * 0x5555_5556) >> 32) as i32 + i32::from(x < 0)
    } else {
        x / 3
    }
}

/// The bit length of `x`, `64 − leading zeros` (out of line built for size: two 32-bit counts
/// and a select on cores without a 64-bit count).
#[cfg_attr(not(lara_attn_compact), inline(always))]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn bits64(x: u64) -> u32 {
    if cfg!(all(lara_attn_compact, lara_attn_soft_division)) {
        // (by halves: no 64-bit count, see leading_zeros)
        let high = (x >> 32) as u32;
        return if high != 0 {
            64 - leading_zeros(high)
        } else {
            32 - leading_zeros(x as u32)
        };
    }
    64 - x.leading_zeros()
}

/// `(x >> shift) as u32` for `shift < 32` and `x < 2^(32 + shift)` (built for size in 32-bit
/// halves: no 64-bit shift routine on ARMv6-M).
#[inline(always)]
pub(crate) fn top_word(x: u64, shift: u32) -> u32 {
    if !cfg!(lara_attn_compact) {
        return (x >> shift) as u32;
    }
    let (high, low) = ((x >> 32) as u32, x as u32);
    if shift == 0 {
        low
    } else {
        (high << (32 - shift)) | (low >> shift)
    }
}

/// `x.leading_zeros()`.
#[cfg(not(all(lara_attn_compact, lara_attn_soft_division)))]
#[inline(always)]
pub(crate) fn leading_zeros(x: u32) -> u32 {
    x.leading_zeros()
}

/// `x.leading_zeros()` built for size on a core without `CLZ` (ARMv6-M, ARMv8-M Baseline):
/// [`zeros_by_halves`], not the generic count routine (108 B on ARMv6-M).
#[cfg(all(lara_attn_compact, lara_attn_soft_division))]
#[inline(always)]
pub(crate) fn leading_zeros(x: u32) -> u32 {
    zeros_by_halves(x)
}

/// The leading zeros of `x`: the top set bit moved up by 16, 8, 4, 2 and 1 places where those
/// bits are zero (32 for 0).
#[cfg(any(test, all(lara_attn_compact, lara_attn_soft_division)))]
#[inline(never)]
fn zeros_by_halves(mut x: u32) -> u32 {
    if x == 0 {
        return 32;
    }
    let (mut zeros, mut step) = (0, 16);
    while step > 0 {
        if x >> (32 - step) == 0 {
            zeros += step;
            x <<= step;
        }
        step /= 2;
    }
    zeros
}

/// `round(x / 2^shift)` (half up) for `shift` in `0..=62`; `x · 2^-shift` with `shift < 0`
/// shifts left (callers keep the result in range).
#[cfg_attr(not(lara_attn_compact), inline)]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) const fn shift_round(x: i64, shift: i32) -> i64 {
    if shift <= 0 {
        x.wrapping_shl(min_u32(shift.unsigned_abs(), 62))
    } else {
        let shift = min_u32(shift as u32, 62);
        (x + (1i64 << (shift - 1))) >> shift
    }
}

/// `a.min(b)` in a `const fn` (`Ord::min` is not `const`).
#[inline(always)]
const fn min_u32(a: u32, b: u32) -> u32 {
    if a < b { a } else { b }
}

/// `round(numerator / denominator)`, half away from zero, for `denominator > 0` and a quotient
/// below `2^31` in magnitude (0 for a zero denominator: callers never pass one), in 32-bit
/// arithmetic: one division while both fit 30 bits, else [`divide_wide`], never a 64-bit
/// division routine (out of line built for size).
#[cfg_attr(not(lara_attn_compact), inline)]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn div_round(numerator: i64, denominator: u32) -> i32 {
    if denominator == 0 {
        return 0;
    }
    let half = denominator / 2;
    let magnitude = numerator.unsigned_abs();
    let q = if !cfg!(lara_attn_compact) && magnitude < 1 << 30 && denominator < 1 << 30 {
        // one hardware division on Cortex-M3 and later (built for size: the general path
        // alone, the same bits)
        (magnitude as u32 + half) / denominator
    } else {
        divide_wide(magnitude + u64::from(half), denominator)
    };
    if numerator >= 0 {
        q as i32
    } else {
        (q as i32).wrapping_neg()
    }
}

/// `⌊numerator / denominator⌋` for `denominator > 0` and a quotient below `2^32`: both times
/// `2^zeros`, the divisor normalised, the numerator still within 64 bits and its high word below
/// the divisor, then [`divide_normalized`]. Not inlined: the general path of [`div_round`]'s
/// callers (rare at opt-level 3), whose frames it would grow; built for size, in
/// [`div_round`], itself out of line.
#[cfg_attr(not(lara_attn_compact), inline(never))]
fn divide_wide(numerator: u64, denominator: u32) -> u32 {
    let zeros = leading_zeros(denominator);
    let scaled = numerator << zeros;
    divide_normalized((scaled >> 32) as u32, scaled as u32, denominator << zeros)
}

/// A positive real factor `m · 2^-shift` (`m < 2^24`): an `f32` scale turned into integer
/// arithmetic once, exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Multiplier {
    mantissa: i32,
    shift: i32,
}

impl Multiplier {
    /// The multiplier equal to `x`, for a finite, positive, normal `x` (the only place the int8
    /// code reads an `f32`'s bits; it is called by the plan constructors).
    pub(crate) const fn from_f32(x: f32) -> Option<Self> {
        let bits = x.to_bits();
        let exponent = ((bits >> 23) & 0xFF) as i32;
        if bits >> 31 != 0 || exponent == 0 || exponent == 0xFF {
            return None;
        }
        Some(Multiplier {
            mantissa: ((bits & 0x7F_FFFF) | 0x80_0000) as i32,
            shift: 150 - exponent,
        })
    }

    /// `round(x · self)` for `|x| < 2^39` (the product stays below `2^63`).
    #[inline]
    pub(crate) fn apply(self, x: i64) -> i64 {
        shift_round(x * i64::from(self.mantissa), self.shift)
    }

    /// `round(x · self)` saturated to the `i32` range, for `|x| < 2^31` and a mantissa below
    /// `2^31` (a per-row multiplier of [`Reciprocal::times`]).
    #[inline]
    pub(crate) fn apply_saturating(self, x: i32) -> i32 {
        if self.shift <= 0 {
            // a factor of at least 2^30: every non-zero x saturates
            return x.signum().saturating_mul(i32::MAX);
        }
        let product = i64::from(x) * i64::from(self.mantissa);
        // (built for size: the general path alone, the same bits)
        if self.shift >= 32 && !cfg!(lara_attn_compact) {
            // (the common case: one 64-bit add and a shift of the high word; |result| < 2^30)
            let shift = self.shift.min(62);
            ((product + (1i64 << (shift - 1))) >> shift) as i32
        } else {
            saturate_i32(shift_round(product, self.shift))
        }
    }

    /// For a shift of at least 32: `(mantissa, 2^(shift − 1), shift − 32)`, with which
    /// [`apply_saturating`](Self::apply_saturating) of `x` is
    /// `((x · mantissa + 2^(shift − 1)) >> 32) as i32 >> (shift − 32)` (the same bits).
    #[inline]
    pub(crate) fn high_word(self) -> Option<(i64, i64, u32)> {
        if self.shift >= 32 {
            let shift = self.shift.min(62);
            Some((
                i64::from(self.mantissa),
                1i64 << (shift - 1),
                (shift - 32) as u32,
            ))
        } else {
            None
        }
    }

    /// For `33 ≤ shift ≤ 62`: `(mantissa, 2^(shift − 33), shift − 32)`, with which
    /// [`apply_saturating`](Self::apply_saturating) of `x` is
    /// `(((x · mantissa) >> 32) as i32 + 2^(shift − 33)) >> (shift − 32)` (the same bits: the
    /// rounding term a multiple of `2^32` adds to the high word alone; `SMMUL` and an add, or
    /// `SMMLA`, on the DSP cores), in 32-bit arithmetic.
    // (unused on Helium built for size, where the requantisation keeps its general loop alone)
    #[cfg_attr(all(lara_attn_helium, lara_attn_compact), allow(dead_code))]
    #[inline]
    pub(crate) fn high_word_rounded(self) -> Option<(i32, i32, u32)> {
        if (33..=62).contains(&self.shift) {
            Some((
                self.mantissa,
                1 << (self.shift - 33),
                (self.shift - 32) as u32,
            ))
        } else {
            None
        }
    }

    /// For `23 ≤ shift ≤ 32` (a factor in `(2^-9, 2]`): `(mantissa, 32 − shift)`, with which
    /// [`apply`](Self::apply) of `|x| ≤ 2^14` is `mul_high_round(x << p, mantissa)` (the same
    /// bits: `(x · 2^p · m + 2^31) >> 32 = (x · m + 2^(shift − 1)) >> shift`; `SMMULR` on the
    /// Cortex-M DSP extension).
    #[inline]
    pub(crate) fn high_word_small(self) -> Option<(i32, u32)> {
        if (23..=32).contains(&self.shift) {
            Some((self.mantissa, (32 - self.shift) as u32))
        } else {
            None
        }
    }

    /// `round(x · self)` for any `x` (large `x` lose their low bits first; `apply`'s bits below
    /// `2^39`, which the DSP and Helium cores' densities use).
    #[cfg_attr(
        all(any(lara_attn_dsp, lara_attn_helium), not(lara_attn_compact)),
        allow(dead_code)
    )]
    #[inline]
    pub(crate) fn apply_wide(self, x: i64) -> i64 {
        let excess = bits64(x.unsigned_abs()).saturating_sub(39);
        let x = shift_round(x, excess as i32);
        shift_round(x * i64::from(self.mantissa), self.shift - excess as i32)
    }
}

/// `x` clamped to the `i32` range.
#[inline]
pub(crate) fn saturate_i32(x: i64) -> i32 {
    x.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// `x` clamped to `[-2^14, 2^14]`: the range of the `i16` operands the kernels pack in pairs
/// (built for size, out of line: less flash).
#[cfg_attr(not(lara_attn_compact), inline)]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn clamp_operand(x: i64) -> i32 {
    x.clamp(-(1 << 14), 1 << 14) as i32
}

/// `round(a · b / 2^32)`, half up: the high word of a rounded 64-bit product (`SMMULR` on the
/// Cortex-M DSP extension, one instruction).
#[inline(always)]
pub(crate) fn mul_high_round(a: i32, b: i32) -> i32 {
    ((i64::from(a) * i64::from(b) + (1 << 31)) >> 32) as i32
}

/// A positive factor for inputs of a known range, applied in 32-bit arithmetic:
/// `x · factor = round((x · 2^pre_shift) · value / 2^32)` (one shift and one [`mul_high_round`]),
/// `value < 2^31`. For the per-element products of the kernels (dot products to logits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scale32 {
    value: i32,
    pre_shift: u32,
}

impl Scale32 {
    /// The factor for inputs `|x| ≤ max_input`: the `f32` `factor` (`m · 2^-shift`, `m` its
    /// 24-bit significand) as `value = m · 2^(32 − shift − pre_shift)` with the smallest
    /// `pre_shift ≥ 0` that keeps `value < 2^31` (exact while `shift + pre_shift ≤ 32`, else
    /// rounded: a relative error below `2^-32 · |x| / factor`, a quarter unit of the result at
    /// most). `None` when `max_input · 2^pre_shift` would not fit `i32` (the factor is too large
    /// for that range) or `factor` is not a positive normal `f32`.
    pub(crate) const fn new(factor: f32, max_input: u32) -> Option<Self> {
        let Some(Multiplier { mantissa, shift }) = Multiplier::from_f32(factor) else {
            return None;
        };
        let pre_shift = if shift < 25 { (25 - shift) as u32 } else { 0 };
        // headroom: max_input · 2^pre_shift < 2^31 (max_input 0 counts as 1)
        if pre_shift >= (max_input | 1).leading_zeros() {
            return None;
        }
        let exponent = 32 - shift - pre_shift as i32;
        // value = m · 2^exponent (exponent ≤ 7), rounded when exponent < 0
        let value = shift_round(mantissa as i64, -exponent);
        Some(Scale32 {
            value: value as i32,
            pre_shift,
        })
    }

    /// `round(x · factor)` for `|x| ≤ max_input` (any `x` gives the same bits everywhere).
    #[cfg_attr(not(lara_attn_compact), inline(always))]
    #[cfg_attr(lara_attn_compact, inline(never))]
    pub(crate) fn apply(self, x: i32) -> i32 {
        mul_high_round(x.wrapping_shl(self.pre_shift), self.value)
    }

    /// The factor for inputs 128 times smaller (`T`'s dot products of `q̄ᵀ / 128`): its
    /// `apply(x)` is `self.apply(128 · x)`, the same bits (one more shift by 7, wrapping the
    /// same), while `pre_shift + 7 < 31`.
    #[cfg(lara_attn_helium)]
    pub(crate) fn over_128(self) -> Option<Self> {
        (self.pre_shift + 7 < 31).then_some(Scale32 {
            value: self.value,
            pre_shift: self.pre_shift + 7,
        })
    }

    /// `(value, pre_shift)`, for the Helium and DSP loops (`pre_shift < 31`).
    #[cfg(any(lara_attn_dsp, lara_attn_helium))]
    pub(crate) fn parts(self) -> (i32, u32) {
        (self.value, self.pre_shift)
    }
}

/// `⌊(high · 2^32 + low) / divisor⌋` for a normalised `divisor ≥ 2^31` and `high < divisor`
/// (so the quotient fits `u32`), in 32-bit arithmetic: two steps of 16-bit quotient digits
/// (Hacker's Delight `divlu`), two hardware divisions on Cortex-M3 and later instead of a
/// 64-bit division routine.
#[cfg(not(all(lara_attn_compact, lara_attn_soft_division)))]
#[cfg_attr(not(lara_attn_compact), inline)]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn divide_normalized(high: u32, low: u32, divisor: u32) -> u32 {
    const BASE: u32 = 1 << 16;
    let (v1, v0) = (divisor >> 16, divisor & 0xFFFF);
    let (u1, u0) = (low >> 16, low & 0xFFFF);
    // one quotient digit of (top · 2^16 + next) / divisor, top < divisor: the estimate from
    // the divisor's high half, corrected down at most twice (Knuth's theorem B for a
    // normalised divisor: the estimate is at most 2 above the digit), without a loop (a loop
    // here was unrolled with its invariants hoisted: about 60 instructions before the first test)
    let digit = |top: u32, next: u32| -> u32 {
        let mut q = top / v1.max(1);
        let mut rest = top.wrapping_sub(q.wrapping_mul(v1));
        let high = |q: u32, rest: u32| q >= BASE || q * v0 > (rest << 16) + next;
        if high(q, rest) {
            q -= 1;
            rest += v1;
            if rest < BASE && high(q, rest) {
                q -= 1;
            }
        }
        q
    };
    let q1 = digit(high, u1);
    let middle = (high << 16)
        .wrapping_add(u1)
        .wrapping_sub(q1.wrapping_mul(divisor));
    let q0 = digit(middle, u0);
    (q1 << 16) | q0
}

/// `round(2^(30 + bits) / sum)` (half up) for `1 ≤ sum < 2^16` of `bits` bits:
/// [`Reciprocal::new`]'s bits (its normalised divisor's low half is zero) by two 16-bit quotient
/// digits, each one 32-bit division (`2^(14 + bits) / sum < 2^16`, then the remainder's `· 2^16`);
/// the quotient is never exactly half way (`sum` would be a power of two, which divides it).
#[cfg(any(
    test,
    all(lara_attn_dsp, not(lara_attn_helium)),
    all(lara_attn_helium, not(lara_attn_compact))
))]
#[inline(always)]
pub(crate) fn reciprocal_small(sum: u32, bits: u32) -> u32 {
    let sum = sum.max(1);
    let top = 1u32 << (14 + bits.min(16));
    let (high, rest) = (top / sum, top % sum);
    let next = rest << 16;
    let (low, rest) = (next / sum, next % sum);
    ((high << 16) | low) + u32::from(2 * rest >= sum)
}

/// `Reciprocal::new(den).times(factor, extra).high_word_rounded()` for `1 ≤ den < 2^16` and
/// a factor of a normalised mantissa (`2^23 ≤ |mantissa| < 2^31`), in 32-bit steps: the
/// reciprocal by [`reciprocal_small`] (in `(2^30, 2^31]`), so the product's high word is not
/// zero and `times`' rounding takes its top 32 bits; `None` for another `den` or factor (and
/// where `high_word_rounded` gives none).
#[cfg(any(
    test,
    all(lara_attn_dsp, not(lara_attn_helium)),
    all(lara_attn_helium, not(lara_attn_compact))
))]
#[inline(always)]
pub(crate) fn row_high_word(den: u32, factor: Multiplier, extra: i32) -> Option<(i32, i32, u32)> {
    let m = factor.mantissa.unsigned_abs();
    if !(1..1 << 16).contains(&den) || m < 1 << 23 {
        return None;
    }
    let zeros = den.leading_zeros();
    let product = u64::from(reciprocal_small(den, 32 - zeros)) * u64::from(m);
    // (≥ 2^53: the high word is not zero, fewer than 11 leading zeros)
    let top_zeros = ((product >> 32) as u32).leading_zeros();
    let top = ((product << top_zeros) >> 32) as u32;
    // round(product / 2^excess) to 31 bits, excess = 33 − top_zeros (times' bits)
    let mantissa = (top >> 1) + (top & 1);
    let carry = mantissa >> 31;
    let excess = 33 - top_zeros as i32 + carry as i32;
    let shift = (62 - zeros as i32) + factor.shift - excess - extra;
    (33..=62).contains(&shift).then(|| {
        (
            (mantissa >> carry) as i32,
            1 << (shift - 33),
            (shift - 32) as u32,
        )
    })
}

/// [`row_high_word`] of many `den` for one `factor` and `extra` (LARA's query rows on Helium):
/// the factor checked once, the rounding term left implied (always `2^(shift − 1)`).
#[cfg(any(test, all(lara_attn_helium, not(lara_attn_compact))))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowHighWords {
    mantissa: u32,
    /// `62 + factor.shift − extra − 32`, wrapping (the shift's constant part).
    base: i32,
}

#[cfg(any(test, all(lara_attn_helium, not(lara_attn_compact))))]
impl RowHighWords {
    /// `None` unless the factor's mantissa is normalised (`2^23 ≤ |mantissa| < 2^31`).
    pub(crate) fn new(factor: Multiplier, extra: i32) -> Option<Self> {
        let mantissa = factor.mantissa.unsigned_abs();
        (mantissa >= 1 << 23).then_some(RowHighWords {
            mantissa,
            base: 30i32.wrapping_add(factor.shift).wrapping_sub(extra),
        })
    }

    /// `row_high_word(den, factor, extra)` as `(mantissa, shift)` (its rounding term
    /// `2^(shift − 1)`), the same bits.
    #[inline(always)]
    pub(crate) fn parts(self, den: u32) -> Option<(i32, u32)> {
        if !(1..1 << 16).contains(&den) {
            return None;
        }
        let zeros = den.leading_zeros();
        // round(2^(30 + bits) / den) = round(2^46 / d) for d = den · 2^(zeros − 16) in
        // [2^15, 2^16) (the same quotient): two 16-bit digits, each one division
        let d = core::num::NonZeroU32::new(den << (zeros - 16))?;
        let high = (1u32 << 30) / d;
        let rest = (1u32 << 30) - high * d.get();
        let next = rest << 16;
        let low = next / d;
        let rest = next - low * d.get();
        let reciprocal = ((high << 16) | low) + u32::from(2 * rest >= d.get());
        let product = u64::from(reciprocal) * u64::from(self.mantissa);
        // round(product / 2^excess) to 31 bits from its top 32 (as row_high_word)
        let top_zeros = ((product >> 32) as u32).leading_zeros();
        let top = ((product << top_zeros) >> 32) as u32;
        let mantissa = (top >> 1) + (top & 1);
        let carry = mantissa >> 31;
        // shift − 32 = 62 − zeros + factor.shift − (33 − top_zeros + carry) − extra − 32
        let high_shift = self
            .base
            .wrapping_add(top_zeros as i32)
            .wrapping_sub((zeros + carry) as i32 + 33);
        (1..=30)
            .contains(&high_shift)
            .then_some(((mantissa >> carry) as i32, high_shift as u32))
    }
}

/// [`divide_normalized`] built for size on a core without a division instruction (the same
/// quotient by [`divide_by_bits`], no division routine linked).
#[cfg(all(lara_attn_compact, lara_attn_soft_division))]
#[inline(always)]
pub(crate) fn divide_normalized(high: u32, low: u32, divisor: u32) -> u32 {
    divide_by_bits(high, low, divisor)
}

/// `⌊(high · 2^32 + low) / divisor⌋` for `high < divisor` by a restoring division, one
/// quotient bit per step.
#[cfg(any(test, all(lara_attn_compact, lara_attn_soft_division)))]
#[inline(never)]
fn divide_by_bits(high: u32, low: u32, divisor: u32) -> u32 {
    // (rest < divisor throughout: the next bit of 2 · rest + bit, 33 bits with `top`, takes
    // one subtraction at most)
    let (mut rest, mut quotient) = (high, low);
    for _ in 0..32 {
        let top = rest >> 31;
        rest = (rest << 1) | (quotient >> 31);
        quotient <<= 1;
        if top != 0 || rest >= divisor {
            rest = rest.wrapping_sub(divisor);
            quotient |= 1;
        }
    }
    quotient
}

/// `1 / sum` as a multiplier `(reciprocal, shift)`: `x / sum ≈ x · reciprocal / 2^shift`, with
/// `reciprocal = round(2^(30 + b) / sum)` in `(2^30, 2^31]` for `sum` of `b` bits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reciprocal {
    reciprocal: i64,
    shift: i32,
}

impl Reciprocal {
    /// The reciprocal of `sum > 0` (1 for 0: callers never pass it).
    #[inline]
    pub(crate) fn new(sum: u32) -> Self {
        let sum = sum.max(1);
        let zeros = leading_zeros(sum);
        let shift = 62 - zeros as i32;
        // round(2^(30 + bits) / sum) for sum of `bits` bits = round(2^62 / normalized) with
        // normalized = sum · 2^(32 − bits) in [2^31, 2^32): the same real quotient, and never
        // exactly half way for an odd sum (so rounding half up agrees), in 32-bit arithmetic
        let normalized = sum << zeros;
        let reciprocal = i64::from(divide_normalized(1 << 30, normalized / 2, normalized));
        Reciprocal { reciprocal, shift }
    }

    /// [`new`](Self::new) for a sum that is usually below `2^16` (LARA's query weights on the
    /// DSP and Helium cores): there by two 32-bit divisions ([`reciprocal_small`], the same
    /// bits), else [`new`](Self::new) out of line.
    #[cfg(all(lara_attn_dsp, not(lara_attn_compact)))]
    #[inline(always)]
    pub(crate) fn new_small(sum: u32) -> Self {
        #[cold]
        #[inline(never)]
        fn general(sum: u32) -> Reciprocal {
            Reciprocal::new(sum)
        }
        if !(1..1 << 16).contains(&sum) {
            return general(sum);
        }
        let zeros = sum.leading_zeros();
        Reciprocal {
            reciprocal: i64::from(reciprocal_small(sum, 32 - zeros)),
            shift: 62 - zeros as i32,
        }
    }

    /// `round(x · 2^extra / sum)` for `|x| < 2^31`, `extra ≤ shift`.
    #[inline]
    pub(crate) fn divide(self, x: i32, extra: i32) -> i64 {
        shift_round(i64::from(x) * self.reciprocal, self.shift - extra)
    }

    /// For `33 ≤ shift − extra ≤ 62`: `(reciprocal, 2^(shift − extra − 33), shift − extra −
    /// 32)`, with which [`divide`](Self::divide) of `x` is `(((x · reciprocal) >> 32) as i32 +
    /// round) >> high_shift` (the same bits: the rounding term a multiple of `2^32` adds to the
    /// high word alone, which stays below `2^30 + 2^29`), one high word per value.
    #[inline]
    pub(crate) fn high_word(self, extra: i32) -> Option<(i64, i32, u32)> {
        let shift = self.shift - extra;
        (33..=62)
            .contains(&shift)
            .then(|| (self.reciprocal, 1 << (shift - 33), (shift - 32) as u32))
    }

    /// [`high_word`](Self::high_word) with the reciprocal as an `i32` (below `2^31`, as
    /// Helium's `VMULH.S32` and the DSP cores' `SMMLA` take it); else `None`.
    #[cfg(any(lara_attn_helium, all(lara_attn_dsp, not(lara_attn_compact))))]
    #[inline]
    pub(crate) fn high_word_rounded(self, extra: i32) -> Option<(i32, i32, u32)> {
        let (reciprocal, round, high_shift) = self.high_word(extra)?;
        Some((i32::try_from(reciprocal).ok()?, round, high_shift))
    }

    /// The multiplier `factor / sum · 2^extra` as `(mantissa < 2^31, shift)`, for one row of
    /// outputs: `round(x · mantissa / 2^shift)`.
    pub(crate) fn times(self, factor: Multiplier, extra: i32) -> Multiplier {
        // reciprocal (≤ 2^31) · m (< 2^24), brought back to 31 bits: round(product / 2^excess)
        // with excess = bits − 31 (unsigned, both positive: one UMULL); the rounding from the
        // top 32 bits of the product, t = ⌊product / 2^(excess − 1)⌋: round = ⌊(t + 1) / 2⌋
        let product = self.reciprocal as u64 * u64::from(factor.mantissa.unsigned_abs());
        let zeros = 64 - bits64(product);
        let (mantissa, excess) = if zeros >= 33 {
            (product as u32, 0)
        } else {
            let top = ((product << zeros) >> 32) as u32;
            ((top >> 1) + (top & 1), 33 - zeros)
        };
        // rounded up to 2^31: the same value as 2^30 with one shift less
        let carry = mantissa >> 31;
        let (mantissa, excess) = (mantissa >> carry, excess + carry);
        let excess = excess as i32;
        Multiplier {
            mantissa: mantissa as i32,
            shift: self.shift + factor.shift - excess - extra,
        }
    }
}

/// `round(x · factor / 2^15)` for a `Q15` factor: the rescaling of a running sum.
#[inline]
pub(crate) fn rescale(x: i32, factor: u32) -> i32 {
    shift_round(i64::from(x) * i64::from(factor), 15) as i32
}

/// The streaming softmax state of one row (a query of exact attention, a sample of LARA's key
/// pass, a landmark of its normaliser): a reference `L16` logit `≥` every logit seen so far,
/// the `Q15` weight sum `Σ_j 2^(ℓ_j − reference)` `≤` [`SUM_LIMIT`] and, in the caller's
/// accumulators, `Σ_j 2^(ℓ_j − reference) · v_j`.
///
/// Logits arrive in blocks ([`admit`](Self::admit)). The new reference is the largest logit so
/// far, raised by whole units while the rescaled sum and the block's weights would pass
/// [`SUM_LIMIT`] (block floating point: the sums stay in `i32` for any number of keys); the
/// caller rescales its sums once per block, by the factor `admit` returns.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Running {
    /// `L16`; [`EMPTY_REFERENCE`] before the first logit.
    pub(crate) reference: i32,
    /// `Q15` weight sum, `≤ SUM_LIMIT`.
    pub(crate) sum: u32,
}

/// The reference of a state that has seen no logit (no logit is this low: logits saturate at
/// `-2^28`).
pub(crate) const EMPTY_REFERENCE: i32 = i32::MIN;

/// A logit that is not there (a masked or absent key, a padding row): weight 0, and no part in
/// the maximum.
pub(crate) const ABSENT: i32 = i32::MIN;

/// The largest `|logit|` in `L16` (`2^12` base-2 units): every conversion saturates here.
pub(crate) const LOGIT_LIMIT: i32 = 1 << 28;

/// A logit saturated to `[-2^28, 2^28)` (`±2^12` base 2; `SSAT` on Cortex-M; built for
/// size, out of line: ARMv6-M has no `SSAT`, each inlined clamp took two compares and
/// branches and a literal).
#[cfg_attr(not(lara_attn_compact), inline(always))]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn to_logit(x: i32) -> i32 {
    x.clamp(-LOGIT_LIMIT, LOGIT_LIMIT - 1)
}

/// A logit computed in `i64`, saturated like [`to_logit`].
#[inline]
pub(crate) fn to_logit_wide(x: i64) -> i32 {
    x.clamp(-i64::from(LOGIT_LIMIT), i64::from(LOGIT_LIMIT) - 1) as i32
}

/// The sweep of the `2^-t` checks of the DSP and Helium loops: every `t` step 3 up to `2^21`
/// (every non-zero `Q15` weight) and the ends of the `u32` range, as logits `reference − t` in
/// blocks of one to seven (every lane position and tail), each handed to `differs`; `None`, or
/// the index of the last `t` of the first block that differs.
#[cfg(any(lara_attn_dsp, lara_attn_helium))]
pub(crate) fn sweep_weight_blocks(mut differs: impl FnMut(i32, &[i32]) -> bool) -> Option<usize> {
    let extremes = [
        u32::MAX,
        u32::MAX - 1,
        1 << 31,
        (1 << 31) - 1,
        17 << 16,
        31 << 16,
        32 << 16,
        33 << 16,
        0,
        1,
        2,
        3,
    ];
    let ts = (0..(1u32 << 21)).step_by(3).chain(extremes);
    let reference = 0x0123_4567i32;
    let mut logits = [0i32; 7];
    let mut pending = 0usize;
    for (i, t) in ts.enumerate() {
        if let Some(slot) = logits.get_mut(pending) {
            *slot = reference.wrapping_sub(t as i32);
        }
        pending += 1;
        if pending < logits.len() && i % 11 != 0 {
            continue;
        }
        if differs(reference, &logits[..pending]) {
            return Some(i);
        }
        pending = 0;
    }
    None
}

/// `T` (`Q27`) at every `t` below `2^17` against the portable `exp2_neg_branchless(t, 27)`: every
/// entry of both tables of `2^-t` at two shifts (`Q27` keeps bits the `Q15` weights round away),
/// through `t_row` (the DSP or Helium `T` loop) with `scale`; `None`, or the first block of 32
/// that differs.
#[cfg(any(lara_attn_dsp, lara_attn_helium))]
pub(crate) fn sweep_t_rows(
    scale: Scale32,
    mut next: impl FnMut() -> u32,
    t_row: impl Fn(&mut [i32], &[i32], Scale32) -> u32,
) -> Option<usize> {
    let mut dots = [0i32; 32];
    let mut references = [0i32; 32];
    for first in (0..1u32 << 17).step_by(32) {
        for (c, (d, r)) in dots.iter_mut().zip(references.iter_mut()).enumerate() {
            *d = (next() as i32) >> 8;
            *r = to_logit(scale.apply(*d)).wrapping_add((first + c as u32) as i32);
        }
        let expected: [i32; 32] = core::array::from_fn(|c| {
            let logit = to_logit(scale.apply(dots[c]));
            exp2_neg_branchless(references[c].wrapping_sub(logit).max(0) as u32, 27) as i32
        });
        t_row(&mut dots, &references, scale);
        if dots != expected {
            return Some(first as usize);
        }
    }
    None
}

/// `rescale_row` (the DSP or Helium rescaling of `admit_rows`: `a = rescale(a, factor)` for the
/// four words of row `c` of every whole group of `group` words of `acc`; `false`: not done, a
/// difference) against [`rescale`]: sums across the `i32` range, every row of 1 to 3 groups,
/// factors 0, `2^15 − 1` and random, accumulators with a partial group; `None`, or the first
/// case that differs.
#[cfg(any(lara_attn_dsp, lara_attn_helium))]
pub(crate) fn check_rescale_rows(
    next: &mut impl FnMut() -> u32,
    rescale_row: impl Fn(&mut [i32], usize, usize, u32) -> bool,
) -> Option<usize> {
    for len in 0..40usize {
        let mut acc = [0i32; 3 * 12];
        for a in acc.iter_mut() {
            *a = match next() % 6 {
                0 => i32::MIN + (next() >> 8) as i32,
                1 => i32::MAX - (next() >> 8) as i32,
                _ => (next() as i32) >> (next() % 32),
            };
        }
        let factor = match len % 4 {
            0 => 0,
            1 => (1 << 15) - 1,
            _ => next() >> 17,
        };
        let group = 4 * (1 + len % 3);
        let c = len / 3 % (group / 4);
        let mut ours = acc;
        let acc_len = acc.len() - len % 5;
        if !rescale_row(&mut ours[..acc_len], group, c, factor) {
            return Some(len);
        }
        let mut expected = acc;
        for g in expected[..acc_len].chunks_exact_mut(group) {
            for a in g.iter_mut().skip(c * 4).take(4) {
                *a = rescale(*a, factor);
            }
        }
        if ours != expected {
            return Some(len);
        }
    }
    None
}

/// `w_j = weight_q15(reference − ℓ_j)` (wrapping, as `u32`) over the common length, and their
/// sum: [`Running::admit`]'s block (4 lanes at a time on Helium).
#[cfg(lara_attn_helium)]
#[inline(always)]
fn block_weights(reference: i32, logits: &[i32], weights: &mut [i32]) -> u32 {
    super::helium::weights_q15(reference, logits, weights)
}

/// See the Helium [`block_weights`].
#[cfg(not(any(lara_attn_dsp, lara_attn_helium)))]
#[inline(always)]
fn block_weights(reference: i32, logits: &[i32], weights: &mut [i32]) -> u32 {
    let mut block_sum = 0u32;
    for (w, &logit) in weights.iter_mut().zip(logits) {
        let weight = weight_q15(reference.wrapping_sub(logit) as u32);
        *w = weight as i32;
        block_sum += weight;
    }
    block_sum
}

impl Running {
    #[cfg(test)]
    pub(crate) const EMPTY: Running = Running {
        reference: EMPTY_REFERENCE,
        sum: 0,
    };

    /// Admits a block of logits (`L16`, [`ABSENT`] for none): writes their `Q15` weights
    /// `2^(ℓ − reference)` to `weights` (0 for absent ones), adds them to the sum, and returns
    /// the `Q15` factor `2^(old − new reference)` by which the caller multiplies its sums
    /// ([`rescale`]; [`Q15_ONE`]: unchanged, no need to; 0 on the first block, which clears
    /// them).
    ///
    /// (Not on the DSP cores without Helium: their callers keep the weights with
    /// [`admit_by`](Self::admit_by) and the `asm!` loops of `super::dsp`.)
    #[cfg(not(all(lara_attn_dsp, not(lara_attn_helium))))]
    #[inline(always)]
    pub(crate) fn admit(&mut self, logits: &[i32], weights: &mut [i32]) -> u32 {
        self.admit_by(logits, |reference| match reference {
            Some(reference) => block_weights(reference, logits, weights),
            None => {
                crate::slices::fill(weights, 0);
                0
            }
        })
    }

    /// [`admit`](Self::admit) of a block of weights kept by `weigh`: `weigh(Some(reference))`
    /// writes `w_j = weight_q15(reference − ℓ_j)` (wrapping, as `u32`) where its caller wants
    /// them and returns their sum, `weigh(None)` clears them (a block without a logit).
    #[inline(always)]
    pub(crate) fn admit_by(
        &mut self,
        logits: &[i32],
        mut weigh: impl FnMut(Option<i32>) -> u32,
    ) -> u32 {
        let block_max = logits.iter().copied().max().unwrap_or(ABSENT);
        // (the DSP cores without Helium: a block that leaves the reference as it is, the
        // common case, without the factor and the rescaling of the sum, the same bits: the
        // factor is Q15_ONE and rescaling by it leaves the sum; a block of absent logits gets
        // weights 0, as below)
        #[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
        if block_max <= self.reference && self.reference != EMPTY_REFERENCE {
            let block_sum = weigh(Some(self.reference));
            if self.sum + block_sum <= SUM_LIMIT {
                self.sum += block_sum;
                return Q15_ONE;
            }
        }
        if block_max == ABSENT {
            weigh(None);
            return Q15_ONE;
        }
        let first = self.reference == EMPTY_REFERENCE;
        let mut reference = if first {
            block_max
        } else {
            self.reference.max(block_max)
        };
        loop {
            // factor = 2^(old − new reference) in Q15 (0 on the first block)
            let factor = if first {
                0
            } else if reference == self.reference {
                Q15_ONE
            } else {
                factor_q15(reference.wrapping_sub(self.reference) as u32)
            };
            // rescaling by Q15_ONE leaves the sum as it is: skipped on Helium (exact attention
            // 6% fewer instructions on the M55; on the M4F the test costs more than it saves)
            let sum = if cfg!(lara_attn_helium) && factor == Q15_ONE {
                self.sum
            } else {
                rescale(self.sum as i32, factor) as u32
            };
            // w_j = 2^(ℓ_j − reference) in Q15 (reference ≥ ℓ_j); an absent logit's weight is 0
            // without a test: reference ≥ -2^28 (logits saturate there), so
            // reference − ABSENT ≥ 2^31 − 2^28 (wrapping, as u32), 2^-28672 at most: 0
            let block_sum = weigh(Some(reference));
            if sum + block_sum <= SUM_LIMIT {
                self.reference = reference;
                self.sum = sum + block_sum;
                return factor;
            }
            // halve everything: one unit more
            reference = reference.saturating_add(L16_ONE);
        }
    }

    /// [`admit`](Self::admit) of a block of [`KEY_BLOCK`] logits for the reference and the sum
    /// alone: the weights go to `discard` (on the DSP cores without Helium nowhere, not even
    /// stored). (Helium admits four rows at a time, `admit_rows`; built for size, so does
    /// every core.)
    #[cfg(not(any(lara_attn_helium, lara_attn_compact)))]
    #[inline(always)]
    pub(crate) fn admit_sum(&mut self, logits: &[i32; KEY_BLOCK], discard: &mut [i32; KEY_BLOCK]) {
        #[cfg(lara_attn_dsp)]
        {
            let _ = discard;
            self.admit_by(logits, |reference| {
                reference.map_or(0, |reference| super::dsp::weight_sum_q15(reference, logits))
            });
        }
        #[cfg(not(lara_attn_dsp))]
        self.admit(logits, discard);
    }

    /// [`admit_sum`](Self::admit_sum) on a state kept as `(reference, sum)` (LARA's
    /// normaliser: a landmark's row of states).
    #[cfg(not(any(lara_attn_helium, lara_attn_compact)))]
    #[inline(always)]
    pub(crate) fn admit_kept(
        logits: &[i32; KEY_BLOCK],
        (reference, sum): (&mut i32, &mut i32),
        discard: &mut [i32; KEY_BLOCK],
    ) {
        let mut state = Running {
            reference: *reference,
            sum: *sum as u32,
        };
        state.admit_sum(logits, discard);
        (*reference, *sum) = (state.reference, state.sum as i32);
    }

    /// `log2 Σ_j 2^ℓ_j` in `L16`: `reference + log2(sum) − 15`.
    pub(crate) fn log_sum(&self) -> i32 {
        self.reference
            .saturating_add(log2_l16(self.sum))
            .saturating_sub(15 * L16_ONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::int8::xorshift32;

    /// The row multiplier in its high-word form straight from a sum below `2^16` against the
    /// general path (`Reciprocal::new`, `times`, `high_word_rounded`): every such sum, factors
    /// across the mantissas and shifts, both signs of `extra`.
    #[test]
    fn row_high_words_match_the_general_path() {
        let factors = [1.0f32, 0.3, 0.0071, 3.7, 0.999_999, 1.0e-3, 250.0];
        for (k, &f) in factors.iter().enumerate() {
            let factor = Multiplier::from_f32(f).unwrap();
            for den in 1u32..1 << 16 {
                for extra in [-8, 0, 3] {
                    let general = Reciprocal::new(den)
                        .times(factor, extra)
                        .high_word_rounded();
                    assert_eq!(
                        row_high_word(den, factor, extra),
                        general,
                        "{k} {den} {extra}"
                    );
                }
            }
        }
    }

    /// [`RowHighWords::parts`] against [`row_high_word`]: every sum below `2^16` and a few
    /// above, factors across the mantissas and shifts, both signs of `extra`.
    #[test]
    fn row_high_word_parts_match() {
        let factors = [
            1.0f32, 0.3, 0.0071, 3.7, 0.999_999, 1.0e-3, 250.0, 1.0e-9, 1.0e9,
        ];
        for (k, &f) in factors.iter().enumerate() {
            let factor = Multiplier::from_f32(f).unwrap();
            for extra in [-8, 0, 3, 40, -40] {
                let words = RowHighWords::new(factor, extra).unwrap();
                for den in (0u32..1 << 16).chain([1 << 16, 1 << 20, u32::MAX]) {
                    let expected = row_high_word(den, factor, extra)
                        .map(|(mantissa, _, shift)| (mantissa, shift));
                    assert_eq!(words.parts(den), expected, "{k} {den} {extra}");
                }
            }
        }
    }

    /// The reciprocal of a sum below `2^16` by two 32-bit divisions against the general path
    /// (`divide_normalized`), every such sum.
    #[test]
    fn small_reciprocals_match_the_general_path() {
        for sum in 1u32..1 << 16 {
            let zeros = sum.leading_zeros();
            let normalized = sum << zeros;
            let general = divide_normalized(1 << 30, normalized / 2, normalized);
            assert_eq!(reciprocal_small(sum, 32 - zeros), general, "sum {sum}");
        }
    }

    /// [`divide_by_bits`] against [`divide_normalized`]'s digit steps (both against `u64`
    /// division): normalised divisors, every `high < divisor` class, edge values.
    #[test]
    fn divide_by_bits_matches_the_division() {
        let mut seed = 0x2468_ACE1u32;
        let edges = [0u32, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF];
        for i in 0..200_000u32 {
            let divisor = xorshift32(&mut seed) | 1 << 31;
            let high = match i % 4 {
                0 => divisor - 1,
                1 => 0,
                _ => xorshift32(&mut seed) % divisor,
            };
            let low = if i < 6 {
                edges[i as usize]
            } else {
                xorshift32(&mut seed)
            };
            let expected = ((u64::from(high) << 32 | u64::from(low)) / u64::from(divisor)) as u32;
            assert_eq!(
                divide_by_bits(high, low, divisor),
                expected,
                "{high} {low} {divisor}"
            );
            assert_eq!(divide_normalized(high, low, divisor), expected);
        }
    }

    /// [`pow2_q30`] (built for size) against the table, and the factored form of every entry;
    /// the midpoints' table against [`pow2_midpoint_q30`] on [`pow2_q30`] (what a build for
    /// size computes) and [`pow2_fraction_q30`] of every fraction against its bucket's entry.
    #[test]
    fn pow2_factors_give_the_tables() {
        for (j, &entry) in POW2_Q30.iter().enumerate() {
            assert_eq!(pow2_q30(j), entry);
            let carry = (POW2_CARRIES[j / 32] >> (j % 32)) & 1;
            assert_eq!(pow2_product(j) + carry, entry, "{j}");
        }
        for (j, &entry) in POW2_MIDPOINTS.iter().enumerate() {
            assert_eq!(pow2_midpoint_q30(j as u32, pow2_q30(j >> 4)), entry, "{j}");
        }
        for f in 0..1u32 << 16 {
            assert_eq!(
                pow2_fraction_q30(f),
                POW2_MIDPOINTS[(f >> 6) as usize],
                "{f}"
            );
        }
    }

    /// [`top_word`] against the 64-bit shift: every shift, values up to `2^(32 + shift)`.
    #[test]
    fn top_word_matches_the_shift() {
        let mut seed = 0x0BAD_CAFEu32;
        for shift in 0..32 {
            for i in 0..2000 {
                let wide =
                    u64::from(xorshift32(&mut seed)) << 32 | u64::from(xorshift32(&mut seed));
                let x = match i {
                    0 => 0,
                    1 => (1u64 << (32 + shift)) - 1,
                    _ => wide >> (32 - shift),
                };
                assert_eq!(top_word(x, shift), (x >> shift) as u32, "{x} {shift}");
            }
        }
    }

    /// [`zeros_by_halves`] against `leading_zeros`: 0, every power of two, the numbers below
    /// and above them, and a sweep.
    #[test]
    fn zeros_by_halves_counts() {
        let mut seed = 0x1357_9BDFu32;
        let powers = (0..32).flat_map(|b| {
            let p = 1u32 << b;
            [p, p - 1, p | 1, p.wrapping_add(p - 1)]
        });
        let sweep = (0..100_000).map(|_| xorshift32(&mut seed) >> (seed % 32));
        for x in [0, u32::MAX].into_iter().chain(powers).chain(sweep) {
            assert_eq!(zeros_by_halves(x), x.leading_zeros(), "{x}");
        }
    }

    /// [`third`] (by a multiplication when built for size) against `/ 3` over `±2^20` and the
    /// ends of the `i32` range.
    #[test]
    fn third_matches_the_division() {
        let ends = [
            i32::MIN,
            i32::MIN + 1,
            i32::MIN + 2,
            i32::MAX - 2,
            i32::MAX - 1,
            i32::MAX,
        ];
        for x in (-(1 << 20)..=1 << 20).chain(ends) {
            assert_eq!(third(x), x / 3, "{x}");
        }
    }

    /// Every `t` with a non-zero weight (16 units of `L16`, 2^20 arguments): the `Q15` weight
    /// and the `Q30` fraction against `f64`.
    #[test]
    fn exp2_against_f64_exhaustively() {
        let (mut worst_weight, mut worst_fraction, mut worst_midpoint) = (0.0f64, 0.0f64, 0.0f64);
        for t in 0..(16u32 << 16) {
            let exact = (-(t as f64) / 65536.0).exp2();
            let weight = exp2_neg(t, 15) as f64;
            worst_weight = worst_weight.max((weight - exact * 32768.0).abs());
            let fraction = pow2_fraction_q30(t & 0xFFFF) as f64 / (1u64 << 30) as f64;
            let exact_fraction = (-((t & 0xFFFF) as f64) / 65536.0).exp2();
            worst_fraction = worst_fraction.max((fraction / exact_fraction - 1.0).abs());
            // (the point of the bucket the table holds: its midpoint, 0 in the first)
            let point = if t & 0xFFC0 == 0 {
                0
            } else {
                (t & 0xFFC0) | 32
            };
            let midpoint = (-(point as f64) / 65536.0).exp2();
            worst_midpoint = worst_midpoint.max((fraction / midpoint - 1.0).abs());
        }
        // Measured: 21.8 Q15 units and 6.7e-4 relative in the first bucket (ln 2 · 63/65536),
        // 3.4e-4 elsewhere (ln 2 · 2^-11, plus 2.4e-7); 2.2e-7 relative at the points the table
        // holds (a bucket's midpoint, 0 in the first).
        assert!(worst_weight <= 21.9, "Q15 weight error {worst_weight}");
        assert!(
            worst_fraction <= 6.7e-4,
            "Q30 fraction relative error {worst_fraction}"
        );
        assert!(
            worst_midpoint <= 2.5e-7,
            "Q30 fraction relative error at the midpoints {worst_midpoint}"
        );
        println!(
            "exp2: Q15 weight {worst_weight}, Q30 fraction relative {worst_fraction:e} \
             ({worst_midpoint:e} at the midpoints)"
        );
        assert_eq!(exp2_neg(0, 15), 32768);
        assert_eq!(weight_q15(0), 32767);
        for bits in [15, 27] {
            for t in (0..(33u32 << 16))
                .step_by(7)
                .chain([u32::MAX, 1 << 31, 31 << 16, 32 << 16])
            {
                assert_eq!(
                    exp2_neg_branchless(t, bits),
                    exp2_neg(t, bits),
                    "{t}, {bits}"
                );
            }
        }
        // 2^-t does not grow with t
        let mut previous = exp2_neg(0, 15);
        for t in (0..(18u32 << 16)).chain([1 << 31, u32::MAX - 1, u32::MAX]) {
            let weight = exp2_neg(t, 15);
            assert!(weight <= previous, "t = {t}");
            previous = weight;
        }
        assert_eq!(exp2_neg(17 << 16, 15), 0);
        assert_eq!(exp2_neg(u32::MAX, 27), 0);
        assert_eq!(exp2_neg(0, 27), 1 << 27);
        assert_eq!(exp2_neg(2 << 16, 27), 1 << 25);
    }

    /// A dense sweep of `log2` (every 2^10-th `u32` and every value below 2^16) against `f64`.
    #[test]
    fn log2_against_f64() {
        let mut worst = 0.0f64;
        let values = (1u32..1 << 16).chain((1u32 << 16..=u32::MAX).step_by(1 << 10));
        for x in values {
            let exact = (x as f64).log2() * 65536.0;
            worst = worst.max((log2_l16(x) as f64 - exact).abs());
        }
        println!("log2: {worst} L16 units");
        assert!(worst <= 0.52, "log2 error {worst} L16 units");
    }

    /// [`Reciprocal::high_word`]'s division against [`Reciprocal::divide`]: sums from 1 to
    /// `2^24` (every power of two and its neighbours, and random ones), numerators across the
    /// `i32` range, extra shifts 0 to 16.
    #[test]
    fn reciprocal_high_words_divide_alike() {
        let mut seed = 0x0bad_5eedu32;
        let mut sums: Vec<u32> = (0..=24)
            .flat_map(|b| [(1u32 << b) - 1, 1 << b, (1 << b) + 1])
            .collect();
        sums.extend((0..2000).map(|_| xorshift32(&mut seed) >> (8 + xorshift32(&mut seed) % 24)));
        let mut checked = 0;
        for &sum in sums.iter().filter(|&&s| s > 0) {
            let r = Reciprocal::new(sum);
            for extra in [0, 8, 16] {
                let Some((reciprocal, round, shift)) = r.high_word(extra) else {
                    continue;
                };
                for _ in 0..64 {
                    let x = match xorshift32(&mut seed) % 4 {
                        0 => i32::MAX - (xorshift32(&mut seed) % 3) as i32,
                        1 => i32::MIN + 1 + (xorshift32(&mut seed) % 3) as i32,
                        _ => (xorshift32(&mut seed) as i32) >> (xorshift32(&mut seed) % 32),
                    };
                    let high = (((i64::from(x) * reciprocal) >> 32) as i32 + round) >> shift;
                    assert_eq!(
                        i64::from(high),
                        r.divide(x, extra),
                        "sum {sum}, x {x}, extra {extra}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000);
    }

    #[test]
    fn multipliers_are_exact_and_round() {
        let m = Multiplier::from_f32(0.75).unwrap();
        assert_eq!(m.apply(4), 3);
        assert_eq!(m.apply(2), 2); // 1.5 rounds up
        assert_eq!(m.apply(-2), -1); // -1.5 rounds up
        assert_eq!(m.apply_wide(1 << 50), 3 << 48);
        assert!(Multiplier::from_f32(0.0).is_none());
        assert!(Multiplier::from_f32(-1.0).is_none());
        assert!(Multiplier::from_f32(f32::NAN).is_none());
        let r = Reciprocal::new(3);
        assert_eq!(r.divide(300, 0), 100);
        assert_eq!(r.divide(-301, 8), i64::from(div_round(-301 * 256, 3)));
        assert_eq!(div_round(-7, 2), -4);
        // a row multiplier: x · 0.75 / 3 · 2^2 = x
        let row = r.times(m, 2);
        assert_eq!(row.apply(1000), 1000);
        assert_eq!(row.apply(-77), -77);
    }

    /// The 32-bit form of small factors against [`Multiplier::apply`], on every `|x| ≤ 2^14`.
    #[test]
    fn small_multipliers_match_apply() {
        for factor in [
            1.0f32,
            0.999_999_9,
            0.5,
            0.3333,
            0.01,
            0.002_1,
            2.0f32.powi(-9) * 1.01,
        ] {
            let m = Multiplier::from_f32(factor).unwrap();
            let (mantissa, pre_shift) = m.high_word_small().unwrap();
            for x in -(1i32 << 14)..=1 << 14 {
                let fast = mul_high_round(x << pre_shift, mantissa);
                assert_eq!(i64::from(fast), m.apply(i64::from(x)), "{factor} · {x}");
            }
        }
        assert!(
            Multiplier::from_f32(4.0)
                .unwrap()
                .high_word_small()
                .is_none()
        );
        assert!(
            Multiplier::from_f32(0.001)
                .unwrap()
                .high_word_small()
                .is_none()
        );
    }

    /// [`div_round`] in 32-bit arithmetic against the 64-bit division it replaces, over
    /// denominators of every bit length, numerators up to a quotient of `2^31 − 1` either sign,
    /// and the ends of its 32-bit path (`2^30`).
    #[test]
    fn div_round_matches_the_64_bit_division() {
        let reference = |n: i64, d: u32| -> i64 {
            let (d, half) = (i64::from(d), i64::from(d / 2));
            if n >= 0 {
                (n + half) / d
            } else {
                -((-n + half) / d)
            }
        };
        let mut seed = 0x7f4a_7c15u32;
        let mut next = move || xorshift32(&mut seed);
        for i in 0..400_000u32 {
            let d = match i % 8 {
                0 => 1 << (i / 8 % 32),
                1 => u32::MAX >> (i / 8 % 32),
                _ => (next() >> (next() % 32)).max(1),
            };
            // a quotient below 2^31: |n| + d/2 < 2^31 · d
            let limit = (i64::from(d) << 31) - i64::from(d / 2) - 1;
            let n = match i % 5 {
                0 => limit,
                1 => (1 << 30) - (i64::from(next()) & 3),
                2 => i64::from(next() >> (next() % 32)),
                _ => ((i64::from(next()) << 32) | i64::from(next())) % (limit + 1),
            }
            .min(limit);
            for n in [n, -n] {
                assert_eq!(i64::from(div_round(n, d)), reference(n, d), "{n} / {d}");
            }
        }
        assert_eq!(div_round(5, 0), 0);
    }

    /// The reciprocal in 32-bit arithmetic against the 64-bit division it replaces.
    #[test]
    fn reciprocals_match_the_64_bit_division() {
        let reference = |sum: u32| -> i64 {
            let sum = u64::from(sum.max(1));
            let bits = 64 - sum.leading_zeros();
            (((1u64 << (30 + bits)) + sum / 2) / sum) as i64
        };
        let mut seed = 0x9e37_79b9u32;
        let sums = (0u32..1 << 20).chain((0..1 << 20).map(|_| {
            let x = xorshift32(&mut seed);
            x >> (x % 32)
        }));
        for sum in sums.chain([u32::MAX, u32::MAX - 1, 1 << 31, (1 << 31) + 1]) {
            let r = Reciprocal::new(sum);
            assert_eq!(r.reciprocal, reference(sum), "sum {sum}");
            assert_eq!(r.shift, 30 + 32 - sum.max(1).leading_zeros() as i32);
        }
    }

    /// The row multiplier of [`Reciprocal::times`] against its `i64` form (the product, its
    /// bit length and `shift_round`), over sums from 1 to `2^32 − 1` and 24-bit mantissas.
    #[test]
    fn row_multipliers_match_the_64_bit_form() {
        let reference = |r: Reciprocal, factor: Multiplier, extra: i32| -> (i32, i32) {
            let product = r.reciprocal * i64::from(factor.mantissa);
            let mut excess = (64 - product.leading_zeros() as i32 - 31).max(0);
            let mut mantissa = shift_round(product, excess);
            if mantissa > i64::from(i32::MAX) {
                (mantissa, excess) = (mantissa >> 1, excess + 1);
            }
            (mantissa as i32, r.shift + factor.shift - excess - extra)
        };
        let mut seed = 0x2545_f491u32;
        let mut next = move || xorshift32(&mut seed);
        let mantissas = [1 << 23, (1 << 24) - 1, 0xC0_0000, 0x80_0001, 1, 3, 1 << 20];
        for i in 0..200_000u32 {
            let sum = match i {
                0..32 => 1 << i,
                32..64 => u32::MAX >> (i - 32),
                _ => next() >> (next() % 32),
            };
            let r = Reciprocal::new(sum);
            let m = match mantissas.get(i as usize % 16) {
                Some(&m) => m,
                None => (next() & 0xFF_FFFF) | 0x80_0000,
            };
            let factor = Multiplier {
                mantissa: m as i32,
                shift: 20,
            };
            let ours = r.times(factor, -8);
            assert_eq!(
                (ours.mantissa, ours.shift),
                reference(r, factor, -8),
                "sum {sum}, m {m}"
            );
        }
    }

    /// The 32-bit form of row multipliers with a shift of 33 to 62 against
    /// [`Multiplier::apply_saturating`].
    #[test]
    fn high_word_rounded_matches_apply_saturating() {
        let mut seed = 0x1357_9bdfu32;
        let mut next = move || xorshift32(&mut seed);
        for shift in 30..=64 {
            for i in 0..20_000u32 {
                let mantissa = match i {
                    0 => i32::MAX,
                    1 => 1 << 30,
                    _ => (next() >> 1).max(1) as i32,
                };
                let x = match i {
                    0 | 2 => i32::MIN + 1,
                    1 | 3 => i32::MAX,
                    _ => (next() as i32) >> (next() % 32),
                };
                let row = Multiplier { mantissa, shift };
                let Some((m, round_high, high_shift)) = row.high_word_rounded() else {
                    assert!(!(33..=62).contains(&shift));
                    continue;
                };
                let high = ((i64::from(x) * i64::from(m)) >> 32) as i32;
                let ours = (high + round_high) >> high_shift;
                assert_eq!(
                    ours,
                    row.apply_saturating(x),
                    "{x} · {mantissa} / 2^{shift}"
                );
            }
        }
    }

    /// The 32-bit scale agrees with the exact `i64` multiplier wherever it is exact, over
    /// factors from `2^-12` to `2^12` and inputs up to their bound.
    #[test]
    fn scale32_matches_the_exact_multiplier() {
        for exponent in -12..=12 {
            for mantissa in [1.0f32, 1.1, 1.5, 1.999] {
                let factor = mantissa * (exponent as f32).exp2();
                let max_input = ((1u32 << 28) as f32 / factor).min(2e9) as u32;
                let scale = Scale32::new(factor, max_input).unwrap();
                let exact = Multiplier::from_f32(factor).unwrap();
                for x in [
                    0i32,
                    1,
                    -1,
                    12345,
                    -98765,
                    max_input as i32,
                    -(max_input as i32),
                ] {
                    let ours = i64::from(scale.apply(x));
                    let reference = exact.apply(i64::from(x));
                    assert!(
                        (ours - reference).abs() <= 1,
                        "{factor} · {x}: {ours} vs {reference}"
                    );
                    if exact.shift <= 32 {
                        assert_eq!(ours, reference, "{factor} · {x}");
                    }
                }
            }
        }
        assert!(Scale32::new(256.0, 1 << 28).is_none());
    }

    /// Streaming a row in blocks: the final reference and sum give the same log-sum-exp as one
    /// pass, and the returned factors rescale a running sum consistently.
    #[test]
    fn admitting_blocks_keeps_the_sums_in_range() {
        let logits: Vec<i32> = (0..4000)
            .map(|j| ((j * 7919) % 9000) * 97 - 300_000)
            .collect();
        let mut state = Running::EMPTY;
        let mut weights = [0i32; 8];
        for block in logits.chunks(8) {
            let factor = state.admit(block, &mut weights[..block.len()]);
            assert!(factor <= Q15_ONE);
            assert!(state.sum <= SUM_LIMIT);
        }
        let exact = logits
            .iter()
            .map(|&l| (l as f64 / 65536.0).exp2())
            .sum::<f64>()
            .log2()
            * 65536.0;
        let ours = state.log_sum() as f64;
        assert!((ours - exact).abs() < 64.0, "{ours} vs {exact}");
    }
}
