//! Throughput of every estimator on every backend the host supports, in one run.
//!
//! ```text
//! cargo run --release --example bench                      # table
//! cargo run --release --example bench -- --json            # one JSON object per line
//! cargo run --release --example bench -- --shapes 512x32x16,2048x64x32
//! cargo run --release --example bench -- --full            # also scalar exact/RA above n = 4096
//! cargo run --release --example bench -- --options         # the cost of each option, as ratios
//! cargo run --release --example bench -- --layers          # whole layers: LinearRA vs softmax
//! cargo run --release --example bench -- --int8            # the int8 kernels on every backend
//! ```
//!
//! Each measurement: one warm-up call, then repetitions until 0.3 s have passed (at least 3, at
//! most 25), and the median. FLOPs count the multiply-adds of each algorithm (2 per
//! multiply-add; exponentials not counted), so GFLOP/s compare estimators on equal terms. The
//! core's fp32 peak is measured in the same run by a register-only FMA loop per backend.
//! Estimators: exact softmax; LARA mis-opt (alpha 1) in eval mode with C landmarks; RA with the
//! attention-weighted mean (`num_samples = -1`) in eval mode; RFA with S positive features.
//! `--int8`: the int8 kernels of the registry (exact; LARA mis-opt, alpha 1, eval mode, C
//! landmarks; RFA with S = C features) on the same inputs quantised per tensor, on every backend:
//! their integer inner loops are the portable ones on scalar, blocked and SSE2, AVX2's on AVX2
//! and AVX-512, NEON's on NEON (the same bits on every backend); shapes 256x32x16, 1024x64x64,
//! 4096x64x64 unless `--shapes` (exact above n = 4096 only with `--full`).

#[path = "../tests/support/kernels.rs"]
mod kernels;

use kernels::{Call, INT8_KERNELS, Int8Call, KERNELS, Kernel};
use lara_attn::backend::{Backend, set_backend};
use lara_attn::lara::{Params, Proposals, Weighting};
use lara_attn::random::{NoiseScale, default_rng, fill_standard_normal, gaussian_omega};
use lara_attn::{Qkv, Shape, int8, lara, ra};
use std::hint::black_box;
use std::time::{Duration, Instant};

const DEFAULT_SHAPES: [(usize, usize, usize); 5] = [
    (64, 16, 8),
    (256, 32, 16),
    (1024, 64, 64),
    (4096, 64, 64),
    (16384, 64, 64),
];
const ESTIMATORS: [&str; 4] = ["exact", "lara", "rfa", "ra"];

struct Options {
    json: bool,
    full: bool,
    option_costs: bool,
    layers: bool,
    int8: bool,
    shapes: Vec<(usize, usize, usize)>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        json: false,
        full: false,
        option_costs: false,
        layers: false,
        int8: false,
        shapes: DEFAULT_SHAPES.to_vec(),
    };
    let mut shapes_given = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => options.json = true,
            "--full" => options.full = true,
            "--layers" => options.layers = true,
            "--int8" => options.int8 = true,
            "--options" => {
                options.option_costs = true;
                options.shapes = vec![(1024, 64, 64), (4096, 64, 64)];
            }
            "--shapes" => {
                let list = args.next().ok_or("--shapes needs NxDxC,…")?;
                options.shapes = list.split(',').map(parse_shape).collect::<Result<_, _>>()?;
                shapes_given = true;
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (expected --json, --full, --options, --layers, --int8, --shapes NxDxC,…)"
                ));
            }
        }
    }
    if options.int8 && !shapes_given {
        options.shapes = vec![(256, 32, 16), (1024, 64, 64), (4096, 64, 64)];
    }
    Ok(options)
}

fn parse_shape(text: &str) -> Result<(usize, usize, usize), String> {
    let parts: Vec<usize> = text
        .split('x')
        .map(|p| p.trim().parse().map_err(|_| format!("bad shape {text:?}")))
        .collect::<Result<_, _>>()?;
    match parts[..] {
        [n, d, c] if n > 0 && d > 0 && c > 0 => Ok((n, d, c)),
        _ => Err(format!(
            "bad shape {text:?}: expected NxDxC with positive sizes"
        )),
    }
}

