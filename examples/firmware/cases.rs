//! What the firmware example computes, shared by the bare-metal and the host builds: the six
//! `f32` kernel calls, the layer call and the six int8 kernel calls, their fixed inputs, the
//! static buffers sized by the crate's `const fn`s, and the summary of each output that is
//! compared with the expected values.

use crate::layer_weights;
use lara_attn::backend::{Backend, set_backend};
use lara_attn::int8::{self, Out, Scales};
use lara_attn::lara::{self, Params, Proposals, Weighting};
use lara_attn::layer::{Attention, Layer, Layout, Tokens};
use lara_attn::random::{default_rng, fill_standard_normal};
use lara_attn::rfa::FeatureMap;
use lara_attn::{Error, Qkv, Sampling, Shape, exact, rfa};

/// The two shapes of the issue: (n, d, C or S) = (64, 16, 8) and (256, 32, 16).
pub const SMALL: Shape = Shape::self_attention(64, 16);
/// LARA landmarks `C` and RFA features `S` at [`SMALL`].
pub const SMALL_RANK: usize = 8;
/// The larger shape.
pub const LARGE: Shape = Shape::self_attention(256, 32);
/// `C` and `S` at [`LARGE`].
pub const LARGE_RANK: usize = 16;

/// Tolerance of the comparison with the host: `|firmware − host| ≤ TOLERANCE` on every compared
/// value. Every value compared is a convex combination of values in `[-1, 1)` (outputs, and
/// means of outputs), so this is also a relative tolerance of 1e-5 with respect to `max|v|`. The
/// layer's outputs are linear maps of such combinations, of the same order here (its largest
/// compared value is 0.41).
pub const TOLERANCE: f32 = 1e-5;

/// Whether `error` passes for `case`: within [`TOLERANCE`], or exactly 0 for the int8 kernels.
pub fn passes(case: &Case, error: f32) -> bool {
    if case.kernel.is_int8() {
        error == 0.0
    } else {
        error <= TOLERANCE
    }
}

/// The whole layer: `LinearRA` with the static weights of `examples/firmware/layer_weights.rs`
/// (generated from `tests/data/firmware_layer/`: dim 64, 4 heads of d = 16, C = 8,
/// `no-param-pool`, `mis-opt`), eval mode, on a sequence of 64 tokens `x [64, 64]`.
pub const LAYER_LAYOUT: Layout = Layout::Sequence(64);
/// The layer's `C`.
const LAYER_LANDMARKS: usize = match layer_weights::CONFIG.attention {
    Attention::Lara(lara) => lara.landmarks,
    _ => 0,
};
/// The layer's scratch, from the crate's `const fn`.
pub const LAYER_SCRATCH: usize = Layer::scratch_len(&layer_weights::CONFIG, LAYER_LAYOUT);

/// Multiply-adds of one layer call, as the model defines them (`n` tokens, `dim`, `h` heads of
/// `d`, `C` landmarks): the qkv projection `n·dim·3dim`, the output projection `n·dim·dim`, and
/// per head LARA's `n·C·6d + C²·d` (key pass `n·C·2d`: `W_c·k_j` and the `kv_c` sums; `mis-opt`'s
/// normaliser `n·C·d`; query pass `n·C·3d`: `W_c·q_i`, `q̄_c·q_i` and `Σ_c sniw kv_c`; proposal
/// densities `C²·d`). The streaming layer executes `n·dim·dim + 2·C·dim·dim` more
/// ([`LAYER_MACS_EXECUTED`]).
pub const LAYER_MACS: u64 = {
    let (n, dim, heads) = (
        LAYER_LAYOUT.tokens(),
        layer_weights::CONFIG.dim,
        layer_weights::CONFIG.heads,
    );
    let (d, c) = (layer_weights::CONFIG.head_dim(), LAYER_LANDMARKS);
    (n * dim * 3 * dim + n * dim * dim + heads * (n * c * 6 * d + c * c * d)) as u64
};
/// [`LAYER_MACS`] and what the streaming layer adds: `mis-opt` projects the queries twice
/// (`n·dim·dim`), and the landmarks are projections of the `C` segment means of `x`
/// (`2·C·dim·dim`).
pub const LAYER_MACS_EXECUTED: u64 = {
    let (n, dim) = (LAYER_LAYOUT.tokens(), layer_weights::CONFIG.dim);
    LAYER_MACS + (n * dim * dim + 2 * LAYER_LANDMARKS * dim * dim) as u64
};

