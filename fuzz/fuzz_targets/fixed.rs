//! The fixed-size API (`fixed::{exact, lara, ra, rfa_positive, rfa_trigonometric}`) at a few
//! compile-time shapes (with tails): the same result as the slice API on the scalar backend, bit
//! for bit (the fixed layer always runs the scalar kernels); on error, the output and the
//! scratch are untouched; finite outputs for inputs within the documented limit.
#![no_main]
use lara_attn::backend::{Backend, set_backend};
use lara_attn::fixed::{
    self, ExactScratch, LaraScratch, PositiveScratch, RaScratch, TrigonometricScratch,
};
use lara_attn::lara::{self, Landmarks, Proposals, Weighting};
use lara_attn::random::{NoiseScale, default_rng};
use lara_attn::rfa::{self, FeatureMap};
use lara_attn::{Error, Qkv, Sampling, Shape, exact, ra};
use lara_attn_fuzz::{
    Bytes, FINITE_LIMIT, SENTINEL, UNIT, assert_finite, assert_untouched, within,
};
use libfuzzer_sys::fuzz_target;

fn rows<const N: usize, const M: usize>(b: &mut Bytes<'_>, scale: f32) -> Vec<[f32; M]> {
    (0..N)
        .map(|_| core::array::from_fn(|_| f32::from(b.byte() as i8) * scale))
        .collect()
}

/// Compares a fixed call with the slice call: the same result and (on `Ok`) the same bits; on
/// error, nothing written.
fn compare(
    what: &str,
    fixed: (Result<(), Error>, &[f32], bool),
    slice: (Result<(), Error>, &[f32]),
    finite: bool,
) {
    let (fixed_result, fixed_out, scratch_untouched) = fixed;
    let (slice_result, slice_out) = slice;
    match fixed_result {
        Err(e) => {
            assert_untouched("fixed out", fixed_out, SENTINEL, &(what, e));
            assert!(
                scratch_untouched,
                "{what}: the scratch was written on error {e:?}"
            );
            // The fixed layer may refuse what its scratch type cannot hold; otherwise the slice
            // API refuses the same arguments.
            if !matches!(e, Error::ScratchTooSmall { .. }) {
                assert_eq!(
                    slice_result,
                    Err(e),
                    "{what}: fixed and slice results differ"
                );
            }
        }
        Ok(()) => {
            assert_eq!(
                slice_result,
                Ok(()),
                "{what}: fixed Ok, slice {slice_result:?}"
            );
            let same = fixed_out
                .iter()
                .zip(slice_out)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "{what}: fixed and slice outputs differ\n{fixed_out:?}\n{slice_out:?}"
            );
            if finite {
                assert_finite(what, fixed_out, &what);
            }
        }
    }
}

fn run<
    const NQ: usize,
    const NK: usize,
    const D: usize,
    const DV: usize,
    const C: usize,
    const S: usize,
