//! The integer inner loops of the int8 kernels ([`crate::int8`]): register-blocked dot products
//! of four `i16` rows with one shared row (of `i8` or of `i16` pairs), and the multiply-accumulate
//! of a block of eight weighted value rows into many accumulator rows. Every variant computes
//! exact integer sums (the kernels bound every operand so that no partial sum overflows
//! `i32`), so every variant gives the same bits as the portable loops here, whatever its order
//! of summation.
//!
//! # Row blocks
//! The kernels read four `i16` rows at once from a *row block*: the rows padded with zeros to a
//! whole number of [`CHUNK`]s, stored chunk by chunk with the four rows interleaved, two `i16`
//! per `i32` word (low half first), in the order the instruction set consumes them:
//! * portable and Cortex-M DSP (`CHUNK` = 4): a *byte block* (shared operand `i8`, unpacked by
//!   `SXTB16` into bytes `(0, 2)` and `(1, 3)`) holds per chunk the words `(x0, x2)` of rows 0–3,
//!   then `(x1, x3)` of rows 0–3; a *pair block* (shared operand in `i16` pairs) holds per pair
//!   `k` the words `(x2k, x2k+1)` of rows 0–3;
//! * Helium (`CHUNK` = 8): both kinds hold per chunk the eight `i16` of row 0, then rows 1–3
//!   (one `VLDRH` each).
//!
//! [`byte_slot`] and [`pair_slot`] give the place of an element; [`set_slot`] writes one.
//!
//! # Variants
//! The portable loops (every target; the reference), and where they pay:
//! * Cortex-M with the DSP extension (`cfg(lara_attn_dsp)`, see `build.rs`): `SXTB16` +
//!   `SMLAD` with `LDM` of four rows' words, four accumulators in registers, through `asm!`;
//! * Cortex-M with Helium (`cfg(lara_attn_helium)`): `VLDRB.S16`/`VLDRH` and `VMLADAVA.S16`, eight
//!   multiply-adds per instruction, in low-overhead loops (`DLS`/`LE`), through `asm!`.
//!
//! Element reads of `i8` rows may be unaligned words (`LDR`; Cortex-M3 and later allow them
//! unless `CCR.UNALIGN_TRP` is set).
#![allow(unsafe_code)]

/// Rows of a row block.
pub(crate) const ROWS: usize = 4;

/// Elements per chunk of a row block.
#[cfg(not(lara_attn_helium))]
pub(crate) const CHUNK: usize = 4;
/// Elements per chunk of a row block.
#[cfg(lara_attn_helium)]
pub(crate) const CHUNK: usize = 8;

/// Keys per block of the streaming passes: the shared operand of [`accumulate_rows`] is one
/// weight row of `KEY_BLOCK` `i16` (four words).
pub(crate) const KEY_BLOCK: usize = 8;

/// Words of one weight row of [`accumulate_rows`].
pub(crate) const WEIGHT_WORDS: usize = KEY_BLOCK / 2;

/// `len` rounded up to whole chunks.
pub(crate) const fn padded(len: usize) -> usize {
    len.div_ceil(CHUNK).saturating_mul(CHUNK)
}

/// Words of a row block (either kind) of four rows of `len` elements.
pub(crate) const fn block_words(len: usize) -> usize {
    padded(len).saturating_mul(ROWS / 2)
}

/// Words of a shared row of `len` elements in `i16` pairs (padded).
pub(crate) const fn pair_row_words(len: usize) -> usize {
    padded(len) / 2
}

/// Words of a value block: a pair block of four columns by [`KEY_BLOCK`] keys.
pub(crate) const VALUE_BLOCK_WORDS: usize = KEY_BLOCK * ROWS / 2;

/// The `i16` slot of element `e` of row `r` in a byte block.
#[inline(always)]
pub(crate) fn byte_slot(r: usize, e: usize) -> usize {
    #[cfg(not(lara_attn_helium))]
    {
        // chunk e/4: words (x0, x2) of rows 0-3, then (x1, x3) of rows 0-3
        let (chunk, i) = (e / 4, e % 4);
        2 * (chunk * 8 + (i & 1) * 4 + r) + (i >> 1)
    }
    #[cfg(lara_attn_helium)]
    {
        (e / CHUNK) * (CHUNK * ROWS) + r * CHUNK + e % CHUNK
    }
}

