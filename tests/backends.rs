//! Every blocked backend the host can run (the SIMD ones and the one-lane `blocked`, which
//! Cortex-M runs) against the scalar reference kernels, for every kernel of the registry
//! (`tests/support/kernels.rs`): random shapes with every tail length (n, d, C, S from 1 to a
//! few multiples of the widest vector and of the 4 × 4 register tile), one and two heads,
//! masks, every parameter variant, and a dirty-scratch pass (NaN-filled scratch must give the
//! same bits).
//!
//! `LARA_ATTN_BACKEND=<name>` restricts the run to one backend and fails if it cannot run here,
//! so CI can prove each backend was tested.

#[path = "support/kernels.rs"]
mod kernels;

use kernels::{Call, KERNELS, Kernel};
use lara_attn::backend::{Backend, set_backend};
use lara_attn::lara::{Landmarks, Proposals, Weighting};
use lara_attn::random::{NoiseScale, default_rng, fill_standard_normal, orthogonal_omega};
use lara_attn::{Qkv, Shape, lara, ra};
use std::sync::Mutex;

/// Backend selection is process-wide: tests that set it run one at a time.
static SELECTION: Mutex<()> = Mutex::new(());

/// The blocked backends under test: the forced one, or every available one.
fn blocked_backends() -> Vec<Backend> {
    match std::env::var("LARA_ATTN_BACKEND") {
        Ok(name) => {
            let backend =
                Backend::from_name(&name).unwrap_or_else(|| panic!("unknown backend {name:?}"));
            assert!(
                backend.is_available(),
                "LARA_ATTN_BACKEND={name}: not available on this host"
            );
            vec![backend]
        }
        Err(_) => Backend::ALL
            .into_iter()
            .filter(|b| *b != Backend::Scalar && b.is_available())
            .collect(),
    }
}

/// Runs `kernel` on `call` and `backend`, with the scratch first filled with `fill`.
fn run(backend: Backend, fill: f32, kernel: &Kernel, call: &Call<'_>) -> Vec<f32> {
    set_backend(Some(backend)).unwrap();
    let shape = call.x.shape;
    let mut out = vec![f32::NAN; shape.heads * shape.queries * shape.value_dim];
    let mut scratch = vec![fill; (kernel.scratch_len)(call)];
    let result = (kernel.run)(call, &mut out, &mut scratch);
    set_backend(None).unwrap();
    result.unwrap_or_else(|e| panic!("{} {}: {e}", kernel.name, describe(call)));
    out
}

/// Compares every blocked backend with the scalar kernel (and NaN-filled scratch with zeroed
/// scratch): `max|blocked − scalar| ≤ tol · max(1, max|scalar|)`.
fn check_all(kernel: &Kernel, call: &Call<'_>, tol: f32) {
    let reference = run(Backend::Scalar, 0.0, kernel, call);
    let scale = reference.iter().fold(1.0f32, |m, x| m.max(x.abs()));
    for backend in blocked_backends() {
        let ours = run(backend, 0.0, kernel, call);
        let err = ours.iter().zip(&reference).fold(0.0f32, |m, (a, b)| {
            if a.is_nan() {
                f32::INFINITY
            } else {
                m.max((a - b).abs())
            }
        });
        assert!(
            err <= tol * scale,
            "{} on {backend}: max error {err:e} > {tol:e} x {scale}\n{}",
            kernel.name,
            describe(call),
        );
        let dirty = run(backend, f32::NAN, kernel, call);
        assert!(
            dirty
                .iter()
                .zip(&ours)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{} on {backend}: NaN-filled scratch changed the result\n{}",
            kernel.name,
            describe(call),
        );
    }
}

/// The parameters of a call, without its data.
fn describe(call: &Call<'_>) -> String {
    let ra_mean = match call.ra.mean {
        ra::Mean::GivenKeys(_) => "GivenKeys".to_string(),
        mean => format!("{mean:?}"),
    };
    format!(
        "{:?}, masked {}, C = {} (given {}) {:?} {:?} {:?}, RA {ra_mean} {:?}, S = {}, noise {}",
        call.x.shape,
        call.x.key_mask.is_some(),
        call.landmarks(),
        matches!(call.lara.landmarks, Landmarks::Given { .. }),
        call.lara.weighting,
        call.lara.proposals,
        call.lara.noise_scale,
        call.ra.noise_scale,
        call.features(),
        call.noise.is_some(),
    )
}

