//! Whole layers on the host: the official modules' constructor arguments as a
//! [`Config`], and a `state_dict` folder of `<key>.npy` files as [`Weights`]. Shared by the
//! golden example, the `attend` tool and the weights-to-Rust generator.
#![allow(dead_code)]

#[path = "npy.rs"]
pub mod npy;

use lara_attn::lara::{Proposals, Weighting};
use lara_attn::layer::{
    Attention, Config, LaraConfig, Mixing, PoolModule, ProposalGen, RandomizedMean, Weights,
};
use lara_attn::rfa::FeatureMap;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The official module names this crate runs.
pub const MODULES: [&str; 4] = [
    "MultiheadAttention",
    "LinearRA",
    "RandomizedAttention",
    "KernelizedAttention",
];

/// The constructor arguments of each official module (beyond those of `MultiheadAttention`,
/// which every module takes). Dropout rates, `fp32` and LARA's unused `kernel_size` are
/// accepted and have no effect: inference runs in `f32` without dropout.
const KWARGS: [(&str, &[&str]); 4] = [
    (
        "MultiheadAttention",
        &[
            "dim",
            "num_heads",
            "qkv_bias",
            "fp32",
            "attn_drop",
            "proj_drop",
        ],
    ),
    (
        "LinearRA",
        &[
            "num_landmarks",
            "kernel_size",
            "proposal_gen",
            "use_antithetics",
            "use_multisample",
            "pool_module_type",
            "mis_type",
            "alpha_coeff",
        ],
    ),
    ("RandomizedAttention", &["num_samples"]),
    (
        "KernelizedAttention",
        &[
            "approx_attn_dim",
            "proj_method",
            "cos_weighting",
            "sample_scheme",
        ],
    ),
];

/// The [`Config`] of the official `module` built with the keyword arguments `kwargs` (a JSON
/// object: `dim`, `num_heads`, `qkv_bias`, and the module's own, with the official defaults
/// for those absent).
pub fn official_config(module: &str, kwargs: &Value) -> Result<Config, String> {
    if !MODULES.contains(&module) {
        return Err(format!("module {module:?}: one of {}", MODULES.join(", ")));
    }
    let known = KWARGS
        .iter()
        .filter(|(m, _)| *m == "MultiheadAttention" || *m == module)
        .flat_map(|(_, keys)| keys.iter());
    let known: Vec<&str> = known.copied().collect();
    if let Some(object) = kwargs.as_object() {
        if let Some(key) = object.keys().find(|key| !known.contains(&key.as_str())) {
            return Err(format!(
                "{module}: unknown argument {key:?} (known: {})",
                known.join(", ")
            ));
        }
    } else if !kwargs.is_null() {
        return Err(format!(
            "{module}: the arguments are not a JSON object: {kwargs}"
        ));
    }
    let uint = |key: &str, default: Option<u64>| -> Result<usize, String> {
        match kwargs.get(key) {
            Some(v) => v
                .as_u64()
                .map(|v| v as usize)
                .ok_or(format!("{key}: not a count: {v}")),
            None => default
                .map(|d| d as usize)
                .ok_or(format!("{module}: {key} is required")),
        }
    };
    let text = |key: &str, default: &'static str| -> Result<String, String> {
        match kwargs.get(key) {
            Some(v) => v
                .as_str()
                .map(str::to_owned)
                .ok_or(format!("{key}: not a string: {v}")),
            None => Ok(default.to_owned()),
        }
    };
    let flag = |key: &str, default: bool| -> Result<bool, String> {
        match kwargs.get(key) {
            Some(v) => v.as_bool().ok_or(format!("{key}: not a boolean: {v}")),
            None => Ok(default),
        }
    };
    let attention = match module {
        "MultiheadAttention" => Attention::Softmax,
        "LinearRA" => {
            let (generator, mixing) = proposal_gen(&text("proposal_gen", "pool")?)?;
            let pool_module = match text("pool_module_type", "light")?.as_str() {
                "light" => PoolModule::Light,
                "dense" => PoolModule::Dense,
                other => return Err(format!("pool_module_type {other:?}: light or dense")),
            };
            let alpha_coeff = match kwargs.get("alpha_coeff") {
                Some(v) => v
                    .as_f64()
                    .ok_or(format!("alpha_coeff: not a number: {v}"))?
                    as f32,
                None => 1.0,
            };
            let weighting = match text("mis_type", "mis-opt")?.as_str() {
                "mis-opt" => Weighting::Optimal { alpha_coeff },
                "mis-bh" => Weighting::BalanceHeuristic,
                "mis-biased" => Weighting::Biased,
                other => return Err(format!("mis_type {other:?}: mis-opt, mis-bh or mis-biased")),
            };
            let proposals = match (
                flag("use_multisample", false)?,
                flag("use_antithetics", false)?,
            ) {
                (true, _) => Proposals::TwoPerLandmark,
                (false, true) => Proposals::Antithetic,
                (false, false) => Proposals::Single,
            };
            Attention::Lara(LaraConfig {
                landmarks: uint("num_landmarks", Some(49))?,
                generator,
                pool_module,
                mixing,
                weighting,
                proposals,
                ..LaraConfig::official()
            })
        }
        "RandomizedAttention" => {
            let samples = match kwargs.get("num_samples") {
                Some(v) => v
                    .as_i64()
                    .ok_or(format!("num_samples: not an integer: {v}"))?,
                None => 1,
            };
            Attention::Randomized(match samples {
                0 => RandomizedMean::KeyAverage,
                -1 => RandomizedMean::AttentionWeighted,
                s if s > 0 => RandomizedMean::SampledKey,
                s => return Err(format!("num_samples {s}: 0, -1 or positive")),
            })
        }
        "KernelizedAttention" => {
            let map = match text("proj_method", "favorp")?.as_str() {
                "favorp" => FeatureMap::Positive,
                "fourier" => FeatureMap::Trigonometric,
                other => return Err(format!("proj_method {other:?}: favorp or fourier")),
            };
            if text("sample_scheme", "default")? != "default" || flag("cos_weighting", false)? {
                return Err(
                    "KernelizedAttention: only sample_scheme 'default' without cos_weighting"
                        .into(),
                );
            }
            Attention::Kernelized {
                map,
                features: uint("approx_attn_dim", Some(64))?,
            }
        }
        other => return Err(format!("module {other:?}: one of {}", MODULES.join(", "))),
    };
    let config = Config::new(uint("dim", None)?, uint("num_heads", None)?, attention);
    Ok(config.with_qkv_bias(flag("qkv_bias", true)?))
}

