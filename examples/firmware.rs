//! Firmware: exact attention, RFA (positive features, given `ω`) and LARA (eval mode, `mis-opt`)
//! on a bare-metal Cortex-M, and a whole `LinearRA` layer from weights in flash
//! (`examples/firmware/layer_weights.rs`, written by `examples/state_dict_to_rust.rs` from
//! `tests/data/firmware_layer/`), checked against values computed on the host by the same crate,
//! with the instructions and the peak stack of every call measured on the device.
//!
//! Run under QEMU (runner and linker flags in `.cargo/config.toml`, memory map in
//! `examples/firmware/memory.x`); the exit status is the firmware's:
//!
//! ```sh
//! cargo run --release --example firmware --target thumbv7em-none-eabihf      # Cortex-M4F, mps2-an386
//! QEMU_MACHINE=mps2-an500 cargo run --release --example firmware --target thumbv7em-none-eabihf  # M7
//! cargo run --release --example firmware --target thumbv8m.main-none-eabihf  # Cortex-M55, mps3-an547
//! cargo run --release --example firmware --target thumbv7m-none-eabi         # Cortex-M3, mps2-an385
//! cargo run --release --example firmware --target thumbv6m-none-eabi         # Cortex-M0 code, mps2-an385
//! ```
//!
//! On the host, `cargo run --release --example firmware` runs the same calls with the scalar, the
//! one-lane blocked and the best SIMD backend and compares them with the same expected values, and
//! `cargo run --release --example firmware -- --generate` rewrites those values
//! (`examples/firmware/expected.rs`) from the scalar kernels.
//!
//! The firmware prints, per call: instructions executed (QEMU `-icount` makes SysTick count
//! instructions; calibrated at boot with a loop of known length), peak stack (painting; the
//! buffers are `static`s, so this is the kernel's own use) and `max|firmware − host|` over the
//! compared values; then the LARA/exact and RFA/exact instruction ratios, the layer's
//! instructions per multiply-add (`cases::LAYER_MACS`), the instructions of
//! one `libm::expf` and one `lara_attn::exp_f32` call (mean over a sweep of `[-20, 0]`), and a
//! hash of 256 Gaussian draws against the host's (the sampler's bits are the same on every
//! target). It exits 0 only if every call returned `Ok`, the hash matches and every error is within
//! `cases::TOLERANCE` (1e-5: the outputs are convex combinations of values in `[-1, 1)`, so this
//! is about 80 ulp of the largest value; scalar kernels give bit-identical results on every
//! target because Rust never contracts or reorders float operations, so any error is a bug or a
//! different summation order). A panic exits with 101, a HardFault with 3.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[path = "firmware/cases.rs"]
mod cases;
#[path = "firmware/expected.rs"]
mod expected;
#[path = "firmware/layer_weights.rs"]
mod layer_weights;

#[cfg(all(target_os = "none", not(target_arch = "arm")))]
compile_error!(
    "the firmware example runs on Cortex-M (thumbv6m, thumbv7m, thumbv7em, thumbv8m.main)"
);

#[cfg(all(target_arch = "arm", target_os = "none"))]
#[path = "firmware/device.rs"]
mod device;

#[cfg(all(target_arch = "arm", target_os = "none"))]
mod firmware {
    use crate::cases::{self, Buffers, CASES, Case, CheckedLayer, Kernel};
    use crate::device::{self, Console, Counter, Sci};
    use crate::expected::{EXPECTED, SAMPLER_HASH};
    use core::fmt::Write;
    use core::hint::black_box;

