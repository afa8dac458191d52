//! Criterion benchmarks of every estimator, on the scalar reference and the best backend.
//! `cargo bench --bench estimators`; the one-run comparison table is `examples/bench.rs`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lara_attn::backend::{Backend, set_backend};
use lara_attn::lara::{Params, Weighting};
use lara_attn::random::{NoiseScale, default_rng, fill_standard_normal, gaussian_omega};
use lara_attn::{Shape, exact, lara, ra, rfa};
use std::hint::black_box;

fn random(len: usize, seed: u64, gain: f32) -> Vec<f32> {
    let mut x = vec![0.0; len];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x.iter_mut().for_each(|v| *v *= gain);
    x
}

fn estimators(c: &mut Criterion) {
    for &(n, d, features) in &[(256usize, 32usize, 16usize), (1024, 64, 64), (4096, 64, 64)] {
        let shape = Shape::self_attention(n, d);
        let (q, k, v) = (
            random(n * d, 1, 0.5),
            random(n * d, 2, 0.5),
            random(n * d, 3, 1.0),
        );
        let mut omega = vec![0.0; features * d];
        gaussian_omega(&mut default_rng(4), features, d, &mut omega).unwrap();
        let mut out = vec![0.0; n * d];
        let mut scratch = vec![
            0.0;
            [
                exact::scratch_len(shape),
                lara::scratch_len(shape, features),
                rfa::positive_scratch_len(shape, features),
                ra::scratch_len(shape)
            ]
            .into_iter()
            .max()
            .unwrap()
        ];
        let params = Params::segment_means(features, Weighting::Optimal { alpha_coeff: 1.0 });
        let mut group = c.benchmark_group(format!("{n}x{d}x{features}"));
        group.throughput(Throughput::Elements(n as u64));
        group.sample_size(10);
        for backend in [Backend::Scalar, Backend::best()] {
            set_backend(Some(backend)).unwrap();
            let id = |name: &str| BenchmarkId::new(name, backend.name());
            group.bench_function(id("lara"), |b| {
                b.iter(|| {
                    lara::attention(shape, &params, &q, &k, &v, None, &mut out, &mut scratch)
                        .unwrap()
                })
            });
            group.bench_function(id("rfa"), |b| {
                b.iter(|| {
                    rfa::positive(shape, &omega, features, &q, &k, &v, &mut out, &mut scratch)
                        .unwrap()
                })
            });
            if n <= 1024 || backend != Backend::Scalar {
                group.bench_function(id("exact"), |b| {
                    b.iter(|| exact::attention(shape, &q, &k, &v, &mut out, &mut scratch).unwrap())
                });
                group.bench_function(id("ra"), |b| {
                    b.iter(|| {
                        ra::attention(
                            shape,
                            ra::Mean::AttentionWeighted,
                            NoiseScale::Official,
                            &q,
                            &k,
                            &v,
                            None,
                            &mut out,
                            &mut scratch,
                        )
                        .unwrap()
                    })
                });
            }
            black_box(&out);
        }
        set_backend(None).unwrap();
        group.finish();
    }
}

criterion_group!(benches, estimators);
criterion_main!(benches);
