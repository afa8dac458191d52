//! LARA on int8 inputs: the estimator of [`crate::lara`] (every weighting, eval mode and
//! sampled mode with given noise, segment-mean or given landmarks, the key padding mask) in the
//! fixed-point formats of the [module docs](super), all logarithms in base 2:
//!
//! ```text
//! q̄_c, k̄_c   segment means (i16, units scale_q/128, scale_k/128) or given (i8, their scales)
//! mu_c       = q̄_c + k̄_c,  W_c = mu_c (eval) or mu_c + f·eps_c   (i16, units w_unit)
//! LK[c,j]    = s·(W_c·k_j − |k_j|²/2)·log2 e                    (L16)
//! kv_c, lseK_c  streaming softmax over the keys, blocks of eight  (V8 as i16, L16)
//! LM[c,c']   = s·(W_c·mu_c' − |mu_c'|²/2)·log2 e                (L16, i64 dot products)
//! logiw[c,i] = log2 α[c,i] + s·W_c·q_i·log2 e + lseK_c − log2 P_c   (the |q_i|² term cancels)
//! out_i      = Σ_c sniw[c,i] kv_c,   sniw ∝ α · 2^(logiw − log2 α − max)  (weights ≤ 2^14)
//! ```
//!
//! `mis-opt`'s `T[c,i] = softmax_i(s·q̄ᵀ_c·q_i)` is `Q27` from a streaming log-sum-exp over the
//! queries, `α = max(bh_c + alpha_coeff·(T − mean_c T), 2^-27)` in `Q27` and `bh_c` in `Q27`.
//! `q̄ᵀ_c` is `q̄_c` rounded half up to the queries' own `i8` grid (`(q̄_c + 64) & !127` in its
//! units): Helium takes `T`'s dot products `i8 × i8`; `mu_c` keeps the finer `q̄_c`.
//!
//! Scratch: [`scratch_len`] `i32`s, independent of `n`.

use super::fixed_point::{
    L16_ONE, Multiplier, Reciprocal, Running, Scale32, bits64, clamp_operand, div_round, exp2_neg,
    log2_l16, mul_high_round, to_logit, to_logit_wide,
};
// (the densities' weights: Helium and the other DSP cores at opt-level 3 have their own loops)
#[cfg(not(any(lara_attn_helium, all(lara_attn_dsp, not(lara_attn_compact)))))]
use super::fixed_point::weight_q15;
// (the portable per-element loops; Helium and the other DSP cores have their own, in
// `super::helium` and `super::dsp`)
#[cfg(not(lara_attn_compact))]
use super::block_logits;
#[cfg(not(any(lara_attn_helium, lara_attn_dsp)))]
use super::fixed_point::exp2_neg_branchless;
use super::{
    Out, Qkv, Requantize, Rows, Scales, check_logit_bound, check_scale, const_try, multiplier,
    scale32,
};
use crate::error::{Arg, Error};
use crate::lara::{Proposals, Weighting, effective_landmarks, segment_lens};
use crate::math::sqrt;
use crate::random::NoiseScale;
use crate::shape::{Shape, expect_len};
#[cfg(not(lara_attn_helium))]
use crate::simd::int8::pair;
use crate::simd::int8::{
    KEY_BLOCK, Loops, ROWS, VALUE_BLOCK_WORDS, WEIGHT_WORDS, block_words, byte_slot, dot_blocks,
    get_slot, padded, padded_bytes, pair_dot_blocks, pair_row_words, pair_slot, set_slot,
};
use crate::slices::{chunks, part, parts_len, rows, split_workspace};
// (the key pass's own loop at opt-level 3)
#[cfg(not(lara_attn_compact))]
use crate::simd::int8::pack_value_blocks;

/// The configuration a LARA plan is made for: the weighting, the proposals and noise scale of
/// sampled mode, and the quantisation scales of the noise and of given landmarks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// How proposals are weighted (the official `mis_type`).
    pub weighting: Weighting,
    /// Samples per landmark in sampled mode.
    pub proposals: Proposals,
    /// The factor `f` on the noise in sampled mode.
    pub noise_scale: NoiseScale,
    /// The scale of the `i8` noise `eps` of sampled mode; `None`: eval mode only.
    pub noise: Option<f32>,
    /// The scales of given `i8` landmarks `(q̄, k̄)`; `None`: segment means only.
    pub landmarks: Option<(f32, f32)>,
}

impl Config {
    /// Eval mode, segment means, the given weighting.
    pub const fn eval(weighting: Weighting) -> Self {
        Config {
            weighting,
            proposals: Proposals::Single,
            noise_scale: NoiseScale::Official,
            noise: None,
            landmarks: None,
        }
    }
}

/// The largest `|W_t · x_t|` (and `|q̄_t · q_t|`) of one element: `2^14 · 2^7`.
const W_DOT_LIMIT: u32 = 1 << 21;

/// Where the landmarks of a call come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Landmarks<'a> {
    /// `C` segment means of `q` and `k` (the official `no-param-pool`, `C' = min(C, n_q, n_k)`).
    SegmentMeans(usize),
    /// Landmarks quantised with the scales of [`Config::landmarks`]: `count` rows per head of
    /// `q̄ [h, count, d]` and `k̄ [h, count, d]`.
    Given {
        /// Landmarks per head.
        count: usize,
        /// Query landmarks.
        queries: &'a [i8],
        /// Key landmarks.
        keys: &'a [i8],
    },
}

/// Eval mode, or sampled mode with the caller's `i8` noise `eps [h, R, d]` (scale
/// [`Config::noise`], `R = `[`Proposals::noise_rows`]`(C')`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling<'a> {
    /// `W = mu`.
    Eval,
    /// `W = mu + f · eps`, laid out as [`Proposals`] says.
    Noise(&'a [i8]),
}

/// The fixed-point constants of int8 LARA for one head dimension, scales and [`Config`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    dim: usize,
    config: Config,
    /// `alpha_coeff` in `Q16` (mis-opt).
    alpha_coeff: i32,
    /// `q̄` (units `scale_q̄/128`) and `k̄` (`scale_k̄/128`) to `w_unit`; for segment means and
    /// for given landmarks.
    q_bar_to_w: Multiplier,
    k_bar_to_w: Multiplier,
    given_q_bar_to_w: Multiplier,
    given_k_bar_to_w: Multiplier,
    /// `f · scale_eps / w_unit`.
    noise_to_w: Multiplier,
    /// `s · w_unit · scale_k` and `s · scale_k² / 2` (per `|k|²`), to `L16`.
    key_dot: Scale32,
    key_norm: Scale32,
    /// `s · w_unit · scale_q`, to `L16`.
    query_dot: Scale32,
    /// `s · scale_q̄/128 · scale_q` for segment means and for given landmarks, to `L16`.
    t_dot: Scale32,
    given_t_dot: Scale32,
    /// `s · w_unit² / 2` per unit of `2·W·mu − |mu|²`, to `L16`.
    density: Multiplier,
    requantize: Requantize,
}

impl Plan {
    /// The plan for head dimension `dim`, these scales and `config` (`f32` arithmetic, once; a
    /// `const fn`, see the [module docs](super)).
    ///
    /// # Errors
    /// [`Error::InvalidScale`] for a scale (inputs, noise, landmarks) that is not finite and
    /// positive; [`Error::NonFinite`] for a non-finite `alpha_coeff`;
    /// [`Error::FixedPointRange`] for `dim > 512`, `|alpha_coeff| > 8`, or scales whose key or
    /// query logits can exceed `2^12` (base 2).
    pub const fn new(dim: usize, scales: &Scales, config: &Config) -> Result<Self, Error> {
        const_try!(scales.check());
        const_try!(super::check_dim(dim));
        let alpha = match config.weighting {
            Weighting::Optimal { alpha_coeff } if !alpha_coeff.is_finite() => {
                return Err(Error::NonFinite(Arg::AlphaCoeff));
            }
            Weighting::Optimal { alpha_coeff } if alpha_coeff.abs() > 8.0 => {
                return Err(Error::FixedPointRange("|alpha_coeff| above 8"));
            }
            Weighting::Optimal { alpha_coeff } => alpha_coeff,
            _ => 0.0,
        };
        let (given_q, given_k) = match config.landmarks {
            Some(given) => given,
            None => (scales.q, scales.k),
        };
        const_try!(check_scale(given_q, Arg::QueryLandmarks));
        const_try!(check_scale(given_k, Arg::KeyLandmarks));
        let factor = config.noise_scale.factor_const(dim);
        let noise = match config.noise {
            Some(scale) => {
                const_try!(check_scale(scale, Arg::Noise));
                factor * scale
            }
            None => 0.0,
        };
        // |W| ≤ 128·(scale_q̄ + scale_k̄) + f·128·scale_eps, over both kinds of landmarks
        let max_w = 128.0 * (scales.q.max(given_q) + scales.k.max(given_k)) + 128.0 * noise;
        let w_unit = max_w / 16384.0;
        let s = 1.0 / sqrt(dim as f32);
        let d = dim as f32;
        let (max_q, max_k) = (128.0 * scales.q, 128.0 * scales.k);
        const_try!(check_logit_bound(
            s * d * (max_w * max_k + max_k * max_k / 2.0),
            "LARA key logits: s · d · (max|W| max|k| + max|k|²/2) above 2839",
        ));
        const_try!(check_logit_bound(
            2.0 * s * d * max_w * max_q,
            "LARA query logits: 2 s · d · max|W| · max|q| above 2839",
        ));
        let l16 = super::L16_PER_NAT;
        let why = "a product of the LARA scales outside the f32 range";
        let why_logits = "a product of the LARA scales outside the range of the fixed-point logits";
        let dot_limit = W_DOT_LIMIT * dim as u32;
        let unit_noise = if noise > 0.0 { noise / w_unit } else { 1.0 };
        Ok(Plan {
            dim,
            config: *config,
            alpha_coeff: (alpha * 65536.0) as i32,
            q_bar_to_w: const_try!(multiplier(scales.q / 128.0 / w_unit, why)),
            k_bar_to_w: const_try!(multiplier(scales.k / 128.0 / w_unit, why)),
            given_q_bar_to_w: const_try!(multiplier(given_q / 128.0 / w_unit, why)),
            given_k_bar_to_w: const_try!(multiplier(given_k / 128.0 / w_unit, why)),
            noise_to_w: const_try!(multiplier(unit_noise, why)),
            key_dot: const_try!(scale32(s * w_unit * scales.k * l16, dot_limit, why_logits)),
            key_norm: const_try!(scale32(
                s * scales.k * scales.k * 0.5 * l16,
                16384 * dim as u32,
                why_logits
            )),
            query_dot: const_try!(scale32(s * w_unit * scales.q * l16, dot_limit, why_logits)),
            t_dot: const_try!(scale32(
                s * scales.q / 128.0 * scales.q * l16,
                dot_limit,
                why_logits
            )),
            given_t_dot: const_try!(scale32(
                s * given_q / 128.0 * scales.q * l16,
                dot_limit,
                why_logits
            )),
            density: const_try!(multiplier(s * w_unit * w_unit * 0.5 * l16, why)),
            requantize: const_try!(Requantize::new(scales)),
        })
    }
}

/// Scratch (in `i32`s) of [`attention`] with up to `landmarks` landmarks and these `proposals`:
/// with `C` landmarks, `S = proposals.samples(C)` samples, blocks of four rows of `P` words
/// (`2·d` rounded up to whole chunks), `C₄ = ⌈C/4⌉`, `S₄ = ⌈S/4⌉` and `G = ⌈d_v/4⌉`:
/// `2·C₄·P + S₄·P + 16·S₄·G + G·block(S) + 52·S₄ + 16·C₄ + 32·max(S₄, C₄) + 20·G + ⌈S/2⌉ + 2·d`,
/// independent of `n`.
pub const fn scratch_len(shape: Shape, landmarks: usize, proposals: Proposals) -> usize {
    let samples = proposals.samples(landmarks);
    workspace_len(shape, landmarks, samples)
}

