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

/// `round(2^24 · 2^(-j/16))`, `j = 0..16`.
const EXP2_TABLE: [u32; 16] = [
    16777216, 16065917, 15384775, 14732511, 14107901, 13509772, 12937002, 12388516, 11863283,
    11360319, 10878679, 10417458, 9975792, 9552851, 9147842, 8760003,
];
/// `round(2^30 · log2(1 + j/16))`, `j = 0..16`.
const LOG2_TABLE: [i64; 16] = [
    0, 93912511, 182455581, 266210141, 345667660, 421247625, 493310944, 562170370, 628098702,
    691335320, 752091421, 810554283, 866890747, 921250079, 973766362, 1024560487,
];
/// `round(2^30 / (1 + j/16))`, `j = 0..16`.
const INVERSE_TABLE: [u64; 16] = [
    1073741824, 1010580540, 954437177, 904203641, 858993459, 818089009, 780903145, 746950834,
    715827883, 687194767, 660764199, 636291451, 613566757, 592409282, 572662306, 554189329,
];
/// `round(2^20 · ln 2)`.
const LN2_Q20: u32 = 726817;
/// `round(2^30 / ln 2)`.
const INV_LN2_Q30: i64 = 1549082005;

/// `2^(-t / 65536)` for `t ≥ 0` as `(mantissa, k)`: the value is `mantissa · 2^-24 · 2^-k`,
/// `mantissa` in `(2^23, 2^24]`. A table of `2^(-j/16)` on the top four fraction bits, then
/// `e^-y ≈ 1 − y + y²/2 − y³/6` on the rest (`y < ln 2 / 16`), in `u32` arithmetic.
#[inline]
pub(crate) fn exp2_neg_parts(t: u32) -> (u32, u32) {
    let (k, fraction) = (t >> 16, t & 0xFFFF);
    let (j, rest) = ((fraction >> 12) as usize, fraction & 0xFFF);
    // y = rest · ln 2 in Q20 (≤ 45426)
    let y = (rest * LN2_Q20 + (1 << 15)) >> 16;
    // y² and y³/6 in Q20 (683 / 2^12 ≈ 1/6)
    let y2 = (y * y + (1 << 19)) >> 20;
    let y3_sixth = ((((y2 * y) >> 20) * 683) + (1 << 11)) >> 12;
    // 1 − e^-y = y − y²/2 + y³/6 in Q20 (< 2^16)
    let deficit = y - ((y2 + 1) >> 1) + y3_sixth;
    // 2^(-j/16) · e^-y = T_j − T_j · (1 − e^-y), in Q24 (T_j·deficit by T_j's top 16 bits)
    let mantissa = match EXP2_TABLE.get(j) {
        Some(&table) if j > 0 => table - (((table >> 8) * deficit + (1 << 11)) >> 12),
        _ => (1 << 24) - (deficit << 4),
    };
    (mantissa, k)
}

/// `round(2^bits · 2^(-t/65536))` for `t ≥ 0` and `bits ≤ 30`: 0 when the shift exceeds 31.
#[inline]
pub(crate) fn exp2_neg(t: u32, bits: u32) -> u32 {
    let (mantissa, k) = exp2_neg_parts(t);
    // mantissa · 2^(bits − 24 − k)
    let net = bits as i64 - 24 - i64::from(k);
    if net >= 0 {
        mantissa << net.min(6)
    } else if net < -31 {
        0
    } else {
        let scaled = mantissa >> (-net - 1);
        (scaled + 1) >> 1
    }
}

/// A softmax weight: `2^(-t/65536)` in `Q15`, capped at `32767` (so that it fits an `i16`).
#[inline]
pub(crate) fn weight_q15(t: u32) -> u32 {
    exp2_neg(t, 15).min(Q15_ONE - 1)
}

/// `log2 x` in `L16` for `x > 0` (0 gives the `log2` of 1: callers never pass 0). A table of
/// `log2(1 + j/16)` on the top four mantissa bits, then `ln(1 + z) ≈ z − z²/2 + z³/3 − z⁴/4` on
/// the rest (`|z| < 1/16`), in `Q30` with `i64` products (called per row, not per element).
#[inline]
pub(crate) fn log2_l16(x: u32) -> i32 {
    let x = x.max(1);
    let zeros = x.leading_zeros();
    let exponent = 31 - zeros as i64;
    let normalized = u64::from(x << zeros); // [2^31, 2^32): 1.f in Q31
    let j = ((normalized >> 27) & 15) as usize;
    let (inverse, table) = match (INVERSE_TABLE.get(j), LOG2_TABLE.get(j)) {
        (Some(&inverse), Some(&table)) => (inverse, table),
        _ => (1 << 30, 0),
    };
    // z = 1.f / (1 + j/16) − 1 in Q30, in (-2^-28, 1/16)
    let z = ((normalized * inverse) >> 31) as i64 - (1 << 30);
    let z2 = (z * z) >> 30;
    let z3 = (z2 * z) >> 30;
    let z4 = (z3 * z) >> 30;
    // ln(1 + z) = z − z²/2 + z³/3 − z⁴/4 (Q30), then / ln 2
    let ln1p = z - z2 / 2 + z3 / 3 - z4 / 4;
    let log2_q30 = (exponent << 30) + table + ((ln1p * INV_LN2_Q30) >> 30);
    ((log2_q30 + (1 << 13)) >> 14) as i32
}

