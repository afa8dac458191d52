//! Helium (MVE) loops of the int8 fixed-point `2^-t`
//! ([`exp2_neg`](super::fixed_point::exp2_neg)) on 4 lanes, for the cores with
//! `cfg(lara_attn_helium)`: the per-element scalar work of the streaming softmax's block weights
//! and of LARA's query pass (`T`, `α`, the logits, the weights and their packing), which LLVM does
//! not vectorise (a table lookup, `u64`/`i64` products, shifts by per-element amounts). The same
//! bits as the portable code, lane by lane:
//!
//! * the table of the fraction's 1,024 buckets: a gather (`VLDRW.U32 q, [r, q, UXTW #2]`);
//! * `((x >> (shift − 1)) + 1) >> 1`: `VRSHL.U32` by `−shift`, a rounding right shift
//!   `(x + 2^(shift − 1)) >> shift` (the same value for every `shift ≥ 1`, and 0 for `x ≤ 2^30`
//!   once `shift ≥ 32`), with `shift` capped at 32 (the shift amount is a signed byte);
//! * `mul_high_round`: `VRMULH.S32`; [`to_logit`](super::fixed_point::to_logit) (`SSAT #29`):
//!   `VQSHL.S32 #3` then `VSHR.S32 #3`.
//!
//! Stable Rust has no MVE intrinsics, and `asm!` cannot take `q` registers as operands without
//! NEON: each loop is one `asm!` block with its vectors in `q0`–`q7` (declared clobbered as
//! `s0`–`s31`, which alias them), tail-predicated (`WLSTP`/`LETP`: the lanes past the end are
//! neither loaded nor stored nor summed). `check` compares them with the portable code (the
//! firmware example runs it on the core).
#![allow(unsafe_code)]

#[cfg(not(lara_attn_compact))]
use super::fixed_point::{INV_LN2_Q30, INVERSE_TABLE, LOG2_TABLE, Multiplier, to_logit_wide};
use super::fixed_point::{
    POW2_MIDPOINTS, Scale32, divide_normalized, exp2_neg_branchless, sweep_t_rows,
    sweep_weight_blocks, to_logit, weight_q15,
};
use crate::simd::int8::{CHUNK, KEY_BLOCK, ROW_STEP, ROWS, VALUE_BLOCK_WORDS};
use core::arch::asm;

/// The body of the `2^-t` loops: `q1 = exp2_neg(q0, bits)` lane by lane, with `q6 = bits + 2`
/// (the cap of the whole part: a shift of 32, where every result is already 0) and
/// `q7 = bits − 30` in every lane, `$table` (by default `{table}`) the address of
/// `POW2_MIDPOINTS`; clobbers `q0`–`q4`.
macro_rules! exp2_lanes {
    () => {
        exp2_lanes!("{table}")
    };
    ($table:literal) => {
        concat!(
            // −shift = (bits − 30) − min(whole, bits + 2): shift = 30 − bits + whole, capped at 32
            "vshr.u32 q4, q0, #16\n",
            "vmin.u32 q4, q4, q6\n",
            "vsub.i32 q4, q7, q4\n",
            // 2^(-fraction) in Q30 from the table of its bucket j = (t >> 6) & 1023 (gather)
            "vshl.i32 q2, q0, #16\n",
            "vshr.u32 q2, q2, #22\n",
            "vldrw.u32 q1, [",
            $table,
            ", q2, uxtw #2]\n",
            // round(x / 2^shift), half up
            "vrshl.u32 q1, q1, q4\n",
        )
    };
}

/// One `asm!` block of a `2^-t` loop for `bits`: the template, its operands, then the shared
/// ones (the table, the constants of [`exp2_lanes!`] through `{bits2}`, `{bits30}`)
/// and the clobbers (`q0`–`q7`, `lr`).
macro_rules! exp2_asm {
    ($bits:expr, [$($template:expr),* $(,)?], $($operands:tt)*) => {
        asm_clobbering_s0_s31!(
            "vdup.32 q6, {bits2}",
            "vdup.32 q7, {bits30}",
            $($template,)*
            $($operands)*
            table = in(reg) POW2_MIDPOINTS.as_ptr(),
            bits2 = in(reg) $bits + 2,
            bits30 = in(reg) ($bits as i32 - 30),
            out("lr") _,
            options(nostack),
        )
    };
}

/// [`t_row`]'s lanes: `q1 = T = 2^(−max(reference − round((t << pre) · value / 2^32), 0))` in
/// `Q27` from `[{t}]` (stored back, both pointers advanced) and `[{r}]`, added to `r0`; `value`
/// in every lane of `q5`, `$pre` the pre-shift's register; clobbers `q0`–`q4`. (No `ssat29`:
/// `T`'s logits are within `±2^27`, where it is the identity; see [`t_row`].)
macro_rules! t_lanes {
    ($pre:literal) => {
        concat!(
            "vldrw.u32 q0, [{t}]\n",
            "vshl.u32 q0, ",
            $pre,
            "\n",
            "vrmulh.s32 q0, q0, q5\n",
            // max(reference − logit, 0) (wrapping difference; the negative lanes to 0 by an
            // unsigned saturating shift by 0)
            "vldrw.u32 q1, [{r}], #16\n",
            "vsub.i32 q0, q1, q0\n",
            "vqshlu.s32 q0, q0, #0\n",
            exp2_lanes!(),
            "vstrw.32 q1, [{t}], #16\n",
            "vaddva.u32 r0, q1\n",
        )
    };
}

/// [`query_logits`]' lanes: `ℓ = ssat29(round((ℓ << pre) · value / 2^32) + bias)` (the sum
/// saturating) at `[{l}]` with the biases at `[{b}]` (both pointers advanced), the largest into
/// `{max}`; `value` in every lane of `q3`, `$pre` the pre-shift's register; clobbers `q0`, `q1`.
macro_rules! logit_lanes {
    ($pre:literal) => {
        concat!(
            "vldrw.u32 q0, [{l}]\n",
            "vshl.u32 q0, ",
            $pre,
            "\n",
            "vrmulh.s32 q0, q0, q3\n",
            "vldrw.u32 q1, [{b}], #16\n",
            "vqadd.s32 q0, q0, q1\n",
            "vqshl.s32 q0, q0, #3\n",
            "vshr.s32 q0, q0, #3\n",
            "vstrw.32 q0, [{l}], #16\n",
            "vmaxv.s32 {max}, q0\n",
        )
    };
}

/// [`alphas`]' spread: `q1 = (p + 2^15) >> 16` for `p = alpha_coeff · d` (`d` in `q0`,
/// `alpha_coeff` in every lane of `q5`): bits 16 to 47 of `p` plus its bit 15, the low half of
/// the high word (`VMULH.S32`) and the high half of the low word (`VMUL.I32`) joined by `VSRI`;
/// clobbers `q2`.
macro_rules! spread_lanes {
    () => {
        concat!(
            "vmulh.s32 q1, q0, q5\n",
            "vmul.i32 q2, q0, q5\n",
            "vshl.i32 q1, q1, #16\n",
            "vsri.32 q1, q2, #16\n",
            "vshl.i32 q2, q2, #16\n",
            "vshr.u32 q2, q2, #31\n",
            "vadd.i32 q1, q1, q2\n",
        )
    };
}

/// LARA's proposal densities: for row `w_row` of the byte block `w` and row `mu_row` of the byte
/// block `mu` (blocks of the same length, whole chunks of 16 words):
/// `(Σ_e mu_e · w_e, Σ_e mu_e²)` over the elements of the two rows (`VMLALDAVA.S16`, eight `i16`
/// products added to a 64-bit sum; a row's chunk is 8 contiguous halfwords, the padding elements
/// are zeros). `(0, 0)` for blocks that do not fit.
#[inline(always)]
pub(crate) fn density_sums(w: &[i32], w_row: usize, mu: &[i32], mu_row: usize) -> (i64, i64) {
    const CHUNK_WORDS: usize = CHUNK * ROWS / 2;
    let (mut w_low, mut w_high, mut m_low, mut m_high) = (0u32, 0u32, 0u32, 0u32);
    if w.len() != mu.len()
        || w.is_empty()
        || !w.len().is_multiple_of(CHUNK_WORDS)
        || w_row >= ROWS
        || mu_row >= ROWS
    {
        return (0, 0);
    }
    // SAFETY: w and mu are whole chunks of 16 words (at least one) of the same length; the loop
    // (one turn per chunk) reads words 4·row .. 4·row + 4 of each chunk (rows < 4). The block
    // writes only its inout operands, q0, q1 (declared as s0–s7), lr and the flags; no stack.
    unsafe {
        asm!(
            "dls lr, {chunks}",
            "1:",
            "vldrh.u16 q0, [{pw}], #{stride}",
            "vldrh.u16 q1, [{pm}], #{stride}",
            "vmlaldava.s16 r0, r1, q1, q0",
            "vmlaldava.s16 r2, r3, q1, q1",
            "le lr, 1b",
            chunks = in(reg) w.len() / CHUNK_WORDS,
            stride = const 4 * CHUNK_WORDS,
            pw = inout(reg) w.as_ptr().add(w_row * CHUNK / 2) => _,
            pm = inout(reg) mu.as_ptr().add(mu_row * CHUNK / 2) => _,
            inout("r0") w_low,
            inout("r1") w_high,
            inout("r2") m_low,
            inout("r3") m_high,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            options(nostack),
        );
    }
    (
        (u64::from(w_high) << 32 | u64::from(w_low)) as i64,
        (u64::from(m_high) << 32 | u64::from(m_low)) as i64,
    )
}

/// One chunk of [`DensityRows`]' four landmarks: `$op` (`VMLALDAV` for the first chunk,
/// `VMLALDAVA` after it) of rows 1, 2, 3, 0 of the landmarks' chunk (from `[r10]`, advanced)
/// with `$a`, `$b`, `$c`, `$d` into the sums `r2:r3`, `r4:r5`, `r8:r9`, `r0:r1` (low, high);
/// clobbers `q0`–`q3`.
#[cfg(not(lara_attn_compact))]
macro_rules! density_chunk {
    ($op:literal, $a:literal, $b:literal, $c:literal, $d:literal) => {
        concat!(
            "vldrh.u16 q0, [r10, #16]\n",
            $op,
            " r2, r3, q0, ",
            $a,
            "\n",
            "vldrh.u16 q1, [r10, #32]\n",
            $op,
            " r4, r5, q1, ",
            $b,
            "\n",
            "vldrh.u16 q2, [r10, #48]\n",
            $op,
            " r8, r9, q2, ",
            $c,
            "\n",
            "vldrh.u16 q3, [r10], #64\n",
            $op,
            " r0, r1, q3, ",
            $d,
            "\n",
        )
    };
}

/// [`DensityRows`]' loop over the chunks of a block of four landmarks (at `[r10]`, advanced to
/// the next block): [`density_chunk!`] of the first chunk, then `r7` more (`lr` the count);
/// `$load` before each chunk (the sample's chunk), `$a` to `$d` the other operands.
#[cfg(not(lara_attn_compact))]
macro_rules! density_block {
    ($load:literal, $a:literal, $b:literal, $c:literal, $d:literal) => {
        concat!(
            $load,
            density_chunk!("vmlaldav.s16", $a, $b, $c, $d),
            "wls lr, r7, 3f\n",
            "2:\n",
            $load,
            density_chunk!("vmlaldava.s16", $a, $b, $c, $d),
            "le lr, 2b\n",
            "3:\n",
        )
    };
}

/// [`DensityRows::run`]'s high word of one landmark from its dot product `$high:$low`:
/// `(dot · 2m + term) >> 32` (mod `2^32`), `2m` in `r6`, the term (low, high) from `[r12]`
/// (advanced), stored at `[r11]` (advanced): `term + dot_low · 2m` (`UMLAL`, unsigned), then
/// `+ dot_high · 2m` in the high word (`MLA`); clobbers `r7`, `lr`.
#[cfg(not(lara_attn_compact))]
macro_rules! density_high {
    ($low:literal, $high:literal) => {
        concat!(
            "ldrd r7, lr, [r12], #8\n",
            "umlal r7, lr, ",
            $low,
            ", r6\n",
            "mla lr, ",
            $high,
            ", r6, lr\n",
            "str lr, [r11], #4\n",
        )
    };
}

/// [`DensityRows::run`]'s end of a block of four landmarks: their high words
/// ([`density_high!`], `2m` from `[sp, #20]`), then the mu pointer against mu's end
/// (`[sp, #28]`; the caller branches on the flags).
#[cfg(not(lara_attn_compact))]
macro_rules! density_landmarks {
    () => {
        concat!(
            "ldr r6, [sp, #20]\n",
            density_high!("r0", "r1"),
            density_high!("r2", "r3"),
            density_high!("r4", "r5"),
            density_high!("r8", "r9"),
            "ldr r7, [sp, #28]\n",
            "cmp r10, r7\n",
        )
    };
}

/// `q0 = log2_l16(q0) − 31 · 2^16` lane by lane (`L16`; the portable bits: `VCLZ`, the
/// tables' gathers, the products' bits 30 to 61 from `VMULH` (or `VQDMULH`, bits 31 to 62) and
/// `VMUL` joined by `VSRI`, `x / 3` as `mulhs(x, 0x5555_5556) + (x < 0)`), with the constants
/// at `[{k}]`: `2^30`, `0x2AAA_AAAB`, `2^30 / ln 2`, then at words 6 and 7 the tables'
/// addresses ([`INVERSE`], [`LOG2`]); clobbers `q1`–`q5` and `{t}`.
#[cfg(not(lara_attn_compact))]
macro_rules! log2_lanes {
    () => {
        concat!(
            // x = max(x, 1), normalized = x << zeros, j its bits 27 to 30
            "vmov.i32 q1, #1\n",
            "vmax.u32 q0, q0, q1\n",
            "vclz.i32 q1, q0\n",
            "vshl.u32 q0, q0, q1\n",
            "vshl.i32 q2, q0, #1\n",
            "vshr.u32 q2, q2, #28\n",
            "ldr {t}, [{k}, #24]\n",
            "vldrw.u32 q3, [{t}, q2, uxtw #2]\n",
            "ldr {t}, [{k}, #28]\n",
            "vldrw.u32 q4, [{t}, q2, uxtw #2]\n",
            // z = ((normalized · inverse) >> 31) − 2^30 (unsigned product)
            "vmulh.u32 q2, q0, q3\n",
            "vmul.i32 q3, q0, q3\n",
            "vshl.i32 q2, q2, #1\n",
            "vsri.32 q2, q3, #31\n",
            "ldr {t}, [{k}]\n",
            "vsub.i32 q2, q2, {t}\n",
            // z2 = (z · z) >> 30; ln1p = z − z2 / 2 (z2 ≥ 0)
            "vmulh.s32 q0, q2, q2\n",
            "vmul.i32 q3, q2, q2\n",
            "vshl.i32 q0, q0, #2\n",
            "vsri.32 q0, q3, #30\n",
            "vshr.s32 q3, q0, #1\n",
            "vsub.i32 q5, q2, q3\n",
            // z3 = (z2 · z) >> 30; + z3 / 3 = mulhs(z3, 0x5555_5556) + (z3 < 0)
            "vmulh.s32 q3, q0, q2\n",
            "vmul.i32 q0, q0, q2\n",
            "vshl.i32 q3, q3, #2\n",
            "vsri.32 q3, q0, #30\n",
            "ldr {t}, [{k}, #4]\n",
            "vqdmulh.s32 q0, q3, {t}\n",
            "vadd.i32 q5, q5, q0\n",
            "vshr.u32 q0, q3, #31\n",
            "vadd.i32 q5, q5, q0\n",
            // z4 = (z3 · z) >> 30; − z4 / 4 (z4 ≥ 0)
            "vmulh.s32 q0, q3, q2\n",
            "vmul.i32 q3, q3, q2\n",
            "vshl.i32 q0, q0, #2\n",
            "vsri.32 q0, q3, #30\n",
            "vshr.s32 q0, q0, #2\n",
            "vsub.i32 q5, q5, q0\n",
            // (ln1p · 2^30 / ln 2) >> 30 (VQDMULH: the product >> 31)
            "ldr {t}, [{k}, #8]\n",
            "vqdmulh.s32 q0, q5, {t}\n",
            "vmul.i32 q3, q5, {t}\n",
            "vshl.i32 q0, q0, #1\n",
            "vsri.32 q0, q3, #30\n",
            // ((31 − zeros) << 16) + round((table + that) / 2^14), less 31 · 2^16
            "vadd.i32 q0, q0, q4\n",
            "vrshr.s32 q0, q0, #14\n",
            "vshl.i32 q1, q1, #16\n",
            "vsub.i32 q0, q0, q1\n",
        )
    };
}

/// LARA's proposal densities on Helium (`LM[c, c'] = s/2 · (2 W_c·mu_c' − |mu_c'|²)`), for a
/// multiplier `m · 2^-(32 + shift)` (`shift ≤ 30`): every sample's row in one `asm!` block, with
/// its largest logit, `Σ 2^(LM − max)` in `Q15` and `LM[c, c mod count]`. Per landmark `c'` the
/// term `round − |mu_c'|² · m` (`round = 2^(31 + shift)`, mod `2^64`) once, then `LM =
/// ssat29(((dot · 2m + term) >> 32) >> shift)`: `(2 dot − |mu|²) · m + round` mod `2^64`, the
/// bits of `Multiplier::apply` (which wraps alike) and `to_logit_wide`. Built by
/// [`new`](Self::new), which checks the blocks.
#[cfg(not(lara_attn_compact))]
pub(crate) struct DensityRows<'a> {
    /// The samples' byte blocks, `block` words each, whole chunks.
    w: &'a [i32],
    block: usize,
    /// The landmarks' byte blocks (`⌈count/4⌉` of them).
    mu: &'a [i32],
    /// The landmarks' terms (low, high words), `4 ⌈count/4⌉` pairs.
    terms: &'a [i32],
    /// A row's logits, `4 ⌈count/4⌉` (the first `count` live).
    lm: &'a mut [i32],
    /// Per group of four samples their sums of weights, `LM[c, c mod count]` and largest
    /// logits (three vectors).
    stats: &'a mut [i32],
    count: usize,
    samples: usize,
    /// `2m` and `shift`.
    parts: (u32, u32),
}