/// The parts of the scratch of `count` landmarks and `samples` samples, in words, in the order
/// of [`Workspace`]'s parts.
const fn workspace_parts(shape: Shape, count: usize, samples: usize) -> [usize; 22] {
    let (landmark_rows, sample_rows) = (count.div_ceil(ROWS) * ROWS, samples.div_ceil(ROWS) * ROWS);
    let block = block_words(shape.dim);
    let groups = shape.value_dim.div_ceil(ROWS);
    let block_rows = if landmark_rows > sample_rows {
        landmark_rows
    } else {
        sample_rows
    };
    [
        landmark_rows / ROWS * block,
        landmark_rows / ROWS * block,
        sample_rows / ROWS * block,
        groups * block_words(samples),
        sample_rows,
        sample_rows,
        landmark_rows,
        landmark_rows,
        landmark_rows,
        sample_rows,
        pair_row_words(samples),
        groups * ROWS,
        2 * shape.dim,
        landmark_rows * shape.dim,
        // the stream: accumulators, references, sums, logits, weights, values, dots, key row
        groups * sample_rows * ROWS,
        sample_rows,
        sample_rows,
        block_rows * KEY_BLOCK,
        sample_rows * WEIGHT_WORDS,
        groups * VALUE_BLOCK_WORDS,
        block_rows,
        padded(shape.dim) / 4,
    ]
}

const fn workspace_len(shape: Shape, count: usize, samples: usize) -> usize {
    parts_len(&workspace_parts(shape, count, samples))
}

/// The length of the noise of sampled mode with segment-mean landmarks: `[h, R, d]`.
pub const fn noise_len(shape: Shape, landmarks: usize, proposals: Proposals) -> usize {
    crate::lara::noise_len(shape, landmarks, proposals)
}

/// LARA of the int8 inputs `x` into `out` (`[h, n_q, d_v]`).
///
/// The landmarks and the sampling are matched here, in the caller: a call with constants
/// (segment means, eval mode) links the code of that case only.
///
/// # Errors
/// A zero dimension or zero landmarks, a slice whose length does not match (noise, given
/// landmarks, mask, output), a mask that masks every key, a plan made for another `d` or
/// without the noise scale (sampled) or landmark scales (given landmarks)
/// ([`Error::PlanMismatch`]), the limits of the [module docs](super), scratch shorter than
/// [`scratch_len`]. Nothing is written on error.
#[inline(always)]
pub fn attention(
    plan: &Plan,
    x: &Qkv<'_>,
    landmarks: Landmarks<'_>,
    sampling: Sampling<'_>,
    out: Out<'_>,
    scratch: &mut [i32],
) -> Result<(), Error> {
    match out {
        Out::I8(out) => attend(plan, x, (landmarks, sampling), out, scratch),
        Out::F32(out) => attend(plan, x, (landmarks, sampling), out, scratch),
    }
}

/// [`attention`] into one kind of output (see [`Rows`]).
#[inline(always)]
fn attend<O: Rows>(
    plan: &Plan,
    x: &Qkv<'_>,
    (landmarks, sampling): (Landmarks<'_>, Sampling<'_>),
    out: O,
    scratch: &mut [i32],
) -> Result<(), Error> {
    // (built for size, checked here, in the caller: `run` returns its own errors only, and a
    // firmware that only tests for success copies no error out of it, nor links `memcpy` for
    // it; at opt-level 3 in `run`, off the caller's frame: 32 B less stack on the M4F)
    #[cfg(lara_attn_compact)]
    x.check(out.len())?;
    match (landmarks, sampling) {
        (Landmarks::SegmentMeans(count), Sampling::Eval) => {
            run(plan, x, SegmentMeans(count), NoNoise, out, scratch)
        }
        (Landmarks::SegmentMeans(count), Sampling::Noise(eps)) => {
            run(plan, x, SegmentMeans(count), GivenNoise(eps), out, scratch)
        }
        (
            Landmarks::Given {
                count,
                queries,
                keys,
            },
            Sampling::Eval,
        ) => {
            let given = GivenLandmarks {
                count,
                queries,
                keys,
            };
            run(plan, x, given, NoNoise, out, scratch)
        }
        (
            Landmarks::Given {
                count,
                queries,
                keys,
            },
            Sampling::Noise(eps),
        ) => {
            let given = GivenLandmarks {
                count,
                queries,
                keys,
            };
            run(plan, x, given, GivenNoise(eps), out, scratch)
        }
    }
}

/// Segment-mean landmarks, `C` asked for.
#[derive(Clone, Copy)]
struct SegmentMeans(usize);

/// Given `i8` landmarks.
#[derive(Clone, Copy)]
struct GivenLandmarks<'a> {
    count: usize,
    queries: &'a [i8],
    keys: &'a [i8],
}

/// Eval mode.
#[derive(Clone, Copy)]
struct NoNoise;

/// Sampled mode with the caller's noise.
#[derive(Clone, Copy)]
struct GivenNoise<'a>(&'a [i8]);

/// Where the landmarks of a call come from (one implementation per [`Landmarks`] variant).
trait LandmarkSource: Copy {
    /// Whether these are given landmarks (their plan multipliers).
    const GIVEN: bool;
    /// `C'` for `shape`, after checking the lengths.
    fn count(self, shape: Shape) -> Result<usize, Error>;
    /// `q̄` and `mu` of head `head`.
    fn build(self, ws: &mut Workspace<'_>, plan: &Plan, x: &Qkv<'_>, heads_head: (usize, usize));
}

/// The noise of a call (one implementation per [`Sampling`] variant).
trait NoiseSource: Copy {
    /// Whether this is sampled mode.
    const SAMPLED: bool;
    /// Checks the length for `count` landmarks; the number of samples.
    fn samples(self, shape: Shape, count: usize, proposals: Proposals) -> Result<usize, Error>;
    /// `W` from `mu` for head `head`.
    fn build(self, ws: &mut Workspace<'_>, plan: &Plan, heads_head: (usize, usize));
}

impl LandmarkSource for SegmentMeans {
    const GIVEN: bool = false;
    fn count(self, shape: Shape) -> Result<usize, Error> {
        if self.0 == 0 {
            return Err(Error::ZeroLandmarks);
        }
        Ok(effective_landmarks(shape, self.0))
    }
    fn build(self, ws: &mut Workspace<'_>, plan: &Plan, x: &Qkv<'_>, _: (usize, usize)) {
        ws.segment_means(plan, x);
    }
}

impl LandmarkSource for GivenLandmarks<'_> {
    const GIVEN: bool = true;
    fn count(self, shape: Shape) -> Result<usize, Error> {
        if self.count == 0 {
            return Err(Error::ZeroLandmarks);
        }
        let len = shape.stacked(self.count, shape.dim)?;
        expect_len(Arg::QueryLandmarks, self.queries.len(), len)?;
        expect_len(Arg::KeyLandmarks, self.keys.len(), len)?;
        Ok(self.count)
    }
    fn build(
        self,
        ws: &mut Workspace<'_>,
        plan: &Plan,
        _: &Qkv<'_>,
        (heads, head): (usize, usize),
    ) {
        ws.given_landmarks(
            plan,
            part(self.queries, heads, head),
            part(self.keys, heads, head),
        );
    }
}

impl NoiseSource for NoNoise {
    const SAMPLED: bool = false;
    fn samples(self, _: Shape, count: usize, _: Proposals) -> Result<usize, Error> {
        Ok(count)
    }
    fn build(self, ws: &mut Workspace<'_>, _: &Plan, _: (usize, usize)) {
        ws.eval_proposals();
    }
}

impl NoiseSource for GivenNoise<'_> {
    const SAMPLED: bool = true;
    fn samples(self, shape: Shape, count: usize, proposals: Proposals) -> Result<usize, Error> {
        let rows = proposals.noise_rows(count);
        expect_len(Arg::Noise, self.0.len(), shape.stacked(rows, shape.dim)?)?;
        Ok(proposals.samples(count))
    }
    fn build(self, ws: &mut Workspace<'_>, plan: &Plan, (heads, head): (usize, usize)) {
        ws.sampled_proposals(plan, part(self.0, heads, head));
    }
}

/// One call with its kind of landmarks and noise (not inlined: its workspace is not on the
/// caller's frame); built for size, on inputs [`attend`] checked.
#[inline(never)]
fn run<L: LandmarkSource, N: NoiseSource, O: Rows>(
    plan: &Plan,
    x: &Qkv<'_>,
    landmarks: L,
    noise: N,
    mut out: O,
    scratch: &mut [i32],
) -> Result<(), Error> {
    #[cfg(not(lara_attn_compact))]
    x.check(out.len())?;
    let shape = x.shape;
    if plan.dim != shape.dim
        || (N::SAMPLED && plan.config.noise.is_none())
        || (L::GIVEN && plan.config.landmarks.is_none())
    {
        return Err(Error::PlanMismatch);
    }
    let count = landmarks.count(shape)?;
    let samples = noise.samples(shape, count, plan.config.proposals)?;
    split_workspace!(
        ws = scratch,
        workspace_parts(shape, count, samples),
        Workspace {
            shape: shape,
            loops: Loops::active(),
            count: count,
            samples: samples,
            rows: QueryRows::new(shape, count, samples),
            #[cfg(lara_attn_helium)]
            query_max: (0, 0),
            #[cfg(lara_attn_helium)]
            t_bytes: false,
            #[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
            small_biases: false,
        } => {
            q_bar,
            mu,
            w,
            kv,
            bias,
            balance,
            t_reference,
            t_sum,
            t_row,
            alpha,
            weights_packed,
            out_row,
            row,
            mu_rows,
        } stream {
            acc,
            reference,
            sum,
            logits,
            weights,
            values,
            dots,
            shared,
        }
    );
    let heads = shape.heads;
    let t_dot = if L::GIVEN {
        plan.given_t_dot
    } else {
        plan.t_dot
    };
    for head in 0..heads {
        let x = x.head(head);
        landmarks.build(ws, plan, &x, (heads, head));
        noise.build(ws, plan, (heads, head));
        ws.key_pass(plan, &x);
        ws.densities(plan, N::SAMPLED);
        if let Weighting::Optimal { .. } = plan.config.weighting {
            ws.normaliser(t_dot, &x);
        }
        ws.query_pass(plan, t_dot, &x, &mut out, head);
    }
    Ok(())
}

