//! Causal and streaming attention: token-by-token states of fixed size for firmware that runs on
//! a sensor stream, where token `i` may only attend to tokens `0..=i`.
//!
//! * [`RfaState`]: causal random-feature attention as a recurrent state over a caller buffer of
//!   [`RfaState::buffer_len`] floats, for every [`FeatureMap`]: `Σ_m φ(k_m) v_mᵀ` and
//!   `Σ_m φ(k_m)`. [`RfaState::push`] adds one key/value, [`RfaState::attend`] answers one
//!   query, both in `O(F · (d + d_v))`; no history is kept. [`RfaState::push_gated`] is the
//!   gated update of Peng et al. 2021, `S ← g·S + (1 − g)·φ(k) vᵀ`.
//! * [`rfa()`]: the batch causal kernel over a whole sequence (`out_i` attends to keys `0..=i`),
//!   which runs the same state token by token and so gives the same numbers, bit for bit.
//! * [`KvCache`]: causal exact softmax attention over a caller-provided ring buffer of `W` keys
//!   and values ([`KvCache::buffer_len`] floats), a sliding window of the last `W` tokens once
//!   full: the reference for the RFA streams.
//!
//! # Stabilisers and long streams
//!
//! The official feature maps subtract a maximum taken over *all* keys (`max_m,r B[m,r]` for
//! positive features, `max_m s|k_m|²/2` for trigonometric ones). Causally, the maximum is taken
//! over the keys pushed so far: the state stores its exponential sums relative to that running
//! log-scale `M` and rescales them by `exp(M_old − M_new)` when a key raises it (the online trick
//! of [`rfa::attention`]). Nothing is ever exponentiated above `0`, so
//! the sums cannot overflow whatever the key norms, and each answer equals the official
//! estimator applied to the prefix: [`RfaState::attend`] after pushing `k_0..k_i` is, up to
//! rounding, [`rfa::attention`] with the single query `q` and keys
//! `k_0..=k_i`. The positive features' `+1e-4` floor enters linearly and is kept exactly, apart
//! from the sums: a running `Σ_m v_m` and `Σ_m 1` (the token weight). In log space every feature
//! keeps its own running maximum, and a sum that gates decay towards zero is folded into its
//! feature's log-scale, so none underflows.
//!
//! Ungated sums grow linearly with the number of tokens (they are means times a count), which
//! costs relative precision like any `f32` running sum: about `√n · 2^-24` typically; the
//! measured drift after 100 000 tokens is in `tests/causal.rs`. Inputs whose squared norm or
//! projections overflow `f32` (`|x| ≳ 10^19`) give non-finite outputs, as in [`crate::rfa`].

use crate::error::{Arg, Dim, Error};
use crate::inputs::Qkv;
use crate::math::{OnlineLse, axpy, dot, exp, half_sq_norm, ln, max, scale};
use crate::rfa::{
    self, DENOMINATOR_FLOOR, FEATURE_FLOOR, FeatureMap, FeatureScales, features_of,
    positive_query_features, project, scaled_fourier_features,
};
use crate::shape::{
    Shape, check_finite, check_len, checked_len, checked_scratch_len, take_scratch,
};
use crate::slices::{copy, part, part_mut, rows, rows_mut, take};

/// `Ok` if the gate is in `[0, 1]` (which excludes NaN and the infinities).
fn check_gate(gate: f32) -> Result<(), Error> {
    if (0.0..=1.0).contains(&gate) {
        Ok(())
    } else if !gate.is_finite() {
        Err(Error::NonFinite(Arg::Gates))
    } else {
        Err(Error::OutOfRange(Arg::Gates))
    }
}

