//! The fixed-size layer gives exactly what the slice API gives, and an `h`-head call of every
//! kernel of the registry (`tests/support/kernels.rs`) gives exactly what `h` single-head calls
//! on the slices give. (The fixed-size layer always runs the scalar kernels, so it is compared
//! with the slice API on the scalar backend.)

// (The registry's `Kernel::run` field type trips clippy's type_complexity lint.)
#[path = "support/kernels.rs"]
mod kernels;

use kernels::{Call, KERNELS, Kernel};
use lara_attn::backend::Backend;
use lara_attn::fixed::{
    self, ExactScratch, LaraScratch, PositiveScratch, RaScratch, TrigonometricScratch,
};
use lara_attn::lara::{Landmarks, Params, Proposals, Weighting};
use lara_attn::random::{NoiseScale, default_rng, fill_standard_normal};
use lara_attn::rfa::FeatureMap;
use lara_attn::{Arg, Dim, Error, Qkv, Sampling, Shape, exact, lara, ra, rfa};

const NQ: usize = 23;
const NK: usize = 37;
const D: usize = 7;
const DV: usize = 5;
const C: usize = 6;
const S: usize = 9;
const SHAPE: Shape = Shape::cross(NQ, NK, D, DV);

fn random<const R: usize, const W: usize>(seed: u64) -> [[f32; W]; R] {
    let mut x = [[0.0; W]; R];
    fill_standard_normal(&mut default_rng(seed), x.as_flattened_mut());
    x
}

struct Inputs {
    q: [[f32; D]; NQ],
    k: [[f32; D]; NK],
    v: [[f32; DV]; NK],
}

fn inputs() -> Inputs {
    Inputs {
        q: random(1),
        k: random(2),
        v: random(3),
    }
}

/// Runs the slice API into a fresh output.
fn sliced(run: impl FnOnce(&mut [f32]) -> Result<(), Error>) -> Vec<f32> {
    let mut out = vec![f32::NAN; NQ * DV];
    run(&mut out).unwrap();
    out
}

/// Backend selection is process-wide: tests that depend on it run one at a time.
static SELECTION: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the selection lock with the scalar backend forced.
fn scalar_backend() -> std::sync::MutexGuard<'static, ()> {
    let guard = SELECTION.lock().unwrap_or_else(|e| e.into_inner());
    lara_attn::backend::set_backend(Some(lara_attn::backend::Backend::Scalar)).unwrap();
    guard
}

/// Holds the selection lock with the backend `LARA_ATTN_BACKEND` names (the best available
/// without it).
fn env_backend() -> std::sync::MutexGuard<'static, ()> {
    let guard = SELECTION.lock().unwrap_or_else(|e| e.into_inner());
    lara_attn::backend::set_backend(None).unwrap();
    if let Ok(name) = std::env::var("LARA_ATTN_BACKEND") {
        let backend = lara_attn::backend::Backend::from_name(&name)
            .unwrap_or_else(|| panic!("unknown backend {name:?}"));
        lara_attn::backend::set_backend(Some(backend))
            .unwrap_or_else(|e| panic!("LARA_ATTN_BACKEND={name}: {e}"));
    }
    guard
}

/// The key mask of the fixed-layer tests: every fourth key and a run in the middle.
fn fixed_mask() -> [bool; NK] {
    core::array::from_fn(|j| j % 4 == 1 || (12..20).contains(&j))
}

