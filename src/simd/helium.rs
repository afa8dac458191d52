//! Helium (MVE) kernels in assembly for the one-lane instruction set [`Scalar`](super::Scalar)
//! on cores with Helium (the cfg `lara_attn_helium`: Cortex-M55, M52, M85): the `3 × 8` register
//! tile of [`gemm`](super::gemm) (its micro-kernel there), and the row loops of `e^(x − shift)`
//! with their sums ([`Isa::exp_sub_row`](super::Isa::exp_sub_row)), [`dot`] and LARA's
//! weighting row ([`scale_by_clamped_affine`]).
//!
//! Stable Rust has no MVE intrinsics, and `asm!` cannot take `q` registers as operands without
//! NEON, so each kernel is one `asm!` block that keeps its vectors in `q0`–`q7` (declared
//! clobbered as `s0`–`s31`, which alias them).
//!
//! The tile: 3 rows of `C` by 2 vectors of 4 lanes (8 columns), 6 accumulators in `q0`–`q5`, the
//! two vectors of a row of `B` in `q6`, `q7`, the 3 elements of `A` of a step in core registers:
//! per step 2 `vldrw` and 6 `vfma.f32 qd, qn, rm` (`qd += qn · rm`, 24 multiply-adds), the
//! elements of `A` loaded two steps at a time (`ldrd`) when `A`'s rows are contiguous. The
//! multiply-adds are fused (one rounding, the generic micro-kernel rounds twice), in the order
//! `p = 0, 1, …, k − 1`; then `C = acc` or `C = C + acc`.

use super::ExpShift;
use super::gemm::MicroTile;
use core::arch::asm;

/// `vfma` of the 6 accumulators: `q0 += q6 · $a0`, `q1 += q7 · $a0`, `q2 += q6 · $a1`, ….
macro_rules! fma_3x2 {
    ($a0:literal, $a1:literal, $a2:literal) => {
        concat!(
            "vfma.f32 q0, q6, ",
            $a0,
            "\n",
            "vfma.f32 q1, q7, ",
            $a0,
            "\n",
            "vfma.f32 q2, q6, ",
            $a1,
            "\n",
            "vfma.f32 q3, q7, ",
            $a1,
            "\n",
            "vfma.f32 q4, q6, ",
            $a2,
            "\n",
            "vfma.f32 q5, q7, ",
            $a2,
            "\n",
        )
    };
}

/// The row of `B` of one step into `q6`, `q7`, and `{b}` to the next row.
macro_rules! load_b {
    () => {
        concat!(
            "vldrw.u32 q6, [{b}]\n",
            "vldrw.u32 q7, [{b}, #16]\n",
            "add {b}, {ldb}\n",
        )
    };
}

/// The end of both kernels: `C = acc` (`$acc` zero) or `C += acc`, row by row (`$c` advancing by
/// `$ldc` bytes), through `q6`, `q7`.
macro_rules! store_3x2 {
    ($c:literal, $ldc:literal, $acc:literal) => {
        concat!(
            "cmp ",
            $acc,
            ", #0\n",
            "beq 5f\n",
            // C[i, ·] += acc[i, ·]
            "vldrw.u32 q6, [",
            $c,
            "]\n",
            "vldrw.u32 q7, [",
            $c,
            ", #16]\n",
            "vadd.f32 q0, q0, q6\n",
            "vadd.f32 q1, q1, q7\n",
            "add ",
            $c,
            ", ",
            $ldc,
            "\n",
            "vldrw.u32 q6, [",
            $c,
            "]\n",
            "vldrw.u32 q7, [",
            $c,
            ", #16]\n",
            "vadd.f32 q2, q2, q6\n",
            "vadd.f32 q3, q3, q7\n",
            "add ",
            $c,
            ", ",
            $ldc,
            "\n",
            "vldrw.u32 q6, [",
            $c,
            "]\n",
            "vldrw.u32 q7, [",
            $c,
            ", #16]\n",
            "vadd.f32 q4, q4, q6\n",
            "vadd.f32 q5, q5, q7\n",
            "sub ",
            $c,
            ", ",
            $c,
            ", ",
            $ldc,
            ", lsl #1\n",
            "5:\n",
            "vstrw.32 q0, [",
            $c,
            "]\n",
            "vstrw.32 q1, [",
            $c,
            ", #16]\n",
            "add ",
            $c,
            ", ",
            $ldc,
            "\n",
            "vstrw.32 q2, [",
            $c,
            "]\n",
            "vstrw.32 q3, [",
            $c,
            ", #16]\n",
            "add ",
            $c,
            ", ",
            $ldc,
            "\n",
            "vstrw.32 q4, [",
            $c,
            "]\n",
            "vstrw.32 q5, [",
            $c,
            ", #16]\n",
        )
    };
}

