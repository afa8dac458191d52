//! Explicit SIMD: one token type per instruction set implementing [`Isa`], the building blocks
//! written once over them (vector `exp`, a register-blocked matrix product, row and column
//! reductions), the backends and their detection, and [`run`], the one place that enters an
//! instruction set.
//!
//! Nothing here knows an estimator. An estimator describes each of its passes as a [`Kernel`]:
//! a struct of the pass's arguments with a scalar reference body and a blocked body generic over
//! `Isa`. [`run`] takes a [`Kernel`] and an [`Available`] backend and calls the blocked body
//! inside one `#[target_feature]` function per instruction set, compiled with the whole loop
//! nest inlined (every `Isa` method and every blocked body is `#[inline(always)]`), or the
//! scalar body for the scalar backend. The blocked body's loops over rows and tiles are
//! [`TileOp`]s, which an instruction set may run out of line ([`Isa::call`]); its matrix
//! products end in [`Isa::micro_tile`], which an instruction set may write by hand.
//!
//! Every target has the one-lane instruction set [`Scalar`]: it gives `exp` its scalar form and
//! runs the blocked kernels as [`Backend::Blocked`], unless the crate is built for size (the cfg
//! `lara_attn_compact`, see `src/build.rs`).
//!
//! This module is the only place of the crate allowed `unsafe` (the crate denies it elsewhere).
#![allow(unsafe_code)]
// Built for size without a SIMD backend (Cortex-M, RISC-V at opt-level "s"), the generic
// blocked code is compiled but never instantiated: only the scalar `exp` is used.
#![cfg_attr(
    all(
        lara_attn_compact,
        not(any(
            target_arch = "x86_64",
            all(target_arch = "aarch64", target_feature = "neon"),
            all(target_arch = "wasm32", target_feature = "simd128")
        ))
    ),
    allow(dead_code, unused_variables, unused_imports)
)]

pub(crate) mod backend;
// (Helium cores have an FPU and take the vector form of `exp`.)
#[cfg(not(lara_attn_helium))]
mod exp_integer;
mod gemm;
#[cfg(all(target_arch = "arm", lara_attn_helium))]
mod helium;
pub(crate) mod int8;
mod scalar;
pub(crate) mod tile;

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
#[cfg(all(target_arch = "arm", target_abi = "eabihf", not(lara_attn_helium)))]
mod vfp;

#[cfg(target_arch = "x86_64")]
use avx2::Avx2;
#[cfg(target_arch = "x86_64")]
use avx512::Avx512;
pub(crate) use backend::{Available, Backend, COMPILED};
pub(crate) use gemm::gemm;
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
use neon::Neon;
pub(crate) use scalar::Scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use simd128::Simd128;
#[cfg(target_arch = "x86_64")]
use sse2::Sse2;

/// One pass of an estimator, with its arguments: a scalar reference body and a blocked body
/// generic over the instruction set. [`run`] picks one.
pub(crate) trait Kernel: Sized {
    /// What the pass returns.
    type Output;
    /// The scalar reference kernel.
    fn scalar(self) -> Self::Output;
    /// The blocked kernel on `isa`. `#[inline(always)]` in every implementation, so that it is
    /// compiled inside [`run`]'s `#[target_feature]` entry for that instruction set.
    fn blocked<I: Isa>(self, isa: I) -> Self::Output;
}

/// One loop of a blocked kernel over a row or a tile (an `exp`, a reduction): a struct of its
/// arguments with a body generic over the instruction set, run by [`Isa::call`].
pub(crate) trait TileOp: Sized {
    /// What the loop returns.
    type Output;
    /// The loop on `isa`, `#[inline(always)]` in every implementation.
    fn run<I: Isa>(self, isa: I) -> Self::Output;
}

