//! The `LinearRA` layer, streaming: landmarks from means of the tokens, then per head a key
//! pass and a query pass over blocks of tokens projected as they are needed.

use super::linear::{HeadLinear, OutputProjection, Third, linear_layer_norm, project};
use super::{
    Config, Generator, LaraConfig, Layer, Layout, Mixing, PoolModule, ProposalGen, Tokens,
};
use crate::error::{Dim, Error};
use crate::inputs::{Noise, Qkv};
use crate::lara::{self, Params, Weighting, Workspace, segment_lens, write_segment_means};
use crate::math::{axpy, dot, ln, softmax_in_place};
use crate::pool2d::write_pool;
use crate::shape::Shape;
use crate::simd::tile::BLOCK;
use crate::simd::{self, Available};
use crate::slices::{copy, part, prefix, rows, rows_mut, take};

/// Tokens per block of the passes: the blocked kernels' 32, or 8 for the scalar kernels, which
/// take one token at a time anyway (less scratch on a microcontroller).
const fn block_rows(tiles: bool) -> usize {
    if tiles { BLOCK } else { 8 }
}

/// The number of landmarks `C'`: `min(C, n)` segments of a sequence, `s²` cells of a grid,
/// `s = ⌊√C⌋`.
pub(super) const fn landmark_count(lara: &LaraConfig, layout: Layout) -> usize {
    match layout {
        Layout::Sequence(n) => {
            if lara.landmarks < n {
                lara.landmarks
            } else {
                n
            }
        }
        Layout::Grid { .. } => {
            let side = lara.landmarks.isqrt();
            side.saturating_mul(side)
        }
    }
}

/// Scratch of [`forward`]: LARA's workspace for one head of `C'` landmarks, the pooled tokens
/// `[C', dim]` with the fraction of unmasked tokens per segment, two rows of `dim`, the mixing's
/// `[C', d + 2]`, the `'dense'` generators' landmarks of every head `2·[C', dim]`, two blocks of
/// `[B, d]` and (blocked kernels) two packed weights `[dim, d]`.
pub(super) const fn scratch_len(
    config: &Config,
    lara: &LaraConfig,
    layout: Layout,
    tiles: bool,
) -> usize {
    let (dim, d) = (config.dim, config.head_dim());
    let count = landmark_count(lara, layout);
    let samples = lara.proposals.samples(count);
    let workspace = lara::workspace_len(Shape::self_attention(1, d), count, samples, tiles);
    let landmarks = count
        .saturating_mul(dim.saturating_add(d).saturating_add(3))
        .saturating_add(dim.saturating_mul(2));
    let dense = if dense_generator(lara, layout) {
        count.saturating_mul(dim).saturating_mul(2)
    } else {
        0
    };
    let blocks = block_rows(tiles).saturating_mul(d).saturating_mul(2);
    let packed = if tiles {
        dim.saturating_mul(d).saturating_mul(2)
    } else {
        0
    };
    workspace
        .saturating_add(landmarks)
        .saturating_add(dense)
        .saturating_add(blocks)
        .saturating_add(packed)
}

/// Whether the landmarks come from `'dense'` generators, computed for every head at once.
const fn dense_generator(lara: &LaraConfig, layout: Layout) -> bool {
    matches!(
        (layout, lara.generator, lara.pool_module),
        (Layout::Grid { .. }, ProposalGen::Pool, PoolModule::Dense)
    )
}

/// Checks what the layout adds to the configuration; returns `C'`.
pub(super) fn check(lara: &LaraConfig, layout: Layout) -> Result<usize, Error> {
    if let (Layout::Grid { .. }, ProposalGen::Adaptive1d) = (layout, lara.generator) {
        return Err(Error::InvalidConfig(
            "adaptive-1d takes a sequence, not a grid",
        ));
    }
    match landmark_count(lara, layout) {
        0 => Err(Error::ZeroDimension(Dim::Queries)),
        count => Ok(count),
    }
}

