//! Runs every output listed in a golden manifest (the format of
//! `tests/data/golden/manifest.json`) through the crate and measures the error.
//! Shared by `examples/golden.rs` and `tests/golden.rs`.
#![allow(dead_code)]

#[path = "layers.rs"]
pub mod layers;
pub use layers::npy;

use lara_attn::{Qkv, Sampling, Shape, exact, lara, ra, rfa};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Pass criterion of the estimator manifests: `max|ours − golden| <= TOLERANCE · max|golden|`.
pub const TOLERANCE: f64 = 1e-4;

/// Pass criterion of the layer manifests: `max|ours − golden| <= max(LAYER_TOLERANCE ·
/// max|golden|, 2 · f32_vs_f64_max_abs)` (how far the official module in float32 is from its
/// float64 run, as the manifest records it).
pub const LAYER_TOLERANCE: f64 = 1e-5;

/// The error of one output against its golden file.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub max_abs: f64,
    pub max_golden: f64,
    /// The largest `max_abs` that passes.
    pub tolerance: f64,
}

impl Measured {
    /// `max|ours − golden| / max|golden|`.
    pub fn relative(&self) -> f64 {
        self.max_abs / self.max_golden.max(f64::MIN_POSITIVE)
    }
    pub fn passed(&self) -> bool {
        self.max_abs <= self.tolerance
    }
}

/// One output of one case: its method and its measured error, or why it could not be run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub case: String,
    pub name: String,
    pub method: String,
    pub result: Result<Measured, String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        matches!(&self.result, Ok(m) if m.passed())
    }
}

/// The inputs of one case.
pub struct Case {
    pub id: String,
    pub dir: PathBuf,
    pub heads: usize,
    pub n: usize,
    pub d: usize,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
}

impl Case {
    /// One head's shape.
    pub fn shape(&self) -> Shape {
        Shape::self_attention(self.n, self.d)
    }
    /// The inputs, all heads.
    pub fn qkv(&self) -> Qkv<'_> {
        Qkv {
            shape: self.shape().with_heads(self.heads),
            q: &self.q,
            k: &self.k,
            v: &self.v,
            key_mask: None,
        }
    }
    pub fn f32_file(&self, name: &str) -> Result<Vec<f32>, String> {
        Ok(npy::read_f32(&self.dir.join(name))?.data)
    }
}

/// Reads a manifest of either kind (estimators on `q`, `k`, `v`, or whole layers) and runs
/// every output of every case.
pub fn run_any_manifest(manifest_path: &Path) -> Result<Vec<Outcome>, String> {
    let manifest = read_manifest(manifest_path)?;
    if manifest["kind"]
        .as_str()
        .is_some_and(|kind| kind.ends_with("layers"))
    {
        run_layer_manifest(manifest_path)
    } else {
        run_manifest(manifest_path)
    }
}

fn read_manifest(manifest_path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(manifest_path)
        .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let manifest: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    if manifest["format_version"] != 1 {
        return Err(format!(
            "unsupported format_version {}",
            manifest["format_version"]
        ));
    }
    Ok(manifest)
}

/// Reads the manifest and runs every output of every case.
pub fn run_manifest(manifest_path: &Path) -> Result<Vec<Outcome>, String> {
    let manifest = read_manifest(manifest_path)?;
    let root = manifest_path.parent().unwrap_or(Path::new("."));
    let cases = manifest["cases"]
        .as_array()
        .ok_or("manifest has no cases array")?;
    let mut outcomes = Vec::new();
    for case_json in cases {
        let id = case_json["id"].as_str().unwrap_or("?").to_string();
        let outputs = case_json["outputs"].as_array().cloned().unwrap_or_default();
        match load_case(root, case_json) {
            Ok(case) => {
                for output in &outputs {
                    outcomes.push(run_output(&case, output));
                }
            }
            Err(e) => {
                for output in &outputs {
                    outcomes.push(Outcome {
                        case: id.clone(),
                        name: output["name"].as_str().unwrap_or("?").to_string(),
                        method: output["method"].as_str().unwrap_or("?").to_string(),
                        result: Err(format!("case inputs: {e}")),
                    });
                }
                if outputs.is_empty() {
                    return Err(format!("case {id}: {e}"));
                }
            }
        }
    }
    Ok(outcomes)
}