/// `round(x / 2^shift)` (half up) for `shift` in `0..=62`; `x · 2^-shift` with `shift < 0`
/// shifts left (callers keep the result in range).
#[inline]
pub(crate) fn shift_round(x: i64, shift: i32) -> i64 {
    if shift <= 0 {
        x.wrapping_shl(shift.unsigned_abs().min(62))
    } else {
        let shift = shift.min(62) as u32;
        (x + (1i64 << (shift - 1))) >> shift
    }
}

/// `round(numerator / denominator)`, half away from zero, for `denominator > 0` (0 for a zero
/// denominator: callers never pass one).
#[inline]
pub(crate) fn div_round(numerator: i64, denominator: i64) -> i64 {
    if denominator <= 0 {
        return 0;
    }
    let half = denominator / 2;
    if numerator >= 0 {
        (numerator + half) / denominator
    } else {
        -((-numerator + half) / denominator)
    }
}

/// A positive real factor `m · 2^-shift` (`m < 2^24`): an `f32` scale turned into integer
/// arithmetic once, exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Multiplier {
    mantissa: i64,
    shift: i32,
}

impl Multiplier {
    /// The multiplier equal to `x`, for a finite, positive, normal `x` (the only place the int8
    /// code reads an `f32`'s bits; it is called by the plan constructors).
    pub(crate) fn from_f32(x: f32) -> Option<Self> {
        let bits = x.to_bits();
        let exponent = ((bits >> 23) & 0xFF) as i32;
        if bits >> 31 != 0 || exponent == 0 || exponent == 0xFF {
            return None;
        }
        Some(Multiplier {
            mantissa: i64::from((bits & 0x7F_FFFF) | 0x80_0000),
            shift: 150 - exponent,
        })
    }

    /// `round(x · self)` for `|x| < 2^39` (the product stays below `2^63`).
    #[inline]
    pub(crate) fn apply(self, x: i64) -> i64 {
        shift_round(x * self.mantissa, self.shift)
    }

    /// `round(x · self)` for any `x` (large `x` lose their low bits first).
    #[inline]
    pub(crate) fn apply_wide(self, x: i64) -> i64 {
        let excess = 25u32.saturating_sub(x.unsigned_abs().leading_zeros());
        let x = shift_round(x, excess as i32);
        shift_round(x * self.mantissa, self.shift - excess as i32)
    }
}

/// `x` clamped to the `i32` range.
#[inline]
pub(crate) fn saturate_i32(x: i64) -> i32 {
    x.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// `x` clamped to `[-2^14, 2^14]`: the range of the `i16` operands the kernels pack in pairs.
#[inline]
pub(crate) fn clamp_operand(x: i64) -> i32 {
    x.clamp(-(1 << 14), 1 << 14) as i32
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
    pub(crate) fn new(sum: u32) -> Self {
        let sum = u64::from(sum.max(1));
        let bits = 64 - sum.leading_zeros() as i32;
        let shift = 30 + bits;
        // round(2^(30 + bits) / sum), bits ≤ 32
        let numerator = 1u64 << shift;
        let reciprocal = ((numerator + sum / 2) / sum) as i64;
        Reciprocal { reciprocal, shift }
    }

    /// `round(x · 2^extra / sum)` for `|x| < 2^31`, `0 ≤ extra ≤ shift`.
    #[inline]
    pub(crate) fn divide(self, x: i32, extra: i32) -> i64 {
        shift_round(i64::from(x) * self.reciprocal, self.shift - extra)
    }
}

/// The streaming softmax state of one row (a query of exact attention, a sample of LARA's key
/// pass): a reference `L16` logit `≥` every logit seen so far, the `Q15` weight sum
/// `Σ_j 2^(ℓ_j − reference)` and, in the caller's accumulator, `Σ_j 2^(ℓ_j − reference) · v_j`.
///
/// Keys arrive in blocks. A block whose maximum exceeds the reference rescales the sums by
/// `2^(reference − max)` and takes the maximum as the new reference; a block whose weights would
/// take the sum above [`SUM_LIMIT`] first halves the sums and raises the reference by one
/// (block floating point: the sums stay in `i32` for any number of keys).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Running {
    /// `L16`; [`EMPTY_REFERENCE`] before the first key.
    pub(crate) reference: i32,
    /// `Q15` weight sum, `≤ SUM_LIMIT`.
    pub(crate) sum: u32,
}