#[test]
fn fixed_layer_matches_the_slice_api() {
    let _scalar = scalar_backend();
    let Inputs { q, k, v } = inputs();
    let mask = fixed_mask();
    for key_mask in [None, Some(&mask)] {
        let masked = key_mask.is_some();
        let x = fixed::Qkv {
            q: &q,
            k: &k,
            v: &v,
            key_mask,
        };
        let xs = Qkv {
            shape: SHAPE,
            q: q.as_flattened(),
            k: k.as_flattened(),
            v: v.as_flattened(),
            key_mask: key_mask.map(|m| m.as_slice()),
        };
        let mut out = [[0.0f32; DV]; NQ];

        fixed::exact(&x, &mut out, &mut ExactScratch::new()).unwrap();
        let expected =
            sliced(|o| exact::attention(&xs, o, &mut vec![0.0; exact::scratch_len(SHAPE)]));
        assert_eq!(out.as_flattened(), &expected[..], "exact masked={masked}");

        let noise: [[f32; D]; C] = random(4);
        for weighting in [
            Weighting::Optimal { alpha_coeff: 1.5 },
            Weighting::BalanceHeuristic,
            Weighting::Biased,
        ] {
            for noise_scale in [NoiseScale::Official, NoiseScale::Paper] {
                let what = format!("lara {weighting:?} {noise_scale:?} masked={masked}");
                let mut scratch = LaraScratch::<C, D, DV>::new();
                let params = Params::segment_means(C, weighting).with_noise_scale(noise_scale);
                let mut lara_scratch = vec![0.0; lara::scratch_len(SHAPE, C, Proposals::Single)];
                for eps in [None, Some(noise.as_flattened())] {
                    let sampling = || match eps {
                        Some(eps) => Sampling::Noise(eps),
                        None => Sampling::Eval,
                    };
                    fixed::lara(&x, &params, sampling(), &mut out, &mut scratch).unwrap();
                    let expected =
                        sliced(|o| lara::attention(&xs, &params, sampling(), o, &mut lara_scratch));
                    assert_eq!(
                        out.as_flattened(),
                        &expected[..],
                        "{what} sampled={}",
                        eps.is_some()
                    );
                }
                let mut rng = default_rng(5);
                fixed::lara(
                    &x,
                    &params,
                    Sampling::Draw(&mut rng),
                    &mut out,
                    &mut scratch,
                )
                .unwrap();
                let expected = sliced(|o| {
                    let mut rng = default_rng(5);
                    let draw = Sampling::Draw(&mut rng);
                    lara::attention(&xs, &params, draw, o, &mut lara_scratch)
                });
                assert_eq!(out.as_flattened(), &expected[..], "{what} drawn");
            }
        }

        let ra_noise: [[f32; D]; NQ] = random(6);
        // Given keys among the keys the mask leaves (a masked one is refused).
        let unmasked: Vec<u32> = (0..NK as u32).filter(|&j| !mask[j as usize]).collect();
        let indices: Vec<u32> = (0..NQ)
            .map(|i| unmasked[(i * 7) % unmasked.len()])
            .collect();
        let mut scratch = RaScratch::<NK, D>::new();
        let mut ra_scratch = vec![0.0; ra::scratch_len(SHAPE)];
        for mean in [
            ra::Mean::KeyAverage,
            ra::Mean::AttentionWeighted,
            ra::Mean::GivenKeys(&indices),
        ] {
            for noise_scale in [NoiseScale::Official, NoiseScale::Paper] {
                let params = ra::Params::new(mean).with_noise_scale(noise_scale);
                for eps in [None, Some(ra_noise.as_flattened())] {
                    let sampling = || match eps {
                        Some(eps) => Sampling::Noise(eps),
                        None => Sampling::Eval,
                    };
                    fixed::ra(&x, &params, sampling(), &mut out, &mut scratch).unwrap();
                    let expected =
                        sliced(|o| ra::attention(&xs, &params, sampling(), o, &mut ra_scratch));
                    assert_eq!(
                        out.as_flattened(),
                        &expected[..],
                        "ra {mean:?} {noise_scale:?} sampled={} masked={masked}",
                        eps.is_some()
                    );
                }
            }
        }
        for mean in [
            ra::Mean::KeyAverage,
            ra::Mean::AttentionWeighted,
            ra::Mean::SampledKey,
        ] {
            let params = ra::Params::new(mean);
            let mut rng = default_rng(8);
            fixed::ra(
                &x,
                &params,
                Sampling::Draw(&mut rng),
                &mut out,
                &mut scratch,
            )
            .unwrap();
            let expected = sliced(|o| {
                let mut rng = default_rng(8);
                ra::attention(&xs, &params, Sampling::Draw(&mut rng), o, &mut ra_scratch)
            });
            assert_eq!(
                out.as_flattened(),
                &expected[..],
                "ra drawn {mean:?} masked={masked}"
            );
        }

        let omega: [[f32; D]; S] = random(9);
        let rfa_sliced = |map| {
            let mut scratch = vec![0.0; rfa::scratch_len(SHAPE, map, S)];
            let params = rfa::Params {
                map,
                omega: omega.as_flattened(),
            };
            sliced(|o| rfa::attention(&xs, &params, o, &mut scratch))
        };
        let mut scratch = PositiveScratch::<S, DV>::new();
        fixed::rfa_positive(&x, &omega, &mut out, &mut scratch).unwrap();
        let expected = rfa_sliced(FeatureMap::Positive);
        assert_eq!(out.as_flattened(), &expected[..], "rfa positive {masked}");

        let mut scratch = TrigonometricScratch::<S, DV>::new();
        fixed::rfa_trigonometric(&x, &omega, &mut out, &mut scratch).unwrap();
        let expected = rfa_sliced(FeatureMap::Trigonometric);
        assert_eq!(
            out.as_flattened(),
            &expected[..],
            "rfa trigonometric {masked}"
        );
    }
}

