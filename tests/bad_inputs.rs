//! The bad-input matrix (issue 13): every entry point of the kernel registry ([`KERNELS`],
//! [`INT8_KERNELS`]) and the other public entry points (`lara::segment_means`, `pool2d`, a
//! layer) against every class of bad input, on every backend this host can run. For each call:
//! no panic; an `Err` leaves `out` and the scratch exactly as given (a sentinel pattern, compared
//! by bits); an `Ok` for finite inputs within the documented range (`|x| ≤ 1e18`) is finite; a
//! class that is an error for an entry point is reported as one, with the expected variant
//! where the docs name it. A new entry point joins the registry and is then covered here.
//!
//! Fast (small shapes): run in release by CI.

#[path = "support/kernels.rs"]
mod kernels;

use kernels::{Call, INT8_KERNELS, Int8Call, KERNELS};
use lara_attn::backend::{Backend, set_backend};
use lara_attn::lara::{self, Weighting};
use lara_attn::random::{default_rng, fill_standard_normal};
use lara_attn::{Error, Qkv, Shape, int8, pool2d, ra};

/// A NaN with a payload no kernel writes: an element still holding it was not written.
const SENTINEL: u32 = 0x7fa5_a5a5;

fn randn(seed: u64, len: usize) -> Vec<f32> {
    let mut x = vec![0.0; len];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x
}

fn untouched(x: &[f32]) -> bool {
    x.iter().all(|v| v.to_bits() == SENTINEL)
}

/// What a case must give for a kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// `Ok`, with finite outputs.
    Finite,
    /// `Ok` or `Err` (outputs may be non-finite: beyond the documented range).
    Any,
    /// An error (any variant).
    Err,
    /// This error.
    Is(Error),
}

/// The owned data of one f32 call.
#[derive(Clone)]
struct Data {
    shape: Shape,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    mask: Option<Vec<bool>>,
    omega: Vec<f32>,
    noise: Option<Vec<f32>>,
    gates: Option<Vec<f32>>,
    landmarks: usize,
    key_indices: Option<Vec<u32>>,
    out_len: usize,
    /// `None`: the scratch `scratch_len` asks for (capped: an overflowing shape asks for
    /// `usize::MAX`); `Some(delta)`: what the backend needs minus `delta` (and exactly what it
    /// needs, which must succeed).
    scratch_short: Option<usize>,
}

const FEATURES: usize = 4;

impl Data {
    fn new(heads: usize, n: usize, d: usize) -> Data {
        let shape = Shape::self_attention(n, d).with_heads(heads);
        let len = heads * n * d;
        Data {
            shape,
            q: randn(1, len),
            k: randn(2, len),
            v: randn(3, len),
            mask: None,
            omega: randn(4, heads * FEATURES * d),
            noise: None,
            gates: None,
            landmarks: n.min(3),
            key_indices: None,
            out_len: len,
            scratch_short: None,
        }
    }
}

fn base() -> Data {
    Data::new(2, 9, 4)
}

/// A case: its name, its data, and what each kernel (by registry name) must give.
type Case = (String, Data, fn(&str) -> Expect);