/// The scratch of one head, split into its named parts (`C'` landmarks, `S` samples, sample
/// `c` drawn around component `c mod C'`). Rows of landmarks and samples come in blocks of four
/// (padding rows are zero and get weight 0).
struct Workspace<'a> {
    shape: Shape,
    /// The inner loops of this call (of its backend).
    loops: Loops,
    count: usize,
    samples: usize,
    /// For the query pass, once per head: the rows of `S` samples and of `max(C', 1)`
    /// landmarks in whole blocks and the words of the landmarks' byte blocks of `d` columns
    /// (`w`, `weights_packed` hold exactly the samples' blocks and pairs).
    rows: QueryRows,
    /// `q̄ [C', d]` in byte blocks (units `scale_q̄/128`).
    q_bar: &'a mut [i32],
    /// `mu [C', d]` in byte blocks (`w_unit`).
    mu: &'a mut [i32],
    /// `W [S, d]` in byte blocks (`w_unit`).
    w: &'a mut [i32],
    /// `kv` as `V8`, for every group of four columns a pair block of the columns by `S`.
    kv: &'a mut [i32],
    /// `lseK_c − log2 P_c` (`L16`), `[S]`.
    bias: &'a mut [i32],
    /// `bh_c` (`Q27`), `[S]`.
    balance: &'a mut [i32],
    /// `mis-opt`'s normaliser `lse_i(s·q̄_c·q_i)` (reference, then the result) and sum, `[C']`;
    /// per query `T[·, i]` (`Q27`) `[C']`.
    t_reference: &'a mut [i32],
    t_sum: &'a mut [i32],
    t_row: &'a mut [i32],
    /// Per query: `α` (`Q27`), `[S]`.
    alpha: &'a mut [i32],
    /// Per query: the normalised weights in pairs, `[⌈S/2⌉]`.
    weights_packed: &'a mut [i32],
    /// One output row of sums.
    out_row: &'a mut [i32],
    /// Segment sums of `q` and `k`, `[2, d]`; a row of `W` for the densities.
    row: &'a mut [i32],
    /// `mu [C', d]` as plain `i32` rows (the densities' operands).
    mu_rows: &'a mut [i32],
    /// The streaming passes' parts: the key pass's `Σ_j 2^(LK − reference) v_j`
    /// `[⌈d_v/4⌉][S][4]` (`acc`) and states (`L16` reference, `Q15` sum) `[S]` each, a block of
    /// logits `[S or C][KEY_BLOCK]` (per query: the logits `[S]`), of `Q15` weights in pairs
    /// `[S][WEIGHT_WORDS]` and of values, the dot products of one key or query with every row
    /// of a set of blocks (`dots`), a key or query row padded to whole chunks (`shared`).
    stream: super::KeyStream<'a>,
    /// Helium: how many logits `query_logits` wrote last and their largest (0 logits: none
    /// known).
    #[cfg(lara_attn_helium)]
    query_max: (usize, i32),
    /// Helium: whether `mu_rows` holds `q̄ᵀ`'s blocks as `i8` for this head's `T` (written by
    /// `normaliser`, after the densities last read `mu_rows`).
    #[cfg(lara_attn_helium)]
    t_bytes: bool,
    /// The other DSP cores at opt-level 3: whether every bias is below `2^30` in magnitude
    /// (`dsp::QuerySteps`; found by `densities`, off the query loop's frame).
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
    small_biases: bool,
}

/// See [`Workspace::rows`].
#[derive(Clone, Copy)]
struct QueryRows {
    samples: usize,
    landmarks: usize,
    landmark_words: usize,
}

impl QueryRows {
    fn new(shape: Shape, count: usize, samples: usize) -> Self {
        let block = block_words(shape.dim);
        let (landmarks, samples_rows) = (
            count.max(1).div_ceil(ROWS) * ROWS,
            samples.div_ceil(ROWS) * ROWS,
        );
        QueryRows {
            samples: samples_rows,
            landmarks,
            landmark_words: landmarks / ROWS * block,
        }
    }
}

impl<'a> Workspace<'a> {
    /// Writes `mu_c = q̄_c + k̄_c` (`w_unit`) from `q̄`, `k̄` in their units.
    fn set_landmark(
        &mut self,
        c: usize,
        e: usize,
        (q_bar, q_to_w): (i64, Multiplier),
        (k_bar, k_to_w): (i64, Multiplier),
    ) {
        // mu = q̄ + k̄ in w_unit
        let mu = clamp_operand(q_to_w.apply(q_bar) + k_to_w.apply(k_bar));
        self.store_landmark(c, e, q_bar as i32, mu);
    }

    /// Writes `q̄_c` and `mu_c` (`w_unit`) of column `e` (built for size, out of line: less
    /// flash).
    #[cfg_attr(not(lara_attn_compact), inline(always))]
    #[cfg_attr(lara_attn_compact, inline(never))]
    fn store_landmark(&mut self, c: usize, e: usize, q_bar: i32, mu: i32) {
        let block = block_words(self.shape.dim);
        let (b, r) = (c / ROWS, c % ROWS);
        let slot = byte_slot(r, e);
        if let Some(q_block) = self.q_bar.get_mut(b * block..) {
            set_slot(q_block, slot, t_landmark(q_bar));
        }
        if let Some(mu_block) = self.mu.get_mut(b * block..) {
            set_slot(mu_block, slot, mu);
        }
        if let Some(plain) = self.mu_rows.get_mut(c * self.shape.dim + e) {
            *plain = mu;
        }
    }

    /// `q̄_c = round(128 · Σ_segment q / len)` (units `scale_q/128`), `k̄_c` likewise with masked
    /// keys as zero rows; `mu_c = q̄_c + k̄_c` in `w_unit`.
    #[inline(never)]
    fn segment_means(&mut self, plan: &Plan, x: &Qkv<'_>) {
        let (dim, count) = (self.shape.dim, self.count);
        crate::slices::fill(self.q_bar, 0);
        crate::slices::fill(self.mu, 0);
        let q_lens = segment_lens(x.shape.queries, count);
        let k_lens = segment_lens(x.shape.keys, count);
        let (mut q_first, mut k_first) = (0, 0);
        // (built for size: the general paths alone, the same bits)
        let compact = cfg!(lara_attn_compact);
        let mean = |sum: i32, len: usize| -> i64 {
            if !compact && (1..1 << 16).contains(&len) {
                segment_mean(sum, len as u32).into()
            } else {
                i64::from(div_round(i64::from(sum) * 128, len as u32))
            }
        };
        // q̄, k̄ (|·| ≤ 2^14) to w_unit in 32-bit arithmetic where the factors allow (they are
        // at most 1: |W| bounds 128 · (scale_q̄ + scale_k̄))
        let small = plan
            .q_bar_to_w
            .high_word_small()
            .zip(plan.k_bar_to_w.high_word_small())
            .filter(|_| !compact);
        // `w` is written after the landmarks: its words hold the packed lanes of the sums
        let packed = core::mem::take(&mut self.w);
        for (c, (q_len, k_len)) in q_lens.zip(k_lens).enumerate() {
            let row = core::mem::take(&mut self.row);
            let (q_sum, k_sum) = row.split_at_mut(dim.min(row.len()));
            // (Helium's sum_rows writes the sums; the others add to zeros)
            let zeroed = !cfg!(lara_attn_helium);
            if zeroed {
                crate::slices::fill(q_sum, 0);
                crate::slices::fill(k_sum, 0);
            }
            let q_rows = x.q.get(q_first * dim..).unwrap_or_default();
            let k_rows = x.k.get(k_first * dim..).unwrap_or_default();
            // (Helium: 16 columns at a time over the rows in i16 lanes, or 8 in i32 lanes, for d
            // a multiple of 8 and, for the keys, no mask)
            #[cfg(lara_attn_helium)]
            let summed = {
                let q_segment = q_rows.get(..q_len * dim).unwrap_or_default();
                let k_segment = k_rows.get(..k_len * dim).unwrap_or_default();
                (
                    q_segment.len() == q_len * dim
                        && super::helium::sum_rows(q_sum, q_segment, dim),
                    x.key_mask.is_none()
                        && k_segment.len() == k_len * dim
                        && super::helium::sum_rows(k_sum, k_segment, dim),
                )
            };
            // (the other DSP cores: 16 columns at a time over the rows, for d a multiple of 4 and,
            // for the keys, no mask)
            #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
            let summed = if compact {
                (false, false)
            } else {
                let q_segment = q_rows.get(..q_len * dim).unwrap_or_default();
                let k_segment = k_rows.get(..k_len * dim).unwrap_or_default();
                (
                    q_segment.len() == q_len * dim && super::dsp::sum_rows(q_sum, q_segment),
                    x.key_mask.is_none()
                        && k_segment.len() == k_len * dim
                        && super::dsp::sum_rows(k_sum, k_segment),
                )
            };
            #[cfg(not(any(lara_attn_helium, lara_attn_dsp)))]
            let summed = (false, false);
            if !summed.0 {
                if !zeroed {
                    crate::slices::fill(q_sum, 0);
                }
                add_rows(q_sum, packed, rows(q_rows, dim).take(q_len));
            }
            if !summed.1 {
                if !zeroed {
                    crate::slices::fill(k_sum, 0);
                }
                let counted = (k_first..).map(|j| x.counts(j));
                let k_rows = rows(k_rows, dim).take(k_len).zip(counted);
                add_rows(
                    k_sum,
                    packed,
                    k_rows.filter_map(|(k, counts)| counts.then_some(k)),
                );
            }
            // (Helium: 4 lanes at a time, for dim a multiple of 8 and segments of 2 to 2^16 − 1)
            #[cfg(lara_attn_helium)]
            if let Some(factors) = small {
                let block = block_words(dim);
                let (b, r) = (c / ROWS, c % ROWS);
                let done = (2..1 << 16).contains(&q_len)
                    && (2..1 << 16).contains(&k_len)
                    && dim.is_multiple_of(8)
                    && super::helium::segment_means(q_sum, q_len)
                    && super::helium::segment_means(k_sum, k_len)
                    && match (
                        self.q_bar.get_mut(b * block..(b + 1) * block),
                        self.mu.get_mut(b * block..(b + 1) * block),
                        self.mu_rows.get_mut(c * dim..(c + 1) * dim),
                    ) {
                        (Some(q_block), Some(mu_block), Some(mu_row)) => {
                            super::helium::landmark_row(
                                (q_sum, k_sum),
                                factors,
                                (q_block, mu_block, r),
                                mu_row,
                            )
                        }
                        _ => false,
                    };
                if done {
                    self.row = row;
                    (q_first, k_first) = (q_first + q_len, k_first + k_len);
                    continue;
                }
            }
            // (the other DSP cores: a row at a time, for d a multiple of 4 and segments of 1 to
            // 2^16 − 1; not on the M3 and ARMv6-M, where it takes 32 and 24 B more stack)
            #[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
            if let Some(factors) = small
                && self.landmark_row(c, (q_sum, q_len), (k_sum, k_len), factors)
            {
                self.row = row;
                (q_first, k_first) = (q_first + q_len, k_first + k_len);
                continue;
            }
            for (e, (&q, &k)) in q_sum.iter().zip(k_sum.iter()).enumerate() {
                let (q_bar, k_bar) = (mean(q, q_len), mean(k, k_len));
                if let Some(((q_m, q_p), (k_m, k_p))) = small {
                    // the same bits as set_landmark (Multiplier::high_word_small)
                    let (q_bar, k_bar) = (q_bar as i32, k_bar as i32);
                    let mu = mul_high_round(q_bar << q_p, q_m) + mul_high_round(k_bar << k_p, k_m);
                    self.store_landmark(c, e, q_bar, mu.clamp(-(1 << 14), 1 << 14));
                } else {
                    self.set_landmark(c, e, (q_bar, plan.q_bar_to_w), (k_bar, plan.k_bar_to_w));
                }
            }
            self.row = row;
            (q_first, k_first) = (q_first + q_len, k_first + k_len);
        }
        self.w = packed;
    }

