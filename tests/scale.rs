//! Accuracy at scale: exact attention, LARA and RFA over n = 65,536 keys (d = 64) against the
//! float64 reference of `tests/support/reference.rs`, within 1e-5 relative (Frobenius) for
//! logits of standard deviation up to 6, on every backend this machine runs.
//!
//! Long `f32` running sums lose about `n · 2^-24` relative when each term is added to the
//! total; the kernels sum each block of keys on its own and fold the block sums into the total,
//! so that the error grows with the number of blocks rather than of keys. These tests hold them
//! to it. They take about a minute in release, so they are `#[ignore]`d:
//! `cargo test --release --test scale -- --ignored` (CI runs them).

#[path = "support/reference.rs"]
mod reference;

use lara_attn::backend::{Backend, set_backend};
use lara_attn::lara::{self, Params, Weighting};
use lara_attn::random::{default_rng, fill_standard_normal};
use lara_attn::rfa::{self, FeatureMap};
use lara_attn::{Qkv, Sampling, Shape, exact};
use reference::{Dims, Mis};

const KEYS: usize = 65_536;
const DIM: usize = 64;
/// Held by each test while it sets the process-wide backend: the tests of this file run on
/// parallel threads, and a call sized for one backend must not run on another's.
static BACKEND: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The bound of the issue: 1e-5 relative against float64.
const TOLERANCE: f64 = 1e-5;
/// Logit standard deviations tried: `q`, `k` ~ N(0, σ²) give `s·q·k` a standard deviation of
/// σ² (with `s = d^(-1/2)`).
const LOGIT_STDS: [f32; 2] = [1.0, 6.0];

fn randn(seed: u64, len: usize, std: f32) -> Vec<f32> {
    let mut x = vec![0.0f32; len];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x.iter_mut().for_each(|v| *v *= std);
    x
}

/// `‖ours − reference‖ / ‖reference‖`.
fn relative_error(ours: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(ours.len(), reference.len());
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (&x, &r) in ours.iter().zip(reference) {
        diff += (f64::from(x) - r).powi(2);
        norm += r * r;
    }
    (diff / norm).sqrt()
}

/// For each logit spread: inputs `q`, `k` (logit standard deviation `std`) and `v` of `shape`
/// from `seed`, the float64 `reference` of them, and `run` (the kernel into `out` with the
/// scratch the backend needs) on every backend this machine runs, each within [`TOLERANCE`] of
/// the reference (the default backend again afterwards).
fn check_at_scale(
    what: &str,
    shape: Shape,
    seed: u64,
    reference: impl Fn(Dims, [&[f32]; 3]) -> Vec<f64>,
    run: impl Fn(Backend, &Qkv<'_>, &mut [f32]) -> Result<(), lara_attn::Error>,
) {
    let (queries, keys) = (shape.queries, shape.keys);
    let _backend = BACKEND
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut failures = Vec::new();
    for std in LOGIT_STDS {
        let q = randn(seed, queries * DIM, std.sqrt());
        let k = randn(seed + 1, keys * DIM, std.sqrt());
        let v = randn(seed + 2, keys * DIM, 1.0);
        let expected = reference(Dims::new(queries, keys, DIM, DIM), [&q, &k, &v]);
        let x = Qkv {
            shape,
            q: &q,
            k: &k,
            v: &v,
            key_mask: None,
        };
        for backend in Backend::ALL.into_iter().filter(|b| b.is_available()) {
            set_backend(Some(backend)).expect("an available backend");
            let mut out = vec![0.0; queries * DIM];
            run(backend, &x, &mut out).unwrap_or_else(|e| panic!("{what}: {e}"));
            let error = relative_error(&out, &expected);
            println!("{what}, logit std {std}, {}: {error:.2e}", backend.name());
            if error.is_nan() || error > TOLERANCE {
                failures.push(format!("std {std}, {}: {error:.2e}", backend.name()));
            }
        }
    }
    set_backend(None).expect("the default backend");
    assert!(
        failures.is_empty(),
        "{what} beyond {TOLERANCE:e}: {failures:?}"
    );
}

/// Exact attention of 64 queries over 65,536 keys (the sums run over the keys; the queries are
/// independent, so a few of them test it).
#[test]
#[ignore = "about 20 s in release; CI runs it"]
fn exact_over_65536_keys_is_within_1e_5_of_float64() {
    let shape = Shape::cross(64, KEYS, DIM, DIM);
    check_at_scale(
        "exact",
        shape,
        1,
        |dims, [q, k, v]| reference::softmax_attention(dims, q, k, v),
        |backend, x, out| {
            let mut scratch = vec![0.0; exact::scratch_len_for(backend, shape)];
            exact::attention(x, out, &mut scratch)
        },
    );
}

/// LARA (mis-opt, eval, C = 64) on 65,536 tokens.
#[test]
#[ignore = "about 30 s in release; CI runs it"]
fn lara_over_65536_tokens_is_within_1e_5_of_float64() {
    let landmarks = 64;
    let shape = Shape::self_attention(KEYS, DIM);
    let params = Params::segment_means(landmarks, Weighting::Optimal { alpha_coeff: 1.0 });
    check_at_scale(
        "LARA",
        shape,
        4,
        |dims, [q, k, v]| reference::lara(dims, landmarks, Mis::Opt(1.0), q, k, v, None),
        |backend, x, out| {
            let len = lara::scratch_len_for(backend, shape, landmarks, params.proposals);
            lara::attention(x, &params, Sampling::Eval, out, &mut vec![0.0; len])
        },
    );
}

/// RFA (positive features, S = 64) on 65,536 tokens.
#[test]
#[ignore = "about 10 s in release; CI runs it"]
fn rfa_over_65536_tokens_is_within_1e_5_of_float64() {
    let features = 64;
    let shape = Shape::self_attention(KEYS, DIM);
    let omega = randn(7, features * DIM, 1.0);
    let params = rfa::Params {
        map: FeatureMap::Positive,
        omega: &omega,
    };
    check_at_scale(
        "RFA",
        shape,
        8,
        |dims, [q, k, v]| reference::performer(dims, &omega, features, q, k, v),
        |backend, x, out| {
            let len = rfa::scratch_len_for(backend, shape, FeatureMap::Positive, features);
            rfa::attention(x, &params, out, &mut vec![0.0; len])
        },
    );
}
