//! The `attend` example (`examples/attend.rs`) end to end: `.npy` files in a temporary
//! directory, the example binary run on them, its output read back.
//!
//! The example is built once (`cargo build --release --example attend`, a no-op when CI has
//! already built the examples) and its binary, located from cargo's JSON messages, is then run
//! directly: 8 runs in all.

#[path = "support/npy.rs"]
mod npy;

use lara_attn::{Shape, exact};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The example binary, built on first use.
fn attend_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let output = Command::new(env!("CARGO"))
            .args(["build", "--release", "--example", "attend"])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--message-format=json-render-diagnostics")
            .output()
            .expect("cargo build --example attend runs");
        assert!(
            output.status.success(),
            "cargo build --example attend failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "attend")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reports the attend executable")
    })
}

/// A fresh temporary directory for one test.
fn temp_dir(test: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "lara-attn-attend-{test}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create the temporary directory");
    dir
}

/// NPY v1.0 bytes of a C-order array with element type `descr`.
fn npy_bytes(descr: &str, shape: &[usize], payload: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn write_f32(dir: &Path, name: &str, shape: &[usize], data: &[f32]) -> PathBuf {
    assert_eq!(shape.iter().product::<usize>(), data.len());
    let payload: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
    let path = dir.join(name);
    std::fs::write(&path, npy_bytes("<f4", shape, &payload)).expect("write an .npy file");
    path
}

/// Deterministic test data in `[-1, 1)`.
fn data(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as f32 * 0.618 + seed as f32 * 0.37).sin() * 1.7).sin())
        .collect()
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(attend_binary())
        .args(args)
        .output()
        .expect("the attend example runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exact attention through the tool equals `exact::attention`, bit for bit, for one head with
/// cross-attention (`n_q ≠ n_k`, `d_v ≠ d`) and for `[h, n, d]` inputs head by head.
#[test]
fn exact_output_matches_the_crate() {
    let dir = temp_dir("exact");
    let (n_q, n_k, d, dv) = (7, 11, 6, 5);
    let shape = Shape::cross(n_q, n_k, d, dv);
    let (q, k, v) = (data(n_q * d, 1), data(n_k * d, 2), data(n_k * dv, 3));
    let paths = [
        write_f32(&dir, "q.npy", &[n_q, d], &q),
        write_f32(&dir, "k.npy", &[n_k, d], &k),
        write_f32(&dir, "v.npy", &[n_k, dv], &v),
    ];
    let out_path = dir.join("out.npy");
    let result = run(&[
        "--method".as_ref(),
        "exact".as_ref(),
        paths[0].as_ref(),
        paths[1].as_ref(),
        paths[2].as_ref(),
        "-o".as_ref(),
        out_path.as_ref(),
    ]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let out = npy::read_f32(&out_path).expect("the tool writes a valid .npy");
    assert_eq!(out.shape, [n_q, dv]);
    let mut expected = vec![0.0; n_q * dv];
    let mut scratch = vec![0.0; exact::scratch_len(shape)];
    exact::attention(shape, &q, &k, &v, &mut expected, &mut scratch).expect("exact attention");
    assert_eq!(out.data, expected);

    // Three heads, [h, n, d].
    let (h, n) = (3, 9);
    let shape = Shape::cross(n, n, d, dv);
    let (q, k, v) = (data(h * n * d, 4), data(h * n * d, 5), data(h * n * dv, 6));
    let paths = [
        write_f32(&dir, "q3.npy", &[h, n, d], &q),
        write_f32(&dir, "k3.npy", &[h, n, d], &k),
        write_f32(&dir, "v3.npy", &[h, n, dv], &v),
    ];
    let result = run(&[
        "--method".as_ref(),
        "exact".as_ref(),
        paths[0].as_ref(),
        paths[1].as_ref(),
        paths[2].as_ref(),
        "-o".as_ref(),
        out_path.as_ref(),
    ]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let out = npy::read_f32(&out_path).expect("the tool writes a valid .npy");
    assert_eq!(out.shape, [h, n, dv]);
    let mut expected = vec![0.0; h * n * dv];
    let mut scratch = vec![0.0; exact::scratch_len(shape)];
    for head in 0..h {
        exact::attention(
            shape,
            &q[head * n * d..][..n * d],
            &k[head * n * d..][..n * d],
            &v[head * n * dv..][..n * dv],
            &mut expected[head * n * dv..][..n * dv],
            &mut scratch,
        )
        .expect("exact attention");
    }
    assert_eq!(out.data, expected);
    let _ = std::fs::remove_dir_all(&dir);
}

/// LARA in eval mode with `--compare exact` prints a finite relative error and writes an
/// output of the right shape.
#[test]
fn lara_compare_prints_a_finite_error() {
    let dir = temp_dir("lara");
    let (h, n, d) = (2, 32, 8);
    let paths = [
        write_f32(&dir, "q.npy", &[h, n, d], &data(h * n * d, 7)),
        write_f32(&dir, "k.npy", &[h, n, d], &data(h * n * d, 8)),
        write_f32(&dir, "v.npy", &[h, n, d], &data(h * n * d, 9)),
    ];
    let out_path = dir.join("out.npy");
    let result = run(&[
        "--method".as_ref(),
        "lara".as_ref(),
        "--mode".as_ref(),
        "eval".as_ref(),
        "--landmarks".as_ref(),
        "4".as_ref(),
        "--compare".as_ref(),
        "exact".as_ref(),
        paths[0].as_ref(),
        paths[1].as_ref(),
        paths[2].as_ref(),
        "-o".as_ref(),
        out_path.as_ref(),
    ]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let stdout = text(&result.stdout);
    let error: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("relative Frobenius error vs exact: "))
        .and_then(|e| e.trim().parse().ok())
        .unwrap_or_else(|| panic!("no error line in {stdout:?}"));
    assert!(error.is_finite() && (0.0..1.0).contains(&error), "{error}");
    let out = npy::read_f32(&out_path).expect("the tool writes a valid .npy");
    assert_eq!(out.shape, [h, n, d]);
    assert!(out.data.iter().all(|x| x.is_finite()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A truncated file and a float64 file are refused with exit code 2 and a message naming the
/// problem; `--mask` is refused as not supported yet; a bad argument is refused; `--help`
/// prints the usage.
#[test]
fn bad_inputs_and_arguments_exit_with_code_2() {
    let dir = temp_dir("errors");
    let (n, d) = (5, 4);
    let k = write_f32(&dir, "k.npy", &[n, d], &data(n * d, 10));
    let v = write_f32(&dir, "v.npy", &[n, d], &data(n * d, 11));
    let out_path = dir.join("out.npy");

    let full = npy_bytes(
        "<f4",
        &[n, d],
        &data(n * d, 12)
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let truncated = dir.join("truncated.npy");
    std::fs::write(&truncated, &full[..full.len() - 6]).expect("write");
    let float64 = dir.join("float64.npy");
    let payload: Vec<u8> = (0..n * d).flat_map(|i| (i as f64).to_le_bytes()).collect();
    std::fs::write(&float64, npy_bytes("<f8", &[n, d], &payload)).expect("write");

    let cases: [(&str, &Path, &[&str], &str); 3] = [
        ("truncated", &truncated, &[], "payload has"),
        ("float64", &float64, &[], "'<f8'"),
        ("mask", &k, &["--mask", "mask.npy"], "not supported yet"),
    ];
    for (label, q, extra, message) in cases {
        let mut args: Vec<&std::ffi::OsStr> = vec!["--method".as_ref(), "exact".as_ref()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        args.extend([
            q.as_os_str(),
            k.as_os_str(),
            v.as_os_str(),
            "-o".as_ref(),
            out_path.as_os_str(),
        ]);
        let result = run(&args);
        let stderr = text(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{label}: {stderr}");
        assert!(stderr.contains(message), "{label}: {stderr:?}");
        assert!(!stderr.contains("panicked"), "{label}: {stderr:?}");
        assert!(!out_path.exists(), "{label}: nothing is written on error");
    }

    let result = run(&[
        "--method".as_ref(),
        "softmax".as_ref(),
        k.as_ref(),
        k.as_ref(),
        v.as_ref(),
        "-o".as_ref(),
        out_path.as_ref(),
    ]);
    let stderr = text(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown method"), "{stderr:?}");

    let result = run(&["--help".as_ref()]);
    assert!(result.status.success());
    assert!(text(&result.stdout).starts_with("usage: attend --method"));
    let _ = std::fs::remove_dir_all(&dir);
}
