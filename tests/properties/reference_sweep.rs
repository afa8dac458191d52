//! Every estimator against the float64 reference over sweeps of shapes: every `n` and `d` of
//! the small sizes, self- and cross-attention, then medium and large shapes.

use crate::backend_env::backend_from_env;
use crate::kernels::{Call, Kernel};
use crate::reference::{self, Dims, Mis, RaMean};
use crate::{Inputs, WEIGHTINGS, base_call, key_indices, max_abs_diff, randn, run};
use lara_attn::random::{default_rng, gaussian_omega, orthogonal_omega};
use lara_attn::{Qkv, lara, ra};
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------------------------
// Tolerances: max|ours − ref| ≤ TOL · max(1, max|ref|)
// ---------------------------------------------------------------------------------------------

// Worst seen over ten seed variants of the sweeps (~80 000 calls): exact 1.3e-6, LARA 2.3e-6,
// RA 2.8e-6, positive RFA 1.2e-6, trigonometric RFA 3.9e-7 (with its conditioning term).

/// Exact softmax attention.
const TOL_EXACT: f64 = 5e-6;
/// LARA, every weighting, eval and sampled.
const TOL_LARA: f64 = 1e-5;
/// RA, every mean, eval and sampled.
const TOL_RA: f64 = 1e-5;
/// RFA with positive features.
const TOL_POSITIVE: f64 = 5e-6;
/// RFA with trigonometric features; the bound is `TOL_TRIG · (max(1, max|ref|) + cond_i)` per
/// row `i`, `cond_i` the cancellation-free magnitude of `reference::trigonometric_condition`
/// (features of both signs: without it the plain relative error reaches 1.1e-5).
const TOL_TRIG: f64 = 5e-6;

// ---------------------------------------------------------------------------------------------
// The estimators, each with its registry kernel and its reference
// ---------------------------------------------------------------------------------------------

/// One estimator with its parameters (one head).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Estimator<'a> {
    Exact,
    Lara {
        params: lara::Params<'a>,
        noise: Option<&'a [f32]>,
    },
    Ra {
        mean: ra::Mean<'a>,
        noise: Option<&'a [f32]>,
    },
    /// Positive features, `ω [S, d]` (the kernel reads `S` from `ω`).
    Positive {
        omega: &'a [f32],
        features: usize,
    },
    /// Trigonometric features, `ω [S, d]`.
    Trig {
        omega: &'a [f32],
        features: usize,
    },
}