/// A checked `LinearRA` call.
pub(super) struct Args<'a> {
    pub(super) layer: &'a Layer<'a>,
    pub(super) lara: LaraConfig,
    pub(super) tokens: &'a Tokens<'a>,
    /// The number of landmarks `C'`.
    pub(super) count: usize,
}

/// The scratch of [`forward`] beyond LARA's workspace.
struct Buffers<'a> {
    /// Means of the tokens, `[C', dim]`: segment means (masked tokens as zeros) or pooled cells.
    x_bar: &'a mut [f32],
    /// Per landmark, the fraction of its tokens that are not masked (the weight of the bias in
    /// a mean of projections), `[C']`.
    frac: &'a mut [f32],
    /// Rows of `dim` for one token's (or mean's) projections.
    row: &'a mut [f32],
    generated: &'a mut [f32],
    /// The mixing's new key landmarks `[C', d]`, logits `[C']` and `log(‖v̄_c‖ + 1e-4)` `[C']`.
    mixed: &'a mut [f32],
    logits: &'a mut [f32],
    v_log_norm: &'a mut [f32],
    /// `'dense'`: the query and key landmarks of every head, `[C', dim]` each.
    dense_q: &'a mut [f32],
    dense_k: &'a mut [f32],
    /// Blocks of projected tokens `[B, d]`: keys and values, or queries and outputs.
    block_a: &'a mut [f32],
    block_b: &'a mut [f32],
    /// Packed weights `[dim, d]` for the blocked products (empty for the scalar kernels).
    packed_a: &'a mut [f32],
    packed_b: &'a mut [f32],
}