/// Zeroes the 6 accumulators.
macro_rules! zero_accumulators {
    () => {
        "vmov.i32 q0, #0\nvmov.i32 q1, #0\nvmov.i32 q2, #0\n\
         vmov.i32 q3, #0\nvmov.i32 q4, #0\nvmov.i32 q5, #0\n"
    };
}

/// One `3 × 8` tile, if this kernel covers its layout (each row of `A` contiguous, `a_col = 1`,
/// or its three rows adjacent, `a_row = 1`), and `true`; `false` (nothing done) otherwise.
///
/// # Safety
/// As [`micro`](super::gemm::micro): rows `0..3` of `A` (`k` columns), rows `0..k` of `B` (8
/// columns) and rows `0..3` of `C` (8 columns) must be in bounds.
#[inline(always)]
pub(super) unsafe fn tile_3x8(tile: &MicroTile) -> bool {
    let MicroTile {
        k,
        a,
        a_row,
        a_col,
        b,
        c,
        accumulate,
        ..
    } = *tile;
    let (a_row_bytes, a_col_bytes, b_bytes, c_bytes) = tile.byte_strides();
    if a_col == 1 {
        // What the store needs after the loop, which uses every core register: on the stack.
        let store = [c as usize, c_bytes, usize::from(accumulate)];
        // SAFETY: the loop reads rows 0..3 of A over k columns and rows 0..k of B over 8
        // columns, the stores rows 0..3 of C over 8 columns, in bounds by the caller's
        // contract; `store` is live across the block, which pushes one word pair and pops it;
        // the block writes only C, q0–q7, lr, flags and its operands.
        unsafe {
            asm_clobbering_s0_s31!(
                "str {x0}, [sp, #-8]!",
                zero_accumulators!(),
                // x1 = k / 2 pairs of steps; k odd: the first step alone
                "lsrs {x1}, {x1}, #1",
                "bcc 2f",
                "ldr {x2}, [{a0}], #4",
                "ldr {x3}, [{a1}], #4",
                "ldr {x4}, [{a2}], #4",
                load_b!(),
                fma_3x2!("{x2}", "{x3}", "{x4}"),
                "2:",
                "wls lr, {x1}, 4f",
                "3:",
                // A(i, p), A(i, p + 1) for the three rows
                "ldrd {x0}, {x1}, [{a0}], #8",
                "ldrd {x2}, {x3}, [{a1}], #8",
                "ldrd {x4}, {x5}, [{a2}], #8",
                // steps p and p + 1: acc[i, ·] += A(i, p) · B[p, ·]
                load_b!(),
                fma_3x2!("{x0}", "{x2}", "{x4}"),
                load_b!(),
                fma_3x2!("{x1}", "{x3}", "{x5}"),
                "le lr, 3b",
                "4:",
                // x0 = C, x1 = ldc in bytes, x2 = accumulate
                "ldr {x0}, [sp], #8",
                "ldr {x1}, [{x0}, #4]",
                "ldr {x2}, [{x0}, #8]",
                "ldr {x0}, [{x0}]",
                store_3x2!("{x0}", "{x1}", "{x2}"),
                x0 = inout(reg) store.as_ptr() => _,
                x1 = inout(reg) k => _,
                x2 = out(reg) _,
                x3 = out(reg) _,
                x4 = out(reg) _,
                x5 = out(reg) _,
                a0 = inout(reg) a => _,
                a1 = inout(reg) a.wrapping_byte_add(a_row_bytes) => _,
                a2 = inout(reg) a.wrapping_byte_add(a_row_bytes.wrapping_mul(2)) => _,
                b = inout(reg) b => _,
                ldb = in(reg) b_bytes,
                out("lr") _,
            );
        }
        true
    } else if a_row == 1 {
        // SAFETY: as above (no stack use).
        unsafe {
            asm_clobbering_s0_s31!(
                zero_accumulators!(),
                "wls lr, {k}, 4f",
                "3:",
                // A(0, p), A(1, p), A(2, p): adjacent
                "ldrd {x0}, {x1}, [{a}]",
                "ldr {x2}, [{a}, #8]",
                "add {a}, {a_step}",
                // acc[i, ·] += A(i, p) · B[p, ·]
                load_b!(),
                fma_3x2!("{x0}", "{x1}", "{x2}"),
                "le lr, 3b",
                "4:",
                store_3x2!("{c}", "{ldc}", "{acc}"),
                k = in(reg) k,
                x0 = out(reg) _,
                x1 = out(reg) _,
                x2 = out(reg) _,
                a = inout(reg) a => _,
                a_step = in(reg) a_col_bytes,
                b = inout(reg) b => _,
                ldb = in(reg) b_bytes,
                c = inout(reg) c => _,
                ldc = in(reg) c_bytes,
                acc = in(reg) u32::from(accumulate),
                out("lr") _,
                options(nostack),
            );
        }
        true
    } else {
        false
    }
}

