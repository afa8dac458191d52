//! Exact softmax attention (`exact::attention`) through the kernel registry.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lara_attn_fuzz::fuzz_f32_kernels(&["exact"], data));
