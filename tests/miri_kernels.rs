//! The kernels under miri (`.ci/run`): every registry kernel (f32 and int8) on one small shape
//! with tails (n = 9, d = 5, two heads, a key mask), on every backend miri can run here —
//! scalar, blocked and, on x86_64, SSE2 (miri has no AVX-512; cpufeatures reports neither
//! AVX2 nor AVX-512 under miri). Outputs must be finite. Small enough for miri (about a minute
//! per backend); also an ordinary fast test.
//!
//! `cargo +nightly miri test --test miri_kernels --features libm/force-soft-floats` (libm's x86
//! `sqrt` uses inline assembly, which miri cannot run).

#[path = "support/kernels.rs"]
mod kernels;

use kernels::{Call, INT8_KERNELS, Int8Call, KERNELS};
use lara_attn::backend::{Backend, set_backend};
use lara_attn::lara::{self, Weighting};
use lara_attn::random::{default_rng, fill_standard_normal};
use lara_attn::{Qkv, Shape, int8, ra};

fn randn(seed: u64, len: usize) -> Vec<f32> {
    let mut x = vec![0.0; len];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x
}

const HEADS: usize = 2;
const N: usize = 9;
const D: usize = 5;
const FEATURES: usize = 3;

#[test]
fn every_kernel_on_every_backend_miri_runs() {
    let shape = Shape::self_attention(N, D).with_heads(HEADS);
    let len = HEADS * N * D;
    let (q, k, v) = (randn(1, len), randn(2, len), randn(3, len));
    let omega = randn(4, HEADS * FEATURES * D);
    let gates = vec![0.7; HEADS * N];
    let mask: Vec<bool> = (0..N).map(|j| j == 4).collect();
    let call = Call {
        x: Qkv {
            shape,
            q: &q,
            k: &k,
            v: &v,
            key_mask: Some(&mask),
        },
        lara: lara::Params::segment_means(3, Weighting::Optimal { alpha_coeff: 1.0 }),
        ra: ra::Params::new(ra::Mean::AttentionWeighted),
        omega: &omega,
        noise: None,
        seed: 5,
        gates: Some(&gates),
    };
    let backends = [Backend::Scalar, Backend::Blocked, Backend::Sse2];
    for backend in backends.into_iter().filter(|b| b.is_available()) {
        set_backend(Some(backend)).unwrap();
        for kernel in KERNELS {
            let mut out = vec![f32::NAN; len];
            let mut scratch = vec![f32::NAN; (kernel.scratch_len)(&call)];
            (kernel.run)(&call, &mut out, &mut scratch).unwrap();
            assert!(
                out.iter().all(|x| x.is_finite()),
                "{} on {backend}",
                kernel.name
            );
        }
    }
    set_backend(None).unwrap();

    let quantise = |x: &[f32]| -> Vec<i8> { x.iter().map(|v| (v * 40.0) as i8).collect() };
    let (q8, k8, v8, omega8) = (quantise(&q), quantise(&k), quantise(&v), quantise(&omega));
    let call = Int8Call {
        x: int8::Qkv {
            shape,
            q: &q8,
            k: &k8,
            v: &v8,
            key_mask: Some(&mask),
        },
        scales: int8::Scales {
            q: 0.025,
            k: 0.025,
            v: 0.025,
            out: 0.025,
        },
        lara: int8::lara::Config::eval(Weighting::Optimal { alpha_coeff: 1.0 }),
        landmarks: int8::lara::Landmarks::SegmentMeans(3),
        noise: None,
        omega: &omega8,
        omega_scale: 0.025,
    };
    for kernel in INT8_KERNELS {
        let mut out = vec![0i8; len];
        let mut scratch = vec![0i32; (kernel.scratch_len)(&call)];
        (kernel.run)(&call, int8::Out::I8(&mut out), &mut scratch).unwrap();
    }
}