/// The constants of [`exp_sub_row`]'s `e^x`, by byte offset: 0 `log2 e`, 4 `1.5·2^23`, 8 and 12
/// `−ln 2` in two parts, 16–36 the polynomial `c5, c4, c3, c2, c1, c0`, 40 `1.0` (also
/// `127 << 23`, the exponent bias in place), 44 `+inf`, 48 [`EXP_UNDERFLOW`], 52
/// [`EXP_OVERFLOW`]: the values of [`exp_in_range`](super::exp_in_range).
static EXP_CONSTANTS: [f32; 14] = [
    core::f32::consts::LOG2_E,
    12_582_912.0,
    -0.693_359_4,
    2.121_944_4e-4,
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
    1.0,
    f32::INFINITY,
    super::EXP_UNDERFLOW,
    super::EXP_OVERFLOW,
];

/// The loop of [`exp_sub_row`] on 4 lanes, tail-predicated (`wlstp`/`letp`: the last vector's
/// lanes past the end are neither loaded nor stored nor summed): `$shift` leaves `x − shift` in
/// `q0`, `$sums` adds the result to the running column sums. Registers: `{x}` the row, `{n}` its
/// length, `{t}` [`EXP_CONSTANTS`], `{k0}`–`{k3}` its first four, `{k6}`, `{k7}` scratch; `q4`
/// the sum, `q5`, `q6` the range's ends.
macro_rules! exp_loop {
    ($shift:expr, $sums:expr) => {
        concat!(
            "ldrd {k6}, {k7}, [{t}, #48]\n",
            "vdup.32 q5, {k6}\n",
            "vdup.32 q6, {k7}\n",
            "vmov.i32 q4, #0\n",
            "ldrd {k0}, {k1}, [{t}]\n",
            "ldrd {k2}, {k3}, [{t}, #8]\n",
            "wlstp.32 lr, {n}, 2f\n",
            "1:\n",
            "vldrw.u32 q0, [{x}]\n",
            $shift,
            // clamped to [EXP_UNDERFLOW, EXP_OVERFLOW] (NaN to the lower end)
            "vmaxnm.f32 q1, q0, q5\n",
            "vminnm.f32 q1, q1, q6\n",
            // rounded = x·log2 e + 1.5·2^23 (fused), n = rounded − 1.5·2^23
            "vdup.32 q2, {k1}\n",
            "vfma.f32 q2, q1, {k0}\n",
            "vsub.f32 q7, q2, {k1}\n",
            // r = x − n·ln2, in two steps (fused)
            "vfma.f32 q1, q7, {k2}\n",
            "vfma.f32 q1, q7, {k3}\n",
            // p = c5·r + c4, then p = p·r + c for c3 … c0 (Horner, fused)
            "ldrd {k6}, {k7}, [{t}, #16]\n",
            "vdup.32 q3, {k7}\n",
            "vfma.f32 q3, q1, {k6}\n",
            "ldrd {k6}, {k7}, [{t}, #24]\n",
            "vfmas.f32 q3, q1, {k6}\n",
            "vfmas.f32 q3, q1, {k7}\n",
            "ldrd {k6}, {k7}, [{t}, #32]\n",
            "vfmas.f32 q3, q1, {k6}\n",
            "vfmas.f32 q3, q1, {k7}\n",
            // e^r = (p·r² + r) + 1 (k6 = 1.0, k7 = +inf)
            "vmul.f32 q7, q1, q1\n",
            "vfma.f32 q1, q3, q7\n",
            "ldrd {k6}, {k7}, [{t}, #40]\n",
            "vadd.f32 q1, q1, {k6}\n",
            // 2^n = bits((rounded << 23) + (127 << 23)); e^x = e^r · 2^n
            "vshl.i32 q2, q2, #23\n",
            "vadd.i32 q2, q2, {k6}\n",
            "vmul.f32 q1, q1, q2\n",
            // 0 below the range, +inf above it, NaN for NaN
            "vpt.f32 lt, q0, q5\n",
            "vmovt.i32 q1, #0\n",
            "vpt.f32 gt, q0, q6\n",
            "vdupt.32 q1, {k7}\n",
            "vpt.f32 ne, q0, q0\n",
            "vmovt q1, q0\n",
            "vstrw.32 q1, [{x}], #16\n",
            // Σ
            "vadd.f32 q4, q4, q1\n",
            $sums,
            "letp lr, 1b\n",
            "2:\n",
            // the sum of the lanes, (s16 + s17) + (s18 + s19)
            "vadd.f32 s16, s16, s17\n",
            "vadd.f32 s18, s18, s19\n",
            "vadd.f32 s16, s16, s18\n",
            "vmov {k0}, s16\n",
        )
    };
}

