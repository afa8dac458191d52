//! The errors of each estimator's own arguments: LARA's landmarks, `alpha_coeff` and noise,
//! RA's noise and key indices (and the generator its sampled key needs), the projection `ω` of
//! the random-feature kernels, and the free functions that draw `ω` and pool segment means.

use super::{Args, Mean, SENTINEL};
use crate::backend_env::backend_from_env;
use crate::kernels::{KERNELS, Kernel};
use crate::{out_len, randn, runs_on};
use lara_attn::backend::active_backend;
use lara_attn::random::{default_rng, gaussian_omega, orthogonal_omega};
use lara_attn::{Arg, Dim, Error, Sampling, Shape, lara, ra};

fn kernel(name: &str) -> &'static Kernel {
    Kernel::named(name).unwrap_or_else(|| panic!("no kernel {name:?} in the registry"))
}

#[test]
fn errors_lara() {
    backend_from_env();
    let shape = Shape::cross(6, 7, 4, 3);
    // The eval-or-noise kernel with noise, and the kernel that draws.
    for name in ["lara", "lara-draw"] {
        let lara_kernel = kernel(name);
        let mut base = Args::valid(lara_kernel, shape);
        if name == "lara" {
            base.noise = Some(randn(
                1,
                lara::noise_len(shape, base.landmarks, lara::Proposals::Single),
            ));
        }
        assert_eq!(base.run(lara_kernel).0, Ok(()), "{name}: valid arguments");
        // ZeroLandmarks: segment means and given.
        let mut a = base.clone();
        a.landmarks = 0;
        a.expect(lara_kernel, Error::ZeroLandmarks, "C = 0");
        let mut a = base.clone();
        a.given = Some((0, vec![], vec![]));
        a.expect(lara_kernel, Error::ZeroLandmarks, "given C = 0");
        // NonFinite alpha_coeff.
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut a = base.clone();
            a.weighting = lara::Weighting::Optimal { alpha_coeff: bad };
            a.expect(
                lara_kernel,
                Error::NonFinite(Arg::AlphaCoeff),
                &format!("alpha {bad}"),
            );
        }
        // Given landmarks: lengths and finiteness.
        let count = 4;
        let good = (count, randn(10, count * 4), randn(11, count * 4));
        let mut a = base.clone();
        a.given = Some(good.clone());
        a.scratch_len = lara::scratch_len(shape, count, lara::Proposals::Single);
        if name == "lara" {
            a.noise = Some(randn(12, count * 4));
        }
        assert_eq!(a.run(lara_kernel).0, Ok(()), "given landmarks rejected");
        let mut b = a.clone();
        b.given.as_mut().unwrap().1.pop();
        b.expect(
            lara_kernel,
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
            lara_kernel,
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
            b.expect(
                lara_kernel,
                Error::NonFinite(Arg::QueryLandmarks),
                "q̄ non-finite",
            );
            let mut b = a.clone();
            b.given.as_mut().unwrap().2[15] = bad;
            b.expect(
                lara_kernel,
                Error::NonFinite(Arg::KeyLandmarks),
                "k̄ non-finite",
            );
        }
        // ScratchTooSmall for given landmarks: what the active backend needs, at most
        // scratch_len (the size for every backend compiled here).
        let needed = lara::scratch_len_for(active_backend(), shape, count, lara::Proposals::Single);
        assert!(needed <= a.scratch_len);
        let mut b = a.clone();
        b.scratch_len = needed;
        assert_eq!(b.run(lara_kernel).0, Ok(()), "given, exact scratch");
        b.scratch_len = needed - 1;
        b.expect(
            lara_kernel,
            Error::ScratchTooSmall {
                needed,
                actual: needed - 1,
            },
            "given scratch",
        );
    }
    // Noise (eval-or-noise kernel only): [C', d] with C' = min(C, n_q, n_k).
    let lara_kernel = kernel("lara");
    let mut base = Args::valid(lara_kernel, shape);
    base.noise = Some(randn(1, 12));
    assert_eq!(base.run(lara_kernel).0, Ok(()));
    for len in [11, 13, 0, 28] {
        let mut a = base.clone();
        a.noise = Some(vec![0.1; len]);
        a.expect(
            lara_kernel,
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
    a.scratch_len = lara::scratch_len(shape, 50, lara::Proposals::Single);
    a.expect(
        lara_kernel,
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
        a.expect(
            lara_kernel,
            Error::NonFinite(Arg::Noise),
            &format!("noise {bad}"),
        );
    }
}

#[test]
fn errors_ra() {
    backend_from_env();
    let shape = Shape::cross(6, 7, 4, 3);
    let ra_kernel = kernel("ra");
    for mean in [Mean::KeyAverage, Mean::AttentionWeighted, Mean::GivenKeys] {
        let mut base = Args::valid(ra_kernel, shape);
        base.mean = mean;
        base.noise = Some(randn(2, 24));
        assert_eq!(base.run(ra_kernel).0, Ok(()), "{mean:?}: valid arguments");
        for len in [23, 25, 0] {
            let mut a = base.clone();
            a.noise = Some(vec![0.1; len]);
            a.expect(
                ra_kernel,
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
            a.expect(
                ra_kernel,
                Error::NonFinite(Arg::Noise),
                &format!("noise {bad}"),
            );
        }
        // Eval (no noise) is valid.
        let mut a = base.clone();
        a.noise = None;
        assert_eq!(a.run(ra_kernel).0, Ok(()));
    }
    // Given keys, with the caller's noise and with drawn noise.
    for name in ["ra", "ra-draw"] {
        let ra_kernel = kernel(name);
        let mut base = Args::valid(ra_kernel, shape);
        base.mean = Mean::GivenKeys;
        if name == "ra" {
            base.noise = Some(randn(2, 24));
        }
        assert_eq!(base.run(ra_kernel).0, Ok(()), "{name}: valid arguments");
        for len in [5, 7, 0] {
            let mut a = base.clone();
            a.index.resize(len, 0);
            a.expect(
                ra_kernel,
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
                ra_kernel,
                Error::KeyIndexOutOfRange { row, index },
                "index out of range",
            );
        }
        // The first bad row is reported.
        let mut a = base.clone();
        a.index[4] = 9;
        a.index[1] = 7;
        a.expect(
            ra_kernel,
            Error::KeyIndexOutOfRange { row: 1, index: 7 },
            "first bad index",
        ); // A given key of a masked key: the first such row is reported.
        let mut a = base.clone();
        let named = a.index[3];
        a.mask = Some((0..7).map(|j| j == named).collect());
        let row = a.index.iter().position(|&j| j == named).unwrap_or(3);
        a.expect(
            ra_kernel,
            Error::MaskedKeyIndex { row, index: named },
            "given key of a masked key",
        );
    }
}

/// `Mean::SampledKey` draws the keys: without `Sampling::Draw` it is `GeneratorRequired`, and
/// nothing is written.
#[test]
fn errors_ra_sampled_key_requires_a_generator() {
    backend_from_env();
    for shape in [
        Shape::cross(6, 7, 4, 3),
        Shape::cross(5, 5, 3, 2).with_heads(2),
    ] {
        let args = Args::without_scratch(shape);
        let eps = randn(2, shape.heads * shape.queries * shape.dim);
        let params = ra::Params::new(ra::Mean::SampledKey);
        let mut rng = default_rng(1);
        for sampling in [
            Sampling::Eval,
            Sampling::Noise(&eps),
            Sampling::Draw(&mut rng),
        ] {
            let drawn = matches!(sampling, Sampling::Draw(_));
            let what = format!("{shape:?} {sampling:?}");
            let mut out = vec![SENTINEL; out_len(shape)];
            let mut scratch = vec![SENTINEL; ra::scratch_len(shape)];
            let result = ra::attention(&args.call().x, &params, sampling, &mut out, &mut scratch);
            if drawn {
                assert_eq!(result, Ok(()), "{what}");
                assert!(
                    out.iter().all(|x| x.is_finite() && *x != SENTINEL),
                    "{what}"
                );
            } else {
                assert_eq!(result, Err(Error::GeneratorRequired), "{what}");
                assert!(
                    out.iter()
                        .chain(&scratch)
                        .all(|x| x.to_bits() == SENTINEL.to_bits()),
                    "{what}: output or scratch was written"
                );
            }
        }
        // The same through the registry: the eval-or-noise kernel refuses, the drawing one
        // accepts.
        let mut args = Args::valid(kernel("ra"), shape);
        args.mean = Mean::SampledKey;
        args.expect(kernel("ra"), Error::GeneratorRequired, "SampledKey, eval");
        args.noise = Some(eps.clone());
        args.expect(kernel("ra"), Error::GeneratorRequired, "SampledKey, noise");
        assert_eq!(args.run(kernel("ra-draw")).0, Ok(()));
    }
}

#[test]
fn errors_rfa() {
    backend_from_env();
    // Every random-feature kernel of the registry (the causal ones on self-attention).
    let cross = Shape::cross(6, 7, 4, 3);
    let self_attention = Shape::cross(7, 7, 4, 3);
    let rfa_kernels = KERNELS.iter().filter(|k| k.name.contains("rfa"));
    for rfa_kernel in rfa_kernels {
        for base_shape in [cross, self_attention] {
            if !runs_on(rfa_kernel, base_shape) {
                continue;
            }
            for heads in [1, 2] {
                let shape = base_shape.with_heads(heads);
                let base = Args::valid(rfa_kernel, shape);
                assert_eq!(base.run(rfa_kernel).0, Ok(()), "{}", rfa_kernel.name);
                // ω [h, S, d] with S = 5: 20 floats for one head of d = 4.
                let row_len = heads * 4;
                let full = 5 * row_len;
                assert_eq!(base.omega.len(), full);
                let mut a = base.clone();
                a.omega.clear();
                a.expect(rfa_kernel, Error::ZeroFeatures, "S = 0");
                for len in [full - 1, full + 1, row_len - 1, 1] {
                    let mut a = base.clone();
                    a.omega.resize(len, 0.5);
                    a.expect(
                        rfa_kernel,
                        Error::PartialRow {
                            arg: Arg::Omega,
                            row_len,
                            actual: len,
                        },
                        "omega length",
                    );
                }
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut a = base.clone();
                    a.omega[full - 1] = bad;
                    a.expect(
                        rfa_kernel,
                        Error::NonFinite(Arg::Omega),
                        &format!("omega {bad}"),
                    );
                }
            }
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
        (
            10,
            3,
            11,
            33,
            Error::TooManyLandmarks {
                landmarks: 11,
                rows: 10,
            },
        ),
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
