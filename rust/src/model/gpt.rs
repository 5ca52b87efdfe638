//! The GPT's whole forward and backward pass as two calls (llm.c's `gpt2_forward` / `gpt2_backward`): every
//! activation the backward needs lives in one arena ([`Acts`]) sized once per (B, T) and reused across steps,
//! the kernels are called directly on slices, and the weights are read in place in nanoGPT's layouts
//! (`c_attn.weight` is (3C, C), products read it transposed).
//!
//! This file is the arithmetic only: no `Tensor`, no autograd, no Python (`gpt_op.rs` wraps it as one autograd op,
//! and `python/bigcore/models/gpt.py` composes the same model from `nn` layers as the reference it is tested
//! against).
//!
//! Dropout, at nanoGPT's four sites (the embeddings' sum, the attention weights, the output of each block's two
//! residual branches), draws from Philox counters under one seed per forward (`kernels::dropout` and the
//! attention kernel's own), so the backward regenerates the masks instead of storing them; each site of each
//! layer has its own stream.
//!
//! Per layer (pre-norm, as nanoGPT):
//! ```text
//! ln1 = layer_norm(x)            qkv = ln1 @ W_attn^T + b          (B, T, 3C)
//! atty = causal_attention(qkv)   x2 = x + atty @ W_proj^T + b      (B, T, C)
//! ln2 = layer_norm(x2)           fch = ln2 @ W_fc^T + b            (B, T, 4C)
//! fchg = gelu_tanh(fch)          x3 = x2 + fchg @ W_mproj^T + b    (B, T, C)
//! ```
//! then `logits = layer_norm_f(x_L) @ wte^T` (B, T, V), the head tied to the token embedding.

use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::kernels::attention::{self, AttentionSpec, Layout, Mask, QkvGrads};
use crate::kernels::dropout;
use crate::kernels::gelu::{gelu_backward, gelu_forward, Gelu};
use crate::kernels::gemm::{gemm, gemm_bias, Kernel, MatRef};
use crate::kernels::layernorm;
use crate::parallel;
use crate::storage::try_filled;

/// Layer norm's epsilon (nanoGPT's `F.layer_norm(..., 1e-5)`).
pub const EPS: f64 = 1e-5;

/// The sizes of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Batch.
    pub b: usize,
    /// Sequence length (at most the block size).
    pub t: usize,
    /// Width (n_embd).
    pub c: usize,
    /// Heads.
    pub nh: usize,
    /// Vocabulary.
    pub v: usize,
    /// Layers.
    pub l: usize,
}

impl Dims {
    fn bt(&self) -> usize {
        self.b * self.t
    }
}

/// The parameters in nanoGPT's `named_parameters()` order, the tied `lm_head.weight` left out:
/// `wte (V, C)`, `wpe (block_size, C)`, then per layer `ln_1.weight (C)`, [`ln_1.bias (C)`],
/// `attn.c_attn.weight (3C, C)`, [`.bias (3C)`], `attn.c_proj.weight (C, C)`, [`.bias (C)`], `ln_2.weight (C)`,
/// [`ln_2.bias`], `mlp.c_fc.weight (4C, C)`, [`.bias (4C)`], `mlp.c_proj.weight (C, 4C)`, [`.bias (C)`], then
/// `ln_f.weight (C)`, [`ln_f.bias (C)`]; the bracketed ones only with `bias`.
pub struct Params<'a, T> {
    /// The slices, in the order above.
    pub all: Vec<&'a [T]>,
    /// Whether linear layers and layer norms have biases.
    pub bias: bool,
}

/// Which tensor of a layer.
#[derive(Clone, Copy)]
pub(super) enum P {
    Ln1,
    Attn,
    AttnProj,
    Ln2,
    Fc,
    MlpProj,
}