/// The `LinearRA` layer on checked arguments and a scratch of [`scratch_len`].
pub(super) fn forward<N: Noise>(
    backend: Available,
    args: &Args<'_>,
    mut noise: N,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let Args {
        layer,
        lara,
        tokens,
        count,
    } = *args;
    let (config, weights) = (&layer.config, &layer.weights);
    let (dim, heads, d) = (config.dim, config.heads, config.head_dim());
    let n = tokens.layout.tokens();
    let head_shape = Shape::self_attention(n, d);
    let tiles = backend.backend().is_blocked();
    let samples = lara::sample_count(&params_of(&lara, count), count, N::SAMPLED);
    let workspace_len = lara::workspace_len(head_shape, count, samples, tiles);
    let (workspace, mut rest) = scratch.split_at_mut(workspace_len.min(scratch.len()));
    let Ok((mut ws, lara_tiles)) = Workspace::split(workspace, count, samples, head_shape, tiles)
    else {
        return; // (unreachable: the caller checked the scratch)
    };
    let block = block_rows(tiles);
    let packed_len = if tiles { dim * d } else { 0 };
    let dense = dense_generator(&lara, tokens.layout);
    let dense_len = if dense { count * dim } else { 0 };
    let mut buffers = Buffers {
        x_bar: take(&mut rest, count * dim),
        frac: take(&mut rest, count),
        row: take(&mut rest, dim),
        generated: take(&mut rest, dim),
        mixed: take(&mut rest, count * d),
        logits: take(&mut rest, count),
        v_log_norm: take(&mut rest, count),
        dense_q: take(&mut rest, dense_len),
        dense_k: take(&mut rest, dense_len),
        block_a: take(&mut rest, block * d),
        block_b: take(&mut rest, block * d),
        packed_a: take(&mut rest, packed_len),
        packed_b: take(&mut rest, packed_len),
    };
    let params = params_of(&lara, count);

    // out_t = b_proj; every head adds o_t,h · W_proj[:, h·d..]ᵀ
    for out_row in rows_mut(out, dim) {
        copy(out_row, weights.proj_bias);
    }
    // x̄: the means every non-adaptive landmark is a projection of
    if lara.generator != ProposalGen::Adaptive1d {
        mean_tokens(tokens, dim, count, &mut buffers);
    }
    if dense {
        dense_landmarks(layer, &mut buffers);
    }
    // Padded tokens of a sequence have q = k = v = 0 (the official 1-D path zeroes them).
    let zeroed = match tokens.layout {
        Layout::Sequence(_) => tokens.key_mask,
        Layout::Grid { .. } => None,
    };
    for head in 0..heads {
        let q_lin = HeadLinear::qkv(weights, Third::Queries, head, (d, dim));
        let k_lin = HeadLinear::qkv(weights, Third::Keys, head, (d, dim));
        let v_lin = HeadLinear::qkv(weights, Third::Values, head, (d, dim));

        // q̄, k̄ (k̄ parked in the first C' rows of W), then mu and W
        let landmarks = Landmarks {
            layer,
            lara: &lara,
            head,
            queries: q_lin,
            keys: k_lin,
            values: v_lin,
        };
        match lara.generator {
            ProposalGen::Adaptive1d => landmarks.adaptive(tokens, zeroed, &mut ws, &mut buffers),
            _ if dense => landmarks.dense_columns(&mut ws, &buffers),
            _ => landmarks.projected_means(backend, tokens.layout, &mut ws, &mut buffers),
        }
        if let (Layout::Grid { .. }, Mixing::Mixed | Mixing::VMixed) = (tokens.layout, lara.mixing)
        {
            landmarks.mix_keys(&mut ws, &mut buffers);
        }
        ws.sample_proposals(d, &params, (&mut noise, heads, head));

        // Key pass: lseK_c and kv_c over blocks of projected keys and values
        if tiles {
            k_lin.pack(dim, buffers.packed_a);
            v_lin.pack(dim, buffers.packed_b);
        }
        ws.begin_keys();
        for (start, x_block) in blocks(tokens.x, dim, block) {
            let rows_x = x_block.len() / dim.max(1);
            let k_block = prefix(buffers.block_a, rows_x * d);
            let v_block = prefix(buffers.block_b, rows_x * d);
            project(backend, (x_block, dim), k_lin, buffers.packed_a, k_block);
            project(backend, (x_block, dim), v_lin, buffers.packed_b, v_block);
            let key_mask = tokens.key_mask.and_then(|m| m.get(start..start + rows_x));
            let keys = Qkv {
                shape: Shape::self_attention(rows_x, d),
                q: k_block,
                k: k_block,
                v: v_block,
                key_mask,
            };
            ws.push_keys(backend, &keys, lara_tiles);
        }
        ws.finish_keys(d);
        ws.proposal_log_density(backend, head_shape, params.weighting, &mut *lara_tiles);

        // Query pass: mis-opt's normaliser of T, then the outputs, projected block by block
        if tiles {
            q_lin.pack(dim, buffers.packed_a);
            OutputProjection::pack(weights.proj_weight, (head * d, d), dim, buffers.packed_b);
        }
        if let Weighting::Optimal { .. } = params.weighting {
            ws.begin_normaliser();
            for (start, x_block) in blocks(tokens.x, dim, block) {
                let queries = project_queries(
                    backend,
                    (start, x_block, dim),
                    (q_lin, buffers.packed_a),
                    zeroed,
                    buffers.block_a,
                );
                ws.push_normaliser(backend, &queries, lara_tiles);
            }
            ws.finish_normaliser();
        }
        for (start, x_block) in blocks(tokens.x, dim, block) {
            let queries = project_queries(
                backend,
                (start, x_block, dim),
                (q_lin, buffers.packed_a),
                zeroed,
                buffers.block_a,
            );
            let rows_x = queries.shape.queries;
            let o_block = prefix(buffers.block_b, rows_x * d);
            ws.push_queries(backend, &queries, params.weighting, o_block, lara_tiles);
            let out_block = out
                .get_mut(start * dim..(start + rows_x) * dim)
                .unwrap_or_default();
            let projection = OutputProjection {
                o: o_block,
                weight: weights.proj_weight,
                columns: (head * d, d),
                packed: buffers.packed_b,
                out: out_block,
            };
            simd::run(backend, projection);
        }
    }
}

