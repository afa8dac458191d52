//! The `attend` example (`examples/attend/`) end to end: `.npy` files in a temporary
//! directory, the example binary run on them, its output read back.
//!
//! The example is built once (`cargo build --release --example attend`, a no-op when CI has
//! already built the examples) and its binary, located from cargo's JSON messages, is then run
//! directly: 284 runs in all (67 of them `--layer` runs on the cases of `tests/data/layers`,
//! 101 `--int8` runs, 77 of these on the golden cases of `tests/data/golden`).
//!
//! `--int8` runs are checked against the crate's int8 kernels called directly on the inputs
//! quantised with `int8::scale_for` / `int8::quantize` (the same bits), against the `f32`
//! estimators on the dequantised inputs (within 2%), and for their printed scales and errors.

#[path = "support/npy.rs"]
mod npy;

use lara_attn::int8::{self, Out, Scales};
use lara_attn::random::{self, NoiseScale};
use lara_attn::{Qkv, Sampling, Shape, exact, lara, rfa};
use std::ffi::OsStr;
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

/// A numpy bool (`|b1`) `.npy` file.
fn write_bool(dir: &Path, name: &str, shape: &[usize], data: &[bool]) -> PathBuf {
    assert_eq!(shape.iter().product::<usize>(), data.len());
    let payload: Vec<u8> = data.iter().map(|&b| u8::from(b)).collect();
    let path = dir.join(name);
    std::fs::write(&path, npy_bytes("|b1", shape, &payload)).expect("write an .npy file");
    path
}