/// More landmarks than tokens: the fixed layer uses `C' = min(C, NQ, NK)` rows of its scratch.
#[test]
fn fixed_layer_with_more_landmarks_than_tokens() {
    let _scalar = scalar_backend();
    let q: [[f32; 4]; 5] = random(10);
    let v: [[f32; 3]; 5] = random(11);
    let mut out = [[0.0f32; 3]; 5];
    let weighting = Weighting::Optimal { alpha_coeff: 1.0 };
    let x = fixed::Qkv {
        q: &q,
        k: &q,
        v: &v,
        key_mask: None,
    };
    let params = Params::segment_means(12, weighting);
    fixed::lara(
        &x,
        &params,
        Sampling::Eval,
        &mut out,
        &mut LaraScratch::<12, 4, 3>::new(),
    )
    .unwrap();
    let shape = Shape::cross(5, 5, 4, 3);
    let mut expected = vec![0.0; 15];
    let mut scratch = vec![0.0; lara::scratch_len(shape, 5, Proposals::Single)];
    let xs = Qkv {
        shape,
        q: q.as_flattened(),
        k: q.as_flattened(),
        v: v.as_flattened(),
        key_mask: None,
    };
    let five = Params::segment_means(5, weighting);
    lara::attention(&xs, &five, Sampling::Eval, &mut expected, &mut scratch).unwrap();
    assert_eq!(out.as_flattened(), &expected[..]);
    // The noise must have C' = 5 rows.
    let eps = [[0.0f32; 4]; 12];
    let err = fixed::lara(
        &x,
        &params,
        Sampling::Noise(eps.as_flattened()),
        &mut out,
        &mut LaraScratch::<12, 4, 3>::new(),
    );
    assert_eq!(
        err,
        Err(Error::LengthMismatch {
            arg: Arg::Noise,
            expected: 20,
            actual: 48
        })
    );
}

