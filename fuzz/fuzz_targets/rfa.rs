//! Random-feature attention (`rfa::attention`) through the kernel registry: every feature map.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lara_attn_fuzz::fuzz_f32_kernels(&["rfa", "rfa-trig", "rfa-log-space"], data)
});