    #[cortex_m_rt::entry]
    fn main() -> ! {
        // The example's buffers: inputs, output and the kernels' scratch, sized by `const fn`s.
        // (`#[entry]` turns this `static mut` into a `&'static mut` reference: one owner.)
        static mut BUFFERS: Buffers = Buffers::new();
        // The layer, checked once by `Layer::new` (as a firmware does at start-up).
        static mut LAYER: CheckedLayer = None;
        let buffers: &'static mut Buffers = BUFFERS;
        *LAYER = cases::check_layer();
        buffers.set_layer(LAYER);
        let mut out = Console::open();
        device::start_counter();
        let counter = Counter::calibrate();
        let (core, cpuid) = device::core_name();
        let mve = device::mve(cpuid);
        let backend = lara_attn::backend::active_backend();
        // Write errors (no console) cannot be reported anywhere: ignore them.
        let _ = writeln!(
            out,
            "lara-attn firmware example on {core} (CPUID {cpuid:#010x}, Helium: {mve}), backend \
             {backend}\n\
             instruction counter: {} instructions = {} SysTick ticks (QEMU -icount)\n",
            device::CALIBRATION_INSTRUCTIONS,
            counter.calibration_ticks(),
        );
        let _ = writeln!(
            out,
            "{:<6} {:>4} {:>3} {:>4} {:>12} {:>8}  max|firmware - host|",
            "kernel", "n", "d", "C/S", "instructions", "stack B"
        );
        let mut instructions = [0u64; CASES.len()];
        let mut stacks = [0usize; CASES.len()];
        let (mut kernel_errors, mut mismatches) = (0, 0);
        let measured = instructions.iter_mut().zip(&mut stacks);
        let mut checked = 0;
        for ((case, expected), (count, stack_bytes)) in CASES.iter().zip(EXPECTED).zip(measured) {
            // (A size build without this kernel still compares and prints, so that the
            // baseline holds the same harness code as the others, but the comparison does not
            // count; `black_box` keeps the code that depends on it in every build.)
            let linked = black_box(case.kernel.linked());
            checked += usize::from(linked);
            buffers.prepare(case);
            let (mut insns, mut result) = (0, Ok(()));
            buffers.with_call(case, &mut |call| {
                (insns, result) = counter.instructions(call)
            });
            *count = insns;
            let error = match result {
                Ok(()) => cases::max_error(case, buffers.output(case), expected),
                Err(e) => {
                    let _ = writeln!(out, "{}: kernel error: {e}", case.kernel.name());
                    kernel_errors += 1;
                    f32::INFINITY
                }
            };
            let mut stack = 0;
            buffers.with_call(case, &mut |call| (stack, _) = device::peak_stack(call));
            *stack_bytes = stack;
            let ok = cases::passes(case, error) || !linked;
            mismatches += usize::from(!ok);
            let rank = match case.kernel {
                Kernel::Exact | Kernel::Exact8 => 0,
                _ => case.rank,
            };
            let _ = writeln!(
                out,
                "{:<6} {:>4} {:>3} {:>4} {:>12} {:>8}  {}{}",
                case.kernel.name(),
                case.shape.queries,
                case.shape.dim,
                rank,
                insns,
                stack,
                Sci(error),
                match (linked, ok) {
                    (false, _) => "  (not linked in this size build)",
                    (true, true) => "",
                    (true, false) => "  MISMATCH",
                }
            );
        }
        let _ = writeln!(out);
        // The same figures for programs: one JSON object per call.
        for ((case, &insns), &stack) in CASES.iter().zip(&instructions).zip(&stacks) {
            if !black_box(case.kernel.linked()) {
                continue;
            }
            let _ = writeln!(
                out,
                "FIRMWARE {{\"core\": \"{core}\", \"cpuid\": \"{cpuid:#010x}\", \"mve\": \"{mve}\", \
                 \"build\": \"{}\", \"backend\": \"{backend}\", \"kernel\": \"{}\", \"n\": {}, \
                 \"d\": {}, \"c\": {}, \"instructions\": {insns}, \"macs\": {}, \"per_mac\": {}, \
                 \"bench_macs\": {}, \"stack\": {stack}}}",
                cases::BUILD,
                case.kernel.name(),
                case.shape.queries,
                case.shape.dim,
                if matches!(case.kernel, Kernel::Exact | Kernel::Exact8) {
                    0
                } else {
                    case.rank
                },
                case.macs(),
                Ratio(insns, case.macs()),
                case.bench_macs(),
            );
        }
        let _ = writeln!(out);
        for (shape, calls) in [
            ("(64,16,8)", &instructions[..3]),
            ("(256,32,16)", &instructions[3..6]),
        ] {
            let (exact, rfa, lara) = (calls[0], calls[1], calls[2]);
            let _ = writeln!(
                out,
                "at {shape}: LARA/exact = {} ({}x fewer instructions), RFA/exact = {}",
                Ratio(lara, exact),
                Ratio(exact, lara),
                Ratio(rfa, exact),
            );
        }
        // int8 against f32 on this core, and instructions per multiply-add.
        for (kernel8, kernel) in [
            (Kernel::Exact8, Kernel::Exact),
            (Kernel::Rfa8, Kernel::Rfa),
            (Kernel::Lara8, Kernel::Lara),
        ] {
            for (i, case) in CASES.iter().enumerate() {
                if case.kernel != kernel8 || !black_box(kernel8.linked()) {
                    continue;
                }
                let same = |c: &Case| c.kernel == kernel && c.shape == case.shape;
                let Some(j) = CASES.iter().position(same) else {
                    continue;
                };
                let macs = case.bench_macs();
                let _ = writeln!(
                    out,
                    "int8 {} at ({},{},{}): f32/int8 instructions {}x, {} instructions per \
                     multiply-add ({} MACs; f32: {})",
                    kernel.name(),
                    case.shape.queries,
                    case.shape.dim,
                    case.rank,
                    Ratio(instructions[j], instructions[i]),
                    Ratio(instructions[i], macs),
                    macs,
                    Ratio(instructions[j], macs),
                );
            }
        }
        if let Some(i) = CASES.iter().position(|c| c.kernel == Kernel::Layer) {
            let config = &crate::layer_weights::CONFIG;
            let _ = writeln!(
                out,
                "layer (LinearRA, dim {}, {} heads, n {}, C {}, mis-opt, eval): {} instructions \
                 per multiply-add of the model ({} MACs), {} per multiply-add executed ({})",
                config.dim,
                config.heads,
                CASES[i].shape.queries,
                CASES[i].rank,
                Ratio(instructions[i], cases::LAYER_MACS),
                cases::LAYER_MACS,
                Ratio(instructions[i], cases::LAYER_MACS_EXECUTED),
                cases::LAYER_MACS_EXECUTED,
            );
        }

        // e^x over a sweep of arguments, less the same loop without it.
        let (base, _) = counter.instructions(|| sweep(black_box));
        let (libm_exp, _) = counter.instructions(|| sweep(|x| libm::expf(black_box(x))));
        let (own_exp, _) = counter.instructions(|| sweep(|x| lara_attn::exp_f32(black_box(x))));
        for (name, total) in [("libm::expf", libm_exp), ("lara_attn::exp_f32", own_exp)] {
            let per_call = total.saturating_sub(base) as f32 / EXP_SWEEP as f32;
            let _ = writeln!(
                out,
                "{name}: {} instructions per call (mean over {EXP_SWEEP} arguments in [-20, 0], \
                 loop overhead removed)",
                (per_call + 0.5) as u32
            );
        }
        if cases::INT8_LOOP_CHECK {
            // The int8 inner loops of this core (DSP or Helium assembly) against the portable
            // ones on every length 1..=40.
            let loops = lara_attn::int8::check_inner_loops();
            mismatches += usize::from(loops.is_some());
            let _ = writeln!(
                out,
                "int8 inner loops against the portable ones, lengths 1 to 40: {}",
                match loops {
                    None => "same sums",
                    Some(_) => "MISMATCH",
                }
            );
        }
        let harness_checks = [
            cases::INT8_LOOP_CHECK,
            cases::TAIL_CHECK,
            cases::SAMPLER_CHECK,
        ]
        .map(usize::from)
        .iter()
        .sum::<usize>();
        if cases::TAIL_CHECK {
            // The assembly tile and every tail of the blocked kernels against the scalar ones.
            let (what, ok) = match buffers.blocked_vs_scalar() {
                Ok(Some(error)) => (Sci(error), error <= cases::TAIL_TOLERANCE),
                Ok(None) => (Sci(0.0), true),
                Err(_) => (Sci(f32::INFINITY), false),
            };
            mismatches += usize::from(!ok);
            let _ = writeln!(
                out,
                "blocked vs scalar kernels on {} small shapes (every tail of the register tile): \
                 max error {what} relative (tolerance {}){}{}",
                cases::TAIL_CASES.len(),
                Sci(cases::TAIL_TOLERANCE),
                if lara_attn::backend::Backend::Blocked.is_available() {
                    ""
                } else {
                    " (no blocked kernels in this build)"
                },
                if ok { "" } else { "  MISMATCH" }
            );
        }
        if cases::SAMPLER_CHECK {
            let sampler = cases::sampler_hash();
            let same = sampler == SAMPLER_HASH;
            mismatches += usize::from(!same);
            let _ = writeln!(
                out,
                "sampler: 256 normals from seed 2024 hash to {sampler:#010x}, the host's \
                 {SAMPLER_HASH:#010x}: {}",
                if same { "same bits" } else { "MISMATCH" }
            );
        }
        let _ = writeln!(out);

        let status = if kernel_errors > 0 {
            device::EXIT_KERNEL_ERROR
        } else if mismatches > 0 {
            device::EXIT_MISMATCH
        } else {
            0
        };
        let _ = writeln!(
            out,
            "{} of {} checks passed (outputs within {} of the host's, int8 outputs and the \
             sampler's the same bits, blocked vs scalar): {}",
            checked + harness_checks - mismatches,
            checked + harness_checks,
            Sci(cases::TOLERANCE),
            if status == 0 { "PASS" } else { "FAIL" }
        );
        device::exit(status)
    }

