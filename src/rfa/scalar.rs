//! The scalar reference kernels of RFA, one key or query at a time.

use super::{
    FeatureScales, FeatureState, Features, fourier_features, linear_attention_row,
    max_scaled_half_norm, positive_query_features,
};
use crate::slices::{rows, rows_mut};

/// Positive features: one streaming pass over the keys into the state, then the queries.
pub(super) fn positive(kernel: Features<'_, '_>) {
    let Features {
        x,
        omega,
        features,
        out,
        state,
        ..
    } = kernel;
    let shape = x.shape;
    let scales = FeatureScales::new(shape, features);
    state.positive_key_pass(x, scales, omega);
    for (q_row, out_row) in rows(x.q, shape.dim).zip(rows_mut(out, shape.value_dim)) {
        positive_query_features(scales, q_row, omega, state.phi);
        linear_attention_row(state.phi, state.kv, state.k_sum, out_row);
    }
}

/// Trigonometric features: `kv = Σ_m φ(k_m) v_mᵀ`, `k_sum = Σ_m φ(k_m)` over the unmasked
/// keys, then the queries.
pub(super) fn trigonometric(kernel: Features<'_, '_>) {
    let Features {
        x,
        omega,
        features,
        out,
        state,
        ..
    } = kernel;
    let FeatureState { kv, k_sum, phi, .. } = state;
    let shape = x.shape;
    let (dim, value_dim) = (shape.dim, shape.value_dim);
    let scales = FeatureScales::new(shape, features);
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
            crate::math::axpy(f, v_row, kv_row);
            *k_sum += f;
        }
    }
    let query_max = max_scaled_half_norm(scales, x.q, dim, None);
    for (q_row, out_row) in rows(x.q, dim).zip(rows_mut(out, value_dim)) {
        fourier_features(scales, query_max, q_row, omega, phi);
        linear_attention_row(phi, kv, k_sum, out_row);
    }
}
