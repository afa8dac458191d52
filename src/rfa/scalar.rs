//! The scalar reference kernels of RFA, one key or query at a time. (Each pass is its own
//! function, not inlined into the others: on Cortex-M the stack peak is then the larger pass,
//! not their sum.)

use super::{
    FeatureScales, FeatureState, Features, fourier_features, linear_attention_row,
    max_scaled_half_norm, positive_query_features,
};
use crate::inputs::Qkv;
use crate::math::axpy;
use crate::slices::{rows, rows_mut};

/// Positive features: one streaming pass over the keys into the state, then the queries.
#[inline(always)]
pub(super) fn positive(kernel: Features<'_, '_>) {
    let (x, out, omega, features, state, _) = kernel.head_parts();
    let scales = FeatureScales::new(x.shape, features);
    state.positive_key_pass(&x, scales, omega);
    positive_queries(&x, scales, omega, state, out);
}

/// `out_i = φq_i · Σ φk vᵀ / max(φq_i · Σ φk, 1e-2)` for every query, positive features.
#[inline(never)]
fn positive_queries(
    x: &Qkv<'_>,
    scales: FeatureScales,
    omega: &[f32],
    state: &mut FeatureState<'_>,
    out: &mut [f32],
) {
    let shape = x.shape;
    for (q_row, out_row) in rows(x.q, shape.dim).zip(rows_mut(out, shape.value_dim)) {
        positive_query_features(scales, q_row, omega, state.phi);
        linear_attention_row(state.phi, state.kv, state.k_sum, out_row);
    }
}

/// Trigonometric features: `kv = Σ_m φ(k_m) v_mᵀ`, `k_sum = Σ_m φ(k_m)` over the unmasked
/// keys, then the queries.
#[inline(always)]
pub(super) fn trigonometric(kernel: Features<'_, '_>) {
    let (x, out, omega, features, state, _) = kernel.head_parts();
    let scales = FeatureScales::new(x.shape, features);
    trigonometric_keys(&x, scales, omega, state);
    trigonometric_queries(&x, scales, omega, state, out);
}

/// The key pass of trigonometric features.
#[inline(never)]
fn trigonometric_keys(
    x: &Qkv<'_>,
    scales: FeatureScales,
    omega: &[f32],
    state: &mut FeatureState<'_>,
) {
    let FeatureState { kv, k_sum, phi, .. } = state;
    let (dim, value_dim) = (x.shape.dim, x.shape.value_dim);
    kv.fill(0.0);
    k_sum.fill(0.0);
    let key_max = max_scaled_half_norm(scales, x.k, dim, x.key_mask);
    let keys = rows(x.k, dim).zip(rows(x.v, value_dim));
    for ((k_row, v_row), unmasked) in keys.zip(x.unmasked_keys()) {
        if !unmasked {
            continue;
        }
        fourier_features(scales, key_max, k_row, omega, phi);
        for ((&f, kv_row), k_sum) in phi
            .iter()
            .zip(rows_mut(kv, value_dim))
            .zip(k_sum.iter_mut())
        {
            // kv_f += φ_f v,  k_sum_f += φ_f
            axpy(f, v_row, kv_row);
            *k_sum += f;
        }
    }
}

/// The query pass of trigonometric features.
#[inline(never)]
fn trigonometric_queries(
    x: &Qkv<'_>,
    scales: FeatureScales,
    omega: &[f32],
    state: &mut FeatureState<'_>,
    out: &mut [f32],
) {
    let (dim, value_dim) = (x.shape.dim, x.shape.value_dim);
    let query_max = max_scaled_half_norm(scales, x.q, dim, None);
    for (q_row, out_row) in rows(x.q, dim).zip(rows_mut(out, value_dim)) {
        fourier_features(scales, query_max, q_row, omega, state.phi);
        linear_attention_row(state.phi, state.kv, state.k_sum, out_row);
    }
}
