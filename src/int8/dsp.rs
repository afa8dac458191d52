//! Scalar `asm!` loops of the int8 kernels' per-element fixed-point steps for the DSP cores
//! without Helium (`cfg(all(lara_attn_dsp, not(lara_attn_helium)))`, the Cortex-M4F and M33
//! class), where LLVM spends about six instructions on the capped shift of `exp2_neg`, keeps a
//! block of weights on the stack or spills in its unrolled loops. The same bits as the portable
//! code, element by element:
//!
//! * `2^-t` ([`exp2_neg`](super::fixed_point::exp2_neg)): the table of the fraction's 1,024
//!   buckets by `UBFX` and `LDR [table, j, LSL #2]`; `((x >> (shift − 1)) + 1) >> 1` = `(x >>
//!   shift) + bit (shift − 1) of x` by `LSRS` by a register (the carry is the last bit shifted
//!   out; a shift of 32 or more gives 0, as the portable code does there: `x ≤ 2^30`) and
//!   `ADC #0`, the shift capped by `USAT`; the weight cap `min(·, 32767)` of
//!   [`weight_q15`](super::fixed_point::weight_q15) by `USAT #15`. In the streaming softmax's
//!   block weights (stored as `i16` halves, or only summed), LARA's `T` row and its query
//!   weights, RFA's `φq`;
//! * `Scale32::apply`: `LSL` and `SMMULR`; [`to_logit`](super::fixed_point::to_logit): `SSAT #29`;
//!   a saturating add: `QADD`. In the logit columns of the key blocks and LARA's query logits;
//! * `mis-opt`'s `α` (`SMULL`, the rounding bit as a carry) and the packing of the query weights
//!   (`PKHBT`).
//!
//! `check` compares them with the portable code (the firmware example runs it on the core).
#![allow(unsafe_code)]

#[cfg(not(lara_attn_compact))]
use super::fixed_point::{ABSENT, EMPTY_REFERENCE, SUM_LIMIT};
use super::fixed_point::{
    Multiplier, POW2_MIDPOINTS, Reciprocal, Scale32, divide_normalized, exp2_neg,
    exp2_neg_branchless, reciprocal_small, row_high_word, shift_round, sweep_t_rows,
    sweep_weight_blocks, to_logit, weight_q15,
};
use crate::simd::int8::KEY_BLOCK;
use core::arch::asm;

/// The body of the `2^-t` loops: `{t} = exp2_neg(t, bits)` for `{t}` = `t` and `{s}` = its
/// shift `30 − bits + (t >> 16)` already capped at 63 (at least 1), `{table}` the address of
/// `POW2_MIDPOINTS`; clobbers `{j}` and the flags.
macro_rules! exp2_body {
    () => {
        concat!(
            // 2^(-fraction) in Q30 from the table of its bucket j = (t >> 6) & 1023
            "ubfx {j}, {t}, #6, #10\n",
            "ldr {t}, [{table}, {j}, lsl #2]\n",
            // round(x / 2^shift), half up: (x >> shift) + the carry (bit shift − 1)
            "lsrs {t}, {t}, {s}\n",
            "adc {t}, {t}, #0\n",
        )
    };
}

/// A loop of two elements per turn over the `u32`s from `{$p}` to `{$end}`, each element by the
/// template `$step` (which advances `{$p}` by one element): an odd count enters at the second
/// (labels `1` and `3`). Clobbers `{s}` and the flags.
macro_rules! two_per_turn {
    ($p:ident, $end:ident, $step:expr) => {
        concat!(
            "sub {s}, {",
            stringify!($end),
            "}, {",
            stringify!($p),
            "}\n",
            "tst {s}, #4\n",
            "bne 3f\n",
            "1:\n",
            $step,
            "3:\n",
            $step,
            "cmp {",
            stringify!($p),
            "}, {",
            stringify!($end),
            "}\n",
            "bne 1b\n",
        )
    };
}

/// One `asm!` loop of two `2^-t` steps per turn (`two_per_turn!` with `$step`, which uses
/// `exp2_body!`) over the `u32`s from `{$p}` to `{$end}`, with its own operands
/// `$operands` (those of `{$p}` and `{$end}` among them) and the tables and scratch registers
/// of `exp2_body!`.
macro_rules! exp2_loop {
    ($p:ident, $end:ident, $step:expr, $($operands:tt)*) => {
        asm!(
            // (two per turn: an odd count enters at the second)
            two_per_turn!($p, $end, $step),
            $($operands)*
            table = in(reg) POW2_MIDPOINTS.as_ptr(),
            t = out(reg) _,
            s = out(reg) _,
            j = out(reg) _,
            options(nostack),
        )
    };
}

/// [`exp2_neg`]`(t, 15)`, `2^(-t/65536)` in `Q15`, by `exp2_body!` (the streaming softmax's
/// rescaling factor when its reference moves): the shift `15 + (t >> 16)` capped at 63 (a
/// shift of 32 or more gives 0, as `exp2_neg` does past 31).
#[cfg(not(lara_attn_compact))]
#[inline(always)]
pub(crate) fn exp2_neg_q15(t: u32) -> u32 {
    let mut x = t;
    // SAFETY: register steps and one table load (read only): POW2_MIDPOINTS at an index masked
    // to 0..1024. The block writes only its inout and out operands and the flags; no stack.
    unsafe {
        asm!(
            // shift = min(15 + (t >> 16), 63)
            "lsr {s}, {t}, #16",
            "add {s}, {s}, #15",
            "usat {s}, #6, {s}",
            exp2_body!(),
            t = inout(reg) x,
            s = out(reg) _,
            j = out(reg) _,
            table = in(reg) POW2_MIDPOINTS.as_ptr(),
            options(pure, readonly, nostack),
        );
    }
    x
}

/// One element of `weights_loop!`: `weight_q15(reference − logit)` added to `{sum}`, stored
/// by the template line `$store` (or not).
macro_rules! weights_step {
    ([$($store:expr)?]) => {
        concat!(
            // t = reference − logit (wrapping)
            "ldr {t}, [{l}], #4\n",
            "sub {t}, {r}, {t}\n",
            // shift = 15 + (t >> 16), capped at 63
            "add {s}, {k}, {t}, lsr #16\n",
            "usat {s}, #6, {s}\n",
            exp2_body!(),
            // weight_q15: min(2^-t in Q15, 32767)
            "usat {t}, #15, {t}\n",
            $($store, "\n",)?
            "add {sum}, {sum}, {t}\n",
        )
    };
}

/// One `asm!` loop of block weights: `weight_q15(reference − logit)` (wrapping, as `u32`) for
/// each of `len ≥ 1` logits from `$logits`, added to `$sum`, each stored by `$store` (a template
/// line on `{t}`, or none) with its operands after it.
macro_rules! weights_loop {
    ($reference:expr, $logits:expr, $len:expr, $sum:ident, [$($store:expr)?], $($operands:tt)*) => {
        exp2_loop!(
            l,
            end,
            weights_step!([$($store)?]),
            $($operands)*
            l = inout(reg) $logits.as_ptr() => _,
            end = in(reg) $logits.as_ptr().add($len),
            r = in(reg) $reference,
            k = in(reg) 15u32,
            sum = inout(reg) $sum,
        )
    };
}

/// `weight_q15(reference − logits[j])` (wrapping, as `u32`) into `i16` halves: weight `j` in half `j mod 2` of `pairs[j / 2]` (`pair`'s
/// layout: the weights are at most 32767), over `min(logits.len(), 2 · pairs.len())` logits
/// (the half after an odd last one is left alone); returns their sum (the block loop of
/// [`Running::admit_by`](super::fixed_point::Running::admit_by) in `admit_rows`).
#[inline(always)]
pub(crate) fn weight_halves_q15(reference: i32, logits: &[i32], pairs: &mut [i32]) -> u32 {
    let len = logits.len().min(2 * pairs.len());
    let mut sum = 0u32;
    if len == 0 {
        return sum;
    }
    // SAFETY: len ≥ 1; the loop reads logits[0 .. len] and writes the first len halfwords of
    // pairs (two per turn, an odd len entering at the second, until the logit pointer reaches
    // logits + len), len ≤ logits.len()
    // and ≤ 2 · pairs.len(); the table load reads POW2_MIDPOINTS at an index masked to 0..1024. The
    // block writes only pairs, its inout and out operands and the flags; no stack.
    unsafe {
        weights_loop!(
            reference,
            logits,
            len,
            sum,
            ["strh {t}, [{w}], #2"],
            w = inout(reg) pairs.as_mut_ptr() => _,
        );
    }
    sum
}

/// The sum of [`weight_halves_q15`]'s weights alone (nothing stored): the normaliser's blocks.
#[inline(always)]
pub(crate) fn weight_sum_q15(reference: i32, logits: &[i32]) -> u32 {
    let len = logits.len();
    let mut sum = 0u32;
    if len == 0 {
        return sum;
    }
    // SAFETY: len ≥ 1; the loop reads logits[0 .. len] (two per turn, an odd len entering at the
    // second, until the logit pointer reaches logits + len); the table load reads POW2_MIDPOINTS at
    // an index masked to 0..1024. The block writes only its inout and out operands and the flags;
    // no stack, no memory.
    unsafe {
        weights_loop!(reference, logits, len, sum, [],);
    }
    sum
}

/// One logit of [`admit_sums`] and [`admit_halves`]: `weight_q15(t)` for `t = reference −
/// logit` (wrapping, as `u32`) added to `{acc}`, the reference in `{r}`, `t`'s sign bit into
/// `{flag}`, the logit from `{l}` (advanced), 15 in `r7`; the weight stored by `$store` (or
/// not).
#[cfg(not(lara_attn_compact))]
macro_rules! row_step {
    ([$($store:expr)?]) => {
        concat!(
            "ldr {t}, [{l}], #4\n",
            "sub {t}, {r}, {t}\n",
            "orr {flag}, {flag}, {t}\n",
            // shift = 15 + (t >> 16), capped at 63
            "add {s}, r7, {t}, lsr #16\n",
            "usat {s}, #6, {s}\n",
            exp2_body!(),
            "usat {t}, #15, {t}\n",
            $($store, "\n",)?
            "add {acc}, {acc}, {t}\n",
        )
    };
}

/// The rows of the common case of the streaming-softmax step in one `asm!` block: per row, the
/// reference from `{rp}` (advanced; empty: out at `7`), the sum from `{sums}`, the
/// [`KEY_BLOCK`] logits by `$step`, then (no sign in `{flag}`, the sum at most
/// [`SUM_LIMIT`]) the sum stored (advanced), until `{rp}` reaches `{end}`; else out with
/// `{rp}` back at the row (a logit above the reference already after the first half: out
/// then). `r7` (the frame pointer, saved on the stack) holds 15
/// for `$step`. `$operands`: the rest (those of `$step` among them).
#[cfg(not(lara_attn_compact))]
macro_rules! rows_asm {
    ($step:expr, $($operands:tt)*) => {
        asm!(
            "push {{r7}}",
            "mov r7, #15",
            "1:",
            "ldr {r}, [{rp}], #4",
            // an empty reference: the general path
            "cmp {r}, #0x80000000",
            "beq 7f",
            "ldr {acc}, [{sums}]",
            "mov {flag}, #0",
            $step,
            $step,
            $step,
            $step,
            // a logit above the reference in the first half: the general path at once
            "cmp {flag}, #0",
            "blt 7f",
            $step,
            $step,
            $step,
            $step,
            // a logit above the reference, or past SUM_LIMIT: the general path
            "cmp {flag}, #0",
            "blt 7f",
            "cmp {acc}, #0x800000",
            "bhi 7f",
            "str {acc}, [{sums}], #4",
            "cmp {rp}, {end}",
            "bne 1b",
            "b 8f",
            "7:",
            "sub {rp}, {rp}, #4",
            "8:",
            "pop {{r7}}",
            $($operands)*
            table = in(reg) POW2_MIDPOINTS.as_ptr(),
            r = out(reg) _,
            acc = out(reg) _,
            flag = out(reg) _,
            t = out(reg) _,
            s = out(reg) _,
            j = out(reg) _,
        )
    };
}

// (a logit above the reference, or an absent one against a reference of at least 0, sets the
// sign bit of its t: the row goes to the general path; an absent one against a negative
// reference gets the weight 0, as there; the block's immediates are these constants, and
// KEY_BLOCK logits are 32 bytes)
#[cfg(not(lara_attn_compact))]
const _: () = assert!(
    EMPTY_REFERENCE == i32::MIN && ABSENT == i32::MIN && SUM_LIMIT == 1 << 23 && KEY_BLOCK == 8
);

/// The common case of the normaliser's streaming-softmax step over its rows (`Running::admit_sum`
/// of each landmark's block of [`KEY_BLOCK`] logits, the sum alone): for each row `c` in turn
/// whose reference is not [`EMPTY_REFERENCE`], whose logits are all at most it and whose sum
/// stays at most [`SUM_LIMIT`] with the block's weights, `sums[c] += Σ weight_q15(reference −
/// logit)` (the reference stays: the same bits as `admit_sum` there), from row `from` on; stops
/// at the first other row and returns the rows done (the caller admits that one by the general
/// path). For logits
/// in `[−2^28, 2^28)` or [`ABSENT`] and references likewise or empty (as the kernels make them).
#[cfg(not(lara_attn_compact))]
#[inline(always)]
pub(crate) fn admit_sums(
    logits: &[[i32; KEY_BLOCK]],
    references: &[i32],
    sums: &mut [i32],
    from: usize,
) -> usize {
    let rows = logits.len().min(references.len()).min(sums.len());
    if from >= rows {
        return 0;
    }
    // (from row `from` on: pointers, no slices cut at each entry)
    let start = references.as_ptr().wrapping_add(from);
    let mut at = start;
    // SAFETY: from < rows (the pointers from row `from` on stay within the slices); each turn
    // reads references[c] (from ≤ c < rows: the loop stops when its pointer reaches
    // references + rows, or before), logits[c] (KEY_BLOCK words) and sums[c], writes only
    // sums[c]; the table loads read POW2_MIDPOINTS at an index masked to 0..1024. The block
    // writes its inout and out operands and the flags (USAT may set Q); r7 is pushed and popped
    // (one word of stack).
    unsafe {
        rows_asm!(
            row_step!([]),
            l = inout(reg) logits.as_ptr().wrapping_add(from).cast::<i32>() => _,
            rp = inout(reg) at,
            sums = inout(reg) sums.as_mut_ptr().wrapping_add(from) => _,
            end = in(reg) references.as_ptr().wrapping_add(rows),
        );
    }
    // (at is within references[from..=rows])
    (at as usize - start as usize) / 4
}