/// The `i16` slot of element `e` of row `r` in a pair block.
#[inline(always)]
pub(crate) fn pair_slot(r: usize, e: usize) -> usize {
    #[cfg(not(lara_attn_helium))]
    {
        // pair e/2: words (x2k, x2k+1) of rows 0-3
        2 * ((e / 2) * 4 + r) + e % 2
    }
    #[cfg(lara_attn_helium)]
    {
        byte_slot(r, e)
    }
}

/// Writes the `i16` `value` at `slot` of `words` (nothing outside).
#[inline(always)]
pub(crate) fn set_slot(words: &mut [i32], slot: usize, value: i32) {
    if let Some(word) = words.get_mut(slot / 2) {
        *word = if slot.is_multiple_of(2) {
            (*word & !0xFFFF) | (value & 0xFFFF)
        } else {
            (*word & 0xFFFF) | (value << 16)
        };
    }
}

/// The `i16` at `slot` of `words` (0 outside).
#[inline(always)]
pub(crate) fn get_slot(words: &[i32], slot: usize) -> i32 {
    let word = words.get(slot / 2).copied().unwrap_or(0);
    if slot.is_multiple_of(2) {
        i32::from(word as i16)
    } else {
        word >> 16
    }
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

/// The word of a value block that holds `(v_2k[t], v_2k+1[t])`, column `t < 4`, key pair `k`.
#[inline(always)]
fn value_word(t: usize, k: usize) -> usize {
    #[cfg(not(lara_attn_helium))]
    {
        k * ROWS + t
    }
    #[cfg(lara_attn_helium)]
    {
        t * WEIGHT_WORDS + k
    }
}

/// The value blocks of the [`KEY_BLOCK`] keys from `first` of `values` (`[n, value_dim]`): for
/// every group of four columns `g` (the [`VALUE_BLOCK_WORDS`] words at `g · VALUE_BLOCK_WORDS`
/// of `out`), the pair block of columns `4g..4g + 4` by the keys; keys that do not count or do
/// not exist, and columns past `value_dim`, are zeros.
#[inline(never)]
pub(crate) fn pack_value_blocks(
    values: &[i8],
    value_dim: usize,
    (first, counted): (usize, [bool; KEY_BLOCK]),
    out: &mut [i32],
) {
    let row = |jj: usize| -> &[i8] {
        let start = (first + jj) * value_dim;
        match values.get(start..start + value_dim) {
            Some(row) if counted.get(jj) == Some(&true) => row,
            _ => &[],
        }
    };
    for (g, block) in out.chunks_exact_mut(VALUE_BLOCK_WORDS).enumerate() {
        for k in 0..WEIGHT_WORDS {
            let (even, odd) = (row(2 * k), row(2 * k + 1));
            for t in 0..ROWS {
                let column = g * ROWS + t;
                let value = |row: &[i8]| row.get(column).map_or(0, |&v| i32::from(v));
                if let Some(word) = block.get_mut(value_word(t, k)) {
                    *word = pair(value(even), value(odd));
                }
            }
        }
    }
}

/// A byte block from the rows `first..first + valid` (at most four) of `source` (`[n, len]`),
/// zero rows after them; all of `out` written (padding zero).
#[inline(never)]
pub(crate) fn pack_byte_block(
    source: &[i8],
    (first, valid): (usize, usize),
    len: usize,
    out: &mut [i32],
) {
    out.fill(0);
    for r in 0..valid.min(ROWS) {
        let start = (first + r) * len;
        if let Some(values) = source.get(start..start + len) {
            for (e, &v) in values.iter().enumerate() {
                set_slot(out, byte_slot(r, e), i32::from(v));
            }
        }
    }
}

/// `x` padded with zeros to whole chunks: `x` itself when its length is a multiple of
/// [`CHUNK`], else a copy in `buffer` (at least [`padded`]`(x.len()) / 4` words; empty if it is
/// shorter).
#[inline]
pub(crate) fn padded_bytes<'a>(x: &'a [i8], buffer: &'a mut [i32]) -> &'a [i8] {
    if x.len().is_multiple_of(CHUNK) {
        return x;
    }
    let len = padded(x.len());
    let Some(words) = buffer.get_mut(..len / 4) else {
        return &[];
    };
    for (word, bytes) in words.iter_mut().zip(x.chunks(4)) {
        let byte = |i: usize| bytes.get(i).map_or(0, |&b| b as u8);
        *word = i32::from_le_bytes([byte(0), byte(1), byte(2), byte(3)]);
    }
    // SAFETY: `words` is `len / 4` initialised `i32`s, so `len` readable bytes at an address
    // aligned for `i8`; the view borrows `buffer` for 'a and nothing writes it meanwhile.
    unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<i8>(), len) }
}

