//! The int8 kernels (exact, LARA, RFA) through their plans, via the registry's `INT8_KERNELS`:
//! scales (valid, zero, NaN, huge), every LARA weighting, proposals, noise and landmark scales,
//! given landmarks, masks, `i8` and `f32` outputs. Checked: nothing written on error, finite
//! `f32` outputs, and the same bits on every backend (integer arithmetic: the backend is never
//! read, and any change that made it matter would show here).
#![no_main]
use lara_attn::Shape;
use lara_attn::backend::{Backend, set_backend};
use lara_attn::int8::{self, Out, Scales};
use lara_attn::lara::Weighting;
use lara_attn_fuzz::kernels::{INT8_KERNELS, Int8Call};
use lara_attn_fuzz::{Bytes, assert_finite, assert_untouched, backends};
use libfuzzer_sys::fuzz_target;

const SENTINEL_I8: i8 = 0x5a;
const SENTINEL_I32: i32 = 0x5a5a_5a5a;
const F32_SENTINEL: f32 = -7777.25;

fn bytes_i8(b: &mut Bytes<'_>, len: usize) -> Vec<i8> {
    (0..len).map(|_| b.byte() as i8).collect()
}

fn scale(b: &mut Bytes<'_>) -> f32 {
    if b.one_in(24) {
        [
            0.0,
            -1.0,
            f32::NAN,
            f32::INFINITY,
            1e-30,
            1e30,
            f32::MIN_POSITIVE / 2.0,
        ][b.below(7)]
    } else {
        [1.0 / 127.0, 0.01, 0.03, 0.1, 0.5][b.below(5)]
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let kernel = &INT8_KERNELS[b.below(INT8_KERNELS.len())];
    let rows = |b: &mut Bytes<'_>| {
        if b.one_in(5) {
            b.range(1, 40)
        } else {
            b.range(1, 9)
        }
    };
    let heads = b.range(1, 2);
    let (nq, nk) = (rows(&mut b), rows(&mut b));
    let mut shape = Shape::cross(nq, nk, b.range(1, 16), b.range(1, 8)).with_heads(heads);
    if b.one_in(32) {
        match b.below(3) {
            0 => shape.heads = 0,
            1 => shape.dim = 0,
            _ => shape.dim = 513,
        }
    }
    let (h, d, dv) = (shape.heads, shape.dim, shape.value_dim);
    let q_len = b.len_or_wrong(h * nq * d, 64);
    let q = bytes_i8(&mut b, q_len);
    let k_len = b.len_or_wrong(h * nk * d, 64);
    let k = bytes_i8(&mut b, k_len);
    let v_len = b.len_or_wrong(h * nk * dv, 64);
    let v = bytes_i8(&mut b, v_len);
    let mask: Option<Vec<bool>> = b.one_in(3).then(|| {
        let all = b.one_in(8);
        let len = b.len_or_wrong(nk, 32);
        (0..len).map(|_| all || b.one_in(3)).collect()
    });
    let scales = Scales {
        q: scale(&mut b),
        k: scale(&mut b),
        v: scale(&mut b),
        out: scale(&mut b),
    };
    let weighting = match b.below(3) {
        0 => Weighting::Optimal {
            alpha_coeff: [1.0, 0.5, -1.0, 8.0, 9.0, f32::NAN][b.below(6)],
        },
        1 => Weighting::BalanceHeuristic,
        _ => Weighting::Biased,
    };
    let (proposals, noise_scale) = b.lara_sampling();
    let sampled = b.one_in(2);
    let given = b.one_in(4);
    let config = int8::lara::Config {
        weighting,
        proposals,
        noise_scale,
        noise: sampled.then(|| scale(&mut b)),
        landmarks: given.then(|| (scale(&mut b), scale(&mut b))),
    };
    let landmarks_requested = if b.one_in(8) {
        b.below(nk + 3)
    } else {
        b.range(1, nk)
    };
    let none = b.one_in(16);
    let count = if given && !none { b.range(1, 6) } else { 0 };
    let q_bar = bytes_i8(&mut b, h * count * d);
    let k_bar_len = b.len_or_wrong(h * count * d, 32);
    let k_bar = bytes_i8(&mut b, k_bar_len);
    let landmarks = if given {
        int8::lara::Landmarks::Given {
            count,
            queries: &q_bar,
            keys: &k_bar,
        }
    } else {
        int8::lara::Landmarks::SegmentMeans(landmarks_requested)
    };
    let effective = if given {
        count
    } else {
        landmarks_requested.min(nq).min(nk)
    };
    let noise_len = b.len_or_wrong(h * proposals.noise_rows(effective) * d, 32);
    let noise = bytes_i8(&mut b, noise_len);
    let features = if b.one_in(16) { 0 } else { b.range(1, 9) };
    let omega_len = h * features * d + usize::from(b.one_in(32));
    let omega = bytes_i8(&mut b, omega_len);
    let omega_scale = scale(&mut b);
    let call = Int8Call {
        x: int8::Qkv {
            shape,
            q: &q,
            k: &k,
            v: &v,
            key_mask: mask.as_deref(),
        },
        scales,
        lara: config,
        landmarks,
        noise: sampled.then_some(noise.as_slice()),
        omega: &omega,
        omega_scale,
    };
    let out_len = b.len_or_wrong(h * nq * dv, 32);
    let needed = (kernel.scratch_len)(&call);
    let scratch_len = if b.one_in(12) {
        needed.saturating_sub(1)
    } else {
        needed
    };
    let f32_out = b.byte() & 1 == 0;

    let run = |backend: Backend| {
        let mut scratch = vec![SENTINEL_I32; scratch_len];
        let (mut out8, mut out32) = (vec![SENTINEL_I8; out_len], vec![F32_SENTINEL; out_len]);
        let out = if f32_out {
            Out::F32(&mut out32)
        } else {
            Out::I8(&mut out8)
        };
        set_backend(Some(backend)).unwrap();
        let result = (kernel.run)(&call, out, &mut scratch);
        set_backend(None).unwrap();
        let context = (kernel.name, backend, result, &call);
        match result {
            Err(_) => {
                assert_untouched("i8 out", &out8, SENTINEL_I8, &context);
                assert_untouched("f32 out", &out32, F32_SENTINEL, &context);
                assert_untouched("scratch", &scratch, SENTINEL_I32, &context);
            }
            Ok(()) if f32_out => assert_finite(kernel.name, &out32, &context),
            Ok(()) => {}
        }
        (
            result,
            out8,
            out32.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        )
    };
    let reference = run(Backend::Scalar);
    for backend in backends().into_iter().filter(|&b| b != Backend::Scalar) {
        assert_eq!(
            run(backend),
            reference,
            "{} on {backend}: other bits than scalar",
            kernel.name
        );
    }
});