/// The cases: a name, the data, and what each kernel (by registry name) must give.
fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    cases.push(("valid".into(), base(), |_| Expect::Finite));
    cases.push(("n = 1".into(), Data::new(1, 1, 4), |_| Expect::Finite));
    cases.push(("d = 1".into(), Data::new(2, 9, 1), |_| Expect::Finite));
    cases.push(("n = 1, d = 1".into(), Data::new(1, 1, 1), |_| {
        Expect::Finite
    }));
    // Wrong lengths, one argument at a time.
    for (what, edit) in [
        (
            "q",
            (|d: &mut Data| d.q.truncate(d.q.len() - 1)) as fn(&mut Data),
        ),
        ("k", |d| d.k.truncate(d.k.len() - 1)),
        ("v", |d| d.v.push(0.0)),
        ("out", |d| d.out_len -= 1),
        ("omega", |d| d.omega.truncate(d.omega.len() - 1)),
    ] {
        let mut data = base();
        edit(&mut data);
        let expect: fn(&str) -> Expect = match what {
            "omega" => |name| {
                if name.contains("rfa") {
                    Expect::Err
                } else {
                    Expect::Finite
                }
            },
            _ => |_| Expect::Err,
        };
        cases.push((format!("wrong length of {what}"), data, expect));
    }
    // Zero dimensions (with empty slices of the matching length).
    for (what, shape) in [
        ("h", Shape::self_attention(9, 4).with_heads(0)),
        ("n_q", Shape::cross(0, 9, 4, 4)),
        ("n_k", Shape::cross(9, 0, 4, 4)),
        ("d", Shape::cross(9, 9, 0, 4)),
        ("d_v", Shape::cross(9, 9, 4, 0)),
    ] {
        let mut data = base();
        let h = shape.heads;
        data.shape = shape;
        data.q.truncate(h * shape.queries * shape.dim);
        data.k.truncate(h * shape.keys * shape.dim);
        data.v.truncate(h * shape.keys * shape.value_dim);
        data.out_len = h * shape.queries * shape.value_dim;
        data.omega.truncate(h * FEATURES * shape.dim);
        cases.push((format!("zero {what}"), data, |_| Expect::Err));
    }
    let mut data = base();
    data.landmarks = 0;
    cases.push(("C = 0".into(), data, |name| {
        if name.starts_with("lara") {
            Expect::Is(Error::ZeroLandmarks)
        } else {
            Expect::Finite
        }
    }));
    let mut data = base();
    data.landmarks = 10;
    // Segment means clamp to `C' = min(C, n_q, n_k)` (the official rule): valid.
    cases.push(("C > n".into(), data, |_| Expect::Finite));
    let mut data = base();
    data.landmarks = 9;
    cases.push(("C = n".into(), data, |_| Expect::Finite));
    let mut data = base();
    data.scratch_short = Some(1);
    cases.push(("scratch one short".into(), data, |_| Expect::Err));
    // Non-finite values in each input.
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for (what, edit) in [
            (
                "q",
                (|d: &mut Data, x: f32| d.q[13] = x) as fn(&mut Data, f32),
            ),
            ("k", |d, x| d.k[40] = x),
            ("v", |d, x| d.v[71] = x),
        ] {
            let mut data = base();
            edit(&mut data, bad);
            cases.push((format!("{bad} in {what}"), data, |_| Expect::Err));
        }
        let mut data = base();
        data.omega[5] = bad;
        cases.push((format!("{bad} in omega"), data, |name| {
            if name.contains("rfa") {
                Expect::Err
            } else {
                Expect::Finite
            }
        }));
        let mut data = base();
        let mut gates = vec![0.5; 18];
        gates[7] = bad;
        data.gates = Some(gates);
        cases.push((format!("{bad} in gates"), data, |name| {
            if name.starts_with("causal") {
                Expect::Err
            } else {
                Expect::Finite
            }
        }));
        let mut data = base();
        let mut noise = vec![0.1; 2 * 9 * 4];
        noise[3] = bad;
        data.noise = Some(noise);
        cases.push((format!("{bad} in RA's noise"), data, |name| match name {
            "ra" => Expect::Err,
            // LARA's noise has another length: an error too.
            "lara" => Expect::Err,
            _ => Expect::Finite,
        }));
    }
    // Magnitudes: within the documented range (finite outputs), and beyond it.
    for scale in [1e4f32, 1e18, 1e30] {
        let mut data = base();
        for x in data.q.iter_mut().chain(&mut data.k).chain(&mut data.v) {
            *x *= scale;
        }
        let expect: fn(&str) -> Expect = if scale <= 1e18 {
            |_| Expect::Finite
        } else {
            |_| Expect::Any
        };
        cases.push((format!("|x| ~ {scale:e}"), data, expect));
    }
    // Key masks.
    let mut data = base();
    data.mask = Some(vec![true; 9]);
    cases.push(("every key masked".into(), data, |_| {
        Expect::Is(Error::AllKeysMasked)
    }));
    let mut data = base();
    data.mask = Some(vec![false; 8]);
    cases.push(("mask of wrong length".into(), data, |_| Expect::Err));
    let mut data = base();
    data.mask = Some((0..9).map(|j| j % 3 == 0).collect());
    cases.push(("some keys masked".into(), data, |_| Expect::Finite));
    // RA's given key indices.
    let mut data = base();
    let mut indices = vec![0u32; 18];
    indices[11] = 9;
    data.key_indices = Some(indices);
    cases.push(("key index out of range".into(), data, |name| match name {
        "ra" | "ra-draw" => Expect::Is(Error::KeyIndexOutOfRange { row: 11, index: 9 }),
        _ => Expect::Finite,
    }));
    let mut data = base();
    data.key_indices = Some(vec![8u32; 18]);
    cases.push(("key indices in range".into(), data, |_| Expect::Finite));
    // Dimensions whose products overflow usize (no slice has such a length): SizeOverflow,
    // whatever else is wrong (the scratch is then short too).
    for (what, shape) in [
        ("h·n·d", Shape::self_attention(usize::MAX / 4 + 1, 4)),
        ("n_k·d", Shape::cross(9, usize::MAX / 2 + 1, 4, 4)),
        ("n_k·d_v", Shape::cross(9, 9, 4, usize::MAX / 8)),
        (
            "h·n",
            Shape::self_attention(9, 4).with_heads(usize::MAX / 2),
        ),
    ] {
        let mut data = Data::new(1, 9, 4);
        data.shape = shape;
        cases.push((format!("overflowing {what}"), data, |_| {
            Expect::Is(Error::SizeOverflow)
        }));
    }
    // A huge n_k whose products fit: the keys' length is wrong (a scratch for it could not be
    // given either).
    let mut data = Data::new(1, 9, 1);
    data.shape = Shape::cross(9, usize::MAX - 8, 1, 1);
    cases.push(("n_k = usize::MAX - 8, d = 1".into(), data, |_| Expect::Err));
    cases
}

