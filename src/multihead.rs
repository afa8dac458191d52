//! Multi-head convenience over the `[h, n, d]` layout: `q [h, n_q, d]`, `k [h, n_k, d]`,
//! `v [h, n_k, d_v]`, `out [h, n_q, d_v]`, heads independent, each head's random inputs
//! (noise, `ω`, key indices, given landmarks) stacked the same way with a leading `h` axis.
//!
//! Every function checks all heads' arguments before writing anything, then runs the
//! single-head kernel head by head, reusing one scratch of the single-head `scratch_len`.

use crate::error::{Arg, Dim, Error};
use crate::math::{rows, rows_mut};
use crate::random::NoiseScale;
use crate::shape::{Shape, check_finite, check_len, checked_len};
use crate::{exact as exact_kernel, lara as lara_kernel, ra as ra_kernel, rfa};
use rand_core::RngCore;

/// Multi-head [`exact::attention`](crate::exact::attention); scratch as the single head.
///
/// # Errors
/// As the single-head kernel, plus [`Error::ZeroDimension`]`(`[`Dim::Heads`]`)`.
pub fn exact(
    heads: usize,
    shape: Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    check_stacked(heads, shape, q, k, v, out)?;
    for_each_head(heads, shape, q, k, v, out, |_, q, k, v, out| {
        exact_kernel::attention(shape, q, k, v, out, scratch)
    })
}

/// Multi-head [`lara::attention`](crate::lara::attention): `noise [h, R, d]` with
/// `R = params.proposals.noise_rows(C')`, given landmarks `[h, C, d]`; the key mask of `params`
/// (`[n_k]`) applies to every head.
///
/// # Errors
/// As the single-head kernel, plus [`Error::ZeroDimension`]`(`[`Dim::Heads`]`)`.
#[allow(clippy::too_many_arguments)]
pub fn lara(
    heads: usize,
    shape: Shape,
    params: &lara_kernel::Params<'_>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    noise: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    check_stacked(heads, shape, q, k, v, out)?;
    let count = check_stacked_landmarks(heads, shape, params)?;
    if let Some(eps) = noise {
        let rows = params.proposals.noise_rows(count);
        check_stacked_input(Arg::Noise, eps, heads, rows, shape.dim)?;
    }
    for_each_head(heads, shape, q, k, v, out, |head, q, k, v, out| {
        let eps = noise.map(|eps| head_slice(eps, heads, head));
        lara_kernel::attention(
            shape,
            &head_params(params, heads, head),
            q,
            k,
            v,
            eps,
            out,
            scratch,
        )
    })
}

/// Multi-head [`lara::attention_sampled`](crate::lara::attention_sampled), heads drawn in order.
///
/// # Errors
/// As the single-head kernel, plus [`Error::ZeroDimension`]`(`[`Dim::Heads`]`)`.
#[allow(clippy::too_many_arguments)]
pub fn lara_sampled<R: RngCore + ?Sized>(
    heads: usize,
    shape: Shape,
    params: &lara_kernel::Params<'_>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    rng: &mut R,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    check_stacked(heads, shape, q, k, v, out)?;
    check_stacked_landmarks(heads, shape, params)?;
    for_each_head(heads, shape, q, k, v, out, |head, q, k, v, out| {
        lara_kernel::attention_sampled(
            shape,
            &head_params(params, heads, head),
            q,
            k,
            v,
            rng,
            out,
            scratch,
        )
    })
}

/// Multi-head [`ra::attention`](crate::ra::attention): `noise [h, n_q, d]`, key indices
/// `[h, n_q]`.
///
/// # Errors
/// As the single-head kernel, plus [`Error::ZeroDimension`]`(`[`Dim::Heads`]`)`.
#[allow(clippy::too_many_arguments)]
pub fn ra(
    heads: usize,
    shape: Shape,
    mean: ra_kernel::Mean<'_>,
    noise_scale: NoiseScale,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    noise: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    check_stacked(heads, shape, q, k, v, out)?;
    if let Some(eps) = noise {
        check_stacked_input(Arg::Noise, eps, heads, shape.queries, shape.dim)?;
    }
    if let ra_kernel::Mean::Keys(indices) = mean {
        let expected = checked_len(heads, shape.queries)?;
        if indices.len() != expected {
            return Err(Error::LengthMismatch {
                arg: Arg::KeyIndices,
                expected,
                actual: indices.len(),
            });
        }
        if let Some((row, &index)) = indices
            .iter()
            .enumerate()
            .find(|&(_, &j)| j as usize >= shape.keys)
        {
            return Err(Error::KeyIndexOutOfRange { row, index });
        }
    }
    for_each_head(heads, shape, q, k, v, out, |head, q, k, v, out| {
        let head_mean = match mean {
            ra_kernel::Mean::Keys(indices) => {
                ra_kernel::Mean::Keys(rows(indices, shape.queries).nth(head).unwrap_or_default())
            }
            other => other,
        };
        let eps = noise.map(|eps| head_slice(eps, heads, head));
        ra_kernel::attention(shape, head_mean, noise_scale, q, k, v, eps, out, scratch)
    })
}