/// Multiply-add FLOPs of one call.
fn flops(estimator: &str, n: usize, d: usize, c: usize) -> f64 {
    let (n, d, c) = (n as f64, d as f64, c as f64);
    match estimator {
        "exact" => 2.0 * n * n * 2.0 * d,
        // key pass n·C·(d + d_v), query pass n·C·(d + d_v), mis-opt's T twice n·C·d, C²·d
        "lara" => 2.0 * (n * c * 2.0 * d + n * c * 2.0 * d + 2.0 * n * c * d + c * c * d),
        "rfa" => 2.0 * (2.0 * n * c * 2.0 * d),
        // the attention-weighted mean and the output: two exact attentions
        "ra" => 2.0 * 2.0 * n * n * 2.0 * d,
        _ => 0.0,
    }
}

/// The inputs of one shape.
struct Inputs {
    shape: Shape,
    c: usize,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    omega: Vec<f32>,
    out: Vec<f32>,
    scratch: Vec<f32>,
}

impl Inputs {
    fn new(n: usize, d: usize, c: usize) -> Self {
        let mut rng = default_rng(42);
        let mut random = |len: usize, gain: f32| {
            let mut x = vec![0.0; len];
            fill_standard_normal(&mut rng, &mut x);
            x.iter_mut().for_each(|v| *v *= gain);
            x
        };
        let (q, k, v) = (random(n * d, 0.5), random(n * d, 0.5), random(n * d, 1.0));
        let mut omega = vec![0.0; c * d];
        gaussian_omega(&mut default_rng(7), c, d, &mut omega).expect("omega");
        let mut inputs = Inputs {
            shape: Shape::self_attention(n, d),
            c,
            q,
            k,
            v,
            omega,
            out: vec![0.0; n * d],
            scratch: Vec::new(),
        };
        let call = inputs.call();
        let scratch_len = KERNELS
            .iter()
            .map(|kernel| (kernel.scratch_len)(&call))
            .max()
            .unwrap_or(0);
        let scratch_len =
            scratch_len.max(lara::scratch_len(inputs.shape, c, Proposals::Antithetic));
        inputs.scratch = vec![0.0; scratch_len];
        inputs
    }

    /// The benchmarked configuration: LARA mis-opt (α = 1) with C landmarks in eval mode, RA
    /// with the attention-weighted mean in eval mode, RFA with S = C features.
    fn call(&self) -> Call<'_> {
        Call {
            x: Qkv {
                shape: self.shape,
                q: &self.q,
                k: &self.k,
                v: &self.v,
                key_mask: None,
            },
            lara: Params::segment_means(self.c, Weighting::Optimal { alpha_coeff: 1.0 }),
            ra: ra::Params::new(ra::Mean::AttentionWeighted),
            omega: &self.omega,
            noise: None,
            seed: 5,
            gates: None,
        }
    }
}

/// Times `kernel` on `call`, writing into `out` with `scratch`.
fn time(kernel: &Kernel, call: &Call<'_>, out: &mut [f32], scratch: &mut [f32]) -> f64 {
    measure(|| {
        (kernel.run)(call, out, scratch).expect("kernel call");
        black_box(&*out);
    })
}

