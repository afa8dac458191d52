//! The estimators restructured around register-blocked matrix products, generic over the
//! vector instruction set. Same formulas as the scalar reference kernels (module by module,
//! the comments name them); different association of sums, so results agree to rounding.
//!
//! Every kernel streams over blocks of [`BLOCK`] keys or queries: a block's logits form a
//! `BLOCK × C` (or `× S`, `× BLOCK`) tile in scratch, produced by one [`gemm`] against a packed,
//! pre-scaled, transposed copy of the landmark/feature/query matrix, reduced column- or
//! row-wise with vector code, and folded into the running sums by a second [`gemm`].

use super::{Isa, Scalar, dot, exp, exp_shifted_sum, gemm, max_of, scale_add};
use crate::lara::{Weighting, Workspace};
use crate::math::{copy, half_sq_norm, ln, prefix, rows, rows_mut};
use crate::ra::{KeyStats, SampledMean};
use crate::rfa::{
    DENOMINATOR_FLOOR, FEATURE_FLOOR, FeatureScales, FeatureState, max_scaled_half_norm,
    unmasked_count,
};
use crate::shape::{Shape, masked_keys};

/// Rows (keys or queries) per block.
pub(crate) const BLOCK: usize = 32;

/// `dst[p·ld + offset + r] = scale · src[r·cols + p]`: the transpose of `src [rows, cols]`,
/// scaled, into columns `offset .. offset + rows` of `dst [cols, ld]`.
fn pack_transposed(
    src: &[f32],
    cols: usize,
    scale: f32,
    dst: &mut [f32],
    ld: usize,
    offset: usize,
) {
    for (p, dst_row) in rows_mut(dst, ld).take(cols).enumerate() {
        for (d, src_row) in dst_row.iter_mut().skip(offset).zip(rows(src, cols)) {
            if let Some(&x) = src_row.get(p) {
                *d = scale * x;
            }
        }
    }
}

/// The next `len` floats of `rest`, advancing it. The callers' scratch was sized by the
/// kernels' `scratch_len`; a shorter one (an internal bug, caught in debug builds) yields a
/// shorter part, never a panic or an access out of bounds.
fn take<'a>(rest: &mut &'a mut [f32], len: usize) -> &'a mut [f32] {
    let buffer = core::mem::take(rest);
    debug_assert!(buffer.len() >= len, "blocked kernel scratch too short");
    let (head, tail) = buffer.split_at_mut(len.min(buffer.len()));
    *rest = tail;
    head
}

/// Column-wise on `tile [rows, ld]` (first `cols` columns): `max[c] = max_j tile[j, c]`.
#[inline(always)]
fn column_max<I: Isa>(isa: I, tile: &[f32], ld: usize, cols: usize, max: &mut [f32]) {
    max.fill(f32::NEG_INFINITY);
    for row in rows(tile, ld) {
        let mut c = 0;
        while c + I::LANES <= cols.min(row.len()).min(max.len()) {
            // SAFETY: c + LANES <= len of both row and max.
            unsafe {
                let m = isa.max(isa.load(max.as_ptr().add(c)), isa.load(row.as_ptr().add(c)));
                isa.store(max.as_mut_ptr().add(c), m);
            }
            c += I::LANES;
        }
        for (m, &x) in max.iter_mut().zip(row).take(cols).skip(c) {
            *m = m.max(x);
        }
    }
}

/// Column-wise: `tile[j, c] = e^(tile[j, c] − shift[c])` and `sum[c] += Σ_j tile[j, c]`.
#[inline(always)]
fn column_exp_sum<I: Isa>(
    isa: I,
    tile: &mut [f32],
    ld: usize,
    cols: usize,
    shift: &[f32],
    sum: &mut [f32],
) {
    for row in rows_mut(tile, ld) {
        let row = prefix(row, cols);
        exp_minus(isa, row, shift);
        add_row(isa, sum, row);
    }
}

/// `row[c] = e^(row[c] − shift[c])` over the common length.
#[inline(always)]
fn exp_minus<I: Isa>(isa: I, row: &mut [f32], shift: &[f32]) {
    let len = row.len().min(shift.len());
    let mut c = 0;
    while c + I::LANES <= len {
        // SAFETY: c + LANES <= len of row and shift.
        unsafe {
            let e = exp(
                isa,
                isa.sub(
                    isa.load(row.as_ptr().add(c)),
                    isa.load(shift.as_ptr().add(c)),
                ),
            );
            isa.store(row.as_mut_ptr().add(c), e);
        }
        c += I::LANES;
    }
    if c < len {
        // One partial vector for the last len − c elements.
        let width = len - c;
        // SAFETY: c + width = len <= len of row and shift.
        unsafe {
            let x = isa.load_partial(row.as_ptr().add(c), width);
            let e = exp(
                isa,
                isa.sub(x, isa.load_partial(shift.as_ptr().add(c), width)),
            );
            isa.store_partial(row.as_mut_ptr().add(c), width, e);
        }
    }
}