/// The fixed LARA scratch holds `C` landmarks and `C` samples: parameters that need more (more
/// landmarks, or doubled proposals in sampled mode) are refused with nothing written; doubled
/// proposals in eval mode (one sample per landmark) run, and equal the slice API.
#[test]
fn fixed_layer_refuses_parameters_beyond_its_scratch() {
    let _scalar = scalar_backend();
    let Inputs { q, k, v } = inputs();
    let x = fixed::Qkv {
        q: &q,
        k: &k,
        v: &v,
        key_mask: None,
    };
    let xs = Qkv {
        shape: SHAPE,
        q: q.as_flattened(),
        k: k.as_flattened(),
        v: v.as_flattened(),
        key_mask: None,
    };
    let weighting = Weighting::BalanceHeuristic;
    let noise: [[f32; D]; 2 * C] = random(12);
    let sentinel = [[-7.0f32; DV]; NQ];
    for proposals in [Proposals::Antithetic, Proposals::TwoPerLandmark] {
        let params = Params::segment_means(C, weighting).with_proposals(proposals);
        let eps = &noise.as_flattened()[..lara::noise_len(SHAPE, C, proposals)];
        let mut out = sentinel;
        let result = fixed::lara(
            &x,
            &params,
            Sampling::Noise(eps),
            &mut out,
            &mut LaraScratch::<C, D, DV>::new(),
        );
        // in floats of scratch: the workspace of C landmarks and 2·C samples, the one of C and C
        let too_small = Error::ScratchTooSmall {
            needed: lara::scratch_len_for(Backend::Scalar, SHAPE, C, proposals),
            actual: lara::scratch_len_for(Backend::Scalar, SHAPE, C, Proposals::Single),
        };
        assert_eq!(result, Err(too_small), "{proposals:?}");
        assert_eq!(out, sentinel, "{proposals:?}: an error wrote the output");
        let mut rng = default_rng(3);
        let result = fixed::lara(
            &x,
            &params,
            Sampling::Draw(&mut rng),
            &mut out,
            &mut LaraScratch::<C, D, DV>::new(),
        );
        assert_eq!(result, Err(too_small), "{proposals:?} drawn");
        assert_eq!(out, sentinel, "{proposals:?}: an error wrote the output");
        // eval mode: one sample per landmark
        fixed::lara(
            &x,
            &params,
            Sampling::Eval,
            &mut out,
            &mut LaraScratch::<C, D, DV>::new(),
        )
        .unwrap();
        let mut scratch = vec![0.0; lara::scratch_len(SHAPE, C, proposals)];
        let expected = sliced(|o| lara::attention(&xs, &params, Sampling::Eval, o, &mut scratch));
        assert_eq!(out.as_flattened(), &expected[..], "{proposals:?} eval");
    }
    // More landmarks than the scratch holds (C + 1 of the 23 queries).
    let mut out = sentinel;
    let params = Params::segment_means(C + 1, weighting);
    let result = fixed::lara(
        &x,
        &params,
        Sampling::Eval,
        &mut out,
        &mut LaraScratch::<C, D, DV>::new(),
    );
    assert!(
        matches!(result, Err(Error::ScratchTooSmall { .. })),
        "{result:?}"
    );
    assert_eq!(out, sentinel, "an error wrote the output");
}

/// The size the error reports for more landmarks than the fixed scratch holds, in floats of
/// scratch as the slice API counts them: the workspace of `C + 1` landmarks, the one of `C`.
#[test]
fn fixed_layer_reports_the_scratch_more_landmarks_need() {
    let Inputs { q, k, v } = inputs();
    let x = fixed::Qkv {
        q: &q,
        k: &k,
        v: &v,
        key_mask: None,
    };
    let mut out = [[0.0f32; DV]; NQ];
    let params = Params::segment_means(C + 1, Weighting::BalanceHeuristic);
    let mut scratch = LaraScratch::<C, D, DV>::new();
    let result = fixed::lara(&x, &params, Sampling::Eval, &mut out, &mut scratch);
    let expected = Error::ScratchTooSmall {
        needed: lara::scratch_len_for(Backend::Scalar, SHAPE, C + 1, Proposals::Single),
        actual: lara::scratch_len_for(Backend::Scalar, SHAPE, C, Proposals::Single),
    };
    assert_eq!(result, Err(expected));
}

// ---------------------------------------------------------------------------------------------
// Heads: an h-head call is h single-head calls on the slices
// ---------------------------------------------------------------------------------------------

const H: usize = 3;
/// Tokens of the self-attention inputs (the causal kernels need `n_q = n_k`).
const N: usize = 29;