/// Median seconds per call.
fn measure(mut call: impl FnMut()) -> f64 {
    call(); // warm-up
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (start.elapsed() < Duration::from_millis(300) && times.len() < 25) {
        let t = Instant::now();
        call();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The fp32 peak of one core on `backend`: independent FMA chains held in registers.
fn peak_gflops(backend: Backend) -> f64 {
    let iterations = 20_000_000usize;
    let (flops_per_iteration, seconds) = match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => (
            16.0 * 16.0 * 2.0,
            measure(|| unsafe { peak::avx512(iterations / 4) }) * 4.0,
        ),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => (
            12.0 * 8.0 * 2.0,
            measure(|| unsafe { peak::avx2(iterations / 4) }) * 4.0,
        ),
        #[cfg(target_arch = "x86_64")]
        Backend::Sse2 => (
            12.0 * 4.0 * 2.0,
            measure(|| peak::sse2(iterations / 4)) * 4.0,
        ),
        _ => (8.0 * 2.0, measure(|| peak::scalar(iterations / 4)) * 4.0),
    };
    flops_per_iteration * iterations as f64 / seconds / 1e9
}

mod peak {
    //! Register-only multiply-add loops: as many independent accumulators as hide the latency.

    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// 16 chains of 16-lane FMAs.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(iterations: usize) {
        let (a, b) = (
            _mm512_set1_ps(black_box(0.999)),
            _mm512_set1_ps(black_box(1e-7)),
        );
        let mut acc = [_mm512_set1_ps(black_box(1.0)); 16];
        for _ in 0..iterations {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        black_box(acc);
    }

    /// 12 chains of 8-lane FMAs.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(iterations: usize) {
        let (a, b) = (
            _mm256_set1_ps(black_box(0.999)),
            _mm256_set1_ps(black_box(1e-7)),
        );
        let mut acc = [_mm256_set1_ps(black_box(1.0)); 12];
        for _ in 0..iterations {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        black_box(acc);
    }

    /// 12 chains of 4-lane multiply + add (SSE2 has no FMA).
    #[cfg(target_arch = "x86_64")]
    pub fn sse2(iterations: usize) {
        // SAFETY: SSE2 is the x86_64 baseline.
        unsafe {
            let (a, b) = (_mm_set1_ps(black_box(0.999)), _mm_set1_ps(black_box(1e-7)));
            let mut acc = [_mm_set1_ps(black_box(1.0)); 12];
            for _ in 0..iterations {
                for x in acc.iter_mut() {
                    *x = _mm_add_ps(_mm_mul_ps(*x, a), b);
                }
            }
            black_box(acc);
        }
    }

    /// 8 scalar chains (black_box per step keeps the compiler from vectorising them).
    pub fn scalar(iterations: usize) {
        let (a, b) = (black_box(0.999f32), black_box(1e-7f32));
        let mut acc = [black_box(1.0f32); 8];
        for _ in 0..iterations {
            for x in acc.iter_mut() {
                *x = *x * a + b;
            }
            acc = black_box(acc);
        }
    }
}

struct Row {
    estimator: &'static str,
    shape: (usize, usize, usize),
    backend: Backend,
    seconds: f64,
    gflops: f64,
}

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if options.option_costs {
        option_costs(&options.shapes);
        return;
    }
    if options.layers {
        layer_costs();
        return;
    }
    if options.int8 {
        int8_costs(&options);
        return;
    }
    let backends: Vec<Backend> = Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .collect();
    let mut rows = Vec::new();
    for &(n, d, c) in &options.shapes {
        let mut x = Inputs::new(n, d, c);
        let (mut out, mut scratch) = (std::mem::take(&mut x.out), std::mem::take(&mut x.scratch));
        let call = x.call();
        for &backend in &backends {
            set_backend(Some(backend)).expect("available backend");
            for estimator in ESTIMATORS {
                let quadratic = matches!(estimator, "exact" | "ra");
                if quadratic && backend == Backend::Scalar && n > 4096 && !options.full {
                    continue; // minutes per call; --full includes it
                }
                let kernel = Kernel::named(estimator).expect("a registry kernel");
                let seconds = time(kernel, &call, &mut out, &mut scratch);
                let gflops = flops(estimator, n, d, c) / seconds / 1e9;
                let row = Row {
                    estimator,
                    shape: (n, d, c),
                    backend,
                    seconds,
                    gflops,
                };
                if options.json {
                    println!(
                        "{{\"estimator\": \"{}\", \"n\": {n}, \"d\": {d}, \"c\": {c}, \"backend\": \"{}\", \"median_s\": {:.6e}, \"gflops\": {:.3}}}",
                        row.estimator,
                        backend.name(),
                        seconds,
                        gflops
                    );
                }
                rows.push(row);
            }
        }
    }
    set_backend(None).expect("reset");
    if options.json {
        return;
    }
    print_table(&rows, &backends);
}

fn find<'a>(
    rows: &'a [Row],
    estimator: &str,
    shape: (usize, usize, usize),
    backend: Backend,
) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.estimator == estimator && r.shape == shape && r.backend == backend)
}

