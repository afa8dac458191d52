//! Whole layers: `Layer::new` and `Layer::forward` for every module kind (`MultiheadAttention`,
//! `LinearRA` with every generator, pool module and mixing, `RandomizedAttention` with every
//! mean, `KernelizedAttention` with both maps), small dimensions, sequences and grids, masks,
//! eval / noise / drawn sampling, weights now and then missing, misshapen or non-finite.
//!
//! Checked: `Layer::new` refuses what it documents; `forward` writes nothing on error (except
//! the documented case: a projection that overflows makes a per-head estimator refuse its
//! non-finite input after earlier heads wrote); outputs are finite for inputs within the
//! limit; every backend agrees with the scalar kernels within the layer bound (1e-4 relative,
//! docs/parity.md's tolerance), except `mis-opt` (its clamp, see the `lara` docs) and a
//! sampled key drawn from projected logits (the draw may pick another key).
#![no_main]
use lara_attn::backend::{Backend, set_backend};
use lara_attn::lara::{Proposals, Weighting};
use lara_attn::layer::{
    Attention, Config, LaraConfig, Layer, Layout, Mixing, PoolModule, ProposalGen, RandomizedMean,
    Tokens, Weights,
};
use lara_attn::random::{NoiseScale, default_rng};
use lara_attn::rfa::FeatureMap;
use lara_attn::{Arg, Error, Sampling};
use lara_attn_fuzz::{
    Bytes, SENTINEL, UNIT, assert_finite, assert_untouched, backends, relative_distance, within,
};
use libfuzzer_sys::fuzz_target;

