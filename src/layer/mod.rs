//! Whole attention layers with their trained weights, as the official modules
//! (`MultiheadAttention`, `LinearRA`, `RandomizedAttention`, `KernelizedAttention` of the
//! paper's code) compute `forward(x)`:
//!
//! ```text
//! qkv     = x W_qkvᵀ + b_qkv          [n, 3·dim]   (no b_qkv with qkv_bias = False)
//! q, k, v = the three thirds of qkv; head j = columns [j·d, (j+1)·d), d = dim / h
//! o_j     = attention of head j       (softmax, LARA, RA or random features)
//! out     = concat_j(o_j) W_projᵀ + b_proj
//! ```
//!
//! `x` is `[n, dim]` ([`Layout::Sequence`]) or `[H, W, dim]` ([`Layout::Grid`], token
//! `t = y·W + x`), and `out` has the layout of `x`.
//!
//! The weights are the module's `state_dict`, borrowed: [`Weights::from_state_dict`] takes
//! them by key (`qkv.weight`, `proj.bias`, `q_bar_gen.2.weight`, ...), [`Layer::new`] checks
//! every tensor against the [`Config`] once, and [`Layer::forward`] runs on any number of
//! inputs without allocating. On a host the tensors come from a folder of `<key>.npy` files;
//! in firmware from `static` arrays (the README shows the path from a PyTorch model).
//!
//! # Working memory
//! [`Layer::scratch_len`] is a `const fn` of the configuration and the layout.
//! - **LARA** streams: no `[n, d]` tensor is held, with every generator, 1-D and 2-D. The
//!   landmarks are means, and a mean of projections is the projection of a mean, so `q̄`, `k̄`
//!   (and `-vmixed`'s `v̄`) are projected from segment means or pooled cells of `x` itself
//!   (overlapping 2-D cells are no obstacle: each cell is a mean of tokens of `x`); for
//!   `adaptive-1d` the per-token `Linear` + `LayerNorm` runs token by token into running segment
//!   sums. The key pass and the query pass then project blocks of tokens as they go and add each
//!   block's share of the output projection into `out`. The price is projecting `q` twice under
//!   `mis-opt` (its normaliser is a pass over the queries of its own): a third more projection
//!   work than holding `q`.
//! - **Softmax, RA and random features** hold one head's `q`, `k`, `v` and output, `4·n·d`
//!   floats: softmax and RA weigh every key for every query (each query needs the keys whole),
//!   and the official Performer features take one maximum over all keys before any key can be
//!   summed.
//!
//! # Example
//! ```
//! use lara_attn::Sampling;
//! use lara_attn::layer::{Attention, Config, Layer, LaraConfig, Layout, Tokens, Weights};
//!
//! const CONFIG: Config = Config::new(8, 2, Attention::Lara(LaraConfig::segment_means(4)));
//! const LAYOUT: Layout = Layout::Sequence(16);
//! // The state_dict of the module, e.g. from `static` arrays generated from `.npy` files.
//! let (qkv_weight, qkv_bias) = ([0.01f32; 3 * 8 * 8], [0.0f32; 3 * 8]);
//! let (proj_weight, proj_bias) = ([0.02f32; 8 * 8], [0.0f32; 8]);
//! let weights = Weights::from_state_dict(&CONFIG, |key| match key {
//!     "qkv.weight" => Some(&qkv_weight[..]),
//!     "qkv.bias" => Some(&qkv_bias[..]),
//!     "proj.weight" => Some(&proj_weight[..]),
//!     "proj.bias" => Some(&proj_bias[..]),
//!     _ => None,
//! })?;
//! let layer = Layer::new(CONFIG, weights)?;
//!
//! let x = [0.5f32; 16 * 8];
//! let mut out = [0.0f32; 16 * 8];
//! let mut scratch = [0.0f32; Layer::scratch_len(&CONFIG, LAYOUT)];
//! let tokens = Tokens { x: &x, layout: LAYOUT, key_mask: None };
//! layer.forward(&tokens, Sampling::Eval, &mut out, &mut scratch)?;
//! # Ok::<(), lara_attn::Error>(())
//! ```

