//! Host-side property tests: every kernel against the independent float64 reference of
//! `tests/support/reference.rs` over many shapes, plus structural properties (convexity,
//! permutation invariance, landmark rules), dirty scratch, error handling, huge logits, RFA
//! convergence and the determinism of the sampled modes.

#[path = "support/backend_env.rs"]
mod backend_env;
#[path = "support/reference.rs"]
mod reference;

use backend_env::backend_from_env;
use lara_attn::random::{
    NoiseScale, default_rng, fill_standard_normal, gaussian_omega, orthogonal_omega,
};
use lara_attn::{Arg, Dim, Error, Shape, exact, lara, ra, random, rfa};
use reference::{Dims, Mis, RaMean};
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
// Inputs
// ---------------------------------------------------------------------------------------------

fn randn(seed: u64, len: usize) -> Vec<f32> {
    let mut x = vec![0.0f32; len];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x
}

fn scaled(x: &[f32], a: f32) -> Vec<f32> {
    x.iter().map(|&v| v * a).collect()
}

struct Inputs {
    shape: Shape,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
}

impl Inputs {
    /// `q, k ~ scale · N(0, 1)`, `v ~ N(0, 1)`.
    fn new(nq: usize, nk: usize, d: usize, dv: usize, seed: u64, scale: f32) -> Self {
        let seed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Inputs {
            shape: Shape::cross(nq, nk, d, dv),
            q: scaled(&randn(seed ^ 1, nq * d), scale),
            k: scaled(&randn(seed ^ 2, nk * d), scale),
            v: randn(seed ^ 3, nk * dv),
        }
    }

    fn dims(&self) -> Dims {
        Dims::new(
            self.shape.queries,
            self.shape.keys,
            self.shape.dim,
            self.shape.value_dim,
        )
    }
}

fn key_indices(seed: u64, nq: usize, nk: usize) -> Vec<u32> {
    use rand_core::RngCore;
    let mut rng = default_rng(seed);
    (0..nq).map(|_| rng.next_u32() % nk as u32).collect()
}

// ---------------------------------------------------------------------------------------------
// Kernels behind one interface
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Kernel<'a> {
    Exact,
    Lara {
        params: lara::Params<'a>,
        noise: Option<&'a [f32]>,
    },
    Ra {
        mean: ra::Mean<'a>,
        noise: Option<&'a [f32]>,
    },
    Positive {
        omega: &'a [f32],
        features: usize,
    },
    Trig {
        omega: &'a [f32],
        features: usize,
    },
}

