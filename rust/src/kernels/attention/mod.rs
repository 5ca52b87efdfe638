//! Fused scaled-dot-product attention, flash style: `out = softmax(q k^T * scale + mask) v` per batch and head,
//! computed over tiles of keys with an online softmax, so no (T, S) matrix of scores ever exists; the forward
//! saves the log-sum-exp of each query's scores and the backward recomputes the probabilities from it.
//!
//! Dims: B batches, NH heads, T queries, S keys, HS the head size of q and k, HV that of v and out (HV = HS in a
//! GPT). Every operand is addressed through a [`Layout`] (batch, head and row strides; the head dim contiguous),
//! so q, k, v can be the (B, NH, T, HS) tensors of the op or column slices of a fused QKV projection's (B, T, 3C)
//! output, and `out` can be written as (B, NH, T, HV) or straight into the (B, T, C) rows c_proj reads.
//!
//! forward: `out[i] = sum_j p_ij z_ij v_j` with `p_ij = exp(s_ij - lse_i)`, `s_ij = scale q_i.k_j + mask_ij`,
//! `lse_i = log sum_j exp(s_ij)` (saved), `z_ij` the dropout factor (0 or 1 / (1 - p)).
//! backward (accumulates): with `D_i = dout_i . out_i`, `ds_ij = p_ij (z_ij dout_i.v_j - D_i)`:
//! `dq_i += scale sum_j ds_ij k_j`, `dk_j += scale sum_i ds_ij q_i`, `dv_j += sum_i p_ij z_ij dout_i`.
//!
//! Masks: causal (PyTorch's `is_causal`: query i sees keys j <= i, top-left aligned when T != S), a boolean mask
//! (true = takes part, PyTorch SDPA's convention) or an additive one, each broadcast over (B, NH, T, S) by strides
//! (0 on broadcast dims). A query whose every key is masked out gets a zero output and zero gradients, as
//! PyTorch 2.15's `scaled_dot_product_attention` gives (measured; its composed softmax would give NaN).
//!
//! Dropout on the attention weights draws from Philox 4x32-10 ([`crate::random::philox4x32_10`]) keyed by one
//! seed per forward and counted by (batch, head, query, key), so the backward regenerates the forward's mask and
//! any thread can draw any tile.
//!
//! Two implementations of one algorithm (query blocks, key tiles, online softmax, the same dropout mask):
//! `vectorized.rs` for f32 on every SIMD level, `plain.rs` with scalar loops over `T: Float` for f64 (exact
//! checks). Threads: the forward splits (batch, head, query block) work, the backward whole heads, so every
//! output element is computed by one thread in a fixed order and results are bit-identical on any thread count.
//! NOTE: a backward with fewer heads (B x NH) than threads runs on fewer threads, and an odd count leaves one thread
//! a head more; a split that stays bit-identical there (a pass over key blocks for dk, dv and one over query blocks
//! for dq, recomputing the probabilities twice: 7 products instead of 5) is not implemented.
//! Not here: the op, its autograd arm and broadcasting of batch dims (`ops/attention.rs`).
//!
//! A GPT block reads q, k, v straight out of its fused QKV projection and writes the rows c_proj reads:
//! ```
//! use bigcore::kernels::attention::{attention_backward, attention_forward, AttentionSpec, Dims, Layout, Mask, QkvGrads};
//! let (b, nh, t, hs) = (2, 3, 5, 4);
//! let c = nh * hs;
//! let qkv = vec![0.1f32; b * t * 3 * c]; // (B, T, 3C): q, k, v side by side in each row
//! let (mut out, mut lse) = (vec![0f32; b * t * c], vec![0f32; b * nh * t]); // (B, T, C), (B, NH, T)
//! let spec = AttentionSpec {
//!     dims: Dims { b, nh, t, s: t, hs, hv: hs },
//!     q: Layout::qkv(0, nh, t, hs),
//!     k: Layout::qkv(1, nh, t, hs),
//!     v: Layout::qkv(2, nh, t, hs),
//!     out: Layout::bthd(nh, t, hs),
//!     causal: true,
//!     mask: Mask::None,
//!     scale: 1.0 / (hs as f64).sqrt(),
//!     dropout: None, // or Some(Dropout { p, seed }) with one seed per forward, kept for the backward
//! };
//! attention_forward(&mut out, &mut lse, &qkv, &qkv, &qkv, &spec).unwrap();
//! let dout = vec![1f32; b * t * c]; // (B, T, C), out's layout
//! let mut dqkv = vec![0f32; b * t * 3 * c]; // accumulated into, (B, T, 3C)
//! attention_backward(QkvGrads::Fused(&mut dqkv), &dout, &qkv, &qkv, &qkv, &out, &lse, &spec).unwrap();
//! ```

