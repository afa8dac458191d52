//! Scratch: the kernels read nothing from their scratch before writing it, and use only the
//! prefix they need. A scratch of exactly the size the active backend needs, or of the
//! registry's `scratch_len` (enough for every backend compiled here), or longer, filled with
//! NaN, infinities or huge values, gives the same bits as a zeroed one.

use crate::backend_env::backend_from_env;
use crate::variants::{VariantInputs, run_all};
use crate::{Inputs, bits, needed_scratch, out_len};

#[test]
fn dirty_and_oversized_scratch_give_identical_output() {
    backend_from_env();
    for (i, &(nq, nk, d, dv)) in [
        (1, 1, 1, 1),
        (7, 7, 5, 3),
        (33, 33, 16, 16),
        (40, 70, 9, 13),
        (65, 3, 17, 4),
    ]
    .iter()
    .enumerate()
    {
        let inputs = Inputs::new(nq, nk, d, dv, 77 + i as u64, 1.0);
        let shape = inputs.shape;
        let n_min = nq.min(nk);
        let vi = VariantInputs::new(shape, &[1, 3, n_min, n_min + 2], 9, 5 + i as u64);
        run_all(&vi.variants(inputs.qkv()), |kernel, variant, clean| {
            let call = &variant.call;
            let mut lens = vec![needed_scratch(kernel, call), (kernel.scratch_len)(call)];
            lens.dedup();
            for len in lens {
                for (fill, extra) in [
                    (f32::NAN, 0),
                    (f32::NAN, 37),
                    (f32::INFINITY, 1),
                    (-3.0e38, 0),
                ] {
                    let mut out = vec![fill; out_len(shape)];
                    let mut scratch = vec![fill; len + extra];
                    (kernel.run)(call, &mut out, &mut scratch).unwrap();
                    assert_eq!(
                        bits(&out),
                        bits(clean),
                        "{} {} {shape:?}: scratch of {len} + {extra} filled with {fill}",
                        kernel.name,
                        variant.label
                    );
                }
            }
        });
    }
}