mod linear;
mod linear_ra;
mod quadratic;

use crate::error::{Arg, Dim, Error};
use crate::inputs::{Noise, Sampling, with_noise};
use crate::lara::{Proposals, Weighting};
use crate::random::NoiseScale;
use crate::rfa::FeatureMap;
use crate::shape::{Shape, check_finite, checked_len, expect_len, take_scratch};
use crate::simd::{self, Available, Backend};

/// A layer's configuration: the arguments of the official module's constructor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// The model dimension `dim` (`x` is `[n, dim]`).
    pub dim: usize,
    /// The number of heads `h`; the head dimension is `d = dim / h`.
    pub heads: usize,
    /// Whether the qkv projection has a bias (the official `qkv_bias`, `True` by default).
    pub qkv_bias: bool,
    /// The attention of every head.
    pub attention: Attention,
}

/// The attention of a layer: which official module.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Attention {
    /// `MultiheadAttention`: exact softmax attention, scale `d^-1/2`.
    Softmax,
    /// `LinearRA`: LARA with its proposal generator.
    Lara(LaraConfig),
    /// `RandomizedAttention` with the official `num_samples` (`0`: key average, `-1`:
    /// attention-weighted mean, `1`: a sampled key).
    Randomized(RandomizedMean),
    /// `KernelizedAttention` with `proj_method = 'favorp'` ([`FeatureMap::Positive`]) or
    /// `'fourier'` ([`FeatureMap::Trigonometric`]) and `approx_attn_dim = features`, in eval
    /// mode: the projection is the module's `eval_proj` buffer `[h, S, d]`.
    Kernelized {
        /// The feature map.
        map: FeatureMap,
        /// The number of random projections `S` (the official `approx_attn_dim`).
        features: usize,
    },
}

/// The proposal mean of `RandomizedAttention` (its `num_samples`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomizedMean {
    /// `num_samples = 0`: `mu_i = q_i + mean_j k_j`.
    KeyAverage,
    /// `num_samples = -1`: `mu_i = q_i + Σ_j softmax_j(s·q_i·k_j) k_j`.
    AttentionWeighted,
    /// `num_samples = 1`: `mu_i = q_i + k_J`, `J` drawn from the attention row (needs
    /// [`Sampling::Draw`]).
    SampledKey,
}

/// `LinearRA`'s options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LaraConfig {
    /// The official `num_landmarks` `C`: 1-D inputs use `min(C, n)` segments, 2-D inputs pool
    /// to `s × s` cells, `s = ⌊√C⌋` (as `AdaptiveAvgPool2d`, also when `s` exceeds a side of the
    /// grid: cells then repeat tokens).
    pub landmarks: usize,
    /// The official `proposal_gen` without its `-mixed` / `-vmixed` suffix.
    pub generator: ProposalGen,
    /// The official `pool_module_type`.
    pub pool_module: PoolModule,
    /// The `-mixed` / `-vmixed` suffix of `proposal_gen` (2-D inputs only, as in the official
    /// code: 1-D inputs ignore it).
    pub mixing: Mixing,
    /// The official `mis_type` (and `alpha_coeff`).
    pub weighting: Weighting,
    /// The official `use_antithetics` / `use_multisample` (sampled mode only).
    pub proposals: Proposals,
    /// The scale of the proposal noise in sampled mode.
    pub noise_scale: NoiseScale,
}

/// How `LinearRA` makes its landmarks `q̄`, `k̄` (the official `proposal_gen`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposalGen {
    /// `'pool'` (the official default): 2-D inputs pool to `s × s` cells, then `Linear` +
    /// `LayerNorm` (`q_bar_gen.2`, `q_bar_gen.3`, likewise `k_bar_gen`); 1-D inputs use
    /// segment means.
    Pool,
    /// `'no-param-pool'`: the means alone (segment means in 1-D, pooled cells in 2-D); the
    /// official choice for running a softmax-trained model with LARA.
    NoParamPool,
    /// `'adaptive-1d'` (1-D inputs only): `LayerNorm(Linear(q_t))` per token and head
    /// (`q_bar_gen.0`, `q_bar_gen.1`), then segment means.
    Adaptive1d,
}

