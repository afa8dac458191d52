//! Each call reads the active backend once and runs every pass on it, so a concurrent
//! [`set_backend`] can switch whole calls, never the passes of one call (issue 13: a call that
//! read it once per pass ran its key pass and its query pass on different backends, and 24 of
//! 800 calls matched neither backend's bits).
//!
//! One thread flips the backend between scalar and the best SIMD backend while this one calls
//! every kernel of the registry (and a layer of each kind) again and again: every output must
//! have the bits of one of the two backends. (Not timed: a fixed number of calls, and the
//! flipper stops when they are done. Its own binary, since the backend is process-wide.)

#[path = "support/kernels.rs"]
mod kernels;

use kernels::{Call, KERNELS};
use lara_attn::backend::{Backend, set_backend};
use lara_attn::lara::{self, Weighting};
use lara_attn::layer::{
    Attention, Config, LaraConfig, Layer, Layout, RandomizedMean, Tokens, Weights,
};
use lara_attn::random::{default_rng, fill_standard_normal};
use lara_attn::rfa::FeatureMap;
use lara_attn::{Qkv, Sampling, Shape, ra};
use std::sync::atomic::{AtomicBool, Ordering};

fn randn(seed: u64, len: usize) -> Vec<f32> {
    let mut x = vec![0.0; len];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Runs `call` on `backend`, or (with `None`) on whatever backend is active.
fn output(run: &dyn Fn(&mut [f32]), len: usize, backend: Option<Backend>) -> Vec<u32> {
    if let Some(backend) = backend {
        set_backend(Some(backend)).unwrap();
    }
    let mut out = vec![f32::NAN; len];
    run(&mut out);
    bits(&out)
}

/// A call writing its output.
type Runner<'a> = dyn Fn(&mut [f32]) + Sync + 'a;

#[test]
fn a_concurrent_set_backend_switches_whole_calls() {
    let simd = Backend::best();
    if !simd.is_simd() {
        eprintln!("no SIMD backend on this host: nothing to race");
        return;
    }
    // 40 tokens: more than one 32-row tile, so the blocked passes run several blocks.
    let shape = Shape::self_attention(40, 8);
    let (q, k, v) = (randn(1, 320), randn(2, 320), randn(3, 320));
    let omega = randn(4, 16 * 8);
    let call = Call {
        x: Qkv {
            shape,
            q: &q,
            k: &k,
            v: &v,
            key_mask: None,
        },
        lara: lara::Params::segment_means(6, Weighting::Optimal { alpha_coeff: 1.0 }),
        ra: ra::Params::new(ra::Mean::AttentionWeighted),
        omega: &omega,
        noise: None,
        seed: 5,
        gates: None,
    };
    let dim = 16;
    let tensors: Vec<(&str, Vec<f32>)> = [
        "qkv.weight",
        "qkv.bias",
        "proj.weight",
        "proj.bias",
        "eval_proj",
    ]
    .iter()
    .enumerate()
    .map(|(i, &key)| {
        (
            key,
            randn(10 + i as u64, 3 * dim * dim)
                .iter()
                .map(|w| w * 0.25)
                .collect(),
        )
    })
    .collect();
    let x = randn(20, 40 * dim);
    // Every registry kernel, and a layer of each kind (their projections and estimators).
    let mut runs: Vec<(String, Box<Runner<'_>>, usize)> = Vec::new();
    for kernel in KERNELS {
        let scratch_len = (kernel.scratch_len)(&call);
        let call = &call;
        let run = move |out: &mut [f32]| {
            let mut scratch = vec![0.0; scratch_len];
            (kernel.run)(call, out, &mut scratch).unwrap();
        };
        runs.push((kernel.name.to_string(), Box::new(run), 320));
    }
    let attentions = [
        Attention::Softmax,
        Attention::Lara(LaraConfig::segment_means(6)),
        Attention::Randomized(RandomizedMean::AttentionWeighted),
        Attention::Kernelized {
            map: FeatureMap::Positive,
            features: 8,
        },
    ];
    for attention in attentions {
        let config = Config::new(dim, 2, attention);
        let weights = Weights::from_state_dict(&config, |key| {
            let spec = config.weight_specs().find(|s| s.key == key)?;
            let tensor = &tensors.iter().find(|(k, _)| *k == key)?.1;
            Some(&tensor[..spec.len()])
        })
        .unwrap();
        let layer = Layer::new(config, weights).unwrap();
        let layout = Layout::Sequence(40);
        let scratch_len = Layer::scratch_len(&config, layout);
        let x = &x;
        let run = move |out: &mut [f32]| {
            let tokens = Tokens {
                x,
                layout,
                key_mask: None,
            };
            let mut scratch = vec![0.0; scratch_len];
            layer
                .forward(&tokens, Sampling::Eval, out, &mut scratch)
                .unwrap();
        };
        runs.push((format!("layer {attention:?}"), Box::new(run), 40 * dim));
    }

    let expected: Vec<(Vec<u32>, Vec<u32>)> = runs
        .iter()
        .map(|(_, run, len)| {
            (
                output(run, *len, Some(Backend::Scalar)),
                output(run, *len, Some(simd)),
            )
        })
        .collect();
    set_backend(None).unwrap();
    // Calls whose backends give the same bits (causal RFA: scalar code only) show nothing.
    let racing = expected
        .iter()
        .filter(|(scalar, vector)| scalar != vector)
        .count();
    assert!(
        racing >= 8,
        "only {racing} calls differ between scalar and {simd}"
    );

    /// Stops the flipper when dropped, so a failed assertion (a panic) ends the scope instead
    /// of waiting for the flipper forever.
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut flips = 0u64;
            while !done.load(Ordering::Relaxed) {
                let backend = if flips.is_multiple_of(2) {
                    Backend::Scalar
                } else {
                    simd
                };
                set_backend(Some(backend)).unwrap();
                flips += 1;
                std::hint::spin_loop();
            }
        });
        let _stop = Stop(&done);
        // (Debug builds, in CI's plain `cargo test`, are ~20x slower: fewer rounds there.)
        let rounds = if cfg!(debug_assertions) { 100 } else { 1000 };
        for round in 0..rounds {
            for ((name, run, len), (scalar, vector)) in runs.iter().zip(&expected) {
                let out = output(run, *len, None);
                assert!(
                    out == *scalar || out == *vector,
                    "{name}, round {round}: the output matches neither scalar nor {simd}: the passes of one call ran on different backends"
                );
            }
        }
    });
    set_backend(None).unwrap();
}