/// `out[4b + r] = Σ_e row_r[e] · x[e]` for every byte block `b < out.len() / 4` of `blocks`
/// (back to back, [`block_words`]`(x.len())` words each): the dot products of every row with the
/// shared row `x`, whose length must be a non-zero multiple of [`CHUNK`] (see
/// [`padded_bytes`]). Zeros if the lengths do not fit.
#[inline]
pub(crate) fn dot_blocks(blocks: &[i32], x: &[i8], out: &mut [i32]) {
    let count = out.len() / ROWS;
    if x.is_empty() || !x.len().is_multiple_of(CHUNK) || blocks.len() < count * block_words(x.len())
    {
        out.fill(0);
        return;
    }
    if count == 0 {
        return;
    }
    #[cfg(lara_attn_helium)]
    {
        mve::dot_blocks(blocks, x, out, count)
    }
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
    {
        dsp::dot_blocks(blocks, x, out, count)
    }
    #[cfg(not(any(lara_attn_dsp, lara_attn_helium)))]
    {
        portable_dot_blocks(blocks, x, out)
    }
}

/// The portable [`dot_blocks`] (also the reference of the tests).
#[inline]
pub(crate) fn portable_dot_blocks(blocks: &[i32], x: &[i8], out: &mut [i32]) {
    let words = block_words(x.len()).max(1);
    // block b of `blocks` for the sums of block b; the sums as arrays, not a second
    // `chunks_exact` (an outlined `Zip::new` of two divides by both chunk sizes, a panic path
    // at opt-level `s`)
    let (sum_rows, _) = out.as_chunks_mut::<ROWS>();
    for (sums, block) in sum_rows.iter_mut().zip(blocks.chunks_exact(words)) {
        sums.fill(0);
        for (e, &xe) in x.iter().enumerate() {
            for (r, sum) in sums.iter_mut().enumerate() {
                *sum += get_slot(block, byte_slot(r, e)) * i32::from(xe);
            }
        }
    }
}

/// `out[4b + r] = Σ_k row_r[k] · x[k]` for every pair block `b < out.len() / 4` of `blocks`
/// (back to back, `4 · x.len()` words each) and the shared row `x` in `i16` pairs, whose
/// length in words must be a non-zero multiple of `CHUNK / 2`. Zeros if the lengths do not
/// fit.
#[inline]
pub(crate) fn pair_dot_blocks(blocks: &[i32], x: &[i32], out: &mut [i32]) {
    let count = out.len() / ROWS;
    if x.is_empty() || !x.len().is_multiple_of(CHUNK / 2) || blocks.len() < count * ROWS * x.len() {
        out.fill(0);
        return;
    }
    if count == 0 {
        return;
    }
    #[cfg(lara_attn_helium)]
    {
        mve::pair_dot_blocks(blocks, x, out, count)
    }
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
    {
        dsp::pair_dot_blocks(blocks, x, out, count)
    }
    #[cfg(not(any(lara_attn_dsp, lara_attn_helium)))]
    {
        portable_pair_dot_blocks(blocks, x, out)
    }
}

/// The portable [`pair_dot_blocks`].
#[inline]
pub(crate) fn portable_pair_dot_blocks(blocks: &[i32], x: &[i32], out: &mut [i32]) {
    let words = ROWS * x.len().max(1);
    // block b of `blocks` for the sums of block b (see portable_dot_blocks)
    let (sum_rows, _) = out.as_chunks_mut::<ROWS>();
    for (sums, block) in sum_rows.iter_mut().zip(blocks.chunks_exact(words)) {
        let dots = portable_dot4_pairs([0; ROWS], block, x);
        for (sum, dot) in sums.iter_mut().zip(dots) {
            *sum = dot;
        }
    }
}

/// `acc[r] + Σ_k row_r[k] · x[k]` for one pair block (the portable loop of
/// [`accumulate_rows`] and [`pair_dot_blocks`]).
#[inline]
fn portable_dot4_pairs(mut acc: [i32; 4], block: &[i32], x: &[i32]) -> [i32; 4] {
    for (k, &word) in x.iter().enumerate() {
        let (x0, x1) = halves(word);
        for (r, a) in acc.iter_mut().enumerate() {
            *a += get_slot(block, pair_slot(r, 2 * k)) * x0
                + get_slot(block, pair_slot(r, 2 * k + 1)) * x1;
        }
    }
    acc
}