fn stacked(len: usize, seed: u64) -> Vec<f32> {
    let mut x = vec![0.0; len];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x
}

/// Part `head` of `H` equal parts of `x`.
fn part<T>(x: &[T], head: usize) -> &[T] {
    let len = x.len() / H;
    &x[head * len..(head + 1) * len]
}

/// Head `head` of an `H`-head call: the head's slices of the inputs and of every stacked
/// parameter (noise, given landmarks and key indices, omega, gates); the key mask and the seed
/// are shared.
fn head_call<'a>(call: &Call<'a>, head: usize) -> Call<'a> {
    assert_eq!(call.x.shape.heads, H);
    let lara_params = match call.lara.landmarks {
        Landmarks::Given {
            count,
            queries,
            keys,
        } => Params {
            landmarks: Landmarks::Given {
                count,
                queries: part(queries, head),
                keys: part(keys, head),
            },
            ..call.lara
        },
        Landmarks::SegmentMeans(_) => call.lara,
    };
    let ra_params = match call.ra.mean {
        ra::Mean::GivenKeys(indices) => ra::Params {
            mean: ra::Mean::GivenKeys(part(indices, head)),
            ..call.ra
        },
        _ => call.ra,
    };
    Call {
        x: Qkv {
            shape: Shape {
                heads: 1,
                ..call.x.shape
            },
            q: part(call.x.q, head),
            k: part(call.x.k, head),
            v: part(call.x.v, head),
            key_mask: call.x.key_mask,
        },
        lara: lara_params,
        ra: ra_params,
        omega: part(call.omega, head),
        noise: call.noise.map(|eps| part(eps, head)),
        seed: call.seed,
        gates: call.gates.map(|g| part(g, head)),
    }
}

/// The output of `kernel` on `call`, into an output and a scratch first filled with NaN.
fn run(kernel: &Kernel, call: &Call<'_>) -> Vec<f32> {
    let shape = call.x.shape;
    let mut out = vec![f32::NAN; shape.heads * shape.queries * shape.value_dim];
    let mut scratch = vec![f32::NAN; (kernel.scratch_len)(call)];
    (kernel.run)(call, &mut out, &mut scratch)
        .unwrap_or_else(|e| panic!("{} {}: {e}", kernel.name, describe(call)));
    out
}

fn describe(call: &Call<'_>) -> String {
    format!(
        "{:?} masked={} lara={:?}/{:?}/{} ra={} noise={} S={} gated={}",
        call.x.shape,
        call.x.key_mask.is_some(),
        call.lara.weighting,
        call.lara.proposals,
        matches!(call.lara.landmarks, Landmarks::Given { .. }),
        match call.ra.mean {
            ra::Mean::GivenKeys(_) => "GivenKeys".to_string(),
            mean => format!("{mean:?}"),
        },
        call.noise.is_some(),
        call.features(),
        call.gates.is_some(),
    )
}

/// Checks that `kernel` on the `H`-head `call` gives, bit for bit, what it gives on each head's
/// slices, with the scratch of one head (scratch lengths do not depend on `h`). The drawing
/// kernels draw the heads in order from one generator: their single-head calls share one too.
fn check_heads(kernel: &Kernel, call: &Call<'_>) {
    let what = || format!("{} {}", kernel.name, describe(call));
    let ours = run(kernel, call);
    let head_len = call.x.shape.queries * call.x.shape.value_dim;
    let mut rng = call.rng();
    for head in 0..H {
        let single = head_call(call, head);
        let scratch_len = (kernel.scratch_len)(&single);
        assert_eq!(scratch_len, (kernel.scratch_len)(call), "{}", what());
        let expected = match kernel.name {
            "lara-draw" | "ra-draw" => {
                let mut out = vec![f32::NAN; head_len];
                let mut scratch = vec![f32::NAN; scratch_len];
                let draw = Sampling::Draw(&mut rng);
                let result = if kernel.name == "lara-draw" {
                    lara::attention(&single.x, &single.lara, draw, &mut out, &mut scratch)
                } else {
                    ra::attention(&single.x, &single.ra, draw, &mut out, &mut scratch)
                };
                result.unwrap();
                out
            }
            name => {
                assert!(
                    !name.ends_with("-draw"),
                    "{name}: a drawing kernel unknown here"
                );
                run(kernel, &single)
            }
        };
        let got = &ours[head * head_len..(head + 1) * head_len];
        assert!(
            got.iter()
                .zip(&expected)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{} head {head}: {got:?} vs {expected:?}",
            what()
        );
    }
}