/// Causal random-feature attention as a recurrent state over a caller buffer: one
/// [`push`](Self::push) per token, one [`attend`](Self::attend) per query, `O(F · (d + d_v))`
/// each, `F` = `S` (positive, log space) or `2·S` (trigonometric) features, and no history kept.
///
/// After pushing `k_0, v_0 … k_i, v_i`, with `ω [S, d]`, `s = d^-1/2`, `h(x) = s|x|²/2`:
///
/// ```text
/// positive:   B[m,r] = d^-1/4 k_m·ω_r,   M = max_{m≤i, r} B[m,r]
///             φk[m,r] = S^-1/2 exp(B[m,r] − h(k_m) − M) + 1e-4
///             φq[r]   = S^-1/2 exp(A_r − h(q) − max_r' A_r') + 1e-4,   A_r = d^-1/4 q·ω_r
/// trig:       H = max_{m≤i} h(k_m)
///             φk[m]   = S^-1/2 exp(h(k_m) − H) [sin B[m,·], cos B[m,·]]
///             φq      = S^-1/2 [sin A, cos A]
/// out = Σ_f φq[f] Σ_m w_m φk[m,f] v_m / max(Σ_f φq[f] Σ_m w_m φk[m,f], 1e-2)
/// log space:  out = Σ_r softmax_r(A_r + lse_m(B[m,r] − h(k_m) + ln w_m)) kv_r,
///             kv_r = Σ_m softmax_m(B[m,r] − h(k_m) + ln w_m) v_m
/// ```
///
/// with weights `w_m = 1` for [`push`](Self::push) and `w_m = (1 − g_m) Π_{m<j≤i} g_j` for
/// [`push_gated`](Self::push_gated) (the two can be mixed: an ungated push is `w = 1`, leaving the
/// older weights unchanged). Before any push the output is zero.
///
/// # Example
/// ```
/// use lara_attn::random;
/// use lara_attn::causal::RfaState;
/// use lara_attn::rfa::{FeatureMap, Params};
/// const D: usize = 4;
/// const DV: usize = 2;
/// const S: usize = 8;
/// let mut omega = [0.0; S * D];
/// random::gaussian_omega(&mut random::default_rng(7), S, D, &mut omega)?;
/// let mut buffer = [0.0; RfaState::buffer_len(FeatureMap::Positive, DV, S)];
/// let params = Params { map: FeatureMap::Positive, omega: &omega };
/// let mut state = RfaState::new(&params, D, DV, &mut buffer)?;
/// let mut out = [0.0; DV];
/// for t in 0..100 {
///     let x = [(t as f32 * 0.1).sin(), 0.5, -0.25, (t as f32 * 0.3).cos()];
///     state.push(&x, &[1.0, -1.0])?;
///     state.attend(&x, &mut out)?;
///     // Every value is (1, −1): a convex combination of them is (1, −1) again.
///     assert!((out[0] - 1.0).abs() < 1e-4 && (out[1] + 1.0).abs() < 1e-4);
/// }
/// assert_eq!(state.tokens(), 100);
/// # Ok::<(), lara_attn::Error>(())
/// ```
pub struct RfaState<'a> {
    map: FeatureMap,
    dim: usize,
    value_dim: usize,
    omega: &'a [f32],
    scales: FeatureScales,
    /// `[F, d_v]`: `Σ_m w_m e[m,f] v_m` relative to the running log-scale (per feature in log
    /// space).
    kv: &'a mut [f32],
    /// `[F]`: `Σ_m w_m e[m,f]`.
    k_sum: &'a mut [f32],
    /// `[F]`: one row of projections / features.
    phi: &'a mut [f32],
    /// `[d_v]`: `Σ_m w_m v_m` (positive features' floor term; empty otherwise).
    v_sum: &'a mut [f32],
    /// `[S]`: the log-scale of each feature's sums (log space only; empty otherwise).
    feature_scale: &'a mut [f32],
    /// The running log-scale `M` (positive) or `H` (trigonometric); `-inf` before any push.
    log_scale: f32,
    /// `Σ_m w_m` (positive features' floor term).
    weight: f32,
    tokens: u64,
}

impl<'a> RfaState<'a> {
    /// Floats of the buffer a state (and the batch kernel [`rfa()`]) needs with `features` (`S`)
    /// projections, independent of the number of tokens: `S · (d_v + 2) + d_v` for positive
    /// features (`Σ φ(k) vᵀ`, `Σ φ(k)`, one feature row, `Σ v`), `2S · (d_v + 2)` for
    /// trigonometric ones, `S · (d_v + 3)` in log space (a log-scale per feature).
    pub const fn buffer_len(map: FeatureMap, value_dim: usize, features: usize) -> usize {
        let total = map.feature_count(features);
        let extra = match map {
            FeatureMap::Positive => value_dim,
            FeatureMap::Trigonometric => 0,
            FeatureMap::PositiveLogSpace => features,
        };
        total
            .saturating_mul(value_dim.saturating_add(2))
            .saturating_add(extra)
    }

