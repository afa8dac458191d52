//! Quantised kernels: exact attention, LARA and RFA (positive features) on `i8` inputs, in
//! integer arithmetic only, with the same bits on every target.
//!
//! Inputs `q`, `k`, `v` are `i8` with one symmetric scale per tensor (`x = scale · x_int`, the
//! zero point 0, as PyTorch's and TFLite's symmetric per-tensor quantisation); the output is
//! `i8` with its own scale, requantised with an integer multiplier and shift (the CMSIS-NN
//! convention), or `f32` for hosts and debugging ([`Out`]). [`scale_for`] and [`quantize`]
//! choose scales from data (max-abs per tensor) and quantise.
//!
//! ```
//! use lara_attn::Shape;
//! use lara_attn::int8::{self, Out, Qkv, Scales};
//! const SHAPE: Shape = Shape::self_attention(8, 4);
//! let x: Vec<f32> = (0..32).map(|i| (i as f32 * 0.37).sin()).collect();
//! let scale = int8::scale_for(&x);
//! let mut x8 = [0i8; 32];
//! int8::quantize(&x, scale, &mut x8);
//! // Once, at start-up (f32 arithmetic): the scales become integer multipliers.
//! let scales = Scales { q: scale, k: scale, v: scale, out: scale };
//! let plan = int8::exact::Plan::new(SHAPE.dim, &scales)?;
//! // Every call: integers only.
//! let mut out = [0i8; 32];
//! let mut scratch = [0i32; int8::exact::scratch_len(SHAPE)];
//! let inputs = Qkv { shape: SHAPE, q: &x8, k: &x8, v: &x8, key_mask: None };
//! int8::exact::attention(&plan, &inputs, Out::I8(&mut out), &mut scratch)?;
//! # Ok::<(), lara_attn::Error>(())
//! ```
//!
//! # Integer only
//! A *plan* ([`exact::Plan`], [`lara::Plan`], [`rfa::Plan`]) turns the scales into fixed-point
//! multipliers once, checking every limit below; it is the only code that reads an `f32` (the
//! scales, on the host or at start-up). The plan constructors are `const fn`: with the scales
//! of an exported model, a `const` plan is computed by the compiler, and a core without an FPU
//! links no float code for it (a scale out of range is then a compile error):
//!
//! ```
//! use lara_attn::int8::{self, Scales};
//! use lara_attn::lara::Weighting;
//! const SCALES: Scales = Scales { q: 0.02, k: 0.02, v: 0.008, out: 0.008 };
//! const CONFIG: int8::lara::Config = int8::lara::Config::eval(Weighting::Optimal { alpha_coeff: 1.0 });
//! const PLAN: int8::lara::Plan = match int8::lara::Plan::new(32, &SCALES, &CONFIG) {
//!     Ok(plan) => plan,
//!     Err(_) => panic!("LARA scales out of range"),
//! };
//! assert_eq!(Ok(PLAN), int8::lara::Plan::new(32, &SCALES, &CONFIG));
//! ```
//!
//! The kernels then use `i32` arithmetic, `i64` where a product needs it (per row or per
//! sample, never in the inner loops), and write `f32` only for [`Out::F32`] (one conversion of
//! each final value; the output kind is matched in the caller, so calls that write [`Out::I8`]
//! link no float code: CI checks it on an ARMv6-M program with the three kernels and `const`
//! plans, `.ci/no-panic/src/bin/int8_firmware.rs`). Integer sums are exact in any order,
//! so the explicit SIMD variants (the Cortex-M DSP extension's `SMLAD`, see `build.rs`) give the
//! bits of the portable loops, and every target gives the same bits (checked: the firmware
//! example on Cortex-M0 code, M3, M4F and M55 against the host; `tests/int8.rs`'s digest on
//! x86_64 and aarch64).
//!
//! # Fixed-point formats
//! * **Logits in `L16`**: base-2 logarithms in `i32` with 16 fractional bits. An integer dot
//!   product `Σ a·b` becomes a logit through a plan multiplier `s · scale_a · scale_b · log2 e ·
//!   2^16` (a 24-bit integer and a shift, exactly the `f32` product of the scales), applied in
//!   `i64`. Every softmax, running maximum and log-sum-exp runs on `L16`.
//! * **Weights in `Q15`**: `2^(ℓ − reference)` in `[0, 32767]` (`32768` = 1, capped so that it
//!   fits `i16`), by one load from a table of 1,024 `Q30` words: the argument's fraction in
//!   buckets of `2^-10`, each at its midpoint (the first at 0, so `2^0` is exactly 1), then a
//!   rounding shift by its whole part. `2^x` is within 3.4e-4 relative (6.7e-4 in the first
//!   bucket) and 21.8 `Q15` units over every argument, measured exhaustively in
//!   `fixed_point.rs`: an int8 output step is 1/256 of the range, and the kernels' outputs stay
//!   within 1.4e-4 of the range of a reference of these semantics in `f64` (`tests/int8.rs`);
//!   `log2` ≤ 0.52 `L16` units on a dense sweep.
//!   Weights below `2^-16` are 0: their keys are skipped.
//! * **Streaming softmax** (block floating point): per row a reference logit `≥` every logit so
//!   far, a `Q15` weight sum `≤ 2^23` and `i32` sums `Σ w·v` (`≤ 128 · 2^23 = 2^30`). Keys come
//!   in blocks of eight; a block above the reference rescales the sums by `2^(reference − max)`,
//!   a block that would take the sum above `2^23` halves the sums and raises the reference by
//!   one. No sum overflows for any number of keys, and the scratch does not grow with `n`.
//! * **Outputs `V16`**: a weighted mean of values in `v`'s units with 16 fractional bits (`i32`,
//!   `|V16| ≤ 2^23`), by one reciprocal per row. [`Out::I8`] requantises it with the multiplier
//!   `scale_v / (2^16 · scale_out)`, rounding half up and saturating to `[-128, 127]`;
//!   [`Out::F32`] is `V16 · scale_v / 2^16`. (LARA's `kv_c` are `V8`, 8 fractional bits, in `i16`.)
//! * **LARA's landmarks and proposals** are `i16` (`|x| ≤ 2^14`) in units the plan picks from the
//!   scales so that no value can leave that range: `q̄` in `scale_q / 128` (`mis-opt`'s `T`
//!   takes it on the queries' own `i8` grid, a multiple of 128), `mu`, `W` in
//!   `w_unit = (128 · (scale_q̄ + scale_k̄) + f · 128 · scale_eps) / 2^14`. `kv_c` is `V8` in
//!   `i16`. The query pass weights `sniw` are normalised to a sum in `[2^13, 2^14)` (each
//!   `≤ 2^14`) before the `Σ_c sniw · kv_c` products; `mis-opt`'s `α` is `Q27`, its floor
//!   `1e-8` becomes `2^-27 = 7.5e-9`.
//!
//! # Limits (checked: [`Error::FixedPointRange`])
//! * `d ≤ 512`, `d_v ≤ 512` ([`MAX_DIM`]): `|Σ_t W_t · k_t| ≤ 512 · 2^14 · 2^7 = 2^30`.
//! * `n_q`, `n_k ≤ 2^24` ([`MAX_TOKENS`]): segment sums `≤ 2^24 · 2^7`.
//! * The largest logit the scales allow, `|ℓ| ≤ 2^12` in base 2 (`s · d · max|q| · max|k| ≤
//!   2839` for exact attention; the plans check each estimator's terms): sums of four such terms
//!   stay within `L16`. Softmax with logits that spread over more than 16 (base 2) already gives
//!   the smaller ones weight 0, so this only refuses scales no int8 model has.
//! * LARA: `|alpha_coeff| ≤ 8`; RFA: `S ≤ 4096` features.
//!
//! # Error budget
//! Against the `f32` kernels on the dequantised inputs, the fixed-point steps add (relative to
//! the output's scale): logits `≤ 2^-16` (multiplier rounding) plus the `L16` rounding (`2^-17`
//! base 2), weights `≤ 2^-15` each, `V16` rounding `2^-17` of a value unit, requantisation half an
//! output unit. The int8 quantisation of the inputs dominates: `q`, `k` quantised with
//! `max|x| / 127` move a logit by up to `s · d · (|q| Δk + |k| Δq)/2`; `tests/int8.rs` measures
//! the fixed-point steps against the `f32` kernels on the dequantised inputs (relative Frobenius
//! error ≤ 0.8% over the golden inputs and a layer's activations, the worst RFA with its `1e-2`
//! clamp binding; LARA ≤ 0.05%; the test's bound is 2%).