    /// [`segment_means`](Self::segment_means)' landmark `c` from its segment sums (overwritten
    /// by the means) on the DSP cores without Helium at opt-level 3: the means `q̄`, `k̄` and
    /// `mu` by [`Multiplier::high_word_small`]'s `factors` into its plain row in one asm loop
    /// (`dsp::landmark_means`), then the rows of `q̄` and `mu` into row `c mod 4` of their
    /// byte blocks a chunk at a time (the words `(x0, x2)` and `(x1, x3)`). The bits of the
    /// element loop; `false`, nothing written, unless `d` is a multiple of 4 and both segments
    /// have 1 to `2^16 − 1` rows.
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
    #[inline(always)]
    fn landmark_row(
        &mut self,
        c: usize,
        (q_sum, q_len): (&mut [i32], usize),
        (k_sum, k_len): (&mut [i32], usize),
        ((q_m, q_p), (k_m, k_p)): ((i32, u32), (i32, u32)),
    ) -> bool {
        let dim = self.shape.dim;
        let block = block_words(dim);
        let (b, r) = (c / ROWS, c % ROWS);
        let lens = 1..1 << 16;
        let rows = (
            self.q_bar.get_mut(b * block..(b + 1) * block),
            self.mu.get_mut(b * block..(b + 1) * block),
            self.mu_rows.get_mut(c * dim..(c + 1) * dim),
        );
        let (Some(q_block), Some(mu_block), Some(mu_row)) = rows else {
            return false;
        };
        if !dim.is_multiple_of(4) || !lens.contains(&q_len) || !lens.contains(&k_len) {
            return false;
        }
        // q̄, k̄ and mu = q̄ + k̄ in w_unit (set_landmark's bits, one asm loop)
        let lens = (q_len as u32, k_len as u32);
        let factors = ((q_m, q_p), (k_m, k_p));
        if !super::dsp::landmark_means((q_sum, k_sum, mu_row), lens, factors) {
            return false;
        }
        // row r of a block from a plain row, each element through `slot_value`
        fn pack(row: &[i32], block: &mut [i32], r: usize, slot_value: impl Fn(i32) -> i32) {
            let (chunks, _) = row.as_chunks::<4>();
            let (words, _) = block.as_chunks_mut::<8>();
            for (&[x0, x1, x2, x3], words) in chunks.iter().zip(words) {
                // (r < 4)
                words[r & 3] = pair(slot_value(x0), slot_value(x2));
                words[4 + (r & 3)] = pair(slot_value(x1), slot_value(x3));
            }
        }
        // q̄ on its i8 grid for T, mu as it is
        pack(q_sum, q_block, r, t_landmark);
        pack(mu_row, mu_block, r, |x| x);
        true
    }

    /// `q̄ = 128 · q̄_int` (units `scale_q̄/128`); `mu = q̄ + k̄` in `w_unit`.
    #[inline(never)]
    fn given_landmarks(&mut self, plan: &Plan, queries: &[i8], keys: &[i8]) {
        let dim = self.shape.dim;
        crate::slices::fill(self.q_bar, 0);
        crate::slices::fill(self.mu, 0);
        for (c, (q_row, k_row)) in rows(queries, dim).zip(rows(keys, dim)).enumerate() {
            for (e, (&q, &k)) in q_row.iter().zip(k_row).enumerate() {
                let (q_bar, k_bar) = (i64::from(q) * 128, i64::from(k) * 128);
                self.set_landmark(
                    c,
                    e,
                    (q_bar, plan.given_q_bar_to_w),
                    (k_bar, plan.given_k_bar_to_w),
                );
            }
        }
    }

    /// `W = mu` (eval mode; built for size, as the compiler likes: it inlines it into `run`,
    /// less flash).
    #[cfg_attr(not(lara_attn_compact), inline(never))]
    fn eval_proposals(&mut self) {
        for (w, &mu) in self.w.iter_mut().zip(self.mu.iter()) {
            *w = mu;
        }
    }

    /// `W = mu + f · eps` laid out as the proposals say, from `eps` of one head.
    #[inline(never)]
    fn sampled_proposals(&mut self, plan: &Plan, eps: &[i8]) {
        let (dim, count) = (self.shape.dim, self.count.max(1));
        let block = block_words(dim);
        crate::slices::fill(self.w, 0);
        for c in 0..self.samples {
            let component = c % count;
            let (eps_row, sign) = match plan.config.proposals {
                // W = [mu + eps; mu − eps] from eps [C', d]
                Proposals::Antithetic => (component, if c < count { 1 } else { -1 }),
                // W = [mu] + eps or [mu; mu] + eps, eps row c
                Proposals::Single | Proposals::TwoPerLandmark => (c, 1),
            };
            let eps_row = rows(eps, dim).nth(eps_row).unwrap_or_default();
            let mu_block = self.mu.get(component / ROWS * block..).unwrap_or_default();
            let w_block = self.w.get_mut(c / ROWS * block..).unwrap_or_default();
            for (e, &noise) in eps_row.iter().enumerate() {
                let mu = get_slot(mu_block, byte_slot(component % ROWS, e));
                // W = mu ± f · eps in w_unit
                let w = i64::from(mu) + sign * plan.noise_to_w.apply(i64::from(noise));
                set_slot(w_block, byte_slot(c % ROWS, e), clamp_operand(w));
            }
        }
    }

    /// Per sample over the keys, blocks of eight: `lseK_c` and `kv_c` (`V8`). (Built for
    /// size, the shared streaming loop, inlined into `run`: one frame less on its path; at
    /// opt-level 3, [`key_pass_own`](Self::key_pass_own).)
    #[inline(always)]
    fn key_pass(&mut self, plan: &Plan, x: &Qkv<'_>) {
        #[cfg(not(lara_attn_compact))]
        if !cfg!(lara_attn_compact) {
            return self.key_pass_own(plan, x);
        }
        let sample_rows = self.samples.div_ceil(ROWS) * ROWS;
        let w = self
            .w
            .get(..sample_rows / ROWS * block_words(x.shape.dim))
            .unwrap_or_default();
        // LK[c, j] = s · (W_c·k_j − |k_j|²/2) in L16; kv_c += Σ_j w_cj v_j
        let logit = (plan.key_dot, Some(plan.key_norm));
        let rows = (self.samples, sample_rows);
        super::stream_keys(self.loops, x, w, logit, rows, &mut self.stream, None);
        self.finish_keys();
    }

    /// [`key_pass`](Self::key_pass) at opt-level 3: its own loop, the logits of a block out of
    /// line ([`key_block_logits`](Self::key_block_logits)); with the shared loop inlined, the
    /// M55 took 116 B more stack (1,088 B) and the M0 80 B.
    #[cfg(not(lara_attn_compact))]
    #[inline(never)]
    fn key_pass_own(&mut self, plan: &Plan, x: &Qkv<'_>) {
        let value_dim = self.shape.value_dim;
        let sample_rows = self.samples.div_ceil(ROWS) * ROWS;
        crate::slices::fill(self.stream.reference, super::fixed_point::EMPTY_REFERENCE);
        crate::slices::fill(self.stream.sum, 0);
        crate::slices::fill(self.stream.acc, 0);
        crate::slices::fill(self.stream.weights, 0);
        for first in (0..self.shape.keys).step_by(KEY_BLOCK) {
            let counted = x.block_keys(first);
            // (Helium: the values gathered by the accumulating loop itself, below)
            let gathered = cfg!(lara_attn_helium) && value_dim.is_multiple_of(ROWS);
            if !gathered {
                pack_value_blocks(x.v, value_dim, (first, counted), self.stream.values);
            }
            self.key_block_logits(plan, x, (first, counted));
            super::admit_rows(
                self.stream.logits,
                self.stream.weights,
                (self.stream.reference, self.stream.sum),
                self.samples,
                self.stream.acc,
                sample_rows,
            );
            // kv_c += Σ_j w_cj v_j
            #[cfg(lara_attn_helium)]
            let done = gathered
                && super::helium::accumulate_values(
                    (self.stream.acc, sample_rows * ROWS),
                    self.stream.weights,
                    (x.v, value_dim),
                    (first, counted),
                );
            #[cfg(not(lara_attn_helium))]
            let done = false;
            if !done {
                if gathered {
                    pack_value_blocks(x.v, value_dim, (first, counted), self.stream.values);
                }
                super::accumulate_groups(
                    self.loops,
                    self.stream.acc,
                    sample_rows * ROWS,
                    self.stream.weights,
                    self.stream.values,
                );
            }
        }
        self.finish_keys();
    }

    /// `LK[c, j] = s · (W_c·k_j − |k_j|²/2)` in `L16` for the keys `first..first + 8` (`ABSENT`
    /// for masked and missing keys), `[S][KEY_BLOCK]` into `logits`.
    #[cfg(not(lara_attn_compact))]
    #[inline(never)]
    fn key_block_logits(
        &mut self,
        plan: &Plan,
        x: &Qkv<'_>,
        (first, counted): (usize, [bool; KEY_BLOCK]),
    ) {
        let dim = self.shape.dim;
        let sample_rows = self.samples.div_ceil(ROWS) * ROWS;
        let w = self
            .w
            .get(..sample_rows / ROWS * block_words(dim))
            .unwrap_or_default();
        let dots = self.stream.dots.get_mut(..sample_rows).unwrap_or_default();
        block_logits(
            self.loops,
            w,
            (x.k, dim),
            (first, counted),
            (dots, row_buffer(self.row, self.stream.shared)),
            self.stream.logits,
            (plan.key_dot, Some(plan.key_norm)),
        );
    }

    /// `lseK_c = reference + log2(sum) − 15` (parked in `bias`) and `kv_c = acc / sum` as `V8`
    /// in pair blocks, after the last key (out of line: its frame off the streaming loop's
    /// path).
    #[inline(never)]
    fn finish_keys(&mut self) {
        let value_dim = self.shape.value_dim;
        let sample_rows = self.samples.div_ceil(ROWS) * ROWS;
        crate::slices::fill(self.kv, 0);
        let kv_block = block_words(self.samples);
        // (Helium at opt-level 3: every bias four lanes at a time, the same bits)
        #[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
        let logs = super::helium::log_sums(
            self.bias,
            (self.stream.reference, self.stream.sum),
            self.samples,
        );
        #[cfg(not(all(lara_attn_helium, not(lara_attn_compact))))]
        let logs = false;
        for c in 0..self.samples {
            let state = Running {
                reference: self.stream.reference.get(c).copied().unwrap_or(0),
                sum: self.stream.sum.get(c).copied().unwrap_or(1) as u32,
            };
            if let Some(bias) = self.bias.get_mut(c)
                && !logs
            {
                *bias = state.log_sum();
            }
            let reciprocal = Reciprocal::new(state.sum);
            // kv_c[t] = round(2^8 · acc / sum): V8, |kv| ≤ 2^15 (one high word per value for the
            // shifts it allows, the usual case; built for size, the general path alone)
            let high = reciprocal.high_word(8).filter(|_| !cfg!(lara_attn_compact));
            let v8 = |a: i32| -> i32 {
                let v8 = match high {
                    Some((r, round, shift)) => {
                        i64::from((((i64::from(a) * r) >> 32) as i32 + round) >> shift)
                    }
                    None => reciprocal.divide(a, 8),
                };
                v8.clamp(-32768, 32767) as i32
            };
            let group = sample_rows * ROWS;
            // (Helium: row c of every group 4 lanes at a time, for whole groups of columns)
            #[cfg(lara_attn_helium)]
            if let Some(parts) = reciprocal.high_word_rounded(8)
                && value_dim.is_multiple_of(ROWS)
                && super::helium::divide_row(
                    (self.stream.acc, group),
                    (self.kv, kv_block),
                    c,
                    parts,
                )
            {
                continue;
            }
            // (the other DSP cores at opt-level 3: row c of every group, four sums per turn)
            #[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
            if let Some(parts) = reciprocal.high_word_rounded(8)
                && value_dim.is_multiple_of(ROWS)
                && super::dsp::divide_row((self.stream.acc, group), (self.kv, kv_block), c, parts)
            {
                continue;
            }
            for (g, acc) in chunks(self.stream.acc, group).enumerate() {
                // group g of kv (index loop: see accumulate_groups)
                let start = g * kv_block;
                let Some(kv) = self.kv.get_mut(start..start + kv_block) else {
                    break;
                };
                for (t, &a) in acc.iter().skip(c * ROWS).take(ROWS).enumerate() {
                    if g * ROWS + t < value_dim {
                        set_slot(kv, pair_slot(t, c), v8(a));
                    }
                }
            }
        }
    }

