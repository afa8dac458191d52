//! The command line: `--help` text, the parsed [`Options`] and the parser.

use crate::Res;
use lara_attn::lara;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: attend --method <exact|lara|ra|rfa|rfa-trig> [options] q.npy k.npy v.npy -o out.npy
       attend --method <exact|lara|rfa> --int8 [options] q.npy k.npy v.npy -o out.npy
       attend --layer WEIGHTS_DIR [layer options] x.npy -o out.npy

Inputs: little-endian float32 .npy, [n, d] (one head) or [h, n, d] (h heads, stacked).
q: [.., n_q, d], k: [.., n_k, d], v: [.., n_k, d_v]. A 2-D auxiliary file (--omega, --eps,
landmarks, --key-indices/--gates/--mask as 1-D) is used for every head; a 3-D (2-D) one gives
one slice per head.

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
                           mode or with --eps; otherwise drawn); never a masked key
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
  --compare R[,R]          print ||out - R||_F / ||R||_F for each reference R (repeatable):
                           exact: exact attention on the same q, k, v (causal exact with
                           --causal; with --int8, in f32 on the f32 inputs); f32 (--int8
                           only): the same estimator and options in f32, on the f32 inputs
                           and on the dequantised inputs; with --layer: softmax-layer
  --backend NAME           scalar | sse2 | avx2 | avx512 | neon | simd128 | best (default best)
  --mask FILE              every method (not --causal): key padding mask [n_k] (every head) or
                           [h, n_k]; dtype |b1 (bool), <i4 or <f4; true or nonzero marks a
                           padding key, which is ignored. --compare exact compares with masked
                           exact attention
  -h, --help               this text

int8 (lara_attn::int8: integer-only kernels, the same bits on every target):
  --int8                   exact, lara, rfa: quantise q, k, v per tensor (symmetric, scale
                           max|x|/127 over the whole tensor, every head: int8::scale_for), and
                           likewise --eps, --landmarks-q, --landmarks-k and the rfa omega
                           (--omega or drawn as above from --seed, then quantised); run the
                           int8 kernel and write its f32 output. stderr gets the scales,
                           'int8 M: scales (max|x|/127 per tensor) q=.. k=.. v=..'. Supported: --mis, --alpha (|alpha| <= 8), --landmarks,
                           given landmarks, --eps with --proposals and --scaled-noise,
                           --features, --omega-kind, --mask. Refused: --method ra / rfa-trig,
                           --causal, --rfa-log-space, --draws, --layer, and sampled lara
                           without --eps (the int8 kernel draws no noise)
  --int8-out               with --int8: the kernel's i8 output instead, its scale out=..
                           (printed with the others) max|y|/127 of the kernel's f32 output y
                           on the same inputs (a first call); written dequantised, scale * i8
                           as <f4, so that round(out / scale) gives the i8 values exactly
  The int8 kernels are portable integer code: --backend affects only the f32 references.

