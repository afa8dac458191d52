//! Calls every public entry point of lara-attn with arguments the optimiser cannot see, from a
//! bare-metal entry point whose panic handler references an undefined symbol: the link succeeds
//! only if no panic path is reachable from any entry point. The kernels come from the one
//! registry, `tests/support/kernels.rs`; the other entry points (landmarks, samplers, the
//! fixed-size layer, the causal states, whole layers) are called below.
#![no_std]
#![no_main]

#[path = "../../../tests/support/kernels.rs"]
mod kernels;
mod opaque;

use kernels::{Call, INT8_KERNELS, Int8Call, KERNELS};
use lara_attn::random::{DefaultRng, NoiseScale, default_rng, gaussian_omega, orthogonal_omega};
use lara_attn::rfa::FeatureMap;
use lara_attn::{Error, Qkv, Sampling, causal, fixed, int8, lara, layer, pool2d, ra, rfa};
use opaque::Opaque;

unsafe extern "C" {
    fn a_panic_path_survived_in_lara_attn() -> !;
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: never called if the link succeeds (the symbol does not exist).
    unsafe { a_panic_path_survived_in_lara_attn() }
}

// cortex-m-rt's entry point: the root .cargo/config.toml links every thumb binary built from the
// repository root with its `link.x` (memory map: .ci/no-panic/memory.x, found in the working
// directory of the link, this crate's root).
#[cortex_m_rt::entry]
fn main() -> ! {
    let x = Opaque;
    let inputs = Qkv {
        shape: x.shape(),
        q: x.input(10),
        k: x.input(12),
        v: x.input(14),
        key_mask: x.optional(82, x.mask(83)),
    };
    let weighting = match x.word(8) {
        0 => lara::Weighting::Optimal {
            alpha_coeff: x.float(9),
        },
        1 => lara::Weighting::BalanceHeuristic,
        _ => lara::Weighting::Biased,
    };
    let landmarks = match x.word(24) {
        0 => lara::Landmarks::SegmentMeans(x.word(5)),
        _ => lara::Landmarks::Given {
            count: x.word(5),
            queries: x.input(25),
            keys: x.input(27),
        },
    };
    let noise_scale = match x.word(81) {
        0 => NoiseScale::Official,
        _ => NoiseScale::Paper,
    };
    let proposals = match x.word(80) {
        0 => lara::Proposals::Single,
        1 => lara::Proposals::Antithetic,
        _ => lara::Proposals::TwoPerLandmark,
    };
    let mean = match x.word(30) {
        0 => ra::Mean::KeyAverage,
        1 => ra::Mean::AttentionWeighted,
        2 => ra::Mean::SampledKey,
        _ => ra::Mean::GivenKeys(x.indices(31)),
    };
    let call = Call {
        x: inputs,
        lara: lara::Params::new(landmarks, weighting)
            .with_proposals(proposals)
            .with_noise_scale(noise_scale),
        ra: ra::Params::new(mean).with_noise_scale(noise_scale),
        omega: x.input(18),
        noise: x.optional(29, x.input(16)),
        seed: x.word(7) as u64,
        gates: x.optional(63, x.input(56)),
    };
    let (out, scratch) = (x.output(20), x.output(22));

    let mut ok = 0usize;
    let mut tally = |r: Result<(), Error>| ok += r.is_ok() as usize;
    for kernel in KERNELS {
        tally((kernel.run)(&call, out, scratch));
    }
    let mut rng: DefaultRng = default_rng(x.word(7) as u64);
    let (rows, dim, count) = (x.word(0), x.word(2), x.word(5));
    tally(lara::segment_means(call.x.q, rows, dim, count, out));
    tally(gaussian_omega(&mut rng, x.word(6), dim, out));
    tally(orthogonal_omega(&mut rng, x.word(6), dim, out));
    let (grid, pooled) = ((x.word(70), x.word(71)), (x.word(72), x.word(73)));
    tally(pool2d::adaptive_avg_pool_2d(
        call.x.q, grid, dim, pooled, out,
    ));
    match pool2d::pooled_landmarks(
        call.x.q,
        call.x.k,
        grid,
        dim,
        pooled,
        x.output(74),
        x.output(76),
    ) {
        Ok(landmarks) => {
            let params = lara::Params::new(landmarks, weighting);
            tally(lara::attention(
                &call.x,
                &params,
                call.sampling(),
                out,
                scratch,
            ));
        }
        Err(e) => tally(Err(e)),
    }
    int8_kernels(&x, &call, weighting, proposals, noise_scale, &mut tally);
    fixed_layer(&x, &call, &mut rng, &mut tally);
    causal_states(&x, &mut tally);
    layers(&x, &mut rng, &mut tally);

    // SAFETY: not executed.
    unsafe { core::ptr::write_volatile(0x2000_1000 as *mut usize, ok) };
    loop {}
}

