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
//!   multiply-adds per instruction, in low-overhead loops (`DLS`/`LE`), through `asm!`;
//! * x86_64 with AVX2 (chosen at run time, [`Loops`]): `VPMADDWD`, sixteen `i16` products
//!   added in pairs to eight `i32` lanes, one chunk of a row block per instruction;
//! * AArch64 NEON (chosen at run time, [`Loops`]): `SMLAL`/`SMLAL2`, eight widening
//!   multiply-adds per instruction pair.
//!
//! The Cortex-M variants are chosen by `cfg` (they are the loops of [`Loops`]' target variant);
//! the host variants by the kernel call's backend ([`Loops::for_backend`]: AVX2 for
//! [`Backend::Avx2`] and [`Backend::Avx512`], NEON for [`Backend::Neon`]; the portable loops for
//! every other backend, so that tests can force them). The host layout is the portable one
//! (`CHUNK` = 4): one chunk of a row block is eight words, one AVX2 register or two NEON ones.
//! `VPMADDWD` and `SMLAL` compute every product exactly in `i32` and add modulo `2^32`, as the
//! portable loops do (`i16` operands: a pair sum is at most `2^31`, and only for four
//! operands of `-2^15`, which wraps in both).
//!
//! Element reads of `i8` rows may be unaligned words (`LDR`; Cortex-M3 and later allow them
//! unless `CCR.UNALIGN_TRP` is set).
#![allow(unsafe_code)]

use super::{Available, Backend};
use crate::slices::{chunks, chunks_mut};

/// The next state of Marsaglia's xorshift32 generator (the checks' and tests' fixed
/// pseudo-random data; `state` must not be 0).
pub(crate) fn xorshift32(state: &mut u32) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state
}

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

/// Which variant of the inner loops a kernel call runs: chosen once per call from its backend
/// ([`Loops::for_backend`]); holding a host variant proves the CPU can run it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loops(Variant);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// The loops this target is built with: the Cortex-M DSP or Helium assembly, else the
    /// portable loops.
    Target,
    /// AVX2 (`VPMADDWD`); the CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// NEON (`SMLAL`), enabled at compile time.
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    Neon,
}

impl Loops {
    /// The loops this target is built with (the Cortex-M assembly, else the portable loops).
    pub(crate) const TARGET: Loops = Loops(Variant::Target);

    /// The loops of `backend`: AVX2 for the AVX2 and AVX-512 backends (if the CPU has AVX2),
    /// NEON for the NEON backend, else [`Loops::TARGET`] (so `Scalar`, `Blocked` and `Sse2`
    /// run the portable loops on hosts).
    pub(crate) fn for_backend(backend: Available) -> Loops {
        match backend.backend() {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => Loops(Variant::Avx2),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 if Backend::Avx2.is_available() => Loops(Variant::Avx2),
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Backend::Neon => Loops(Variant::Neon),
            _ => Loops::TARGET,
        }
    }

    /// The loops of the backend kernel calls use now ([`Available::active`]); on targets
    /// without host variants, [`Loops::TARGET`] without reading the backend.
    pub(crate) fn active() -> Loops {
        #[cfg(any(
            target_arch = "x86_64",
            all(target_arch = "aarch64", target_feature = "neon")
        ))]
        return Loops::for_backend(Available::active());
        #[cfg(not(any(
            target_arch = "x86_64",
            all(target_arch = "aarch64", target_feature = "neon")
        )))]
        Loops::TARGET
    }

    /// Every variant this machine can run, [`Loops::TARGET`] first (for the checks).
    fn available() -> impl Iterator<Item = Loops> {
        let host = Backend::ALL
            .into_iter()
            .filter_map(Available::new)
            .map(Loops::for_backend)
            .filter(|&loops| loops != Loops::TARGET);
        core::iter::once(Loops::TARGET).chain(host)
    }

    /// The name of the variant (`target`, `avx2`, `neon`).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn name(self) -> &'static str {
        match self.0 {
            Variant::Target => "target",
            #[cfg(target_arch = "x86_64")]
            Variant::Avx2 => "avx2",
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Variant::Neon => "neon",
        }
    }
}

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

/// The `i16` slot of element `e` of row `r` in a byte block (built for size, out of line:
/// less flash).
#[cfg_attr(not(lara_attn_compact), inline(always))]
#[cfg_attr(lara_attn_compact, inline(never))]
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
#[cfg_attr(not(lara_attn_compact), inline(always))]
#[cfg_attr(lara_attn_compact, inline(never))]
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
    // (Helium: a gather per column, for value_dim ≤ MAX_DIM)
    #[cfg(lara_attn_helium)]
    if crate::int8::helium::pack_value_blocks(values, value_dim, (first, counted), out) {
        return;
    }
    // (the other DSP cores: whole blocks of keys that count, four columns at a time)
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
    if dsp::pack_value_blocks(values, value_dim, (first, counted), out) {
        return;
    }
    if cfg!(lara_attn_compact) {
        // (built for size: zeros, then each value of a key that counts into its slot, the
        // same words; whole blocks alone, as the loop below)
        let whole = out.len() / VALUE_BLOCK_WORDS * VALUE_BLOCK_WORDS;
        let out = out.get_mut(..whole).unwrap_or_default();
        crate::slices::fill(out, 0);
        for (jj, &counts) in counted.iter().enumerate() {
            let start = (first + jj) * value_dim;
            let Some(row) = values.get(start..start + value_dim).filter(|_| counts) else {
                continue;
            };
            for (column, &v) in row.iter().enumerate() {
                let word = column / ROWS * VALUE_BLOCK_WORDS + value_word(column % ROWS, jj / 2);
                set_slot(out, 2 * word + jj % 2, i32::from(v));
            }
        }
        return;
    }
    portable_pack_value_blocks(values, value_dim, (first, counted), out);
}

/// The portable [`pack_value_blocks`] (also the reference of the Helium check).
#[inline]
pub(crate) fn portable_pack_value_blocks(
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
    for (g, block) in chunks_mut(out, VALUE_BLOCK_WORDS).enumerate() {
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
    crate::slices::fill(out, 0);
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
#[cfg_attr(not(lara_attn_compact), inline)]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn padded_bytes<'a>(x: &'a [i8], buffer: &'a mut [i32]) -> &'a [i8] {
    if x.len().is_multiple_of(CHUNK) {
        return x;
    }
    let len = padded(x.len());
    let Some(words) = buffer.get_mut(..len / 4) else {
        return &[];
    };
    if cfg!(lara_attn_compact) {
        // (built for size: byte `i` into byte `i mod 4` of word `i / 4`, the same words)
        crate::slices::fill(words, 0);
        for (i, &b) in x.iter().enumerate() {
            if let Some(word) = words.get_mut(i / 4) {
                *word |= i32::from(b as u8) << (8 * (i % 4));
            }
        }
    } else {
        for (word, bytes) in words.iter_mut().zip(x.chunks(4)) {
            let byte = |i: usize| bytes.get(i).map_or(0, |&b| b as u8);
            *word = i32::from_le_bytes([byte(0), byte(1), byte(2), byte(3)]);
        }
    }
    // SAFETY: `words` is `len / 4` initialised `i32`s, so `len` readable bytes at an address
    // aligned for `i8`; the view borrows `buffer` for 'a and nothing writes it meanwhile.
    unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<i8>(), len) }
}

/// `out[4b + r] = Σ_e row_r[e] · x[e]` for every byte block `b < out.len() / 4` of `blocks`
/// (back to back, [`block_words`]`(x.len())` words each): the dot products of every row with the
/// shared row `x`, whose length must be a non-zero multiple of [`CHUNK`] (see
/// [`padded_bytes`]). Zeros if the lengths do not fit.
#[cfg_attr(not(lara_attn_compact), inline)]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn dot_blocks(loops: Loops, blocks: &[i32], x: &[i8], out: &mut [i32]) {
    let count = out.len() / ROWS;
    if x.is_empty() || !x.len().is_multiple_of(CHUNK) || blocks.len() < count * block_words(x.len())
    {
        crate::slices::fill(out, 0);
        return;
    }
    if count == 0 {
        return;
    }
    match loops.0 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a `Loops` holds `Avx2` only where the CPU has AVX2 (`Loops::for_backend`);
        // the lengths are checked above.
        Variant::Avx2 => unsafe { avx2::dot_blocks(blocks, x, out, count) },
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        // SAFETY: NEON is enabled at compile time (the variant's cfg); the lengths are checked
        // above.
        Variant::Neon => unsafe { neon::dot_blocks(blocks, x, out, count) },
        Variant::Target => target_dot_blocks(blocks, x, out, count),
    }
}

/// [`dot_blocks`] of this target's build (arguments checked).
#[inline(always)]
#[cfg_attr(not(any(lara_attn_dsp, lara_attn_helium)), allow(unused_variables))]
fn target_dot_blocks(blocks: &[i32], x: &[i8], out: &mut [i32], count: usize) {
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

/// [`dot_blocks`] of each row `x` with two sets of blocks, `a` into `out_a` and `b` into
/// `out_b` (LARA's query rows against `W` and `q̄`), the slices held and their lengths checked
/// once for rows of `x_len` bytes: on Helium, for rows of one to four chunks and as many whole
/// blocks in each set, one `asm!` block per row with the row loaded once; else two calls.
#[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
pub(crate) struct Dots2<'a> {
    loops: Loops,
    blocks: (&'a [i32], &'a [i32]),
    out: (&'a mut [i32], &'a mut [i32]),
    /// The row length the `asm!` block's checks passed for, else 0 (no row is empty).
    fits: usize,
    /// The second set as `i8` blocks (see [`Dots2::bytes`]).
    bytes: Option<&'a [i32]>,
}

#[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
impl<'a> Dots2<'a> {
    /// The slices, checked for rows of `x_len` bytes.
    pub(crate) fn new(
        loops: Loops,
        blocks: (&'a [i32], &'a [i32]),
        x_len: usize,
        out: (&'a mut [i32], &'a mut [i32]),
    ) -> Self {
        let count = out.0.len() / ROWS;
        let words = count * block_words(x_len);
        let fits = matches!(loops.0, Variant::Target)
            && count >= 1
            && out.1.len() / ROWS == count
            && x_len.is_multiple_of(CHUNK)
            && (1..=4).contains(&(x_len / CHUNK))
            && blocks.0.len() >= words
            && blocks.1.len() >= words;
        Dots2 {
            loops,
            blocks,
            out,
            fits: if fits { x_len } else { 0 },
            bytes: None,
        }
    }

    /// From now on the second set's sums from `bytes`, its blocks as `i8` (their rows divided by
    /// 128, as [`narrow_blocks`](crate::int8::helium::narrow_blocks) writes them), so divided by
    /// 128 (exact: the second set's rows are multiples of 128), for rows of two or four chunks:
    /// `true`; else `false`, nothing changed.
    pub(crate) fn bytes(&mut self, bytes: &'a [i32]) -> bool {
        let count = self.out.0.len() / ROWS;
        let takes = matches!(self.fits / CHUNK, 2 | 4) && bytes.len() >= count * self.fits;
        if takes {
            self.bytes = Some(bytes);
        }
        takes
    }

    /// The dot products of the row `x` into the held sums.
    #[inline(always)]
    pub(crate) fn run(&mut self, x: &[i8]) {
        if x.len() == self.fits {
            let count = self.out.0.len() / ROWS;
            match self.bytes {
                Some(bytes) => mve::dot_blocks2_bytes(
                    (self.blocks.0, bytes),
                    x,
                    (self.out.0, self.out.1),
                    count,
                ),
                None => mve::dot_blocks2(self.blocks, x, (self.out.0, self.out.1), count),
            }
            return;
        }
        dot_blocks(self.loops, self.blocks.0, x, self.out.0);
        dot_blocks(self.loops, self.blocks.1, x, self.out.1);
        if self.bytes.is_some() {
            // (the sums of the i16 rows, multiples of 128: divided exactly; whole blocks alone,
            // as dot_blocks writes them)
            let count = self.out.0.len() / ROWS;
            for sum in self.out.1.iter_mut().take(count * ROWS) {
                *sum >>= 7;
            }
        }
    }

    /// The two rows of sums.
    #[inline(always)]
    pub(crate) fn sums(&mut self) -> (&mut [i32], &mut [i32]) {
        (self.out.0, self.out.1)
    }
}

/// LARA's query output on Helium: `out[j] = ssat8(((s_j · mantissa) >> 32) + round) >> shift)`
/// of the sums `s` [`pair_dot_blocks`] gives for the packed weights `x` and the blocks, four
/// values per block, without storing the sums (`mve::pair_dot_i8`), the blocks held and the
/// lengths checked once for rows `x` of `x_len` words and `len` values (a multiple of four).
/// For sums below `2^30` in magnitude (LARA's: packed weights summing to at most `2^14 + 16`
/// times values of 16 bits) and `|mantissa| < 2^31`.
#[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
pub(crate) struct PairDotI8<'a> {
    blocks: &'a [i32],
    x_len: usize,
    count: usize,
}

#[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
impl<'a> PairDotI8<'a> {
    /// `None` unless `x_len` is one to four chunks (4 to 16 words), `len` a non-zero multiple
    /// of four and `blocks` holds `len / 4` blocks of `4 · x_len` words.
    pub(crate) fn new(loops: Loops, blocks: &'a [i32], x_len: usize, len: usize) -> Option<Self> {
        let count = len / ROWS;
        let fits = matches!(loops.0, Variant::Target)
            && count > 0
            && len.is_multiple_of(ROWS)
            && x_len.is_multiple_of(CHUNK / 2)
            && (1..=4).contains(&(x_len / (CHUNK / 2)))
            && blocks.len() >= count * ROWS * x_len;
        fits.then_some(PairDotI8 {
            blocks,
            x_len,
            count,
        })
    }

    /// The row `out` (`len` values) from `x` (`x_len` words) and the requantisation `parts`
    /// (`Multiplier::high_word_rounded`'s, whose rounding term is `2^(shift − 1)`); `false`,
    /// nothing written, for other lengths, another rounding term or a shift above 30.
    #[inline(always)]
    pub(crate) fn run(&self, x: &[i32], out: &mut [i8], parts: (i32, i32, u32)) -> bool {
        let (mantissa, round, shift) = parts;
        let half = 1i32.checked_shl(shift.wrapping_sub(1));
        half == Some(round) && shift <= 30 && self.run_parts(x, out, (mantissa, shift))
    }

    /// [`run`](Self::run) for `parts` `(mantissa, shift)` whose rounding term is
    /// `2^(shift − 1)`, `1 ≤ shift ≤ 30` (`fixed_point::RowHighWords::parts`'; other shifts
    /// give other bytes).
    #[inline(always)]
    pub(crate) fn run_parts(&self, x: &[i32], out: &mut [i8], parts: (i32, u32)) -> bool {
        if x.len() != self.x_len || out.len() != ROWS * self.count {
            return false;
        }
        mve::pair_dot_i8(self.blocks, x, out, self.count, parts);
        true
    }
}

/// For the [`KEY_BLOCK`] rows of `rows` (`dim` bytes each, back to back): [`dot_blocks`] of
/// the row with every row of `blocks`, then column `jj` (the row's) of `logits`
/// (`[rows][KEY_BLOCK]`) `= ssat29(round((dot_r << pre_shift) · value / 2^32) − offset_jj)`
/// (the difference wrapping) for every row `r` of `dots` (the blocks' rows), `offset_jj` the
/// row's `round((|row|² << norm_pre) · norm / 2^32)` with `norm = (norm, norm_pre)` (0
/// without): on Helium one `asm!` block for the whole block of keys (each row loaded once, its
/// `|row|²` from the loaded row; no dispatch or setup per row; the sums of each block of four
/// rows scaled as they are done, `dots` left alone). `false`, nothing written, unless `dim`
/// is one to four whole chunks, `rows` holds the `KEY_BLOCK` rows, and `dots` is whole blocks
/// (at least one) whose rows are all in `blocks` and `logits`.
#[cfg(lara_attn_helium)]
#[inline]
pub(crate) fn dot_logit_block(
    loops: Loops,
    (blocks, rows, dim): (&[i32], &[i8], usize),
    dots: &mut [i32],
    logits: &mut [i32],
    ((value, pre_shift), norm): ((i32, u32), Option<(i32, u32)>),
) -> bool {
    dot_block(
        loops,
        (blocks, rows, dim),
        (dots, logits),
        (value, pre_shift),
        Column::Logit(norm),
    )
}

/// [`dot_logit_block`] for `T`'s logits from `i8` blocks (`dim` words each: per chunk of 16
/// columns the four rows' bytes, as [`narrow_blocks`](crate::int8::helium::narrow_blocks)
/// writes them), `VMLADAVA.S8`: no norm, and no `ssat29` (`T`'s logits are within `±2^27`,
/// where it is the identity: see [`t_row`](crate::int8::helium::t_row)). `false`, nothing
/// written, unless `dim` is one to four chunks of 16 and the lengths fit as for
/// [`dot_logit_block`].
#[cfg(lara_attn_helium)]
#[inline]
pub(crate) fn dot_logit_block_bytes(
    loops: Loops,
    (blocks, rows, dim): (&[i32], &[i8], usize),
    dots: &mut [i32],
    logits: &mut [i32],
    (value, pre_shift): (i32, u32),
) -> bool {
    let count = dots.len() / ROWS;
    let fits = matches!(loops.0, Variant::Target)
        && dim.is_multiple_of(2 * CHUNK)
        && (1..=4).contains(&(dim / (2 * CHUNK)))
        && rows.len() >= KEY_BLOCK * dim
        && count >= 1
        && dots.len().is_multiple_of(ROWS)
        && blocks.len() >= count * dim
        && logits.len() / KEY_BLOCK >= dots.len();
    if !fits {
        return false;
    }
    // (as dot_block's logit column without a norm)
    let base = logits.as_mut_ptr().wrapping_sub(ROW_STEP.len() * KEY_BLOCK);
    let address = |p: *const i32| p as usize as u32;
    let mut args = [
        address(blocks.as_ptr()),
        0,
        value as u32,
        pre_shift,
        ROW_STEP.as_ptr() as usize as u32,
        address(base),
        0,
        dim as u32,
    ];
    mve::dot_logit_block_bytes(rows, (dim / (2 * CHUNK), count), &mut args);
    true
}

/// The logit column of [`dot_block`]: [`dot_logit_block`]'s (the norm's scale) or
/// [`dot_projection_block`]'s (the offsets and the largest projection so far).
#[cfg(lara_attn_helium)]
enum Column<'a> {
    Logit(Option<(i32, u32)>),
    Projection(&'a [i32; KEY_BLOCK], &'a mut i32),
}

/// [`dot_logit_block`] for RFA's key logits: column `jj` `= ssat29(p − offsets[jj])` with
/// `p = ssat29(round((dots[r] << pre_shift) · value / 2^32))`; returns the largest of the
/// `p` and `max` (`None`, nothing written, where [`dot_logit_block`] would return `false`).
#[cfg(lara_attn_helium)]
#[inline]
pub(crate) fn dot_projection_block(
    loops: Loops,
    (blocks, rows, dim): (&[i32], &[i8], usize),
    dots: &mut [i32],
    logits: &mut [i32],
    ((value, pre_shift), offsets): ((i32, u32), &[i32; KEY_BLOCK]),
    max: i32,
) -> Option<i32> {
    let mut max = max;
    let scale = (value, pre_shift);
    dot_block(
        loops,
        (blocks, rows, dim),
        (dots, logits),
        scale,
        Column::Projection(offsets, &mut max),
    )
    .then_some(max)
}