Layer mode (--layer): a whole official module, out = proj(attention(qkv(x))), on x.npy
[n, dim] (a sequence) or [H, W, dim] (a grid, token y*W + x); out.npy has the layout of x.
  --layer WEIGHTS_DIR      the module's state_dict: a folder of <key>.npy files (float32, e.g.
                           qkv.weight.npy, proj.bias.npy); files the configuration does not
                           read are listed on stderr and ignored
  --config FILE            the configuration: {\"module\": NAME, \"config\": {kwargs}}
                           (default WEIGHTS_DIR/config.json)
  --module NAME --kwargs JSON
                           or the configuration inline: MultiheadAttention, LinearRA,
                           RandomizedAttention or KernelizedAttention and the official
                           constructor's keyword arguments, e.g. --kwargs '{\"dim\": 32,
                           \"num_heads\": 2, \"num_landmarks\": 8, \"proposal_gen\": \"pool\"}'
  --mode eval|sampled      eval (default) or sampled for LinearRA and RandomizedAttention:
                           noise from --eps [h, R, d] (R = C' landmarks, min(C, n) for a
                           sequence, floor(sqrt(C))^2 for a grid, 2C' with use_multisample;
                           RandomizedAttention: R = n), or drawn (--seed, --draws)
  --mask FILE              key padding mask [n] (n = H*W for a grid), dtypes as above
  --compare softmax-layer  also run the same qkv/proj weights as MultiheadAttention and print
                           ||out - softmax||_F / ||softmax||_F (with the same mask)
  -o, --eps, --seed, --draws and --backend as above. The estimator options (--method,
  k.npy v.npy, --landmarks, --mis, --alpha, --proposals, --ra-mean, --features, --omega,
  --causal, --gates, --scaled-noise, --rfa-log-space) are refused: the kwargs set the layer.

Exit code: 0 on success, 2 on any error.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Exact,
    Lara,
    Ra,
    Rfa,
    RfaTrig,
}

impl Method {
    pub fn name(self) -> &'static str {
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
pub enum Mode {
    Eval,
    Sampled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OmegaKind {
    Iid,
    Orthogonal,
}

/// The official `num_samples` of RA (`--ra-mean`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaMean {
    /// `0`: the key average.
    KeyAverage,
    /// `-1`: the attention-weighted key mean.
    AttentionWeighted,
    /// `1`: one key per query, drawn or given by `--key-indices`.
    Key,
}

/// What a run computes.
#[derive(Debug)]
pub enum Task {
    /// `--method`: one estimator on `q`, `k`, `v`.
    Estimator(Method),
    /// `--layer`: a whole official module on `x`.
    Layer(LayerArgs),
}

/// `--layer WEIGHTS_DIR` and where its configuration comes from.
#[derive(Debug)]
pub struct LayerArgs {
    /// The `state_dict` folder of `<key>.npy` files.
    pub weights: PathBuf,
    pub config: ConfigSource,
}

/// The configuration of `--layer`: a `{"module": .., "config": {kwargs}}` file or the flags.
#[derive(Debug)]
pub enum ConfigSource {
    /// `WEIGHTS_DIR/config.json` (no `--config`, `--module` or `--kwargs`).
    Folder,
    /// `--config FILE`.
    File(PathBuf),
    /// `--module NAME --kwargs JSON`.
    Inline { module: String, kwargs: String },
}

/// `--compare`: the reference the output is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// `exact`: exact attention on the same `q`, `k`, `v` (estimators).
    Exact,
    /// `softmax-layer`: the same weights as `MultiheadAttention` (layers).
    SoftmaxLayer,
    /// `f32`: the same estimator in `f32`, on the `f32` inputs and on the dequantised ones
    /// (`--int8`).
    F32,
}

/// The parsed command line.
#[derive(Debug)]
pub struct Options {
    pub task: Task,
    /// `q.npy k.npy v.npy`, or `x.npy` with `--layer`.
    pub inputs: Vec<PathBuf>,
    pub output: Option<PathBuf>,
    pub mode: Option<Mode>,
    pub landmarks: Option<usize>,
    pub landmarks_q: Option<PathBuf>,
    pub landmarks_k: Option<PathBuf>,
    pub weighting: lara::Weighting,
    pub mis_given: bool,
    pub alpha_given: bool,
    pub eps: Option<PathBuf>,
    pub ra_mean: RaMean,
    pub key_indices: Option<PathBuf>,
    pub features: Option<usize>,
    pub omega_kind: OmegaKind,
    pub omega: Option<PathBuf>,
    pub causal: bool,
    pub gates: Option<PathBuf>,
    pub seed: u64,
    pub draws: usize,
    /// `--compare`: the references, in the order given, each once.
    pub compare: Vec<Compare>,
    pub backend: Option<String>,
    pub mask: Option<PathBuf>,
    pub scaled_noise: bool,
    pub proposals: Option<lara::Proposals>,
    pub rfa_log_space: bool,
    /// `--int8`: the int8 kernel on the inputs quantised per tensor.
    pub int8: bool,
    /// `--int8-out`: its `i8` output (written dequantised).
    pub int8_out: bool,
}

impl Options {
    /// Sampled mode (`W = mu + eps`): `--mode sampled` or a given `--eps`.
    pub fn sampled(&self) -> bool {
        self.mode == Some(Mode::Sampled) || self.eps.is_some()
    }

    /// Whether a run draws random numbers (so that `--draws` can average several).
    pub fn has_randomness(&self) -> bool {
        match self.task {
            Task::Estimator(Method::Exact) => false,
            Task::Estimator(Method::Lara | Method::Ra) | Task::Layer(_) => {
                self.sampled() && self.eps.is_none()
            }
            Task::Estimator(Method::Rfa | Method::RfaTrig) => self.omega.is_none(),
        }
    }
}

pub enum Parsed {
    Run(Box<Options>),
    Help,
}

/// One value of a closed set of words, or an error listing them.
fn choose<T: Copy>(option: &str, text: &str, choices: &[(&str, T)], expected: &str) -> Res<T> {
    choices
        .iter()
        .find(|(name, _)| *name == text)
        .map(|&(_, value)| value)
        .ok_or_else(|| format!("unknown {option} {text:?}: expected {expected}"))
}

pub fn parse_args(args: &[String]) -> Res<Parsed> {
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
    let mut ra_mean = RaMean::KeyAverage;
    let mut key_indices = None;
    let mut features = None;
    let mut omega_kind = OmegaKind::Orthogonal;
    let mut omega = None;
    let mut causal = false;
    let mut gates = None;
    let mut seed = 0u64;
    let mut draws = 1usize;
    let mut compare = Vec::new();
    let mut backend = None;
    let mut mask = None;
    let mut scaled_noise = false;
    let mut proposals = None;
    let mut rfa_log_space = false;
    let mut int8 = false;
    let mut int8_out = false;
    let mut layer = None;
    let mut config_file = None;
    let mut module = None;
    let mut kwargs = None;

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
        let file = |text: String| Some(PathBuf::from(text));
        match name {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--method" => {
                let methods = [
                    ("exact", Method::Exact),
                    ("lara", Method::Lara),
                    ("ra", Method::Ra),
                    ("rfa", Method::Rfa),
                    ("rfa-trig", Method::RfaTrig),
                ];
                let text = value("exact, lara, ra, rfa or rfa-trig")?;
                method = Some(choose(
                    "method",
                    &text,
                    &methods,
                    "exact, lara, ra, rfa or rfa-trig",
                )?);
            }
            "-o" | "--output" => output = file(value("a file name")?),
            "--mode" => {
                let modes = [("eval", Mode::Eval), ("sampled", Mode::Sampled)];
                let text = value("eval or sampled")?;
                mode = Some(choose("--mode", &text, &modes, "eval or sampled")?);
            }
            "--landmarks" => landmarks = Some(parse_positive(name, &value("a count")?)?),
            "--landmarks-q" => landmarks_q = file(value("a file name")?),
            "--landmarks-k" => landmarks_k = file(value("a file name")?),
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
            "--eps" => eps = file(value("a file name")?),
            "--ra-mean" => {
                let means = [
                    ("0", RaMean::KeyAverage),
                    ("-1", RaMean::AttentionWeighted),
                    ("1", RaMean::Key),
                ];
                let text = value("0, -1 or 1")?;
                ra_mean = choose("--ra-mean", &text, &means, "0, -1 or 1")
                    .map_err(|e| format!("{e} (the official num_samples)"))?;
            }
            "--key-indices" => key_indices = file(value("a file name")?),
            "--features" => features = Some(parse_positive(name, &value("a count")?)?),
            "--omega-kind" => {
                let kinds = [
                    ("iid", OmegaKind::Iid),
                    ("orthogonal", OmegaKind::Orthogonal),
                ];
                let text = value("iid or orthogonal")?;
                omega_kind = choose("--omega-kind", &text, &kinds, "iid or orthogonal")?;
            }
            "--omega" => omega = file(value("a file name")?),
            "--causal" => causal = true,
            "--gates" => gates = file(value("a file name")?),
            "--seed" => {
                let text = value("an unsigned integer")?;
                seed = text
                    .parse()
                    .map_err(|_| format!("--seed: {text:?} is not an unsigned 64-bit integer"))?;
            }
            "--draws" => draws = parse_positive(name, &value("a count")?)?,
            "--compare" => {
                let references = [
                    ("exact", Compare::Exact),
                    ("f32", Compare::F32),
                    ("softmax-layer", Compare::SoftmaxLayer),
                ];
                let text = value("exact, f32 or softmax-layer")?;
                for part in text.split(',') {
                    let reference = choose(
                        "--compare",
                        part,
                        &references,
                        "exact (estimators), f32 (--int8) or softmax-layer (--layer), or a \
                         comma-separated list",
                    )?;
                    if !compare.contains(&reference) {
                        compare.push(reference);
                    }
                }
            }
            "--backend" => backend = Some(value("a backend name")?),
            "--mask" => mask = file(value("a file name")?),
            "--scaled-noise" => scaled_noise = true,
            "--proposals" => {
                let kinds = [
                    ("single", lara::Proposals::Single),
                    ("antithetic", lara::Proposals::Antithetic),
                    ("two", lara::Proposals::TwoPerLandmark),
                    ("two-per-landmark", lara::Proposals::TwoPerLandmark),
                ];
                let text = value("single, antithetic or two")?;
                proposals = Some(choose(
                    "--proposals",
                    &text,
                    &kinds,
                    "single, antithetic or two",
                )?);
            }
            "--rfa-log-space" => rfa_log_space = true,
            "--int8" => int8 = true,
            "--int8-out" => int8_out = true,
            "--layer" => layer = file(value("a weights folder")?),
            "--config" => config_file = file(value("a config.json file")?),
            "--module" => module = Some(value("an official module name")?),
            "--kwargs" => kwargs = Some(value("a JSON object")?),
            _ if arg.starts_with('-') && arg.len() > 1 => {
                return Err(format!("unknown option {arg:?}"));
            }
            _ => inputs.push(PathBuf::from(arg)),
        }
    }

    let layer_config = match (config_file, module, kwargs) {
        (None, None, None) => None,
        (Some(file), None, None) => Some(ConfigSource::File(file)),
        (None, Some(module), Some(kwargs)) => Some(ConfigSource::Inline { module, kwargs }),
        (Some(_), _, _) => {
            return Err(
                "--config FILE and --module / --kwargs are two ways to give the \
                        configuration: use one"
                    .into(),
            );
        }
        (None, _, _) => return Err("--module and --kwargs must be given together".into()),
    };
    let task = match (method, layer) {
        (Some(_), Some(_)) => {
            return Err(
                "--method and --layer are two modes: an estimator on q.npy k.npy \
                        v.npy, or a whole layer (its module set by its configuration) on x.npy"
                    .into(),
            );
        }
        (None, None) => {
            return Err(
                "--method (exact, lara, ra, rfa or rfa-trig) or --layer WEIGHTS_DIR is required"
                    .into(),
            );
        }
        (Some(method), None) => {
            if layer_config.is_some() {
                return Err("--config / --module / --kwargs configure --layer".into());
            }
            if inputs.len() != 3 {
                return Err(format!(
                    "expected three input files q.npy k.npy v.npy, got {}",
                    inputs.len()
                ));
            }
            Task::Estimator(method)
        }
        (None, Some(weights)) => {
            if inputs.len() != 1 {
                return Err(format!(
                    "--layer takes one input file x.npy ([n, dim] or [H, W, dim]), got {}",
                    inputs.len()
                ));
            }
            Task::Layer(LayerArgs {
                weights,
                config: layer_config.unwrap_or(ConfigSource::Folder),
            })
        }
    };
    if output.is_none() && compare.is_empty() {
        return Err("-o out.npy is required (optional only with --compare)".into());
    }
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
        task,
        inputs,
        output,
        mode,
        landmarks,
        landmarks_q,
        landmarks_k,
        weighting,
        mis_given: mis.is_some(),
        alpha_given: alpha.is_some(),
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
        int8,
        int8_out,
    })))
}

fn parse_positive(name: &str, text: &str) -> Res<usize> {
    match text.parse::<usize>() {
        Ok(0) => Err(format!("{name} must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{name}: {text:?} is not a positive integer")),
    }
}
