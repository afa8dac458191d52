//! The tile operations the blocked kernels share: packing a matrix transposed and scaled,
//! column and row reductions of a `[rows, ld]` tile of logits, the online log-sum-exp update of
//! a block, and the iteration over blocks of keys. All generic over [`Isa`] and
//! `#[inline(always)]`, like the kernels built from them.

use super::{Isa, TileOp, exp, gemm, scale_add};
use crate::slices::{prefix, rows, rows_mut};

/// Rows (keys or queries) per block.
pub(crate) const BLOCK: usize = 32;

/// `dst[p·ld + offset + r] = scale · src[r·cols + p]`: the transpose of `src [rows, cols]`,
/// scaled, into columns `offset .. offset + rows` of `dst [cols, ld]`.
pub(crate) fn pack_transposed(
    src: &[f32],
    cols: usize,
    scale: f32,
    dst: &mut [f32],
    ld: usize,
    offset: usize,
) {
    for (p, dst_row) in rows_mut(dst, ld).take(cols).enumerate() {
        for (d, src_row) in dst_row.iter_mut().skip(offset).zip(rows(src, cols)) {
            if let Some(&x) = src_row.get(p) {
                *d = scale * x;
            }
        }
    }
}

/// Column-wise on `tile [rows, ld]` (first `cols` columns): `max[c] = max_j tile[j, c]`.
#[inline(always)]
pub(crate) fn column_max<I: Isa>(isa: I, tile: &[f32], ld: usize, cols: usize, max: &mut [f32]) {
    isa.call(ColumnMax {
        tile,
        ld,
        cols,
        max,
    });
}

/// The arguments of [`column_max`].
struct ColumnMax<'a> {
    tile: &'a [f32],
    ld: usize,
    cols: usize,
    max: &'a mut [f32],
}

impl TileOp for ColumnMax<'_> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self, isa: I) {
        let ColumnMax {
            tile,
            ld,
            cols,
            max,
        } = self;
        let cols = cols.min(ld).min(max.len());
        if I::COLUMNS_INNERMOST {
            // Row by row, the columns innermost (for the auto-vectoriser).
            max.fill(f32::NEG_INFINITY);
            for row in rows(tile, ld) {
                for (m, &x) in max.iter_mut().zip(row).take(cols) {
                    *m = isa.reduce_max(isa.max(isa.splat(*m), isa.splat(x)));
                }
            }
            return;
        }
        let row_count = tile.len() / ld.max(1);
        // A vector of columns at a time, down the rows: its maxima stay in a register.
        let vectors = cols / I::LANES;
        for v in 0..vectors {
            let c = v * I::LANES;
            let mut m = isa.splat(f32::NEG_INFINITY);
            for j in 0..row_count {
                // SAFETY: j < row_count and c + LANES <= cols <= ld, so j·ld + c + LANES <= len.
                m = isa.max(m, unsafe { isa.load(tile.as_ptr().add(j * ld + c)) });
            }
            // SAFETY: c + LANES <= cols <= len of max.
            unsafe { isa.store(max.as_mut_ptr().add(c), m) };
        }
        // (One lane: no tail.)
        if I::LANES > 1 {
            for (c, m) in max
                .iter_mut()
                .enumerate()
                .take(cols)
                .skip(vectors * I::LANES)
            {
                *m = rows(tile, ld).fold(f32::NEG_INFINITY, |m, row| {
                    m.max(row.get(c).copied().unwrap_or(f32::NEG_INFINITY))
                });
            }
        }
    }
}

/// Column-wise: `tile[j, c] = e^(tile[j, c] − shift[c])` and `sum[c] += tile[j, c]`, for the
/// first `cols` columns.
#[inline(always)]
pub(crate) fn column_exp_sum<I: Isa>(
    isa: I,
    tile: &mut [f32],
    ld: usize,
    cols: usize,
    shift: &[f32],
    sum: &mut [f32],
) {
    isa.call(ColumnExpSum {
        tile,
        ld,
        cols,
        shift,
        sum,
    });
}

/// The arguments of [`column_exp_sum`].
struct ColumnExpSum<'a> {
    tile: &'a mut [f32],
    ld: usize,
    cols: usize,
    shift: &'a [f32],
    sum: &'a mut [f32],
}