/// The channels of `LinearRA`'s generator (the official `pool_module_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolModule {
    /// `'light'` (the default): per head, `d` channels.
    Light,
    /// `'dense'`: all heads at once, `dim` channels (channel `j·d + e` is head `j`'s `e`).
    Dense,
}

/// The key-landmark mixing of the official `proposal_gen` suffixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mixing {
    /// No suffix.
    None,
    /// `'-mixed'`: `k̄_p ← Σ_c softmax_c(s · k̄_p·k̄_c) k̄_c`.
    Mixed,
    /// `'-vmixed'`: as `-mixed` with `log(‖v̄_c‖ + 1e-4)` added to the logits, `v̄` the
    /// pooled values.
    VMixed,
}

impl LaraConfig {
    /// The official defaults: 49 landmarks, `'pool'`, `'light'`, `mis-opt` with
    /// `alpha_coeff = 1`, single proposals, the official noise.
    pub const fn official() -> Self {
        LaraConfig {
            landmarks: 49,
            generator: ProposalGen::Pool,
            pool_module: PoolModule::Light,
            mixing: Mixing::None,
            weighting: Weighting::Optimal { alpha_coeff: 1.0 },
            proposals: Proposals::Single,
            noise_scale: NoiseScale::Official,
        }
    }

    /// `'no-param-pool'` with `landmarks` landmarks and the other official defaults: the
    /// configuration that runs a softmax-trained model with LARA (no generator weights).
    pub const fn segment_means(landmarks: usize) -> Self {
        LaraConfig {
            landmarks,
            generator: ProposalGen::NoParamPool,
            ..LaraConfig::official()
        }
    }
}

impl Config {
    /// A layer of `dim` channels and `heads` heads with a qkv bias (the official default).
    pub const fn new(dim: usize, heads: usize, attention: Attention) -> Self {
        Config {
            dim,
            heads,
            qkv_bias: true,
            attention,
        }
    }

    /// This configuration with or without the qkv bias.
    pub const fn with_qkv_bias(self, qkv_bias: bool) -> Self {
        Config { qkv_bias, ..self }
    }

    /// The head dimension `d = dim / h` (0 for zero heads).
    pub const fn head_dim(&self) -> usize {
        match self.dim.checked_div(self.heads) {
            Some(d) => d,
            None => 0,
        }
    }

    /// The generator tensors this configuration needs, with their official key prefix.
    const fn generator_keys(&self) -> Option<(GeneratorKeys, GeneratorKeys)> {
        match self.attention {
            Attention::Lara(LaraConfig {
                generator: ProposalGen::Pool,
                ..
            }) => Some((GeneratorKeys::POOL_Q, GeneratorKeys::POOL_K)),
            Attention::Lara(LaraConfig {
                generator: ProposalGen::Adaptive1d,
                ..
            }) => Some((GeneratorKeys::ADAPTIVE_Q, GeneratorKeys::ADAPTIVE_K)),
            _ => None,
        }
    }

    /// The channels of the generator's `Linear` and `LayerNorm`: `dim` for `'dense'`, else `d`.
    const fn generator_channels(&self) -> usize {
        match self.attention {
            Attention::Lara(LaraConfig {
                pool_module: PoolModule::Dense,
                ..
            }) => self.dim,
            _ => self.head_dim(),
        }
    }