/// LARA's parameters for `C'` landmarks (the landmarks themselves are written in place).
fn params_of(lara: &LaraConfig, count: usize) -> Params<'static> {
    Params::segment_means(count, lara.weighting)
        .with_proposals(lara.proposals)
        .with_noise_scale(lara.noise_scale)
}

/// The blocks of `block` tokens of `x [n, dim]`, with the index of their first token.
fn blocks(x: &[f32], dim: usize, block: usize) -> impl Iterator<Item = (usize, &[f32])> {
    x.chunks((block * dim).max(1))
        .enumerate()
        .map(move |(i, chunk)| (i * block, chunk))
}

/// The queries of a block of tokens, projected into `block_a` (padded ones zeroed), as the
/// inputs of a query pass.
fn project_queries<'b>(
    backend: Available,
    (start, x_block, dim): (usize, &[f32], usize),
    (q_lin, packed): (HeadLinear<'_>, &[f32]),
    zeroed: Option<&[bool]>,
    q_block: &'b mut [f32],
) -> Qkv<'b> {
    let d = q_lin.weight.len() / dim.max(1);
    let rows_x = x_block.len() / dim.max(1);
    let q_block = prefix(q_block, rows_x * d);
    project(backend, (x_block, dim), q_lin, packed, &mut *q_block);
    if let Some(mask) = zeroed.and_then(|m| m.get(start..start + rows_x)) {
        for (q_row, _) in rows_mut(q_block, d)
            .zip(mask)
            .filter(|(_, masked)| **masked)
        {
            q_row.fill(0.0);
        }
    }
    let q_block: &[f32] = q_block;
    Qkv {
        shape: Shape::self_attention(rows_x, d),
        q: q_block,
        k: &[],
        v: &[],
        key_mask: None,
    }
}

/// `x̄` and the unmasked fraction per landmark: segment means of a sequence (padded tokens as
/// zeros) or the `s × s` pooled cells of a grid.
fn mean_tokens(tokens: &Tokens<'_>, dim: usize, count: usize, buffers: &mut Buffers<'_>) {
    match tokens.layout {
        Layout::Sequence(n) => {
            write_segment_means(tokens.x, tokens.key_mask, dim, count, buffers.x_bar);
            let mut unmasked = tokens
                .key_mask
                .unwrap_or(&[])
                .iter()
                .map(|&masked| !masked)
                .chain(core::iter::repeat(true));
            for (frac, len) in buffers.frac.iter_mut().zip(segment_lens(n, count)) {
                let kept = (&mut unmasked).take(len).filter(|&kept| kept).count();
                *frac = kept as f32 / len as f32;
            }
        }
        Layout::Grid { height, width } => {
            let side = count.isqrt(); // count = s²
            write_pool(tokens.x, (height, width), dim, (side, side), buffers.x_bar);
            buffers.frac.fill(1.0);
        }
    }
}

/// `'dense'`: the landmarks of every head at once, `LayerNorm(G (W x̄_c + b) + g)` over all `dim`
/// channels (channel `j·d + e` is head `j`'s `e`), for the queries and the keys.
fn dense_landmarks(layer: &Layer<'_>, buffers: &mut Buffers<'_>) {
    let (config, weights) = (&layer.config, &layer.weights);
    let dim = config.dim;
    let (Some(q_gen), Some(k_gen)) = (weights.q_bar_gen, weights.k_bar_gen) else {
        return; // (unreachable: Layer::new checked the generators)
    };
    for (third, gen_, dense) in [
        (Third::Queries, q_gen, &mut *buffers.dense_q),
        (Third::Keys, k_gen, &mut *buffers.dense_k),
    ] {
        // every head's projection: the rows [third·dim, (third+1)·dim) of qkv.weight
        let all_heads = HeadLinear::qkv(weights, third, 0, (dim, dim));
        for (x_bar, landmark) in rows(buffers.x_bar, dim).zip(rows_mut(dense, dim)) {
            all_heads.apply_row(x_bar, 1.0, buffers.row);
            linear_layer_norm(buffers.row, gen_.linear(), gen_.norm(), landmark);
        }
    }
}

