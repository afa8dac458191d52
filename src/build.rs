//! Build script: decides whether the blocked kernels are compiled for targets without a SIMD
//! backend (`Backend::Blocked`, the default there) or only the scalar ones (the compact path).
//!
//! The blocked kernels take about twice the flash of the scalar ones, so a package optimised for
//! size (opt-level `"s"` or `"z"`) gets the scalar kernels alone: the cfg `lara_attn_compact`.
//! `LARA_ATTN_BLOCKED=1` compiles the blocked kernels at any opt-level, `LARA_ATTN_BLOCKED=0`
//! none at any; `[profile.release.package.lara-attn] opt-level = 3` in a firmware built for size
//! is the usual way to get them for this crate alone. (The SIMD backends are not affected.)
//!
//! (In `src/`: a vendored copy of `Cargo.toml` and `src/` builds as it is.)

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lara_attn_compact)");
    println!("cargo::rerun-if-env-changed=LARA_ATTN_BLOCKED");
    println!("cargo::rerun-if-changed=src/build.rs");
    let for_size = matches!(std::env::var("OPT_LEVEL").as_deref(), Ok("s" | "z"));
    let compact = match std::env::var("LARA_ATTN_BLOCKED").as_deref() {
        Ok("1") => false,
        Ok("0") => true,
        _ => for_size,
    };
    if compact {
        println!("cargo::rustc-cfg=lara_attn_compact");
    }
}