    /// A new, empty state for keys and queries of dimension `dim`, values of dimension
    /// `value_dim`, and the map and `ω [S, dim]` of `params`, over the first
    /// [`buffer_len`](Self::buffer_len)`(map, value_dim, S)` floats of `buffer`.
    ///
    /// # Errors
    /// A zero `dim` or `value_dim` ([`Error::ZeroDimension`]), an empty `ω`
    /// ([`Error::ZeroFeatures`]), one that is not whole rows of `dim` or holds a non-finite
    /// value, or a buffer shorter than [`buffer_len`](Self::buffer_len). Nothing is written on
    /// error.
    pub fn new(
        params: &rfa::Params<'a>,
        dim: usize,
        value_dim: usize,
        buffer: &'a mut [f32],
    ) -> Result<Self, Error> {
        let shape = Shape::cross(1, 1, dim, value_dim);
        shape.check_nonzero()?;
        let features = features_of(shape, params.omega)?;
        Self::split(params, shape, features, buffer)
    }

    /// The state over the front of `buffer`, on checked dimensions and `ω`.
    fn split(
        params: &rfa::Params<'a>,
        shape: Shape,
        features: usize,
        buffer: &'a mut [f32],
    ) -> Result<Self, Error> {
        let map = params.map;
        let total = checked_len(features, map.feature_count(1))?;
        let needed = checked_scratch_len(Self::buffer_len(map, shape.value_dim, features))?;
        let mut rest = take_scratch(buffer, needed)?;
        let kv = take(&mut rest, checked_len(total, shape.value_dim)?);
        let k_sum = take(&mut rest, total);
        let phi = take(&mut rest, total);
        let (v_sum, feature_scale) = match map {
            FeatureMap::Positive => (take(&mut rest, shape.value_dim), take(&mut rest, 0)),
            FeatureMap::Trigonometric => (take(&mut rest, 0), take(&mut rest, 0)),
            FeatureMap::PositiveLogSpace => (take(&mut rest, 0), take(&mut rest, features)),
        };
        let mut state = RfaState {
            map,
            dim: shape.dim,
            value_dim: shape.value_dim,
            omega: params.omega,
            scales: FeatureScales::new(shape, features),
            kv,
            k_sum,
            phi,
            v_sum,
            feature_scale,
            log_scale: f32::NEG_INFINITY,
            weight: 0.0,
            tokens: 0,
        };
        state.reset();
        Ok(state)
    }

    /// Forgets every token: the state is empty again.
    pub fn reset(&mut self) {
        self.kv.fill(0.0);
        self.k_sum.fill(0.0);
        self.phi.fill(0.0);
        self.v_sum.fill(0.0);
        self.feature_scale.fill(f32::NEG_INFINITY);
        self.log_scale = f32::NEG_INFINITY;
        self.weight = 0.0;
        self.tokens = 0;
    }

    /// The feature map of this state.
    pub fn map(&self) -> FeatureMap {
        self.map
    }

    /// The number of tokens pushed since the state was created or reset.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// The running log-scale: `max B` over the keys pushed so far (positive features) or
    /// `max s|k|²/2` (trigonometric); `-inf` before any push and in log space (whose
    /// log-scales are per feature).
    pub fn log_scale(&self) -> f32 {
        self.log_scale
    }

    /// Adds one token, `k [d]` and `v [d_v]`: `S ← S + φ(k) vᵀ`, `z ← z + φ(k)`.
    ///
    /// # Errors
    /// A slice of the wrong length ([`Arg::Keys`], [`Arg::Values`]) or a non-finite input.
    /// The state is unchanged on error.
    pub fn push(&mut self, k: &[f32], v: &[f32]) -> Result<(), Error> {
        self.check_token(k, v)?;
        self.update(k, v, None);
        Ok(())
    }

