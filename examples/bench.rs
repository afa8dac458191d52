//! Throughput of every estimator on every backend the host supports, in one run.
//!
//! ```text
//! cargo run --release --example bench                      # table
//! cargo run --release --example bench -- --json            # one JSON object per line
//! cargo run --release --example bench -- --shapes 512x32x16,2048x64x32
//! cargo run --release --example bench -- --full            # also scalar exact/RA above n = 4096
//! cargo run --release --example bench -- --options         # the cost of each option, as ratios
//! ```
//!
//! Each measurement: one warm-up call, then repetitions until 0.3 s have passed (at least 3, at
//! most 25), and the median. FLOPs count the multiply-adds of each algorithm (2 per
//! multiply-add; exponentials not counted), so GFLOP/s compare estimators on equal terms. The
//! core's fp32 peak is measured in the same run by a register-only FMA loop per backend.
//! Estimators: exact softmax; LARA mis-opt (alpha 1) in eval mode with C landmarks; RA with the
//! attention-weighted mean (`num_samples = -1`) in eval mode; RFA with S positive features.

use lara_attn::backend::{Backend, set_backend};
use lara_attn::lara::{Params, Weighting};
use lara_attn::random::{NoiseScale, default_rng, fill_standard_normal, gaussian_omega};
use lara_attn::{Shape, exact, lara, ra, rfa};
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
    shapes: Vec<(usize, usize, usize)>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        json: false,
        full: false,
        option_costs: false,
        shapes: DEFAULT_SHAPES.to_vec(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => options.json = true,
            "--full" => options.full = true,
            "--options" => {
                options.option_costs = true;
                options.shapes = vec![(1024, 64, 64), (4096, 64, 64)];
            }
            "--shapes" => {
                let list = args.next().ok_or("--shapes needs NxDxC,…")?;
                options.shapes = list.split(',').map(parse_shape).collect::<Result<_, _>>()?;
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (expected --json, --full, --options, --shapes NxDxC,…)"
                ));
            }
        }
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

struct Inputs {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    omega: Vec<f32>,
    out: Vec<f32>,
    scratch: Vec<f32>,
}

