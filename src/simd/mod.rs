//! Explicit SIMD: one vector-ISA token type per backend, the generic building blocks written
//! once over them (vector `exp`, a register-blocked matrix product, row reductions), and the
//! choice of backend.
//!
//! Each backend is a zero-sized token implementing [`Isa`]; a token exists only once its
//! instruction set is known to be available (checked at compile time or, on x86_64, by CPUID),
//! which is what makes its methods safe to call. The estimators' blocked kernels are generic
//! over `Isa` and `#[inline(always)]` down to the intrinsics, and each backend instantiates them
//! inside exactly one `#[target_feature]` function per estimator (see `dispatch`), so the whole
//! loop nest is compiled for that instruction set.
//!
//! This module is the only place of the crate allowed `unsafe` (the crate denies it elsewhere).
#![allow(unsafe_code)]
// Without a SIMD backend (Cortex-M, RISC-V) the blocked kernels are compiled (they are generic
// over `Isa`) but never called, and the dispatchers ignore their arguments: only the scalar
// `exp` is used.
#![cfg_attr(
    not(any(
        target_arch = "x86_64",
        all(target_arch = "aarch64", target_feature = "neon"),
        all(target_arch = "wasm32", target_feature = "simd128")
    )),
    allow(dead_code, unused_variables)
)]

pub(crate) mod blocked;
pub(crate) mod dispatch;
mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod neon;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
#[cfg(target_arch = "x86_64")]
mod sse2;

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::Avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::Avx512;
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub(crate) use neon::Neon;
pub(crate) use scalar::Scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) use simd128::Simd128;
#[cfg(target_arch = "x86_64")]
pub(crate) use sse2::Sse2;

/// A vector instruction set: `LANES` `f32` lanes in a register `V`, comparison masks `M`.
///
/// Every method is `#[inline(always)]` in every implementation, so that generic code inlined
/// into a `#[target_feature]` function compiles to that instruction set. Holding a value of
/// the implementing type proves the instruction set is available.
pub(crate) trait Isa: Copy {
    /// Lanes per vector.
    const LANES: usize;
    /// Whether the register file holds an `8 × 2`-vector tile of [`gemm`] (32 vector
    /// registers: AVX-512, NEON); otherwise tiles are `4 × 2` vectors (16 registers).
    const TALL_TILE: bool = false;
    /// A vector of `LANES` floats.
    type V: Copy;
    /// A lane mask from a comparison.
    type M: Copy;

