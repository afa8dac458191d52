//! Golden-vector parity with the paper's official code.
//!
//! `cargo run --release --example golden -- [path/to/manifest.json]` runs every output the
//! manifest lists through the crate and prints one line per output with its error, then the
//! worst case per method and a closing `N passed, N failed`. Exits non-zero if any output fails
//! (error above `1e-4 · max|golden|`) or cannot be run. The default manifest is the subset the
//! repository carries, `tests/data/golden/manifest.json`; CI also runs the oracle's full one.

#[path = "../tests/support/golden.rs"]
mod golden;

use std::collections::BTreeMap;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = std::env::args_os()
        .nth(1)
        .map_or_else(golden::default_manifest, Into::into);
    match golden::backend_from_env() {
        Ok(backend) => println!("backend: {}", backend.name()),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    let outcomes = match golden::run_any_manifest(&path) {
        Ok(outcomes) => outcomes,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut worst: BTreeMap<&str, f64> = BTreeMap::new();
    for outcome in &outcomes {
        let label = format!("{}/{}", outcome.case, outcome.name);
        match &outcome.result {
            Ok(m) => {
                let verdict = if m.passed() { "ok  " } else { "FAIL" };
                println!(
                    "{verdict} {label:<48} max_abs {:.3e}  rel {:.3e}",
                    m.max_abs,
                    m.relative()
                );
                let w = worst.entry(outcome.method.as_str()).or_insert(0.0);
                *w = w.max(m.relative());
            }
            Err(e) => println!("FAIL {label:<48} cannot run: {e}"),
        }
    }
    for (method, rel) in &worst {
        println!("worst {method:<10} max|ours - golden| / max|golden| = {rel:.3e}");
    }
    let passed = outcomes.iter().filter(|o| o.passed()).count();
    let failed = outcomes.len() - passed;
    println!("{passed} passed, {failed} failed");
    if failed == 0 && passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