fn decode_config(b: &mut Bytes<'_>) -> Config {
    let heads = b.range(1, 2);
    let d = b.range(1, 4);
    let dim = if b.one_in(32) {
        heads * d + 1
    } else {
        heads * d
    };
    let attention = match b.below(4) {
        0 => Attention::Softmax,
        1 => Attention::Lara(LaraConfig {
            landmarks: if b.one_in(16) { 0 } else { b.range(1, 9) },
            generator: [
                ProposalGen::Pool,
                ProposalGen::NoParamPool,
                ProposalGen::Adaptive1d,
            ][b.below(3)],
            pool_module: [PoolModule::Light, PoolModule::Dense][b.below(2)],
            mixing: [Mixing::None, Mixing::Mixed, Mixing::VMixed][b.below(3)],
            weighting: match b.below(3) {
                0 => Weighting::Optimal {
                    alpha_coeff: [1.0, 0.5, -1.0, f32::NAN][b.below(4)],
                },
                1 => Weighting::BalanceHeuristic,
                _ => Weighting::Biased,
            },
            proposals: [
                Proposals::Single,
                Proposals::Antithetic,
                Proposals::TwoPerLandmark,
            ][b.below(3)],
            noise_scale: if b.one_in(2) {
                NoiseScale::Official
            } else {
                NoiseScale::Paper
            },
        }),
        2 => Attention::Randomized(
            [
                RandomizedMean::KeyAverage,
                RandomizedMean::AttentionWeighted,
                RandomizedMean::SampledKey,
            ][b.below(3)],
        ),
        _ => Attention::Kernelized {
            map: [FeatureMap::Positive, FeatureMap::Trigonometric][b.below(2)],
            features: if b.one_in(16) { 0 } else { b.range(1, 6) },
        },
    };
    Config::new(dim, heads, attention).with_qkv_bias(b.byte() & 1 == 0)
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let config = decode_config(&mut b);
    // The weights: |w| ≤ 1/4 (1/128 · 32), now and then one misshapen, non-finite or missing.
    let mut tensors: Vec<(&'static str, Vec<f32>)> = config
        .weight_specs()
        .map(|spec| {
            (spec.key, {
                let len = b.len_or_wrong(spec.len(), 48);
                b.floats(len, 1.0 / 512.0)
            })
        })
        .collect();
    if !tensors.is_empty() && b.one_in(32) {
        let at = b.below(tensors.len());
        b.poison(&mut tensors[at].1, 1);
    }
    if !tensors.is_empty() && b.one_in(48) {
        let at = b.below(tensors.len());
        tensors.remove(at);
    }
    let max_weight = tensors
        .iter()
        .flat_map(|(_, t)| t)
        .fold(0.0f32, |m, w| m.max(w.abs()));
    let weights = Weights::from_state_dict(&config, |key| {
        tensors
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, t)| t.as_slice())
    });
    let layer = match weights.and_then(|w| Layer::new(config, w)) {
        Ok(layer) => layer,
        Err(_) => return,
    };
    let layout = if b.one_in(3) {
        Layout::Grid {
            height: b.range(1, 5),
            width: b.range(1, 5),
        }
    } else {
        Layout::Sequence(if b.one_in(32) { 0 } else { b.range(1, 12) })
    };
    let n = layout.tokens();
    let magnitude = b.magnitude();
    let mut x = {
        let len = b.len_or_wrong(n * config.dim, 48);
        b.floats(len, magnitude)
    };
    b.poison(&mut x, 32);
    let mask: Option<Vec<bool>> = b.one_in(4).then(|| {
        let all = b.one_in(8);
        {
            let len = b.len_or_wrong(n, 32);
            (0..len).map(|_| all || b.one_in(3)).collect()
        }
    });
    let tokens = Tokens {
        x: &x,
        layout,
        key_mask: mask.as_deref(),
    };
    let noise_len = b.len_or_wrong(Layer::noise_len(&config, layout), 32);
    let mut eps = b.floats(noise_len, UNIT);
    b.poison(&mut eps, 32);
    let mode = b.below(3);
    let seed = b.u64();
    let out_len = b.len_or_wrong(n * config.dim, 48);
    let needed = Layer::scratch_len(&config, layout);
    let scratch_len = if b.one_in(12) {
        needed.saturating_sub(1)
    } else {
        needed
    };

    let run = |backend: Backend| {
        let mut out = vec![SENTINEL; out_len];
        let mut scratch = vec![SENTINEL; scratch_len];
        let mut rng = default_rng(seed);
        let sampling = match mode {
            0 => Sampling::Eval,
            1 => Sampling::Noise(&eps),
            _ => Sampling::Draw(&mut rng),
        };
        set_backend(Some(backend)).unwrap();
        let result = layer.forward(&tokens, sampling, &mut out, &mut scratch);
        set_backend(None).unwrap();
        let context = (backend, result, &config, layout, x.len(), mode);
        match result {
            // Documented: a projection that overflows makes a per-head estimator refuse it
            // after earlier heads have written their share.
            Err(Error::NonFinite(Arg::Queries | Arg::Keys | Arg::Values))
                if within(&x, f32::MAX) => {}
            Err(_) => {
                assert_untouched("out", &out, SENTINEL, &context);
                assert_untouched("scratch", &scratch, SENTINEL, &context);
            }
            Ok(()) => {
                // The projections stay below the kernels' limit: |x|·dim·max|w| + max|b| ≤ 1e18.
                let projected =
                    x.iter().fold(0.0f32, |m, v| m.max(v.abs())) * config.dim as f32 * max_weight
                        + max_weight;
                if within(&x, f32::MAX) && projected <= 1e18 {
                    assert_finite("forward", &out, &context);
                }
            }
        }
        (result, out)
    };
    let (reference, reference_out) = run(Backend::Scalar);
    let compare = reference.is_ok()
        && magnitude <= UNIT
        && !matches!(
            config.attention,
            Attention::Lara(LaraConfig {
                weighting: Weighting::Optimal { .. },
                ..
            })
        )
        && !matches!(
            config.attention,
            Attention::Randomized(RandomizedMean::SampledKey)
        );
    for backend in backends().into_iter().filter(|&b| b != Backend::Scalar) {
        let (result, out) = run(backend);
        if scratch_len >= needed {
            assert_eq!(
                result, reference,
                "{backend} vs scalar: {config:?} {layout:?}"
            );
        }
        if compare && result.is_ok() {
            let distance = relative_distance(&out, &reference_out);
            assert!(
                distance <= 1e-4,
                "{backend}: {distance:e} from scalar\n{config:?} {layout:?} mode {mode}\n{reference_out:?}\n{out:?}"
            );
        }
    }
});
