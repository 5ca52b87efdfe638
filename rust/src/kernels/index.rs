//! Index kernels on a tensor viewed as (outer, D, inner): `index_select` and its adjoint `index_add`, and the
//! triangle mask of `tril`/`triu`. Indices are checked by the caller.

use crate::dtype::Element;

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
