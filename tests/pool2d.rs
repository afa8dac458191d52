//! 2-D landmarks (`pool2d`): PyTorch `AdaptiveAvgPool2d` semantics on hand-computed cases, an
//! independent f64 reference over every grid and pool up to 12 × 12, LARA with pooled
//! landmarks against LARA with segment means, and the error paths.
//!
//! The semantics (PyTorch's `start_index` / `end_index`): cell `(i, j)` of a pool of an `H × W`
//! grid to `P_h × P_w` averages rows `[floor(i·H/P_h), ceil((i+1)·H/P_h))` × columns
//! `[floor(j·W/P_w), ceil((j+1)·W/P_w))`; token `t = y·W + x`, cell `(i, j)` is row `i·P_w + j`.

use lara_attn::lara::{self, Landmarks, Params, Weighting};
use lara_attn::random::{default_rng, fill_standard_normal};
use lara_attn::{Arg, Dim, Error, Qkv, Sampling, Shape, pool2d};

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut x = vec![0.0; len];
    fill_standard_normal(&mut default_rng(seed), &mut x);
    x
}

fn pool(x: &[f32], grid: (usize, usize), dim: usize, pooled: (usize, usize)) -> Vec<f32> {
    let mut out = vec![f32::NAN; pool2d::pooled_len(pooled, dim)];
    pool2d::adaptive_avg_pool_2d(x, grid, dim, pooled, &mut out).unwrap();
    out
}

// ---------------------------------------------------------------------------------------------
// Hand-computed cases. Every value below is exact in f32 (integer sums, exact quotients), so
// the comparisons are exact.
// ---------------------------------------------------------------------------------------------

/// H = 5, W = 7 pooled to 2 × 3 (neither side divisible), d = 3.
///
/// Rows: 5 → 2 gives `[0, ceil(5/2)) = [0, 3)` and `[floor(5/2), 5) = [2, 5)` (row 2 shared).
/// Columns: 7 → 3 gives `[0, ceil(7/3)) = [0, 3)`, `[floor(7/3), ceil(14/3)) = [2, 5)`,
/// `[floor(14/3), 7) = [4, 7)` (columns 2 and 4 shared). Every cell is 3 × 3 tokens.
/// Channels: `t = 7y + x`, `x·y`, and the constant −1.5. Over a rectangle `Y × X` the mean of
/// `7y + x` is `7·ȳ + x̄` and the mean of `x·y` is `ȳ·x̄`, with `ȳ ∈ {1, 3}`, `x̄ ∈ {1, 3, 5}`.
#[test]
fn five_by_seven_to_two_by_three() {
    let (h, w, d) = (5, 7, 3);
    let mut x = Vec::with_capacity(h * w * d);
    for y in 0..h {
        for col in 0..w {
            x.extend([(7 * y + col) as f32, (col * y) as f32, -1.5]);
        }
    }
    let expected = [
        [8.0, 1.0, -1.5],   // rows {0,1,2} × cols {0,1,2}: 7·1 + 1, 1·1
        [10.0, 3.0, -1.5],  // rows {0,1,2} × cols {2,3,4}: 7·1 + 3, 1·3
        [12.0, 5.0, -1.5],  // rows {0,1,2} × cols {4,5,6}: 7·1 + 5, 1·5
        [22.0, 3.0, -1.5],  // rows {2,3,4} × cols {0,1,2}: 7·3 + 1, 3·1
        [24.0, 9.0, -1.5],  // rows {2,3,4} × cols {2,3,4}: 7·3 + 3, 3·3
        [26.0, 15.0, -1.5], // rows {2,3,4} × cols {4,5,6}: 7·3 + 5, 3·5
    ];
    assert_eq!(pool(&x, (h, w), d, (2, 3)), expected.as_flattened());
}

/// 3 × 3 pooled to 2 × 2: both sides split as `[0, 2)` and `[1, 3)`, so the middle row and
/// column belong to two cells and the centre token to all four. Values `t²` (not separable).
#[test]
fn three_by_three_to_two_by_two_overlaps() {
    let x: Vec<f32> = (0..9).map(|t| (t * t) as f32).collect();
    // {0,1,3,4}: (0+1+9+16)/4; {1,2,4,5}: (1+4+16+25)/4; {3,4,6,7}: (9+16+36+49)/4;
    // {4,5,7,8}: (16+25+49+64)/4.
    assert_eq!(pool(&x, (3, 3), 1, (2, 2)), [6.5, 11.5, 27.5, 38.5]);
}

