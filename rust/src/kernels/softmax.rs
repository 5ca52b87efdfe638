//! Softmax and log-softmax along one dimension of a tensor viewed as (outer, D, inner).
//!
//! forward: `out = softmax(x)` or `log_softmax(x)`, max-subtracted so large logits do not overflow.
//! backward (accumulates): softmax `dx += y * (dy - sum(dy * y))`; log-softmax `dx += dy - exp(y) * sum(dy)`.

use crate::dtype::Float;
use crate::parallel;

/// Forward over `outer * inner` rows of length `d` and element stride `inner`.
pub fn forward<T: Float>(out: &mut [T], x: &[T], outer: usize, d: usize, inner: usize, log: bool) {
    let row = |out: &mut [T], x: &[T], base: usize, stride: usize| {
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
    };
    if inner == 1 && d > 0 {
        parallel::for_chunks(out, d * 64, |lo, ch| {
            for (ri, o) in ch.chunks_exact_mut(d).enumerate() {
                let start = lo + ri * d;
                row(o, &x[start..start + d], 0, 1);
            }
        });
    } else {
        for o in 0..outer {
            for i in 0..inner {
                row(out, x, o * d * inner + i, inner);
            }
        }
    }
}

/// Backward, accumulating into `dx`; `y` is the forward output.
pub fn backward<T: Float>(dx: &mut [T], dy: &[T], y: &[T], outer: usize, d: usize, inner: usize, log: bool) {
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| o * d * inner + j * inner + i;
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
}