/// Set (to anything) at compile time, `FIRMWARE_SIZE_BASELINE` builds the example without calling
/// any kernel or the layer, to measure their flash by difference (`.ci/firmware.sh` does);
/// `FIRMWARE_SIZE_NO_LAYER` without the layer call (the kernels' flash), `FIRMWARE_SIZE_NO_KERNELS`
/// without the three kernels (the layer's flash, with its weights).
const SIZE_BASELINE: bool = option_env!("FIRMWARE_SIZE_BASELINE").is_some();
const SIZE_NO_LAYER: bool = option_env!("FIRMWARE_SIZE_NO_LAYER").is_some();
const SIZE_NO_KERNELS: bool = option_env!("FIRMWARE_SIZE_NO_KERNELS").is_some();
/// The int8 kernels are linked in every run, but in size builds (`FIRMWARE_SIZE`) only with
/// `FIRMWARE_SIZE_INT8` set: the other size figures keep their meaning, and the int8 kernels'
/// flash is the difference of a size build with and without it.
const SIZE_NO_INT8: bool =
    option_env!("FIRMWARE_SIZE").is_some() && option_env!("FIRMWARE_SIZE_INT8").is_none();

/// Set at compile time, `FIRMWARE_SIZE` builds the example for the size measurements: without
/// the sampler check, whose `logf` and `sqrtf` would otherwise be shared with the kernels and
/// vanish from their flash.
pub const SAMPLER_CHECK: bool = option_env!("FIRMWARE_SIZE").is_none();

/// Whether the firmware compares the blocked kernels with the scalar ones on small shapes
/// ([`Buffers::blocked_vs_scalar`]); not in the size builds either (it calls the kernels).
pub const TAIL_CHECK: bool = SAMPLER_CHECK;

/// Whether the firmware compares this core's int8 inner loops with the portable ones; not in
/// the size builds (the int8 code would count in the baseline's flash, or in the kernels').
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
pub const INT8_LOOP_CHECK: bool = SAMPLER_CHECK;

/// A label of this build for the machine-readable lines, set at compile time by
/// `FIRMWARE_BUILD` (`.ci/firmware.sh` labels the Cortex-M55 build without Helium `no-mve`).
pub const BUILD: &str = match option_env!("FIRMWARE_BUILD") {
    Some(label) => label,
    None => "default",
};

/// The kernels run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kernel {
    /// `exact::attention`.
    Exact,
    /// `rfa::attention` with positive features and the fixed `ω`.
    Rfa,
    /// `lara::attention`, eval mode, `mis-opt` with `alpha_coeff = 1`.
    Lara,
    /// `Layer::forward` of the `LinearRA` layer, eval mode (the shape is that of a head).
    Layer,
    /// `int8::exact::attention` (a `const` plan) on the inputs quantised per tensor, `i8` out.
    Exact8,
    /// `int8::rfa::attention`, the quantised `ω`.
    Rfa8,
    /// `int8::lara::attention`, eval mode, `mis-opt` with `alpha_coeff = 1`.
    Lara8,
}

impl Kernel {
    pub const fn name(self) -> &'static str {
        match self {
            Kernel::Exact => "exact",
            Kernel::Rfa => "rfa",
            Kernel::Lara => "lara",
            Kernel::Layer => "layer",
            Kernel::Exact8 => "exact8",
            Kernel::Rfa8 => "rfa8",
            Kernel::Lara8 => "lara8",
        }
    }

    /// Whether this is an int8 kernel (its outputs must match the host's bit for bit).
    pub const fn is_int8(self) -> bool {
        matches!(self, Kernel::Exact8 | Kernel::Rfa8 | Kernel::Lara8)
    }

    /// Whether this build calls the kernel (see [`SIZE_BASELINE`]). `FIRMWARE_ONLY`, set at
    /// compile time to one kernel's [`name`](Self::name), calls that kernel alone; set to `int8`,
    /// the three int8 kernels (one build measures all three).
    pub const fn linked(self) -> bool {
        let only = match option_env!("FIRMWARE_ONLY") {
            Some(k) => same_bytes(k, self.name()) || (self.is_int8() && same_bytes(k, "int8")),
            None => true,
        };
        only && !SIZE_BASELINE
            && match self {
                Kernel::Layer => !SIZE_NO_LAYER,
                Kernel::Exact8 | Kernel::Rfa8 | Kernel::Lara8 => !SIZE_NO_INT8,
                _ => !SIZE_NO_KERNELS,
            }
    }
}