    /// Every tensor of the `state_dict` this configuration reads, with its shape: what
    /// [`Weights::from_state_dict`] asks for and [`Layer::new`] checks.
    pub fn weight_specs(&self) -> impl Iterator<Item = WeightSpec> + use<> {
        let (dim, d) = (self.dim, self.head_dim());
        let mut specs = [None; 12];
        let mut push = |spec: WeightSpec| {
            if let Some(slot) = specs.iter_mut().find(|slot| slot.is_none()) {
                *slot = Some(spec);
            }
        };
        push(WeightSpec::matrix(QKV_WEIGHT, dim.saturating_mul(3), dim));
        if self.qkv_bias {
            push(WeightSpec::vector(QKV_BIAS, dim.saturating_mul(3)));
        }
        push(WeightSpec::matrix(PROJ_WEIGHT, dim, dim));
        push(WeightSpec::vector(PROJ_BIAS, dim));
        if let Some((q_keys, k_keys)) = self.generator_keys() {
            let channels = self.generator_channels();
            for keys in [q_keys, k_keys] {
                push(WeightSpec::matrix(keys.linear_weight, channels, channels));
                push(WeightSpec::vector(keys.linear_bias, channels));
                push(WeightSpec::vector(keys.norm_weight, channels));
                push(WeightSpec::vector(keys.norm_bias, channels));
            }
        }
        if let Attention::Kernelized { features, .. } = self.attention {
            push(WeightSpec {
                key: EVAL_PROJ,
                shape: [self.heads, features, d],
                rank: 3,
            });
        }
        specs.into_iter().flatten()
    }

    /// Checks the configuration alone (dimensions, landmarks, features, `alpha_coeff`), as
    /// [`Layer::new`] does before it looks at the weights.
    ///
    /// # Errors
    /// [`Error::ZeroDimension`], [`Error::ZeroLandmarks`], [`Error::ZeroFeatures`],
    /// [`Error::InvalidConfig`] (e.g. `dim` not a multiple of the heads),
    /// [`Error::NonFinite`]`(`[`Arg::AlphaCoeff`]`)`, [`Error::SizeOverflow`].
    pub fn check(&self) -> Result<(), Error> {
        if self.heads == 0 {
            return Err(Error::ZeroDimension(Dim::Heads));
        }
        if self.dim == 0 {
            return Err(Error::ZeroDimension(Dim::Model));
        }
        if !self.dim.is_multiple_of(self.heads) {
            return Err(Error::InvalidConfig(
                "dim is not a multiple of the number of heads",
            ));
        }
        // The largest tensor, qkv.weight, must have a length.
        checked_len(checked_len(3, self.dim)?, self.dim)?;
        match self.attention {
            Attention::Lara(lara) => {
                if lara.landmarks == 0 {
                    return Err(Error::ZeroLandmarks);
                }
                if let Weighting::Optimal { alpha_coeff } = lara.weighting
                    && !alpha_coeff.is_finite()
                {
                    return Err(Error::NonFinite(Arg::AlphaCoeff));
                }
                if lara.generator == ProposalGen::Adaptive1d
                    && lara.pool_module == PoolModule::Dense
                    && self.heads > 1
                {
                    return Err(Error::InvalidConfig(
                        "adaptive-1d runs per head: a dense generator needs one head",
                    ));
                }
            }
            Attention::Kernelized { features: 0, .. } => return Err(Error::ZeroFeatures),
            Attention::Kernelized { features, .. } => {
                checked_len(checked_len(self.heads, features)?, self.head_dim())?;
            }
            Attention::Softmax | Attention::Randomized(_) => {}
        }
        Ok(())
    }
}

/// How the tokens `x` are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A sequence of `n` tokens, `x [n, dim]`.
    Sequence(usize),
    /// An `H × W` grid of tokens, `x [H, W, dim]` (token `t = y·W + x`).
    Grid {
        /// `H`, the number of grid rows.
        height: usize,
        /// `W`, the number of grid columns.
        width: usize,
    },
}

impl Layout {
    /// The number of tokens `n` (saturating).
    pub const fn tokens(self) -> usize {
        match self {
            Layout::Sequence(n) => n,
            Layout::Grid { height, width } => height.saturating_mul(width),
        }
    }
}

