//! Golden-file access for the unit tests that compare intermediates (landmarks, `kv`, log
//! importance weights, features) with the official code's.

#[path = "../tests/support/npy.rs"]
pub mod npy;

use serde_json::Value;
use std::path::{Path, PathBuf};

/// One single-head golden case.
pub struct GoldenCase {
    pub id: String,
    pub dir: PathBuf,
    pub n: usize,
    pub d: usize,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
}

impl GoldenCase {
    /// The inputs of the case, one head of self-attention.
    pub fn qkv(&self) -> crate::Qkv<'_> {
        crate::Qkv {
            shape: crate::Shape::self_attention(self.n, self.d),
            q: &self.q,
            k: &self.k,
            v: &self.v,
            key_mask: None,
        }
    }

    /// The intermediate array `int_<name>.npy`.
    pub fn intermediate(&self, name: &str) -> npy::Array<f32> {
        let path = self.dir.join(format!("int_{name}.npy"));
        npy::read_f32(&path).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Every single-head (`[n, d]`) case of the golden files in `tests/data/golden`.
pub fn single_head_cases() -> Vec<GoldenCase> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden");
    let text = std::fs::read_to_string(root.join("manifest.json")).expect("golden manifest");
    let manifest: Value = serde_json::from_str(&text).expect("manifest is JSON");
    let cases: Vec<GoldenCase> = manifest["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|case| case["heads"].is_null())
        .map(|case| {
            let dir = root.join(case["dir"].as_str().unwrap());
            let read = |name: &str| npy::read_f32(&dir.join(name)).unwrap().data;
            GoldenCase {
                id: case["id"].as_str().unwrap().to_string(),
                n: case["n"].as_u64().unwrap() as usize,
                d: case["d"].as_u64().unwrap() as usize,
                q: read("q.npy"),
                k: read("k.npy"),
                v: read("v.npy"),
                dir,
            }
        })
        .collect();
    assert_eq!(cases.len(), 6, "6 single-head golden cases");
    cases
}

/// Asserts `max|ours − golden| <= tol · max|golden|`.
pub fn assert_close(ours: &[f32], golden: &[f32], tol: f64, what: &str) {
    assert_eq!(ours.len(), golden.len(), "{what}: length");
    let scale = golden.iter().fold(0.0f64, |m, &g| m.max((g as f64).abs()));
    let err = ours.iter().zip(golden).fold(0.0f64, |m, (&a, &b)| {
        m.max(if a.is_nan() {
            f64::INFINITY
        } else {
            (a as f64 - b as f64).abs()
        })
    });
    assert!(
        err <= tol * scale,
        "{what}: max error {err:.3e} > {tol:e} x {scale:.3e}"
    );
}
