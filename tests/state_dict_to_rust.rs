//! The `state_dict_to_rust` example (`examples/state_dict_to_rust.rs`) end to end: the
//! firmware's generated weights (`examples/firmware/layer_weights.rs`) are what the tool makes
//! of `tests/data/firmware_layer/` byte for byte, and that folder what its `--synthetic` writes;
//! the generated items compile (`include!`d here) to the layer of the folder, bit for bit; every
//! golden layer folder converts, every value reading back to its bits; errors are one line and
//! exit status 2.
//!
//! The example is built once (`cargo build --release --example state_dict_to_rust`) and its
//! binary, located from cargo's JSON messages, is then run directly.

#[path = "support/layers.rs"]
mod layers;

use lara_attn::layer::{Layer, Weights};
use layers::npy;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The firmware's layer, compiled from the generated file.
mod generated {
    include!("../examples/firmware/layer_weights.rs");
}

const FOLDER: &str = "tests/data/firmware_layer";
const GENERATED: &str = "examples/firmware/layer_weights.rs";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The example binary, built on first use.
fn tool() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let output = Command::new(env!("CARGO"))
            .args(["build", "--release", "--example", "state_dict_to_rust"])
            .arg("--manifest-path")
            .arg(root().join("Cargo.toml"))
            .arg("--message-format=json-render-diagnostics")
            .output()
            .expect("cargo build --example state_dict_to_rust runs");
        assert!(
            output.status.success(),
            "cargo build --example state_dict_to_rust failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|m| {
                m["reason"] == "compiler-artifact" && m["target"]["name"] == "state_dict_to_rust"
            })
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reports the state_dict_to_rust executable")
    })
}

/// Runs the tool from the repository root.
fn run(args: &[&str]) -> Output {
    Command::new(tool())
        .args(args)
        .current_dir(root())
        .output()
        .expect("the state_dict_to_rust example runs")
}

/// A fresh temporary directory for one test.
fn temp_dir(test: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "lara-attn-to-rust-{test}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create the temporary directory");
    dir
}