/// The input of a layer: the tokens, their layout and an optional key padding mask.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tokens<'a> {
    /// `x [n, dim]` or `[H, W, dim]`, row-major.
    pub x: &'a [f32],
    /// How `x` is laid out.
    pub layout: Layout,
    /// The official `key_padding_mask` `[n]`, `true` for a padding token. `LinearRA` on a
    /// sequence also zeroes the padded tokens' `q`, `k`, `v` (so padded queries still get an
    /// output, as in the official code); every layer gives padded keys no weight.
    /// `RandomizedAttention` ignores the mask in the official code, so it refuses one here.
    pub key_mask: Option<&'a [bool]>,
}

/// One tensor of a `state_dict`: its key and shape (`rank` leading entries of `shape`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightSpec {
    /// The `state_dict` key, e.g. `"qkv.weight"`.
    pub key: &'static str,
    /// The shape, `rank` entries used.
    pub shape: [usize; 3],
    /// The number of dimensions.
    pub rank: usize,
}

impl WeightSpec {
    const fn matrix(key: &'static str, rows: usize, cols: usize) -> Self {
        WeightSpec {
            key,
            shape: [rows, cols, 1],
            rank: 2,
        }
    }

    const fn vector(key: &'static str, len: usize) -> Self {
        WeightSpec {
            key,
            shape: [len, 1, 1],
            rank: 1,
        }
    }

    /// The number of elements (saturating).
    pub const fn len(&self) -> usize {
        self.shape[0]
            .saturating_mul(self.shape[1])
            .saturating_mul(self.shape[2])
    }

    /// Whether the tensor has no element.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const QKV_WEIGHT: &str = "qkv.weight";
const QKV_BIAS: &str = "qkv.bias";
const PROJ_WEIGHT: &str = "proj.weight";
const PROJ_BIAS: &str = "proj.bias";
const EVAL_PROJ: &str = "eval_proj";

/// The keys of one generator's `Linear` and `LayerNorm`.
#[derive(Clone, Copy)]
struct GeneratorKeys {
    linear_weight: &'static str,
    linear_bias: &'static str,
    norm_weight: &'static str,
    norm_bias: &'static str,
}

impl GeneratorKeys {
    /// `nn.Sequential(AdaptiveAvgPool2d, FlattenTranspose, Linear, LayerNorm)`.
    const POOL_Q: Self = GeneratorKeys {
        linear_weight: "q_bar_gen.2.weight",
        linear_bias: "q_bar_gen.2.bias",
        norm_weight: "q_bar_gen.3.weight",
        norm_bias: "q_bar_gen.3.bias",
    };
    const POOL_K: Self = GeneratorKeys {
        linear_weight: "k_bar_gen.2.weight",
        linear_bias: "k_bar_gen.2.bias",
        norm_weight: "k_bar_gen.3.weight",
        norm_bias: "k_bar_gen.3.bias",
    };
    /// `nn.Sequential(Linear, LayerNorm)`.
    const ADAPTIVE_Q: Self = GeneratorKeys {
        linear_weight: "q_bar_gen.0.weight",
        linear_bias: "q_bar_gen.0.bias",
        norm_weight: "q_bar_gen.1.weight",
        norm_bias: "q_bar_gen.1.bias",
    };
    const ADAPTIVE_K: Self = GeneratorKeys {
        linear_weight: "k_bar_gen.0.weight",
        linear_bias: "k_bar_gen.0.bias",
        norm_weight: "k_bar_gen.1.weight",
        norm_bias: "k_bar_gen.1.bias",
    };
}

/// A layer's `state_dict`, borrowed: one row-major `f32` slice per tensor, named after its
/// key.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Weights<'a> {
    /// `qkv.weight` `[3·dim, dim]`.
    pub qkv_weight: &'a [f32],
    /// `qkv.bias` `[3·dim]` (with `qkv_bias`).
    pub qkv_bias: Option<&'a [f32]>,
    /// `proj.weight` `[dim, dim]`.
    pub proj_weight: &'a [f32],
    /// `proj.bias` `[dim]`.
    pub proj_bias: &'a [f32],
    /// `LinearRA`'s `q_bar_gen` (`'pool'`: `.2`, `.3`; `'adaptive-1d'`: `.0`, `.1`).
    pub q_bar_gen: Option<Generator<'a>>,
    /// `LinearRA`'s `k_bar_gen`.
    pub k_bar_gen: Option<Generator<'a>>,
    /// `KernelizedAttention`'s `eval_proj` `[h, S, d]`.
    pub eval_proj: Option<&'a [f32]>,
}

