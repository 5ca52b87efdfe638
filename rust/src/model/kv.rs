//! Generation with a key/value cache: the GPT's forward for new tokens only, attending to the keys and values of
//! every earlier token kept per layer, so a new token costs O(current length) instead of a whole forward.
//!
//! `gpt_step` runs the new tokens of each row (B, Tn) at positions `len .. len + Tn`, appends their keys and
//! values, and writes the logits of each row's last new token (B, V). The prompt goes in one call (prefill:
//! `len == 0`, causal attention by the flash kernel); each later token in a call of its own (decode: one query
//! against all cached keys, `decode_attention`). Sequences longer than the cache (the block size) are the
//! caller's: nanoGPT crops the context to the last `block_size` tokens, which means starting a new cache.
//!
//! Same parameters, layouts and arithmetic as `gpt.rs` (its helpers), no autograd, no dropout (evaluation).

use super::gpt::{encoder_forward, linear, mat, mat_t, Params, EPS, P};
use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::kernels::attention::{self, AttentionSpec, Layout, Mask};
use crate::kernels::gelu::{gelu_forward, Gelu};
use crate::kernels::gemm::{gemm, Kernel};
use crate::kernels::layernorm::layer_norm_forward;
use crate::parallel;
use crate::simd::F32x;
use crate::storage::try_filled;

/// The cached keys and values of every layer, and scratch space for the new tokens of one call.
pub struct KvCache<T> {
    b: usize,
    max_t: usize,
    c: usize,
    nh: usize,
    l: usize,
    len: usize,
    k: Vec<T>, // (L, B, NH, HS, max_t): keys transposed, so a query's scores are vectors along the positions
    v: Vec<T>, // (L, B, NH, max_t, HS)
    scratch: Vec<Vec<T>>,
}

impl<T: Float> KvCache<T> {
    /// An empty cache for `b` rows of up to `max_t` tokens of a model of width `c`, `nh` heads, `l` layers.
    ///
    /// # Errors
    /// `OutOfMemory` when the cache cannot be allocated.
    pub fn try_new(b: usize, max_t: usize, c: usize, nh: usize, l: usize) -> Result<KvCache<T>> {
        let n = [l, b, max_t, c].iter().try_fold(1usize, |a, &x| a.checked_mul(x));
        let n = n.ok_or_else(|| Error::invalid("gpt", "the key/value cache's size overflows"))?;
        let shape = [l, b, nh, max_t, c / nh.max(1)];
        Ok(KvCache {
            b,
            max_t,
            c,
            nh,
            l,
            len: 0,
            k: try_filled("gpt", &shape, n, T::ZERO)?,
            v: try_filled("gpt", &shape, n, T::ZERO)?,
            scratch: Vec::new(),
        })
    }

    /// Tokens cached per row.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Rows (the batch).
    pub fn batch(&self) -> usize {
        self.b
    }

    /// The most tokens a row can hold.
    pub fn capacity(&self) -> usize {
        self.max_t
    }

    /// Forget every cached token.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Offset of (layer, row, head, position 0) in `k` and `v`.
    fn at(&self, l: usize, b: usize, h: usize) -> usize {
        (((l * self.b + b) * self.nh + h) * self.max_t) * (self.c / self.nh)
    }
}

/// Scratch buffers of one call, sized for `rows = B * Tn` new tokens.
struct Scratch<'a, T> {
    x: &'a mut [T],    // (B*Tn, C) residual stream
    ln: &'a mut [T],   // (B*Tn, C)
    qkv: &'a mut [T],  // (B*Tn, 3C)
    atty: &'a mut [T], // (B*Tn, C)
    fch: &'a mut [T],  // (B*Tn, 4C)
    fchg: &'a mut [T], // (B*Tn, 4C)
    stats: &'a mut [T],
    last: &'a mut [T], // (B, C) each row's last token, normalized
}

