//! What the fuzz targets share: reading shapes, parameters and data from the fuzzer's bytes, and
//! the contract every entry point is checked against (docs/reliability.md):
//!
//! 1. no panic (libFuzzer reports one as a crash);
//! 2. an `Err` leaves the output and the scratch untouched (both are filled with a sentinel
//!    before the call and compared bit for bit after it);
//! 3. an `Ok` output is finite when every input is finite and within the documented magnitude
//!    limit ([`FINITE_LIMIT`], docs/reliability.md);
//! 4. every backend the host can run gives the scalar kernel's result within the documented
//!    bound (docs/reliability.md), for inputs in the bound's range ([`UNIT`] data); `mis-opt` calls
//!    in the ill-conditioned regime of its clamp ([`misopt_condition`]) are left out of that
//!    comparison, as docs/reliability.md says.
//!
//! The f32 kernels are called through the one registry, `tests/support/kernels.rs`.

#[path = "../../tests/support/kernels.rs"]
pub mod kernels;
#[allow(dead_code)]
#[path = "../../tests/support/reference.rs"]
pub mod reference;

use kernels::{Call, KERNELS};
use lara_attn::backend::{Backend, set_backend};
use lara_attn::lara::{self, Landmarks, Proposals, Weighting};
use lara_attn::random::NoiseScale;
use lara_attn::{Error, Qkv, Shape, ra};

/// What every output and scratch element holds before a call.
pub const SENTINEL: f32 = -7777.25;

/// The documented limit for finite outputs: finite inputs of magnitude at most this, with
/// `d ≤ 64`, give finite outputs (docs/reliability.md).
pub const FINITE_LIMIT: f32 = 1e18;

/// The fuzzer's bytes, read front to back; zeros once they run out (so every input decodes).
pub struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    /// Reads `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Bytes(data)
    }

    /// LARA's proposal layout and noise scale of sampled mode (the f32 and int8 targets).
    pub fn lara_sampling(&mut self) -> (Proposals, NoiseScale) {
        let proposals = [
            Proposals::Single,
            Proposals::Antithetic,
            Proposals::TwoPerLandmark,
        ][self.below(3)];
        let noise_scale = if self.one_in(2) {
            NoiseScale::Official
        } else {
            NoiseScale::Paper
        };
        (proposals, noise_scale)
    }

    /// The next byte, 0 once the bytes run out.
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// A number in `0..n` (`n ≤ 256`), 0 for `n ≤ 1`.
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            0
        } else {
            usize::from(self.byte()) % n
        }
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True one time in `n` (false once the bytes run out: rare events stay rare).
    pub fn one_in(&mut self, n: u8) -> bool {
        self.byte() % n == n - 1
    }

    /// A `u64` of the next eight bytes.
    pub fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, _| (acc << 8) | u64::from(self.byte()))
    }

    /// `len` values `(byte as i8) · scale`: `[-128, 127] · scale`.
    pub fn floats(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len)
            .map(|_| f32::from(self.byte() as i8) * scale)
            .collect()
    }

    /// `len` values of `[0, 1]` (the gates).
    pub fn unit_interval(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| f32::from(self.byte()) / 255.0).collect()
    }

    /// `len` as given, or (one time in `one_in`) one more or one fewer.
    pub fn len_or_wrong(&mut self, len: usize, one_in: u8) -> usize {
        if self.one_in(one_in) {
            if self.byte() & 1 == 0 {
                len + 1
            } else {
                len.saturating_sub(1)
            }
        } else {
            len
        }
    }

    /// A magnitude class: the scale of [`floats`](Self::floats).
    pub fn magnitude(&mut self) -> f32 {
        match self.byte() {
            0..=191 => UNIT,
            192..=223 => 1.0 / 8.0,
            224..=239 => 1e4 / 128.0,
            240..=247 => FINITE_LIMIT / 128.0,
            _ => 1e30 / 128.0,
        }
    }

    /// With probability one in `one_in`, a NaN or an infinity at a position of `x`.
    pub fn poison(&mut self, x: &mut [f32], one_in: u8) {
        if !x.is_empty() && self.one_in(one_in) {
            let at = self.below(256) % x.len();
            x[at] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][self.below(3)];
        }
    }
}

