//! Causal attention: the batch kernel `causal::rfa` (every map, gates) through the kernel
//! registry, and the streaming states `causal::RfaState` and `causal::KvCache` driven by a
//! sequence of pushes, gated pushes, attends and resets with now and then a bad argument.
//!
//! A stream is run twice, once with its bad calls and once without them: every `attend` that
//! succeeded and the final buffer must have the same bits, so a refused call left no trace.
#![no_main]
use lara_attn::causal::{KvCache, RfaState};
use lara_attn::rfa::{FeatureMap, Params};
use lara_attn_fuzz::{
    Bytes, FINITE_LIMIT, SENTINEL, UNIT, assert_finite, assert_untouched, fuzz_f32_kernels, within,
};
use libfuzzer_sys::fuzz_target;

/// One step of a stream.
#[derive(Debug, Clone)]
enum Op {
    Push(Vec<f32>, Vec<f32>),
    PushGated(Vec<f32>, Vec<f32>, f32),
    Attend(Vec<f32>, usize),
    Reset,
}

/// A stream's steps; `bad[i]` is whether step `i` has an argument the call must refuse.
fn decode_ops(b: &mut Bytes<'_>, dim: usize, value_dim: usize, magnitude: f32) -> Vec<Op> {
    let steps = b.range(1, 24);
    (0..steps)
        .map(|_| {
            let vec = |b: &mut Bytes<'_>, len: usize| {
                let len = b.len_or_wrong(len, 24);
                let mut x = b.floats(len, magnitude);
                b.poison(&mut x, 24);
                x
            };
            match b.below(8) {
                0..=2 => Op::Push(vec(b, dim), vec(b, value_dim)),
                3 | 4 => {
                    let gate = if b.one_in(12) {
                        [1.5, -0.5, f32::NAN, f32::INFINITY][b.below(4)]
                    } else {
                        f32::from(b.byte()) / 255.0
                    };
                    Op::PushGated(vec(b, dim), vec(b, value_dim), gate)
                }
                5 | 6 => Op::Attend(vec(b, dim), b.len_or_wrong(value_dim, 24)),
                _ => Op::Reset,
            }
        })
        .collect()
}

fn finite_inputs(op: &Op, limit: f32) -> bool {
    match op {
        Op::Push(k, v) | Op::PushGated(k, v, _) => within(k, limit) && within(v, limit),
        Op::Attend(q, _) => within(q, limit),
        Op::Reset => true,
    }
}

/// Runs `ops` (skipping those in `skip`) on a fresh RFA state; returns each step's result, the
/// outputs of the successful attends and the buffer.
fn run_rfa(
    params: &Params<'_>,
    (dim, value_dim): (usize, usize),
    buffer: &mut [f32],
    ops: &[Op],
    skip: &[bool],
) -> Option<(Vec<bool>, Vec<Vec<f32>>)> {
    let mut state = RfaState::new(params, dim, value_dim, buffer).ok()?;
    let (mut ok, mut outputs) = (Vec::new(), Vec::new());
    let mut all_finite = true;
    for (op, &skip) in ops.iter().zip(skip) {
        if skip {
            ok.push(false);
            continue;
        }
        all_finite &= finite_inputs(op, FINITE_LIMIT);
        let result = match op {
            Op::Push(k, v) => state.push(k, v),
            Op::PushGated(k, v, g) => state.push_gated(k, v, *g),
            Op::Attend(q, out_len) => {
                let mut out = vec![SENTINEL; *out_len];
                let result = state.attend(q, &mut out);
                match result {
                    Err(e) => assert_untouched("attend out", &out, SENTINEL, &(e, op)),
                    Ok(()) => {
                        if all_finite {
                            assert_finite("RfaState::attend", &out, &(op, &state));
                        }
                        outputs.push(out);
                    }
                }
                result
            }
            Op::Reset => {
                state.reset();
                all_finite = true;
                Ok(())
            }
        };
        ok.push(result.is_ok());
    }
    Some((ok, outputs))
}