/// Run `idx` (B, Tn) new tokens through the model, append their keys and values, and write each row's last
/// logits into `logits` (B, V).
///
/// # Errors
/// `InvalidArgument` when the tokens do not fit in the cache or `idx` is not `B * Tn` long; `OutOfMemory` for
/// the scratch space. Ids are the caller's to check.
pub fn gpt_step<T: Kernel>(
    cache: &mut KvCache<T>,
    logits: &mut [T],
    p: &Params<'_, T>,
    idx: &[i64],
    tn: usize,
) -> Result<()> {
    let (b, c) = (cache.b, cache.c);
    if tn == 0 || idx.len() != b * tn {
        return Err(Error::invalid("gpt", format!("{} new ids for a batch of {b} rows of {tn} tokens", idx.len())));
    }
    if cache.len + tn > cache.max_t {
        return Err(Error::invalid(
            "gpt",
            format!("{} cached and {tn} new tokens exceed the cache of {} positions", cache.len, cache.max_t),
        ));
    }
    if cache.len > 0 && tn > 1 {
        // decode one token at a time: the flash kernel's causal mask is aligned for a fresh cache only
        let mut one = vec![0i64; b];
        for t in 0..tn {
            one.iter_mut().enumerate().for_each(|(r, x)| *x = idx[r * tn + t]);
            gpt_step(cache, logits, p, &one, 1)?;
        }
        return Ok(());
    }
    let rows = b * tn;
    let sizes =
        [rows * c, rows * c, rows * 3 * c, rows * c, rows * 4 * c, rows * 4 * c, 2 * rows + b * cache.nh * tn, b * c];
    if cache.scratch.len() != sizes.len() || cache.scratch.iter().zip(&sizes).any(|(v, &n)| v.len() < n) {
        cache.scratch = sizes.iter().map(|&n| try_filled("gpt", &[n], n, T::ZERO)).collect::<Result<_>>()?;
    }
    let mut bufs = std::mem::take(&mut cache.scratch);
    {
        let [x, ln, qkv, atty, fch, fchg, stats, last] = bufs.as_mut_slice() else { unreachable!("eight buffers") };
        let s = Scratch {
            x: &mut x[..rows * c],
            ln: &mut ln[..rows * c],
            qkv: &mut qkv[..rows * 3 * c],
            atty: &mut atty[..rows * c],
            fch: &mut fch[..rows * 4 * c],
            fchg: &mut fchg[..rows * 4 * c],
            stats: &mut stats[..],
            last: &mut last[..b * c],
        };
        step_layers(cache, s, logits, p, idx, tn);
    }
    cache.scratch = bufs;
    cache.len += tn;
    Ok(())
}