#[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
mod dsp;
pub mod exact;
pub(crate) mod fixed_point;
#[cfg(lara_attn_helium)]
pub(crate) mod helium;
pub mod lara;
pub mod rfa;

use crate::error::{Arg, Error};
use crate::shape::{Shape, expect_len};
use crate::simd::int8::KEY_BLOCK;
#[cfg(not(all(lara_attn_dsp, not(lara_attn_helium))))]
use crate::simd::int8::pair;
use crate::simd::int8::{
    Loops, ROWS, VALUE_BLOCK_WORDS, WEIGHT_WORDS, accumulate_rows, pack_value_blocks,
};
#[cfg(not(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact))))]
use crate::simd::int8::{dot_blocks, padded_bytes};
use crate::slices::{chunks, chunks_mut};
use fixed_point::{Multiplier, Q15_ONE, Reciprocal, Running, Scale32, rescale, saturate_i32};

/// The largest head dimension `d` and value dimension `d_v` of the int8 kernels.
pub const MAX_DIM: usize = 512;
/// The largest number of queries or keys per head of the int8 kernels.
pub const MAX_TOKENS: usize = 1 << 24;
/// The largest logit (base 2) the plans accept, `2^12` (see the module docs).
const MAX_LOG2_LOGIT: f32 = 4096.0;

/// The quantisation scales of a call: `x = scale · x_int` for each tensor, and the scale of the
/// `i8` output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scales {
    /// Scale of `q`.
    pub q: f32,
    /// Scale of `k`.
    pub k: f32,
    /// Scale of `v`.
    pub v: f32,
    /// Scale of the `i8` output (unused by [`Out::F32`], still checked).
    pub out: f32,
}

impl Scales {
    /// Checks that every scale is finite, positive and normal.
    const fn check(&self) -> Result<(), Error> {
        let scales = [
            (self.q, Arg::Queries),
            (self.k, Arg::Keys),
            (self.v, Arg::Values),
            (self.out, Arg::Output),
        ];
        let mut i = 0;
        while i < scales.len() {
            const_try!(check_scale(scales[i].0, scales[i].1));
            i += 1;
        }
        Ok(())
    }
}

/// `?` in the `const fn` plan constructors (the `?` operator is not `const`).
macro_rules! const_try {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(error) => return Err(error),
        }
    };
}
use const_try;

/// Checks that `scale` is finite, positive and normal.
const fn check_scale(scale: f32, arg: Arg) -> Result<(), Error> {
    if scale.is_normal() && scale > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidScale(arg))
    }
}

/// `factor` as a [`Multiplier`], or the range error `why` (a product of scales that underflows
/// or overflows `f32`).
const fn multiplier(factor: f32, why: &'static str) -> Result<Multiplier, Error> {
    match Multiplier::from_f32(factor) {
        Some(multiplier) => Ok(multiplier),
        None => Err(Error::FixedPointRange(why)),
    }
}

/// `factor` as a [`Scale32`] for inputs up to `max_input`, or the range error `why`.
const fn scale32(factor: f32, max_input: u32, why: &'static str) -> Result<Scale32, Error> {
    match Scale32::new(factor, max_input) {
        Some(scale) => Ok(scale),
        None => Err(Error::FixedPointRange(why)),
    }
}

/// `log2 e · 2^16`: natural-log logits to `L16`.
const L16_PER_NAT: f32 = core::f32::consts::LOG2_E * 65536.0;

/// Checks that a logit bound (natural units) is within [`MAX_LOG2_LOGIT`].
const fn check_logit_bound(bound: f32, why: &'static str) -> Result<(), Error> {
    if bound * core::f32::consts::LOG2_E <= MAX_LOG2_LOGIT {
        Ok(())
    } else {
        Err(Error::FixedPointRange(why))
    }
}

/// Checks a dimension against [`MAX_DIM`].
const fn check_dim(dim: usize) -> Result<(), Error> {
    if dim == 0 {
        Err(Error::ZeroDimension(crate::error::Dim::Model))
    } else if dim > MAX_DIM {
        Err(Error::FixedPointRange("a dimension above 512"))
    } else {
        Ok(())
    }
}

