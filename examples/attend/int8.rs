//! `--int8`: exact attention, LARA and RFA (positive features) through the integer kernels of
//! [`lara_attn::int8`].
//!
//! Every `f32` tensor of the run (`q`, `k`, `v`; the noise of `--eps`; the landmarks of
//! `--landmarks-q` / `--landmarks-k`; RFA's `omega`, from `--omega` or drawn from `--seed` as
//! the `f32` tool draws it) is quantised per tensor (one scale for every head) with the crate's
//! helpers: symmetric, scale `max|x| / 127` ([`int8::scale_for`]), [`int8::quantize`]. The
//! scales are printed on stderr, `int8 <method>: scales (max|x|/127 per tensor) q=.. k=.. v=..`.
//!
//! The output is the kernel's [`Out::F32`] output; with `--int8-out` its [`Out::I8`] output,
//! requantised with the scale `max|out| / 127` of that `f32` output (a first call), printed on
//! stderr and written dequantised ([`int8::dequantize`], `scale · i8` as `<f4`: the `i8` values
//! are `round(out / scale)`, exactly).
//!
//! `--compare exact` compares with `f32` exact attention on the `f32` inputs (as without
//! `--int8`); `--compare f32` with the same estimator and options in `f32`, on the `f32` inputs
//! (the cost of going int8) and on the dequantised inputs (the kernel's fixed-point error
//! alone).

use crate::Res;
use crate::args::{Compare, Method, Options};
use crate::compare::{print_error, print_relative_error};
use crate::files::{KeyMask, try_alloc, zeros};
use crate::output;
use crate::problem::{Heads, Problem};
use crate::run;
use lara_attn::Error;
use lara_attn::int8::{self, Out, Qkv, Scales};
use lara_attn::random::{self, NoiseScale};
use std::path::Path;

/// A tensor quantised per tensor: `x ≈ scale · data`.
pub struct Tensor8 {
    pub data: Vec<i8>,
    pub scale: f32,
}

impl Tensor8 {
    /// `x` quantised with `scale_for(x)`; `what` names it in the message for a NaN or an
    /// infinity (which [`int8::quantize`] would turn into 0 or ±127).
    fn new(what: &str, x: &[f32]) -> Res<Self> {
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "--int8: {what}: element {i} is {}; only finite values can be quantised",
                x[i]
            ));
        }
        let scale = int8::scale_for(x);
        let mut data = try_alloc(x.len())?;
        data.resize(x.len(), 0);
        int8::quantize(x, scale, &mut data);
        Ok(Tensor8 { data, scale })
    }

    /// `scale · data`.
    fn dequantised(&self) -> Res<Vec<f32>> {
        let mut out = zeros(self.data.len())?;
        int8::dequantize(&self.data, self.scale, &mut out);
        Ok(out)
    }
}

/// Every input of the run, quantised.
struct Quantised {
    q: Tensor8,
    k: Tensor8,
    v: Tensor8,
    eps: Option<Tensor8>,
    /// Given LARA landmarks `(q̄, k̄)`.
    landmarks: Option<(Tensor8, Tensor8)>,
    omega: Option<Tensor8>,
}

impl Quantised {
    fn new(o: &Options, p: &Problem) -> Res<Self> {
        let file = |option: &str, path: Option<&Path>| match path {
            Some(path) => format!("{option}{}", path.display()),
            None => option.trim_end().to_string(),
        };
        let input = |i: usize| o.inputs.get(i).map(|p| p.as_path());
        let landmarks = match &p.landmarks {
            Some(given) => Some((
                Tensor8::new(
                    &file("--landmarks-q ", o.landmarks_q.as_deref()),
                    &given.queries,
                )?,
                Tensor8::new(
                    &file("--landmarks-k ", o.landmarks_k.as_deref()),
                    &given.keys,
                )?,
            )),
            None => None,
        };
        let optional = |option: &str, path: Option<&Path>, x: &Option<Vec<f32>>| {
            x.as_ref()
                .map(|x| Tensor8::new(&file(option, path), x))
                .transpose()
        };
        Ok(Quantised {
            q: Tensor8::new(&file("", input(0)), &p.q)?,
            k: Tensor8::new(&file("", input(1)), &p.k)?,
            v: Tensor8::new(&file("", input(2)), &p.v)?,
            eps: optional("--eps ", o.eps.as_deref(), &p.eps)?,
            landmarks,
            // a drawn omega is finite
            omega: optional("--omega ", o.omega.as_deref(), &p.omega)?,
        })
    }