pub fn load_case(root: &Path, case: &Value) -> Result<Case, String> {
    let id = case["id"].as_str().ok_or("case without id")?.to_string();
    let dir = root.join(case["dir"].as_str().ok_or("case without dir")?);
    let inputs = &case["inputs"];
    let file = |key: &str| -> Result<npy::Array<f32>, String> {
        npy::read_f32(&dir.join(inputs[key].as_str().ok_or(format!("no input {key}"))?))
    };
    let (q, k, v) = (file("q")?, file("k")?, file("v")?);
    let (heads, n, d) = match q.shape.as_slice() {
        [n, d] => (1, *n, *d),
        [h, n, d] => (*h, *n, *d),
        other => {
            return Err(format!(
                "q has shape {other:?}, expected [n, d] or [h, n, d]"
            ));
        }
    };
    if k.shape != q.shape || v.shape != q.shape {
        return Err(format!(
            "q {:?}, k {:?}, v {:?} differ",
            q.shape, k.shape, v.shape
        ));
    }
    Ok(Case {
        id,
        dir,
        heads,
        n,
        d,
        q: q.data,
        k: k.data,
        v: v.data,
    })
}

fn run_output(case: &Case, output: &Value) -> Outcome {
    let name = output["name"].as_str().unwrap_or("?").to_string();
    let method = output["method"].as_str().unwrap_or("?").to_string();
    let result = compute(case, &method, &output["params"]).and_then(|ours| {
        let golden = case.f32_file(output["file"].as_str().ok_or("output without file")?)?;
        compare(&ours, &golden)
    });
    Outcome {
        case: case.id.clone(),
        name,
        method,
        result,
    }
}

/// The error of `ours` against `golden`.
pub fn compare(ours: &[f32], golden: &[f32]) -> Result<Measured, String> {
    if ours.len() != golden.len() {
        return Err(format!(
            "{} values computed, golden has {}",
            ours.len(),
            golden.len()
        ));
    }
    let mut m = Measured {
        max_abs: 0.0,
        max_golden: 0.0,
        tolerance: 0.0,
    };
    for (&a, &b) in ours.iter().zip(golden) {
        let err = (a as f64 - b as f64).abs();
        // A NaN on our side must fail, not vanish in max().
        m.max_abs = if err.is_nan() {
            f64::INFINITY
        } else {
            m.max_abs.max(err)
        };
        m.max_golden = m.max_golden.max((b as f64).abs());
    }
    m.tolerance = TOLERANCE * m.max_golden;
    Ok(m)
}

