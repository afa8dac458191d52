//! The one list of the crate's kernel entry points, with a uniform calling convention: what the
//! backend tests, the bench and the link-time no-panic proof (`.ci/no-panic`) iterate over. A new
//! entry point joins [`KERNELS`] and is then tested on every backend, timed and proved
//! panic-free.
//!
//! `no_std`, no allocation: the no-panic proof builds it for bare-metal targets.
#![allow(dead_code)]

use lara_attn::causal;
use lara_attn::random::{DefaultRng, default_rng};
use lara_attn::rfa::FeatureMap;
use lara_attn::{Error, Qkv, Sampling, exact, lara, ra, rfa};

/// Everything a kernel of the list may read: the inputs and every estimator's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The inputs (shape, `q`, `k`, `v`, key mask).
    pub x: Qkv<'a>,
    /// LARA's parameters.
    pub lara: lara::Params<'a>,
    /// RA's parameters.
    pub ra: ra::Params<'a>,
    /// The random projection of the RFA kernels, `[h, S, d]`.
    pub omega: &'a [f32],
    /// The proposal noise of the eval-or-noise kernels: `None` is eval mode.
    pub noise: Option<&'a [f32]>,
    /// The seed of the generator of the sampled kernels.
    pub seed: u64,
    /// The gates of causal RFA, `[h, n]`.
    pub gates: Option<&'a [f32]>,
}

impl Call<'_> {
    /// Eval mode, or the given noise.
    pub fn sampling(&self) -> Sampling<'_> {
        match self.noise {
            Some(eps) => Sampling::Noise(eps),
            None => Sampling::Eval,
        }
    }

    /// The number of RFA features `S` that `omega` holds (0 for an empty or ragged one).
    pub fn features(&self) -> usize {
        let row = self.x.shape.heads.saturating_mul(self.x.shape.dim).max(1);
        self.omega.len() / row
    }

    /// The number of LARA landmarks requested.
    pub fn landmarks(&self) -> usize {
        match self.lara.landmarks {
            lara::Landmarks::SegmentMeans(c) => c,
            lara::Landmarks::Given { count, .. } => count,
        }
    }

    /// The generator of the sampled kernels.
    pub fn rng(&self) -> DefaultRng {
        default_rng(self.seed)
    }
}

/// A call of an entry point: `call`, `out [h, n_q, d_v]`, `scratch`.
pub type Run = fn(&Call<'_>, &mut [f32], &mut [f32]) -> Result<(), Error>;

/// One entry point: its name, the scratch it needs on this target, and a call.
#[derive(Clone, Copy)]
pub struct Kernel {
    /// A short name (`exact`, `lara`, …).
    pub name: &'static str,
    /// Scratch (in `f32`s) for `call` on every backend compiled for this target.
    pub scratch_len: fn(&Call<'_>) -> usize,
    /// Runs the entry point on `call` into `out [h, n_q, d_v]` with `scratch`.
    pub run: Run,
}

impl Kernel {
    /// The kernel named `name`.
    pub fn named(name: &str) -> Option<&'static Kernel> {
        KERNELS.iter().find(|kernel| kernel.name == name)
    }
}

fn rfa_params<'a>(call: &Call<'a>, map: FeatureMap) -> rfa::Params<'a> {
    rfa::Params {
        map,
        omega: call.omega,
    }
}

/// Every kernel entry point of the crate's slice API.
pub const KERNELS: &[Kernel] = &[
    Kernel {
        name: "exact",
        scratch_len: |c| exact::scratch_len(c.x.shape),
        run: |c, out, scratch| exact::attention(&c.x, out, scratch),
    },
    Kernel {
        name: "lara",
        scratch_len: |c| lara::scratch_len(c.x.shape, c.landmarks(), c.lara.proposals),
        run: |c, out, scratch| lara::attention(&c.x, &c.lara, c.sampling(), out, scratch),
    },
    Kernel {
        name: "lara-draw",
        scratch_len: |c| lara::scratch_len(c.x.shape, c.landmarks(), c.lara.proposals),
        run: |c, out, scratch| {
            let mut rng = c.rng();
            lara::attention(&c.x, &c.lara, Sampling::Draw(&mut rng), out, scratch)
        },
    },
    Kernel {
        name: "ra",
        scratch_len: |c| ra::scratch_len(c.x.shape),
        run: |c, out, scratch| ra::attention(&c.x, &c.ra, c.sampling(), out, scratch),
    },
    Kernel {
        name: "ra-draw",
        scratch_len: |c| ra::scratch_len(c.x.shape),
        run: |c, out, scratch| {
            let mut rng = c.rng();
            ra::attention(&c.x, &c.ra, Sampling::Draw(&mut rng), out, scratch)
        },
    },
    Kernel {
        name: "rfa",
        scratch_len: |c| rfa::scratch_len(c.x.shape, FeatureMap::Positive, c.features()),
        run: |c, out, scratch| {
            rfa::attention(&c.x, &rfa_params(c, FeatureMap::Positive), out, scratch)
        },
    },
    Kernel {
        name: "rfa-trig",
        scratch_len: |c| rfa::scratch_len(c.x.shape, FeatureMap::Trigonometric, c.features()),
        run: |c, out, scratch| {
            rfa::attention(
                &c.x,
                &rfa_params(c, FeatureMap::Trigonometric),
                out,
                scratch,
            )
        },
    },
    Kernel {
        name: "rfa-log-space",
        scratch_len: |c| rfa::scratch_len(c.x.shape, FeatureMap::PositiveLogSpace, c.features()),
        run: |c, out, scratch| {
            let params = rfa_params(c, FeatureMap::PositiveLogSpace);
            rfa::attention(&c.x, &params, out, scratch)
        },
    },
    Kernel {
        name: "causal-rfa",
        scratch_len: |c| causal::scratch_len(c.x.shape, FeatureMap::Positive, c.features()),
        run: |c, out, scratch| {
            let params = rfa_params(c, FeatureMap::Positive);
            causal::rfa(&c.x, &params, c.gates, out, scratch)
        },
    },
    Kernel {
        name: "causal-rfa-trig",
        scratch_len: |c| causal::scratch_len(c.x.shape, FeatureMap::Trigonometric, c.features()),
        run: |c, out, scratch| {
            let params = rfa_params(c, FeatureMap::Trigonometric);
            causal::rfa(&c.x, &params, c.gates, out, scratch)
        },
    },
    Kernel {
        name: "causal-rfa-log-space",
        scratch_len: |c| causal::scratch_len(c.x.shape, FeatureMap::PositiveLogSpace, c.features()),
        run: |c, out, scratch| {
            let params = rfa_params(c, FeatureMap::PositiveLogSpace);
            causal::rfa(&c.x, &params, c.gates, out, scratch)
        },
    },
];
