//! Whole layers (`lara_attn::layer`): parity with the official modules (the layer golden files
//! of `tests/data/layers`) on every backend, with an independent `f64` reference on random
//! configurations, every SIMD backend against the scalar kernels on every tail length with a
//! dirty-scratch pass, scratch that does not grow with `n` for LARA, and the errors.

#[path = "support/golden.rs"]
mod golden;
#[path = "support/reference.rs"]
mod reference;

use lara_attn::backend::{Backend, set_backend};
use lara_attn::lara::Weighting;
use lara_attn::layer::{
    Attention, Config, LaraConfig, Layer, Layout, Mixing, PoolModule, ProposalGen, RandomizedMean,
    Tokens, Weights,
};
use lara_attn::random::{default_rng, fill_standard_normal};
use lara_attn::rfa::FeatureMap;
use lara_attn::{Arg, Error, Sampling};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Backend selection is process-wide: tests that set it run one at a time.
static SELECTION: Mutex<()> = Mutex::new(());

/// Every backend this host runs (or the one `LARA_ATTN_BACKEND` forces, with the scalar one).
fn backends() -> Vec<Backend> {
    let forced = std::env::var("LARA_ATTN_BACKEND").ok();
    let forced = forced.map(|name| Backend::from_name(&name).expect("a known backend"));
    Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .filter(|b| forced.is_none_or(|f| *b == f || *b == Backend::Scalar))
        .collect()
}

#[test]
fn every_golden_layer_output_matches_on_every_backend() {
    let _guard = SELECTION.lock().unwrap_or_else(|e| e.into_inner());
    for backend in backends() {
        set_backend(Some(backend)).unwrap();
        let outcomes = golden::run_layer_manifest(&golden::default_manifest_of("layers"));
        set_backend(None).unwrap();
        let outcomes = outcomes.expect("the layer manifest runs");
        assert_eq!(outcomes.len(), 33, "18 cases, 33 outputs");
        let failures: Vec<String> = outcomes
            .iter()
            .filter(|o| !o.passed())
            .map(|o| format!("{}/{}: {:?}", o.case, o.name, o.result))
            .collect();
        assert!(failures.is_empty(), "{backend}: {failures:#?}");
    }
}

/// A `state_dict` of random tensors for `config`: weights `N(0, 1/fan_in)` as trained layers
/// have them, biases and `LayerNorm` shifts `N(0, 0.1²)`, `LayerNorm` scales `1 + N(0, 0.1²)`,
/// the Performer projection `N(0, 1)`.
struct StateDict(BTreeMap<&'static str, Vec<f32>>);

impl StateDict {
    fn random(config: &Config, seed: u64) -> Self {
        let mut rng = default_rng(seed);
        let mut tensors = BTreeMap::new();
        for spec in config.weight_specs() {
            let mut t = vec![0.0; spec.len()];
            fill_standard_normal(&mut rng, &mut t);
            let fan_in = spec.shape[1] as f32;
            let (scale, shift) = match spec.key {
                "eval_proj" => (1.0, 0.0),
                k if k.ends_with("weight") && spec.rank == 2 => (1.0 / fan_in.sqrt(), 0.0),
                k if k.ends_with(".1.weight") || k.ends_with(".3.weight") => (0.1, 1.0),
                _ => (0.1, 0.0),
            };
            t.iter_mut().for_each(|x| *x = *x * scale + shift);
            tensors.insert(spec.key, t);
        }
        StateDict(tensors)
    }

    fn weights(&self, config: &Config) -> Weights<'_> {
        Weights::from_state_dict(config, |key| self.0.get(key).map(|t| &t[..])).unwrap()
    }
}

fn lara(
    generator: ProposalGen,
    pool_module: PoolModule,
    mixing: Mixing,
    landmarks: usize,
) -> Attention {
    Attention::Lara(LaraConfig {
        landmarks,
        generator,
        pool_module,
        mixing,
        ..LaraConfig::official()
    })
}