/// Whether two strings are equal (`==` on `str` is not `const`).
const fn same_bytes(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut same = a.len() == b.len();
    let mut i = 0;
    while same && i < a.len() {
        same = a[i] == b[i];
        i += 1;
    }
    same
}

/// One kernel call: kernel, shape and `C` (LARA) or `S` (RFA) (unused by exact attention); for
/// the layer, the shape of one head (`n`, `d`, `h` heads) and `C`.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub kernel: Kernel,
    pub shape: Shape,
    pub rank: usize,
}

/// Small shapes on which the firmware compares the one-lane blocked kernels with the scalar
/// ones on the device (the host tests cannot run the assembly tile): rows, columns and inner
/// dimensions of every remainder modulo 4, odd inner dimensions, a block of 32 rows and a tail.
const TAIL_SHAPES: [(usize, usize, usize); 3] = [(5, 3, 3), (13, 7, 5), (37, 17, 11)];

/// The calls of that comparison: each kernel at each of [`TAIL_SHAPES`].
pub const TAIL_CASES: [Case; 9] = {
    let mut cases = [Case::new(Kernel::Exact, SMALL, 0); 9];
    let mut i = 0;
    while i < 9 {
        let (n, d, rank) = TAIL_SHAPES[i / 3];
        let kernel = match i % 3 {
            0 => Kernel::Exact,
            1 => Kernel::Rfa,
            _ => Kernel::Lara,
        };
        cases[i] = Case::new(kernel, Shape::self_attention(n, d), rank);
        i += 1;
    }
    cases
};

/// The largest output of [`TAIL_CASES`].
const TAIL_OUT: usize = 37 * 17;

/// Tolerance of that comparison, relative to `max(1, max|scalar|)` (the host's backend tests
/// allow 2e-5 for LARA).
pub const TAIL_TOLERANCE: f32 = 2e-5;

/// Every call, in the order of `expected::EXPECTED`: the `f32` kernels at both shapes, the
/// layer, the int8 kernels at both shapes.
pub const CASES: [Case; 13] = [
    Case::new(Kernel::Exact, SMALL, SMALL_RANK),
    Case::new(Kernel::Rfa, SMALL, SMALL_RANK),
    Case::new(Kernel::Lara, SMALL, SMALL_RANK),
    Case::new(Kernel::Exact, LARGE, LARGE_RANK),
    Case::new(Kernel::Rfa, LARGE, LARGE_RANK),
    Case::new(Kernel::Lara, LARGE, LARGE_RANK),
    Case::new(
        Kernel::Layer,
        Shape::self_attention(LAYER_LAYOUT.tokens(), layer_weights::CONFIG.head_dim())
            .with_heads(layer_weights::CONFIG.heads),
        LAYER_LANDMARKS,
    ),
    Case::new(Kernel::Exact8, SMALL, SMALL_RANK),
    Case::new(Kernel::Rfa8, SMALL, SMALL_RANK),
    Case::new(Kernel::Lara8, SMALL, SMALL_RANK),
    Case::new(Kernel::Exact8, LARGE, LARGE_RANK),
    Case::new(Kernel::Rfa8, LARGE, LARGE_RANK),
    Case::new(Kernel::Lara8, LARGE, LARGE_RANK),
];

impl Case {
    const fn new(kernel: Kernel, shape: Shape, rank: usize) -> Self {
        Case {
            kernel,
            shape,
            rank,
        }
    }

    /// The columns of the output `[n, columns]`: `d_v`, or the layer's `dim = h·d`.
    pub const fn columns(&self) -> usize {
        match self.kernel {
            Kernel::Layer => self.shape.heads * self.shape.value_dim,
            _ => self.shape.value_dim,
        }
    }

    /// Multiply-adds of the call, as `examples/bench.rs` counts them (its `flops / 2`): exact
    /// `n_q·n_k·(d + d_v)`; LARA `2·n·C·(d + d_v) + 2·n·C·d + C²·d` (the key and query passes,
    /// `mis-opt`'s `T` twice, the proposal densities); RFA `(n_q + n_k)·S·(d + d_v)` plus the
    /// projections `(n_q + n_k)·S·d` once more, as issue 11 counts them (the bench's count
    /// already holds them: [`Case::bench_macs`] is RFA without the addition); the layer: the
    /// model's [`LAYER_MACS`].
    pub const fn macs(&self) -> u64 {
        let s = self.shape;
        let n = s.queries + s.keys;
        match self.kernel {
            Kernel::Rfa => self.bench_macs() + (n * self.rank * s.dim) as u64,
            _ => self.bench_macs(),
        }
    }