/// [`admit_sums`] for the rows of a key block that keep their reference, their weights
/// stored too: `weight_q15(reference − logits[c][j])` in half `j mod 2` of `weights[c][j / 2]`
/// (as `weight_halves_q15`; `admit_rows`' common case). A row that goes to the general path may
/// have had its weights written (the general path writes them all again).
#[cfg(not(lara_attn_compact))]
#[inline(always)]
pub(crate) fn admit_halves(
    logits: &[[i32; KEY_BLOCK]],
    weights: &mut [[i32; KEY_BLOCK / 2]],
    references: &[i32],
    sums: &mut [i32],
    from: usize,
) -> usize {
    let rows = logits
        .len()
        .min(weights.len())
        .min(references.len())
        .min(sums.len());
    if from >= rows {
        return 0;
    }
    let start = references.as_ptr().wrapping_add(from);
    let mut at = start;
    // SAFETY: as admit_sums, and each turn writes weights[c] (KEY_BLOCK halfwords, c < rows:
    // one STRH per logit, its pointer advanced with the logits'; a row that goes out has
    // written at most its own).
    unsafe {
        rows_asm!(
            row_step!(["strh {t}, [{w}], #2"]),
            l = inout(reg) logits.as_ptr().wrapping_add(from).cast::<i32>() => _,
            w = inout(reg) weights.as_mut_ptr().wrapping_add(from).cast::<i32>() => _,
            rp = inout(reg) at,
            sums = inout(reg) sums.as_mut_ptr().wrapping_add(from) => _,
            end = in(reg) references.as_ptr().wrapping_add(rows),
        );
    }
    // (at is within references[from..=rows])
    (at as usize - start as usize) / 4
}

/// Rows `0..count` of a streaming-softmax step: `fast(state, c)` takes the rows from `c` on
/// that it can (returns how many), `general(state, c)` the row it stopped at (`false`: no such
/// row), in order.
#[cfg(not(lara_attn_compact))]
#[inline(always)]
pub(crate) fn fast_rows<S: ?Sized>(
    state: &mut S,
    count: usize,
    fast: impl Fn(&mut S, usize) -> usize,
    mut general: impl FnMut(&mut S, usize) -> bool,
) {
    let mut c = 0;
    while c < count {
        c += fast(state, c);
        if c >= count || !general(state, c) {
            break;
        }
        c += 1;
    }
}

/// The normaliser's step over its first `count` rows: [`admit_sums`] for the rows whose
/// reference stays, `general(logits, (reference, sum))` (`Running::admit_sum` on that state)
/// for each other row, in order.
#[cfg(not(lara_attn_compact))]
#[inline(always)]
pub(crate) fn admit_sum_rows(
    rows: &[[i32; KEY_BLOCK]],
    (references, sums): (&mut [i32], &mut [i32]),
    count: usize,
    mut general: impl FnMut(&[i32; KEY_BLOCK], (&mut i32, &mut i32)),
) {
    let rows = rows.get(..count).unwrap_or_default();
    let references = references.get_mut(..count).unwrap_or_default();
    let sums = sums.get_mut(..count).unwrap_or_default();
    fast_rows(
        &mut (references, sums),
        count,
        |(references, sums), c| admit_sums(rows, references, sums, c),
        |(references, sums), c| {
            let (Some(logits), Some(reference), Some(sum)) =
                (rows.get(c), references.get_mut(c), sums.get_mut(c))
            else {
                return false;
            };
            general(logits, (reference, sum));
            true
        },
    );
}

/// LARA's `T` row in place: `t[c] = 2^(−max(reference[c] − to_logit(scale · t[c]), 0))` in
/// `Q27` (`exp2_neg_branchless(·, 27)`) over the common length; returns `Σ t` (wrapping).
#[inline(always)]
pub(crate) fn t_row(t: &mut [i32], reference: &[i32], scale: Scale32) -> u32 {
    let len = t.len().min(reference.len());
    let (value, pre_shift) = scale.parts();
    let mut sum = 0u32;
    if len == 0 {
        return sum;
    }
    // SAFETY: len ≥ 1; the loop reads and writes t[0 .. len] and reads reference[0 .. len] (two
    // elements per turn, an odd len entering at the second, until the t pointer reaches t + len),
    // len ≤ both lengths; the table load reads POW2_MIDPOINTS at an index masked to 0..1024. The
    // block writes only t, its inout and out operands and the flags (SMMULR and SSAT may set Q); no
    // stack.
    unsafe {
        let end = t.as_mut_ptr().add(len);
        macro_rules! t_step {
            () => {
                concat!(
                    // logit = ssat29(round((t << pre_shift) · value / 2^32))
                    "ldr {t}, [{p}]\n",
                    "lsl {t}, {t}, {pre}\n",
                    "smmulr {t}, {t}, {value}\n",
                    "ssat {t}, #29, {t}\n",
                    // max(reference − logit, 0) (wrapping difference)
                    "ldr {j}, [{r}], #4\n",
                    "sub {t}, {j}, {t}\n",
                    "bic {t}, {t}, {t}, asr #31\n",
                    // shift = 3 + min(t >> 16, 31) (t ≥ 0 as i32)
                    "usat {s}, #5, {t}, asr #16\n",
                    "add {s}, {s}, #3\n",
                    exp2_body!(),
                    "str {t}, [{p}], #4\n",
                    "add {sum}, {sum}, {t}\n",
                )
            };
        }
        exp2_loop!(
            p,
            end,
            t_step!(),
            p = inout(reg) t.as_mut_ptr() => _,
            r = inout(reg) reference.as_ptr() => _,
            end = in(reg) end,
            value = in(reg) value,
            pre = in(reg) pre_shift,
            sum = inout(reg) sum,
        );
    }
    sum
}

/// LARA's query weights in place: `w_c = 2^(ℓ_c − max)` in `Q15` (`exp2_neg_branchless(max −
/// ℓ_c, 15)`, wrapping difference), for mis-opt times `α_c` (in `weights`, any `u32`):
/// `round(w_c · α_c / 2^15)`, over the common length; returns `Σ w_c` (64 bits).
///
/// `round(e · α / 2^15)` of the 64-bit product `p = e · α` (`UMULL`) is `p >> 15` (the low
/// word's bits 15 and up, `ORR` the high word's) plus bit 14 of `p` (the carry of the `LSRS`).
#[inline(always)]
pub(crate) fn query_weights(max: i32, logits: &[i32], weights: &mut [i32], optimal: bool) -> u64 {
    let len = logits.len().min(weights.len());
    let (mut low, mut high) = (0u32, 0u32);
    if len == 0 {
        return 0;
    }
    macro_rules! weights_asm {
        ($alpha:expr) => {
            // SAFETY: len ≥ 1; the loop reads logits[0 .. len] and reads and writes
            // weights[0 .. len] (two elements per turn, an odd len entering at the second, until
            // the logit pointer reaches
            // logits + len), len ≤ both lengths; the table load reads POW2_MIDPOINTS at an index
            // masked to 0..1024. The block writes only weights, its inout and out operands and
            // the flags; no stack.
            unsafe {
                macro_rules! weight_step {
                    () => {
                        concat!(
                            // t = max − logit (wrapping), shift = 15 + min(t >> 16, 31)
                            "ldr {t}, [{l}], #4\n",
                            "sub {t}, {m}, {t}\n",
                            "lsr {s}, {t}, #16\n",
                            "usat {s}, #5, {s}\n",
                            "add {s}, {s}, #15\n",
                            exp2_body!(),
                            $alpha,
                            "str {t}, [{w}], #4\n",
                            // the 64-bit sum
                            "adds {lo}, {lo}, {t}\n",
                            "adc {hi}, {hi}, #0\n",
                        )
                    };
                }
                exp2_loop!(
                    l,
                    end,
                    weight_step!(),
                    l = inout(reg) logits.as_ptr() => _,
                    w = inout(reg) weights.as_mut_ptr() => _,
                    end = in(reg) logits.as_ptr().add(len),
                    m = in(reg) max,
                    lo = inout(reg) low,
                    hi = inout(reg) high,
                );
            }
        };
    }
    if optimal {
        weights_asm!(concat!(
            // p = e · α (64 bits)
            "ldr {s}, [{w}]\n",
            "umull {s}, {j}, {t}, {s}\n",
            // (p >> 15) + bit 14 of p
            "lsrs {s}, {s}, #15\n",
            "orr {t}, {s}, {j}, lsl #17\n",
            "adc {t}, {t}, #0\n",
        ));
    } else {
        weights_asm!("");
    }
    u64::from(high) << 32 | u64::from(low)
}

/// RFA's `φq` before scaling, in place: `a = ratio · exp2_neg(top − a, 15) + floor` (as `u32`,
/// wrapping) for `a ≤ top` (`top = max + norm`: then `top − a` as `u32` is the portable gap
/// `clamp(max + norm − a, 0, 2^32 − 1)`); returns their sum `ratio · Σ 2^-gap + len · floor` (64
/// bits; `Σ 2^-gap ≤ len · 2^15` in a `u32`), `None` past `2^16` elements.
#[inline(always)]
pub(crate) fn rfa_phi(a: &mut [i32], top: i32, ratio: u32, floor: u32) -> Option<u64> {
    let len = a.len();
    let mut sum = 0u32;
    if len == 0 {
        return Some(0);
    }
    if len > 1 << 16 {
        return None;
    }
    // SAFETY: len ≥ 1; the loop reads and writes a[0 .. len] (two elements per turn, an odd len
    // entering at the second, until the pointer reaches a + len); the table load reads
    // POW2_MIDPOINTS at an index masked to 0..1024. The block writes only a, its inout and out
    // operands and the flags; no stack.
    unsafe {
        macro_rules! phi_step {
            () => {
                concat!(
                    // gap = top − a (wrapping), shift = 15 + min(gap >> 16, 31)
                    "ldr {t}, [{p}]\n",
                    "sub {t}, {top}, {t}\n",
                    "lsr {s}, {t}, #16\n",
                    "usat {s}, #5, {s}\n",
                    "add {s}, {s}, #15\n",
                    exp2_body!(),
                    // Σ 2^-gap, φ = ratio · 2^-gap + floor
                    "add {sum}, {sum}, {t}\n",
                    "mla {t}, {t}, {r}, {f}\n",
                    "str {t}, [{p}], #4\n",
                )
            };
        }
        exp2_loop!(
            p,
            end,
            phi_step!(),
            p = inout(reg) a.as_mut_ptr() => _,
            end = in(reg) a.as_mut_ptr().add(len),
            top = in(reg) top,
            r = in(reg) ratio,
            f = in(reg) floor,
            sum = inout(reg) sum,
        );
    }
    Some(u64::from(ratio) * u64::from(sum) + len as u64 * u64::from(floor))
}

/// LARA's proposal densities' sums for row `w_row` of the byte block `w` and row `mu_row` of
/// the byte block `mu` (blocks of the same length, whole chunks of eight words):
/// `(Σ_e mu_e · w_e, Σ_e mu_e²)` over the elements of the two rows (`SMLALD`, two `i16`
/// products added to a 64-bit sum, on the words `(x0, x2)` and `(x1, x3)` of each chunk; the
/// padding elements are zeros). `(0, 0)` for blocks that do not fit.
#[inline(always)]
pub(crate) fn density_sums(w: &[i32], w_row: usize, mu: &[i32], mu_row: usize) -> (i64, i64) {
    let (mut w_low, mut w_high, mut m_low, mut m_high) = (0u32, 0u32, 0u32, 0u32);
    if w.len() != mu.len()
        || w.is_empty()
        || !w.len().is_multiple_of(8)
        || w_row >= 4
        || mu_row >= 4
    {
        return (0, 0);
    }
    // SAFETY: w and mu are whole chunks of 8 words (at least one) of the same length; the loop
    // reads words w_row and w_row + 4 (and mu_row, mu_row + 4; rows < 4) of each chunk, one
    // chunk per turn until the mu pointer passes the last chunk. The block writes only its inout
    // and out operands and the flags; no stack.
    unsafe {
        let p_mu = mu.as_ptr().add(mu_row);
        asm!(
            "1:",
            "ldr {m1}, [{pm}, #16]",
            "ldr {m0}, [{pm}], #32",
            "ldr {w1}, [{pw}, #16]",
            "ldr {w0}, [{pw}], #32",
            "smlald {wl}, {wh}, {m0}, {w0}",
            "smlald {wl}, {wh}, {m1}, {w1}",
            "smlald {ml}, {mh}, {m0}, {m0}",
            "smlald {ml}, {mh}, {m1}, {m1}",
            "cmp {pm}, {end}",
            "bne 1b",
            pm = inout(reg) p_mu => _,
            pw = inout(reg) w.as_ptr().add(w_row) => _,
            end = in(reg) p_mu.add(mu.len()),
            wl = inout(reg) w_low,
            wh = inout(reg) w_high,
            ml = inout(reg) m_low,
            mh = inout(reg) m_high,
            m0 = out(reg) _,
            m1 = out(reg) _,
            w0 = out(reg) _,
            w1 = out(reg) _,
            options(nostack),
        );
    }
    let wide = |low: u32, high: u32| (u64::from(high) << 32 | u64::from(low)) as i64;
    (wide(w_low, w_high), wide(m_low, m_high))
}