/// The scale of the data in the range of the documented backend bound: `|x| ≤ 4`.
pub const UNIT: f32 = 1.0 / 32.0;

/// Whether every value is finite and at most `limit` in magnitude.
pub fn within(x: &[f32], limit: f32) -> bool {
    x.iter().all(|v| v.is_finite() && v.abs() <= limit)
}

/// The backends this host can run, scalar first.
pub fn backends() -> Vec<Backend> {
    Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .collect()
}

/// Panics unless every element still holds `sentinel` (bit for bit).
pub fn assert_untouched<T: Copy + PartialEq + core::fmt::Debug>(
    what: &str,
    x: &[T],
    sentinel: T,
    context: &dyn core::fmt::Debug,
) {
    if let Some(at) = x.iter().position(|&v| v != sentinel) {
        panic!("{what}[{at}] written on error: {:?}\n{context:?}", x[at]);
    }
}

/// Panics unless every element of `out` is finite.
pub fn assert_finite(what: &str, out: &[f32], context: &dyn core::fmt::Debug) {
    if let Some(at) = out.iter().position(|v| !v.is_finite()) {
        panic!("{what}: non-finite output {} at {at}\n{context:?}", out[at]);
    }
}

/// `max|a − b| / max(1, max|b|)`: the relative distance of the backend tests.
pub fn relative_distance(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(1.0f32, |m, x| m.max(x.abs()));
    let err = a.iter().zip(b).fold(0.0f32, |m, (x, y)| {
        if x.is_nan() != y.is_nan() {
            f32::INFINITY
        } else if x.is_nan() || x == y {
            m
        } else {
            m.max((x - y).abs())
        }
    });
    err / scale
}

/// The documented bound of [`relative_distance`] between a SIMD backend and the scalar kernels
/// (docs/reliability.md), by registry name.
pub fn backend_bound(kernel: &str) -> f32 {
    match kernel {
        "exact" => 1e-5,
        "rfa-trig" | "causal-rfa-trig" => 1e-4,
        _ => 5e-5,
    }
}

/// The documented bound of trigonometric RFA per output row `i`:
/// `|simd − scalar| ≤ TRIG_BOUND · (max(1, max|out|) + cond_i) + PHASE_BOUND · phase_i`,
/// `cond_i` the cancellation-free magnitude of the estimate
/// (`reference::trigonometric_condition`): features of both signs make the estimate
/// ill-conditioned where its denominator nearly cancels; `phase_i` the same magnitude with every
/// feature at its envelope, times the magnitude of the phases `Σ_j |d^-1/4 ω_rj x_j|` of the
/// query's and the keys' features: a phase carries the rounding of its dot product, which moves
/// a feature near a zero of its sine or cosine by much more than its own rounding.
pub const TRIG_BOUND: f32 = 1e-5;

/// The unit of the phase term of the trigonometric bound (about 8 `f32` roundings).
pub const PHASE_BOUND: f64 = 1e-6;

/// The first output row of a trigonometric RFA call whose backend difference exceeds
/// [`TRIG_BOUND`] `· (max(1, max|out|) + cond_i)`, with the factor it exceeds it by.
pub fn trig_excess(
    args: &F32Args,
    out: &[f32],
    scalar: &[f32],
    bound: f32,
) -> Option<(usize, f64)> {
    let shape = args.shape;
    let (h, nq, nk, d, dv) = (
        shape.heads,
        shape.queries,
        shape.keys,
        shape.dim,
        shape.value_dim,
    );
    let features = args.omega.len() / (h * d);
    let scale = f64::from(scalar.iter().fold(1.0f32, |m, x| m.max(x.abs())));
    let dims = reference::Dims::new(nq, nk, d, dv);
    for head in 0..h {
        let part = |x: &[f32], rows: usize, cols: usize| {
            x[head * rows * cols..(head + 1) * rows * cols].to_vec()
        };
        let omega = part(&args.omega, features, d);
        let (q, k, v) = (
            part(&args.q, nq, d),
            part(&args.k, nk, d),
            part(&args.v, nk, dv),
        );
        let (cond, phase) =
            trig_condition(dims, &omega, features, (&q, &k, &v), args.mask.as_deref());
        for i in 0..nq {
            let row = (head * nq + i) * dv;
            let err = (0..dv)
                .map(|e| (f64::from(out[row + e]) - f64::from(scalar[row + e])).abs())
                .fold(0.0, f64::max);
            let allowed = f64::from(bound) * (scale + cond[i]) + PHASE_BOUND * phase[i];
            if err > allowed {
                return Some((head * nq + i, err / allowed));
            }
        }
    }
    None
}

