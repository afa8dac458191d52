//! The calls the every-kernel tests (dirty scratch, convexity, huge logits) run each kernel of
//! the registry on: every LARA weighting and landmark count, given landmarks, every RA mean,
//! eval and sampled, one `ω`. A [`Call`] carries the parameters of every estimator at once,
//! and each kernel reads its own.
//!
//! The proposal noise of a call is sized for one estimator (`[h, C', d]` for LARA,
//! `[h, n_q, d]` for RA): a kernel that refuses it with `LengthMismatch { arg: Noise }` is not
//! run on that variant, and [`run_all`] checks that every noise was taken by some kernel that
//! reads it (one that refuses it once poisoned with a NaN). Likewise RA's sampled-key mean needs a
//! generator: a kernel without one refuses it with `GeneratorRequired`. Any other refusal
//! fails the test.

use crate::kernels::{Call, KERNELS, Kernel};
use crate::{WEIGHTINGS, base_call, key_indices, randn, runs_on, try_run};
use lara_attn::random::{default_rng, orthogonal_omega};
use lara_attn::{Arg, Error, Qkv, Shape, lara, ra};
use std::collections::HashSet;

/// Everything the variants borrow, owned.
pub struct VariantInputs {
    counts: Vec<usize>,
    lara_noise: Vec<Vec<f32>>,
    ra_noise: Vec<f32>,
    index: Vec<u32>,
    omega: Vec<f32>,
    given: usize,
    q_bar: Vec<f32>,
    k_bar: Vec<f32>,
    seed: u64,
}

/// One call of every kernel.
pub struct Variant<'a> {
    /// What the call sets, for messages.
    pub label: String,
    pub call: Call<'a>,
}

impl VariantInputs {
    /// Segment-mean landmark `counts` (with noise for each), `features` orthogonal features,
    /// `1 + seed mod 5` given landmarks.
    pub fn new(shape: Shape, counts: &[usize], features: usize, seed: u64) -> Self {
        assert_eq!(shape.heads, 1);
        let d = shape.dim;
        let mut omega = vec![0.0f32; features * d];
        orthogonal_omega(&mut default_rng(seed ^ 0x0E), features, d, &mut omega).unwrap();
        let given = 1 + seed as usize % 5;
        VariantInputs {
            counts: counts.to_vec(),
            lara_noise: counts
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    randn(
                        seed ^ 0x100 ^ i as u64,
                        lara::noise_len(shape, c, lara::Proposals::Single),
                    )
                })
                .collect(),
            ra_noise: randn(seed ^ 0x200, shape.queries * d),
            index: key_indices(seed ^ 0x300, shape.queries, shape.keys),
            omega,
            given,
            q_bar: randn(seed ^ 0x400, given * d),
            k_bar: randn(seed ^ 0x500, given * d),
            seed,
        }
    }

    /// The calls on `x`.
    pub fn variants<'a>(&'a self, x: Qkv<'a>) -> Vec<Variant<'a>> {
        let base = Call {
            omega: &self.omega,
            seed: self.seed,
            ..base_call(x)
        };
        let mut variants = Vec::new();
        let mut push_pair = |label: String, call: Call<'a>, noise: Option<&'a [f32]>| {
            variants.push(Variant {
                label: format!("{label} eval"),
                call,
            });
            if let Some(noise) = noise {
                variants.push(Variant {
                    label: format!("{label} noise"),
                    call: Call {
                        noise: Some(noise),
                        ..call
                    },
                });
            }
        };
        for (&count, noise) in self.counts.iter().zip(&self.lara_noise) {
            for weighting in WEIGHTINGS {
                let call = Call {
                    lara: lara::Params::segment_means(count, weighting),
                    ..base
                };
                push_pair(format!("lara C={count} {weighting:?}"), call, Some(noise));
            }
        }
        for weighting in WEIGHTINGS {
            let landmarks = lara::Landmarks::Given {
                count: self.given,
                queries: &self.q_bar,
                keys: &self.k_bar,
            };
            let call = Call {
                lara: lara::Params::new(landmarks, weighting),
                ..base
            };
            push_pair(
                format!("lara given C={} {weighting:?}", self.given),
                call,
                None,
            );
        }
        for mean in [
            ra::Mean::KeyAverage,
            ra::Mean::AttentionWeighted,
            ra::Mean::GivenKeys(&self.index),
            ra::Mean::SampledKey,
        ] {
            let call = Call {
                ra: ra::Params::new(mean),
                ..base
            };
            let label = match mean {
                ra::Mean::GivenKeys(_) => "ra GivenKeys".to_string(),
                mean => format!("ra {mean:?}"),
            };
            // (The sampled key needs a generator: only the drawing kernel takes it, and draws its
            // own noise.)
            let noise = (mean != ra::Mean::SampledKey).then_some(&self.ra_noise[..]);
            push_pair(label, call, noise);
        }
        variants
    }
}

/// Runs every registry kernel that takes the variants' shape on every variant it accepts (see
/// the module docs) and hands the output to `check`.
pub fn run_all(variants: &[Variant<'_>], mut check: impl FnMut(&Kernel, &Variant<'_>, &[f32])) {
    let mut accepted: HashSet<(&str, usize)> = HashSet::new();
    for kernel in KERNELS {
        for (index, variant) in variants.iter().enumerate() {
            let call = &variant.call;
            if !runs_on(kernel, call.x.shape) {
                continue;
            }
            match try_run(kernel, call) {
                Ok(out) => {
                    check(kernel, variant, &out);
                    accepted.insert((kernel.name, index));
                }
                Err(Error::LengthMismatch {
                    arg: Arg::Noise, ..
                }) if call.noise.is_some() => {}
                Err(Error::GeneratorRequired) if call.ra.mean == ra::Mean::SampledKey => {}
                Err(e) => panic!("{} {:?} {}: {e}", kernel.name, call.x.shape, variant.label),
            }
        }
    }
    // Every noise was taken by a kernel that reads it.
    for (index, variant) in variants.iter().enumerate() {
        let Some(noise) = variant.call.noise else {
            continue;
        };
        let mut poisoned = noise.to_vec();
        poisoned[0] = f32::NAN;
        let call = Call {
            noise: Some(&poisoned),
            ..variant.call
        };
        let read = KERNELS.iter().any(|kernel| {
            accepted.contains(&(kernel.name, index))
                && try_run(kernel, &call) == Err(Error::NonFinite(Arg::Noise))
        });
        assert!(
            read,
            "{:?} {}: no kernel read the noise",
            variant.call.x.shape, variant.label
        );
    }
}