    /// [`Case::macs`] as `examples/bench.rs` counts them, for RFA too.
    pub const fn bench_macs(&self) -> u64 {
        let s = self.shape;
        let (d, dv, c) = (s.dim, s.value_dim, self.rank);
        let macs = match self.kernel {
            Kernel::Exact | Kernel::Exact8 => s.queries * s.keys * (d + dv),
            Kernel::Lara | Kernel::Lara8 => {
                (s.queries + s.keys) * c * (d + dv) + 2 * s.queries * c * d + c * c * d
            }
            Kernel::Rfa | Kernel::Rfa8 => (s.queries + s.keys) * c * (d + dv),
            Kernel::Layer => return LAYER_MACS,
        };
        macs as u64
    }

    /// Length of the summary of the output: per column means, per row means, samples.
    pub const fn summary_len(&self) -> usize {
        self.columns() + self.shape.queries + SAMPLES
    }
}

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

const MAX_TOKENS: usize = max(
    max(SMALL.queries * SMALL.dim, LARGE.queries * LARGE.dim),
    LAYER_LAYOUT.tokens() * layer_weights::CONFIG.dim,
);
const MAX_OMEGA: usize = max(SMALL_RANK * SMALL.dim, LARGE_RANK * LARGE.dim);
/// Scratch of each kernel, from the crate's `const fn`s, for the larger of the two shapes.
pub const EXACT_SCRATCH: usize = max(exact::scratch_len(SMALL), exact::scratch_len(LARGE));
pub const LARA_SCRATCH: usize = max(
    lara::scratch_len(SMALL, SMALL_RANK, Proposals::Single),
    lara::scratch_len(LARGE, LARGE_RANK, Proposals::Single),
);
pub const RFA_SCRATCH: usize = max(
    rfa::scratch_len(SMALL, FeatureMap::Positive, SMALL_RANK),
    rfa::scratch_len(LARGE, FeatureMap::Positive, LARGE_RANK),
);

/// Scratch (in `i32`s) of the int8 kernels, from the crate's `const fn`s.
pub const INT8_SCRATCH: usize = max(
    max(
        int8::exact::scratch_len(LARGE),
        int8::lara::scratch_len(LARGE, LARGE_RANK, Proposals::Single),
    ),
    max(
        int8::rfa::scratch_len(LARGE, LARGE_RANK),
        int8::lara::scratch_len(SMALL, SMALL_RANK, Proposals::Single),
    ),
);

/// The quantisation scales of the int8 cases: `q`, `k` uniform in `[-2, 2)`, `v` in `[-1, 1)`
/// (max-abs / 127), the output (attention outputs average `v`: half its range) and `ω`.
const INT8_SCALES: Scales = Scales {
    q: 2.0 / 127.0,
    k: 2.0 / 127.0,
    v: 1.0 / 127.0,
    out: 0.5 / 127.0,
};
const OMEGA_SCALE: f32 = 4.0 / 127.0;

/// The layer checked by `Layer::new`, once before the calls (as a firmware does at start-up, not
/// part of a measured call); `None` in a size build that does not call it. ([`Buffers`] holds a
/// reference: its all-zero initial value keeps it in `.bss` rather than in flash.)
pub type CheckedLayer = Option<Result<Layer<'static>, Error>>;

/// [`CheckedLayer`] of the layer of `examples/firmware/layer_weights.rs`.
pub fn check_layer() -> CheckedLayer {
    (Kernel::Layer.linked()).then(|| Layer::new(layer_weights::CONFIG, layer_weights::WEIGHTS))
}

