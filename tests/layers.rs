//! The fixed-size and multi-head layers give exactly what the single-head slice API gives.
//! (The fixed-size layer always runs the scalar kernels, so it is compared with the slice API
//! on the scalar backend.)

use lara_attn::fixed::{
    self, ExactScratch, LaraScratch, PositiveScratch, RaScratch, TrigonometricScratch,
};
use lara_attn::lara::{Params, Weighting};
use lara_attn::random::{NoiseScale, default_rng, fill_standard_normal};
use lara_attn::{Arg, Dim, Error, Shape, exact, lara, multihead, ra, rfa};

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

#[test]
fn fixed_layer_matches_the_slice_api() {
    let _scalar = scalar_backend();
    let Inputs { q, k, v } = inputs();
    let (qf, kf, vf) = (q.as_flattened(), k.as_flattened(), v.as_flattened());
    let mut out = [[0.0f32; DV]; NQ];

    fixed::exact(&q, &k, &v, &mut out, &mut ExactScratch::new()).unwrap();
    let expected = sliced(|o| {
        exact::attention(
            SHAPE,
            qf,
            kf,
            vf,
            o,
            &mut vec![0.0; exact::scratch_len(SHAPE)],
        )
    });
    assert_eq!(out.as_flattened(), &expected[..], "exact");

    let noise: [[f32; D]; C] = random(4);
    for weighting in [
        Weighting::Optimal { alpha_coeff: 1.5 },
        Weighting::BalanceHeuristic,
        Weighting::Biased,
    ] {
        let mut scratch = LaraScratch::<C, D, DV>::new();
        let params = Params::segment_means(C, weighting);
        let mut lara_scratch = vec![0.0; lara::scratch_len(SHAPE, C)];
        for eps in [None, Some(&noise[..])] {
            fixed::lara(weighting, &q, &k, &v, eps, &mut out, &mut scratch).unwrap();
            let flat_eps = eps.map(|e| e.as_flattened());
            let expected = sliced(|o| {
                lara::attention(SHAPE, &params, qf, kf, vf, flat_eps, o, &mut lara_scratch)
            });
            assert_eq!(
                out.as_flattened(),
                &expected[..],
                "lara {weighting:?} {}",
                eps.is_some()
            );
        }
        fixed::lara_sampled(
            weighting,
            &q,
            &k,
            &v,
            &mut default_rng(5),
            &mut out,
            &mut scratch,
        )
        .unwrap();
        let expected = sliced(|o| {
            lara::attention_sampled(
                SHAPE,
                &params,
                qf,
                kf,
                vf,
                &mut default_rng(5),
                o,
                &mut lara_scratch,
            )
        });
        assert_eq!(
            out.as_flattened(),
            &expected[..],
            "lara sampled {weighting:?}"
        );
    }

    let ra_noise: [[f32; D]; NQ] = random(6);
    let indices: Vec<u32> = (0..NQ as u32).map(|i| (i * 7) % NK as u32).collect();
    let mut scratch = RaScratch::<NK, D>::new();
    let mut ra_scratch = vec![0.0; ra::scratch_len(SHAPE)];
    for mean in [
        ra::Mean::KeyAverage,
        ra::Mean::AttentionWeighted,
        ra::Mean::Keys(&indices),
    ] {
        fixed::ra(
            mean,
            NoiseScale::Official,
            &q,
            &k,
            &v,
            Some(&ra_noise),
            &mut out,
            &mut scratch,
        )
        .unwrap();
        let eps = Some(ra_noise.as_flattened());
        let expected = sliced(|o| {
            ra::attention(
                SHAPE,
                mean,
                NoiseScale::Official,
                qf,
                kf,
                vf,
                eps,
                o,
                &mut ra_scratch,
            )
        });
        assert_eq!(out.as_flattened(), &expected[..], "ra {mean:?}");
    }
    for mean in [
        ra::SampledMean::KeyAverage,
        ra::SampledMean::AttentionWeighted,
        ra::SampledMean::Key,
    ] {
        fixed::ra_sampled(
            mean,
            NoiseScale::Official,
            &q,
            &k,
            &v,
            &mut default_rng(8),
            &mut out,
            &mut scratch,
        )
        .unwrap();
        let expected = sliced(|o| {
            ra::attention_sampled(
                SHAPE,
                mean,
                NoiseScale::Official,
                qf,
                kf,
                vf,
                &mut default_rng(8),
                o,
                &mut ra_scratch,
            )
        });
        assert_eq!(out.as_flattened(), &expected[..], "ra sampled {mean:?}");
    }

    let omega: [[f32; D]; S] = random(9);
    fixed::rfa_positive(
        &omega,
        &q,
        &k,
        &v,
        &mut out,
        &mut PositiveScratch::<S, DV>::new(),
    )
    .unwrap();
    let mut scratch = vec![0.0; rfa::positive_scratch_len(SHAPE, S)];
    let expected =
        sliced(|o| rfa::positive(SHAPE, omega.as_flattened(), S, qf, kf, vf, o, &mut scratch));
    assert_eq!(out.as_flattened(), &expected[..], "rfa positive");

    fixed::rfa_trigonometric(
        &omega,
        &q,
        &k,
        &v,
        &mut out,
        &mut TrigonometricScratch::<S, DV>::new(),
    )
    .unwrap();
    let mut scratch = vec![0.0; rfa::trigonometric_scratch_len(SHAPE, S)];
    let expected =
        sliced(|o| rfa::trigonometric(SHAPE, omega.as_flattened(), S, qf, kf, vf, o, &mut scratch));
    assert_eq!(out.as_flattened(), &expected[..], "rfa trigonometric");
}

