//! The int8 kernels against references that are not the kernels:
//! * an independent re-implementation of exact attention's integer semantics in `f64` (integer
//!   logits `q_int·k_int`, the plan's multiplier, a plain two-pass softmax): outputs within one
//!   `i8` step;
//! * RFA's and LARA's integer semantics through the plain `f64` references of
//!   `tests/support/reference.rs` (written from `FORMULAS.md`, not from the crate) on the values
//!   the int8 kernels see: the inputs and `ω` as their integers times their scales, LARA's
//!   segment means on the kernels' grid of `scale/128` (every weighting, sampled mode with the
//!   given noise, key mask, given landmarks): within 5e-4 of the values' range;
//! * the dequantised int8 output against the `f32` kernel on the dequantised inputs, on the
//!   synthetic golden inputs (`tests/data/golden`) and on realistic activations (the `q`, `k`,
//!   `v` of a `LinearRA` layer's `qkv` projection, `tests/data/firmware_layer`, on Gaussian
//!   tokens): relative Frobenius error ≤ 2%, and the estimators' error against exact attention
//!   within 0.02 of the `f32` estimators';
//! * arguments: every refusal, with nothing written.

#[path = "support/kernels.rs"]
mod kernels;
#[path = "support/npy.rs"]
mod npy;
#[path = "support/reference.rs"]
mod reference;

use lara_attn::int8::{self, Out, Scales};
use lara_attn::lara::{Proposals, Weighting};
use lara_attn::random::{NoiseScale, default_rng, fill_standard_normal, orthogonal_omega};
use lara_attn::{Error, Qkv, Sampling, Shape, exact, lara, rfa};
use std::path::Path;

/// A named set of `f32` inputs: (id, shape, q, k, v).
type Inputs = (String, Shape, Vec<f32>, Vec<f32>, Vec<f32>);

/// Inputs quantised per tensor by max-abs, and their dequantised `f32` copies.
struct Quantised {
    shape: Shape,
    q: Vec<i8>,
    k: Vec<i8>,
    v: Vec<i8>,
    scales: Scales,
    dq: Vec<f32>,
    dk: Vec<f32>,
    dv: Vec<f32>,
}

impl Quantised {
    fn new(shape: Shape, q: &[f32], k: &[f32], v: &[f32]) -> Self {
        let quant = |x: &[f32]| {
            let scale = int8::scale_for(x);
            let mut out = vec![0i8; x.len()];
            int8::quantize(x, scale, &mut out);
            let mut back = vec![0.0; x.len()];
            int8::dequantize(&out, scale, &mut back);
            (out, scale, back)
        };
        let ((q, sq, dq), (k, sk, dk), (v, sv, dv)) = (quant(q), quant(k), quant(v));
        Quantised {
            shape,
            q,
            k,
            v,
            scales: Scales {
                q: sq,
                k: sk,
                v: sv,
                out: sv,
            },
            dq,
            dk,
            dv,
        }
    }

    fn x(&self) -> int8::Qkv<'_> {
        int8::Qkv {
            shape: self.shape,
            q: &self.q,
            k: &self.k,
            v: &self.v,
            key_mask: None,
        }
    }

    fn dequantised(&self) -> Qkv<'_> {
        Qkv {
            shape: self.shape,
            q: &self.dq,
            k: &self.dk,
            v: &self.dv,
            key_mask: None,
        }
    }
}

fn relative_error(ours: &[f32], reference: &[f32]) -> f64 {
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (&a, &b) in ours.iter().zip(reference) {
        diff += (f64::from(a) - f64::from(b)).powi(2);
        norm += f64::from(b).powi(2);
    }
    (diff / norm.max(1e-30)).sqrt()
}

/// The golden cases' inputs: (id, shape, q, k, v).
fn golden_inputs() -> Vec<Inputs> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden");
    let mut cases = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let read = |name: &str| npy::read_f32(&dir.join(name)).unwrap();
        let (q, k, v) = (read("q.npy"), read("k.npy"), read("v.npy"));
        let (heads, n, d) = match q.shape.as_slice() {
            [n, d] => (1, *n, *d),
            [h, n, d] => (*h, *n, *d),
            other => panic!("shape {other:?}"),
        };
        let shape = Shape::self_attention(n, d).with_heads(heads);
        let id = dir.file_name().unwrap().to_string_lossy().to_string();
        cases.push((id, shape, q.data, k.data, v.data));
    }
    cases
}