impl<'a, T> Params<'a, T> {
    fn per(&self) -> usize {
        if self.bias {
            12
        } else {
            6
        }
    }
    pub(super) fn w(&self, l: usize, p: P) -> &'a [T] {
        let k = p as usize * if self.bias { 2 } else { 1 };
        self.all[2 + l * self.per() + k]
    }
    pub(super) fn b(&self, l: usize, p: P) -> Option<&'a [T]> {
        self.bias.then(|| self.all[2 + l * self.per() + p as usize * 2 + 1])
    }
    pub(super) fn wte(&self) -> &'a [T] {
        self.all[0]
    }
    pub(super) fn wpe(&self) -> &'a [T] {
        self.all[1]
    }
    pub(super) fn lnf_w(&self, n_layer: usize) -> &'a [T] {
        self.all[2 + n_layer * self.per()]
    }
    pub(super) fn lnf_b(&self, n_layer: usize) -> Option<&'a [T]> {
        self.bias.then(|| self.all[3 + n_layer * self.per()])
    }
}

/// How many parameter tensors a model has (the length of [`Params::all`]).
pub fn param_count(n_layer: usize, bias: bool) -> usize {
    let per = if bias { 12 } else { 6 };
    2 + n_layer * per + if bias { 2 } else { 1 }
}

/// The expected shape of each parameter tensor, in [`Params::all`]'s order.
pub fn param_shapes(n_layer: usize, c: usize, v: usize, block_size: usize, bias: bool) -> Vec<Vec<usize>> {
    let mut s = vec![vec![v, c], vec![block_size, c]];
    for _ in 0..n_layer {
        for (w, b) in [
            (vec![c], vec![c]),
            (vec![3 * c, c], vec![3 * c]),
            (vec![c, c], vec![c]),
            (vec![c], vec![c]),
            (vec![4 * c, c], vec![4 * c]),
            (vec![c, 4 * c], vec![c]),
        ] {
            s.push(w);
            if bias {
                s.push(b);
            }
        }
    }
    s.push(vec![c]);
    if bias {
        s.push(vec![c]);
    }
    s
}

/// Activations of one forward (all layers stacked: `ln1` is (L, B, T, C) and so on), plus the backward's
/// scratch buffers. Sized for one [`Dims`] and reused while the dims stay the same.
pub struct Acts<T> {
    dims: Dims,
    dropout: Option<Dropout>,
    encoded: Vec<T>,   // (B, T, C) token + position embeddings
    ln1: Vec<T>,       // (L, B, T, C)
    ln1_mean: Vec<T>,  // (L, B, T)
    ln1_rstd: Vec<T>,  // (L, B, T)
    qkv: Vec<T>,       // (L, B, T, 3C)
    atty: Vec<T>,      // (L, B, T, C) attention output, heads side by side
    att_lse: Vec<T>,   // (L, B, NH, T) log-sum-exp of each query's scores
    residual2: Vec<T>, // (L, B, T, C)
    ln2: Vec<T>,       // (L, B, T, C)
    ln2_mean: Vec<T>,  // (L, B, T)
    ln2_rstd: Vec<T>,  // (L, B, T)
    fch: Vec<T>,       // (L, B, T, 4C)
    fch_gelu: Vec<T>,  // (L, B, T, 4C)
    residual3: Vec<T>, // (L, B, T, C)
    lnf: Vec<T>,       // (B, T, C)
    lnf_mean: Vec<T>,  // (B, T)
    lnf_rstd: Vec<T>,  // (B, T)
    // backward scratch
    dresidual: Vec<T>, // (B, T, C)
    dln: Vec<T>,       // (B, T, C)
    dproj: Vec<T>,     // (B, T, C) a residual branch's gradient through its dropout mask
    datty: Vec<T>,     // (B, T, C)
    dqkv: Vec<T>,      // (B, T, 3C)
    dfch: Vec<T>,      // (B, T, 4C)
    dfch_gelu: Vec<T>, // (B, T, 4C)
    ones: Vec<T>,      // (B*T) of 1: bias gradients are `ones @ dout`, a one-row product
}