fn success(output: &Output) -> String {
    assert!(
        output.status.success(),
        "the tool failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

/// The values of `pub static NAME: [f32; N] = [...]` in generated source, checked against `N`.
fn static_array(source: &str, name: &str) -> Vec<f32> {
    let start = format!("pub static {name}: [f32; ");
    let at = source
        .find(&start)
        .unwrap_or_else(|| panic!("no static {name}"));
    let rest = &source[at + start.len()..];
    let (len, rest) = rest.split_once("] = [\n").expect("an array initialiser");
    let body = &rest[..rest.find("\n];").expect("the end of the array")];
    let values: Vec<f32> = body
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: {v:?} is not an f32"))
        })
        .collect();
    assert_eq!(len.parse::<usize>().ok(), Some(values.len()), "{name}");
    values
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn the_firmware_file_is_regenerated_byte_for_byte() {
    let stdout = success(&run(&[FOLDER]));
    let committed = std::fs::read_to_string(root().join(GENERATED)).expect("read the file");
    assert!(
        stdout == committed,
        "{GENERATED} is stale: regenerate with `cargo run --release --example \
         state_dict_to_rust -- {FOLDER} -o {GENERATED}`"
    );
    // the same with -o, and with the folder spelt otherwise
    let dir = temp_dir("regenerate");
    let out = dir.join("layer_weights.rs");
    let out_arg = out.to_str().expect("UTF-8 temporary path");
    success(&run(&[&format!("./{FOLDER}/"), "-o", out_arg]));
    assert!(std::fs::read_to_string(&out).ok() == Some(committed));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_synthetic_folder_is_regenerated_byte_for_byte() {
    let dir = temp_dir("synthetic");
    let target = dir.join("layer");
    success(&run(&["--synthetic", target.to_str().expect("UTF-8 path")]));
    let mut names: Vec<_> = std::fs::read_dir(root().join(FOLDER))
        .expect("the committed folder")
        .map(|e| e.expect("a directory entry").file_name())
        .collect();
    names.sort();
    let mut written: Vec<_> = std::fs::read_dir(&target)
        .expect("the written folder")
        .map(|e| e.expect("a directory entry").file_name())
        .collect();
    written.sort();
    assert_eq!(names, written);
    for name in names {
        let committed = std::fs::read(root().join(FOLDER).join(&name)).expect("read");
        let regenerated = std::fs::read(target.join(&name)).expect("read");
        assert!(
            committed == regenerated,
            "{name:?} differs from --synthetic's"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

/// The `include!`d items are the folder's layer: the configuration of its `config.json`, every
/// tensor with the bits of its `.npy` file.
#[test]
fn the_generated_items_are_the_layer_of_the_folder() {
    let folder = root().join(FOLDER);
    let config = layers::read_config_file(&folder.join("config.json")).expect("config.json");
    assert_eq!(generated::CONFIG, config);
    let tensors = layers::WeightFolder::read(&folder).expect("the folder");
    let expected: Weights<'_> = tensors.weights(&config).expect("the weights");
    let actual = generated::WEIGHTS;
    assert_eq!(bits(actual.qkv_weight), bits(expected.qkv_weight));
    assert_eq!(
        actual.qkv_bias.map(bits),
        expected.qkv_bias.map(bits),
        "qkv.bias"
    );
    assert_eq!(bits(actual.proj_weight), bits(expected.proj_weight));
    assert_eq!(bits(actual.proj_bias), bits(expected.proj_bias));
    assert_eq!(
        (actual.q_bar_gen, actual.k_bar_gen, actual.eval_proj),
        (None, None, None)
    );
    Layer::new(generated::CONFIG, generated::WEIGHTS).expect("a valid layer");
}

/// Every golden layer folder (every module, generator and option) converts, with one static
/// per tensor its configuration reads, each value reading back to the `.npy` file's bits.
#[test]
fn every_golden_layer_folder_converts_exactly() {
    let manifest_path = root().join("tests/data/layers/manifest.json");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(&manifest_path).expect("read the layer manifest"),
    )
    .expect("JSON");
    let dir = temp_dir("golden");
    let cases = manifest["cases"].as_array().expect("cases");
    assert!(cases.len() >= 18);
    for case in cases {
        let id = case["id"].as_str().expect("an id");
        let config_path = dir.join(format!("{id}.json"));
        let config = serde_json::json!({ "module": case["module"], "config": case["config"] });
        std::fs::write(&config_path, config.to_string()).expect("write config.json");
        let weights = manifest_path
            .parent()
            .expect("the data folder")
            .join(case["dir"].as_str().expect("a dir"))
            .join("weights");
        let source = success(&run(&[
            weights.to_str().expect("UTF-8 path"),
            "--config",
            config_path.to_str().expect("UTF-8 path"),
        ]));
        assert!(source.contains("pub static WEIGHTS: lara_attn::layer::Weights<'static>"));
        for (key, spec) in case["weights"].as_object().expect("weights") {
            let file = weights.join(format!("{key}.npy"));
            let tensor = npy::read_f32(&file).expect("a float32 tensor");
            let shape: Vec<usize> = spec["shape"]
                .as_array()
                .expect("a shape")
                .iter()
                .map(|d| d.as_u64().expect("a dimension") as usize)
                .collect();
            assert_eq!(tensor.shape, shape, "{id}: {key}");
            let name = key.replace('.', "_").to_uppercase();
            let values = static_array(&source, &name);
            assert_eq!(bits(&values), bits(&tensor.data), "{id}: {key}");
            assert!(
                source.contains(&format!("&{name}")),
                "{id}: {key} not in WEIGHTS"
            );
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

/// A bad folder, configuration or argument: one line on stderr, exit status 2, no output file.
#[test]
fn errors_are_one_line_and_exit_status_2() {
    let dir = temp_dir("errors");
    let folder = root().join(FOLDER);
    let copy = |name: &str, skip: &str| {
        let target = dir.join(name);
        std::fs::create_dir_all(&target).expect("create a folder");
        for entry in std::fs::read_dir(&folder).expect("the folder") {
            let path = entry.expect("an entry").path();
            if path.file_name().and_then(|f| f.to_str()) != Some(skip) {
                std::fs::copy(&path, target.join(path.file_name().expect("a name"))).expect("copy");
            }
        }
        target
    };
    let missing = copy("missing", "proj.bias.npy");
    let nan = copy("nan", "");
    let mut bias = npy::read_f32(&nan.join("proj.bias.npy"))
        .expect("read")
        .data;
    bias[3] = f32::NAN;
    let mut bytes = std::fs::read(nan.join("proj.bias.npy")).expect("read");
    let header = bytes.len() - 4 * bias.len();
    bytes.truncate(header);
    bytes.extend(bias.iter().flat_map(|x| x.to_le_bytes()));
    std::fs::write(nan.join("proj.bias.npy"), bytes).expect("write");
    let wrong_dim = dir.join("dim32.json");
    std::fs::write(
        &wrong_dim,
        r#"{"module": "LinearRA", "config": {"dim": 32, "num_heads": 4}}"#,
    )
    .expect("write");
    let bad_module = dir.join("bad.json");
    std::fs::write(
        &bad_module,
        r#"{"module": "Linformer", "config": {"dim": 64, "num_heads": 4}}"#,
    )
    .expect("write");
    let out = dir.join("out.rs");
    let path = |p: &Path| p.to_str().expect("UTF-8 path").to_owned();
    let cases: [(Vec<String>, &str); 8] = [
        (vec![path(&dir.join("nowhere"))], "config.json"),
        (vec![path(&missing)], "proj.bias"),
        (vec![path(&nan)], "proj.bias"),
        (
            vec![FOLDER.into(), "--config".into(), path(&wrong_dim)],
            "qkv.weight",
        ),
        (
            vec![FOLDER.into(), "--config".into(), path(&bad_module)],
            "Linformer",
        ),
        (vec![FOLDER.into(), "--frobnicate".into()], "--frobnicate"),
        (vec![FOLDER.into(), "-o".into()], "-o"),
        (vec![], "usage"),
    ];
    for (args, needle) in cases {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out_arg = path(&out);
        if args.last() != Some(&"-o") {
            args.extend(["-o", &out_arg]);
        }
        let output = run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: {stderr} (expected {needle:?})"
        );
        assert!(!out.exists(), "{args:?} wrote an output file");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(dir).ok();
}
