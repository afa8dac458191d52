//! Quick start: every estimator on one realistic attention head, with its error against exact
//! attention, its run time, and what the numbers mean.
//!
//! `cargo run --release --example quickstart [-- n]` (default n = 1024, d = d_v = 64).

#[path = "support/sensor.rs"]
mod sensor;

use lara_attn::lara::{Params, Proposals, Weighting};
use lara_attn::random::{default_rng, orthogonal_omega};
use lara_attn::rfa::FeatureMap;
use lara_attn::{Error, Qkv, Sampling, Shape, exact, lara, ra, rfa};
use sensor::{DIM, median_time, rel_error, sensor_head, uniform_error};
use std::time::Duration;

/// LARA landmarks and RFA features of the table.
const LANDMARKS: [usize; 2] = [16, 64];
const FEATURES: [usize; 2] = [64, 256];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or(format!("a sequence length n > 0 expected, got {arg:?}"))?,
        None => 1024,
    };
    println!("One attention head over a sensor stream: n = {n} tokens, d = d_v = {DIM}.");
    println!("Every estimator computes what the paper's official PyTorch code computes for the");
    println!("same inputs (the golden tests check it to 1e-5: `cargo test --test golden`).");
    println!("error = |out - exact|_F / |exact|_F; times: median of 5 calls, one core.\n");

    let (q, k, v) = sensor_head(n, 2024);
    let x = Qkv {
        shape: Shape::self_attention(n, DIM),
        q: &q,
        k: &k,
        v: &v,
        key_mask: None,
    };
    let rows = table(&x)?;
    println!(
        "{:<40} {:>9} {:>11} {:>9}",
        "estimator", "error", "time", "speed-up"
    );
    let exact_time = rows[0].time;
    for (i, row) in rows.iter().enumerate() {
        let error = row.error.map_or("-".into(), |e| format!("{e:.3}"));
        let time = row.time.as_secs_f64() * 1e3;
        let speed = exact_time.as_secs_f64() / row.time.as_secs_f64();
        println!("{:<40} {error:>9} {time:>8.2} ms {speed:>8.1}x", row.name);
        if i == 0 {
            let uniform = uniform_error(&v, &row.out);
            println!(
                "{:<40} {uniform:>9.3}",
                "uniform attention (every row: mean of v)"
            );
        }
    }
    if let Some(&c) = LANDMARKS.iter().find(|&&c| c >= n) {
        println!("\nwarning: C = {c} >= n = {n}: every token is its own landmark (the official");
        println!("C' = n rule). LARA then changes character and its error jumps: compare C < n.");
    }
    explain(&rows);
    scaling()?;
    Ok(())
}

/// One line of the table.
struct Row {
    name: String,
    error: Option<f64>,
    time: Duration,
    out: Vec<f32>,
}

/// Exact attention first, then LARA, RA and RFA.
fn table(x: &Qkv<'_>) -> Result<Vec<Row>, Error> {
    let shape = x.shape;
    let mut rows: Vec<Row> = Vec::new();
    let mut row = |name: String, run: &mut dyn FnMut(&mut [f32]) -> Result<(), Error>| {
        let mut out = vec![0.0; shape.queries * shape.value_dim];
        let time = median_time(5, || run(&mut out))?;
        let error = rows.first().map(|exact| rel_error(&out, &exact.out));
        rows.push(Row {
            name,
            error,
            time,
            out,
        });
        Ok::<(), Error>(())
    };
    let mut scratch = vec![0.0; exact::scratch_len(shape)];
    row("exact softmax (the reference)".into(), &mut |out| {
        exact::attention(x, out, &mut scratch)
    })?;
    // The landmark counts below n, then C = n (every token its own landmark).
    let counts = LANDMARKS.into_iter().filter(|&c| c < shape.keys);
    for c in counts.chain([shape.keys]) {
        let params = Params::segment_means(c, Weighting::Optimal { alpha_coeff: 1.0 });
        let mut scratch = vec![0.0; lara::scratch_len(shape, c, Proposals::Single)];
        let name = format!("LARA mis-opt, C = {c}, eval");
        row(name, &mut |out| {
            lara::attention(x, &params, Sampling::Eval, out, &mut scratch)
        })?;
        let mut rng = default_rng(7);
        let name = format!("LARA mis-opt, C = {c}, sampled");
        row(name, &mut |out| {
            let sampling = Sampling::Draw(&mut rng);
            lara::attention(x, &params, sampling, out, &mut scratch)
        })?;
    }
    let mut scratch = vec![0.0; ra::scratch_len(shape)];
    let params = ra::Params::new(ra::Mean::AttentionWeighted);
    row("RA, attention-weighted mean, eval".into(), &mut |out| {
        ra::attention(x, &params, Sampling::Eval, out, &mut scratch)
    })?;
    for features in FEATURES {
        let mut omega = vec![0.0; features * DIM];
        orthogonal_omega(&mut default_rng(11), features, DIM, &mut omega)?;
        for (map, label) in [
            (FeatureMap::Positive, "positive (FAVOR+)"),
            (FeatureMap::Trigonometric, "trigonometric"),
        ] {
            let params = rfa::Params { map, omega: &omega };
            let mut scratch = vec![0.0; rfa::scratch_len(shape, map, features)];
            row(format!("RFA {label}, S = {features}"), &mut |out| {
                rfa::attention(x, &params, out, &mut scratch)
            })?;
        }
    }
    Ok(rows)
}