impl Kernel<'_> {
    fn family(&self) -> &'static str {
        match self {
            Kernel::Exact => "exact",
            Kernel::Lara { .. } => "lara",
            Kernel::Ra { .. } => "ra",
            Kernel::Positive { .. } => "rfa_positive",
            Kernel::Trig { .. } => "rfa_trigonometric",
        }
    }

    fn tolerance(&self) -> f64 {
        match self {
            Kernel::Exact => TOL_EXACT,
            Kernel::Lara { .. } => TOL_LARA,
            Kernel::Ra { .. } => TOL_RA,
            Kernel::Positive { .. } => TOL_POSITIVE,
            Kernel::Trig { .. } => TOL_TRIG,
        }
    }

    fn label(&self) -> String {
        match self {
            Kernel::Exact => "exact".into(),
            Kernel::Lara { params, noise } => {
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
            Kernel::Ra { mean, noise } => {
                let m = match mean {
                    ra::Mean::KeyAverage => "ns=0",
                    ra::Mean::AttentionWeighted => "ns=-1",
                    ra::Mean::Keys(_) => "ns=1",
                };
                format!("ra {m} {}", if noise.is_some() { "noise" } else { "eval" })
            }
            Kernel::Positive { features, .. } => format!("rfa positive S={features}"),
            Kernel::Trig { features, .. } => format!("rfa trigonometric S={features}"),
        }
    }

    fn scratch_len(&self, shape: Shape) -> usize {
        match self {
            Kernel::Exact => exact::scratch_len(shape),
            Kernel::Lara { params, .. } => {
                let count = match params.landmarks {
                    lara::Landmarks::SegmentMeans(c) => c,
                    lara::Landmarks::Given { count, .. } => count,
                };
                lara::scratch_len(shape, count)
            }
            Kernel::Ra { .. } => ra::scratch_len(shape),
            Kernel::Positive { features, .. } => rfa::positive_scratch_len(shape, *features),
            Kernel::Trig { features, .. } => rfa::trigonometric_scratch_len(shape, *features),
        }
    }

    fn run(
        &self,
        shape: Shape,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        match *self {
            Kernel::Exact => exact::attention(shape, q, k, v, out, scratch),
            Kernel::Lara { params, noise } => {
                lara::attention(shape, &params, q, k, v, noise, out, scratch)
            }
            Kernel::Ra { mean, noise } => ra::attention(
                shape,
                mean,
                NoiseScale::Official,
                q,
                k,
                v,
                noise,
                out,
                scratch,
            ),
            Kernel::Positive { omega, features } => {
                rfa::positive(shape, omega, features, q, k, v, out, scratch)
            }
            Kernel::Trig { omega, features } => {
                rfa::trigonometric(shape, omega, features, q, k, v, out, scratch)
            }
        }
    }

    /// Runs with a zero-filled scratch of exactly `scratch_len` floats.
    fn eval(&self, shape: Shape, q: &[f32], k: &[f32], v: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; shape.queries * shape.value_dim];
        let mut scratch = vec![0.0f32; self.scratch_len(shape)];
        self.run(shape, q, k, v, &mut out, &mut scratch)
            .unwrap_or_else(|e| panic!("{} {shape:?}: {e}", self.label()));
        out
    }

    fn reference(&self, dims: Dims, q: &[f32], k: &[f32], v: &[f32]) -> Vec<f64> {
        match *self {
            Kernel::Exact => reference::softmax_attention(dims, q, k, v),
            Kernel::Lara { params, noise } => {
                let mis = mis_of(params.weighting);
                match params.landmarks {
                    lara::Landmarks::SegmentMeans(c) => {
                        reference::lara(dims, c, mis, q, k, v, noise)
                    }
                    lara::Landmarks::Given {
                        count,
                        queries,
                        keys,
                    } => reference::lara_given(dims, count, queries, keys, mis, q, k, v, noise),
                }
            }
            Kernel::Ra { mean, noise } => {
                let mean = match mean {
                    ra::Mean::KeyAverage => RaMean::KeyAverage,
                    ra::Mean::AttentionWeighted => RaMean::AttentionWeighted,
                    ra::Mean::Keys(j) => RaMean::Keys(j),
                };
                reference::ra(dims, mean, q, k, v, noise)
            }
            Kernel::Positive { omega, features } => {
                reference::performer(dims, omega, features, q, k, v)
            }
            Kernel::Trig { omega, features } => {
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
            Kernel::Trig { omega, features } => {
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

fn max_abs_diff(ours: &[f32], reference: &[f64]) -> f64 {
    ours.iter()
        .zip(reference)
        .map(|(&a, &b)| (a as f64 - b).abs())
        .fold(0.0, f64::max)
}

const WEIGHTINGS: [lara::Weighting; 5] = [
    lara::Weighting::Optimal { alpha_coeff: 1.0 },
    lara::Weighting::Optimal { alpha_coeff: 2.0 },
    lara::Weighting::Optimal { alpha_coeff: 0.5 },
    lara::Weighting::BalanceHeuristic,
    lara::Weighting::Biased,
];

// ---------------------------------------------------------------------------------------------
// Kernels against the reference over a sweep of shapes
// ---------------------------------------------------------------------------------------------

/// The worst error (in units of the bound) seen per kernel family, for the report.
#[derive(Default)]
struct Worst(BTreeMap<&'static str, (f64, String, usize)>);

impl Worst {
    fn record(&mut self, kernel: &Kernel, dims: Dims, err: f64) {
        let entry = self
            .0
            .entry(kernel.family())
            .or_insert((0.0, String::new(), 0));
        entry.2 += 1;
        if err > entry.0 {
            entry.0 = err;
            entry.1 = format!("{} {dims:?}", kernel.label());
        }
    }

    fn report(&self, test: &str) {
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

/// Checks every kernel on one shape. `thorough` sweeps more landmark counts and features.
fn check_case(c: Case, seed: u64, thorough: bool, worst: &mut Worst) {
    let scale = [1.0, 0.5, 1.5][(seed % 3) as usize];
    let inputs = Inputs::new(c.nq, c.nk, c.d, c.dv, seed, scale);
    let dims = inputs.dims();
    let (q, k, v) = (&inputs.q[..], &inputs.k[..], &inputs.v[..]);
    let shape = inputs.shape;

    let mut check = |kernel: Kernel| {
        let ours = kernel.eval(shape, q, k, v);
        let err = kernel.error(dims, q, k, v, &ours);
        worst.record(&kernel, dims, err);
        assert!(
            err <= kernel.tolerance(),
            "{} {dims:?} seed {seed}: error {err:.3e} > {:.1e}",
            kernel.label(),
            kernel.tolerance()
        );
    };

    check(Kernel::Exact);

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
                check(Kernel::Lara {
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
            check(Kernel::Lara {
                params: lara::Params {
                    landmarks: lara::Landmarks::Given {
                        count: given,
                        queries: &q_bar,
                        keys: &k_bar,
                    },
                    weighting,
                    ..Default::default()
                },
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
            ra::Mean::Keys(&index),
        ] {
            check(Kernel::Ra { mean, noise });
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
        check(Kernel::Positive {
            omega: &omega,
            features: s,
        });
        check(Kernel::Trig {
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

// ---------------------------------------------------------------------------------------------
// Scratch
// ---------------------------------------------------------------------------------------------

/// A representative list of kernels over the given inputs (all families, all modes).
#[allow(clippy::too_many_arguments)]
fn all_kernels<'a>(
    shape: Shape,
    lara_noise: &'a [Vec<f32>],
    ra_noise: &'a [f32],
    index: &'a [u32],
    omega: &'a [f32],
    features: usize,
    counts: &[usize],
    given: (usize, &'a [f32], &'a [f32]),
) -> Vec<Kernel<'a>> {
    let mut kernels = vec![Kernel::Exact];
    for (ci, &count) in counts.iter().enumerate() {
        assert_eq!(
            lara_noise[ci].len(),
            lara::noise_len(shape, count, lara::Proposals::Single)
        );
        for weighting in WEIGHTINGS {
            for noise in [None, Some(&lara_noise[ci][..])] {
                kernels.push(Kernel::Lara {
                    params: lara::Params::segment_means(count, weighting),
                    noise,
                });
            }
        }
    }
    for weighting in WEIGHTINGS {
        kernels.push(Kernel::Lara {
            params: lara::Params {
                landmarks: lara::Landmarks::Given {
                    count: given.0,
                    queries: given.1,
                    keys: given.2,
                },
                weighting,
                ..Default::default()
            },
            noise: None,
        });
    }
    for noise in [None, Some(ra_noise)] {
        for mean in [
            ra::Mean::KeyAverage,
            ra::Mean::AttentionWeighted,
            ra::Mean::Keys(index),
        ] {
            kernels.push(Kernel::Ra { mean, noise });
        }
    }
    kernels.push(Kernel::Positive { omega, features });
    kernels.push(Kernel::Trig { omega, features });
    kernels
}

/// Everything `all_kernels` borrows, owned.
struct KernelInputs {
    counts: Vec<usize>,
    lara_noise: Vec<Vec<f32>>,
    ra_noise: Vec<f32>,
    index: Vec<u32>,
    omega: Vec<f32>,
    features: usize,
    given: usize,
    q_bar: Vec<f32>,
    k_bar: Vec<f32>,
}

impl KernelInputs {
    fn new(shape: Shape, counts: &[usize], features: usize, seed: u64) -> Self {
        let d = shape.dim;
        let mut omega = vec![0.0f32; features * d];
        orthogonal_omega(&mut default_rng(seed ^ 0x0E), features, d, &mut omega).unwrap();
        let given = 1 + seed as usize % 5;
        KernelInputs {
            counts: counts.to_vec(),
            lara_noise: counts
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    randn(
                        seed ^ 0x100 ^ i as u64,
                        lara::noise_len(shape, c, lara::Proposals::Single),
                    )
                })
                .collect(),
            ra_noise: randn(seed ^ 0x200, shape.queries * d),
            index: key_indices(seed ^ 0x300, shape.queries, shape.keys),
            omega,
            features,
            given,
            q_bar: randn(seed ^ 0x400, given * d),
            k_bar: randn(seed ^ 0x500, given * d),
        }
    }

    fn kernels(&self, shape: Shape) -> Vec<Kernel<'_>> {
        all_kernels(
            shape,
            &self.lara_noise,
            &self.ra_noise,
            &self.index,
            &self.omega,
            self.features,
            &self.counts,
            (self.given, &self.q_bar, &self.k_bar),
        )
    }
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn dirty_and_oversized_scratch_give_identical_output() {
    backend_from_env();
    for (i, &(nq, nk, d, dv)) in [
        (1, 1, 1, 1),
        (7, 7, 5, 3),
        (33, 33, 16, 16),
        (40, 70, 9, 13),
        (65, 3, 17, 4),
    ]
    .iter()
    .enumerate()
    {
        let inputs = Inputs::new(nq, nk, d, dv, 77 + i as u64, 1.0);
        let shape = inputs.shape;
        let n_min = nq.min(nk);
        let ki = KernelInputs::new(shape, &[1, 3, n_min, n_min + 2], 9, 5 + i as u64);
        for kernel in ki.kernels(shape) {
            let len = kernel.scratch_len(shape);
            let clean = kernel.eval(shape, &inputs.q, &inputs.k, &inputs.v);
            for (fill, extra) in [
                (f32::NAN, 0),
                (f32::NAN, 37),
                (f32::INFINITY, 1),
                (-3.0e38, 0),
            ] {
                let mut out = vec![fill; nq * dv];
                let mut scratch = vec![fill; len + extra];
                kernel
                    .run(
                        shape,
                        &inputs.q,
                        &inputs.k,
                        &inputs.v,
                        &mut out,
                        &mut scratch,
                    )
                    .unwrap();
                assert_eq!(
                    bits(&out),
                    bits(&clean),
                    "{} {shape:?}: scratch filled with {fill}, {extra} extra",
                    kernel.label()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Structural properties
// ---------------------------------------------------------------------------------------------

/// Every output coordinate lies in `[min_j v[j][c] − slack, max_j v[j][c] + slack]`, with the
/// interval widened to include 0 when `with_zero` (a clamped denominator).
fn assert_convex(label: &str, shape: Shape, v: &[f32], out: &[f32], with_zero: bool) {
    let dv = shape.value_dim;
    let vmax_abs = v.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
    let slack = 1e-6 * vmax_abs;
    for c in 0..dv {
        let column = v.chunks_exact(dv).map(|row| row[c]);
        let (mut lo, mut hi) = column.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
        if with_zero {
            lo = lo.min(0.0);
            hi = hi.max(0.0);
        }
        for (i, row) in out.chunks_exact(dv).enumerate() {
            let x = row[c];
            assert!(
                x.is_finite() && x >= lo - slack && x <= hi + slack,
                "{label} {shape:?}: out[{i}][{c}] = {x} outside [{lo}, {hi}]"
            );
        }
    }
}

#[test]
fn outputs_are_convex_combinations_of_values() {
    backend_from_env();
    for (i, &(nq, nk, d, dv, scale)) in [
        (1, 1, 1, 1, 1.0),
        (5, 9, 3, 2, 2.0),
        (17, 17, 8, 8, 1.0),
        (50, 31, 13, 7, 3.0),
        (100, 100, 8, 8, 1.0),
        (64, 128, 32, 5, 0.3),
    ]
    .iter()
    .enumerate()
    {
        let inputs = Inputs::new(nq, nk, d, dv, 300 + i as u64, scale);
        let shape = inputs.shape;
        let n_min = nq.min(nk);
        let ki = KernelInputs::new(shape, &[1, 4, 8, n_min], 16, 31 + i as u64);
        for kernel in ki.kernels(shape) {
            let out = kernel.eval(shape, &inputs.q, &inputs.k, &inputs.v);
            // Trigonometric features can be negative: no convexity.
            match kernel {
                Kernel::Trig { .. } => {}
                Kernel::Positive { .. } => {
                    assert_convex(&kernel.label(), shape, &inputs.v, &out, true)
                }
                _ => assert_convex(&kernel.label(), shape, &inputs.v, &out, false),
            }
        }
    }
}

/// Permutes the rows of `x [rows, cols]`: row `i` of the result is row `perm[i]` of `x`.
fn permute_rows(x: &[f32], cols: usize, perm: &[usize]) -> Vec<f32> {
    perm.iter()
        .flat_map(|&p| x[p * cols..(p + 1) * cols].iter().copied())
        .collect()
}

fn random_permutation(n: usize, seed: u64) -> Vec<usize> {
    use rand_core::RngCore;
    let mut rng = default_rng(seed);
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u32() as usize) % (i + 1);
        perm.swap(i, j);
    }
    perm
}

/// Reassociation tolerance of the permutation tests: `max|a − b| ≤ TOL_PERM · max(1, max|a|)`.
const TOL_PERM: f64 = 1e-5;

#[test]
fn key_permutation_invariance() {
    backend_from_env();
    let mut worst = Worst::default();
    for (i, &(nq, nk, d, dv)) in [
        (1, 2, 1, 1),
        (7, 7, 5, 3),
        (20, 33, 16, 9),
        (64, 64, 8, 8),
        (13, 100, 24, 30),
        (90, 45, 7, 2),
    ]
    .iter()
    .enumerate()
    {
        // Trigonometric features are only well conditioned on small logits.
        for scale in [1.0f32, 0.4] {
            let inputs = Inputs::new(nq, nk, d, dv, 500 + i as u64, scale);
            let shape = inputs.shape;
            let perm = random_permutation(nk, 600 + i as u64);
            let k_perm = permute_rows(&inputs.k, d, &perm);
            let v_perm = permute_rows(&inputs.v, dv, &perm);
            let features = 24;
            let mut omega_iid = vec![0.0f32; features * d];
            gaussian_omega(&mut default_rng(i as u64), features, d, &mut omega_iid).unwrap();
            let mut omega_orth = vec![0.0f32; features * d];
            orthogonal_omega(&mut default_rng(i as u64), features, d, &mut omega_orth).unwrap();
            let mut kernels = vec![
                Kernel::Exact,
                Kernel::Ra {
                    mean: ra::Mean::KeyAverage,
                    noise: None,
                },
                Kernel::Ra {
                    mean: ra::Mean::AttentionWeighted,
                    noise: None,
                },
            ];
            for omega in [&omega_iid[..], &omega_orth[..]] {
                kernels.push(Kernel::Positive { omega, features });
                if scale < 1.0 {
                    kernels.push(Kernel::Trig { omega, features });
                }
            }
            for kernel in kernels {
                let a = kernel.eval(shape, &inputs.q, &inputs.k, &inputs.v);
                let b = kernel.eval(shape, &inputs.q, &k_perm, &v_perm);
                let a64: Vec<f64> = a.iter().map(|&x| x as f64).collect();
                let scale = a64.iter().fold(1.0f64, |m, &x| m.max(x.abs()));
                let err = max_abs_diff(&b, &a64) / scale;
                worst.record(&kernel, inputs.dims(), err);
                assert!(
                    err <= TOL_PERM,
                    "{} {shape:?}: permuting the keys changed the output by {err:.3e}",
                    kernel.label()
                );
            }
        }
    }
    worst.report("key permutation");
}

#[test]
fn lara_enough_landmarks_means_one_per_token() {
    backend_from_env();
    // C >= n: C' = n, every token its own landmark; C = n and C = n + 5 (or any larger C)
    // give bit-identical output, equal to the landmarks q̄ = q, k̄ = k given explicitly.
    for n in 1..=12usize {
        for &(d, dv) in &[(1usize, 1usize), (3, 5), (8, 8)] {
            let inputs = Inputs::new(n, n, d, dv, 700 + n as u64, 1.0);
            let shape = inputs.shape;
            assert_eq!(lara::effective_landmarks(shape, n), n);
            assert_eq!(lara::effective_landmarks(shape, n + 5), n);
            assert_eq!(
                lara::noise_len(shape, n + 5, lara::Proposals::Single),
                n * d
            );
            let eps = randn(800 + n as u64, n * d);
            for weighting in WEIGHTINGS {
                for noise in [None, Some(&eps[..])] {
                    let run = |params: lara::Params| {
                        Kernel::Lara { params, noise }.eval(shape, &inputs.q, &inputs.k, &inputs.v)
                    };
                    let at_n = run(lara::Params::segment_means(n, weighting));
                    for more in [n + 1, n + 5, 1000] {
                        assert_eq!(
                            bits(&at_n),
                            bits(&run(lara::Params::segment_means(more, weighting))),
                            "n {n} d {d}: C = {n} vs C = {more}, {weighting:?}"
                        );
                    }
                    let given = run(lara::Params {
                        landmarks: lara::Landmarks::Given {
                            count: n,
                            queries: &inputs.q,
                            keys: &inputs.k,
                        },
                        weighting,
                        ..Default::default()
                    });
                    assert_eq!(
                        bits(&at_n),
                        bits(&given),
                        "n {n} d {d}: C >= n vs given q̄ = q, k̄ = k, {weighting:?}"
                    );
                }
            }
        }
    }
    // Cross-attention: C' = min(C, n_q, n_k).
    let shape = Shape::cross(5, 9, 3, 2);
    assert_eq!(lara::effective_landmarks(shape, 7), 5);
    assert_eq!(lara::effective_landmarks(shape, 4), 4);
    let shape = Shape::cross(11, 6, 3, 2);
    assert_eq!(lara::effective_landmarks(shape, 100), 6);
    let inputs = Inputs::new(11, 6, 3, 2, 900, 1.0);
    let run = |c| {
        Kernel::Lara {
            params: lara::Params::segment_means(c, WEIGHTINGS[0]),
            noise: None,
        }
        .eval(shape, &inputs.q, &inputs.k, &inputs.v)
    };
    assert_eq!(bits(&run(6)), bits(&run(7)));
    assert_eq!(bits(&run(6)), bits(&run(60)));
}

/// Rows `x[r] = [r, 10 r, …]` (exact in f32), so segment means are exact.
fn index_rows(rows: usize, dim: usize) -> Vec<f32> {
    (0..rows)
        .flat_map(|r| (0..dim).map(move |c| (r * (1 + 3 * c)) as f32))
        .collect()
}

#[test]
fn lara_segment_means_split() {
    backend_from_env();
    // Even split n = C·g, and the official uneven split (first segments shorter).
    let dim = 3;
    for c in 1..=9usize {
        for g in 1..=7usize {
            let n = c * g;
            let x = index_rows(n, dim);
            let mut out = vec![0.0f32; c * dim];
            lara::segment_means(&x, n, dim, c, &mut out).unwrap();
            for seg in 0..c {
                // mean of rows seg·g .. (seg+1)·g − 1 is seg·g + (g − 1)/2
                let mean_row = seg as f64 * g as f64 + (g as f64 - 1.0) / 2.0;
                for col in 0..dim {
                    let expected = mean_row * (1 + 3 * col) as f64;
                    let got = out[seg * dim + col] as f64;
                    assert!(
                        (got - expected).abs() <= 1e-6 * expected.max(1.0),
                        "n {n} C {c}: segment {seg} col {col}: {got} vs {expected}"
                    );
                }
            }
        }
    }
    // FORMULAS examples: n = 7, C = 4 → {0}, {1,2}, {3,4}, {5,6}; n = 100, C = 8 → 4×12, 4×13.
    assert_eq!(
        reference::segment_ranges(7, 4),
        vec![(0, 1), (1, 3), (3, 5), (5, 7)]
    );
    let ranges = reference::segment_ranges(100, 8);
    let lens: Vec<usize> = ranges.iter().map(|(a, b)| b - a).collect();
    assert_eq!(lens, vec![12, 12, 12, 12, 13, 13, 13, 13]);
    // The crate's segment means against the reference split for every n ≤ 60 and C ≤ n.
    for n in 1..=60usize {
        let x = index_rows(n, dim);
        for c in 1..=n {
            let mut out = vec![0.0f32; c * dim];
            lara::segment_means(&x, n, dim, c, &mut out).unwrap();
            for (seg, &(a, b)) in reference::segment_ranges(n, c).iter().enumerate() {
                let mean_row = (a + b - 1) as f64 / 2.0;
                for col in 0..dim {
                    let expected = mean_row * (1 + 3 * col) as f64;
                    let got = out[seg * dim + col] as f64;
                    assert!(
                        (got - expected).abs() <= 1e-6 * expected.max(1.0),
                        "n {n} C {c}: segment {seg} [{a}, {b}) col {col}: {got} vs {expected}"
                    );
                }
            }
        }
    }
    // LARA with C segment means equals LARA given those means as landmarks.
    for &(n, c) in &[(12usize, 4usize), (100, 8), (7, 4), (64, 16)] {
        let inputs = Inputs::new(n, n, 6, 5, 1100 + n as u64, 1.0);
        let shape = inputs.shape;
        let mut q_bar = vec![0.0f32; c * 6];
        let mut k_bar = vec![0.0f32; c * 6];
        lara::segment_means(&inputs.q, n, 6, c, &mut q_bar).unwrap();
        lara::segment_means(&inputs.k, n, 6, c, &mut k_bar).unwrap();
        for weighting in WEIGHTINGS {
            let a = Kernel::Lara {
                params: lara::Params::segment_means(c, weighting),
                noise: None,
            }
            .eval(shape, &inputs.q, &inputs.k, &inputs.v);
            let b = Kernel::Lara {
                params: lara::Params {
                    landmarks: lara::Landmarks::Given {
                        count: c,
                        queries: &q_bar,
                        keys: &k_bar,
                    },
                    weighting,
                    ..Default::default()
                },
                noise: None,
            }
            .eval(shape, &inputs.q, &inputs.k, &inputs.v);
            assert_eq!(bits(&a), bits(&b), "n {n} C {c} {weighting:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RFA converges to exact attention
// ---------------------------------------------------------------------------------------------

/// Mean over seeds of `max|rfa − exact| / max|exact|` for positive features.
fn rfa_mean_error(features: usize, orthogonal: bool, seeds: u64) -> f64 {
    let (n, d, dv) = (24, 8, 4);
    let mut total = 0.0;
    for seed in 0..seeds {
        let inputs = Inputs::new(n, n, d, dv, 1300 + seed, 0.3);
        let shape = inputs.shape;
        let exact = Kernel::Exact.eval(shape, &inputs.q, &inputs.k, &inputs.v);
        let mut omega = vec![0.0f32; features * d];
        let mut rng = default_rng(1400 + seed);
        if orthogonal {
            orthogonal_omega(&mut rng, features, d, &mut omega).unwrap();
        } else {
            gaussian_omega(&mut rng, features, d, &mut omega).unwrap();
        }
        let est = Kernel::Positive {
            omega: &omega,
            features,
        }
        .eval(shape, &inputs.q, &inputs.k, &inputs.v);
        let exact64: Vec<f64> = exact.iter().map(|&x| x as f64).collect();
        let scale = exact64.iter().fold(0.0f64, |m, &x| m.max(x.abs()));
        total += max_abs_diff(&est, &exact64) / scale;
    }
    total / seeds as f64
}

/// Relative error bound of positive RFA at S = 2048 on small logits.
const TOL_RFA_CONVERGED: f64 = 0.05;

#[test]
fn rfa_positive_converges_to_exact_attention() {
    backend_from_env();
    for orthogonal in [false, true] {
        let errors: Vec<f64> = [16usize, 256, 2048]
            .iter()
            .map(|&s| rfa_mean_error(s, orthogonal, 6))
            .collect();
        println!(
            "rfa positive, orthogonal {orthogonal}: mean rel. error at S = 16, 256, 2048: {errors:.4?}"
        );
        assert!(
            errors[0] > errors[1] && errors[1] > errors[2],
            "orthogonal {orthogonal}: error does not decrease with S: {errors:?}"
        );
        // Monte-Carlo rate S^-1/2: 128× more features, at least 4× smaller error.
        assert!(
            errors[2] * 4.0 < errors[0],
            "orthogonal {orthogonal}: {errors:?}"
        );
        assert!(
            errors[2] < TOL_RFA_CONVERGED,
            "orthogonal {orthogonal}: error at S = 2048 is {}",
            errors[2]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Huge logits
// ---------------------------------------------------------------------------------------------

#[test]
fn huge_logits_stay_finite_and_convex() {
    backend_from_env();
    // q, k ~ 100 · N(0, 1) in d = 8: logits s·q·k of order ±1e4.
    for (i, &(nq, nk, d, dv)) in [(9, 9, 8, 3), (40, 23, 8, 8), (100, 100, 8, 5)]
        .iter()
        .enumerate()
    {
        let inputs = Inputs::new(nq, nk, d, dv, 1500 + i as u64, 100.0);
        let shape = inputs.shape;
        let logits = reference::scaled_scores(
            inputs.dims(),
            &reference::Mat::from_f32(&inputs.q, nq, d),
            &reference::Mat::from_f32(&inputs.k, nk, d),
        );
        let max_logit = logits.data.iter().fold(0.0f64, |m, &x| m.max(x.abs()));
        assert!(max_logit > 1e4, "max logit {max_logit}");
        let n_min = nq.min(nk);
        let ki = KernelInputs::new(shape, &[1, 3, 8, n_min], 4, 1600 + i as u64);
        for kernel in ki.kernels(shape) {
            if matches!(kernel, Kernel::Positive { .. } | Kernel::Trig { .. }) {
                continue;
            }
            let out = kernel.eval(shape, &inputs.q, &inputs.k, &inputs.v);
            assert_convex(&kernel.label(), shape, &inputs.v, &out, false);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sampled modes
// ---------------------------------------------------------------------------------------------

fn lara_sampled(inputs: &Inputs, params: &lara::Params, seed: u64) -> Vec<f32> {
    let shape = inputs.shape;
    let count = match params.landmarks {
        lara::Landmarks::SegmentMeans(c) => c,
        lara::Landmarks::Given { count, .. } => count,
    };
    let mut out = vec![0.0f32; shape.queries * shape.value_dim];
    let mut scratch = vec![0.0f32; lara::scratch_len(shape, count)];
    lara::attention_sampled(
        shape,
        params,
        &inputs.q,
        &inputs.k,
        &inputs.v,
        &mut default_rng(seed),
        &mut out,
        &mut scratch,
    )
    .unwrap();
    out
}

fn ra_sampled(inputs: &Inputs, mean: ra::SampledMean, seed: u64) -> Vec<f32> {
    let shape = inputs.shape;
    let mut out = vec![0.0f32; shape.queries * shape.value_dim];
    let mut scratch = vec![0.0f32; ra::scratch_len(shape)];
    ra::attention_sampled(
        shape,
        mean,
        NoiseScale::Official,
        &inputs.q,
        &inputs.k,
        &inputs.v,
        &mut default_rng(seed),
        &mut out,
        &mut scratch,
    )
    .unwrap();
    out
}

#[test]
fn lara_sampled_is_deterministic_per_seed() {
    backend_from_env();
    for &(nq, nk, d, dv, c) in &[
        (16usize, 16usize, 4usize, 4usize, 4usize),
        (37, 50, 7, 3, 5),
        (5, 5, 3, 2, 8),
    ] {
        let inputs = Inputs::new(nq, nk, d, dv, 1700 + nq as u64, 1.0);
        let shape = inputs.shape;
        for weighting in WEIGHTINGS {
            let params = lara::Params::segment_means(c, weighting);
            let a = lara_sampled(&inputs, &params, 42);
            let b = lara_sampled(&inputs, &params, 42);
            let other = lara_sampled(&inputs, &params, 43);
            assert_eq!(bits(&a), bits(&b), "{shape:?} {weighting:?}: same seed");
            assert_ne!(
                bits(&a),
                bits(&other),
                "{shape:?} {weighting:?}: different seeds"
            );
            assert_convex("lara sampled", shape, &inputs.v, &a, false);
            // The draws are eps [C', d] ~ N(0, I) in row-major order: the same as the eval API
            // with that noise.
            let mut eps = vec![0.0f32; lara::noise_len(shape, c, lara::Proposals::Single)];
            fill_standard_normal(&mut default_rng(42), &mut eps);
            let given = Kernel::Lara {
                params,
                noise: Some(&eps),
            }
            .eval(shape, &inputs.q, &inputs.k, &inputs.v);
            assert_eq!(
                bits(&a),
                bits(&given),
                "{shape:?} {weighting:?}: sampled vs given eps"
            );
        }
    }
}

#[test]
fn ra_sampled_is_deterministic_per_seed() {
    backend_from_env();
    for &(nq, nk, d, dv) in &[
        (16usize, 16usize, 4usize, 4usize),
        (37, 50, 7, 3),
        (3, 1, 1, 2),
    ] {
        let inputs = Inputs::new(nq, nk, d, dv, 1800 + nq as u64, 1.0);
        let shape = inputs.shape;
        for mean in [
            ra::SampledMean::KeyAverage,
            ra::SampledMean::AttentionWeighted,
            ra::SampledMean::Key,
        ] {
            let a = ra_sampled(&inputs, mean, 42);
            let b = ra_sampled(&inputs, mean, 42);
            let other = ra_sampled(&inputs, mean, 43);
            assert_eq!(bits(&a), bits(&b), "{shape:?} {mean:?}: same seed");
            if nk > 1 {
                assert_ne!(
                    bits(&a),
                    bits(&other),
                    "{shape:?} {mean:?}: different seeds"
                );
            }
            assert_convex("ra sampled", shape, &inputs.v, &a, false);

            // Replay the documented draw order (per query: J_i from one uniform, then eps_i
            // [d] in row order) and compare with the eval API fed the same eps and J.
            let mut rng = default_rng(42);
            let mut eps = vec![0.0f32; nq * d];
            let mut index = vec![0u32; nq];
            let mut near_boundary = vec![false; nq];
            let dims = inputs.dims();
            let qm = reference::Mat::from_f32(&inputs.q, nq, d);
            let km = reference::Mat::from_f32(&inputs.k, nk, d);
            let scores = reference::scaled_scores(dims, &qm, &km);
            for i in 0..nq {
                if mean == ra::SampledMean::Key {
                    let u = random::uniform(&mut rng) as f64;
                    let pi = reference::softmax(scores.row(i));
                    let mut cumulative = 0.0;
                    index[i] = (nk - 1) as u32;
                    for (j, &p) in pi.iter().enumerate() {
                        if (u - cumulative).abs() < 1e-5 || (u - cumulative - p).abs() < 1e-5 {
                            near_boundary[i] = true;
                        }
                        cumulative += p;
                        if u < cumulative {
                            index[i] = j as u32;
                            break;
                        }
                    }
                }
                fill_standard_normal(&mut rng, &mut eps[i * d..(i + 1) * d]);
            }
            let eval_mean = match mean {
                ra::SampledMean::KeyAverage => ra::Mean::KeyAverage,
                ra::SampledMean::AttentionWeighted => ra::Mean::AttentionWeighted,
                ra::SampledMean::Key => ra::Mean::Keys(&index),
            };
            let given = Kernel::Ra {
                mean: eval_mean,
                noise: Some(&eps),
            }
            .eval(shape, &inputs.q, &inputs.k, &inputs.v);
            for i in 0..nq {
                if near_boundary[i] {
                    continue;
                }
                assert_eq!(
                    bits(&a[i * dv..(i + 1) * dv]),
                    bits(&given[i * dv..(i + 1) * dv]),
                    "{shape:?} {mean:?}: row {i} sampled vs replayed draws"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Error handling: every variant reachable through the slice API, buffers untouched
// ---------------------------------------------------------------------------------------------

const SENTINEL: f32 = -7777.25;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Which {
    Exact,
    Lara,
    LaraSampled,
    Ra(u8),
    RaSampled,
    Positive,
    Trig,
}

#[derive(Clone, Debug)]
struct Args {
    shape: Shape,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    out_len: usize,
    scratch_len: usize,
    landmarks: usize,
    weighting: lara::Weighting,
    given: Option<(usize, Vec<f32>, Vec<f32>)>,
    noise: Option<Vec<f32>>,
    index: Vec<u32>,
    omega: Vec<f32>,
    features: usize,
}

impl Args {
    fn valid(which: Which, shape: Shape) -> Self {
        let (nq, nk, d, dv) = (shape.queries, shape.keys, shape.dim, shape.value_dim);
        let landmarks = 3;
        let features = 5;
        let noise = match which {
            Which::Lara => Some(randn(
                1,
                lara::noise_len(shape, landmarks, lara::Proposals::Single),
            )),
            Which::Ra(_) => Some(randn(2, nq * d)),
            _ => None,
        };
        let scratch_len = match which {
            Which::Exact => exact::scratch_len(shape),
            Which::Lara | Which::LaraSampled => lara::scratch_len(shape, landmarks),
            Which::Ra(_) | Which::RaSampled => ra::scratch_len(shape),
            Which::Positive => rfa::positive_scratch_len(shape, features),
            Which::Trig => rfa::trigonometric_scratch_len(shape, features),
        };
        Args {
            shape,
            q: randn(3, nq * d),
            k: randn(4, nk * d),
            v: randn(5, nk * dv),
            out_len: nq * dv,
            scratch_len,
            landmarks,
            weighting: lara::Weighting::Optimal { alpha_coeff: 1.0 },
            given: None,
            noise,
            index: key_indices(6, nq, nk.max(1)),
            omega: randn(7, features * d),
            features,
        }
    }

    /// Calls the kernel with sentinel-filled output and scratch; returns the result and
    /// whether both buffers are still all sentinel.
    fn call(&self, which: Which) -> (Result<(), Error>, bool) {
        let mut out = vec![SENTINEL; self.out_len];
        let mut scratch = vec![SENTINEL; self.scratch_len];
        let shape = self.shape;
        let (q, k, v) = (&self.q[..], &self.k[..], &self.v[..]);
        let params = match &self.given {
            None => lara::Params::segment_means(self.landmarks, self.weighting),
            Some((count, qb, kb)) => lara::Params {
                landmarks: lara::Landmarks::Given {
                    count: *count,
                    queries: qb,
                    keys: kb,
                },
                weighting: self.weighting,
                ..Default::default()
            },
        };
        let result = match which {
            Which::Exact => exact::attention(shape, q, k, v, &mut out, &mut scratch),
            Which::Lara => lara::attention(
                shape,
                &params,
                q,
                k,
                v,
                self.noise.as_deref(),
                &mut out,
                &mut scratch,
            ),
            Which::LaraSampled => lara::attention_sampled(
                shape,
                &params,
                q,
                k,
                v,
                &mut default_rng(1),
                &mut out,
                &mut scratch,
            ),
            Which::Ra(m) => {
                let mean = match m {
                    0 => ra::Mean::KeyAverage,
                    1 => ra::Mean::AttentionWeighted,
                    _ => ra::Mean::Keys(&self.index),
                };
                ra::attention(
                    shape,
                    mean,
                    NoiseScale::Official,
                    q,
                    k,
                    v,
                    self.noise.as_deref(),
                    &mut out,
                    &mut scratch,
                )
            }
            Which::RaSampled => ra::attention_sampled(
                shape,
                ra::SampledMean::Key,
                NoiseScale::Official,
                q,
                k,
                v,
                &mut default_rng(1),
                &mut out,
                &mut scratch,
            ),
            Which::Positive => rfa::positive(
                shape,
                &self.omega,
                self.features,
                q,
                k,
                v,
                &mut out,
                &mut scratch,
            ),
            Which::Trig => rfa::trigonometric(
                shape,
                &self.omega,
                self.features,
                q,
                k,
                v,
                &mut out,
                &mut scratch,
            ),
        };
        let untouched = out
            .iter()
            .chain(scratch.iter())
            .all(|x| x.to_bits() == SENTINEL.to_bits());
        (result, untouched)
    }

    fn expect(&self, which: Which, expected: Error, what: &str) {
        let (result, untouched) = self.call(which);
        assert_eq!(result, Err(expected), "{which:?}: {what}");
        assert!(
            untouched,
            "{which:?}: {what}: output or scratch was written"
        );
    }
}

const ALL_WHICH: [Which; 9] = [
    Which::Exact,
    Which::Lara,
    Which::LaraSampled,
    Which::Ra(0),
    Which::Ra(1),
    Which::Ra(2),
    Which::RaSampled,
    Which::Positive,
    Which::Trig,
];

#[test]
fn errors_common_to_every_kernel() {
    backend_from_env();
    let shape = Shape::cross(6, 7, 4, 3);
    for which in ALL_WHICH {
        let base = Args::valid(which, shape);
        let (ok, _) = base.call(which);
        assert_eq!(ok, Ok(()), "{which:?}: valid arguments rejected");

        // ZeroDimension for each dimension (slices sized for the zero shape).
        for (zero, dim) in [
            (Shape::cross(0, 7, 4, 3), Dim::Queries),
            (Shape::cross(6, 0, 4, 3), Dim::Keys),
            (Shape::cross(6, 7, 0, 3), Dim::Model),
            (Shape::cross(6, 7, 4, 0), Dim::Value),
        ] {
            let mut args = Args::valid(which, zero);
            args.scratch_len = base.scratch_len;
            args.expect(which, Error::ZeroDimension(dim), &format!("{zero:?}"));
        }

        // LengthMismatch for q, k, v, out: one too short and one too long.
        for delta in [-1isize, 1] {
            let resize = |x: &mut Vec<f32>| {
                let len = (x.len() as isize + delta) as usize;
                x.resize(len, 0.5);
                len
            };
            let mut a = base.clone();
            let actual = resize(&mut a.q);
            a.expect(
                which,
                Error::LengthMismatch {
                    arg: Arg::Queries,
                    expected: 24,
                    actual,
                },
                "q length",
            );
            let mut a = base.clone();
            let actual = resize(&mut a.k);
            a.expect(
                which,
                Error::LengthMismatch {
                    arg: Arg::Keys,
                    expected: 28,
                    actual,
                },
                "k length",
            );
            let mut a = base.clone();
            let actual = resize(&mut a.v);
            a.expect(
                which,
                Error::LengthMismatch {
                    arg: Arg::Values,
                    expected: 21,
                    actual,
                },
                "v length",
            );
            let mut a = base.clone();
            a.out_len = (a.out_len as isize + delta) as usize;
            a.expect(
                which,
                Error::LengthMismatch {
                    arg: Arg::Output,
                    expected: 18,
                    actual: a.out_len,
                },
                "out length",
            );
        }

        // NonFinite for q, k, v: NaN, +inf, -inf, first and last element.
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for first in [true, false] {
                let poison = |x: &mut Vec<f32>| {
                    let at = if first { 0 } else { x.len() - 1 };
                    x[at] = bad;
                };
                let mut a = base.clone();
                poison(&mut a.q);
                a.expect(which, Error::NonFinite(Arg::Queries), &format!("q {bad}"));
                let mut a = base.clone();
                poison(&mut a.k);
                a.expect(which, Error::NonFinite(Arg::Keys), &format!("k {bad}"));
                let mut a = base.clone();
                poison(&mut a.v);
                a.expect(which, Error::NonFinite(Arg::Values), &format!("v {bad}"));
            }
        }

        // ScratchTooSmall: one short, and empty.
        for actual in [base.scratch_len - 1, 0] {
            let mut a = base.clone();
            a.scratch_len = actual;
            a.expect(
                which,
                Error::ScratchTooSmall {
                    needed: base.scratch_len,
                    actual,
                },
                "scratch",
            );
        }

        // SizeOverflow: n_q · d does not fit in usize.
        let mut a = base.clone();
        a.shape = Shape::cross(usize::MAX / 2 + 1, 7, 4, 3);
        a.expect(which, Error::SizeOverflow, "huge shape");
    }
}

#[test]
fn errors_lara() {
    backend_from_env();
    let shape = Shape::cross(6, 7, 4, 3);
    for which in [Which::Lara, Which::LaraSampled] {
        let base = Args::valid(which, shape);
        // ZeroLandmarks: segment means and given.
        let mut a = base.clone();
        a.landmarks = 0;
        a.expect(which, Error::ZeroLandmarks, "C = 0");
        let mut a = base.clone();
        a.given = Some((0, vec![], vec![]));
        a.expect(which, Error::ZeroLandmarks, "given C = 0");
        // NonFinite alpha_coeff.
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut a = base.clone();
            a.weighting = lara::Weighting::Optimal { alpha_coeff: bad };
            a.expect(
                which,
                Error::NonFinite(Arg::AlphaCoeff),
                &format!("alpha {bad}"),
            );
        }
        // Given landmarks: lengths and finiteness.
        let count = 4;
        let good = (count, randn(10, count * 4), randn(11, count * 4));
        let mut a = base.clone();
        a.given = Some(good.clone());
        a.scratch_len = lara::scratch_len(shape, count);
        if which == Which::Lara {
            a.noise = Some(randn(12, count * 4));
        }
        assert_eq!(a.call(which).0, Ok(()), "given landmarks rejected");
        let mut b = a.clone();
        b.given.as_mut().unwrap().1.pop();
        b.expect(
            which,
            Error::LengthMismatch {
                arg: Arg::QueryLandmarks,
                expected: 16,
                actual: 15,
            },
            "q̄ length",
        );
        let mut b = a.clone();
        b.given.as_mut().unwrap().2.push(0.0);
        b.expect(
            which,
            Error::LengthMismatch {
                arg: Arg::KeyLandmarks,
                expected: 16,
                actual: 17,
            },
            "k̄ length",
        );
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut b = a.clone();
            b.given.as_mut().unwrap().1[3] = bad;
            b.expect(which, Error::NonFinite(Arg::QueryLandmarks), "q̄ non-finite");
            let mut b = a.clone();
            b.given.as_mut().unwrap().2[15] = bad;
            b.expect(which, Error::NonFinite(Arg::KeyLandmarks), "k̄ non-finite");
        }
        // ScratchTooSmall for given landmarks.
        let mut b = a.clone();
        b.scratch_len -= 1;
        b.expect(
            which,
            Error::ScratchTooSmall {
                needed: a.scratch_len,
                actual: a.scratch_len - 1,
            },
            "given scratch",
        );
    }
    // Noise (eval API only): [C', d] with C' = min(C, n_q, n_k).
    let which = Which::Lara;
    let base = Args::valid(which, shape);
    for len in [11, 13, 0, 28] {
        let mut a = base.clone();
        a.noise = Some(vec![0.1; len]);
        a.expect(
            which,
            Error::LengthMismatch {
                arg: Arg::Noise,
                expected: 12,
                actual: len,
            },
            "noise length",
        );
    }
    let mut a = base.clone();
    a.landmarks = 50; // C' = 6
    a.noise = Some(vec![0.1; 50 * 4]);
    a.scratch_len = lara::scratch_len(shape, 50);
    a.expect(
        which,
        Error::LengthMismatch {
            arg: Arg::Noise,
            expected: 24,
            actual: 200,
        },
        "noise length with C > n",
    );
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut a = base.clone();
        a.noise.as_mut().unwrap()[7] = bad;
        a.expect(which, Error::NonFinite(Arg::Noise), &format!("noise {bad}"));
    }
}

#[test]
fn errors_ra() {
    backend_from_env();
    let shape = Shape::cross(6, 7, 4, 3);
    for m in 0..3u8 {
        let which = Which::Ra(m);
        let base = Args::valid(which, shape);
        for len in [23, 25, 0] {
            let mut a = base.clone();
            a.noise = Some(vec![0.1; len]);
            a.expect(
                which,
                Error::LengthMismatch {
                    arg: Arg::Noise,
                    expected: 24,
                    actual: len,
                },
                "noise length",
            );
        }
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut a = base.clone();
            a.noise.as_mut().unwrap()[23] = bad;
            a.expect(which, Error::NonFinite(Arg::Noise), &format!("noise {bad}"));
        }
        // Eval (no noise) is valid.
        let mut a = base.clone();
        a.noise = None;
        assert_eq!(a.call(which).0, Ok(()));
    }
    let which = Which::Ra(2);
    let base = Args::valid(which, shape);
    for len in [5, 7, 0] {
        let mut a = base.clone();
        a.index.resize(len, 0);
        a.expect(
            which,
            Error::LengthMismatch {
                arg: Arg::KeyIndices,
                expected: 6,
                actual: len,
            },
            "index length",
        );
    }
    for (row, index) in [(0usize, 7u32), (5, 8), (2, u32::MAX)] {
        let mut a = base.clone();
        a.index[row] = index;
        a.expect(
            which,
            Error::KeyIndexOutOfRange { row, index },
            "index out of range",
        );
    }
    // The first bad row is reported.
    let mut a = base.clone();
    a.index[4] = 9;
    a.index[1] = 7;
    a.expect(
        which,
        Error::KeyIndexOutOfRange { row: 1, index: 7 },
        "first bad index",
    );
}

#[test]
fn errors_rfa() {
    backend_from_env();
    let shape = Shape::cross(6, 7, 4, 3);
    for which in [Which::Positive, Which::Trig] {
        let base = Args::valid(which, shape);
        let mut a = base.clone();
        a.features = 0;
        a.omega.clear();
        a.expect(which, Error::ZeroFeatures, "S = 0");
        for len in [19, 21, 0] {
            let mut a = base.clone();
            a.omega.resize(len, 0.5);
            a.expect(
                which,
                Error::LengthMismatch {
                    arg: Arg::Omega,
                    expected: 20,
                    actual: len,
                },
                "omega length",
            );
        }
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut a = base.clone();
            a.omega[19] = bad;
            a.expect(which, Error::NonFinite(Arg::Omega), &format!("omega {bad}"));
        }
    }
}

#[test]
fn errors_random_and_segment_means() {
    backend_from_env();
    for orthogonal in [false, true] {
        let draw = |features: usize, dim: usize, omega: &mut [f32]| {
            let mut rng = default_rng(1);
            if orthogonal {
                orthogonal_omega(&mut rng, features, dim, omega)
            } else {
                gaussian_omega(&mut rng, features, dim, omega)
            }
        };
        let cases = [
            (0usize, 4usize, 0usize, Error::ZeroFeatures),
            (3, 0, 0, Error::ZeroDimension(Dim::Model)),
            (
                3,
                4,
                11,
                Error::LengthMismatch {
                    arg: Arg::Omega,
                    expected: 12,
                    actual: 11,
                },
            ),
            (
                3,
                4,
                13,
                Error::LengthMismatch {
                    arg: Arg::Omega,
                    expected: 12,
                    actual: 13,
                },
            ),
        ];
        for (features, dim, len, expected) in cases {
            let mut omega = vec![SENTINEL; len];
            assert_eq!(draw(features, dim, &mut omega), Err(expected));
            assert!(omega.iter().all(|x| x.to_bits() == SENTINEL.to_bits()));
        }
    }
    let x = randn(1, 10 * 3);
    let cases = [
        (10usize, 3usize, 0usize, 0usize, Error::ZeroLandmarks),
        (10, 3, 11, 33, Error::ZeroLandmarks),
        (10, 0, 2, 0, Error::ZeroDimension(Dim::Model)),
        (
            9,
            3,
            2,
            6,
            Error::LengthMismatch {
                arg: Arg::Queries,
                expected: 27,
                actual: 30,
            },
        ),
        (
            10,
            3,
            2,
            5,
            Error::LengthMismatch {
                arg: Arg::QueryLandmarks,
                expected: 6,
                actual: 5,
            },
        ),
    ];
    for (rows, dim, segments, out_len, expected) in cases {
        let mut out = vec![SENTINEL; out_len];
        assert_eq!(
            lara::segment_means(&x, rows, dim, segments, &mut out),
            Err(expected)
        );
        assert!(out.iter().all(|v| v.to_bits() == SENTINEL.to_bits()));
    }
}