/// [`dot_logit_block`], or with `max` [`dot_projection_block`] (which it updates).
#[cfg(lara_attn_helium)]
#[inline(always)]
fn dot_block(
    loops: Loops,
    (blocks, rows, dim): (&[i32], &[i8], usize),
    (dots, logits): (&mut [i32], &mut [i32]),
    (value, pre_shift): (i32, u32),
    column: Column<'_>,
) -> bool {
    let count = dots.len() / ROWS;
    let fits = matches!(loops.0, Variant::Target)
        && dim.is_multiple_of(CHUNK)
        && (1..=4).contains(&(dim / CHUNK))
        && rows.len() >= KEY_BLOCK * dim
        && count >= 1
        && dots.len().is_multiple_of(ROWS)
        && blocks.len() >= count * block_words(dim)
        && logits.len() / KEY_BLOCK >= dots.len();
    if !fits {
        return false;
    }
    // the addresses of rows −4 to −1 of column 0 (the store adds four rows first); never
    // dereferenced
    let base = logits.as_mut_ptr().wrapping_sub(ROW_STEP.len() * KEY_BLOCK);
    let address = |p: *const i32| p as usize as u32;
    let shape = (dim / CHUNK, count);
    match column {
        Column::Projection(offsets, max) => {
            let mut args = [
                address(blocks.as_ptr()),
                address(dots.as_mut_ptr()),
                value as u32,
                pre_shift,
                ROW_STEP.as_ptr() as usize as u32,
                address(base),
                address(offsets.as_ptr()),
                dim as u32,
                *max as u32,
            ];
            mve::dot_logit_block::<true, 9>(rows, shape, &mut args);
            *max = args[8] as i32;
        }
        Column::Logit(norm) => {
            // (no norm: a factor of 0, every offset 0)
            let (norm, norm_pre) = norm.unwrap_or((0, 0));
            let mut args = [
                address(blocks.as_ptr()),
                norm as u32,
                value as u32,
                pre_shift,
                ROW_STEP.as_ptr() as usize as u32,
                address(base),
                norm_pre,
                dim as u32,
            ];
            mve::dot_logit_block::<false, 8>(rows, shape, &mut args);
        }
    }
    true
}

/// The byte offsets of four consecutive rows of logits (`KEY_BLOCK` words each).
#[cfg(lara_attn_helium)]
pub(crate) static ROW_STEP: [u32; 4] = [
    0,
    (KEY_BLOCK * 4) as u32,
    (2 * KEY_BLOCK * 4) as u32,
    (3 * KEY_BLOCK * 4) as u32,
];

/// The portable [`dot_blocks`] (also the reference of the tests).
#[inline]
pub(crate) fn portable_dot_blocks(blocks: &[i32], x: &[i8], out: &mut [i32]) {
    let words = block_words(x.len()).max(1);
    // block b of `blocks` for the sums of block b; the sums as arrays, not a second
    // `chunks_exact` (an outlined `Zip::new` of two divides by both chunk sizes, a panic path
    // at opt-level `s`)
    let (sum_rows, _) = out.as_chunks_mut::<ROWS>();
    for (sums, block) in sum_rows.iter_mut().zip(chunks(blocks, words)) {
        sums.fill(0);
        for (e, &xe) in x.iter().enumerate() {
            for (r, sum) in sums.iter_mut().enumerate() {
                *sum += get_slot(block, byte_slot(r, e)) * i32::from(xe);
            }
        }
    }
}

/// [`dot_blocks`] of `row` (any length: padded with zeros in `buffer`, see [`padded_bytes`])
/// on the DSP cores without Helium: for a `buffer` that also holds the widened row after the
/// padded copy, [`dot_widened`] there (the same sums; fewer instructions from two blocks on
/// for `d` of 16 or 32, from three blocks on for the others).
/// Returns the widened row when there is one (for [`pair_squared_norm`]).
#[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
#[inline(always)]
pub(crate) fn dot_row<'a>(
    loops: Loops,
    blocks: &[i32],
    row: &[i8],
    buffer: &'a mut [i32],
    out: &mut [i32],
) -> Option<&'a [i32]> {
    let (copy, wide) = buffer.split_at_mut((padded(row.len()) / 4).min(buffer.len()));
    let x = padded_bytes(row, copy);
    let fused = matches!(x.len(), 16 | 32);
    if out.len() >= if fused { 2 * ROWS } else { 3 * ROWS } {
        dot_widened(loops, blocks, x, wide, out)
    } else {
        dot_blocks(loops, blocks, x, out);
        None
    }
}

/// For each of the [`KEY_BLOCK`] rows `jj` of `rows` (`dim` bytes each, back to back): its dot
/// products with the `rows_out / 4` blocks of `blocks`, the row widened into `wide` on the way
/// (`dsp::widen_dot_blocks`), and `logits[r][jj] = ssat29(round((dot << pre_shift) · value /
/// 2^32) − offset)` for the `rows_out` rows of `logits` (`[rows][KEY_BLOCK]`), the offset 0
/// or, with a `norm` scale, `norm · |row|²` (from the widened row): the logits stored by the
/// dot products' `asm!` block itself (no dots kept, no column loop, no checks per row).
/// `false`, nothing done, unless `dim` is 16 or 32, there are at least two blocks (whole) and
/// the lengths fit.
#[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
#[inline(always)]
pub(crate) fn dot_block_columns(
    loops: Loops,
    blocks: &[i32],
    (rows, dim): (&[i8], usize),
    wide: &mut [i32],
    (logits, rows_out): (&mut [i32], usize),
    (scale, norm): ((i32, u32), Option<(i32, u32)>),
) -> bool {
    let count = rows_out / ROWS;
    let fits = matches!(loops.0, Variant::Target)
        && (dim == 16 || dim == 32)
        && rows.len() == KEY_BLOCK * dim
        && count >= 2
        && rows_out.is_multiple_of(ROWS)
        && logits.len() >= rows_out * KEY_BLOCK
        && blocks.len() >= count * block_words(dim);
    let Some(wide) = wide.get_mut(..dim / 2).filter(|_| fits) else {
        return false;
    };
    // (the checks of the asm block once, for the last column: every column jj < KEY_BLOCK
    // holds rows_out · KEY_BLOCK − jj > (rows_out − 1) · KEY_BLOCK slots)
    let lens = (blocks.len(), dim, wide.len());
    let last = (logits.len().saturating_sub(KEY_BLOCK - 1), true);
    if !dsp::widen_fits(lens, last, count, None) {
        return false;
    }
    let Some(first) = rows.get(..dim) else {
        return false;
    };
    // SAFETY: widen_fits held just above for rows of dim bytes, these blocks and wide, and a
    // column of logits.len() − (KEY_BLOCK − 1) slots; rows holds KEY_BLOCK · dim bytes
    // (checked in `fits`).
    unsafe {
        dsp::widen_dot_columns_unchecked(blocks, (rows, first), wide, logits, count, (scale, norm))
    };
    true
}

/// [`dot_blocks`] of `x` (see there) that also leaves `x` widened in `wide` as [`widen_bytes`]
/// does, and returns the widened row for more dot products by [`pair_dot_blocks`] (`None`:
/// `wide` too short, [`dot_blocks`] alone). For 16 or 32 bytes the first block's byte loop
/// stores the widened pairs on the way (`dsp::widen_dot_blocks`), else [`widen_bytes`] first.
#[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
#[inline(always)]
pub(crate) fn dot_widened<'a>(
    loops: Loops,
    blocks: &[i32],
    x: &[i8],
    wide: &'a mut [i32],
    out: &mut [i32],
) -> Option<&'a [i32]> {
    let fits = matches!(loops.0, Variant::Target)
        && !x.is_empty()
        && x.len().is_multiple_of(CHUNK)
        && wide.len() >= x.len() / 2;
    let count = out.len() / ROWS;
    if fits && dsp::widen_dot_blocks(blocks, x, wide, out, count, None) {
        return wide.get(..x.len() / 2);
    }
    match widen_bytes(x, wide) {
        Some(pairs) => {
            pair_dot_blocks(loops, blocks, pairs, out);
            Some(pairs)
        }
        None => {
            dot_blocks(loops, blocks, x, out);
            None
        }
    }
}

/// [`dot_blocks`] of `x` with `blocks` into `out` and with `second` into `out2` (see
/// [`dot_widened`]): for 16 or 32 bytes one `asm!` block for both (`dsp::widen_dot_blocks`
/// with its second range), else [`dot_widened`] and [`pair_dot_blocks`] from the widened row.
#[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
#[inline(always)]
pub(crate) fn dot_widened2(
    loops: Loops,
    (blocks, second): (&[i32], &[i32]),
    x: &[i8],
    wide: &mut [i32],
    (out, out2): (&mut [i32], &mut [i32]),
) {
    let fits = matches!(loops.0, Variant::Target)
        && !x.is_empty()
        && x.len().is_multiple_of(CHUNK)
        && wide.len() >= x.len() / 2;
    let (count, count2) = (out.len() / ROWS, out2.len() / ROWS);
    let range2 = Some((second, &mut *out2, count2));
    if fits && dsp::widen_dot_blocks(blocks, x, wide, out, count, range2) {
        return;
    }
    match dot_widened(loops, blocks, x, wide, out) {
        Some(pairs) => pair_dot_blocks(loops, second, pairs, out2),
        None => dot_blocks(loops, second, x, out2),
    }
}

/// [`dot_widened2`] over the rows of one query loop, the slices held and their lengths
/// checked once for rows of `x_len` bytes (LARA's mis-opt query loop on the M4F class: no
/// per-row checks of the `asm!` block's lengths); rows of another length by [`dot_widened2`].
#[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
pub(crate) struct Widened2<'a> {
    loops: Loops,
    blocks: (&'a [i32], &'a [i32]),
    wide: &'a mut [i32],
    out: (&'a mut [i32], &'a mut [i32]),
    /// The row length the `asm!` block's checks passed for, else 0 (no row is empty).
    fits: usize,
}

#[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
impl<'a> Widened2<'a> {
    /// The slices of [`dot_widened2`], checked for rows of `x_len` bytes.
    pub(crate) fn new(
        loops: Loops,
        blocks: (&'a [i32], &'a [i32]),
        x_len: usize,
        wide: &'a mut [i32],
        out: (&'a mut [i32], &'a mut [i32]),
    ) -> Self {
        let (count, count2) = (out.0.len() / ROWS, out.1.len() / ROWS);
        let second = Some((blocks.1.len(), out.1.len(), count2));
        let lens = (blocks.0.len(), x_len, wide.len());
        let fits = matches!(loops.0, Variant::Target)
            && x_len > 0
            && dsp::widen_fits(lens, (out.0.len(), false), count, second);
        Widened2 {
            loops,
            blocks,
            wide,
            out,
            fits: if fits { x_len } else { 0 },
        }
    }

    /// [`dot_widened2`] of the row `x` into the held sums.
    #[inline(always)]
    pub(crate) fn run(&mut self, x: &[i8]) {
        let (count, count2) = (self.out.0.len() / ROWS, self.out.1.len() / ROWS);
        if x.len() == self.fits {
            // SAFETY: widen_fits held in `new` for rows of this length and these slices, held
            // (and their lengths unchanged) since, count and count2 as there.
            unsafe {
                dsp::widen_dot_blocks_unchecked(
                    self.blocks.0,
                    x,
                    self.wide,
                    self.out.0,
                    count,
                    Some((self.blocks.1, &mut *self.out.1, count2)),
                )
            };
            return;
        }
        dot_widened2(
            self.loops,
            self.blocks,
            x,
            self.wide,
            (self.out.0, self.out.1),
        );
    }

    /// The two rows of sums.
    #[inline(always)]
    pub(crate) fn sums(&mut self) -> (&mut [i32], &mut [i32]) {
        (self.out.0, self.out.1)
    }
}

/// `x` (a non-zero multiple of [`CHUNK`] bytes, see [`padded_bytes`]) as the shared row of
/// [`pair_dot_blocks`] whose products with a byte block are [`dot_blocks`]'s (the same sums):
/// per word of `x` its bytes `(0, 2)`, then `(1, 3)`, as `i16` pairs (a byte block's chunk
/// holds rows' elements in that order), in `wide`; `None` if `x` or `wide` does not fit. Widened
/// once, a row serves every block of several dot products at 11 instructions per 16
/// multiply-adds (the byte loop takes 13).
#[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
#[inline(always)]
pub(crate) fn widen_bytes<'a>(x: &[i8], wide: &'a mut [i32]) -> Option<&'a [i32]> {
    if x.is_empty() || !x.len().is_multiple_of(CHUNK) {
        return None;
    }
    let wide = wide.get_mut(..x.len() / 2)?;
    dsp::widen(x, wide);
    Some(wide)
}

/// `out[4b + r] = Σ_k row_r[k] · x[k]` for every pair block `b < out.len() / 4` of `blocks`
/// (back to back, `4 · x.len()` words each) and the shared row `x` in `i16` pairs, whose
/// length in words must be a non-zero multiple of `CHUNK / 2`. Zeros if the lengths do not
/// fit.
// (built for size, out of line: inlined into its two callers, it took 456 B more)
#[cfg_attr(not(lara_attn_compact), inline)]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn pair_dot_blocks(loops: Loops, blocks: &[i32], x: &[i32], out: &mut [i32]) {
    let count = out.len() / ROWS;
    if x.is_empty() || !x.len().is_multiple_of(CHUNK / 2) || blocks.len() < count * ROWS * x.len() {
        crate::slices::fill(out, 0);
        return;
    }
    if count == 0 {
        return;
    }
    match loops.0 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a `Loops` holds `Avx2` only where the CPU has AVX2 (`Loops::for_backend`);
        // the lengths are checked above.
        Variant::Avx2 => unsafe { avx2::pair_dot_blocks(blocks, x, out, count) },
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        // SAFETY: NEON is enabled at compile time (the variant's cfg); the lengths are checked
        // above.
        Variant::Neon => unsafe { neon::pair_dot_blocks(blocks, x, out, count) },
        Variant::Target => target_pair_dot_blocks(blocks, x, out, count),
    }
}

/// LARA's query output on the DSP cores without Helium: `out[j] = ssat8(((s_j · mantissa) >>
/// 32) + round) >> shift)` of the sums `s` [`pair_dot_blocks`] gives for `x` (4 or 8 words of
/// `i16` pairs: 8 or 16 weights) and `out.len() / 4` blocks, without storing them
/// (`dsp::pair_dot_i8`); `false`, nothing written, unless the lengths fit (`out` whole blocks).
#[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
#[inline(always)]
pub(crate) fn pair_dot_i8(
    loops: Loops,
    blocks: &[i32],
    x: &[i32],
    out: &mut [i8],
    parts: (i32, i32, u32),
) -> bool {
    let count = out.len() / ROWS;
    let fits = matches!(loops.0, Variant::Target)
        && count > 0
        && out.len().is_multiple_of(ROWS)
        && blocks.len() >= count * ROWS * x.len();
    fits && dsp::pair_dot_i8(blocks, x, out, count, parts)
}

/// [`pair_dot_blocks`] of this target's build (arguments checked).
#[inline(always)]
#[cfg_attr(not(any(lara_attn_dsp, lara_attn_helium)), allow(unused_variables))]
fn target_pair_dot_blocks(blocks: &[i32], x: &[i32], out: &mut [i32], count: usize) {
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
    for (sums, block) in sum_rows.iter_mut().zip(chunks(blocks, words)) {
        let dots = portable_dot4_pairs([0; ROWS], block, x);
        for (sum, dot) in sums.iter_mut().zip(dots) {
            *sum = dot;
        }
    }
}

/// `acc[r] + Σ_k row_r[k] · x[k]` for one pair block (the portable loop of
/// [`accumulate_rows`] and [`pair_dot_blocks`]; built for size, out of line: one copy for
/// both).
#[cfg_attr(not(lara_attn_compact), inline)]
#[cfg_attr(lara_attn_compact, inline(never))]
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
pub(crate) fn accumulate_rows(loops: Loops, acc: &mut [i32], weights: &[i32], values: &[i32]) {
    let rows = (acc.len() / ROWS).min(weights.len() / WEIGHT_WORDS);
    if rows == 0 || values.len() < VALUE_BLOCK_WORDS {
        return;
    }
    match loops.0 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a `Loops` holds `Avx2` only where the CPU has AVX2 (`Loops::for_backend`);
        // the lengths are checked above.
        Variant::Avx2 => unsafe { avx2::accumulate_rows(acc, weights, values, rows) },
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        // SAFETY: NEON is enabled at compile time (the variant's cfg).
        Variant::Neon => unsafe { neon::accumulate_rows(acc, weights, values, rows) },
        Variant::Target => target_accumulate_rows(acc, weights, values, rows),
    }
}

/// [`accumulate_rows`] of every group of four value columns `g` (`acc`'s groups, `group`
/// words each, with the pair block `g` of `values`) on Helium, in one `asm!` block: `false`,
/// nothing done, unless `acc` is whole groups and `weights` holds a row for every row of a
/// group (the rows of consecutive groups then back to back in `acc`).
#[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
#[inline]
pub(crate) fn accumulate_groups(
    loops: Loops,
    acc: &mut [i32],
    group: usize,
    weights: &[i32],
    values: &[i32],
) -> bool {
    let groups = (acc.len() / group.max(1)).min(values.len() / VALUE_BLOCK_WORDS);
    let rows = group / ROWS;
    let fits = matches!(loops.0, Variant::Target)
        && groups > 0
        && rows > 0
        && group.is_multiple_of(ROWS)
        && acc.len().is_multiple_of(group)
        && weights.len() >= rows * WEIGHT_WORDS;
    if fits {
        mve::accumulate_groups(acc, weights, values, (groups, rows));
    }
    fits
}

