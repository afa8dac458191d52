//! The integer inner loops of the int8 kernels ([`crate::int8`]): dot products of `i16` rows
//! packed in pairs with `i8` rows, pairwise dot products, and the multiply-accumulate of a
//! block of weighted `i8` rows. Every variant computes exact integer sums (the kernels bound
//! every operand so that no partial sum overflows `i32`), so every variant gives the same bits
//! as the portable loops here, whatever its order of summation.
//!
//! # Packed rows
//! An `i16` row of `len` elements (every value in `[-2^14, 2^14]`) is stored in
//! [`packed_len`]`(len)` words, two elements per `i32` (low half first), in the order the
//! Cortex-M DSP extension consumes with `SXTB16`: each group of four elements
//! `x0 x1 x2 x3` as the words `(x0, x2)`, `(x1, x3)`; a tail of one to three elements in plain
//! pairs `(x4k, x4k+1)`, `(x4k+2, 0)`.
//!
//! # Variants
//! The portable loops (every target; the reference), and where they pay:
//! * Cortex-M with the DSP extension (`thumbv7em`, `thumbv8m.main` with `--cfg lara_attn_dsp`
//!   or a DSP core as `target-cpu`): `SXTB16` + `SMLAD`, two 16-bit multiply-adds per
//!   instruction, through `asm!` (see `build.rs`).
#![allow(dead_code)]

/// Words of a packed row of `len` elements.
pub(crate) const fn packed_len(len: usize) -> usize {
    len.div_ceil(2)
}

/// Two `i16` values in one word, `low` in the low half.
#[inline(always)]
pub(crate) fn pair(low: i32, high: i32) -> i32 {
    (low & 0xFFFF) | (high << 16)
}

/// The low and high `i16` of a word.
#[inline(always)]
fn halves(word: i32) -> (i32, i32) {
    (i32::from(word as i16), word >> 16)
}

/// Packs the `len` values of `values` into `out` (at least [`packed_len`]`(len)` words) in the
/// packed-row order.
#[inline]
pub(crate) fn pack_row(values: impl Iterator<Item = i32>, len: usize, out: &mut [i32]) {
    let mut values = values.take(len);
    let mut words = out.iter_mut();
    let groups = len / 4;
    for _ in 0..groups {
        let mut x = [0i32; 4];
        for (slot, v) in x.iter_mut().zip(&mut values) {
            *slot = v;
        }
        if let (Some(a), Some(b)) = (words.next(), words.next()) {
            *a = pair(x[0], x[2]);
            *b = pair(x[1], x[3]);
        }
    }
    while let Some(low) = values.next() {
        let high = values.next().unwrap_or(0);
        if let Some(word) = words.next() {
            *word = pair(low, high);
        }
    }
}

/// The `len` values of a packed row, in order (the inverse of [`pack_row`]).
#[inline]
pub(crate) fn unpacked(packed: &[i32], len: usize) -> impl Iterator<Item = i32> + '_ {
    let grouped = len / 4 * 4;
    (0..len).map(move |index| {
        let (word, high) = if index < grouped {
            // group g: words 2g = (x0, x2), 2g + 1 = (x1, x3)
            (index / 4 * 2 + (index & 1), index & 2 != 0)
        } else {
            let t = index - grouped;
            (grouped / 2 + t / 2, t & 1 != 0)
        };
        let w = packed.get(word).copied().unwrap_or(0);
        if high { w >> 16 } else { i32::from(w as i16) }
    })
}

/// Packs an `i8` row.
#[inline]
pub(crate) fn pack_i8_row(x: &[i8], out: &mut [i32]) {
    pack_row(x.iter().map(|&v| i32::from(v)), x.len(), out);
}

/// `Σ_t packed[t] · x[t]` for a packed row of `x.len()` elements.
#[inline]
pub(crate) fn dot_packed_i8(packed: &[i32], x: &[i8]) -> i32 {
    #[cfg(lara_attn_dsp)]
    {
        dsp::dot_packed_i8(packed, x)
    }
    #[cfg(not(lara_attn_dsp))]
    {
        portable_dot_packed_i8(packed, x)
    }
}

