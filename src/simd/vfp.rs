//! The `4 × 4` register tile of [`gemm`](super::gemm) in assembly for ARM cores with a
//! single-precision FPU (the hard-float targets: Cortex-M4F, M7, M33, M55), the micro-kernel of
//! the one-lane instruction set [`Scalar`](super::Scalar) there.
//!
//! Per two steps of `k`: four `vldm` for the two rows of `B` and the two columns of `A` (or
//! four `vldmia` with write-back when `A`'s rows are apart), two or four pointer increments,
//! 32 `vmla` and the loop's `subs`/`bge`: 42 instructions for 32 multiply-adds, where compiled
//! Rust takes about 60 (it spends core registers on addresses). The 16 accumulators live in
//! `s0`–`s15`, `A` in `s16`–`s23`, `B` in `s24`–`s31`.
//!
//! Same arithmetic as the generic [`micro`](super::gemm::micro), so the same bits: accumulators
//! start at `+0`, `vmla` multiplies, rounds, adds and rounds (chained, not fused: `a·b + c` as
//! Rust computes it), in the order `p = 0, 1, …, k − 1`; then `C = acc`, or `C = C + acc`.
//!
//! (Each kernel is one `asm!` block: the compiler does not know this target's FPU registers as
//! operands, so the accumulators cannot leave a block as values.)

use super::gemm::MicroTile;

/// The accumulators' start: `vldm` of 16 zeros (VFP has no `vmov` of an immediate 0).
static ZEROS: [f32; 16] = [0.0; 16];

/// 16 `vmla`: `acc[i][j] += A(i) · B(j)` for the accumulators `s0`–`s15` (row-major), `A(i)` in
/// the registers `$a0`..`$a3`, `B(j)` in `$b0`..`$b3`.
macro_rules! vmla_4x4 {
    ($a0:literal, $a1:literal, $a2:literal, $a3:literal; $b0:literal, $b1:literal, $b2:literal, $b3:literal) => {
        concat!(
            "vmla.f32 s0, ",
            $a0,
            ", ",
            $b0,
            "\n",
            "vmla.f32 s1, ",
            $a0,
            ", ",
            $b1,
            "\n",
            "vmla.f32 s2, ",
            $a0,
            ", ",
            $b2,
            "\n",
            "vmla.f32 s3, ",
            $a0,
            ", ",
            $b3,
            "\n",
            "vmla.f32 s4, ",
            $a1,
            ", ",
            $b0,
            "\n",
            "vmla.f32 s5, ",
            $a1,
            ", ",
            $b1,
            "\n",
            "vmla.f32 s6, ",
            $a1,
            ", ",
            $b2,
            "\n",
            "vmla.f32 s7, ",
            $a1,
            ", ",
            $b3,
            "\n",
            "vmla.f32 s8, ",
            $a2,
            ", ",
            $b0,
            "\n",
            "vmla.f32 s9, ",
            $a2,
            ", ",
            $b1,
            "\n",
            "vmla.f32 s10, ",
            $a2,
            ", ",
            $b2,
            "\n",
            "vmla.f32 s11, ",
            $a2,
            ", ",
            $b3,
            "\n",
            "vmla.f32 s12, ",
            $a3,
            ", ",
            $b0,
            "\n",
            "vmla.f32 s13, ",
            $a3,
            ", ",
            $b1,
            "\n",
            "vmla.f32 s14, ",
            $a3,
            ", ",
            $b2,
            "\n",
            "vmla.f32 s15, ",
            $a3,
            ", ",
            $b3,
            "\n",
        )
    };
}

/// The end of both kernels: `C = acc` (`{accumulate}` zero) or `C += acc`, row by row (`{c}`
/// advancing by `{c_step}` bytes), through `s16`–`s19`.
macro_rules! store_tile {
    () => {
        concat!(
            "cmp {accumulate}, #0\n",
            "bne 5f\n",
            "vstm {c}, {{s0-s3}}\n",
            "add {c}, {c_step}\n",
            "vstm {c}, {{s4-s7}}\n",
            "add {c}, {c_step}\n",
            "vstm {c}, {{s8-s11}}\n",
            "add {c}, {c_step}\n",
            "vstm {c}, {{s12-s15}}\n",
            "b 6f\n",
            "5:\n",
            store_tile!(row "s0", "s1", "s2", "s3"),
            "add {c}, {c_step}\n",
            store_tile!(row "s4", "s5", "s6", "s7"),
            "add {c}, {c_step}\n",
            store_tile!(row "s8", "s9", "s10", "s11"),
            "add {c}, {c_step}\n",
            store_tile!(row "s12", "s13", "s14", "s15"),
            "6:\n",
        )
    };
    // C[i, ·] += acc[i, ·]
    (row $x0:literal, $x1:literal, $x2:literal, $x3:literal) => {
        concat!(
            "vldm {c}, {{s16-s19}}\n",
            "vadd.f32 s16, s16, ", $x0, "\n",
            "vadd.f32 s17, s17, ", $x1, "\n",
            "vadd.f32 s18, s18, ", $x2, "\n",
            "vadd.f32 s19, s19, ", $x3, "\n",
            "vstm {c}, {{s16-s19}}\n",
        )
    };
}