/// The stacked inputs and parameters of the head tests.
struct Stacked {
    cross: (Vec<f32>, Vec<f32>, Vec<f32>),
    causal: (Vec<f32>, Vec<f32>, Vec<f32>),
    mask: Vec<bool>,
    causal_mask: Vec<bool>,
    lara_noise: Vec<f32>,
    q_bar: Vec<f32>,
    k_bar: Vec<f32>,
    ra_noise: Vec<f32>,
    indices: Vec<u32>,
    omega: Vec<f32>,
    gates: Vec<f32>,
}

impl Stacked {
    fn new(seed: u64) -> Self {
        let cross = (
            stacked(H * NQ * D, seed),
            stacked(H * NK * D, seed + 1),
            stacked(H * NK * DV, seed + 2),
        );
        let causal = (
            stacked(H * N * D, seed + 3),
            stacked(H * N * D, seed + 4),
            stacked(H * N * DV, seed + 5),
        );
        let mut rng = default_rng(seed + 6);
        let gates = (0..H * N)
            .map(|i| match i % 9 {
                4 => 0.0,
                7 => 1.0,
                _ => lara_attn::random::uniform(&mut rng),
            })
            .collect();
        Stacked {
            cross,
            causal,
            mask: (0..NK).map(|j| j % 3 == 2 || j == 0).collect(),
            causal_mask: (0..N).map(|j| j % 4 == 1).collect(),
            // the largest noise any proposal layout takes: [h, 2C, d]
            lara_noise: stacked(H * 2 * C * D, seed + 7),
            q_bar: stacked(H * C * D, seed + 8),
            k_bar: stacked(H * C * D, seed + 9),
            ra_noise: stacked(H * NQ * D, seed + 10),
            // given keys among the keys the mask leaves (a masked one is refused)
            indices: (0..H * NQ)
                .map(|i| (0..NK as u32).filter(|j| j % 3 != 2 && *j != 0).nth(i % 20))
                .map(|j| j.unwrap_or(1))
                .collect(),
            omega: stacked(H * S * D, seed + 11),
            gates,
        }
    }