/// 4 × 6 pooled to 2 × 3 (divisible): disjoint 2 × 2 blocks, no overlap.
#[test]
fn divisible_grid_is_disjoint_blocks() {
    let x: Vec<f32> = (0..24).map(|t| t as f32).collect();
    // Block (i, j) = rows {2i, 2i+1} × cols {2j, 2j+1}: mean 6·(2i + 0.5) + 2j + 0.5.
    assert_eq!(
        pool(&x, (4, 6), 1, (2, 3)),
        [3.5, 5.5, 7.5, 15.5, 17.5, 19.5]
    );
}

/// One side pooled, the other kept: 2 × 5 to 2 × 2 (columns `[0, 3)`, `[2, 5)`), 5 × 1 to 3 × 1
/// (rows `[0, 2)`, `[1, 4)`, `[3, 5)`).
#[test]
fn one_sided_pools() {
    let x: Vec<f32> = (0..10).map(|t| t as f32).collect();
    // row 0: {0,1,2}, {2,3,4}; row 1: {5,6,7}, {7,8,9}
    assert_eq!(pool(&x, (2, 5), 1, (2, 2)), [1.0, 3.0, 6.0, 8.0]);
    let x = [0.0, 1.0, 2.0, 3.0, 4.0];
    assert_eq!(pool(&x, (5, 1), 1, (3, 1)), [0.5, 2.0, 3.5]);
}

/// `pooled = grid` is the identity, bit for bit (each cell is one token divided by 1).
#[test]
fn pooled_equal_to_grid_is_the_identity() {
    for (h, w, d) in [(1, 1, 1), (3, 5, 2), (7, 4, 3), (12, 12, 1)] {
        let x = random(h * w * d, (h * 100 + w) as u64);
        let out = pool(&x, (h, w), d, (h, w));
        assert_eq!(
            out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{h}×{w}, d={d}"
        );
    }
}

/// `pooled = (1, 1)` is the global mean of every channel.
#[test]
fn one_by_one_is_the_global_mean() {
    // 4 × 5 grid, d = 2: channel 0 = t (mean 9.5), channel 1 = 2 − t (mean −7.5).
    let x: Vec<f32> = (0..20).flat_map(|t| [t as f32, 2.0 - t as f32]).collect();
    assert_eq!(pool(&x, (4, 5), 2, (1, 1)), [9.5, -7.5]);
}

// ---------------------------------------------------------------------------------------------
// Independent f64 reference: the index formulas as written in PyTorch's documentation, with
// floor and ceil of f64 quotients (exact here: i·H and P are small integers, and a quotient
// that is not an integer is at least 1/P away from one).
// ---------------------------------------------------------------------------------------------

fn reference_cells(len: usize, parts: usize) -> Vec<(usize, usize)> {
    (0..parts)
        .map(|i| {
            let start = (i as f64 * len as f64 / parts as f64).floor() as usize;
            let end = ((i + 1) as f64 * len as f64 / parts as f64).ceil() as usize;
            (start, end)
        })
        .collect()
}

fn reference_pool(x: &[f32], grid: (usize, usize), dim: usize, pooled: (usize, usize)) -> Vec<f64> {
    let mut out = Vec::new();
    for &(h0, h1) in &reference_cells(grid.0, pooled.0) {
        for &(w0, w1) in &reference_cells(grid.1, pooled.1) {
            let count = ((h1 - h0) * (w1 - w0)) as f64;
            for c in 0..dim {
                let mut sum = 0.0f64;
                for y in h0..h1 {
                    for col in w0..w1 {
                        sum += f64::from(x[(y * grid.1 + col) * dim + c]);
                    }
                }
                out.push(sum / count);
            }
        }
    }
    out
}