fn rfa_stream(b: &mut Bytes<'_>) {
    let map = [
        FeatureMap::Positive,
        FeatureMap::Trigonometric,
        FeatureMap::PositiveLogSpace,
    ][b.below(3)];
    let (dim, value_dim) = (b.range(1, 8), b.range(1, 5));
    let features = if b.one_in(16) { 0 } else { b.range(1, 8) };
    let omega_len = b.len_or_wrong(features * dim, 24);
    let mut omega = b.floats(omega_len, UNIT);
    b.poison(&mut omega, 24);
    let params = Params { map, omega: &omega };
    let needed = RfaState::buffer_len(map, value_dim, features);
    let buffer_len = if b.one_in(8) {
        needed.saturating_sub(1)
    } else {
        needed + b.below(3)
    };
    let magnitude = b.magnitude();
    let ops = decode_ops(b, dim, value_dim, magnitude);

    let mut buffer = vec![SENTINEL; buffer_len];
    let no_skip = vec![false; ops.len()];
    let Some((ok, outputs)) = run_rfa(&params, (dim, value_dim), &mut buffer, &ops, &no_skip)
    else {
        assert_untouched(
            "RfaState::new buffer",
            &buffer,
            SENTINEL,
            &(map, dim, value_dim, features),
        );
        return;
    };
    // The same stream without the refused calls: the same outputs and buffer, bit for bit.
    let skip: Vec<bool> = ok.iter().map(|&ok| !ok).collect();
    let mut replay = vec![SENTINEL; buffer_len];
    let (_, replay_outputs) =
        run_rfa(&params, (dim, value_dim), &mut replay, &ops, &skip).expect("the same state");
    let bits = |x: &[Vec<f32>]| x.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&outputs),
        bits(&replay_outputs),
        "a refused call changed the state: {ops:?}"
    );
    let same = buffer
        .iter()
        .zip(&replay)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(same, "a refused call changed the buffer: {ops:?}");
}

fn run_cache(
    (dim, value_dim, capacity): (usize, usize, usize),
    buffer: &mut [f32],
    ops: &[Op],
    skip: &[bool],
) -> Option<(Vec<bool>, Vec<Vec<f32>>)> {
    let mut cache = KvCache::new(dim, value_dim, capacity, buffer).ok()?;
    let (mut ok, mut outputs) = (Vec::new(), Vec::new());
    let mut window: Vec<bool> = Vec::new();
    for (op, &skip) in ops.iter().zip(skip) {
        if skip {
            ok.push(false);
            continue;
        }
        let result = match op {
            Op::Push(k, v) | Op::PushGated(k, v, _) => {
                let result = cache.push(k, v);
                if result.is_ok() {
                    window.push(finite_inputs(op, FINITE_LIMIT));
                }
                result
            }
            Op::Attend(q, out_len) => {
                let mut out = vec![SENTINEL; *out_len];
                let result = cache.attend(q, &mut out);
                match result {
                    Err(e) => assert_untouched("attend out", &out, SENTINEL, &(e, op)),
                    Ok(()) => {
                        let recent = window.iter().rev().take(capacity).all(|&f| f);
                        if recent
                            && within(
                                match op {
                                    Op::Attend(q, _) => q,
                                    _ => &[],
                                },
                                FINITE_LIMIT,
                            )
                        {
                            assert_finite("KvCache::attend", &out, &(op, &cache));
                        }
                        outputs.push(out);
                    }
                }
                result
            }
            Op::Reset => {
                cache.reset();
                window.clear();
                Ok(())
            }
        };
        ok.push(result.is_ok());
    }
    Some((ok, outputs))
}

fn cache_stream(b: &mut Bytes<'_>) {
    let (dim, value_dim) = (b.range(1, 8), b.range(1, 5));
    let capacity = if b.one_in(16) { 0 } else { b.range(1, 6) };
    let needed = KvCache::buffer_len(capacity, dim, value_dim);
    let buffer_len = if b.one_in(8) {
        needed.saturating_sub(1)
    } else {
        needed + b.below(3)
    };
    let magnitude = b.magnitude();
    let ops = decode_ops(b, dim, value_dim, magnitude);
    let shape = (dim, value_dim, capacity);
    let mut buffer = vec![SENTINEL; buffer_len];
    let no_skip = vec![false; ops.len()];
    let Some((ok, outputs)) = run_cache(shape, &mut buffer, &ops, &no_skip) else {
        assert_untouched("KvCache::new buffer", &buffer, SENTINEL, &shape);
        return;
    };
    let skip: Vec<bool> = ok.iter().map(|&ok| !ok).collect();
    let mut replay = vec![SENTINEL; buffer_len];
    let (_, replay_outputs) = run_cache(shape, &mut replay, &ops, &skip).expect("the same cache");
    let bits = |x: &[Vec<f32>]| x.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&outputs),
        bits(&replay_outputs),
        "a refused call changed the cache: {ops:?}"
    );
    let same = buffer
        .iter()
        .zip(&replay)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(same, "a refused call changed the buffer: {ops:?}");
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    match b.below(3) {
        0 => fuzz_f32_kernels(
            &["causal-rfa", "causal-rfa-trig", "causal-rfa-log-space"],
            data.get(1..).unwrap_or(&[]),
        ),
        1 => rfa_stream(&mut b),
        _ => cache_stream(&mut b),
    }
});