/// LARA's proposal densities of sample row `w_row` of the byte block `w` against every landmark
/// of the byte blocks `mu` (`blocks` of `block` words, whole chunks of eight), in one `asm!`
/// block: per landmark `c'` (row `r` of block `b`, into `lm[4b + r]`) [`density_sums`]' loop,
/// then `LM = ssat29((((2 · dot − squares) · m + 2^(shift − 1)) >> 32) >> (shift − 32))`
/// (`Multiplier::apply`'s bits for `33 ≤ shift ≤ 62`, its rounding term in the high word
/// alone: `high = (m, 2^(shift − 33), shift − 32)`). `false`, nothing written, if the blocks
/// or `lm` do not fit or the shift is outside `33..=62`.
#[cfg(not(lara_attn_compact))]
#[inline(always)]
pub(crate) fn density_row(
    (w, w_row): (&[i32], usize),
    (mu, block): (&[i32], usize),
    lm: &mut [i32],
    (m, round, shift): (i32, i32, u32),
) -> bool {
    let blocks = mu.len() / block.max(1);
    let fits = block != 0
        && block.is_multiple_of(8)
        && w.len() == block
        && w_row < 4
        && blocks != 0
        && lm.len() >= 4 * blocks
        && (1..=30).contains(&shift)
        && m > 0;
    if !fits {
        return false;
    }
    // block bytes, all the blocks' bytes, m, the rounding term, the shift, w's row, (the end
    // of this row's blocks), lm's end of the first blocks' slots, the step back to the next row
    let mut constants = [
        block as i32 * 4,
        (blocks * block) as i32 * 4,
        m,
        round,
        shift as i32,
        w.as_ptr().wrapping_add(w_row) as usize as i32,
        0,
        lm.as_mut_ptr().wrapping_add(4) as usize as i32,
        blocks as i32 * 16 - 4,
    ];
    // SAFETY: w is one block (block words, a non-zero multiple of 8) and mu `blocks ≥ 1` whole
    // blocks; lm holds 4 · blocks words (checked above). For each r < 4 and block b the loop
    // reads words r and r + 4 of every chunk of block b of mu (its pointer walks on from row r
    // of block 0, 32 bytes a chunk, so it reaches row r of block b + 1) and of w (row w_row < 4,
    // from its start each time), and writes lm[4b + r] (16 bytes a block from lm + 4r), until
    // the mu pointer reaches the end of the blocks; then back to row r + 1 of block 0 and slot
    // r + 1, until the slot pointer reaches lm + 4 (four rows). It reads `constants` (9 words)
    // and writes its word 6. r7 is saved and restored (4 bytes of stack); the flags (SSAT may
    // set Q) and the declared registers are clobbered.
    unsafe {
        asm!(
            "push {{r7}}",
            "1:",
            // (the end of row r's blocks)
            "ldr r0, [r12, #4]",
            "add r0, {pm}, r0",
            "str r0, [r12, #24]",
            "2:",
            "ldr r0, [r12]",
            "add r0, {pm}, r0",
            "ldr {pw}, [r12, #20]",
            "mov {wl}, #0",
            "mov {wh}, #0",
            "mov {ml}, #0",
            "mov {mh}, #0",
            "3:",
            "ldr r7, [{pm}, #16]",
            "ldr r1, [{pm}], #32",
            "ldr r3, [{pw}, #16]",
            "ldr r2, [{pw}], #32",
            "smlald {wl}, {wh}, r1, r2",
            "smlald {wl}, {wh}, r7, r3",
            "smlald {ml}, {mh}, r1, r1",
            "smlald {ml}, {mh}, r7, r7",
            "cmp {pm}, r0",
            "bne 3b",
            // 2 · dot − squares (64 bits), · m, + the rounding term, >> shift, SSAT #29
            "adds {wl}, {wl}, {wl}",
            "adc {wh}, {wh}, {wh}",
            "subs {wl}, {wl}, {ml}",
            "sbc {wh}, {wh}, {mh}",
            "ldr r1, [r12, #8]",
            "umull {ml}, {mh}, {wl}, r1",
            "mla {mh}, {wh}, r1, {mh}",
            "ldrd r1, r2, [r12, #12]",
            "add {mh}, {mh}, r1",
            "asr {mh}, {mh}, r2",
            "ssat {mh}, #29, {mh}",
            "str {mh}, [{po}], #16",
            "ldr r0, [r12, #24]",
            "cmp {pm}, r0",
            "bne 2b",
            // the next row r: mu back to row r + 1 of block 0, lm to slot r + 1
            "ldr r0, [r12, #4]",
            "sub {pm}, {pm}, r0",
            "add {pm}, {pm}, #4",
            "ldr r0, [r12, #32]",
            "sub {po}, {po}, r0",
            "ldr r0, [r12, #28]",
            "cmp {po}, r0",
            "bne 1b",
            "pop {{r7}}",
            pm = inout(reg) mu.as_ptr() => _,
            pw = out(reg) _,
            po = inout(reg) lm.as_mut_ptr() => _,
            wl = out(reg) _,
            wh = out(reg) _,
            ml = out(reg) _,
            mh = out(reg) _,
            in("r12") constants.as_mut_ptr(),
            out("r0") _, out("r1") _, out("r2") _, out("r3") _,
        );
    }
    true
}

/// The `i8` requantisation of a row, `out[t] = clamp(((s_t · mantissa) >> 32) + round) >>
/// shift, -128, 127)` (the high word of the product by `SMMLA` with the rounding term, `ASR` by a
/// register, `SSAT #8`), four values per turn (`LDM`) over whole groups of four of the common
/// length; returns the values done (the caller does the rest).
#[inline(always)]
pub(crate) fn requantize_i8(
    out: &mut [i8],
    sums: &[i32],
    (mantissa, round, shift): (i32, i32, u32),
) -> usize {
    let len = out.len().min(sums.len()) / 4 * 4;
    if len == 0 {
        return 0;
    }
    // SAFETY: len ≥ 4, a multiple of 4; the loop reads sums[0 .. len] and writes out[0 .. len]
    // (four per turn, until the sum pointer reaches sums + len), len ≤ both lengths. The block
    // writes only those bytes, its inout and out operands and the flags (SSAT may set Q); no
    // stack.
    unsafe {
        asm!(
            "1:",
            "ldm {s}!, {{r0, r1, r2, r3}}",
            "smmla r0, r0, {m}, {round}",
            "asr r0, r0, {shift}",
            "ssat r0, #8, r0",
            "strb r0, [{o}], #1",
            "smmla r1, r1, {m}, {round}",
            "asr r1, r1, {shift}",
            "ssat r1, #8, r1",
            "strb r1, [{o}], #1",
            "smmla r2, r2, {m}, {round}",
            "asr r2, r2, {shift}",
            "ssat r2, #8, r2",
            "strb r2, [{o}], #1",
            "smmla r3, r3, {m}, {round}",
            "asr r3, r3, {shift}",
            "ssat r3, #8, r3",
            "strb r3, [{o}], #1",
            "cmp {s}, {end}",
            "bne 1b",
            s = inout(reg) sums.as_ptr() => _,
            end = in(reg) sums.as_ptr().add(len),
            o = inout(reg) out.as_mut_ptr() => _,
            m = in(reg) mantissa,
            round = in(reg) round,
            shift = in(reg) shift,
            out("r0") _, out("r1") _, out("r2") _, out("r3") _,
            options(nostack),
        );
    }
    len
}

/// `a = rescale(a, factor)` for the four words of row `c` (at `4c`) of every whole group of
/// `group` words of `acc`: `admit_rows`' rescaling, a row of a group per turn (`LDM`/`STM`).
/// `round(a · f / 2^15)` of the `i64` product `p` (`SMULL`) is `p >> 15` (the low word's bits
/// 15 and up, `ORR` the high word's) plus bit 14 of `p` (the carry of `LSRS #15`), as `i32`.
/// For `factor ≤ 2^15`; `false`, nothing written, for another factor or a row outside a group.
#[inline(always)]
pub(crate) fn rescale_row(acc: &mut [i32], group: usize, c: usize, factor: u32) -> bool {
    if factor > 1 << 15 || (c + 1) * 4 > group {
        return false;
    }
    let groups = acc.len() / group;
    if groups == 0 {
        return true;
    }
    // SAFETY: group ≥ 4 (c + 1 ≤ group / 4); the loop reads and writes words 4c..4c + 4 of
    // each of the groups = acc.len() / group ≥ 1 whole groups (group words apart, until the
    // pointer reaches groups · group words on), 4c + 4 ≤ group. The block writes only those
    // words, its inout and out operands and the flags; no stack.
    unsafe {
        let start = acc.as_mut_ptr().add(4 * c);
        asm!(
            "1:",
            "ldm {p}, {{r0, r1, r2, r3}}",
            // (a · f >> 15) + bit 14 of a · f
            "smull r0, {h}, r0, {f}",
            "lsrs r0, r0, #15",
            "orr r0, r0, {h}, lsl #17",
            "adc r0, r0, #0",
            "smull r1, {h}, r1, {f}",
            "lsrs r1, r1, #15",
            "orr r1, r1, {h}, lsl #17",
            "adc r1, r1, #0",
            "smull r2, {h}, r2, {f}",
            "lsrs r2, r2, #15",
            "orr r2, r2, {h}, lsl #17",
            "adc r2, r2, #0",
            "smull r3, {h}, r3, {f}",
            "lsrs r3, r3, #15",
            "orr r3, r3, {h}, lsl #17",
            "adc r3, r3, #0",
            "stm {p}, {{r0, r1, r2, r3}}",
            "add {p}, {p}, {stride}",
            "cmp {p}, {end}",
            "bne 1b",
            p = inout(reg) start => _,
            end = in(reg) start.add(groups * group),
            stride = in(reg) 4 * group,
            f = in(reg) factor,
            h = out(reg) _,
            out("r0") _, out("r1") _, out("r2") _, out("r3") _,
            options(nostack),
        );
    }
    true
}

/// LARA's `kv_c[t] = clamp(round(acc · 2^8 / sum), −2^15, 2^15 − 1)` for row `c` of every
/// group (`finish_keys`): `acc` holds the groups (`group` words each, row `c`'s four sums at
/// `4c`, `LDM`), `kv` the pair blocks (`kv_block` words each, row `c`'s four `i16` at
/// `pair_slot(t, c)`, 4 bytes apart), the division as [`requantize_i8`]'s high word (`SMMLA`
/// with the rounding term, `ASR`) for a `Reciprocal::high_word_rounded`, saturated to 16 bits
/// (`SSAT #16`, `STRH`). `false`, nothing written, if the row is not inside a group or a block.
#[cfg(not(lara_attn_compact))]
#[inline(always)]
pub(crate) fn divide_row(
    (acc, group): (&[i32], usize),
    (kv, kv_block): (&mut [i32], usize),
    c: usize,
    (mantissa, round, shift): (i32, i32, u32),
) -> bool {
    // row c's first halfword in a pair block (t = 0), and its last (t = 3) inside the block
    let slot = 8 * (c / 2) + c % 2;
    let inside = group != 0
        && kv_block != 0
        && c.saturating_add(1).saturating_mul(4) <= group
        && slot + 6 < 2 * kv_block;
    if !inside {
        return false;
    }
    let groups = (acc.len() / group).min(kv.len() / kv_block);
    if groups == 0 {
        return true;
    }
    let src = acc.as_ptr().wrapping_add(4 * c);
    let dst = kv.as_mut_ptr().cast::<i16>().wrapping_add(slot);
    // SAFETY: for g < groups ≤ acc.len() / group the loop reads acc[g · group + 4c .. + 4]
    // (4c + 4 ≤ group) and writes the halfwords g · 2 kv_block + slot + {0, 2, 4, 6} of kv
    // (below 2 kv_block within block g, g < kv.len() / kv_block), groups ≥ 1 turns until the
    // source pointer reaches groups · group words on. The block writes only those halfwords,
    // its inout and out operands and the flags (SSAT may set Q); no stack.
    unsafe {
        asm!(
            "1:",
            "ldm {s}, {{r0, r1, r2, r3}}",
            "smmla r0, r0, {m}, {round}",
            "asr r0, r0, {shift}",
            "ssat r0, #16, r0",
            "strh r0, [{d}]",
            "smmla r1, r1, {m}, {round}",
            "asr r1, r1, {shift}",
            "ssat r1, #16, r1",
            "strh r1, [{d}, #4]",
            "smmla r2, r2, {m}, {round}",
            "asr r2, r2, {shift}",
            "ssat r2, #16, r2",
            "strh r2, [{d}, #8]",
            "smmla r3, r3, {m}, {round}",
            "asr r3, r3, {shift}",
            "ssat r3, #16, r3",
            "strh r3, [{d}, #12]",
            "add {s}, {s}, {s_step}",
            "add {d}, {d}, {d_step}",
            "cmp {s}, {end}",
            "bne 1b",
            s = inout(reg) src => _,
            end = in(reg) src.wrapping_add(groups * group),
            d = inout(reg) dst => _,
            m = in(reg) mantissa,
            round = in(reg) round,
            shift = in(reg) shift,
            s_step = in(reg) group * 4,
            d_step = in(reg) kv_block * 4,
            out("r0") _, out("r1") _, out("r2") _, out("r3") _,
            options(nostack),
        );
    }
    true
}

/// LARA's segment-mean landmark row (`landmark_row`) over the common length: `q̄ =
/// round(128 · q / q_len)` and `k̄` likewise (half away from zero: `SDIV` of `128 · sum ±
/// len/2`, truncating toward zero), `q̄` back into `q_sum`, and `mu = round(q̄ · 2^q_p · q_m /
/// 2^32) + round(k̄ · 2^k_p · k_m / 2^32)` (`SMMULR`, `SMMLAR`) clamped to `[−2^14, 2^14]`
/// into `mu_row`. For lengths of 1 to `2^16 − 1` rows (else `false`, nothing written).
#[cfg(not(lara_attn_compact))]
#[inline(always)]
pub(crate) fn landmark_means(
    (q_sum, k_sum, mu_row): (&mut [i32], &[i32], &mut [i32]),
    (q_len, k_len): (u32, u32),
    ((q_m, q_p), (k_m, k_p)): ((i32, u32), (i32, u32)),
) -> bool {
    let len = q_sum.len().min(k_sum.len()).min(mu_row.len());
    let lens = 1..1 << 16;
    if !lens.contains(&q_len) || !lens.contains(&k_len) {
        return false;
    }
    if len == 0 {
        return true;
    }
    // SAFETY: len ≥ 1; the loop reads and writes q_sum[0 .. len], reads k_sum[0 .. len] and
    // writes mu_row[0 .. len] (one element per turn, until the k pointer reaches k_sum + len),
    // len ≤ every length; the divisors are 1 to 2^16 − 1 (no division by zero). The block
    // writes only those words, its inout and out operands and the flags (SSAT may set Q); no
    // stack.
    unsafe {
        asm!(
            "1:",
            "ldr {q}, [{pq}]",
            "ldr {k}, [{pk}], #4",
            // q̄ = ((q << 7) ± q_len/2) / q_len, the sign of q: (h ^ s) − s, s = q >> 31
            "lsr {t}, {lq}, #1",
            "eor {t}, {t}, {q}, asr #31",
            "sub {t}, {t}, {q}, asr #31",
            "add {t}, {t}, {q}, lsl #7",
            "sdiv {q}, {t}, {lq}",
            "str {q}, [{pq}], #4",
            "lsr {t}, {lk}, #1",
            "eor {t}, {t}, {k}, asr #31",
            "sub {t}, {t}, {k}, asr #31",
            "add {t}, {t}, {k}, lsl #7",
            "sdiv {k}, {t}, {lk}",
            // mu = round(q̄ · 2^q_p · q_m / 2^32) + round(k̄ · 2^k_p · k_m / 2^32)
            "lsl {q}, {q}, {qp}",
            "smmulr {q}, {q}, {qm}",
            "lsl {k}, {k}, {kp}",
            "smmlar {q}, {k}, {km}, {q}",
            // clamp(mu, −2^14, 2^14): SSAT #15, plus 1 where mu is above 2^14 − 1
            "ssat {t}, #15, {q}",
            "cmp {q}, {t}",
            "it gt",
            "addgt {t}, {t}, #1",
            "str {t}, [{pm}], #4",
            "cmp {pk}, {end}",
            "bne 1b",
            pq = inout(reg) q_sum.as_mut_ptr() => _,
            pk = inout(reg) k_sum.as_ptr() => _,
            pm = inout(reg) mu_row.as_mut_ptr() => _,
            end = in(reg) k_sum.as_ptr().add(len),
            lq = in(reg) q_len,
            lk = in(reg) k_len,
            qm = in(reg) q_m,
            qp = in(reg) q_p,
            km = in(reg) k_m,
            kp = in(reg) k_p,
            q = out(reg) _,
            k = out(reg) _,
            t = out(reg) _,
            options(nostack),
        );
    }
    true
}

