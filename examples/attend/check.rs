//! Option combinations: options that the chosen method would silently ignore, and ones that
//! contradict each other, are refused before any file is read.

use crate::Res;
use crate::args::{Method, Mode, OmegaKind, Options, RaMean};
use lara_attn::lara;

pub fn applicable(o: &Options) -> Res<()> {
    let m = o.method;
    let only = |given: bool, option: &str, methods: &[Method]| -> Res<()> {
        if given && !methods.contains(&m) {
            let names: Vec<&str> = methods.iter().map(|m| m.name()).collect();
            return Err(format!(
                "{option} applies to --method {} only, not {}",
                names.join(" / "),
                m.name()
            ));
        }
        Ok(())
    };
    only(o.mode.is_some(), "--mode", &[Method::Lara, Method::Ra])?;
    only(o.eps.is_some(), "--eps", &[Method::Lara, Method::Ra])?;
    only(
        o.landmarks.is_some() || o.landmarks_q.is_some() || o.landmarks_k.is_some(),
        "--landmarks",
        &[Method::Lara],
    )?;
    only(
        o.mis_given || o.alpha_given,
        "--mis / --alpha",
        &[Method::Lara],
    )?;
    if o.alpha_given && !matches!(o.weighting, lara::Weighting::Optimal { .. }) {
        return Err("--alpha applies to --mis opt only".into());
    }
    only(
        o.ra_mean != RaMean::KeyAverage || o.key_indices.is_some(),
        "--ra-mean / --key-indices",
        &[Method::Ra],
    )?;
    only(
        o.features.is_some() || o.omega.is_some() || o.omega_kind != OmegaKind::Orthogonal,
        "--features / --omega / --omega-kind",
        &[Method::Rfa, Method::RfaTrig],
    )?;
    only(
        o.gates.is_some(),
        "--gates",
        &[Method::Rfa, Method::RfaTrig],
    )?;
    if o.gates.is_some() && !o.causal {
        return Err("--gates needs --causal".into());
    }
    if o.causal && matches!(m, Method::Lara | Method::Ra) {
        return Err(format!(
            "--causal is implemented for exact, rfa and rfa-trig only; lara-attn has no causal {} yet",
            m.name()
        ));
    }
    if o.eps.is_some() && o.mode == Some(Mode::Eval) {
        return Err(
            "--eps is the noise of sampled mode: it cannot be used with --mode eval".into(),
        );
    }
    if o.landmarks_q.is_some() != o.landmarks_k.is_some() {
        return Err("--landmarks-q and --landmarks-k must be given together".into());
    }
    if o.key_indices.is_some() && o.ra_mean != RaMean::Key {
        return Err("--key-indices needs --ra-mean 1".into());
    }
    if m == Method::Ra && o.ra_mean == RaMean::Key && o.key_indices.is_none() {
        // The keys are drawn from the generator, which only sampled mode without --eps uses.
        if !o.sampled() {
            return Err(
                "ra --ra-mean 1 in eval mode needs --key-indices (or use --mode sampled to \
                 draw them)"
                    .into(),
            );
        }
        if o.eps.is_some() {
            return Err(
                "ra --ra-mean 1 with --eps needs --key-indices (the keys are drawn only with \
                 the noise)"
                    .into(),
            );
        }
    }
    if o.mask.is_some() && o.causal {
        return Err(
            "--mask cannot be used with --causal: this tool's causal paths take no key \
             padding mask"
                .into(),
        );
    }
    only(
        o.scaled_noise,
        "--scaled-noise",
        &[Method::Lara, Method::Ra],
    )?;
    if o.scaled_noise && !o.sampled() {
        return Err(
            "--scaled-noise scales the noise of sampled mode: add --mode sampled (or --eps)".into(),
        );
    }
    only(o.proposals.is_some(), "--proposals", &[Method::Lara])?;
    if o.proposals.is_some_and(|p| p != lara::Proposals::Single) && !o.sampled() {
        return Err(
            "--proposals antithetic / two only change sampled mode: add --mode sampled (or --eps)"
                .into(),
        );
    }
    only(o.rfa_log_space, "--rfa-log-space", &[Method::Rfa])?;
    if o.rfa_log_space && o.causal {
        return Err(
            "--rfa-log-space is not available with --causal in this tool (causal rfa keeps the \
             official floor and clamp)"
                .into(),
        );
    }
    if o.draws > 1 && !o.has_randomness() {
        return Err(format!(
            "--draws {} needs a random estimator: --mode sampled without --eps (lara, ra) or a \
             generated omega (rfa, rfa-trig without --omega); this run is deterministic",
            o.draws
        ));
    }
    Ok(())
}
