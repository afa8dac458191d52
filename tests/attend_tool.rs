//! The `attend` example (`examples/attend/`) end to end: `.npy` files in a temporary
//! directory, the example binary run on them, its output read back.
//!
//! The example is built once (`cargo build --release --example attend`, a no-op when CI has
//! already built the examples) and its binary, located from cargo's JSON messages, is then run
//! directly: 183 runs in all (67 of them `--layer` runs on the cases of `tests/data/layers`).

#[path = "support/npy.rs"]
mod npy;

use lara_attn::{Qkv, Shape, exact};
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
