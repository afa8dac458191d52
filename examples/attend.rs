//! A host tool for real model data: runs any estimator of the crate on `.npy` inputs.
//!
//! `cargo run --release --example attend -- --method <exact|lara|ra|rfa|rfa-trig> [options]
//! q.npy k.npy v.npy -o out.npy` (`--help` lists the options).
//!
//! Inputs are little-endian float32 `.npy` files (NPY v1/v2/v3, C order), `[n, d]` for one head
//! or `[h, n, d]` for `h` heads (run through `lara_attn::multihead`, or head by head where the
//! multi-head API has no entry point: key padding masks, log-space RFA, per-head LARA options).
//! `q` may have another `n` than `k`/`v` (cross-attention), `v` another last dimension. The
//! output is written as NPY v1.0 `<f4`, `[n_q, d_v]` or `[h, n_q, d_v]`.
//!
//! Beyond the official defaults: a key padding mask (`--mask`, exact / lara / rfa / rfa-trig),
//! the paper's noise scale (`--scaled-noise`, lara / ra), antithetic or two-sample LARA proposals
//! (`--proposals`) and log-space positive RFA (`--rfa-log-space`). Every error (bad argument,
//! missing, truncated or mistyped file, a shape that does not fit, a kernel error) is one line on
//! stderr and exit code 2.

#[path = "../tests/support/npy.rs"]
mod npy;

use lara_attn::backend::{self, Backend};
use lara_attn::random::{self, DefaultRng, NoiseScale};
use lara_attn::{Shape, causal, exact, lara, multihead, ra, rfa};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: attend --method <exact|lara|ra|rfa|rfa-trig> [options] q.npy k.npy v.npy -o out.npy

Inputs: little-endian float32 .npy, [n, d] (one head) or [h, n, d] (h heads, through the
multi-head API). q: [.., n_q, d], k: [.., n_k, d], v: [.., n_k, d_v]. A 2-D auxiliary file
(--omega, --eps, landmarks, --key-indices/--gates as 1-D) is used for every head; a 3-D
(2-D) one gives one slice per head.