impl<T: Float> Acts<T> {
    /// An arena for `d`, zero-filled.
    ///
    /// # Errors
    /// `OutOfMemory` when a buffer cannot be allocated (nothing is kept).
    pub fn try_new(d: Dims) -> Result<Acts<T>> {
        let (bt, c, l) = (d.bt(), d.c, d.l);
        let z = |n: Option<usize>| -> Result<Vec<T>> {
            let n = n.ok_or_else(|| Error::invalid("gpt", format!("activations of {d:?} overflow")))?;
            try_filled("gpt", &[n], n, T::ZERO)
        };
        let btc = bt.checked_mul(c);
        let lbtc = btc.and_then(|x| x.checked_mul(l));
        let lbt = bt.checked_mul(l);
        Ok(Acts {
            dims: d,
            dropout: None,
            encoded: z(btc)?,
            ln1: z(lbtc)?,
            ln1_mean: z(lbt)?,
            ln1_rstd: z(lbt)?,
            qkv: z(lbtc.and_then(|x| x.checked_mul(3)))?,
            atty: z(lbtc)?,
            att_lse: z(lbt.and_then(|x| x.checked_mul(d.nh)))?,
            residual2: z(lbtc)?,
            ln2: z(lbtc)?,
            ln2_mean: z(lbt)?,
            ln2_rstd: z(lbt)?,
            fch: z(lbtc.and_then(|x| x.checked_mul(4)))?,
            fch_gelu: z(lbtc.and_then(|x| x.checked_mul(4)))?,
            residual3: z(lbtc)?,
            lnf: z(btc)?,
            lnf_mean: z(Some(bt))?,
            lnf_rstd: z(Some(bt))?,
            dresidual: z(btc)?,
            dln: z(btc)?,
            dproj: z(btc)?,
            datty: z(btc)?,
            dqkv: z(btc.and_then(|x| x.checked_mul(3)))?,
            dfch: z(btc.and_then(|x| x.checked_mul(4)))?,
            dfch_gelu: z(btc.and_then(|x| x.checked_mul(4)))?,
            ones: try_filled("gpt", &[bt], bt, T::ONE)?,
        })
    }

    /// The dims this arena was sized for.
    pub fn dims(&self) -> Dims {
        self.dims
    }
}

/// Row-major `rows x cols` matrix read as is.
pub(super) fn mat<T>(data: &[T], cols: usize) -> MatRef<'_, T> {
    MatRef { data, rs: cols, cs: 1 }
}

/// A row-major `cols x rows` matrix (a weight stored (out, in)) read transposed, as `rows x cols`.
pub(super) fn mat_t<T>(data: &[T], rows: usize) -> MatRef<'_, T> {
    MatRef { data, rs: 1, cs: rows }
}

/// `out (M, N) = inp (M, K) @ w^T + bias` with `w` stored (N, K); `beta = 1` adds to `out` (the residual).
#[allow(clippy::too_many_arguments)]
pub(super) fn linear<T: Kernel>(
    out: &mut [T],
    inp: &[T],
    w: &[T],
    bias: Option<&[T]>,
    m: usize,
    n: usize,
    k: usize,
    beta: T,
) {
    gemm_bias(m, n, k, T::ONE, mat(inp, k), mat_t(w, k), beta, bias, out, n);
}

/// The gradients of [`linear`]: `dinp (M, K) = dout @ w` (overwritten), `dw (N, K) += dout^T @ inp`,
/// `dbias (N) += ones @ dout`.
#[allow(clippy::too_many_arguments)]
fn linear_backward<T: Kernel>(
    dinp: Option<&mut [T]>,
    dw: &mut [T],
    dbias: Option<&mut [T]>,
    dout: &[T],
    inp: &[T],
    w: &[T],
    ones: &[T],
    (m, n, k): (usize, usize, usize),
) {
    if let Some(dinp) = dinp {
        gemm(m, k, n, T::ONE, mat(dout, n), mat(w, k), T::ZERO, dinp, k);
    }
    gemm(n, k, m, T::ONE, MatRef { data: dout, rs: 1, cs: n }, mat(inp, k), T::ONE, dw, k);
    if let Some(db) = dbias {
        gemm(1, n, m, T::ONE, mat(&ones[..m], m), mat(dout, n), T::ONE, db, n);
    }
}

/// `out[b, t] = wte[idx[b, t]] + wpe[pos0 + t]`; ids are checked by the caller.
pub(super) fn encoder_forward<T: Float>(
    out: &mut [T],
    idx: &[i64],
    wte: &[T],
    wpe: &[T],
    (t_len, pos0): (usize, usize),
    c: usize,
) {
    parallel::for_rows(out, c, 16, |r0, rows| {
        for (i, o) in rows.chunks_exact_mut(c).enumerate() {
            let r = r0 + i;
            let (tok, pos) = (idx[r] as usize, pos0 + r % t_len);
            for ((o, &e), &p) in o.iter_mut().zip(&wte[tok * c..(tok + 1) * c]).zip(&wpe[pos * c..(pos + 1) * c]) {
                *o = e + p;
            }
        }
    });
}