/// Realistic activations: `q`, `k`, `v` of the firmware layer's `qkv` projection (dim 64,
/// 4 heads of d = 16) on 128 Gaussian tokens, per head stacked `[h, n, d]`.
fn layer_activations() -> (Shape, Vec<f32>, Vec<f32>, Vec<f32>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/firmware_layer");
    let weight = npy::read_f32(&root.join("qkv.weight.npy")).unwrap();
    let bias = npy::read_f32(&root.join("qkv.bias.npy")).unwrap();
    let (out_dim, dim) = (weight.shape[0], weight.shape[1]);
    let (heads, n) = (4, 128);
    let d = dim / heads;
    let mut x = vec![0.0f32; n * dim];
    fill_standard_normal(&mut default_rng(77), &mut x);
    let mut qkv = vec![0.0f32; n * out_dim];
    for (t, row) in x.chunks_exact(dim).enumerate() {
        for o in 0..out_dim {
            let w = &weight.data[o * dim..(o + 1) * dim];
            qkv[t * out_dim + o] =
                bias.data[o] + w.iter().zip(row).map(|(a, b)| a * b).sum::<f32>();
        }
    }
    let split = |part: usize| {
        let mut out = vec![0.0f32; heads * n * d];
        for h in 0..heads {
            for t in 0..n {
                for e in 0..d {
                    out[(h * n + t) * d + e] = qkv[t * out_dim + part * dim + h * d + e];
                }
            }
        }
        out
    };
    let shape = Shape::self_attention(n, d).with_heads(heads);
    (shape, split(0), split(1), split(2))
}

fn all_inputs() -> Vec<Inputs> {
    let mut cases = golden_inputs();
    let (shape, q, k, v) = layer_activations();
    cases.push(("layer-activations".into(), shape, q, k, v));
    cases
}

fn exact_f32(x: &Qkv<'_>) -> Vec<f32> {
    let mut out = vec![0.0; x.q.len() / x.shape.dim * x.shape.value_dim];
    let mut scratch = vec![0.0; exact::scratch_len(x.shape)];
    exact::attention(x, &mut out, &mut scratch).unwrap();
    out
}

fn exact_int8(data: &Quantised, out_f32: bool) -> (Vec<f32>, Vec<i8>) {
    let plan = int8::exact::Plan::new(data.shape.dim, &data.scales).unwrap();
    let len = data.q.len() / data.shape.dim * data.shape.value_dim;
    let mut scratch = vec![0i32; int8::exact::scratch_len(data.shape)];
    let (mut f, mut i) = (vec![0.0f32; len], vec![0i8; len]);
    let out = if out_f32 {
        Out::F32(&mut f)
    } else {
        Out::I8(&mut i)
    };
    int8::exact::attention(&plan, &data.x(), out, &mut scratch).unwrap();
    (f, i)
}

/// Exact attention's integer semantics, written plainly: integer dot products, the logit in
/// base 2 as the plan's multiplier gives it (`s·scale_q·scale_k·log2 e`, f32 as the plan), a
/// two-pass softmax in `f64`.
fn exact_reference(data: &Quantised) -> Vec<f64> {
    let Shape {
        heads,
        queries: nq,
        keys: nk,
        dim: d,
        value_dim: dv,
    } = data.shape;
    let s = 1.0 / (d as f32).sqrt();
    let per_unit =
        f64::from(s * data.scales.q * data.scales.k * core::f32::consts::LOG2_E * 65536.0);
    let mut out = vec![0.0f64; heads * nq * dv];
    for h in 0..heads {
        for i in 0..nq {
            let q = &data.q[(h * nq + i) * d..][..d];
            let logits: Vec<f64> = (0..nk)
                .map(|j| {
                    let k = &data.k[(h * nk + j) * d..][..d];
                    let dot: i32 = q
                        .iter()
                        .zip(k)
                        .map(|(&a, &b)| i32::from(a) * i32::from(b))
                        .sum();
                    f64::from(dot) * per_unit / 65536.0
                })
                .collect();
            let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = logits.iter().map(|l| (l - max).exp2()).collect();
            let total: f64 = weights.iter().sum();
            for t in 0..dv {
                let mut acc = 0.0;
                for (j, w) in weights.iter().enumerate() {
                    acc += w * f64::from(data.v[(h * nk + j) * dv + t]);
                }
                out[(h * nq + i) * dv + t] = acc / total * f64::from(data.scales.v);
            }
        }
    }
    out
}

#[test]
fn exact_matches_the_independent_integer_reference() {
    for (id, shape, q, k, v) in all_inputs() {
        let data = Quantised::new(shape, &q, &k, &v);
        let reference = exact_reference(&data);
        let (f, i) = (exact_int8(&data, true).0, exact_int8(&data, false).1);
        let step = f64::from(data.scales.out);
        for ((&f, &i), &r) in f.iter().zip(&i).zip(&reference) {
            // f32 output: the Q15 weights' rounding (2^-16 of the largest weight each) moves a
            // mean by at most a few 1e-4 of the values' range, 127 · scale_v
            let range = 127.0 * f64::from(data.scales.v);
            let tolerance = 3e-4 * range;
            assert!(
                (f64::from(f) - r).abs() <= tolerance,
                "{id}: f32 {f} vs {r}"
            );
            // i8 output: the reference rounded, half a step and the same tolerance
            assert!(
                (f64::from(i) * step - r).abs() <= 0.5 * step + tolerance,
                "{id}: i8 {i} vs {r}"
            );
        }
    }
}

