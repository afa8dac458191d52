//! The vector `exp` of every backend the host can run, against `f64` `exp` rounded to `f32`.
//!
//! `exp_sweep_every_f32` (ignored by default; CI runs it in release) checks every `f32` in
//! `[-87.33, 0]`, the range the kernels use; the quick test checks a sample of it and the
//! special values.

use lara_attn::EXP_MAX_ULP;
use lara_attn::backend::{Backend, exp_in_place, set_backend};
use std::sync::Mutex;

static SELECTION: Mutex<()> = Mutex::new(());

/// The smallest argument whose result is normal: ln(2^-126).
const UNDERFLOW: f32 = -87.336_54;

fn backends() -> Vec<Backend> {
    match std::env::var("LARA_ATTN_BACKEND") {
        Ok(name) => {
            let b = Backend::from_name(&name).unwrap_or_else(|| panic!("unknown backend {name:?}"));
            assert!(
                b.is_available(),
                "LARA_ATTN_BACKEND={name}: not available on this host"
            );
            vec![b]
        }
        Err(_) => Backend::ALL
            .into_iter()
            .filter(|b| b.is_available())
            .collect(),
    }
}

/// Distance in units in the last place between two finite non-negative floats.
fn ulps(a: f32, b: f32) -> u32 {
    a.to_bits().abs_diff(b.to_bits())
}

/// The worst ulp error over the arguments whose bit patterns are `bits` (negative floats).
fn worst_ulp(backend: Backend, bits: impl Iterator<Item = u32>) -> (u32, f32) {
    set_backend(Some(backend)).unwrap();
    let mut worst = (0, 0.0);
    let mut batch = Vec::with_capacity(1 << 16);
    let mut args = Vec::with_capacity(1 << 16);
    let flush = |args: &mut Vec<f32>, batch: &mut Vec<f32>, worst: &mut (u32, f32)| {
        batch.clear();
        batch.extend_from_slice(args);
        exp_in_place(batch);
        for (&x, &y) in args.iter().zip(batch.iter()) {
            let reference = (x as f64).exp() as f32;
            let e = ulps(y, reference);
            if e > worst.0 {
                *worst = (e, x);
            }
        }
        args.clear();
    };
    for b in bits {
        args.push(f32::from_bits(b));
        if args.len() == args.capacity() {
            flush(&mut args, &mut batch, &mut worst);
        }
    }
    flush(&mut args, &mut batch, &mut worst);
    set_backend(None).unwrap();
    worst
}

/// Bit patterns of the negative floats from -0 down to UNDERFLOW, every `step`-th.
fn range(step: usize) -> impl Iterator<Item = u32> {
    ((-0.0f32).to_bits()..=UNDERFLOW.to_bits()).step_by(step)
}

#[test]
fn exp_sample_and_special_values() {
    let _guard = SELECTION.lock().unwrap();
    for backend in backends() {
        let (worst, at) = worst_ulp(backend, range(4099));
        assert!(
            worst <= EXP_MAX_ULP,
            "{}: {worst} ulp at {at:e}",
            backend.name()
        );
        set_backend(Some(backend)).unwrap();
        // Underflow gives exactly 0, overflow +inf, NaN stays NaN; lengths 1..=40 cover every tail.
        for len in 1..=40 {
            let specials = [
                f32::NEG_INFINITY,
                -1e30,
                -104.0,
                -87.5,
                0.0,
                -0.0,
                1.0,
                89.0,
                f32::INFINITY,
                f32::NAN,
            ];
            let mut x: Vec<f32> = (0..len).map(|i| specials[i % specials.len()]).collect();
            let input = x.clone();
            exp_in_place(&mut x);
            for (&a, &y) in input.iter().zip(&x) {
                let ok = match a {
                    a if a.is_nan() => y.is_nan(),
                    a if a < UNDERFLOW => y == 0.0,
                    a if a > 88.4 => y == f32::INFINITY,
                    a => ulps(y, (a as f64).exp() as f32) <= EXP_MAX_ULP,
                };
                assert!(ok, "{}: exp({a}) = {y}", backend.name());
            }
        }
        set_backend(None).unwrap();
    }
}

#[test]
#[ignore = "exhaustive (1.1e9 arguments per backend); run with --release -- --ignored"]
fn exp_sweep_every_f32() {
    let _guard = SELECTION.lock().unwrap();
    for backend in backends() {
        let (worst, at) = worst_ulp(backend, range(1));
        println!(
            "{}: max error {worst} ulp (at {at:e}) over every f32 in [{UNDERFLOW}, 0]",
            backend.name()
        );
        assert!(
            worst <= EXP_MAX_ULP,
            "{}: {worst} ulp at {at:e}",
            backend.name()
        );
    }
}
