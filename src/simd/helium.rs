//! Helium (MVE) kernels in assembly for the one-lane instruction set [`Scalar`](super::Scalar)
//! on cores with Helium (the cfg `lara_attn_helium`: Cortex-M55, M52, M85): the `3 × 8` register
//! tile of [`gemm`](super::gemm) (its micro-kernel there).
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
        ldb,
        c,
        ldc,
        accumulate,
        width: _,
    } = *tile;
    // Byte strides. (They fit: gemm checked that rows 0..3 of A and C and rows 0..k of B lie
    // in slices, no longer than isize::MAX bytes; a stride the loop never steps may wrap
    // harmlessly.)
    let (a_row_bytes, a_col_bytes) = (a_row.wrapping_mul(4), a_col.wrapping_mul(4));
    let (b_bytes, c_bytes) = (ldb.wrapping_mul(4), ldc.wrapping_mul(4));
    if a_col == 1 {
        // What the store needs after the loop, which uses every core register: on the stack.
        let store = [c as usize, c_bytes, usize::from(accumulate)];
        // SAFETY: the loop reads rows 0..3 of A over k columns and rows 0..k of B over 8
        // columns, the stores rows 0..3 of C over 8 columns, in bounds by the caller's
        // contract; `store` is live across the block, which pushes one word pair and pops it;
        // the block writes only C, q0–q7, lr, flags and its operands.
        unsafe {
            asm!(
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
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                out("s24") _, out("s25") _, out("s26") _, out("s27") _,
                out("s28") _, out("s29") _, out("s30") _, out("s31") _,
            );
        }
        true
    } else if a_row == 1 {
        // SAFETY: as above (no stack use).
        unsafe {
            asm!(
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
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                out("s24") _, out("s25") _, out("s26") _, out("s27") _,
                out("s28") _, out("s29") _, out("s30") _, out("s31") _,
                options(nostack),
            );
        }
        true
    } else {
        false
    }
}