/// Rows of `i8` whose sums stay within the `i16` lanes of [`sum_rows`]: `256 · 128 = 2^15`.
const LANE_ROWS: usize = 256;

/// LARA's segment sums: `sum[t] += Σ_rows row[t]` for the rows back to back in `rows`
/// (`sum.len()` bytes each, a non-zero multiple of 4), the same sums as one `i8` at a time.
/// Per pass over up to [`LANE_ROWS`] rows, four words of columns (16; then one word at a time)
/// in the 16-bit lanes of eight registers: `SXTAB16` adds bytes 0 and 2 (rotated: 1 and 3),
/// sign-extended, to the two lanes of a register; the lanes then go to `sum`. `false`, nothing
/// added, if the lengths do not fit.
#[inline(never)]
pub(crate) fn sum_rows(sum: &mut [i32], rows: &[i8]) -> bool {
    let dim = sum.len();
    if dim == 0 || !dim.is_multiple_of(4) || !rows.len().is_multiple_of(dim) {
        return false;
    }
    let count = rows.len() / dim;
    let mut first = 0;
    while first < count {
        let run = (count - first).min(LANE_ROWS);
        let mut column = 0;
        while column + 4 <= dim {
            let words = if column + 16 <= dim { 4 } else { 1 };
            let mut lanes = [0u32; 8];
            // SAFETY: rows first..first + run of `rows` (run ≥ 1, first + run ≤ count) are read
            // at bytes column..column + 4 · words ≤ dim of each (unaligned LDR of i8 rows is
            // allowed on these cores), one row per turn until the pointer reaches run rows on.
            // The block writes only its inout and out operands and the flags; no stack.
            unsafe {
                let start = rows.as_ptr().add(first * dim + column);
                let end = start.add(run * dim);
                macro_rules! lanes_asm {
                    ([$($body:literal),*], $($lane:ident = $reg:expr),*) => {
                        asm!(
                            "1:",
                            $($body,)*
                            "add {p}, {p}, {stride}",
                            "cmp {p}, {end}",
                            "bne 1b",
                            p = inout(reg) start => _,
                            end = in(reg) end,
                            stride = in(reg) dim,
                            t = out(reg) _,
                            $($lane = inout(reg) $reg,)*
                            options(nostack),
                        )
                    };
                }
                let [l0, l1, l2, l3, l4, l5, l6, l7] = &mut lanes;
                if words == 4 {
                    lanes_asm!(
                        [
                            "ldr {t}, [{p}]",
                            "sxtab16 {l0}, {l0}, {t}",
                            "sxtab16 {l1}, {l1}, {t}, ror #8",
                            "ldr {t}, [{p}, #4]",
                            "sxtab16 {l2}, {l2}, {t}",
                            "sxtab16 {l3}, {l3}, {t}, ror #8",
                            "ldr {t}, [{p}, #8]",
                            "sxtab16 {l4}, {l4}, {t}",
                            "sxtab16 {l5}, {l5}, {t}, ror #8",
                            "ldr {t}, [{p}, #12]",
                            "sxtab16 {l6}, {l6}, {t}",
                            "sxtab16 {l7}, {l7}, {t}, ror #8"
                        ],
                        l0 = *l0,
                        l1 = *l1,
                        l2 = *l2,
                        l3 = *l3,
                        l4 = *l4,
                        l5 = *l5,
                        l6 = *l6,
                        l7 = *l7
                    );
                } else {
                    lanes_asm!(
                        [
                            "ldr {t}, [{p}]",
                            "sxtab16 {l0}, {l0}, {t}",
                            "sxtab16 {l1}, {l1}, {t}, ror #8"
                        ],
                        l0 = *l0,
                        l1 = *l1
                    );
                }
            }
            // the lanes (i16) to the sums of their columns: (0, 2) and (1, 3) of each word
            let sums = sum.get_mut(column..column + 4 * words).unwrap_or_default();
            let (sums, _) = sums.as_chunks_mut::<4>();
            for ([s0, s1, s2, s3], [even, odd]) in sums.iter_mut().zip(lanes.as_chunks::<2>().0) {
                *s0 += i32::from(*even as i16);
                *s1 += i32::from(*odd as i16);
                *s2 += (*even as i32) >> 16;
                *s3 += (*odd as i32) >> 16;
            }
            column += 4 * words;
        }
        first += run;
    }
    true
}

/// `2^-t` of the explicit-register loops of [`QuerySteps::run`]: `exp2_body!` with `t` in
/// `r2`, its shift in `r3`, the table's address in `r0` (`POW2_MIDPOINTS`), the result into
/// `$out`; clobbers `r2`, `lr` and the flags.
#[cfg(not(lara_attn_compact))]
macro_rules! exp2_body_r2 {
    ($out:literal) => {
        concat!(
            "ubfx lr, r2, #6, #10\n",
            "ldr r2, [r0, lr, lsl #2]\n",
            "lsrs r2, r2, r3\n",
            "adc ",
            $out,
            ", r2, #0\n",
        )
    };
}

/// One logit of [`QuerySteps::run`]'s second loop, `$r` = `to_logit(scale · ℓ + bias)` (the
/// bias added by `SMMLAR`, `SSAT #29`) and the largest so far in `r12`: the bias in `$b`, the
/// scale's parts in `r9`, `r10`. (The portable sum saturates; it cannot here: `|scale · ℓ| <
/// 2^30` (`SMMULR` of a value below `2^31`) and `|bias| < 2^30` (`lseK − log2 P`, both within
/// `2^28 + 2^21` of 0; `QuerySteps::new` takes `2^30`), so the plain sum is the saturating
/// one.)
#[cfg(not(lara_attn_compact))]
#[rustfmt::skip]
macro_rules! logit_r {
    ($r:literal, $b:literal) => {
        concat!(
            "lsl ", $r, ", ", $r, ", r10\n",
            "smmlar ", $r, ", ", $r, ", r9, ", $b, "\n",
            "ssat ", $r, ", #29, ", $r, "\n",
            "cmp r12, ", $r, "\n",
            "it lt\n",
            "movlt r12, ", $r, "\n",
        )
    };
}

/// One `α` of [`QuerySteps::run`]'s third loop: `$t` = `max(bh + round(coeff · (T − mean) /
/// 2^16), 1)` with `T` in `$t`, `bh − 1` in `$b`, `16 · mean` in `r6`, `2^12 · coeff` in `r8`:
/// `round(coeff · d / 2^16)` = `SMMULR(16 d, 2^12 coeff)` (the same product, `+ 2^31 >> 32`),
/// exact for `|d| < 2^27` (`T`, the mean in `[0, 2^27]` and `count ≥ 2`) and `2^12 coeff` an
/// `i32`. That spread is at most `2^30` in magnitude and `|bh| < 2^30` (`QuerySteps::new`), so
/// the portable saturating sum is the plain one, and `max(x, 1)` = `USAT(x − 1, 31) + 1`.
#[cfg(not(lara_attn_compact))]
#[rustfmt::skip]
macro_rules! alpha_r {
    ($t:literal, $b:literal) => {
        concat!(
            // 16 (T − mean) (wrapping at T = 2^27; the difference fits)
            "rsb ", $t, ", r6, ", $t, ", lsl #4\n",
            "smmulr ", $t, ", ", $t, ", r8\n",
            // bh − 1 + spread, then max(·, 0) + 1
            "add ", $t, ", ", $b, ", ", $t, "\n",
            "usat ", $t, ", #31, ", $t, "\n",
            "add ", $t, ", ", $t, ", #1\n",
        )
    };
}

/// One `T` of [`QuerySteps::run`]'s first loop (see [`t_row`]): the dot in `$d` (`T` into it),
/// the reference in `$reference`, the scale's parts in `r9`, `r10`, the sum in `r11`, 3 in
/// `r6`.
#[cfg(not(lara_attn_compact))]
macro_rules! t_step_r {
    ($d:literal, $reference:literal) => {
        concat!(
            "lsl r2, ",
            $d,
            ", r10\n",
            "smmulr r2, r2, r9\n",
            "ssat r2, #29, r2\n",
            "sub r2, ",
            $reference,
            ", r2\n",
            // t = max(reference − logit, 0), capped at 2^21 − 1 (a shift from 34 on gives 0,
            // as before the cap), and its shift 3 + (t >> 16) (r6 = 3)
            "usat r2, #21, r2\n",
            "add r3, r6, r2, lsr #16\n",
            exp2_body_r2!($d),
            "add r11, r11, ",
            $d,
            "\n",
        )
    };
}

/// One weight of [`QuerySteps::run`]'s last loop (see [`query_weights`]): the logit in
/// `$logit` against the largest plus `15 · 2^16` in `r12` (in `[−2^28, 2^28]` before), `· α`
/// from `$a`, the weight into `$a` and added to the 64-bit sum in `r9`, `r10` (1 in `r6`).
#[cfg(not(lara_attn_compact))]
#[rustfmt::skip]
macro_rules! weight_step_r {
    ($a:literal, $logit:literal) => {
        concat!(
            // t + 15 · 2^16 = (max + 15 · 2^16) − ℓ (t ≥ 0: the largest of these logits),
            // shift = min(15 + (t >> 16), 63) (any shift from 32 gives 0 here, as 15 +
            // min(t >> 16, 31) does: 2^-t below 2^31); the low 16 bits are t's
            "sub r2, r12, ", $logit, "\n",
            "usat r3, #6, r2, asr #16\n",
            exp2_body_r2!("r2"),
            // round(2^-t · α / 2^15): the product's bits 15 to 46 plus bit 14
            "umull r3, lr, r2, ", $a, "\n",
            "lsrs r3, r3, #15\n",
            "orr ", $a, ", r3, lr, lsl #17\n",
            "adc ", $a, ", ", $a, ", #0\n",
            // the 64-bit sum (r9, r10) += the weight (· 1 in r6)
            "umlal r9, r10, ", $a, ", r6\n",
        )
    };
}

/// Words of the constants of [`QuerySteps`].
#[cfg(not(lara_attn_compact))]
pub(crate) const QUERY_STEP_WORDS: usize = 12;

/// The per-query steps of LARA's `mis-opt` query loop on one head, in one `asm!` block (no glue
/// between them), for `count` landmarks, a multiple of four from 4 to 28: the constants and the
/// addresses of the read-only rows in a scratch buffer (off the stack), in the order the block
/// loads them: biases, the query scale (value, pre-shift), `4 · count`, the `T` references, the `T`
/// scale, `POW2_MIDPOINTS`, the balances less one, `2^12 · alpha_coeff`, `count`, `count / 2`;
/// then the `count` balances less one (`bh − 1`, for `α` by `USAT`).
#[cfg(not(lara_attn_compact))]
pub(crate) struct QuerySteps<'a> {
    words: &'a [i32; QUERY_STEP_WORDS],
    count: usize,
    rows: core::marker::PhantomData<&'a [i32]>,
}

/// Whether every bias of `biases` is below `2^30` in magnitude ([`QuerySteps::new`]).
#[cfg(not(lara_attn_compact))]
#[inline(always)]
pub(crate) fn small_biases(biases: &[i32]) -> bool {
    biases.iter().all(|b| b.unsigned_abs() < 1 << 30)
}