/// `dwte[idx[b, t]] += dout[b, t]`, `dwpe[t] += sum_b dout[b, t]`, each column range summed by one task in row
/// order, so the result does not depend on the thread count.
fn encoder_backward<T: Float>(dwte: &mut [T], dwpe: &mut [T], dout: &[T], idx: &[i64], t_len: usize, c: usize) {
    let rows = idx.len();
    // (dwte, dwpe) as one buffer split by columns: cut the column range, not the rows
    let cols_per = c.div_ceil(parallel::num_threads().max(1) * 2).max(16);
    let tasks = c.div_ceil(cols_per);
    let wte = SyncPtr(dwte.as_mut_ptr());
    let wpe = SyncPtr(dwpe.as_mut_ptr());
    let (nte, npe) = (dwte.len(), dwpe.len());
    parallel::run(if rows * c >= parallel::MIN_PARALLEL { tasks } else { 1 }, |task| {
        let (lo, hi) =
            if rows * c >= parallel::MIN_PARALLEL { (task * cols_per, ((task + 1) * cols_per).min(c)) } else { (0, c) };
        for r in 0..rows {
            let (tok, pos) = (idx[r] as usize, r % t_len);
            let src = &dout[r * c + lo..r * c + hi];
            // SAFETY: each task writes only columns lo..hi of every row of dwte and dwpe, and the column ranges of
            // the tasks are disjoint, so no element is written by two tasks; the row offsets are inside the
            // buffers (ids were checked against V, positions are < T <= block size) and both outlive the region.
            unsafe {
                assert!(tok * c + hi <= nte && pos * c + hi <= npe);
                let te = std::slice::from_raw_parts_mut(wte.get().add(tok * c + lo), hi - lo);
                let pe = std::slice::from_raw_parts_mut(wpe.get().add(pos * c + lo), hi - lo);
                for ((a, b), &g) in te.iter_mut().zip(pe.iter_mut()).zip(src) {
                    *a += g;
                    *b += g;
                }
            }
        }
    });
}

/// A raw pointer that tasks of one parallel region may share (each writes a disjoint part).
#[derive(Clone, Copy)]
struct SyncPtr<T>(*mut T);
// SAFETY: used only where the tasks write disjoint elements (see each use).
unsafe impl<T> Send for SyncPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SyncPtr<T> {}
impl<T> SyncPtr<T> {
    fn get(self) -> *mut T {
        self.0
    }
}

/// Dropout of one forward: the probability and the Philox key its masks are drawn under.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// Drop probability in (0, 1).
    pub p: f64,
    /// One draw of the library's generator.
    pub seed: u64,
}

/// The dropout sites of a layer (the embedding's is layer `usize::MAX`'s `Site::Embedding`).
#[derive(Clone, Copy)]
enum Site {
    Embedding = 0,
    AttnResidual = 1,
    MlpResidual = 2,
    AttnWeights = 3,
}

impl Dropout {
    fn stream(site: Site, layer: usize) -> u64 {
        ((layer as u64) << 8) | site as u64
    }
    fn mask(&self, site: Site, layer: usize) -> dropout::Mask {
        dropout::Mask { p: self.p, seed: self.seed, stream: Self::stream(site, layer) }
    }
    /// The attention kernel keys its counters by (head, query, key) only: each layer gets its own key.
    fn attention(&self, layer: usize) -> attention::Dropout {
        let mut z = self.seed ^ Self::stream(Site::AttnWeights, layer).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        attention::Dropout { p: self.p, seed: z ^ (z >> 31) }
    }
}