    /// Adds one token with the recency gate `g ∈ [0, 1]` (Peng et al. 2021):
    /// `S ← g·S + (1 − g)·φ(k) vᵀ`, `z ← g·z + (1 − g)·φ(k)` (and, for positive features, the
    /// floor terms `Σ v ← g·Σ v + (1 − g)·v`, `Σ 1 ← g·Σ 1 + (1 − g)`). `g = 1` ignores the token,
    /// `g = 0` forgets everything before it.
    ///
    /// # Errors
    /// As [`push`](Self::push), and `Error::NonFinite(`[`Arg::Gates`]`)` for a NaN or infinite `g`,
    /// `Error::OutOfRange(`[`Arg::Gates`]`)` for a finite `g` outside `[0, 1]`. The state is unchanged on error.
    pub fn push_gated(&mut self, k: &[f32], v: &[f32], gate: f32) -> Result<(), Error> {
        self.check_token(k, v)?;
        check_gate(gate)?;
        self.update(k, v, Some(gate));
        Ok(())
    }

    /// Attends `q [d]` to every token pushed so far, into `out [d_v]`.
    ///
    /// Takes `&mut self` only for the state's feature row; the sums are not modified.
    ///
    /// # Errors
    /// A slice of the wrong length ([`Arg::Queries`], [`Arg::Output`]) or a non-finite query.
    /// Nothing is written on error.
    pub fn attend(&mut self, q: &[f32], out: &mut [f32]) -> Result<(), Error> {
        check_len(Arg::Queries, q, 1, self.dim)?;
        check_len(Arg::Output, out, 1, self.value_dim)?;
        check_finite(Arg::Queries, q)?;
        self.attend_checked(q, out);
        Ok(())
    }

    fn check_token(&self, k: &[f32], v: &[f32]) -> Result<(), Error> {
        check_len(Arg::Keys, k, 1, self.dim)?;
        check_len(Arg::Values, v, 1, self.value_dim)?;
        check_finite(Arg::Keys, k)?;
        check_finite(Arg::Values, v)
    }

    /// Raises the running log-scale to `x` if `x` exceeds it, rescaling the exponential sums by
    /// `exp(M_old − M_new)` so they stay relative to it (exact up to rounding: the floor terms
    /// are kept apart and not rescaled).
    fn raise_log_scale(&mut self, x: f32) {
        if x > self.log_scale {
            if self.log_scale > f32::NEG_INFINITY {
                // S ← exp(M_old − M_new)·S,  z ← exp(M_old − M_new)·z
                let rescale = exp(self.log_scale - x);
                scale(self.kv, rescale);
                scale(self.k_sum, rescale);
            }
            self.log_scale = x;
        }
    }

    /// The update on checked arguments; `gate = None` is the plain sum (`keep = add = 1`, which
    /// skips the multiplications by one, so mixing gated and ungated pushes is consistent).
    fn update(&mut self, k: &[f32], v: &[f32], gate: Option<f32>) {
        let scales = self.scales;
        match self.map {
            FeatureMap::Positive => {
                // B_r = d^-1/4 k·ω_r
                project(scales.data, k, self.omega, self.phi);
                // M ← max(M, max_r B_r)
                let row_max = max(self.phi);
                self.raise_log_scale(row_max);
                // e_r = exp(B_r − s|k|²/2 − M)   (S^-1/2 and the +1e-4 floor are applied when
                // attending)
                let shift = scales.half_norm * half_sq_norm(k) + self.log_scale;
                for p in self.phi.iter_mut() {
                    *p = exp(*p - shift);
                }
            }
            FeatureMap::Trigonometric => {
                // H ← max(H, s|k|²/2)
                let h = scales.half_norm * half_sq_norm(k);
                self.raise_log_scale(h);
                // φ(k) = S^-1/2 exp(s|k|²/2 − H) [sin B, cos B]
                let magnitude = scales.ratio * exp(h - self.log_scale);
                scaled_fourier_features(scales.data, magnitude, k, self.omega, self.phi);
            }
            FeatureMap::PositiveLogSpace => {
                self.update_log_space(k, v, gate);
                self.tokens = self.tokens.saturating_add(1);
                return;
            }
        }
        let value_dim = self.value_dim;
        match gate {
            None => {
                // S_f ← S_f + φ_f v,  z_f ← z_f + φ_f
                for ((&f, kv_row), k_sum) in self
                    .phi
                    .iter()
                    .zip(rows_mut(self.kv, value_dim))
                    .zip(self.k_sum.iter_mut())
                {
                    axpy(f, v, kv_row);
                    *k_sum += f;
                }
                // Floor terms: Σ v ← Σ v + v,  Σ 1 ← Σ 1 + 1
                if self.map == FeatureMap::Positive {
                    axpy(1.0, v, self.v_sum);
                    self.weight += 1.0;
                }
            }
            Some(g) => {
                let add = 1.0 - g;
                // S_f ← g·S_f + (1 − g)·φ_f v,  z_f ← g·z_f + (1 − g)·φ_f
                for ((&f, kv_row), k_sum) in self
                    .phi
                    .iter()
                    .zip(rows_mut(self.kv, value_dim))
                    .zip(self.k_sum.iter_mut())
                {
                    scale(kv_row, g);
                    axpy(add * f, v, kv_row);
                    *k_sum = g * *k_sum + add * f;
                }
                // Floor terms: Σ v ← g·Σ v + (1 − g)·v,  Σ 1 ← g·Σ 1 + (1 − g)
                if self.map == FeatureMap::Positive {
                    scale(self.v_sum, g);
                    axpy(add, v, self.v_sum);
                    self.weight = g * self.weight + add;
                }
            }
        }
        self.tokens = self.tokens.saturating_add(1);
    }

