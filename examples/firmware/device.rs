//! Bare-metal support of the firmware example, written out so the example needs no crate beyond
//! `cortex-m-rt`: semihosting console and exit status, an instruction counter (SysTick under
//! QEMU `-icount`, extended to 64 bits), stack painting, and the fault and panic exits.

use core::arch::asm;
use core::fmt::{self, Write};
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use cortex_m_rt::{ExceptionFrame, exception};

/// Exit status of a run whose outputs differ from the host's.
pub const EXIT_MISMATCH: u32 = 1;
/// Exit status of a run where a kernel returned an error.
pub const EXIT_KERNEL_ERROR: u32 = 2;
/// Exit status after a HardFault.
pub const EXIT_HARD_FAULT: u32 = 3;
/// Exit status after any other unexpected exception or interrupt.
pub const EXIT_EXCEPTION: u32 = 4;
/// Exit status after a panic (as a panicking Rust program on a host).
pub const EXIT_PANIC: u32 = 101;

// ---------------------------------------------------------------------------------------------
// Semihosting (ARM semihosting v2, as QEMU implements it with `-semihosting-config enable=on`).

/// One semihosting call: operation `op`, parameter `arg` (usually a pointer to a parameter block).
#[inline(always)]
unsafe fn semihosting(op: u32, arg: usize) -> usize {
    let r: usize;
    // SAFETY (of the caller): `arg` is what the operation expects.
    unsafe { asm!("bkpt #0xab", inout("r0") op as usize => r, in("r1") arg, options(nostack)) };
    r
}

/// Ends the emulation with `code` as QEMU's exit status (SYS_EXIT_EXTENDED).
pub fn exit(code: u32) -> ! {
    const ADP_STOPPED_APPLICATION_EXIT: u32 = 0x20026;
    let block = [ADP_STOPPED_APPLICATION_EXIT, code];
    // SAFETY: SYS_EXIT_EXTENDED takes a pointer to two words.
    unsafe { semihosting(0x20, block.as_ptr() as usize) };
    // Not reached under QEMU; on a board without a debugger, stop here.
    loop {
        // SAFETY: `wfi` only waits for an interrupt.
        unsafe { asm!("wfi", options(nomem, nostack, preserves_flags)) };
    }
}

/// The host's standard output, through semihosting (`:tt` opened for writing).
pub struct Console {
    handle: usize,
}