/// Runs `kernel` on `backend`: its blocked body inside a function compiled for that
/// instruction set, or its scalar body on the scalar backend.
#[inline(always)]
pub(crate) fn run<K: Kernel>(backend: Available, kernel: K) -> K::Output {
    match backend.backend() {
        // SSE2 is the x86_64 baseline: no target_feature entry needed.
        #[cfg(target_arch = "x86_64")]
        Backend::Sse2 => kernel.blocked(Sse2::new()),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => {
            #[target_feature(enable = "avx2,fma")]
            fn entry<K: Kernel>(kernel: K) -> K::Output {
                // SAFETY: this function only runs where AVX2 and FMA are available (below).
                kernel.blocked(unsafe { Avx2::new_unchecked() })
            }
            // SAFETY: `backend` is `Available`, so the CPU has AVX2 and FMA.
            unsafe { entry(kernel) }
        }
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => {
            #[target_feature(enable = "avx512f")]
            fn entry<K: Kernel>(kernel: K) -> K::Output {
                // SAFETY: this function only runs where AVX-512F is available (below).
                kernel.blocked(unsafe { Avx512::new_unchecked() })
            }
            // SAFETY: `backend` is `Available`, so the CPU has AVX-512F.
            unsafe { entry(kernel) }
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Backend::Neon => kernel.blocked(Neon::new()),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Backend::Simd128 => kernel.blocked(Simd128::new()),
        #[cfg(not(lara_attn_compact))]
        Backend::Blocked => kernel.blocked(Scalar),
        _ => kernel.scalar(),
    }
}

/// `x ← e^x` for every element, with the vector `exp` of `backend`.
pub(crate) fn exp_in_place(backend: Available, values: &mut [f32]) {
    struct ExpInPlace<'a>(&'a mut [f32]);
    impl Kernel for ExpInPlace<'_> {
        type Output = ();
        fn scalar(self) {
            self.blocked(Scalar);
        }
        #[inline(always)]
        fn blocked<I: Isa>(self, isa: I) {
            exp_shifted_sum(isa, self.0, 0.0);
        }
    }
    run(backend, ExpInPlace(values));
}

/// A vector instruction set: `LANES` `f32` lanes in a register `V`, comparison masks `M`.
///
/// Every method is `#[inline(always)]` in every implementation, so that generic code inlined
/// into a `#[target_feature]` function compiles to that instruction set. Holding a value of
/// the implementing type proves the instruction set is available.
pub(crate) trait Isa: Copy {
    /// Lanes per vector.
    const LANES: usize;
    /// Rows of a register tile of [`gemm`] (8, 4 or 3): its `TILE_ROWS · TILE_VECTORS`
    /// accumulators, `TILE_VECTORS` vectors of `B` and a broadcast element of `A` must fit the
    /// register file (`8 × 2` for 32 vector registers, `4 × 2` for 16).
    const TILE_ROWS: usize = 4;
    /// Vectors per row of a register tile of [`gemm`] (1 to 4, or 8).
    const TILE_VECTORS: usize = 2;
    /// Whether the column-wise tile loops run row by row with the columns innermost (for a
    /// one-lane set the compiler vectorises across columns: Helium), rather than a vector of
    /// columns at a time down the rows (its running values in registers).
    const COLUMNS_INNERMOST: bool = false;
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
    /// `2^n` for lanes holding integers `n` in `[-126, 127]`, given both as `n` and as
    /// `rounded = n + 1.5·2^23` (whose low mantissa bits are `n`): [`pow2i`](Isa::pow2i) of `n`,
    /// unless the instruction set gets there quicker from `rounded`.
    #[inline(always)]
    fn pow2i_rounded(self, rounded: Self::V, n: Self::V) -> Self::V {
        let _ = rounded;
        self.pow2i(n)
    }
    /// The sum of the lanes.
    fn reduce_add(self, v: Self::V) -> f32;
    /// The maximum of the lanes.
    fn reduce_max(self, v: Self::V) -> f32;

    /// Runs a tile operation: inlined into the kernel by default (under a `#[target_feature]`
    /// entry everything must be), or in a function of its own where that compiles better.
    #[inline(always)]
    fn call<O: TileOp>(self, op: O) -> O::Output {
        op.run(self)
    }

    /// [`exp`] lane by lane: [`exp_with_selects`] unless an instruction set has a cheaper way
    /// to the same bits.
    #[inline(always)]
    fn exp(self, x: Self::V) -> Self::V {
        exp_with_selects(self, x)
    }

    /// `x[c] ← e^(x[c] − shift_c)` over the common length (`shift_c` the scalar or `shift[c]`),
    /// with `sums`, `sums[c] += x[c]`, and `Σ_c x[c]`, in one hand-written loop; `None` (nothing
    /// done) where the instruction set has none and the caller's generic loop runs.
    #[inline(always)]
    fn exp_sub_row(
        self,
        x: &mut [f32],
        shift: ExpShift<'_>,
        sums: Option<&mut [f32]>,
    ) -> Option<f32> {
        let _ = (x, shift, sums);
        None
    }

    /// [`dot`] in one hand-written loop; `None` where the instruction set has none.
    #[inline(always)]
    fn dot_row(self, a: &[f32], b: &[f32]) -> Option<f32> {
        let _ = (a, b);
        None
    }

    /// [`scale_by_clamped_affine`] in one hand-written loop; `None` (nothing done) where the
    /// instruction set has none.
    #[inline(always)]
    fn scale_by_clamped_affine_row(
        self,
        x: &mut [f32],
        t_p: (&[f32], &[f32]),
        a_b: (f32, f32),
        floor: f32,
    ) -> Option<f32> {
        let _ = (x, t_p, a_b, floor);
        None
    }