    fn qkv(&self, causal: bool, masked: bool) -> Qkv<'_> {
        let ((q, k, v), mask, shape) = if causal {
            (&self.causal, &self.causal_mask, Shape::self_attention(N, D))
        } else {
            (&self.cross, &self.mask, SHAPE)
        };
        Qkv {
            shape: Shape {
                value_dim: DV,
                ..shape
            }
            .with_heads(H),
            q,
            k,
            v,
            key_mask: masked.then_some(&mask[..]),
        }
    }

    /// The calls that exercise kernel family `family` (`exact`, `lara`, `ra`, `rfa`, `causal`).
    fn calls(&self, family: &str) -> Vec<Call<'_>> {
        let base = |causal: bool, masked: bool| Call {
            x: self.qkv(causal, masked),
            lara: Params::default(),
            ra: ra::Params::new(ra::Mean::KeyAverage),
            omega: &[],
            noise: None,
            seed: 30,
            gates: None,
        };
        let mut calls = Vec::new();
        match family {
            "exact" => {
                for masked in [false, true] {
                    calls.push(base(false, masked));
                }
            }
            "lara" => {
                let given = Landmarks::Given {
                    count: C,
                    queries: &self.q_bar,
                    keys: &self.k_bar,
                };
                for (landmarks, weighting, proposals) in [
                    (
                        Landmarks::SegmentMeans(C),
                        Weighting::Optimal { alpha_coeff: 1.0 },
                        Proposals::Single,
                    ),
                    (
                        Landmarks::SegmentMeans(C),
                        Weighting::BalanceHeuristic,
                        Proposals::Antithetic,
                    ),
                    (
                        Landmarks::SegmentMeans(C),
                        Weighting::Biased,
                        Proposals::TwoPerLandmark,
                    ),
                    (given, Weighting::Biased, Proposals::Single),
                    (
                        given,
                        Weighting::Optimal { alpha_coeff: 2.0 },
                        Proposals::TwoPerLandmark,
                    ),
                ] {
                    let params = Params::new(landmarks, weighting)
                        .with_proposals(proposals)
                        .with_noise_scale(NoiseScale::Paper);
                    let noise_len = H * proposals.noise_rows(C) * D;
                    for (noise, masked) in [
                        (None, false),
                        (Some(&self.lara_noise[..noise_len]), false),
                        (Some(&self.lara_noise[..noise_len]), true),
                    ] {
                        calls.push(Call {
                            lara: params,
                            noise,
                            ..base(false, masked)
                        });
                    }
                }
            }
            "ra" => {
                for mean in [
                    ra::Mean::KeyAverage,
                    ra::Mean::AttentionWeighted,
                    ra::Mean::GivenKeys(&self.indices),
                    ra::Mean::SampledKey,
                ] {
                    for (noise, masked) in [
                        (None, false),
                        (Some(&self.ra_noise[..]), false),
                        (Some(&self.ra_noise[..]), true),
                    ] {
                        calls.push(Call {
                            ra: ra::Params::new(mean).with_noise_scale(NoiseScale::Paper),
                            noise,
                            ..base(false, masked)
                        });
                    }
                }
            }
            "rfa" | "causal" => {
                let causal = family == "causal";
                for masked in [false, true] {
                    for gates in [None, Some(&self.gates[..])] {
                        if gates.is_some() && !causal {
                            continue;
                        }
                        calls.push(Call {
                            omega: &self.omega,
                            gates,
                            ..base(causal, masked)
                        });
                    }
                }
            }
            _ => {}
        }
        calls
    }
}

/// Every kernel of the registry: an `h`-head call equals `h` single-head calls on the slices,
/// bit for bit (masked and not, eval, given noise and drawn, given landmarks and key indices).
#[test]
fn heads_equal_single_head_calls_for_every_kernel() {
    let _backend = env_backend();
    let data = Stacked::new(20);
    for kernel in KERNELS {
        let family = kernel.name.split('-').next().unwrap();
        let calls = data.calls(family);
        assert!(!calls.is_empty(), "{}: no call covers it", kernel.name);
        let mut checked = 0;
        for call in &calls {
            // RA's sampled key needs a generator: only the drawing kernel takes it.
            let sampled_key = matches!(call.ra.mean, ra::Mean::SampledKey);
            if family == "ra" && sampled_key && !kernel.name.ends_with("-draw") {
                let mut out = vec![0.0; H * NQ * DV];
                let mut scratch = vec![0.0; (kernel.scratch_len)(call)];
                let result = (kernel.run)(call, &mut out, &mut scratch);
                assert_eq!(result, Err(Error::GeneratorRequired), "{}", kernel.name);
                continue;
            }
            check_heads(kernel, call);
            checked += 1;
        }
        println!("{}: {checked} calls", kernel.name);
        assert!(checked > 0, "{}", kernel.name);
    }
}

