//! Build script (in `src/` so that a vendored `Cargo.toml` + `src/` keeps it): tells the int8
//! kernels which Cortex-M instruction-set extensions the target has, as `cfg`s (stable Rust has
//! no ARM `target_feature` cfgs):
//! * `lara_attn_dsp`: the DSP extension (`SMLAD`, `SXTB16`): every `thumbv7em` target, and
//!   `thumbv8m.main` with a DSP core as `-C target-cpu` (Cortex-M33, M35P, M52, M55, M85);
//! * `lara_attn_mve`: Helium (MVE, integer `VMLADAVA`): `thumbv8m.main` with a Helium core as
//!   `-C target-cpu` (Cortex-M52, M55, M85), unless `-C target-feature` turns `mve` off.
//!
//! Passing `--cfg lara_attn_dsp` (or `--cfg lara_attn_mve`) in `RUSTFLAGS` forces it (for a
//! core with the extension and no `target-cpu`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lara_attn_dsp)");
    println!("cargo::rustc-check-cfg=cfg(lara_attn_mve)");
    println!("cargo::rerun-if-changed=src/build.rs");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let target = std::env::var("TARGET").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split('\u{1f}').collect();
    // The values of a codegen option `-C name=value` or `-Cname=value`, in order.
    let option = |name: &str| -> Vec<String> {
        let prefix = format!("{name}=");
        let joined = format!("-C{name}=");
        let mut values = Vec::new();
        for (i, flag) in flags.iter().enumerate() {
            if *flag == "-C" {
                if let Some(value) = flags.get(i + 1).and_then(|v| v.strip_prefix(&prefix)) {
                    values.push(value.to_string());
                }
            } else if let Some(value) = flag.strip_prefix(&joined) {
                values.push(value.to_string());
            }
        }
        values
    };
    let cpu = option("target-cpu").pop().unwrap_or_default();
    let mve_off = option("target-feature")
        .iter()
        .flat_map(|features| features.split(','))
        .any(|feature| feature == "-mve");
    let dsp_core = [
        "cortex-m33",
        "cortex-m35p",
        "cortex-m52",
        "cortex-m55",
        "cortex-m85",
    ]
    .contains(&cpu.as_str());
    let helium_core = ["cortex-m52", "cortex-m55", "cortex-m85"].contains(&cpu.as_str());
    let v8m_main = target.starts_with("thumbv8m.main");
    if target.starts_with("thumbv7em") || (v8m_main && dsp_core) {
        println!("cargo::rustc-cfg=lara_attn_dsp");
    }
    if v8m_main && helium_core && !mve_off {
        println!("cargo::rustc-cfg=lara_attn_mve");
    }
}