fn random(len: usize, seed: u64, gain: f32) -> Vec<f32> {
    let mut x = vec![0.0; len];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x.iter_mut().for_each(|v| *v *= gain);
    x
}

/// Sizes that hit every tail of 4-, 8- and 16-lane vectors, 4-row tiles and 32-row blocks.
const SIZES: [usize; 14] = [1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 33, 47, 65];

/// The shapes under test: every size as `n_q`, with varying `n_k`, `d`, `d_v`, and two heads
/// every third shape; every fourth shape is self-attention (for the causal kernels).
fn shapes() -> impl Iterator<Item = Shape> {
    SIZES.iter().enumerate().map(|(t, &n)| {
        let d = SIZES[(t * 3 + 1) % 10];
        let d_v = SIZES[(t + 5) % 11];
        let shape = if t % 4 == 0 {
            Shape::cross(n, n, d, d_v)
        } else {
            Shape::cross(n, SIZES[(t + 2) % SIZES.len()] + 3, d, d_v)
        };
        shape.with_heads(1 + usize::from(t % 3 == 2))
    })
}

/// The inputs of one shape, owned; `masked` marks every third key and never the first.
struct Inputs {
    shape: Shape,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    mask: Vec<bool>,
}

impl Inputs {
    fn new(shape: Shape, seed: u64) -> Self {
        let h = shape.heads;
        Inputs {
            shape,
            q: random(h * shape.queries * shape.dim, seed, 0.8),
            k: random(h * shape.keys * shape.dim, seed + 1, 0.8),
            v: random(h * shape.keys * shape.value_dim, seed + 2, 1.0),
            mask: (0..shape.keys).map(|j| j % 3 == 2).collect(),
        }
    }

    /// The base call: no mask, eval mode, defaults elsewhere.
    fn call(&self, masked: bool) -> Call<'_> {
        Call {
            x: Qkv {
                shape: self.shape,
                q: &self.q,
                k: &self.k,
                v: &self.v,
                key_mask: masked.then_some(&self.mask[..]),
            },
            lara: lara::Params::default(),
            ra: ra::Params::new(ra::Mean::KeyAverage),
            omega: &[],
            noise: None,
            seed: 14,
            gates: None,
        }
    }
}

fn kernels(prefix: &str) -> impl Iterator<Item = &'static Kernel> + '_ {
    KERNELS
        .iter()
        .filter(move |k| k.name == prefix || k.name.starts_with(&format!("{prefix}-")))
}

#[test]
fn exact_matches_scalar() {
    let _guard = SELECTION.lock().unwrap();
    for (t, shape) in shapes().enumerate() {
        let inputs = Inputs::new(shape, 1 + 10 * t as u64);
        for masked in [false, true] {
            let call = inputs.call(masked);
            check_all(Kernel::named("exact").unwrap(), &call, 2e-6);
        }
    }
}

#[test]
fn lara_matches_scalar() {
    let _guard = SELECTION.lock().unwrap();
    let weightings = [
        Weighting::Optimal { alpha_coeff: 1.0 },
        Weighting::Optimal { alpha_coeff: 2.0 },
        Weighting::BalanceHeuristic,
        Weighting::Biased,
    ];
    let proposals = [
        Proposals::Single,
        Proposals::Antithetic,
        Proposals::TwoPerLandmark,
    ];
    for (t, shape) in shapes().enumerate() {
        let inputs = Inputs::new(shape, 4 + 10 * t as u64);
        for (i, &c) in [1, 3, 4, 7, 16, 17, 33].iter().enumerate() {
            let count = lara::effective_landmarks(shape, c);
            let eps = random(shape.heads * 2 * count * shape.dim, 7 + i as u64, 1.0);
            for (w, &weighting) in weightings.iter().enumerate() {
                let proposal = proposals[(i + w) % proposals.len()];
                let noise_scale = [NoiseScale::Official, NoiseScale::Paper][w % 2];
                let params = lara::Params::segment_means(c, weighting)
                    .with_proposals(proposal)
                    .with_noise_scale(noise_scale);
                let eps = &eps[..lara::noise_len(shape, c, proposal)];
                for (noise, masked) in [(None, false), (Some(eps), false), (Some(eps), true)] {
                    let call = Call {
                        lara: params,
                        noise,
                        ..inputs.call(masked)
                    };
                    for kernel in kernels("lara") {
                        check_all(kernel, &call, 2e-5);
                    }
                }
            }
        }
        // Given landmarks, more than tokens.
        let rows = shape.heads * 20 * shape.dim;
        let (q_bar, k_bar) = (random(rows, 8, 1.0), random(rows, 9, 1.0));
        let params = lara::Params::new(
            Landmarks::Given {
                count: 20,
                queries: &q_bar,
                keys: &k_bar,
            },
            weightings[0],
        );
        let call = Call {
            lara: params,
            ..inputs.call(true)
        };
        check_all(Kernel::named("lara").unwrap(), &call, 2e-5);
    }
}