#[cfg(not(lara_attn_compact))]
impl<'a> QuerySteps<'a> {
    /// The steps for `count` landmarks with these biases, `T` references and balances (`bh`)
    /// and scales (`s` for the query logits and for `T`) and `alpha_coeff`, their constants in
    /// `buffer`; `None` unless `count` is a multiple of four from 4 to 28, the rows hold
    /// `count` each, `buffer` [`QUERY_STEP_WORDS`], `alpha_coeff` is in `[−2^19, 2^19)`
    /// (`2^12 · alpha_coeff` an `i32`: not at exactly 8.0), `small_biases`: every bias
    /// below `2^30` in magnitude (the logits' sums then never saturate: see `logit_r!`; the
    /// kernels' biases are within `2^29 + 2^21`; [`small_biases`] checks them), and every
    /// balance below `2^30` in magnitude (`α`'s sum then never saturates: see `alpha_r!`; the
    /// kernels' are in `[0, 2^27]`), `buffer` holding `count` words more.
    pub(crate) fn new(
        buffer: &'a mut [i32],
        count: usize,
        (biases, t_reference, balances, small_biases): (&'a [i32], &'a [i32], &'a [i32], bool),
        (query_dot, t_dot): (Scale32, Scale32),
        alpha_coeff: i32,
    ) -> Option<Self> {
        let fits = count.is_multiple_of(4)
            && (4..32).contains(&count)
            && biases.len() >= count
            && t_reference.len() >= count
            && balances.len() >= count
            && (-(1 << 19)..1 << 19).contains(&alpha_coeff)
            && small_biases;
        let (words, rest) = buffer
            .split_first_chunk_mut::<QUERY_STEP_WORDS>()
            .filter(|_| fits)?;
        // bh − 1 (checked per head: a few words, off the query loop)
        let lowered = rest.get_mut(..count)?;
        for (low, &balance) in lowered.iter_mut().zip(balances) {
            if balance.unsigned_abs() >= 1 << 30 {
                return None;
            }
            *low = balance - 1;
        }
        // (addresses as words: 32-bit targets)
        let address = |p: *const i32| p as usize as i32;
        *words = [
            address(biases.as_ptr()),
            query_dot.parts().0,
            query_dot.parts().1 as i32,
            4 * count as i32,
            address(t_reference.as_ptr()),
            t_dot.parts().0,
            t_dot.parts().1 as i32,
            POW2_MIDPOINTS.as_ptr() as usize as i32,
            address(lowered.as_ptr()),
            alpha_coeff << 12,
            count as i32,
            count as i32 / 2,
        ];
        Some(QuerySteps {
            words,
            count,
            rows: core::marker::PhantomData,
        })
    }

    /// For `logits` and `t` holding the dot products `W_c·q_i` and `q̄_c·q_i` of one query
    /// (at least `count` each), the steps of the query loop: `logits[c] = to_logit(s ·
    /// logits[c] + bias_c)` and their largest (as `dsp::query_logits_max`), `t[c] = T` and their
    /// sum (as [`t_row`]), the rounded mean `(Σ T + count / 2) / count`, `weights[c] = α` (as
    /// [`alphas`]), then `weights[c] = round(2^(ℓ_c − max) · α_c / 2^15)` (as
    /// [`query_weights`], optimal); returns `Σ weights` and, for `1 ≤ shift ≤ 32` with
    /// `shift = bits(Σ weights) − 14`, the sum of the weights packed into `packed` as
    /// `dsp::pack_rounded` does (else `None`: the caller packs). `None`, nothing written, if
    /// a slice is shorter than `count` (`packed`: `count / 2`).
    #[inline(always)]
    pub(crate) fn run(
        &self,
        logits: &mut [i32],
        t: &mut [i32],
        weights: &mut [i32],
        packed: &mut [i32],
    ) -> Option<(u64, Option<u32>)> {
        let count = self.count;
        if logits.len() < count
            || t.len() < count
            || weights.len() < count
            || packed.len() < count / 2
        {
            return None;
        }
        let (low, high, sum, done): (u32, u32, u32, u32);
        // SAFETY: count is a multiple of four from 4 to 28 and every row the block touches holds
        // at least count elements: logits, t and weights (checked above), the biases and T
        // references (checked by new, borrowed for 'a) and the balances less one (written by new
        // after the constants, in the buffer borrowed for 'a), whose addresses the block reads
        // from the constants (QUERY_STEP_WORDS words). Each loop walks
        // count elements, four per turn (the logits, T, α, the weights), until its pointer
        // reaches count elements on (word 3 is 4 · count); the table loads read POW2_MIDPOINTS
        // at an index masked to 0..1024. The block writes only logits, t and weights [0 .. count], its clobbered
        // registers and the flags (SSAT, USAT may set Q), and packed [0 .. count / 2] (two weights
        // per word, two words per turn, until its pointer reaches count / 2 words on: count /
        // 2 is even). r6 and r7 are saved and restored, and the five inputs kept on
        // the stack (28 bytes in all, popped at the end).
        unsafe {
            asm!(
                "push {{r6, r7}}",
                "push {{r0, r1, r2, r3, r4}}",
                "mov r7, r3",
                // T = exp2_neg(max(reference − to_logit(scale · dot), 0), 27), their sum (r11),
                // four per turn, two at a time in r7, r12 (LDRD, STRD)
                "ldr r4, [sp, #4]",
                "ldr r11, [r7, #12]",
                "add r8, r4, r11",
                "add lr, r7, #16",
                "ldm lr, {{r5, r9, r10}}",
                "ldr r0, [r7, #28]",
                "mov r11, #0",
                "mov r6, #3",
                "2:",
                // (the references two at a time from r5 into lr, r1)
                "ldrd r7, r12, [r4]",
                "ldrd lr, r1, [r5], #8",
                t_step_r!("r7", "lr"),
                t_step_r!("r12", "r1"),
                "strd r7, r12, [r4], #8",
                "ldrd r7, r12, [r4]",
                "ldrd lr, r1, [r5], #8",
                t_step_r!("r7", "lr"),
                t_step_r!("r12", "r1"),
                "strd r7, r12, [r4], #8",
                "cmp r4, r8",
                "bne 2b",
                // 16 · the mean (Σ T + count / 2) / count (r6)
                "ldr r7, [sp, #12]",
                "ldrd r0, r1, [r7, #40]",
                "add r6, r11, r1",
                "udiv r6, r6, r0",
                "lsl r6, r6, #4",
                // logits and their largest (r12)
                "ldr r4, [sp]",
                "ldm r7, {{r8, r9, r10, r11}}",
                "add r5, r4, r11",
                "mov r12, #0x80000000",
                "1:",
                "ldm r4, {{r0, r1, r2, r3}}",
                // (the biases two at a time from r8 into r11, lr: 4 · count is in r5 now)
                "ldrd r11, lr, [r8], #8",
                logit_r!("r0", "r11"),
                logit_r!("r1", "lr"),
                "ldrd r11, lr, [r8], #8",
                logit_r!("r2", "r11"),
                logit_r!("r3", "lr"),
                "stm r4!, {{r0, r1, r2, r3}}",
                "cmp r4, r5",
                "bne 1b",
                // α in weights, four per turn (T by LDM, the balances two at a time in r11, lr)
                "ldr r5, [sp, #8]",
                "ldr r10, [r7, #12]",
                "add r10, r10, r5",
                "ldr r4, [r7, #32]",
                "ldr r8, [r7, #36]",
                "ldr r9, [sp, #4]",
                "3:",
                "ldm r9!, {{r0, r1, r2, r3}}",
                "ldrd r11, lr, [r4], #8",
                alpha_r!("r0", "r11"),
                alpha_r!("r1", "lr"),
                "ldrd r11, lr, [r4], #8",
                alpha_r!("r2", "r11"),
                alpha_r!("r3", "lr"),
                "stm r5!, {{r0, r1, r2, r3}}",
                "cmp r5, r10",
                "bne 3b",
                // the weights round(2^(ℓ − max) · α / 2^15) and their 64-bit sum (r9, r10)
                "add r12, r12, #0xF0000",
                "ldr r4, [sp]",
                "ldr r5, [r7, #12]",
                "add r5, r5, r4",
                "ldr r8, [sp, #8]",
                "ldr r0, [r7, #28]",
                "mov r9, #0",
                "mov r10, #0",
                "mov r6, #1",
                // (four per turn, two at a time: the logits in r2, r1, α and the weights in r7,
                // r11)
                "4:",
                "ldrd r2, r1, [r4], #8",
                "ldrd r7, r11, [r8]",
                weight_step_r!("r7", "r2"),
                weight_step_r!("r11", "r1"),
                "strd r7, r11, [r8], #8",
                "ldrd r2, r1, [r4], #8",
                "ldrd r7, r11, [r8]",
                weight_step_r!("r7", "r2"),
                weight_step_r!("r11", "r1"),
                "strd r7, r11, [r8], #8",
                "cmp r4, r5",
                "bne 4b",
                "ldr r7, [sp, #12]",
                // shift = bits(Σ) − 14 (r0); for 1 ≤ shift ≤ 32 the weights in pairs of
                // round(w / 2^shift) (w >> shift plus the carry, bit shift − 1) into packed,
                // their sum (r11) and r12 = 1; else r12 = 0 (the caller packs)
                "mov r11, #0",
                "mov r12, #0",
                "clz r0, r10",
                "rsb r0, r0, #50",
                "cmp r10, #0",
                "bne 5f",
                "clz r0, r9",
                "rsb r0, r0, #18",
                "5:",
                "sub r1, r0, #1",
                "cmp r1, #32",
                "bhs 6f",
                "ldr r8, [sp, #8]",
                "ldr r4, [sp, #16]",
                "ldr r5, [r7, #12]",
                "add r5, r4, r5, lsr #1",
                "mov r12, #1",
                // (four weights per turn, LDM, two words by STRD; r6 is free now)
                "7:",
                "ldm r8!, {{r1, r2, r3, r6}}",
                "lsrs r1, r1, r0",
                "adc r1, r1, #0",
                "lsrs r2, r2, r0",
                "adc r2, r2, #0",
                "pkhbt r1, r1, r2, lsl #16",
                "lsrs r3, r3, r0",
                "adc r3, r3, #0",
                "lsrs r6, r6, r0",
                "adc r6, r6, #0",
                "pkhbt r3, r3, r6, lsl #16",
                "add r11, r11, r1",
                "add r11, r11, r3",
                "strd r1, r3, [r4], #8",
                "cmp r4, r5",
                "bne 7b",
                // (the sum of the packed words: its halves, each below 2^15 as their total
                // (Σ w / 2^shift < 2^14 plus at most count / 2 for the rounding): no carry)
                "uxth r1, r11",
                "add r11, r1, r11, lsr #16",
                "6:",
                "add sp, sp, #20",
                "pop {{r6, r7}}",
                inout("r0") logits.as_mut_ptr() => _,
                inout("r1") t.as_mut_ptr() => _,
                inout("r2") weights.as_mut_ptr() => _,
                inout("r3") self.words.as_ptr() => _,
                inout("r4") packed.as_mut_ptr() => _,
                out("r5") _,
                out("r8") _,
                out("r9") low,
                out("r10") high,
                out("r11") sum,
                out("r12") done,
                out("lr") _,
            );
        }
        let total = u64::from(high) << 32 | u64::from(low);
        Some((total, (done != 0).then_some(sum)))
    }
}

/// The loops against the portable code: `None`, or the first argument that differs. Every
/// `t` step 3 up to `2^21` (every non-zero `Q15` weight) and the ends of the `u32` range, then
/// every length up to 40 with random and edge inputs.
pub(crate) fn check() -> Option<usize> {
    let mut pairs = [0i32; 21];
    let swept = sweep_weight_blocks(|reference, logits| {
        check_block(reference, logits, &mut pairs).is_some()
    });
    if swept.is_some() {
        return swept;
    }
    let mut seed = 0x7f4a_7c15u32;
    let mut next = move || crate::simd::int8::xorshift32(&mut seed);
    // the block weights: references and logits across the i32 range (absent logits included)
    for len in 0..=40usize {
        let mut logits = [0i32; 40];
        let reference = (next() as i32) >> (next() % 32);
        for l in logits.iter_mut() {
            *l = match next() % 8 {
                0 => i32::MIN,
                1 => reference,
                2 => reference.wrapping_sub((next() >> (next() % 32)) as i32),
                _ => (next() as i32) >> (next() % 32),
            };
        }
        if check_block(reference, &logits[..len], &mut pairs).is_some() {
            return Some(len);
        }
    }
    // T: dots across the logit range and past it, references around them and at the ends
    let scales_t = [Scale32::new(0.03, 1 << 24)?, Scale32::new(3.0, 1 << 20)?];
    for (round, scale) in scales_t.into_iter().enumerate() {
        for len in 0..=40usize {
            let mut dots = [0i32; 41];
            let mut references = [0i32; 40];
            for (d, r) in dots.iter_mut().zip(references.iter_mut()) {
                *d = (next() as i32) >> (next() % 24);
                *r = match next() % 8 {
                    0 => i32::MAX,
                    1 => i32::MIN,
                    _ => (next() as i32) >> (next() % 28),
                };
            }
            dots[40] = -1;
            let expected: [i32; 40] = core::array::from_fn(|c| {
                let logit = to_logit(scale.apply(dots[c]));
                exp2_neg_branchless(references[c].wrapping_sub(logit).max(0) as u32, 27) as i32
            });
            let sum = t_row(&mut dots[..len], &references, scale);
            let expected_sum = expected[..len]
                .iter()
                .fold(0u32, |s, &t| s.wrapping_add(t as u32));
            if dots[..len] != expected[..len] || sum != expected_sum || dots[40] != -1 {
                return Some(100 * round + len);
            }
        }
    }
    // T at every t below 2^17 (every entry of both tables of 2^-t)
    if let Some(first) = sweep_t_rows(scales_t[0], &mut next, t_row) {
        return Some(first);
    }
    // the query weights (α across the u32 range), every length to 40
    for len in 0..=40usize {
        let mut logits = [0i32; 40];
        let mut alphas = [0i32; 41];
        for (l, a) in logits.iter_mut().zip(alphas.iter_mut()) {
            *l = match next() % 8 {
                0 => i32::MIN,
                1 => i32::MAX,
                _ => (next() as i32) >> (next() % 32),
            };
            *a = match next() % 8 {
                0 => 1,
                1 => i32::MAX,
                2 => -1,
                _ => (next() >> (next() % 32)) as i32,
            };
        }
        alphas[40] = 7;
        let max = match len % 3 {
            0 => logits[..len].iter().copied().max().unwrap_or(0),
            1 => i32::MAX,
            _ => (next() as i32) >> (next() % 32),
        };
        for optimal in [false, true] {
            let mut weights = alphas;
            let total = query_weights(max, &logits[..len], &mut weights[..len], optimal);
            let mut expected_total = 0u64;
            for c in 0..len {
                let e = exp2_neg_branchless(max.wrapping_sub(logits[c]) as u32, 15);
                let w = if optimal {
                    ((u64::from(e) * u64::from(alphas[c] as u32) + (1 << 14)) >> 15) as u32
                } else {
                    e
                };
                expected_total += u64::from(w);
                if weights[c] as u32 != w {
                    return Some(len);
                }
            }
            if total != expected_total || weights[40] != 7 {
                return Some(len);
            }
        }
    }
    // query logits: dots across the range and past it, biases across the i32 range (an eighth
    // near each end, where the sum saturates), every length to 40 (whole groups of four)
    for len in 0..=40usize {
        let mut dots = [0i32; 40];
        let mut biases = [0i32; 40];
        for (d, b) in dots.iter_mut().zip(biases.iter_mut()) {
            *d = (next() as i32) >> (next() % 24);
            *b = match next() % 8 {
                0 => i32::MAX - (next() >> 6) as i32,
                1 => i32::MIN + (next() >> 6) as i32,
                _ => (next() as i32) >> (next() % 32),
            };
        }
        let scale = scales_t[len % 2];
        let expected: [i32; 40] =
            core::array::from_fn(|c| to_logit(scale.apply(dots[c]).saturating_add(biases[c])));
        let before = dots;
        let done = query_logits(&mut dots[..len], &biases, scale);
        if done != len / 4 * 4 || dots[..done] != expected[..done] || dots[done..] != before[done..]
        {
            return Some(len);
        }
        // the same with the largest logit
        let mut again = before;
        let (done, max) = query_logits_max(&mut again[..len], &biases, scale);
        let expected_max = expected[..done].iter().copied().max().unwrap_or(i32::MIN);
        if (done, max) != (len / 4 * 4, expected_max) || again != dots {
            return Some(len);
        }
    }
    // α: T up to 2^27 and across the i32 range, balances across the i32 range (saturating),
    // both ends of alpha_coeff, every length to 40 (whole pairs)
    for len in 0..=40usize {
        let mut t = [0i32; 40];
        let mut balances = [0i32; 40];
        for (t, b) in t.iter_mut().zip(balances.iter_mut()) {
            *t = match next() % 8 {
                0 => i32::MIN,
                1 => i32::MAX,
                _ => (next() >> (5 + next() % 27)) as i32,
            };
            *b = match next() % 8 {
                0 => i32::MAX - (next() >> 8) as i32,
                1 => i32::MIN + (next() >> 8) as i32,
                _ => (next() as i32) >> (next() % 32),
            };
        }
        let t_mean = (next() >> 5) as i32;
        let coeff = match len % 4 {
            0 => 1 << 19,
            1 => -(1 << 19),
            _ => (next() as i32) >> 12,
        };
        let mut ours = [-5i32; 40];
        let done = alphas(&mut ours[..len], (&balances, &t), t_mean, coeff);
        if done != len / 2 * 2 {
            return Some(len);
        }
        for (c, &a) in ours.iter().enumerate() {
            let spread = ((i64::from(coeff) * i64::from(t[c].wrapping_sub(t_mean)) + (1 << 15))
                >> 16) as i32;
            let expected = if c < done {
                balances[c].saturating_add(spread).max(1)
            } else {
                -5
            };
            if a != expected {
                return Some(len);
            }
        }
    }
    // the fused query steps against the loops one by one: every count they take, dots across
    // the range, references, biases and balances across the i32 range, both ends of alpha_coeff
    #[cfg(not(lara_attn_compact))]
    for count in (4..32usize).step_by(4) {
        for round in 0..6u32 {
            let mut dots = [0i32; 29];
            let mut t_dots = [0i32; 29];
            let mut biases = [0i32; 28];
            let mut references = [0i32; 28];
            let mut balances = [0i32; 28];
            for c in 0..28 {
                // (some logits the bias alone, whole multiples of 2^16: 2^-t's exact powers)
                let whole = next() % 4 == 0;
                dots[c] = if whole {
                    0
                } else {
                    (next() as i32) >> (next() % 24)
                };
                t_dots[c] = (next() as i32) >> (next() % 24);
                // (biases up to 2^30 in magnitude, QuerySteps' bound: its ends)
                biases[c] = match next() % 8 {
                    _ if whole => ((next() % 8192) as i32 - 4096) << 16,
                    0 => (1 << 30) - 1 - (next() >> 8) as i32,
                    1 => -(1 << 30) + 1 + (next() >> 8) as i32,
                    _ => (next() as i32) >> (2 + next() % 30),
                };
                references[c] = match next() % 8 {
                    0 => i32::MAX,
                    1 => i32::MIN,
                    _ => (next() as i32) >> (next() % 28),
                };
                // (within 2^30 of 0, as QuerySteps takes them: to its ends)
                balances[c] = match next() % 8 {
                    0 => (1 << 30) - 1 - (next() >> 8) as i32,
                    1 => -(1 << 30) + 1 + (next() >> 8) as i32,
                    _ => (next() >> (2 + next() % 30)) as i32,
                };
            }
            (dots[28], t_dots[28]) = (-9, -9);
            // (2^19 itself is left to the general path)
            let coeff = match round % 3 {
                0 => (1 << 19) - 1,
                1 => -(1 << 19),
                _ => (next() as i32) >> 12,
            };
            let scales = (
                scales_t[(round % 2) as usize],
                scales_t[1 - (round % 2) as usize],
            );
            let small = small_biases(&biases[..count]);
            let rows = (
                &biases[..count],
                &references[..count],
                &balances[..count],
                small,
            );
            let mut words = [0i32; QUERY_STEP_WORDS + 28];
            if QuerySteps::new(&mut words, count, rows, scales, 1 << 19).is_some() {
                return Some(count);
            }
            // (a balance of 2^30 or beyond: the general path)
            let mut beyond = balances;
            beyond[round as usize % count] =
                [1 << 30, -(1 << 30), i32::MAX, i32::MIN][round as usize % 4];
            let rows_beyond = (
                &biases[..count],
                &references[..count],
                &beyond[..count],
                small,
            );
            if QuerySteps::new(&mut words, count, rows_beyond, scales, coeff).is_some() {
                return Some(count);
            }
            // (a bias of 2^30 or beyond: the general path)
            let mut outside = biases;
            outside[count - 1] = [1 << 30, -(1 << 30), i32::MAX, i32::MIN][round as usize % 4];
            let small = small_biases(&outside[..count]);
            let rows_outside = (
                &outside[..count],
                &references[..count],
                &balances[..count],
                small,
            );
            if QuerySteps::new(&mut words, count, rows_outside, scales, coeff).is_some() {
                return Some(count);
            }
            let Some(steps) = QuerySteps::new(&mut words, count, rows, scales, coeff) else {
                return Some(count);
            };
            let (mut logits, mut t, mut weights) = (dots, t_dots, [-5i32; 29]);
            let mut packed = [-3i32; 15];
            let run = steps.run(
                &mut logits[..count],
                &mut t[..count],
                &mut weights[..count],
                &mut packed[..count / 2],
            );
            // the loops one by one
            let (mut e_logits, mut e_t, mut e_weights) = (dots, t_dots, [-5i32; 29]);
            let (done, max) = query_logits_max(&mut e_logits[..count], &biases, scales.0);
            let t_sum = t_row(&mut e_t[..count], &references, scales.1);
            let mean = ((t_sum + count as u32 / 2) / count as u32) as i32;
            let paired = alphas(&mut e_weights[..count], (&balances, &e_t), mean, coeff);
            let e_total = query_weights(max, &e_logits[..count], &mut e_weights[..count], true);
            let same = logits == e_logits && t == e_t && weights == e_weights;
            if !same || run.map(|r| r.0) != Some(e_total) || done != count || paired != count {
                return Some(count);
            }
            // the packing: by the block for 1 ≤ shift ≤ 32, as pack_rounded
            let shift = 64 - e_total.max(1).leading_zeros() as i32 - 14;
            let mut e_packed = [-3i32; 15];
            let (pairs, _) = e_weights[..count].as_chunks::<2>();
            let e_sum = pack_rounded(&mut e_packed[..count / 2], pairs, shift as u32);
            let packed_sum = run.and_then(|r| r.1);
            if packed_sum != e_sum.filter(|_| shift > 0) || (e_sum.is_some() && packed != e_packed)
            {
                return Some(count);
            }
        }
    }
    // the normaliser's rows (admit_sum_rows) against Running::admit_sum: every t step 3 up to
    // 2^21 (every entry of both tables; a row's other logits at the reference), then row by row
    // with references
    // across the logit range, at its ends and empty; logits at and below them, above them,
    // absent, at the ends of the range; sums up to SUM_LIMIT
    #[cfg(not(lara_attn_compact))]
    if let Some(t) = sweep_weight_blocks(|reference, logits| {
        let mut row = [reference; KEY_BLOCK];
        if let Some(part) = row.get_mut(..logits.len()) {
            part.copy_from_slice(logits);
        }
        // (the logits the kernels make: in the logit range; the row stays if none is above)
        let range = -(1 << 28)..1 << 28;
        if row.iter().any(|l| !range.contains(l)) {
            return false;
        }
        let stays = usize::from(row.iter().all(|&l| l <= reference));
        let weights = row.map(|l| weight_q15(reference.wrapping_sub(l) as u32) as i32);
        let (rows, references) = (core::slice::from_ref(&row), [reference]);
        let (mut sums, mut halves_sums, mut pairs) = ([0], [0], [[-1i32; KEY_BLOCK / 2]]);
        let done = admit_sums(rows, &references, &mut sums, 0);
        let halves = admit_halves(rows, &mut pairs, &references, &mut halves_sums, 0);
        let (expected_sum, (expected_pairs, _)) = (
            weights.iter().sum::<i32>() * stays as i32,
            weights.as_chunks::<2>(),
        );
        let paired = pairs[0]
            .iter()
            .zip(expected_pairs)
            .all(|(&p, w)| p == crate::simd::int8::pair(w[0], w[1]));
        (done, halves, sums[0], halves_sums[0]) != (stays, stays, expected_sum, expected_sum)
            || (stays == 1 && !paired)
    }) {
        return Some(t);
    }
    #[cfg(not(lara_attn_compact))]
    for round in 0..400usize {
        let mut rows = [[0i32; KEY_BLOCK]; 7];
        let (mut references, mut sums) = ([0i32; 7], [0i32; 7]);
        for ((row, reference), sum) in rows.iter_mut().zip(&mut references).zip(&mut sums) {
            *reference = match next() % 16 {
                0 => EMPTY_REFERENCE,
                1 => -(1 << 28),
                2 => (1 << 28) - 1,
                _ => ((next() as i32) >> 3) >> (next() % 24),
            };
            *sum = match next() % 8 {
                0 => SUM_LIMIT as i32,
                1 => (SUM_LIMIT - next() % (1 << 18)) as i32,
                _ => ((next() % SUM_LIMIT) >> (next() % 16)) as i32,
            };
            let (base, above) = ((*reference).max(-(1 << 28)), next() % 4 == 0);
            for logit in row.iter_mut() {
                *logit = match next() % 16 {
                    0 => ABSENT,
                    1 if above => base.saturating_add(1 + (next() % 4096) as i32),
                    2 => -(1 << 28),
                    3 => base,
                    _ => base.saturating_sub((next() >> (next() % 32)) as i32),
                }
                .clamp(-(1 << 28), (1 << 28) - 1);
                if next() % 32 == 0 {
                    *logit = ABSENT;
                }
            }
        }
        let (mut expected_references, mut expected_sums) = (references, sums);
        let portable = |row: &[i32; KEY_BLOCK], state: (&mut i32, &mut i32)| {
            super::fixed_point::Running::admit_kept(row, state, &mut [0; KEY_BLOCK]);
        };
        let count = round % 8;
        for ((row, reference), sum) in rows
            .iter()
            .zip(&mut expected_references)
            .zip(&mut expected_sums)
            .take(count)
        {
            portable(row, (reference, sum));
        }
        // (admit_halves from the same states, the weights too)
        let mut halves = (references, sums, [[-1i32; KEY_BLOCK / 2]; 7]);
        admit_sum_rows(&rows, (&mut references, &mut sums), count, portable);
        if references != expected_references || sums != expected_sums {
            return Some(round);
        }
        // (the portable step: Running::admit's weights, in pairs of halves)
        let admit_pairs = |row: &[i32; KEY_BLOCK],
                           (reference, sum): (&mut i32, &mut i32),
                           pairs: &mut [i32; KEY_BLOCK / 2]| {
            let mut state = super::fixed_point::Running {
                reference: *reference,
                sum: *sum as u32,
            };
            let mut block = [0u32; KEY_BLOCK];
            state.admit_by(row, |reference| {
                for (w, &logit) in block.iter_mut().zip(row) {
                    *w = reference.map_or(0, |r| weight_q15(r.wrapping_sub(logit) as u32));
                }
                block.iter().sum()
            });
            (*reference, *sum) = (state.reference, state.sum as i32);
            for (pair, w) in pairs.iter_mut().zip(block.as_chunks::<2>().0) {
                *pair = crate::simd::int8::pair(w[0] as i32, w[1] as i32);
            }
        };
        let (mut e_references, mut e_sums) = (halves.0, halves.1);
        let mut e_pairs = [[-1i32; KEY_BLOCK / 2]; 7];
        let expected = e_references.iter_mut().zip(&mut e_sums).zip(&mut e_pairs);
        for (row, ((reference, sum), pairs)) in rows.iter().zip(expected).take(count) {
            admit_pairs(row, (reference, sum), pairs);
        }
        // (the first count rows: admit_halves takes every row it is given)
        let (cut_rows, mut cut) = (
            &rows[..count],
            (
                &mut halves.0[..count],
                &mut halves.1[..count],
                &mut halves.2[..count],
            ),
        );
        fast_rows(
            &mut cut,
            count,
            |(references, sums, pairs), c| admit_halves(cut_rows, pairs, references, sums, c),
            |(references, sums, pairs), c| {
                let (Some(row), Some(reference), Some(sum), Some(pairs)) = (
                    rows.get(c),
                    references.get_mut(c),
                    sums.get_mut(c),
                    pairs.get_mut(c),
                ) else {
                    return false;
                };
                admit_pairs(row, (reference, sum), pairs);
                true
            },
        );
        if halves != (e_references, e_sums, e_pairs) {
            return Some(round);
        }
    }
    // the logit columns stored by the dot products' asm block (dot_block_columns) against the
    // portable dot products and to_logit(scale · dot): d of 16 and 32, two to four blocks,
    // edge bytes and i16 halves, both scales; the words past the rows left alone
    #[cfg(not(lara_attn_compact))]
    for dim in [16usize, 32] {
        for count in 2..=4usize {
            let mut blocks = [0i32; 4 * 64];
            for (i, word) in blocks.iter_mut().enumerate() {
                // (rows 0 and 3 of every block -2^14 throughout)
                let edge = i % 4 == 0 || i % 4 == 3;
                let mut half = || match next() % 4 {
                    _ if edge => -(1 << 14),
                    0 => -(1 << 14),
                    1 => 1 << 14,
                    _ => (next() % 32769) as i32 - 16384,
                };
                *word = crate::simd::int8::pair(half(), half());
            }
            let mut rows = [0i8; KEY_BLOCK * 32];
            for (i, b) in rows.iter_mut().enumerate() {
                // (rows 0 and 1 at the ends, against blocks of ±2^14 halves in the first rows)
                *b = match (i / dim, next() % 4) {
                    (0, _) => -128,
                    (1, _) => 127,
                    (_, 0) => -128,
                    (_, 1) => 127,
                    _ => next() as i8,
                };
            }
            let rows = &rows[..KEY_BLOCK * dim];
            let blocks = &blocks[..count * 2 * dim];
            // (the last scale saturates the largest dots: |dot| up to 2^26, times 8)
            let scale = [scales_t[0], scales_t[1], Scale32::new(8.0, 1 << 25)?][count % 3];
            let rows_out = 4 * count;
            let mut logits = [-7i32; 16 * KEY_BLOCK + 3];
            let mut wide = [0i32; 16];
            let loops = crate::simd::int8::Loops::active();
            // (with a norm term for three blocks: the key pass's |k|² offsets)
            let norm = (count == 3).then_some(scales_t[1]);
            let done = crate::simd::int8::dot_block_columns(
                loops,
                blocks,
                (rows, dim),
                &mut wide,
                (&mut logits, rows_out),
                (scale.parts(), norm.map(|norm| norm.parts())),
            );
            let mut dots = [0i32; 16];
            for (jj, row) in rows.chunks_exact(dim).enumerate() {
                crate::simd::int8::portable_dot_blocks(blocks, row, &mut dots[..rows_out]);
                let square = crate::simd::int8::portable_squared_norm(row);
                let offset = norm.map_or(0, |norm| norm.apply(square));
                for (r, &dot) in dots[..rows_out].iter().enumerate() {
                    let expected = to_logit(scale.apply(dot).wrapping_sub(offset));
                    if logits[r * KEY_BLOCK + jj] != expected {
                        return Some(dim + count);
                    }
                }
            }
            if !done || logits[rows_out * KEY_BLOCK..].iter().any(|&l| l != -7) {
                return Some(dim + count);
            }
        }
    }
    // the row multipliers straight from sums below 2^16 (row_high_word) against the general
    // path, every sum, two factors
    for factor in [0.0071f32, 3.7] {
        let factor = Multiplier::from_f32(factor)?;
        for den in 1u32..1 << 16 {
            let general = Reciprocal::new(den).times(factor, -8).high_word_rounded();
            if row_high_word(den, factor, -8) != general {
                return Some(den as usize);
            }
        }
    }
    // the i8 requantisation: sums across the i32 range, 24-bit mantissas, every high shift
    // from 1 to 30 (saturation both ways), every length to 40
    for len in 0..=40usize {
        let sums: [i32; 40] = core::array::from_fn(|_| (next() as i32) >> (next() % 32));
        let shift = 1 + len as u32 % 30;
        let (mantissa, round) = (((next() >> 8) | 1 << 23) as i32, 1i32 << (shift - 1));
        let mut ours = [5i8; 41];
        let done = requantize_i8(&mut ours[..len], &sums, (mantissa, round, shift));
        for (i, &o) in ours.iter().enumerate() {
            let expected = match sums.get(i) {
                Some(&s) if i < done => {
                    let high = ((i64::from(s) * i64::from(mantissa)) >> 32) as i32;
                    ((high + round) >> shift).clamp(-128, 127) as i8
                }
                _ => 5,
            };
            if o != expected || done != len / 4 * 4 {
                return Some(len);
            }
        }
    }
    // the reciprocals of sums below 2^16 (Reciprocal::new_small) against the general path
    for sum in 1u32..1 << 16 {
        let zeros = sum.leading_zeros();
        let normalized = sum << zeros;
        let general = divide_normalized(1 << 30, normalized / 2, normalized);
        if reciprocal_small(sum, 32 - zeros) != general {
            return Some(sum as usize);
        }
    }
    // the rescaling of a row of admit_rows
    let rescaled = super::fixed_point::check_rescale_rows(&mut next, rescale_row);
    if rescaled.is_some() {
        return rescaled;
    }
    // the segment sums: rows of -128 (a lane's floor after 256 of them), 127 and random
    // bytes, counts across the flushes, every width a multiple of 4 to 40
    let mut rows = [0i8; 2400];
    for width in (4..=40usize).step_by(4) {
        for (i, v) in rows.iter_mut().enumerate() {
            *v = match (i / width + next() as usize % 4) % 5 {
                0 | 1 => -128,
                2 => 127,
                _ => next() as i8,
            };
        }
        for count in [0, 1, 255, 256, 257, rows.len() / width] {
            let Some(data) = rows.get(..count * width) else {
                continue;
            };
            let mut sums = [7i32; 40];
            let mut expected = sums;
            for row in data.chunks_exact(width) {
                for (e, &v) in expected.iter_mut().zip(row) {
                    *e += i32::from(v);
                }
            }
            if !sum_rows(&mut sums[..width], data) || sums != expected {
                return Some(width);
            }
        }
    }
    // the densities' sums
    if let Some(chunks) = crate::simd::int8::check_density_sums(&mut next, density_sums) {
        return Some(chunks);
    }
    // the packing of the query weights and RFA's φq: weights across the u32 range (both ends
    // and 2^31 − 1), every shift from 1 to 32 (and None past them), every count of pairs to
    // 20, the words past them left alone
    for pairs_len in 0..=20usize {
        let mut pairs = [[0i32; 2]; 20];
        for w in pairs.iter_mut().flatten() {
            *w = match next() % 8 {
                0 => i32::MAX,
                1 => 0,
                2 => -1,
                3 => next() as i32,
                _ => (next() >> (1 + next() % 31)) as i32,
            };
        }
        for shift in 0..=33u32 {
            let mut words = [-3i32; 21];
            let Some(sum) = pack_rounded(&mut words[..pairs_len], &pairs[..pairs_len], shift)
            else {
                if (1..=32).contains(&shift) {
                    return Some(pairs_len);
                }
                continue;
            };
            // (RFA's shift_round of the u32; LARA's (w >> (shift − 1)) + 1 >> 1 below 2^31)
            let round = |w: i32| shift_round(i64::from(w as u32), shift as i32) as u32;
            let mut expected_sum = 0u32;
            for (i, &word) in words.iter().enumerate() {
                let expected = match pairs[..pairs_len].get(i) {
                    Some(&[low, high]) => {
                        let (low, high) = (round(low), round(high));
                        expected_sum = expected_sum.wrapping_add(low).wrapping_add(high);
                        crate::simd::int8::pair(low as i32, high as i32)
                    }
                    None => -3,
                };
                if word != expected {
                    return Some(pairs_len);
                }
            }
            if sum != expected_sum || !(1..=32).contains(&shift) {
                return Some(pairs_len);
            }
        }
    }
    // the logit columns: dots across the logit range and past it, offsets across the i32
    // range (the difference wrapping), every column, every length to 40 (whole groups of four)
    let scales = [Scale32::new(0.03, 1 << 24)?, Scale32::new(3.0, 1 << 20)?];
    for len in 0..=40usize {
        let mut dots = [0i32; 40];
        for d in dots.iter_mut() {
            *d = match next() % 8 {
                0 => i32::MAX,
                1 => i32::MIN,
                _ => (next() as i32) >> (next() % 32),
            };
        }
        let offset = match len % 4 {
            0 => 0,
            1 => i32::MIN + (next() >> 4) as i32,
            2 => i32::MAX - (next() >> 4) as i32,
            _ => (next() as i32) >> (next() % 32),
        };
        let scale = scales[len % 2];
        let column = len % KEY_BLOCK;
        let mut logits = [-7i32; 41 * KEY_BLOCK];
        let done = logit_column(
            &mut logits[..len * KEY_BLOCK],
            column,
            &dots[..len],
            scale,
            offset,
        );
        if done != len / 4 * 4 {
            return Some(len);
        }
        for (i, &logit) in logits.iter().enumerate() {
            let (row, col) = (i / KEY_BLOCK, i % KEY_BLOCK);
            let expected = match dots.get(row) {
                Some(&dot) if col == column && row < done => {
                    to_logit(scale.apply(dot).wrapping_sub(offset))
                }
                _ => -7,
            };
            if logit != expected {
                return Some(len);
            }
        }
    }
    // RFA's φq: a ≤ top across the i32 range (gaps to 2^32 − 1), ratios to 2^16, every length
    // to 40, then every gap below 2^17 (every entry of both tables)
    let floor = 214_748u32;
    let phi_check = |a: &mut [i32], top: i32, ratio: u32| {
        let expected: [i32; 40] = core::array::from_fn(|c| {
            let gap = a.get(c).map_or(0, |&a| top.wrapping_sub(a) as u32);
            (u64::from(ratio) * u64::from(exp2_neg(gap, 15)) + u64::from(floor)) as u32 as i32
        });
        let expected_sum = expected[..a.len()]
            .iter()
            .map(|&phi| u64::from(phi as u32))
            .sum::<u64>();
        let sum = rfa_phi(a, top, ratio, floor);
        a != &expected[..a.len()] || sum != Some(expected_sum)
    };
    for len in 0..=40usize {
        let top = match len % 4 {
            0 => i32::MAX,
            1 => i32::MIN,
            _ => (next() as i32) >> (next() % 32),
        };
        let mut a = [0i32; 40];
        for x in a.iter_mut() {
            *x = match next() % 8 {
                0 => i32::MIN,
                1 => top,
                _ => top.wrapping_sub((next() >> (next() % 32)) as i32).min(top),
            };
        }
        let ratio = [1 << 16, 1, next() >> 16][len % 3];
        if phi_check(&mut a[..len], top, ratio) {
            return Some(len);
        }
    }
    for first in (0..1u32 << 17).step_by(32) {
        let mut a: [i32; 32] = core::array::from_fn(|c| -((first + c as u32) as i32));
        if phi_check(&mut a, 0, 1 << 16) {
            return Some(first as usize);
        }
    }
    // finish_keys' rows (divide_row) against the high-word division clamped to 16 bits, slot
    // by slot: sums from 1 to SUM_LIMIT, every row of one to three groups of 8 or 16 rows,
    // sums across the i32 range; the halfwords of the other rows left alone
    #[cfg(not(lara_attn_compact))]
    for (round, den) in [1u32, 2, 3, 255, 256, 4097, 65535, 1 << 20, SUM_LIMIT]
        .into_iter()
        .enumerate()
    {
        use crate::simd::int8::{pair_slot, set_slot};
        let Some(parts) = Reciprocal::new(den).high_word_rounded(8) else {
            continue;
        };
        let (mantissa, add, shift) = parts;
        let rows = [8usize, 16][round % 2];
        let (group, kv_block) = (4 * rows, 2 * rows);
        let groups = 1 + round % 3;
        let mut acc = [0i32; 3 * 64];
        for a in acc.iter_mut() {
            *a = match next() % 8 {
                0 => i32::MIN,
                1 => i32::MAX,
                _ => (next() as i32) >> (next() % 32),
            };
        }
        let acc = &acc[..groups * group];
        for c in 0..rows {
            let (mut ours, mut expected) = ([0x1234_5678i32; 3 * 32], [0x1234_5678i32; 3 * 32]);
            let kv_len = groups * kv_block;
            let done = divide_row((acc, group), (&mut ours[..kv_len], kv_block), c, parts);
            for g in 0..groups {
                for t in 0..4 {
                    let a = acc[g * group + 4 * c + t];
                    let high = ((i64::from(a) * i64::from(mantissa)) >> 32) as i32;
                    let v8 = ((high + add) >> shift).clamp(-32768, 32767);
                    let block = &mut expected[g * kv_block..(g + 1) * kv_block];
                    set_slot(block, pair_slot(t, c), v8);
                }
            }
            if !done || ours != expected {
                return Some(100 * round + c);
            }
        }
    }
    // the densities' rows (density_row) against density_sums and the high-word scaling: one to
    // four blocks of one to four chunks, every sample row, i16 halves at the ends and between,
    // shifts 1 to 30, mantissas below 2^24; the slots past the blocks left alone
    #[cfg(not(lara_attn_compact))]
    for round in 0..48usize {
        let (blocks, chunks, w_row) = (1 + round % 4, 1 + (round / 4) % 4, round % 4);
        let block = 8 * chunks;
        let mut words = [0i32; 5 * 32];
        for word in words.iter_mut() {
            let mut half = || match next() % 4 {
                0 => -(1 << 14),
                1 => 1 << 14,
                _ => (next() % 32769) as i32 - 16384,
            };
            *word = crate::simd::int8::pair(half(), half());
        }
        let (w, mu) = words.split_at(32);
        let (w, mu) = (&w[..block], &mu[..blocks * block]);
        let shift = 1 + (round as u32 * 7) % 30;
        let (m, add) = ((next() >> 8) as i32 | 1, 1i32 << (shift - 1));
        let mut lm = [0x3c3ci32; 17];
        if !density_row(
            (w, w_row),
            (mu, block),
            &mut lm[..4 * blocks],
            (m, add, shift),
        ) {
            return Some(round);
        }
        for (i, &l) in lm.iter().enumerate() {
            let expected = if i < 4 * blocks {
                let mu_block = &mu[i / 4 * block..(i / 4 + 1) * block];
                let (dot, squares) = density_sums(w, w_row, mu_block, i % 4);
                let wide = (2 * dot - squares) * i64::from(m) + (i64::from(add) << 32);
                ((wide >> 32) as i32 >> shift).clamp(-(1 << 28), (1 << 28) - 1)
            } else {
                0x3c3c
            };
            if l != expected {
                return Some(round);
            }
        }
    }
    // the rescaling factor against exp2_neg(t, 15): every t step 3 up to 2^22 (every non-zero
    // factor and past it) and the ends of the u32 range
    #[cfg(not(lara_attn_compact))]
    for t in (0..1u32 << 22).step_by(3).chain([
        u32::MAX,
        u32::MAX - 1,
        1 << 31,
        (1 << 31) - 1,
        16 << 16,
        17 << 16,
    ]) {
        if exp2_neg_q15(t) != exp2_neg(t, 15) {
            return Some(t as usize);
        }
    }
    // the segment-mean landmark rows (landmark_means) against div_round and mul_high_round:
    // segments of 1 to 2^16 − 1 rows, sums up to ±128 · len (the ends included), factors
    // from 2^-9 to 1, every length to 40
    #[cfg(not(lara_attn_compact))]
    for len in 0..=40usize {
        use super::fixed_point::{div_round, mul_high_round};
        let seg = |i: u32| [1u32, 2, 3, 7, 16, 255, 4097, 65535][(i % 8) as usize];
        let (q_len, k_len) = (seg(len as u32), seg(next()));
        let factor = |x: f32| Multiplier::from_f32(x).and_then(Multiplier::high_word_small);
        let picks = [1.0f32, 0.5, 0.0019532, 0.71];
        let (Some(q_f), Some(k_f)) = (factor(picks[len % 4]), factor(picks[(len / 4) % 4])) else {
            return Some(len);
        };
        let mut sum = |len: u32| -> i32 {
            let top = 128 * len as i32;
            let r = next();
            match r % 6 {
                0 => top,
                1 => -top,
                2 => 0,
                _ => ((r >> 3) % (2 * top as u32 + 1)) as i32 - top,
            }
        };
        let mut q_sum: [i32; 40] = core::array::from_fn(|_| sum(q_len));
        let k_sum: [i32; 40] = core::array::from_fn(|_| sum(k_len));
        let q_bars: [i32; 40] =
            core::array::from_fn(|e| div_round(i64::from(q_sum[e]) * 128, q_len));
        let mut mu = [0x5a5ai32; 41];
        let done = landmark_means(
            (&mut q_sum[..len], &k_sum, &mut mu[..len]),
            (q_len, k_len),
            (q_f, k_f),
        );
        for e in 0..40 {
            let k_bar = div_round(i64::from(k_sum[e]) * 128, k_len);
            let expected = (mul_high_round(q_bars[e] << q_f.1, q_f.0)
                + mul_high_round(k_bar << k_f.1, k_f.0))
            .clamp(-(1 << 14), 1 << 14);
            let (want_q, want_mu) = if e < len {
                (q_bars[e], expected)
            } else {
                (q_sum[e], 0x5a5a)
            };
            if !done || q_sum[e] != want_q || mu[e] != want_mu {
                return Some(len);
            }
        }
        if mu[40] != 0x5a5a {
            return Some(len);
        }
    }
    None
}

/// [`weight_halves_q15`] and [`weight_sum_q15`] of `logits` (at most 40) against
/// [`weight_q15`]: `None`, or the index of the first difference (the halves past the logits
/// must keep the `-1` they are given).
fn check_block(reference: i32, logits: &[i32], pairs: &mut [i32; 21]) -> Option<usize> {
    pairs.fill(-1);
    let sum = weight_halves_q15(reference, logits, &mut pairs[..logits.len().div_ceil(2)]);
    let only_sum = weight_sum_q15(reference, logits);
    let mut expected_sum = 0u32;
    for (j, (&logit, word)) in logits
        .iter()
        .zip(pairs.iter().flat_map(|w| [w & 0xFFFF, (w >> 16) & 0xFFFF]))
        .enumerate()
    {
        let expected = weight_q15(reference.wrapping_sub(logit) as u32);
        expected_sum = expected_sum.wrapping_add(expected);
        if word as u32 != expected {
            return Some(j);
        }
    }
    let halves = pairs.iter().flat_map(|w| [w & 0xFFFF, (w >> 16) & 0xFFFF]);
    if halves.skip(logits.len()).any(|h| h != 0xFFFF) {
        return Some(logits.len());
    }
    (sum != expected_sum || only_sum != expected_sum).then_some(logits.len())
}

/// `logits[r · KEY_BLOCK + column] = to_logit(scale · dots[r] − offset)` (the difference
/// wrapping) for the rows `r` of whole groups of four, as many as `dots` and `logits` hold;
/// returns the rows written (a multiple of four: the caller does the rest). Four dots at a time
/// (`LDM` into `r0`–`r3`: its list in ascending order), `LSL` and `SMMULR` for the scale, `SSAT #29`, stores a row apart.
#[inline(always)]
pub(crate) fn logit_column(
    logits: &mut [i32],
    column: usize,
    dots: &[i32],
    scale: Scale32,
    offset: i32,
) -> usize {
    let rows = dots.len().min(logits.len() / KEY_BLOCK) / 4 * 4;
    if rows == 0 || column >= KEY_BLOCK {
        return 0;
    }
    let (value, pre_shift) = scale.parts();
    // SAFETY: rows ≥ 4, a multiple of 4; the loop reads dots[0 .. rows] (four per turn, until
    // the dot pointer reaches dots + rows), rows ≤ dots.len(), and writes
    // logits[r · KEY_BLOCK + column] for r < rows, with column < KEY_BLOCK and
    // rows · KEY_BLOCK ≤ logits.len(). The block writes only those words, its inout and out
    // operands and the flags (SSAT may set Q); no stack.
    unsafe {
        asm!(
            "1:",
            "ldm {d}!, {{r0, r1, r2, r3}}",
            // to_logit(round((dot << pre_shift) · value / 2^32) − offset)
            "lsl r0, r0, {pre}",
            "smmulr r0, r0, {value}",
            "sub r0, r0, {off}",
            "ssat r0, #29, r0",
            "str r0, [{p}], #32",
            "lsl r1, r1, {pre}",
            "smmulr r1, r1, {value}",
            "sub r1, r1, {off}",
            "ssat r1, #29, r1",
            "str r1, [{p}], #32",
            "lsl r2, r2, {pre}",
            "smmulr r2, r2, {value}",
            "sub r2, r2, {off}",
            "ssat r2, #29, r2",
            "str r2, [{p}], #32",
            "lsl r3, r3, {pre}",
            "smmulr r3, r3, {value}",
            "sub r3, r3, {off}",
            "ssat r3, #29, r3",
            "str r3, [{p}], #32",
            "cmp {d}, {end}",
            "bne 1b",
            d = inout(reg) dots.as_ptr() => _,
            end = in(reg) dots.as_ptr().add(rows),
            p = inout(reg) logits.as_mut_ptr().add(column) => _,
            value = in(reg) value,
            pre = in(reg) pre_shift,
            off = in(reg) offset,
            out("r0") _,
            out("r1") _,
            out("r2") _,
            out("r3") _,
            options(nostack),
        );
    }
    rows
}

/// The loop of [`query_logits`] over `len ≥ 4` (a multiple of 4) logits, `$after` template
/// lines on `r0`–`r3` after each group's store, with their operands after it. Safety: `len ≤`
/// both lengths; the loop reads and writes logits[0 .. len] and reads biases[0 .. len] (four
/// per turn, until the logit pointer reaches logits + len); it writes only those logits, its
/// out operands, r0–r3 and the flags (QADD and SSAT may set Q); no stack.
macro_rules! query_logits_loop {
    ($logits:expr, $biases:expr, $len:expr, $scale:expr, [$($after:expr),* $(,)?], $($operands:tt)*) => {
        asm!(
            "1:",
            "ldm {l}, {{r0, r1, r2, r3}}",
            // to_logit(round((ℓ << pre_shift) · value / 2^32) + bias (saturating))
            "ldr {x}, [{b}], #4",
            "lsl r0, r0, {pre}",
            "smmulr r0, r0, {value}",
            "qadd r0, r0, {x}",
            "ssat r0, #29, r0",
            "ldr {x}, [{b}], #4",
            "lsl r1, r1, {pre}",
            "smmulr r1, r1, {value}",
            "qadd r1, r1, {x}",
            "ssat r1, #29, r1",
            "ldr {x}, [{b}], #4",
            "lsl r2, r2, {pre}",
            "smmulr r2, r2, {value}",
            "qadd r2, r2, {x}",
            "ssat r2, #29, r2",
            "ldr {x}, [{b}], #4",
            "lsl r3, r3, {pre}",
            "smmulr r3, r3, {value}",
            "qadd r3, r3, {x}",
            "ssat r3, #29, r3",
            "stm {l}!, {{r0, r1, r2, r3}}",
            $($after,)*
            "cmp {l}, {end}",
            "bne 1b",
            $($operands)*
            l = inout(reg) $logits.as_mut_ptr() => _,
            end = in(reg) $logits.as_ptr().add($len),
            b = inout(reg) $biases.as_ptr() => _,
            value = in(reg) $scale.parts().0,
            pre = in(reg) $scale.parts().1,
            x = out(reg) _,
            out("r0") _,
            out("r1") _,
            out("r2") _,
            out("r3") _,
            options(nostack),
        )
    };
}

/// LARA's query logits in place, `ℓ_c = to_logit(scale · ℓ_c + bias_c)` (the sum saturating),
/// over whole groups of four of the common length; returns the logits done (a multiple of four:
/// the caller does the rest). `LDM`/`STM` of four logits in `r0`–`r3`, `LSL` and `SMMULR` for
/// the scale, `QADD`, `SSAT #29`.
#[inline(always)]
pub(crate) fn query_logits(logits: &mut [i32], biases: &[i32], scale: Scale32) -> usize {
    let len = logits.len().min(biases.len()) / 4 * 4;
    if len == 0 {
        return 0;
    }
    // SAFETY: len ≥ 4, a multiple of 4, ≤ both lengths: query_logits_loop!'s conditions (it
    // reads and writes only logits[0 .. len], reads biases[0 .. len]; no stack).
    unsafe {
        query_logits_loop!(logits, biases, len, scale, [],);
    }
    len
}

/// [`query_logits`] and the largest logit it wrote (`i32::MIN` for none), `CMP` and `MOVLT`.
#[inline(always)]
pub(crate) fn query_logits_max(logits: &mut [i32], biases: &[i32], scale: Scale32) -> (usize, i32) {
    let len = logits.len().min(biases.len()) / 4 * 4;
    let mut max = i32::MIN;
    if len == 0 {
        return (0, max);
    }
    // SAFETY: len ≥ 4, a multiple of 4, ≤ both lengths: query_logits_loop!'s conditions (it
    // reads and writes only logits[0 .. len], reads biases[0 .. len]; no stack); the max lines
    // write only the inout operand max and the flags.
    unsafe {
        query_logits_loop!(
            logits,
            biases,
            len,
            scale,
            [
                "cmp {m}, r0",
                "it lt",
                "movlt {m}, r0",
                "cmp {m}, r1",
                "it lt",
                "movlt {m}, r1",
                "cmp {m}, r2",
                "it lt",
                "movlt {m}, r2",
                "cmp {m}, r3",
                "it lt",
                "movlt {m}, r3",
            ],
            m = inout(reg) max,
        );
    }
    (len, max)
}

/// `words[i] = pair(round(low / 2^shift), round(high / 2^shift))` (half up: `(w >> shift)` plus
/// bit `shift − 1` of `w`, the carry of `LSRS`; `PKHBT` joins the halves) for the weight pairs
/// over the common length, for `1 ≤ shift ≤ 32` (any `u32` weight: RFA's `φq`); returns the
/// sum of the rounded weights (wrapping). The portable `(w >> (shift − 1)) + 1 >> 1` is the same
/// there (`None` for another shift: the caller's portable loop).
#[inline(always)]
pub(crate) fn pack_rounded(words: &mut [i32], pairs: &[[i32; 2]], shift: u32) -> Option<u32> {
    if !(1..=32).contains(&shift) {
        return None;
    }
    let len = words.len().min(pairs.len());
    let mut sum = 0u32;
    if len == 0 {
        return Some(sum);
    }
    // SAFETY: len ≥ 1; the loop reads pairs[0 .. len] (8 bytes each) and writes words[0 .. len]
    // (one pair per turn, until the word pointer reaches words + len), len ≤ both lengths. The
    // block writes only those words, its inout and out operands and the flags; no stack.
    unsafe {
        asm!(
            "1:",
            "ldrd {a}, {b}, [{w}], #8",
            // round(w / 2^shift) = (w >> shift) + bit shift − 1 of w
            "lsrs {a}, {a}, {s}",
            "adc {a}, {a}, #0",
            "lsrs {b}, {b}, {s}",
            "adc {b}, {b}, #0",
            "add {sum}, {sum}, {a}",
            "add {sum}, {sum}, {b}",
            // pair(low, high) = (low & 0xFFFF) | (high << 16)
            "pkhbt {a}, {a}, {b}, lsl #16",
            "str {a}, [{p}], #4",
            "cmp {p}, {end}",
            "bne 1b",
            w = inout(reg) pairs.as_ptr() => _,
            p = inout(reg) words.as_mut_ptr() => _,
            end = in(reg) words.as_ptr().add(len),
            s = in(reg) shift,
            sum = inout(reg) sum,
            a = out(reg) _,
            b = out(reg) _,
            options(nostack),
        );
    }
    Some(sum)
}

/// mis-opt's `α_c = max(bh_c + round(alpha_coeff · (T_c − mean) / 2^16), 1)` (the difference
/// wrapping, the sum saturating) over whole pairs of the common length of `alphas`, `balances`
/// (`bh`) and `t`; returns the `α` done (even: the caller does an odd last one). The `i64`
/// product's `(p + 2^15) >> 16` as `i32` is `p >> 16` (`SMULL`, the low word's top half `ORR`
/// the high word's low half) plus bit 15 of `p` (the carry of `LSRS #16`).
#[inline(always)]
pub(crate) fn alphas(
    alphas: &mut [i32],
    (balances, t): (&[i32], &[i32]),
    t_mean: i32,
    alpha_coeff: i32,
) -> usize {
    let len = alphas.len().min(balances.len()).min(t.len()) / 2 * 2;
    if len == 0 {
        return 0;
    }
    // SAFETY: len ≥ 2, even; the loop writes alphas[0 .. len] and reads balances[0 .. len] and
    // t[0 .. len] (two per turn, until the α pointer reaches alphas + len), len ≤ the three
    // lengths. The block writes only those α, its inout and out operands and the flags (QADD
    // may set Q); no stack.
    unsafe {
        asm!(
            "1:",
            "ldrd {t0}, {t1}, [{tp}], #8",
            "ldrd {b0}, {b1}, [{bp}], #8",
            // p = alpha_coeff · (T − mean); spread = (p >> 16) + bit 15 of p
            "sub {t0}, {t0}, {mean}",
            "smull {t0}, {h}, {t0}, {coeff}",
            "lsrs {t0}, {t0}, #16",
            "orr {t0}, {t0}, {h}, lsl #16",
            "adc {t0}, {t0}, #0",
            // α = max(bh + spread (saturating), 1)
            "qadd {t0}, {b0}, {t0}",
            "cmp {t0}, #1",
            "it lt",
            "movlt {t0}, #1",
            "sub {t1}, {t1}, {mean}",
            "smull {t1}, {h}, {t1}, {coeff}",
            "lsrs {t1}, {t1}, #16",
            "orr {t1}, {t1}, {h}, lsl #16",
            "adc {t1}, {t1}, #0",
            "qadd {t1}, {b1}, {t1}",
            "cmp {t1}, #1",
            "it lt",
            "movlt {t1}, #1",
            "strd {t0}, {t1}, [{ap}], #8",
            "cmp {ap}, {end}",
            "bne 1b",
            ap = inout(reg) alphas.as_mut_ptr() => _,
            end = in(reg) alphas.as_ptr().add(len),
            bp = inout(reg) balances.as_ptr() => _,
            tp = inout(reg) t.as_ptr() => _,
            mean = in(reg) t_mean,
            coeff = in(reg) alpha_coeff,
            t0 = out(reg) _,
            t1 = out(reg) _,
            b0 = out(reg) _,
            b1 = out(reg) _,
            h = out(reg) _,
            options(nostack),
        );
    }
    len
}