/// Online log-sum-exp update of one block, per column: with the block's column maxima in
/// `block_max`, `running_max ← max(running_max, block_max)`, `rescale = e^(old − new)`, and
/// `running_sum *= rescale`.
#[inline(always)]
fn raise_running_max(
    running_max: &mut [f32],
    block_max: &[f32],
    rescale: &mut [f32],
    running_sum: &mut [f32],
) {
    for (((m, &b), r), s) in running_max
        .iter_mut()
        .zip(block_max)
        .zip(rescale.iter_mut())
        .zip(running_sum.iter_mut())
    {
        let new_max = m.max(b);
        *r = exp(Scalar, *m - new_max);
        *s *= *r;
        *m = new_max;
    }
}

/// `row[c] += add[c]` over the common length.
#[inline(always)]
fn add_row<I: Isa>(isa: I, row: &mut [f32], add: &[f32]) {
    scale_add(isa, row, 1.0, 1.0, add);
}

/// `row ← factor · row`.
#[inline(always)]
fn scale_row<I: Isa>(isa: I, row: &mut [f32], factor: f32) {
    let factor_v = isa.splat(factor);
    let mut chunks = row.chunks_exact_mut(I::LANES.max(1));
    for chunk in &mut chunks {
        // SAFETY: the chunk holds exactly LANES floats.
        unsafe {
            isa.store(
                chunk.as_mut_ptr(),
                isa.mul(isa.load(chunk.as_ptr()), factor_v),
            )
        };
    }
    for x in chunks.into_remainder() {
        *x *= factor;
    }
}

/// `row ← row − shift` (every element).
#[inline(always)]
fn shift_row(row: &mut [f32], shift: f32) {
    for x in row {
        *x -= shift;
    }
}

/// `x ← e^x` for every element.
#[inline(always)]
pub(crate) fn exp_in_place<I: Isa>(isa: I, values: &mut [f32]) {
    exp_shifted_sum(isa, values, 0.0);
}

/// Scratch of [`flash_block`]: the packed queries `[d, BLOCK]`, the logit tile
/// `[BLOCK, BLOCK]` and the running maximum, sum and rescale factors `[BLOCK]` each.
pub(crate) const fn flash_scratch_len(dim: usize) -> usize {
    dim.saturating_mul(BLOCK)
        .saturating_add(BLOCK * BLOCK + 3 * BLOCK)
}

