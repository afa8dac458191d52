//! Exact softmax attention on int8 inputs: `out_i = Σ_j softmax_j(s · q_i·k_j) v_j`, sixteen
//! queries at a time streamed over blocks of eight keys (see the [module docs](super) for the
//! formats).
//!
//! Scratch: [`scratch_len`] `i32`s (the packed queries of a group, their accumulators and
//! streaming states, one block of logits, weights and values), independent of `n`.

use super::fixed_point::Scale32;
use super::{Out, Qkv, Requantize, Rows, Scales, check_dim, check_logit_bound, const_try, scale32};
use crate::error::Error;
use crate::shape::Shape;
use crate::simd::int8::{
    KEY_BLOCK, Loops, ROWS, VALUE_BLOCK_WORDS, WEIGHT_WORDS, block_words, pack_byte_block, padded,
};
use crate::slices::{chunks_mut, parts_len, split_workspace};

/// The fixed-point constants of int8 exact attention for one head dimension and set of scales.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    dim: usize,
    /// `s · scale_q · scale_k · log2 e · 2^16`: a dot product `q_int·k_int` in `L16`.
    logit: Scale32,
    requantize: Requantize,
}

impl Plan {
    /// The plan for head dimension `dim` and these scales (`f32` arithmetic, once; a `const fn`,
    /// so a `const` plan costs no code or time on the target, see the [module docs](super)).
    ///
    /// # Errors
    /// [`Error::InvalidScale`] for a scale that is not finite and positive,
    /// [`Error::FixedPointRange`] for `dim > 512` or scales whose logits can exceed `2^12`
    /// (base 2) or whose products leave the `f32` range, [`Error::ZeroDimension`] for `dim = 0`.
    pub const fn new(dim: usize, scales: &Scales) -> Result<Self, Error> {
        const_try!(scales.check());
        const_try!(check_dim(dim));
        let s = 1.0 / crate::math::sqrt(dim as f32);
        // |s · q·k| ≤ s · d · 128 scale_q · 128 scale_k
        const_try!(check_logit_bound(
            s * dim as f32 * 16384.0 * scales.q * scales.k,
            "exact logits: s · d · max|q| · max|k| above 2839",
        ));
        let logit = const_try!(scale32(
            s * scales.q * scales.k * super::L16_PER_NAT,
            16384 * dim as u32,
            "s · scale_q · scale_k",
        ));
        Ok(Plan {
            dim,
            logit,
            requantize: const_try!(Requantize::new(scales)),
        })
    }
}

/// Queries per group: four row blocks share every key and value block.
const GROUP: usize = 4 * ROWS;

/// The parts of the scratch of one group of queries, in words, in the order of
/// [`Workspace`]'s parts.
const fn workspace_parts(shape: Shape) -> [usize; 10] {
    let groups = shape.value_dim.div_ceil(ROWS);
    [
        4 * block_words(shape.dim),
        groups * ROWS,
        // the stream: logits, weights, references, sums, accumulators, values, dots, key row
        GROUP * KEY_BLOCK,
        GROUP * WEIGHT_WORDS,
        GROUP,
        GROUP,
        groups * GROUP * ROWS,
        groups * VALUE_BLOCK_WORDS,
        GROUP,
        // (a key row padded, or widened: `padded(d) / 2` words, see `block_logits`)
        padded(shape.dim) / 2,
    ]
}

/// The scratch of one group of queries, in words.
const fn group_len(shape: Shape) -> usize {
    parts_len(&workspace_parts(shape))
}

/// Scratch (in `i32`s) of [`attention`] for `shape`: with `P` the words of a block of four
/// packed query rows (`2·d` rounded up to whole chunks) and `G = ⌈d_v/4⌉`, `4·P + 84·G + 240 +
/// P / 4` (about `8·d + 21·d_v + 240`), independent of `n`.
pub const fn scratch_len(shape: Shape) -> usize {
    group_len(shape)
}

/// Exact attention of the int8 inputs `x` into `out` (`[h, n_q, d_v]`).
///
/// # Errors
/// A zero dimension, a length that does not match `x.shape`, a plan made for another `d`
/// ([`Error::PlanMismatch`]), `d` or `d_v` above 512 or more than `2^24` tokens
/// ([`Error::FixedPointRange`]), a mask that masks every key, scratch shorter than
/// [`scratch_len`]. Nothing is written on error.
#[inline(always)]
pub fn attention(plan: &Plan, x: &Qkv<'_>, out: Out<'_>, scratch: &mut [i32]) -> Result<(), Error> {
    match out {
        Out::I8(out) => attend(plan, x, out, scratch),
        Out::F32(out) => attend(plan, x, out, scratch),
    }
}