/// Causal self-attention reading q, k and v in place from the (B, T, 3C) QKV projection and writing the heads
/// side by side into (B, T, C), the rows c_proj reads.
fn attention_spec<T>(d: &Dims, dropout: Option<attention::Dropout>) -> AttentionSpec<'static, T> {
    let hs = d.c / d.nh;
    AttentionSpec {
        dims: attention::Dims { b: d.b, nh: d.nh, t: d.t, s: d.t, hs, hv: hs },
        q: Layout::qkv(0, d.nh, d.t, hs),
        k: Layout::qkv(1, d.nh, d.t, hs),
        v: Layout::qkv(2, d.nh, d.t, hs),
        out: Layout::bthd(d.nh, d.t, hs),
        causal: true,
        mask: Mask::None,
        scale: 1.0 / (hs as f64).sqrt(),
        dropout,
    }
}

/// The whole forward: fills `acts` and writes `logits` (B, T, V). `idx` is (B, T), ids in `0..V`; `dropout`
/// when training with a nonzero probability.
pub fn gpt_forward<T: Kernel>(
    acts: &mut Acts<T>,
    logits: &mut [T],
    p: &Params<'_, T>,
    idx: &[i64],
    dropout: Option<Dropout>,
) {
    let d = acts.dims;
    let (bt, c, l_n) = (d.bt(), d.c, d.l);
    let a = acts;
    a.dropout = dropout;
    match dropout {
        None => encoder_forward(&mut a.encoded, idx, p.wte(), p.wpe(), (d.t, 0), c),
        Some(drop) => {
            encoder_forward(&mut a.dln, idx, p.wte(), p.wpe(), (d.t, 0), c);
            dropout::dropout_forward(&mut a.encoded, &a.dln, drop.mask(Site::Embedding, 0));
        }
    }
    for l in 0..l_n {
        let x: &[T] = if l == 0 { &a.encoded } else { &a.residual3[(l - 1) * bt * c..l * bt * c] };
        let (ln1, qkv, atty) = (
            &mut a.ln1[l * bt * c..(l + 1) * bt * c],
            &mut a.qkv[l * bt * 3 * c..(l + 1) * bt * 3 * c],
            &mut a.atty[l * bt * c..(l + 1) * bt * c],
        );
        let (m1, r1) = (&mut a.ln1_mean[l * bt..(l + 1) * bt], &mut a.ln1_rstd[l * bt..(l + 1) * bt]);
        layernorm::layer_norm_forward(ln1, m1, r1, x, Some(p.w(l, P::Ln1)), p.b(l, P::Ln1), c, EPS);
        linear(qkv, ln1, p.w(l, P::Attn), p.b(l, P::Attn), bt, 3 * c, c, T::ZERO);
        let lse = &mut a.att_lse[l * d.b * d.nh * d.t..(l + 1) * d.b * d.nh * d.t];
        let spec = attention_spec(&d, dropout.map(|drop| drop.attention(l)));
        attention::attention_forward(atty, lse, qkv, qkv, qkv, &spec).expect("the arena fits the dims");
        let x2 = &mut a.residual2[l * bt * c..(l + 1) * bt * c];
        x2.copy_from_slice(x);
        residual_branch(
            x2,
            &mut a.dln,
            atty,
            p.w(l, P::AttnProj),
            p.b(l, P::AttnProj),
            (bt, c, c),
            dropout,
            (Site::AttnResidual, l),
        );
        let (ln2, m2, r2) = (
            &mut a.ln2[l * bt * c..(l + 1) * bt * c],
            &mut a.ln2_mean[l * bt..(l + 1) * bt],
            &mut a.ln2_rstd[l * bt..(l + 1) * bt],
        );
        layernorm::layer_norm_forward(ln2, m2, r2, x2, Some(p.w(l, P::Ln2)), p.b(l, P::Ln2), c, EPS);
        let (fch, fchg) =
            (&mut a.fch[l * bt * 4 * c..(l + 1) * bt * 4 * c], &mut a.fch_gelu[l * bt * 4 * c..(l + 1) * bt * 4 * c]);
        linear(fch, ln2, p.w(l, P::Fc), p.b(l, P::Fc), bt, 4 * c, c, T::ZERO);
        gelu_forward(fchg, fch, Gelu::Tanh);
        let x3 = &mut a.residual3[l * bt * c..(l + 1) * bt * c];
        x3.copy_from_slice(x2);
        let dims = (bt, c, 4 * c);
        residual_branch(
            x3,
            &mut a.dln,
            fchg,
            p.w(l, P::MlpProj),
            p.b(l, P::MlpProj),
            dims,
            dropout,
            (Site::MlpResidual, l),
        );
    }
    let x: &[T] = if l_n == 0 { &a.encoded } else { &a.residual3[(l_n - 1) * bt * c..] };
    layernorm::layer_norm_forward(
        &mut a.lnf,
        &mut a.lnf_mean,
        &mut a.lnf_rstd,
        x,
        Some(p.lnf_w(l_n)),
        p.lnf_b(l_n),
        c,
        EPS,
    );
    // logits (B*T, V) = lnf (B*T, C) @ wte^T
    gemm(bt, d.v, c, T::ONE, mat(&a.lnf, c), mat_t(p.wte(), c), T::ZERO, logits, d.v);
}