/// Every buffer of the example (one `static`: no heap, no large stack frame).
pub struct Buffers {
    q: [f32; MAX_TOKENS],
    k: [f32; MAX_TOKENS],
    v: [f32; MAX_TOKENS],
    omega: [f32; MAX_OMEGA],
    out: [f32; MAX_TOKENS],
    exact_scratch: [f32; EXACT_SCRATCH],
    lara_scratch: [f32; LARA_SCRATCH],
    rfa_scratch: [f32; RFA_SCRATCH],
    layer_scratch: [f32; LAYER_SCRATCH],
    /// The int8 cases' inputs (quantised from `q`, `k`, `v`, `ω`), output and scratch.
    q8: [i8; MAX_TOKENS],
    k8: [i8; MAX_TOKENS],
    v8: [i8; MAX_TOKENS],
    omega8: [i8; MAX_OMEGA],
    out8: [i8; MAX_TOKENS],
    int8_scratch: [i32; INT8_SCRATCH],
    /// The scalar kernels' output in [`Buffers::blocked_vs_scalar`].
    reference: [f32; TAIL_OUT],
    /// The layer (see [`set_layer`](Self::set_layer)).
    layer: Option<&'static CheckedLayer>,
    /// The shape, output columns and rank the inputs were last filled for. (No field of
    /// `Buffers` may have a niche: `None` must be all zeros, or the `static` moves from `.bss`
    /// into `.data`, a copy in flash; `.ci/firmware.sh` checks.)
    filled: Option<(Shape, usize, usize)>,
}

impl Buffers {
    pub const fn new() -> Self {
        Buffers {
            q: [0.0; MAX_TOKENS],
            k: [0.0; MAX_TOKENS],
            v: [0.0; MAX_TOKENS],
            omega: [0.0; MAX_OMEGA],
            out: [0.0; MAX_TOKENS],
            exact_scratch: [0.0; EXACT_SCRATCH],
            lara_scratch: [0.0; LARA_SCRATCH],
            rfa_scratch: [0.0; RFA_SCRATCH],
            layer_scratch: [0.0; LAYER_SCRATCH],
            q8: [0; MAX_TOKENS],
            k8: [0; MAX_TOKENS],
            v8: [0; MAX_TOKENS],
            omega8: [0; MAX_OMEGA],
            out8: [0; MAX_TOKENS],
            int8_scratch: [0; INT8_SCRATCH],
            reference: [0.0; TAIL_OUT],
            layer: None,
            filled: None,
        }
    }

    /// The layer that the layer case runs (from [`check_layer`]).
    pub fn set_layer(&mut self, layer: &'static CheckedLayer) {
        self.layer = Some(layer);
    }

    /// Fills `q`, `k`, `v` and `ω` for the case's shape, or the layer's tokens `x` (in `q`)
    /// (deterministic, bit-identical on every target: integer hashing and exact conversions
    /// only).
    pub fn prepare(&mut self, case: &Case) {
        let layer = case.kernel == Kernel::Layer;
        let key = (case.shape, case.columns(), case.rank);
        if self.filled == Some(key) {
            return;
        }
        if layer {
            // x [n, dim], about N(0, 1) per channel (as the normalised tokens entering a layer)
            let len = case.shape.queries * case.columns();
            fill_gaussian(&mut self.q[..len], 0x5000_0000 ^ len as u32);
            self.filled = Some(key);
            return;
        }
        let len = case.shape.queries * case.shape.dim;
        let seed = (case.shape.dim as u32) << 16 | case.shape.queries as u32;
        // q and k uniform in [-2, 2): logits s·q·k with a spread of about one unit.
        fill_uniform(&mut self.q[..len], seed ^ 0x1000_0000, 2.0);
        fill_uniform(&mut self.k[..len], seed ^ 0x2000_0000, 2.0);
        fill_uniform(&mut self.v[..len], seed ^ 0x3000_0000, 1.0);
        fill_gaussian(
            &mut self.omega[..case.rank * case.shape.dim],
            seed ^ 0x4000_0000,
        );
        // The int8 inputs: the same values quantised per tensor (IEEE division and rounding:
        // the same bytes on every target).
        let omega_len = case.rank * case.shape.dim;
        int8::quantize(&self.q[..len], INT8_SCALES.q, &mut self.q8[..len]);
        int8::quantize(&self.k[..len], INT8_SCALES.k, &mut self.k8[..len]);
        int8::quantize(&self.v[..len], INT8_SCALES.v, &mut self.v8[..len]);
        int8::quantize(
            &self.omega[..omega_len],
            OMEGA_SCALE,
            &mut self.omega8[..omega_len],
        );
        self.filled = Some(key);
    }

    /// Runs the case's kernel on the prepared inputs (call [`prepare`](Self::prepare) first, and
    /// [`set_layer`](Self::set_layer) for the layer).
    pub fn run(&mut self, case: &Case) -> Result<(), Error> {
        let mut result = Ok(());
        self.with_call(case, &mut |call| result = call());
        result
    }