fn write_i32(dir: &Path, name: &str, shape: &[usize], data: &[i32]) -> PathBuf {
    assert_eq!(shape.iter().product::<usize>(), data.len());
    let payload: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
    let path = dir.join(name);
    std::fs::write(&path, npy_bytes("<i4", shape, &payload)).expect("write an .npy file");
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

/// [`run`] on a mixed list of options and paths.
fn attend(args: &[&dyn AsRef<OsStr>]) -> Output {
    run(&args.iter().map(|a| a.as_ref()).collect::<Vec<&OsStr>>())
}

/// [`attend`], which must succeed; returns the output written to `out`, which must be the last
/// argument.
fn attend_ok(args: &[&dyn AsRef<OsStr>]) -> Vec<f32> {
    let result = attend(args);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let out = Path::new(args.last().expect("arguments").as_ref());
    let array = npy::read_f32(out).expect("the tool writes a valid .npy");
    assert!(array.data.iter().all(|x| x.is_finite()));
    array.data
}

/// [`attend`], which must fail with exit code 2 and a message containing `message`, without a
/// panic and without writing `out`.
fn attend_fails(label: &str, args: &[&dyn AsRef<OsStr>], out: &Path, message: &str) {
    let _ = std::fs::remove_file(out);
    let result = attend(args);
    let stderr = text(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{label}: {stderr}");
    assert!(stderr.contains(message), "{label}: {stderr:?}");
    assert!(!stderr.contains("panicked"), "{label}: {stderr:?}");
    assert!(!out.exists(), "{label}: nothing is written on error");
}

/// The number on the `relative Frobenius error vs {label}: ` line of `stdout`.
fn printed_error(stdout: &[u8], label: &str) -> f64 {
    let stdout = text(stdout);
    let prefix = format!("relative Frobenius error vs {label}: ");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|e| e.trim().parse().ok())
        .unwrap_or_else(|| panic!("no error line in {stdout:?}"))
}

/// The rows of `x [rows, cols]` whose `mask` entry is false.
fn unmasked_rows(x: &[f32], cols: usize, mask: &[bool]) -> Vec<f32> {
    x.chunks_exact(cols)
        .zip(mask)
        .filter(|&(_, &masked)| !masked)
        .flat_map(|(row, _)| row.iter().copied())
        .collect()
}

/// `x [rows, cols]` with the rows masked in `mask` replaced by large garbage.
fn garbage_in_masked_rows(x: &[f32], cols: usize, mask: &[bool]) -> Vec<f32> {
    x.chunks_exact(cols)
        .zip(mask.iter().cycle())
        .enumerate()
        .flat_map(|(i, (row, &masked))| {
            row.iter().enumerate().map(move |(j, &x)| {
                if masked {
                    40.0 * ((i * 7 + j) as f32).cos() - 3.0
                } else {
                    x
                }
            })
        })
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The crate's exact attention of one head, without a mask: the reference.
fn exact_head(shape: Shape, q: &[f32], k: &[f32], v: &[f32]) -> Vec<f32> {
    assert_eq!(shape.heads, 1);
    let mut out = vec![0.0; shape.queries * shape.value_dim];
    let mut scratch = vec![0.0; exact::scratch_len(shape)];
    let x = Qkv {
        shape,
        q,
        k,
        v,
        key_mask: None,
    };
    exact::attention(&x, &mut out, &mut scratch).expect("exact attention");
    out
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
    assert_eq!(out.data, exact_head(shape, &q, &k, &v));

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
    // The reference head by head: one call with `Shape::with_heads` would use the same path as
    // the tool.
    let expected: Vec<f32> = (0..h)
        .flat_map(|head| {
            exact_head(
                shape,
                &q[head * n * d..][..n * d],
                &k[head * n * d..][..n * d],
                &v[head * n * dv..][..n * dv],
            )
        })
        .collect();
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
/// problem, as is a missing `--mask` file; a bad argument is refused; `--help` prints the usage.
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

    let missing = dir.join("missing-mask.npy");
    let missing = missing.to_str().expect("a UTF-8 temporary path");
    let cases: [(&str, &Path, &[&str], &str); 3] = [
        ("truncated", &truncated, &[], "payload has"),
        ("float64", &float64, &[], "'<f8'"),
        ("mask", &k, &["--mask", missing], "cannot read"),
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

/// `--mask` with exact attention equals exact attention on the inputs with the masked keys
/// removed, for one head (the mask as `|b1`, `<i4` and `<f4`, all bitwise equal) and for
/// `[h, n, d]` inputs with one mask per head `[h, n_k]`.
#[test]
fn exact_mask_equals_removing_the_masked_keys() {
    let dir = temp_dir("exact-mask");
    let (n_q, n_k, d, dv) = (7, 11, 6, 5);
    let (q, k, v) = (data(n_q * d, 21), data(n_k * d, 22), data(n_k * dv, 23));
    let mask: Vec<bool> = (0..n_k).map(|j| [1, 4, 10].contains(&j)).collect();
    let inputs = [
        write_f32(&dir, "q.npy", &[n_q, d], &q),
        write_f32(&dir, "k.npy", &[n_k, d], &k),
        write_f32(&dir, "v.npy", &[n_k, dv], &v),
    ];
    let (k_kept, v_kept) = (unmasked_rows(&k, d, &mask), unmasked_rows(&v, dv, &mask));
    let n_kept = n_k - 3;
    let reduced = [
        inputs[0].clone(),
        write_f32(&dir, "k_kept.npy", &[n_kept, d], &k_kept),
        write_f32(&dir, "v_kept.npy", &[n_kept, dv], &v_kept),
    ];
    let out = dir.join("out.npy");
    let [q_path, k_path, v_path] = &inputs;

    let removed = attend_ok(&[
        &"--method",
        &"exact",
        &reduced[0],
        &reduced[1],
        &reduced[2],
        &"-o",
        &out,
    ]);
    let as_int: Vec<i32> = mask.iter().map(|&m| i32::from(m) * 3).collect();
    let as_float: Vec<f32> = mask.iter().map(|&m| if m { -1.0 } else { 0.0 }).collect();
    let masks = [
        write_bool(&dir, "mask_b1.npy", &[n_k], &mask),
        write_i32(&dir, "mask_i4.npy", &[n_k], &as_int),
        write_f32(&dir, "mask_f4.npy", &[n_k], &as_float),
    ];
    let mut outputs = Vec::new();
    for mask_path in &masks {
        outputs.push(attend_ok(&[
            &"--method",
            &"exact",
            &"--mask",
            mask_path,
            q_path,
            k_path,
            v_path,
            &"-o",
            &out,
        ]));
    }
    let masked = &outputs[0];
    assert_eq!(masked.len(), n_q * dv);
    assert_eq!(&outputs[1], masked, "<i4 mask");
    assert_eq!(&outputs[2], masked, "<f4 mask");
    let tolerance = 1e-5 * removed.iter().fold(1.0f32, |m, x| m.max(x.abs()));
    assert!(
        max_abs_diff(masked, &removed) <= tolerance,
        "masked {masked:?} vs removed {removed:?}"
    );
    // The mask changes the output.
    let unmasked = attend_ok(&[&"--method", &"exact", q_path, k_path, v_path, &"-o", &out]);
    assert!(max_abs_diff(&unmasked, masked) > 1e-3);

    // Three heads, a different mask per head: each head equals the crate's exact attention on
    // that head's kept keys.
    let (h, n) = (3, 9);
    let (q, k, v) = (
        data(h * n * d, 24),
        data(h * n * d, 25),
        data(h * n * dv, 26),
    );
    let mask: Vec<bool> = (0..h * n).map(|i| (i % n) % (i / n + 2) == 1).collect();
    let mask_path = write_bool(&dir, "mask3.npy", &[h, n], &mask);
    let masked = attend_ok(&[
        &"--method",
        &"exact",
        &"--mask",
        &mask_path,
        &write_f32(&dir, "q3.npy", &[h, n, d], &q),
        &write_f32(&dir, "k3.npy", &[h, n, d], &k),
        &write_f32(&dir, "v3.npy", &[h, n, dv], &v),
        &"-o",
        &out,
    ]);
    assert_eq!(masked.len(), h * n * dv);
    for head in 0..h {
        let mask = &mask[head * n..][..n];
        let kept = mask.iter().filter(|&&m| !m).count();
        assert!(0 < kept && kept < n, "head {head} masks some keys");
        let k_kept = unmasked_rows(&k[head * n * d..][..n * d], d, mask);
        let v_kept = unmasked_rows(&v[head * n * dv..][..n * dv], dv, mask);
        let shape = Shape::cross(n, kept, d, dv);
        let expected = exact_head(shape, &q[head * n * d..][..n * d], &k_kept, &v_kept);
        let got = &masked[head * n * dv..][..n * dv];
        assert!(
            max_abs_diff(got, &expected) <= 1e-5,
            "head {head}: {got:?} vs {expected:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--mask` with lara (eval and sampled), ra (eval, sampled, drawn keys), rfa, rfa-trig and
/// log-space rfa: the output differs from the unmasked one, and garbage in the masked key and
/// value rows leaves the output file bit for bit unchanged. A `[h, n_k]` mask whose heads are
/// all equal (run head by head) gives the same output as the `[n_k]` mask (one call).
#[test]
fn masked_keys_have_no_influence_on_lara_ra_and_rfa() {
    let dir = temp_dir("mask-estimators");
    let (h, n, d) = (2, 24, 8);
    let (q, k, v) = (
        data(h * n * d, 31),
        data(h * n * d, 32),
        data(h * n * d, 33),
    );
    let mask: Vec<bool> = (0..n).map(|j| j % 5 == 2 || j >= n - 4).collect();
    let mask_path = write_bool(&dir, "mask.npy", &[n], &mask);
    let stacked: Vec<bool> = (0..h).flat_map(|_| mask.iter().copied()).collect();
    let stacked_path = write_bool(&dir, "mask2.npy", &[h, n], &stacked);
    let q_path = write_f32(&dir, "q.npy", &[h, n, d], &q);
    let clean = [
        write_f32(&dir, "k.npy", &[h, n, d], &k),
        write_f32(&dir, "v.npy", &[h, n, d], &v),
    ];
    let garbage = [
        write_f32(
            &dir,
            "k_garbage.npy",
            &[h, n, d],
            &garbage_in_masked_rows(&k, d, &mask),
        ),
        write_f32(
            &dir,
            "v_garbage.npy",
            &[h, n, d],
            &garbage_in_masked_rows(&v, d, &mask),
        ),
    ];
    let (out, out_garbage) = (dir.join("out.npy"), dir.join("out_garbage.npy"));

    let configurations: [&[&str]; 9] = [
        &["--method", "lara", "--landmarks", "4"],
        &[
            "--method",
            "lara",
            "--landmarks",
            "4",
            "--mode",
            "sampled",
            "--proposals",
            "antithetic",
            "--seed",
            "5",
        ],
        &["--method", "rfa", "--features", "16", "--seed", "6"],
        &["--method", "rfa-trig", "--features", "16", "--seed", "7"],
        &[
            "--method",
            "rfa",
            "--rfa-log-space",
            "--features",
            "16",
            "--seed",
            "8",
        ],
        &["--method", "lara", "--mis", "bh", "--landmarks", "6"],
        &["--method", "ra"],
        &[
            "--method",
            "ra",
            "--mode",
            "sampled",
            "--ra-mean",
            "-1",
            "--seed",
            "9",
        ],
        &[
            "--method",
            "ra",
            "--mode",
            "sampled",
            "--ra-mean",
            "1",
            "--scaled-noise",
            "--seed",
            "10",
        ],
    ];
    for options in configurations {
        let label = options.join(" ");
        let mut args: Vec<&dyn AsRef<OsStr>> = options.iter().map(|o| o as _).collect();
        let tail: [&dyn AsRef<OsStr>; 5] = [&q_path, &clean[0], &clean[1], &"-o", &out];
        args.extend(tail);
        let unmasked = attend_ok(&args);
        let mask_args: [&dyn AsRef<OsStr>; 2] = [&"--mask", &mask_path];
        args.splice(..0, mask_args);
        let masked = attend_ok(&args);
        assert!(
            max_abs_diff(&masked, &unmasked) > 1e-4,
            "{label}: the mask changes the output"
        );
        let masked_bytes = std::fs::read(&out).expect("read the output");

        let last = args.len() - 1;
        args[last - 3] = &garbage[0];
        args[last - 2] = &garbage[1];
        args[last] = &out_garbage;
        attend_ok(&args);
        let garbage_bytes = std::fs::read(&out_garbage).expect("read the output");
        assert!(
            garbage_bytes == masked_bytes,
            "{label}: masked rows have no influence"
        );

        // One mask per head, all equal: the same output.
        args[1] = &stacked_path;
        attend_ok(&args);
        let per_head_bytes = std::fs::read(&out_garbage).expect("read the output");
        assert!(per_head_bytes == masked_bytes, "{label}: [h, n_k] mask");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--mask` with ra (which takes a key mask since the `Qkv` API): with every mean, in eval mode
/// and with given noise (`--eps`; `--key-indices` renumbered for the kept keys), the output
/// equals ra on the inputs with the masked keys removed, and differs from the unmasked output;
/// a `[h, n_k]` mask gives each head the output of ra on that head's kept keys; a given key
/// index of a masked key is refused with exit code 2.
#[test]
fn ra_mask_equals_removing_the_masked_keys() {
    let dir = temp_dir("ra-mask");
    let (n_q, n_k, d, dv) = (9, 13, 8, 5);
    let (q, k, v) = (data(n_q * d, 81), data(n_k * d, 82), data(n_k * dv, 83));
    let mask: Vec<bool> = (0..n_k).map(|j| [0, 5, 6, 12].contains(&j)).collect();
    let kept: Vec<usize> = (0..n_k).filter(|&j| !mask[j]).collect();
    let n_kept = kept.len();
    let q_path = write_f32(&dir, "q.npy", &[n_q, d], &q);
    let full = [
        write_f32(&dir, "k.npy", &[n_k, d], &k),
        write_f32(&dir, "v.npy", &[n_k, dv], &v),
    ];
    let reduced = [
        write_f32(
            &dir,
            "k_kept.npy",
            &[n_kept, d],
            &unmasked_rows(&k, d, &mask),
        ),
        write_f32(
            &dir,
            "v_kept.npy",
            &[n_kept, dv],
            &unmasked_rows(&v, dv, &mask),
        ),
    ];
    let mask_path = write_bool(&dir, "mask.npy", &[n_k], &mask);
    let eps = write_f32(&dir, "eps.npy", &[n_q, d], &data(n_q * d, 84));
    // The key of query i: kept key (3i mod n_kept), as an index into all keys and into the kept.
    let renumbered: Vec<i32> = (0..n_q).map(|i| ((3 * i) % n_kept) as i32).collect();
    let indices: Vec<i32> = renumbered
        .iter()
        .map(|&j| kept[j as usize] as i32)
        .collect();
    let indices_path = write_i32(&dir, "indices.npy", &[n_q], &indices);
    let renumbered_path = write_i32(&dir, "renumbered.npy", &[n_q], &renumbered);
    let out = dir.join("out.npy");

    // (options, whether they take --key-indices)
    let configurations: [(&[&dyn AsRef<OsStr>], bool); 6] = [
        (&[&"--method", &"ra"], false),
        (&[&"--method", &"ra", &"--ra-mean", &"-1"], false),
        (&[&"--method", &"ra", &"--eps", &eps], false),
        (
            &[
                &"--method",
                &"ra",
                &"--ra-mean",
                &"-1",
                &"--scaled-noise",
                &"--eps",
                &eps,
            ],
            false,
        ),
        (&[&"--method", &"ra", &"--ra-mean", &"1"], true),
        (
            &[&"--method", &"ra", &"--ra-mean", &"1", &"--eps", &eps],
            true,
        ),
    ];
    for (options, with_indices) in configurations {
        let label = options
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let run_with = |indices: &Path, extra: &[&dyn AsRef<OsStr>], k: &Path, v: &Path| {
            let mut args = options.to_vec();
            if with_indices {
                args.extend([&"--key-indices" as &dyn AsRef<OsStr>, &indices]);
            }
            args.extend_from_slice(extra);
            let tail: [&dyn AsRef<OsStr>; 5] = [&q_path, &k, &v, &"-o", &out];
            args.extend(tail);
            attend_ok(&args)
        };
        let masked = run_with(&indices_path, &[&"--mask", &mask_path], &full[0], &full[1]);
        let unmasked = run_with(&indices_path, &[], &full[0], &full[1]);
        let removed = run_with(&renumbered_path, &[], &reduced[0], &reduced[1]);
        assert_eq!(masked.len(), n_q * dv);
        let tolerance = 1e-5 * removed.iter().fold(1.0f32, |m, x| m.max(x.abs()));
        assert!(
            max_abs_diff(&masked, &removed) <= tolerance,
            "{label}: masked {masked:?} vs removed {removed:?}"
        );
        assert!(
            max_abs_diff(&masked, &unmasked) > 1e-3,
            "{label}: the mask changes the output"
        );
    }

    // Two heads, a different mask per head (run head by head), and given noise [h, n_q, d].
    let (h, n) = (2, 10);
    let (q, k, v) = (
        data(h * n * d, 85),
        data(h * n * d, 86),
        data(h * n * dv, 87),
    );
    let eps = data(h * n * d, 88);
    let mask: Vec<bool> = (0..h * n).map(|i| (i % n) % (i / n + 2) == 1).collect();
    let masked = attend_ok(&[
        &"--method",
        &"ra",
        &"--ra-mean",
        &"-1",
        &"--eps",
        &write_f32(&dir, "eps2.npy", &[h, n, d], &eps),
        &"--mask",
        &write_bool(&dir, "mask2.npy", &[h, n], &mask),
        &write_f32(&dir, "q2.npy", &[h, n, d], &q),
        &write_f32(&dir, "k2.npy", &[h, n, d], &k),
        &write_f32(&dir, "v2.npy", &[h, n, dv], &v),
        &"-o",
        &out,
    ]);
    assert_eq!(masked.len(), h * n * dv);
    for head in 0..h {
        let head_mask = &mask[head * n..][..n];
        let kept = head_mask.iter().filter(|&&m| !m).count();
        assert!(0 < kept && kept < n, "head {head} masks some keys");
        let k_kept = unmasked_rows(&k[head * n * d..][..n * d], d, head_mask);
        let v_kept = unmasked_rows(&v[head * n * dv..][..n * dv], dv, head_mask);
        let removed = attend_ok(&[
            &"--method",
            &"ra",
            &"--ra-mean",
            &"-1",
            &"--eps",
            &write_f32(&dir, "eps_head.npy", &[n, d], &eps[head * n * d..][..n * d]),
            &write_f32(&dir, "q_head.npy", &[n, d], &q[head * n * d..][..n * d]),
            &write_f32(&dir, "k_head.npy", &[kept, d], &k_kept),
            &write_f32(&dir, "v_head.npy", &[kept, dv], &v_kept),
            &"-o",
            &out,
        ]);
        let got = &masked[head * n * dv..][..n * dv];
        let tolerance = 1e-5 * removed.iter().fold(1.0f32, |m, x| m.max(x.abs()));
        assert!(
            max_abs_diff(got, &removed) <= tolerance,
            "head {head}: {got:?} vs {removed:?}"
        );
    }

    // A given key index of a masked key: the key would have an influence.
    let mut bad = indices.clone();
    bad[4] = 5;
    let bad_path = write_i32(&dir, "bad_indices.npy", &[n_q], &bad);
    attend_fails(
        "masked key index",
        &[
            &"--method",
            &"ra",
            &"--ra-mean",
            &"1",
            &"--key-indices",
            &bad_path,
            &"--mask",
            &mask_path,
            &q_path,
            &full[0],
            &full[1],
            &"-o",
            &out,
        ],
        &out,
        "element 4 is 5, a key that --mask masks",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sampled ra with drawn keys (`--ra-mean 1`) and the paper's noise scale is unbiased, with a
/// key mask too: the mean of 4000 draws is within 3% (relative Frobenius error) of masked exact
/// attention, which differs from unmasked exact attention by far more than that.
#[test]
fn sampled_ra_with_a_mask_converges_to_masked_exact() {
    let n = 16;
    assert_ra_mean_converges("ra-mask-mean", |j| j % 3 == 1 || j >= n - 3);
}

/// [`sampled_ra_with_a_mask_converges_to_masked_exact`] with the first key masked.
#[test]
fn sampled_ra_with_the_first_key_masked_converges_to_masked_exact() {
    let n = 16;
    assert_ra_mean_converges("ra-mask-first", |j| j % 3 == 0 || j >= n - 3);
}

/// The check of [`sampled_ra_with_a_mask_converges_to_masked_exact`] for `[2, 16, 8]` inputs
/// and the key mask `masked(j)`.
fn assert_ra_mean_converges(test: &str, masked: impl Fn(usize) -> bool) {
    let dir = temp_dir(test);
    let (h, n, d) = (2, 16, 8);
    let inputs = [
        write_f32(&dir, "q.npy", &[h, n, d], &data(h * n * d, 91)),
        write_f32(&dir, "k.npy", &[h, n, d], &data(h * n * d, 92)),
        write_f32(&dir, "v.npy", &[h, n, d], &data(h * n * d, 93)),
    ];
    let [q, k, v] = &inputs;
    let mask: Vec<bool> = (0..n).map(masked).collect();
    let mask_path = write_bool(&dir, "mask.npy", &[n], &mask);
    let out = dir.join("out.npy");

    let result = attend(&[
        &"--method",
        &"ra",
        &"--ra-mean",
        &"1",
        &"--mode",
        &"sampled",
        &"--scaled-noise",
        &"--draws",
        &"4000",
        &"--seed",
        &"12",
        &"--mask",
        &mask_path,
        &"--compare",
        &"exact",
        q,
        k,
        v,
    ]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let error = printed_error(&result.stdout, "masked exact");
    assert!(error < 0.03, "mean of 4000 draws vs masked exact: {error}");

    let exact = attend_ok(&[&"--method", &"exact", q, k, v, &"-o", &out]);
    let masked = attend_ok(&[
        &"--method",
        &"exact",
        &"--mask",
        &mask_path,
        q,
        k,
        v,
        &"-o",
        &out,
    ]);
    let norm = |x: &[f32]| x.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let diff: Vec<f32> = masked.iter().zip(&exact).map(|(a, b)| a - b).collect();
    let change = norm(&diff) / norm(&masked);
    assert!(
        change > 0.1,
        "the mask changes exact attention by more than the tolerance: {change}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--scaled-noise` changes sampled lara and ra (drawn and given `--eps`) and is refused for
/// exact, rfa and eval mode with exit code 2.
#[test]
fn scaled_noise_changes_sampled_lara_and_ra() {
    let dir = temp_dir("scaled-noise");
    let (n, d) = (20, 16);
    let inputs = [
        write_f32(&dir, "q.npy", &[n, d], &data(n * d, 41)),
        write_f32(&dir, "k.npy", &[n, d], &data(n * d, 42)),
        write_f32(&dir, "v.npy", &[n, d], &data(n * d, 43)),
    ];
    let [q, k, v] = &inputs;
    let out = dir.join("out.npy");
    let c = 5;
    let lara_eps = write_f32(&dir, "eps_lara.npy", &[c, d], &data(c * d, 44));
    let ra_eps = write_f32(&dir, "eps_ra.npy", &[n, d], &data(n * d, 45));
    let c_text = c.to_string();
    let configurations: [&[&dyn AsRef<OsStr>]; 4] = [
        &[
            &"--method",
            &"lara",
            &"--landmarks",
            &c_text,
            &"--mode",
            &"sampled",
        ],
        &[
            &"--method",
            &"lara",
            &"--landmarks",
            &c_text,
            &"--eps",
            &lara_eps,
        ],
        &[
            &"--method",
            &"ra",
            &"--mode",
            &"sampled",
            &"--ra-mean",
            &"-1",
        ],
        &[&"--method", &"ra", &"--eps", &ra_eps],
    ];
    for options in configurations {
        let mut args = options.to_vec();
        let tail: [&dyn AsRef<OsStr>; 7] = [&"--seed", &"9", q, k, v, &"-o", &out];
        args.extend(tail);
        let official = attend_ok(&args);
        args.insert(0, &"--scaled-noise");
        let scaled = attend_ok(&args);
        assert!(
            max_abs_diff(&official, &scaled) > 1e-4,
            "{:?}: --scaled-noise changes the output",
            args.iter().map(|a| a.as_ref()).collect::<Vec<_>>()
        );
    }

    let refused: [(&str, &[&str], &str); 4] = [
        ("exact", &["--method", "exact"], "--scaled-noise applies"),
        ("rfa", &["--method", "rfa"], "--scaled-noise applies"),
        (
            "rfa-trig",
            &["--method", "rfa-trig"],
            "--scaled-noise applies",
        ),
        ("lara eval", &["--method", "lara"], "sampled mode"),
    ];
    for (label, options, message) in refused {
        let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"--scaled-noise"];
        args.extend(options.iter().map(|o| -> &dyn AsRef<OsStr> { o }));
        let tail: [&dyn AsRef<OsStr>; 5] = [q, k, v, &"-o", &out];
        args.extend(tail);
        attend_fails(label, &args, &out, message);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--proposals antithetic` and `two` run and differ from single proposals with the same seed;
/// `two` with a given `--eps` takes `[2C', d]` rows (also head by head for `[h, n, d]`) and
/// refuses `[C', d]`; `--proposals` is refused for other methods.
#[test]
fn lara_proposals_run_and_differ() {
    let dir = temp_dir("proposals");
    let (h, n, d, c) = (2, 18, 8, 4);
    let inputs = [
        write_f32(&dir, "q.npy", &[h, n, d], &data(h * n * d, 51)),
        write_f32(&dir, "k.npy", &[h, n, d], &data(h * n * d, 52)),
        write_f32(&dir, "v.npy", &[h, n, d], &data(h * n * d, 53)),
    ];
    let [q, k, v] = &inputs;
    let out = dir.join("out.npy");
    let c_text = c.to_string();
    let sampled = |proposals: &str| {
        attend_ok(&[
            &"--method",
            &"lara",
            &"--mode",
            &"sampled",
            &"--landmarks",
            &c_text,
            &"--proposals",
            &proposals,
            &"--seed",
            &"11",
            q,
            k,
            v,
            &"-o",
            &out,
        ])
    };
    let single = sampled("single");
    let antithetic = sampled("antithetic");
    let two = sampled("two");
    assert_eq!(single.len(), h * n * d);
    assert!(max_abs_diff(&single, &antithetic) > 1e-4);
    assert!(max_abs_diff(&single, &two) > 1e-4);
    assert!(max_abs_diff(&antithetic, &two) > 1e-4);

    // Given noise: two samples per landmark take [h, 2C', d].
    let eps2 = write_f32(&dir, "eps2.npy", &[h, 2 * c, d], &data(h * 2 * c * d, 54));
    let eps1 = write_f32(&dir, "eps1.npy", &[h, c, d], &data(h * c * d, 55));
    let with_eps = |proposals: &str, eps: &Path| {
        attend(&[
            &"--method",
            &"lara",
            &"--landmarks",
            &c_text,
            &"--proposals",
            &proposals,
            &"--eps",
            &eps,
            q,
            k,
            v,
            &"-o",
            &out,
        ])
    };
    let result = with_eps("two", &eps2);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let result = with_eps("antithetic", &eps1);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let _ = std::fs::remove_file(&out);
    let result = with_eps("two", &eps1);
    let stderr = text(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("2C', d"), "{stderr:?}");
    assert!(!out.exists());

    attend_fails(
        "exact",
        &[
            &"--method",
            &"exact",
            &"--proposals",
            &"two",
            q,
            k,
            v,
            &"-o",
            &out,
        ],
        &out,
        "--proposals applies",
    );
    attend_fails(
        "lara eval",
        &[
            &"--method",
            &"lara",
            &"--proposals",
            &"antithetic",
            q,
            k,
            v,
            &"-o",
            &out,
        ],
        &out,
        "sampled mode",
    );
    attend_fails(
        "bad name",
        &[
            &"--method",
            &"lara",
            &"--proposals",
            &"three",
            q,
            k,
            v,
            &"-o",
            &out,
        ],
        &out,
        "unknown --proposals",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--rfa-log-space` runs, prints a finite error with `--compare exact` (also with a mask, against
/// masked exact attention) and is refused with rfa-trig and with `--causal`.
#[test]
fn rfa_log_space_compares_with_exact() {
    let dir = temp_dir("rfa-log-space");
    let (n, d) = (32, 8);
    let inputs = [
        write_f32(&dir, "q.npy", &[n, d], &data(n * d, 61)),
        write_f32(&dir, "k.npy", &[n, d], &data(n * d, 62)),
        write_f32(&dir, "v.npy", &[n, d], &data(n * d, 63)),
    ];
    let [q, k, v] = &inputs;
    let out = dir.join("out.npy");
    let mask: Vec<bool> = (0..n).map(|j| j >= n - 5).collect();
    let mask_path = write_bool(&dir, "mask.npy", &[n], &mask);

    let result = attend(&[
        &"--method",
        &"rfa",
        &"--rfa-log-space",
        &"--features",
        &"64",
        &"--compare",
        &"exact",
        q,
        k,
        v,
        &"-o",
        &out,
    ]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let error = printed_error(&result.stdout, "exact");
    assert!(error.is_finite() && (0.0..1.0).contains(&error), "{error}");
    let log_space = npy::read_f32(&out).expect("the tool writes a valid .npy");
    assert_eq!(log_space.shape, [n, d]);
    let official = attend_ok(&[
        &"--method",
        &"rfa",
        &"--features",
        &"64",
        q,
        k,
        v,
        &"-o",
        &out,
    ]);
    assert_ne!(log_space.data, official, "log space is another estimator");

    // Without -o, with a mask: the error against masked exact attention.
    let result = attend(&[
        &"--method",
        &"rfa",
        &"--rfa-log-space",
        &"--mask",
        &mask_path,
        &"--compare",
        &"exact",
        q,
        k,
        v,
    ]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let error = printed_error(&result.stdout, "masked exact");
    assert!(error.is_finite() && (0.0..1.0).contains(&error), "{error}");

    attend_fails(
        "rfa-trig",
        &[
            &"--method",
            &"rfa-trig",
            &"--rfa-log-space",
            q,
            k,
            v,
            &"-o",
            &out,
        ],
        &out,
        "--rfa-log-space applies to --method rfa only",
    );
    attend_fails(
        "causal",
        &[
            &"--method",
            &"rfa",
            &"--rfa-log-space",
            &"--causal",
            q,
            k,
            v,
            &"-o",
            &out,
        ],
        &out,
        "--causal",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad mask files and mask options are refused with exit code 2 and a message, never a panic:
/// a wrong length, a wrong head count, an unsupported dtype, a NaN, every key masked (for one
/// head of a per-head mask too, and with ra), a truncated file, and `--mask` with `--causal`.
#[test]
fn bad_masks_exit_with_code_2() {
    let dir = temp_dir("bad-mask");
    let (h, n, d) = (2, 6, 4);
    let inputs = [
        write_f32(&dir, "q.npy", &[n, d], &data(n * d, 71)),
        write_f32(&dir, "k.npy", &[n, d], &data(n * d, 72)),
        write_f32(&dir, "v.npy", &[n, d], &data(n * d, 73)),
    ];
    let inputs3 = [
        write_f32(&dir, "q3.npy", &[h, n, d], &data(h * n * d, 74)),
        write_f32(&dir, "k3.npy", &[h, n, d], &data(h * n * d, 75)),
        write_f32(&dir, "v3.npy", &[h, n, d], &data(h * n * d, 76)),
    ];
    let out = dir.join("out.npy");
    let some = [true, false, false, true, false, false];

    let long = write_bool(&dir, "long.npy", &[n + 1], &[false; 7]);
    let heads = write_bool(&dir, "heads.npy", &[3, n], &[false; 18]);
    let float64 = dir.join("float64.npy");
    std::fs::write(&float64, npy_bytes("<f8", &[n], &[0u8; 48])).expect("write");
    let nan = write_f32(&dir, "nan.npy", &[n], &[0.0, f32::NAN, 0.0, 0.0, 0.0, 0.0]);
    let all = write_bool(&dir, "all.npy", &[n], &[true; 6]);
    let all_i4 = write_i32(&dir, "all_i4.npy", &[n], &[1, 2, 3, 4, 5, 6]);
    let one_head_all: Vec<bool> = some.iter().copied().chain([true; 6]).collect();
    let head_all = write_bool(&dir, "head_all.npy", &[h, n], &one_head_all);
    let truncated = dir.join("truncated.npy");
    let full = npy_bytes("|b1", &[n], &[0u8; 6]);
    std::fs::write(&truncated, &full[..full.len() - 2]).expect("write");
    let good = write_bool(&dir, "good.npy", &[n], &some);

    let cases: [(&str, &str, &Path, bool, &str); 10] = [
        ("wrong length", "exact", &long, false, "expected [n_k = 6]"),
        (
            "wrong heads",
            "lara",
            &heads,
            true,
            "expected [n_k] or [h = 2, n_k]",
        ),
        (
            "2-D mask, 2-D inputs",
            "rfa",
            &head_all,
            false,
            "expected [n_k]",
        ),
        ("float64", "exact", &float64, false, "dtype '<f8'"),
        ("NaN", "rfa-trig", &nan, false, "NaN"),
        ("all masked", "exact", &all, false, "masks every key"),
        ("all masked i4", "lara", &all_i4, false, "masks every key"),
        ("one head all masked", "rfa", &head_all, true, "head 1"),
        ("truncated", "exact", &truncated, false, "payload has"),
        ("ra all masked", "ra", &all, false, "masks every key"),
    ];
    for (label, method, mask, stacked, message) in cases {
        let [q, k, v] = if stacked { &inputs3 } else { &inputs };
        attend_fails(
            label,
            &[&"--method", &method, &"--mask", &mask, q, k, v, &"-o", &out],
            &out,
            message,
        );
    }
    let [q, k, v] = &inputs;
    attend_fails(
        "causal",
        &[
            &"--method",
            &"exact",
            &"--causal",
            &"--mask",
            &good,
            q,
            k,
            v,
            &"-o",
            &out,
        ],
        &out,
        "--mask cannot be used with --causal",
    );
    // The good mask itself is accepted.
    let masked = attend_ok(&[
        &"--method",
        &"exact",
        &"--mask",
        &good,
        q,
        k,
        v,
        &"-o",
        &out,
    ]);
    assert_eq!(masked.len(), n * d);
    let _ = std::fs::remove_dir_all(&dir);
}

// --- `--layer`: whole layers on the golden layer cases of `tests/data/layers` ---

/// The layer manifest the repository carries.
fn layer_manifest() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/layers/manifest.json");
    let text = std::fs::read_to_string(&path).expect("read the layer manifest");
    serde_json::from_str(&text).expect("the layer manifest is JSON")
}

/// The case `id` of the layer manifest.
fn layer_case(manifest: &serde_json::Value, id: &str) -> serde_json::Value {
    manifest["cases"]
        .as_array()
        .expect("a cases array")
        .iter()
        .find(|case| case["id"] == id)
        .unwrap_or_else(|| panic!("no layer case {id}"))
        .clone()
}

/// The folder of a layer case.
fn case_dir(case: &serde_json::Value) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/layers")
        .join(case["dir"].as_str().expect("a case dir"))
}

/// A file of a layer case, by its manifest entry (e.g. `output["file"]`).
fn case_file(case: &serde_json::Value, file: &serde_json::Value) -> PathBuf {
    case_dir(case).join(file.as_str().expect("a file name"))
}

/// The case's `state_dict` copied into `dir/<name>` as `<key>.npy` files (the golden run's
/// `omega.npy` as `eval_proj`, as `tests/support/golden.rs` does), without `config.json`.
fn copy_weights(case: &serde_json::Value, dir: &Path, name: &str) -> PathBuf {
    let weights = dir.join(name);
    std::fs::create_dir_all(&weights).expect("create the weights folder");
    for (key, tensor) in case["weights"].as_object().expect("a weights object") {
        std::fs::copy(
            case_file(case, &tensor["file"]),
            weights.join(format!("{key}.npy")),
        )
        .expect("copy a weight");
    }
    if !case["omega"].is_null() {
        std::fs::copy(
            case_file(case, &case["omega"]),
            weights.join("eval_proj.npy"),
        )
        .expect("copy omega");
    }
    weights
}

/// The case's `config.json`: `{"module": .., "config": {kwargs}}`.
fn config_json(case: &serde_json::Value) -> String {
    serde_json::json!({"module": case["module"], "config": case["config"]}).to_string()
}

/// The `MultiheadAttention` arguments of a case's layer (its `dim` and `num_heads`).
fn softmax_kwargs(case: &serde_json::Value) -> String {
    let config = &case["config"];
    serde_json::json!({"dim": config["dim"], "num_heads": config["num_heads"]}).to_string()
}

/// `max|out − golden|` and the manifest's tolerance `max(1e-5·max|golden|, 2·f32_vs_f64)`.
fn layer_error(out: &[f32], golden: &[f32], output: &serde_json::Value) -> (f64, f64) {
    assert_eq!(out.len(), golden.len());
    let max_abs = out
        .iter()
        .zip(golden)
        .map(|(&x, &g)| (f64::from(x) - f64::from(g)).abs())
        .fold(0.0, f64::max);
    let max_golden = golden
        .iter()
        .map(|&g| f64::from(g).abs())
        .fold(0.0, f64::max);
    let f32_vs_f64 = output["f32_vs_f64_max_abs"]
        .as_f64()
        .expect("f32_vs_f64_max_abs");
    (max_abs, (1e-5 * max_golden).max(2.0 * f32_vs_f64))
}

/// Every output of every case of `tests/data/layers` through `attend --layer` (eval, with the
/// stored `--eps` noise, with the stored `--mask`) matches its golden file within the
/// manifest's tolerance, and out.npy has the shape of x (`[n, dim]` or `[H, W, dim]`). The
/// configuration comes in turn from `WEIGHTS_DIR/config.json`, `--config FILE` and
/// `--module NAME --kwargs JSON`; every module, 1-D and 2-D, is covered.
#[test]
fn layer_outputs_match_the_golden_files() {
    let dir = temp_dir("layer-golden");
    let manifest = layer_manifest();
    let cases = manifest["cases"].as_array().expect("a cases array");
    let out = dir.join("out.npy");
    let mut checked = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let id = case["id"].as_str().expect("a case id");
        let module = case["module"].as_str().expect("a module");
        let weights = copy_weights(case, &dir, id);
        let kwargs = case["config"].to_string();
        let config_file = dir.join(format!("{id}.json"));
        let source: Vec<&dyn AsRef<OsStr>> = match index % 3 {
            0 => {
                std::fs::write(weights.join("config.json"), config_json(case)).expect("write");
                vec![]
            }
            1 => {
                std::fs::write(&config_file, config_json(case)).expect("write");
                vec![&"--config", &config_file]
            }
            _ => vec![&"--module", &module, &"--kwargs", &kwargs],
        };
        let x = case_file(case, &case["input"]);
        for output in case["outputs"].as_array().expect("outputs") {
            let name = output["name"].as_str().expect("an output name");
            let mask = output
                .get("key_padding_mask")
                .map(|file| case_file(case, file));
            let eps = output.get("eps").map(|file| case_file(case, file));
            let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"--layer", &weights];
            args.extend(source.iter().copied());
            if let Some(mask) = &mask {
                args.extend([&"--mask" as &dyn AsRef<OsStr>, mask]);
            }
            if let Some(eps) = &eps {
                args.extend([&"--eps" as &dyn AsRef<OsStr>, eps]);
            }
            args.extend([&x as &dyn AsRef<OsStr>, &"-o", &out]);
            let result = attend(&args);
            assert!(
                result.status.success(),
                "{id}/{name}: {}",
                text(&result.stderr)
            );
            let ours = npy::read_f32(&out).expect("the tool writes a valid .npy");
            let input = npy::read_f32(&x).expect("read x");
            assert_eq!(
                ours.shape, input.shape,
                "{id}/{name}: out has the layout of x"
            );
            let golden = npy::read_f32(&case_file(case, &output["file"])).expect("read golden");
            let (max_abs, tolerance) = layer_error(&ours.data, &golden.data, output);
            assert!(
                max_abs <= tolerance,
                "{id}/{name}: max|out - golden| = {max_abs:e} > {tolerance:e}"
            );
            checked.push((
                module.to_string(),
                input.shape.len(),
                mask.is_some(),
                eps.is_some(),
            ));
        }
    }
    // The coverage the cases promise: every module, a grid, a mask and noise.
    for module in [
        "MultiheadAttention",
        "LinearRA",
        "RandomizedAttention",
        "KernelizedAttention",
    ] {
        assert!(checked.iter().any(|c| c.0 == module), "{module}");
    }
    assert!(
        checked.iter().any(|c| c.0 == "LinearRA" && c.1 == 3),
        "a grid"
    );
    assert!(checked.iter().any(|c| c.0 == "LinearRA" && c.2), "a mask");
    assert!(checked.iter().any(|c| c.1 == 2 && c.3), "1-D noise");
    assert!(checked.iter().any(|c| c.1 == 3 && c.3), "2-D noise");
    assert!(checked.iter().any(|c| c.0 == "MultiheadAttention" && c.2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--compare softmax-layer` prints the relative Frobenius error against the same weights run
/// as `MultiheadAttention`: 0 for `MultiheadAttention` itself (with and without a mask), and
/// for `LinearRA` the error between the two layers' written outputs.
#[test]
fn layer_compare_softmax_layer() {
    let dir = temp_dir("layer-compare");
    let manifest = layer_manifest();

    let softmax = layer_case(&manifest, "softmax_masked_n50");
    let weights = copy_weights(&softmax, &dir, "softmax");
    let kwargs = softmax["config"].to_string();
    let x = case_file(&softmax, &softmax["input"]);
    let mask = case_file(&softmax, &softmax["outputs"][1]["key_padding_mask"]);
    let common: [&dyn AsRef<OsStr>; 7] = [
        &"--layer",
        &weights,
        &"--module",
        &"MultiheadAttention",
        &"--kwargs",
        &kwargs,
        &x,
    ];
    let mut args = common.to_vec();
    args.extend([&"--compare" as &dyn AsRef<OsStr>, &"softmax-layer"]);
    let result = attend(&args);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let error = printed_error(&result.stdout, "softmax layer");
    assert!((0.0..=1e-6).contains(&error), "{error}");
    args.extend([&"--mask" as &dyn AsRef<OsStr>, &mask]);
    let result = attend(&args);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let error = printed_error(&result.stdout, "masked softmax layer");
    assert!((0.0..=1e-6).contains(&error), "{error}");

    // LinearRA: the printed error is that of its output against the MultiheadAttention run.
    let lara = layer_case(&manifest, "lara1d_noparam_mis-opt_n6_C8");
    let weights = copy_weights(&lara, &dir, "lara");
    std::fs::write(weights.join("config.json"), config_json(&lara)).expect("write");
    let x = case_file(&lara, &lara["input"]);
    let (lara_out, softmax_out) = (dir.join("lara.npy"), dir.join("softmax.npy"));
    let result = attend(&[
        &"--layer",
        &weights,
        &"--compare",
        &"softmax-layer",
        &x,
        &"-o",
        &lara_out,
    ]);
    assert!(result.status.success(), "{}", text(&result.stderr));
    let printed = printed_error(&result.stdout, "softmax layer");
    let lara_out = npy::read_f32(&lara_out).expect("read").data;
    let softmax_out = attend_ok(&[
        &"--layer",
        &weights,
        &"--module",
        &"MultiheadAttention",
        &"--kwargs",
        &softmax_kwargs(&lara),
        &x,
        &"-o",
        &softmax_out,
    ]);
    let (diff, norm) =
        lara_out
            .iter()
            .zip(&softmax_out)
            .fold((0.0f64, 0.0f64), |(d, n), (&o, &r)| {
                let (o, r) = (f64::from(o), f64::from(r));
                (d + (o - r).powi(2), n + r * r)
            });
    let expected = (diff / norm).sqrt();
    assert!(printed > 1e-3, "LinearRA differs from softmax: {printed}");
    assert!(
        (printed - expected).abs() <= 1e-5 * expected,
        "printed {printed}, computed {expected}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sampled mode with drawn noise: `--seed` makes it reproducible, another seed changes it,
/// `--draws 2` averages (reproducibly); `--draws` without randomness is refused.
#[test]
fn layer_sampled_mode_draws_from_the_seed() {
    let dir = temp_dir("layer-sampled");
    let manifest = layer_manifest();
    let case = layer_case(&manifest, "lara2d_pool_light_H5W7_C9");
    let weights = copy_weights(&case, &dir, "weights");
    std::fs::write(weights.join("config.json"), config_json(&case)).expect("write");
    let x = case_file(&case, &case["input"]);
    let out = dir.join("out.npy");
    let sampled = |seed: &str, draws: &str| {
        attend_ok(&[
            &"--layer", &weights, &"--mode", &"sampled", &"--seed", &seed, &"--draws", &draws, &x,
            &"-o", &out,
        ])
    };
    let eval = attend_ok(&[&"--layer", &weights, &x, &"-o", &out]);
    let one = sampled("1", "1");
    assert_eq!(one, sampled("1", "1"), "one seed, one output");
    assert_ne!(one, eval, "sampled mode adds noise");
    assert_ne!(one, sampled("2", "1"), "another seed, other noise");
    let two = sampled("1", "2");
    assert_eq!(two, sampled("1", "2"));
    assert_ne!(two, one);
    attend_fails(
        "draws in eval mode",
        &[&"--layer", &weights, &"--draws", &"2", &x, &"-o", &out],
        &out,
        "--draws 2 needs a random estimator: --mode sampled without --eps",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad weights, inputs and option combinations in layer mode: exit code 2, one message naming
/// the problem (the tensor's key for a missing, mis-shaped or non-finite weight), nothing
/// written.
#[test]
fn layer_errors_exit_with_code_2() {
    let dir = temp_dir("layer-errors");
    let manifest = layer_manifest();
    let case = layer_case(&manifest, "lara2d_pool_light_H5W7_C9");
    let kwargs = case["config"].to_string();
    let x = case_file(&case, &case["input"]);
    let out = dir.join("out.npy");
    let run_with = |label: &str, weights: &Path, extra: &[&dyn AsRef<OsStr>], message: &str| {
        let mut args: Vec<&dyn AsRef<OsStr>> = vec![
            &"--layer",
            &weights,
            &"--module",
            &"LinearRA",
            &"--kwargs",
            &kwargs,
        ];
        args.extend(extra.iter().copied());
        args.extend([&x as &dyn AsRef<OsStr>, &"-o", &out]);
        attend_fails(label, &args, &out, message);
    };

    // Missing tensors: the bias of qkv, a generator's weight.
    for key in ["qkv.bias", "q_bar_gen.2.weight"] {
        let weights = copy_weights(&case, &dir, &format!("missing-{key}"));
        std::fs::remove_file(weights.join(format!("{key}.npy"))).expect("remove");
        run_with(
            key,
            &weights,
            &[],
            &format!("the weights have no tensor {key}"),
        );
    }
    // Mis-shaped tensors: another shape with the same number of elements, and another length.
    let weights = copy_weights(&case, &dir, "transposed");
    write_f32(&weights, "qkv.weight.npy", &[32, 96], &data(96 * 32, 1));
    run_with("transposed", &weights, &[], "qkv.weight: shape [32, 96]");
    let weights = copy_weights(&case, &dir, "short");
    write_f32(&weights, "proj.bias.npy", &[31], &data(31, 2));
    run_with("short", &weights, &[], "proj.bias: shape [31]");
    let weights = copy_weights(&case, &dir, "nan");
    let mut bias = data(32, 3);
    bias[5] = f32::NAN;
    write_f32(&weights, "k_bar_gen.3.bias.npy", &[32 / 2], &bias[..16]);
    run_with("nan", &weights, &[], "k_bar_gen.3.bias holds a NaN");
    let weights = copy_weights(&case, &dir, "float64");
    std::fs::write(
        weights.join("proj.bias.npy"),
        npy_bytes("<f8", &[32], &[0u8; 256]),
    )
    .expect("write");
    run_with("float64", &weights, &[], "'<f8'");

    // Good weights, bad inputs, options and configurations.
    let weights = copy_weights(&case, &dir, "good");
    let x1d = write_f32(&dir, "x1d.npy", &[35, 32], &data(35 * 32, 4));
    let x_wrong_dim = write_f32(&dir, "x31.npy", &[35, 31], &data(35 * 31, 5));
    let eps_wrong = write_f32(&dir, "eps.npy", &[2, 8, 16], &data(2 * 8 * 16, 6));
    let mask_wrong = write_bool(&dir, "mask.npy", &[34], &[false; 34]);
    let softmax_1d = r#"{"dim": 32, "num_heads": 2}"#;
    let config = dir.join("config.json");
    std::fs::write(&config, config_json(&case)).expect("write");
    let k = x1d.clone();
    let cases: [(&str, Vec<&dyn AsRef<OsStr>>, &str); 16] = [
        (
            "no config",
            vec![&"--layer", &weights, &x, &"-o", &out],
            "config.json: give the configuration with --config FILE or --module NAME",
        ),
        (
            "x of another dim",
            vec![
                &"--layer",
                &weights,
                &"--config",
                &config,
                &x_wrong_dim,
                &"-o",
                &out,
            ],
            "with dim = 32",
        ),
        (
            "eps of another shape",
            vec![
                &"--layer",
                &weights,
                &"--config",
                &config,
                &"--eps",
                &eps_wrong,
                &x,
                &"-o",
                &out,
            ],
            "expected [h, R, d] = [2, 9, 16]",
        ),
        (
            "mask of another length",
            vec![
                &"--layer",
                &weights,
                &"--config",
                &config,
                &"--mask",
                &mask_wrong,
                &x,
                &"-o",
                &out,
            ],
            "expected [n_k = 35]",
        ),
        (
            "a misspelt argument",
            vec![
                &"--layer",
                &weights,
                &"--module",
                &"LinearRA",
                &"--kwargs",
                &r#"{"dim": 32, "num_heads": 2, "num_landmark": 8}"#,
                &x1d,
                &"-o",
                &out,
            ],
            "unknown argument \"num_landmark\"",
        ),
        (
            "sampled softmax",
            vec![
                &"--layer",
                &weights,
                &"--module",
                &"MultiheadAttention",
                &"--kwargs",
                &softmax_1d,
                &"--mode",
                &"sampled",
                &x1d,
                &"-o",
                &out,
            ],
            "MultiheadAttention has no sampled mode",
        ),
        (
            "--method",
            vec![&"--layer", &weights, &"--method", &"lara", &x, &"-o", &out],
            "--method and --layer are two modes",
        ),
        (
            "k and v",
            vec![
                &"--layer",
                &weights,
                &"--config",
                &config,
                &x,
                &k,
                &k,
                &"-o",
                &out,
            ],
            "--layer takes one input file x.npy",
        ),
        (
            "--landmarks",
            vec![
                &"--layer",
                &weights,
                &"--config",
                &config,
                &"--landmarks",
                &"4",
                &x,
                &"-o",
                &out,
            ],
            "--landmarks cannot be used with --layer",
        ),
        (
            "--compare exact",
            vec![
                &"--layer",
                &weights,
                &"--config",
                &config,
                &"--compare",
                &"exact",
                &x,
            ],
            "with --layer use --compare softmax-layer",
        ),
        (
            "--compare softmax-layer without --layer",
            vec![
                &"--method",
                &"exact",
                &"--compare",
                &"softmax-layer",
                &x1d,
                &k,
                &k,
            ],
            "--compare softmax-layer compares a whole layer (--layer)",
        ),
        (
            "--config and --module",
            vec![
                &"--layer",
                &weights,
                &"--config",
                &config,
                &"--module",
                &"LinearRA",
                &"--kwargs",
                &kwargs,
                &x,
                &"-o",
                &out,
            ],
            "use one",
        ),
        (
            "--module alone",
            vec![
                &"--layer",
                &weights,
                &"--module",
                &"LinearRA",
                &x,
                &"-o",
                &out,
            ],
            "--module and --kwargs must be given together",
        ),
        (
            "--kwargs not JSON",
            vec![
                &"--layer",
                &weights,
                &"--module",
                &"LinearRA",
                &"--kwargs",
                &"{dim: 32}",
                &x,
                &"-o",
                &out,
            ],
            "--kwargs: not JSON",
        ),
        (
            "unknown module",
            vec![
                &"--layer",
                &weights,
                &"--module",
                &"Linformer",
                &"--kwargs",
                &kwargs,
                &x,
                &"-o",
                &out,
            ],
            "module \"Linformer\"",
        ),
        (
            "--config outside --layer",
            vec![
                &"--method",
                &"exact",
                &"--config",
                &config,
                &x1d,
                &k,
                &k,
                &"-o",
                &out,
            ],
            "--config / --module / --kwargs configure --layer",
        ),
    ];
    for (label, args, message) in cases {
        attend_fails(label, &args, &out, message);
    }

    // The usage documents layer mode.
    let result = attend(&[&"--help"]);
    assert!(result.status.success());
    let usage = text(&result.stdout);
    for option in [
        "--layer WEIGHTS_DIR",
        "--kwargs JSON",
        "--compare softmax-layer",
    ] {
        assert!(usage.contains(option), "{option}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// --int8: the int8 kernels (`lara_attn::int8`) on inputs quantised per tensor.

/// `x` quantised with the crate's per-tensor max-abs scale: `(x_int, scale)`.
fn quantised(x: &[f32]) -> (Vec<i8>, f32) {
    let scale = int8::scale_for(x);
    let mut out = vec![0i8; x.len()];
    int8::quantize(x, scale, &mut out);
    (out, scale)
}

/// `x` quantised as [`quantised`] and dequantised.
fn round_trip(x: &[f32]) -> Vec<f32> {
    let (x8, scale) = quantised(x);
    let mut out = vec![0.0; x.len()];
    int8::dequantize(&x8, scale, &mut out);
    out
}

fn relative_error(out: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(out.len(), reference.len());
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (&x, &r) in out.iter().zip(reference) {
        diff += (f64::from(x) - f64::from(r)).powi(2);
        norm += f64::from(r).powi(2);
    }
    (diff / norm).sqrt()
}

/// `data [parts, ..]`'s part `index`.
fn part_of<T>(data: &[T], parts: usize, index: usize) -> &[T] {
    let len = data.len() / parts;
    &data[index * len..][..len]
}

/// One call of an int8 kernel: the shape, `Some(head)` (or `None` for every head) and the key
/// mask.
type Call<'a> = (Shape, Option<usize>, Option<&'a [bool]>);

/// A list of arguments of the tool.
type Args<'a> = Vec<&'a dyn AsRef<OsStr>>;

/// The key padding mask of an `--int8` run: `[n_k]` for every head or `[h, n_k]`.
#[derive(Clone)]
enum TestMask {
    None,
    Shared(Vec<bool>),
    PerHead(Vec<bool>),
}

impl TestMask {
    /// The calls the tool makes: `(shape, Some(head) or None for every head, key mask)`.
    fn calls(&self, shape: Shape) -> Vec<Call<'_>> {
        match self {
            TestMask::None => vec![(shape, None, None)],
            TestMask::Shared(mask) => vec![(shape, None, Some(&mask[..]))],
            TestMask::PerHead(mask) => (0..shape.heads)
                .map(|h| {
                    let one = shape.with_heads(1);
                    (one, Some(h), Some(part_of(mask, shape.heads, h)))
                })
                .collect(),
        }
    }
}

/// `data [h, ..]` for one call of [`TestMask::calls`].
fn for_call<T>(data: &[T], heads: usize, head: Option<usize>) -> &[T] {
    head.map_or(data, |h| part_of(data, heads, h))
}

/// The estimator of an `--int8` run with its auxiliary `f32` inputs stacked `[h, ..]`.
#[derive(Clone)]
enum Int8Spec {
    Exact,
    Lara {
        weighting: lara::Weighting,
        /// `--landmarks C`, or the count of the given landmarks.
        landmarks: usize,
        /// Given landmarks `(q̄, k̄)`, `[h, C, d]` each.
        given: Option<(Vec<f32>, Vec<f32>)>,
        /// The noise of sampled mode `[h, R, d]`.
        eps: Option<Vec<f32>>,
        proposals: lara::Proposals,
        noise_scale: NoiseScale,
    },
    Rfa {
        omega: Vec<f32>,
        features: usize,
    },
}

impl Int8Spec {
    fn method(&self) -> &'static str {
        match self {
            Int8Spec::Exact => "exact",
            Int8Spec::Lara { .. } => "lara",
            Int8Spec::Rfa { .. } => "rfa",
        }
    }

    /// The crate's int8 kernel, called directly on the quantised inputs with the output scale
    /// `out_scale` (as the tool calls it: one call for every head, or one per head with a
    /// per-head mask).
    fn int8(&self, shape: Shape, mask: &TestMask, qkv: [&[f32]; 3], out_scale: f32, out: Out<'_>) {
        let h = shape.heads;
        let [(q, sq), (k, sk), (v, sv)] = qkv.map(quantised);
        let scales = Scales {
            q: sq,
            k: sk,
            v: sv,
            out: out_scale,
        };
        let calls = mask.calls(shape);
        let outs: Vec<Out<'_>> = match out {
            Out::F32(o) => o
                .chunks_exact_mut(o.len() / calls.len())
                .map(Out::F32)
                .collect(),
            Out::I8(o) => o
                .chunks_exact_mut(o.len() / calls.len())
                .map(Out::I8)
                .collect(),
        };
        for ((call_shape, head, key_mask), out) in calls.into_iter().zip(outs) {
            let x = int8::Qkv {
                shape: call_shape,
                q: for_call(&q, h, head),
                k: for_call(&k, h, head),
                v: for_call(&v, h, head),
                key_mask,
            };
            match self {
                Int8Spec::Exact => {
                    let plan = int8::exact::Plan::new(shape.dim, &scales).expect("plan");
                    let mut scratch = vec![0i32; int8::exact::scratch_len(call_shape)];
                    int8::exact::attention(&plan, &x, out, &mut scratch).expect("int8 exact");
                }
                Int8Spec::Lara {
                    weighting,
                    landmarks,
                    given,
                    eps,
                    proposals,
                    noise_scale,
                } => {
                    let given8 = given
                        .as_ref()
                        .map(|(qb, kb)| (quantised(qb), quantised(kb)));
                    let eps8 = eps.as_deref().map(quantised);
                    let config = int8::lara::Config {
                        weighting: *weighting,
                        proposals: *proposals,
                        noise_scale: *noise_scale,
                        noise: eps8.as_ref().map(|e| e.1),
                        landmarks: given8.as_ref().map(|(qb, kb)| (qb.1, kb.1)),
                    };
                    let plan = int8::lara::Plan::new(shape.dim, &scales, &config).expect("plan");
                    let lm = match &given8 {
                        Some((qb, kb)) => int8::lara::Landmarks::Given {
                            count: *landmarks,
                            queries: for_call(&qb.0, h, head),
                            keys: for_call(&kb.0, h, head),
                        },
                        None => int8::lara::Landmarks::SegmentMeans(*landmarks),
                    };
                    let sampling = match &eps8 {
                        Some((e, _)) => int8::lara::Sampling::Noise(for_call(e, h, head)),
                        None => int8::lara::Sampling::Eval,
                    };
                    let mut scratch =
                        vec![0i32; int8::lara::scratch_len(call_shape, *landmarks, *proposals)];
                    int8::lara::attention(&plan, &x, lm, sampling, out, &mut scratch)
                        .expect("int8 lara");
                }
                Int8Spec::Rfa { omega, features } => {
                    let (omega8, omega_scale) = quantised(omega);
                    let plan = int8::rfa::Plan::new(shape.dim, &scales, omega_scale, *features)
                        .expect("plan");
                    let mut scratch = vec![0i32; int8::rfa::scratch_len(call_shape, *features)];
                    int8::rfa::attention(&plan, &x, for_call(&omega8, h, head), out, &mut scratch)
                        .expect("int8 rfa");
                }
            }
        }
    }

    /// The same estimator in `f32` on `q`, `k`, `v` and the auxiliary inputs, these as given
    /// or quantised and dequantised (`dequantised`).
    fn f32(&self, shape: Shape, mask: &TestMask, qkv: [&[f32]; 3], dequantised: bool) -> Vec<f32> {
        let h = shape.heads;
        let aux = |x: &[f32]| {
            if dequantised {
                round_trip(x)
            } else {
                x.to_vec()
            }
        };
        let mut out = vec![0.0f32; qkv[0].len() / shape.dim * shape.value_dim];
        let calls = mask.calls(shape);
        let part_len = out.len() / calls.len();
        for ((call_shape, head, key_mask), out) in
            calls.into_iter().zip(out.chunks_exact_mut(part_len))
        {
            let x = Qkv {
                shape: call_shape,
                q: for_call(qkv[0], h, head),
                k: for_call(qkv[1], h, head),
                v: for_call(qkv[2], h, head),
                key_mask,
            };
            match self {
                Int8Spec::Exact => {
                    let mut scratch = vec![0.0; exact::scratch_len(call_shape)];
                    exact::attention(&x, out, &mut scratch).expect("exact");
                }
                Int8Spec::Lara {
                    weighting,
                    landmarks,
                    given,
                    eps,
                    proposals,
                    noise_scale,
                } => {
                    let given = given.as_ref().map(|(qb, kb)| (aux(qb), aux(kb)));
                    let eps = eps.as_deref().map(aux);
                    let lm = match &given {
                        Some((qb, kb)) => lara::Landmarks::Given {
                            count: *landmarks,
                            queries: for_call(qb, h, head),
                            keys: for_call(kb, h, head),
                        },
                        None => lara::Landmarks::SegmentMeans(*landmarks),
                    };
                    let params = lara::Params::new(lm, *weighting)
                        .with_proposals(*proposals)
                        .with_noise_scale(*noise_scale);
                    let sampling = match &eps {
                        Some(e) => Sampling::Noise(for_call(e, h, head)),
                        None => Sampling::Eval,
                    };
                    let mut scratch =
                        vec![0.0; lara::scratch_len(call_shape, *landmarks, *proposals)];
                    lara::attention(&x, &params, sampling, out, &mut scratch).expect("lara");
                }
                Int8Spec::Rfa { omega, features } => {
                    let omega = aux(omega);
                    let map = rfa::FeatureMap::Positive;
                    let params = rfa::Params {
                        map,
                        omega: for_call(&omega, h, head),
                    };
                    let mut scratch = vec![0.0; rfa::scratch_len(call_shape, map, *features)];
                    rfa::attention(&x, &params, out, &mut scratch).expect("rfa");
                }
            }
        }
        out
    }
}

/// The `key=value` scales of the tool's `int8 <method>: scales ...` line on stderr.
fn printed_scales(stderr: &str) -> Vec<(String, f32)> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("int8 ") && l.contains(": scales "))
        .unwrap_or_else(|| panic!("no scales line in {stderr:?}"));
    line.split([' ', ';'])
        .filter_map(|word| word.split_once('='))
        .map(|(key, value)| {
            let value = value.trim_end_matches(',');
            let scale = value
                .parse()
                .unwrap_or_else(|_| panic!("scale {value:?} in {line:?}"));
            (key.to_string(), scale)
        })
        .collect()
}

/// The errors of one `--int8` run against the `f32` estimator: on the dequantised inputs (the
/// int8 kernel's own error) and on the `f32` inputs (with the quantisation of the inputs).
struct Int8Errors {
    /// The kernel's `f32` output (of this run, or the one an `i8` output is requantised from)
    /// against the `f32` estimator on the dequantised inputs: the bound is 2%.
    kernel: f64,
    /// The written output against the `f32` estimator on the `f32` inputs.
    f32_inputs: f64,
}

/// Runs `attend --method M --int8 [--int8-out] --compare exact,f32 EXTRA q k v -o out` and
/// checks: the output equals the crate's int8 kernel called directly, bit for bit (with
/// `--int8-out`, the `i8` output at the scale of the `f32` output's max-abs, dequantised); the
/// printed scales are the crate's `scale_for`; the three printed errors are those of the output
/// against exact attention and the `f32` estimator on the `f32` and the dequantised inputs;
/// the kernel's `f32` output is within 2% of the `f32` estimator on the dequantised inputs
/// (and the `i8` output within half a step of it).
#[allow(clippy::too_many_arguments)]
fn check_int8_run(
    label: &str,
    spec: &Int8Spec,
    shape: Shape,
    mask: &TestMask,
    paths: &[PathBuf; 3],
    qkv: [&[f32]; 3],
    extra: &[&dyn AsRef<OsStr>],
    int8_out: bool,
    out_path: &Path,
) -> Int8Errors {
    let method = spec.method();
    let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"--method", &method, &"--int8"];
    if int8_out {
        args.push(&"--int8-out");
    }
    args.extend_from_slice(&[&"--compare", &"exact,f32"]);
    args.extend_from_slice(extra);
    args.extend_from_slice(&[&paths[0], &paths[1], &paths[2], &"-o", &out_path]);
    let _ = std::fs::remove_file(out_path);
    let result = attend(&args);
    let stderr = text(&result.stderr);
    assert!(result.status.success(), "{label}: {stderr}");
    let written = npy::read_f32(out_path).expect("the tool writes a valid .npy");

    // The scales: the crate's max-abs scales of q, k, v (and of the auxiliary inputs).
    let scales = printed_scales(&stderr);
    let printed = |key: &str| {
        scales
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, s)| *s)
            .unwrap_or_else(|| panic!("{label}: no {key}= in {stderr:?}"))
    };
    for (key, x) in ["q", "k", "v"].iter().zip(qkv) {
        assert_eq!(printed(key), int8::scale_for(x), "{label}: scale of {key}");
    }

    // The crate's int8 kernel, called directly.
    let len = written.data.len();
    let mut f32_output = vec![0.0f32; len];
    let v_scale = int8::scale_for(qkv[2]);
    spec.int8(shape, mask, qkv, v_scale, Out::F32(&mut f32_output));
    let mut expected = f32_output.clone();
    if int8_out {
        let out_scale = int8::scale_for(&f32_output);
        assert_eq!(printed("out"), out_scale, "{label}: output scale");
        let mut out8 = vec![0i8; len];
        spec.int8(shape, mask, qkv, out_scale, Out::I8(&mut out8));
        int8::dequantize(&out8, out_scale, &mut expected);
        // The i8 output is the f32 output rounded to the output scale (no value saturates).
        let step = max_abs_diff(&expected, &f32_output) / out_scale;
        assert!(step <= 0.5 + 1e-3, "{label}: i8 output {step} steps off");
    }
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    assert_eq!(
        bits(&written.data),
        bits(&expected),
        "{label}: the tool's output is the int8 kernel's"
    );

    // The printed errors, and the 2% bound. The tool is the host's release build while this
    // test may run under another target (aarch64 in CI): its `f32` references then come from
    // another backend, equal within float rounding, which moves a relative error by at most the
    // references' relative distance (about 1e-7; hence the absolute term).
    let close = |printed: f64, computed: f64, what: &str| {
        assert!(
            (printed - computed).abs() <= 1e-5 * computed.abs() + 1e-6,
            "{label}: printed error vs {what} {printed}, computed {computed}"
        );
    };
    let exact_label = if matches!(mask, TestMask::None) {
        "exact"
    } else {
        "masked exact"
    };
    let exact_ref = Int8Spec::Exact.f32(shape, mask, qkv, false);
    close(
        printed_error(&result.stdout, exact_label),
        relative_error(&written.data, &exact_ref),
        exact_label,
    );
    let f32_label = format!("f32 {}", spec.method());
    let f32_inputs = relative_error(&written.data, &spec.f32(shape, mask, qkv, false));
    close(
        printed_error(&result.stdout, &f32_label),
        f32_inputs,
        &f32_label,
    );
    let dq = [round_trip(qkv[0]), round_trip(qkv[1]), round_trip(qkv[2])];
    let dq_ref = spec.f32(shape, mask, [&dq[0], &dq[1], &dq[2]], true);
    let dq_label = format!("{f32_label} on the dequantised inputs");
    close(
        printed_error(&result.stdout, &dq_label),
        relative_error(&written.data, &dq_ref),
        &dq_label,
    );
    // The kernel's f32 output (that of this run, or the one the i8 output was requantised
    // from): within 2% of the f32 estimator on the dequantised inputs.
    let kernel_error = relative_error(&f32_output, &dq_ref);
    assert!(
        kernel_error <= 0.02,
        "{label}: {kernel_error} vs {dq_label}"
    );
    Int8Errors {
        kernel: kernel_error,
        f32_inputs,
    }
}

/// A golden case's inputs: its folder, shape and `q`, `k`, `v`.
fn golden_case(dir: &Path) -> (Shape, [PathBuf; 3], [Vec<f32>; 3]) {
    let paths = ["q.npy", "k.npy", "v.npy"].map(|name| dir.join(name));
    let arrays = paths
        .clone()
        .map(|path| npy::read_f32(&path).expect("a golden input"));
    let (heads, n, d) = match arrays[0].shape[..] {
        [n, d] => (1, n, d),
        [h, n, d] => (h, n, d),
        ref other => panic!("shape {other:?}"),
    };
    let shape = Shape::self_attention(n, d).with_heads(heads);
    (shape, paths, arrays.map(|a| a.data))
}

fn golden_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/data/golden")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// `--int8` on every golden case (`tests/data/golden`): exact attention (f32 and i8 output),
/// LARA in eval mode (every weighting, `--alpha 2`) and sampled mode with the golden noise, RFA
/// with the golden `omega` (S = 16, 64; i8 output): the output is the crate's int8 kernel's,
/// bit for bit, within 2% of the `f32` estimator on the dequantised inputs; the printed scales
/// and errors are checked (`check_int8_run`).
#[test]
fn int8_matches_the_kernels_on_the_golden_inputs() {
    let dir = temp_dir("int8-golden");
    let out_path = dir.join("out.npy");
    let (mut worst_kernel, mut worst_f32) = ((0.0f64, String::new()), (0.0f64, String::new()));
    for case in golden_dirs() {
        let id = case
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .to_string();
        let (shape, paths, [q, k, v]) = golden_case(&case);
        let qkv = [&q[..], &k[..], &v[..]];
        let read = |name: &str| npy::read_f32(&case.join(name)).expect("golden").data;
        let lara = |weighting, landmarks: usize, eps: Option<Vec<f32>>| Int8Spec::Lara {
            weighting,
            landmarks,
            given: None,
            eps,
            proposals: lara::Proposals::Single,
            noise_scale: NoiseScale::Official,
        };
        let opt = |alpha_coeff| lara::Weighting::Optimal { alpha_coeff };
        let (eps4, eps8) = (case.join("eps_lara_C4.npy"), case.join("eps_lara_C8.npy"));
        let (omega16, omega64) = (case.join("omega_S16.npy"), case.join("omega_S64.npy"));
        let runs: Vec<(&str, Int8Spec, Args<'_>, bool)> = vec![
            ("exact", Int8Spec::Exact, vec![], false),
            ("exact i8", Int8Spec::Exact, vec![], true),
            (
                "lara C4 opt",
                lara(opt(1.0), 4, None),
                vec![&"--landmarks", &"4"],
                false,
            ),
            (
                "lara C4 opt a2",
                lara(opt(2.0), 4, None),
                vec![&"--landmarks", &"4", &"--alpha", &"2"],
                false,
            ),
            (
                "lara C4 bh",
                lara(lara::Weighting::BalanceHeuristic, 4, None),
                vec![&"--landmarks", &"4", &"--mis", &"bh"],
                false,
            ),
            (
                "lara C4 biased",
                lara(lara::Weighting::Biased, 4, None),
                vec![&"--landmarks", &"4", &"--mis", &"biased"],
                false,
            ),
            (
                "lara C4 bh noise",
                lara(
                    lara::Weighting::BalanceHeuristic,
                    4,
                    Some(read("eps_lara_C4.npy")),
                ),
                vec![&"--landmarks", &"4", &"--mis", &"bh", &"--eps", &eps4],
                false,
            ),
            (
                "lara C8 opt noise i8",
                lara(opt(1.0), 8, Some(read("eps_lara_C8.npy"))),
                vec![&"--landmarks", &"8", &"--eps", &eps8],
                true,
            ),
            (
                "rfa S16",
                Int8Spec::Rfa {
                    omega: read("omega_S16.npy"),
                    features: 16,
                },
                vec![&"--omega", &omega16],
                false,
            ),
            (
                "rfa S64",
                Int8Spec::Rfa {
                    omega: read("omega_S64.npy"),
                    features: 64,
                },
                vec![&"--omega", &omega64],
                false,
            ),
            (
                "rfa S64 i8",
                Int8Spec::Rfa {
                    omega: read("omega_S64.npy"),
                    features: 64,
                },
                vec![&"--omega", &omega64],
                true,
            ),
        ];
        for (name, spec, extra, int8_out) in runs {
            let label = format!("{id} {name}");
            let errors = check_int8_run(
                &label,
                &spec,
                shape,
                &TestMask::None,
                &paths,
                qkv,
                &extra,
                int8_out,
                &out_path,
            );
            // With the quantisation of the inputs (8 bits per tensor) the output moves further
            // from the f32 estimator on the f32 inputs: up to ~3% on these inputs, as much for
            // the f32 kernels fed the dequantised inputs.
            assert!(errors.f32_inputs <= 0.05, "{label}: {}", errors.f32_inputs);
            if errors.kernel > worst_kernel.0 {
                worst_kernel = (errors.kernel, label.clone());
            }
            if errors.f32_inputs > worst_f32.0 {
                worst_f32 = (errors.f32_inputs, label);
            }
        }
    }
    println!(
        "--int8 on the golden inputs: worst error of the kernel's f32 output vs the f32 \
         estimator on the dequantised inputs {:.4} ({}); of the written output vs the f32 \
         estimator on the f32 inputs {:.4} ({})",
        worst_kernel.0, worst_kernel.1, worst_f32.0, worst_f32.1
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `data [rows, ..]` repeated for `heads` heads, as the tool stacks a 2-D auxiliary file.
fn every_head(data: &[f32], heads: usize) -> Vec<f32> {
    (0..heads).flat_map(|_| data.iter().copied()).collect()
}

/// `omega [h, S, d]` drawn head after head from `default_rng(seed)`, as the tool draws it.
fn drawn_omega(shape: Shape, features: usize, seed: u64, orthogonal: bool) -> Vec<f32> {
    let mut rng = random::default_rng(seed);
    let mut omega = vec![0.0; shape.heads * features * shape.dim];
    for head in omega.chunks_exact_mut(features * shape.dim) {
        if orthogonal {
            random::orthogonal_omega(&mut rng, features, shape.dim, head)
        } else {
            random::gaussian_omega(&mut rng, features, shape.dim, head)
        }
        .expect("omega");
    }
    omega
}

/// The options of the int8 kernels through `--int8`, each run equal to the kernel bit for bit
/// and within 2% of the `f32` estimator on the dequantised inputs (`check_int8_run`): given
/// landmarks, antithetic and two-per-landmark proposals with given noise (2-D and 3-D), the
/// paper's noise scale, `--alpha`, a drawn `omega` (iid and orthogonal, `--seed`,
/// `--features`), key masks shared and per head (head by head), `i8` outputs, and
/// cross-attention (`n_q ≠ n_k`, `d_v ≠ d`).
#[test]
fn int8_options_match_the_kernels() {
    let dir = temp_dir("int8-options");
    let out_path = dir.join("out.npy");
    let case = golden_dirs()
        .into_iter()
        .find(|d| d.ends_with("clustered_h2_n100_d8"))
        .expect("the two-head golden case");
    let (shape, paths, [q, k, v]) = golden_case(&case);
    let qkv = [&q[..], &k[..], &v[..]];
    let (h, n, d) = (shape.heads, shape.keys, shape.dim);
    let shared: Vec<bool> = (0..n).map(|j| j % 7 == 3).collect();
    let per_head: Vec<bool> = (0..h * n).map(|i| i % 5 == 1 || i % n < 3).collect();
    let shared_path = write_bool(&dir, "mask.npy", &[n], &shared);
    let per_head_path = write_bool(&dir, "mask_h.npy", &[h, n], &per_head);
    let (shared, per_head) = (TestMask::Shared(shared), TestMask::PerHead(per_head));

    // Given landmarks [C, d] for every head; noise [C', d] (2-D) and [h, 2C', d] (3-D).
    let c = 6;
    let (qb, kb) = (data(c * d, 41), data(c * d, 42));
    let qb_path = write_f32(&dir, "qb.npy", &[c, d], &qb);
    let kb_path = write_f32(&dir, "kb.npy", &[c, d], &kb);
    let eps8 = data(8 * d, 43);
    let eps8_path = write_f32(&dir, "eps8.npy", &[8, d], &eps8);
    let eps_two = data(h * 2 * 4 * d, 44);
    let eps_two_path = write_f32(&dir, "eps_two.npy", &[h, 8, d], &eps_two);

    let lara = |weighting, landmarks, given, eps, proposals, noise_scale| Int8Spec::Lara {
        weighting,
        landmarks,
        given,
        eps,
        proposals,
        noise_scale,
    };
    let opt = |alpha_coeff| lara::Weighting::Optimal { alpha_coeff };
    type Run<'a> = (&'a str, Int8Spec, &'a TestMask, Args<'a>, bool);
    let runs: Vec<Run<'_>> = vec![
        (
            "lara given landmarks, bh, shared mask",
            lara(
                lara::Weighting::BalanceHeuristic,
                c,
                Some((every_head(&qb, h), every_head(&kb, h))),
                None,
                lara::Proposals::Single,
                NoiseScale::Official,
            ),
            &shared,
            vec![
                &"--mis",
                &"bh",
                &"--landmarks-q",
                &qb_path,
                &"--landmarks-k",
                &kb_path,
                &"--mask",
                &shared_path,
            ],
            false,
        ),
        (
            "lara antithetic, scaled noise, per-head mask",
            lara(
                opt(1.0),
                8,
                None,
                Some(every_head(&eps8, h)),
                lara::Proposals::Antithetic,
                NoiseScale::Paper,
            ),
            &per_head,
            vec![
                &"--landmarks",
                &"8",
                &"--eps",
                &eps8_path,
                &"--proposals",
                &"antithetic",
                &"--scaled-noise",
                &"--mask",
                &per_head_path,
            ],
            false,
        ),
        (
            "lara two per landmark, alpha 0.5, i8",
            lara(
                opt(0.5),
                4,
                None,
                Some(eps_two.clone()),
                lara::Proposals::TwoPerLandmark,
                NoiseScale::Official,
            ),
            &TestMask::None,
            vec![
                &"--landmarks",
                &"4",
                &"--alpha",
                &"0.5",
                &"--eps",
                &eps_two_path,
                &"--proposals",
                &"two",
            ],
            true,
        ),
        (
            "rfa drawn iid omega, seed 5, S 16, shared mask",
            Int8Spec::Rfa {
                omega: drawn_omega(shape, 16, 5, false),
                features: 16,
            },
            &shared,
            vec![
                &"--features",
                &"16",
                &"--omega-kind",
                &"iid",
                &"--seed",
                &"5",
                &"--mask",
                &shared_path,
            ],
            false,
        ),
        (
            "rfa drawn orthogonal omega, default S, per-head mask, i8",
            Int8Spec::Rfa {
                omega: drawn_omega(shape, 64, 0, true),
                features: 64,
            },
            &per_head,
            vec![&"--mask", &per_head_path],
            true,
        ),
        (
            "exact per-head mask i8",
            Int8Spec::Exact,
            &per_head,
            vec![&"--mask", &per_head_path],
            true,
        ),
    ];
    for (label, spec, mask, extra, int8_out) in &runs {
        check_int8_run(
            label, spec, shape, mask, &paths, qkv, extra, *int8_out, &out_path,
        );
    }

    // Cross-attention, one head: n_q ≠ n_k, d_v ≠ d.
    let (n_q, n_k, d, dv) = (9, 13, 6, 5);
    let shape = Shape::cross(n_q, n_k, d, dv);
    let (q, k, v) = (data(n_q * d, 45), data(n_k * d, 46), data(n_k * dv, 47));
    let paths = [
        write_f32(&dir, "xq.npy", &[n_q, d], &q),
        write_f32(&dir, "xk.npy", &[n_k, d], &k),
        write_f32(&dir, "xv.npy", &[n_k, dv], &v),
    ];
    let qkv = [&q[..], &k[..], &v[..]];
    let runs: Vec<(&str, Int8Spec, Args<'_>)> = vec![
        ("cross exact", Int8Spec::Exact, vec![]),
        (
            "cross lara",
            lara(
                opt(1.0),
                4,
                None,
                None,
                lara::Proposals::Single,
                NoiseScale::Official,
            ),
            vec![&"--landmarks", &"4"],
        ),
        (
            "cross rfa",
            Int8Spec::Rfa {
                omega: drawn_omega(shape, 32, 3, true),
                features: 32,
            },
            vec![&"--features", &"32", &"--seed", &"3"],
        ),
    ];
    for (label, spec, extra) in &runs {
        check_int8_run(
            label,
            spec,
            shape,
            &TestMask::None,
            &paths,
            qkv,
            extra,
            false,
            &out_path,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// What `--int8` cannot do is refused with exit code 2, one line on stderr naming the problem,
/// and nothing written: methods without an int8 kernel, options the int8 kernels do not take,
/// `--int8-out` and `--compare f32` without `--int8`, non-finite inputs, and the kernels' own
/// limits (|alpha| ≤ 8, S ≤ 4096, d ≤ 512, the logit range).
#[test]
fn int8_refusals_exit_with_code_2() {
    let dir = temp_dir("int8-errors");
    let (n, d) = (6, 4);
    let q = write_f32(&dir, "q.npy", &[n, d], &data(n * d, 51));
    let k = write_f32(&dir, "k.npy", &[n, d], &data(n * d, 52));
    let v = write_f32(&dir, "v.npy", &[n, d], &data(n * d, 53));
    let mut with_nan = data(n * d, 54);
    with_nan[5] = f32::NAN;
    let nan = write_f32(&dir, "nan.npy", &[n, d], &with_nan);
    let mut eps = data(4 * d, 55);
    eps[2] = f32::INFINITY;
    let eps_inf = write_f32(&dir, "eps_inf.npy", &[4, d], &eps);
    let wide = write_f32(&dir, "wide.npy", &[n, 513], &data(n * 513, 56));
    let large: Vec<f32> = data(n * d, 57).iter().map(|x| 1e3 * x).collect();
    let large = write_f32(&dir, "large.npy", &[n, d], &large);
    let out = dir.join("out.npy");

    let cases: Vec<(&str, Vec<&dyn AsRef<OsStr>>, &str)> = vec![
        (
            "ra",
            vec![&"--method", &"ra", &"--int8"],
            "--int8 is implemented for --method exact, lara and rfa",
        ),
        (
            "rfa-trig",
            vec![&"--method", &"rfa-trig", &"--int8"],
            "lara-attn has no int8 rfa-trig",
        ),
        (
            "causal",
            vec![&"--method", &"exact", &"--int8", &"--causal"],
            "--causal cannot be used with --int8",
        ),
        (
            "log space",
            vec![&"--method", &"rfa", &"--int8", &"--rfa-log-space"],
            "--rfa-log-space cannot be used with --int8",
        ),
        (
            "draws",
            vec![&"--method", &"rfa", &"--int8", &"--draws", &"2"],
            "--draws 2 cannot be used with --int8",
        ),
        (
            "drawn noise",
            vec![&"--method", &"lara", &"--int8", &"--mode", &"sampled"],
            "sampled mode needs --eps",
        ),
        (
            "int8-out alone",
            vec![&"--method", &"exact", &"--int8-out"],
            "--int8-out chooses the output of --int8: add --int8",
        ),
        (
            "compare f32 alone",
            vec![&"--method", &"lara", &"--compare", &"f32"],
            "--compare f32 compares an --int8 run",
        ),
        (
            "alpha",
            vec![&"--method", &"lara", &"--int8", &"--alpha", &"9"],
            "int8 lara: outside the int8 kernels' fixed-point range: |alpha_coeff| above 8",
        ),
        (
            "features",
            vec![&"--method", &"rfa", &"--int8", &"--features", &"5000"],
            "more than 4096 features",
        ),
        (
            "eps inf",
            vec![
                &"--method",
                &"lara",
                &"--int8",
                &"--landmarks",
                &"4",
                &"--eps",
                &eps_inf,
            ],
            "only finite values can be quantised",
        ),
    ];
    for (label, mut args, message) in cases {
        args.extend_from_slice(&[&q, &k, &v, &"-o", &out]);
        let result = attend(&args);
        let stderr = text(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{label}: {stderr}");
        assert!(stderr.contains(message), "{label}: {stderr:?}");
        assert_eq!(stderr.lines().count(), 1, "{label}: one line: {stderr:?}");
        assert!(!out.exists(), "{label}: nothing is written on error");
    }
    let inputs: [(&str, [&PathBuf; 3], &str); 3] = [
        ("nan q", [&nan, &k, &v], "nan.npy: element 5 is NaN"),
        (
            "d above 512",
            [&wide, &wide, &wide],
            "a dimension above 512",
        ),
        ("logit range", [&large, &large, &v], "exact logits"),
    ];
    for (label, [q, k, v], message) in inputs {
        attend_fails(
            label,
            &[&"--method", &"exact", &"--int8", q, k, v, &"-o", &out],
            &out,
            message,
        );
    }
    attend_fails(
        "layer",
        &[&"--layer", &dir, &"--int8", &q, &"-o", &out],
        &out,
        "--int8 cannot be used with --layer",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