/// `reference::trigonometric_condition` with masked keys left out (zero features), and the
/// phase term of [`TRIG_BOUND`] per query.
fn trig_condition(
    dims: reference::Dims,
    omega: &[f32],
    features: usize,
    (q, k, v): (&[f32], &[f32], &[f32]),
    mask: Option<&[bool]>,
) -> (Vec<f64>, Vec<f64>) {
    use reference::{Mat, fourier_features_masked, linear_attention};
    let phi_q = fourier_features_masked(dims, omega, features, q, dims.nq, None);
    let phi_k = fourier_features_masked(dims, omega, features, k, dims.nk, mask);
    let vm = Mat::from_f32(v, dims.nk, dims.dv);
    let out = linear_attention(&phi_q, &phi_k, &vm);
    let f = 2 * features;
    let (mut abs_kv, mut abs_k, mut k_sum) = (vec![0.0; f], vec![0.0; f], vec![0.0; f]);
    for m in 0..dims.nk {
        let vmax = vm.row(m).iter().fold(0.0f64, |a, &x| a.max(x.abs()));
        for r in 0..f {
            abs_kv[r] += phi_k.at(m, r).abs() * vmax;
            abs_k[r] += phi_k.at(m, r).abs();
            k_sum[r] += phi_k.at(m, r);
        }
    }
    // Σ_j |d^-1/4 ω_rj x_j|, the largest over the features, per row of x
    let phases = |x: &[f32], rows: usize| -> Vec<f64> {
        let s4 = (dims.d as f64).powf(-0.25);
        (0..rows)
            .map(|i| {
                (0..features)
                    .map(|r| {
                        (0..dims.d)
                            .map(|j| {
                                s4 * f64::from(omega[r * dims.d + j] * x[i * dims.d + j]).abs()
                            })
                            .sum::<f64>()
                    })
                    .fold(0.0, f64::max)
            })
            .collect()
    };
    let masked = |m: usize| mask.is_some_and(|mask| mask[m]);
    let key_phase = phases(k, dims.nk)
        .into_iter()
        .enumerate()
        .filter(|&(m, _)| !masked(m))
        .fold(0.0, |a, (_, p)| f64::max(a, p));
    // a feature pair's envelope: |(sin, cos)| = the pair's magnitude
    let envelope =
        |phi: &reference::Mat, i: usize, r: usize| phi.at(i, r).hypot(phi.at(i, features + r));
    let (mut env_kv, mut env_k) = (vec![0.0; features], vec![0.0; features]);
    for m in 0..dims.nk {
        let vmax = vm.row(m).iter().fold(0.0f64, |a, &x| a.max(x.abs()));
        for r in 0..features {
            env_kv[r] += envelope(&phi_k, m, r) * vmax;
            env_k[r] += envelope(&phi_k, m, r);
        }
    }
    let query_phase = phases(q, dims.nq);
    (0..dims.nq)
        .map(|i| {
            let pq = phi_q.row(i);
            let den = reference::dot(pq, &k_sum).max(1e-2);
            let a: f64 = pq.iter().zip(&abs_kv).map(|(p, x)| p.abs() * x).sum();
            let b: f64 = pq.iter().zip(&abs_k).map(|(p, x)| p.abs() * x).sum();
            let out_max = out.row(i).iter().fold(0.0f64, |m, &x| m.max(x.abs()));
            // with every feature at its envelope (sine and cosine: twice the pair's)
            let env_a: f64 = (0..features)
                .map(|r| 2.0 * envelope(&phi_q, i, r) * env_kv[r])
                .sum();
            let env_b: f64 = (0..features)
                .map(|r| 2.0 * envelope(&phi_q, i, r) * env_k[r])
                .sum();
            let phase = (query_phase[i] + key_phase) * (env_a + out_max * env_b) / den;
            ((a + out_max * b) / den, phase)
        })
        .unzip()
}

