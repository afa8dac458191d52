//! `LARA_ATTN_BACKEND=<name>` for the test binaries.

/// Runs the calling test on the backend `LARA_ATTN_BACKEND` names (and fails if it cannot run
/// here); without it the best available backend is used.
pub fn backend_from_env() {
    use lara_attn::backend::{Backend, set_backend};
    if let Ok(name) = std::env::var("LARA_ATTN_BACKEND") {
        let backend =
            Backend::from_name(&name).unwrap_or_else(|| panic!("unknown backend {name:?}"));
        set_backend(Some(backend)).unwrap_or_else(|e| panic!("LARA_ATTN_BACKEND={name}: {e}"));
    }
}