    /// The log-space update: per feature an online log-sum-exp of `LK_r = B_r − s|k|²/2 + ln w`
    /// with its weighted value sum. A gate `g` multiplies the old sums by `g` in linear space
    /// (exact to rounding whatever the log-scale; `g = 0` empties them), and a sum that decays
    /// below `2^-60` is folded into its feature's log-scale, so none underflows.
    fn update_log_space(&mut self, k: &[f32], v: &[f32], gate: Option<f32>) {
        /// Below this a feature's sum is folded into its log-scale.
        const SMALL: f32 = 8.673_617e-19; // 2^-60
        // LK_r = d^-1/4 k·ω_r − s|k|²/2 + ln(1 − g); g = 1 ignores the token (its weight is 0)
        let add_ln = gate.map_or(0.0, |g| ln(1.0 - g));
        let scales = self.scales;
        project(scales.data, k, self.omega, self.phi);
        let shift = scales.half_norm * half_sq_norm(k) - add_ln;
        let value_dim = self.value_dim;
        let features = rows_mut(self.kv, value_dim)
            .zip(self.k_sum.iter_mut())
            .zip(self.feature_scale.iter_mut());
        for (((kv_row, sum), log_scale), &b) in features.zip(self.phi.iter()) {
            if let Some(g) = gate {
                // z_r ← g·z_r,  kv_r ← g·kv_r
                *sum *= g;
                scale(kv_row, g);
            }
            if *sum == 0.0 {
                // empty (or emptied by g = 0): no log-scale yet
                *log_scale = f32::NEG_INFINITY;
                kv_row.fill(0.0);
            }
            let mut lse = OnlineLse {
                max: *log_scale,
                sum: *sum,
            };
            lse.push(b - shift, v, kv_row);
            (*log_scale, *sum) = (lse.max, lse.sum);
            if *sum > 0.0 && *sum < SMALL {
                // z_r ← 1, kv_r ← kv_r / z_r, log-scale_r ← log-scale_r + ln z_r
                *log_scale += ln(*sum);
                scale(kv_row, 1.0 / *sum);
                *sum = 1.0;
            }
        }
    }