/// The official `proposal_gen` string: the generator and its mixing suffix.
pub fn proposal_gen(name: &str) -> Result<(ProposalGen, Mixing), String> {
    let (base, mixing) = if let Some(base) = name.strip_suffix("-vmixed") {
        (base, Mixing::VMixed)
    } else if let Some(base) = name.strip_suffix("-mixed") {
        (base, Mixing::Mixed)
    } else {
        (name, Mixing::None)
    };
    let generator = match base {
        "pool" => ProposalGen::Pool,
        "no-param-pool" => ProposalGen::NoParamPool,
        "adaptive-1d" => ProposalGen::Adaptive1d,
        _ => {
            return Err(format!(
                "proposal_gen {name:?}: pool, no-param-pool or adaptive-1d (pool and \
                 no-param-pool may end in -mixed or -vmixed)"
            ));
        }
    };
    Ok((generator, mixing))
}

/// A `state_dict` as a folder of `<key>.npy` files (float32), e.g. `weights/qkv.weight.npy`.
pub struct WeightFolder {
    pub tensors: BTreeMap<String, npy::Array<f32>>,
}

impl WeightFolder {
    /// Reads every `.npy` file of `dir`; the key is the file name without `.npy`.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut tensors = BTreeMap::new();
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
            let Some(key) = path
                .file_name()
                .and_then(|f| f.to_str()?.strip_suffix(".npy"))
            else {
                continue;
            };
            tensors.insert(key.to_owned(), npy::read_f32(&path)?);
        }
        Ok(WeightFolder { tensors })
    }

    /// The weights `config` needs, each checked against its configured shape (after the
    /// configuration itself).
    pub fn weights(&self, config: &Config) -> Result<Weights<'_>, String> {
        config.check().map_err(|e| e.to_string())?;
        for spec in config.weight_specs() {
            let Some(tensor) = self.tensors.get(spec.key) else {
                continue; // (from_state_dict names the missing key)
            };
            let expected = &spec.shape[..spec.rank];
            if tensor.shape != expected {
                return Err(format!(
                    "{}: shape {:?}, the configuration implies {expected:?}",
                    spec.key, tensor.shape
                ));
            }
        }
        Weights::from_state_dict(config, |key| self.tensors.get(key).map(|t| &t.data[..]))
            .map_err(|e| e.to_string())
    }
}

/// A layer folder's configuration file `config.json`: `{"module": ..., "config": {kwargs}}`,
/// as `tools/export_state_dict.py` writes it (the format of a layer manifest case).
pub fn read_config_file(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let module = json["module"]
        .as_str()
        .ok_or(format!("{}: no \"module\"", path.display()))?;
    official_config(module, &json["config"]).map_err(|e| format!("{}: {e}", path.display()))
}