/// Every kind of layer, for sequences (`grid = false`) or grids.
fn attentions(grid: bool) -> Vec<(String, Attention)> {
    use Mixing::{Mixed, None as Plain, VMixed};
    use PoolModule::{Dense, Light};
    use ProposalGen::{Adaptive1d, NoParamPool, Pool};
    let mut kinds = vec![
        ("softmax".into(), Attention::Softmax),
        (
            "favorp".into(),
            Attention::Kernelized {
                map: FeatureMap::Positive,
                features: 7,
            },
        ),
        (
            "fourier".into(),
            Attention::Kernelized {
                map: FeatureMap::Trigonometric,
                features: 5,
            },
        ),
        (
            "ra0".into(),
            Attention::Randomized(RandomizedMean::KeyAverage),
        ),
        (
            "ra-1".into(),
            Attention::Randomized(RandomizedMean::AttentionWeighted),
        ),
    ];
    let generators: &[(ProposalGen, PoolModule, Mixing)] = if grid {
        &[
            (Pool, Light, Plain),
            (Pool, Dense, Plain),
            (NoParamPool, Light, Plain),
            (Pool, Light, Mixed),
            (NoParamPool, Dense, VMixed),
        ]
    } else {
        &[
            (NoParamPool, Light, Plain),
            (Adaptive1d, Light, Plain),
            (Pool, Dense, Mixed),
        ]
    };
    for &(generator, pool_module, mixing) in generators {
        for weighting in [
            Weighting::Optimal { alpha_coeff: 1.5 },
            Weighting::BalanceHeuristic,
            Weighting::Biased,
        ] {
            let Attention::Lara(mut config) = lara(generator, pool_module, mixing, 5) else {
                unreachable!()
            };
            config.weighting = weighting;
            let name = format!("lara {generator:?} {pool_module:?} {mixing:?} {weighting:?}");
            kinds.push((name, Attention::Lara(config)));
        }
    }
    kinds
}

/// Random tokens `[n, dim]` with unit-variance features.
fn tokens(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut x = vec![0.0; n * dim];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x
}