/// The inputs of an int8 call: the shape, `q [h, n_q, d]`, `k [h, n_k, d]`, `v [h, n_k, d_v]`
/// (row-major, heads stacked, each with the scale of [`Scales`]) and an optional key padding
/// mask (`true` for a padding key, which has no influence on the output).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Qkv<'a> {
    /// The dimensions.
    pub shape: Shape,
    /// Queries `[h, n_q, d]`.
    pub q: &'a [i8],
    /// Keys `[h, n_k, d]`.
    pub k: &'a [i8],
    /// Values `[h, n_k, d_v]`.
    pub v: &'a [i8],
    /// Key padding mask `[n_k]`, shared by the heads.
    pub key_mask: Option<&'a [bool]>,
}

impl<'a> Qkv<'a> {
    /// Checks every dimension and length, the limits, and the mask; `out_len` is the output's.
    fn check(&self, out_len: usize) -> Result<(), Error> {
        let shape = self.shape;
        shape.check_nonzero()?;
        check_dim(shape.dim)?;
        check_dim(shape.value_dim)?;
        if shape.queries > MAX_TOKENS || shape.keys > MAX_TOKENS {
            return Err(Error::FixedPointRange("more than 2^24 queries or keys"));
        }
        // (one loop: one copy of the checks)
        let (queries, keys) = (shape.queries, shape.keys);
        let tensors = [
            (Arg::Queries, self.q.len(), queries, shape.dim),
            (Arg::Keys, self.k.len(), keys, shape.dim),
            (Arg::Values, self.v.len(), keys, shape.value_dim),
            (Arg::Output, out_len, queries, shape.value_dim),
        ];
        for (arg, len, rows, cols) in tensors {
            expect_len(arg, len, shape.stacked(rows, cols)?)?;
        }
        if let Some(mask) = self.key_mask {
            expect_len(Arg::KeyMask, mask.len(), shape.keys)?;
            if mask.iter().all(|&masked| masked) {
                return Err(Error::AllKeysMasked);
            }
        }
        Ok(())
    }

    /// Head `head` (on checked inputs: the lengths of the shape, so no division by `h`). Not
    /// inlined: its copy of the inputs stays off the kernels' frames (LARA's on the M4F: 948
    /// against 872 B of stack).
    #[inline(never)]
    fn head(&self, head: usize) -> Qkv<'a> {
        use crate::slices::nth_part;
        let shape = self.shape;
        let (queries, keys) = (shape.queries, shape.keys);
        Qkv {
            shape: shape.head(),
            q: nth_part(self.q, queries * shape.dim, head),
            k: nth_part(self.k, keys * shape.dim, head),
            v: nth_part(self.v, keys * shape.value_dim, head),
            key_mask: self.key_mask,
        }
    }

    /// Whether key `j` counts (it exists and is not masked).
    #[cfg_attr(not(lara_attn_compact), inline)]
    #[cfg_attr(lara_attn_compact, inline(never))]
    fn counts(&self, j: usize) -> bool {
        j < self.shape.keys
            && !self
                .key_mask
                .and_then(|m| m.get(j))
                .copied()
                .unwrap_or(false)
    }

    /// Which of the [`KEY_BLOCK`] keys from `first` count.
    #[inline]
    fn block_keys(&self, first: usize) -> [bool; KEY_BLOCK] {
        core::array::from_fn(|jj| self.counts(first + jj))
    }
}

/// The scratch of a streaming pass over the keys (see [`stream_keys`]): a part of each
/// kernel's workspace (passed by reference, nothing copied per call).
pub(crate) struct KeyStream<'s> {
    /// A block of logits, `[rows][KEY_BLOCK]`.
    pub(crate) logits: &'s mut [i32],
    /// A block of `Q15` weights in pairs, `[rows][WEIGHT_WORDS]`.
    pub(crate) weights: &'s mut [i32],
    /// Streaming states: `L16` references and `Q15` sums, `[rows]` each.
    pub(crate) reference: &'s mut [i32],
    pub(crate) sum: &'s mut [i32],
    /// `Σ_j w_rj v_j`, `[⌈d_v/4⌉][stride][4]`.
    pub(crate) acc: &'s mut [i32],
    /// A block of values, `[⌈d_v/4⌉][VALUE_BLOCK_WORDS]`.
    pub(crate) values: &'s mut [i32],
    /// The dot products of one key with the rows (at least the rows of the blocks).
    pub(crate) dots: &'s mut [i32],
    /// A key row padded to whole chunks.
    pub(crate) shared: &'s mut [i32],
}

/// A step of [`stream_keys`] on each block of logits: `(logits, first key, which keys count)`.
pub(crate) type AdjustLogits<'f> = dyn FnMut(&mut [i32], usize, [bool; KEY_BLOCK]) + 'f;

/// Streams every key of `x` through the first `rows` rows of the byte blocks `blocks`
/// (`stride` rows in the sums' groups): from empty states, per block of [`KEY_BLOCK`] keys the
/// values packed, the logits by [`block_logits`] with `logit`, the rows' states and weights
/// ([`admit_rows`]) and `Σ_j w_rj v_j` ([`accumulate_groups`]); `adjust`, if any, gets each
/// block of logits before it is admitted, with its first key and which keys count. Exact
/// attention's queries, LARA's samples, RFA's features built for size (then out of line: one
/// copy for the three).
#[cfg_attr(not(lara_attn_compact), inline(always))]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn stream_keys(
    loops: Loops,
    x: &Qkv<'_>,
    blocks: &[i32],
    logit: (Scale32, Option<Scale32>),
    (rows, stride): (usize, usize),
    s: &mut KeyStream<'_>,
    mut adjust: Option<&mut AdjustLogits<'_>>,
) {
    // (built for size, the stream's slices read again after each call, not each kept on the
    // frame across the loop)
    #[cfg(lara_attn_compact)]
    let (x, s) = core::hint::black_box((x, s));
    let (dim, value_dim) = (x.shape.dim, x.shape.value_dim);
    // the dot products of the blocks' rows
    let dot_rows = rows.div_ceil(ROWS) * ROWS;
    crate::slices::fill(s.reference, fixed_point::EMPTY_REFERENCE);
    crate::slices::fill(s.sum, 0);
    crate::slices::fill(s.acc, 0);
    crate::slices::fill(s.weights, 0);
    for first in (0..x.shape.keys).step_by(KEY_BLOCK) {
        let counted = x.block_keys(first);
        pack_value_blocks(x.v, value_dim, (first, counted), s.values);
        // ℓ = scale · row·k_j (− norm · |k_j|²) in L16 (ABSENT for masked and missing keys)
        let dots = s.dots.get_mut(..dot_rows).unwrap_or_default();
        let scratch = (dots, &mut *s.shared);
        block_logits(
            loops,
            blocks,
            (x.k, dim),
            (first, counted),
            scratch,
            s.logits,
            logit,
        );
        if let Some(adjust) = adjust.as_mut() {
            adjust(s.logits, first, counted);
        }
        admit_rows(
            s.logits,
            s.weights,
            (s.reference, s.sum),
            rows,
            s.acc,
            stride,
        );
        // Σ_j w_rj v_j for every row and column
        accumulate_groups(loops, s.acc, stride * ROWS, s.weights, s.values);
    }
}