/// `acc[c][t] += Σ_j weights[c][j] · values[t][j]` for every row `c`: `acc` is `[rows][4]`,
/// `weights` `[rows][`[`WEIGHT_WORDS`]`]` (the [`KEY_BLOCK`] `Q15` weights of row `c` in
/// pairs), `values` a pair block ([`VALUE_BLOCK_WORDS`]) of four columns `t` by the block's
/// keys. Rows beyond the shorter of `acc` and `weights` are left alone.
#[inline]
pub(crate) fn accumulate_rows(acc: &mut [i32], weights: &[i32], values: &[i32]) {
    let rows = (acc.len() / ROWS).min(weights.len() / WEIGHT_WORDS);
    if rows == 0 || values.len() < VALUE_BLOCK_WORDS {
        return;
    }
    #[cfg(lara_attn_helium)]
    {
        mve::accumulate_rows(acc, weights, values, rows)
    }
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
    {
        dsp::accumulate_rows(acc, weights, values, rows)
    }
    #[cfg(not(any(lara_attn_dsp, lara_attn_helium)))]
    {
        portable_accumulate_rows(acc, weights, values, rows)
    }
}

/// The portable [`accumulate_rows`].
#[inline]
pub(crate) fn portable_accumulate_rows(
    acc: &mut [i32],
    weights: &[i32],
    values: &[i32],
    rows: usize,
) {
    // row c of acc and of weights (arrays: no division by a run-time chunk size)
    let (acc_rows, _) = acc.as_chunks_mut::<ROWS>();
    let (weight_rows, _) = weights.as_chunks::<WEIGHT_WORDS>();
    for (acc_row, weight_row) in acc_rows.iter_mut().zip(weight_rows).take(rows) {
        let sums = portable_dot4_pairs([0; 4], values, weight_row);
        for (a, s) in acc_row.iter_mut().zip(sums) {
            *a += s;
        }
    }
}

/// Cortex-M DSP extension: `SXTB16` unpacks bytes 0, 2 (or, rotated, 1, 3) of a word to two
/// `i16`, `SMLAD` adds two 16-bit products to an accumulator; `LDM` loads the words of four
/// rows at once. `r6` and `r7` cannot be operands (LLVM's base and frame pointers), so a loop
/// that needs thirteen registers saves `r7` and uses it inside.
#[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
mod dsp {
    use core::arch::asm;

    pub(super) fn dot_blocks(blocks: &[i32], x: &[i8], out: &mut [i32], count: usize) {
        // SAFETY: count ≥ 1 blocks of block_words(x.len()) words and x.len() ≥ 1 whole chunks are in bounds, and
        // out holds 4·count words (checked by the caller): the loops read x once per block
        // (unaligned LDR of i8 rows is allowed on these cores) and the blocks once, and store
        // 4·count words of out. r6 and r7 are saved and restored with the block count and the
        // out pointer (16 bytes of stack). The DSP extension is present (cfg lara_attn_dsp).
        unsafe {
            asm!(
                "push {{r0, r1, r6, r7}}",
                "mov r6, r4",
                "2:",
                "movs r0, #0",
                "movs r1, #0",
                "movs r2, #0",
                "movs r3, #0",
                "mov r4, r6",
                // an odd number of steps: one first, then two per iteration
                "sub lr, r8, r4",
                "tst lr, #4",
                "beq 3f",
                "ldr lr, [r4], #4",
                "sxtb16 r7, lr, ror #8",
                "sxtb16 lr, lr",
                "ldm r5!, {{r9, r10, r11, r12}}",
                "smlad r0, r9, lr, r0",
                "smlad r1, r10, lr, r1",
                "smlad r2, r11, lr, r2",
                "smlad r3, r12, lr, r3",
                "ldm r5!, {{r9, r10, r11, r12}}",
                "smlad r0, r9, r7, r0",
                "smlad r1, r10, r7, r1",
                "smlad r2, r11, r7, r2",
                "smlad r3, r12, r7, r3",
                "cmp r4, r8",
                "beq 4f",
                "3:",
                "ldr lr, [r4], #4",
                "sxtb16 r7, lr, ror #8",
                "sxtb16 lr, lr",
                "ldm r5!, {{r9, r10, r11, r12}}",
                "smlad r0, r9, lr, r0",
                "smlad r1, r10, lr, r1",
                "smlad r2, r11, lr, r2",
                "smlad r3, r12, lr, r3",
                "ldm r5!, {{r9, r10, r11, r12}}",
                "smlad r0, r9, r7, r0",
                "smlad r1, r10, r7, r1",
                "smlad r2, r11, r7, r2",
                "smlad r3, r12, r7, r3",
                "ldr lr, [r4], #4",
                "sxtb16 r7, lr, ror #8",
                "sxtb16 lr, lr",
                "ldm r5!, {{r9, r10, r11, r12}}",
                "smlad r0, r9, lr, r0",
                "smlad r1, r10, lr, r1",
                "smlad r2, r11, lr, r2",
                "smlad r3, r12, lr, r3",
                "ldm r5!, {{r9, r10, r11, r12}}",
                "smlad r0, r9, r7, r0",
                "smlad r1, r10, r7, r1",
                "smlad r2, r11, r7, r2",
                "smlad r3, r12, r7, r3",
                "cmp r4, r8",
                "bne 3b",
                "4:",
                "ldr lr, [sp]",
                "stm lr!, {{r0, r1, r2, r3}}",
                "str lr, [sp]",
                "ldr lr, [sp, #4]",
                "subs lr, lr, #1",
                "str lr, [sp, #4]",
                "bne 2b",
                "pop {{r0, r1, r6, r7}}",
                in("r0") out.as_mut_ptr(),
                in("r1") count,
                out("r2") _, out("r3") _,
                inout("r4") x.as_ptr() => _,
                inout("r5") blocks.as_ptr() => _,
                in("r8") x.as_ptr().wrapping_add(x.len()),
                out("r9") _, out("r10") _, out("r11") _, out("r12") _, out("lr") _,
            );
        }
    }

