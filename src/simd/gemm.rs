//! The register-blocked matrix product every blocked kernel is built on.
//!
//! [`gemm`] walks `C` in register tiles of [`Isa::TILE_ROWS`] rows by [`Isa::TILE_VECTORS`]
//! vectors and hands each to [`Isa::micro_tile`], the micro-kernel: by default the generic loop
//! [`micro`] below, which an instruction set may replace by hand-written code with the same
//! contract ([`MicroTile`]).

use super::Isa;

/// `C = A·B` (or `C += A·B` with `accumulate`), `C [m, n]` row-major with leading dimension
/// `ldc`, `B [k, n]` row-major with `ldb`, `A(i, p) = a[i·a_row + p·a_col]` (so `A` or its
/// transpose, packed or not).
///
/// Register-blocked: each `TILE_ROWS × TILE_VECTORS·LANES` tile of `C` lives in registers for
/// the whole `k` loop, which loads `TILE_VECTORS` vectors of `B` and broadcasts `TILE_ROWS`
/// elements of `A` per step (then tiles of 4 rows, then single rows, for the last rows).
/// If the slices are too short for the dimensions (an internal bug), nothing is computed
/// (and debug builds panic).
#[inline(always)]
pub(crate) fn gemm<I: Isa>(
    isa: I,
    (m, n, k): (usize, usize, usize),
    (a, a_row, a_col): (&[f32], usize, usize),
    (b, ldb): (&[f32], usize),
    (c, ldc): (&mut [f32], usize),
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let fits = |len: usize, last: Option<usize>| last.is_some_and(|last| last < len);
    let a_last = (m - 1)
        .checked_mul(a_row)
        .zip(k.saturating_sub(1).checked_mul(a_col))
        .and_then(|(x, y)| x.checked_add(y));
    let b_last = k
        .saturating_sub(1)
        .checked_mul(ldb)
        .and_then(|x| x.checked_add(n - 1));
    let c_last = (m - 1).checked_mul(ldc).and_then(|x| x.checked_add(n - 1));
    let in_bounds =
        (k == 0 || (fits(a.len(), a_last) && fits(b.len(), b_last))) && fits(c.len(), c_last);
    debug_assert!(in_bounds, "gemm operands too short");
    if !in_bounds {
        return;
    }
    let (a, b, c) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    let mut row = 0;
    while row < m {
        let rows = match m - row {
            left if left >= I::TILE_ROWS => I::TILE_ROWS,
            left if left >= 4 => 4,
            // (a tile of 3 rows leaves 2 or 1: Helium)
            left if left >= 2 && I::TILE_ROWS == 3 => 2,
            _ => 1,
        };
        // SAFETY: the tile's rows are < m, and the extents of a, b and c were checked against
        // m, n and k above.
        unsafe {
            let a_tile = a.add(row * a_row);
            let c_tile = c.add(row * ldc);
            let operands = (k, a_tile, a_row, a_col, b, ldb, c_tile, ldc, accumulate);
            // (The tile shapes are constants of I: every other arm is dead code and removed.)
            match rows {
                8 => row_panel::<I, 8>(isa, n, operands),
                4 => row_panel::<I, 4>(isa, n, operands),
                3 => row_panel::<I, 3>(isa, n, operands),
                2 => row_panel::<I, 2>(isa, n, operands),
                _ => row_panel::<I, 1>(isa, n, operands),
            }
        }
        row += rows;
    }
}

/// The operands of one row panel: `k`, `A` at the panel's first row and its strides, `B` and
/// its leading dimension, `C` at the panel's first row and its leading dimension, accumulate.
type Panel = (
    usize,
    *const f32,
    usize,
    usize,
    *const f32,
    usize,
    *mut f32,
    usize,
    bool,
);

/// `R` rows of `C`: register tiles of `TILE_VECTORS` vectors, then of one vector, then one
/// partial vector for the last `n mod LANES` columns.
///
/// # Safety
/// Rows `0..R` of `A` (`k` columns) and `C` (`n` columns) and rows `0..k` of `B` (`n` columns)
/// must be in bounds.
#[inline(always)]
unsafe fn row_panel<I: Isa, const R: usize>(isa: I, n: usize, panel: Panel) {
    let (k, a, a_row, a_col, b, ldb, c, ldc, accumulate) = panel;
    // (One tile, its columns moved along the panel: by reference to an out-of-line
    // micro-kernel, only they change from call to call.)
    let mut tile = MicroTile {
        k,
        a,
        a_row,
        a_col,
        b,
        ldb,
        c,
        ldc,
        accumulate,
        width: I::LANES,
    };
    let wide = I::TILE_VECTORS * I::LANES;
    let mut col = 0;
    // SAFETY: every tile below covers columns col .. col + width < n, in bounds by the
    // caller's contract.
    unsafe {
        while col + wide <= n {
            tile.move_to(b, c, col, I::LANES);
            // (The tile shapes are constants of I: every other arm is dead code and removed.)
            match I::TILE_VECTORS {
                8 => isa.micro_tile::<R, 8>(&tile),
                4 => isa.micro_tile::<R, 4>(&tile),
                3 => isa.micro_tile::<R, 3>(&tile),
                _ => isa.micro_tile::<R, 2>(&tile),
            }
            col += wide;
        }
        while col + I::LANES <= n {
            tile.move_to(b, c, col, I::LANES);
            isa.micro_tile::<R, 1>(&tile);
            col += I::LANES;
        }
        if col < n {
            tile.move_to(b, c, col, n - col);
            isa.micro_tile::<R, 1>(&tile);
        }
    }
}