impl Console {
    pub fn open() -> Console {
        const MODE_W: usize = 4;
        let name = b":tt\0";
        let block = [name.as_ptr() as usize, MODE_W, name.len() - 1];
        // SAFETY: SYS_OPEN takes [name, mode, name length].
        let handle = unsafe { semihosting(0x01, block.as_ptr() as usize) };
        Console { handle }
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let block = [self.handle, s.as_ptr() as usize, s.len()];
        // SAFETY: SYS_WRITE takes [handle, buffer, length]; it returns the bytes not written.
        match unsafe { semihosting(0x05, block.as_ptr() as usize) } {
            0 => Ok(()),
            _ => Err(fmt::Error),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Instruction counter: SysTick on the CPU clock. Under QEMU with `-icount shift=N` every
// instruction advances virtual time by exactly 2^N ns, so SysTick ticks are proportional to
// instructions; `calibrate` measures the ratio with a loop of known length.

const SYST_CSR: *mut u32 = 0xE000_E010 as *mut u32;
const SYST_RVR: *mut u32 = 0xE000_E014 as *mut u32;
const SYST_CVR: *mut u32 = 0xE000_E018 as *mut u32;
const SYST_ENABLE_CPU_CLOCK: u32 = 0b101;
const SYST_TICKINT: u32 = 0b010;
const RELOAD: u32 = 0x00FF_FFFF;

/// SysTick wraps (every 2^24 ticks), counted by the SysTick exception.
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // No read-modify-write atomics on ARMv6-M; only this handler writes WRAPS.
    WRAPS.store(WRAPS.load(Relaxed).wrapping_add(1), Relaxed);
}

/// Starts SysTick as a free-running 64-bit tick counter.
pub fn start_counter() {
    // SAFETY: SysTick registers of every Cortex-M; nothing else uses SysTick.
    unsafe {
        write_volatile(SYST_CSR, 0);
        write_volatile(SYST_RVR, RELOAD);
        write_volatile(SYST_CVR, 0);
        write_volatile(SYST_CSR, SYST_ENABLE_CPU_CLOCK | SYST_TICKINT);
    }
}

/// Stops or restarts the wrap interrupt (stack measurements run without it, so no exception
/// frame lands on the painted stack; the counter keeps running).
fn wrap_interrupt(enabled: bool) {
    let csr = SYST_ENABLE_CPU_CLOCK | if enabled { SYST_TICKINT } else { 0 };
    // SAFETY: as in `start_counter`.
    unsafe { write_volatile(SYST_CSR, csr) };
}

/// Ticks since `start_counter`.
#[inline(always)]
pub fn now() -> u64 {
    loop {
        let before = WRAPS.load(Relaxed);
        // SAFETY: reading SysTick's current value.
        let value = unsafe { read_volatile(SYST_CVR) };
        if before == WRAPS.load(Relaxed) {
            return (u64::from(before) << 24) + u64::from(RELOAD - value);
        }
    }
}

/// Converts tick counts to instruction counts.
#[derive(Clone, Copy)]
pub struct Counter {
    /// Ticks of the calibration loop.
    calibration_ticks: u64,
    /// Ticks of an empty measurement (two back-to-back `now()`).
    overhead_ticks: u64,
}

/// Iterations of the calibration loop (two instructions each: `subs`, `bne`).
const CALIBRATION_LOOPS: u32 = 1_000_000;
/// Instructions of the calibration loop.
pub const CALIBRATION_INSTRUCTIONS: u64 = 2 * CALIBRATION_LOOPS as u64;

#[inline(never)]
fn spin(loops: u32) {
    // SAFETY: a register-only countdown loop.
    unsafe {
        asm!("2:", "subs {0}, #1", "bne 2b", inout(reg) loops => _, options(nomem, nostack));
    }
}

impl Counter {
    /// Measures the tick rate per instruction with a loop of known length: the ticks of
    /// `2·CALIBRATION_LOOPS` iterations minus those of `CALIBRATION_LOOPS`, so the call and the
    /// counter reads cancel out.
    pub fn calibrate() -> Counter {
        let overhead_ticks = (0..4)
            .map(|_| {
                let t0 = now();
                let t1 = now();
                t1 - t0
            })
            .min()
            .unwrap_or(0);
        let ticks = |loops| {
            let t0 = now();
            spin(loops);
            now() - t0
        };
        let single = ticks(CALIBRATION_LOOPS);
        let double = ticks(2 * CALIBRATION_LOOPS);
        Counter {
            calibration_ticks: double.saturating_sub(single).max(1),
            overhead_ticks,
        }
    }

    pub fn calibration_ticks(&self) -> u64 {
        self.calibration_ticks
    }

    /// Instructions executed by `f` (rounded; the resolution is 2^shift / tick period).
    pub fn instructions<R>(&self, f: impl FnOnce() -> R) -> (u64, R) {
        let t0 = now();
        let r = f();
        let t1 = now();
        let ticks = (t1 - t0).saturating_sub(self.overhead_ticks);
        let insns = (ticks * CALIBRATION_INSTRUCTIONS + self.calibration_ticks / 2)
            / self.calibration_ticks;
        (insns, r)
    }
}

// ---------------------------------------------------------------------------------------------
// Stack painting.

unsafe extern "C" {
    /// Lowest address the stack may grow to (cortex-m-rt's link.x: the end of .bss/.uninit).
    static _stack_end: u32;
}

const PAINT: u32 = 0xCCCC_CCCC;
/// How far below the current stack pointer to paint (far more than any kernel call needs).
const PAINT_SPAN: usize = 16 * 1024;

/// Peak stack use, in bytes, of `f` and everything it calls: paints the free stack, calls `f`
/// (not inlined, so its frame is below this one), then finds the lowest overwritten word. The
/// SysTick wrap interrupt is off meanwhile, so only `f` touches the stack.
#[inline(never)]
pub fn peak_stack<R>(f: impl FnOnce() -> R) -> (usize, R) {
    wrap_interrupt(false);
    let sp: usize;
    // SAFETY: reads the stack pointer.
    unsafe { asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    let limit = (&raw const _stack_end) as usize;
    let bottom = limit.max(sp.saturating_sub(PAINT_SPAN)) & !3;
    // Paint [bottom, sp) in this frame: nothing below `sp` is in use (no interrupt can come).
    let mut p = bottom;
    while p < sp {
        // SAFETY: free stack between the end of .bss and the stack pointer.
        unsafe { write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
    let r = call_once(f);
    let mut low = bottom;
    // SAFETY: as above (reads).
    while low < sp && unsafe { read_volatile(low as *const u32) } == PAINT {
        low += 4;
    }
    wrap_interrupt(true);
    (sp - low, r)
}

/// Calls `f` from its own frame (so LTO cannot merge it into the measuring frame).
#[inline(never)]
fn call_once<R>(f: impl FnOnce() -> R) -> R {
    f()
}

// ---------------------------------------------------------------------------------------------
// Faults and panics end the run with a non-zero status instead of hanging.

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    // SAFETY: System Control Block fault status registers.
    let (cfsr, hfsr) = unsafe {
        (
            read_volatile(0xE000_ED28 as *const u32),
            read_volatile(0xE000_ED2C as *const u32),
        )
    };
    let _ = writeln!(
        Console::open(),
        "HardFault at pc {:#010x} (lr {:#010x}, CFSR {cfsr:#010x}, HFSR {hfsr:#010x})",
        frame.pc(),
        frame.lr()
    );
    exit(EXIT_HARD_FAULT)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    let _ = writeln!(Console::open(), "unexpected exception or interrupt {irqn}");
    exit(EXIT_EXCEPTION)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let _ = writeln!(Console::open(), "panic: {info}");
    exit(EXIT_PANIC)
}

// ---------------------------------------------------------------------------------------------
// Identification and printing.

/// The core, from the CPUID register (and, on a Cortex-M4, MVFR0: `Cortex-M4F` with a
/// single-precision FPU), and the CPUID value.
pub fn core_name() -> (&'static str, u32) {
    // SAFETY: the CPUID register of every Cortex-M.
    let cpuid = unsafe { read_volatile(0xE000_ED00 as *const u32) };
    let name = match (cpuid >> 4) & 0xFFF {
        0xC20 => "Cortex-M0",
        0xC60 => "Cortex-M0+",
        0xC23 => "Cortex-M3",
        0xC24 if single_precision_fpu() => "Cortex-M4F",
        0xC24 => "Cortex-M4",
        0xC27 => "Cortex-M7",
        0xD21 => "Cortex-M33",
        0xD22 => "Cortex-M55",
        0xD23 => "Cortex-M85",
        _ => "unknown core",
    };
    (name, cpuid)
}

/// Whether MVFR0 reports single-precision floating point (read on a Cortex-M4 only, where the
/// register reads as zero without the FPU).
fn single_precision_fpu() -> bool {
    // SAFETY: MVFR0, a read-only identification register of the Cortex-M4.
    let mvfr0 = unsafe { read_volatile(0xE000_EF40 as *const u32) };
    (mvfr0 >> 4) & 0xF != 0
}

/// Helium (MVE) on this core, from MVFR1 (read on the Cortex-M55 and M85 only, the cores of
/// this example that may have it): `"float"` (integer and floating-point MVE), `"integer"` or
/// `"none"`. (Whether the code uses it is the build's choice: `-C target-cpu=cortex-m55`.)
pub fn mve(cpuid: u32) -> &'static str {
    if !matches!((cpuid >> 4) & 0xFFF, 0xD22 | 0xD23) {
        return "none";
    }
    // SAFETY: MVFR1, a read-only identification register of every Armv8.1-M core.
    let mvfr1 = unsafe { read_volatile(0xE000_EF44 as *const u32) };
    match (mvfr1 >> 8) & 0xF {
        0 => "none",
        1 => "integer",
        _ => "float",
    }
}

/// A float in scientific notation with three significant digits, without `core`'s float
/// formatting (about 8 KiB of flash).
pub struct Sci(pub f32);

impl fmt::Display for Sci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if x.is_nan() {
            return f.write_str("NaN");
        }
        if x.is_infinite() {
            return f.write_str(if x < 0.0 { "-inf" } else { "inf" });
        }
        if x == 0.0 {
            return f.write_str("0");
        }
        let sign = if x < 0.0 { "-" } else { "" };
        let (mut m, mut e) = (x.abs(), 0i32);
        while m >= 10.0 {
            m /= 10.0;
            e += 1;
        }
        while m < 1.0 {
            m *= 10.0;
            e -= 1;
        }
        let mut digits = (m * 100.0 + 0.5) as u32;
        if digits >= 1000 {
            digits /= 10;
            e += 1;
        }
        write!(f, "{sign}{}.{:02}e{e}", digits / 100, digits % 100)
    }
}
