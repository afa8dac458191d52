//! Host-side property tests: every kernel against the independent float64 reference of
//! `tests/support/reference.rs` over many shapes, plus structural properties (convexity,
//! permutation invariance, landmark rules), dirty scratch, error handling, huge logits, RFA
//! convergence and the determinism of the sampled modes.
//!
//! One test binary (`cargo test --test properties`) in several modules:
//!
//! | module | what |
//! |---|---|
//! | [`reference_sweep`] | exact, LARA, RA and RFA against the f64 reference over shape sweeps |
//! | [`structure`] | convexity (also on huge logits), key permutation invariance, landmark rules |
//! | [`scratch`] | dirty, exact-size and oversized scratch give identical bits |
//! | [`sampling`] | seeded determinism of the sampled modes, RFA convergence to exact attention |
//! | [`errors`] | every error reachable through the slice API, buffers untouched |
//!
//! The tests that run "every kernel" take the kernels from the registry
//! `tests/support/kernels.rs` ([`KERNELS`]), so a new entry point joins them automatically;
//! [`variants`] builds the calls they run.

#[path = "../support/backend_env.rs"]
mod backend_env;
// (The registry's `run: fn(&Call, &mut [f32], &mut [f32]) -> Result<..>` field is what clippy's
// type_complexity flags; the registry is shared, so the allowance is taken here.)
#[path = "../support/kernels.rs"]
mod kernels;
#[path = "../support/reference.rs"]
mod reference;

mod errors;
mod reference_sweep;
mod sampling;
mod scratch;
mod structure;
mod variants;

use kernels::{Call, Kernel};
use lara_attn::backend::active_backend;
use lara_attn::random::{default_rng, fill_standard_normal};
use lara_attn::{Error, Qkv, Shape, lara, ra};
use reference::Dims;

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// `len` iid `N(0, 1)` draws from the default generator seeded with `seed`.
fn randn(seed: u64, len: usize) -> Vec<f32> {
    let mut x = vec![0.0f32; len];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x
}

fn scaled(x: &[f32], a: f32) -> Vec<f32> {
    x.iter().map(|&v| v * a).collect()
}

/// The inputs of one head: `q [n_q, d]`, `k [n_k, d]`, `v [n_k, d_v]`.
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

    /// The inputs as the crate takes them, without a key mask.
    fn qkv(&self) -> Qkv<'_> {
        qkv(self.shape, &self.q, &self.k, &self.v)
    }
}

/// `Qkv` without a key mask.
fn qkv<'a>(shape: Shape, q: &'a [f32], k: &'a [f32], v: &'a [f32]) -> Qkv<'a> {
    Qkv {
        shape,
        q,
        k,
        v,
        key_mask: None,
    }
}

/// A registry call on `x`: eval mode, default LARA and RA parameters (the official defaults,
/// the key-average RA mean), no `ω`, no gates. Callers set what their kernel reads.
fn base_call(x: Qkv<'_>) -> Call<'_> {
    Call {
        x,
        lara: lara::Params::default(),
        ra: ra::Params::new(ra::Mean::KeyAverage),
        omega: &[],
        noise: None,
        seed: 0,
        gates: None,
    }
}

/// `n_q` key indices below `n_k`, for RA's given-key mean.
fn key_indices(seed: u64, nq: usize, nk: usize) -> Vec<u32> {
    use lara_attn::rand_core::RngCore;
    let mut rng = default_rng(seed);
    (0..nq).map(|_| rng.next_u32() % nk as u32).collect()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
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
// Running registry kernels
// ---------------------------------------------------------------------------------------------

/// Whether `kernel` takes inputs of `shape`: the causal kernels need as many queries as keys
/// (the convention of `tests/backends.rs`).
fn runs_on(kernel: &Kernel, shape: Shape) -> bool {
    !kernel.name.starts_with("causal") || shape.queries == shape.keys
}

/// The output length `h · n_q · d_v` of a shape.
fn out_len(shape: Shape) -> usize {
    shape.heads * shape.queries * shape.value_dim
}

/// Runs `kernel` on `call` with a zero-filled scratch of exactly the registry's `scratch_len`.
fn try_run(kernel: &Kernel, call: &Call<'_>) -> Result<Vec<f32>, Error> {
    let mut out = vec![0.0f32; out_len(call.x.shape)];
    let mut scratch = vec![0.0f32; (kernel.scratch_len)(call)];
    (kernel.run)(call, &mut out, &mut scratch).map(|()| out)
}

/// [`try_run`], panicking on an error.
fn run(kernel: &Kernel, call: &Call<'_>) -> Vec<f32> {
    try_run(kernel, call).unwrap_or_else(|e| panic!("{} {:?}: {e}", kernel.name, call.x.shape))
}

/// The scratch `kernel` needs for `call` on the active backend, as it reports it when given
/// none: at most the registry's `scratch_len` (enough for every backend compiled here). The
/// call must be valid but for the scratch.
fn needed_scratch(kernel: &Kernel, call: &Call<'_>) -> usize {
    let mut out = vec![0.0f32; out_len(call.x.shape)];
    let compiled = (kernel.scratch_len)(call);
    match (kernel.run)(call, &mut out, &mut []) {
        Err(Error::ScratchTooSmall { needed, actual: 0 }) => {
            assert!(
                needed <= compiled,
                "{} on {}: needs {needed} floats of scratch, scratch_len says {compiled}",
                kernel.name,
                active_backend()
            );
            needed
        }
        other => panic!(
            "{} {:?}: an empty scratch gave {other:?}",
            kernel.name, call.x.shape
        ),
    }
}