fn step_layers<T: Kernel>(
    cache: &mut KvCache<T>,
    s: Scratch<'_, T>,
    logits: &mut [T],
    p: &Params<'_, T>,
    idx: &[i64],
    tn: usize,
) {
    let (b, c, nh, l_n) = (cache.b, cache.c, cache.nh, cache.l);
    let (hs, rows, len) = (c / nh, b * tn, cache.len);
    encoder_forward(s.x, idx, p.wte(), p.wpe(), (tn, len), c);
    let (mean, rest) = s.stats.split_at_mut(rows);
    let (rstd, lse) = rest.split_at_mut(rows);
    for l in 0..l_n {
        layer_norm_forward(s.ln, mean, rstd, s.x, Some(p.w(l, P::Ln1)), p.b(l, P::Ln1), c, EPS);
        linear(s.qkv, s.ln, p.w(l, P::Attn), p.b(l, P::Attn), rows, 3 * c, c, T::ZERO);
        // append the new keys and values: row (b, t) of qkv, head h -> cache (l, b, h, len + t)
        for bi in 0..b {
            for h in 0..nh {
                let base = cache.at(l, bi, h);
                for t in 0..tn {
                    let src = (bi * tn + t) * 3 * c + h * hs;
                    let dst = base + (len + t) * hs;
                    cache.v[dst..dst + hs].copy_from_slice(&s.qkv[src + 2 * c..src + 2 * c + hs]);
                    for (d, &kv) in s.qkv[src + c..src + c + hs].iter().enumerate() {
                        cache.k[base + d * cache.max_t + len + t] = kv;
                    }
                }
            }
        }
        if len == 0 {
            // prefill: causal attention among the new tokens, read in place from the QKV projection
            let spec: AttentionSpec<'_, T> = AttentionSpec {
                dims: attention::Dims { b, nh, t: tn, s: tn, hs, hv: hs },
                q: Layout::qkv(0, nh, tn, hs),
                k: Layout::qkv(1, nh, tn, hs),
                v: Layout::qkv(2, nh, tn, hs),
                out: Layout::bthd(nh, tn, hs),
                causal: true,
                mask: Mask::None,
                scale: 1.0 / (hs as f64).sqrt(),
                dropout: None,
            };
            attention::attention_forward(s.atty, &mut lse[..b * nh * tn], s.qkv, s.qkv, s.qkv, &spec)
                .expect("the scratch fits the dims");
        } else {
            decode_attention(s.atty, s.qkv, &cache.k, &cache.v, cache, l, len + 1);
        }
        linear(s.x, s.atty, p.w(l, P::AttnProj), p.b(l, P::AttnProj), rows, c, c, T::ONE);
        layer_norm_forward(s.ln, mean, rstd, s.x, Some(p.w(l, P::Ln2)), p.b(l, P::Ln2), c, EPS);
        linear(s.fch, s.ln, p.w(l, P::Fc), p.b(l, P::Fc), rows, 4 * c, c, T::ZERO);
        gelu_forward(s.fchg, s.fch, Gelu::Tanh);
        linear(s.x, s.fchg, p.w(l, P::MlpProj), p.b(l, P::MlpProj), rows, c, 4 * c, T::ONE);
    }
    // the head, for each row's last token only
    for bi in 0..b {
        let r = bi * tn + tn - 1;
        s.ln[bi * c..(bi + 1) * c].copy_from_slice(&s.x[r * c..(r + 1) * c]);
    }
    layer_norm_forward(
        s.last,
        &mut mean[..b],
        &mut rstd[..b],
        &s.ln[..b * c],
        Some(p.lnf_w(l_n)),
        p.lnf_b(l_n),
        c,
        EPS,
    );
    let v = p.wte().len() / c;
    gemm(b, v, c, T::ONE, mat(s.last, c), mat_t(p.wte(), c), T::ZERO, logits, v);
}

/// One new query per row (`qkv` (B, 3C)) against the `s` cached keys and values of layer `l`: `atty` (B, C).
fn decode_attention<T: Float>(atty: &mut [T], qkv: &[T], k: &[T], v: &[T], cache: &KvCache<T>, l: usize, s: usize) {
    let (c, nh, max_t) = (cache.c, cache.nh, cache.max_t);
    let hs = c / nh;
    let heads = cache.b * nh;
    let work = heads * s * hs;
    let run = |task: usize, out: &mut [T]| {
        let (bi, h) = (task / nh, task % nh);
        let q = &qkv[bi * 3 * c + h * hs..][..hs];
        let at = cache.at(l, bi, h);
        head(out, q, &k[at..at + hs * max_t], &v[at..at + s * hs], s, max_t);
    };
    // each task writes one head's hs outputs: the heads of row b are atty[b * C + h * HS ..][..HS]
    if work < parallel::MIN_PARALLEL {
        for (task, out) in atty.chunks_mut(hs).enumerate().take(heads) {
            run(task, out);
        }
    } else {
        parallel::each_chunk(&mut atty[..heads * hs], hs, run);
    }
}