fn check(what: &str, result: Result<(), Error>, expect: Expect, out: &[f32], scratch: &[f32]) {
    match (result, expect) {
        (Err(e), Expect::Finite) => panic!("{what}: {e:?}, expected Ok"),
        (Ok(()), Expect::Err | Expect::Is(_)) => panic!("{what}: Ok, expected {expect:?}"),
        (Err(e), Expect::Is(want)) if e != want => panic!("{what}: {e:?}, expected {want:?}"),
        (Ok(()), Expect::Finite) => {
            if let Some(at) = out.iter().position(|x| !x.is_finite()) {
                panic!("{what}: non-finite output {} at {at}", out[at]);
            }
        }
        _ => {}
    }
    if result.is_err() {
        assert!(untouched(out), "{what}: {result:?} wrote to out");
        assert!(
            untouched(scratch),
            "{what}: {result:?} wrote to the scratch"
        );
    }
}

fn backends() -> Vec<Backend> {
    Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .collect()
}

#[test]
fn every_registry_kernel_on_every_bad_input() {
    let sentinel = f32::from_bits(SENTINEL);
    let mut calls = 0;
    for backend in backends() {
        set_backend(Some(backend)).unwrap();
        for (case, data, expect) in cases() {
            let lara = lara::Params::segment_means(
                data.landmarks,
                Weighting::Optimal { alpha_coeff: 1.0 },
            );
            let ra = match &data.key_indices {
                Some(indices) => ra::Params::new(ra::Mean::GivenKeys(indices)),
                None => ra::Params::new(ra::Mean::AttentionWeighted),
            };
            let call = Call {
                x: Qkv {
                    shape: data.shape,
                    q: &data.q,
                    k: &data.k,
                    v: &data.v,
                    key_mask: data.mask.as_deref(),
                },
                lara,
                ra,
                omega: &data.omega,
                noise: data.noise.as_deref(),
                seed: 7,
                gates: data.gates.as_deref(),
            };
            for kernel in KERNELS {
                let what = format!("{} on {backend}, {case}", kernel.name);
                let mut out = vec![sentinel; data.out_len];
                let asked = (kernel.scratch_len)(&call);
                let len = match data.scratch_short {
                    None => asked.min(1 << 20),
                    // What this backend needs (`scratch_len` is the largest over the
                    // backends compiled here), from the error of an empty scratch.
                    Some(short) => match (kernel.run)(&call, &mut out, &mut []) {
                        Err(Error::ScratchTooSmall { needed, actual: 0 }) => {
                            assert!(needed <= asked, "{what}: needs {needed} > {asked}");
                            // Exactly enough: Ok.
                            let mut scratch = vec![sentinel; needed];
                            let mut out = vec![sentinel; data.out_len];
                            let result = (kernel.run)(&call, &mut out, &mut scratch);
                            check(&what, result, Expect::Finite, &out, &scratch);
                            needed - short
                        }
                        other => panic!("{what}: empty scratch gave {other:?}"),
                    },
                };
                let mut scratch = vec![sentinel; len];
                let result = (kernel.run)(&call, &mut out, &mut scratch);
                check(&what, result, expect(kernel.name), &out, &scratch);
                calls += 1;
            }
        }
    }
    set_backend(None).unwrap();
    eprintln!("{calls} calls");
}

