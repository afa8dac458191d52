//! `--layer WEIGHTS_DIR`: a whole official module on `x.npy` through [`lara_attn::layer`].
//!
//! The configuration comes from `WEIGHTS_DIR/config.json`, `--config FILE` or `--module NAME
//! --kwargs JSON`; the `state_dict` folder is read and checked against it by the tests'
//! readers ([`layers`](crate::layers)); the mask and the noise go through this tool's readers
//! and checks. `--compare softmax-layer` runs the same `qkv` / `proj` weights as
//! `MultiheadAttention` on the same tokens and mask.

use crate::Res;
use crate::args::{Compare, ConfigSource, LayerArgs, Options};
use crate::compare::print_relative_error;
use crate::files::{KeyMask, read_mask, read_npy, zeros};
use crate::layers::{self, WeightFolder};
use crate::output::write_labelled;
use crate::run::averaged;
use lara_attn::Sampling;
use lara_attn::layer::{Attention, Config, Layer, Layout, Tokens};
use std::path::Path;

/// Runs the layer of `args` on the input `x`, compares it (`--compare softmax-layer`) and
/// writes its output: nothing is written unless everything before succeeded.
pub fn execute(o: &Options, args: &LayerArgs) -> Res<()> {
    let config = configuration(args)?;
    let module = module_name(&config.attention);
    let dir = args.weights.display();
    let folder = WeightFolder::read(&args.weights).map_err(|e| format!("--layer {e}"))?;
    let unread: Vec<&str> = folder
        .tensors
        .keys()
        .map(String::as_str)
        .filter(|key| config.weight_specs().all(|spec| spec.key != *key))
        .collect();
    if !unread.is_empty() {
        eprintln!(
            "note: --layer {dir}: {module} with this configuration does not read {}",
            unread.join(", ")
        );
    }
    let layer = load_layer(&folder, config, &args.weights)?;

    let x_path = &o.inputs[0];
    let x = read_npy(x_path, "<f4", f32::from_le_bytes)?;
    let layout = match x.shape[..] {
        [n, dim] if dim == config.dim => Layout::Sequence(n),
        [height, width, dim] if dim == config.dim => Layout::Grid { height, width },
        _ => {
            return Err(format!(
                "{}: shape {:?}: expected [n, dim] or [H, W, dim] with dim = {} (the \
                 configuration's dim)",
                x_path.display(),
                x.shape,
                config.dim
            ));
        }
    };
    let n = layout.tokens();
    let mask = match &o.mask {
        None => None,
        Some(path) => match read_mask(path, 1, n)? {
            KeyMask::Shared(mask) | KeyMask::PerHead(mask) => Some(mask),
        },
    };
    let noise_len = Layer::noise_len(&config, layout);
    if o.sampled() && noise_len == 0 {
        return Err(format!(
            "--mode sampled / --eps: {module} has no sampled mode (LinearRA and \
             RandomizedAttention have)"
        ));
    }
    let eps = match &o.eps {
        None => None,
        Some(path) => {
            let eps = read_npy(path, "<f4", f32::from_le_bytes)?;
            let (heads, d) = (config.heads, config.head_dim());
            let expected = [heads, noise_len / (heads * d), d];
            if eps.shape != expected {
                return Err(format!(
                    "--eps {}: shape {:?}, expected [h, R, d] = {expected:?} for {module} on \
                     these {n} tokens",
                    path.display(),
                    eps.shape
                ));
            }
            Some(eps.data)
        }
    };

    let tokens = Tokens {
        x: &x.data,
        layout,
        key_mask: mask.as_deref(),
    };
    let mut scratch = zeros(Layer::scratch_len(&config, layout))?;
    let out = averaged(o, x.data.len(), |rng, out| {
        let sampling = match &eps {
            Some(eps) => Sampling::Noise(eps),
            None if o.sampled() => Sampling::Draw(rng),
            None => Sampling::Eval,
        };
        layer
            .forward(&tokens, sampling, out, &mut scratch)
            .map_err(|e| format!("{module}: {e}"))
    })?;

    if o.compare.contains(&Compare::SoftmaxLayer) {
        let softmax = Config {
            attention: Attention::Softmax,
            ..config
        };
        let reference_layer = load_layer(&folder, softmax, &args.weights)?;
        let mut reference = zeros(out.len())?;
        let mut scratch = zeros(Layer::scratch_len(&softmax, layout))?;
        reference_layer
            .forward(&tokens, Sampling::Eval, &mut reference, &mut scratch)
            .map_err(|e| format!("MultiheadAttention (--compare softmax-layer): {e}"))?;
        let label = if mask.is_some() {
            "masked softmax layer"
        } else {
            "softmax layer"
        };
        print_relative_error(label, &out, &reference);
    }
    if let Some(path) = &o.output {
        write_labelled(module, path, &x.shape, &out)?;
    }
    Ok(())
}

/// The configuration of `--config FILE`, `--module NAME --kwargs JSON` or
/// `WEIGHTS_DIR/config.json`.
fn configuration(args: &LayerArgs) -> Res<Config> {
    match &args.config {
        ConfigSource::Inline { module, kwargs } => {
            let kwargs: serde_json::Value =
                serde_json::from_str(kwargs).map_err(|e| format!("--kwargs: not JSON: {e}"))?;
            if !kwargs.is_object() {
                return Err(format!(
                    "--kwargs {kwargs}: expected a JSON object of the constructor's keyword \
                     arguments, e.g. '{{\"dim\": 32, \"num_heads\": 2}}'"
                ));
            }
            layers::official_config(module, &kwargs).map_err(|e| format!("--module/--kwargs: {e}"))
        }
        ConfigSource::File(path) => {
            layers::read_config_file(path).map_err(|e| format!("--config {e}"))
        }
        ConfigSource::Folder => {
            let path = args.weights.join("config.json");
            if !path.is_file() {
                return Err(format!(
                    "--layer: no {}: give the configuration with --config FILE or --module NAME \
                     --kwargs JSON",
                    path.display()
                ));
            }
            layers::read_config_file(&path)
        }
    }
}

/// The layer of `config` with its tensors from `folder`: missing, mis-shaped or non-finite
/// tensors and configurations the official module cannot take are messages naming them.
fn load_layer<'w>(folder: &'w WeightFolder, config: Config, dir: &Path) -> Res<Layer<'w>> {
    let context = |e: String| format!("--layer {}: {e}", dir.display());
    let weights = folder.weights(&config).map_err(context)?;
    Layer::new(config, weights).map_err(|e| context(e.to_string()))
}

/// The official module an [`Attention`] is.
fn module_name(attention: &Attention) -> &'static str {
    match attention {
        Attention::Softmax => "MultiheadAttention",
        Attention::Lara(_) => "LinearRA",
        Attention::Randomized(_) => "RandomizedAttention",
        Attention::Kernelized { .. } => "KernelizedAttention",
    }
}