Options:
  -o, --output FILE        where to write the output ([n_q, d_v] or [h, n_q, d_v], <f4);
                           optional only with --compare
  --method M               exact | lara | ra | rfa | rfa-trig (required)
  --mode eval|sampled      eval (W = mu, default) or sampled (W = mu + eps) for lara and ra
  --landmarks C            lara: number of segment-mean landmarks (default 16; C' = min(C, n_q, n_k))
  --landmarks-q FILE       lara: given query landmarks [C, d] (with --landmarks-k)
  --landmarks-k FILE       lara: given key landmarks [C, d] (with --landmarks-q)
  --mis opt|bh|biased      lara: proposal weighting (default opt)
  --alpha A                lara: alpha_coeff of mis-opt (default 1.0)
  --eps FILE               lara/ra: the sampled-mode noise, lara [C', d] ([2C', d] with
                           --proposals two), ra [n_q, d] (implies --mode sampled)
  --scaled-noise           lara/ra sampled mode: W = mu + d^1/4 eps, unit-variance noise in the
                           paper's scaled variables (default: the official W = mu + eps); a
                           given --eps is scaled too
  --proposals P            lara sampled mode: single (default), antithetic (W = mu +- eps, 2C'
                           samples) or two (two draws per landmark, --eps [2C', d])
  --ra-mean 0|-1|1         ra: the official num_samples (default 0: key average; -1: attention
                           weighted; 1: one sampled key per query)
  --key-indices FILE       ra --ra-mean 1: the key of each query, int32 [n_q] (needed in eval
                           mode or with --eps; otherwise drawn)
  --features S             rfa/rfa-trig: random features (default 64, or the S of --omega)
  --omega-kind iid|orthogonal
                           rfa/rfa-trig: how omega is drawn (default orthogonal)
  --omega FILE             rfa/rfa-trig: a given projection [S, d] or [h, S, d]
  --rfa-log-space          rfa (not causal): positive features computed in log space, without
                           the official 1e-4 feature floor and 1e-2 denominator clamp
  --causal                 exact (KV cache of capacity n), rfa, rfa-trig: token i attends to
                           keys 0..=i (needs n_q = n_k)
  --gates FILE             causal rfa/rfa-trig: recency gates in [0, 1], [n] or [h, n]
  --seed N                 seed of the one DefaultRng every random draw comes from (default 0)
  --draws N                average N independent draws (default 1; needs randomness: sampled
                           lara/ra without --eps, rfa without --omega)
  --compare exact          print ||out - exact||_F / ||exact||_F (causal exact with --causal)
  --backend NAME           scalar | sse2 | avx2 | avx512 | neon | simd128 | best (default best)
  --mask FILE              exact, lara, rfa, rfa-trig (not ra, not --causal): key padding mask
                           [n_k] (every head) or [h, n_k]; dtype |b1 (bool), <i4 or <f4; true
                           or nonzero marks a padding key, which is ignored. --compare exact
                           compares with masked exact attention
  -h, --help               this text

Exit code: 0 on success, 2 on any error.";

type Res<T> = Result<T, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Exact,
    Lara,
    Ra,
    Rfa,
    RfaTrig,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Lara => "lara",
            Method::Ra => "ra",
            Method::Rfa => "rfa",
            Method::RfaTrig => "rfa-trig",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Eval,
    Sampled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OmegaKind {
    Iid,
    Orthogonal,
}

/// The parsed command line.
#[derive(Debug)]
struct Options {
    method: Method,
    inputs: Vec<PathBuf>,
    output: Option<PathBuf>,
    mode: Option<Mode>,
    landmarks: Option<usize>,
    landmarks_q: Option<PathBuf>,
    landmarks_k: Option<PathBuf>,
    weighting: lara::Weighting,
    mis_given: bool,
    alpha_given: bool,
    eps: Option<PathBuf>,
    ra_mean: i32,
    key_indices: Option<PathBuf>,
    features: Option<usize>,
    omega_kind: OmegaKind,
    omega: Option<PathBuf>,
    causal: bool,
    gates: Option<PathBuf>,
    seed: u64,
    draws: usize,
    compare: bool,
    backend: Option<String>,
    mask: Option<PathBuf>,
    scaled_noise: bool,
    proposals: Option<lara::Proposals>,
    rfa_log_space: bool,
}

enum Parsed {
    Run(Box<Options>),
    Help,
}

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
    match parse_args(&args) {
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run(options)) => match run(&options) {
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

// ---------------------------------------------------------------------------------------------
// Command line

fn parse_args(args: &[String]) -> Res<Parsed> {
    let mut method = None;
    let mut inputs = Vec::new();
    let mut output = None;
    let mut mode = None;
    let mut landmarks = None;
    let mut landmarks_q = None;
    let mut landmarks_k = None;
    let mut mis = None;
    let mut alpha = None;
    let mut eps = None;
    let mut ra_mean = 0;
    let mut key_indices = None;
    let mut features = None;
    let mut omega_kind = OmegaKind::Orthogonal;
    let mut omega = None;
    let mut causal = false;
    let mut gates = None;
    let mut seed = 0u64;
    let mut draws = 1usize;
    let mut compare = false;
    let mut backend = None;
    let mut mask = None;
    let mut scaled_noise = false;
    let mut proposals = None;
    let mut rfa_log_space = false;

    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        // `--name=value` is accepted as well as `--name value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |what: &str| -> Res<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => iter
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value ({what})")),
            }
        };
        match name {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--method" => {
                let m = value("exact, lara, ra, rfa or rfa-trig")?;
                method = Some(match m.as_str() {
                    "exact" => Method::Exact,
                    "lara" => Method::Lara,
                    "ra" => Method::Ra,
                    "rfa" => Method::Rfa,
                    "rfa-trig" => Method::RfaTrig,
                    other => {
                        return Err(format!(
                            "unknown method {other:?}: expected exact, lara, ra, rfa or rfa-trig"
                        ));
                    }
                });
            }
            "-o" | "--output" => output = Some(PathBuf::from(value("a file name")?)),
            "--mode" => {
                mode = Some(match value("eval or sampled")?.as_str() {
                    "eval" => Mode::Eval,
                    "sampled" => Mode::Sampled,
                    other => {
                        return Err(format!(
                            "unknown --mode {other:?}: expected eval or sampled"
                        ));
                    }
                });
            }
            "--landmarks" => landmarks = Some(parse_positive(name, &value("a count")?)?),
            "--landmarks-q" => landmarks_q = Some(PathBuf::from(value("a file name")?)),
            "--landmarks-k" => landmarks_k = Some(PathBuf::from(value("a file name")?)),
            "--mis" => mis = Some(value("opt, bh or biased")?),
            "--alpha" => {
                let text = value("a number")?;
                let a: f32 = text
                    .parse()
                    .map_err(|_| format!("--alpha: {text:?} is not a number"))?;
                if !a.is_finite() {
                    return Err(format!("--alpha: {text:?} is not finite"));
                }
                alpha = Some(a);
            }
            "--eps" => eps = Some(PathBuf::from(value("a file name")?)),
            "--ra-mean" => {
                let text = value("0, -1 or 1")?;
                ra_mean = match text.as_str() {
                    "0" => 0,
                    "-1" => -1,
                    "1" => 1,
                    other => {
                        return Err(format!(
                            "--ra-mean {other:?}: expected 0, -1 or 1 (the official num_samples)"
                        ));
                    }
                };
            }
            "--key-indices" => key_indices = Some(PathBuf::from(value("a file name")?)),
            "--features" => features = Some(parse_positive(name, &value("a count")?)?),
            "--omega-kind" => {
                omega_kind = match value("iid or orthogonal")?.as_str() {
                    "iid" => OmegaKind::Iid,
                    "orthogonal" => OmegaKind::Orthogonal,
                    other => {
                        return Err(format!(
                            "unknown --omega-kind {other:?}: expected iid or orthogonal"
                        ));
                    }
                };
            }
            "--omega" => omega = Some(PathBuf::from(value("a file name")?)),
            "--causal" => causal = true,
            "--gates" => gates = Some(PathBuf::from(value("a file name")?)),
            "--seed" => {
                let text = value("an unsigned integer")?;
                seed = text
                    .parse()
                    .map_err(|_| format!("--seed: {text:?} is not an unsigned 64-bit integer"))?;
            }
            "--draws" => draws = parse_positive(name, &value("a count")?)?,
            "--compare" => {
                let text = value("exact")?;
                if text != "exact" {
                    return Err(format!(
                        "--compare {text:?}: only `--compare exact` is supported"
                    ));
                }
                compare = true;
            }
            "--backend" => backend = Some(value("a backend name")?),
            "--mask" => mask = Some(PathBuf::from(value("a file name")?)),
            "--scaled-noise" => scaled_noise = true,
            "--proposals" => {
                proposals = Some(match value("single, antithetic or two")?.as_str() {
                    "single" => lara::Proposals::Single,
                    "antithetic" => lara::Proposals::Antithetic,
                    "two" | "two-per-landmark" => lara::Proposals::TwoPerLandmark,
                    other => {
                        return Err(format!(
                            "unknown --proposals {other:?}: expected single, antithetic or two"
                        ));
                    }
                });
            }
            "--rfa-log-space" => rfa_log_space = true,
            _ if arg.starts_with('-') && arg.len() > 1 => {
                return Err(format!("unknown option {arg:?}"));
            }
            _ => inputs.push(PathBuf::from(arg)),
        }
    }

    let method = method.ok_or("--method is required (exact, lara, ra, rfa or rfa-trig)")?;
    if inputs.len() != 3 {
        return Err(format!(
            "expected three input files q.npy k.npy v.npy, got {}",
            inputs.len()
        ));
    }
    if output.is_none() && !compare {
        return Err("-o out.npy is required (optional only with --compare exact)".into());
    }
    let alpha_given = alpha.is_some();
    let mis_given = mis.is_some();
    let weighting = match mis.as_deref().unwrap_or("opt") {
        "opt" | "mis-opt" => lara::Weighting::Optimal {
            alpha_coeff: alpha.unwrap_or(1.0),
        },
        "bh" | "mis-bh" => lara::Weighting::BalanceHeuristic,
        "biased" | "mis-biased" => lara::Weighting::Biased,
        other => {
            return Err(format!(
                "unknown --mis {other:?}: expected opt, bh or biased"
            ));
        }
    };
    Ok(Parsed::Run(Box::new(Options {
        method,
        inputs,
        output,
        mode,
        landmarks,
        landmarks_q,
        landmarks_k,
        weighting,
        mis_given,
        alpha_given,
        eps,
        ra_mean,
        key_indices,
        features,
        omega_kind,
        omega,
        causal,
        gates,
        seed,
        draws,
        compare,
        backend,
        mask,
        scaled_noise,
        proposals,
        rfa_log_space,
    })))
}