mod head;
mod plain;
mod spec;
#[cfg(test)]
mod tests;
mod vectorized;

pub use spec::{AttentionSpec, Dims, Dropout, Layout, Mask, MaskLayout, QkvGrads};

use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::parallel;
use crate::simd::Simd;
use head::{Buffers, Head};
use spec::{fused_disjoint, OP};
use std::any::TypeId;

/// Queries per block of the path a dtype and level take.
fn query_block<T: Float>(simd: Simd) -> usize {
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        vectorized::query_block(simd)
    } else {
        plain::QB
    }
}

/// Forward: `out` (out's layout) and `lse` (B, NH, T) from q, k, v.
///
/// # Errors
/// `Shape` when a buffer is too short for its layout, `InvalidArgument` for an out layout that writes an element
/// twice, a non-finite scale or a dropout probability outside [0, 1].
pub fn attention_forward<T: Float>(
    out: &mut [T],
    lse: &mut [T],
    q: &[T],
    k: &[T],
    v: &[T],
    spec: &AttentionSpec<'_, T>,
) -> Result<()> {
    attention_forward_with(crate::simd::active(), out, lse, q, k, v, spec)
}

/// [`attention_forward`] on an explicit SIMD level (for tests of every path).
///
/// # Errors
/// As [`attention_forward`].
pub fn attention_forward_with<T: Float>(
    simd: Simd,
    out: &mut [T],
    lse: &mut [T],
    q: &[T],
    k: &[T],
    v: &[T],
    spec: &AttentionSpec<'_, T>,
) -> Result<()> {
    let d = spec.dims;
    spec.check(q.len(), k.len(), v.len(), lse.len())?;
    spec.check_write("out", out.len(), &spec.out, d.t, d.hv)?;
    let heads = d.b * d.nh;
    if heads == 0 || d.t == 0 || d.hv == 0 {
        return Ok(());
    }
    let bufs = Buffers {
        q: q.as_ptr(),
        k: k.as_ptr(),
        v: v.as_ptr(),
        o: out.as_mut_ptr(),
        dout: std::ptr::null(),
        dq: std::ptr::null_mut(),
        dk: std::ptr::null_mut(),
        dv: std::ptr::null_mut(),
        lse: lse.as_mut_ptr(),
    };
    let qb = query_block::<T>(simd);
    let blocks = d.t.div_ceil(qb);
    // tasks of `per` consecutive query blocks of one head; a block's result does not depend on its task
    let work = heads * d.t * (d.s.max(1)) * (d.hs + d.hv);
    let threads = if work < parallel::MIN_PARALLEL { 1 } else { parallel::num_threads() };
    let per = (heads * blocks).div_ceil(8 * threads).clamp(1, blocks);
    let tasks_per_head = blocks.div_ceil(per);
    let task = |i: usize| {
        let (bh, first) = (i / tasks_per_head, (i % tasks_per_head) * per);
        let count = per.min(blocks - first);
        // SAFETY: the buffers were checked against `spec` above, bh < heads, and this task is the only one
        // writing query blocks first .. first + count of head bh (out's layout was checked disjoint).
        let head = unsafe { bufs.head(spec, bh, first, count) };
        forward_blocks(simd, &head);
    };
    if threads == 1 {
        (0..heads * tasks_per_head).for_each(task);
    } else {
        parallel::run(heads * tasks_per_head, task);
    }
    Ok(())
}