    /// The query on checked arguments.
    fn attend_checked(&mut self, q: &[f32], out: &mut [f32]) {
        let scales = self.scales;
        out.fill(0.0);
        let denominator = match self.map {
            FeatureMap::Positive => {
                // φq_r = S^-1/2 exp(A_r − s|q|²/2 − max_r' A_r') + 1e-4
                positive_query_features(scales, q, self.omega, self.phi);
                // Σ_m φk[m,r] v_m = S^-1/2 kv_r + 1e-4 Σ v,  Σ_m φk[m,r] = S^-1/2 z_r + 1e-4 Σ 1:
                // num = S^-1/2 Σ_r φq_r kv_r + 1e-4 (Σ_r φq_r) Σ v
                // den = S^-1/2 Σ_r φq_r z_r  + 1e-4 (Σ_r φq_r) Σ 1
                let mut dot_z = 0.0f32;
                let mut phi_total = 0.0f32;
                for ((&p, kv_row), &z) in self
                    .phi
                    .iter()
                    .zip(rows(self.kv, self.value_dim))
                    .zip(self.k_sum.iter())
                {
                    axpy(p, kv_row, out);
                    dot_z += p * z;
                    phi_total += p;
                }
                scale(out, scales.ratio);
                axpy(FEATURE_FLOOR * phi_total, self.v_sum, out);
                scales.ratio * dot_z + FEATURE_FLOOR * phi_total * self.weight
            }
            FeatureMap::Trigonometric => {
                // φq = S^-1/2 [sin A, cos A]   (the official exp(h − max h) is 1 for one query)
                scaled_fourier_features(scales.data, scales.ratio, q, self.omega, self.phi);
                // num = Σ_f φq_f kv_f,  den = Σ_f φq_f z_f
                let mut den = 0.0f32;
                for ((&p, kv_row), &z) in self
                    .phi
                    .iter()
                    .zip(rows(self.kv, self.value_dim))
                    .zip(self.k_sum.iter())
                {
                    axpy(p, kv_row, out);
                    den += p * z;
                }
                den
            }
            FeatureMap::PositiveLogSpace => {
                self.attend_log_space(q, out);
                return;
            }
        };
        // out = num / max(den, 1e-2)
        scale(out, 1.0 / denominator.max(DENOMINATOR_FLOOR));
    }

    /// `out = Σ_r softmax_r(A_r + lseK_r) kv_r / z_r`, `lseK_r = log-scale_r + ln z_r`.
    fn attend_log_space(&mut self, q: &[f32], out: &mut [f32]) {
        // logit_r = d^-1/4 q·ω_r + lseK_r (−∞ for a feature with no token)
        project(self.scales.data, q, self.omega, self.phi);
        for ((logit, &log_scale), &sum) in self
            .phi
            .iter_mut()
            .zip(self.feature_scale.iter())
            .zip(self.k_sum.iter())
        {
            *logit = if sum > 0.0 {
                *logit + log_scale + ln(sum)
            } else {
                f32::NEG_INFINITY
            };
        }
        let top = max(self.phi);
        if top == f32::NEG_INFINITY {
            // no token yet: the output is zero
            return;
        }
        // out = Σ_r e^(logit_r − max) kv_r / z_r / Σ_r e^(logit_r − max)
        let mut total = 0.0;
        for ((&logit, kv_row), &sum) in self
            .phi
            .iter()
            .zip(rows(self.kv, self.value_dim))
            .zip(self.k_sum.iter())
        {
            let weight = exp(logit - top);
            if weight > 0.0 {
                axpy(weight / sum, kv_row, out);
                total += weight;
            }
        }
        scale(out, 1.0 / total);
    }
}

impl core::fmt::Debug for RfaState<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RfaState")
            .field("map", &self.map)
            .field("dim", &self.dim)
            .field("value_dim", &self.value_dim)
            .field("feature_count", &self.k_sum.len())
            .field("tokens", &self.tokens)
            .field("log_scale", &self.log_scale)
            .finish_non_exhaustive()
    }
}

/// Scratch (in `f32`s) of the batch kernel [`rfa()`]: [`RfaState::buffer_len`], independent of
/// `n` and `h`.
pub const fn scratch_len(shape: Shape, map: FeatureMap, features: usize) -> usize {
    RfaState::buffer_len(map, shape.value_dim, features)
}

