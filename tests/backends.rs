//! Every SIMD backend the host can run against the scalar reference kernels: random shapes with
//! every tail length (n, d, C, S from 1 to a few multiples of the widest vector), a dirty-scratch
//! pass, the golden files, and the vector `exp` against `f64`.
//!
//! `LARA_ATTN_BACKEND=<name>` restricts the run to one backend and fails if it cannot run here,
//! so CI can prove each backend was tested.

#[path = "support/golden.rs"]
mod golden;

use lara_attn::backend::{Backend, set_backend};
use lara_attn::lara::{Landmarks, Params, Weighting};
use lara_attn::random::{NoiseScale, default_rng, fill_standard_normal, orthogonal_omega};
use lara_attn::{Shape, exact, lara, ra, rfa};
use std::sync::Mutex;

/// Backend selection is process-wide: tests that set it run one at a time.
static SELECTION: Mutex<()> = Mutex::new(());

/// The SIMD backends under test: the forced one, or every available one.
fn simd_backends() -> Vec<Backend> {
    match std::env::var("LARA_ATTN_BACKEND") {
        Ok(name) => {
            let backend =
                Backend::from_name(&name).unwrap_or_else(|| panic!("unknown backend {name:?}"));
            assert!(
                backend.is_available(),
                "LARA_ATTN_BACKEND={name}: not available on this host"
            );
            vec![backend]
        }
        Err(_) => Backend::ALL
            .into_iter()
            .filter(|b| *b != Backend::Scalar && b.is_available())
            .collect(),
    }
}

/// Runs `kernel` on `backend`, with the scratch first filled with `fill`.
fn run(
    backend: Backend,
    fill: f32,
    scratch_len: usize,
    out_len: usize,
    kernel: &dyn Fn(&mut [f32], &mut [f32]),
) -> Vec<f32> {
    set_backend(Some(backend)).unwrap();
    let mut out = vec![f32::NAN; out_len];
    let mut scratch = vec![fill; scratch_len];
    kernel(&mut out, &mut scratch);
    set_backend(None).unwrap();
    out
}

fn random(len: usize, seed: u64, gain: f32) -> Vec<f32> {
    let mut x = vec![0.0; len];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x.iter_mut().for_each(|v| *v *= gain);
    x
}

/// Compares every backend with the scalar kernel (and NaN-filled scratch with zeroed scratch).
fn check_all(
    what: &str,
    tol: f32,
    scratch_len: usize,
    out_len: usize,
    kernel: &dyn Fn(&mut [f32], &mut [f32]),
) {
    let reference = run(Backend::Scalar, 0.0, scratch_len, out_len, kernel);
    let scale = reference.iter().fold(1.0f32, |m, x| m.max(x.abs()));
    for backend in simd_backends() {
        let ours = run(backend, 0.0, scratch_len, out_len, kernel);
        let err = ours.iter().zip(&reference).fold(0.0f32, |m, (a, b)| {
            if a.is_nan() {
                f32::INFINITY
            } else {
                m.max((a - b).abs())
            }
        });
        assert!(
            err <= tol * scale,
            "{what} on {}: max error {err:e} > {tol:e} x {scale}",
            backend.name()
        );
        let dirty = run(backend, f32::NAN, scratch_len, out_len, kernel);
        assert!(
            dirty
                .iter()
                .zip(&ours)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{what} on {}: NaN-filled scratch changed the result",
            backend.name()
        );
    }
}

/// Sizes that hit every tail of 4-, 8- and 16-lane vectors, 4-row tiles and 32-row blocks.
const SIZES: [usize; 14] = [1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 33, 47, 65];

#[test]
fn exact_matches_scalar() {
    let _guard = SELECTION.lock().unwrap();
    for (t, &n_q) in SIZES.iter().enumerate() {
        for &d in &SIZES[..10] {
            let n_k = SIZES[(t + 3) % SIZES.len()];
            let d_v = SIZES[(t + d) % 9];
            let shape = Shape::cross(n_q, n_k, d, d_v);
            let (q, k, v) = (
                random(n_q * d, 1, 1.0),
                random(n_k * d, 2, 1.0),
                random(n_k * d_v, 3, 1.0),
            );
            check_all(
                &format!("exact {shape:?}"),
                2e-6,
                exact::scratch_len(shape),
                n_q * d_v,
                &|out, scratch| exact::attention(shape, &q, &k, &v, out, scratch).unwrap(),
            );
        }
    }
}