/// A bad argument in any head is found before head 0 is written: a bad value in the last
/// head's values, noise, given landmarks or key indices, omega or gates returns an error with
/// `out` and the scratch untouched, for every kernel that takes it.
#[test]
fn heads_are_all_checked_before_writing() {
    let _backend = env_backend();
    let data = Stacked::new(40);
    let sentinel = -7.0;
    let last = |x: &[f32]| {
        let mut x = x.to_vec();
        *x.last_mut().unwrap() = f32::NAN;
        x
    };
    let check = |kernel: &Kernel, call: &Call<'_>, expected: Error| {
        let shape = call.x.shape;
        let mut out = vec![sentinel; shape.heads * shape.queries * shape.value_dim];
        let mut scratch = vec![sentinel; (kernel.scratch_len)(call)];
        let result = (kernel.run)(call, &mut out, &mut scratch);
        assert_eq!(result, Err(expected), "{} {}", kernel.name, describe(call));
        assert!(
            out.iter().chain(&scratch).all(|&x| x == sentinel),
            "{} {}: something was written",
            kernel.name,
            describe(call)
        );
    };
    for kernel in KERNELS {
        let family = kernel.name.split('-').next().unwrap();
        for call in data.calls(family) {
            if matches!(call.ra.mean, ra::Mean::SampledKey) && !kernel.name.ends_with("-draw") {
                continue;
            }
            // A NaN in the last value of the last head.
            let bad_v = last(call.x.v);
            let bad = Call {
                x: Qkv {
                    v: &bad_v,
                    ..call.x
                },
                ..call
            };
            check(kernel, &bad, Error::NonFinite(Arg::Values));
            // No head at all.
            let none = Call {
                x: Qkv {
                    shape: call.x.shape.with_heads(0),
                    q: &[],
                    k: &[],
                    v: &[],
                    ..call.x
                },
                ..call
            };
            check(kernel, &none, Error::ZeroDimension(Dim::Heads));
            // The last head's noise.
            if let Some(eps) = call.noise.filter(|_| !kernel.name.ends_with("-draw")) {
                let bad_eps = last(eps);
                let bad = Call {
                    noise: Some(&bad_eps),
                    ..call
                };
                check(kernel, &bad, Error::NonFinite(Arg::Noise));
            }
            // The last head's landmarks.
            if let (
                "lara",
                Landmarks::Given {
                    count,
                    queries,
                    keys,
                },
            ) = (family, call.lara.landmarks)
            {
                let (bad_q, bad_k) = (last(queries), last(keys));
                for (queries, keys, arg) in [
                    (&bad_q[..], keys, Arg::QueryLandmarks),
                    (queries, &bad_k[..], Arg::KeyLandmarks),
                ] {
                    let landmarks = Landmarks::Given {
                        count,
                        queries,
                        keys,
                    };
                    let bad = Call {
                        lara: Params {
                            landmarks,
                            ..call.lara
                        },
                        ..call
                    };
                    check(kernel, &bad, Error::NonFinite(arg));
                }
            }
            // The last head's key indices: head 2, query 3.
            if let ("ra", ra::Mean::GivenKeys(indices)) = (family, call.ra.mean) {
                let mut bad_indices = indices.to_vec();
                bad_indices[(H - 1) * NQ + 3] = NK as u32;
                let bad = Call {
                    ra: ra::Params {
                        mean: ra::Mean::GivenKeys(&bad_indices),
                        ..call.ra
                    },
                    ..call
                };
                let expected = Error::KeyIndexOutOfRange {
                    row: (H - 1) * NQ + 3,
                    index: NK as u32,
                };
                check(kernel, &bad, expected);
            }
            // The last head's omega.
            if matches!(family, "rfa" | "causal") {
                let mut bad_omega = call.omega.to_vec();
                *bad_omega.last_mut().unwrap() = f32::INFINITY;
                let bad = Call {
                    omega: &bad_omega,
                    ..call
                };
                check(kernel, &bad, Error::NonFinite(Arg::Omega));
            }
            // The last head's gates.
            if let Some(gates) = call.gates {
                let mut bad_gates = gates.to_vec();
                *bad_gates.last_mut().unwrap() = 1.5;
                let bad = Call {
                    gates: Some(&bad_gates),
                    ..call
                };
                check(kernel, &bad, Error::OutOfRange(Arg::Gates));
            }
        }
    }
}
