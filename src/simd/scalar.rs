//! The one-lane "vector" instruction set: plain `f32` arithmetic, available everywhere. It
//! gives [`exp`](super::exp) its scalar form and runs the blocked kernels as
//! [`Backend::Blocked`](super::Backend::Blocked), tuned one of two ways:
//!
//! * for single-issue cores (the default; Cortex-M4F, M7, M33, M3, M0): every tile loop in a
//!   function of its own ([`Isa::call`]: its constants and counters stay in registers, and the
//!   stack peak of a kernel is the largest loop's frame, not their sum), `exp` with one branch
//!   instead of selects, and on hard-float ARM the `4 × 4` tile of the matrix products in
//!   assembly ([`vfp`](super::vfp));
//! * for cores with Helium (the cfg `lara_attn_helium`, set by `src/build.rs` for
//!   `-C target-cpu=cortex-m55`, `m52` or `m85`): everything inlined and branch-free, the way
//!   LLVM's auto-vectoriser turns it into MVE instructions (until this crate has explicit
//!   Helium kernels).

use super::gemm::{MicroTile, micro};
#[cfg(not(lara_attn_helium))]
use super::{EXP_OVERFLOW, EXP_UNDERFLOW, exp_in_range};
use super::{Isa, TileOp};

/// Whether `f32` arithmetic is a library call here (ARM without the hard-float ABI).
#[cfg(not(lara_attn_helium))]
const SOFT_FLOAT: bool = cfg!(all(target_arch = "arm", not(target_abi = "eabihf")));

/// Plain `f32` arithmetic, one lane.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scalar;

/// A `4 × 4` tile as four `4 × 1` tiles: the layouts the assembly does not cover (none of the
/// crate's products; kept out of the assembly kernel's frame).
///
/// # Safety
/// As [`micro`], for a `4 × 4` tile.
#[cfg(all(target_arch = "arm", target_abi = "eabihf", not(lara_attn_helium)))]
#[cold]
#[inline(never)]
unsafe fn columns_4x1(tile: &MicroTile) {
    let mut column = *tile;
    for col in 0..4 {
        // SAFETY: column col < 4 of the tile is in bounds (caller's contract).
        unsafe {
            column.move_to(tile.b, tile.c, col, 1);
            Scalar.micro_tile::<4, 1>(&column);
        }
    }
}

/// [`exp`](super::exp) of one argument with `|x| > 87.3365` or NaN: 0 below
/// [`EXP_UNDERFLOW`], `+inf` above [`EXP_OVERFLOW`], NaN for NaN, the in-range arithmetic
/// between 87.3365 and [`EXP_OVERFLOW`].
#[cfg(not(lara_attn_helium))]
#[cold]
#[inline(never)]
fn exp_out_of_range(x: f32) -> f32 {
    if x < EXP_UNDERFLOW {
        0.0
    } else if x <= EXP_OVERFLOW {
        exp_in_range(Scalar, x)
    } else {
        // +inf above the range, NaN stays NaN
        x + f32::INFINITY
    }
}

impl Isa for Scalar {
    const LANES: usize = 1;
    // 4 × 4 accumulators, 4 elements of B and one of A: 21 of a single-precision FPU's 32
    // registers (Cortex-M4F, M7, M33, M55 without Helium). With Helium, 3 × 8: 3 rows by two
    // vectors of 4 lanes in 6 of the 8 `q` registers, two for a row of B (helium.rs).
    const TILE_ROWS: usize = if cfg!(lara_attn_helium) { 3 } else { 4 };
    const TILE_VECTORS: usize = if cfg!(lara_attn_helium) { 8 } else { 4 };
    const COLUMNS_INNERMOST: bool = cfg!(lara_attn_helium);
    type V = f32;
    type M = bool;

