//! An int8 firmware in miniature: the three int8 kernels as a product calls them (exact
//! attention, RFA with positive features, LARA `mis-opt` in eval mode with segment means), with
//! `const` plans and `i8` outputs, on arguments the optimiser cannot see. Built by .ci/run for
//! ARMv6-M at opt-level "s": it must link without a panic path (as `main.rs`) and without any
//! floating-point routine (the kernels compute in integers; the plans are computed by the
//! compiler), and its flash against `empty.rs` is the flash of the three kernels.
#![no_std]
#![no_main]

#[allow(dead_code)] // (the float and f32-slice arguments are for main.rs)
#[path = "../opaque.rs"]
mod opaque;

use lara_attn::int8::{self, Out, Scales};
use lara_attn::{Error, lara};
use opaque::Opaque;

unsafe extern "C" {
    fn a_panic_path_survived_in_lara_attn() -> !;
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: never called if the link succeeds (the symbol does not exist).
    unsafe { a_panic_path_survived_in_lara_attn() }
}

/// A model's quantisation: head dimension, RFA features and scales, fixed at build time.
const DIM: usize = 32;
const FEATURES: usize = 16;
const SCALES: Scales = Scales {
    q: 2.0 / 127.0,
    k: 2.0 / 127.0,
    v: 1.0 / 127.0,
    out: 0.5 / 127.0,
};
const CONFIG: int8::lara::Config =
    int8::lara::Config::eval(lara::Weighting::Optimal { alpha_coeff: 1.0 });

static EXACT: Result<int8::exact::Plan, Error> = int8::exact::Plan::new(DIM, &SCALES);
static RFA: Result<int8::rfa::Plan, Error> =
    int8::rfa::Plan::new(DIM, &SCALES, 4.0 / 127.0, FEATURES);
static LARA: Result<int8::lara::Plan, Error> = int8::lara::Plan::new(DIM, &SCALES, &CONFIG);

#[cortex_m_rt::entry]
fn main() -> ! {
    let x = Opaque;
    let inputs = int8::Qkv {
        shape: x.shape(),
        q: x.bytes(10),
        k: x.bytes(12),
        v: x.bytes(14),
        key_mask: x.optional(16, x.mask(17)),
    };
    let (out, scratch) = (x.bytes_out(20), x.words_out(22));
    let mut ok = 0;
    if let Ok(plan) = &EXACT {
        ok += usize::from(int8::exact::attention(plan, &inputs, Out::I8(out), scratch).is_ok());
    }
    if let Ok(plan) = &RFA {
        let omega = x.bytes(24);
        ok +=
            usize::from(int8::rfa::attention(plan, &inputs, omega, Out::I8(out), scratch).is_ok());
    }
    if let Ok(plan) = &LARA {
        let landmarks = int8::lara::Landmarks::SegmentMeans(x.word(26));
        let sampling = int8::lara::Sampling::Eval;
        let result =
            int8::lara::attention(plan, &inputs, landmarks, sampling, Out::I8(out), scratch);
        ok += usize::from(result.is_ok());
    }
    // SAFETY: not executed.
    unsafe { core::ptr::write_volatile(0x2000_1000 as *mut usize, ok) };
    loop {}
}
