//! The input and the measurements shared by the quickstart and the plots: one attention head
//! over a sensor stream, the relative error of an output against exact attention, and a median
//! time.
#![allow(dead_code)]

use lara_attn::random::{default_rng, fill_standard_normal};
use std::time::{Duration, Instant};

/// Head dimension `d = d_v`.
pub const DIM: usize = 64;
/// Dimension of the latent state the tokens read out.
const LATENT: usize = 8;

/// `q`, `k`, `v` `[n, DIM]` imitating one attention head over a sensor stream: every token is a
/// noisy linear read-out of a slowly varying 8-dimensional latent state, so neighbouring tokens
/// are similar (the setting segment-mean landmarks are built for), and the logits `s·q·k` have a
/// standard deviation of about 1.2, as in trained models.
pub fn sensor_head(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
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
    (project(1.3, 0.3), project(1.3, 0.3), project(1.0, 0.5))
}

/// `|out − reference|_F / |reference|_F`, in `f64`.
pub fn rel_error(out: &[f32], reference: &[f32]) -> f64 {
    let (mut err, mut norm) = (0.0f64, 0.0f64);
    for (&a, &b) in out.iter().zip(reference) {
        err += (a as f64 - b as f64).powi(2);
        norm += (b as f64).powi(2);
    }
    (err / norm).sqrt()
}

/// The error of uniform attention (every output row the mean of `v`): the trivial estimator,
/// to read the others against.
pub fn uniform_error(v: &[f32], reference: &[f32]) -> f64 {
    let n = v.len() / DIM;
    let mut mean = [0.0f64; DIM];
    for row in v.chunks_exact(DIM) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += x as f64 / n as f64;
        }
    }
    let uniform: Vec<f32> = (0..n).flat_map(|_| mean.map(|m| m as f32)).collect();
    rel_error(&uniform, reference)
}

/// Median time of `runs` calls after one warm-up call.
pub fn median_time(
    runs: usize,
    mut run: impl FnMut() -> Result<(), lara_attn::Error>,
) -> Result<Duration, lara_attn::Error> {
    run()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        run()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}