fn parse_positive(name: &str, text: &str) -> Res<usize> {
    match text.parse::<usize>() {
        Ok(0) => Err(format!("{name} must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{name}: {text:?} is not a positive integer")),
    }
}

/// Rejects options that the chosen method would silently ignore.
fn check_applicable(o: &Options) -> Res<()> {
    let m = o.method;
    let only = |given: bool, option: &str, methods: &[Method]| -> Res<()> {
        if given && !methods.contains(&m) {
            let names: Vec<&str> = methods.iter().map(|m| m.name()).collect();
            return Err(format!(
                "{option} applies to --method {} only, not {}",
                names.join(" / "),
                m.name()
            ));
        }
        Ok(())
    };
    only(o.mode.is_some(), "--mode", &[Method::Lara, Method::Ra])?;
    only(o.eps.is_some(), "--eps", &[Method::Lara, Method::Ra])?;
    only(
        o.landmarks.is_some() || o.landmarks_q.is_some() || o.landmarks_k.is_some(),
        "--landmarks",
        &[Method::Lara],
    )?;
    only(
        o.mis_given || o.alpha_given,
        "--mis / --alpha",
        &[Method::Lara],
    )?;
    if o.alpha_given && !matches!(o.weighting, lara::Weighting::Optimal { .. }) {
        return Err("--alpha applies to --mis opt only".into());
    }
    only(
        o.ra_mean != 0 || o.key_indices.is_some(),
        "--ra-mean / --key-indices",
        &[Method::Ra],
    )?;
    only(
        o.features.is_some() || o.omega.is_some() || o.omega_kind != OmegaKind::Orthogonal,
        "--features / --omega / --omega-kind",
        &[Method::Rfa, Method::RfaTrig],
    )?;
    only(
        o.gates.is_some(),
        "--gates",
        &[Method::Rfa, Method::RfaTrig],
    )?;
    if o.gates.is_some() && !o.causal {
        return Err("--gates needs --causal".into());
    }
    if o.causal && matches!(m, Method::Lara | Method::Ra) {
        return Err(format!(
            "--causal is implemented for exact, rfa and rfa-trig only; lara-attn has no causal {} yet",
            m.name()
        ));
    }
    if o.eps.is_some() && o.mode == Some(Mode::Eval) {
        return Err(
            "--eps is the noise of sampled mode: it cannot be used with --mode eval".into(),
        );
    }
    if o.landmarks_q.is_some() != o.landmarks_k.is_some() {
        return Err("--landmarks-q and --landmarks-k must be given together".into());
    }
    if o.key_indices.is_some() && o.ra_mean != 1 {
        return Err("--key-indices needs --ra-mean 1".into());
    }
    if o.mask.is_some() && m == Method::Ra {
        return Err(
            "--mask: lara-attn's ra has no key padding mask (--mask applies to --method \
             exact / lara / rfa / rfa-trig)"
                .into(),
        );
    }
    if o.mask.is_some() && o.causal {
        return Err(
            "--mask cannot be used with --causal: the causal kernels have no key padding mask"
                .into(),
        );
    }
    only(
        o.scaled_noise,
        "--scaled-noise",
        &[Method::Lara, Method::Ra],
    )?;
    if o.scaled_noise && !sampled(o) {
        return Err(
            "--scaled-noise scales the noise of sampled mode: add --mode sampled (or --eps)".into(),
        );
    }
    only(o.proposals.is_some(), "--proposals", &[Method::Lara])?;
    if o.proposals.is_some_and(|p| p != lara::Proposals::Single) && !sampled(o) {
        return Err(
            "--proposals antithetic / two only change sampled mode: add --mode sampled (or --eps)"
                .into(),
        );
    }
    only(o.rfa_log_space, "--rfa-log-space", &[Method::Rfa])?;
    if o.rfa_log_space && o.causal {
        return Err(
            "--rfa-log-space is not implemented for --causal (causal rfa keeps the official \
             floor and clamp)"
                .into(),
        );
    }
    if o.draws > 1 && !has_randomness(o) {
        return Err(format!(
            "--draws {} needs a random estimator: --mode sampled without --eps (lara, ra) or a \
             generated omega (rfa, rfa-trig without --omega); this run is deterministic",
            o.draws
        ));
    }
    Ok(())
}

fn sampled(o: &Options) -> bool {
    o.mode == Some(Mode::Sampled) || o.eps.is_some()
}

fn has_randomness(o: &Options) -> bool {
    match o.method {
        Method::Exact => false,
        Method::Lara | Method::Ra => sampled(o) && o.eps.is_none(),
        Method::Rfa | Method::RfaTrig => o.omega.is_none(),
    }
}

// ---------------------------------------------------------------------------------------------
// Files