#[test]
fn every_int8_kernel_on_bad_lengths_scratch_masks_and_scales() {
    let shape = Shape::self_attention(9, 4).with_heads(2);
    let len = 2 * 9 * 4;
    let data = |seed: u64| -> Vec<i8> {
        randn(seed, len)
            .iter()
            .map(|x| (x * 40.0).clamp(-127.0, 127.0) as i8)
            .collect()
    };
    let (q, k, v) = (data(1), data(2), data(3));
    let omega: Vec<i8> = randn(4, 2 * FEATURES * 4)
        .iter()
        .map(|x| (x * 40.0) as i8)
        .collect();
    let scales = int8::Scales {
        q: 0.03,
        k: 0.03,
        v: 0.03,
        out: 0.03,
    };
    let all_masked = [true; 9];
    let short_mask = [false; 8];
    type Edit = fn(&mut Int8Call<'_>, &mut usize, &mut usize);
    let cases: [(&str, Edit, bool); 9] = [
        ("valid", |_, _, _| {}, true),
        ("short q", |c, _, _| c.x.q = &c.x.q[1..], false),
        ("short out", |_, out, _| *out -= 1, false),
        ("scratch one short", |_, _, s| *s -= 1, false),
        ("zero d", |c, _, _| c.x.shape.dim = 0, false),
        ("NaN scale", |c, _, _| c.scales.q = f32::NAN, false),
        ("zero scale", |c, _, _| c.scales.out = 0.0, false),
        (
            "overflowing n",
            |c, _, _| c.x.shape.keys = usize::MAX / 2,
            false,
        ),
        (
            "C = 0",
            |c, _, _| c.landmarks = int8::lara::Landmarks::SegmentMeans(0),
            false,
        ),
    ];
    for (case, edit, ok) in cases {
        for masks in [None, Some(&all_masked[..]), Some(&short_mask[..])] {
            for kernel in INT8_KERNELS {
                let mut call = Int8Call {
                    x: int8::Qkv {
                        shape,
                        q: &q,
                        k: &k,
                        v: &v,
                        key_mask: masks,
                    },
                    scales,
                    lara: int8::lara::Config::eval(Weighting::Optimal { alpha_coeff: 1.0 }),
                    landmarks: int8::lara::Landmarks::SegmentMeans(3),
                    noise: None,
                    omega: &omega,
                    omega_scale: 0.02,
                };
                let mut out_len = len;
                let mut scratch_len = (kernel.scratch_len)(&call).min(1 << 20);
                edit(&mut call, &mut out_len, &mut scratch_len);
                let applies = !(case == "C = 0" && kernel.name != "int8-lara");
                let ok = (ok || !applies) && masks.is_none();
                let what = format!(
                    "{}, {case}, mask {:?}",
                    kernel.name,
                    masks.map(<[bool]>::len)
                );
                let mut out = vec![0x5au8 as i8; out_len];
                let mut scratch = vec![0x5a5a_5a5a_i32; scratch_len];
                let result = (kernel.run)(&call, int8::Out::I8(&mut out), &mut scratch);
                assert_eq!(result.is_ok(), ok, "{what}: {result:?}");
                if result.is_err() {
                    assert!(out.iter().all(|&x| x == 0x5a), "{what}: wrote to out");
                    assert!(
                        scratch.iter().all(|&x| x == 0x5a5a_5a5a),
                        "{what}: wrote to the scratch"
                    );
                }
            }
        }
    }
}

#[test]
fn segment_means_rejects_non_finite_and_bad_shapes() {
    let sentinel = f32::from_bits(SENTINEL);
    let x = randn(1, 9 * 4);
    let mut out = vec![sentinel; 3 * 4];
    lara::segment_means(&x, 9, 4, 3, &mut out).unwrap();
    assert!(out.iter().all(|v| v.is_finite()));
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut x = x.clone();
        x[17] = bad;
        let mut out = vec![sentinel; 3 * 4];
        let result = lara::segment_means(&x, 9, 4, 3, &mut out);
        assert!(result.is_err(), "{bad}: {result:?}");
        assert!(untouched(&out), "{bad}: wrote to out");
    }
    for (rows, dim, segments, out_len) in [
        (0, 4, 3, 12),
        (9, 0, 3, 0),
        (9, 4, 0, 0),
        (9, 4, 10, 40),
        (9, 4, 3, 11),
        (8, 4, 3, 12),
        (usize::MAX, 4, 3, 12),
    ] {
        let mut out = vec![sentinel; out_len];
        let result = lara::segment_means(&x, rows, dim, segments, &mut out);
        assert!(result.is_err(), "{rows}x{dim}, {segments}: {result:?}");
        assert!(untouched(&out));
    }
}

