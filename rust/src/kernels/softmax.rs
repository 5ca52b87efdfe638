//! Softmax and log-softmax along one dimension of a tensor viewed as (outer, D, inner).
//!
//! forward: `out = softmax(x)` or `log_softmax(x)`, max-subtracted so large logits do not overflow.
//! backward (accumulates): softmax `dx += y * (dy - sum(dy * y))`; log-softmax `dx += dy - exp(y) * sum(dy)`.
//!
//! Threads split the `outer` slabs of `D * inner` elements (each a whole set of rows), so every row is computed
//! by one thread and the result does not depend on the thread count.

use crate::dtype::Float;
use crate::parallel;

/// Forward of one row of `d` elements at `base`, `stride` apart.
fn forward_row<T: Float>(out: &mut [T], x: &[T], base: usize, stride: usize, d: usize, log: bool) {
    let mut m = T::NEG_INFINITY;
    for j in 0..d {
        m = m.max_nan(x[base + j * stride]);
    }
    if m == T::NEG_INFINITY {
        m = T::ZERO; // all -inf: exp(-inf - 0) = 0, sum 0 -> NaN as PyTorch gives
    }
    let mut s = T::ZERO;
    for j in 0..d {
        let e = (x[base + j * stride] - m).exp();
        out[base + j * stride] = e;
        s += e;
    }
    if log {
        let ls = s.ln() + m;
        for j in 0..d {
            out[base + j * stride] = x[base + j * stride] - ls;
        }
    } else {
        let inv = T::ONE / s;
        for j in 0..d {
            out[base + j * stride] *= inv;
        }
    }
}

/// Forward over `outer * inner` rows of length `d` and element stride `inner`.
pub fn forward<T: Float>(out: &mut [T], x: &[T], outer: usize, d: usize, inner: usize, log: bool) {
    let slab = d * inner;
    debug_assert_eq!(out.len(), outer * slab);
    parallel::for_rows(out, slab, 1, |o0, ch| {
        let x = &x[o0 * slab..o0 * slab + ch.len()];
        for (o, x) in ch.chunks_exact_mut(slab).zip(x.chunks_exact(slab)) {
            for i in 0..inner {
                forward_row(o, x, i, inner, d, log);
            }
        }
    });
}

/// Backward, accumulating into `dx`; `y` is the forward output.
pub fn backward<T: Float>(dx: &mut [T], dy: &[T], y: &[T], outer: usize, d: usize, inner: usize, log: bool) {
    let slab = d * inner;
    debug_assert_eq!(dx.len(), outer * slab);
    parallel::for_rows(dx, slab, 1, |o0, ch| {
        let (lo, hi) = (o0 * slab, o0 * slab + ch.len());
        for ((dx, dy), y) in
            ch.chunks_exact_mut(slab).zip(dy[lo..hi].chunks_exact(slab)).zip(y[lo..hi].chunks_exact(slab))
        {
            for i in 0..inner {
                let at = |j: usize| j * inner + i;
                if log {
                    let s: T = (0..d).map(|j| dy[at(j)]).sum();
                    for j in 0..d {
                        dx[at(j)] += dy[at(j)] - y[at(j)].exp() * s;
                    }
                } else {
                    let s: T = (0..d).map(|j| dy[at(j)] * y[at(j)]).sum();
                    for j in 0..d {
                        dx[at(j)] += y[at(j)] * (dy[at(j)] - s);
                    }
                }
            }
        }
    });
}