    /// Arguments of the `expf` sweep.
    const EXP_SWEEP: u32 = 1024;

    /// `Σ f(x)` over `EXP_SWEEP` points evenly spaced in `[-20, 0]`.
    #[inline(never)]
    fn sweep(f: impl Fn(f32) -> f32) -> f32 {
        let step = -20.0 / (EXP_SWEEP - 1) as f32;
        let mut sum = 0.0;
        for i in 0..EXP_SWEEP {
            sum += f(i as f32 * step);
        }
        black_box(sum)
    }

    /// `a / b` with two decimals, in integer arithmetic.
    struct Ratio(u64, u64);

    impl core::fmt::Display for Ratio {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            let hundredths = (self.0 * 100 + self.1 / 2) / self.1.max(1);
            write!(f, "{}.{:02}", hundredths / 100, hundredths % 100)
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    host::main()
}

/// The host build: the same calls and comparisons, and the generator of `expected.rs`.
#[cfg(not(target_os = "none"))]
mod host {
    use crate::cases::{self, Buffers, CASES, Kernel};
    use crate::expected::{EXPECTED, SAMPLER_HASH};
    use lara_attn::backend::{Backend, set_backend};
    use std::fmt::Write as _;
    use std::process::ExitCode;
    use std::time::Instant;

