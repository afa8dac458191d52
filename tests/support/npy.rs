//! A minimal `.npy` reader for the golden files: NPY v1/v2/v3, C order, fixed-size elements
//! (`<f4`, `<i4`, `|b1`, …) decoded by the caller. Errors are messages, never panics.
#![allow(dead_code)]

use std::path::Path;

/// An array read from an `.npy` file.
#[derive(Debug, Clone)]
pub struct Array<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

/// Reads a little-endian float32 array.
pub fn read_f32(path: &Path) -> Result<Array<f32>, String> {
    read(path, "<f4", f32::from_le_bytes)
}

/// Reads a little-endian int32 array.
pub fn read_i32(path: &Path) -> Result<Array<i32>, String> {
    read(path, "<i4", i32::from_le_bytes)
}

/// Reads a numpy bool (`|b1`) array.
pub fn read_bool(path: &Path) -> Result<Array<bool>, String> {
    read(path, "|b1", |[b]: [u8; 1]| b != 0)
}

fn read<T, const N: usize>(
    path: &Path,
    descr: &str,
    decode: fn([u8; N]) -> T,
) -> Result<Array<T>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&bytes, descr, decode).map_err(|e| format!("{}: {e}", path.display()))
}

/// The element type (`descr`, e.g. `<f4`) of the `.npy` file in `bytes`, for a caller that
/// accepts several.
pub fn descr(bytes: &[u8]) -> Result<String, String> {
    let (header, _) = split_header(bytes)?;
    Ok(dict_value(header, "descr")?.trim_matches('\'').to_string())
}

/// The header text and the payload of an `.npy` file.
fn split_header(bytes: &[u8]) -> Result<(&str, &[u8]), String> {
    let rest = bytes
        .strip_prefix(b"\x93NUMPY")
        .ok_or("not an .npy file (bad magic)")?;
    let (&major, rest) = rest.split_first().ok_or("truncated header")?;
    let (_minor, rest) = rest.split_first().ok_or("truncated header")?;
    let (header_len, rest) = match major {
        1 => {
            let (len, rest) = rest.split_first_chunk::<2>().ok_or("truncated header")?;
            (u16::from_le_bytes(*len) as usize, rest)
        }
        2 | 3 => {
            let (len, rest) = rest.split_first_chunk::<4>().ok_or("truncated header")?;
            (u32::from_le_bytes(*len) as usize, rest)
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    if rest.len() < header_len {
        return Err("truncated header".into());
    }
    let (header, payload) = rest.split_at(header_len);
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    Ok((header, payload))
}

/// Parses the bytes of an `.npy` file holding `descr` elements of `N` bytes.
pub fn parse<T, const N: usize>(
    bytes: &[u8],
    descr: &str,
    decode: fn([u8; N]) -> T,
) -> Result<Array<T>, String> {
    let (header, payload) = split_header(bytes)?;
    let found = dict_value(header, "descr")?;
    if found.trim_matches('\'') != descr {
        return Err(format!("dtype {found}, expected '{descr}'"));
    }
    if dict_value(header, "fortran_order")? != "False" {
        return Err("Fortran order is not supported".into());
    }
    let shape = parse_shape(dict_value(header, "shape")?)?;
    let bytes = shape
        .iter()
        .try_fold(N, |acc, &d| acc.checked_mul(d))
        .ok_or(format!("shape {shape:?} overflows"))?;
    if payload.len() != bytes {
        return Err(format!(
            "payload has {} bytes, shape {shape:?} needs {bytes}",
            payload.len()
        ));
    }
    let data = payload
        .chunks_exact(N)
        .filter_map(|c| c.try_into().ok().map(decode))
        .collect();
    Ok(Array { shape, data })
}

/// The raw text of `'key': value` in the header dict (up to the next top-level comma).
fn dict_value<'h>(header: &'h str, key: &str) -> Result<&'h str, String> {
    let pattern = format!("'{key}':");
    let start = header
        .find(&pattern)
        .ok_or(format!("header has no '{key}'"))?
        + pattern.len();
    let value = header[start..].trim_start();
    let end = if value.starts_with('(') {
        value.find(')').map(|i| i + 1)
    } else {
        value.find([',', '}'])
    }
    .ok_or(format!("malformed '{key}'"))?;
    Ok(value[..end].trim())
}

fn parse_shape(text: &str) -> Result<Vec<usize>, String> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or(format!("malformed shape {text}"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("malformed shape {text}")))
        .collect()
}