/// The `Linear` + `LayerNorm` of a `LinearRA` proposal generator.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Generator<'a> {
    /// The `Linear` weight `[c, c]` (`c = d`, or `dim` for `'dense'`).
    pub linear_weight: &'a [f32],
    /// The `Linear` bias `[c]`.
    pub linear_bias: &'a [f32],
    /// The `LayerNorm` weight `γ [c]`.
    pub norm_weight: &'a [f32],
    /// The `LayerNorm` bias `β [c]`.
    pub norm_bias: &'a [f32],
}

impl<'a> Weights<'a> {
    /// The weights `config` needs, looked up by their `state_dict` key (see
    /// [`Config::weight_specs`]); keys the configuration does not read are never asked for.
    ///
    /// # Errors
    /// [`Error::MissingWeight`] naming the first key `tensor` has no slice for.
    pub fn from_state_dict(
        config: &Config,
        mut tensor: impl FnMut(&'static str) -> Option<&'a [f32]>,
    ) -> Result<Self, Error> {
        let mut get = |key: &'static str| tensor(key).ok_or(Error::MissingWeight(key));
        let mut generator = |keys: GeneratorKeys| -> Result<Generator<'a>, Error> {
            Ok(Generator {
                linear_weight: get(keys.linear_weight)?,
                linear_bias: get(keys.linear_bias)?,
                norm_weight: get(keys.norm_weight)?,
                norm_bias: get(keys.norm_bias)?,
            })
        };
        let (q_bar_gen, k_bar_gen) = match config.generator_keys() {
            Some((q_keys, k_keys)) => (Some(generator(q_keys)?), Some(generator(k_keys)?)),
            None => (None, None),
        };
        let mut get = |key: &'static str| tensor(key).ok_or(Error::MissingWeight(key));
        Ok(Weights {
            qkv_weight: get(QKV_WEIGHT)?,
            qkv_bias: if config.qkv_bias {
                Some(get(QKV_BIAS)?)
            } else {
                None
            },
            proj_weight: get(PROJ_WEIGHT)?,
            proj_bias: get(PROJ_BIAS)?,
            q_bar_gen,
            k_bar_gen,
            eval_proj: match config.attention {
                Attention::Kernelized { .. } => Some(get(EVAL_PROJ)?),
                _ => None,
            },
        })
    }

    /// The slice of the tensor `key` (one of [`Config::weight_specs`]), if present.
    fn tensor(&self, key: &str) -> Option<&'a [f32]> {
        let generator = |gen_: Option<Generator<'a>>, keys: [GeneratorKeys; 2]| {
            let gen_ = gen_?;
            keys.iter().find_map(|keys| match key {
                k if k == keys.linear_weight => Some(gen_.linear_weight),
                k if k == keys.linear_bias => Some(gen_.linear_bias),
                k if k == keys.norm_weight => Some(gen_.norm_weight),
                k if k == keys.norm_bias => Some(gen_.norm_bias),
                _ => None,
            })
        };
        match key {
            QKV_WEIGHT => Some(self.qkv_weight),
            QKV_BIAS => self.qkv_bias,
            PROJ_WEIGHT => Some(self.proj_weight),
            PROJ_BIAS => Some(self.proj_bias),
            EVAL_PROJ => self.eval_proj,
            _ if key.starts_with('q') => generator(
                self.q_bar_gen,
                [GeneratorKeys::POOL_Q, GeneratorKeys::ADAPTIVE_Q],
            ),
            _ => generator(
                self.k_bar_gen,
                [GeneratorKeys::POOL_K, GeneratorKeys::ADAPTIVE_K],
            ),
        }
    }
}

/// A layer: a checked configuration with its weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layer<'w> {
    config: Config,
    weights: Weights<'w>,
}