/// [`attention`] into one kind of output (see [`Rows`]).
fn attend<O: Rows>(plan: &Plan, x: &Qkv<'_>, mut out: O, scratch: &mut [i32]) -> Result<(), Error> {
    x.check(out.len())?;
    if plan.dim != x.shape.dim {
        return Err(Error::PlanMismatch);
    }
    let shape = x.shape;
    split_workspace!(
        ws = scratch,
        workspace_parts(shape),
        Workspace {
            shape: shape,
            loops: Loops::active(),
            queries: 0,
        } => {
            query_blocks,
            row,
        } stream {
            logits,
            weights,
            reference,
            sum,
            acc,
            values,
            dots,
            shared,
        }
    );
    for head in 0..shape.heads {
        let x = x.head(head);
        let base = head * shape.queries * shape.value_dim;
        for first in (0..shape.queries).step_by(GROUP) {
            ws.attend_group(plan, &x, first);
            ws.write(plan, &mut out, base, first);
        }
    }
    Ok(())
}

/// The scratch of one group of queries.
struct Workspace<'a> {
    shape: Shape,
    /// The inner loops of this call (of its backend).
    loops: Loops,
    /// Queries of the group in this call (≤ [`GROUP`]).
    queries: usize,
    /// Four byte blocks of the group's queries.
    query_blocks: &'a mut [i32],
    /// One output row of sums, `[4·⌈d_v/4⌉]`.
    row: &'a mut [i32],
    /// The streaming pass's parts: a block of logits `[GROUP][KEY_BLOCK]`, of `Q15` weights in
    /// pairs `[GROUP][WEIGHT_WORDS]`, the `L16` references and `Q15` sums `[GROUP]`, the sums
    /// `Σ_j w_ij v_j` `[⌈d_v/4⌉][GROUP][4]` (`acc`), a block of values, the dot products of
    /// one key with the group's queries `[GROUP]`, and a key row padded to whole chunks (on
    /// the DSP cores without Helium, for `d` of 16 or 32, widened to `i16` pairs).
    stream: super::KeyStream<'a>,
}

impl<'a> Workspace<'a> {
    /// Streams every key through the queries `first..first + GROUP` of one head.
    #[inline(never)]
    fn attend_group(&mut self, plan: &Plan, x: &Qkv<'_>, first: usize) {
        let dim = self.shape.dim;
        self.queries = GROUP.min(self.shape.queries - first);
        let blocks = self.queries.div_ceil(ROWS);
        let block_len = block_words(dim);
        for (b, block) in chunks_mut(self.query_blocks, block_len).enumerate() {
            let valid = self.queries.saturating_sub(b * ROWS);
            pack_byte_block(x.q, (first + b * ROWS, valid), dim, block);
        }
        let query_blocks = self
            .query_blocks
            .get(..blocks * block_len)
            .unwrap_or_default();
        // ℓ_ij = s · q_i·k_j in L16
        let rows = (self.queries, GROUP);
        super::stream_keys(
            self.loops,
            x,
            query_blocks,
            (plan.logit, None),
            rows,
            &mut self.stream,
            None,
        );
    }

    /// `out_i = Σ_j w_ij v_j / Σ_j w_ij` for the group's queries (built for size, as the
    /// compiler likes: less flash).
    #[cfg_attr(not(lara_attn_compact), inline(never))]
    fn write<O: Rows>(&mut self, plan: &Plan, out: &mut O, base: usize, first: usize) {
        let value_dim = self.shape.value_dim;
        for i in 0..self.queries {
            // column t of query i: word t mod 4 of row i of group ⌊t/4⌋
            for (t, o) in self.row.iter_mut().enumerate() {
                let index = t / ROWS * GROUP * ROWS + i * ROWS + t % ROWS;
                *o = self.stream.acc.get(index).copied().unwrap_or(0);
            }
            let sum = self.stream.sum.get(i).copied().unwrap_or(1) as u32;
            let offset = base + (first + i) * value_dim;
            let row = self.row.get(..value_dim).unwrap_or_default();
            plan.requantize.write_row(row, sum, 0, out, offset);
        }
    }
}