/// The owned arguments of one call of an f32 registry kernel, decoded from the fuzzer's bytes.
#[derive(Debug)]
pub struct F32Args {
    pub shape: Shape,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub mask: Option<Vec<bool>>,
    pub landmarks: usize,
    pub weighting: Weighting,
    pub proposals: Proposals,
    pub noise_scale: NoiseScale,
    /// Given landmarks `(count, q̄, k̄)`.
    pub given: Option<(usize, Vec<f32>, Vec<f32>)>,
    pub noise: Option<Vec<f32>>,
    pub ra_mean: u8,
    pub key_indices: Vec<u32>,
    pub omega: Vec<f32>,
    pub gates: Option<Vec<f32>>,
    pub seed: u64,
    pub out_len: usize,
    /// The magnitude of the data (the scale of [`Bytes::floats`]).
    pub magnitude: f32,
}

impl F32Args {
    /// Decodes the arguments of `kernel` (a registry name) from `b`: small shapes (up to 40 rows
    /// to reach the 32-row tiles' tails), every parameter variant, and now and then a wrong
    /// length, a zero dimension, a non-finite value or a huge magnitude.
    pub fn decode(kernel: &str, b: &mut Bytes<'_>) -> Self {
        let rows = |b: &mut Bytes<'_>| {
            if b.one_in(5) {
                b.range(1, 40)
            } else {
                b.range(1, 9)
            }
        };
        let heads = b.range(1, 2);
        let queries = rows(b);
        let keys = if kernel.starts_with("causal") && !b.one_in(16) {
            queries
        } else {
            rows(b)
        };
        let mut shape =
            Shape::cross(queries, keys, b.range(1, 16), b.range(1, 8)).with_heads(heads);
        if b.one_in(32) {
            match b.below(5) {
                0 => shape.heads = 0,
                1 => shape.queries = 0,
                2 => shape.keys = 0,
                3 => shape.dim = 0,
                _ => shape.value_dim = 0,
            }
        }
        let (h, nq, nk, d, dv) = (
            shape.heads,
            shape.queries,
            shape.keys,
            shape.dim,
            shape.value_dim,
        );
        let magnitude = b.magnitude();
        let floats = |b: &mut Bytes<'_>, len: usize| {
            let len = b.len_or_wrong(len, 64);
            b.floats(len, magnitude)
        };
        let mut q = floats(b, h * nq * d);
        let mut k = floats(b, h * nk * d);
        let mut v = floats(b, h * nk * dv);
        for x in [&mut q, &mut k, &mut v] {
            b.poison(x, 24);
        }
        let mask = if b.one_in(3) {
            let len = b.len_or_wrong(nk, 32);
            let all = b.one_in(8);
            Some((0..len).map(|_| all || b.one_in(3)).collect())
        } else {
            None
        };
        let landmarks = if b.one_in(8) {
            b.below(nk + 3)
        } else {
            b.range(1, nk.max(1))
        };
        let weighting = match b.below(4) {
            0 | 1 => {
                let table = [1.0, 1.0, 0.5, 2.0, -1.0, 0.0, 8.0, f32::NAN];
                Weighting::Optimal {
                    alpha_coeff: table[b.below(table.len())],
                }
            }
            2 => Weighting::BalanceHeuristic,
            _ => Weighting::Biased,
        };
        let (proposals, noise_scale) = b.lara_sampling();
        let given = b.one_in(4).then(|| {
            let count = if b.one_in(16) { 0 } else { b.range(1, 6) };
            let len = h * count * d;
            let (mut qb, kb) = (floats(b, len), floats(b, len));
            b.poison(&mut qb, 32);
            (count, qb, kb)
        });
        let ra_mean = b.byte() % 4;
        let noise = b.one_in(2).then(|| {
            let len = if kernel.starts_with("ra") {
                h * nq * d
            } else {
                let count = match &given {
                    Some((count, _, _)) => *count,
                    None => lara::effective_landmarks(shape, landmarks),
                };
                h * proposals.noise_rows(count) * d
            };
            let mut eps = floats(b, len);
            b.poison(&mut eps, 32);
            eps
        });
        let index_len = b.len_or_wrong(h * nq, 32);
        let key_indices = (0..index_len)
            .map(|_| {
                if b.one_in(32) {
                    nk as u32
                } else {
                    b.below(nk.max(1)) as u32
                }
            })
            .collect();
        let features = if b.one_in(16) { 0 } else { b.range(1, 9) };
        let omega_len = h * features * d + usize::from(b.one_in(32));
        let mut omega = b.floats(omega_len, UNIT);
        b.poison(&mut omega, 32);
        let gates = b.one_in(2).then(|| {
            let len = b.len_or_wrong(h * nk, 32);
            let mut gates = b.unit_interval(len);
            if !gates.is_empty() && b.one_in(16) {
                let at = b.below(gates.len());
                gates[at] = [1.5, -0.25, f32::NAN][b.below(3)];
            }
            gates
        });
        let seed = b.u64();
        let out_len = b.len_or_wrong(h * nq * dv, 32);
        F32Args {
            shape,
            q,
            k,
            v,
            mask,
            landmarks,
            weighting,
            proposals,
            noise_scale,
            given,
            noise,
            ra_mean,
            key_indices,
            omega,
            gates,
            seed,
            out_len,
            magnitude,
        }
    }

    /// The registry's view of these arguments.
    pub fn call(&self) -> Call<'_> {
        let landmarks = match &self.given {
            Some((count, qb, kb)) => Landmarks::Given {
                count: *count,
                queries: qb,
                keys: kb,
            },
            None => Landmarks::SegmentMeans(self.landmarks),
        };
        let lara = lara::Params::new(landmarks, self.weighting)
            .with_proposals(self.proposals)
            .with_noise_scale(self.noise_scale);
        let mean = match self.ra_mean {
            0 => ra::Mean::KeyAverage,
            1 => ra::Mean::AttentionWeighted,
            2 => ra::Mean::SampledKey,
            _ => ra::Mean::GivenKeys(&self.key_indices),
        };
        Call {
            x: Qkv {
                shape: self.shape,
                q: &self.q,
                k: &self.k,
                v: &self.v,
                key_mask: self.mask.as_deref(),
            },
            lara,
            ra: ra::Params::new(mean).with_noise_scale(self.noise_scale),
            omega: &self.omega,
            noise: self.noise.as_deref(),
            seed: self.seed,
            gates: self.gates.as_deref(),
        }
    }

    /// Whether every float input is finite and within `limit`.
    pub fn inputs_within(&self, limit: f32) -> bool {
        let given = self
            .given
            .as_ref()
            .is_none_or(|(_, qb, kb)| within(qb, limit) && within(kb, limit));
        within(&self.q, limit)
            && within(&self.k, limit)
            && within(&self.v, limit)
            && within(&self.omega, 4.0)
            && self.noise.as_deref().is_none_or(|eps| within(eps, limit))
            && given
    }
}