/// `acc_g += Σ_j w_cj v_j` for every group of four value columns `g`: `values` holds the pair
/// blocks ([`VALUE_BLOCK_WORDS`] each), `acc` the groups (`group` words each). `next()` on
/// the second iterator, not a zip of two `chunks_exact` (an outlined `Zip::new` divides by the chunk sizes, a panic
/// path at opt-level `s`).
#[inline(never)]
pub(crate) fn accumulate_groups(
    loops: Loops,
    acc: &mut [i32],
    group: usize,
    weights: &[i32],
    values: &[i32],
) {
    // (Helium: every group in one asm block)
    #[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
    if crate::simd::int8::accumulate_groups(loops, acc, group, weights, values) {
        return;
    }
    let mut groups = chunks_mut(acc, group);
    for values in chunks(values, VALUE_BLOCK_WORDS) {
        match groups.next() {
            Some(acc) => accumulate_rows(loops, acc, weights, values),
            None => break,
        }
    }
}

/// `logits[r][column] = logit(r, dots[r])` for every row `r` of `dots` that `logits`
/// (`[rows][KEY_BLOCK]`) has (`logit` is called for every `r` of `dots` on the cores without
/// DSP or Helium loops). Whole `KEY_BLOCK` rows on the DSP and Helium cores (fewer
/// instructions there), indexed on the others (fewer with their portable loops: exact 47.34M
/// against 47.59M instructions, RFA 6.77M against 6.88M on the M3).
#[inline(always)]
pub(crate) fn store_logit_column(
    logits: &mut [i32],
    column: usize,
    dots: &[i32],
    mut logit: impl FnMut(usize, i32) -> i32,
) {
    if cfg!(any(lara_attn_dsp, lara_attn_helium)) {
        for (r, (row, &dot)) in chunks_mut(logits, KEY_BLOCK).zip(dots).enumerate() {
            let value = logit(r, dot);
            if let Some(slot) = row.get_mut(column) {
                *slot = value;
            }
        }
    } else {
        for (r, &dot) in dots.iter().enumerate() {
            let value = logit(r, dot);
            if let Some(slot) = logits.get_mut(r * KEY_BLOCK + column) {
                *slot = value;
            }
        }
    }
}

/// `logits[r][column] = to_logit(scale · dots[r] − offset)` (the difference wrapping) for every
/// row `r` of `dots` that `logits` (`[rows][KEY_BLOCK]`) has: [`store_logit_column`] with that
/// closure; on Helium four rows at a time (a scatter store), on the DSP cores without Helium
/// one `asm!` loop four rows at a time and the rest here (the logits of exact attention and of
/// LARA's keys and normaliser; built for size, its one call, in [`block_logits`]).
#[inline(always)]
pub(crate) fn store_scaled_logits(
    logits: &mut [i32],
    column: usize,
    dots: &[i32],
    scale: Scale32,
    offset: i32,
) {
    #[cfg(lara_attn_helium)]
    helium::logit_column(logits, column, dots, scale, offset);
    #[cfg(not(lara_attn_helium))]
    {
        #[cfg(lara_attn_dsp)]
        let (logits, dots) = {
            let done = dsp::logit_column(logits, column, dots, scale, offset);
            (
                logits.get_mut(done * KEY_BLOCK..).unwrap_or_default(),
                dots.get(done..).unwrap_or_default(),
            )
        };
        store_logit_column(logits, column, dots, |_, dot| {
            fixed_point::to_logit(scale.apply(dot).wrapping_sub(offset))
        });
    }
}

/// The logits of one block of rows against every row of the byte blocks `blocks`: for each
/// `jj < KEY_BLOCK`, row `first + jj` of `source` (`[n, dim]`) if it counts, column `jj` of
/// `logits` (`[dots.len()][KEY_BLOCK]`) gets `to_logit(scale · dot − norm · |row|²)` (the
/// norm term only with `norm`), else [`ABSENT`](fixed_point::ABSENT). `dots` holds the dot
/// products of one row, `shared` its padded copy (and, where it fits, its widened copy after
/// it: see `simd::int8::dot_row`). Exact attention's keys, LARA's keys and its
/// normaliser's queries (out of line when built for size).
#[cfg_attr(not(lara_attn_compact), inline(always))]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn block_logits(
    loops: Loops,
    blocks: &[i32],
    (source, dim): (&[i8], usize),
    (first, counted): (usize, [bool; KEY_BLOCK]),
    (dots, shared): (&mut [i32], &mut [i32]),
    logits: &mut [i32],
    (scale, norm): (Scale32, Option<Scale32>),
) {
    // (Helium: every row of the block counts, all eight in one asm block)
    #[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
    if let Some(rows) = source
        .get(first * dim..(first + KEY_BLOCK) * dim)
        .filter(|_| counted.iter().all(|&c| c))
    {
        // (each row's norm term from the row loaded for its dot products)
        let scale = (scale.parts(), norm.map(Scale32::parts));
        if crate::simd::int8::dot_logit_block(loops, (blocks, rows, dim), dots, logits, scale) {
            return;
        }
    }
    // (the other DSP cores: every row of the block counts, d of 16 or 32: the rows widened on
    // the way, |row|² from the widened copy, no checks per row)
    // (the logits stored by the dot products' asm block itself, |row|² from its widened copy)
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
    if let Some(rows) = source
        .get(first * dim..(first + KEY_BLOCK) * dim)
        .filter(|_| counted.iter().all(|&c| c))
        && crate::simd::int8::dot_block_columns(
            loops,
            blocks,
            (rows, dim),
            shared,
            (logits, dots.len()),
            (scale.parts(), norm.map(|norm| norm.parts())),
        )
    {
        return;
    }
    for (jj, &counts) in counted.iter().enumerate() {
        let start = (first + jj) * dim;
        let Some(row) = source.get(start..start + dim).filter(|_| counts) else {
            absent_column(logits, jj, dots.len());
            continue;
        };
        // (the DSP cores without Helium, not built for size: the row widened where it pays,
        // |row|² from its widened copy where there is one)
        #[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
        let offset = {
            let widened = crate::simd::int8::dot_row(loops, blocks, row, shared, dots);
            let square = match widened {
                Some(pairs) => crate::simd::int8::pair_squared_norm(pairs),
                None => squared_norm(row),
            };
            norm.map_or(0, |norm| norm.apply(square))
        };
        #[cfg(not(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact))))]
        let offset = {
            let offset = norm.map_or(0, |norm| norm.apply(squared_norm(row)));
            dot_blocks(loops, blocks, padded_bytes(row, shared), dots);
            offset
        };
        // into column jj of row r's block
        store_scaled_logits(logits, jj, dots, scale, offset);
    }
}