/// One head's landmark generator.
struct Landmarks<'l> {
    layer: &'l Layer<'l>,
    lara: &'l LaraConfig,
    head: usize,
    /// The head's query, key and value maps.
    queries: HeadLinear<'l>,
    keys: HeadLinear<'l>,
    values: HeadLinear<'l>,
}

impl Landmarks<'_> {
    /// `q̄`, `k̄` from the means `x̄`: `q̄_c = W_q x̄_c + frac_c · b_q` (the mean of the
    /// projections, one blocked product for all landmarks), then on a grid with `'pool'` the
    /// generator's `Linear` + `LayerNorm` (`'light'`: per head, `d` channels).
    fn projected_means(
        &self,
        backend: Available,
        layout: Layout,
        ws: &mut Workspace<'_>,
        buffers: &mut Buffers<'_>,
    ) {
        let config = &self.layer.config;
        let (dim, d) = (config.dim, config.head_dim());
        let count = ws.components();
        let generators = match (layout, self.lara.generator) {
            (Layout::Grid { .. }, ProposalGen::Pool) => {
                (self.layer.weights.q_bar_gen).zip(self.layer.weights.k_bar_gen)
            }
            _ => None,
        };
        let k_bar = prefix(ws.w, count * d);
        for (linear, landmarks, generator) in [
            (self.queries, &mut *ws.q_bar, generators.map(|g| g.0)),
            (self.keys, k_bar, generators.map(|g| g.1)),
        ] {
            // W x̄_c for every landmark, then + frac_c · b
            let unbiased = HeadLinear {
                bias: None,
                ..linear
            };
            if backend.backend().is_blocked() {
                linear.pack(dim, buffers.packed_a);
            }
            project(
                backend,
                (buffers.x_bar, dim),
                unbiased,
                buffers.packed_a,
                &mut *landmarks,
            );
            if let Some(bias) = linear.bias {
                for (landmark, &frac) in rows_mut(landmarks, d).zip(buffers.frac.iter()) {
                    axpy(frac, bias, landmark);
                }
            }
            if let Some(gen_) = generator {
                // q̄_c = LayerNorm(G q̃_c + g)
                for landmark in rows_mut(landmarks, d) {
                    let pooled = prefix(buffers.row, d);
                    copy(pooled, landmark);
                    linear_layer_norm(pooled, gen_.linear(), gen_.norm(), landmark);
                }
            }
        }
    }

    /// `'dense'`: this head's columns `[h·d, (h+1)·d)` of every head's landmarks.
    fn dense_columns(&self, ws: &mut Workspace<'_>, buffers: &Buffers<'_>) {
        let config = &self.layer.config;
        let (dim, d) = (config.dim, config.head_dim());
        let k_bar = prefix(ws.w, ws.q_bar.len());
        for (landmarks, dense) in [
            (&mut *ws.q_bar, &*buffers.dense_q),
            (k_bar, &*buffers.dense_k),
        ] {
            for (landmark, all_heads) in rows_mut(landmarks, d).zip(rows(dense, dim)) {
                copy(landmark, part(all_heads, config.heads, self.head));
            }
        }
    }

    /// `-mixed` / `-vmixed`: `k̄_p ← Σ_c softmax_c(s · k̄_p·k̄_c [+ log(‖v̄_c‖ + 1e-4)]) k̄_c`.
    fn mix_keys(&self, ws: &mut Workspace<'_>, buffers: &mut Buffers<'_>) {
        let config = &self.layer.config;
        let d = config.head_dim();
        let count = ws.components();
        let scale = 1.0 / libm::sqrtf(d as f32);
        let k_bar = prefix(ws.w, count * d);
        buffers.v_log_norm.fill(0.0);
        if self.lara.mixing == Mixing::VMixed {
            // v̄_c = W_v x̄_c + b_v (the pooled values);  log(‖v̄_c‖₂ + 1e-4)
            let v_bar = prefix(buffers.row, d);
            for (x_bar, log_norm) in
                rows(buffers.x_bar, config.dim).zip(buffers.v_log_norm.iter_mut())
            {
                self.values.apply_row(x_bar, 1.0, v_bar);
                *log_norm = ln(libm::sqrtf(dot(v_bar, v_bar)) + 1e-4);
            }
        }
        for (k_p, mixed) in rows(k_bar, d).zip(rows_mut(buffers.mixed, d)) {
            // K_pc = s · k̄_p·k̄_c (+ log ‖v̄_c‖)
            for ((logit, k_c), &log_norm) in buffers
                .logits
                .iter_mut()
                .zip(rows(k_bar, d))
                .zip(buffers.v_log_norm.iter())
            {
                *logit = scale * dot(k_p, k_c) + log_norm;
            }
            softmax_in_place(buffers.logits);
            mixed.fill(0.0);
            for (&weight, k_c) in buffers.logits.iter().zip(rows(k_bar, d)) {
                axpy(weight, k_c, mixed);
            }
        }
        copy(k_bar, buffers.mixed);
    }

    /// `adaptive-1d`: `q̄_c` = the mean over segment `c` of `LayerNorm(Linear(q_t))` (padded
    /// tokens with `q_t = 0`), likewise `k̄`, token by token.
    fn adaptive(
        &self,
        tokens: &Tokens<'_>,
        zeroed: Option<&[bool]>,
        ws: &mut Workspace<'_>,
        buffers: &mut Buffers<'_>,
    ) {
        let config = &self.layer.config;
        let (dim, d) = (config.dim, config.head_dim());
        let count = ws.components();
        let (Some(q_gen), Some(k_gen)) =
            (self.layer.weights.q_bar_gen, self.layer.weights.k_bar_gen)
        else {
            return; // (unreachable: Layer::new checked the generators)
        };
        let k_bar = prefix(ws.w, count * d);
        let n = tokens.layout.tokens();
        for (linear, landmarks, gen_) in [
            (self.queries, &mut *ws.q_bar, q_gen),
            (self.keys, k_bar, k_gen),
        ] {
            let mut x_rows = rows(tokens.x, dim).enumerate();
            for (len, mean) in segment_lens(n, count).zip(rows_mut(landmarks, d)) {
                mean.fill(0.0);
                for (t, x_row) in (&mut x_rows).take(len) {
                    let projected = prefix(buffers.row, d);
                    let padded = zeroed.and_then(|m| m.get(t)).copied().unwrap_or(false);
                    if padded {
                        projected.fill(0.0);
                    } else {
                        linear.apply_row(x_row, 1.0, projected);
                    }
                    // q2_t = LayerNorm(Linear(q_t))
                    let generated = prefix(buffers.generated, d);
                    linear_layer_norm(projected, gen_.linear(), gen_.norm(), generated);
                    axpy(1.0, generated, mean);
                }
                for m in mean.iter_mut() {
                    *m /= len as f32;
                }
            }
        }
    }
}

impl<'a> Generator<'a> {
    fn linear(&self) -> (&'a [f32], &'a [f32]) {
        (self.linear_weight, self.linear_bias)
    }

    fn norm(&self) -> (&'a [f32], &'a [f32]) {
        (self.norm_weight, self.norm_bias)
    }
}
