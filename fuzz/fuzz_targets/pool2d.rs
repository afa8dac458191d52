//! 2-D pooling (`pool2d::adaptive_avg_pool_2d`, `pool2d::pooled_landmarks`) and 1-D segment
//! means (`lara::segment_means`): nothing written on error, finite means of finite inputs within
//! the documented limit, and each cell the mean of its PyTorch rectangle (checked in `f64`).
#![no_main]
use lara_attn::{lara, pool2d};
use lara_attn_fuzz::{Bytes, FINITE_LIMIT, SENTINEL, assert_finite, assert_untouched, within};
use libfuzzer_sys::fuzz_target;

/// PyTorch's cell `[floor(i·n/p), ceil((i+1)·n/p))`.
fn cell(i: usize, n: usize, p: usize) -> (usize, usize) {
    (i * n / p, ((i + 1) * n).div_ceil(p))
}

fn check_pool(
    x: &[f32],
    (h, w): (usize, usize),
    dim: usize,
    (ph, pw): (usize, usize),
    out: &[f32],
) {
    for i in 0..ph {
        for j in 0..pw {
            let ((r0, r1), (c0, c1)) = (cell(i, h, ph), cell(j, w, pw));
            for e in 0..dim {
                let mut sum = 0.0f64;
                for y in r0..r1 {
                    for xx in c0..c1 {
                        sum += f64::from(x[(y * w + xx) * dim + e]);
                    }
                }
                let mean = sum / ((r1 - r0) * (c1 - c0)) as f64;
                let got = f64::from(out[(i * pw + j) * dim + e]);
                let tol = 2e-5 * x.iter().fold(1.0f64, |m, v| m.max(f64::from(v.abs())));
                assert!(
                    (got - mean).abs() <= tol,
                    "cell ({i},{j})[{e}]: {got} vs {mean}"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let which = b.below(3);
    let grid = if b.one_in(32) {
        (b.below(3), b.below(3))
    } else {
        (b.range(1, 12), b.range(1, 12))
    };
    let dim = if b.one_in(32) { 0 } else { b.range(1, 6) };
    let pooled = (b.below(grid.0 + 2), b.below(grid.1 + 2));
    let magnitude = b.magnitude();
    let tokens = grid.0 * grid.1;
    let mut x = {
        let len = b.len_or_wrong(tokens * dim, 32);
        b.floats(len, magnitude)
    };
    b.poison(&mut x, 16);
    let out_len = b.len_or_wrong(pool2d::pooled_len(pooled, dim), 32);
    let context = (which, grid, dim, pooled, x.len(), out_len);
    match which {
        0 => {
            let mut out = vec![SENTINEL; out_len];
            match pool2d::adaptive_avg_pool_2d(&x, grid, dim, pooled, &mut out) {
                Err(_) => assert_untouched("out", &out, SENTINEL, &context),
                Ok(()) => {
                    if within(&x, FINITE_LIMIT) {
                        assert_finite("pool", &out, &context);
                    }
                    check_pool(&x, grid, dim, pooled, &out);
                }
            }
        }
        1 => {
            let mut k = {
                let len = b.len_or_wrong(tokens * dim, 32);
                b.floats(len, magnitude)
            };
            b.poison(&mut k, 16);
            let mut q_bar = vec![SENTINEL; out_len];
            let mut k_bar = {
                let len = b.len_or_wrong(out_len, 32);
                vec![SENTINEL; len]
            };
            let result = pool2d::pooled_landmarks(
                &x, &k, grid, dim, pooled, &mut q_bar, &mut k_bar,
            )
            .map(|landmarks| match landmarks {
                lara::Landmarks::Given { count, .. } => count,
                lara::Landmarks::SegmentMeans(_) => unreachable!("pooled landmarks are given"),
            });
            match result {
                Err(_) => {
                    assert_untouched("q_bar", &q_bar, SENTINEL, &context);
                    assert_untouched("k_bar", &k_bar, SENTINEL, &context);
                }
                Ok(count) => {
                    assert_eq!(count, pooled.0 * pooled.1);
                    if within(&x, FINITE_LIMIT) && within(&k, FINITE_LIMIT) {
                        assert_finite("q_bar", &q_bar, &context);
                        assert_finite("k_bar", &k_bar, &context);
                    }
                    check_pool(&x, grid, dim, pooled, &q_bar);
                    check_pool(&k, grid, dim, pooled, &k_bar);
                }
            }
        }
        _ => {
            // 1-D: rows = H·W, segments = P_w
            let (rows, segments) = (tokens, pooled.1);
            let mut out = {
                let len = b.len_or_wrong(segments * dim, 32);
                vec![SENTINEL; len]
            };
            match lara::segment_means(&x, rows, dim, segments, &mut out) {
                Err(_) => assert_untouched("out", &out, SENTINEL, &context),
                Ok(()) => {
                    if within(&x, FINITE_LIMIT) {
                        assert_finite("segment_means", &out, &context);
                    }
                }
            }
        }
    }
});