/// Batch causal RFA over whole sequences: per head, `out_i` attends to the keys `0..=i`,
/// exactly as pushing `k_i, v_i` (gated by `gates[i]` if given) into an [`RfaState`] and then
/// attending `q_i`, token by token — which is what this function does, so the numbers are the
/// same bit for bit. A masked key is not pushed (its query still attends to the earlier keys).
///
/// `x.shape` must have as many queries as keys; `params.omega [h, S, d]`; `gates [h, n]` in
/// `[0, 1]`, or `None` for the ungated sums.
///
/// Cost: `O(h · n · F · (d + d_v))` time, [`scratch_len`] floats of scratch.
///
/// # Errors
/// A zero dimension, an empty `ω` or one that is not whole rows of `h · d`, a slice whose
/// length does not match (`q` is reported against `n_k · d` when `n_q ≠ n_k`), a gate slice of
/// the wrong length or a gate outside `[0, 1]` ([`Arg::Gates`]), a key mask that masks every
/// key, scratch shorter than [`scratch_len`], or a non-finite input. Nothing is written on
/// error.
pub fn rfa(
    x: &Qkv<'_>,
    params: &rfa::Params<'_>,
    gates: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    let shape = x.shape;
    if shape.queries != shape.keys {
        return Err(Error::LengthMismatch {
            arg: Arg::Queries,
            expected: shape.stacked(shape.keys, shape.dim)?,
            actual: x.q.len(),
        });
    }
    let features = rfa::check_args(x, params, out)?;
    if let Some(gates) = gates {
        shape.check_stacked(Arg::Gates, gates, shape.keys, 1)?;
        for &g in gates {
            check_gate(g)?;
        }
    }
    let needed = scratch_len(shape, params.map, features);
    let scratch = take_scratch(scratch, needed)?;
    let heads = shape.heads;
    for head in 0..heads {
        let (x, out) = (x.head(head), part_mut(out, heads, head));
        let head_params = rfa::Params {
            map: params.map,
            omega: part(params.omega, heads, head),
        };
        // (cannot fail: the scratch length is checked above)
        let mut state = RfaState::split(&head_params, x.shape, features, &mut *scratch)?;
        let gates = gates.map(|gates| part(gates, heads, head));
        let tokens = rows(x.q, shape.dim)
            .zip(rows(x.k, shape.dim))
            .zip(rows(x.v, shape.value_dim))
            .zip(rows_mut(out, shape.value_dim))
            .zip(x.unmasked_keys());
        for (token, ((((q_row, k_row), v_row), out_row), unmasked)) in tokens.enumerate() {
            if unmasked {
                let gate = gates.and_then(|gates| gates.get(token).copied());
                state.update(k_row, v_row, gate);
            }
            state.attend_checked(q_row, out_row);
        }
    }
    Ok(())
}

/// Causal exact softmax attention over a ring buffer of the last `W` keys and values (`W` =
/// capacity), in a caller buffer of [`KvCache::buffer_len`] floats: the reference for the RFA
/// streams.
///
/// [`push`](Self::push) stores one token (overwriting the oldest once `W` are stored: a sliding
/// window), [`attend`](Self::attend) computes `out = Σ_j softmax_j(s · q·k_j) v_j`, `s = d^-1/2`,
/// over the stored tokens, oldest first, with an online softmax (`O(W · (d + d_v))`, no scratch).
/// Before any push the output is zero.
///
/// # Example
/// ```
/// use lara_attn::causal::KvCache;
/// let mut buffer = [0.0; KvCache::buffer_len(2, 2, 1)];
/// let mut cache = KvCache::new(2, 1, 2, &mut buffer)?;
/// let mut out = [0.0];
/// for (t, value) in [1.0, 2.0, 3.0].into_iter().enumerate() {
///     cache.push(&[0.0, t as f32], &[value])?; // the third push evicts the first
/// }
/// cache.attend(&[0.0, 0.0], &mut out)?; // equal logits: the mean of the window's values
/// assert!((out[0] - 2.5).abs() < 1e-6);
/// # Ok::<(), lara_attn::Error>(())
/// ```
#[derive(Debug)]
pub struct KvCache<'a> {
    dim: usize,
    value_dim: usize,
    capacity: usize,
    scale: f32,
    /// `[W, d]`
    keys: &'a mut [f32],
    /// `[W, d_v]`
    values: &'a mut [f32],
    /// The slot the next push writes.
    next: usize,
    /// Tokens stored, `≤ W`.
    len: usize,
}

impl<'a> KvCache<'a> {
    /// Floats of the buffer a cache of `capacity` tokens needs: `capacity · (d + d_v)`.
    pub const fn buffer_len(capacity: usize, dim: usize, value_dim: usize) -> usize {
        capacity.saturating_mul(dim.saturating_add(value_dim))
    }