#[cfg(not(lara_attn_compact))]
impl<'a> DensityRows<'a> {
    /// The rows of `samples ≥ 1` samples (blocks `w` of `block` words) against `count ≥ 1`
    /// landmarks (blocks `mu`), the logits, terms and results in `logits` (`12 ⌈count/4⌉ + 3
    /// samples` words), for `high = Multiplier::high_word()`; `None` if they do not fit (a shift
    /// above 30 or a mantissa not below `2^30` included).
    pub(crate) fn new(
        (w, block): (&'a [i32], usize),
        (mu, count): (&'a [i32], usize),
        samples: usize,
        logits: &'a mut [i32],
        high: Option<(i64, i64, u32)>,
    ) -> Option<Self> {
        const CHUNK_WORDS: usize = CHUNK * ROWS / 2;
        let (m, round, shift) = high?;
        let rows = count.div_ceil(ROWS) * ROWS;
        let fits = block != 0
            && block.is_multiple_of(CHUNK_WORDS)
            && count != 0
            && samples != 0
            && shift <= 30
            && (1..1 << 30).contains(&m);
        if !fits {
            return None;
        }
        let w = w.get(..samples.div_ceil(ROWS) * block)?;
        let mu = mu.get(..rows / ROWS * block)?;
        let (lm, rest) = logits.split_at_mut_checked(rows)?;
        let (terms, rest) = rest.split_at_mut_checked(2 * rows)?;
        let stats = rest.get_mut(..12 * samples.div_ceil(ROWS))?;
        // |mu_c'|² of every landmark into its terms' words (64 bits)
        // SAFETY: mu is rows / 4 ≥ 1 whole blocks of block words (a non-zero multiple of 16,
        // checked above) and terms 2 · rows words. Per block the loop reads its chunks (the mu
        // pointer advanced 64 bytes a chunk, so it walks on to the next block) and writes its
        // four landmarks' sums (two words each, the pointer advanced), until the mu pointer
        // reaches the end of mu. r6 and r7 (the count of chunks after the first) are saved and
        // restored (8 bytes of stack). It writes only terms, the declared registers, q0–q3 (as
        // s0–s15) and the flags.
        unsafe {
            asm!(
                "push {{r6, r7}}",
                "mov r7, r0",
                "1:",
                density_block!("", "q0", "q1", "q2", "q3"),
                "strd r0, r1, [r12], #8",
                "strd r2, r3, [r12], #8",
                "strd r4, r5, [r12], #8",
                "strd r8, r9, [r12], #8",
                "cmp r10, r11",
                "bne 1b",
                "pop {{r6, r7}}",
                inout("r0") block / CHUNK_WORDS - 1 => _,
                out("r1") _,
                out("r2") _,
                out("r3") _,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                inout("r10") mu.as_ptr() => _,
                in("r11") mu.as_ptr().add(mu.len()),
                inout("r12") terms.as_mut_ptr() => _,
                out("lr") _,
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            );
        }
        for term in terms.chunks_exact_mut(2) {
            if let [low, high] = term {
                let squares = i64::from(*high) << 32 | i64::from(*low as u32);
                // round − |mu|² · m (wrapping)
                let wide = round.wrapping_sub(squares.wrapping_mul(m));
                (*low, *high) = (wide as i32, (wide >> 32) as i32);
            }
        }
        let parts = ((2 * m) as u32, shift);
        Some(DensityRows {
            w,
            block,
            mu,
            terms,
            lm,
            stats,
            count,
            samples,
            parts,
        })
    }

    /// The logits `LM[c, c']` of the last sample [`run`](Self::run) computed.
    pub(crate) fn logits(&self) -> &[i32] {
        self.lm.get(..self.count).unwrap_or_default()
    }

    /// Every sample's row `c` (`Σ weight_q15(max − LM)`, wrapping, as in [`weights_q15`],
    /// `LM[c, c mod count]` and the largest `LM`), then its balance and bias by
    /// [`density_biases`].
    pub(crate) fn run(&mut self, outputs: (&mut [i32], &mut [i32]), repeats: i32, mixture: bool) {
        const CHUNK_WORDS: usize = CHUNK * ROWS / 2;
        let (block, (m2, shift)) = (self.block, self.parts);
        let (stats, samples) = (self.stats.as_mut_ptr(), self.samples);
        // the asm block's frame (words; the mutable ones first): the sample's row of w, its
        // index in its block, its results, c mod count, then chunks − 1, 2m, −shift, mu's end,
        // count, the table, lm, mu, the terms, the results' end, the step from row 4 of a
        // block of w to the next block (bytes)
        let frame: [usize; 16] = [
            self.w.as_ptr() as usize,
            0,
            stats as usize,
            0,
            block / CHUNK_WORDS - 1,
            m2 as usize,
            shift.wrapping_neg() as usize,
            self.mu.as_ptr_range().end as usize,
            self.count,
            POW2_MIDPOINTS.as_ptr() as usize,
            self.lm.as_ptr() as usize,
            self.mu.as_ptr() as usize,
            self.terms.as_ptr() as usize,
            stats.wrapping_add(12 * (samples / 4) + samples % 4) as usize,
            4 * block - 4 * CHUNK_WORDS,
            0,
        ];
        // SAFETY: w holds ⌈samples/4⌉ blocks and mu ⌈count/4⌉ ≥ 1 blocks of block words (a
        // non-zero multiple of 16), terms 2 · 4 ⌈count/4⌉ words, lm 4 ⌈count/4⌉, the results
        // 12 ⌈samples/4⌉ (checked by new). Per sample c (until the results' pointer, at word
        // 12 ⌊c/4⌋ + c mod 4, reaches its place after the last sample: `samples` rows) and per
        // block of mu the loop reads its
        // chunks (16 words each, the mu pointer advanced 64 bytes a chunk, so it walks on to
        // the next block) and the chunks of w's row c (8 halfwords at word 4 · (c mod 4) of
        // each chunk of block ⌊c/4⌋, once a sample for blocks of four chunks: the row pointer
        // 16 bytes on a sample, past the block's last chunk after row 3), then reads 2 words of terms and writes one word of lm per
        // landmark (four a block), until the mu pointer reaches the end of mu; the
        // tail-predicated loops read and write lm[0 .. count], read lm[0 .. count] and the
        // diagonal lm[c mod count], and the sample's three words of results (that word and the
        // ones 4 and 8 words on, in its group's 12) are written. The
        // gathers read POW2_MIDPOINTS at indices masked to 0..1024 (its length). The frame is
        // copied to the stack under r6 and r7, which are saved and restored (72 bytes of
        // stack). It writes only lm, the results, the declared registers, q0–q7 (as s0–s31)
        // and the flags (VADDVA's sum in r2, an even register).
        unsafe {
            asm_clobbering_s0_s31!(
                "push {{r6, r7}}",
                "add r0, #32",
                "ldm r0, {{r1, r2, r3, r4, r5, r8, r9, r10}}",
                "push {{r1, r2, r3, r4, r5, r8, r9, r10}}",
                "sub r0, #32",
                "ldm r0, {{r1, r2, r3, r4, r5, r8, r9, r10}}",
                "push {{r1, r2, r3, r4, r5, r8, r9, r10}}",
                // the weights' cap (32767) and the constants of exp2_lanes! for bits = 15: 17
                // and 15 − 30
                // sample c: the high words (dot · 2m + term) >> 32, four landmarks a block
                "0:",
                "ldrd r11, r10, [sp, #40]",
                "ldr r6, [sp]",
                "ldr r12, [sp, #48]",
                "ldr r7, [sp, #16]",
                "cmp r7, #3",
                "bne 1f",
                // (blocks of four chunks: the sample's row in q4–q7)
                "vldrh.u16 q4, [r6]",
                "vldrh.u16 q5, [r6, #64]",
                "vldrh.u16 q6, [r6, #128]",
                "vldrh.u16 q7, [r6, #192]",
                "8:",
                density_chunk!("vmlaldav.s16", "q4", "q4", "q4", "q4"),
                density_chunk!("vmlaldava.s16", "q5", "q5", "q5", "q5"),
                density_chunk!("vmlaldava.s16", "q6", "q6", "q6", "q6"),
                density_chunk!("vmlaldava.s16", "q7", "q7", "q7", "q7"),
                density_landmarks!(),
                "bne 8b",
                "b 9f",
                // (any other number of chunks: a loop over them, the sample's chunk reloaded)
                "1:",
                "ldr r6, [sp]",
                "ldr r7, [sp, #16]",
                density_block!("vldrh.u16 q4, [r6], #64\n", "q4", "q4", "q4", "q4"),
                density_landmarks!(),
                "bne 1b",
                "9:",
                // the weights' cap (32767) and the constants of exp2_lanes! for bits = 15: 17
                // and 15 − 30
                "vmov.i32 q5, #0x7fff",
                "vmov.i32 q6, #17",
                "vmvn.i32 q7, #14",
                // LM = ssat29(high >> shift) (VQSHL #3 then VSHR #3) and the largest
                "ldr r3, [sp, #24]",
                "ldrd r5, r1, [sp, #32]",
                "ldr r0, [sp, #40]",
                "mov r4, #-2147483648",
                "mov r11, r0",
                "wlstp.32 lr, r5, 3f",
                "2:",
                "vldrw.u32 q0, [r0]",
                "vshl.s32 q0, r3",
                "vqshl.s32 q0, q0, #3",
                "vshr.s32 q0, q0, #3",
                "vstrw.32 q0, [r0], #16",
                "vmaxv.s32 r4, q0",
                "letp lr, 2b",
                "3:",
                // Σ min(2^-(max − LM), 32767) in Q15 (weight_q15)
                "movs r2, #0",
                "wlstp.32 lr, r5, 5f",
                "4:",
                "vldrw.u32 q0, [r11], #16",
                "vsub.i32 q0, q0, r4",
                "vneg.s32 q0, q0",
                exp2_lanes!("r1"),
                "vmin.u32 q1, q1, q5",
                "vaddva.u32 r2, q1",
                "letp lr, 4b",
                "5:",
                // the results, with LM[c, own]; own = (own + 1) mod count
                "ldrd r6, r0, [sp, #8]",
                "ldr r1, [sp, #40]",
                "ldr r3, [r1, r0, lsl #2]",
                "str r2, [r6]",
                "str r3, [r6, #16]",
                "str r4, [r6, #32]",
                "adds r0, #1",
                "cmp r0, r5",
                "it eq",
                "moveq r0, #0",
                "str r0, [sp, #12]",
                // the next row of w (16 bytes on, or past its block's last chunk after row 3)
                // and lane of the results (4 bytes on, or to the next group after lane 3)
                "ldrd r0, r1, [sp]",
                "adds r0, #16",
                "adds r6, #4",
                "adds r1, #1",
                "cmp r1, #4",
                "bne 6f",
                "ldr r2, [sp, #56]",
                "add r0, r2",
                "adds r6, #32",
                "movs r1, #0",
                "6:",
                "strd r0, r1, [sp]",
                "str r6, [sp, #8]",
                "ldr r0, [sp, #52]",
                "cmp r6, r0",
                "bne 0b",
                "add sp, #64",
                "pop {{r6, r7}}",
                inout("r0") frame.as_ptr() => _,
                out("r1") _,
                out("r2") _,
                out("r3") _,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
                out("r12") _,
                out("lr") _,
            );
        }
        density_biases(self.stats, samples, outputs, repeats, mixture);
    }
}

/// `(balance, bias)` of LARA's samples from their densities' results `stats` (groups of four
/// samples: their `Σ 2^(LM − max)` in `Q15`, `LM[c, c]` and largest `LM`), four at a time:
/// `lse = max + log2_l16(Σ) − 15 · 2^16`, `balance = exp2_neg(max(lse + repeats − LM[c, c], 0),
/// 27)`, `bias −= lse` (`mixture`) or `LM[c, c]` (saturating), the bits of the portable code
/// over the first `samples` (`log2_l16` lane by lane: `VCLZ`, the tables' gathers, the
/// products' bits 30 to 61 from `VMULH` and `VMUL` joined by `VSRI`, `x / 3` as
/// `mulhs(x, 0x5555_5556) + (x < 0)`).
#[cfg(not(lara_attn_compact))]
#[inline(always)]
pub(crate) fn density_biases(
    stats: &[i32],
    samples: usize,
    (balance, bias): (&mut [i32], &mut [i32]),
    repeats: i32,
    mixture: bool,
) {
    let n = samples.min(balance.len()).min(bias.len());
    if stats.len() < 12 * n.div_ceil(4) {
        return;
    }
    // the loop's constants (words): those of log2_lanes! (0 to 2, 6, 7), (31 − 15) · 2^16,
    // repeats, mixture, POW2_MIDPOINTS
    let constants: [usize; 9] = [
        1 << 30,
        0x2AAA_AAAB,
        INV_LN2_Q30 as usize,
        16 << 16,
        repeats as usize,
        usize::from(mixture),
        INVERSE.as_ptr() as usize,
        LOG2.as_ptr() as usize,
        POW2_MIDPOINTS.as_ptr() as usize,
    ];
    // SAFETY: the tail-predicated loop (n lanes, four a turn) reads groups of 12 words of
    // stats (12 ⌈n/4⌉ ≤ its length, checked; inactive lanes neither loaded nor stored), reads
    // and writes bias[0 .. n] and writes balance[0 .. n] (n ≤ both lengths) and reads the 9
    // constants; the gathers read INVERSE and LOG2 at indices 0..16 (bits 27 to 30 of a
    // word: their length) and POW2_MIDPOINTS at indices masked to 0..1024 (its length). The
    // block writes only balance, bias, q0–q7 (as s0–s31), lr, flags and its operands; no
    // stack.
    unsafe {
        asm_clobbering_s0_s31!(
            // the constants of exp2_lanes! for bits = 27: 29 and 27 − 30
            "vmov.i32 q6, #29",
            "vmvn.i32 q7, #2",
            "wlstp.32 lr, {n}, 2f",
            "1:",
            // log2_l16(Σ) − 31 · 2^16
            "vldrw.u32 q0, [{p}]",
            log2_lanes!(),
            // lse = max + that + (31 − 15) · 2^16
            "vldrw.u32 q1, [{p}, #32]",
            "vadd.i32 q0, q0, q1",
            "ldr {t}, [{k}, #12]",
            "vadd.i32 q5, q0, {t}",
            // log2 P = diagonal + (lse − diagonal) · mixture; bias −= log2 P (saturating)
            "vldrw.u32 q2, [{p}, #16]",
            "vsub.i32 q0, q5, q2",
            "ldr {t}, [{k}, #20]",
            "vmul.i32 q0, q0, {t}",
            "vadd.i32 q0, q0, q2",
            "vldrw.u32 q1, [{bias}]",
            "vqsub.s32 q1, q1, q0",
            "vstrw.32 q1, [{bias}], #16",
            // balance = exp2_neg(max(lse + repeats − diagonal, 0), 27)
            "ldr {t}, [{k}, #16]",
            "vadd.i32 q0, q5, {t}",
            "vsub.i32 q0, q0, q2",
            "vmov.i32 q1, #0",
            "vmax.s32 q0, q0, q1",
            "ldr {t}, [{k}, #32]",
            exp2_lanes!("{t}"),
            "vstrw.32 q1, [{balance}], #16",
            "adds {p}, #48",
            "letp lr, 1b",
            "2:",
            n = in(reg) n,
            p = inout(reg) stats.as_ptr() => _,
            k = in(reg) constants.as_ptr(),
            t = out(reg) _,
            bias = inout(reg) bias.as_mut_ptr() => _,
            balance = inout(reg) balance.as_mut_ptr() => _,
            out("lr") _,
            options(nostack),
        );
    }
}

/// `bias[c] = Running { reference, sum }.log_sum()` (`reference ⊕ log2_l16(sum) ⊖ 15 · 2^16`,
/// saturating) for the first `n` of `reference` and `sum` (the key pass's states), four lanes
/// at a time ([`log2_lanes!`]); `false`, nothing written, if a slice is shorter than `n`.
#[cfg(not(lara_attn_compact))]
#[inline(always)]
pub(crate) fn log_sums(bias: &mut [i32], (reference, sum): (&[i32], &[i32]), n: usize) -> bool {
    if bias.len() < n || reference.len() < n || sum.len() < n {
        return false;
    }
    // the constants of log2_lanes! (words 0 to 2, 6, 7), 31 · 2^16 and 15 · 2^16
    let constants: [usize; 8] = [
        1 << 30,
        0x2AAA_AAAB,
        INV_LN2_Q30 as usize,
        31 << 16,
        15 << 16,
        0,
        INVERSE.as_ptr() as usize,
        LOG2.as_ptr() as usize,
    ];
    // SAFETY: the tail-predicated loop reads sum[0 .. n] and reference[0 .. n] and writes
    // bias[0 .. n] (n ≤ each length, checked) and reads the 8 constants; the gathers read
    // INVERSE and LOG2 at indices 0..16 (bits 27 to 30 of a word: their length). The block
    // writes only bias, q0–q5 (as s0–s23), lr, flags and its operands; no stack.
    unsafe {
        asm!(
            "wlstp.32 lr, {n}, 2f",
            "1:",
            "vldrw.u32 q0, [{s}], #16",
            log2_lanes!(),
            "ldr {t}, [{k}, #12]",
            "vadd.i32 q0, q0, {t}",
            // reference ⊕ log2_l16(sum) ⊖ 15 · 2^16
            "vldrw.u32 q1, [{r}], #16",
            "vqadd.s32 q0, q1, q0",
            "ldr {t}, [{k}, #16]",
            "vqsub.s32 q0, q0, {t}",
            "vstrw.32 q0, [{b}], #16",
            "letp lr, 1b",
            "2:",
            n = in(reg) n,
            s = inout(reg) sum.as_ptr() => _,
            r = inout(reg) reference.as_ptr() => _,
            b = inout(reg) bias.as_mut_ptr() => _,
            k = in(reg) constants.as_ptr(),
            t = out(reg) _,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            out("s20") _, out("s21") _, out("s22") _, out("s23") _,
            options(nostack),
        );
    }
    true
}

/// The tables of `log2_l16` as statics (gathered by [`log2_lanes!`]).
#[cfg(not(lara_attn_compact))]
static INVERSE: [u32; 16] = INVERSE_TABLE;
#[cfg(not(lara_attn_compact))]
static LOG2: [u32; 16] = LOG2_TABLE;

/// `weights[j] = weight_q15(reference − logits[j])` (wrapping, as `u32`) over the common
/// length; returns their sum (the block loop of [`Running::admit`](super::fixed_point::Running)).
#[inline(always)]
pub(crate) fn weights_q15(reference: i32, logits: &[i32], weights: &mut [i32]) -> u32 {
    let len = logits.len().min(weights.len());
    let mut sum = 0u32;
    // SAFETY: the loop reads logits[0 .. len] and writes weights[0 .. len] (tail-predicated), len ≤
    // both lengths; the gathers read POW2_MIDPOINTS at indices masked to 0..1024 (a static of
    // 1,024 words). The block writes only weights, q0–q7 (declared as s0–s31), lr, flags and its
    // inout operands (the sum in r0: `VADDVA` takes an even register); no stack.
    unsafe {
        exp2_asm!(
            15u32,
            [
                // the cap of weight_q15: 32767
                "vmov.i32 q5, #0x7fff",
                "wlstp.32 lr, {n}, 2f",
                "1:",
                // t = reference − logit (wrapping): −(logit − reference)
                "vldrw.u32 q0, [{l}], #16",
                "vsub.i32 q0, q0, {r}",
                "vneg.s32 q0, q0",
                exp2_lanes!(),
                "vmin.u32 q1, q1, q5",
                "vstrw.32 q1, [{w}], #16",
                "vaddva.u32 r0, q1",
                "letp lr, 1b",
                "2:",
            ],
            n = in(reg) len,
            l = inout(reg) logits.as_ptr() => _,
            w = inout(reg) weights.as_mut_ptr() => _,
            r = in(reg) reference,
            inout("r0") sum,
        );
    }
    sum
}

/// LARA's `T` row in place: `t[c] = 2^(−max(reference[c] − to_logit(scale · t[c]), 0))` in
/// `Q27` (`exp2_neg_branchless(·, 27)`) over the common length; returns `Σ t` (wrapping). For
/// `T`'s logits alone, `|scale · t| < 2^28`, where `to_logit` is the identity and is left out:
/// `|s · q̄ᵀ·q| ≤ s · d · max|q|²`, at most half the plan's bound on the query logits
/// (`2 s · d · max|W| · max|q| ≤ 2839` nats, `max|W| ≥ max|q|`), 2^27 in `L16`.
#[inline(always)]
pub(crate) fn t_row(t: &mut [i32], reference: &[i32], scale: Scale32) -> u32 {
    let len = t.len().min(reference.len());
    let (value, pre_shift) = scale.parts();
    let mut sum = 0u32;
    // SAFETY: the loop reads and writes t[0 .. len] and reads reference[0 .. len]
    // (tail-predicated), len ≤ both lengths; the gathers read POW2_MIDPOINTS at
    // indices masked to 0..1024 (its length). The block writes only t, q0–q7 (declared
    // as s0–s31), lr, flags and its inout operands; no stack.
    unsafe {
        exp2_asm!(
            27u32,
            [
                "vdup.32 q5, {value}",
                "wlstp.32 lr, {n}, 2f",
                "1:",
                t_lanes!("{pre}"),
                "letp lr, 1b",
                "2:",
            ],
            n = in(reg) len,
            t = inout(reg) t.as_mut_ptr() => _,
            r = inout(reg) reference.as_ptr() => _,
            value = in(reg) value,
            pre = in(reg) pre_shift,
            inout("r0") sum,
        );
    }
    sum
}

/// LARA's query logits in place: `ℓ_c = to_logit(scale · ℓ_c + bias_c)` (the sum saturating)
/// over the common length of `logits` and `biases`; returns the largest (`i32::MIN` for none,
/// `VMAXV.S32` over the live lanes).
#[inline(always)]
pub(crate) fn query_logits(logits: &mut [i32], biases: &[i32], scale: Scale32) -> i32 {
    let mut max = i32::MIN;
    let len = logits.len().min(biases.len());
    let (value, pre_shift) = scale.parts();
    // SAFETY: the loop reads and writes logits[0 .. len] and reads biases[0 .. len]
    // (tail-predicated), len ≤ both lengths. The block writes only logits, q0, q1, q3 (declared
    // as s0–s7, s12–s15), lr, flags and its inout operands; no stack.
    unsafe {
        asm!(
            "vdup.32 q3, {value}",
            "wlstp.32 lr, {n}, 2f",
            "1:",
            logit_lanes!("{pre}"),
            "letp lr, 1b",
            "2:",
            n = in(reg) len,
            l = inout(reg) logits.as_mut_ptr() => _,
            b = inout(reg) biases.as_ptr() => _,
            value = in(reg) value,
            pre = in(reg) pre_shift,
            max = inout(reg) max,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            options(nostack),
        );
    }
    max
}

/// mis-opt's `α_c = max(bh_c + round(alpha_coeff · (T_c − mean) / 2^16), 1)` (the sum
/// saturating) over the common length of `alphas`, `balances` (`bh`) and `t`.
///
/// The `i64` product's `(p + 2^15) >> 16` as `i32` is bits 16 to 47 of `p` plus its bit 15: the
/// low half of the high word (`VMULH.S32`) and the high half of the low word (`VMUL.I32`),
/// joined by `VSRI`, plus bit 15 of the low word.
#[inline(always)]
pub(crate) fn alphas(
    alphas: &mut [i32],
    (balances, t): (&[i32], &[i32]),
    t_mean: i32,
    alpha_coeff: i32,
) {
    let len = alphas.len().min(balances.len()).min(t.len());
    // SAFETY: the loop writes alphas[0 .. len] and reads balances[0 .. len] and t[0 .. len]
    // (tail-predicated), len ≤ the three lengths. The block writes only alphas, q0–q2, q5, q7
    // (declared as s0–s11, s20–s23, s28–s31), lr, flags and its inout operands; no stack.
    unsafe {
        asm!(
            "vdup.32 q5, {coeff}",
            "vmov.i32 q7, #1",
            "wlstp.32 lr, {n}, 2f",
            "1:",
            // d = T − mean; spread = (alpha_coeff · d + 2^15) >> 16
            "vldrw.u32 q0, [{t}], #16",
            "vsub.i32 q0, q0, {mean}",
            spread_lanes!(),
            // α = max(bh + spread (saturating), 1)
            "vldrw.u32 q0, [{b}], #16",
            "vqadd.s32 q1, q0, q1",
            "vmax.s32 q1, q1, q7",
            "vstrw.32 q1, [{a}], #16",
            "letp lr, 1b",
            "2:",
            n = in(reg) len,
            a = inout(reg) alphas.as_mut_ptr() => _,
            b = inout(reg) balances.as_ptr() => _,
            t = inout(reg) t.as_ptr() => _,
            mean = in(reg) t_mean,
            coeff = in(reg) alpha_coeff,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s20") _, out("s21") _, out("s22") _, out("s23") _,
            out("s28") _, out("s29") _, out("s30") _, out("s31") _,
            options(nostack),
        );
    }
}

/// LARA's query weights in place: `w_c = 2^(ℓ_c − max)` in `Q15` (`exp2_neg_branchless(max −
/// ℓ_c, 15)`, wrapping difference), for mis-opt times `α_c` (`Q27`, in `weights`):
/// `round(w_c · α_c / 2^15)`, over the common length; returns `Σ w_c` (64 bits).
///
/// `α_c ≥ 1` as `i32` (it is `max(…, 1)`), so below `2^31`: `round(e · α / 2^15)` is the
/// rounded high word of `(e · 2^16) · (α · 2)` (`VRMULH.U32`, both factors below `2^32` as
/// `e ≤ 2^15`), the same bits as the `u64` product.
#[inline(always)]
pub(crate) fn query_weights(max: i32, logits: &[i32], weights: &mut [i32], optimal: bool) -> u64 {
    let len = logits.len().min(weights.len());
    let (mut low, mut high) = (0u32, 0u32);
    macro_rules! weights_asm {
        ($alpha:expr) => {
            // SAFETY: the loop reads logits[0 .. len] and reads and writes weights[0 .. len]
            // (tail-predicated), len ≤ both lengths; the gathers read POW2_MIDPOINTS at indices
            // masked to 0..1024 (its length). The block writes only weights, q0–q7 (declared as
            // s0–s31), lr, flags and its inout operands (the sum in r0, r1: `VADDLVA` takes an even
            // and an odd register); no stack.
            unsafe {
                exp2_asm!(
                    15u32,
                    [
                        "wlstp.32 lr, {n}, 2f",
                        "1:",
                        // t = max − logit (wrapping): −(logit − max)
                        "vldrw.u32 q0, [{l}], #16",
                        "vsub.i32 q0, q0, {m}",
                        "vneg.s32 q0, q0",
                        exp2_lanes!(),
                        $alpha,
                        "vstrw.32 q1, [{w}], #16",
                        "vaddlva.u32 r0, r1, q1",
                        "letp lr, 1b",
                        "2:",
                    ],
                    n = in(reg) len,
                    l = inout(reg) logits.as_ptr() => _,
                    w = inout(reg) weights.as_mut_ptr() => _,
                    m = in(reg) max,
                    inout("r0") low,
                    inout("r1") high,
                );
            }
        };
    }
    if optimal {
        // round(e · α / 2^15) = (e · 2^16 · α · 2 + 2^31) >> 32
        weights_asm!(concat!(
            "vldrw.u32 q0, [{w}]\n",
            "vshl.i32 q1, q1, #16\n",
            "vshl.i32 q0, q0, #1\n",
            "vrmulh.u32 q1, q1, q0\n",
        ));
    } else {
        weights_asm!("");
    }
    u64::from(high) << 32 | u64::from(low)
}

/// [`alphas`] then [`query_weights`] (`optimal`) of 4 lanes: `α = max(bh + spread
/// (saturating), 1)` from `T` at `[$t]` (`T − mean`, the mean in `$mean`, into `$spread`'s `q1`
/// from `q0`) and the balances at `[$b]`, kept in `q3` (a predicated move of 1 into the lanes
/// with `x ≤ 0`), then `w = round(2^(ℓ − max) in Q15 · α / 2^15)` from the logits at `[$l]`
/// (`$t_max` makes `max − ℓ` of `q0`) into `[$w]` (the pointers advanced), added to `r0`,
/// `r1`; clobbers `q0`–`q4`.
#[cfg(not(lara_attn_compact))]
macro_rules! alpha_weight_lanes {
    ($t:literal, $mean:literal, $b:literal, $l:literal, $w:literal,
     [$($spread:expr),* $(,)?], [$($t_max:expr),* $(,)?]) => {
        concat!(
            // d = T − mean; q1 = the spread
            "vldrw.u32 q0, [", $t, "], #16\n",
            "vsub.i32 q0, q0, ", $mean, "\n",
            $($spread, "\n",)*
            // α = max(bh + spread (saturating), 1)
            "vldrw.u32 q0, [", $b, "], #16\n",
            "vqadd.s32 q3, q0, q1\n",
            "vpt.s32 le, q3, zr\n",
            "vmovt.i32 q3, #1\n",
            // w = round(2^(ℓ − max) in Q15 · α / 2^15) = (e 2^16 · α 2 + 2^31) >> 32
            "vldrw.u32 q0, [", $l, "], #16\n",
            $($t_max, "\n",)*
            exp2_lanes!(),
            "vshl.i32 q1, q1, #16\n",
            "vshl.i32 q0, q3, #1\n",
            "vrmulh.u32 q1, q1, q0\n",
            "vstrw.32 q1, [", $w, "], #16\n",
            "vaddlva.u32 r0, r1, q1\n",
        )
    };
}

/// mis-opt's query steps from the dot products, for `count` landmarks, in one `asm!` block
/// per query (the same bits as [`query_logits`], [`t_row`], the mean, [`alphas`],
/// [`query_weights`] and [`pack_rounded`] in turn): the logits and `T` in one loop (their
/// largest and sum), `mean T = (Σ T + ⌊count/2⌋) / count`, `α` and the weights in another
/// (their 64-bit sum), `shift = bits(max(Σ w, 1)) − 14` and the packing. The constants and
/// the slices of the head are held, their lengths checked once, in [`QUERY_STEP_WORDS`] words
/// of a buffer (read by the block): `[logits, T, biases, references, value, pre, t_value,
/// t_pre, ⌊count/2⌋, count, balances, weights, table, coefficient, packed]` (the
/// first two stored by the block per query).
///
/// For `|alpha_coeff| < 2^18` and `|T − mean| ≤ 2^27` (`T` and its mean in `[0, 2^27]`, as
/// [`t_row`] gives them) the spread `(alpha_coeff · (T − mean) + 2^15) >> 16` is one
/// `VRMULH.S32` of `8 (T − mean)` and `2^13 · alpha_coeff` (both below `2^31` in magnitude:
/// the rounded high word of `2^16` times the product, the same bits); else as [`alphas`].
#[cfg(not(lara_attn_compact))]
pub(crate) struct QuerySteps<'a> {
    words: &'a mut [u32; QUERY_STEP_WORDS],
    count: usize,
    /// The spread by one `VRMULH.S32`.
    short: bool,
    packed: &'a mut [i32],
    weights: core::marker::PhantomData<&'a mut [i32]>,
}

/// The words of [`QuerySteps`]' constants.
#[cfg(not(lara_attn_compact))]
pub(crate) const QUERY_STEP_WORDS: usize = 15;

#[cfg(not(lara_attn_compact))]
impl<'a> QuerySteps<'a> {
    /// The steps of `count` landmarks, their constants in `buffer`; `None` unless `1 ≤ count <
    /// 32`, `buffer` holds [`QUERY_STEP_WORDS`] and every slice `count` values (`packed` their
    /// pairs).
    pub(crate) fn new(
        buffer: &'a mut [i32],
        count: usize,
        (biases, references, balances): (&'a [i32], &'a [i32], &'a [i32]),
        (scale, t_scale): (Scale32, Scale32),
        alpha_coeff: i32,
        (weights, packed): (&'a mut [i32], &'a mut [i32]),
    ) -> Option<Self> {
        let fits = (1..32).contains(&count)
            && biases.len() >= count
            && references.len() >= count
            && balances.len() >= count
            && weights.len() >= count
            && 2 * packed.len() >= count;
        let words = buffer
            .first_chunk_mut::<QUERY_STEP_WORDS>()
            .filter(|_| fits)?;
        let ((value, pre), (t_value, t_pre)) = (scale.parts(), t_scale.parts());
        let short = alpha_coeff.unsigned_abs() < 1 << 18;
        // (addresses as words: 32-bit targets)
        let address = |p: *const i32| p as usize as i32;
        *words = [
            0,
            0,
            address(biases.as_ptr()),
            address(references.as_ptr()),
            value,
            pre as i32,
            t_value,
            t_pre as i32,
            count as i32 / 2,
            count as i32,
            address(balances.as_ptr()),
            address(weights.as_mut_ptr()),
            POW2_MIDPOINTS.as_ptr() as usize as i32,
            if short {
                alpha_coeff << 13
            } else {
                alpha_coeff
            },
            address(packed.as_mut_ptr()),
        ];
        // SAFETY: [i32; N] and [u32; N] have the same size, alignment and valid values.
        let words = unsafe { &mut *(words as *mut [i32; QUERY_STEP_WORDS]).cast() };
        Some(QuerySteps {
            words,
            count,
            short,
            packed,
            weights: core::marker::PhantomData,
        })
    }

    /// The steps for one query from its dot products with `W` (`logits`) and `q̄` (`t`), both
    /// overwritten (the scaled logits, `T`); returns the sum of the packed weights (wrapping).
    /// `None`, nothing written, if either holds fewer than `count` values.
    #[inline(always)]
    pub(crate) fn run(&mut self, logits: &mut [i32], t: &mut [i32]) -> Option<u32> {
        if logits.len() < self.count || t.len() < self.count {
            return None;
        }
        let (words, first) = (self.words.as_mut_ptr(), logits.as_mut_ptr());
        let sum: u32;
        macro_rules! steps_asm {
            ([$($coeff:expr),*], [$($spread:expr),*], [$($t_max:expr),*]) => {
                // SAFETY: `new` checked that biases, references, balances and weights hold
                // count values and packed count halfwords (its slices borrowed for 'a), and
                // logits and t hold count values (checked above): the loops (tail-predicated,
                // count lanes) read and write logits[0 .. count] and t[0 .. count], read the
                // biases, references and balances, write weights[0 .. count] and the first
                // count halfwords of packed, and read and write the constants' words; the
                // gathers read POW2_MIDPOINTS at indices masked to 0..1024 (its length). The
                // block writes only those, q0–q7 (declared as
                // s0–s31), lr, flags and its operands (sums in r0, r1: `VADDVA` takes an even
                // register, `VADDLVA` an even and an odd one; packed in r1, a narrowing
                // store's base); no stack.
                unsafe {
                    asm_clobbering_s0_s31!(
                        // the logits and T: value and t_value in q3 and q5, the constants of
                        // exp2_lanes! for bits = 27 (29 and 27 − 30), t_pre in r1
                        "strd r0, r1, [{w}]",
                        "mov {l}, r0",
                        "mov {t}, r1",
                        "ldrd {b}, {r}, [{w}, #8]",
                        "ldr {table}, [{w}, #48]",
                        "ldrd r0, {pre}, [{w}, #16]",
                        "vdup.32 q3, r0",
                        "ldrd r0, r1, [{w}, #24]",
                        "vdup.32 q5, r0",
                        "movs r0, #0",
                        "mov {max}, #-2147483648",
                        "vmov.i32 q6, #29",
                        "vmvn.i32 q7, #2",
                        "ldr lr, [{w}, #36]",
                        "dlstp.32 lr, lr",
                        "1:",
                        logit_lanes!("{pre}"),
                        t_lanes!("r1"),
                        "letp lr, 1b",
                        // mean T = (Σ T + ⌊count/2⌋) / count (in {pre})
                        "ldrd {pre}, r1, [{w}, #32]",
                        "add r0, r0, {pre}",
                        "udiv {pre}, r0, r1",
                        // α and the weights: the coefficient (and the largest logit), the
                        // constants of exp2_lanes! for bits = 15 (17 and 15 − 30)
                        $($coeff,)*
                        "movs r0, #0",
                        "movs r1, #0",
                        "vmov.i32 q6, #17",
                        "vmvn.i32 q7, #14",
                        "ldrd {l}, {t}, [{w}]",
                        "ldrd {b}, {r}, [{w}, #40]",
                        "ldr lr, [{w}, #36]",
                        "dlstp.32 lr, lr",
                        "3:",
                        alpha_weight_lanes!(
                            "{t}", "{pre}", "{b}", "{l}", "{r}", [$($spread),*], [$($t_max),*]
                        ),
                        "letp lr, 3b",
                        // −shift = 14 − bits(max(Σ w, 1)): clz(high) − 50, else clz(low) − 18
                        "cmp r1, #0",
                        "beq 4f",
                        "clz {pre}, r1",
                        "sub {pre}, {pre}, #50",
                        "b 5f",
                        "4:",
                        "cmp r0, #1",
                        "it lo",
                        "movlo r0, #1",
                        "clz {pre}, r0",
                        "sub {pre}, {pre}, #18",
                        "5:",
                        // the packing: round(w / 2^shift) = (w + 2^(shift − 1)) >> shift, or
                        // w << −shift, each lane's low half stored
                        "ldr {r}, [{w}, #44]",
                        "ldr r1, [{w}, #56]",
                        "movs r0, #0",
                        "ldr lr, [{w}, #36]",
                        "dlstp.32 lr, lr",
                        "6:",
                        "vldrw.u32 q0, [{r}], #16",
                        "vrshl.u32 q0, {pre}",
                        "vstrh.32 q0, [r1], #8",
                        "vaddva.u32 r0, q0",
                        "letp lr, 6b",
                        w = in(reg) words,
                        l = out(reg) _,
                        b = out(reg) _,
                        t = out(reg) _,
                        r = out(reg) _,
                        pre = out(reg) _,
                        max = out(reg) _,
                        table = out(reg) _,
                        inout("r0") first => sum,
                        inout("r1") t.as_mut_ptr() => _,
                        out("lr") _,
                        options(nostack),
                    );
                }
            };
        }
        if self.short {
            // spread = round(8 d · 2^13 alpha_coeff / 2^32) = sat(round(2 · 4 d · 2^13
            // alpha_coeff / 2^32)) (VQRDMULH by the coefficient in {max}: it saturates only
            // for two factors of −2^31, and |4 d| ≤ 2^29); the largest logit in q5
            steps_asm!(
                ["vdup.32 q5, {max}", "ldr {max}, [{w}, #52]"],
                ["vshl.i32 q0, q0, #2", "vqrdmulh.s32 q1, q0, {max}"],
                ["vsub.i32 q0, q5, q0"]
            );
        } else {
            // spread = (alpha_coeff · d + 2^15) >> 16, as alphas (the coefficient in q5)
            steps_asm!(
                ["ldr r1, [{w}, #52]", "vdup.32 q5, r1"],
                [spread_lanes!()],
                ["vsub.i32 q0, q0, {max}", "vneg.s32 q0, q0"]
            );
        }
        Some(sum)
    }

    /// The packed weights of the last query.
    #[inline(always)]
    pub(crate) fn packed(&self) -> &[i32] {
        self.packed
    }
}

/// `packed` as `i16` pairs: `round(w_c / 2^shift)` (half up; `w_c · 2^-shift` for `shift ≤
/// 0`) for the `weights`, `VRSHL.U32` by `−shift` and a store of each lane's low half
/// (`VSTRH.32`); returns their sum (wrapping). The halves past the weights are left alone (the
/// caller's zeros: an odd last weight's high half). For `−31 ≤ shift ≤ 32`, `weights < 2^31`.
#[inline(always)]
pub(crate) fn pack_rounded(weights: &[i32], packed: &mut [i32], shift: i32) -> u32 {
    let len = weights.len().min(2 * packed.len());
    let mut sum = 0u32;
    // SAFETY: the loop reads weights[0 .. len] and writes the first len halfwords of packed
    // (tail-predicated), len ≤ weights.len() and ≤ 2 · packed.len(). The block writes only
    // packed, q0 (declared as s0–s3), lr, flags and its inout operands (the sum in r0:
    // `VADDVA` takes an even register; packed in r1); no stack.
    unsafe {
        asm!(
            "wlstp.32 lr, {n}, 2f",
            "1:",
            "vldrw.u32 q0, [{w}], #16",
            // round(w / 2^shift) = (w + 2^(shift − 1)) >> shift, or w << −shift
            "vrshl.u32 q0, {s}",
            "vstrh.32 q0, [r1], #8",
            "vaddva.u32 r0, q0",
            "letp lr, 1b",
            "2:",
            n = in(reg) len,
            w = inout(reg) weights.as_ptr() => _,
            // (a narrowing store's base must be r0–r7: not left to the allocator)
            inout("r1") packed.as_mut_ptr() => _,
            s = in(reg) -shift,
            inout("r0") sum,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            options(nostack),
        );
    }
    sum
}

/// `logits[r · KEY_BLOCK + column] = to_logit(scale · dots[r] − offset)` (the difference
/// wrapping) for every row `r` of `dots` that `logits` (`[rows][KEY_BLOCK]`) has, as
/// [`store_logit_column`](super::store_logit_column) with that closure: 4 lanes at a time, a
/// scatter store (`VSTRW.32` to a vector of addresses, `KEY_BLOCK` words apart, which the store
/// advances by four rows).
#[inline(always)]
pub(crate) fn logit_column(
    logits: &mut [i32],
    column: usize,
    dots: &[i32],
    scale: Scale32,
    offset: i32,
) {
    if column >= KEY_BLOCK {
        return;
    }
    let rows = dots.len().min(logits.len() / KEY_BLOCK);
    let (value, pre_shift) = scale.parts();
    // the addresses of rows −4 to −1 (the store adds four rows first); never dereferenced
    let base = logits
        .as_mut_ptr()
        .wrapping_add(column)
        .wrapping_sub(ROW_STEP.len() * KEY_BLOCK);
    // SAFETY: the loop reads dots[0 .. rows] and writes logits[r · KEY_BLOCK + column] for
    // r < rows (tail-predicated: the lanes past rows neither load nor store), each in bounds as
    // column < KEY_BLOCK and rows ≤ logits.len() / KEY_BLOCK; it reads ROW_STEP (4 words). The
    // block writes only those logits, q0–q2 (declared as s0–s11; caller-saved), lr, flags and
    // its inout operands; no stack.
    unsafe {
        asm!(
            "vldrw.u32 q1, [{step}]",
            "vadd.i32 q1, q1, {base}",
            "vdup.32 q2, {value}",
            "wlstp.32 lr, {n}, 2f",
            "1:",
            // ssat29(round((dot << pre_shift) · value / 2^32) − offset)
            "vldrw.u32 q0, [{d}], #16",
            "vshl.u32 q0, {pre}",
            "vrmulh.s32 q0, q0, q2",
            "vsub.i32 q0, q0, {offset}",
            "vqshl.s32 q0, q0, #3",
            "vshr.s32 q0, q0, #3",
            "vstrw.32 q0, [q1, #{rows4}]!",
            "letp lr, 1b",
            "2:",
            n = in(reg) rows,
            d = inout(reg) dots.as_ptr() => _,
            step = in(reg) ROW_STEP.as_ptr(),
            base = in(reg) base,
            value = in(reg) value,
            pre = in(reg) pre_shift,
            offset = in(reg) offset,
            rows4 = const 4 * KEY_BLOCK * 4,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            options(nostack),
        );
    }
}

/// RFA's key logits: `logits[r · KEY_BLOCK + column] = to_logit(p_r − offset)` (the difference
/// wrapping) with `p_r = to_logit(scale · dots[r])`, for every row `r` of `dots` that `logits`
/// has, as [`logit_column`]; returns the largest `p_r` (`i32::MIN` for none).
#[inline(always)]
pub(crate) fn projection_column(
    logits: &mut [i32],
    column: usize,
    dots: &[i32],
    (scale, offset): (Scale32, i32),
) -> i32 {
    let mut max = i32::MIN;
    if column >= KEY_BLOCK {
        return max;
    }
    let rows = dots.len().min(logits.len() / KEY_BLOCK);
    let (value, pre_shift) = scale.parts();
    // the addresses of rows −4 to −1 (the store adds four rows first); never dereferenced
    let base = logits
        .as_mut_ptr()
        .wrapping_add(column)
        .wrapping_sub(ROW_STEP.len() * KEY_BLOCK);
    // SAFETY: the loop reads dots[0 .. rows] and writes logits[r · KEY_BLOCK + column] for
    // r < rows (tail-predicated), each in bounds as column < KEY_BLOCK and rows ≤ logits.len() /
    // KEY_BLOCK; it reads ROW_STEP (4 words). The block writes only those logits, q0–q2
    // (declared as s0–s11; caller-saved), lr, flags and its inout operands; no stack.
    unsafe {
        asm!(
            "vldrw.u32 q1, [{step}]",
            "vadd.i32 q1, q1, {base}",
            "vdup.32 q2, {value}",
            "wlstp.32 lr, {n}, 2f",
            "1:",
            // p = ssat29(round((dot << pre_shift) · value / 2^32)), the largest so far
            "vldrw.u32 q0, [{d}], #16",
            "vshl.u32 q0, {pre}",
            "vrmulh.s32 q0, q0, q2",
            "vqshl.s32 q0, q0, #3",
            "vshr.s32 q0, q0, #3",
            "vmaxv.s32 {max}, q0",
            // ssat29(p − offset)
            "vsub.i32 q0, q0, {offset}",
            "vqshl.s32 q0, q0, #3",
            "vshr.s32 q0, q0, #3",
            "vstrw.32 q0, [q1, #{rows4}]!",
            "letp lr, 1b",
            "2:",
            n = in(reg) rows,
            d = inout(reg) dots.as_ptr() => _,
            step = in(reg) ROW_STEP.as_ptr(),
            base = in(reg) base,
            value = in(reg) value,
            pre = in(reg) pre_shift,
            offset = in(reg) offset,
            max = inout(reg) max,
            rows4 = const 4 * KEY_BLOCK * 4,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            options(nostack),
        );
    }
    max
}

/// `out[t] = clamp((high(sums[t] · mantissa) + round_high) >> high_shift, −128, 127)` over the
/// common length, `high` the high word of the 64-bit product (`VMULH.S32`): `write_i8`'s loop
/// for a [`Multiplier::high_word_rounded`](super::fixed_point::Multiplier::high_word_rounded)
/// (`1 ≤ high_shift ≤ 30`).
#[inline(always)]
pub(crate) fn requantize_i8(
    out: &mut [i8],
    sums: &[i32],
    (mantissa, round_high, high_shift): (i32, i32, u32),
) {
    let len = out.len().min(sums.len());
    // SAFETY: the loop reads sums[0 .. len] and writes out[0 .. len] (a byte per lane,
    // tail-predicated), len ≤ both lengths. The block writes only out, q0, q1 (declared as
    // s0–s7; caller-saved), lr, flags and its inout operands (out's pointer in r1); no stack.
    unsafe {
        asm!(
            "vdup.32 q1, {m}",
            "wlstp.32 lr, {n}, 2f",
            "1:",
            "vldrw.u32 q0, [{s}], #16",
            "vmulh.s32 q0, q0, q1",
            "vadd.i32 q0, q0, {round}",
            // >> high_shift (arithmetic), then saturated to [-128, 127]
            "vshl.s32 q0, {shift}",
            "vqshl.s32 q0, q0, #24",
            "vshr.s32 q0, q0, #24",
            "vstrb.32 q0, [r1], #4",
            "letp lr, 1b",
            "2:",
            n = in(reg) len,
            s = inout(reg) sums.as_ptr() => _,
            // (a low register: the narrowing store's base)
            inout("r1") out.as_mut_ptr() => _,
            m = in(reg) mantissa,
            round = in(reg) round_high,
            shift = in(reg) -(high_shift as i32),
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            options(nostack),
        );
    }
}

/// LARA's `kv_c[t] = clamp(round(acc · 2^8 / sum), −2^15, 2^15 − 1)` for row `c` of every
/// group: `acc` holds the groups (`group` words each, row `c`'s four sums at `c · 4`), `kv`
/// the pair blocks (`kv_block` words each, row `c`'s four `i16` at `pair_slot(t, c)`, 8
/// halfwords apart); the division as [`requantize_i8`]'s high word (`VMULH.S32`, for a
/// [`Reciprocal::high_word_rounded`](super::fixed_point::Reciprocal::high_word_rounded)),
/// saturated to 16 bits (`VQSHL`/`VSHR`), a halfword scatter per group (`VSTRH.32`). `false`,
/// nothing written, if the row is not inside a group or a block.
#[inline(always)]
pub(crate) fn divide_row(
    (acc, group): (&[i32], usize),
    (kv, kv_block): (&mut [i32], usize),
    c: usize,
    (mantissa, round_high, high_shift): (i32, i32, u32),
) -> bool {
    // row c's first halfword in a pair block, and its last (t = 3) inside the block
    let slot = (c / CHUNK) * (CHUNK * ROWS) + c % CHUNK;
    let inside = group != 0
        && kv_block != 0
        && c.saturating_add(1).saturating_mul(ROWS) <= group
        && slot + 3 * CHUNK < 2 * kv_block;
    if !inside {
        return false;
    }
    let groups = (acc.len() / group).min(kv.len() / kv_block);
    let src = acc.as_ptr().wrapping_add(c * ROWS);
    let dst = kv.as_mut_ptr().cast::<i16>().wrapping_add(slot);
    // SAFETY: for g < groups ≤ acc.len() / group the loop reads acc[g · group + 4c .. + 4]
    // (4c + 4 ≤ group) and writes the halfwords g · 2 kv_block + slot + {0, 8, 16, 24} of kv
    // (below 2 kv_block within block g, g < kv.len() / kv_block); it reads ROW_OFFSETS (4
    // words). The block writes only those halfwords, q0–q2 (declared as s0–s11;
    // caller-saved), lr, flags and its inout operands; no stack.
    unsafe {
        asm!(
            "vldrw.u32 q2, [{offsets}]",
            "vdup.32 q1, {m}",
            "wls lr, {n}, 2f",
            "1:",
            "vldrw.u32 q0, [{s}]",
            "vmulh.s32 q0, q0, q1",
            "vadd.i32 q0, q0, {round}",
            // >> high_shift (arithmetic), then saturated to [-2^15, 2^15 - 1]
            "vshl.s32 q0, {shift}",
            "vqshl.s32 q0, q0, #16",
            "vshr.s32 q0, q0, #16",
            "vstrh.32 q0, [{d}, q2, uxtw #1]",
            "add {s}, {s}, {s_step}",
            "add {d}, {d}, {d_step}",
            "le lr, 1b",
            "2:",
            offsets = in(reg) ROW_OFFSETS.as_ptr(),
            m = in(reg) mantissa,
            n = in(reg) groups,
            s = inout(reg) src => _,
            d = inout(reg) dst => _,
            round = in(reg) round_high,
            shift = in(reg) -(high_shift as i32),
            s_step = in(reg) group * 4,
            d_step = in(reg) kv_block * 4,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            options(nostack),
        );
    }
    true
}

/// [`pack_value_blocks`](crate::simd::int8::pack_value_blocks) on Helium: per column, a gather
/// of the column's byte in the `KEY_BLOCK` key rows (`VLDRB.S16` at 16-bit offsets, the lanes of
/// keys that do not count or do not exist predicated off, which loads zeros) and a store of the
/// eight `i16` (a column of a value block is four consecutive words); zeros for the columns
/// past `value_dim` in the whole blocks of `out`. For `value_dim ≤ MAX_DIM` (else `false`,
/// nothing written: the offsets would not fit 16 bits).
#[inline(always)]
pub(crate) fn pack_value_blocks(
    values: &[i8],
    value_dim: usize,
    (first, counted): (usize, [bool; KEY_BLOCK]),
    out: &mut [i32],
) -> bool {
    if value_dim > super::MAX_DIM {
        return false;
    }
    let blocks = out.len() / VALUE_BLOCK_WORDS;
    let columns = value_dim.min(blocks * ROWS);
    let (mask, base) = key_lanes(values, value_dim, (first, counted));
    // SAFETY: the gathers read base + jj · value_dim + e for e < columns ≤ value_dim only in
    // the lanes jj of `mask`, whose rows (first + jj) · value_dim .. + value_dim lie in `values`;
    // the offsets jj · value_dim + e < 8 · 512 fit the 16-bit lanes. The stores write the
    // 4 · columns ≤ 16 · blocks = out.len() rounded down first words of `out`; the block reads
    // LANES (8 halfwords). P0 (VPR) is saved and restored. The block writes only those words,
    // q0, q1 (declared as s0–s7), lr, flags and its inout operands; no stack.
    unsafe {
        asm!(
            "vmrs {saved}, p0",
            "vmsr p0, {mask}",
            "vldrh.u16 q1, [{lanes}]",
            "vmul.i16 q1, q1, {dim}",
            "wls lr, {n}, 2f",
            "1:",
            "vpst",
            "vldrbt.s16 q0, [{base}, q1]",
            "vstrh.16 q0, [{o}], #16",
            "vadd.i16 q1, q1, {one}",
            "le lr, 1b",
            "2:",
            "vmsr p0, {saved}",
            saved = out(reg) _,
            mask = in(reg) mask,
            lanes = in(reg) LANES.as_ptr(),
            dim = in(reg) value_dim,
            n = in(reg) columns,
            base = in(reg) base,
            o = inout(reg) out.as_mut_ptr() => _,
            one = in(reg) 1u32,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            options(nostack),
        );
    }
    let whole = blocks * VALUE_BLOCK_WORDS;
    if let Some(rest) = out.get_mut(columns * (KEY_BLOCK / 2)..whole) {
        rest.fill(0);
    }
    true
}

/// The predicate of the `KEY_BLOCK` keys from `first` of `values` (`[n, value_dim]`) for
/// gathers of `i16` lanes, two bits per lane (the keys that count and whose row is in
/// `values`), and key `first`'s row (dereferenced only in those lanes: inside `values`), for
/// [`pack_value_blocks`] and [`accumulate_values`].
#[inline(always)]
fn key_lanes(
    values: &[i8],
    value_dim: usize,
    (first, counted): (usize, [bool; KEY_BLOCK]),
) -> (u32, *const i8) {
    let mut mask = 0u32;
    for (jj, &counts) in counted.iter().enumerate() {
        let end = (first + jj + 1).checked_mul(value_dim);
        if counts && end.is_some_and(|end| end <= values.len()) {
            mask |= 3 << (2 * jj);
        }
    }
    let base = values.as_ptr().wrapping_add(first.wrapping_mul(value_dim));
    (mask, base)
}

/// LARA's key pass on Helium: [`pack_value_blocks`] then
/// [`accumulate_groups`](crate::simd::int8::accumulate_groups) in one `asm!` block, each group's
/// four columns gathered into `q1`–`q4` as `pack_value_blocks` gathers them (not stored), then
/// the rows' loop: `acc_g += Σ_j w_cj v_j` for the `value_dim / 4` groups of `group` words of
/// `acc` and every row of a group. `false`, nothing done, unless `value_dim` is a multiple of
/// four up to [`MAX_DIM`](super::MAX_DIM), a group holds a multiple of four rows (four per
/// turn of the rows' loop), `acc` holds that many whole groups and `weights` a
/// row for every row of a group. (Out of line, as `accumulate_groups`: the save of `d8`–`d13`
/// in its own frame, off the key pass's; inlined there, LARA's call took 1,024 B of stack.)
#[cfg(not(lara_attn_compact))]
#[inline(never)]
pub(crate) fn accumulate_values(
    (acc, group): (&mut [i32], usize),
    weights: &[i32],
    (values, value_dim): (&[i8], usize),
    keys: (usize, [bool; KEY_BLOCK]),
) -> bool {
    let (groups, rows) = (value_dim / ROWS, group / ROWS);
    let fits = value_dim <= super::MAX_DIM
        && groups > 0
        && value_dim.is_multiple_of(ROWS)
        && rows > 0
        && rows.is_multiple_of(4)
        && group.is_multiple_of(ROWS)
        && acc.len() >= groups * group
        && weights.len() >= rows * (KEY_BLOCK / 2);
    if !fits {
        return false;
    }
    let (mask, base) = key_lanes(values, value_dim, keys);
    // SAFETY: the gathers read base + jj · value_dim + e for e < value_dim only in the lanes
    // jj of `mask`, whose rows lie in `values`; the offsets jj · value_dim + e < 8 · 512 fit
    // the 16-bit lanes (VIDUP from 0 in r10, times value_dim). The rows' loop reads `rows` rows of
    // 4 words of `weights` per group and reads and writes `groups` groups of `rows` rows of 4
    // words of `acc` (back to back: group = 4 · rows), all checked above. P0 (VPR) is saved
    // and restored. The block writes only those words, q0–q7 (declared as s0–s31), lr,
    // flags and its operands; no stack.
    unsafe {
        asm_clobbering_s0_s31!(
            "vmrs {saved}, p0",
            "vmsr p0, r0",
            // the lanes' offsets jj · value_dim; ones
            "vidup.u16 q5, r10, #1",
            "vmul.i16 q5, q5, r2",
            "vmov.i16 q6, #1",
            "1:",
            "vpst",
            "vldrbt.s16 q1, [{base}, q5]",
            "vadd.i16 q5, q5, q6",
            "vpst",
            "vldrbt.s16 q2, [{base}, q5]",
            "vadd.i16 q5, q5, q6",
            "vpst",
            "vldrbt.s16 q3, [{base}, q5]",
            "vadd.i16 q5, q5, q6",
            "vpst",
            "vldrbt.s16 q4, [{base}, q5]",
            "vadd.i16 q5, q5, q6",
            "mov r3, {w}",
            "dls lr, {turns}",
            accumulate_rows4_loop!(),
            "subs {g}, {g}, #1",
            "bne 1b",
            "vmsr p0, {saved}",
            saved = out(reg) _,
            base = in(reg) base,
            w = in(reg) weights.as_ptr(),
            turns = in(reg) rows / 4,
            g = inout(reg) groups => _,
            inout("r0") mask => _,
            inout("r2") value_dim => _,
            out("r3") _,
            inout("r10") 0u32 => _,
            out("r12") _,
            inout("r1") acc.as_mut_ptr() => _,
            out("lr") _,
            options(nostack),
        );
    }
    true
}

/// `0, 1, …, 7` as `u16` lanes.
static LANES: [u16; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

/// One row of [`admit_groups`]' weights: its new reference into `lr` (the load's address
/// `$address`), then its two vectors of keys; `$sum` its sum.
#[cfg(not(lara_attn_compact))]
macro_rules! weight_row {
    ($address:literal, $sum:literal) => {
        concat!(
            "ldr lr, ",
            $address,
            "\n",
            weight_half!("vaddv.u32 ", $sum),
            weight_half!("vaddva.u32 ", $sum),
        )
    };
}

/// Four keys of a [`weight_row!`]: `t = reference − logit` (wrapping, as `u32`: `VMLAS` of the
/// logits times `q5` = −1 plus the reference in `lr`, no vector of it), its weight
/// stored as a halfword and summed; the cap of `weight_q15`, `min(w, 32767)`, by `VQMOVNB.S32`
/// (`w ≤ 2^15`: the top halves stay 0, so the lanes are the capped weights).
#[cfg(not(lara_attn_compact))]
macro_rules! weight_half {
    ($add:literal, $sum:literal) => {
        concat!(
            "vldrw.u32 q0, [{l}], #16\n",
            "vmlas.u32 q0, q5, lr\n",
            exp2_lanes!(),
            "vqmovnb.s32 q1, q1\n",
            "vstrh.32 q1, [r1], #8\n",
            $add,
            $sum,
            ", q1\n",
        )
    };
}

/// [`admit_groups`]' rescaling of row `$k` of the group just admitted: if its factor (at byte
/// `$factor` of `{scr}`) is not `Q15_ONE`, `a = round(a · f / 2^15)` (`VQRDMULH.S32` by
/// `f · 2^16`, as [`rescale_row`]) for its four sums in every group of `acc` (the row of group
/// 0 at `D + 4 · refp + $offset`; `D`, the step and the groups in words 5 to 7 of `{scr}`).
#[cfg(not(lara_attn_compact))]
macro_rules! rescale_lanes {
    ($factor:literal, $offset:literal) => {
        concat!(
            "ldr r0, [{scr}, #",
            $factor,
            "]\n",
            "cmp.w r0, #32768\n",
            "beq 3f\n",
            "lsls r0, r0, #16\n",
            "ldr r2, [{scr}, #20]\n",
            "add.w r2, r2, {refp}, lsl #2\n",
            "ldrd r10, r12, [{scr}, #24]\n",
            "wls lr, r12, 3f\n",
            "2:\n",
            "vldrw.u32 q0, [r2, #",
            $offset,
            "]\n",
            "vqrdmulh.s32 q0, q0, r0\n",
            "vstrw.32 q0, [r2, #",
            $offset,
            "]\n",
            "add r2, r10\n",
            "le lr, 2b\n",
            "3:\n",
        )
    };
}

/// [`Running::admit`](super::fixed_point::Running::admit) of whole groups of four rows, the
/// rows of a group in the lanes, for blocks of `KEY_BLOCK` logits (`logits`: `[4 · groups]
/// [KEY_BLOCK]`), in one loop over the groups:
///
/// * the block maxima `m` (per key a gather of the four rows' logits, `VLDRW.U32` from a vector
///   of addresses, which it advances after the first); a group with a row without a logit (`m`
///   is [`ABSENT`](super::fixed_point::ABSENT)) stops the loop before it;
/// * the state step: new references `max(reference, m)` (stored; the old ones kept in the
///   scratch), factors `exp2_neg(new − reference, 15)` (wrapping difference: `Q15_ONE` for a
///   reference that stays, 0 for an empty state, whose difference is at least `2^31 − 2^28`)
///   and the sums `round(sum · factor / 2^15)` (`VRMULH.U32` of `2 · sum` and `factor · 2^16`,
///   both below `2^32` for `sum < 2^31`);
/// * `w[r][j] = weight_q15(new[r] − logits[r][j])` stored as the `i16` halves of `pairs`
///   (`[4 · groups][KEY_BLOCK / 2]`: a row's weights are its halfwords in order), a row's two
///   vectors of keys at a time, the rows unrolled, each row's sum by `VADDV(A).U32`;
/// * the new sums (rescaled sum plus the block's); one past
///   [`SUM_LIMIT`](super::fixed_point::SUM_LIMIT) restores the group's references and stops
///   the loop before it;
/// * with `acc` (`[groups'][stride][4]`, row `c` at `c · 4` of every group), the rows' sums
///   times their factors where a factor is not `Q15_ONE` (as [`rescale_row`]).
///
/// Groups `first` to `groups − 1`; returns the index of the group that stopped the loop, or
/// `groups` (the caller admits a stopping group one row at a time, then calls again for the
/// rest); `None`, nothing done, unless `first < groups`, every slice holds `groups` groups
/// and, with sums to rescale, the rows `0 .. 4 · groups` lie in a group of `acc`.
// (not built for size: `admit_rows` takes one row at a time there)
#[cfg(not(lara_attn_compact))]
#[inline(always)]
pub(crate) fn admit_groups(
    logits: &[i32],
    pairs: &mut [i32],
    (reference, sum): (&mut [i32], &mut [i32]),
    (acc, stride): (&mut [i32], usize),
    (first, groups): (usize, usize),
) -> Option<usize> {
    const _: () = assert!(KEY_BLOCK == 8 && super::fixed_point::SUM_LIMIT == 1 << 23);
    let group_words = stride.saturating_mul(ROWS);
    let acc_groups = acc.len() / group_words.max(1);
    let fits = first < groups
        && logits.len() / (4 * KEY_BLOCK) >= groups
        && pairs.len() / (2 * KEY_BLOCK) >= groups
        && reference.len() / 4 >= groups
        && sum.len() / 4 >= groups
        && (acc_groups == 0 || groups <= group_words / (4 * ROWS));
    if !fits {
        return None;
    }
    // (group `first` of each: inside them, first < groups)
    let start = logits.as_ptr().wrapping_add(first * 4 * KEY_BLOCK);
    let end = logits.as_ptr().wrapping_add(groups * 4 * KEY_BLOCK);
    let refp = reference.as_mut_ptr().wrapping_add(4 * first);
    // scratch words: 0–3 the rows' byte offsets, 4 the bound of a factor to rescale by (0: no
    // sums), 5 D (acc's group 0, less 4 · reference's address, less 64: see rescale_lanes!),
    // 6 acc's group step in bytes, 7 acc's whole groups; 8–11 the old references, 12–15 the
    // factors (written by the block)
    let [r0, r1, r2, r3] = crate::simd::int8::ROW_STEP;
    let d = (acc.as_mut_ptr() as usize as u32)
        .wrapping_sub((reference.as_ptr() as usize as u32).wrapping_mul(4))
        .wrapping_sub(64);
    let bound = if acc_groups == 0 { 0 } else { 1 << 15 };
    let words = [
        r0,
        r1,
        r2,
        r3,
        bound,
        d,
        (group_words * 4) as u32,
        acc_groups as u32,
    ];
    let mut scratch = core::mem::MaybeUninit::<[[u32; 8]; 2]>::uninit();
    let scr = scratch.as_mut_ptr().cast::<[u32; 8]>();
    // SAFETY: the first of the two arrays of `scratch` (in it, aligned as its type).
    unsafe { scr.write(words) };
    let stop: *const i32;
    // SAFETY: for each group g from `first` to `groups − 1` (every slice holds `groups`,
    // checked above): the gathers read rows 0–3, keys 0–7 of its logits (its address plus the
    // offsets in scratch words 0–3, advanced by one word after the first), the weights read
    // its 32 words from {l} (advanced) and write its 64 halfwords of pairs (r1, advanced),
    // reference and sum are read and written 4 words per group ({refp}, {sump} advanced; a
    // stopped group's references restored); the gathers of the exponent table read
    // POW2_MIDPOINTS at indices masked to 0..1024 (its length); the rescaling reads and writes
    // the 4 words of row 4g + k (< group_words / 4, checked) in each of the acc_groups whole
    // groups of acc (none without sums: bound 0). The loop runs while {l} is before the end
    // (groups > first). It writes only those, the scratch (16 words), q0–q7 (declared as
    // s0–s31), flags and its operands (the sums in r0, r2, r10, r12: `VADDV` takes even
    // registers; a narrowing store's base in r1); no stack.
    unsafe {
        asm_clobbering_s0_s31!(
            // the constants of exp2_lanes! for bits = 15: 17 and 15 − 30; −1 for weight_half!
            "vmov.i32 q6, #17",
            "vmvn.i32 q7, #14",
            "vmov.i8 q5, #0xff",
            "1:",
            // the block maxima
            "vldrw.u32 q1, [{scr}]",
            "vadd.i32 q1, q1, {l}",
            "vldrw.u32 q0, [q1]",
            "vldrw.u32 q2, [q1, #4]!",
            "vmax.s32 q0, q0, q2",
            "vldrw.u32 q2, [q1, #4]!",
            "vmax.s32 q0, q0, q2",
            "vldrw.u32 q2, [q1, #4]!",
            "vmax.s32 q0, q0, q2",
            "vldrw.u32 q2, [q1, #4]!",
            "vmax.s32 q0, q0, q2",
            "vldrw.u32 q2, [q1, #4]!",
            "vmax.s32 q0, q0, q2",
            "vldrw.u32 q2, [q1, #4]!",
            "vmax.s32 q0, q0, q2",
            "vldrw.u32 q2, [q1, #4]!",
            "vmax.s32 q0, q0, q2",
            "mvn r0, #-2147483648",
            "vminv.s32 r0, q0",
            "cmp.w r0, #-2147483648",
            "beq 8f",
            // new = max(reference, m) stored, the old kept; t = new − reference (wrapping)
            "vldrw.u32 q2, [{refp}]",
            "vmax.s32 q3, q2, q0",
            "vstrw.32 q2, [{scr}, #32]",
            "vstrw.32 q3, [{refp}]",
            "vsub.i32 q0, q3, q2",
            exp2_lanes!(),
            "vstrw.32 q1, [{scr}, #48]",
            // q3 = round(sum · factor / 2^15) = (2 sum · factor 2^16 + 2^31) >> 32
            "vldrw.u32 q2, [{sump}]",
            "vshl.i32 q2, q2, #1",
            "vshl.i32 q4, q1, #16",
            "vrmulh.u32 q3, q2, q4",
            // the weights against the new references ({refp} advanced to the next group)
            weight_row!("[{refp}], #16", "r0"),
            weight_row!("[{refp}, #-12]", "r2"),
            weight_row!("[{refp}, #-8]", "r10"),
            weight_row!("[{refp}, #-4]", "r12"),
            // the new sums, each at most SUM_LIMIT (rows 0 and 2, then 1 and 3: the order of
            // a two-lane move's registers)
            "vmov q0[2], q0[0], r0, r10",
            "vmov q0[3], q0[1], r2, r12",
            "vadd.i32 q0, q0, q3",
            // (from r0, row 0's block sum: at most lane 0)
            "vmaxv.u32 r0, q0",
            "cmp.w r0, #8388608",
            "bhi 7f",
            "vstrw.32 q0, [{sump}], #16",
            // the sums to rescale: a factor below the bound
            "vldrw.u32 q1, [{scr}, #48]",
            "mov.w r0, #-1",
            "vminv.u32 r0, q1",
            "ldr r2, [{scr}, #16]",
            "cmp r0, r2",
            "blo 5f",
            "4:",
            "cmp {l}, {end}",
            "bne 1b",
            "b 8f",
            "5:",
            rescale_lanes!("48", "0"),
            rescale_lanes!("52", "16"),
            rescale_lanes!("56", "32"),
            rescale_lanes!("60", "48"),
            "b 4b",
            // a sum past the limit: the group's references back, {l} back to its start
            "7:",
            "vldrw.u32 q0, [{scr}, #32]",
            "vstrw.32 q0, [{refp}, #-16]",
            "sub {l}, #128",
            "8:",
            l = inout(reg) start => stop,
            refp = inout(reg) refp => _,
            sump = inout(reg) sum.as_mut_ptr().wrapping_add(4 * first) => _,
            scr = in(reg) scr,
            end = in(reg) end,
            table = in(reg) POW2_MIDPOINTS.as_ptr(),
            inout("r1") pairs.as_mut_ptr().wrapping_add(first * 2 * KEY_BLOCK) => _,
            out("r0") _,
            out("r2") _,
            out("r10") _,
            out("r12") _,
            out("lr") _,
            options(nostack),
        );
    }
    // the groups admitted: 4 · KEY_BLOCK logits each
    Some((stop as usize).wrapping_sub(start as usize) / (4 * KEY_BLOCK * 4) + first)
}

/// The offsets of four consecutive rows of logits in words (`KEY_BLOCK` apart), which are
/// those of their weight pairs in halfwords.
static ROW_OFFSETS: [u32; 4] = [
    0,
    KEY_BLOCK as u32,
    2 * KEY_BLOCK as u32,
    3 * KEY_BLOCK as u32,
];

/// `a = rescale(a, factor)` for the `ROWS` words of row `c` (at `c · ROWS`) of every whole
/// group of `group` words of `acc` (`factor < 2^15`, else `false`): `admit_rows`' rescaling,
/// a vector per group. `round(a · f / 2^15) = (2 · a · (f · 2^16) + 2^31) >> 32`: `VQRDMULH.S32`
/// by `f · 2^16 < 2^31` (its saturation needs both factors `−2^31`: never), the `i64`
/// product's bits. `false`, nothing written, if the row is not inside a group.
#[inline(always)]
pub(crate) fn rescale_row(acc: &mut [i32], group: usize, c: usize, factor: u32) -> bool {
    let offset = c.saturating_mul(ROWS);
    if group == 0 || offset.saturating_add(ROWS) > group || factor >= 1 << 15 {
        return false;
    }
    let groups = acc.len() / group;
    // row c of group 0 (dereferenced only when there is a whole group: inside acc)
    let start = acc.as_mut_ptr().wrapping_add(offset);
    // SAFETY: the loop reads and writes acc[g · group + offset .. + ROWS] for g < groups =
    // acc.len() / group, each inside acc as offset + ROWS ≤ group. The block writes only those
    // words, q0 (declared as s0–s3; caller-saved), lr, flags and its inout operands; no
    // stack.
    unsafe {
        asm!(
            "wls lr, {n}, 2f",
            "1:",
            "vldrw.u32 q0, [{a}]",
            "vqrdmulh.s32 q0, q0, {f}",
            "vstrw.32 q0, [{a}]",
            "add {a}, {a}, {step}",
            "le lr, 1b",
            "2:",
            f = in(reg) factor << 16,
            n = in(reg) groups,
            a = inout(reg) start => _,
            step = in(reg) group * 4,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            options(nostack),
        );
    }
    true
}

/// LARA's segment means in place: `sums[e] = ±⌊(2^7 · |sums[e]| + ⌊len / 2⌋) / len⌋` (the sign
/// of the sum), the 32-bit path of `segment_means`' `mean`, for `2 ≤ len < 2^16` (else
/// `false`, nothing written) and `|sums[e]| ≤ 2^7 · len` (every segment sum of `len` rows of
/// `i8`). The division is a multiplication by `m = ⌈2^(31 + l) / len⌉`, `l = ⌈log2 len⌉`
/// (`2^31 < m < 2^32`), and a shift: with `m · len = 2^(31 + l) + ε`, `0 ≤ ε < len ≤ 2^l`, the
/// numerator `n < 2^31` gives `n · ε < 2^(31 + l)`, so `⌊n · m / 2^(31 + l)⌋ = ⌊n / len⌋`
/// (Granlund and Montgomery); `VMULH.U32`, then a right shift by `l − 1`.
#[inline(always)]
pub(crate) fn segment_means(sums: &mut [i32], len: usize) -> bool {
    if !(2..1 << 16).contains(&len) {
        return false;
    }
    let len = len as u32;
    let l = 32 - (len - 1).leading_zeros();
    // m = ⌈2^63 / (len · 2^(32 − l))⌉ in 32-bit arithmetic (no 64-bit division routine, whose
    // frame would add to the stack): 2^31 for a power of two
    let m = if len.is_power_of_two() {
        1 << 31
    } else {
        divide_normalized(u32::MAX >> 1, u32::MAX, len << (32 - l)) + 1
    };
    // SAFETY: the loop reads and writes sums[0 .. sums.len()] (tail-predicated). The block
    // writes only sums, q0, q1, q3 (declared as s0–s7, s12–s15; caller-saved), lr, flags and
    // its inout operands; no stack.
    unsafe {
        asm!(
            "vdup.32 q3, {m}",
            "wlstp.32 lr, {n}, 2f",
            "1:",
            "vldrw.u32 q0, [{s}]",
            // n = (|sum| << 7) + len / 2; ⌊n / len⌋ = ⌊n · m / 2^32⌋ >> (l − 1)
            "vabs.s32 q1, q0",
            "vshl.i32 q1, q1, #7",
            "vadd.i32 q1, q1, {half}",
            "vmulh.u32 q1, q1, q3",
            "vshl.u32 q1, {shift}",
            // the sum's sign: (q ^ s) − s, s = sum >> 31
            "vshr.s32 q0, q0, #31",
            "veor q1, q1, q0",
            "vsub.i32 q1, q1, q0",
            "vstrw.32 q1, [{s}], #16",
            "letp lr, 1b",
            "2:",
            m = in(reg) m,
            n = in(reg) sums.len(),
            s = inout(reg) sums.as_mut_ptr() => _,
            half = in(reg) len / 2,
            shift = in(reg) 1 - l as i32,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            options(nostack),
        );
    }
    true
}

/// One landmark `c` (row `r = c mod 4` of its byte blocks) from its means `q̄`, `k̄` (`dim`
/// each, `dim` a non-zero multiple of 8): `q̄ᵀ = (q̄ + 64) & !127` (`t_landmark`) into
/// `q_block`, `mu = clamp(round((q̄ << q_p) ·
/// q_m / 2^32) + round((k̄ << k_p) · k_m / 2^32), ±2^14)` (`VRMULH.S32`) into `mu_block` (their
/// `i16` slots, `VSTRH.32`, 4 lanes at a time: each chunk of 8 holds 8 consecutive halfwords
/// of row `r`) and into `mu_row` (plain `i32`); the landmark loop of `segment_means` with
/// `Multiplier::high_word_small`. `false`, nothing written, if the lengths do not fit.
#[inline(always)]
pub(crate) fn landmark_row(
    (q_bar, k_bar): (&[i32], &[i32]),
    ((q_m, q_p), (k_m, k_p)): ((i32, u32), (i32, u32)),
    (q_block, mu_block, r): (&mut [i32], &mut [i32], usize),
    mu_row: &mut [i32],
) -> bool {
    let dim = q_bar.len();
    let fits = dim != 0
        && dim.is_multiple_of(CHUNK)
        && k_bar.len() == dim
        && mu_row.len() == dim
        && q_block.len() >= 2 * dim
        && mu_block.len() >= 2 * dim
        && r < ROWS;
    if !fits {
        return false;
    }
    // row r's halfwords in the first chunk: byte r · 16
    let (qb, mb) = (
        q_block.as_mut_ptr().wrapping_add(r * 4),
        mu_block.as_mut_ptr().wrapping_add(r * 4),
    );
    // SAFETY: the loop (dim / 8 iterations) reads q_bar and k_bar (dim words each), writes
    // mu_row (dim words), and writes the halfwords 32k + 8r + i (k < dim / 8, i < 8) of both
    // blocks, below 4 · dim halfwords = 2 · dim ≤ their words. The block writes only those,
    // q0–q4 (declared as s0–s19; caller-saved), lr, flags and its inout operands (the
    // block pointers in r0 and r1: the narrowing stores take low registers); no stack.
    unsafe {
        asm!(
            "vdup.32 q2, {qm}",
            "vdup.32 q3, {km}",
            "vmov.i32 q4, #64",
            "mov {qm}, #16384",
            "dls lr, {chunks}",
            "1:",
            // elements 0-3 of the chunk
            "vldrw.u32 q0, [{qs}], #16",
            // q̄ᵀ = (q̄ + 64) & !127
            "vadd.i32 q1, q0, q4",
            "vbic.i32 q1, #127",
            "vstrh.32 q1, [r0]",
            "vldrw.u32 q1, [{ks}], #16",
            "vshl.u32 q0, {qp}",
            "vrmulh.s32 q0, q0, q2",
            "vshl.u32 q1, {kp}",
            "vrmulh.s32 q1, q1, q3",
            "vadd.i32 q0, q0, q1",
            // clamp to [-2^14, 2^14]
            "vdup.32 q1, {qm}",
            "vmin.s32 q0, q0, q1",
            "vneg.s32 q1, q1",
            "vmax.s32 q0, q0, q1",
            "vstrh.32 q0, [r1]",
            "vstrw.32 q0, [{mr}], #16",
            // elements 4-7
            "vldrw.u32 q0, [{qs}], #16",
            // q̄ᵀ = (q̄ + 64) & !127
            "vadd.i32 q1, q0, q4",
            "vbic.i32 q1, #127",
            "vstrh.32 q1, [r0, #8]",
            "vldrw.u32 q1, [{ks}], #16",
            "vshl.u32 q0, {qp}",
            "vrmulh.s32 q0, q0, q2",
            "vshl.u32 q1, {kp}",
            "vrmulh.s32 q1, q1, q3",
            "vadd.i32 q0, q0, q1",
            // clamp to [-2^14, 2^14]
            "vdup.32 q1, {qm}",
            "vmin.s32 q0, q0, q1",
            "vneg.s32 q1, q1",
            "vmax.s32 q0, q0, q1",
            "vstrh.32 q0, [r1, #8]",
            "vstrw.32 q0, [{mr}], #16",
            // the next chunk: 4 rows of 8 halfwords on
            "adds r0, #64",
            "adds r1, #64",
            "le lr, 1b",
            qm = inout(reg) q_m => _,
            km = in(reg) k_m,
            qp = in(reg) q_p,
            kp = in(reg) k_p,
            chunks = in(reg) dim / CHUNK,
            qs = inout(reg) q_bar.as_ptr() => _,
            ks = inout(reg) k_bar.as_ptr() => _,
            mr = inout(reg) mu_row.as_mut_ptr() => _,
            inout("r0") qb => _,
            inout("r1") mb => _,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            options(nostack),
        );
    }
    true
}

/// `q̄ᵀ`'s byte blocks as `i8` for `T`'s `i8 × i8` dot products: each `i16` block of `blocks`
/// (four rows of `dim` values, multiples of 128: [`t_landmark`](super::lara::t_landmark)) into
/// an `i8` block of `out` (`dim` words: per chunk of 16 columns the four rows' 16 bytes), the
/// values divided by 128 (`VSHR.S16 #7`, exact; `VSTRB.16` keeps the low bytes). `false`,
/// nothing written, unless `dim` is a non-zero multiple of 16 and `out` holds the blocks.
#[inline(never)]
pub(crate) fn narrow_blocks(blocks: &[i32], out: &mut [i32], dim: usize) -> bool {
    let count = blocks.len() / (2 * dim).max(1);
    if dim == 0 || !dim.is_multiple_of(2 * CHUNK) || count == 0 || out.len() < count * dim {
        return false;
    }
    // SAFETY: the loop (count · dim / 16 turns, each a chunk of 16 columns of a block) reads
    // 128 bytes of blocks per turn (count · 2 · dim words in all, within blocks) and writes 64
    // bytes of out per turn (count · dim words, within out); it writes only those, q0 and q1
    // (declared as s0–s7), lr, flags and its inout operands; no stack.
    unsafe {
        asm!(
            "dls lr, {turns}",
            "1:",
            // row r's 16 columns: chunk 2k (bytes 16r) and 2k + 1 (bytes 64 + 16r) of the
            // i16 block, to bytes 16r of the i8 block's chunk k
            "vldrh.s16 q0, [{src}]",
            "vldrh.s16 q1, [{src}, #64]",
            "vshr.s16 q0, q0, #7",
            "vshr.s16 q1, q1, #7",
            "vstrb.16 q0, [{dst}]",
            "vstrb.16 q1, [{dst}, #8]",
            "vldrh.s16 q0, [{src}, #16]",
            "vldrh.s16 q1, [{src}, #80]",
            "vshr.s16 q0, q0, #7",
            "vshr.s16 q1, q1, #7",
            "vstrb.16 q0, [{dst}, #16]",
            "vstrb.16 q1, [{dst}, #24]",
            "vldrh.s16 q0, [{src}, #32]",
            "vldrh.s16 q1, [{src}, #96]",
            "vshr.s16 q0, q0, #7",
            "vshr.s16 q1, q1, #7",
            "vstrb.16 q0, [{dst}, #32]",
            "vstrb.16 q1, [{dst}, #40]",
            "vldrh.s16 q0, [{src}, #48]",
            "vldrh.s16 q1, [{src}, #112]",
            "vshr.s16 q0, q0, #7",
            "vshr.s16 q1, q1, #7",
            "vstrb.16 q0, [{dst}, #48]",
            "vstrb.16 q1, [{dst}, #56]",
            "adds {src}, #128",
            "adds {dst}, #64",
            "le lr, 1b",
            turns = in(reg) count * dim / (2 * CHUNK),
            src = inout(reg) blocks.as_ptr() => _,
            dst = inout(reg) out.as_mut_ptr() => _,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            options(nostack),
        );
    }
    true
}

/// `sum[t] = Σ_i rows[i · dim + t]` for `t < dim` over the whole rows of `rows` (`i8`, `dim`
/// a non-zero multiple of 8; else `false`, nothing written): LARA's segment sums, the same
/// integer sums. Up to 256 rows and `dim` a multiple of 16: per 16 columns two vectors of
/// `i16` lanes over the rows (`VLDRB.S16`; `256 · 128 = 2^15`, so the wrapping lanes end on the
/// exact sums), widened at the end (`VMOVLB`/`VMOVLT` for the even and odd columns, stored
/// interleaved by `VST20`/`VST21`); else per 8 columns two `i32` accumulators (`VLDRB.S32`).
#[inline(always)]
pub(crate) fn sum_rows(sum: &mut [i32], rows: &[i8], dim: usize) -> bool {
    if dim == 0 || !dim.is_multiple_of(CHUNK) || sum.len() < dim {
        return false;
    }
    let count = rows.len() / dim;
    if count <= 256 && dim.is_multiple_of(2 * CHUNK) {
        // SAFETY: for each of the dim / 16 column groups the loop reads rows[i · dim + 16g ..
        // + 16] for i < count = rows.len() / dim (inside rows) and writes sum[16g .. 16g + 16]
        // (inside sum[..dim]). The block writes only sum, q0–q3 (declared as s0–s15;
        // caller-saved), lr, flags and its inout operands (the row pointer in r3: the widening
        // loads take low registers); no stack.
        unsafe {
            asm!(
                "2:",
                "vmov.i32 q0, #0",
                "vmov.i32 q1, #0",
                "mov r3, {r}",
                "wls lr, {count}, 4f",
                "3:",
                "vldrb.s16 q2, [r3]",
                "vldrb.s16 q3, [r3, #8]",
                "vadd.i16 q0, q0, q2",
                "vadd.i16 q1, q1, q3",
                "add r3, r3, {dim}",
                "le lr, 3b",
                "4:",
                // the i16 sums as i32, the even and odd columns interleaved back
                "vmovlb.s16 q2, q0",
                "vmovlt.s16 q3, q0",
                "vst20.32 {{q2, q3}}, [{s}]",
                "vst21.32 {{q2, q3}}, [{s}]!",
                "vmovlb.s16 q2, q1",
                "vmovlt.s16 q3, q1",
                "vst20.32 {{q2, q3}}, [{s}]",
                "vst21.32 {{q2, q3}}, [{s}]!",
                "adds {r}, #16",
                "subs {groups}, #1",
                "bne 2b",
                s = inout(reg) sum.as_mut_ptr() => _,
                r = inout(reg) rows.as_ptr() => _,
                count = in(reg) count,
                dim = in(reg) dim,
                groups = inout(reg) dim / (2 * CHUNK) => _,
                out("r3") _,
                out("lr") _,
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                options(nostack),
            );
        }
        return true;
    }
    // SAFETY: for each of the dim / 8 column groups the loop writes sum[8g .. 8g + 8] (inside
    // sum[..dim]) and reads rows[i · dim + 8g .. + 8] for i < count = rows.len() / dim (inside
    // rows). The block writes only sum, q0–q3 (declared as s0–s15; caller-saved), lr, flags and
    // its inout operands (the row pointer in r3: the widening loads take low registers); no
    // stack.
    unsafe {
        asm!(
            "2:",
            "vmov.i32 q0, #0",
            "vmov.i32 q1, #0",
            "mov r3, {r}",
            "wls lr, {count}, 4f",
            "3:",
            "vldrb.s32 q2, [r3]",
            "vldrb.s32 q3, [r3, #4]",
            "vadd.i32 q0, q0, q2",
            "vadd.i32 q1, q1, q3",
            "add r3, r3, {dim}",
            "le lr, 3b",
            "4:",
            "vstrw.32 q0, [{s}], #16",
            "vstrw.32 q1, [{s}], #16",
            "adds {r}, #8",
            "subs {groups}, #1",
            "bne 2b",
            s = inout(reg) sum.as_mut_ptr() => _,
            r = inout(reg) rows.as_ptr() => _,
            count = in(reg) count,
            dim = in(reg) dim,
            groups = inout(reg) dim / CHUNK => _,
            out("r3") _,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            options(nostack),
        );
    }
    true
}

/// RFA's query projections in place: `a = to_logit(scale · a)`; returns the largest
/// (`i32::MIN` for none): [`query_logits`] without the biases.
#[inline(always)]
pub(crate) fn projections(a: &mut [i32], scale: Scale32) -> i32 {
    let (value, pre_shift) = scale.parts();
    let mut max = i32::MIN;
    // SAFETY: the loop reads and writes a[0 .. a.len()] (tail-predicated). The block writes
    // only a, q0, q1 (declared as s0–s7; caller-saved), lr, flags and its inout operands; no
    // stack.
    unsafe {
        asm!(
            "vdup.32 q1, {value}",
            "wlstp.32 lr, {n}, 2f",
            "1:",
            "vldrw.u32 q0, [{a}]",
            "vshl.u32 q0, {pre}",
            "vrmulh.s32 q0, q0, q1",
            "vqshl.s32 q0, q0, #3",
            "vshr.s32 q0, q0, #3",
            "vstrw.32 q0, [{a}], #16",
            "vmaxv.s32 {max}, q0",
            "letp lr, 1b",
            "2:",
            n = in(reg) a.len(),
            a = inout(reg) a.as_mut_ptr() => _,
            value = in(reg) value,
            pre = in(reg) pre_shift,
            max = inout(reg) max,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            options(nostack),
        );
    }
    max
}

/// RFA's `φq` before scaling, in place: `a = ratio · exp2_neg(min((max − a) + norm, 2^32 − 1),
/// 15) + floor` (as `u32`: `ratio ≤ 2^16`, so below `2^31 + floor`) for `a ≤ max` and
/// `norm ≥ 0` (the gap `clamp(max + norm − a, 0, 2^32 − 1)` of the portable code,
/// `VQADD.U32`); returns their sum (`VADDLVA.U32`, 64 bits).
#[inline(always)]
pub(crate) fn rfa_phi(a: &mut [i32], (max, norm): (i32, i32), ratio: u32, floor: u32) -> u64 {
    let (mut low, mut high) = (0u32, 0u32);
    // SAFETY: the loop reads and writes a[0 .. a.len()] (tail-predicated); the gathers read
    // POW2_MIDPOINTS at indices masked to 0..1024 (its
    // length). The block writes only a, q0–q7 (declared as
    // s0–s31), lr, flags and its inout operands (the sum in r0, r1: `VADDLVA` takes an even
    // and an odd register); no stack.
    unsafe {
        exp2_asm!(
            15u32,
            [
                "vdup.32 q5, {ratio}",
                "wlstp.32 lr, {n}, 2f",
                "1:",
                // gap = (max − a) + norm, saturating (both parts non-negative)
                "vldrw.u32 q0, [{a}]",
                "vneg.s32 q0, q0",
                "vadd.i32 q0, q0, {max}",
                "vqadd.u32 q0, q0, {norm}",
                exp2_lanes!(),
                "vmul.i32 q1, q1, q5",
                "vadd.i32 q1, q1, {floor}",
                "vstrw.32 q1, [{a}], #16",
                "vaddlva.u32 r0, r1, q1",
                "letp lr, 1b",
                "2:",
            ],
            n = in(reg) a.len(),
            a = inout(reg) a.as_mut_ptr() => _,
            max = in(reg) max,
            norm = in(reg) norm,
            ratio = in(reg) ratio,
            floor = in(reg) floor,
            inout("r0") low,
            inout("r1") high,
        );
    }
    u64::from(high) << 32 | u64::from(low)
}

/// The loops against the portable code: `None`, or the first argument that differs. Every
/// `t` step 3 up to `2^21` (every non-zero `Q15` weight), and the ends of the `u32` range, in
/// every lane position and with every tail.
pub(crate) fn check() -> Option<usize> {
    let mut weights = [0i32; 7];
    let swept = sweep_weight_blocks(|reference, live| {
        let ws = &mut weights[..live.len()];
        let sum = weights_q15(reference, live, ws);
        let mut expected_sum = 0u32;
        for (&logit, &w) in live.iter().zip(ws.iter()) {
            let expected = weight_q15(reference.wrapping_sub(logit) as u32);
            expected_sum = expected_sum.wrapping_add(expected);
            if w as u32 != expected {
                return true;
            }
        }
        sum != expected_sum
    });
    if swept.is_some() {
        return swept;
    }
    // T: dots across the logit range and past it, references around them
    let scale = Scale32::new(0.03, 1 << 24)?;
    let mut seed = 0x7f4a_7c15u32;
    let mut next = move || crate::simd::int8::xorshift32(&mut seed);
    for len in 0..40usize {
        let mut dots = [0i32; 40];
        let mut references = [0i32; 40];
        for (d, r) in dots.iter_mut().zip(references.iter_mut()) {
            *d = (next() as i32) >> (next() % 24);
            *r = (next() as i32) >> (next() % 28);
        }
        let expected: [i32; 40] = core::array::from_fn(|c| {
            let logit = to_logit(scale.apply(dots[c]));
            exp2_neg_branchless(references[c].wrapping_sub(logit).max(0) as u32, 27) as i32
        });
        let sum = t_row(&mut dots[..len], &references, scale);
        let expected_sum = expected[..len]
            .iter()
            .fold(0u32, |s, &t| s.wrapping_add(t as u32));
        if dots[..len] != expected[..len] || sum != expected_sum {
            return Some(len);
        }
    }
    // T at every t below 2^17 (every entry of both tables of 2^-t)
    if let Some(first) = sweep_t_rows(scale, &mut next, t_row) {
        return Some(first);
    }
    // the densities' sums
    if let Some(chunks) = crate::simd::int8::check_density_sums(&mut next, density_sums) {
        return Some(chunks);
    }
    // the densities' rows (DensityRows) against density_sums, Multiplier::apply and
    // weight_q15: one to three blocks of landmarks (1 to 12 of them) of one to four chunks,
    // two blocks of samples, i16 halves at the ends and between, multipliers' shifts 32 to 70
    // (62 and past it: capped), any mantissa, and larger ones for the saturation
    #[cfg(not(lara_attn_compact))]
    for round in 0..96usize {
        const CHUNK_WORDS: usize = CHUNK * ROWS / 2;
        let (blocks, chunks) = (1 + round % 3, 1 + (round / 3) % 4);
        let (block, count) = (CHUNK_WORDS * chunks, 1 + round % (4 * blocks));
        let mut words = [0i32; 5 * 4 * CHUNK_WORDS];
        for word in words.iter_mut() {
            let mut half = || match next() % 4 {
                0 => -(1 << 14),
                1 => 1 << 14,
                _ => (next() % 32769) as i32 - 16384,
            };
            *word = crate::simd::int8::pair(half(), half());
        }
        let (w, mu) = words.split_at(2 * block);
        let mu = &mu[..count.div_ceil(ROWS) * block];
        let exponent = 150 - (32 + (round as u32 * 7) % 39);
        let factor = Multiplier::from_f32(f32::from_bits(exponent << 23 | next() >> 9))?;
        let (m, term, shift) = factor.high_word()?;
        // (every fourth round a mantissa 64 times as large: logits past 2^28, saturated)
        let m = if round % 4 == 3 { m << 6 } else { m };
        let mut logits = [0i32; 3 * 4 * 3 + 3 * 8];
        let samples = 1 + round % 8;
        let high = Some((m, term, shift));
        let Some(mut rows) = DensityRows::new((w, block), (mu, count), samples, &mut logits, high)
        else {
            return Some(round);
        };
        // biases across the i32 range, the balances dirty
        let mut biases = [0i32; 8];
        for b in biases.iter_mut() {
            *b = (next() as i32) >> (next() % 32);
        }
        let (mut ours, mut balances) = (biases, [0x3c3c; 8]);
        let (repeats, mixture) = (i32::from(round % 2 == 0) << 16, round % 3 == 0);
        let weighting = if mixture {
            crate::lara::Weighting::Biased
        } else {
            crate::lara::Weighting::Optimal { alpha_coeff: 1.0 }
        };
        rows.run((&mut balances[..samples], &mut ours), repeats, mixture);
        for c in 0..samples {
            let w_block = &w[c / ROWS * block..][..block];
            let expected: [i32; 12] = core::array::from_fn(|i| {
                let mu_block = &mu[(i / ROWS * block).min(mu.len() - block)..][..block];
                let (dot, squares) = density_sums(w_block, c % ROWS, mu_block, i % ROWS);
                // apply's bits (wrapping), its rounding term and shift from the high word
                let x = 2 * dot - squares;
                let scaled = x.wrapping_mul(m).wrapping_add(term) >> (32 + shift);
                if round % 4 != 3 && scaled != factor.apply(x) {
                    return i32::MIN;
                }
                to_logit_wide(scaled)
            });
            let expected = &expected[..count];
            let max = expected.iter().copied().max().unwrap_or(0);
            let total = expected.iter().fold(0u32, |sum, &l| {
                sum.wrapping_add(weight_q15(max.wrapping_sub(l) as u32))
            });
            let stats = (max, total, expected[c % count]);
            let (mut balance, mut bias) = (0, biases[c]);
            super::lara::density_bias(
                weighting,
                stats,
                repeats,
                (Some(&mut balance), Some(&mut bias)),
            );
            let last = c + 1 == samples && rows.logits() != expected;
            if (balances[c], ours[c]) != (balance, bias) || last {
                return Some(round);
            }
        }
        if ours[samples..] != biases[samples..] || balances[samples..].iter().any(|&b| b != 0x3c3c)
        {
            return Some(round);
        }
    }
    // the densities' balances and biases (density_biases) against the portable code: sums
    // of every bit length and at the ends of the u32 range, logits across their range and
    // past it, biases across the i32 range (saturating), every tail
    #[cfg(not(lara_attn_compact))]
    for round in 0..1024usize {
        let samples = 1 + round % 7;
        let mut stats = [0i32; 24];
        for (i, word) in stats.iter_mut().enumerate() {
            *word = match (i % 12) / 4 {
                // the sums: a random bit length, or an end
                0 => match next() % 16 {
                    0 => [0, 1, 2, u32::MAX, u32::MAX - 1, 1 << 31][next() as usize % 6] as i32,
                    _ => (next() >> (next() % 32)) as i32,
                },
                // LM[c, c] and the largest: within ±2^29
                _ => (next() as i32) >> (2 + next() % 30),
            };
        }
        let mut biases = [0i32; 8];
        for b in biases.iter_mut() {
            *b = match next() % 4 {
                0 => i32::MAX - (next() >> 6) as i32,
                1 => i32::MIN + (next() >> 6) as i32,
                _ => (next() as i32) >> (next() % 32),
            };
        }
        let (mut ours, mut balances) = (biases, [0x3c3c; 8]);
        let (repeats, mixture) = (i32::from(round % 2 == 0) << 16, round % 3 == 0);
        let weighting = if mixture {
            crate::lara::Weighting::Biased
        } else {
            crate::lara::Weighting::Optimal { alpha_coeff: 1.0 }
        };
        density_biases(
            &stats,
            samples,
            (&mut balances, &mut ours),
            repeats,
            mixture,
        );
        for c in 0..8 {
            let (mut balance, mut bias) = (0x3c3c, biases[c]);
            if c < samples {
                let word = |v: usize| stats[12 * (c / 4) + 4 * v + c % 4];
                let stats = (word(2), word(0) as u32, word(1));
                let outputs = (Some(&mut balance), Some(&mut bias));
                super::lara::density_bias(weighting, stats, repeats, outputs);
            }
            if (balances[c], ours[c]) != (balance, bias) {
                return Some(round);
            }
        }
    }
    // the key pass's log sums (log_sums) against Running::log_sum: sums of every bit length and
    // at the ends of the u32 range, references across the i32 range (both saturations), every
    // tail
    #[cfg(not(lara_attn_compact))]
    for round in 0..256usize {
        let n = round % 9;
        let (mut sums, mut references) = ([0i32; 8], [0i32; 8]);
        for (s, r) in sums.iter_mut().zip(references.iter_mut()) {
            *s = match next() % 16 {
                0 => [0, 1, 2, u32::MAX, u32::MAX - 1, 1 << 31][next() as usize % 6] as i32,
                _ => (next() >> (next() % 32)) as i32,
            };
            *r = match next() % 4 {
                0 => i32::MAX - (next() >> 8) as i32,
                1 => i32::MIN + (next() >> 8) as i32,
                _ => (next() as i32) >> (next() % 32),
            };
        }
        let mut ours = [0x3c3ci32; 9];
        if !log_sums(&mut ours, (&references, &sums), n.min(8)) {
            return Some(round);
        }
        for (c, &b) in ours.iter().enumerate() {
            let expected = if c < n.min(8) {
                let state = super::fixed_point::Running {
                    reference: references[c],
                    sum: sums[c] as u32,
                };
                state.log_sum()
            } else {
                0x3c3c
            };
            if b != expected {
                return Some(round);
            }
        }
    }
    // query logits: dots across the range and past it, biases across the i32 range
    for len in 0..40usize {
        let mut dots = [0i32; 40];
        let mut biases = [0i32; 40];
        for (d, b) in dots.iter_mut().zip(biases.iter_mut()) {
            *d = (next() as i32) >> (next() % 24);
            // an eighth near each end of the range (where the sum saturates)
            *b = match next() % 8 {
                0 => i32::MAX - (next() >> 6) as i32,
                1 => i32::MIN + (next() >> 6) as i32,
                _ => (next() as i32) >> (next() % 32),
            };
        }
        let expected: [i32; 40] =
            core::array::from_fn(|c| to_logit(scale.apply(dots[c]).saturating_add(biases[c])));
        let max = query_logits(&mut dots[..len], &biases, scale);
        let expected_max = expected[..len].iter().copied().max().unwrap_or(i32::MIN);
        if dots[..len] != expected[..len] || max != expected_max {
            return Some(len);
        }
    }
    // α: T up to 2^27, balances across the i32 range (saturating), every alpha_coeff end
    for len in 0..40usize {
        let mut t = [0i32; 40];
        let mut balances = [0i32; 40];
        for (t, b) in t.iter_mut().zip(balances.iter_mut()) {
            *t = (next() >> (5 + next() % 27)) as i32;
            *b = (next() as i32) >> (next() % 32);
        }
        let t_mean = (next() >> 5) as i32;
        let coeff = match len % 4 {
            0 => 1 << 19,
            1 => -(1 << 19),
            _ => (next() as i32) >> 12,
        };
        let mut ours = [0i32; 40];
        alphas(&mut ours[..len], (&balances, &t), t_mean, coeff);
        for c in 0..len {
            let spread = ((i64::from(coeff) * i64::from(t[c] - t_mean) + (1 << 15)) >> 16) as i32;
            if ours[c] != balances[c].saturating_add(spread).max(1) {
                return Some(len);
            }
        }
    }
    // the fused query steps against the loops above: logits and T (another scale, another
    // pre-shift), then α and the weights (not built for size: no QuerySteps there)
    #[cfg(not(lara_attn_compact))]
    let t_scale = Scale32::new(0.0007, 1 << 16)?;
    #[cfg(not(lara_attn_compact))]
    for len in 0..40usize {
        let mut logits = [0i32; 40];
        let (mut biases, mut t, mut references, mut balances) =
            ([0i32; 40], [0; 40], [0; 40], [0; 40]);
        for c in 0..40 {
            logits[c] = (next() as i32) >> (next() % 24);
            biases[c] = match next() % 8 {
                0 => i32::MAX - (next() >> 6) as i32,
                1 => i32::MIN + (next() >> 6) as i32,
                _ => (next() as i32) >> (next() % 32),
            };
            t[c] = (next() as i32) >> (next() % 24);
            references[c] = (next() as i32) >> (next() % 28);
            balances[c] = match next() % 8 {
                0 => i32::MIN + (next() >> 8) as i32,
                1 => -((next() >> (next() % 32)) as i32),
                _ => (next() as i32) >> (next() % 32),
            };
        }
        if len == 0 || len >= 32 {
            continue;
        }
        // both ends of each path's range (the short one below 2^18), any value
        let coeff = match len % 6 {
            0 => 1 << 19,
            1 => -(1 << 19),
            2 => (1 << 18) - 1,
            3 => -(1 << 18) + 1,
            4 => (next() as i32) >> 12,
            _ => (next() as i32) >> 14,
        };
        // the loops one after the other
        let (mut l2, mut t2) = (logits, t);
        let max = query_logits(&mut l2[..len], &biases, scale);
        let sum = t_row(&mut t2[..len], &references, t_scale);
        let t_mean = ((sum + len as u32 / 2) / len as u32) as i32;
        let (mut expected, mut expected_packed) = ([0x55i32; 40], [0i32; 21]);
        alphas(&mut expected[..len], (&balances, &t2), t_mean, coeff);
        let total = query_weights(max, &l2[..len], &mut expected[..len], true);
        let shift = super::fixed_point::bits64(total.max(1)) as i32 - 14;
        let expected_sum = pack_rounded(&expected[..len], &mut expected_packed, shift);
        // the steps in one block (into dirty outputs: the values past len left alone)
        let (mut ours, mut packed, mut words) = ([0x55i32; 40], [0i32; 21], [0i32; 17]);
        let Some(mut steps) = QuerySteps::new(
            &mut words,
            len,
            (&biases, &references, &balances),
            (scale, t_scale),
            coeff,
            (&mut ours, &mut packed),
        ) else {
            return Some(len);
        };
        let ours_sum = steps.run(&mut logits, &mut t);
        if ours_sum != Some(expected_sum)
            || (logits, t) != (l2, t2)
            || (ours, packed) != (expected, expected_packed)
        {
            return Some(len);
        }
    }
    // the query weights (α from 1 to 2^31 − 1) and their packing, every length to 40
    for len in 0..40usize {
        let mut logits = [0i32; 40];
        let mut alphas = [0i32; 40];
        for (l, a) in logits.iter_mut().zip(alphas.iter_mut()) {
            *l = (next() as i32) >> (next() % 32);
            *a = match next() % 8 {
                0 => 1,
                1 => i32::MAX,
                _ => ((next() >> (next() % 32)) as i32).max(1),
            };
        }
        let max = logits[..len].iter().copied().max().unwrap_or(0);
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
            if total != expected_total {
                return Some(len);
            }
        }
        for shift in -31..=32 {
            let mut packed = [0i32; 21];
            let sum = pack_rounded(&alphas[..len], &mut packed[..len.div_ceil(2)], shift);
            let scale = |w: i32| {
                let w = w as u32;
                if shift > 0 {
                    (w.wrapping_shr((shift - 1) as u32) + 1) >> 1
                } else {
                    w << (-shift).min(31) as u32
                }
            };
            let mut expected_sum = 0u32;
            for (i, &word) in packed.iter().enumerate() {
                let (low, high) = match (alphas[..len].get(2 * i), alphas[..len].get(2 * i + 1)) {
                    (Some(&low), high) => (scale(low), high.map_or(0, |&h| scale(h))),
                    _ => (0, 0),
                };
                expected_sum = expected_sum.wrapping_add(low).wrapping_add(high);
                if word != crate::simd::int8::pair(low as i32, high as i32) {
                    return Some(len);
                }
            }
            if sum != expected_sum {
                return Some(len);
            }
        }
    }
    // the key blocks' dots and logit columns in one asm block: one to four chunks, one to
    // three blocks of rows, rows of i8 across the range, offsets across i32 (RFA) or norm
    // terms of three scales and none, against portable_dot_blocks and the portable column
    let norms = [
        None,
        Scale32::new(0.7, 1 << 23),
        Scale32::new(3.1e-4, 1 << 23),
        Scale32::new(41.0, 1 << 19),
    ];
    for len in 0..40usize {
        let (chunks, count) = (1 + len % 4, 1 + len / 4 % 3);
        let dim = chunks * CHUNK;
        let words = crate::simd::int8::block_words(dim);
        let mut blocks = [0i32; 3 * 64];
        for b in blocks.iter_mut() {
            let (low, high) = (next() % 32769, next() % 32769);
            *b = crate::simd::int8::pair(low as i32 - 16384, high as i32 - 16384);
        }
        let mut rows = [0i8; KEY_BLOCK * 32];
        for r in rows.iter_mut() {
            *r = next() as i8;
        }
        let offsets: [i32; KEY_BLOCK] = core::array::from_fn(|jj| match (len + jj) % 4 {
            0 => i32::MIN + (next() >> 4) as i32,
            1 => i32::MAX - (next() >> 4) as i32,
            _ => (next() as i32) >> (next() % 32),
        });
        let (rows, blocks) = (&rows[..KEY_BLOCK * dim], &blocks[..count * words]);
        let mut dots = [0i32; 12];
        let mut ours = [0x5555_5555i32; 13 * KEY_BLOCK];
        let mut expected = ours;
        let loops = crate::simd::int8::Loops::active();
        let scale_parts = (scale.parts(), &offsets);
        let norm = norms[len / 3 % 4];
        let n = count * ROWS;
        // (RFA's projections on every other twelve lengths, each twelve every chunk and block
        // count: p = ssat29(scale · dot), ssat29(p − offset) and the largest p)
        let projection = len / 12 % 2 == 1;
        let start_max = [i32::MIN, (next() as i32) >> 4][len / 2 % 2];
        let (written, max) = if projection {
            let block = crate::simd::int8::dot_projection_block(
                loops,
                (blocks, rows, dim),
                &mut dots[..n],
                &mut ours,
                scale_parts,
                start_max,
            );
            (block.is_some(), block.unwrap_or(0))
        } else {
            let written = crate::simd::int8::dot_logit_block(
                loops,
                (blocks, rows, dim),
                &mut dots[..n],
                &mut ours,
                (scale.parts(), norm.map(Scale32::parts)),
            );
            (written, 0)
        };
        if !written {
            return Some(len);
        }
        let mut expected_max = start_max;
        for (jj, row) in rows.chunks_exact(dim).enumerate() {
            let mut d = [0i32; 12];
            crate::simd::int8::portable_dot_blocks(blocks, row, &mut d[..n]);
            for (r, &dot) in d[..n].iter().enumerate() {
                let scaled = scale.apply(dot);
                expected[r * KEY_BLOCK + jj] = if projection {
                    let p = to_logit(scaled);
                    expected_max = expected_max.max(p);
                    to_logit(p.wrapping_sub(offsets[jj]))
                } else {
                    let squares = crate::simd::int8::portable_squared_norm(row);
                    let offset = norm.map_or(0, |norm| norm.apply(squares));
                    to_logit(scaled.wrapping_sub(offset))
                };
            }
        }
        if ours != expected || (projection && max != expected_max) {
            return Some(len);
        }
    }
    // T's i8 blocks: q̄ᵀ's i16 blocks (multiples of 128 across [-2^14, 2^14 − 128]) narrowed,
    // byte for byte, then their logit columns against the i16 blocks' (one to four chunks of
    // 16, one or two blocks, factors with pre-shifts to 23; T's logits, inside ±2^28)
    for len in 0..16usize {
        let (chunks, count) = (1 + len % 4, 1 + len / 4 % 2);
        let dim = 2 * chunks * CHUNK;
        let words = crate::simd::int8::block_words(dim);
        let mut blocks = [0i32; 2 * 128];
        for b in blocks.iter_mut() {
            let (low, high) = ((next() % 256) as i32 - 128, (next() % 256) as i32 - 128);
            *b = crate::simd::int8::pair(128 * low, 128 * high);
        }
        let blocks = &blocks[..count * words];
        let mut bytes = [0x5a5a_5a5ai32; 2 * 64 + 1];
        if !narrow_blocks(blocks, &mut bytes[..count * dim], dim)
            || bytes[count * dim] != 0x5a5a_5a5a
        {
            return Some(len);
        }
        for (b, block) in blocks.chunks_exact(words).enumerate() {
            for (r, e) in (0..ROWS).flat_map(|r| (0..dim).map(move |e| (r, e))) {
                let value = crate::simd::int8::get_slot(block, crate::simd::int8::byte_slot(r, e));
                let at = b * 4 * dim + (e / 16 * ROWS + r) * 16 + e % 16;
                let byte = (bytes[at / 4] >> (8 * (at % 4))) as i8;
                if i32::from(byte) * 128 != value {
                    return Some(len);
                }
            }
        }
        let mut rows = [0i8; KEY_BLOCK * 64];
        for r in rows.iter_mut() {
            *r = next() as i8;
        }
        let rows = &rows[..KEY_BLOCK * dim];
        // (factors below 2: |scale · dot| < 2^28 for |dot| ≤ 64 · 2^14 · 2^7, T's range)
        let Some(scale) = Scale32::new([0.7, 3.1e-4, 1.9, 2.0e-6][len % 4], 1 << 22) else {
            return Some(len);
        };
        let Some(scale8) = scale.over_128() else {
            return Some(len);
        };
        let n = count * ROWS;
        let mut dots = [0i32; 8];
        let mut ours = [0x5555_5555i32; 9 * KEY_BLOCK];
        let mut expected = ours;
        let written = crate::simd::int8::dot_logit_block_bytes(
            crate::simd::int8::Loops::active(),
            (&bytes[..count * dim], rows, dim),
            &mut dots[..n],
            &mut ours,
            scale8.parts(),
        );
        for (jj, row) in rows.chunks_exact(dim).enumerate() {
            let mut d = [0i32; 8];
            crate::simd::int8::portable_dot_blocks(blocks, row, &mut d[..n]);
            for (r, &dot) in d[..n].iter().enumerate() {
                expected[r * KEY_BLOCK + jj] = to_logit(scale.apply(dot));
            }
        }
        if !written || ours != expected {
            return Some(len);
        }
    }
    // the scaled logit columns: every column, dots across the range, offsets across i32
    for len in 0..40usize {
        let mut dots = [0i32; 40];
        for d in dots.iter_mut() {
            *d = (next() as i32) >> (next() % 24);
        }
        let offset = match len % 4 {
            0 => i32::MIN + (next() >> 4) as i32,
            1 => i32::MAX - (next() >> 4) as i32,
            _ => (next() as i32) >> (next() % 32),
        };
        for column in 0..=KEY_BLOCK {
            // a short last row of logits for some lengths: its slot left alone when missing
            let rows = len + 1;
            let logit_len = (rows * KEY_BLOCK).saturating_sub(len % 3 * 3);
            let mut ours = [0x5555_5555i32; 41 * KEY_BLOCK];
            let mut expected = ours;
            logit_column(&mut ours[..logit_len], column, &dots[..len], scale, offset);
            super::store_logit_column(&mut expected[..logit_len], column, &dots[..len], |_, d| {
                to_logit(scale.apply(d).wrapping_sub(offset))
            });
            if ours != expected {
                return Some(len);
            }
        }
    }
    // RFA's key logits and their largest projection: as the logit columns
    for len in 0..40usize {
        let mut dots = [0i32; 40];
        for d in dots.iter_mut() {
            *d = (next() as i32) >> (next() % 24);
        }
        let offset = match len % 4 {
            0 => i32::MIN + (next() >> 4) as i32,
            1 => i32::MAX - (next() >> 4) as i32,
            _ => (next() as i32) >> (next() % 32),
        };
        for column in 0..=KEY_BLOCK {
            let logit_len = ((len + 1) * KEY_BLOCK).saturating_sub(len % 3 * 3);
            let mut ours = [0x5555_5555i32; 41 * KEY_BLOCK];
            let mut expected = ours;
            let max = projection_column(
                &mut ours[..logit_len],
                column,
                &dots[..len],
                (scale, offset),
            );
            let mut expected_max = i32::MIN;
            super::store_logit_column(&mut expected[..logit_len], column, &dots[..len], |_, d| {
                let projection = to_logit(scale.apply(d));
                expected_max = expected_max.max(projection);
                to_logit(projection.wrapping_sub(offset))
            });
            let rows = len.min(logit_len / KEY_BLOCK);
            if column >= KEY_BLOCK || rows < len {
                // (the closure runs on every dot; ours on the stored rows only)
                expected_max = if column >= KEY_BLOCK {
                    i32::MIN
                } else {
                    dots[..rows]
                        .iter()
                        .map(|&d| to_logit(scale.apply(d)))
                        .max()
                        .unwrap_or(i32::MIN)
                };
            }
            if ours != expected || max != expected_max {
                return Some(len);
            }
        }
    }
    // the i8 requantisation: sums across the i32 range, every shift of high_word_rounded
    for len in 0..40usize {
        let mut sums = [0i32; 40];
        for s in sums.iter_mut() {
            *s = match next() % 8 {
                0 => i32::MIN + (next() >> 8) as i32,
                1 => i32::MAX - (next() >> 8) as i32,
                _ => (next() as i32) >> (next() % 32),
            };
        }
        for shift in 33..=62u32 {
            let mantissa = match shift % 3 {
                0 => i32::MAX,
                1 => 1 << 23,
                _ => (next() >> 1) as i32,
            };
            let round_high = 1i32 << (shift - 33);
            let high_shift = shift - 32;
            let mut ours = [0x55i8; 41];
            let mut expected = ours;
            requantize_i8(&mut ours[..len], &sums, (mantissa, round_high, high_shift));
            for (o, &s) in expected[..len].iter_mut().zip(sums.iter()) {
                let high = ((i64::from(s) * i64::from(mantissa)) >> 32) as i32;
                *o = ((high + round_high) >> high_shift).clamp(-128, 127) as i8;
            }
            if ours != expected {
                return Some(len);
            }
        }
    }
    // the value blocks: masks, the last keys, every value_dim to 40, a short out
    let packed = crate::simd::int8::check_value_blocks(&mut next, pack_value_blocks);
    if packed.is_some() {
        return packed;
    }
    // the values gathered by the accumulating loop against the portable blocks and rows:
    // value_dim 4 to 40 (whole groups), 4 to 12 rows, masks, the last keys past n (not built
    // for size)
    #[cfg(not(lara_attn_compact))]
    for len in 0..40usize {
        let (value_dim, rows, keys) = (4 + 4 * (len % 10), 4 + 4 * (len % 3), 5 + len % 11);
        let mut values = [0i8; 16 * 40];
        for v in values.iter_mut() {
            *v = next() as i8;
        }
        let values = &values[..keys * value_dim];
        let first = [0, keys.saturating_sub(KEY_BLOCK), keys - 1][len % 3];
        let counted: [bool; KEY_BLOCK] = core::array::from_fn(|_| next() % 5 != 0);
        let mut weights = [0i32; 12 * (KEY_BLOCK / 2)];
        for w in weights.iter_mut() {
            *w = next() as i32;
        }
        let group = rows * ROWS;
        let mut acc = [0i32; 10 * 12 * ROWS + 3];
        for a in acc.iter_mut() {
            *a = (next() as i32) >> 4;
        }
        let mut expected = acc;
        let weights = &weights[..rows * (KEY_BLOCK / 2)];
        let ours = accumulate_values(
            (&mut acc[..value_dim / ROWS * group], group),
            weights,
            (values, value_dim),
            (first, counted),
        );
        let mut blocks = [0i32; 10 * VALUE_BLOCK_WORDS];
        let blocks = &mut blocks[..value_dim / ROWS * VALUE_BLOCK_WORDS];
        crate::simd::int8::portable_pack_value_blocks(values, value_dim, (first, counted), blocks);
        for (sums, block) in expected
            .chunks_exact_mut(group)
            .zip(blocks.chunks_exact(VALUE_BLOCK_WORDS))
        {
            crate::simd::int8::portable_accumulate_rows(sums, weights, block, rows);
        }
        if !ours || acc != expected {
            return Some(len);
        }
    }
    // the rescaling of a row: sums across the i32 range, every row of 1 to 3 groups
    let rescaled = super::fixed_point::check_rescale_rows(&mut next, rescale_row);
    if rescaled.is_some() {
        return rescaled;
    }
    // four rows at a time in admit_rows against one at a time: references and sums from empty
    // to the limit, absent keys and blocks, blocks that overflow the sum; every third length
    // with the logits at or below the base (rows that keep their reference)
    for len in 0..40usize {
        let rows: usize = [4, 5, 8, 9][len % 4];
        let below = len % 3 == 0;
        let stride = rows.div_ceil(ROWS) * ROWS;
        let mut logits = [0i32; 12 * KEY_BLOCK];
        let (mut reference, mut sum) = ([0i32; 12], [0i32; 12]);
        for c in 0..rows {
            let kind = next() % 8;
            reference[c] = match kind {
                0 => super::fixed_point::EMPTY_REFERENCE,
                _ => (next() as i32) >> 11,
            };
            sum[c] = match kind {
                1 => super::fixed_point::SUM_LIMIT as i32 - (next() % 4096) as i32,
                _ => (next() >> 9) as i32,
            };
            let base = reference[c].max(-(1 << 20));
            for l in logits.iter_mut().skip(c * KEY_BLOCK).take(KEY_BLOCK) {
                *l = match (kind, next() % 8) {
                    (2, _) | (_, 0) => super::fixed_point::ABSENT,
                    _ if below => base - (next() % (1 << 20)) as i32,
                    (3, _) => base + (1 << 16) - (next() % 4096) as i32,
                    _ => base + (next() as i32 >> 12),
                };
            }
        }
        let mut acc = [0i32; 3 * 12 * ROWS];
        for a in acc.iter_mut() {
            *a = (next() as i32) >> 2;
        }
        let (mut weights, mut expected_weights) = ([0x5555i32; 12 * 4], [0x5555i32; 12 * 4]);
        let (mut r2, mut s2, mut acc2) = (reference, sum, acc);
        super::admit_rows(
            &logits,
            &mut weights,
            (&mut reference, &mut sum),
            rows,
            &mut acc[..3 * stride * ROWS],
            stride,
        );
        for c in 0..rows {
            super::admit_row(
                &logits,
                &mut expected_weights,
                (&mut r2, &mut s2),
                (c, c),
                &mut acc2[..3 * stride * ROWS],
                stride,
            );
        }
        if (reference, sum, acc) != (r2, s2, acc2) || weights != expected_weights {
            return Some(len);
        }
    }
    // LARA's kv rows: sums from 1 to 2^23 (powers of two: no i32 reciprocal, not taken),
    // accumulators across the i32 range (saturating), every row of 1 to 3 row blocks
    for len in 0..40usize {
        let sum = match len % 5 {
            0 => 1 << (15 + len % 9),
            1 => (1 << 15) + 1,
            _ => (next() >> (8 + next() % 17)).max(1),
        };
        let reciprocal = super::fixed_point::Reciprocal::new(sum);
        let sample_rows = ROWS * (1 + len % 3);
        let (group, kv_block) = (
            sample_rows * ROWS,
            crate::simd::int8::block_words(sample_rows),
        );
        let groups = 1 + len % 4;
        let c = (len * 7) % sample_rows;
        let mut acc = [0i32; 4 * 48];
        for a in acc.iter_mut() {
            *a = (next() as i32) >> (next() % 32);
        }
        let mut ours = [0i32; 4 * 32];
        for k in ours.iter_mut() {
            *k = next() as i32;
        }
        let mut expected = ours;
        let Some(parts) = reciprocal.high_word_rounded(8) else {
            continue;
        };
        let (acc, kv_len) = (&acc[..groups * group], groups * kv_block);
        if !divide_row((acc, group), (&mut ours[..kv_len], kv_block), c, parts) {
            return Some(len);
        }
        for (g, sums) in acc.chunks_exact(group).enumerate() {
            for t in 0..ROWS {
                let v8 = reciprocal
                    .divide(sums[c * ROWS + t], 8)
                    .clamp(-32768, 32767) as i32;
                let slot = crate::simd::int8::pair_slot(t, c);
                crate::simd::int8::set_slot(&mut expected[g * kv_block..], slot, v8);
            }
        }
        if ours != expected {
            return Some(len);
        }
    }
    // segment means: every length to 40 of sums, segment lengths with and without a power of
    // two up to 2^16 − 1, sums at both ends of ±2^7 · len
    let fixed = [
        2usize, 3, 4, 5, 7, 8, 15, 16, 17, 255, 256, 1000, 32768, 32769, 65534, 65535,
    ];
    for i in 0..40 {
        let len = match fixed.get(i) {
            Some(&len) => len,
            None => 2 + (next() >> (16 + next() % 16)) as usize % 65534,
        };
        let width = i % 41;
        let mut sums = [0i32; 40];
        let limit = 128 * len as i64;
        for s in sums.iter_mut() {
            *s = match next() % 6 {
                0 => -limit as i32,
                1 => (limit - len as i64) as i32,
                _ => (i64::from(next()) % (2 * limit + 1) - limit) as i32,
            };
        }
        let mut ours = sums;
        if !segment_means(&mut ours[..width.min(40)], len) {
            return Some(len);
        }
        for (e, (&o, &s)) in ours.iter().zip(sums.iter()).enumerate() {
            let q = ((s.unsigned_abs() << 7) + len as u32 / 2) / len as u32;
            let expected = if e >= width {
                s
            } else if s >= 0 {
                q as i32
            } else {
                -(q as i32)
            };
            if o != expected {
                return Some(len);
            }
        }
    }
    // landmark rows: every multiple of 8 to 40, every row of a block, q̄ and k̄ across ±2^14
    for dim in (8..=40).step_by(8) {
        for r in 0..ROWS {
            let mut q_bar = [0i32; 40];
            let mut k_bar = [0i32; 40];
            for (q, k) in q_bar.iter_mut().zip(k_bar.iter_mut()) {
                *q = (next() % 32769) as i32 - 16384;
                *k = (next() % 32769) as i32 - 16384;
            }
            let factors = (
                ((1 << 23) + (next() >> 9) as i32, next() % 10),
                ((1 << 23) + (next() >> 9) as i32, next() % 10),
            );
            let ((q_m, q_p), (k_m, k_p)) = factors;
            let mut blocks = [0x1234_5678i32; 4 * 80 + 8];
            let (mut mu_row, mut expected_row) = ([7i32; 40], [7i32; 40]);
            let mut expected = blocks;
            let (q_block, mu_block) = blocks.split_at_mut(2 * dim);
            if !landmark_row(
                (&q_bar[..dim], &k_bar[..dim]),
                factors,
                (q_block, &mut mu_block[..2 * dim], r),
                &mut mu_row[..dim],
            ) {
                return Some(dim);
            }
            let (q_expected, mu_expected) = expected.split_at_mut(2 * dim);
            for e in 0..dim {
                let mu = super::fixed_point::mul_high_round(q_bar[e] << q_p, q_m)
                    + super::fixed_point::mul_high_round(k_bar[e] << k_p, k_m);
                let mu = mu.clamp(-(1 << 14), 1 << 14);
                let slot = crate::simd::int8::byte_slot(r, e);
                let t_bar = super::lara::t_landmark(q_bar[e]);
                crate::simd::int8::set_slot(q_expected, slot, t_bar);
                crate::simd::int8::set_slot(mu_expected, slot, mu);
                expected_row[e] = mu;
            }
            if blocks != expected || mu_row != expected_row {
                return Some(dim);
            }
        }
    }
    // segment sums: every multiple of 8 to 40, 0 to 5 rows and 250 to 260 (both paths), extreme
    // bytes, 256 and 257 rows of -128 (the i16 lanes' end)
    const EDGE: usize = 1 << 20;
    let mut rows = [0i8; 260 * 16 + 3];
    for (dim, count) in (8..=40)
        .step_by(8)
        .flat_map(|dim| (0..6usize).map(move |count| (dim, count)))
        .chain(
            [8, 16]
                .into_iter()
                .flat_map(|dim| (250..=260).map(move |count| (dim, count))),
        )
        .chain([(16, EDGE), (16, EDGE + 1)])
    {
        for v in rows.iter_mut() {
            *v = match next() % 4 {
                _ if count >= EDGE => -128,
                0 => -128,
                1 => 127,
                _ => next() as i8,
            };
        }
        // (the last two cases: 256 and 257 rows of -128)
        let count = if count >= EDGE {
            count - EDGE + 256
        } else {
            count
        };
        let mut sum = [0i32; 41];
        for v in sum.iter_mut() {
            *v = (next() as i32) >> 8;
        }
        let mut expected = sum;
        expected[..dim].fill(0);
        // a partial row after the whole ones is left out
        let bytes = &rows[..count * dim + count % 2 * 3];
        if !sum_rows(&mut sum[..dim + count % 2], bytes, dim) {
            return Some(dim);
        }
        for row in bytes.chunks_exact(dim) {
            for (s, &v) in expected.iter_mut().zip(row) {
                *s += i32::from(v);
            }
        }
        if sum != expected {
            return Some(dim);
        }
    }
    // RFA's projections and φq: every length to 40, projections across the logit range,
    // norms from 0 to 2^31 − 1, ratios to 2^16; then their packing by pack_rounded (values to
    // 2^31 + floor, the shifts of RFA)
    for len in 0..40usize {
        let mut a = [0i32; 40];
        for v in a.iter_mut() {
            *v = (next() as i32) >> (next() % 24);
        }
        let scale = Scale32::new(0.07, 1 << 24)?;
        let mut ours = a;
        let max = projections(&mut ours[..len], scale);
        let expected: [i32; 40] = core::array::from_fn(|r| {
            if r < len {
                to_logit(scale.apply(a[r]))
            } else {
                a[r]
            }
        });
        let expected_max = expected[..len].iter().copied().max().unwrap_or(i32::MIN);
        if ours != expected || max != expected_max {
            return Some(len);
        }
        let norm = match len % 4 {
            0 => 0,
            1 => i32::MAX,
            _ => (next() >> (1 + next() % 31)) as i32,
        };
        let ratio = match len % 3 {
            0 => 1 << 16,
            _ => 1 + next() % (1 << 16),
        };
        let floor = 214_748u32;
        let mut phi = expected;
        let total = rfa_phi(&mut phi[..len], (max, norm), ratio, floor);
        let mut expected_total = 0u64;
        for r in 0..len {
            let shift = i64::from(max) + i64::from(norm);
            let gap = (shift - i64::from(expected[r])).clamp(0, i64::from(u32::MAX)) as u32;
            let value = u64::from(ratio) * u64::from(super::fixed_point::exp2_neg(gap, 15))
                + u64::from(floor);
            expected_total += value;
            if u64::from(phi[r] as u32) != value {
                return Some(len);
            }
        }
        if total != expected_total {
            return Some(len);
        }
        for shift in 1..=32 {
            let mut packed = [0i32; 20];
            pack_rounded(&phi[..len], &mut packed[..len.div_ceil(2)], shift);
            for (r, &value) in phi[..len].iter().enumerate() {
                let expected = super::fixed_point::shift_round(i64::from(value as u32), shift);
                if crate::simd::int8::get_slot(&packed, r) != i32::from(expected as i16) {
                    return Some(len);
                }
            }
        }
    }
    None
}
