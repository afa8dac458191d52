//! The layers' linear maps: one head's share of the qkv projection and of the output
//! projection over a block of tokens (scalar dots, or the blocked matrix product with the
//! weights packed once per head), and the generators' `Linear` + `LayerNorm` on single rows.

use super::Weights;
use crate::math::dot;
use crate::simd::tile::{add_row, pack_transposed};
use crate::simd::{self, Available, Isa, Kernel, gemm};
use crate::slices::{prefix, rows, rows_mut};

/// `LayerNorm`'s `eps` (the PyTorch default the official modules keep).
const LAYER_NORM_EPS: f32 = 1e-5;

/// Which third of the qkv projection.
#[derive(Clone, Copy)]
pub(super) enum Third {
    Queries = 0,
    Keys = 1,
    Values = 2,
}

/// One head's slice of an `nn.Linear`: `y = W x + b` with `W [d, dim]` (rows of the module's
/// weight, contiguous) and `b [d]`.
#[derive(Clone, Copy)]
pub(super) struct HeadLinear<'w> {
    pub(super) weight: &'w [f32],
    pub(super) bias: Option<&'w [f32]>,
}

impl<'w> HeadLinear<'w> {
    /// Head `head`'s columns `[head·d, (head+1)·d)` of one third of `qkv = x W_qkvᵀ + b_qkv`
    /// (the official `proj_and_split_heads`): rows `third·dim + head·d ..` of `qkv.weight`.
    pub(super) fn qkv(
        weights: &Weights<'w>,
        third: Third,
        head: usize,
        (d, dim): (usize, usize),
    ) -> Self {
        let first = third as usize * dim + head * d;
        let weight = weights.qkv_weight.get(first * dim..(first + d) * dim);
        HeadLinear {
            weight: weight.unwrap_or_default(),
            bias: weights.qkv_bias.and_then(|b| b.get(first..first + d)),
        }
    }

    /// The output rows `d` of this map.
    fn rows(&self, dim: usize) -> usize {
        self.weight.len() / dim.max(1)
    }

    /// `out = W x + frac · b`: the map applied to a mean of `frac`-weighted tokens (`frac` = 1
    /// for a plain token).
    pub(super) fn apply_row(&self, x: &[f32], frac: f32, out: &mut [f32]) {
        let dim = x.len();
        for (e, (y, w_row)) in out.iter_mut().zip(rows(self.weight, dim)).enumerate() {
            let b = self.bias.and_then(|b| b.get(e)).copied().unwrap_or(0.0);
            // y_e = W_e·x + frac · b_e
            *y = dot(w_row, x) + frac * b;
        }
    }

    /// `packed [dim, d] = Wᵀ`, the operand of the blocked product (not used by the scalar
    /// kernel).
    pub(super) fn pack(&self, dim: usize, packed: &mut [f32]) {
        let d = self.rows(dim);
        pack_transposed(self.weight, dim, 1.0, prefix(packed, dim * d), d, 0);
    }
}

/// `out [rows, d] = x [rows, dim] Wᵀ + b` for a block of tokens.
pub(super) struct Project<'a> {
    pub(super) x: &'a [f32],
    pub(super) dim: usize,
    pub(super) linear: HeadLinear<'a>,
    /// `Wᵀ` packed by [`HeadLinear::pack`] (blocked kernel only).
    pub(super) packed: &'a [f32],
    pub(super) out: &'a mut [f32],
}

impl Kernel for Project<'_> {
    type Output = ();
    fn scalar(self) {
        let Project {
            x,
            dim,
            linear,
            out,
            ..
        } = self;
        let d = linear.rows(dim);
        for (x_row, out_row) in rows(x, dim).zip(rows_mut(out, d)) {
            linear.apply_row(x_row, 1.0, out_row);
        }
    }
    #[inline(always)]
    fn blocked<I: Isa>(self, isa: I) {
        let Project {
            x,
            dim,
            linear,
            packed,
            out,
        } = self;
        let d = linear.rows(dim);
        let rows_x = x.len() / dim.max(1);
        // out = x · Wᵀ
        gemm(
            isa,
            (rows_x, d, dim),
            (x, dim, 1),
            (packed, d),
            (&mut *out, d),
            false,
        );
        if let Some(bias) = linear.bias {
            for row in rows_mut(out, d) {
                add_row(isa, row, bias);
            }
        }
    }
}