/// `logits[r][column] = ABSENT` for the first `rows` rows of `logits` (`[rows][KEY_BLOCK]`): a
/// row that does not count (out of line: rare, and its pointers stay out of the loop over the
/// rows that count; built for size, as the compiler likes: less flash).
#[cold]
#[cfg_attr(not(lara_attn_compact), inline(never))]
fn absent_column(logits: &mut [i32], column: usize, rows: usize) {
    for r in 0..rows {
        if let Some(slot) = logits.get_mut(r * KEY_BLOCK + column) {
            *slot = fixed_point::ABSENT;
        }
    }
}

/// Admits one block of logits (`[rows][KEY_BLOCK]`) for the first `rows` rows: their `Q15`
/// weights in pairs (`[rows][WEIGHT_WORDS]`), their states, and the rescaling of their sums in
/// `acc` (`[groups][stride][4]`, row `c` at `c · 4` of every group); one row at a time (four on
/// Helium, but built for size one at a time there too: the four-row path's frame, 336 B
/// on the M55, took LARA's call above 1 KiB of stack).
#[cfg(any(not(lara_attn_helium), lara_attn_compact))]
#[inline(never)]
pub(crate) fn admit_rows(
    logits: &[i32],
    weights: &mut [i32],
    (reference, sum): (&mut [i32], &mut [i32]),
    rows: usize,
    acc: &mut [i32],
    stride: usize,
) {
    // (the DSP cores without Helium: the rows zipped, fewer instructions per row there)
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium), lara_attn_compact))]
    {
        let (logit_rows, _) = logits.as_chunks::<KEY_BLOCK>();
        let (weight_rows, _) = weights.as_chunks_mut::<WEIGHT_WORDS>();
        let states = reference.iter_mut().zip(sum.iter_mut());
        let rows = logit_rows.iter().zip(weight_rows).zip(states).take(rows);
        for (c, ((logits, weight_pairs), state)) in rows.enumerate() {
            admit_dsp_row(logits, weight_pairs, state, (acc, stride, c));
        }
    }
    // (the same at opt-level 3: the rows whose reference stays in one asm loop, each other row
    // by the general path)
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
    {
        // (the first `rows` of each, cut once: admit_halves takes every row it is given)
        let (logit_rows, _) = logits.as_chunks::<KEY_BLOCK>();
        let (weight_rows, _) = weights.as_chunks_mut::<WEIGHT_WORDS>();
        let logit_rows = logit_rows.get(..rows).unwrap_or_default();
        let weight_rows = weight_rows.get_mut(..rows).unwrap_or_default();
        let reference = reference.get_mut(..rows).unwrap_or_default();
        let sum = sum.get_mut(..rows).unwrap_or_default();
        dsp::fast_rows(
            &mut (weight_rows, reference, sum, acc),
            rows,
            |(weight_rows, reference, sum, _), c| {
                dsp::admit_halves(logit_rows, weight_rows, reference, sum, c)
            },
            |(weight_rows, reference, sum, acc), c| {
                let (Some(logits), Some(weight_pairs), Some(reference), Some(sum)) = (
                    logit_rows.get(c),
                    weight_rows.get_mut(c),
                    reference.get_mut(c),
                    sum.get_mut(c),
                ) else {
                    return false;
                };
                admit_dsp_row(logits, weight_pairs, (reference, sum), (acc, stride, c));
                true
            },
        );
    }
    #[cfg(not(all(lara_attn_dsp, not(lara_attn_helium))))]
    for c in 0..rows {
        if !admit_row(logits, weights, (reference, sum), (c, c), acc, stride) {
            break;
        }
    }
}

/// [`admit_rows`]' step of row `c` on the DSP cores without Helium: `Running::admit_by` of its
/// state kept as `(reference, sum)`, the `Q15` weights in pairs (stored as halfwords by the
/// weight loop), the row's sums in `acc` rescaled when the reference moves.
#[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
#[inline(always)]
fn admit_dsp_row(
    logits: &[i32; KEY_BLOCK],
    weight_pairs: &mut [i32; WEIGHT_WORDS],
    (reference, sum): (&mut i32, &mut i32),
    (acc, stride, c): (&mut [i32], usize, usize),
) {
    let mut state = Running {
        reference: *reference,
        sum: *sum as u32,
    };
    // (an empty reference: every block before had no logit, so the row's sums are all 0 and
    // its factor 0 leaves them so; at opt-level 3 not rescaled, the same bits)
    let first = !cfg!(lara_attn_compact) && state.reference == fixed_point::EMPTY_REFERENCE;
    let factor = state.admit_by(logits, |reference| match reference {
        Some(reference) => dsp::weight_halves_q15(reference, logits, weight_pairs),
        None => {
            crate::slices::fill(weight_pairs, 0);
            0
        }
    });
    (*reference, *sum) = (state.reference, state.sum as i32);
    if factor != Q15_ONE && !first {
        rescale_row(acc, stride, c, factor);
    }
}