/// More landmarks than tokens: the fixed layer uses `C' = min(C, NQ, NK)` rows of its scratch.
#[test]
fn fixed_layer_with_more_landmarks_than_tokens() {
    let _scalar = scalar_backend();
    let q: [[f32; 4]; 5] = random(10);
    let v: [[f32; 3]; 5] = random(11);
    let mut out = [[0.0f32; 3]; 5];
    let weighting = Weighting::Optimal { alpha_coeff: 1.0 };
    fixed::lara(
        weighting,
        &q,
        &q,
        &v,
        None,
        &mut out,
        &mut LaraScratch::<12, 4, 3>::new(),
    )
    .unwrap();
    let shape = Shape::cross(5, 5, 4, 3);
    let mut expected = vec![0.0; 15];
    let mut scratch = vec![0.0; lara::scratch_len(shape, 5)];
    let params = Params::segment_means(5, weighting);
    lara::attention(
        shape,
        &params,
        q.as_flattened(),
        q.as_flattened(),
        v.as_flattened(),
        None,
        &mut expected,
        &mut scratch,
    )
    .unwrap();
    assert_eq!(out.as_flattened(), &expected[..]);
    // The noise must have C' = 5 rows.
    let eps = [[0.0f32; 4]; 12];
    let err = fixed::lara(
        weighting,
        &q,
        &q,
        &v,
        Some(&eps),
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

const H: usize = 3;

fn stacked(len: usize, seed: u64) -> Vec<f32> {
    let mut x = vec![0.0; len];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x
}

/// Runs a single-head kernel head by head over stacked inputs.
fn per_head(
    per_head_extra: &[usize],
    extras: &[&[f32]],
    mut kernel: impl FnMut(&[f32], &[f32], &[f32], &[&[f32]], &mut [f32]) -> Result<(), Error>,
    (q, k, v): (&[f32], &[f32], &[f32]),
) -> Vec<f32> {
    let mut out = vec![0.0; H * NQ * DV];
    for h in 0..H {
        let head = |x: &[f32], len: usize| x[h * len..(h + 1) * len].to_vec();
        let head_extras: Vec<Vec<f32>> = extras
            .iter()
            .zip(per_head_extra)
            .map(|(x, &len)| head(x, len))
            .collect();
        let refs: Vec<&[f32]> = head_extras.iter().map(Vec::as_slice).collect();
        kernel(
            &head(q, NQ * D),
            &head(k, NK * D),
            &head(v, NK * DV),
            &refs,
            &mut out[h * NQ * DV..(h + 1) * NQ * DV],
        )
        .unwrap();
    }
    out
}

#[test]
fn multihead_matches_a_loop_over_heads() {
    let _selection = SELECTION.lock().unwrap_or_else(|e| e.into_inner());
    lara_attn::backend::set_backend(None).unwrap();
    let (q, k, v) = (
        stacked(H * NQ * D, 20),
        stacked(H * NK * D, 21),
        stacked(H * NK * DV, 22),
    );
    let qkv = (&q[..], &k[..], &v[..]);
    let mut out = vec![0.0; H * NQ * DV];

    let mut scratch = vec![0.0; exact::scratch_len(SHAPE)];
    multihead::exact(H, SHAPE, &q, &k, &v, &mut out, &mut scratch).unwrap();
    let expected = per_head(
        &[],
        &[],
        |q, k, v, _, o| exact::attention(SHAPE, q, k, v, o, &mut scratch),
        qkv,
    );
    assert_eq!(out, expected, "exact");

    let eps = stacked(H * C * D, 23);
    let params = Params::segment_means(C, Weighting::Optimal { alpha_coeff: 1.0 });
    let mut scratch = vec![0.0; lara::scratch_len(SHAPE, C)];
    multihead::lara(
        H,
        SHAPE,
        &params,
        &q,
        &k,
        &v,
        Some(&eps),
        &mut out,
        &mut scratch,
    )
    .unwrap();
    let expected = per_head(
        &[C * D],
        &[&eps],
        |q, k, v, e, o| lara::attention(SHAPE, &params, q, k, v, Some(e[0]), o, &mut scratch),
        qkv,
    );
    assert_eq!(out, expected, "lara");

    // Given landmarks, stacked [h, C, d].
    let (q_bar, k_bar) = (stacked(H * C * D, 24), stacked(H * C * D, 25));
    let given = Params {
        landmarks: lara::Landmarks::Given {
            count: C,
            queries: &q_bar,
            keys: &k_bar,
        },
        weighting: Weighting::Biased,
        ..Default::default()
    };
    multihead::lara(H, SHAPE, &given, &q, &k, &v, None, &mut out, &mut scratch).unwrap();
    let expected = per_head(
        &[C * D, C * D],
        &[&q_bar, &k_bar],
        |q, k, v, e, o| {
            let head = Params {
                landmarks: lara::Landmarks::Given {
                    count: C,
                    queries: e[0],
                    keys: e[1],
                },
                weighting: Weighting::Biased,
                ..Default::default()
            };
            lara::attention(SHAPE, &head, q, k, v, None, o, &mut scratch)
        },
        qkv,
    );
    assert_eq!(out, expected, "lara with given landmarks");

    let ra_eps = stacked(H * NQ * D, 26);
    let indices: Vec<u32> = (0..(H * NQ) as u32).map(|i| (i * 5) % NK as u32).collect();
    let mut scratch = vec![0.0; ra::scratch_len(SHAPE)];
    multihead::ra(
        H,
        SHAPE,
        ra::Mean::Keys(&indices),
        NoiseScale::Official,
        &q,
        &k,
        &v,
        Some(&ra_eps),
        &mut out,
        &mut scratch,
    )
    .unwrap();
    let mut head = 0;
    let expected = per_head(
        &[NQ * D],
        &[&ra_eps],
        |q, k, v, e, o| {
            let keys = &indices[head * NQ..(head + 1) * NQ];
            head += 1;
            ra::attention(
                SHAPE,
                ra::Mean::Keys(keys),
                NoiseScale::Official,
                q,
                k,
                v,
                Some(e[0]),
                o,
                &mut scratch,
            )
        },
        qkv,
    );
    assert_eq!(out, expected, "ra");

    let omega = stacked(H * S * D, 27);
    let mut scratch = vec![0.0; rfa::trigonometric_scratch_len(SHAPE, S)];
    multihead::rfa_positive(H, SHAPE, &omega, S, &q, &k, &v, &mut out, &mut scratch).unwrap();
    let expected = per_head(
        &[S * D],
        &[&omega],
        |q, k, v, w, o| rfa::positive(SHAPE, w[0], S, q, k, v, o, &mut scratch),
        qkv,
    );
    assert_eq!(out, expected, "rfa positive");
    multihead::rfa_trigonometric(H, SHAPE, &omega, S, &q, &k, &v, &mut out, &mut scratch).unwrap();
    let expected = per_head(
        &[S * D],
        &[&omega],
        |q, k, v, w, o| rfa::trigonometric(SHAPE, w[0], S, q, k, v, o, &mut scratch),
        qkv,
    );
    assert_eq!(out, expected, "rfa trigonometric");

    let mut scratch = vec![0.0; ra::scratch_len(SHAPE)];
    // Sampled: heads drawn in order from one generator.
    let mut rng = default_rng(30);
    multihead::ra_sampled(
        H,
        SHAPE,
        ra::SampledMean::Key,
        NoiseScale::Official,
        &q,
        &k,
        &v,
        &mut rng,
        &mut out,
        &mut scratch,
    )
    .unwrap();
    let mut rng = default_rng(30);
    let mut ra_scratch = vec![0.0; ra::scratch_len(SHAPE)];
    let expected = per_head(
        &[],
        &[],
        |q, k, v, _, o| {
            ra::attention_sampled(
                SHAPE,
                ra::SampledMean::Key,
                NoiseScale::Official,
                q,
                k,
                v,
                &mut rng,
                o,
                &mut ra_scratch,
            )
        },
        qkv,
    );
    assert_eq!(out, expected, "ra sampled");
}

/// A bad argument in any head is found before head 0 is written.
#[test]
fn multihead_checks_every_head_before_writing() {
    let (q, k, v) = (
        stacked(H * NQ * D, 40),
        stacked(H * NK * D, 41),
        stacked(H * NK * DV, 42),
    );
    let sentinel = -7.0;
    let mut out = vec![sentinel; H * NQ * DV];
    let mut scratch = vec![sentinel; ra::scratch_len(SHAPE)];

    let mut indices = vec![0u32; H * NQ];
    indices[2 * NQ + 3] = NK as u32; // head 2, query 3
    let err = multihead::ra(
        H,
        SHAPE,
        ra::Mean::Keys(&indices),
        NoiseScale::Official,
        &q,
        &k,
        &v,
        None,
        &mut out,
        &mut scratch,
    );
    assert_eq!(
        err,
        Err(Error::KeyIndexOutOfRange {
            row: 2 * NQ + 3,
            index: NK as u32
        })
    );

    let mut bad_v = v.clone();
    bad_v[H * NK * DV - 1] = f32::NAN; // last head
    let err = multihead::exact(H, SHAPE, &q, &k, &bad_v, &mut out, &mut scratch);
    assert_eq!(err, Err(Error::NonFinite(Arg::Values)));

    let mut omega = stacked(H * S * D, 43);
    omega[H * S * D - 1] = f32::INFINITY;
    let err = multihead::rfa_positive(H, SHAPE, &omega, S, &q, &k, &v, &mut out, &mut scratch);
    assert_eq!(err, Err(Error::NonFinite(Arg::Omega)));

    let err = multihead::exact(0, SHAPE, &[], &[], &[], &mut [], &mut scratch);
    assert_eq!(err, Err(Error::ZeroDimension(Dim::Heads)));

    assert!(
        out.iter().chain(&scratch).all(|&x| x == sentinel),
        "something was written"
    );
}