    fn splat(self, x: f32) -> Self::V;
    /// Loads `LANES` floats.
    ///
    /// # Safety
    /// `p .. p + LANES` must be readable.
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// Stores `LANES` floats.
    ///
    /// # Safety
    /// `p .. p + LANES` must be writable.
    unsafe fn store(self, p: *mut f32, v: Self::V);
    /// Loads `len < LANES` floats into the low lanes, zeroing the others.
    ///
    /// # Safety
    /// `p .. p + len` must be readable.
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, len: usize) -> Self::V {
        let mut buffer = [0.0f32; MAX_LANES];
        // SAFETY: len < LANES <= MAX_LANES floats are readable at p (caller) and writable in
        // the buffer; the load reads LANES <= MAX_LANES floats of the buffer.
        unsafe {
            core::ptr::copy_nonoverlapping(p, buffer.as_mut_ptr(), len.min(MAX_LANES));
            self.load(buffer.as_ptr())
        }
    }
    /// Stores the low `len < LANES` lanes.
    ///
    /// # Safety
    /// `p .. p + len` must be writable.
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, len: usize, v: Self::V) {
        let mut buffer = [0.0f32; MAX_LANES];
        // SAFETY: the store writes LANES <= MAX_LANES floats of the buffer; len < LANES floats
        // are writable at p (caller).
        unsafe {
            self.store(buffer.as_mut_ptr(), v);
            core::ptr::copy_nonoverlapping(buffer.as_ptr(), p, len.min(MAX_LANES));
        }
    }
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b + c`, fused where the instruction set has FMA.
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lanes where `a < b`.
    fn lt(self, a: Self::V, b: Self::V) -> Self::M;
    /// Lanes holding NaN.
    fn is_nan(self, a: Self::V) -> Self::M;
    /// `mask ? if_true : if_false`, lane by lane.
    fn select(self, mask: Self::M, if_true: Self::V, if_false: Self::V) -> Self::V;
    /// `2^n` for lanes holding integers `n` in `[-126, 127]`.
    fn pow2i(self, n: Self::V) -> Self::V;
    /// The sum of the lanes.
    fn reduce_add(self, v: Self::V) -> f32;
    /// The maximum of the lanes.
    fn reduce_max(self, v: Self::V) -> f32;
}

/// The widest vector of any backend (AVX-512), in lanes.
const MAX_LANES: usize = 16;

/// `e^x` lane by lane: Cody–Waite range reduction `x = n·ln2 + r`, `|r| <= ln2/2`, a degree-5
/// polynomial for `e^r` and an exponent-bit scale `2^n`.
///
/// Accuracy (measured by `tests/exp_sweep.rs` over every `f32` in `[-87.33, 0]`, the range the
/// kernels use, against `f64` `exp`): see [`EXP_MAX_ULP`]. Arguments below `ln(2^-126) =
/// -87.3365` give 0 (the result would be subnormal), `-inf` gives 0, arguments above `88.376`
/// give `+inf` (`e^88.376 = 2^127.5`; the exact overflow threshold is 88.723), NaN gives NaN.
#[inline(always)]
pub(crate) fn exp<I: Isa>(isa: I, x: I::V) -> I::V {
    const LOG2_E: f32 = core::f32::consts::LOG2_E;
    // ln 2 split so that n · LN2_HI is exact for |n| <= 2^15 (LN2_HI has 9 significant bits).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer (|v| < 2^22).
    const ROUNDER: f32 = 12_582_912.0;
    let lo = isa.splat(EXP_UNDERFLOW);
    let hi = isa.splat(EXP_OVERFLOW);
    let clamped = isa.min(isa.max(x, lo), hi);
    // n = round(x · log2 e)
    let n = isa.sub(
        isa.mul_add(clamped, isa.splat(LOG2_E), isa.splat(ROUNDER)),
        isa.splat(ROUNDER),
    );
    // r = x − n·ln2, in two steps
    let r = isa.mul_add(n, isa.splat(-LN2_HI), clamped);
    let r = isa.mul_add(n, isa.splat(-LN2_LO), r);
    // e^r ≈ 1 + r + r²·(c2 + r·(c3 + r·(c4 + r·c5))) (Cephes expf coefficients)
    let mut p = isa.splat(1.987_569_1e-4);
    p = isa.mul_add(p, r, isa.splat(1.398_199_9e-3));
    p = isa.mul_add(p, r, isa.splat(8.333_452e-3));
    p = isa.mul_add(p, r, isa.splat(4.166_579_6e-2));
    p = isa.mul_add(p, r, isa.splat(1.666_666_5e-1));
    p = isa.mul_add(p, r, isa.splat(0.5));
    let r2 = isa.mul(r, r);
    let p = isa.add(isa.mul_add(p, r2, r), isa.splat(1.0));
    // e^x = e^r · 2^n
    let y = isa.mul(p, isa.pow2i(n));
    let y = isa.select(isa.lt(x, lo), isa.splat(0.0), y);
    let y = isa.select(isa.lt(hi, x), isa.splat(f32::INFINITY), y);
    isa.select(isa.is_nan(x), x, y)
}

/// Below this, [`exp`] returns 0: `ln(2^-126)`, the smallest normal result.
pub(crate) const EXP_UNDERFLOW: f32 = -87.336_54;
/// Above this, [`exp`] returns `+inf`: `ln(2^127.5)`.
pub(crate) const EXP_OVERFLOW: f32 = 88.376_26;
/// Maximum error of the crate's `exp` ([`exp_f32`], the SIMD kernels' vector form and
/// [`backend::exp_in_place`](crate::backend::exp_in_place)) on `[-87.33, 0]`, in units in the last
/// place of the correctly rounded result, on every backend (measured by the exhaustive sweep in
/// `tests/exp_sweep.rs`).
pub const EXP_MAX_ULP: u32 = 1;

