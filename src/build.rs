//! Build script: what the target's core has and how the one-lane kernels are compiled, as
//! `cfg`s (stable Rust has no ARM `target_feature` cfgs). In `src/`, so that a vendored copy of
//! `Cargo.toml` and `src/` builds as it is.
//!
//! * `lara_attn_dsp`: the DSP extension (`SMLAD`, `SXTB16`) for the int8 kernels: every
//!   `thumbv7em` target, and `thumbv8m.main` with a DSP core as `-C target-cpu` (Cortex-M33,
//!   M35P, M52, M55, M85).
//! * `lara_attn_helium`: Helium (MVE) for a Cortex-M55, M52 or M85 (`-C target-cpu=cortex-m55`,
//!   `m52` or `m85`, without `-C target-feature=-mve`): the int8 kernels use `VMLADAVA`, and the
//!   one-lane `f32` kernels are compiled for LLVM's auto-vectoriser (inline and branch-free)
//!   rather than for a single-issue FPU (out-of-line loops, assembly tiles). `LARA_ATTN_HELIUM=1`
//!   or `=0` overrides the guess.
//! * `lara_attn_compact`: the scalar `f32` kernels alone, no `Backend::Blocked`, and the int8
//!   kernels without their speed-only duplicates (the general path of each step, the same
//!   bits; `exp2` and the streaming softmax out of line). The blocked kernels take about twice
//!   the flash of the scalar ones, so a package optimised for size (opt-level `"s"` or `"z"`)
//!   gets the compact path. `LARA_ATTN_BLOCKED=1` compiles the
//!   blocked kernels at any opt-level, `LARA_ATTN_BLOCKED=0` at none;
//!   `[profile.release.package.lara-attn] opt-level = 3` in a firmware built for size is the
//!   usual way to get them for this crate alone.
//!
//! Passing `--cfg lara_attn_dsp` in `RUSTFLAGS` forces the DSP kernels (for a `thumbv8m.main`
//! core with the extension and no `target-cpu`). The SIMD backends of hosts are not affected.

use std::env::var;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lara_attn_dsp)");
    println!("cargo::rustc-check-cfg=cfg(lara_attn_helium)");
    println!("cargo::rustc-check-cfg=cfg(lara_attn_compact)");
    println!("cargo::rustc-check-cfg=cfg(lara_attn_soft_division)");
    println!("cargo::rerun-if-changed=src/build.rs");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo::rerun-if-env-changed=LARA_ATTN_BLOCKED");
    println!("cargo::rerun-if-env-changed=LARA_ATTN_HELIUM");
    let target = var("TARGET").unwrap_or_default();
    let flags = Codegen::from_env();
    let cpu = flags.values("target-cpu");
    let cpu_in = |cores: &[&str]| cpu.iter().any(|c| cores.contains(&c.as_str()));

    let dsp_core = cpu_in(&[
        "cortex-m33",
        "cortex-m35p",
        "cortex-m52",
        "cortex-m55",
        "cortex-m85",
    ]);
    if target.starts_with("thumbv7em") || (target.starts_with("thumbv8m.main") && dsp_core) {
        println!("cargo::rustc-cfg=lara_attn_dsp");
    }

    // ARMv6-M and ARMv8-M Baseline: no division instruction, every `/` a call of the
    // division routine (built for size, the int8 kernels then divide bit by bit, see
    // `math::div_rem`, and link no division routine)
    if target.starts_with("thumbv6m") || target.starts_with("thumbv8m.base") {
        println!("cargo::rustc-cfg=lara_attn_soft_division");
    }

    let mve_off = flags
        .values("target-feature")
        .iter()
        .any(|f| f.split(',').any(|f| f == "-mve" || f == "-mve.fp"));
    let helium = match var("LARA_ATTN_HELIUM").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => {
            target.starts_with("thumbv8m.main")
                && cpu_in(&["cortex-m52", "cortex-m55", "cortex-m85"])
                && !mve_off
        }
    };
    if helium {
        println!("cargo::rustc-cfg=lara_attn_helium");
    }

    let for_size = matches!(var("OPT_LEVEL").as_deref(), Ok("s" | "z"));
    let compact = match var("LARA_ATTN_BLOCKED").as_deref() {
        Ok("1") => false,
        Ok("0") => true,
        _ => for_size,
    };
    if compact {
        println!("cargo::rustc-cfg=lara_attn_compact");
    }
}

/// The compiler flags cargo passes (`CARGO_ENCODED_RUSTFLAGS`).
struct Codegen(Vec<String>);

impl Codegen {
    fn from_env() -> Self {
        let flags = var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
        Codegen(flags.split('\u{1f}').map(str::to_string).collect())
    }

    /// The values of a codegen option `-C name=value` or `-Cname=value`, in order.
    fn values(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}=");
        let mut found = Vec::new();
        for (i, flag) in self.0.iter().enumerate() {
            let option = match flag.strip_prefix("-C") {
                Some("") => self.0.get(i + 1).map_or("", String::as_str),
                Some(rest) => rest,
                None => continue,
            };
            if let Some(value) = option.strip_prefix(&prefix) {
                found.push(value.to_string());
            }
        }
        found
    }
}
