//! The layers that hold one head's `q`, `k`, `v` (softmax, RA and random features): project
//! the head, run its estimator, add its share of the output projection.

use super::linear::{HeadLinear, OutputProjection, Third, project};
use super::{Attention, Config, Layer, Layout, RandomizedMean, Tokens};
use crate::error::{Arg, Error};
use crate::inputs::{Qkv, Sampling};
use crate::shape::{Shape, check_finite};
use crate::simd::{self, Available};
use crate::slices::{copy, part, rows_mut, take};
use crate::{exact, ra, rfa};

/// The estimator's scratch for one head of `n` tokens.
const fn estimator_len(config: &Config, n: usize, tiles: bool) -> usize {
    let shape = Shape::self_attention(n, config.head_dim());
    match config.attention {
        Attention::Softmax => exact::len(shape, tiles),
        Attention::Randomized(_) => ra::len(shape, tiles),
        Attention::Kernelized { map, features } => rfa::len(shape, map, features, tiles),
        Attention::Lara(_) => 0,
    }
}

/// Scratch of [`forward`]: one head's `q`, `k`, `v` and output (`4·n·d`), the estimator's
/// scratch and (blocked kernels) one packed weight `[dim, d]`.
pub(super) const fn scratch_len(config: &Config, layout: Layout, tiles: bool) -> usize {
    let n = layout.tokens();
    let head = n.saturating_mul(config.head_dim());
    let packed = if tiles {
        config.dim.saturating_mul(config.head_dim())
    } else {
        0
    };
    head.saturating_mul(4)
        .saturating_add(estimator_len(config, n, tiles))
        .saturating_add(packed)
}

/// The softmax, RA or random-feature layer on checked tokens and a scratch of
/// [`scratch_len`].
pub(super) fn forward(
    backend: Available,
    layer: &Layer<'_>,
    tokens: &Tokens<'_>,
    mut sampling: Sampling<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    let (config, weights) = (&layer.config, &layer.weights);
    let (dim, heads, d) = (config.dim, config.heads, config.head_dim());
    let n = tokens.layout.tokens();
    check_sampling(config, tokens, &sampling, n)?;
    let tiles = backend.backend().is_blocked();
    let mut rest = scratch;
    let (q, k, v, o) = (
        take(&mut rest, n * d),
        take(&mut rest, n * d),
        take(&mut rest, n * d),
        take(&mut rest, n * d),
    );
    let estimator_scratch = take(&mut rest, estimator_len(config, n, tiles));
    let packed = rest;

    // out_t = b_proj; every head adds o_t,h · W_proj[:, h·d..]ᵀ
    for out_row in rows_mut(out, dim) {
        copy(out_row, weights.proj_bias);
    }
    for head in 0..heads {
        // q, k, v of the head = x W_{q,k,v}ᵀ + b
        for (third, projected) in [
            (Third::Queries, &mut *q),
            (Third::Keys, &mut *k),
            (Third::Values, &mut *v),
        ] {
            let linear = HeadLinear::qkv(weights, third, head, (d, dim));
            if tiles {
                linear.pack(dim, packed);
            }
            project(backend, (tokens.x, dim), linear, packed, projected);
        }
        let x = Qkv {
            shape: Shape::self_attention(n, d),
            q,
            k,
            v,
            key_mask: tokens.key_mask,
        };
        // o = attention of the head
        match config.attention {
            Attention::Softmax => exact::attention_on(backend, &x, o, estimator_scratch)?,
            Attention::Randomized(mean) => {
                let mean = match mean {
                    RandomizedMean::KeyAverage => ra::Mean::KeyAverage,
                    RandomizedMean::AttentionWeighted => ra::Mean::AttentionWeighted,
                    RandomizedMean::SampledKey => ra::Mean::SampledKey,
                };
                let head_sampling = match &mut sampling {
                    Sampling::Eval => Sampling::Eval,
                    Sampling::Noise(eps) => Sampling::Noise(part(eps, heads, head)),
                    Sampling::Draw(rng) => Sampling::Draw(&mut **rng),
                };
                let params = ra::Params::new(mean);
                ra::attention_on(backend, &x, &params, head_sampling, o, estimator_scratch)?;
            }
            Attention::Kernelized { map, .. } => {
                let omega = weights.eval_proj.unwrap_or_default();
                let params = rfa::Params {
                    map,
                    omega: part(omega, heads, head),
                };
                rfa::attention_on(backend, &x, &params, o, estimator_scratch)?;
            }
            Attention::Lara(_) => {}
        }
        if tiles {
            OutputProjection::pack(weights.proj_weight, (head * d, d), dim, packed);
        }
        let projection = OutputProjection {
            o,
            weight: weights.proj_weight,
            columns: (head * d, d),
            packed,
            out: &mut *out,
        };
        simd::run(backend, projection);
    }
    Ok(())
}

/// Checks the sampling and the mask against the module: only RA samples, and the official
/// RA ignores the mask (refused here rather than ignored).
fn check_sampling(
    config: &Config,
    tokens: &Tokens<'_>,
    sampling: &Sampling<'_>,
    n: usize,
) -> Result<(), Error> {
    match (config.attention, sampling) {
        (Attention::Randomized(_), _) if tokens.key_mask.is_some() => Err(Error::InvalidConfig(
            "the official RandomizedAttention ignores key_padding_mask: pass none",
        )),
        (
            Attention::Randomized(RandomizedMean::SampledKey),
            Sampling::Eval | Sampling::Noise(_),
        ) => Err(Error::GeneratorRequired),
        (Attention::Randomized(_), Sampling::Noise(eps)) => {
            let shape = Shape::self_attention(n, config.head_dim()).with_heads(config.heads);
            shape.check_stacked(Arg::Noise, eps, n, config.head_dim())?;
            check_finite(Arg::Noise, eps)
        }
        (Attention::Randomized(_), _) | (_, Sampling::Eval) => Ok(()),
        _ => Err(Error::InvalidConfig(
            "softmax and random-feature layers have no sampled mode",
        )),
    }
}
