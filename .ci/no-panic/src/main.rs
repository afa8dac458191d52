//! Calls every public kernel of lara-attn with arguments the optimiser cannot see, from a
//! bare-metal entry point whose panic handler references an undefined symbol: the link succeeds
//! only if no panic path is reachable from any kernel.
#![no_std]
#![no_main]

use core::ptr::read_volatile;
use core::slice::{from_raw_parts, from_raw_parts_mut};
use lara_attn::random::{DefaultRng, NoiseScale, default_rng, gaussian_omega, orthogonal_omega};
use lara_attn::{Shape, causal, exact, fixed, lara, multihead, pool2d, ra, rfa};

unsafe extern "C" {
    fn a_panic_path_survived_in_lara_attn() -> !;
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: never called if the link succeeds (the symbol does not exist).
    unsafe { a_panic_path_survived_in_lara_attn() }
}

/// Opaque inputs at fixed addresses (never dereferenced at run time: this is never run).
struct Opaque;

impl Opaque {
    fn word(&self, slot: usize) -> usize {
        // SAFETY: not executed; the read only hides the value from the optimiser.
        unsafe { read_volatile((0x2000_0000 + 4 * slot) as *const usize) }
    }
    fn input(&self, slot: usize) -> &'static [f32] {
        // SAFETY: as above.
        unsafe { from_raw_parts(self.word(slot) as *const f32, self.word(slot + 1)) }
    }
    fn output(&self, slot: usize) -> &'static mut [f32] {
        // SAFETY: as above.
        unsafe { from_raw_parts_mut(self.word(slot) as *mut f32, self.word(slot + 1)) }
    }
    fn indices(&self, slot: usize) -> &'static [u32] {
        // SAFETY: as above.
        unsafe { from_raw_parts(self.word(slot) as *const u32, self.word(slot + 1)) }
    }
    fn mask(&self, slot: usize) -> &'static [bool] {
        // SAFETY: as above.
        unsafe { from_raw_parts(self.word(slot) as *const bool, self.word(slot + 1)) }
    }
    fn float(&self, slot: usize) -> f32 {
        f32::from_bits(self.word(slot) as u32)
    }
    fn shape(&self) -> Shape {
        Shape::cross(self.word(0), self.word(1), self.word(2), self.word(3))
    }
}

// cortex-m-rt's entry point: the root .cargo/config.toml links every thumb binary built from the
// repository root with its `link.x` (memory map: .ci/no-panic/memory.x, found in the working
// directory of the link, this crate's root).
#[cortex_m_rt::entry]
fn main() -> ! {
    let x = Opaque;
    let shape = x.shape();
    let (q, k, v, eps, omega) = (
        x.input(10),
        x.input(12),
        x.input(14),
        x.input(16),
        x.input(18),
    );
    let (out, scratch) = (x.output(20), x.output(22));
    let (heads, count, features) = (x.word(4), x.word(5), x.word(6));
    let mut rng: DefaultRng = default_rng(x.word(7) as u64);
    let weighting = match x.word(8) {
        0 => lara::Weighting::Optimal {
            alpha_coeff: x.float(9),
        },
        1 => lara::Weighting::BalanceHeuristic,
        _ => lara::Weighting::Biased,
    };
    let landmarks = if x.word(24) == 0 {
        lara::Landmarks::SegmentMeans(count)
    } else {
        lara::Landmarks::Given {
            count,
            queries: x.input(25),
            keys: x.input(27),
        }
    };
    let key_mask = if x.word(82) == 0 {
        None
    } else {
        Some(x.mask(83))
    };
    let noise_scale = if x.word(81) == 0 {
        NoiseScale::Official
    } else {
        NoiseScale::Paper
    };
    let params = lara::Params {
        landmarks,
        weighting,
        proposals: match x.word(80) {
            0 => lara::Proposals::Single,
            1 => lara::Proposals::Antithetic,
            _ => lara::Proposals::TwoPerLandmark,
        },
        noise_scale,
        key_mask,
    };
    let noise = if x.word(29) == 0 { None } else { Some(eps) };
    let mean = match x.word(30) {
        0 => ra::Mean::KeyAverage,
        1 => ra::Mean::AttentionWeighted,
        _ => ra::Mean::Keys(x.indices(31)),
    };
    let sampled_mean = match x.word(33) {
        0 => ra::SampledMean::KeyAverage,
        1 => ra::SampledMean::AttentionWeighted,
        _ => ra::SampledMean::Key,
    };

    let mut ok = 0usize;
    let mut tally = |r: Result<(), lara_attn::Error>| ok += r.is_ok() as usize;
    tally(exact::attention(shape, q, k, v, out, scratch));
    tally(lara::attention(
        shape, &params, q, k, v, noise, out, scratch,
    ));
    tally(lara::attention_sampled(
        shape, &params, q, k, v, &mut rng, out, scratch,
    ));
    tally(lara::segment_means(q, shape.queries, shape.dim, count, out));
    tally(ra::attention(shape, mean, noise_scale, q, k, v, noise, out, scratch));
    tally(ra::attention_sampled(
        shape,
        sampled_mean,
        noise_scale,
        q,
        k,
        v,
        &mut rng,
        out,
        scratch,
    ));
    tally(rfa::positive(shape, omega, features, q, k, v, out, scratch));
    let mask = x.mask(83);
    tally(exact::attention_masked(shape, q, k, v, mask, out, scratch));
    tally(rfa::positive_masked(
        shape, omega, features, q, k, v, mask, out, scratch,
    ));
    tally(rfa::trigonometric_masked(
        shape, omega, features, q, k, v, mask, out, scratch,
    ));
    tally(rfa::positive_log_space(
        shape, omega, features, q, k, v, key_mask, out, scratch,
    ));
    tally(rfa::trigonometric(
        shape, omega, features, q, k, v, out, scratch,
    ));
    tally(gaussian_omega(&mut rng, features, shape.dim, out));
    tally(orthogonal_omega(&mut rng, features, shape.dim, out));
    tally(multihead::exact(heads, shape, q, k, v, out, scratch));
    tally(multihead::lara(
        heads, shape, &params, q, k, v, noise, out, scratch,
    ));
    tally(multihead::lara_sampled(
        heads, shape, &params, q, k, v, &mut rng, out, scratch,
    ));
    tally(multihead::ra(
        heads, shape, mean, NoiseScale::Official, q, k, v, noise, out, scratch,
    ));
    tally(multihead::ra_sampled(
        heads,
        shape,
        sampled_mean,
        NoiseScale::Official,
        q,
        k,
        v,
        &mut rng,
        out,
        scratch,
    ));
    tally(multihead::rfa_positive(
        heads, shape, omega, features, q, k, v, out, scratch,
    ));
    tally(multihead::rfa_trigonometric(
        heads, shape, omega, features, q, k, v, out, scratch,
    ));
    fixed_layer(&x, weighting, mean, sampled_mean, &mut rng, &mut tally);
    causal_layer(&x, shape, omega, features, &mut tally);
    let (grid, pooled) = ((x.word(70), x.word(71)), (x.word(72), x.word(73)));
    tally(pool2d::adaptive_avg_pool_2d(
        q, grid, shape.dim, pooled, out,
    ));
    match pool2d::pooled_landmarks(q, k, grid, shape.dim, pooled, x.output(74), x.output(76)) {
        Ok(landmarks) => {
            let params = lara::Params {
                landmarks,
                weighting,
                ..Default::default()
            };
            tally(lara::attention(
                shape, &params, q, k, v, noise, out, scratch,
            ));
        }
        Err(e) => tally(Err(e)),
    }

    // SAFETY: not executed.
    unsafe { core::ptr::write_volatile(0x2000_1000 as *mut usize, ok) };
    loop {}
}