/// `e^x` for one `f32`: Cody–Waite range reduction, a degree-5 polynomial and an exponent-bit
/// scale; at most [`EXP_MAX_ULP`] ulp from the correctly rounded result on `[-87.33, 0]`, 0 below
/// `-87.3365` (no subnormal results), `+inf` above `88.376`, NaN for NaN.
#[inline]
pub fn exp_f32(x: f32) -> f32 {
    exp(Scalar, x)
}

/// `y[i] = e^(x[i] − shift)` for every element, returning the sum of the results.
#[inline(always)]
pub(crate) fn exp_shifted_sum<I: Isa>(isa: I, x: &mut [f32], shift: f32) -> f32 {
    let shift_v = isa.splat(shift);
    let mut sum = isa.splat(0.0);
    let mut chunks = x.chunks_exact_mut(I::LANES.max(1));
    for chunk in &mut chunks {
        // SAFETY: the chunk holds exactly LANES floats.
        unsafe {
            let v = exp(isa, isa.sub(isa.load(chunk.as_ptr()), shift_v));
            isa.store(chunk.as_mut_ptr(), v);
            sum = isa.add(sum, v);
        }
    }
    let mut total = isa.reduce_add(sum);
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        // One partial vector: the tail's lanes only (the others are neither stored nor summed).
        // SAFETY: the tail holds tail.len() < LANES floats.
        unsafe {
            let v = exp(
                isa,
                isa.sub(isa.load_partial(tail.as_ptr(), tail.len()), shift_v),
            );
            isa.store_partial(tail.as_mut_ptr(), tail.len(), v);
        }
        total += tail.iter().sum::<f32>();
    }
    total
}

/// `max_i x[i]` (`-inf` if empty).
#[inline(always)]
pub(crate) fn max_of<I: Isa>(isa: I, x: &[f32]) -> f32 {
    let mut acc = isa.splat(f32::NEG_INFINITY);
    let mut chunks = x.chunks_exact(I::LANES.max(1));
    for chunk in &mut chunks {
        // SAFETY: the chunk holds exactly LANES floats.
        acc = isa.max(acc, unsafe { isa.load(chunk.as_ptr()) });
    }
    chunks
        .remainder()
        .iter()
        .fold(isa.reduce_max(acc), |m, &xi| m.max(xi))
}

/// `Σ_i a[i]·b[i]` over the common length.
#[inline(always)]
pub(crate) fn dot<I: Isa>(isa: I, a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut acc = [isa.splat(0.0); 2];
    let step = 2 * I::LANES;
    let mut i = 0;
    while i + step <= len {
        // SAFETY: i + 2·LANES <= len for both slices.
        unsafe {
            for (j, s) in acc.iter_mut().enumerate() {
                let off = i + j * I::LANES;
                *s = isa.mul_add(
                    isa.load(a.as_ptr().add(off)),
                    isa.load(b.as_ptr().add(off)),
                    *s,
                );
            }
        }
        i += step;
    }
    let mut total = isa.reduce_add(isa.add(acc[0], acc[1]));
    for (x, y) in a[i..].iter().zip(&b[i..]) {
        total += x * y;
    }
    total
}

/// `y[i] = y[i]·scale + a·x[i]` over the common length.
#[inline(always)]
pub(crate) fn scale_add<I: Isa>(isa: I, y: &mut [f32], scale: f32, a: f32, x: &[f32]) {
    let len = y.len().min(x.len());
    let (scale_v, a_v) = (isa.splat(scale), isa.splat(a));
    let mut i = 0;
    while i + I::LANES <= len {
        // SAFETY: i + LANES <= len for both slices.
        unsafe {
            let p = y.as_mut_ptr().add(i);
            let v = isa.mul_add(
                a_v,
                isa.load(x.as_ptr().add(i)),
                isa.mul(isa.load(p), scale_v),
            );
            isa.store(p, v);
        }
        i += I::LANES;
    }
    for (yi, xi) in y[i..len].iter_mut().zip(&x[i..len]) {
        *yi = *yi * scale + a * xi;
    }
}

