//! LARA (`lara::attention`) through the kernel registry: eval, given noise and drawn noise;
//! segment-mean and given landmarks; every weighting, proposal layout and noise scale; masks.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lara_attn_fuzz::fuzz_f32_kernels(&["lara", "lara-draw"], data));