impl TileOp for ColumnExpSum<'_> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self, isa: I) {
        let ColumnExpSum {
            tile,
            ld,
            cols,
            shift,
            sum,
        } = self;
        let cols = cols.min(ld).min(shift.len()).min(sum.len());
        if I::COLUMNS_INNERMOST {
            // Row by row, the columns innermost (for the auto-vectoriser), each column summed in
            // row order as below.
            for row in rows_mut(tile, ld) {
                for ((x, &s), total) in row.iter_mut().zip(shift).zip(sum.iter_mut()).take(cols) {
                    let e = isa.reduce_add(exp(isa, isa.sub(isa.splat(*x), isa.splat(s))));
                    *x = e;
                    *total += e;
                }
            }
            return;
        }
        let row_count = tile.len() / ld.max(1);
        // A vector of columns at a time, down the rows: its shift and sum stay in registers, and
        // each column is summed in row order, as a row-by-row update would.
        let vectors = cols / I::LANES;
        let tail = cols - vectors * I::LANES;
        for v in 0..vectors {
            let c = v * I::LANES;
            // SAFETY: c + LANES <= cols <= len of shift and sum.
            let (s, mut total) = unsafe {
                (
                    isa.load(shift.as_ptr().add(c)),
                    isa.load(sum.as_ptr().add(c)),
                )
            };
            for j in 0..row_count {
                // SAFETY: j < row_count and c + LANES <= cols <= ld, so j·ld + c + LANES <= len.
                unsafe {
                    let p = tile.as_mut_ptr().add(j * ld + c);
                    let e = exp(isa, isa.sub(isa.load(p), s));
                    isa.store(p, e);
                    total = isa.add(total, e);
                }
            }
            // SAFETY: as above.
            unsafe { isa.store(sum.as_mut_ptr().add(c), total) };
        }
        if tail > 0 {
            // One partial vector for the last columns.
            let c = vectors * I::LANES;
            // SAFETY: c + tail = cols <= len of shift and sum, and <= ld.
            unsafe {
                let s = isa.load_partial(shift.as_ptr().add(c), tail);
                let mut total = isa.load_partial(sum.as_ptr().add(c), tail);
                for j in 0..row_count {
                    let p = tile.as_mut_ptr().add(j * ld + c);
                    let e = exp(isa, isa.sub(isa.load_partial(p, tail), s));
                    isa.store_partial(p, tail, e);
                    total = isa.add(total, e);
                }
                isa.store_partial(sum.as_mut_ptr().add(c), tail, total);
            }
        }
    }
}

/// `row[c] = e^(row[c] − shift[c])` over the common length, returning `Σ_c row[c]`.
#[inline(always)]
pub(crate) fn exp_minus<I: Isa>(isa: I, row: &mut [f32], shift: &[f32]) -> f32 {
    isa.call(ExpMinus { row, shift })
}

/// The arguments of [`exp_minus`].
struct ExpMinus<'a> {
    row: &'a mut [f32],
    shift: &'a [f32],
}

impl TileOp for ExpMinus<'_> {
    type Output = f32;
    #[inline(always)]
    fn run<I: Isa>(self, isa: I) -> f32 {
        let ExpMinus { row, shift } = self;
        let len = row.len().min(shift.len());
        let vectors = len / I::LANES;
        let mut sum = isa.splat(0.0);
        for v in 0..vectors {
            let c = v * I::LANES;
            // SAFETY: c + LANES <= len of row and shift.
            unsafe {
                let e = exp(
                    isa,
                    isa.sub(
                        isa.load(row.as_ptr().add(c)),
                        isa.load(shift.as_ptr().add(c)),
                    ),
                );
                isa.store(row.as_mut_ptr().add(c), e);
                sum = isa.add(sum, e);
            }
        }
        let mut total = isa.reduce_add(sum);
        let c = vectors * I::LANES;
        if c < len {
            // One partial vector for the last len − c elements.
            let width = len - c;
            // SAFETY: c + width = len <= len of row and shift.
            unsafe {
                let x = isa.load_partial(row.as_ptr().add(c), width);
                let e = exp(
                    isa,
                    isa.sub(x, isa.load_partial(shift.as_ptr().add(c), width)),
                );
                isa.store_partial(row.as_mut_ptr().add(c), width, e);
            }
            total += row.iter().take(len).skip(c).sum::<f32>();
        }
        total
    }
}