/// Runs `layer` on `backend` with the scratch first filled with `fill`.
fn run(
    backend: Backend,
    layer: &Layer<'_>,
    tokens: &Tokens<'_>,
    eps: Option<&[f32]>,
    fill: f32,
) -> Vec<f32> {
    set_backend(Some(backend)).unwrap();
    let mut out = vec![f32::NAN; tokens.x.len()];
    let mut scratch = vec![fill; Layer::scratch_len(layer.config(), tokens.layout)];
    let sampling = eps.map_or(Sampling::Eval, Sampling::Noise);
    let result = layer.forward(tokens, sampling, &mut out, &mut scratch);
    set_backend(None).unwrap();
    result.unwrap_or_else(|e| panic!("{:?} {:?}: {e}", layer.config(), tokens.layout));
    out
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// Every blocked backend (SIMD and one-lane) against the scalar kernels, and NaN-filled scratch
/// against zeroed scratch (bit for bit), for every kind of layer on sequences of every length up
/// to past two blocks of 32 tokens (with and without a mask and noise) and on grids of every
/// shape up to 7 × 7.
#[test]
fn blocked_backends_match_the_scalar_kernels_on_every_tail() {
    let _guard = SELECTION.lock().unwrap_or_else(|e| e.into_inner());
    let blocked: Vec<Backend> = backends().into_iter().filter(|b| b.is_blocked()).collect();
    let mut layouts: Vec<Layout> = [1, 2, 3, 5, 8, 9, 17, 31, 32, 33, 40, 64, 65, 70]
        .map(Layout::Sequence)
        .into();
    for (height, width) in [(2, 2), (2, 5), (3, 3), (4, 7), (5, 5), (7, 6)] {
        layouts.push(Layout::Grid { height, width });
    }
    let mut checked = 0;
    for (l, &layout) in layouts.iter().enumerate() {
        let grid = matches!(layout, Layout::Grid { .. });
        for (name, attention) in attentions(grid) {
            let config = Config::new(12, 3, attention);
            let state = StateDict::random(&config, 7);
            let layer = Layer::new(config, state.weights(&config)).unwrap();
            let n = layout.tokens();
            let x = tokens(n, config.dim, l as u64);
            let mask: Vec<bool> = (0..n).map(|t| t % 3 == 1).collect();
            let masked = !grid && n > 1 && !matches!(attention, Attention::Randomized(_));
            let mut eps = vec![0.0; Layer::noise_len(&config, layout)];
            fill_standard_normal(&mut default_rng(99), &mut eps);
            let sampled = matches!(attention, Attention::Lara(_) | Attention::Randomized(_));
            for (mask, eps) in [
                (None, None),
                (masked.then_some(&mask[..]), None),
                (None, sampled.then_some(&eps[..])),
            ] {
                let tokens = Tokens {
                    x: &x,
                    layout,
                    key_mask: mask,
                };
                let reference = run(Backend::Scalar, &layer, &tokens, eps, 0.0);
                let dirty = run(Backend::Scalar, &layer, &tokens, eps, f32::NAN);
                assert_eq!(
                    reference, dirty,
                    "{name} {layout:?}: dirty scratch (scalar)"
                );
                let scale = reference.iter().fold(1.0f32, |m, x| m.max(x.abs()));
                for &backend in &blocked {
                    let ours = run(backend, &layer, &tokens, eps, 0.0);
                    let err = max_abs_diff(&ours, &reference);
                    // (fourier features are ill-conditioned: a looser bound)
                    let tol = if name == "fourier" { 1e-3 } else { 2e-5 };
                    assert!(err <= tol * scale, "{name} {layout:?} {backend}: {err:e}");
                    let dirty = run(backend, &layer, &tokens, eps, f32::NAN);
                    assert_eq!(ours, dirty, "{name} {layout:?} {backend}: dirty scratch");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "{checked} calls checked");
}

/// `x Wᵀ + b` in `f64`, `[n, out]` from `x [n, in]`, `W [out, in]`.
fn linear_f64(x: &[f32], n: usize, w: &[f32], b: Option<&[f32]>) -> Vec<f64> {
    let (cols, out) = (x.len() / n, w.len() / (x.len() / n));
    let mut y = vec![0.0; n * out];
    for t in 0..n {
        for o in 0..out {
            let row = &w[o * cols..(o + 1) * cols];
            let dot: f64 = row
                .iter()
                .zip(&x[t * cols..])
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum();
            y[t * out + o] = dot + b.map_or(0.0, |b| b[o] as f64);
        }
    }
    y
}

/// The official 1-D `LinearRA` (`no-param-pool`) and `MultiheadAttention` forward, written
/// from FORMULAS.md (h) on the test's `f64` reference estimators: project, split heads (padded
/// tokens zeroed for LinearRA), attention per head, concatenate, project.
fn reference_layer(
    config: &Config,
    state: &StateDict,
    x: &[f32],
    n: usize,
    mask: Option<&[bool]>,
) -> Vec<f64> {
    let (dim, heads, d) = (config.dim, config.heads, config.head_dim());
    let qkv = linear_f64(
        x,
        n,
        &state.0["qkv.weight"],
        state.0.get("qkv.bias").map(|b| &b[..]),
    );
    let mut concat = vec![0.0f32; n * dim];
    for h in 0..heads {
        let column = |third: usize, t: usize, e: usize| qkv[t * 3 * dim + third * dim + h * d + e];
        let zeroed =
            |t: usize| matches!(config.attention, Attention::Lara(_)) && mask.is_some_and(|m| m[t]);
        let head = |third: usize| -> Vec<f32> {
            (0..n * d)
                .map(|i| {
                    if zeroed(i / d) {
                        0.0
                    } else {
                        column(third, i / d, i % d) as f32
                    }
                })
                .collect()
        };
        let (q, k, v) = (head(0), head(1), head(2));
        let dims = reference::Dims::new(n, n, d, d);
        let o = match config.attention {
            Attention::Softmax => reference::softmax_attention_masked(dims, &q, &k, &v, mask),
            Attention::Lara(LaraConfig {
                landmarks,
                weighting,
                ..
            }) => {
                let mis = match weighting {
                    Weighting::Optimal { alpha_coeff } => reference::Mis::Opt(alpha_coeff as f64),
                    Weighting::BalanceHeuristic => reference::Mis::Bh,
                    Weighting::Biased => reference::Mis::Biased,
                };
                let options = reference::LaraOptions {
                    key_mask: mask,
                    ..Default::default()
                };
                reference::lara_with(dims, landmarks, mis, (&q, &k, &v), None, options)
            }
            _ => unreachable!(),
        };
        for t in 0..n {
            for e in 0..d {
                concat[t * dim + h * d + e] = o[t * d + e] as f32;
            }
        }
    }
    linear_f64(
        &concat,
        n,
        &state.0["proj.weight"],
        Some(&state.0["proj.bias"]),
    )
}

/// 1-D `LinearRA` (every weighting, masks, uneven segments, long sequences, no qkv bias) and
/// `MultiheadAttention` against the independent reference.
#[test]
fn sequences_match_an_independent_reference() {
    let _guard = SELECTION.lock().unwrap_or_else(|e| e.into_inner());
    let mut checked = 0;
    for (n, c, heads, d, qkv_bias) in [
        (1, 4, 1, 4, true),
        (7, 4, 2, 3, true),
        (50, 8, 2, 16, false),
        (300, 7, 4, 8, true),
        (1000, 16, 2, 8, true),
    ] {
        let weightings = [
            Weighting::Optimal { alpha_coeff: 1.0 },
            Weighting::Optimal { alpha_coeff: 0.5 },
            Weighting::BalanceHeuristic,
            Weighting::Biased,
        ];
        let mut attentions: Vec<Attention> = weightings
            .iter()
            .map(|&weighting| {
                Attention::Lara(LaraConfig {
                    weighting,
                    ..LaraConfig::segment_means(c)
                })
            })
            .collect();
        attentions.push(Attention::Softmax);
        for attention in attentions {
            let config = Config::new(heads * d, heads, attention).with_qkv_bias(qkv_bias);
            let state = StateDict::random(&config, n as u64);
            let layer = Layer::new(config, state.weights(&config)).unwrap();
            let x = tokens(n, config.dim, 3);
            let mask: Vec<bool> = (0..n).map(|t| t % 4 == 2).collect();
            let masks = if n > 2 {
                vec![None, Some(&mask[..])]
            } else {
                vec![None]
            };
            for mask in masks {
                let layout = Layout::Sequence(n);
                let tokens = Tokens {
                    x: &x,
                    layout,
                    key_mask: mask,
                };
                let mut out = vec![f32::NAN; x.len()];
                let mut scratch = vec![f32::NAN; Layer::scratch_len(&config, layout)];
                layer
                    .forward(&tokens, Sampling::Eval, &mut out, &mut scratch)
                    .unwrap();
                let expected = reference_layer(&config, &state, &x, n, mask);
                let scale = expected.iter().fold(1.0f64, |m, x| m.max(x.abs()));
                let err = out
                    .iter()
                    .zip(&expected)
                    .fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b).abs()));
                assert!(
                    err <= 1e-4 * scale,
                    "{attention:?} n={n} mask={}: {err:e}",
                    mask.is_some()
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 5 * 5 * 2 - 5);
}

/// LARA's scratch is a function of the configuration alone once `n ≥ C` (and of `C` alone on
/// a grid): a buffer sized for 8 tokens runs 4096.
#[test]
fn lara_scratch_does_not_grow_with_n() {
    let _guard = SELECTION.lock().unwrap_or_else(|e| e.into_inner());
    for (_, attention) in attentions(false) {
        let Attention::Lara(lara) = attention else {
            continue;
        };
        let config = Config::new(16, 2, attention);
        let small = Layer::scratch_len(&config, Layout::Sequence(lara.landmarks));
        for n in [lara.landmarks, 100, 4096, 1 << 20] {
            assert_eq!(Layer::scratch_len(&config, Layout::Sequence(n)), small);
        }
        let state = StateDict::random(&config, 1);
        let layer = Layer::new(config, state.weights(&config)).unwrap();
        let x = tokens(4096, 16, 5);
        let mut out = vec![0.0; x.len()];
        let mut scratch = vec![0.0; small];
        let tokens = Tokens {
            x: &x,
            layout: Layout::Sequence(4096),
            key_mask: None,
        };
        layer
            .forward(&tokens, Sampling::Eval, &mut out, &mut scratch)
            .unwrap();
        assert!(out.iter().all(|o| o.is_finite()));
    }
    for (_, attention) in attentions(true) {
        if let Attention::Lara(_) = attention {
            let config = Config::new(16, 2, attention);
            let grid = |height, width| Layer::scratch_len(&config, Layout::Grid { height, width });
            assert_eq!(grid(2, 2), grid(300, 500));
        }
    }
}

/// A grid pooled to more cells than it has rows and columns (`AdaptiveAvgPool2d` repeats the
/// tokens): one token pooled to 3 × 3 identical landmarks gives, under `mis-bh`, the output of
/// one landmark.
#[test]
fn grids_pool_to_more_cells_than_tokens() {
    let _guard = SELECTION.lock().unwrap_or_else(|e| e.into_inner());
    let config = |landmarks| {
        let attention = lara(
            ProposalGen::NoParamPool,
            PoolModule::Light,
            Mixing::None,
            landmarks,
        );
        let Attention::Lara(lara) = attention else {
            unreachable!()
        };
        let lara = LaraConfig {
            weighting: Weighting::BalanceHeuristic,
            ..lara
        };
        Config::new(8, 2, Attention::Lara(lara))
    };
    let state = StateDict::random(&config(9), 6);
    let x = tokens(1, 8, 7);
    let layout = Layout::Grid {
        height: 1,
        width: 1,
    };
    let input = Tokens {
        x: &x,
        layout,
        key_mask: None,
    };
    let outputs: Vec<Vec<f32>> = [config(9), config(1)]
        .iter()
        .map(|config| {
            let layer = Layer::new(*config, state.weights(config)).unwrap();
            run(Backend::Scalar, &layer, &input, None, 0.0)
        })
        .collect();
    assert!(
        max_abs_diff(&outputs[0], &outputs[1]) <= 1e-6,
        "{outputs:?}"
    );
    // A 2 × 3 grid pooled to 4 × 4 runs alike on every backend.
    let x = tokens(6, 8, 8);
    let layer = Layer::new(config(16), state.weights(&config(16))).unwrap();
    let input = Tokens {
        x: &x,
        layout: Layout::Grid {
            height: 2,
            width: 3,
        },
        key_mask: None,
    };
    let reference = run(Backend::Scalar, &layer, &input, None, 0.0);
    for backend in backends() {
        let ours = run(backend, &layer, &input, None, f32::NAN);
        assert!(max_abs_diff(&ours, &reference) <= 1e-5, "{backend}");
    }
}

/// On a sequence, `'pool'` is segment means (its generator weights are read but unused, as in
/// the official `_proposal_gen_1d`) and the `-mixed` suffix does nothing.
#[test]
fn one_d_pool_and_mixing_are_segment_means() {
    let _guard = SELECTION.lock().unwrap_or_else(|e| e.into_inner());
    let plain = Config::new(
        8,
        2,
        lara(ProposalGen::NoParamPool, PoolModule::Light, Mixing::None, 4),
    );
    let pooled = Config::new(
        8,
        2,
        lara(ProposalGen::Pool, PoolModule::Light, Mixing::VMixed, 4),
    );
    let state = StateDict::random(&pooled, 2);
    let x = tokens(21, 8, 4);
    let tokens = Tokens {
        x: &x,
        layout: Layout::Sequence(21),
        key_mask: None,
    };
    let outputs: Vec<Vec<f32>> = [plain, pooled]
        .iter()
        .map(|config| {
            let layer = Layer::new(*config, state.weights(config)).unwrap();
            let mut out = vec![0.0; x.len()];
            let mut scratch = vec![0.0; Layer::scratch_len(config, tokens.layout)];
            layer
                .forward(&tokens, Sampling::Eval, &mut out, &mut scratch)
                .unwrap();
            out
        })
        .collect();
    assert_eq!(outputs[0], outputs[1]);
}

/// The keys a configuration asks for are exactly the official module's `state_dict` keys (the
/// golden cases' weight lists), and `from_state_dict` asks for nothing else.
#[test]
fn weight_keys_are_the_official_state_dict() {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(golden::default_manifest_of("layers")).unwrap(),
    )
    .unwrap();
    for case in manifest["cases"].as_array().unwrap() {
        let module = case["module"].as_str().unwrap();
        let config = golden::layers::official_config(module, &case["config"]).unwrap();
        let mut official: Vec<&str> = case["weights"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| &k[..])
            .collect();
        let mut ours: Vec<&str> = config.weight_specs().map(|s| s.key).collect();
        if case["input_layout"] == "[n, dim]" && official.iter().any(|k| k.contains("_bar_gen.2")) {
            ours.retain(|k| !k.contains("_bar_gen")); // 1-D 'pool' reads no generator
            official.retain(|k| !k.contains("_bar_gen"));
        }
        official.sort_unstable();
        ours.sort_unstable();
        assert_eq!(ours, official, "{}", case["id"]);
        let mut asked = Vec::new();
        let _ = Weights::from_state_dict(&config, |key| {
            asked.push(key);
            Some(&[][..])
        });
        asked.sort_unstable();
        let mut specs: Vec<&str> = config.weight_specs().map(|s| s.key).collect();
        specs.sort_unstable();
        assert_eq!(asked, specs, "{}", case["id"]);
    }
}

/// A call that must fail: what it shows, the layer, its tokens and noise, the length of `out`,
/// the error.
type ErrorCase<'a> = (
    &'a str,
    &'a Layer<'a>,
    Tokens<'a>,
    Option<&'a [f32]>,
    usize,
    Error,
);

/// Every error the configuration, the weights and the call can raise, each before anything is
/// written to `out`.
#[test]
fn errors_name_the_problem_and_write_nothing() {
    let _guard = SELECTION.lock().unwrap_or_else(|e| e.into_inner());
    let lara_config = Config::new(
        8,
        2,
        lara(ProposalGen::Pool, PoolModule::Light, Mixing::None, 4),
    );
    let state = StateDict::random(&lara_config, 3);
    let weights = state.weights(&lara_config);

    // The configuration and the weights.
    let bad_heads = Config {
        heads: 3,
        ..lara_config
    };
    assert_eq!(
        Layer::new(bad_heads, weights).unwrap_err(),
        Error::InvalidConfig("dim is not a multiple of the number of heads")
    );
    let zero_landmarks = Config::new(
        8,
        2,
        lara(ProposalGen::Pool, PoolModule::Light, Mixing::None, 0),
    );
    assert_eq!(
        Layer::new(zero_landmarks, weights).unwrap_err(),
        Error::ZeroLandmarks
    );
    let missing = Weights::from_state_dict(&lara_config, |key| {
        (key != "k_bar_gen.3.bias").then_some(&[][..])
    });
    assert_eq!(
        missing.unwrap_err(),
        Error::MissingWeight("k_bar_gen.3.bias")
    );
    let short = Weights {
        proj_bias: &state.0["proj.bias"][1..],
        ..weights
    };
    assert_eq!(
        Layer::new(lara_config, short).unwrap_err(),
        Error::WeightShape {
            key: "proj.bias",
            expected: 8,
            actual: 7
        }
    );
    let mut nan = state.0["q_bar_gen.2.weight"].clone();
    nan[5] = f32::NAN;
    let gen_ = weights.q_bar_gen.map(|g| lara_attn::layer::Generator {
        linear_weight: &nan,
        ..g
    });
    assert_eq!(
        Layer::new(
            lara_config,
            Weights {
                q_bar_gen: gen_,
                ..weights
            }
        )
        .unwrap_err(),
        Error::NonFiniteWeight("q_bar_gen.2.weight")
    );
    assert_eq!(
        Layer::new(
            lara_config,
            Weights {
                k_bar_gen: None,
                ..weights
            }
        )
        .unwrap_err(),
        Error::MissingWeight("k_bar_gen.2.weight")
    );
    let message = Error::MissingWeight("qkv.bias").to_string();
    assert!(message.contains("qkv.bias"), "{message}");

    // The call.
    let layer = Layer::new(lara_config, weights).unwrap();
    let x = tokens(16, 8, 1);
    let all_masked = [true; 16];
    let short_mask = [false; 15];
    let mut nan_x = x.clone();
    nan_x[9] = f32::INFINITY;
    let adaptive = Config::new(
        8,
        2,
        lara(ProposalGen::Adaptive1d, PoolModule::Light, Mixing::None, 4),
    );
    let adaptive_state = StateDict::random(&adaptive, 4);
    let adaptive_layer = Layer::new(adaptive, adaptive_state.weights(&adaptive)).unwrap();
    let ra_config = Config::new(8, 2, Attention::Randomized(RandomizedMean::KeyAverage));
    let ra_state = StateDict::random(&ra_config, 5);
    let ra_layer = Layer::new(ra_config, ra_state.weights(&ra_config)).unwrap();
    let sampled_key = Config::new(8, 2, Attention::Randomized(RandomizedMean::SampledKey));
    let sampled_key_layer = Layer::new(sampled_key, ra_state.weights(&sampled_key)).unwrap();
    let softmax = Config::new(8, 2, Attention::Softmax);
    let softmax_layer = Layer::new(softmax, ra_state.weights(&softmax)).unwrap();
    let seq = Layout::Sequence(16);
    let grid = Layout::Grid {
        height: 4,
        width: 4,
    };
    let eps = vec![0.0; Layer::noise_len(&lara_config, seq)];
    let cases: Vec<ErrorCase<'_>> = vec![
        (
            "x too short",
            &layer,
            Tokens {
                x: &x[1..],
                layout: seq,
                key_mask: None,
            },
            None,
            128,
            Error::LengthMismatch {
                arg: Arg::Tokens,
                expected: 128,
                actual: 127,
            },
        ),
        (
            "out too short",
            &layer,
            Tokens {
                x: &x,
                layout: seq,
                key_mask: None,
            },
            None,
            127,
            Error::LengthMismatch {
                arg: Arg::Output,
                expected: 128,
                actual: 127,
            },
        ),
        (
            "no tokens",
            &layer,
            Tokens {
                x: &[],
                layout: Layout::Sequence(0),
                key_mask: None,
            },
            None,
            0,
            Error::ZeroDimension(lara_attn::Dim::Queries),
        ),
        (
            "non-finite x",
            &layer,
            Tokens {
                x: &nan_x,
                layout: seq,
                key_mask: None,
            },
            None,
            128,
            Error::NonFinite(Arg::Tokens),
        ),
        (
            "every key masked",
            &layer,
            Tokens {
                x: &x,
                layout: seq,
                key_mask: Some(&all_masked),
            },
            None,
            128,
            Error::AllKeysMasked,
        ),
        (
            "mask of the wrong length",
            &layer,
            Tokens {
                x: &x,
                layout: seq,
                key_mask: Some(&short_mask),
            },
            None,
            128,
            Error::LengthMismatch {
                arg: Arg::KeyMask,
                expected: 16,
                actual: 15,
            },
        ),
        (
            "noise too short",
            &layer,
            Tokens {
                x: &x,
                layout: seq,
                key_mask: None,
            },
            Some(&eps[1..]),
            128,
            Error::LengthMismatch {
                arg: Arg::Noise,
                expected: eps.len(),
                actual: eps.len() - 1,
            },
        ),
        (
            "adaptive-1d on a grid",
            &adaptive_layer,
            Tokens {
                x: &x,
                layout: grid,
                key_mask: None,
            },
            None,
            128,
            Error::InvalidConfig("adaptive-1d takes a sequence, not a grid"),
        ),
        (
            "a mask for RA",
            &ra_layer,
            Tokens {
                x: &x,
                layout: seq,
                key_mask: Some(&short_mask[..15]),
            },
            None,
            128,
            Error::LengthMismatch {
                arg: Arg::KeyMask,
                expected: 16,
                actual: 15,
            },
        ),
        (
            "a sampled key without a generator",
            &sampled_key_layer,
            Tokens {
                x: &x,
                layout: seq,
                key_mask: None,
            },
            None,
            128,
            Error::GeneratorRequired,
        ),
        (
            "noise for softmax",
            &softmax_layer,
            Tokens {
                x: &x,
                layout: seq,
                key_mask: None,
            },
            Some(&eps),
            128,
            Error::InvalidConfig("softmax and random-feature layers have no sampled mode"),
        ),
    ];
    for (what, layer, tokens, eps, out_len, expected) in cases {
        let mut out = vec![-7.0; out_len];
        let mut scratch = vec![-7.0; Layer::scratch_len(layer.config(), seq).max(4096)];
        let sampling = eps.map_or(Sampling::Eval, Sampling::Noise);
        let result = layer.forward(&tokens, sampling, &mut out, &mut scratch);
        assert_eq!(result, Err(expected), "{what}");
        assert!(out.iter().all(|&o| o == -7.0), "{what}: out written");
        assert!(
            scratch.iter().all(|&s| s == -7.0),
            "{what}: scratch written"
        );
    }
    let mask = [false; 16];
    let mut out = vec![0.0; 128];
    let mut scratch = vec![0.0; Layer::scratch_len(&ra_config, seq)];
    let tokens = Tokens {
        x: &x,
        layout: seq,
        key_mask: Some(&mask),
    };
    let result = ra_layer.forward(&tokens, Sampling::Eval, &mut out, &mut scratch);
    assert!(matches!(result, Err(Error::InvalidConfig(_))), "{result:?}");
    let result = softmax_layer.forward_linear_ra(&tokens, Sampling::Eval, &mut out, &mut scratch);
    assert_eq!(
        result,
        Err(Error::InvalidConfig(
            "forward_linear_ra runs LinearRA layers only"
        ))
    );
    let short = Layer::scratch_len(&lara_config, seq) - 1;
    let tokens = Tokens {
        x: &x,
        layout: seq,
        key_mask: None,
    };
    let result = layer.forward(&tokens, Sampling::Eval, &mut out, &mut vec![0.0; short]);
    assert_eq!(
        result,
        Err(Error::ScratchTooSmall {
            needed: short + 1,
            actual: short
        })
    );
}