    /// Prepares the arguments of the case's kernel in the frames above, and hands `measure` the kernel call alone:
    /// instruction counts and stack peaks cover the call, not the harness that set it up.
    /// (Not generic: one copy of every call in flash, whatever the measurement.)
    pub fn with_call(&mut self, case: &Case, measure: Measure<'_>) {
        let shape = case.shape;
        let len = shape.queries * shape.dim;
        let x = Qkv {
            shape,
            q: &self.q[..len],
            k: &self.k[..len],
            v: &self.v[..len],
            key_mask: None,
        };
        let out = &mut self.out[..shape.queries * case.columns()];
        match case.kernel {
            Kernel::Exact => {
                let scratch = &mut self.exact_scratch;
                measure(&mut || {
                    gate(Kernel::Exact.linked(), || {
                        exact::attention(&x, out, scratch)
                    })
                })
            }
            // (The parameters are built in the closure: constants there, so that only the
            // positive-feature map and the one weighting are linked, as in a firmware.)
            Kernel::Rfa => {
                let (omega, scratch) =
                    (&self.omega[..case.rank * shape.dim], &mut self.rfa_scratch);
                measure(&mut || {
                    let map = FeatureMap::Positive;
                    gate(Kernel::Rfa.linked(), || {
                        rfa::attention(&x, &rfa::Params { map, omega }, out, scratch)
                    })
                })
            }
            Kernel::Lara => {
                let (rank, scratch) = (case.rank, &mut self.lara_scratch);
                measure(&mut || {
                    let params =
                        Params::segment_means(rank, Weighting::Optimal { alpha_coeff: 1.0 });
                    gate(Kernel::Lara.linked(), || {
                        lara::attention(&x, &params, Sampling::Eval, out, scratch)
                    })
                })
            }
            Kernel::Layer if case.kernel.linked() => self.with_layer_call(case, measure),
            Kernel::Exact8 | Kernel::Rfa8 | Kernel::Lara8 if case.kernel.linked() => {
                self.with_int8_call(case, measure)
            }
            Kernel::Layer | Kernel::Exact8 | Kernel::Rfa8 | Kernel::Lara8 => {
                measure(&mut || gate(false, || Ok(())))
            }
        }
    }

    /// An int8 call: the kernel with its `const` plan (integers only), `i8` output.
    #[inline(never)]
    fn with_int8_call(&mut self, case: &Case, measure: Measure<'_>) {
        let shape = case.shape;
        let len = shape.queries * shape.dim;
        let x = int8::Qkv {
            shape,
            q: &self.q8[..len],
            k: &self.k8[..len],
            v: &self.v8[..len],
            key_mask: None,
        };
        let out = &mut self.out8[..shape.queries * shape.value_dim];
        let scratch = &mut self.int8_scratch[..];
        match case.kernel {
            Kernel::Exact8 => exact8_call(&x, out, scratch, measure),
            Kernel::Rfa8 => {
                let omega = &self.omega8[..case.rank * shape.dim];
                rfa8_call(&x, omega, out, scratch, measure)
            }
            _ => lara8_call(&x, case.rank, out, scratch, measure),
        }
    }

    /// The layer call (not inlined into [`with_call`](Self::with_call), whose frame would
    /// otherwise grow for every kernel).
    #[inline(never)]
    fn with_layer_call(&mut self, case: &Case, measure: Measure<'_>) {
        let layer = match self.layer {
            Some(Some(layer)) => layer.as_ref().map_err(|e| *e),
            _ => Err(Error::InvalidConfig("no layer: call `Buffers::set_layer`")),
        };
        let len = case.shape.queries * case.columns();
        let tokens = Tokens {
            x: &self.q[..len],
            layout: LAYER_LAYOUT,
            key_mask: None,
        };
        let (out, scratch) = (&mut self.out[..len], &mut self.layer_scratch);
        match layer {
            Ok(layer) => {
                measure(&mut || layer.forward_linear_ra(&tokens, Sampling::Eval, out, scratch))
            }
            Err(e) => measure(&mut || Err(e)),
        }
    }