    pub(super) fn pair_dot_blocks(blocks: &[i32], x: &[i32], out: &mut [i32], count: usize) {
        // SAFETY: count ≥ 1 blocks of 4·x.len() words and x.len() ≥ 1 whole words are in bounds, and
        // out holds 4·count words (checked by the caller): the loops read x once per block
        // (unaligned LDR of i8 rows is allowed on these cores) and the blocks once, and store
        // 4·count words of out. r6 and r7 are saved and restored with the block count and the
        // out pointer (16 bytes of stack). The DSP extension is present (cfg lara_attn_dsp).
        unsafe {
            asm!(
                "push {{r0, r1, r6, r7}}",
                "mov r6, r4",
                "2:",
                "movs r0, #0",
                "movs r1, #0",
                "movs r2, #0",
                "movs r3, #0",
                "mov r4, r6",
                // an odd number of steps: one first, then two per iteration
                "sub lr, r8, r4",
                "tst lr, #4",
                "beq 3f",
                "ldr lr, [r4], #4",
                "ldm r5!, {{r9, r10, r11, r12}}",
                "smlad r0, r9, lr, r0",
                "smlad r1, r10, lr, r1",
                "smlad r2, r11, lr, r2",
                "smlad r3, r12, lr, r3",
                "cmp r4, r8",
                "beq 4f",
                "3:",
                "ldr lr, [r4], #4",
                "ldm r5!, {{r9, r10, r11, r12}}",
                "smlad r0, r9, lr, r0",
                "smlad r1, r10, lr, r1",
                "smlad r2, r11, lr, r2",
                "smlad r3, r12, lr, r3",
                "ldr lr, [r4], #4",
                "ldm r5!, {{r9, r10, r11, r12}}",
                "smlad r0, r9, lr, r0",
                "smlad r1, r10, lr, r1",
                "smlad r2, r11, lr, r2",
                "smlad r3, r12, lr, r3",
                "cmp r4, r8",
                "bne 3b",
                "4:",
                "ldr lr, [sp]",
                "stm lr!, {{r0, r1, r2, r3}}",
                "str lr, [sp]",
                "ldr lr, [sp, #4]",
                "subs lr, lr, #1",
                "str lr, [sp, #4]",
                "bne 2b",
                "pop {{r0, r1, r6, r7}}",
                in("r0") out.as_mut_ptr(),
                in("r1") count,
                out("r2") _, out("r3") _,
                inout("r4") x.as_ptr() => _,
                inout("r5") blocks.as_ptr() => _,
                in("r8") x.as_ptr().wrapping_add(x.len()),
                out("r9") _, out("r10") _, out("r11") _, out("r12") _, out("lr") _,
            );
        }
    }