/// `row[c] ← (row[c] + add[c]) − shift` over the common length, returning `max_c row[c]`
/// (`−∞` if empty): a row of logits, its bias and its stabiliser in one loop.
#[inline(always)]
pub(crate) fn add_shift_max<I: Isa>(isa: I, row: &mut [f32], add: &[f32], shift: f32) -> f32 {
    isa.call(AddShiftMax { row, add, shift })
}

/// The arguments of [`add_shift_max`].
struct AddShiftMax<'a> {
    row: &'a mut [f32],
    add: &'a [f32],
    shift: f32,
}

impl TileOp for AddShiftMax<'_> {
    type Output = f32;
    #[inline(always)]
    fn run<I: Isa>(self, isa: I) -> f32 {
        let AddShiftMax { row, add, shift } = self;
        let len = row.len().min(add.len());
        let shift_v = isa.splat(shift);
        let mut max = isa.splat(f32::NEG_INFINITY);
        let vectors = len / I::LANES;
        for v in 0..vectors {
            let c = v * I::LANES;
            // SAFETY: c + LANES <= len of row and add.
            unsafe {
                let sum = isa.add(isa.load(row.as_ptr().add(c)), isa.load(add.as_ptr().add(c)));
                let x = isa.sub(sum, shift_v);
                isa.store(row.as_mut_ptr().add(c), x);
                max = isa.max(max, x);
            }
        }
        let mut m = isa.reduce_max(max);
        // (One lane: no tail.)
        if I::LANES > 1 {
            for (x, &a) in row.iter_mut().zip(add).take(len).skip(vectors * I::LANES) {
                *x = (*x + a) - shift;
                m = m.max(*x);
            }
        }
        m
    }
}

/// Online log-sum-exp update of one block, per column: with the block's column maxima in
/// `block_max`, `running_max ← max(running_max, block_max)`, `rescale = e^(old − new)`, and
/// `running_sum *= rescale` (vector `exp`: once per block and column, it is no longer negligible
/// beside the block's products when done one column at a time).
#[inline(always)]
pub(crate) fn raise_running_max<I: Isa>(
    isa: I,
    running_max: &mut [f32],
    block_max: &[f32],
    rescale: &mut [f32],
    running_sum: &mut [f32],
) {
    isa.call(RaiseRunningMax {
        running_max,
        block_max,
        rescale,
        running_sum,
    });
}

/// The arguments of [`raise_running_max`].
struct RaiseRunningMax<'a> {
    running_max: &'a mut [f32],
    block_max: &'a [f32],
    rescale: &'a mut [f32],
    running_sum: &'a mut [f32],
}

impl TileOp for RaiseRunningMax<'_> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self, isa: I) {
        let RaiseRunningMax {
            running_max,
            block_max,
            rescale,
            running_sum,
        } = self;
        let len = running_max
            .len()
            .min(block_max.len())
            .min(rescale.len())
            .min(running_sum.len());
        let mut c = 0;
        while c < len {
            let width = (len - c).min(I::LANES);
            // SAFETY: c + width <= len, the common length of the four slices.
            unsafe {
                let old = isa.load_partial(running_max.as_ptr().add(c), width);
                let new = isa.max(old, isa.load_partial(block_max.as_ptr().add(c), width));
                // (−∞ − −∞ is NaN: a column no key has reached yet keeps rescale 1 · sum 0)
                let diff = isa.sub(old, new);
                let r = exp(isa, isa.select(isa.is_nan(diff), isa.splat(0.0), diff));
                let sum = isa.mul(isa.load_partial(running_sum.as_ptr().add(c), width), r);
                isa.store_partial(rescale.as_mut_ptr().add(c), width, r);
                isa.store_partial(running_sum.as_mut_ptr().add(c), width, sum);
                isa.store_partial(running_max.as_mut_ptr().add(c), width, new);
            }
            c += width;
        }
    }
}

/// `row[c] += add[c]` over the common length.
#[inline(always)]
pub(crate) fn add_row<I: Isa>(isa: I, row: &mut [f32], add: &[f32]) {
    scale_add(isa, row, 1.0, 1.0, add);
}