    /// `bias_c = lseK_c − log2 P_c` and `bh_c` from `LM[c, c'] = ℓ(mu_c'; W_c)`.
    #[inline(never)]
    fn densities(&mut self, plan: &Plan, sampled: bool) {
        let (count, samples) = (self.count.max(1), self.samples);
        // repeats: each component listed S / C' times in the mis-opt mixture
        let repeats = if samples > count { L16_ONE } else { 0 };
        // (Helium at opt-level 3: each row in one asm block)
        #[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
        if self.helium_densities(plan, repeats) {
            return;
        }
        for c in 0..samples {
            self.density_logits(plan, c, sampled);
            let lm = self.stream.logits.get(..count).unwrap_or_default();
            let diagonal = lm.get(c % count).copied().unwrap_or(0);
            let max = lm.iter().copied().max().unwrap_or(0);
            // Σ 2^(LM − max) in Q15 (on Helium 4 lanes at a time, the weights into `dots`,
            // unused)
            #[cfg(lara_attn_helium)]
            let total = super::helium::weights_q15(max, lm, self.stream.dots);
            // (the other DSP cores at opt-level 3: the weights' asm loop, the same sum)
            #[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
            let total = super::dsp::weight_sum_q15(max, lm);
            #[cfg(not(any(lara_attn_helium, all(lara_attn_dsp, not(lara_attn_compact)))))]
            let total: u32 = lm
                .iter()
                .map(|&l| weight_q15(max.wrapping_sub(l) as u32))
                .sum();
            let outputs = (self.balance.get_mut(c), self.bias.get_mut(c));
            density_bias(
                plan.config.weighting,
                (max, total, diagonal),
                repeats,
                outputs,
            );
        }
        #[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
        {
            let biases = self.bias.get(..samples).unwrap_or_default();
            self.small_biases = super::dsp::small_biases(biases);
        }
    }

    /// `LM[c, c'] = s · (W_c·mu_c' − |mu_c'|²/2) = s/2 · Σ_e mu_e (2 W_e − mu_e)` (`L16`) into
    /// `logits[c']` for every landmark `c'`, from plain rows.
    #[cfg(not(all(any(lara_attn_dsp, lara_attn_helium), not(lara_attn_compact))))]
    #[inline(always)]
    fn density_logits(&mut self, plan: &Plan, c: usize, sampled: bool) {
        let (dim, count) = (self.shape.dim, self.count.max(1));
        // W_c as a plain row: mu_c in eval mode, else unpacked from its block
        let (w_row, _) = self.row.split_at_mut(dim.min(self.row.len()));
        if sampled {
            let w_block = self
                .w
                .get(c / ROWS * block_words(dim)..)
                .unwrap_or_default();
            for (e, w) in w_row.iter_mut().enumerate() {
                *w = get_slot(w_block, byte_slot(c % ROWS, e));
            }
        } else {
            let mu_row = self.mu_rows.get(c * dim..).unwrap_or_default();
            for (w, &m) in w_row.iter_mut().zip(mu_row) {
                *w = m;
            }
        }
        let lm = self.stream.logits.get_mut(..count).unwrap_or_default();
        for (slot, mu_row) in lm.iter_mut().zip(chunks(self.mu_rows, dim)) {
            let twice: i64 = w_row
                .iter()
                .zip(mu_row)
                .map(|(&w, &m)| i64::from(m) * i64::from(2 * w - m))
                .sum();
            *slot = to_logit_wide(plan.density.apply_wide(twice));
        }
    }

    /// See the portable [`density_logits`](Self::density_logits): on the DSP and Helium cores
    /// from the byte blocks of `W` (either mode) and `mu`, `2 W_c·mu_c' − |mu_c'|²` by `SMLALD`
    /// or `VMLALDAVA.S16` (the same integers).
    #[cfg(all(any(lara_attn_dsp, lara_attn_helium), not(lara_attn_compact)))]
    #[inline(always)]
    fn density_logits(&mut self, plan: &Plan, c: usize, _sampled: bool) {
        #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
        use super::dsp as isa;
        #[cfg(lara_attn_helium)]
        use super::helium as isa;
        let (block, count) = (block_words(self.shape.dim), self.count.max(1));
        // the byte block of row `row`
        fn block_of(words: &[i32], row: usize, block: usize) -> &[i32] {
            let start = row / ROWS * block;
            words
                .get(start..)
                .and_then(|b| b.get(..block))
                .unwrap_or_default()
        }
        let w_block = block_of(self.w, c, block);
        let lm = self.stream.logits.get_mut(..count).unwrap_or_default();
        // (the other DSP cores, a shift of 33 to 62 and whole blocks of landmarks: the row in
        // one asm block, apply's bits with the rounding term in the high word)
        #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
        {
            let parts = plan.density.high_word().filter(|&(_, _, shift)| shift >= 1);
            let mu = self.mu.get(..count / ROWS * block).unwrap_or_default();
            if let Some((m, round, shift)) = parts
                && count.is_multiple_of(ROWS)
                && super::dsp::density_row(
                    (w_block, c % ROWS),
                    (mu, block),
                    lm,
                    (m as i32, (round >> 32) as i32, shift),
                )
            {
                return;
            }
        }
        // (the other DSP cores, a shift of at least 32: apply's bits from the high word,
        // round((x · m + 2^(shift − 1)) / 2^shift) = ((x · m + 2^(shift − 1)) >> 32) >> (shift
        // − 32), an i32 clamped as to_logit_wide does)
        #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
        let high = plan.density.high_word();
        #[cfg(lara_attn_helium)]
        let high: Option<(i64, i64, u32)> = None;
        use super::fixed_point::LOGIT_LIMIT;
        // (four landmarks c' per block of mu)
        for (slots, mu_block) in lm.chunks_mut(ROWS).zip(self.mu.chunks_exact(block.max(1))) {
            for (mu_row, slot) in slots.iter_mut().enumerate() {
                let (dot, squares) = isa::density_sums(w_block, c % ROWS, mu_block, mu_row);
                // (|2 W·mu − |mu|²| ≤ 3 · 2^28 · 512 < 2^39: apply_wide's bits, without its scaling)
                let twice = 2 * dot - squares;
                *slot = match high {
                    // (|x · m| < 2^63: the high word is an i32)
                    Some((m, round, shift)) => (((twice * m + round) >> 32) as i32 >> shift)
                        .clamp(-LOGIT_LIMIT, LOGIT_LIMIT - 1),
                    None => to_logit_wide(plan.density.apply(twice)),
                };
            }
        }
    }

    /// Helium at opt-level 3, a multiplier's shift of 32 to 62: every sample's densities by
    /// [`helium::DensityRows`](super::helium::DensityRows) (the same bits as the loop of
    /// [`densities`](Self::densities)); `false`, nothing written, if its blocks do not fit.
    #[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
    #[inline(always)]
    fn helium_densities(&mut self, plan: &Plan, repeats: i32) -> bool {
        let (count, samples) = (self.count.max(1), self.samples);
        let Some(mut rows) = super::helium::DensityRows::new(
            (self.w, block_words(self.shape.dim)),
            (self.mu, count),
            samples,
            self.stream.logits,
            plan.density.high_word(),
        ) else {
            return false;
        };
        // log2 P_c: the mixture, or the own component (mis-opt)
        let mixture = !matches!(plan.config.weighting, Weighting::Optimal { .. });
        rows.run((self.balance, self.bias), repeats, mixture);
        true
    }

    /// `mis-opt`'s `lse_i(s · q̄_c·q_i)` over the queries, blocks of eight queries (built for
    /// size, inlined into `run`: the shared streaming loop one frame from it, as in the key
    /// pass; out of line, its frame took LARA's call on ARMv6-M to 1,204 B of stack).
    #[cfg_attr(not(lara_attn_compact), inline(never))]
    #[cfg_attr(lara_attn_compact, inline(always))]
    fn normaliser(&mut self, t_dot: Scale32, x: &Qkv<'_>) {
        // (built for size: the shared streaming loop over the queries as keys, in the key
        // pass's states (free after `finish_keys`; `S ≥ C'` of them), without values; the
        // same logits and states as the loop below)
        #[cfg(lara_attn_compact)]
        {
            let queries = Qkv {
                shape: Shape {
                    keys: x.shape.queries,
                    ..x.shape
                },
                k: x.q,
                v: &[],
                key_mask: None,
                ..*x
            };
            let landmark_rows = self.count.div_ceil(ROWS) * ROWS;
            let q_bar = self
                .q_bar
                .get(..landmark_rows / ROWS * block_words(x.shape.dim))
                .unwrap_or_default();
            let stream = &mut self.stream;
            let (acc, values) = (
                core::mem::take(&mut stream.acc),
                core::mem::take(&mut stream.values),
            );
            // s · q̄_c·q_i in L16, admitted into lse_i's states
            let rows = (self.count, landmark_rows);
            super::stream_keys(
                self.loops,
                &queries,
                q_bar,
                (t_dot, None),
                rows,
                stream,
                None,
            );
            (stream.acc, stream.values) = (acc, values);
            let states = stream.reference.iter().zip(stream.sum.iter());
            for (t, (&reference, &sum)) in self.t_reference.iter_mut().zip(states) {
                *t = Running {
                    reference,
                    sum: sum as u32,
                }
                .log_sum();
            }
        }
        #[cfg(not(lara_attn_compact))]
        let this = self;
        #[cfg(not(lara_attn_compact))]
        {
            let dim = this.shape.dim;
            let (count, landmark_blocks) = (this.count, this.count.div_ceil(ROWS));
            let block = block_words(dim);
            crate::slices::fill(this.t_reference, super::fixed_point::EMPTY_REFERENCE);
            crate::slices::fill(this.t_sum, 0);
            let queries = this.shape.queries;
            // (Helium: q̄ᵀ / 128 as i8 blocks in mu_rows, free after the densities, and the
            // factor for its sums, T's dot products i8 × i8 here and in the query pass)
            #[cfg(lara_attn_helium)]
            let t_bytes = {
                let q_bar = this
                    .q_bar
                    .get(..landmark_blocks * block)
                    .unwrap_or_default();
                this.t_bytes = t_dot.over_128().is_some()
                    && super::helium::narrow_blocks(q_bar, this.mu_rows, dim);
                this.t_bytes
            };
            for first in (0..queries).step_by(KEY_BLOCK) {
                let q_bar = this
                    .q_bar
                    .get(..landmark_blocks * block)
                    .unwrap_or_default();
                let dots = this
                    .stream
                    .dots
                    .get_mut(..landmark_blocks * ROWS)
                    .unwrap_or_default();
                // s · q̄ᵀ_c·q_i in L16 from the i8 blocks (Helium, a whole block of queries)
                #[cfg(lara_attn_helium)]
                let done = {
                    let rows = x.q.get(first * dim..(first + KEY_BLOCK) * dim);
                    match (t_dot.over_128(), rows.filter(|_| t_bytes)) {
                        (Some(scale), Some(rows)) => crate::simd::int8::dot_logit_block_bytes(
                            this.loops,
                            (&*this.mu_rows, rows, dim),
                            dots,
                            this.stream.logits,
                            scale.parts(),
                        ),
                        _ => false,
                    }
                };
                #[cfg(not(lara_attn_helium))]
                let done = false;
                // s · q̄ᵀ_c·q_i in L16, into column ii of landmark c's block of logits (every
                // query counts; the rows past the last are absent: x.q ends there)
                let counted = [true; KEY_BLOCK];
                if !done {
                    block_logits(
                        this.loops,
                        q_bar,
                        (x.q, dim),
                        (first, counted),
                        (dots, row_buffer(this.row, this.stream.shared)),
                        this.stream.logits,
                        (t_dot, None),
                    );
                }
                // (Helium: four landmarks at a time, their weights into the key pass's
                // `weights`, unused here)
                #[cfg(lara_attn_helium)]
                super::admit_rows(
                    this.stream.logits,
                    this.stream.weights,
                    (this.t_reference, this.t_sum),
                    count,
                    &mut [],
                    0,
                );
                #[cfg(not(lara_attn_helium))]
                let mut discard = [0i32; KEY_BLOCK];
                #[cfg(not(any(lara_attn_dsp, lara_attn_helium)))]
                for ((logits, reference), sum) in this
                    .stream
                    .logits
                    .as_chunks::<KEY_BLOCK>()
                    .0
                    .iter()
                    .zip(this.t_reference.iter_mut())
                    .zip(this.t_sum.iter_mut())
                    .take(count)
                {
                    Running::admit_kept(logits, (reference, sum), &mut discard);
                }
                // (the DSP cores without Helium: the rows whose reference stays in one asm
                // loop, each other row by the general path)
                #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
                super::dsp::admit_sum_rows(
                    this.stream.logits.as_chunks::<KEY_BLOCK>().0,
                    (&mut *this.t_reference, &mut *this.t_sum),
                    count,
                    |logits, state| Running::admit_kept(logits, state, &mut discard),
                );
            }
        }
        // lse_c = reference ⊕ log2(sum): on Helium four lanes at a time into t_row (free until
        // the query pass), which then takes t_reference's place
        #[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
        let logs = {
            let n = this.t_reference.len();
            let states = (&*this.t_reference, &*this.t_sum);
            super::helium::log_sums(this.t_row, states, n)
        };
        #[cfg(all(lara_attn_helium, not(lara_attn_compact)))]
        if logs {
            core::mem::swap(&mut this.t_reference, &mut this.t_row);
            return;
        }
        #[cfg(not(lara_attn_compact))]
        for (reference, &sum) in this.t_reference.iter_mut().zip(this.t_sum.iter()) {
            *reference = Running {
                reference: *reference,
                sum: sum as u32,
            }
            .log_sum();
        }
    }