>(
    b: &mut Bytes<'_>,
) {
    let magnitude = b.magnitude();
    let q = rows::<NQ, D>(b, magnitude);
    let k = rows::<NK, D>(b, magnitude);
    let mut v = rows::<NK, DV>(b, magnitude);
    if b.one_in(16) {
        let at = b.below(NK);
        v[at][0] = [f32::NAN, f32::INFINITY][b.below(2)];
    }
    let (q, k, v): ([[f32; D]; NQ], [[f32; D]; NK], [[f32; DV]; NK]) = (
        q.try_into().unwrap(),
        k.try_into().unwrap(),
        v.try_into().unwrap(),
    );
    let mask: Option<[bool; NK]> = b.one_in(3).then(|| {
        let all = b.one_in(8);
        core::array::from_fn(|_| all || b.one_in(3))
    });
    let finite = [q.as_flattened(), k.as_flattened(), v.as_flattened()]
        .iter()
        .all(|x| within(x, FINITE_LIMIT));
    let x = fixed::Qkv {
        q: &q,
        k: &k,
        v: &v,
        key_mask: mask.as_ref(),
    };
    let shape = Shape::cross(NQ, NK, D, DV);
    let flat = Qkv {
        shape,
        q: q.as_flattened(),
        k: k.as_flattened(),
        v: v.as_flattened(),
        key_mask: mask.as_ref().map(|m| m.as_slice()),
    };
    let slice_len = NQ * DV;
    let mut fixed_out = [[SENTINEL; DV]; NQ];
    let mut slice_out = vec![SENTINEL; slice_len];
    set_backend(Some(Backend::Scalar)).unwrap();
    match b.below(5) {
        0 => {
            let mut scratch = ExactScratch::new();
            let fresh = format!("{scratch:?}");
            let r = fixed::exact(&x, &mut fixed_out, &mut scratch);
            let mut slice_scratch = vec![0.0; exact::scratch_len(shape)];
            let s = exact::attention(&flat, &mut slice_out, &mut slice_scratch);
            compare(
                "exact",
                (r, fixed_out.as_flattened(), format!("{scratch:?}") == fresh),
                (s, &slice_out),
                finite,
            );
        }
        1 => {
            let landmarks = b.range(1, C + 1);
            let weighting = match b.below(3) {
                0 => Weighting::Optimal {
                    alpha_coeff: [1.0, 0.5, -1.0, f32::NAN][b.below(4)],
                },
                1 => Weighting::BalanceHeuristic,
                _ => Weighting::Biased,
            };
            let proposals = [
                Proposals::Single,
                Proposals::Antithetic,
                Proposals::TwoPerLandmark,
            ][b.below(3)];
            let given_q = rows::<C, D>(b, UNIT).concat();
            let given_k = rows::<C, D>(b, UNIT).concat();
            let given = b.one_in(4);
            let lm = if given {
                Landmarks::Given {
                    count: landmarks.min(C),
                    queries: &given_q[..landmarks.min(C) * D],
                    keys: &given_k[..landmarks.min(C) * D],
                }
            } else {
                Landmarks::SegmentMeans(landmarks)
            };
            let noise_scale = if b.one_in(2) {
                NoiseScale::Official
            } else {
                NoiseScale::Paper
            };
            let params = lara::Params::new(lm, weighting)
                .with_proposals(proposals)
                .with_noise_scale(noise_scale);
            let count = if given {
                landmarks.min(C)
            } else {
                lara::effective_landmarks(shape, landmarks)
            };
            let noise_len = b.len_or_wrong(proposals.noise_rows(count) * D, 16);
            let eps: Vec<f32> = b.floats(noise_len, UNIT);
            let mode = b.below(3);
            let seed = b.u64();
            let mut scratch = LaraScratch::<C, D, DV>::new();
            let fresh = format!("{scratch:?}");
            let (mut rng_a, mut rng_b) = (default_rng(seed), default_rng(seed));
            let (sa, sb) = match mode {
                0 => (Sampling::Eval, Sampling::Eval),
                1 => (Sampling::Noise(&eps), Sampling::Noise(&eps)),
                _ => (Sampling::Draw(&mut rng_a), Sampling::Draw(&mut rng_b)),
            };
            let r = fixed::lara(&x, &params, sa, &mut fixed_out, &mut scratch);
            let mut slice_scratch = vec![0.0; lara::scratch_len(shape, landmarks, proposals)];
            let s = lara::attention(&flat, &params, sb, &mut slice_out, &mut slice_scratch);
            compare(
                "lara",
                (r, fixed_out.as_flattened(), format!("{scratch:?}") == fresh),
                (s, &slice_out),
                finite,
            );
        }
        2 => {
            let indices: Vec<u32> = (0..NQ)
                .map(|_| {
                    if b.one_in(32) {
                        NK as u32
                    } else {
                        b.below(NK) as u32
                    }
                })
                .collect();
            let mean = match b.below(4) {
                0 => ra::Mean::KeyAverage,
                1 => ra::Mean::AttentionWeighted,
                2 => ra::Mean::SampledKey,
                _ => ra::Mean::GivenKeys(&indices),
            };
            let params = ra::Params::new(mean);
            let eps: Vec<f32> = {
                let len = b.len_or_wrong(NQ * D, 16);
                b.floats(len, UNIT)
            };
            let mode = b.below(3);
            let seed = b.u64();
            let mut scratch = RaScratch::<NK, D>::new();
            let fresh = format!("{scratch:?}");
            let (mut rng_a, mut rng_b) = (default_rng(seed), default_rng(seed));
            let (sa, sb) = match mode {
                0 => (Sampling::Eval, Sampling::Eval),
                1 => (Sampling::Noise(&eps), Sampling::Noise(&eps)),
                _ => (Sampling::Draw(&mut rng_a), Sampling::Draw(&mut rng_b)),
            };
            let r = fixed::ra(&x, &params, sa, &mut fixed_out, &mut scratch);
            let mut slice_scratch = vec![0.0; ra::scratch_len(shape)];
            let s = ra::attention(&flat, &params, sb, &mut slice_out, &mut slice_scratch);
            compare(
                "ra",
                (r, fixed_out.as_flattened(), format!("{scratch:?}") == fresh),
                (s, &slice_out),
                finite,
            );
        }
        which => {
            let mut omega: [[f32; D]; S] = rows::<S, D>(b, UNIT).try_into().unwrap();
            if b.one_in(16) {
                omega[0][0] = f32::NAN;
            }
            let finite = finite && within(omega.as_flattened(), 4.0);
            let (r, map, untouched) = if which == 3 {
                let mut scratch = PositiveScratch::<S, DV>::new();
                let fresh = format!("{scratch:?}");
                let r = fixed::rfa_positive(&x, &omega, &mut fixed_out, &mut scratch);
                (r, FeatureMap::Positive, format!("{scratch:?}") == fresh)
            } else {
                let mut scratch = TrigonometricScratch::<S, DV>::new();
                let fresh = format!("{scratch:?}");
                let r = fixed::rfa_trigonometric(&x, &omega, &mut fixed_out, &mut scratch);
                (
                    r,
                    FeatureMap::Trigonometric,
                    format!("{scratch:?}") == fresh,
                )
            };
            let params = rfa::Params {
                map,
                omega: omega.as_flattened(),
            };
            let mut slice_scratch = vec![0.0; rfa::scratch_len(shape, map, S)];
            let s = rfa::attention(&flat, &params, &mut slice_out, &mut slice_scratch);
            compare(
                "rfa",
                (r, fixed_out.as_flattened(), untouched),
                (s, &slice_out),
                finite,
            );
        }
    }
    set_backend(None).unwrap();
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    match b.below(5) {
        0 => run::<1, 1, 1, 1, 1, 1>(&mut b),
        1 => run::<5, 7, 3, 2, 3, 4>(&mut b),
        2 => run::<9, 4, 8, 5, 4, 3>(&mut b),
        3 => run::<7, 9, 1, 1, 2, 2>(&mut b),
        _ => run::<33, 35, 4, 3, 5, 8>(&mut b),
    }
});
