//! Everything a run needs, read from the files and checked against each other: the inputs
//! stacked `[h, n, d]` with the heads in the [`Shape`], and the auxiliary inputs stacked with a
//! leading `h` axis, as every estimator takes them.

use crate::Res;
use crate::args::{Method, Options};
use crate::files::{KeyMask, read_input, read_mask, read_stacked, try_alloc};
use lara_attn::{Qkv, Shape, lara};

/// Given LARA landmarks, `[h, count, d]` each.
#[derive(Clone)]
pub struct Landmarks {
    pub count: usize,
    pub queries: Vec<f32>,
    pub keys: Vec<f32>,
}

#[derive(Clone)]
pub struct Problem {
    /// Whether the inputs were 3-D (the output is then `[h, n_q, d_v]`).
    pub stacked: bool,
    /// The dimensions, `heads` included.
    pub shape: Shape,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub landmarks: Option<Landmarks>,
    /// LARA's `C'`: the given landmark count or `min(C, n_q, n_k)`.
    pub lara_count: usize,
    pub eps: Option<Vec<f32>>,
    pub key_indices: Option<Vec<u32>>,
    /// The number of random features `S` per head.
    pub features: usize,
    pub omega: Option<Vec<f32>>,
    pub gates: Option<Vec<f32>>,
    pub mask: Option<KeyMask>,
}

/// Which heads a call covers, to cut the stacked auxiliary inputs to match.
#[derive(Clone, Copy)]
pub enum Heads {
    /// Every head, in one call.
    All,
    /// Head `index` of `of`, alone (a per-head key mask).
    One { index: usize, of: usize },
}

impl Heads {
    /// The part of `data [h, ..]` for these heads.
    pub fn of<T>(self, data: &[T]) -> &[T] {
        match self {
            Heads::All => data,
            Heads::One { index, of } => {
                let len = data.len() / of;
                &data[index * len..][..len]
            }
        }
    }
}

impl Problem {
    /// The number of heads `h`.
    pub fn heads(&self) -> usize {
        self.shape.heads
    }

    /// The length of the output `[h, n_q, d_v]`.
    pub fn out_len(&self) -> Res<usize> {
        let s = self.shape;
        s.heads
            .checked_mul(s.queries)
            .and_then(|x| x.checked_mul(s.value_dim))
            .ok_or_else(|| "output size overflows".into())
    }

