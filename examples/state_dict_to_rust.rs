//! A layer's `state_dict` as Rust source for a `no_std` firmware.
//!
//! ```sh
//! cargo run --release --example state_dict_to_rust -- WEIGHTS_DIR [--config CONFIG_JSON] [-o OUT.rs]
//! cargo run --release --example state_dict_to_rust -- --synthetic DIR
//! ```
//!
//! `WEIGHTS_DIR` holds one float32 `<key>.npy` per tensor of the module's `state_dict`
//! (`qkv.weight.npy`, `proj.bias.npy`, ...) and `CONFIG_JSON` (by default
//! `WEIGHTS_DIR/config.json`) is `{"module": "LinearRA", "config": {constructor kwargs}}`. The
//! layer is checked on the host first (`Layer::new`: every tensor present, of its configured
//! shape, finite). The output (standard output without `-o`) is plain items, for `include!` or a
//! `#[path]` module:
//!
//! - `pub const CONFIG: lara_attn::layer::Config`, every field spelled out;
//! - one `pub static` array per tensor the configuration reads (`QKV_WEIGHT: [f32; 3·dim·dim]`,
//!   ...), in row-major order, each value printed in its shortest form that reads back to the
//!   same `f32` bits;
//! - `pub static WEIGHTS: lara_attn::layer::Weights<'static>` borrowing them.
//!
//! The firmware then runs `Layer::new(CONFIG, WEIGHTS)?` once and `forward` on its tokens; the
//! statics are read-only, so they stay in flash. Tensors of the folder that the configuration
//! does not read are left out (and named in the header). Any error is one line on stderr and
//! exit status 2.
//!
//! `--synthetic DIR` writes the synthetic layer of the firmware example (`LinearRA`, dim 64, 4
//! heads, `C = 8`, `no-param-pool`, `mis-opt`; weights `N(0, 1/dim)`, biases `N(0, 0.02²)`, drawn
//! from this crate's sampler with a fixed seed, so the same bits on every machine):
//! `tests/data/firmware_layer/` was written by it.

#[path = "../tests/support/layers.rs"]
mod layers;