    /// Runs [`TAIL_CASES`] with the scalar and the one-lane blocked kernels and returns the
    /// worst `max|blocked − scalar| / max(1, max|scalar|)`, or `None` where this build has no
    /// blocked kernels (built for size); the backend is the default one again afterwards.
    pub fn blocked_vs_scalar(&mut self) -> Result<Option<f32>, Error> {
        if !Backend::Blocked.is_available() {
            return Ok(None);
        }
        let mut worst = 0.0f32;
        for case in &TAIL_CASES {
            self.prepare(case);
            let len = case.shape.queries * case.columns();
            set_backend(Some(Backend::Scalar))?;
            let scalar = self.run(case);
            self.reference[..len].copy_from_slice(&self.out[..len]);
            set_backend(Some(Backend::Blocked))?;
            let blocked = self.run(case);
            set_backend(None)?;
            scalar.and(blocked)?;
            let (reference, ours) = (&self.reference[..len], &self.out[..len]);
            let scale = reference.iter().fold(1.0f32, |m, x| m.max(x.abs()));
            for (&a, &b) in ours.iter().zip(reference) {
                let e = (a - b).abs() / scale;
                worst = if e.is_nan() {
                    f32::INFINITY
                } else {
                    worst.max(e)
                };
            }
        }
        Ok(Some(worst))
    }

    /// The output of the last [`run`](Self::run) of `case` (an int8 case's `i8` values as
    /// `f32`, exactly: its summary then has the same bits on every target).
    pub fn output(&mut self, case: &Case) -> &[f32] {
        let len = case.shape.queries * case.columns();
        if case.kernel.is_int8() {
            for (o, &x) in self.out[..len].iter_mut().zip(&self.out8[..len]) {
                *o = f32::from(x);
            }
        }
        &self.out[..len]
    }
}

/// `call()` where this build calls the kernel, else `Ok(())`: a size build that does not call a
/// kernel keeps the harness around the call (the flash of "kernels alone" is the difference
/// with a build that calls none). `linked` must be a constant in the closure that calls this
/// (the closure is called through a vtable: a captured flag would link the kernel).
#[inline(always)]
fn gate(linked: bool, call: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
    if linked {
        call()
    } else {
        core::hint::black_box(Ok(()))
    }
}

/// A kernel call with its arguments bound, as [`Buffers::with_call`] hands it out.
pub type Call<'c> = &'c mut dyn FnMut() -> Result<(), Error>;

/// What [`Buffers::with_call`] does with the call (its results go out through its captures).
pub type Measure<'m> = &'m mut dyn FnMut(Call<'_>);

/// The int8 plans of the two shapes (index [`plan_index`]), computed by the compiler (the
/// constructors are `const fn`): as in a product with its model's scales, the firmware links no
/// plan code and no float arithmetic for them.
static EXACT8_PLANS: [Result<int8::exact::Plan, Error>; 2] = [
    int8::exact::Plan::new(SMALL.dim, &INT8_SCALES),
    int8::exact::Plan::new(LARGE.dim, &INT8_SCALES),
];
static RFA8_PLANS: [Result<int8::rfa::Plan, Error>; 2] = [
    int8::rfa::Plan::new(SMALL.dim, &INT8_SCALES, OMEGA_SCALE, SMALL_RANK),
    int8::rfa::Plan::new(LARGE.dim, &INT8_SCALES, OMEGA_SCALE, LARGE_RANK),
];
const LARA8_CONFIG: int8::lara::Config =
    int8::lara::Config::eval(Weighting::Optimal { alpha_coeff: 1.0 });
static LARA8_PLANS: [Result<int8::lara::Plan, Error>; 2] = [
    int8::lara::Plan::new(SMALL.dim, &INT8_SCALES, &LARA8_CONFIG),
    int8::lara::Plan::new(LARGE.dim, &INT8_SCALES, &LARA8_CONFIG),
];

/// The index of `shape`'s plans (the small or the large case).
fn plan_index(shape: Shape) -> usize {
    usize::from(shape != SMALL)
}

/// The int8 calls: the plan from flash, then `measure` of the kernel.
#[inline(never)]
fn exact8_call(x: &int8::Qkv<'_>, out: &mut [i8], scratch: &mut [i32], measure: Measure<'_>) {
    match &EXACT8_PLANS[plan_index(x.shape)] {
        Ok(plan) => measure(&mut || int8::exact::attention(plan, x, Out::I8(out), scratch)),
        Err(e) => measure(&mut || Err(*e)),
    }
}

#[inline(never)]
fn rfa8_call(
    x: &int8::Qkv<'_>,
    omega: &[i8],
    out: &mut [i8],
    scratch: &mut [i32],
    measure: Measure<'_>,
) {
    match &RFA8_PLANS[plan_index(x.shape)] {
        Ok(plan) => measure(&mut || int8::rfa::attention(plan, x, omega, Out::I8(out), scratch)),
        Err(e) => measure(&mut || Err(*e)),
    }
}

#[inline(never)]
fn lara8_call(
    x: &int8::Qkv<'_>,
    rank: usize,
    out: &mut [i8],
    scratch: &mut [i32],
    measure: Measure<'_>,
) {
    match &LARA8_PLANS[plan_index(x.shape)] {
        Ok(plan) => measure(&mut || {
            // (the variants made in the closure, which is called through `dyn`: constants
            // there, so that the call links the code of segment means in eval mode alone)
            let landmarks = int8::lara::Landmarks::SegmentMeans(rank);
            let sampling = int8::lara::Sampling::Eval;
            int8::lara::attention(plan, x, landmarks, sampling, Out::I8(out), scratch)
        }),
        Err(e) => measure(&mut || Err(*e)),
    }
}

/// Sampled output elements per case.
const SAMPLES: usize = 32;

/// The summary of an output `[n, d_v]` (the layer's `[n, dim]`) that is compared with the host:
/// the mean of every column, the mean of every row, and 32 single elements spread over rows and
/// columns. A wrong element shows in its row mean and its column mean.
pub fn summary(case: Case, out: &[f32]) -> impl Iterator<Item = f32> + '_ {
    let (n, dv) = (case.shape.queries, case.columns());
    let columns = (0..dv).map(move |j| {
        let mut sum = 0.0f32;
        for row in out.chunks_exact(dv) {
            sum += row[j];
        }
        sum / n as f32
    });
    let rows = out
        .chunks_exact(dv)
        .map(move |row| row.iter().sum::<f32>() / dv as f32);
    let samples = (0..SAMPLES).map(move |i| out[(i * n / SAMPLES) * dv + (i * 7) % dv]);
    columns.chain(rows).chain(samples)
}