/// A float32 input `[n, d]` or `[h, n, d]`.
struct Input {
    path: PathBuf,
    /// `Some(h)` for a 3-D file.
    heads: Option<usize>,
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

/// Reads a `.npy` file of `descr` elements (through the tests' reader), checking that no
/// dimension is zero.
fn read_npy<T, const N: usize>(
    path: &Path,
    descr: &str,
    decode: fn([u8; N]) -> T,
) -> Res<npy::Array<T>> {
    let bytes = read_bytes(path)?;
    parse_npy(path, &bytes, descr, decode)
}

fn read_bytes(path: &Path) -> Res<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// [`read_npy`] on the bytes of `path`.
fn parse_npy<T, const N: usize>(
    path: &Path,
    bytes: &[u8],
    descr: &str,
    decode: fn([u8; N]) -> T,
) -> Res<npy::Array<T>> {
    // The reader checks the header, the dtype and that the payload matches the shape.
    let array = npy::parse(bytes, descr, decode).map_err(|e| format!("{}: {e}", path.display()))?;
    if array.shape.contains(&0) {
        return Err(format!(
            "{}: shape {:?} has a zero dimension",
            path.display(),
            array.shape
        ));
    }
    Ok(array)
}

fn read_input(path: &Path) -> Res<Input> {
    let array = read_npy(path, "<f4", f32::from_le_bytes)?;
    let (heads, rows, cols) = match array.shape[..] {
        [rows, cols] => (None, rows, cols),
        [h, rows, cols] => (Some(h), rows, cols),
        _ => {
            return Err(format!(
                "{}: shape {:?}: expected [n, d] or [h, n, d]",
                path.display(),
                array.shape
            ));
        }
    };
    Ok(Input {
        path: path.to_path_buf(),
        heads,
        rows,
        cols,
        data: array.data,
    })
}

/// Reads an auxiliary per-head input whose per-head shape has `inner_rank` dimensions: a file of
/// that rank is used for every head, one with a leading axis of `heads` gives one per head.
/// Returns the per-head shape and the stacked `[heads, ..]` data.
fn read_stacked<T: Clone>(
    option: &str,
    path: &Path,
    descr: &str,
    decode: fn([u8; 4]) -> T,
    heads: usize,
    inner: &str,
) -> Res<(Vec<usize>, Vec<T>)> {
    stack_heads(option, path, read_npy(path, descr, decode)?, heads, inner)
}

/// The stacking of [`read_stacked`] on an array already read.
fn stack_heads<T: Clone>(
    option: &str,
    path: &Path,
    array: npy::Array<T>,
    heads: usize,
    inner: &str,
) -> Res<(Vec<usize>, Vec<T>)> {
    let inner_rank = inner.split(',').count();
    let shape = &array.shape;
    if shape.len() == inner_rank {
        let mut data = try_alloc::<T>(array.data.len().saturating_mul(heads))?;
        for _ in 0..heads {
            data.extend_from_slice(&array.data);
        }
        Ok((shape.clone(), data))
    } else if shape.len() == inner_rank + 1 && shape[0] == heads {
        Ok((shape[1..].to_vec(), array.data))
    } else {
        Err(format!(
            "{option} {}: shape {shape:?}: expected [{inner}] or [h = {heads}, {inner}]",
            path.display()
        ))
    }
}

/// The `descr` of an `.npy` header, or `None` if the bytes do not start with a well-formed
/// header (the tests' reader then says what is wrong).
fn npy_descr(bytes: &[u8]) -> Option<&str> {
    let rest = bytes.strip_prefix(b"\x93NUMPY")?;
    let (len, start) = match rest.first()? {
        1 => (
            usize::from(u16::from_le_bytes(*rest.get(2..)?.first_chunk::<2>()?)),
            10,
        ),
        2 | 3 => (
            usize::try_from(u32::from_le_bytes(*rest.get(2..)?.first_chunk::<4>()?)).ok()?,
            12,
        ),
        _ => return None,
    };
    let header = std::str::from_utf8(bytes.get(start..usize::checked_add(start, len)?)?).ok()?;
    let key = "'descr':";
    let value = header[header.find(key)? + key.len()..].trim_start();
    let value = value.strip_prefix('\'')?;
    Some(&value[..value.find('\'')?])
}

/// Reads the key padding mask of `--mask`: `|b1` (numpy bool), `<i4` or `<f4` (nonzero marks a
/// padding key), `[n_k]` for every head or `[h, n_k]`. Returns the mask stacked `[h, n_k]` and
/// whether the file had one mask per head.
fn read_mask(path: &Path, heads: usize, keys: usize) -> Res<(Vec<bool>, bool)> {
    let bytes = read_bytes(path)?;
    let array: npy::Array<bool> = match npy_descr(&bytes) {
        Some("|b1") => to_mask(parse_npy(path, &bytes, "|b1", |[b]: [u8; 1]| b)?, |b| {
            b != 0
        }),
        Some("<i4") => to_mask(parse_npy(path, &bytes, "<i4", i32::from_le_bytes)?, |x| {
            x != 0
        }),
        Some("<f4") => {
            let array = parse_npy(path, &bytes, "<f4", f32::from_le_bytes)?;
            if let Some(i) = array.data.iter().position(|x| x.is_nan()) {
                return Err(format!(
                    "--mask {}: element {i} is NaN (nonzero marks a padding key)",
                    path.display()
                ));
            }
            to_mask(array, |x| x != 0.0)
        }
        Some(other) => {
            return Err(format!(
                "--mask {}: dtype '{other}', expected '|b1' (bool), '<i4' or '<f4' (nonzero marks \
                 a padding key)",
                path.display()
            ));
        }
        // Not a well-formed header: the reader reports the problem.
        None => {
            return Err(match parse_npy(path, &bytes, "|b1", |_: [u8; 1]| ()) {
                Err(e) => e,
                Ok(_) => format!("--mask {}: malformed .npy header", path.display()),
            });
        }
    };
    let per_head = array.shape.len() == 2;
    let (s, mask) = stack_heads("--mask", path, array, heads, "n_k")?;
    if s != [keys] {
        return Err(format!(
            "--mask {}: per-head shape {s:?}, expected [n_k = {keys}] (one entry per key)",
            path.display()
        ));
    }
    for (head, head_mask) in mask.chunks_exact(keys).enumerate() {
        if head_mask.iter().all(|&masked| masked) {
            let which = if per_head {
                format!("head {head} of ")
            } else {
                String::new()
            };
            return Err(format!(
                "--mask {}: {which}the mask masks every key (attention over no key is undefined)",
                path.display()
            ));
        }
    }
    Ok((mask, per_head))
}

fn to_mask<T: Copy>(array: npy::Array<T>, masked: impl Fn(T) -> bool) -> npy::Array<bool> {
    npy::Array {
        data: array.data.iter().map(|&x| masked(x)).collect(),
        shape: array.shape,
    }
}

fn try_alloc<T>(len: usize) -> Res<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| format!("cannot allocate {len} elements"))?;
    Ok(v)
}