impl<'a> Estimator<'a> {
    fn family(&self) -> &'static str {
        match self {
            Estimator::Exact => "exact",
            Estimator::Lara { .. } => "lara",
            Estimator::Ra { .. } => "ra",
            Estimator::Positive { .. } => "rfa_positive",
            Estimator::Trig { .. } => "rfa_trigonometric",
        }
    }

    fn tolerance(&self) -> f64 {
        match self {
            Estimator::Exact => TOL_EXACT,
            Estimator::Lara { .. } => TOL_LARA,
            Estimator::Ra { .. } => TOL_RA,
            Estimator::Positive { .. } => TOL_POSITIVE,
            Estimator::Trig { .. } => TOL_TRIG,
        }
    }

    /// The registry kernel that computes this estimator.
    pub(crate) fn kernel(&self) -> &'static Kernel {
        let name = match self {
            Estimator::Exact => "exact",
            Estimator::Lara { .. } => "lara",
            Estimator::Ra { .. } => "ra",
            Estimator::Positive { .. } => "rfa",
            Estimator::Trig { .. } => "rfa-trig",
        };
        Kernel::named(name).unwrap_or_else(|| panic!("no kernel {name:?} in the registry"))
    }

    /// The registry call of this estimator on `x`.
    pub(crate) fn call(&self, x: Qkv<'a>) -> Call<'a> {
        let base = base_call(x);
        match *self {
            Estimator::Exact => base,
            Estimator::Lara { params, noise } => Call {
                lara: params,
                noise,
                ..base
            },
            Estimator::Ra { mean, noise } => Call {
                ra: ra::Params::new(mean),
                noise,
                ..base
            },
            Estimator::Positive { omega, .. } | Estimator::Trig { omega, .. } => {
                Call { omega, ..base }
            }
        }
    }

    pub(crate) fn label(&self) -> String {
        match self {
            Estimator::Exact => "exact".into(),
            Estimator::Lara { params, noise } => {
                let lm = match params.landmarks {
                    lara::Landmarks::SegmentMeans(c) => format!("C={c}"),
                    lara::Landmarks::Given { count, .. } => format!("given C={count}"),
                };
                format!(
                    "lara {lm} {:?} {}",
                    params.weighting,
                    if noise.is_some() { "noise" } else { "eval" }
                )
            }
            Estimator::Ra { mean, noise } => {
                let m = match mean {
                    ra::Mean::KeyAverage => "ns=0",
                    ra::Mean::AttentionWeighted => "ns=-1",
                    ra::Mean::SampledKey => "ns=1 sampled",
                    ra::Mean::GivenKeys(_) => "ns=1",
                };
                format!("ra {m} {}", if noise.is_some() { "noise" } else { "eval" })
            }
            Estimator::Positive { features, .. } => format!("rfa positive S={features}"),
            Estimator::Trig { features, .. } => format!("rfa trigonometric S={features}"),
        }
    }

    /// Runs the registry kernel with a zero-filled scratch of its `scratch_len`.
    pub(crate) fn eval(&self, inputs: &'a Inputs) -> Vec<f32> {
        self.eval_on(inputs.qkv())
    }

    /// [`eval`](Self::eval) on any inputs.
    pub(crate) fn eval_on(&self, x: Qkv<'a>) -> Vec<f32> {
        let call = self.call(x);
        let kernel = self.kernel();
        crate::try_run(kernel, &call)
            .unwrap_or_else(|e| panic!("{} {:?}: {e}", self.label(), x.shape))
    }

    fn reference(&self, dims: Dims, q: &[f32], k: &[f32], v: &[f32]) -> Vec<f64> {
        match *self {
            Estimator::Exact => reference::softmax_attention(dims, q, k, v),
            Estimator::Lara { params, noise } => {
                let mis = mis_of(params.weighting);
                match params.landmarks {
                    lara::Landmarks::SegmentMeans(c) => {
                        reference::lara(dims, c, mis, q, k, v, noise)
                    }
                    lara::Landmarks::Given {
                        count,
                        queries,
                        keys,
                    } => {
                        let landmarks = (count, queries, keys);
                        reference::lara_given(dims, landmarks, mis, (q, k, v), noise)
                    }
                }
            }
            Estimator::Ra { mean, noise } => {
                let mean = match mean {
                    ra::Mean::KeyAverage => RaMean::KeyAverage,
                    ra::Mean::AttentionWeighted => RaMean::AttentionWeighted,
                    ra::Mean::GivenKeys(j) => RaMean::Keys(j),
                    ra::Mean::SampledKey => panic!("the sampled key has no reference"),
                };
                reference::ra(dims, mean, q, k, v, noise)
            }
            Estimator::Positive { omega, features } => {
                reference::performer(dims, omega, features, q, k, v)
            }
            Estimator::Trig { omega, features } => {
                reference::trigonometric(dims, omega, features, q, k, v)
            }
        }
    }

    /// The error of `ours` against the reference in units of the tolerance bound
    /// `max(1, max|ref|)` (plus the conditioning term for trigonometric features).
    fn error(&self, dims: Dims, q: &[f32], k: &[f32], v: &[f32], ours: &[f32]) -> f64 {
        let reference = self.reference(dims, q, k, v);
        assert_eq!(ours.len(), reference.len());
        assert!(
            ours.iter().all(|x| x.is_finite()),
            "{} {dims:?}: non-finite output",
            self.label()
        );
        let scale = reference.iter().fold(1.0f64, |m, &x| m.max(x.abs()));
        match *self {
            Estimator::Trig { omega, features } => {
                let cond = reference::trigonometric_condition(dims, omega, features, q, k, v);
                let mut worst = 0.0f64;
                for (i, (o, r)) in ours
                    .chunks_exact(dims.dv)
                    .zip(reference.chunks_exact(dims.dv))
                    .enumerate()
                {
                    let err = o
                        .iter()
                        .zip(r)
                        .map(|(&a, &b)| (a as f64 - b).abs())
                        .fold(0.0, f64::max);
                    worst = worst.max(err / (scale + cond[i]));
                }
                worst
            }
            _ => max_abs_diff(ours, &reference) / scale,
        }
    }
}