/// The operands of one register tile of [`gemm`]: `A(i, p) = a[i·a_row + p·a_col]` for the
/// tile's rows `i` and `p < k`, `B` rows `b + p·ldb`, `C` rows `c + i·ldc`, whether to add to
/// `C`, and the width of a partial tile (`width < LANES`: one vector, partial loads and stores;
/// otherwise `LANES`).
#[derive(Clone, Copy)]
pub(crate) struct MicroTile {
    pub(crate) k: usize,
    pub(crate) a: *const f32,
    pub(crate) a_row: usize,
    pub(crate) a_col: usize,
    pub(crate) b: *const f32,
    pub(crate) ldb: usize,
    pub(crate) c: *mut f32,
    pub(crate) ldc: usize,
    pub(crate) accumulate: bool,
    pub(crate) width: usize,
}

impl MicroTile {
    /// The strides in bytes, `(a_row, a_col, ldb, ldc) · 4`, for the assembly tiles. (They fit:
    /// gemm checked that the rows the tile touches lie in slices, no longer than `isize::MAX`
    /// bytes; a stride the loops never step, `a_col` or `ldb` with `k = 1`, may wrap
    /// harmlessly.)
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    #[inline(always)]
    pub(crate) fn byte_strides(&self) -> (usize, usize, usize, usize) {
        let bytes = |stride: usize| stride.wrapping_mul(4);
        (
            bytes(self.a_row),
            bytes(self.a_col),
            bytes(self.ldb),
            bytes(self.ldc),
        )
    }

    /// Moves the tile to the columns `col .. col + width` of the panel whose `B` and `C` start
    /// at `b` and `c`.
    ///
    /// # Safety
    /// Column `col` of `B`'s and `C`'s rows must be in bounds.
    #[inline(always)]
    pub(crate) unsafe fn move_to(&mut self, b: *const f32, c: *mut f32, col: usize, width: usize) {
        // SAFETY: column col is in bounds (caller's contract).
        unsafe {
            self.b = b.add(col);
            self.c = c.add(col);
        }
        self.width = width;
    }
}

/// The generic micro-kernel: one `R × V·LANES` register tile of [`gemm`], `C = A·B` (or
/// `C += A·B`); with `width < LANES` (and `V = 1`), a tile of `R × width` through partial loads
/// and stores. `R·V` accumulators stay in registers for the whole `k` loop, which loads `V`
/// vectors of `B` and broadcasts `R` elements of `A` per step.
///
/// # Safety
/// Rows `0..R` of `A` (`k` columns), rows `0..k` of `B` and rows `0..R` of `C` (`V·LANES`
/// columns, or `width` if smaller) must be in bounds.
#[inline(always)]
pub(crate) unsafe fn micro<I: Isa, const R: usize, const V: usize>(isa: I, tile: &MicroTile) {
    let MicroTile {
        k,
        a,
        a_row,
        a_col,
        b,
        ldb,
        c,
        ldc,
        accumulate,
        width,
    } = *tile;
    let partial = width < I::LANES;
    let mut acc = [[isa.splat(0.0); V]; R];
    for p in 0..k {
        // SAFETY: p < k, so these rows of A and B are in bounds (caller's contract).
        unsafe {
            let b_row = b.add(p * ldb);
            let mut b_vec = [isa.splat(0.0); V];
            for (j, bv) in b_vec.iter_mut().enumerate() {
                *bv = if partial {
                    isa.load_partial(b_row, width)
                } else {
                    isa.load(b_row.add(j * I::LANES))
                };
            }
            for (i, acc_row) in acc.iter_mut().enumerate() {
                let a_val = isa.splat(*a.add(i * a_row + p * a_col));
                for (s, &bv) in acc_row.iter_mut().zip(&b_vec) {
                    *s = isa.mul_add(a_val, bv, *s);
                }
            }
        }
    }
    for (i, acc_row) in acc.iter().enumerate() {
        for (j, &s) in acc_row.iter().enumerate() {
            // SAFETY: row i < R and these columns of C are in bounds (caller's contract).
            unsafe {
                let p = c.add(i * ldc + j * I::LANES);
                if partial {
                    let v = if accumulate {
                        isa.add(isa.load_partial(p, width), s)
                    } else {
                        s
                    };
                    isa.store_partial(p, width, v);
                } else {
                    let v = if accumulate {
                        isa.add(isa.load(p), s)
                    } else {
                        s
                    };
                    isa.store(p, v);
                }
            }
        }
    }
}