/// What [`flash_block`] adds to the logit `s · k_j·q_i` of each key.
#[derive(Clone, Copy)]
pub(crate) enum KeyTerm<'a> {
    /// Nothing (exact attention).
    None,
    /// A per-key bias (RA's `−s·|k_j|²/2`), `[n_k]`.
    Bias(&'a [f32]),
    /// `−∞` for the keys a key padding mask marks, `[n_k]`.
    Mask(&'a [bool]),
}

/// Flash attention for one block of at most [`BLOCK`] query rows:
/// `out_i = Σ_j softmax_j(scale · q_i·k_j + term_j) v_j`, streaming over blocks of keys
/// with an online softmax per query (the tile of logits stays in L1).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn flash_block<I: Isa>(
    isa: I,
    (dim, value_dim): (usize, usize),
    scale: f32,
    q_block: &[f32],
    k: &[f32],
    v: &[f32],
    key_term: KeyTerm<'_>,
    out_block: &mut [f32],
    scratch: &mut [f32],
) {
    let rows_q = q_block.len() / dim.max(1);
    let mut rest = scratch;
    let q_packed = take(&mut rest, dim * BLOCK);
    let tile = take(&mut rest, BLOCK * BLOCK);
    let running_max = take(&mut rest, BLOCK);
    let running_sum = take(&mut rest, BLOCK);
    let rescale = take(&mut rest, BLOCK);
    // Qᵀ scaled by s: S_blockᵀ = K_block · (s·Qᵀ) needs no further scaling.
    q_packed.fill(0.0); // (columns past the block's last query stay defined)
    pack_transposed(q_block, dim, scale, q_packed, BLOCK, 0);
    running_max.fill(f32::NEG_INFINITY);
    running_sum.fill(0.0);
    out_block.fill(0.0);
    let mut block_max = [0.0f32; BLOCK];
    let key_mask = match key_term {
        KeyTerm::Mask(mask) => Some(mask),
        KeyTerm::None | KeyTerm::Bias(_) => None,
    };
    let blocks = key_blocks((k, v, key_mask), (dim, value_dim)).enumerate();
    for (block, (k_block, v_block, mask)) in blocks {
        // Sᵀ[j, i] = s · k_j·q_i
        let (rows_k, tile) = project_block(isa, k_block, dim, (q_packed, BLOCK), BLOCK, tile);
        if let KeyTerm::Bias(bias) = key_term {
            // − s·|k_j|²/2 (RA)
            for (row, &b) in rows_mut(tile, BLOCK).zip(bias.iter().skip(block * BLOCK)) {
                shift_row(row, b);
            }
        }
        // −∞ for masked keys; a block of masked keys only is skipped
        if !mask_rows(tile, BLOCK, mask) {
            continue;
        }
        // Online softmax per query (column): new maximum, rescale what came before.
        column_max(isa, tile, BLOCK, rows_q, &mut block_max);
        raise_running_max(running_max, &block_max, rescale, running_sum);
        for (out_row, &r) in rows_mut(out_block, value_dim).zip(rescale.iter()) {
            scale_row(isa, out_row, r);
        }
        // P = e^(Sᵀ − max), running_sum += Σ_j P
        column_exp_sum(isa, tile, BLOCK, rows_q, running_max, running_sum);
        // out += Pᵀ · V_block
        gemm(
            isa,
            (rows_q, value_dim, rows_k),
            (tile, 1, BLOCK),
            (v_block, value_dim),
            (out_block, value_dim),
            true,
        );
    }
    for (out_row, &sum) in rows_mut(out_block, value_dim).zip(running_sum.iter()) {
        scale_row(isa, out_row, 1.0 / sum);
    }
}

/// Blocked exact attention: [`flash_block`] over every block of queries.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn exact<I: Isa>(
    isa: I,
    shape: Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let dims = (shape.dim, shape.value_dim);
    let key_term = key_mask.map_or(KeyTerm::None, KeyTerm::Mask);
    for (q_block, out_block) in q
        .chunks(BLOCK * shape.dim)
        .zip(out.chunks_mut(BLOCK * shape.value_dim))
    {
        flash_block(
            isa,
            dims,
            shape.scale(),
            q_block,
            k,
            v,
            key_term,
            out_block,
            scratch,
        );
    }
}

/// Extra scratch of [`lara`] beyond the scalar workspace, for `columns = S + C'` (samples plus
/// landmarks): the packed `[d, columns]` matrix and a `[BLOCK, columns]` tile.
pub(crate) const fn lara_scratch_len(columns: usize, dim: usize) -> usize {
    columns.saturating_mul(dim.saturating_add(BLOCK))
}

/// The keys and values of `k`, `v` in blocks of [`BLOCK`] rows, with the block's slice of the
/// key padding mask (empty without a mask).
fn key_blocks<'k>(
    (k, v, key_mask): (&'k [f32], &'k [f32], Option<&'k [bool]>),
    (dim, value_dim): (usize, usize),
) -> impl Iterator<Item = (&'k [f32], &'k [f32], &'k [bool])> {
    let mask_blocks = key_mask
        .unwrap_or(&[])
        .chunks(BLOCK)
        .chain(core::iter::repeat(&[][..]));
    k.chunks(BLOCK * dim.max(1))
        .zip(v.chunks(BLOCK * value_dim.max(1)))
        .zip(mask_blocks)
        .map(|((k_block, v_block), mask)| (k_block, v_block, mask))
}

/// Sets the rows of masked keys of a `[keys, ld]` tile of log-features to `−∞`; `false` when
/// every key of the block is masked (the caller skips the block: its maximum is `−∞`).
fn mask_rows(tile: &mut [f32], ld: usize, mask: &[bool]) -> bool {
    if !mask.is_empty() && mask.iter().all(|&masked| masked) {
        return false;
    }
    for (row, _) in rows_mut(tile, ld).zip(mask).filter(|&(_, &masked)| masked) {
        row.fill(f32::NEG_INFINITY);
    }
    true
}