#[test]
fn matches_the_f64_reference_on_every_grid_up_to_12() {
    let mut checked = 0;
    for h in 1..=12 {
        for w in 1..=12 {
            let dim = 1 + (h + w) % 3;
            let x = random(h * w * dim, (h * 13 + w) as u64);
            for ph in 1..=h {
                for pw in 1..=w {
                    // Structure: cells are non-empty, cover the side, start at 0 and end at
                    // the side, and are non-decreasing.
                    for (len, parts) in [(h, ph), (w, pw)] {
                        let cells = reference_cells(len, parts);
                        assert_eq!(cells.first().unwrap().0, 0);
                        assert_eq!(cells.last().unwrap().1, len);
                        for pair in cells.windows(2) {
                            assert!(pair[1].0 <= pair[0].1, "gap: len={len} parts={parts}");
                            assert!(pair[0].0 < pair[1].0 && pair[0].1 < pair[1].1);
                        }
                        assert!(cells.iter().all(|&(s, e)| s < e));
                    }
                    let got = pool(&x, (h, w), dim, (ph, pw));
                    let want = reference_pool(&x, (h, w), dim, (ph, pw));
                    assert_eq!(got.len(), want.len());
                    // f32 summation of at most 144 terms of |x| ≲ 4, then one division: the
                    // error is below (count + 1)·2⁻²⁴·max|x|; 1e-5 is a safe bound.
                    for (cell, (&g, &r)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (f64::from(g) - r).abs() <= 1e-5 * (1.0 + r.abs()),
                            "{h}×{w}→{ph}×{pw} d={dim} element {cell}: {g} vs {r}"
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    // Σ_{h,w ≤ 12} h·w = 78² grids-and-pools.
    assert_eq!(checked, 78 * 78);
}

// ---------------------------------------------------------------------------------------------
// LARA with pooled landmarks against LARA with segment means.
//
// With H = 1 the pool is PyTorch's AdaptiveAvgPool1d over the sequence: cells
// [floor(j·n/C), ceil((j+1)·n/C)). The official LARA split (`lara::segment_means`) partitions
// the sequence into C contiguous segments, the first `(g+1)·C − n` of length g = n div C and the
// rest g + 1. The two agree exactly when C divides n (equal disjoint segments of n/C; this
// includes C = 1 and C = n). When C does not divide n they differ: PyTorch's first cell is
// [0, ceil(n/C)) = g + 1 tokens and overlaps the second, while the official first segment has g
// tokens; in general PyTorch's cells sum to more than n tokens.
// ---------------------------------------------------------------------------------------------

fn segment_means(x: &[f32], n: usize, dim: usize, c: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; c * dim];
    lara::segment_means(x, n, dim, c, &mut out).unwrap();
    out
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn one_dimensional_pool_equals_segment_means_exactly_when_c_divides_n() {
    for n in 1..=24usize {
        let ramp: Vec<f32> = (0..n).map(|t| t as f32).collect();
        let x = random(n * 3, n as u64);
        for c in 1..=n {
            let divisible = n.is_multiple_of(c);
            // A 1 × n grid (H = 1) and an n × 1 grid (W = 1) are both the 1-D pool.
            for grid in [(1, n), (n, 1)] {
                let pooled = if grid.0 == 1 { (1, c) } else { (c, 1) };
                let same_ramp = pool(&ramp, grid, 1, pooled) == segment_means(&ramp, n, 1, c);
                assert_eq!(same_ramp, divisible, "n={n} C={c} grid={grid:?}");
                if divisible {
                    assert_eq!(
                        bits(&pool(&x, grid, 3, pooled)),
                        bits(&segment_means(&x, n, 3, c)),
                        "n={n} C={c}"
                    );
                }
            }
        }
    }
    // n = 7, C = 4: PyTorch [0,2) [1,4) [3,6) [5,7); official {0} {1,2} {3,4} {5,6}.
    let ramp: Vec<f32> = (0..7).map(|t| t as f32).collect();
    assert_eq!(pool(&ramp, (1, 7), 1, (1, 4)), [0.5, 2.0, 4.0, 5.5]);
    assert_eq!(segment_means(&ramp, 7, 1, 4), [0.0, 1.5, 3.5, 5.5]);
}

/// Runs LARA (eval, or sampled with the given noise) with the given landmarks.
fn lara_out(
    shape: Shape,
    landmarks: Landmarks<'_>,
    weighting: Weighting,
    x: (&[f32], &[f32], &[f32]),
    noise: Option<&[f32]>,
    c: usize,
) -> Vec<f32> {
    let params = Params {
        landmarks,
        weighting,
        ..Default::default()
    };
    let mut out = vec![f32::NAN; shape.queries * shape.value_dim];
    let mut scratch = vec![f32::NAN; lara::scratch_len(shape, c, params.proposals)];
    let inputs = Qkv {
        shape,
        q: x.0,
        k: x.1,
        v: x.2,
        key_mask: None,
    };
    let sampling = match noise {
        Some(eps) => Sampling::Noise(eps),
        None => Sampling::Eval,
    };
    lara::attention(&inputs, &params, sampling, &mut out, &mut scratch).unwrap();
    out
}

const WEIGHTINGS: [Weighting; 3] = [
    Weighting::Optimal { alpha_coeff: 1.0 },
    Weighting::BalanceHeuristic,
    Weighting::Biased,
];

/// H = 1, C | n: LARA with `pooled_landmarks` through `Landmarks::Given` gives bit for bit the
/// output of LARA with `Landmarks::SegmentMeans(C)`, in eval and in sampled mode.
#[test]
fn lara_with_one_dimensional_pooled_landmarks_equals_segment_means() {
    let d = 6;
    for (n, c) in [(16, 4), (24, 8), (12, 12), (20, 1), (36, 6)] {
        let shape = Shape::self_attention(n, d);
        let (q, k, v) = (random(n * d, 1), random(n * d, 2), random(n * d, 3));
        let noise = random(c * d, 4);
        let (mut q_bar, mut k_bar) = (vec![0.0; c * d], vec![0.0; c * d]);
        let given =
            pool2d::pooled_landmarks(&q, &k, (1, n), d, (1, c), &mut q_bar, &mut k_bar).unwrap();
        assert_eq!(
            given,
            Landmarks::Given {
                count: c,
                queries: &segment_means(&q, n, d, c),
                keys: &segment_means(&k, n, d, c),
            }
        );
        for weighting in WEIGHTINGS {
            for eps in [None, Some(noise.as_slice())] {
                let pooled = lara_out(shape, given, weighting, (&q, &k, &v), eps, c);
                let segments = lara_out(
                    shape,
                    Landmarks::SegmentMeans(c),
                    weighting,
                    (&q, &k, &v),
                    eps,
                    c,
                );
                assert_eq!(
                    bits(&pooled),
                    bits(&segments),
                    "n={n} C={c} {weighting:?} sampled={}",
                    eps.is_some()
                );
            }
        }
    }
}

/// 2-D grids where the pool is a segment split in token order: `P_w = 1` with `P_h | H` (each
/// cell is whole grid rows, a contiguous run of `H·W/P_h` tokens) and `pooled = grid` (every
/// token its own landmark, C = n). LARA gives bit for bit the segment-means output.
#[test]
fn lara_with_row_band_and_identity_pools_equals_segment_means() {
    let d = 4;
    for (grid, pooled) in [
        ((6, 5), (3, 1)),
        ((8, 4), (2, 1)),
        ((4, 4), (4, 4)),
        ((3, 5), (3, 5)),
    ] {
        let n = grid.0 * grid.1;
        let c = pool2d::landmark_count(pooled);
        let shape = Shape::self_attention(n, d);
        let (q, k, v) = (random(n * d, 5), random(n * d, 6), random(n * d, 7));
        let (mut q_bar, mut k_bar) = (vec![0.0; c * d], vec![0.0; c * d]);
        let given =
            pool2d::pooled_landmarks(&q, &k, grid, d, pooled, &mut q_bar, &mut k_bar).unwrap();
        for weighting in WEIGHTINGS {
            let pooled_out = lara_out(shape, given, weighting, (&q, &k, &v), None, c);
            let segments = lara_out(
                shape,
                Landmarks::SegmentMeans(c),
                weighting,
                (&q, &k, &v),
                None,
                c,
            );
            assert_eq!(bits(&pooled_out), bits(&segments), "{grid:?}→{pooled:?}");
        }
    }
}

/// A genuinely 2-D pool (5 × 7 → 2 × 3, overlapping cells) through LARA: the landmarks are the
/// pooled rows, and the output is finite and a convex combination of value rows (LARA's output
/// rows are convex combinations of the `kv` rows, themselves convex combinations of `v`).
#[test]
fn lara_with_two_dimensional_pooled_landmarks() {
    let (grid, pooled, d) = ((5, 7), (2, 3), 5);
    let n = 35;
    let c = 6;
    let shape = Shape::self_attention(n, d);
    let (q, k, v) = (random(n * d, 8), random(n * d, 9), random(n * d, 10));
    let (mut q_bar, mut k_bar) = (vec![0.0; c * d], vec![0.0; c * d]);
    let given = pool2d::pooled_landmarks(&q, &k, grid, d, pooled, &mut q_bar, &mut k_bar).unwrap();
    let Landmarks::Given {
        count,
        queries,
        keys,
    } = given
    else {
        panic!("pooled_landmarks returns Landmarks::Given");
    };
    assert_eq!(count, c);
    assert_eq!(queries, pool(&q, grid, d, pooled));
    assert_eq!(keys, pool(&k, grid, d, pooled));
    for weighting in WEIGHTINGS {
        let out = lara_out(shape, given, weighting, (&q, &k, &v), None, c);
        for col in 0..d {
            let (lo, hi) = (0..n)
                .map(|t| v[t * d + col])
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| {
                    (lo.min(x), hi.max(x))
                });
            for row in 0..n {
                let o = out[row * d + col];
                assert!(
                    o >= lo - 1e-5 && o <= hi + 1e-5,
                    "{weighting:?} ({row}, {col})"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors: the right variant, and nothing written.
// ---------------------------------------------------------------------------------------------

const SENTINEL: f32 = 7.25;

fn pool_err(
    x: &[f32],
    grid: (usize, usize),
    dim: usize,
    pooled: (usize, usize),
    out_len: usize,
) -> Error {
    let mut out = vec![SENTINEL; out_len];
    let err = pool2d::adaptive_avg_pool_2d(x, grid, dim, pooled, &mut out).unwrap_err();
    assert!(
        out.iter().all(|&o| o.to_bits() == SENTINEL.to_bits()),
        "{err:?} wrote to out"
    );
    err
}

#[test]
fn pool_errors_leave_out_untouched() {
    let x = vec![0.5f32; 3 * 4 * 2]; // 3 × 4 grid, d = 2
    // Zero sizes.
    assert_eq!(
        pool_err(&x, (0, 4), 2, (1, 1), 2),
        Error::ZeroDimension(Dim::Queries)
    );
    assert_eq!(
        pool_err(&x, (3, 0), 2, (1, 1), 2),
        Error::ZeroDimension(Dim::Queries)
    );
    assert_eq!(
        pool_err(&x, (3, 4), 0, (1, 1), 2),
        Error::ZeroDimension(Dim::Model)
    );
    assert_eq!(pool_err(&x, (3, 4), 2, (0, 2), 2), Error::ZeroLandmarks);
    assert_eq!(pool_err(&x, (3, 4), 2, (2, 0), 2), Error::ZeroLandmarks);
    // Pooled larger than the grid (on either side, even if the product fits): the side that
    // is too small is reported, the rows first.
    let too_many = |landmarks, rows| Error::TooManyLandmarks { landmarks, rows };
    assert_eq!(pool_err(&x, (3, 4), 2, (4, 1), 8), too_many(4, 3));
    assert_eq!(pool_err(&x, (3, 4), 2, (1, 5), 10), too_many(5, 4));
    assert_eq!(pool_err(&x, (3, 4), 2, (4, 3), 24), too_many(4, 3));
    assert_eq!(pool_err(&x, (3, 4), 2, (4, 5), 40), too_many(4, 3));
    assert_eq!(pool_err(&x, (3, 4), 2, (3, 5), 30), too_many(5, 4));
    // Overflow of H·W·d.
    assert_eq!(
        pool_err(&x, (usize::MAX, 2), 2, (1, 1), 2),
        Error::SizeOverflow
    );
    assert_eq!(
        pool_err(&x, (usize::MAX / 2, 2), 2, (1, 1), 2),
        Error::SizeOverflow
    );
    // Lengths.
    assert_eq!(
        pool_err(&x[1..], (3, 4), 2, (2, 2), 8),
        Error::LengthMismatch {
            arg: Arg::Queries,
            expected: 24,
            actual: 23
        }
    );
    assert_eq!(
        pool_err(&x, (3, 4), 2, (2, 2), 9),
        Error::LengthMismatch {
            arg: Arg::QueryLandmarks,
            expected: 8,
            actual: 9
        }
    );
    // Non-finite inputs.
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut y = x.clone();
        y[13] = bad;
        assert_eq!(
            pool_err(&y, (3, 4), 2, (2, 2), 8),
            Error::NonFinite(Arg::Queries)
        );
    }
}

#[test]
fn pooled_landmarks_errors_leave_both_outputs_untouched() {
    let (grid, d, pooled) = ((4, 4), 3, (2, 2));
    let good = random(16 * d, 11);
    let mut nan_k = good.clone();
    nan_k[40] = f32::NAN;
    let short = &good[..good.len() - 1];
    type Case<'a> = (&'a [f32], &'a [f32], usize, usize, Error);
    let cases: [Case<'_>; 6] = [
        (
            short,
            &good,
            12,
            12,
            Error::LengthMismatch {
                arg: Arg::Queries,
                expected: 48,
                actual: 47,
            },
        ),
        (
            &good,
            short,
            12,
            12,
            Error::LengthMismatch {
                arg: Arg::Keys,
                expected: 48,
                actual: 47,
            },
        ),
        (
            &good,
            &good,
            11,
            12,
            Error::LengthMismatch {
                arg: Arg::QueryLandmarks,
                expected: 12,
                actual: 11,
            },
        ),
        (
            &good,
            &good,
            12,
            13,
            Error::LengthMismatch {
                arg: Arg::KeyLandmarks,
                expected: 12,
                actual: 13,
            },
        ),
        // A valid q with a non-finite k: q̄ is not written either.
        (&good, &nan_k, 12, 12, Error::NonFinite(Arg::Keys)),
        (&nan_k, &good, 12, 12, Error::NonFinite(Arg::Queries)),
    ];
    for (q, k, q_len, k_len, expected) in cases {
        let (mut q_bar, mut k_bar) = (vec![SENTINEL; q_len], vec![SENTINEL; k_len]);
        let err =
            pool2d::pooled_landmarks(q, k, grid, d, pooled, &mut q_bar, &mut k_bar).unwrap_err();
        assert_eq!(err, expected);
        assert!(
            q_bar
                .iter()
                .chain(&k_bar)
                .all(|&o| o.to_bits() == SENTINEL.to_bits())
        );
    }
    // Dimension errors come first.
    let (mut q_bar, mut k_bar) = (vec![SENTINEL; 12], vec![SENTINEL; 12]);
    for (grid, dim, pooled, expected) in [
        ((0, 4), d, pooled, Error::ZeroDimension(Dim::Queries)),
        (grid, 0, pooled, Error::ZeroDimension(Dim::Model)),
        (
            grid,
            d,
            (5, 1),
            Error::TooManyLandmarks {
                landmarks: 5,
                rows: 4,
            },
        ),
        (
            grid,
            d,
            (2, 6),
            Error::TooManyLandmarks {
                landmarks: 6,
                rows: 4,
            },
        ),
        (grid, d, (1, 0), Error::ZeroLandmarks),
    ] {
        let err = pool2d::pooled_landmarks(&good, &good, grid, dim, pooled, &mut q_bar, &mut k_bar)
            .unwrap_err();
        assert_eq!(err, expected);
    }
    assert!(
        q_bar
            .iter()
            .chain(&k_bar)
            .all(|&o| o.to_bits() == SENTINEL.to_bits())
    );
}

#[test]
fn const_sizes() {
    const POOLED: (usize, usize) = (3, 3); // the paper's √C × √C grid for C = 9
    const C: usize = pool2d::landmark_count(POOLED);
    const LEN: usize = pool2d::pooled_len(POOLED, 16);
    assert_eq!((C, LEN), (9, 144));
    assert_eq!(pool2d::landmark_count((usize::MAX, 2)), usize::MAX);
}
