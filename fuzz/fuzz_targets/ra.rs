//! Randomized attention (`ra::attention`) through the kernel registry: every proposal mean
//! (given key indices included), eval, given noise and drawn noise; masks.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lara_attn_fuzz::fuzz_f32_kernels(&["ra", "ra-draw"], data));