/// Blocked LARA key pass on a workspace whose samples `W` are built: per sample, online
/// `lseK_c = lse_j LK[c, j]` and `kv_c = Σ_j softmax_j(LK[c, j]) v_j` over the unmasked keys.
#[inline(always)]
pub(crate) fn lara_keys<I: Isa>(
    isa: I,
    shape: Shape,
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    ws: &mut Workspace<'_>,
    extra: &mut [f32],
) {
    let (dim, value_dim, scale) = (shape.dim, shape.value_dim, shape.scale());
    let samples = ws.samples();
    let mut rest = extra;
    let packed = take(&mut rest, dim * samples);
    let tile = take(&mut rest, BLOCK * samples);
    // s·Wᵀ [d, S]
    pack_transposed(ws.w, dim, scale, packed, samples, 0);
    ws.kv.fill(0.0);
    ws.key_lse.fill(f32::NEG_INFINITY);
    ws.key_sum.fill(0.0);
    for (k_block, v_block, mask) in key_blocks((k, v, key_mask), (dim, value_dim)) {
        // LK[c, j] = s · (W_c·k_j − |k_j|²/2), as a [keys, S] tile; −∞ for masked keys
        let (rows_k, tile) = project_block(isa, k_block, dim, (packed, samples), samples, tile);
        for (row, k_row) in rows_mut(tile, samples).zip(rows(k_block, dim)) {
            shift_row(row, scale * half_sq_norm(k_row));
        }
        if !mask_rows(tile, samples, mask) {
            continue;
        }
        column_max(isa, tile, samples, samples, ws.t_row);
        raise_running_max(ws.key_lse, ws.t_row, ws.logits, ws.key_sum);
        for (kv_row, &r) in rows_mut(ws.kv, value_dim).zip(ws.logits.iter()) {
            scale_row(isa, kv_row, r);
        }
        // P = e^(LK − max);  Σ_j P;  kv += Pᵀ · V_block
        column_exp_sum(isa, tile, samples, samples, ws.key_lse, ws.key_sum);
        gemm(
            isa,
            (samples, value_dim, rows_k),
            (tile, 1, samples),
            (v_block, value_dim),
            (ws.kv, value_dim),
            true,
        );
    }
    for ((kv_row, lse), &sum) in rows_mut(ws.kv, value_dim)
        .zip(ws.key_lse.iter_mut())
        .zip(ws.key_sum.iter())
    {
        // kv_c /= Σ;  lseK_c = max + ln Σ
        scale_row(isa, kv_row, 1.0 / sum);
        *lse += ln(sum);
    }
}

