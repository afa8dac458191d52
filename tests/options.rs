//! The estimator options beyond the official defaults: LARA's antithetic and two-sample
//! proposals, the paper's noise scale for LARA and RA, key padding masks (`Qkv::key_mask`, for
//! every estimator), and positive RFA in log space. Each against the float64 reference of
//! `tests/support/reference.rs` (RA with a mask: a float64 reference in this file), written from
//! the formulas (the official tensor operations), on every backend `LARA_ATTN_BACKEND` selects.

#[path = "support/backend_env.rs"]
mod backend_env;
#[path = "support/reference.rs"]
mod reference;

use backend_env::backend_from_env;
use lara_attn::lara::{self, Params, Proposals, Weighting};
use lara_attn::random::{NoiseScale, default_rng, fill_standard_normal};
use lara_attn::{Arg, Error, Qkv, Sampling, Shape, ra};
use reference::{Dims, LaraOptions, Mis, Samples};

/// LARA with options (the worst measured over the sweep below, on every backend: 8.5e-7).
const TOL_LARA: f64 = 1e-5;

fn randn(seed: u64, len: usize) -> Vec<f32> {
    let mut x = vec![0.0f32; len];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x
}

/// `max|ours − ref| / max(1, max|ref|)`.
fn relative_error(ours: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(ours.len(), reference.len());
    let scale = reference.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    let worst = ours
        .iter()
        .zip(reference)
        .fold(0.0f64, |m, (&o, &r)| m.max((o as f64 - r).abs()));
    worst / scale
}

struct Inputs {
    shape: Shape,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
}

impl Inputs {
    fn new(seed: u64, (nq, nk, d, dv): (usize, usize, usize, usize)) -> Self {
        Inputs {
            shape: Shape::cross(nq, nk, d, dv),
            q: randn(seed, nq * d),
            k: randn(seed ^ 0x51, nk * d),
            v: randn(seed ^ 0xa2, nk * dv),
        }
    }

    fn dims(&self) -> Dims {
        let s = self.shape;
        Dims::new(s.queries, s.keys, s.dim, s.value_dim)
    }

    /// The inputs of a call, with the key mask.
    fn qkv<'a>(&'a self, key_mask: Option<&'a [bool]>) -> Qkv<'a> {
        Qkv {
            shape: self.shape,
            q: &self.q,
            k: &self.k,
            v: &self.v,
            key_mask,
        }
    }
}

/// Eval mode, or sampled mode with the given noise.
fn sampling(noise: Option<&[f32]>) -> Sampling<'_> {
    match noise {
        Some(eps) => Sampling::Noise(eps),
        None => Sampling::Eval,
    }
}

/// Masks: none, one that masks nothing, scattered keys, and a masked prefix long enough to
/// cover whole key blocks.
fn masks(keys: usize, seed: u64) -> Vec<Option<Vec<bool>>> {
    let scattered: Vec<bool> = (0..keys)
        .map(|j| (j as u64 * 7 + seed).is_multiple_of(3) && j + 1 < keys)
        .collect();
    let prefix: Vec<bool> = (0..keys).map(|j| j < keys * 3 / 4).collect();
    vec![None, Some(vec![false; keys]), Some(scattered), Some(prefix)]
}

fn weighting_pairs() -> [(Weighting, Mis); 4] {
    [
        (Weighting::Optimal { alpha_coeff: 1.0 }, Mis::Opt(1.0)),
        (Weighting::Optimal { alpha_coeff: 2.0 }, Mis::Opt(2.0)),
        (Weighting::BalanceHeuristic, Mis::Bh),
        (Weighting::Biased, Mis::Biased),
    ]
}

fn proposal_pairs() -> [(Proposals, Samples); 3] {
    [
        (Proposals::Single, Samples::Single),
        (Proposals::Antithetic, Samples::Antithetic),
        (Proposals::TwoPerLandmark, Samples::Two),
    ]
}

fn run_lara(
    inputs: &Inputs,
    params: &Params<'_>,
    mask: Option<&[bool]>,
    noise: Option<&[f32]>,
) -> Vec<f32> {
    let shape = inputs.shape;
    let landmarks = match params.landmarks {
        lara::Landmarks::SegmentMeans(c) => c,
        lara::Landmarks::Given { count, .. } => count,
    };
    let mut out = vec![f32::NAN; shape.queries * shape.value_dim];
    let mut scratch = vec![f32::NAN; lara::scratch_len(shape, landmarks, params.proposals)];
    let x = inputs.qkv(mask);
    lara::attention(&x, params, sampling(noise), &mut out, &mut scratch).unwrap();
    out
}

