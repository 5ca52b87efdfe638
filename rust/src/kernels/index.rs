//! Index kernels: on a tensor viewed as (outer, D, inner), `index_select` and its adjoint `index_add`; along
//! one dim of any geometry, `gather` and `scatter`/`scatter_add` (the adjoint of `gather`); `one_hot`; and the
//! triangle mask of `tril`/`triu`. Indices are checked by the caller.
//!
//! `gather`/`scatter` walk the index tensor's positions `p` with a [`Plan`]: operand 0 is the index (contiguous),
//! the other operands are read or written at `p` with their own strides, and the indexed tensor at `p` with
//! `p[dim]` replaced by `index[p]`: its plan stride along `dim` is 0 and `dim_stride` is added per index step.

use crate::dtype::Element;
use crate::kernels::strided::Plan;
use crate::parallel;

/// `out[o, j, i] = src[o, idx[j], i]`; `out` is (outer, idx.len(), inner).
pub fn index_select<T: Element>(out: &mut [T], src: &[T], idx: &[i64], outer: usize, d: usize, inner: usize) {
    let n = idx.len();
    for o in 0..outer {
        for (j, &k) in idx.iter().enumerate() {
            let s = (o * d + k as usize) * inner;
            let t = (o * n + j) * inner;
            out[t..t + inner].copy_from_slice(&src[s..s + inner]);
        }
    }
}

/// The adjoint of [`index_select`]: `dst[o, idx[j], i] += src[o, j, i]` (repeated indices add up).
pub fn index_add<T: Element + std::ops::AddAssign>(
    dst: &mut [T],
    src: &[T],
    idx: &[i64],
    outer: usize,
    d: usize,
    inner: usize,
) {
    let n = idx.len();
    for o in 0..outer {
        for (j, &k) in idx.iter().enumerate() {
            let s = (o * n + j) * inner;
            let t = (o * d + k as usize) * inner;
            for (a, &b) in dst[t..t + inner].iter_mut().zip(&src[s..s + inner]) {
                *a += b;
            }
        }
    }
}

/// `out[p] = x[p with p[dim] = index[p]]`; `out` is contiguous in the index's shape; plan operands
/// `[index, x with stride 0 along dim]`. Split over threads by output elements.
pub fn gather_forward<T: Element>(out: &mut [T], x: &[T], index: &[i64], plan: &Plan<2>, dim_stride: usize) {
    let [si, sx] = plan.inner_strides();
    parallel::for_chunks(out, 4096, |lo, ch| {
        plan.for_runs(lo, lo + ch.len(), |pos, [oi, ox], len| {
            for (j, o) in ch[pos - lo..pos - lo + len].iter_mut().enumerate() {
                *o = x[ox + j * sx + index[oi + j * si] as usize * dim_stride];
            }
        })
    });
}

/// `x[p with p[dim] = index[p]] = src[p]`, in index order (a repeated target keeps the last write); plan
/// operands `[index, src, x with stride 0 along dim]`.
pub fn scatter_forward<T: Element>(x: &mut [T], src: &[T], index: &[i64], plan: &Plan<3>, dim_stride: usize) {
    let [si, ss, sx] = plan.inner_strides();
    plan.for_runs(0, plan.len(), |_, [oi, os, ox], len| {
        for j in 0..len {
            x[ox + j * sx + index[oi + j * si] as usize * dim_stride] = src[os + j * ss];
        }
    });
}

/// `x[p with p[dim] = index[p]] += src[p]`, in index order (repeated targets add up): `scatter_add`'s forward
/// and, with `src` the output gradient and `x` the input's, [`gather_forward`]'s backward. Plan as
/// [`scatter_forward`]. Serial, so sums into one element always add in the same order.
pub fn scatter_add_forward<T: Element + std::ops::AddAssign>(
    x: &mut [T],
    src: &[T],
    index: &[i64],
    plan: &Plan<3>,
    dim_stride: usize,
) {
    let [si, ss, sx] = plan.inner_strides();
    plan.for_runs(0, plan.len(), |_, [oi, os, ox], len| {
        for j in 0..len {
            x[ox + j * sx + index[oi + j * si] as usize * dim_stride] += src[os + j * ss];
        }
    });
}

/// `out[n, c] = (ids[n] == c)` for `out` (N, C) zeroed by the caller; ids in `0..C`.
pub fn one_hot_forward(out: &mut [i64], ids: &[i64], c: usize) {
    for (row, &id) in out.chunks_exact_mut(c.max(1)).zip(ids) {
        row[id as usize] = 1;
    }
}

/// Zero the elements of each (rows, cols) matrix above diagonal `k` (`upper == false`, tril) or below it
/// (`upper == true`, triu).
pub fn triangle<T: Element>(x: &mut [T], rows: usize, cols: usize, k: i64, upper: bool) {
    if rows == 0 || cols == 0 {
        return;
    }
    for m in x.chunks_exact_mut(rows * cols) {
        for i in 0..rows {
            for j in 0..cols {
                let diag = j as i64 - i as i64;
                let keep = if upper { diag >= k } else { diag <= k };
                if !keep {
                    m[i * cols + j] = T::zero();
                }
            }
        }
    }
}
