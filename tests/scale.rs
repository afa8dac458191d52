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

/// Runs `check` on every backend that runs here (the default backend again afterwards).
fn on_every_backend(mut check: impl FnMut(Backend) -> f64, what: &str) {
    let mut failures = Vec::new();
    for backend in Backend::ALL.into_iter().filter(|b| b.is_available()) {
        set_backend(Some(backend)).expect("an available backend");
        let error = check(backend);
        println!("{what}, {}: {error:.2e}", backend.name());
        if error.is_nan() || error > TOLERANCE {
            failures.push(format!("{}: {error:.2e}", backend.name()));
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
    let queries = 64;
    let shape = Shape::cross(queries, KEYS, DIM, DIM);
    for std in LOGIT_STDS {
        let q = randn(1, queries * DIM, std.sqrt());
        let k = randn(2, KEYS * DIM, std.sqrt());
        let v = randn(3, KEYS * DIM, 1.0);
        let dims = Dims::new(queries, KEYS, DIM, DIM);
        let expected = reference::softmax_attention(dims, &q, &k, &v);
        let x = Qkv {
            shape,
            q: &q,
            k: &k,
            v: &v,
            key_mask: None,
        };
        on_every_backend(
            |backend| {
                let mut out = vec![0.0; queries * DIM];
                let mut scratch = vec![0.0; exact::scratch_len_for(backend, shape)];
                exact::attention(&x, &mut out, &mut scratch).expect("exact attention");
                relative_error(&out, &expected)
            },
            &format!("exact, logit std {std}"),
        );
    }
}

/// LARA (mis-opt, eval, C = 64) on 65,536 tokens.
#[test]
#[ignore = "about 30 s in release; CI runs it"]
fn lara_over_65536_tokens_is_within_1e_5_of_float64() {
    let landmarks = 64;
    let shape = Shape::self_attention(KEYS, DIM);
    let params = Params::segment_means(landmarks, Weighting::Optimal { alpha_coeff: 1.0 });
    for std in LOGIT_STDS {
        let q = randn(4, KEYS * DIM, std.sqrt());
        let k = randn(5, KEYS * DIM, std.sqrt());
        let v = randn(6, KEYS * DIM, 1.0);
        let dims = Dims::new(KEYS, KEYS, DIM, DIM);
        let expected = reference::lara(dims, landmarks, Mis::Opt(1.0), &q, &k, &v, None);
        let x = Qkv {
            shape,
            q: &q,
            k: &k,
            v: &v,
            key_mask: None,
        };
        on_every_backend(
            |backend| {
                let mut out = vec![0.0; KEYS * DIM];
                let len = lara::scratch_len_for(backend, shape, landmarks, params.proposals);
                let mut scratch = vec![0.0; len];
                lara::attention(&x, &params, Sampling::Eval, &mut out, &mut scratch).expect("LARA");
                relative_error(&out, &expected)
            },
            &format!("LARA, logit std {std}"),
        );
    }
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
    for std in LOGIT_STDS {
        let q = randn(8, KEYS * DIM, std.sqrt());
        let k = randn(9, KEYS * DIM, std.sqrt());
        let v = randn(10, KEYS * DIM, 1.0);
        let dims = Dims::new(KEYS, KEYS, DIM, DIM);
        let expected = reference::performer(dims, &omega, features, &q, &k, &v);
        let x = Qkv {
            shape,
            q: &q,
            k: &k,
            v: &v,
            key_mask: None,
        };
        on_every_backend(
            |backend| {
                let mut out = vec![0.0; KEYS * DIM];
                let len = rfa::scratch_len_for(backend, shape, FeatureMap::Positive, features);
                let mut scratch = vec![0.0; len];
                rfa::attention(&x, &params, &mut out, &mut scratch).expect("RFA");
                relative_error(&out, &expected)
            },
            &format!("RFA, logit std {std}"),
        );
    }
}