/// Blocked LARA query pass on a workspace whose key pass and densities (`bias`, `balance`) are
/// done: `mis-opt`'s query normaliser, then `out_i = Σ_c sniw[c, i] kv_c`. `S` samples, `C'`
/// landmarks; sample `c` belongs to component `c mod C'`.
#[inline(always)]
pub(crate) fn lara_queries<I: Isa>(
    isa: I,
    shape: Shape,
    weighting: Weighting,
    q: &[f32],
    out: &mut [f32],
    ws: &mut Workspace<'_>,
    extra: &mut [f32],
) {
    let (dim, value_dim, scale) = (shape.dim, shape.value_dim, shape.scale());
    let (count, samples) = (ws.components(), ws.samples());
    // [s·Wᵀ | s·q̄ᵀ or s·muᵀ] as one [d, S + C'] matrix: one product gives a block of queries
    // both its logits s·W_c·q_i and its α term.
    let ld = samples + count;
    let mut rest = extra;
    let packed = take(&mut rest, dim * ld);
    let tile = take(&mut rest, BLOCK * ld);
    pack_transposed(ws.w, dim, scale, packed, ld, 0);
    match weighting {
        Weighting::Optimal { .. } => pack_transposed(ws.q_bar, dim, scale, packed, ld, samples),
        Weighting::Biased => pack_transposed(ws.mu, dim, scale, packed, ld, samples),
        Weighting::BalanceHeuristic => {}
    }

    if let Weighting::Optimal { .. } = weighting {
        // lse_i (s · q̄_c·q_i), online over blocks of queries (column-wise)
        let (running_max, running_sum) = (&mut *ws.t_lse, prefix(ws.key_sum, count));
        running_max.fill(f32::NEG_INFINITY);
        running_sum.fill(0.0);
        let q_bar_packed = packed.get(samples..).unwrap_or_default();
        let (block_max, rescale) = (prefix(ws.t_row, count), prefix(ws.logits, count));
        for q_block in q.chunks(BLOCK * dim) {
            let (_, tile) = project_block(isa, q_block, dim, (q_bar_packed, ld), count, tile);
            column_max(isa, tile, count, count, block_max);
            raise_running_max(running_max, block_max, rescale, running_sum);
            column_exp_sum(isa, tile, count, count, running_max, running_sum);
        }
        for (t_lse, &sum) in running_max.iter_mut().zip(running_sum.iter()) {
            *t_lse += ln(sum);
        }
    }

    // Query pass: the tile holds [logits | α term] per query (just logits for mis-bh).
    let width = if matches!(weighting, Weighting::BalanceHeuristic) {
        samples
    } else {
        ld
    };
    for (q_block, out_block) in q.chunks(BLOCK * dim).zip(out.chunks_mut(BLOCK * value_dim)) {
        // s·W_c·q_i (and s·q̄_c·q_i or s·mu_c·q_i)
        let (rows_q, tile) = project_block(isa, q_block, dim, (packed, ld), width, tile);
        for (row, q_row) in rows_mut(tile, width).zip(rows(q_block, dim)) {
            let (row, alpha_row) = row.split_at_mut(samples.min(row.len()));
            // ℓ(q_i; W_c) + lseK_c − log P_c = s·W_c·q_i − s|q_i|²/2 + bias_c
            add_row(isa, row, ws.bias);
            shift_row(row, scale * half_sq_norm(q_row));
            let sum = match weighting {
                Weighting::Optimal { alpha_coeff } => {
                    // T[c, i] = e^(s·q̄_c·q_i − lse_i'(…))
                    exp_minus(isa, alpha_row, ws.t_lse);
                    let t_mean = sum_of(isa, alpha_row) / count.max(1) as f32;
                    // sniw ∝ α · e^(logit − max): the weight α multiplies instead of adding ln α
                    let m = max_of(isa, row);
                    exp_shifted_sum(isa, row, m);
                    // (a loop, not a closure: the intrinsics must inline into the entry)
                    let mut sum = 0.0;
                    for (group, balance) in rows_mut(row, count).zip(rows(ws.balance, count)) {
                        let alpha = (&*alpha_row, balance, alpha_coeff, t_mean);
                        sum += multiply_by_optimal_alpha(isa, group, alpha);
                    }
                    sum
                }
                Weighting::Biased => {
                    // log α = s · mu_c·q_i, for each group of C' samples
                    for group in rows_mut(row, count) {
                        add_row(isa, group, alpha_row);
                    }
                    let m = max_of(isa, row);
                    exp_shifted_sum(isa, row, m)
                }
                Weighting::BalanceHeuristic => {
                    let m = max_of(isa, row);
                    exp_shifted_sum(isa, row, m)
                }
            };
            scale_row(isa, row, 1.0 / sum);
        }
        // out_i = Σ_c sniw[c, i] kv_c
        gemm(
            isa,
            (rows_q, value_dim, samples),
            (tile, width, 1),
            (ws.kv, value_dim),
            (out_block, value_dim),
            false,
        );
    }
}

/// `x[c] *= α[c]` with `α[c] = max(bh_c + a·(T[c] − mean_c' T[c']), 1e-8)` for one group of
/// `C'` samples of one query; returns `Σ_c x[c]`.
#[inline(always)]
fn multiply_by_optimal_alpha<I: Isa>(
    isa: I,
    x: &mut [f32],
    (t_row, balance, alpha_coeff, t_mean): (&[f32], &[f32], f32, f32),
) -> f32 {
    let len = x.len().min(t_row.len()).min(balance.len());
    let (a, offset, floor) = (
        isa.splat(alpha_coeff),
        isa.splat(-alpha_coeff * t_mean),
        isa.splat(1e-8),
    );
    let mut acc = isa.splat(0.0);
    let mut c = 0;
    while c + I::LANES <= len {
        // SAFETY: c + LANES <= len of x, t_row and balance.
        unsafe {
            let t = isa.load(t_row.as_ptr().add(c));
            let alpha = isa.add(isa.mul_add(a, t, offset), isa.load(balance.as_ptr().add(c)));
            let weighted = isa.mul(isa.load(x.as_ptr().add(c)), isa.max(alpha, floor));
            isa.store(x.as_mut_ptr().add(c), weighted);
            acc = isa.add(acc, weighted);
        }
        c += I::LANES;
    }
    let mut sum = isa.reduce_add(acc);
    let tail = x.iter_mut().zip(t_row).zip(balance).take(len).skip(c);
    for ((x, &t), &bh) in tail {
        *x *= (bh + alpha_coeff * (t - t_mean)).max(1e-8);
        sum += *x;
    }
    sum
}

/// `Σ_c row[c]`.
#[inline(always)]
fn sum_of<I: Isa>(isa: I, row: &[f32]) -> f32 {
    let mut acc = isa.splat(0.0);
    let mut chunks = row.chunks_exact(I::LANES.max(1));
    for chunk in &mut chunks {
        // SAFETY: the chunk holds exactly LANES floats.
        acc = isa.add(acc, unsafe { isa.load(chunk.as_ptr()) });
    }
    chunks
        .remainder()
        .iter()
        .fold(isa.reduce_add(acc), |s, &x| s + x)
}