/// `[h, rows, cols]` as one slice per head.
fn heads_of(x: &[f32], heads: usize) -> Vec<&[f32]> {
    x.chunks_exact(x.len() / heads).collect()
}

/// LARA's segment means as the int8 kernel holds them: the mean of a segment's `i8` rows in
/// units of `scale/128` (`i16`), rounded; masked rows count as zeros (the official code zeroes
/// padding keys before pooling).
fn int8_segment_means(
    x: &[i8],
    dim: usize,
    c: usize,
    scale: f32,
    mask: Option<&[bool]>,
) -> Vec<f32> {
    segment_means_on_grid(x, dim, c, scale, mask, 1)
}

/// `mis-opt`'s query landmarks for `T` as the int8 kernel holds them: [`int8_segment_means`]'
/// units rounded half up to a multiple of 128 (the queries' own `i8` grid).
fn int8_t_landmarks(x: &[i8], dim: usize, c: usize, scale: f32) -> Vec<f32> {
    segment_means_on_grid(x, dim, c, scale, None, 128)
}

/// Segment means in units of `scale/128`, rounded, then rounded half up to a multiple of `grid`.
fn segment_means_on_grid(
    x: &[i8],
    dim: usize,
    c: usize,
    scale: f32,
    mask: Option<&[bool]>,
    grid: i64,
) -> Vec<f32> {
    let rows = x.len() / dim;
    let counts = |r: usize| !mask.is_some_and(|mask| mask[r]);
    let mut means = Vec::with_capacity(c * dim);
    for (start, end) in reference::segment_ranges(rows, c) {
        for col in 0..dim {
            let sum: i32 = (start..end)
                .filter(|&r| counts(r))
                .map(|r| i32::from(x[r * dim + col]))
                .sum();
            let units = (f64::from(sum) * 128.0 / (end - start) as f64).round() as i64;
            let units = (units + grid / 2).div_euclid(grid) * grid;
            means.push((units as f64 / 128.0 * f64::from(scale)) as f32);
        }
    }
    means
}

/// How far the int8 kernels' `f32` output may be from the references of their integer semantics,
/// in units of the values' range `127 · scale_v`: the fixed-point formats round the logits to
/// `2^-16`, the softmax weights to `Q15` of their largest, LARA's `kv_c` and `W_c` to 15 bits,
/// each a few `2^-15` of the range.
const SEMANTICS_TOLERANCE: f64 = 5e-4;

/// The largest difference from the reference, in units of the values' range `127 · scale_v`.
fn worst_in_range(ours: &[f32], reference: &[f64], scale_v: f32) -> f64 {
    let range = 127.0 * f64::from(scale_v);
    ours.iter()
        .zip(reference)
        .map(|(&a, &r)| (f64::from(a) - r).abs() / range)
        .fold(0.0, f64::max)
}

/// Checks a kernel's `f32` output against the reference of its integer semantics (within
/// [`SEMANTICS_TOLERANCE`]) and returns the difference.
fn check_semantics(what: &str, ours: &[f32], reference: &[f64], scale_v: f32) -> f64 {
    let e = worst_in_range(ours, reference, scale_v);
    assert!(
        e <= SEMANTICS_TOLERANCE,
        "{what}: {e} of the range from the reference of its integer semantics"
    );
    e
}