/// Every int8 kernel (plan and call), with `i8` and `f32` outputs.
fn int8_kernels(
    x: &Opaque,
    call: &Call<'_>,
    weighting: lara::Weighting,
    proposals: lara::Proposals,
    noise_scale: NoiseScale,
    tally: &mut impl FnMut(Result<(), Error>),
) {
    let inputs = int8::Qkv {
        shape: call.x.shape,
        q: x.bytes(120),
        k: x.bytes(122),
        v: x.bytes(124),
        key_mask: call.x.key_mask,
    };
    let scales = int8::Scales {
        q: x.float(126),
        k: x.float(127),
        v: x.float(128),
        out: x.float(129),
    };
    let landmarks = match x.word(24) {
        0 => int8::lara::Landmarks::SegmentMeans(x.word(5)),
        _ => int8::lara::Landmarks::Given {
            count: x.word(5),
            queries: x.bytes(130),
            keys: x.bytes(132),
        },
    };
    let int8_call = Int8Call {
        x: inputs,
        scales,
        lara: int8::lara::Config {
            weighting,
            proposals,
            noise_scale,
            noise: x.optional(134, x.float(135)),
            landmarks: x.optional(136, (x.float(137), x.float(138))),
        },
        landmarks,
        noise: x.optional(29, x.bytes(139)),
        omega: x.bytes(141),
        omega_scale: x.float(143),
    };
    for kernel in INT8_KERNELS {
        tally((kernel.run)(
            &int8_call,
            int8::Out::I8(x.bytes_out(144)),
            x.words_out(146),
        ));
        tally((kernel.run)(
            &int8_call,
            int8::Out::F32(x.output(20)),
            x.words_out(146),
        ));
    }
}

/// The streaming states: causal RFA (every feature map, gated) and the exact KV cache.
fn causal_states(x: &Opaque, tally: &mut impl FnMut(Result<(), Error>)) {
    let (q, k, v) = (x.input(50), x.input(52), x.input(54));
    let out = x.output(58);
    let map = match x.word(62) {
        0 => FeatureMap::Positive,
        1 => FeatureMap::Trigonometric,
        _ => FeatureMap::PositiveLogSpace,
    };
    let params = rfa::Params {
        map,
        omega: x.input(18),
    };
    match causal::RfaState::new(&params, x.word(2), x.word(3), x.output(64)) {
        Ok(mut state) => {
            tally(state.push(k, v));
            tally(state.push_gated(k, v, x.float(66)));
            tally(state.attend(q, out));
        }
        Err(e) => tally(Err(e)),
    }
    match causal::KvCache::new(x.word(2), x.word(3), x.word(67), x.output(68)) {
        Ok(mut cache) => {
            tally(cache.push(k, v));
            tally(cache.attend(q, out));
        }
        Err(e) => tally(Err(e)),
    }
}