    /// The scales of the call, with `out` for the `i8` output.
    fn scales(&self, out: f32) -> Scales {
        Scales {
            q: self.q.scale,
            k: self.k.scale,
            v: self.v.scale,
            out,
        }
    }

    /// `key=scale` for every quantised tensor.
    fn describe(&self) -> String {
        let mut text = format!("q={} k={} v={}", self.q.scale, self.k.scale, self.v.scale);
        if let Some(eps) = &self.eps {
            text += &format!(" eps={}", eps.scale);
        }
        if let Some((q_bar, k_bar)) = &self.landmarks {
            text += &format!(" landmarks-q={} landmarks-k={}", q_bar.scale, k_bar.scale);
        }
        if let Some(omega) = &self.omega {
            text += &format!(" omega={}", omega.scale);
        }
        text
    }

    /// The problem with every quantised tensor replaced by its dequantised copy.
    fn dequantised(&self, p: &Problem) -> Res<Problem> {
        let mut d = p.clone();
        d.q = self.q.dequantised()?;
        d.k = self.k.dequantised()?;
        d.v = self.v.dequantised()?;
        if let Some(eps) = &self.eps {
            d.eps = Some(eps.dequantised()?);
        }
        if let (Some(given), Some((q_bar, k_bar))) = (&mut d.landmarks, &self.landmarks) {
            given.queries = q_bar.dequantised()?;
            given.keys = k_bar.dequantised()?;
        }
        if let Some(omega) = &self.omega {
            d.omega = Some(omega.dequantised()?);
        }
        Ok(d)
    }
}

/// The element type of an int8 kernel's output.
trait Output: Sized {
    fn out(slice: &mut [Self]) -> Out<'_>;
}

impl Output for f32 {
    fn out(slice: &mut [f32]) -> Out<'_> {
        Out::F32(slice)
    }
}

impl Output for i8 {
    fn out(slice: &mut [i8]) -> Out<'_> {
        Out::I8(slice)
    }
}

/// Quantises, runs the int8 kernel of `method`, compares and writes: nothing is written unless
/// everything before succeeded.
pub fn execute(o: &Options, method: Method, mut problem: Problem) -> Res<()> {
    let name = format!("int8 {}", method.name());
    if method == Method::Rfa && problem.omega.is_none() {
        // The omega the f32 tool would draw (the first draw of --seed), then quantised.
        let mut rng = random::default_rng(o.seed);
        problem.omega = Some(run::draw_omega(o, &problem, &mut rng)?);
    }
    let x = Quantised::new(o, &problem)?;
    let len = problem.out_len()?;
    let mut out = zeros(len)?;
    // The output scale of an f32 output is not used; the plans check it all the same.
    attend(o, method, &problem, &x, x.scales(x.v.scale), &mut out)
        .map_err(|e| format!("{name}: {e}"))?;
    let mut report = format!("{name}: scales (max|x|/127 per tensor) {}", x.describe());
    if o.int8_out {
        let scale = int8::scale_for(&out);
        let mut out8 = try_alloc(len)?;
        out8.resize(len, 0i8);
        attend(o, method, &problem, &x, x.scales(scale), &mut out8)
            .map_err(|e| format!("{name} (--int8-out): {e}"))?;
        int8::dequantize(&out8, scale, &mut out);
        report += &format!("; i8 output: out={scale} (max|y|/127 of the kernel's f32 output y)");
    }
    eprintln!("{report}");
    for reference in &o.compare {
        match reference {
            Compare::Exact => print_error(o, &problem, &out)?,
            Compare::F32 => {
                let f32_name = format!("f32 {}", method.name());
                let reference = run::estimate(o, method, &problem)?;
                print_relative_error(&f32_name, &out, &reference);
                let dequantised = x.dequantised(&problem)?;
                let reference = run::estimate(o, method, &dequantised)?;
                print_relative_error(
                    &format!("{f32_name} on the dequantised inputs"),
                    &out,
                    &reference,
                );
            }
            // refused with --method (check.rs)
            Compare::SoftmaxLayer => {}
        }
    }
    if let Some(path) = &o.output {
        output::write(&name, &problem, path, &out)?;
    }
    Ok(())
}