/// Extra scratch of [`rfa_positive`]: the packed projection `[d, S]` and a `[BLOCK, S]` tile.
pub(crate) const fn rfa_scratch_len(features: usize, dim: usize) -> usize {
    features.saturating_mul(dim.saturating_add(BLOCK))
}

/// Blocked Performer / RFA positive features (the official `favorp_projection` +
/// `linear_attention`), with the key state in `state` and the tiles in `extra`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn rfa_positive<I: Isa>(
    isa: I,
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    out: &mut [f32],
    state: &mut FeatureState<'_>,
    extra: &mut [f32],
) {
    let (dim, value_dim) = (shape.dim, shape.value_dim);
    let scales = FeatureScales::new(shape, features);
    let mut rest = extra;
    let omega_packed = take(&mut rest, dim * features);
    let tile = take(&mut rest, BLOCK * features);
    // d^-1/4 · Ωᵀ [d, S]
    pack_transposed(omega, dim, scales.data, omega_packed, features, 0);

    // Key pass: kv_r = Σ_m e^(B[m,r] − s|k_m|²/2 − M) v_m, k_sum_r = Σ_m e^(…), relative to the
    // running maximum M of B.
    let FeatureState {
        kv, k_sum, v_sum, ..
    } = state;
    kv.fill(0.0);
    k_sum.fill(0.0);
    v_sum.fill(0.0);
    let mut running_max = f32::NEG_INFINITY;
    for (k_block, v_block, mask) in key_blocks((k, v, key_mask), (dim, value_dim)) {
        // B[m, r] = d^-1/4 k_m·ω_r; −∞ for masked keys (φk = 0)
        let (rows_k, tile) =
            project_block(isa, k_block, dim, (omega_packed, features), features, tile);
        if !mask_rows(tile, features, mask) {
            continue;
        }
        let block_max = max_of(isa, tile);
        if block_max > running_max {
            let rescale = exp(Scalar, running_max - block_max);
            scale_row(isa, kv, rescale);
            scale_row(isa, k_sum, rescale);
            running_max = block_max;
        }
        for (row, k_row) in rows_mut(tile, features).zip(rows(k_block, dim)) {
            // e^(B[m, r] − s|k_m|²/2 − M);  k_sum += that row
            exp_shifted_sum(
                isa,
                row,
                scales.half_norm * half_sq_norm(k_row) + running_max,
            );
            add_row(isa, k_sum, row);
        }
        let unmasked_values = rows(v_block, value_dim).zip(masked_keys(Some(mask)));
        for (v_row, _) in unmasked_values.filter(|&(_, masked)| !masked) {
            add_row(isa, v_sum, v_row);
        }
        // kv += Eᵀ · V_block
        gemm(
            isa,
            (features, value_dim, rows_k),
            (tile, 1, features),
            (v_block, value_dim),
            (kv, value_dim),
            true,
        );
    }
    // Σ_m φk[m,r] v_m = S^-1/2 kv_r + 1e-4 Σ_m v_m;  Σ_m φk[m,r] = S^-1/2 k_sum_r + 1e-4 n_k
    for kv_row in rows_mut(kv, value_dim) {
        scale_add(isa, kv_row, scales.ratio, FEATURE_FLOOR, v_sum);
    }
    let key_floor = FEATURE_FLOOR * unmasked_count(shape, key_mask) as f32;
    for s in k_sum.iter_mut() {
        *s = scales.ratio * *s + key_floor;
    }

    // Query pass.
    for (q_block, out_block) in q.chunks(BLOCK * dim).zip(out.chunks_mut(BLOCK * value_dim)) {
        // A[i, r] = d^-1/4 q_i·ω_r
        let (_, tile) = project_block(isa, q_block, dim, (omega_packed, features), features, tile);
        for (row, q_row) in rows_mut(tile, features).zip(rows(q_block, dim)) {
            // φq[i, r] = S^-1/2 e^(A[i,r] − s|q_i|²/2 − max_r' A[i,r']) + 1e-4
            let stabiliser = max_of(isa, row) + scales.half_norm * half_sq_norm(q_row);
            exp_shifted_sum(isa, row, stabiliser);
            affine_row(isa, row, scales.ratio, FEATURE_FLOOR);
        }
        linear_attention_block(isa, (tile, features), (kv, k_sum), value_dim, out_block);
    }
}