/// `Σ w·v · 2^(old − new reference)`: row `c`'s sums in `acc` (`[groups][stride][4]`) times
/// the `Q15` `factor` (on Helium a vector per group).
#[inline(always)]
fn rescale_row(acc: &mut [i32], stride: usize, c: usize, factor: u32) {
    #[cfg(lara_attn_helium)]
    if helium::rescale_row(acc, (stride * ROWS).max(1), c, factor) {
        return;
    }
    // (the other DSP cores: a row of a group per turn)
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
    if dsp::rescale_row(acc, (stride * ROWS).max(1), c, factor) {
        return;
    }
    for group in chunks_mut(acc, stride * ROWS) {
        for a in group.iter_mut().skip(c * ROWS).take(ROWS) {
            *a = rescale(*a, factor);
        }
    }
}

/// Admits one block of logits (`[rows][KEY_BLOCK]`) for the first `rows` rows: their `Q15`
/// weights in pairs (`[rows][WEIGHT_WORDS]`), their states, and the rescaling of their sums in
/// `acc` (`[groups][stride][4]`, row `c` at `c · 4` of every group): on Helium four rows at a
/// time in one loop ([`helium::admit_groups`], the rows in the lanes of one vector), a group
/// it stops at (an absent block, a sum past the limit) and the last rows one at a time.
#[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
#[inline(never)]
pub(crate) fn admit_rows(
    logits: &[i32],
    weights: &mut [i32],
    (reference, sum): (&mut [i32], &mut [i32]),
    rows: usize,
    acc: &mut [i32],
    stride: usize,
) {
    let groups = rows / 4;
    if groups > 0 {
        let admitted = helium::admit_groups(
            logits,
            weights,
            (reference, sum),
            (acc, stride),
            (0, groups),
        );
        if admitted != Some(groups) {
            admit_stopped(
                logits,
                weights,
                (reference, sum),
                (acc, stride),
                (admitted, groups),
            );
        }
    }
    for c in groups * 4..rows {
        if !admit_row(logits, weights, (reference, sum), (c, c), acc, stride) {
            break;
        }
    }
}

/// [`admit_rows`]' groups after [`helium::admit_groups`] stopped at one (`admitted`: its
/// index, or `None` if it could not take them): a stopping group one row at a time, then the
/// loop again for the rest; every group left one row at a time if it cannot take them (out of
/// line: rare, off the loop's path).
#[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
#[cold]
#[inline(never)]
fn admit_stopped(
    logits: &[i32],
    weights: &mut [i32],
    (reference, sum): (&mut [i32], &mut [i32]),
    (acc, stride): (&mut [i32], usize),
    (mut admitted, groups): (Option<usize>, usize),
) {
    let mut first = 0;
    loop {
        let (next, slow) = match admitted {
            Some(stop) => (stop + 1, stop..(stop + 1).min(groups)),
            None => (groups, first..groups),
        };
        for c in 4 * slow.start..4 * slow.end {
            admit_row(logits, weights, (reference, sum), (c, c), acc, stride);
        }
        if next >= groups {
            return;
        }
        first = next;
        admitted = helium::admit_groups(
            logits,
            weights,
            (reference, sum),
            (acc, stride),
            (first, groups),
        );
    }
}

/// [`admit_rows`] for row `c`, one row at a time, its sums row `acc_row` of `acc`; `false` if
/// the row is missing.
#[cfg(not(all(lara_attn_dsp, not(lara_attn_helium))))]
#[inline(always)]
fn admit_row(
    logits: &[i32],
    weights: &mut [i32],
    (reference, sum): (&mut [i32], &mut [i32]),
    (c, acc_row): (usize, usize),
    acc: &mut [i32],
    stride: usize,
) -> bool {
    // row c's logits, weight pairs and state (index loops: see accumulate_groups)
    let logits = logits.get(c * KEY_BLOCK..(c + 1) * KEY_BLOCK);
    let weight_pairs = weights.get_mut(c * WEIGHT_WORDS..(c + 1) * WEIGHT_WORDS);
    let (Some(logits), Some(weight_pairs), Some(reference), Some(sum)) =
        (logits, weight_pairs, reference.get_mut(c), sum.get_mut(c))
    else {
        return false;
    };
    let mut state = Running {
        reference: *reference,
        sum: *sum as u32,
    };
    // (built for size, the zeros through `black_box`: stores, not a call of the `memset`
    // routine; `admit` overwrites them)
    let zero = if cfg!(lara_attn_compact) {
        core::hint::black_box(0)
    } else {
        0
    };
    let mut block = [zero; KEY_BLOCK];
    let factor = state.admit(logits, &mut block);
    (*reference, *sum) = (state.reference, state.sum as i32);
    // the Q15 weights in pairs (constant indices into the block; four pairs per row)
    const _: () = assert!(WEIGHT_WORDS == 4);
    if let [p0, p1, p2, p3] = weight_pairs {
        let [w0, w1, w2, w3, w4, w5, w6, w7] = block;
        (*p0, *p1, *p2, *p3) = (pair(w0, w1), pair(w2, w3), pair(w4, w5), pair(w6, w7));
    }
    if factor != Q15_ONE {
        rescale_row(acc, stride, acc_row, factor);
    }
    true
}

/// `|x|²` of an `i8` row (`≤ 2^14 · 512 = 2^23`; `SXTB16` and `SMLAD` on DSP cores).
#[inline]
fn squared_norm(x: &[i8]) -> i32 {
    crate::simd::int8::squared_norm(x)
}