/// Whether any SIMD backend is compiled for this target (scratch sizes then include its tiles).
pub(crate) const COMPILED: bool = cfg!(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon"),
    all(target_arch = "wasm32", target_feature = "simd128"),
));

/// `a` if a SIMD backend is compiled for this target, else 0: for `const fn` scratch sizes.
pub(crate) const fn if_compiled(a: usize) -> usize {
    if COMPILED { a } else { 0 }
}

/// Register tile of [`gemm`]: `MR` (or `TALL_MR`) rows by `NR` vectors.
const MR: usize = 4;
const TALL_MR: usize = 8;
const NR: usize = 2;

/// `C = A·B` (or `C += A·B` with `accumulate`), `C [m, n]` row-major with leading dimension
/// `ldc`, `B [k, n]` row-major with `ldb`, `A(i, p) = a[i·a_row + p·a_col]` (so `A` or its
/// transpose, packed or not).
///
/// Register-blocked: each `MR × NR·LANES` tile of `C` lives in registers for the whole `k`
/// loop, which loads `NR` vectors of `B` and broadcasts `MR` elements of `A` per step.
/// If the slices are too short for the dimensions (an internal bug), nothing is computed
/// (and debug builds panic).
#[allow(clippy::too_many_arguments)]
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
            left if I::TALL_TILE && left >= TALL_MR => TALL_MR,
            left if left >= MR => MR,
            _ => 1,
        };
        // SAFETY: the tile's rows are < m, and the extents of a, b and c were checked against
        // m, n and k above.
        unsafe {
            let a_tile = a.add(row * a_row);
            let c_tile = c.add(row * ldc);
            let operands = (k, a_tile, a_row, a_col, b, ldb, c_tile, ldc, accumulate);
            match rows {
                TALL_MR => row_panel::<I, TALL_MR>(isa, n, operands),
                MR => row_panel::<I, MR>(isa, n, operands),
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

/// `R` rows of `C`: register tiles of `NR` vectors, then of one vector, then one partial vector
/// for the last `n mod LANES` columns.
///
/// # Safety
/// Rows `0..R` of `A` (`k` columns) and `C` (`n` columns) and rows `0..k` of `B` (`n` columns)
/// must be in bounds.
#[inline(always)]
unsafe fn row_panel<I: Isa, const R: usize>(isa: I, n: usize, panel: Panel) {
    let (k, a, a_row, a_col, b, ldb, c, ldc, accumulate) = panel;
    let wide = NR * I::LANES;
    let mut col = 0;
    // SAFETY (all calls): columns col .. col + width are < n (caller's contract covers them).
    unsafe {
        while col + wide <= n {
            micro::<I, R, NR>(
                isa,
                k,
                (a, a_row, a_col),
                (b.add(col), ldb),
                (c.add(col), ldc),
                accumulate,
                I::LANES,
            );
            col += wide;
        }
        while col + I::LANES <= n {
            micro::<I, R, 1>(
                isa,
                k,
                (a, a_row, a_col),
                (b.add(col), ldb),
                (c.add(col), ldc),
                accumulate,
                I::LANES,
            );
            col += I::LANES;
        }
        if col < n {
            micro::<I, R, 1>(
                isa,
                k,
                (a, a_row, a_col),
                (b.add(col), ldb),
                (c.add(col), ldc),
                accumulate,
                n - col,
            );
        }
    }
}

/// One `R × V·LANES` register tile of [`gemm`]; with `width < LANES` (and `V = 1`), a tile of
/// `R × width` through partial loads and stores.
///
/// # Safety
/// Rows `0..R` of `A` (`k` columns), rows `0..k` of `B` and rows `0..R` of `C` (`V·LANES`
/// columns, or `width` if smaller) must be in bounds.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn micro<I: Isa, const R: usize, const V: usize>(
    isa: I,
    k: usize,
    (a, a_row, a_col): (*const f32, usize, usize),
    (b, ldb): (*const f32, usize),
    (c, ldc): (*mut f32, usize),
    accumulate: bool,
    width: usize,
) {
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
