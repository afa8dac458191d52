//! `--compare exact`: the relative Frobenius error of the estimate against exact attention
//! (with the same key mask, or causal); [`print_relative_error`] also prints `--layer`'s
//! `--compare softmax-layer` and `--int8`'s `--compare f32`.

use crate::Res;
use crate::args::Options;
use crate::files::zeros;
use crate::problem::Problem;
use crate::run;

/// Prints `relative Frobenius error vs <reference>: <error>` for the estimate `out`.
pub fn print_error(o: &Options, p: &Problem, out: &[f32]) -> Res<()> {
    let mut reference = zeros(out.len())?;
    if o.causal {
        run::causal_exact(p, &mut reference)?;
    } else {
        run::exact(p, &mut reference)?;
    }
    let label = if o.causal {
        "causal exact"
    } else if p.mask.is_some() {
        "masked exact"
    } else {
        "exact"
    };
    print_relative_error(label, out, &reference);
    Ok(())
}

/// Prints `relative Frobenius error vs <label>: ||out - reference||_F / ||reference||_F` (the
/// absolute error when the reference is zero).
pub fn print_relative_error(label: &str, out: &[f32], reference: &[f32]) {
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (&x, &r) in out.iter().zip(reference) {
        diff += (f64::from(x) - f64::from(r)).powi(2);
        norm += f64::from(r).powi(2);
    }
    if norm > 0.0 {
        println!(
            "relative Frobenius error vs {label}: {:.6e}",
            (diff / norm).sqrt()
        );
    } else {
        println!(
            "relative Frobenius error vs {label}: undefined ({label} output is zero); absolute: \
             {:.6e}",
            diff.sqrt()
        );
    }
}