#[test]
fn pool2d_rejects_bad_inputs() {
    let sentinel = f32::from_bits(SENTINEL);
    let x = randn(1, 6 * 5 * 4);
    let mut out = vec![sentinel; pool2d::pooled_len((2, 2), 4)];
    pool2d::adaptive_avg_pool_2d(&x, (6, 5), 4, (2, 2), &mut out).unwrap();
    assert!(out.iter().all(|v| v.is_finite()));
    let mut nan = x.clone();
    nan[33] = f32::NAN;
    for (what, x, grid, dim, pooled, out_len) in [
        ("NaN", &nan[..], (6, 5), 4, (2, 2), 16),
        ("zero pooled", &x[..], (6, 5), 4, (0, 2), 0),
        ("pooled > grid", &x[..], (6, 5), 4, (7, 2), 56),
        ("wrong x", &x[1..], (6, 5), 4, (2, 2), 16),
        ("wrong out", &x[..], (6, 5), 4, (2, 2), 15),
        ("overflow", &x[..], (usize::MAX, 5), 4, (2, 2), 16),
    ] {
        let mut out = vec![sentinel; out_len];
        let result = pool2d::adaptive_avg_pool_2d(x, grid, dim, pooled, &mut out);
        assert!(result.is_err(), "{what}: {result:?}");
        assert!(untouched(&out), "{what}: wrote to out");
    }
}

/// A layer case: name, `x`, layout, mask, out length, scratch shortfall, `Ok` expected.
type LayerCase<'a> = (
    &'a str,
    &'a [f32],
    lara_attn::layer::Layout,
    Option<&'a [bool]>,
    usize,
    usize,
    bool,
);

