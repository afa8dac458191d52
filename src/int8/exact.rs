//! Exact softmax attention on int8 inputs: `out_i = Σ_j softmax_j(s · q_i·k_j) v_j`, streamed
//! over blocks of four keys per query (see the [module docs](super) for the formats).
//!
//! Scratch: [`scratch_len`] `i32`s, the packed query row and one row of sums, independent of
//! `n`.

use super::fixed_point::{Multiplier, Running, to_logit};
use super::{Out, Qkv, Requantize, Scales, check_dim, check_logit_bound, multiplier};
use crate::error::Error;
use crate::shape::{Shape, take_scratch_of};
use crate::simd::int8::{accumulate_rows, dot_packed_i8, pack_i8_row, packed_len};
use crate::slices::{rows, take};

/// The fixed-point constants of int8 exact attention for one head dimension and set of scales.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    dim: usize,
    /// `s · scale_q · scale_k · log2 e · 2^16`: a dot product `q_int·k_int` in `L16`.
    logit: Multiplier,
    requantize: Requantize,
}

impl Plan {
    /// The plan for head dimension `dim` and these scales (`f32` arithmetic, once).
    ///
    /// # Errors
    /// [`Error::InvalidScale`] for a scale that is not finite and positive,
    /// [`Error::FixedPointRange`] for `dim > 512` or scales whose logits can exceed `2^12`
    /// (base 2) or whose products leave the `f32` range, [`Error::ZeroDimension`] for `dim = 0`.
    pub fn new(dim: usize, scales: &Scales) -> Result<Self, Error> {
        scales.check()?;
        check_dim(dim)?;
        let s = 1.0 / libm::sqrtf(dim as f32);
        // |s · q·k| ≤ s · d · 128 scale_q · 128 scale_k
        check_logit_bound(
            s * dim as f32 * 16384.0 * scales.q * scales.k,
            "exact logits: s · d · max|q| · max|k| above 2839",
        )?;
        Ok(Plan {
            dim,
            logit: multiplier(
                s * scales.q * scales.k * super::L16_PER_NAT,
                "s · scale_q · scale_k",
            )?,
            requantize: Requantize::new(scales)?,
        })
    }
}

/// Keys per block of the streaming softmax.
const BLOCK: usize = 4;

/// Scratch (in `i32`s) of [`attention`] for `shape`: `⌈d/2⌉ + d_v`.
pub const fn scratch_len(shape: Shape) -> usize {
    packed_len(shape.dim).saturating_add(shape.value_dim)
}

/// Exact attention of the int8 inputs `x` into `out` (`[h, n_q, d_v]`).
///
/// # Errors
/// A zero dimension, a length that does not match `x.shape`, a plan made for another `d`
/// ([`Error::PlanMismatch`]), `d` or `d_v` above 512 or more than `2^24` tokens
/// ([`Error::FixedPointRange`]), a mask that masks every key, scratch shorter than
/// [`scratch_len`]. Nothing is written on error.
pub fn attention(
    plan: &Plan,
    x: &Qkv<'_>,
    mut out: Out<'_>,
    scratch: &mut [i32],
) -> Result<(), Error> {
    x.check(out.len())?;
    if plan.dim != x.shape.dim {
        return Err(Error::PlanMismatch);
    }
    let mut rest = take_scratch_of(scratch, scratch_len(x.shape))?;
    let q_packed = take(&mut rest, packed_len(x.shape.dim));
    let acc = take(&mut rest, x.shape.value_dim);
    let (heads, shape) = (x.shape.heads, x.shape);
    for head in 0..heads {
        let x = x.head(head);
        let base = head * shape.queries * shape.value_dim;
        for (i, q_row) in rows(x.q, shape.dim).enumerate() {
            pack_i8_row(q_row, q_packed);
            attend_row(plan, &x, q_packed, acc);
            plan.requantize
                .write(acc, &mut out, base + i * shape.value_dim);
        }
    }
    Ok(())
}

/// `acc = Σ_j softmax_j(s · q·k_j) v_j` as `V16`, for the packed query row `q_packed`.
#[inline(never)]
fn attend_row(plan: &Plan, x: &Qkv<'_>, q_packed: &[i32], acc: &mut [i32]) {
    let (dim, value_dim) = (x.shape.dim, x.shape.value_dim);
    let mut state = Running::EMPTY;
    let mut keys = rows(x.k, dim)
        .zip(rows(x.v, value_dim))
        .zip(x.unmasked_keys());
    let empty: &[i8] = &[];
    loop {
        // A block of up to four keys: logits (None for masked keys) and value rows.
        let mut logits = [None; BLOCK];
        let mut values = [empty; BLOCK];
        let mut seen = 0;
        for (slot, value_slot) in logits.iter_mut().zip(values.iter_mut()) {
            let Some(((k_row, v_row), unmasked)) = keys.next() else {
                break;
            };
            seen += 1;
            if unmasked {
                // ℓ_j = s · q·k_j in L16
                *slot = Some(to_logit(
                    plan.logit.apply(i64::from(dot_packed_i8(q_packed, k_row))),
                ));
                *value_slot = v_row;
            }
        }
        if seen == 0 {
            break;
        }
        let Some(block_max) = logits.iter().flatten().copied().max() else {
            continue;
        };
        state.raise(block_max, acc);
        // w_j = 2^(ℓ_j − reference) in Q15; Σ_j w_j
        let weights_of = |state: &Running| logits.map(|l| l.map_or(0, |l| state.weight(l) as i32));
        let mut weights = weights_of(&state);
        let block_sum = weights.iter().sum::<i32>() as u32;
        if state.make_room(block_sum, acc) {
            weights = weights_of(&state);
        }
        state.sum += weights.iter().sum::<i32>() as u32;
        // Σ w·v += Σ_j w_j v_j (masked and absent keys have weight 0 and an empty row)
        accumulate_rows(acc, &weights, &values_or_zero(&values, &weights));
    }
    super::normalise(acc, state.sum, 16);
}

/// The value rows of a block, a zero-weight row replaced by the first row given (it adds
/// `0 · v`; `accumulate_rows` zips every row with the accumulator, so none may be short).
#[inline(always)]
fn values_or_zero<'a>(values: &[&'a [i8]; BLOCK], weights: &[i32; BLOCK]) -> [&'a [i8]; BLOCK] {
    let any = values
        .iter()
        .find(|v| !v.is_empty())
        .copied()
        .unwrap_or(&[]);
    let mut out = *values;
    for (o, &w) in out.iter_mut().zip(weights) {
        if w == 0 || o.is_empty() {
            *o = any;
        }
    }
    out
}
