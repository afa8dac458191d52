//! Option combinations: options that the chosen method (or `--layer`) would silently
//! ignore, and ones that contradict each other, are refused before any file is read.

use crate::Res;
use crate::args::{Compare, Method, Mode, OmegaKind, Options, RaMean, Task};
use lara_attn::lara;

pub fn applicable(o: &Options) -> Res<()> {
    if o.int8_out && !o.int8 {
        return Err("--int8-out chooses the output of --int8: add --int8".into());
    }
    if o.compare.contains(&Compare::F32) && !o.int8 {
        return Err(
            "--compare f32 compares an --int8 run with the same estimator in f32: add --int8 \
             (or use --compare exact)"
                .into(),
        );
    }
    match o.task {
        Task::Estimator(method) => estimator(o, method)?,
        Task::Layer(_) => layer(o)?,
    }
    if let Task::Estimator(method) = o.task
        && o.int8
    {
        int8(o, method)?;
    }
    if o.eps.is_some() && o.mode == Some(Mode::Eval) {
        return Err(
            "--eps is the noise of sampled mode: it cannot be used with --mode eval".into(),
        );
    }
    if o.draws > 1 && !o.has_randomness() {
        let random = match o.task {
            Task::Estimator(_) => {
                "--mode sampled without --eps (lara, ra) or a generated omega (rfa, rfa-trig \
                 without --omega)"
            }
            Task::Layer(_) => "--mode sampled without --eps",
        };
        return Err(format!(
            "--draws {} needs a random estimator: {random}; this run is deterministic",
            o.draws
        ));
    }
    Ok(())
}

/// `--layer`: the configuration's kwargs set everything the estimator options would, so those
/// are refused rather than ignored.
fn layer(o: &Options) -> Res<()> {
    let refused = [
        (
            o.int8,
            "--int8",
            "the int8 kernels run on q.npy k.npy v.npy (--method exact, lara or rfa)",
        ),
        (
            o.landmarks.is_some(),
            "--landmarks",
            "set num_landmarks in the kwargs",
        ),
        (
            o.landmarks_q.is_some() || o.landmarks_k.is_some(),
            "--landmarks-q / --landmarks-k",
            "LinearRA makes its landmarks with its proposal_gen",
        ),
        (
            o.mis_given || o.alpha_given,
            "--mis / --alpha",
            "set mis_type / alpha_coeff in the kwargs",
        ),
        (
            o.proposals.is_some(),
            "--proposals",
            "set use_antithetics / use_multisample in the kwargs",
        ),
        (
            o.ra_mean != RaMean::KeyAverage || o.key_indices.is_some(),
            "--ra-mean / --key-indices",
            "set num_samples of RandomizedAttention in the kwargs",
        ),
        (
            o.features.is_some() || o.omega.is_some() || o.omega_kind != OmegaKind::Orthogonal,
            "--features / --omega / --omega-kind",
            "set approx_attn_dim in the kwargs; the projection is the eval_proj weight",
        ),
        (
            o.causal || o.gates.is_some(),
            "--causal / --gates",
            "the official modules attend to every token",
        ),
        (
            o.scaled_noise,
            "--scaled-noise",
            "a layer's sampled mode uses the official noise",
        ),
        (
            o.rfa_log_space,
            "--rfa-log-space",
            "KernelizedAttention computes the official features",
        ),
    ];
    if let Some((_, option, instead)) = refused.iter().find(|(given, ..)| *given) {
        return Err(format!("{option} cannot be used with --layer: {instead}"));
    }
    if o.compare.contains(&Compare::Exact) {
        return Err(
            "--compare exact compares an estimator on q, k, v; with --layer use --compare \
             softmax-layer"
                .into(),
        );
    }
    Ok(())
}

/// `--method`: the options of other methods, and those that contradict each other.
fn estimator(o: &Options, m: Method) -> Res<()> {
    if o.compare.contains(&Compare::SoftmaxLayer) {
        return Err(
            "--compare softmax-layer compares a whole layer (--layer) with MultiheadAttention; \
             for an estimator use --compare exact"
                .into(),
        );
    }
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
    Ok(())
}

/// `--int8`: the methods and options the int8 kernels ([`lara_attn::int8`]) have; the rest is
/// refused rather than run in `f32` or ignored.
fn int8(o: &Options, m: Method) -> Res<()> {
    if !matches!(m, Method::Exact | Method::Lara | Method::Rfa) {
        return Err(format!(
            "--int8 is implemented for --method exact, lara and rfa (positive features); \
             lara-attn has no int8 {}",
            m.name()
        ));
    }
    if o.causal {
        return Err(
            "--causal cannot be used with --int8: the int8 kernels attend to every key (a key \
             padding mask, --mask, is supported)"
                .into(),
        );
    }
    if o.rfa_log_space {
        return Err(
            "--rfa-log-space cannot be used with --int8: the int8 rfa computes the official \
             positive features (1e-4 floor, 1e-2 clamp)"
                .into(),
        );
    }
    if o.draws > 1 {
        return Err(format!(
            "--draws {} cannot be used with --int8: an int8 run is one call of the int8 kernel \
             (rfa without --omega draws one omega from --seed)",
            o.draws
        ));
    }
    if m == Method::Lara && o.sampled() && o.eps.is_none() {
        return Err(
            "--int8 lara in sampled mode needs --eps: the int8 kernel takes given noise \
             (quantised per tensor like q, k, v) and draws none"
                .into(),
        );
    }
    Ok(())
}