fn zeros(len: usize) -> Res<Vec<f32>> {
    let mut v = try_alloc(len)?;
    v.resize(len, 0.0);
    Ok(v)
}

/// Writes `data` as an NPY v1.0 little-endian float32 C-order array of `shape`.
fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Res<()> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // magic (6) + version (2) + header length (2) + header, padded to a multiple of 64 with
    // spaces and a final newline.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let header_len = u16::try_from(header.len()).map_err(|_| "shape too long for NPY v1.0")?;
    let mut bytes = try_alloc::<u8>(10 + header.len() + 4 * data.len())?;
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&header_len.to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for x in data {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Running

/// Everything one draw needs, read and checked.
struct Problem {
    heads: usize,
    /// Whether the inputs were 3-D (the output is then `[h, n_q, d_v]`).
    stacked: bool,
    shape: Shape,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    params_landmarks: Option<(usize, Vec<f32>, Vec<f32>)>,
    eps: Option<Vec<f32>>,
    key_indices: Option<Vec<u32>>,
    features: usize,
    omega: Option<Vec<f32>>,
    gates: Option<Vec<f32>>,
    /// The key padding mask stacked `[h, n_k]`.
    mask: Option<Vec<bool>>,
    /// Whether the mask file had one mask per head (`[h, n_k]`).
    mask_per_head: bool,
}

fn run(o: &Options) -> Res<()> {
    check_applicable(o)?;
    if let Some(name) = &o.backend {
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
            .map_err(|_| format!("--backend {name}: not available on this target or CPU"))?;
    }
    let p = load_problem(o)?;
    let out_len = p
        .heads
        .checked_mul(p.shape.queries)
        .and_then(|x| x.checked_mul(p.shape.value_dim))
        .ok_or("output size overflows")?;

    let mut rng = random::default_rng(o.seed);
    let mut out = zeros(out_len)?;
    if o.draws == 1 {
        run_once(o, &p, &mut rng, &mut out)?;
    } else {
        let mut sum = vec![0.0f64; out_len];
        for _ in 0..o.draws {
            run_once(o, &p, &mut rng, &mut out)?;
            for (s, &x) in sum.iter_mut().zip(&out) {
                *s += f64::from(x);
            }
        }
        for (x, s) in out.iter_mut().zip(&sum) {
            *x = (s / o.draws as f64) as f32;
        }
    }

    if o.compare {
        let mut reference = zeros(out_len)?;
        if o.causal {
            causal_exact(&p, &mut reference)?;
        } else {
            run_exact(&p, &mut reference)?;
        }
        let (mut diff, mut norm) = (0.0f64, 0.0f64);
        for (&x, &r) in out.iter().zip(&reference) {
            diff += (f64::from(x) - f64::from(r)).powi(2);
            norm += f64::from(r).powi(2);
        }
        let label = if o.causal {
            "causal exact"
        } else if o.mask.is_some() {
            "masked exact"
        } else {
            "exact"
        };
        if norm > 0.0 {
            println!(
                "relative Frobenius error vs {label}: {:.6e}",
                (diff / norm).sqrt()
            );
        } else {
            println!(
                "relative Frobenius error vs {label}: undefined (exact output is zero); absolute: {:.6e}",
                diff.sqrt()
            );
        }
    }
    if let Some(path) = &o.output {
        let shape: Vec<usize> = if p.stacked {
            vec![p.heads, p.shape.queries, p.shape.value_dim]
        } else {
            vec![p.shape.queries, p.shape.value_dim]
        };
        write_npy(path, &shape, &out)?;
        eprintln!(
            "{}: wrote {} {:?} (backend {})",
            o.method.name(),
            path.display(),
            shape,
            backend::active_backend().name()
        );
    }
    Ok(())
}

fn load_problem(o: &Options) -> Res<Problem> {
    let q = read_input(&o.inputs[0])?;
    let k = read_input(&o.inputs[1])?;
    let v = read_input(&o.inputs[2])?;
    if q.heads.is_some() != k.heads.is_some() || q.heads.is_some() != v.heads.is_some() {
        return Err(format!(
            "q, k and v must all be 2-D [n, d] or all 3-D [h, n, d] ({}, {}, {})",
            rank_text(&q),
            rank_text(&k),
            rank_text(&v)
        ));
    }
    if k.heads != q.heads || v.heads != q.heads {
        return Err(format!(
            "head counts differ: q has {:?}, k {:?}, v {:?}",
            q.heads, k.heads, v.heads
        ));
    }
    if k.cols != q.cols {
        return Err(format!(
            "{}: key dimension {} differs from the query dimension {} of {}",
            k.path.display(),
            k.cols,
            q.cols,
            q.path.display()
        ));
    }
    if v.rows != k.rows {
        return Err(format!(
            "{}: {} values, but {} has {} keys",
            v.path.display(),
            v.rows,
            k.path.display(),
            k.rows
        ));
    }
    let heads = q.heads.unwrap_or(1);
    let shape = Shape::cross(q.rows, k.rows, q.cols, v.cols);
    let d = shape.dim;
    if o.causal && shape.queries != shape.keys {
        return Err(format!(
            "--causal needs as many queries as keys (n_q = {}, n_k = {})",
            shape.queries, shape.keys
        ));
    }

    let mut params_landmarks = None;
    if let (Some(lq), Some(lk)) = (&o.landmarks_q, &o.landmarks_k) {
        let (sq, dq) = read_stacked(
            "--landmarks-q",
            lq,
            "<f4",
            f32::from_le_bytes,
            heads,
            "C, d",
        )?;
        let (sk, dk) = read_stacked(
            "--landmarks-k",
            lk,
            "<f4",
            f32::from_le_bytes,
            heads,
            "C, d",
        )?;
        if sq != sk || sq[1] != d {
            return Err(format!(
                "--landmarks-q {sq:?} and --landmarks-k {sk:?} must both be [C, d = {d}]"
            ));
        }
        if let Some(c) = o.landmarks
            && c != sq[0]
        {
            return Err(format!(
                "--landmarks {c} differs from the {} rows of the given landmarks",
                sq[0]
            ));
        }
        params_landmarks = Some((sq[0], dq, dk));
    }
    let lara_count = match &params_landmarks {
        Some((count, ..)) => *count,
        None => lara::effective_landmarks(shape, o.landmarks.unwrap_or(16)),
    };

    let eps = match &o.eps {
        None => None,
        Some(path) => {
            let (rows, inner) = match o.method {
                Method::Lara if o.proposals == Some(lara::Proposals::TwoPerLandmark) => {
                    (lara_count.saturating_mul(2), "2C', d")
                }
                Method::Lara => (lara_count, "C', d"),
                _ => (shape.queries, "n_q, d"),
            };
            let (s, data) = read_stacked("--eps", path, "<f4", f32::from_le_bytes, heads, inner)?;
            if s != [rows, d] {
                return Err(format!(
                    "--eps {}: per-head shape {s:?}, expected [{inner}] = [{rows}, {d}]",
                    path.display()
                ));
            }
            Some(data)
        }
    };

    let key_indices = match &o.key_indices {
        None => None,
        Some(path) => {
            let (s, data) = read_stacked(
                "--key-indices",
                path,
                "<i4",
                i32::from_le_bytes,
                heads,
                "n_q",
            )?;
            if s != [shape.queries] {
                return Err(format!(
                    "--key-indices {}: per-head shape {s:?}, expected [{}]",
                    path.display(),
                    shape.queries
                ));
            }
            let mut indices = try_alloc(data.len())?;
            for (i, &j) in data.iter().enumerate() {
                match u32::try_from(j) {
                    Ok(j) if (j as usize) < shape.keys => indices.push(j),
                    _ => {
                        return Err(format!(
                            "--key-indices {}: element {i} is {j}, not in 0..{}",
                            path.display(),
                            shape.keys
                        ));
                    }
                }
            }
            Some(indices)
        }
    };

    let mut features = o.features.unwrap_or(64);
    let omega = match &o.omega {
        None => None,
        Some(path) => {
            let (s, data) =
                read_stacked("--omega", path, "<f4", f32::from_le_bytes, heads, "S, d")?;
            if s[1] != d {
                return Err(format!(
                    "--omega {}: per-head shape {s:?}, expected [S, d = {d}]",
                    path.display()
                ));
            }
            if let Some(f) = o.features
                && f != s[0]
            {
                return Err(format!(
                    "--features {f} differs from the S = {} of --omega",
                    s[0]
                ));
            }
            features = s[0];
            Some(data)
        }
    };

    let gates = match &o.gates {
        None => None,
        Some(path) => {
            let (s, data) = read_stacked("--gates", path, "<f4", f32::from_le_bytes, heads, "n")?;
            if s != [shape.keys] {
                return Err(format!(
                    "--gates {}: per-head shape {s:?}, expected [{}]",
                    path.display(),
                    shape.keys
                ));
            }
            Some(data)
        }
    };

    let (mask, mask_per_head) = match &o.mask {
        None => (None, false),
        Some(path) => {
            let (mask, per_head) = read_mask(path, heads, shape.keys)?;
            (Some(mask), per_head)
        }
    };

    Ok(Problem {
        heads,
        stacked: q.heads.is_some(),
        shape,
        q: q.data,
        k: k.data,
        v: v.data,
        params_landmarks,
        eps,
        key_indices,
        features,
        omega,
        gates,
        mask,
        mask_per_head,
    })
}

fn rank_text(input: &Input) -> String {
    format!(
        "{}: {}-D",
        input.path.display(),
        if input.heads.is_some() { 3 } else { 2 }
    )
}

fn kernel_error(method: &str) -> impl Fn(lara_attn::Error) -> String + '_ {
    move |e| format!("{method}: {e}")
}