/// Where an int8 call writes `[h, n_q, d_v]`.
#[derive(Debug)]
pub enum Out<'a> {
    /// `i8` with the plan's output scale: `round(value / scale_out)`, saturated.
    I8(&'a mut [i8]),
    /// `f32`: the kernel's fixed-point result before requantisation, dequantised (one
    /// `f32` multiplication per value: the only floating point of a call; a program whose
    /// calls all write [`Out::I8`] links no `f32` code for it).
    F32(&'a mut [f32]),
}

/// The output of a kernel, by type: the entry points match [`Out`] in the caller (they are
/// inlined) and run a kernel generic over this, so a firmware whose calls all write `i8` links
/// no `f32` output code and no soft-float routine for it.
trait Rows {
    /// Elements.
    fn len(&self) -> usize;
    /// Row at `offset` from `sums · 2^extra / den` (see [`Requantize::write_row`]).
    fn write(&mut self, requantize: &Requantize, row: (&[i32], Reciprocal, i32), offset: usize);
    /// [`write`](Self::write) with the reciprocal of `den`, usually below `2^16`
    /// ([`Reciprocal::new_small`]).
    #[cfg(all(lara_attn_dsp, not(lara_attn_compact)))]
    #[inline(always)]
    fn write_small(&mut self, requantize: &Requantize, row: (&[i32], u32, i32), offset: usize) {
        let (sums, den, extra) = row;
        self.write(
            requantize,
            (sums, Reciprocal::new_small(den), extra),
            offset,
        );
    }
    /// The `i8` rows themselves (LARA's query output on Helium); `None` for `f32` rows.
    #[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
    #[inline(always)]
    fn i8_rows(&mut self) -> Option<&mut [i8]> {
        None
    }
    /// [`write_small`](Self::write_small) of the first `len` sums of `pair_dot_blocks(loops,
    /// blocks, pairs, sums)` (LARA's query output on the DSP cores without Helium).
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
    #[inline(always)]
    fn write_pairs_small(
        &mut self,
        requantize: &Requantize,
        dot: (Loops, &[i32], &[i32], &mut [i32]),
        row: (usize, u32, i32),
        offset: usize,
    ) {
        write_pairs_general(self, requantize, dot, row, offset);
    }
}

/// [`Rows::write_pairs_small`] by the sums in `sums`.
#[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
#[inline(always)]
fn write_pairs_general<O: Rows + ?Sized>(
    out: &mut O,
    requantize: &Requantize,
    (loops, blocks, pairs, sums): (Loops, &[i32], &[i32], &mut [i32]),
    (len, den, extra): (usize, u32, i32),
    offset: usize,
) {
    crate::simd::int8::pair_dot_blocks(loops, blocks, pairs, sums);
    let row = sums.get(..len).unwrap_or_default();
    out.write_small(requantize, (row, den, extra), offset);
}

impl Rows for &mut [i8] {
    fn len(&self) -> usize {
        <[i8]>::len(self)
    }

    #[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
    #[inline(always)]
    fn i8_rows(&mut self) -> Option<&mut [i8]> {
        Some(self)
    }

    #[inline(always)]
    fn write(
        &mut self,
        requantize: &Requantize,
        (sums, reciprocal, extra): (&[i32], Reciprocal, i32),
        offset: usize,
    ) {
        let out = self.get_mut(offset..).unwrap_or_default();
        // one multiplier per row: 2^extra / den · scale_v / scale_out
        write_i8(out, sums, reciprocal.times(requantize.to_i8, extra));
    }

    /// (the row's multiplier in its high-word form straight from `den` where it allows,
    /// [`fixed_point::row_high_word`]: the same bits; on Helium `VMULH.S32` 4 lanes at a time)
    #[cfg(all(lara_attn_dsp, not(lara_attn_compact)))]
    #[inline(always)]
    fn write_small(
        &mut self,
        requantize: &Requantize,
        (sums, den, extra): (&[i32], u32, i32),
        offset: usize,
    ) {
        match fixed_point::row_high_word(den, requantize.to_i8, extra) {
            #[cfg(lara_attn_helium)]
            Some(parts) => {
                helium::requantize_i8(self.get_mut(offset..).unwrap_or_default(), sums, parts)
            }
            #[cfg(not(lara_attn_helium))]
            Some(parts) => write_i8_high(self.get_mut(offset..).unwrap_or_default(), sums, parts),
            None => self.write(
                requantize,
                (sums, Reciprocal::new_small(den), extra),
                offset,
            ),
        }
    }

    /// (the row multiplier in its high-word form and `len` a whole number of blocks: the sums
    /// requantised as each block's are done, `simd::int8::pair_dot_i8`, the same bits)
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
    #[inline(always)]
    fn write_pairs_small(
        &mut self,
        requantize: &Requantize,
        dot: (Loops, &[i32], &[i32], &mut [i32]),
        row: (usize, u32, i32),
        offset: usize,
    ) {
        let (loops, blocks, pairs, _) = dot;
        let (len, den, extra) = row;
        if let Some(parts) = fixed_point::row_high_word(den, requantize.to_i8, extra)
            && let Some(out) = self.get_mut(offset..).and_then(|out| out.get_mut(..len))
            && crate::simd::int8::pair_dot_i8(loops, blocks, pairs, out, parts)
        {
            return;
        }
        write_pairs_general(self, requantize, dot, row, offset);
    }
}

impl Rows for &mut [f32] {
    fn len(&self) -> usize {
        <[f32]>::len(self)
    }

    #[inline(always)]
    fn write(
        &mut self,
        requantize: &Requantize,
        (sums, reciprocal, extra): (&[i32], Reciprocal, i32),
        offset: usize,
    ) {
        let out = self.get_mut(offset..).unwrap_or_default();
        for (o, &s) in out.iter_mut().zip(sums) {
            // V16 = round(s · 2^(16 + extra) / den), then · scale_v / 2^16
            let v16 = saturate_i32(reciprocal.divide(s, 16 + extra));
            *o = v16 as f32 * requantize.to_f32;
        }
    }
}

/// The last step of every kernel: one row of outputs from integer sums.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Requantize {
    /// `scale_v / scale_out`.
    to_i8: Multiplier,
    /// `scale_v / 2^16`.
    to_f32: f32,
}

impl Requantize {
    const fn new(scales: &Scales) -> Result<Self, Error> {
        Ok(Requantize {
            to_i8: const_try!(multiplier(scales.v / scales.out, "scale_v / scale_out")),
            to_f32: scales.v / 65536.0,
        })
    }

    /// Writes one row at `offset` of `out` whose values are `sums[t] · 2^extra / den` in `v`'s
    /// units (`den > 0`): [`Out::I8`] rounds `sums[t] · 2^extra / den · scale_v / scale_out`
    /// once (half up, one per-row multiplier) and saturates to `[-128, 127]`; [`Out::F32`] is
    /// `V16 · scale_v / 2^16` with `V16 = round(sums[t] · 2^(16 + extra) / den)`.
    #[inline(never)]
    fn write_row<O: Rows>(&self, sums: &[i32], den: u32, extra: i32, out: &mut O, offset: usize) {
        self.write_row_inline(sums, den, extra, out, offset);
    }