    const EXPECTED_PATH: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/firmware/expected.rs");

    pub fn main() -> ExitCode {
        let mut buffers = Box::new(Buffers::new());
        buffers.set_layer(Box::leak(Box::new(cases::check_layer())));
        if std::env::args().skip(1).any(|a| a == "--generate") {
            return match generate(&mut buffers) {
                Ok(()) => {
                    println!("wrote {EXPECTED_PATH}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        let mut failed = 0;
        // The scalar kernels, the one-lane blocked ones (what Cortex-M runs) and the best here.
        let mut backends = vec![Backend::Scalar, Backend::Blocked, Backend::best()];
        backends.retain(|b| b.is_available());
        backends.dedup();
        for &backend in &backends {
            if let Err(e) = set_backend(Some(backend)) {
                eprintln!("backend {}: {e}", backend.name());
                return ExitCode::FAILURE;
            }
            println!("backend {} (build {}):", backend.name(), cases::BUILD);
            for (case, expected) in CASES.iter().zip(EXPECTED) {
                buffers.prepare(case);
                let start = Instant::now();
                let result = buffers.run(case);
                let time = start.elapsed();
                let error = match result {
                    Ok(()) => cases::max_error(case, buffers.output(case), expected),
                    Err(e) => {
                        println!("  {}: kernel error: {e}", case.kernel.name());
                        f32::INFINITY
                    }
                };
                let ok = cases::passes(case, error);
                failed += usize::from(!ok);
                let rank = if matches!(case.kernel, Kernel::Exact | Kernel::Exact8) {
                    0
                } else {
                    case.rank
                };
                println!(
                    "  {:<6} n {:>4} d {:>3} C/S {:>3}  {:>9.1?}  {:>8} MACs (bench {:>8})  \
                     max|host - expected| {error:.2e}{}",
                    case.kernel.name(),
                    case.shape.queries,
                    case.shape.dim,
                    rank,
                    time,
                    case.macs(),
                    case.bench_macs(),
                    if ok { "" } else { "  MISMATCH" }
                );
                if case.kernel == Kernel::Layer {
                    let rate = |macs: u64| macs as f64 / time.as_secs_f64() / 1e9;
                    println!(
                        "         ({} multiply-adds of the model, {} executed: {:.2} / {:.2} G/s)",
                        cases::LAYER_MACS,
                        cases::LAYER_MACS_EXECUTED,
                        rate(cases::LAYER_MACS),
                        rate(cases::LAYER_MACS_EXECUTED)
                    );
                }
            }
        }
        if cases::TAIL_CHECK {
            let error = buffers.blocked_vs_scalar();
            println!(
                "blocked vs scalar on {} small shapes: {error:?} relative",
                cases::TAIL_CASES.len()
            );
            failed += usize::from(!matches!(error, Ok(Some(e)) if e <= cases::TAIL_TOLERANCE));
        }
        if cases::SAMPLER_CHECK {
            let sampler = cases::sampler_hash();
            println!("sampler hash {sampler:#010x}, expected {SAMPLER_HASH:#010x}");
            failed += usize::from(sampler != SAMPLER_HASH);
        }
        let total = backends.len() * CASES.len()
            + usize::from(cases::SAMPLER_CHECK)
            + usize::from(cases::TAIL_CHECK);
        println!("{} passed, {failed} failed", total - failed);
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// Writes `expected.rs`: the summaries of the scalar kernels' outputs.
    fn generate(buffers: &mut Buffers) -> Result<(), Box<dyn std::error::Error>> {
        set_backend(Some(Backend::Scalar))?;
        let mut text = String::from(
            "//! Expected values of the firmware example, generated on the host by the scalar kernels of\n\
             //! this crate. Do not edit; regenerate (after a change to the kernels or to\n\
             //! `examples/firmware/cases.rs`) with\n\
             //!\n\
             //! ```sh\n\
             //! cargo run --release --example firmware -- --generate\n\
             //! ```\n\
             //!\n\
             //! One entry per `cases::CASES`: the summary of the output (`cases::summary`: per column\n\
             //! means, per row means, 32 sampled elements), printed exactly (shortest round-trip form).\n\
             \n\
             #[rustfmt::skip]\n",
        );
        writeln!(text, "pub const EXPECTED: [&[f32]; {}] = [", CASES.len())?;
        for case in &CASES {
            buffers.prepare(case);
            buffers.run(case)?;
            let values: Vec<f32> = cases::summary(*case, buffers.output(case)).collect();
            writeln!(
                text,
                "    // {} n = {}, d = {}, C/S = {}",
                case.kernel.name(),
                case.shape.queries,
                case.shape.dim,
                case.rank
            )?;
            text.push_str("    &[\n");
            for line in values.chunks(8) {
                text.push_str("       ");
                for v in line {
                    write!(text, " {v:?},")?;
                }
                text.push('\n');
            }
            text.push_str("    ],\n");
        }
        text.push_str("];\n\n/// `cases::sampler_hash()` on the host.\n");
        writeln!(
            text,
            "pub const SAMPLER_HASH: u32 = {:#010x};",
            cases::sampler_hash()
        )?;
        std::fs::write(EXPECTED_PATH, text)?;
        Ok(())
    }
}