fn inputs(n: usize, d: usize, c: usize) -> Inputs {
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
    let shape = Shape::self_attention(n, d);
    let scratch_len = [
        exact::scratch_len(shape),
        lara::scratch_len(shape, c),
        rfa::positive_scratch_len(shape, c),
        ra::scratch_len(shape),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    Inputs {
        q,
        k,
        v,
        omega,
        out: vec![0.0; n * d],
        scratch: vec![0.0; scratch_len],
    }
}

fn run(estimator: &str, n: usize, d: usize, c: usize, x: &mut Inputs) {
    let shape = Shape::self_attention(n, d);
    let (q, k, v) = (&x.q[..], &x.k[..], &x.v[..]);
    let result = match estimator {
        "exact" => exact::attention(shape, q, k, v, &mut x.out, &mut x.scratch),
        "lara" => {
            let params = Params::segment_means(c, Weighting::Optimal { alpha_coeff: 1.0 });
            lara::attention(shape, &params, q, k, v, None, &mut x.out, &mut x.scratch)
        }
        "rfa" => rfa::positive(shape, &x.omega, c, q, k, v, &mut x.out, &mut x.scratch),
        "ra" => ra::attention(
            shape,
            ra::Mean::AttentionWeighted,
            NoiseScale::Official,
            q,
            k,
            v,
            None,
            &mut x.out,
            &mut x.scratch,
        ),
        _ => Ok(()),
    };
    result.expect("kernel call");
    black_box(&x.out);
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
    let backends: Vec<Backend> = Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .collect();
    let mut rows = Vec::new();
    for &(n, d, c) in &options.shapes {
        let mut x = inputs(n, d, c);
        for &backend in &backends {
            set_backend(Some(backend)).expect("available backend");
            for estimator in ESTIMATORS {
                let quadratic = matches!(estimator, "exact" | "ra");
                if quadratic && backend == Backend::Scalar && n > 4096 && !options.full {
                    continue; // minutes per call; --full includes it
                }
                let seconds = measure(|| run(estimator, n, d, c, &mut x));
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

/// The cost of each option against the call it modifies, on the best backend, measured in one
/// run: a ratio of median times (1.00 = free). Masks mark every fourth key and the last quarter.
fn option_costs(shapes: &[(usize, usize, usize)]) {
    use lara_attn::lara::Proposals;
    println!("backend {}", lara_attn::backend::active_backend().name());
    println!("| option | vs | n × d × C | ratio |");
    println!("|---|---|---|---|");
    for &(n, d, c) in shapes {
        let shape = Shape::self_attention(n, d);
        let mut x = inputs(n, d, c);
        let mask: Vec<bool> = (0..n).map(|j| j % 4 == 3 || j >= n * 3 / 4).collect();
        let eps = {
            let mut eps = vec![0.0; 2 * c * d];
            fill_standard_normal(&mut default_rng(3), &mut eps);
            eps
        };
        let mut scratch = vec![
            0.0;
            lara::scratch_len(shape, 2 * c)
                .max(rfa::log_space_scratch_len(shape, c))
                .max(exact::scratch_len(shape))
                .max(rfa::positive_scratch_len(shape, c))
        ];
        let (q, k, v) = (&x.q[..], &x.k[..], &x.v[..]);
        let out = &mut x.out;
        let optimal = Params::segment_means(c, Weighting::Optimal { alpha_coeff: 1.0 });
        let mut lara_time = |params: &Params<'_>| {
            let proposals = params.proposals;
            let noise = &eps[..lara::noise_len(shape, c, proposals)];
            measure(|| {
                lara::attention(shape, params, q, k, v, Some(noise), out, &mut scratch)
                    .expect("lara");
                black_box(&*out);
            })
        };
        let single = lara_time(&optimal);
        let mut rows = vec![
            (
                "LARA antithetic proposals",
                "LARA sampled, single",
                lara_time(&optimal.with_proposals(Proposals::Antithetic)) / single,
            ),
            (
                "LARA two proposals per landmark",
                "LARA sampled, single",
                lara_time(&optimal.with_proposals(Proposals::TwoPerLandmark)) / single,
            ),
            (
                "LARA paper noise scale",
                "LARA sampled, official",
                lara_time(&optimal.with_noise_scale(NoiseScale::Paper)) / single,
            ),
            (
                "LARA key mask (44% masked)",
                "LARA sampled",
                lara_time(&optimal.with_key_mask(&mask)) / single,
            ),
        ];
        let mut time = |call: &mut dyn FnMut(&mut [f32], &mut [f32])| {
            measure(|| {
                call(out, &mut scratch);
                black_box(&*out);
            })
        };
        let exact_plain = time(&mut |o, s| exact::attention(shape, q, k, v, o, s).expect("exact"));
        let exact_masked =
            time(&mut |o, s| exact::attention_masked(shape, q, k, v, &mask, o, s).expect("exact"));
        let omega = &x.omega;
        let rfa_plain =
            time(&mut |o, s| rfa::positive(shape, omega, c, q, k, v, o, s).expect("rfa"));
        let rfa_masked = time(&mut |o, s| {
            rfa::positive_masked(shape, omega, c, q, k, v, &mask, o, s).expect("rfa")
        });
        let rfa_log = time(&mut |o, s| {
            rfa::positive_log_space(shape, omega, c, q, k, v, None, o, s).expect("rfa")
        });
        rows.push((
            "exact key mask (44% masked)",
            "exact",
            exact_masked / exact_plain,
        ));
        rows.push((
            "RFA key mask (44% masked)",
            "RFA positive",
            rfa_masked / rfa_plain,
        ));
        rows.push((
            "RFA positive in log space",
            "RFA positive",
            rfa_log / rfa_plain,
        ));
        for (option, against, ratio) in rows {
            println!("| {option} | {against} | {n} × {d} × {c} | {ratio:.2} |");
        }
    }
}