    pub(super) fn accumulate_rows(acc: &mut [i32], weights: &[i32], values: &[i32], rows: usize) {
        // SAFETY: `rows ≥ 1` rows of 4 words of `acc` and of WEIGHT_WORDS = 4 words of
        // `weights`, and VALUE_BLOCK_WORDS = 16 words of `values`, are in bounds (checked in
        // `accumulate_rows`); the loop reads and writes exactly those. r7 is saved and restored.
        unsafe {
            asm!(
                "push {{r7}}",
                "2:",
                "ldm r4, {{r0, r1, r2, r3}}",
                "ldr r7, [r5], #4",
                "ldm r8!, {{r9, r10, r11, r12}}",
                "smlad r0, r9, r7, r0",
                "smlad r1, r10, r7, r1",
                "smlad r2, r11, r7, r2",
                "smlad r3, r12, r7, r3",
                "ldr r7, [r5], #4",
                "ldm r8!, {{r9, r10, r11, r12}}",
                "smlad r0, r9, r7, r0",
                "smlad r1, r10, r7, r1",
                "smlad r2, r11, r7, r2",
                "smlad r3, r12, r7, r3",
                "ldr r7, [r5], #4",
                "ldm r8!, {{r9, r10, r11, r12}}",
                "smlad r0, r9, r7, r0",
                "smlad r1, r10, r7, r1",
                "smlad r2, r11, r7, r2",
                "smlad r3, r12, r7, r3",
                "ldr r7, [r5], #4",
                "ldm r8!, {{r9, r10, r11, r12}}",
                "smlad r0, r9, r7, r0",
                "smlad r1, r10, r7, r1",
                "smlad r2, r11, r7, r2",
                "smlad r3, r12, r7, r3",
                "stm r4!, {{r0, r1, r2, r3}}",
                "sub r8, r8, #64",
                "cmp r4, lr",
                "bne 2b",
                "pop {{r7}}",
                out("r0") _, out("r1") _, out("r2") _, out("r3") _,
                inout("r4") acc.as_mut_ptr() => _,
                inout("r5") weights.as_ptr() => _,
                inout("r8") values.as_ptr() => _,
                in("lr") acc.as_mut_ptr().wrapping_add(rows * 4),
                out("r9") _, out("r10") _, out("r11") _, out("r12") _,
            );
        }
    }
}

/// Cortex-M Helium (MVE): `VLDRB.S16` loads eight `i8` as `i16`, `VLDRH` eight `i16`,
/// `VMLADAVA.S16` adds their eight products to a general register (an even one). Loops are
/// low-overhead loops (`DLS`/`LE`, counting in `lr`). The `q` registers are the `s` registers
/// four by four (`q0` = `s0`–`s3`): the clobbers name those.
#[cfg(lara_attn_helium)]
mod mve {
    use core::arch::asm;

    /// The loop of [`dot_blocks`] and [`pair_dot_blocks`]: per block of four rows, four sums of
    /// `x` (loaded eight `i16` at a time by `$load`, `$chunks` chunks of eight) times the rows.
    macro_rules! dot_blocks_asm {
        ($load:literal, $x:expr, $chunks:expr, $blocks:expr, $out:expr, $count:expr) => {
            asm!(
                "2:",
                "movs r0, #0",
                "movs r2, #0",
                "mov r10, #0",
                "mov r12, #0",
                "mov r1, r9",
                "dls lr, r8",
                "3:",
                $load,
                "vldrh.u16 q1, [r3], #16",
                "vmladava.s16 r0, q0, q1",
                "vldrh.u16 q2, [r3], #16",
                "vmladava.s16 r2, q0, q2",
                "vldrh.u16 q3, [r3], #16",
                "vmladava.s16 r10, q0, q3",
                "vldrh.u16 q1, [r3], #16",
                "vmladava.s16 r12, q0, q1",
                "le lr, 3b",
                "stm r4!, {{r0, r2, r10, r12}}",
                "subs r5, r5, #1",
                "bne 2b",
                out("r0") _, out("r2") _, out("r10") _, out("r12") _, out("r1") _,
                in("r9") $x,
                inout("r3") $blocks => _,
                inout("r4") $out => _,
                inout("r5") $count => _,
                in("r8") $chunks,
                out("lr") _,
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                options(nostack),
            )
        };
    }