fn print_table(rows: &[Row], backends: &[Backend]) {
    println!(
        "{:<6} {:>16} {:>8} {:>12} {:>9} {:>10}",
        "est.", "n x d x c", "backend", "median", "GFLOP/s", "vs scalar"
    );
    for row in rows {
        let (n, d, c) = row.shape;
        let speedup = find(rows, row.estimator, row.shape, Backend::Scalar)
            .map_or("-".to_string(), |s| {
                format!("{:.1}x", s.seconds / row.seconds)
            });
        println!(
            "{:<6} {:>16} {:>8} {:>9.3} ms {:>9.2} {:>10}",
            row.estimator,
            format!("{n}x{d}x{c}"),
            row.backend.name(),
            row.seconds * 1e3,
            row.gflops,
            speedup
        );
    }
    let best = Backend::best();
    println!("\nratios on {} (exact time / estimator time):", best.name());
    let shapes: Vec<_> = rows.iter().map(|r| r.shape).fold(Vec::new(), |mut v, s| {
        if !v.contains(&s) {
            v.push(s)
        }
        v
    });
    for &shape in &shapes {
        let exact = find(rows, "exact", shape, best);
        let ratio = |est: &str| match (exact, find(rows, est, shape, best)) {
            (Some(e), Some(r)) => format!("{:.1}x", e.seconds / r.seconds),
            _ => "-".into(),
        };
        println!(
            "  {:>16}: LARA {:>8}  RFA {:>8}  RA {:>8}",
            format!("{}x{}x{}", shape.0, shape.1, shape.2),
            ratio("lara"),
            ratio("rfa"),
            ratio("ra")
        );
    }
    for est in ["lara", "rfa"] {
        let small = shapes
            .iter()
            .find(|s| s.0 == 1024 && s.1 == 64 && s.2 == 64)
            .and_then(|&s| find(rows, est, s, best));
        let large = shapes
            .iter()
            .find(|s| s.0 == 16384 && s.1 == 64 && s.2 == 64)
            .and_then(|&s| find(rows, est, s, best));
        if let (Some(a), Some(b)) = (small, large) {
            println!(
                "  {est}: time(16384) / time(1024) = {:.1} (linear: 16)",
                b.seconds / a.seconds
            );
        }
    }
    println!("\nfp32 peak of one core, measured by an FMA loop:");
    let mut best_peak: f64 = 0.0;
    for &backend in backends {
        let peak = peak_gflops(backend);
        best_peak = best_peak.max(peak);
        println!("  {:>8}: {:.1} GFLOP/s", backend.name(), peak);
    }
    for &shape in &shapes {
        for est in ESTIMATORS {
            if let Some(r) = find(rows, est, shape, best)
                && shape == (4096, 64, 64)
            {
                println!(
                    "  {est} at 4096x64x64 on {}: {:.1}% of peak",
                    best.name(),
                    100.0 * r.gflops / best_peak
                );
            }
        }
    }
}

/// `base` with LARA's `params` in sampled mode, the noise the first rows of `eps`.
fn lara_sampled<'a>(params: Params<'a>, eps: &'a [f32], base: Call<'a>) -> Call<'a> {
    let call = Call {
        lara: params,
        ..base
    };
    let noise = &eps[..lara::noise_len(call.x.shape, call.landmarks(), params.proposals)];
    Call {
        noise: Some(noise),
        ..call
    }
}

/// The cost of each option against the call it modifies, on the best backend, measured in one
/// run: a ratio of median times (1.00 = free). Masks mark every fourth key and the last quarter.
fn option_costs(shapes: &[(usize, usize, usize)]) {
    println!("backend {}", lara_attn::backend::active_backend().name());
    println!("| option | vs | n × d × C | ratio |");
    println!("|---|---|---|---|");
    for &(n, d, c) in shapes {
        let mut x = Inputs::new(n, d, c);
        let (mut out, mut scratch) = (std::mem::take(&mut x.out), std::mem::take(&mut x.scratch));
        let mask: Vec<bool> = (0..n).map(|j| j % 4 == 3 || j >= n * 3 / 4).collect();
        let eps = {
            let mut eps = vec![0.0; 2 * c * d];
            fill_standard_normal(&mut default_rng(3), &mut eps);
            eps
        };
        let plain = x.call();
        let masked = Call {
            x: Qkv {
                key_mask: Some(&mask),
                ..plain.x
            },
            ..plain
        };
        let mut timed = |name: &str, call: &Call<'_>| {
            time(
                Kernel::named(name).expect("a registry kernel"),
                call,
                &mut out,
                &mut scratch,
            )
        };
        // LARA in sampled mode with the given noise, against single proposals.
        let lara_with = |params, base| lara_sampled(params, &eps, base);
        let optimal = plain.lara;
        let single = timed("lara", &lara_with(optimal, plain));
        let mut rows = vec![
            (
                "LARA antithetic proposals",
                "LARA sampled, single",
                timed(
                    "lara",
                    &lara_with(optimal.with_proposals(Proposals::Antithetic), plain),
                ) / single,
            ),
            (
                "LARA two proposals per landmark",
                "LARA sampled, single",
                timed(
                    "lara",
                    &lara_with(optimal.with_proposals(Proposals::TwoPerLandmark), plain),
                ) / single,
            ),
            (
                "LARA paper noise scale",
                "LARA sampled, official",
                timed(
                    "lara",
                    &lara_with(optimal.with_noise_scale(NoiseScale::Paper), plain),
                ) / single,
            ),
            (
                "LARA key mask (44% masked)",
                "LARA sampled",
                timed("lara", &lara_with(optimal, masked)) / single,
            ),
        ];
        let exact_plain = timed("exact", &plain);
        let rfa_plain = timed("rfa", &plain);
        let ra_plain = timed("ra", &plain);
        rows.push((
            "exact key mask (44% masked)",
            "exact",
            timed("exact", &masked) / exact_plain,
        ));
        rows.push((
            "RFA key mask (44% masked)",
            "RFA positive",
            timed("rfa", &masked) / rfa_plain,
        ));
        rows.push((
            "RFA positive in log space",
            "RFA positive",
            timed("rfa-log-space", &plain) / rfa_plain,
        ));
        rows.push((
            "RA key mask (44% masked)",
            "RA",
            timed("ra", &masked) / ra_plain,
        ));
        for (option, against, ratio) in rows {
            println!("| {option} | {against} | {n} × {d} × {c} | {ratio:.2} |");
        }
    }
}