/// `x += dropout(inp @ w^T + b)`: without dropout the product adds straight into `x` (GEMM with beta 1); with
/// it, the product goes to `scratch` and its kept elements are added.
#[allow(clippy::too_many_arguments)]
fn residual_branch<T: Kernel>(
    x: &mut [T],
    scratch: &mut [T],
    inp: &[T],
    w: &[T],
    bias: Option<&[T]>,
    (m, n, k): (usize, usize, usize),
    dropout: Option<Dropout>,
    (site, layer): (Site, usize),
) {
    match dropout {
        None => linear(x, inp, w, bias, m, n, k, T::ONE),
        Some(drop) => {
            linear(scratch, inp, w, bias, m, n, k, T::ZERO);
            dropout::dropout_backward(x, scratch, drop.mask(site, layer)); // x += scratch * z
        }
    }
}

/// The gradient reaching a residual branch's projection: `dx` itself, or `dx * z` (in `scratch`) with dropout.
fn branch_grad<'a, T: Float>(
    dx: &'a [T],
    scratch: &'a mut [T],
    dropout: Option<Dropout>,
    site: Site,
    layer: usize,
) -> &'a [T] {
    match dropout {
        None => dx,
        Some(drop) => {
            dropout::dropout_forward(scratch, dx, drop.mask(site, layer));
            scratch
        }
    }
}