/// One `4 × 4` tile, if this kernel covers its layout (`A`'s four rows adjacent, `a_row = 1`,
/// or each row contiguous, `a_col = 1`), and `true`; `false` (nothing done) otherwise.
///
/// # Safety
/// As [`micro`](super::gemm::micro): rows `0..4` of `A` (`k` columns), rows `0..k` of `B` (4
/// columns) and rows `0..4` of `C` (4 columns) must be in bounds.
#[inline(always)]
pub(super) unsafe fn tile_4x4(tile: &MicroTile) -> bool {
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
    if a_row == 1 {
        // SAFETY: the loop reads rows 0..4 of A over k columns and rows 0..k of B over 4
        // columns, the stores rows 0..4 of C over 4 columns, in bounds by the caller's
        // contract; the block writes only C, s0–s31, flags and its operands.
        unsafe {
            asm_clobbering_s0_s31!(
                // A(i, p) at a + 4·(p·a_col + i): one vldm per step
                "vldm {zeros}, {{s0-s15}}",
                "subs {k}, #2",
                "blt 2f",
                "1:",
                "vldm {a}, {{s16-s19}}",
                "add {a}, {a_step}",
                "vldm {b}, {{s24-s27}}",
                "add {b}, {b_step}",
                "vldm {a}, {{s20-s23}}",
                "add {a}, {a_step}",
                "vldm {b}, {{s28-s31}}",
                "add {b}, {b_step}",
                // steps p and p + 1
                vmla_4x4!("s16", "s17", "s18", "s19"; "s24", "s25", "s26", "s27"),
                vmla_4x4!("s20", "s21", "s22", "s23"; "s28", "s29", "s30", "s31"),
                "subs {k}, #2",
                "bge 1b",
                "2:",
                // k odd: the last step
                "adds {k}, #2",
                "beq 3f",
                "vldm {a}, {{s16-s19}}",
                "vldm {b}, {{s24-s27}}",
                vmla_4x4!("s16", "s17", "s18", "s19"; "s24", "s25", "s26", "s27"),
                "3:",
                store_tile!(),
                zeros = in(reg) ZEROS.as_ptr(),
                k = inout(reg) k => _,
                a = inout(reg) a => _,
                a_step = in(reg) a_col_bytes,
                b = inout(reg) b => _,
                b_step = in(reg) b_bytes,
                c = inout(reg) c => _,
                c_step = in(reg) c_bytes,
                accumulate = in(reg) u32::from(accumulate),
                options(nostack),
            );
        }
        true
    } else if a_col == 1 {
        // SAFETY: as above.
        unsafe {
            asm_clobbering_s0_s31!(
                // A(i, p) at a + 4·(i·a_row + p): four row pointers, two steps per vldmia
                "vldm {zeros}, {{s0-s15}}",
                "subs {k}, #2",
                "blt 2f",
                "1:",
                "vldmia {a0}!, {{s16-s17}}",
                "vldmia {a1}!, {{s18-s19}}",
                "vldmia {a2}!, {{s20-s21}}",
                "vldmia {a3}!, {{s22-s23}}",
                "vldm {b}, {{s24-s27}}",
                "add {b}, {b_step}",
                "vldm {b}, {{s28-s31}}",
                "add {b}, {b_step}",
                // steps p and p + 1
                vmla_4x4!("s16", "s18", "s20", "s22"; "s24", "s25", "s26", "s27"),
                vmla_4x4!("s17", "s19", "s21", "s23"; "s28", "s29", "s30", "s31"),
                "subs {k}, #2",
                "bge 1b",
                "2:",
                // k odd: the last step
                "adds {k}, #2",
                "beq 3f",
                "vldr s16, [{a0}]",
                "vldr s18, [{a1}]",
                "vldr s20, [{a2}]",
                "vldr s22, [{a3}]",
                "vldm {b}, {{s24-s27}}",
                vmla_4x4!("s16", "s18", "s20", "s22"; "s24", "s25", "s26", "s27"),
                "3:",
                store_tile!(),
                zeros = in(reg) ZEROS.as_ptr(),
                k = inout(reg) k => _,
                a0 = inout(reg) a => _,
                a1 = inout(reg) a.wrapping_byte_add(a_row_bytes) => _,
                a2 = inout(reg) a.wrapping_byte_add(a_row_bytes.wrapping_mul(2)) => _,
                a3 = inout(reg) a.wrapping_byte_add(a_row_bytes.wrapping_mul(3)) => _,
                b = inout(reg) b => _,
                b_step = in(reg) b_bytes,
                c = inout(reg) c => _,
                c_step = in(reg) c_bytes,
                accumulate = in(reg) u32::from(accumulate),
                options(nostack),
            );
        }
        true
    } else {
        false
    }
}