/// One call of an f32 registry kernel on `backend` with sentinel-filled output and scratch of
/// `scratch_len`; checks that an error wrote nothing. Returns the result and the output.
pub fn run_f32(
    backend: Backend,
    name: &str,
    args: &F32Args,
    scratch_len: usize,
) -> (Result<(), Error>, Vec<f32>) {
    let kernel = KERNELS
        .iter()
        .find(|k| k.name == name)
        .expect("a registry kernel");
    let call = args.call();
    let mut out = vec![SENTINEL; args.out_len];
    let mut scratch = vec![SENTINEL; scratch_len];
    set_backend(Some(backend)).expect("an available backend");
    let result = (kernel.run)(&call, &mut out, &mut scratch);
    set_backend(None).expect("the default backend");
    if let Err(e) = result {
        let context = (name, backend, e, args);
        assert_untouched("out", &out, SENTINEL, &context);
        assert_untouched("scratch", &scratch, SENTINEL, &context);
    }
    (result, out)
}

/// The whole contract for one decoded call of the f32 registry kernel `name`.
pub fn check_f32(name: &str, args: &F32Args, b: &mut Bytes<'_>) {
    let kernel = KERNELS
        .iter()
        .find(|k| k.name == name)
        .expect("a registry kernel");
    let needed = (kernel.scratch_len)(&args.call());
    let scratch_len = match b.below(16) {
        0 => needed.saturating_sub(1),
        1 => 0,
        2 => needed + 5,
        _ => needed,
    };
    let reference_backend = Backend::Scalar;
    let (reference, reference_out) = run_f32(reference_backend, name, args, scratch_len);
    if reference.is_ok() && args.inputs_within(FINITE_LIMIT) && args.shape.dim <= 64 {
        assert_finite(name, &reference_out, &(Backend::Scalar, args));
    }
    let compare = reference.is_ok()
        && args.magnitude <= UNIT
        && args.inputs_within(4.0)
        && !(name == "lara-draw" && matches!(args.weighting, Weighting::Optimal { .. }))
        && (!name.starts_with("lara") || misopt_condition(args) <= MISOPT_CONDITION_LIMIT);
    for backend in backends().into_iter().filter(|&b| b != Backend::Scalar) {
        let (result, out) = run_f32(backend, name, args, scratch_len);
        if scratch_len >= needed {
            assert_eq!(result, reference, "{name} on {backend} vs scalar: {args:?}");
        }
        if result.is_ok() && args.inputs_within(FINITE_LIMIT) && args.shape.dim <= 64 {
            assert_finite(name, &out, &(backend, args));
        }
        if compare && result.is_ok() && name.ends_with("trig") {
            let bound = TRIG_BOUND;
            if let Some((row, excess)) = trig_excess(args, &out, &reference_out, bound) {
                panic!(
                    "{name} on {backend}: row {row} beyond {bound:e} (scale + condition) by x{excess}\n{args:?}\nscalar {reference_out:?}\n{backend} {out:?}"
                );
            }
        } else if compare && result.is_ok() {
            let distance = relative_distance(&out, &reference_out);
            let bound = backend_bound(name);
            assert!(
                distance <= bound,
                "{name} on {backend}: {distance:e} from scalar > {bound:e} (mis-opt condition {})\n{args:?}\nscalar {reference_out:?}\n{backend} {out:?}",
                misopt_condition(args),
            );
        }
    }
}