/// Runs one output's method through the crate (all heads of the case in one call).
pub fn compute(case: &Case, method: &str, params: &Value) -> Result<Vec<f32>, String> {
    let shape = case.shape();
    let x = case.qkv();
    let mut out = vec![0.0f32; case.q.len()];
    if let Some(scale) = params.get("scale").and_then(Value::as_f64) {
        let ours = 1.0 / (case.d as f64).sqrt();
        if (scale - ours).abs() > 1e-12 * ours {
            return Err(format!("scale {scale} is not d^-1/2 = {ours}"));
        }
    }
    let given = |key: &str| -> Result<Option<Vec<f32>>, String> {
        match params.get(key).and_then(Value::as_str) {
            Some(file) => case.f32_file(file).map(Some),
            None => Ok(None),
        }
    };
    let train = match params.get("mode").and_then(Value::as_str) {
        None | Some("eval") => false,
        Some("train") => true,
        Some(other) => return Err(format!("unknown mode {other}")),
    };
    let noise = given("eps")?;
    if train && noise.is_none() {
        return Err("train mode without an eps file".into());
    }
    let sampling = || match &noise {
        Some(eps) => Sampling::Noise(eps),
        None => Sampling::Eval,
    };
    let api = |e: lara_attn::Error| format!("kernel error: {e}");
    match method {
        "softmax" => {
            let mut scratch = vec![0.0; exact::scratch_len(shape)];
            exact::attention(&x, &mut out, &mut scratch).map_err(api)?;
        }
        "lara" => {
            let c = params["C"].as_u64().ok_or("lara without C")? as usize;
            let weighting = match params["mis_type"].as_str() {
                Some("mis-opt") => lara::Weighting::Optimal {
                    alpha_coeff: params["alpha_coeff"]
                        .as_f64()
                        .ok_or("mis-opt without alpha_coeff")?
                        as f32,
                },
                Some("mis-bh") => lara::Weighting::BalanceHeuristic,
                Some("mis-biased") => lara::Weighting::Biased,
                other => return Err(format!("unknown mis_type {other:?}")),
            };
            if let Some(c_eff) = params.get("C_eff").and_then(Value::as_u64)
                && c_eff as usize != lara::effective_landmarks(shape, c)
            {
                return Err(format!("C_eff {c_eff} disagrees with the landmark rule"));
            }
            let lara_params = lara::Params::segment_means(c, weighting);
            let mut scratch = vec![0.0; lara::scratch_len(shape, c, lara_params.proposals)];
            lara::attention(&x, &lara_params, sampling(), &mut out, &mut scratch).map_err(api)?;
        }
        "ra" => {
            let indices: Option<Vec<u32>> = match params.get("k_index").and_then(Value::as_str) {
                Some(file) => Some(
                    npy::read_i32(&case.dir.join(file))?
                        .data
                        .iter()
                        .map(|&j| u32::try_from(j).map_err(|_| format!("negative key index {j}")))
                        .collect::<Result<_, _>>()?,
                ),
                None => None,
            };
            let mean = match (params["num_samples"].as_i64(), &indices) {
                (Some(0), None) => ra::Mean::KeyAverage,
                (Some(-1), None) => ra::Mean::AttentionWeighted,
                (Some(1), Some(indices)) => ra::Mean::GivenKeys(indices),
                (ns, _) => {
                    return Err(format!(
                        "unsupported num_samples {ns:?} / k_index combination"
                    ));
                }
            };
            let mut scratch = vec![0.0; ra::scratch_len(shape)];
            let ra_params = ra::Params::new(mean);
            ra::attention(&x, &ra_params, sampling(), &mut out, &mut scratch).map_err(api)?;
        }
        "performer" => {
            let features = params["S"].as_u64().ok_or("performer without S")? as usize;
            let omega = given("omega")?.ok_or("performer without omega")?;
            let floor = params
                .get("feature_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-4);
            let clamp = params
                .get("denominator_clamp_min")
                .and_then(Value::as_f64)
                .unwrap_or(1e-2);
            if floor as f32 != rfa::FEATURE_FLOOR || clamp as f32 != rfa::DENOMINATOR_FLOOR {
                return Err(format!(
                    "feature_eps {floor} / clamp {clamp} differ from the official 1e-4 / 1e-2"
                ));
            }
            let map = rfa::FeatureMap::Positive;
            let mut scratch = vec![0.0; rfa::scratch_len(shape, map, features)];
            let rfa_params = rfa::Params { map, omega: &omega };
            rfa::attention(&x, &rfa_params, &mut out, &mut scratch).map_err(api)?;
        }
        other => return Err(format!("unknown method {other}")),
    }
    Ok(out)
}

/// Applies `LARA_ATTN_BACKEND=<name>` (if set) to the whole process and returns the backend
/// the kernels will use. A forced backend that cannot run here is an error, never a fallback.
pub fn backend_from_env() -> Result<lara_attn::backend::Backend, String> {
    use lara_attn::backend::{Backend, active_backend, set_backend};
    if let Ok(name) = std::env::var("LARA_ATTN_BACKEND") {
        let backend = Backend::from_name(&name)
            .ok_or(format!("LARA_ATTN_BACKEND: unknown backend {name:?}"))?;
        set_backend(Some(backend)).map_err(|e| format!("LARA_ATTN_BACKEND={name}: {e}"))?;
    }
    Ok(active_backend())
}

/// The default manifest: the golden files the repository carries, `tests/data/golden`.
pub fn default_manifest() -> PathBuf {
    default_manifest_of("golden")
}

/// The manifest of the golden files the repository carries in `tests/data/<kind>` (`golden`
/// for the estimators, `layers` for whole layers).
pub fn default_manifest_of(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(kind)
        .join("manifest.json")
}

/// Reads a layer manifest (the format of `tests/data/layers/manifest.json`) and runs every
/// output of every case through [`lara_attn::layer`].
pub fn run_layer_manifest(manifest_path: &Path) -> Result<Vec<Outcome>, String> {
    let manifest = read_manifest(manifest_path)?;
    let root = manifest_path.parent().unwrap_or(Path::new("."));
    let cases = manifest["cases"]
        .as_array()
        .ok_or("manifest has no cases array")?;
    let mut outcomes = Vec::new();
    for case in cases {
        let id = case["id"].as_str().unwrap_or("?");
        let module = case["module"].as_str().unwrap_or("?");
        for output in case["outputs"].as_array().into_iter().flatten() {
            outcomes.push(Outcome {
                case: id.to_string(),
                name: output["name"].as_str().unwrap_or("?").to_string(),
                method: module.to_string(),
                result: run_layer_output(root, case, output),
            });
        }
    }
    Ok(outcomes)
}

/// One output of a layer case: the module on `x` (eval, with the stored noise, with the
/// stored mask) against its golden file.
fn run_layer_output(root: &Path, case: &Value, output: &Value) -> Result<Measured, String> {
    use lara_attn::layer::{Layer, Layout, Tokens};
    let dir = root.join(case["dir"].as_str().ok_or("case without dir")?);
    let module = case["module"].as_str().ok_or("case without module")?;
    let config = layers::official_config(module, &case["config"])?;
    let mut folder = layers::WeightFolder {
        tensors: Default::default(),
    };
    for (key, tensor) in case["weights"].as_object().ok_or("case without weights")? {
        let file = tensor["file"]
            .as_str()
            .ok_or(format!("weight {key} without file"))?;
        folder
            .tensors
            .insert(key.clone(), npy::read_f32(&dir.join(file))?);
    }
    // The golden run's get_proj_matrix returned omega.npy (in place of the eval_proj buffer).
    if let Some(file) = case["omega"].as_str() {
        folder
            .tensors
            .insert("eval_proj".into(), npy::read_f32(&dir.join(file))?);
    }
    let layer = Layer::new(config, folder.weights(&config)?).map_err(|e| e.to_string())?;
    let x = npy::read_f32(&dir.join(case["input"].as_str().ok_or("case without input")?))?;
    let layout = match x.shape.as_slice() {
        [n, _] => Layout::Sequence(*n),
        [height, width, _] => Layout::Grid {
            height: *height,
            width: *width,
        },
        other => {
            return Err(format!(
                "x has shape {other:?}, expected [n, dim] or [H, W, dim]"
            ));
        }
    };
    let mask = match output["key_padding_mask"].as_str() {
        Some(file) => Some(npy::read_bool(&dir.join(file))?.data),
        None => None,
    };
    let eps = match output["eps"].as_str() {
        Some(file) => Some(npy::read_f32(&dir.join(file))?.data),
        None => None,
    };
    let sampling = match (output["mode"].as_str(), &eps) {
        (Some("eval"), None) => lara_attn::Sampling::Eval,
        (Some("noise"), Some(eps)) => lara_attn::Sampling::Noise(eps),
        (mode, _) => return Err(format!("mode {mode:?} with eps {:?}", output["eps"])),
    };
    let tokens = Tokens {
        x: &x.data,
        layout,
        key_mask: mask.as_deref(),
    };
    let mut out = vec![f32::NAN; x.data.len()];
    let mut scratch = vec![f32::NAN; Layer::scratch_len(&config, layout)];
    layer
        .forward(&tokens, sampling, &mut out, &mut scratch)
        .map_err(|e| e.to_string())?;
    let golden = npy::read_f32(&dir.join(output["file"].as_str().ok_or("output without file")?))?;
    let mut m = compare(&out, &golden.data)?;
    let f32_vs_f64 = output["f32_vs_f64_max_abs"].as_f64().unwrap_or(0.0);
    m.tolerance = (LAYER_TOLERANCE * m.max_golden).max(2.0 * f32_vs_f64);
    Ok(m)
}
