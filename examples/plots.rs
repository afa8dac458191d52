//! The plots of the README, measured: the error of each estimator against exact attention as
//! its landmarks `C` or features `S` grow, and the time of each against the sequence length.
//!
//! `cargo run --release --example plots [-- DIR]` writes `error-vs-rank.svg` and
//! `time-vs-n.svg` into `DIR` (default `docs/`), on the input of the quickstart (one attention
//! head over a sensor stream, d = d_v = 64), on the best backend of this machine.

#[path = "support/sensor.rs"]
mod sensor;

use lara_attn::lara::{Params, Proposals, Weighting};
use lara_attn::random::{default_rng, orthogonal_omega};
use lara_attn::rfa::FeatureMap;
use lara_attn::{Error, Qkv, Sampling, Shape, exact, lara, ra, rfa};
use plotters::prelude::*;
use sensor::{DIM, median_time, rel_error, sensor_head, uniform_error};
use std::path::{Path, PathBuf};

/// Sequence length of the error plot.
const N: usize = 1024;
/// The landmarks / features of the error plot.
const RANKS: [usize; 8] = [4, 8, 16, 32, 64, 128, 256, 512];
/// The sequence lengths of the time plot.
const LENGTHS: [usize; 6] = [256, 512, 1024, 2048, 4096, 8192];

type Series = (&'static str, RGBColor, Vec<(f64, f64)>);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map_or(PathBuf::from("docs"), PathBuf::from);
    let (errors, levels) = errors()?;
    let error_plot = dir.join("error-vs-rank.svg");
    plot(
        &error_plot,
        &format!("error against exact attention, n = {N}, d = {DIM}"),
        ("landmarks C / features S", "|out - exact| / |exact|"),
        &errors,
        &levels,
    )?;
    let times = times()?;
    let time_plot = dir.join("time-vs-n.svg");
    plot(
        &time_plot,
        &format!(
            "time per call, d = {DIM}, C = S = 64, {} backend",
            lara_attn::backend::active_backend()
        ),
        ("sequence length n", "milliseconds"),
        &times,
        &[],
    )?;
    println!("wrote {} and {}", error_plot.display(), time_plot.display());
    Ok(())
}

/// The error of LARA (mis-opt, eval), positive and trigonometric RFA at every rank, and the
/// levels of RA and uniform attention (which have no rank).
fn errors() -> Result<(Vec<Series>, Vec<Series>), Error> {
    let (q, k, v) = sensor_head(N, 2024);
    let shape = Shape::self_attention(N, DIM);
    let x = Qkv {
        shape,
        q: &q,
        k: &k,
        v: &v,
        key_mask: None,
    };
    let mut reference = vec![0.0; N * DIM];
    exact::attention(
        &x,
        &mut reference,
        &mut vec![0.0; exact::scratch_len(shape)],
    )?;
    let mut out = vec![0.0; N * DIM];
    let mut series: Vec<Series> = vec![
        ("LARA mis-opt (eval)", BLUE, Vec::new()),
        ("RFA positive", RED, Vec::new()),
        ("RFA trigonometric", MAGENTA, Vec::new()),
    ];
    for rank in RANKS {
        let params = Params::segment_means(rank, Weighting::Optimal { alpha_coeff: 1.0 });
        let mut scratch = vec![0.0; lara::scratch_len(shape, rank, Proposals::Single)];
        lara::attention(&x, &params, Sampling::Eval, &mut out, &mut scratch)?;
        series[0].2.push((rank as f64, rel_error(&out, &reference)));
        let mut omega = vec![0.0; rank * DIM];
        orthogonal_omega(&mut default_rng(11), rank, DIM, &mut omega)?;
        for (index, map) in [(1, FeatureMap::Positive), (2, FeatureMap::Trigonometric)] {
            let mut scratch = vec![0.0; rfa::scratch_len(shape, map, rank)];
            rfa::attention(
                &x,
                &rfa::Params { map, omega: &omega },
                &mut out,
                &mut scratch,
            )?;
            series[index]
                .2
                .push((rank as f64, rel_error(&out, &reference)));
        }
    }
    let mut scratch = vec![0.0; ra::scratch_len(shape)];
    let params = ra::Params::new(ra::Mean::AttentionWeighted);
    ra::attention(&x, &params, Sampling::Eval, &mut out, &mut scratch)?;
    let level = |value: f64| RANKS.iter().map(|&r| (r as f64, value)).collect();
    let levels = vec![
        ("RA (no rank)", GREEN, level(rel_error(&out, &reference))),
        (
            "uniform attention",
            BLACK,
            level(uniform_error(&v, &reference)),
        ),
    ];
    Ok((series, levels))
}

/// Median times of exact attention, LARA, RFA and RA at every length.
fn times() -> Result<Vec<Series>, Error> {
    let mut series: Vec<Series> = vec![
        ("exact", BLACK, Vec::new()),
        ("LARA C = 64", BLUE, Vec::new()),
        ("RFA S = 64", RED, Vec::new()),
        ("RA", GREEN, Vec::new()),
    ];
    let mut omega = vec![0.0; 64 * DIM];
    orthogonal_omega(&mut default_rng(11), 64, DIM, &mut omega)?;
    let rfa_params = rfa::Params {
        map: FeatureMap::Positive,
        omega: &omega,
    };
    let lara_params = Params::segment_means(64, Weighting::Optimal { alpha_coeff: 1.0 });
    let ra_params = ra::Params::new(ra::Mean::AttentionWeighted);
    for n in LENGTHS {
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
        let scratch_len =
            lara::scratch_len(shape, 64, Proposals::Single).max(ra::scratch_len(shape));
        let mut scratch = vec![0.0; scratch_len];
        type Run<'a> = &'a dyn Fn(&mut [f32], &mut [f32]) -> Result<(), Error>;
        let runs: [Run<'_>; 4] = [
            &|out, scratch| exact::attention(&x, out, scratch),
            &|out, scratch| lara::attention(&x, &lara_params, Sampling::Eval, out, scratch),
            &|out, scratch| rfa::attention(&x, &rfa_params, out, scratch),
            &|out, scratch| ra::attention(&x, &ra_params, Sampling::Eval, out, scratch),
        ];
        for ((_, _, points), run) in series.iter_mut().zip(runs) {
            let time = median_time(3, || run(&mut out, &mut scratch))?;
            points.push((n as f64, time.as_secs_f64() * 1e3));
        }
    }
    Ok(series)
}

/// A log-log plot of `series` (solid, with points) and `levels` (dashed) into an SVG file.
fn plot(
    path: &Path,
    title: &str,
    (x_label, y_label): (&str, &str),
    series: &[Series],
    levels: &[Series],
) -> Result<(), Box<dyn std::error::Error>> {
    let all = || {
        series
            .iter()
            .chain(levels)
            .flat_map(|(_, _, points)| points.iter())
    };
    let (y_min, y_max) = all().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    // The measured x values are the axis labels.
    let mut x_points: Vec<f64> = series
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|p| p.0))
        .collect();
    x_points.sort_by(f64::total_cmp);
    x_points.dedup();
    let (x_min, x_max) = (x_points[0], x_points[x_points.len() - 1]);
    let root = SVGBackend::new(path, (720, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (x_min * 0.9..x_max * 1.1)
                .log_scale()
                .with_key_points(x_points),
            (y_min * 0.8..y_max * 1.25).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y}"))
        .draw()?;
    for (name, color, points) in series {
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    for (name, color, points) in levels {
        let color = *color;
        chart
            .draw_series(DashedLineSeries::new(
                points.iter().copied(),
                6,
                4,
                color.stroke_width(1),
            ))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