    pub(super) fn dot_blocks(blocks: &[i32], x: &[i8], out: &mut [i32], count: usize) {
        // SAFETY: count ≥ 1 blocks of block_words(x.len()) words and x.len() ≥ 1 whole chunks of 8
        // elements are in bounds, and out holds 4·count words (checked by the caller): the
        // loops read x once per block, the blocks once, and store 4·count words of out. MVE is
        // present (cfg lara_attn_helium).
        unsafe {
            dot_blocks_asm!(
                "vldrb.s16 q0, [r1], #8",
                x.as_ptr(),
                x.len() / 8,
                blocks.as_ptr(),
                out.as_mut_ptr(),
                count
            );
        }
    }

    pub(super) fn pair_dot_blocks(blocks: &[i32], x: &[i32], out: &mut [i32], count: usize) {
        // SAFETY: count ≥ 1 blocks of 4·x.len() words and x.len() ≥ 1 whole chunks of 8
        // elements are in bounds, and out holds 4·count words (checked by the caller): the
        // loops read x once per block, the blocks once, and store 4·count words of out. MVE is
        // present (cfg lara_attn_helium).
        unsafe {
            dot_blocks_asm!(
                "vldrh.u16 q0, [r1], #16",
                x.as_ptr(),
                x.len() / 4,
                blocks.as_ptr(),
                out.as_mut_ptr(),
                count
            );
        }
    }

    pub(super) fn accumulate_rows(acc: &mut [i32], weights: &[i32], values: &[i32], rows: usize) {
        // SAFETY: `rows ≥ 1` rows of 4 words of `acc` and of 4 words (8 i16) of `weights`, and
        // the 16 words (one chunk of four rows) of `values` are in bounds (checked in
        // `accumulate_rows`); the loop reads and writes exactly those.
        unsafe {
            asm!(
                "vldrh.u16 q1, [{values}]",
                "vldrh.u16 q2, [{values}, #16]",
                "vldrh.u16 q3, [{values}, #32]",
                "vldrh.u16 q4, [{values}, #48]",
                "dls lr, {rows}",
                "2:",
                "vldrh.u16 q0, [r3], #16",
                "ldm r1, {{r0, r2, r10, r12}}",
                "vmladava.s16 r0, q0, q1",
                "vmladava.s16 r2, q0, q2",
                "vmladava.s16 r10, q0, q3",
                "vmladava.s16 r12, q0, q4",
                "stm r1!, {{r0, r2, r10, r12}}",
                "le lr, 2b",
                values = in(reg) values.as_ptr(),
                rows = in(reg) rows,
                out("r0") _, out("r2") _, out("r10") _, out("r12") _,
                inout("r1") acc.as_mut_ptr() => _,
                inout("r3") weights.as_ptr() => _,
                out("lr") _,
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                options(nostack),
            );
        }
    }
}