/// Every kernel's dequantised output against the f32 kernel on the dequantised inputs, and the
/// estimators' error against exact attention against the f32 estimators'; RFA and LARA also
/// against the plain `f64` references of their integer semantics (head by head).
#[test]
fn int8_outputs_follow_the_f32_kernels() {
    let mut worst = (0.0f64, String::new());
    let mut track = |e: f64, what: String| {
        if e > worst.0 {
            worst = (e, what);
        }
    };
    let mut worst_semantics = 0.0f64;
    for (id, shape, q, k, v) in all_inputs() {
        let data = Quantised::new(shape, &q, &k, &v);
        let x = data.dequantised();
        let len = x.q.len() / shape.dim * shape.value_dim;
        let (heads, d) = (shape.heads, shape.dim);
        let dims = reference::Dims::new(shape.queries, shape.keys, d, shape.value_dim);
        let (dq, dk, dv) = (
            heads_of(&data.dq, heads),
            heads_of(&data.dk, heads),
            heads_of(&data.dv, heads),
        );
        let exact_ref = exact_f32(&x);
        let exact8 = exact_int8(&data, true).0;
        let e = relative_error(&exact8, &exact_ref);
        assert!(e <= 0.02, "{id} exact: {e}");
        track(e, format!("{id} exact"));
        // i8 output with a scale calibrated on the output (max-abs of the f32 result)
        let calibrated = Quantised {
            scales: Scales {
                out: int8::scale_for(&exact_ref),
                ..data.scales
            },
            ..Quantised::new(shape, &q, &k, &v)
        };
        let exact8_i = exact_int8(&calibrated, false).1;
        let _ = exact8_i.len();
        let mut deq = vec![0.0; len];
        int8::dequantize(&exact8_i, calibrated.scales.out, &mut deq);
        let e = relative_error(&deq, &exact_ref);
        assert!(e <= 0.02, "{id} exact i8 out: {e}");

        for features in [16, 64] {
            let mut omega = vec![0.0f32; shape.heads * features * shape.dim];
            for head in omega.chunks_exact_mut(features * shape.dim) {
                orthogonal_omega(&mut default_rng(3), features, shape.dim, head).unwrap();
            }
            let omega_scale = int8::scale_for(&omega);
            let mut omega8 = vec![0i8; omega.len()];
            int8::quantize(&omega, omega_scale, &mut omega8);
            int8::dequantize(&omega8, omega_scale, &mut omega);
            let params = rfa::Params {
                map: rfa::FeatureMap::Positive,
                omega: &omega,
            };
            let mut out32 = vec![0.0; len];
            let mut scratch =
                vec![0.0; rfa::scratch_len(shape, rfa::FeatureMap::Positive, features)];
            rfa::attention(&x, &params, &mut out32, &mut scratch).unwrap();
            let plan =
                int8::rfa::Plan::new(shape.dim, &data.scales, omega_scale, features).unwrap();
            let mut out8 = vec![0.0f32; len];
            let mut scratch8 = vec![0i32; int8::rfa::scratch_len(shape, features)];
            int8::rfa::attention(
                &plan,
                &data.x(),
                &omega8,
                Out::F32(&mut out8),
                &mut scratch8,
            )
            .unwrap();
            let e = relative_error(&out8, &out32);
            let what = format!("{id} rfa S={features}");
            if std::env::var("INT8_DEBUG").is_ok() {
                println!("{what}: {e} {:?} {:?}", &out8[..4], &out32[..4]);
                continue;
            }
            assert!(e <= 0.02, "{what}: {e}");
            track(e, what.clone());
            let omega = heads_of(&omega, heads);
            let semantics: Vec<f64> = (0..heads)
                .flat_map(|h| reference::performer(dims, omega[h], features, dq[h], dk[h], dv[h]))
                .collect();
            let e = check_semantics(&what, &out8, &semantics, data.scales.v);
            worst_semantics = worst_semantics.max(e);
            let (e8, e32) = (
                relative_error(&out8, &exact_ref),
                relative_error(&out32, &exact_ref),
            );
            assert!(
                (e8 - e32).abs() <= 0.02,
                "{what}: vs exact {e8} (f32 {e32})"
            );
        }
        for c in [4, 8] {
            // The kernel's landmarks: C' = min(C, n_q, n_k) segment means on its grid
            let count = reference::effective_landmarks(dims, c);
            let means = |x: &[i8], scale: f32| -> Vec<Vec<f32>> {
                x.chunks_exact(x.len() / heads)
                    .map(|head| int8_segment_means(head, d, count, scale, None))
                    .collect()
            };
            let (q_bars, k_bars) = (means(&data.q, data.scales.q), means(&data.k, data.scales.k));
            let t_bars: Vec<Vec<f32>> = data
                .q
                .chunks_exact(data.q.len() / heads)
                .map(|head| int8_t_landmarks(head, d, count, data.scales.q))
                .collect();
            for (weighting, mis) in [
                (
                    Weighting::Optimal { alpha_coeff: 1.0 },
                    reference::Mis::Opt(1.0),
                ),
                (
                    Weighting::Optimal { alpha_coeff: 2.0 },
                    reference::Mis::Opt(2.0),
                ),
                (Weighting::BalanceHeuristic, reference::Mis::Bh),
                (Weighting::Biased, reference::Mis::Biased),
            ] {
                let mut out32 = vec![0.0; len];
                let params = lara::Params::segment_means(c, weighting);
                let mut scratch = vec![0.0; lara::scratch_len(shape, c, Proposals::Single)];
                lara::attention(&x, &params, Sampling::Eval, &mut out32, &mut scratch).unwrap();
                let plan = int8::lara::Plan::new(
                    shape.dim,
                    &data.scales,
                    &int8::lara::Config::eval(weighting),
                )
                .unwrap();
                let mut scratch8 = vec![0i32; int8::lara::scratch_len(shape, c, Proposals::Single)];
                let mut out8 = vec![0.0f32; len];
                int8::lara::attention(
                    &plan,
                    &data.x(),
                    int8::lara::Landmarks::SegmentMeans(c),
                    int8::lara::Sampling::Eval,
                    Out::F32(&mut out8),
                    &mut scratch8,
                )
                .unwrap();
                let e = relative_error(&out8, &out32);
                let what = format!("{id} lara C={c} {weighting:?}");
                if std::env::var("INT8_DEBUG").is_ok() {
                    println!("{what}: {e}");
                    continue;
                }
                assert!(e <= 0.02, "{what}: {e}");
                track(e, what.clone());
                let semantics: Vec<f64> = (0..heads)
                    .flat_map(|h| {
                        let landmarks = (count, &q_bars[h][..], &k_bars[h][..]);
                        let inputs = (dq[h], dk[h], dv[h]);
                        let options = reference::LaraOptions {
                            t_landmarks: Some(&t_bars[h][..]),
                            ..Default::default()
                        };
                        reference::lara_given_with(dims, landmarks, mis, inputs, None, options)
                    })
                    .collect();
                let e = check_semantics(&what, &out8, &semantics, data.scales.v);
                worst_semantics = worst_semantics.max(e);
                let (e8, e32) = (
                    relative_error(&out8, &exact_ref),
                    relative_error(&out32, &exact_ref),
                );
                assert!(
                    (e8 - e32).abs() <= 0.02,
                    "{what}: vs exact {e8} (f32 {e32})"
                );
            }
        }
    }
    println!(
        "worst relative error against the f32 kernels: {:.4} ({}); RFA and LARA within {:.1e} \
         of the values' range of the references of their integer semantics",
        worst.0, worst.1, worst_semantics
    );
}