/// Whole layers, `dim` 256 in 4 heads (`d` = 64), on every backend: `LinearRA` (`no-param-pool`,
/// mis-opt, C = 64, eval) against `MultiheadAttention` with the same weights. FLOPs: the qkv
/// and output projections `4·n·dim²` multiply-adds, plus each head's attention as the
/// estimator rows count it (and, for LARA, the second projection of `q` that `mis-opt`'s
/// normaliser costs, `n·dim²`).
fn layer_costs() {
    use lara_attn::layer::{Attention, Config, LaraConfig, Layer, Layout, Tokens, Weights};
    const DIM: usize = 256;
    const HEADS: usize = 4;
    const C: usize = 64;
    let (d, dim) = (DIM / HEADS, DIM as f64);
    let random = |len: usize, gain: f32, seed: u64| {
        let mut x = vec![0.0; len];
        fill_standard_normal(&mut default_rng(seed), &mut x);
        x.iter_mut().for_each(|v| *v *= gain);
        x
    };
    let gain = 1.0 / (DIM as f32).sqrt();
    let (qkv_weight, qkv_bias) = (random(3 * DIM * DIM, gain, 1), random(3 * DIM, 0.1, 2));
    let (proj_weight, proj_bias) = (random(DIM * DIM, gain, 3), random(DIM, 0.1, 4));
    let weights = Weights {
        qkv_weight: &qkv_weight,
        qkv_bias: Some(&qkv_bias),
        proj_weight: &proj_weight,
        proj_bias: &proj_bias,
        ..Weights::default()
    };
    let lara = Config::new(DIM, HEADS, Attention::Lara(LaraConfig::segment_means(C)));
    let softmax = Config::new(DIM, HEADS, Attention::Softmax);
    let layers = [
        ("LinearRA", Layer::new(lara, weights).expect("layer")),
        ("softmax", Layer::new(softmax, weights).expect("layer")),
    ];
    println!("| layer | n | backend | median | GFLOP/s | LinearRA vs softmax |");
    println!("|---|---|---|---|---|---|");
    let backends: Vec<Backend> = Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .collect();
    for n in [256, 1024, 4096] {
        let x = random(n * DIM, 1.0, 5);
        let tokens = Tokens {
            x: &x,
            layout: Layout::Sequence(n),
            key_mask: None,
        };
        let mut out = vec![0.0; n * DIM];
        for &backend in &backends {
            if backend == Backend::Scalar && n > 1024 {
                continue; // minutes per call
            }
            set_backend(Some(backend)).expect("available backend");
            let mut times = Vec::new();
            for (name, layer) in &layers {
                let mut scratch = vec![0.0; Layer::scratch_len(layer.config(), tokens.layout)];
                let seconds = measure(|| {
                    let sampling = lara_attn::Sampling::Eval;
                    layer
                        .forward(&tokens, sampling, &mut out, &mut scratch)
                        .expect("layer");
                    black_box(&out);
                });
                let (nf, heads) = (n as f64, HEADS as f64);
                let projections = 4.0 * nf * dim * dim;
                let attention = match *name {
                    "LinearRA" => heads * flops("lara", n, d, C) / 2.0 + nf * dim * dim,
                    _ => heads * flops("exact", n, d, C) / 2.0,
                };
                let gflops = 2.0 * (projections + attention) / seconds / 1e9;
                times.push(seconds);
                let ratio = match times[..] {
                    [lara, softmax] => format!("{:.2}x faster", softmax / lara),
                    _ => String::new(),
                };
                println!(
                    "| {name} | {n} | {} | {:.3} ms | {gflops:.1} | {ratio} |",
                    backend.name(),
                    seconds * 1e3
                );
            }
        }
    }
    set_backend(None).expect("reset");
}