    /// `out_i = Σ_c sniw[c, i] kv_c` for every query of one head.
    #[inline(never)]
    fn query_pass(
        &mut self,
        plan: &Plan,
        t_dot: Scale32,
        x: &Qkv<'_>,
        out: &mut impl Rows,
        head: usize,
    ) {
        let (dim, value_dim) = (self.shape.dim, self.shape.value_dim);
        let base = head * self.shape.queries * value_dim;
        let optimal = matches!(plan.config.weighting, Weighting::Optimal { .. });
        crate::slices::fill(self.weights_packed, 0);
        // (DSP and Helium cores, mis-opt with one sample per landmark below 32 of them: every
        // slice cut once per head)
        #[cfg(all(any(lara_attn_dsp, lara_attn_helium), not(lara_attn_compact)))]
        if optimal
            && self.samples == self.count
            && (1..32).contains(&self.count)
            && self.mis_opt_queries(plan, t_dot, x, out, base)
        {
            return;
        }
        let shared = core::mem::take(&mut self.stream.shared);
        for (i, q_row) in rows(x.q, dim).enumerate() {
            let q_row = padded_bytes(q_row, &mut *shared);
            self.query_logits(plan, q_row);
            if optimal {
                self.query_alpha(plan, t_dot, q_row);
            }
            let weight_sum = self.query_weights(optimal);
            self.query_output(plan, weight_sum, out, base + i * value_dim);
        }
        self.stream.shared = shared;
    }

    /// [`query_pass`](Self::query_pass) for mis-opt with `samples == count < 32` on the DSP and
    /// Helium cores: the steps of `query_logits`, `query_alpha`, `query_weights` and
    /// `query_output` (the same loops, the same bits) with every slice cut once before the
    /// queries (no per-query bookkeeping of the general steps). `false`, nothing written, if
    /// the workspace does not fit Helium's `QuerySteps` (the caller takes the general steps).
    // (out of line on the DSP cores without Helium: its frame apart from the general path's,
    // less stack)
    #[cfg(all(any(lara_attn_dsp, lara_attn_helium), not(lara_attn_compact)))]
    #[cfg_attr(lara_attn_helium, inline(always))]
    #[cfg_attr(not(lara_attn_helium), inline(never))]
    fn mis_opt_queries(
        &mut self,
        plan: &Plan,
        t_dot: Scale32,
        x: &Qkv<'_>,
        out: &mut impl Rows,
        base: usize,
    ) -> bool {
        #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
        use super::dsp as isa;
        #[cfg(lara_attn_helium)]
        use super::helium as isa;
        let (dim, value_dim, count, sizes) =
            (self.shape.dim, self.shape.value_dim, self.count, self.rows);
        let loops = self.loops;
        // (`w` holds the samples' blocks alone: its part's length)
        let (w, q_bar) = (
            &*self.w,
            self.q_bar.get(..sizes.landmark_words).unwrap_or_default(),
        );
        let logits = self
            .stream
            .logits
            .get_mut(..sizes.samples)
            .unwrap_or_default();
        let t_row = self.t_row.get_mut(..sizes.landmarks).unwrap_or_default();
        let (biases, t_reference, balances) = (
            self.bias.get(..count).unwrap_or_default(),
            self.t_reference.get(..count).unwrap_or_default(),
            self.balance.get(..count).unwrap_or_default(),
        );
        let weights = self.alpha.get_mut(..count).unwrap_or_default();
        // (one row of the samples' pairs: the part's length)
        let packed = &mut *self.weights_packed;
        let out_row = &mut *self.out_row;
        let shared = &mut *self.stream.shared;
        // (count ≥ 1 here; max(1): no division-by-zero path)
        #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
        let (half, divisor) = (count as u32 / 2, (count as u32).max(1));
        // (the DSP cores without Helium, a multiple of four landmarks below 32: the logits, T,
        // α and the weights in one asm block, its constants in the key pass's `values`)
        #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
        let steps = super::dsp::QuerySteps::new(
            &mut *self.stream.values,
            count,
            (biases, t_reference, balances, self.small_biases),
            (plan.query_dot, t_dot),
            plan.alpha_coeff,
        );
        // (the DSP cores without Helium: the query row widened once for both dot products,
        // the lengths checked once for the padded rows)
        #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
        let mut dots = crate::simd::int8::Widened2::new(
            loops,
            (w, q_bar),
            padded(dim),
            &mut *self.row,
            (&mut *logits, &mut *t_row),
        );
        // (Helium: the lengths checked once for the padded rows; the steps from the dot
        // products to the packed weights in one asm block, their slices held)
        #[cfg(lara_attn_helium)]
        let (mut dots, steps) = {
            let mut dots = crate::simd::int8::Dots2::new(
                loops,
                (w, q_bar),
                padded(dim),
                (&mut *logits, &mut *t_row),
            );
            // T's dot products i8 × i8 from the normaliser's i8 blocks of q̄ᵀ / 128, their
            // factor for inputs 128 times smaller
            let t_blocks = self.mu_rows.get(..sizes.landmark_words / 2);
            let t_dot = match (t_dot.over_128(), t_blocks) {
                (Some(scale), Some(blocks)) if self.t_bytes && dots.bytes(blocks) => scale,
                _ => t_dot,
            };
            let steps = isa::QuerySteps::new(
                &mut *self.stream.values,
                count,
                (biases, t_reference, balances),
                (plan.query_dot, t_dot),
                plan.alpha_coeff,
                (weights, packed),
            );
            (dots, steps)
        };
        #[cfg(lara_attn_helium)]
        let Some(mut steps) = steps else {
            return false;
        };
        // (Helium, i8 outputs: the sums requantised block by block, the lengths checked once)
        #[cfg(lara_attn_helium)]
        let output =
            crate::simd::int8::PairDotI8::new(loops, self.kv, steps.packed().len(), value_dim);
        // (Helium, i8 outputs: the factor and the head's rows checked once, each query's row
        // multiplier by RowHighWords and its row requantised block by block)
        #[cfg(lara_attn_helium)]
        if let Some(output) = &output
            && let Some(high_words) =
                super::fixed_point::RowHighWords::new(plan.requantize.to_i8, -8)
            && let Some(out_rows) = out.i8_rows()
            && let Some(out_rows) = out_rows.get_mut(base..base + self.shape.queries * value_dim)
            && padded(dim) == dim
        {
            // (the query rows whole chunks: no padded copies)
            for (q_row, row) in rows(x.q, dim).zip(crate::slices::chunks_mut(out_rows, value_dim)) {
                dots.run(q_row);
                let (logits, t_row) = dots.sums();
                // (never None: the rows hold the samples' and landmarks' blocks)
                let Some(weight_sum) = steps.run(logits, t_row) else {
                    break;
                };
                let packed = steps.packed();
                // out_i = Σ_c sniw_c kv_c / Σ_c sniw_c
                if let Some(parts) = high_words.parts(weight_sum.max(1))
                    && output.run_parts(packed, row, parts)
                {
                    continue;
                }
                pair_dot_blocks(loops, self.kv, packed, out_row);
                let sums = out_row.get(..value_dim).unwrap_or_default();
                plan.requantize
                    .write_row_small(sums, weight_sum.max(1), -8, &mut &mut *row, 0);
            }
            return true;
        }
        for (i, q_row) in rows(x.q, dim).enumerate() {
            let q_row = padded_bytes(q_row, &mut *shared);
            // s · W_c·q_i and s · q̄_c·q_i before their scaling (the same sums either way)
            #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
            let (logits, t_row) = {
                dots.run(q_row);
                dots.sums()
            };
            // (Helium: both in one asm block, the row loaded once)
            #[cfg(lara_attn_helium)]
            let (logits, t_row) = {
                dots.run(q_row);
                dots.sums()
            };
            // (Helium: QuerySteps, its packed weights for the output)
            // (never None: the rows hold the samples' and landmarks' blocks)
            #[cfg(lara_attn_helium)]
            let Some(weight_sum) = steps.run(logits, t_row) else {
                break;
            };
            #[cfg(lara_attn_helium)]
            let packed = steps.packed();
            #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
            let fused = steps
                .as_ref()
                .and_then(|steps| steps.run(logits, t_row, weights, packed));
            #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
            let (total, packed_sum) = match fused {
                Some(done) => done,
                None => {
                    // logiw_c − log2 α_c = s · W_c·q_i + bias_c, and their largest
                    let live = logits.get_mut(..count).unwrap_or_default();
                    let max = query_logits_max(live, biases, plan.query_dot);
                    // T = 2^(s · q̄_c·q_i − lse) in Q27, their sum (below 2^32: count < 32)
                    // and mean
                    let t = t_row.get_mut(..count).unwrap_or_default();
                    let t_sum = isa::t_row(t, t_reference, t_dot);
                    let t_mean = ((t_sum + half) / divisor) as i32;
                    // α = max(bh + alpha_coeff · (T − mean T), 2^-27)
                    run_alphas(weights, balances, t, (t_mean, plan.alpha_coeff));
                    // w_c = 2^(ℓ_c − max) · α_c
                    (isa::query_weights(max, live, weights, true), None)
                }
            };
            // sniw_c = round(w_c · 2^(14 − bits(Σ w))) in pairs
            #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
            let weight_sum = match packed_sum {
                Some(sum) => sum,
                None => pack_weights(weights, packed, bits64(total.max(1)) as i32 - 14),
            };
            // out_i = Σ_c sniw_c kv_c / Σ_c sniw_c
            // (the sum of the weights, about 2^14, by Reciprocal::new_small; on the DSP cores
            // without Helium each block of sums requantised as it is done)
            #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
            out.write_pairs_small(
                &plan.requantize,
                (loops, self.kv, packed, out_row),
                (value_dim, weight_sum.max(1), -8),
                base + i * value_dim,
            );
            #[cfg(lara_attn_helium)]
            let offset = base + i * value_dim;
            #[cfg(lara_attn_helium)]
            if let Some(dots) = &output
                && let Some(rows) = out.i8_rows()
                && let Some(parts) =
                    super::fixed_point::row_high_word(weight_sum.max(1), plan.requantize.to_i8, -8)
                && let Some(row) = rows.get_mut(offset..offset + value_dim)
                && dots.run(packed, row, parts)
            {
                continue;
            }
            #[cfg(lara_attn_helium)]
            {
                pair_dot_blocks(loops, self.kv, packed, out_row);
                let row = out_row.get(..value_dim).unwrap_or_default();
                plan.requantize
                    .write_row_small(row, weight_sum.max(1), -8, out, offset);
            }
        }
        true
    }