/// The int8 kernel of `method` on the quantised inputs into `out` (`[h, n_q, d_v]`).
fn attend<T: Output>(
    o: &Options,
    method: Method,
    p: &Problem,
    x: &Quantised,
    scales: Scales,
    out: &mut [T],
) -> Res<()> {
    let (shape, dim) = (p.shape, p.shape.dim);
    let kernel = |e: Error| e.to_string();
    match method {
        Method::Exact => {
            let plan = int8::exact::Plan::new(dim, &scales).map_err(kernel)?;
            let mut scratch = scratch(int8::exact::scratch_len(shape))?;
            each_call(p, x, out, |inputs, _, out| {
                int8::exact::attention(&plan, inputs, T::out(out), &mut scratch)
            })
        }
        Method::Lara => {
            let proposals = o.proposals.unwrap_or_default();
            let config = int8::lara::Config {
                weighting: o.weighting,
                proposals,
                noise_scale: if o.scaled_noise {
                    NoiseScale::Paper
                } else {
                    NoiseScale::Official
                },
                noise: x.eps.as_ref().map(|eps| eps.scale),
                landmarks: x.landmarks.as_ref().map(|(q, k)| (q.scale, k.scale)),
            };
            let plan = int8::lara::Plan::new(dim, &scales, &config).map_err(kernel)?;
            let mut scratch = scratch(int8::lara::scratch_len(shape, p.lara_count, proposals))?;
            each_call(p, x, out, |inputs, heads, out| {
                let landmarks = match (&x.landmarks, &p.landmarks) {
                    (Some((q_bar, k_bar)), Some(given)) => int8::lara::Landmarks::Given {
                        count: given.count,
                        queries: heads.of(&q_bar.data),
                        keys: heads.of(&k_bar.data),
                    },
                    _ => int8::lara::Landmarks::SegmentMeans(o.landmarks.unwrap_or(16)),
                };
                // Sampled mode without --eps is refused (check.rs).
                let sampling = match &x.eps {
                    Some(eps) => int8::lara::Sampling::Noise(heads.of(&eps.data)),
                    None => int8::lara::Sampling::Eval,
                };
                int8::lara::attention(
                    &plan,
                    inputs,
                    landmarks,
                    sampling,
                    T::out(out),
                    &mut scratch,
                )
            })
        }
        Method::Rfa => {
            // (execute draws omega when --omega is not given)
            let omega = x.omega.as_ref().ok_or("no omega")?;
            let plan =
                int8::rfa::Plan::new(dim, &scales, omega.scale, p.features).map_err(kernel)?;
            let mut scratch = scratch(int8::rfa::scratch_len(shape, p.features))?;
            each_call(p, x, out, |inputs, heads, out| {
                int8::rfa::attention(
                    &plan,
                    inputs,
                    heads.of(&omega.data),
                    T::out(out),
                    &mut scratch,
                )
            })
        }
        // refused with --int8 (check.rs)
        Method::Ra | Method::RfaTrig => Err(format!("no int8 {}", method.name())),
    }
}

/// `len` zeroed `i32`s of kernel scratch.
fn scratch(len: usize) -> Res<Vec<i32>> {
    let mut v = try_alloc(len)?;
    v.resize(len, 0);
    Ok(v)
}

/// Calls `f` with the quantised inputs and the key mask: once for every head, or head by head
/// (with the shape of one head) when the mask has one row per head, as
/// [`Problem::with_masked_inputs`] does for the `f32` estimators. Every head keeps the scales
/// of the whole tensors.
fn each_call<T>(
    p: &Problem,
    x: &Quantised,
    out: &mut [T],
    mut f: impl FnMut(&Qkv<'_>, Heads, &mut [T]) -> Result<(), Error>,
) -> Res<()> {
    let (shape, q, k, v) = (p.shape, &x.q.data[..], &x.k.data[..], &x.v.data[..]);
    let Some(KeyMask::PerHead(mask)) = &p.mask else {
        let key_mask = match &p.mask {
            Some(KeyMask::Shared(mask)) => Some(&mask[..]),
            _ => None,
        };
        let inputs = Qkv {
            shape,
            q,
            k,
            v,
            key_mask,
        };
        return f(&inputs, Heads::All, out).map_err(|e| e.to_string());
    };
    let of = shape.heads;
    let head_out = out.len() / of;
    for (index, out) in out.chunks_exact_mut(head_out).enumerate() {
        let heads = Heads::One { index, of };
        let inputs = Qkv {
            shape: shape.with_heads(1),
            q: heads.of(q),
            k: heads.of(k),
            v: heads.of(v),
            key_mask: Some(heads.of(mask)),
        };
        f(&inputs, heads, out).map_err(|e| e.to_string())?;
    }
    Ok(())
}
