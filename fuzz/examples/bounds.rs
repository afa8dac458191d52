//! Measures, over random decodings, the largest distance between each SIMD backend and the
//! scalar kernels of every f32 registry kernel in the comparison's range (`|x| ≤ 4`), and, for
//! `mis-opt`, that distance against the condition of its clamp: the figures behind the bounds
//! docs/reliability.md states. `cargo run --release --example bounds -- [decodings]` in `fuzz/`.
use lara_attn::backend::Backend;
use lara_attn::lara::Weighting;
use lara_attn_fuzz::kernels::KERNELS;
use lara_attn_fuzz::{
    Bytes, F32Args, MISOPT_CONDITION_LIMIT, UNIT, backends, misopt_condition, relative_distance,
    run_f32, trig_excess,
};

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for kernel in KERNELS {
        let (mut worst, mut worst_ill, mut compared, mut ill) = (0.0f32, 0.0f32, 0usize, 0usize);
        let mut worst_condition_ok = 0.0f64;
        for _ in 0..count {
            let bytes: Vec<u8> = (0..600).map(|_| next() as u8).collect();
            let mut b = Bytes::new(&bytes);
            // force the comparison's range: decode, then keep only unit-magnitude finite calls
            let args = F32Args::decode(kernel.name, &mut b);
            if args.magnitude > UNIT || !args.inputs_within(4.0) {
                continue;
            }
            let needed = (kernel.scratch_len)(&args.call());
            let (reference, scalar) = run_f32(Backend::Scalar, kernel.name, &args, needed);
            if reference.is_err() {
                continue;
            }
            let condition = if kernel.name == "lara" {
                misopt_condition(&args)
            } else {
                0.0
            };
            let drawn_opt =
                kernel.name == "lara-draw" && matches!(args.weighting, Weighting::Optimal { .. });
            for backend in backends().into_iter().filter(|b| b.is_simd()) {
                let (_, out) = run_f32(backend, kernel.name, &args, needed);
                let d = if kernel.name == "rfa-trig" {
                    // the factor beyond TRIG_BOUND · (scale + condition), as a distance
                    trig_excess(&args, &out, &scalar, 1e-12)
                        .map_or(0.0, |(_, x)| (x * 1e-12) as f32)
                } else {
                    relative_distance(&out, &scalar)
                };
                if drawn_opt || condition > MISOPT_CONDITION_LIMIT {
                    ill += 1;
                    worst_ill = worst_ill.max(d);
                } else {
                    compared += 1;
                    if d > worst {
                        worst = d;
                        worst_condition_ok = condition;
                    }
                }
            }
        }
        println!(
            "{:22} compared {compared:7}  worst {worst:.2e} (mis-opt condition {worst_condition_ok:.1})  ill-conditioned/drawn mis-opt {ill:6} worst {worst_ill:.2e}",
            kernel.name
        );
    }
}
