//! Dispatch to the estimators: one call over every head (`Shape::with_heads`, stacked inputs),
//! or one per head when the key mask has one row per head.

use crate::Res;
use crate::args::{Method, OmegaKind, Options, RaMean};
use crate::files::zeros;
use crate::problem::{Heads, Problem};
use lara_attn::random::{self, DefaultRng, NoiseScale};
use lara_attn::{Error, Qkv, Sampling, causal, exact, lara, ra, rfa};

/// The estimate of `method`, averaged over `--draws` draws, `[h, n_q, d_v]`.
pub fn estimate(o: &Options, method: Method, p: &Problem) -> Res<Vec<f32>> {
    averaged(o, p.out_len()?, |rng, out| run_once(o, method, p, rng, out))
}

/// `run` into an output of `out_len`, once or averaged over `--draws` runs, every random
/// number drawn from one generator seeded with `--seed`.
pub fn averaged(
    o: &Options,
    out_len: usize,
    mut run: impl FnMut(&mut DefaultRng, &mut [f32]) -> Res<()>,
) -> Res<Vec<f32>> {
    let mut rng = random::default_rng(o.seed);
    let mut out = zeros(out_len)?;
    if o.draws == 1 {
        run(&mut rng, &mut out)?;
        return Ok(out);
    }
    let mut sum = vec![0.0f64; out_len];
    for _ in 0..o.draws {
        run(&mut rng, &mut out)?;
        for (s, &x) in sum.iter_mut().zip(&out) {
            *s += f64::from(x);
        }
    }
    for (x, s) in out.iter_mut().zip(&sum) {
        *x = (s / o.draws as f64) as f32;
    }
    Ok(out)
}

fn run_once(
    o: &Options,
    method: Method,
    p: &Problem,
    rng: &mut DefaultRng,
    out: &mut [f32],
) -> Res<()> {
    match method {
        Method::Exact if o.causal => causal_exact(p, out),
        Method::Exact => exact(p, out),
        Method::Lara => run_lara(o, p, rng, out),
        Method::Ra => run_ra(o, p, rng, out),
        Method::Rfa | Method::RfaTrig => run_rfa(o, method, p, rng, out),
    }
}

fn kernel_error(method: &str) -> impl Fn(Error) -> String + '_ {
    move |e| format!("{method}: {e}")
}

fn noise_scale(o: &Options) -> NoiseScale {
    if o.scaled_noise {
        NoiseScale::Paper
    } else {
        NoiseScale::Official
    }
}

/// The sampling of LARA and RA: eval mode, the given `--eps` (these heads' part), or draws.
fn sampling<'a>(
    o: &Options,
    p: &'a Problem,
    heads: Heads,
    rng: &'a mut DefaultRng,
) -> Sampling<'a> {
    if !o.sampled() {
        return Sampling::Eval;
    }
    match &p.eps {
        Some(eps) => Sampling::Noise(heads.of(eps)),
        None => Sampling::Draw(rng),
    }
}

/// Exact softmax attention (with the key mask, if any).
pub fn exact(p: &Problem, out: &mut [f32]) -> Res<()> {
    let mut scratch = zeros(exact::scratch_len(p.shape))?;
    p.with_masked_inputs(out, |x, _, out| {
        exact::attention(x, out, &mut scratch).map_err(kernel_error("exact"))
    })
}

fn run_lara(o: &Options, p: &Problem, rng: &mut DefaultRng, out: &mut [f32]) -> Res<()> {
    let proposals = o.proposals.unwrap_or_default();
    let mut scratch = zeros(lara::scratch_len(p.shape, p.lara_count, proposals))?;
    p.with_masked_inputs(out, |x, heads, out| {
        let landmarks = match &p.landmarks {
            Some(given) => lara::Landmarks::Given {
                count: given.count,
                queries: heads.of(&given.queries),
                keys: heads.of(&given.keys),
            },
            None => lara::Landmarks::SegmentMeans(o.landmarks.unwrap_or(16)),
        };
        let params = lara::Params::new(landmarks, o.weighting)
            .with_proposals(proposals)
            .with_noise_scale(noise_scale(o));
        let sampling = sampling(o, p, heads, rng);
        lara::attention(x, &params, sampling, out, &mut scratch).map_err(kernel_error("lara"))
    })
}