use lara_attn::layer::{Attention, Config, Generator, LaraConfig, Layer, Weights};
use lara_attn::random::{default_rng, fill_standard_normal};
use layers::{WeightFolder, read_config_file};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str =
    "usage: state_dict_to_rust WEIGHTS_DIR [--config CONFIG_JSON] [-o OUT.rs] | --synthetic DIR";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let (mut dir, mut config, mut out, mut synthetic) = (None, None, None, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value; {USAGE}"));
        match arg.as_str() {
            "--config" => config = Some(PathBuf::from(value()?)),
            "-o" => out = Some(PathBuf::from(value()?)),
            "--synthetic" => synthetic = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            a if a.starts_with('-') => return Err(format!("unknown option {a}; {USAGE}")),
            _ if dir.is_some() => return Err(format!("more than one WEIGHTS_DIR; {USAGE}")),
            _ => dir = Some(PathBuf::from(arg)),
        }
    }
    if let Some(target) = synthetic {
        return write_synthetic(&target);
    }
    let dir = dir.ok_or(USAGE)?;
    let text = generate(&dir, config.as_deref())?;
    match out {
        Some(path) => std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// The Rust source for the layer of `dir` with the configuration `config` (default
/// `dir/config.json`), after checking it with `Layer::new`.
fn generate(dir: &Path, config_path: Option<&Path>) -> Result<String, String> {
    let dir = normalised(dir);
    let config_path = config_path.map_or(dir.join("config.json"), normalised);
    let config = read_config_file(&config_path)?;
    let folder = WeightFolder::read(&dir)?;
    let in_dir = |e: String| format!("{}: {e}", dir.display());
    let weights = folder.weights(&config).map_err(in_dir)?;
    Layer::new(config, weights).map_err(|e| in_dir(e.to_string()))?;
    let json = std::fs::read_to_string(&config_path).map_err(|e| e.to_string())?;
    let json: serde_json::Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;

    let specs: Vec<_> = config.weight_specs().collect();
    let unused: Vec<&str> = (folder.tensors.keys())
        .filter(|key| specs.iter().all(|s| s.key != key.as_str()))
        .map(String::as_str)
        .collect();
    let mut rs = String::new();
    let w = &mut rs;
    let config_arg = if config_path == dir.join("config.json") {
        String::new()
    } else {
        format!(" --config {}", config_path.display())
    };
    // (Writing to a String cannot fail.)
    let _ = writeln!(
        w,
        "// A `{module}` layer's state_dict as Rust items, for `include!` or a `#[path]` module of a\n\
         // no_std firmware: `CONFIG`, one static per tensor, `WEIGHTS`. Run\n\
         // `lara_attn::layer::Layer::new(CONFIG, WEIGHTS)` once at start-up (checked on the host).\n\
         //\n\
         // Generated by lara-attn's examples/state_dict_to_rust.rs from\n\
         //   the folder {dir} (tensors it does not use: {unused})\n\
         //   the configuration {config_file}: {module} {kwargs}\n\
         // Do not edit; regenerate with\n\
         //   cargo run --release --example state_dict_to_rust -- {dir}{config_arg} -o <this file>\n",
        module = json["module"].as_str().unwrap_or("?"),
        dir = dir.display(),
        config_file = config_path.display(),
        kwargs = json["config"],
        unused = if unused.is_empty() {
            "none".into()
        } else {
            unused.join(", ")
        },
    );
    let _ = writeln!(
        w,
        "#[rustfmt::skip]\npub const CONFIG: lara_attn::layer::Config = {};\n",
        config_expr(&config)
    );
    for spec in &specs {
        let tensor = &folder.tensors[spec.key];
        let _ = writeln!(
            w,
            "/// `{}` {:?}\n#[rustfmt::skip]\npub static {}: [f32; {}] = [",
            spec.key,
            &spec.shape[..spec.rank],
            const_name(spec.key),
            tensor.data.len()
        );
        for line in tensor.data.chunks(8) {
            let values: Vec<String> = line.iter().map(|v| format!("{v:?},")).collect();
            let _ = writeln!(w, "    {}", values.join(" "));
        }
        let _ = writeln!(w, "];\n");
    }
    let _ = write!(
        w,
        "#[rustfmt::skip]\npub static WEIGHTS: lara_attn::layer::Weights<'static> = {};\n",
        weights_expr(&weights, &folder)
    );
    Ok(rs)
}

/// `path` without `.` components or a trailing `/`, so that `./dir/` and `dir` give the same
/// header.
fn normalised(path: &Path) -> PathBuf {
    let path: PathBuf = (path.components())
        .filter(|c| *c != Component::CurDir)
        .collect();
    if path.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        path
    }
}

/// `qkv.weight` → `QKV_WEIGHT`, `q_bar_gen.2.bias` → `Q_BAR_GEN_2_BIAS`.
fn const_name(key: &str) -> String {
    key.replace('.', "_").to_uppercase()
}

/// `config` as a Rust expression, every field spelled out.
fn config_expr(config: &Config) -> String {
    let Config {
        dim,
        heads,
        qkv_bias,
        attention,
    } = *config;
    let attention = match attention {
        Attention::Softmax => "lara_attn::layer::Attention::Softmax".to_string(),
        Attention::Randomized(mean) => {
            format!(
                "lara_attn::layer::Attention::Randomized(lara_attn::layer::RandomizedMean::{mean:?})"
            )
        }
        Attention::Kernelized { map, features } => format!(
            "lara_attn::layer::Attention::Kernelized {{ map: lara_attn::rfa::FeatureMap::{map:?}, \
             features: {features} }}"
        ),
        Attention::Lara(LaraConfig {
            landmarks,
            generator,
            pool_module,
            mixing,
            weighting,
            proposals,
            noise_scale,
        }) => format!(
            "lara_attn::layer::Attention::Lara(lara_attn::layer::LaraConfig {{\n        \
             landmarks: {landmarks},\n        \
             generator: lara_attn::layer::ProposalGen::{generator:?},\n        \
             pool_module: lara_attn::layer::PoolModule::{pool_module:?},\n        \
             mixing: lara_attn::layer::Mixing::{mixing:?},\n        \
             weighting: lara_attn::lara::Weighting::{weighting:?},\n        \
             proposals: lara_attn::lara::Proposals::{proposals:?},\n        \
             noise_scale: lara_attn::random::NoiseScale::{noise_scale:?},\n    }})"
        ),
    };
    format!(
        "lara_attn::layer::Config {{\n    dim: {dim},\n    heads: {heads},\n    \
         qkv_bias: {qkv_bias},\n    attention: {attention},\n}}"
    )
}