fn run_once(o: &Options, p: &Problem, rng: &mut DefaultRng, out: &mut [f32]) -> Res<()> {
    match o.method {
        Method::Exact if o.causal => causal_exact(p, out),
        Method::Exact => run_exact(p, out),
        Method::Lara => run_lara(o, p, rng, out),
        Method::Ra => run_ra(o, p, rng, out),
        Method::Rfa | Method::RfaTrig => run_rfa(o, p, rng, out),
    }
}

fn noise_scale(o: &Options) -> NoiseScale {
    if o.scaled_noise {
        NoiseScale::Paper
    } else {
        NoiseScale::Official
    }
}

/// Head `head` of a stacked `[h, per_head]` slice.
fn head_part<'a, T>(what: &str, data: &'a [T], per_head: usize, head: usize) -> Res<&'a [T]> {
    if per_head == 0 {
        return Err(format!("{what}: empty per-head slice"));
    }
    data.chunks_exact(per_head)
        .nth(head)
        .ok_or_else(|| format!("{what} has too few heads"))
}

fn run_lara(o: &Options, p: &Problem, rng: &mut DefaultRng, out: &mut [f32]) -> Res<()> {
    let (h, shape) = (p.heads, p.shape);
    let (q, k, v) = (&p.q[..], &p.k[..], &p.v[..]);
    let landmarks = match &p.params_landmarks {
        Some((count, lq, lk)) => lara::Landmarks::Given {
            count: *count,
            queries: lq,
            keys: lk,
        },
        None => lara::Landmarks::SegmentMeans(o.landmarks.unwrap_or(16)),
    };
    let count = match landmarks {
        lara::Landmarks::Given { count, .. } => count,
        lara::Landmarks::SegmentMeans(c) => lara::effective_landmarks(shape, c),
    };
    let proposals = o.proposals.unwrap_or_default();
    let mut params = lara::Params::new(landmarks, o.weighting)
        .with_proposals(proposals)
        .with_noise_scale(noise_scale(o));
    let mut scratch = zeros(lara::scratch_len(shape, proposals.samples(count)))?;
    let err = kernel_error("lara");
    let draw = sampled(o) && p.eps.is_none();

    // `multihead::lara` takes one mask for every head: a per-head mask runs head by head.
    if !p.mask_per_head {
        if let Some(mask) = &p.mask {
            params = params.with_key_mask(head_part("--mask", mask, shape.keys, 0)?);
        }
        return if draw {
            multihead::lara_sampled(h, shape, &params, q, k, v, rng, out, &mut scratch)
        } else {
            multihead::lara(
                h,
                shape,
                &params,
                q,
                k,
                v,
                p.eps.as_deref(),
                out,
                &mut scratch,
            )
        }
        .map_err(err);
    }

    let landmark_len = count.saturating_mul(shape.dim);
    let noise_len = proposals.noise_rows(count).saturating_mul(shape.dim);
    for (head, q, k, v, out) in head_chunks(p, out) {
        let mut head_params = params;
        if let lara::Landmarks::Given {
            count,
            queries,
            keys,
        } = landmarks
        {
            head_params.landmarks = lara::Landmarks::Given {
                count,
                queries: head_part("--landmarks-q", queries, landmark_len, head)?,
                keys: head_part("--landmarks-k", keys, landmark_len, head)?,
            };
        }
        if let Some(mask) = &p.mask {
            head_params = head_params.with_key_mask(head_part("--mask", mask, shape.keys, head)?);
        }
        if draw {
            lara::attention_sampled(shape, &head_params, q, k, v, rng, out, &mut scratch)
        } else {
            let eps = match &p.eps {
                Some(eps) => Some(head_part("--eps", eps, noise_len, head)?),
                None => None,
            };
            lara::attention(shape, &head_params, q, k, v, eps, out, &mut scratch)
        }
        .map_err(&err)?;
    }
    Ok(())
}