#[test]
fn lara_matches_scalar() {
    let _guard = SELECTION.lock().unwrap();
    let weightings = [
        Weighting::Optimal { alpha_coeff: 1.0 },
        Weighting::Optimal { alpha_coeff: 2.0 },
        Weighting::BalanceHeuristic,
        Weighting::Biased,
    ];
    for (t, &n) in SIZES.iter().enumerate() {
        let d = SIZES[(t * 3 + 1) % 10];
        let d_v = SIZES[(t + 5) % 11];
        let n_k = SIZES[(t + 2) % SIZES.len()] + 3;
        let shape = Shape::cross(n, n_k, d, d_v);
        let (q, k, v) = (
            random(n * d, 4, 0.8),
            random(n_k * d, 5, 0.8),
            random(n_k * d_v, 6, 1.0),
        );
        for &c in &[1, 3, 4, 7, 16, 17, 33] {
            for (w, &weighting) in weightings.iter().enumerate() {
                let params = Params::segment_means(c, weighting);
                let count = lara::effective_landmarks(shape, c);
                let eps = random(count * d, 7 + w as u64, 1.0);
                for noise in [None, Some(&eps[..])] {
                    let what = format!(
                        "lara {shape:?} C={c} {weighting:?} noise={}",
                        noise.is_some()
                    );
                    check_all(
                        &what,
                        2e-5,
                        lara::scratch_len(shape, c),
                        n * d_v,
                        &|out, scratch| {
                            lara::attention(shape, &params, &q, &k, &v, noise, out, scratch)
                                .unwrap()
                        },
                    );
                }
            }
        }
        // Given landmarks, more than tokens.
        let (q_bar, k_bar) = (random(20 * d, 8, 1.0), random(20 * d, 9, 1.0));
        let params = Params {
            landmarks: Landmarks::Given {
                count: 20,
                queries: &q_bar,
                keys: &k_bar,
            },
            weighting: weightings[0],
            ..Default::default()
        };
        check_all(
            "lara given landmarks",
            2e-5,
            lara::scratch_len(shape, 20),
            n * d_v,
            &|out, scratch| {
                lara::attention(shape, &params, &q, &k, &v, None, out, scratch).unwrap()
            },
        );
    }
}

#[test]
fn ra_matches_scalar() {
    let _guard = SELECTION.lock().unwrap();
    for (t, &n) in SIZES.iter().enumerate() {
        let d = SIZES[(t * 5 + 2) % 10];
        let d_v = SIZES[(t + 1) % 11];
        let n_k = SIZES[(t + 6) % SIZES.len()];
        let shape = Shape::cross(n, n_k, d, d_v);
        let (q, k, v) = (
            random(n * d, 10, 0.8),
            random(n_k * d, 11, 0.8),
            random(n_k * d_v, 12, 1.0),
        );
        let eps = random(n * d, 13, 1.0);
        let indices: Vec<u32> = (0..n as u32).map(|i| (i * 7 + 3) % n_k as u32).collect();
        for mean in [
            ra::Mean::KeyAverage,
            ra::Mean::AttentionWeighted,
            ra::Mean::Keys(&indices),
        ] {
            for noise in [None, Some(&eps[..])] {
                check_all(
                    &format!("ra {shape:?} {mean:?}"),
                    2e-5,
                    ra::scratch_len(shape),
                    n * d_v,
                    &|out, scratch| {
                        ra::attention(
                            shape,
                            mean,
                            NoiseScale::Official,
                            &q,
                            &k,
                            &v,
                            noise,
                            out,
                            scratch,
                        )
                        .unwrap()
                    },
                );
            }
        }
        for mean in [
            ra::SampledMean::KeyAverage,
            ra::SampledMean::AttentionWeighted,
            ra::SampledMean::Key,
        ] {
            check_all(
                &format!("ra sampled {shape:?} {mean:?}"),
                2e-5,
                ra::scratch_len(shape),
                n * d_v,
                &|out, scratch| {
                    ra::attention_sampled(
                        shape,
                        mean,
                        NoiseScale::Official,
                        &q,
                        &k,
                        &v,
                        &mut default_rng(14),
                        out,
                        scratch,
                    )
                    .unwrap()
                },
            );
        }
    }
}

#[test]
fn rfa_matches_scalar() {
    let _guard = SELECTION.lock().unwrap();
    for (t, &n) in SIZES.iter().enumerate() {
        let d = SIZES[(t * 3 + 2) % 10];
        let d_v = SIZES[(t + 4) % 11];
        let n_k = SIZES[(t + 5) % SIZES.len()];
        let shape = Shape::cross(n, n_k, d, d_v);
        let (q, k, v) = (
            random(n * d, 15, 0.7),
            random(n_k * d, 16, 0.7),
            random(n_k * d_v, 17, 1.0),
        );
        for &features in &[1, 3, 4, 8, 16, 17, 33, 64] {
            let mut omega = vec![0.0; features * d];
            orthogonal_omega(&mut default_rng(18), features, d, &mut omega).unwrap();
            let what = format!("rfa positive {shape:?} S={features}");
            check_all(
                &what,
                1e-5,
                rfa::positive_scratch_len(shape, features),
                n * d_v,
                &|out, scratch| {
                    rfa::positive(shape, &omega, features, &q, &k, &v, out, scratch).unwrap()
                },
            );
            let what = format!("rfa trigonometric {shape:?} S={features}");
            check_all(
                &what,
                1e-5,
                rfa::trigonometric_scratch_len(shape, features),
                n * d_v,
                &|out, scratch| {
                    rfa::trigonometric(shape, &omega, features, &q, &k, &v, out, scratch).unwrap()
                },
            );
        }
    }
}