/// The portable [`dot_packed_i8`].
#[inline]
pub(crate) fn portable_dot_packed_i8(packed: &[i32], x: &[i8]) -> i32 {
    let (groups, tail) = x.as_chunks::<4>();
    let (packed_groups, packed_tail) = packed.split_at((2 * groups.len()).min(packed.len()));
    let mut sum = 0i32;
    for (g, words) in groups.iter().zip(packed_groups.chunks_exact(2)) {
        let ((w0, w2), (w1, w3)) = (halves(words[0]), halves(words[1]));
        sum += w0 * i32::from(g[0]) + w2 * i32::from(g[2]);
        sum += w1 * i32::from(g[1]) + w3 * i32::from(g[3]);
    }
    for (pair_x, &word) in tail.chunks(2).zip(packed_tail) {
        let (low, high) = halves(word);
        for (&x, w) in pair_x.iter().zip([low, high]) {
            sum += w * i32::from(x);
        }
    }
    sum
}

/// `Σ_w lo(a_w)·lo(b_w) + hi(a_w)·hi(b_w)`: the dot product of two rows packed alike.
#[inline]
pub(crate) fn dot_pairs(a: &[i32], b: &[i32]) -> i32 {
    #[cfg(lara_attn_dsp)]
    {
        dsp::dot_pairs(a, b)
    }
    #[cfg(not(lara_attn_dsp))]
    {
        portable_dot_pairs(a, b)
    }
}

/// The portable [`dot_pairs`].
#[inline]
pub(crate) fn portable_dot_pairs(a: &[i32], b: &[i32]) -> i32 {
    let mut sum = 0i32;
    for (&x, &y) in a.iter().zip(b) {
        let ((x0, x1), (y0, y1)) = (halves(x), halves(y));
        sum += x0 * y0 + x1 * y1;
    }
    sum
}

/// `acc[t] += Σ_j weights[j] · rows[j][t]` over the rows given (a block of up to four value rows
/// of exact attention, `weights` in `Q15`).
#[inline]
pub(crate) fn accumulate_rows(acc: &mut [i32], weights: &[i32; 4], rows: &[&[i8]; 4]) {
    let [w0, w1, w2, w3] = *weights;
    let [r0, r1, r2, r3] = *rows;
    for ((((a, &x0), &x1), &x2), &x3) in acc.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3) {
        *a += w0 * i32::from(x0) + w1 * i32::from(x1) + w2 * i32::from(x2) + w3 * i32::from(x3);
    }
}

/// `acc[r][t] += Σ_j weights[r][j] · values[j][t]` for a block of four value rows: `weights`
/// holds per row `r` the words `(w_r0, w_r1)`, `(w_r2, w_r3)`, `value_pairs` per column `t`
/// the words `(v_0t, v_1t)`, `(v_2t, v_3t)`; `acc` is `[rows, columns]`.
#[inline]
pub(crate) fn accumulate_pairs(
    acc: &mut [i32],
    columns: usize,
    weights: &[i32],
    value_pairs: &[i32],
) {
    #[cfg(lara_attn_dsp)]
    {
        dsp::accumulate_pairs(acc, columns, weights, value_pairs)
    }
    #[cfg(not(lara_attn_dsp))]
    {
        portable_accumulate_pairs(acc, columns, weights, value_pairs)
    }
}

/// The portable [`accumulate_pairs`].
#[inline]
pub(crate) fn portable_accumulate_pairs(
    acc: &mut [i32],
    columns: usize,
    weights: &[i32],
    value_pairs: &[i32],
) {
    for (acc_row, w) in acc
        .chunks_exact_mut(columns.max(1))
        .zip(weights.chunks_exact(2))
    {
        let ((w0, w1), (w2, w3)) = (halves(w[0]), halves(w[1]));
        for (a, v) in acc_row.iter_mut().zip(value_pairs.chunks_exact(2)) {
            let ((v0, v1), (v2, v3)) = (halves(v[0]), halves(v[1]));
            *a += w0 * v0 + w1 * v1 + w2 * v2 + w3 * v3;
        }
    }
}