    /// The micro-kernel of [`gemm`]: one `R × V·LANES` register tile (`R` is `TILE_ROWS`, 4
    /// or 1; `V` is `TILE_VECTORS` or 1), the generic [`gemm::micro`] unless an instruction set
    /// brings its own.
    ///
    /// # Safety
    /// As [`gemm::micro`]: the tile's rows of `A`, `B` and `C` must be in bounds.
    #[inline(always)]
    unsafe fn micro_tile<const R: usize, const V: usize>(self, tile: &gemm::MicroTile) {
        // SAFETY: the caller's contract is micro's.
        unsafe { gemm::micro::<Self, R, V>(self, tile) }
    }
}

/// What [`Isa::exp_sub_row`] subtracts from each element. (Read by the Helium kernels only.)
#[derive(Clone, Copy)]
#[cfg_attr(not(all(target_arch = "arm", lara_attn_helium)), allow(dead_code))]
pub(crate) enum ExpShift<'a> {
    /// The same value from every element.
    Scalar(f32),
    /// `shift[c]` from element `c`.
    Row(&'a [f32]),
}

/// The widest vector of any backend (AVX-512), in lanes.
const MAX_LANES: usize = 16;

/// `e^x` lane by lane: Cody–Waite range reduction `x = n·ln2 + r`, `|r| <= ln2/2`, a degree-5
/// polynomial for `e^r` and an exponent-bit scale `2^n` ([`exp_in_range`]), each instruction
/// set handling the arguments outside `[EXP_UNDERFLOW, EXP_OVERFLOW]` its way ([`Isa::exp`]):
/// the same bits on every backend.
///
/// Accuracy (measured by `tests/exp_sweep.rs` over every `f32` in `[-87.33, 0]`, the range the
/// kernels use, against `f64` `exp`): see [`EXP_MAX_ULP`]. Arguments below `ln(2^-126) =
/// -87.3365` give 0 (the result would be subnormal), `-inf` gives 0, arguments above `88.376`
/// give `+inf` (`e^88.376 = 2^127.5`; the exact overflow threshold is 88.723), NaN gives NaN.
#[inline(always)]
pub(crate) fn exp<I: Isa>(isa: I, x: I::V) -> I::V {
    isa.exp(x)
}

/// [`exp`] with lane-wise selects for the arguments out of range: the default of
/// [`Isa::exp`].
#[inline(always)]
pub(crate) fn exp_with_selects<I: Isa>(isa: I, x: I::V) -> I::V {
    let lo = isa.splat(EXP_UNDERFLOW);
    let hi = isa.splat(EXP_OVERFLOW);
    let clamped = isa.min(isa.max(x, lo), hi);
    let y = exp_in_range(isa, clamped);
    let y = isa.select(isa.lt(x, lo), isa.splat(0.0), y);
    let y = isa.select(isa.lt(hi, x), isa.splat(f32::INFINITY), y);
    isa.select(isa.is_nan(x), x, y)
}

/// The arithmetic of [`exp`] for arguments in `[EXP_UNDERFLOW, EXP_OVERFLOW]`.
#[inline(always)]
pub(crate) fn exp_in_range<I: Isa>(isa: I, x: I::V) -> I::V {
    const LOG2_E: f32 = core::f32::consts::LOG2_E;
    // ln 2 split so that n · LN2_HI is exact for |n| <= 2^15 (LN2_HI has 9 significant bits).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer (|v| < 2^22).
    const ROUNDER: f32 = 12_582_912.0;
    // n = round(x · log2 e), from x · log2 e + 1.5·2^23
    let rounded = isa.mul_add(x, isa.splat(LOG2_E), isa.splat(ROUNDER));
    let n = isa.sub(rounded, isa.splat(ROUNDER));
    // r = x − n·ln2, in two steps
    let r = isa.mul_add(n, isa.splat(-LN2_HI), x);
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
    isa.mul(p, isa.pow2i_rounded(rounded, n))
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
    isa.call(ExpShiftedSum { x, shift })
}

/// The arguments of [`exp_shifted_sum`].
struct ExpShiftedSum<'a> {
    x: &'a mut [f32],
    shift: f32,
}

impl TileOp for ExpShiftedSum<'_> {
    type Output = f32;
    #[inline(always)]
    fn run<I: Isa>(self, isa: I) -> f32 {
        let ExpShiftedSum { x, shift } = self;
        if let Some(total) = isa.exp_sub_row(x, ExpShift::Scalar(shift), None) {
            return total;
        }
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
            // One partial vector: the tail's lanes only (the others are neither stored nor
            // summed).
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
}

/// `max_i x[i]` (`-inf` if empty).
#[inline(always)]
pub(crate) fn max_of<I: Isa>(isa: I, x: &[f32]) -> f32 {
    isa.call(MaxOf { x })
}

/// The arguments of [`max_of`].
struct MaxOf<'a> {
    x: &'a [f32],
}