/// Sampled mode with given noise (every proposal layout, both noise scales), given landmarks and
/// a key mask, against the f32 kernel on the dequantised inputs and the plain `f64` reference of
/// their integer semantics.
#[test]
fn lara_options_follow_the_f32_kernel() {
    let (_, shape, q, k, v) = golden_inputs()
        .into_iter()
        .find(|c| c.0 == "clustered_n100_d8")
        .unwrap();
    let data = Quantised::new(shape, &q, &k, &v);
    let len = q.len();
    let c = 8;
    let mut eps = vec![0.0f32; 2 * c * shape.dim];
    fill_standard_normal(&mut default_rng(5), &mut eps);
    let eps_scale = int8::scale_for(&eps);
    let mut eps8 = vec![0i8; eps.len()];
    int8::quantize(&eps, eps_scale, &mut eps8);
    let mut eps_deq = vec![0.0; eps.len()];
    int8::dequantize(&eps8, eps_scale, &mut eps_deq);
    let mask: Vec<bool> = (0..shape.keys).map(|j| j % 5 == 3).collect();
    let dims = reference::Dims::new(shape.queries, shape.keys, shape.dim, shape.value_dim);
    let inputs = (&data.dq[..], &data.dk[..], &data.dv[..]);
    let q_bar = int8_segment_means(&data.q, shape.dim, c, data.scales.q, None);
    let k_bar = int8_segment_means(&data.k, shape.dim, c, data.scales.k, Some(&mask));
    let t_bar = int8_t_landmarks(&data.q, shape.dim, c, data.scales.q);
    for (proposals, samples, weighting, mis) in [
        (
            Proposals::Single,
            reference::Samples::Single,
            Weighting::Optimal { alpha_coeff: 1.0 },
            reference::Mis::Opt(1.0),
        ),
        (
            Proposals::Antithetic,
            reference::Samples::Antithetic,
            Weighting::Biased,
            reference::Mis::Biased,
        ),
        (
            Proposals::TwoPerLandmark,
            reference::Samples::Two,
            Weighting::BalanceHeuristic,
            reference::Mis::Bh,
        ),
    ] {
        for noise_scale in [NoiseScale::Official, NoiseScale::Paper] {
            let rows = lara::noise_len(shape, c, proposals);
            let params = lara::Params::segment_means(c, weighting)
                .with_proposals(proposals)
                .with_noise_scale(noise_scale);
            let mut x = data.dequantised();
            x.key_mask = Some(&mask);
            let mut out32 = vec![0.0; len];
            let mut scratch = vec![0.0; lara::scratch_len(shape, c, proposals)];
            lara::attention(
                &x,
                &params,
                Sampling::Noise(&eps_deq[..rows]),
                &mut out32,
                &mut scratch,
            )
            .unwrap();
            let config = int8::lara::Config {
                weighting,
                proposals,
                noise_scale,
                noise: Some(eps_scale),
                landmarks: None,
            };
            let plan = int8::lara::Plan::new(shape.dim, &data.scales, &config).unwrap();
            let mut x8 = data.x();
            x8.key_mask = Some(&mask);
            let mut out8 = vec![0.0f32; len];
            let mut scratch8 = vec![0i32; int8::lara::scratch_len(shape, c, proposals)];
            int8::lara::attention(
                &plan,
                &x8,
                int8::lara::Landmarks::SegmentMeans(c),
                int8::lara::Sampling::Noise(&eps8[..rows]),
                Out::F32(&mut out8),
                &mut scratch8,
            )
            .unwrap();
            let what = format!("{proposals:?} {noise_scale:?} {weighting:?}");
            let e = relative_error(&out8, &out32);
            assert!(e <= 0.02, "{what}: {e}");
            let options = reference::LaraOptions {
                samples,
                noise_factor: f64::from(noise_scale.factor(shape.dim)),
                key_mask: Some(&mask),
                t_landmarks: Some(&t_bar),
            };
            let landmarks = (c, &q_bar[..], &k_bar[..]);
            let noise = Some(&eps_deq[..rows]);
            let semantics =
                reference::lara_given_with(dims, landmarks, mis, inputs, noise, options);
            check_semantics(&what, &out8, &semantics, data.scales.v);
        }
    }
    // Given landmarks (the first rows of q and k, quantised with their own scales).
    let (qb, kb) = (&data.dq[..c * shape.dim], &data.dk[..c * shape.dim]);
    let (sqb, skb) = (int8::scale_for(qb), int8::scale_for(kb));
    let (mut qb8, mut kb8) = (vec![0i8; qb.len()], vec![0i8; kb.len()]);
    int8::quantize(qb, sqb, &mut qb8);
    int8::quantize(kb, skb, &mut kb8);
    let (mut qbd, mut kbd) = (vec![0.0; qb.len()], vec![0.0; kb.len()]);
    int8::dequantize(&qb8, sqb, &mut qbd);
    int8::dequantize(&kb8, skb, &mut kbd);
    let weighting = Weighting::Optimal { alpha_coeff: 1.0 };
    let params = lara::Params::new(
        lara::Landmarks::Given {
            count: c,
            queries: &qbd,
            keys: &kbd,
        },
        weighting,
    );
    let mut out32 = vec![0.0; len];
    let mut scratch = vec![0.0; lara::scratch_len(shape, c, Proposals::Single)];
    lara::attention(
        &data.dequantised(),
        &params,
        Sampling::Eval,
        &mut out32,
        &mut scratch,
    )
    .unwrap();
    let config = int8::lara::Config {
        landmarks: Some((sqb, skb)),
        ..int8::lara::Config::eval(weighting)
    };
    let plan = int8::lara::Plan::new(shape.dim, &data.scales, &config).unwrap();
    let mut out8 = vec![0.0f32; len];
    let mut scratch8 = vec![0i32; int8::lara::scratch_len(shape, c, Proposals::Single)];
    let given = int8::lara::Landmarks::Given {
        count: c,
        queries: &qb8,
        keys: &kb8,
    };
    int8::lara::attention(
        &plan,
        &data.x(),
        given,
        int8::lara::Sampling::Eval,
        Out::F32(&mut out8),
        &mut scratch8,
    )
    .unwrap();
    let e = relative_error(&out8, &out32);
    assert!(e <= 0.02, "given landmarks: {e}");
    let mis = reference::Mis::Opt(1.0);
    let semantics = reference::lara_given(dims, (c, &qbd, &kbd), mis, inputs, None);
    check_semantics("given landmarks", &out8, &semantics, data.scales.v);
}