    /// `logiw_c − log2 α_c = s · W_c·q_i + bias_c` (the `−s|q_i|²/2` term cancels over `c`),
    /// plus `log2 α_c = s · mu_c·q_i` for the biased weighting, into `logits` (`q_row` padded).
    // (inlined into query_pass on the DSP and Helium cores: fewer instructions per query, the
    // same stack; built for size, as the compiler likes (it inlines them, less
    // flash); out of line elsewhere; the same for the other per-query steps)
    #[cfg_attr(
        all(any(lara_attn_dsp, lara_attn_helium), not(lara_attn_compact)),
        inline(always)
    )]
    #[cfg_attr(
        not(any(lara_attn_dsp, lara_attn_helium, lara_attn_compact)),
        inline(never)
    )]
    fn query_logits(&mut self, plan: &Plan, q_row: &[i8]) {
        let (count, samples, rows) = (self.count.max(1), self.samples, self.rows);
        let logits = self
            .stream
            .logits
            .get_mut(..rows.samples)
            .unwrap_or_default();
        // (`w` holds the samples' blocks alone: its part's length)
        dot_blocks(self.loops, self.w, q_row, logits);
        // (both sliced to the samples first: a zip of two slices, no count kept on the stack)
        let live = samples.min(logits.len()).min(self.bias.len());
        let (live_logits, biases) = (&mut logits[..live], &self.bias[..live]);
        // (Helium: the largest logit found in the same loop, for query_weights)
        #[cfg(lara_attn_helium)]
        {
            let max = super::helium::query_logits(live_logits, biases, plan.query_dot);
            self.query_max = (live, max);
        }
        #[cfg(not(lara_attn_helium))]
        scale_logits(live_logits, biases, plan.query_dot);
        if let Weighting::Biased = plan.config.weighting {
            #[cfg(lara_attn_helium)]
            {
                self.query_max = (0, 0);
            }
            // log2 α[c, i] = s · mu_c·q_i, for each group of C' samples
            let dots = self
                .stream
                .dots
                .get_mut(..rows.landmarks)
                .unwrap_or_default();
            dot_blocks(
                self.loops,
                self.mu.get(..rows.landmark_words).unwrap_or_default(),
                q_row,
                dots,
            );
            for (c, &dot) in dots.iter().enumerate().take(count) {
                let log_alpha = plan.query_dot.apply(dot);
                for logit in logits
                    .iter_mut()
                    .take(samples)
                    .skip(c)
                    .step_by(count.max(1))
                {
                    *logit = to_logit(logit.saturating_add(log_alpha));
                }
            }
        }
    }

    /// `mis-opt`'s `α[c, i] = max(bh_c + alpha_coeff · (T[c, i] − mean_c T), 2^-27)` in `Q27`,
    /// with `T[c, i] = 2^(s · q̄_c·q_i − lse_i')`, into `alpha` (`q_row` padded).
    #[cfg_attr(
        all(any(lara_attn_dsp, lara_attn_helium), not(lara_attn_compact)),
        inline(always)
    )]
    #[cfg_attr(
        not(any(lara_attn_dsp, lara_attn_helium, lara_attn_compact)),
        inline(never)
    )]
    fn query_alpha(&mut self, plan: &Plan, t_dot: Scale32, q_row: &[i8]) {
        let (count, samples) = (self.count.max(1), self.samples);
        // (`q_bar` and `t_row` hold the landmarks' blocks and rows alone: their parts' lengths)
        let t_row = &mut *self.t_row;
        dot_blocks(self.loops, self.q_bar, q_row, t_row);
        let count = count.min(t_row.len()).min(self.t_reference.len());
        let (t_row, t_reference) = (&mut t_row[..count], &self.t_reference[..count]);
        // T = 2^(s · q̄_c·q_i − lse) in Q27 (32-bit arithmetic without a branch), then their
        // sum in a loop of its own (fewer instructions on the M4F); on Helium 4 lanes at a
        // time, the sum (wrapping) in the same loop
        #[cfg(lara_attn_helium)]
        let t_total = super::helium::t_row(t_row, t_reference, t_dot);
        #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
        let t_total = super::dsp::t_row(t_row, t_reference, t_dot);
        #[cfg(not(any(lara_attn_helium, lara_attn_dsp)))]
        for (t, &reference) in t_row.iter_mut().zip(t_reference) {
            let logit = to_logit(t_dot.apply(*t));
            *t = exp2_neg_branchless(reference.wrapping_sub(logit).max(0) as u32, 27) as i32;
        }
        // (each T ≤ 2^27: below 32 of them the sum and its rounded mean fit u32, one add each
        // and one division: div_round's bits for a non-negative sum; built for size, the
        // i64 sum alone)
        let t_mean = if count < 32 && !cfg!(lara_attn_compact) {
            #[cfg(not(any(lara_attn_helium, lara_attn_dsp)))]
            let t_total = t_row.iter().map(|&t| t as u32).sum::<u32>();
            let total = t_total;
            let count = count.max(1) as u32;
            ((total + count / 2) / count) as i32
        } else {
            rounded_mean(t_row, count)
        };
        let samples = samples.min(self.alpha.len()).min(self.balance.len());
        let (alphas, balances) = (&mut self.alpha[..samples], &self.balance[..samples]);
        let coeff = (t_mean, plan.alpha_coeff);
        if cfg!(lara_attn_compact) {
            // (built for size: sample c against T[c mod C'] (0 without landmarks) in one loop,
            // a wrapping index for the modulo; the same α as the runs below)
            let mut c = 0;
            for (a, &balance) in alphas.iter_mut().zip(balances) {
                let t = t_row.get(c).copied().unwrap_or(0);
                *a = mis_opt_alpha(balance, t, coeff);
                c = if c + 1 < count { c + 1 } else { 0 };
            }
            return;
        }
        if count == 0 {
            for (a, &balance) in alphas.iter_mut().zip(balances) {
                *a = mis_opt_alpha(balance, 0, coeff);
            }
            return;
        }
        // sample c draws around component c mod C': runs of C' samples against T (one run when
        // there are no more samples than landmarks, without the runs' bookkeeping)
        if samples <= count {
            run_alphas(alphas, balances, t_row, coeff);
            return;
        }
        let mut start = 0;
        while start < samples {
            let end = samples.min(start + count);
            let (Some(run), Some(balances)) =
                (alphas.get_mut(start..end), balances.get(start..end))
            else {
                break;
            };
            run_alphas(run, balances, t_row, coeff);
            start = end;
        }
    }

    /// The normalised weights `sniw_c` (each `≤ 2^14`, their sum about `2^14`) in pairs, from
    /// `logits` (and `alpha` for mis-opt); returns their sum.
    #[cfg_attr(
        all(any(lara_attn_dsp, lara_attn_helium), not(lara_attn_compact)),
        inline(always)
    )]
    #[cfg_attr(
        not(any(lara_attn_dsp, lara_attn_helium, lara_attn_compact)),
        inline(never)
    )]
    fn query_weights(&mut self, optimal: bool) -> u32 {
        let samples = self
            .samples
            .min(self.stream.logits.len())
            .min(self.alpha.len());
        let (logits, weights) = (&self.stream.logits[..samples], &mut self.alpha[..samples]);
        // (Helium: found by query_logits when it wrote these logits and no others since)
        #[cfg(lara_attn_helium)]
        let max = match core::mem::take(&mut self.query_max) {
            (live, max) if live == samples && live > 0 => max,
            _ => logits.iter().copied().max().unwrap_or(0),
        };
        #[cfg(not(lara_attn_helium))]
        let max = logits.iter().copied().max().unwrap_or(0);
        // w_c = 2^(ℓ_c − max) in Q15, and for mis-opt · α_c (Q27) / 2^15: w_c ≤ α_c < 2^31,
        // and their sum (4 lanes at a time on Helium)
        #[cfg(lara_attn_helium)]
        let total = super::helium::query_weights(max, logits, weights, optimal);
        #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
        let total = super::dsp::query_weights(max, logits, weights, optimal);
        #[cfg(not(any(lara_attn_helium, lara_attn_dsp)))]
        let total = {
            let mut total = 0u64;
            if optimal {
                for (w, &logit) in weights.iter_mut().zip(logits) {
                    let e = exp2_neg_branchless(max.wrapping_sub(logit) as u32, 15);
                    let weighted = ((u64::from(e) * u64::from(*w as u32) + (1 << 14)) >> 15) as u32;
                    *w = weighted as i32;
                    total += u64::from(weighted);
                }
            } else {
                for (w, &logit) in weights.iter_mut().zip(logits) {
                    let weight = exp2_neg_branchless(max.wrapping_sub(logit) as u32, 15);
                    *w = weight as i32;
                    total += u64::from(weight);
                }
            }
            total
        };
        // sniw_c = round(w_c · 2^(14 − bits(Σ w))): Σ_c sniw ≈ 2^14, each an i16 operand
        let shift = bits64(total.max(1)) as i32 - 14;
        pack_weights(weights, self.weights_packed, shift)
    }

    /// `out_i = Σ_c sniw_c kv_c / Σ_c sniw_c` (`kv` in `V8`) written at `offset`.
    #[cfg_attr(
        all(any(lara_attn_dsp, lara_attn_helium), not(lara_attn_compact)),
        inline(always)
    )]
    #[cfg_attr(
        not(any(lara_attn_dsp, lara_attn_helium, lara_attn_compact)),
        inline(never)
    )]
    fn query_output(&mut self, plan: &Plan, weight_sum: u32, out: &mut impl Rows, offset: usize) {
        // (`weights_packed` holds one row of the samples' pairs: its part's length)
        pair_dot_blocks(self.loops, self.kv, self.weights_packed, self.out_row);
        let row = self.out_row.get(..self.shape.value_dim).unwrap_or_default();
        plan.requantize
            .write_row(row, weight_sum.max(1), -8, out, offset);
    }
}

/// One sample's `bh_c` and `bias_c` from its densities `LM[c, ·]`: their largest, `Σ 2^(LM −
/// max)` in `Q15` and `LM[c, c]`; `repeats` is `log2` of how often each component is listed.
#[inline(always)]
pub(crate) fn density_bias(
    weighting: Weighting,
    (max, total, diagonal): (i32, u32, i32),
    repeats: i32,
    (balance, bias): (Option<&mut i32>, Option<&mut i32>),
) {
    // lse_c' LM[c, c'] = max + log2 Σ 2^(LM − max)
    let lse = max + log2_l16(total) - 15 * L16_ONE;
    // bh_c = 2^(LM[c,c] − lse − log2 repeats) in Q27
    let gap = (lse + repeats - diagonal).max(0) as u32;
    if let Some(balance) = balance {
        *balance = exp2_neg(gap, 27) as i32;
    }
    // log2 P_c: the own component (mis-opt) or the mixture
    let log_p = match weighting {
        Weighting::Optimal { .. } => diagonal,
        Weighting::BalanceHeuristic | Weighting::Biased => lse,
    };
    if let Some(bias) = bias {
        *bias = bias.saturating_sub(log_p);
    }
}

/// `ℓ_c = to_logit(scale · ℓ_c + bias_c)` in place (the sum saturating) over the common length,
/// and the largest of them (0 for none): groups of four and their largest in asm on the DSP
/// cores without Helium.
#[cfg(all(lara_attn_dsp, not(lara_attn_helium), not(lara_attn_compact)))]
#[inline(always)]
fn query_logits_max(logits: &mut [i32], biases: &[i32], scale: Scale32) -> i32 {
    // (groups of four and their largest in asm, the rest and theirs here)
    if logits.is_empty() {
        return 0;
    }
    let (done, max) = super::dsp::query_logits_max(logits, biases, scale);
    let rest = logits.get_mut(done..).unwrap_or_default();
    scale_logits(rest, biases.get(done..).unwrap_or_default(), scale);
    rest.iter().copied().fold(max, i32::max)
}