/// Whole layers: every module and `LinearRA` generator, sequences and grids, eval, given and
/// drawn noise.
fn layers(x: &Opaque, rng: &mut DefaultRng, tally: &mut impl FnMut(Result<(), Error>)) {
    let weighting = match x.word(8) {
        0 => lara::Weighting::Optimal {
            alpha_coeff: x.float(9),
        },
        1 => lara::Weighting::BalanceHeuristic,
        _ => lara::Weighting::Biased,
    };
    let lara_config = layer::LaraConfig {
        landmarks: x.word(5),
        generator: match x.word(90) {
            0 => layer::ProposalGen::Pool,
            1 => layer::ProposalGen::NoParamPool,
            _ => layer::ProposalGen::Adaptive1d,
        },
        pool_module: match x.word(91) {
            0 => layer::PoolModule::Light,
            _ => layer::PoolModule::Dense,
        },
        mixing: match x.word(92) {
            0 => layer::Mixing::None,
            1 => layer::Mixing::Mixed,
            _ => layer::Mixing::VMixed,
        },
        weighting,
        ..layer::LaraConfig::official()
    };
    let attention = match x.word(93) {
        0 => layer::Attention::Softmax,
        1 => layer::Attention::Lara(lara_config),
        2 => layer::Attention::Randomized(layer::RandomizedMean::AttentionWeighted),
        3 => layer::Attention::Randomized(layer::RandomizedMean::SampledKey),
        _ => layer::Attention::Kernelized {
            map: FeatureMap::Positive,
            features: x.word(6),
        },
    };
    let config =
        layer::Config::new(x.word(94), x.word(95), attention).with_qkv_bias(x.word(96) != 0);
    let generator = layer::Generator {
        linear_weight: x.input(97),
        linear_bias: x.input(99),
        norm_weight: x.input(101),
        norm_bias: x.input(103),
    };
    let weights = layer::Weights {
        qkv_weight: x.input(105),
        qkv_bias: x.optional(96, x.input(107)),
        proj_weight: x.input(109),
        proj_bias: x.input(111),
        q_bar_gen: x.optional(113, generator),
        k_bar_gen: x.optional(113, generator),
        eval_proj: x.optional(114, x.input(18)),
    };
    let layout = match x.word(115) {
        0 => layer::Layout::Sequence(x.word(0)),
        _ => layer::Layout::Grid {
            height: x.word(0),
            width: x.word(1),
        },
    };
    let tokens = layer::Tokens {
        x: x.input(116),
        layout,
        key_mask: x.optional(82, x.mask(83)),
    };
    let (out, scratch) = (x.output(20), x.output(22));
    match layer::Layer::new(config, weights) {
        Ok(layer) => {
            tally(layer.forward(&tokens, Sampling::Eval, out, scratch));
            tally(layer.forward(&tokens, Sampling::Noise(x.input(16)), out, scratch));
            tally(layer.forward(&tokens, Sampling::Draw(&mut *rng), out, scratch));
        }
        Err(e) => tally(Err(e)),
    }
}

/// The fixed-size layer at one representative shape.
fn fixed_layer(
    x: &Opaque,
    call: &Call<'_>,
    rng: &mut DefaultRng,
    tally: &mut impl FnMut(Result<(), Error>),
) {
    const N: usize = 64;
    const D: usize = 16;
    // SAFETY: not executed.
    let array = |slot: usize| unsafe { &*(x.word(slot) as *const [[f32; D]; N]) };
    // SAFETY: not executed.
    let out = unsafe { &mut *(x.word(40) as *mut [[f32; D]; N]) };
    // SAFETY: not executed.
    let mask = unsafe { &*(x.word(47) as *const [bool; N]) };
    let inputs = fixed::Qkv {
        q: array(41),
        k: array(42),
        v: array(43),
        key_mask: x.optional(48, mask),
    };
    // SAFETY: not executed.
    let omega = unsafe { &*(x.word(44) as *const [[f32; D]; 32]) };
    let noise = || match x.word(29) {
        0 => Sampling::Eval,
        _ => Sampling::Noise(x.input(45)),
    };
    let mut lara_scratch = fixed::LaraScratch::<8, D, D>::new();
    let mut ra_scratch = fixed::RaScratch::<N, D>::new();
    tally(fixed::exact(&inputs, out, &mut fixed::ExactScratch::new()));
    tally(fixed::lara(
        &inputs,
        &call.lara,
        noise(),
        out,
        &mut lara_scratch,
    ));
    let sampled = Sampling::Draw(&mut *rng);
    tally(fixed::lara(
        &inputs,
        &call.lara,
        sampled,
        out,
        &mut lara_scratch,
    ));
    tally(fixed::ra(&inputs, &call.ra, noise(), out, &mut ra_scratch));
    let sampled = Sampling::Draw(&mut *rng);
    tally(fixed::ra(&inputs, &call.ra, sampled, out, &mut ra_scratch));
    let scratch = &mut fixed::PositiveScratch::new();
    tally(fixed::rfa_positive(&inputs, omega, out, scratch));
    let scratch = &mut fixed::TrigonometricScratch::new();
    tally(fixed::rfa_trigonometric(&inputs, omega, out, scratch));
}