#[test]
fn ra_matches_scalar() {
    let _guard = SELECTION.lock().unwrap();
    for (t, shape) in shapes().enumerate() {
        let inputs = Inputs::new(shape, 10 + 10 * t as u64);
        let rows = shape.heads * shape.queries;
        let eps = random(rows * shape.dim, 13, 1.0);
        // Given keys among the keys the mask leaves (a masked one is refused).
        let unmasked: Vec<u32> = (0..shape.keys as u32)
            .filter(|&j| !inputs.mask[j as usize])
            .collect();
        let indices: Vec<u32> = (0..rows)
            .map(|i| unmasked[(i * 7 + 3) % unmasked.len()])
            .collect();
        let means = [
            ra::Mean::KeyAverage,
            ra::Mean::AttentionWeighted,
            ra::Mean::GivenKeys(&indices),
        ];
        for (m, mean) in means.into_iter().enumerate() {
            let params = ra::Params::new(mean).with_noise_scale(if m == 1 {
                NoiseScale::Paper
            } else {
                NoiseScale::Official
            });
            for (noise, masked) in [(None, false), (Some(&eps[..]), false), (None, true)] {
                let call = Call {
                    ra: params,
                    noise,
                    ..inputs.call(masked)
                };
                check_all(Kernel::named("ra").unwrap(), &call, 2e-5);
            }
        }
        for mean in [
            ra::Mean::KeyAverage,
            ra::Mean::AttentionWeighted,
            ra::Mean::SampledKey,
        ] {
            for masked in [false, true] {
                let call = Call {
                    ra: ra::Params::new(mean),
                    ..inputs.call(masked)
                };
                check_all(Kernel::named("ra-draw").unwrap(), &call, 2e-5);
            }
        }
    }
}

#[test]
fn rfa_matches_scalar() {
    let _guard = SELECTION.lock().unwrap();
    for (t, shape) in shapes().enumerate() {
        let inputs = Inputs::new(shape, 15 + 10 * t as u64);
        for &features in &[1, 3, 4, 8, 16, 17, 33, 64] {
            let mut omega = vec![0.0; shape.heads * features * shape.dim];
            for head in omega.chunks_exact_mut(features * shape.dim) {
                orthogonal_omega(&mut default_rng(18), features, shape.dim, head).unwrap();
            }
            for masked in [false, true] {
                let call = Call {
                    omega: &omega,
                    ..inputs.call(masked)
                };
                for kernel in kernels("rfa").chain(kernels("causal")) {
                    if kernel.name.starts_with("causal") && shape.queries != shape.keys {
                        continue;
                    }
                    // The trigonometric features can nearly cancel in the denominator (outputs
                    // reach 160 here, where the values are N(0, 1)): the sums' rounding is
                    // amplified by that much.
                    let tol = if kernel.name.ends_with("trig") {
                        1e-4
                    } else {
                        1e-5
                    };
                    check_all(kernel, &call, tol);
                }
            }
        }
    }
}

/// The registry's kernels are all exercised by the tests above.
#[test]
fn every_kernel_is_covered() {
    for kernel in KERNELS {
        let family = kernel.name.split('-').next().unwrap();
        assert!(
            ["exact", "lara", "ra", "rfa", "causal"].contains(&family),
            "{} belongs to no test of tests/backends.rs",
            kernel.name
        );
    }
}