fn run_ra(o: &Options, p: &Problem, rng: &mut DefaultRng, out: &mut [f32]) -> Res<()> {
    let mut scratch = zeros(ra::scratch_len(p.shape))?;
    p.with_masked_inputs(out, |x, heads, out| {
        let mean = match (o.ra_mean, &p.key_indices) {
            (RaMean::KeyAverage, _) => ra::Mean::KeyAverage,
            (RaMean::AttentionWeighted, _) => ra::Mean::AttentionWeighted,
            (RaMean::Key, Some(indices)) => ra::Mean::GivenKeys(heads.of(indices)),
            // Drawn with the noise (the option checks require sampled mode without --eps).
            (RaMean::Key, None) => ra::Mean::SampledKey,
        };
        let params = ra::Params::new(mean).with_noise_scale(noise_scale(o));
        let sampling = sampling(o, p, heads, rng);
        ra::attention(x, &params, sampling, out, &mut scratch).map_err(kernel_error("ra"))
    })
}

fn run_rfa(
    o: &Options,
    method: Method,
    p: &Problem,
    rng: &mut DefaultRng,
    out: &mut [f32],
) -> Res<()> {
    let (shape, s) = (p.shape, p.features);
    let map = match method {
        Method::RfaTrig => rfa::FeatureMap::Trigonometric,
        _ if o.rfa_log_space => rfa::FeatureMap::PositiveLogSpace,
        _ => rfa::FeatureMap::Positive,
    };
    let drawn;
    let omega = match &p.omega {
        Some(omega) => &omega[..],
        None => {
            drawn = draw_omega(o, p, rng)?;
            &drawn[..]
        }
    };
    let name = if o.causal {
        format!("causal {}", method.name())
    } else {
        method.name().to_string()
    };
    let err = kernel_error(&name);
    if o.causal {
        // (--causal refuses --mask: the inputs have no key mask)
        let x = Qkv {
            shape,
            q: &p.q,
            k: &p.k,
            v: &p.v,
            key_mask: None,
        };
        let mut scratch = zeros(causal::scratch_len(shape, map, s))?;
        let params = rfa::Params { map, omega };
        return causal::rfa(&x, &params, p.gates.as_deref(), out, &mut scratch).map_err(err);
    }
    let mut scratch = zeros(rfa::scratch_len(shape, map, s))?;
    p.with_masked_inputs(out, |x, heads, out| {
        let params = rfa::Params {
            map,
            omega: heads.of(omega),
        };
        rfa::attention(x, &params, out, &mut scratch).map_err(&err)
    })
}

/// A projection `omega [h, S, d]` drawn as `--omega-kind` says, one head after the other.
pub fn draw_omega(o: &Options, p: &Problem, rng: &mut DefaultRng) -> Res<Vec<f32>> {
    let (shape, s) = (p.shape, p.features);
    let per_head = s.checked_mul(shape.dim).ok_or("--features too large")?;
    let mut all = zeros(per_head.saturating_mul(shape.heads))?;
    for head in all.chunks_exact_mut(per_head) {
        match o.omega_kind {
            OmegaKind::Iid => random::gaussian_omega(rng, s, shape.dim, head),
            OmegaKind::Orthogonal => random::orthogonal_omega(rng, s, shape.dim, head),
        }
        .map_err(kernel_error("omega"))?;
    }
    Ok(all)
}

/// Causal exact attention, one head at a time through a `KvCache` of capacity `n`.
pub fn causal_exact(p: &Problem, out: &mut [f32]) -> Res<()> {
    let s = p.shape;
    let err = kernel_error("causal exact");
    let mut buffer = zeros(causal::KvCache::buffer_len(s.keys, s.dim, s.value_dim))?;
    let heads =
        p.q.chunks_exact(s.queries * s.dim)
            .zip(p.k.chunks_exact(s.keys * s.dim))
            .zip(p.v.chunks_exact(s.keys * s.value_dim))
            .zip(out.chunks_exact_mut(s.queries * s.value_dim));
    for (((q, k), v), out) in heads {
        let mut cache =
            causal::KvCache::new(s.dim, s.value_dim, s.keys, &mut buffer).map_err(&err)?;
        for (((q_row, k_row), v_row), out_row) in q
            .chunks_exact(s.dim)
            .zip(k.chunks_exact(s.dim))
            .zip(v.chunks_exact(s.value_dim))
            .zip(out.chunks_exact_mut(s.value_dim))
        {
            cache.push(k_row, v_row).map_err(&err)?;
            cache.attend(q_row, out_row).map_err(&err)?;
        }
    }
    Ok(())
}