/// `φ(x_i) = S^-1/2 e^(s|x_i|²/2 − max_h) [sin A[i, ·], cos A[i, ·]]` for a block of rows, into
/// `tile [rows, 2S]` (a function, not a closure: everything under a `#[target_feature]` entry
/// must be inlined into it, and closures are not reliably).
#[inline(always)]
fn fourier_block<I: Isa>(
    isa: I,
    (dim, features): (usize, usize),
    scales: FeatureScales,
    omega_packed: &[f32],
    block: &[f32],
    max_h: f32,
    tile: &mut [f32],
) {
    let total = 2 * features;
    // A[i, r] = d^-1/4 x_i·ω_r, into the first S columns of each row
    gemm(
        isa,
        (block.len() / dim.max(1), features, dim),
        (block, dim, 1),
        (omega_packed, features),
        (tile, total),
        false,
    );
    for (row, x) in rows_mut(tile, total).zip(rows(block, dim)) {
        let magnitude = scales.ratio * exp(Scalar, scales.half_norm * half_sq_norm(x) - max_h);
        let (sines, cosines) = row.split_at_mut(features.min(row.len()));
        for (sine, cosine) in sines.iter_mut().zip(cosines.iter_mut()) {
            let (sin, cos) = libm::sincosf(*sine);
            *sine = magnitude * sin;
            *cosine = magnitude * cos;
        }
    }
}

/// `tile [rows, width] = block [rows, d] · packed [d, ..]` (leading dimension `ld`, first
/// `width` columns): the projections of a block of rows onto every landmark / feature / query.
/// Returns the number of rows and the used part of the tile.
#[inline(always)]
fn project_block<'t, I: Isa>(
    isa: I,
    block: &[f32],
    dim: usize,
    (packed, ld): (&[f32], usize),
    width: usize,
    tile: &'t mut [f32],
) -> (usize, &'t mut [f32]) {
    let rows = block.len() / dim.max(1);
    let tile = prefix(tile, rows * width);
    gemm(
        isa,
        (rows, width, dim),
        (block, dim, 1),
        (packed, ld),
        (&mut *tile, width),
        false,
    );
    (rows, tile)
}

/// The linear-attention output of a block of queries from their features `phi [rows, F]`:
/// `out_i = φ_i · kv / max(φ_i · k_sum, 1e-2)` (the official `linear_attention`).
#[inline(always)]
fn linear_attention_block<I: Isa>(
    isa: I,
    (phi, features): (&[f32], usize),
    (kv, k_sum): (&[f32], &[f32]),
    value_dim: usize,
    out_block: &mut [f32],
) {
    let rows_q = phi.len() / features.max(1);
    // num_i = φ_i · kv
    gemm(
        isa,
        (rows_q, value_dim, features),
        (phi, features, 1),
        (kv, value_dim),
        (&mut *out_block, value_dim),
        false,
    );
    for (out_row, phi_row) in rows_mut(out_block, value_dim).zip(rows(phi, features)) {
        // out_i = num_i / max(φ_i · k_sum, 1e-2)
        let denominator = dot(isa, phi_row, k_sum);
        scale_row(isa, out_row, 1.0 / denominator.max(DENOMINATOR_FLOOR));
    }
}

/// `row ← a · row + b`.
#[inline(always)]
fn affine_row<I: Isa>(isa: I, row: &mut [f32], a: f32, b: f32) {
    let (a_v, b_v) = (isa.splat(a), isa.splat(b));
    let mut chunks = row.chunks_exact_mut(I::LANES.max(1));
    for chunk in &mut chunks {
        // SAFETY: the chunk holds exactly LANES floats.
        unsafe {
            isa.store(
                chunk.as_mut_ptr(),
                isa.mul_add(isa.load(chunk.as_ptr()), a_v, b_v),
            )
        };
    }
    for x in chunks.into_remainder() {
        *x = a * *x + b;
    }
}

/// Extra scratch of [`ra`]: a block of proposals `[BLOCK, d]` and the flash tiles.
pub(crate) const fn ra_scratch_len(dim: usize) -> usize {
    dim.saturating_mul(BLOCK)
        .saturating_add(flash_scratch_len(dim))
}