/// `max |firmware − expected|` over the summary of `case`'s output (infinite if the expected
/// summary does not have the right length or a value is NaN). For an int8 case any difference
/// is at least 1/n (integer outputs): its check is `max_error == 0`, the same bits.
pub fn max_error(case: &Case, out: &[f32], expected: &[f32]) -> f32 {
    if expected.len() != case.summary_len() {
        return f32::INFINITY;
    }
    let mut worst = 0.0f32;
    for (x, &y) in summary(*case, out).zip(expected) {
        let e = (x - y).abs();
        if e.is_nan() {
            return f32::INFINITY;
        }
        worst = worst.max(e);
    }
    worst
}

/// A 32-bit integer hash (lowbias32), deterministic on every target.
fn hash(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// Uniform in `[-1, 1)` on a 2^-23 grid: the conversion is exact.
fn uniform(seed: u32, i: u32) -> f32 {
    let h = hash(seed.wrapping_add(i.wrapping_mul(0x9e37_79b9)));
    ((h >> 8) as i32 - (1 << 23)) as f32 * (1.0 / 8_388_608.0)
}

fn fill_uniform(x: &mut [f32], seed: u32, scale: f32) {
    for (i, x) in x.iter_mut().enumerate() {
        *x = scale * uniform(seed, i as u32);
    }
}

/// Approximately `N(0, 1)` (Irwin–Hall: the sum of four uniforms, scaled to unit variance).
fn fill_gaussian(x: &mut [f32], seed: u32) {
    for (i, x) in x.iter_mut().enumerate() {
        let base = 4 * i as u32;
        let sum = (0..4).map(|j| uniform(seed, base + j)).sum::<f32>();
        *x = 0.866_025_4 * sum;
    }
}

/// The seed of the sampler check.
const SAMPLER_SEED: u64 = 2024;

/// The sampler check: 256 standard normals drawn from `default_rng(2024)`, as a 32-bit FNV-1a
/// hash of their bits. The sampler computes in `f32` only, so the hash is the same on every
/// target. (Not in the size builds: see [`SAMPLER_CHECK`].)
pub fn sampler_hash() -> u32 {
    let mut draws = [0.0f32; 256];
    fill_standard_normal(&mut default_rng(SAMPLER_SEED), &mut draws);
    draws.iter().fold(0x811c_9dc5u32, |hash, x| {
        (hash ^ x.to_bits()).wrapping_mul(0x0100_0193)
    })
}