/// Compares the inner loops of this target ([`dot_blocks`], [`pair_dot_blocks`],
/// [`accumulate_rows`]) with the portable ones on every length from 1 to 40 (every parity of the
/// unrolled loops, one to three blocks), on fixed pseudo-random data with extreme values; the
/// first length that differs, if any. For devices, where the tests cannot run (the firmware
/// example calls it).
pub(crate) fn check_inner_loops() -> Option<usize> {
    let mut seed = 0x2545_f491u32;
    let mut next = move || {
        // xorshift32
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    const MAX_LEN: usize = 40;
    let mut blocks = [0i32; 3 * 2 * MAX_LEN];
    let mut shared = [0i32; MAX_LEN];
    let mut bytes = [0i8; MAX_LEN];
    let (mut out, mut expected) = ([0i32; 12], [0i32; 12]);
    for len in 1..=MAX_LEN {
        for word in blocks.iter_mut() {
            // i16 halves in [-2^14, 2^14]
            let (low, high) = (
                (next() % 32769) as i32 - 16384,
                (next() % 32769) as i32 - 16384,
            );
            *word = pair(low, high);
        }
        for b in bytes.iter_mut() {
            *b = next() as i8;
        }
        for word in shared.iter_mut() {
            *word = pair(i32::from(next() as i8), i32::from(next() as i8));
        }
        let count = len % 3 + 1;
        let x = &bytes[..len / CHUNK * CHUNK];
        if !x.is_empty() {
            dot_blocks(&blocks, x, &mut out[..count * ROWS]);
            portable_dot_blocks(&blocks, x, &mut expected[..count * ROWS]);
            if out != expected {
                return Some(len);
            }
        }
        let words = len.min(blocks.len() / (ROWS * count)) / (CHUNK / 2) * (CHUNK / 2);
        let x = &shared[..words];
        if !x.is_empty() {
            pair_dot_blocks(&blocks, x, &mut out[..count * ROWS]);
            portable_pair_dot_blocks(&blocks, x, &mut expected[..count * ROWS]);
            if out != expected {
                return Some(len);
            }
        }
        let rows = len % 7 + 1;
        let weights = &shared[..rows * WEIGHT_WORDS];
        let values = &blocks[..VALUE_BLOCK_WORDS];
        let mut acc = [0i32; 28];
        for a in acc.iter_mut() {
            *a = next() as i32 >> 3;
        }
        let mut reference = acc;
        accumulate_rows(&mut acc[..rows * ROWS], weights, values);
        portable_accumulate_rows(&mut reference[..rows * ROWS], weights, values, rows);
        if acc != reference {
            return Some(len);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_dots_match_plain_sums() {
        for len in 1..=37 {
            let rows: [Vec<i32>; 8] = core::array::from_fn(|r| {
                (0..len)
                    .map(|i| ((i * 2977 + r * 911) % 32769) as i32 - 16384)
                    .collect()
            });
            let x: Vec<i8> = (0..len).map(|i| ((i * 37) % 256) as u8 as i8).collect();
            let plain: Vec<i32> = (0..8)
                .map(|r| {
                    rows[r]
                        .iter()
                        .zip(&x)
                        .map(|(&a, &b)| a * i32::from(b))
                        .sum()
                })
                .collect();
            let words = block_words(len);
            let mut blocks = vec![0i32; 2 * words];
            let mut pairs = vec![0i32; 2 * words];
            for (r, row) in rows.iter().enumerate() {
                for (e, &v) in row.iter().enumerate() {
                    set_slot(&mut blocks[r / 4 * words..], byte_slot(r % 4, e), v);
                    set_slot(&mut pairs[r / 4 * words..], pair_slot(r % 4, e), v);
                }
            }
            let mut buffer = vec![0i32; 16];
            let padded_x = padded_bytes(&x, &mut buffer);
            assert_eq!(padded_x.len(), padded(len));
            let mut out = vec![0i32; 8];
            dot_blocks(&blocks, padded_x, &mut out);
            assert_eq!(out, plain, "bytes, len {len}");
            let mut x_pairs = vec![0i32; pair_row_words(len)];
            for (e, &v) in x.iter().enumerate() {
                set_slot(&mut x_pairs, e, i32::from(v));
            }
            pair_dot_blocks(&pairs, &x_pairs, &mut out);
            assert_eq!(out, plain, "pairs, len {len}");
            for (r, row) in rows.iter().enumerate().take(4) {
                for (e, &v) in row.iter().enumerate() {
                    assert_eq!(get_slot(&blocks, byte_slot(r, e)), v);
                }
            }
        }
    }

    #[test]
    fn inner_loops_match_the_portable_ones() {
        assert_eq!(check_inner_loops(), None);
    }

    #[test]
    fn accumulated_rows_match_plain_sums() {
        for rows in 1..=6 {
            let weights: Vec<i32> = (0..rows * KEY_BLOCK)
                .map(|i| ((i * 7919) % 32768) as i32)
                .collect();
            let values: [Vec<i32>; 4] = core::array::from_fn(|t| {
                (0..KEY_BLOCK)
                    .map(|j| ((j * 31 + t * 17) % 256) as i32 - 128)
                    .collect()
            });
            let mut value_block = vec![0i32; VALUE_BLOCK_WORDS];
            for (t, column) in values.iter().enumerate() {
                for (j, &v) in column.iter().enumerate() {
                    set_slot(&mut value_block, pair_slot(t, j), v);
                }
            }
            let mut weight_rows = vec![0i32; rows * WEIGHT_WORDS];
            for (i, &w) in weights.iter().enumerate() {
                set_slot(&mut weight_rows, i, w);
            }
            let mut acc: Vec<i32> = (0..rows * 4).map(|i| i as i32 * 1000 - 7).collect();
            let mut expected = acc.clone();
            for c in 0..rows {
                for t in 0..4 {
                    for j in 0..KEY_BLOCK {
                        expected[c * 4 + t] += weights[c * KEY_BLOCK + j] * values[t][j];
                    }
                }
            }
            accumulate_rows(&mut acc, &weight_rows, &value_block);
            assert_eq!(acc, expected, "rows {rows}");
        }
    }
}