/// The whole backward from `dlogits` (B, T, V): accumulates every parameter's gradient into `grads` (same
/// order and shapes as [`Params::all`], zero-filled by the caller or holding gradients to add to).
pub fn gpt_backward<T: Kernel>(
    acts: &mut Acts<T>,
    grads: &mut [Vec<T>],
    dlogits: &[T],
    p: &Params<'_, T>,
    idx: &[i64],
) {
    let d = acts.dims;
    let (bt, c, l_n, v) = (d.bt(), d.c, d.l, d.v);
    let a = acts;
    let drop = a.dropout;
    let per = p.per();
    let bias = p.bias;
    // the head: dlnf = dlogits @ wte, dwte += dlogits^T @ lnf
    gemm(bt, c, v, T::ONE, mat(dlogits, v), mat(p.wte(), c), T::ZERO, &mut a.dln, c);
    gemm(v, c, bt, T::ONE, MatRef { data: dlogits, rs: 1, cs: v }, mat(&a.lnf, c), T::ONE, &mut grads[0], c);
    a.dresidual.iter_mut().for_each(|x| *x = T::ZERO);
    {
        let x: &[T] = if l_n == 0 { &a.encoded } else { &a.residual3[(l_n - 1) * bt * c..] };
        let f = 2 + l_n * per;
        let (gw, gb) = split_wb(grads, f, bias);
        layernorm::layer_norm_backward(
            &mut a.dresidual,
            Some(gw),
            gb,
            &a.dln,
            x,
            Some(p.lnf_w(l_n)),
            &a.lnf_mean,
            &a.lnf_rstd,
            c,
        );
    }
    for l in (0..l_n).rev() {
        let base = 2 + l * per;
        let g = |k: usize| base + k * if bias { 2 } else { 1 };
        let x: &[T] = if l == 0 { &a.encoded } else { &a.residual3[(l - 1) * bt * c..l * bt * c] };
        let (ln1, qkv, atty) = (
            &a.ln1[l * bt * c..(l + 1) * bt * c],
            &a.qkv[l * bt * 3 * c..(l + 1) * bt * 3 * c],
            &a.atty[l * bt * c..(l + 1) * bt * c],
        );
        let (x2, ln2) = (&a.residual2[l * bt * c..(l + 1) * bt * c], &a.ln2[l * bt * c..(l + 1) * bt * c]);
        let (fch, fchg) =
            (&a.fch[l * bt * 4 * c..(l + 1) * bt * 4 * c], &a.fch_gelu[l * bt * 4 * c..(l + 1) * bt * 4 * c]);
        // x3 = x2 + fchg @ W_mproj^T + b
        {
            let (gw, gb) = split_wb(grads, g(P::MlpProj as usize), bias);
            let dx3 = branch_grad(&a.dresidual, &mut a.dproj, drop, Site::MlpResidual, l);
            let dims = (bt, c, 4 * c);
            linear_backward(Some(&mut a.dfch_gelu), gw, gb, dx3, fchg, p.w(l, P::MlpProj), &a.ones, dims);
        }
        a.dfch.iter_mut().for_each(|x| *x = T::ZERO);
        gelu_backward(&mut a.dfch, &a.dfch_gelu, fch, Gelu::Tanh);
        {
            let (gw, gb) = split_wb(grads, g(P::Fc as usize), bias);
            linear_backward(Some(&mut a.dln), gw, gb, &a.dfch, ln2, p.w(l, P::Fc), &a.ones, (bt, 4 * c, c));
        }
        {
            let (gw, gb) = split_wb(grads, g(P::Ln2 as usize), bias);
            let (m2, r2) = (&a.ln2_mean[l * bt..(l + 1) * bt], &a.ln2_rstd[l * bt..(l + 1) * bt]);
            layernorm::layer_norm_backward(&mut a.dresidual, Some(gw), gb, &a.dln, x2, Some(p.w(l, P::Ln2)), m2, r2, c);
        }
        // x2 = x + atty @ W_proj^T + b
        {
            let (gw, gb) = split_wb(grads, g(P::AttnProj as usize), bias);
            let dx2 = branch_grad(&a.dresidual, &mut a.dproj, drop, Site::AttnResidual, l);
            linear_backward(Some(&mut a.datty), gw, gb, dx2, atty, p.w(l, P::AttnProj), &a.ones, (bt, c, c));
        }
        a.dqkv.iter_mut().for_each(|x| *x = T::ZERO);
        let lse = &a.att_lse[l * d.b * d.nh * d.t..(l + 1) * d.b * d.nh * d.t];
        let dqkv = QkvGrads::Fused(&mut a.dqkv);
        let spec = attention_spec(&d, drop.map(|drop| drop.attention(l)));
        attention::attention_backward(dqkv, &a.datty, qkv, qkv, qkv, atty, lse, &spec)
            .expect("the arena fits the dims");
        {
            let (gw, gb) = split_wb(grads, g(P::Attn as usize), bias);
            linear_backward(Some(&mut a.dln), gw, gb, &a.dqkv, ln1, p.w(l, P::Attn), &a.ones, (bt, 3 * c, c));
        }
        {
            let (gw, gb) = split_wb(grads, g(P::Ln1 as usize), bias);
            let (m1, r1) = (&a.ln1_mean[l * bt..(l + 1) * bt], &a.ln1_rstd[l * bt..(l + 1) * bt]);
            layernorm::layer_norm_backward(&mut a.dresidual, Some(gw), gb, &a.dln, x, Some(p.w(l, P::Ln1)), m1, r1, c);
        }
    }
    let (dwte, rest) = grads.split_at_mut(1);
    let dx = branch_grad(&a.dresidual, &mut a.dproj, drop, Site::Embedding, 0);
    encoder_backward(&mut dwte[0], &mut rest[0], dx, idx, d.t, c);
}

/// The weight's and (when `bias`) the bias's gradient buffers, at `grads[i]` and `grads[i + 1]`.
fn split_wb<T>(grads: &mut [Vec<T>], i: usize, bias: bool) -> (&mut [T], Option<&mut [T]>) {
    let (w, rest) = grads[i..].split_at_mut(1);
    (&mut w[0], if bias { Some(&mut rest[0][..]) } else { None })
}
