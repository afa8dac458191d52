//! Structural properties: outputs are convex combinations of the values (also on huge
//! logits), invariance under a permutation of the keys, and LARA's landmark rules (`C ≥ n`,
//! segment means).

use crate::backend_env::backend_from_env;
use crate::kernels::Kernel;
use crate::reference;
use crate::reference_sweep::{Estimator, Worst};
use crate::variants::{VariantInputs, run_all};
use crate::{Inputs, WEIGHTINGS, bits, max_abs_diff, qkv, randn};
use lara_attn::random::{default_rng, gaussian_omega, orthogonal_omega};
use lara_attn::{Shape, lara, ra};

// ---------------------------------------------------------------------------------------------
// Convexity
// ---------------------------------------------------------------------------------------------

/// Where the outputs of a kernel are guaranteed to lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hull {
    /// Among the values: every output row is a convex combination of value rows.
    Values,
    /// Among the values and 0: positive features with the official denominator clamp
    /// `max(·, 1e-2)` (a clamped denominator shrinks the row towards 0).
    ValuesAndZero,
    /// Nowhere in particular: trigonometric features can be negative.
    Unbounded,
}

/// The hull of a registry kernel, by name; a new kernel is expected to be convex.
fn hull(kernel: &Kernel) -> Hull {
    match kernel.name {
        name if name.contains("trig") => Hull::Unbounded,
        "rfa" | "causal-rfa" => Hull::ValuesAndZero,
        _ => Hull::Values,
    }
}

/// Every output coordinate lies in `[min_j v[j][c] − slack, max_j v[j][c] + slack]`, with the
/// interval widened to include 0 when `with_zero` (a clamped denominator).
pub(crate) fn assert_convex(label: &str, shape: Shape, v: &[f32], out: &[f32], with_zero: bool) {
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
        let vi = VariantInputs::new(shape, &[1, 4, 8, n_min], 16, 31 + i as u64);
        run_all(&vi.variants(inputs.qkv()), |kernel, variant, out| {
            let label = format!("{} {}", kernel.name, variant.label);
            match hull(kernel) {
                Hull::Unbounded => {}
                Hull::ValuesAndZero => assert_convex(&label, shape, &inputs.v, out, true),
                Hull::Values => assert_convex(&label, shape, &inputs.v, out, false),
            }
        });
    }
}

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
        let vi = VariantInputs::new(shape, &[1, 3, 8, n_min], 4, 1600 + i as u64);
        run_all(&vi.variants(inputs.qkv()), |kernel, variant, out| {
            // The random features with the official floor and clamp (and the trigonometric
            // ones) make no promise here; every convex kernel must hold.
            if hull(kernel) == Hull::Values {
                let label = format!("{} {}", kernel.name, variant.label);
                assert_convex(&label, shape, &inputs.v, out, false);
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Key permutation invariance
// ---------------------------------------------------------------------------------------------

/// Permutes the rows of `x [rows, cols]`: row `i` of the result is row `perm[i]` of `x`.
fn permute_rows(x: &[f32], cols: usize, perm: &[usize]) -> Vec<f32> {
    perm.iter()
        .flat_map(|&p| x[p * cols..(p + 1) * cols].iter().copied())
        .collect()
}

fn random_permutation(n: usize, seed: u64) -> Vec<usize> {
    use lara_attn::rand_core::RngCore;
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
            let mut estimators = vec![
                Estimator::Exact,
                Estimator::Ra {
                    mean: ra::Mean::KeyAverage,
                    noise: None,
                },
                Estimator::Ra {
                    mean: ra::Mean::AttentionWeighted,
                    noise: None,
                },
            ];
            for omega in [&omega_iid[..], &omega_orth[..]] {
                estimators.push(Estimator::Positive { omega, features });
                if scale < 1.0 {
                    estimators.push(Estimator::Trig { omega, features });
                }
            }
            for estimator in estimators {
                let a = estimator.eval(&inputs);
                let b = estimator.eval_on(qkv(shape, &inputs.q, &k_perm, &v_perm));
                let a64: Vec<f64> = a.iter().map(|&x| x as f64).collect();
                let scale = a64.iter().fold(1.0f64, |m, &x| m.max(x.abs()));
                let err = max_abs_diff(&b, &a64) / scale;
                worst.record(&estimator, inputs.dims(), err);
                assert!(
                    err <= TOL_PERM,
                    "{} {shape:?}: permuting the keys changed the output by {err:.3e}",
                    estimator.label()
                );
            }
        }
    }
    worst.report("key permutation");
}

// ---------------------------------------------------------------------------------------------
// LARA's landmarks
// ---------------------------------------------------------------------------------------------

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
                    let run =
                        |params: lara::Params| Estimator::Lara { params, noise }.eval(&inputs);
                    let at_n = run(lara::Params::segment_means(n, weighting));
                    for more in [n + 1, n + 5, 1000] {
                        assert_eq!(
                            bits(&at_n),
                            bits(&run(lara::Params::segment_means(more, weighting))),
                            "n {n} d {d}: C = {n} vs C = {more}, {weighting:?}"
                        );
                    }
                    let landmarks = lara::Landmarks::Given {
                        count: n,
                        queries: &inputs.q,
                        keys: &inputs.k,
                    };
                    let given = run(lara::Params::new(landmarks, weighting));
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
    assert_eq!(inputs.shape, shape);
    let run = |c| {
        Estimator::Lara {
            params: lara::Params::segment_means(c, WEIGHTINGS[0]),
            noise: None,
        }
        .eval(&inputs)
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
        let mut q_bar = vec![0.0f32; c * 6];
        let mut k_bar = vec![0.0f32; c * 6];
        lara::segment_means(&inputs.q, n, 6, c, &mut q_bar).unwrap();
        lara::segment_means(&inputs.k, n, 6, c, &mut k_bar).unwrap();
        for weighting in WEIGHTINGS {
            let a = Estimator::Lara {
                params: lara::Params::segment_means(c, weighting),
                noise: None,
            }
            .eval(&inputs);
            let landmarks = lara::Landmarks::Given {
                count: c,
                queries: &q_bar,
                keys: &k_bar,
            };
            let b = Estimator::Lara {
                params: lara::Params::new(landmarks, weighting),
                noise: None,
            }
            .eval(&inputs);
            assert_eq!(bits(&a), bits(&b), "n {n} C {c} {weighting:?}");
        }
    }
}