/// `out = softmax(q K^T / sqrt(HS)) V` for one head over `s` positions: `kt` is K transposed (HS rows of
/// `max_t`), `v` is `s x HS`.
fn head<T: Float>(out: &mut [T], q: &[T], kt: &[T], v: &[T], s: usize, max_t: usize) {
    let hs = q.len();
    let scale = 1.0 / (hs as f64).sqrt();
    if let (Some(out), Some(q), Some(kt), Some(v)) = (T::as_f32_mut(out), T::as_f32(q), T::as_f32(kt), T::as_f32(v)) {
        let mut p = vec![0f32; s];
        head_f32(crate::simd::active(), out, &mut p, q, kt, v, max_t, scale as f32);
        return;
    }
    let mut p: Vec<T> =
        (0..s).map(|j| (0..hs).map(|d| q[d] * kt[d * max_t + j]).sum::<T>() * T::from_f64(scale)).collect();
    let m = p.iter().fold(T::NEG_INFINITY, |m, &x| m.max_nan(x));
    let mut sum = T::ZERO;
    for x in &mut p {
        *x = (*x - m).exp();
        sum += *x;
    }
    out.iter_mut().for_each(|o| *o = T::ZERO);
    for (&pj, vr) in p.iter().zip(v.chunks_exact(hs)) {
        for (o, &vv) in out.iter_mut().zip(vr) {
            *o += pj / sum * vv;
        }
    }
}

crate::simd_kernel! {
    /// [`head`] in f32 on the SIMD level's vectors; `p` holds the S scores.
    fn head_f32(simd: Simd, out: &mut [f32], p: &mut [f32], q: &[f32], kt: &[f32], v: &[f32], max_t: usize, scale: f32) = head_body;
}

/// Scores with lanes along the positions (a broadcast query element times a row of K transposed), the
/// softmax's exponentials on vectors, then the weighted sum of value rows with lanes along the head dim.
#[inline(always)]
unsafe fn head_body<V: F32x>(
    out: &mut [f32],
    p: &mut [f32],
    q: &[f32],
    kt: &[f32],
    v: &[f32],
    max_t: usize,
    scale: f32,
) {
    let (hs, s) = (q.len(), p.len());
    // SAFETY: the CPU contract comes from `simd_kernel!`; every read and write is bounds-checked by `F32x`.
    unsafe {
        let load =
            |x: &[f32], i: usize, n: usize| if i + V::N <= n { V::read(x, i) } else { V::read_partial(x, i, n - i) };
        let store = |r: V, x: &mut [f32], i: usize, n: usize| {
            if i + V::N <= n {
                r.write(x, i)
            } else {
                r.write_partial(x, i, n - i)
            }
        };
        let mut mv = V::splat(f32::NEG_INFINITY);
        let mut j = 0;
        while j < s {
            let mut acc = V::zero();
            for (d, &qd) in q.iter().enumerate() {
                acc = V::fmadd(V::splat(qd), load(&kt[d * max_t..d * max_t + s], j, s), acc);
            }
            let sc = V::mul(acc, V::splat(scale));
            store(sc, p, j, s);
            if j + V::N <= s {
                mv = V::max(sc, mv); // the partial tail's masked-off lanes are 0s: its max is taken below
            }
            j += V::N;
        }
        let mut m = V::hmax(mv);
        if s % V::N != 0 {
            m = p[s / V::N * V::N..].iter().fold(m, |a, &b| a.max(b));
        }
        let mut sv = V::zero();
        let mut j = 0;
        while j < s {
            let e = crate::simd::math::exp(V::sub(load(p, j, s), V::splat(m)));
            store(e, p, j, s);
            if j + V::N <= s {
                sv = V::add(sv, e);
            }
            j += V::N;
        }
        let sum = V::hsum(sv) + p[s / V::N * V::N..].iter().sum::<f32>();
        let inv = V::splat(1.0 / sum);
        let mut i = 0;
        while i < hs {
            let mut acc = V::zero();
            for (j, &pj) in p.iter().enumerate() {
                acc = V::fmadd(V::splat(pj), load(&v[j * hs..(j + 1) * hs], i, hs), acc);
            }
            store(V::mul(acc, inv), out, i, hs);
            i += V::N;
        }
    }
}