#[test]
fn layers_reject_bad_inputs() {
    use lara_attn::Sampling;
    use lara_attn::layer::{
        Attention, Config, LaraConfig, Layer, Layout, RandomizedMean, Tokens, Weights,
    };
    use lara_attn::rfa::FeatureMap;
    let sentinel = f32::from_bits(SENTINEL);
    let dim = 8;
    let n = 9;
    let weights_data = randn(10, 4 * dim * dim);
    let x = randn(20, n * dim);
    let mut nan = x.clone();
    nan[17] = f32::NAN;
    let huge: Vec<f32> = x.iter().map(|v| v * 1e4).collect();
    for attention in [
        Attention::Softmax,
        Attention::Lara(LaraConfig::segment_means(3)),
        Attention::Randomized(RandomizedMean::AttentionWeighted),
        Attention::Kernelized {
            map: FeatureMap::Positive,
            features: 4,
        },
    ] {
        let config = Config::new(dim, 2, attention);
        let weights = Weights::from_state_dict(&config, |key| {
            let spec = config.weight_specs().find(|s| s.key == key)?;
            Some(&weights_data[..spec.len()])
        })
        .unwrap();
        let layer = Layer::new(config, weights).unwrap();
        let all_masked = [true; 9];
        let short_mask = [false; 8];
        // (case, x, layout, mask, out length, scratch shortfall, Ok expected)
        let cases: [LayerCase<'_>; 10] = [
            ("valid", &x, Layout::Sequence(n), None, n * dim, 0, true),
            ("1e4", &huge, Layout::Sequence(n), None, n * dim, 0, true),
            ("n = 1", &x[..dim], Layout::Sequence(1), None, dim, 0, true),
            (
                "NaN in x",
                &nan,
                Layout::Sequence(n),
                None,
                n * dim,
                0,
                false,
            ),
            (
                "short x",
                &x[1..],
                Layout::Sequence(n),
                None,
                n * dim,
                0,
                false,
            ),
            (
                "short out",
                &x,
                Layout::Sequence(n),
                None,
                n * dim - 1,
                0,
                false,
            ),
            ("zero n", &[], Layout::Sequence(0), None, 0, 0, false),
            (
                "short scratch",
                &x,
                Layout::Sequence(n),
                None,
                n * dim,
                1,
                false,
            ),
            (
                "all masked",
                &x,
                Layout::Sequence(n),
                Some(&all_masked),
                n * dim,
                0,
                false,
            ),
            (
                "mask length",
                &x,
                Layout::Sequence(n),
                Some(&short_mask),
                n * dim,
                0,
                false,
            ),
        ];
        for (case, x, layout, key_mask, out_len, short, ok) in cases {
            let what = format!("{attention:?}, {case}");
            let tokens = Tokens {
                x,
                layout,
                key_mask,
            };
            let mut out = vec![sentinel; out_len];
            let needed = if short == 0 {
                Layer::scratch_len(&config, layout).min(1 << 20)
            } else {
                // What the active backend needs (`scratch_len` is the largest over the
                // backends compiled here), from the error of an empty scratch.
                match layer.forward(&tokens, Sampling::Eval, &mut out, &mut []) {
                    Err(Error::ScratchTooSmall { needed, actual: 0 }) => needed,
                    other => panic!("{what}: empty scratch gave {other:?}"),
                }
            };
            let mut scratch = vec![sentinel; needed - short];
            let result = layer.forward(&tokens, Sampling::Eval, &mut out, &mut scratch);
            let expect = if ok { Expect::Finite } else { Expect::Err };
            check(&what, result, expect, &out, &scratch);
        }
        // Overflowing grid.
        let tokens = Tokens {
            x: &x,
            layout: Layout::Grid {
                height: usize::MAX / 2,
                width: 3,
            },
            key_mask: None,
        };
        let mut out = vec![sentinel; n * dim];
        let mut scratch = vec![sentinel; 1 << 12];
        let result = layer.forward(&tokens, Sampling::Eval, &mut out, &mut scratch);
        check(
            &format!("{attention:?}, overflowing grid"),
            result,
            Expect::Is(Error::SizeOverflow),
            &out,
            &scratch,
        );
    }
}