/// [`accumulate_rows`] of this target's build (arguments checked).
#[inline(always)]
fn target_accumulate_rows(acc: &mut [i32], weights: &[i32], values: &[i32], rows: usize) {
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

/// x86_64 AVX2: `VPMADDWD` multiplies the sixteen `i16` of one chunk of a row block (eight
/// words: rows 0–3 of one pair of elements, then rows 0–3 of the other) by the shared row's
/// elements spread to match, and adds the products in pairs into eight `i32` lanes: lanes `r`
/// and `4 + r` hold sums of row `r`. Four blocks share each spread chunk of
/// the shared row. One `#[target_feature]` entry per loop; the lengths are checked by the
/// callers ([`dot_blocks`], [`pair_dot_blocks`], [`accumulate_rows`]).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{CHUNK, ROWS, VALUE_BLOCK_WORDS, WEIGHT_WORDS};
    use core::arch::x86_64::*;

    /// Blocks whose sums are held in registers at once.
    pub(super) const GROUP: usize = 4;

    /// Words of one chunk of a row block (one register).
    const CHUNK_WORDS: usize = CHUNK * ROWS / 2;

    /// The loop of [`dot_blocks`] and [`pair_dot_blocks`]: `count` blocks of `chunks` chunks
    /// from `blocks` (a pointer), their sums to `out` (a pointer), `GROUP` blocks at a time,
    /// then one at a time; `$spread` is chunk `$c` (element `$xc`) of `$x` spread as the
    /// chunks of the blocks hold it.
    macro_rules! dot_loop {
        ($blocks:expr, $out:expr, $count:expr, $x:expr, |$c:ident, $xc:ident| $spread:expr) => {{
            let (mut blocks, mut out, count): (*const i32, *mut i32, usize) =
                ($blocks, $out, $count);
            let x = $x;
            let chunks = x.len();
            let mut left = count;
            dot_loop!(@group GROUP, blocks, out, left, chunks, x, |$c, $xc| $spread);
            dot_loop!(@group 1, blocks, out, left, chunks, x, |$c, $xc| $spread);
        }};
        (@group $g:expr, $blocks:ident, $out:ident, $left:ident, $chunks:ident, $x:ident,
            |$c:ident, $xc:ident| $spread:expr) => {
            while $left >= $g {
                let mut acc = [_mm256_setzero_si256(); $g];
                for ($c, $xc) in $x.iter().enumerate() {
                    let shared = $spread;
                    for (k, a) in acc.iter_mut().enumerate() {
                        // SAFETY: block k < left of the remaining blocks, chunk c < chunks:
                        // within the `count · chunks · CHUNK_WORDS` words of `blocks`.
                        let row = unsafe {
                            _mm256_loadu_si256($blocks.add((k * $chunks + $c) * CHUNK_WORDS).cast())
                        };
                        *a = _mm256_add_epi32(*a, _mm256_madd_epi16(row, shared));
                    }
                }
                for (k, a) in acc.into_iter().enumerate() {
                    let sums =
                        _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a));
                    // SAFETY: the four sums of block k < left of the remaining blocks are
                    // within the `4 · count` words of `out`.
                    unsafe { _mm_storeu_si128($out.add(k * ROWS).cast(), sums) };
                }
                $left -= $g;
                // (one past the last block at most)
                $blocks = $blocks.wrapping_add($g * $chunks * CHUNK_WORDS);
                $out = $out.wrapping_add($g * ROWS);
            }
        };
    }

    /// [`dot_blocks`]: chunk `(x0, x1, x2, x3)` of `x` spread as `(x0, x2)` in the low four
    /// words and `(x1, x3)` in the high four.
    ///
    /// # Safety
    /// The CPU has AVX2; `x.len()` is a multiple of [`CHUNK`], `blocks` holds `count` blocks
    /// of `2 · x.len()` words and `out` at least `4 · count` words.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dot_blocks(blocks: &[i32], x: &[i8], out: &mut [i32], count: usize) {
        // bytes of (x0, x1, x2, x3) as i16, the same in both lanes: (x0, x2) x 4 | (x1, x3) x 4
        #[rustfmt::skip]
        let spread = _mm256_setr_epi8(
            0, 1, 4, 5, 0, 1, 4, 5, 0, 1, 4, 5, 0, 1, 4, 5,
            2, 3, 6, 7, 2, 3, 6, 7, 2, 3, 6, 7, 2, 3, 6, 7,
        );
        let (x_chunks, _) = x.as_chunks::<CHUNK>();
        dot_loop!(
            blocks.as_ptr(),
            out.as_mut_ptr(),
            count,
            x_chunks,
            |_c, xc| {
                let word = i32::from_le_bytes([xc[0] as u8, xc[1] as u8, xc[2] as u8, xc[3] as u8]);
                let wide = _mm_cvtepi8_epi16(_mm_cvtsi32_si128(word));
                _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(wide), spread)
            }
        );
    }

    /// [`pair_dot_blocks`]: chunk `(w0, w1)` of `x` (two pairs) spread as `w0` in the low four
    /// words and `w1` in the high four.
    ///
    /// # Safety
    /// The CPU has AVX2; `x.len()` is a multiple of `CHUNK / 2`, `blocks` holds `count` blocks
    /// of `4 · x.len()` words and `out` at least `4 · count` words.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn pair_dot_blocks(blocks: &[i32], x: &[i32], out: &mut [i32], count: usize) {
        let (x_chunks, _) = x.as_chunks::<{ CHUNK / 2 }>();
        dot_loop!(
            blocks.as_ptr(),
            out.as_mut_ptr(),
            count,
            x_chunks,
            |_c, xc| { _mm256_set_m128i(_mm_set1_epi32(xc[1]), _mm_set1_epi32(xc[0])) }
        );
    }

    /// [`accumulate_rows`]: the value block as four registers (pair `k` of the four columns
    /// in both lanes), two rows at a time (row `c` in the low lane, `c + 1` in the high one:
    /// their weight pair `k` spread by `VPSHUFD`), then the last odd row in one lane.
    ///
    /// # Safety
    /// The CPU has AVX2; `acc` holds `4 · rows` words, `weights` `WEIGHT_WORDS · rows`, `values`
    /// at least `VALUE_BLOCK_WORDS`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn accumulate_rows(
        acc: &mut [i32],
        weights: &[i32],
        values: &[i32],
        rows: usize,
    ) {
        let (Some(acc), Some(weights), Some(values)) = (
            acc.get_mut(..rows * ROWS),
            weights.get(..rows * WEIGHT_WORDS),
            values.first_chunk::<VALUE_BLOCK_WORDS>(),
        ) else {
            return;
        };
        let p = values.as_ptr();
        // SAFETY: words 0..16 of the 16-word array `values`, four at a time.
        let v = unsafe {
            [
                _mm256_broadcastsi128_si256(_mm_loadu_si128(p.cast())),
                _mm256_broadcastsi128_si256(_mm_loadu_si128(p.add(4).cast())),
                _mm256_broadcastsi128_si256(_mm_loadu_si128(p.add(8).cast())),
                _mm256_broadcastsi128_si256(_mm_loadu_si128(p.add(12).cast())),
            ]
        };
        let (acc_pairs, acc_last) = acc.as_chunks_mut::<{ 2 * ROWS }>();
        let (weight_pairs, weight_last) = weights.as_chunks::<{ 2 * WEIGHT_WORDS }>();
        for (a, w) in acc_pairs.iter_mut().zip(weight_pairs) {
            // SAFETY: eight words of the arrays `w` and `a`.
            let (w, sums) = unsafe {
                (
                    _mm256_loadu_si256(w.as_ptr().cast()),
                    _mm256_loadu_si256(a.as_ptr().cast()),
                )
            };
            let s01 = _mm256_add_epi32(
                _mm256_madd_epi16(v[0], _mm256_shuffle_epi32::<0x00>(w)),
                _mm256_madd_epi16(v[1], _mm256_shuffle_epi32::<0x55>(w)),
            );
            let s23 = _mm256_add_epi32(
                _mm256_madd_epi16(v[2], _mm256_shuffle_epi32::<0xAA>(w)),
                _mm256_madd_epi16(v[3], _mm256_shuffle_epi32::<0xFF>(w)),
            );
            let sums = _mm256_add_epi32(sums, _mm256_add_epi32(s01, s23));
            // SAFETY: eight words of the array `a`.
            unsafe { _mm256_storeu_si256(a.as_mut_ptr().cast(), sums) };
        }
        if let (Some(a), Some(w)) = (
            acc_last.first_chunk_mut::<ROWS>(),
            weight_last.first_chunk::<WEIGHT_WORDS>(),
        ) {
            // SAFETY: four words of the arrays `w` and `a`.
            let (w, sums) = unsafe {
                (
                    _mm_loadu_si128(w.as_ptr().cast()),
                    _mm_loadu_si128(a.as_ptr().cast()),
                )
            };
            let s01 = _mm_add_epi32(
                _mm_madd_epi16(_mm256_castsi256_si128(v[0]), _mm_shuffle_epi32::<0x00>(w)),
                _mm_madd_epi16(_mm256_castsi256_si128(v[1]), _mm_shuffle_epi32::<0x55>(w)),
            );
            let s23 = _mm_add_epi32(
                _mm_madd_epi16(_mm256_castsi256_si128(v[2]), _mm_shuffle_epi32::<0xAA>(w)),
                _mm_madd_epi16(_mm256_castsi256_si128(v[3]), _mm_shuffle_epi32::<0xFF>(w)),
            );
            let sums = _mm_add_epi32(sums, _mm_add_epi32(s01, s23));
            // SAFETY: four words of the array `a`.
            unsafe { _mm_storeu_si128(a.as_mut_ptr().cast(), sums) };
        }
    }
}