/// The sentences that explain the table, with its numbers.
fn explain(rows: &[Row]) {
    let error = |prefix: &str| {
        rows.iter()
            .find(|row| row.name.starts_with(prefix))
            .and_then(|row| row.error)
            .unwrap_or(f64::NAN)
    };
    println!("\nHow to read the errors:");
    println!("- This head comes from no trained model. LARA, RA and RFA replace softmax attention");
    println!("  by an estimate of it; they are meant for models trained with the estimator (the");
    println!(
        "  paper's setting), where the network learns around the estimator's error. Used as a"
    );
    println!("  drop-in for a pretrained softmax head, the error is what it is: here LARA and");
    println!("  positive RFA come no closer to softmax than uniform attention, which ignores q");
    println!("  and k. That is the estimators, not a bug: the golden tests pin their numbers.");
    println!(
        "- RA is unbiased and the closest ({:.3}), at twice the cost of exact attention.",
        error("RA")
    );
    println!(
        "- More landmarks do not make LARA closer to softmax on an untrained head (C = {}: {:.3},",
        LANDMARKS[0],
        error(&format!("LARA mis-opt, C = {}, eval", LANDMARKS[0]))
    );
    println!(
        "  C = {}: {:.3}); with C >= n every token is its own landmark (C' = n, the last LARA",
        LANDMARKS[1],
        error(&format!("LARA mis-opt, C = {}, eval", LANDMARKS[1]))
    );
    println!("  rows), a different estimator whose error jumps, at quadratic cost.");
    println!("- Trigonometric features can be negative, so the denominator φ(q)·Σφ(k) can come");
    println!("  close to zero; the official clamp at 1e-2 then amplifies the numerator, which");
    println!(
        "  gives errors far above 1 (S = {}: {:.1}). Positive features (FAVOR+) avoid this.",
        FEATURES[0],
        error(&format!("RFA trigonometric, S = {}", FEATURES[0]))
    );
    println!("- The errors of the sampled modes are one draw; the official code draws afresh at");
    println!("  every training step.");
}

/// Time against `n`: exact attention and RA are quadratic, LARA and RFA linear.
fn scaling() -> Result<(), Error> {
    println!("\nTime against n (LARA C = 64 and RFA S = 64 are linear in n, exact attention");
    println!("quadratic: each doubling of n doubles the first two and quadruples the third):");
    println!("{:>6} {:>11} {:>11} {:>11}", "n", "exact", "LARA", "RFA");
    let mut omega = vec![0.0; 64 * DIM];
    orthogonal_omega(&mut default_rng(11), 64, DIM, &mut omega)?;
    for n in [256, 512, 1024, 2048, 4096] {
        let (q, k, v) = sensor_head(n, 2024);
        let shape = Shape::self_attention(n, DIM);
        let x = Qkv {
            shape,
            q: &q,
            k: &k,
            v: &v,
            key_mask: None,
        };
        let mut out = vec![0.0; n * DIM];
        let mut scratch = vec![0.0; lara::scratch_len(shape, 64, Proposals::Single)];
        let params = Params::segment_means(64, Weighting::Optimal { alpha_coeff: 1.0 });
        let rfa_params = rfa::Params {
            map: FeatureMap::Positive,
            omega: &omega,
        };
        let times = [
            median_time(3, || exact::attention(&x, &mut out, &mut scratch))?,
            median_time(3, || {
                lara::attention(&x, &params, Sampling::Eval, &mut out, &mut scratch)
            })?,
            median_time(3, || {
                rfa::attention(&x, &rfa_params, &mut out, &mut scratch)
            })?,
        ];
        let [exact, lara, rfa] = times.map(|t| format!("{:.2} ms", t.as_secs_f64() * 1e3));
        println!("{n:>6} {exact:>11} {lara:>11} {rfa:>11}");
    }
    println!(
        "\nbackend: {}; `cargo run --release --example bench` measures every backend.",
        lara_attn::backend::active_backend()
    );
    Ok(())
}
