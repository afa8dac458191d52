//! Reading the `.npy` inputs through the tests' reader (`tests/support/npy.rs`): the `q`, `k`,
//! `v` arrays, auxiliary per-head arrays and the key padding mask. Every problem is a message.

use crate::Res;
use crate::npy;
use std::path::{Path, PathBuf};

/// A float32 input `[n, d]` or `[h, n, d]`.
pub struct Input {
    pub path: PathBuf,
    /// `Some(h)` for a 3-D file.
    pub heads: Option<usize>,
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Input {
    /// `path: 2-D` or `path: 3-D`, for messages.
    pub fn rank_text(&self) -> String {
        let rank = if self.heads.is_some() { 3 } else { 2 };
        format!("{}: {rank}-D", self.path.display())
    }
}

/// The key padding mask of `--mask`, `true` for a padding key.
#[derive(Clone)]
pub enum KeyMask {
    /// One mask `[n_k]` for every head.
    Shared(Vec<bool>),
    /// One mask per head, `[h, n_k]`.
    PerHead(Vec<bool>),
}

fn read_bytes(path: &Path) -> Res<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Parses the bytes of `path` as `descr` elements, checking that no dimension is zero (the
/// reader checks the header, the dtype and that the payload matches the shape).
fn parse_npy<T, const N: usize>(
    path: &Path,
    bytes: &[u8],
    descr: &str,
    decode: fn([u8; N]) -> T,
) -> Res<npy::Array<T>> {
    let array = npy::parse(bytes, descr, decode).map_err(|e| format!("{}: {e}", path.display()))?;
    if array.shape.contains(&0) {
        return Err(format!(
            "{}: shape {:?} has a zero dimension",
            path.display(),
            array.shape
        ));
    }
    Ok(array)
}

/// Reads a `.npy` file of `descr` elements; see [`parse_npy`].
pub fn read_npy<T, const N: usize>(
    path: &Path,
    descr: &str,
    decode: fn([u8; N]) -> T,
) -> Res<npy::Array<T>> {
    parse_npy(path, &read_bytes(path)?, descr, decode)
}

pub fn read_input(path: &Path) -> Res<Input> {
    let array = read_npy(path, "<f4", f32::from_le_bytes)?;
    let (heads, rows, cols) = match array.shape[..] {
        [rows, cols] => (None, rows, cols),
        [h, rows, cols] => (Some(h), rows, cols),
        _ => {
            return Err(format!(
                "{}: shape {:?}: expected [n, d] or [h, n, d]",
                path.display(),
                array.shape
            ));
        }
    };
    Ok(Input {
        path: path.to_path_buf(),
        heads,
        rows,
        cols,
        data: array.data,
    })
}

/// Reads an auxiliary per-head input of per-head shape `[inner]` (`inner` names its
/// dimensions, e.g. `"S, d"`): a file of that rank is used for every head, one with a leading
/// axis of `heads` gives one per head. Returns the per-head shape and the data stacked
/// `[heads, ..]`, as the estimators take it.
pub fn read_stacked<T: Clone>(
    option: &str,
    path: &Path,
    descr: &str,
    decode: fn([u8; 4]) -> T,
    heads: usize,
    inner: &str,
) -> Res<(Vec<usize>, Vec<T>)> {
    let array = read_npy(path, descr, decode)?;
    let (shape, per_head) = split_heads(option, path, &array.shape, heads, inner)?;
    if per_head {
        return Ok((shape, array.data));
    }
    let mut data = try_alloc::<T>(array.data.len().saturating_mul(heads))?;
    for _ in 0..heads {
        data.extend_from_slice(&array.data);
    }
    Ok((shape, data))
}

/// The per-head shape of an array of `shape`, and whether it has one slice per head.
fn split_heads(
    option: &str,
    path: &Path,
    shape: &[usize],
    heads: usize,
    inner: &str,
) -> Res<(Vec<usize>, bool)> {
    let inner_rank = inner.split(',').count();
    if shape.len() == inner_rank {
        Ok((shape.to_vec(), false))
    } else if shape.len() == inner_rank + 1 && shape[0] == heads {
        Ok((shape[1..].to_vec(), true))
    } else {
        Err(format!(
            "{option} {}: shape {shape:?}: expected [{inner}] or [h = {heads}, {inner}]",
            path.display()
        ))
    }
}

/// Reads the key padding mask of `--mask`: `|b1` (numpy bool), `<i4` or `<f4` (nonzero marks a
/// padding key), `[n_k]` for every head or `[h, n_k]`.
pub fn read_mask(path: &Path, heads: usize, keys: usize) -> Res<KeyMask> {
    let bytes = read_bytes(path)?;
    let descr = npy::descr(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let array: npy::Array<bool> = match descr.as_str() {
        "|b1" => to_mask(parse_npy(path, &bytes, "|b1", |[b]: [u8; 1]| b)?, |b| {
            b != 0
        }),
        "<i4" => to_mask(parse_npy(path, &bytes, "<i4", i32::from_le_bytes)?, |x| {
            x != 0
        }),
        "<f4" => {
            let array = parse_npy(path, &bytes, "<f4", f32::from_le_bytes)?;
            if let Some(i) = array.data.iter().position(|x| x.is_nan()) {
                return Err(format!(
                    "--mask {}: element {i} is NaN (nonzero marks a padding key)",
                    path.display()
                ));
            }
            to_mask(array, |x| x != 0.0)
        }
        other => {
            return Err(format!(
                "--mask {}: dtype '{other}', expected '|b1' (bool), '<i4' or '<f4' (nonzero marks \
                 a padding key)",
                path.display()
            ));
        }
    };
    let (s, per_head) = split_heads("--mask", path, &array.shape, heads, "n_k")?;
    if s != [keys] {
        return Err(format!(
            "--mask {}: per-head shape {s:?}, expected [n_k = {keys}] (one entry per key)",
            path.display()
        ));
    }
    for (head, head_mask) in array.data.chunks_exact(keys).enumerate() {
        if head_mask.iter().all(|&masked| masked) {
            let which = if per_head {
                format!("head {head} of ")
            } else {
                String::new()
            };
            return Err(format!(
                "--mask {}: {which}the mask masks every key (attention over no key is undefined)",
                path.display()
            ));
        }
    }
    Ok(if per_head {
        KeyMask::PerHead(array.data)
    } else {
        KeyMask::Shared(array.data)
    })
}

fn to_mask<T: Copy>(array: npy::Array<T>, masked: impl Fn(T) -> bool) -> npy::Array<bool> {
    npy::Array {
        data: array.data.iter().map(|&x| masked(x)).collect(),
        shape: array.shape,
    }
}

pub fn try_alloc<T>(len: usize) -> Res<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| format!("cannot allocate {len} elements"))?;
    Ok(v)
}

pub fn zeros(len: usize) -> Res<Vec<f32>> {
    let mut v = try_alloc(len)?;
    v.resize(len, 0.0);
    Ok(v)
}