    #[inline(always)]
    fn splat(self, x: f32) -> f32 {
        x
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> f32 {
        // SAFETY: the caller guarantees p is readable.
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: f32) {
        // SAFETY: the caller guarantees p is writable.
        unsafe { *p = v }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, len: usize) -> f32 {
        // (No buffer: one element or none.)
        if len > 0 {
            // SAFETY: the caller guarantees len floats readable at p.
            unsafe { *p }
        } else {
            0.0
        }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, len: usize, v: f32) {
        if len > 0 {
            // SAFETY: the caller guarantees len floats writable at p.
            unsafe { *p = v }
        }
    }
    #[inline(always)]
    fn add(self, a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    fn sub(self, a: f32, b: f32) -> f32 {
        a - b
    }
    #[inline(always)]
    fn mul(self, a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    fn mul_add(self, a: f32, b: f32, c: f32) -> f32 {
        // Unfused: a software fmaf would cost far more than it gains on FPUs without FMA.
        a * b + c
    }
    #[inline(always)]
    fn max(self, a: f32, b: f32) -> f32 {
        if a > b { a } else { b }
    }
    #[inline(always)]
    fn min(self, a: f32, b: f32) -> f32 {
        if a < b { a } else { b }
    }
    #[inline(always)]
    fn lt(self, a: f32, b: f32) -> bool {
        a < b
    }
    #[inline(always)]
    fn is_nan(self, a: f32) -> bool {
        a.is_nan()
    }
    #[inline(always)]
    fn select(self, mask: bool, if_true: f32, if_false: f32) -> f32 {
        if mask { if_true } else { if_false }
    }
    #[inline(always)]
    fn pow2i(self, n: f32) -> f32 {
        // (n + 127) << 23 is the bit pattern of 2^n for n in [-126, 127].
        f32::from_bits(((n as i32 + 127) as u32) << 23)
    }
    #[inline(always)]
    fn pow2i_rounded(self, rounded: f32, _n: f32) -> f32 {
        // bits(n + 1.5·2^23) = 0x4B40_0000 + n, and 0x4B40_0000 << 23 wraps to 0: the same
        // (n + 127) << 23 without a float-to-integer conversion.
        f32::from_bits((rounded.to_bits() << 23).wrapping_add(127 << 23))
    }
    /// Out of line: a loop in its own function keeps its constants and counters in registers,
    /// where inlined into a whole pass it reloads them (measured on the Cortex-M4F: an `exp`
    /// loop of 44 instructions per element inlined, 31 out of line). (Inlined with Helium.)
    #[cfg_attr(not(lara_attn_helium), inline(never))]
    #[cfg_attr(lara_attn_helium, inline(always))]
    fn call<O: TileOp>(self, op: O) -> O::Output {
        op.run(self)
    }
    /// One comparison instead of the selects of the vector form (five selects cost about 20
    /// instructions on a Cortex-M4F): `|x| <= 87.3365` is in range (NaN is not) and takes the
    /// same arithmetic, so the same bits. (With Helium, the selects: they vectorise.) Without
    /// an FPU (soft-float ARM: thumbv6m, thumbv7m, thumbv8m.base, `*-eabi`), the integer form
    /// of [`exp_integer`](super::exp_integer): 25× fewer instructions, the last bit of some
    /// results differs.
    #[cfg(not(lara_attn_helium))]
    #[inline(always)]
    fn exp(self, x: f32) -> f32 {
        if SOFT_FLOAT {
            super::exp_integer::exp(x)
        } else if x.abs() <= -EXP_UNDERFLOW {
            exp_in_range(self, x)
        } else {
            exp_out_of_range(x)
        }
    }
    /// On ARM cores with a single-precision FPU, the `4 × 4` tiles in assembly
    /// ([`vfp`](super::vfp)), with Helium the `3 × 8` tiles ([`helium`](super::helium)); the
    /// generic loop elsewhere and for the other tile shapes. Out of
    /// line, one function per tile shape: called once per tile, and the stack peak of a kernel
    /// is then the largest of them, not their sum. (With Helium, the generic loop, inlined.)
    #[cfg_attr(not(lara_attn_helium), inline(never))]
    #[cfg_attr(lara_attn_helium, inline(always))]
    unsafe fn micro_tile<const R: usize, const V: usize>(self, tile: &MicroTile) {
        #[cfg(all(target_arch = "arm", target_abi = "eabihf", not(lara_attn_helium)))]
        if R == 4 && V == 4 {
            // SAFETY: the caller's contract is tile_4x4's, and columns_4x1's.
            unsafe {
                if !super::vfp::tile_4x4(tile) {
                    columns_4x1(tile);
                }
            }
            return;
        }
        #[cfg(all(target_arch = "arm", lara_attn_helium))]
        if R == 3 && V == 8 {
            // SAFETY: the caller's contract is tile_3x8's.
            if unsafe { super::helium::tile_3x8(tile) } {
                return;
            }
        }
        // SAFETY: the caller's contract is micro's.
        unsafe { micro::<Self, R, V>(self, tile) }
    }
    /// With Helium, the row loops of `e^(x − shift)` in assembly ([`helium`](super::helium)).
    #[cfg(all(target_arch = "arm", lara_attn_helium))]
    #[inline(always)]
    fn exp_sub_row(
        self,
        x: &mut [f32],
        shift: super::ExpShift<'_>,
        sums: Option<&mut [f32]>,
    ) -> Option<f32> {
        Some(super::helium::exp_sub_row(x, shift, sums))
    }
    /// With Helium, in assembly ([`helium`](super::helium)).
    #[cfg(all(target_arch = "arm", lara_attn_helium))]
    #[inline(always)]
    fn dot_row(self, a: &[f32], b: &[f32]) -> Option<f32> {
        Some(super::helium::dot(a, b))
    }
    /// With Helium, in assembly ([`helium`](super::helium)).
    #[cfg(all(target_arch = "arm", lara_attn_helium))]
    #[inline(always)]
    fn scale_by_clamped_affine_row(
        self,
        x: &mut [f32],
        t_p: (&[f32], &[f32]),
        a_b: (f32, f32),
        floor: f32,
    ) -> Option<f32> {
        Some(super::helium::scale_by_clamped_affine(x, t_p, a_b, floor))
    }
    #[inline(always)]
    fn reduce_add(self, v: f32) -> f32 {
        v
    }
    #[inline(always)]
    fn reduce_max(self, v: f32) -> f32 {
        v
    }
}
