//! Error handling: every variant reachable through the slice API, with the output and scratch
//! untouched. The errors every kernel shares run over the whole registry
//! (`tests/support/kernels.rs`); the estimators' own errors ([`estimators`]) call their
//! kernels by name.

mod estimators;

use crate::backend_env::backend_from_env;
use crate::kernels::{Call, KERNELS, Kernel};
use crate::{key_indices, needed_scratch, randn, runs_on};
use lara_attn::{Arg, Dim, Error, Qkv, Shape, lara, ra};

const SENTINEL: f32 = -7777.25;

/// RA's proposal mean, owned (the given keys are [`Args::index`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mean {
    KeyAverage,
    AttentionWeighted,
    SampledKey,
    GivenKeys,
}

/// The arguments of one registry call, owned, so that a test can break one of them.
#[derive(Clone, Debug)]
struct Args {
    shape: Shape,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    mask: Option<Vec<bool>>,
    out_len: usize,
    scratch_len: usize,
    landmarks: usize,
    weighting: lara::Weighting,
    given: Option<(usize, Vec<f32>, Vec<f32>)>,
    mean: Mean,
    noise: Option<Vec<f32>>,
    /// RA's given keys `[h, n_q]`.
    index: Vec<u32>,
    /// `ω [h, 5, d]`.
    omega: Vec<f32>,
}

impl Args {
    /// Valid arguments for `shape`: eval mode, 3 segment-mean landmarks with `mis-opt`, the
    /// key-average RA mean, 5 features, no mask; scratch sized for `kernel` by the registry.
    fn valid(kernel: &Kernel, shape: Shape) -> Self {
        let mut args = Args::without_scratch(shape);
        args.scratch_len = (kernel.scratch_len)(&args.call());
        args
    }

    /// [`valid`](Self::valid) without scratch.
    fn without_scratch(shape: Shape) -> Self {
        let (h, nq, nk, d, dv) = (
            shape.heads,
            shape.queries,
            shape.keys,
            shape.dim,
            shape.value_dim,
        );
        Args {
            shape,
            q: randn(3, h * nq * d),
            k: randn(4, h * nk * d),
            v: randn(5, h * nk * dv),
            mask: None,
            out_len: h * nq * dv,
            scratch_len: 0,
            landmarks: 3,
            weighting: lara::Weighting::Optimal { alpha_coeff: 1.0 },
            given: None,
            mean: Mean::KeyAverage,
            noise: None,
            index: key_indices(6, h * nq, nk.max(1)),
            omega: randn(7, h * 5 * d),
        }
    }

    /// Sampled mode with noise `[h, n_q, d]`: RA's noise, and LARA's with `C = n_q` landmarks
    /// (`C' = n_q` when `n_q ≤ n_k`), so that one noise fits both.
    fn noised(mut self) -> Self {
        let shape = self.shape;
        assert!(shape.queries <= shape.keys);
        self.landmarks = shape.queries;
        assert_eq!(
            lara::noise_len(shape, self.landmarks, lara::Proposals::Single),
            shape.heads * shape.queries * shape.dim
        );
        self.noise = Some(randn(2, shape.heads * shape.queries * shape.dim));
        self
    }

    /// These arguments for another shape: every slice resized for it (the scratch kept).
    fn reshaped(&self, shape: Shape) -> Self {
        let mut args = Args::without_scratch(shape);
        args.scratch_len = self.scratch_len;
        args.landmarks = self.landmarks;
        args.mean = self.mean;
        if self.noise.is_some() {
            args.noise = Some(randn(2, shape.heads * shape.queries * shape.dim));
        }
        args
    }