    /// Calls `f` with the inputs and the key mask: once for every head, or head by head (with
    /// the shape of one head) when the mask has one row per head, as the estimators take one
    /// mask for every head.
    pub fn with_masked_inputs(
        &self,
        out: &mut [f32],
        mut f: impl FnMut(&Qkv<'_>, Heads, &mut [f32]) -> Res<()>,
    ) -> Res<()> {
        let (shape, q, k, v) = (self.shape, &self.q[..], &self.k[..], &self.v[..]);
        let Some(KeyMask::PerHead(mask)) = &self.mask else {
            let key_mask = match &self.mask {
                Some(KeyMask::Shared(mask)) => Some(&mask[..]),
                _ => None,
            };
            let x = Qkv {
                shape,
                q,
                k,
                v,
                key_mask,
            };
            return f(&x, Heads::All, out);
        };
        let of = shape.heads;
        let head_out = out.len() / of;
        for (index, out) in out.chunks_exact_mut(head_out).enumerate() {
            let heads = Heads::One { index, of };
            let x = Qkv {
                shape: shape.with_heads(1),
                q: heads.of(q),
                k: heads.of(k),
                v: heads.of(v),
                key_mask: Some(heads.of(mask)),
            };
            f(&x, heads, out)?;
        }
        Ok(())
    }

    /// Whether key `key` of head `head` is masked.
    fn masked(&self, head: usize, key: usize) -> bool {
        match &self.mask {
            None => false,
            Some(KeyMask::Shared(mask)) => mask[key],
            Some(KeyMask::PerHead(mask)) => mask[head * self.shape.keys + key],
        }
    }
}

pub fn load(o: &Options, method: Method) -> Res<Problem> {
    let q = read_input(&o.inputs[0])?;
    let k = read_input(&o.inputs[1])?;
    let v = read_input(&o.inputs[2])?;
    if q.heads.is_some() != k.heads.is_some() || q.heads.is_some() != v.heads.is_some() {
        return Err(format!(
            "q, k and v must all be 2-D [n, d] or all 3-D [h, n, d] ({}, {}, {})",
            q.rank_text(),
            k.rank_text(),
            v.rank_text()
        ));
    }
    if k.heads != q.heads || v.heads != q.heads {
        return Err(format!(
            "head counts differ: q has {:?}, k {:?}, v {:?}",
            q.heads, k.heads, v.heads
        ));
    }
    if k.cols != q.cols {
        return Err(format!(
            "{}: key dimension {} differs from the query dimension {} of {}",
            k.path.display(),
            k.cols,
            q.cols,
            q.path.display()
        ));
    }
    if v.rows != k.rows {
        return Err(format!(
            "{}: {} values, but {} has {} keys",
            v.path.display(),
            v.rows,
            k.path.display(),
            k.rows
        ));
    }
    let heads = q.heads.unwrap_or(1);
    let shape = Shape::cross(q.rows, k.rows, q.cols, v.cols).with_heads(heads);
    let d = shape.dim;
    if o.causal && shape.queries != shape.keys {
        return Err(format!(
            "--causal needs as many queries as keys (n_q = {}, n_k = {})",
            shape.queries, shape.keys
        ));
    }
    let f32_file = |option: &str, path, inner| {
        read_stacked(option, path, "<f4", f32::from_le_bytes, heads, inner)
    };

    let landmarks = match (&o.landmarks_q, &o.landmarks_k) {
        (Some(lq), Some(lk)) => {
            let (sq, queries) = f32_file("--landmarks-q", lq, "C, d")?;
            let (sk, keys) = f32_file("--landmarks-k", lk, "C, d")?;
            if sq != sk || sq[1] != d {
                return Err(format!(
                    "--landmarks-q {sq:?} and --landmarks-k {sk:?} must both be [C, d = {d}]"
                ));
            }
            if let Some(c) = o.landmarks
                && c != sq[0]
            {
                return Err(format!(
                    "--landmarks {c} differs from the {} rows of the given landmarks",
                    sq[0]
                ));
            }
            Some(Landmarks {
                count: sq[0],
                queries,
                keys,
            })
        }
        _ => None,
    };
    let lara_count = match &landmarks {
        Some(given) => given.count,
        None => lara::effective_landmarks(shape, o.landmarks.unwrap_or(16)),
    };

    let eps = match &o.eps {
        None => None,
        Some(path) => {
            let proposals = o.proposals.unwrap_or_default();
            let (rows, inner) = match method {
                Method::Lara if proposals == lara::Proposals::TwoPerLandmark => {
                    (proposals.noise_rows(lara_count), "2C', d")
                }
                Method::Lara => (proposals.noise_rows(lara_count), "C', d"),
                _ => (shape.queries, "n_q, d"),
            };
            let (s, data) = f32_file("--eps", path, inner)?;
            if s != [rows, d] {
                return Err(format!(
                    "--eps {}: per-head shape {s:?}, expected [{inner}] = [{rows}, {d}]",
                    path.display()
                ));
            }
            Some(data)
        }
    };

    let mut features = o.features.unwrap_or(64);
    let omega = match &o.omega {
        None => None,
        Some(path) => {
            let (s, data) = f32_file("--omega", path, "S, d")?;
            if s[1] != d {
                return Err(format!(
                    "--omega {}: per-head shape {s:?}, expected [S, d = {d}]",
                    path.display()
                ));
            }
            if let Some(f) = o.features
                && f != s[0]
            {
                return Err(format!(
                    "--features {f} differs from the S = {} of --omega",
                    s[0]
                ));
            }
            features = s[0];
            Some(data)
        }
    };

    let gates = match &o.gates {
        None => None,
        Some(path) => {
            let (s, data) = f32_file("--gates", path, "n")?;
            if s != [shape.keys] {
                return Err(format!(
                    "--gates {}: per-head shape {s:?}, expected [{}]",
                    path.display(),
                    shape.keys
                ));
            }
            Some(data)
        }
    };

    let mask = match &o.mask {
        None => None,
        Some(path) => Some(read_mask(path, heads, shape.keys)?),
    };

    let mut problem = Problem {
        stacked: q.heads.is_some(),
        shape,
        q: q.data,
        k: k.data,
        v: v.data,
        landmarks,
        lara_count,
        eps,
        key_indices: None,
        features,
        omega,
        gates,
        mask,
    };
    if let Some(path) = &o.key_indices {
        let (s, data) = read_stacked(
            "--key-indices",
            path,
            "<i4",
            i32::from_le_bytes,
            heads,
            "n_q",
        )?;
        if s != [shape.queries] {
            return Err(format!(
                "--key-indices {}: per-head shape {s:?}, expected [{}]",
                path.display(),
                shape.queries
            ));
        }
        let mut indices = try_alloc(data.len())?;
        for (i, &j) in data.iter().enumerate() {
            let head = i / shape.queries;
            match u32::try_from(j) {
                Ok(key) if (key as usize) < shape.keys => {
                    if problem.masked(head, key as usize) {
                        return Err(format!(
                            "--key-indices {}: element {i} is {j}, a key that --mask masks \
                             (masked keys have no influence)",
                            path.display()
                        ));
                    }
                    indices.push(key);
                }
                _ => {
                    return Err(format!(
                        "--key-indices {}: element {i} is {j}, not in 0..{}",
                        path.display(),
                        shape.keys
                    ));
                }
            }
        }
        problem.key_indices = Some(indices);
    }
    Ok(problem)
}