/// Cortex-M DSP extension: `SXTB16` unpacks two bytes to two `i16`, `SMLAD` multiplies two
/// pairs of `i16` and adds both products to an accumulator.
#[cfg(lara_attn_dsp)]
mod dsp {
    use core::arch::asm;

    /// `acc + lo(a)·lo(b) + hi(a)·hi(b)`.
    #[inline(always)]
    fn smlad(a: i32, b: i32, acc: i32) -> i32 {
        let out;
        // SAFETY: SMLAD reads and writes registers only (it may set the Q flag, which nothing
        // reads); the DSP extension is present on every target this module is compiled for.
        unsafe {
            asm!("smlad {out}, {a}, {b}, {acc}", out = lateout(reg) out, a = in(reg) a,
                 b = in(reg) b, acc = in(reg) acc, options(pure, nomem, nostack, preserves_flags));
        }
        out
    }

    /// Bytes 0 and 2 of `x` sign-extended to the two halves of a word.
    #[inline(always)]
    fn sxtb16(x: u32) -> i32 {
        let out;
        // SAFETY: register-only instruction of the DSP extension (present, as above).
        unsafe {
            asm!("sxtb16 {out}, {x}", out = lateout(reg) out, x = in(reg) x,
                 options(pure, nomem, nostack, preserves_flags));
        }
        out
    }

    /// Bytes 1 and 3 of `x` sign-extended to the two halves of a word.
    #[inline(always)]
    fn sxtb16_ror8(x: u32) -> i32 {
        let out;
        // SAFETY: register-only instruction of the DSP extension (present, as above).
        unsafe {
            asm!("sxtb16 {out}, {x}, ror #8", out = lateout(reg) out, x = in(reg) x,
                 options(pure, nomem, nostack, preserves_flags));
        }
        out
    }

    pub(super) fn dot_packed_i8(packed: &[i32], x: &[i8]) -> i32 {
        let (groups, tail) = x.as_chunks::<4>();
        let (packed_groups, packed_tail) = packed.split_at((2 * groups.len()).min(packed.len()));
        let mut sum = 0i32;
        for (g, words) in groups.iter().zip(packed_groups.as_chunks::<2>().0) {
            let bytes = u32::from_le_bytes([g[0] as u8, g[1] as u8, g[2] as u8, g[3] as u8]);
            // (x0, x2) · (w0, w2) + (x1, x3) · (w1, w3)
            sum = smlad(sxtb16(bytes), words[0], sum);
            sum = smlad(sxtb16_ror8(bytes), words[1], sum);
        }
        sum + super::portable_dot_packed_i8(packed_tail, tail)
    }

    pub(super) fn dot_pairs(a: &[i32], b: &[i32]) -> i32 {
        let mut sum = 0i32;
        for (&x, &y) in a.iter().zip(b) {
            sum = smlad(x, y, sum);
        }
        sum
    }

    pub(super) fn accumulate_pairs(
        acc: &mut [i32],
        columns: usize,
        weights: &[i32],
        value_pairs: &[i32],
    ) {
        for (acc_row, w) in acc
            .chunks_exact_mut(columns.max(1))
            .zip(weights.as_chunks::<2>().0)
        {
            for (a, v) in acc_row.iter_mut().zip(value_pairs.as_chunks::<2>().0) {
                *a = smlad(w[1], v[1], smlad(w[0], v[0], *a));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_dots_match_plain_sums() {
        for len in 1..=19 {
            let w: Vec<i32> = (0..len).map(|i| (i as i32 * 2977) % 16385 - 8000).collect();
            let x: Vec<i8> = (0..len).map(|i| ((i * 37) % 256) as u8 as i8).collect();
            let mut packed = vec![0; packed_len(len)];
            pack_row(w.iter().copied(), len, &mut packed);
            let plain: i32 = w.iter().zip(&x).map(|(&a, &b)| a * i32::from(b)).sum();
            assert_eq!(dot_packed_i8(&packed, &x), plain, "len {len}");
            let mut packed_x = vec![0; packed_len(len)];
            pack_i8_row(&x, &mut packed_x);
            assert_eq!(dot_pairs(&packed, &packed_x), plain, "len {len}");
            assert_eq!(unpacked(&packed, len).collect::<Vec<_>>(), w, "len {len}");
        }
    }
}