fn run_ra(o: &Options, p: &Problem, rng: &mut DefaultRng, out: &mut [f32]) -> Res<()> {
    let (h, shape) = (p.heads, p.shape);
    let (q, k, v) = (&p.q[..], &p.k[..], &p.v[..]);
    let noise_scale = noise_scale(o);
    let mut scratch = zeros(ra::scratch_len(shape))?;
    let err = kernel_error("ra");
    let given_mean = match (o.ra_mean, &p.key_indices) {
        (0, _) => Some(ra::Mean::KeyAverage),
        (-1, _) => Some(ra::Mean::AttentionWeighted),
        (_, Some(indices)) => Some(ra::Mean::Keys(indices)),
        (_, None) => None,
    };
    if !sampled(o) {
        let mean = given_mean.ok_or(
            "ra --ra-mean 1 in eval mode needs --key-indices (or use --mode sampled to draw them)",
        )?;
        return multihead::ra(
            h,
            shape,
            mean,
            noise_scale,
            q,
            k,
            v,
            None,
            out,
            &mut scratch,
        )
        .map_err(err);
    }
    match (&p.eps, given_mean) {
        (Some(eps), Some(mean)) => multihead::ra(
            h,
            shape,
            mean,
            noise_scale,
            q,
            k,
            v,
            Some(eps),
            out,
            &mut scratch,
        )
        .map_err(err),
        (Some(_), None) => Err(
            "ra --ra-mean 1 with --eps needs --key-indices (the keys are drawn only with the noise)"
                .into(),
        ),
        (None, Some(ra::Mean::Keys(indices))) => {
            // Given keys, drawn noise.
            let mut eps = zeros(h.saturating_mul(shape.queries).saturating_mul(shape.dim))?;
            random::fill_standard_normal(rng, &mut eps);
            multihead::ra(
                h,
                shape,
                ra::Mean::Keys(indices),
                noise_scale,
                q,
                k,
                v,
                Some(&eps),
                out,
                &mut scratch,
            )
            .map_err(err)
        }
        (None, _) => {
            let mean = match o.ra_mean {
                0 => ra::SampledMean::KeyAverage,
                -1 => ra::SampledMean::AttentionWeighted,
                _ => ra::SampledMean::Key,
            };
            multihead::ra_sampled(
                h,
                shape,
                mean,
                noise_scale,
                q,
                k,
                v,
                rng,
                out,
                &mut scratch,
            )
            .map_err(err)
        }
    }
}