/// The `asm!` block of one [`exp_loop!`] over `x`: the shift step and the sums step (string
/// literals) and their own operands (`x`, `n`, `s`, `sums`) as given; the constants at `table`,
/// `Σ` into `total`; every FPU/MVE register and `lr` clobbered.
macro_rules! exp_row_asm {
    ($total:ident, $table:ident, $shift:tt, $sums:tt, $($operands:tt)*) => {
        asm_clobbering_s0_s31!(
            exp_loop!($shift, $sums),
            $($operands)*
            t = in(reg) $table,
            k0 = out(reg) $total,
            k1 = out(reg) _,
            k2 = out(reg) _,
            k3 = out(reg) _,
            k6 = out(reg) _,
            k7 = out(reg) _,
            out("lr") _,
            options(nostack),
        )
    };
}

/// `x[c] ← e^(x[c] − shift_c)` for every `c` (`shift_c` the scalar or `shift[c]`, over the common
/// length), and with `sums`, `sums[c] += x[c]`; returns `Σ_c x[c]` (summed 4 lanes apart, then
/// across the lanes). The arithmetic of [`exp`](super::exp) with fused multiply-adds (the same
/// operations as the FMA backends'), the same results out of range.
#[inline(always)]
pub(crate) fn exp_sub_row(x: &mut [f32], shift: ExpShift<'_>, sums: Option<&mut [f32]>) -> f32 {
    let total: u32;
    let table = EXP_CONSTANTS.as_ptr();
    match (shift, sums) {
        (ExpShift::Scalar(s), None) => {
            // SAFETY: the loop reads and writes x[0 .. len] (tail-predicated) and reads the
            // constants; the block writes only x, q0–q7, lr, flags and its operands.
            unsafe {
                exp_row_asm!(
                    total,
                    table,
                    "vsub.f32 q0, q0, {s}\n", "",
                    x = inout(reg) x.as_mut_ptr() => _,
                    n = in(reg) x.len(),
                    s = in(reg) s.to_bits(),
                )
            }
        }
        (ExpShift::Row(shift), None) => {
            let len = x.len().min(shift.len());
            // SAFETY: the loop reads and writes x[0 .. len] and reads shift[0 .. len]
            // (tail-predicated), len <= both lengths; as above otherwise.
            unsafe {
                exp_row_asm!(
                    total,
                    table,
                    "vldrw.u32 q7, [{s}], #16\nvsub.f32 q0, q0, q7\n", "",
                    x = inout(reg) x.as_mut_ptr() => _,
                    n = in(reg) len,
                    s = inout(reg) shift.as_ptr() => _,
                )
            }
        }
        (shift, Some(sums)) => {
            let shift = match shift {
                ExpShift::Row(shift) => shift,
                // (not used by the kernels: the generic form)
                ExpShift::Scalar(s) => {
                    let mut total = 0.0;
                    for (xi, si) in x.iter_mut().zip(sums.iter_mut()) {
                        *xi = super::exp(super::Scalar, *xi - s);
                        *si += *xi;
                        total += *xi;
                    }
                    return total;
                }
            };
            let len = x.len().min(shift.len()).min(sums.len());
            // SAFETY: the loop reads and writes x[0 .. len] and sums[0 .. len] and reads
            // shift[0 .. len] (tail-predicated), len <= the three lengths; as above otherwise.
            unsafe {
                exp_row_asm!(
                    total,
                    table,
                    "vldrw.u32 q7, [{s}], #16\nvsub.f32 q0, q0, q7\n",
                        // sums[c] += e^(…)
                        "vldrw.u32 q7, [{sums}]\nvadd.f32 q7, q7, q1\nvstrw.32 q7, [{sums}], #16\n",
                    x = inout(reg) x.as_mut_ptr() => _,
                    n = in(reg) len,
                    s = inout(reg) shift.as_ptr() => _,
                    sums = inout(reg) sums.as_mut_ptr() => _,
                )
            }
        }
    }
    f32::from_bits(total)
}

