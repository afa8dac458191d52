//! Quick start: exact attention, LARA, RA and RFA on one realistic input, with the
//! approximation error of each estimator against exact attention and its run time.
//!
//! `cargo run --release --example quickstart [-- n]` (default n = 1024, d = d_v = 64).
//!
//! The input imitates one attention head over a sensor stream: every token is a noisy linear
//! read-out of a slowly varying 8-dimensional latent state, so neighbouring tokens are similar
//! (the setting segment-mean landmarks are built for), and the logits have a spread of a few
//! units, as in trained models.

use lara_attn::random::{NoiseScale, default_rng, fill_standard_normal, orthogonal_omega};
use lara_attn::{Shape, exact, lara, ra, rfa};
use std::time::{Duration, Instant};

const DIM: usize = 64;
const LATENT: usize = 8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| format!("sequence length expected, got {arg:?}"))?,
        None => 1024,
    };
    let shape = Shape::self_attention(n, DIM);
    let (q, k, v) = sensor_head(n, 2024);
    println!("one head, n = {n}, d = d_v = {DIM}; error = |out - exact|_F / |exact|_F\n");
    println!(
        "{:<34} {:>10} {:>12} {:>10}",
        "estimator", "error", "time", "vs exact"
    );

    let mut reference = vec![0.0; n * DIM];
    let mut scratch = vec![0.0; exact::scratch_len(shape)];
    let exact_time = time(|| exact::attention(shape, &q, &k, &v, &mut reference, &mut scratch))?;
    report("exact softmax", 0.0, exact_time, exact_time);
    // The trivial estimator (uniform attention: every output row is the mean of v), to read the
    // errors below against.
    let mut mean_v = vec![0.0f64; DIM];
    for row in v.chunks_exact(DIM) {
        for (m, &x) in mean_v.iter_mut().zip(row) {
            *m += x as f64 / n as f64;
        }
    }
    let uniform: Vec<f32> = (0..n)
        .flat_map(|_| mean_v.iter().map(|&m| m as f32))
        .collect();
    println!(
        "{:<34} {:>10.4} {:>12} {:>10}",
        "uniform attention (mean of v)",
        rel_error(&uniform, &reference),
        "-",
        "-"
    );

    let mut out = vec![0.0; n * DIM];
    for landmarks in [16, 64] {
        let params =
            lara::Params::segment_means(landmarks, lara::Weighting::Optimal { alpha_coeff: 1.0 });
        let mut scratch = vec![0.0; lara::scratch_len(shape, landmarks)];
        let t = time(|| lara::attention(shape, &params, &q, &k, &v, None, &mut out, &mut scratch))?;
        report(
            &format!("LARA mis-opt C={landmarks}, eval"),
            rel_error(&out, &reference),
            t,
            exact_time,
        );
        let mut rng = default_rng(7);
        let t = time(|| {
            lara::attention_sampled(shape, &params, &q, &k, &v, &mut rng, &mut out, &mut scratch)
        })?;
        report(
            &format!("LARA mis-opt C={landmarks}, sampled"),
            rel_error(&out, &reference),
            t,
            exact_time,
        );
    }

    let mut scratch = vec![0.0; ra::scratch_len(shape)];
    let t = time(|| {
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
    })?;
    report(
        "RA (num_samples=-1), eval",
        rel_error(&out, &reference),
        t,
        exact_time,
    );

    for features in [64, 256] {
        let mut omega = vec![0.0; features * DIM];
        orthogonal_omega(&mut default_rng(11), features, DIM, &mut omega)?;
        let mut scratch = vec![0.0; rfa::positive_scratch_len(shape, features)];
        let t =
            time(|| rfa::positive(shape, &omega, features, &q, &k, &v, &mut out, &mut scratch))?;
        report(
            &format!("RFA positive (FAVOR+) S={features}"),
            rel_error(&out, &reference),
            t,
            exact_time,
        );
        let mut scratch = vec![0.0; rfa::trigonometric_scratch_len(shape, features)];
        let t = time(|| {
            rfa::trigonometric(shape, &omega, features, &q, &k, &v, &mut out, &mut scratch)
        })?;
        report(
            &format!("RFA trigonometric S={features}"),
            rel_error(&out, &reference),
            t,
            exact_time,
        );
    }
    println!(
        "\ntimes: median of 5 runs on this machine, {} backend; RFA with orthogonal omega",
        lara_attn::backend::active_backend().name()
    );
    Ok(())
}

/// `q`, `k`, `v` `[n, DIM]`: linear read-outs of a smooth latent trajectory plus noise.
fn sensor_head(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = default_rng(seed);
    let mut phases = [0.0f32; 2 * LATENT];
    fill_standard_normal(&mut rng, &mut phases);
    // Latent z_t[j] = sin(f_j t + φ_j), periods from about 20 to 400 tokens.
    let latent: Vec<f32> = (0..n)
        .flat_map(|t| {
            (0..LATENT).map(move |j| {
                let frequency = 0.015 * (1.0 + j as f32 * 2.0);
                (frequency * t as f32 + 3.0 * phases[j]).sin()
            })
        })
        .collect();
    let mut project = |gain: f32, noise: f32| {
        let mut weights = vec![0.0f32; LATENT * DIM];
        fill_standard_normal(&mut rng, &mut weights);
        let mut out = vec![0.0f32; n * DIM];
        fill_standard_normal(&mut rng, &mut out);
        for (row, z) in out.chunks_exact_mut(DIM).zip(latent.chunks_exact(LATENT)) {
            for (c, x) in row.iter_mut().enumerate() {
                let signal: f32 = z
                    .iter()
                    .enumerate()
                    .map(|(j, zj)| zj * weights[j * DIM + c])
                    .sum();
                *x = gain * signal / (LATENT as f32).sqrt() + noise * *x;
            }
        }
        out
    };
    // Gains chosen so that the logits s·q·k have a standard deviation of about 1.2.
    (project(1.3, 0.3), project(1.3, 0.3), project(1.0, 0.5))
}

fn time(
    mut run: impl FnMut() -> Result<(), lara_attn::Error>,
) -> Result<Duration, lara_attn::Error> {
    run()?; // warm-up
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        run()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

fn rel_error(out: &[f32], reference: &[f32]) -> f64 {
    let (mut err, mut norm) = (0.0f64, 0.0f64);
    for (&a, &b) in out.iter().zip(reference) {
        err += (a as f64 - b as f64).powi(2);
        norm += (b as f64).powi(2);
    }
    (err / norm).sqrt()
}

fn report(name: &str, error: f64, t: Duration, exact: Duration) {
    let ratio = exact.as_secs_f64() / t.as_secs_f64();
    println!(
        "{name:<34} {error:>10.4} {:>9.2} ms {ratio:>9.1}x",
        t.as_secs_f64() * 1e3
    );
}
