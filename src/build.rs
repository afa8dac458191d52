//! Build script (in `src/` so that a vendored `Cargo.toml` + `src/` keeps it): tells the int8
//! kernels which Cortex-M instruction-set extensions the target has, as `cfg`s (stable Rust has
//! no ARM `target_feature` cfgs):
//! * `lara_attn_dsp`: the DSP extension (`SMLAD`, `SXTB16`): every `thumbv7em` target, and
//!   `thumbv8m.main` with a DSP core as `-C target-cpu` (Cortex-M33, M35P, M52, M55, M85).
//!
//! Passing `--cfg lara_attn_dsp` in `RUSTFLAGS` forces it (for a `thumbv8m.main` core with the
//! extension and no `target-cpu`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lara_attn_dsp)");
    println!("cargo::rerun-if-changed=src/build.rs");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let target = std::env::var("TARGET").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let cpu = flags
        .split('\u{1f}')
        .collect::<Vec<_>>()
        .windows(2)
        .find_map(|w| match w {
            [flag, value] if *flag == "-C" && value.starts_with("target-cpu=") => {
                Some(value.trim_start_matches("target-cpu=").to_string())
            }
            [flag, _] if flag.starts_with("-Ctarget-cpu=") => {
                Some(flag.trim_start_matches("-Ctarget-cpu=").to_string())
            }
            _ => None,
        })
        .unwrap_or_default();
    let dsp_core = [
        "cortex-m33",
        "cortex-m35p",
        "cortex-m52",
        "cortex-m55",
        "cortex-m85",
    ]
    .contains(&cpu.as_str());
    if target.starts_with("thumbv7em") || (target.starts_with("thumbv8m.main") && dsp_core) {
        println!("cargo::rustc-cfg=lara_attn_dsp");
    }
}