/// Blocked RA: per block of queries, the proposals `W_i` (the mean, then `perturb` adds the
/// noise and returns the sampled key), then [`flash_block`] with the key bias `s·|k_j|²/2`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn ra<I: Isa>(
    isa: I,
    shape: Shape,
    mean: SampledMean,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    stats: &KeyStats<'_>,
    extra: &mut [f32],
    perturb: &mut dyn FnMut(&mut [f32], &[f32]) -> usize,
) {
    let (dim, value_dim, scale) = (shape.dim, shape.value_dim, shape.scale());
    let mut flash_scratch = extra;
    let w_block = take(&mut flash_scratch, BLOCK * dim);
    for (q_block, out_block) in q.chunks(BLOCK * dim).zip(out.chunks_mut(BLOCK * value_dim)) {
        let w_block = prefix(w_block, q_block.len());
        match mean {
            // mu_i = q_i + k̄
            SampledMean::KeyAverage => {
                for w_row in rows_mut(w_block, dim) {
                    copy(w_row, stats.key_mean);
                }
            }
            // mu_i = q_i + Σ_j softmax_j(s · q_i·k_j) k_j
            SampledMean::AttentionWeighted => {
                flash_block(
                    isa,
                    (dim, dim),
                    scale,
                    q_block,
                    k,
                    k,
                    KeyTerm::None,
                    w_block,
                    flash_scratch,
                );
            }
            // mu_i = q_i + k_{J_i}: the key is added once drawn
            SampledMean::Key => w_block.fill(0.0),
        }
        add_row(isa, w_block, q_block);
        for (w_row, q_row) in rows_mut(w_block, dim).zip(rows(q_block, dim)) {
            // W_i = mu_i + eps_i
            let key_index = perturb(w_row, q_row);
            if mean == SampledMean::Key
                && let Some(k_row) = rows(k, dim).nth(key_index)
            {
                add_row(isa, w_row, k_row);
            }
        }
        // out_i = Σ_j softmax_j(s · W_i·k_j − s·|k_j|²/2) v_j
        flash_block(
            isa,
            (dim, value_dim),
            scale,
            w_block,
            k,
            v,
            KeyTerm::Bias(stats.key_half_norms),
            out_block,
            flash_scratch,
        );
    }
}

/// Extra scratch of [`rfa_trigonometric`]: the packed projection `[d, S]` and a `[BLOCK, 2S]`
/// tile.
pub(crate) const fn trigonometric_scratch_len(features: usize, dim: usize) -> usize {
    features.saturating_mul(dim.saturating_add(2 * BLOCK))
}

/// Blocked RFA with trigonometric features (the official `fourier_projection` +
/// `linear_attention`): projections and sums as matrix products, `sin`/`cos` per element.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn rfa_trigonometric<I: Isa>(
    isa: I,
    shape: Shape,
    omega: &[f32],
    features: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_mask: Option<&[bool]>,
    out: &mut [f32],
    state: &mut FeatureState<'_>,
    extra: &mut [f32],
) {
    let (dim, value_dim, total) = (shape.dim, shape.value_dim, 2 * features);
    let scales = FeatureScales::new(shape, features);
    let mut rest = extra;
    let omega_packed = take(&mut rest, dim * features);
    let tile = take(&mut rest, BLOCK * total);
    // d^-1/4 · Ωᵀ [d, S]
    pack_transposed(omega, dim, scales.data, omega_packed, features, 0);
    let FeatureState { kv, k_sum, .. } = state;
    kv.fill(0.0);
    k_sum.fill(0.0);
    let key_max = max_scaled_half_norm(scales, k, dim, key_mask);
    for (k_block, v_block, mask) in key_blocks((k, v, key_mask), (dim, value_dim)) {
        let rows_k = k_block.len() / dim.max(1);
        let tile = prefix(tile, rows_k * total);
        fourier_block(
            isa,
            (dim, features),
            scales,
            omega_packed,
            k_block,
            key_max,
            tile,
        );
        // φ(k_m) = 0 for masked keys
        for (row, _) in rows_mut(tile, total)
            .zip(mask)
            .filter(|&(_, &masked)| masked)
        {
            row.fill(0.0);
        }
        for row in rows(tile, total) {
            add_row(isa, k_sum, row);
        }
        // kv += Φ_kᵀ · V_block
        gemm(
            isa,
            (total, value_dim, rows_k),
            (tile, 1, total),
            (v_block, value_dim),
            (kv, value_dim),
            true,
        );
    }
    let query_max = max_scaled_half_norm(scales, q, dim, None);
    for (q_block, out_block) in q.chunks(BLOCK * dim).zip(out.chunks_mut(BLOCK * value_dim)) {
        let rows_q = q_block.len() / dim.max(1);
        let tile = prefix(tile, rows_q * total);
        fourier_block(
            isa,
            (dim, features),
            scales,
            omega_packed,
            q_block,
            query_max,
            tile,
        );
        linear_attention_block(isa, (tile, total), (kv, k_sum), value_dim, out_block);
    }
}