    fn call(&self) -> Call<'_> {
        let lara = match &self.given {
            None => lara::Params::segment_means(self.landmarks, self.weighting),
            Some((count, qb, kb)) => {
                let landmarks = lara::Landmarks::Given {
                    count: *count,
                    queries: qb,
                    keys: kb,
                };
                lara::Params::new(landmarks, self.weighting)
            }
        };
        let mean = match self.mean {
            Mean::KeyAverage => ra::Mean::KeyAverage,
            Mean::AttentionWeighted => ra::Mean::AttentionWeighted,
            Mean::SampledKey => ra::Mean::SampledKey,
            Mean::GivenKeys => ra::Mean::GivenKeys(&self.index),
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
            ra: ra::Params::new(mean),
            omega: &self.omega,
            noise: self.noise.as_deref(),
            seed: 1,
            gates: None,
        }
    }

    /// Calls the kernel with sentinel-filled output and scratch; returns the result and
    /// whether both buffers are still all sentinel.
    fn run(&self, kernel: &Kernel) -> (Result<(), Error>, bool) {
        let mut out = vec![SENTINEL; self.out_len];
        let mut scratch = vec![SENTINEL; self.scratch_len];
        let result = (kernel.run)(&self.call(), &mut out, &mut scratch);
        let untouched = out
            .iter()
            .chain(scratch.iter())
            .all(|x| x.to_bits() == SENTINEL.to_bits());
        (result, untouched)
    }

    fn expect(&self, kernel: &Kernel, expected: Error, what: &str) {
        let (result, untouched) = self.run(kernel);
        let name = kernel.name;
        assert_eq!(result, Err(expected), "{name} {:?}: {what}", self.shape);
        assert!(
            untouched,
            "{name} {:?}: {what}: output or scratch was written",
            self.shape
        );
    }
}

/// The valid calls every kernel is tried with: eval mode with each RA mean, and sampled mode
/// (noise) with each RA mean that takes noise.
fn configurations(kernel: &Kernel, shape: Shape) -> Vec<Args> {
    let base = Args::valid(kernel, shape);
    let means = [
        Mean::KeyAverage,
        Mean::AttentionWeighted,
        Mean::GivenKeys,
        Mean::SampledKey,
    ];
    let eval = means.map(|mean| Args {
        mean,
        ..base.clone()
    });
    let noised = means[..3].iter().map(|&mean| {
        let args = Args {
            mean,
            ..base.clone().noised()
        };
        Args {
            scratch_len: (kernel.scratch_len)(&args.call()),
            ..args
        }
    });
    eval.into_iter().chain(noised).collect()
}

#[test]
fn errors_common_to_every_kernel() {
    backend_from_env();
    // Cross-attention, self-attention (the causal kernels take only that), two heads.
    let cross = Shape::cross(6, 7, 4, 3);
    let shapes = [cross, Shape::cross(7, 7, 4, 3), cross.with_heads(2)];
    for kernel in KERNELS {
        let mut tried = 0;
        for &shape in shapes.iter().filter(|&&shape| runs_on(kernel, shape)) {
            for base in configurations(kernel, shape) {
                let (ok, _) = base.run(kernel);
                match ok {
                    Ok(()) => {}
                    // RA's sampled key without a generator (see errors_ra_sampled_key_...).
                    Err(Error::GeneratorRequired) if base.mean == Mean::SampledKey => continue,
                    Err(e) => panic!(
                        "{} {shape:?} {:?}, noise {}: valid arguments rejected: {e}",
                        kernel.name,
                        base.mean,
                        base.noise.is_some()
                    ),
                }
                common_errors(kernel, &base);
                tried += 1;
            }
        }
        assert!(tried >= 6, "{}: only {tried} valid calls", kernel.name);
    }
}