/// The reference of a state that has seen no key (no logit is this low: logits saturate at
/// `±2^28`).
pub(crate) const EMPTY_REFERENCE: i32 = i32::MIN;

/// The largest `|logit|` in `L16` (`2^12` base-2 units): every conversion saturates here.
pub(crate) const LOGIT_LIMIT: i64 = 1 << 28;

/// A logit computed in `i64`, saturated to `±2^28` (`±2^12` base 2).
#[inline]
pub(crate) fn to_logit(x: i64) -> i32 {
    x.clamp(-LOGIT_LIMIT, LOGIT_LIMIT) as i32
}

impl Running {
    pub(crate) const EMPTY: Running = Running {
        reference: EMPTY_REFERENCE,
        sum: 0,
    };

    /// Admits a block whose largest logit is `block_max` (`L16`): rescales `acc` and the sum if
    /// it raises the reference (and starts them at 0 on the first block).
    #[inline]
    pub(crate) fn raise(&mut self, block_max: i32, acc: &mut [i32]) {
        if self.reference == EMPTY_REFERENCE {
            self.reference = block_max;
            self.sum = 0;
            acc.fill(0);
        } else if block_max > self.reference {
            // factor = 2^(reference − max) in Q15 (2^15 for a zero gap)
            let gap = block_max.wrapping_sub(self.reference) as u32;
            let factor = i64::from(exp2_neg(gap, 15));
            for a in acc.iter_mut() {
                *a = shift_round(i64::from(*a) * factor, 15) as i32;
            }
            self.sum = shift_round(i64::from(self.sum) * factor, 15) as u32;
            self.reference = block_max;
        }
    }

    /// The `Q15` weight `2^(logit − reference)` of a logit not above the reference.
    #[inline]
    pub(crate) fn weight(&self, logit: i32) -> u32 {
        weight_q15(self.reference.wrapping_sub(logit).max(0) as u32)
    }

    /// Halves the sums and raises the reference by one while `sum + block_sum` would exceed
    /// [`SUM_LIMIT`]; returns whether it did (the caller recomputes the block's weights).
    #[inline]
    pub(crate) fn make_room(&mut self, block_sum: u32, acc: &mut [i32]) -> bool {
        let mut halved = false;
        // Each halving halves the block's sum too (rounded up), so this ends after a few steps.
        let mut block_sum = block_sum;
        while self.sum.saturating_add(block_sum) > SUM_LIMIT {
            for a in acc.iter_mut() {
                *a = (*a >> 1) + (*a & 1);
            }
            self.sum = (self.sum >> 1) + (self.sum & 1);
            block_sum = (block_sum >> 1) + 1;
            self.reference = self.reference.saturating_add(L16_ONE);
            halved = true;
        }
        halved
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

    /// Every `t` with a non-zero weight (16 units of `L16`, 2^20 arguments): the `Q15` weight
    /// against `f64`, and the 16-bit mantissa's relative error.
    #[test]
    fn exp2_against_f64_exhaustively() {
        let (mut worst_weight, mut worst_mantissa) = (0.0f64, 0.0f64);
        for t in 0..(16u32 << 16) {
            let exact = (-(t as f64) / 65536.0).exp2();
            let weight = exp2_neg(t, 15) as f64;
            worst_weight = worst_weight.max((weight - exact * 32768.0).abs());
            let (mantissa, k) = exp2_neg_parts(t);
            let value = mantissa as f64 / 16777216.0 / (1u64 << k) as f64;
            worst_mantissa = worst_mantissa.max((value / exact - 1.0).abs());
        }
        // Measured: see EXP2_MAX_ERROR.
        assert!(worst_weight <= 0.56, "Q15 weight error {worst_weight}");
        assert!(
            worst_mantissa <= 2.5e-6,
            "mantissa relative error {worst_mantissa}"
        );
        println!("exp2: Q15 weight {worst_weight}, mantissa relative {worst_mantissa:e}");
        assert_eq!(exp2_neg(0, 15), 32768);
        assert_eq!(weight_q15(0), 32767);
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
        assert_eq!(r.divide(-301, 8), div_round(-301 * 256, 3));
        assert_eq!(div_round(-7, 2), -4);
    }
}