/// Multi-head [`ra::attention_sampled`](crate::ra::attention_sampled), heads drawn in order.
///
/// # Errors
/// As the single-head kernel, plus [`Error::ZeroDimension`]`(`[`Dim::Heads`]`)`.
#[allow(clippy::too_many_arguments)]
pub fn ra_sampled<R: RngCore + ?Sized>(
    heads: usize,
    shape: Shape,
    mean: ra_kernel::SampledMean,
    noise_scale: NoiseScale,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    rng: &mut R,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    check_stacked(heads, shape, q, k, v, out)?;
    for_each_head(heads, shape, q, k, v, out, |_, q, k, v, out| {
        ra_kernel::attention_sampled(shape, mean, noise_scale, q, k, v, rng, out, scratch)
    })
}

/// Multi-head [`rfa::positive`]: `omega [h, S, d]`.
///
/// # Errors
/// As the single-head kernel, plus [`Error::ZeroDimension`]`(`[`Dim::Heads`]`)`.
#[allow(clippy::too_many_arguments)]
pub fn rfa_positive(
    heads: usize,
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    check_stacked(heads, shape, q, k, v, out)?;
    check_stacked_omega(heads, shape, omega, features)?;
    for_each_head(heads, shape, q, k, v, out, |head, q, k, v, out| {
        rfa::positive(
            shape,
            head_slice(omega, heads, head),
            features,
            q,
            k,
            v,
            out,
            scratch,
        )
    })
}

/// Multi-head [`rfa::trigonometric`]: `omega [h, S, d]`.
///
/// # Errors
/// As the single-head kernel, plus [`Error::ZeroDimension`]`(`[`Dim::Heads`]`)`.
#[allow(clippy::too_many_arguments)]
pub fn rfa_trigonometric(
    heads: usize,
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    check_stacked(heads, shape, q, k, v, out)?;
    check_stacked_omega(heads, shape, omega, features)?;
    for_each_head(heads, shape, q, k, v, out, |head, q, k, v, out| {
        rfa::trigonometric(
            shape,
            head_slice(omega, heads, head),
            features,
            q,
            k,
            v,
            out,
            scratch,
        )
    })
}

/// Checks the stacked `q, k, v, out` (lengths and finiteness of all heads at once).
fn check_stacked(
    heads: usize,
    shape: Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &[f32],
) -> Result<(), Error> {
    if heads == 0 {
        return Err(Error::ZeroDimension(Dim::Heads));
    }
    let stacked = Shape {
        queries: checked_len(heads, shape.queries)?,
        keys: checked_len(heads, shape.keys)?,
        ..shape
    };
    stacked.check_qkv(q, k, v, out)
}

/// Checks stacked given landmarks `[heads, C, d]`; returns the landmark count `C'` of a head.
fn check_stacked_landmarks(
    heads: usize,
    shape: Shape,
    params: &lara_kernel::Params<'_>,
) -> Result<usize, Error> {
    match params.landmarks {
        lara_kernel::Landmarks::SegmentMeans(c) => Ok(lara_kernel::effective_landmarks(shape, c)),
        lara_kernel::Landmarks::Given {
            count,
            queries,
            keys,
        } => {
            check_stacked_input(Arg::QueryLandmarks, queries, heads, count, shape.dim)?;
            check_stacked_input(Arg::KeyLandmarks, keys, heads, count, shape.dim)?;
            Ok(count)
        }
    }
}

/// The parameters of one head: its slice of stacked given landmarks.
fn head_params<'a>(
    params: &lara_kernel::Params<'a>,
    heads: usize,
    head: usize,
) -> lara_kernel::Params<'a> {
    let landmarks = match params.landmarks {
        lara_kernel::Landmarks::Given {
            count,
            queries,
            keys,
        } => lara_kernel::Landmarks::Given {
            count,
            queries: head_slice(queries, heads, head),
            keys: head_slice(keys, heads, head),
        },
        segment_means => segment_means,
    };
    lara_kernel::Params {
        landmarks,
        ..*params
    }
}

/// Checks a stacked per-head input `[heads, rows, cols]`.
fn check_stacked_input(
    arg: Arg,
    data: &[f32],
    heads: usize,
    rows: usize,
    cols: usize,
) -> Result<(), Error> {
    check_len(arg, data, checked_len(heads, rows)?, cols)?;
    check_finite(arg, data)
}

fn check_stacked_omega(
    heads: usize,
    shape: Shape,
    omega: &[f32],
    features: usize,
) -> Result<(), Error> {
    if features == 0 {
        return Err(Error::ZeroFeatures);
    }
    check_stacked_input(Arg::Omega, omega, heads, features, shape.dim)
}

/// Head `head` of a stacked `[heads, …]` slice whose length was checked.
fn head_slice(data: &[f32], heads: usize, head: usize) -> &[f32] {
    rows(data, data.len() / heads.max(1))
        .nth(head)
        .unwrap_or_default()
}

/// Runs `kernel(head, q_h, k_h, v_h, out_h)` for every head; the first error stops the loop
/// (with every argument checked up front, only head 0 can fail, before anything is written).
fn for_each_head(
    heads: usize,
    shape: Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    mut kernel: impl FnMut(usize, &[f32], &[f32], &[f32], &mut [f32]) -> Result<(), Error>,
) -> Result<(), Error> {
    let q_heads = rows(q, shape.queries * shape.dim);
    let k_heads = rows(k, shape.keys * shape.dim);
    let v_heads = rows(v, shape.keys * shape.value_dim);
    let out_heads = rows_mut(out, shape.queries * shape.value_dim);
    for (head, (((q, k), v), out)) in q_heads
        .zip(k_heads)
        .zip(v_heads)
        .zip(out_heads)
        .enumerate()
        .take(heads)
    {
        kernel(head, q, k, v, out)?;
    }
    Ok(())
}
