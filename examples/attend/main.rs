//! A host tool for real model data: runs any estimator of the crate on `.npy` inputs, or a
//! whole attention layer with its trained weights.
//!
//! `cargo run --release --example attend -- --method <exact|lara|ra|rfa|rfa-trig> [options]
//! q.npy k.npy v.npy -o out.npy`, or `... -- --layer WEIGHTS_DIR [options] x.npy -o out.npy`
//! (`--help` lists the options).
//!
//! Inputs are little-endian float32 `.npy` files (NPY v1/v2/v3, C order), `[n, d]` for one head
//! or `[h, n, d]` for `h` heads (one call with `Shape::with_heads(h)` and the heads stacked, or
//! head by head when the key mask has one row per head). `q` may have another `n` than `k`/`v`
//! (cross-attention), `v` another last dimension. The output is written as NPY v1.0 `<f4`,
//! `[n_q, d_v]` or `[h, n_q, d_v]`.
//!
//! Beyond the official defaults: a key padding mask (`--mask`, every method but `--causal`),
//! the paper's noise scale (`--scaled-noise`, lara / ra), antithetic or two-sample LARA proposals
//! (`--proposals`) and log-space positive RFA (`--rfa-log-space`). Every error (bad argument,
//! missing, truncated or mistyped file, a shape that does not fit, a kernel error) is one line on
//! stderr and exit code 2.
//!
//! int8 (`--int8`, module [`int8`]): exact, LARA and RFA through the integer kernels of
//! [`lara_attn::int8`], on `q`, `k`, `v` (and the noise, given landmarks and `omega`) quantised
//! per tensor with the crate's max-abs scales, printed on stderr; the output is the kernel's
//! `f32` output, or with `--int8-out` its `i8` output (the scale from the `f32` output's
//! max-abs) written dequantised. `--compare f32` prints the error against the same estimator in
//! `f32`, on the `f32` inputs and on the dequantised inputs.
//!
//! Layer mode (`--layer WEIGHTS_DIR`, module [`layer`]): the official module
//! (`MultiheadAttention`, `LinearRA`, `RandomizedAttention`, `KernelizedAttention`) runs on
//! `x.npy` `[n, dim]` or `[H, W, dim]` and `out.npy` has the layout of `x`. `WEIGHTS_DIR` is its
//! `state_dict` as `<key>.npy` files; the configuration is one of: `WEIGHTS_DIR/config.json`
//! (the default), `--config FILE` (both `{"module": NAME, "config": {kwargs}}`), or
//! `--module NAME --kwargs JSON`, the kwargs being those of the official constructor. The
//! kwargs set everything the estimator options would, so those options are refused; `--mode`,
//! `--eps` (`[h, R, d]`, [`Layer::noise_len`](lara_attn::layer::Layer::noise_len)), `--seed`,
//! `--draws`, `--mask` (`[n]`), `--backend` and `-o` work as for the estimators, and
//! `--compare softmax-layer` prints the error against the same weights run as
//! `MultiheadAttention`.
//!
//! Modules: [`args`] (the command line and `--help`), [`check`] (option combinations),
//! [`files`] (reading `.npy` files through the tests' reader), [`problem`] (the checked inputs),
//! [`run`] (the estimators), [`compare`] (`--compare`), [`output`] (writing the result),
//! [`int8`] (`--int8`), [`layer`] (`--layer`, with the tests' `state_dict` and configuration
//! readers, [`layers`]).

mod args;
mod check;
mod compare;
mod files;
mod int8;
mod layer;
#[path = "../../tests/support/layers.rs"]
mod layers;
mod output;
mod problem;
mod run;

use args::{Options, Parsed, Task};
use lara_attn::backend::{self, Backend};
use layers::npy;
use std::process::ExitCode;

type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not valid UTF-8"))
        })
        .collect()
    {
        Ok(args) => args,
        Err(e) => return fail(&e),
    };
    match args::parse_args(&args) {
        Ok(Parsed::Help) => {
            println!("{}", args::USAGE);
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run(options)) => match execute(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("run with --help for the options");
            ExitCode::from(2)
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Checks the options, reads the inputs, runs the estimator, compares and writes: nothing is
/// written unless everything before succeeded.
fn execute(o: &Options) -> Res<()> {
    check::applicable(o)?;
    if let Some(name) = &o.backend {
        select_backend(name)?;
    }
    let method = match &o.task {
        Task::Estimator(method) => *method,
        Task::Layer(args) => return layer::execute(o, args),
    };
    let problem = problem::load(o, method)?;
    if o.int8 {
        return int8::execute(o, method, problem);
    }
    let out = run::estimate(o, method, &problem)?;
    if !o.compare.is_empty() {
        compare::print_error(o, &problem, &out)?;
    }
    if let Some(path) = &o.output {
        output::write(method.name(), &problem, path, &out)?;
    }
    Ok(())
}

/// `--backend NAME`: `best` or the name of a backend available here.
fn select_backend(name: &str) -> Res<()> {
    let choice = if name == "best" {
        None
    } else {
        let names: Vec<&str> = Backend::ALL.iter().map(|b| b.name()).collect();
        Some(Backend::from_name(name).ok_or_else(|| {
            format!(
                "unknown --backend {name:?}: expected best or one of {}",
                names.join(", ")
            )
        })?)
    };
    backend::set_backend(choice)
        .map_err(|_| format!("--backend {name}: not available on this target or CPU"))
}
