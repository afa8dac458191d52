//! A plain float64 reference of the estimators, written from `FORMULAS.md` (not from the
//! crate): full matrices, no streaming, no stabiliser tricks beyond the ones the formulas
//! prescribe. Inputs are the crate's `f32` slices, outputs `Vec<f64>` (row-major).
#![allow(dead_code)]
#![allow(clippy::needless_range_loop, clippy::manual_is_multiple_of)]

/// The dimensions of one head: `q [nq, d]`, `k [nk, d]`, `v [nk, dv]`, `out [nq, dv]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub nq: usize,
    pub nk: usize,
    pub d: usize,
    pub dv: usize,
}

impl Dims {
    pub fn new(nq: usize, nk: usize, d: usize, dv: usize) -> Self {
        Dims { nq, nk, d, dv }
    }

    /// `s = d^(-1/2)`.
    pub fn s(&self) -> f64 {
        1.0 / (self.d as f64).sqrt()
    }

    fn check(&self, q: &[f32], k: &[f32], v: &[f32]) {
        assert_eq!(q.len(), self.nq * self.d, "q length");
        assert_eq!(k.len(), self.nk * self.d, "k length");
        assert_eq!(v.len(), self.nk * self.dv, "v length");
    }
}

/// A row-major `f64` matrix.
#[derive(Clone, Debug)]
pub struct Mat {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Mat {
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Mat {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    pub fn from_f32(x: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(x.len(), rows * cols);
        Mat {
            rows,
            cols,
            data: x.iter().map(|&a| a as f64).collect(),
        }
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f64] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    pub fn set(&mut self, i: usize, j: usize, x: f64) {
        self.data[i * self.cols + j] = x;
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn sq_norm(a: &[f64]) -> f64 {
    dot(a, a)
}

/// `log Σ exp(x)`.
pub fn lse(x: &[f64]) -> f64 {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + x.iter().map(|&a| (a - m).exp()).sum::<f64>().ln()
}

/// `softmax(x)`.
pub fn softmax(x: &[f64]) -> Vec<f64> {
    let l = lse(x);
    x.iter().map(|&a| (a - l).exp()).collect()
}

/// `Σ_j w_j · rows_j` for a weight vector over the rows of `m`.
fn weighted_rows(w: &[f64], m: &Mat) -> Vec<f64> {
    assert_eq!(w.len(), m.rows);
    let mut acc = vec![0.0; m.cols];
    for (j, &wj) in w.iter().enumerate() {
        for (a, &x) in acc.iter_mut().zip(m.row(j)) {
            *a += wj * x;
        }
    }
    acc
}

/// `out_i = Σ_j softmax_j(logits[i, j]) · v_j` for a full logit matrix `[nq, nk]`.
fn softmax_rows_times(logits: &Mat, v: &Mat) -> Mat {
    let mut out = Mat::zeros(logits.rows, v.cols);
    for i in 0..logits.rows {
        let p = softmax(logits.row(i));
        out.row_mut(i).copy_from_slice(&weighted_rows(&p, v));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// (a) exact softmax attention
// ---------------------------------------------------------------------------------------------

/// `S[i, j] = s · q_i·k_j`, `[nq, nk]`.
pub fn scaled_scores(dims: Dims, q: &Mat, k: &Mat) -> Mat {
    let s = dims.s();
    let mut scores = Mat::zeros(dims.nq, dims.nk);
    for i in 0..dims.nq {
        for j in 0..dims.nk {
            scores.set(i, j, s * dot(q.row(i), k.row(j)));
        }
    }
    scores
}

/// `out_i = Σ_j softmax_j(s · q_i·k_j) v_j`.
pub fn softmax_attention(dims: Dims, q: &[f32], k: &[f32], v: &[f32]) -> Vec<f64> {
    softmax_attention_masked(dims, q, k, v, None)
}

/// [`softmax_attention`] with a key padding mask: masked keys get the logit `−∞`.
pub fn softmax_attention_masked(
    dims: Dims,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[bool]>,
) -> Vec<f64> {
    dims.check(q, k, v);
    let (q, k, v) = (
        Mat::from_f32(q, dims.nq, dims.d),
        Mat::from_f32(k, dims.nk, dims.d),
        Mat::from_f32(v, dims.nk, dims.dv),
    );
    let mut scores = scaled_scores(dims, &q, &k);
    if let Some(mask) = mask {
        for i in 0..dims.nq {
            for (j, &masked) in mask.iter().enumerate() {
                if masked {
                    scores.set(i, j, f64::NEG_INFINITY);
                }
            }
        }
    }
    softmax_rows_times(&scores, &v).data
}

// ---------------------------------------------------------------------------------------------
// (b)/(c) LARA
// ---------------------------------------------------------------------------------------------

/// The `mis_type` of LARA.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mis {
    /// `mis-opt` with `alpha_coeff`.
    Opt(f64),
    /// `mis-bh`.
    Bh,
    /// `mis-biased`.
    Biased,
}

/// The row ranges `[start, end)` of the `c` segments of `n` rows (official uneven split:
/// the first `num_k` segments are the shorter ones). Requires `1 <= c <= n`.
pub fn segment_ranges(n: usize, c: usize) -> Vec<(usize, usize)> {
    assert!(c >= 1 && c <= n, "segments {c} rows {n}");
    if n % c == 0 {
        let g = n / c;
        return (0..c).map(|i| (i * g, (i + 1) * g)).collect();
    }
    let g = n / c;
    let num_k = (g + 1) * c - n;
    let mut ranges = Vec::with_capacity(c);
    for i in 0..c {
        if i < num_k {
            ranges.push((i * g, (i + 1) * g));
        } else {
            let start = num_k * g + (i - num_k) * (g + 1);
            ranges.push((start, start + g + 1));
        }
    }
    assert_eq!(ranges.last().unwrap().1, n);
    ranges
}

/// Segment means of `x [rows, dim]` into `[c, dim]`.
pub fn segment_means(x: &Mat, c: usize) -> Mat {
    let mut out = Mat::zeros(c, x.cols);
    for (seg, &(start, end)) in segment_ranges(x.rows, c).iter().enumerate() {
        let len = (end - start) as f64;
        for r in start..end {
            for (o, &a) in out.row_mut(seg).iter_mut().zip(x.row(r)) {
                *o += a;
            }
        }
        for o in out.row_mut(seg) {
            *o /= len;
        }
    }
    out
}

/// Effective landmark count `C' = min(C, nq, nk)`.
pub fn effective_landmarks(dims: Dims, c: usize) -> usize {
    c.min(dims.nq).min(dims.nk)
}

/// The proposal layout of LARA in sampled mode (the official `use_antithetics` /
/// `use_multisample`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Samples {
    /// `W = mu + f·eps`.
    #[default]
    Single,
    /// `W = [mu + f·eps; mu − f·eps]`.
    Antithetic,
    /// `W = [mu; mu] + f·eps`, `eps [2C', d]`.
    Two,
}

/// The options of LARA beyond the landmarks and `mis_type`.
#[derive(Clone, Copy, Debug)]
pub struct LaraOptions<'a> {
    pub samples: Samples,
    /// The factor `f` on the noise (1 official, `d^1/4` paper).
    pub noise_factor: f64,
    /// Key padding mask `[nk]`, `true` = padding.
    pub key_mask: Option<&'a [bool]>,
    /// `mis-opt`'s query landmarks for `T` `[C', d]` where they differ from `q̄` (the int8
    /// kernel's `q̄` on the queries' grid); `None`: `q̄`.
    pub t_landmarks: Option<&'a [f32]>,
}

impl Default for LaraOptions<'_> {
    fn default() -> Self {
        LaraOptions {
            samples: Samples::Single,
            noise_factor: 1.0,
            key_mask: None,
            t_landmarks: None,
        }
    }
}

/// LARA with segment-mean landmarks (`C` requested, `C' = min(C, nq, nk)`); `eps [C', d]`
/// for the sampled mode, `None` for eval.
pub fn lara(
    dims: Dims,
    c: usize,
    mis: Mis,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    eps: Option<&[f32]>,
) -> Vec<f64> {
    lara_with(dims, c, mis, (q, k, v), eps, LaraOptions::default())
}

/// [`lara`] with options. As the official code, masked keys are zeroed before the landmarks are
/// pooled and get `−∞` log-features.
pub fn lara_with(
    dims: Dims,
    c: usize,
    mis: Mis,
    (q, k, v): (&[f32], &[f32], &[f32]),
    eps: Option<&[f32]>,
    options: LaraOptions<'_>,
) -> Vec<f64> {
    dims.check(q, k, v);
    let cp = effective_landmarks(dims, c);
    let qm = Mat::from_f32(q, dims.nq, dims.d);
    let mut km = Mat::from_f32(k, dims.nk, dims.d);
    if let Some(mask) = options.key_mask {
        for (j, &masked) in mask.iter().enumerate() {
            if masked {
                km.row_mut(j).fill(0.0);
            }
        }
    }
    let q_bar = segment_means(&qm, cp);
    let k_bar = segment_means(&km, cp);
    lara_core(dims, (&q_bar, &k_bar), mis, (q, k, v), eps, options)
}

/// LARA with caller-given landmarks `q̄ [count, d]`, `k̄ [count, d]`.
pub fn lara_given(
    dims: Dims,
    landmarks: (usize, &[f32], &[f32]),
    mis: Mis,
    inputs: (&[f32], &[f32], &[f32]),
    eps: Option<&[f32]>,
) -> Vec<f64> {
    lara_given_with(dims, landmarks, mis, inputs, eps, LaraOptions::default())
}

/// [`lara_given`] with options (the landmarks are used as given, whatever the mask).
pub fn lara_given_with(
    dims: Dims,
    (count, q_bar, k_bar): (usize, &[f32], &[f32]),
    mis: Mis,
    (q, k, v): (&[f32], &[f32], &[f32]),
    eps: Option<&[f32]>,
    options: LaraOptions<'_>,
) -> Vec<f64> {
    dims.check(q, k, v);
    let q_bar = Mat::from_f32(q_bar, count, dims.d);
    let k_bar = Mat::from_f32(k_bar, count, dims.d);
    lara_core(dims, (&q_bar, &k_bar), mis, (q, k, v), eps, options)
}

/// `ℓ(x; w) = s · (w·x − |x|²/2)`.
fn prm_log(s: f64, x: &[f64], w: &[f64]) -> f64 {
    s * (dot(w, x) - sq_norm(x) / 2.0)
}

/// `[x; x]`: the official `x.repeat(1, 1, 2, 1)`.
fn repeat_twice(x: &Mat) -> Mat {
    let mut out = Mat::zeros(2 * x.rows, x.cols);
    out.data[..x.data.len()].copy_from_slice(&x.data);
    out.data[x.data.len()..].copy_from_slice(&x.data);
    out
}

fn lara_core(
    dims: Dims,
    (q_bar, k_bar): (&Mat, &Mat),
    mis: Mis,
    (q, k, v): (&[f32], &[f32], &[f32]),
    eps: Option<&[f32]>,
    options: LaraOptions<'_>,
) -> Vec<f64> {
    let s = dims.s();
    let cp = q_bar.rows;
    assert_eq!(k_bar.rows, cp);
    let q = Mat::from_f32(q, dims.nq, dims.d);
    let k = Mat::from_f32(k, dims.nk, dims.d);
    let v = Mat::from_f32(v, dims.nk, dims.dv);

    // mu_c = q̄_c + k̄_c
    let mut mu = Mat::zeros(cp, dims.d);
    for (m, (a, b)) in mu
        .data
        .iter_mut()
        .zip(q_bar.data.iter().zip(k_bar.data.iter()))
    {
        *m = a + b;
    }
    // weights: mu (eval), mu + f·eps, [mu + f·eps; mu − f·eps] or [mu; mu] + f·eps
    let f = options.noise_factor;
    let doubled = eps.is_some() && options.samples != Samples::Single;
    let w = match eps {
        None => mu.clone(),
        Some(eps) => {
            let noise: Vec<f64> = eps.iter().map(|&e| f * e as f64).collect();
            match options.samples {
                Samples::Single | Samples::Two => {
                    let mut w = if doubled {
                        repeat_twice(&mu)
                    } else {
                        mu.clone()
                    };
                    assert_eq!(noise.len(), w.data.len(), "eps length");
                    for (x, e) in w.data.iter_mut().zip(&noise) {
                        *x += e;
                    }
                    w
                }
                Samples::Antithetic => {
                    assert_eq!(noise.len(), mu.data.len(), "eps length");
                    let mut w = repeat_twice(&mu);
                    let half = mu.data.len();
                    for (i, e) in noise.iter().enumerate() {
                        w.data[i] += e;
                        w.data[half + i] -= e;
                    }
                    w
                }
            }
        }
    };
    let samples = w.rows;
    // The official code repeats mu (for mis-opt) and T when the samples are doubled.
    let mu_opt = if doubled {
        repeat_twice(&mu)
    } else {
        mu.clone()
    };

    // LQ [S, nq], LK [S, nk] (−∞ for masked keys)
    let mut lq = Mat::zeros(samples, dims.nq);
    let mut lk = Mat::zeros(samples, dims.nk);
    for c in 0..samples {
        for i in 0..dims.nq {
            lq.set(c, i, prm_log(s, q.row(i), w.row(c)));
        }
        for j in 0..dims.nk {
            let masked = options.key_mask.is_some_and(|m| m[j]);
            let l = if masked {
                f64::NEG_INFINITY
            } else {
                prm_log(s, k.row(j), w.row(c))
            };
            lk.set(c, j, l);
        }
    }
    // kv_c = Σ_j softmax_j(LK[c, j]) v_j;  lseK_c = lse_j LK[c, j]
    let mut kv = Mat::zeros(samples, dims.dv);
    let mut lse_k = vec![0.0; samples];
    for c in 0..samples {
        let p = softmax(lk.row(c));
        kv.row_mut(c).copy_from_slice(&weighted_rows(&p, &v));
        lse_k[c] = lse(lk.row(c));
    }
    // LM[c, c'] = ℓ(mu_c'; W_c): [S, S] over the repeated mu for mis-opt, [S, C'] otherwise
    let mixture = if matches!(mis, Mis::Opt(_)) {
        &mu_opt
    } else {
        &mu
    };
    let mut lm = Mat::zeros(samples, mixture.rows);
    for c in 0..samples {
        for c2 in 0..mixture.rows {
            lm.set(c, c2, prm_log(s, mixture.row(c2), w.row(c)));
        }
    }
    let lse_lm: Vec<f64> = (0..samples).map(|c| lse(lm.row(c))).collect();

    // log α [S, nq] and log P [S]
    let mut log_alpha = Mat::zeros(samples, dims.nq);
    let mut log_p = vec![0.0; samples];
    match mis {
        Mis::Opt(alpha_coeff) => {
            // T[c, i] = softmax over i of s · q̄_c·q_i, repeated as the samples are
            let t_bar = options
                .t_landmarks
                .map_or_else(|| q_bar.clone(), |t| Mat::from_f32(t, cp, dims.d));
            let mut t = Mat::zeros(cp, dims.nq);
            for c in 0..cp {
                let logits: Vec<f64> = (0..dims.nq)
                    .map(|i| s * dot(t_bar.row(c), q.row(i)))
                    .collect();
                t.row_mut(c).copy_from_slice(&softmax(&logits));
            }
            let t = if doubled { repeat_twice(&t) } else { t };
            // the mean over samples of T[·, i]
            let t_mean: Vec<f64> = (0..dims.nq)
                .map(|i| (0..samples).map(|c| t.at(c, i)).sum::<f64>() / samples as f64)
                .collect();
            for c in 0..samples {
                log_p[c] = lm.at(c, c);
                let bh = (lm.at(c, c) - lse_lm[c]).exp();
                for i in 0..dims.nq {
                    let alpha = bh + alpha_coeff * (t.at(c, i) - t_mean[i]);
                    log_alpha.set(c, i, alpha.max(1e-8).ln());
                }
            }
        }
        Mis::Bh => {
            log_p.copy_from_slice(&lse_lm);
        }
        Mis::Biased => {
            log_p.copy_from_slice(&lse_lm);
            for c in 0..samples {
                for i in 0..dims.nq {
                    log_alpha.set(c, i, s * dot(mu.row(c % cp), q.row(i)));
                }
            }
        }
    }

    // logiw[c, i] = logα + LQ + lseK − logP;  sniw = softmax over c;  out_i = Σ_c sniw kv_c
    let mut out = Mat::zeros(dims.nq, dims.dv);
    for i in 0..dims.nq {
        let logiw: Vec<f64> = (0..samples)
            .map(|c| log_alpha.at(c, i) + lq.at(c, i) + lse_k[c] - log_p[c])
            .collect();
        let sniw = softmax(&logiw);
        out.row_mut(i).copy_from_slice(&weighted_rows(&sniw, &kv));
    }
    out.data
}

// ---------------------------------------------------------------------------------------------
// (d) RA
// ---------------------------------------------------------------------------------------------

/// The RA proposal mean (`num_samples`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaMean<'a> {
    /// `num_samples = 0`: `mu_i = q_i + mean_j k_j`.
    KeyAverage,
    /// `num_samples = -1`: `mu_i = q_i + Σ_j π[i, j] k_j`.
    AttentionWeighted,
    /// `num_samples = 1` with given indices: `mu_i = q_i + k_{J_i}`.
    Keys(&'a [u32]),
}

/// RA; `eps [nq, d]` for the sampled mode, `None` for eval.
pub fn ra(
    dims: Dims,
    mean: RaMean<'_>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    eps: Option<&[f32]>,
) -> Vec<f64> {
    dims.check(q, k, v);
    let s = dims.s();
    let q = Mat::from_f32(q, dims.nq, dims.d);
    let k = Mat::from_f32(k, dims.nk, dims.d);
    let v = Mat::from_f32(v, dims.nk, dims.dv);

    let mut mu = Mat::zeros(dims.nq, dims.d);
    match mean {
        RaMean::KeyAverage => {
            let uniform = vec![1.0 / dims.nk as f64; dims.nk];
            let k_mean = weighted_rows(&uniform, &k);
            for i in 0..dims.nq {
                for (m, (a, b)) in mu.row_mut(i).iter_mut().zip(q.row(i).iter().zip(&k_mean)) {
                    *m = a + b;
                }
            }
        }
        RaMean::AttentionWeighted => {
            let scores = scaled_scores(dims, &q, &k);
            for i in 0..dims.nq {
                let pi = softmax(scores.row(i));
                let kw = weighted_rows(&pi, &k);
                for (m, (a, b)) in mu.row_mut(i).iter_mut().zip(q.row(i).iter().zip(&kw)) {
                    *m = a + b;
                }
            }
        }
        RaMean::Keys(index) => {
            assert_eq!(index.len(), dims.nq);
            for i in 0..dims.nq {
                let j = index[i] as usize;
                for (m, (a, b)) in mu.row_mut(i).iter_mut().zip(q.row(i).iter().zip(k.row(j))) {
                    *m = a + b;
                }
            }
        }
    }
    let mut w = mu;
    if let Some(eps) = eps {
        assert_eq!(eps.len(), dims.nq * dims.d, "eps length");
        for (x, &e) in w.data.iter_mut().zip(eps) {
            *x += e as f64;
        }
    }
    // logits[i, j] = s · W_i·k_j − s · |k_j|²/2
    let k_sq: Vec<f64> = (0..dims.nk).map(|j| sq_norm(k.row(j))).collect();
    let mut logits = Mat::zeros(dims.nq, dims.nk);
    for i in 0..dims.nq {
        for j in 0..dims.nk {
            logits.set(i, j, s * dot(w.row(i), k.row(j)) - s * k_sq[j] / 2.0);
        }
    }
    softmax_rows_times(&logits, &v).data
}

// ---------------------------------------------------------------------------------------------
// (e)/(f) RFA
// ---------------------------------------------------------------------------------------------

/// `linear_attention`: `out_i = φq_i · Σ_m φk_m v_mᵀ / max(φq_i · Σ_m φk_m, 1e-2)`.
pub fn linear_attention(phi_q: &Mat, phi_k: &Mat, v: &Mat) -> Mat {
    assert_eq!(phi_q.cols, phi_k.cols);
    assert_eq!(phi_k.rows, v.rows);
    let features = phi_q.cols;
    // KV [F, dv] and Ksum [F]
    let mut kv = Mat::zeros(features, v.cols);
    let mut k_sum = vec![0.0; features];
    for m in 0..phi_k.rows {
        for r in 0..features {
            let f = phi_k.at(m, r);
            k_sum[r] += f;
            for (a, &x) in kv.row_mut(r).iter_mut().zip(v.row(m)) {
                *a += f * x;
            }
        }
    }
    let mut out = Mat::zeros(phi_q.rows, v.cols);
    for i in 0..phi_q.rows {
        let num = weighted_rows(phi_q.row(i), &kv);
        let den = dot(phi_q.row(i), &k_sum);
        let den = den.max(1e-2);
        for (o, n) in out.row_mut(i).iter_mut().zip(num) {
            *o = n / den;
        }
    }
    out
}

/// `A[i, r] = d^(-1/4) · x_i·ω_r`, `[rows, S]`.
fn projection(dims: Dims, x: &Mat, omega: &Mat) -> Mat {
    let s4 = (dims.d as f64).powf(-0.25);
    let mut a = Mat::zeros(x.rows, omega.rows);
    for i in 0..x.rows {
        for r in 0..omega.rows {
            a.set(i, r, s4 * dot(x.row(i), omega.row(r)));
        }
    }
    a
}

/// Performer positive features: `(φq [nq, S], φk [nk, S])` with the official stabilisers and
/// the `+1e-4` floor.
pub fn performer_features(
    dims: Dims,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
) -> (Mat, Mat) {
    performer_features_masked(dims, omega, features, q, k, None)
}

/// [`performer_features`] with a key padding mask: masked keys get `φk = 0` and stay out of
/// the key stabiliser.
pub fn performer_features_masked(
    dims: Dims,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    mask: Option<&[bool]>,
) -> (Mat, Mat) {
    let masked = |m: usize| mask.is_some_and(|mask| mask[m]);
    let s = dims.s();
    let ratio = 1.0 / (features as f64).sqrt();
    let omega = Mat::from_f32(omega, features, dims.d);
    let q = Mat::from_f32(q, dims.nq, dims.d);
    let k = Mat::from_f32(k, dims.nk, dims.d);
    let a = projection(dims, &q, &omega);
    let b = projection(dims, &k, &omega);
    let mut phi_q = Mat::zeros(dims.nq, features);
    for i in 0..dims.nq {
        let hq = s * sq_norm(q.row(i)) / 2.0;
        let max_a = a.row(i).iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        for r in 0..features {
            phi_q.set(i, r, ratio * (a.at(i, r) - hq - max_a).exp() + 1e-4);
        }
    }
    let max_b = (0..dims.nk)
        .filter(|&m| !masked(m))
        .flat_map(|m| b.row(m).iter().cloned())
        .fold(f64::NEG_INFINITY, f64::max);
    let mut phi_k = Mat::zeros(dims.nk, features);
    for m in (0..dims.nk).filter(|&m| !masked(m)) {
        let hk = s * sq_norm(k.row(m)) / 2.0;
        for r in 0..features {
            phi_k.set(m, r, ratio * (b.at(m, r) - hk - max_b).exp() + 1e-4);
        }
    }
    (phi_q, phi_k)
}

/// Performer / RFA with positive features, `omega [S, d]`.
pub fn performer(
    dims: Dims,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
) -> Vec<f64> {
    performer_masked(dims, omega, features, q, k, v, None)
}

/// [`performer`] with a key padding mask.
pub fn performer_masked(
    dims: Dims,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[bool]>,
) -> Vec<f64> {
    dims.check(q, k, v);
    let (phi_q, phi_k) = performer_features_masked(dims, omega, features, q, k, mask);
    linear_attention(&phi_q, &phi_k, &Mat::from_f32(v, dims.nk, dims.dv)).data
}

/// The positive-feature estimator without floor or clamp:
/// `out_i = Σ_r Σ_m e^(A[i,r] + B[m,r] − s|k_m|²/2) v_m / Σ_r Σ_m e^(…)`, over unmasked keys
/// (one softmax over the `(r, m)` pairs of each query).
pub fn performer_log_space(
    dims: Dims,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[bool]>,
) -> Vec<f64> {
    dims.check(q, k, v);
    let s = dims.s();
    let omega = Mat::from_f32(omega, features, dims.d);
    let (q, k) = (
        Mat::from_f32(q, dims.nq, dims.d),
        Mat::from_f32(k, dims.nk, dims.d),
    );
    let v = Mat::from_f32(v, dims.nk, dims.dv);
    let (a, b) = (projection(dims, &q, &omega), projection(dims, &k, &omega));
    let keys: Vec<usize> = (0..dims.nk)
        .filter(|&m| !mask.is_some_and(|mask| mask[m]))
        .collect();
    let mut out = Mat::zeros(dims.nq, dims.dv);
    for i in 0..dims.nq {
        let mut logits = Vec::new();
        let mut value_rows = Vec::new();
        for r in 0..features {
            for &m in &keys {
                logits.push(a.at(i, r) + b.at(m, r) - s * sq_norm(k.row(m)) / 2.0);
                value_rows.push(m);
            }
        }
        let p = softmax(&logits);
        for (&pj, &m) in p.iter().zip(&value_rows) {
            for (o, &x) in out.row_mut(i).iter_mut().zip(v.row(m)) {
                *o += pj * x;
            }
        }
    }
    out.data
}

/// Trigonometric features `φ [rows, 2S]` of one input (`fourier_projection`).
pub fn fourier_features(dims: Dims, omega: &[f32], features: usize, x: &[f32], rows: usize) -> Mat {
    fourier_features_masked(dims, omega, features, x, rows, None)
}

/// [`fourier_features`] with rows masked out: zero features, and out of the `max h`.
pub fn fourier_features_masked(
    dims: Dims,
    omega: &[f32],
    features: usize,
    x: &[f32],
    rows: usize,
    mask: Option<&[bool]>,
) -> Mat {
    let masked = |m: usize| mask.is_some_and(|mask| mask[m]);
    let s = dims.s();
    let ratio = 1.0 / (features as f64).sqrt();
    let omega = Mat::from_f32(omega, features, dims.d);
    let x = Mat::from_f32(x, rows, dims.d);
    let a = projection(dims, &x, &omega);
    let h: Vec<f64> = (0..rows).map(|i| s * sq_norm(x.row(i)) / 2.0).collect();
    let max_h = (0..rows)
        .filter(|&i| !masked(i))
        .map(|i| h[i])
        .fold(f64::NEG_INFINITY, f64::max);
    let mut phi = Mat::zeros(rows, 2 * features);
    for i in (0..rows).filter(|&i| !masked(i)) {
        let magnitude = ratio * (h[i] - max_h).exp();
        for r in 0..features {
            phi.set(i, r, magnitude * a.at(i, r).sin());
            phi.set(i, features + r, magnitude * a.at(i, r).cos());
        }
    }
    phi
}

/// RFA with trigonometric features, `omega [S, d]`, `2S` features.
pub fn trigonometric(
    dims: Dims,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
) -> Vec<f64> {
    trigonometric_masked(dims, omega, features, q, k, v, None)
}

/// [`trigonometric`] with a key padding mask.
pub fn trigonometric_masked(
    dims: Dims,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[bool]>,
) -> Vec<f64> {
    dims.check(q, k, v);
    let phi_q = fourier_features(dims, omega, features, q, dims.nq);
    let phi_k = fourier_features_masked(dims, omega, features, k, dims.nk, mask);
    linear_attention(&phi_q, &phi_k, &Mat::from_f32(v, dims.nk, dims.dv)).data
}

/// A per-output-row magnitude of the trigonometric estimate with every cancellation removed:
/// `(Σ_r |φq_ir| Σ_m |φk_mr| max|v_m|  +  |out_i| · Σ_r |φq_ir| Σ_m |φk_mr|) / max(den_i, 1e-2)`.
/// Rounding errors of a float32 evaluation scale with it (features of both signs make the
/// trigonometric estimate ill-conditioned where the denominator nearly cancels).
pub fn trigonometric_condition(
    dims: Dims,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
) -> Vec<f64> {
    let phi_q = fourier_features(dims, omega, features, q, dims.nq);
    let phi_k = fourier_features(dims, omega, features, k, dims.nk);
    let vm = Mat::from_f32(v, dims.nk, dims.dv);
    let out = linear_attention(&phi_q, &phi_k, &vm);
    let f = 2 * features;
    let mut abs_kv = vec![0.0; f];
    let mut abs_k = vec![0.0; f];
    let mut k_sum = vec![0.0; f];
    for m in 0..dims.nk {
        let vmax = vm.row(m).iter().fold(0.0f64, |a, &x| a.max(x.abs()));
        for r in 0..f {
            abs_kv[r] += phi_k.at(m, r).abs() * vmax;
            abs_k[r] += phi_k.at(m, r).abs();
            k_sum[r] += phi_k.at(m, r);
        }
    }
    (0..dims.nq)
        .map(|i| {
            let pq = phi_q.row(i);
            let den = dot(pq, &k_sum).max(1e-2);
            let a: f64 = pq.iter().zip(&abs_kv).map(|(p, x)| p.abs() * x).sum();
            let b: f64 = pq.iter().zip(&abs_k).map(|(p, x)| p.abs() * x).sum();
            let out_max = out.row(i).iter().fold(0.0f64, |m, &x| m.max(x.abs()));
            (a + out_max * b) / den
        })
        .collect()
}