/// `ℓ_c = to_logit(scale · ℓ_c + bias_c)` in place (the sum saturating) over the common length:
/// groups of four in asm on the DSP cores without Helium, the rest here.
#[cfg(not(lara_attn_helium))]
#[inline(always)]
fn scale_logits(logits: &mut [i32], biases: &[i32], scale: Scale32) {
    #[cfg(lara_attn_dsp)]
    let (logits, biases) = {
        let done = super::dsp::query_logits(logits, biases, scale);
        (
            logits.get_mut(done..).unwrap_or_default(),
            biases.get(done..).unwrap_or_default(),
        )
    };
    for (logit, &bias) in logits.iter_mut().zip(biases) {
        *logit = to_logit(scale.apply(*logit).saturating_add(bias));
    }
}

/// `packed` as pairs of `round(w / 2^shift)` (half up; `w · 2^-shift` for `shift ≤ 0`), an odd
/// last weight with a zero high half; returns their sum. On Helium the low halves of 4 lanes
/// stored in order (the high half of an odd last pair stays the zero of `query_pass`'s fill).
#[cfg(lara_attn_helium)]
#[inline(always)]
fn pack_weights(weights: &[i32], packed: &mut [i32], shift: i32) -> u32 {
    super::helium::pack_rounded(weights, packed, shift)
}

/// See the Helium [`pack_weights`].
#[cfg(not(lara_attn_helium))]
#[inline(always)]
fn pack_weights(weights: &[i32], packed: &mut [i32], shift: i32) -> u32 {
    // the weights in pairs, an odd last one with a zero high half (the pairs and the words
    // cut to the same length first: one loop counter)
    let (pairs, tail) = weights.as_chunks::<2>();
    let full = pairs.len().min(packed.len());
    let (words, rest) = packed.split_at_mut(full);
    let (pairs, last) = (&pairs[..full], rest.first_mut().zip(tail.first()));
    if cfg!(lara_attn_compact) {
        // (built for size: one loop for both signs of the shift, the same values)
        let (right, left) = ((shift - 1).max(0) as u32, (-shift).clamp(0, 31) as u32);
        let scale = |w: u32| {
            if shift > 0 {
                (w.wrapping_shr(right) + 1) >> 1
            } else {
                w << left
            }
        };
        return pack_pairs(words, pairs, last, scale);
    }
    if shift > 0 {
        // round(w / 2^shift) = (w / 2^(shift − 1) + 1) / 2
        let right = (shift - 1) as u32;
        let round = |w: u32| (w.wrapping_shr(right) + 1) >> 1;
        // (the whole pairs in asm on the DSP cores without Helium, an odd last weight here)
        #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
        if let Some(sum) = super::dsp::pack_rounded(words, pairs, shift as u32) {
            return sum.wrapping_add(pack_pairs(&mut [], &[], last, round));
        }
        pack_pairs(words, pairs, last, round)
    } else {
        let left = (-shift).min(31) as u32;
        pack_pairs(words, pairs, last, |w| w << left)
    }
}

/// The buffer of a row of [`block_logits`]: on the DSP cores without Helium (not built for
/// size) the workspace's
/// `row` (free in the key pass and the normaliser: room for the row's widened copy too), else
/// `shared` (fewer instructions with the portable loops, ARMv6-M LARA 18.91M against 18.59M).
#[cfg(not(lara_attn_compact))]
#[inline(always)]
fn row_buffer<'b>(row: &'b mut [i32], shared: &'b mut [i32]) -> &'b mut [i32] {
    if cfg!(all(
        lara_attn_dsp,
        not(lara_attn_helium),
        not(lara_attn_compact)
    )) {
        row
    } else {
        shared
    }
}

/// `round(Σ values / count)` (half away from zero; `i64` sum): `T`'s mean, its general path
/// (out of line at opt-level 3: rare there, and the query pass's registers are better spent).
#[cfg_attr(not(lara_attn_compact), inline(never))]
fn rounded_mean(values: &[i32], count: usize) -> i32 {
    let total = values.iter().map(|&t| i64::from(t)).sum();
    div_round(total, count.max(1) as u32)
}

/// `mis-opt`'s `α = max(bh + alpha_coeff · (T − mean T), 1)` in `Q27` (`alpha_coeff` in `Q16`;
/// `|spread| ≤ 8 · 2^27`), with `(mean T, alpha_coeff)`.
#[inline(always)]
fn mis_opt_alpha(balance: i32, t: i32, (t_mean, alpha_coeff): (i32, i32)) -> i32 {
    let spread = ((i64::from(alpha_coeff) * i64::from(t - t_mean) + (1 << 15)) >> 16) as i32;
    balance.saturating_add(spread).max(1)
}

/// [`mis_opt_alpha`] of one run of samples against `T`, over the common length: 4 lanes on
/// Helium; pairs in asm on the other DSP cores and an odd last one here; else here.
#[inline(always)]
fn run_alphas(run: &mut [i32], balances: &[i32], t_row: &[i32], coeff: (i32, i32)) {
    #[cfg(lara_attn_helium)]
    super::helium::alphas(run, (balances, t_row), coeff.0, coeff.1);
    #[cfg(all(lara_attn_dsp, not(lara_attn_helium)))]
    let (run, balances, t_row) = {
        let done = super::dsp::alphas(run, (balances, t_row), coeff.0, coeff.1);
        (
            run.get_mut(done..).unwrap_or_default(),
            balances.get(done..).unwrap_or_default(),
            t_row.get(done..).unwrap_or_default(),
        )
    };
    #[cfg(not(lara_attn_helium))]
    for ((a, &balance), &t) in run.iter_mut().zip(balances).zip(t_row) {
        *a = mis_opt_alpha(balance, t, coeff);
    }
}

/// `words[i] = pair(scale(low), scale(high))` for the weight pairs, then `last` (an odd last
/// weight, its high half 0); returns the sum of the scaled weights.
#[cfg(not(lara_attn_helium))]
#[inline(always)]
fn pack_pairs(
    words: &mut [i32],
    pairs: &[[i32; 2]],
    last: Option<(&mut i32, &i32)>,
    scale: impl Fn(u32) -> u32,
) -> u32 {
    let mut sum = 0u32;
    for (word, &[low, high]) in words.iter_mut().zip(pairs) {
        let (low, high) = (scale(low as u32), scale(high as u32));
        sum += low + high;
        *word = pair(low as i32, high as i32);
    }
    if let Some((word, &low)) = last {
        let low = scale(low as u32);
        sum += low;
        *word = pair(low as i32, 0);
    }
    sum
}

/// `q̄ᵀ`: a landmark `q̄` (units `scale/128`, `|q̄| ≤ 2^14`) rounded half up to a multiple of
/// 128, the queries' own `i8` grid (`q̄ᵀ / 128` in `[-128, 127]`): `T`'s operand, whose dot
/// products Helium takes `i8 × i8` (`VMLADAVA.S8`), 16 lanes instead of 8.
#[inline(always)]
pub(crate) fn t_landmark(q_bar: i32) -> i32 {
    (q_bar + 64) & !127
}

/// `round(128 · sum / len)`, half away from zero, for a segment of `1 ≤ len < 2^16` rows
/// (`div_round`'s bits in 32-bit arithmetic: `|sum| ≤ 128 · len`, so `|128 · sum| < 2^30`).
#[inline(always)]
fn segment_mean(sum: i32, len: u32) -> i32 {
    let q = (((sum.unsigned_abs() << 7) + len / 2) / len.max(1)) as i32;
    if sum >= 0 { q } else { -q }
}

/// Rows added into the packed lanes of [`add_rows`] between two flushes: each 16-bit lane
/// gains at most 255 per row, and `256 · 255 < 2^16`.
const PACKED_ROWS: u32 = 256;

/// `sum[t] += Σ_rows row[t]` (the same sums as adding the rows one `i8` at a time): four bytes
/// at a time in two words of 16-bit lanes (SIMD within a register: bytes 0 and 2 in one word,
/// 1 and 3 in the other, each biased by 128 to `[0, 255]`), flushed to `sum` every
/// [`PACKED_ROWS`] rows; a tail of `len mod 4` columns one at a time. `packed` holds the lanes
/// (`len / 2` words; a shorter one: one `i8` at a time throughout).
// (out of line on the DSP cores without Helium, which sum most segments by `dsp::sum_rows`:
// a smaller frame for segment_means; inlined elsewhere, which takes less)
#[cfg_attr(all(lara_attn_dsp, not(lara_attn_helium)), inline(never))]
fn add_rows<'r>(sum: &mut [i32], packed: &mut [i32], rows: impl Iterator<Item = &'r [i8]>) {
    let full = sum.len() / 4 * 4;
    // (built for size: one `i8` at a time)
    let packed = packed
        .get_mut(..full / 2)
        .filter(|_| !cfg!(lara_attn_compact));
    let Some(packed) = packed else {
        for row in rows {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += i32::from(v);
            }
        }
        return;
    };
    crate::slices::fill(packed, 0);
    let mut pending = 0u32;
    for row in rows {
        let (chunks, _) = row.as_chunks::<4>();
        let (lanes, _) = packed.as_chunks_mut::<2>();
        for ([even, odd], &[b0, b1, b2, b3]) in lanes.iter_mut().zip(chunks) {
            // v + 128 in each byte
            let word = u32::from_le_bytes([b0 as u8, b1 as u8, b2 as u8, b3 as u8]) ^ 0x8080_8080;
            *even = (*even as u32 + (word & 0x00FF_00FF)) as i32;
            *odd = (*odd as u32 + ((word >> 8) & 0x00FF_00FF)) as i32;
        }
        for (s, &v) in sum.iter_mut().zip(row).skip(full) {
            *s += i32::from(v);
        }
        pending += 1;
        if pending == PACKED_ROWS {
            flush_lanes(sum, packed, pending);
            pending = 0;
        }
    }
    flush_lanes(sum, packed, pending);
}

/// `sum[4i..4i + 4] += lanes − 128 · rows` from the two words of chunk `i`, which it clears.
fn flush_lanes(sum: &mut [i32], packed: &mut [i32], rows: u32) {
    if rows == 0 {
        return;
    }
    let bias = 128 * rows as i32;
    let (sums, _) = sum.as_chunks_mut::<4>();
    let (lanes, _) = packed.as_chunks_mut::<2>();
    for ([s0, s1, s2, s3], [even, odd]) in sums.iter_mut().zip(lanes.iter_mut()) {
        let (e, o) = (*even as u32, *odd as u32);
        *s0 += (e & 0xFFFF) as i32 - bias;
        *s1 += (o & 0xFFFF) as i32 - bias;
        *s2 += (e >> 16) as i32 - bias;
        *s3 += (o >> 16) as i32 - bias;
        (*even, *odd) = (0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::int8::xorshift32;

    /// The packed segment sums against adding one `i8` at a time: row counts across the flush
    /// ([`PACKED_ROWS`]), widths with and without a tail, extreme values, a short `packed`.
    #[test]
    fn packed_row_sums_match_plain_sums() {
        let mut seed = 0x1234_5678u32;
        for width in [1usize, 3, 4, 7, 8, 32, 37] {
            for count in [0usize, 1, 255, 256, 257, 600] {
                let data: Vec<i8> = (0..width * count)
                    .map(|i| {
                        let x = xorshift32(&mut seed);
                        match i % 5 {
                            0 => -128,
                            1 => 127,
                            _ => x as i8,
                        }
                    })
                    .collect();
                let mut expected = vec![3i32; width];
                for row in data.chunks_exact(width) {
                    for (s, &v) in expected.iter_mut().zip(row) {
                        *s += i32::from(v);
                    }
                }
                for packed_len in [width / 2, 0] {
                    let mut sum = vec![3i32; width];
                    let mut packed = vec![-1i32; packed_len];
                    add_rows(&mut sum, &mut packed, data.chunks_exact(width));
                    assert_eq!(sum, expected, "width {width}, rows {count}");
                }
            }
        }
    }
}