impl TileOp for MaxOf<'_> {
    type Output = f32;
    #[inline(always)]
    fn run<I: Isa>(self, isa: I) -> f32 {
        let MaxOf { x } = self;
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
}

/// `Σ_i a[i]·b[i]` over the common length.
#[inline(always)]
pub(crate) fn dot<I: Isa>(isa: I, a: &[f32], b: &[f32]) -> f32 {
    isa.call(Dot { a, b })
}

/// The arguments of [`dot`].
struct Dot<'a> {
    a: &'a [f32],
    b: &'a [f32],
}

impl TileOp for Dot<'_> {
    type Output = f32;
    #[inline(always)]
    fn run<I: Isa>(self, isa: I) -> f32 {
        let Dot { a, b } = self;
        if let Some(total) = isa.dot_row(a, b) {
            return total;
        }
        let len = a.len().min(b.len());
        let (a, b) = (&a[..len], &b[..len]);
        let mut acc = [isa.splat(0.0); 2];
        let step = 2 * I::LANES;
        let pairs = len / step;
        for pair in 0..pairs {
            let i = pair * step;
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
        }
        let mut total = isa.reduce_add(isa.add(acc[0], acc[1]));
        for (x, y) in a.iter().zip(b).skip(pairs * step) {
            total += x * y;
        }
        total
    }
}

/// `y[i] = y[i]·scale + a·x[i]` over the common length.
#[inline(always)]
pub(crate) fn scale_add<I: Isa>(isa: I, y: &mut [f32], scale: f32, a: f32, x: &[f32]) {
    isa.call(ScaleAdd { y, scale, a, x });
}

/// The arguments of [`scale_add`].
struct ScaleAdd<'a> {
    y: &'a mut [f32],
    scale: f32,
    a: f32,
    x: &'a [f32],
}

impl TileOp for ScaleAdd<'_> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self, isa: I) {
        let ScaleAdd { y, scale, a, x } = self;
        let len = y.len().min(x.len());
        let (scale_v, a_v) = (isa.splat(scale), isa.splat(a));
        let vectors = len / I::LANES;
        for v in 0..vectors {
            let i = v * I::LANES;
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
        }
        // (One lane: no tail.)
        if I::LANES > 1 {
            for (yi, xi) in y.iter_mut().zip(x).take(len).skip(vectors * I::LANES) {
                *yi = *yi * scale + a * xi;
            }
        }
    }
}

/// `x[c] ← x[c] · max(p[c] + a·t[c] + b, floor)` over the common length, returning `Σ_c x[c]`.
#[inline(always)]
pub(crate) fn scale_by_clamped_affine<I: Isa>(
    isa: I,
    x: &mut [f32],
    (t, p): (&[f32], &[f32]),
    (a, b): (f32, f32),
    floor: f32,
) -> f32 {
    isa.call(ScaleByClampedAffine {
        x,
        t,
        p,
        a,
        b,
        floor,
    })
}

/// The arguments of [`scale_by_clamped_affine`].
struct ScaleByClampedAffine<'a> {
    x: &'a mut [f32],
    t: &'a [f32],
    p: &'a [f32],
    a: f32,
    b: f32,
    floor: f32,
}

impl TileOp for ScaleByClampedAffine<'_> {
    type Output = f32;
    #[inline(always)]
    fn run<I: Isa>(self, isa: I) -> f32 {
        let ScaleByClampedAffine {
            x,
            t,
            p,
            a,
            b,
            floor,
        } = self;
        if let Some(sum) = isa.scale_by_clamped_affine_row(x, (t, p), (a, b), floor) {
            return sum;
        }
        let len = x.len().min(t.len()).min(p.len());
        let (a_v, b_v, floor_v) = (isa.splat(a), isa.splat(b), isa.splat(floor));
        let mut acc = isa.splat(0.0);
        let vectors = len / I::LANES;
        for v in 0..vectors {
            let c = v * I::LANES;
            // SAFETY: c + LANES <= len of x, t and p.
            unsafe {
                let affine = isa.add(
                    isa.mul_add(a_v, isa.load(t.as_ptr().add(c)), b_v),
                    isa.load(p.as_ptr().add(c)),
                );
                let scaled = isa.mul(isa.load(x.as_ptr().add(c)), isa.max(affine, floor_v));
                isa.store(x.as_mut_ptr().add(c), scaled);
                acc = isa.add(acc, scaled);
            }
        }
        let mut sum = isa.reduce_add(acc);
        // (One lane: no tail.)
        if I::LANES > 1 {
            let c = vectors * I::LANES;
            for ((x, &t), &p) in x.iter_mut().zip(t).zip(p).take(len).skip(c) {
                *x *= (p + (a * t + b)).max(floor);
                sum += *x;
            }
        }
        sum
    }
}
