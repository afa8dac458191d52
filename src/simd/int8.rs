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
//! * Cortex-M with Helium (`cfg(lara_attn_mve)`): `VLDRB.S16`/`VLDRH` and `VMLADAVA.S16`, eight
//!   multiply-adds per instruction, in low-overhead loops (`DLS`/`LE`), through `asm!`.
//!
//! Element reads of `i8` rows may be unaligned words (`LDR`; Cortex-M3 and later allow them
//! unless `CCR.UNALIGN_TRP` is set).
#![allow(unsafe_code)]

/// Rows of a row block.
pub(crate) const ROWS: usize = 4;

/// Elements per chunk of a row block.
#[cfg(not(lara_attn_mve))]
pub(crate) const CHUNK: usize = 4;
/// Elements per chunk of a row block.
#[cfg(lara_attn_mve)]
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
    #[cfg(not(lara_attn_mve))]
    {
        // chunk e/4: words (x0, x2) of rows 0-3, then (x1, x3) of rows 0-3
        let (chunk, i) = (e / 4, e % 4);
        2 * (chunk * 8 + (i & 1) * 4 + r) + (i >> 1)
    }
    #[cfg(lara_attn_mve)]
    {
        (e / CHUNK) * (CHUNK * ROWS) + r * CHUNK + e % CHUNK
    }
}

/// The `i16` slot of element `e` of row `r` in a pair block.
#[inline(always)]
pub(crate) fn pair_slot(r: usize, e: usize) -> usize {
    #[cfg(not(lara_attn_mve))]
    {
        // pair e/2: words (x2k, x2k+1) of rows 0-3
        2 * ((e / 2) * 4 + r) + e % 2
    }
    #[cfg(lara_attn_mve)]
    {
        byte_slot(r, e)
    }
}