/// `weights` as a Rust expression over the statics: each slice is named after the tensor of
/// `folder` it borrows.
fn weights_expr(weights: &Weights<'_>, folder: &WeightFolder) -> String {
    let name = |slice: &[f32]| {
        let key = folder
            .tensors
            .iter()
            .find(|(_, t)| t.data.as_ptr() == slice.as_ptr());
        format!("&{}", key.map_or("?".into(), |(key, _)| const_name(key)))
    };
    let some =
        |slice: Option<&[f32]>| slice.map_or("None".into(), |s| format!("Some({})", name(s)));
    let generator = |g: Option<Generator<'_>>| match g {
        None => "None".to_string(),
        Some(Generator {
            linear_weight,
            linear_bias,
            norm_weight,
            norm_bias,
        }) => format!(
            "Some(lara_attn::layer::Generator {{\n        linear_weight: {},\n        \
             linear_bias: {},\n        norm_weight: {},\n        norm_bias: {},\n    }})",
            name(linear_weight),
            name(linear_bias),
            name(norm_weight),
            name(norm_bias)
        ),
    };
    let Weights {
        qkv_weight,
        qkv_bias,
        proj_weight,
        proj_bias,
        q_bar_gen,
        k_bar_gen,
        eval_proj,
    } = *weights;
    format!(
        "lara_attn::layer::Weights {{\n    qkv_weight: {},\n    qkv_bias: {},\n    \
         proj_weight: {},\n    proj_bias: {},\n    q_bar_gen: {},\n    k_bar_gen: {},\n    \
         eval_proj: {},\n}}",
        name(qkv_weight),
        some(qkv_bias),
        name(proj_weight),
        name(proj_bias),
        generator(q_bar_gen),
        generator(k_bar_gen),
        some(eval_proj)
    )
}

/// The seed of the synthetic layer's weights.
const SYNTHETIC_SEED: u64 = 64;

/// Writes the synthetic layer of the firmware example into `dir`: `config.json` and the four
/// tensors of a `LinearRA` with `no-param-pool` landmarks.
fn write_synthetic(dir: &Path) -> Result<(), String> {
    const DIM: usize = 64;
    let config = "{\n  \"module\": \"LinearRA\",\n  \"config\": {\n    \"dim\": 64,\n    \
                  \"num_heads\": 4,\n    \"num_landmarks\": 8,\n    \"proposal_gen\": \
                  \"no-param-pool\",\n    \"mis_type\": \"mis-opt\"\n  }\n}\n";
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("config.json");
    std::fs::write(&path, config).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rng = default_rng(SYNTHETIC_SEED);
    // weights N(0, 1/dim) (scale 1/8, exact), biases N(0, 0.02²)
    let tensors: [(&str, &[usize], f32); 4] = [
        ("qkv.weight", &[3 * DIM, DIM], 0.125),
        ("qkv.bias", &[3 * DIM], 0.02),
        ("proj.weight", &[DIM, DIM], 0.125),
        ("proj.bias", &[DIM], 0.02),
    ];
    for (key, shape, scale) in tensors {
        let mut data = vec![0.0f32; shape.iter().product()];
        fill_standard_normal(&mut rng, &mut data);
        data.iter_mut().for_each(|x| *x *= scale);
        write_npy(&dir.join(format!("{key}.npy")), shape, &data)?;
    }
    eprintln!("wrote {}: config.json and 4 tensors", dir.display());
    Ok(())
}

/// Writes `data` as an NPY v1.0 little-endian float32 C-order array of `shape`.
fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), String> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // magic, version and length (10 bytes) + header + '\n', padded to a multiple of 64
    header.push_str(&" ".repeat((64 - (11 + header.len()) % 64) % 64));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(data.iter().flat_map(|x| x.to_le_bytes()));
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}