/// The condition number of `mis-opt`'s clamp above which backends may legitimately differ by
/// more than the bound (docs/reliability.md).
pub const MISOPT_CONDITION_LIMIT: f64 = 1e3;

/// `mis-opt`'s condition: the largest `(bh_c + |a|·(T[c,i] + mean T)) / |α[c,i]|` over the
/// samples `c`, queries `i` and heads (in `f64`), with `α[c,i] = bh_c + a·(T[c,i] − mean T)`
/// the argument of the official `log(clamp(α, 1e-8))`: the factor by which a rounding error in
/// `α`'s terms is amplified in `log α`. 0 for other weightings and for calls it cannot model
/// (drawn noise, invalid arguments).
pub fn misopt_condition(args: &F32Args) -> f64 {
    let Weighting::Optimal { alpha_coeff } = args.weighting else {
        return 0.0;
    };
    let shape = args.shape;
    let (h, nq, nk, d) = (shape.heads, shape.queries, shape.keys, shape.dim);
    if h == 0 || nq == 0 || nk == 0 || d == 0 {
        return 0.0;
    }
    let s = 1.0 / (d as f64).sqrt();
    let a = f64::from(alpha_coeff);
    let mut worst = 0.0f64;
    for head in 0..h {
        let q: Vec<f64> = args.q[head * nq * d..(head + 1) * nq * d]
            .iter()
            .map(|&x| x.into())
            .collect();
        let k: Vec<f64> = args.k[head * nk * d..(head + 1) * nk * d]
            .iter()
            .map(|&x| x.into())
            .collect();
        // landmarks q̄, k̄ [C', d] (masked keys count as zero rows)
        let (count, q_bar, k_bar) = match &args.given {
            Some((count, qb, kb)) => {
                let part = |x: &[f32]| -> Vec<f64> {
                    x[head * count * d..(head + 1) * count * d]
                        .iter()
                        .map(|&x| x.into())
                        .collect()
                };
                (*count, part(qb), part(kb))
            }
            None => {
                let count = lara::effective_landmarks(shape, args.landmarks);
                if count == 0 {
                    return 0.0;
                }
                let mut k_masked = k.clone();
                if let Some(mask) = &args.mask {
                    for (j, &m) in mask.iter().enumerate().take(nk) {
                        if m {
                            k_masked[j * d..(j + 1) * d].fill(0.0);
                        }
                    }
                }
                (
                    count,
                    segment_means(&q, nq, d, count),
                    segment_means(&k_masked, nk, d, count),
                )
            }
        };
        if count == 0 {
            return 0.0;
        }
        let mu: Vec<f64> = q_bar.iter().zip(&k_bar).map(|(a, b)| a + b).collect();
        // W: eval mu, or mu + f·eps laid out as the proposals say
        let w: Vec<f64> = match &args.noise {
            None => mu.clone(),
            Some(eps) => {
                let f = f64::from(args.noise_scale.factor(d));
                let rows = args.proposals.noise_rows(count);
                let Some(eps) = eps.get(head * rows * d..(head + 1) * rows * d) else {
                    return f64::INFINITY; // not this call's noise (drawn): unknown
                };
                match args.proposals {
                    Proposals::Single => mu
                        .iter()
                        .zip(eps)
                        .map(|(m, &e)| m + f * f64::from(e))
                        .collect(),
                    Proposals::TwoPerLandmark => mu
                        .iter()
                        .chain(&mu)
                        .zip(eps)
                        .map(|(m, &e)| m + f * f64::from(e))
                        .collect(),
                    Proposals::Antithetic => {
                        let plus = mu.iter().zip(eps).map(|(m, &e)| m + f * f64::from(e));
                        let minus = mu.iter().zip(eps).map(|(m, &e)| m - f * f64::from(e));
                        plus.chain(minus).collect()
                    }
                }
            }
        };
        let samples = w.len() / d;
        let row = |x: &[f64], i: usize| x[i * d..(i + 1) * d].to_vec();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let ell = |x: &[f64], w: &[f64]| s * (dot(w, x) - dot(x, x) / 2.0);
        // T[c, i] = softmax_i(s q̄_c·q_i)
        let t: Vec<Vec<f64>> = (0..count)
            .map(|c| {
                softmax(
                    &(0..nq)
                        .map(|i| s * dot(&row(&q_bar, c), &row(&q, i)))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let t_of = |c: usize, i: usize| t[c % count][i];
        let t_mean: Vec<f64> = (0..nq)
            .map(|i| (0..samples).map(|c| t_of(c, i)).sum::<f64>() / samples as f64)
            .collect();
        for c in 0..samples {
            // bh_c = exp(LM[c,c] − lse_c' LM[c,c']) over the mixture of (repeated) mu
            let lm: Vec<f64> = (0..samples)
                .map(|c2| ell(&row(&mu, c2 % count), &row(&w, c)))
                .collect();
            let bh = (lm[c] - lse(&lm)).exp();
            for i in 0..nq {
                let alpha = bh + a * (t_of(c, i) - t_mean[i]);
                let terms = bh + a.abs() * (t_of(c, i) + t_mean[i]);
                worst = worst.max(terms / alpha.abs().max(1e-300));
            }
        }
    }
    worst
}

fn segment_means(x: &[f64], rows: usize, d: usize, segments: usize) -> Vec<f64> {
    let short = rows / segments;
    let short_count = if rows % segments == 0 {
        segments
    } else {
        (short + 1) * segments - rows
    };
    let mut out = vec![0.0; segments * d];
    let mut start = 0;
    for c in 0..segments {
        let len = if c < short_count { short } else { short + 1 };
        for r in start..start + len {
            for e in 0..d {
                out[c * d + e] += x[r * d + e];
            }
        }
        for e in 0..d {
            out[c * d + e] /= len as f64;
        }
        start += len;
    }
    out
}

fn lse(x: &[f64]) -> f64 {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + x.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

fn softmax(x: &[f64]) -> Vec<f64> {
    let l = lse(x);
    x.iter().map(|v| (v - l).exp()).collect()
}

/// The fuzz body of the f32 registry kernels named in `names`: picks one, decodes its
/// arguments and checks the contract.
pub fn fuzz_f32_kernels(names: &[&str], data: &[u8]) {
    let mut b = Bytes::new(data);
    let name = names[b.below(names.len())];
    let args = F32Args::decode(name, &mut b);
    check_f32(name, &args, &mut b);
}