/// `row ← factor · row`.
#[inline(always)]
pub(crate) fn scale_row<I: Isa>(isa: I, row: &mut [f32], factor: f32) {
    isa.call(ScaleRow { row, factor });
}

/// The arguments of [`scale_row`].
struct ScaleRow<'a> {
    row: &'a mut [f32],
    factor: f32,
}

impl TileOp for ScaleRow<'_> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self, isa: I) {
        let ScaleRow { row, factor } = self;
        let factor_v = isa.splat(factor);
        let mut chunks = row.chunks_exact_mut(I::LANES.max(1));
        for chunk in &mut chunks {
            // SAFETY: the chunk holds exactly LANES floats.
            unsafe {
                isa.store(
                    chunk.as_mut_ptr(),
                    isa.mul(isa.load(chunk.as_ptr()), factor_v),
                )
            };
        }
        for x in chunks.into_remainder() {
            *x *= factor;
        }
    }
}

/// `row ← row − shift` (every element).
#[inline(always)]
pub(crate) fn shift_row(row: &mut [f32], shift: f32) {
    for x in row {
        *x -= shift;
    }
}

/// The keys and values of `k`, `v` in blocks of [`BLOCK`] rows, with the block's slice of the
/// key padding mask (empty without a mask).
pub(crate) fn key_blocks<'k>(
    (k, v, key_mask): (&'k [f32], &'k [f32], Option<&'k [bool]>),
    (dim, value_dim): (usize, usize),
) -> impl Iterator<Item = (&'k [f32], &'k [f32], &'k [bool])> {
    let mask_blocks = key_mask
        .unwrap_or(&[])
        .chunks(BLOCK)
        .chain(core::iter::repeat(&[][..]));
    k.chunks(BLOCK.saturating_mul(dim).max(1))
        .zip(v.chunks(BLOCK.saturating_mul(value_dim).max(1)))
        .zip(mask_blocks)
        .map(|((k_block, v_block), mask)| (k_block, v_block, mask))
}

/// Sets the rows of masked keys of a `[keys, ld]` tile of log-features to `−∞`; `false` when
/// every key of the block is masked (the caller skips the block: its maximum is `−∞`).
pub(crate) fn mask_rows(tile: &mut [f32], ld: usize, mask: &[bool]) -> bool {
    if !mask.is_empty() && mask.iter().all(|&masked| masked) {
        return false;
    }
    for (row, _) in rows_mut(tile, ld).zip(mask).filter(|&(_, &masked)| masked) {
        row.fill(f32::NEG_INFINITY);
    }
    true
}

/// `tile [rows, width] = block [rows, d] · packed [d, ..]` (leading dimension `ld`, first
/// `width` columns): the projections of a block of rows onto every landmark / feature / query.
/// Returns the number of rows and the used part of the tile.
#[inline(always)]
pub(crate) fn project_block<'t, I: Isa>(
    isa: I,
    block: &[f32],
    dim: usize,
    (packed, ld): (&[f32], usize),
    width: usize,
    tile: &'t mut [f32],
) -> (usize, &'t mut [f32]) {
    let rows = block.len() / dim.max(1);
    let tile = prefix(tile, rows * width);
    gemm(
        isa,
        (rows, width, dim),
        (block, dim, 1),
        (packed, ld),
        (&mut *tile, width),
        false,
    );
    (rows, tile)
}

/// `row ← a · row + b`.
#[inline(always)]
pub(crate) fn affine_row<I: Isa>(isa: I, row: &mut [f32], a: f32, b: f32) {
    isa.call(AffineRow { row, a, b });
}

/// The arguments of [`affine_row`].
struct AffineRow<'a> {
    row: &'a mut [f32],
    a: f32,
    b: f32,
}

impl TileOp for AffineRow<'_> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self, isa: I) {
        let AffineRow { row, a, b } = self;
        let (a_v, b_v) = (isa.splat(a), isa.splat(b));
        let mut chunks = row.chunks_exact_mut(I::LANES.max(1));
        for chunk in &mut chunks {
            // SAFETY: the chunk holds exactly LANES floats.
            unsafe {
                isa.store(
                    chunk.as_mut_ptr(),
                    isa.mul_add(isa.load(chunk.as_ptr()), a_v, b_v),
                )
            };
        }
        for x in chunks.into_remainder() {
            *x = a * *x + b;
        }
    }
}