/// `Σ_c a[c]·b[c]` over the common length: 4 lanes of fused multiply-adds, tail-predicated, then
/// the sum of the lanes.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let total: u32;
    // SAFETY: the loop reads a[0 .. len] and b[0 .. len] (tail-predicated), len <= both
    // lengths; the block writes only q0–q2, lr, flags and its operands.
    unsafe {
        asm!(
            "vmov.i32 q2, #0",
            "wlstp.32 lr, {n}, 2f",
            "1:",
            "vldrw.u32 q0, [{a}], #16",
            "vldrw.u32 q1, [{b}], #16",
            // acc += a·b (fused)
            "vfma.f32 q2, q0, q1",
            "letp lr, 1b",
            "2:",
            // the sum of the lanes, (s8 + s9) + (s10 + s11)
            "vadd.f32 s8, s8, s9",
            "vadd.f32 s10, s10, s11",
            "vadd.f32 s8, s8, s10",
            "vmov {t}, s8",
            n = in(reg) a.len().min(b.len()),
            a = inout(reg) a.as_ptr() => _,
            b = inout(reg) b.as_ptr() => _,
            t = out(reg) total,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            options(nostack),
        );
    }
    f32::from_bits(total)
}

/// `x[c] ← x[c] · max(p[c] + (a·t[c] + b), floor)` over the common length, returning `Σ_c x[c]`
/// (4 lanes apart, then across the lanes); `a·t + b` fused.
#[inline(always)]
pub(crate) fn scale_by_clamped_affine(
    x: &mut [f32],
    (t, p): (&[f32], &[f32]),
    (a, b): (f32, f32),
    floor: f32,
) -> f32 {
    let total: u32;
    let len = x.len().min(t.len()).min(p.len());
    // SAFETY: the loop reads and writes x[0 .. len] and reads t[0 .. len] and p[0 .. len]
    // (tail-predicated), len <= the three lengths; the block writes only x, q0–q4, lr, flags
    // and its operands.
    unsafe {
        asm!(
            "vmov.i32 q4, #0",
            "vdup.32 q3, {floor}",
            "wlstp.32 lr, {n}, 2f",
            "1:",
            // affine = a·t + b (fused), + p
            "vldrw.u32 q0, [{t}], #16",
            "vdup.32 q1, {b}",
            "vfma.f32 q1, q0, {a}",
            "vldrw.u32 q0, [{p}], #16",
            "vadd.f32 q1, q1, q0",
            // x · max(affine, floor)
            "vmaxnm.f32 q1, q1, q3",
            "vldrw.u32 q0, [{x}]",
            "vmul.f32 q0, q0, q1",
            "vstrw.32 q0, [{x}], #16",
            // Σ
            "vadd.f32 q4, q4, q0",
            "letp lr, 1b",
            "2:",
            // the sum of the lanes, (s16 + s17) + (s18 + s19)
            "vadd.f32 s16, s16, s17",
            "vadd.f32 s18, s18, s19",
            "vadd.f32 s16, s16, s18",
            "vmov {total}, s16",
            n = in(reg) len,
            x = inout(reg) x.as_mut_ptr() => _,
            t = inout(reg) t.as_ptr() => _,
            p = inout(reg) p.as_ptr() => _,
            a = in(reg) a.to_bits(),
            b = in(reg) b.to_bits(),
            floor = in(reg) floor.to_bits(),
            total = lateout(reg) total,
            out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            options(nostack),
        );
    }
    f32::from_bits(total)
}