/// Writes the `i16` `value` at `slot` of `words` (nothing outside).
#[inline(always)]
pub(crate) fn set_slot(words: &mut [i32], slot: usize, value: i32) {
    if let Some(word) = words.get_mut(slot / 2) {
        *word = if slot % 2 == 0 {
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
    if slot % 2 == 0 {
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
    #[cfg(not(lara_attn_mve))]
    {
        k * ROWS + t
    }
    #[cfg(lara_attn_mve)]
    {
        t * WEIGHT_WORDS + k
    }
}

/// The value blocks of a block of [`KEY_BLOCK`] keys: for every group of four columns `g` (the
/// `[VALUE_BLOCK_WORDS]` words at `g · VALUE_BLOCK_WORDS` of `out`), the pair block of columns
/// `4g..4g + 4` by the keys; `row(jj)` is the value row of key `jj` of the block (`None`: an
/// absent or masked key, zeros), columns past `value_dim` are zeros.
#[inline(never)]
pub(crate) fn pack_value_blocks<'a>(
    row: impl Fn(usize) -> Option<&'a [i8]>,
    value_dim: usize,
    out: &mut [i32],
) {
    let rows: [&[i8]; KEY_BLOCK] = core::array::from_fn(|jj| row(jj).unwrap_or(&[]));
    for (g, block) in out.chunks_exact_mut(VALUE_BLOCK_WORDS).enumerate() {
        for t in 0..ROWS {
            let column = g * ROWS + t;
            if column >= value_dim {
                for k in 0..WEIGHT_WORDS {
                    if let Some(word) = block.get_mut(value_word(t, k)) {
                        *word = 0;
                    }
                }
                continue;
            }
            for k in 0..WEIGHT_WORDS {
                let value = |jj: usize| {
                    rows.get(jj)
                        .and_then(|r| r.get(column))
                        .map_or(0, |&v| i32::from(v))
                };
                if let Some(word) = block.get_mut(value_word(t, k)) {
                    *word = pair(value(2 * k), value(2 * k + 1));
                }
            }
        }
    }
}

/// A byte block from four `i8` rows of `len` elements (`None`: a zero row), all of `out` written
/// (padding zero).
#[inline(never)]
pub(crate) fn pack_byte_block<'a>(
    row: impl Fn(usize) -> Option<&'a [i8]>,
    len: usize,
    out: &mut [i32],
) {
    out.fill(0);
    for r in 0..ROWS {
        if let Some(values) = row(r) {
            for (e, &v) in values.iter().take(len).enumerate() {
                set_slot(out, byte_slot(r, e), i32::from(v));
            }
        }
    }
}

/// `Σ_e row_r[e] · x[e]` for the four rows of a byte block of at least
/// [`block_words`]`(x.len())` words (zeros if it is shorter).
#[inline]
pub(crate) fn dot4_bytes(block: &[i32], x: &[i8]) -> [i32; 4] {
    let full = x.len() / CHUNK * CHUNK;
    if block.len() < block_words(x.len()) {
        return [0; 4];
    }
    let (head, tail) = x.split_at(full);
    let (block_head, block_tail) = block.split_at(full * ROWS / 2);
    let mut acc = [0i32; 4];
    if !head.is_empty() {
        acc = chunks_bytes(acc, block_head, head);
    }
    if !tail.is_empty() {
        // the last partial chunk, zero-padded
        let mut last = [0i8; CHUNK];
        for (l, &v) in last.iter_mut().zip(tail) {
            *l = v;
        }
        acc = chunks_bytes(acc, block_tail, &last);
    }
    acc
}

/// [`dot4_bytes`] over whole chunks (`x.len()` a non-zero multiple of [`CHUNK`], `block` at
/// least `x.len() · 2` words).
#[inline(always)]
fn chunks_bytes(acc: [i32; 4], block: &[i32], x: &[i8]) -> [i32; 4] {
    #[cfg(lara_attn_mve)]
    {
        mve::chunks_bytes(acc, block, x)
    }
    #[cfg(all(lara_attn_dsp, not(lara_attn_mve)))]
    {
        dsp::chunks_bytes(acc, block, x)
    }
    #[cfg(not(any(lara_attn_dsp, lara_attn_mve)))]
    {
        portable_chunks_bytes(acc, block, x)
    }
}

/// The portable [`chunks_bytes`] (also the reference of the tests).
#[inline]
pub(crate) fn portable_chunks_bytes(mut acc: [i32; 4], block: &[i32], x: &[i8]) -> [i32; 4] {
    for (e, &xe) in x.iter().enumerate() {
        for (r, a) in acc.iter_mut().enumerate() {
            *a += get_slot(block, byte_slot(r, e)) * i32::from(xe);
        }
    }
    acc
}

/// `acc[r] + Σ_k row_r[k] · x[k]` for the four rows of a pair block and the shared row `x` in
/// `i16` pairs (`x.len()` words, a multiple of `CHUNK / 2`; `block` at least `4 · x.len()`
/// words, else `acc` is returned unchanged).
#[inline]
pub(crate) fn dot4_pairs(acc: [i32; 4], block: &[i32], x: &[i32]) -> [i32; 4] {
    if x.is_empty() || x.len() % (CHUNK / 2) != 0 || block.len() < x.len() * ROWS {
        return acc;
    }
    #[cfg(lara_attn_mve)]
    {
        mve::dot4_pairs(acc, block, x)
    }
    #[cfg(all(lara_attn_dsp, not(lara_attn_mve)))]
    {
        dsp::dot4_pairs(acc, block, x)
    }
    #[cfg(not(any(lara_attn_dsp, lara_attn_mve)))]
    {
        portable_dot4_pairs(acc, block, x)
    }
}

/// The portable [`dot4_pairs`].
#[inline]
pub(crate) fn portable_dot4_pairs(mut acc: [i32; 4], block: &[i32], x: &[i32]) -> [i32; 4] {
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
    #[cfg(lara_attn_mve)]
    {
        mve::accumulate_rows(acc, weights, values, rows)
    }
    #[cfg(all(lara_attn_dsp, not(lara_attn_mve)))]
    {
        dsp::accumulate_rows(acc, weights, values, rows)
    }
    #[cfg(not(any(lara_attn_dsp, lara_attn_mve)))]
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
    for (acc_row, weight_row) in acc
        .chunks_exact_mut(ROWS)
        .zip(weights.chunks_exact(WEIGHT_WORDS))
        .take(rows)
    {
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
#[cfg(all(lara_attn_dsp, not(lara_attn_mve)))]
mod dsp {
    use core::arch::asm;

    pub(super) fn chunks_bytes(acc: [i32; 4], block: &[i32], x: &[i8]) -> [i32; 4] {
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        let chunks = x.len() / 4;
        // SAFETY: the caller passes x.len() a non-zero multiple of 4 and at least 2·x.len()
        // words of `block` (checked in `dot4_bytes`): the loop reads `chunks` words of `x`
        // (unaligned LDR, allowed on these cores) and 8·chunks words of `block`. r7 is saved
        // and restored; the DSP extension is present (cfg lara_attn_dsp).
        unsafe {
            asm!(
                "push {{r7}}",
                "2:",
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
                "bne 2b",
                "pop {{r7}}",
                inout("r0") a0, inout("r1") a1, inout("r2") a2, inout("r3") a3,
                inout("r4") x.as_ptr() => _,
                inout("r5") block.as_ptr() => _,
                in("r8") x.as_ptr().wrapping_add(chunks * 4),
                out("r9") _, out("r10") _, out("r11") _, out("r12") _, out("lr") _,
                options(readonly),
            );
        }
        [a0, a1, a2, a3]
    }

    pub(super) fn dot4_pairs(acc: [i32; 4], block: &[i32], x: &[i32]) -> [i32; 4] {
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        // SAFETY: x is non-empty and block holds at least 4·x.len() words (checked in
        // `dot4_pairs`): the loop reads x.len() words of each. Register-only DSP arithmetic.
        unsafe {
            asm!(
                "2:",
                "ldr lr, [r4], #4",
                "ldm r5!, {{r9, r10, r11, r12}}",
                "smlad r0, r9, lr, r0",
                "smlad r1, r10, lr, r1",
                "smlad r2, r11, lr, r2",
                "smlad r3, r12, lr, r3",
                "cmp r4, r8",
                "bne 2b",
                inout("r0") a0, inout("r1") a1, inout("r2") a2, inout("r3") a3,
                inout("r4") x.as_ptr() => _,
                inout("r5") block.as_ptr() => _,
                in("r8") x.as_ptr().wrapping_add(x.len()),
                out("r9") _, out("r10") _, out("r11") _, out("r12") _, out("lr") _,
                options(readonly, nostack),
            );
        }
        [a0, a1, a2, a3]
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
#[cfg(lara_attn_mve)]
mod mve {
    use core::arch::asm;

    pub(super) fn chunks_bytes(acc: [i32; 4], block: &[i32], x: &[i8]) -> [i32; 4] {
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        // SAFETY: x.len() is a non-zero multiple of 8 and block holds at least 2·x.len()
        // words (checked in `dot4_bytes`): the loop reads x.len() bytes of x and
        // 4·x.len() i16 of block. MVE is present (cfg lara_attn_mve).
        unsafe {
            asm!(
                "dls lr, {chunks}",
                "2:",
                "vldrb.s16 q0, [r1], #8",
                "vldrh.u16 q1, [r3], #16",
                "vmladava.s16 r0, q0, q1",
                "vldrh.u16 q2, [r3], #16",
                "vmladava.s16 r2, q0, q2",
                "vldrh.u16 q3, [r3], #16",
                "vmladava.s16 r10, q0, q3",
                "vldrh.u16 q1, [r3], #16",
                "vmladava.s16 r12, q0, q1",
                "le lr, 2b",
                chunks = in(reg) x.len() / 8,
                inout("r0") a0, inout("r2") a1, inout("r10") a2, inout("r12") a3,
                inout("r1") x.as_ptr() => _,
                inout("r3") block.as_ptr() => _,
                out("lr") _,
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                options(readonly, nostack),
            );
        }
        [a0, a1, a2, a3]
    }

    pub(super) fn dot4_pairs(acc: [i32; 4], block: &[i32], x: &[i32]) -> [i32; 4] {
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        // SAFETY: x.len() is a non-zero multiple of 4 words and block holds at least 4·x.len()
        // words (checked in `dot4_pairs`): the loop reads exactly those.
        unsafe {
            asm!(
                "dls lr, {chunks}",
                "2:",
                "vldrh.u16 q0, [r1], #16",
                "vldrh.u16 q1, [r3], #16",
                "vmladava.s16 r0, q0, q1",
                "vldrh.u16 q2, [r3], #16",
                "vmladava.s16 r2, q0, q2",
                "vldrh.u16 q3, [r3], #16",
                "vmladava.s16 r10, q0, q3",
                "vldrh.u16 q1, [r3], #16",
                "vmladava.s16 r12, q0, q1",
                "le lr, 2b",
                chunks = in(reg) x.len() / 4,
                inout("r0") a0, inout("r2") a1, inout("r10") a2, inout("r12") a3,
                inout("r1") x.as_ptr() => _,
                inout("r3") block.as_ptr() => _,
                out("lr") _,
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                options(readonly, nostack),
            );
        }
        [a0, a1, a2, a3]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn block_of(rows: &[Vec<i32>; 4], len: usize, slot: fn(usize, usize) -> usize) -> Vec<i32> {
        let mut block = vec![0i32; block_words(len)];
        for (r, row) in rows.iter().enumerate() {
            for (e, &v) in row.iter().enumerate() {
                set_slot(&mut block, slot(r, e), v);
            }
        }
        block
    }

    #[test]
    fn blocked_dots_match_plain_sums() {
        for len in 1..=37 {
            let rows: [Vec<i32>; 4] = core::array::from_fn(|r| {
                (0..len)
                    .map(|i| ((i * 2977 + r * 911) % 32769) as i32 - 16384)
                    .collect()
            });
            let x: Vec<i8> = (0..len).map(|i| ((i * 37) % 256) as u8 as i8).collect();
            let plain: [i32; 4] = core::array::from_fn(|r| {
                rows[r]
                    .iter()
                    .zip(&x)
                    .map(|(&a, &b)| a * i32::from(b))
                    .sum()
            });
            let block = block_of(&rows, len, byte_slot);
            assert_eq!(dot4_bytes(&block, &x), plain, "bytes, len {len}");
            let pairs = block_of(&rows, len, pair_slot);
            let mut x_pairs = vec![0i32; pair_row_words(len)];
            for (e, &v) in x.iter().enumerate() {
                set_slot(&mut x_pairs, e, i32::from(v));
            }
            assert_eq!(
                dot4_pairs([1, 2, 3, 4], &pairs, &x_pairs),
                core::array::from_fn(|r| plain[r] + r as i32 + 1),
                "pairs, len {len}"
            );
            for (r, row) in rows.iter().enumerate() {
                for (e, &v) in row.iter().enumerate() {
                    assert_eq!(get_slot(&block, byte_slot(r, e)), v);
                }
            }
        }
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