/// `hd` as a `Head<f32>` when `T` is f32.
fn as_f32<T: Float>(hd: &Head<T>) -> Option<&Head<f32>> {
    // SAFETY: T is f32, so the two types are the same.
    (TypeId::of::<T>() == TypeId::of::<f32>()).then(|| unsafe { &*(hd as *const Head<T>).cast::<Head<f32>>() })
}

/// The query blocks a forward task owns, on the path of `T`.
fn forward_blocks<T: Float>(simd: Simd, hd: &Head<T>) {
    match as_f32(hd) {
        Some(hd) => vectorized::forward(simd, hd),
        None => plain::forward(hd),
    }
}

/// Backward: accumulate dq, dk, dv from dout (out's layout), the inputs, and the forward's out and lse.
///
/// # Errors
/// As [`attention_forward`], and `InvalidArgument` when a gradient layout writes an element twice or the
/// layouts of a [`QkvGrads::Fused`] buffer overlap.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward<T: Float>(
    grads: QkvGrads<'_, T>,
    dout: &[T],
    q: &[T],
    k: &[T],
    v: &[T],
    out: &[T],
    lse: &[T],
    spec: &AttentionSpec<'_, T>,
) -> Result<()> {
    attention_backward_with(crate::simd::active(), grads, dout, q, k, v, out, lse, spec)
}

/// [`attention_backward`] on an explicit SIMD level (for tests of every path).
///
/// # Errors
/// As [`attention_backward`].
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_with<T: Float>(
    simd: Simd,
    grads: QkvGrads<'_, T>,
    dout: &[T],
    q: &[T],
    k: &[T],
    v: &[T],
    out: &[T],
    lse: &[T],
    spec: &AttentionSpec<'_, T>,
) -> Result<()> {
    let d = spec.dims;
    spec.check(q.len(), k.len(), v.len(), lse.len())?;
    spec.check_read("out", out.len(), &spec.out, d.t, d.hv)?;
    spec.check_read("dout", dout.len(), &spec.out, d.t, d.hv)?;
    let (dq, dk, dv) = match grads {
        QkvGrads::Separate(dq, dk, dv) => {
            spec.check_write("dq", dq.len(), &spec.q, d.t, d.hs)?;
            spec.check_write("dk", dk.len(), &spec.k, d.s, d.hs)?;
            spec.check_write("dv", dv.len(), &spec.v, d.s, d.hv)?;
            (dq.as_mut_ptr(), dk.as_mut_ptr(), dv.as_mut_ptr())
        }
        QkvGrads::Fused(g) => {
            spec.check_write("dq", g.len(), &spec.q, d.t, d.hs)?;
            spec.check_write("dk", g.len(), &spec.k, d.s, d.hs)?;
            spec.check_write("dv", g.len(), &spec.v, d.s, d.hv)?;
            if !fused_disjoint(spec) {
                return Err(Error::invalid(OP, "the layouts of dq, dk and dv in one buffer overlap"));
            }
            let p = g.as_mut_ptr();
            (p, p, p)
        }
    };
    let heads = d.b * d.nh;
    if heads == 0 || d.t == 0 || d.s == 0 {
        return Ok(());
    }
    let bufs = Buffers {
        q: q.as_ptr(),
        k: k.as_ptr(),
        v: v.as_ptr(),
        o: out.as_ptr().cast_mut(),
        dout: dout.as_ptr(),
        dq,
        dk,
        dv,
        lse: lse.as_ptr().cast_mut(),
    };
    let task = |bh: usize| {
        // SAFETY: the buffers were checked against `spec` above, bh < heads, and this task is the only one
        // writing head bh's gradients (their layouts were checked disjoint, also from each other in a fused
        // buffer); `o` and `lse` are only read.
        let head = unsafe { bufs.head(spec, bh, 0, 0) };
        backward_head(simd, &head);
    };
    let work = heads * d.t * d.s * (d.hs + d.hv);
    if work < parallel::MIN_PARALLEL || heads == 1 {
        (0..heads).for_each(task);
    } else {
        parallel::run(heads, task);
    }
    Ok(())
}

/// One head's backward on the path of `T`.
fn backward_head<T: Float>(simd: Simd, hd: &Head<T>) {
    match as_f32(hd) {
        Some(hd) => vectorized::backward(simd, hd),
        None => plain::backward(hd),
    }
}
