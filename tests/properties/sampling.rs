//! Sampled modes and Monte-Carlo behaviour: `Sampling::Draw` is deterministic per seed and
//! draws exactly what the documented order says (replayed through `Sampling::Noise`), and
//! positive RFA converges to exact attention as the number of features grows.

use crate::backend_env::backend_from_env;
use crate::reference;
use crate::reference_sweep::Estimator;
use crate::structure::assert_convex;
use crate::{Inputs, WEIGHTINGS, bits, max_abs_diff};
use lara_attn::random::{default_rng, fill_standard_normal, gaussian_omega, orthogonal_omega};
use lara_attn::{Sampling, lara, ra, random};

// ---------------------------------------------------------------------------------------------
// Sampled modes
// ---------------------------------------------------------------------------------------------

/// LARA in sampled mode with the generator `default_rng(seed)`.
fn lara_sampled(inputs: &Inputs, params: &lara::Params, seed: u64) -> Vec<f32> {
    let shape = inputs.shape;
    let count = match params.landmarks {
        lara::Landmarks::SegmentMeans(c) => c,
        lara::Landmarks::Given { count, .. } => count,
    };
    let mut out = vec![0.0f32; shape.queries * shape.value_dim];
    let mut scratch = vec![0.0f32; lara::scratch_len(shape, count, params.proposals)];
    let mut rng = default_rng(seed);
    lara::attention(
        &inputs.qkv(),
        params,
        Sampling::Draw(&mut rng),
        &mut out,
        &mut scratch,
    )
    .unwrap();
    out
}

/// RA in sampled mode with the generator `default_rng(seed)`.
fn ra_sampled(inputs: &Inputs, mean: ra::Mean, seed: u64) -> Vec<f32> {
    let shape = inputs.shape;
    let mut out = vec![0.0f32; shape.queries * shape.value_dim];
    let mut scratch = vec![0.0f32; ra::scratch_len(shape)];
    let mut rng = default_rng(seed);
    ra::attention(
        &inputs.qkv(),
        &ra::Params::new(mean),
        Sampling::Draw(&mut rng),
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
            let given = Estimator::Lara {
                params,
                noise: Some(&eps),
            }
            .eval(&inputs);
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
            ra::Mean::KeyAverage,
            ra::Mean::AttentionWeighted,
            ra::Mean::SampledKey,
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
                if mean == ra::Mean::SampledKey {
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
                ra::Mean::SampledKey => ra::Mean::GivenKeys(&index),
                mean => mean,
            };
            let given = Estimator::Ra {
                mean: eval_mean,
                noise: Some(&eps),
            }
            .eval(&inputs);
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
// RFA converges to exact attention
// ---------------------------------------------------------------------------------------------

/// Mean over seeds of `max|rfa − exact| / max|exact|` for positive features.
fn rfa_mean_error(features: usize, orthogonal: bool, seeds: u64) -> f64 {
    let (n, d, dv) = (24, 8, 4);
    let mut total = 0.0;
    for seed in 0..seeds {
        let inputs = Inputs::new(n, n, d, dv, 1300 + seed, 0.3);
        let exact = Estimator::Exact.eval(&inputs);
        let mut omega = vec![0.0f32; features * d];
        let mut rng = default_rng(1400 + seed);
        if orthogonal {
            orthogonal_omega(&mut rng, features, d, &mut omega).unwrap();
        } else {
            gaussian_omega(&mut rng, features, d, &mut omega).unwrap();
        }
        let est = Estimator::Positive {
            omega: &omega,
            features,
        }
        .eval(&inputs);
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