    /// [`write_row`](Self::write_row) inlined (LARA's query loop on Helium: no call and
    /// frame per row).
    #[inline(always)]
    fn write_row_inline<O: Rows>(
        &self,
        sums: &[i32],
        den: u32,
        extra: i32,
        out: &mut O,
        offset: usize,
    ) {
        out.write(self, (sums, Reciprocal::new(den), extra), offset);
    }

    /// [`write_row_inline`](Self::write_row_inline) for a `den` usually below `2^16`
    /// ([`Reciprocal::new_small`]; LARA's query loop on Helium, on the other DSP cores through
    /// [`Rows::write_pairs_small`]).
    #[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
    #[inline(always)]
    fn write_row_small<O: Rows>(
        &self,
        sums: &[i32],
        den: u32,
        extra: i32,
        out: &mut O,
        offset: usize,
    ) {
        out.write_small(self, (sums, den, extra), offset);
    }
}

/// `out[t] = round(sums[t] · row)` saturated to `[-128, 127]`. On Helium the common case
/// (`Multiplier::high_word_rounded`) is the `asm!` loop inlined here, the rest not inlined (a
/// frame of its own, off the deepest call path of [`Requantize::write_row`]'s callers: 32 B
/// less stack for RFA on the M55, and no save of `d8`–`d13` for the common case); elsewhere
/// inlined, which takes less.
#[inline]
fn write_i8(out: &mut [i8], sums: &[i32], row: Multiplier) {
    #[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
    if let Some(parts) = row.high_word_rounded() {
        // the rounding term a multiple of 2^32 (a shift above 32): it adds to the high word
        // of the product alone, the same bits (`VMULH.S32`, 4 lanes at a time)
        helium::requantize_i8(out, sums, parts);
        return;
    }
    write_i8_rows(out, sums, row);
}

/// [`write_i8`]'s loops (see there; inlined into each caller on the other DSP cores: LARA's
/// query loop and `write_row` both, no call per row).
#[cfg_attr(lara_attn_helium, inline(never))]
#[cfg_attr(
    all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)),
    inline(always)
)]
#[cfg_attr(
    not(any(lara_attn_helium, all(lara_attn_dsp, not(lara_attn_compact)))),
    inline
)]
fn write_i8_rows(out: &mut [i8], sums: &[i32], row: Multiplier) {
    // (built for size: the general loop alone, the same bits)
    let compact = cfg!(lara_attn_compact);
    // (on Helium the first case is write_i8's, but for the compact build)
    #[cfg(not(lara_attn_helium))]
    if let Some(parts) = row.high_word_rounded().filter(|_| !compact) {
        write_i8_high(out, sums, parts);
        return;
    }
    if let Some((mantissa, round, high_shift)) = row.high_word().filter(|_| !compact) {
        // the common case, hoisted: the high word of one 64-bit product and add
        for (o, &s) in out.iter_mut().zip(sums) {
            let product = i64::from(s) * mantissa + round;
            *o = (((product >> 32) as i32) >> high_shift).clamp(-128, 127) as i8;
        }
    } else {
        for (o, &s) in out.iter_mut().zip(sums) {
            *o = row.apply_saturating(s).clamp(-128, 127) as i8;
        }
    }
}

/// [`write_i8_rows`]' common case, `Multiplier::high_word_rounded`'s `(mantissa, round,
/// high_shift)`: the rounding term a multiple of 2^32 (a shift above 32) adds to the high word
/// of the product alone, the same bits (`SMMLA` on the DSP cores, four values at a time in
/// asm, the rest here).
#[cfg(not(lara_attn_helium))]
#[inline(always)]
fn write_i8_high(
    out: &mut [i8],
    sums: &[i32],
    (mantissa, round_high, high_shift): (i32, i32, u32),
) {
    #[cfg(lara_attn_dsp)]
    let (out, sums) = {
        // (both cut to their common length first: one bound for the asm loop and the rest)
        let len = out.len().min(sums.len());
        let (out, sums) = (
            out.get_mut(..len).unwrap_or_default(),
            sums.get(..len).unwrap_or_default(),
        );
        let done = dsp::requantize_i8(out, sums, (mantissa, round_high, high_shift));
        // (whole groups of four, the common case: no rest to slice)
        if done == len {
            return;
        }
        (
            out.get_mut(done..).unwrap_or_default(),
            sums.get(done..).unwrap_or_default(),
        )
    };
    for (o, &s) in out.iter_mut().zip(sums) {
        let high = ((i64::from(s) * i64::from(mantissa)) >> 32) as i32;
        *o = ((high + round_high) >> high_shift).clamp(-128, 127) as i8;
    }
}

/// Checks the inner loops this target was built with (the Cortex-M DSP or Helium assembly, or
/// the portable loops) against the portable ones on every length from 1 to 40, on fixed data:
/// `None`, or the first length that differs. The test suite runs it on hosts; the firmware
/// example on each core.
#[doc(hidden)]
pub fn check_inner_loops() -> Option<usize> {
    let loops = crate::simd::int8::check_inner_loops();
    // the Helium 2^-t loops against the portable arithmetic
    #[cfg(lara_attn_helium)]
    let loops = loops.or_else(helium::check);
    // the DSP (scalar asm) 2^-t loops against the portable arithmetic
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
    let loops = loops.or_else(dsp::check);
    loops
}

/// The per-tensor symmetric scale of `x`: `max|x| / 127` (1 for an all-zero or empty `x`; NaN
/// and infinities are ignored). Host or start-up code: `f32` arithmetic.
pub fn scale_for(x: &[f32]) -> f32 {
    let max = x
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f32, |m, v| m.max(v.abs()));
    if max > 0.0 { max / 127.0 } else { 1.0 }
}

/// `out[i] = round(x[i] / scale)` saturated to `[-127, 127]` (NaN gives 0), over the common
/// length. Host or start-up code: `f32` arithmetic.
pub fn quantize(x: &[f32], scale: f32, out: &mut [i8]) {
    for (o, &v) in out.iter_mut().zip(x) {
        let q = v / scale;
        // round half away from zero, without libm (f32::round is not in core)
        let rounded = if q >= 0.0 { q + 0.5 } else { q - 0.5 };
        *o = rounded.clamp(-127.0, 127.0) as i8;
    }
}

/// `out[i] = scale · x[i]` over the common length.
pub fn dequantize(x: &[i8], scale: f32, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = scale * f32::from(v);
    }
}