impl<'w> Layer<'w> {
    /// Checks `config` and every tensor it needs in `weights` (present, of the configured
    /// shape, finite).
    ///
    /// # Errors
    /// [`Error::ZeroDimension`], [`Error::ZeroLandmarks`], [`Error::ZeroFeatures`] or
    /// [`Error::InvalidConfig`] for a configuration the official module cannot take (e.g.
    /// `dim` not a multiple of the heads), [`Error::NonFinite`]`(`[`Arg::AlphaCoeff`]`)`;
    /// [`Error::MissingWeight`], [`Error::WeightShape`] or [`Error::NonFiniteWeight`] naming
    /// the tensor's key.
    pub fn new(config: Config, weights: Weights<'w>) -> Result<Self, Error> {
        config.check()?;
        for spec in config.weight_specs() {
            let tensor = weights
                .tensor(spec.key)
                .ok_or(Error::MissingWeight(spec.key))?;
            if tensor.len() != spec.len() {
                return Err(Error::WeightShape {
                    key: spec.key,
                    expected: spec.len(),
                    actual: tensor.len(),
                });
            }
            check_finite(Arg::Queries, tensor).map_err(|_| Error::NonFiniteWeight(spec.key))?;
        }
        Ok(Layer { config, weights })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Scratch (in `f32`s) that [`forward`](Self::forward) needs on this target for inputs of
    /// `layout`: [`scratch_len_for`](Self::scratch_len_for) the backends compiled here (the
    /// largest of them). Independent of the number of tokens for `LinearRA`.
    pub const fn scratch_len(config: &Config, layout: Layout) -> usize {
        Self::scratch_len_for_tiles(config, layout, simd::COMPILED)
    }

    /// Scratch (in `f32`s) that [`forward`](Self::forward) needs when it runs on `backend`.
    pub const fn scratch_len_for(backend: Backend, config: &Config, layout: Layout) -> usize {
        Self::scratch_len_for_tiles(config, layout, backend.is_blocked())
    }

    const fn scratch_len_for_tiles(config: &Config, layout: Layout, tiles: bool) -> usize {
        match config.attention {
            Attention::Lara(lara) => linear_ra::scratch_len(config, &lara, layout, tiles),
            _ => quadratic::scratch_len(config, layout, tiles),
        }
    }

    /// The length of the noise `eps` that sampled mode takes: `LinearRA` `[h, R, d]` with
    /// `R` = [`Proposals::noise_rows`] of its `C'` landmarks (`min(C, n)` for a sequence,
    /// `⌊√C⌋²` for a grid), `RandomizedAttention` `[h, n, d]`; 0 for the others (saturating).
    pub const fn noise_len(config: &Config, layout: Layout) -> usize {
        let rows = match config.attention {
            Attention::Lara(lara) => lara
                .proposals
                .noise_rows(linear_ra::landmark_count(&lara, layout)),
            Attention::Randomized(_) => layout.tokens(),
            Attention::Softmax | Attention::Kernelized { .. } => 0,
        };
        rows.saturating_mul(config.head_dim())
            .saturating_mul(config.heads)
    }

    /// The layer's output for `tokens` into `out` (the layout of `x`).
    ///
    /// `sampling`: [`Sampling::Eval`] for the modules in `eval()`; `LinearRA` and
    /// `RandomizedAttention` also take noise `eps` of [`noise_len`](Self::noise_len)
    /// (`[h, R, d]`, the official `torch.randn_like(mu)`) or a generator.
    ///
    /// # Errors
    /// Checked before anything is written: `x`, `out` or the mask of another length than the
    /// layout implies ([`Error::LengthMismatch`]), an empty layout, a non-finite `x`, a mask
    /// that masks every token, `adaptive-1d` on a grid, sampled mode for a module without one, a mask for
    /// `RandomizedAttention` ([`Error::InvalidConfig`]), noise of the wrong length, scratch
    /// shorter than [`scratch_len`](Self::scratch_len).
    ///
    /// For finite inputs within the kernels' documented range the output is finite; inputs so
    /// large that a projection overflows give [`Error::NonFinite`] from the per-head
    /// estimator of softmax, RA and random-feature layers, after earlier heads have written
    /// their share of `out`.
    pub fn forward(
        &self,
        tokens: &Tokens<'_>,
        sampling: Sampling<'_>,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        match self.config.attention {
            Attention::Lara(_) => self.forward_linear_ra(tokens, sampling, out, scratch),
            _ => self.forward_quadratic(tokens, sampling, out, scratch),
        }
    }