/// One head's share of the output projection: `out [rows, dim] += o [rows, d] · W_projᵀ`
/// restricted to the head's input columns `[offset, offset + d)`.
pub(super) struct OutputProjection<'a> {
    pub(super) o: &'a [f32],
    /// `proj.weight [dim, dim]`.
    pub(super) weight: &'a [f32],
    /// The head's first column `h·d` and `d`.
    pub(super) columns: (usize, usize),
    /// The head's columns transposed, `[d, dim]` (blocked kernel only).
    pub(super) packed: &'a [f32],
    pub(super) out: &'a mut [f32],
}

impl OutputProjection<'_> {
    /// `packed [d, dim]`, `packed[e, o] = W_proj[o, offset + e]`.
    pub(super) fn pack(
        weight: &[f32],
        (offset, d): (usize, usize),
        dim: usize,
        packed: &mut [f32],
    ) {
        for (o, w_row) in rows(weight, dim).enumerate() {
            let head_columns = w_row.get(offset..offset + d).unwrap_or_default();
            for (packed_row, &w) in rows_mut(packed, dim).zip(head_columns) {
                if let Some(p) = packed_row.get_mut(o) {
                    *p = w;
                }
            }
        }
    }
}

impl Kernel for OutputProjection<'_> {
    type Output = ();
    fn scalar(self) {
        let OutputProjection {
            o,
            weight,
            columns: (offset, d),
            out,
            ..
        } = self;
        let dim = out.len() / (o.len() / d.max(1)).max(1);
        for (o_row, out_row) in rows(o, d).zip(rows_mut(out, dim)) {
            for (y, w_row) in out_row.iter_mut().zip(rows(weight, dim)) {
                // out_t,o += Σ_e o_t,e · W_proj[o, h·d + e]
                *y += dot(o_row, w_row.get(offset..offset + d).unwrap_or_default());
            }
        }
    }
    #[inline(always)]
    fn blocked<I: Isa>(self, isa: I) {
        let OutputProjection {
            o,
            columns: (_, d),
            packed,
            out,
            ..
        } = self;
        let rows_o = o.len() / d.max(1);
        let dim = out.len() / rows_o.max(1);
        gemm(
            isa,
            (rows_o, dim, d),
            (o, d, 1),
            (packed, dim),
            (out, dim),
            true,
        );
    }
}

/// `out [rows, d] = x [rows, dim] Wᵀ + b` on `backend`.
pub(super) fn project(
    backend: Available,
    (x, dim): (&[f32], usize),
    linear: HeadLinear<'_>,
    packed: &[f32],
    out: &mut [f32],
) {
    simd::run(
        backend,
        Project {
            x,
            dim,
            linear,
            packed,
            out,
        },
    );
}

/// `out = LayerNorm(W x + b)` for one row: a generator's `Linear` then `LayerNorm`.
pub(super) fn linear_layer_norm(
    x: &[f32],
    (weight, bias): (&[f32], &[f32]),
    (gamma, beta): (&[f32], &[f32]),
    out: &mut [f32],
) {
    let linear = HeadLinear {
        weight,
        bias: Some(bias),
    };
    linear.apply_row(x, 1.0, out);
    layer_norm(out, gamma, beta);
}

/// `z ← (z − mean z) / sqrt(var z + 1e-5) · γ + β`, the variance biased (PyTorch's
/// `LayerNorm` over the last axis).
pub(super) fn layer_norm(z: &mut [f32], gamma: &[f32], beta: &[f32]) {
    let len = z.len().max(1) as f32;
    let mean = z.iter().sum::<f32>() / len;
    let var = z.iter().map(|&x| (x - mean) * (x - mean)).sum::<f32>() / len;
    let inv_std = 1.0 / libm::sqrtf(var + LAYER_NORM_EPS);
    for ((x, &g), &b) in z.iter_mut().zip(gamma).zip(beta) {
        *x = (*x - mean) * inv_std * g + b;
    }
}