fn run_rfa(o: &Options, p: &Problem, rng: &mut DefaultRng, out: &mut [f32]) -> Res<()> {
    let (h, shape) = (p.heads, p.shape);
    let (q, k, v) = (&p.q[..], &p.k[..], &p.v[..]);
    let trig = o.method == Method::RfaTrig;
    let s = p.features;
    let per_head = s.checked_mul(shape.dim).ok_or("--features too large")?;
    let drawn;
    let omega = match &p.omega {
        Some(omega) => &omega[..],
        None => {
            let mut all = zeros(per_head.saturating_mul(h))?;
            for head in all.chunks_exact_mut(per_head) {
                match o.omega_kind {
                    OmegaKind::Iid => random::gaussian_omega(rng, s, shape.dim, head),
                    OmegaKind::Orthogonal => random::orthogonal_omega(rng, s, shape.dim, head),
                }
                .map_err(kernel_error("omega"))?;
            }
            drawn = all;
            &drawn[..]
        }
    };
    if o.causal {
        return causal_rfa(p, trig, omega, out);
    }
    let err = kernel_error(o.method.name());
    if o.rfa_log_space {
        // No multi-head entry point: head by head.
        let mut scratch = zeros(rfa::log_space_scratch_len(shape, s))?;
        for (head, q, k, v, out) in head_chunks(p, out) {
            let omega_h = head_part("omega", omega, per_head, head)?;
            let mask = match &p.mask {
                Some(mask) => Some(head_part("--mask", mask, shape.keys, head)?),
                None => None,
            };
            rfa::positive_log_space(shape, omega_h, s, q, k, v, mask, out, &mut scratch)
                .map_err(&err)?;
        }
        return Ok(());
    }
    let mut scratch = zeros(if trig {
        rfa::trigonometric_scratch_len(shape, s)
    } else {
        rfa::positive_scratch_len(shape, s)
    })?;
    let Some(mask) = &p.mask else {
        return if trig {
            multihead::rfa_trigonometric(h, shape, omega, s, q, k, v, out, &mut scratch)
        } else {
            multihead::rfa_positive(h, shape, omega, s, q, k, v, out, &mut scratch)
        }
        .map_err(err);
    };
    // Masked: no multi-head entry point, head by head.
    for (head, q, k, v, out) in head_chunks(p, out) {
        let omega_h = head_part("omega", omega, per_head, head)?;
        let mask_h = head_part("--mask", mask, shape.keys, head)?;
        if trig {
            rfa::trigonometric_masked(shape, omega_h, s, q, k, v, mask_h, out, &mut scratch)
        } else {
            rfa::positive_masked(shape, omega_h, s, q, k, v, mask_h, out, &mut scratch)
        }
        .map_err(&err)?;
    }
    Ok(())
}

fn run_exact(p: &Problem, out: &mut [f32]) -> Res<()> {
    let mut scratch = zeros(exact::scratch_len(p.shape))?;
    let err = kernel_error("exact");
    let Some(mask) = &p.mask else {
        return multihead::exact(p.heads, p.shape, &p.q, &p.k, &p.v, out, &mut scratch)
            .map_err(err);
    };
    // Masked: no multi-head entry point, head by head.
    for (head, q, k, v, out) in head_chunks(p, out) {
        let mask_h = head_part("--mask", mask, p.shape.keys, head)?;
        exact::attention_masked(p.shape, q, k, v, mask_h, out, &mut scratch).map_err(&err)?;
    }
    Ok(())
}

/// The per-head chunks of stacked `q`, `k`, `v` and `out`.
fn head_chunks<'a>(
    p: &'a Problem,
    out: &'a mut [f32],
) -> impl Iterator<Item = (usize, &'a [f32], &'a [f32], &'a [f32], &'a mut [f32])> {
    let s = p.shape;
    p.q.chunks_exact(s.queries * s.dim)
        .zip(p.k.chunks_exact(s.keys * s.dim))
        .zip(p.v.chunks_exact(s.keys * s.value_dim))
        .zip(out.chunks_exact_mut(s.queries * s.value_dim))
        .enumerate()
        .map(|(head, (((q, k), v), out))| (head, q, k, v, out))
}

/// Causal exact attention, one head at a time through a `KvCache` of capacity `n`.
fn causal_exact(p: &Problem, out: &mut [f32]) -> Res<()> {
    let s = p.shape;
    let err = kernel_error("causal exact");
    let mut buffer = zeros(causal::kv_cache_len(s.keys, s.dim, s.value_dim))?;
    for (_, q, k, v, out) in head_chunks(p, out) {
        let mut cache =
            causal::KvCache::new(s.dim, s.value_dim, s.keys, &mut buffer).map_err(&err)?;
        for (((q_row, k_row), v_row), out_row) in q
            .chunks_exact(s.dim)
            .zip(k.chunks_exact(s.dim))
            .zip(v.chunks_exact(s.value_dim))
            .zip(out.chunks_exact_mut(s.value_dim))
        {
            cache.push(k_row, v_row).map_err(&err)?;
            cache.attend(q_row, out_row).map_err(&err)?;
        }
    }
    Ok(())
}

/// Causal RFA (`lara_attn::causal::rfa`), head by head, with that head's `ω` and gates.
fn causal_rfa(p: &Problem, trig: bool, omega: &[f32], out: &mut [f32]) -> Res<()> {
    let s = p.shape;
    let map = if trig {
        causal::FeatureMap::Trigonometric
    } else {
        causal::FeatureMap::Positive
    };
    let err = kernel_error(if trig {
        "causal rfa-trig"
    } else {
        "causal rfa"
    });
    let per_head = p.features * s.dim;
    let mut scratch = zeros(causal::rfa_state_len(map, s.value_dim, p.features))?;
    for (head, q, k, v, out) in head_chunks(p, out) {
        let omega_h = omega
            .chunks_exact(per_head)
            .nth(head)
            .ok_or("omega has too few heads")?;
        let gates = match &p.gates {
            Some(g) => Some(
                g.chunks_exact(s.keys)
                    .nth(head)
                    .ok_or("gates have too few heads")?,
            ),
            None => None,
        };
        causal::rfa(
            map,
            s,
            omega_h,
            p.features,
            q,
            k,
            v,
            gates,
            out,
            &mut scratch,
        )
        .map_err(&err)?;
    }
    Ok(())
}