    /// An empty cache of `capacity` tokens over the first [`KvCache::buffer_len`] floats of
    /// `buffer`.
    ///
    /// # Errors
    /// A zero `dim`, `value_dim` or `capacity` ([`Error::ZeroDimension`] of [`Dim::Model`],
    /// [`Dim::Value`], [`Dim::Keys`]), or a buffer shorter than [`KvCache::buffer_len`]. Nothing is
    /// written on error.
    pub fn new(
        dim: usize,
        value_dim: usize,
        capacity: usize,
        buffer: &'a mut [f32],
    ) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::ZeroDimension(Dim::Model));
        }
        if value_dim == 0 {
            return Err(Error::ZeroDimension(Dim::Value));
        }
        if capacity == 0 {
            return Err(Error::ZeroDimension(Dim::Keys));
        }
        let key_len = checked_len(capacity, dim)?;
        let value_len = checked_len(capacity, value_dim)?;
        let needed = key_len.checked_add(value_len).ok_or(Error::SizeOverflow)?;
        let mut rest = take_scratch(buffer, needed)?;
        let keys = take(&mut rest, key_len);
        let values = take(&mut rest, value_len);
        Ok(KvCache {
            dim,
            value_dim,
            capacity,
            scale: Shape::self_attention(1, dim).scale(),
            keys,
            values,
            next: 0,
            len: 0,
        })
    }

    /// Tokens currently stored (at most the capacity).
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` before the first push.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The window size `W`.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every token (the buffer contents are left, but never read again).
    pub fn reset(&mut self) {
        self.next = 0;
        self.len = 0;
    }

    /// Stores one token, `k [d]` and `v [d_v]`, evicting the oldest when full.
    ///
    /// # Errors
    /// A slice of the wrong length ([`Arg::Keys`], [`Arg::Values`]) or a non-finite input.
    /// The cache is unchanged on error.
    pub fn push(&mut self, k: &[f32], v: &[f32]) -> Result<(), Error> {
        check_len(Arg::Keys, k, 1, self.dim)?;
        check_len(Arg::Values, v, 1, self.value_dim)?;
        check_finite(Arg::Keys, k)?;
        check_finite(Arg::Values, v)?;
        if let Some(slot) = rows_mut(self.keys, self.dim).nth(self.next) {
            copy(slot, k);
        }
        if let Some(slot) = rows_mut(self.values, self.value_dim).nth(self.next) {
            copy(slot, v);
        }
        // next ← (next + 1) mod W
        self.next = if self.next + 1 >= self.capacity {
            0
        } else {
            self.next + 1
        };
        self.len = (self.len + 1).min(self.capacity);
        Ok(())
    }

    /// `out [d_v] = Σ_j softmax_j(s · q·k_j) v_j` over the stored tokens.
    ///
    /// # Errors
    /// A slice of the wrong length ([`Arg::Queries`], [`Arg::Output`]) or a non-finite query.
    /// Nothing is written on error.
    pub fn attend(&self, q: &[f32], out: &mut [f32]) -> Result<(), Error> {
        check_len(Arg::Queries, q, 1, self.dim)?;
        check_len(Arg::Output, out, 1, self.value_dim)?;
        check_finite(Arg::Queries, q)?;
        out.fill(0.0);
        // Oldest first: slots next..W, then 0..next, once the ring is full.
        let start = if self.len == self.capacity {
            self.next
        } else {
            0
        };
        let slots = rows(self.keys, self.dim).zip(rows(self.values, self.value_dim));
        let window = slots
            .clone()
            .skip(start)
            .chain(slots.take(start))
            .take(self.len);
        // Online softmax: acc = Σ_j exp(l_j − max) v_j, sum = Σ_j exp(l_j − max), l_j = s·q·k_j
        let mut lse = OnlineLse::EMPTY;
        for (k_row, v_row) in window {
            lse.push(self.scale * dot(q, k_row), v_row, out);
        }
        // out = acc / sum
        if lse.sum > 0.0 {
            scale(out, 1.0 / lse.sum);
        }
        Ok(())
    }
}