/// Refusals: scales, limits, lengths, plans; nothing written on error.
#[test]
fn bad_arguments_are_refused_and_nothing_is_written() {
    let shape = Shape::self_attention(8, 4);
    let good = Scales {
        q: 0.1,
        k: 0.1,
        v: 0.1,
        out: 0.1,
    };
    for bad in [0.0, -1.0, f32::NAN, f32::INFINITY, 1e-40] {
        let scales = Scales { k: bad, ..good };
        assert_eq!(
            int8::exact::Plan::new(4, &scales),
            Err(Error::InvalidScale(lara_attn::Arg::Keys))
        );
    }
    assert!(matches!(
        int8::exact::Plan::new(513, &good),
        Err(Error::FixedPointRange(_))
    ));
    assert!(matches!(
        int8::exact::Plan::new(
            64,
            &Scales {
                q: 1.0,
                k: 1.0,
                ..good
            }
        ),
        Err(Error::FixedPointRange(_))
    ));
    let plan = int8::exact::Plan::new(4, &good).unwrap();
    let x = [1i8; 32];
    let inputs = int8::Qkv {
        shape,
        q: &x,
        k: &x,
        v: &x,
        key_mask: None,
    };
    let mut scratch = vec![7i32; int8::exact::scratch_len(shape)];
    let mut out = [5i8; 32];
    let short = &mut scratch[..int8::exact::scratch_len(shape) - 1];
    assert!(matches!(
        int8::exact::attention(&plan, &inputs, Out::I8(&mut out), short),
        Err(Error::ScratchTooSmall { .. })
    ));
    let mask = [true; 8];
    let masked = int8::Qkv {
        key_mask: Some(&mask),
        ..inputs
    };
    assert_eq!(
        int8::exact::attention(&plan, &masked, Out::I8(&mut out), &mut scratch),
        Err(Error::AllKeysMasked)
    );
    let other = int8::exact::Plan::new(8, &good).unwrap();
    assert_eq!(
        int8::exact::attention(&other, &inputs, Out::I8(&mut out), &mut scratch),
        Err(Error::PlanMismatch)
    );
    assert!(matches!(
        int8::exact::attention(&plan, &inputs, Out::I8(&mut out[..31]), &mut scratch),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(out.iter().all(|&o| o == 5) && scratch.iter().all(|&s| s == 7));
    // LARA: a sampled call with an eval plan, given landmarks without their scales, zero C
    let lara_plan =
        int8::lara::Plan::new(4, &good, &int8::lara::Config::eval(Weighting::Biased)).unwrap();
    let mut scratch = vec![7i32; int8::lara::scratch_len(shape, 4, Proposals::Single)];
    let eps = [0i8; 16];
    let run = |landmarks, sampling, scratch: &mut [i32], out: &mut [i8]| {
        int8::lara::attention(
            &lara_plan,
            &inputs,
            landmarks,
            sampling,
            Out::I8(out),
            scratch,
        )
    };
    let seg = int8::lara::Landmarks::SegmentMeans(4);
    assert_eq!(
        run(
            seg,
            int8::lara::Sampling::Noise(&eps),
            &mut scratch,
            &mut out
        ),
        Err(Error::PlanMismatch)
    );
    let given = int8::lara::Landmarks::Given {
        count: 4,
        queries: &eps,
        keys: &eps,
    };
    assert_eq!(
        run(given, int8::lara::Sampling::Eval, &mut scratch, &mut out),
        Err(Error::PlanMismatch)
    );
    assert_eq!(
        run(
            int8::lara::Landmarks::SegmentMeans(0),
            int8::lara::Sampling::Eval,
            &mut scratch,
            &mut out
        ),
        Err(Error::ZeroLandmarks)
    );
    assert!(matches!(
        int8::lara::Plan::new(
            4,
            &good,
            &int8::lara::Config::eval(Weighting::Optimal { alpha_coeff: 9.0 })
        ),
        Err(Error::FixedPointRange(_))
    ));
    assert!(out.iter().all(|&o| o == 5) && scratch.iter().all(|&s| s == 7));
}

/// Sizes that hit every tail of the packed rows (groups of four), the key blocks (four) and the
/// pairs of samples.
const SIZES: [usize; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17, 33];

fn random_i8(len: usize, seed: u64) -> Vec<i8> {
    let mut x = vec![0.0f32; len];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x.iter()
        .map(|v| (v * 40.0).clamp(-128.0, 127.0) as i8)
        .collect()
}

/// Every int8 kernel of the registry on shapes with every tail length, one and two heads,
/// masks, every weighting and proposal layout: the `i8` and `f32` outputs are consistent, and
/// scratch filled with garbage gives the same bits as zeroed scratch; every backend of the host
/// (each runs its own inner loops: portable, AVX2, NEON) gives the same bits as the scalar one.
/// The bits of all outputs hash to one digest, printed for the firmware comparison.
#[test]
fn every_int8_kernel_on_every_tail() {
    use kernels::{INT8_KERNELS, Int8Call};
    use lara_attn::backend::{Backend, set_backend};
    let backends: Vec<Backend> = Backend::ALL
        .into_iter()
        .filter(|b| *b != Backend::Scalar && b.is_available())
        .collect();
    let mut digest = 0x811c_9dc5u32;
    let mut calls = 0;
    for (t, &n) in SIZES.iter().enumerate() {
        let d = SIZES[(t * 5 + 3) % SIZES.len()];
        let dv = SIZES[(t * 7 + 1) % SIZES.len()];
        let nk = if t % 3 == 0 {
            n
        } else {
            SIZES[(t + 4) % SIZES.len()]
        };
        let shape = Shape::cross(n, nk, d, dv).with_heads(1 + usize::from(t % 4 == 1));
        let h = shape.heads;
        let (q, k, v) = (
            random_i8(h * n * d, 3 * t as u64),
            random_i8(h * nk * d, 3 * t as u64 + 1),
            random_i8(h * nk * dv, 3 * t as u64 + 2),
        );
        let mask: Vec<bool> = (0..nk).map(|j| j % 3 == 1).collect();
        let scales = Scales {
            q: 0.03,
            k: 0.02,
            v: 0.01,
            out: 0.008,
        };
        for masked in [false, true] {
            for (w, weighting) in [
                Weighting::Optimal { alpha_coeff: 1.0 },
                Weighting::Optimal { alpha_coeff: -2.5 },
                Weighting::BalanceHeuristic,
                Weighting::Biased,
            ]
            .into_iter()
            .enumerate()
            {
                for c in [1, 3, 4, 5, 9] {
                    let proposals = [
                        Proposals::Single,
                        Proposals::Antithetic,
                        Proposals::TwoPerLandmark,
                    ][(w + c) % 3];
                    let count = lara_attn::lara::effective_landmarks(shape, c);
                    let eps = random_i8(h * 2 * c * d, 7 + c as u64);
                    let omega = random_i8(h * (c + 2) * d, 11 + c as u64);
                    let landmark_data = random_i8(h * c * d, 13);
                    let given = (t + c) % 4 == 0;
                    let sampled = (t + w + c) % 2 == 1;
                    let call = Int8Call {
                        x: int8::Qkv {
                            shape,
                            q: &q,
                            k: &k,
                            v: &v,
                            key_mask: masked.then_some(&mask[..]),
                        },
                        scales,
                        lara: int8::lara::Config {
                            weighting,
                            proposals,
                            noise_scale: [NoiseScale::Official, NoiseScale::Paper][c % 2],
                            noise: Some(0.02),
                            landmarks: Some((0.025, 0.015)),
                        },
                        landmarks: if given {
                            int8::lara::Landmarks::Given {
                                count: c,
                                queries: &landmark_data,
                                keys: &landmark_data,
                            }
                        } else {
                            int8::lara::Landmarks::SegmentMeans(c)
                        },
                        noise: sampled.then(|| {
                            &eps[..h * proposals.noise_rows(if given { c } else { count }) * d]
                        }),
                        omega: &omega,
                        omega_scale: 0.02,
                    };
                    for kernel in INT8_KERNELS {
                        set_backend(Some(Backend::Scalar)).unwrap();
                        let len = h * n * dv;
                        let scratch_len = (kernel.scratch_len)(&call);
                        let mut i8_out = vec![0i8; len];
                        let mut clean = vec![0i32; scratch_len];
                        (kernel.run)(&call, Out::I8(&mut i8_out), &mut clean)
                            .unwrap_or_else(|e| panic!("{} {shape:?}: {e}", kernel.name));
                        let mut dirty = vec![-0x5a5a_5a5a; scratch_len];
                        let mut again = vec![0i8; len];
                        (kernel.run)(&call, Out::I8(&mut again), &mut dirty).unwrap();
                        assert_eq!(i8_out, again, "{} {shape:?}: dirty scratch", kernel.name);
                        let mut f32_out = vec![0.0f32; len];
                        (kernel.run)(&call, Out::F32(&mut f32_out), &mut dirty).unwrap();
                        for (&a, &b) in i8_out.iter().zip(&f32_out) {
                            let expected = (b / scales.out).clamp(-128.0, 127.0);
                            assert!(
                                (f32::from(a) - expected).abs() <= 0.5001,
                                "{} {shape:?}: i8 {a} vs f32 {b}",
                                kernel.name
                            );
                        }
                        for &backend in &backends {
                            set_backend(Some(backend)).unwrap();
                            let mut other = vec![0x5a; len];
                            (kernel.run)(&call, Out::I8(&mut other), &mut dirty).unwrap();
                            assert_eq!(i8_out, other, "{} {shape:?}: {backend}", kernel.name);
                            let mut other = vec![f32::NAN; len];
                            (kernel.run)(&call, Out::F32(&mut other), &mut dirty).unwrap();
                            let bits =
                                |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                            assert_eq!(
                                bits(&f32_out),
                                bits(&other),
                                "{} {shape:?}: {backend}, f32 output",
                                kernel.name
                            );
                        }
                        set_backend(None).unwrap();
                        for &b in &i8_out {
                            digest = (digest ^ u32::from(b as u8)).wrapping_mul(0x0100_0193);
                        }
                        calls += 1;
                    }
                }
            }
        }
    }
    println!("{calls} calls on scalar and {backends:?}, digest of every i8 output {digest:#010x}");
    // The same bits on every target (CI runs this test on aarch64 too): a change of the
    // fixed-point semantics changes this digest, and then it must change on purpose.
    assert_eq!(digest, 0x517b_b181);
}