    /// [`forward`](Self::forward) of a `LinearRA` layer, for firmware: a program that calls
    /// this (and not `forward`) links LARA's code and none of the other modules', and with a
    /// constant `sampling` (e.g. [`Sampling::Eval`]) only that sampling's code.
    ///
    /// # Errors
    /// Those of [`forward`](Self::forward); [`Error::InvalidConfig`] for another module.
    #[inline(always)]
    pub fn forward_linear_ra(
        &self,
        tokens: &Tokens<'_>,
        sampling: Sampling<'_>,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        with_noise!(sampling, |noise| self
            .run_linear_ra(tokens, noise, out, scratch))
    }

    /// [`forward_linear_ra`](Self::forward_linear_ra) with the noise `N`.
    #[inline(never)]
    fn run_linear_ra<N: Noise>(
        &self,
        tokens: &Tokens<'_>,
        noise: N,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let Attention::Lara(lara) = self.config.attention else {
            return Err(Error::InvalidConfig(
                "forward_linear_ra runs LinearRA layers only",
            ));
        };
        let (backend, scratch) = self.check_call(tokens, out, scratch)?;
        let count = linear_ra::check(&lara, tokens.layout)?;
        let config = &self.config;
        let head_shape = Shape::self_attention(tokens.layout.tokens(), config.head_dim());
        let rows = lara.proposals.noise_rows(count);
        noise.check(head_shape.with_heads(config.heads), rows)?;
        let args = linear_ra::Args {
            layer: self,
            lara,
            tokens,
            count,
        };
        linear_ra::forward(backend, &args, noise, out, scratch);
        Ok(())
    }

    /// [`forward`](Self::forward) of the layers that hold a head (softmax, RA, random features).
    #[inline(never)]
    fn forward_quadratic(
        &self,
        tokens: &Tokens<'_>,
        sampling: Sampling<'_>,
        out: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let (backend, scratch) = self.check_call(tokens, out, scratch)?;
        quadratic::forward(backend, self, tokens, sampling, out, scratch)
    }

    /// Checks the tokens, `out` and the scratch for the backend the call will run on; returns
    /// that backend and the scratch it needs.
    fn check_call<'s>(
        &self,
        tokens: &Tokens<'_>,
        out: &[f32],
        scratch: &'s mut [f32],
    ) -> Result<(Available, &'s mut [f32]), Error> {
        self.check_tokens(tokens, out)?;
        let backend = Available::active();
        let tiles = backend.backend().is_blocked();
        let needed = Self::scratch_len_for_tiles(&self.config, tokens.layout, tiles);
        Ok((backend, take_scratch(scratch, needed)?))
    }

    /// Checks `x`, `out` and the mask against the layout; returns the number of tokens `n`.
    fn check_tokens(&self, tokens: &Tokens<'_>, out: &[f32]) -> Result<usize, Error> {
        let n = match tokens.layout {
            Layout::Sequence(n) => n,
            Layout::Grid { height, width } => checked_len(height, width)?,
        };
        if n == 0 {
            return Err(Error::ZeroDimension(Dim::Queries));
        }
        let len = checked_len(n, self.config.dim)?;
        expect_len(Arg::Tokens, tokens.x.len(), len)?;
        expect_len(Arg::Output, out.len(), len)?;
        if let Some(mask) = tokens.key_mask {
            expect_len(Arg::KeyMask, mask.len(), n)?;
            if mask.iter().all(|&masked| masked) {
                return Err(Error::AllKeysMasked);
            }
        }
        check_finite(Arg::Tokens, tokens.x)?;
        Ok(n)
    }
}