/// Causal RFA (stream and batch, both feature maps, gated) and the causal exact KV cache.
fn causal_layer(
    x: &Opaque,
    shape: Shape,
    omega: &'static [f32],
    features: usize,
    tally: &mut impl FnMut(Result<(), lara_attn::Error>),
) {
    let (q, k, v, gates) = (x.input(50), x.input(52), x.input(54), x.input(56));
    let (out, buffer) = (x.output(58), x.output(60));
    let map = if x.word(62) == 0 {
        causal::FeatureMap::Positive
    } else {
        causal::FeatureMap::Trigonometric
    };
    let gates = if x.word(63) == 0 { None } else { Some(gates) };
    tally(causal::rfa(
        map, shape, omega, features, q, k, v, gates, out, buffer,
    ));
    match causal::RfaState::new(
        map,
        shape.dim,
        shape.value_dim,
        features,
        omega,
        x.output(64),
    ) {
        Ok(mut state) => {
            tally(state.push(k, v));
            tally(state.push_gated(k, v, x.float(66)));
            tally(state.attend(q, out));
        }
        Err(e) => tally(Err(e)),
    }
    match causal::KvCache::new(shape.dim, shape.value_dim, x.word(67), x.output(68)) {
        Ok(mut cache) => {
            tally(cache.push(k, v));
            tally(cache.attend(q, out));
        }
        Err(e) => tally(Err(e)),
    }
}

/// The fixed-size layer at one representative shape.
fn fixed_layer(
    x: &Opaque,
    weighting: lara::Weighting,
    mean: ra::Mean<'_>,
    sampled_mean: ra::SampledMean,
    rng: &mut DefaultRng,
    tally: &mut impl FnMut(Result<(), lara_attn::Error>),
) {
    const N: usize = 64;
    const D: usize = 16;
    // SAFETY: not executed.
    let array = |slot: usize| unsafe { &*(x.word(slot) as *const [[f32; D]; N]) };
    // SAFETY: not executed.
    let out = unsafe { &mut *(x.word(40) as *mut [[f32; D]; N]) };
    let (q, k, v) = (array(41), array(42), array(43));
    // SAFETY: not executed.
    let omega = unsafe { &*(x.word(44) as *const [[f32; D]; 32]) };
    let noise = if x.word(29) == 0 {
        None
    } else {
        Some(&array(45)[..8])
    };
    let mut lara_scratch = fixed::LaraScratch::<8, D, D>::new();
    let mut ra_scratch = fixed::RaScratch::<N, D>::new();
    tally(fixed::exact(q, k, v, out, &mut fixed::ExactScratch::new()));
    tally(fixed::lara(
        weighting,
        q,
        k,
        v,
        noise,
        out,
        &mut lara_scratch,
    ));
    tally(fixed::lara_sampled(
        weighting,
        q,
        k,
        v,
        rng,
        out,
        &mut lara_scratch,
    ));
    tally(fixed::ra(
        mean,
        NoiseScale::Official,
        q,
        k,
        v,
        Some(array(46)),
        out,
        &mut ra_scratch,
    ));
    tally(fixed::ra_sampled(
        sampled_mean,
        NoiseScale::Official,
        q,
        k,
        v,
        rng,
        out,
        &mut ra_scratch,
    ));
    tally(fixed::rfa_positive(
        omega,
        q,
        k,
        v,
        out,
        &mut fixed::PositiveScratch::new(),
    ));
    tally(fixed::rfa_trigonometric(
        omega,
        q,
        k,
        v,
        out,
        &mut fixed::TrigonometricScratch::new(),
    ));
}
