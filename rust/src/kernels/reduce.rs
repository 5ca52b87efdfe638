//! Reductions along one dimension of a contiguous tensor viewed as (outer, R, inner).
//! Sums accumulate in f64 so float32 sums stay within float32 rounding of the exact value.

use crate::dtype::Element;

/// `out[o, i] = sum_r x[o, r, i]` for floats (f64 accumulator).
pub fn sum_dim<T: Element>(out: &mut [T], x: &[T], outer: usize, r: usize, inner: usize) {
    let mut acc = vec![0f64; inner];
    for o in 0..outer {
        acc.iter_mut().for_each(|a| *a = 0.0);
        let block = &x[o * r * inner..(o + 1) * r * inner];
        for row in block.chunks_exact(inner.max(1)).take(r) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v.to_f64();
            }
        }
        for (dst, &a) in out[o * inner..(o + 1) * inner].iter_mut().zip(&acc) {
            *dst = T::from_f64(a);
        }
    }
}

/// `out[o, i] = sum_r x[o, r, i]` for integers (exact, wrapping like PyTorch's int64 arithmetic).
pub fn sum_dim_i64(out: &mut [i64], x: &[i64], outer: usize, r: usize, inner: usize) {
    for o in 0..outer {
        for i in 0..inner {
            out[o * inner + i] = (0..r).fold(0i64, |s, j| s.wrapping_add(x[(o * r + j) * inner + i]));
        }
    }
}

/// Max (or min, when `min`) along R with the index of the first extreme; a NaN wins and its index is kept.
/// R must be at least 1.
pub fn max_dim<T: Element>(vals: &mut [T], idx: &mut [i64], x: &[T], outer: usize, r: usize, inner: usize, min: bool) {
    #[allow(clippy::eq_op)] // `v != v` is the generic NaN test
    let is_nan = |v: T| v != v;
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| x[(o * r + j) * inner + i];
            let (mut best, mut bi) = (at(0), 0usize);
            if !is_nan(best) {
                for j in 1..r {
                    let v = at(j);
                    if is_nan(v) {
                        best = v;
                        bi = j;
                        break;
                    }
                    if (!min && v > best) || (min && v < best) {
                        best = v;
                        bi = j;
                    }
                }
            }
            vals[o * inner + i] = best;
            idx[o * inner + i] = bi as i64;
        }
    }
}

/// The adjoint of picking `x[o, idx[o, i], i]`: `dx[o, idx[o, i], i] += dout[o, i]`.
pub fn max_dim_backward<T: Element + std::ops::AddAssign>(
    dx: &mut [T],
    dout: &[T],
    idx: &[i64],
    outer: usize,
    r: usize,
    inner: usize,
) {
    for o in 0..outer {
        for i in 0..inner {
            let j = idx[o * inner + i] as usize;
            dx[(o * r + j) * inner + i] += dout[o * inner + i];
        }
    }
}