/// The int8 inner loops a backend runs (see `src/simd/int8.rs`).
fn int8_loops(backend: Backend) -> &'static str {
    match backend {
        Backend::Avx2 | Backend::Avx512 => "avx2",
        Backend::Neon => "neon",
        _ => "portable",
    }
}

/// The int8 kernels of the registry on every backend, on the inputs of each shape quantised
/// per tensor (`--int8`): median time per call and the speed-up over the scalar backend, whose
/// int8 inner loops are the portable ones.
fn int8_costs(options: &Options) {
    let backends: Vec<Backend> = Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .collect();
    let quantise = |x: &[f32]| {
        let scale = int8::scale_for(x);
        let mut out = vec![0i8; x.len()];
        int8::quantize(x, scale, &mut out);
        (out, scale)
    };
    if !options.json {
        println!(
            "{:<11} {:>16} {:>8} {:>8} {:>12} {:>9} {:>10}",
            "kernel", "n x d x c", "backend", "loops", "median", "GOP/s", "vs scalar"
        );
    }
    for &(n, d, c) in &options.shapes {
        let inputs = Inputs::new(n, d, c);
        let ((q, sq), (k, sk), (v, sv)) = (
            quantise(&inputs.q),
            quantise(&inputs.k),
            quantise(&inputs.v),
        );
        let (omega, omega_scale) = quantise(&inputs.omega);
        let call = Int8Call {
            x: int8::Qkv {
                shape: inputs.shape,
                q: &q,
                k: &k,
                v: &v,
                key_mask: None,
            },
            scales: int8::Scales {
                q: sq,
                k: sk,
                v: sv,
                out: sv,
            },
            lara: int8::lara::Config::eval(Weighting::Optimal { alpha_coeff: 1.0 }),
            landmarks: int8::lara::Landmarks::SegmentMeans(c),
            noise: None,
            omega: &omega,
            omega_scale,
        };
        let mut out = vec![0i8; n * d];
        for kernel in INT8_KERNELS {
            if kernel.name == "int8-exact" && n > 4096 && !options.full {
                continue;
            }
            let estimator = kernel.name.trim_start_matches("int8-");
            let mut scratch = vec![0i32; (kernel.scratch_len)(&call)];
            let mut scalar_seconds = None;
            for &backend in &backends {
                set_backend(Some(backend)).expect("available backend");
                let seconds = measure(|| {
                    (kernel.run)(&call, int8::Out::I8(&mut out), &mut scratch).expect("int8 call");
                    black_box(&out);
                });
                let scalar = *scalar_seconds.get_or_insert(seconds);
                let gops = flops(estimator, n, d, c) / seconds / 1e9;
                if options.json {
                    println!(
                        "{{\"estimator\": \"{}\", \"n\": {n}, \"d\": {d}, \"c\": {c}, \"backend\": \"{}\", \"loops\": \"{}\", \"median_s\": {:.6e}, \"gops\": {:.3}}}",
                        kernel.name,
                        backend.name(),
                        int8_loops(backend),
                        seconds,
                        gops
                    );
                } else {
                    println!(
                        "{:<11} {:>16} {:>8} {:>8} {:>9.3} ms {:>9.2} {:>9.2}x",
                        kernel.name,
                        format!("{n}x{d}x{c}"),
                        backend.name(),
                        int8_loops(backend),
                        seconds * 1e3,
                        gops,
                        scalar / seconds
                    );
                }
            }
        }
    }
    set_backend(None).expect("reset");
}
