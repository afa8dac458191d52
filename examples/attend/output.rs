//! Writing the output: NPY v1.0, little-endian float32, C order.

use crate::Res;
use crate::files::try_alloc;
use crate::problem::Problem;
use lara_attn::backend;
use std::path::Path;

/// Writes the estimate `out` to `path`, `[n_q, d_v]` for 2-D inputs or `[h, n_q, d_v]`, and
/// says so on stderr (`label`: the method's name).
pub fn write(label: &str, p: &Problem, path: &Path, out: &[f32]) -> Res<()> {
    let (s, heads) = (p.shape, p.heads());
    let shape: Vec<usize> = if p.stacked {
        vec![heads, s.queries, s.value_dim]
    } else {
        vec![s.queries, s.value_dim]
    };
    write_labelled(label, path, &shape, out)
}

/// Writes `out` of `shape` to `path` and says so on stderr: `<label>: wrote <path> <shape>
/// (backend <name>)`.
pub fn write_labelled(label: &str, path: &Path, shape: &[usize], out: &[f32]) -> Res<()> {
    write_npy(path, shape, out)?;
    eprintln!(
        "{label}: wrote {} {shape:?} (backend {})",
        path.display(),
        backend::active_backend().name()
    );
    Ok(())
}

/// Writes `data` as an NPY v1.0 little-endian float32 C-order array of `shape`.
fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Res<()> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // magic (6) + version (2) + header length (2) + header, padded to a multiple of 64 with
    // spaces and a final newline.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let header_len = u16::try_from(header.len()).map_err(|_| "shape too long for NPY v1.0")?;
    let mut bytes = try_alloc::<u8>(10 + header.len() + 4 * data.len())?;
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&header_len.to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for x in data {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