/// Every weighting × proposal layout × noise scale × mask, in eval and sampled mode, over
/// shapes with every tail (cross-attention, `d` and `d_v` not multiples of a vector, `C ≥ n`).
#[test]
fn lara_options_match_the_reference() {
    backend_from_env();
    let shapes = [
        (1, 1, 1, 1),
        (7, 9, 3, 5),
        (37, 29, 8, 3),
        (70, 100, 16, 17),
        (33, 65, 5, 9),
    ];
    let mut worst = 0.0f64;
    for (case, &dims) in shapes.iter().enumerate() {
        let inputs = Inputs::new(case as u64 + 1, dims);
        let shape = inputs.shape;
        for c in [1, 3, 8] {
            for (mask_index, mask) in masks(shape.keys, case as u64).iter().enumerate() {
                for (weighting, mis) in weighting_pairs() {
                    for (proposals, samples) in proposal_pairs() {
                        for noise_scale in [NoiseScale::Official, NoiseScale::Paper] {
                            let params = Params::segment_means(c, weighting)
                                .with_proposals(proposals)
                                .with_noise_scale(noise_scale);
                            let options = LaraOptions {
                                samples,
                                noise_factor: noise_scale.factor(shape.dim) as f64,
                                key_mask: mask.as_deref(),
                                ..Default::default()
                            };
                            let eps = randn(c as u64 * 31, lara::noise_len(shape, c, proposals));
                            for noise in [None, Some(&eps[..])] {
                                let ours = run_lara(&inputs, &params, mask.as_deref(), noise);
                                let (q, k, v) = (&inputs.q, &inputs.k, &inputs.v);
                                let expected = reference::lara_with(
                                    inputs.dims(),
                                    c,
                                    mis,
                                    (q, k, v),
                                    noise,
                                    options,
                                );
                                let err = relative_error(&ours, &expected);
                                worst = worst.max(err);
                                assert!(
                                    err <= TOL_LARA,
                                    "{dims:?} C={c} mask#{mask_index} {weighting:?} \
                                     {proposals:?} {noise_scale:?} sampled={}: {err:e}",
                                    noise.is_some()
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    println!("worst LARA-with-options error {worst:e}");
}

/// The drawn noise is the given noise drawn from the same generator: `Sampling::Draw` equals
/// `Sampling::Noise` with `eps` of `noise_len` draws, bit for bit, for every proposal layout.
#[test]
fn sampled_lara_draws_the_documented_noise() {
    backend_from_env();
    let inputs = Inputs::new(5, (40, 40, 6, 4));
    let shape = inputs.shape;
    for (proposals, _) in proposal_pairs() {
        for noise_scale in [NoiseScale::Official, NoiseScale::Paper] {
            let params = Params::segment_means(4, Weighting::Optimal { alpha_coeff: 1.0 })
                .with_proposals(proposals)
                .with_noise_scale(noise_scale);
            let mut drawn = vec![0.0; 40 * 4];
            let mut scratch = vec![f32::NAN; lara::scratch_len(shape, 4, proposals)];
            let mut rng = default_rng(9);
            let x = inputs.qkv(None);
            let draw = Sampling::Draw(&mut rng);
            lara::attention(&x, &params, draw, &mut drawn, &mut scratch).unwrap();
            let eps = randn(9, lara::noise_len(shape, 4, proposals));
            let given = run_lara(&inputs, &params, None, Some(&eps));
            assert_eq!(drawn, given, "{proposals:?} {noise_scale:?}");
        }
    }
}

/// Masked keys have exactly zero influence: any values in the masked rows of `k` and `v` give
/// the same output, bit for bit.
#[test]
fn lara_masked_keys_have_no_influence() {
    backend_from_env();
    let mut inputs = Inputs::new(11, (50, 90, 7, 5));
    let shape = inputs.shape;
    let mask: Vec<bool> = (0..90)
        .map(|j| j % 4 == 1 || (40..80).contains(&j))
        .collect();
    for (weighting, _) in weighting_pairs() {
        for (proposals, _) in proposal_pairs() {
            let params = Params::segment_means(6, weighting).with_proposals(proposals);
            let eps = randn(3, lara::noise_len(shape, 6, proposals));
            let before = run_lara(&inputs, &params, Some(&mask), Some(&eps));
            let garbage = randn(99, 90 * 7);
            for (j, &masked) in mask.iter().enumerate() {
                if masked {
                    inputs.k[j * 7..(j + 1) * 7].copy_from_slice(&garbage[j * 7..(j + 1) * 7]);
                    inputs.v[j * 5..(j + 1) * 5].fill(1e6);
                }
            }
            let after = run_lara(&inputs, &params, Some(&mask), Some(&eps));
            assert_eq!(before, after, "{weighting:?} {proposals:?}");
        }
    }
}

/// Doubled proposals need `scratch_len(shape, C, proposals)`; less is refused, not overrun.
/// The mask and noise are checked; nothing is written on error.
#[test]
fn lara_option_errors() {
    backend_from_env();
    let inputs = Inputs::new(2, (20, 20, 4, 4));
    let shape = inputs.shape;
    let x = inputs.qkv(None);
    let params = Params::segment_means(4, Weighting::BalanceHeuristic);
    let mut out = vec![7.0; 80];
    // The single-proposal scratch of the backend that runs (scratch_len covers every compiled
    // backend, whose tiles may make room for the scalar kernel's doubled samples).
    let backend = lara_attn::backend::active_backend();
    let single = lara::scratch_len_for(backend, shape, 4, Proposals::Single);
    assert!(single <= lara::scratch_len(shape, 4, Proposals::Single));
    let mut scratch = vec![0.0; single];
    let antithetic = params.with_proposals(Proposals::Antithetic);
    let eps = randn(1, lara::noise_len(shape, 4, Proposals::Antithetic));
    let result = lara::attention(
        &x,
        &antithetic,
        Sampling::Noise(&eps),
        &mut out,
        &mut scratch,
    );
    let needed = lara::scratch_len_for(backend, shape, 4, Proposals::Antithetic);
    assert!(needed <= lara::scratch_len(shape, 4, Proposals::Antithetic));
    assert_eq!(
        result,
        Err(Error::ScratchTooSmall {
            needed,
            actual: scratch.len()
        })
    );
    assert!(out.iter().all(|&o| o == 7.0), "an error wrote the output");
    // Eval mode has one sample per landmark whatever the layout: the single scratch suffices.
    lara::attention(&x, &antithetic, Sampling::Eval, &mut out, &mut scratch).unwrap();

    let mut scratch = vec![0.0; lara::scratch_len(shape, 4, Proposals::TwoPerLandmark)];
    let mut out = vec![7.0; 80];
    let two = params.with_proposals(Proposals::TwoPerLandmark);
    let result = lara::attention(&x, &two, Sampling::Noise(&eps), &mut out, &mut scratch);
    let expected = Error::LengthMismatch {
        arg: Arg::Noise,
        expected: 32,
        actual: 16,
    };
    assert_eq!(result, Err(expected));
    let short_mask = [false; 19];
    let masked = inputs.qkv(Some(&short_mask));
    let result = lara::attention(&masked, &params, Sampling::Eval, &mut out, &mut scratch);
    let expected = Error::LengthMismatch {
        arg: Arg::KeyMask,
        expected: 20,
        actual: 19,
    };
    assert_eq!(result, Err(expected));
    let all_masked = [true; 20];
    let masked = inputs.qkv(Some(&all_masked));
    let result = lara::attention(&masked, &params, Sampling::Eval, &mut out, &mut scratch);
    assert_eq!(result, Err(Error::AllKeysMasked));
    assert!(out.iter().all(|&o| o == 7.0), "an error wrote the output");
}

// ---------------------------------------------------------------------------------------------
// Key padding masks of exact attention, RFA and RA; positive RFA in log space
// ---------------------------------------------------------------------------------------------

/// Exact attention with a mask (the worst measured, on every backend: 7.6e-7).
const TOL_EXACT: f64 = 5e-6;
/// RFA with a mask, official and log-space positive features (the worst measured: 8.5e-7).
const TOL_RFA: f64 = 5e-6;
/// RA with a mask (the tolerance of RA against the reference without one, `tests/properties.rs`).
const TOL_RA: f64 = 1e-5;

/// The shapes of the mask sweeps: tails of every vector width, and key counts that leave whole
/// 32-key blocks masked.
const MASK_SHAPES: [(usize, usize, usize, usize); 5] = [
    (1, 1, 1, 1),
    (5, 3, 2, 3),
    (17, 45, 7, 5),
    (40, 100, 16, 9),
    (33, 130, 9, 16),
];

fn omega_for(seed: u64, features: usize, dim: usize) -> Vec<f32> {
    let mut omega = vec![0.0; features * dim];
    lara_attn::random::gaussian_omega(&mut default_rng(seed), features, dim, &mut omega).unwrap();
    omega
}

/// RA's proposal mean in the mask tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RaMean {
    KeyAverage,
    AttentionWeighted,
    /// Given keys `J_i = (7i + 3) mod n_k`, moved on to the next unmasked key (a given key of
    /// a masked key is refused: `ra_given_keys_of_masked_keys_are_refused`).
    GivenKeys,
    /// `J_i ~ π[i, ·]` drawn from a generator: no f64 reference (the masked keys must never be
    /// drawn, which the influence test checks).
    SampledKey,
}

/// The given key indices of RA: `(7i + 3) mod n_k`, with `unmasked_only` the next key that the
/// mask leaves (the index as is if it leaves none; keys beyond a short mask count as unmasked).
fn given_keys(shape: Shape, mask: Option<&[bool]>, unmasked_only: bool) -> Vec<u32> {
    (0..shape.queries)
        .map(|i| {
            let mut j = (7 * i + 3) % shape.keys;
            if let (true, Some(mask)) = (unmasked_only, mask) {
                for _ in 0..shape.keys {
                    if mask.get(j) != Some(&true) {
                        break;
                    }
                    j = (j + 1) % shape.keys;
                }
            }
            j as u32
        })
        .collect()
}

/// Which masked kernel a test runs.
#[derive(Clone, Copy, Debug)]
enum Masked {
    Exact,
    Positive(usize),
    Trigonometric(usize),
    PositiveLogSpace(usize),
    /// RA in eval mode, or sampled (`sampled`) with the paper's noise scale.
    Ra {
        mean: RaMean,
        sampled: bool,
    },
}

impl Masked {
    fn all() -> Vec<Masked> {
        let mut all = vec![
            Masked::Exact,
            Masked::Positive(16),
            Masked::Positive(37),
            Masked::Trigonometric(16),
            Masked::Trigonometric(37),
            Masked::PositiveLogSpace(16),
            Masked::PositiveLogSpace(37),
        ];
        for mean in [
            RaMean::KeyAverage,
            RaMean::AttentionWeighted,
            RaMean::GivenKeys,
        ] {
            for sampled in [false, true] {
                all.push(Masked::Ra { mean, sampled });
            }
        }
        all.push(Masked::Ra {
            mean: RaMean::SampledKey,
            sampled: true,
        });
        all
    }

    /// Whether [`Masked::reference`] exists (every kernel but RA's drawn key).
    fn has_reference(self) -> bool {
        !matches!(
            self,
            Masked::Ra {
                mean: RaMean::SampledKey,
                ..
            }
        )
    }

    /// RA's noise `eps [n_q, d]` (sampled mode).
    fn ra_noise(shape: Shape) -> Vec<f32> {
        randn(shape.queries as u64 * 13 + 1, shape.queries * shape.dim)
    }

    fn run(self, inputs: &Inputs, mask: Option<&[bool]>) -> Result<Vec<f32>, Error> {
        use lara_attn::{exact, ra, rfa};
        use rfa::FeatureMap;
        let shape = inputs.shape;
        let x = inputs.qkv(mask);
        let mut out = vec![f32::NAN; shape.queries * shape.value_dim];
        let rfa_run = |map: FeatureMap, s: usize, out: &mut [f32]| {
            let omega = omega_for(s as u64, s, shape.dim);
            let mut scratch = vec![f32::NAN; rfa::scratch_len(shape, map, s)];
            let params = rfa::Params { map, omega: &omega };
            rfa::attention(&x, &params, out, &mut scratch)
        };
        match self {
            Masked::Exact => {
                let mut scratch = vec![f32::NAN; exact::scratch_len(shape)];
                exact::attention(&x, &mut out, &mut scratch)?
            }
            Masked::Positive(s) => rfa_run(FeatureMap::Positive, s, &mut out)?,
            Masked::Trigonometric(s) => rfa_run(FeatureMap::Trigonometric, s, &mut out)?,
            Masked::PositiveLogSpace(s) => rfa_run(FeatureMap::PositiveLogSpace, s, &mut out)?,
            Masked::Ra { mean, sampled } => {
                let indices = given_keys(shape, mask, true);
                let ra_mean = match mean {
                    RaMean::KeyAverage => ra::Mean::KeyAverage,
                    RaMean::AttentionWeighted => ra::Mean::AttentionWeighted,
                    RaMean::GivenKeys => ra::Mean::GivenKeys(&indices),
                    RaMean::SampledKey => ra::Mean::SampledKey,
                };
                let params = ra::Params::new(ra_mean).with_noise_scale(NoiseScale::Paper);
                let eps = Masked::ra_noise(shape);
                let mut rng = default_rng(shape.keys as u64);
                let sampling = match (mean, sampled) {
                    (RaMean::SampledKey, _) => Sampling::Draw(&mut rng),
                    (_, true) => Sampling::Noise(&eps),
                    (_, false) => Sampling::Eval,
                };
                let mut scratch = vec![f32::NAN; ra::scratch_len(shape)];
                ra::attention(&x, &params, sampling, &mut out, &mut scratch)?
            }
        }
        Ok(out)
    }

    fn reference(self, inputs: &Inputs, mask: Option<&[bool]>) -> Vec<f64> {
        let (dims, d) = (inputs.dims(), inputs.shape.dim);
        let (q, k, v) = (&inputs.q, &inputs.k, &inputs.v);
        match self {
            Masked::Exact => reference::softmax_attention_masked(dims, q, k, v, mask),
            Masked::Positive(s) => {
                reference::performer_masked(dims, &omega_for(s as u64, s, d), s, q, k, v, mask)
            }
            Masked::Trigonometric(s) => {
                let omega = omega_for(s as u64, s, d);
                reference::trigonometric_masked(dims, &omega, s, q, k, v, mask)
            }
            Masked::PositiveLogSpace(s) => {
                let omega = omega_for(s as u64, s, d);
                reference::performer_log_space(dims, &omega, s, q, k, v, mask)
            }
            Masked::Ra { mean, sampled } => {
                let shape = inputs.shape;
                let indices = given_keys(shape, mask, true);
                let eps = Masked::ra_noise(shape);
                let noise = sampled.then(|| {
                    let factor = NoiseScale::Paper.factor(d) as f64;
                    eps.iter().map(|&e| factor * e as f64).collect::<Vec<f64>>()
                });
                ra_masked_reference(inputs, mean, &indices, noise.as_deref(), mask)
            }
        }
    }

    fn tolerance(self) -> f64 {
        match self {
            Masked::Exact => TOL_EXACT,
            Masked::Ra { .. } => TOL_RA,
            _ => TOL_RFA,
        }
    }
}

/// RA with a key mask in float64, from the formulas: masked keys get the logit `−∞` in
/// `π[i, j] = softmax_j(s · q_i·k_j)` and in the output softmax
/// `softmax_j(s · W_i·k_j − s · |k_j|²/2)`, the key average runs over the unmasked keys, and a
/// given key `J_i` is used as is (masked or not). `W_i = mu_i + noise_i` (`noise = f · eps`).
fn ra_masked_reference(
    inputs: &Inputs,
    mean: RaMean,
    indices: &[u32],
    noise: Option<&[f64]>,
    mask: Option<&[bool]>,
) -> Vec<f64> {
    use reference::{Mat, dot, softmax, sq_norm};
    let dims = inputs.dims();
    let s = dims.s();
    let q = Mat::from_f32(&inputs.q, dims.nq, dims.d);
    let k = Mat::from_f32(&inputs.k, dims.nk, dims.d);
    let v = Mat::from_f32(&inputs.v, dims.nk, dims.dv);
    let unmasked: Vec<usize> = (0..dims.nk)
        .filter(|&j| !mask.is_some_and(|mask| mask[j]))
        .collect();
    // Σ_j p_j · rows_j over the unmasked rows j (p in the order of `unmasked`)
    let weighted = |p: &[f64], m: &Mat| -> Vec<f64> {
        let mut acc = vec![0.0; m.cols];
        for (&pj, &j) in p.iter().zip(&unmasked) {
            for (a, &x) in acc.iter_mut().zip(m.row(j)) {
                *a += pj * x;
            }
        }
        acc
    };
    let uniform = vec![1.0 / unmasked.len() as f64; unmasked.len()];
    let key_average = weighted(&uniform, &k);
    let mut out = Vec::with_capacity(dims.nq * dims.dv);
    for i in 0..dims.nq {
        let qi = q.row(i);
        // mu_i = q_i + (k̄ | Σ_j π[i,j] k_j | k_{J_i})
        let offset = match mean {
            RaMean::KeyAverage => key_average.clone(),
            RaMean::AttentionWeighted => {
                let logits: Vec<f64> = unmasked.iter().map(|&j| s * dot(qi, k.row(j))).collect();
                weighted(&softmax(&logits), &k)
            }
            RaMean::GivenKeys => k.row(indices[i] as usize).to_vec(),
            RaMean::SampledKey => unreachable!("a drawn key has no reference"),
        };
        let mut w: Vec<f64> = qi.iter().zip(&offset).map(|(a, b)| a + b).collect();
        if let Some(noise) = noise {
            for (x, e) in w.iter_mut().zip(&noise[i * dims.d..(i + 1) * dims.d]) {
                *x += e;
            }
        }
        // out_i = Σ_j softmax_j(s · W_i·k_j − s · |k_j|²/2) v_j over the unmasked keys
        let logits: Vec<f64> = unmasked
            .iter()
            .map(|&j| s * dot(&w, k.row(j)) - s * sq_norm(k.row(j)) / 2.0)
            .collect();
        out.extend(weighted(&softmax(&logits), &v));
    }
    out
}

/// Exact attention, official RFA (positive and trigonometric), log-space positive RFA and RA
/// (every given or computed mean, eval and sampled), with and without masks, against the
/// reference. The trigonometric estimator cancels (features of both signs), so its inputs are
/// scaled to keep its denominators away from zero.
#[test]
fn masked_kernels_match_the_reference() {
    backend_from_env();
    for kernel in Masked::all().into_iter().filter(|k| k.has_reference()) {
        let mut worst = 0.0f64;
        for (case, &dims) in MASK_SHAPES.iter().enumerate() {
            let mut inputs = Inputs::new(case as u64 + 20, dims);
            if let Masked::Trigonometric(_) = kernel {
                for x in inputs.q.iter_mut().chain(inputs.k.iter_mut()) {
                    *x *= 0.3;
                }
            }
            for (mask_index, mask) in masks(inputs.shape.keys, case as u64).iter().enumerate() {
                let ours = kernel.run(&inputs, mask.as_deref()).unwrap();
                let expected = kernel.reference(&inputs, mask.as_deref());
                let err = relative_error(&ours, &expected);
                worst = worst.max(err);
                assert!(
                    err <= kernel.tolerance(),
                    "{kernel:?} {dims:?} mask#{mask_index}: {err:e}"
                );
            }
        }
        println!("{kernel:?}: worst error {worst:e}");
    }
}

/// A given key index of a masked key is refused (a masked key has no influence, so it cannot be
/// a proposal's key), with the output and scratch untouched.
#[test]
fn ra_given_keys_of_masked_keys_are_refused() {
    backend_from_env();
    for (case, &dims) in MASK_SHAPES.iter().enumerate().skip(2) {
        let inputs = Inputs::new(case as u64 + 20, dims);
        let shape = inputs.shape;
        for mask in masks(shape.keys, case as u64).into_iter().flatten().skip(1) {
            let indices = given_keys(shape, Some(&mask), false);
            let Some(row) = indices.iter().position(|&j| mask[j as usize]) else {
                continue;
            };
            let x = Qkv {
                shape,
                q: &inputs.q,
                k: &inputs.k,
                v: &inputs.v,
                key_mask: Some(&mask),
            };
            let params = ra::Params::new(ra::Mean::GivenKeys(&indices));
            let mut out = vec![f32::NAN; shape.queries * shape.value_dim];
            let mut scratch = vec![7.0; ra::scratch_len(shape)];
            let result = ra::attention(&x, &params, Sampling::Eval, &mut out, &mut scratch);
            let index = indices[row];
            assert_eq!(
                result,
                Err(Error::MaskedKeyIndex { row, index }),
                "{dims:?}"
            );
            assert!(out.iter().all(|o| o.is_nan()) && scratch.iter().all(|&s| s == 7.0));
        }
    }
}

/// Masked keys have exactly zero influence on every masked kernel: garbage in the masked rows
/// of `k` and `v` leaves the output unchanged, bit for bit. RA's drawn key is never a masked
/// one: the same draws with garbage in the masked rows give the same output.
#[test]
fn masked_keys_have_no_influence() {
    backend_from_env();
    for kernel in Masked::all() {
        let mut inputs = Inputs::new(77, (45, 110, 11, 6));
        let mask: Vec<bool> = (0..110)
            .map(|j| j % 3 == 2 || (33..99).contains(&j))
            .collect();
        let before = kernel.run(&inputs, Some(&mask)).unwrap();
        let garbage = randn(5, 110 * 11);
        for (j, _) in mask.iter().enumerate().filter(|&(_, &masked)| masked) {
            inputs.k[j * 11..(j + 1) * 11].copy_from_slice(&garbage[j * 11..(j + 1) * 11]);
            inputs.v[j * 6..(j + 1) * 6].fill(-3e5);
        }
        let after = kernel.run(&inputs, Some(&mask)).unwrap();
        assert_eq!(before, after, "{kernel:?}");
    }
}

/// A mask of the wrong length or one that masks every key is refused, and nothing is written.
#[test]
fn bad_masks_are_refused() {
    backend_from_env();
    let inputs = Inputs::new(4, (6, 8, 3, 2));
    for kernel in Masked::all() {
        let short = [false; 7];
        let expected = Error::LengthMismatch {
            arg: Arg::KeyMask,
            expected: 8,
            actual: 7,
        };
        assert_eq!(
            kernel.run(&inputs, Some(&short)),
            Err(expected),
            "{kernel:?}"
        );
        let all = [true; 8];
        let result = kernel.run(&inputs, Some(&all));
        assert_eq!(result, Err(Error::AllKeysMasked), "{kernel:?}");
    }
}

/// Log-space RFA has no floor: on logits of ±60 (where the official `+1e-4` floor and `1e-2`
/// clamp dominate) it still matches the floor-free reference, and every output row is a convex
/// combination of the values.
#[test]
fn log_space_rfa_is_stable_on_large_logits() {
    backend_from_env();
    let mut inputs = Inputs::new(8, (30, 70, 8, 4));
    for x in inputs.q.iter_mut().chain(inputs.k.iter_mut()) {
        *x *= 4.0;
    }
    let kernel = Masked::PositiveLogSpace(24);
    let ours = kernel.run(&inputs, None).unwrap();
    let expected = kernel.reference(&inputs, None);
    let err = relative_error(&ours, &expected);
    assert!(err <= TOL_RFA, "{err:e}");
    let (lo, hi) = inputs
        .v
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    assert!(ours.iter().all(|&o| (lo - 1e-5..=hi + 1e-5).contains(&o)));
}

// ---------------------------------------------------------------------------------------------
// The paper's noise scale makes RA unbiased
// ---------------------------------------------------------------------------------------------

/// The mean of `draws` sampled RA outputs (`num_samples = 1`: `J_i ~ π[i, ·]`, then
/// `W_i = q_i + k_{J_i} + f · eps_i`) and the standard error of that mean, element by element.
fn ra_draw_statistics(
    inputs: &Inputs,
    mask: Option<&[bool]>,
    noise_scale: NoiseScale,
    draws: usize,
) -> (Vec<f64>, Vec<f64>) {
    use lara_attn::ra;
    let shape = inputs.shape;
    let len = shape.queries * shape.value_dim;
    let (mut sum, mut sum_sq) = (vec![0.0f64; len], vec![0.0f64; len]);
    let mut out = vec![0.0f32; len];
    let mut scratch = vec![0.0f32; ra::scratch_len(shape)];
    let mut rng = default_rng(2022);
    let x = inputs.qkv(mask);
    let params = ra::Params::new(ra::Mean::SampledKey).with_noise_scale(noise_scale);
    for _ in 0..draws {
        let sampling = Sampling::Draw(&mut rng);
        ra::attention(&x, &params, sampling, &mut out, &mut scratch).unwrap();
        for ((s, s2), &o) in sum.iter_mut().zip(sum_sq.iter_mut()).zip(&out) {
            *s += o as f64;
            *s2 += (o as f64).powi(2);
        }
    }
    let n = draws as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let standard_error = sum_sq
        .iter()
        .zip(&mean)
        .map(|(s2, m)| ((s2 / n - m * m).max(0.0) / n).sqrt())
        .collect();
    (mean, standard_error)
}

/// `|x − y|_F / |y|_F`.
fn frobenius_relative(x: &[f64], y: &[f64]) -> f64 {
    let diff: f64 = x.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum();
    let norm: f64 = y.iter().map(|b| b * b).sum();
    (diff / norm).sqrt()
}

/// How far the mean of `draws` RA draws lands from `exact`: the largest `|mean − exact|` in
/// standard errors of the mean, and the relative Frobenius error.
fn distance_to_exact(
    inputs: &Inputs,
    mask: Option<&[bool]>,
    noise_scale: NoiseScale,
    draws: usize,
    exact: &[f64],
) -> (f64, f64) {
    let (mean, standard_error) = ra_draw_statistics(inputs, mask, noise_scale, draws);
    let worst_z = mean
        .iter()
        .zip(exact)
        .zip(&standard_error)
        .map(|((m, e), se)| (m - e).abs() / se)
        .fold(0.0f64, f64::max);
    (worst_z, frobenius_relative(&mean, exact))
}

/// RA with the paper's noise scale (`eps · d^1/4`) is unbiased: over 4000 draws (fixed seed
/// 2022) the mean output converges to exact softmax attention. Stated tolerances: every element
/// within 4.5 standard errors of the exact value, and a relative Frobenius error below 0.04
/// (the Monte-Carlo error at this size is about 0.02). The official unscaled noise keeps a bias
/// that the same test detects: its mean sits many standard errors away.
#[test]
fn scaled_noise_ra_converges_to_exact_attention() {
    backend_from_env();
    let inputs = Inputs::new(31, (12, 12, 8, 4));
    let exact = reference::softmax_attention(inputs.dims(), &inputs.q, &inputs.k, &inputs.v);
    let draws = 4000;
    let (worst_z, error) = distance_to_exact(&inputs, None, NoiseScale::Paper, draws, &exact);
    println!("paper noise: worst z {worst_z:.2}, relative error {error:.4}");
    assert!(
        worst_z <= 4.5,
        "paper noise: an element is {worst_z:.2} standard errors off"
    );
    assert!(error <= 0.04, "paper noise: relative error {error:.4}");

    let official = NoiseScale::Official;
    let (worst_z, error) = distance_to_exact(&inputs, None, official, draws, &exact);
    println!("official noise: worst z {worst_z:.2}, relative error {error:.4}");
    assert!(
        worst_z > 6.0,
        "the official noise's bias went undetected (z {worst_z:.2})"
    );
}

/// With a key mask, RA with the paper's noise converges to exact attention over the unmasked
/// keys (the drawn key `J_i ~ π[i, ·]` never lands on a masked key, and the output softmax
/// excludes them), with the tolerances of the unmasked test above.
#[test]
fn scaled_noise_ra_with_a_mask_converges_to_masked_exact_attention() {
    backend_from_env();
    let inputs = Inputs::new(31, (12, 12, 8, 4));
    let mask: Vec<bool> = (0..12).map(|j| [2, 5, 6, 11].contains(&j)).collect();
    let (q, k, v) = (&inputs.q, &inputs.k, &inputs.v);
    let exact = reference::softmax_attention_masked(inputs.dims(), q, k, v, Some(&mask));
    let draws = 4000;
    let paper = NoiseScale::Paper;
    let (worst_z, error) = distance_to_exact(&inputs, Some(&mask), paper, draws, &exact);
    println!("paper noise, masked: worst z {worst_z:.2}, relative error {error:.4}");
    assert!(
        worst_z <= 4.5,
        "paper noise, masked: an element is {worst_z:.2} standard errors off"
    );
    assert!(
        error <= 0.04,
        "paper noise, masked: relative error {error:.4}"
    );
    // against exact attention over every key, the masked mean is far off
    let unmasked = reference::softmax_attention(inputs.dims(), q, k, v);
    let (worst_z, _) = distance_to_exact(&inputs, Some(&mask), paper, draws, &unmasked);
    assert!(
        worst_z > 6.0,
        "the mask made no difference (z {worst_z:.2})"
    );
}
