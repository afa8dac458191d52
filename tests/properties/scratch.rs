//! Scratch: the kernels read nothing from their scratch before writing it, and use only the
//! prefix they need. A scratch of exactly the size the active backend needs, or of the
//! registry's `scratch_len` (enough for every backend compiled here), or longer, filled with
//! NaN, infinities or huge values, gives the same bits as a zeroed one.

use crate::backend_env::backend_from_env;
use crate::kernels::{Call, KERNELS, Kernel};
use crate::variants::{VariantInputs, run_all};
use crate::{Inputs, base_call, bits, needed_scratch, out_len, qkv, randn, runs_on};
use lara_attn::backend::{Backend, active_backend};
use lara_attn::rfa::FeatureMap;
use lara_attn::{Shape, causal, exact, lara, ra, rfa};

#[test]
fn dirty_and_oversized_scratch_give_identical_output() {
    backend_from_env();
    for (i, &(nq, nk, d, dv)) in [
        (1, 1, 1, 1),
        (7, 7, 5, 3),
        (33, 33, 16, 16),
        (40, 70, 9, 13),
        (65, 3, 17, 4),
    ]
    .iter()
    .enumerate()
    {
        let inputs = Inputs::new(nq, nk, d, dv, 77 + i as u64, 1.0);
        let shape = inputs.shape;
        let n_min = nq.min(nk);
        let vi = VariantInputs::new(shape, &[1, 3, n_min, n_min + 2], 9, 5 + i as u64);
        run_all(&vi.variants(inputs.qkv()), |kernel, variant, clean| {
            let call = &variant.call;
            let mut lens = vec![needed_scratch(kernel, call), (kernel.scratch_len)(call)];
            lens.dedup();
            for len in lens {
                for (fill, extra) in [
                    (f32::NAN, 0),
                    (f32::NAN, 37),
                    (f32::INFINITY, 1),
                    (-3.0e38, 0),
                ] {
                    let mut out = vec![fill; out_len(shape)];
                    let mut scratch = vec![fill; len + extra];
                    (kernel.run)(call, &mut out, &mut scratch).unwrap();
                    assert_eq!(
                        bits(&out),
                        bits(clean),
                        "{} {} {shape:?}: scratch of {len} + {extra} filled with {fill}",
                        kernel.name,
                        variant.label
                    );
                }
            }
        });
    }
}

/// The scratch of a registry kernel on `backend`, as its estimator documents it
/// (`scratch_len_for`), or `None` for a kernel this test does not know (the generic checks of
/// [`needed_scratch`] still apply to it).
/// `shape` may differ from the call's in the number of heads.
fn documented_scratch(
    kernel: &Kernel,
    backend: Backend,
    shape: Shape,
    call: &Call<'_>,
) -> Option<usize> {
    let features = call.features();
    let map = if kernel.name.ends_with("trig") {
        FeatureMap::Trigonometric
    } else if kernel.name.ends_with("log-space") {
        FeatureMap::PositiveLogSpace
    } else {
        FeatureMap::Positive
    };
    Some(match kernel.name {
        "exact" => exact::scratch_len_for(backend, shape),
        "lara" | "lara-draw" => {
            lara::scratch_len_for(backend, shape, call.landmarks(), call.lara.proposals)
        }
        "ra" | "ra-draw" => ra::scratch_len_for(backend, shape),
        name if name.starts_with("rfa") => rfa::scratch_len_for(backend, shape, map, features),
        name if name.starts_with("causal") => causal::scratch_len(shape, map, features),
        _ => return None,
    })
}

/// A kernel given too little scratch reports what the active backend needs: its estimator's
/// `scratch_len_for` that backend (independent of the number of heads).
#[test]
fn scratch_too_small_reports_scratch_len_for_the_active_backend() {
    backend_from_env();
    let backend = active_backend();
    for (i, shape) in [
        Shape::cross(6, 7, 4, 3),
        Shape::cross(7, 7, 4, 3),
        Shape::cross(7, 7, 4, 3).with_heads(2),
        Shape::cross(40, 70, 9, 13),
        Shape::cross(33, 33, 16, 16).with_heads(3),
    ]
    .into_iter()
    .enumerate()
    {
        let seed = 40 + 10 * i as u64;
        let h = shape.heads;
        let q = randn(seed, h * shape.queries * shape.dim);
        let k = randn(seed + 1, h * shape.keys * shape.dim);
        let v = randn(seed + 2, h * shape.keys * shape.value_dim);
        let (given, features) = (20, 9);
        let q_bar = randn(seed + 3, h * given * shape.dim);
        let k_bar = randn(seed + 4, h * given * shape.dim);
        let omega = randn(seed + 5, h * features * shape.dim);
        let one_head = Shape { heads: 1, ..shape };
        let base = Call {
            omega: &omega,
            ..base_call(qkv(shape, &q, &k, &v))
        };
        let weighting = lara::Weighting::Optimal { alpha_coeff: 1.0 };
        let landmarks = lara::Landmarks::Given {
            count: given,
            queries: &q_bar,
            keys: &k_bar,
        };
        // Landmarks fewer than the tokens (segment means), and more (given).
        for lara_params in [
            lara::Params::segment_means(3, weighting),
            lara::Params::new(landmarks, weighting),
        ] {
            let call = Call {
                lara: lara_params,
                ..base
            };
            for kernel in KERNELS.iter().filter(|k| runs_on(k, shape)) {
                let needed = needed_scratch(kernel, &call);
                let Some(documented) = documented_scratch(kernel, backend, shape, &call) else {
                    continue;
                };
                assert_eq!(
                    documented,
                    documented_scratch(kernel, backend, one_head, &call).unwrap(),
                    "{} {shape:?}: the scratch depends on the heads",
                    kernel.name
                );
                assert_eq!(
                    needed, documented,
                    "{} on {backend} {shape:?}: needed scratch vs scratch_len_for",
                    kernel.name
                );
            }
        }
    }
}