/// AArch64 NEON: `SMLAL`/`SMLAL2` multiply the low/high four `i16` of one register of a row
/// block chunk (four words: rows 0–3 of one pair of elements) by the shared row's pair spread
/// to match, and add the products to four `i32` lanes: two lanes per row, rows 0–1 in one
/// accumulator and rows 2–3 in another; `ADDP` gives the four sums. Four
/// blocks share each spread chunk. One `#[target_feature]` entry per loop (NEON is enabled at
/// compile time: the module's cfg); the lengths are checked by the callers.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod neon {
    use super::{CHUNK, ROWS, VALUE_BLOCK_WORDS, WEIGHT_WORDS};
    use core::arch::aarch64::*;

    /// Blocks whose sums are held in registers at once.
    pub(super) const GROUP: usize = 4;

    /// Words of one chunk of a row block (two registers).
    const CHUNK_WORDS: usize = CHUNK * ROWS / 2;

    /// The loop of [`dot_blocks`] and [`pair_dot_blocks`] (see the AVX2 one): `$spread` gives
    /// the two registers of the shared row that multiply the two registers of a chunk.
    macro_rules! dot_loop {
        ($blocks:expr, $out:expr, $count:expr, $x:expr, |$xc:ident| $spread:expr) => {{
            let (mut blocks, mut out, count): (*const i32, *mut i32, usize) =
                ($blocks, $out, $count);
            let x = $x;
            let chunks = x.len();
            let mut left = count;
            dot_loop!(@group GROUP, blocks, out, left, chunks, x, |$xc| $spread);
            dot_loop!(@group 1, blocks, out, left, chunks, x, |$xc| $spread);
        }};
        (@group $g:expr, $blocks:ident, $out:ident, $left:ident, $chunks:ident, $x:ident,
            |$xc:ident| $spread:expr) => {
            while $left >= $g {
                // rows 0-1 and rows 2-3 of each block
                let mut acc = [[vdupq_n_s32(0); 2]; $g];
                for (c, $xc) in $x.iter().enumerate() {
                    let (x0, x1): (int16x8_t, int16x8_t) = $spread;
                    for (k, a) in acc.iter_mut().enumerate() {
                        let p = $blocks.wrapping_add((k * $chunks + c) * CHUNK_WORDS);
                        // SAFETY: block k < left of the remaining blocks, chunk c < chunks:
                        // within the `count · chunks · CHUNK_WORDS` words of `blocks`.
                        let (r0, r1) = unsafe {
                            (vld1q_s16(p.cast()), vld1q_s16(p.wrapping_add(4).cast()))
                        };
                        a[0] = vmlal_s16(a[0], vget_low_s16(r0), vget_low_s16(x0));
                        a[1] = vmlal_high_s16(a[1], r0, x0);
                        a[0] = vmlal_s16(a[0], vget_low_s16(r1), vget_low_s16(x1));
                        a[1] = vmlal_high_s16(a[1], r1, x1);
                    }
                }
                for (k, a) in acc.into_iter().enumerate() {
                    // SAFETY: the four sums of block k < left of the remaining blocks are
                    // within the `4 · count` words of `out`.
                    unsafe { vst1q_s32($out.wrapping_add(k * ROWS), vpaddq_s32(a[0], a[1])) };
                }
                $left -= $g;
                // (one past the last block at most)
                $blocks = $blocks.wrapping_add($g * $chunks * CHUNK_WORDS);
                $out = $out.wrapping_add($g * ROWS);
            }
        };
    }

    /// [`dot_blocks`]: chunk `(x0, x1, x2, x3)` of `x` as `(x0, x2)` four times and `(x1, x3)`
    /// four times (`UZP1`/`UZP2` of the `i16` elements).
    ///
    /// # Safety
    /// `x.len()` is a multiple of [`CHUNK`], `blocks` holds `count` blocks of `2 · x.len()`
    /// words and `out` at least `4 · count` words.
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn dot_blocks(blocks: &[i32], x: &[i8], out: &mut [i32], count: usize) {
        let (x_chunks, _) = x.as_chunks::<CHUNK>();
        dot_loop!(blocks.as_ptr(), out.as_mut_ptr(), count, x_chunks, |xc| {
            let word = i32::from_le_bytes([xc[0] as u8, xc[1] as u8, xc[2] as u8, xc[3] as u8]);
            // x0 x1 x2 x3 x0 x1 x2 x3 as i16
            let wide = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(word)));
            (vuzp1q_s16(wide, wide), vuzp2q_s16(wide, wide))
        });
    }

    /// [`pair_dot_blocks`]: chunk `(w0, w1)` of `x` as `w0` four times and `w1` four times.
    ///
    /// # Safety
    /// `x.len()` is a multiple of `CHUNK / 2`, `blocks` holds `count` blocks of `4 · x.len()`
    /// words and `out` at least `4 · count` words.
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn pair_dot_blocks(blocks: &[i32], x: &[i32], out: &mut [i32], count: usize) {
        let (x_chunks, _) = x.as_chunks::<{ CHUNK / 2 }>();
        dot_loop!(blocks.as_ptr(), out.as_mut_ptr(), count, x_chunks, |xc| {
            (
                vreinterpretq_s16_s32(vdupq_n_s32(xc[0])),
                vreinterpretq_s16_s32(vdupq_n_s32(xc[1])),
            )
        });
    }

    /// [`accumulate_rows`]: the value block as four registers (pair `k` of the four columns),
    /// one row at a time (its weight pair `k` in every word).
    #[target_feature(enable = "neon")]
    pub(super) fn accumulate_rows(acc: &mut [i32], weights: &[i32], values: &[i32], rows: usize) {
        let Some(values) = values.first_chunk::<VALUE_BLOCK_WORDS>() else {
            return;
        };
        let p = values.as_ptr();
        // SAFETY: words 0..16 of the 16-word array `values`, four at a time.
        let v = unsafe {
            [
                vld1q_s16(p.cast()),
                vld1q_s16(p.add(4).cast()),
                vld1q_s16(p.add(8).cast()),
                vld1q_s16(p.add(12).cast()),
            ]
        };
        let (acc_rows, _) = acc.as_chunks_mut::<ROWS>();
        let (weight_rows, _) = weights.as_chunks::<WEIGHT_WORDS>();
        for (a, w) in acc_rows.iter_mut().zip(weight_rows).take(rows) {
            // SAFETY: four words of the arrays `w` and `a`.
            let (w, sums) = unsafe { (vld1q_s32(w.as_ptr()), vld1q_s32(a.as_ptr())) };
            let (mut low, mut high) = (vdupq_n_s32(0), vdupq_n_s32(0));
            macro_rules! pair_k {
                ($k:literal) => {
                    let wk = vreinterpretq_s16_s32(vdupq_laneq_s32::<$k>(w));
                    low = vmlal_s16(low, vget_low_s16(v[$k]), vget_low_s16(wk));
                    high = vmlal_high_s16(high, v[$k], wk);
                };
            }
            pair_k!(0);
            pair_k!(1);
            pair_k!(2);
            pair_k!(3);
            let sums = vaddq_s32(sums, vpaddq_s32(low, high));
            // SAFETY: four words of the array `a`.
            unsafe { vst1q_s32(a.as_mut_ptr(), sums) };
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

    /// `sum + Σ b²` over the four signed bytes `b` of `word`: `SXTB16` (even and odd bytes to
    /// two halfwords each) and two `SMLAD`.
    #[inline(always)]
    pub(super) fn square_sum_word(sum: i32, word: u32) -> i32 {
        let result: i32;
        // SAFETY: register-only instructions of the DSP extension, which this core has (cfg
        // lara_attn_dsp): no memory, no stack. `even` and `odd` are plain outputs, so they do not
        // share a register with the input `word` (read again after `even` is written); `sum`
        // comes back in `result` (the same register); SMLAD may set the Q flag, and the flags
        // are not declared preserved. Every register written is an output.
        unsafe {
            asm!(
                "sxtb16 {even}, {word}",
                "sxtb16 {odd}, {word}, ror #8",
                "smlad {acc}, {even}, {even}, {acc}",
                "smlad {acc}, {odd}, {odd}, {acc}",
                word = in(reg) word,
                even = out(reg) _,
                odd = out(reg) _,
                acc = inout(reg) sum => result,
                options(pure, nomem, nostack),
            );
        }
        result
    }

    /// `Σ` of the squares of the `i16` halves of `quads` (`SMLAD` of each word with itself),
    /// four words per turn (`LDM`); wrapping.
    #[inline(always)]
    pub(super) fn square_sum_quads(quads: &[[i32; 4]]) -> i32 {
        let mut sum = 0i32;
        if quads.is_empty() {
            return sum;
        }
        // SAFETY: quads holds len ≥ 1 groups of four words; the loop reads them (one LDM of
        // four per turn, until the pointer reaches the end of the last group). The block writes
        // only its inout and out operands and the flags (SMLAD may set Q); no stack. The DSP
        // extension is present (cfg lara_attn_dsp).
        unsafe {
            asm!(
                "1:",
                "ldm {p}!, {{r0, r1, r2, r3}}",
                "smlad {sum}, r0, r0, {sum}",
                "smlad {sum}, r1, r1, {sum}",
                "smlad {sum}, r2, r2, {sum}",
                "smlad {sum}, r3, r3, {sum}",
                "cmp {p}, {end}",
                "bne 1b",
                p = inout(reg) quads.as_ptr() => _,
                end = in(reg) quads.as_ptr().add(quads.len()),
                sum = inout(reg) sum,
                out("r0") _, out("r1") _, out("r2") _, out("r3") _,
                options(nostack),
            );
        }
        sum
    }

    /// Four multiply-adds of the words of four rows (`r9`–`r12`, from an `LDM`) with the
    /// shared pair in `$x`, into `r0`–`r3`: `SMUAD` sets the sums (the first step of a block:
    /// no zeroing), `SMLAD` adds to them.
    macro_rules! mac4 {
        (smuad, $x:literal) => {
            concat!(
                "smuad r0, r9, ",
                $x,
                "\n",
                "smuad r1, r10, ",
                $x,
                "\n",
                "smuad r2, r11, ",
                $x,
                "\n",
                "smuad r3, r12, ",
                $x,
                "\n",
            )
        };
        (smlad, $x:literal) => {
            concat!(
                "smlad r0, r9, ",
                $x,
                ", r0\n",
                "smlad r1, r10, ",
                $x,
                ", r1\n",
                "smlad r2, r11, ",
                $x,
                ", r2\n",
                "smlad r3, r12, ",
                $x,
                ", r3\n",
            )
        };
    }

    /// The shared pairs in `lr` and `r7` against the next two pairs of four rows (at `r5`,
    /// advanced): two `LDM` and eight products (`$op` for the first four).
    macro_rules! mac8 {
        ($op:ident) => {
            concat!(
                "ldm r5!, {{r9, r10, r11, r12}}\n",
                mac4!($op, "lr"),
                "ldm r5!, {{r9, r10, r11, r12}}\n",
                mac4!(smlad, "r7"),
            )
        };
    }

    /// One word of a shared `i8` row (at `r4`, advanced) against a chunk of a byte block (at
    /// `r5`, advanced): bytes `(0, 2)` and `(1, 3)` by `SXTB16`, then `mac8!`.
    macro_rules! byte_step {
        ($op:ident) => {
            concat!(
                "ldr lr, [r4], #4\n",
                "sxtb16 r7, lr, ror #8\n",
                "sxtb16 lr, lr\n",
                mac8!($op),
            )
        };
    }

    /// Two words (two `i16` pairs, `LDRD` into `lr` and `r7`) of a shared row (at `r4`,
    /// advanced) against two pairs of a pair block (at `r5`, advanced): `mac8!`.
    macro_rules! pair2_step {
        ($op:ident) => {
            concat!("ldrd lr, r7, [r4], #8\n", mac8!($op))
        };
    }

    /// [`pair2_step!`] at byte offset `$off` of the shared row (at `r4`, not advanced): the
    /// steps of a block without a loop, the row's start kept in `r4` for every block.
    macro_rules! pair2_at {
        ($op:ident, $off:literal) => {
            concat!("ldrd lr, r7, [r4, #", $off, "]\n", mac8!($op))
        };
    }

    /// The pair loop after the first steps of a block: two steps per turn until `r4` reaches
    /// the end of the shared row (`r8`; an even number of steps left, at least two).
    macro_rules! step_loop {
        ($step:ident) => {
            concat!(
                "3:\n",
                $step!(smlad),
                $step!(smlad),
                "cmp r4, r8\n",
                "bne 3b\n",
            )
        };
    }

    /// The block loop of [`dot_blocks`] and [`pair_dot_blocks`]: per block of four rows, the
    /// shared row from its start (kept at `[sp]`), the steps `$body`, one store of the four
    /// sums (the out pointer in `r6`), until the block pointer reaches the end of the blocks
    /// (kept at `[sp, #4]`): five instructions per block besides the steps.
    macro_rules! blocks_asm {
        ($x:expr, $x_end:expr, $blocks:expr, $blocks_end:expr, $out:expr, [$($body:expr),*]) => {
            asm!(
                "push {{r0, r1, r6, r7}}",
                "mov r6, r2",
                "2:",
                "ldr r4, [sp]",
                $($body,)*
                "stm r6!, {{r0, r1, r2, r3}}",
                "ldr lr, [sp, #4]",
                "cmp r5, lr",
                "bne 2b",
                "pop {{r0, r1, r6, r7}}",
                inout("r0") $x => _,
                inout("r1") $blocks_end => _,
                inout("r2") $out => _,
                out("r3") _, out("r4") _,
                inout("r5") $blocks => _,
                in("r8") $x_end,
                out("r9") _, out("r10") _, out("r11") _, out("r12") _, out("lr") _,
            )
        };
    }

    /// [`blocks_asm!`] for steps without a loop ([`pair2_at!`]): the shared row's start stays
    /// in `r4` and the blocks' end in `r8` (no reload per block: three instructions per block
    /// besides the steps).
    macro_rules! fixed_blocks_asm {
        ($x:expr, $blocks:expr, $blocks_end:expr, $out:expr, [$($body:expr),*]) => {
            asm!(
                "push {{r6, r7}}",
                "mov r6, r2",
                "2:",
                $($body,)*
                "stm r6!, {{r0, r1, r2, r3}}",
                "cmp r5, r8",
                "bne 2b",
                "pop {{r6, r7}}",
                out("r0") _, out("r1") _,
                inout("r2") $out => _,
                out("r3") _,
                in("r4") $x,
                inout("r5") $blocks => _,
                in("r8") $blocks_end,
                out("r9") _, out("r10") _, out("r11") _, out("r12") _, out("lr") _,
            )
        };
    }

    /// The four sums `r0`–`r3` of a block as logits `ssat29(round((sum << pre_shift) · value /
    /// 2^32))` (value at `[sp, #8]`, pre_shift at `[sp, #20]`) into a column (at `r6`,
    /// advanced a row of [`KEY_BLOCK`](super::KEY_BLOCK) words per logit); with an offset, its
    /// negation at `[sp, #32]` added by `SMMLAR` (`−offset + round(·)`: the same bits as the
    /// rounded product minus the offset, modulo `2^32`, before the `SSAT`).
    macro_rules! column_store {
        (offset) => {
            concat!(
                "ldr r9, [sp, #8]\n",
                "ldr r10, [sp, #20]\n",
                "ldr r11, [sp, #32]\n",
                "lsl r0, r0, r10\n",
                "smmlar r0, r0, r9, r11\n",
                "ssat r0, #29, r0\n",
                "str r0, [r6], #32\n",
                "lsl r1, r1, r10\n",
                "smmlar r1, r1, r9, r11\n",
                "ssat r1, #29, r1\n",
                "str r1, [r6], #32\n",
                "lsl r2, r2, r10\n",
                "smmlar r2, r2, r9, r11\n",
                "ssat r2, #29, r2\n",
                "str r2, [r6], #32\n",
                "lsl r3, r3, r10\n",
                "smmlar r3, r3, r9, r11\n",
                "ssat r3, #29, r3\n",
                "str r3, [r6], #32\n",
            )
        };
        () => {
            concat!(
                "ldr r9, [sp, #8]\n",
                "ldr r10, [sp, #20]\n",
                "lsl r0, r0, r10\n",
                "smmulr r0, r0, r9\n",
                "ssat r0, #29, r0\n",
                "str r0, [r6], #32\n",
                "lsl r1, r1, r10\n",
                "smmulr r1, r1, r9\n",
                "ssat r1, #29, r1\n",
                "str r1, [r6], #32\n",
                "lsl r2, r2, r10\n",
                "smmulr r2, r2, r9\n",
                "ssat r2, #29, r2\n",
                "str r2, [r6], #32\n",
                "lsl r3, r3, r10\n",
                "smmulr r3, r3, r9\n",
                "ssat r3, #29, r3\n",
                "str r3, [r6], #32\n",
            )
        };
    }

    /// `$asm!([first block's steps], [other blocks' steps], [|x|² steps])` for a row of
    /// `$words` (4 or 8) words: the first block by [`widen_step!`], the others by
    /// [`pair2_at!`] from the widened row, its squares by [`square4!`].
    macro_rules! row_steps {
        ($words:expr, $asm:ident) => {
            if $words == 8 {
                $asm!(
                    [
                        widen_step!(smuad),
                        widen_step!(smlad),
                        widen_step!(smlad),
                        widen_step!(smlad),
                        widen_step!(smlad),
                        widen_step!(smlad),
                        widen_step!(smlad),
                        widen_step!(smlad)
                    ],
                    [
                        pair2_at!(smuad, "0"),
                        pair2_at!(smlad, "8"),
                        pair2_at!(smlad, "16"),
                        pair2_at!(smlad, "24"),
                        pair2_at!(smlad, "32"),
                        pair2_at!(smlad, "40"),
                        pair2_at!(smlad, "48"),
                        pair2_at!(smlad, "56")
                    ],
                    [
                        square4!(smuad),
                        square4!(smlad),
                        square4!(smlad),
                        square4!(smlad)
                    ]
                )
            } else {
                $asm!(
                    [
                        widen_step!(smuad),
                        widen_step!(smlad),
                        widen_step!(smlad),
                        widen_step!(smlad)
                    ],
                    [
                        pair2_at!(smuad, "0"),
                        pair2_at!(smlad, "8"),
                        pair2_at!(smlad, "16"),
                        pair2_at!(smlad, "24")
                    ],
                    [square4!(smuad), square4!(smlad)]
                )
            }
        };
    }

    /// The logit scale `(value, pre_shift)` of a column of [`widen_dot_columns_unchecked`] and
    /// the norm's, if any.
    pub(super) type ColumnScales = ((i32, u32), Option<(i32, u32)>);

    /// Four words of a widened row (at `r4`, advanced), the squares of their `i16` halves
    /// added into `lr` (`SMUAD` sets it: the first step).
    macro_rules! square4 {
        ($op:ident) => {
            concat!(
                "ldm r4!, {{r9, r10, r11, r12}}\n",
                stringify!($op),
                " lr, r9, r9",
                square4!(@acc $op),
                "\nsmlad lr, r10, r10, lr\n",
                "smlad lr, r11, r11, lr\n",
                "smlad lr, r12, r12, lr\n",
            )
        };
        (@acc smuad) => {
            ""
        };
        (@acc smlad) => {
            ", lr"
        };
    }

    /// [`byte_step!`] that also stores the word's two `i16` pairs (at `r8`, advanced: the
    /// widened row of [`widen`]).
    macro_rules! widen_step {
        ($op:ident) => {
            concat!(
                "ldr lr, [r4], #4\n",
                "sxtb16 r7, lr, ror #8\n",
                "sxtb16 lr, lr\n",
                "strd lr, r7, [r8], #8\n",
                "ldm r5!, {{r9, r10, r11, r12}}\n",
                mac4!($op, "lr"),
                "ldm r5!, {{r9, r10, r11, r12}}\n",
                mac4!(smlad, "r7"),
            )
        };
    }

    /// [`dot_blocks`] of `x` (four or eight words) with `count ≥ 1` blocks, `x` widened into
    /// `wide` on the way (as [`widen`]): the first block by [`widen_step!`], the others by the
    /// pair steps from the widened row (its start at `[sp]` and in `r4`, the blocks' end in
    /// `r8` after the first block), each block without a loop, row `r`'s sum to `out[r]`;
    /// with a `second` range of `count2 ≥ 1` blocks, its dot products by the pair steps into
    /// its own `out2` after the first range's. `false`, nothing done, for another length or a
    /// `wide`, `blocks` or `out` too short (or a second range that does not fit). (Logit
    /// columns: [`widen_dot_columns_unchecked`].)
    #[inline(always)]
    pub(super) fn widen_dot_blocks(
        blocks: &[i32],
        x: &[i8],
        wide: &mut [i32],
        out: &mut [i32],
        count: usize,
        second: Option<(&[i32], &mut [i32], usize)>,
    ) -> bool {
        let second_lens = second.as_ref().map(|(b, o, c)| (b.len(), o.len(), *c));
        let lens = (blocks.len(), x.len(), wide.len());
        if !widen_fits(lens, (out.len(), false), count, second_lens) {
            return false;
        }
        // SAFETY: widen_fits holds for these slices' lengths (checked just above).
        unsafe { widen_dot_blocks_unchecked(blocks, x, wide, out, count, second) };
        true
    }

    /// [`widen_dot_blocks`]' checks on the lengths alone, `(blocks, x, wide)`, `(out, whether
    /// a column)`, `count` and the second range's `(blocks2, out2, count2)`.
    #[inline(always)]
    pub(super) fn widen_fits(
        (blocks, x, wide): (usize, usize, usize),
        (out, column): (usize, bool),
        count: usize,
        second: Option<(usize, usize, usize)>,
    ) -> bool {
        let words = x / 4;
        if let Some((blocks2, out2, count2)) = second
            && (column || count2 == 0 || out2 < 4 * count2 || blocks2 < count2 * 8 * words)
        {
            return false;
        }
        // (the last row's slot: 4 · count − 1 rows on, KEY_BLOCK words apart for a column)
        let stride = if column { super::KEY_BLOCK } else { 1 };
        (words == 4 || words == 8)
            && x.is_multiple_of(4)
            && count != 0
            && out > (4 * count - 1) * stride
            && wide >= 2 * words
            && blocks >= count * 8 * words
    }

    /// [`widen_dot_blocks`] without its checks.
    ///
    /// # Safety
    ///
    /// [`widen_fits`] must hold for the lengths of these slices, `count` and the second range.
    #[inline(always)]
    pub(super) unsafe fn widen_dot_blocks_unchecked(
        blocks: &[i32],
        x: &[i8],
        wide: &mut [i32],
        out: &mut [i32],
        count: usize,
        second: Option<(&[i32], &mut [i32], usize)>,
    ) {
        let words = x.len() / 4;
        let (start, end) = (
            blocks.as_ptr(),
            blocks.as_ptr().wrapping_add(count * 8 * words),
        );
        macro_rules! widen_blocks_asm {
            ([$($first:expr),*], [$($body:expr),*], [$($square:expr),*]) => {
                match second {
                    Some((blocks2, out2, count2)) => asm!(
                        // [sp] the widened row, [sp, #4] the blocks' end, [sp, #8] the second
                        // range's start, [sp, #20] its end, [sp, #24] its out
                        "push {{r0, r1, r3, r6, r7, r9, r10}}",
                        "mov r6, r2",
                        $($first,)*
                        "stm r6!, {{r0, r1, r2, r3}}",
                        // (the widened row's start in r4, the blocks' end in r8 from here)
                        "ldr r4, [sp]",
                        "ldr r8, [sp, #4]",
                        "cmp r5, r8",
                        "beq 4f",
                        "2:",
                        $($body,)*
                        "stm r6!, {{r0, r1, r2, r3}}",
                        "cmp r5, r8",
                        "bne 2b",
                        "4:",
                        "ldr r5, [sp, #8]",
                        "ldr r6, [sp, #24]",
                        "ldr r8, [sp, #20]",
                        "5:",
                        $($body,)*
                        "stm r6!, {{r0, r1, r2, r3}}",
                        "cmp r5, r8",
                        "bne 5b",
                        "pop {{r0, r1, r3, r6, r7, r9, r10}}",
                        inout("r0") wide.as_mut_ptr() => _,
                        inout("r1") end => _,
                        inout("r2") out.as_mut_ptr() => _,
                        inout("r3") blocks2.as_ptr() => _,
                        inout("r4") x.as_ptr() => _,
                        inout("r5") start => _,
                        inout("r8") wide.as_mut_ptr() => _,
                        inout("r9") blocks2.as_ptr().wrapping_add(count2 * 8 * words) => _,
                        inout("r10") out2.as_mut_ptr() => _,
                        out("r11") _, out("r12") _, out("lr") _,
                    ),
                    None => asm!(
                        "push {{r0, r1, r6, r7}}",
                        "mov r6, r2",
                        $($first,)*
                        "stm r6!, {{r0, r1, r2, r3}}",
                        "ldr r4, [sp]",
                        "ldr r8, [sp, #4]",
                        "cmp r5, r8",
                        "beq 3f",
                        "2:",
                        $($body,)*
                        "stm r6!, {{r0, r1, r2, r3}}",
                        "cmp r5, r8",
                        "bne 2b",
                        "3:",
                        "pop {{r0, r1, r6, r7}}",
                        inout("r0") wide.as_mut_ptr() => _,
                        inout("r1") end => _,
                        inout("r2") out.as_mut_ptr() => _,
                        out("r3") _,
                        inout("r4") x.as_ptr() => _,
                        inout("r5") start => _,
                        inout("r8") wide.as_mut_ptr() => _,
                        out("r9") _, out("r10") _, out("r11") _, out("r12") _, out("lr") _,
                    ),
                }
            };
        }
        // SAFETY: count ≥ 1 blocks of 8 · words words are in bounds, out holds the 4 · count
        // rows' sums and wide 2 · words (widen_fits, the caller's contract): the first block
        // reads the words of x once (unaligned LDR of i8 rows is allowed on these cores) and
        // writes wide[0 .. 2 · words] (STRD; wide is i32-aligned), the others read those words
        // of wide from its start (kept in the stack slot of r0); every block reads its own
        // words once and stores its four sums, until the block pointer reaches the end of
        // count blocks (then likewise the count2 ≥ 1 blocks of a second range, widen_fits too,
        // into out2, which holds 4 · count2 sums). r6 and r7 are saved and restored (16 or 28
        // bytes of stack); r0, r1 (and r3, r9, r10) come back as pushed and r2 holds a sum: all
        // declared clobbered. The DSP extension is present (cfg lara_attn_dsp).
        unsafe { row_steps!(words, widen_blocks_asm) };
    }

    /// [`widen_dot_blocks_unchecked`]'s steps for each of the [`KEY_BLOCK`](super::KEY_BLOCK)
    /// rows `jj` of `rows` (`x.len()` bytes each, back to back) into column `jj` of `out`:
    /// block row `r`'s sum to `out[jj + r · KEY_BLOCK]` as `ssat29(round((sum << pre_shift) ·
    /// value / 2^32) − offset)` (`dsp::logit_column`'s logit), the offset 0 or, with a norm
    /// scale, `round((|x|² << pre) · value / 2^32)` with `|x|²` from the widened row after the
    /// first block (`SMLAD` of each word with itself). One `asm!` block: an outer loop over the
    /// rows, their pointers and the column's in stack slots (no call, no checks per row; the
    /// key pass's and the normaliser's blocks).
    ///
    /// # Safety
    ///
    /// [`widen_fits`] must hold for `x` (one row), `wide`, `blocks`, `count` and a column of
    /// `out.len() − (KEY_BLOCK − 1)` slots, and `rows` must hold `KEY_BLOCK · x.len()` bytes.
    #[inline(always)]
    pub(super) unsafe fn widen_dot_columns_unchecked(
        blocks: &[i32],
        (rows, x): (&[i8], &[i8]),
        wide: &mut [i32],
        out: &mut [i32],
        count: usize,
        ((value, pre_shift), norm): ColumnScales,
    ) {
        let words = x.len() / 4;
        let (start, end) = (
            blocks.as_ptr(),
            blocks.as_ptr().wrapping_add(count * 8 * words),
        );
        let rows_end = rows.as_ptr().wrapping_add(super::KEY_BLOCK * x.len());
        let (norm_value, norm_shift) = norm.unwrap_or((0, 0));
        macro_rules! columns_asm {
            ([$($first:expr),*], [$($body:expr),*], [$($norm:expr),*], $store:expr) => {
                asm!(
                    // [sp] the widened row, [sp, #4] the blocks' end, [sp, #8] value,
                    // [sp, #20] pre_shift, [sp, #24] and [sp, #28] the norm's, [sp, #32] minus
                    // the offset, [sp, #36] the blocks' start, [sp, #40] the rows' end, [sp, #44]
                    // the next column, [sp, #48] the next row
                    "push {{r2, r4, r5, r8}}",
                    "push {{r0, r1, r3, r6, r7, r9, r10, r11, r12}}",
                    "1:",
                    "ldr r6, [sp, #44]",
                    "ldr r4, [sp, #48]",
                    "add r2, r6, #4",
                    "str r2, [sp, #44]",
                    "ldr r5, [sp, #36]",
                    "ldr r8, [sp]",
                    $($first,)*
                    // (r4 is the next row now)
                    "str r4, [sp, #48]",
                    $($norm,)*
                    $store,
                    "ldr r4, [sp]",
                    "ldr r8, [sp, #4]",
                    "cmp r5, r8",
                    "beq 3f",
                    "2:",
                    $($body,)*
                    $store,
                    "cmp r5, r8",
                    "bne 2b",
                    "3:",
                    "ldr r4, [sp, #48]",
                    "ldr r8, [sp, #40]",
                    "cmp r4, r8",
                    "bne 1b",
                    "pop {{r0, r1, r3, r6, r7, r9, r10, r11, r12}}",
                    "add sp, sp, #16",
                    inout("r0") wide.as_mut_ptr() => _,
                    inout("r1") end => _,
                    inout("r2") start => _,
                    inout("r3") value => _,
                    inout("r4") rows_end => _,
                    inout("r5") out.as_mut_ptr() => _,
                    inout("r8") rows.as_ptr() => _,
                    inout("r9") pre_shift => _,
                    inout("r10") norm_value => _,
                    inout("r11") norm_shift => _,
                    inout("r12") 0i32 => _,
                    out("lr") _,
                )
            };
        }
        // |x|² from the widened row (at [sp]), the offset's negation into [sp, #32]
        macro_rules! offset {
            ($($square:expr),*) => {
                concat!(
                    "ldr r4, [sp]\n",
                    $($square,)*
                    "ldr r9, [sp, #24]\n",
                    "ldr r10, [sp, #28]\n",
                    "lsl lr, lr, r10\n",
                    "smmulr lr, lr, r9\n",
                    "rsb lr, lr, #0\n",
                    "str lr, [sp, #32]\n",
                )
            };
        }
        // SAFETY: per row (KEY_BLOCK of them, x.len() bytes apart, until the row pointer
        // reaches the rows' end: rows holds them), the steps of widen_dot_blocks_unchecked's
        // column variants, within the bounds widen_fits gives for one row (the caller's
        // contract), into the row's column (out[jj..], which holds at least as many slots as
        // the column widen_fits was checked for). r6, r7 and the inputs are saved on the
        // stack (52 bytes) and restored; every input register is declared clobbered. The DSP
        // extension is present (cfg lara_attn_dsp).
        unsafe {
            macro_rules! both {
                ([$($first:expr),*], [$($body:expr),*], [$($square:expr),*]) => {
                    if norm.is_some() {
                        columns_asm!(
                            [$($first),*],
                            [$($body),*],
                            [offset!($($square),*)],
                            column_store!(offset)
                        );
                    } else {
                        columns_asm!([$($first),*], [$($body),*], [], column_store!());
                    }
                };
            }
            row_steps!(words, both);
        }
    }

    /// [`pack_value_blocks`](super::pack_value_blocks) of a block whose [`KEY_BLOCK`] keys all
    /// count, for `value_dim` a non-zero multiple of 4 and `out` of `value_dim / 4` whole
    /// blocks (a tail of less than a block left alone, as the portable loop does): per key pair
    /// `(2k, 2k + 1)` and group of four columns, the two rows' words `a`, `b` by `LDR`,
    /// `SXTB16` to `(a0, a2)`, `(a1, a3)` and `b`'s, `PKHBT`/`PKHTB` to the pairs `(a_t, b_t)`,
    /// one `STM` of the four words. Else `false`, nothing written.
    #[inline(always)]
    pub(super) fn pack_value_blocks(
        values: &[i8],
        value_dim: usize,
        (first, counted): (usize, [bool; super::KEY_BLOCK]),
        out: &mut [i32],
    ) -> bool {
        use super::{KEY_BLOCK, VALUE_BLOCK_WORDS, WEIGHT_WORDS};
        let groups = value_dim / 4;
        let rows = first
            .checked_mul(value_dim)
            .and_then(|start| values.get(start..)?.get(..KEY_BLOCK * value_dim));
        let fits = groups > 0
            && value_dim.is_multiple_of(4)
            && out.len() / VALUE_BLOCK_WORDS == groups
            && counted.iter().all(|&counts| counts);
        let Some(rows) = rows.filter(|_| fits) else {
            return false;
        };
        for k in 0..WEIGHT_WORDS {
            let even = rows.as_ptr().wrapping_add(2 * k * value_dim);
            // SAFETY: rows 2k and 2k + 1 (k < 4) of the 8 · value_dim bytes of `rows` are read
            // a word at a time (unaligned LDR of i8 rows is allowed on these cores), value_dim / 4
            // ≥ 1 words each, until the even row's pointer reaches its end; words 4k..4k + 4 of
            // each of the groups = out.len() / 16 blocks of `out` are written (16 words apart).
            // The block writes only those words, its inout and out operands and the flags; no
            // stack.
            unsafe {
                asm!(
                    "1:",
                    "ldr r4, [{a}], #4",
                    "ldr r5, [{b}], #4",
                    // (a0, a2), (b0, b2) to (a0, b0) and (a2, b2)
                    "sxtb16 r8, r4",
                    "sxtb16 r9, r5",
                    "pkhbt r0, r8, r9, lsl #16",
                    "pkhtb r2, r9, r8, asr #16",
                    // (a1, a3), (b1, b3) to (a1, b1) and (a3, b3)
                    "sxtb16 r8, r4, ror #8",
                    "sxtb16 r9, r5, ror #8",
                    "pkhbt r1, r8, r9, lsl #16",
                    "pkhtb r3, r9, r8, asr #16",
                    "stm {o}, {{r0, r1, r2, r3}}",
                    "add {o}, {o}, #64",
                    "cmp {a}, {end}",
                    "bne 1b",
                    a = inout(reg) even => _,
                    b = inout(reg) even.wrapping_add(value_dim) => _,
                    end = in(reg) even.wrapping_add(value_dim),
                    o = inout(reg) out.as_mut_ptr().wrapping_add(4 * k) => _,
                    out("r0") _, out("r1") _, out("r2") _, out("r3") _,
                    out("r4") _, out("r5") _, out("r8") _, out("r9") _,
                    options(nostack),
                );
            }
        }
        true
    }

    /// The portable loops for the shared rows of one or two words (`d ≤ 8`, `S ≤ 4`), where the
    /// `asm!` loops' first steps would leave no whole turn: out of line, once.
    #[inline(never)]
    fn short_dot_blocks(blocks: &[i32], x: Result<&[i8], &[i32]>, out: &mut [i32]) {
        match x {
            Ok(bytes) => super::portable_dot_blocks(blocks, bytes, out),
            Err(pairs) => super::portable_pair_dot_blocks(blocks, pairs, out),
        }
    }

    // (inlined: a call costs about 30 instructions, a sixth of a block of d = 32)
    #[inline(always)]
    pub(super) fn dot_blocks(blocks: &[i32], x: &[i8], out: &mut [i32], count: usize) {
        let words = x.len() / 4;
        if words < 3 {
            return short_dot_blocks(blocks, Ok(x), out);
        }
        let (start, out) = (x.as_ptr(), out.as_mut_ptr());
        let end = start.wrapping_add(x.len());
        // (block_words(x.len()) = 2 · x.len() for whole words)
        let blocks_end = blocks.as_ptr().wrapping_add(count * 2 * x.len());
        // SAFETY: count ≥ 1 blocks of block_words(x.len()) = 2 · x.len() words and x.len() ≥ 12
        // (whole words) are in bounds, and out holds 4·count words (checked by the caller): per
        // block the steps read the x.len() / 4 words of x (unaligned LDR of i8 rows is allowed
        // on these cores: the first one or two, then two per turn of the loop, which starts with
        // an even number of words ≥ 2 left) and the block's words once, and store its four
        // sums; the blocks end after count blocks. r6 and r7 are saved and restored (the x
        // start and the blocks' end live in the stack slots of r0 and r1, 16 bytes of stack);
        // r0 and r1 come back as pushed and r2 holds a sum: all declared clobbered. The DSP
        // extension is present (cfg lara_attn_dsp).
        unsafe {
            if words % 2 == 1 {
                blocks_asm!(
                    start,
                    end,
                    blocks.as_ptr(),
                    blocks_end,
                    out,
                    [byte_step!(smuad), step_loop!(byte_step)]
                );
            } else {
                blocks_asm!(
                    start,
                    end,
                    blocks.as_ptr(),
                    blocks_end,
                    out,
                    [byte_step!(smuad), byte_step!(smlad), step_loop!(byte_step)]
                );
            }
        }
    }

    /// [`pair_dot_blocks`] of 2 or 4 steps (`x` of 4 or 8 words) and `count ≥ 1` blocks with
    /// each block's four sums requantised at once (`crate::int8::dsp::requantize_i8`'s steps:
    /// `SMMLA` with the rounding term, `ASR`, `SSAT #8`) into `out[4b .. 4b + 4]`, no sums
    /// stored (LARA's query output on the M4F class); `false`, nothing done, for another
    /// length (the caller checks `blocks` and `out`).
    #[cfg(not(lara_attn_compact))]
    #[inline(always)]
    pub(super) fn pair_dot_i8(
        blocks: &[i32],
        x: &[i32],
        out: &mut [i8],
        count: usize,
        (mantissa, round, shift): (i32, i32, u32),
    ) -> bool {
        let blocks_end = blocks.as_ptr().wrapping_add(count * super::ROWS * x.len());
        macro_rules! requantized_blocks {
            ($($step:expr),+) => {
                asm!(
                    "push {{r6, r7}}",
                    // [sp] mantissa, [sp, #4] the rounding term, [sp, #8] the shift
                    "push {{r0, r1, r3}}",
                    "mov r6, r2",
                    "2:",
                    $($step,)+
                    "ldm sp, {{r9, r10, r11}}",
                    "smmla r0, r0, r9, r10",
                    "asr r0, r0, r11",
                    "ssat r0, #8, r0",
                    "strb r0, [r6], #1",
                    "smmla r1, r1, r9, r10",
                    "asr r1, r1, r11",
                    "ssat r1, #8, r1",
                    "strb r1, [r6], #1",
                    "smmla r2, r2, r9, r10",
                    "asr r2, r2, r11",
                    "ssat r2, #8, r2",
                    "strb r2, [r6], #1",
                    "smmla r3, r3, r9, r10",
                    "asr r3, r3, r11",
                    "ssat r3, #8, r3",
                    "strb r3, [r6], #1",
                    "cmp r5, r8",
                    "bne 2b",
                    "add sp, sp, #12",
                    "pop {{r6, r7}}",
                    inout("r0") mantissa => _,
                    inout("r1") round => _,
                    inout("r2") out.as_mut_ptr() => _,
                    inout("r3") shift => _,
                    in("r4") x.as_ptr(),
                    inout("r5") blocks.as_ptr() => _,
                    in("r8") blocks_end,
                    out("r9") _, out("r10") _, out("r11") _, out("r12") _, out("lr") _,
                )
            };
        }
        // SAFETY: count ≥ 1 blocks of 4·x.len() words are in bounds and out holds 4·count bytes
        // (checked by the caller), x holds 4 or 8 words (matched here): per block the steps
        // read x at offsets 0 to 8 · (steps − 1) bytes from its start (r4, not advanced) and
        // the block's words once (r5, advanced), and the block's four bytes of out are written
        // (r6, advanced), until the block pointer reaches the end of count blocks (r8). r6 and
        // r7 are saved and restored and the three parts kept on the stack (20 bytes, popped at
        // the end); the flags and Q (SSAT) are clobbered. The DSP extension is present (cfg
        // lara_attn_dsp).
        unsafe {
            match x.len() {
                4 => requantized_blocks!(pair2_at!(smuad, "0"), pair2_at!(smlad, "8")),
                8 => requantized_blocks!(
                    pair2_at!(smuad, "0"),
                    pair2_at!(smlad, "8"),
                    pair2_at!(smlad, "16"),
                    pair2_at!(smlad, "24")
                ),
                _ => return false,
            }
        }
        true
    }

    #[inline(always)]
    pub(super) fn pair_dot_blocks(blocks: &[i32], x: &[i32], out: &mut [i32], count: usize) {
        // (an odd number of words is not a whole chunk: the caller's checks exclude it)
        if x.len() < 4 || x.len() % 2 == 1 {
            return short_dot_blocks(blocks, Err(x), out);
        }
        // (the steps take two words: `steps` of them per block)
        let steps = x.len() / 2;
        let (start, out) = (x.as_ptr(), out.as_mut_ptr());
        let end = start.wrapping_add(x.len());
        let blocks_end = blocks.as_ptr().wrapping_add(count * super::ROWS * x.len());
        // SAFETY: count ≥ 1 blocks of 4·x.len() words and x.len() ≥ 4 words (even) are in bounds,
        // and out holds 4·count words (checked by the caller): per block the steps read the words
        // of x two at a time (2, 4 or 8 steps without a loop for 4, 8 or 16 words, at offsets
        // 0 to 8 · (steps − 1) bytes from x's start in r4, the blocks' end in r8; else the first
        // one or two steps, then two per turn of the loop, which starts with an even number of
        // steps ≥ 2 left) and the block's words once, and store its four sums; the blocks end after
        // count blocks. r6 and r7 are saved and restored (in the loop's case the x start and the
        // blocks' end live in the stack slots of r0 and r1, 16 bytes of stack, else 8 bytes);
        // r0 and r1 come back as pushed and r2 holds a sum: all declared clobbered. The DSP
        // extension is present (cfg lara_attn_dsp).
        unsafe {
            // (the loop over the blocks with these steps per block)
            macro_rules! blocks_with {
                ($($step:expr),+) => {
                    blocks_asm!(start, end, blocks.as_ptr(), blocks_end, out, [$($step),+])
                };
            }
            // (the steps without a loop: the row's start and the blocks' end kept in registers)
            macro_rules! fixed_with {
                ($($step:expr),+) => {
                    fixed_blocks_asm!(start, blocks.as_ptr(), blocks_end, out, [$($step),+])
                };
            }
            match steps {
                2 => fixed_with!(pair2_at!(smuad, "0"), pair2_at!(smlad, "8")),
                // (d = 16, or LARA's 16 weights)
                4 => fixed_with!(
                    pair2_at!(smuad, "0"),
                    pair2_at!(smlad, "8"),
                    pair2_at!(smlad, "16"),
                    pair2_at!(smlad, "24")
                ),
                // (d = 32)
                8 => fixed_with!(
                    pair2_at!(smuad, "0"),
                    pair2_at!(smlad, "8"),
                    pair2_at!(smlad, "16"),
                    pair2_at!(smlad, "24"),
                    pair2_at!(smlad, "32"),
                    pair2_at!(smlad, "40"),
                    pair2_at!(smlad, "48"),
                    pair2_at!(smlad, "56")
                ),
                _ if steps % 2 == 1 => blocks_with!(pair2_step!(smuad), step_loop!(pair2_step)),
                _ => blocks_with!(
                    pair2_step!(smuad),
                    pair2_step!(smlad),
                    step_loop!(pair2_step)
                ),
            }
        }
    }

    /// [`widen_bytes`](super::widen_bytes) into `wide[..x.len() / 2]` (the caller checks
    /// the lengths: `x` whole words, `wide` long enough): an odd first word here, then two
    /// words per turn (`LDR`, unaligned rows allowed; `SXTB16`; one `STM` of four words).
    #[inline(always)]
    pub(super) fn widen(x: &[i8], wide: &mut [i32]) {
        let words = x.len() / 4;
        let (mut x, mut wide) = (x, &mut *wide);
        if words % 2 == 1
            && let (Some(&[b0, b1, b2, b3]), Some(out)) =
                (x.first_chunk::<4>(), wide.first_chunk_mut::<2>())
        {
            let b = |v: i8| i32::from(v);
            *out = [super::pair(b(b0), b(b2)), super::pair(b(b1), b(b3))];
            (x, wide) = (&x[4..], &mut wide[2..]);
        }
        let pairs = words / 2;
        if pairs == 0 || wide.len() < 4 * pairs || x.len() < 8 * pairs {
            return;
        }
        // SAFETY: pairs ≥ 1; the loop reads x[0 .. 8·pairs] (two words per turn, unaligned
        // LDR of i8 rows is allowed on these cores) and writes wide[0 .. 4·pairs] (one STM of
        // four words per turn), until the x pointer reaches x + 8·pairs; both lengths checked
        // above. The block writes only those words, its inout and out operands and the flags;
        // no stack. The DSP extension is present (cfg lara_attn_dsp).
        unsafe {
            asm!(
                "1:",
                "ldr {a}, [{x}], #4",
                "ldr {b}, [{x}], #4",
                // bytes (0, 2) and (1, 3) of each word to i16 pairs
                "sxtb16 r0, {a}",
                "sxtb16 r1, {a}, ror #8",
                "sxtb16 r2, {b}",
                "sxtb16 r3, {b}, ror #8",
                "stm {w}!, {{r0, r1, r2, r3}}",
                "cmp {x}, {end}",
                "bne 1b",
                x = inout(reg) x.as_ptr() => _,
                end = in(reg) x.as_ptr().add(8 * pairs),
                w = inout(reg) wide.as_mut_ptr() => _,
                a = out(reg) _,
                b = out(reg) _,
                out("r0") _, out("r1") _, out("r2") _, out("r3") _,
                options(nostack),
            );
        }
    }

    /// Four multiply-adds of the value words in `r9`–`r12` (columns 0–3 of one key pair) with
    /// the weight pair in `$w`, into the sums `r0`–`r3`.
    macro_rules! mac_values {
        ($w:literal) => {
            concat!(
                "smlad r0, r9, ",
                $w,
                ", r0\n",
                "smlad r1, r10, ",
                $w,
                ", r1\n",
                "smlad r2, r11, ",
                $w,
                ", r2\n",
                "smlad r3, r12, ",
                $w,
                ", r3\n",
            )
        };
    }

    /// The value words of the next key pair (`LDM` up, `r8` advanced, or `LDMDB` down) and
    /// their four multiply-adds with the weight pair in `$w`.
    macro_rules! values_step {
        (up, $w:literal) => {
            concat!("ldm r8!, {{r9, r10, r11, r12}}\n", mac_values!($w))
        };
        (down, $w:literal) => {
            concat!("ldmdb r8!, {{r9, r10, r11, r12}}\n", mac_values!($w))
        };
    }

    /// One key pair of a row going up the value block: its weight pair (`LDR`, `r5` advanced)
    /// and its four value words (`LDM`, `r8` advanced).
    macro_rules! up_step {
        () => {
            concat!("ldr r7, [r5], #4\n", values_step!(up, "r7"))
        };
    }

    /// [`accumulate_rows`](super::accumulate_rows) (the caller checks the lengths): rows in
    /// pairs, the first going up the value block (`LDM`), the second down it (`LDMDB`, its key
    /// pairs last to first), so the value pointer needs no reset, the weights two pairs at a
    /// time (`LDRD` into `r6`, `r7`); an odd last row up alone.
    pub(super) fn accumulate_rows(acc: &mut [i32], weights: &[i32], values: &[i32], rows: usize) {
        let pairs = rows / 2;
        if pairs > 0 {
            // SAFETY: `rows ≥ 2 · pairs` rows of 4 words of `acc` and of WEIGHT_WORDS = 4 words of
            // `weights`, and VALUE_BLOCK_WORDS = 16 words of `values`, are in bounds (checked in
            // `accumulate_rows`); each turn reads and writes the two rows' sums, reads their
            // weights (8 words: 0–3 up, then 7–4 down; r5 advanced by 32 bytes) and the 16 value
            // words (up, then down to the start again), until the sum pointer reaches 2 · pairs
            // rows on. r6 and r7 are saved and restored.
            unsafe {
                asm!(
                    "push {{r6, r7}}",
                    "2:",
                    "ldm r4, {{r0, r1, r2, r3}}",
                    "ldrd r6, r7, [r5], #8",
                    values_step!(up, "r6"),
                    values_step!(up, "r7"),
                    "ldrd r6, r7, [r5], #8",
                    values_step!(up, "r6"),
                    values_step!(up, "r7"),
                    "stm r4!, {{r0, r1, r2, r3}}",
                    "ldm r4, {{r0, r1, r2, r3}}",
                    // (the second row's key pairs 3, 2, then 1, 0)
                    "ldrd r6, r7, [r5, #8]",
                    values_step!(down, "r7"),
                    values_step!(down, "r6"),
                    "ldrd r6, r7, [r5], #16",
                    values_step!(down, "r7"),
                    values_step!(down, "r6"),
                    "stm r4!, {{r0, r1, r2, r3}}",
                    "cmp r4, lr",
                    "bne 2b",
                    "pop {{r6, r7}}",
                    out("r0") _, out("r1") _, out("r2") _, out("r3") _,
                    inout("r4") acc.as_mut_ptr() => _,
                    inout("r5") weights.as_ptr() => _,
                    inout("r8") values.as_ptr() => _,
                    in("lr") acc.as_mut_ptr().wrapping_add(pairs * 8),
                    out("r9") _, out("r10") _, out("r11") _, out("r12") _,
                );
            }
        }
        if rows % 2 == 1 {
            // SAFETY: row rows − 1 = 2 · pairs (4 words of `acc`, WEIGHT_WORDS = 4 of
            // `weights`) and the 16 words of `values` are in bounds (checked in
            // `accumulate_rows`); the block reads and writes exactly those. r7 is saved and
            // restored.
            unsafe {
                asm!(
                    "push {{r7}}",
                    "ldm r4, {{r0, r1, r2, r3}}",
                    up_step!(),
                    up_step!(),
                    up_step!(),
                    up_step!(),
                    "stm r4!, {{r0, r1, r2, r3}}",
                    "pop {{r7}}",
                    out("r0") _, out("r1") _, out("r2") _, out("r3") _,
                    inout("r4") acc.as_mut_ptr().wrapping_add(pairs * 8) => _,
                    inout("r5") weights.as_ptr().wrapping_add(pairs * 8) => _,
                    inout("r8") values.as_ptr() => _,
                    out("r9") _, out("r10") _, out("r11") _, out("r12") _,
                );
            }
        }
    }
}

/// Cortex-M Helium (MVE): `VLDRB.S16` loads eight `i8` as `i16`, `VLDRH` eight `i16`,
/// `VMLADAVA.S16` adds their eight products to a general register (an even one). Loops are
/// low-overhead loops (`DLS`/`LE`, counting in `lr`). The `q` registers are the `s` registers
/// four by four (`q0` = `s0`–`s3`): the clobbers name those.
#[cfg(lara_attn_helium)]
mod mve {
    use super::KEY_BLOCK;
    use core::arch::asm;

    /// The loop of [`dot_blocks`] and [`pair_dot_blocks`]: per block of four rows, four sums of
    /// `x` (loaded eight `i16` at a time by `$load`, `$chunks` chunks of eight) times the rows.
    macro_rules! dot_blocks_asm {
        ($load:expr, $x:expr, $chunks:expr, $blocks:expr, $out:expr, $count:expr) => {
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

    /// Four sums of one chunk of `x` (in `$x`) times the four rows of a block at `r3` (which it
    /// advances by the chunk): the first chunk of a block sets the sums (`VMLADAV`), the others
    /// add to them (`VMLADAVA`).
    macro_rules! rows_chunk {
        ($op:literal, $x:literal) => {
            rows_chunk!($op, $x, "q2", "q3")
        };
        // (the third and fourth rows loaded into $q2 and $q3)
        ($op:literal, $x:literal, $q2:literal, $q3:literal) => {
            concat!(
                "vldrh.u16 q0, [r3], #16\n",
                $op,
                " r0, ",
                $x,
                ", q0\n",
                "vldrh.u16 q1, [r3], #16\n",
                $op,
                " r2, ",
                $x,
                ", q1\n",
                "vldrh.u16 ",
                $q2,
                ", [r3], #16\n",
                $op,
                " r10, ",
                $x,
                ", ",
                $q2,
                "\n",
                "vldrh.u16 ",
                $q3,
                ", [r3], #16\n",
                $op,
                " r12, ",
                $x,
                ", ",
                $q3,
                "\n",
            )
        };
    }

    /// The loop of [`dot_blocks`] and [`pair_dot_blocks`] for a shared row of one to four
    /// chunks: `x` loaded once into `q4`–`q7` (`$loads`), then per block of four rows the
    /// chunks ([`rows_chunk!`]) and one store of the four sums: no per-block zeroing, reload
    /// of `x` or inner loop.
    macro_rules! dot_preloaded_asm {
        ([$($loads:expr),*], [$($chunks:expr),*], $x:expr, $blocks:expr, $out:expr, $count:expr) => {
            asm_clobbering_s0_s31!(
                $($loads,)*
                "dls lr, r5",
                "2:",
                $($chunks,)*
                "stm r4!, {{r0, r2, r10, r12}}",
                "le lr, 2b",
                out("r0") _, out("r2") _, out("r10") _, out("r12") _,
                in("r1") $x,
                inout("r3") $blocks => _,
                inout("r4") $out => _,
                in("r5") $count,
                out("lr") _,
                options(nostack),
            )
        };
    }

    /// `$asm!` for rows of one to four chunks (`$chunks`; more take four): the chunks of the
    /// row at `r1` loaded as `i16` into `q4`–`q7` and their [`rows_chunk!`] steps, then `$rest`.
    macro_rules! preloaded_chunks {
        ($asm:ident, $chunks:expr, $($rest:tt)*) => {
            match $chunks {
                1 => $asm!(
                    ["vldrb.s16 q4, [r1]"],
                    [rows_chunk!("vmladav.s16", "q4")],
                    $($rest)*
                ),
                2 => $asm!(
                    ["vldrb.s16 q4, [r1]", "vldrb.s16 q5, [r1, #8]"],
                    [
                        rows_chunk!("vmladav.s16", "q4"),
                        rows_chunk!("vmladava.s16", "q5")
                    ],
                    $($rest)*
                ),
                3 => $asm!(
                    [
                        "vldrb.s16 q4, [r1]",
                        "vldrb.s16 q5, [r1, #8]",
                        "vldrb.s16 q6, [r1, #16]"
                    ],
                    [
                        rows_chunk!("vmladav.s16", "q4"),
                        rows_chunk!("vmladava.s16", "q5"),
                        rows_chunk!("vmladava.s16", "q6")
                    ],
                    $($rest)*
                ),
                _ => $asm!(
                    [
                        "vldrb.s16 q4, [r1]",
                        "vldrb.s16 q5, [r1, #8]",
                        "vldrb.s16 q6, [r1, #16]",
                        "vldrb.s16 q7, [r1, #24]"
                    ],
                    [
                        rows_chunk!("vmladav.s16", "q4"),
                        rows_chunk!("vmladava.s16", "q5"),
                        rows_chunk!("vmladava.s16", "q6"),
                        rows_chunk!("vmladava.s16", "q7")
                    ],
                    $($rest)*
                ),
            }
        };
    }

    /// The dot loops for `$chunks` chunks of `x`, each chunk loaded by `$load` (`$bytes` long):
    /// [`dot_preloaded_asm!`] for 1 to 4 chunks, else [`dot_blocks_asm!`].
    macro_rules! dot_blocks_any {
        ($load:literal, [$b1:literal, $b2:literal, $b3:literal], $x:expr, $chunks:expr,
         $blocks:expr, $out:expr, $count:expr) => {
            match $chunks {
                1 => dot_preloaded_asm!(
                    [concat!($load, " q4, [r1]")],
                    [rows_chunk!("vmladav.s16", "q4")],
                    $x,
                    $blocks,
                    $out,
                    $count
                ),
                2 => dot_preloaded_asm!(
                    [
                        concat!($load, " q4, [r1]"),
                        concat!($load, " q5, [r1, #", $b1, "]")
                    ],
                    [
                        rows_chunk!("vmladav.s16", "q4"),
                        rows_chunk!("vmladava.s16", "q5")
                    ],
                    $x,
                    $blocks,
                    $out,
                    $count
                ),
                3 => dot_preloaded_asm!(
                    [
                        concat!($load, " q4, [r1]"),
                        concat!($load, " q5, [r1, #", $b1, "]"),
                        concat!($load, " q6, [r1, #", $b2, "]")
                    ],
                    [
                        rows_chunk!("vmladav.s16", "q4"),
                        rows_chunk!("vmladava.s16", "q5"),
                        rows_chunk!("vmladava.s16", "q6")
                    ],
                    $x,
                    $blocks,
                    $out,
                    $count
                ),
                4 => dot_preloaded_asm!(
                    [
                        concat!($load, " q4, [r1]"),
                        concat!($load, " q5, [r1, #", $b1, "]"),
                        concat!($load, " q6, [r1, #", $b2, "]"),
                        concat!($load, " q7, [r1, #", $b3, "]")
                    ],
                    [
                        rows_chunk!("vmladav.s16", "q4"),
                        rows_chunk!("vmladava.s16", "q5"),
                        rows_chunk!("vmladava.s16", "q6"),
                        rows_chunk!("vmladava.s16", "q7")
                    ],
                    $x,
                    $blocks,
                    $out,
                    $count
                ),
                chunks => dot_blocks_asm!(
                    concat!($load, " q0, [r1], #", $b1),
                    $x,
                    chunks,
                    $blocks,
                    $out,
                    $count
                ),
            }
        };
    }

    pub(super) fn dot_blocks(blocks: &[i32], x: &[i8], out: &mut [i32], count: usize) {
        // SAFETY: count ≥ 1 blocks of block_words(x.len()) words and x.len() ≥ 1 whole chunks of 8
        // elements are in bounds, and out holds 4·count words (checked by the caller): the
        // loops read x (once, or once per block), the blocks once, and store 4·count words of
        // out. MVE is present (cfg lara_attn_helium).
        unsafe {
            dot_blocks_any!(
                "vldrb.s16",
                ["8", "16", "24"],
                x.as_ptr(),
                x.len() / 8,
                blocks.as_ptr(),
                out.as_mut_ptr(),
                count
            );
        }
    }

    /// [`dot_preloaded_asm!`] over two sets of `count` blocks, `x` loaded once: the first set
    /// at `r3` into `r4`, then the second at `r8` into `r9`.
    macro_rules! dot2_preloaded_asm {
        ([$($loads:expr),*], [$($chunks:expr),*], $x:expr, $first:expr, $second:expr, $count:expr) => {
            dot2_asm!([$($loads),*], [$($chunks),*], [], [$($chunks),*], $x, $first, $second, $count)
        };
    }

    /// Two dot loops over `count` blocks each: `$loads` then the first set at `r3` into `r4`
    /// by `$chunks`, then `$loads2` and the second set at `r8` into `r9` by `$chunks2` (the row
    /// at `r1`).
    macro_rules! dot2_asm {
        ([$($loads:expr),*], [$($chunks:expr),*], [$($loads2:expr),*], [$($chunks2:expr),*],
         $x:expr, $first:expr, $second:expr, $count:expr) => {
            asm_clobbering_s0_s31!(
                $($loads,)*
                "dls lr, r5",
                "2:",
                $($chunks,)*
                "stm r4!, {{r0, r2, r10, r12}}",
                "le lr, 2b",
                $($loads2,)*
                "mov r3, r8",
                "mov r4, r9",
                "dls lr, r5",
                "3:",
                $($chunks2,)*
                "stm r4!, {{r0, r2, r10, r12}}",
                "le lr, 3b",
                out("r0") _, out("r2") _, out("r10") _, out("r12") _,
                in("r1") $x,
                inout("r3") $first.0 => _,
                inout("r4") $first.1 => _,
                in("r8") $second.0,
                in("r9") $second.1,
                in("r5") $count,
                out("lr") _,
                options(nostack),
            )
        };
    }

    /// See [`Dots2`](super::Dots2) (arguments checked there): `x` of one to four chunks,
    /// `count ≥ 1` blocks of each set.
    pub(super) fn dot_blocks2(
        (a, b): (&[i32], &[i32]),
        x: &[i8],
        (out_a, out_b): (&mut [i32], &mut [i32]),
        count: usize,
    ) {
        let (chunks, x) = (x.len() / 8, x.as_ptr());
        let (first, second) = (
            (a.as_ptr(), out_a.as_mut_ptr()),
            (b.as_ptr(), out_b.as_mut_ptr()),
        );
        // SAFETY: count ≥ 1 blocks of block_words(8·chunks) words of a and of b, x of 8·chunks
        // bytes (1 ≤ chunks ≤ 4), and 4·count words of out_a and of out_b are in bounds
        // (checked by the caller): the loops read x once, each block once, and store 4·count
        // words of each output. MVE is present (cfg lara_attn_helium).
        unsafe { preloaded_chunks!(dot2_preloaded_asm, chunks, x, first, second, count) }
    }

    /// [`dot_blocks2`] with the second set as `i8` blocks (`x.len()` words each, 16 lanes by
    /// `VMLADAVA.S8`): `x` of two or four chunks of 8 (its bytes loaded again, unwidened, for
    /// the second set into `q2`, `q3`, which [`rows_chunk!`] leaves alone with `q0`, `q1`).
    pub(super) fn dot_blocks2_bytes(
        (a, b): (&[i32], &[i32]),
        x: &[i8],
        (out_a, out_b): (&mut [i32], &mut [i32]),
        count: usize,
    ) {
        let (chunks, x) = (x.len() / 8, x.as_ptr());
        let (first, second) = (
            (a.as_ptr(), out_a.as_mut_ptr()),
            (b.as_ptr(), out_b.as_mut_ptr()),
        );
        // SAFETY: count ≥ 1 blocks of block_words(8·chunks) words of a and of 2·chunks words
        // of b, x of 8·chunks bytes (chunks 2 or 4), and 4·count words of out_a and of out_b
        // are in bounds (checked by the caller): the loops read x twice, each block once, and
        // store 4·count words of each output. MVE is present (cfg lara_attn_helium).
        unsafe {
            if chunks == 2 {
                dot2_asm!(
                    ["vldrb.s16 q4, [r1]", "vldrb.s16 q5, [r1, #8]"],
                    [
                        rows_chunk!("vmladav.s16", "q4"),
                        rows_chunk!("vmladava.s16", "q5")
                    ],
                    ["vldrb.u8 q2, [r1]"],
                    [rows_chunk!("vmladav.s8", "q2", "q0", "q1")],
                    x,
                    first,
                    second,
                    count
                )
            } else {
                dot2_asm!(
                    [
                        "vldrb.s16 q4, [r1]",
                        "vldrb.s16 q5, [r1, #8]",
                        "vldrb.s16 q6, [r1, #16]",
                        "vldrb.s16 q7, [r1, #24]"
                    ],
                    [
                        rows_chunk!("vmladav.s16", "q4"),
                        rows_chunk!("vmladava.s16", "q5"),
                        rows_chunk!("vmladava.s16", "q6"),
                        rows_chunk!("vmladava.s16", "q7")
                    ],
                    ["vldrb.u8 q2, [r1]", "vldrb.u8 q3, [r1, #16]"],
                    [
                        rows_chunk!("vmladav.s8", "q2", "q0", "q1"),
                        rows_chunk!("vmladava.s8", "q3", "q0", "q1")
                    ],
                    x,
                    first,
                    second,
                    count
                )
            }
        }
    }

    pub(super) fn pair_dot_blocks(blocks: &[i32], x: &[i32], out: &mut [i32], count: usize) {
        // SAFETY: count ≥ 1 blocks of 4·x.len() words and x.len() ≥ 1 whole chunks of 8
        // elements are in bounds, and out holds 4·count words (checked by the caller): the
        // loops read x (once, or once per block), the blocks once, and store 4·count words of
        // out. MVE is present (cfg lara_attn_helium).
        unsafe {
            dot_blocks_any!(
                "vldrh.u16",
                ["16", "32", "48"],
                x.as_ptr(),
                x.len() / 4,
                blocks.as_ptr(),
                out.as_mut_ptr(),
                count
            );
        }
    }

    /// See [`PairDotI8`](super::PairDotI8) (arguments checked there): `x` of one to four
    /// chunks (4 to 16 words), `count ≥ 1` blocks; per block the four sums `s` of
    /// [`dot_preloaded_asm!`] moved into a vector and requantised as `requantize_i8` does for a
    /// rounding term of `2^(shift − 1)`, `sat8(((s · m) >> 32) + 2^(shift − 1)) >> shift)`:
    /// that is `sat8(y >> (shift + 1))` for `y = ((2 s · m) >> 32) + 2^shift` (both
    /// `⌊(s m + 2^(31 + shift)) / 2^(32 + shift)⌋`), `y` by one `VQDMLASH.S32` (exact, no
    /// saturation, for `|s| < 2^30`, `|m| < 2^31`), the shift and the saturation by `VQSHL.S32`
    /// by `23 − shift` (saturating left, or a right shift past 23) and `VSHR.S32 #24`.
    #[inline(always)]
    pub(super) fn pair_dot_i8(
        blocks: &[i32],
        x: &[i32],
        out: &mut [i8],
        count: usize,
        (mantissa, shift): (i32, u32),
    ) {
        // (the mantissa in every lane of q7 before the loop for one to three chunks, else of
        // q1 in each turn)
        macro_rules! requantized_asm {
            ([$($loads:expr),*], [$($chunks:expr),*], [$($mantissa:expr),*], $q:literal) => {
                asm_clobbering_s0_s31!(
                    $($loads,)*
                    "dls lr, r5",
                    "2:",
                    $($chunks,)*
                    // (the sums of rows 0 to 3 into lanes 0 to 3, two at a time: rows 0 and
                    // 2, then 1 and 3, as the assembler orders a two-lane move's registers)
                    "vmov q0[2], q0[0], r0, r10",
                    "vmov q0[3], q0[1], r2, r12",
                    $($mantissa,)*
                    // y = ((2 s · m) >> 32) + 2^shift
                    concat!("vqdmlash.s32 q0, ", $q, ", {round}"),
                    // sat8(y >> (shift + 1)) = sat32(y << (23 − shift)) >> 24 (for shift > 23
                    // a right shift by shift − 23, the value already within 8 bits)
                    "vqshl.s32 q0, {shift}",
                    "vshr.s32 q0, q0, #24",
                    "vstrb.32 q0, [r4], #4",
                    "le lr, 2b",
                    m = in(reg) mantissa,
                    round = in(reg) 1u32 << (shift & 31),
                    shift = in(reg) 23 - shift as i32,
                    out("r0") _, out("r2") _, out("r10") _, out("r12") _,
                    in("r1") x.as_ptr(),
                    inout("r3") blocks.as_ptr() => _,
                    // (a low register: the narrowing store's base)
                    inout("r4") out.as_mut_ptr() => _,
                    in("r5") count,
                    out("lr") _,
                    options(nostack),
                )
            };
        }
        // SAFETY: count ≥ 1 blocks of 4·x.len() words are in bounds and out holds 4·count bytes
        // (checked by the caller), x one to four chunks of 4 words: the loop reads x once,
        // the blocks once, and stores 4·count bytes of out. MVE is present (cfg
        // lara_attn_helium).
        unsafe {
            match x.len() {
                4 => requantized_asm!(
                    ["vldrh.u16 q4, [r1]", "vdup.32 q7, {m}"],
                    [rows_chunk!("vmladav.s16", "q4")],
                    [],
                    "q7"
                ),
                8 => requantized_asm!(
                    [
                        "vldrh.u16 q4, [r1]",
                        "vldrh.u16 q5, [r1, #16]",
                        "vdup.32 q7, {m}"
                    ],
                    [
                        rows_chunk!("vmladav.s16", "q4"),
                        rows_chunk!("vmladava.s16", "q5")
                    ],
                    [],
                    "q7"
                ),
                12 => requantized_asm!(
                    [
                        "vldrh.u16 q4, [r1]",
                        "vldrh.u16 q5, [r1, #16]",
                        "vldrh.u16 q6, [r1, #32]",
                        "vdup.32 q7, {m}"
                    ],
                    [
                        rows_chunk!("vmladav.s16", "q4"),
                        rows_chunk!("vmladava.s16", "q5"),
                        rows_chunk!("vmladava.s16", "q6")
                    ],
                    [],
                    "q7"
                ),
                _ => requantized_asm!(
                    [
                        "vldrh.u16 q4, [r1]",
                        "vldrh.u16 q5, [r1, #16]",
                        "vldrh.u16 q6, [r1, #32]",
                        "vldrh.u16 q7, [r1, #48]"
                    ],
                    [
                        rows_chunk!("vmladav.s16", "q4"),
                        rows_chunk!("vmladava.s16", "q5"),
                        rows_chunk!("vmladava.s16", "q6"),
                        rows_chunk!("vmladava.s16", "q7")
                    ],
                    ["vdup.32 q1, {m}"],
                    "q1"
                ),
            }
        }
    }

    /// The loop over the `KEY_BLOCK` rows of `x` at `{xp}` (`dim` apart, word 7 of `$args`)
    /// shared by [`dot_block_asm!`] and [`dot_column_asm!`]: `$prologue`, then per row `r1` =
    /// the row's address and `$row`; their operands (`r5` = `$count` blocks). With `@own`,
    /// `$row` itself advances `{xp}` to the next row (no `r1`).
    macro_rules! key_rows_asm {
        ([$($prologue:expr),*], [$($row:expr),* $(,)?], $x:expr, $count:expr, $args:expr) => {
            key_rows_asm!(
                @own [$($prologue),*],
                [
                    "mov r1, {xp}",
                    $($row,)*
                    // the next row of x
                    "ldr r0, [{args}, #28]",
                    "add {xp}, {xp}, r0"
                ],
                $x,
                $count,
                $args
            )
        };
        (@own [$($prologue:expr),*], [$($row:expr),* $(,)?], $x:expr, $count:expr,
         $args:expr) => {
            asm_clobbering_s0_s31!(
                $($prologue,)*
                "1:",
                $($row,)*
                "subs {keys}, {keys}, #1",
                "bne 1b",
                xp = inout(reg) $x => _,
                keys = inout(reg) KEY_BLOCK => _,
                args = in(reg) $args,
                rows4 = const 4 * KEY_BLOCK * 4,
                out("r0") _, out("r1") _, out("r2") _, out("r3") _, out("r4") _,
                out("r10") _, out("r12") _,
                in("r5") $count,
                out("lr") _,
                options(nostack),
            )
        };
    }

    /// The dot loops of [`dot_preloaded_asm!`] and a scaled logit column, for the
    /// `KEY_BLOCK` rows of `x` at `{xp}` (`dim` apart, each loaded once): per row, per block
    /// the four sums into `dots`, then per four of them the column's values (`$column`, from
    /// `q0` = four dots scaled, `r4` = the row's offset, `r2` kept between `$pre` and `$post`)
    /// scattered into the row's column (`VSTRW.32` to a vector of addresses `q1`, `KEY_BLOCK`
    /// words apart, which the store advances by four rows). `$args`: `[blocks, dots, value,
    /// pre_shift, ROW_STEP, column base, offsets, dim]`, then `max` for RFA's column (the
    /// base and the offsets' address advanced per row in place).
    macro_rules! dot_block_asm {
        ([$($loads:expr),*], [$($chunks:expr),*], $pre:expr, $column:expr, $post:expr,
         $x:expr, $count:expr, $args:expr) => {
            key_rows_asm!(
                [],
                [
                $($loads,)*
                "ldrd r3, r4, [{args}]",
                "dls lr, r5",
                "2:",
                $($chunks,)*
                "stm r4!, {{r0, r2, r10, r12}}",
                "le lr, 2b",
                // the column: value, pre_shift, ROW_STEP, base, this row's offset
                "ldr r12, [{args}, #4]",
                "ldrd r0, r1, [{args}, #8]",
                "ldrd r3, r10, [{args}, #16]",
                "ldr r2, [{args}, #24]",
                "ldr r4, [r2], #4",
                "str r2, [{args}, #24]",
                "add r2, r10, #4",
                "str r2, [{args}, #20]",
                "vldrw.u32 q1, [r3]",
                "vadd.i32 q1, q1, r10",
                "vdup.32 q2, r0",
                $pre,
                "dls lr, r5",
                "3:",
                "vldrw.u32 q0, [r12], #16",
                "vshl.u32 q0, r1",
                "vrmulh.s32 q0, q0, q2",
                $column,
                "vstrw.32 q0, [q1, #{rows4}]!",
                "le lr, 3b",
                $post,
                ],
                $x,
                $count,
                $args
            )
        };
    }

    /// [`dot_block_asm!`]'s logit column (not RFA's) with the dot products: per row (`r1` its
    /// address, `{xp}` advanced by `$dim` bytes past it), per block the four sums ([`rows_chunk!`] loading
    /// into `q0` and `q1` alone) moved into a vector, scaled, less the row's offset (`r4`),
    /// saturated and scattered into the row's column (`q3`, the addresses, which the store
    /// advances by four rows, then moved back to the next column's); `value` in every lane of
    /// `q2` for the whole block, `pre_shift` in `r1` (after the row's loads). No dots stored.
    /// `$args` as in [`dot_block_asm!`] (the column base read once, not advanced).
    macro_rules! dot_column_asm {
        ($dim:literal, [$($loads:expr),*], $offset:expr, [$($chunks:expr),*], $column:expr,
         $x:expr, $count:expr, $args:expr) => {
            key_rows_asm!(
                @own [
                    "ldr r0, [{args}, #8]",
                    "vdup.32 q2, r0",
                    // the addresses of rows −4 to −1 of column 0; in args[5] the step back from
                    // a column's last store to the next column's start: count · rows4 less
                    // one word (rows4 = 128: KEY_BLOCK = 8)
                    "ldrd r0, r1, [{args}, #16]",
                    "vldrw.u32 q3, [r0]",
                    "vadd.i32 q3, q3, r1",
                    "lsls r0, r5, #7",
                    "subs r0, #4",
                    "str r0, [{args}, #20]"
                ],
                [
                "mov r1, {xp}",
                $($loads,)*
                concat!("add {xp}, {xp}, #", $dim),
                "ldr r3, [{args}]",
                $offset,
                "ldr r1, [{args}, #12]",
                "dls lr, r5",
                "2:",
                $($chunks,)*
                // (the sums of rows 0 to 3 into lanes 0 to 3, two at a time: rows 0 and 2,
                // then 1 and 3, as the assembler orders a two-lane move's registers)
                "vmov q0[2], q0[0], r0, r10",
                "vmov q0[3], q0[1], r2, r12",
                // round((dot << pre_shift) · value / 2^32), then $column
                "vshl.u32 q0, r1",
                "vrmulh.s32 q0, q0, q2",
                $column,
                "vstrw.32 q0, [q3, #{rows4}]!",
                "le lr, 2b",
                // the addresses of rows −4 to −1 of the next column
                "ldr r0, [{args}, #20]",
                "vsub.i32 q3, q3, r0",
                ],
                $x,
                $count,
                $args
            )
        };
    }

    /// [`dot_column_asm!`]'s row offset (`r4`) and column steps: `norm`, the key logits'
    /// `ssat29(scaled − offset)` with the offset `round((|row|² << norm_pre) · norm / 2^32)`
    /// (`$squares` its `|row|²` into `r4`; 0 without a norm, its factor 0); `t`, `T`'s logits
    /// as scaled (no norm; within `±2^27`, where `ssat29` is the identity: see
    /// [`t_row`](crate::int8::helium::t_row)).
    macro_rules! column_offset {
        (norm, [$($squares:expr),*]) => {
            concat!(
                "movs r4, #0\n",
                "ldr r1, [{args}, #4]\n",
                "cbz r1, 3f\n",
                $($squares, "\n",)*
                "ldr r0, [{args}, #24]\n",
                "lsls r4, r0\n",
                "smmulr r4, r4, r1\n",
                "3:\n",
            )
        };
        (t, [$($squares:expr),*]) => {
            ""
        };
    }

    /// See [`column_offset!`].
    macro_rules! column_steps {
        (norm) => {
            concat!(
                "vsub.i32 q0, q0, r4\n",
                "vqshl.s32 q0, q0, #3\n",
                "vshr.s32 q0, q0, #3\n",
            )
        };
        (t) => {
            ""
        };
    }

    /// [`dot_column_asm!`] for rows of one to four chunks (`$chunks`), each loaded by `$load`
    /// at the byte offsets `0, $b1, $b2, $b3` and multiplied by `$mac`/`$mac_acc` (`i16` rows
    /// widened from bytes against `i16` blocks, or bytes against `i8` blocks); the rows back to
    /// back, `$d1` to `$d4` bytes apart for one to four chunks.
    macro_rules! dot_column_chunks {
        ($kind:ident, $load:literal, $mac:literal, $mac_acc:literal,
         [$b1:literal, $b2:literal, $b3:literal],
         [$d1:literal, $d2:literal, $d3:literal, $d4:literal],
         $chunks:expr, $x:expr, $count:expr, $args:expr) => {
            match $chunks {
                1 => dot_column_asm!(
                    $d1,
                    [concat!($load, " q4, [r1]")],
                    column_offset!($kind, [concat!($mac, " r4, q4, q4")]),
                    [rows_chunk!($mac, "q4", "q0", "q1")],
                    column_steps!($kind),
                    $x,
                    $count,
                    $args
                ),
                2 => dot_column_asm!(
                    $d2,
                    [
                        concat!($load, " q4, [r1]"),
                        concat!($load, " q5, [r1, #", $b1, "]")
                    ],
                    column_offset!(
                        $kind,
                        [
                            concat!($mac, " r4, q4, q4"),
                            concat!($mac_acc, " r4, q5, q5")
                        ]
                    ),
                    [
                        rows_chunk!($mac, "q4", "q0", "q1"),
                        rows_chunk!($mac_acc, "q5", "q0", "q1")
                    ],
                    column_steps!($kind),
                    $x,
                    $count,
                    $args
                ),
                3 => dot_column_asm!(
                    $d3,
                    [
                        concat!($load, " q4, [r1]"),
                        concat!($load, " q5, [r1, #", $b1, "]"),
                        concat!($load, " q6, [r1, #", $b2, "]")
                    ],
                    column_offset!(
                        $kind,
                        [
                            concat!($mac, " r4, q4, q4"),
                            concat!($mac_acc, " r4, q5, q5"),
                            concat!($mac_acc, " r4, q6, q6")
                        ]
                    ),
                    [
                        rows_chunk!($mac, "q4", "q0", "q1"),
                        rows_chunk!($mac_acc, "q5", "q0", "q1"),
                        rows_chunk!($mac_acc, "q6", "q0", "q1")
                    ],
                    column_steps!($kind),
                    $x,
                    $count,
                    $args
                ),
                _ => dot_column_asm!(
                    $d4,
                    [
                        concat!($load, " q4, [r1]"),
                        concat!($load, " q5, [r1, #", $b1, "]"),
                        concat!($load, " q6, [r1, #", $b2, "]"),
                        concat!($load, " q7, [r1, #", $b3, "]")
                    ],
                    column_offset!(
                        $kind,
                        [
                            concat!($mac, " r4, q4, q4"),
                            concat!($mac_acc, " r4, q5, q5"),
                            concat!($mac_acc, " r4, q6, q6"),
                            concat!($mac_acc, " r4, q7, q7")
                        ]
                    ),
                    [
                        rows_chunk!($mac, "q4", "q0", "q1"),
                        rows_chunk!($mac_acc, "q5", "q0", "q1"),
                        rows_chunk!($mac_acc, "q6", "q0", "q1"),
                        rows_chunk!($mac_acc, "q7", "q0", "q1")
                    ],
                    column_steps!($kind),
                    $x,
                    $count,
                    $args
                ),
            }
        };
    }

    /// See [`dot_logit_block`](super::dot_logit_block) (arguments checked there): `args` as
    /// in [`dot_block_asm!`], rows of `chunks` (one to four) chunks; `PROJECTION`: RFA's
    /// column `ssat29(p − offset)` of `p = ssat29(round((dot << pre_shift) · value / 2^32))`,
    /// the largest `p` into `args[8]` (`VMAXV.S32` from its value there); else
    /// [`dot_column_asm!`] (no dots stored; `args[1]` and `args[6]` the norm's value and
    /// pre-shift in place of the dots' and the offsets' addresses).
    #[inline(always)]
    pub(super) fn dot_logit_block<const PROJECTION: bool, const N: usize>(
        x: &[i8],
        (chunks, count): (usize, usize),
        args: &mut [u32; N],
    ) {
        const { assert!(N >= 8 + PROJECTION as usize) };
        let (x, a) = (x.as_ptr(), args.as_mut_ptr());
        // SAFETY: the caller checked that x holds KEY_BLOCK rows of args[7] = 8·chunks bytes,
        // args[0] count ≥ 1 blocks of block_words(8·chunks) words, for PROJECTION args[1]
        // 4·count words of dots and args[6] KEY_BLOCK offsets, and that rows 0 to 4·count − 1
        // of every column from args[5] (row −4 of column 0) are inside its logits: the loops
        // read each row of x once, the blocks once per row, for PROJECTION write and read back
        // 4·count words of dots and read the offsets, read ROW_STEP (4 words), store 4·count
        // logits per column (column jj's addresses those of column 0 plus jj words: for
        // PROJECTION from args[5], advanced in place, else kept in q3, moved back by the
        // 4·count rows the stores advanced and on one word, that step in args[5]) and update
        // args[5], args[6] and args[8] (N = 9) for PROJECTION. MVE is present (cfg
        // lara_attn_helium).
        unsafe {
            if PROJECTION {
                preloaded_chunks!(
                    dot_block_asm,
                    chunks,
                    "ldr r2, [{args}, #32]",
                    concat!(
                        "vqshl.s32 q0, q0, #3\n",
                        "vshr.s32 q0, q0, #3\n",
                        "vmaxv.s32 r2, q0\n",
                        "vsub.i32 q0, q0, r4\n",
                        "vqshl.s32 q0, q0, #3\n",
                        "vshr.s32 q0, q0, #3\n",
                    ),
                    "str r2, [{args}, #32]",
                    x,
                    count,
                    a
                );
            } else {
                dot_column_chunks!(
                    norm,
                    "vldrb.s16",
                    "vmladav.s16",
                    "vmladava.s16",
                    ["8", "16", "24"],
                    [8, 16, 24, 32],
                    chunks,
                    x,
                    count,
                    a
                );
            }
        }
    }

    /// See [`dot_logit_block_bytes`](super::dot_logit_block_bytes) (arguments checked there):
    /// [`dot_column_asm!`] for rows of `chunks` (one to four) chunks of 16 bytes against `i8`
    /// blocks (16 lanes, `VMLADAVA.S8`); `args` as in [`dot_logit_block`]'s logit column.
    #[inline(always)]
    pub(super) fn dot_logit_block_bytes(
        x: &[i8],
        (chunks, count): (usize, usize),
        args: &mut [u32; 8],
    ) {
        let (x, a) = (x.as_ptr(), args.as_mut_ptr());
        // SAFETY: the caller checked that x holds KEY_BLOCK rows of args[7] = 16·chunks bytes,
        // args[0] count ≥ 1 i8 blocks of 4·chunks·4 words, and that rows 0 to 4·count − 1 of
        // every column from args[5] (row −4 of column 0) are inside its logits: the loops read
        // each row of x once, the blocks once per row, read ROW_STEP (4 words), store 4·count
        // logits per column and update args[5]. MVE is present (cfg lara_attn_helium).
        unsafe {
            dot_column_chunks!(
                t,
                "vldrb.u8",
                "vmladav.s8",
                "vmladava.s8",
                ["16", "32", "48"],
                [16, 32, 48, 64],
                chunks,
                x,
                count,
                a
            );
        }
    }

    /// See [`accumulate_groups`](super::accumulate_groups) (arguments checked there): per
    /// group the four columns' values loaded once, then [`accumulate_rows`]' loop over the
    /// `rows` rows, `acc` advancing through the groups.
    pub(super) fn accumulate_groups(
        acc: &mut [i32],
        weights: &[i32],
        values: &[i32],
        (groups, rows): (usize, usize),
    ) {
        // SAFETY: `groups ≥ 1` groups of `rows ≥ 1` rows of 4 words of `acc` (back to back),
        // `rows` rows of 4 words of `weights` and `groups` pair blocks of 16 words of `values`
        // are in bounds (checked by the caller); the loops read and write exactly those.
        unsafe {
            asm_clobbering_s0_s31!(
                "1:",
                "vldrh.u16 q1, [{v}], #16",
                "vldrh.u16 q2, [{v}], #16",
                "vldrh.u16 q3, [{v}], #16",
                "vldrh.u16 q4, [{v}], #16",
                "mov r3, {w}",
                "dls lr, {rows}",
                accumulate_rows_loop!(),
                "subs {g}, {g}, #1",
                "bne 1b",
                v = inout(reg) values.as_ptr() => _,
                w = in(reg) weights.as_ptr(),
                rows = in(reg) rows,
                g = inout(reg) groups => _,
                out("r0") _, out("r2") _, out("r3") _, out("r10") _, out("r12") _,
                inout("r1") acc.as_mut_ptr() => _,
                out("lr") _,
                options(nostack),
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
                accumulate_rows_loop!(),
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

/// `|x|²` of an `i8` row (`≤ 2^23`, no overflow): four bytes at a time with `SXTB16` and
/// `SMLAD` on DSP cores, the same integer sum as [`portable_squared_norm`].
#[inline]
pub(crate) fn squared_norm(x: &[i8]) -> i32 {
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
    {
        let (words, tail) = x.as_chunks::<4>();
        let mut sum = 0i32;
        for &[b0, b1, b2, b3] in words {
            let word = u32::from_le_bytes([b0 as u8, b1 as u8, b2 as u8, b3 as u8]);
            sum = dsp::square_sum_word(sum, word);
        }
        sum + portable_squared_norm(tail)
    }
    #[cfg(not(all(lara_attn_dsp, not(lara_attn_helium))))]
    {
        portable_squared_norm(x)
    }
}

/// `|x|²` of a row widened by [`widen_bytes`] (its padding zeros add nothing): the sum of
/// the squares of its `i16` halves, four words per turn (`LDM`, `SMLAD` of a word with
/// itself), the same integer sum as [`squared_norm`] of the row.
#[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
#[inline(always)]
pub(crate) fn pair_squared_norm(pairs: &[i32]) -> i32 {
    let (quads, tail) = pairs.as_chunks::<4>();
    let mut sum = dsp::square_sum_quads(quads);
    for &word in tail {
        let (low, high) = halves(word);
        sum += low * low + high * high;
    }
    sum
}

/// `|x|²` of an `i8` row, one element at a time.
#[cfg_attr(not(lara_attn_compact), inline)]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn portable_squared_norm(x: &[i8]) -> i32 {
    x.iter().map(|&v| i32::from(v) * i32::from(v)).sum()
}

/// [`squared_norm`] against [`portable_squared_norm`] on every length from 1 to 40 (extreme
/// and mixed values): the first length that differs, if any.
fn check_squared_norms() -> Option<usize> {
    let data: [i8; 40] = core::array::from_fn(|i| match i % 5 {
        0 => -128,
        1 => 127,
        k => ((i * 37 + k * 11) % 256) as u8 as i8,
    });
    (1..=data.len()).find(|&len| {
        let x = data.get(..len).unwrap_or_default();
        squared_norm(x) != portable_squared_norm(x)
    })
}

/// Compares every variant of the inner loops this machine can run ([`dot_blocks`],
/// [`pair_dot_blocks`], [`accumulate_rows`]: this target's, and on hosts the AVX2 or NEON ones
/// its CPU has) with the portable ones on every length from 1 to 40, on fixed pseudo-random data
/// with extreme values; the first length that differs, if any. For devices, where the tests
/// cannot run (the firmware example calls it).
pub(crate) fn check_inner_loops() -> Option<usize> {
    let checked = Loops::available()
        .find_map(check_loops)
        .or_else(check_squared_norms);
    // the DSP value blocks (with their fallback to the portable loop for the other blocks),
    // and built for size the blocks by slots
    #[cfg(any(all(lara_attn_dsp, not(lara_attn_helium)), lara_attn_compact))]
    let checked = checked.or_else(|| {
        let mut seed = 0x6c07_8965u32;
        check_value_blocks(&mut || xorshift32(&mut seed), |v, dim, keys, out| {
            pack_value_blocks(v, dim, keys, out);
            true
        })
    });
    checked
}

/// [`check_inner_loops`] for one variant: every length from 1 to 40 (every parity of the
/// unrolled loops) with one to [`CHECK_BLOCKS`] blocks or rows (whole groups of four and every
/// tail after them; shorter shared rows for more blocks), into dirty outputs and accumulators
/// whose words past the whole blocks or rows must be left alone.
fn check_loops(loops: Loops) -> Option<usize> {
    let mut seed = 0x2545_f491u32;
    let mut next = move || xorshift32(&mut seed);
    const MAX_LEN: usize = 40;
    let mut blocks = [0i32; 3 * 2 * MAX_LEN];
    let mut shared = [0i32; MAX_LEN];
    let mut bytes = [0i8; MAX_LEN];
    let (mut out, mut expected) = ([0i32; CHECK_WORDS], [0i32; CHECK_WORDS]);
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
        // words past the whole blocks or rows of the output
        let tail = len % ROWS;
        let mut dirty = |out: &mut [i32; CHECK_WORDS], expected: &mut [i32; CHECK_WORDS]| {
            for (o, e) in out.iter_mut().zip(expected.iter_mut()) {
                // (an accumulator's sums stay within i32: 2^28 plus at most 2^25)
                let garbage = next() as i32 >> 3;
                (*o, *e) = (garbage, garbage);
            }
        };
        for count in 1..=CHECK_BLOCKS {
            let fits = (1..=len / CHUNK)
                .rev()
                .map(|chunks| chunks * CHUNK)
                .find(|&elements| count * block_words(elements) <= blocks.len());
            if let Some(elements) = fits {
                let x = &bytes[..elements];
                dirty(&mut out, &mut expected);
                dot_blocks(loops, &blocks, x, &mut out[..count * ROWS + tail]);
                portable_dot_blocks(&blocks, x, &mut expected[..count * ROWS + tail]);
                if out != expected {
                    return Some(len);
                }
                // (Helium: two sets of blocks in one go, LARA's query rows; the second one block
                // on, read only, into its own sums)
                #[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
                if let Some(second) = blocks.get(block_words(elements)..)
                    && count * block_words(elements) <= second.len()
                {
                    let rows = count * ROWS + tail;
                    let (mut out2, mut expected2) = ([5i32; CHECK_WORDS], [5i32; CHECK_WORDS]);
                    dirty(&mut out, &mut expected);
                    let outs = (&mut out[..rows], &mut out2[..rows]);
                    Dots2::new(loops, (&blocks, second), elements, outs).run(x);
                    portable_dot_blocks(&blocks, x, &mut expected[..rows]);
                    portable_dot_blocks(second, x, &mut expected2[..rows]);
                    if out != expected || out2 != expected2 {
                        return Some(len);
                    }
                    // (the second set as i8 blocks: q̄ᵀ's, multiples of 128, narrowed; its
                    // sums divided by 128, for rows of two or four chunks)
                    let mut t_blocks = [0i32; 3 * 2 * MAX_LEN];
                    let words = count * block_words(elements);
                    // (each half down to a multiple of 128, at most 127 · 128)
                    let t = |half: i32| (half & !127).min(127 * 128);
                    for (t_word, &word) in t_blocks.iter_mut().zip(second) {
                        *t_word = pair(t(i32::from(word as i16)), t(word >> 16));
                    }
                    let mut narrowed = [0i32; 3 * MAX_LEN];
                    let t_blocks = t_blocks.get(..words).unwrap_or_default();
                    if crate::int8::helium::narrow_blocks(t_blocks, &mut narrowed, elements) {
                        dirty(&mut out, &mut expected);
                        out2 = [5; CHECK_WORDS];
                        expected2 = out2;
                        let outs = (&mut out[..rows], &mut out2[..rows]);
                        let mut dots = Dots2::new(loops, (&blocks, t_blocks), elements, outs);
                        if !dots.bytes(&narrowed) {
                            return Some(len);
                        }
                        dots.run(x);
                        portable_dot_blocks(&blocks, x, &mut expected[..rows]);
                        portable_dot_blocks(t_blocks, x, &mut expected2[..rows]);
                        for sum in &mut expected2[..count * ROWS] {
                            *sum >>= 7;
                        }
                        if out != expected || out2 != expected2 {
                            return Some(len);
                        }
                    }
                }
                // (the DSP cores: the dot products with the row widened on the way, and the
                // pair loop from the widened row)
                #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
                {
                    let mut wide = [0x5a5a_5a5ai32; MAX_LEN / 2 + 1];
                    dirty(&mut out, &mut expected);
                    let rows = count * ROWS + tail;
                    let pairs = dot_widened(loops, &blocks, x, &mut wide, &mut out[..rows]);
                    portable_dot_blocks(&blocks, x, &mut expected[..rows]);
                    let mut again = out;
                    match pairs {
                        Some(pairs) => pair_dot_blocks(loops, &blocks, pairs, &mut again[..rows]),
                        None => return Some(len),
                    }
                    let untouched = wide[elements / 2..].iter().all(|&w| w == 0x5a5a_5a5a);
                    let norm = pair_squared_norm(&wide[..elements / 2]);
                    if out != expected
                        || again != expected
                        || !untouched
                        || norm != portable_squared_norm(x)
                    {
                        return Some(len);
                    }
                    // two ranges of blocks in one go: the second one block on (it overlaps
                    // the first: read only), one to count blocks, into its own sums
                    let words = block_words(elements);
                    let second = &blocks[words..];
                    let count2 = 1 + len % count.min(second.len() / words).max(1);
                    let (mut out2, mut expected2) =
                        ([3i32; 4 * CHECK_BLOCKS + 3], [3i32; 4 * CHECK_BLOCKS + 3]);
                    dirty(&mut out, &mut expected);
                    dot_widened2(
                        loops,
                        (&blocks, second),
                        x,
                        &mut wide,
                        (&mut out[..rows], &mut out2[..count2 * ROWS]),
                    );
                    portable_dot_blocks(&blocks, x, &mut expected[..rows]);
                    portable_dot_blocks(second, x, &mut expected2[..count2 * ROWS]);
                    if out != expected || out2 != expected2 {
                        return Some(len);
                    }
                    // the same with the lengths checked once (LARA's query loop): the whole
                    // blocks' sums, the tail left alone
                    #[cfg(not(lara_attn_compact))]
                    {
                        let (mut sums, mut sums2) = ([7i32; CHECK_WORDS], [7i32; 4 * CHECK_BLOCKS]);
                        let outs = (&mut sums[..rows], &mut sums2[..count2 * ROWS]);
                        let mut dots =
                            Widened2::new(loops, (&blocks, second), len, &mut wide, outs);
                        dots.run(x);
                        let whole = count * ROWS;
                        if sums[..whole] != expected[..whole]
                            || sums[whole..].iter().any(|&s| s != 7)
                            || sums2[..count2 * ROWS] != expected2[..count2 * ROWS]
                        {
                            return Some(len);
                        }
                    }
                }
                #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
                {
                    let mut wide = [0x5a5a_5a5ai32; MAX_LEN / 2 + 1];
                    let Some(pairs) = widen_bytes(x, &mut wide) else {
                        return Some(len);
                    };
                    dirty(&mut out, &mut expected);
                    pair_dot_blocks(loops, &blocks, pairs, &mut out[..count * ROWS + tail]);
                    portable_dot_blocks(&blocks, x, &mut expected[..count * ROWS + tail]);
                    if out != expected || wide[elements / 2..].iter().any(|&w| w != 0x5a5a_5a5a) {
                        return Some(len);
                    }
                }
            }
            let words = len.min(blocks.len() / (ROWS * count)) / (CHUNK / 2) * (CHUNK / 2);
            let x = &shared[..words];
            if !x.is_empty() {
                dirty(&mut out, &mut expected);
                pair_dot_blocks(loops, &blocks, x, &mut out[..count * ROWS + tail]);
                portable_pair_dot_blocks(&blocks, x, &mut expected[..count * ROWS + tail]);
                if out != expected {
                    return Some(len);
                }
                // (the DSP and Helium cores: LARA's query output, the sums requantised block
                // by block, against the portable sums and requantisation; shifts from
                // saturating to small values, any mantissa)
                #[cfg(all(lara_attn_dsp, not(lara_attn_compact)))]
                if matches!(loops.0, Variant::Target)
                    && (matches!(x.len(), 4 | 8)
                        || cfg!(lara_attn_helium) && matches!(x.len(), 12 | 16))
                {
                    let rows = count * ROWS;
                    for shift in [1u32, 9, 17, 23, 24, 30] {
                        // (a random word of the blocks as the mantissa)
                        let mantissa = blocks.get(len + shift as usize).map_or(1, |&w| w);
                        let parts = (mantissa, 1 << (shift - 1), shift);
                        let mut got = [0x55i8; 4 * CHECK_BLOCKS + 1];
                        let mut want = got;
                        for (w, &s) in want.iter_mut().zip(&expected[..rows]) {
                            let high = ((i64::from(s) * i64::from(parts.0)) >> 32) as i32;
                            *w = ((high + parts.1) >> parts.2).clamp(-128, 127) as i8;
                        }
                        #[cfg(not(lara_attn_helium))]
                        let done = pair_dot_i8(loops, &blocks, x, &mut got[..rows], parts);
                        #[cfg(lara_attn_helium)]
                        let done = PairDotI8::new(loops, &blocks, x.len(), rows)
                            .is_some_and(|dots| dots.run(x, &mut got[..rows], parts));
                        if !done || got != want {
                            return Some(len);
                        }
                    }
                }
            }
            let rows = count.min(shared.len() / WEIGHT_WORDS);
            // a longer weight slice than the rows of `acc` (and the reverse): the shorter counts
            let (acc_rows, weight_rows) = if len % 2 == 0 {
                (rows, (rows + 1).min(shared.len() / WEIGHT_WORDS))
            } else {
                (rows + 1, rows)
            };
            let weights = &shared[..weight_rows * WEIGHT_WORDS];
            let values = &blocks[len..len + VALUE_BLOCK_WORDS];
            dirty(&mut out, &mut expected);
            let acc_words = (acc_rows * ROWS + tail).min(CHECK_WORDS);
            accumulate_rows(loops, &mut out[..acc_words], weights, values);
            let used = acc_rows.min(weight_rows);
            portable_accumulate_rows(&mut expected[..acc_words], weights, values, used);
            if out != expected {
                return Some(len);
            }
            // (Helium: every group in one go, one to three groups of the rows, against a
            // group at a time; the words past them left alone)
            #[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
            {
                let (groups, group) = (1 + len % 3, rows * ROWS);
                let acc_words = groups * group;
                if rows > 0 && acc_words <= CHECK_WORDS {
                    let weights = &shared[..rows * WEIGHT_WORDS];
                    let values = &blocks[len..len + groups * VALUE_BLOCK_WORDS];
                    dirty(&mut out, &mut expected);
                    let done =
                        accumulate_groups(loops, &mut out[..acc_words], group, weights, values);
                    for (acc, values) in expected[..acc_words]
                        .chunks_exact_mut(group)
                        .zip(values.chunks_exact(VALUE_BLOCK_WORDS))
                    {
                        portable_accumulate_rows(acc, weights, values, rows);
                    }
                    if !done || out != expected {
                        return Some(len);
                    }
                }
            }
        }
    }
    None
}

/// LARA's densities' sums (`density_sums` of the DSP or Helium loops: `(Σ mu·w, Σ mu²)` of row
/// `w_row` of the byte block `w` and row `mu_row` of `mu`) against the portable sums by slots:
/// byte blocks of one to ten chunks (sums past `2^32`), every pair of rows, the ends of the
/// `i16` operands; `None`, or the first chunk count that differs.
#[cfg(any(lara_attn_dsp, lara_attn_helium))]
pub(crate) fn check_density_sums(
    mut next: impl FnMut() -> u32,
    density_sums: impl Fn(&[i32], usize, &[i32], usize) -> (i64, i64),
) -> Option<usize> {
    const CHUNK_WORDS: usize = CHUNK * ROWS / 2;
    let mut blocks = [[0i32; 10 * CHUNK_WORDS]; 2];
    for chunks in 1..=10usize {
        for word in blocks.iter_mut().flatten() {
            let mut half = || match next() % 4 {
                0 => -(1 << 14),
                1 => 1 << 14,
                _ => (next() % 32769) as i32 - 16384,
            };
            *word = pair(half(), half());
        }
        let [w, mu] = &blocks;
        let words = chunks * CHUNK_WORDS;
        for (w_row, mu_row) in (0..ROWS * ROWS).map(|i| (i / ROWS, i % ROWS)) {
            let sums = density_sums(&w[..words], w_row, &mu[..words], mu_row);
            let mut expected = (0i64, 0i64);
            for e in 0..chunks * CHUNK {
                let slot = |block: &[i32], r| i64::from(get_slot(block, byte_slot(r, e)));
                let (w_e, mu_e) = (slot(w, w_row), slot(mu, mu_row));
                expected = (expected.0 + mu_e * w_e, expected.1 + mu_e * mu_e);
            }
            if sums != expected {
                return Some(chunks);
            }
        }
    }
    None
}

/// `pack` (a target's [`pack_value_blocks`]; `false`, blocks it leaves to its caller, counts
/// as a difference) against [`portable_pack_value_blocks`]: masks, the last keys, every
/// `value_dim` to 40, an `out` of whole blocks and one a partial block longer; `None`, or the
/// first `value_dim` that differs.
#[cfg(any(lara_attn_dsp, lara_attn_helium, lara_attn_compact))]
pub(crate) fn check_value_blocks(
    next: &mut impl FnMut() -> u32,
    mut pack: impl FnMut(&[i8], usize, (usize, [bool; KEY_BLOCK]), &mut [i32]) -> bool,
) -> Option<usize> {
    let mut values = [0i8; 19 * 40];
    for v in values.iter_mut() {
        *v = match next() % 6 {
            0 => -128,
            1 => 127,
            _ => next() as i8,
        };
    }
    for value_dim in 1..=40usize {
        let keys = values.len() / value_dim;
        for first in [0, 5, keys.saturating_sub(KEY_BLOCK), keys.saturating_sub(3)] {
            let bits = next();
            let counted: [bool; KEY_BLOCK] =
                core::array::from_fn(|jj| first % 2 == 0 || bits >> jj & 1 == 1);
            let groups = value_dim.div_ceil(ROWS);
            for words in [
                groups * VALUE_BLOCK_WORDS,
                (groups + 1) * VALUE_BLOCK_WORDS - 3,
            ] {
                let mut ours = [0x5555_5555i32; 12 * VALUE_BLOCK_WORDS];
                let mut expected = ours;
                let v = &values[..keys * value_dim];
                let done = pack(v, value_dim, (first, counted), &mut ours[..words]);
                portable_pack_value_blocks(v, value_dim, (first, counted), &mut expected[..words]);
                if !done || ours != expected {
                    return Some(value_dim);
                }
            }
        }
    }
    None
}

/// Most blocks (and rows) of [`check_loops`]: two whole groups of four and one more.
const CHECK_BLOCKS: usize = 9;

/// Words of the outputs and accumulators of [`check_loops`].
const CHECK_WORDS: usize = (CHECK_BLOCKS + 1) * ROWS + ROWS - 1;

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
            let mut x_pairs = vec![0i32; pair_row_words(len)];
            for (e, &v) in x.iter().enumerate() {
                set_slot(&mut x_pairs, e, i32::from(v));
            }
            for loops in Loops::available() {
                let name = loops.name();
                let mut out = vec![-1i32; 8];
                dot_blocks(loops, &blocks, padded_x, &mut out);
                assert_eq!(out, plain, "bytes, len {len}, {name}");
                let mut out = vec![-1i32; 8];
                pair_dot_blocks(loops, &pairs, &x_pairs, &mut out);
                assert_eq!(out, plain, "pairs, len {len}, {name}");
            }
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
        let mut checked = 0;
        for loops in Loops::available() {
            assert_eq!(check_loops(loops), None, "loops {}", loops.name());
            checked += 1;
        }
        // the host variants this CPU has are among them
        #[cfg(target_arch = "x86_64")]
        if Backend::Avx2.is_available() {
            assert!(Loops::available().any(|l| l.name() == "avx2"));
            assert!(checked >= 2);
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        assert!(Loops::available().any(|l| l.name() == "neon"));
        assert!(checked >= 1);
    }

    #[test]
    fn loops_follow_the_backend() {
        for backend in Backend::ALL {
            let Some(available) = Available::new(backend) else {
                continue;
            };
            let name = Loops::for_backend(available).name();
            let expected = match backend {
                Backend::Avx2 => "avx2",
                Backend::Avx512 if Backend::Avx2.is_available() => "avx2",
                Backend::Neon => "neon",
                _ => "target",
            };
            assert_eq!(name, expected, "{backend}");
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
            let start: Vec<i32> = (0..rows * 4).map(|i| i as i32 * 1000 - 7).collect();
            let mut expected = start.clone();
            for c in 0..rows {
                for t in 0..4 {
                    for j in 0..KEY_BLOCK {
                        expected[c * 4 + t] += weights[c * KEY_BLOCK + j] * values[t][j];
                    }
                }
            }
            for loops in Loops::available() {
                let mut acc = start.clone();
                accumulate_rows(loops, &mut acc, &weight_rows, &value_block);
                assert_eq!(acc, expected, "rows {rows}, {}", loops.name());
            }
        }
    }
}
