//! The one list of the crate's kernel entry points, with a uniform calling convention: what the
//! backend tests, the bench and the link-time no-panic proof (`.ci/no-panic`) iterate over. A new
//! entry point joins [`KERNELS`] (or, for the int8 kernels, [`INT8_KERNELS`]) and is then tested
//! on every backend, timed and proved panic-free.
//!
//! `no_std`, no allocation: the no-panic proof builds it for bare-metal targets.
#![allow(dead_code)]

use lara_attn::causal;
use lara_attn::random::{DefaultRng, default_rng};
use lara_attn::rfa::FeatureMap;
use lara_attn::{Error, Qkv, Sampling, exact, int8, lara, ra, rfa};

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

/// Everything an int8 kernel of the list may read: the `i8` inputs, their scales and every
/// estimator's parameters (each call makes its plan, so the plans' checks are covered too).
#[derive(Clone, Copy, Debug)]
pub struct Int8Call<'a> {
    /// The inputs (shape, `q`, `k`, `v`, key mask).
    pub x: int8::Qkv<'a>,
    /// The scales of `q`, `k`, `v` and the `i8` output.
    pub scales: int8::Scales,
    /// LARA's configuration (weighting, proposals, noise and landmark scales).
    pub lara: int8::lara::Config,
    /// LARA's landmarks.
    pub landmarks: int8::lara::Landmarks<'a>,
    /// LARA's noise `[h, R, d]` (`None`: eval mode).
    pub noise: Option<&'a [i8]>,
    /// RFA's projection `[h, S, d]` and its scale.
    pub omega: &'a [i8],
    pub omega_scale: f32,
}

impl Int8Call<'_> {
    /// The number of RFA features `S` that `omega` holds.
    pub fn features(&self) -> usize {
        let row = self.x.shape.heads.saturating_mul(self.x.shape.dim).max(1);
        self.omega.len() / row
    }

    /// The number of LARA landmarks requested.
    pub fn landmarks(&self) -> usize {
        match self.landmarks {
            int8::lara::Landmarks::SegmentMeans(c) => c,
            int8::lara::Landmarks::Given { count, .. } => count,
        }
    }

    /// LARA's sampling.
    pub fn sampling(&self) -> int8::lara::Sampling<'_> {
        match self.noise {
            Some(eps) => int8::lara::Sampling::Noise(eps),
            None => int8::lara::Sampling::Eval,
        }
    }
}

/// A call of an int8 entry point: `call`, the output, the `i32` scratch.
pub type Int8Run = fn(&Int8Call<'_>, int8::Out<'_>, &mut [i32]) -> Result<(), Error>;

/// One int8 entry point: its name, the scratch it needs, and a call (plan and kernel).
#[derive(Clone, Copy)]
pub struct Int8Kernel {
    /// A short name (`int8-exact`, …).
    pub name: &'static str,
    /// Scratch (in `i32`s) for `call`.
    pub scratch_len: fn(&Int8Call<'_>) -> usize,
    /// Makes the plan and runs the kernel on `call`.
    pub run: Int8Run,
}

/// Every int8 entry point.
pub const INT8_KERNELS: &[Int8Kernel] = &[
    Int8Kernel {
        name: "int8-exact",
        scratch_len: |c| int8::exact::scratch_len(c.x.shape),
        run: |c, out, scratch| {
            let plan = int8::exact::Plan::new(c.x.shape.dim, &c.scales)?;
            int8::exact::attention(&plan, &c.x, out, scratch)
        },
    },
    Int8Kernel {
        name: "int8-lara",
        scratch_len: |c| int8::lara::scratch_len(c.x.shape, c.landmarks(), c.lara.proposals),
        run: |c, out, scratch| {
            let plan = int8::lara::Plan::new(c.x.shape.dim, &c.scales, &c.lara)?;
            int8::lara::attention(&plan, &c.x, c.landmarks, c.sampling(), out, scratch)
        },
    },
    Int8Kernel {
        name: "int8-rfa",
        scratch_len: |c| int8::rfa::scratch_len(c.x.shape, c.features()),
        run: |c, out, scratch| {
            let plan = int8::rfa::Plan::new(c.x.shape.dim, &c.scales, c.omega_scale, c.features())?;
            int8::rfa::attention(&plan, &c.x, c.omega, out, scratch)
        },
    },
];