fn mis_of(weighting: lara::Weighting) -> Mis {
    match weighting {
        lara::Weighting::Optimal { alpha_coeff } => Mis::Opt(alpha_coeff as f64),
        lara::Weighting::BalanceHeuristic => Mis::Bh,
        lara::Weighting::Biased => Mis::Biased,
    }
}

// ---------------------------------------------------------------------------------------------
// Kernels against the reference over a sweep of shapes
// ---------------------------------------------------------------------------------------------

/// The worst error (in units of the bound) seen per estimator family, for the report.
#[derive(Default)]
pub(crate) struct Worst(BTreeMap<&'static str, (f64, String, usize)>);

impl Worst {
    pub(crate) fn record(&mut self, estimator: &Estimator, dims: Dims, err: f64) {
        let entry = self
            .0
            .entry(estimator.family())
            .or_insert((0.0, String::new(), 0));
        entry.2 += 1;
        if err > entry.0 {
            entry.0 = err;
            entry.1 = format!("{} {dims:?}", estimator.label());
        }
    }

    pub(crate) fn report(&self, test: &str) {
        for (family, (err, at, calls)) in &self.0 {
            println!("{test}: {family:<18} worst {err:.3e} over {calls} calls (at {at})");
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Case {
    nq: usize,
    nk: usize,
    d: usize,
    dv: usize,
}

fn case(nq: usize, nk: usize, d: usize, dv: usize) -> Case {
    Case { nq, nk, d, dv }
}

/// Checks every estimator on one shape. `thorough` sweeps more landmark counts and features.
fn check_case(c: Case, seed: u64, thorough: bool, worst: &mut Worst) {
    let scale = [1.0, 0.5, 1.5][(seed % 3) as usize];
    let inputs = Inputs::new(c.nq, c.nk, c.d, c.dv, seed, scale);
    let dims = inputs.dims();
    let (q, k, v) = (&inputs.q[..], &inputs.k[..], &inputs.v[..]);
    let shape = inputs.shape;

    let mut check = |estimator: Estimator| {
        let ours = run(estimator.kernel(), &estimator.call(inputs.qkv()));
        let err = estimator.error(dims, q, k, v, &ours);
        worst.record(&estimator, dims, err);
        assert!(
            err <= estimator.tolerance(),
            "{} {dims:?} seed {seed}: error {err:.3e} > {:.1e}",
            estimator.label(),
            estimator.tolerance()
        );
    };

    check(Estimator::Exact);

    // LARA: several landmark counts, every weighting, eval and sampled.
    let n_min = c.nq.min(c.nk);
    let mut counts: Vec<usize> = if thorough {
        vec![
            1,
            2,
            3,
            n_min / 2,
            n_min.saturating_sub(1),
            n_min,
            n_min + 3,
        ]
    } else if n_min * (c.d + c.dv) <= 10_000 {
        vec![1, 8, n_min / 3 + 1, n_min + 1]
    } else {
        // Keep the debug-build runtime down on the biggest shapes.
        vec![1, 8, 37]
    };
    counts.retain(|&x| x >= 1);
    counts.sort_unstable();
    counts.dedup();
    for (ci, &count) in counts.iter().enumerate() {
        let cp = lara::effective_landmarks(shape, count);
        assert_eq!(cp, count.min(c.nq).min(c.nk));
        assert_eq!(
            lara::noise_len(shape, count, lara::Proposals::Single),
            cp * c.d
        );
        let eps = randn(seed ^ 0xE95 ^ (ci as u64) << 20, cp * c.d);
        for weighting in WEIGHTINGS {
            for noise in [None, Some(&eps[..])] {
                check(Estimator::Lara {
                    params: lara::Params::segment_means(count, weighting),
                    noise,
                });
            }
        }
    }
    // LARA with caller-given landmarks (any count, even more than n).
    let given = 1 + (seed as usize % (n_min + 4));
    let q_bar = randn(seed ^ 0x0B1, given * c.d);
    let k_bar = randn(seed ^ 0x0B2, given * c.d);
    let eps = randn(seed ^ 0x0B3, given * c.d);
    for weighting in WEIGHTINGS {
        for noise in [None, Some(&eps[..])] {
            let landmarks = lara::Landmarks::Given {
                count: given,
                queries: &q_bar,
                keys: &k_bar,
            };
            check(Estimator::Lara {
                params: lara::Params::new(landmarks, weighting),
                noise,
            });
        }
    }

    // RA: every mean, eval and sampled.
    let eps = randn(seed ^ 0x4A, c.nq * c.d);
    let index = key_indices(seed ^ 0x1D, c.nq, c.nk);
    for noise in [None, Some(&eps[..])] {
        for mean in [
            ra::Mean::KeyAverage,
            ra::Mean::AttentionWeighted,
            ra::Mean::GivenKeys(&index),
        ] {
            check(Estimator::Ra { mean, noise });
        }
    }

    // RFA: a few feature counts, iid and orthogonal projections.
    let features: Vec<usize> = if thorough {
        vec![1, 1 + (seed as usize * 7) % 40, 64]
    } else {
        vec![3, 33]
    };
    for (fi, &s) in features.iter().enumerate() {
        let mut omega = vec![0.0f32; s * c.d];
        let mut rng = default_rng(seed ^ 0x0A ^ (fi as u64) << 24);
        if fi % 2 == 0 {
            gaussian_omega(&mut rng, s, c.d, &mut omega).unwrap();
        } else {
            orthogonal_omega(&mut rng, s, c.d, &mut omega).unwrap();
        }
        check(Estimator::Positive {
            omega: &omega,
            features: s,
        });
        check(Estimator::Trig {
            omega: &omega,
            features: s,
        });
    }
}

#[test]
fn reference_sweep_small_self_attention() {
    backend_from_env();
    // Every n from 1 to 40, every d from 1 to 20 (twice), d_v = d and d_v != d.
    let mut worst = Worst::default();
    for n in 1..=40usize {
        let d = 1 + (n - 1) % 20;
        let dv = if n % 2 == 0 { d } else { 1 + (n * 5) % 13 };
        check_case(case(n, n, d, dv), n as u64, true, &mut worst);
    }
    worst.report("small self");
}

#[test]
fn reference_sweep_small_cross_attention() {
    backend_from_env();
    // n_q != n_k, d_v != d; every d from 1 to 24 and every n_q from 1 to 40.
    let mut worst = Worst::default();
    for i in 1..=40usize {
        let nq = i;
        let nk = 1 + (i * 17) % 40;
        let d = 1 + (i * 7) % 24;
        let dv = 1 + (i * 11) % 19;
        check_case(case(nq, nk, d, dv), 1000 + i as u64, true, &mut worst);
    }
    worst.report("small cross");
}

fn sweep(name: &str, cases: &[Case], seed: u64) {
    let mut worst = Worst::default();
    for (i, &c) in cases.iter().enumerate() {
        check_case(c, seed + i as u64, false, &mut worst);
    }
    worst.report(name);
}

#[test]
fn reference_sweep_medium() {
    backend_from_env();
    let cases = [
        case(48, 48, 32, 32),
        case(63, 63, 31, 17),
        case(64, 64, 16, 16),
        case(65, 65, 33, 33),
        case(97, 97, 24, 40),
        case(100, 100, 8, 8),
        case(128, 128, 64, 64),
        case(129, 129, 47, 5),
        case(1, 300, 12, 12),
        case(300, 1, 12, 7),
        case(37, 129, 20, 9),
        case(130, 7, 9, 30),
    ];
    sweep("medium", &cases, 2000);
}

#[test]
fn reference_sweep_large() {
    backend_from_env();
    let cases = [
        case(200, 200, 80, 80),
        case(255, 255, 17, 3),
        case(300, 300, 40, 64),
        case(250, 61, 40, 80),
    ];
    sweep("large", &cases, 2100);
}