/// The errors of `q`, `k`, `v`, `out`, the key mask, the scratch and the shape, on valid
/// arguments `base`.
fn common_errors(kernel: &Kernel, base: &Args) {
    let shape = base.shape;
    let (h, nq, nk, d, dv) = (
        shape.heads,
        shape.queries,
        shape.keys,
        shape.dim,
        shape.value_dim,
    );

    // ZeroDimension for each dimension (slices sized for the zero shape). A self-attention
    // shape stays one: zero queries and keys.
    let mut zeros = vec![
        (Shape { heads: 0, ..shape }, Dim::Heads),
        (Shape { dim: 0, ..shape }, Dim::Model),
        (
            Shape {
                value_dim: 0,
                ..shape
            },
            Dim::Value,
        ),
    ];
    if nq == nk {
        let zero = Shape {
            queries: 0,
            keys: 0,
            ..shape
        };
        zeros.push((zero, Dim::Queries));
    } else {
        zeros.push((
            Shape {
                queries: 0,
                ..shape
            },
            Dim::Queries,
        ));
        zeros.push((Shape { keys: 0, ..shape }, Dim::Keys));
    }
    for (zero, dim) in zeros {
        let args = base.reshaped(zero);
        args.expect(kernel, Error::ZeroDimension(dim), &format!("{zero:?}"));
    }

    // LengthMismatch for q, k, v, out: one too short and one too long.
    let (q_len, k_len, v_len, out_len) = (h * nq * d, h * nk * d, h * nk * dv, h * nq * dv);
    if shape == Shape::cross(6, 7, 4, 3) {
        assert_eq!((q_len, k_len, v_len, out_len), (24, 28, 21, 18));
    }
    for delta in [-1isize, 1] {
        let resize = |x: &mut Vec<f32>| {
            let len = (x.len() as isize + delta) as usize;
            x.resize(len, 0.5);
            len
        };
        let mismatch = |arg, expected, actual| Error::LengthMismatch {
            arg,
            expected,
            actual,
        };
        let mut a = base.clone();
        let actual = resize(&mut a.q);
        a.expect(kernel, mismatch(Arg::Queries, q_len, actual), "q length");
        let mut a = base.clone();
        let actual = resize(&mut a.k);
        a.expect(kernel, mismatch(Arg::Keys, k_len, actual), "k length");
        let mut a = base.clone();
        let actual = resize(&mut a.v);
        a.expect(kernel, mismatch(Arg::Values, v_len, actual), "v length");
        let mut a = base.clone();
        a.out_len = (a.out_len as isize + delta) as usize;
        let actual = a.out_len;
        a.expect(kernel, mismatch(Arg::Output, out_len, actual), "out length");
        // The key mask [n_k], shared by the heads.
        let mut a = base.clone();
        let actual = (nk as isize + delta) as usize;
        a.mask = Some(vec![false; actual]);
        a.expect(kernel, mismatch(Arg::KeyMask, nk, actual), "mask length");
    }

    // The key mask: masking every key is an error; masking one key is not (one that no given
    // key index names: a given key of a masked key is an error of its own, in `errors_ra`).
    let mut a = base.clone();
    a.mask = Some(vec![true; nk]);
    a.expect(kernel, Error::AllKeysMasked, "every key masked");
    let mut a = base.clone();
    let unnamed = (0..nk as u32).rev().find(|j| !a.index.contains(j));
    a.mask = Some((0..nk as u32).map(|j| Some(j) == unnamed).collect());
    assert_eq!(a.run(kernel).0, Ok(()), "{} one key masked", kernel.name);

    // NonFinite for q, k, v: NaN, +inf, -inf, first and last element.
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for first in [true, false] {
            let poison = |x: &mut Vec<f32>| {
                let at = if first { 0 } else { x.len() - 1 };
                x[at] = bad;
            };
            let mut a = base.clone();
            poison(&mut a.q);
            a.expect(kernel, Error::NonFinite(Arg::Queries), &format!("q {bad}"));
            let mut a = base.clone();
            poison(&mut a.k);
            a.expect(kernel, Error::NonFinite(Arg::Keys), &format!("k {bad}"));
            let mut a = base.clone();
            poison(&mut a.v);
            a.expect(kernel, Error::NonFinite(Arg::Values), &format!("v {bad}"));
        }
    }

    // ScratchTooSmall: one short, and empty; exactly what the active backend needs is enough.
    let needed = needed_scratch(kernel, &base.call());
    for actual in [needed - 1, 0] {
        let mut a = base.clone();
        a.scratch_len = actual;
        a.expect(kernel, Error::ScratchTooSmall { needed, actual }, "scratch");
    }
    let mut a = base.clone();
    a.scratch_len = needed;
    assert_eq!(a.run(kernel).0, Ok(()), "{} exact scratch", kernel.name);

    // SizeOverflow: h · n_q · d does not fit in usize.
    let huge = usize::MAX / 2 + 1;
    let mut a = base.clone();
    a.shape = Shape {
        queries: huge,
        keys: if nq == nk { huge } else { nk },
        ..shape
    };
    a.expect(kernel, Error::SizeOverflow, "huge shape");
}
