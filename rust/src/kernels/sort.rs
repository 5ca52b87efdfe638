//! Sorting kernels on contiguous rows of `R` elements: `sort` (every element, stable) and `topk` (the `k`
//! largest or smallest), each giving the values and the positions they came from. Their backward is the
//! adjoint of picking elements at indices, `index::scatter_add_forward`, called by the op.
//!
//! Order: NaN ranks above every number (ascending sorts put NaNs last, descending first; `topk(largest)` picks
//! them first), as PyTorch. Ties keep the lower index first, in either direction: `sort` is stable, and `topk`
//! breaks ties by index, so its result is one deterministic answer among the ones PyTorch allows.

use crate::dtype::Element;
use crate::parallel::{self, Rows};
use std::cmp::Ordering;

/// `a` against `b` with NaN above everything (NaNs equal among themselves): a total order on floats.
fn nan_last<T: Element>(a: T, b: T) -> Ordering {
    #[allow(clippy::eq_op)] // `v != v` is the generic NaN test
    match (a != a, b != b) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Rows per parallel task: enough that a task's work (about `r log r` per row) is worth a hand-off.
fn min_rows(r: usize) -> usize {
    (4096 / r.max(1)).max(1)
}

/// Sort each row of `x` (rows of `r`): `values` the sorted elements, `indices` their positions in the row.
/// Ascending unless `descending`; stable in both directions (equal elements keep their order).
pub fn sort_forward<T: Element>(values: &mut [T], indices: &mut [i64], x: &[T], r: usize, descending: bool) {
    if r == 0 {
        return;
    }
    let parts = (Rows::new(values, r), Rows::new(indices, r));
    parallel::for_row_parts(parts, r * (usize::BITS - r.leading_zeros()) as usize, min_rows(r), |first, (v, i)| {
        let (v, i) = (v.into_slice(), i.into_slice());
        for (row, (vr, ir)) in v.chunks_exact_mut(r).zip(i.chunks_exact_mut(r)).enumerate() {
            let src = &x[(first + row) * r..(first + row + 1) * r];
            for (j, slot) in ir.iter_mut().enumerate() {
                *slot = j as i64;
            }
            if descending {
                ir.sort_by(|&a, &b| nan_last(src[b as usize], src[a as usize]));
            } else {
                ir.sort_by(|&a, &b| nan_last(src[a as usize], src[b as usize]));
            }
            for (out, &j) in vr.iter_mut().zip(ir.iter()) {
                *out = src[j as usize];
            }
        }
    });
}

/// The `k` largest (or, unless `largest`, smallest) elements of each row of `x` (rows of `r`, `k <= r`):
/// `values` and `indices` are rows of `k`, in rank order when `sorted`, else in the order of their positions.
pub fn topk_forward<T: Element>(
    values: &mut [T],
    indices: &mut [i64],
    x: &[T],
    r: usize,
    k: usize,
    largest: bool,
    sorted: bool,
) {
    if k == 0 || r == 0 {
        return;
    }
    let parts = (Rows::new(values, k), Rows::new(indices, k));
    parallel::for_row_parts(parts, r, min_rows(r), |first, (v, i)| {
        let (v, i) = (v.into_slice(), i.into_slice());
        let mut order: Vec<i64> = Vec::with_capacity(r);
        for (row, (vr, ir)) in v.chunks_exact_mut(k).zip(i.chunks_exact_mut(k)).enumerate() {
            let src = &x[(first + row) * r..(first + row + 1) * r];
            // rank: better value first, then lower position; a total order, so the pick is deterministic
            let rank = |a: &i64, b: &i64| {
                let (va, vb) = (src[*a as usize], src[*b as usize]);
                let by_value = if largest { nan_last(vb, va) } else { nan_last(va, vb) };
                by_value.then(a.cmp(b))
            };
            order.clear();
            order.extend(0..r as i64);
            if k < r {
                order.select_nth_unstable_by(k - 1, rank);
            }
            let top = &mut order[..k];
            if sorted {
                top.sort_unstable_by(rank);
            } else {
                top.sort_unstable();
            }
            ir.copy_from_slice(top);
            for (out, &j) in vr.iter_mut().zip(top.iter()) {
                *out = src[j as usize];
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_is_stable_both_ways_and_puts_nan_last_ascending() {
        let x = [2.0f64, f64::NAN, 1.0, 2.0, -1.0, 1.0];
        let (mut v, mut i) = ([0.0; 6], [0i64; 6]);
        sort_forward(&mut v, &mut i, &x, 6, false);
        assert_eq!(i, [4, 2, 5, 0, 3, 1]);
        assert!(v[5].is_nan() && v[..5] == [-1.0, 1.0, 1.0, 2.0, 2.0]);
        sort_forward(&mut v, &mut i, &x, 6, true);
        assert_eq!(i, [1, 0, 3, 2, 5, 4]);
    }

    #[test]
    fn topk_breaks_ties_by_position_and_keeps_positions_unsorted() {
        // rows of 5: [3, 1, 3, 0, 3] and [5, 4, 3, 2, 1]
        let x = [3i64, 1, 3, 0, 3, 5, 4, 3, 2, 1];
        let (mut v, mut i) = ([0i64; 4], [0i64; 4]);
        topk_forward(&mut v, &mut i, &x, 5, 2, true, true);
        assert_eq!((v, i), ([3, 3, 5, 4], [0, 2, 0, 1]));
        topk_forward(&mut v, &mut i, &x, 5, 2, false, true);
        assert_eq!((v, i), ([0, 1, 1, 2], [3, 1, 4, 3]));
        topk_forward(&mut v, &mut i, &x, 5, 2, false, false);
        assert_eq!((v, i), ([1, 0, 2, 1], [1, 3, 3, 4]));
    }
}
