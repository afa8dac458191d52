//! Build script: which one-lane kernels the crate compiles for targets without a SIMD backend.
//!
//! * The compact path, cfg `lara_attn_compact`: the scalar kernels alone, no `Backend::Blocked`.
//!   The blocked kernels take about twice the flash of the scalar ones, so a package optimised
//!   for size (opt-level `"s"` or `"z"`) gets the compact path. `LARA_ATTN_BLOCKED=1` compiles
//!   the blocked kernels at any opt-level, `LARA_ATTN_BLOCKED=0` at none;
//!   `[profile.release.package.lara-attn] opt-level = 3` in a firmware built for size is the
//!   usual way to get them for this crate alone.
//! * Helium, cfg `lara_attn_helium`: for a Cortex-M55, M52 or M85 (`-C target-cpu=cortex-m55`,
//!   `m52` or `m85` in the flags, without `-C target-feature=-mve`), the one-lane kernels are
//!   compiled for LLVM's auto-vectoriser (inline and branch-free) rather than for a
//!   single-issue FPU (out-of-line loops, assembly tiles). `LARA_ATTN_HELIUM=1` or `=0`
//!   overrides the guess.
//!
//! The SIMD backends are not affected. (In `src/`: a vendored copy of `Cargo.toml` and `src/`
//! builds as it is.)

use std::env::var;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lara_attn_compact)");
    println!("cargo::rustc-check-cfg=cfg(lara_attn_helium)");
    println!("cargo::rerun-if-env-changed=LARA_ATTN_BLOCKED");
    println!("cargo::rerun-if-env-changed=LARA_ATTN_HELIUM");
    println!("cargo::rerun-if-changed=src/build.rs");
    let for_size = matches!(var("OPT_LEVEL").as_deref(), Ok("s" | "z"));
    let compact = match var("LARA_ATTN_BLOCKED").as_deref() {
        Ok("1") => false,
        Ok("0") => true,
        _ => for_size,
    };
    if compact {
        println!("cargo::rustc-cfg=lara_attn_compact");
    }
    let helium = match var("LARA_ATTN_HELIUM").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => helium_in_flags(),
    };
    if helium {
        println!("cargo::rustc-cfg=lara_attn_helium");
    }
}

/// Whether the flags name a core with Helium and do not switch it off: ARM, a target CPU
/// `cortex-m55`, `cortex-m52` or `cortex-m85`, and no `-mve` target feature.
fn helium_in_flags() -> bool {
    if var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("arm") {
        return false;
    }
    let flags = var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split('\u{1f}').collect();
    // "-C" "target-cpu=…" or "-Ctarget-cpu=…"
    let values = |key: &str| -> Vec<String> {
        let mut found = Vec::new();
        for (i, flag) in flags.iter().enumerate() {
            let option = match flag.strip_prefix("-C") {
                Some("") => flags.get(i + 1).copied().unwrap_or(""),
                Some(rest) => rest,
                None => continue,
            };
            if let Some(value) = option.strip_prefix(key) {
                found.push(value.to_string());
            }
        }
        found
    };
    let cpu = values("target-cpu=");
    let helium_cpu = cpu
        .iter()
        .any(|c| matches!(c.as_str(), "cortex-m55" | "cortex-m52" | "cortex-m85"));
    let mve_off = values("target-feature=")
        .iter()
        .any(|f| f.split(',').any(|f| f == "-mve" || f == "-mve.fp"));
    helium_cpu && !mve_off
}
